//! Bounded in-memory history per VM (keyed by UUID), one point per collection: the
//! TUI's sparklines and auto-scaled DISK / NET gauge ceilings, and the service's
//! `GET /history`; per disk, its latency (the detail view's per-disk sparklines).
//!
//! Bounded twice: by age (`history_minutes`) and by a hard sample count, so a
//! tiny poll interval cannot grow memory without limit. VMs that leave the
//! snapshot lose their history at once.
//!
//! Compact, because the service keeps it for every VM (1,000 VMs × 300 points):
//! one timeline of collection times is shared by all series (every VM in a
//! snapshot gets a point, and a VM or disk that leaves is forgotten, so each
//! series is a suffix of the timeline); "none" is NaN, not an `Option`; values are
//! `f32` (7 significant digits; the screens show 3 or 4), but the TUI keeps byte
//! rates `f64`, as its gauge ceilings are their peaks. The service keeps only what
//! `/history` serves ([`Keep::Api`]), all `f32`: 20 bytes a point.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::model::{Snapshot, VmSnapshot};

/// Hard cap on samples per VM (5 min at 0.1 s).
pub const MAX_SAMPLES: usize = 3000;

/// One VM's values at one snapshot; `None` where nothing was derived.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at: SystemTime,
    pub cpu_percent: Option<f64>,
    /// CPU steal (time the vCPUs waited for a host CPU), percent.
    pub steal_percent: Option<f64>,
    pub mem_percent: Option<f64>,
    /// Disk read + write, bytes/s.
    pub disk_bps: Option<f64>,
    /// Network rx + tx, bytes/s.
    pub net_bps: Option<f64>,
    pub rx_bps: Option<f64>,
    pub tx_bps: Option<f64>,
    /// Disk latency, the slower of read and write over all disks, ms.
    pub disk_latency_ms: Option<f64>,
}

/// Which values a [`History`] keeps: the TUI draws them all; the service serves
/// only `/history`'s (no steal, no disk latency, no per-disk series).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    All,
    Api,
}

/// What `/history` serves of one collection (`net` is rx + tx); NaN for none.
#[derive(Debug, Clone, Copy)]
struct Point {
    disk_bps: f64,
    rx_bps: f64,
    tx_bps: f64,
    cpu_percent: f32,
    mem_percent: f32,
}

/// [`Point`] as the service keeps it (`/history` has no peaks to keep exact).
#[derive(Debug, Clone, Copy)]
struct Lean {
    disk_bps: f32,
    rx_bps: f32,
    tx_bps: f32,
    cpu_percent: f32,
    mem_percent: f32,
}

impl From<Point> for Lean {
    fn from(p: Point) -> Self {
        Self {
            disk_bps: p.disk_bps as f32,
            rx_bps: p.rx_bps as f32,
            tx_bps: p.tx_bps as f32,
            cpu_percent: p.cpu_percent,
            mem_percent: p.mem_percent,
        }
    }
}

/// What only the TUI draws: steal and the slowest disk's latency.
#[derive(Debug, Clone, Copy)]
struct Extra {
    steal_percent: f32,
    disk_latency_ms: f32,
}

/// One VM's points, oldest first, aligned to the end of the shared timeline.
#[derive(Debug, Clone, Default)]
struct VmSeries {
    /// Under [`Keep::All`] (else empty), with `extra`.
    points: VecDeque<Point>,
    extra: VecDeque<Extra>,
    /// Under [`Keep::Api`] (else empty).
    lean: VecDeque<Lean>,
    disks: Vec<DiskRing>,
}

#[derive(Debug, Clone)]
struct DiskRing {
    name: Box<str>,
    ms: VecDeque<f32>,
}

#[derive(Debug, Clone)]
pub struct History {
    window: Duration,
    keep: Keep,
    /// The collection the last points came from (`Snapshot::collection`).
    last_collection: Option<u64>,
    /// When each collection was taken, oldest first: every series' time axis.
    times: VecDeque<SystemTime>,
    /// Points a series holds once the window is full (window / poll interval):
    /// rings grow to this, not to the next power of two.
    expected: usize,
    per_vm: HashMap<Box<str>, VmSeries>,
}

