//! Reading the config file (TOML) and the environment into [`Layer`]s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::layer::{Layer, Sourced};
use super::validate::ConfigError;
use super::Secret;

/// The file's shape. Unknown keys are errors (serde reports key and line).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub host: Option<String>,
    #[serde(default)]
    pub libvirt: FileLibvirt,
    #[serde(default)]
    pub collector: FileCollector,
    #[serde(default)]
    pub influx: FileInflux,
    #[serde(default)]
    pub rates: FileRates,
    #[serde(default)]
    pub ui: FileUi,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLibvirt {
    pub uri: Option<String>,
    pub timeout: Option<f64>,
    pub device_cache_ttl: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCollector {
    pub poll_interval: Option<f64>,
    pub status_interval: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInflux {
    pub url: Option<String>,
    pub db: Option<String>,
    pub token: Option<String>,
    pub api: Option<String>,
    pub org: Option<String>,
    pub batch_max_lines: Option<i64>,
    pub batch_max_bytes: Option<i64>,
    pub batch_max_sec: Option<f64>,
    pub max_queue: Option<i64>,
    pub max_in_flight: Option<i64>,
    pub gzip_min_bytes: Option<i64>,
    pub no_sync: Option<bool>,
    pub request_timeout: Option<f64>,
    pub max_backoff: Option<f64>,
    pub flush_timeout: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRates {
    pub cpu_unit: Option<f64>,
    pub memory_unit: Option<f64>,
    pub throughput_unit: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUi {
    pub disk_ceiling: Option<f64>,
    pub net_ceiling: Option<f64>,
    pub history_minutes: Option<i64>,
}

/// Parses TOML text; `path` is only used to name the file in errors and origins.
pub fn parse_file(text: &str, path: &Path) -> Result<Layer, ConfigError> {
    let f: FileConfig = toml::from_str(text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().replace('\n', " "),
    })?;
    let p = path.display();
    macro_rules! src {
        ($v:expr, $key:literal) => {
            $v.map(|v| Sourced::new(v, format!("{p}: {}", $key)))
        };
    }
    Ok(Layer {
        host: src!(f.host, "host"),
        libvirt_uri: src!(f.libvirt.uri, "libvirt.uri"),
        libvirt_timeout: src!(f.libvirt.timeout, "libvirt.timeout"),
        device_cache_ttl: src!(f.libvirt.device_cache_ttl, "libvirt.device_cache_ttl"),
        poll_interval: src!(f.collector.poll_interval, "collector.poll_interval"),
        status_interval: src!(f.collector.status_interval, "collector.status_interval"),
        influx_url: src!(f.influx.url, "influx.url"),
        influx_db: src!(f.influx.db, "influx.db"),
        influx_token: src!(f.influx.token.map(Secret::new), "influx.token"),
        influx_api: src!(f.influx.api, "influx.api"),
        influx_org: src!(f.influx.org, "influx.org"),
        batch_max_lines: src!(f.influx.batch_max_lines, "influx.batch_max_lines"),
        batch_max_bytes: src!(f.influx.batch_max_bytes, "influx.batch_max_bytes"),
        batch_max_sec: src!(f.influx.batch_max_sec, "influx.batch_max_sec"),
        max_queue: src!(f.influx.max_queue, "influx.max_queue"),
        max_in_flight: src!(f.influx.max_in_flight, "influx.max_in_flight"),
        gzip_min_bytes: src!(f.influx.gzip_min_bytes, "influx.gzip_min_bytes"),
        no_sync: src!(f.influx.no_sync, "influx.no_sync"),
        request_timeout: src!(f.influx.request_timeout, "influx.request_timeout"),
        max_backoff: src!(f.influx.max_backoff, "influx.max_backoff"),
        flush_timeout: src!(f.influx.flush_timeout, "influx.flush_timeout"),
        output: None,
        cpu_unit: src!(f.rates.cpu_unit, "rates.cpu_unit"),
        memory_unit: src!(f.rates.memory_unit, "rates.memory_unit"),
        throughput_unit: src!(f.rates.throughput_unit, "rates.throughput_unit"),
        disk_ceiling: src!(f.ui.disk_ceiling, "ui.disk_ceiling"),
        net_ceiling: src!(f.ui.net_ceiling, "ui.net_ceiling"),
        history_minutes: src!(f.ui.history_minutes, "ui.history_minutes"),
        tags: f
            .tags
            .into_iter()
            .map(|(k, v)| {
                let origin = format!("{p}: tags.{k}");
                (k, Sourced::new(v, origin))
            })
            .collect(),
        no_ui: None,
    })
}

/// A config file that was read, and warnings to log once logging is up.
pub struct FileRead {
    pub path: PathBuf,
    pub layer: Layer,
    pub warnings: Vec<String>,
}

/// Reads one file. A token in a file that others can read earns a warning.
pub fn read_file(path: &Path) -> Result<FileRead, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: format!("cannot read it: {e} (check --config / VMPULSE_CONFIG)"),
    })?;
    let layer = parse_file(&text, path)?;
    let mut warnings = Vec::new();
    if layer.influx_token.is_some() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o044 != 0 {
                warnings.push(format!(
                    "config file '{}' holds influx.token and is readable by others (mode {:o}); run: chmod 600 '{}'",
                    path.display(),
                    mode & 0o777,
                    path.display()
                ));
            }
        }
    }
    Ok(FileRead {
        path: path.to_path_buf(),
        layer,
        warnings,
    })
}

