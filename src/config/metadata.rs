//! `collector.metadata_tags`: tags read from a domain's `<metadata>` (pure).
//!
//! Each entry maps a tag name to `"NAMESPACE-URI path"`. The path is element
//! names separated by `/`, starting at the namespace's root element (what
//! `virDomainGetMetadata` returns for that URI, prefixes stripped), and ends at
//! an element (its text) or at `@attribute`. Nova writes, for example,
//! `project = "http://openstack.org/xmlns/libvirt/nova/1.1 instance/owner/project"`.
//! Parsing and checking happen here, once, at start; the collector only walks
//! the parsed path ([`MetadataTag::value_in`]).

use crate::schema::{FIELD_KEYS, RESERVED_TAGS};

/// Where a path ends: the element's text or one of its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Text,
    Attribute(String),
}

/// One parsed entry of `collector.metadata_tags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTag {
    /// The tag name on every line, column and label.
    pub name: String,
    /// The metadata namespace URI (`virDomainGetMetadata`'s key).
    pub namespace: String,
    /// Element names from the namespace's root element down, at least one.
    pub path: Vec<String>,
    pub target: Target,
}

impl MetadataTag {
    /// The entry as it is written in the file (`"URI path"`).
    pub fn spec(&self) -> String {
        let mut s = format!("{} {}", self.namespace, self.path.join("/"));
        if let Target::Attribute(a) = &self.target {
            s.push_str("/@");
            s.push_str(a);
        }
        s
    }

    /// This tag's value in the root element of its namespace's metadata; `None`
    /// when an element or attribute on the path is missing or the value is
    /// empty (blank text counts as missing: an empty tag is left out anyway).
    pub fn value_in(&self, root: roxmltree::Node) -> Option<String> {
        let (first, rest) = self.path.split_first()?;
        if root.tag_name().name() != first {
            return None;
        }
        let mut node = root;
        for step in rest {
            node = node
                .children()
                .find(|c| c.is_element() && c.tag_name().name() == step)?;
        }
        let value = match &self.target {
            Target::Text => node.text().map(str::trim)?,
            Target::Attribute(a) => node
                .attributes()
                .find(|at| at.name() == a)
                .map(|at| at.value())?,
        };
        Some(value.to_string()).filter(|v| !v.is_empty())
    }
}

/// A tag name is a Prometheus label name too (`[A-Za-z_][A-Za-z0-9_]*`), and
/// none of vmpulse's own tags or field names.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "tag name '{name}' must be letters, digits and _ (not starting with a digit), as a Prometheus label"
        ));
    }
    if RESERVED_TAGS.contains(&name) {
        return Err(format!(
            "tag name '{name}' is reserved for vmpulse's own tags"
        ));
    }
    if FIELD_KEYS.contains(&name) {
        return Err(format!(
            "tag name '{name}' is also a field name; InfluxDB 3 refuses every line where a column is both tag and field: rename the tag"
        ));
    }
    Ok(())
}

/// Parses one entry: `name = "NAMESPACE-URI path"`.
pub fn parse_entry(name: &str, spec: &str) -> Result<MetadataTag, String> {
    check_name(name)?;
    let example = "e.g. \"http://openstack.org/xmlns/libvirt/nova/1.1 instance/owner/project\"";
    let bad = |why: &str| Err(format!("{name} = '{spec}': {why}; {example}"));
    let mut words = spec.split_whitespace();
    let (Some(namespace), Some(path), None) = (words.next(), words.next(), words.next()) else {
        return bad("expected a namespace URI, one space and a path");
    };
    if !namespace.contains(':') {
        return bad("the namespace must be a URI");
    }
    let mut steps: Vec<&str> = path.split('/').collect();
    let target = match steps.last().and_then(|s| s.strip_prefix('@')) {
        Some(attr) => {
            if !is_xml_name(attr) {
                return bad("the attribute after @ must be a name");
            }
            steps.pop();
            Target::Attribute(attr.to_string())
        }
        None => Target::Text,
    };
    if steps.is_empty() {
        return bad("the path needs at least the root element before @attribute");
    }
    if let Some(s) = steps.iter().find(|s| !is_xml_name(s)) {
        return bad(&format!(
            "'{s}' is not an element name (elements are separated by single /, @ only at the end)"
        ));
    }
    Ok(MetadataTag {
        name: name.to_string(),
        namespace: namespace.to_string(),
        path: steps.into_iter().map(str::to_string).collect(),
        target,
    })
}

