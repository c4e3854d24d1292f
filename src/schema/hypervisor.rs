//! The host's capacity (pure): [`HostFigures`], what the VMs take of the
//! hypervisor, and the `hypervisor` measurement's field table, which the line
//! protocol encoder, the control API's `/host` view, `/metrics` and the
//! README's schema table are made from (as `metrics.rs` is for the VMs).
//!
//! NUMA nodes and huge-page sizes are lines of their own
//! (`hypervisor_numa`, tag `node`; `hypervisor_hugepages`, tag `size_kb`), so
//! that a query can group by them; their field names are here too.

use super::metrics::{Type, Unit, Value};
use crate::model::{HostInfo, VmSnapshot};

/// The host's figures next to what its VMs are assigned and use.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFigures<'a> {
    pub host: &'a HostInfo,
    /// vCPUs of the active VMs (running, paused, suspended).
    pub vcpus_assigned: u64,
    /// Maximum memory of the active VMs, KiB.
    pub memory_assigned_kib: u64,
    /// CPU the VMs use, in host CPUs (cores); `None` before any VM has a rate.
    pub vms_cpu_cores: Option<f64>,
    /// Steal summed over the VMs, in host CPUs.
    pub steal_cores: Option<f64>,
    /// The worst VM's steal, % of its vCPUs.
    pub steal_percent_max: Option<f64>,
}

impl<'a> HostFigures<'a> {
    /// The figures of `host` with its VMs `vms`. Pure.
    pub fn of(host: &'a HostInfo, vms: &[VmSnapshot]) -> Self {
        let active = || vms.iter().filter(|v| v.raw.state.has_guest_counters());
        let vcpus = |vm: &VmSnapshot| f64::from(vm.raw.vcpus.unwrap_or(0));
        let cores = |pct: fn(&VmSnapshot) -> Option<f64>| {
            active()
                .filter_map(|vm| Some(pct(vm)? * vcpus(vm) / 100.0))
                .reduce(|a, b| a + b)
        };
        Self {
            host,
            vcpus_assigned: active().map(|v| u64::from(v.raw.vcpus.unwrap_or(0))).sum(),
            memory_assigned_kib: active().filter_map(|v| v.raw.max_mem_kib).sum(),
            vms_cpu_cores: cores(|vm| vm.derived.as_ref()?.cpu_percent)
                .or_else(|| (active().count() == 0).then_some(0.0)),
            steal_cores: cores(|vm| vm.derived.as_ref()?.cpu_split.steal),
            steal_percent_max: active()
                .filter_map(|vm| vm.derived.as_ref()?.cpu_split.steal)
                .reduce(f64::max),
        }
    }

    /// `part` over the host's CPUs, %; `None` for a host without CPUs.
    fn of_cpus(&self, part: f64) -> Option<f64> {
        ratio(part, f64::from(self.host.cpus)).map(|r| r * 100.0)
    }

    pub fn vcpus_per_cpu(&self) -> Option<f64> {
        ratio(self.vcpus_assigned as f64, f64::from(self.host.cpus))
    }

    pub fn vms_cpu_percent(&self) -> Option<f64> {
        self.of_cpus(self.vms_cpu_cores?)
    }

    pub fn memory_assigned_percent(&self) -> Option<f64> {
        let total = self.host.memory_total_kib as f64;
        ratio(self.memory_assigned_kib as f64, total).map(|r| r * 100.0)
    }

    pub fn memory_used_percent(&self) -> Option<f64> {
        let total = self.host.memory_total_kib as f64;
        ratio(self.host.memory_used_kib? as f64, total).map(|r| r * 100.0)
    }
}

/// `a / b`, `None` when `b` is not positive. Pure.
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// One field of the `hypervisor` measurement.
#[derive(Clone, Copy)]
pub struct HostField {
    pub name: &'static str,
    pub ty: Type,
    pub unit: Unit,
    pub help: &'static str,
    pub read: fn(&HostFigures) -> Option<Value>,
}

impl HostField {
    /// `vmpulse_host_<name without unit suffix><Prometheus unit suffix>`.
    pub fn prometheus_name(&self) -> String {
        let base = ["_kb", "_percent"]
            .iter()
            .find_map(|s| self.name.strip_suffix(s))
            .unwrap_or(self.name);
        format!("vmpulse_host_{base}{}", self.unit.prometheus().0)
    }
}

