//! The control API of the running service: HTTP/1.1 with JSON bodies on a
//! Unix socket (and, with a token, on TCP), its client, the shell
//! subcommands (`status`, `start`, `stop`) and the TUI's attach mode.
//!
//! - [`socket`]: where the socket lives, binding it safely (stale vs live), mode and group.
//! - [`server`]: the axum router and its handlers; [`views`] the JSON shapes;
//!   [`metrics`] the Prometheus text and the `vmpulse_internal` lines.
//! - [`client`]: requests over the socket; [`shell`] the subcommands;
//!   [`attach`] an [`crate::ui::Engine`] fed by a running service.
//! - [`reload`]: SIGHUP re-reads the config file and environment.

pub mod attach;
pub mod client;
pub mod metrics;
pub mod reload;
pub mod server;
pub mod service;
pub mod shell;
pub mod socket;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::Secret;

/// Settings of the control API.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// `--socket` / `VMPULSE_SOCKET` / `control.socket`.
    pub socket: PathBuf,
    /// Group given the socket (mode 0660): who may read and steer the service.
    pub group: String,
    /// Optional TCP listener for remote health checks; needs `token`.
    pub listen: Option<SocketAddr>,
    /// Bearer token every TCP request must carry.
    pub token: Option<Secret>,
    /// Also expose per-VM gauges and counters on `/metrics`.
    pub metrics_per_vm: bool,
    /// Write a `vmpulse_internal` point every status interval.
    pub internal_metrics: bool,
}

/// The default group: the one that may already read libvirt.
pub const DEFAULT_GROUP: &str = "libvirt";

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            socket: default_socket_path(is_root(), std::env::var("XDG_RUNTIME_DIR").ok()),
            group: DEFAULT_GROUP.into(),
            listen: None,
            token: None,
            metrics_per_vm: false,
            internal_metrics: false,
        }
    }
}

impl ControlConfig {
    /// `--socket`, else `VMPULSE_SOCKET`, else the default path; the rest default.
    pub fn resolve(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> Self {
        let mut c = Self::default();
        if let Some(p) = flag.or_else(|| {
            env("VMPULSE_SOCKET")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        }) {
            c.socket = p;
        }
        c
    }

    /// The TCP listener is refused unless a token protects it.
    pub fn validate(&self) -> Result<(), String> {
        if self.listen.is_some() && self.token.as_ref().is_none_or(|t| t.expose().is_empty()) {
            return Err(
                "control.listen is set but control.token is not: a TCP listener needs a token (set control.token or VMPULSE_CONTROL_TOKEN)"
                    .into(),
            );
        }
        Ok(())
    }
}

/// `/run/vmpulse/vmpulse.sock` as root, `$XDG_RUNTIME_DIR/vmpulse.sock` otherwise
/// (`/tmp/vmpulse-UID.sock` when that variable is unset).
pub fn default_socket_path(root: bool, xdg_runtime_dir: Option<String>) -> PathBuf {
    if root {
        return PathBuf::from("/run/vmpulse/vmpulse.sock");
    }
    match xdg_runtime_dir.filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("vmpulse.sock"),
        // SAFETY: getuid(2) cannot fail and touches no memory.
        None => PathBuf::from(format!("/tmp/vmpulse-{}.sock", unsafe { libc::getuid() })),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_defaults() {
        assert_eq!(
            default_socket_path(true, Some("/run/user/1000".into())),
            PathBuf::from("/run/vmpulse/vmpulse.sock")
        );
        assert_eq!(
            default_socket_path(false, Some("/run/user/1000".into())),
            PathBuf::from("/run/user/1000/vmpulse.sock")
        );
        assert!(default_socket_path(false, None)
            .to_string_lossy()
            .starts_with("/tmp/vmpulse-"));
    }

    #[test]
    fn tcp_listener_needs_a_token() {
        let mut c = ControlConfig {
            listen: Some("127.0.0.1:9180".parse().unwrap()),
            ..ControlConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("control.token"));
        c.token = Some(Secret::new(""));
        assert!(c.validate().is_err());
        c.token = Some(Secret::new("s3cret"));
        assert!(c.validate().is_ok());
    }
}
