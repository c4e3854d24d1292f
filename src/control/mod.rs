//! The control API of the running service: HTTP/1.1 with JSON bodies on a
//! Unix socket (and, with a token, on TCP). Its clients live in `crate::remote`.
//!
//! - [`socket`]: where the socket lives, binding it safely (stale vs live), mode and group.
//! - [`server`]: the axum router and its handlers; [`error`] their one error answer;
//!   [`views`] the JSON shapes;
//!   [`health`] the verdict of `/status` (writes stale, spool growing);
//!   [`metrics`] the Prometheus text and the `vmpulse_internal` lines.
//! - [`service`]: what headless mode calls; [`serve`] accepts and serves connections;
//!   [`dirfd`] directory-relative calls for binding the socket.
//! - [`reload`]: SIGHUP re-reads the config file and environment.

pub mod dirfd;
pub mod error;
pub mod health;
pub mod metrics;
pub mod reload;
pub mod serve;
pub mod server;
pub mod service;
pub mod socket;
pub mod views;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ControlConfig;

/// The socket path: `control.socket`, else the default for this user.
pub fn socket_path(c: &ControlConfig) -> PathBuf {
    match &c.socket {
        Some(p) => PathBuf::from(p),
        None => default_socket_path(crate::config::is_root(), &|k| std::env::var(k).ok()),
    }
}

/// The system service's socket, where clients also look when none is configured.
pub const SYSTEM_SOCKET: &str = "/run/vmpulse/vmpulse.sock";

/// Where a client (the TUI, `vmpulse status`) looks for a service, in order:
/// `control.socket` when set; else this user's default, then the system
/// service's socket (an operator in the socket's group runs the TUI as
/// themselves while the service runs as root).
pub fn client_sockets(c: &ControlConfig) -> Vec<PathBuf> {
    let first = socket_path(c);
    let mut v = vec![first.clone()];
    if c.socket.is_none() && first != std::path::Path::new(SYSTEM_SOCKET) {
        v.push(PathBuf::from(SYSTEM_SOCKET));
    }
    v
}

/// The socket a client uses: the first of [`client_sockets`] that exists,
/// else the last one (whose absence is then what gets reported).
pub fn client_socket(c: &ControlConfig) -> PathBuf {
    let all = client_sockets(c);
    all.iter()
        .find(|p| std::fs::symlink_metadata(p).is_ok())
        .or(all.last())
        .cloned()
        .unwrap_or_else(|| socket_path(c))
}

/// `control.listen` as an address (validation already refused anything else).
pub fn listen_addr(c: &ControlConfig) -> Option<SocketAddr> {
    c.listen.as_deref().and_then(|a| a.parse().ok())
}

/// `$RUNTIME_DIRECTORY/vmpulse.sock` when systemd gives the service one
/// (`RuntimeDirectory=`; under `DynamicUser=yes` /tmp is private), else
/// `/run/vmpulse/vmpulse.sock` as root, `$XDG_RUNTIME_DIR/vmpulse.sock` otherwise
/// (`/tmp/vmpulse-UID/vmpulse.sock` when that variable is unset: a private 0700
/// directory that `socket::bind` creates or checks, never a name others can predict and take).
pub fn default_socket_path(root: bool, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = crate::spool::systemd_directory(env, "RUNTIME_DIRECTORY") {
        return dir.join("vmpulse.sock");
    }
    if root {
        return PathBuf::from(SYSTEM_SOCKET);
    }
    match env("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("vmpulse.sock"),
        None => socket::fallback_dir().join("vmpulse.sock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layer::Layer;
    use crate::config::validate::validate;
    use crate::config::Config;

    #[test]
    fn socket_path_defaults() {
        let user = |k: &str| (k == "XDG_RUNTIME_DIR").then(|| "/run/user/1000".to_string());
        assert_eq!(
            default_socket_path(true, &user),
            PathBuf::from("/run/vmpulse/vmpulse.sock")
        );
        assert_eq!(
            default_socket_path(false, &user),
            PathBuf::from("/run/user/1000/vmpulse.sock")
        );
        assert_eq!(
            default_socket_path(false, &|_| None),
            socket::fallback_dir().join("vmpulse.sock")
        );
        assert!(socket::fallback_dir().starts_with("/tmp"));
        // Under systemd (DynamicUser=yes too): its RuntimeDirectory=, for root or not.
        let unit = |k: &str| match k {
            "RUNTIME_DIRECTORY" => Some("/run/vmpulse".to_string()),
            _ => user(k),
        };
        for root in [true, false] {
            assert_eq!(
                default_socket_path(root, &unit),
                PathBuf::from("/run/vmpulse/vmpulse.sock")
            );
        }
        let c = ControlConfig {
            socket: Some("/x/y.sock".into()),
            ..ControlConfig::default()
        };
        assert_eq!(socket_path(&c), PathBuf::from("/x/y.sock"));
        assert_eq!(client_sockets(&c), [PathBuf::from("/x/y.sock")]);
        // Unset: this user's default, then the system service's socket.
        let all = client_sockets(&ControlConfig::default());
        assert_eq!(all.last(), Some(&PathBuf::from(SYSTEM_SOCKET)));
    }

    #[test]
    fn tcp_listener_needs_a_token_and_an_address() {
        let check = |listen: &str, token: Option<&str>| {
            let mut l = Layer::default();
            l.set("control.listen", listen, "control.listen");
            if let Some(t) = token {
                l.set("control.token", t, "VMPULSE_CONTROL_TOKEN");
            }
            validate(l, Config::default()).map_err(|e| e.to_string())
        };
        let err = check("127.0.0.1:9180", None).unwrap_err();
        assert!(
            err.starts_with("control.listen:") && err.contains("control.token"),
            "{err}"
        );
        assert!(check("127.0.0.1:9180", Some("")).is_err());
        let err = check("localhost", Some("s3cret-XYZ")).unwrap_err();
        assert!(
            err.contains("127.0.0.1:9180") && !err.contains("XYZ"),
            "{err}"
        );
        let c = check("127.0.0.1:9180", Some("s3cret-XYZ")).unwrap();
        assert_eq!(
            listen_addr(&c.control),
            Some("127.0.0.1:9180".parse().unwrap())
        );
    }
}
