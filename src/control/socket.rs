//! The control socket on disk: where it is, binding it without trampling a
//! live service, mode 0660 and the configured group, removal on exit.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another vmpulse service{} answers on {}: stop it first, or give this one another --socket", pid_text(*.pid), .path.display())]
    Live { path: PathBuf, pid: Option<u32> },
    #[error("{} exists and is not a socket: remove it or choose another --socket", .path.display())]
    NotSocket { path: PathBuf },
    #[error("cannot create the control socket {}: {source} (choose another --socket)", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

/// A bound control socket.
pub struct BoundSocket {
    pub listener: UnixListener,
    pub guard: SocketGuard,
}

/// Removes the socket file when dropped (the service is gone, so is its socket).
pub struct SocketGuard(PathBuf);

impl SocketGuard {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The group a socket gets when control.group is not set: Debian's libvirt-daemon-system
/// creates it for the users allowed to manage VMs.
pub const DEFAULT_GROUP: &str = "libvirt";

/// Binds `path` (mode 0660, group `group`, [`DEFAULT_GROUP`] when `None`). A socket
/// file nobody answers on (a crashed run) is replaced; one a process answers on is an
/// error naming its pid. Warnings (missing group, chown refused) are logged, not fatal.
pub async fn bind(path: &Path, group: Option<&str>) -> Result<BoundSocket, SocketError> {
    let io_err = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(SocketError::NotSocket {
                path: path.to_path_buf(),
            });
        }
        match tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(path)).await {
            Ok(Ok(stream)) => {
                let pid = stream
                    .peer_cred()
                    .ok()
                    .and_then(|c| c.pid())
                    .and_then(|p| u32::try_from(p).ok());
                return Err(SocketError::Live {
                    path: path.to_path_buf(),
                    pid,
                });
            }
            // Nobody listens: a leftover from a run that did not clean up.
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!("replacing stale control socket {}", path.display());
                std::fs::remove_file(path).map_err(io_err)?;
            }
            Ok(Err(e)) => return Err(io_err(e)),
            Err(_) => {
                return Err(SocketError::Live {
                    path: path.to_path_buf(),
                    pid: None,
                })
            }
        }
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    let bound = BoundSocket {
        listener,
        guard: SocketGuard(path.to_path_buf()),
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    apply_group(path, group);
    Ok(bound)
}

/// Gives the socket `group`; when that is impossible, says so and keeps the
/// process's group (the service still runs; only that group's members lose access).
/// A service started by root is meant to be shared, so a failure there is a warning.
/// An unprivileged user can only hand its socket to its own groups, and its socket
/// lives in its private runtime directory anyway: there it is only a debug note,
/// so that `vmpulse --no-ui` as a normal user starts without a warning. So is a missing
/// default group (a host without libvirt-daemon-system, e.g. a remote libvirt URI):
/// only a group the operator named (control.group) must exist.
fn apply_group(path: &Path, group: Option<&str>) {
    let own = current_group_name();
    let explicit = group.is_some();
    let group = group.unwrap_or(DEFAULT_GROUP);
    let problem = match gid_of(group) {
        None if !explicit => {
            tracing::debug!(
                "no group '{group}' on this host: control socket {} keeps group '{own}' (set control.group to share it)",
                path.display()
            );
            return;
        }
        None => format!(
            "group '{group}' does not exist: control socket {} keeps group '{own}' (set control.group)",
            path.display()
        ),
        Some(gid) => match std::os::unix::fs::chown(path, None, Some(gid)) {
            Ok(()) => return,
            Err(e) => format!(
                "cannot give control socket {} to group '{group}' ({e}): it keeps group '{own}'",
                path.display()
            ),
        },
    };
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        tracing::warn!("{problem}");
    } else {
        tracing::debug!("{problem}");
    }
}

fn current_group_name() -> String {
    // SAFETY: getegid(2) cannot fail and touches no memory.
    let gid = unsafe { libc::getegid() };
    group_name(gid).unwrap_or_else(|| gid.to_string())
}

/// The gid of a group name, `None` when no such group exists.
pub fn gid_of(name: &str) -> Option<u32> {
    let cname = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: getgrnam_r writes only into `grp` and `buf` (whose length we
    // pass) and sets `result` to null or to `&grp`.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
    }
}

/// The name of a gid, `None` when the group database has none.
pub fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: as in `gid_of`; `gr_name` points into `buf`, copied before it is freed.
    unsafe {
        let mut grp: libc::group = std::mem::zeroed();
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = libc::getgrgid_r(
            gid,
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return None;
        }
        Some(CStr::from_ptr(grp.gr_name).to_string_lossy().into_owned())
    }
}

/// For "permission denied": which group grants access to the socket at `path`.
pub fn access_hint(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => {
            let gid = meta.gid();
            let name = group_name(gid).unwrap_or_else(|| gid.to_string());
            format!("members of group '{name}' may use it (sudo usermod -aG {name} $USER, then log in again)")
        }
        Err(_) => "its directory is not readable by this user".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_lookups() {
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(gid_of("no-such-group-vmpulse"), None);
    }

    #[tokio::test]
    async fn stale_socket_replaced_live_one_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/c.sock");
        let first = bind(&path, Some("no-such-group-vmpulse")).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        // A live listener: refused, naming this very process.
        let err = bind(&path, Some("x")).await.err().unwrap();
        assert!(
            matches!(err, SocketError::Live { pid: Some(p), .. } if p == std::process::id()),
            "{err}"
        );
        assert!(err
            .to_string()
            .contains(&format!("pid {}", std::process::id())));
        drop(first);
        // A crashed run: the file stays but nobody listens.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let again = bind(&path, Some("x")).await.unwrap();
        drop(again);
        assert!(!path.exists(), "removed on drop");
        std::fs::write(&path, "not a socket").unwrap();
        assert!(matches!(
            bind(&path, Some("x")).await,
            Err(SocketError::NotSocket { .. })
        ));
    }
}
