//! Plain data shared by the collector, the writer and the frontends.
//!
//! Nothing here does I/O. The collector fills [`RawDomain`]s from libvirt,
//! `collector::derive` turns consecutive raw samples into [`Derived`] values,
//! and the engine publishes an owned [`Snapshot`] after every cycle through a
//! `tokio::sync::watch` channel. The TUI and headless mode only read snapshots.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

/// libvirt's `virDomainState`, kept as the numeric code libvirt uses so that
/// `vm_totals.state` can carry the integer unchanged.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DomainState {
    NoState,
    Running,
    Blocked,
    Paused,
    Shutdown,
    Shutoff,
    Crashed,
    PmSuspended,
    /// A code newer than this build knows about.
    Other(i32),
}

impl DomainState {
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => Self::NoState,
            1 => Self::Running,
            2 => Self::Blocked,
            3 => Self::Paused,
            4 => Self::Shutdown,
            5 => Self::Shutoff,
            6 => Self::Crashed,
            7 => Self::PmSuspended,
            other => Self::Other(other),
        }
    }

    pub fn code(self) -> i32 {
        match self {
            Self::NoState => 0,
            Self::Running => 1,
            Self::Blocked => 2,
            Self::Paused => 3,
            Self::Shutdown => 4,
            Self::Shutoff => 5,
            Self::Crashed => 6,
            Self::PmSuspended => 7,
            Self::Other(c) => c,
        }
    }

    /// The word `virsh domstate` prints, used for `vm_metrics.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoState => "nostate",
            Self::Running => "running",
            Self::Blocked => "blocked",
            Self::Paused => "paused",
            Self::Shutdown => "shutdown",
            Self::Shutoff => "shutoff",
            Self::Crashed => "crashed",
            Self::PmSuspended => "pmsuspended",
            Self::Other(_) => "unknown",
        }
    }

    /// Whether the guest is executing or could be (running, blocked).
    /// Paused guests are active (libvirt still reports their stats) but not running.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running | Self::Blocked)
    }

    /// Whether libvirt's counters belong to the guest. For shut-off and
    /// crashed domains `cpu.time` is libvirtd's own CPU time, so no derived
    /// value may be computed from them.
    pub fn has_guest_counters(self) -> bool {
        matches!(
            self,
            Self::Running | Self::Blocked | Self::Paused | Self::PmSuspended
        )
    }
}

/// Cumulative CPU time, nanoseconds (`cpu.time`, `cpu.user`, `cpu.system`).
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub time_ns: u64,
    pub user_ns: Option<u64>,
    pub system_ns: Option<u64>,
}

/// `balloon.*` / `virDomainMemoryStats`, all KiB except the fault counters.
/// Every field is optional: what the guest does not report stays `None`.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub struct BalloonStats {
    /// Current balloon size (`balloon.current`, memory stat `actual`).
    pub current_kib: Option<u64>,
    /// Maximum the balloon can grow to (`balloon.maximum`).
    pub maximum_kib: Option<u64>,
    pub swap_in_kib: Option<u64>,
    pub swap_out_kib: Option<u64>,
    pub major_fault: Option<u64>,
    pub minor_fault: Option<u64>,
    /// Guest MemFree.
    pub unused_kib: Option<u64>,
    /// Guest MemTotal.
    pub available_kib: Option<u64>,
    /// Guest MemAvailable.
    pub usable_kib: Option<u64>,
    /// Resident set size of the QEMU process.
    pub rss_kib: Option<u64>,
    pub disk_caches_kib: Option<u64>,
    /// Guest timestamp of the last stats update, seconds.
    pub last_update: Option<u64>,
}

/// One virtual NIC's cumulative counters (`net.N.*` / `virDomainInterfaceStats`).
/// Byte counters are required (a NIC without them is left out); the others are
/// `None` where libvirt does not report them (never written as 0).
#[derive(Debug, Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
pub struct NicStats {
    /// Host-side device name (tap name or MAC when no name is known).
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub rx_drops: Option<u64>,
    pub tx_bytes: u64,
    pub tx_packets: Option<u64>,
    pub tx_errors: Option<u64>,
    pub tx_drops: Option<u64>,
}

