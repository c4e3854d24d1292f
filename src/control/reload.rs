//! SIGHUP: re-read the config file and the environment, apply what can change
//! while running, and name in the log what changed but needs a restart.
//!
//! The comparison is over the masked effective config (the same text as
//! `--print-config`), key by key, plus the secrets themselves, so every
//! setting is covered without a list to keep in step.

use std::collections::BTreeMap;

use crate::config::Config;

/// Settings applied without a restart (file keys).
pub const RELOADABLE: [&str; 2] = ["collector.poll_interval", "collector.status_interval"];

/// One changed setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// File key, e.g. `collector.poll_interval`.
    pub key: String,
    /// `old -> new` (secrets as `***`).
    pub what: String,
    pub reloadable: bool,
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn settings(c: &Config) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(v) = toml::from_str::<toml::Value>(&c.to_toml_masked()) {
        flatten("", &v, &mut out);
    }
    // The masked text hides a changed token: `changes` compares the real values.
    out.remove("influx.token");
    out
}

/// What differs between the running config and the re-read one.
pub fn changes(old: &Config, new: &Config) -> Vec<Change> {
    let (a, b) = (settings(old), settings(new));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out: Vec<Change> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(unset)".into());
            Change {
                key: k.clone(),
                what: format!("{} -> {}", show(a.get(k)), show(b.get(k))),
                reloadable: RELOADABLE.contains(&k.as_str()),
            }
        })
        .collect();
    if old.influx.token != new.influx.token {
        out.push(Change {
            key: "influx.token".into(),
            what: "*** -> ***".into(),
            reloadable: false,
        });
    }
    if old.output != new.output {
        out.push(Change {
            key: "output".into(),
            what: format!("{:?} -> {:?}", old.output, new.output),
            reloadable: false,
        });
    }
    out
}

/// Logs the outcome of a reload: what was applied, what needs a restart.
pub fn log_changes(changes: &[Change]) {
    if changes.is_empty() {
        tracing::info!("SIGHUP: configuration re-read; nothing changed");
        return;
    }
    for c in changes.iter().filter(|c| c.reloadable) {
        tracing::info!("SIGHUP: {} changed ({}), applied", c.key, c.what);
    }
    let restart: Vec<String> = changes
        .iter()
        .filter(|c| !c.reloadable)
        .map(|c| format!("{} ({})", c.key, c.what))
        .collect();
    if !restart.is_empty() {
        tracing::warn!(
            "SIGHUP: changed but only taking effect after a restart: {}",
            restart.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use std::time::Duration;

    #[test]
    fn reloadable_and_restart_changes_are_told_apart_and_secrets_stay_hidden() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(changes(&old, &new).is_empty());
        new.poll_interval = Duration::from_millis(250);
        new.influx.db = "other".into();
        new.influx.token = Some(Secret::new("tok-NEW"));
        let ch = changes(&old, &new);
        let keys: Vec<(&str, bool)> = ch.iter().map(|c| (c.key.as_str(), c.reloadable)).collect();
        assert_eq!(
            keys,
            [
                ("collector.poll_interval", true),
                ("influx.db", false),
                ("influx.token", false)
            ]
        );
        assert_eq!(ch[0].what, "1.0 -> 0.25");
        assert!(!format!("{ch:?}").contains("tok-NEW"));
    }
}
