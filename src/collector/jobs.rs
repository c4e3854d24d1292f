//! Jobs in flight: a domain's background job (dump, save, migration, backup,
//! snapshot) from `virDomainGetJobStats`, and block jobs (pull, copy, commit)
//! from `virDomainGetBlockJobInfo`, with one final reading when a job ends.
//!
//! libvirt reports jobs in no bulk call (`virConnectGetAllDomainStats` has no
//! job group) and raises no event when one starts, so finding them costs one
//! call per domain (plus one per disk for block jobs). The calls are cheap when
//! no job runs (libvirtd answers from its own state, without the QEMU monitor),
//! but 1,000 of them a cycle are not, so [`JobTracker`] bounds them: every cycle
//! it reads the domains with a job seen last time and those whose state reason
//! names a job (paused for a migration, save, dump or snapshot), then a rotating
//! share of the others (all of them every [`SWEEP_CYCLES`] cycles) until
//! [`SWEEP_BUDGET`] is spent. A job is thus found within [`SWEEP_CYCLES`] poll
//! intervals of its start and followed every cycle after that.
//! A driver without the calls (the test driver) is asked once.

use std::collections::HashMap;
use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr;
use std::time::{Duration, Instant};

use virt::domain::Domain;
use virt::error::{Error, ErrorNumber};

use super::bulk::{self, Param};
use crate::model::{DomainJob, DomainState, JobKind, JobOperation, RawDomain};

/// Every active domain is checked for a new job at least once in this many cycles.
pub const SWEEP_CYCLES: usize = 10;

/// Time a cycle may spend on the rotating check of domains without a known job.
pub const SWEEP_BUDGET: Duration = Duration::from_millis(20);

/// The domains as the planner sees them. A domain whose QEMU monitor is held
/// counts as inactive: its job calls would wait for the monitor.
pub fn candidates(domains: &[RawDomain]) -> Vec<Candidate<'_>> {
    domains
        .iter()
        .map(|d| Candidate {
            uuid: &d.uuid,
            state: if d.monitor_stuck.is_some() {
                DomainState::NoState
            } else {
                d.state
            },
            reason: d.state_reason,
        })
        .collect()
}

/// How many candidates have a guest to ask (the rotation's share is taken of these).
pub fn active(cands: &[Candidate<'_>]) -> usize {
    cands
        .iter()
        .filter(|c| c.state.has_guest_counters())
        .count()
}

/// One domain as the planner sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub uuid: &'a str,
    pub state: DomainState,
    pub reason: i32,
}

/// Whether the state reason says a domain job runs (paused by a migration,
/// save, dump or snapshot, or in post-copy): checked every cycle. Pure.
pub fn reason_hints_job(state: DomainState, reason: i32) -> bool {
    let r = u32::try_from(reason).unwrap_or(u32::MAX);
    state == DomainState::Paused
        && matches!(
            r,
            virt_sys::VIR_DOMAIN_PAUSED_MIGRATION
                | virt_sys::VIR_DOMAIN_PAUSED_SAVE
                | virt_sys::VIR_DOMAIN_PAUSED_DUMP
                | virt_sys::VIR_DOMAIN_PAUSED_SNAPSHOT
                | virt_sys::VIR_DOMAIN_PAUSED_POSTCOPY
        )
}

/// The cycle's reading order, as indices into `domains` (active ones only):
/// first those with a job seen last time or hinted by their state reason
/// (`Must`), then the rotation from `cursor`, `per_cycle` of the rest
/// (`Sweep`). Pure.
pub fn plan(
    domains: &[Candidate<'_>],
    has_job: impl Fn(&str) -> bool,
    cursor: usize,
    per_cycle: usize,
) -> Vec<(usize, Check)> {
    let active: Vec<usize> = (0..domains.len())
        .filter(|&i| domains[i].state.has_guest_counters())
        .collect();
    let must = |i: usize| {
        let d = &domains[i];
        has_job(d.uuid) || reason_hints_job(d.state, d.reason)
    };
    let mut out: Vec<(usize, Check)> = active
        .iter()
        .filter(|&&i| must(i))
        .map(|&i| (i, Check::Must))
        .collect();
    let rest: Vec<usize> = active.into_iter().filter(|&i| !must(i)).collect();
    if !rest.is_empty() {
        let start = cursor % rest.len();
        out.extend(
            (0..per_cycle.min(rest.len())).map(|k| (rest[(start + k) % rest.len()], Check::Sweep)),
        );
    }
    out
}

/// Why a domain is read this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// A job was seen last cycle, or the state reason names one: always read.
    Must,
    /// Its turn in the rotation: read while the sweep budget lasts.
    Sweep,
}