impl History {
    /// Everything the TUI draws.
    pub fn new(window: Duration) -> Self {
        Self::keeping(window, Keep::All)
    }

    pub fn keeping(window: Duration, keep: Keep) -> Self {
        Self {
            window,
            keep,
            last_collection: None,
            times: VecDeque::new(),
            expected: 0,
            per_vm: HashMap::new(),
        }
    }

    /// The window `ui.history_minutes` asks for (at least a minute): the TUI's and
    /// the service's.
    pub fn window_of(ui: &crate::config::UiConfig) -> Duration {
        Duration::from_secs(ui.history_minutes.max(1) as u64 * 60)
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// Adds one point per VM per collection. Snapshots published between
    /// collections (writer counters, controls, redraws) and those of a stopped
    /// or unreachable collector carry the same `collection` and add nothing.
    pub fn ingest(&mut self, snap: &Snapshot) {
        if snap.collection == 0 || self.last_collection == Some(snap.collection) {
            return;
        }
        self.last_collection = Some(snap.collection);
        // A set, not a scan of the VMs per kept series: 1,000 VMs would be a million
        // comparisons a collection.
        let present: std::collections::HashSet<&str> =
            snap.vms.iter().map(|vm| vm.uuid()).collect();
        self.per_vm.retain(|uuid, _| present.contains(&**uuid));
        self.times.push_back(snap.taken_at);
        let cutoff = snap.taken_at.checked_sub(self.window);
        while self.times.len() > MAX_SAMPLES
            || cutoff.is_some_and(|c| self.times.front().is_some_and(|t| *t < c))
        {
            self.times.pop_front();
        }
        self.expected = expected_points(self.window, snap.poll_interval);
        let (len, keep, expected) = (self.times.len(), self.keep, self.expected);
        for vm in &snap.vms {
            let series = match self.per_vm.get_mut(vm.uuid()) {
                Some(s) => s,
                None => self.per_vm.entry(vm.uuid().into()).or_default(),
            };
            if keep == Keep::Api {
                push(&mut series.lean, point(vm).into(), len, expected);
                continue;
            }
            push(&mut series.points, point(vm), len, expected);
            push(&mut series.extra, extra(vm), len, expected);
            ingest_disks(&mut series.disks, vm, len, expected);
        }
    }

    /// Each disk's latency series, in the VM's disk order; none for an unknown VM
    /// (and none in a history that keeps only the API's values).
    pub fn disk_latency(&self, uuid: &str) -> Vec<DiskSeries<'_>> {
        let Some(series) = self.per_vm.get(uuid) else {
            return Vec::new();
        };
        series
            .disks
            .iter()
            .map(|d| DiskSeries {
                name: &d.name,
                ms: &d.ms,
                times: &self.times,
            })
            .collect()
    }

    /// A VM's points, oldest first; `None` for an unknown VM.
    pub fn samples(&self, uuid: &str) -> Option<Samples<'_>> {
        let series = self.per_vm.get(uuid)?;
        Some(self.samples_of(series))
    }

    fn samples_of<'a>(&'a self, series: &'a VmSeries) -> Samples<'a> {
        let n = series.points.len().max(series.lean.len());
        Samples {
            times: &self.times,
            series,
            offset: self.times.len().saturating_sub(n),
            front: 0,
            back: n,
        }
    }

    /// The busiest VM's peak of `pick` over the window; `None` when nothing was measured.
    pub fn peak(&self, pick: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        self.per_vm
            .values()
            .flat_map(|s| self.samples_of(s))
            .filter_map(|s| pick(&s))
            .filter(|v| v.is_finite())
            .fold(None, |acc: Option<f64>, v| {
                Some(acc.map_or(v, |a| a.max(v)))
            })
    }

    pub fn len(&self) -> usize {
        self.per_vm.len()
    }

    pub fn is_empty(&self) -> bool {
        self.per_vm.is_empty()
    }
}

