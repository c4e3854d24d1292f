//! The spool directory: one lock file and numbered segment files.
//!
//! Records are appended to the newest segment (the head); a new head is
//! started when it passes `segment_bytes`. Every segment keeps an index of
//! its records (offset, size, lines), built as they are appended or, at
//! open, by checking the file record by record. Replay reads records oldest
//! first and hands each out as a batch tagged with its segment; a segment is
//! deleted once it is read to the end, sealed, and every batch from it was
//! acknowledged (delivered, rejected, or given up). A crash before that
//! replays the whole segment again: at-least-once, which InfluxDB absorbs
//! because a point with the same series and timestamp is overwritten.
//!
//! What can go wrong, and what is counted:
//! - A record whose checksum fails (on open or on replay) is skipped alone
//!   and counted in `corrupt_skipped`; on replay its lines (known from the
//!   index) are added to `lines_dropped`. A torn tail is cut off at open.
//! - An I/O error (EMFILE, EIO, ENOMEM...) is not corruption: the call
//!   fails, nothing is skipped, and the caller tries again later.
//! - Over `max_bytes`, the oldest segment is deleted and its unread lines
//!   counted as dropped; so are the lines of a segment file that vanished, or
//!   of a directory deleted or replaced under us (noticed at the next append
//!   or read, then made again).
//!
//! `lines()` is every line taken in (appended, or found at open:
//! `lines_recovered`) and not yet acknowledged or dropped, including lines
//! read back and still on their way to InfluxDB. fsyncs are handed out as
//! [`SyncJob`]s so that the caller can run them off the async threads.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::fs::{Fs, Identity, Open, RealFs, LOCK_FILE};
use super::record::{self, Decoded};
use super::{SpoolConfig, SpoolError};
use crate::model::{SpoolState, SpoolStats};

const SEGMENT_EXT: &str = "seg";
/// Repeated "spool full" warnings are at most this frequent.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

/// Where one record sits in its segment.
#[derive(Debug, Clone, Copy)]
struct Rec {
    pos: u64,
    size: u32,
    lines: u32,
    spooled_at_ms: u64,
}

/// One segment file and what replay has done with it.
#[derive(Debug)]
struct Segment {
    id: u64,
    /// Bytes up to the end of the last good record.
    bytes: u64,
    /// Lines in the indexed records.
    lines: u64,
    /// Records not read yet, oldest first.
    unread: VecDeque<Rec>,
    lines_read: u64,
    lines_acked: u64,
    /// Batches read from this segment and not yet acknowledged.
    outstanding: usize,
}

impl Segment {
    fn new(id: u64) -> Self {
        Self {
            id,
            bytes: 0,
            lines: 0,
            unread: VecDeque::new(),
            lines_read: 0,
            lines_acked: 0,
            outstanding: 0,
        }
    }

    fn unread_lines(&self) -> u64 {
        self.lines - self.lines_read
    }

    /// Read, not yet acknowledged: these leave with their acks, not with the file.
    fn in_flight(&self) -> u64 {
        self.lines_read.saturating_sub(self.lines_acked)
    }

    fn push(&mut self, rec: Rec) {
        self.bytes = rec.pos + u64::from(rec.size);
        self.lines += u64::from(rec.lines);
        self.unread.push_back(rec);
    }
}

/// Files to fsync, taken out of the spool so that a blocking thread can run it.
pub struct SyncJob {
    fs: Arc<dyn Fs>,
    files: Vec<File>,
    /// A directory whose new entries must reach the disk.
    dir: Option<PathBuf>,
}

impl SyncJob {
    /// Blocks: run it off the async threads.
    pub fn run(self) -> std::io::Result<()> {
        for f in &self.files {
            self.fs.sync(f)?;
        }
        if let Some(dir) = &self.dir {
            let d = self.fs.open(dir, Open::Read)?;
            self.fs.sync(&d)?;
        }
        Ok(())
    }
}

pub struct Spool {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// The directory we locked: another one in its place is noticed.
    dir_id: Identity,
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
    /// Appended since the head's last fsync.
    dirty: bool,
    /// Closed heads waiting for their fsync, and whether the directory needs one.
    to_sync: Vec<File>,
    dir_dirty: bool,
    last_sync: Instant,
    /// Read lines of segments deleted before their acknowledgement came back.
    orphans: u64,
    lines_replayed: u64,
    lines_recovered: u64,
    segments_dropped: u64,
    lines_dropped: u64,
    corrupt_skipped: u64,
    last_drop_log: Option<Instant>,
}