/// How many of `active` domains the rotation checks per cycle.
pub fn per_cycle(active: usize) -> usize {
    active.div_ceil(SWEEP_CYCLES).max(1)
}

/// A domain job from `virDomainGetJobStats`' type and parameters; `None` for
/// `VIR_DOMAIN_JOB_NONE` (no job). Pure.
pub fn parse_job(kind: i32, params: &[Param]) -> Option<DomainJob> {
    let kind = match u32::try_from(kind).ok()? {
        virt_sys::VIR_DOMAIN_JOB_BOUNDED => JobKind::Bounded,
        virt_sys::VIR_DOMAIN_JOB_UNBOUNDED => JobKind::Unbounded,
        virt_sys::VIR_DOMAIN_JOB_COMPLETED => JobKind::Completed,
        virt_sys::VIR_DOMAIN_JOB_FAILED => JobKind::Failed,
        virt_sys::VIR_DOMAIN_JOB_CANCELLED => JobKind::Cancelled,
        _ => return None,
    };
    let get = |key: &str| params.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let u = |key: &str| get(key).and_then(|v| v.as_u64());
    let bps = match (u("memory_bps"), u("disk_bps")) {
        (None, None) => None,
        (m, d) => Some((m.unwrap_or(0) + d.unwrap_or(0)) as f64),
    };
    Some(DomainJob {
        kind,
        operation: operation(get("operation").and_then(|v| v.as_i32()).unwrap_or(0)),
        disk: None,
        elapsed_ms: u("time_elapsed"),
        remaining_ms: u("time_remaining"),
        data_processed_bytes: u("data_processed"),
        data_remaining_bytes: u("data_remaining"),
        data_total_bytes: u("data_total"),
        memory_processed_bytes: u("memory_processed"),
        memory_remaining_bytes: u("memory_remaining"),
        memory_total_bytes: u("memory_total"),
        memory_dirty_rate_pages_per_sec: u("memory_dirty_rate"),
        memory_iteration: u("memory_iteration"),
        downtime_ms: u("downtime"),
        bandwidth_bytes_per_sec: bps,
        error: get("errmsg").and_then(|v| v.as_str()).map(str::to_owned),
    })
}

fn operation(code: i32) -> JobOperation {
    match u32::try_from(code).unwrap_or(0) {
        virt_sys::VIR_DOMAIN_JOB_OPERATION_START => JobOperation::Start,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_SAVE => JobOperation::Save,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_RESTORE => JobOperation::Restore,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN => JobOperation::IncomingMigration,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT => JobOperation::OutgoingMigration,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_SNAPSHOT => JobOperation::Snapshot,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT => JobOperation::SnapshotRevert,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_DUMP => JobOperation::Dump,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_BACKUP => JobOperation::Backup,
        virt_sys::VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_DELETE => JobOperation::SnapshotDelete,
        _ => JobOperation::Unknown,
    }
}