/// One virtual disk's cumulative counters (`block.N.*` / `virDomainBlockStats`).
#[derive(Debug, Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Guest target name, e.g. `vda`.
    pub name: String,
    /// Backing file or device, when libvirt reports it.
    pub path: Option<String>,
    /// Request counters: `None` where libvirt does not report them.
    pub rd_reqs: Option<u64>,
    pub rd_bytes: u64,
    pub wr_reqs: Option<u64>,
    pub wr_bytes: u64,
    pub fl_reqs: Option<u64>,
    /// Cumulative time spent on read, write and flush requests, ns
    /// (`block.N.rd.times`, `wr.times`, `fl.times`); `None` where not reported.
    #[serde(default)]
    pub rd_times_ns: Option<u64>,
    #[serde(default)]
    pub wr_times_ns: Option<u64>,
    #[serde(default)]
    pub fl_times_ns: Option<u64>,
    /// Error count; only the per-domain call reports it (`None` from the bulk call).
    pub errors: Option<u64>,
    pub allocation: Option<u64>,
    pub capacity: Option<u64>,
    pub physical: Option<u64>,
}

/// Everything read about one domain in one cycle, before any derivation.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct RawDomain {
    /// Identity across restarts.
    pub uuid: String,
    /// libvirt's runtime ID; `None` for inactive domains (libvirt says -1).
    pub id: Option<u32>,
    pub name: String,
    pub state: DomainState,
    /// libvirt's state reason code (meaning depends on `state`).
    pub state_reason: i32,
    /// Current vCPU count.
    pub vcpus: Option<u32>,
    /// Maximum memory allocation, KiB (`info().max_mem`).
    pub max_mem_kib: Option<u64>,
    /// Current memory allocation, KiB (`info().memory`).
    pub cur_mem_kib: Option<u64>,
    pub cpu: Option<CpuTimes>,
    pub balloon: BalloonStats,
    /// Per-vCPU cumulative time, ns (`vcpu.N.time`), indexed by vCPU number.
    /// Empty where libvirt does not report it (test driver, older libvirt).
    pub vcpu_times_ns: Vec<u64>,
    /// Per-vCPU cumulative time runnable but waiting for a host CPU, ns
    /// (`vcpu.N.delay`, libvirt 6.0 and later on Linux): steal as the guest sees it.
    /// Empty where libvirt does not report it.
    pub vcpu_delays_ns: Vec<u64>,
    /// Whether libvirt could not query the QEMU monitor for this domain this
    /// cycle (another call holds it: QEMU hung or very slow); the groups that
    /// need the monitor (balloon details, block) are then missing.
    pub monitor_stuck: Option<Duration>,
    pub nics: Vec<NicStats>,
    pub disks: Vec<DiskStats>,
    /// Tags read from the domain's `<metadata>` (`collector.metadata_tags`), in the
    /// order of that setting; a tag whose value is missing is left out.
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    /// Background jobs in flight (a domain job such as a dump, save or
    /// migration, and block jobs), and once, after a job ended, its final
    /// reading. Empty when none was seen (jobs are looked for on a bounded
    /// rotation, see `collector::jobs`).
    #[serde(default)]
    pub jobs: Vec<DomainJob>,
    /// Monotonic instant the sample was taken; Δt is measured between these.
    /// Meaningless in another process: a snapshot read from the control
    /// socket gets the instant it arrived.
    #[serde(skip, default = "Instant::now")]
    pub mono: Instant,
    /// Wall-clock time of the sample in ns since the Unix epoch; line timestamps.
    pub wall_ns: i64,
}

impl RawDomain {
    /// A domain before any reading: identity only, state unknown, no counters.
    pub fn identity(uuid: &str, id: Option<u32>, name: &str, mono: Instant, wall_ns: i64) -> Self {
        Self {
            uuid: uuid.to_string(),
            id,
            name: name.to_string(),
            state: DomainState::NoState,
            state_reason: 0,
            vcpus: None,
            max_mem_kib: None,
            cur_mem_kib: None,
            cpu: None,
            balloon: BalloonStats::default(),
            vcpu_times_ns: Vec::new(),
            vcpu_delays_ns: Vec::new(),
            monitor_stuck: None,
            nics: Vec::new(),
            disks: Vec::new(),
            tags: Vec::new(),
            jobs: Vec::new(),
            mono,
            wall_ns,
        }
    }
}

/// Where a job stands: libvirt's `virDomainJobType`, plus `Ended` for a job
/// that went away without libvirt keeping its outcome.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobKind {
    /// Running, with a known amount of work (progress can be computed).
    #[default]
    Bounded,
    /// Running, with no known end.
    Unbounded,
    /// The final reading: finished successfully.
    Completed,
    Failed,
    Cancelled,
    /// The final reading when libvirt kept no outcome: the last values seen.
    Ended,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bounded => "bounded",
            Self::Unbounded => "unbounded",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Ended => "ended",
        }
    }

    /// Whether the job is still running (not a final reading).
    pub fn running(self) -> bool {
        matches!(self, Self::Bounded | Self::Unbounded)
    }
}

