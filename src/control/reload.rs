//! SIGHUP: re-read the config file and the environment, apply the settings
//! the table in `config/settings.rs` marks reloadable, and name in the log
//! what changed but needs a restart.

use crate::config::settings::SETTINGS;
use crate::config::Config;

/// One changed setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Setting id, e.g. `collector.poll_interval`.
    pub key: String,
    /// `old -> new` (secrets as `***`).
    pub what: String,
    pub reloadable: bool,
}

/// Secrets render as `***` whatever their value: compare the values themselves.
fn secret_changed(id: &str, a: &Config, b: &Config) -> bool {
    match id {
        "influx.token" => a.influx.token != b.influx.token,
        "control.token" => a.control.token != b.control.token,
        _ => false,
    }
}

/// What differs between the running config and the re-read one.
pub fn changes(old: &Config, new: &Config) -> Vec<Change> {
    let show =
        |v: Option<toml::Value>| v.map(|v| v.to_string()).unwrap_or_else(|| "(unset)".into());
    let mut out: Vec<Change> = SETTINGS
        .iter()
        .filter(|s| {
            if s.meta.secret {
                secret_changed(s.id, old, new)
            } else {
                (s.render)(old) != (s.render)(new)
            }
        })
        .map(|s| Change {
            key: s.id.to_string(),
            what: if s.meta.secret {
                "*** -> ***".into()
            } else {
                format!("{} -> {}", show((s.render)(old)), show((s.render)(new)))
            },
            reloadable: s.meta.reload,
        })
        .collect();
    if old.tags != new.tags {
        out.push(Change {
            key: "tags".into(),
            what: format!("{:?} -> {:?}", old.tags, new.tags),
            reloadable: true,
        });
    }
    if old.alert_rules != new.alert_rules {
        out.push(Change {
            key: "alerts".into(),
            what: "[alerts.<metric>] / [[alerts.override]] levels".into(),
            reloadable: true,
        });
    }
    out
}

/// The settings [`applied`] takes over; a test keeps it equal to the table's
/// reloadable ones.
pub const APPLIED: [&str; 21] = [
    "collector.poll_interval",
    "collector.status_interval",
    "influx.url",
    "influx.db",
    "influx.token",
    "influx.token_file",
    "influx.api",
    "influx.org",
    "influx.batch_max_lines",
    "influx.batch_max_bytes",
    "influx.batch_max_age",
    "influx.gzip_min_bytes",
    "influx.no_sync",
    "control.metrics_per_vm",
    "control.internal_metrics",
    "control.write_stale_after",
    "control.token",
    "control.token_file",
    "alerts.min_duration",
    "tags",
    "alerts",
];

/// The running config with the reloadable settings (and tags) of `new`.
pub fn applied(running: &Config, new: &Config) -> Config {
    let mut c = running.clone();
    c.collector.poll_interval = new.collector.poll_interval;
    c.collector.status_interval = new.collector.status_interval;
    let (i, n) = (&mut c.influx, &new.influx);
    i.url = n.url.clone();
    i.db = n.db.clone();
    i.token = n.token.clone();
    i.token_file = n.token_file.clone();
    i.api = n.api;
    i.org = n.org.clone();
    i.batch_max_lines = n.batch_max_lines;
    i.batch_max_bytes = n.batch_max_bytes;
    i.batch_max_age = n.batch_max_age;
    i.gzip_min_bytes = n.gzip_min_bytes;
    i.no_sync = n.no_sync;
    c.control.metrics_per_vm = new.control.metrics_per_vm;
    c.control.internal_metrics = new.control.internal_metrics;
    c.control.write_stale_after = new.control.write_stale_after;
    // Rotates the TCP listener's token (the server keeps its token when the
    // new config has none); a new listener needs a restart.
    c.control.token = new.control.token.clone();
    c.control.token_file = new.control.token_file.clone();
    c.tags = new.tags.clone();
    c.alerts.min_duration = new.alerts.min_duration;
    c.alert_rules = new.alert_rules.clone();
    c
}

/// Whether the writer must be rebuilt to take the new settings.
pub fn writer_changed(a: &Config, b: &Config) -> bool {
    a.influx != b.influx || a.run.output != b.run.output
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
    fn applied_covers_exactly_the_reloadable_settings() {
        let mut reloadable: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| s.meta.reload)
            .map(|s| s.id)
            .collect();
        reloadable.push("tags");
        reloadable.push("alerts");
        reloadable.sort();
        let mut applied = APPLIED.to_vec();
        applied.sort();
        assert_eq!(reloadable, applied, "update reload::applied with the table");
    }

    #[test]
    fn reloadable_and_restart_changes_are_told_apart_and_secrets_stay_hidden() {
        let old = Config::default();
        let mut new = old.clone();
        assert!(changes(&old, &new).is_empty());
        new.collector.poll_interval = Duration::from_millis(250);
        new.influx.max_queue = 80_000;
        new.influx.token = Some(Secret::new("tok-NEW"));
        let ch = changes(&old, &new);
        let keys: Vec<(&str, bool)> = ch.iter().map(|c| (c.key.as_str(), c.reloadable)).collect();
        assert_eq!(
            keys,
            [
                ("collector.poll_interval", true),
                ("influx.token", true),
                ("influx.max_queue", false),
            ]
        );
        assert_eq!(ch[0].what, "1.0 -> 0.25");
        assert!(!format!("{ch:?}").contains("tok-NEW"));
        let a = applied(&old, &new);
        assert_eq!(a.collector.poll_interval, Duration::from_millis(250));
        assert_eq!(a.influx.token, new.influx.token);
        assert_eq!(a.influx.max_queue, old.influx.max_queue, "needs a restart");
        assert!(writer_changed(&old, &a));
    }
}
