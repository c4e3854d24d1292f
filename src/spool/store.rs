//! The spool directory: one lock file and numbered segment files.
//!
//! Records are appended to the newest segment (the head); a new head is
//! started when it passes `segment_bytes`. Replay reads records oldest first
//! and hands each out as a batch tagged with its segment; a segment is deleted
//! once it is read to the end, sealed, and every batch from it was
//! acknowledged (delivered, rejected, or given up). A crash before that
//! replays the whole segment again: at-least-once, which InfluxDB absorbs
//! because a point with the same series and timestamp is overwritten.
//!
//! On open, every segment is checked record by record: a torn or corrupt tail
//! is cut off and counted. Over `max_bytes`, the oldest segment is deleted and
//! its unread lines counted as dropped.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::record::{self, Decoded};
use super::{SpoolConfig, SpoolError};
use crate::model::{SpoolState, SpoolStats};

const LOCK_FILE: &str = "lock";
const SEGMENT_EXT: &str = "seg";
/// Repeated "spool full" warnings are at most this frequent.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// One segment file and what replay has done with it.
#[derive(Debug)]
struct Segment {
    id: u64,
    /// Valid bytes (a corrupt tail found at start is cut off).
    bytes: u64,
    lines: u64,
    /// Next record to read.
    read_pos: u64,
    lines_read: u64,
    lines_acked: u64,
    /// Batches read from this segment and not yet acknowledged.
    outstanding: usize,
    /// When the oldest unsent line of this segment was spooled (to within a batch).
    oldest_ms: Option<u64>,
}

pub struct Spool {
    dir: PathBuf,
    /// Held (flock) for the life of the process.
    _lock: File,
    max_bytes: u64,
    segment_bytes: u64,
    fsync_interval: Duration,
    segments: VecDeque<Segment>,
    next_id: u64,
    /// Open for appending; always the last segment.
    head: Option<File>,
    /// The segment file replay reads from.
    reader: Option<(u64, File)>,
    dirty: bool,
    last_sync: Instant,
    lines_replayed: u64,
    segments_dropped: u64,
    lines_dropped: u64,
    corrupt_skipped: u64,
    last_drop_log: Option<Instant>,
}

fn unusable(dir: &Path, e: std::io::Error) -> SpoolError {
    SpoolError::Unusable {
        dir: dir.display().to_string(),
        message: e.to_string(),
        transient: super::transient_io(&e),
    }
}

