//! Reading the config file (TOML) and the environment into [`Layer`]s.

use std::path::{Path, PathBuf};

use super::kind::Raw;
use super::layer::{Layer, Sourced};
use super::settings;
use super::ConfigError;

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

/// 1-based column (in characters) of a byte offset.
fn column_at(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or_default();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    before[line_start..].chars().count() + 1
}

/// A TOML syntax error as line, column and the parser's message. Not the
/// error's `Display`: that quotes the source line, which may hold a token.
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end().replace('\n', " ");
    match e.span() {
        Some(span) => format!(
            "line {}, column {}: {message}",
            line_at(text, span.start),
            column_at(text, span.start)
        ),
        None => message,
    }
}

/// The line where `key` (a path of table keys) is written, for messages.
fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    for (i, part) in path.iter().enumerate() {
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == *part)?;
        let last = i + 1 == path.len();
        if last {
            return Some(line_at(text, k.span().start));
        }
        match v.get_ref() {
            toml::de::DeValue::Table(t) => table = t,
            // `[[x.y]]` entry N (the next part is its index): its first key's line.
            toml::de::DeValue::Array(items) => {
                let n: usize = path.get(i + 1)?.parse().ok()?;
                let toml::de::DeValue::Table(t) = items.get(n)?.get_ref() else {
                    return Some(line_at(text, items.get(n)?.span().start));
                };
                let first = t.iter().map(|(k, _)| k.span().start).min()?;
                return (i + 2 == path.len()).then(|| line_at(text, first));
            }
            _ => return None,
        }
    }
    None
}

/// The index N of `[[x.y]] entry N ...` at the start of a message about an array
/// of tables (`config::fleet_hosts`).
fn entry_index(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("[[")?.split_once("]] entry ")?.1;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    Some(&rest[..end]).filter(|n| !n.is_empty())
}

/// Parses TOML text; `path` is only used to name the file in errors and origins.
/// Unknown keys are errors naming the key and its line.
pub fn parse_file(text: &str, path: &Path) -> Result<Layer, ConfigError> {
    let file_error = |message: String| ConfigError::File {
        path: path.to_path_buf(),
        message,
    };
    let table: toml::Table =
        toml::from_str(text).map_err(|e| file_error(syntax_error(text, &e)))?;
    let known = settings::by_file_key();
    let p = path.display();
    let mut layer = Layer::default();
    // Each value is checked here too, so a wrong type or range names its line.
    let mut scratch = super::Config::default();
    let mut take = |s: &settings::Setting, parts: &[&str], value: &toml::Value| {
        let raw = Raw::Toml(value.clone());
        let key = parts.join(".");
        if let Err(message) = (s.apply)(&mut scratch, &raw) {
            // A table's entry that is at fault names its own line (`tag = ...: why`).
            let entry = value.as_table().and_then(|t| {
                t.keys().find(|k| {
                    message.starts_with(&format!("{k} =")) || message.starts_with(&format!("{k}:"))
                })
            });
            let mut path = parts.to_vec();
            path.extend(entry.map(String::as_str));
            path.extend(value.as_array().and_then(|_| entry_index(&message)));
            let at = line_of(text, &path).map_or(String::new(), |l| format!("line {l}: "));
            return Err(file_error(format!("{at}{key}: {message}")));
        }
        layer.set(s.id, raw, format!("{p}: {key}"));
        Ok(())
    };
    let mut tags = std::collections::BTreeMap::new();
    let mut alerts = super::layer::AlertsLayer::default();
    let unknown = |key: &str, parts: &[&str]| {
        let at = line_of(text, parts).map_or(String::new(), |l| format!("line {l}: "));
        file_error(format!(
            "{at}unknown key '{key}' (see config.example.toml for every key)"
        ))
    };
    for (name, value) in &table {
        match value {
            toml::Value::Table(section) if name == "tags" => {
                for (k, v) in section {
                    let toml::Value::String(v) = v else {
                        let at = line_of(text, &["tags", k]).unwrap_or(0);
                        return Err(file_error(format!("line {at}: tags.{k} must be a string")));
                    };
                    let origin = format!("{p}: tags.{k}");
                    tags.insert(k.clone(), Sourced::new(v.clone(), origin));
                }
            }
            toml::Value::Table(section) if name == "alerts" => {
                for (k, v) in section {
                    // The message names the key (`alerts.x.warning`); the origin the place.
                    let origin = match line_of(text, &[name, k]) {
                        Some(l) => format!("{p}, line {l}"),
                        None => p.to_string(),
                    };
                    if k == "override" {
                        alerts.overrides = Some(Sourced::new(v.clone(), origin));
                    } else if v.is_table() {
                        alerts
                            .levels
                            .insert(k.clone(), Sourced::new(v.clone(), origin));
                    } else {
                        let key = format!("alerts.{k}");
                        let Some(s) = known.get(key.as_str()) else {
                            return Err(unknown(&key, &[name, k]));
                        };
                        take(s, &[name, k], v)?;
                    }
                }
            }
            toml::Value::Table(section) if !known.contains_key(name.as_str()) => {
                for (k, v) in section {
                    let key = format!("{name}.{k}");
                    let Some(s) = known.get(key.as_str()) else {
                        return Err(unknown(&key, &[name, k]));
                    };
                    take(s, &[name, k], v)?;
                }
            }
            _ => {
                let Some(s) = known.get(name.as_str()) else {
                    return Err(unknown(name, &[name]));
                };
                take(s, &[name], value)?;
            }
        }
    }
    layer.tags = tags;
    layer.alerts = alerts;
    Ok(layer)
}