/// The files to read: an explicit one (flag or `VMPULSE_CONFIG`, must exist),
/// else `/etc/vmpulse/config.toml` then `$XDG_CONFIG_HOME/vmpulse/config.toml`
/// (the user's file layered over the system's), each only if present.
pub fn config_paths(
    explicit: Option<PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<(PathBuf, bool)> {
    if let Some(p) = explicit.or_else(|| env("VMPULSE_CONFIG").map(PathBuf::from)) {
        return vec![(p, true)];
    }
    let mut out = vec![(PathBuf::from("/etc/vmpulse/config.toml"), false)];
    let xdg = env("XDG_CONFIG_HOME")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
    if let Some(dir) = xdg {
        out.push((dir.join("vmpulse").join("config.toml"), false));
    }
    out
}

/// The environment variables of the seeds (and a few more), same names and meanings.
pub fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Result<Layer, ConfigError> {
    fn num<T: std::str::FromStr>(
        env: &dyn Fn(&str) -> Option<String>,
        name: &str,
        what: &str,
    ) -> Result<Option<Sourced<T>>, ConfigError> {
        match env(name) {
            None => Ok(None),
            Some(raw) => raw
                .trim()
                .parse::<T>()
                .map(|v| Some(Sourced::new(v, name)))
                .map_err(|_| ConfigError::Invalid {
                    origin: name.to_string(),
                    message: format!("'{raw}' is not {what}"),
                }),
        }
    }
    let s = |name: &str| env(name).map(|v| Sourced::new(v, name));
    Ok(Layer {
        libvirt_uri: s("LIBVIRT_URI"),
        libvirt_timeout: num(env, "LIBVIRT_TIMEOUT", "a number of seconds")?,
        device_cache_ttl: num(env, "DEVICE_CACHE_TTL", "a number of seconds")?,
        poll_interval: num(env, "POLL_INTERVAL", "a number of seconds")?,
        influx_url: s("INFLUX_URL"),
        influx_db: s("INFLUX_DB"),
        influx_token: env("INFLUX_TOKEN").map(|v| Sourced::new(Secret::new(v), "INFLUX_TOKEN")),
        influx_api: s("INFLUX_API"),
        influx_org: s("INFLUX_ORG"),
        batch_max_lines: num(env, "BATCH_MAX_LINES", "a whole number of lines")?,
        batch_max_sec: num(env, "BATCH_MAX_SEC", "a number of seconds")?,
        max_queue: num(env, "MAX_QUEUE", "a whole number of lines")?,
        ..Layer::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn unknown_key_names_the_key_file_and_line() {
        let err = parse_file(
            "[influx]\ndb = \"x\"\nbatch_size = 5\n",
            Path::new("/etc/v.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/etc/v.toml"), "{err}");
        assert!(err.contains("batch_size"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let err = parse_file("[libvirt]\nuri = \n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = parse_file(
            "[collector]\npoll_interval = \"fast\"\n",
            Path::new("c.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("poll_interval") || err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn file_values_remember_their_origin() {
        let l = parse_file(
            "[collector]\npoll_interval = 2.5\n[tags]\ndc = \"par1\"\n",
            Path::new("c.toml"),
        )
        .unwrap();
        let p = l.poll_interval.unwrap();
        assert_eq!(p.value, 2.5);
        assert_eq!(p.origin, "c.toml: collector.poll_interval");
        assert_eq!(l.tags["dc"].value, "par1");
    }

    #[test]
    fn env_reads_seed_variables() {
        let env = env_of(&[
            ("LIBVIRT_URI", "test:///default"),
            ("POLL_INTERVAL", "2.5"),
            ("BATCH_MAX_LINES", "500"),
            ("INFLUX_TOKEN", "s3cret"),
            ("MAX_QUEUE", "100"),
        ]);
        let l = env_layer(&env).unwrap();
        assert_eq!(l.libvirt_uri.unwrap().value, "test:///default");
        assert_eq!(l.poll_interval.unwrap().value, 2.5);
        assert_eq!(l.batch_max_lines.unwrap().value, 500);
        assert_eq!(l.max_queue.unwrap().value, 100);
        assert_eq!(l.influx_token.unwrap().value.expose(), "s3cret");
    }

    #[test]
    fn non_numeric_env_names_the_variable() {
        let env = env_of(&[("POLL_INTERVAL", "soon")]);
        let err = env_layer(&env).unwrap_err().to_string();
        assert!(
            err.contains("POLL_INTERVAL") && err.contains("soon"),
            "{err}"
        );
    }

    #[test]
    fn config_paths_prefer_explicit_then_env_then_defaults() {
        let env = env_of(&[("XDG_CONFIG_HOME", "/x")]);
        let p = config_paths(Some("/a.toml".into()), &env);
        assert_eq!(p, vec![(PathBuf::from("/a.toml"), true)]);
        let env2 = env_of(&[("VMPULSE_CONFIG", "/b.toml")]);
        assert_eq!(
            config_paths(None, &env2),
            vec![(PathBuf::from("/b.toml"), true)]
        );
        let p = config_paths(None, &env);
        assert_eq!(
            p,
            vec![
                (PathBuf::from("/etc/vmpulse/config.toml"), false),
                (PathBuf::from("/x/vmpulse/config.toml"), false)
            ]
        );
    }
}
