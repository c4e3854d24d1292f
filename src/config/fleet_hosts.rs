//! `[[fleet.hosts]]`: the control APIs `vmpulse fleet` may attach to live, one
//! table per host: `name` (the host tag it writes with), `url` (`http://ADDR:PORT`
//! of its `control.listen`) and `token` or `token_file` (its `control.token`).
//! Parsed and checked here, once; the token is a [`Secret`] (never printed: `***`).

use super::Secret;

/// One entry of `[[fleet.hosts]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetHost {
    /// The `host` tag of its points: the fleet row Enter attaches for.
    pub name: String,
    /// `http://ADDR:PORT`, as written (without a trailing `/`).
    pub url: String,
    /// The token, given or read from `token_file` (`secrets::read_token_files`).
    pub token: Option<Secret>,
    /// Read into `token` when the config is resolved.
    pub token_file: Option<String>,
}

impl FleetHost {
    /// `ADDR:PORT` of the url (checked at parse time).
    pub fn address(&self) -> &str {
        authority(&self.url).unwrap_or(&self.url)
    }
}

/// `ADDR:PORT` of `http://ADDR:PORT[/]`, when the url is one.
fn authority(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    let ok =
        !host.is_empty() && !rest.contains(['/', '@', '?', '#']) && port.parse::<u16>().is_ok();
    ok.then_some(rest)
}

/// The entry `i` as messages name it: `fleet.hosts[1] (hv-b)`.
fn entry_name(i: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("[[fleet.hosts]] entry {i} (name = \"{n}\")"),
        None => format!("[[fleet.hosts]] entry {i}"),
    }
}

fn text(t: &toml::Table, key: &str, at: &str) -> Result<Option<String>, String> {
    match t.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        // The value is not quoted: it may be a token.
        Some(v) => Err(format!(
            "{at}: {key} must be a string, found a {}",
            v.type_str()
        )),
    }
}

/// One table of the array.
fn parse_entry(i: usize, v: &toml::Value) -> Result<FleetHost, String> {
    let Some(t) = v.as_table() else {
        return Err(format!(
            "{}: expected a table, found a {}",
            entry_name(i, None),
            v.type_str()
        ));
    };
    let name = text(t, "name", &entry_name(i, None))?;
    let at = entry_name(i, name.as_deref());
    if let Some(k) = t
        .keys()
        .find(|k| !["name", "url", "token", "token_file"].contains(&k.as_str()))
    {
        return Err(format!(
            "{at}: unknown key '{k}' (name, url, token or token_file)"
        ));
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("{at}: name (the host tag of the host) is missing"))?;
    let url = text(t, "url", &at)?
        .ok_or_else(|| format!("{at}: url (http://ADDR:PORT of its control.listen) is missing"))?;
    if authority(&url).is_none() {
        return Err(format!(
            "{at}: url '{url}' is not http://ADDR:PORT (its control.listen, e.g. http://10.0.0.5:9180; the control API speaks plain HTTP)"
        ));
    }
    let token = text(t, "token", &at)?
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    let token_file = text(t, "token_file", &at)?.filter(|s| !s.is_empty());
    match (&token, &token_file) {
        (Some(_), Some(_)) => Err(format!("{at}: token and token_file are both set: keep one")),
        (None, None) => Err(format!(
            "{at}: needs token or token_file (the control.token of that host's service)"
        )),
        _ => Ok(FleetHost {
            name,
            url: url.trim_end_matches('/').to_string(),
            token,
            token_file,
        }),
    }
}

/// The whole `[[fleet.hosts]]` array; a host named twice is refused.
pub fn parse(v: &toml::Value) -> Result<Vec<FleetHost>, String> {
    let Some(items) = v.as_array() else {
        return Err(format!(
            "expected [[fleet.hosts]] tables (name, url, token or token_file), found a {}",
            v.type_str()
        ));
    };
    let hosts: Vec<FleetHost> = items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_entry(i, v))
        .collect::<Result<_, _>>()?;
    for (i, h) in hosts.iter().enumerate() {
        if hosts[..i].iter().any(|o| o.name == h.name) {
            return Err(format!(
                "{}: the host is named twice",
                entry_name(i, Some(&h.name))
            ));
        }
    }
    Ok(hosts)
}

