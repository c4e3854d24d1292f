//! The measurements of line protocol a VM is written into (pure names).

/// The measurements of line protocol: the four of every collection, in the order a
/// VM's lines are written, then the ones written on events.
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
    /// One point per alert transition (raise, level change, clear): tag `metric`,
    /// fields [`super::ALERT_FIELDS`]; not in the metric table.
    VmAlerts,
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
            Self::VmAlerts => "vm_alerts",
        }
    }
}
