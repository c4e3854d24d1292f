//! Rules between the settings of one run (pure): `--once` and `-n`, `--output`,
//! `--format`, `--no-ui` and the InfluxDB URL.
//!
//! - `--once` is `-n 1`; both imply `--no-ui`. A one-shot is a look, not a write:
//!   it prints to stdout (what `telegraf --test` does) unless `--output` or an
//!   `--influx-url` *flag* names where to write. A URL from the config file or the
//!   environment is the service's, and never makes a one-shot write (on a packaged
//!   host `/etc/vmpulse/config.toml` has one).
//! - `--output -` writes on stdout, where the live view draws: it implies `--no-ui`.
//! - `--format json|csv` applies to `--output` only (InfluxDB takes line protocol).
//! - `--output` wins over an InfluxDB URL; [`notes`] says so at startup.

use super::layer::Layer;
use super::settings;
use super::ConfigError;
use super::{masked_url, Config, OutputTarget};
use crate::config::Format;

/// Whether the setting was given by its command-line flag (not the file or environment).
fn from_flag(l: &Layer, id: &str) -> bool {
    let flag = settings::find(id).meta.flag.map(|f| format!("--{f}"));
    l.get(id)
        .is_some_and(|v| Some(v.origin.as_str()) == flag.as_deref())
}

/// Applies the rules to a validated config.
pub fn settle(l: &Layer, c: &mut Config) -> Result<(), ConfigError> {
    if c.run.once {
        match c.run.iterations {
            Some(n) if n != 1 => {
                return Err(ConfigError::Invalid {
                    origin: l.origin("run.iterations"),
                    message: format!("--once means one collection, not {n}: give one of them"),
                })
            }
            _ => c.run.iterations = Some(1),
        }
    }
    if c.run.iterations.is_some() {
        c.run.no_ui = true;
        if !from_flag(l, "influx.url") {
            c.influx.url = None;
        }
        if c.run.output.is_none() && c.influx.url.is_none() {
            c.run.output = Some(OutputTarget::Stdout);
        }
    }
    if c.run.output == Some(OutputTarget::Stdout) {
        c.run.no_ui = true;
    }
    if c.run.format != Format::Lp && c.run.output.is_none() {
        return Err(ConfigError::Invalid {
            origin: l.origin("run.format"),
            message: format!(
                "'{}' applies to --output FILE|- only; InfluxDB takes line protocol",
                c.run.format
            ),
        });
    }
    Ok(())
}

/// Startup notes about what was overridden, for the log.
pub fn notes(c: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(o), Some(u)) = (&c.run.output, &c.influx.url) {
        let target = match o {
            OutputTarget::Stdout => "stdout".to_string(),
            OutputTarget::File(p) => format!("'{}'", p.display()),
        };
        out.push(format!(
            "--output wins over the InfluxDB URL {}: lines go to {target}, not to InfluxDB",
            masked_url(u)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(l: Layer) -> Result<Config, ConfigError> {
        let mut c = super::super::validate::validate(l.clone(), Config::default())?;
        settle(&l, &mut c)?;
        Ok(c)
    }

    #[test]
    fn once_is_one_iteration_without_ui_printing_to_stdout() {
        let c = run(Layer::default().with("run.once", true, "--once")).unwrap();
        assert_eq!(c.run.iterations, Some(1));
        assert!(c.run.no_ui);
        assert_eq!(c.run.output, Some(OutputTarget::Stdout));
        let c = run(Layer::default().with("run.iterations", "3", "-n").with(
            "influx.url",
            "http://127.0.0.1:8181",
            "--influx-url",
        ))
        .unwrap();
        assert_eq!(
            (c.run.iterations, c.run.output),
            (Some(3), None),
            "to InfluxDB"
        );
        let e = run(Layer::default().with("run.once", true, "--once").with(
            "run.iterations",
            "3",
            "--iterations",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("--iterations:") && e.contains("--once"),
            "{e}"
        );
    }

    #[test]
    fn a_one_shot_writes_only_to_a_url_given_by_its_flag() {
        for origin in ["INFLUX_URL", "/etc/vmpulse/config.toml: influx.url"] {
            let c = run(Layer::default()
                .with("run.once", true, "--once")
                .with("run.format", "json", "--format")
                .with("influx.url", "http://127.0.0.1:8181", origin))
            .unwrap();
            assert_eq!(c.influx.url, None, "{origin}");
            assert_eq!(c.run.output, Some(OutputTarget::Stdout), "{origin}");
            assert_eq!(c.run.format, Format::Json);
        }
        let c = run(Layer::default().with("run.iterations", "2", "-n").with(
            "influx.url",
            "http://127.0.0.1:8181",
            "--influx-url",
        ))
        .unwrap();
        assert!(c.influx.url.is_some() && c.run.output.is_none());
        // Not a one-shot: the service keeps the URL from wherever it came.
        let c = run(Layer::default().with("run.no_ui", true, "--no-ui").with(
            "influx.url",
            "http://127.0.0.1:8181",
            "INFLUX_URL",
        ))
        .unwrap();
        assert!(c.influx.url.is_some());
    }

    #[test]
    fn stdout_output_implies_no_ui_and_formats_need_an_output() {
        let c = run(Layer::default().with("run.output", "-", "--output")).unwrap();
        assert!(c.run.no_ui);
        let c = run(Layer::default().with("run.output", "/tmp/x.lp", "--output")).unwrap();
        assert!(!c.run.no_ui, "a file does not disturb the live view");
        let e = run(Layer::default().with("run.format", "json", "--format"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--format:") && e.contains("--output"), "{e}");
        let c = run(Layer::default()
            .with("run.format", "csv", "--format")
            .with("run.once", true, "--once"))
        .unwrap();
        assert_eq!(c.run.format, Format::Csv);
    }

    #[test]
    fn output_and_url_together_say_which_wins_without_the_password() {
        let c = run(Layer::default().with("run.output", "-", "--output").with(
            "influx.url",
            "http://u:hunter2@db:8086",
            "INFLUX_URL",
        ))
        .unwrap();
        let n = notes(&c);
        assert_eq!(n.len(), 1);
        assert!(
            n[0].contains("--output wins") && n[0].contains("stdout"),
            "{n:?}"
        );
        assert!(!n[0].contains("hunter2"), "{n:?}");
        assert!(notes(&Config::default()).is_empty());
    }
}
