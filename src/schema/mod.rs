//! The data schema: what vmpulse writes and under which names (ground floor).
//!
//! `metrics.rs` is the metric table, one entry per metric; every output
//! (line protocol, JSON/CSV columns, Prometheus series, the control API's VM
//! views, the README table) is made from it, so one value has one name
//! everywhere; `measurement.rs` the four measurements it writes into. This module
//! holds the names the encoder and the config's validation share: the tags
//! vmpulse sets and the field keys.

pub mod hypervisor;
mod measurement;
pub mod metrics;

use std::sync::LazyLock;

pub use measurement::Measurement;
pub use metrics::{Metric, Read, Type, Unit, Value, METRICS};

/// Tag keys vmpulse sets itself; a static tag with one of these keys is ignored
/// (a duplicate tag key makes the whole line invalid).
pub const RESERVED_TAGS: [&str; 9] = [
    "host", "VMID", "name", "uuid", "devtype", "device", "node", "size_kb", "metric",
];

/// The fields of `vm_alerts` (`level` careful|warning|critical or `ok`, `active`,
/// `value`, `threshold`); its tag `metric` names the metric.
pub const ALERT_FIELDS: [&str; 4] = ["level", "active", "value", "threshold"];

/// Every field key of the measurements (the VMs', the alerts' and the host's), sorted,
/// made from [`METRICS`], [`ALERT_FIELDS`] and the hypervisor field table.
/// A static tag with one of these keys is refused at validation: InfluxDB 3
/// rejects every line where a column is both a tag and a field.
pub static FIELD_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut keys: Vec<&'static str> = METRICS.iter().map(|m| m.name).collect();
    keys.extend(hypervisor::HYPERVISOR_FIELDS.iter().map(|f| f.name));
    keys.extend([
        hypervisor::NUMA_FREE_FIELD,
        hypervisor::HUGEPAGES_TOTAL_FIELD,
        hypervisor::HUGEPAGES_FREE_FIELD,
    ]);
    keys.extend(ALERT_FIELDS);
    keys.sort_unstable();
    keys.dedup();
    keys
});
