//! Encoding snapshots as InfluxDB line protocol (pure).

use std::collections::BTreeMap;

use crate::model::VmSnapshot;

/// Tags every line carries besides the VM's own.
#[derive(Debug, Clone)]
pub struct EncodeCtx {
    pub host: String,
    pub tags: Vec<(String, String)>,
}

impl EncodeCtx {
    pub fn new(host: &str, tags: &BTreeMap<String, String>) -> Self {
        Self {
            host: host.to_string(),
            tags: tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// Appends this VM's lines (`vm_metrics`, `vm_features`, `vm_devices`, `vm_totals`) to `out`.
pub fn encode_vm(out: &mut Vec<String>, ctx: &EncodeCtx, vm: &VmSnapshot) {
    let _ = (out, ctx, vm);
}
