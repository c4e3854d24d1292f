//! Files handled relative to an open directory (`openat`, `fchmodat`,
//! `renameat`...), so that no step follows a symlink someone swapped into a
//! path between two calls. Used to put the control socket in place.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// An open directory (an `O_PATH` descriptor) and the path it was opened by.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// The result of a libc call that returns -1 and sets errno on failure.
fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

impl Dir {
    /// Opens `path`, following symlinks in it (the administrator's choice of path).
    pub fn open(path: &Path) -> io::Result<Self> {
        Self::open_with(path, 0)
    }

    /// Opens `path`, refusing a symlink as its last component.
    pub fn open_nofollow(path: &Path) -> io::Result<Self> {
        Self::open_with(path, libc::O_NOFOLLOW)
    }

    fn open_with(path: &Path, extra: libc::c_int) -> io::Result<Self> {
        let c = cstr(path.as_os_str().as_bytes())?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | extra;
        // SAFETY: `c` is a valid NUL-terminated string; the returned fd is owned below.
        let fd = check(unsafe { libc::open(c.as_ptr(), flags) })?;
        Ok(Self {
            // SAFETY: `fd` was just opened and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: path.to_path_buf(),
        })
    }

    /// Opens the subdirectory `name`, refusing a symlink and anything not
    /// private to this user (see [`ensure_private_dir`]).
    pub fn open_private_subdir(&self, name: &CStr) -> io::Result<Dir> {
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
        // SAFETY: valid fd and name; the returned fd is owned below.
        let fd = check(unsafe { libc::openat(self.raw(), name.as_ptr(), flags) })?;
        let dir = Dir {
            // SAFETY: `fd` was just opened and nothing else owns it.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: self.path.join(OsStr::from_bytes(name.to_bytes())),
        };
        dir.check_private()?;
        Ok(dir)
    }

