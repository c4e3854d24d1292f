//! Releases the process's mappings of code and constants it no longer runs.
//!
//! Most of a small vmpulse's RSS is not its own data but pages of its binary and of
//! libvirt's shared libraries (libvirt, OpenSSL via libssh, GnuTLS, GLib, libxml2, ICU)
//! that were touched once: argument parsing, config loading, the libraries'
//! initialisers (libssh initialises all of OpenSSL), the first connection. They stay
//! mapped, and counted in RSS, for the life of the process. After the first cycles, and
//! then now and again, vmpulse drops its mappings of those pages with
//! `madvise(MADV_DONTNEED)`: only read-only, file-backed mappings that hold no private
//! (copied-on-write) page, so nothing is lost. The pages stay in the page cache, shared
//! with every other process; what a cycle runs is mapped again by its first access (a
//! minor fault, no I/O), so RSS settles at the working set.

use std::io;
use std::time::Duration;

/// The first release: after start-up work (flags, config, the libraries' initialisers,
/// the connection, the first cycles, the first writes) is over.
pub const FIRST_RELEASE: Duration = Duration::from_secs(15);

/// Then again this often: pages of rare paths (a reload, an outage's spool, a control
/// API request) are mapped only while they were in use. Each release costs the working
/// set's minor faults once (well under a millisecond).
pub const RELEASE_EVERY: Duration = Duration::from_secs(600);

/// Runs for the life of the process (spawned next to the frontend).
pub async fn release_periodically() {
    tokio::time::sleep(FIRST_RELEASE).await;
    loop {
        match tokio::task::spawn_blocking(release_file_pages).await {
            Ok(Ok(done)) => tracing::debug!(
                "released {} KiB of start-up code pages ({} mappings)",
                done.kib,
                done.mappings
            ),
            Ok(Err(e)) => {
                tracing::debug!("cannot read /proc/self/smaps ({e}); code pages stay mapped");
                return;
            }
            Err(_) => return,
        }
        tokio::time::sleep(RELEASE_EVERY).await;
    }
}

/// One mapping of `/proc/self/smaps`, as far as the release needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: usize,
    pub end: usize,
    /// The permission column, e.g. `r-xp`.
    pub perms: String,
    /// The path (empty for anonymous memory; `[stack]`, `[vdso]` for special ones).
    pub path: String,
    /// Resident, KiB.
    pub rss_kib: u64,
    /// Private copies of file pages (relocated data) and anonymous pages, KiB.
    pub anonymous_kib: u64,
}

/// What one release did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Mappings released.
    pub mappings: usize,
    /// Their resident size before the release, KiB.
    pub kib: u64,
}

/// Parses `/proc/PID/smaps` text: a header line per mapping, then `Key: value kB` lines.
pub fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        if let Some(m) = parse_header(line) {
            out.push(m);
        } else if let (Some(m), Some((key, kib))) = (out.last_mut(), parse_field(line)) {
            match key {
                "Rss" => m.rss_kib = kib,
                "Anonymous" => m.anonymous_kib = kib,
                _ => {}
            }
        }
    }
    out
}

/// `start-end perms offset dev inode [path]`; `None` for a field line.
fn parse_header(line: &str) -> Option<Mapping> {
    let mut rest = line;
    let mut cols = [""; 5];
    for col in &mut cols {
        let (head, tail) = rest
            .trim_start()
            .split_once(' ')
            .unwrap_or((rest.trim_start(), ""));
        *col = head;
        rest = tail;
    }
    let (start, end) = cols[0].split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    if cols[1].len() != 4 {
        return None;
    }
    Some(Mapping {
        start,
        end,
        perms: cols[1].to_string(),
        path: rest.trim().to_string(),
        rss_kib: 0,
        anonymous_kib: 0,
    })
}

/// `Key:   123 kB`.
fn parse_field(line: &str) -> Option<(&str, u64)> {
    let (key, rest) = line.split_once(':')?;
    let value = rest.trim().strip_suffix(" kB")?.trim().parse().ok()?;
    Some((key, value))
}

