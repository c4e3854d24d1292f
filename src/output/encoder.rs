//! What the engine writes after each collection (pure): the lines in the chosen
//! format, and, for `--once` / `-n N`, which collections count.

use super::{csv, json, Format};
use crate::config::OutputTarget;
use crate::influx::line_protocol::{encode_vm, EncodeCtx};
use crate::model::VmSnapshot;

/// Encodes one collection's VMs as lines of the chosen format.
#[derive(Debug, Clone)]
pub struct Encoder {
    format: Format,
    ctx: EncodeCtx,
    /// CSV: the header row goes out before the first row.
    header_pending: bool,
}

impl Encoder {
    pub fn new(format: Format, ctx: EncodeCtx) -> Self {
        Self {
            format,
            ctx,
            header_pending: format == Format::Csv,
        }
    }

    /// For a CSV file that already has rows: its header is there, append rows only.
    pub fn continuing(mut self) -> Self {
        self.header_pending = false;
        self
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

/// Whether `--output` is a file that already holds something (then a CSV header
/// is not written again: appending runs must give one table). I/O: one `stat`.
pub fn appends_to_rows(target: Option<&OutputTarget>) -> bool {
    match target {
        Some(OutputTarget::File(p)) => std::fs::metadata(p).is_ok_and(|m| m.len() > 0),
        _ => false,
    }
}

/// `--once` / `-n N`: a baseline sample first (so that rates exist), then N
/// collections that are written, then stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    baseline_taken: bool,
    remaining: u64,
}

/// What to do with one successful collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The baseline: keep it for the rates, write nothing.
    Baseline,
    /// Write it; more follow.
    Write,
    /// Write it; it was the last one.
    WriteLast,
}

impl Limit {
    pub fn new(collections: u64) -> Self {
        Self {
            baseline_taken: false,
            remaining: collections,
        }
    }

    /// Call once per successful collection.
    pub fn step(&mut self) -> Step {
        if !self.baseline_taken {
            self.baseline_taken = true;
            return Step::Baseline;
        }
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0 {
            Step::WriteLast
        } else {
            Step::Write
        }
    }

    /// Start over (collection restarted: the old baseline is gone).
    pub fn rebaseline(&mut self) {
        self.baseline_taken = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DomainState;
    use crate::output::record::tests::{ctx, vm};

    #[test]
    fn baseline_then_exactly_n_collections() {
        let mut l = Limit::new(3);
        let steps: Vec<Step> = (0..4).map(|_| l.step()).collect();
        assert_eq!(
            steps,
            [Step::Baseline, Step::Write, Step::Write, Step::WriteLast]
        );
        let mut once = Limit::new(1);
        assert_eq!(
            (once.step(), once.step()),
            (Step::Baseline, Step::WriteLast)
        );
    }

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
}
