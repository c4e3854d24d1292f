//! A host's VMs as the live view's `Snapshot` (pure), made from the newest
//! `vm_metrics` and `vm_features` point of each VM: the fields the writer wrote
//! from the metric table are read back into the same places, so the live view's
//! renderers and the `--format json` record work on them unchanged. What a line
//! did not carry stays unknown.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use super::answer::Point;
use super::hosts::{current_vms, VmPoints, VM_IDENTITY_TAGS};
use crate::model::{
    CpuSplit, CpuTimes, Derived, DiskLatency, DomainState, HostInfo, MemSource, MemoryUse, Origin,
    Snapshot, SourceState, Throughput, VmSnapshot,
};

/// `vm_metrics.state` back to the state (`unknown` and words of a newer build:
/// no state).
fn state(word: Option<&str>) -> DomainState {
    (0..=7)
        .map(DomainState::from_code)
        .find(|s| Some(s.as_str()) == word)
        .unwrap_or(DomainState::NoState)
}

fn mem_source(word: Option<&str>) -> MemSource {
    [
        MemSource::AvailableMinusUsable,
        MemSource::CurrentMinusUnused,
        MemSource::Rss,
    ]
    .into_iter()
    .find(|s| Some(s.as_str()) == word)
    .unwrap_or(MemSource::Allocation)
}

fn throughput(p: &Point, bytes: &str, ops: &str) -> Throughput {
    Throughput {
        bytes_per_sec: p.f64(bytes).unwrap_or(0.0),
        ops_per_sec: p.f64(ops),
    }
}

/// The rates of a `vm_features` point.
fn derived(p: &Point) -> Derived {
    Derived {
        cpu_percent: p.f64("cpu_usage_percent"),
        cpu_split: CpuSplit {
            guest: p.f64("cpu_guest_percent"),
            overhead: p.f64("cpu_overhead_percent"),
            steal: p.f64("cpu_steal_percent"),
        },
        cpu_angle_deg: p.f64("cpu_angle_deg"),
        memory_percent_angle_deg: p.f64("memory_percent_angle_deg"),
        memory_rate_kb_per_sec: p.f64("memory_rate_kb_per_sec").unwrap_or(0.0),
        memory_angle_deg: p.f64("memory_angle_deg").unwrap_or(0.0),
        disk_read: throughput(p, "disk_read_bytes_per_sec", "disk_read_req_per_sec"),
        disk_write: throughput(p, "disk_write_bytes_per_sec", "disk_write_req_per_sec"),
        net_rx: throughput(p, "net_rx_bytes_per_sec", "net_rx_packets_per_sec"),
        net_tx: throughput(p, "net_tx_bytes_per_sec", "net_tx_packets_per_sec"),
        disk_angle_deg: p.f64("disk_angle_deg").unwrap_or(0.0),
        disk_read_angle_deg: p.f64("disk_read_angle_deg").unwrap_or(0.0),
        disk_write_angle_deg: p.f64("disk_write_angle_deg").unwrap_or(0.0),
        net_rx_angle_deg: p.f64("net_rx_angle_deg").unwrap_or(0.0),
        net_tx_angle_deg: p.f64("net_tx_angle_deg").unwrap_or(0.0),
        disk_latency: DiskLatency {
            read_ms: p.f64("disk_read_latency_ms"),
            write_ms: p.f64("disk_write_latency_ms"),
            flush_ms: p.f64("disk_flush_latency_ms"),
        },
        ..Derived::default()
    }
}

/// Memory use from `memory_used_kb` and, when the rates carried them, its source
/// and percentage.
fn memory(used_kb: u64, features: Option<&Point>) -> MemoryUse {
    let percent = features.and_then(|f| f.f64("memory_usage_percent"));
    MemoryUse {
        used_kb,
        source: mem_source(features.and_then(|f| f.str("memory_source"))),
        total_kb: percent
            .filter(|p| *p > 0.0)
            .map(|p| (used_kb as f64 * 100.0 / p).round() as u64),
        percent,
    }
}

