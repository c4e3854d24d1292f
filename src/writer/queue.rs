//! The memory queue and the counters shared by the handles and the task.
//!
//! Lines wait in a bounded queue of `capacity` lines; when it is full the
//! oldest are dropped and counted (Telegraf's semantics). Batches that must
//! be resent sit in `retry`, ahead of (and older than) everything in `queue`;
//! both count against the capacity.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

use crate::model::{SpoolStats, WriterState, WriterStats};

/// Repeated "queue full" warnings are at most this frequent.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(crate) struct Buf {
    pub retry: VecDeque<Vec<String>>,
    pub retry_lines: usize,
    pub queue: VecDeque<String>,
    pub queue_bytes: usize,
    drops_logged: bool,
    last_drop_log: Option<Instant>,
    /// Lines `enqueue` took in and dropped at once, all time.
    pub enq_queued: u64,
    pub enq_dropped: u64,
    /// The counters as the task left them after its last step.
    books: Books,
}

/// Every counter of the equation at one instant, taken by the task between
/// two of its steps (no line half way between two counters). Readers add
/// what `enqueue` did since, which moves lines only between `queued`,
/// `depth` and `dropped`, so what they see always balances.
#[derive(Default, Clone)]
struct Books {
    queued: u64,
    written: u64,
    rejected: u64,
    dropped: u64,
    depth: usize,
    in_flight_lines: usize,
    spool: Option<SpoolStats>,
    enq_queued: u64,
    enq_dropped: u64,
}

impl Buf {
    pub fn depth(&self) -> usize {
        self.queue.len() + self.retry_lines
    }

    pub fn push_retry_front(&mut self, batch: Vec<String>) {
        self.retry_lines += batch.len();
        self.retry.push_front(batch);
    }

    /// Drops the oldest lines until the capacity holds; returns how many.
    pub fn enforce_capacity(&mut self, capacity: usize) -> usize {
        let mut excess = self.depth().saturating_sub(capacity);
        let dropped = excess;
        while excess > 0 {
            if let Some(front) = self.retry.front_mut() {
                let k = excess.min(front.len());
                front.drain(..k);
                self.retry_lines -= k;
                excess -= k;
                if front.is_empty() {
                    self.retry.pop_front();
                }
            } else if let Some(line) = self.queue.pop_front() {
                self.queue_bytes -= line.len() + 1;
                excess -= 1;
            } else {
                break;
            }
        }
        dropped
    }

    /// Everything queued, oldest first, as batches of at most `max_lines`.
    pub fn take_all(&mut self, max_lines: usize) -> Vec<Vec<String>> {
        let mut out: Vec<Vec<String>> = self.retry.drain(..).collect();
        self.retry_lines = 0;
        self.queue_bytes = 0;
        let mut rest: Vec<String> = self.queue.drain(..).collect();
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(max_lines.max(1)));
            out.push(std::mem::replace(&mut rest, tail));
        }
        out
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct Status {
    pub state: WriterState,
    pub last_write_ok: Option<SystemTime>,
    pub last_error: Option<String>,
    /// When `last_error` happened: status tells an old error from a current one.
    pub last_error_at: Option<SystemTime>,
}

impl Status {
    pub fn error(&mut self, message: String) {
        self.last_error = Some(message);
        self.last_error_at = Some(SystemTime::now());
    }
}

/// State shared by the handles and the writer task.
pub(crate) struct Shared {
    pub buf: Mutex<Buf>,
    pub notify: Notify,
    pub capacity: usize,
    pub endpoint: Option<String>,
    pub lines_queued: AtomicU64,
    pub lines_written: AtomicU64,
    pub lines_dropped: AtomicU64,
    pub lines_rejected: AtomicU64,
    pub write_retries: AtomicU64,
    pub in_flight: AtomicUsize,
    /// The pace's figures now (`writer::pace`): requests in flight and batch lines.
    pub in_flight_limit: AtomicUsize,
    pub batch_lines_limit: AtomicUsize,
    /// Live lines on the wire (replayed ones stay counted in the spool).
    pub in_flight_lines: AtomicUsize,
    pub closed: AtomicBool,
    /// Turns of the task's loop: a busy loop shows up here (tests).
    pub loop_turns: AtomicU64,
    pub status: Mutex<Status>,
    pub spool: Mutex<Option<SpoolStats>>,
}

impl Shared {
    pub fn new(capacity: usize, endpoint: Option<String>, state: WriterState) -> Self {
        Self {
            buf: Mutex::new(Buf::default()),
            notify: Notify::new(),
            capacity,
            endpoint,
            lines_queued: AtomicU64::new(0),
            lines_written: AtomicU64::new(0),
            lines_dropped: AtomicU64::new(0),
            lines_rejected: AtomicU64::new(0),
            write_retries: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            in_flight_limit: AtomicUsize::new(0),
            batch_lines_limit: AtomicUsize::new(0),
            in_flight_lines: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            loop_turns: AtomicU64::new(0),
            status: Mutex::new(Status {
                state,
                last_write_ok: None,
                last_error: None,
                last_error_at: None,
            }),
            spool: Mutex::new(None),
        }
    }