/// What a job does: libvirt's `virDomainJobOperation` for domain jobs,
/// `virDomainBlockJobType` for block jobs.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq, Eq)]
pub enum JobOperation {
    #[default]
    Unknown,
    Start,
    Save,
    Restore,
    IncomingMigration,
    OutgoingMigration,
    Snapshot,
    SnapshotRevert,
    Dump,
    Backup,
    SnapshotDelete,
    BlockPull,
    BlockCopy,
    BlockCommit,
    ActiveBlockCommit,
    BlockBackup,
}

impl JobOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Start => "start",
            Self::Save => "save",
            Self::Restore => "restore",
            Self::IncomingMigration => "incoming_migration",
            Self::OutgoingMigration => "outgoing_migration",
            Self::Snapshot => "snapshot",
            Self::SnapshotRevert => "snapshot_revert",
            Self::Dump => "dump",
            Self::Backup => "backup",
            Self::SnapshotDelete => "snapshot_delete",
            Self::BlockPull => "block_pull",
            Self::BlockCopy => "block_copy",
            Self::BlockCommit => "block_commit",
            Self::ActiveBlockCommit => "active_block_commit",
            Self::BlockBackup => "block_backup",
        }
    }

    /// The card badge's word: `DUMP`, `MIGRATE`, `COPY vda`...
    pub fn badge(self) -> &'static str {
        match self {
            Self::Unknown => "JOB",
            Self::Start => "START",
            Self::Save => "SAVE",
            Self::Restore => "RESTORE",
            Self::IncomingMigration => "MIGRATE IN",
            Self::OutgoingMigration => "MIGRATE",
            Self::Snapshot => "SNAPSHOT",
            Self::SnapshotRevert => "REVERT",
            Self::Dump => "DUMP",
            Self::Backup => "BACKUP",
            Self::SnapshotDelete => "SNAP DEL",
            Self::BlockPull => "PULL",
            Self::BlockCopy => "COPY",
            Self::BlockCommit => "COMMIT",
            Self::ActiveBlockCommit => "COMMIT",
            Self::BlockBackup => "BACKUP",
        }
    }
}

/// One background job's progress as libvirt reports it
/// (`virDomainGetJobStats`, `virDomainGetBlockJobInfo`); `None` where not reported.
#[derive(Debug, Serialize, Deserialize, Clone, Default, PartialEq)]
pub struct DomainJob {
    pub kind: JobKind,
    pub operation: JobOperation,
    /// The disk (guest target) of a block job; `None` for a domain job.
    pub disk: Option<String>,
    pub elapsed_ms: Option<u64>,
    /// libvirt's estimate of the time left.
    pub remaining_ms: Option<u64>,
    /// Everything the job moves (migration: memory + disks).
    pub data_processed_bytes: Option<u64>,
    pub data_remaining_bytes: Option<u64>,
    pub data_total_bytes: Option<u64>,
    /// Guest memory (a dump reports only these).
    pub memory_processed_bytes: Option<u64>,
    pub memory_remaining_bytes: Option<u64>,
    pub memory_total_bytes: Option<u64>,
    /// Pages the guest dirties per second (migration).
    pub memory_dirty_rate_pages_per_sec: Option<u64>,
    /// Migration pass over memory.
    pub memory_iteration: Option<u64>,
    /// Expected downtime while it runs; the actual one on the final reading (ms).
    pub downtime_ms: Option<u64>,
    /// libvirt's transfer rate (memory + disk bandwidth) where it reports one,
    /// else processed bytes over time between two readings.
    pub bandwidth_bytes_per_sec: Option<f64>,
    /// The failure libvirt reported for a failed job.
    pub error: Option<String>,
}

impl DomainJob {
    /// `(processed, total)` of the first pair libvirt reports: data, else memory.
    pub fn progress_bytes(&self) -> Option<(u64, u64)> {
        let pair = |p: Option<u64>, t: Option<u64>| p.zip(t).filter(|(_, t)| *t > 0);
        pair(self.data_processed_bytes, self.data_total_bytes)
            .or_else(|| pair(self.memory_processed_bytes, self.memory_total_bytes))
    }