    /// Owned by this user and closed to everyone else.
    fn check_private(&self) -> io::Result<()> {
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, `st` writable.
        check(unsafe { libc::fstat(self.raw(), &mut st) })?;
        // SAFETY: geteuid(2) cannot fail and touches no memory.
        let uid = unsafe { libc::geteuid() };
        if st.st_uid != uid || st.st_mode & 0o077 != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} is not a private directory of uid {uid} (owner {}, mode {:o}): remove it, or set XDG_RUNTIME_DIR or --socket",
                    self.path.display(),
                    st.st_uid,
                    st.st_mode & 0o7777
                ),
            ));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// A path that reaches this very directory through its descriptor (when
    /// `/proc` is there), for calls that take only paths, such as `bind`.
    pub fn fd_path(&self) -> PathBuf {
        let proc = PathBuf::from(format!("/proc/self/fd/{}", self.raw()));
        if proc.exists() {
            proc
        } else {
            self.path.clone()
        }
    }

    /// `fstatat` without following a symlink; `None` when nothing is there.
    pub fn stat(&self, name: &CStr) -> io::Result<Option<libc::stat>> {
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, NUL-terminated name, `st` is writable.
        let rc = unsafe {
            libc::fstatat(
                self.raw(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(rc) {
            Ok(_) => Ok(Some(st)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens (or creates, mode `mode`) a regular file in this directory, never through a symlink.
    pub fn open_file(&self, name: &CStr, flags: libc::c_int, mode: u32) -> io::Result<File> {
        let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: valid fd and name; the returned fd is owned by the File.
        let fd = check(unsafe { libc::openat(self.raw(), name.as_ptr(), flags, mode) })?;
        // SAFETY: `fd` was just opened and nothing else owns it.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// `fchmodat`: only for names in a directory nobody else can write.
    pub fn chmod(&self, name: &CStr, mode: u32) -> io::Result<()> {
        // SAFETY: valid fd and name.
        check(unsafe { libc::fchmodat(self.raw(), name.as_ptr(), mode, 0) }).map(drop)
    }

    /// Gives `name` (not what a symlink there points to) the group `gid`.
    pub fn chown_group(&self, name: &CStr, gid: u32) -> io::Result<()> {
        // SAFETY: valid fd and name; uid -1 leaves the owner as it is.
        let rc = unsafe {
            libc::fchownat(
                self.raw(),
                name.as_ptr(),
                u32::MAX,
                gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        check(rc).map(drop)
    }

    /// Moves `name` to `to`/`to_name`, replacing what is there in one step.
    pub fn rename_to(&self, name: &CStr, to: &Dir, to_name: &CStr) -> io::Result<()> {
        // SAFETY: valid fds and names.
        let rc = unsafe { libc::renameat(self.raw(), name.as_ptr(), to.raw(), to_name.as_ptr()) };
        check(rc).map(drop)
    }

    pub fn unlink(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: valid fd and name.
        check(unsafe { libc::unlinkat(self.raw(), name.as_ptr(), 0) }).map(drop)
    }

    pub fn rmdir(&self, name: &CStr) -> io::Result<()> {
        // SAFETY: valid fd and name.
        check(unsafe { libc::unlinkat(self.raw(), name.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
    }

    /// Creates a new subdirectory `<prefix><random>` with mode 0700 (the umask
    /// can only take bits away) and returns its name.
    pub fn private_subdir(&self, prefix: &str) -> io::Result<CString> {
        loop {
            let name = cstr(format!("{prefix}{:08x}", fastrand::u32(..)).as_bytes())?;
            // SAFETY: valid fd and name.
            match check(unsafe { libc::mkdirat(self.raw(), name.as_ptr(), 0o700) }) {
                Ok(_) => return Ok(name),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A file name as a C string (names with a NUL byte are invalid input).
pub fn c_name(name: &OsStr) -> io::Result<CString> {
    cstr(name.as_bytes())
}

/// Makes sure `path` is a private directory of this user: created with mode
/// 0700 if missing; an existing one must be a real directory (not a symlink),
/// owned by this user and closed to everyone else.
pub fn ensure_private_dir(path: &Path) -> io::Result<Dir> {
    let c = cstr(path.as_os_str().as_bytes())?;
    // SAFETY: valid NUL-terminated path.
    if let Err(e) = check(unsafe { libc::mkdir(c.as_ptr(), 0o700) }) {
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e);
        }
    }
    let dir = Dir::open_nofollow(path)?;
    dir.check_private()?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_dir_is_created_0700_and_a_symlink_or_open_one_refused() {
        let base = tempfile::tempdir().unwrap();
        let p = base.path().join("priv");
        ensure_private_dir(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        ensure_private_dir(&p).expect("an existing private dir is fine");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_dir(&p).unwrap_err().to_string();
        assert!(err.contains("not a private directory"), "{err}");
        let link = base.path().join("link");
        std::os::unix::fs::symlink(base.path(), &link).unwrap();
        assert!(ensure_private_dir(&link).is_err(), "a symlink is refused");
    }

    #[test]
    fn relative_operations_do_not_follow_symlinks() {
        let base = tempfile::tempdir().unwrap();
        let target = base.path().join("target");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&target, base.path().join("link")).unwrap();
        let dir = Dir::open(base.path()).unwrap();
        let link = c_name(OsStr::new("link")).unwrap();
        assert!(dir.open_file(&link, libc::O_RDONLY, 0).is_err());
        // SAFETY: getegid(2) cannot fail.
        let gid = unsafe { libc::getegid() };
        dir.chown_group(&link, gid).unwrap();
        let st = dir.stat(&link).unwrap().unwrap();
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFLNK);
        assert!(dir
            .stat(&c_name(OsStr::new("none")).unwrap())
            .unwrap()
            .is_none());
        let sub = dir.private_subdir(".t-").unwrap();
        assert_eq!(dir.stat(&sub).unwrap().unwrap().st_mode & 0o777, 0o700);
        dir.rmdir(&sub).unwrap();
    }
}
