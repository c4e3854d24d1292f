//! The metric table: one entry per metric, read by every output.
//!
//! An entry names the metric once (its line-protocol field key, which is also
//! its JSON/CSV column and its key in the control API), says where it is
//! written, its type and unit, which VMs or devices have it, and how to read
//! it from a [`VmSnapshot`]. Adding a metric is one entry here plus its
//! derivation; the encoder, the columns, the Prometheus series, the API views
//! and the README table follow. Entries are in line-protocol order (the golden
//! test `tests/golden_line_protocol.rs` holds that order byte for byte).

use super::measurement::Measurement;
use crate::model::{Derived, DiskStats, DomainJob, NicStats, VmSnapshot};

/// The type a metric is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Float,
    /// Line protocol `i`; values above `i64::MAX` are left out.
    Int,
    Str,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Float => "float",
            Self::Int => "integer",
            Self::Str => "string",
        }
    }
}

/// A metric's unit; Prometheus names and scales follow from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    None,
    Count,
    Percent,
    Degrees,
    Kib,
    KibPerSec,
    Bytes,
    BytesPerSec,
    PerSec,
    Ns,
    Ms,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Count => "count",
            Self::Percent => "%",
            Self::Degrees => "°",
            Self::Kib => "KiB",
            Self::KibPerSec => "KiB/s",
            Self::Bytes => "bytes",
            Self::BytesPerSec => "bytes/s",
            Self::PerSec => "1/s",
            Self::Ns => "ns",
            Self::Ms => "ms",
        }
    }

    /// Prometheus base unit: the name suffix and the factor into it.
    pub fn prometheus(self) -> (&'static str, f64) {
        match self {
            Self::Kib => ("_bytes", 1024.0),
            Self::Bytes => ("_bytes", 1.0),
            Self::Ns => ("_seconds", 1e-9),
            Self::Ms => ("_seconds", 1e-3),
            Self::Percent => ("_percent", 1.0),
            _ => ("", 1.0),
        }
    }
}

/// One metric's value for one VM or device.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Signed(i64),
    Float(f64),
    Str(&'static str),
}

impl Value {
    /// The number Prometheus gets; `None` for strings.
    pub fn as_f64(self) -> Option<f64> {
        match self {
            Self::Int(v) => Some(v as f64),
            Self::Signed(v) => Some(v as f64),
            Self::Float(v) => Some(v),
            Self::Str(_) => None,
        }
    }

    fn ty(self) -> Type {
        match self {
            Self::Int(_) | Self::Signed(_) => Type::Int,
            Self::Float(_) => Type::Float,
            Self::Str(_) => Type::Str,
        }
    }
}

type VmRead = fn(&VmSnapshot) -> Option<Value>;

/// Which VMs or devices have the metric, and how to read it.
#[derive(Clone, Copy)]
pub enum Read {
    /// Every VM, whatever its state.
    AnyVm(VmRead),
    /// VMs whose counters belong to the guest (running, paused, suspended).
    ActiveVm(VmRead),
    /// Active VMs from their second sample: needs two samples.
    Rates(fn(&VmSnapshot, &Derived) -> Option<Value>),
    /// Each disk of an active VM (`vm_devices`, `devtype=disk`).
    Disk(fn(&DiskStats) -> Option<Value>),
    /// Each NIC of an active VM (`vm_devices`, `devtype=nic`).
    Nic(fn(&NicStats) -> Option<Value>),
    /// Each job in flight (`vm_jobs`; a block job's line has `device`).
    Job(fn(&DomainJob) -> Option<Value>),
}

impl Read {
    pub fn applies_to(&self) -> &'static str {
        match self {
            Self::AnyVm(_) => "every VM",
            Self::ActiveVm(_) => "active VM",
            Self::Rates(_) => "active VM, from its 2nd sample",
            Self::Disk(_) => "each disk",
            Self::Nic(_) => "each NIC",
            Self::Job(_) => "each job in flight",
        }
    }
}

/// A per-VM Prometheus series: `vmpulse_vm_<base><unit suffix>[_total]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prom {
    pub base: &'static str,
    pub counter: bool,
}

/// One metric.
#[derive(Clone, Copy)]
pub struct Metric {
    /// The schema name: line-protocol field key, JSON/CSV column, API key.
    pub name: &'static str,
    pub measurement: Measurement,
    pub ty: Type,
    pub unit: Unit,
    pub help: &'static str,
    pub read: Read,
    /// The key the older system's API used for this value in `/vms`, kept.
    pub api_key: Option<&'static str>,
    pub prom: Option<Prom>,
}

