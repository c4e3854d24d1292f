//! The batching writer: bounded queue, size-or-time batches, retries, flush, shutdown.
//!
//! Modelled on OpenTelemetry's batch processor. The collector calls
//! [`WriterHandle::enqueue`], which never blocks: lines go into a bounded
//! queue of `max_queue` lines and, when it is full, the oldest lines are
//! dropped and counted (Telegraf's semantics). One task forms batches of at
//! most `batch_max_lines` lines and `batch_max_bytes` bytes, sent when full or
//! `batch_max_age` after their first line was seen, with up to `max_in_flight`
//! requests at once (InfluxDB 3 acknowledges only after its WAL flush).
//!
//! A batch the server may accept later (429, 5xx, network error, 401/403, 404)
//! goes back to the head of the queue, ahead of newer lines, and is resent
//! after a backoff with jitter (at least `Retry-After`; the ceiling
//! `max_backoff` for auth and not-found errors). 413 and InfluxDB 3's 500
//! `max request size` split the batch in halves. 400/422 rejections are
//! counted and logged (first few lines) and never retried. Flush and shutdown
//! are messages answered through a oneshot, each bounded by its timeout.
//!
//! With `--output FILE|-` the same batches are appended to the file or stdout
//! instead. With neither an URL nor an output the writer is off and
//! `enqueue` is a no-op. The token never appears in logs, errors or `Debug`.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinSet;

use crate::config::{Config, InfluxApi, OutputTarget, Secret};
use crate::influx::retry::{self, Outcome};
use crate::model::{WriterState, WriterStats};

/// Hint shown while the writer is off.
pub const OFF_HINT: &str = "set INFLUX_URL or --influx-url (or --output FILE|-) to write metrics";

/// First retry waits at least this long (or `max_backoff`, if smaller).
const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Rejected lines logged per response.
const LOG_REJECTED_LINES: usize = 3;
/// Responses with rejections logged at warn level (later ones at debug).
const LOG_REJECTED_RESPONSES: u64 = 10;
/// Repeated "queue full" warnings are at most this frequent.
const DROP_LOG_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot open output '{path}': {message}")]
    Output { path: String, message: String },
    #[error("{0}")]
    Setup(String),
}

/// Cheap to clone; all clones feed the same queue.
#[derive(Clone)]
pub struct WriterHandle {
    /// `None` when the writer is off.
    inner: Option<Arc<Inner>>,
}

impl fmt::Debug for WriterHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats();
        f.debug_struct("WriterHandle")
            .field("state", &stats.state)
            .field("endpoint", &stats.endpoint)
            .finish()
    }
}

struct Inner {
    shared: Arc<Shared>,
    ctrl: mpsc::UnboundedSender<Ctrl>,
}

enum Ctrl {
    Flush {
        deadline: Instant,
        reply: oneshot::Sender<usize>,
    },
    Shutdown {
        deadline: Instant,
        reply: oneshot::Sender<WriterStats>,
    },
}

/// State shared by the handles and the writer task.
struct Shared {
    buf: Mutex<Buf>,
    notify: Notify,
    capacity: usize,
    endpoint: Option<String>,
    lines_queued: AtomicU64,
    lines_written: AtomicU64,
    lines_dropped: AtomicU64,
    lines_rejected: AtomicU64,
    write_retries: AtomicU64,
    in_flight: AtomicUsize,
    in_flight_lines: AtomicUsize,
    /// Lines that were on the wire when shutdown gave up on them.
    abandoned: AtomicUsize,
    closed: AtomicBool,
    status: Mutex<Status>,
}

struct Status {
    state: WriterState,
    last_write_ok: Option<SystemTime>,
    last_error: Option<String>,
}

/// The queue proper. Batches that must be resent sit in `retry`, ahead of
/// (and older than) everything in `queue`; both count against the capacity.
#[derive(Default)]
struct Buf {
    retry: VecDeque<Vec<String>>,
    retry_lines: usize,
    queue: VecDeque<String>,
    queue_bytes: usize,
    drops_logged: bool,
    last_drop_log: Option<Instant>,
}

