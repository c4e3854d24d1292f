//! The host list (pure): every host's newest points turned into one row, sorted
//! worst first. A host whose newest point is older than `fleet.window` stays
//! listed, stale, with its age. The VMs of a host are those whose newest point is
//! within the window of the host's newest (a VM deleted an hour ago is not counted).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::answer::Point;

/// Tags every VM line carries; the others are the VMs' own (metadata, static).
pub const VM_IDENTITY_TAGS: [&str; 4] = ["host", "VMID", "name", "uuid"];

/// Active alerts of a host by level (`vm_alerts`; all 0 where none were written).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Alerts {
    pub careful: u32,
    pub warning: u32,
    pub critical: u32,
}

impl Alerts {
    pub fn total(&self) -> u32 {
        self.careful + self.warning + self.critical
    }
    fn rank(&self) -> (u32, u32, u32) {
        (self.critical, self.warning, self.careful)
    }
}

/// The service's own health, from its newest `vmpulse_internal` point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    pub age_seconds: f64,
    pub queue_depth: Option<u64>,
    pub lines_dropped: Option<u64>,
    pub lines_written: Option<u64>,
}

/// One host of the fleet.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostRow {
    pub host: String,
    /// Seconds since the host's newest point of any measurement.
    pub age_seconds: f64,
    pub stale: bool,
    pub vms_running: usize,
    pub vms_total: usize,
    /// The VMs' CPU in host cores (`hypervisor.vms_cpu_cores`, else the sum of
    /// each running VM's `cpu_usage_percent × cpu_count / 100`).
    pub cpu_cores_used: Option<f64>,
    /// Of the host's CPUs, where the `hypervisor` measurement says how many.
    pub cpu_percent_of_host: Option<f64>,
    pub cpus: Option<u64>,
    pub steal_worst_percent: Option<f64>,
    /// The VMs' `memory_used_kb` summed.
    pub memory_used_kb: Option<u64>,
    /// `hypervisor.memory_assigned_kb`, else the active VMs' `memory_max_kb` summed.
    pub memory_assigned_kb: Option<u64>,
    pub memory_total_kb: Option<u64>,
    pub disk_bytes_per_sec: f64,
    pub net_bytes_per_sec: f64,
    pub alerts: Alerts,
    pub service: Option<Service>,
    /// `key=value` of the VMs' other tags, for the filter.
    #[serde(skip)]
    pub vm_tags: BTreeSet<String>,
}

/// The newest `vm_metrics` and `vm_features` point of one VM.
#[derive(Debug, Default, Clone, Copy)]
pub struct VmPoints<'a> {
    pub metrics: Option<&'a Point>,
    pub features: Option<&'a Point>,
}

impl<'a> VmPoints<'a> {
    pub fn newest(&self) -> i64 {
        [self.metrics, self.features]
            .iter()
            .flatten()
            .map(|p| p.time_ns)
            .max()
            .unwrap_or(i64::MIN)
    }
    pub fn state(&self) -> Option<&'a str> {
        self.metrics.and_then(|p| p.str("state"))
    }
    fn running(&self) -> bool {
        matches!(self.state(), Some("running" | "blocked"))
    }
    fn active(&self) -> bool {
        matches!(
            self.state(),
            Some("running" | "blocked" | "paused" | "pmsuspended")
        )
    }
    fn f64(&self, key: &str) -> Option<f64> {
        self.features.and_then(|p| p.f64(key))
    }
}

fn newer<'a>(slot: &mut Option<&'a Point>, p: &'a Point) {
    if slot.is_none_or(|old| old.time_ns < p.time_ns) {
        *slot = Some(p);
    }
}

/// Every host's points, by the `host` tag.
pub fn by_host<'a>(
    points: impl IntoIterator<Item = &'a Point>,
) -> BTreeMap<&'a str, Vec<&'a Point>> {
    let mut out: BTreeMap<&str, Vec<&Point>> = BTreeMap::new();
    for p in points {
        if let Some(h) = p.tag("host") {
            out.entry(h).or_default().push(p);
        }
    }
    out
}

/// A host's current VMs by UUID: those whose newest point is within `window` of
/// the host's newest VM point.
pub fn current_vms<'a>(points: &[&'a Point], window: Duration) -> BTreeMap<&'a str, VmPoints<'a>> {
    let mut vms: BTreeMap<&str, VmPoints> = BTreeMap::new();
    for p in points {
        let Some(uuid) = p.tag("uuid") else { continue };
        let slot = vms.entry(uuid).or_default();
        match p.measurement.as_str() {
            "vm_metrics" => newer(&mut slot.metrics, p),
            "vm_features" => newer(&mut slot.features, p),
            _ => {}
        }
    }
    vms.retain(|_, v| v.metrics.is_some() || v.features.is_some());
    let newest = vms.values().map(VmPoints::newest).max().unwrap_or(i64::MIN);
    let window_ns = i64::try_from(window.as_nanos()).unwrap_or(i64::MAX);
    vms.retain(|_, v| v.newest() >= newest.saturating_sub(window_ns));
    vms
}

