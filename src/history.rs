//! Bounded in-memory history per VM (keyed by UUID), one point per collection: the
//! TUI's sparklines and auto-scaled DISK / NET gauge ceilings, and the service's
//! `GET /history`; per disk, its latency (the detail view's per-disk sparklines).
//!
//! Bounded twice: by age (`history_minutes`) and by a hard sample count, so a
//! tiny poll interval cannot grow memory without limit. VMs that leave the
//! snapshot lose their history at once.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::model::Snapshot;

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

/// One disk's latency over the window (the slower of read and write, ms),
/// one point per collection; `None` where no request completed.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskSeries {
    pub name: String,
    pub points: VecDeque<(SystemTime, Option<f64>)>,
}

#[derive(Debug, Clone)]
pub struct History {
    window: Duration,
    /// The collection the last points came from (`Snapshot::collection`).
    last_collection: Option<u64>,
    per_vm: HashMap<String, VecDeque<Sample>>,
    /// Per VM, one series per disk it has now (a disk that leaves is forgotten).
    per_disk: HashMap<String, Vec<DiskSeries>>,
}

impl History {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last_collection: None,
            per_vm: HashMap::new(),
            per_disk: HashMap::new(),
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
        self.per_vm
            .retain(|uuid, _| snap.vms.iter().any(|vm| vm.uuid() == uuid));
        self.per_disk
            .retain(|uuid, _| snap.vms.iter().any(|vm| vm.uuid() == uuid));
        let cutoff = snap.taken_at.checked_sub(self.window);
        for vm in &snap.vms {
            let d = vm.derived.as_ref();
            let sample = Sample {
                at: snap.taken_at,
                cpu_percent: d.and_then(|d| d.cpu_percent),
                steal_percent: d.and_then(|d| d.cpu_split.steal),
                mem_percent: vm.memory.and_then(|m| m.percent),
                disk_bps: d.map(|d| d.disk_read.bytes_per_sec + d.disk_write.bytes_per_sec),
                net_bps: d.map(|d| d.net_rx.bytes_per_sec + d.net_tx.bytes_per_sec),
                rx_bps: d.map(|d| d.net_rx.bytes_per_sec),
                tx_bps: d.map(|d| d.net_tx.bytes_per_sec),
                disk_latency_ms: d.and_then(|d| d.disk_latency.worst_rw_ms()),
            };
            let q = self.per_vm.entry(vm.uuid().to_string()).or_default();
            q.push_back(sample);
            trim(q, cutoff, |s| s.at);
            let series = self.per_disk.entry(vm.uuid().to_string()).or_default();
            ingest_disks(series, vm, snap.taken_at, cutoff);
        }
    }

    /// Each disk's latency series, in the VM's disk order; empty for an unknown VM.
    pub fn disk_latency(&self, uuid: &str) -> &[DiskSeries] {
        self.per_disk.get(uuid).map_or(&[], |v| v.as_slice())
    }

    pub fn samples(&self, uuid: &str) -> Option<&VecDeque<Sample>> {
        self.per_vm.get(uuid)
    }

    /// The busiest VM's peak of `pick` over the window; `None` when nothing was measured.
    pub fn peak(&self, pick: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
        self.per_vm
            .values()
            .flat_map(|q| q.iter())
            .filter_map(&pick)
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

/// One point per disk the VM has now; series of disks it no longer has are dropped.
fn ingest_disks(
    series: &mut Vec<DiskSeries>,
    vm: &crate::model::VmSnapshot,
    at: SystemTime,
    cutoff: Option<SystemTime>,
) {
    series.retain(|s| vm.raw.disks.iter().any(|d| d.name == s.name));
    for disk in &vm.raw.disks {
        let ms = vm
            .derived
            .as_ref()
            .and_then(|d| d.disks.iter().find(|r| r.name == disk.name))
            .and_then(|r| r.latency.worst_rw_ms());
        let pos = match series.iter().position(|s| s.name == disk.name) {
            Some(pos) => pos,
            None => {
                series.push(DiskSeries {
                    name: disk.name.clone(),
                    points: VecDeque::new(),
                });
                series.len() - 1
            }
        };
        let q = &mut series[pos].points;
        q.push_back((at, ms));
        trim(q, cutoff, |p| p.0);
    }
}

/// Keeps at most [`MAX_SAMPLES`] points and none older than `cutoff`.
fn trim<T>(q: &mut VecDeque<T>, cutoff: Option<SystemTime>, at: impl Fn(&T) -> SystemTime) {
    while q.len() > MAX_SAMPLES {
        q.pop_front();
    }
    if let Some(cutoff) = cutoff {
        while q.front().is_some_and(|p| at(p) < cutoff) {
            q.pop_front();
        }
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

    #[test]
    fn bounded_by_age_and_vms_that_leave_are_forgotten() {
        let mut h = History::new(Duration::from_secs(10));
        for i in 0..30 {
            h.ingest(&snap(i, 1000 + i, &["a", "b"]));
        }
        // 10 s window at 1 s: samples at t-10..=t.
        assert_eq!(h.samples("a").map(|q| q.len()), Some(11));
        h.ingest(&snap(30, 1030, &["a"]));
        assert!(h.samples("b").is_none());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn same_snapshot_twice_is_one_sample() {
        let mut h = History::new(Duration::from_secs(60));
        let s = snap(7, 1000, &["a"]);
        h.ingest(&s);
        h.ingest(&s);
        assert_eq!(h.samples("a").map(|q| q.len()), Some(1));
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
        assert_eq!(h.samples("a").map(|q| q.len()), Some(1));
        // Before any collection there is nothing to record.
        let mut empty = snap(0, 1000, &["a"]);
        empty.collection = 0;
        let mut h2 = History::new(Duration::from_secs(600));
        h2.ingest(&empty);
        assert!(h2.is_empty());
    }

    #[test]
    fn each_disk_keeps_its_latency_series_until_it_leaves() {
        use crate::model::{DeviceRates, DiskLatency};
        let mut h = History::new(Duration::from_secs(10));
        for i in 0..15u64 {
            let mut s = snap(i, 1000 + i, &["a"]);
            let vm = &mut s.vms[0];
            vm.raw.disks = vec![crate::fixtures::disk("vda"), crate::fixtures::disk("vdb")];
            if i == 14 {
                vm.raw.disks.truncate(1);
            }
            let lat = |ms: f64| DiskLatency {
                read_ms: Some(ms),
                write_ms: Some(ms * 2.0),
                flush_ms: None,
            };
            vm.derived = Some(crate::model::Derived {
                disks: vec![DeviceRates {
                    name: "vda".into(),
                    read: Default::default(),
                    write: Default::default(),
                    latency: lat(i as f64),
                }],
                disk_latency: lat(i as f64),
                ..Default::default()
            });
            h.ingest(&s);
        }
        let series = h.disk_latency("a");
        // vdb left at the last collection; vda keeps the 10 s window (t-10..=t).
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].name, "vda");
        assert_eq!(series[0].points.len(), 11);
        // The slower of read and write.
        assert_eq!(series[0].points.back().map(|p| p.1), Some(Some(28.0)));
        let last = h.samples("a").and_then(|q| q.back().copied());
        assert_eq!(last.and_then(|s| s.disk_latency_ms), Some(28.0));
        assert!(h.disk_latency("gone").is_empty());
    }

    #[test]
    fn bounded_by_count() {
        let mut h = History::new(Duration::from_secs(1_000_000));
        for i in 0..(MAX_SAMPLES as u64 + 50) {
            h.ingest(&snap(i, 1000 + i, &["a"]));
        }
        assert_eq!(h.samples("a").map(|q| q.len()), Some(MAX_SAMPLES));
    }
}
