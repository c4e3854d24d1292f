//! The data schema: what vmpulse writes and under which names (ground floor).
//!
//! `metrics.rs` is the metric table, one entry per metric; every output
//! (line protocol, JSON/CSV columns, Prometheus series, the control API's VM
//! views, the README table) is made from it, so one value has one name
//! everywhere. This module also holds the names the encoder and the config's
//! validation share: measurements, the tags vmpulse sets, the field keys.

pub mod metrics;

use std::sync::LazyLock;

pub use metrics::{Metric, Read, Type, Unit, Value, METRICS};

/// The four measurements of line protocol, in the order a VM's lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measurement {
    /// Identity, state, allocation: every VM.
    VmMetrics,
    /// Rates and percentages: running VMs from their second sample.
    VmFeatures,
    /// Cumulative counters of one NIC or disk (`devtype`, `device` tags).
    VmDevices,
    /// Cumulative counters summed over a VM's devices, plus its state code.
    VmTotals,
}

impl Measurement {
    pub const ALL: [Self; 4] = [
        Self::VmMetrics,
        Self::VmFeatures,
        Self::VmDevices,
        Self::VmTotals,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VmMetrics => "vm_metrics",
            Self::VmFeatures => "vm_features",
            Self::VmDevices => "vm_devices",
            Self::VmTotals => "vm_totals",
        }
    }
}

/// Tag keys vmpulse sets itself; a static tag with one of these keys is ignored
/// (a duplicate tag key makes the whole line invalid).
pub const RESERVED_TAGS: [&str; 6] = ["host", "VMID", "name", "uuid", "devtype", "device"];

/// Every field key of the four measurements, sorted, made from [`METRICS`].
/// A static tag with one of these keys is refused at validation: InfluxDB 3
/// rejects every line where a column is both a tag and a field.
pub static FIELD_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut keys: Vec<&'static str> = METRICS.iter().map(|m| m.name).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
});