fn newest_of<'a>(points: &[&'a Point], measurement: &str) -> Option<&'a Point> {
    let mut out = None;
    for p in points.iter().filter(|p| p.measurement == measurement) {
        newer(&mut out, p);
    }
    out
}

fn age(now: SystemTime, time_ns: i64) -> f64 {
    let now_ns = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos() as f64)
        .unwrap_or(0.0);
    ((now_ns - time_ns as f64) / 1e9).max(0.0)
}

fn some_sum<T: std::iter::Sum<T>>(items: impl Iterator<Item = Option<T>>) -> Option<T> {
    let known: Vec<T> = items.flatten().collect();
    (!known.is_empty()).then(|| known.into_iter().sum())
}

fn max_f64(items: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    items
        .flatten()
        .fold(None, |m, v| Some(m.map_or(v, |m: f64| m.max(v))))
}

/// Active alerts of the host's current VMs, by level; an alert's newest point says
/// whether it is still active.
fn alerts(points: &[&Point], vms: &BTreeMap<&str, VmPoints>) -> Alerts {
    let mut a = Alerts::default();
    for p in points.iter().filter(|p| p.measurement == "vm_alerts") {
        let current = p.tag("uuid").is_none_or(|u| vms.contains_key(u));
        if !current || p.bool("active") == Some(false) {
            continue;
        }
        match p.str("level") {
            Some("careful") => a.careful += 1,
            Some("warning") => a.warning += 1,
            Some("critical") => a.critical += 1,
            _ => {}
        }
    }
    a
}

/// One host's row from its points.
pub fn host_row(host: &str, points: &[&Point], now: SystemTime, window: Duration) -> HostRow {
    let vms = current_vms(points, window);
    let hyp = newest_of(points, "hypervisor");
    let internal = newest_of(points, "vmpulse_internal");
    let newest = points
        .iter()
        .filter(|p| p.measurement != "vm_alerts")
        .map(|p| p.time_ns)
        .max()
        .unwrap_or(i64::MIN);
    let age_seconds = age(now, newest);
    let running = || vms.values().filter(|v| v.running());
    let cores = some_sum(running().map(|v| {
        let vcpus = v.metrics.and_then(|p| p.f64("cpu_count"))?;
        Some(v.f64("cpu_usage_percent")? * vcpus / 100.0)
    }));
    let cpus = hyp.and_then(|h| h.u64("cpus"));
    let cpu_cores_used = hyp.and_then(|h| h.f64("vms_cpu_cores")).or(cores);
    let cpu_percent_of_host = hyp.and_then(|h| h.f64("vms_cpu_percent")).or_else(|| {
        let cpus = cpus.filter(|c| *c > 0)? as f64;
        Some(100.0 * cpu_cores_used? / cpus)
    });
    let steal = max_f64(vms.values().map(|v| v.f64("cpu_steal_percent")));
    let steal_worst_percent =
        max_f64([steal, hyp.and_then(|h| h.f64("steal_percent_max"))].into_iter());
    let active = || vms.values().filter(|v| v.active());
    let sum_f = |keys: [&str; 2]| {
        vms.values()
            .flat_map(|v| keys.iter().filter_map(|k| v.f64(k)))
            // From +0.0: an empty f64 sum is -0.0.
            .fold(0.0, |a, x| a + x)
    };
    let vm_tags = points
        .iter()
        .filter(|p| p.measurement.starts_with("vm_"))
        .flat_map(|p| p.tags.iter())
        .filter(|(k, _)| !VM_IDENTITY_TAGS.contains(&k.as_str()) && k.as_str() != "metric")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    HostRow {
        host: host.to_string(),
        age_seconds,
        stale: age_seconds > window.as_secs_f64(),
        vms_running: running().count(),
        vms_total: vms.len(),
        cpu_cores_used,
        cpu_percent_of_host,
        cpus,
        steal_worst_percent,
        memory_used_kb: some_sum(active().map(|v| v.metrics.and_then(|p| p.u64("memory_used_kb")))),
        memory_assigned_kb: hyp
            .and_then(|h| h.u64("memory_assigned_kb"))
            .or_else(|| some_sum(active().map(|v| v.metrics.and_then(|p| p.u64("memory_max_kb"))))),
        memory_total_kb: hyp.and_then(|h| h.u64("memory_total_kb")),
        disk_bytes_per_sec: sum_f(["disk_read_bytes_per_sec", "disk_write_bytes_per_sec"]),
        net_bytes_per_sec: sum_f(["net_rx_bytes_per_sec", "net_tx_bytes_per_sec"]),
        alerts: alerts(points, &vms),
        service: internal.map(|p| Service {
            age_seconds: age(now, p.time_ns),
            queue_depth: p.u64("queue_depth"),
            lines_dropped: p.u64("lines_dropped"),
            lines_written: p.u64("lines_written"),
        }),
        vm_tags,
    }
}

