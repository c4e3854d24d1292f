//! The libvirt source: one connection, one blocking `sample` per cycle.
//! Uses the bulk call where libvirt offers the groups, per-domain calls otherwise.
//!
//! A cycle makes one `virConnectGetAllDomainStats` call for active domains (all
//! groups) and one for inactive domains (state only): identity, state and, on
//! qemu, every counter in two round trips. Groups a driver leaves out (the test
//! driver returns only `state`) are read per domain by `fallback`, with device
//! names from `devices`. Inactive and crashed domains carry identity and state
//! only: libvirt reports its own daemon's CPU time for them.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::{Error as VirtError, ErrorNumber};

use super::access;
use super::bulk::{self, BulkStats};
use super::devices::DeviceCache;
use super::fallback;
use super::filter::DomainFilter;
use crate::model::{BalloonStats, CpuTimes, DomainState, RawDomain};

/// A domain or device left out of a cycle, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipNote {
    /// e.g. `domain 'web01'` or `disk vdb of 'web01'`.
    pub what: String,
    pub why: String,
}

/// One cycle's raw readings.
#[derive(Debug, Clone)]
pub struct CycleSample {
    /// Active and inactive domains; inactive ones carry identity and state only.
    pub domains: Vec<RawDomain>,
    pub skipped: Vec<SkipNote>,
    /// Whether `virConnectGetAllDomainStats` supplied the groups: the bulk call
    /// worked and no active domain needed a per-domain call.
    pub used_bulk: bool,
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

/// Blocking: call from a blocking thread, never from the async runtime.
///
/// `Send` (it is moved into `spawn_blocking`): `virt` marks `Connect` and
/// `Domain` `Send + Sync`, which libvirt allows (its connections are thread-safe).
pub struct LibvirtSource {
    uri: String,
    conn: Connect,
    devices: DeviceCache,
    /// `None` until the first bulk call; `Some(false)` once libvirt said the
    /// driver does not support it (decided once, then per-domain calls only).
    bulk_supported: Option<bool>,
    /// `collector.domains` / `collector.exclude`.
    filter: DomainFilter,
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
            bulk_supported: None,
            filter: DomainFilter::default(),
        })
    }

    /// Collect only the domains `filter` matches (checked before any per-domain call).
    pub fn with_filter(mut self, filter: DomainFilter) -> Self {
        self.filter = filter;
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

    /// Reads every domain once. Stops starting new per-domain calls after
    /// `deadline` and reports the rest as skipped.
    pub fn sample(&mut self, deadline: Instant) -> Result<CycleSample, SourceError> {
        let mut skipped = Vec::new();
        let (mut listed, bulk_ok) = self.list(&mut skipped)?;
        listed.retain(|l| self.filter.matches(&l.name));

        let mut domains = Vec::with_capacity(listed.len());
        let mut any_fallback = false;
        for l in &listed {
            if let Some((raw, used_fallback)) = self.read_domain(l, deadline, &mut skipped) {
                any_fallback |= used_fallback;
                domains.push(raw);
            }
        }
        // Forget device names of domains that are gone.
        self.devices
            .retain(|uuid| listed.iter().any(|l| l.uuid == uuid));
        Ok(CycleSample {
            domains,
            skipped,
            used_bulk: bulk_ok && !any_fallback,
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

    fn list_bulk(&self, skipped: &mut Vec<SkipNote>) -> Result<Vec<Listed>, VirtError> {
        let t0 = Stamp::now();
        let (active, bad_a) =
            bulk::all_domain_stats(&self.conn, bulk::STATS_GROUPS, bulk::FILTER_ACTIVE)?;
        let stamp = t0.mid(Stamp::now());
        let (inactive, bad_i) =
            bulk::all_domain_stats(&self.conn, bulk::STATS_STATE_ONLY, bulk::FILTER_INACTIVE)?;
        let istamp = stamp.mid(Stamp::now());
        for _ in 0..bad_a + bad_i {
            skipped.push(SkipNote {
                what: "domain (identity unreadable)".into(),
                why: "libvirt returned a stats record without a readable domain".into(),
            });
        }
        let mut listed: Vec<Listed> = Vec::with_capacity(active.len() + inactive.len());
        for (records, stamp) in [(active, stamp), (inactive, istamp)] {
            for r in records {
                // A domain that changed state between the two calls can appear
                // twice; the active record (first) wins.
                if listed.iter().any(|l| l.uuid == r.uuid) {
                    continue;
                }
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
        }
        Ok(listed)
    }

    /// One domain's `RawDomain`, and whether per-domain calls were needed.
    /// `None` (with a note) when it must be skipped.
    fn read_domain(
        &mut self,
        l: &Listed,
        deadline: Instant,
        skipped: &mut Vec<SkipNote>,
    ) -> Option<(RawDomain, bool)> {
        let skip = |skipped: &mut Vec<SkipNote>, why: String| {
            skipped.push(SkipNote {
                what: format!("domain '{}'", l.name),
                why,
            });
        };
        let empty = BulkStats::default();
        let b = l.bulk.as_ref().unwrap_or(&empty);

        let mut raw = RawDomain {
            uuid: l.uuid.clone(),
            id: l.id,
            name: l.name.clone(),
            state: DomainState::NoState,
            state_reason: 0,
            vcpus: None,
            max_mem_kib: None,
            cur_mem_kib: None,
            cpu: None,
            balloon: BalloonStats::default(),
            vcpu_times_ns: Vec::new(),
            nics: Vec::new(),
            disks: Vec::new(),
            mono: l.stamp.mono,
            wall_ns: l.stamp.wall_ns,
        };

        match (b.state, b.state_reason) {
            (Some(state), reason) => {
                raw.state = state;
                raw.state_reason = reason.unwrap_or(0);
            }
            (None, _) => {
                if Instant::now() >= deadline {
                    skip(skipped, "cycle deadline passed".into());
                    return None;
                }
                match fallback::domain_state(&l.domain) {
                    Ok((state, reason)) => {
                        raw.state = state;
                        raw.state_reason = reason;
                        let s = Stamp::now();
                        raw.mono = s.mono;
                        raw.wall_ns = s.wall_ns;
                    }
                    Err(e) => {
                        skip(skipped, e.message().to_string());
                        return None;
                    }
                }
            }
        }
        if !raw.state.has_guest_counters() {
            // Identity and state only: any counter libvirt has here is its own.
            return Some((raw, false));
        }

        let from_balloon = |f: fn(&BalloonStats) -> Option<u64>| b.balloon.as_ref().and_then(f);
        let bulk_max = from_balloon(|x| x.maximum_kib);
        let bulk_cur = from_balloon(|x| x.current_kib);
        let need_info =
            b.cpu.is_none() || b.vcpus.is_none() || bulk_max.is_none() || bulk_cur.is_none();
        let need_balloon = b.balloon.is_none();
        let need_devices = b.nics.is_none() || b.disks.is_none();
        if !(need_info || need_balloon || need_devices) {
            raw.cpu = b.cpu;
            raw.vcpus = b.vcpus;
            raw.max_mem_kib = bulk_max;
            raw.cur_mem_kib = bulk_cur;
            raw.balloon = b.balloon.unwrap_or_default();
            raw.vcpu_times_ns = b.vcpu_times_ns.clone();
            raw.nics = b.nics.clone().unwrap_or_default();
            raw.disks = b.disks.clone().unwrap_or_default();
            return Some((raw, false));
        }

        if Instant::now() >= deadline {
            skip(skipped, "cycle deadline passed".into());
            return None;
        }
        let t0 = Stamp::now();
        let info = if need_info {
            match fallback::info(&l.domain) {
                Ok(i) => Some(i),
                Err(e) => {
                    skip(skipped, e.message().to_string());
                    return None;
                }
            }
        } else {
            None
        };
        if let Some(i) = &info {
            if !i.state.has_guest_counters() {
                // It stopped since the bulk call: report it as it is now.
                raw.state = i.state;
                raw.state_reason = 0; // unknown: info() carries no reason
                let s = Stamp::now();
                raw.mono = s.mono;
                raw.wall_ns = s.wall_ns;
                return Some((raw, true));
            }
        }

        raw.cpu = b.cpu.or_else(|| {
            info.map(|i| CpuTimes {
                time_ns: i.cpu_time_ns,
                user_ns: None,
                system_ns: None,
            })
        });
        raw.vcpus = b.vcpus.or(info.map(|i| i.vcpus));
        raw.max_mem_kib = bulk_max.or(info.map(|i| i.max_mem_kib));
        raw.cur_mem_kib = bulk_cur.or(info.map(|i| i.cur_mem_kib));
        raw.vcpu_times_ns = b.vcpu_times_ns.clone();
        raw.balloon = match b.balloon {
            Some(bal) => bal,
            None => fallback::balloon(&l.domain).unwrap_or_default(),
        };

        if need_devices {
            let now = Instant::now();
            let dom = &l.domain;
            match self
                .devices
                .get_or_load(&l.uuid, l.id, now, || dom.xml_desc(0))
            {
                Ok(devs) => {
                    let devs = devs.clone();
                    let mut failed = false;
                    raw.nics = match &b.nics {
                        Some(n) => n.clone(),
                        None => {
                            let (n, f) = fallback::nic_stats(dom, &devs.nics, &l.name, skipped);
                            failed |= f;
                            n
                        }
                    };
                    raw.disks = match &b.disks {
                        Some(d) => d.clone(),
                        None => {
                            let (d, f) = fallback::disk_stats(dom, &devs.disks, &l.name, skipped);
                            failed |= f;
                            d
                        }
                    };
                    if failed {
                        // Names may be stale (hot-unplug): re-read XML next cycle.
                        self.devices.invalidate(&l.uuid);
                    }
                }
                Err(e) => {
                    skipped.push(SkipNote {
                        what: format!("devices of '{}'", l.name),
                        why: e.to_string(),
                    });
                    raw.nics = b.nics.clone().unwrap_or_default();
                    raw.disks = b.disks.clone().unwrap_or_default();
                }
            }
        } else {
            raw.nics = b.nics.clone().unwrap_or_default();
            raw.disks = b.disks.clone().unwrap_or_default();
        }

        // Δt must match the CPU counter's reading: keep the bulk stamp when
        // cpu.time came from the bulk call, else this domain's own reads.
        if b.cpu.is_none() {
            let s = t0.mid(Stamp::now());
            raw.mono = s.mono;
            raw.wall_ns = s.wall_ns;
        }
        Some((raw, true))
    }
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
