//! Turning consecutive samples of a domain into honest rates (pure).
//!
//! Every rate divides by the Δt measured between the two samples' own
//! monotonic instants, never by the nominal poll interval. A counter that
//! goes backwards (VM restarted, device replaced) starts a new baseline
//! instead of producing a negative or huge rate.

use std::collections::HashMap;

use crate::config::RatesConfig;
use crate::model::{
    CpuSplit, Derived, DeviceRates, DiskLatency, DiskStats, MemSource, MemoryUse, NicStats,
    RawDomain, Throughput, VmSnapshot,
};

/// Shorter intervals than this carry more clock noise than signal.
const MIN_DT_SECS: f64 = 0.001;

/// `degrees(atan(slope / unit))`: 45° when the slope equals one unit, sign kept.
pub fn angle_deg(slope: f64, unit: f64) -> f64 {
    if !slope.is_finite() || !unit.is_finite() || unit <= 0.0 {
        return 0.0;
    }
    (slope / unit).atan().to_degrees()
}

/// Memory used by the guest, best source first (see the README's metric
/// definitions). Each source's used value is divided by that source's own
/// total. `None` for domains whose counters are not the guest's (shut off, crashed).
pub fn memory_use(raw: &RawDomain) -> Option<MemoryUse> {
    if !raw.state.has_guest_counters() {
        return None;
    }
    let b = &raw.balloon;
    let current = b.current_kib.or(raw.cur_mem_kib);
    let (used_kb, source, total_kb) = match (b.available_kib, b.usable_kib, current, b.unused_kib) {
        (Some(avail), Some(usable), _, _) if avail >= usable => {
            (avail - usable, MemSource::AvailableMinusUsable, Some(avail))
        }
        (_, _, Some(cur), Some(unused)) => (
            cur.saturating_sub(unused),
            MemSource::CurrentMinusUnused,
            Some(cur),
        ),
        // RSS is the QEMU process: the guest's RAM plus QEMU's own memory,
        // measured against what the guest was given (may exceed 100 %).
        _ => match (b.rss_kib, current) {
            (Some(rss), cur) => (rss, MemSource::Rss, cur),
            // The allocation is not a measurement of use: no percentage.
            (None, Some(cur)) => (cur, MemSource::Allocation, None),
            (None, None) => return None,
        },
    };
    let total_kb = total_kb.filter(|t| *t > 0);
    let percent = total_kb.map(|t| 100.0 * used_kb as f64 / t as f64);
    Some(MemoryUse {
        used_kb,
        source,
        total_kb,
        percent,
    })
}

/// `100 × Δcpu_ns / (Δt_ns × vcpus)`, clamped to 0..100.
pub fn cpu_percent(delta_cpu_ns: u64, dt_secs: f64, vcpus: u32) -> Option<f64> {
    if vcpus == 0 || dt_secs <= 0.0 {
        return None;
    }
    let pct = 100.0 * delta_cpu_ns as f64 / (dt_secs * 1e9 * f64::from(vcpus));
    Some(pct.clamp(0.0, 100.0))
}

/// Why two samples cannot be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRate {
    /// The domain's counters are not the guest's (shut off, crashed).
    Inactive,
    /// libvirt's runtime ID changed: the VM restarted.
    Restarted,
    /// `cpu.time` went backwards.
    CounterReset,
    /// The samples are (nearly) simultaneous or out of order.
    NoTimeElapsed,
}

/// Rates between `prev` and `cur`, two samples of the same domain.
/// `prev_cpu_percent` is the CPU % of the previous interval, for the CPU angle.
pub fn derive(
    prev: &RawDomain,
    cur: &RawDomain,
    prev_cpu_percent: Option<f64>,
    units: &RatesConfig,
) -> Result<Derived, NoRate> {
    if !prev.state.has_guest_counters() || !cur.state.has_guest_counters() {
        return Err(NoRate::Inactive);
    }
    if prev.id != cur.id {
        return Err(NoRate::Restarted);
    }
    let dt_secs = cur.mono.saturating_duration_since(prev.mono).as_secs_f64();
    if dt_secs < MIN_DT_SECS {
        return Err(NoRate::NoTimeElapsed);
    }
    let delta_cpu = match (prev.cpu, cur.cpu) {
        (Some(p), Some(c)) if c.time_ns < p.time_ns => return Err(NoRate::CounterReset),
        (Some(p), Some(c)) => Some(c.time_ns - p.time_ns),
        _ => None,
    };
    let cpu_pct = delta_cpu.and_then(|d| cpu_percent(d, dt_secs, cur.vcpus?));
    let cpu_angle_deg = match (prev_cpu_percent, cpu_pct) {
        (Some(p), Some(c)) => Some(angle_deg((c - p) / dt_secs, units.cpu_unit)),
        _ => None,
    };

    // Memory rates only compare readings of the same kind: a guest that
    // starts reporting balloon stats would otherwise show a jump it never made.
    let (mem_prev, mem_cur) = (memory_use(prev), memory_use(cur));
    let same_source = matches!((mem_prev, mem_cur), (Some(p), Some(c)) if p.source == c.source);
    let (memory_rate_kb_per_sec, memory_percent_angle_deg) = match (mem_prev, mem_cur) {
        (Some(p), Some(c)) if same_source => {
            let rate = (c.used_kb as f64 - p.used_kb as f64) / dt_secs;
            let pct_angle = match (p.percent, c.percent) {
                (Some(pp), Some(cp)) => Some(angle_deg((cp - pp) / dt_secs, units.memory_unit)),
                _ => None,
            };
            (rate, pct_angle)
        }
        _ => (0.0, None),
    };
    // Seed-compatible definition: the rate itself is the slope (1 KB/s is 45°).
    let memory_angle_deg = memory_rate_kb_per_sec.atan().to_degrees();

    let disks = with_latency(
        device_rates(&prev.disks, &cur.disks, dt_secs, disk_counters),
        &prev.disks,
        &cur.disks,
    );
    let nics = device_rates(&prev.nics, &cur.nics, dt_secs, nic_counters);
    let (disk_read, disk_write) = sum_rates(&disks);
    let (net_rx, net_tx) = sum_rates(&nics);
    let tu = units.throughput_unit;

    let cpu_split = cpu_split(&CpuCounters::of(prev), &CpuCounters::of(cur), dt_secs);
    Ok(Derived {
        dt_secs,
        cpu_percent: cpu_pct,
        cpu_split,
        cpu_angle_deg,
        memory_percent_angle_deg,
        memory_rate_kb_per_sec,
        memory_angle_deg,
        disk_read,
        disk_write,
        net_rx,
        net_tx,
        disk_angle_deg: angle_deg(disk_read.bytes_per_sec + disk_write.bytes_per_sec, tu),
        disk_read_angle_deg: angle_deg(disk_read.bytes_per_sec, tu),
        disk_write_angle_deg: angle_deg(disk_write.bytes_per_sec, tu),
        net_rx_angle_deg: angle_deg(net_rx.bytes_per_sec, tu),
        net_tx_angle_deg: angle_deg(net_tx.bytes_per_sec, tu),
        disk_latency: disk_latency(&prev.disks, &cur.disks),
        net_drops_per_sec: drops_per_sec(&prev.nics, &cur.nics, dt_secs),
        disks,
        nics,
        vcpu_percent: per_vcpu_percent(&prev.vcpu_times_ns, &cur.vcpu_times_ns, dt_secs),
        vcpu_steal_percent: per_vcpu_percent(&prev.vcpu_delays_ns, &cur.vcpu_delays_ns, dt_secs),
    })
}

