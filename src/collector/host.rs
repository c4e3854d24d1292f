//! The hypervisor's own figures for the header's host line and the
//! `hypervisor` measurements: CPUs, memory used/total, free memory per NUMA
//! node, huge pages per size and libvirt's version.
//!
//! Read every `collector.host_interval` (default 5 s), not every cycle: they
//! change slowly, and each node call is a libvirtd round trip (memory stats
//! are two). Between readings every cycle gets the last reading again, with
//! its own `read_at_ns`, so one point is written per reading. CPUs, total
//! memory, the version and the NUMA/huge-page layout (capabilities XML) are
//! read once per connection; the layout again, at most once a minute, when
//! more huge pages are free than it lists (the operator reserved more).
//! A call the driver does not support leaves its figure absent (libvirt's
//! test driver has no node memory stats), never an error.

use std::ffi::c_int;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use virt::connect::Connect;

use super::bulk::c_field_to_string;
use crate::model::{HostInfo, HugePages};

/// `collector.host_interval`'s default, for sources opened without settings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// How often a layout that looks stale (more pages free than reserved) is read again.
const LAYOUT_RECHECK: Duration = Duration::from_secs(60);

/// What the capabilities XML says about memory: NUMA nodes and page sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// NUMA node ids, in order.
    pub cells: Vec<u32>,
    /// Page sizes the host supports, KiB, smallest (the base page) first.
    pub page_sizes_kib: Vec<u64>,
    /// Reserved pages per size, summed over the nodes.
    pub totals: Vec<(u64, u64)>,
}

/// What does not change while connected.
#[derive(Debug, Clone)]
struct Fixed {
    cpus: u32,
    memory_total_kib: u64,
    libvirt_version: String,
    layout: Layout,
    layout_read: Instant,
}

/// Reads the host figures at most once per interval (see the module header).
#[derive(Debug)]
pub struct HostReader {
    interval: Duration,
    fixed: Option<Fixed>,
    last: Option<(Instant, HostInfo)>,
}

impl HostReader {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            fixed: None,
            last: None,
        }
    }

    /// The host figures: the last reading, or a new one when it is older than
    /// the interval. `None` when the driver has no node info.
    pub fn read(&mut self, conn: &Connect, now: Instant) -> Option<HostInfo> {
        if let Some((at, info)) = &self.last {
            if !is_due(*at, now, self.interval) {
                return Some(info.clone());
            }
        }
        let fixed = self.fixed(conn, now)?;
        let mut info = HostInfo {
            cpus: fixed.cpus,
            memory_total_kib: fixed.memory_total_kib,
            memory_used_kib: node_memory_stats(conn).and_then(|s| memory_used_kib(&s)),
            libvirt_version: fixed.libvirt_version.clone(),
            numa_free_kib: numa_free_kib(conn, &fixed.layout.cells),
            huge_pages: free_pages(conn, &fixed.layout),
            read_at_ns: wall_ns(SystemTime::now()),
        };
        if totals_look_stale(&info.huge_pages)
            && now.saturating_duration_since(fixed.layout_read) >= LAYOUT_RECHECK
        {
            if let Some(f) = self.fixed.as_mut() {
                f.layout = read_layout(conn);
                f.layout_read = now;
                info.huge_pages = free_pages(conn, &f.layout);
            }
        }
        self.last = Some((now, info.clone()));
        Some(info)
    }

    fn fixed(&mut self, conn: &Connect, now: Instant) -> Option<&Fixed> {
        if self.fixed.is_none() {
            let node = conn.node_info().ok()?;
            self.fixed = Some(Fixed {
                cpus: node.cpus,
                memory_total_kib: node.memory,
                libvirt_version: conn
                    .lib_version()
                    .map(version_string)
                    .unwrap_or_else(|_| "?".into()),
                layout: read_layout(conn),
                layout_read: now,
            });
        }
        self.fixed.as_ref()
    }
}

/// Whether a reading taken `at` is older than `interval` at `now`. Pure.
pub fn is_due(at: Instant, now: Instant, interval: Duration) -> bool {
    now.saturating_duration_since(at) >= interval
}

fn wall_ns(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

/// NUMA nodes and page sizes from `virConnectGetCapabilities`; empty when
/// the driver has none or the XML does not parse (then no NUMA or huge-page figures).
fn read_layout(conn: &Connect) -> Layout {
    conn.capabilities()
        .ok()
        .and_then(|xml| parse_layout(&xml))
        .unwrap_or_default()
}

/// `host/cpu/pages/@size` and `host/topology/cells/cell` (id, `pages` counts). Pure.
pub fn parse_layout(xml: &str) -> Option<Layout> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let host = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("host"))?;
    let mut layout = Layout::default();
    for cpu in child(host, "cpu") {
        for p in child(cpu, "pages") {
            if let Some(size) = p.attribute("size").and_then(|s| s.parse().ok()) {
                layout.page_sizes_kib.push(size);
            }
        }
    }
    for topo in child(host, "topology") {
        for cells in child(topo, "cells") {
            for cell in child(cells, "cell") {
                let Some(id) = cell.attribute("id").and_then(|s| s.parse().ok()) else {
                    continue;
                };
                layout.cells.push(id);
                for p in child(cell, "pages") {
                    let size = p.attribute("size").and_then(|s| s.parse::<u64>().ok());
                    let count = p.text().and_then(|t| t.trim().parse::<u64>().ok());
                    if let (Some(size), Some(count)) = (size, count) {
                        add_total(&mut layout.totals, size, count);
                    }
                }
            }
        }
    }
    layout.page_sizes_kib.sort_unstable();
    layout.page_sizes_kib.dedup();
    Some(layout)
}

