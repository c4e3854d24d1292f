//! The control socket on disk: where it is, binding it without trampling a
//! live service, mode 0660 and the configured group, removal on exit.
//!
//! Safe against other local users and a second service starting at once:
//! - whoever holds the `flock` on `<socket>.lock` (for the life of the
//!   service) owns the socket path; a second service is refused with the pid
//!   written there, before it looks at the socket file;
//! - the socket is bound inside a fresh 0700 directory, given its mode and
//!   group there by name relative to that directory's descriptor, then renamed
//!   into place: it never exists at its path with the umask's mode, and no
//!   chmod or chown follows a path another user could swap for a symlink
//!   (the process umask is global, so it is left alone);
//! - without `XDG_RUNTIME_DIR` the socket lives in a private 0700 directory
//!   (`/tmp/vmpulse-UID/`) checked to be ours and not a symlink.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{UnixListener, UnixStream};

use super::dirfd::{c_name, ensure_private_dir, Dir};

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

/// Holds the lock on the socket path; removes the socket and the lock file
/// when dropped (the service is gone, so is its socket).
pub struct SocketGuard {
    path: PathBuf,
    dir: Dir,
    name: CString,
    lock_name: CString,
    _lock: File,
}

impl SocketGuard {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        // While the lock is still held: a service that opened the lock file
        // meanwhile sees it was replaced and opens it again (see `take_lock`).
        let _ = self.dir.unlink(&self.name);
        let _ = self.dir.unlink(&self.lock_name);
    }
}

/// The group a socket gets when control.group is not set: Debian's libvirt-daemon-system
/// creates it for the users allowed to manage VMs.
pub const DEFAULT_GROUP: &str = "libvirt";

/// The private directory for sockets when `XDG_RUNTIME_DIR` is unset.
pub fn fallback_dir() -> PathBuf {
    // SAFETY: getuid(2) cannot fail and touches no memory.
    PathBuf::from(format!("/tmp/vmpulse-{}", unsafe { libc::getuid() }))
}

/// Binds `path` (mode 0660, group `group`, [`DEFAULT_GROUP`] when `None`). A socket
/// file nobody answers on (a crashed run) is replaced; a service holding the path is
/// an error naming its pid. Warnings (missing group, chown refused) are logged, not fatal.
pub async fn bind(path: &Path, group: Option<&str>) -> Result<BoundSocket, SocketError> {
    let io_err = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    let invalid = || io_err(io::Error::from(io::ErrorKind::InvalidInput));
    let file_name = path.file_name().ok_or_else(invalid)?;
    let name = c_name(file_name).map_err(io_err)?;
    let mut lock_file = file_name.to_os_string();
    lock_file.push(".lock");
    let lock_name = c_name(&lock_file).map_err(io_err)?;
    let dir = open_parent(path).map_err(io_err)?;
    let lock = take_lock(&dir, &lock_name, path)?;
    check_existing(&dir, &name, path).await?;
    let listener = bind_private(&dir, &name, group, path).map_err(io_err)?;
    Ok(BoundSocket {
        listener,
        guard: SocketGuard {
            path: path.to_path_buf(),
            dir,
            name,
            lock_name,
            _lock: lock,
        },
    })
}

/// The socket's directory: the private fallback checked, any other created if missing.
fn open_parent(path: &Path) -> io::Result<Dir> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if parent == fallback_dir() {
        return ensure_private_dir(parent);
    }
    std::fs::create_dir_all(parent)?;
    Dir::open(parent)
}

/// Takes the lock that makes this process the owner of the socket path, and
/// writes its pid there for the message a second service gets.
fn take_lock(dir: &Dir, lock_name: &CStr, path: &Path) -> Result<File, SocketError> {
    let io_err = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    // A holder that exits removes the file after we opened it: try again on the new one.
    for _ in 0..5 {
        let mut f = dir
            .open_file(lock_name, libc::O_RDWR | libc::O_CREAT, 0o600)
            .map_err(io_err)?;
        // SAFETY: flock(2) on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(io_err(e));
            }
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            return Err(SocketError::Live {
                path: path.to_path_buf(),
                pid: text.trim().parse().ok(),
            });
        }
        let ours = f.metadata().map_err(io_err)?;
        let there = dir.stat(lock_name).map_err(io_err)?;
        if there.is_some_and(|st| st.st_dev == ours.dev() && st.st_ino == ours.ino()) {
            let pid = format!("{}\n", std::process::id());
            f.set_len(0)
                .and_then(|()| f.rewind())
                .and_then(|()| f.write_all(pid.as_bytes()))
                .map_err(io_err)?;
            return Ok(f);
        }
    }
    Err(io_err(io::Error::other(
        "its lock file keeps being replaced",
    )))
}

