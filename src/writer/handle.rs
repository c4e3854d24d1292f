//! The writer's handle: start, enqueue, flush, shutdown, stats.
//!
//! Modelled on OpenTelemetry's batch processor. The collector calls
//! [`WriterHandle::enqueue`], which never blocks: lines go into a bounded
//! memory queue (`queue`), one task (`task`) forms batches and hands them to
//! a sink (`sink`: InfluxDB over HTTP, or `--output FILE|-`), and with a
//! spool (`crate::spool`) lines InfluxDB cannot take yet wait on disk.
//! Flush and shutdown are messages answered through a oneshot, each bounded
//! by its timeout. With neither an URL nor an output the writer is off and
//! `enqueue` is a no-op. The token never appears in logs, errors or `Debug`.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{WriterError, OFF_HINT};
use crate::config::Config;
use crate::model::WriterStats;
use crate::spool::{Spool, SpoolConfig};
use crate::writer::pace::IN_FLIGHT_FACTOR;
use crate::writer::queue::{lock, Shared};
use crate::writer::sink::{FileSink, HttpSink, Sink};
use crate::writer::task::{off_stats, Ctrl, Limits, SpoolSide, Task};

/// No request body is larger: InfluxDB 3 refuses bodies over 10 MiB (with a 500).
const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Whether and how the writer uses the on-disk spool.
#[derive(Debug, Clone)]
pub enum SpoolMode {
    /// Memory only.
    Off,
    /// A spool that cannot be opened is an error (headless: exit 2).
    Required(SpoolConfig),
    /// A spool that cannot be opened is reported and the writer runs memory only (TUI).
    BestEffort(SpoolConfig),
    /// Like `BestEffort`, and a spool that cannot be opened now (still locked
    /// by the writer a reload replaces, fds exhausted) is tried again every
    /// few seconds until it opens.
    Retry(SpoolConfig),
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

impl WriterHandle {
    /// Starts the writer task without a spool (needs a tokio runtime). Off
    /// when neither an InfluxDB URL nor `--output` is configured.
    pub fn start(config: &Config) -> Result<Self, WriterError> {
        Self::start_with_spool(config, SpoolMode::Off)
    }

    /// Starts the writer task; InfluxDB outputs use the spool as `mode` says.
    pub fn start_with_spool(config: &Config, mode: SpoolMode) -> Result<Self, WriterError> {
        let sink: Arc<dyn Sink> = match (&config.run.output, &config.influx.url) {
            (Some(target), _) => Arc::new(FileSink::open(target)?),
            (None, Some(url)) => Arc::new(HttpSink::new(config, url)?),
            (None, None) => return Ok(Self { inner: None }),
        };
        let mode = if sink.spools() { mode } else { SpoolMode::Off };
        Self::start_sink(config, sink, mode)
    }

    /// Starts the writer task over any sink (tests use fakes).
    pub fn start_sink(
        config: &Config,
        sink: Arc<dyn Sink>,
        mode: SpoolMode,
    ) -> Result<Self, WriterError> {
        let (spool, off_reason) = crate::spool::off_async(|| open_spool(&mode))?;
        Self::start_open(config, sink, spool, off_reason.map(|r| (mode, r)))
    }

    /// Starts the writer task over a spool opened by the caller (tests open
    /// one over a file layer that fails on purpose).
    pub fn start_with_open_spool(
        config: &Config,
        sink: Arc<dyn Sink>,
        spool: Spool,
    ) -> Result<Self, WriterError> {
        Self::start_open(config, sink, Some(spool), None)
    }

