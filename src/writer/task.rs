//! The writer task's state machine: batches, requests in flight, backoff,
//! the spool, flush and shutdown.
//!
//! One task owns every decision; sinks only deliver ([`Sink::export`]).
//! - Batches of at most the pace's batch lines / `batch_max_bytes` bytes go
//!   out when full or `batch_max_age` after their first line was seen, up to
//!   the pace's requests at once. InfluxDB 3 acknowledges only after its WAL
//!   flush: while acknowledgements are slow and the backlog grows, the pace
//!   (`writer::pace`) raises both from `max_in_flight` / `batch_max_lines`,
//!   and lowers them back once the backlog drains.
//! - A batch the server may take later (429, 5xx, network, 401/403, 404) is
//!   kept and resent after a jittered backoff, at least `Retry-After`.
//!   413 / `max request size` and InfluxDB 2.x's whole-batch 400 split it in
//!   halves; 400/422 rejections are counted and never retried.
//! - With a spool: while InfluxDB fails, or when the memory queue passes half
//!   its capacity, memory lines are appended to the spool. Once writes
//!   succeed, the spool is replayed oldest first, alternating with live
//!   batches so that live lines never wait behind the backlog for more than
//!   one batch. A spool that cannot be written or read (disk full, EMFILE,
//!   EIO) falls back to memory only and is tried again every `SPOOL_RETRY`;
//!   nothing in it is skipped for an I/O error. A spool that could not be
//!   opened (still locked by the writer a reload replaces) is opened again
//!   on the same schedule when the writer was started to retry it.
//! - Every line is accounted for: `lines_queued + lines_recovered =
//!   lines_written + lines_rejected + lines_dropped + spooled + queued in
//!   memory + live lines in flight` (`WriterStats::unaccounted`). Replayed
//!   lines on the wire stay counted in the spool until acknowledged.
//! - Spool file work runs through `spool::off_async`, fsyncs on blocking
//!   threads: a slow disk never stalls the other async tasks.
//! - Every wait has a deadline: the loop sleeps until a request completes, a
//!   line or control message arrives, or the earliest of retry time, batch
//!   age (only when a request could start), fsync, flush and shutdown deadlines.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::model::{SpoolState, WriterState, WriterStats};
use crate::spool::{off_async, Spool, SpoolConfig};
use crate::writer::pace::{Pace, Step};
use crate::writer::queue::{lock, Shared};
use crate::writer::retry::{self, Outcome};
use crate::writer::sink::{Batch, Sink};

/// First retry waits at least this long (or `max_backoff`, if smaller).
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Rejected lines logged per response.
const LOG_REJECTED_LINES: usize = 3;
/// Responses with rejections logged at warn level (later ones at debug).
const LOG_REJECTED_RESPONSES: u64 = 10;
/// After a failed spool append, memory only for this long before trying again.
const SPOOL_RETRY: Duration = if cfg!(test) {
    Duration::from_millis(200)
} else {
    Duration::from_secs(10)
};

pub(crate) enum Ctrl {
    Flush {
        deadline: Instant,
        reply: oneshot::Sender<usize>,
    },
    Shutdown {
        deadline: Instant,
        reply: oneshot::Sender<WriterStats>,
    },
    /// The counters read between two steps of the task (consistent with each other).
    Stats { reply: oneshot::Sender<WriterStats> },
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The figures the pace starts from and returns to, and its in-flight ceiling.
    pub max_in_flight: usize,
    pub in_flight_ceiling: usize,
    pub batch_max_lines: usize,
    pub batch_max_bytes: usize,
    pub batch_max_age: Duration,
    pub max_backoff: Duration,
}

/// A request on the wire: its lines, and the spool segment they came from.
struct Sent {
    lines: Batch,
    from: Option<u64>,
    /// When the request went out: its acknowledgement time feeds the pace.
    sent_at: Instant,
}

/// The spool and what the task keeps about it.
pub(crate) struct SpoolSide {
    spool: Spool,
    /// Batches read back that must be sent again, ahead of unread records.
    again: VecDeque<(u64, Vec<String>)>,
    /// Why appends or reads fail, and when to try again (memory only until then).
    down: Option<(String, Instant)>,
    /// The spool's `lines_dropped` already added to the writer's.
    dropped_seen: u64,
}