/// An XML local name, loosely: not empty, no prefix, none of the path's own
/// characters. (A name that cannot occur simply never matches.)
fn is_xml_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        && !s.contains(['/', '@', ':', '[', ']', '*', '"', '\''])
        && !s.contains(char::is_whitespace)
}

/// The namespaces the entries read, each once, in first-use order.
pub fn namespaces(tags: &[MetadataTag]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        if !out.contains(&t.namespace) {
            out.push(t.namespace.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOVA: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";

    #[test]
    fn parses_element_and_attribute_paths() {
        let t = parse_entry("project", &format!("{NOVA} instance/owner/project")).unwrap();
        assert_eq!(t.namespace, NOVA);
        assert_eq!(t.path, ["instance", "owner", "project"]);
        assert_eq!(t.target, Target::Text);
        let f = parse_entry("flavor", &format!("  {NOVA}   instance/flavor/@name ")).unwrap();
        assert_eq!(f.path, ["instance", "flavor"]);
        assert_eq!(f.target, Target::Attribute("name".into()));
        assert_eq!(f.spec(), format!("{NOVA} instance/flavor/@name"));
        let root = parse_entry("r", "urn:x:y @id").unwrap_err();
        assert!(root.contains("root element"), "{root}");
        let on_root = parse_entry("r", "urn:x:y instance/@id").unwrap();
        assert_eq!(on_root.path, ["instance"]);
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        for (spec, why) in [
            ("", "namespace URI, one space"),
            (NOVA, "namespace URI, one space"),
            ("nova instance/name", "must be a URI"),
            ("urn:a instance//name", "not an element name"),
            ("urn:a instance/name/", "not an element name"),
            ("urn:a /instance", "not an element name"),
            ("urn:a instance/@name/x", "not an element name"),
            ("urn:a instance/@", "attribute after @"),
            ("urn:a nova:instance/name", "not an element name"),
            ("urn:a instance name", "namespace URI, one space"),
        ] {
            let e = parse_entry("t", spec).unwrap_err();
            assert!(e.contains(why) && e.contains("t = "), "{spec}: {e}");
        }
    }

    #[test]
    fn names_are_label_names_and_not_taken() {
        for ok in ["project", "_x", "flavor_2"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "2x", "pro-ject", "a b", "ä"] {
            assert!(check_name(bad).unwrap_err().contains("letters"), "{bad}");
        }
        assert!(check_name("uuid").unwrap_err().contains("reserved"));
        assert!(check_name("state").unwrap_err().contains("field name"));
    }

    fn value(spec: &str, xml: &str) -> Option<String> {
        let doc = roxmltree::Document::parse(xml).unwrap();
        parse_entry("t", spec).unwrap().value_in(doc.root_element())
    }

    #[test]
    fn walks_the_path_by_local_name() {
        let xml = r#"<instance><name> shop-web-1 </name><flavor name="m1.small"/>
            <owner><user>u</user><project uuid="p1">shop</project></owner></instance>"#;
        for (spec, want) in [
            ("urn:a instance/name", "shop-web-1"),
            ("urn:a instance/flavor/@name", "m1.small"),
            ("urn:a instance/owner/project", "shop"),
            ("urn:a instance/owner/project/@uuid", "p1"),
        ] {
            assert_eq!(value(spec, xml).as_deref(), Some(want), "{spec}");
        }
        // Missing element, attribute, wrong root, empty text: left out.
        assert_eq!(value("urn:a instance/image", xml), None);
        assert_eq!(value("urn:a instance/flavor/@vcpus", xml), None);
        assert_eq!(value("urn:a other/name", xml), None);
        assert_eq!(value("urn:a instance/flavor", xml), None);
        let prefixed = r#"<n:instance xmlns:n="urn:a"><n:name>x</n:name></n:instance>"#;
        assert_eq!(value("urn:a instance/name", prefixed).as_deref(), Some("x"));
    }

    #[test]
    fn namespaces_are_listed_once() {
        let tags = [
            parse_entry("a", "urn:a x/y").unwrap(),
            parse_entry("b", "urn:b x/y").unwrap(),
            parse_entry("c", "urn:a x/z").unwrap(),
        ];
        assert_eq!(namespaces(&tags), ["urn:a", "urn:b"]);
    }
}