fn unusable(dir: &Path, e: std::io::Error) -> SpoolError {
    unusable_with(dir, &e, e.to_string())
}

/// [`unusable`] with a message of its own; `e` still says whether it may clear.
fn unusable_with(dir: &Path, e: &std::io::Error, message: String) -> SpoolError {
    SpoolError::Unusable {
        dir: dir.display().to_string(),
        message,
        transient: super::transient_io(e),
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
        Self::open_with(cfg, Arc::new(RealFs))
    }

    /// [`Spool::open`] over any file layer (tests inject faults).
    pub fn open_with(cfg: &SpoolConfig, fs: Arc<dyn Fs>) -> Result<Spool, SpoolError> {
        let dir = cfg.dir.clone();
        let (lock, dir_id) = lock_dir(fs.as_ref(), &dir)?;
        let mut spool = Spool {
            fs,
            dir,
            dir_id,
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
            to_sync: Vec::new(),
            dir_dirty: false,
            last_sync: Instant::now(),
            orphans: 0,
            lines_replayed: 0,
            lines_recovered: 0,
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

    /// Loads every segment, cutting off torn tails and skipping corrupt records.
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
        let before = self.lines();
        for id in ids {
            self.load_segment(id)?;
        }
        let found = self.lines() - before;
        self.lines_recovered += found;
        if found > 0 {
            tracing::info!(
                "spool {}: {found} lines in {} segments to replay",
                self.dir.display(),
                self.segments.len()
            );
        }
        Ok(())
    }

    fn load_segment(&mut self, id: u64) -> Result<(), SpoolError> {
        let path = self.segment_path(id);
        let data = self
            .fs
            .open(&path, Open::Read)
            .and_then(|mut f| self.fs.read_all(&mut f))
            .map_err(|e| {
                unusable_with(
                    &self.dir,
                    &e,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
        let (seg, bad) = check_segment(id, &data);
        if bad > 0 {
            self.corrupt_skipped += bad;
            tracing::warn!(
                "spool segment {} has a torn or corrupt tail or records ({bad} skipped); {} lines in {} good bytes of {} kept",
                path.display(),
                seg.lines,
                seg.bytes,
                data.len()
            );
        }
        if seg.bytes < data.len() as u64 {
            let cut = self
                .fs
                .open(&path, Open::Write)
                .and_then(|f| f.set_len(seg.bytes));
            cut.map_err(|e| unusable(&self.dir, e))?;
        }
        self.next_id = self.next_id.max(id + 1);
        if seg.lines == 0 {
            let _ = std::fs::remove_file(&path);
        } else {
            self.segments.push_back(seg);
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lines taken in and not yet acknowledged or dropped.
    pub fn lines(&self) -> u64 {
        let kept: u64 = self
            .segments
            .iter()
            .map(|s| s.lines.saturating_sub(s.lines_acked))
            .sum();
        kept + self.orphans
    }

    fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Anything left to read back?
    pub fn has_unread(&self) -> bool {
        self.segments.iter().any(|s| !s.unread.is_empty())
    }

    /// Appends one batch as one record (dropping the oldest segments to stay
    /// within `max_bytes`: see [`Spool::lines_dropped`]). On error nothing
    /// was appended (a partial record is cut off, or its segment is closed).
    pub fn append(&mut self, lines: &[String], now: SystemTime) -> std::io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.verify()?;
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
        if let Err(e) = self.fs.write_all(file, &rec) {
            // A torn record must never be followed by good ones: cut it off, or
            // failing that, close this segment (its valid length is known).
            if file.set_len(seg.bytes).is_err() {
                self.head = None;
            }
            return Err(e);
        }
        seg.push(Rec {
            pos: seg.bytes,
            size: rec.len() as u32,
            lines: lines.len() as u32,
            spooled_at_ms: now_ms(now),
        });
        self.dirty = true;
        self.enforce_budget();
        Ok(())
    }

    /// Notices a directory deleted or replaced, or a head file deleted: the
    /// lines that went with them are counted as dropped and the directory
    /// is made (and locked) again.
    fn verify(&mut self) -> std::io::Result<()> {
        let now = self.fs.identity(&self.dir);
        let why = match &now {
            Ok(id) if *id == self.dir_id => None,
            Ok(_) => Some("was replaced by another directory"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("was deleted"),
            // Cannot tell (stat takes no descriptor, so rarely): carry on.
            Err(_) => None,
        };
        if let Some(why) = why {
            let lost = self.forget_all();
            tracing::error!(
                "spool directory {} {why}: {lost} lines in it counted as dropped; making it again",
                self.dir.display()
            );
            let (lock, id) =
                lock_dir(self.fs.as_ref(), &self.dir).map_err(std::io::Error::other)?;
            self._lock = lock;
            self.dir_id = id;
            self.scan().map_err(std::io::Error::other)?;
            return Ok(());
        }
        let head_gone = self
            .head
            .as_ref()
            .is_some_and(|f| f.metadata().is_ok_and(|m| m.nlink() == 0));
        if head_gone {
            if let Some(idx) = self.segments.len().checked_sub(1) {
                self.lose_segment(idx, "was deleted");
            }
        }
        Ok(())
    }

    /// Drops every segment from the books; returns the unread lines lost.
    fn forget_all(&mut self) -> u64 {
        let mut lost = 0;
        while !self.segments.is_empty() {
            lost += self.segments[0].unread_lines();
            self.lose_segment(0, "");
        }
        lost
    }

    /// Segment `idx` is gone: its unread lines are dropped, read ones await their acks.
    fn lose_segment(&mut self, idx: usize, why: &str) {
        let Some(seg) = self.segments.remove(idx) else {
            return;
        };
        let lost = seg.unread_lines();
        self.orphans += seg.in_flight();
        self.lines_dropped += lost;
        if idx == self.segments.len() {
            self.head = None;
        }
        if self.reader.as_ref().is_some_and(|(id, _)| *id == seg.id) {
            self.reader = None;
        }
        if !why.is_empty() {
            tracing::error!(
                "spool segment {} {why}: its {lost} unsent lines counted as dropped",
                self.segment_path(seg.id).display()
            );
        }
    }

    /// Closes the head (its fsync handed to the next [`SyncJob`]) and starts a
    /// new segment file.
    fn rotate(&mut self) -> std::io::Result<()> {
        if let Some(old) = self.head.take() {
            if self.dirty {
                self.to_sync.push(old);
                self.dirty = false;
            }
        }
        let id = self.next_id;
        let file = self.fs.open(&self.segment_path(id), Open::AppendNew)?;
        self.next_id += 1;
        // The new name must survive a crash too.
        self.dir_dirty = true;
        self.segments.push_back(Segment::new(id));
        self.head = Some(file);
        Ok(())
    }

    /// Deletes the oldest segments until the spool fits `max_bytes`.
    fn enforce_budget(&mut self) {
        let before = self.lines_dropped;
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            if let Some(seg) = self.segments.front() {
                let _ = std::fs::remove_file(self.segment_path(seg.id));
            }
            self.lose_segment(0, "");
            self.segments_dropped += 1;
        }
        if self.lines_dropped > before {
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
    }

    /// The next record, oldest first: `(segment id, lines)`. A record whose
    /// checksum fails is skipped and its lines counted as dropped; an I/O
    /// error is returned with nothing skipped (call again later).
    pub fn next_batch(&mut self) -> std::io::Result<Option<(u64, Vec<String>)>> {
        self.verify()?;
        loop {
            let Some(idx) = self.segments.iter().position(|s| !s.unread.is_empty()) else {
                return Ok(None);
            };
            let id = self.segments[idx].id;
            let Some(rec) = self.segments[idx].unread.front().copied() else {
                continue;
            };
            let bytes = match self.read_record(id, rec) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.lose_segment(idx, "was deleted");
                    continue;
                }
                // Shorter than we wrote it: someone cut the file; the record is gone.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Vec::new(),
                Err(e) => {
                    self.reader = None;
                    return Err(e);
                }
            };
            let seg = &mut self.segments[idx];
            seg.unread.pop_front();
            seg.lines_read += u64::from(rec.lines);
            match record::decode(&bytes) {
                Decoded::Record { lines, .. } if lines.len() == rec.lines as usize => {
                    seg.outstanding += 1;
                    self.close_caught_up_head();
                    return Ok(Some((id, lines)));
                }
                _ => self.skip_corrupt(idx, rec),
            }
        }
    }

    /// A record that fails its checksum on replay: only it is skipped, counted.
    fn skip_corrupt(&mut self, idx: usize, rec: Rec) {
        let seg = &mut self.segments[idx];
        let id = seg.id;
        seg.lines_acked += u64::from(rec.lines);
        self.corrupt_skipped += 1;
        self.lines_dropped += u64::from(rec.lines);
        tracing::warn!(
            "spool segment {} record at byte {} fails its checksum: its {} lines skipped and counted as dropped",
            self.segment_path(id).display(),
            rec.pos,
            rec.lines
        );
        self.reap(id);
    }

    /// When replay has read everything in the head, new appends go to a new
    /// segment so this one can be deleted once acknowledged.
    fn close_caught_up_head(&mut self) {
        if let Some(seg) = self.segments.back() {
            if self.head.is_some() && seg.unread.is_empty() {
                if let Some(old) = self.head.take() {
                    if self.dirty {
                        self.to_sync.push(old);
                    }
                }
                self.dirty = false;
            }
        }
    }

    fn read_record(&mut self, id: u64, rec: Rec) -> std::io::Result<Vec<u8>> {
        if self.reader.as_ref().is_none_or(|(rid, _)| *rid != id) {
            self.reader = None;
            let f = self.fs.open(&self.segment_path(id), Open::Read)?;
            self.reader = Some((id, f));
        }
        let Some((_, file)) = self.reader.as_ref() else {
            return Err(std::io::Error::other("spool reader missing"));
        };
        let mut buf = vec![0u8; rec.size as usize];
        self.fs.read_at(file, &mut buf, rec.pos)?;
        Ok(buf)
    }

    /// A batch from segment `id` was split in two: one more to acknowledge.
    pub fn add_outstanding(&mut self, id: u64) {
        if let Some(seg) = self.segments.iter_mut().find(|s| s.id == id) {
            seg.outstanding += 1;
        }
    }

    /// A batch from segment `id` is done with (`delivered` lines written; the
    /// caller counts the rest as rejected or dropped).
    pub fn ack(&mut self, id: u64, lines: usize, delivered: usize) {
        self.lines_replayed += delivered as u64;
        match self.segments.iter_mut().find(|s| s.id == id) {
            Some(seg) => {
                seg.outstanding = seg.outstanding.saturating_sub(1);
                seg.lines_acked += lines as u64;
            }
            None => self.orphans = self.orphans.saturating_sub(lines as u64),
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
        if is_head || !seg.unread.is_empty() || seg.outstanding > 0 {
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
        let waiting = (self.dirty && self.head.is_some()) || !self.to_sync.is_empty();
        (waiting || self.dir_dirty).then_some(self.last_sync + self.fsync_interval)
    }

    /// The fsync work due by `now`, to run off the async threads. Under
    /// EMFILE the head cannot be duplicated: it stays dirty for the next turn.
    pub fn take_sync(&mut self, now: Instant) -> Option<SyncJob> {
        if self.sync_due().is_none_or(|t| t > now) {
            return None;
        }
        self.last_sync = now;
        let mut files = std::mem::take(&mut self.to_sync);
        if self.dirty {
            if let Some(dup) = self.head.as_ref().and_then(|f| f.try_clone().ok()) {
                files.push(dup);
                self.dirty = false;
            }
        }
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        Some(SyncJob {
            fs: self.fs.clone(),
            files,
            dir,
        })
    }

    /// Everything to the disk now (shutdown).
    pub fn sync_now(&mut self) -> std::io::Result<()> {
        let mut files = std::mem::take(&mut self.to_sync);
        if let Some(dup) = self.head.as_ref().map(File::try_clone).transpose()? {
            files.push(dup);
        }
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        self.dirty = false;
        self.last_sync = Instant::now();
        SyncJob {
            fs: self.fs.clone(),
            files,
            dir,
        }
        .run()
    }

    pub fn stats(&self, state: SpoolState) -> SpoolStats {
        let oldest = self
            .segments
            .iter()
            .find_map(|s| s.unread.front())
            .map(|r| UNIX_EPOCH + Duration::from_millis(r.spooled_at_ms));
        SpoolStats {
            dir: self.dir.display().to_string(),
            state,
            bytes: self.bytes(),
            lines: self.lines(),
            oldest,
            lines_replayed: self.lines_replayed,
            segments_dropped: self.segments_dropped,
            corrupt_skipped: self.corrupt_skipped,
            lines_recovered: self.lines_recovered,
            lines_dropped: self.lines_dropped,
        }
    }

    /// Lines that left the spool unsent: size limit, corrupt records, files
    /// or directory deleted (the writer adds them to its `lines_dropped`).
    pub fn lines_dropped(&self) -> u64 {
        self.lines_dropped
    }
}

/// Walks a segment's records: the index of good ones (a bad record in the
/// middle is skipped by finding the next good one), and how many were bad.
fn check_segment(id: u64, data: &[u8]) -> (Segment, u64) {
    let mut seg = Segment::new(id);
    let mut bad = 0;
    let mut pos = 0usize;
    while pos < data.len() {
        match record::decode(&data[pos..]) {
            Decoded::Record {
                size,
                lines,
                spooled_at_ms,
            } => {
                seg.push(Rec {
                    pos: pos as u64,
                    size: size as u32,
                    lines: lines.len() as u32,
                    spooled_at_ms,
                });
                pos += size;
            }
            Decoded::Torn | Decoded::Corrupt => {
                bad += 1;
                match record::resync(data, pos) {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    (seg, bad)
}

/// Makes the directory (0700) and takes its lock; returns the lock and the
/// directory's identity.
fn lock_dir(fs: &dyn Fs, dir: &Path) -> Result<(File, Identity), SpoolError> {
    fs.create_dir(dir).map_err(|e| unusable(dir, e))?;
    let lock = take_lock(fs, dir)?;
    let id = fs.identity(dir).map_err(|e| unusable(dir, e))?;
    Ok((lock, id))
}

/// Takes the directory's lock (flock, released by the kernel when the process
/// dies) and writes our pid into it; names the holder's pid when taken.
fn take_lock(fs: &dyn Fs, dir: &Path) -> Result<File, SpoolError> {
    let path = dir.join(LOCK_FILE);
    let mut file = fs
        .open(&path, Open::ReadWriteCreate)
        .map_err(|e| unusable(dir, e))?;
    // SAFETY: flock(2) on a descriptor we own; no memory is shared.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut pid = fs.read_all(&mut file).unwrap_or_default();
            pid.retain(|b| b.is_ascii_digit());
            let pid = String::from_utf8_lossy(&pid).into_owned();
            return Err(SpoolError::Locked {
                dir: dir.display().to_string(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid
                },
            });
        }
        return Err(unusable(dir, err));
    }
    // Also proves the directory is writable and the disk not full.
    let pid = format!("{}\n", std::process::id());
    let wrote = file
        .set_len(0)
        .and_then(|_| fs.write_all(&mut file, pid.as_bytes()))
        .and_then(|_| fs.sync(&file));
    wrote.map_err(|e| unusable(dir, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::fs::{Faults, Op};
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

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
        while let Some((id, lines)) = s.next_batch().expect("read") {
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
            s.append(&batch(i * 10, 10), SystemTime::now())
                .expect("append");
        }
        assert_eq!(s.lines_dropped(), 0);
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
            let (_, first) = s.next_batch().expect("read").expect("a batch");
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
        std::fs::OpenOptions::new()
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
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open");
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
        for i in 0..400 {
            s.append(&batch(i * 20, 20), SystemTime::now())
                .expect("append");
        }
        let st = s.stats(SpoolState::Active);
        let dropped = s.lines_dropped();
        assert!(dropped > 0);
        assert_eq!(st.lines + dropped, 8000);
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
        s.take_sync(due).expect("a job").run().expect("fsync");
        assert_eq!(s.sync_due(), None);
    }

    /// Three records, the middle one's length damaged: before the checksum
    /// covered the length this read as a torn tail and the third record was
    /// cut off unsent. Now only the middle record is skipped, and counted.
    #[test]
    fn a_bad_length_mid_segment_skips_only_that_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
            for i in 0..3 {
                s.append(&batch(i * 4, 4), SystemTime::now())
                    .expect("append");
            }
        }
        let seg = segment_files(dir.path()).pop().expect("a segment");
        let mut data = std::fs::read(&seg).expect("read");
        let first = record::encode(&batch(0, 4), 0).len();
        // The second record's length now points far past the end of the file.
        data[first + 4..first + 8].copy_from_slice(&(1u32 << 20).to_le_bytes());
        std::fs::write(&seg, &data).expect("write");
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("reopen");
        let st = s.stats(SpoolState::Active);
        assert_eq!(
            (st.lines, st.corrupt_skipped, st.lines_recovered),
            (8, 1, 8)
        );
        let mut want = batch(0, 4);
        want.extend(batch(8, 4));
        assert_eq!(drain(&mut s), want);
    }

    /// A record that rots after it was written fails its checksum on
    /// replay: it alone is skipped and its lines counted as dropped.
    #[test]
    fn a_checksum_failure_on_replay_counts_the_record_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
        for i in 0..3 {
            s.append(&batch(i * 5, 5), SystemTime::now())
                .expect("append");
        }
        let seg = segment_files(dir.path()).pop().expect("a segment");
        let mut data = std::fs::read(&seg).expect("read");
        let first = record::encode(&batch(0, 5), 0).len();
        data[first + record::HEADER + 2] ^= 0x20;
        std::fs::write(&seg, &data).expect("write");
        let mut want = batch(0, 5);
        want.extend(batch(10, 5));
        assert_eq!(drain(&mut s), want);
        let st = s.stats(SpoolState::Active);
        assert_eq!((st.corrupt_skipped, s.lines_dropped(), st.lines), (1, 5, 0));
    }

    /// Before the fix any error while opening or reading a segment (EMFILE
    /// under an fd flood, EIO) read as corruption: the rest of the segment
    /// was skipped and deleted uncounted. Now the call fails, nothing is
    /// skipped, and the next try reads every line.
    #[test]
    fn io_errors_on_replay_are_not_corruption() {
        let dir = tempfile::tempdir().expect("tempdir");
        let faults = Faults::new();
        let mut s =
            Spool::open_with(&cfg(dir.path(), 1 << 20), Arc::new(faults.clone())).expect("open");
        for i in 0..4 {
            s.append(&batch(i * 3, 3), SystemTime::now())
                .expect("append");
        }
        let (id, first) = s.next_batch().expect("read").expect("a batch");
        s.ack(id, first.len(), first.len());
        for (op, errno) in [
            (Op::Read, libc::EIO),
            (Op::Open, libc::EMFILE),
            (Op::Read, libc::ENOMEM),
        ] {
            faults.fail(op, errno, 1);
            if op == Op::Open {
                // Force a fresh open of the segment.
                s.reader = None;
            }
            let e = s.next_batch().expect_err("fails");
            assert_eq!(e.raw_os_error(), Some(errno));
            let st = s.stats(SpoolState::Active);
            assert_eq!((st.lines, st.corrupt_skipped, s.lines_dropped()), (9, 0, 0));
        }
        let mut got = first;
        got.extend(drain(&mut s));
        assert_eq!(got, batch(0, 12));
        assert!(segment_files(dir.path()).is_empty(), "all acknowledged");
    }

    /// An append to a segment of a deleted directory used to go to an
    /// unlinked file. Now the deletion is noticed, the lines that went with
    /// it are counted, and the directory is made again (0700).
    #[test]
    fn a_deleted_directory_is_noticed_and_made_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool_dir = dir.path().join("spool");
        let mut s = Spool::open(&cfg(&spool_dir, 1 << 20)).expect("open");
        s.append(&batch(0, 7), SystemTime::now()).expect("append");
        std::fs::remove_dir_all(&spool_dir).expect("rm");
        s.append(&batch(7, 2), SystemTime::now()).expect("append");
        let st = s.stats(SpoolState::Active);
        assert_eq!((s.lines_dropped(), st.lines), (7, 2));
        assert_eq!(
            segment_files(&spool_dir).len(),
            1,
            "appends go to the new directory"
        );
        let mode = std::fs::metadata(&spool_dir)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(drain(&mut s), batch(7, 2));
        // A second process still cannot take the remade directory.
        assert!(matches!(
            Spool::open(&cfg(&spool_dir, 1 << 20)),
            Err(SpoolError::Locked { .. })
        ));
    }

    #[test]
    fn directory_and_files_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool_dir = dir.path().join("spool");
        let mut s = Spool::open(&cfg(&spool_dir, 1 << 20)).expect("open");
        s.append(&batch(0, 1), SystemTime::now()).expect("append");
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&spool_dir), 0o700);
        assert_eq!(mode(&spool_dir.join(LOCK_FILE)), 0o600);
        for seg in segment_files(&spool_dir) {
            assert_eq!(mode(&seg), 0o600);
        }
    }

    /// Segments written by an older vmpulse (record version 1) replay.
    #[test]
    fn version_1_segments_from_an_older_vmpulse_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path()).expect("mkdir");
        let data = [
            record::encode_v1(&batch(0, 3), 5),
            record::encode_v1(&batch(3, 2), 5),
        ]
        .concat();
        std::fs::write(dir.path().join(format!("{:020}.seg", 7)), data).expect("write");
        let mut s = Spool::open(&cfg(dir.path(), 1 << 20)).expect("open");
        assert_eq!(s.stats(SpoolState::Active).lines_recovered, 5);
        s.append(&batch(5, 1), SystemTime::now()).expect("append");
        assert_eq!(drain(&mut s), batch(0, 6));
    }
}
