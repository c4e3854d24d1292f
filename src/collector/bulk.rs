//! The bulk call `virConnectGetAllDomainStats`, wrapped safely.
//!
//! `virt` 0.5 cannot parse the records this call returns, so this module talks
//! to `virt-sys` directly: it copies every record into owned Rust values
//! ([`BulkRecord`]) and frees libvirt's list before returning. Turning a
//! record's parameters into model values is the pure [`parse_record`], which is
//! unit-tested on parameter lists shaped like `virsh domstats --raw` output.

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr};
use std::ptr;

use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::Error;

use crate::model::{BalloonStats, CpuTimes, DiskStats, DomainState, NicStats};

/// The groups vmpulse asks for: state, cpu-total, balloon, vcpu, interface, block.
pub const STATS_GROUPS: u32 = virt_sys::VIR_DOMAIN_STATS_STATE
    | virt_sys::VIR_DOMAIN_STATS_CPU_TOTAL
    | virt_sys::VIR_DOMAIN_STATS_BALLOON
    | virt_sys::VIR_DOMAIN_STATS_VCPU
    | virt_sys::VIR_DOMAIN_STATS_INTERFACE
    | virt_sys::VIR_DOMAIN_STATS_BLOCK;

/// Only the state group (used for inactive domains: their other groups are
/// not the guest's, and reading block sizes of shut-off disks costs I/O).
pub const STATS_STATE_ONLY: u32 = virt_sys::VIR_DOMAIN_STATS_STATE;

/// Filter: active domains only.
pub const FILTER_ACTIVE: u32 = virt_sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE;
/// Filter: inactive domains only.
pub const FILTER_INACTIVE: u32 = virt_sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE;
/// Skip (report without monitor data) domains whose job another call holds,
/// instead of waiting for it (libvirt 4.5 and later).
pub const NOWAIT: u32 = virt_sys::VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;

/// One typed parameter's value, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Bool(bool),
    String(String),
}

impl TypedValue {
    /// Any integer type as `u64`; `None` for negatives and non-integers.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Int(v) => u64::try_from(v).ok(),
            Self::UInt(v) => Some(u64::from(v)),
            Self::LLong(v) => u64::try_from(v).ok(),
            Self::ULLong(v) => Some(v),
            _ => None,
        }
    }

    /// Any integer type as `i32` when it fits.
    pub fn as_i32(&self) -> Option<i32> {
        match *self {
            Self::Int(v) => Some(v),
            Self::UInt(v) => i32::try_from(v).ok(),
            Self::LLong(v) => i32::try_from(v).ok(),
            Self::ULLong(v) => i32::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

/// One parameter: libvirt's field name (e.g. `net.0.rx.bytes`) and value.
pub type Param = (String, TypedValue);

/// One domain's record from the bulk call, owned.
pub struct BulkRecord {
    /// A reference of our own on the domain, usable after libvirt's list is freed
    /// (for per-domain fallback calls).
    pub domain: Domain,
    pub uuid: String,
    pub name: String,
    /// `None` for inactive domains.
    pub id: Option<u32>,
    pub params: Vec<Param>,
}

impl std::fmt::Debug for BulkRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkRecord")
            .field("uuid", &self.uuid)
            .field("name", &self.name)
            .field("id", &self.id)
            .field("params", &self.params)
            .finish()
    }
}

/// Frees libvirt's record list however we leave [`all_domain_stats`].
struct RecordList(*mut virt_sys::virDomainStatsRecordPtr);

impl Drop for RecordList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from virConnectGetAllDomainStats and is
            // freed exactly once, here.
            unsafe { virt_sys::virDomainStatsRecordListFree(self.0) };
        }
    }
}