/// Points per series once the window is full, within [`MAX_SAMPLES`] (plus the
/// one a collection adds before the oldest goes).
fn expected_points(window: Duration, poll: Duration) -> usize {
    let per_window = window.as_secs_f64() / poll.as_secs_f64().max(0.001);
    (per_window.ceil() as usize).clamp(1, MAX_SAMPLES) + 1
}

/// `None` as NaN: a value libvirt did not give stays unknown, never zero.
fn pack(v: Option<f64>) -> f32 {
    v.map_or(f32::NAN, |v| v as f32)
}

fn unpack(v: f32) -> Option<f64> {
    (!v.is_nan()).then_some(f64::from(v))
}

fn pack64(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn unpack64(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn point(vm: &VmSnapshot) -> Point {
    let d = vm.derived.as_ref();
    Point {
        disk_bps: pack64(d.map(|d| d.disk_read.bytes_per_sec + d.disk_write.bytes_per_sec)),
        rx_bps: pack64(d.map(|d| d.net_rx.bytes_per_sec)),
        tx_bps: pack64(d.map(|d| d.net_tx.bytes_per_sec)),
        cpu_percent: pack(d.and_then(|d| d.cpu_percent)),
        mem_percent: pack(vm.memory.and_then(|m| m.percent)),
    }
}

fn extra(vm: &VmSnapshot) -> Extra {
    let d = vm.derived.as_ref();
    Extra {
        steal_percent: pack(d.and_then(|d| d.cpu_split.steal)),
        disk_latency_ms: pack(d.and_then(|d| d.disk_latency.worst_rw_ms())),
    }
}

/// Appends one point and keeps the ring to the timeline's `len` points.
fn push<T>(q: &mut VecDeque<T>, point: T, len: usize, expected: usize) {
    reserve(q, expected);
    q.push_back(point);
    let excess = q.len().saturating_sub(len);
    q.drain(..excess);
}

/// Grows a ring by doubling, but never past what a full window holds: a ring of
/// 301 points stays at 301, not 512.
fn reserve<T>(q: &mut VecDeque<T>, full: usize) {
    if q.len() < q.capacity() {
        return;
    }
    let want = (q.capacity() * 2).clamp(8, full.max(q.len() + 1));
    q.reserve_exact(want - q.len());
}

/// One point per disk the VM has now; series of disks it no longer has are dropped.
fn ingest_disks(disks: &mut Vec<DiskRing>, vm: &VmSnapshot, len: usize, expected: usize) {
    disks.retain(|s| vm.raw.disks.iter().any(|d| d.name == *s.name));
    for disk in &vm.raw.disks {
        let ms = vm
            .derived
            .as_ref()
            .and_then(|d| d.disks.iter().find(|r| r.name == disk.name))
            .and_then(|r| r.latency.worst_rw_ms());
        let pos = match disks.iter().position(|s| *s.name == disk.name) {
            Some(pos) => pos,
            None => {
                disks.push(DiskRing {
                    name: disk.name.as_str().into(),
                    ms: VecDeque::new(),
                });
                disks.len() - 1
            }
        };
        push(&mut disks[pos].ms, pack(ms), len, expected);
    }
}

/// A VM's points, oldest first (see [`History::samples`]).
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    times: &'a VecDeque<SystemTime>,
    series: &'a VmSeries,
    /// Where the series starts on the timeline.
    offset: usize,
    front: usize,
    back: usize,
}

impl Samples<'_> {
    fn get(&self, i: usize) -> Sample {
        let Some(p) = self.series.points.get(i).copied() else {
            return self.get_lean(i);
        };
        let extra = self.series.extra.get(i);
        let (rx_bps, tx_bps) = (unpack64(p.rx_bps), unpack64(p.tx_bps));
        Sample {
            at: self.times[self.offset + i],
            cpu_percent: unpack(p.cpu_percent),
            steal_percent: extra.and_then(|e| unpack(e.steal_percent)),
            mem_percent: unpack(p.mem_percent),
            disk_bps: unpack64(p.disk_bps),
            net_bps: rx_bps.zip(tx_bps).map(|(rx, tx)| rx + tx),
            rx_bps,
            tx_bps,
            disk_latency_ms: extra.and_then(|e| unpack(e.disk_latency_ms)),
        }
    }

    fn get_lean(&self, i: usize) -> Sample {
        let p = self.series.lean[i];
        let (rx_bps, tx_bps) = (unpack(p.rx_bps), unpack(p.tx_bps));
        Sample {
            at: self.times[self.offset + i],
            cpu_percent: unpack(p.cpu_percent),
            steal_percent: None,
            mem_percent: unpack(p.mem_percent),
            disk_bps: unpack(p.disk_bps),
            net_bps: rx_bps.zip(tx_bps).map(|(rx, tx)| rx + tx),
            rx_bps,
            tx_bps,
            disk_latency_ms: None,
        }
    }
}