    /// `100 × processed / total`, clamped to 0..100; 100 for a completed job.
    pub fn percent(&self) -> Option<f64> {
        if self.kind == JobKind::Completed {
            return Some(100.0);
        }
        self.progress_bytes()
            .map(|(p, t)| (100.0 * p as f64 / t as f64).clamp(0.0, 100.0))
    }
}

/// Which reading `memory_used_kb` came from (best first).
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum MemSource {
    /// `balloon.available − balloon.usable` (guest MemTotal − MemAvailable).
    AvailableMinusUsable,
    /// `balloon.current − balloon.unused`.
    CurrentMinusUnused,
    /// `balloon.rss` (host view of the QEMU process).
    Rss,
    /// The current allocation: the guest reports nothing better.
    Allocation,
}

impl MemSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AvailableMinusUsable => "available-usable",
            Self::CurrentMinusUnused => "current-unused",
            Self::Rss => "rss",
            Self::Allocation => "allocation",
        }
    }
}

/// Memory used by a guest and what it is measured against.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq)]
pub struct MemoryUse {
    pub used_kb: u64,
    pub source: MemSource,
    /// The total of the same source: `balloon.available` for
    /// available-usable, the balloon's current size for current-unused and rss;
    /// `None` for allocation (nothing was measured).
    pub total_kb: Option<u64>,
    /// `100 × used / total` of the same source. Only `rss` can exceed 100 %
    /// (QEMU's own memory on top of the guest's RAM); [`MemoryUse::over_total`] says so.
    pub percent: Option<f64>,
}

impl MemoryUse {
    /// Whether `percent` is above 100 % (only possible for `rss`).
    pub fn over_total(&self) -> bool {
        self.percent.is_some_and(|p| p > 100.0)
    }
}

/// Throughput of one direction of a device class, per second.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq)]
pub struct Throughput {
    pub bytes_per_sec: f64,
    /// Requests/s for disks, packets/s for NICs; `None` when a device does
    /// not report the counter.
    pub ops_per_sec: Option<f64>,
}

/// Per-device rates over the last interval (keyed by device name).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct DeviceRates {
    pub name: String,
    pub read: Throughput,
    pub write: Throughput,
    /// Disks: this disk's average request latency over the interval (as
    /// [`Derived::disk_latency`], for one disk). NICs: always empty.
    #[serde(default)]
    pub latency: DiskLatency,
}

/// Values that need two samples of the same domain.
/// A rate needs two counter readings; a degree rate of a percentage needs two
/// percentages, hence the `Option`s on the angles of CPU %. `Default` (no interval,
/// no rates) is for fixtures, which name only the values their case is about.
#[derive(Debug, Serialize, Deserialize, Clone, Default, PartialEq)]
pub struct Derived {
    /// Measured between the two samples' monotonic instants, seconds.
    pub dt_secs: f64,
    /// `100 × Δcpu.time_ns / (Δt_ns × vcpus)`, clamped to 0..100: everything
    /// the VM cost the host (vCPUs plus QEMU's own threads).
    pub cpu_percent: Option<f64>,
    /// Guest, overhead and steal split of the VM's CPU (see [`CpuSplit`]).
    pub cpu_split: CpuSplit,
    /// Slope of CPU % in percentage points per second, as degrees.
    /// Needs the previous interval's CPU % too (from the third sample on).
    pub cpu_angle_deg: Option<f64>,
    /// Slope of memory % in percentage points per second, as degrees.
    pub memory_percent_angle_deg: Option<f64>,
    /// Seed-compatible: `Δmemory_used_kb / Δt`.
    pub memory_rate_kb_per_sec: f64,
    /// Seed-compatible: `degrees(atan(memory_rate_kb_per_sec))`.
    pub memory_angle_deg: f64,
    /// Disk totals over all disks: read = rd, write = wr.
    pub disk_read: Throughput,
    pub disk_write: Throughput,
    /// Network totals over all NICs: read = rx, write = tx.
    pub net_rx: Throughput,
    pub net_tx: Throughput,
    /// `degrees(atan(throughput / unit))` for disk read+write, read, write, rx, tx.
    pub disk_angle_deg: f64,
    pub disk_read_angle_deg: f64,
    pub disk_write_angle_deg: f64,
    pub net_rx_angle_deg: f64,
    pub net_tx_angle_deg: f64,
    /// Average time per read, write and flush request completed in the
    /// interval, ms: `ΣΔtimes / ΣΔreqs` over the disks that report both;
    /// `None` when no such request completed.
    #[serde(default)]
    pub disk_latency: DiskLatency,
    /// Packets dropped per second, received and sent, summed over the NICs
    /// present in both samples that report both drop counters; `None` when none does.
    #[serde(default)]
    pub net_drops_per_sec: Option<f64>,
    pub disks: Vec<DeviceRates>,
    /// NIC read = rx, write = tx.
    pub nics: Vec<DeviceRates>,
    /// Per-vCPU utilisation, percent of one vCPU, when `vcpu.N.time` is known.
    pub vcpu_percent: Vec<f64>,
    /// Per-vCPU steal, percent of one vCPU, when `vcpu.N.delay` is known.
    pub vcpu_steal_percent: Vec<f64>,
}