/// Runs `virConnectGetAllDomainStats(conn, groups, flags)` and copies the result.
///
/// Records whose domain identity cannot be read are left out (they are
/// counted in the returned `usize`, so the caller can report them).
pub fn all_domain_stats(
    conn: &Connect,
    groups: u32,
    flags: u32,
) -> Result<(Vec<BulkRecord>, usize), Error> {
    let mut raw: *mut virt_sys::virDomainStatsRecordPtr = ptr::null_mut();
    // SAFETY: conn holds a live connection reference; `raw` receives a
    // NULL-terminated array that RecordList frees.
    let n =
        unsafe { virt_sys::virConnectGetAllDomainStats(conn.as_ptr(), groups, &mut raw, flags) };
    let list = RecordList(raw);
    if n < 0 {
        return Err(Error::last_error());
    }
    if list.0.is_null() {
        return Ok((Vec::new(), 0));
    }
    let count = usize::try_from(n).unwrap_or(0);
    let mut out = Vec::with_capacity(count);
    let mut unreadable = 0;
    for i in 0..count {
        // SAFETY: libvirt returned `n` records; index i < n is in bounds.
        let rec_ptr = unsafe { *list.0.add(i) };
        if rec_ptr.is_null() {
            break;
        }
        // SAFETY: non-null record pointer owned by the list, valid until it is freed.
        let rec = unsafe { &*rec_ptr };
        // SAFETY: params/nparams describe libvirt's array for this record.
        let params = unsafe { copy_params(rec.params, rec.nparams) };
        // SAFETY: rec.dom is a valid domain pointer while the list lives.
        match unsafe { own_domain(rec.dom) } {
            Some((domain, uuid, name, id)) => out.push(BulkRecord {
                domain,
                uuid,
                name,
                id,
                params,
            }),
            None => unreadable += 1,
        }
    }
    drop(list);
    Ok((out, unreadable))
}

/// Takes a reference of our own on `dom` and reads its identity, which libvirt
/// keeps client-side (no round trip).
///
/// # Safety
/// `dom` must be null or a valid domain pointer.
unsafe fn own_domain(dom: virt_sys::virDomainPtr) -> Option<(Domain, String, String, Option<u32>)> {
    if dom.is_null() || virt_sys::virDomainRef(dom) < 0 {
        return None;
    }
    // From here the Domain owns the extra reference and releases it on drop.
    let domain = Domain::from_ptr(dom);
    // The raw bytes, formatted here: libvirt's own string form costs a
    // `printf` of 16 `%02x` per domain and cycle (a tenth of the test driver's cycle).
    let mut raw = [0u8; virt_sys::VIR_UUID_BUFLEN as usize];
    if virt_sys::virDomainGetUUID(dom, raw.as_mut_ptr()) < 0 {
        return None;
    }
    let uuid = uuid_string(&raw);
    let name_ptr = virt_sys::virDomainGetName(dom);
    if name_ptr.is_null() {
        return None;
    }
    let name = CStr::from_ptr(name_ptr).to_string_lossy().into_owned();
    let id = domain.id();
    Some((domain, uuid, name, id))
}

