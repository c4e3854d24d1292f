//! One polling cycle: runs the blocking libvirt source on blocking threads,
//! bounded by `LIBVIRT_TIMEOUT`, publishes the healthy VMs on time even when
//! one VM's QEMU monitor hangs, and reconnects after failures.
//!
//! libvirt calls cannot be cancelled. The bulk stats call takes each domain's
//! monitor in turn, so a QEMU that never answers holds the whole call. The
//! cycle waits only the soft deadline ([`Plan`]: a quarter of the poll
//! interval, or twice the typical recent call where all calls are slow) for
//! its call; then a probe on another connection asks which monitor has been
//! held since the call began (`virDomainGetControlInfo`,
//! answered without the monitor). If one has, the probe samples again on its
//! connection: the bulk call's NOWAIT flag passes the held monitor by, so the
//! other VMs get their sample and the stuck one is reported without its
//! monitor data (marked `monitor_stuck`, counted in `monitor_stuck_samples`).
//! A call that is only slow (no monitor to blame) is not doubled: the cycle
//! keeps waiting for it, probing again every soft deadline, up to the timeout.
//!
//! A given-up call keeps its thread and connection until libvirt returns; at
//! most [`MAX_CONNECTIONS`] calls run at once, so hung calls cannot pile up
//! threads, connections or libvirtd workers. With every connection held a
//! cycle reports busy.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::filter::DomainFilter;
use super::metadata::MetadataSpec;
use super::schedule::{self, HeldMonitor, Plan};
use super::source::{CycleSample, LibvirtSource, SourceError};

/// Why a cycle produced no sample.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CycleError {
    #[error("{0}")]
    Source(String),
    #[error("libvirt at '{uri}' did not answer within {secs:.1} s (LIBVIRT_TIMEOUT); the call is still pending")]
    Timeout { uri: String, secs: f64 },
    #[error("libvirt at '{uri}' is still busy with an earlier call that timed out")]
    Busy { uri: String },
    #[error("internal error in the sampling thread: {0}")]
    Internal(String),
}

impl CycleError {
    /// Whether the connection should be considered down.
    pub fn is_connection_failure(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }
}

/// Connections (each with its own blocking thread) the poller may have at
/// once: one in use, plus fresh ones while earlier calls hang (a QEMU monitor
/// that never answers keeps its call, and its libvirtd worker, busy).
pub const MAX_CONNECTIONS: usize = 3;

/// A little slack past `LIBVIRT_TIMEOUT` so the source's own deadline
/// handling can answer first.
const TIMEOUT_SLACK: Duration = Duration::from_millis(500);

/// What the poller needs from one connection: [`LibvirtSource`], or a fake
/// in the scheduling tests. Every method blocks.
pub trait Source: Sized + Send + 'static {
    /// What `open` needs (URI, cache TTL, filter ...).
    type Config: Clone + Send + Sync + 'static;
    fn open(config: &Self::Config) -> Result<Self, SourceError>;
    /// One cycle; no new per-domain call starts after `deadline`.
    fn sample(&mut self, deadline: Instant) -> Result<CycleSample, SourceError>;
    /// Active domains whose monitor another call holds, without waiting for any.
    fn held_monitors(&self) -> Result<Vec<HeldMonitor>, SourceError>;
}

/// How [`LibvirtSource`]s are opened.
#[derive(Debug, Clone)]
pub struct LibvirtConfig {
    pub uri: String,
    pub device_cache_ttl: Duration,
    pub filter: DomainFilter,
    /// `collector.metadata_tags` and how long they are reused.
    pub metadata: MetadataSpec,
    /// `collector.host_interval`: how often the node figures are read.
    pub host_interval: Duration,
}

impl Source for LibvirtSource {
    type Config = LibvirtConfig;

    fn open(c: &LibvirtConfig) -> Result<Self, SourceError> {
        Ok(LibvirtSource::open(&c.uri, c.device_cache_ttl)?
            .with_filter(c.filter.clone())
            .with_metadata(c.metadata.clone())
            .with_host_interval(c.host_interval))
    }

    fn sample(&mut self, deadline: Instant) -> Result<CycleSample, SourceError> {
        LibvirtSource::sample(self, deadline)
    }

    fn held_monitors(&self) -> Result<Vec<HeldMonitor>, SourceError> {
        LibvirtSource::held_monitors(self)
    }
}

type Slot<S> = Arc<Mutex<Option<S>>>;