/// Average disk request latency over one interval, milliseconds.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq)]
pub struct DiskLatency {
    pub read_ms: Option<f64>,
    pub write_ms: Option<f64>,
    pub flush_ms: Option<f64>,
}

impl DiskLatency {
    /// The slower of read and write: the one figure the card, the table and the
    /// LAT sort show ("which VM waits on its disk"); `None` when neither completed.
    pub fn worst_rw_ms(&self) -> Option<f64> {
        match (self.read_ms, self.write_ms) {
            (Some(r), Some(w)) => Some(r.max(w)),
            (r, w) => r.or(w),
        }
    }
}

/// The VM's CPU as three numbers, each as percent of its vCPUs' capacity
/// (`Δt × vcpus`). `None` where libvirt reports no per-vCPU counters.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, Default, PartialEq)]
pub struct CpuSplit {
    /// `100 × ΣΔvcpu.N.time / (Δt × vcpus)`: what `top` inside the guest shows.
    pub guest: Option<f64>,
    /// `100 × max(0, Δcpu.time − ΣΔvcpu.N.time) / (Δt × vcpus)`: QEMU's own
    /// threads (emulator, I/O), charged to the VM on the host.
    pub overhead: Option<f64>,
    /// `100 × ΣΔvcpu.N.delay / (Δt × vcpus)`: time the guest wanted a CPU and
    /// did not get one.
    pub steal: Option<f64>,
}

/// One VM as the frontends and the line-protocol encoder see it.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct VmSnapshot {
    pub raw: RawDomain,
    /// Memory use computed from this sample alone (`None` for inactive domains).
    pub memory: Option<MemoryUse>,
    /// `None` on the first sample of a domain, after a counter reset, and for
    /// inactive domains.
    pub derived: Option<Derived>,
}

impl VmSnapshot {
    pub fn uuid(&self) -> &str {
        &self.raw.uuid
    }
    pub fn name(&self) -> &str {
        &self.raw.name
    }
}

/// `1 VM`, `3 VMs`, `0 VMs`: for every frontend.
pub fn vm_count(n: usize) -> String {
    if n == 1 {
        "1 VM".into()
    } else {
        format!("{n} VMs")
    }
}

/// Health of the libvirt connection as the collector last saw it.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub enum SourceState {
    /// Not tried yet.
    Connecting,
    Connected,
    /// Last attempt failed; the message names the URI and what libvirt said.
    Failed(String),
}

/// Collector counters (the old collector's names kept where it had them).
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct CollectorStats {
    pub started_at: SystemTime,
    pub total_collections: u64,
    pub total_errors: u64,
    /// Domains or devices skipped because one call failed or was too slow.
    pub skipped_items: u64,
    pub last_collection_time: Option<SystemTime>,
    pub last_collection_ms: Option<f64>,
    pub vms_monitored: usize,
    /// Whether the last cycle used `virConnectGetAllDomainStats`.
    pub used_bulk: bool,
    /// VMs whose QEMU monitor was held by another call in the last cycle.
    pub monitor_stuck_vms: usize,
    /// Sum over cycles of `monitor_stuck_vms` (VM-cycles without monitor data).
    pub monitor_stuck_samples: u64,
    /// libvirt calls given up while stuck (a hung QEMU monitor) and still
    /// pending: each holds one of the poller's connections, and a libvirtd
    /// worker, until libvirt returns (at most `collector::poll::MAX_CONNECTIONS`).
    #[serde(default)]
    pub libvirt_calls_held: usize,
    pub last_error: Option<String>,
}

/// What the writer is doing, for the status line and the header alert.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub enum WriterState {
    /// No InfluxDB URL and no `--output`: the hint says which setting turns it on.
    Off { hint: String },
    /// Writing line protocol to a file or stdout.
    Output { target: String },
    /// Last write succeeded (or nothing has been written yet).
    Ok,
    /// Retrying after a transient failure.
    Retrying,
    /// 401/403: the token was rejected; data is kept, retries slow down.
    AuthFailed,
    /// 404 database not found, or another error needing the operator.
    Failing,
}

