//! The JSON shapes of the control API (pure: snapshot in, view out).
//!
//! Field names follow the system vmpulse replaces where it had them
//! (`running`, `started_at`, `total_collections`, `total_errors`,
//! `last_collection_time`, `vms_monitored`, `influx_queue_size`, `config`;
//! `count`/`vms` with `id`, `name`, `uuid`, `state`, `cpu_count`,
//! `memory_max`, `memory_used`, `cputime`); every other VM value takes its
//! schema name from the metric table (`crate::schema`). Times are RFC 3339 in UTC,
//! memory in KiB, CPU time in ns, rates per second. Unknown values are `null`.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub use super::health::HealthView;
use crate::config::Config;
use crate::history::Sample;
use crate::model::{
    AlertBoard, CollectorStats, Derived, DeviceRates, DomainJob, HostInfo, MemoryUse, RawDomain,
    Snapshot, SourceState, SpoolState, SpoolStats, VmSnapshot, WriterState, WriterStats,
};
use crate::schema::hypervisor::{
    HostFigures, HUGEPAGES_FREE_FIELD, HUGEPAGES_TOTAL_FIELD, HYPERVISOR_FIELDS, NUMA_FREE_FIELD,
};
use crate::schema::{Value, METRICS};

pub use crate::format::{parse_rfc3339, rfc3339};

/// The service process, for `pid` and uptime.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceInfo {
    pub pid: u32,
    pub started_at: SystemTime,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// Whether collection is on (`POST /start` / `POST /stop`).
    pub running: bool,
    pub pid: u32,
    pub version: String,
    /// When the service started.
    pub started_at: String,
    pub uptime_seconds: f64,
    pub total_collections: u64,
    pub total_errors: u64,
    pub skipped_items: u64,
    pub last_collection_time: Option<String>,
    pub last_collection_duration_ms: Option<f64>,
    pub last_error: Option<String>,
    pub vms_monitored: usize,
    /// Lines waiting for the writer.
    pub influx_queue_size: usize,
    /// Seconds.
    pub poll_interval: f64,
    pub libvirt: LibvirtView,
    pub writer: WriterView,
    /// The verdict `vmpulse status` exits by (`control::health`).
    #[serde(default)]
    pub health: HealthView,
    /// The effective configuration, secrets as `***`.
    pub config: serde_json::Value,
    /// Active alerts, worst first (as `GET /alerts`).
    #[serde(default)]
    pub alerts: Vec<AlertView>,
}

/// One active alert in `GET /alerts` and `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertView {
    pub vm: String,
    pub uuid: String,
    /// The metric table's name, or `monitor_stuck` / `state`.
    pub metric: String,
    /// `careful`, `warning` or `critical`.
    pub level: String,
    /// The latest value (for `state`, libvirt's state code).
    pub value: f64,
    /// The threshold of `level`.
    pub threshold: f64,
    /// When the condition began (RFC 3339).
    pub since: String,
}

/// `GET /alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

