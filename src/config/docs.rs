//! Text made from the settings table: `--print-config`, `config.example.toml` and
//! the README's configuration table. Tests here fail when either file no longer
//! matches the table; `VMPULSE_BLESS=1 cargo test --lib config::docs` rewrites them.

use std::fmt::Write;

use super::alerts::AlertRules;
use super::settings::{Setting, SETTINGS};
use super::Config;

/// Settings that have a file key, grouped by `[section]` in table order; the
/// top-level keys (no dot) come first, as TOML requires.
fn file_sections() -> Vec<(&'static str, Vec<&'static Setting>)> {
    let mut out: Vec<(&'static str, Vec<&'static Setting>)> = vec![("", Vec::new())];
    for s in SETTINGS.iter() {
        let Some(key) = s.meta.key else { continue };
        let section = key.rsplit_once('.').map_or("", |(sec, _)| sec);
        match out.iter_mut().find(|(name, _)| *name == section) {
            Some((_, list)) => list.push(s),
            None => out.push((section, vec![s])),
        }
    }
    out
}

/// The key's last part, as written inside its section.
fn leaf(key: &str) -> &str {
    key.rsplit_once('.').map_or(key, |(_, k)| k)
}

/// A TOML key, quoted when it is not a bare key.
fn toml_key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        k.to_string()
    } else {
        toml::Value::String(k.to_string()).to_string()
    }
}

/// An example text as TOML: numbers bare, anything else quoted.
fn example_literal(text: &str) -> String {
    if text.parse::<f64>().is_ok() {
        text.to_string()
    } else {
        toml::Value::String(text.to_string()).to_string()
    }
}

/// `(POLL_INTERVAL, --poll-interval)`, or nothing for a file-only setting.
fn other_names(s: &Setting) -> String {
    let mut v: Vec<String> = s.meta.env.iter().map(|e| e.to_string()).collect();
    if let Some(f) = s.meta.flag {
        v.push(format!("--{f}"));
    }
    if v.is_empty() {
        String::new()
    } else {
        format!(" ({})", v.join(", "))
    }
}

/// `config.example.toml`: every key with its description and default.
pub fn example_toml() -> String {
    let mut o = String::from(
        "# vmpulse configuration. Every key is shown with its default.\n\
         # Read from --config FILE, $VMPULSE_CONFIG, else /etc/vmpulse/config.toml and then\n\
         # $XDG_CONFIG_HOME/vmpulse/config.toml (~/.config/vmpulse/config.toml).\n\
         # Priority: defaults < this file < environment variables < command-line flags.\n\
         # Unknown keys are an error. Check the result with `vmpulse --print-config`.\n\
         # This file is generated from src/config/settings.rs (see its header).\n",
    );
    for (section, list) in file_sections() {
        if !section.is_empty() {
            let _ = writeln!(o, "\n[{section}]");
        } else {
            o.push('\n');
        }
        for s in list {
            let mut lines: Vec<&str> = s.doc.lines().map(str::trim).collect();
            lines.retain(|l| !l.is_empty());
            let last = lines.len().saturating_sub(1);
            for (i, l) in lines.iter().enumerate() {
                let names = if i == last {
                    other_names(s)
                } else {
                    String::new()
                };
                let _ = writeln!(o, "# {l}{names}");
            }
            let key = leaf(s.meta.key.unwrap_or_default());
            let default = (s.default)().filter(|_| s.meta.computed_default.is_none());
            match (default, s.meta.example) {
                (Some(v), _) => {
                    let _ = writeln!(o, "{key} = {v}");
                }
                (None, Some(ex)) => {
                    let _ = writeln!(o, "# {key} = {}", example_literal(ex));
                }
                (None, None) => {
                    let _ = writeln!(o, "# {key} is not set by default");
                }
            }
        }
    }
    o.push_str(
        "\n[tags]\n# Static tags added to every line, e.g.:\n# dc = \"par1\"\n# rack = \"r12\"\n",
    );
    o.push_str(ALERTS_HELP);
    o.push_str(&AlertRules::default().to_toml());
    o.push_str(OVERRIDE_EXAMPLE);
    o
}

/// What the alert tables are, above their defaults in the example file.
const ALERTS_HELP: &str =
    "\n# Alerts: [alerts.<metric>] for any per-VM number of the metric table (README),\n\
# monitor_stuck (seconds the QEMU monitor is held) or state (lists of state words).\n\
# Levels careful <= warning <= critical; lower_is_worse = true reverses them.\n\
# A table without levels turns that alert off. The defaults:\n";

/// A commented `[[alerts.override]]`, after the defaults in the example file.
const OVERRIDE_EXAMPLE: &str = "\n# Levels for some VMs only, by name glob (vms) or metadata tag (tag); the last match wins:\n\
# [[alerts.override]]\n\
# vms = \"db-*\"\n\
# disk_write_latency_ms = { warning = 100.0, critical = 500.0 }\n\
# [[alerts.override]]\n\
# tag = \"project=shop\"\n\
# cpu_steal_percent = {}\n";

