//! The alert state machine (pure): per VM × metric, the level pending since when,
//! the active alert and its peak. Fed once per collection with the VMs and their
//! readings; a level must hold `alerts.min_duration` before it is raised, before
//! an alert changes level and before it clears. Each transition is an
//! [`AlertEvent`]: one `vm_alerts` point and one log line.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::rules::{Reading, Rules};
use crate::model::{Alert, AlertBoard, AlertLevel, VmSnapshot};

/// Cleared alerts kept for the TUI's pane.
pub const RECENT: usize = 50;

/// One transition: raised, changed level, or cleared (`level` `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    pub vm: String,
    pub uuid: String,
    /// libvirt's runtime ID (the `VMID` tag), when the VM is active.
    pub vm_id: Option<u32>,
    /// The VM's metadata tags (`RawDomain::tags`), for the line's tags; empty on
    /// the clearing point of a VM that left the listing.
    pub tags: Vec<(String, String)>,
    pub metric: String,
    pub level: Option<AlertLevel>,
    pub previous: Option<AlertLevel>,
    pub value: f64,
    pub threshold: f64,
    /// When the new level began to hold.
    pub since: SystemTime,
    /// The line's timestamp: the sample's wall clock.
    pub wall_ns: i64,
}

#[cfg(test)]
impl AlertEvent {
    /// A warning raised on `web-1`'s steal (25.5 against 20), for tests of what
    /// is made from an event.
    pub fn example() -> Self {
        Self {
            vm: "web-1".into(),
            uuid: "u-1".into(),
            vm_id: Some(3),
            tags: Vec::new(),
            metric: "cpu_steal_percent".into(),
            level: Some(AlertLevel::Warning),
            previous: None,
            value: 25.5,
            threshold: 20.0,
            since: SystemTime::UNIX_EPOCH,
            wall_ns: 17,
        }
    }
}

/// One VM's metric.
#[derive(Debug, Clone, Default)]
struct Track {
    /// The level seen differing from the active one, since when, and the worst
    /// value seen since (an alert's peak includes the time before it was raised).
    pending: Option<(Option<AlertLevel>, SystemTime, f64)>,
    active: Option<Alert>,
    /// The last known value, for a clearing point when the value went away.
    last_value: Option<f64>,
}

/// What one step of a track did.
enum Step {
    None,
    Changed {
        previous: Option<AlertLevel>,
        since: SystemTime,
        threshold: f64,
    },
}

impl Track {
    /// Takes one reading at `now`.
    fn step(
        &mut self,
        vm: &VmSnapshot,
        metric: &str,
        r: &Reading,
        now: SystemTime,
        min: Duration,
    ) -> Step {
        if let Some(v) = r.value {
            self.last_value = Some(v);
        }
        if let (Some(a), Some(v)) = (&mut self.active, r.value) {
            a.value = v;
            let worse = if r.lower_is_worse {
                v < a.peak
            } else {
                v > a.peak
            };
            if worse {
                a.peak = v;
            }
        }
        let current = self.active.as_ref().map(|a| a.level);
        if r.level == current {
            self.pending = None;
            return Step::None;
        }
        let worse = |a: f64, b: f64| if r.lower_is_worse { a.min(b) } else { a.max(b) };
        let value = r.value.or(self.last_value).unwrap_or(0.0);
        let (since, peak) = match self.pending {
            Some((level, since, peak)) if level == r.level => (since, worse(peak, value)),
            _ => (now, value),
        };
        self.pending = Some((r.level, since, peak));
        if now.duration_since(since).unwrap_or_default() < min {
            return Step::None;
        }
        self.pending = None;
        match (&mut self.active, r.level) {
            (None, Some(level)) => {
                self.active = Some(Alert {
                    vm: vm.name().to_string(),
                    uuid: vm.uuid().to_string(),
                    metric: metric.to_string(),
                    level,
                    value,
                    threshold: r.threshold,
                    since,
                    peak,
                    peak_level: level,
                    cleared: None,
                });
            }
            (Some(a), Some(level)) => {
                a.level = level;
                a.threshold = r.threshold;
                a.peak_level = a.peak_level.max(level);
            }
            (Some(a), None) => {
                let threshold = a.threshold;
                a.cleared = Some(now);
                return Step::Changed {
                    previous: current,
                    since,
                    threshold,
                };
            }
            (None, None) => return Step::None,
        }
        Step::Changed {
            previous: current,
            since,
            threshold: r.threshold,
        }
    }
}

/// Every VM's tracks; owned by the engine, published as an [`AlertBoard`].
#[derive(Debug, Default)]
pub struct Tracker {
    /// By UUID, then metric (a handful per VM: a short list).
    vms: HashMap<String, Vec<(String, Track)>>,
    recent: VecDeque<Alert>,
}