/// A config file that was read, and warnings to log once logging is up.
pub struct FileRead {
    pub path: PathBuf,
    pub layer: Layer,
    pub warnings: Vec<String>,
}

/// Reads one file. A secret (either token, a password in `influx.url`) in a
/// file that others can read earns a warning.
pub fn read_file(path: &Path) -> Result<FileRead, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        message: format!("cannot read it: {e} (check --config / VMPULSE_CONFIG)"),
    })?;
    let layer = parse_file(&text, path)?;
    let warnings = super::secrets::readable_by_others(path, &super::secrets::secrets_in(&layer))
        .map(|w| format!("config file {w}"))
        .into_iter()
        .collect();
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

/// The environment variables each setting lists in `settings.rs` (the old system's
/// names and meanings, and a few more). Values are checked later, by `validate`,
/// so that a bad one is named with its variable.
pub fn env_layer(env: &dyn Fn(&str) -> Option<String>) -> Layer {
    let mut layer = Layer::default();
    for s in settings::SETTINGS.iter() {
        if let Some((name, value)) = s.meta.env.iter().find_map(|n| env(n).map(|v| (*n, v))) {
            layer.set(s.id, value, name);
        }
    }
    layer
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
    fn syntax_errors_give_line_and_column_never_the_line_itself() {
        for text in [
            "[influx]\ntoken = apiv3_SECRETxyz123\n",
            "[influx]\ntoken = \"apiv3_SECRETxyz123\n",
            "[control]\ntoken = 'apiv3_SECRETxyz123\ndb = 1\n",
            "[influx]\nurl = \"http://u:pw@h\" token = \"apiv3_SECRETxyz123\"\n",
        ] {
            let err = parse_file(text, Path::new("/etc/vmpulse/config.toml"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains("SECRET") && !err.contains("pw@"), "{err}");
            assert!(
                err.contains("/etc/vmpulse/config.toml") && err.contains("line 2, column "),
                "{err}"
            );
        }
        let err = parse_file("a = 1\n[x\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2, column 3"), "{err}");
    }

    #[test]
    fn every_secret_in_a_world_readable_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let mode = |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m)).unwrap();
        for (text, what) in [
            ("[influx]\ntoken = \"t-SECRET\"\n", "influx.token"),
            ("[control]\ntoken = \"t-SECRET\"\n", "control.token"),
            (
                "[influx]\nurl = \"http://u:t-SECRET@h:8086\"\n",
                "influx.url",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            mode(0o644);
            let w = read_file(&path).unwrap().warnings;
            assert_eq!(w.len(), 1, "{text}");
            assert!(w[0].contains(what) && w[0].contains("chmod 600"), "{w:?}");
            assert!(!w[0].contains("SECRET"), "{w:?}");
            mode(0o600);
            assert!(read_file(&path).unwrap().warnings.is_empty());
        }
        std::fs::write(&path, "[influx]\ndb = \"x\"\n").unwrap();
        mode(0o644);
        assert!(read_file(&path).unwrap().warnings.is_empty());
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
        let p = l.get("collector.poll_interval").unwrap();
        assert!(p.value == Raw::from(2.5));
        assert_eq!(p.origin, "c.toml: collector.poll_interval");
        assert_eq!(l.tags["dc"].value, "par1");
    }

    #[test]
    fn env_reads_the_old_collectors_variables() {
        let env = env_of(&[
            ("LIBVIRT_URI", "test:///default"),
            ("POLL_INTERVAL", "2.5"),
            ("BATCH_MAX_LINES", "500"),
            ("INFLUX_TOKEN", "s3cret"),
            ("MAX_QUEUE", "100"),
        ]);
        let l = env_layer(&env);
        let raw = |id: &str| l.get(id).unwrap().clone();
        assert!(raw("libvirt.uri") == Sourced::new(Raw::from("test:///default"), "LIBVIRT_URI"));
        assert!(raw("collector.poll_interval").value == Raw::from("2.5"));
        assert!(raw("influx.batch_max_lines").value == Raw::from("500"));
        assert!(raw("influx.max_queue").value == Raw::from("100"));
        assert!(raw("influx.token").value == Raw::from("s3cret"));
    }

    #[test]
    fn non_numeric_env_names_the_variable() {
        let env = env_of(&[("POLL_INTERVAL", "soon")]);
        let l = env_layer(&env);
        let err = super::super::validate::validate(l, super::super::Config::default())
            .unwrap_err()
            .to_string();
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
