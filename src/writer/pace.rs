//! The writer's pace: how many requests it keeps in flight and how many lines
//! go in one batch.
//!
//! InfluxDB 3 answers a write only after its WAL flush (about 1 s), so fixed
//! figures put a ceiling on throughput: `in_flight × batch_lines` lines per
//! acknowledgement time. [`Pace`] starts at the configured figures
//! (`influx.max_in_flight`, `influx.batch_max_lines`) and doubles both while
//! acknowledgements are slow and the backlog outgrows what one round of
//! requests carries, up to `IN_FLIGHT_FACTOR` / `LINES_FACTOR` times the
//! configured figures (batch bytes stay within `influx.batch_max_bytes`,
//! which the task enforces). Once the backlog stays small for `CALM_ACKS`
//! acknowledgements in a row it halves them again, back to the configured
//! figures. The gap between the two thresholds (a backlog above half of one
//! round raises, below an eighth lowers) keeps a steady load from
//! oscillating. Pure: the writer task feeds it one observation per
//! acknowledged request.

use std::time::Duration;

/// The in-flight figure rises to at most this many times the configured one.
pub(crate) const IN_FLIGHT_FACTOR: usize = 4;
/// The batch figure rises to at most this many times the configured one.
pub(crate) const LINES_FACTOR: usize = 8;
/// An acknowledgement at least this slow means the server batches its
/// writes (a WAL flush): more or larger requests raise throughput. Faster
/// answers with a backlog mean a busy server: more load would not help.
const SLOW_ACK: Duration = Duration::from_millis(200);
/// Small-backlog acknowledgements in a row before the figures are halved.
const CALM_ACKS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pace {
    base_in_flight: usize,
    max_in_flight: usize,
    base_lines: usize,
    max_lines: usize,
    in_flight: usize,
    batch_lines: usize,
    calm: u32,
}

/// What one observation changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Same,
    Up,
    Down,
}

