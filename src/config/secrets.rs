//! Secrets beyond their values: tokens read from files (`influx.token_file`,
//! `control.token_file`, systemd's `LoadCredential=` through
//! `$CREDENTIALS_DIRECTORY`), and the warning for a file that others can read
//! while it holds a secret. No message here ever contains a secret's text.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::kind::Raw;
use super::layer::Layer;
use super::ConfigError;
use super::{Config, Secret};

/// Largest token file read; a token is a line, anything bigger is the wrong file.
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The settings a config file may hold a secret in, by the layer read from it:
/// both tokens, and `influx.url` when it carries a password.
pub fn secrets_in(layer: &Layer) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = ["influx.token", "control.token"]
        .into_iter()
        .filter(|id| layer.is_set(id))
        .collect();
    let url_has_password = layer.get("influx.url").is_some_and(|u| match &u.value {
        Raw::Text(t) | Raw::Toml(toml::Value::String(t)) => url::Url::parse(t)
            .ok()
            .is_some_and(|u| u.password().is_some()),
        Raw::Toml(_) => false,
    });
    if url_has_password {
        out.push("influx.url (its password)");
    }
    let fleet_token = layer.get("fleet.hosts").is_some_and(|h| match &h.value {
        Raw::Toml(toml::Value::Array(a)) => a.iter().any(|t| t.get("token").is_some()),
        _ => false,
    });
    if fleet_token {
        out.push("[[fleet.hosts]] token");
    }
    out
}

/// A warning when `path`, holding `what`, can be read by users other than its owner.
pub fn readable_by_others(path: &Path, what: &[&str]) -> Option<String> {
    if what.is_empty() {
        return None;
    }
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o044 != 0).then(|| {
        format!(
            "'{}' holds {} and is readable by others (mode {:o}); run: chmod 600 '{}'",
            path.display(),
            what.join(", "),
            mode & 0o777,
            path.display()
        )
    })
}