/// Writer counters, published with every snapshot.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct WriterStats {
    pub state: WriterState,
    /// Endpoint without credentials, e.g. `http://127.0.0.1:8181 (v3, db=vmstats)`.
    pub endpoint: Option<String>,
    pub lines_queued: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub lines_written: u64,
    pub lines_dropped: u64,
    pub lines_rejected: u64,
    pub write_retries: u64,
    pub requests_in_flight: usize,
    /// Requests the writer keeps in flight at most now: `influx.max_in_flight`
    /// while the server keeps up, more while its acknowledgements are slow.
    #[serde(default)]
    pub requests_in_flight_limit: usize,
    /// Lines per batch now: `influx.batch_max_lines`, more while acknowledgements are slow.
    #[serde(default)]
    pub batch_lines_limit: usize,
    /// Live lines on the wire (replayed ones are still counted in the spool).
    #[serde(default)]
    pub lines_in_flight: usize,
    /// Lines found in the spool at start (left by an earlier run or a
    /// replaced writer): they enter the books here, not in `lines_queued`.
    #[serde(default)]
    pub lines_recovered: u64,
    pub last_write_ok: Option<SystemTime>,
    pub last_error: Option<String>,
    /// When `last_error` happened (older than `last_write_ok`: writes succeed since).
    #[serde(default)]
    pub last_error_at: Option<SystemTime>,
    /// The on-disk spool; `None` when the writer runs without one.
    pub spool: Option<SpoolStats>,
}

/// Whether lines that cannot be delivered go to disk.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub enum SpoolState {
    /// Undeliverable lines are appended to the spool.
    Active,
    /// Writing to the spool failed (disk full...): memory only until it works again.
    Unavailable { reason: String },
    /// No spool for this run (locked by another process, or unusable), memory only.
    Off { reason: String },
}

/// Spool counters, published with every snapshot.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct SpoolStats {
    pub dir: String,
    pub state: SpoolState,
    /// Bytes in segment files not yet delivered.
    pub bytes: u64,
    /// Lines in the spool not yet delivered.
    pub lines: u64,
    /// When the oldest line still in the spool was spooled.
    pub oldest: Option<SystemTime>,
    /// Lines read back from the spool and sent.
    pub lines_replayed: u64,
    /// Segments deleted unsent because the spool reached its size limit.
    pub segments_dropped: u64,
    /// Corrupt or torn records found (at start or on replay), skipped.
    pub corrupt_skipped: u64,
    /// Lines found in the spool when it was opened (left by an earlier run).
    #[serde(default)]
    pub lines_recovered: u64,
    /// Lines that left the spool unsent (size limit, corrupt records, files
    /// deleted); included in the writer's `lines_dropped`.
    #[serde(default)]
    pub lines_dropped: u64,
}

impl SpoolStats {
    /// A spool in `dir` with nothing in it and every counter at zero.
    pub fn empty(dir: String, state: SpoolState) -> Self {
        Self {
            dir,
            state,
            bytes: 0,
            lines: 0,
            oldest: None,
            lines_replayed: 0,
            segments_dropped: 0,
            corrupt_skipped: 0,
            lines_recovered: 0,
            lines_dropped: 0,
        }
    }
}

impl WriterStats {
    /// Lines in the spool now (0 without one).
    pub fn spooled(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.lines)
    }

    /// Every line is accounted for when this is 0:
    /// `lines_queued + lines_recovered = lines_written + lines_rejected +
    /// lines_dropped + spooled + queue_depth + lines_in_flight`. Positive:
    /// lines gone without a counter. Exact when the writer is idle (final
    /// counters, `settled_stats`); a live reading may be off by a batch
    /// moving between two counters.
    pub fn unaccounted(&self) -> i64 {
        let came = self.lines_queued + self.lines_recovered;
        let went = self.lines_written
            + self.lines_rejected
            + self.lines_dropped
            + self.spooled()
            + self.queue_depth as u64
            + self.lines_in_flight as u64;
        came as i64 - went as i64
    }

    pub fn off(hint: impl Into<String>) -> Self {
        Self {
            state: WriterState::Off { hint: hint.into() },
            endpoint: None,
            lines_queued: 0,
            queue_depth: 0,
            queue_capacity: 0,
            lines_written: 0,
            lines_dropped: 0,
            lines_rejected: 0,
            write_retries: 0,
            requests_in_flight: 0,
            requests_in_flight_limit: 0,
            batch_lines_limit: 0,
            lines_in_flight: 0,
            lines_recovered: 0,
            last_write_ok: None,
            last_error: None,
            last_error_at: None,
            spool: None,
        }
    }
}

