//! The one validation step: a merged [`Layer`] plus defaults becomes a [`Config`].
//!
//! Every error names the setting at fault (flag, variable or file key) and what
//! would be accepted.

use super::alerts::{self, AlertRules};
use super::layer::{AlertsLayer, Layer, Sourced};
use super::settings::{self, SETTINGS};
use super::{Config, ConfigError, InfluxApi};

fn invalid<T>(s: &Sourced<T>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: s.origin.clone(),
        message: message.into(),
    }
}

use crate::schema::{FIELD_KEYS, RESERVED_TAGS};

/// Checks every value and fills the gaps with `defaults`: each setting by its kind
/// (`settings.rs`), then the rules that span settings.
pub fn validate(l: Layer, defaults: Config) -> Result<Config, ConfigError> {
    let mut c = defaults;
    for s in SETTINGS.iter() {
        if let Some(v) = l.get(s.id) {
            (s.apply)(&mut c, &v.value).map_err(|m| invalid(v, m))?;
        }
    }
    if c.influx.api == InfluxApi::V2 && c.influx.url.is_some() && c.influx.org.is_none() {
        return Err(ConfigError::Invalid {
            origin: settings::find("influx.org").names(),
            message: "the v2 API needs an organisation; set --influx-org".into(),
        });
    }
    let (max_queue, batch) = (c.influx.max_queue, c.influx.batch_max_lines);
    if max_queue < batch {
        return Err(ConfigError::Invalid {
            origin: l.origin("influx.max_queue"),
            message: format!(
                "queue of {max_queue} lines is smaller than one batch ({batch} lines); raise MAX_QUEUE or lower BATCH_MAX_LINES"
            ),
        });
    }
    super::run::settle(&l, &mut c)?;
    for (token, file) in [
        ("influx.token", "influx.token_file"),
        ("control.token", "control.token_file"),
    ] {
        if l.is_set(token) && l.is_set(file) {
            return Err(ConfigError::Invalid {
                origin: format!("{} and {}", l.origin(token), l.origin(file)),
                message: format!("{token} and {file} are both set: keep one"),
            });
        }
    }
    if let Some(listen) = &c.control.listen {
        let origin = l.origin("control.listen");
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                origin,
                message: format!("'{listen}' is not an address and port like 127.0.0.1:9180"),
            });
        }
        if c.control.token.is_none() && c.control.token_file.is_none() {
            return Err(ConfigError::Invalid {
                origin,
                message:
                    "a TCP listener needs a token: set control.token (or VMPULSE_CONTROL_TOKEN) or control.token_file"
                        .into(),
            });
        }
    }
    let metadata_origin = l.origin("collector.metadata_tags");
    for (k, v) in l.tags {
        if k.is_empty() || RESERVED_TAGS.contains(&k.as_str()) {
            return Err(invalid(
                &v,
                format!("tag key '{k}' is empty or reserved for vmpulse's own tags"),
            ));
        }
        if FIELD_KEYS.contains(&k.as_str()) {
            return Err(invalid(
                &v,
                format!("tag key '{k}' is also a field name; InfluxDB 3 refuses every line where a column is both tag and field: rename the tag"),
            ));
        }
        c.tags.insert(k, v.value);
    }
    if let Some(t) = c
        .collector
        .metadata_tags
        .iter()
        .find(|t| c.tags.contains_key(&t.name))
    {
        return Err(ConfigError::Invalid {
            origin: metadata_origin,
            message: format!(
                "tag '{}' is also a static tag in [tags]; a line may carry a tag once: rename one",
                t.name
            ),
        });
    }
    alert_rules(&l.alerts, &mut c.alert_rules)?;
    Ok(c)
}

