//! The man page `vmpulse(1)` and shell completions, generated from the clap
//! definition of the flags so that neither can drift from them (pure; the
//! packaging script writes the files with `cargo run --example generate-assets`).
//!
//! clap renders NAME, SYNOPSIS, DESCRIPTION and OPTIONS; the sections a man
//! page also needs (environment, files, exit status, signals, examples) are
//! the tables below.

use std::io;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;
use roff::{bold, italic, roman, Roff};

use crate::cli::Cli;
use crate::config::settings::SETTINGS;

/// Variables that are not settings of the table (which has all the others).
const OTHER_ENVIRONMENT: &[(&str, &str)] = &[
    (
        "VMPULSE_CONFIG",
        "Config file to read instead of the default locations.",
    ),
    (
        "VMPULSE_LOG",
        "Log filter in --no-ui mode, e.g. debug or vmpulse=trace; default info.",
    ),
    (
        "NOTIFY_SOCKET",
        "Set by systemd for Type=notify: vmpulse reports ready once libvirt answered.",
    ),
];

/// Environment variables and what they set: every variable of the settings
/// table (with its file key), then the others.
pub fn environment() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for s in SETTINGS.iter() {
        for var in s.meta.env {
            let key = s.meta.key.map(|k| format!(" ({k})")).unwrap_or_default();
            out.push((var.to_string(), format!("{}{key}", s.summary())));
        }
    }
    out.extend(
        OTHER_ENVIRONMENT
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    out
}

/// Files vmpulse reads, and the ones the Debian package installs.
pub const FILES: &[(&str, &str)] = &[
    ("/etc/vmpulse/config.toml", "System config file (TOML); every key with its default is in the example the package installs here."),
    ("$XDG_CONFIG_HOME/vmpulse/config.toml", "Per-user config file, layered over the system one (default ~/.config)."),
    ("/etc/default/vmpulse", "Environment of the systemd service (INFLUX_TOKEN and friends); mode 0600."),
    ("/usr/lib/systemd/system/vmpulse.service", "The systemd unit: vmpulse --no-ui."),
];

/// Exit statuses.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Success, including a clean stop on SIGINT or SIGTERM after the flush."),
    ("1", "Runtime failure that may clear by itself, so the unit's Restart=on-failure tries again: libvirt unreachable at start (the message names the URI and libvirt's answer), the spool directory on a full, failing or read-only disk, or its lock held by another process."),
    ("2", "Bad input, never restarted by the unit: an unknown flag, a malformed value, an unreadable or invalid config file (one line names the setting), a spool directory that cannot be one or that this user may not write; or no terminal for the live view."),
    ("3", "Lines were neither sent nor kept in the spool when the flush timeout ran out (--no-ui): data was lost."),
];

/// Signals and what they do.
pub const SIGNALS: &[(&str, &str)] = &[
    ("SIGINT, SIGTERM", "Stop collecting, flush queued lines (bounded by influx.flush_timeout), print the final counters and exit."),
    ("SIGHUP", "--no-ui: re-read the config file and the environment and apply the settings marked reloadable (logged; settings that need a restart are named). The unit's ExecReload sends it. In the terminal UI: like SIGTERM (the terminal is gone)."),
];

/// Examples: command and what it does.
pub const EXAMPLES: &[(&str, &str)] = &[
    ("vmpulse", "Live view of every VM on qemu:///system."),
    (
        "vmpulse --connect test:///default",
        "Try it without a hypervisor: libvirt's built-in test driver.",
    ),
    (
        "INFLUX_URL=http://127.0.0.1:8181 INFLUX_TOKEN=... vmpulse --no-ui",
        "The collection service: no screen, metrics to InfluxDB 3.",
    ),
    (
        "vmpulse --no-ui --output -",
        "Line protocol on stdout instead of HTTP.",
    ),
    (
        "vmpulse --once --format json",
        "One collection (with rates) as JSON on stdout, then exit.",
    ),
    (
        "vmpulse -n 10 -d 5 --format csv > vms.csv",
        "Ten collections five seconds apart as CSV.",
    ),
    (
        "vmpulse --domains 'web-*' --exclude '*-test'",
        "Only some VMs, by name.",
    ),
    (
        "systemctl enable --now vmpulse; journalctl -u vmpulse",
        "Run it as the packaged service and read its log.",
    ),
    (
        "vmpulse fleet",
        "Every host that writes to the InfluxDB of [influx], worst first (alerts, stale, steal); Enter opens a host's VMs from the database (live from its control API when [[fleet.hosts]] names it), Esc goes back. fleet.window says when a host is stale, fleet.refresh how often it is read.",
    ),
    (
        "vmpulse fleet --once --format json",
        "The same host list once, one JSON object per host (host, age_seconds, stale, vms_running, vms_total, cpu_cores_used, steal_worst_percent, memory_used_kb, alerts); --format csv, or --host NAME for that host's VMs as vmpulse --once --format json prints them.",
    ),
];