/// A block job from `virDomainBlockJobInfo` (`cur` of `end` bytes). Its
/// `bandwidth` is the limit set on the job, not a measurement: the rate comes
/// from two readings ([`with_rate`]). Pure.
pub fn block_job(disk: &str, kind: i32, cur: u64, end: u64) -> DomainJob {
    let operation = match u32::try_from(kind).unwrap_or(0) {
        virt_sys::VIR_DOMAIN_BLOCK_JOB_TYPE_PULL => JobOperation::BlockPull,
        virt_sys::VIR_DOMAIN_BLOCK_JOB_TYPE_COPY => JobOperation::BlockCopy,
        virt_sys::VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT => JobOperation::BlockCommit,
        virt_sys::VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT => JobOperation::ActiveBlockCommit,
        virt_sys::VIR_DOMAIN_BLOCK_JOB_TYPE_BACKUP => JobOperation::BlockBackup,
        _ => JobOperation::Unknown,
    };
    DomainJob {
        kind: JobKind::Bounded,
        operation,
        disk: Some(disk.to_string()),
        data_processed_bytes: Some(cur),
        data_remaining_bytes: Some(end.saturating_sub(cur)),
        data_total_bytes: Some(end),
        ..DomainJob::default()
    }
}

/// Whether two readings are the same job (same operation, same disk).
fn same_job(a: &DomainJob, b: &DomainJob) -> bool {
    a.operation == b.operation && a.disk == b.disk
}

/// Fills a missing rate from the bytes processed since the last reading of the
/// same job (a dump reports no bandwidth). Pure.
pub fn with_rate(mut cur: DomainJob, prev: Option<&DomainJob>, dt: Duration) -> DomainJob {
    if cur.bandwidth_bytes_per_sec.is_none() && !dt.is_zero() {
        let done = |j: &DomainJob| j.progress_bytes().map(|(p, _)| p);
        if let (Some(now), Some(before)) = (done(&cur), prev.and_then(done)) {
            if now >= before {
                cur.bandwidth_bytes_per_sec = Some((now - before) as f64 / dt.as_secs_f64());
            }
        }
    }
    cur
}

/// The final reading of a job that is no longer running: libvirt's record of
/// the completed job where it kept one for the same operation, else the last
/// values seen, marked `ended`. Pure.
pub fn final_reading(last: &DomainJob, completed: Option<DomainJob>) -> DomainJob {
    // An older job's record (it ran shorter than this one already had) is not this outcome.
    let fresh = |c: &DomainJob| match (c.elapsed_ms, last.elapsed_ms) {
        (Some(c), Some(l)) => c >= l,
        _ => true,
    };
    match completed {
        Some(c) if !c.kind.running() && same_job(&c, last) && fresh(&c) => DomainJob {
            bandwidth_bytes_per_sec: c.bandwidth_bytes_per_sec.or(last.bandwidth_bytes_per_sec),
            ..c
        },
        _ => DomainJob {
            kind: JobKind::Ended,
            ..last.clone()
        },
    }
}

/// Frees libvirt's typed parameters however we leave [`read_job`].
struct Params(virt_sys::virTypedParameterPtr, c_int);

impl Drop for Params {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by virDomainGetJobStats, freed once, here.
            unsafe { virt_sys::virTypedParamsFree(self.0, self.1) };
        }
    }
}

/// `virDomainGetJobStats(flags)`; `Ok(None)` when no job runs. Blocking.
pub fn read_job(dom: &Domain, flags: u32) -> Result<Option<DomainJob>, Error> {
    let mut kind: c_int = 0;
    let mut params = Params(ptr::null_mut(), 0);
    // SAFETY: dom holds a live domain reference; the out-pointers are valid and
    // libvirt allocates the array that `Params` frees.
    let rc = unsafe {
        virt_sys::virDomainGetJobStats(dom.as_ptr(), &mut kind, &mut params.0, &mut params.1, flags)
    };
    if rc < 0 {
        return Err(Error::last_error());
    }
    // SAFETY: libvirt returned `params.1` parameters at `params.0`.
    let copied = unsafe { bulk::copy_params(params.0, params.1) };
    Ok(parse_job(kind, &copied))
}

