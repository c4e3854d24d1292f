//! The measurements of line protocol (pure names): the four of every collection a
//! VM is written into, the ones written on events (jobs, alerts), and three for
//! the host (`schema::hypervisor`).

/// The measurements of line protocol: the four of every collection, in the order a
/// VM's lines are written, then the ones written on events, then the host's.
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
    /// The host's capacity: one point per reading of the node figures.
    Hypervisor,
    /// Free memory of one NUMA node (`node` tag).
    HypervisorNuma,
    /// Huge pages of one size (`size_kb` tag).
    HypervisorHugepages,
    /// One point per alert transition (raise, level change, clear): tag `metric`,
    /// fields [`super::ALERT_FIELDS`]; not in the metric table.
    VmAlerts,
}

impl Measurement {
    pub const ALL: [Self; 8] = [
        Self::VmMetrics,
        Self::VmFeatures,
        Self::VmDevices,
        Self::VmTotals,
        Self::VmJobs,
        Self::Hypervisor,
        Self::HypervisorNuma,
        Self::HypervisorHugepages,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::VmMetrics => "vm_metrics",
            Self::VmFeatures => "vm_features",
            Self::VmDevices => "vm_devices",
            Self::VmTotals => "vm_totals",
            Self::VmJobs => "vm_jobs",
            Self::Hypervisor => "hypervisor",
            Self::HypervisorNuma => "hypervisor_numa",
            Self::HypervisorHugepages => "hypervisor_hugepages",
            Self::VmAlerts => "vm_alerts",
        }
    }
}
