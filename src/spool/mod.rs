//! The on-disk spool: lines the writer could not deliver yet, kept in
//! append-only segment files until InfluxDB accepts them.
//!
//! - [`record`]: one record = one batch of lines with length and CRC-32 (pure).
//! - [`store`]: the directory: lock file, segments, append, replay, acks,
//!   size budget, fsync.
//! - [`fs`]: the file operations, behind a trait so tests can fail them.
//!
//! The writer task (`crate::writer::task`) decides when lines go to the spool
//! and when they are read back; this module only keeps them safe.

pub mod fs;
pub mod record;
pub mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use store::Spool;

/// Default size budget: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Default fsync interval.
pub const DEFAULT_FSYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Where and how much to spool.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolConfig {
    /// `false` keeps the memory-only behaviour (lines dropped when the queue is full).
    pub enabled: bool,
    pub dir: PathBuf,
    /// Over this, the oldest segment is deleted and its lines counted as dropped.
    pub max_bytes: u64,
    /// Appended records reach the disk at least this often.
    pub fsync_interval: Duration,
}

impl SpoolConfig {
    /// Defaults: enabled, 1 GiB, fsync every second, [`default_dir`].
    pub fn with_dir(dir: PathBuf) -> Self {
        Self {
            enabled: true,
            dir,
            max_bytes: DEFAULT_MAX_BYTES,
            fsync_interval: DEFAULT_FSYNC_INTERVAL,
        }
    }
}

impl SpoolConfig {
    /// From the `[spool]` settings; an unset `dir` is [`default_dir`].
    pub fn from_settings(
        s: &crate::config::SpoolSettings,
        is_root: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Self {
            enabled: s.enabled,
            dir: s
                .dir
                .as_ref()
                .map(PathBuf::from)
                .unwrap_or_else(|| default_dir(is_root, env)),
            max_bytes: s.max_bytes as u64,
            fsync_interval: s.fsync_interval,
        }
    }
}

/// `$STATE_DIRECTORY/spool` when systemd gives the service one (`StateDirectory=`,
/// the only writable place under `DynamicUser=yes`); else `/var/lib/vmpulse/spool` for
/// root, else `$XDG_STATE_HOME/vmpulse/spool` (`$HOME/.local/state/vmpulse/spool` when
/// XDG_STATE_HOME is unset or relative).
pub fn default_dir(is_root: bool, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = systemd_directory(env, "STATE_DIRECTORY") {
        return dir.join("spool");
    }
    if is_root {
        return PathBuf::from("/var/lib/vmpulse/spool");
    }
    let state = env("XDG_STATE_HOME")
        .filter(|s| Path::new(s).is_absolute())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from(".local/state"));
    state.join("vmpulse/spool")
}

/// The first directory of a systemd `$STATE_DIRECTORY`/`$RUNTIME_DIRECTORY` (a
/// colon-separated list when a unit names several); `None` unless absolute.
pub fn systemd_directory(env: &dyn Fn(&str) -> Option<String>, var: &str) -> Option<PathBuf> {
    env(var)?
        .split(':')
        .next()
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
}

/// Runs blocking spool work (appends, replay reads, opening and checking a
/// spool, fsync at exit) without stalling the async workers: on the
/// multi-threaded runtime `block_in_place` hands this worker's other tasks to
/// another thread first; elsewhere (a current-thread runtime in tests, or no
/// runtime) it simply runs.
pub fn off_async<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Why the spool cannot be used at start.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool directory {dir} (spool.dir / --spool-dir / SPOOL_DIR) is unusable: {message}")]
    Unusable {
        dir: String,
        message: String,
        /// The disk, not the setting: see [`SpoolError::is_transient`].
        transient: bool,
    },
    #[error("spool directory {dir} is in use by another vmpulse (pid {pid}); give each process its own spool.dir / --spool-dir / SPOOL_DIR")]
    Locked { dir: String, pid: String },
}

impl SpoolError {
    /// Whether trying again later may succeed without changing the configuration:
    /// a full, failing or read-only (remounted after errors) disk, or a lock held by
    /// another process (which ends). The service then exits 1 and systemd's
    /// `Restart=on-failure` retries; a path that cannot be a directory or that this
    /// user may not write is a setting to fix (exit 2, never restarted).
    pub fn is_transient(&self) -> bool {
        match self {
            SpoolError::Unusable { transient, .. } => *transient,
            SpoolError::Locked { .. } => true,
        }
    }
}

/// Errors of the disk or the kernel's resources, as opposed to errors of the path.
pub fn transient_io(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOSPC
                | libc::EDQUOT
                | libc::EIO
                | libc::EROFS
                | libc::ENOMEM
                | libc::EMFILE
                | libc::ENFILE
                | libc::EAGAIN
                | libc::EBUSY
                | libc::ESTALE
                | libc::ETIMEDOUT
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_dir_follows_root_and_xdg() {
        let env = |k: &str| match k {
            "XDG_STATE_HOME" => Some("/xdg".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(default_dir(true, &env), Path::new("/var/lib/vmpulse/spool"));
        assert_eq!(default_dir(false, &env), Path::new("/xdg/vmpulse/spool"));
        let home_only = |k: &str| (k == "HOME").then(|| "/home/u".to_string());
        assert_eq!(
            default_dir(false, &home_only),
            Path::new("/home/u/.local/state/vmpulse/spool")
        );
        let relative = |k: &str| match k {
            "XDG_STATE_HOME" => Some("rel".to_string()),
            "HOME" => Some("/h".to_string()),
            _ => None,
        };
        assert_eq!(
            default_dir(false, &relative),
            Path::new("/h/.local/state/vmpulse/spool")
        );
    }

    #[test]
    fn disk_faults_are_transient_path_faults_are_not() {
        let os = std::io::Error::from_raw_os_error;
        for errno in [
            libc::ENOSPC,
            libc::EIO,
            libc::EROFS,
            libc::EDQUOT,
            libc::EMFILE,
        ] {
            assert!(transient_io(&os(errno)), "errno {errno}");
        }
        for errno in [
            libc::EACCES,
            libc::EPERM,
            libc::ENOTDIR,
            libc::EEXIST,
            libc::ENOENT,
        ] {
            assert!(!transient_io(&os(errno)), "errno {errno}");
        }
        assert!(!transient_io(&std::io::Error::other("no errno")));
        let locked = SpoolError::Locked {
            dir: "/s".into(),
            pid: "1".into(),
        };
        assert!(locked.is_transient());
    }

    #[test]
    fn default_dir_under_systemd_is_its_state_directory() {
        let env = |k: &str| match k {
            "STATE_DIRECTORY" => Some("/var/lib/vmpulse:/var/lib/other".to_string()),
            "HOME" => Some("/".to_string()),
            _ => None,
        };
        // DynamicUser=yes: not root, and HOME is "/" (read-only under ProtectSystem=strict).
        assert_eq!(
            default_dir(false, &env),
            Path::new("/var/lib/vmpulse/spool")
        );
        assert_eq!(default_dir(true, &env), Path::new("/var/lib/vmpulse/spool"));
        let relative = |k: &str| (k == "STATE_DIRECTORY").then(|| "rel".to_string());
        assert_eq!(
            default_dir(true, &relative),
            Path::new("/var/lib/vmpulse/spool")
        );
        assert_eq!(systemd_directory(&relative, "STATE_DIRECTORY"), None);
    }
}