/// The man page in roff.
pub fn man_page() -> String {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone())
        .title("VMPULSE")
        .section("1")
        .manual("vmpulse manual");
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    let mut roff = Roff::default();
    // Not clap_mangen's section: it cites a vmpulse-status(1) page per
    // subcommand, and only vmpulse(1) is shipped.
    let subs = subcommands(&cmd);
    let subs: Vec<(&str, &str)> = subs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    section(&mut roff, "SUBCOMMANDS", &subs, true);
    let env = environment();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    section(&mut roff, "ENVIRONMENT", &env, true);
    section(&mut roff, "FILES", FILES, false);
    section(&mut roff, "EXIT STATUS", EXIT_STATUS, true);
    section(&mut roff, "SIGNALS", SIGNALS, true);
    section(&mut roff, "EXAMPLES", EXAMPLES, true);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("virsh"),
        roman("(1), "),
        bold("virt-top"),
        roman("(1), "),
        bold("systemctl"),
        roman("(1), "),
        bold("journalctl"),
        roman("(1)"),
    ]);
    let _ = roff.to_writer(&mut out);
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Each subcommand with its flags (`vmpulse status [--json] [--socket PATH]`)
/// and what it does, described here rather than on pages of their own.
pub fn subcommands(cmd: &clap::Command) -> Vec<(String, String)> {
    cmd.get_subcommands()
        .filter(|s| s.get_name() != "help")
        .map(|s| {
            let mut usage = format!("vmpulse {}", s.get_name());
            for a in s.get_arguments().filter(|a| !a.is_hide_set()) {
                let Some(long) = a.get_long() else { continue };
                let value = a
                    .get_value_names()
                    .and_then(|v| v.first())
                    .filter(|_| a.get_action().takes_values())
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                usage.push_str(&format!(" [--{long}{value}]"));
            }
            let about = s.get_about().map(|a| a.to_string()).unwrap_or_default();
            (usage, about)
        })
        .collect()
}

/// A section of tagged paragraphs: term in bold (or italic for paths), then its text.
fn section(roff: &mut Roff, title: &str, rows: &[(&str, &str)], bold_term: bool) {
    roff.control("SH", [title]);
    for (term, text) in rows {
        roff.control("TP", []);
        roff.text([if bold_term {
            bold(*term)
        } else {
            italic(*term)
        }]);
        roff.text([roman(*text)]);
    }
}

/// The completion script for one shell.
pub fn completion(shell: Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "vmpulse", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Where each generated file goes under `dir`, named as Debian installs them.
pub fn files() -> Vec<(PathBuf, String)> {
    vec![
        (PathBuf::from("vmpulse.1"), man_page()),
        (PathBuf::from("vmpulse.bash"), completion(Shell::Bash)),
        (PathBuf::from("_vmpulse"), completion(Shell::Zsh)),
        (PathBuf::from("vmpulse.fish"), completion(Shell::Fish)),
    ]
}

/// Writes [`files`] into `dir` (created if missing); returns the paths written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    files()
        .into_iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_flags() -> Vec<String> {
        Cli::command()
            .get_arguments()
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect()
    }

    #[test]
    fn man_page_has_every_flag_and_the_extra_sections() {
        let man = man_page();
        assert!(
            man.starts_with(".ie") || man.contains(".TH VMPULSE 1"),
            "{man}"
        );
        // roff escapes '-' as '\-'.
        for flag in long_flags() {
            assert!(
                man.contains(&flag.replace('-', "\\-")),
                "man page lacks {flag}"
            );
        }
        for s in ["ENVIRONMENT", "FILES", "EXIT STATUS", "SIGNALS", "EXAMPLES"] {
            assert!(
                man.contains(&format!(".SH \"{s}\"")) || man.contains(&format!(".SH {s}")),
                "{s}"
            );
        }
        assert!(man.contains("INFLUX_TOKEN") && man.contains("LIBVIRT_URI"));
    }

    #[test]
    fn man_page_describes_subcommands_without_citing_pages_that_are_not_shipped() {
        let man = man_page();
        assert!(!man.contains("vmpulse\\-status(1)"), "{man}");
        assert!(!man.contains("(1)\nStart"), "{man}");
        for usage in [
            "vmpulse status [\\-\\-json] [\\-\\-socket PATH]",
            "vmpulse start [\\-\\-socket PATH]",
            "vmpulse stop [\\-\\-socket PATH]",
            "vmpulse fleet [\\-\\-once] [\\-\\-format FORMAT] [\\-\\-host NAME]",
        ] {
            assert!(man.contains(usage), "{usage} in:\n{man}");
        }
    }

    #[test]
    fn completions_offer_every_flag_in_each_shell() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let text = completion(shell);
            for flag in long_flags() {
                let bare = flag.trim_start_matches('-');
                assert!(text.contains(bare), "{shell} completion lacks {flag}");
            }
        }
    }

    /// The `case` arm bash completion runs after `flag`.
    fn bash_arm(script: &str, flag: &str) -> String {
        let start = script
            .find(&format!("{flag})"))
            .unwrap_or_else(|| panic!("no arm for {flag}"));
        let rest = &script[start..];
        rest[..rest.find(";;").unwrap_or(rest.len())].to_string()
    }

    #[test]
    fn bash_completion_offers_the_values_of_format_and_influx_api() {
        let bash = completion(Shell::Bash);
        for (flag, values) in [("--format", "lp json csv"), ("--influx-api", "v3 v2 v1")] {
            let arm = bash_arm(&bash, flag);
            assert!(arm.contains(&format!("compgen -W \"{values}\"")), "{arm}");
            assert!(!arm.contains("compgen -f"), "file names for {flag}: {arm}");
        }
        assert!(bash_arm(&bash, "--output").contains("compgen -f"));
    }

    #[test]
    fn every_variable_of_the_settings_table_is_in_the_man_page() {
        let man = man_page();
        for s in SETTINGS.iter() {
            for var in s.meta.env {
                assert!(man.contains(var), "man page lacks {var}");
            }
        }
        assert!(man.contains("LIBVIRT_DEFAULT_URI") && man.contains("VMPULSE_LOG"));
    }
}