/// The active alerts of a snapshot, worst first.
pub fn alerts(snap: &Snapshot) -> Vec<AlertView> {
    snap.alerts
        .active
        .iter()
        .map(|a| AlertView {
            vm: a.vm.clone(),
            uuid: a.uuid.clone(),
            metric: a.metric.clone(),
            level: a.level.as_str().into(),
            value: a.value,
            threshold: a.threshold,
            since: rfc3339(a.since),
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibvirtView {
    pub uri: String,
    /// `connecting`, `connected` or `failed`.
    pub state: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriterView {
    /// `off`, `output`, `ok`, `retrying`, `auth_failed` or `failing`.
    pub state: String,
    /// Where lines go, without credentials (`null` when off).
    pub endpoint: Option<String>,
    pub lines_queued: u64,
    pub lines_written: u64,
    pub lines_dropped: u64,
    pub lines_rejected: u64,
    pub write_retries: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub requests_in_flight: usize,
    /// Requests the writer keeps in flight at most now (raised from
    /// `influx.max_in_flight` while acknowledgements are slow).
    #[serde(default)]
    pub requests_in_flight_limit: usize,
    /// Lines per batch now (raised from `influx.batch_max_lines` likewise).
    #[serde(default)]
    pub batch_lines_limit: usize,
    /// Live lines on the wire (replayed ones count in the spool's `lines`).
    #[serde(default)]
    pub lines_in_flight: usize,
    /// Lines found in the spool at start.
    #[serde(default)]
    pub lines_recovered: u64,
    /// `lines_queued + lines_recovered` minus written, rejected, dropped,
    /// spooled, queued and in flight: 0 when every line is accounted for.
    #[serde(default)]
    pub lines_unaccounted: i64,
    pub last_write_ok: Option<String>,
    pub last_error: Option<String>,
    /// When `last_error` happened; before `last_write_ok`: writes succeed since.
    #[serde(default)]
    pub last_error_at: Option<String>,
    /// The on-disk spool; `null` when the writer runs without one.
    pub spool: Option<SpoolView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolView {
    pub dir: String,
    /// `active`, `unavailable` or `off`.
    pub state: String,
    /// Why it is unavailable or off.
    pub reason: Option<String>,
    /// Bytes and lines waiting on disk (the spool depth).
    pub bytes: u64,
    pub lines: u64,
    pub oldest: Option<String>,
    pub lines_replayed: u64,
    pub segments_dropped: u64,
    pub corrupt_skipped: u64,
}

fn spool(s: &SpoolStats) -> SpoolView {
    let (state, reason) = match &s.state {
        SpoolState::Active => ("active", None),
        SpoolState::Unavailable { reason } => ("unavailable", Some(reason.clone())),
        SpoolState::Off { reason } => ("off", Some(reason.clone())),
    };
    SpoolView {
        dir: s.dir.clone(),
        state: state.into(),
        reason,
        bytes: s.bytes,
        lines: s.lines,
        oldest: s.oldest.map(rfc3339),
        lines_replayed: s.lines_replayed,
        segments_dropped: s.segments_dropped,
        corrupt_skipped: s.corrupt_skipped,
    }
}

/// What `vmpulse status` reports (LSB exit codes: 0 runs and collects, 1 not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Collecting,
    Stopped,
    Failing,
}

impl StatusView {
    pub fn health(&self) -> Health {
        match self.health.state.as_str() {
            _ if !self.running => Health::Stopped,
            "failing" => Health::Failing,
            _ => Health::Collecting,
        }
    }
}

pub fn writer_state_name(s: &WriterState) -> &'static str {
    match s {
        WriterState::Off { .. } => "off",
        WriterState::Output { .. } => "output",
        WriterState::Ok => "ok",
        WriterState::Retrying => "retrying",
        WriterState::AuthFailed => "auth_failed",
        WriterState::Failing => "failing",
    }
}

pub fn status(
    snap: &Snapshot,
    svc: ServiceInfo,
    config: &serde_json::Value,
    now: SystemTime,
    health: HealthView,
) -> StatusView {
    let c = &snap.collector;
    let w = &snap.writer;
    let (state, error) = match &snap.source {
        SourceState::Connecting => ("connecting", None),
        SourceState::Connected => ("connected", None),
        SourceState::Failed(m) => ("failed", Some(m.clone())),
    };
    StatusView {
        running: snap.collecting,
        pid: svc.pid,
        version: env!("CARGO_PKG_VERSION").into(),
        started_at: rfc3339(svc.started_at),
        uptime_seconds: now
            .duration_since(svc.started_at)
            .unwrap_or_default()
            .as_secs_f64(),
        total_collections: c.total_collections,
        total_errors: c.total_errors,
        skipped_items: c.skipped_items,
        last_collection_time: c.last_collection_time.map(rfc3339),
        last_collection_duration_ms: c.last_collection_ms,
        last_error: c.last_error.clone(),
        vms_monitored: c.vms_monitored,
        influx_queue_size: w.queue_depth,
        poll_interval: snap.poll_interval.as_secs_f64(),
        libvirt: LibvirtView {
            uri: snap.libvirt_uri.clone(),
            state: state.into(),
            error,
        },
        writer: WriterView {
            state: writer_state_name(&w.state).into(),
            endpoint: w.endpoint.clone(),
            lines_queued: w.lines_queued,
            lines_written: w.lines_written,
            lines_dropped: w.lines_dropped,
            lines_rejected: w.lines_rejected,
            write_retries: w.write_retries,
            queue_depth: w.queue_depth,
            queue_capacity: w.queue_capacity,
            requests_in_flight: w.requests_in_flight,
            requests_in_flight_limit: w.requests_in_flight_limit,
            batch_lines_limit: w.batch_lines_limit,
            lines_in_flight: w.lines_in_flight,
            lines_recovered: w.lines_recovered,
            lines_unaccounted: w.unaccounted(),
            last_write_ok: w.last_write_ok.map(rfc3339),
            last_error: w.last_error.clone(),
            last_error_at: w.last_error_at.map(rfc3339),
            spool: w.spool.as_ref().map(spool),
        },
        health,
        config: config.clone(),
        alerts: alerts(snap),
    }
}

/// One VM in `GET /vms`: its identity, then every per-VM value of
/// `vm_metrics` and `vm_features` from the metric table (`crate::schema`),
/// each under its schema name, or the older API's key where it had one
/// (`state`, `cpu_count`, `memory_max`, `memory_used`, `cputime`); `null` when unknown;
/// and `tags`, its metadata tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmView {
    /// libvirt's runtime id; `null` for inactive domains.
    pub id: Option<u32>,
    pub name: String,
    pub uuid: String,
    /// The VM's metadata tags (`collector.metadata_tags`), tag name to value; a
    /// tag the VM lacks is not there.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    #[serde(flatten)]
    pub values: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmList {
    pub count: usize,
    pub vms: Vec<VmView>,
}

/// `GET /vms/{uuid}`: the list entry plus per-device and per-vCPU rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmDetail {
    #[serde(flatten)]
    pub vm: VmView,
    pub disks: Vec<DiskView>,
    pub nics: Vec<NicView>,
    /// Per-vCPU utilisation, percent of one vCPU.
    pub vcpu_percent: Vec<f64>,
    /// Jobs in flight (and a job's final reading, the cycle it ended).
    #[serde(default)]
    pub jobs: Vec<JobView>,
}

/// One job under the `vm_jobs` schema names; `device` for a block job,
/// `error` for a failed job where libvirt says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub device: Option<String>,
    pub error: Option<String>,
    #[serde(flatten)]
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// One disk's rates, under the schema names of the VM's disk rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskView {
    pub name: String,
    pub disk_read_bytes_per_sec: f64,
    /// `null` when the disk does not report the counter.
    pub disk_read_req_per_sec: Option<f64>,
    pub disk_write_bytes_per_sec: f64,
    pub disk_write_req_per_sec: Option<f64>,
    /// This disk's average request latency over the interval, ms; `null` when
    /// no such request completed.
    #[serde(default)]
    pub disk_read_latency_ms: Option<f64>,
    #[serde(default)]
    pub disk_write_latency_ms: Option<f64>,
    #[serde(default)]
    pub disk_flush_latency_ms: Option<f64>,
}

/// One NIC's rates, under the schema names of the VM's network rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NicView {
    pub name: String,
    pub net_rx_bytes_per_sec: f64,
    /// `null` when the NIC does not report the counter.
    pub net_rx_packets_per_sec: Option<f64>,
    pub net_tx_bytes_per_sec: f64,
    pub net_tx_packets_per_sec: Option<f64>,
}

