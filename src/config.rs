//! The effective configuration: types, defaults, and the secret wrapper.
//!
//! Layering (defaults < file < environment < flags) lives in `config::load`,
//! validation in `config::validate`. Everything else reads a finished [`Config`].

pub mod layer;
pub mod load;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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

#[derive(Debug, Clone, PartialEq)]
pub struct LibvirtConfig {
    /// `LIBVIRT_URI`, `--connect`.
    pub uri: String,
    /// `LIBVIRT_TIMEOUT`: bound on one sampling cycle's libvirt calls.
    pub timeout: Duration,
    /// `DEVICE_CACHE_TTL`: how long device names read from domain XML are reused.
    pub device_cache_ttl: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InfluxConfig {
    /// `INFLUX_URL`; `None` keeps the writer off.
    pub url: Option<url::Url>,
    /// `INFLUX_DB`: database (v3, v1) or bucket (v2).
    pub db: String,
    /// `INFLUX_TOKEN`. For v1, `user:password` is sent as basic auth.
    pub token: Option<Secret>,
    pub api: InfluxApi,
    /// `INFLUX_ORG` (v2 only).
    pub org: Option<String>,
    /// `BATCH_MAX_LINES`.
    pub batch_max_lines: usize,
    /// Cap on one request body before compression (server limits: v3 10 MiB, 1.x 25 MB).
    pub batch_max_bytes: usize,
    /// `BATCH_MAX_SEC`.
    pub batch_max_age: Duration,
    /// `MAX_QUEUE`: lines held between collector and writer.
    pub max_queue: usize,
    /// Concurrent write requests (InfluxDB 3 acknowledges only after its WAL flush).
    pub max_in_flight: usize,
    /// Gzip bodies at least this large; 0 disables compression.
    pub gzip_min_bytes: usize,
    /// v3 only: acknowledge before the WAL is persisted.
    pub no_sync: bool,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Ceiling of the retry backoff (also the pace of retries after 401/403).
    pub max_backoff: Duration,
    /// How long a flush on stop or shutdown may take.
    pub flush_timeout: Duration,
}

/// Units of the degree rates: `angle = degrees(atan(slope / unit))`.
#[derive(Debug, Clone, PartialEq)]
pub struct RatesConfig {
    /// Percentage points per second of CPU % that make 45°.
    pub cpu_unit: f64,
    /// Percentage points per second of memory % that make 45°.
    pub memory_unit: f64,
    /// Bytes per second of disk or network throughput that make 45° (1 MiB/s).
    pub throughput_unit: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UiConfig {
    /// Fixed ceiling of the DISK gauge in bytes/s; `None` uses the busiest VM's recent peak.
    pub disk_ceiling: Option<f64>,
    /// Fixed ceiling of the RX/TX gauges in bytes/s; `None` uses the busiest VM's recent peak.
    pub net_ceiling: Option<f64>,
    /// Minutes of per-VM history kept for the detail view's sparklines.
    pub history_minutes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub libvirt: LibvirtConfig,
    /// `POLL_INTERVAL`, `--poll-interval`.
    pub poll_interval: Duration,
    pub influx: InfluxConfig,
    /// `--output FILE|-`: line protocol to a file or stdout instead of HTTP.
    pub output: Option<OutputTarget>,
    /// Value of the `host` tag; defaults to this machine's hostname.
    pub host: String,
    /// Static tags added to every line.
    pub tags: BTreeMap<String, String>,
    pub rates: RatesConfig,
    pub ui: UiConfig,
    /// How often headless mode logs its status line.
    pub status_interval: Duration,
    /// `--no-ui`.
    pub no_ui: bool,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            libvirt: LibvirtConfig {
                uri: "qemu:///system".into(),
                timeout: Duration::from_secs(10),
                device_cache_ttl: Duration::from_secs(300),
            },
            poll_interval: Duration::from_secs(1),
            influx: InfluxConfig {
                url: None,
                db: "vmstats".into(),
                token: None,
                api: InfluxApi::V3,
                org: None,
                batch_max_lines: 2000,
                batch_max_bytes: 8 * 1024 * 1024,
                batch_max_age: Duration::from_secs(1),
                max_queue: 20_000,
                max_in_flight: 4,
                gzip_min_bytes: 64 * 1024,
                no_sync: false,
                request_timeout: Duration::from_secs(10),
                max_backoff: Duration::from_secs(30),
                flush_timeout: Duration::from_secs(10),
            },
            output: None,
            host: default_host(),
            tags: BTreeMap::new(),
            rates: RatesConfig {
                cpu_unit: 1.0,
                memory_unit: 1.0,
                throughput_unit: 1_048_576.0,
            },
            ui: UiConfig {
                disk_ceiling: None,
                net_ceiling: None,
                history_minutes: 5,
            },
            status_interval: Duration::from_secs(60),
            no_ui: false,
            config_file: None,
        }
    }
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
) -> Result<Resolved, validate::ConfigError> {
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
    layers.push(load::env_layer(env)?);
    layers.push(flags);
    let defaults = Config {
        config_file,
        ..Config::default()
    };
    let config = validate::validate(layer::merge(layers), defaults)?;
    Ok(Resolved { config, warnings })
}

