//! One VM in one collection as a flat record: the columns of `--format json|csv`.
//!
//! Column names are the schema names of the metric table (`crate::schema`),
//! the per-VM values of `vm_metrics` and `vm_features`, after the identifying columns. Unknown values are
//! [`Value::Null`] (JSON `null`, an empty CSV cell), never 0, following the
//! same rules as the line-protocol encoder: an inactive domain has its state,
//! vCPUs and maximum memory only, and rates appear from its second sample.

use std::sync::LazyLock;

use crate::encode::line_protocol::EncodeCtx;
use crate::format::rfc3339_ns;
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

/// Column names with the static tag keys inserted after `host` and the metadata
/// tag names (`collector.metadata_tags`) after `uuid`.
pub fn header(ctx: &EncodeCtx) -> Vec<String> {
    let mut cols: Vec<String> = COLUMNS[..3].iter().map(|c| c.to_string()).collect();
    cols.extend(ctx.tags().iter().map(|(k, _)| k.clone()));
    cols.extend(COLUMNS[3..IDENTITY.len()].iter().map(|c| c.to_string()));
    cols.extend(ctx.metadata_tags().iter().cloned());
    cols.extend(COLUMNS[IDENTITY.len()..].iter().map(|c| c.to_string()));
    cols
}

/// The cells of one VM, in the order of [`header`].
pub fn cells(ctx: &EncodeCtx, vm: &VmSnapshot) -> Vec<Value> {
    let raw = &vm.raw;
    let mut v = vec![
        Value::Str(rfc3339_ns(raw.wall_ns)),
        Value::Int(raw.wall_ns),
        Value::Str(ctx.host().to_string()),
    ];
    v.extend(ctx.tags().iter().map(|(_, t)| Value::Str(t.clone())));
    v.extend([
        Value::int(raw.id.map(u64::from)),
        Value::Str(raw.name.clone()),
        Value::Str(raw.uuid.clone()),
    ]);
    // A metadata tag the VM does not have is null, like any unknown value.
    v.extend(ctx.metadata_tags().iter().map(|name| {
        raw.tags
            .iter()
            .find(|(k, _)| k == name)
            .map_or(Value::Null, |(_, t)| Value::Str(t.clone()))
    }));
    v.extend(record_metrics().map(|m| Value::of(m.vm_value(vm))));
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::fixtures::sampled as vm;
    use crate::model::*;
    use std::collections::BTreeMap;

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
    fn metadata_tags_are_columns_after_uuid_null_when_missing() {
        let c = ctx(&[("dc", "fra1")]).with_metadata_tags(vec!["project".into(), "flavor".into()]);
        let h = header(&c);
        assert_eq!(&h[5..9], ["name", "uuid", "project", "flavor"]);
        let mut web = vm("web", DomainState::Running, true);
        web.raw.tags = vec![("project".into(), "shop, \"a\"".into())];
        let v = cells(&c, &web);
        assert_eq!(v.len(), h.len());
        assert_eq!(cell(&c, &v, "project"), &Value::Str("shop, \"a\"".into()));
        assert_eq!(cell(&c, &v, "flavor"), &Value::Null);
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
}
