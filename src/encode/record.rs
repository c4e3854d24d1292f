//! One VM in one collection as a flat record: the columns of `--format json|csv`.
//!
//! Column names are the schema names of the metric table (`crate::schema`),
//! the per-VM values of `vm_metrics` and `vm_features`, after the identifying columns. Unknown values are
//! [`Value::Null`] (JSON `null`, an empty CSV cell), never 0, following the
//! same rules as the line-protocol encoder: an inactive domain has its state,
//! vCPUs and maximum memory only, and rates appear from its second sample.

use std::sync::LazyLock;

use crate::encode::line_protocol::EncodeCtx;
use crate::model::VmSnapshot;
use crate::schema::{self, Metric, METRICS};

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
}

impl Value {
    fn int(v: Option<u64>) -> Self {
        v.and_then(|v| i64::try_from(v).ok())
            .map_or(Self::Null, Self::Int)
    }

    /// A metric's value by the encoder's rules: too large or not finite is null.
    fn of(v: Option<schema::Value>) -> Self {
        match v {
            None => Self::Null,
            Some(schema::Value::Int(i)) => Self::int(Some(i)),
            Some(schema::Value::Signed(i)) => Self::Int(i),
            Some(schema::Value::Float(f)) if f.is_finite() => Self::Float(f),
            Some(schema::Value::Float(_)) => Self::Null,
            Some(schema::Value::Str(s)) => Self::Str(s.to_string()),
        }
    }
}

/// The identifying columns; the metric columns follow from the metric table.
pub const IDENTITY: [&str; 6] = ["time", "timestamp_ns", "host", "VMID", "name", "uuid"];

/// Every column, in order: [`IDENTITY`], then each per-VM metric of
/// `vm_metrics` and `vm_features` in the metric table's order.
pub static COLUMNS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let metrics = record_metrics().map(|m| m.name);
    IDENTITY.iter().copied().chain(metrics).collect()
});

fn record_metrics() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(|m| m.in_vm_record())
}

/// Column names with the static tag keys inserted after `host`.
pub fn header(ctx: &EncodeCtx) -> Vec<String> {
    let mut cols: Vec<String> = COLUMNS[..3].iter().map(|c| c.to_string()).collect();
    cols.extend(ctx.tags().iter().map(|(k, _)| k.clone()));
    cols.extend(COLUMNS[3..].iter().map(|c| c.to_string()));
    cols
}

/// The cells of one VM, in the order of [`header`].
pub fn cells(ctx: &EncodeCtx, vm: &VmSnapshot) -> Vec<Value> {
    let raw = &vm.raw;
    let mut v = vec![
        Value::Str(rfc3339_utc(raw.wall_ns)),
        Value::Int(raw.wall_ns),
        Value::Str(ctx.host().to_string()),
    ];
    v.extend(ctx.tags().iter().map(|(_, t)| Value::Str(t.clone())));
    v.extend([
        Value::int(raw.id.map(u64::from)),
        Value::Str(raw.name.clone()),
        Value::Str(raw.uuid.clone()),
    ]);
    v.extend(record_metrics().map(|m| Value::of(m.vm_value(vm))));
    v
}

