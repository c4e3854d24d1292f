//! Whether the service is healthy, for `GET /status` and `vmpulse status` (pure).
//!
//! Collecting is not enough: a writer that has not delivered anything for longer
//! than `control.write_stale_after` while lines wait, or whose spool grew for that
//! long, is failing (`vmpulse status` exits 1), as are an unreachable libvirt and a
//! rejected token. A service whose writer is off (no InfluxDB URL) is not failing:
//! it collects and serves the API, and `status` says so.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::format;
use crate::model::{Snapshot, SourceState, WriterState};

/// The threshold's floor when `control.write_stale_after` is not set: a batch may
/// wait `influx.batch_max_sec` and a retry up to `influx.max_backoff` (30 s).
const MIN_STALE_AFTER: Duration = Duration::from_secs(30);

/// `control.write_stale_after`, else the larger of 3 poll intervals and 30 s.
pub fn stale_after(setting: Option<f64>, poll_interval: Duration) -> Duration {
    match setting {
        Some(s) => Duration::from_secs_f64(s),
        None => (poll_interval * 3).max(MIN_STALE_AFTER),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthView {
    /// `ok`, `stopped` (collection stopped) or `failing`.
    pub state: String,
    /// What is wrong, each naming what to check; empty when `ok`.
    pub problems: Vec<String>,
    /// Seconds since the last successful write; `null` before the first one or
    /// when nothing is written to InfluxDB.
    pub last_write_ok_age_seconds: Option<f64>,
    /// The threshold in force (`control.write_stale_after`).
    pub write_stale_after_seconds: f64,
    /// Lines waiting on disk.
    pub spool_backlog_lines: u64,
    /// The spool held more lines at every look over the last threshold.
    pub spool_growing: bool,
}

/// The service's spool depth over time, one sample a second at most.
#[derive(Debug, Default)]
pub struct SpoolTrend {
    samples: VecDeque<(SystemTime, u64)>,
}

impl SpoolTrend {
    const EVERY: Duration = Duration::from_secs(1);

    /// Records the spool depth seen at `at`, keeping `keep` of history.
    pub fn observe(&mut self, at: SystemTime, lines: u64, keep: Duration) {
        let due = self
            .samples
            .back()
            .is_none_or(|(t, _)| at.duration_since(*t).is_ok_and(|d| d >= Self::EVERY));
        if due {
            self.samples.push_back((at, lines));
        }
        // Keep one sample at or before the start of the window.
        while self.samples.len() > 2
            && self.samples[1]
                .0
                .checked_add(keep)
                .is_some_and(|end| end <= at)
        {
            self.samples.pop_front();
        }
    }

    /// More lines now than `span` before `now`, and never fewer in between.
    pub fn growing(&self, now: SystemTime, span: Duration) -> bool {
        let Some(start) = now.checked_sub(span) else {
            return false;
        };
        let Some(first) = self.samples.iter().rposition(|(t, _)| *t <= start) else {
            return false;
        };
        let window: Vec<u64> = self.samples.iter().skip(first).map(|(_, n)| *n).collect();
        window.windows(2).all(|w| w[1] >= w[0]) && window.last() > window.first()
    }
}

/// What the server keeps between requests: the threshold setting (reloadable)
/// and the spool's trend, fed with every snapshot.
#[derive(Debug, Default)]
pub struct Watch {
    setting: Option<f64>,
    trend: SpoolTrend,
}

impl Watch {
    pub fn new(setting: Option<f64>) -> Self {
        Self {
            setting,
            trend: SpoolTrend::default(),
        }
    }

    /// After a reload.
    pub fn set(&mut self, setting: Option<f64>) {
        self.setting = setting;
    }

    pub fn observe(&mut self, snap: &Snapshot, now: SystemTime) {
        let lines = snap.writer.spool.as_ref().map_or(0, |s| s.lines);
        let keep = stale_after(self.setting, snap.poll_interval);
        self.trend.observe(now, lines, keep);
    }

    pub fn judge(&self, snap: &Snapshot, started_at: SystemTime, now: SystemTime) -> HealthView {
        let threshold = stale_after(self.setting, snap.poll_interval);
        let growing = self.trend.growing(now, threshold);
        judge(snap, started_at, now, threshold, growing)
    }
}

/// The verdict on one snapshot of a service that started at `started_at`.
pub fn judge(
    snap: &Snapshot,
    started_at: SystemTime,
    now: SystemTime,
    stale_after: Duration,
    spool_growing: bool,
) -> HealthView {
    let w = &snap.writer;
    let spool = w.spool.as_ref().map_or(0, |s| s.lines);
    let ships = !matches!(
        w.state,
        WriterState::Off { .. } | WriterState::Output { .. }
    );
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    let mut problems = Vec::new();
    if let SourceState::Failed(msg) = &snap.source {
        problems.push(format!("libvirt unreachable: {msg}"));
    }
    match w.state {
        WriterState::AuthFailed => {
            problems.push("InfluxDB refuses the token (401/403): check influx.token".into())
        }
        WriterState::Failing => problems.push(format!(
            "writer failing: {}",
            w.last_error.as_deref().unwrap_or("see the log")
        )),
        _ => {}
    }
    let waiting = w.queue_depth as u64 + spool + w.requests_in_flight as u64;
    let silent = age(w.last_write_ok.unwrap_or(started_at).max(started_at));
    if ships && waiting > 0 && silent > stale_after {
        problems.push(format!(
            "no successful write for {} (control.write_stale_after {}) with {} lines queued and {spool} spooled",
            format::duration(silent),
            format::duration(stale_after),
            w.queue_depth,
        ));
    }
    if ships && spool_growing {
        problems.push(format!(
            "spool growing for {} ({spool} lines): InfluxDB takes less than is collected",
            format::duration(stale_after)
        ));
    }
    let state = match (snap.collecting, problems.is_empty()) {
        (false, _) => "stopped",
        (true, true) => "ok",
        (true, false) => "failing",
    };
    HealthView {
        state: state.into(),
        problems,
        last_write_ok_age_seconds: w
            .last_write_ok
            .filter(|_| ships)
            .map(|t| age(t).as_secs_f64()),
        write_stale_after_seconds: stale_after.as_secs_f64(),
        spool_backlog_lines: spool,
        spool_growing: ships && spool_growing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SpoolState, SpoolStats, WriterStats};

    const T0: Duration = Duration::from_secs(1_700_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    fn shipping(state: WriterState) -> Snapshot {
        let mut s = Snapshot::empty("test:///default", "hv", Duration::from_secs(1));
        s.collecting = true;
        s.source = SourceState::Connected;
        s.writer = WriterStats {
            state,
            endpoint: Some("http://127.0.0.1:8181 (v3, db=vmstats)".into()),
            ..WriterStats::off("")
        };
        s
    }

    fn spool(lines: u64) -> Option<SpoolStats> {
        Some(SpoolStats {
            bytes: lines * 100,
            lines,
            ..SpoolStats::empty("/var/lib/vmpulse/spool".into(), SpoolState::Active)
        })
    }

    #[test]
    fn the_default_threshold_is_three_polls_but_at_least_30_s() {
        let s = Duration::from_secs;
        assert_eq!(stale_after(None, s(1)), s(30));
        assert_eq!(stale_after(None, s(60)), s(180));
        assert_eq!(stale_after(Some(2.5), s(60)), Duration::from_millis(2500));
    }

    #[test]
    fn lines_waiting_past_the_threshold_without_a_write_is_failing() {
        let mut s = shipping(WriterState::Retrying);
        s.writer.spool = spool(500);
        let h = judge(&s, at(0), at(20), Duration::from_secs(30), false);
        assert_eq!(h.state, "ok", "a short outage is not failing yet: {h:?}");
        let h = judge(&s, at(0), at(31), Duration::from_secs(30), false);
        assert_eq!(h.state, "failing");
        assert!(
            h.problems[0].contains("no successful write for 31s")
                && h.problems[0].contains("500 spooled"),
            "{h:?}"
        );
        assert_eq!(
            (h.spool_backlog_lines, h.last_write_ok_age_seconds),
            (500, None)
        );
        // Written 5 s ago: fine again, and the age says so.
        s.writer.last_write_ok = Some(at(26));
        let h = judge(&s, at(0), at(31), Duration::from_secs(30), false);
        assert_eq!(
            (h.state.as_str(), h.last_write_ok_age_seconds),
            ("ok", Some(5.0))
        );
    }

    #[test]
    fn nothing_waiting_a_writer_off_and_a_stopped_service_are_not_failing() {
        let quiet = shipping(WriterState::Ok);
        let h = judge(&quiet, at(0), at(3600), Duration::from_secs(30), false);
        assert_eq!(h.state, "ok", "no VMs, nothing to write: {h:?}");
        let mut off = shipping(WriterState::Off {
            hint: "set INFLUX_URL".into(),
        });
        off.writer.queue_depth = 5;
        let h = judge(&off, at(0), at(3600), Duration::from_secs(30), true);
        assert_eq!((h.state.as_str(), h.spool_growing), ("ok", false));
        let mut stopped = shipping(WriterState::AuthFailed);
        stopped.collecting = false;
        assert_eq!(
            judge(&stopped, at(0), at(1), Duration::from_secs(30), false).state,
            "stopped"
        );
    }

    #[test]
    fn a_refused_token_an_unreachable_libvirt_and_a_growing_spool_are_failing() {
        let h = judge(
            &shipping(WriterState::AuthFailed),
            at(0),
            at(1),
            Duration::from_secs(30),
            false,
        );
        assert!(
            h.state == "failing" && h.problems[0].contains("influx.token"),
            "{h:?}"
        );
        let mut s = shipping(WriterState::Ok);
        s.source = SourceState::Failed("connection refused".into());
        assert_eq!(
            judge(&s, at(0), at(1), Duration::from_secs(30), false).state,
            "failing"
        );
        let h = judge(
            &shipping(WriterState::Ok),
            at(0),
            at(1),
            Duration::from_secs(30),
            true,
        );
        assert!(
            h.state == "failing" && h.problems[0].contains("spool growing"),
            "{h:?}"
        );
    }

    #[test]
    fn a_spool_grows_only_when_it_never_shrank_over_the_whole_span() {
        let keep = Duration::from_secs(10);
        let mut t = SpoolTrend::default();
        for (s, n) in [(0, 10), (5, 20), (10, 30)] {
            t.observe(at(s), n, keep);
        }
        assert!(
            !t.growing(at(10), Duration::from_secs(30)),
            "too little history"
        );
        assert!(t.growing(at(10), Duration::from_secs(10)));
        t.observe(at(12), 25, keep);
        assert!(!t.growing(at(12), Duration::from_secs(10)), "draining");
        t.observe(at(12), 1_000, keep);
        assert_eq!(t.samples.back(), Some(&(at(12), 25)), "one sample a second");
        for s in 13..100 {
            t.observe(at(s), 25, keep);
        }
        assert!(t.samples.len() <= 12, "{}", t.samples.len());
        assert!(!t.growing(at(99), Duration::from_secs(10)), "flat");
    }
}
