//! The on-disk spool: lines the writer could not deliver yet, kept in
//! append-only segment files until InfluxDB accepts them.
//!
//! - [`record`]: one record = one batch of lines with length and CRC-32 (pure).
//! - [`store`]: the directory: lock file, segments, append, replay, acks,
//!   size budget, fsync.
//!
//! The writer task (`crate::influx::task`) decides when lines go to the spool
//! and when they are read back; this module only keeps them safe.

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
    /// Interim, until the settings table carries `spool.*`: `SPOOL_DIR`,
    /// `SPOOL_ENABLED` (true/false), `SPOOL_MAX_BYTES`, `SPOOL_FSYNC_INTERVAL`
    /// (seconds) from the environment, else the defaults.
    pub fn from_env(is_root: bool, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let dir = env("SPOOL_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| default_dir(is_root, env));
        let mut cfg = Self::with_dir(dir);
        if let Some(v) = env("SPOOL_ENABLED") {
            cfg.enabled = match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => return Err(format!("SPOOL_ENABLED={v}: expected true or false")),
            };
        }
        if let Some(v) = env("SPOOL_MAX_BYTES") {
            cfg.max_bytes = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("SPOOL_MAX_BYTES={v}: expected a positive number of bytes")
            })?;
        }
        if let Some(v) = env("SPOOL_FSYNC_INTERVAL") {
            let secs: f64 = v
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                .ok_or_else(|| {
                    format!("SPOOL_FSYNC_INTERVAL={v}: expected seconds, above 0 and at most 3600")
                })?;
            cfg.fsync_interval = Duration::from_secs_f64(secs);
        }
        Ok(cfg)
    }
}

/// Whether this process runs as root (the spool then lives under /var/lib).
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `/var/lib/vmpulse/spool` for root, else `$XDG_STATE_HOME/vmpulse/spool`
/// (`$HOME/.local/state/vmpulse/spool` when XDG_STATE_HOME is unset or relative).
pub fn default_dir(is_root: bool, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
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

/// Why the spool cannot be used at start.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool directory {dir} (spool.dir / --spool-dir / SPOOL_DIR) is unusable: {message}")]
    Unusable { dir: String, message: String },
    #[error("spool directory {dir} is in use by another vmpulse (pid {pid}); give each process its own spool.dir / --spool-dir / SPOOL_DIR")]
    Locked { dir: String, pid: String },
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
}
