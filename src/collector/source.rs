//! The libvirt source: one connection, one blocking `sample` per cycle.
//! Uses the bulk call where libvirt offers the groups, per-domain calls otherwise.
//!
//! A cycle makes one `virConnectGetAllDomainStats` call for active domains (all
//! groups): identity, state and, on qemu, every counter in one round trip. The
//! inactive domains (a second, state-only call) are read again only every
//! `collector.host_interval` or when a VM stopped or went away, and reused in
//! between: a shut-off domain changes only by starting (then the active call
//! has it) or by being undefined. Groups a driver leaves out (the test
//! driver returns only `state`) are read per domain by `fallback`, with device
//! names from `devices`. Inactive and crashed domains carry identity and state
//! only: libvirt reports its own daemon's CPU time for them.

use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber};

use super::access;
use super::bulk::{self, BulkStats};
use super::devices::DeviceCache;
use super::fallback::{self, InfoReading};
use super::filter::DomainFilter;
use super::host;
use super::jobs::JobTracker;
use super::metadata::{MetadataCache, MetadataSpec};
use super::schedule::HeldMonitor;
pub use super::skip::SkipNote;
use crate::model::{CpuTimes, DomainState, HostInfo, RawDomain};

/// One cycle's raw readings.
#[derive(Debug, Clone)]
pub struct CycleSample {
    /// Active and inactive domains; inactive ones carry identity and state only.
    pub domains: Vec<RawDomain>,
    pub skipped: Vec<SkipNote>,
    /// Whether `virConnectGetAllDomainStats` supplied the groups: the bulk call
    /// worked and no active domain needed a per-domain call.
    pub used_bulk: bool,
    /// The hypervisor's figures (`collector::host`): the last reading,
    /// refreshed every `collector.host_interval`.
    pub host: Option<HostInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to libvirt at '{uri}': {message} (check --connect / LIBVIRT_URI and that libvirtd is running)")]
    Connect { uri: String, message: String },
    #[error("libvirt at '{uri}' failed to list domains: {message}")]
    List { uri: String, message: String },
}

/// When a reading was taken, on both clocks.
#[derive(Debug, Clone, Copy)]
struct Stamp {
    mono: Instant,
    wall_ns: i64,
}

impl Stamp {
    fn now() -> Self {
        Self::from(Instant::now(), SystemTime::now())
    }

    fn from(mono: Instant, wall: SystemTime) -> Self {
        let wall_ns = wall
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Self { mono, wall_ns }
    }

    /// The midpoint of a read that ran from `self` to `end`: counters read
    /// anywhere in between are closest, on average, to this instant.
    fn mid(self, end: Stamp) -> Stamp {
        let half = end.mono.saturating_duration_since(self.mono) / 2;
        let half_ns = i64::try_from(half.as_nanos()).unwrap_or(0);
        Stamp {
            mono: self.mono + half,
            wall_ns: self.wall_ns.saturating_add(half_ns),
        }
    }
}

/// A domain found this cycle, before its per-domain reads.
struct Listed {
    domain: Domain,
    uuid: String,
    name: String,
    id: Option<u32>,
    /// What the bulk call said; `None` when the domain was listed without it.
    bulk: Option<BulkStats>,
    /// When the bulk call ran.
    stamp: Stamp,
}

/// The inactive domains of the last state-only call, reused while they cannot
/// have changed much (see [`inactive_due`]).
struct InactiveCache {
    at: Instant,
    /// The active domains when it was read, by UUID.
    active: HashSet<String>,
    listed: Vec<(Domain, String, String, BulkStats)>,
}

/// Whether the inactive domains must be read again: nothing read yet, the
/// last reading is `interval` old (a domain defined meanwhile shows up), or
/// a domain that was active is not any more (it stopped or went away). Pure.
pub fn inactive_due(
    last: Option<(Instant, &HashSet<String>)>,
    now: Instant,
    interval: Duration,
    is_active: impl Fn(&str) -> bool,
) -> bool {
    match last {
        None => true,
        Some((at, was_active)) => {
            now.saturating_duration_since(at) >= interval
                || was_active.iter().any(|u| !is_active(u))
        }
    }
}