impl Pace {
    /// Starts at the configured figures; `max_in_flight` is the sink's
    /// ceiling (`--output` keeps one request so its lines stay in order).
    pub fn new(in_flight: usize, max_in_flight: usize, batch_lines: usize) -> Self {
        let in_flight = in_flight.max(1);
        let batch_lines = batch_lines.max(1);
        Self {
            base_in_flight: in_flight,
            max_in_flight: max_in_flight.max(in_flight),
            base_lines: batch_lines,
            max_lines: batch_lines.saturating_mul(LINES_FACTOR),
            in_flight,
            batch_lines,
            calm: 0,
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn batch_lines(&self) -> usize {
        self.batch_lines
    }

    /// Lines one round of requests carries at the current figures.
    fn round(&self) -> usize {
        self.in_flight.saturating_mul(self.batch_lines)
    }

    /// One acknowledged request: `backlog` lines wait (the most seen in the
    /// memory queue since the previous acknowledgement, plus the spool), the
    /// request took `ack` from send to answer.
    pub fn observe(&mut self, backlog: usize, ack: Duration) -> Step {
        let round = self.round();
        if ack >= SLOW_ACK && backlog.saturating_mul(2) > round {
            self.calm = 0;
            let up = (
                (self.in_flight * 2).min(self.max_in_flight),
                (self.batch_lines * 2).min(self.max_lines),
            );
            return self.set(up, Step::Up);
        }
        if backlog.saturating_mul(8) > round {
            self.calm = 0;
            return Step::Same;
        }
        self.calm += 1;
        if self.calm < CALM_ACKS {
            return Step::Same;
        }
        self.calm = 0;
        let down = (
            (self.in_flight / 2).max(self.base_in_flight),
            (self.batch_lines / 2).max(self.base_lines),
        );
        self.set(down, Step::Down)
    }

    fn set(&mut self, (in_flight, batch_lines): (usize, usize), step: Step) -> Step {
        if (in_flight, batch_lines) == (self.in_flight, self.batch_lines) {
            return Step::Same;
        }
        self.in_flight = in_flight;
        self.batch_lines = batch_lines;
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLOW: Duration = Duration::from_millis(1000);
    const FAST: Duration = Duration::from_millis(20);

    fn pace() -> Pace {
        Pace::new(4, 4 * IN_FLIGHT_FACTOR, 2000)
    }

    fn feed(p: &mut Pace, obs: &[(usize, Duration)]) -> Vec<(usize, usize)> {
        obs.iter()
            .map(|&(backlog, ack)| {
                p.observe(backlog, ack);
                (p.in_flight(), p.batch_lines())
            })
            .collect()
    }

    #[test]
    fn slow_acks_and_a_growing_queue_raise_both_figures_to_their_ceilings() {
        let mut p = pace();
        let got = feed(
            &mut p,
            &[
                (13_000, SLOW),
                (30_000, SLOW),
                (70_000, SLOW),
                (200_000, SLOW),
            ],
        );
        assert_eq!(got, vec![(8, 4000), (16, 8000), (16, 16_000), (16, 16_000)]);
    }

    #[test]
    fn fast_acks_never_raise_the_figures() {
        let mut p = pace();
        let got = feed(&mut p, &[(50_000, FAST), (50_000, FAST)]);
        assert_eq!(got, vec![(4, 2000), (4, 2000)]);
    }

    #[test]
    fn a_queue_within_one_round_keeps_the_configured_figures() {
        let mut p = pace();
        // 4 × 2,000 lines per round: 3,000 waiting is less than half of it.
        assert_eq!(p.observe(3_000, SLOW), Step::Same);
        assert_eq!((p.in_flight(), p.batch_lines()), (4, 2000));
    }

    #[test]
    fn a_drained_queue_steps_back_to_the_configured_figures() {
        let mut p = pace();
        feed(&mut p, &[(13_000, SLOW), (30_000, SLOW)]);
        assert_eq!((p.in_flight(), p.batch_lines()), (16, 8000));
        let calm = vec![(0, SLOW); CALM_ACKS as usize];
        let got = feed(&mut p, &calm);
        assert_eq!(got.last(), Some(&(8, 4000)));
        assert!(got[..got.len() - 1].iter().all(|f| *f == (16, 8000)));
        feed(&mut p, &calm);
        assert_eq!((p.in_flight(), p.batch_lines()), (4, 2000));
        // Never below the configured figures.
        feed(&mut p, &calm);
        assert_eq!((p.in_flight(), p.batch_lines()), (4, 2000));
    }

    #[test]
    fn a_steady_burst_per_cycle_holds_the_raised_figures() {
        // 3,000 VMs: ~21,000 lines per 1 s cycle, acks at the WAL flush;
        // the backlog seen at an ack is anywhere between 0 and one cycle.
        let mut p = pace();
        feed(&mut p, &[(21_000, SLOW), (21_000, SLOW)]);
        let raised = (p.in_flight(), p.batch_lines());
        assert_eq!(raised, (16, 8000));
        for _ in 0..20 {
            let got = feed(&mut p, &[(0, SLOW), (0, SLOW), (21_000, SLOW)]);
            assert!(got.iter().all(|f| *f == raised), "{got:?}");
        }
    }

    #[test]
    fn a_medium_backlog_interrupts_the_calm_count() {
        let mut p = pace();
        feed(&mut p, &[(13_000, SLOW)]);
        assert_eq!(p.round(), 32_000);
        let mut obs = vec![(0, SLOW); CALM_ACKS as usize - 1];
        // More than an eighth of a round: not calm, not pressure.
        obs.push((5_000, SLOW));
        obs.extend(vec![(0, SLOW); CALM_ACKS as usize - 1]);
        let got = feed(&mut p, &obs);
        assert!(got.iter().all(|f| *f == (8, 4000)), "{got:?}");
    }

    #[test]
    fn a_sink_with_one_request_only_grows_its_batches() {
        let mut p = Pace::new(1, 1, 100);
        let got = feed(&mut p, &[(1_000, SLOW), (1_000, SLOW), (5_000, SLOW)]);
        assert_eq!(got, vec![(1, 200), (1, 400), (1, 800)]);
    }
}