    fn start_open(
        config: &Config,
        sink: Arc<dyn Sink>,
        spool: Option<Spool>,
        off: Option<(SpoolMode, String)>,
    ) -> Result<Self, WriterError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            WriterError::Setup("the InfluxDB writer must be started inside a tokio runtime".into())
        })?;
        let ic = &config.influx;
        let capacity = ic.max_queue.max(1);
        let shared = Arc::new(Shared::new(
            capacity,
            Some(sink.endpoint()),
            sink.ok_state(),
        ));
        let reopen = match off {
            Some((SpoolMode::BestEffort(cfg), reason)) => {
                *lock(&shared.spool) = Some(off_stats(&cfg, reason));
                None
            }
            Some((SpoolMode::Retry(cfg), reason)) => {
                *lock(&shared.spool) = Some(off_stats(&cfg, reason));
                Some(cfg)
            }
            _ => None,
        };
        let limits = Limits {
            max_in_flight: sink.max_in_flight(ic.max_in_flight),
            in_flight_ceiling: sink
                .max_in_flight(ic.max_in_flight.saturating_mul(IN_FLIGHT_FACTOR)),
            batch_max_lines: ic.batch_max_lines.max(1),
            batch_max_bytes: ic.batch_max_bytes.clamp(1, MAX_REQUEST_BYTES),
            batch_max_age: ic.batch_max_age,
            max_backoff: ic.max_backoff,
        };
        let (ctrl, ctrl_rx) = mpsc::unbounded_channel();
        let task = Task::new(
            shared.clone(),
            sink,
            limits,
            spool.map(SpoolSide::new),
            reopen,
        );
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
        {
            // Counted under the queue's lock: `stats` sees lines and counters move together.
            let mut buf = lock(&sh.buf);
            sh.lines_queued.fetch_add(n as u64, Ordering::Relaxed);
            buf.enq_queued += n as u64;
            if sh.closed.load(Ordering::Relaxed) {
                sh.lines_dropped.fetch_add(n as u64, Ordering::Relaxed);
                buf.enq_dropped += n as u64;
                return;
            }
            // Lines that would be dropped at once are never copied in.
            let skip = n.saturating_sub(sh.capacity);
            for line in lines.into_iter().skip(skip) {
                buf.queue_bytes += line.len() + 1;
                buf.queue.push_back(line);
            }
            let dropped = skip + buf.enforce_capacity(sh.capacity);
            buf.enq_dropped += dropped as u64;
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

    /// The counters as the task sees them between two of its steps, so that
    /// no line is half way between two of them: with no `enqueue` running at
    /// the same time, `unaccounted()` is exactly 0.
    pub async fn settled_stats(&self) -> WriterStats {
        let Some(inner) = &self.inner else {
            return self.stats();
        };
        let (reply, rx) = oneshot::channel();
        if inner.ctrl.send(Ctrl::Stats { reply }).is_err() {
            return self.stats();
        }
        rx.await.unwrap_or_else(|_| inner.shared.stats())
    }

    /// Sends everything queued so far; gives up after `timeout` (at once
    /// during an outage when the spool holds the lines). Returns lines still
    /// in memory or on the wire.
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

    /// Flushes (bounded by `timeout`), saves what is left to the spool, stops
    /// the task, returns the final counters. Lines neither sent nor spooled
    /// are reported in `queue_depth`.
    pub async fn shutdown(self, timeout: Duration) -> WriterStats {
        let Some(inner) = &self.inner else {
            return self.stats();
        };
        let (reply, rx) = oneshot::channel();
        let deadline = Instant::now() + timeout;
        if inner.ctrl.send(Ctrl::Shutdown { deadline, reply }).is_ok() {
            if let Ok(Ok(stats)) = tokio::time::timeout(timeout + Duration::from_secs(2), rx).await
            {
                return stats;
            }
        }
        inner.shared.closed.store(true, Ordering::Relaxed);
        inner.shared.stats()
    }
}

