//! The host's lines (pure): one `hypervisor` line per reading of the node
//! figures, one `hypervisor_numa` line per NUMA node and one
//! `hypervisor_hugepages` line per huge-page size, with the `host` tag and
//! the static tags, escaped like the VMs' lines, stamped with the reading's
//! wall clock. Fields and names come from `schema::hypervisor`.

use super::line_protocol::{push_tag, EncodeCtx, Fields};
use crate::model::{HostInfo, VmSnapshot};
use crate::schema::hypervisor::{
    HostFigures, HUGEPAGES_FREE_FIELD, HUGEPAGES_TOTAL_FIELD, HYPERVISOR_FIELDS, NUMA_FREE_FIELD,
};
use crate::schema::{Measurement, Value};

/// Appends the host's lines for `host` with its VMs `vms` to `out` (no trailing newlines).
pub fn encode_host(out: &mut Vec<String>, ctx: &EncodeCtx, host: &HostInfo, vms: &[VmSnapshot]) {
    let mut buf = String::with_capacity(1024);
    let ts = host.read_at_ns;
    let figures = HostFigures::of(host, vms);
    let mut f = Fields::start(&mut buf, Measurement::Hypervisor.as_str(), ctx.prefix());
    for field in HYPERVISOR_FIELDS {
        f.field(field.name, (field.read)(&figures));
    }
    f.finish(ts);
    for (node, free) in host.numa_free_kib.iter().enumerate() {
        let tags = tagged(ctx, "node", &node.to_string());
        let mut f = Fields::start(&mut buf, Measurement::HypervisorNuma.as_str(), &tags);
        f.field(NUMA_FREE_FIELD, Some(Value::Int(*free)));
        f.finish(ts);
    }
    for p in &host.huge_pages {
        let tags = tagged(ctx, "size_kb", &p.size_kib.to_string());
        let m = Measurement::HypervisorHugepages.as_str();
        let mut f = Fields::start(&mut buf, m, &tags);
        f.field(HUGEPAGES_TOTAL_FIELD, p.total.map(Value::Int));
        f.field(HUGEPAGES_FREE_FIELD, Some(Value::Int(p.free)));
        f.finish(ts);
    }
    out.extend(buf.lines().map(str::to_owned));
}

/// The host tags plus one more.
fn tagged(ctx: &EncodeCtx, key: &str, value: &str) -> String {
    let mut t = ctx.prefix().to_string();
    push_tag(&mut t, key, value, ctx.escaping());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::line_protocol::Escaping;
    use crate::model::HugePages;
    use std::collections::BTreeMap;

    fn host() -> HostInfo {
        HostInfo {
            cpus: 4,
            memory_total_kib: 8_000_000,
            memory_used_kib: None,
            libvirt_version: "9.0.0".into(),
            numa_free_kib: vec![1000, 2000],
            huge_pages: vec![HugePages {
                size_kib: 2048,
                total: Some(512),
                free: 100,
            }],
            read_at_ns: 1_700_000_000_000_000_000,
        }
    }

    #[test]
    fn one_hypervisor_line_then_numa_and_hugepages() {
        let tags = BTreeMap::from([("dc".to_string(), "fra 1,x=y".to_string())]);
        let ctx = EncodeCtx::with_escaping("hv 1", &tags, Escaping::Go);
        let mut out = Vec::new();
        encode_host(&mut out, &ctx, &host(), &[]);
        assert_eq!(out.len(), 4, "{out:?}");
        assert_eq!(
            out[0],
            "hypervisor,host=hv\\ 1,dc=fra\\ 1\\,x\\=y cpus=4i,memory_total_kb=8000000i,\
             vcpus_assigned=0i,vcpus_per_cpu=0.0,memory_assigned_kb=0i,memory_assigned_percent=0.0,\
             vms_cpu_cores=0.0,vms_cpu_percent=0.0 1700000000000000000"
        );
        assert_eq!(
            out[2],
            "hypervisor_numa,host=hv\\ 1,dc=fra\\ 1\\,x\\=y,node=1 memory_free_kb=2000i 1700000000000000000"
        );
        assert_eq!(
            out[3],
            "hypervisor_hugepages,host=hv\\ 1,dc=fra\\ 1\\,x\\=y,size_kb=2048 pages_total=512i,pages_free=100i 1700000000000000000"
        );
    }
}
