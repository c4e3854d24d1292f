//! What a setting's value can be: how it is read (from TOML or from the text of a
//! flag or environment variable), checked, defaulted and printed back.
//!
//! Each kind carries its own default and limits, so one entry in `settings.rs` says
//! everything about a setting. Messages are phrased to follow the setting's origin
//! (`--poll-interval: '0' must be ...`): the caller adds the origin.

use std::path::PathBuf;
use std::time::Duration;

use super::{InfluxApi, OutputTarget, Secret};

/// A value as a layer holds it, before validation.
#[derive(Clone, PartialEq)]
pub enum Raw {
    /// From the config file, already typed by TOML.
    Toml(toml::Value),
    /// From a flag or an environment variable: text to be parsed by the kind.
    Text(String),
}

impl From<&str> for Raw {
    fn from(v: &str) -> Self {
        Raw::Text(v.to_string())
    }
}
impl From<String> for Raw {
    fn from(v: String) -> Self {
        Raw::Text(v)
    }
}
impl From<f64> for Raw {
    fn from(v: f64) -> Self {
        Raw::Toml(toml::Value::Float(v))
    }
}
impl From<i64> for Raw {
    fn from(v: i64) -> Self {
        Raw::Toml(toml::Value::Integer(v))
    }
}
impl From<bool> for Raw {
    fn from(v: bool) -> Self {
        Raw::Toml(toml::Value::Boolean(v))
    }
}

/// One kind of setting value.
pub trait Kind {
    type Value: Clone + PartialEq + std::fmt::Debug;
    /// Checks a raw value from any layer; the message is shown after the origin.
    fn check(&self, raw: &Raw) -> Result<Self::Value, String>;
    fn default_value(&self) -> Self::Value;
    /// A TOML value for `--print-config` and the example file (`None`: not set).
    /// Must never reveal a secret.
    fn render(&self, value: &Self::Value) -> Option<toml::Value>;
    /// Placeholder in `--help`, e.g. `SECONDS`.
    fn value_name(&self) -> &'static str;
    /// A flag of this kind takes no value (`--no-ui`).
    fn is_switch(&self) -> bool {
        false
    }
    /// The values to offer (shell completion, `--help`); empty: free text.
    fn choices(&self) -> &'static [&'static str] {
        &[]
    }
}

fn type_name(v: &toml::Value) -> &'static str {
    v.type_str()
}

/// A number from TOML (float or integer) or from text.
fn number(raw: &Raw, what: &str) -> Result<f64, String> {
    match raw {
        Raw::Toml(toml::Value::Float(f)) => Ok(*f),
        Raw::Toml(toml::Value::Integer(i)) => Ok(*i as f64),
        Raw::Toml(v) => Err(format!("expected {what}, found a {}", type_name(v))),
        Raw::Text(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("'{t}' is not {what}")),
    }
}

/// A whole number from TOML or from text.
fn integer(raw: &Raw, what: &str) -> Result<i64, String> {
    match raw {
        Raw::Toml(toml::Value::Integer(i)) => Ok(*i),
        Raw::Toml(v) => Err(format!("expected {what}, found a {}", type_name(v))),
        Raw::Text(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("'{t}' is not {what}")),
    }
}

/// A string from TOML or text.
fn string(raw: &Raw) -> Result<String, String> {
    match raw {
        Raw::Toml(toml::Value::String(s)) | Raw::Text(s) => Ok(s.clone()),
        Raw::Toml(v) => Err(format!("expected a string, found a {}", type_name(v))),
    }
}

/// Seconds, finite, within `[min, 86400]` (and > 0), as a `Duration`.
pub struct Seconds {
    pub default: f64,
    /// Smallest accepted value; values must also be greater than 0.
    pub min: f64,
}

impl Seconds {
    pub const fn new(default: f64) -> Self {
        Self { default, min: 0.0 }
    }
    /// A floor below which the value makes no sense (e.g. a poll interval).
    pub const fn at_least(self, min: f64) -> Self {
        Self { min, ..self }
    }
}