impl Tracker {
    /// One collection: every VM's readings at `now`; returns the transitions.
    /// A VM no longer listed has its alerts cleared at once.
    pub fn evaluate(
        &mut self,
        rules: &Rules,
        vms: &[VmSnapshot],
        now: SystemTime,
        min: Duration,
    ) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        let mut seen = std::collections::HashSet::with_capacity(vms.len());
        for vm in vms {
            seen.insert(vm.uuid());
            let readings = rules.readings(vm);
            if !self.vms.contains_key(vm.uuid()) {
                // Most VMs have no level anywhere: nothing to keep for them.
                if readings.iter().all(|(_, r)| r.level.is_none()) {
                    continue;
                }
                self.vms.insert(vm.uuid().to_string(), Vec::new());
            }
            let Some(tracks) = self.vms.get_mut(vm.uuid()) else {
                continue;
            };
            for (metric, r) in &readings {
                let i = match tracks.iter().position(|(m, _)| m == metric) {
                    Some(i) => i,
                    None => {
                        tracks.push((metric.to_string(), Track::default()));
                        tracks.len() - 1
                    }
                };
                let (metric, track) = &mut tracks[i];
                let step = track.step(vm, metric, r, now, min);
                Self::record(
                    &mut events,
                    &mut self.recent,
                    vm,
                    metric,
                    track,
                    r.level,
                    step,
                );
            }
            // A metric whose rule went away (reload, override) clears like a good value.
            for (metric, track) in tracks.iter_mut() {
                if readings.iter().all(|(m, _)| m != metric) {
                    let ok = Reading {
                        level: None,
                        value: None,
                        threshold: 0.0,
                        lower_is_worse: false,
                    };
                    let step = track.step(vm, metric, &ok, now, min);
                    Self::record(&mut events, &mut self.recent, vm, metric, track, None, step);
                }
            }
            tracks.retain(|(_, t)| t.active.is_some() || t.pending.is_some());
        }
        self.forget_gone(&seen, now, &mut events);
        self.vms.retain(|_, t| !t.is_empty());
        events
    }

    fn record(
        events: &mut Vec<AlertEvent>,
        recent: &mut VecDeque<Alert>,
        vm: &VmSnapshot,
        metric: &str,
        track: &mut Track,
        level: Option<AlertLevel>,
        step: Step,
    ) {
        let Step::Changed {
            previous,
            since,
            threshold,
        } = step
        else {
            return;
        };
        events.push(AlertEvent {
            vm: vm.name().to_string(),
            uuid: vm.uuid().to_string(),
            vm_id: vm.raw.id,
            tags: vm.raw.tags.clone(),
            metric: metric.to_string(),
            level,
            previous,
            value: track.active.as_ref().map_or(0.0, |a| a.value),
            threshold,
            since,
            wall_ns: vm.raw.wall_ns,
        });
        if level.is_none() {
            if let Some(done) = track.active.take() {
                remember(recent, done);
            }
        }
    }

    /// Clears the alerts of VMs that left the listing (undefined, filtered out).
    fn forget_gone(
        &mut self,
        seen: &std::collections::HashSet<&str>,
        now: SystemTime,
        events: &mut Vec<AlertEvent>,
    ) {
        let gone: Vec<String> = self
            .vms
            .keys()
            .filter(|u| !seen.contains(u.as_str()))
            .cloned()
            .collect();
        let wall_ns = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        for uuid in gone {
            for (_, track) in self.vms.remove(&uuid).unwrap_or_default() {
                let Some(mut a) = track.active else { continue };
                a.cleared = Some(now);
                events.push(AlertEvent {
                    vm: a.vm.clone(),
                    uuid: a.uuid.clone(),
                    vm_id: None,
                    tags: Vec::new(),
                    metric: a.metric.clone(),
                    level: None,
                    previous: Some(a.level),
                    value: a.value,
                    threshold: a.threshold,
                    since: now,
                    wall_ns,
                });
                remember(&mut self.recent, a);
            }
        }
    }

    /// Active alerts (worst first, then oldest) and the recently cleared.
    pub fn board(&self) -> AlertBoard {
        let mut active: Vec<Alert> = self
            .vms
            .values()
            .flat_map(|t| t.iter().filter_map(|(_, t)| t.active.clone()))
            .collect();
        active.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then(a.since.cmp(&b.since))
                .then(a.vm.cmp(&b.vm))
                .then(a.metric.cmp(&b.metric))
        });
        AlertBoard {
            active,
            recent: self.recent.iter().cloned().collect(),
        }
    }
}