/// One VM from its newest points.
pub fn vm(uuid: &str, v: &VmPoints) -> VmSnapshot {
    let any = v.metrics.or(v.features);
    let tag = |k: &str| any.and_then(|p| p.tag(k)).unwrap_or_default().to_string();
    let id = any.and_then(|p| p.tag("VMID")).and_then(|s| s.parse().ok());
    let m = v.metrics;
    let mut raw =
        crate::model::RawDomain::identity(uuid, id, &tag("name"), Instant::now(), v.newest());
    raw.state = state(v.state());
    raw.vcpus = m
        .and_then(|p| p.u64("cpu_count"))
        .and_then(|c| u32::try_from(c).ok());
    raw.max_mem_kib = m.and_then(|p| p.u64("memory_max_kb"));
    raw.cpu = m.and_then(|p| p.u64("cputime_ns")).map(|time_ns| CpuTimes {
        time_ns,
        user_ns: None,
        system_ns: None,
    });
    raw.tags = any
        .map(|p| {
            p.tags
                .iter()
                .filter(|(k, _)| !VM_IDENTITY_TAGS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let active = raw.state.has_guest_counters();
    VmSnapshot {
        memory: m
            .and_then(|p| p.u64("memory_used_kb"))
            .filter(|_| active)
            .map(|used| memory(used, v.features)),
        derived: v.features.filter(|_| active).map(derived),
        raw,
    }
}

/// The `Snapshot` of `host` from its points (`vm_metrics`, `vm_features` and, when
/// present, `hypervisor`): its current VMs sorted by name, taken at its newest point.
pub fn snapshot(host: &str, points: &[&Point], window: Duration, source: &str) -> Snapshot {
    let vms = current_vms(points, window);
    let mut snap = Snapshot::empty(source, host, Duration::from_secs(1));
    snap.vms = vms.iter().map(|(uuid, v)| vm(uuid, v)).collect();
    snap.vms
        .sort_by(|a, b| a.name().cmp(b.name()).then(a.uuid().cmp(b.uuid())));
    let newest = vms.values().map(VmPoints::newest).max();
    if let Some(ns) = newest.and_then(|n| u64::try_from(n).ok()) {
        snap.taken_at = SystemTime::UNIX_EPOCH + Duration::from_nanos(ns);
    }
    snap.host = points
        .iter()
        .filter(|p| p.measurement == "hypervisor")
        .max_by_key(|p| p.time_ns)
        .and_then(|h| {
            Some(HostInfo {
                cpus: u32::try_from(h.u64("cpus")?).ok()?,
                memory_total_kib: h.u64("memory_total_kb")?,
                memory_used_kib: h.u64("memory_used_kb"),
                // The hypervisor measurement does not carry it; the header shows a dash.
                libvirt_version: "—".into(),
                // Per-node and huge-page figures are separate measurements the
                // fleet does not query; the header leaves them out.
                numa_free_kib: Vec::new(),
                huge_pages: Vec::new(),
                read_at_ns: h.time_ns,
            })
        });
    snap.source = SourceState::Connected;
    snap.collector.vms_monitored = snap.vms.len();
    snap.origin = Origin::Local;
    snap
}

/// A host's past as snapshots, oldest first, one per second that has points:
/// what the live view's history needs (each running VM's rates and memory
/// percentage) from the `vm_features` points of `history_statement`.
pub fn past(host: &str, points: &[Point], source: &str) -> Vec<Snapshot> {
    let mut by_second: BTreeMap<i64, Vec<&Point>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.measurement == "vm_features") {
        by_second
            .entry(p.time_ns.div_euclid(1_000_000_000))
            .or_default()
            .push(p);
    }
    by_second
        .into_iter()
        .map(|(sec, ps)| {
            let mut snap = Snapshot::empty(source, host, Duration::from_secs(1));
            snap.taken_at = SystemTime::UNIX_EPOCH + Duration::from_secs(sec.max(0) as u64);
            let mut seen = BTreeMap::new();
            for p in ps {
                let Some(uuid) = p.tag("uuid") else { continue };
                let mut raw = crate::model::RawDomain::identity(
                    uuid,
                    None,
                    p.tag("name").unwrap_or_default(),
                    Instant::now(),
                    p.time_ns,
                );
                // Rates are written for active VMs only.
                raw.state = DomainState::Running;
                let vm = VmSnapshot {
                    // The history reads only the percentage; the used size is not queried.
                    memory: p.f64("memory_usage_percent").map(|_| memory(0, Some(p))),
                    derived: Some(derived(p)),
                    raw,
                };
                seen.insert(uuid.to_string(), vm);
            }
            snap.vms = seen.into_values().collect();
            snap
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::json::object;
    use crate::encode::line_protocol::EncodeCtx;
    use crate::fixtures;
    use crate::schema::{Measurement, METRICS};

    /// The points the writer would have stored for `v`: its `--format json` record
    /// split into the two measurements by the metric table.
    fn stored(v: &VmSnapshot) -> Vec<Point> {
        let ctx = EncodeCtx::new("hv-a", &BTreeMap::new());
        let rec: serde_json::Value = serde_json::from_str(&object(&ctx, v)).unwrap();
        let mut tags = BTreeMap::new();
        for t in VM_IDENTITY_TAGS {
            let v = rec[t]
                .as_str()
                .map_or_else(|| rec[t].to_string(), str::to_string);
            tags.insert(t.to_string(), v);
        }
        [Measurement::VmMetrics, Measurement::VmFeatures]
            .into_iter()
            .map(|m| Point {
                measurement: m.as_str().into(),
                tags: tags.clone(),
                time_ns: rec["timestamp_ns"].as_i64().unwrap(),
                fields: METRICS
                    .iter()
                    .filter(|x| x.measurement == m && !rec[x.name].is_null())
                    .map(|x| (x.name.to_string(), rec[x.name].clone()))
                    .collect(),
            })
            .filter(|p| !p.fields.is_empty())
            .collect()
    }

    #[test]
    fn the_json_record_survives_the_database() {
        let ctx = EncodeCtx::new("hv-a", &BTreeMap::new());
        for (name, state, rates) in [
            ("web", DomainState::Running, true),
            ("cold", DomainState::Running, false),
            ("off", DomainState::Shutoff, false),
            (fixtures::HOSTILE_NAMES[0], DomainState::Paused, true),
        ] {
            let mut v = fixtures::sampled(name, state, rates);
            // A rate that is not finite is never written: it reads back as none (0 B/s).
            if let Some(d) = v.derived.as_mut() {
                for t in [
                    &mut d.disk_read,
                    &mut d.disk_write,
                    &mut d.net_rx,
                    &mut d.net_tx,
                ] {
                    if !t.bytes_per_sec.is_finite() {
                        t.bytes_per_sec = 0.0;
                    }
                }
            }
            let points = stored(&v);
            let refs: Vec<&Point> = points.iter().collect();
            let snap = snapshot("hv-a", &refs, Duration::from_secs(30), "influxdb");
            assert_eq!(snap.vms.len(), 1, "{name}");
            assert_eq!(object(&ctx, &snap.vms[0]), object(&ctx, &v), "{name}");
        }
    }

    #[test]
    fn the_past_is_one_snapshot_per_second_that_feeds_the_history() {
        use crate::fleet::hosts::tests::{point, NOW_NS};
        use serde_json::json;
        let ps: Vec<Point> = (0..3)
            .flat_map(|i| {
                let ago = 3.0 - f64::from(i);
                [
                    point("vm_features", "hv-a", Some("1"), ago, json!({"cpu_usage_percent": 10.0 * f64::from(i + 1), "memory_usage_percent": 50.0})),
                    point("vm_features", "hv-a", Some("2"), ago, json!({"cpu_usage_percent": 1.0})),
                ]
            })
            .collect();
        let snaps = past("hv-a", &ps, "influxdb");
        assert_eq!(snaps.len(), 3);
        let mut h = crate::history::History::new(Duration::from_secs(300));
        for (i, s) in snaps.iter().enumerate() {
            let mut s = s.clone();
            s.collection = i as u64 + 1;
            h.ingest(&s);
        }
        let cpu: Vec<Option<f64>> = h.samples("1").unwrap().map(|s| s.cpu_percent).collect();
        assert_eq!(cpu, [Some(10.0), Some(20.0), Some(30.0)]);
        assert_eq!(
            h.samples("1").unwrap().next().unwrap().mem_percent,
            Some(50.0)
        );
        assert_eq!(h.samples("2").unwrap().len(), 3);
        assert!(snaps[2].taken_at < SystemTime::UNIX_EPOCH + Duration::from_nanos(NOW_NS as u64));
    }

    #[test]
    fn unknown_words_are_unknown_not_guessed() {
        assert_eq!(state(Some("shutoff")), DomainState::Shutoff);
        assert_eq!(state(Some("unknown")), DomainState::NoState);
        assert_eq!(mem_source(None), MemSource::Allocation);
    }
}