/// The effective config in the example's layout, secrets as `***`. Its output is
/// itself a valid config file.
/// A secret read from its `_file` setting: printing it too would give a file
/// that sets both, which is refused.
fn read_from_file(c: &Config, s: &Setting) -> bool {
    let file = format!("{}_file", s.id);
    s.meta.secret
        && SETTINGS
            .iter()
            .any(|f| f.id == file && (f.render)(c).is_some())
}

pub fn print_config(c: &Config) -> String {
    let mut o = String::from("# effective configuration (secrets shown as ***)\n");
    if let Some(f) = &c.config_file {
        let _ = writeln!(
            o,
            "# read from {}",
            toml::Value::String(f.display().to_string())
        );
    }
    for (section, list) in file_sections() {
        if !section.is_empty() {
            let _ = writeln!(o, "\n[{section}]");
        }
        for s in list {
            let key = leaf(s.meta.key.unwrap_or_default());
            if read_from_file(c, s) {
                let _ = writeln!(o, "# {key} is read from {key}_file");
                continue;
            }
            match (s.render)(c) {
                Some(v) => {
                    let _ = writeln!(o, "{key} = {v}");
                }
                None => {
                    let _ = writeln!(o, "# {key} is not set");
                }
            }
        }
    }
    let _ = writeln!(o, "\n[tags]");
    for (k, v) in &c.tags {
        let _ = writeln!(o, "{} = {}", toml_key(k), toml::Value::String(v.clone()));
    }
    o.push_str(&c.alert_rules.to_toml());
    // Command-line-only settings are shown as comments: they are not file keys.
    for s in SETTINGS.iter().filter(|s| s.meta.key.is_none()) {
        if let (Some(v), Some(flag)) = ((s.render)(c), s.meta.flag) {
            if Some(&v) != (s.default)().as_ref() {
                let shown = if s.switch {
                    String::new()
                } else {
                    format!(" {v}")
                };
                let _ = writeln!(o, "\n# --{flag}{shown}");
            }
        }
    }
    o
}

/// A default for the table: the TOML value, or what happens without one.
fn default_cell(s: &Setting) -> String {
    if let Some(text) = s.meta.computed_default {
        return text.into();
    }
    match (s.default)() {
        Some(v) => format!("`{v}`"),
        None => "not set".into(),
    }
}

/// The README's configuration table (between its `settings-table` markers).
pub fn readme_table() -> String {
    let mut o = String::from(
        "| flag | environment | file key | default | reload | description |\n\
         |---|---|---|---|---|---|\n",
    );
    for s in SETTINGS.iter() {
        let flag = match (s.meta.flag, s.meta.short) {
            (Some(f), Some(c)) if s.switch => format!("`-{c}`, `--{f}`"),
            (Some(f), Some(c)) => format!("`-{c}`, `--{f} {}`", s.value_name),
            (Some(f), None) if s.switch => format!("`--{f}`"),
            (Some(f), None) => format!("`--{f} {}`", s.value_name),
            (None, _) => String::new(),
        }
        // A `|` in a value name (`v3|v2|v1`) would end the table cell.
        .replace('|', "\\|");
        let env = s
            .meta
            .env
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let key = s.meta.key.map(|k| format!("`{k}`")).unwrap_or_default();
        let reload = if s.meta.reload { "yes" } else { "" };
        let desc = s.summary().replace('|', "\\|");
        let _ = writeln!(
            o,
            "| {flag} | {env} | {key} | {} | {reload} | {desc} |",
            default_cell(s).replace('|', "\\|")
        );
    }
    o.push_str("| | | `[tags]` | none | yes | Static tags added to every line |\n");
    o.push_str("| | | `[alerts.<metric>]` | see [Alerts](#alerts) | yes | `careful`, `warning`, `critical` levels of one metric (`lower_is_worse = true` reverses them); no level: that alert is off |\n");
    o.push_str("| | | `[[alerts.override]]` | none | yes | Levels for the VMs matching `vms = \"GLOB\"` or `tag = \"NAME=VALUE\"`; the last match wins per metric |\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_generated_from_the_table() {
        crate::fixtures::generated::whole_file(
            "config.example.toml",
            &example_toml(),
            "cargo test --lib config::docs",
        );
    }

    #[test]
    fn readme_table_is_generated_from_the_table() {
        crate::fixtures::generated::block(
            "README.md",
            "settings-table",
            &readme_table(),
            "cargo test --lib config::docs",
        );
    }

    #[test]
    fn every_setting_reaches_the_example_and_the_readme() {
        let example = example_toml();
        let table = readme_table();
        for s in SETTINGS.iter() {
            if let Some(k) = s.meta.key {
                assert!(example.contains(leaf(k)), "{k} missing from the example");
                assert!(
                    table.contains(&format!("`{k}`")),
                    "{k} missing from the table"
                );
            }
            for e in s.meta.env {
                assert!(table.contains(e), "{e} missing from the table");
            }
        }
    }
}
