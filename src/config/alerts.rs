//! Alert levels as the configuration gives them (pure): `[alerts.<metric>]` tables with
//! `careful`, `warning`, `critical` (Glances' three levels), `[[alerts.override]]`
//! entries that replace a metric's levels for VMs matched by a name glob or a
//! metadata tag, the defaults, and their checks. `alerts.min_duration` is an ordinary
//! setting (`settings.rs`); the `alert` room evaluates what is parsed here.
//!
//! A metric is any per-VM number of the metric table, `monitor_stuck` (seconds the
//! VM's QEMU monitor has been held) or `state` (whose levels are lists of state
//! words). An entry without any level turns the metric's alert off.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::glob::Glob;
use crate::model::DomainState;
use crate::schema::{Type, METRICS};

/// The three levels, in rising order.
pub const LEVEL_KEYS: [&str; 3] = ["careful", "warning", "critical"];

/// The alert on a VM's QEMU monitor held by another call (seconds held).
pub const MONITOR_STUCK: &str = "monitor_stuck";
/// The alert on a VM's state (levels are lists of state words).
pub const STATE: &str = "state";

/// One metric's levels; index 0 careful, 1 warning, 2 critical.
#[derive(Debug, Clone, PartialEq)]
pub enum Levels {
    /// A level holds while the value is at or above its threshold (at or below
    /// with `lower_is_worse`).
    Numeric {
        thresholds: [Option<f64>; 3],
        lower_is_worse: bool,
    },
    /// A level holds while the domain's state is one of its words.
    States([Vec<String>; 3]),
}

impl Levels {
    /// An entry with no level at all: the alert is off.
    pub fn is_off(&self) -> bool {
        match self {
            Self::Numeric { thresholds, .. } => thresholds.iter().all(Option::is_none),
            Self::States(words) => words.iter().all(Vec::is_empty),
        }
    }

    fn lower_is_worse(&self) -> Option<bool> {
        match self {
            Self::Numeric { lower_is_worse, .. } => Some(*lower_is_worse),
            Self::States(_) => None,
        }
    }
}

/// Which VMs an override applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    /// `vms = "db-*"`: VM names matching a glob.
    Vms(Glob),
    /// `tag = "project=shop"`: VMs whose metadata tag has this value.
    Tag { key: String, value: String },
}

/// One `[[alerts.override]]`: levels that replace the base ones for matching VMs.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    pub selector: Selector,
    pub levels: BTreeMap<String, Levels>,
}

/// Every alert rule: the levels per metric and the overrides (later ones win).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    pub levels: BTreeMap<String, Levels>,
    pub overrides: Vec<Override>,
}

fn numeric(careful: f64, warning: f64, critical: f64) -> Levels {
    Levels::Numeric {
        thresholds: [Some(careful), Some(warning), Some(critical)],
        lower_is_worse: false,
    }
}

impl Default for AlertRules {
    /// The defaults: CPU steal, memory use, disk latency, NIC drops, a stuck
    /// monitor (critical once held a second) and a paused or crashed domain.
    fn default() -> Self {
        let mut levels = BTreeMap::new();
        levels.insert("cpu_steal_percent".into(), numeric(10.0, 20.0, 40.0));
        levels.insert("memory_usage_percent".into(), numeric(70.0, 85.0, 95.0));
        levels.insert("disk_read_latency_ms".into(), numeric(20.0, 50.0, 100.0));
        levels.insert("disk_write_latency_ms".into(), numeric(20.0, 50.0, 100.0));
        levels.insert("net_drops_per_sec".into(), numeric(1.0, 10.0, 100.0));
        levels.insert(
            MONITOR_STUCK.into(),
            Levels::Numeric {
                thresholds: [None, None, Some(1.0)],
                lower_is_worse: false,
            },
        );
        levels.insert(
            STATE.into(),
            Levels::States([Vec::new(), vec!["paused".into()], vec!["crashed".into()]]),
        );
        Self {
            levels,
            overrides: Vec::new(),
        }
    }
}

/// Whether `metric` can carry an alert, and of which shape: `Ok(true)` numeric,
/// `Ok(false)` state words.
pub fn alertable(metric: &str) -> Result<bool, String> {
    if metric == STATE {
        return Ok(false);
    }
    if metric == MONITOR_STUCK {
        return Ok(true);
    }
    let numeric = METRICS
        .iter()
        .any(|m| m.name == metric && m.per_vm() && m.ty != Type::Str);
    if numeric {
        return Ok(true);
    }
    Err(format!(
        "'{metric}' is not a per-VM number of the metric table (README, metric definitions); alerts take those, `{STATE}` and `{MONITOR_STUCK}`"
    ))
}