/// The hypervisor itself, read every `collector.host_interval`, not every cycle
/// (`virNodeGetInfo`, `virNodeGetMemoryStats`, `virNodeGetCellsFreeMemory`,
/// `virNodeGetFreePages`, `virConnectGetLibVersion`; huge-page totals from the
/// capabilities XML). A figure the driver does not offer is absent, not zero.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct HostInfo {
    pub cpus: u32,
    pub memory_total_kib: u64,
    /// Total minus free, buffers and cache; `None` where the driver has no memory stats.
    pub memory_used_kib: Option<u64>,
    /// e.g. `9.0.0`.
    pub libvirt_version: String,
    /// Free memory of each NUMA node, KiB, in node order; empty when the driver does not say.
    #[serde(default)]
    pub numa_free_kib: Vec<u64>,
    /// Huge pages per page size (every size above the smallest), summed over NUMA nodes.
    #[serde(default)]
    pub huge_pages: Vec<HugePages>,
    /// Wall clock of the node reading, ns since the epoch: the `hypervisor`
    /// points' timestamp, and how the encoder writes one point per reading.
    #[serde(default)]
    pub read_at_ns: i64,
}

/// Huge pages of one size on the host.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq, Eq)]
pub struct HugePages {
    pub size_kib: u64,
    /// Pages reserved (capabilities XML); `None` when the driver does not list them.
    pub total: Option<u64>,
    pub free: u64,
}

/// An alert's level: Glances' three, in rising order.
#[derive(Debug, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertLevel {
    Careful,
    Warning,
    Critical,
}

impl AlertLevel {
    /// Rising order; index 0 is `careful` as in `config::alerts::LEVEL_KEYS`.
    pub const ALL: [Self; 3] = [Self::Careful, Self::Warning, Self::Critical];

    /// `careful`, `warning`, `critical`: the `level` of `vm_alerts` and `/alerts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Careful => "careful",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One alert on one VM's metric, active or (with `cleared`) recently over.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Alert {
    pub vm: String,
    pub uuid: String,
    /// The metric table's name, or `monitor_stuck` / `state`.
    pub metric: String,
    pub level: AlertLevel,
    /// The latest value (for `state`, libvirt's state code).
    pub value: f64,
    /// The threshold of `level`.
    pub threshold: f64,
    /// When the condition began (the level held `alerts.min_duration` from here).
    pub since: SystemTime,
    /// The worst value and level while the alert was active.
    pub peak: f64,
    pub peak_level: AlertLevel,
    /// When it cleared; `None` while active.
    pub cleared: Option<SystemTime>,
}

/// The alerts the engine holds: active ones (worst first) and the last cleared.
#[derive(Debug, Serialize, Deserialize, Clone, Default, PartialEq)]
pub struct AlertBoard {
    pub active: Vec<Alert>,
    /// Most recently cleared first, a bounded number.
    pub recent: Vec<Alert>,
}

impl AlertBoard {
    /// The level of the active alert on this VM's metric, if any.
    pub fn level_of(&self, uuid: &str, metric: &str) -> Option<AlertLevel> {
        self.active
            .iter()
            .find(|a| a.uuid == uuid && a.metric == metric)
            .map(|a| a.level)
    }

    /// Active alerts per level, careful to critical.
    pub fn counts(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for a in &self.active {
            n[a.level as usize] += 1;
        }
        n
    }
}

/// A snapshot's VMs: a list that every clone of the snapshot shares (the engine
/// publishes up to a few snapshots per cycle; at 1,000 VMs each deep copy was a few
/// MiB). Reads go through `Deref` to the `Vec`; a write (`DerefMut`) copies the list
/// first if another snapshot still shares it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vms(std::sync::Arc<Vec<VmSnapshot>>);

impl std::ops::Deref for Vms {
    type Target = Vec<VmSnapshot>;

    fn deref(&self) -> &Vec<VmSnapshot> {
        &self.0
    }
}