impl Metric {
    const fn new(
        name: &'static str,
        measurement: Measurement,
        ty: Type,
        unit: Unit,
        read: Read,
        help: &'static str,
    ) -> Self {
        Self {
            name,
            measurement,
            ty,
            unit,
            help,
            read,
            api_key: None,
            prom: None,
        }
    }

    const fn api(mut self, key: &'static str) -> Self {
        self.api_key = Some(key);
        self
    }

    const fn gauge(mut self, base: &'static str) -> Self {
        self.prom = Some(Prom {
            base,
            counter: false,
        });
        self
    }

    const fn counter(mut self, base: &'static str) -> Self {
        self.prom = Some(Prom {
            base,
            counter: true,
        });
        self
    }

    /// The value of a per-VM metric, by the rules of [`Read`]: `None` when
    /// unknown, when the VM's state has no such value, or for a device metric.
    pub fn vm_value(&self, vm: &VmSnapshot) -> Option<Value> {
        let active = vm.raw.state.has_guest_counters();
        match self.read {
            Read::AnyVm(f) => f(vm),
            Read::ActiveVm(f) => active.then(|| f(vm)).flatten(),
            Read::Rates(f) => vm
                .derived
                .as_ref()
                .filter(|_| active)
                .and_then(|d| f(vm, d)),
            Read::Disk(_) | Read::Nic(_) | Read::Job(_) => None,
        }
    }

    /// Whether the metric is one value per VM (not per device).
    pub fn per_vm(&self) -> bool {
        !matches!(self.read, Read::Disk(_) | Read::Nic(_) | Read::Job(_))
    }

    /// Whether it is a column of `--format json|csv` and a value of `/vms`:
    /// the per-VM values of `vm_metrics` and `vm_features`.
    pub fn in_vm_record(&self) -> bool {
        matches!(
            self.measurement,
            Measurement::VmMetrics | Measurement::VmFeatures
        )
    }

    /// The key in the control API's VM views.
    pub fn api_name(&self) -> &'static str {
        self.api_key.unwrap_or(self.name)
    }

    /// The Prometheus series name, `None` for metrics not exported there.
    pub fn prometheus_name(&self) -> Option<String> {
        let p = self.prom?;
        let (suffix, _) = self.unit.prometheus();
        let total = if p.counter { "_total" } else { "" };
        Some(format!("vmpulse_vm_{}{suffix}{total}", p.base))
    }

    /// Whether `v` has the type the table declares.
    pub fn type_matches(&self, v: Value) -> bool {
        v.ty() == self.ty
    }
}

use Measurement::{
    VmDevices as DEV, VmFeatures as FEAT, VmJobs as JOB, VmMetrics as MET, VmTotals as TOT,
};
use Type::{Float as F, Int as I, Str as S};

fn int(v: Option<u64>) -> Option<Value> {
    v.map(Value::Int)
}
fn float(v: Option<f64>) -> Option<Value> {
    v.map(Value::Float)
}
fn sure(v: f64) -> Option<Value> {
    Some(Value::Float(v))
}

/// The sum when every item is known (0 for no devices), else `None`: a total
/// of a counter some device does not report is unknown.
fn known_sum(mut items: impl Iterator<Item = Option<u64>>) -> Option<Value> {
    int(items.try_fold(0u64, |acc, v| v.map(|v| acc.saturating_add(v))))
}
fn nic_sum(vm: &VmSnapshot, get: fn(&NicStats) -> Option<u64>) -> Option<Value> {
    known_sum(vm.raw.nics.iter().map(get))
}
fn disk_sum(vm: &VmSnapshot, get: fn(&DiskStats) -> Option<u64>) -> Option<Value> {
    known_sum(vm.raw.disks.iter().map(get))
}
/// Per-vCPU counters summed; `None` where libvirt does not report them.
fn vcpu_sum(v: &[u64]) -> Option<Value> {
    int((!v.is_empty()).then(|| v.iter().fold(0u64, |a, x| a.saturating_add(*x))))
}