impl Config {
    /// The effective config in `config.example.toml`'s layout, secrets as `***`.
    pub fn to_toml_masked(&self) -> String {
        use std::fmt::Write;
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let secs = |d: Duration| d.as_secs_f64();
        let mut o = String::new();
        let _ = writeln!(o, "# effective configuration (secrets shown as ***)");
        if let Some(f) = &self.config_file {
            let _ = writeln!(o, "# read from {}", q(&f.display().to_string()));
        }
        let _ = writeln!(o, "host = {}", q(&self.host));
        let _ = writeln!(o, "\n[libvirt]\nuri = {}", q(&self.libvirt.uri));
        let _ = writeln!(o, "timeout = {:?}", secs(self.libvirt.timeout));
        let _ = writeln!(
            o,
            "device_cache_ttl = {:?}",
            secs(self.libvirt.device_cache_ttl)
        );
        let _ = writeln!(
            o,
            "\n[collector]\npoll_interval = {:?}",
            secs(self.poll_interval)
        );
        let _ = writeln!(o, "status_interval = {:?}", secs(self.status_interval));
        let i = &self.influx;
        let _ = writeln!(o, "\n[influx]");
        match &i.url {
            Some(u) => {
                let _ = writeln!(o, "url = {}", q(&masked_url(u)));
            }
            None => {
                let _ = writeln!(o, "# url is not set: the writer is off");
            }
        }
        let _ = writeln!(o, "db = {}", q(&i.db));
        if i.token.is_some() {
            let _ = writeln!(o, "token = \"***\"");
        }
        let _ = writeln!(o, "api = {}", q(i.api.as_str()));
        if let Some(org) = &i.org {
            let _ = writeln!(o, "org = {}", q(org));
        }
        let _ = writeln!(o, "batch_max_lines = {}", i.batch_max_lines);
        let _ = writeln!(o, "batch_max_bytes = {}", i.batch_max_bytes);
        let _ = writeln!(o, "batch_max_sec = {:?}", secs(i.batch_max_age));
        let _ = writeln!(o, "max_queue = {}", i.max_queue);
        let _ = writeln!(o, "max_in_flight = {}", i.max_in_flight);
        let _ = writeln!(o, "gzip_min_bytes = {}", i.gzip_min_bytes);
        let _ = writeln!(o, "no_sync = {}", i.no_sync);
        let _ = writeln!(o, "request_timeout = {:?}", secs(i.request_timeout));
        let _ = writeln!(o, "max_backoff = {:?}", secs(i.max_backoff));
        let _ = writeln!(o, "flush_timeout = {:?}", secs(i.flush_timeout));
        let _ = writeln!(o, "\n[rates]\ncpu_unit = {:?}", self.rates.cpu_unit);
        let _ = writeln!(o, "memory_unit = {:?}", self.rates.memory_unit);
        let _ = writeln!(o, "throughput_unit = {:?}", self.rates.throughput_unit);
        let _ = writeln!(o, "\n[ui]");
        if let Some(c) = self.ui.disk_ceiling {
            let _ = writeln!(o, "disk_ceiling = {c:?}");
        }
        if let Some(c) = self.ui.net_ceiling {
            let _ = writeln!(o, "net_ceiling = {c:?}");
        }
        let _ = writeln!(o, "history_minutes = {}", self.ui.history_minutes);
        let _ = writeln!(o, "\n[tags]");
        for (k, v) in &self.tags {
            let bare = !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            let key = if bare { k.clone() } else { q(k) };
            let _ = writeln!(o, "{key} = {}", q(v));
        }
        if let Some(out) = &self.output {
            let target = match out {
                OutputTarget::Stdout => "-".to_string(),
                OutputTarget::File(p) => p.display().to_string(),
            };
            let _ = writeln!(o, "\n# --output {}", q(&target));
        }
        o
    }
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
        let text = c.to_toml_masked();
        assert!(
            !text.contains("tok-SECRET") && !text.contains("pw123"),
            "{text}"
        );
        assert!(text.contains("token = \"***\""));
        // The printed config is itself a valid config file.
        let l = load::parse_file(&text, std::path::Path::new("printed.toml")).unwrap();
        let back = validate::validate(l, Config::default()).unwrap();
        assert_eq!(back.tags, c.tags);
        assert_eq!(back.poll_interval, c.poll_interval);
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
        let flags = layer::Layer {
            poll_interval: Some(layer::Sourced::new(0.5, "--poll-interval")),
            ..layer::Layer::default()
        };
        let c = resolve(flags, Some(path), &env).unwrap().config;
        assert_eq!(c.poll_interval, Duration::from_millis(500));
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