/// The counters behind the CPU split, from one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuCounters<'a> {
    /// `cpu.time`: everything the VM's QEMU process used.
    pub cpu_time_ns: Option<u64>,
    /// `vcpu.N.time`, one per vCPU (empty when unknown).
    pub vcpu_times_ns: &'a [u64],
    /// `vcpu.N.delay`, one per vCPU (empty when unknown).
    pub vcpu_delays_ns: &'a [u64],
}

impl<'a> CpuCounters<'a> {
    pub fn of(raw: &'a RawDomain) -> Self {
        Self {
            cpu_time_ns: raw.cpu.map(|c| c.time_ns),
            vcpu_times_ns: &raw.vcpu_times_ns,
            vcpu_delays_ns: &raw.vcpu_delays_ns,
        }
    }
}

/// `ΣΔ` of per-vCPU counters over vCPUs present in both samples, or `None`
/// when the set is unknown, changed (hot-plug) or any counter went backwards.
fn vcpu_delta_sum(prev: &[u64], cur: &[u64]) -> Option<u64> {
    if cur.is_empty() || prev.len() != cur.len() {
        return None;
    }
    cur.iter().zip(prev).try_fold(0u64, |acc, (c, p)| {
        c.checked_sub(*p).map(|d| acc.saturating_add(d))
    })
}

/// Guest, overhead and steal percentages between two samples (see
/// [`CpuSplit`] for the formulas). Each is over `Δt × vcpus`, with `vcpus`
/// the number of vCPUs reporting counters; left out (`None`) where libvirt
/// reports no per-vCPU counters, where the vCPU count changed between the
/// samples, or after a counter reset. Pure.
pub fn cpu_split(prev: &CpuCounters, cur: &CpuCounters, dt_secs: f64) -> CpuSplit {
    let n = cur.vcpu_times_ns.len();
    if dt_secs <= 0.0 || !dt_secs.is_finite() || n == 0 {
        return CpuSplit::default();
    }
    let capacity_ns = dt_secs * 1e9 * n as f64;
    let pct = |ns: u64| (100.0 * ns as f64 / capacity_ns).clamp(0.0, 100.0);
    let guest_ns = vcpu_delta_sum(prev.vcpu_times_ns, cur.vcpu_times_ns);
    let total_ns = match (prev.cpu_time_ns, cur.cpu_time_ns) {
        (Some(p), Some(c)) => c.checked_sub(p),
        _ => None,
    };
    let steal_ns = if cur.vcpu_delays_ns.len() == n {
        vcpu_delta_sum(prev.vcpu_delays_ns, cur.vcpu_delays_ns)
    } else {
        None
    };
    CpuSplit {
        guest: guest_ns.map(pct),
        overhead: guest_ns
            .zip(total_ns)
            .map(|(g, t)| pct(t.saturating_sub(g))),
        steal: guest_ns.and(steal_ns).map(pct),
    }
}

/// (read bytes, read ops, write bytes, write ops) of one device; ops are
/// `None` where libvirt does not report them.
type Counters = [Option<u64>; 4];

fn disk_counters(d: &DiskStats) -> (&str, Counters) {
    (
        &d.name,
        [Some(d.rd_bytes), d.rd_reqs, Some(d.wr_bytes), d.wr_reqs],
    )
}

fn nic_counters(n: &NicStats) -> (&str, Counters) {
    (
        &n.name,
        [
            Some(n.rx_bytes),
            n.rx_packets,
            Some(n.tx_bytes),
            n.tx_packets,
        ],
    )
}

/// One kind of disk request: its count and cumulative time (ns).
type ReqTimes = fn(&DiskStats) -> (Option<u64>, Option<u64>);