impl Kind for Seconds {
    type Value = Duration;
    fn check(&self, raw: &Raw) -> Result<Duration, String> {
        let v = number(raw, "a number of seconds")?;
        if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
            return Err(format!(
                "'{v}' must be a number of seconds greater than 0 and at most 86400"
            ));
        }
        if v < self.min {
            return Err(format!("'{v}' must be at least {} seconds", self.min));
        }
        Ok(Duration::from_secs_f64(v))
    }
    fn default_value(&self) -> Duration {
        Duration::from_secs_f64(self.default)
    }
    fn render(&self, v: &Duration) -> Option<toml::Value> {
        Some(toml::Value::Float(v.as_secs_f64()))
    }
    fn value_name(&self) -> &'static str {
        "SECONDS"
    }
}

/// A whole number of something, at least `min`.
pub struct Count {
    pub default: usize,
    pub min: i64,
    /// What is counted, for messages: "lines", "bytes", "requests", "minutes".
    pub unit: &'static str,
}

impl Count {
    pub const fn new(default: usize, min: i64, unit: &'static str) -> Self {
        Self { default, min, unit }
    }
}

impl Kind for Count {
    type Value = usize;
    fn check(&self, raw: &Raw) -> Result<usize, String> {
        let v = integer(raw, &format!("a whole number of {}", self.unit))?;
        if v < self.min {
            return Err(format!("'{v}' must be at least {}", self.min));
        }
        usize::try_from(v).map_err(|_| format!("'{v}' is too large"))
    }
    fn default_value(&self) -> usize {
        self.default
    }
    fn render(&self, v: &usize) -> Option<toml::Value> {
        Some(toml::Value::Integer(i64::try_from(*v).unwrap_or(i64::MAX)))
    }
    fn value_name(&self) -> &'static str {
        "N"
    }
}

/// A positive finite number; `None` default means "not set" (an automatic value).
pub struct Positive {
    pub default: Option<f64>,
}

impl Kind for Positive {
    type Value = Option<f64>;
    fn check(&self, raw: &Raw) -> Result<Option<f64>, String> {
        let v = number(raw, "a number")?;
        if !v.is_finite() || v <= 0.0 {
            return Err(format!("'{v}' must be a positive number"));
        }
        Ok(Some(v))
    }
    fn default_value(&self) -> Option<f64> {
        self.default
    }
    fn render(&self, v: &Option<f64>) -> Option<toml::Value> {
        v.map(toml::Value::Float)
    }
    fn value_name(&self) -> &'static str {
        "NUMBER"
    }
}

/// A positive number that always has a value.
pub struct Unit(pub f64);

impl Kind for Unit {
    type Value = f64;
    fn check(&self, raw: &Raw) -> Result<f64, String> {
        Positive { default: None }
            .check(raw)
            .map(|v| v.unwrap_or(self.0))
    }
    fn default_value(&self) -> f64 {
        self.0
    }
    fn render(&self, v: &f64) -> Option<toml::Value> {
        Some(toml::Value::Float(*v))
    }
    fn value_name(&self) -> &'static str {
        "NUMBER"
    }
}

/// A string that must not be empty.
pub struct Text {
    pub default: fn() -> String,
    pub value_name: &'static str,
}

impl Kind for Text {
    type Value = String;
    fn check(&self, raw: &Raw) -> Result<String, String> {
        let s = string(raw)?;
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(s)
    }
    fn default_value(&self) -> String {
        (self.default)()
    }
    fn render(&self, v: &String) -> Option<toml::Value> {
        Some(toml::Value::String(v.clone()))
    }
    fn value_name(&self) -> &'static str {
        self.value_name
    }
}

/// A string that may be unset; an empty string also means unset.
pub struct OptText {
    pub value_name: &'static str,
}

