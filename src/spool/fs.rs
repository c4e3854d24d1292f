//! The file operations the spool makes, behind one small trait so that tests
//! can fail any of them (EMFILE, ENOSPC, EIO) at a chosen call. Production
//! uses [`RealFs`]: plain files, created with explicit modes (0700 for the
//! directory, 0600 for files) rather than whatever the umask allows.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Mode of the spool directory: VM names and metrics are nobody else's business.
pub const DIR_MODE: u32 = 0o700;
/// Mode of segment and lock files.
pub const FILE_MODE: u32 = 0o600;
/// The lock file that marks a directory as a spool.
pub const LOCK_FILE: &str = "lock";

/// What a call does, for [`Faults`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Open,
    Read,
    Write,
    Sync,
}

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Read,
    /// Read and write, created 0600 if missing (the lock file).
    ReadWriteCreate,
    /// Append to a new file (0600); fails if it exists.
    AppendNew,
    /// Write an existing file (to cut a torn tail).
    Write,
}

/// (device, inode): tells a directory from one put in its place.
pub type Identity = (u64, u64);

pub trait Fs: Send + Sync + 'static {
    fn open(&self, path: &Path, how: Open) -> std::io::Result<File>;
    /// Reads exactly `buf.len()` bytes at `pos`.
    fn read_at(&self, file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()>;
    /// Reads the whole file.
    fn read_all(&self, file: &mut File) -> std::io::Result<Vec<u8>>;
    fn write_all(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()>;
    /// fsync(2) of the data (files) or the entries (directories).
    fn sync(&self, file: &File) -> std::io::Result<()>;
    /// Creates `dir` and its parents; the directory itself ends up mode 0700.
    fn create_dir(&self, dir: &Path) -> std::io::Result<()>;
    /// The directory's identity now (`NotFound` once it was deleted).
    fn identity(&self, path: &Path) -> std::io::Result<Identity>;
}

/// Real files.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Fs for RealFs {
    fn open(&self, path: &Path, how: Open) -> std::io::Result<File> {
        let mut o = OpenOptions::new();
        o.mode(FILE_MODE).custom_flags(libc::O_CLOEXEC);
        match how {
            Open::Read => o.read(true),
            Open::ReadWriteCreate => o.read(true).write(true).create(true).truncate(false),
            Open::AppendNew => o.append(true).create_new(true),
            Open::Write => o.write(true),
        };
        let file = o.open(path)?;
        if how != Open::Read {
            // The umask may have taken bits away; set exactly 0600 on the descriptor.
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
        Ok(file)
    }

    fn read_at(&self, file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        file.read_exact_at(buf, pos)
    }

    fn read_all(&self, file: &mut File) -> std::io::Result<Vec<u8>> {
        let mut v = Vec::new();
        file.read_to_end(&mut v)?;
        Ok(v)
    }

    fn write_all(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()> {
        file.write_all(buf)
    }

    fn sync(&self, file: &File) -> std::io::Result<()> {
        file.sync_data()
    }

    fn create_dir(&self, dir: &Path) -> std::io::Result<()> {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)?;
        }
        let created = match std::fs::DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        // Set on the opened directory: the umask may have taken bits away.
        let d = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)?;
        let mode = d.metadata()?.permissions().mode() & 0o777;
        // An existing directory is tightened only when it is a spool already
        // (an older vmpulse made it with the umask's mode), never a shared
        // directory someone named as spool.dir.
        if created || (mode & 0o077 != 0 && dir.join(LOCK_FILE).is_file()) {
            d.set_permissions(std::fs::Permissions::from_mode(DIR_MODE))?;
        } else if mode & 0o077 != 0 {
            tracing::warn!(
                "spool directory {} (spool.dir) has mode {mode:o}: other users can read VM names and metrics; chmod 700 it",
                dir.display()
            );
        }
        Ok(())
    }

    fn identity(&self, path: &Path) -> std::io::Result<Identity> {
        let m = std::fs::metadata(path)?;
        Ok((m.dev(), m.ino()))
    }
}

/// Real files, with chosen calls failing: "the next `count` calls of `op`
/// fail with `errno`", or "the `nth` call from now". For fault-injection tests.
#[derive(Clone, Default)]
pub struct Faults {
    plan: Arc<Mutex<Vec<Fault>>>,
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    op: Op,
    /// Calls of `op` to let through first.
    skip: u32,
    /// Calls to fail after that.
    count: u32,
    errno: i32,
}

impl Faults {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `count` calls of `op` fail with `errno`.
    pub fn fail(&self, op: Op, errno: i32, count: u32) {
        self.fail_after(op, 0, errno, count);
    }

    /// After `skip` successful calls of `op`, `count` fail with `errno`.
    pub fn fail_after(&self, op: Op, skip: u32, errno: i32, count: u32) {
        self.lock().push(Fault {
            op,
            skip,
            count,
            errno,
        });
    }

    /// No more failures.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, op: Op) -> std::io::Result<()> {
        let mut plan = self.lock();
        for f in plan.iter_mut().filter(|f| f.op == op && f.count > 0) {
            if f.skip > 0 {
                f.skip -= 1;
                continue;
            }
            f.count -= 1;
            return Err(std::io::Error::from_raw_os_error(f.errno));
        }
        Ok(())
    }
}

impl Fs for Faults {
    fn open(&self, path: &Path, how: Open) -> std::io::Result<File> {
        self.check(Op::Open)?;
        RealFs.open(path, how)
    }
    fn read_at(&self, file: &File, buf: &mut [u8], pos: u64) -> std::io::Result<()> {
        self.check(Op::Read)?;
        RealFs.read_at(file, buf, pos)
    }
    fn read_all(&self, file: &mut File) -> std::io::Result<Vec<u8>> {
        self.check(Op::Read)?;
        RealFs.read_all(file)
    }
    fn write_all(&self, file: &mut File, buf: &[u8]) -> std::io::Result<()> {
        self.check(Op::Write)?;
        RealFs.write_all(file, buf)
    }
    fn sync(&self, file: &File) -> std::io::Result<()> {
        self.check(Op::Sync)?;
        RealFs.sync(file)
    }
    fn create_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.check(Op::Open)?;
        RealFs.create_dir(dir)
    }
    fn identity(&self, path: &Path) -> std::io::Result<Identity> {
        RealFs.identity(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_set_explicitly_not_by_the_umask() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("a/spool");
        // The test runner's umask (usually 022) would give 0755 and 0644.
        let made = RealFs
            .create_dir(&dir)
            .and_then(|_| RealFs.open(&dir.join("f"), Open::AppendNew));
        made.expect("create");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("f")), 0o600);
        // An existing directory is left alone, unless it is a spool already
        // (an older vmpulse made it with the umask's mode).
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        RealFs.create_dir(&dir).expect("again");
        assert_eq!(mode(&dir), 0o755);
        std::fs::write(dir.join(LOCK_FILE), "1\n").expect("lock file");
        RealFs.create_dir(&dir).expect("again");
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn faults_fail_the_chosen_calls_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = Faults::new();
        f.fail_after(Op::Open, 1, libc::EMFILE, 2);
        let p = tmp.path().join("x");
        assert!(f.open(&p, Open::ReadWriteCreate).is_ok());
        for _ in 0..2 {
            let e = f.open(&p, Open::Read).expect_err("fails");
            assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
        }
        assert!(f.open(&p, Open::Read).is_ok());
    }
}