/// Reads `influx.token_file` and `control.token_file` into the tokens;
/// returns warnings (a token file others can read).
pub fn read_token_files(
    c: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let credentials = env("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty());
    let mut warnings = Vec::new();
    let files = [
        ("influx.token_file", c.influx.token_file.clone()),
        ("control.token_file", c.control.token_file.clone()),
    ];
    for (id, file) in files {
        let Some(file) = file else { continue };
        let path = token_path(id, &file, credentials.as_deref())?;
        let token = read_token(id, &path)?;
        warnings.extend(readable_by_others(&path, &[id]));
        match id {
            "influx.token_file" => c.influx.token = Some(token),
            _ => c.control.token = Some(token),
        }
    }
    for (i, h) in c.fleet.hosts.iter_mut().enumerate() {
        let Some(file) = &h.token_file else { continue };
        let id = format!(
            "[[fleet.hosts]] entry {i} (name = \"{}\") token_file",
            h.name
        );
        let path = token_path(&id, file, credentials.as_deref())?;
        h.token = Some(read_token(&id, &path)?);
        warnings.extend(readable_by_others(&path, &[id.as_str()]));
    }
    Ok(warnings)
}

fn token_error(id: &str, message: String) -> ConfigError {
    ConfigError::Invalid {
        origin: id.to_string(),
        message,
    }
}

/// An absolute path as it is; a relative one inside `$CREDENTIALS_DIRECTORY`.
fn token_path(id: &str, file: &str, credentials: Option<&str>) -> Result<PathBuf, ConfigError> {
    let p = Path::new(file);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    match credentials {
        Some(dir) => Ok(Path::new(dir).join(p)),
        None => Err(token_error(
            id,
            format!(
                "'{file}' is a relative name but CREDENTIALS_DIRECTORY is not set \
                 (systemd sets it with LoadCredential=): give an absolute path"
            ),
        )),
    }
}

/// The file's text without its trailing newline; never quoted in an error.
fn read_token(id: &str, path: &Path) -> Result<Secret, ConfigError> {
    let fail = |why: String| token_error(id, format!("cannot use '{}': {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_TOKEN_FILE_BYTES {
        return Err(fail(format!(
            "larger than {MAX_TOKEN_FILE_BYTES} bytes, not a token"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8 text".into()))?;
    let token = text.trim_end_matches(['\n', '\r']);
    if token.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    if token.contains(['\n', '\r']) {
        return Err(fail("a token is one line; the file has several".into()));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_with(dir: &Path) -> impl Fn(&str) -> Option<String> + '_ {
        move |k| (k == "CREDENTIALS_DIRECTORY").then(|| dir.display().to_string())
    }

    #[test]
    fn token_files_are_read_trimmed_and_relative_names_found_in_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("influx"), "tok-FROM-FILE\n").unwrap();
        let abs = dir.path().join("ctl");
        std::fs::write(&abs, "ctl-FROM-FILE\r\n").unwrap();
        std::fs::set_permissions(&abs, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut c = Config::default();
        c.influx.token_file = Some("influx".into());
        c.control.token_file = Some(abs.display().to_string());
        let warnings = read_token_files(&mut c, &env_with(dir.path())).unwrap();
        assert_eq!(c.influx.token, Some(Secret::new("tok-FROM-FILE")));
        assert_eq!(c.control.token, Some(Secret::new("ctl-FROM-FILE")));
        // The credential written with the umask's 0644 is readable by others.
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("influx.token_file"), "{warnings:?}");
    }

    #[test]
    fn token_file_errors_name_the_setting_and_path_never_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_with(dir.path());
        let err = |file: &str, content: Option<&str>| {
            if let Some(text) = content {
                std::fs::write(dir.path().join(file), text).unwrap();
            }
            let mut c = Config::default();
            c.control.token_file = Some(file.into());
            read_token_files(&mut c, &env).unwrap_err().to_string()
        };
        let missing = err("absent", None);
        assert!(
            missing.starts_with("control.token_file:") && missing.contains("absent"),
            "{missing}"
        );
        let two = err("two", Some("SECRET-one\nSECRET-two\n"));
        assert!(two.contains("one line") && !two.contains("SECRET"), "{two}");
        assert!(err("empty", Some("\n")).contains("empty"));
        let mut c = Config::default();
        c.influx.token_file = Some("relative".into());
        let e = read_token_files(&mut c, &|_| None).unwrap_err().to_string();
        assert!(
            e.starts_with("influx.token_file:") && e.contains("CREDENTIALS_DIRECTORY"),
            "{e}"
        );
    }

    #[test]
    fn fleet_host_token_files_are_read_and_named_by_entry() {
        use crate::config::fleet_hosts::FleetHost;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hv-a"), "fleet-S3CRET\n").unwrap();
        let host = |file: &str| FleetHost {
            name: "hv-a".into(),
            url: "http://h:1".into(),
            token: None,
            token_file: Some(file.into()),
        };
        let mut c = Config::default();
        c.fleet.hosts = vec![host("hv-a")];
        let warnings = read_token_files(&mut c, &env_with(dir.path())).unwrap();
        assert_eq!(c.fleet.hosts[0].token, Some(Secret::new("fleet-S3CRET")));
        assert!(
            warnings[0].contains("[[fleet.hosts]] entry 0"),
            "{warnings:?}"
        );
        c.fleet.hosts = vec![host("absent")];
        let e = read_token_files(&mut c, &env_with(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("entry 0 (name = \"hv-a\") token_file") && e.contains("absent"),
            "{e}"
        );
        let mut l = Layer::default();
        let t: toml::Table =
            toml::from_str("[[hosts]]\nname = \"a\"\nurl = \"http://h:1\"\ntoken = \"x\"\n")
                .unwrap();
        l.set("fleet.hosts", Raw::Toml(t["hosts"].clone()), "f");
        assert_eq!(secrets_in(&l), ["[[fleet.hosts]] token"]);
    }

    #[test]
    fn secrets_in_a_layer() {
        let mut l = Layer::default();
        assert!(secrets_in(&l).is_empty());
        l.set("influx.url", "http://u@h:8086", "f");
        assert!(secrets_in(&l).is_empty(), "a user name is no secret");
        l.set("influx.url", "http://u:pw@h:8086", "f");
        l.set("control.token", "t", "f");
        assert_eq!(
            secrets_in(&l),
            ["control.token", "influx.url (its password)"]
        );
    }
}