const fn field(
    name: &'static str,
    ty: Type,
    unit: Unit,
    read: fn(&HostFigures) -> Option<Value>,
    help: &'static str,
) -> HostField {
    HostField {
        name,
        ty,
        unit,
        help,
        read,
    }
}

fn int(v: u64) -> Option<Value> {
    Some(Value::Int(v))
}

fn float(v: Option<f64>) -> Option<Value> {
    v.map(Value::Float)
}

/// The `hypervisor` fields, in line-protocol order.
pub const HYPERVISOR_FIELDS: &[HostField] = &[
    field("cpus", Type::Int, Unit::Count, |f| int(u64::from(f.host.cpus)),
        "Host CPUs (logical), `virNodeGetInfo`."),
    field("memory_total_kb", Type::Int, Unit::Kib, |f| int(f.host.memory_total_kib),
        "Host memory, `virNodeGetInfo`."),
    field("memory_used_kb", Type::Int, Unit::Kib, |f| f.host.memory_used_kib.and_then(int),
        "Host memory in use: total − free − buffers − cached (`virNodeGetMemoryStats`); absent where the driver has no memory stats."),
    field("memory_used_percent", Type::Float, Unit::Percent, |f| float(f.memory_used_percent()),
        "`memory_used_kb` over `memory_total_kb`."),
    field("vcpus_assigned", Type::Int, Unit::Count, |f| int(f.vcpus_assigned),
        "vCPUs of the active VMs (running, paused, suspended)."),
    field("vcpus_per_cpu", Type::Float, Unit::None, |f| float(f.vcpus_per_cpu()),
        "`vcpus_assigned` over `cpus`: above 1 the CPUs are overcommitted."),
    field("memory_assigned_kb", Type::Int, Unit::Kib, |f| int(f.memory_assigned_kib),
        "Maximum memory of the active VMs."),
    field("memory_assigned_percent", Type::Float, Unit::Percent, |f| float(f.memory_assigned_percent()),
        "`memory_assigned_kb` over `memory_total_kb`: above 100 memory is overcommitted."),
    field("vms_cpu_cores", Type::Float, Unit::None, |f| float(f.vms_cpu_cores),
        "CPU the VMs use, in host CPUs: Σ cpu_usage_percent × vCPUs / 100 (QEMU's own threads included)."),
    field("vms_cpu_percent", Type::Float, Unit::Percent, |f| float(f.vms_cpu_percent()),
        "`vms_cpu_cores` over `cpus`."),
    field("steal_cores", Type::Float, Unit::None, |f| float(f.steal_cores),
        "Steal summed over the VMs, in host CPUs: time their vCPUs were runnable but waited for a host CPU."),
    field("steal_percent_max", Type::Float, Unit::Percent, |f| float(f.steal_percent_max),
        "The worst VM's `cpu_steal_percent`."),
];

/// `hypervisor_numa`'s one field (tag `node`): free memory of that NUMA node, KiB.
pub const NUMA_FREE_FIELD: &str = "memory_free_kb";
/// `hypervisor_hugepages`' fields (tag `size_kb`): pages reserved and free.
pub const HUGEPAGES_TOTAL_FIELD: &str = "pages_total";
pub const HUGEPAGES_FREE_FIELD: &str = "pages_free";