impl Iterator for Samples<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.get(self.front - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.back - self.front;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Samples<'_> {
    fn next_back(&mut self) -> Option<Sample> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.get(self.back)
        })
    }
}

impl ExactSizeIterator for Samples<'_> {}

/// One disk's latency over the window (the slower of read and write, ms), one
/// point per collection; `None` where no request completed.
#[derive(Debug, Clone, Copy)]
pub struct DiskSeries<'a> {
    pub name: &'a str,
    ms: &'a VecDeque<f32>,
    times: &'a VecDeque<SystemTime>,
}

impl<'a> DiskSeries<'a> {
    /// The values, oldest first.
    pub fn values(&self) -> impl ExactSizeIterator<Item = Option<f64>> + 'a {
        self.ms.iter().map(|v| unpack(*v))
    }

    /// The points with their collection times, oldest first.
    pub fn points(&self) -> impl Iterator<Item = (SystemTime, Option<f64>)> + 'a {
        let offset = self.times.len().saturating_sub(self.ms.len());
        self.times.iter().skip(offset).copied().zip(self.values())
    }

    pub fn len(&self) -> usize {
        self.ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(collection: u64, secs: u64, uuids: &[&str]) -> Snapshot {
        let mut s = Snapshot::empty("test:///default", "h", Duration::from_secs(1));
        s.seq = collection;
        s.collection = collection + 1;
        s.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        s.vms = uuids
            .iter()
            .map(|u| crate::fixtures::vm(crate::fixtures::raw(u, u)))
            .collect();
        s
    }

    fn len(h: &History, uuid: &str) -> Option<usize> {
        h.samples(uuid).map(|q| q.len())
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn bounded_by_age_and_vms_that_leave_are_forgotten() {
        let mut h = History::new(Duration::from_secs(10));
        for i in 0..30 {
            h.ingest(&snap(i, 1000 + i, &["a", "b"]));
        }
        // 10 s window at 1 s: samples at t-10..=t.
        assert_eq!(len(&h, "a"), Some(11));
        let times: Vec<_> = h.samples("a").into_iter().flatten().map(|s| s.at).collect();
        assert_eq!(times.first(), Some(&at(1019)));
        assert_eq!(times.last(), Some(&at(1029)));
        h.ingest(&snap(30, 1030, &["a"]));
        assert!(h.samples("b").is_none());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn a_vm_that_comes_later_or_again_starts_its_own_series_on_the_shared_timeline() {
        let mut h = History::new(Duration::from_secs(60));
        for i in 0..10 {
            let uuids: &[&str] = match i {
                0..3 => &["a"],
                3..6 => &["a", "b"],
                6 => &["a"],
                _ => &["a", "b"],
            };
            h.ingest(&snap(i, 1000 + i, uuids));
        }
        assert_eq!(len(&h, "a"), Some(10));
        // b left at the 7th collection: only the three points since it came back.
        let b: Vec<_> = h.samples("b").into_iter().flatten().map(|s| s.at).collect();
        assert_eq!(b, [at(1007), at(1008), at(1009)]);
        let last = h.samples("b").and_then(|mut q| q.next_back()).map(|s| s.at);
        assert_eq!(last, Some(at(1009)));
    }

    #[test]
    fn same_snapshot_twice_is_one_sample() {
        let mut h = History::new(Duration::from_secs(60));
        let s = snap(7, 1000, &["a"]);
        h.ingest(&s);
        h.ingest(&s);
        assert_eq!(len(&h, "a"), Some(1));
    }

    #[test]
    fn snapshots_between_collections_add_no_points() {
        let mut h = History::new(Duration::from_secs(600));
        let mut s = snap(0, 1000, &["a"]);
        for publish in 0..5 {
            // Writer-counter refreshes: new seq, same collection.
            s.seq = 100 + publish;
            s.taken_at += Duration::from_millis(200);
            h.ingest(&s);
        }
        assert_eq!(len(&h, "a"), Some(1));
        // Before any collection there is nothing to record.
        let mut empty = snap(0, 1000, &["a"]);
        empty.collection = 0;
        let mut h2 = History::new(Duration::from_secs(600));
        h2.ingest(&empty);
        assert!(h2.is_empty());
    }

    fn with_rates(s: &mut Snapshot, i: u64) {
        use crate::model::{DeviceRates, DiskLatency};
        let vm = &mut s.vms[0];
        vm.raw.disks = vec![crate::fixtures::disk("vda"), crate::fixtures::disk("vdb")];
        let lat = |ms: f64| DiskLatency {
            read_ms: Some(ms),
            write_ms: Some(ms * 2.0),
            flush_ms: None,
        };
        let mut d = crate::model::Derived {
            cpu_percent: Some(12.5),
            disks: vec![DeviceRates {
                name: "vda".into(),
                read: Default::default(),
                write: Default::default(),
                latency: lat(i as f64),
            }],
            disk_latency: lat(i as f64),
            ..Default::default()
        };
        d.cpu_split.steal = Some(0.5);
        d.net_rx.bytes_per_sec = 1000.0;
        d.net_tx.bytes_per_sec = 24.0;
        vm.derived = Some(d);
    }

    #[test]
    fn each_disk_keeps_its_latency_series_until_it_leaves() {
        let mut h = History::new(Duration::from_secs(10));
        for i in 0..15u64 {
            let mut s = snap(i, 1000 + i, &["a"]);
            with_rates(&mut s, i);
            if i == 14 {
                s.vms[0].raw.disks.truncate(1);
            }
            h.ingest(&s);
        }
        let series = h.disk_latency("a");
        // vdb left at the last collection; vda keeps the 10 s window (t-10..=t).
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].name, "vda");
        assert_eq!(series[0].len(), 11);
        // The slower of read and write.
        assert_eq!(series[0].values().last(), Some(Some(28.0)));
        assert_eq!(series[0].points().last(), Some((at(1014), Some(28.0))));
        assert_eq!(series[0].points().next().map(|p| p.0), Some(at(1004)));
        let last = h.samples("a").and_then(|mut q| q.next_back());
        assert_eq!(last.and_then(|s| s.disk_latency_ms), Some(28.0));
        assert!(h.disk_latency("gone").is_empty());
    }

    #[test]
    fn a_disk_that_comes_later_has_points_only_since_then() {
        let mut h = History::new(Duration::from_secs(60));
        for i in 0..6u64 {
            let mut s = snap(i, 1000 + i, &["a"]);
            with_rates(&mut s, i);
            if i < 4 {
                s.vms[0].raw.disks.truncate(1);
            }
            h.ingest(&s);
        }
        let series = h.disk_latency("a");
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].len(), 6);
        // vdb has no rates of its own: its points are there, unknown.
        let vdb: Vec<_> = series[1].points().collect();
        assert_eq!(vdb, [(at(1004), None), (at(1005), None)]);
    }

    #[test]
    fn values_come_back_as_they_went_in_and_none_stays_none() {
        let mut h = History::new(Duration::from_secs(60));
        let mut s = snap(0, 1000, &["a", "b"]);
        with_rates(&mut s, 3);
        h.ingest(&s);
        let a = h.samples("a").and_then(|mut q| q.next());
        let a = a.expect("a point for a");
        assert_eq!(a.cpu_percent, Some(12.5));
        assert_eq!(a.steal_percent, Some(0.5));
        assert_eq!(a.rx_bps, Some(1000.0));
        assert_eq!(a.tx_bps, Some(24.0));
        assert_eq!(a.net_bps, Some(1024.0));
        assert_eq!(a.disk_bps, Some(0.0));
        assert_eq!(a.disk_latency_ms, Some(6.0));
        assert_eq!(a.mem_percent, None);
        // A first sample: nothing derived, nothing made up.
        let b = h.samples("b").and_then(|mut q| q.next());
        let b = b.expect("a point for b");
        assert_eq!((b.cpu_percent, b.net_bps, b.disk_bps), (None, None, None));
        assert_eq!(h.peak(|s| s.net_bps), Some(1024.0));
        // A value f32 cannot hold exactly peaks at what went in.
        let mut s = snap(1, 1001, &["a"]);
        with_rates(&mut s, 3);
        let rate = 3.2 * 1024.0 * 1024.0;
        if let Some(d) = s.vms[0].derived.as_mut() {
            d.net_rx.bytes_per_sec = rate;
        }
        h.ingest(&s);
        assert_eq!(h.peak(|s| s.rx_bps), Some(rate));
        assert_eq!(h.peak(|s| s.mem_percent), None);
    }

    #[test]
    fn the_api_history_keeps_only_what_history_serves() {
        let mut h = History::keeping(Duration::from_secs(60), Keep::Api);
        for i in 0..3 {
            let mut s = snap(i, 1000 + i, &["a"]);
            with_rates(&mut s, i);
            h.ingest(&s);
        }
        let a = h
            .samples("a")
            .and_then(|mut q| q.next_back())
            .expect("a point");
        assert_eq!((a.cpu_percent, a.net_bps), (Some(12.5), Some(1024.0)));
        assert_eq!((a.steal_percent, a.disk_latency_ms), (None, None));
        assert!(h.disk_latency("a").is_empty());
        assert_eq!(len(&h, "a"), Some(3));
        let series = &h.per_vm["a"];
        assert_eq!((series.points.len(), series.extra.len()), (0, 0));
        assert_eq!(std::mem::size_of::<Lean>() * series.lean.len(), 20 * 3);
    }

    #[test]
    fn bounded_by_count() {
        let mut h = History::new(Duration::from_secs(1_000_000));
        for i in 0..(MAX_SAMPLES as u64 + 50) {
            let mut s = snap(i, 1000 + i, &["a"]);
            with_rates(&mut s, i);
            h.ingest(&s);
        }
        assert_eq!(len(&h, "a"), Some(MAX_SAMPLES));
        assert_eq!(h.disk_latency("a")[0].len(), MAX_SAMPLES);
        let first = h.samples("a").and_then(|mut q| q.next()).map(|s| s.at);
        assert_eq!(first, Some(at(1050)));
    }

    #[test]
    fn rings_grow_to_a_full_window_not_to_the_next_power_of_two() {
        let mut h = History::new(Duration::from_secs(300));
        for i in 0..400 {
            let mut s = snap(i, 1000 + i, &["a"]);
            with_rates(&mut s, i);
            h.ingest(&s);
        }
        let series = &h.per_vm["a"];
        // 301 points (t-300..=t) and the one a collection adds before the oldest goes.
        assert_eq!(series.points.len(), 301);
        assert!(
            series.points.capacity() <= 302,
            "{}",
            series.points.capacity()
        );
        assert!(series.extra.capacity() <= 302);
        assert!(series.disks[0].ms.capacity() <= 302);
    }
}