impl Buf {
    fn depth(&self) -> usize {
        self.queue.len() + self.retry_lines
    }

    /// Drops the oldest lines until the capacity holds; returns how many.
    fn enforce_capacity(&mut self, capacity: usize) -> usize {
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
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain counters behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(capacity: usize, endpoint: Option<String>, state: WriterState) -> Self {
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
            in_flight_lines: AtomicUsize::new(0),
            abandoned: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            status: Mutex::new(Status {
                state,
                last_write_ok: None,
                last_error: None,
            }),
        }
    }

    fn count_drops(&self, buf: &mut Buf, dropped: usize) {
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

    fn unsent(&self) -> usize {
        lock(&self.buf).depth() + self.in_flight_lines.load(Ordering::Relaxed)
    }

    fn stats(&self) -> WriterStats {
        let depth = lock(&self.buf).depth() + self.abandoned.load(Ordering::Relaxed);
        let st = lock(&self.status);
        WriterStats {
            state: st.state.clone(),
            endpoint: self.endpoint.clone(),
            lines_queued: self.lines_queued.load(Ordering::Relaxed),
            queue_depth: depth,
            queue_capacity: self.capacity,
            lines_written: self.lines_written.load(Ordering::Relaxed),
            lines_dropped: self.lines_dropped.load(Ordering::Relaxed),
            lines_rejected: self.lines_rejected.load(Ordering::Relaxed),
            write_retries: self.write_retries.load(Ordering::Relaxed),
            requests_in_flight: self.in_flight.load(Ordering::Relaxed),
            last_write_ok: st.last_write_ok,
            last_error: st.last_error.clone(),
        }
    }
}

impl WriterHandle {
    /// Starts the writer task (needs a tokio runtime). Off when neither an
    /// InfluxDB URL nor `--output` is configured.
    pub fn start(config: &Config) -> Result<Self, WriterError> {
        let ic = &config.influx;
        let sink = match (&config.run.output, &ic.url) {
            (Some(target), _) => Sink::Output(open_output(target)?),
            (None, Some(url)) => Sink::Http(Arc::new(HttpTarget::new(config, url)?)),
            (None, None) => return Ok(Self { inner: None }),
        };
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            WriterError::Setup("the InfluxDB writer must be started inside a tokio runtime".into())
        })?;
        let (state, endpoint) = match &sink {
            Sink::Output(o) => (
                WriterState::Output {
                    target: o.target.clone(),
                },
                Some(o.target.clone()),
            ),
            Sink::Http(h) => (WriterState::Ok, Some(h.endpoint.clone())),
        };
        let capacity = ic.max_queue.max(1);
        let shared = Arc::new(Shared::new(capacity, endpoint, state));
        let (ctrl, ctrl_rx) = mpsc::unbounded_channel();
        let max_in_flight = match sink {
            // One writer at a time keeps a file's lines in order.
            Sink::Output(_) => 1,
            Sink::Http(_) => ic.max_in_flight.max(1),
        };
        let task = Task {
            shared: shared.clone(),
            sink,
            max_in_flight,
            batch_max_lines: ic.batch_max_lines.max(1),
            batch_max_bytes: ic.batch_max_bytes.max(1),
            batch_max_age: ic.batch_max_age,
            max_backoff: ic.max_backoff,
            joins: JoinSet::new(),
            retry_at: None,
            prev_backoff: Duration::ZERO,
            batch_started: None,
            flushers: Vec::new(),
            shutdown: None,
            rejections_logged: 0,
        };
        runtime.spawn(task.run(ctrl_rx));
        Ok(Self {
            inner: Some(Arc::new(Inner { shared, ctrl })),
        })
    }

    /// Never blocks: when the queue is full the oldest lines are dropped and counted.
    pub fn enqueue(&self, lines: Vec<String>) {
        let Some(inner) = &self.inner else { return };
        if lines.is_empty() {
            return;
        }
        let sh = &inner.shared;
        let n = lines.len();
        sh.lines_queued.fetch_add(n as u64, Ordering::Relaxed);
        if sh.closed.load(Ordering::Relaxed) {
            sh.lines_dropped.fetch_add(n as u64, Ordering::Relaxed);
            return;
        }
        {
            let mut buf = lock(&sh.buf);
            // Lines that would be dropped at once are never copied in.
            let skip = n.saturating_sub(sh.capacity);
            for line in lines.into_iter().skip(skip) {
                buf.queue_bytes += line.len() + 1;
                buf.queue.push_back(line);
            }
            let dropped = skip + buf.enforce_capacity(sh.capacity);
            sh.count_drops(&mut buf, dropped);
        }
        sh.notify.notify_one();
    }

    pub fn stats(&self) -> WriterStats {
        match &self.inner {
            Some(inner) => inner.shared.stats(),
            None => WriterStats::off(OFF_HINT),
        }
    }

    /// Sends everything queued so far; gives up after `timeout`. Returns lines still unsent.
    pub async fn flush(&self, timeout: Duration) -> usize {
        let Some(inner) = &self.inner else { return 0 };
        let (reply, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        if inner.ctrl.send(Ctrl::Flush { deadline, reply }).is_err() {
            return inner.shared.unsent();
        }
        // The task answers by the deadline; the margin only guards against a dead task.
        match tokio::time::timeout(timeout + Duration::from_secs(1), rx).await {
            Ok(Ok(unsent)) => unsent,
            _ => inner.shared.unsent(),
        }
    }

    /// Flushes (bounded by `timeout`), stops the task, returns the final counters.
    /// Lines not sent by then are reported in `queue_depth`.
    pub async fn shutdown(self, timeout: Duration) -> WriterStats {
        let Some(inner) = &self.inner else {
            return self.stats();
        };
        let (reply, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        if inner.ctrl.send(Ctrl::Shutdown { deadline, reply }).is_ok() {
            if let Ok(Ok(stats)) = tokio::time::timeout(timeout + Duration::from_secs(1), rx).await
            {
                return stats;
            }
        }
        inner.shared.closed.store(true, Ordering::Relaxed);
        inner.shared.stats()
    }
}

// ---------------------------------------------------------------------------
// Sinks

enum Sink {
    Http(Arc<HttpTarget>),
    Output(Arc<OutputSink>),
}

struct OutputSink {
    target: String,
    out: Mutex<Box<dyn Write + Send>>,
}

fn open_output(target: &OutputTarget) -> Result<Arc<OutputSink>, WriterError> {
    let (name, out): (String, Box<dyn Write + Send>) = match target {
        OutputTarget::Stdout => ("stdout".into(), Box::new(std::io::stdout())),
        OutputTarget::File(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| WriterError::Output {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
            (path.display().to_string(), Box::new(file))
        }
    };
    Ok(Arc::new(OutputSink {
        target: name,
        out: Mutex::new(out),
    }))
}

enum Auth {
    None,
    Header(HeaderValue),
    Basic { user: String, password: Secret },
}

struct HttpTarget {
    client: reqwest::Client,
    /// Write URL without credentials.
    url: url::Url,
    auth: Auth,
    gzip_min_bytes: usize,
    /// For stats and logs: no credentials, no token.
    endpoint: String,
}

impl HttpTarget {
    fn new(config: &Config, base: &url::Url) -> Result<Self, WriterError> {
        let ic = &config.influx;
        let url_user = base.username().to_string();
        let url_password = base.password().map(str::to_string);
        let mut clean = base.clone();
        // Both only fail for URLs that cannot carry credentials, which then have none.
        let _ = clean.set_username("");
        let _ = clean.set_password(None);
        clean.set_query(None);
        clean.set_fragment(None);
        let shown = clean.as_str().trim_end_matches('/').to_string();
        let prefix = clean.path().trim_end_matches('/').to_string();
        let mut url = clean;
        let detail = match ic.api {
            InfluxApi::V3 => {
                url.set_path(&format!("{prefix}/api/v3/write_lp"));
                let mut q = url.query_pairs_mut();
                q.append_pair("db", &ic.db)
                    .append_pair("precision", "nanosecond");
                if ic.no_sync {
                    q.append_pair("no_sync", "true");
                }
                drop(q);
                format!("db={}{}", ic.db, if ic.no_sync { ", no_sync" } else { "" })
            }
            InfluxApi::V2 => {
                url.set_path(&format!("{prefix}/api/v2/write"));
                let mut q = url.query_pairs_mut();
                q.append_pair("bucket", &ic.db);
                if let Some(org) = &ic.org {
                    q.append_pair("org", org);
                }
                q.append_pair("precision", "ns");
                drop(q);
                match &ic.org {
                    Some(org) => format!("bucket={}, org={org}", ic.db),
                    None => format!("bucket={}", ic.db),
                }
            }
            InfluxApi::V1 => {
                url.set_path(&format!("{prefix}/write"));
                url.query_pairs_mut()
                    .append_pair("db", &ic.db)
                    .append_pair("precision", "ns");
                format!("db={}", ic.db)
            }
        };
        let auth = match (&ic.token, ic.api) {
            (Some(tok), InfluxApi::V1) if tok.expose().contains(':') => {
                let (user, password) = tok.expose().split_once(':').unwrap_or_default();
                Auth::Basic {
                    user: user.to_string(),
                    password: Secret::new(password),
                }
            }
            (Some(tok), api) => {
                let scheme = if api == InfluxApi::V3 {
                    "Bearer"
                } else {
                    "Token"
                };
                let mut v = HeaderValue::from_str(&format!("{scheme} {}", tok.expose())).map_err(
                    |_| {
                        WriterError::Setup(
                            "INFLUX_TOKEN / --influx-token contains characters not allowed in an HTTP header".into(),
                        )
                    },
                )?;
                v.set_sensitive(true);
                Auth::Header(v)
            }
            (None, _) if !url_user.is_empty() => Auth::Basic {
                user: url_user,
                password: Secret::new(url_password.unwrap_or_default()),
            },
            (None, _) => Auth::None,
        };
        let client = reqwest::Client::builder()
            .timeout(ic.request_timeout)
            .pool_max_idle_per_host(ic.max_in_flight.max(1))
            .build()
            .map_err(|e| WriterError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            url,
            auth,
            gzip_min_bytes: ic.gzip_min_bytes,
            endpoint: format!("{shown} ({}, {detail})", ic.api.as_str()),
        })
    }

    async fn send(&self, body: Vec<u8>, gzip: bool) -> Outcome {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Header(v) => req.header(AUTHORIZATION, v.clone()),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password.expose())),
        };
        let resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return retry::network_error(&error_chain(&e)),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match resp.bytes().await {
            Ok(bytes) => retry::classify(status, retry_after.as_deref(), &bytes, SystemTime::now()),
            // The status alone decides when the body cannot be read.
            Err(_) => retry::classify(status, retry_after.as_deref(), b"", SystemTime::now()),
        }
    }
}

