//! One partial-config type for file, environment and flags, and the one merge.
//!
//! A layer maps setting ids (`collector.poll_interval`, see `settings.rs`) to raw,
//! unchecked values. Each value remembers where it came from (`--poll-interval`,
//! `POLL_INTERVAL`, `/etc/vmpulse/config.toml: collector.poll_interval`) so that
//! validation errors can name the setting the operator has to fix.

use std::collections::BTreeMap;
use std::fmt;

use super::kind::Raw;
use super::settings;

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

/// Every setting, optional. Defaults are not a layer: `validate` starts from them.
#[derive(Clone, Default, PartialEq)]
pub struct Layer {
    values: BTreeMap<&'static str, Sourced<Raw>>,
    /// Static tags; later layers add keys and override equal ones.
    pub tags: BTreeMap<String, Sourced<String>>,
    /// `[alerts.<metric>]` tables by metric (a later layer replaces a metric's
    /// whole table) and the `[[alerts.override]]` array (a later one replaces it).
    pub alerts: AlertsLayer,
}

/// The alert tables of one layer, unchecked (`validate` parses them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsLayer {
    pub levels: BTreeMap<String, Sourced<toml::Value>>,
    pub overrides: Option<Sourced<toml::Value>>,
}

impl Layer {
    /// Where setting `id` came from, or every way to give it when it was left at its
    /// default: what an error about it names.
    pub fn origin(&self, id: &str) -> String {
        self.get(id)
            .map(|s| s.origin.clone())
            .unwrap_or_else(|| settings::find(id).names())
    }

    /// Sets the setting `id` (`section.field`); panics on an id not in the table.
    pub fn set(&mut self, id: &str, value: impl Into<Raw>, origin: impl Into<String>) {
        let s = settings::find(id);
        self.values.insert(s.id, Sourced::new(value.into(), origin));
    }
    /// The same, as a builder: `Layer::default().with("influx.db", "x", "--influx-db")`.
    pub fn with(mut self, id: &str, value: impl Into<Raw>, origin: impl Into<String>) -> Self {
        self.set(id, value, origin);
        self
    }
    pub fn get(&self, id: &str) -> Option<&Sourced<Raw>> {
        self.values.get(id)
    }
    pub fn is_set(&self, id: &str) -> bool {
        self.values.contains_key(id)
    }
    /// Ids and values, in id order.
    pub fn values(&self) -> impl Iterator<Item = (&'static str, &Sourced<Raw>)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }
}

/// Never shows secret values (a layer may be logged while debugging).
impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (id, v) in &self.values {
            let shown = if settings::find(id).meta.secret {
                "***".to_string()
            } else {
                match &v.value {
                    Raw::Toml(t) => t.to_string(),
                    Raw::Text(t) => format!("{t:?}"),
                }
            };
            m.entry(id, &format_args!("{shown} ({})", v.origin));
        }
        for (k, v) in &self.tags {
            m.entry(
                &format_args!("tags.{k}"),
                &format_args!("{:?} ({})", v.value, v.origin),
            );
        }
        m.finish()
    }
}

/// Layers in increasing priority (file, environment, flags): the later value wins.
pub fn merge(layers: impl IntoIterator<Item = Layer>) -> Layer {
    let mut out = Layer::default();
    for l in layers {
        out.values.extend(l.values);
        out.tags.extend(l.tags);
        out.alerts.levels.extend(l.alerts.levels);
        if l.alerts.overrides.is_some() {
            out.alerts.overrides = l.alerts.overrides;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(l: &Layer, id: &str) -> Raw {
        l.get(id).unwrap().value.clone()
    }

    #[test]
    fn later_layers_win_and_tags_merge_by_key() {
        let mut file = Layer::default()
            .with("collector.poll_interval", 5.0, "file")
            .with("influx.db", "filedb", "file");
        file.tags
            .insert("dc".into(), Sourced::new("par1".into(), "file"));
        file.tags
            .insert("rack".into(), Sourced::new("r1".into(), "file"));
        let env = Layer::default().with("collector.poll_interval", 2.0, "POLL_INTERVAL");
        let mut flags = Layer::default().with("collector.poll_interval", 0.5, "--poll-interval");
        flags
            .tags
            .insert("rack".into(), Sourced::new("r9".into(), "flag"));
        let m = merge([file, env, flags]);
        assert!(value(&m, "collector.poll_interval") == Raw::from(0.5));
        assert!(value(&m, "influx.db") == Raw::from("filedb"));
        assert_eq!(m.tags["dc"].value, "par1");
        assert_eq!(m.tags["rack"].value, "r9");
    }

    #[test]
    fn absent_values_do_not_erase_earlier_ones() {
        let file = Layer::default().with("libvirt.uri", "test:///default", "file");
        let m = merge([file, Layer::default(), Layer::default()]);
        assert!(value(&m, "libvirt.uri") == Raw::from("test:///default"));
    }

    #[test]
    fn debug_masks_secrets() {
        let l = Layer::default().with("influx.token", "hunter2", "INFLUX_TOKEN");
        let shown = format!("{l:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("***"),
            "{shown}"
        );
    }
}