/// The state words `state` levels may use.
fn state_words() -> Vec<&'static str> {
    (0..=7)
        .map(|c| DomainState::from_code(c).as_str())
        .collect()
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Float(f) if f.is_finite() => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

/// Parses one `[alerts.<metric>]` table (`key` is how the message names it, e.g.
/// `alerts.cpu_steal_percent`). `inherit_lower` is the base entry's direction, which
/// an override keeps unless it says otherwise.
pub fn parse_levels(
    key: &str,
    metric: &str,
    value: &toml::Value,
    inherit_lower: Option<bool>,
) -> Result<Levels, String> {
    let numeric = alertable(metric).map_err(|m| format!("{key}: {m}"))?;
    let toml::Value::Table(t) = value else {
        return Err(format!(
            "{key} must be a table with careful, warning and critical"
        ));
    };
    for k in t.keys() {
        let known = LEVEL_KEYS.contains(&k.as_str()) || (numeric && k == "lower_is_worse");
        if !known {
            return Err(format!(
                "{key}.{k}: unknown key; an alert takes careful, warning, critical{}",
                if numeric { " and lower_is_worse" } else { "" }
            ));
        }
    }
    if numeric {
        numeric_levels(key, t, inherit_lower)
    } else {
        state_levels(key, t)
    }
}

fn numeric_levels(
    key: &str,
    t: &toml::Table,
    inherit_lower: Option<bool>,
) -> Result<Levels, String> {
    let lower_is_worse = match t.get("lower_is_worse") {
        None => inherit_lower.unwrap_or(false),
        Some(toml::Value::Boolean(b)) => *b,
        Some(_) => return Err(format!("{key}.lower_is_worse must be true or false")),
    };
    let mut thresholds = [None; 3];
    for (i, level) in LEVEL_KEYS.iter().enumerate() {
        if let Some(v) = t.get(*level) {
            thresholds[i] = Some(
                number(v)
                    .ok_or_else(|| format!("{key}.{level} must be a finite number, found {v}"))?,
            );
        }
    }
    check_order(key, &thresholds, lower_is_worse)?;
    Ok(Levels::Numeric {
        thresholds,
        lower_is_worse,
    })
}

/// careful ≤ warning ≤ critical (≥ for lower-is-worse), over the levels given.
fn check_order(key: &str, t: &[Option<f64>; 3], lower_is_worse: bool) -> Result<(), String> {
    let given: Vec<(usize, f64)> = t
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    for pair in given.windows(2) {
        let ((a, va), (b, vb)) = (pair[0], pair[1]);
        let wrong = if lower_is_worse { vb > va } else { vb < va };
        if wrong {
            let (rule, fix) = if lower_is_worse {
                ("careful ≥ warning ≥ critical (lower_is_worse)", "")
            } else {
                (
                    "careful ≤ warning ≤ critical",
                    "; set lower_is_worse = true where a lower value is worse",
                )
            };
            return Err(format!(
                "{key}.{}: {vb} against {} = {va}; levels must go {rule}{fix}",
                LEVEL_KEYS[b], LEVEL_KEYS[a]
            ));
        }
    }
    Ok(())
}

fn state_levels(key: &str, t: &toml::Table) -> Result<Levels, String> {
    let words = state_words();
    let mut levels: [Vec<String>; 3] = Default::default();
    for (i, level) in LEVEL_KEYS.iter().enumerate() {
        let Some(v) = t.get(*level) else { continue };
        let bad = || {
            format!(
                "{key}.{level} must be a list of state words ({})",
                words.join(", ")
            )
        };
        let toml::Value::Array(items) = v else {
            return Err(bad());
        };
        for item in items {
            match item.as_str() {
                Some(w) if words.contains(&w) => levels[i].push(w.to_string()),
                _ => return Err(bad()),
            }
        }
    }
    for (i, w) in levels.iter().enumerate() {
        for (j, other) in levels.iter().enumerate().skip(i + 1) {
            if let Some(dup) = w.iter().find(|x| other.contains(x)) {
                return Err(format!(
                    "{key}: '{dup}' is in both {} and {}; give each state one level",
                    LEVEL_KEYS[i], LEVEL_KEYS[j]
                ));
            }
        }
    }
    Ok(Levels::States(levels))
}