/// `virDomainGetBlockJobInfo` for one disk, in bytes; `Ok(None)` without a job. Blocking.
pub fn read_block_job(dom: &Domain, disk: &str) -> Result<Option<DomainJob>, Error> {
    let Ok(c_disk) = CString::new(disk) else {
        return Ok(None);
    };
    let mut info = virt_sys::virDomainBlockJobInfo {
        type_: 0,
        bandwidth: 0,
        cur: 0,
        end: 0,
    };
    // SAFETY: dom holds a live domain reference; `info` is a valid out-pointer.
    let rc =
        unsafe { virt_sys::virDomainGetBlockJobInfo(dom.as_ptr(), c_disk.as_ptr(), &mut info, 0) };
    match rc {
        r if r < 0 => Err(Error::last_error()),
        0 => Ok(None),
        _ => Ok(Some(block_job(disk, info.type_, info.cur, info.end))),
    }
}

fn no_support(e: &Error) -> bool {
    e.code().is(ErrorNumber::NoSupport)
}

/// What the tracker remembers of one domain: the jobs seen and when.
#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    jobs: Vec<DomainJob>,
}

/// Finds and follows jobs across cycles (see the module header).
#[derive(Debug, Default)]
pub struct JobTracker {
    /// `Some(false)` once libvirt said the driver lacks the call.
    domain_jobs: Option<bool>,
    block_jobs: Option<bool>,
    cursor: usize,
    seen: HashMap<String, Seen>,
    /// Calls made in the last cycle (for the bench and the logs).
    pub last_calls: usize,
}

impl JobTracker {
    /// Whether [`update`](Self::update) may make a call: not once libvirt said
    /// the driver has neither (the caller then skips building its lookups).
    pub fn may_call(&self) -> bool {
        self.domain_jobs != Some(false) || self.block_jobs != Some(false)
    }