/// Every host's row, worst first.
pub fn host_rows<'a>(
    points: impl IntoIterator<Item = &'a Point>,
    now: SystemTime,
    window: Duration,
) -> Vec<HostRow> {
    let mut rows: Vec<HostRow> = by_host(points)
        .iter()
        .map(|(h, ps)| host_row(h, ps, now, window))
        .collect();
    rows.sort_by(|a, b| SortKey::Worst.compare(a, b));
    rows
}

/// The orders of the host list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Alerts (critical, warning, careful), then stale, then the worst steal.
    #[default]
    Worst,
    Name,
    Cpu,
    Memory,
    Vms,
    Age,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            Self::Worst => "worst first",
            Self::Name => "name",
            Self::Cpu => "CPU",
            Self::Memory => "memory",
            Self::Vms => "VMs",
            Self::Age => "age",
        }
    }

    /// `a` before `b`: the larger value first, the name breaking ties.
    pub fn compare(self, a: &HostRow, b: &HostRow) -> Ordering {
        let f = |v: Option<f64>| v.unwrap_or(-1.0);
        let by = match self {
            Self::Worst => b
                .alerts
                .rank()
                .cmp(&a.alerts.rank())
                .then(b.stale.cmp(&a.stale))
                .then(f(b.steal_worst_percent).total_cmp(&f(a.steal_worst_percent))),
            Self::Name => Ordering::Equal,
            Self::Cpu => f(b.cpu_cores_used).total_cmp(&f(a.cpu_cores_used)),
            Self::Memory => b.memory_used_kb.cmp(&a.memory_used_kb),
            Self::Vms => b.vms_total.cmp(&a.vms_total),
            Self::Age => b.age_seconds.total_cmp(&a.age_seconds),
        };
        by.then_with(|| a.host.cmp(&b.host))
    }
}