impl SpoolSide {
    pub fn new(spool: Spool) -> Self {
        Self {
            spool,
            again: VecDeque::new(),
            down: None,
            dropped_seen: 0,
        }
    }

    /// An append or read failed: memory only until `SPOOL_RETRY` has passed.
    fn failed(&mut self, reason: String) {
        if self.down.is_none() {
            tracing::error!(
                "{reason} ({}); keeping lines in memory only, trying again every {} s",
                self.spool.dir().display(),
                SPOOL_RETRY.as_secs_f64()
            );
        }
        self.down = Some((reason, Instant::now() + SPOOL_RETRY));
    }

    /// An append or read worked: the spool is back if it was down.
    fn worked(&mut self) {
        if let Some((reason, _)) = self.down.take() {
            tracing::info!(
                "spool {} usable again (was: {reason})",
                self.spool.dir().display()
            );
        }
    }

    fn state(&self) -> SpoolState {
        match &self.down {
            Some((reason, _)) => SpoolState::Unavailable {
                reason: reason.clone(),
            },
            None => SpoolState::Active,
        }
    }
}

pub(crate) struct Task {
    shared: Arc<Shared>,
    sink: Arc<dyn Sink>,
    limits: Limits,
    /// Requests in flight and batch lines now (`limits` are where they start).
    pace: Pace,
    /// The most lines seen waiting in memory since the last acknowledgement:
    /// a collection's lines arrive at once, and an acknowledgement that
    /// happens to come just after they left must not take the queue for idle.
    peak_depth: usize,
    joins: JoinSet<Outcome>,
    in_flight: HashMap<tokio::task::Id, Sent>,
    /// No request is started before this instant (backoff after a failure).
    retry_at: Option<Instant>,
    prev_backoff: Duration,
    /// When the writer first saw the lines now waiting in the queue.
    batch_started: Option<Instant>,
    flushers: Vec<(Instant, oneshot::Sender<usize>)>,
    shutdown: Option<(Instant, oneshot::Sender<WriterStats>)>,
    rejections_logged: u64,
    spool: Option<SpoolSide>,
    /// A spool to open again (it was locked or unusable), and when.
    reopen: Option<(SpoolConfig, Instant)>,
    /// Alternates replayed and live batches.
    replay_turn: bool,
}

impl Task {
    pub fn new(
        shared: Arc<Shared>,
        sink: Arc<dyn Sink>,
        limits: Limits,
        spool: Option<SpoolSide>,
        reopen: Option<SpoolConfig>,
    ) -> Self {
        let mut task = Self {
            shared,
            sink,
            limits,
            pace: Pace::new(
                limits.max_in_flight,
                limits.in_flight_ceiling,
                limits.batch_max_lines,
            ),
            peak_depth: 0,
            joins: JoinSet::new(),
            in_flight: HashMap::new(),
            retry_at: None,
            prev_backoff: Duration::ZERO,
            batch_started: None,
            flushers: Vec::new(),
            shutdown: None,
            rejections_logged: 0,
            spool,
            reopen: reopen.map(|c| (c, Instant::now() + SPOOL_RETRY)),
            replay_turn: true,
        };
        task.publish_pace();
        task.publish_spool();
        task
    }

    pub async fn run(mut self, mut ctrl: mpsc::UnboundedReceiver<Ctrl>) {
        let shared = self.shared.clone();
        let mut ctrl_open = true;
        loop {
            shared.loop_turns.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            let depth = lock(&self.shared.buf).depth();
            self.peak_depth = self.peak_depth.max(depth);
            self.reopen_spool(now);
            self.spill(now);
            self.dispatch(now);
            self.sync_spool(now);
            self.publish_spool();
            self.answer_flushers(now);
            if self.finish_if_done(now) {
                return;
            }
            if !ctrl_open && self.shutdown.is_none() {
                // Every handle is gone without a shutdown: nobody can read results.
                self.joins.abort_all();
                return;
            }
            let wake = self.next_wake(now);
            tokio::select! {
                Some(res) = self.joins.join_next_with_id(), if !self.joins.is_empty() => {
                    self.completed(res);
                }
                msg = ctrl.recv(), if ctrl_open => match msg {
                    Some(Ctrl::Flush { deadline, reply }) => self.flushers.push((deadline, reply)),
                    Some(Ctrl::Shutdown { deadline, reply }) => self.shutdown = Some((deadline, reply)),
                    Some(Ctrl::Stats { reply }) => {
                        self.publish_spool();
                        let _ = reply.send(self.shared.stats());
                    }
                    None => ctrl_open = false,
                },
                _ = shared.notify.notified() => {}
                _ = sleep_until(wake) => {}
            }
        }
    }