    /// Reads the cycle's jobs into `domains[i].jobs`; `handle(uuid)` gives the
    /// domain to call. Stops starting calls at `deadline`. Blocking.
    pub fn update<'a>(
        &mut self,
        domains: &mut [RawDomain],
        handle: impl Fn(&str) -> Option<&'a Domain>,
        deadline: Instant,
    ) {
        self.last_calls = 0;
        if !self.may_call() {
            return;
        }
        let cands = candidates(domains);
        let order = plan(
            &cands,
            |u| self.seen.contains_key(u),
            self.cursor,
            per_cycle(active(&cands)),
        );
        drop(cands);
        let sweep_until = Instant::now() + SWEEP_BUDGET;
        let mut read: Vec<(usize, Vec<DomainJob>)> = Vec::new();
        for (i, check) in order {
            let now = Instant::now();
            if now >= deadline || (check == Check::Sweep && now >= sweep_until) {
                break;
            }
            if check == Check::Sweep {
                self.cursor = self.cursor.wrapping_add(1);
            }
            let Some(dom) = handle(&domains[i].uuid) else {
                continue;
            };
            if let Some(jobs) = self.read_domain(dom, &domains[i]) {
                read.push((i, jobs));
            }
        }
        let now = Instant::now();
        for (i, jobs) in read {
            let d = &mut domains[i];
            let prev = self.seen.remove(&d.uuid);
            d.jobs = self.merge(prev, jobs, now, handle(&d.uuid));
            let running: Vec<DomainJob> = d
                .jobs
                .iter()
                .filter(|j| j.kind.running())
                .cloned()
                .collect();
            if !running.is_empty() {
                self.seen.insert(
                    d.uuid.clone(),
                    Seen {
                        at: now,
                        jobs: running,
                    },
                );
            }
        }
        self.end_jobs_of_stopped_domains(domains, &handle);
    }

    /// This cycle's jobs of one domain: running ones with their rate, and a
    /// final reading for each job seen last time that is gone.
    fn merge(
        &mut self,
        prev: Option<Seen>,
        jobs: Vec<DomainJob>,
        now: Instant,
        dom: Option<&Domain>,
    ) -> Vec<DomainJob> {
        let Some(prev) = prev else { return jobs };
        let dt = now.saturating_duration_since(prev.at);
        let mut out: Vec<DomainJob> = jobs
            .into_iter()
            .map(|j| {
                let before = prev.jobs.iter().find(|p| same_job(p, &j));
                with_rate(j, before, dt)
            })
            .collect();
        let gone: Vec<&DomainJob> = prev
            .jobs
            .iter()
            .filter(|p| !out.iter().any(|j| same_job(j, p)))
            .collect();
        for g in gone {
            out.push(self.finish(g, dom));
        }
        out
    }

    /// The final reading of a job that went away.
    fn finish(&mut self, last: &DomainJob, dom: Option<&Domain>) -> DomainJob {
        let completed = match (dom, &last.disk) {
            // A block job leaves no record behind: its last values stand.
            (Some(dom), None) => {
                self.last_calls += 1;
                let flags = virt_sys::VIR_DOMAIN_JOB_STATS_COMPLETED
                    | virt_sys::VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED;
                read_job(dom, flags).ok().flatten()
            }
            _ => None,
        };
        final_reading(last, completed)
    }

    /// Domains with a job last cycle that are no longer active (a save or a
    /// migration stops them) or gone: their final reading, where the domain
    /// is still listed.
    fn end_jobs_of_stopped_domains<'a>(
        &mut self,
        domains: &mut [RawDomain],
        handle: &impl Fn(&str) -> Option<&'a Domain>,
    ) {
        let stopped: Vec<String> = self
            .seen
            .keys()
            .filter(|u| {
                !domains
                    .iter()
                    .any(|d| &d.uuid == *u && d.state.has_guest_counters())
            })
            .cloned()
            .collect();
        for uuid in stopped {
            let Some(prev) = self.seen.remove(&uuid) else {
                continue;
            };
            let Some(d) = domains.iter_mut().find(|d| d.uuid == uuid) else {
                continue;
            };
            let dom = handle(&uuid);
            d.jobs = prev.jobs.iter().map(|j| self.finish(j, dom)).collect();
        }
    }

    /// One domain's running jobs; `None` when the domain could not be read
    /// (gone meanwhile): it keeps what was seen and is tried again.
    fn read_domain(&mut self, dom: &Domain, d: &RawDomain) -> Option<Vec<DomainJob>> {
        let mut jobs = Vec::new();
        if self.domain_jobs != Some(false) {
            self.last_calls += 1;
            match read_job(dom, 0) {
                Ok(j) => {
                    self.domain_jobs = Some(true);
                    jobs.extend(j.filter(|j| j.kind.running()));
                }
                Err(e) if no_support(&e) => self.domain_jobs = Some(false),
                Err(_) => return None,
            }
        }
        if self.block_jobs != Some(false) {
            for disk in &d.disks {
                self.last_calls += 1;
                match read_block_job(dom, &disk.name) {
                    Ok(j) => {
                        self.block_jobs = Some(true);
                        jobs.extend(j);
                    }
                    Err(e) if no_support(&e) => {
                        self.block_jobs = Some(false);
                        break;
                    }
                    // A disk that cannot be asked (an empty CD-ROM): no job on it.
                    Err(_) => {}
                }
            }
        }
        Some(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::bulk::TypedValue;

    fn cand(uuid: &str, state: DomainState, reason: i32) -> Candidate<'_> {
        Candidate {
            uuid,
            state,
            reason,
        }
    }

    #[test]
    fn plan_reads_known_and_hinted_jobs_first_then_rotates_through_the_rest() {
        let names: Vec<String> = (0..6).map(|i| format!("d{i}")).collect();
        let mut ds: Vec<Candidate<'_>> = names
            .iter()
            .map(|n| cand(n, DomainState::Running, 1))
            .collect();
        ds[4] = cand(
            &names[4],
            DomainState::Paused,
            virt_sys::VIR_DOMAIN_PAUSED_DUMP as i32,
        );
        ds[5] = cand(&names[5], DomainState::Shutoff, 0);
        let known = |u: &str| u == "d2";
        let p = plan(&ds, known, 0, 2);
        assert_eq!(
            p,
            vec![
                (2, Check::Must),
                (4, Check::Must),
                (0, Check::Sweep),
                (1, Check::Sweep)
            ]
        );
        // The rotation continues where it stopped and wraps; inactive d5 never comes.
        let p = plan(&ds, known, 2, 2);
        assert_eq!(&p[2..], [(3, Check::Sweep), (0, Check::Sweep)]);
        // A user pause names no job.
        assert!(!reason_hints_job(
            DomainState::Paused,
            virt_sys::VIR_DOMAIN_PAUSED_USER as i32
        ));
    }

    #[test]
    fn every_active_domain_is_swept_within_sweep_cycles() {
        assert_eq!(per_cycle(1000), 100);
        assert_eq!(per_cycle(5), 1);
        assert_eq!(per_cycle(0), 1);
        let names: Vec<String> = (0..23).map(|i| format!("d{i}")).collect();
        let ds: Vec<Candidate<'_>> = names
            .iter()
            .map(|n| cand(n, DomainState::Running, 1))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        for _ in 0..SWEEP_CYCLES {
            for (i, _) in plan(&ds, |_| false, cursor, per_cycle(ds.len())) {
                seen.insert(i);
                cursor += 1;
            }
        }
        assert_eq!(seen.len(), ds.len());
    }

    fn ull(k: &str, v: u64) -> Param {
        (k.to_string(), TypedValue::ULLong(v))
    }

    #[test]
    fn a_live_dump_reports_memory_progress() {
        // `virsh domjobinfo --raw` of a memory-only dump in flight.
        let params = vec![
            ("operation".to_string(), TypedValue::Int(8)),
            ull("time_elapsed", 1520),
            ull("memory_total", 1_073_741_824),
            ull("memory_processed", 461_708_902),
            ull("memory_remaining", 612_032_922),
        ];
        let j = parse_job(virt_sys::VIR_DOMAIN_JOB_UNBOUNDED as i32, &params).expect("a job");
        assert_eq!(j.kind, JobKind::Unbounded);
        assert_eq!(j.operation, JobOperation::Dump);
        assert_eq!(j.elapsed_ms, Some(1520));
        assert_eq!(j.bandwidth_bytes_per_sec, None);
        assert!(
            (j.percent().unwrap() - 43.0).abs() < 0.01,
            "{:?}",
            j.percent()
        );
        assert_eq!(parse_job(virt_sys::VIR_DOMAIN_JOB_NONE as i32, &[]), None);
    }

    #[test]
    fn a_migration_reports_data_dirty_rate_iteration_and_bandwidth() {
        let params = vec![
            ("operation".to_string(), TypedValue::Int(5)),
            ull("data_total", 4000),
            ull("data_processed", 1000),
            ull("data_remaining", 3000),
            ull("memory_total", 3000),
            ull("memory_processed", 0),
            ull("memory_dirty_rate", 1200),
            ull("memory_iteration", 3),
            ull("memory_bps", 100),
            ull("disk_bps", 20),
            ull("downtime", 300),
            ("errmsg".to_string(), TypedValue::String("x".into())),
        ];
        let j = parse_job(virt_sys::VIR_DOMAIN_JOB_BOUNDED as i32, &params).expect("a job");
        assert_eq!(j.operation, JobOperation::OutgoingMigration);
        // Data before memory: the migration's whole transfer.
        assert_eq!(j.percent(), Some(25.0));
        assert_eq!(j.memory_dirty_rate_pages_per_sec, Some(1200));
        assert_eq!(j.memory_iteration, Some(3));
        assert_eq!(j.downtime_ms, Some(300));
        assert_eq!(j.bandwidth_bytes_per_sec, Some(120.0));
        assert_eq!(j.error.as_deref(), Some("x"));
    }

    #[test]
    fn a_rate_is_derived_where_libvirt_reports_none() {
        let job = |p: u64| DomainJob {
            memory_processed_bytes: Some(p),
            memory_total_bytes: Some(1000),
            ..DomainJob::default()
        };
        let j = with_rate(job(600), Some(&job(100)), Duration::from_millis(500));
        assert_eq!(j.bandwidth_bytes_per_sec, Some(1000.0));
        // The first reading has no rate; a reported one is kept.
        assert_eq!(
            with_rate(job(600), None, Duration::from_secs(1)).bandwidth_bytes_per_sec,
            None
        );
        let reported = DomainJob {
            bandwidth_bytes_per_sec: Some(7.0),
            ..job(600)
        };
        let j = with_rate(reported, Some(&job(0)), Duration::from_secs(1));
        assert_eq!(j.bandwidth_bytes_per_sec, Some(7.0));
    }

    #[test]
    fn a_block_job_reads_bytes_and_its_limit_is_no_rate() {
        let j = block_job(
            "vda",
            virt_sys::VIR_DOMAIN_BLOCK_JOB_TYPE_COPY as i32,
            25,
            100,
        );
        assert_eq!(j.operation, JobOperation::BlockCopy);
        assert_eq!(j.disk.as_deref(), Some("vda"));
        assert_eq!(j.percent(), Some(25.0));
        assert_eq!(j.data_remaining_bytes, Some(75));
        assert_eq!(j.bandwidth_bytes_per_sec, None);
    }

    #[test]
    fn the_final_reading_is_libvirts_record_or_the_last_values_marked_ended() {
        let last = DomainJob {
            kind: JobKind::Unbounded,
            operation: JobOperation::Dump,
            memory_processed_bytes: Some(900),
            memory_total_bytes: Some(1000),
            bandwidth_bytes_per_sec: Some(50.0),
            ..DomainJob::default()
        };
        let done = DomainJob {
            kind: JobKind::Completed,
            operation: JobOperation::Dump,
            elapsed_ms: Some(2000),
            ..DomainJob::default()
        };
        let f = final_reading(&last, Some(done));
        assert_eq!((f.kind, f.elapsed_ms), (JobKind::Completed, Some(2000)));
        assert_eq!(f.percent(), Some(100.0));
        assert_eq!(f.bandwidth_bytes_per_sec, Some(50.0));
        // A record of another operation is an older job's: not this one's outcome.
        let other = DomainJob {
            kind: JobKind::Failed,
            operation: JobOperation::Save,
            ..DomainJob::default()
        };
        let f = final_reading(&last, Some(other));
        assert_eq!(f.kind, JobKind::Ended);
        assert_eq!(f.memory_processed_bytes, Some(900));
        assert_eq!(final_reading(&last, None).kind, JobKind::Ended);
        // An older dump's record: shorter than this one had already run.
        let running = DomainJob {
            elapsed_ms: Some(5000),
            ..last.clone()
        };
        let old = DomainJob {
            elapsed_ms: Some(800),
            ..done_again()
        };
        assert_eq!(final_reading(&running, Some(old)).kind, JobKind::Ended);
    }

    #[test]
    fn a_followed_job_gets_its_rate_and_a_vanished_one_its_final_line() {
        let dump = |p: u64| DomainJob {
            kind: JobKind::Unbounded,
            operation: JobOperation::Dump,
            memory_processed_bytes: Some(p),
            memory_total_bytes: Some(1000),
            ..DomainJob::default()
        };
        let t0 = Instant::now();
        let seen = |j: DomainJob| {
            Some(Seen {
                at: t0,
                jobs: vec![j],
            })
        };
        let mut tracker = JobTracker::default();
        let now = t0 + Duration::from_secs(2);
        let out = tracker.merge(seen(dump(200)), vec![dump(600)], now, None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bandwidth_bytes_per_sec, Some(200.0));
        // Gone (and no domain to ask for libvirt's record): the last values, ended.
        let out = tracker.merge(seen(dump(600)), Vec::new(), now, None);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, JobKind::Ended);
        assert_eq!(out[0].memory_processed_bytes, Some(600));
        // A new job beside nothing seen before is passed on as it is.
        let out = tracker.merge(None, vec![dump(5)], now, None);
        assert_eq!(out, vec![dump(5)]);
    }

    fn done_again() -> DomainJob {
        DomainJob {
            kind: JobKind::Completed,
            operation: JobOperation::Dump,
            ..DomainJob::default()
        }
    }
}
