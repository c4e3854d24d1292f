//! `--once` / `-n N` (pure): which successful collections the engine writes
//! and when the run ends.

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
}
