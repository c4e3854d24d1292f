//! The help text, generated from the binding table so that what the help
//! says is exactly what `update` does.

use super::keys::{Context, BINDINGS};

/// One titled group of bindings: `(keys, what they do)` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: &'static str,
    pub rows: Vec<(String, &'static str)>,
}

/// Contexts in the order the help shows them.
pub const ORDER: [Context; 7] = [
    Context::Global,
    Context::Always,
    Context::List,
    Context::Detail,
    Context::Filter,
    Context::Logs,
    Context::Help,
];

pub fn sections() -> Vec<Section> {
    ORDER
        .iter()
        .map(|ctx| Section {
            title: ctx.title(),
            rows: BINDINGS
                .iter()
                .filter(|b| b.context == *ctx)
                .map(|b| (b.keys_label(), b.help))
                .collect(),
        })
        .filter(|s| !s.rows.is_empty())
        .collect()
}

/// What the symbols on the cards mean.
pub const LEGEND: [&str; 7] = [
    "Degree rates: ▲ rising, ▼ falling, · flat, — not known yet (first sample or VM not running).",
    "CPU/MEM: percentage points per second as degrees; DISK/RX/TX: MiB/s as degrees (1 MiB/s = 45°).",
    "Greyed cards and UPPERCASE states: paused, shut off or crashed VMs; all greyed: libvirt unreachable, last known values.",
    "CPU guest (GST): what top inside the VM shows, from its vCPU threads. The card's CPU gauge shows it.",
    "CPU steal (STL, ▒ +N st on the card): the vCPUs were ready but waited for a host CPU; high = host overcommitted.",
    "CPU overhead (OVH): QEMU's own threads (emulation, I/O) charged to the VM; table CPU% = guest + overhead, the host's cost.",
    "MEM % is used over the same source's total; above 100 % only for rss (QEMU's own memory on top of the guest's).",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_binding_is_in_some_section() {
        let n: usize = sections().iter().map(|s| s.rows.len()).sum();
        assert_eq!(n, BINDINGS.len());
    }
}
