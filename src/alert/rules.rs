//! Which levels apply to a VM and what its value says (pure): the configured
//! levels with the matching `[[alerts.override]]`s on top (the last match wins per
//! metric), each metric's value read through the metric table (or the VM's monitor
//! and state for `monitor_stuck` / `state`), and the level that value reaches.

use crate::config::alerts::{AlertRules, Levels, Selector, MONITOR_STUCK, STATE};
use crate::model::{AlertLevel, VmSnapshot};
use crate::schema::{Metric, METRICS};

/// How a metric's value is read from a VM.
#[derive(Clone, Copy)]
enum Source {
    Table(&'static Metric),
    MonitorStuck,
    State,
}

impl Source {
    fn of(metric: &str) -> Option<Self> {
        match metric {
            MONITOR_STUCK => Some(Self::MonitorStuck),
            STATE => Some(Self::State),
            m => METRICS
                .iter()
                .find(|x| x.name == m && x.per_vm())
                .map(Self::Table),
        }
    }

    fn value(self, vm: &VmSnapshot) -> Option<f64> {
        match self {
            Self::Table(m) => m.vm_value(vm).and_then(|v| v.as_f64()),
            // Not stuck reads 0 s, so a stuck monitor's alert clears when it answers.
            Self::MonitorStuck => Some(vm.raw.monitor_stuck.map_or(0.0, |d| d.as_secs_f64())),
            Self::State => Some(f64::from(vm.raw.state.code())),
        }
    }
}

/// One metric's rule: its name, levels and how to read it.
#[derive(Clone)]
struct Rule {
    metric: String,
    levels: Levels,
    source: Source,
}

impl Rule {
    /// Config validation has checked every name; one that still does not
    /// resolve (a metric renamed under a saved config) is left out.
    fn new(metric: &str, levels: &Levels) -> Option<Self> {
        Some(Self {
            metric: metric.to_string(),
            levels: levels.clone(),
            source: Source::of(metric)?,
        })
    }
}

/// What one VM's metric says this cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// `None`: no level holds (or the value is unknown).
    pub level: Option<AlertLevel>,
    /// `None` when the VM has no such value now.
    pub value: Option<f64>,
    /// The threshold of `level` (0 without a level).
    pub threshold: f64,
    /// Whether a lower value is worse (for the peak).
    pub lower_is_worse: bool,
}

/// The level `value` reaches under `levels`, with its threshold.
pub fn level_of(levels: &Levels, value: f64, state: &str) -> Option<(AlertLevel, f64)> {
    match levels {
        Levels::Numeric {
            thresholds,
            lower_is_worse,
        } => AlertLevel::ALL
            .iter()
            .zip(thresholds)
            .rev()
            .find_map(|(level, t)| {
                let t = (*t)?;
                let reached = if *lower_is_worse {
                    value <= t
                } else {
                    value >= t
                };
                reached.then_some((*level, t))
            }),
        Levels::States(words) => AlertLevel::ALL
            .iter()
            .zip(words)
            .rev()
            .find(|(_, w)| w.iter().any(|w| w == state))
            .map(|(level, _)| (*level, value)),
    }
}

/// An override, compiled.
#[derive(Clone)]
struct Scoped {
    selector: Selector,
    rules: Vec<Rule>,
}

impl Scoped {
    fn matches(&self, vm: &VmSnapshot) -> bool {
        match &self.selector {
            Selector::Vms(glob) => glob.matches(vm.name()),
            Selector::Tag { key, value } => vm.raw.tags.iter().any(|(k, v)| k == key && v == value),
        }
    }
}

/// The rules of one configuration, ready to evaluate.
#[derive(Clone)]
pub struct Rules {
    base: Vec<Rule>,
    overrides: Vec<Scoped>,
}

impl Rules {
    pub fn new(config: &AlertRules) -> Self {
        let compile = |levels: &std::collections::BTreeMap<String, Levels>| {
            levels
                .iter()
                .filter_map(|(m, l)| Rule::new(m, l))
                .collect::<Vec<_>>()
        };
        Self {
            base: compile(&config.levels),
            overrides: config
                .overrides
                .iter()
                .map(|o| Scoped {
                    selector: o.selector.clone(),
                    rules: compile(&o.levels),
                })
                .collect(),
        }
    }