/// A metric value as JSON: integers too large for JSON's safe range and
/// non-finite floats are `null`, like the encoders leave them out.
fn json(v: Option<Value>) -> serde_json::Value {
    match v {
        Some(Value::Int(i)) => i64::try_from(i).map_or(serde_json::Value::Null, |i| i.into()),
        Some(Value::Signed(i)) => i.into(),
        Some(Value::Float(f)) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        }
        Some(Value::Str(s)) => s.into(),
        None => serde_json::Value::Null,
    }
}

/// `GET /host`: the host's capacity under the `hypervisor` field names, its
/// NUMA nodes and huge pages, and when they were read; `{"host": null}`
/// before the first reading or where the driver has no node info.
pub fn host(snap: &Snapshot) -> serde_json::Value {
    let Some(h) = snap.host.as_ref() else {
        return serde_json::json!({ "host": null });
    };
    let figures = HostFigures::of(h, &snap.vms);
    let mut o = serde_json::Map::new();
    o.insert("name".into(), snap.hostname.clone().into());
    o.insert("libvirt_version".into(), h.libvirt_version.clone().into());
    let read_at =
        SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(h.read_at_ns).unwrap_or(0));
    o.insert("read_at".into(), rfc3339(read_at).into());
    for f in HYPERVISOR_FIELDS {
        o.insert(f.name.into(), json((f.read)(&figures)));
    }
    let numa: Vec<_> = h
        .numa_free_kib
        .iter()
        .enumerate()
        .map(|(node, free)| serde_json::json!({ "node": node, NUMA_FREE_FIELD: free }))
        .collect();
    o.insert("numa".into(), numa.into());
    let pages: Vec<_> = h
        .huge_pages
        .iter()
        .map(|p| {
            serde_json::json!({
                "size_kb": p.size_kib,
                HUGEPAGES_TOTAL_FIELD: p.total,
                HUGEPAGES_FREE_FIELD: p.free,
            })
        })
        .collect();
    o.insert("hugepages".into(), pages.into());
    serde_json::json!({ "host": o })
}