/// Average latency of read, write and flush requests over the interval.
pub fn disk_latency(prev: &[DiskStats], cur: &[DiskStats]) -> DiskLatency {
    DiskLatency {
        read_ms: latency_ms(prev, cur, |d| (d.rd_reqs, d.rd_times_ns)),
        write_ms: latency_ms(prev, cur, |d| (d.wr_reqs, d.wr_times_ns)),
        flush_ms: latency_ms(prev, cur, |d| (d.fl_reqs, d.fl_times_ns)),
    }
}

/// `ΣΔtime / ΣΔreqs` in ms over the disks present in both samples (matched by
/// name) that report both counters; a disk whose counters went backwards was
/// replaced and is left out. `None` when no request completed.
pub fn latency_ms(prev: &[DiskStats], cur: &[DiskStats], pick: ReqTimes) -> Option<f64> {
    let (mut reqs, mut ns) = (0u64, 0u64);
    for c in cur {
        let Some(p) = prev.iter().find(|p| p.name == c.name) else {
            continue;
        };
        if let ((Some(cr), Some(ct)), (Some(pr), Some(pt))) = (pick(c), pick(p)) {
            if cr >= pr && ct >= pt {
                reqs = reqs.saturating_add(cr - pr);
                ns = ns.saturating_add(ct - pt);
            }
        }
    }
    (reqs > 0).then(|| ns as f64 / reqs as f64 / 1e6)
}

/// Each disk's own latency over the interval, next to its rates.
fn with_latency(
    mut rates: Vec<DeviceRates>,
    prev: &[DiskStats],
    cur: &[DiskStats],
) -> Vec<DeviceRates> {
    for r in &mut rates {
        r.latency = disk_latency(named(prev, &r.name), named(cur, &r.name));
    }
    rates
}

/// The disk called `name` as a one-element slice (empty when absent), borrowed:
/// the per-disk latency needs no copies of the counters each cycle.
fn named<'a>(disks: &'a [DiskStats], name: &str) -> &'a [DiskStats] {
    disks
        .iter()
        .position(|d| d.name == name)
        .map_or(&[], |i| std::slice::from_ref(&disks[i]))
}

/// `ΣΔ(rx_drops + tx_drops) / Δt` over the NICs present in both samples (by
/// name) that report both counters; a NIC whose counters went backwards was
/// replaced and is left out. `None` when no NIC reports drops.
pub fn drops_per_sec(prev: &[NicStats], cur: &[NicStats], dt_secs: f64) -> Option<f64> {
    let drops = |n: &NicStats| Some(n.rx_drops?.saturating_add(n.tx_drops?));
    let mut total: Option<u64> = None;
    for c in cur {
        let Some(p) = prev.iter().find(|p| p.name == c.name) else {
            continue;
        };
        if let (Some(now), Some(before)) = (drops(c), drops(p)) {
            if now >= before {
                total = Some(total.unwrap_or(0).saturating_add(now - before));
            }
        }
    }
    total.map(|d| d as f64 / dt_secs)
}

/// Per-device rates for devices present in both samples (matched by name).
/// A device whose counters went backwards was replaced: it gets a new
/// baseline (no rate this interval) while the others carry on.
fn device_rates<D>(
    prev: &[D],
    cur: &[D],
    dt_secs: f64,
    counters: fn(&D) -> (&str, Counters),
) -> Vec<DeviceRates> {
    cur.iter()
        .filter_map(|c| {
            let (name, now) = counters(c);
            let (_, before) = prev.iter().map(counters).find(|(n, _)| *n == name)?;
            if now.iter().zip(before.iter()).any(|(n, b)| match (n, b) {
                (Some(n), Some(b)) => n < b,
                _ => false,
            }) {
                return None;
            }
            let per_sec = |i: usize| match (now[i], before[i]) {
                (Some(n), Some(b)) => Some((n - b) as f64 / dt_secs),
                _ => None,
            };
            Some(DeviceRates {
                name: name.to_string(),
                read: Throughput {
                    bytes_per_sec: per_sec(0)?,
                    ops_per_sec: per_sec(1),
                },
                write: Throughput {
                    bytes_per_sec: per_sec(2)?,
                    ops_per_sec: per_sec(3),
                },
                latency: DiskLatency::default(),
            })
        })
        .collect()
}

/// Totals over all devices. An ops total is known only when every device
/// reports that counter (a partial sum would read as a drop).
fn sum_rates(devs: &[DeviceRates]) -> (Throughput, Throughput) {
    let zero = Throughput {
        bytes_per_sec: 0.0,
        ops_per_sec: Some(0.0),
    };
    let add = |a: Throughput, b: Throughput| Throughput {
        bytes_per_sec: a.bytes_per_sec + b.bytes_per_sec,
        ops_per_sec: a.ops_per_sec.zip(b.ops_per_sec).map(|(x, y)| x + y),
    };
    devs.iter()
        .fold((zero, zero), |(r, w), d| (add(r, d.read), add(w, d.write)))
}

/// Per-vCPU `100 × Δcounter / Δt`, empty when the vCPU set changed or a counter reset.
fn per_vcpu_percent(prev: &[u64], cur: &[u64], dt_secs: f64) -> Vec<f64> {
    if prev.len() != cur.len() || cur.iter().zip(prev).any(|(c, p)| c < p) {
        return Vec::new();
    }
    cur.iter()
        .zip(prev)
        .map(|(c, p)| (100.0 * (c - p) as f64 / (dt_secs * 1e9)).clamp(0.0, 100.0))
        .collect()
}

struct Baseline {
    raw: RawDomain,
    cpu_percent: Option<f64>,
}

