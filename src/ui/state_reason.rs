//! libvirt's state reasons in words (pure): what `virsh domstate --reason` prints,
//! for the detail view instead of a bare number.
//!
//! The reason code's meaning depends on the state (`virDomainRunningReason`,
//! `virDomainPausedReason`, `virDomainShutoffReason`, ...); codes newer than this
//! table read "reason N".

use crate::model::DomainState;

/// The reason as virsh words it, e.g. `booted`, `I/O error`, `destroyed`.
pub fn name(state: DomainState, reason: i32) -> String {
    let table: &[&str] = match state {
        DomainState::Running => &[
            "unknown",
            "booted",
            "migrated",
            "restored",
            "from snapshot",
            "unpaused",
            "migration canceled",
            "save canceled",
            "event wakeup",
            "crashed",
            "post-copy",
            "post-copy failed",
        ],
        DomainState::Paused => &[
            "unknown",
            "user",
            "migrating",
            "saving",
            "dumping",
            "I/O error",
            "watchdog",
            "from snapshot",
            "shutting down",
            "creating snapshot",
            "crashed",
            "starting up",
            "post-copy",
            "post-copy failed",
            "api error",
        ],
        DomainState::Shutdown => &["unknown", "user"],
        DomainState::Shutoff => &[
            "unknown",
            "shutdown",
            "destroyed",
            "crashed",
            "migrated",
            "saved",
            "failed",
            "from snapshot",
            "daemon",
        ],
        DomainState::Crashed => &["unknown", "panicked"],
        DomainState::NoState | DomainState::Blocked | DomainState::PmSuspended => &["unknown"],
        DomainState::Other(_) => &[],
    };
    usize::try_from(reason)
        .ok()
        .and_then(|i| table.get(i))
        .map_or_else(|| format!("reason {reason}"), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_virsh_prints_them() {
        assert_eq!(name(DomainState::Running, 1), "booted");
        assert_eq!(name(DomainState::Running, 5), "unpaused");
        assert_eq!(name(DomainState::Paused, 1), "user");
        assert_eq!(name(DomainState::Paused, 5), "I/O error");
        assert_eq!(name(DomainState::Shutoff, 2), "destroyed");
        assert_eq!(name(DomainState::Crashed, 1), "panicked");
        assert_eq!(name(DomainState::Blocked, 0), "unknown");
        assert_eq!(name(DomainState::Running, 0), "unknown");
    }

    #[test]
    fn unknown_codes_stay_numbers() {
        assert_eq!(name(DomainState::Running, 99), "reason 99");
        assert_eq!(name(DomainState::Shutoff, -1), "reason -1");
        assert_eq!(name(DomainState::Other(9), 0), "reason 0");
    }
}