pub fn vm(v: &VmSnapshot) -> VmView {
    let raw = &v.raw;
    VmView {
        id: raw.id,
        name: raw.name.clone(),
        uuid: raw.uuid.clone(),
        tags: raw.tags.iter().cloned().collect(),
        values: METRICS
            .iter()
            .filter(|m| m.in_vm_record())
            .map(|m| (m.api_name().to_string(), json(m.vm_value(v))))
            .collect(),
    }
}

pub fn vm_list(snap: &Snapshot) -> VmList {
    VmList {
        count: snap.vms.len(),
        vms: snap.vms.iter().map(vm).collect(),
    }
}

fn disk(r: &DeviceRates) -> DiskView {
    DiskView {
        name: r.name.clone(),
        disk_read_bytes_per_sec: r.read.bytes_per_sec,
        disk_read_req_per_sec: r.read.ops_per_sec,
        disk_write_bytes_per_sec: r.write.bytes_per_sec,
        disk_write_req_per_sec: r.write.ops_per_sec,
        disk_read_latency_ms: r.latency.read_ms,
        disk_write_latency_ms: r.latency.write_ms,
        disk_flush_latency_ms: r.latency.flush_ms,
    }
}

pub fn job(j: &DomainJob) -> JobView {
    JobView {
        device: j.disk.clone(),
        error: j.error.clone(),
        values: crate::schema::metrics::of(crate::schema::Measurement::VmJobs)
            .filter_map(|m| match m.read {
                crate::schema::Read::Job(read) => Some((m.name.to_string(), json(read(j)))),
                _ => None,
            })
            .collect(),
    }
}

fn nic(r: &DeviceRates) -> NicView {
    NicView {
        name: r.name.clone(),
        net_rx_bytes_per_sec: r.read.bytes_per_sec,
        net_rx_packets_per_sec: r.read.ops_per_sec,
        net_tx_bytes_per_sec: r.write.bytes_per_sec,
        net_tx_packets_per_sec: r.write.ops_per_sec,
    }
}

pub fn vm_detail(v: &VmSnapshot) -> VmDetail {
    let d = v.derived.as_ref();
    VmDetail {
        vm: vm(v),
        disks: d
            .map(|d| d.disks.iter().map(disk).collect())
            .unwrap_or_default(),
        nics: d
            .map(|d| d.nics.iter().map(nic).collect())
            .unwrap_or_default(),
        vcpu_percent: d.map(|d| d.vcpu_percent.clone()).unwrap_or_default(),
        jobs: v.raw.jobs.iter().map(job).collect(),
    }
}

/// One line of `GET /snapshots`: the snapshot's service state, and each VM as
/// `/vms/{uuid}` shows it (schema names) plus the readings the attached TUI
/// draws from, so an attached TUI rebuilds the very `Snapshot` the service holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotView {
    pub seq: u64,
    pub collection: u64,
    pub unreachable_since: Option<SystemTime>,
    pub host: Option<HostInfo>,
    pub taken_at: SystemTime,
    pub libvirt_uri: String,
    pub hostname: String,
    pub collecting: bool,
    pub poll_interval: Duration,
    pub source: SourceState,
    pub collector: CollectorStats,
    pub writer: WriterStats,
    /// Active and recent alerts.
    #[serde(default)]
    pub alerts: AlertBoard,
    pub vms: Vec<VmStreamView>,
}

/// A VM in `/snapshots`: its `/vms/{uuid}` view and the readings behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmStreamView {
    #[serde(flatten)]
    pub detail: VmDetail,
    pub raw: RawDomain,
    pub memory: Option<MemoryUse>,
    pub derived: Option<Derived>,
}

