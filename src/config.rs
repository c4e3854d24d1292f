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
