//! Per-domain libvirt calls for what the bulk call did not supply.
//!
//! libvirt's test driver (and any driver without `virConnectGetAllDomainStats`
//! groups) only gets here: `virDomainGetInfo`, `virDomainMemoryStats`,
//! `virDomainInterfaceStats` and `virDomainBlockStats`, one device at a time.
//! A failing device is left out and noted; the domain itself still counts.

use std::os::raw::c_int;

use virt::domain::{BlockStats, Domain, InterfaceStats, MemoryStat};
use virt::error::Error;

use super::devices::{DiskDevice, NicDevice};
use super::skip::SkipNote;
use crate::model::{BalloonStats, DiskStats, DomainState, NicStats};

/// `virDomainGetInfo`, in model units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoReading {
    pub state: DomainState,
    pub vcpus: u32,
    pub max_mem_kib: u64,
    pub cur_mem_kib: u64,
    pub cpu_time_ns: u64,
}

/// `virDomainGetState` with its raw codes. (`virt`'s `Domain::state` ignores
/// the call's failure and would report state -1 instead of an error.)
pub fn domain_state(dom: &Domain) -> Result<(DomainState, i32), Error> {
    let mut state: c_int = -1;
    let mut reason: c_int = -1;
    // SAFETY: dom holds a live domain reference; both out-pointers are valid.
    let rc = unsafe { virt_sys::virDomainGetState(dom.as_ptr(), &mut state, &mut reason, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok((DomainState::from_code(state), reason))
}

/// How long the QEMU monitor has been busy with another call
/// (`virDomainGetControlInfo`, answered without the monitor), or `None` when it
/// is free. A busy monitor makes per-domain stats calls wait for it.
pub fn monitor_busy(dom: &Domain) -> Result<Option<std::time::Duration>, Error> {
    let mut info = virt_sys::virDomainControlInfo {
        state: 0,
        details: 0,
        stateTime: 0,
    };
    // SAFETY: dom holds a live domain reference; `info` is a valid out-pointer.
    let rc = unsafe { virt_sys::virDomainGetControlInfo(dom.as_ptr(), &mut info, 0) };
    if rc < 0 {
        return Err(Error::last_error());
    }
    Ok((info.state != virt_sys::VIR_DOMAIN_CONTROL_OK)
        .then(|| std::time::Duration::from_millis(info.stateTime)))
}

/// The domain's metadata element of namespace `uri` (`virDomainGetMetadata`, no
/// QEMU monitor involved); `None` when the domain has none.
pub fn metadata(dom: &Domain, uri: &str) -> Result<Option<String>, Error> {
    match dom.metadata(virt_sys::VIR_DOMAIN_METADATA_ELEMENT as i32, Some(uri), 0) {
        Ok(xml) => Ok(Some(xml)),
        Err(e) if e.code().is(virt::error::ErrorNumber::NoDomainMetadata) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn info(dom: &Domain) -> Result<InfoReading, Error> {
    let i = dom.info()?;
    Ok(InfoReading {
        state: DomainState::from_code(i32::try_from(i.state.to_raw()).unwrap_or(-1)),
        vcpus: i.nr_virt_cpu,
        max_mem_kib: i.max_mem,
        cur_mem_kib: i.memory,
        cpu_time_ns: i.cpu_time,
    })
}

/// The guest's balloon statistics, or `None` when the driver or guest has none
/// (most test-driver domains, guests without a balloon): not an error.
pub fn balloon(dom: &Domain) -> Option<BalloonStats> {
    dom.memory_stats(0)
        .ok()
        .map(|stats| balloon_from_memory_stats(&stats))
}

/// Maps `virDomainMemoryStats` tags to balloon fields. Pure.
pub fn balloon_from_memory_stats(stats: &[MemoryStat]) -> BalloonStats {
    let mut b = BalloonStats::default();
    for s in stats {
        let v = Some(s.val);
        match s.tag {
            virt_sys::VIR_DOMAIN_MEMORY_STAT_SWAP_IN => b.swap_in_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_SWAP_OUT => b.swap_out_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT => b.major_fault = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT => b.minor_fault = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_UNUSED => b.unused_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE => b.available_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON => b.current_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_RSS => b.rss_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_USABLE => b.usable_kib = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE => b.last_update = v,
            virt_sys::VIR_DOMAIN_MEMORY_STAT_DISK_CACHES => b.disk_caches_kib = v,
            _ => {}
        }
    }
    b
}

/// libvirt reports -1 for a counter the driver does not supply: unknown, not 0.
fn counter(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// `virDomainInterfaceStats` result as a model NIC, `None` when libvirt does
/// not report both byte counters (nothing to derive from). Pure.
pub fn nic_from_interface_stats(name: &str, s: &InterfaceStats) -> Option<NicStats> {
    Some(NicStats {
        name: name.to_string(),
        rx_bytes: counter(s.rx_bytes)?,
        rx_packets: counter(s.rx_packets),
        rx_errors: counter(s.rx_errs),
        rx_drops: counter(s.rx_drop),
        tx_bytes: counter(s.tx_bytes)?,
        tx_packets: counter(s.tx_packets),
        tx_errors: counter(s.tx_errs),
        tx_drops: counter(s.tx_drop),
    })
}

/// `virDomainBlockStats` result as a model disk, `None` when libvirt does not
/// report both byte counters. Pure.
pub fn disk_from_block_stats(dev: &DiskDevice, s: &BlockStats) -> Option<DiskStats> {
    Some(DiskStats {
        name: dev.name.clone(),
        path: dev.path.clone(),
        rd_reqs: counter(s.rd_req),
        rd_bytes: counter(s.rd_bytes)?,
        wr_reqs: counter(s.wr_req),
        wr_bytes: counter(s.wr_bytes)?,
        errors: counter(s.errs),
        ..DiskStats::default()
    })
}

const NO_BYTE_COUNTERS: &str = "libvirt reports no byte counters for it";

/// Counters of every NIC; a failing one is noted in `skipped` and left out.
/// Returns whether any call failed (the caller may then re-read the XML).
pub fn nic_stats(
    dom: &Domain,
    devs: &[NicDevice],
    domain_name: &str,
    skipped: &mut Vec<SkipNote>,
) -> (Vec<NicStats>, bool) {
    each_device(
        devs,
        |d| &d.name,
        "nic",
        domain_name,
        skipped,
        |d| {
            let s = dom.interface_stats(&d.name)?;
            Ok(nic_from_interface_stats(&d.name, &s))
        },
    )
}

/// Counters of every disk; a failing one is noted in `skipped` and left out.
pub fn disk_stats(
    dom: &Domain,
    devs: &[DiskDevice],
    domain_name: &str,
    skipped: &mut Vec<SkipNote>,
) -> (Vec<DiskStats>, bool) {
    each_device(
        devs,
        |d| &d.name,
        "disk",
        domain_name,
        skipped,
        |d| {
            let s = dom.block_stats(&d.name)?;
            Ok(disk_from_block_stats(d, &s))
        },
    )
}

/// `read` for every device: what it returns is kept, a device without byte counters
/// (`Ok(None)`) or whose call failed is noted in `skipped` as `<kind> <name> of
/// '<domain>'`. Returns whether any call failed.
fn each_device<D, T>(
    devs: &[D],
    name: impl Fn(&D) -> &str,
    kind: &str,
    domain_name: &str,
    skipped: &mut Vec<SkipNote>,
    read: impl Fn(&D) -> Result<Option<T>, virt::error::Error>,
) -> (Vec<T>, bool) {
    let mut out = Vec::with_capacity(devs.len());
    let mut failed = false;
    for d in devs {
        let why = match read(d) {
            Ok(Some(stats)) => {
                out.push(stats);
                continue;
            }
            Ok(None) => NO_BYTE_COUNTERS.to_string(),
            Err(e) => {
                failed = true;
                e.message().to_string()
            }
        };
        skipped.push(SkipNote {
            what: format!("{kind} {} of '{domain_name}'", name(d)),
            why,
        });
    }
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stats_tags_map_to_balloon_fields() {
        let stats: Vec<MemoryStat> = [
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_SWAP_IN, 1),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_SWAP_OUT, 2),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT, 3),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT, 4),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_UNUSED, 5),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE, 6),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON, 7),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_RSS, 8),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_USABLE, 9),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_LAST_UPDATE, 10),
            (virt_sys::VIR_DOMAIN_MEMORY_STAT_DISK_CACHES, 11),
            (99, 12),
        ]
        .iter()
        .map(|&(tag, val)| MemoryStat { tag, val })
        .collect();
        let b = balloon_from_memory_stats(&stats);
        assert_eq!(
            b,
            BalloonStats {
                current_kib: Some(7),
                maximum_kib: None,
                swap_in_kib: Some(1),
                swap_out_kib: Some(2),
                major_fault: Some(3),
                minor_fault: Some(4),
                unused_kib: Some(5),
                available_kib: Some(6),
                usable_kib: Some(9),
                rss_kib: Some(8),
                disk_caches_kib: Some(11),
                last_update: Some(10),
            }
        );
    }

    #[test]
    fn unsupported_counters_stay_unknown() {
        let s = InterfaceStats {
            rx_bytes: 10,
            rx_packets: 2,
            rx_errs: -1,
            rx_drop: -1,
            tx_bytes: 20,
            tx_packets: 3,
            tx_errs: 0,
            tx_drop: -1,
        };
        let n = nic_from_interface_stats("tap-web0", &s).expect("byte counters known");
        assert_eq!(
            (n.name.as_str(), n.rx_bytes, n.rx_errors, n.tx_drops),
            ("tap-web0", 10, None, None)
        );
        assert_eq!(n.tx_errors, Some(0));
        let no_bytes = InterfaceStats { rx_bytes: -1, ..s };
        assert_eq!(nic_from_interface_stats("tap-web0", &no_bytes), None);
        let b = BlockStats {
            rd_req: 1,
            rd_bytes: 512,
            wr_req: 2,
            wr_bytes: 1024,
            errs: -1,
        };
        let dev = DiskDevice {
            name: "vda".into(),
            path: Some("/img/a".into()),
        };
        let d = disk_from_block_stats(&dev, &b).expect("byte counters known");
        assert_eq!(d.errors, None);
        assert_eq!((d.rd_bytes, d.wr_reqs), (512, Some(2)));
        let no_reqs = BlockStats { rd_req: -1, ..b };
        let d2 = disk_from_block_stats(&dev, &no_reqs).expect("byte counters known");
        assert_eq!(d2.rd_reqs, None);
        assert_eq!(d.path.as_deref(), Some("/img/a"));
    }
}