/// An error and its causes ("error sending request ...: connection refused").
/// reqwest errors carry the URL, which never holds credentials here.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

fn body_of(lines: &[String]) -> Vec<u8> {
    let len = lines.iter().map(|l| l.len() + 1).sum();
    let mut body = Vec::with_capacity(len);
    for l in lines {
        body.extend_from_slice(l.as_bytes());
        body.push(b'\n');
    }
    body
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// Sends one batch; gives it back with the outcome.
async fn send_batch(sink: Sink, lines: Vec<String>) -> (Vec<String>, Outcome) {
    match sink {
        Sink::Http(h) => {
            let gzip_min = h.gzip_min_bytes;
            let prepared = tokio::task::spawn_blocking(move || {
                let body = body_of(&lines);
                if gzip_min > 0 && body.len() >= gzip_min {
                    match gzip(&body) {
                        Ok(z) => (lines, z, true),
                        Err(_) => (lines, body, false),
                    }
                } else {
                    (lines, body, false)
                }
            })
            .await;
            match prepared {
                Ok((lines, body, gz)) => {
                    let outcome = h.send(body, gz).await;
                    (lines, outcome)
                }
                // The closure cannot panic short of OOM; the batch is lost with it.
                Err(e) => (Vec::new(), retry::network_error(&e.to_string())),
            }
        }
        Sink::Output(o) => {
            let res = tokio::task::spawn_blocking(move || {
                let body = body_of(&lines);
                let mut out = lock(&o.out);
                let r = out.write_all(&body).and_then(|_| out.flush());
                drop(out);
                (lines, r)
            })
            .await;
            match res {
                Ok((lines, Ok(()))) => (lines, Outcome::Done),
                Ok((lines, Err(e))) if e.kind() == std::io::ErrorKind::BrokenPipe => (
                    lines,
                    Outcome::Closed {
                        message: format!("output closed by its reader: {e}"),
                    },
                ),
                Ok((lines, Err(e))) => (
                    lines,
                    retry::network_error(&format!("cannot write output: {e}")),
                ),
                Err(e) => (Vec::new(), retry::network_error(&e.to_string())),
            }
        }
    }
}

impl Clone for Sink {
    fn clone(&self) -> Self {
        match self {
            Self::Http(h) => Self::Http(h.clone()),
            Self::Output(o) => Self::Output(o.clone()),
        }
    }
}

// ---------------------------------------------------------------------------
// The task

struct Task {
    shared: Arc<Shared>,
    sink: Sink,
    max_in_flight: usize,
    batch_max_lines: usize,
    batch_max_bytes: usize,
    batch_max_age: Duration,
    max_backoff: Duration,
    joins: JoinSet<(Vec<String>, Outcome)>,
    /// No request is started before this instant (backoff after a failure).
    retry_at: Option<Instant>,
    prev_backoff: Duration,
    /// When the writer first saw the lines now waiting in the queue.
    batch_started: Option<Instant>,
    flushers: Vec<(Instant, oneshot::Sender<usize>)>,
    shutdown: Option<(Instant, oneshot::Sender<WriterStats>)>,
    rejections_logged: u64,
}

impl Task {
    async fn run(mut self, mut ctrl: mpsc::UnboundedReceiver<Ctrl>) {
        let shared = self.shared.clone();
        let mut ctrl_open = true;
        loop {
            let now = Instant::now();
            self.dispatch(now);
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
                Some(res) = self.joins.join_next(), if !self.joins.is_empty() => {
                    if let Ok((lines, outcome)) = res {
                        self.handle(lines, outcome);
                    }
                }
                msg = ctrl.recv(), if ctrl_open => match msg {
                    Some(Ctrl::Flush { deadline, reply }) => self.flushers.push((deadline, reply)),
                    Some(Ctrl::Shutdown { deadline, reply }) => self.shutdown = Some((deadline, reply)),
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

    /// Starts as many requests as the rules allow.
    fn dispatch(&mut self, now: Instant) {
        loop {
            if self.joins.len() >= self.max_in_flight || self.retry_at.is_some_and(|t| t > now) {
                return;
            }
            let Some(batch) = self.next_batch(now) else {
                return;
            };
            let n = batch.len();
            self.shared.in_flight.fetch_add(1, Ordering::Relaxed);
            self.shared.in_flight_lines.fetch_add(n, Ordering::Relaxed);
            self.joins.spawn(send_batch(self.sink.clone(), batch));
        }
    }

    fn next_batch(&mut self, now: Instant) -> Option<Vec<String>> {
        let flushing = self.flushing();
        let mut buf = lock(&self.shared.buf);
        if let Some(batch) = buf.retry.pop_front() {
            buf.retry_lines -= batch.len();
            return Some(batch);
        }
        if buf.queue.is_empty() {
            self.batch_started = None;
            return None;
        }
        let started = *self.batch_started.get_or_insert(now);
        let ready = flushing
            || buf.queue.len() >= self.batch_max_lines.min(self.shared.capacity)
            || buf.queue_bytes >= self.batch_max_bytes
            || now.duration_since(started) >= self.batch_max_age;
        if !ready {
            return None;
        }
        let mut batch = Vec::with_capacity(buf.queue.len().min(self.batch_max_lines));
        let mut bytes = 0usize;
        while batch.len() < self.batch_max_lines {
            let Some(len) = buf.queue.front().map(|l| l.len() + 1) else {
                break;
            };
            // Always at least one line, even one larger than the byte cap.
            if !batch.is_empty() && bytes + len > self.batch_max_bytes {
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

    fn next_wake(&self, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        if let Some(t) = self.retry_at.filter(|t| *t > now) {
            at(t);
        }
        if let Some(s) = self.batch_started {
            at(s + self.batch_max_age);
        }
        for (d, _) in &self.flushers {
            at(*d);
        }
        if let Some((d, _)) = &self.shutdown {
            at(*d);
        }
        wake
    }

    fn answer_flushers(&mut self, now: Instant) {
        if self.flushers.is_empty() {
            return;
        }
        let unsent = self.shared.unsent();
        let mut keep = Vec::new();
        for (deadline, reply) in self.flushers.drain(..) {
            if unsent == 0 || now >= deadline {
                let _ = reply.send(unsent);
            } else {
                keep.push((deadline, reply));
            }
        }
        self.flushers = keep;
    }

    /// Ends the task once a shutdown has flushed everything or run out of time.
    fn finish_if_done(&mut self, now: Instant) -> bool {
        let Some((deadline, _)) = &self.shutdown else {
            return false;
        };
        let unsent = self.shared.unsent();
        if unsent > 0 && now < *deadline {
            return false;
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        self.joins.abort_all();
        let abandoned = self.shared.in_flight_lines.swap(0, Ordering::Relaxed);
        self.shared.abandoned.store(abandoned, Ordering::Relaxed);
        self.shared.in_flight.store(0, Ordering::Relaxed);
        let stats = self.shared.stats();
        if unsent > 0 {
            tracing::warn!("writer stopped with {unsent} lines unsent (flush timeout reached)");
        }
        for (_, reply) in self.flushers.drain(..) {
            let _ = reply.send(unsent);
        }
        if let Some((_, reply)) = self.shutdown.take() {
            let _ = reply.send(stats);
        }
        true
    }

    fn handle(&mut self, mut lines: Vec<String>, outcome: Outcome) {
        let sh = self.shared.clone();
        let n = lines.len();
        sh.in_flight.fetch_sub(1, Ordering::Relaxed);
        sh.in_flight_lines.fetch_sub(n, Ordering::Relaxed);
        match outcome {
            Outcome::Done => {
                sh.lines_written.fetch_add(n as u64, Ordering::Relaxed);
                self.prev_backoff = Duration::ZERO;
                self.set_ok(None);
            }
            Outcome::Rejected {
                count,
                details,
                message,
            } => {
                let rejected = count.of(n);
                sh.lines_rejected
                    .fetch_add(rejected as u64, Ordering::Relaxed);
                sh.lines_written
                    .fetch_add((n - rejected) as u64, Ordering::Relaxed);
                // A schema conflict can reject every batch: warn about the
                // first few responses, then only at debug level.
                self.rejections_logged += 1;
                if self.rejections_logged > LOG_REJECTED_RESPONSES {
                    tracing::debug!("InfluxDB rejected {rejected} of {n} lines: {message}");
                } else {
                    tracing::warn!("InfluxDB rejected {rejected} of {n} lines: {message}");
                    if details.is_empty() {
                        for l in lines.iter().take(LOG_REJECTED_LINES.min(rejected)) {
                            tracing::warn!("  rejected batch line: {l}");
                        }
                    }
                }
                let shown = if self.rejections_logged > LOG_REJECTED_RESPONSES {
                    0
                } else {
                    LOG_REJECTED_LINES
                };
                for d in details.iter().take(shown) {
                    let no = d.line_number.map(|n| format!(" {n}")).unwrap_or_default();
                    tracing::warn!(
                        "  rejected line{no}: {} ({})",
                        d.original_line.as_deref().unwrap_or("?"),
                        d.error_message
                    );
                }
                self.prev_backoff = Duration::ZERO;
                self.set_ok(Some(message));
            }
            Outcome::Split { message } => {
                if n > 1 {
                    tracing::debug!("{message}: splitting a batch of {n} lines");
                    let second = lines.split_off(n / 2);
                    self.requeue(second);
                    self.requeue(lines);
                } else {
                    sh.lines_rejected.fetch_add(n as u64, Ordering::Relaxed);
                    tracing::warn!(
                        "a single line is larger than the server accepts; dropped ({message})"
                    );
                    lock(&sh.status).last_error = Some(message);
                }
            }
            Outcome::Retry { after, message } => {
                let backoff = retry::decorrelated_jitter(
                    self.prev_backoff,
                    BASE_BACKOFF,
                    self.max_backoff,
                    fastrand::f64(),
                );
                self.prev_backoff = backoff;
                // Retry-After is honoured, up to the configured ceiling.
                let wait = after.map_or(backoff, |a| a.min(self.max_backoff));
                self.retry_later(lines, wait, WriterState::Retrying, message);
            }
            Outcome::Auth { message, .. } => {
                self.prev_backoff = self.max_backoff;
                self.retry_later(lines, self.max_backoff, WriterState::AuthFailed, message);
            }
            Outcome::NotFound { message } | Outcome::Failing { message, .. } => {
                self.prev_backoff = self.max_backoff;
                self.retry_later(lines, self.max_backoff, WriterState::Failing, message);
            }
            Outcome::Closed { message } => {
                sh.lines_dropped.fetch_add(n as u64, Ordering::Relaxed);
                let mut st = lock(&sh.status);
                if st.state != WriterState::Failing {
                    tracing::warn!("{message}; dropping lines from now on");
                }
                st.state = WriterState::Failing;
                st.last_error = Some(message);
            }
        }
    }

    /// Puts a batch back at the head of the queue (it is older than what waits there).
    fn requeue(&self, batch: Vec<String>) {
        if batch.is_empty() {
            return;
        }
        let mut buf = lock(&self.shared.buf);
        buf.retry_lines += batch.len();
        buf.retry.push_front(batch);
        let dropped = buf.enforce_capacity(self.shared.capacity);
        self.shared.count_drops(&mut buf, dropped);
    }

    fn retry_later(
        &mut self,
        lines: Vec<String>,
        wait: Duration,
        state: WriterState,
        message: String,
    ) {
        self.shared.write_retries.fetch_add(1, Ordering::Relaxed);
        self.requeue(lines);
        let at = Instant::now() + wait;
        self.retry_at = Some(self.retry_at.map_or(at, |t| t.max(at)));
        let mut st = lock(&self.shared.status);
        if st.state != state {
            tracing::warn!("InfluxDB write failed, retrying in {wait:.1?}: {message}");
        } else {
            tracing::debug!("InfluxDB write failed again, retrying in {wait:.1?}: {message}");
        }
        st.state = state;
        st.last_error = Some(message);
    }

    fn set_ok(&mut self, error: Option<String>) {
        // `retry_at` stays: a late success must not cancel another response's Retry-After.
        let mut st = lock(&self.shared.status);
        st.last_write_ok = Some(SystemTime::now());
        let ok = match &self.sink {
            Sink::Output(o) => WriterState::Output {
                target: o.target.clone(),
            },
            Sink::Http(_) => WriterState::Ok,
        };
        if st.state != ok {
            if matches!(
                st.state,
                WriterState::Retrying | WriterState::AuthFailed | WriterState::Failing
            ) {
                tracing::info!("InfluxDB writes succeed again");
            }
            st.state = ok;
        }
        if error.is_some() {
            st.last_error = error;
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> Config {
        let mut c = Config::default();
        c.influx.url = Some(url::Url::parse(url).expect("url"));
        c
    }

    fn target(c: &Config) -> HttpTarget {
        let url = c.influx.url.clone().expect("url");
        HttpTarget::new(c, &url).expect("target")
    }

    #[test]
    fn v3_url_keeps_prefix_and_strips_credentials() {
        let mut c = cfg("http://admin:pw@127.0.0.1:8181/influx/?x=1");
        c.influx.no_sync = true;
        c.influx.db = "vm stats".into();
        let t = target(&c);
        assert_eq!(
            t.url.as_str(),
            "http://127.0.0.1:8181/influx/api/v3/write_lp?db=vm+stats&precision=nanosecond&no_sync=true"
        );
        assert_eq!(
            t.endpoint,
            "http://127.0.0.1:8181/influx (v3, db=vm stats, no_sync)"
        );
        assert!(matches!(t.auth, Auth::Basic { ref user, .. } if user == "admin"));
    }

    #[test]
    fn v2_and_v1_urls_and_auth() {
        let mut c = cfg("http://h:8086");
        c.influx.api = InfluxApi::V2;
        c.influx.org = Some("acme".into());
        c.influx.token = Some(Secret::new("sekrit"));
        let t = target(&c);
        assert_eq!(
            t.url.as_str(),
            "http://h:8086/api/v2/write?bucket=vmstats&org=acme&precision=ns"
        );
        match &t.auth {
            Auth::Header(v) => {
                assert_eq!(v.to_str().ok(), Some("Token sekrit"));
                assert!(v.is_sensitive());
                assert!(!format!("{v:?}").contains("sekrit"));
            }
            _ => panic!("expected a Token header"),
        }
        c.influx.api = InfluxApi::V1;
        c.influx.token = Some(Secret::new("user:pa:ss"));
        let t = target(&c);
        assert_eq!(
            t.url.as_str(),
            "http://h:8086/write?db=vmstats&precision=ns"
        );
        assert!(
            matches!(&t.auth, Auth::Basic { user, password } if user == "user" && password.expose() == "pa:ss")
        );
        c.influx.api = InfluxApi::V3;
        c.influx.token = Some(Secret::new("tok"));
        match &target(&c).auth {
            Auth::Header(v) => assert_eq!(v.to_str().ok(), Some("Bearer tok")),
            _ => panic!("expected a Bearer header"),
        }
    }

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
    fn body_is_newline_terminated_and_gzip_round_trips() {
        let lines = vec!["a b=1i 1".to_string(), "c d=2i 2".to_string()];
        let body = body_of(&lines);
        assert_eq!(body, b"a b=1i 1\nc d=2i 2\n");
        let z = gzip(&body).expect("gzip");
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).expect("gunzip");
        assert_eq!(back, body);
    }

    #[tokio::test]
    async fn off_without_url_or_output() {
        let w = WriterHandle::start(&Config::default()).expect("start");
        w.enqueue(vec!["x v=1i 1".into()]);
        let s = w.stats();
        assert_eq!(
            s.state,
            WriterState::Off {
                hint: OFF_HINT.into()
            }
        );
        assert_eq!(s.lines_queued, 0);
        assert_eq!(w.flush(Duration::from_millis(10)).await, 0);
        assert_eq!(w.shutdown(Duration::from_millis(10)).await.lines_queued, 0);
    }

    #[tokio::test]
    async fn output_file_gets_every_line_appended() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.lp");
        std::fs::write(&path, "existing\n").expect("seed file");
        let mut c = Config {
            run: crate::config::RunConfig {
                output: Some(OutputTarget::File(path.clone())),
                ..Default::default()
            },
            ..Config::default()
        };
        c.influx.batch_max_lines = 3;
        let w = WriterHandle::start(&c).expect("start");
        assert!(matches!(w.stats().state, WriterState::Output { .. }));
        let lines: Vec<String> = (0..10).map(|i| format!("m v={i}i {i}")).collect();
        w.enqueue(lines.clone());
        assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
        let s = w.shutdown(Duration::from_secs(5)).await;
        assert_eq!(s.lines_written, 10);
        assert_eq!(s.queue_depth, 0);
        let text = std::fs::read_to_string(&path).expect("read");
        let want: String = std::iter::once("existing".to_string())
            .chain(lines)
            .map(|l| l + "\n")
            .collect();
        assert_eq!(text, want);
    }

    #[tokio::test]
    async fn output_to_unwritable_path_is_a_clear_error() {
        let c = Config {
            run: crate::config::RunConfig {
                output: Some(OutputTarget::File("/nonexistent-dir/x.lp".into())),
                ..Default::default()
            },
            ..Config::default()
        };
        match WriterHandle::start(&c) {
            Err(e @ WriterError::Output { .. }) => {
                assert!(e.to_string().contains("/nonexistent-dir/x.lp"))
            }
            other => panic!("{other:?}"),
        }
    }
}