/// A UUID's 16 bytes as libvirt writes them (`virUUIDFormat`): lower-case
/// hex, dashes after bytes 4, 6, 8 and 10. Pure.
pub fn uuid_string(raw: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Reads a fixed-size C char buffer up to its first NUL (or its end).
/// One allocation (the string): this runs for every parameter of every record.
pub(crate) fn c_field_to_string(buf: &[c_char]) -> String {
    let len = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
    // SAFETY: `c_char` is `i8` or `u8`, the same size and alignment as `u8`;
    // the slice covers `len <= buf.len()` initialised elements of `buf`.
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
    String::from_utf8_lossy(bytes).into_owned()
}

/// Copies `nparams` typed parameters into owned values. Unknown types are skipped.
///
/// # Safety
/// `params` must be null or point to at least `nparams` valid parameters.
pub unsafe fn copy_params(params: *const virt_sys::virTypedParameter, nparams: i32) -> Vec<Param> {
    let n = usize::try_from(nparams).unwrap_or(0);
    if params.is_null() || n == 0 {
        return Vec::new();
    }
    let slice = std::slice::from_raw_parts(params, n);
    let mut out = Vec::with_capacity(n);
    for p in slice {
        let name = c_field_to_string(&p.field);
        let value = match u32::try_from(p.type_).unwrap_or(0) {
            virt_sys::VIR_TYPED_PARAM_INT => TypedValue::Int(p.value.i),
            virt_sys::VIR_TYPED_PARAM_UINT => TypedValue::UInt(p.value.ui),
            virt_sys::VIR_TYPED_PARAM_LLONG => TypedValue::LLong(p.value.l),
            virt_sys::VIR_TYPED_PARAM_ULLONG => TypedValue::ULLong(p.value.ul),
            virt_sys::VIR_TYPED_PARAM_DOUBLE => TypedValue::Double(p.value.d),
            virt_sys::VIR_TYPED_PARAM_BOOLEAN => TypedValue::Bool(p.value.b != 0),
            virt_sys::VIR_TYPED_PARAM_STRING => {
                let s = p.value.s;
                if s.is_null() {
                    continue;
                }
                TypedValue::String(CStr::from_ptr(s).to_string_lossy().into_owned())
            }
            _ => continue,
        };
        out.push((name, value));
    }
    out
}

/// What one bulk record says about a domain. A group libvirt did not supply
/// stays `None`, so the caller knows what to fetch per domain.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkStats {
    pub state: Option<DomainState>,
    pub state_reason: Option<i32>,
    /// cpu-total group (`cpu.time` present).
    pub cpu: Option<CpuTimes>,
    /// balloon group (any `balloon.*` present).
    pub balloon: Option<BalloonStats>,
    /// `vcpu.current`.
    pub vcpus: Option<u32>,
    /// `vcpu.N.time` for N = 0.. up to the first vCPU without a time.
    pub vcpu_times_ns: Vec<u64>,
    /// `vcpu.N.delay`, same indexing; empty unless every listed vCPU has one.
    pub vcpu_delays_ns: Vec<u64>,
    /// interface group (`net.count` present).
    pub nics: Option<Vec<NicStats>>,
    /// block group (`block.count` present); one entry per disk (top of chain).
    pub disks: Option<Vec<DiskStats>>,
}

/// Splits `prefix.N.rest` into `(N, rest)`.
fn indexed<'a>(key: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let tail = key.strip_prefix(prefix)?;
    let (idx, rest) = tail.split_once('.')?;
    Some((idx.parse().ok()?, rest))
}

#[derive(Default)]
struct NicAcc {
    name: Option<String>,
    fields: BTreeMap<String, u64>,
}

#[derive(Default)]
struct DiskAcc {
    name: Option<String>,
    path: Option<String>,
    fields: BTreeMap<String, u64>,
}