/// The child elements of `n` named `name`.
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.has_tag_name(name)).collect()
}

fn add_total(totals: &mut Vec<(u64, u64)>, size: u64, count: u64) {
    match totals.iter_mut().find(|(s, _)| *s == size) {
        Some((_, t)) => *t += count,
        None => totals.push((size, count)),
    }
}

/// `virNodeGetCellsFreeMemory` over the layout's nodes, KiB; empty when unsupported.
fn numa_free_kib(conn: &Connect, cells: &[u32]) -> Vec<u64> {
    let (Some(&first), Ok(n)) = (cells.first(), i32::try_from(cells.len())) else {
        return Vec::new();
    };
    let Ok(first) = i32::try_from(first) else {
        return Vec::new();
    };
    conn.cells_free_memory(first, n)
        .map(|v| v.into_iter().map(|bytes| bytes / 1024).collect())
        .unwrap_or_default()
}

/// `virNodeGetFreePages` for every size above the base page, over the
/// layout's nodes (one call); empty when unsupported.
fn free_pages(conn: &Connect, layout: &Layout) -> Vec<HugePages> {
    let sizes: Vec<u32> = layout
        .page_sizes_kib
        .iter()
        .skip(1)
        .filter_map(|s| u32::try_from(*s).ok())
        .collect();
    let (Some(&first), Ok(n)) = (layout.cells.first(), u32::try_from(layout.cells.len())) else {
        return Vec::new();
    };
    if sizes.is_empty() {
        return Vec::new();
    }
    match conn.free_pages(&sizes, first, n, 0) {
        // libvirt returns how many counts it filled; fewer than asked (the
        // test driver says 0) leaves the free pages unknown.
        Ok(counts) if counts.len() == sizes.len() * layout.cells.len() => {
            huge_pages(&sizes, &counts, &layout.totals)
        }
        _ => Vec::new(),
    }
}

/// Per size: free pages summed over nodes (`counts` is node-major, as
/// libvirt fills it) and the reserved total from the layout. Pure.
pub fn huge_pages(sizes: &[u32], counts: &[u64], totals: &[(u64, u64)]) -> Vec<HugePages> {
    if sizes.is_empty() {
        return Vec::new();
    }
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let size_kib = u64::from(size);
            HugePages {
                size_kib,
                total: totals.iter().find(|(s, _)| *s == size_kib).map(|(_, t)| *t),
                free: counts.iter().skip(i).step_by(sizes.len()).sum(),
            }
        })
        .collect()
}

/// More pages free than reserved: the layout was read before the operator
/// reserved more. Pure.
pub fn totals_look_stale(pages: &[HugePages]) -> bool {
    pages.iter().any(|p| p.total.is_some_and(|t| p.free > t))
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

    #[test]
    fn a_reading_is_due_once_the_interval_has_passed() {
        let t = Instant::now();
        let i = Duration::from_secs(5);
        assert!(!is_due(t, t, i));
        assert!(!is_due(t, t + Duration::from_millis(4_999), i));
        assert!(is_due(t, t + i, i));
        // A clock that seems to run backwards never makes a reading due early.
        assert!(!is_due(t + i, t, i));
    }

    const CAPS: &str = "<capabilities><host><cpu><arch>x86_64</arch>\
        <pages unit='KiB' size='2048'/><pages unit='KiB' size='4'/>\
        <pages unit='KiB' size='1048576'/></cpu>\
        <topology><cells num='2'>\
        <cell id='0'><memory unit='KiB'>2097152</memory>\
          <pages unit='KiB' size='4'>524288</pages><pages unit='KiB' size='2048'>512</pages>\
          <pages unit='KiB' size='1048576'>1</pages></cell>\
        <cell id='1'><memory unit='KiB'>2097152</memory>\
          <pages unit='KiB' size='4'>524288</pages><pages unit='KiB' size='2048'>256</pages>\
        </cell></cells></topology></host></capabilities>";

    #[test]
    fn layout_lists_nodes_sizes_and_summed_totals() {
        let l = parse_layout(CAPS).unwrap();
        assert_eq!(l.cells, [0, 1]);
        assert_eq!(l.page_sizes_kib, [4, 2048, 1_048_576]);
        assert_eq!(l.totals, [(4, 1_048_576), (2048, 768), (1_048_576, 1)]);
        let bare = parse_layout("<capabilities><host/></capabilities>").unwrap();
        assert_eq!(bare, Layout::default());
        assert_eq!(parse_layout("not xml"), None);
    }

    #[test]
    fn free_pages_are_summed_per_size_over_nodes() {
        // Node-major: node 0 (2M, 1G), node 1 (2M, 1G).
        let pages = huge_pages(&[2048, 1_048_576], &[100, 1, 50, 0], &[(2048, 768)]);
        assert_eq!(
            pages,
            [
                HugePages {
                    size_kib: 2048,
                    total: Some(768),
                    free: 150
                },
                HugePages {
                    size_kib: 1_048_576,
                    total: None,
                    free: 1
                },
            ]
        );
        assert!(huge_pages(&[], &[1], &[]).is_empty());
        assert!(!totals_look_stale(&pages));
        let grown = [HugePages {
            size_kib: 2048,
            total: Some(10),
            free: 11,
        }];
        assert!(totals_look_stale(&grown));
    }
}
