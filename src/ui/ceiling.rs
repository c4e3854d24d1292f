//! The auto-scaled DISK and NET gauge ceilings: the busiest VM's peak over the
//! history window, kept as it goes instead of rescanning every VM's history at
//! every snapshot (1,000 VMs × 300 points, twice a second, was the TUI's
//! biggest cost once the window filled).
//!
//! Same points as `History`: one per VM per collection (a snapshot of the same
//! collection adds nothing), bounded by the window's age and by
//! `history::MAX_SAMPLES`, and a VM that leaves the snapshot takes its peaks
//! with it. Each VM keeps a monotonic queue per value (a point that a later,
//! larger one outlives can never be the peak), so a snapshot costs one push
//! per VM and the answer is the largest queue front.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use crate::history::MAX_SAMPLES;
use crate::model::{Snapshot, VmSnapshot};

/// The window's largest value of one series: its candidates, oldest first,
/// values strictly falling.
#[derive(Debug, Default)]
struct MaxWindow {
    /// (point number, time, value).
    q: VecDeque<(u64, SystemTime, f64)>,
}

impl MaxWindow {
    fn push(&mut self, seq: u64, at: SystemTime, v: Option<f64>) {
        let Some(v) = v.filter(|v| v.is_finite()) else {
            return;
        };
        while self.q.back().is_some_and(|b| b.2 <= v) {
            self.q.pop_back();
        }
        self.q.push_back((seq, at, v));
    }

    /// Forgets points older than `first_seq` or taken before `cutoff`.
    fn trim(&mut self, first_seq: u64, cutoff: Option<SystemTime>) {
        while self
            .q
            .front()
            .is_some_and(|f| f.0 < first_seq || cutoff.is_some_and(|c| f.1 < c))
        {
            self.q.pop_front();
        }
    }

    fn max(&self) -> Option<f64> {
        self.q.front().map(|f| f.2)
    }
}

#[derive(Debug, Default)]
struct VmPeaks {
    /// The last collection that had this VM.
    seen: u64,
    /// Points taken so far (the next point's number).
    points: u64,
    disk: MaxWindow,
    net: MaxWindow,
}

/// Disk read + write, bytes/s, as the DISK gauge shows it.
fn disk_bps(vm: &VmSnapshot) -> Option<f64> {
    let d = vm.derived.as_ref()?;
    Some(d.disk_read.bytes_per_sec + d.disk_write.bytes_per_sec)
}

/// The busier direction of the network, bytes/s (RX and TX share one ceiling).
fn net_bps(vm: &VmSnapshot) -> Option<f64> {
    let d = vm.derived.as_ref()?;
    Some(d.net_rx.bytes_per_sec.max(d.net_tx.bytes_per_sec))
}

/// Every VM's peaks over the window.
#[derive(Debug)]
pub struct Peaks {
    window: Duration,
    last_collection: Option<u64>,
    per_vm: HashMap<Box<str>, VmPeaks>,
}

