//! Scheduling tests of the poller with a fake source that behaves like
//! libvirt's bulk call: domains are read in order, a hung monitor holds the
//! call that reaches it first, and a later call passes a held monitor by
//! (NOWAIT) and marks the domain. Real threads, no libvirt.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::model::RawDomain;

/// What every fake connection shares: the host's domains and their monitors.
#[derive(Default)]
struct Host {
    domains: Vec<&'static str>,
    /// Domains whose QEMU is stopped: the first call to reach one hangs.
    hung: Mutex<Vec<&'static str>>,
    /// Held monitors and since when.
    held: Mutex<BTreeMap<&'static str, Instant>>,
    /// Set when the test lets every hung call return (SIGCONT).
    resumed: (Mutex<bool>, Condvar),
    /// How long each call takes besides hangs (a loaded host).
    slow: Duration,
    calls: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
    probes: AtomicUsize,
    opens: AtomicUsize,
}

impl Host {
    fn new(domains: &[&'static str], hung: &[&'static str]) -> Arc<Self> {
        Arc::new(Self {
            domains: domains.to_vec(),
            hung: Mutex::new(hung.to_vec()),
            ..Self::default()
        })
    }

    /// SIGCONT for every stopped QEMU: hung calls return.
    fn resume(&self) {
        self.hung.lock().expect("hung").clear();
        *self.resumed.0.lock().expect("resumed") = true;
        self.resumed.1.notify_all();
    }

    /// Until every sample call has returned (bounded).
    async fn wait_until_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.running.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Blocks like a call inside a stopped QEMU's monitor (bounded, so a
    /// failing test cannot hang the suite).
    fn wait_for_resume(&self) {
        let guard = self.resumed.0.lock().expect("resumed");
        let _ = self
            .resumed
            .1
            .wait_timeout_while(guard, Duration::from_secs(60), |r| !*r);
    }

    /// One domain's reading by call `call`, after its monitor let the call go.
    fn read(&self, name: &'static str, call: usize) -> RawDomain {
        let mut raw = raw(name, call);
        let held_by_other = self.held.lock().expect("held").contains_key(name);
        if held_by_other {
            // NOWAIT: no monitor data, the domain marked.
            raw.monitor_stuck = Some(Duration::from_millis(1));
        } else if self.hung.lock().expect("hung").contains(&name) {
            self.held.lock().expect("held").insert(name, Instant::now());
            self.wait_for_resume();
            self.held.lock().expect("held").remove(name);
        }
        raw
    }
}

/// Releases every hung call when a test ends, passed or not: the runtime
/// waits for its blocking threads before it goes away.
struct ResumeOnDrop(Arc<Host>);

impl Drop for ResumeOnDrop {
    fn drop(&mut self) {
        self.0.resume();
    }
}

struct Fake(Arc<Host>);

impl Source for Fake {
    type Config = Arc<Host>;

    fn open(host: &Arc<Host>) -> Result<Self, SourceError> {
        host.opens.fetch_add(1, Ordering::SeqCst);
        Ok(Fake(host.clone()))
    }

    fn sample(&mut self, _deadline: Instant) -> Result<CycleSample, SourceError> {
        let h = &self.0;
        let call = h.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let now_running = h.running.fetch_add(1, Ordering::SeqCst) + 1;
        h.max_running.fetch_max(now_running, Ordering::SeqCst);
        std::thread::sleep(h.slow);
        let domains = h.domains.iter().map(|d| h.read(d, call)).collect();
        h.running.fetch_sub(1, Ordering::SeqCst);
        Ok(CycleSample {
            domains,
            skipped: Vec::new(),
            used_bulk: true,
            host: None,
        })
    }

    fn held_monitors(&self) -> Result<Vec<HeldMonitor>, SourceError> {
        self.0.probes.fetch_add(1, Ordering::SeqCst);
        let held = self.0.held.lock().expect("held");
        Ok(held
            .iter()
            .map(|(name, since)| HeldMonitor {
                name: name.to_string(),
                held_for: since.elapsed(),
            })
            .collect())
    }
}

/// A running domain as call `call` read it (the call's number in `id`).
fn raw(name: &str, call: usize) -> RawDomain {
    RawDomain {
        id: u32::try_from(call).ok(),
        ..crate::fixtures::raw(name, &format!("uuid-{name}"))
    }
}

fn poller(host: &Arc<Host>, timeout: Duration) -> Poller<Fake> {
    Poller::with_config("fake:///", timeout, host.clone())
}

/// (name, answering call, marked stuck) of each domain in `s`.
fn summary(s: &CycleSample) -> Vec<(String, Option<u32>, bool)> {
    s.domains
        .iter()
        .map(|d| (d.name.clone(), d.id, d.monitor_stuck.is_some()))
        .collect()
}