/// The README's schema table of the three host measurements (generated).
pub fn readme_table() -> String {
    let mut s =
        String::from("| measurement | field | type | unit | meaning |\n|---|---|---|---|---|\n");
    for f in HYPERVISOR_FIELDS {
        s.push_str(&format!(
            "| `hypervisor` | `{}` | {} | {} | {} |\n",
            f.name,
            f.ty.as_str(),
            f.unit.as_str(),
            f.help
        ));
    }
    s.push_str(&format!(
        "| `hypervisor_numa` | `{NUMA_FREE_FIELD}` | integer | KiB | Free memory of NUMA node `node` (`virNodeGetCellsFreeMemory`). |\n\
         | `hypervisor_hugepages` | `{HUGEPAGES_TOTAL_FIELD}` | integer | count | Huge pages of size `size_kb` reserved on the host, summed over NUMA nodes (capabilities XML). |\n\
         | `hypervisor_hugepages` | `{HUGEPAGES_FREE_FIELD}` | integer | count | Huge pages of size `size_kb` free (`virNodeGetFreePages`). |\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::model::{CpuSplit, Derived, DomainState};

    fn host() -> HostInfo {
        HostInfo {
            cpus: 8,
            memory_total_kib: 16 * 1024 * 1024,
            memory_used_kib: Some(4 * 1024 * 1024),
            libvirt_version: "9.0.0".into(),
            numa_free_kib: vec![],
            huge_pages: vec![],
            read_at_ns: 1,
        }
    }

    fn vm(name: &str, state: DomainState, vcpus: u32, cpu: f64, steal: Option<f64>) -> VmSnapshot {
        let mut v = fixtures::vm(fixtures::raw(name, &format!("uuid-{name}")));
        v.raw.state = state;
        v.raw.vcpus = Some(vcpus);
        v.raw.max_mem_kib = Some(4 * 1024 * 1024);
        v.derived = Some(Derived {
            cpu_percent: Some(cpu),
            cpu_split: CpuSplit {
                steal,
                ..Default::default()
            },
            ..Default::default()
        });
        v
    }

    #[test]
    fn ratios_count_active_vms_only() {
        let h = host();
        let vms = [
            vm("a", DomainState::Running, 4, 50.0, Some(10.0)),
            vm("b", DomainState::Paused, 8, 0.0, Some(2.0)),
            vm("off", DomainState::Shutoff, 16, 100.0, Some(90.0)),
        ];
        let f = HostFigures::of(&h, &vms);
        assert_eq!(f.vcpus_assigned, 12);
        assert_eq!(f.vcpus_per_cpu(), Some(1.5));
        assert_eq!(f.memory_assigned_kib, 8 * 1024 * 1024);
        assert_eq!(f.memory_assigned_percent(), Some(50.0));
        assert_eq!(f.memory_used_percent(), Some(25.0));
        assert_eq!(f.vms_cpu_cores, Some(2.0));
        assert_eq!(f.vms_cpu_percent(), Some(25.0));
        assert_eq!(f.steal_cores, Some(0.4 + 0.16));
        assert_eq!(f.steal_percent_max, Some(10.0));
    }

    #[test]
    fn unknown_stays_unknown_and_no_vms_use_nothing() {
        let mut h = host();
        h.cpus = 0;
        h.memory_used_kib = None;
        let f = HostFigures::of(&h, &[]);
        assert_eq!(f.vms_cpu_cores, Some(0.0));
        assert_eq!(f.vms_cpu_percent(), None, "no CPUs: no share");
        assert_eq!(f.vcpus_per_cpu(), None);
        assert_eq!(f.memory_used_percent(), None);
        assert_eq!(f.steal_percent_max, None);
        let mut first = vm("a", DomainState::Running, 2, 0.0, None);
        first.derived = None;
        let f = HostFigures::of(&h, &[first]);
        assert_eq!(f.vms_cpu_cores, None, "first sample: no rate yet");
        assert_eq!(ratio(1.0, 0.0), None);
    }

    #[test]
    fn field_names_and_prometheus_names_are_unique() {
        let mut names: Vec<_> = HYPERVISOR_FIELDS.iter().map(|f| f.name).collect();
        let mut prom: Vec<_> = HYPERVISOR_FIELDS
            .iter()
            .map(|f| f.prometheus_name())
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        prom.sort();
        prom.dedup();
        assert_eq!((names.len(), prom.len()), (n, n));
        let mem = HYPERVISOR_FIELDS
            .iter()
            .find(|f| f.name == "memory_total_kb")
            .unwrap();
        assert_eq!(mem.prometheus_name(), "vmpulse_host_memory_total_bytes");
    }

    #[test]
    fn readme_table_is_generated_from_the_table() {
        crate::fixtures::generated::block(
            "README.md",
            "hypervisor-table",
            &readme_table(),
            "cargo test --lib schema",
        );
    }
}