    fn flushing(&self) -> bool {
        !self.flushers.is_empty() || self.shutdown.is_some()
    }

    /// InfluxDB is not taking writes right now (backoff pending or last answer a failure).
    fn failing(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|t| t > now)
            || matches!(
                lock(&self.shared.status).state,
                WriterState::Retrying | WriterState::AuthFailed | WriterState::Failing
            )
    }

    fn spool_usable(&self, now: Instant) -> bool {
        self.spool
            .as_ref()
            .is_some_and(|s| s.down.as_ref().is_none_or(|(_, at)| *at <= now))
    }

    /// Moves memory lines to the spool while InfluxDB fails, or when the
    /// queue passes half its capacity with every request slot busy (with a
    /// slot free, `dispatch` sends them at once: no detour through the disk).
    fn spill(&mut self, now: Instant) {
        if !self.spool_usable(now) {
            return;
        }
        let depth = lock(&self.shared.buf).depth();
        let slots_busy = self.joins.len() >= self.pace.in_flight();
        if depth == 0 || !(self.failing(now) || (depth * 2 >= self.shared.capacity && slots_busy)) {
            return;
        }
        self.spill_all();
    }

    /// Appends everything in memory to the spool; returns the lines kept.
    /// On a failed append the rest stays in memory and the spool rests.
    fn spill_all(&mut self) -> usize {
        let Some(side) = self.spool.as_mut() else {
            return 0;
        };
        let batches = lock(&self.shared.buf).take_all(self.pace.batch_lines());
        self.batch_started = None;
        let mut kept = 0;
        let mut rest = batches.into_iter();
        let now = SystemTime::now();
        for batch in rest.by_ref() {
            match off_async(|| side.spool.append(&batch, now)) {
                Ok(()) => {
                    kept += batch.len();
                    side.worked();
                }
                Err(e) => {
                    side.failed(format!("cannot write the spool: {e}"));
                    let mut unspooled: Vec<Vec<String>> = vec![batch];
                    unspooled.extend(rest);
                    let mut buf = lock(&self.shared.buf);
                    for b in unspooled.into_iter().rev() {
                        buf.push_retry_front(b);
                    }
                    let dropped = buf.enforce_capacity(self.shared.capacity);
                    self.shared.count_drops(&mut buf, dropped);
                    break;
                }
            }
        }
        kept
    }

    /// Opens the spool again when it was locked or unusable and its time has come.
    fn reopen_spool(&mut self, now: Instant) {
        let Some((cfg, at)) = &self.reopen else {
            return;
        };
        if *at > now {
            return;
        }
        match off_async(|| Spool::open(cfg)) {
            Ok(spool) => {
                tracing::info!("spool {} opened; lines go to disk again", cfg.dir.display());
                self.spool = Some(SpoolSide::new(spool));
                self.reopen = None;
            }
            Err(e) => {
                tracing::debug!("spool still not usable: {e}");
                *lock(&self.shared.spool) = Some(off_stats(cfg, e.to_string()));
                self.reopen = Some((cfg.clone(), now + SPOOL_RETRY));
            }
        }
    }

    /// Starts as many requests as the rules allow.
    fn dispatch(&mut self, now: Instant) {
        loop {
            if self.joins.len() >= self.pace.in_flight() || self.retry_at.is_some_and(|t| t > now) {
                return;
            }
            let Some((batch, from)) = self.next_batch(now) else {
                return;
            };
            let n = batch.len();
            let lines: Batch = Arc::new(batch);
            self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
            // Replayed lines stay counted in the spool until acknowledged.
            if from.is_none() {
                self.shared.in_flight_lines.fetch_add(n, Ordering::Relaxed);
            }
            let handle = self.joins.spawn(self.sink.clone().export(lines.clone()));
            let sent_at = Instant::now();
            self.in_flight.insert(
                handle.id(),
                Sent {
                    lines,
                    from,
                    sent_at,
                },
            );
        }
    }

    /// Replayed and live batches take turns; a flush sends live lines only.
    fn next_batch(&mut self, now: Instant) -> Option<(Vec<String>, Option<u64>)> {
        let flushing = self.flushing();
        if !flushing && (self.replay_turn || !self.live_ready(now)) {
            if let Some((seg, b)) = self.next_replayed() {
                self.replay_turn = false;
                return Some((b, Some(seg)));
            }
        }
        if let Some(b) = self.next_live(now) {
            self.replay_turn = true;
            return Some((b, None));
        }
        None
    }

    /// The next batch from the spool. A read that fails (EMFILE, EIO) keeps
    /// every record and rests the spool until `SPOOL_RETRY` has passed.
    fn next_replayed(&mut self) -> Option<(u64, Vec<String>)> {
        let usable = self.spool_usable(Instant::now());
        let side = self.spool.as_mut()?;
        if let Some(b) = side.again.pop_front() {
            return Some(b);
        }
        // Only a read worth making leaves the async worker (`block_in_place`
        // hands the worker to another thread: not for nothing on every turn).
        if !usable || !side.spool.has_unread() {
            return None;
        }
        match off_async(|| side.spool.next_batch()) {
            Ok(b) => {
                if b.is_some() {
                    side.worked();
                }
                b
            }
            Err(e) => {
                side.failed(format!("cannot read the spool: {e}"));
                None
            }
        }
    }

    /// Whether a live batch would go out now.
    fn live_ready(&mut self, now: Instant) -> bool {
        let buf = lock(&self.shared.buf);
        if !buf.retry.is_empty() {
            return true;
        }
        if buf.queue.is_empty() {
            return false;
        }
        let started = *self.batch_started.get_or_insert(now);
        self.flushing()
            || buf.queue.len() >= self.pace.batch_lines().min(self.shared.capacity)
            || buf.queue_bytes >= self.limits.batch_max_bytes
            || now.duration_since(started) >= self.limits.batch_max_age
    }

    fn next_live(&mut self, now: Instant) -> Option<Vec<String>> {
        if !self.live_ready(now) {
            if lock(&self.shared.buf).queue.is_empty() {
                self.batch_started = None;
            }
            return None;
        }
        let mut buf = lock(&self.shared.buf);
        if let Some(batch) = buf.retry.pop_front() {
            buf.retry_lines -= batch.len();
            return Some(batch);
        }
        let mut batch = Vec::with_capacity(buf.queue.len().min(self.pace.batch_lines()));
        let mut bytes = 0usize;
        while batch.len() < self.pace.batch_lines() {
            let Some(len) = buf.queue.front().map(|l| l.len() + 1) else {
                break;
            };
            // Always at least one line, even one larger than the byte cap.
            if !batch.is_empty() && bytes + len > self.limits.batch_max_bytes {
                break;
            }
            if let Some(line) = buf.queue.pop_front() {
                bytes += len;
                buf.queue_bytes -= len;
                batch.push(line);
            }
        }
        self.batch_started = if buf.queue.is_empty() {
            None
        } else {
            Some(now)
        };
        Some(batch)
    }

    /// The earliest instant the loop has something to do, besides I/O and messages.
    pub(crate) fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        let backoff = self.retry_at.filter(|t| *t > now);
        if let Some(t) = backoff {
            at(t);
        }
        // The batch age matters only when a request could start: with every
        // slot busy a completion wakes us, with a backoff pending its end does.
        let can_send = backoff.is_none() && self.joins.len() < self.pace.in_flight();
        if let (Some(s), true) = (self.batch_started, can_send) {
            at(s + self.limits.batch_max_age);
        }
        if let Some(side) = &self.spool {
            if let Some(t) = side.spool.sync_due() {
                at(t);
            }
            // A resting spool is tried again at its time (past times need no wake).
            if let Some((_, t)) = side.down.as_ref().filter(|(_, t)| *t > now) {
                if lock(&self.shared.buf).depth() > 0 || side.spool.has_unread() {
                    at(*t);
                }
            }
        }
        if let Some((_, t)) = &self.reopen {
            at(*t);
        }
        for (d, _) in &self.flushers {
            at(*d);
        }
        if let Some((d, _)) = &self.shutdown {
            at(*d);
        }
        wake
    }

    /// Appended records reach the disk at least every fsync interval, off the async threads.
    fn sync_spool(&mut self, now: Instant) {
        if let Some(job) = self.spool.as_mut().and_then(|s| s.spool.take_sync(now)) {
            tokio::task::spawn_blocking(move || {
                if let Err(e) = job.run() {
                    tracing::warn!("spool fsync failed: {e}");
                }
            });
        }
    }

    /// Publishes the spool's counters (lines it dropped join
    /// `lines_dropped`) and closes the books: call only between two steps.
    fn publish_spool(&mut self) {
        if let Some(side) = &mut self.spool {
            let dropped = side.spool.lines_dropped();
            let new = dropped.saturating_sub(side.dropped_seen);
            side.dropped_seen = dropped;
            self.shared.lines_dropped.fetch_add(new, Ordering::Relaxed);
            *lock(&self.shared.spool) = Some(side.spool.stats(side.state()));
        }
        self.shared.close_books();
    }

    fn answer_flushers(&mut self, now: Instant) {
        if self.flushers.is_empty() {
            return;
        }
        let unsent = self.shared.unsent();
        // During an outage the spool holds what memory cannot send: no point waiting.
        let outage = self.spool_usable(now) && self.failing(now);
        let mut keep = Vec::new();
        for (deadline, reply) in self.flushers.drain(..) {
            if unsent == 0 || outage || now >= deadline {
                let _ = reply.send(unsent);
            } else {
                keep.push((deadline, reply));
            }
        }
        self.flushers = keep;
    }

    /// Ends the task once a shutdown has flushed everything, run out of time,
    /// or (during an outage) saved everything to the spool.
    fn finish_if_done(&mut self, now: Instant) -> bool {
        let Some((deadline, _)) = &self.shutdown else {
            return false;
        };
        let outage = self.spool_usable(now) && self.failing(now);
        if self.shared.unsent() > 0 && now < *deadline && !outage {
            return false;
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        self.joins.abort_all();
        // Lines on the wire may or may not have arrived: keep them (at-least-once).
        let mut buf = lock(&self.shared.buf);
        for (_, sent) in self.in_flight.drain() {
            if sent.from.is_none() {
                buf.push_retry_front(unwrap_batch(sent.lines));
            }
        }
        drop(buf);
        self.shared.in_flight.store(0, Ordering::Relaxed);
        self.shared.in_flight_lines.store(0, Ordering::Relaxed);
        // One more try even when the spool rests (a failed read, or a disk
        // that has room again): what fails stays counted as unsent.
        let kept = self.spill_all();
        if let Some(side) = self.spool.as_mut() {
            if let Err(e) = off_async(|| side.spool.sync_now()) {
                tracing::warn!("spool fsync at exit failed: {e}");
            }
            let st = side.spool.stats(side.state());
            if st.lines > 0 {
                tracing::info!(
                    "{} lines kept in the spool {} ({kept} saved at exit); they are sent when vmpulse runs again",
                    st.lines,
                    st.dir
                );
            }
        }
        self.publish_spool();
        let unsent = self.shared.unsent();
        if unsent > 0 {
            tracing::warn!(
                "writer stopped with {unsent} lines unsent and not spooled (flush timeout reached)"
            );
        }
        let stats = self.shared.stats();
        // Release the spool's lock before anyone hears we are done.
        self.spool = None;
        for (_, reply) in self.flushers.drain(..) {
            let _ = reply.send(unsent);
        }
        if let Some((_, reply)) = self.shutdown.take() {
            let _ = reply.send(stats);
        }
        true
    }

    /// A request finished, or its task panicked or was cancelled: either way
    /// its lines are accounted for and the in-flight counters stay right.
    fn completed(&mut self, res: Result<(tokio::task::Id, Outcome), tokio::task::JoinError>) {
        let (id, outcome) = match res {
            Ok((id, outcome)) => (id, Ok(outcome)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(sent) = self.in_flight.remove(&id) else {
            return;
        };
        let n = sent.lines.len();
        self.shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        if sent.from.is_none() {
            self.shared.in_flight_lines.fetch_sub(n, Ordering::Relaxed);
        }
        let lines = unwrap_batch(sent.lines);
        match outcome {
            Ok(outcome) => {
                if matches!(outcome, Outcome::Done | Outcome::Rejected { .. }) {
                    self.observe_ack(sent.sent_at.elapsed());
                }
                self.handle(lines, sent.from, outcome)
            }
            Err(e) => {
                tracing::error!(
                    "a write request failed to complete ({e}); its {n} lines are queued again"
                );
                self.put_back(sent.from, lines);
            }
        }
    }

    /// An acknowledged request: the pace sees how long it took and what waits
    /// (the most in memory since the last one, and the spool); a new figure
    /// is logged and published.
    fn observe_ack(&mut self, ack: Duration) {
        let spooled = self.spool.as_ref().map_or(0, |s| s.spool.lines());
        let depth = lock(&self.shared.buf).depth();
        let backlog = self.peak_depth.max(depth) + spooled as usize;
        self.peak_depth = depth;
        let step = self.pace.observe(backlog, ack);
        if step == Step::Same {
            return;
        }
        let (n, lines) = (self.pace.in_flight(), self.pace.batch_lines());
        match step {
            Step::Up => tracing::info!(
                "InfluxDB acknowledges in {} ms with {backlog} lines waiting: up to {n} requests of {lines} lines in flight",
                ack.as_millis()
            ),
            _ => tracing::info!(
                "writer queue drained: back to {n} requests of {lines} lines in flight"
            ),
        }
        self.publish_pace();
    }

    fn publish_pace(&self) {
        let sh = &self.shared;
        sh.in_flight_limit
            .store(self.pace.in_flight(), Ordering::Relaxed);
        sh.batch_lines_limit
            .store(self.pace.batch_lines(), Ordering::Relaxed);
    }

    /// Puts a batch back to be sent first: replayed batches ahead of the
    /// spool's unread records, live ones at the head of the memory queue.
    fn put_back(&mut self, from: Option<u64>, batch: Vec<String>) {
        if batch.is_empty() {
            return;
        }
        match (from, self.spool.as_mut()) {
            (Some(seg), Some(side)) => side.again.push_front((seg, batch)),
            _ => {
                let mut buf = lock(&self.shared.buf);
                buf.push_retry_front(batch);
                let dropped = buf.enforce_capacity(self.shared.capacity);
                self.shared.count_drops(&mut buf, dropped);
            }
        }
    }

    /// A batch is finished with: `delivered` of its `n` lines were written.
    fn done_with(&mut self, from: Option<u64>, n: usize, delivered: usize) {
        self.shared
            .lines_written
            .fetch_add(delivered as u64, Ordering::Relaxed);
        if let (Some(seg), Some(side)) = (from, self.spool.as_mut()) {
            // May delete a finished segment file: off the async workers too.
            off_async(|| side.spool.ack(seg, n, delivered));
        }
    }

    fn handle(&mut self, mut lines: Vec<String>, from: Option<u64>, outcome: Outcome) {
        let n = lines.len();
        match outcome {
            Outcome::Done => {
                self.done_with(from, n, n);
                self.prev_backoff = Duration::ZERO;
                self.set_ok(None);
            }
            Outcome::Rejected {
                count,
                details,
                message,
            } => {
                let rejected = count.of(n);
                self.count_rejected(rejected);
                self.done_with(from, n, n - rejected);
                self.log_rejection(&lines, rejected, &details, &message);
                self.prev_backoff = Duration::ZERO;
                self.set_ok(Some(message));
            }
            Outcome::Split { message } | Outcome::Bisect { message } if n > 1 => {
                tracing::debug!("{message}: splitting a batch of {n} lines");
                let second = lines.split_off(n / 2);
                if let (Some(seg), Some(side)) = (from, self.spool.as_mut()) {
                    side.spool.add_outstanding(seg);
                }
                self.put_back(from, second);
                self.put_back(from, lines);
            }
            Outcome::Split { message } => {
                self.count_rejected(n);
                self.done_with(from, n, 0);
                tracing::warn!(
                    "a single line is larger than the server accepts; dropped ({message})"
                );
                lock(&self.shared.status).error(message);
            }
            Outcome::Bisect { message } => {
                self.count_rejected(n);
                self.done_with(from, n, 0);
                self.log_rejection(&lines, n, &[], &message);
                self.prev_backoff = Duration::ZERO;
                self.set_ok(Some(message));
            }
            Outcome::Retry { after, message } => {
                let backoff = retry::decorrelated_jitter(
                    self.prev_backoff,
                    BASE_BACKOFF,
                    self.limits.max_backoff,
                    fastrand::f64(),
                );
                self.prev_backoff = backoff;
                let wait =
                    retry::retry_wait(backoff, after, self.limits.max_backoff, fastrand::f64());
                self.retry_later(from, lines, wait, WriterState::Retrying, message);
            }
            Outcome::Auth { message, .. } => {
                self.prev_backoff = self.limits.max_backoff;
                let wait = self.limits.max_backoff;
                self.retry_later(from, lines, wait, WriterState::AuthFailed, message);
            }
            Outcome::NotFound { message } | Outcome::Failing { message, .. } => {
                self.prev_backoff = self.limits.max_backoff;
                let wait = self.limits.max_backoff;
                self.retry_later(from, lines, wait, WriterState::Failing, message);
            }
            Outcome::Closed { message } => {
                self.shared
                    .lines_dropped
                    .fetch_add(n as u64, Ordering::Relaxed);
                self.done_with(from, n, 0);
                let mut st = lock(&self.shared.status);
                if st.state != WriterState::Failing {
                    tracing::warn!("{message}; dropping lines from now on");
                }
                st.state = WriterState::Failing;
                st.error(message);
            }
        }
    }

    fn count_rejected(&self, n: usize) {
        self.shared
            .lines_rejected
            .fetch_add(n as u64, Ordering::Relaxed);
    }

    fn log_rejection(
        &mut self,
        lines: &[String],
        rejected: usize,
        details: &[retry::RejectedLine],
        message: &str,
    ) {
        let n = lines.len();
        // A schema conflict can reject every batch: warn about the first few
        // responses, then only at debug level.
        self.rejections_logged += 1;
        if self.rejections_logged > LOG_REJECTED_RESPONSES {
            tracing::debug!("InfluxDB rejected {rejected} of {n} lines: {message}");
            return;
        }
        tracing::warn!("InfluxDB rejected {rejected} of {n} lines: {message}");
        if details.is_empty() {
            for l in lines.iter().take(LOG_REJECTED_LINES.min(rejected)) {
                tracing::warn!("  rejected batch line: {l}");
            }
        }
        for d in details.iter().take(LOG_REJECTED_LINES) {
            let no = d.line_number.map(|n| format!(" {n}")).unwrap_or_default();
            tracing::warn!(
                "  rejected line{no}: {} ({})",
                d.original_line.as_deref().unwrap_or("?"),
                d.error_message
            );
        }
    }

    fn retry_later(
        &mut self,
        from: Option<u64>,
        lines: Vec<String>,
        wait: Duration,
        state: WriterState,
        message: String,
    ) {
        self.shared.write_retries.fetch_add(1, Ordering::Relaxed);
        self.put_back(from, lines);
        let at = Instant::now() + wait;
        self.retry_at = Some(self.retry_at.map_or(at, |t| t.max(at)));
        let mut st = lock(&self.shared.status);
        if st.state != state {
            tracing::warn!("InfluxDB write failed, retrying in {wait:.1?}: {message}");
        } else {
            tracing::debug!("InfluxDB write failed again, retrying in {wait:.1?}: {message}");
        }
        st.state = state;
        st.error(message);
    }

    fn set_ok(&mut self, error: Option<String>) {
        // `retry_at` stays: a late success must not cancel another response's Retry-After.
        let ok = self.sink.ok_state();
        let mut st = lock(&self.shared.status);
        st.last_write_ok = Some(SystemTime::now());
        if st.state != ok {
            if matches!(
                st.state,
                WriterState::Retrying | WriterState::AuthFailed | WriterState::Failing
            ) {
                tracing::info!("InfluxDB writes succeed again");
            }
            st.state = ok;
        }
        if let Some(e) = error {
            st.error(e);
        }
    }
}

/// The lines of a finished request (the task holds the only other reference).
fn unwrap_batch(b: Batch) -> Vec<String> {
    Arc::try_unwrap(b).unwrap_or_else(|shared| shared.as_ref().clone())
}

/// Spool counters for a spool this writer runs without.
pub(crate) fn off_stats(cfg: &SpoolConfig, reason: String) -> crate::model::SpoolStats {
    crate::model::SpoolStats::empty(cfg.dir.display().to_string(), SpoolState::Off { reason })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}