    pub fn count_drops(&self, buf: &mut Buf, dropped: usize) {
        if dropped == 0 {
            return;
        }
        let total = self
            .lines_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed)
            + dropped as u64;
        let now = Instant::now();
        let due = !buf.drops_logged
            || buf
                .last_drop_log
                .is_none_or(|t| now.duration_since(t) >= DROP_LOG_EVERY);
        if due {
            let first = !buf.drops_logged;
            buf.drops_logged = true;
            buf.last_drop_log = Some(now);
            if first {
                tracing::warn!(
                    "writer queue full ({} lines): dropping the oldest lines; InfluxDB is slow or unreachable ({total} dropped so far)",
                    self.capacity
                );
            } else {
                tracing::warn!("writer queue still overflowing: {total} lines dropped so far");
            }
        }
    }

    /// Lines in memory or on the wire (not counting the spool's).
    pub fn unsent(&self) -> usize {
        lock(&self.buf).depth() + self.in_flight_lines.load(Ordering::Relaxed)
    }

    /// Records the books; only the task calls this, between two of its steps.
    pub fn close_books(&self) {
        let spool = lock(&self.spool).clone();
        let mut buf = lock(&self.buf);
        buf.books = Books {
            queued: self.lines_queued.load(Ordering::Relaxed),
            written: self.lines_written.load(Ordering::Relaxed),
            rejected: self.lines_rejected.load(Ordering::Relaxed),
            dropped: self.lines_dropped.load(Ordering::Relaxed),
            depth: buf.depth(),
            in_flight_lines: self.in_flight_lines.load(Ordering::Relaxed),
            spool,
            enq_queued: buf.enq_queued,
            enq_dropped: buf.enq_dropped,
        };
    }

    /// The counters: the task's last books plus what `enqueue` did since.
    pub fn stats(&self) -> WriterStats {
        let (b, new_queued, new_dropped) = {
            let buf = lock(&self.buf);
            let b = buf.books.clone();
            let q = buf.enq_queued - b.enq_queued;
            let d = buf.enq_dropped - b.enq_dropped;
            (b, q, d)
        };
        let st = lock(&self.status);
        WriterStats {
            state: st.state.clone(),
            endpoint: self.endpoint.clone(),
            lines_queued: b.queued + new_queued,
            queue_depth: (b.depth as u64 + new_queued - new_dropped) as usize,
            queue_capacity: self.capacity,
            lines_written: b.written,
            lines_dropped: b.dropped + new_dropped,
            lines_rejected: b.rejected,
            write_retries: self.write_retries.load(Ordering::Relaxed),
            requests_in_flight: self.in_flight.load(Ordering::Relaxed),
            requests_in_flight_limit: self.in_flight_limit.load(Ordering::Relaxed),
            batch_lines_limit: self.batch_lines_limit.load(Ordering::Relaxed),
            lines_in_flight: b.in_flight_lines,
            lines_recovered: b.spool.as_ref().map_or(0, |s| s.lines_recovered),
            last_write_ok: st.last_write_ok,
            last_error: st.last_error.clone(),
            last_error_at: st.last_error_at,
            spool: b.spool,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_drops_oldest_from_retry_batches_first() {
        let mut b = Buf::default();
        b.retry.push_back(vec!["r1".into(), "r2".into()]);
        b.retry_lines = 2;
        for q in ["q1", "q2", "q3"] {
            b.queue_bytes += q.len() + 1;
            b.queue.push_back(q.into());
        }
        assert_eq!(b.enforce_capacity(2), 3);
        assert!(b.retry.is_empty());
        assert_eq!(b.retry_lines, 0);
        assert_eq!(b.queue, ["q2", "q3"]);
        assert_eq!(b.queue_bytes, 6);
        assert_eq!(b.enforce_capacity(5), 0);
    }

    #[test]
    fn take_all_keeps_order_in_bounded_batches() {
        let mut b = Buf::default();
        b.push_retry_front(vec!["r".into()]);
        for q in ["a", "b", "c", "d", "e"] {
            b.queue_bytes += 2;
            b.queue.push_back(q.into());
        }
        let got = b.take_all(2);
        assert_eq!(
            got,
            vec![vec!["r"], vec!["a", "b"], vec!["c", "d"], vec!["e"]]
        );
        assert_eq!((b.depth(), b.queue_bytes), (0, 0));
    }
}