/// Makes `dst` equal to `src`, reusing `dst`'s strings and vectors: the
/// baselines are rewritten every cycle, and 1,000 domains' names, devices and
/// tags cloned afresh are some 10,000 allocations a cycle. The struct update
/// syntax keeps this exhaustive: a new field that is not `Copy` fails to
/// compile here until it is refilled too.
fn refill(dst: &mut RawDomain, src: &RawDomain) {
    let mut uuid = std::mem::take(&mut dst.uuid);
    let mut name = std::mem::take(&mut dst.name);
    let mut vcpu_times_ns = std::mem::take(&mut dst.vcpu_times_ns);
    let mut vcpu_delays_ns = std::mem::take(&mut dst.vcpu_delays_ns);
    let mut nics = std::mem::take(&mut dst.nics);
    let mut disks = std::mem::take(&mut dst.disks);
    let mut tags = std::mem::take(&mut dst.tags);
    let mut jobs = std::mem::take(&mut dst.jobs);
    uuid.clone_from(&src.uuid);
    name.clone_from(&src.name);
    vcpu_times_ns.clone_from(&src.vcpu_times_ns);
    vcpu_delays_ns.clone_from(&src.vcpu_delays_ns);
    refill_each(&mut nics, &src.nics, |d, s| {
        let mut name = std::mem::take(&mut d.name);
        name.clone_from(&s.name);
        *d = NicStats { name, ..*s };
    });
    refill_each(&mut disks, &src.disks, |d, s| {
        let (mut name, mut path) = (std::mem::take(&mut d.name), d.path.take());
        name.clone_from(&s.name);
        path.clone_from(&s.path);
        *d = DiskStats { name, path, ..*s };
    });
    tags.clone_from(&src.tags);
    jobs.clone_from(&src.jobs);
    *dst = RawDomain {
        uuid,
        name,
        vcpu_times_ns,
        vcpu_delays_ns,
        nics,
        disks,
        tags,
        jobs,
        ..*src
    };
}

/// `dst` the same length as `src`, each element made equal by `set` (which may
/// reuse its buffers); elements beyond `dst`'s length are cloned.
fn refill_each<T: Clone>(dst: &mut Vec<T>, src: &[T], set: impl Fn(&mut T, &T)) {
    dst.truncate(src.len());
    for (d, s) in dst.iter_mut().zip(src) {
        set(d, s);
    }
    let have = dst.len();
    dst.extend_from_slice(&src[have..]);
}

/// Remembers the previous sample of every domain (by UUID) between cycles.
pub struct Deriver {
    units: RatesConfig,
    baselines: HashMap<String, Baseline>,
}

impl Deriver {
    pub fn new(units: RatesConfig) -> Self {
        Self {
            units,
            baselines: HashMap::new(),
        }
    }

    /// Forget every baseline: the next cycle is everyone's first sample.
    pub fn reset(&mut self) {
        self.baselines.clear();
    }