const INTERVAL: Duration = Duration::from_millis(400); // soft deadline 100 ms
/// Far beyond anything the cycles under test should take: a cycle that
/// waits for it has waited for the hung call.
const LONG_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_that_hangs_the_call_costs_the_other_vms_nothing() {
    let host = Host::new(&["web", "stuck", "db"], &["stuck"]);
    let _resume = ResumeOnDrop(host.clone());
    let p = poller(&host, LONG_TIMEOUT);

    let t0 = Instant::now();
    let first = p.cycle(INTERVAL).await.expect("first cycle");
    let took = t0.elapsed();
    // Call 1 hangs in 'stuck'; call 2 (the probe's) passes it by.
    assert_eq!(
        summary(&first),
        [
            ("web".into(), Some(2), false),
            ("stuck".into(), Some(2), true),
            ("db".into(), Some(2), false),
        ]
    );
    assert!(
        took < LONG_TIMEOUT / 4,
        "the first cycle waited {took:?} for the hung call"
    );

    // Later cycles pass the held monitor by at once, no probe needed.
    let probes = host.probes.load(Ordering::SeqCst);
    let second = p.cycle(INTERVAL).await.expect("second cycle");
    assert_eq!(summary(&second)[1], ("stuck".into(), Some(3), true));
    assert_eq!(host.probes.load(Ordering::SeqCst), probes);
    assert_eq!(host.opens.load(Ordering::SeqCst), 2, "one held, one in use");
    assert_eq!(p.held_calls(), 1);

    // SIGCONT: the given-up call returns and its connection is free again.
    host.resume();
    host.wait_until_idle().await;
    assert_eq!(p.held_calls(), 0);
    let third = p.cycle(INTERVAL).await.expect("third cycle");
    assert!(summary(&third).iter().all(|(_, _, stuck)| !stuck));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_call_with_no_monitor_to_blame_is_waited_for_not_doubled() {
    let host = Arc::new(Host {
        domains: vec!["web", "db"],
        slow: Duration::from_millis(450), // several soft deadlines
        ..Host::default()
    });
    let p = poller(&host, LONG_TIMEOUT);
    let s = p.cycle(INTERVAL).await.expect("slow cycle");
    assert_eq!(summary(&s)[0], ("web".into(), Some(1), false));
    assert_eq!(
        host.calls.load(Ordering::SeqCst),
        1,
        "no second sample call"
    );
    assert!(host.probes.load(Ordering::SeqCst) >= 1, "it was probed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_calls_are_bounded_then_cycles_are_busy_until_libvirt_returns() {
    // Every VM hangs: each call blames one more, up to the connection limit.
    let host = Host::new(&["a", "b", "c", "d"], &["a", "b", "c", "d"]);
    let _resume = ResumeOnDrop(host.clone());
    let p = poller(&host, Duration::from_secs(1));

    let first = p.cycle(INTERVAL).await;
    assert!(
        matches!(first, Err(CycleError::Timeout { .. })),
        "{first:?}"
    );
    let busy = p.cycle(INTERVAL).await;
    assert!(matches!(busy, Err(CycleError::Busy { .. })), "{busy:?}");
    assert_eq!(host.max_running.load(Ordering::SeqCst), MAX_CONNECTIONS);
    assert_eq!(host.calls.load(Ordering::SeqCst), MAX_CONNECTIONS);
    assert_eq!(p.held_calls(), MAX_CONNECTIONS);

    host.resume();
    // The held calls return (their thread ends) and connections come back.
    host.wait_until_idle().await;
    let back = p.cycle(INTERVAL).await.expect("cycle after SIGCONT");
    assert_eq!(back.domains.len(), 4);
    assert_eq!(host.opens.load(Ordering::SeqCst), MAX_CONNECTIONS);
}

#[test]
fn a_held_slot_is_passed_over_and_all_held_means_busy() {
    let slots: Vec<Slot<Fake>> = (0..2).map(|_| Arc::new(Mutex::new(None))).collect();
    let held = slots[0].lock().expect("fresh lock");
    assert!(free_slot(&slots).is_some(), "second slot is free");
    let held2 = slots[1].lock().expect("fresh lock");
    assert!(free_slot(&slots).is_none());
    drop((held, held2));
}

#[tokio::test]
async fn unreachable_uri_fails_fast_without_retry() {
    let p = Poller::new(
        "test:///nonexistent/vmpulse-no-such-file.xml",
        Duration::from_secs(60),
        Duration::from_secs(5),
    );
    let t0 = Instant::now();
    let r = p.cycle(Duration::from_secs(1)).await;
    assert!(matches!(r, Err(CycleError::Source(_))), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}