/// Blocking: call from a blocking thread, never from the async runtime.
///
/// `Send` (it is moved into `spawn_blocking`): `virt` marks `Connect` and
/// `Domain` `Send + Sync`, which libvirt allows (its connections are thread-safe).
pub struct LibvirtSource {
    uri: String,
    conn: Connect,
    devices: DeviceCache,
    /// `collector.metadata_tags`, read per domain at `collector.metadata_refresh`.
    metadata: MetadataCache,
    host: host::HostReader,
    /// `None` until the first bulk call; `Some(false)` once libvirt said the
    /// driver does not support it (decided once, then per-domain calls only).
    bulk_supported: Option<bool>,
    /// `collector.domains` / `collector.exclude`.
    filter: DomainFilter,
    /// `collector.host_interval`: also how long the inactive domains are reused.
    host_interval: Duration,
    inactive: Option<InactiveCache>,
    /// Jobs in flight, looked for on a bounded rotation.
    jobs: JobTracker,
}

impl std::fmt::Debug for LibvirtSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibvirtSource")
            .field("uri", &self.uri)
            .field("bulk_supported", &self.bulk_supported)
            .finish_non_exhaustive()
    }
}

fn is_no_support(e: &VirtError) -> bool {
    e.code().is(ErrorNumber::NoSupport)
}

impl LibvirtSource {
    pub fn open(uri: &str, device_cache_ttl: Duration) -> Result<Self, SourceError> {
        // Otherwise libvirt prints every error straight onto the terminal.
        virt::error::clear_error_callback();
        // libxml2 reports a missing test-driver file on stderr itself, past
        // the error callback, which would garble the TUI: check first.
        if let Some(path) = test_driver_file(uri) {
            if !path.exists() {
                return Err(SourceError::Connect {
                    uri: uri.to_string(),
                    message: format!("test driver file '{}' does not exist", path.display()),
                });
            }
        }
        // Read-only: vmpulse never changes a domain, and a user in the libvirt
        // group (or any local user, by libvirt's default policy) may then connect.
        let conn = Connect::open_read_only(Some(uri)).map_err(|e| SourceError::Connect {
            uri: uri.to_string(),
            message: access::explain(uri, e.message(), access::current_user().as_deref()),
        })?;
        Ok(Self {
            uri: uri.to_string(),
            conn,
            devices: DeviceCache::new(device_cache_ttl),
            metadata: MetadataCache::new(MetadataSpec::default()),
            host: host::HostReader::new(host::DEFAULT_INTERVAL),
            bulk_supported: None,
            filter: DomainFilter::default(),
            host_interval: host::DEFAULT_INTERVAL,
            inactive: None,
            jobs: JobTracker::default(),
        })
    }