/// Opens the spool `mode` asks for; `Err` only when it is required.
fn open_spool(mode: &SpoolMode) -> Result<(Option<Spool>, Option<String>), WriterError> {
    let (cfg, required) = match mode {
        SpoolMode::Off => return Ok((None, None)),
        SpoolMode::Required(cfg) => (cfg, true),
        SpoolMode::BestEffort(cfg) | SpoolMode::Retry(cfg) => (cfg, false),
    };
    if !cfg.enabled {
        return Ok((None, None));
    }
    match Spool::open(cfg) {
        Ok(s) => Ok((Some(s), None)),
        Err(e) if required => Err(e.into()),
        Err(e) => {
            tracing::warn!("running without a spool (memory only): {e}");
            Ok((None, Some(e.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputTarget;
    use crate::model::{SpoolState, WriterState};
    use crate::spool::SpoolError;
    use crate::writer::retry::{Outcome, RejectedCount};
    use crate::writer::sink::Batch;
    use futures::future::BoxFuture;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    type Script = Box<dyn Fn(&[String], usize) -> Answer + Send + Sync>;

    /// A sink that answers from a script and records what it delivered.
    struct Fake {
        answer: Script,
        /// How long each delivery takes.
        delay: Duration,
        calls: AtomicUsize,
        delivered: Mutex<Vec<String>>,
    }

    enum Answer {
        Now(Outcome),
        Hang,
        Panic,
    }

    impl Fake {
        fn new(answer: impl Fn(&[String], usize) -> Answer + Send + Sync + 'static) -> Arc<Self> {
            Arc::new(Self {
                answer: Box::new(answer),
                delay: Duration::ZERO,
                calls: AtomicUsize::new(0),
                delivered: Mutex::new(Vec::new()),
            })
        }
        fn delivered(&self) -> Vec<String> {
            lock(&self.delivered).clone()
        }
    }

    impl Sink for Fake {
        fn export(self: Arc<Self>, batch: Batch) -> BoxFuture<'static, Outcome> {
            let call = self.calls.fetch_add(1, Ordering::Relaxed);
            let answer = (self.answer)(&batch, call);
            Box::pin(async move {
                match answer {
                    Answer::Now(Outcome::Done) => {
                        tokio::time::sleep(self.delay).await;
                        lock(&self.delivered).extend(batch.iter().cloned());
                        Outcome::Done
                    }
                    Answer::Now(o) => o,
                    Answer::Hang => std::future::pending().await,
                    Answer::Panic => panic!("export panicked (test)"),
                }
            })
        }
        fn max_in_flight(&self, configured: usize) -> usize {
            configured
        }
        fn ok_state(&self) -> WriterState {
            WriterState::Ok
        }
        fn endpoint(&self) -> String {
            "fake".into()
        }
        fn spools(&self) -> bool {
            true
        }
    }

    fn down() -> Answer {
        Answer::Now(Outcome::Retry {
            after: None,
            message: "connection refused".into(),
        })
    }

    fn config(batch: usize, queue: usize) -> Config {
        let mut c = Config::default();
        c.influx.batch_max_lines = batch;
        c.influx.max_queue = queue;
        c.influx.batch_max_age = Duration::from_millis(50);
        c.influx.max_backoff = Duration::from_millis(400);
        c.influx.max_in_flight = 2;
        c
    }

    fn lines(from: usize, n: usize) -> Vec<String> {
        (from..from + n).map(|i| format!("m v={i}i {i}")).collect()
    }

    fn turns(w: &WriterHandle) -> u64 {
        w.inner
            .as_ref()
            .map_or(0, |i| i.shared.loop_turns.load(Ordering::Relaxed))
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

    /// With InfluxDB down and a batch always waiting, the task sleeps until
    /// its backoff ends instead of spinning on the (past) batch deadline.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_busy_loop_while_the_server_is_down() {
        let sink = Fake::new(|_, _| down());
        let w = WriterHandle::start_sink(&config(10, 10_000), sink.clone(), SpoolMode::Off)
            .expect("start");
        let start = turns(&w);
        for i in 0..20 {
            w.enqueue(lines(i * 5, 5));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 1 s: 20 enqueues, a few completions and backoff ends. A spin is millions.
        let spent = turns(&w) - start;
        assert!(spent < 200, "{spent} loop turns in 1 s");
        assert!(sink.calls.load(Ordering::Relaxed) < 20);
        assert_eq!(w.stats().state, WriterState::Retrying);
    }

    /// Every slot hung on a slow server: no spin either.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_busy_loop_while_every_request_hangs() {
        let sink = Fake::new(|_, _| Answer::Hang);
        let w = WriterHandle::start_sink(&config(5, 10_000), sink.clone(), SpoolMode::Off)
            .expect("start");
        let start = turns(&w);
        for i in 0..20 {
            w.enqueue(lines(i * 20, 20));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let spent = turns(&w) - start;
        assert!(spent < 200, "{spent} loop turns in 1 s");
        assert_eq!(sink.calls.load(Ordering::Relaxed), 2);
        assert_eq!(w.stats().requests_in_flight, 2);
    }

    /// Acknowledgements that take 300 ms with lines piling up: the writer
    /// raises its requests in flight and batch lines, delivers everything,
    /// and goes back to the configured figures once only a trickle comes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_acknowledgements_raise_the_pace_and_a_trickle_lowers_it() {
        let sink = Arc::new(Fake {
            delay: Duration::from_millis(300),
            ..Arc::into_inner(Fake::new(|_, _| Answer::Now(Outcome::Done))).expect("fresh")
        });
        let mut c = config(10, 100_000);
        c.influx.batch_max_age = Duration::from_millis(100);
        let w = WriterHandle::start_sink(&c, sink.clone(), SpoolMode::Off).expect("start");
        let figures = |s: &WriterStats| (s.requests_in_flight_limit, s.batch_lines_limit);
        assert_eq!(figures(&w.stats()), (2, 10));
        // 200 lines every 100 ms: 2,000 lines/s against 2 × 10 per 300 ms.
        let mut peak = (0, 0);
        for i in 0..20 {
            w.enqueue(lines(i * 200, 200));
            tokio::time::sleep(Duration::from_millis(100)).await;
            peak = peak.max(figures(&w.stats()));
        }
        assert_eq!(peak, (2 * IN_FLIGHT_FACTOR, 80), "raised to the ceilings");
        assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
        // A line now and then: each acknowledgement sees an empty queue.
        for i in 0..40 {
            w.enqueue(lines(4000 + i, 1));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s = w.shutdown(Duration::from_secs(5)).await;
        assert_eq!(figures(&s), (2, 10), "back to the configured figures");
        // Several requests complete in any order: compare as sets.
        let (mut got, mut want) = (sink.delivered(), lines(0, 4040));
        got.sort();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(
            (s.lines_written, s.lines_dropped, s.unaccounted()),
            (4040, 0, 0)
        );
    }

    #[tokio::test]
    async fn a_panicking_send_loses_no_lines() {
        let sink = Fake::new(|_, call| {
            if call == 0 {
                Answer::Panic
            } else {
                Answer::Now(Outcome::Done)
            }
        });
        let w = WriterHandle::start_sink(&config(100, 10_000), sink.clone(), SpoolMode::Off)
            .expect("start");
        w.enqueue(lines(0, 30));
        assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
        let s = w.shutdown(Duration::from_secs(1)).await;
        assert_eq!(sink.delivered(), lines(0, 30));
        assert_eq!(
            (s.lines_written, s.requests_in_flight, s.queue_depth),
            (30, 0, 0)
        );
    }

    #[tokio::test]
    async fn whole_batch_rejection_is_bisected_down_to_the_bad_lines() {
        let sink = Fake::new(|batch, _| {
            if batch.iter().any(|l| l.contains("bad")) {
                Answer::Now(Outcome::Bisect {
                    message: "400 invalid".into(),
                })
            } else {
                Answer::Now(Outcome::Done)
            }
        });
        let w = WriterHandle::start_sink(&config(64, 10_000), sink.clone(), SpoolMode::Off)
            .expect("start");
        let mut batch = lines(0, 64);
        batch[5] = "bad 5".into();
        batch[40] = "bad 40".into();
        w.enqueue(batch.clone());
        assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
        let s = w.shutdown(Duration::from_secs(1)).await;
        assert_eq!((s.lines_written, s.lines_rejected), (62, 2));
        let mut got = sink.delivered();
        got.sort();
        let mut want: Vec<String> = batch.into_iter().filter(|l| !l.contains("bad")).collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn partial_rejections_still_count_only_the_named_lines() {
        let sink = Fake::new(|_, _| {
            Answer::Now(Outcome::Rejected {
                count: RejectedCount::Lines(1),
                details: vec![],
                message: "partial write".into(),
            })
        });
        let w = WriterHandle::start_sink(&config(10, 10_000), sink, SpoolMode::Off).expect("start");
        w.enqueue(lines(0, 10));
        assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
        let s = w.shutdown(Duration::from_secs(1)).await;
        assert_eq!((s.lines_written, s.lines_rejected), (9, 1));
    }

    fn spool_cfg(dir: &std::path::Path) -> SpoolConfig {
        SpoolConfig::with_dir(dir.to_path_buf())
    }

    /// An outage longer than the memory queue: lines go to the spool, none
    /// is dropped, and once the server is back every line arrives, the
    /// backlog oldest first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outage_spools_then_replays_everything_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let up2 = up.clone();
        let sink = Fake::new(move |_, _| {
            if up2.load(Ordering::Relaxed) {
                Answer::Now(Outcome::Done)
            } else {
                down()
            }
        });
        let mut c = config(10, 50);
        c.influx.max_in_flight = 1;
        let w =
            WriterHandle::start_sink(&c, sink.clone(), SpoolMode::Required(spool_cfg(dir.path())))
                .expect("start");
        for i in 0..30 {
            w.enqueue(lines(i * 10, 10));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let s = w.stats();
        let spool = s.spool.clone().expect("spool stats");
        assert_eq!(s.lines_dropped, 0);
        assert!(spool.lines > 50, "{spool:?}");
        assert!(s.queue_depth <= 50);
        up.store(true, Ordering::Relaxed);
        w.enqueue(lines(300, 10));
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.delivered().len() < 310 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let s = w.shutdown(Duration::from_secs(2)).await;
        let mut got = sink.delivered();
        assert_eq!(got.len(), 310, "duplicates or losses");
        // The backlog arrives oldest first.
        let number = |l: &String| -> u64 {
            l.rsplit(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        let backlog: Vec<u64> = got.iter().map(number).filter(|n| *n < 300).collect();
        assert!(backlog.windows(2).all(|w| w[0] < w[1]), "{backlog:?}");
        got.sort();
        let mut want = lines(0, 310);
        want.sort();
        assert_eq!(got, want);
        let spool = s.spool.expect("spool stats");
        assert_eq!((s.lines_written, s.lines_dropped, spool.lines), (310, 0, 0));
        assert!(spool.lines_replayed > 0);
    }

    /// Shutdown during an outage keeps every queued line in the spool; the
    /// next run sends them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_during_an_outage_keeps_lines_for_the_next_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let sink = Fake::new(|_, _| down());
        let w = WriterHandle::start_sink(
            &config(10, 10_000),
            sink,
            SpoolMode::Required(spool_cfg(dir.path())),
        )
        .expect("start");
        w.enqueue(lines(0, 25));
        tokio::time::sleep(Duration::from_millis(100)).await;
        w.enqueue(lines(25, 5));
        let started = Instant::now();
        let s = w.shutdown(Duration::from_secs(30)).await;
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "waited for a dead server"
        );
        assert_eq!(s.queue_depth, 0);
        assert_eq!(s.spool.expect("spool").lines, 30);

        let sink = Fake::new(|_, _| Answer::Now(Outcome::Done));
        let w = WriterHandle::start_sink(
            &config(10, 10_000),
            sink.clone(),
            SpoolMode::Required(spool_cfg(dir.path())),
        )
        .expect("restart");
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.delivered().len() < 30 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let s = w.shutdown(Duration::from_secs(1)).await;
        let mut got = sink.delivered();
        got.sort();
        let mut want = lines(0, 30);
        want.sort();
        assert_eq!(got, want);
        assert_eq!(s.spool.expect("spool").lines_replayed, 30);
    }

    /// Live lines never wait behind a long backlog for more than one batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_lines_interleave_with_the_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut spool = Spool::open(&spool_cfg(dir.path())).expect("spool");
            for i in 0..50 {
                spool
                    .append(&lines(i * 10, 10), std::time::SystemTime::now())
                    .expect("append");
            }
        }
        let sink = Arc::new(Fake {
            delay: Duration::from_millis(10),
            ..Arc::into_inner(Fake::new(|_, _| Answer::Now(Outcome::Done))).expect("fresh")
        });
        let mut c = config(10, 10_000);
        c.influx.max_in_flight = 1;
        let w =
            WriterHandle::start_sink(&c, sink.clone(), SpoolMode::Required(spool_cfg(dir.path())))
                .expect("start");
        w.enqueue(vec!["live v=1i 1".into()]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while sink.delivered().len() < 501 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        w.shutdown(Duration::from_secs(1)).await;
        let got = sink.delivered();
        let pos = got
            .iter()
            .position(|l| l.starts_with("live"))
            .expect("live line sent");
        // Ahead of it: the backlog sent while it waited for its batch age
        // (50 ms, 10 ms per batch), and at most one batch more.
        assert!(pos <= 100, "live line sent after {pos} backlog lines");
    }

    #[tokio::test]
    async fn a_locked_spool_is_an_error_or_memory_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _holder = Spool::open(&spool_cfg(dir.path())).expect("spool");
        let sink = Fake::new(|_, _| Answer::Now(Outcome::Done));
        match WriterHandle::start_sink(
            &config(10, 100),
            sink.clone(),
            SpoolMode::Required(spool_cfg(dir.path())),
        ) {
            Err(WriterError::Spool(SpoolError::Locked { .. })) => {}
            other => panic!("{other:?}"),
        }
        let w = WriterHandle::start_sink(
            &config(10, 100),
            sink,
            SpoolMode::BestEffort(spool_cfg(dir.path())),
        )
        .expect("best effort");
        match w.stats().spool.map(|s| s.state) {
            Some(SpoolState::Off { reason }) => assert!(reason.contains("in use"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    /// A sink that is down until `up` is set.
    fn switchable() -> (Arc<std::sync::atomic::AtomicBool>, Arc<Fake>) {
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let up2 = up.clone();
        let sink = Fake::new(move |_, _| {
            if up2.load(Ordering::Relaxed) {
                Answer::Now(Outcome::Done)
            } else {
                down()
            }
        });
        (up, sink)
    }

    /// Polls `cond` every 20 ms for at most 10 s.
    async fn until(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cond()
    }

    /// The books balance (read between two steps of the task).
    async fn assert_accounted(w: &WriterHandle, step: &str) -> WriterStats {
        let s = w.settled_stats().await;
        assert_eq!(s.unaccounted(), 0, "{step}: {s:#?}");
        s
    }

    /// The disk fills up (ENOSPC), then no descriptor can be opened
    /// (EMFILE): memory only with the state saying so, then back to the
    /// spool once it can be written again. Nothing is lost or uncounted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unwritable_spool_falls_back_to_memory_and_returns() {
        use crate::spool::fs::{Faults, Op};
        let dir = tempfile::tempdir().expect("tempdir");
        let (up, sink) = switchable();
        // Segments of 16 KiB: appends soon need a new file.
        let cfg = SpoolConfig {
            max_bytes: 128 << 10,
            ..SpoolConfig::with_dir(dir.path().join("spool"))
        };
        let faults = Faults::new();
        let spool = Spool::open_with(&cfg, Arc::new(faults.clone())).expect("spool");
        let mut c = config(10, 10_000);
        c.influx.max_in_flight = 1;
        let w = WriterHandle::start_with_open_spool(&c, sink.clone(), spool).expect("start");
        let state = |w: &WriterHandle| w.stats().spool.map(|s| s.state);
        let mut next = 0;
        let mut feed = |w: &WriterHandle, n: usize| {
            for _ in 0..n {
                w.enqueue(lines(next, 100));
                next += 100;
            }
        };
        feed(&w, 5);
        assert!(until(|| w.stats().spool.is_some_and(|s| s.lines == 500)).await);
        assert_eq!(state(&w), Some(SpoolState::Active));
        assert_accounted(&w, "spooled").await;
        for (op, errno) in [(Op::Write, libc::ENOSPC), (Op::Open, libc::EMFILE)] {
            faults.fail(op, errno, 1_000);
            let mut unavailable = false;
            for _ in 0..100 {
                feed(&w, 1);
                tokio::time::sleep(Duration::from_millis(20)).await;
                unavailable = matches!(state(&w), Some(SpoolState::Unavailable { reason }) if reason.contains("cannot write the spool"));
                if unavailable {
                    break;
                }
            }
            assert!(unavailable, "{op:?}: {:?}", state(&w));
            let s = assert_accounted(&w, "memory only").await;
            assert!(s.queue_depth > 0, "lines wait in memory");
            faults.clear();
            feed(&w, 10);
            assert!(until(|| state(&w) == Some(SpoolState::Active)).await);
            assert_accounted(&w, "spool back").await;
        }
        up.store(true, Ordering::Relaxed);
        let all = until(|| sink.delivered().len() >= next).await;
        let s = w.shutdown(Duration::from_secs(2)).await;
        assert!(all, "{s:#?}");
        assert_eq!(s.unaccounted(), 0, "{s:#?}");
        assert_eq!((s.lines_dropped, s.lines_written), (0, next as u64));
        let mut got = sink.delivered();
        got.sort();
        let mut want = lines(0, next);
        want.sort();
        assert_eq!(got, want);
    }

    /// Before the fix, appends went on into a deleted directory's unlinked
    /// file, and what it held vanished without a counter. Now the deletion is
    /// noticed, its lines are counted as dropped, the directory comes back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deleted_spool_directory_is_counted_not_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool_dir = dir.path().join("spool");
        let (up, sink) = switchable();
        let mut c = config(10, 10_000);
        c.influx.max_in_flight = 1;
        let w =
            WriterHandle::start_sink(&c, sink.clone(), SpoolMode::Required(spool_cfg(&spool_dir)))
                .expect("start");
        w.enqueue(lines(0, 300));
        assert!(until(|| w.stats().spool.is_some_and(|s| s.lines == 300)).await);
        std::fs::remove_dir_all(&spool_dir).expect("remove the spool dir");
        w.enqueue(lines(300, 200));
        tokio::time::sleep(Duration::from_millis(300)).await;
        up.store(true, Ordering::Relaxed);
        let settled = until(|| {
            let s = w.stats();
            s.lines_written + s.lines_dropped >= 500 || sink.delivered().len() >= 500
        })
        .await;
        let s = w.shutdown(Duration::from_secs(2)).await;
        assert!(settled, "{s:#?}");
        let spooled = s.spool.as_ref().map_or(0, |sp| sp.lines);
        assert_eq!(
            s.lines_queued,
            s.lines_written + s.lines_dropped + s.lines_rejected + spooled + s.queue_depth as u64,
            "every line accounted for: {s:#?}"
        );
        assert_eq!(s.lines_dropped, 300, "{s:#?}");
        assert_eq!(sink.delivered(), lines(300, 200));
        assert!(spool_dir.is_dir(), "the directory is made again");
    }

    /// Fault injection at every step of an outage and its replay: appends
    /// fail with ENOSPC and EMFILE, fsync with EIO, replay reads with EIO
    /// and EMFILE, a record rots on disk. After every step the books
    /// balance; at the end every line was written once, except the rotten
    /// record's, which are counted as dropped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_line_accounted_for_under_injected_faults() {
        use crate::spool::fs::{Faults, Op};
        let dir = tempfile::tempdir().expect("tempdir");
        let (up, sink) = switchable();
        let cfg = SpoolConfig {
            max_bytes: 64 << 10,
            fsync_interval: Duration::from_millis(50),
            ..SpoolConfig::with_dir(dir.path().join("spool"))
        };
        let faults = Faults::new();
        let spool = Spool::open_with(&cfg, Arc::new(faults.clone())).expect("spool");
        let mut c = config(50, 10_000);
        c.influx.max_in_flight = 2;
        let w = WriterHandle::start_with_open_spool(&c, sink.clone(), spool).expect("start");
        let mut next = 0;
        let mut feed = |w: &WriterHandle, n: usize| {
            w.enqueue(lines(next, n));
            next += n;
        };
        let steps: [(&str, Option<(Op, i32)>); 4] = [
            ("outage, spooling", None),
            ("append ENOSPC", Some((Op::Write, libc::ENOSPC))),
            ("new segment EMFILE", Some((Op::Open, libc::EMFILE))),
            ("fsync EIO", Some((Op::Sync, libc::EIO))),
        ];
        for (step, fault) in steps {
            if let Some((op, errno)) = fault {
                faults.fail(op, errno, 3);
            }
            for _ in 0..10 {
                feed(&w, 200);
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_accounted(&w, step).await;
            faults.clear();
        }
        // A record rots on disk: the first one of the oldest segment.
        let mut segs: Vec<_> = std::fs::read_dir(&cfg.dir)
            .expect("ls")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .collect();
        segs.sort();
        let mut data = std::fs::read(&segs[0]).expect("read");
        data[crate::spool::record::HEADER + 3] ^= 0x40;
        std::fs::write(&segs[0], &data).expect("write");
        // InfluxDB is back; replay meets read errors, then none.
        up.store(true, Ordering::Relaxed);
        for (step, op, errno) in [
            ("replay read EIO", Op::Read, libc::EIO),
            ("replay open EMFILE", Op::Open, libc::EMFILE),
        ] {
            faults.fail(op, errno, 2);
            feed(&w, 100);
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_accounted(&w, step).await;
            faults.clear();
        }
        assert!(
            until(|| {
                let s = w.stats();
                s.spooled() == 0 && s.queue_depth == 0 && s.lines_in_flight == 0
            })
            .await,
            "{:#?}",
            w.stats()
        );
        let s = w.shutdown(Duration::from_secs(2)).await;
        assert_eq!(s.unaccounted(), 0, "{s:#?}");
        let spool = s.spool.clone().expect("spool");
        assert_eq!(spool.corrupt_skipped, 1, "{s:#?}");
        assert!(s.lines_dropped > 0, "the rotten record is counted");
        assert_eq!(s.lines_dropped, spool.lines_dropped);
        let mut got = sink.delivered();
        got.sort();
        let n = got.len();
        got.dedup();
        assert_eq!(got.len(), n, "no line written twice");
        assert_eq!(n as u64 + s.lines_dropped, next as u64, "{s:#?}");
        assert_eq!(s.lines_written, n as u64);
    }

    /// A writer started while another holds the spool's lock (a SIGHUP
    /// restart whose predecessor is still letting go) takes the spool as
    /// soon as it is free, instead of staying memory only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_locked_spool_is_taken_once_free_when_retrying() {
        let dir = tempfile::tempdir().expect("tempdir");
        let holder = Spool::open(&spool_cfg(dir.path())).expect("spool");
        let (_up, sink) = switchable();
        let w = WriterHandle::start_sink(
            &config(10, 10_000),
            sink,
            SpoolMode::Retry(spool_cfg(dir.path())),
        )
        .expect("start");
        let state = |w: &WriterHandle| w.stats().spool.map(|s| s.state);
        assert!(matches!(state(&w), Some(SpoolState::Off { reason }) if reason.contains("in use")));
        w.enqueue(lines(0, 30));
        drop(holder);
        assert!(until(|| state(&w) == Some(SpoolState::Active)).await);
        assert!(until(|| w.stats().spooled() == 30).await, "{:?}", w.stats());
        let s = w.shutdown(Duration::from_millis(200)).await;
        assert_eq!((s.spooled(), s.unaccounted()), (30, 0));
    }

    /// `/status` and `/metrics` read the counters while lines move: every
    /// reading balances, not only the final one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn live_readings_always_balance() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Every fourth request fails: spilling, replaying and live sends interleave.
        let sink = Arc::new(Fake {
            delay: Duration::from_millis(2),
            ..Arc::into_inner(Fake::new(|_, call| {
                if call % 4 == 3 {
                    down()
                } else {
                    Answer::Now(Outcome::Done)
                }
            }))
            .expect("fresh")
        });
        let mut c = config(20, 300);
        c.influx.max_backoff = Duration::from_millis(20);
        let w =
            WriterHandle::start_sink(&c, sink.clone(), SpoolMode::Required(spool_cfg(dir.path())))
                .expect("start");
        let reader = {
            let w = w.clone();
            tokio::spawn(async move {
                let mut readings = 0;
                for _ in 0..3000 {
                    let s = w.stats();
                    assert_eq!(s.unaccounted(), 0, "{s:#?}");
                    readings += 1;
                    tokio::task::yield_now().await;
                }
                readings
            })
        };
        for i in 0..300 {
            w.enqueue(lines(i * 37, 37));
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(reader.await.expect("reader"), 3000);
        let s = w.shutdown(Duration::from_secs(5)).await;
        assert_eq!(s.unaccounted(), 0, "{s:#?}");
    }
}