/// Line timestamps as JSON/CSV write them (`2023-11-13T09:40:00.000Z`).
pub use crate::format::rfc3339_ns as rfc3339_utc;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::*;
    use std::collections::BTreeMap;
    use std::time::Instant;

    pub(crate) fn vm(name: &str, state: DomainState, derived: bool) -> VmSnapshot {
        let raw = RawDomain {
            uuid: "550e8400-e29b-41d4-a716-446655440000".into(),
            id: state.has_guest_counters().then_some(7),
            name: name.into(),
            state,
            state_reason: 1,
            vcpus: Some(2),
            max_mem_kib: Some(2_097_152),
            cur_mem_kib: Some(2_097_152),
            cpu: Some(CpuTimes {
                time_ns: 5_000_000_000,
                user_ns: None,
                system_ns: None,
            }),
            balloon: BalloonStats::default(),
            vcpu_times_ns: vec![],
            vcpu_delays_ns: vec![],
            monitor_stuck: None,
            nics: vec![],
            disks: vec![],
            mono: Instant::now(),
            wall_ns: 1_699_868_400_123_456_789,
        };
        let t = |b: f64| Throughput {
            bytes_per_sec: b,
            ops_per_sec: Some(b / 1024.0),
        };
        VmSnapshot {
            raw,
            memory: Some(MemoryUse {
                used_kb: 500_000,
                source: MemSource::AvailableMinusUsable,
                percent: Some(25.0),
                total_kb: Some(2_000_000),
            }),
            derived: derived.then(|| Derived {
                dt_secs: 1.0,
                cpu_percent: Some(12.5),
                cpu_split: CpuSplit {
                    guest: Some(11.0),
                    overhead: Some(1.5),
                    steal: None,
                },
                cpu_angle_deg: None,
                memory_percent_angle_deg: Some(-45.0),
                memory_rate_kb_per_sec: 1024.0,
                memory_angle_deg: 89.9,
                disk_read: t(2048.0),
                disk_write: t(0.0),
                net_rx: t(100.5),
                net_tx: t(f64::NAN),
                disk_angle_deg: 0.1,
                disk_read_angle_deg: 0.1,
                disk_write_angle_deg: 0.0,
                net_rx_angle_deg: 0.0,
                net_tx_angle_deg: 0.0,
                disk_latency: Default::default(),
                disks: vec![],
                nics: vec![],
                vcpu_percent: vec![],
                vcpu_steal_percent: vec![],
            }),
        }
    }

    pub(crate) fn ctx(tags: &[(&str, &str)]) -> EncodeCtx {
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EncodeCtx::new("hv1", &tags)
    }

    fn cell<'a>(c: &EncodeCtx, cells: &'a [Value], col: &str) -> &'a Value {
        let i = header(c).iter().position(|h| h == col).unwrap();
        &cells[i]
    }

    #[test]
    fn header_and_cells_line_up_with_static_tags_after_host() {
        let c = ctx(&[("dc", "fra1"), ("host", "ignored: reserved")]);
        let h = header(&c);
        assert_eq!(&h[..5], ["time", "timestamp_ns", "host", "dc", "VMID"]);
        assert_eq!(h.len(), COLUMNS.len() + 1);
        let v = cells(&c, &vm("web", DomainState::Running, true));
        assert_eq!(v.len(), h.len());
        assert_eq!(cell(&c, &v, "dc"), &Value::Str("fra1".into()));
        assert_eq!(cell(&c, &v, "cpu_usage_percent"), &Value::Float(12.5));
        assert_eq!(cell(&c, &v, "cpu_guest_percent"), &Value::Float(11.0));
        assert_eq!(cell(&c, &v, "cpu_steal_percent"), &Value::Null);
        assert_eq!(cell(&c, &v, "memory_used_kb"), &Value::Int(500_000));
        // Unknown (None) and non-finite values are null, never 0.
        assert_eq!(cell(&c, &v, "cpu_angle_deg"), &Value::Null);
        assert_eq!(cell(&c, &v, "net_tx_bytes_per_sec"), &Value::Null);
    }

    #[test]
    fn first_sample_and_inactive_domains_have_no_rates() {
        let c = ctx(&[]);
        let first = cells(&c, &vm("a", DomainState::Running, false));
        assert_eq!(cell(&c, &first, "cpu_usage_percent"), &Value::Null);
        assert_eq!(cell(&c, &first, "memory_used_kb"), &Value::Int(500_000));
        let off = cells(&c, &vm("b", DomainState::Shutoff, true));
        for col in ["VMID", "memory_used_kb", "cputime_ns", "cpu_usage_percent"] {
            assert_eq!(cell(&c, &off, col), &Value::Null, "{col}");
        }
        assert_eq!(cell(&c, &off, "state"), &Value::Str("shutoff".into()));
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_utc(1_699_868_400_123_456_789),
            "2023-11-13T09:40:00.123Z"
        );
        assert_eq!(
            rfc3339_utc(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(rfc3339_utc(-1_000_000), "1969-12-31T23:59:59.999Z");
    }
}