impl Kind for OptText {
    type Value = Option<String>;
    fn check(&self, raw: &Raw) -> Result<Option<String>, String> {
        Ok(Some(string(raw)?).filter(|s| !s.is_empty()))
    }
    fn default_value(&self) -> Option<String> {
        None
    }
    fn render(&self, v: &Option<String>) -> Option<toml::Value> {
        v.clone().map(toml::Value::String)
    }
    fn value_name(&self) -> &'static str {
        self.value_name
    }
}

/// A secret string; empty means unset. Printed as `***`, never as itself.
pub struct SecretText;

impl Kind for SecretText {
    type Value = Option<Secret>;
    fn check(&self, raw: &Raw) -> Result<Option<Secret>, String> {
        // Never quote the value in an error.
        let s = string(raw).map_err(|_| "expected a string".to_string())?;
        Ok(Some(Secret::new(s)).filter(|t| !t.expose().is_empty()))
    }
    fn default_value(&self) -> Option<Secret> {
        None
    }
    fn render(&self, v: &Option<Secret>) -> Option<toml::Value> {
        v.as_ref().map(|_| toml::Value::String("***".into()))
    }
    fn value_name(&self) -> &'static str {
        "TOKEN"
    }
}

/// true/false (also 1/0, yes/no, on/off from text); as a flag it takes no value.
pub struct Switch(pub bool);

impl Kind for Switch {
    type Value = bool;
    fn check(&self, raw: &Raw) -> Result<bool, String> {
        match raw {
            Raw::Toml(toml::Value::Boolean(b)) => Ok(*b),
            Raw::Toml(v) => Err(format!("expected true or false, found a {}", type_name(v))),
            Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" | "" => Ok(false),
                _ => Err(format!("'{t}' is not true or false")),
            },
        }
    }
    fn default_value(&self) -> bool {
        self.0
    }
    fn render(&self, v: &bool) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*v))
    }
    fn value_name(&self) -> &'static str {
        "BOOL"
    }
    fn is_switch(&self) -> bool {
        true
    }
}

/// The InfluxDB write API.
pub struct Api(pub InfluxApi);

impl Kind for Api {
    type Value = InfluxApi;
    fn check(&self, raw: &Raw) -> Result<InfluxApi, String> {
        match string(raw)?.trim().to_ascii_lowercase().as_str() {
            "v3" | "3" => Ok(InfluxApi::V3),
            "v2" | "2" => Ok(InfluxApi::V2),
            "v1" | "1" => Ok(InfluxApi::V1),
            other => Err(format!("unknown InfluxDB API '{other}'; use v3, v2 or v1")),
        }
    }
    fn default_value(&self) -> InfluxApi {
        self.0
    }
    fn render(&self, v: &InfluxApi) -> Option<toml::Value> {
        Some(toml::Value::String(v.as_str().into()))
    }
    fn value_name(&self) -> &'static str {
        "v3|v2|v1"
    }
    fn choices(&self) -> &'static [&'static str] {
        &["v3", "v2", "v1"]
    }
}

/// An http(s) URL with a host; empty means unset. Errors never echo it (credentials).
pub struct HttpUrl;

impl Kind for HttpUrl {
    type Value = Option<url::Url>;
    fn check(&self, raw: &Raw) -> Result<Option<url::Url>, String> {
        let s = string(raw)?;
        if s.trim().is_empty() {
            return Ok(None);
        }
        let u = url::Url::parse(s.trim())
            .map_err(|e| format!("not a valid URL ({e}); expected e.g. http://127.0.0.1:8181"))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(format!(
                "URL must be http:// or https:// with a host, not '{}:'",
                u.scheme()
            ));
        }
        Ok(Some(u))
    }
    fn default_value(&self) -> Option<url::Url> {
        None
    }
    fn render(&self, v: &Option<url::Url>) -> Option<toml::Value> {
        v.as_ref()
            .map(|u| toml::Value::String(super::masked_url(u)))
    }
    fn value_name(&self) -> &'static str {
        "URL"
    }
}