fn remember(recent: &mut VecDeque<Alert>, a: Alert) {
    recent.push_front(a);
    recent.truncate(RECENT);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alerts::{AlertRules, Levels};
    use crate::fixtures;
    use crate::model::{CpuSplit, Derived};

    const MIN: Duration = Duration::from_secs(10);

    fn rules(lower_is_worse: bool) -> Rules {
        let mut c = AlertRules::default();
        let t = if lower_is_worse {
            [Some(30.0), Some(20.0), Some(10.0)]
        } else {
            [Some(10.0), Some(20.0), Some(40.0)]
        };
        c.levels.insert(
            "cpu_steal_percent".into(),
            Levels::Numeric {
                thresholds: t,
                lower_is_worse,
            },
        );
        Rules::new(&c)
    }

    fn vm(steal: Option<f64>) -> VmSnapshot {
        let mut vm = fixtures::vm(fixtures::raw("web-1", "uuid-1"));
        vm.derived = Some(Derived {
            dt_secs: 1.0,
            cpu_split: CpuSplit {
                steal,
                ..Default::default()
            },
            ..Default::default()
        });
        vm
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + s)
    }

    /// Feeds one value per second from `start`; returns the events with their second.
    fn feed(t: &mut Tracker, r: &Rules, start: u64, values: &[f64]) -> Vec<(u64, AlertEvent)> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let s = start + i as u64;
            for e in t.evaluate(r, &[vm(Some(*v))], at(s), MIN) {
                out.push((s, e));
            }
        }
        out
    }

    #[test]
    fn a_level_is_raised_only_after_it_held_min_duration() {
        let (mut t, r) = (Tracker::default(), rules(false));
        let blip = feed(&mut t, &r, 0, &[25.0; 5]);
        assert!(blip.is_empty(), "5 s is too short: {blip:?}");
        assert!(feed(&mut t, &r, 5, &[0.0]).is_empty());
        let ev = feed(&mut t, &r, 6, &[25.0; 11]);
        assert_eq!(ev.len(), 1, "{ev:?}");
        let (s, e) = &ev[0];
        assert_eq!(*s, 16, "raised 10 s after the level began at 6");
        assert_eq!((e.level, e.previous), (Some(AlertLevel::Warning), None));
        assert_eq!((e.value, e.threshold, e.since), (25.0, 20.0, at(6)));
        let board = t.board();
        assert_eq!(board.active.len(), 1);
        assert_eq!(board.active[0].since, at(6));
        assert_eq!(
            board.level_of("uuid-1", "cpu_steal_percent"),
            Some(AlertLevel::Warning)
        );
    }

    #[test]
    fn clearing_waits_min_duration_too_and_keeps_the_peak() {
        let (mut t, r) = (Tracker::default(), rules(false));
        let mut values = vec![25.0; 11];
        values[3] = 35.0;
        feed(&mut t, &r, 0, &values);
        assert_eq!(t.board().active[0].peak, 35.0);
        let short = feed(&mut t, &r, 11, &[1.0; 9]);
        assert!(short.is_empty(), "9 s below is not yet a clear: {short:?}");
        assert_eq!(t.board().active[0].value, 1.0, "the latest value is shown");
        let clear = feed(&mut t, &r, 20, &[1.0; 2]);
        assert_eq!(clear.len(), 1, "{clear:?}");
        let (s, e) = &clear[0];
        assert_eq!(*s, 21);
        assert_eq!(
            (e.level, e.previous, e.threshold),
            (None, Some(AlertLevel::Warning), 20.0)
        );
        let board = t.board();
        assert!(board.active.is_empty());
        assert_eq!(board.recent.len(), 1);
        assert_eq!(board.recent[0].peak, 35.0);
        assert_eq!(board.recent[0].cleared, Some(at(21)));
    }

    #[test]
    fn level_changes_need_min_duration_and_the_peak_level_stays() {
        let (mut t, r) = (Tracker::default(), rules(false));
        feed(&mut t, &r, 0, &[15.0; 11]);
        assert_eq!(t.board().active[0].level, AlertLevel::Careful);
        let up = feed(&mut t, &r, 11, &[50.0; 11]);
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].0, 21);
        assert_eq!(
            (up[0].1.level, up[0].1.previous),
            (Some(AlertLevel::Critical), Some(AlertLevel::Careful))
        );
        let down = feed(&mut t, &r, 22, &[25.0; 11]);
        assert_eq!(down.len(), 1);
        let a = &t.board().active[0];
        assert_eq!(
            (a.level, a.peak_level, a.peak),
            (AlertLevel::Warning, AlertLevel::Critical, 50.0)
        );
        assert_eq!(a.since, at(0), "the alert's start stays");
    }

    #[test]
    fn lower_is_worse_raises_on_low_values_and_peaks_at_the_lowest() {
        let (mut t, r) = (Tracker::default(), rules(true));
        assert!(feed(&mut t, &r, 0, &[50.0; 20]).is_empty());
        let mut values = vec![15.0; 11];
        values[4] = 12.0;
        let ev = feed(&mut t, &r, 20, &values);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].1.level, Some(AlertLevel::Warning));
        assert_eq!(t.board().active[0].peak, 12.0);
    }

    #[test]
    fn an_unknown_value_counts_as_no_level_and_a_gone_vm_clears_at_once() {
        let (mut t, r) = (Tracker::default(), rules(false));
        feed(&mut t, &r, 0, &[25.0; 11]);
        for s in 11..21 {
            assert!(t.evaluate(&r, &[vm(None)], at(s), MIN).is_empty());
        }
        let ev = t.evaluate(&r, &[vm(None)], at(21), MIN);
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].level, ev[0].value),
            (None, 25.0),
            "the last value known"
        );
        feed(&mut t, &r, 30, &[25.0; 11]);
        let ev = t.evaluate(&r, &[], at(41), MIN);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].level, None);
        assert!(t.board().active.is_empty());
        assert_eq!(t.board().recent.len(), 2);
    }
}