/// Parses the `[[alerts.override]]` array against the base levels.
pub fn parse_overrides(
    value: &toml::Value,
    base: &BTreeMap<String, Levels>,
) -> Result<Vec<Override>, String> {
    let toml::Value::Array(items) = value else {
        return Err("alerts.override must be an array of tables ([[alerts.override]])".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(n, item)| parse_override(&format!("alerts.override[{n}]"), item, base))
        .collect()
}

fn parse_override(
    key: &str,
    item: &toml::Value,
    base: &BTreeMap<String, Levels>,
) -> Result<Override, String> {
    let toml::Value::Table(t) = item else {
        return Err(format!("{key} must be a table"));
    };
    let selector = match (t.get("vms"), t.get("tag")) {
        (Some(toml::Value::String(g)), None) => {
            Selector::Vms(Glob::new(g).map_err(|m| format!("{key}.vms: {m}"))?)
        }
        (None, Some(toml::Value::String(tag))) => match tag.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Selector::Tag {
                key: k.trim().to_string(),
                value: v.trim().to_string(),
            },
            _ => {
                return Err(format!(
                    "{key}.tag: '{tag}' must be NAME=VALUE, e.g. \"project=shop\""
                ))
            }
        },
        (Some(_), Some(_)) => return Err(format!("{key}: give vms or tag, not both")),
        (None, None) => {
            return Err(format!(
                "{key}: say which VMs with vms = \"GLOB\" or tag = \"NAME=VALUE\""
            ))
        }
        _ => return Err(format!("{key}: vms and tag must be strings")),
    };
    let mut levels = BTreeMap::new();
    for (metric, v) in t.iter().filter(|(k, _)| *k != "vms" && *k != "tag") {
        let inherit = base.get(metric).and_then(Levels::lower_is_worse);
        let parsed = parse_levels(&format!("{key}.{metric}"), metric, v, inherit)?;
        levels.insert(metric.clone(), parsed);
    }
    Ok(Override { selector, levels })
}

/// The keys of one entry in the order people read them: careful, warning,
/// critical, lower_is_worse.
fn levels_toml(l: &Levels) -> Vec<(&'static str, toml::Value)> {
    let mut t = Vec::new();
    match l {
        Levels::Numeric {
            thresholds,
            lower_is_worse,
        } => {
            for (k, v) in LEVEL_KEYS.iter().zip(thresholds) {
                if let Some(v) = v {
                    t.push((*k, toml::Value::Float(*v)));
                }
            }
            if *lower_is_worse {
                t.push(("lower_is_worse", toml::Value::Boolean(true)));
            }
        }
        Levels::States(words) => {
            for (k, w) in LEVEL_KEYS.iter().zip(words) {
                if !w.is_empty() {
                    let list = w.iter().map(|s| toml::Value::String(s.clone())).collect();
                    t.push((*k, toml::Value::Array(list)));
                }
            }
        }
    }
    t
}

/// An inline TOML table on one line: `{ careful = 10.0, warning = 20.0 }`.
fn inline(t: &[(&str, toml::Value)]) -> String {
    let parts: Vec<String> = t.iter().map(|(k, v)| format!("{k} = {v}")).collect();
    format!("{{ {} }}", parts.join(", "))
}