    /// Derives this cycle's snapshots and keeps them as the next baselines.
    /// Domains that vanished are forgotten; the result is sorted by name, then UUID.
    pub fn apply(&mut self, domains: Vec<RawDomain>) -> Vec<VmSnapshot> {
        let mut next = HashMap::with_capacity(domains.len());
        let mut out = Vec::with_capacity(domains.len());
        for raw in domains {
            let (uuid, baseline) = match self.baselines.remove_entry(&raw.uuid) {
                Some((uuid, mut b)) => {
                    let derived = derive(&b.raw, &raw, b.cpu_percent, &self.units).ok();
                    b.cpu_percent = derived.as_ref().and_then(|d| d.cpu_percent);
                    refill(&mut b.raw, &raw);
                    out.push(VmSnapshot {
                        memory: memory_use(&raw),
                        raw,
                        derived,
                    });
                    (uuid, b)
                }
                None => {
                    let b = Baseline {
                        raw: raw.clone(),
                        cpu_percent: None,
                    };
                    out.push(VmSnapshot {
                        memory: memory_use(&raw),
                        raw,
                        derived: None,
                    });
                    (b.raw.uuid.clone(), b)
                }
            };
            next.insert(uuid, baseline);
        }
        self.baselines = next;
        out.sort_by(|a, b| {
            a.raw
                .name
                .cmp(&b.raw.name)
                .then(a.raw.uuid.cmp(&b.raw.uuid))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BalloonStats, CpuTimes, DomainState};
    use pretty_assertions::assert_eq;
    use std::time::{Duration, Instant};

    fn units() -> RatesConfig {
        RatesConfig {
            cpu_unit: 1.0,
            memory_unit: 1.0,
            throughput_unit: 1_048_576.0,
        }
    }

    fn raw(at: Instant, cpu_ns: u64) -> RawDomain {
        RawDomain {
            id: Some(3),
            vcpus: Some(2),
            max_mem_kib: Some(1_048_576),
            cur_mem_kib: Some(1_048_576),
            cpu: Some(CpuTimes {
                time_ns: cpu_ns,
                user_ns: None,
                system_ns: None,
            }),
            mono: at,
            ..crate::fixtures::raw("web", "u-1")
        }
    }

    fn disk(name: &str, rd_bytes: u64, wr_bytes: u64) -> DiskStats {
        DiskStats {
            name: name.into(),
            rd_bytes,
            rd_reqs: Some(rd_bytes / 4096),
            wr_bytes,
            wr_reqs: Some(wr_bytes / 4096),
            ..DiskStats::default()
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn timed(name: &str, reqs: u64, ns: u64) -> DiskStats {
        DiskStats {
            name: name.into(),
            rd_reqs: Some(reqs),
            rd_times_ns: Some(ns),
            wr_reqs: Some(reqs * 2),
            wr_times_ns: Some(ns),
            fl_reqs: Some(reqs),
            fl_times_ns: None,
            ..DiskStats::default()
        }
    }

    #[test]
    fn drops_per_second_sum_both_directions_over_nics_that_report_them() {
        let nic = |name: &str, rx: Option<u64>, tx: Option<u64>| NicStats {
            name: name.into(),
            rx_drops: rx,
            tx_drops: tx,
            ..Default::default()
        };
        let prev = [
            nic("a", Some(10), Some(0)),
            nic("b", None, Some(1)),
            nic("c", Some(50), Some(0)),
        ];
        let cur = [
            nic("a", Some(14), Some(2)),
            nic("b", None, Some(9)),
            nic("c", Some(1), Some(0)),
        ];
        assert_eq!(
            drops_per_sec(&prev, &cur, 2.0),
            Some(3.0),
            "a only: b unreported, c replaced"
        );
        assert_eq!(drops_per_sec(&prev[1..2], &cur[1..2], 1.0), None);
    }

    #[test]
    fn disk_latency_is_time_over_requests_summed_over_disks() {
        let prev = [timed("vda", 100, 1_000_000), timed("vdb", 10, 0)];
        // vda: 50 reads in 10 ms; vdb: 30 reads in 110 ms → 120 ms / 80 = 1.5 ms.
        let cur = [timed("vda", 150, 11_000_000), timed("vdb", 40, 110_000_000)];
        let l = disk_latency(&prev, &cur);
        assert!(close(l.read_ms.unwrap(), 1.5), "{l:?}");
        // Twice the writes in the same time: half the latency.
        assert!(close(l.write_ms.unwrap(), 0.75), "{l:?}");
        // Flushes completed but their time is not reported: unknown, not 0.
        assert_eq!(l.flush_ms, None);
    }

    #[test]
    fn disk_latency_is_left_out_without_requests_and_skips_replaced_disks() {
        let prev = [timed("vda", 100, 5_000_000), timed("vdb", 500, 9_000_000)];
        // No request on vda; vdb went backwards (replaced): nothing to average.
        let cur = [timed("vda", 100, 5_000_000), timed("vdb", 3, 1_000)];
        assert_eq!(disk_latency(&prev, &cur), DiskLatency::default());
        // A disk only in the current sample has no interval yet.
        let cur = [timed("vdc", 50, 1_000_000)];
        assert_eq!(disk_latency(&prev, &cur).read_ms, None);
    }

    #[test]
    fn derive_fills_disk_latency_from_the_two_samples() {
        let t0 = Instant::now();
        let mut a = raw(t0, 1_000_000_000);
        a.disks = vec![timed("vda", 100, 1_000_000)];
        let mut b = raw(t0 + Duration::from_secs(2), 2_000_000_000);
        b.disks = vec![timed("vda", 120, 5_000_000)];
        let d = derive(&a, &b, None, &units()).unwrap();
        assert!(
            close(d.disk_latency.read_ms.unwrap(), 0.2),
            "{:?}",
            d.disk_latency
        );
    }

    #[test]
    fn each_disk_carries_its_own_latency() {
        let t0 = Instant::now();
        let mut a = raw(t0, 1_000_000_000);
        a.disks = vec![timed("vda", 100, 1_000_000), timed("vdb", 10, 0)];
        let mut b = raw(t0 + Duration::from_secs(1), 2_000_000_000);
        // vda: 50 reads in 10 ms (0.2 ms); vdb: no request in the interval.
        b.disks = vec![timed("vda", 150, 11_000_000), timed("vdb", 10, 0)];
        let d = derive(&a, &b, None, &units()).unwrap();
        let vda = &d.disks[0].latency;
        assert!(close(vda.read_ms.unwrap(), 0.2), "{vda:?}");
        assert!(close(vda.write_ms.unwrap(), 0.1), "{vda:?}");
        assert_eq!(d.disks[1].latency, DiskLatency::default());
        // The VM's figure sums both disks' times over both disks' requests.
        assert!(close(d.disk_latency.read_ms.unwrap(), 0.2));
        // NICs have no latency.
        assert!(d.nics.iter().all(|n| n.latency == DiskLatency::default()));
    }

    #[test]
    fn worst_of_read_and_write_is_the_slower_known_one() {
        let l = |r, w| DiskLatency {
            read_ms: r,
            write_ms: w,
            flush_ms: Some(99.0),
        };
        assert_eq!(l(Some(1.0), Some(3.0)).worst_rw_ms(), Some(3.0));
        assert_eq!(l(None, Some(2.0)).worst_rw_ms(), Some(2.0));
        assert_eq!(l(Some(4.0), None).worst_rw_ms(), Some(4.0));
        // Flushes alone do not count: the card shows reads and writes.
        assert_eq!(l(None, None).worst_rw_ms(), None);
    }

    #[test]
    fn angle_is_45_degrees_at_one_unit_and_keeps_its_sign() {
        assert!(close(angle_deg(1.0, 1.0), 45.0));
        assert!(close(angle_deg(-1.0, 1.0), -45.0));
        assert!(close(angle_deg(1_048_576.0, 1_048_576.0), 45.0));
        assert!(close(angle_deg(0.0, 1.0), 0.0));
        assert!(angle_deg(1e12, 1.0) < 90.0);
        assert_eq!(angle_deg(f64::NAN, 1.0), 0.0);
        assert_eq!(angle_deg(1.0, 0.0), 0.0);
    }

    #[test]
    fn cpu_percent_uses_measured_dt_and_vcpu_count() {
        let t0 = Instant::now();
        // 2 vCPUs, 2.5 s elapsed, 2.5 s of CPU time = one vCPU busy = 50 %.
        let a = raw(t0, 10_000_000_000);
        let b = raw(t0 + Duration::from_millis(2500), 12_500_000_000);
        let d = derive(&a, &b, None, &units()).unwrap();
        assert!(close(d.dt_secs, 2.5));
        assert!(close(d.cpu_percent.unwrap(), 50.0));
        // No previous CPU % yet: no CPU angle.
        assert_eq!(d.cpu_angle_deg, None);
    }

    #[test]
    fn cpu_percent_is_clamped_and_the_old_formula_is_not_used() {
        // The old collector's `(cputime_ns / 1e9) % 100` would give 12 here; the real answer is 100 (clamped).
        assert_eq!(cpu_percent(3_000_000_000, 1.0, 2), Some(100.0));
        assert_eq!(cpu_percent(0, 1.0, 2), Some(0.0));
        assert_eq!(cpu_percent(1, 1.0, 0), None);
    }

    #[test]
    fn cpu_angle_is_slope_of_cpu_percent_in_points_per_second() {
        let t0 = Instant::now();
        let a = raw(t0, 0);
        let b = raw(t0 + Duration::from_secs(2), 1_000_000_000); // 25 %
        let d = derive(&a, &b, Some(75.0), &units()).unwrap();
        assert!(close(d.cpu_percent.unwrap(), 25.0));
        // (25 − 75) / 2 s = −25 pp/s.
        assert!(close(
            d.cpu_angle_deg.unwrap(),
            (-25.0f64).atan().to_degrees()
        ));
        assert!(d.cpu_angle_deg.unwrap() < 0.0);
    }

    #[test]
    fn first_sample_has_no_derived_values_and_second_has() {
        let mut der = Deriver::new(units());
        let t0 = Instant::now();
        let first = der.apply(vec![raw(t0, 0)]);
        assert!(first[0].derived.is_none());
        let second = der.apply(vec![raw(t0 + Duration::from_secs(1), 500_000_000)]);
        let d = second[0].derived.as_ref().unwrap();
        assert!(close(d.cpu_percent.unwrap(), 25.0));
        let third = der.apply(vec![raw(t0 + Duration::from_secs(2), 1_500_000_000)]);
        // 25 % -> 50 %: +25 pp/s.
        let d3 = third[0].derived.as_ref().unwrap();
        assert!(close(d3.cpu_angle_deg.unwrap(), 25f64.atan().to_degrees()));
    }

    #[test]
    fn counter_reset_starts_a_new_baseline() {
        let mut der = Deriver::new(units());
        let t0 = Instant::now();
        der.apply(vec![raw(t0, 50_000_000_000)]);
        let reset = der.apply(vec![raw(t0 + Duration::from_secs(1), 1_000_000)]);
        assert!(
            reset[0].derived.is_none(),
            "backwards cpu.time gives no rate"
        );
        let after = der.apply(vec![raw(t0 + Duration::from_secs(2), 501_000_000)]);
        assert!(close(
            after[0].derived.as_ref().unwrap().cpu_percent.unwrap(),
            25.0
        ));
    }

    #[test]
    fn restart_with_new_id_gives_no_rate() {
        let t0 = Instant::now();
        let a = raw(t0, 1_000);
        let mut b = raw(t0 + Duration::from_secs(1), 2_000);
        b.id = Some(9);
        assert_eq!(derive(&a, &b, None, &units()), Err(NoRate::Restarted));
    }

    #[test]
    fn inactive_domains_never_get_cpu_percent() {
        let t0 = Instant::now();
        let mut a = raw(t0, 1_000_000_000);
        let mut b = raw(t0 + Duration::from_secs(1), 9_000_000_000);
        a.state = DomainState::Shutoff;
        b.state = DomainState::Shutoff;
        assert_eq!(derive(&a, &b, None, &units()), Err(NoRate::Inactive));
        assert_eq!(memory_use(&b), None);
    }

    #[test]
    fn no_elapsed_time_gives_no_rate() {
        let t0 = Instant::now();
        assert_eq!(
            derive(&raw(t0, 0), &raw(t0, 10), None, &units()),
            Err(NoRate::NoTimeElapsed)
        );
    }

    #[test]
    fn disk_and_network_throughput_sum_devices_and_angle_is_mib_per_second() {
        let t0 = Instant::now();
        let mut a = raw(t0, 0);
        let mut b = raw(t0 + Duration::from_millis(500), 0);
        a.disks = vec![disk("vda", 0, 0), disk("vdb", 1 << 20, 0)];
        // vda reads 256 KiB and writes 256 KiB, vdb reads 0; over 0.5 s = 1 MiB/s total.
        b.disks = vec![disk("vda", 1 << 18, 1 << 18), disk("vdb", 1 << 20, 0)];
        a.nics = vec![NicStats {
            name: "tap0".into(),
            rx_bytes: 100,
            rx_packets: Some(1),
            tx_packets: Some(0),
            ..NicStats::default()
        }];
        b.nics = vec![NicStats {
            name: "tap0".into(),
            rx_bytes: 1100,
            rx_packets: Some(11),
            tx_bytes: 50,
            tx_packets: Some(1),
            ..NicStats::default()
        }];
        let d = derive(&a, &b, None, &units()).unwrap();
        assert!(close(d.disk_read.bytes_per_sec, 524_288.0));
        assert!(close(d.disk_write.bytes_per_sec, 524_288.0));
        assert!(close(d.disk_read.ops_per_sec.unwrap(), 128.0));
        assert!(close(d.disk_angle_deg, 45.0));
        assert!(close(d.net_rx.bytes_per_sec, 2000.0));
        assert!(close(d.net_rx.ops_per_sec.unwrap(), 20.0));
        assert!(close(d.net_tx.bytes_per_sec, 100.0));
        assert_eq!(d.disks.len(), 2);
    }

    #[test]
    fn replaced_device_is_rebaselined_alone() {
        let t0 = Instant::now();
        let mut a = raw(t0, 0);
        let mut b = raw(t0 + Duration::from_secs(1), 0);
        a.disks = vec![disk("vda", 1000, 0), disk("vdb", 1 << 30, 0)];
        b.disks = vec![disk("vda", 3000, 0), disk("vdb", 10, 0), disk("vdc", 5, 0)];
        let d = derive(&a, &b, None, &units()).unwrap();
        // vdb went backwards (replaced) and vdc is new: only vda counts.
        assert_eq!(d.disks.len(), 1);
        assert!(close(d.disk_read.bytes_per_sec, 2000.0));
    }

    #[test]
    fn memory_used_prefers_available_minus_usable() {
        let mut r = raw(Instant::now(), 0);
        r.balloon = BalloonStats {
            current_kib: Some(131_072),
            available_kib: Some(112_000),
            usable_kib: Some(80_000),
            unused_kib: Some(40_000),
            rss_kib: Some(200_000),
            ..BalloonStats::default()
        };
        let m = memory_use(&r).unwrap();
        assert_eq!(m.used_kb, 32_000);
        assert_eq!(m.source, MemSource::AvailableMinusUsable);
        assert!(close(m.percent.unwrap(), 100.0 * 32_000.0 / 112_000.0));

        r.balloon.usable_kib = None;
        let m = memory_use(&r).unwrap();
        assert_eq!(
            (m.used_kb, m.source),
            (91_072, MemSource::CurrentMinusUnused)
        );
        // Measured against its own total (the balloon's current size).
        assert_eq!(m.total_kb, Some(131_072));
        assert!(close(m.percent.unwrap(), 100.0 * 91_072.0 / 131_072.0));

        r.balloon.unused_kib = None;
        r.balloon.available_kib = None;
        let m = memory_use(&r).unwrap();
        assert_eq!((m.used_kb, m.source), (200_000, MemSource::Rss));
        // RSS includes QEMU's own memory: over 100 %, and flagged as such.
        assert!(close(m.percent.unwrap(), 100.0 * 200_000.0 / 131_072.0));
        assert!(m.over_total());

        r.balloon = BalloonStats::default();
        let m = memory_use(&r).unwrap();
        assert_eq!((m.used_kb, m.source), (1_048_576, MemSource::Allocation));
        assert_eq!(m.percent, None, "an allocation is not a measured use");
    }

    #[test]
    fn memory_percent_of_a_guest_source_never_exceeds_100() {
        let mut r = raw(Instant::now(), 0);
        // current − unused over available used to exceed 100 %: now over current.
        r.balloon = BalloonStats {
            current_kib: Some(131_072),
            available_kib: Some(100_000),
            unused_kib: Some(1_000),
            ..BalloonStats::default()
        };
        let m = memory_use(&r).unwrap();
        assert_eq!(m.source, MemSource::CurrentMinusUnused);
        assert!(m.percent.unwrap() <= 100.0 && !m.over_total());
    }

    #[test]
    fn memory_rate_uses_real_dt_and_keeps_sign() {
        let t0 = Instant::now();
        let mut a = raw(t0, 0);
        let mut b = raw(t0 + Duration::from_secs(4), 0);
        let stats = |usable| BalloonStats {
            available_kib: Some(100_000),
            usable_kib: Some(usable),
            ..BalloonStats::default()
        };
        a.balloon = stats(60_000); // used 40,000 (40 %)
        b.balloon = stats(80_000); // used 20,000 (20 %)
        let d = derive(&a, &b, None, &units()).unwrap();
        assert!(close(d.memory_rate_kb_per_sec, -5_000.0));
        assert!(close(d.memory_angle_deg, (-5_000f64).atan().to_degrees()));
        // −20 pp over 4 s = −5 pp/s.
        assert!(close(
            d.memory_percent_angle_deg.unwrap(),
            (-5f64).atan().to_degrees()
        ));
    }

    #[test]
    fn memory_rate_is_zero_when_the_source_changes() {
        let t0 = Instant::now();
        let a = raw(t0, 0); // allocation only
        let mut b = raw(t0 + Duration::from_secs(1), 0);
        b.balloon.available_kib = Some(1_000_000);
        b.balloon.usable_kib = Some(900_000);
        let d = derive(&a, &b, None, &units()).unwrap();
        assert_eq!(d.memory_rate_kb_per_sec, 0.0);
        assert_eq!(d.memory_percent_angle_deg, None);
    }

    #[test]
    fn vanished_domains_are_forgotten_and_output_is_sorted() {
        let mut der = Deriver::new(units());
        let t0 = Instant::now();
        let mut z = raw(t0, 0);
        z.name = "zeta".into();
        z.uuid = "u-z".into();
        let out = der.apply(vec![z.clone(), raw(t0, 0)]);
        assert_eq!(
            out.iter().map(|v| v.name()).collect::<Vec<_>>(),
            ["web", "zeta"]
        );
        der.apply(vec![raw(t0 + Duration::from_secs(1), 0)]);
        // zeta comes back: its old baseline is gone, so it is a first sample again.
        z.mono = t0 + Duration::from_secs(2);
        let out = der.apply(vec![z]);
        assert!(out[0].derived.is_none());
    }

    #[test]
    fn a_refilled_baseline_equals_its_source_whatever_it_held_before() {
        let t0 = Instant::now();
        let nic = |name: &str, rx| NicStats {
            name: name.into(),
            rx_bytes: rx,
            rx_drops: Some(rx),
            ..NicStats::default()
        };
        let big = RawDomain {
            nics: vec![nic("tap0", 1), nic("tap1", 2), nic("tap2", 3)],
            disks: vec![disk("vda", 1, 2), disk("vdb", 3, 4)],
            tags: vec![("project".into(), "shop".into())],
            vcpu_times_ns: vec![1, 2, 3],
            ..raw(t0, 5)
        };
        let small = RawDomain {
            name: "other name".into(),
            nics: vec![nic("tap9", 7)],
            disks: vec![
                DiskStats {
                    path: Some("/img/a".into()),
                    ..disk("sda", 9, 9)
                },
                disk("sdb", 1, 1),
                disk("sdc", 2, 2),
            ],
            monitor_stuck: Some(std::time::Duration::from_secs(1)),
            ..raw(t0 + std::time::Duration::from_secs(1), 9)
        };
        for (from, to) in [(&big, &small), (&small, &big), (&big, &big)] {
            let mut dst = from.clone();
            refill(&mut dst, to);
            assert_eq!(&dst, to);
        }
    }

    #[test]
    fn per_vcpu_percent() {
        let t0 = Instant::now();
        let mut a = raw(t0, 0);
        let mut b = raw(t0 + Duration::from_secs(2), 0);
        a.vcpu_times_ns = vec![0, 0];
        b.vcpu_times_ns = vec![2_000_000_000, 500_000_000];
        let d = derive(&a, &b, None, &units()).unwrap();
        assert_eq!(d.vcpu_percent, vec![100.0, 25.0]);
    }

    fn counters<'a>(cpu: u64, times: &'a [u64], delays: &'a [u64]) -> CpuCounters<'a> {
        CpuCounters {
            cpu_time_ns: Some(cpu),
            vcpu_times_ns: times,
            vcpu_delays_ns: delays,
        }
    }

    #[test]
    fn cpu_split_over_a_2_5_second_interval() {
        // 2 vCPUs over 2.5 s = 5 s of capacity. The vCPUs ran 2 s (40 %), the
        // process 2.25 s (0.25 s of QEMU threads = 5 %), they waited 0.5 s (10 %).
        let a = counters(10_000_000_000, &[4_000_000_000, 4_000_000_000], &[100, 200]);
        let b = counters(
            12_250_000_000,
            &[5_500_000_000, 4_500_000_000],
            &[400_000_100, 100_000_200],
        );
        let s = cpu_split(&a, &b, 2.5);
        assert!(close(s.guest.unwrap(), 40.0));
        assert!(close(s.overhead.unwrap(), 5.0));
        assert!(close(s.steal.unwrap(), 10.0));
    }

    #[test]
    fn cpu_split_overhead_never_negative() {
        // vCPU times read a little after cpu.time can exceed its delta.
        let a = counters(0, &[0], &[0]);
        let b = counters(900_000_000, &[1_000_000_000], &[0]);
        let s = cpu_split(&a, &b, 2.0);
        assert!(close(s.guest.unwrap(), 50.0));
        assert_eq!(s.overhead, Some(0.0));
        assert_eq!(s.steal, Some(0.0));
    }

    #[test]
    fn cpu_split_counter_reset_gives_nothing() {
        let a = counters(5_000, &[4_000, 1_000], &[10, 10]);
        let b = counters(6_000, &[10, 1_500], &[20, 20]);
        assert_eq!(cpu_split(&a, &b, 1.0).guest, None);
        assert_eq!(cpu_split(&a, &b, 1.0).overhead, None);
        assert_eq!(cpu_split(&a, &b, 1.0).steal, None);
        // A reset of cpu.time alone loses only the overhead.
        let c = counters(10, &[5_000, 2_000], &[30, 30]);
        let s = cpu_split(&a, &c, 1.0);
        assert!(s.guest.is_some() && s.steal.is_some());
        assert_eq!(s.overhead, None);
    }

    #[test]
    fn cpu_split_vcpu_hot_plug_skips_one_interval() {
        let a = counters(0, &[1_000_000_000], &[0]);
        let b = counters(2_000_000_000, &[1_500_000_000, 0], &[0, 0]);
        assert_eq!(cpu_split(&a, &b, 1.0), CpuSplit::default());
        // The next interval has two vCPUs on both sides: 100 % of 2 s.
        let c = counters(4_000_000_000, &[2_500_000_000, 1_000_000_000], &[0, 0]);
        assert!(close(cpu_split(&b, &c, 1.0).guest.unwrap(), 100.0));
    }

    #[test]
    fn cpu_split_missing_per_vcpu_stats_are_left_out() {
        // Test driver / older libvirt: cpu.time only.
        let a = counters(0, &[], &[]);
        let b = counters(1_000_000_000, &[], &[]);
        assert_eq!(cpu_split(&a, &b, 1.0), CpuSplit::default());
        // Times without delays (libvirt before 6.0): guest and overhead only.
        let a = counters(0, &[0], &[]);
        let b = counters(1_000_000_000, &[800_000_000], &[]);
        let s = cpu_split(&a, &b, 1.0);
        assert!(close(s.guest.unwrap(), 80.0));
        assert!(close(s.overhead.unwrap(), 20.0));
        assert_eq!(s.steal, None);
    }

    #[test]
    fn derive_carries_the_split_and_per_vcpu_steal() {
        let t0 = Instant::now();
        let mut a = raw(t0, 0);
        let mut b = raw(t0 + Duration::from_secs(2), 2_000_000_000);
        a.vcpu_times_ns = vec![0, 0];
        b.vcpu_times_ns = vec![1_000_000_000, 600_000_000];
        a.vcpu_delays_ns = vec![0, 0];
        b.vcpu_delays_ns = vec![200_000_000, 0];
        let d = derive(&a, &b, None, &units()).unwrap();
        assert!(close(d.cpu_split.guest.unwrap(), 40.0));
        assert!(close(d.cpu_split.overhead.unwrap(), 10.0));
        assert!(close(d.cpu_split.steal.unwrap(), 5.0));
        assert_eq!(d.vcpu_steal_percent, vec![10.0, 0.0]);
        assert!(close(d.cpu_percent.unwrap(), 50.0));
    }
}