/// The array for `--print-config` and `/config`: tokens as `***`.
pub fn render(hosts: &[FleetHost]) -> Option<toml::Value> {
    if hosts.is_empty() {
        return None;
    }
    let tables = hosts.iter().map(|h| {
        let mut t = toml::Table::new();
        t.insert("name".into(), h.name.clone().into());
        t.insert("url".into(), h.url.clone().into());
        match &h.token_file {
            Some(f) => t.insert("token_file".into(), f.clone().into()),
            None => t.insert("token".into(), "***".into()),
        };
        toml::Value::Table(t)
    });
    Some(toml::Value::Array(tables.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str) -> Result<Vec<FleetHost>, String> {
        let t: toml::Table = toml::from_str(text).unwrap();
        parse(&t["fleet"]["hosts"])
    }

    #[test]
    fn entries_are_read_with_token_or_token_file() {
        let h = hosts(
            "[[fleet.hosts]]\nname = \"hv-a\"\nurl = \"http://10.0.0.5:9180/\"\ntoken = \"S3CRET-a\"\n\
             [[fleet.hosts]]\nname = \"hv-b\"\nurl = \"http://hv-b.example:9180\"\ntoken_file = \"/etc/vmpulse/hv-b\"\n",
        )
        .unwrap();
        assert_eq!(h[0].url, "http://10.0.0.5:9180");
        assert_eq!(h[0].address(), "10.0.0.5:9180");
        assert_eq!(h[0].token, Some(Secret::new("S3CRET-a")));
        assert_eq!(h[1].address(), "hv-b.example:9180");
        assert_eq!(h[1].token_file.as_deref(), Some("/etc/vmpulse/hv-b"));
        assert!(!format!("{h:?}").contains("S3CRET"), "{h:?}");
        let shown = render(&h).unwrap().to_string();
        assert!(
            shown.contains("***") && !shown.contains("S3CRET"),
            "{shown}"
        );
        assert!(shown.contains("/etc/vmpulse/hv-b"), "{shown}");
    }

    #[test]
    fn bad_entries_are_named_and_tokens_never_quoted() {
        let cases = [
            (
                "name = \"hv-a\"\nurl = \"http://h:1\"\n",
                "entry 0 (name = \"hv-a\"): needs token",
            ),
            (
                "url = \"http://h:1\"\ntoken = \"S3CRET\"\n",
                "entry 0: name",
            ),
            (
                "name = \"hv-a\"\ntoken = \"S3CRET\"\n",
                "url (http://ADDR:PORT",
            ),
            (
                "name = \"hv-a\"\nurl = \"https://h:1\"\ntoken = \"S3CRET\"\n",
                "is not http://ADDR:PORT",
            ),
            (
                "name = \"hv-a\"\nurl = \"http://h\"\ntoken = \"S3CRET\"\n",
                "is not http://ADDR:PORT",
            ),
            (
                "name = \"hv-a\"\nurl = \"http://h:1\"\ntoken = 12345\n",
                "token must be a string",
            ),
            (
                "name = \"hv-a\"\nurl = \"http://h:1\"\ntoken = \"S3CRET\"\ntoken_file = \"/f\"\n",
                "both set",
            ),
            (
                "name = \"hv-a\"\nurl = \"http://h:1\"\ntoken = \"S3CRET\"\nport = 1\n",
                "unknown key 'port'",
            ),
        ];
        for (entry, want) in cases {
            let err = hosts(&format!("[[fleet.hosts]]\n{entry}")).unwrap_err();
            assert!(err.contains(want), "{entry}: {err}");
            assert!(!err.contains("S3CRET") && !err.contains("12345"), "{err}");
        }
        let twice = "[[fleet.hosts]]\nname = \"a\"\nurl = \"http://h:1\"\ntoken = \"t\"\n";
        let err = hosts(&twice.repeat(2)).unwrap_err();
        assert!(
            err.contains("entry 1 (name = \"a\"): the host is named twice"),
            "{err}"
        );
    }
}