const fn vm(
    name: &'static str,
    m: Measurement,
    ty: Type,
    unit: Unit,
    f: VmRead,
    help: &'static str,
) -> Metric {
    Metric::new(name, m, ty, unit, Read::AnyVm(f), help)
}
const fn active(
    name: &'static str,
    m: Measurement,
    ty: Type,
    unit: Unit,
    f: VmRead,
    help: &'static str,
) -> Metric {
    Metric::new(name, m, ty, unit, Read::ActiveVm(f), help)
}
const fn rate(
    name: &'static str,
    ty: Type,
    unit: Unit,
    f: fn(&VmSnapshot, &Derived) -> Option<Value>,
    help: &'static str,
) -> Metric {
    Metric::new(name, FEAT, ty, unit, Read::Rates(f), help)
}
const fn nic(
    name: &'static str,
    unit: Unit,
    f: fn(&NicStats) -> Option<Value>,
    help: &'static str,
) -> Metric {
    Metric::new(name, DEV, I, unit, Read::Nic(f), help)
}
const fn disk(
    name: &'static str,
    unit: Unit,
    f: fn(&DiskStats) -> Option<Value>,
    help: &'static str,
) -> Metric {
    Metric::new(name, DEV, I, unit, Read::Disk(f), help)
}
const fn job(
    name: &'static str,
    ty: Type,
    unit: Unit,
    f: fn(&DomainJob) -> Option<Value>,
    help: &'static str,
) -> Metric {
    Metric::new(name, JOB, ty, unit, Read::Job(f), help)
}
const fn total(name: &'static str, unit: Unit, f: VmRead, help: &'static str) -> Metric {
    Metric::new(name, TOT, I, unit, Read::ActiveVm(f), help)
}