    /// Collect only the domains `filter` matches (checked before any per-domain call).
    pub fn with_filter(mut self, filter: DomainFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Read these metadata tags for every domain (`collector.metadata_tags`).
    pub fn with_metadata(mut self, spec: MetadataSpec) -> Self {
        self.metadata = MetadataCache::new(spec);
        self
    }

    /// Read the node figures at most every `interval` (`collector.host_interval`).
    pub fn with_host_interval(mut self, interval: Duration) -> Self {
        self.host = host::HostReader::new(interval);
        self.host_interval = interval;
        self
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether the connection still answers. After a `SourceError::List`, the
    /// caller should drop this source and `open` a new one when this is false.
    pub fn is_alive(&self) -> bool {
        self.conn.is_alive().unwrap_or(false)
    }

    /// `Some(true)` once the bulk call worked, `Some(false)` if the driver lacks it.
    pub fn bulk_supported(&self) -> Option<bool> {
        self.bulk_supported
    }

    /// Active domains whose QEMU monitor another call holds, and for how
    /// long. Neither the listing nor `virDomainGetControlInfo` waits for a
    /// monitor, so this answers while a stats call hangs in one. A domain
    /// whose control info fails (gone meanwhile, a driver without the call)
    /// is simply not held.
    pub fn held_monitors(&self) -> Result<Vec<HeldMonitor>, SourceError> {
        let doms = self
            .conn
            .list_all_domains(virt_sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE)
            .map_err(|e| SourceError::List {
                uri: self.uri.clone(),
                message: e.message().to_string(),
            })?;
        Ok(doms
            .iter()
            .filter_map(|d| {
                let held_for = fallback::monitor_busy(d).ok().flatten()?;
                Some(HeldMonitor {
                    name: d.name().ok()?,
                    held_for,
                })
            })
            .collect())
    }

    /// Reads every domain once. Stops starting new per-domain calls after
    /// `deadline` and reports the rest as skipped.
    pub fn sample(&mut self, deadline: Instant) -> Result<CycleSample, SourceError> {
        let mut skipped = Vec::new();
        let (mut listed, bulk_ok) = self.list(&mut skipped)?;
        listed.retain(|l| self.filter.matches(&l.name));

        let mut domains = Vec::with_capacity(listed.len());
        let mut any_fallback = false;
        for l in &mut listed {
            if let Some((raw, used_fallback)) = self.read_domain(l, deadline, &mut skipped) {
                any_fallback |= used_fallback;
                domains.push(raw);
            }
        }
        if self.jobs.may_call() {
            let handles: std::collections::HashMap<&str, &Domain> = listed
                .iter()
                .map(|l| (l.uuid.as_str(), &l.domain))
                .collect();
            self.jobs
                .update(&mut domains, |u| handles.get(u).copied(), deadline);
        }
        // Forget device names and tags of domains that are gone.
        let present: std::collections::HashSet<&str> =
            listed.iter().map(|l| l.uuid.as_str()).collect();
        self.devices.retain(|uuid| present.contains(uuid));
        self.metadata.retain(|uuid| present.contains(uuid));
        Ok(CycleSample {
            domains,
            skipped,
            used_bulk: bulk_ok && !any_fallback,
            host: self.host.read(&self.conn, Instant::now()),
        })
    }

    /// All domains, with bulk stats when the driver has the bulk call.
    fn list(&mut self, skipped: &mut Vec<SkipNote>) -> Result<(Vec<Listed>, bool), SourceError> {
        if self.bulk_supported != Some(false) {
            match self.list_bulk(skipped) {
                Ok(listed) => {
                    self.bulk_supported = Some(true);
                    return Ok((listed, true));
                }
                Err(e) if is_no_support(&e) => self.bulk_supported = Some(false),
                // Another failure: try the plain listing this cycle; if the
                // connection is gone that fails too and reports why.
                Err(_) => {}
            }
        }
        let flags =
            virt_sys::VIR_CONNECT_LIST_DOMAINS_ACTIVE | virt_sys::VIR_CONNECT_LIST_DOMAINS_INACTIVE;
        let doms = self
            .conn
            .list_all_domains(flags)
            .map_err(|e| SourceError::List {
                uri: self.uri.clone(),
                message: e.message().to_string(),
            })?;
        let stamp = Stamp::now();
        let mut listed = Vec::with_capacity(doms.len());
        for domain in doms {
            // Both are cached client-side in the domain handle: no round trip.
            match (domain.uuid_string(), domain.name()) {
                (Ok(uuid), Ok(name)) => listed.push(Listed {
                    id: domain.id(),
                    domain,
                    uuid,
                    name,
                    bulk: None,
                    stamp,
                }),
                (Err(e), _) | (_, Err(e)) => skipped.push(SkipNote {
                    what: "domain (identity unreadable)".into(),
                    why: e.message().to_string(),
                }),
            }
        }
        Ok((listed, false))
    }

    fn list_bulk(&mut self, skipped: &mut Vec<SkipNote>) -> Result<Vec<Listed>, VirtError> {
        let t0 = Stamp::now();
        // NOWAIT: a domain whose monitor another call holds (hung QEMU) comes
        // back with the groups that need no monitor instead of blocking us.
        let (active, bad_a) = bulk::all_domain_stats(
            &self.conn,
            bulk::STATS_GROUPS,
            bulk::FILTER_ACTIVE | bulk::NOWAIT,
        )?;
        let stamp = t0.mid(Stamp::now());
        for _ in 0..bad_a {
            skipped.push(unreadable_identity());
        }
        let mut listed: Vec<Listed> = Vec::with_capacity(active.len());
        for r in active {
            let stats = bulk::parse_record(&r.params);
            listed.push(Listed {
                domain: r.domain,
                uuid: r.uuid,
                name: r.name,
                id: r.id,
                bulk: Some(stats),
                stamp,
            });
        }
        let uuids: HashSet<&str> = listed.iter().map(|l| l.uuid.as_str()).collect();
        let last = self.inactive.as_ref().map(|c| (c.at, &c.active));
        if inactive_due(last, Instant::now(), self.host_interval, |u| {
            uuids.contains(u)
        }) {
            let active = uuids.iter().map(|u| u.to_string()).collect();
            self.inactive = Some(self.read_inactive(active, skipped)?);
        }
        // Inactive domains carry their state only; this cycle's stamp is theirs.
        let istamp = stamp.mid(Stamp::now());
        let inactive: Vec<Listed> = self
            .inactive
            .iter()
            .flat_map(|c| &c.listed)
            // A domain that started since the inactive call appears as active: that wins.
            .filter(|(_, uuid, _, _)| !uuids.contains(uuid.as_str()))
            .map(|(domain, uuid, name, stats)| Listed {
                domain: domain.clone(),
                uuid: uuid.clone(),
                name: name.clone(),
                id: None,
                bulk: Some(stats.clone()),
                stamp: istamp,
            })
            .collect();
        drop(uuids);
        listed.extend(inactive);
        Ok(listed)
    }

    /// The state-only call for inactive domains (reused, see [`inactive_due`]).
    fn read_inactive(
        &self,
        active: HashSet<String>,
        skipped: &mut Vec<SkipNote>,
    ) -> Result<InactiveCache, VirtError> {
        let at = Instant::now();
        let (records, bad) =
            bulk::all_domain_stats(&self.conn, bulk::STATS_STATE_ONLY, bulk::FILTER_INACTIVE)?;
        for _ in 0..bad {
            skipped.push(unreadable_identity());
        }
        let listed = records
            .into_iter()
            .map(|r| {
                let stats = bulk::parse_record(&r.params);
                (r.domain, r.uuid, r.name, stats)
            })
            .collect();
        Ok(InactiveCache { at, active, listed })
    }

    /// One domain's `RawDomain`, and whether per-domain calls were needed.
    /// `None` (with a note) when it must be skipped. Takes the bulk record's
    /// counters out of `l` (moved, not copied, into the `RawDomain`).
    fn read_domain(
        &mut self,
        l: &mut Listed,
        deadline: Instant,
        skipped: &mut Vec<SkipNote>,
    ) -> Option<(RawDomain, bool)> {
        let skip = |skipped: &mut Vec<SkipNote>, why: String| {
            skipped.push(SkipNote {
                what: format!("domain '{}'", l.name),
                why,
            });
        };
        let mut b = l.bulk.take().unwrap_or_default();
        let b = &mut b;
        let l = &*l;
        let mut raw = identity(l);

        let (state, reason, stamp) = match state_of(l, b, deadline) {
            Ok(s) => s,
            Err(why) => {
                skip(skipped, why);
                return None;
            }
        };
        (raw.state, raw.state_reason) = (state, reason);
        set_stamp(&mut raw, stamp);
        raw.tags = self.read_tags(l, deadline, skipped);
        if !raw.state.has_guest_counters() {
            // Identity and state only: any counter libvirt has here is its own.
            return Some((raw, false));
        }
        if let Some(busy) = monitor_stuck(&l.domain, b) {
            // Per-domain calls would wait for the same monitor: report what
            // the bulk call had and mark the VM.
            raw.monitor_stuck = Some(busy);
            fill_from_bulk(&mut raw, b);
            return Some((raw, false));
        }
        let need = Needs::of(b);
        if !need.any() {
            fill_from_bulk(&mut raw, b);
            return Some((raw, false));
        }
        if Instant::now() >= deadline {
            skip(skipped, "cycle deadline passed".into());
            return None;
        }
        let info = if need.info {
            match read_info(&l.domain) {
                Ok(reading) => Some(reading),
                Err(e) => {
                    skip(skipped, e.message().to_string());
                    return None;
                }
            }
        } else {
            None
        };
        if let Some((i, at)) = &info {
            if !i.state.has_guest_counters() {
                // It stopped since the bulk call: report it as it is now.
                raw.state = i.state;
                raw.state_reason = 0; // unknown: info() carries no reason
                set_stamp(&mut raw, *at);
                return Some((raw, true));
            }
        }
        fill_from_bulk(&mut raw, b);
        if let Some((i, at)) = info {
            fill_from_info(&mut raw, b, &i);
            // Δt must match the CPU counter's reading: the bulk stamp when
            // cpu.time came from the bulk call, else the info call's own.
            if b.cpu.is_none() {
                set_stamp(&mut raw, at);
            }
        }
        if need.balloon {
            raw.balloon = fallback::balloon(&l.domain).unwrap_or_default();
        }
        if need.devices {
            self.read_devices(l, &need, &mut raw, skipped);
        }
        Some((raw, true))
    }

    /// The domain's metadata tags: cached, or read (one call per namespace) when
    /// stale and the deadline allows; a failed read keeps the cached ones.
    fn read_tags(
        &mut self,
        l: &Listed,
        deadline: Instant,
        skipped: &mut Vec<SkipNote>,
    ) -> Vec<(String, String)> {
        let now = Instant::now();
        let read = |ns: &str| fallback::metadata(&l.domain, ns);
        match self.metadata.get(&l.uuid, l.id, now, now < deadline, read) {
            Ok(tags) => tags,
            Err(e) => {
                skipped.push(SkipNote {
                    what: format!("metadata tags of '{}'", l.name),
                    why: e.message().to_string(),
                });
                self.metadata
                    .get(&l.uuid, l.id, now, false, read)
                    .unwrap_or_default()
            }
        }
    }

    /// NICs and disks the bulk call did not supply, one call per device,
    /// with device names from the (cached) domain XML.
    fn read_devices(
        &mut self,
        l: &Listed,
        need: &Needs,
        raw: &mut RawDomain,
        skipped: &mut Vec<SkipNote>,
    ) {
        let dom = &l.domain;
        // Borrowed from the cache, not copied: four names a domain every cycle.
        let devs = match self
            .devices
            .get_or_load(&l.uuid, l.id, Instant::now(), || dom.xml_desc(0))
        {
            Ok(devs) => devs,
            Err(e) => {
                skipped.push(SkipNote {
                    what: format!("devices of '{}'", l.name),
                    why: e.to_string(),
                });
                return;
            }
        };
        let mut failed = false;
        if need.nics {
            let (n, f) = fallback::nic_stats(dom, &devs.nics, &l.name, skipped);
            raw.nics = n;
            failed |= f;
        }
        if need.disks {
            let (d, f) = fallback::disk_stats(dom, &devs.disks, &l.name, skipped);
            raw.disks = d;
            failed |= f;
        }
        if failed {
            // Names may be stale (hot-unplug): re-read XML next cycle.
            self.devices.invalidate(&l.uuid);
        }
    }
}

fn unreadable_identity() -> SkipNote {
    SkipNote {
        what: "domain (identity unreadable)".into(),
        why: "libvirt returned a stats record without a readable domain".into(),
    }
}

/// What a domain's bulk record lacks and per-domain calls must supply.
struct Needs {
    info: bool,
    balloon: bool,
    devices: bool,
    nics: bool,
    disks: bool,
}

impl Needs {
    fn of(b: &BulkStats) -> Self {
        let bal = b.balloon.as_ref();
        Self {
            info: b.cpu.is_none()
                || b.vcpus.is_none()
                || bal.and_then(|x| x.maximum_kib).is_none()
                || bal.and_then(|x| x.current_kib).is_none(),
            balloon: bal.is_none(),
            devices: b.nics.is_none() || b.disks.is_none(),
            nics: b.nics.is_none(),
            disks: b.disks.is_none(),
        }
    }

    fn any(&self) -> bool {
        self.info || self.balloon || self.devices
    }
}

/// The domain before any reading: identity only.
fn identity(l: &Listed) -> RawDomain {
    RawDomain::identity(&l.uuid, l.id, &l.name, l.stamp.mono, l.stamp.wall_ns)
}

/// State, reason and when they were read: from the bulk record, else one call.
fn state_of(
    l: &Listed,
    b: &BulkStats,
    deadline: Instant,
) -> Result<(DomainState, i32, Stamp), String> {
    if let Some(state) = b.state {
        return Ok((state, b.state_reason.unwrap_or(0), l.stamp));
    }
    if Instant::now() >= deadline {
        return Err("cycle deadline passed".into());
    }
    let t0 = Stamp::now();
    let (state, reason) = fallback::domain_state(&l.domain).map_err(|e| e.message().to_string())?;
    Ok((state, reason, t0.mid(Stamp::now())))
}

/// `virDomainGetInfo` and the instant of its CPU counter reading (the
/// midpoint of that one call, not of the domain's other calls).
fn read_info(dom: &Domain) -> Result<(InfoReading, Stamp), VirtError> {
    let t0 = Stamp::now();
    let info = fallback::info(dom)?;
    Ok((info, t0.mid(Stamp::now())))
}

/// How long the domain's monitor has been held by another call, when the
/// bulk record may lack what needs it (see [`may_lack_monitor_data`]).
/// Per-domain calls would then wait for the same monitor (a hung QEMU: for
/// ever), so the caller reports the bulk record and marks the VM instead.
fn monitor_stuck(dom: &Domain, b: &BulkStats) -> Option<Duration> {
    if !may_lack_monitor_data(b) {
        return None;
    }
    fallback::monitor_busy(dom).ok().flatten()
}

/// Whether a bulk record may have been read without the domain's monitor.
/// Only a driver whose bulk call reports counters (qemu) has one; with a
/// working monitor qemu always reports `balloon.rss`, without the job only
/// `balloon.current` and `balloon.maximum` come back. A domain without a
/// balloon device never has `rss`, and its balloon fallback call takes the
/// monitor too: it is checked as well. Pure.
fn may_lack_monitor_data(b: &BulkStats) -> bool {
    b.cpu.is_some() && b.balloon.as_ref().and_then(|x| x.rss_kib).is_none()
}

/// Everything the bulk record supplied, its vectors moved out of `b` (what
/// `b` says was reported or not, `Some`/`None`, stays as it was).
fn fill_from_bulk(raw: &mut RawDomain, b: &mut BulkStats) {
    let bal = b.balloon.unwrap_or_default();
    raw.cpu = b.cpu;
    raw.vcpus = b.vcpus;
    raw.max_mem_kib = bal.maximum_kib;
    raw.cur_mem_kib = bal.current_kib;
    raw.balloon = bal;
    raw.vcpu_times_ns = std::mem::take(&mut b.vcpu_times_ns);
    raw.vcpu_delays_ns = std::mem::take(&mut b.vcpu_delays_ns);
    raw.nics = b.nics.as_mut().map(std::mem::take).unwrap_or_default();
    raw.disks = b.disks.as_mut().map(std::mem::take).unwrap_or_default();
}

/// What `virDomainGetInfo` adds where the bulk record was silent.
fn fill_from_info(raw: &mut RawDomain, b: &BulkStats, i: &InfoReading) {
    raw.cpu = b.cpu.or(Some(CpuTimes {
        time_ns: i.cpu_time_ns,
        user_ns: None,
        system_ns: None,
    }));
    raw.vcpus = raw.vcpus.or(Some(i.vcpus));
    raw.max_mem_kib = raw.max_mem_kib.or(Some(i.max_mem_kib));
    raw.cur_mem_kib = raw.cur_mem_kib.or(Some(i.cur_mem_kib));
}

/// The instant `raw`'s counters were read, on both clocks.
fn set_stamp(raw: &mut RawDomain, s: Stamp) {
    raw.mono = s.mono;
    raw.wall_ns = s.wall_ns;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn source_is_send() {
        assert_send::<LibvirtSource>();
    }

    #[test]
    fn only_counter_records_without_balloon_rss_need_a_monitor_check() {
        let cpu = Some(CpuTimes {
            time_ns: 1,
            user_ns: None,
            system_ns: None,
        });
        let with_rss = Some(crate::model::BalloonStats {
            rss_kib: Some(1),
            ..Default::default()
        });
        let no_rss = Some(crate::model::BalloonStats {
            current_kib: Some(1),
            ..Default::default()
        });
        let rec = |cpu, balloon| BulkStats {
            cpu,
            balloon,
            ..Default::default()
        };
        // qemu with its monitor: nothing to check.
        assert!(!may_lack_monitor_data(&rec(cpu, with_rss)));
        // qemu without the monitor job (NOWAIT passed it by), or without a balloon.
        assert!(may_lack_monitor_data(&rec(cpu, no_rss)));
        assert!(may_lack_monitor_data(&rec(cpu, None)));
        // The test driver's state-only records: no monitor at all.
        assert!(!may_lack_monitor_data(&rec(None, None)));
    }

    #[test]
    fn inactive_domains_are_read_again_when_old_or_when_a_vm_stopped() {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let t = Instant::now();
        let i = Duration::from_secs(5);
        let (ab, a) = (set(&["a", "b"]), set(&["a"]));
        let now = |s: &HashSet<String>| {
            let s = s.clone();
            move |u: &str| s.contains(u)
        };
        assert!(inactive_due(None, t, i, now(&ab)), "nothing read yet");
        assert!(!inactive_due(
            Some((t, &ab)),
            t + Duration::from_secs(4),
            i,
            now(&ab)
        ));
        assert!(inactive_due(Some((t, &ab)), t + i, i, now(&ab)), "old");
        assert!(
            inactive_due(Some((t, &ab)), t, i, now(&a)),
            "b stopped or went away"
        );
        // One more active VM: it was inactive, and the active record wins anyway.
        assert!(!inactive_due(Some((t, &a)), t, i, now(&ab)));
    }

    #[test]
    fn stamp_midpoint() {
        let a = Stamp::now();
        let b = Stamp {
            mono: a.mono + Duration::from_millis(10),
            wall_ns: a.wall_ns + 10_000_000,
        };
        let m = a.mid(b);
        assert_eq!(m.mono, a.mono + Duration::from_millis(5));
        assert_eq!(m.wall_ns, a.wall_ns + 5_000_000);
    }
}

/// The node file of a `test:///ABS/PATH.xml` URI (`test:///default` has none).
fn test_driver_file(uri: &str) -> Option<std::path::PathBuf> {
    let rest = uri.strip_prefix("test://")?;
    let path = rest.split('?').next().unwrap_or(rest);
    (path.starts_with('/') && path != "/default").then(|| std::path::PathBuf::from(path))
}

#[cfg(test)]
mod uri_tests {
    use super::test_driver_file;

    #[test]
    fn test_driver_file_is_found_only_for_file_uris() {
        assert_eq!(test_driver_file("test:///default"), None);
        assert_eq!(test_driver_file("qemu:///system"), None);
        assert_eq!(
            test_driver_file("test:///tmp/h.xml"),
            Some(std::path::PathBuf::from("/tmp/h.xml"))
        );
    }
}
