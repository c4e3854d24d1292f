//! The hypervisor's own figures for the header's host summary: CPUs, memory
//! used/total and libvirt's version. Read once per cycle; cheap calls that
//! never touch a guest.

use std::ffi::c_int;

use virt::connect::Connect;

use super::bulk::c_field_to_string;
use crate::model::HostInfo;

/// Reads the host summary each cycle: CPUs, total memory and the libvirt
/// version once per connection, memory use every time.
#[derive(Debug, Default)]
pub struct HostReader {
    fixed: Option<HostInfo>,
}

impl HostReader {
    /// The host summary; `None` when the driver has no node info.
    pub fn read(&mut self, conn: &Connect) -> Option<HostInfo> {
        if self.fixed.is_none() {
            let node = conn.node_info().ok()?;
            self.fixed = Some(HostInfo {
                cpus: node.cpus,
                memory_total_kib: node.memory,
                memory_used_kib: None,
                libvirt_version: conn
                    .lib_version()
                    .map(version_string)
                    .unwrap_or_else(|_| "?".into()),
            });
        }
        let mut info = self.fixed.clone()?;
        info.memory_used_kib = node_memory_stats(conn).and_then(|s| memory_used_kib(&s));
        Some(info)
    }
}

/// libvirt's `major * 1_000_000 + minor * 1_000 + release` as `major.minor.release`.
pub fn version_string(v: u32) -> String {
    format!("{}.{}.{}", v / 1_000_000, (v / 1_000) % 1_000, v % 1_000)
}

/// `total − free − buffers − cached` (what `free` calls used), KiB. Pure.
pub fn memory_used_kib(stats: &[(String, u64)]) -> Option<u64> {
    let get = |k: &str| stats.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    let total = get("total")?;
    let free = get("free")?;
    let reclaimable = get("buffers").unwrap_or(0) + get("cached").unwrap_or(0);
    Some(total.saturating_sub(free).saturating_sub(reclaimable))
}

/// `virNodeGetMemoryStats` over all cells, KiB.
fn node_memory_stats(conn: &Connect) -> Option<Vec<(String, u64)>> {
    let cell = virt_sys::VIR_NODE_MEMORY_STATS_ALL_CELLS;
    let mut n: c_int = 0;
    // SAFETY: a null params pointer asks libvirt for the count only.
    let rc = unsafe {
        virt_sys::virNodeGetMemoryStats(conn.as_ptr(), cell, std::ptr::null_mut(), &mut n, 0)
    };
    if rc < 0 || n <= 0 {
        return None;
    }
    let empty = virt_sys::virNodeMemoryStats {
        field: [0; 80],
        value: 0,
    };
    let mut params = vec![empty; usize::try_from(n).ok()?];
    // SAFETY: `params` holds `n` entries, as libvirt asked for.
    let rc = unsafe {
        virt_sys::virNodeGetMemoryStats(conn.as_ptr(), cell, params.as_mut_ptr(), &mut n, 0)
    };
    if rc < 0 {
        return None;
    }
    let n = usize::try_from(n).unwrap_or(0).min(params.len());
    Some(
        params[..n]
            .iter()
            .map(|p| (c_field_to_string(&p.field), p.value))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_dotted() {
        assert_eq!(version_string(9_000_000), "9.0.0");
        assert_eq!(version_string(10_010_003), "10.10.3");
    }

    #[test]
    fn used_memory_leaves_out_buffers_and_cache() {
        let s = |k: &str, v| (k.to_string(), v);
        let stats = vec![
            s("total", 1000),
            s("free", 200),
            s("buffers", 50),
            s("cached", 150),
        ];
        assert_eq!(memory_used_kib(&stats), Some(600));
        assert_eq!(memory_used_kib(&stats[..1]), None);
    }
}
