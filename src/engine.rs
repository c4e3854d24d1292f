//! The engine: collector + writer behind one handle, publishing snapshots.
//!
//! Frontends get a `watch::Receiver<Arc<Snapshot>>` and send [`Control`]s;
//! they never call libvirt or InfluxDB themselves. One task owns all engine
//! state, so controls and cycles never race.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

use crate::alert::{self, Rules, Tracker};
use crate::collector::derive::Deriver;
use crate::collector::filter::DomainFilter;
use crate::collector::metadata::MetadataSpec;
use crate::collector::poll::Poller;
use crate::config::Config;
use crate::encode::encoder::Encoder;
use crate::encode::line_protocol::{EncodeCtx, Escaping};
use crate::limit::{Limit, Step};
use crate::model::{CollectorStats, Snapshot, SourceState, WriterStats};
use crate::output::target::appends_to_rows;
use crate::spool::SpoolConfig;
use crate::writer::supervise::Writers;
use crate::writer::SpoolMode;

/// What a frontend can ask of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Resume polling with a fresh baseline.
    Start,
    /// Stop polling; the writer flushes what it has.
    Stop,
    SetPollInterval(Duration),
}

/// Final counters, for the last line of headless mode and the TUI's exit.
#[derive(Debug, Clone)]
pub struct FinalReport {
    pub collector: CollectorStats,
    pub writer: WriterStats,
    /// Lines neither sent nor saved to the spool when the flush timeout ran out.
    pub unsent: usize,
}

enum Msg {
    Control(Control),
    /// Extra line protocol (self-metrics) for the writer; dropped when it is off.
    Lines(Vec<String>),
    /// SIGHUP: new tags, and a new writer when `restart_writer`.
    Reconfigure {
        config: Box<Config>,
        restart_writer: bool,
    },
    Shutdown(oneshot::Sender<FinalReport>),
}

