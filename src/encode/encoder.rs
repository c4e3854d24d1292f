//! What the engine writes after each collection (pure): the lines in the chosen format.

use super::hypervisor::encode_host;
use super::line_protocol::{encode_alert, encode_vm, EncodeCtx};
use super::{csv, json};
use crate::alert::AlertEvent;
use crate::config::Format;
use crate::model::{HostInfo, VmSnapshot};

/// Encodes one collection's VMs as lines of the chosen format.
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    ctx: EncodeCtx,
    /// CSV: the header row goes out before the first row.
    header_pending: bool,
    /// `read_at_ns` of the last host reading written: one point per reading.
    host_written: i64,
}

impl Encoder {
    pub fn new(format: Format, ctx: EncodeCtx) -> Self {
        Self {
            format,
            ctx,
            header_pending: format == Format::Csv,
            host_written: i64::MIN,
        }
    }

    /// For a CSV file that already has rows: its header is there, append rows only.
    pub fn continuing(mut self) -> Self {
        self.header_pending = false;
        self
    }

    /// The `vm_alerts` points of a collection's alert transitions (no trailing
    /// newlines). Line protocol only: JSON and CSV hold one record per VM.
    pub fn encode_alerts(&self, events: &[AlertEvent]) -> Vec<String> {
        if self.format != Format::Lp || events.is_empty() {
            return Vec::new();
        }
        let mut buf = String::with_capacity(256 * events.len());
        for e in events {
            encode_alert(&mut buf, &self.ctx, e);
        }
        buf.lines().map(str::to_owned).collect()
    }

    /// The lines for one collection (no trailing newlines).
    pub fn encode(&mut self, vms: &[VmSnapshot]) -> Vec<String> {
        match self.format {
            Format::Lp => {
                let mut lines = Vec::with_capacity(vms.len() * 8);
                for vm in vms {
                    encode_vm(&mut lines, &self.ctx, vm);
                }
                lines
            }
            Format::Json => vms.iter().map(|vm| json::object(&self.ctx, vm)).collect(),
            Format::Csv => {
                let mut lines = Vec::with_capacity(vms.len() + 1);
                if std::mem::take(&mut self.header_pending) {
                    lines.push(csv::header_row(&self.ctx));
                }
                lines.extend(vms.iter().map(|vm| csv::row(&self.ctx, vm)));
                lines
            }
        }
    }
}

impl Encoder {
    /// The host's lines when `host` is a reading not written yet, in line
    /// protocol; nothing for JSON/CSV (one record per VM, no host row).
    pub fn encode_host(&mut self, host: Option<&HostInfo>, vms: &[VmSnapshot]) -> Vec<String> {
        let mut lines = Vec::new();
        match host {
            Some(h) if self.format == Format::Lp && h.read_at_ns > self.host_written => {
                self.host_written = h.read_at_ns;
                encode_host(&mut lines, &self.ctx, h, vms);
            }
            _ => {}
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::record::tests::ctx;
    use crate::fixtures::sampled as vm;
    use crate::model::DomainState;

    #[test]
    fn csv_header_once_json_one_per_vm_lp_many() {
        let vms = [
            vm("a", DomainState::Running, true),
            vm("b", DomainState::Running, true),
        ];
        let mut csv = Encoder::new(Format::Csv, ctx(&[]));
        let first = csv.encode(&vms);
        assert_eq!(first.len(), 3);
        assert!(first[0].starts_with("time,timestamp_ns,host,"));
        assert_eq!(csv.encode(&vms).len(), 2, "no second header");
        let mut appending = Encoder::new(Format::Csv, ctx(&[])).continuing();
        assert_eq!(appending.encode(&vms).len(), 2, "the file has its header");
        assert_eq!(Encoder::new(Format::Json, ctx(&[])).encode(&vms).len(), 2);
        let lp = Encoder::new(Format::Lp, ctx(&[])).encode(&vms);
        assert!(lp.len() >= 6 && lp[0].starts_with("vm_metrics,"), "{lp:?}");
    }

    #[test]
    fn one_host_point_per_reading_and_none_in_json_or_csv() {
        let mut h = crate::fixtures::host();
        let mut lp = Encoder::new(Format::Lp, ctx(&[]));
        assert_eq!(lp.encode_host(None, &[]).len(), 0);
        let first = lp.encode_host(Some(&h), &[]);
        assert!(
            first[0].starts_with("hypervisor,host=hv1 cpus="),
            "{first:?}"
        );
        assert!(
            lp.encode_host(Some(&h), &[]).is_empty(),
            "same reading again"
        );
        h.read_at_ns += 5_000_000_000;
        assert!(!lp.encode_host(Some(&h), &[]).is_empty(), "a new reading");
        for f in [Format::Json, Format::Csv] {
            assert!(Encoder::new(f, ctx(&[]))
                .encode_host(Some(&h), &[])
                .is_empty());
        }
    }
}