impl AlertRules {
    /// The rules as TOML tables (`[alerts.<metric>]`, `[[alerts.override]]`), for
    /// `--print-config` and the example file; valid after an `[alerts]` section.
    pub fn to_toml(&self) -> String {
        let mut o = String::new();
        for (metric, l) in &self.levels {
            let _ = writeln!(o, "\n[alerts.{metric}]");
            for (k, v) in levels_toml(l) {
                let _ = writeln!(o, "{k} = {v}");
            }
        }
        for ov in &self.overrides {
            let _ = writeln!(o, "\n[[alerts.override]]");
            match &ov.selector {
                Selector::Vms(g) => {
                    let _ = writeln!(o, "vms = {}", toml::Value::String(g.as_str().into()));
                }
                Selector::Tag { key, value } => {
                    let tag = toml::Value::String(format!("{key}={value}"));
                    let _ = writeln!(o, "tag = {tag}");
                }
            }
            for (metric, l) in &ov.levels {
                let _ = writeln!(o, "{metric} = {}", inline(&levels_toml(l)));
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Value {
        toml::Value::Table(toml::from_str(text).unwrap())
    }

    fn levels(metric: &str, text: &str) -> Result<Levels, String> {
        parse_levels(&format!("alerts.{metric}"), metric, &table(text), None)
    }

    #[test]
    fn levels_must_rise_and_the_error_names_the_setting() {
        let err = levels("cpu_steal_percent", "careful = 10\nwarning = 5").unwrap_err();
        assert!(
            err.starts_with("alerts.cpu_steal_percent.warning:"),
            "{err}"
        );
        assert!(err.contains("lower_is_worse"), "{err}");
        let ok = levels("cpu_steal_percent", "careful = 10\ncritical = 30").unwrap();
        assert_eq!(
            ok,
            Levels::Numeric {
                thresholds: [Some(10.0), None, Some(30.0)],
                lower_is_worse: false
            }
        );
    }

    #[test]
    fn lower_is_worse_reverses_the_order() {
        let text = "careful = 30\nwarning = 20\ncritical = 10\nlower_is_worse = true";
        assert!(levels("memory_usage_percent", text).is_ok());
        let err = levels(
            "memory_usage_percent",
            "careful = 10\nwarning = 20\nlower_is_worse = true",
        )
        .unwrap_err();
        assert!(err.contains("alerts.memory_usage_percent.warning"), "{err}");
        assert!(err.contains("careful ≥ warning ≥ critical"), "{err}");
    }

    #[test]
    fn unknown_metrics_keys_and_values_are_refused() {
        let err = levels("no_such_metric", "warning = 1").unwrap_err();
        assert!(err.contains("alerts.no_such_metric") && err.contains("metric table"));
        let err = levels("rxbytes", "warning = 1").unwrap_err();
        assert!(
            err.contains("per-VM"),
            "device metrics have no per-VM value: {err}"
        );
        let err = levels("memory_source", "warning = 1").unwrap_err();
        assert!(err.contains("per-VM number"), "{err}");
        let err = levels("cpu_steal_percent", "warn = 1").unwrap_err();
        assert!(err.contains("alerts.cpu_steal_percent.warn"), "{err}");
        let err = levels("cpu_steal_percent", "warning = \"high\"").unwrap_err();
        assert!(err.contains("finite number"), "{err}");
    }

    #[test]
    fn state_levels_take_state_words_once() {
        let ok = levels(
            STATE,
            "warning = [\"paused\"]\ncritical = [\"crashed\", \"shutoff\"]",
        );
        assert!(ok.is_ok(), "{ok:?}");
        let err = levels(STATE, "warning = [\"sleeping\"]").unwrap_err();
        assert!(
            err.contains("alerts.state.warning") && err.contains("paused"),
            "{err}"
        );
        let err = levels(STATE, "warning = [\"paused\"]\ncritical = [\"paused\"]").unwrap_err();
        assert!(err.contains("both warning and critical"), "{err}");
        let err = levels(STATE, "lower_is_worse = true").unwrap_err();
        assert!(err.contains("alerts.state.lower_is_worse"), "{err}");
    }

    #[test]
    fn overrides_need_one_selector_and_inherit_the_direction() {
        let mut base = AlertRules::default().levels;
        base.insert(
            "cpu_usage_percent".into(),
            levels("cpu_usage_percent", "warning = 5\nlower_is_worse = true").unwrap(),
        );
        let v = table(
            "[[override]]\nvms = \"db-*\"\ncpu_usage_percent = { warning = 2, critical = 1 }\n\
             [[override]]\ntag = \"project=shop\"\ncpu_steal_percent = {}",
        );
        let ov = parse_overrides(&v["override"], &base).unwrap();
        assert_eq!(ov.len(), 2);
        assert!(matches!(&ov[0].selector, Selector::Vms(g) if g.as_str() == "db-*"));
        assert!(matches!(
            ov[0].levels["cpu_usage_percent"],
            Levels::Numeric {
                lower_is_worse: true,
                ..
            }
        ));
        assert!(ov[1].levels["cpu_steal_percent"].is_off());
        assert_eq!(
            ov[1].selector,
            Selector::Tag {
                key: "project".into(),
                value: "shop".into()
            }
        );
        let both = table("[[override]]\nvms = \"a\"\ntag = \"a=b\"");
        let err = parse_overrides(&both["override"], &base).unwrap_err();
        assert!(
            err.contains("alerts.override[0]") && err.contains("not both"),
            "{err}"
        );
        let none = table("[[override]]\ncpu_steal_percent = { warning = 1 }");
        assert!(parse_overrides(&none["override"], &base).is_err());
        let bad_tag = table("[[override]]\ntag = \"shop\"");
        let err = parse_overrides(&bad_tag["override"], &base).unwrap_err();
        assert!(err.contains("NAME=VALUE"), "{err}");
    }

    #[test]
    fn rules_print_as_toml_that_reads_back() {
        let mut rules = AlertRules::default();
        let v = table("[[override]]\nvms = \"db-*\"\ndisk_write_latency_ms = { warning = 100 }");
        rules.overrides = parse_overrides(&v["override"], &rules.levels).unwrap();
        let text = format!("[alerts]\nmin_duration = 10.0\n{}", rules.to_toml());
        let back: toml::Table = toml::from_str(&text).unwrap();
        let alerts = back["alerts"].as_table().unwrap();
        for (metric, l) in &rules.levels {
            let key = format!("alerts.{metric}");
            assert_eq!(
                &parse_levels(&key, metric, &alerts[metric], None).unwrap(),
                l
            );
        }
        let ov = parse_overrides(&alerts["override"], &rules.levels).unwrap();
        assert_eq!(ov, rules.overrides);
    }

    #[test]
    fn every_default_names_an_alertable_metric() {
        for metric in AlertRules::default().levels.keys() {
            assert!(alertable(metric).is_ok(), "{metric}");
        }
    }
}