/// Whether the row matches the `/` filter: a part of its name or of a VM tag
/// (`key=value`), case-insensitive; an empty filter matches every row.
pub fn matches(row: &HostRow, filter: &str) -> bool {
    let f = filter.trim().to_lowercase();
    f.is_empty()
        || row.host.to_lowercase().contains(&f)
        || row.vm_tags.iter().any(|t| t.to_lowercase().contains(&f))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub const NOW_NS: i64 = 1_800_000_000_000_000_000;

    pub fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_nanos(NOW_NS as u64)
    }

    /// A point of `host` (and VM `uuid`, when given) `ago` seconds before [`NOW_NS`].
    pub fn point(
        m: &str,
        host: &str,
        uuid: Option<&str>,
        ago: f64,
        fields: serde_json::Value,
    ) -> Point {
        let mut tags = BTreeMap::from([("host".to_string(), host.to_string())]);
        if let Some(u) = uuid {
            tags.insert("uuid".into(), u.into());
            tags.insert("name".into(), format!("vm-{u}"));
            tags.insert("VMID".into(), "1".into());
        }
        let fields = fields
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Point {
            measurement: m.into(),
            tags,
            time_ns: NOW_NS - (ago * 1e9) as i64,
            fields,
        }
    }

    pub fn vm(host: &str, uuid: &str, ago: f64, state: &str, cpu: f64, steal: f64) -> [Point; 2] {
        [
            point(
                "vm_metrics",
                host,
                Some(uuid),
                ago,
                json!({"state": state, "cpu_count": 2, "memory_max_kb": 1_048_576, "memory_used_kb": 524_288}),
            ),
            point(
                "vm_features",
                host,
                Some(uuid),
                ago,
                json!({"cpu_usage_percent": cpu, "cpu_steal_percent": steal,
                       "disk_read_bytes_per_sec": 1000.0, "net_tx_bytes_per_sec": 10.0}),
            ),
        ]
    }

    const W: Duration = Duration::from_secs(30);

    #[test]
    fn a_host_without_hypervisor_points_sums_its_vms() {
        let mut ps: Vec<Point> = Vec::new();
        ps.extend(vm("hv-a", "1", 1.0, "running", 50.0, 2.0));
        ps.extend(vm("hv-a", "2", 1.5, "running", 25.0, 7.5));
        ps.push(point(
            "vm_metrics",
            "hv-a",
            Some("3"),
            1.0,
            json!({"state": "shutoff", "cpu_count": 1}),
        ));
        // Deleted an hour ago: not one of the host's VMs any more.
        ps.extend(vm("hv-a", "4", 3600.0, "running", 99.0, 99.0));
        let rows = host_rows(&ps, now(), W);
        let r = &rows[0];
        assert_eq!((r.vms_running, r.vms_total, r.stale), (2, 3, false));
        assert!((r.age_seconds - 1.0).abs() < 1e-6);
        assert_eq!(r.cpu_cores_used, Some(1.5));
        assert_eq!(
            r.cpu_percent_of_host, None,
            "no hypervisor point: host CPUs unknown"
        );
        assert_eq!(r.steal_worst_percent, Some(7.5));
        assert_eq!(r.memory_used_kb, Some(1_048_576));
        assert_eq!(r.memory_assigned_kb, Some(2_097_152));
        assert_eq!(r.disk_bytes_per_sec, 2000.0);
        assert_eq!(r.alerts, Alerts::default());
        assert_eq!(r.service, None);
    }

    #[test]
    fn hypervisor_alerts_and_internal_points_are_used_when_present() {
        let mut ps: Vec<Point> = vm("hv-b", "1", 2.0, "running", 50.0, 1.0).into();
        ps.push(point(
            "hypervisor",
            "hv-b",
            None,
            2.0,
            json!({
            "cpus": 16, "memory_total_kb": 64_000_000, "vms_cpu_cores": 4.0,
            "vms_cpu_percent": 25.0, "steal_percent_max": 12.0, "memory_assigned_kb": 8_000_000}),
        ));
        ps.push(point(
            "vm_alerts",
            "hv-b",
            Some("1"),
            600.0,
            json!({"level": "critical", "active": true}),
        ));
        ps.push(point(
            "vm_alerts",
            "hv-b",
            Some("1"),
            100.0,
            json!({"level": "ok", "active": false}),
        ));
        ps.push(point(
            "vm_alerts",
            "hv-b",
            Some("1"),
            5.0,
            json!({"level": "warning", "active": true}),
        ));
        ps.push(point(
            "vmpulse_internal",
            "hv-b",
            None,
            10.0,
            json!({"queue_depth": 3, "lines_dropped": 0}),
        ));
        let r = &host_rows(&ps, now(), W)[0];
        assert_eq!(r.cpu_cores_used, Some(4.0));
        assert_eq!(r.cpu_percent_of_host, Some(25.0));
        assert_eq!(r.steal_worst_percent, Some(12.0));
        assert_eq!(r.memory_assigned_kb, Some(8_000_000));
        // Each point stands for its own series here; the critical one counts too.
        assert_eq!(
            r.alerts,
            Alerts {
                careful: 0,
                warning: 1,
                critical: 1
            }
        );
        assert_eq!(r.service.as_ref().and_then(|s| s.queue_depth), Some(3));
    }

    #[test]
    fn stale_hosts_stay_with_their_age_and_the_worst_comes_first() {
        let mut ps: Vec<Point> = Vec::new();
        ps.extend(vm("calm", "1", 1.0, "running", 10.0, 0.0));
        ps.extend(vm("gone", "2", 95.0, "running", 10.0, 0.0));
        ps.extend(vm("steal", "3", 1.0, "running", 10.0, 30.0));
        ps.extend(vm("alarm", "4", 1.0, "running", 10.0, 0.0));
        ps.push(point(
            "vm_alerts",
            "alarm",
            Some("4"),
            1.0,
            json!({"level": "careful", "active": true}),
        ));
        let rows = host_rows(&ps, now(), W);
        let names: Vec<&str> = rows.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(names, ["alarm", "gone", "steal", "calm"]);
        assert!(rows[1].stale && (rows[1].age_seconds - 95.0).abs() < 1e-6);
        let mut by_name = rows.clone();
        by_name.sort_by(|a, b| SortKey::Name.compare(a, b));
        assert_eq!(by_name[0].host, "alarm");
    }

    #[test]
    fn the_filter_reads_host_names_and_vm_tags() {
        let mut ps: Vec<Point> = vm("hv-a", "1", 1.0, "running", 1.0, 0.0).into();
        ps[0].tags.insert("project".into(), "Shop".into());
        let r = &host_rows(&ps, now(), W)[0];
        assert!(matches(r, "") && matches(r, "HV-") && matches(r, "project=shop"));
        assert!(!matches(r, "hv-b") && !matches(r, "vm-1"));
    }

    #[test]
    fn a_host_with_only_some_columns_still_has_a_row() {
        let ps = [point(
            "vm_metrics",
            "tiny",
            Some("1"),
            1.0,
            json!({"state": "running"}),
        )];
        let r = &host_rows(&ps, now(), W)[0];
        assert_eq!((r.vms_running, r.vms_total), (1, 1));
        assert_eq!(
            (r.cpu_cores_used, r.memory_used_kb, r.steal_worst_percent),
            (None, None, None)
        );
    }
}