/// `--output FILE|-`: a file path or `-` for stdout.
pub struct Output;

impl Kind for Output {
    type Value = Option<OutputTarget>;
    fn check(&self, raw: &Raw) -> Result<Option<OutputTarget>, String> {
        let s = string(raw)?;
        match s.as_str() {
            "-" => Ok(Some(OutputTarget::Stdout)),
            t if t.trim().is_empty() => Err("give a file path or '-' for stdout".into()),
            t => Ok(Some(OutputTarget::File(PathBuf::from(t)))),
        }
    }
    fn default_value(&self) -> Option<OutputTarget> {
        None
    }
    fn render(&self, v: &Option<OutputTarget>) -> Option<toml::Value> {
        v.as_ref().map(|o| {
            toml::Value::String(match o {
                OutputTarget::Stdout => "-".into(),
                OutputTarget::File(p) => p.display().to_string(),
            })
        })
    }
    fn value_name(&self) -> &'static str {
        "FILE|-"
    }
}

/// A list of shell-style globs (`*`, `?`, `[...]`) matched against VM names:
/// a TOML array of strings, or comma-separated text from a flag or variable.
pub struct Globs;

impl Kind for Globs {
    type Value = Vec<String>;
    fn check(&self, raw: &Raw) -> Result<Vec<String>, String> {
        let items: Vec<String> = match raw {
            Raw::Toml(toml::Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        format!("expected a list of strings, found a {}", type_name(v))
                    })
                })
                .collect::<Result<_, _>>()?,
            Raw::Toml(toml::Value::String(t)) | Raw::Text(t) => {
                t.split(',').map(|p| p.trim().to_string()).collect()
            }
            Raw::Toml(v) => {
                return Err(format!(
                    "expected a list of name patterns, found a {}",
                    type_name(v)
                ))
            }
        };
        let items: Vec<String> = items.into_iter().filter(|p| !p.is_empty()).collect();
        for p in &items {
            crate::config::glob::Glob::new(p)?;
        }
        Ok(items)
    }
    fn default_value(&self) -> Vec<String> {
        Vec::new()
    }
    fn render(&self, v: &Vec<String>) -> Option<toml::Value> {
        Some(toml::Value::Array(
            v.iter().cloned().map(toml::Value::String).collect(),
        ))
    }
    fn value_name(&self) -> &'static str {
        "GLOB,..."
    }
}

/// `collector.metadata_tags`: a TOML table of `name = "NAMESPACE-URI path"`
/// (`config::metadata`), in the file only; parsed here, once.
pub struct MetadataTags;

impl Kind for MetadataTags {
    type Value = Vec<super::metadata::MetadataTag>;
    fn check(&self, raw: &Raw) -> Result<Self::Value, String> {
        let Raw::Toml(toml::Value::Table(t)) = raw else {
            return Err(
                "expected a table of tag = \"NAMESPACE-URI path\" in the config file ([collector.metadata_tags])"
                    .into(),
            );
        };
        t.iter()
            .map(|(name, v)| match v {
                toml::Value::String(spec) => super::metadata::parse_entry(name, spec),
                v => Err(format!(
                    "{name}: expected a string \"NAMESPACE-URI path\", found a {}",
                    type_name(v)
                )),
            })
            .collect()
    }
    fn default_value(&self) -> Self::Value {
        Vec::new()
    }
    fn render(&self, v: &Self::Value) -> Option<toml::Value> {
        Some(toml::Value::Table(
            v.iter()
                .map(|t| (t.name.clone(), toml::Value::String(t.spec())))
                .collect(),
        ))
    }
    fn value_name(&self) -> &'static str {
        "TABLE"
    }
}

/// `[[fleet.hosts]]`: an array of tables (`config::fleet_hosts`), in the file only.
pub struct FleetHosts;