/// Every metric, in line-protocol order within each measurement. Laid out by
/// hand, one entry per paragraph (rustfmt would not fit the descriptions).
#[rustfmt::skip]
pub static METRICS: &[Metric] = &[
    // vm_metrics
    vm("state", MET, S, Unit::None, |v| Some(Value::Str(v.raw.state.as_str())),
        "Domain state as `virsh domstate` words it: running, paused, shutoff, crashed, ...")
        .api("state"),
    vm("cpu_count", MET, I, Unit::Count, |v| int(v.raw.vcpus.map(u64::from)),
        "Current vCPU count.")
        .api("cpu_count").gauge("vcpus"),
    vm("memory_max_kb", MET, I, Unit::Kib, |v| int(v.raw.max_mem_kib),
        "Maximum memory allocation.")
        .api("memory_max").gauge("memory_max"),
    active("memory_used_kb", MET, I, Unit::Kib, |v| int(v.memory.map(|m| m.used_kb)),
        "Memory the guest uses: `balloon.available − balloon.usable` when the guest reports both (MemTotal − MemAvailable, what `free` calls used); else `balloon.current − balloon.unused`; else `balloon.rss`; else the current allocation. `memory_source` says which.")
        .api("memory_used").gauge("memory_used"),
    active("cputime_ns", MET, I, Unit::Ns, |v| int(v.raw.cpu.map(|c| c.time_ns)),
        "Cumulative CPU time of the VM (`cpu.time`).")
        .api("cputime").counter("cpu"),
    // vm_features
    rate("memory_rate_kb_per_sec", F, Unit::KibPerSec, |_, d| sure(d.memory_rate_kb_per_sec),
        "`Δmemory_used_kb / Δt` (as the Python collector vmpulse replaces computed it), 0 when the memory source changed between samples."),
    rate("memory_angle_deg", F, Unit::Degrees, |_, d| sure(d.memory_angle_deg),
        "`degrees(atan(memory_rate_kb_per_sec))` (as the Python collector vmpulse replaces computed it)."),
    rate("cpu_usage_percent", F, Unit::Percent, |_, d| float(d.cpu_percent),
        "`100 × Δcpu.time_ns / (Δt_ns × vcpus)`, clamped to 0..100: everything the VM cost the host (its vCPU threads plus QEMU's emulator and I/O threads), as percent of its vCPU allocation.")
        .gauge("cpu"),
    rate("cpu_guest_percent", F, Unit::Percent, |_, d| float(d.cpu_split.guest),
        "`100 × ΣΔvcpu.N.time / (Δt × vcpus)`: the time the vCPUs actually ran. Needs per-vCPU counters."),
    rate("cpu_overhead_percent", F, Unit::Percent, |_, d| float(d.cpu_split.overhead),
        "`100 × max(0, Δcpu.time − ΣΔvcpu.N.time) / (Δt × vcpus)`: QEMU's own threads (device emulation, I/O). Needs per-vCPU counters."),
    rate("cpu_steal_percent", F, Unit::Percent, |_, d| float(d.cpu_split.steal),
        "`100 × ΣΔvcpu.N.delay / (Δt × vcpus)`: time the vCPUs were runnable but waited for a host CPU. Needs `vcpu.N.delay`."),
    rate("memory_usage_percent", F, Unit::Percent, |v, _| float(v.memory.and_then(|m| m.percent)),
        "`memory_used_kb` over the total of the same source (MemTotal; the balloon's size for current-unused and rss). Only rss can exceed 100 %; none for the allocation."),
    rate("cpu_angle_deg", F, Unit::Degrees, |_, d| float(d.cpu_angle_deg),
        "`degrees(atan(ΔCPU% per second / rates.cpu_unit))`; from the 3rd sample."),
    rate("memory_percent_angle_deg", F, Unit::Degrees, |_, d| float(d.memory_percent_angle_deg),
        "`degrees(atan(Δmemory% per second / rates.memory_unit))`."),
    rate("disk_read_bytes_per_sec", F, Unit::BytesPerSec, |_, d| sure(d.disk_read.bytes_per_sec),
        "Bytes read per second, summed over the disks present in both samples."),
    rate("disk_write_bytes_per_sec", F, Unit::BytesPerSec, |_, d| sure(d.disk_write.bytes_per_sec),
        "Bytes written per second, summed over disks."),
    rate("disk_read_req_per_sec", F, Unit::PerSec, |_, d| float(d.disk_read.ops_per_sec),
        "Read requests per second, summed over disks; left out when a disk does not report them."),
    rate("disk_write_req_per_sec", F, Unit::PerSec, |_, d| float(d.disk_write.ops_per_sec),
        "Write requests per second, summed over disks; left out when a disk does not report them."),
    rate("net_rx_bytes_per_sec", F, Unit::BytesPerSec, |_, d| sure(d.net_rx.bytes_per_sec),
        "Bytes received per second, summed over the NICs present in both samples."),
    rate("net_tx_bytes_per_sec", F, Unit::BytesPerSec, |_, d| sure(d.net_tx.bytes_per_sec),
        "Bytes sent per second, summed over NICs."),
    rate("net_rx_packets_per_sec", F, Unit::PerSec, |_, d| float(d.net_rx.ops_per_sec),
        "Packets received per second; left out when a NIC does not report them."),
    rate("net_tx_packets_per_sec", F, Unit::PerSec, |_, d| float(d.net_tx.ops_per_sec),
        "Packets sent per second; left out when a NIC does not report them."),
    rate("disk_angle_deg", F, Unit::Degrees, |_, d| sure(d.disk_angle_deg),
        "`degrees(atan((read + write bytes/s) / rates.throughput_unit))`."),
    rate("disk_read_angle_deg", F, Unit::Degrees, |_, d| sure(d.disk_read_angle_deg),
        "`degrees(atan(read bytes/s / rates.throughput_unit))`."),
    rate("disk_write_angle_deg", F, Unit::Degrees, |_, d| sure(d.disk_write_angle_deg),
        "`degrees(atan(write bytes/s / rates.throughput_unit))`."),
    rate("net_rx_angle_deg", F, Unit::Degrees, |_, d| sure(d.net_rx_angle_deg),
        "`degrees(atan(rx bytes/s / rates.throughput_unit))`."),
    rate("net_tx_angle_deg", F, Unit::Degrees, |_, d| sure(d.net_tx_angle_deg),
        "`degrees(atan(tx bytes/s / rates.throughput_unit))`."),
    rate("memory_source", S, Unit::None, |v, _| v.memory.map(|m| Value::Str(m.source.as_str())),
        "Which reading `memory_used_kb` came from: available-usable, current-unused, rss or allocation."),
    rate("disk_read_latency_ms", F, Unit::Ms, |_, d| float(d.disk_latency.read_ms),
        "Average time per read request completed in the interval: `ΣΔrd_total_times / ΣΔrd_req` over the disks that report both; left out when no read completed."),
    rate("disk_write_latency_ms", F, Unit::Ms, |_, d| float(d.disk_latency.write_ms),
        "Average time per write request: `ΣΔwr_total_times / ΣΔwr_reqs` over disks; left out when no write completed."),
    rate("disk_flush_latency_ms", F, Unit::Ms, |_, d| float(d.disk_latency.flush_ms),
        "Average time per flush request: `ΣΔflush_total_times / ΣΔflush_reqs` over disks; left out when no flush completed."),
    rate("net_drops_per_sec", F, Unit::PerSec, |_, d| float(d.net_drops_per_sec),
        "Packets dropped per second, received and sent (`ΣΔ(rxdrops + txdrops) / Δt`), over the NICs that report both; left out when none does."),
    // vm_devices, devtype=nic
    nic("rxbytes", Unit::Bytes, |n| int(Some(n.rx_bytes)), "Bytes received (cumulative)."),
    nic("rxpackets", Unit::Count, |n| int(n.rx_packets), "Packets received (cumulative)."),
    nic("rxerrors", Unit::Count, |n| int(n.rx_errors), "Receive errors (cumulative)."),
    nic("rxdrops", Unit::Count, |n| int(n.rx_drops), "Received packets dropped (cumulative)."),
    nic("txbytes", Unit::Bytes, |n| int(Some(n.tx_bytes)), "Bytes sent (cumulative)."),
    nic("txpackets", Unit::Count, |n| int(n.tx_packets), "Packets sent (cumulative)."),
    nic("txerrors", Unit::Count, |n| int(n.tx_errors), "Transmit errors (cumulative)."),
    nic("txdrops", Unit::Count, |n| int(n.tx_drops), "Sent packets dropped (cumulative)."),
    // vm_devices, devtype=disk
    disk("rd_req", Unit::Count, |d| int(d.rd_reqs), "Read requests (cumulative)."),
    disk("rd_bytes", Unit::Bytes, |d| int(Some(d.rd_bytes)), "Bytes read (cumulative)."),
    disk("wr_reqs", Unit::Count, |d| int(d.wr_reqs), "Write requests (cumulative)."),
    disk("wr_bytes", Unit::Bytes, |d| int(Some(d.wr_bytes)), "Bytes written (cumulative)."),
    disk("errors", Unit::Count, |d| int(d.errors), "I/O errors (cumulative; only the per-domain call reports them)."),
    disk("rd_total_times", Unit::Ns, |d| int(d.rd_times_ns), "Time spent on read requests (`block.N.rd.times`, cumulative)."),
    disk("wr_total_times", Unit::Ns, |d| int(d.wr_times_ns), "Time spent on write requests (`block.N.wr.times`, cumulative)."),
    disk("flush_reqs", Unit::Count, |d| int(d.fl_reqs), "Flush requests (`block.N.fl.reqs`, cumulative)."),
    disk("flush_total_times", Unit::Ns, |d| int(d.fl_times_ns), "Time spent on flush requests (`block.N.fl.times`, cumulative)."),
    // vm_totals
    total("net_rxbytes", Unit::Bytes, |v| nic_sum(v, |n| Some(n.rx_bytes)), "`rxbytes` summed over NICs.")
        .counter("network_receive"),
    total("net_rxpackets", Unit::Count, |v| nic_sum(v, |n| n.rx_packets), "`rxpackets` summed over NICs."),
    total("net_rxerrors", Unit::Count, |v| nic_sum(v, |n| n.rx_errors), "`rxerrors` summed over NICs."),
    total("net_rxdrops", Unit::Count, |v| nic_sum(v, |n| n.rx_drops), "`rxdrops` summed over NICs."),
    total("net_txbytes", Unit::Bytes, |v| nic_sum(v, |n| Some(n.tx_bytes)), "`txbytes` summed over NICs.")
        .counter("network_transmit"),
    total("net_txpackets", Unit::Count, |v| nic_sum(v, |n| n.tx_packets), "`txpackets` summed over NICs."),
    total("net_txerrors", Unit::Count, |v| nic_sum(v, |n| n.tx_errors), "`txerrors` summed over NICs."),
    total("net_txdrops", Unit::Count, |v| nic_sum(v, |n| n.tx_drops), "`txdrops` summed over NICs."),
    total("disk_rd_req", Unit::Count, |v| disk_sum(v, |d| d.rd_reqs), "`rd_req` summed over disks."),
    total("disk_rd_bytes", Unit::Bytes, |v| disk_sum(v, |d| Some(d.rd_bytes)), "`rd_bytes` summed over disks.")
        .counter("disk_read"),
    total("disk_wr_reqs", Unit::Count, |v| disk_sum(v, |d| d.wr_reqs), "`wr_reqs` summed over disks."),
    total("disk_wr_bytes", Unit::Bytes, |v| disk_sum(v, |d| Some(d.wr_bytes)), "`wr_bytes` summed over disks.")
        .counter("disk_write"),
    total("disk_errors", Unit::Count,
        |v| int(v.raw.disks.iter().filter_map(|d| d.errors).reduce(|a, b| a.saturating_add(b))),
        "`errors` summed over the disks that report them."),
    total("memactual", Unit::Kib, |v| int(v.raw.balloon.current_kib), "Current balloon size (`balloon.current`)."),
    total("memrss", Unit::Kib, |v| int(v.raw.balloon.rss_kib), "Resident set size of the QEMU process (`balloon.rss`)."),
    total("memavailable", Unit::Kib, |v| int(v.raw.balloon.available_kib), "The guest's MemTotal (`balloon.available`)."),
    total("memusable", Unit::Kib, |v| int(v.raw.balloon.usable_kib), "The guest's MemAvailable (`balloon.usable`)."),
    total("memswap_in", Unit::Kib, |v| int(v.raw.balloon.swap_in_kib), "Swapped in by the guest (`balloon.swap_in`)."),
    total("memswap_out", Unit::Kib, |v| int(v.raw.balloon.swap_out_kib), "Swapped out by the guest (`balloon.swap_out`)."),
    total("memmajor_fault", Unit::Count, |v| int(v.raw.balloon.major_fault), "Major page faults in the guest."),
    total("memminor_fault", Unit::Count, |v| int(v.raw.balloon.minor_fault), "Minor page faults in the guest."),
    total("memdisk_cache", Unit::Kib, |v| int(v.raw.balloon.disk_caches_kib), "The guest's disk caches (`balloon.disk_caches`)."),
    total("timeusr", Unit::Ns, |v| int(v.raw.cpu.and_then(|c| c.user_ns)), "User CPU time (`cpu.user`)."),
    total("timesys", Unit::Ns, |v| int(v.raw.cpu.and_then(|c| c.system_ns)), "System CPU time (`cpu.system`)."),
    total("cpus", Unit::Count, |v| int(v.raw.vcpus.map(u64::from)), "Current vCPU count."),
    total("cputime", Unit::Ns, |v| int(v.raw.cpu.map(|c| c.time_ns)), "Cumulative CPU time (`cpu.time`)."),
    total("vcpu_time", Unit::Ns, |v| vcpu_sum(&v.raw.vcpu_times_ns),
        "`vcpu.N.time` summed over vCPUs; left out where libvirt has no per-vCPU counters."),
    total("vcpu_delay", Unit::Ns, |v| vcpu_sum(&v.raw.vcpu_delays_ns),
        "`vcpu.N.delay` summed over vCPUs; left out where libvirt does not report it."),
    vm("state", TOT, I, Unit::None, |v| Some(Value::Signed(i64::from(v.raw.state.code()))),
        "libvirt's domain state code (1 running, 3 paused, 5 shut off, 6 crashed).")
        .gauge("state"),
    // vm_jobs
    job("type", S, Unit::None, |j| Some(Value::Str(j.kind.as_str())),
        "bounded or unbounded while the job runs; on the final line completed, failed, cancelled, or ended (libvirt kept no outcome: the last values seen)."),
    job("operation", S, Unit::None, |j| Some(Value::Str(j.operation.as_str())),
        "dump, save, restore, outgoing_migration, incoming_migration, snapshot, snapshot_revert, snapshot_delete, backup, start; block jobs block_pull, block_copy, block_commit, active_block_commit, block_backup; or unknown."),
    job("progress_percent", F, Unit::Percent, |j| float(j.percent()),
        "`100 × processed / total` of the data (else memory) libvirt reports; 100 on a completed job."),
    job("elapsed_ms", I, Unit::Ms, |j| int(j.elapsed_ms), "Time since the job started (`time_elapsed`)."),
    job("remaining_ms", I, Unit::Ms, |j| int(j.remaining_ms), "libvirt's estimate of the time left (`time_remaining`)."),
    job("data_processed_bytes", I, Unit::Bytes, |j| int(j.data_processed_bytes),
        "Bytes moved so far (`data_processed`; a block job's `cur`)."),
    job("data_remaining_bytes", I, Unit::Bytes, |j| int(j.data_remaining_bytes), "Bytes still to move (`data_remaining`)."),
    job("data_total_bytes", I, Unit::Bytes, |j| int(j.data_total_bytes), "Bytes the job moves in all (`data_total`; a block job's `end`)."),
    job("memory_processed_bytes", I, Unit::Bytes, |j| int(j.memory_processed_bytes),
        "Guest memory processed (`memory_processed`; what a dump reports)."),
    job("memory_remaining_bytes", I, Unit::Bytes, |j| int(j.memory_remaining_bytes), "Guest memory still to process (`memory_remaining`)."),
    job("memory_total_bytes", I, Unit::Bytes, |j| int(j.memory_total_bytes), "Guest memory the job covers (`memory_total`)."),
    job("memory_dirty_rate_pages_per_sec", I, Unit::PerSec, |j| int(j.memory_dirty_rate_pages_per_sec),
        "Pages the guest dirties per second during a migration (`memory_dirty_rate`)."),
    job("memory_iteration", I, Unit::Count, |j| int(j.memory_iteration), "The migration's pass over guest memory (`memory_iteration`)."),
    job("downtime_ms", I, Unit::Ms, |j| int(j.downtime_ms),
        "Expected downtime while a migration runs; the actual one on its final line (`downtime`)."),
    job("bandwidth_bytes_per_sec", F, Unit::BytesPerSec, |j| float(j.bandwidth_bytes_per_sec),
        "libvirt's transfer rate (`memory_bps + disk_bps`, a migration) where it reports one, else Δprocessed / Δt between two readings (a dump, a block job)."),
];

