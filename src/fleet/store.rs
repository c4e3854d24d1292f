//! What the fleet knows between refreshes: the newest point of every series seen,
//! so a host that stopped writing stays (stale, with its age) after it leaves the
//! window, and a failed query keeps the last data with the error beside it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::answer::Point;
use super::hosts::{self, HostRow};

#[derive(Debug, Default)]
pub struct Store {
    points: HashMap<String, Point>,
    /// When the last refresh succeeded; `None` before the first.
    pub last_ok: Option<SystemTime>,
    /// The last refresh's error, cleared by the next success.
    pub last_error: Option<String>,
}

impl Store {
    /// How far back the next refresh reads: the lookback until one refresh
    /// succeeded, then the window plus the time since that success (so a gap of
    /// failed refreshes loses nothing), never more than the lookback.
    pub fn range(&self, now: SystemTime, window: Duration, lookback: Duration) -> Duration {
        match self.last_ok {
            None => lookback,
            Some(t) => (window + now.duration_since(t).unwrap_or_default()).min(lookback),
        }
    }

    /// Takes a refresh's points (newer points of a series replace older ones) and
    /// forgets series older than `lookback`.
    pub fn merge(&mut self, points: Vec<Point>, now: SystemTime, lookback: Duration) {
        for p in points {
            let key = p.series_key();
            match self.points.get(&key) {
                Some(old) if old.time_ns >= p.time_ns => {}
                _ => {
                    self.points.insert(key, p);
                }
            }
        }
        let now_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0);
        let oldest = now_ns - i64::try_from(lookback.as_nanos()).unwrap_or(i64::MAX);
        self.points.retain(|_, p| p.time_ns >= oldest);
        self.last_ok = Some(now);
        self.last_error = None;
    }

    pub fn points(&self) -> impl Iterator<Item = &Point> {
        self.points.values()
    }

    pub fn rows(&self, now: SystemTime, window: Duration) -> Vec<HostRow> {
        hosts::host_rows(self.points(), now, window)
    }

    pub fn host_points(&self, host: &str) -> Vec<&Point> {
        self.points()
            .filter(|p| p.tag("host") == Some(host))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::hosts::tests::{now, vm};

    const W: Duration = Duration::from_secs(30);
    const LOOKBACK: Duration = Duration::from_secs(3600);

    #[test]
    fn a_host_that_left_the_window_stays_stale() {
        let mut s = Store::default();
        assert_eq!(s.range(now(), W, LOOKBACK), LOOKBACK);
        let first = now() - Duration::from_secs(60);
        let mut ps: Vec<Point> = vm("hv-a", "1", 61.0, "running", 1.0, 0.0).into();
        ps.extend(vm("hv-b", "2", 61.0, "running", 1.0, 0.0));
        s.merge(ps, first, LOOKBACK);
        // The next refresh only sees hv-a.
        s.merge(
            vm("hv-a", "1", 1.0, "running", 1.0, 0.0).into(),
            now(),
            LOOKBACK,
        );
        let rows = s.rows(now(), W);
        let b = rows.iter().find(|r| r.host == "hv-b").unwrap();
        assert!(b.stale && b.age_seconds > 60.0);
        let a = rows.iter().find(|r| r.host == "hv-a").unwrap();
        assert!(!a.stale);
        assert_eq!(
            s.range(now() + Duration::from_secs(2), W, LOOKBACK),
            W + Duration::from_secs(2)
        );
    }

    #[test]
    fn an_older_answer_does_not_replace_a_newer_point_and_old_series_are_forgotten() {
        let mut s = Store::default();
        s.merge(
            vm("hv-a", "1", 1.0, "running", 9.0, 0.0).into(),
            now(),
            LOOKBACK,
        );
        s.merge(
            vm("hv-a", "1", 5.0, "running", 1.0, 0.0).into(),
            now(),
            LOOKBACK,
        );
        assert_eq!(s.rows(now(), W)[0].cpu_cores_used, Some(0.18));
        s.merge(vec![], now() + LOOKBACK + Duration::from_secs(2), LOOKBACK);
        assert_eq!(s.points().count(), 0);
    }
}