/// The mappings whose resident pages can be released without losing anything: backed by
/// a file (a path, not `[vdso]` and the like), not writable, no private page in them
/// (a relocated read-only segment holds copies that exist nowhere else), something
/// resident.
pub fn releasable(maps: &[Mapping]) -> impl Iterator<Item = &Mapping> {
    maps.iter().filter(|m| {
        m.path.starts_with('/')
            && m.perms.starts_with('r')
            && m.perms.as_bytes().get(1) == Some(&b'-')
            && m.anonymous_kib == 0
            && m.rss_kib > 0
    })
}

/// Releases the resident pages of every releasable mapping of this process.
pub fn release_file_pages() -> io::Result<Released> {
    let text = std::fs::read_to_string("/proc/self/smaps")?;
    let maps = parse_smaps(&text);
    let mut done = Released::default();
    for m in releasable(&maps) {
        // SAFETY: the range is a whole mapping of this process, read-only and backed by a
        // file with no private page: MADV_DONTNEED only unmaps page-cache pages, which
        // the next access maps again with the same contents. A mapping that changed since
        // the read (unmapped, remapped) makes madvise fail or release clean pages again.
        let rc = unsafe {
            libc::madvise(
                m.start as *mut libc::c_void,
                m.end - m.start,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            done.mappings += 1;
            done.kib += m.rss_kib;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0100000 r--p 00000000 fe:00 1234                       /usr/bin/vmpulse
Size:               1024 kB
Rss:                 300 kB
Anonymous:           120 kB
55d0c0100000-55d0c0900000 r-xp 00100000 fe:00 1234                       /usr/bin/vmpulse
Size:               8192 kB
Rss:                4700 kB
Anonymous:             0 kB
55d0c0900000-55d0c0a00000 rw-p 00900000 fe:00 1234                       /usr/bin/vmpulse
Rss:                  64 kB
Anonymous:            64 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Rss:                 900 kB
Anonymous:           900 kB
7f0000200000-7f0000300000 r-xp 00000000 fe:00 99                         /usr/lib/libcrypto.so.3
Rss:                1400 kB
Anonymous:             0 kB
7f0000300000-7f0000301000 r--p 00000000 fe:00 98                         /usr/lib/old.so (deleted)
Rss:                   4 kB
Anonymous:             0 kB
7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   8 kB
Anonymous:             0 kB
7f0000400000-7f0000401000 r--p 00000000 fe:00 97                         /usr/lib/cold.so
Rss:                   0 kB
Anonymous:             0 kB
";

    #[test]
    fn parses_every_mapping_with_its_sizes() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 8);
        assert_eq!(maps[1].start, 0x55d0c0100000);
        assert_eq!(maps[1].end, 0x55d0c0900000);
        assert_eq!(maps[1].perms, "r-xp");
        assert_eq!(maps[1].path, "/usr/bin/vmpulse");
        assert_eq!((maps[1].rss_kib, maps[1].anonymous_kib), (4700, 0));
        assert_eq!(maps[3].path, "");
        assert_eq!(maps[5].path, "/usr/lib/old.so (deleted)");
    }

    #[test]
    fn releases_only_clean_read_only_file_mappings() {
        let maps = parse_smaps(SMAPS);
        let paths: Vec<(&str, &str)> = releasable(&maps)
            .map(|m| (m.perms.as_str(), m.path.as_str()))
            .collect();
        // Not: the relocated r--p segment (private copies), the writable data, the
        // anonymous heap, [vdso], the mapping with nothing resident.
        assert_eq!(
            paths,
            vec![
                ("r-xp", "/usr/bin/vmpulse"),
                ("r-xp", "/usr/lib/libcrypto.so.3"),
                // A file replaced on disk (an upgrade) is still mapped: its pages come back.
                ("r--p", "/usr/lib/old.so (deleted)"),
            ]
        );
    }

    #[test]
    fn release_of_this_process_keeps_it_running() {
        let before = std::fs::read_to_string("/proc/self/smaps").map(|t| parse_smaps(&t));
        let Ok(before) = before else { return }; // not Linux with procfs: nothing to check
        let done = release_file_pages().expect("smaps readable");
        assert!(done.mappings > 0, "the test binary's code is file-backed");
        assert!(done.kib > 0);
        // Code runs again after its pages were released: the next calls fault them back.
        let after = parse_smaps(&std::fs::read_to_string("/proc/self/smaps").unwrap());
        assert!(after.len() >= before.len() / 2);
        assert_eq!(
            format!("{:?}", Released::default()),
            "Released { mappings: 0, kib: 0 }"
        );
    }
}