pub struct Poller<S: Source = LibvirtSource> {
    uri: String,
    timeout: Duration,
    config: S::Config,
    slots: Vec<Slot<S>>,
    /// Durations of the last calls that needed no second call (`schedule::typical`).
    recent: Mutex<VecDeque<Duration>>,
}

impl Poller<LibvirtSource> {
    pub fn new(uri: &str, device_cache_ttl: Duration, timeout: Duration) -> Self {
        let config = LibvirtConfig {
            uri: uri.to_string(),
            device_cache_ttl,
            filter: DomainFilter::default(),
            metadata: MetadataSpec::default(),
            host_interval: super::host::DEFAULT_INTERVAL,
        };
        Self::with_config(uri, timeout, config)
    }

    /// Collect only the domains `filter` matches.
    pub fn with_filter(mut self, filter: DomainFilter) -> Self {
        self.config.filter = filter;
        self
    }

    /// Read these metadata tags for every domain.
    pub fn with_metadata(mut self, spec: MetadataSpec) -> Self {
        self.config.metadata = spec;
        self
    }

    /// Read the node figures at most every `interval` (`collector.host_interval`).
    pub fn with_host_interval(mut self, interval: Duration) -> Self {
        self.config.host_interval = interval;
        self
    }
}

/// What a blocking job tells the cycle.
enum Event {
    /// A sample finished (from the first call or a second one).
    Done(Result<CycleSample, CycleError>),
    /// The probe found no monitor to blame: keep waiting.
    Clear,
    /// The probe found these monitors held since the newest call began and
    /// is sampling again on its own connection.
    Rescue(Vec<HeldMonitor>),
    /// No connection free (or none could be opened) for a probe.
    NoSlot,
}

/// The work of one blocking thread.
#[derive(Clone, Copy)]
enum Job {
    Sample,
    /// Blame monitors held for most of the call that started at `newest`,
    /// and if any, sample again.
    Probe {
        newest: Instant,
    },
}

impl<S: Source> Poller<S> {
    /// A poller over `S`; `uri` names the source in messages.
    pub fn with_config(uri: &str, timeout: Duration, config: S::Config) -> Self {
        Self {
            uri: uri.to_string(),
            timeout,
            config,
            slots: (0..MAX_CONNECTIONS)
                .map(|_| Arc::new(Mutex::new(None)))
                .collect(),
            recent: Mutex::new(VecDeque::with_capacity(schedule::RECENT_CALLS)),
        }
    }