/// What is at the socket path already: nothing, a stale socket (replaced by
/// the rename), a live one (a service that predates the lock), or not a socket.
async fn check_existing(dir: &Dir, name: &CStr, path: &Path) -> Result<(), SocketError> {
    let io_err = |source| SocketError::Io {
        path: path.to_path_buf(),
        source,
    };
    let Some(st) = dir.stat(name).map_err(io_err)? else {
        return Ok(());
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
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
            Err(SocketError::Live {
                path: path.to_path_buf(),
                pid,
            })
        }
        // Nobody listens: a leftover from a run that did not clean up.
        Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!("replacing stale control socket {}", path.display());
            Ok(())
        }
        Ok(Err(e)) => Err(io_err(e)),
        Err(_) => Err(SocketError::Live {
            path: path.to_path_buf(),
            pid: None,
        }),
    }
}

/// Binds in a fresh 0700 directory next to the socket's path, sets mode and
/// group there, renames the socket into place, removes the directory.
fn bind_private(
    dir: &Dir,
    name: &CStr,
    group: Option<&str>,
    path: &Path,
) -> io::Result<UnixListener> {
    let tmp = dir.private_subdir(".vmpulse-bind-")?;
    // Checked to be ours: someone who can write `dir` may have swapped it.
    let result = dir.open_private_subdir(&tmp).and_then(|tmp_dir| {
        let sock = c"s";
        // Through the descriptor: the directory cannot be swapped under the bind.
        let listener = std::os::unix::net::UnixListener::bind(tmp_dir.fd_path().join("s"))?;
        let placed = tmp_dir
            .chmod(sock, 0o660)
            .map(|()| apply_group(&tmp_dir, sock, group, path))
            .and_then(|()| tmp_dir.rename_to(sock, dir, name));
        if let Err(e) = placed {
            let _ = tmp_dir.unlink(sock);
            return Err(e);
        }
        Ok(listener)
    });
    let _ = dir.rmdir(&tmp);
    let listener = result?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

/// Gives the socket `group`; when that is impossible, says so and keeps the
/// process's group (the service still runs; only that group's members lose access).
/// A service started by root is meant to be shared, so a failure there is a warning.
/// An unprivileged user can only hand its socket to its own groups, and its socket
/// lives in its private runtime directory anyway: there it is only a debug note,
/// so that `vmpulse --no-ui` as a normal user starts without a warning. So is a missing
/// default group (a host without libvirt-daemon-system, e.g. a remote libvirt URI):
/// only a group the operator named (control.group) must exist.
fn apply_group(dir: &Dir, name: &CStr, group: Option<&str>, path: &Path) {
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
        Some(gid) => match dir.chown_group(name, gid) {
            Ok(()) => return,
            Err(e) => format!(
                "cannot give control socket {} to group '{group}' ({e}): it keeps group '{own}'",
                path.display()
            ),
        },
    };
    if crate::config::is_root() {
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
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn names_in(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn the_lock_owns_the_path_even_when_the_socket_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let first = bind(&path, Some("no-such-group-vmpulse")).await.unwrap();
        assert_eq!(
            names_in(dir.path()),
            ["c.sock", "c.sock.lock"],
            "no bind dir left"
        );
        let lock_mode = std::fs::metadata(dir.path().join("c.sock.lock"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(lock_mode & 0o777, 0o600);
        // Someone removed the socket file: a second service still may not take the path.
        std::fs::remove_file(&path).unwrap();
        let err = bind(&path, Some("x")).await.err().expect("refused");
        assert!(
            matches!(err, SocketError::Live { pid: Some(p), .. } if p == std::process::id()),
            "{err}"
        );
        drop(first);
        assert!(names_in(dir.path()).is_empty(), "socket and lock removed");
        drop(bind(&path, Some("x")).await.unwrap());
    }

    #[test]
    fn services_starting_together_over_a_stale_socket_leave_one_owner() {
        for round in 0..100 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.sock");
            drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
            let bound: Vec<Option<BoundSocket>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..6)
                    .map(|_| {
                        let (path, barrier) = (path.clone(), barrier.clone());
                        s.spawn(move || {
                            let rt = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .unwrap();
                            barrier.wait();
                            rt.block_on(bind(&path, Some("x"))).ok()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let owners = bound.iter().filter(|b| b.is_some()).count();
            assert_eq!(
                owners,
                1,
                "round {round}: {owners} services own {}",
                path.display()
            );
            assert!(std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_socket());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _listener = rt.block_on(async {
                let b = bound.into_iter().flatten().next().unwrap();
                UnixStream::connect(&path).await.expect("the owner answers");
                b
            });
        }
    }

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