impl std::ops::DerefMut for Vms {
    fn deref_mut(&mut self) -> &mut Vec<VmSnapshot> {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl From<Vec<VmSnapshot>> for Vms {
    fn from(vms: Vec<VmSnapshot>) -> Self {
        Self(std::sync::Arc::new(vms))
    }
}

impl FromIterator<VmSnapshot> for Vms {
    fn from_iter<I: IntoIterator<Item = VmSnapshot>>(iter: I) -> Self {
        Vec::from_iter(iter).into()
    }
}

impl<'a> IntoIterator for &'a Vms {
    type Item = &'a VmSnapshot;
    type IntoIter = std::slice::Iter<'a, VmSnapshot>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<'a> IntoIterator for &'a mut Vms {
    type Item = &'a mut VmSnapshot;
    type IntoIter = std::slice::IterMut<'a, VmSnapshot>;

    fn into_iter(self) -> Self::IntoIter {
        std::sync::Arc::make_mut(&mut self.0).iter_mut()
    }
}

impl Serialize for Vms {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Vms {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::deserialize(d).map(Self::from)
    }
}

/// Everything a frontend needs to draw one frame. Owned, cheap to share as `Arc`.
#[derive(Debug, Serialize, Deserialize, Clone, PartialEq)]
pub struct Snapshot {
    /// Increments with every published snapshot.
    pub seq: u64,
    /// Increments with every successful collection: frontends that keep
    /// history append one point per collection, not per published snapshot.
    pub collection: u64,
    /// Set while libvirt does not answer: `vms` then holds the last known VMs
    /// (stale, shown greyed) from before this instant.
    pub unreachable_since: Option<SystemTime>,
    /// `None` until the first cycle, or when the driver does not say.
    pub host: Option<HostInfo>,
    pub taken_at: SystemTime,
    pub libvirt_uri: String,
    pub hostname: String,
    pub collecting: bool,
    pub poll_interval: Duration,
    pub source: SourceState,
    /// Sorted by name, then UUID. Shared: the engine publishes a snapshot after
    /// every cycle and every writer-counter refresh, and each copy shares one list.
    pub vms: Vms,
    pub collector: CollectorStats,
    pub writer: WriterStats,
    /// Active and recent alerts (`alert::Tracker`, evaluated by the engine).
    #[serde(default)]
    pub alerts: AlertBoard,
    /// Who produced it; never sent over the control socket.
    #[serde(skip)]
    pub origin: Origin,
}

/// Where a snapshot came from, for the TUI's header.
#[derive(Debug, Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// This process's own engine.
    #[default]
    Local,
    /// A running service, read from its control socket.
    Attached { pid: u32, started_at: SystemTime },
    /// The attached service stopped answering at `since`; the TUI keeps trying.
    Gone { pid: u32, since: SystemTime },
    /// Read back from InfluxDB by `vmpulse fleet` (`endpoint` without credentials):
    /// the newest points of one host; Esc on the list goes back to the host list.
    /// `attach_error`: why the live attach of its `[[fleet.hosts]]` entry failed.
    Database {
        endpoint: String,
        attach_error: Option<String>,
    },
    /// Attached live by `vmpulse fleet` to the control API of `host` (`[[fleet.hosts]]`);
    /// `gone_since` while its stream is broken and the fleet reattaches.
    /// Esc on the list goes back to the host list.
    Live {
        host: String,
        pid: u32,
        started_at: SystemTime,
        gone_since: Option<SystemTime>,
    },
}

impl Origin {
    /// A host opened from `vmpulse fleet`: Esc on its list goes back to the hosts.
    pub fn from_fleet(&self) -> bool {
        matches!(self, Origin::Database { .. } | Origin::Live { .. })
    }
}

impl Snapshot {
    /// An empty snapshot for before the first cycle.
    pub fn empty(libvirt_uri: &str, hostname: &str, poll_interval: Duration) -> Self {
        Self {
            seq: 0,
            collection: 0,
            unreachable_since: None,
            host: None,
            taken_at: SystemTime::now(),
            libvirt_uri: libvirt_uri.to_string(),
            hostname: hostname.to_string(),
            collecting: true,
            poll_interval,
            source: SourceState::Connecting,
            vms: Vms::default(),
            collector: CollectorStats {
                started_at: SystemTime::now(),
                total_collections: 0,
                total_errors: 0,
                skipped_items: 0,
                last_collection_time: None,
                last_collection_ms: None,
                vms_monitored: 0,
                used_bulk: false,
                monitor_stuck_vms: 0,
                monitor_stuck_samples: 0,
                libvirt_calls_held: 0,
                last_error: None,
            },
            writer: WriterStats::off("set INFLUX_URL or --influx-url (or --output FILE|-)"),
            alerts: AlertBoard::default(),
            origin: Origin::Local,
        }
    }
}