impl Kind for FleetHosts {
    type Value = Vec<super::fleet_hosts::FleetHost>;
    fn check(&self, raw: &Raw) -> Result<Self::Value, String> {
        match raw {
            Raw::Toml(v) => super::fleet_hosts::parse(v),
            Raw::Text(_) => Err("[[fleet.hosts]] tables are read from the config file only".into()),
        }
    }
    fn default_value(&self) -> Self::Value {
        Vec::new()
    }
    fn render(&self, v: &Self::Value) -> Option<toml::Value> {
        super::fleet_hosts::render(v)
    }
    fn value_name(&self) -> &'static str {
        "TABLES"
    }
}

/// `--format lp|json|csv`.
pub struct Format;

impl Kind for Format {
    type Value = crate::config::Format;
    fn check(&self, raw: &Raw) -> Result<crate::config::Format, String> {
        string(raw)?.parse().map_err(|e| format!("{e}"))
    }
    fn default_value(&self) -> crate::config::Format {
        crate::config::Format::Lp
    }
    fn render(&self, v: &crate::config::Format) -> Option<toml::Value> {
        Some(toml::Value::String(v.as_str().into()))
    }
    fn value_name(&self) -> &'static str {
        "lp|json|csv"
    }
    fn choices(&self) -> &'static [&'static str] {
        &crate::config::Format::NAMES
    }
}

/// A whole number that may be unset (no limit), at least `min`.
pub struct OptCount {
    pub min: i64,
    pub unit: &'static str,
}

impl Kind for OptCount {
    type Value = Option<u64>;
    fn check(&self, raw: &Raw) -> Result<Option<u64>, String> {
        let what = format!("a whole number of {}", self.unit);
        let v = integer(raw, &what)?;
        if v < self.min {
            return Err(format!("'{v}' must be at least {}", self.min));
        }
        Ok(Some(v as u64))
    }
    fn default_value(&self) -> Option<u64> {
        None
    }
    fn render(&self, v: &Option<u64>) -> Option<toml::Value> {
        v.and_then(|n| i64::try_from(n).ok())
            .map(toml::Value::Integer)
    }
    fn value_name(&self) -> &'static str {
        "N"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_come_from_toml_or_text_and_name_what_was_expected() {
        let s = Seconds::new(1.0);
        assert_eq!(s.check(&Raw::from(2i64)).unwrap(), Duration::from_secs(2));
        assert_eq!(
            s.check(&Raw::from("0.5")).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            s.check(&Raw::from("soon")).unwrap_err(),
            "'soon' is not a number of seconds"
        );
        let e = s
            .check(&Raw::Toml(toml::Value::String("fast".into())))
            .unwrap_err();
        assert!(e.contains("found a string"), "{e}");
        let floor = Seconds::new(1.0).at_least(0.1);
        assert!(floor
            .check(&Raw::from(0.05))
            .unwrap_err()
            .contains("at least 0.1"));
    }

    #[test]
    fn counts_switches_and_apis() {
        let c = Count::new(10, 1, "lines");
        assert_eq!(c.check(&Raw::from("500")).unwrap(), 500);
        assert_eq!(
            c.check(&Raw::from(0i64)).unwrap_err(),
            "'0' must be at least 1"
        );
        assert_eq!(
            c.check(&Raw::from("1.5")).unwrap_err(),
            "'1.5' is not a whole number of lines"
        );
        assert!(Switch(false).check(&Raw::from("yes")).unwrap());
        assert!(Switch(false).check(&Raw::from("maybe")).is_err());
        assert_eq!(
            Api(InfluxApi::V3).check(&Raw::from("V1")).unwrap(),
            InfluxApi::V1
        );
    }

    #[test]
    fn secrets_render_masked_and_never_appear_in_errors() {
        let v = SecretText.check(&Raw::from("hunter2")).unwrap();
        assert_eq!(
            SecretText.render(&v),
            Some(toml::Value::String("***".into()))
        );
        assert_eq!(SecretText.check(&Raw::from("")).unwrap(), None);
        let e = HttpUrl.check(&Raw::from("ftp://u:hunter2@x")).unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
