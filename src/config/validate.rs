//! The one validation step: a merged [`Layer`] plus defaults becomes a [`Config`].
//!
//! Every error names the setting at fault (flag, variable or file key) and what
//! would be accepted.

use std::path::PathBuf;
use std::time::Duration;

use super::layer::{Layer, Sourced};
use super::{Config, InfluxApi, OutputTarget};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file '{}': {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

fn invalid<T>(s: &Sourced<T>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: s.origin.clone(),
        message: message.into(),
    }
}

/// Seconds > 0 (and finite), as a `Duration`.
fn seconds(v: Option<Sourced<f64>>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    if !s.value.is_finite() || s.value <= 0.0 || s.value > 86_400.0 {
        return Err(invalid(
            &s,
            format!(
                "'{}' must be a number of seconds greater than 0 and at most 86400",
                s.value
            ),
        ));
    }
    Ok(Duration::from_secs_f64(s.value))
}

/// A whole number >= `min`.
fn count(v: Option<Sourced<i64>>, default: usize, min: i64) -> Result<usize, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    if s.value < min {
        return Err(invalid(&s, format!("'{}' must be at least {min}", s.value)));
    }
    usize::try_from(s.value).map_err(|_| invalid(&s, format!("'{}' is too large", s.value)))
}

/// A positive finite number.
fn positive(v: Option<Sourced<f64>>, default: f64) -> Result<f64, ConfigError> {
    let Some(s) = v else { return Ok(default) };
    if !s.value.is_finite() || s.value <= 0.0 {
        return Err(invalid(
            &s,
            format!("'{}' must be a positive number", s.value),
        ));
    }
    Ok(s.value)
}

fn non_empty(v: Option<Sourced<String>>, default: &str) -> Result<String, ConfigError> {
    match v {
        None => Ok(default.to_string()),
        Some(s) if s.value.trim().is_empty() => Err(invalid(&s, "must not be empty")),
        Some(s) => Ok(s.value),
    }
}