pub fn snapshot(s: &Snapshot) -> SnapshotView {
    SnapshotView {
        seq: s.seq,
        collection: s.collection,
        unreachable_since: s.unreachable_since,
        host: s.host.clone(),
        taken_at: s.taken_at,
        libvirt_uri: s.libvirt_uri.clone(),
        hostname: s.hostname.clone(),
        collecting: s.collecting,
        poll_interval: s.poll_interval,
        source: s.source.clone(),
        collector: s.collector.clone(),
        writer: s.writer.clone(),
        alerts: s.alerts.clone(),
        vms: s
            .vms
            .iter()
            .map(|v| VmStreamView {
                detail: vm_detail(v),
                raw: v.raw.clone(),
                memory: v.memory,
                derived: v.derived.clone(),
            })
            .collect(),
    }
}

impl SnapshotView {
    /// The snapshot the service published (its origin is the reader's to set).
    pub fn into_snapshot(self) -> Snapshot {
        Snapshot {
            seq: self.seq,
            collection: self.collection,
            unreachable_since: self.unreachable_since,
            host: self.host,
            taken_at: self.taken_at,
            libvirt_uri: self.libvirt_uri,
            hostname: self.hostname,
            collecting: self.collecting,
            poll_interval: self.poll_interval,
            source: self.source,
            vms: self
                .vms
                .into_iter()
                .map(|v| VmSnapshot {
                    raw: v.raw,
                    memory: v.memory,
                    derived: v.derived,
                })
                .collect(),
            collector: self.collector,
            writer: self.writer,
            alerts: self.alerts,
            origin: Default::default(),
        }
    }
}

/// `GET /history/{uuid}`: what the detail view's sparklines draw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryView {
    pub uuid: String,
    /// The window returned (the request's, at most what is kept).
    pub minutes: f64,
    pub samples: Vec<SampleView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleView {
    pub time: String,
    pub cpu_usage_percent: Option<f64>,
    pub memory_usage_percent: Option<f64>,
    pub disk_bytes_per_sec: Option<f64>,
    pub net_bytes_per_sec: Option<f64>,
    pub net_rx_bytes_per_sec: Option<f64>,
    pub net_tx_bytes_per_sec: Option<f64>,
}

/// The samples of the last `window` (oldest first), measured back from `now`.
pub fn history(
    uuid: &str,
    samples: impl Iterator<Item = Sample>,
    window: Duration,
    now: SystemTime,
) -> HistoryView {
    let cutoff = now.checked_sub(window);
    HistoryView {
        uuid: uuid.into(),
        minutes: window.as_secs_f64() / 60.0,
        samples: samples
            .filter(|s| cutoff.is_none_or(|c| s.at >= c))
            .map(|s| SampleView {
                time: rfc3339(s.at),
                cpu_usage_percent: tidy(s.cpu_percent),
                memory_usage_percent: tidy(s.mem_percent),
                disk_bytes_per_sec: tidy(s.disk_bps),
                net_bytes_per_sec: tidy(s.net_bps),
                net_rx_bytes_per_sec: tidy(s.rx_bps),
                net_tx_bytes_per_sec: tidy(s.tx_bps),
            })
            .collect(),
    }
}

/// A value the service's history kept as `f32` (7 significant digits) as the
/// shortest decimal that reads back as it: 12.3, not 12.300000190734863.
fn tidy(v: Option<f64>) -> Option<f64> {
    v.map(|v| (v as f32).to_string().parse().unwrap_or(v))
}

/// The effective config as JSON, in the config file's layout, secrets as `***`.
/// Built from the same text `--print-config` prints, so both mask alike.
pub fn config(config: &Config) -> serde_json::Value {
    let mut v = toml::from_str::<toml::Value>(&crate::config::docs::print_config(config))
        .ok()
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(obj) = v.as_object_mut() {
        let output = config.run.output.as_ref().map(|o| match o {
            crate::config::OutputTarget::Stdout => "-".to_string(),
            crate::config::OutputTarget::File(p) => p.display().to_string(),
        });
        obj.insert("output".into(), serde_json::json!(output));
        // The path in use, also when it is the computed default.
        if let Some(c) = obj.get_mut("control").and_then(|c| c.as_object_mut()) {
            let path = super::socket_path(&config.control).display().to_string();
            c.insert("socket".into(), serde_json::json!(path));
        }
    }
    v
}

