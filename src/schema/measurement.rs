//! The measurements of line protocol a VM is written into (pure names).

/// The measurements of line protocol, in the order a VM's lines are written.
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
    /// A background job in flight (dump, save, migration, block job): one line
    /// per job per cycle while it runs, and one final line when it ends.
    VmJobs,
}

impl Measurement {
    pub const ALL: [Self; 5] = [
        Self::VmMetrics,
        Self::VmFeatures,
        Self::VmDevices,
        Self::VmTotals,
        Self::VmJobs,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VmMetrics => "vm_metrics",
            Self::VmFeatures => "vm_features",
            Self::VmDevices => "vm_devices",
            Self::VmTotals => "vm_totals",
            Self::VmJobs => "vm_jobs",
        }
    }
}