/// Maps one record's parameters to model values. Pure.
pub fn parse_record(params: &[Param]) -> BulkStats {
    let mut st = BulkStats::default();
    let mut cpu_time = None;
    let mut cpu_user = None;
    let mut cpu_system = None;
    let mut balloon = BalloonStats::default();
    let mut any_balloon = false;
    let mut vcpu_times: BTreeMap<usize, u64> = BTreeMap::new();
    let mut vcpu_delays: BTreeMap<usize, u64> = BTreeMap::new();
    let mut net_count: Option<usize> = None;
    let mut nics: BTreeMap<usize, NicAcc> = BTreeMap::new();
    let mut block_count: Option<usize> = None;
    let mut disks: BTreeMap<usize, DiskAcc> = BTreeMap::new();

    for (key, value) in params {
        let key = key.as_str();
        match key {
            "state.state" => st.state = value.as_i32().map(DomainState::from_code),
            "state.reason" => st.state_reason = value.as_i32(),
            "cpu.time" => cpu_time = value.as_u64(),
            "cpu.user" => cpu_user = value.as_u64(),
            "cpu.system" => cpu_system = value.as_u64(),
            "vcpu.current" => st.vcpus = value.as_u64().and_then(|v| u32::try_from(v).ok()),
            "net.count" => net_count = value.as_u64().and_then(|v| usize::try_from(v).ok()),
            "block.count" => block_count = value.as_u64().and_then(|v| usize::try_from(v).ok()),
            _ => {
                if let Some(field) = key.strip_prefix("balloon.") {
                    any_balloon = true;
                    let v = value.as_u64();
                    match field {
                        "current" => balloon.current_kib = v,
                        "maximum" => balloon.maximum_kib = v,
                        "swap_in" => balloon.swap_in_kib = v,
                        "swap_out" => balloon.swap_out_kib = v,
                        "major_fault" => balloon.major_fault = v,
                        "minor_fault" => balloon.minor_fault = v,
                        "unused" => balloon.unused_kib = v,
                        "available" => balloon.available_kib = v,
                        "usable" => balloon.usable_kib = v,
                        "rss" => balloon.rss_kib = v,
                        "disk_caches" => balloon.disk_caches_kib = v,
                        "last-update" => balloon.last_update = v,
                        _ => {}
                    }
                } else if let Some((i, rest)) = indexed(key, "vcpu.") {
                    let map = match rest {
                        "time" => Some(&mut vcpu_times),
                        "delay" => Some(&mut vcpu_delays),
                        _ => None,
                    };
                    if let (Some(map), Some(v)) = (map, value.as_u64()) {
                        map.insert(i, v);
                    }
                } else if let Some((i, rest)) = indexed(key, "net.") {
                    let acc = nics.entry(i).or_default();
                    if rest == "name" {
                        acc.name = value.as_str().map(str::to_string);
                    } else if let Some(v) = value.as_u64() {
                        acc.fields.insert(rest.to_string(), v);
                    }
                } else if let Some((i, rest)) = indexed(key, "block.") {
                    let acc = disks.entry(i).or_default();
                    match rest {
                        "name" => acc.name = value.as_str().map(str::to_string),
                        "path" => acc.path = value.as_str().map(str::to_string),
                        _ => {
                            if let Some(v) = value.as_u64() {
                                acc.fields.insert(rest.to_string(), v);
                            }
                        }
                    }
                }
            }
        }
    }

    if let Some(time_ns) = cpu_time {
        st.cpu = Some(CpuTimes {
            time_ns,
            user_ns: cpu_user,
            system_ns: cpu_system,
        });
    }
    if any_balloon {
        st.balloon = Some(balloon);
    }
    // Contiguous from vCPU 0: offline vCPUs report a state but no time.
    st.vcpu_times_ns = contiguous(vcpu_times);
    // Delays count only when every vCPU with a time has one (same divisor).
    st.vcpu_delays_ns = contiguous(vcpu_delays);
    if st.vcpu_delays_ns.len() != st.vcpu_times_ns.len() {
        st.vcpu_delays_ns.clear();
    }

    if let Some(count) = net_count {
        st.nics = Some(
            nics.into_iter()
                .filter(|(i, _)| *i < count)
                .filter_map(|(_, acc)| nic_from(acc))
                .collect(),
        );
    }
    if let Some(count) = block_count {
        // With VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING every layer of a
        // disk's backing chain gets an entry with the disk's name, top layer
        // first. `backingIndex` cannot tell them apart: libvirt >= 6 sets it
        // on top-level disks too (measured on 9.0). So keep the first per name.
        let mut seen = std::collections::HashSet::new();
        st.disks = Some(
            disks
                .into_iter()
                .filter(|(i, _)| *i < count)
                .filter_map(|(_, acc)| disk_from(acc))
                .filter(|d| seen.insert(d.name.clone()))
                .collect(),
        );
    }
    st
}

/// Values of `map` for keys 0, 1, 2... up to the first gap.
fn contiguous(map: BTreeMap<usize, u64>) -> Vec<u64> {
    map.into_iter()
        .enumerate()
        .take_while(|(expected, (i, _))| i == expected)
        .map(|(_, (_, t))| t)
        .collect()
}