    /// Calls still running in libvirt, on their connections: between cycles,
    /// the calls given up while stuck.
    pub fn held_calls(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| matches!(s.try_lock(), Err(TryLockError::WouldBlock)))
            .count()
    }

    /// Opens a connection if needed and samples every domain once. A call
    /// stuck in a QEMU monitor is given up for that VM after the soft
    /// deadline (see the module header); a call that times out for any
    /// other reason keeps its connection and the cycle is retried once on
    /// another one.
    pub async fn cycle(&self, poll_interval: Duration) -> Result<CycleSample, CycleError> {
        let plan = Plan::with_typical(poll_interval, self.timeout, self.typical());
        match self.run(plan).await {
            Err(first @ CycleError::Timeout { .. }) => {
                tracing::warn!("{first}; sampling again on another connection");
                match self.run(plan).await {
                    Ok(sample) => Ok(sample),
                    Err(CycleError::Busy { .. }) => Err(first),
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }

    /// The usual duration of a call here, from the recent ones.
    fn typical(&self) -> Option<Duration> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        schedule::typical(recent.make_contiguous())
    }

    /// Remembers how long a call that needed no second call took.
    fn record(&self, took: Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() == schedule::RECENT_CALLS {
            recent.pop_front();
        }
        recent.push_back(took);
    }

    /// One sample on the first free connection, with probes and second
    /// calls while it runs past the soft deadline; the first to finish wins.
    async fn run(&self, plan: Plan) -> Result<CycleSample, CycleError> {
        let (tx, mut rx) = unbounded_channel();
        let start = Instant::now();
        let hard = start + self.timeout + TIMEOUT_SLACK;
        self.spawn(Job::Sample, plan, tx.clone());
        let mut newest = start;
        let mut rescued = false;
        let mut probe_at = Some(start + plan.soft);
        loop {
            let wake = probe_at.map_or(hard, |p| p.min(hard));
            let event = match tokio::time::timeout_at(wake.into(), rx.recv()).await {
                Ok(Some(event)) => event,
                // Unreachable while `tx` lives; said rather than assumed.
                Ok(None) => return Err(CycleError::Internal("sampling threads vanished".into())),
                Err(_) if Instant::now() >= hard => {
                    return Err(CycleError::Timeout {
                        uri: self.uri.clone(),
                        secs: self.timeout.as_secs_f64(),
                    })
                }
                Err(_) => {
                    probe_at = None; // until the probe answers
                    self.spawn(Job::Probe { newest }, plan, tx.clone());
                    continue;
                }
            };
            match event {
                Event::Done(result) => {
                    if result.is_ok() && !rescued {
                        self.record(start.elapsed());
                    }
                    return result;
                }
                Event::Clear => probe_at = Some(Instant::now() + plan.soft),
                Event::NoSlot => {}
                Event::Rescue(held) => {
                    tracing::warn!(
                        "QEMU monitor of {} has not answered for {:.1} s (hung QEMU?); sampling the other VMs again on another connection (the stuck call keeps its own until libvirt returns)",
                        schedule::names(&held),
                        held.iter().map(|h| h.held_for).max().unwrap_or_default().as_secs_f64()
                    );
                    newest = Instant::now();
                    rescued = true;
                    probe_at = Some(newest + plan.soft);
                }
            }
        }
    }

    /// Runs `job` on a blocking thread; its outcome arrives on `tx`.
    fn spawn(&self, job: Job, plan: Plan, tx: UnboundedSender<Event>) {
        let slots = self.slots.clone();
        let (uri, timeout, config) = (self.uri.clone(), self.timeout, self.config.clone());
        tokio::task::spawn_blocking(move || {
            let run = || run_job::<S>(job, &slots, &config, &uri, timeout, plan, &tx);
            if let Err(panic) = catch_unwind(AssertUnwindSafe(run)) {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                let _ = tx.send(Event::Done(Err(CycleError::Internal(what))));
            }
        });
    }
}

/// The body of one blocking job (see [`Job`]). Sends exactly one event for
/// a plain sample, and for a probe one before its second call, if any.
fn run_job<S: Source>(
    job: Job,
    slots: &[Slot<S>],
    config: &S::Config,
    uri: &str,
    timeout: Duration,
    plan: Plan,
    tx: &UnboundedSender<Event>,
) {
    // The cycle may have returned already: a lost event is then moot.
    let send = |e: Event| drop(tx.send(e));
    let is_probe = matches!(job, Job::Probe { .. });
    let Some(mut guard) = free_slot(slots) else {
        return send(if is_probe {
            Event::NoSlot
        } else {
            Event::Done(Err(CycleError::Busy { uri: uri.into() }))
        });
    };
    if guard.is_none() {
        match S::open(config) {
            Ok(src) => *guard = Some(src),
            Err(_) if is_probe => return send(Event::NoSlot),
            Err(e) => return send(Event::Done(Err(CycleError::Source(e.to_string())))),
        }
    }
    let Some(src) = guard.as_mut() else {
        return send(Event::Done(Err(CycleError::Internal(
            "source vanished".into(),
        ))));
    };
    if let Job::Probe { newest } = job {
        let held = match src.held_monitors() {
            Ok(held) => held,
            Err(_) => {
                *guard = None; // suspect connection: reopen next time
                return send(Event::NoSlot);
            }
        };
        let blamed = schedule::culprits(&held, newest.elapsed(), &plan);
        if blamed.is_empty() {
            return send(Event::Clear);
        }
        send(Event::Rescue(blamed));
    }
    let result = src.sample(Instant::now() + timeout);
    if result.is_err() {
        // Listing failed: the connection is suspect, reopen next cycle.
        *guard = None;
    }
    // Free before the cycle hears of it, so that `held_calls` is exact then.
    drop(guard);
    send(Event::Done(
        result.map_err(|e| CycleError::Source(e.to_string())),
    ));
}

/// The first slot no hung call holds, preferring one with an open
/// connection; `None` when every slot is busy.
fn free_slot<S>(slots: &[Slot<S>]) -> Option<MutexGuard<'_, Option<S>>> {
    let mut empty = None;
    for slot in slots {
        let guard = match slot.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => continue,
            // A panic inside libvirt parsing poisoned it: start over with a new connection.
            Err(TryLockError::Poisoned(p)) => {
                let mut g = p.into_inner();
                *g = None;
                g
            }
        };
        if guard.is_some() {
            return Some(guard);
        }
        empty.get_or_insert(guard);
    }
    empty
}

#[cfg(test)]
#[path = "poll_tests.rs"]
mod tests;