/// A cloneable way to steer a running engine (for the control API), without
/// the right to shut it down, which stays with the [`EngineHandle`].
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::UnboundedSender<Msg>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl Controller {
    /// Never blocks; ignored once the engine has stopped.
    pub fn send(&self, control: Control) {
        let _ = self.tx.send(Msg::Control(control));
    }

    /// Hands lines to the writer's queue (counted like the collector's own).
    pub fn enqueue(&self, lines: Vec<String>) {
        let _ = self.tx.send(Msg::Lines(lines));
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Takes reloaded tags and, when `restart_writer`, replaces the writer by
    /// one built from `config` (the old one flushes in the background; its
    /// counters keep counting in the snapshot).
    pub fn reconfigure(&self, config: Config, restart_writer: bool) {
        let _ = self.tx.send(Msg::Reconfigure {
            config: Box::new(config),
            restart_writer,
        });
    }
}

/// Which spool a run uses. A one-shot (`--once`, `-n`) uses none: the spool
/// belongs to the service, which would replay a one-shot's leftovers as its
/// own; what a one-shot cannot send by the flush timeout makes it exit 3.
/// The service needs its spool; the TUI uses it when it is free.
pub fn spool_mode(config: &Config, spool: SpoolConfig) -> SpoolMode {
    match (config.run.iterations, config.run.no_ui) {
        (Some(_), _) => SpoolMode::Off,
        (None, true) => SpoolMode::Required(spool),
        (None, false) => SpoolMode::BestEffort(spool),
    }
}

/// The tags every line carries and how they are escaped: `host`, `[tags]`, and the
/// names of `collector.metadata_tags` (JSON/CSV columns).
fn encode_ctx(config: &Config) -> EncodeCtx {
    EncodeCtx::with_escaping(
        &config.collector.host,
        &config.tags,
        Escaping::for_api(config.influx.api),
    )
    .with_metadata_tags(
        config
            .collector
            .metadata_tags
            .iter()
            .map(|t| t.name.clone())
            .collect(),
    )
}

/// The encoder of the first collection; a CSV file that already has rows gets no
/// second header row.
fn first_encoder(config: &Config) -> Encoder {
    let encoder = Encoder::new(config.run.format, encode_ctx(config));
    match appends_to_rows(config.run.output.as_ref()) {
        true => encoder.continuing(),
        false => encoder,
    }
}

pub struct EngineHandle {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    tx: mpsc::UnboundedSender<Msg>,
    task: tokio::task::JoinHandle<()>,
    done: watch::Receiver<bool>,
}

/// Shortest poll interval the `+`/`-` keys and flags may set.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);

impl EngineHandle {
    /// Starts collector and writer on the current tokio runtime. Headless
    /// needs its spool (an error otherwise); the TUI runs without one and says so.
    pub fn start(config: &Config) -> color_eyre::Result<Self> {
        let env = |k: &str| std::env::var(k).ok();
        let spool = SpoolConfig::from_settings(&config.spool, crate::config::is_root(), &env);
        Self::start_with_spool(config, spool_mode(config, spool))
    }

    /// [`EngineHandle::start`] with an explicit spool.
    pub fn start_with_spool(config: &Config, spool: SpoolMode) -> color_eyre::Result<Self> {
        let writers = Writers::start(config, spool)?;
        let mut first = Snapshot::empty(
            &config.libvirt.uri,
            &config.collector.host,
            config.collector.poll_interval,
        );
        first.writer = writers.stats();
        let (snap_tx, snapshots) = watch::channel(Arc::new(first.clone()));
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(false);
        let engine = Engine {
            poller: Poller::new(
                &config.libvirt.uri,
                config.libvirt.device_cache_ttl,
                config.libvirt.timeout,
            )
            .with_filter(
                DomainFilter::new(&config.collector.domains, &config.collector.exclude)
                    .map_err(|e| color_eyre::eyre::eyre!(e))?,
            )
            .with_metadata(MetadataSpec::new(
                config.collector.metadata_tags.clone(),
                config.collector.metadata_refresh,
            ))
            .with_host_interval(config.collector.host_interval),
            deriver: Deriver::new(config.rates.clone()),
            encoder: first_encoder(config),
            limit: config.run.iterations.map(Limit::new),
            done: done_tx,
            writers,
            flush_timeout: config.influx.flush_timeout,
            snap: first,
            snap_tx,
            reported_skips: HashSet::new(),
            alerts: Alerts::new(config),
        };
        let task = tokio::spawn(engine.run(rx));
        Ok(Self {
            snapshots,
            tx,
            task,
            done,
        })
    }

    /// Resolves once the last of `--once` / `-n N` collections was handed to the
    /// writer; never without such a limit.
    pub fn finished(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut done = self.done.clone();
        async move {
            if done.wait_for(|d| *d).await.is_err() {
                // The engine is gone without finishing: never resolve.
                std::future::pending::<()>().await;
            }
        }
    }

    /// A receiver that sees every published snapshot (the latest one at least).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Never blocks; ignored once the engine has stopped.
    pub fn send(&self, control: Control) {
        let _ = self.tx.send(Msg::Control(control));
    }

    /// A cloneable handle for sending controls and lines.
    pub fn controller(&self) -> Controller {
        Controller {
            tx: self.tx.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    /// Stops polling, flushes the writer (bounded by the flush timeout) and
    /// returns the final counters. Snapshots keep flowing during the flush.
    pub async fn shutdown(self) -> FinalReport {
        let (tx, rx) = oneshot::channel();
        let fallback = self.latest();
        if self.tx.send(Msg::Shutdown(tx)).is_ok() {
            if let Ok(report) = rx.await {
                let _ = self.task.await;
                return report;
            }
        }
        FinalReport {
            collector: fallback.collector.clone(),
            writer: fallback.writer.clone(),
            unsent: fallback.writer.queue_depth,
        }
    }
}

struct Engine {
    poller: Poller,
    deriver: Deriver,
    encoder: Encoder,
    /// `--once` / `-n N`; `None` collects until stopped.
    limit: Option<Limit>,
    done: watch::Sender<bool>,
    /// The live writer and the books of those a reload replaced.
    writers: Writers,
    flush_timeout: Duration,
    /// The state of the next snapshot; published as an `Arc` clone.
    snap: Snapshot,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    /// Skipped items already logged at warn level (later repeats go to debug).
    reported_skips: HashSet<String>,
    alerts: Alerts,
}

/// The alert rules in force and the state machine they feed.
struct Alerts {
    rules: Rules,
    min_duration: Duration,
    tracker: Tracker,
}

impl Alerts {
    fn new(config: &Config) -> Self {
        Self {
            rules: Rules::new(&config.alert_rules),
            min_duration: config.alerts.min_duration,
            tracker: Tracker::default(),
        }
    }

    /// New rules from a reload; the alerts in progress carry on under them.
    fn reconfigure(&mut self, config: &Config) {
        self.rules = Rules::new(&config.alert_rules);
        self.min_duration = config.alerts.min_duration;
    }

    /// Evaluates one collection, logs each transition once.
    fn evaluate(&mut self, vms: &[crate::model::VmSnapshot]) -> Vec<alert::AlertEvent> {
        let events = self
            .tracker
            .evaluate(&self.rules, vms, SystemTime::now(), self.min_duration);
        for e in &events {
            match e.level {
                Some(_) => tracing::warn!("{}", alert::text::log_line(e)),
                None => tracing::info!("{}", alert::text::log_line(e)),
            }
        }
        events
    }
}

fn interval(period: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

impl Engine {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut poll = interval(self.snap.poll_interval);
        // Writer counters move between cycles (and while stopped): keep them fresh.
        let mut refresh = interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = poll.tick(), if self.snap.collecting => self.cycle().await,
                _ = refresh.tick() => self.publish(),
                msg = rx.recv() => match msg {
                    Some(Msg::Control(Control::Start)) if !self.snap.collecting => {
                        tracing::info!("collection started");
                        self.deriver.reset();
                        if let Some(l) = &mut self.limit {
                            l.rebaseline();
                        }
                        self.snap.collecting = true;
                        poll = interval(self.snap.poll_interval);
                        self.publish();
                    }
                    Some(Msg::Control(Control::Stop)) if self.snap.collecting => {
                        tracing::info!("collection stopped; flushing queued lines");
                        self.snap.collecting = false;
                        let writer = self.writers.handle().clone();
                        let timeout = self.flush_timeout;
                        tokio::spawn(async move { writer.flush(timeout).await });
                        self.publish();
                    }
                    Some(Msg::Control(Control::SetPollInterval(d))) => {
                        let d = d.max(MIN_POLL_INTERVAL);
                        if d != self.snap.poll_interval {
                            tracing::info!("poll interval set to {:.1} s", d.as_secs_f64());
                            self.snap.poll_interval = d;
                            poll = interval(d);
                            poll.reset();
                            self.publish();
                        }
                    }
                    Some(Msg::Control(_)) => {}
                    Some(Msg::Lines(lines)) => {
                        if !self.writers.is_off() {
                            self.writers.handle().enqueue(lines);
                        }
                    }
                    Some(Msg::Reconfigure { config, restart_writer }) => {
                        self.reconfigure(&config, restart_writer).await;
                    }
                    Some(Msg::Shutdown(reply)) => {
                        let report = self.shutdown().await;
                        let _ = reply.send(report);
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                }
            }
        }
    }

    async fn cycle(&mut self) {
        let started = Instant::now();
        let result = self.poller.cycle(self.snap.poll_interval).await;
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let stats = &mut self.snap.collector;
        stats.libvirt_calls_held = self.poller.held_calls();
        match result {
            Ok(sample) => {
                if self.snap.source != SourceState::Connected {
                    tracing::info!(
                        "connected to libvirt at '{}' ({} domains)",
                        self.snap.libvirt_uri,
                        sample.domains.len()
                    );
                }
                self.snap.source = SourceState::Connected;
                self.snap.unreachable_since = None;
                self.snap.collection += 1;
                if sample.host.is_some() {
                    self.snap.host = sample.host;
                }
                stats.total_collections += 1;
                stats.last_collection_time = Some(SystemTime::now());
                stats.last_collection_ms = Some(elapsed_ms);
                stats.used_bulk = sample.used_bulk;
                let skipped = sample.skipped.len() as u64;
                stats.skipped_items += skipped;
                stats.total_errors += skipped;
                for s in &sample.skipped {
                    let key = s.what.clone();
                    if self.reported_skips.insert(key) {
                        tracing::warn!("skipped {}: {}", s.what, s.why);
                    } else {
                        tracing::debug!("skipped {}: {}", s.what, s.why);
                    }
                    stats.last_error = Some(format!("skipped {}: {}", s.what, s.why));
                }
                let vms = self.deriver.apply(sample.domains);
                stats.vms_monitored = vms.len();
                stats.monitor_stuck_vms =
                    vms.iter().filter(|v| v.raw.monitor_stuck.is_some()).count();
                stats.monitor_stuck_samples += stats.monitor_stuck_vms as u64;
                let step = self.limit.as_mut().map_or(Step::Write, Limit::step);
                let events = self.alerts.evaluate(&vms);
                self.snap.alerts = self.alerts.tracker.board();
                if !self.writers.is_off() && step != Step::Baseline {
                    let mut lines = self.encoder.encode(&vms);
                    // One point per reading of the node figures, not per cycle.
                    lines.extend(self.encoder.encode_host(self.snap.host.as_ref(), &vms));
                    lines.extend(self.encoder.encode_alerts(&events));
                    self.writers.handle().enqueue(lines);
                }
                self.snap.vms = vms.into();
                if step == Step::WriteLast {
                    self.snap.collecting = false;
                    let _ = self.done.send(true);
                }
            }
            Err(e) => {
                stats.total_errors += 1;
                stats.last_collection_ms = Some(elapsed_ms);
                let msg = e.to_string();
                let changed = self.snap.source != SourceState::Failed(msg.clone());
                if changed && stats.total_collections == 0 {
                    // Before the first success: headless exits with this message as its
                    // one line, the TUI shows it in its header; logging it too would say
                    // it twice.
                    tracing::debug!("{msg}");
                } else if changed {
                    tracing::error!("{msg}; retrying every poll interval");
                } else {
                    tracing::debug!("{msg}");
                }
                stats.last_error = Some(msg.clone());
                if e.is_connection_failure() {
                    self.snap.source = SourceState::Failed(msg);
                    // Keep the last known VMs on screen, marked stale from this
                    // instant on (frontends grey them and show their age); no
                    // line is written for them and no history point is added.
                    self.snap
                        .unreachable_since
                        .get_or_insert_with(SystemTime::now);
                    self.deriver.reset();
                    if let Some(l) = &mut self.limit {
                        l.rebaseline();
                    }
                }
            }
        }
        self.publish();
    }

    async fn reconfigure(&mut self, config: &Config, restart_writer: bool) {
        // New tags and escaping (a CSV output gets a new header row: its columns may change).
        self.encoder = Encoder::new(config.run.format, encode_ctx(config));
        self.alerts.reconfigure(config);
        if restart_writer {
            self.writers.restart(config, self.flush_timeout).await;
        }
        self.publish();
    }

    fn publish(&mut self) {
        self.snap.seq += 1;
        self.snap.taken_at = SystemTime::now();
        self.snap.writer = self.writers.stats();
        let _ = self.snap_tx.send(Arc::new(self.snap.clone()));
    }

    /// Stops polling and flushes, publishing progress while the queue drains.
    async fn shutdown(&mut self) -> FinalReport {
        self.snap.collecting = false;
        self.publish();
        let writer = self.writers.handle().clone();
        let timeout = self.flush_timeout;
        let flush = writer.flush(timeout);
        tokio::pin!(flush);
        let mut progress = interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = &mut flush => break,
                _ = progress.tick() => self.publish(),
            }
        }
        // Whatever is still queued goes to the spool (if any) or stays counted as unsent.
        let final_stats = self
            .writers
            .handle()
            .clone()
            .shutdown(Duration::from_millis(100))
            .await;
        let final_stats = self.writers.combined(final_stats);
        self.snap.writer = final_stats.clone();
        self.snap.seq += 1;
        let _ = self.snap_tx.send(Arc::new(self.snap.clone()));
        FinalReport {
            collector: self.snap.collector.clone(),
            unsent: final_stats.queue_depth,
            writer: final_stats,
        }
    }
}