/// The layer's alert tables on top of the rules in `rules` (the defaults): each
/// `[alerts.<metric>]` replaces that metric's levels; overrides are read against them.
fn alert_rules(l: &AlertsLayer, rules: &mut AlertRules) -> Result<(), ConfigError> {
    for (metric, v) in &l.levels {
        let key = format!("alerts.{metric}");
        let levels =
            alerts::parse_levels(&key, metric, &v.value, None).map_err(|m| invalid(v, m))?;
        rules.levels.insert(metric.clone(), levels);
    }
    if let Some(v) = &l.overrides {
        rules.overrides =
            alerts::parse_overrides(&v.value, &rules.levels).map_err(|m| invalid(v, m))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputTarget;
    use std::time::Duration;

    fn with(f: impl FnOnce(&mut Layer)) -> Result<Config, ConfigError> {
        let mut l = Layer::default();
        f(&mut l);
        validate(l, Config::default())
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
            let err = with(|l| l.set("collector.poll_interval", bad, "--poll-interval"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--poll-interval:"), "{err}");
        }
        assert_eq!(
            with(|l| l.set("collector.poll_interval", 0.25, "--flag"))
                .unwrap()
                .collector
                .poll_interval,
            Duration::from_millis(250)
        );
    }

    #[test]
    fn malformed_url_is_rejected_without_echoing_credentials() {
        let err = with(|l| l.set("influx.url", "http//nohost", "INFLUX_URL"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("INFLUX_URL:"), "{err}");
        let err = with(|l| l.set("influx.url", "ftp://u:hunter2@x", "--flag"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let ok = with(|l| l.set("influx.url", "http://127.0.0.1:8181", "--flag")).unwrap();
        assert_eq!(ok.influx.url.unwrap().as_str(), "http://127.0.0.1:8181/");
    }

    #[test]
    fn unknown_api_version_is_rejected() {
        let err = with(|l| l.set("influx.api", "v4", "--influx-api"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--influx-api") && err.contains("v4") && err.contains("v3, v2 or v1"),
            "{err}"
        );
        assert_eq!(
            with(|l| l.set("influx.api", "V1", "--flag"))
                .unwrap()
                .influx
                .api,
            InfluxApi::V1
        );
    }

    #[test]
    fn v2_needs_an_org() {
        let err = with(|l| {
            l.set("influx.api", "v2", "--flag");
            l.set("influx.url", "http://127.0.0.1:8086", "--flag");
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("--influx-org"), "{err}");
    }

    #[test]
    fn queue_must_hold_a_batch() {
        let err = with(|l| {
            l.set("influx.max_queue", 10i64, "MAX_QUEUE");
            l.set("influx.batch_max_lines", 100i64, "--flag");
        })
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("MAX_QUEUE:"), "{err}");
    }

    #[test]
    fn output_dash_is_stdout_and_empty_url_means_off() {
        let c = with(|l| {
            l.set("run.output", "-", "--output");
            l.set("influx.url", "", "--flag");
        })
        .unwrap();
        assert_eq!(c.run.output, Some(OutputTarget::Stdout));
        assert_eq!(c.influx.url, None);
    }

    fn from_file(text: &str) -> Result<Config, ConfigError> {
        let l = crate::config::load::parse_file(text, std::path::Path::new("/etc/v.toml"))?;
        validate(l, Config::default())
    }

    #[test]
    fn metadata_tags_are_read_from_the_file_table() {
        let c = from_file(
            "[collector.metadata_tags]\n\
             project = \"http://openstack.org/xmlns/libvirt/nova/1.1 instance/owner/project\"\n\
             flavor = \"http://openstack.org/xmlns/libvirt/nova/1.1 instance/flavor/@name\"\n",
        )
        .unwrap();
        let names: Vec<&str> = c
            .collector
            .metadata_tags
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["flavor", "project"]);
        let inline = from_file("[collector]\nmetadata_tags = { p = \"urn:x a/b\" }\n").unwrap();
        assert_eq!(inline.collector.metadata_tags[0].path, ["a", "b"]);
    }

    #[test]
    fn malformed_metadata_tags_are_refused_naming_the_setting_and_line() {
        for (text, why) in [
            (
                "[collector.metadata_tags]\np = \"instance/owner\"\n",
                "namespace URI",
            ),
            (
                "[collector.metadata_tags]\np = \"urn:x a//b\"\n",
                "element name",
            ),
            ("[collector.metadata_tags]\np = 3\n", "expected a string"),
            (
                "[collector.metadata_tags]\nuuid = \"urn:x a/b\"\n",
                "reserved",
            ),
            (
                "[collector.metadata_tags]\nstate = \"urn:x a/b\"\n",
                "field name",
            ),
            (
                "[collector]\nmetadata_tags = \"urn:x a/b\"\n",
                "expected a table",
            ),
        ] {
            let err = from_file(text).unwrap_err().to_string();
            assert!(
                err.contains("collector.metadata_tags")
                    && err.contains(why)
                    && err.contains("line "),
                "{text}: {err}"
            );
        }
        let err = from_file("[collector.metadata_tags]\nok = \"urn:x a/b\"\nbad = \"a/b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3: collector.metadata_tags: bad = 'a/b'"),
            "{err}"
        );
        let err =
            from_file("[collector.metadata_tags]\ndc = \"urn:x a/b\"\n[tags]\ndc = \"par1\"\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("collector.metadata_tags") && err.contains("static tag"),
            "{err}"
        );
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
    fn tag_keys_that_are_field_names_are_rejected() {
        for key in ["state", "cpus", "rxbytes"] {
            let err = with(|l| {
                l.tags.insert(
                    key.into(),
                    Sourced::new("x".into(), format!("c.toml: tags.{key}")),
                );
            })
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(&format!("tags.{key}")) && err.contains("field"),
                "{err}"
            );
        }
    }

    #[test]
    fn token_survives_but_never_prints() {
        let c = with(|l| l.set("influx.token", "t0ps3cret", "--flag")).unwrap();
        assert_eq!(c.influx.token.as_ref().unwrap().expose(), "t0ps3cret");
        assert!(!format!("{c:?}").contains("t0ps3cret"));
    }

    fn from_c_toml(text: &str) -> Result<Config, ConfigError> {
        let layer = super::super::load::parse_file(text, std::path::Path::new("c.toml"))?;
        validate(layer, Config::default())
    }

    #[test]
    fn fleet_hosts_are_read_from_the_file_and_their_tokens_never_shown() {
        let c = from_c_toml(
            "[fleet]\nwindow = 20\n\n[[fleet.hosts]]\nname = \"hv-a\"\nurl = \"http://10.0.0.5:9180\"\n\
             token = \"fleet-S3CRET\"\n\n[[fleet.hosts]]\nname = \"hv-b\"\nurl = \"http://hv-b:9180\"\n\
             token_file = \"/etc/vmpulse/hv-b.token\"\n",
        )
        .unwrap();
        let h = &c.fleet.hosts;
        assert_eq!((h[0].name.as_str(), h[1].address()), ("hv-a", "hv-b:9180"));
        assert_eq!(c.fleet.window, Duration::from_secs(20));
        let printed = crate::config::docs::print_config(&c);
        assert!(
            printed.contains("hv-a") && printed.contains("***"),
            "{printed}"
        );
        assert!(!printed.contains("fleet-S3CRET"), "{printed}");
        assert!(!format!("{c:?}").contains("fleet-S3CRET"));
        // What --print-config prints is a config file again.
        let back = from_c_toml(&printed).unwrap();
        assert_eq!(back.fleet.hosts[1].token_file, h[1].token_file);
    }

    #[test]
    fn a_bad_fleet_host_is_refused_naming_the_setting_the_entry_and_line() {
        let err = from_c_toml(
            "[[fleet.hosts]]\nname = \"hv-a\"\nurl = \"http://a:1\"\ntoken = \"t\"\n\
             [[fleet.hosts]]\nname = \"hv-b\"\nurl = \"10.0.0.6:9180\"\ntoken = \"fleet-S3CRET\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("line 6: fleet.hosts: [[fleet.hosts]] entry 1 (name = \"hv-b\"): url '10.0.0.6:9180' is not http://ADDR:PORT"),
            "{err}"
        );
        assert!(
            err.contains("c.toml") && !err.contains("fleet-S3CRET"),
            "{err}"
        );
    }

    #[test]
    fn alert_tables_replace_defaults_per_metric_and_errors_name_the_setting() {
        use crate::config::alerts::{Levels, Selector};
        let c = from_c_toml(
            "[alerts]\nmin_duration = 30\n\n[alerts.cpu_usage_percent]\nwarning = 80\n\n\
             [alerts.memory_usage_percent]\n\n[[alerts.override]]\ntag = \"project=shop\"\n\
             cpu_usage_percent = { warning = 50 }\n",
        )
        .unwrap();
        assert_eq!(c.alerts.min_duration, Duration::from_secs(30));
        let rules = &c.alert_rules;
        assert!(
            rules.levels["memory_usage_percent"].is_off(),
            "an empty table turns it off"
        );
        assert!(
            !rules.levels["cpu_steal_percent"].is_off(),
            "other defaults stay"
        );
        assert!(matches!(
            rules.levels["cpu_usage_percent"],
            Levels::Numeric { thresholds: [None, Some(w), None], .. } if w == 80.0
        ));
        assert!(
            matches!(&rules.overrides[0].selector, Selector::Tag { key, .. } if key == "project")
        );

        let err = from_c_toml("[alerts.cpu_steal_percent]\ncareful = 30\nwarning = 20\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "c.toml, line 1: alerts.cpu_steal_percent.warning: 20 against careful = 30"
            ),
            "{err}"
        );
        let err = from_c_toml("[alerts.nope]\nwarning = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("alerts.nope") && err.contains("metric table"),
            "{err}"
        );
        let err = from_c_toml("[[alerts.override]]\nvms = \"db-[\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("alerts.override[0].vms"), "{err}");
        let err = from_c_toml("[alerts]\nmin_duraton = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown key 'alerts.min_duraton'"), "{err}");
    }

    #[test]
    fn the_example_file_reads_back_as_the_defaults() {
        let text = include_str!("../../config.example.toml");
        let c = from_c_toml(text).unwrap();
        assert_eq!(c.alert_rules, Config::default().alert_rules);
    }
}