/// The metrics of one measurement, in table order.
pub fn of(measurement: Measurement) -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(move |m| m.measurement == measurement)
}

/// The README table: one row per metric (`VMPULSE_BLESS=1 cargo test --lib schema` rewrites it).
pub fn readme_table() -> String {
    let mut o = String::from(
        "| measurement | field | type | unit | for | `/vms` key, Prometheus | definition |\n|---|---|---|---|---|---|---|\n",
    );
    for m in METRICS {
        let unit = if m.unit == Unit::None {
            ""
        } else {
            m.unit.as_str()
        };
        let mut elsewhere = Vec::new();
        if m.in_vm_record() && m.api_name() != m.name {
            elsewhere.push(format!("`{}`", m.api_name()));
        }
        if let Some(p) = m.prometheus_name() {
            elsewhere.push(format!("`{p}`"));
        }
        o.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} | {} | {} |\n",
            m.measurement.as_str(),
            m.name,
            m.ty.as_str(),
            unit,
            m.read.applies_to(),
            elsewhere.join(", "),
            m.help.replace('|', "\\|")
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_table_is_generated_from_the_table() {
        crate::fixtures::generated::block(
            "README.md",
            "metric-table",
            &readme_table(),
            "cargo test --lib schema",
        );
    }

    #[test]
    fn one_name_per_measurement_and_prometheus_names_unique() {
        for m in Measurement::ALL {
            let mut names: Vec<_> = of(m).map(|x| x.name).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "duplicate field in {}", m.as_str());
        }
        let mut prom: Vec<String> = METRICS.iter().filter_map(|m| m.prometheus_name()).collect();
        let n = prom.len();
        prom.sort();
        prom.dedup();
        assert_eq!(prom.len(), n);
        let mut api: Vec<_> = METRICS
            .iter()
            .filter(|m| m.in_vm_record())
            .map(|m| m.api_name())
            .collect();
        let n = api.len();
        api.sort_unstable();
        api.dedup();
        assert_eq!(api.len(), n, "two /vms values share a key");
    }

    #[test]
    fn device_metrics_live_in_vm_devices_and_rates_in_vm_features() {
        for m in METRICS {
            match m.read {
                Read::Disk(_) | Read::Nic(_) => {
                    assert_eq!(m.measurement, Measurement::VmDevices, "{}", m.name)
                }
                Read::Rates(_) => assert_eq!(m.measurement, Measurement::VmFeatures, "{}", m.name),
                Read::Job(_) => assert_eq!(m.measurement, Measurement::VmJobs, "{}", m.name),
                _ => assert!(m.per_vm()),
            }
            assert!(!m.help.is_empty(), "{} has no description", m.name);
        }
    }
}