    /// Every metric with levels for this VM and what it reads now; a metric whose
    /// levels are off (an entry without levels) is left out.
    pub fn readings(&self, vm: &VmSnapshot) -> Vec<(&str, Reading)> {
        let mut rules: Vec<&Rule> = self.base.iter().collect();
        for scoped in self.overrides.iter().filter(|o| o.matches(vm)) {
            for r in &scoped.rules {
                match rules.iter_mut().find(|x| x.metric == r.metric) {
                    Some(slot) => *slot = r,
                    None => rules.push(r),
                }
            }
        }
        let state = vm.raw.state.as_str();
        rules
            .into_iter()
            .filter(|r| !r.levels.is_off())
            .map(|r| {
                let value = r.source.value(vm);
                let hit = value.and_then(|v| level_of(&r.levels, v, state));
                let lower_is_worse = matches!(
                    r.levels,
                    Levels::Numeric {
                        lower_is_worse: true,
                        ..
                    }
                );
                let reading = Reading {
                    level: hit.map(|(l, _)| l),
                    value,
                    threshold: hit.map_or(0.0, |(_, t)| t),
                    lower_is_worse,
                };
                (r.metric.as_str(), reading)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::alerts::Override;
    use crate::config::glob::Glob;
    use crate::fixtures;
    use crate::model::{CpuSplit, Derived, DomainState};
    use std::collections::BTreeMap;

    fn numeric(t: [Option<f64>; 3], lower_is_worse: bool) -> Levels {
        Levels::Numeric {
            thresholds: t,
            lower_is_worse,
        }
    }

    fn steal(name: &str, pct: f64, tags: &[(&str, &str)]) -> VmSnapshot {
        let mut vm = fixtures::vm(fixtures::raw(name, &format!("uuid-{name}")));
        vm.raw.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        vm.derived = Some(Derived {
            dt_secs: 1.0,
            cpu_split: CpuSplit {
                steal: Some(pct),
                ..Default::default()
            },
            ..Default::default()
        });
        vm
    }

    #[test]
    fn the_highest_level_reached_wins_either_way_round() {
        let up = numeric([Some(10.0), Some(20.0), Some(40.0)], false);
        assert_eq!(level_of(&up, 5.0, ""), None);
        assert_eq!(level_of(&up, 20.0, ""), Some((AlertLevel::Warning, 20.0)));
        assert_eq!(level_of(&up, 99.0, ""), Some((AlertLevel::Critical, 40.0)));
        let down = numeric([Some(30.0), None, Some(10.0)], true);
        assert_eq!(level_of(&down, 50.0, ""), None);
        assert_eq!(level_of(&down, 20.0, ""), Some((AlertLevel::Careful, 30.0)));
        assert_eq!(
            level_of(&down, 10.0, ""),
            Some((AlertLevel::Critical, 10.0))
        );
        let states = Levels::States([vec![], vec!["paused".into()], vec!["crashed".into()]]);
        assert_eq!(
            level_of(&states, 3.0, "paused"),
            Some((AlertLevel::Warning, 3.0))
        );
        assert_eq!(level_of(&states, 1.0, "running"), None);
    }

    fn rules_with(overrides: Vec<Override>) -> Rules {
        Rules::new(&AlertRules {
            overrides,
            ..Default::default()
        })
    }

    fn reading<'a>(r: &'a [(&'a str, Reading)], metric: &str) -> Option<&'a Reading> {
        r.iter().find(|(m, _)| *m == metric).map(|(_, r)| r)
    }

    #[test]
    fn overrides_apply_by_name_glob_and_by_tag_the_last_match_winning() {
        let levels = |w: f64| {
            BTreeMap::from([(
                "cpu_steal_percent".into(),
                numeric([None, Some(w), None], false),
            )])
        };
        let rules = rules_with(vec![
            Override {
                selector: Selector::Vms(Glob::new("db-*").unwrap()),
                levels: levels(50.0),
            },
            Override {
                selector: Selector::Tag {
                    key: "project".into(),
                    value: "shop".into(),
                },
                levels: levels(5.0),
            },
        ]);
        let at_30 = |vm: &VmSnapshot| reading(&rules.readings(vm), "cpu_steal_percent").copied();
        let plain = at_30(&steal("web-1", 30.0, &[])).unwrap();
        assert_eq!(
            (plain.level, plain.threshold),
            (Some(AlertLevel::Warning), 20.0)
        );
        let db = at_30(&steal("db-1", 30.0, &[])).unwrap();
        assert_eq!(db.level, None, "db-* raised warning to 50");
        let shop_db = at_30(&steal("db-2", 30.0, &[("project", "shop")])).unwrap();
        assert_eq!(
            (shop_db.level, shop_db.threshold),
            (Some(AlertLevel::Warning), 5.0)
        );
        let other_tag = at_30(&steal("web-2", 30.0, &[("project", "blog")])).unwrap();
        assert_eq!(other_tag.threshold, 20.0);
    }

    #[test]
    fn an_override_without_levels_turns_the_metric_off_for_its_vms() {
        let rules = rules_with(vec![Override {
            selector: Selector::Vms(Glob::new("batch-*").unwrap()),
            levels: BTreeMap::from([("cpu_steal_percent".into(), numeric([None; 3], false))]),
        }]);
        let r = rules.readings(&steal("batch-1", 90.0, &[]));
        assert!(reading(&r, "cpu_steal_percent").is_none());
        assert!(reading(&r, "state").is_some(), "the other defaults stay");
    }

    #[test]
    fn monitor_and_state_read_from_the_domain() {
        let rules = rules_with(Vec::new());
        let mut vm = steal("a", 0.0, &[]);
        vm.raw.monitor_stuck = Some(std::time::Duration::from_secs(3));
        vm.raw.state = DomainState::Crashed;
        let r = rules.readings(&vm);
        let m = reading(&r, "monitor_stuck").unwrap();
        assert_eq!((m.level, m.value), (Some(AlertLevel::Critical), Some(3.0)));
        let s = reading(&r, "state").unwrap();
        assert_eq!((s.level, s.value), (Some(AlertLevel::Critical), Some(6.0)));
        let steal = reading(&r, "cpu_steal_percent").unwrap();
        assert_eq!(steal.value, None, "a crashed domain has no rates");
    }
}