/// A NIC needs a name and both byte counters; the others stay `None` when
/// libvirt leaves them out (unknown is not 0).
fn nic_from(acc: NicAcc) -> Option<NicStats> {
    let f = &acc.fields;
    let get = |k: &str| f.get(k).copied();
    Some(NicStats {
        rx_bytes: *f.get("rx.bytes")?,
        tx_bytes: *f.get("tx.bytes")?,
        rx_packets: get("rx.pkts"),
        rx_errors: get("rx.errs"),
        rx_drops: get("rx.drop"),
        tx_packets: get("tx.pkts"),
        tx_errors: get("tx.errs"),
        tx_drops: get("tx.drop"),
        name: acc.name?,
    })
}

/// A disk needs a name and both byte counters (an empty CD-ROM has neither).
fn disk_from(acc: DiskAcc) -> Option<DiskStats> {
    let f = &acc.fields;
    let get = |k: &str| f.get(k).copied();
    Some(DiskStats {
        rd_bytes: *f.get("rd.bytes")?,
        wr_bytes: *f.get("wr.bytes")?,
        rd_reqs: get("rd.reqs"),
        wr_reqs: get("wr.reqs"),
        fl_reqs: f.get("fl.reqs").copied(),
        rd_times_ns: get("rd.times"),
        wr_times_ns: get("wr.times"),
        fl_times_ns: get("fl.times"),
        errors: None,
        allocation: f.get("allocation").copied(),
        capacity: f.get("capacity").copied(),
        physical: f.get("physical").copied(),
        path: acc.path,
        name: acc.name?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_bytes_are_written_as_libvirt_writes_them() {
        let raw = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x46, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        assert_eq!(uuid_string(&raw), "00112233-4455-4677-8899-aabbccddeeff");
    }

    fn p(k: &str, v: TypedValue) -> Param {
        (k.to_string(), v)
    }
    fn ull(k: &str, v: u64) -> Param {
        p(k, TypedValue::ULLong(v))
    }
    fn ui(k: &str, v: u32) -> Param {
        p(k, TypedValue::UInt(v))
    }
    fn s(k: &str, v: &str) -> Param {
        p(k, TypedValue::String(v.to_string()))
    }

    /// Shape of `virsh domstats --raw` for a qemu guest with a virtio balloon,
    /// one NIC and two disks (libvirt 9.0, measured on a TCG guest).
    fn qemu_guest() -> Vec<Param> {
        vec![
            p("state.state", TypedValue::Int(1)),
            p("state.reason", TypedValue::Int(1)),
            ull("cpu.time", 13_776_416_000),
            ull("cpu.user", 10_110_000_000),
            ull("cpu.system", 2_930_000_000),
            ull("balloon.current", 131_072),
            ull("balloon.maximum", 131_072),
            ull("balloon.swap_in", 0),
            ull("balloon.swap_out", 0),
            ull("balloon.major_fault", 151),
            ull("balloon.minor_fault", 48_512),
            ull("balloon.unused", 60_544),
            ull("balloon.available", 110_364),
            ull("balloon.usable", 65_300),
            ull("balloon.last-update", 1_718_000_000),
            ull("balloon.disk_caches", 3_116),
            ull("balloon.rss", 212_612),
            ui("vcpu.current", 2),
            ui("vcpu.maximum", 2),
            p("vcpu.0.state", TypedValue::Int(1)),
            ull("vcpu.0.time", 9_020_000_000),
            ull("vcpu.0.wait", 0),
            ull("vcpu.0.delay", 42),
            p("vcpu.1.state", TypedValue::Int(1)),
            ull("vcpu.1.time", 4_110_000_000),
            ull("vcpu.1.wait", 0),
            ull("vcpu.1.delay", 17),
            ui("net.count", 1),
            s("net.0.name", "vnet3"),
            ull("net.0.rx.bytes", 5_400),
            ull("net.0.rx.pkts", 60),
            ull("net.0.rx.errs", 0),
            ull("net.0.rx.drop", 1),
            ull("net.0.tx.bytes", 8_820),
            ull("net.0.tx.pkts", 90),
            ull("net.0.tx.errs", 0),
            ull("net.0.tx.drop", 0),
            ui("block.count", 2),
            s("block.0.name", "vda"),
            s("block.0.path", "/var/lib/libvirt/images/g1-a.qcow2"),
            ui("block.0.backingIndex", 2),
            ull("block.0.rd.reqs", 120),
            ull("block.0.rd.bytes", 491_520),
            ull("block.0.rd.times", 1_000_000),
            ull("block.0.wr.reqs", 300),
            ull("block.0.wr.bytes", 1_228_800),
            ull("block.0.wr.times", 2_000_000),
            ull("block.0.fl.reqs", 4),
            ull("block.0.fl.times", 10),
            ull("block.0.allocation", 1_245_184),
            ull("block.0.capacity", 33_554_432),
            ull("block.0.physical", 1_245_184),
            s("block.1.name", "vdb"),
            s("block.1.path", "/var/lib/libvirt/images/g1-b.qcow2"),
            ui("block.1.backingIndex", 1),
            ull("block.1.rd.reqs", 7),
            ull("block.1.rd.bytes", 28_672),
            ull("block.1.wr.reqs", 9),
            ull("block.1.wr.bytes", 36_864),
            ull("block.1.fl.reqs", 0),
            ull("block.1.allocation", 200_704),
            ull("block.1.capacity", 16_777_216),
            ull("block.1.physical", 200_704),
        ]
    }

    #[test]
    fn full_qemu_record() {
        let st = parse_record(&qemu_guest());
        assert_eq!(st.state, Some(DomainState::Running));
        assert_eq!(st.state_reason, Some(1));
        assert_eq!(
            st.cpu,
            Some(CpuTimes {
                time_ns: 13_776_416_000,
                user_ns: Some(10_110_000_000),
                system_ns: Some(2_930_000_000),
            })
        );
        let b = st.balloon.expect("balloon group");
        assert_eq!(b.current_kib, Some(131_072));
        assert_eq!(b.maximum_kib, Some(131_072));
        assert_eq!(b.swap_in_kib, Some(0));
        assert_eq!(b.swap_out_kib, Some(0));
        assert_eq!(b.major_fault, Some(151));
        assert_eq!(b.minor_fault, Some(48_512));
        assert_eq!(b.unused_kib, Some(60_544));
        assert_eq!(b.available_kib, Some(110_364));
        assert_eq!(b.usable_kib, Some(65_300));
        assert_eq!(b.rss_kib, Some(212_612));
        assert_eq!(b.disk_caches_kib, Some(3_116));
        assert_eq!(b.last_update, Some(1_718_000_000));
        assert_eq!(st.vcpus, Some(2));
        assert_eq!(st.vcpu_times_ns, vec![9_020_000_000, 4_110_000_000]);
        assert_eq!(st.vcpu_delays_ns, vec![42, 17]);

        let nics = st.nics.expect("interface group");
        assert_eq!(
            nics,
            vec![NicStats {
                name: "vnet3".into(),
                rx_bytes: 5_400,
                rx_packets: Some(60),
                rx_errors: Some(0),
                rx_drops: Some(1),
                tx_bytes: 8_820,
                tx_packets: Some(90),
                tx_errors: Some(0),
                tx_drops: Some(0),
            }]
        );
        let disks = st.disks.expect("block group");
        assert_eq!(disks.len(), 2);
        assert_eq!(
            disks[0],
            DiskStats {
                name: "vda".into(),
                path: Some("/var/lib/libvirt/images/g1-a.qcow2".into()),
                rd_reqs: Some(120),
                rd_bytes: 491_520,
                wr_reqs: Some(300),
                wr_bytes: 1_228_800,
                fl_reqs: Some(4),
                rd_times_ns: Some(1_000_000),
                wr_times_ns: Some(2_000_000),
                fl_times_ns: Some(10),
                errors: None,
                allocation: Some(1_245_184),
                capacity: Some(33_554_432),
                physical: Some(1_245_184),
            }
        );
        assert_eq!(disks[1].name, "vdb");
        assert_eq!(disks[1].wr_bytes, 36_864);
        // Times libvirt does not report stay unknown, never 0.
        assert_eq!((disks[1].rd_times_ns, disks[1].fl_times_ns), (None, None));
    }

    #[test]
    fn test_driver_record_has_state_only() {
        let st = parse_record(&[
            p("state.state", TypedValue::Int(5)),
            p("state.reason", TypedValue::Int(0)),
        ]);
        assert_eq!(st.state, Some(DomainState::Shutoff));
        assert_eq!(st.state_reason, Some(0));
        assert_eq!(st.cpu, None);
        assert_eq!(st.balloon, None);
        assert_eq!(st.vcpus, None);
        assert!(st.vcpu_times_ns.is_empty());
        assert_eq!(st.nics, None);
        assert_eq!(st.disks, None);
    }

    #[test]
    fn top_level_disks_with_backing_index_are_kept() {
        // libvirt 9.0 with -blockdev, no BACKING flag (measured): every
        // top-level disk carries backingIndex.
        let params = vec![
            ui("block.count", 2),
            s("block.0.name", "vda"),
            s("block.0.path", "/tmp/g2-a.qcow2"),
            ui("block.0.backingIndex", 2),
            ull("block.0.rd.bytes", 10),
            ull("block.0.wr.bytes", 20),
            s("block.1.name", "vdb"),
            s("block.1.path", "/tmp/g2-b.qcow2"),
            ui("block.1.backingIndex", 1),
            ull("block.1.rd.bytes", 30),
            ull("block.1.wr.bytes", 40),
        ];
        let disks = parse_record(&params).disks.expect("block group");
        let names: Vec<_> = disks
            .iter()
            .map(|d| (d.name.as_str(), d.rd_bytes))
            .collect();
        assert_eq!(names, vec![("vda", 10), ("vdb", 30)]);
    }

    #[test]
    fn backing_chain_layers_are_dropped() {
        // Shape with VIR_CONNECT_GET_ALL_DOMAINS_STATS_BACKING: block.count
        // counts chain layers; each layer repeats the disk's name, top first.
        let params = vec![
            ui("block.count", 3),
            s("block.0.name", "vda"),
            s("block.0.path", "/img/top.qcow2"),
            ull("block.0.rd.bytes", 10),
            ull("block.0.wr.bytes", 20),
            s("block.1.name", "vda"),
            s("block.1.path", "/img/base.qcow2"),
            ui("block.1.backingIndex", 1),
            ull("block.1.rd.bytes", 0),
            ull("block.1.wr.bytes", 0),
            s("block.2.name", "vdb"),
            ull("block.2.rd.bytes", 30),
            ull("block.2.wr.bytes", 40),
        ];
        let disks = parse_record(&params).disks.expect("block group");
        let names: Vec<_> = disks
            .iter()
            .map(|d| (d.name.as_str(), d.rd_bytes))
            .collect();
        assert_eq!(names, vec![("vda", 10), ("vdb", 30)]);
        assert_eq!(disks[0].path.as_deref(), Some("/img/top.qcow2"));
        assert_eq!(disks[1].path, None);
    }

    #[test]
    fn empty_cdrom_and_indices_beyond_count_are_dropped() {
        let params = vec![
            ui("block.count", 2),
            s("block.0.name", "vda"),
            ull("block.0.rd.bytes", 1),
            ull("block.0.wr.bytes", 2),
            s("block.1.name", "sda"), // empty CD-ROM: name only
            s("block.5.name", "ghost"),
            ull("block.5.rd.bytes", 1),
            ull("block.5.wr.bytes", 1),
            ui("net.count", 0),
        ];
        let st = parse_record(&params);
        let disks = st.disks.expect("block group");
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].name, "vda");
        assert_eq!(st.nics, Some(vec![]));
    }

    #[test]
    fn vcpu_times_stop_at_first_gap_and_ignore_other_fields() {
        let params = vec![
            ui("vcpu.current", 2),
            ui("vcpu.maximum", 4),
            ull("vcpu.0.time", 5),
            ull("vcpu.1.time", 6),
            p("vcpu.2.state", TypedValue::Int(0)),
            ull("vcpu.3.time", 8),
        ];
        let st = parse_record(&params);
        assert_eq!(st.vcpus, Some(2));
        assert_eq!(st.vcpu_times_ns, vec![5, 6]);
        assert!(st.vcpu_delays_ns.is_empty(), "no vcpu.N.delay reported");
    }

    #[test]
    fn vcpu_delays_need_one_per_timed_vcpu() {
        let params = vec![
            ull("vcpu.0.time", 5),
            ull("vcpu.0.delay", 1),
            ull("vcpu.1.time", 6),
        ];
        let st = parse_record(&params);
        assert_eq!(st.vcpu_times_ns, vec![5, 6]);
        assert!(st.vcpu_delays_ns.is_empty());
    }

    #[test]
    fn missing_packet_and_request_counters_stay_unknown() {
        let params = vec![
            ui("net.count", 1),
            s("net.0.name", "tap0"),
            ull("net.0.rx.bytes", 10),
            ull("net.0.tx.bytes", 20),
            ui("block.count", 1),
            s("block.0.name", "vda"),
            ull("block.0.rd.bytes", 1),
            ull("block.0.wr.bytes", 2),
        ];
        let st = parse_record(&params);
        let nic = &st.nics.expect("interface group")[0];
        assert_eq!((nic.rx_bytes, nic.tx_bytes), (10, 20));
        assert_eq!(
            (nic.rx_packets, nic.tx_drops, nic.rx_errors),
            (None, None, None)
        );
        let disk = &st.disks.expect("block group")[0];
        assert_eq!((disk.rd_reqs, disk.wr_reqs), (None, None));
    }

    #[test]
    fn wrong_types_and_negatives_do_not_panic() {
        let params = vec![
            p("state.state", TypedValue::String("1".into())),
            p("cpu.time", TypedValue::LLong(-5)),
            p("vcpu.current", TypedValue::Double(2.0)),
            p("net.count", TypedValue::Int(1)),
            p("net.0.name", TypedValue::Int(3)),
            ull("net.0.rx.bytes", 1),
            ull("net.0.tx.bytes", 1),
            p("balloon.current", TypedValue::Bool(true)),
        ];
        let st = parse_record(&params);
        assert_eq!(st.state, None);
        assert_eq!(st.cpu, None);
        assert_eq!(st.vcpus, None);
        assert_eq!(st.nics, Some(vec![])); // NIC without a string name is dropped
        assert_eq!(st.balloon, Some(BalloonStats::default()));
    }

    #[test]
    fn integer_widths_are_accepted() {
        assert_eq!(TypedValue::Int(7).as_u64(), Some(7));
        assert_eq!(TypedValue::Int(-1).as_u64(), None);
        assert_eq!(TypedValue::UInt(7).as_u64(), Some(7));
        assert_eq!(TypedValue::LLong(7).as_u64(), Some(7));
        assert_eq!(TypedValue::ULLong(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(TypedValue::ULLong(u64::MAX).as_i32(), None);
        assert_eq!(TypedValue::String("x".into()).as_str(), Some("x"));
    }

    #[test]
    fn c_field_without_nul_is_bounded() {
        let buf = [b'a' as c_char; 4];
        assert_eq!(c_field_to_string(&buf), "aaaa");
        let buf = [b'a' as c_char, 0, b'b' as c_char];
        assert_eq!(c_field_to_string(&buf), "a");
    }
}