fn now_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Spool {
    /// Creates or opens the directory, takes its lock, checks every segment.
    pub fn open(cfg: &SpoolConfig) -> Result<Spool, SpoolError> {
        let dir = cfg.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| unusable(&dir, e))?;
        let lock = take_lock(&dir)?;
        let mut spool = Spool {
            dir,
            _lock: lock,
            max_bytes: cfg.max_bytes.max(1),
            // At least 8 segments fit the budget, so dropping one loses little.
            segment_bytes: (cfg.max_bytes / 8).clamp(4096, 16 << 20),
            fsync_interval: cfg.fsync_interval,
            segments: VecDeque::new(),
            next_id: 1,
            head: None,
            reader: None,
            dirty: false,
            last_sync: Instant::now(),
            lines_replayed: 0,
            segments_dropped: 0,
            lines_dropped: 0,
            corrupt_skipped: 0,
            last_drop_log: None,
        };
        spool.scan()?;
        Ok(spool)
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.{SEGMENT_EXT}"))
    }

    /// Loads every segment, cutting off torn or corrupt tails.
    fn scan(&mut self) -> Result<(), SpoolError> {
        let mut ids: Vec<u64> = std::fs::read_dir(&self.dir)
            .map_err(|e| unusable(&self.dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(&format!(".{SEGMENT_EXT}"))?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        for id in ids {
            let path = self.segment_path(id);
            let data = std::fs::read(&path).map_err(|e| unusable(&self.dir, e))?;
            let (seg, bad) = check_segment(id, &data);
            if bad {
                self.corrupt_skipped += 1;
                tracing::warn!(
                    "spool segment {} has a torn or corrupt tail after {} of {} bytes: skipped",
                    path.display(),
                    seg.bytes,
                    data.len()
                );
                let cut = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(seg.bytes));
                cut.map_err(|e| unusable(&self.dir, e))?;
            }
            self.next_id = id + 1;
            if seg.bytes == 0 {
                let _ = std::fs::remove_file(&path);
            } else {
                self.segments.push_back(seg);
            }
        }
        if !self.segments.is_empty() {
            tracing::info!(
                "spool {}: {} lines in {} segments to replay",
                self.dir.display(),
                self.lines(),
                self.segments.len()
            );
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lines(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| s.lines.saturating_sub(s.lines_acked))
            .sum()
    }

    fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Anything left to read back?
    pub fn has_unread(&self) -> bool {
        self.segments.iter().any(|s| s.read_pos < s.bytes)
    }

    /// Appends one batch as one record. Returns the lines dropped to stay
    /// within `max_bytes`. On error nothing was appended (a partial record
    /// is cut off, or its segment is closed so replay stops before it).
    pub fn append(&mut self, lines: &[String], now: SystemTime) -> std::io::Result<u64> {
        if lines.is_empty() {
            return Ok(0);
        }
        let rec = record::encode(lines, now_ms(now));
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.bytes >= self.segment_bytes);
        if self.head.is_none() || full {
            self.rotate()?;
        }
        let (Some(file), Some(seg)) = (self.head.as_mut(), self.segments.back_mut()) else {
            return Err(std::io::Error::other("spool head segment missing"));
        };
        if let Err(e) = file.write_all(&rec) {
            // A torn record must never be followed by good ones: cut it off, or
            // failing that, close this segment (its valid length is known).
            if file.set_len(seg.bytes).is_err() {
                self.head = None;
            }
            return Err(e);
        }
        seg.bytes += rec.len() as u64;
        seg.lines += lines.len() as u64;
        if seg.oldest_ms.is_none() {
            seg.oldest_ms = Some(now_ms(now));
        }
        self.dirty = true;
        Ok(self.enforce_budget())
    }

    /// Closes the head (synced) and starts a new segment file.
    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(old) = self.head.take() {
            if self.dirty {
                old.sync_data()?;
                self.dirty = false;
            }
        }
        let id = self.next_id;
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        self.next_id += 1;
        // The new name must survive a crash too.
        File::open(&self.dir)?.sync_all()?;
        self.segments.push_back(Segment {
            id,
            bytes: 0,
            lines: 0,
            read_pos: 0,
            lines_read: 0,
            lines_acked: 0,
            outstanding: 0,
            oldest_ms: None,
        });
        self.head = Some(file);
        Ok(())
    }

    /// Deletes the oldest segments until the spool fits `max_bytes`.
    fn enforce_budget(&mut self) -> u64 {
        let mut dropped = 0;
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            let Some(seg) = self.segments.pop_front() else {
                break;
            };
            let _ = std::fs::remove_file(self.segment_path(seg.id));
            if self.reader.as_ref().is_some_and(|(id, _)| *id == seg.id) {
                self.reader = None;
            }
            let lost = seg.lines.saturating_sub(seg.lines_read);
            dropped += lost;
            self.segments_dropped += 1;
            self.lines_dropped += lost;
        }
        if dropped > 0 {
            let now = Instant::now();
            if self
                .last_drop_log
                .is_none_or(|t| now.duration_since(t) >= DROP_LOG_EVERY)
            {
                self.last_drop_log = Some(now);
                tracing::warn!(
                    "spool {} reached its size limit ({} bytes, spool.max_bytes): deleted the oldest segments, {} lines dropped so far",
                    self.dir.display(),
                    self.max_bytes,
                    self.lines_dropped
                );
            }
        }
        dropped
    }

    /// The next record, oldest first: `(segment id, lines)`. Corrupt records
    /// (checked again here: disks rot) skip the rest of their segment.
    pub fn next_batch(&mut self) -> Option<(u64, Vec<String>)> {
        loop {
            let idx = self.segments.iter().position(|s| s.read_pos < s.bytes)?;
            let (id, pos) = (self.segments[idx].id, self.segments[idx].read_pos);
            match self.read_record(id, pos) {
                Some((size, lines, at_ms)) => {
                    let seg = &mut self.segments[idx];
                    seg.read_pos += size as u64;
                    seg.lines_read += lines.len() as u64;
                    seg.outstanding += 1;
                    seg.oldest_ms = Some(at_ms);
                    self.close_caught_up_head();
                    return Some((id, lines));
                }
                None => {
                    self.corrupt_skipped += 1;
                    let seg = &mut self.segments[idx];
                    tracing::warn!(
                        "spool segment {} unreadable after {} bytes: rest skipped",
                        seg.id,
                        seg.read_pos
                    );
                    seg.lines_read = seg.lines;
                    seg.read_pos = seg.bytes;
                    self.reap(id);
                }
            }
        }
    }

    /// When replay has read everything in the head, new appends go to a new
    /// segment so this one can be deleted once acknowledged.
    fn close_caught_up_head(&mut self) {
        if let Some(seg) = self.segments.back() {
            if self.head.is_some() && seg.read_pos >= seg.bytes {
                if self.dirty {
                    self.head.as_ref().map(File::sync_data);
                    self.dirty = false;
                }
                self.head = None;
            }
        }
    }

    fn read_record(&mut self, id: u64, pos: u64) -> Option<(usize, Vec<String>, u64)> {
        if self.reader.as_ref().is_none_or(|(rid, _)| *rid != id) {
            self.reader = Some((id, File::open(self.segment_path(id)).ok()?));
        }
        let (_, file) = self.reader.as_mut()?;
        file.seek(SeekFrom::Start(pos)).ok()?;
        let mut header = [0u8; record::HEADER];
        file.read_exact(&mut header).ok()?;
        let mut buf = vec![0u8; record::total_size(&header)];
        buf[..record::HEADER].copy_from_slice(&header);
        file.read_exact(&mut buf[record::HEADER..]).ok()?;
        match record::decode(&buf) {
            Decoded::Record {
                size,
                lines,
                spooled_at_ms,
            } => Some((size, lines, spooled_at_ms)),
            Decoded::Torn | Decoded::Corrupt => None,
        }
    }

    /// A batch from segment `id` was split in two: one more to acknowledge.
    pub fn add_outstanding(&mut self, id: u64) {
        if let Some(seg) = self.segments.iter_mut().find(|s| s.id == id) {
            seg.outstanding += 1;
        }
    }

    /// A batch from segment `id` is done with (`delivered` lines written).
    pub fn ack(&mut self, id: u64, lines: usize, delivered: usize) {
        self.lines_replayed += delivered as u64;
        if let Some(seg) = self.segments.iter_mut().find(|s| s.id == id) {
            seg.outstanding = seg.outstanding.saturating_sub(1);
            seg.lines_acked += lines as u64;
        }
        self.reap(id);
    }

    /// Deletes segment `id` once it is closed, read and acknowledged.
    fn reap(&mut self, id: u64) {
        let Some(idx) = self.segments.iter().position(|s| s.id == id) else {
            return;
        };
        let seg = &self.segments[idx];
        let is_head = idx + 1 == self.segments.len() && self.head.is_some();
        if is_head || seg.read_pos < seg.bytes || seg.outstanding > 0 {
            return;
        }
        if self.reader.as_ref().is_some_and(|(rid, _)| *rid == id) {
            self.reader = None;
        }
        let _ = std::fs::remove_file(self.segment_path(id));
        self.segments.remove(idx);
    }

    /// When the next fsync is due, if anything waits for one.
    pub fn sync_due(&self) -> Option<Instant> {
        (self.dirty && self.head.is_some()).then_some(self.last_sync + self.fsync_interval)
    }

    /// A handle to fsync in the background when one is due (the caller runs
    /// `sync_data` off the async threads).
    pub fn take_sync(&mut self, now: Instant) -> Option<File> {
        if self.sync_due().is_some_and(|t| t <= now) {
            self.dirty = false;
            self.last_sync = now;
            return self.head.as_ref().and_then(|f| f.try_clone().ok());
        }
        None
    }

    /// fsync now (shutdown).
    pub fn sync_now(&mut self) -> std::io::Result<()> {
        if let Some(f) = &self.head {
            f.sync_data()?;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    pub fn stats(&self, state: SpoolState) -> SpoolStats {
        let oldest = self
            .segments
            .iter()
            .find(|s| s.lines > s.lines_acked)
            .and_then(|s| s.oldest_ms)
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
        SpoolStats {
            dir: self.dir.display().to_string(),
            state,
            bytes: self.bytes(),
            lines: self.lines(),
            oldest,
            lines_replayed: self.lines_replayed,
            segments_dropped: self.segments_dropped,
            corrupt_skipped: self.corrupt_skipped,
        }
    }

    /// Lines deleted unsent to stay within `max_bytes` (also in `lines_dropped`).
    pub fn lines_dropped(&self) -> u64 {
        self.lines_dropped
    }
}

/// Walks a segment's records: the valid prefix, and whether a bad tail follows.
fn check_segment(id: u64, data: &[u8]) -> (Segment, bool) {
    let mut seg = Segment {
        id,
        bytes: 0,
        lines: 0,
        read_pos: 0,
        lines_read: 0,
        lines_acked: 0,
        outstanding: 0,
        oldest_ms: None,
    };
    let mut pos = 0usize;
    while pos < data.len() {
        match record::decode(&data[pos..]) {
            Decoded::Record {
                size,
                lines,
                spooled_at_ms,
            } => {
                pos += size;
                seg.lines += lines.len() as u64;
                seg.oldest_ms.get_or_insert(spooled_at_ms);
            }
            Decoded::Torn | Decoded::Corrupt => break,
        }
    }
    seg.bytes = pos as u64;
    (seg, pos < data.len())
}

/// Takes the directory's lock (flock, released by the kernel when the process
/// dies) and writes our pid into it; names the holder's pid when taken.
fn take_lock(dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| unusable(dir, e))?;
    // SAFETY: flock(2) on a descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(SpoolError::Locked {
                dir: dir.display().to_string(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.into()
                },
            });
        }
        return Err(unusable(dir, err));
    }
    // Also proves the directory is writable and the disk not full.
    let wrote = file
        .set_len(0)
        .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .and_then(|_| file.sync_data());
    wrote.map_err(|e| unusable(dir, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, max_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            max_bytes,
            ..SpoolConfig::with_dir(dir.to_path_buf())
        }
    }

    fn batch(from: usize, n: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("m v={i}i {i}")).collect()
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == SEGMENT_EXT))
            .collect()
    }

    fn drain(s: &mut Spool) -> Vec<String> {
        let mut out = Vec::new();
        while let Some((id, lines)) = s.next_batch() {
            s.ack(id, lines.len(), lines.len());
            out.extend(lines);
        }
        out
    }

    #[test]
    fn replays_oldest_first_and_deletes_acknowledged_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
        for i in 0..5 {
            assert_eq!(
                s.append(&batch(i * 10, 10), SystemTime::now())
                    .expect("append"),
                0
            );
        }
        let st = s.stats(SpoolState::Active);
        assert_eq!(st.lines, 50);
        assert!(st.oldest.is_some());
        assert_eq!(drain(&mut s), batch(0, 50));
        let st = s.stats(SpoolState::Active);
        assert_eq!((st.lines, st.bytes, st.lines_replayed), (0, 0, 50));
        // Everything acknowledged: no segment file is left behind.
        s.append(&batch(50, 1), SystemTime::now()).expect("append");
        assert_eq!(drain(&mut s), batch(50, 1));
        let files = segment_files(dir.path());
        assert!(files.is_empty(), "{files:?}");
    }

    #[test]
    fn unacknowledged_batches_come_back_after_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
            s.append(&batch(0, 3), SystemTime::now()).expect("append");
            s.append(&batch(3, 3), SystemTime::now()).expect("append");
            let (_, first) = s.next_batch().expect("a batch");
            assert_eq!(first, batch(0, 3));
            // Crash here: nothing acknowledged.
        }
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("reopen");
        assert_eq!(s.stats(SpoolState::Active).lines, 6);
        assert_eq!(drain(&mut s), batch(0, 6));
    }

    #[test]
    fn torn_and_corrupt_tails_are_cut_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
            s.append(&batch(0, 4), SystemTime::now()).expect("append");
            s.append(&batch(4, 4), SystemTime::now()).expect("append");
        }
        let seg = segment_files(dir.path()).pop().expect("a segment");
        let len = std::fs::metadata(&seg).expect("stat").len();
        // Torn: the second record loses its last 5 bytes.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .and_then(|f| f.set_len(len - 5))
            .expect("truncate");
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("reopen");
        let st = s.stats(SpoolState::Active);
        assert_eq!((st.lines, st.corrupt_skipped), (4, 1));
        assert_eq!(drain(&mut s), batch(0, 4));
        drop(s);
        // Garbage appended to a fresh segment: cut, counted, never sent.
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("reopen");
        s.append(&batch(8, 2), SystemTime::now()).expect("append");
        drop(s);
        let seg = segment_files(dir.path()).pop().expect("a segment");
        let mut f = OpenOptions::new().append(true).open(&seg).expect("open");
        f.write_all(b"\x05\x00\x00\x00garbage-not-a-record")
            .expect("write");
        drop(f);
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("reopen");
        assert_eq!(s.stats(SpoolState::Active).corrupt_skipped, 1);
        assert_eq!(drain(&mut s), batch(8, 2));
    }

    #[test]
    fn over_budget_drops_exactly_the_oldest_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Budget 64 KiB: segments of 8 KiB.
        let mut s = Spool::open(&cfg(dir.path(), 64 << 10)).expect("open");
        let mut dropped = 0;
        for i in 0..400 {
            dropped += s
                .append(&batch(i * 20, 20), SystemTime::now())
                .expect("append");
        }
        let st = s.stats(SpoolState::Active);
        assert!(dropped > 0);
        assert_eq!(s.lines_dropped(), dropped);
        assert!(st.segments_dropped > 0);
        assert!(st.bytes <= 64 << 10, "{}", st.bytes);
        // What is left is exactly the newest lines, in order, with no gap.
        let left = drain(&mut s);
        assert_eq!(left.len() as u64 + dropped, 8000);
        assert_eq!(left, batch(dropped as usize, left.len()));
    }

    #[test]
    fn second_process_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
        // flock locks belong to the open file description: a second open
        // in the same process conflicts just as another process would.
        match Spool::open(&cfg(dir.path(), 1 << 20)) {
            Err(e @ SpoolError::Locked { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("pid {}", std::process::id())),
                    "{msg}"
                );
                assert!(msg.contains("spool.dir"), "{msg}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("second open succeeded"),
        }
    }

    #[test]
    fn unusable_directory_names_the_setting() {
        match Spool::open(&cfg(Path::new("/proc/vmpulse-spool"), 1 << 20)) {
            Err(e @ SpoolError::Unusable { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("/proc/vmpulse-spool") && msg.contains("spool.dir"),
                    "{msg}"
                );
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened a spool under /proc"),
        }
    }

    #[test]
    fn fsync_is_due_after_the_interval_only_when_dirty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
        assert_eq!(s.sync_due(), None);
        s.append(&batch(0, 1), SystemTime::now()).expect("append");
        let due = s.sync_due().expect("due");
        assert!(s.take_sync(due - Duration::from_millis(1)).is_none());
        assert!(s.take_sync(due).is_some());
        assert_eq!(s.sync_due(), None);
    }
}