/// Checks every value and fills the gaps with `defaults`.
pub fn validate(l: Layer, defaults: Config) -> Result<Config, ConfigError> {
    let d = defaults;
    let url = match l.influx_url {
        Some(s) if s.value.trim().is_empty() => None,
        Some(s) => {
            let u = url::Url::parse(s.value.trim()).map_err(|e| {
                // The URL may embed credentials: never echo it back.
                invalid(
                    &s,
                    format!("not a valid URL ({e}); expected e.g. http://127.0.0.1:8181"),
                )
            })?;
            if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                return Err(invalid(
                    &s,
                    format!(
                        "URL must be http:// or https:// with a host, not '{}:'",
                        u.scheme()
                    ),
                ));
            }
            Some(u)
        }
        None => None,
    };
    let api = match l.influx_api {
        None => d.influx.api,
        Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
            "v3" | "3" => InfluxApi::V3,
            "v2" | "2" => InfluxApi::V2,
            "v1" | "1" => InfluxApi::V1,
            other => {
                return Err(invalid(
                    &s,
                    format!("unknown InfluxDB API '{other}'; use v3, v2 or v1"),
                ))
            }
        },
    };
    let org = l.influx_org.map(|s| s.value).filter(|s| !s.is_empty());
    if api == InfluxApi::V2 && url.is_some() && org.is_none() {
        return Err(ConfigError::Invalid {
            origin: "--influx-org / INFLUX_ORG / influx.org".into(),
            message: "the v2 API needs an organisation; set --influx-org".into(),
        });
    }
    let output = match l.output {
        None => None,
        Some(s) if s.value == "-" => Some(OutputTarget::Stdout),
        Some(s) if s.value.trim().is_empty() => {
            return Err(invalid(&s, "give a file path or '-' for stdout"))
        }
        Some(s) => Some(OutputTarget::File(PathBuf::from(s.value))),
    };
    let batch_max_lines = count(l.batch_max_lines, d.influx.batch_max_lines, 1)?;
    let max_queue_origin = l.max_queue.as_ref().map(|s| s.origin.clone());
    let max_queue = count(l.max_queue, d.influx.max_queue, 1)?;
    if max_queue < batch_max_lines {
        return Err(ConfigError::Invalid {
            origin: max_queue_origin.unwrap_or_else(|| "MAX_QUEUE / influx.max_queue".into()),
            message: format!(
                "queue of {max_queue} lines is smaller than one batch ({batch_max_lines} lines); raise MAX_QUEUE or lower BATCH_MAX_LINES"
            ),
        });
    }
    let history_minutes = count(l.history_minutes, d.ui.history_minutes as usize, 1)? as u64;
    let mut tags = d.tags.clone();
    for (k, v) in l.tags {
        if k.is_empty()
            || matches!(
                k.as_str(),
                "host" | "VMID" | "name" | "uuid" | "devtype" | "device"
            )
        {
            return Err(invalid(
                &v,
                format!("tag key '{k}' is empty or reserved for vmpulse's own tags"),
            ));
        }
        tags.insert(k, v.value);
    }
    Ok(Config {
        libvirt: super::LibvirtConfig {
            uri: non_empty(l.libvirt_uri, &d.libvirt.uri)?,
            timeout: seconds(l.libvirt_timeout, d.libvirt.timeout)?,
            device_cache_ttl: seconds(l.device_cache_ttl, d.libvirt.device_cache_ttl)?,
        },
        poll_interval: seconds(l.poll_interval, d.poll_interval)?,
        influx: super::InfluxConfig {
            url,
            db: non_empty(l.influx_db, &d.influx.db)?,
            token: l
                .influx_token
                .map(|s| s.value)
                .filter(|t| !t.expose().is_empty()),
            api,
            org,
            batch_max_lines,
            batch_max_bytes: count(l.batch_max_bytes, d.influx.batch_max_bytes, 1024)?,
            batch_max_age: seconds(l.batch_max_sec, d.influx.batch_max_age)?,
            max_queue,
            max_in_flight: count(l.max_in_flight, d.influx.max_in_flight, 1)?,
            gzip_min_bytes: count(l.gzip_min_bytes, d.influx.gzip_min_bytes, 0)?,
            no_sync: l.no_sync.map(|s| s.value).unwrap_or(d.influx.no_sync),
            request_timeout: seconds(l.request_timeout, d.influx.request_timeout)?,
            max_backoff: seconds(l.max_backoff, d.influx.max_backoff)?,
            flush_timeout: seconds(l.flush_timeout, d.influx.flush_timeout)?,
        },
        output,
        host: non_empty(l.host, &d.host)?,
        tags,
        rates: super::RatesConfig {
            cpu_unit: positive(l.cpu_unit, d.rates.cpu_unit)?,
            memory_unit: positive(l.memory_unit, d.rates.memory_unit)?,
            throughput_unit: positive(l.throughput_unit, d.rates.throughput_unit)?,
        },
        ui: super::UiConfig {
            disk_ceiling: l.disk_ceiling.map(|s| positive(Some(s), 1.0)).transpose()?,
            net_ceiling: l.net_ceiling.map(|s| positive(Some(s), 1.0)).transpose()?,
            history_minutes,
        },
        status_interval: seconds(l.status_interval, d.status_interval)?,
        no_ui: l.no_ui.map(|s| s.value).unwrap_or(d.no_ui),
        config_file: d.config_file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn with(f: impl FnOnce(&mut Layer)) -> Result<Config, ConfigError> {
        let mut l = Layer::default();
        f(&mut l);
        validate(l, Config::default())
    }

    fn s<T>(v: T) -> Option<Sourced<T>> {
        Some(Sourced::new(v, "--flag"))
    }

    #[test]
    fn empty_layer_gives_defaults() {
        assert_eq!(
            validate(Layer::default(), Config::default()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn zero_negative_and_nan_intervals_are_rejected_naming_the_setting() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = with(|l| l.poll_interval = Some(Sourced::new(bad, "--poll-interval")))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--poll-interval:"), "{err}");
        }
        assert_eq!(
            with(|l| l.poll_interval = s(0.25)).unwrap().poll_interval,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn malformed_url_is_rejected_without_echoing_credentials() {
        let err = with(|l| l.influx_url = Some(Sourced::new("http//nohost".into(), "INFLUX_URL")))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("INFLUX_URL:"), "{err}");
        let err = with(|l| l.influx_url = s("ftp://u:hunter2@x".into()))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let ok = with(|l| l.influx_url = s("http://127.0.0.1:8181".into())).unwrap();
        assert_eq!(ok.influx.url.unwrap().as_str(), "http://127.0.0.1:8181/");
    }

    #[test]
    fn unknown_api_version_is_rejected() {
        let err = with(|l| l.influx_api = Some(Sourced::new("v4".into(), "--influx-api")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--influx-api") && err.contains("v4") && err.contains("v3, v2 or v1"),
            "{err}"
        );
        assert_eq!(
            with(|l| l.influx_api = s("V1".into())).unwrap().influx.api,
            InfluxApi::V1
        );
    }

    #[test]
    fn v2_needs_an_org() {
        let err = with(|l| {
            l.influx_api = s("v2".into());
            l.influx_url = s("http://127.0.0.1:8086".into());
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("--influx-org"), "{err}");
    }

    #[test]
    fn queue_must_hold_a_batch() {
        let err = with(|l| {
            l.max_queue = Some(Sourced::new(10, "MAX_QUEUE"));
            l.batch_max_lines = s(100);
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("MAX_QUEUE:"), "{err}");
    }

    #[test]
    fn output_dash_is_stdout_and_empty_url_means_off() {
        let c = with(|l| {
            l.output = s("-".into());
            l.influx_url = s("".into());
        })
        .unwrap();
        assert_eq!(c.output, Some(OutputTarget::Stdout));
        assert_eq!(c.influx.url, None);
    }

    #[test]
    fn reserved_tag_keys_are_rejected() {
        let err = with(|l| {
            l.tags
                .insert("host".into(), Sourced::new("x".into(), "c.toml: tags.host"));
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("tags.host"), "{err}");
    }

    #[test]
    fn token_survives_but_never_prints() {
        let c = with(|l| l.influx_token = s(Secret::new("t0ps3cret"))).unwrap();
        assert_eq!(c.influx.token.as_ref().unwrap().expose(), "t0ps3cret");
        assert!(!format!("{c:?}").contains("t0ps3cret"));
    }
}