/// The served config with what changed at run time: `PUT /poll-interval`
/// sets the interval in force, which `/config` and `/status` must show.
pub fn live_config(config: &serde_json::Value, snap: &Snapshot) -> serde_json::Value {
    let mut v = config.clone();
    if let Some(c) = v.get_mut("collector").and_then(|c| c.as_object_mut()) {
        c.insert(
            "poll_interval".into(),
            serde_json::json!(snap.poll_interval.as_secs_f64()),
        );
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_serves_the_window_asked_for_with_values_as_kept() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let sample = |secs: u64, cpu: Option<f64>| Sample {
            at: t0 + Duration::from_secs(secs),
            cpu_percent: cpu,
            steal_percent: None,
            mem_percent: None,
            disk_bps: Some(0.1),
            net_bps: None,
            rx_bps: None,
            tx_bps: None,
            disk_latency_ms: None,
        };
        let samples = [
            sample(0, Some(1.0)),
            sample(50, None),
            sample(100, Some(12.3)),
        ];
        let now = t0 + Duration::from_secs(100);
        let v = history("u", samples.into_iter(), Duration::from_secs(60), now);
        assert_eq!(v.minutes, 1.0);
        assert_eq!(v.samples.len(), 2);
        assert_eq!(v.samples[0].cpu_usage_percent, None);
        assert_eq!(v.samples[1].disk_bytes_per_sec, Some(0.1));
        // A percentage kept as f32, served as the decimal it was: 12.3, not
        // 12.300000190734863.
        let kept = f64::from(12.3f32);
        assert_ne!(kept, 12.3);
        let v = history(
            "u",
            [sample(0, Some(kept))].into_iter(),
            Duration::from_secs(60),
            t0,
        );
        assert_eq!(v.samples[0].cpu_usage_percent, Some(12.3));
    }

    #[test]
    fn vm_detail_lists_jobs_under_vm_jobs_names() {
        let mut v = crate::fixtures::vm(crate::fixtures::raw("web", "u-1"));
        v.raw.jobs = vec![
            crate::fixtures::dump_job(),
            crate::fixtures::copy_job("vda"),
        ];
        let d = serde_json::to_value(vm_detail(&v)).unwrap();
        let jobs = d["jobs"].as_array().expect("jobs");
        assert_eq!(jobs[0]["type"], "unbounded");
        assert_eq!(jobs[0]["operation"], "dump");
        assert_eq!(jobs[0]["elapsed_ms"], 5200);
        assert_eq!(jobs[0]["device"], serde_json::Value::Null);
        assert!((jobs[0]["progress_percent"].as_f64().unwrap() - 43.0).abs() < 0.01);
        assert_eq!(jobs[1]["device"], "vda");
        assert_eq!(jobs[1]["operation"], "block_copy");
        // Round trip (the attached TUI reads it back).
        let back: VmDetail = serde_json::from_value(d).unwrap();
        assert_eq!(back.jobs.len(), 2);
    }

    #[test]
    fn times_round_trip_in_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_762_864_496_789);
        assert_eq!(rfc3339(t), "2025-11-11T12:34:56.789Z");
        assert_eq!(parse_rfc3339("2025-11-11T12:34:56.789Z"), Some(t));
        let whole = SystemTime::UNIX_EPOCH + Duration::from_secs(1_762_864_496);
        assert_eq!(rfc3339(whole), "2025-11-11T12:34:56.000Z");
    }

    #[test]
    fn vm_view_keeps_the_old_keys_and_names_the_rest_by_schema() {
        use crate::fixtures::sampled as fixture;
        use crate::model::DomainState;
        let mut web = fixture("web", DomainState::Running, true);
        web.raw.tags = vec![("project".into(), "shop".into())];
        let v = serde_json::to_value(vm(&web)).unwrap();
        assert_eq!(v["tags"], serde_json::json!({"project": "shop"}));
        assert_eq!(v["memory_used"], 500_000);
        assert_eq!(v["cputime"], 5_000_000_000u64);
        assert_eq!(v["memory_max"], 2_097_152);
        assert_eq!(v["cpu_count"], 2);
        assert_eq!(v["state"], "running");
        assert_eq!(v["cpu_usage_percent"], 12.5);
        assert_eq!(v["memory_usage_percent"], 25.0);
        assert_eq!(v["disk_read_req_per_sec"], 2.0);
        assert!(v["cpu_steal_percent"].is_null());
        for old in [
            "cpu_percent",
            "memory_percent",
            "disk_read_ops_per_sec",
            "memory_max_kb",
        ] {
            assert!(v.get(old).is_none(), "{old} still in /vms: {v}");
        }
        // Every other key is a schema name of the metric table.
        let legacy = [
            "id",
            "name",
            "uuid",
            "tags",
            "state",
            "cpu_count",
            "memory_max",
            "memory_used",
            "cputime",
        ];
        for k in v.as_object().unwrap().keys() {
            assert!(
                legacy.contains(&k.as_str()) || crate::schema::FIELD_KEYS.contains(&k.as_str()),
                "{k} is neither an old API key nor a schema name"
            );
        }
        let off = serde_json::to_value(vm(&fixture("off", DomainState::Shutoff, true))).unwrap();
        assert!(off["memory_used"].is_null() && off["cpu_usage_percent"].is_null());
        assert_eq!(off["state"], "shutoff");
    }

    #[test]
    fn snapshots_stream_views_and_the_attached_tui_gets_the_snapshot_back() {
        use crate::fixtures::sampled as fixture;
        use crate::model::DomainState;
        let mut s = Snapshot::empty("test:///default", "hv1", Duration::from_secs(2));
        s.seq = 9;
        *s.vms = vec![
            fixture("web", DomainState::Running, true),
            fixture("off", DomainState::Shutoff, false),
        ];
        // JSON has no NaN (the fixture's one stands for a value never derived).
        if let Some(d) = s.vms[0].derived.as_mut() {
            d.net_tx.bytes_per_sec = 3.0;
            d.net_tx.ops_per_sec = Some(1.5);
        }
        let text = serde_json::to_string(&snapshot(&s)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The same keys as /vms/{uuid}: schema names next to the old API keys.
        assert_eq!(v["vms"][0]["cpu_usage_percent"], 12.5);
        assert_eq!(v["vms"][0]["memory_used"], 500_000);
        assert!(v["vms"][0].get("cpu_percent").is_none());
        let back: SnapshotView = serde_json::from_str(&text).unwrap();
        let mut back = back.into_snapshot();
        // The monotonic instant is local to a process (not sent).
        for (b, o) in back.vms.iter_mut().zip(&s.vms) {
            b.raw.mono = o.raw.mono;
        }
        assert_eq!(back, s);
    }

    #[test]
    fn host_view_names_fields_by_the_hypervisor_table() {
        let mut snap = Snapshot::empty("test:///default", "hv1", Duration::from_secs(1));
        assert_eq!(host(&snap), serde_json::json!({ "host": null }));
        snap.host = Some(crate::fixtures::host());
        let v = host(&snap);
        let h = &v["host"];
        assert_eq!(h["cpus"], 16);
        assert_eq!(h["memory_used_percent"], 23.0 / 64.0 * 100.0);
        assert_eq!(h["vcpus_assigned"], 0);
        assert_eq!(h["steal_percent_max"], serde_json::Value::Null);
        assert_eq!(h["numa"][1]["node"], 1);
        assert_eq!(h["hugepages"][0]["size_kb"], 2048);
        assert_eq!(h["hugepages"][0]["pages_free"], 512);
        assert_eq!(h["read_at"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn config_view_masks_every_secret() {
        let mut c = Config::default();
        c.influx.url = Some(url::Url::parse("http://u:pw-XYZ@127.0.0.1:8086").unwrap());
        c.influx.token = Some(crate::config::Secret::new("tok-XYZ"));
        c.control.token = Some(crate::config::Secret::new("ctl-XYZ"));
        c.fleet.hosts = vec![crate::config::fleet_hosts::FleetHost {
            name: "hv-a".into(),
            url: "http://10.0.0.5:9180".into(),
            token: Some(crate::config::Secret::new("fleet-XYZ")),
            token_file: None,
        }];
        let v = config(&c);
        let text = v.to_string();
        assert!(!text.contains("XYZ"), "{text}");
        assert_eq!(v["influx"]["token"], "***");
        assert_eq!(v["control"]["token"], "***");
        assert_eq!(v["fleet"]["hosts"][0]["token"], "***");
        assert_eq!(v["fleet"]["hosts"][0]["name"], "hv-a");
        assert_eq!(v["collector"]["poll_interval"], 1.0);
    }
}