impl Peaks {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            last_collection: None,
            per_vm: HashMap::new(),
        }
    }

    /// Adds one point per VM of a new collection.
    pub fn ingest(&mut self, snap: &Snapshot) {
        if snap.collection == 0 || self.last_collection == Some(snap.collection) {
            return;
        }
        self.last_collection = Some(snap.collection);
        let cutoff = snap.taken_at.checked_sub(self.window);
        for vm in &snap.vms {
            let p = match self.per_vm.get_mut(vm.uuid()) {
                Some(p) => p,
                None => self.per_vm.entry(vm.uuid().into()).or_default(),
            };
            p.seen = snap.collection;
            let seq = p.points;
            p.points += 1;
            let first = p.points.saturating_sub(MAX_SAMPLES as u64);
            p.disk.push(seq, snap.taken_at, disk_bps(vm));
            p.net.push(seq, snap.taken_at, net_bps(vm));
            p.disk.trim(first, cutoff);
            p.net.trim(first, cutoff);
        }
        self.per_vm.retain(|_, p| p.seen == snap.collection);
    }

    /// The busiest VM's disk read + write over the window; `None` when nothing was measured.
    pub fn disk(&self) -> Option<f64> {
        self.largest(|p| p.disk.max())
    }

    /// The busiest VM's RX or TX over the window; `None` when nothing was measured.
    pub fn net(&self) -> Option<f64> {
        self.largest(|p| p.net.max())
    }

    fn largest(&self, of: impl Fn(&VmPeaks) -> Option<f64>) -> Option<f64> {
        self.per_vm.values().filter_map(of).reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::model::Derived;

    /// A VM whose disk and network rates are `r` (None: no interval yet).
    fn vm(uuid: &str, r: Option<(f64, f64, f64)>) -> VmSnapshot {
        let mut v = crate::fixtures::vm(crate::fixtures::raw(uuid, uuid));
        v.derived = r.map(|(disk, rx, tx)| {
            let mut d = Derived::default();
            d.disk_read.bytes_per_sec = disk;
            d.net_rx.bytes_per_sec = rx;
            d.net_tx.bytes_per_sec = tx;
            d
        });
        v
    }

    fn snap(collection: u64, secs: u64, vms: impl IntoIterator<Item = VmSnapshot>) -> Snapshot {
        let mut s = Snapshot::empty("test:///default", "h", Duration::from_secs(1));
        s.collection = collection;
        s.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        s.vms = vms.into_iter().collect();
        s
    }

    /// The history's scan, as the ceilings were made before.
    fn scanned(h: &History) -> (Option<f64>, Option<f64>) {
        let net = h.peak(|s| match (s.rx_bps, s.tx_bps) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        });
        (h.peak(|s| s.disk_bps), net)
    }

    #[test]
    fn the_same_peaks_as_scanning_the_history() {
        let window = Duration::from_secs(20);
        let (mut h, mut p) = (History::new(window), Peaks::new(window));
        // A fixed pseudo-random walk: rates rise and fall, VMs come and go, a
        // VM has no rates now and then, and snapshots repeat a collection.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut collection = 1;
        for t in 0..200u64 {
            let vms: Vec<VmSnapshot> = (0..6)
                .filter(|i| (t / 37 + i) % 5 != 0 || t % 3 != 0)
                .map(|i| {
                    let r = next();
                    let rates = (r % 11 != 0).then(|| {
                        let v = |k: u64| ((r >> k) % 5000) as f64 * if i == 2 { 0.5 } else { 1.0 };
                        (v(8), v(20), v(32))
                    });
                    vm(&format!("vm-{i}"), rates)
                })
                .collect();
            if t % 7 != 0 {
                collection += 1;
            }
            let s = snap(collection, 1000 + t, vms);
            h.ingest(&s);
            p.ingest(&s);
            assert_eq!((p.disk(), p.net()), scanned(&h), "after t={t}");
        }
    }

    #[test]
    fn a_peak_ages_out_of_the_window_and_leaves_with_its_vm() {
        let mut p = Peaks::new(Duration::from_secs(10));
        p.ingest(&snap(
            1,
            100,
            vec![vm("a", Some((9e6, 1.0, 2.0))), vm("b", None)],
        ));
        assert_eq!((p.disk(), p.net()), (Some(9e6), Some(2.0)));
        for c in 2..=11 {
            p.ingest(&snap(
                c,
                99 + c,
                vec![vm("a", Some((1.0, 1.0, 1.0))), vm("b", None)],
            ));
        }
        assert_eq!(p.disk(), Some(9e6), "10 s later it is still in the window");
        p.ingest(&snap(
            12,
            111,
            vec![vm("a", Some((1.0, 1.0, 1.0))), vm("b", None)],
        ));
        assert_eq!(p.disk(), Some(1.0));
        p.ingest(&snap(13, 112, vec![vm("b", Some((5.0, 3.0, 4.0)))]));
        assert_eq!((p.disk(), p.net()), (Some(5.0), Some(4.0)));
        p.ingest(&snap(14, 113, vec![]));
        assert_eq!((p.disk(), p.net()), (None, None));
    }
}
