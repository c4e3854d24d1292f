//! How long a cycle waits for its libvirt call before asking which QEMU
//! monitor the call is stuck in, and which held monitors are to blame. Pure:
//! the poller (`poll.rs`) does the waiting and the calls.
//!
//! The bulk stats call takes each domain's monitor in turn; a QEMU that never
//! answers holds the call, and every VM after it, until it returns. Waiting a
//! quarter of the poll interval before the first probe keeps the healthy VMs'
//! samples within 1.5 intervals of each other (probe and second call included),
//! while a normal call (tens of ms for a few VMs) never meets the probe. On a
//! host where every call is slow (TCG guests on busy cores: 40 % of the calls
//! of four lab guests passed 250 ms) the wait grows to twice the typical call
//! ([`typical`]), at most half the interval: a probe is N + 1 libvirtd calls,
//! and a slow monitor blamed as stuck costs a second full sample.

use std::time::Duration;

/// The shortest wait before a probe: below this a busy host's ordinary calls
/// would be probed every cycle for nothing.
pub const MIN_SOFT_DEADLINE: Duration = Duration::from_millis(50);

/// A domain whose monitor another call holds, and for how long
/// (`virDomainGetControlInfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMonitor {
    pub name: String,
    pub held_for: Duration,
}

/// The waits of one cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// How long a call runs before the poller probes the monitors (and again
    /// after each probe that found none to blame).
    pub soft: Duration,
    /// How long a monitor must have been held to count as stuck: half the
    /// soft deadline, i.e. one VM took at least half of the call's lateness.
    pub stuck_after: Duration,
    /// How much longer than the call itself a monitor may look held and
    /// still be the call's: libvirtd's clock and ours read at different
    /// instants. Well below `soft`, by which an earlier call's hold is older.
    pub slack: Duration,
}

impl Plan {
    /// A quarter of the poll interval, at least [`MIN_SOFT_DEADLINE`], at most
    /// half the libvirt timeout (so a probe still runs before the call is
    /// given up as timed out).
    pub fn new(poll_interval: Duration, timeout: Duration) -> Self {
        Self::with_typical(poll_interval, timeout, None)
    }

    /// [`Plan::new`], waiting at least twice `typical` (the usual duration of
    /// a call on this host), but never past half the interval.
    pub fn with_typical(
        poll_interval: Duration,
        timeout: Duration,
        typical: Option<Duration>,
    ) -> Self {
        let slow = typical.map_or(Duration::ZERO, |t| (t * 2).min(poll_interval / 2));
        let soft = (poll_interval / 4)
            .max(slow)
            .max(MIN_SOFT_DEADLINE)
            .min(timeout / 2);
        Self {
            soft,
            stuck_after: soft / 2,
            slack: soft / 4,
        }
    }
}

/// How many recent calls [`typical`] looks at.
pub const RECENT_CALLS: usize = 8;

/// The median of the recent calls' durations (those that needed no second
/// call); `None` before any. Pure.
pub fn typical(recent: &[Duration]) -> Option<Duration> {
    let mut v = recent.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// The held monitors the newest call (running for `call_age`) is stuck in:
/// held for at least `stuck_after`, and not since before that call started
/// (a monitor held longer is another call's: the bulk call's NOWAIT flag
/// passes such a domain by instead of waiting for it).
pub fn culprits(held: &[HeldMonitor], call_age: Duration, plan: &Plan) -> Vec<HeldMonitor> {
    held.iter()
        .filter(|h| h.held_for >= plan.stuck_after && h.held_for <= call_age + plan.slack)
        .cloned()
        .collect()
}

/// Names for a log line: `'a', 'b'`.
pub fn names(held: &[HeldMonitor]) -> String {
    held.iter()
        .map(|h| format!("'{}'", h.name))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn held(name: &str, for_ms: u64) -> HeldMonitor {
        HeldMonitor {
            name: name.into(),
            held_for: ms(for_ms),
        }
    }

    #[test]
    fn the_soft_deadline_is_a_quarter_interval_within_its_bounds() {
        assert_eq!(Plan::new(ms(1000), ms(10_000)).soft, ms(250));
        assert_eq!(Plan::new(ms(1000), ms(10_000)).stuck_after, ms(125));
        assert_eq!(Plan::new(ms(100), ms(10_000)).soft, MIN_SOFT_DEADLINE);
        // A probe runs before the call times out.
        assert_eq!(Plan::new(ms(60_000), ms(3_000)).soft, ms(1_500));
    }

    #[test]
    fn a_host_whose_calls_are_all_slow_is_probed_later_but_within_half_an_interval() {
        let (poll, timeout) = (ms(1000), ms(10_000));
        assert_eq!(
            Plan::with_typical(poll, timeout, Some(ms(40))).soft,
            ms(250)
        );
        assert_eq!(
            Plan::with_typical(poll, timeout, Some(ms(300))).soft,
            ms(500)
        );
        assert_eq!(
            Plan::with_typical(poll, timeout, Some(ms(300))).stuck_after,
            ms(250)
        );
        assert_eq!(
            Plan::with_typical(poll, timeout, Some(ms(900))).soft,
            ms(500)
        );
        assert_eq!(
            Plan::with_typical(poll, ms(600), Some(ms(900))).soft,
            ms(300)
        );
        assert_eq!(typical(&[]), None);
        assert_eq!(typical(&[ms(9), ms(1), ms(300), ms(5)]), Some(ms(9)));
        assert_eq!(typical(&[ms(7)]), Some(ms(7)));
    }

    #[test]
    fn only_monitors_held_long_and_since_the_call_began_are_to_blame() {
        let all = [
            held("brief", 20),      // an ordinary answer in progress
            held("stuck", 240),     // held since our call reached it
            held("older", 90_000),  // held by an earlier call: NOWAIT skips it
            held("just-over", 260), // within the clock slack
        ];
        let plan = Plan::new(ms(1000), ms(10_000)); // stuck after 125 ms, slack 62 ms
        let c = culprits(&all, ms(250), &plan);
        let names: Vec<&str> = c.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["stuck", "just-over"]);
        assert!(culprits(&all[..1], ms(250), &plan).is_empty());
    }

    #[test]
    fn names_are_quoted_for_the_log() {
        assert_eq!(names(&[held("a", 1), held("b c", 2)]), "'a', 'b c'");
    }
}
