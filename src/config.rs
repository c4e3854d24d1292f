//! The effective configuration: types, defaults, and the secret wrapper.
//!
//! Every setting is declared once, in `config::settings`. Layering (defaults < file
//! < environment < flags) reads files and variables in `config::load`, flags in
//! `cli`; `config::validate` turns the merged layer into a [`Config`], which is all
//! the rest of the program reads.

pub mod alerts;
pub mod docs;
mod error;
pub mod fleet_hosts;
mod format;
pub mod glob;
pub mod kind;
pub mod layer;
pub mod load;
pub mod metadata;
pub mod run;
pub mod secrets;
pub mod settings;
pub mod validate;

pub use format::{Format, UnknownFormat};

use std::fmt;
use std::path::PathBuf;

/// A value that must never reach logs, errors or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The real value, for building an `Authorization` header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which InfluxDB write API to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfluxApi {
    /// `POST /api/v3/write_lp?db=&precision=nanosecond` (InfluxDB 3).
    V3,
    /// `POST /api/v2/write?bucket=&org=&precision=ns`.
    V2,
    /// `POST /write?db=&precision=ns` (InfluxDB 1.x, VictoriaMetrics, v1 compat).
    V1,
}

impl InfluxApi {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3 => "v3",
            Self::V2 => "v2",
            Self::V1 => "v1",
        }
    }
}

/// Where line protocol goes instead of HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

pub use error::ConfigError;
pub use settings::{
    AlertsSettings, CollectorConfig, ControlConfig, FleetConfig, InfluxConfig, LibvirtConfig,
    RatesConfig, RunConfig, SpoolSettings, Tags, UiConfig,
};

/// The effective configuration: one struct per section of `settings.rs`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub collector: CollectorConfig,
    pub libvirt: LibvirtConfig,
    pub influx: InfluxConfig,
    pub rates: RatesConfig,
    pub ui: UiConfig,
    pub control: ControlConfig,
    pub spool: SpoolSettings,
    pub run: RunConfig,
    pub fleet: FleetConfig,
    /// Static tags added to every line (`[tags]`).
    pub tags: Tags,
    /// `alerts.min_duration`.
    pub alerts: AlertsSettings,
    /// `[alerts.<metric>]` levels and `[[alerts.override]]` (`config::alerts`).
    pub alert_rules: alerts::AlertRules,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// Whether this process runs as root: the service's default paths (spool, socket)
/// and how loudly a group it cannot set is reported depend on it.
pub fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions, cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// This machine's hostname, or `localhost` when it cannot be read as UTF-8.
pub fn default_host() -> String {
    gethostname::gethostname()
        .into_string()
        .unwrap_or_else(|_| "localhost".into())
}

/// A resolved config and the warnings found while reading it (logged once logging is up).
pub struct Resolved {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// Defaults < config file(s) < environment < flags; one merge, one validation.
pub fn resolve(
    flags: layer::Layer,
    explicit_file: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ConfigError> {
    let mut layers = Vec::new();
    let mut warnings = Vec::new();
    let mut config_file = None;
    for (path, required) in load::config_paths(explicit_file, env) {
        if !required && !path.exists() {
            continue;
        }
        let read = load::read_file(&path)?;
        warnings.extend(read.warnings);
        config_file = Some(read.path);
        layers.push(read.layer);
    }
    layers.push(load::env_layer(env));
    layers.push(flags);
    let defaults = Config {
        config_file,
        ..Config::default()
    };
    let mut config = validate::validate(layer::merge(layers), defaults)?;
    warnings.extend(secrets::read_token_files(&mut config, env)?);
    Ok(Resolved { config, warnings })
}

/// The URL with any password replaced by `***` (user names are kept: they help debugging).
pub fn masked_url(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn example_config_parses_and_equals_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let r = resolve(layer::Layer::default(), Some(path.clone()), &no_env).unwrap();
        let expected = Config {
            config_file: Some(path),
            ..Config::default()
        };
        assert_eq!(r.config, expected);
    }

    #[test]
    fn print_config_round_trips_and_masks_secrets() {
        let mut c = Config::default();
        c.influx.url = Some(url::Url::parse("http://admin:pw123@127.0.0.1:8086/x").unwrap());
        c.influx.token = Some(Secret::new("tok-SECRET"));
        c.tags.insert("dc".into(), "par 1".into());
        let text = docs::print_config(&c);
        assert!(
            !text.contains("tok-SECRET") && !text.contains("pw123"),
            "{text}"
        );
        assert!(text.contains("token = \"***\""));
        // The printed config is itself a valid config file.
        let l = load::parse_file(&text, std::path::Path::new("printed.toml")).unwrap();
        let back = validate::validate(l, Config::default()).unwrap();
        assert_eq!(back.tags, c.tags);
        assert_eq!(back.collector.poll_interval, c.collector.poll_interval);
    }

    #[test]
    fn a_token_from_its_file_prints_as_the_file_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tok");
        std::fs::write(&file, "tok-FILE-SECRET\n").unwrap();
        let flags = layer::Layer::default().with(
            "influx.token_file",
            file.display().to_string(),
            "--influx-token-file",
        );
        let c = resolve(flags, None, &no_env).unwrap().config;
        assert_eq!(c.influx.token, Some(Secret::new("tok-FILE-SECRET")));
        let text = docs::print_config(&c);
        assert!(!text.contains("tok-FILE-SECRET"), "{text}");
        assert!(text.contains("# token is read from token_file"), "{text}");
        let l = load::parse_file(&text, std::path::Path::new("printed.toml")).unwrap();
        validate::validate(l, Config::default()).unwrap();
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[collector]\npoll_interval = 5.0\n[influx]\ndb = \"filedb\"\nbatch_max_lines = 100\n",
        )
        .unwrap();
        let env = |k: &str| match k {
            "POLL_INTERVAL" => Some("2".to_string()),
            "INFLUX_DB" => Some("envdb".to_string()),
            _ => None,
        };
        let flags = layer::Layer::default().with("collector.poll_interval", 0.5, "--poll-interval");
        let c = resolve(flags, Some(path), &env).unwrap().config;
        assert_eq!(c.collector.poll_interval, Duration::from_millis(500));
        assert_eq!(c.influx.db, "envdb");
        assert_eq!(c.influx.batch_max_lines, 100);
    }

    #[test]
    fn missing_explicit_file_is_an_error_naming_it() {
        let err = resolve(
            layer::Layer::default(),
            Some("/nonexistent/v.toml".into()),
            &no_env,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("/nonexistent/v.toml"), "{err}");
    }

    #[test]
    fn world_readable_file_with_token_warns() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[influx]\ntoken = \"abc\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = resolve(layer::Layer::default(), Some(path.clone()), &no_env).unwrap();
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("chmod 600") && !r.warnings[0].contains("abc"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(resolve(layer::Layer::default(), Some(path), &no_env)
            .unwrap()
            .warnings
            .is_empty());
    }
}
