//! One partial-config type for file, environment and flags, and the one merge.
//!
//! Each value remembers where it came from (`--poll-interval`, `POLL_INTERVAL`,
//! `/etc/vmpulse/config.toml: collector.poll_interval`) so that validation
//! errors can name the setting the operator has to fix.

use std::collections::BTreeMap;

use super::Secret;

/// A value and the setting it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub origin: String,
}

impl<T> Sourced<T> {
    pub fn new(value: T, origin: impl Into<String>) -> Self {
        Self {
            value,
            origin: origin.into(),
        }
    }
}

/// Every setting, optional. Defaults are not a layer: `validate` fills them in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layer {
    pub host: Option<Sourced<String>>,
    pub libvirt_uri: Option<Sourced<String>>,
    pub libvirt_timeout: Option<Sourced<f64>>,
    pub device_cache_ttl: Option<Sourced<f64>>,
    pub poll_interval: Option<Sourced<f64>>,
    pub status_interval: Option<Sourced<f64>>,
    pub influx_url: Option<Sourced<String>>,
    pub influx_db: Option<Sourced<String>>,
    pub influx_token: Option<Sourced<Secret>>,
    pub influx_api: Option<Sourced<String>>,
    pub influx_org: Option<Sourced<String>>,
    pub batch_max_lines: Option<Sourced<i64>>,
    pub batch_max_bytes: Option<Sourced<i64>>,
    pub batch_max_sec: Option<Sourced<f64>>,
    pub max_queue: Option<Sourced<i64>>,
    pub max_in_flight: Option<Sourced<i64>>,
    pub gzip_min_bytes: Option<Sourced<i64>>,
    pub no_sync: Option<Sourced<bool>>,
    pub request_timeout: Option<Sourced<f64>>,
    pub max_backoff: Option<Sourced<f64>>,
    pub flush_timeout: Option<Sourced<f64>>,
    pub output: Option<Sourced<String>>,
    pub cpu_unit: Option<Sourced<f64>>,
    pub memory_unit: Option<Sourced<f64>>,
    pub throughput_unit: Option<Sourced<f64>>,
    pub disk_ceiling: Option<Sourced<f64>>,
    pub net_ceiling: Option<Sourced<f64>>,
    pub history_minutes: Option<Sourced<i64>>,
    /// Static tags; later layers add keys and override equal ones.
    pub tags: BTreeMap<String, Sourced<String>>,
    pub no_ui: Option<Sourced<bool>>,
}

/// Layers in increasing priority (file, environment, flags): the later value wins.
pub fn merge(layers: impl IntoIterator<Item = Layer>) -> Layer {
    let mut out = Layer::default();
    for l in layers {
        macro_rules! take {
            ($($f:ident),* $(,)?) => { $( if l.$f.is_some() { out.$f = l.$f; } )* };
        }
        take!(
            host,
            libvirt_uri,
            libvirt_timeout,
            device_cache_ttl,
            poll_interval,
            status_interval,
            influx_url,
            influx_db,
            influx_token,
            influx_api,
            influx_org,
            batch_max_lines,
            batch_max_bytes,
            batch_max_sec,
            max_queue,
            max_in_flight,
            gzip_min_bytes,
            no_sync,
            request_timeout,
            max_backoff,
            flush_timeout,
            output,
            cpu_unit,
            memory_unit,
            throughput_unit,
            disk_ceiling,
            net_ceiling,
            history_minutes,
            no_ui,
        );
        out.tags.extend(l.tags);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_tags_merge_by_key() {
        let mut file = Layer {
            poll_interval: Some(Sourced::new(5.0, "file")),
            influx_db: Some(Sourced::new("filedb".to_string(), "file")),
            ..Layer::default()
        };
        file.tags
            .insert("dc".into(), Sourced::new("par1".into(), "file"));
        file.tags
            .insert("rack".into(), Sourced::new("r1".into(), "file"));
        let env = Layer {
            poll_interval: Some(Sourced::new(2.0, "POLL_INTERVAL")),
            ..Layer::default()
        };
        let mut flags = Layer {
            poll_interval: Some(Sourced::new(0.5, "--poll-interval")),
            ..Layer::default()
        };
        flags
            .tags
            .insert("rack".into(), Sourced::new("r9".into(), "flag"));
        let m = merge([file, env, flags]);
        assert_eq!(m.poll_interval.unwrap().value, 0.5);
        assert_eq!(m.influx_db.unwrap().value, "filedb");
        assert_eq!(m.tags["dc"].value, "par1");
        assert_eq!(m.tags["rack"].value, "r9");
    }

    #[test]
    fn absent_values_do_not_erase_earlier_ones() {
        let file = Layer {
            libvirt_uri: Some(Sourced::new("test:///default".to_string(), "file")),
            ..Layer::default()
        };
        let m = merge([file, Layer::default(), Layer::default()]);
        assert_eq!(m.libvirt_uri.unwrap().value, "test:///default");
    }
}
