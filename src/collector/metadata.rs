//! Tags from each domain's `<metadata>` (`collector.metadata_tags`), cached per domain.
//!
//! One `virDomainGetMetadata` call per configured namespace reads them; the
//! result is reused for `collector.metadata_refresh` and read again at once when
//! the domain's runtime ID changes (a start or restart, when Nova rewrites it on a
//! resize). So a cycle makes no metadata call for a domain whose tags are fresh.
//! The first reading of each domain is back-dated by a share of the interval
//! taken from its UUID, so that the refreshes of many domains found together
//! spread over the interval instead of all falling into one cycle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::metadata::{self, MetadataTag};

/// The configured tags and the namespaces they read.
#[derive(Debug, Clone, Default)]
pub struct MetadataSpec {
    pub tags: Arc<Vec<MetadataTag>>,
    namespaces: Vec<String>,
    pub refresh: Duration,
}

impl MetadataSpec {
    pub fn new(tags: Vec<MetadataTag>, refresh: Duration) -> Self {
        Self {
            namespaces: metadata::namespaces(&tags),
            tags: Arc::new(tags),
            refresh,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }
}

/// The tags found in one domain's metadata, in the order of `tags`; `xml_of`
/// gives each namespace's element (`None`: the domain has none). Pure.
/// Unparsable XML counts as missing: a value is left out, never invented.
pub fn tags_from<'a>(
    tags: &[MetadataTag],
    xml_of: impl Fn(&str) -> Option<&'a str>,
) -> Vec<(String, String)> {
    let mut docs: HashMap<&str, Option<roxmltree::Document<'a>>> = HashMap::new();
    let mut out = Vec::new();
    for t in tags {
        let doc = docs.entry(t.namespace.as_str()).or_insert_with(|| {
            xml_of(&t.namespace).and_then(|x| roxmltree::Document::parse(x).ok())
        });
        if let Some(v) = doc.as_ref().and_then(|d| t.value_in(d.root_element())) {
            out.push((t.name.clone(), v));
        }
    }
    out
}

struct Entry {
    id: Option<u32>,
    /// When the tags count as read (back-dated on the first read, see the header).
    loaded_at: Instant,
    tags: Vec<(String, String)>,
}

/// Metadata tags per domain UUID.
pub struct MetadataCache {
    spec: MetadataSpec,
    entries: HashMap<String, Entry>,
}

impl MetadataCache {
    pub fn new(spec: MetadataSpec) -> Self {
        Self {
            spec,
            entries: HashMap::new(),
        }
    }

    /// Whether `uuid` with runtime ID `id` needs a read at `now`.
    pub fn is_stale(&self, uuid: &str, id: Option<u32>, now: Instant) -> bool {
        !self.spec.is_empty()
            && self.entries.get(uuid).is_none_or(|e| {
                e.id != id || now.saturating_duration_since(e.loaded_at) >= self.spec.refresh
            })
    }

    /// The tags of `uuid`: cached, or read through `read` (one call per namespace:
    /// `Ok(None)` when the domain has no element of that namespace) when stale and
    /// `may_read` (the cycle's deadline has not passed). A failed read keeps what
    /// was cached and is tried again next cycle.
    pub fn get<E>(
        &mut self,
        uuid: &str,
        id: Option<u32>,
        now: Instant,
        may_read: bool,
        mut read: impl FnMut(&str) -> Result<Option<String>, E>,
    ) -> Result<Vec<(String, String)>, E> {
        if self.spec.is_empty() {
            return Ok(Vec::new());
        }
        if may_read && self.is_stale(uuid, id, now) {
            let mut xmls = Vec::with_capacity(self.spec.namespaces.len());
            for ns in &self.spec.namespaces {
                xmls.push((ns.as_str(), read(ns)?));
            }
            let tags = tags_from(&self.spec.tags, |ns| {
                xmls.iter()
                    .find(|(n, _)| *n == ns)
                    .and_then(|(_, x)| x.as_deref())
            });
            let loaded_at = match self.entries.contains_key(uuid) {
                true => now,
                false => now
                    .checked_sub(spread(uuid, self.spec.refresh))
                    .unwrap_or(now),
            };
            self.entries.insert(
                uuid.to_string(),
                Entry {
                    id,
                    loaded_at,
                    tags,
                },
            );
        }
        Ok(self
            .entries
            .get(uuid)
            .map(|e| e.tags.clone())
            .unwrap_or_default())
    }

    /// Keeps only domains for which `keep` says yes (drop vanished domains).
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|uuid, _| keep(uuid));
    }
}

/// A share of `interval` fixed by the UUID (FNV-1a of its text): where in the
/// interval this domain's refreshes fall.
fn spread(uuid: &str, interval: Duration) -> Duration {
    let h = uuid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    interval.mul_f64((h % 1000) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::metadata::parse_entry;
    use std::cell::Cell;

    const NOVA: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";
    const XML: &str = r#"<instance><name>shop-web-1</name><flavor name="m1.small"/>
        <owner><project uuid="p1">shop</project></owner></instance>"#;

    fn spec(refresh: u64) -> MetadataSpec {
        MetadataSpec::new(
            vec![
                parse_entry("project", &format!("{NOVA} instance/owner/project")).unwrap(),
                parse_entry("flavor", &format!("{NOVA} instance/flavor/@name")).unwrap(),
                parse_entry("image", &format!("{NOVA} instance/image/@uuid")).unwrap(),
                parse_entry("team", "urn:other team/name").unwrap(),
            ],
            Duration::from_secs(refresh),
        )
    }

    #[test]
    fn tags_in_configured_order_missing_ones_left_out() {
        let s = spec(60);
        let got = tags_from(&s.tags, |ns| (ns == NOVA).then_some(XML));
        assert_eq!(
            got,
            [
                ("project".into(), "shop".into()),
                ("flavor".into(), "m1.small".into())
            ]
        );
        assert!(tags_from(&s.tags, |_| Some("<instance><broken")).is_empty());
    }

    #[test]
    fn reads_once_per_namespace_then_at_refresh_or_restart() {
        let mut c = MetadataCache::new(spec(60));
        let calls = Cell::new(0);
        let read = |ns: &str| -> Result<Option<String>, ()> {
            calls.set(calls.get() + 1);
            Ok((ns == NOVA).then(|| XML.to_string()))
        };
        let t0 = Instant::now() + Duration::from_secs(3600);
        let first = c.get("u1", Some(1), t0, true, read).unwrap();
        assert_eq!(first.len(), 2);
        assert_eq!(calls.get(), 2, "one call per namespace");
        // Back-dated by at most the interval: stale again within 60 s, never sooner than now.
        assert!(!c.is_stale("u1", Some(1), t0));
        assert!(c.is_stale("u1", Some(1), t0 + Duration::from_secs(60)));
        assert!(c.is_stale("u1", Some(2), t0), "a restart reads again");
        assert_eq!(c.get("u1", Some(1), t0, true, read).unwrap(), first);
        assert_eq!(calls.get(), 2, "fresh: no call");
        let later = t0 + Duration::from_secs(61);
        assert!(c.get("u1", Some(1), later, false, read).unwrap() == first);
        assert_eq!(calls.get(), 2, "past the deadline: cached tags, no call");
        c.get("u1", Some(1), later, true, read).unwrap();
        assert_eq!(calls.get(), 4);
        assert!(!c.is_stale("u1", Some(1), later + Duration::from_secs(59)));
    }

    #[test]
    fn a_failed_read_keeps_the_cached_tags_and_vanished_domains_are_dropped() {
        let mut c = MetadataCache::new(spec(60));
        let t0 = Instant::now() + Duration::from_secs(3600);
        let ok =
            |ns: &str| -> Result<Option<String>, &str> { Ok((ns == NOVA).then(|| XML.into())) };
        let tags = c.get("u1", Some(1), t0, true, ok).unwrap();
        let fail = |_: &str| -> Result<Option<String>, &str> { Err("gone") };
        assert_eq!(c.get("u1", Some(2), t0, true, fail), Err("gone"));
        assert_eq!(c.get("u1", Some(2), t0, false, fail), Ok(tags));
        c.retain(|u| u != "u1");
        assert_eq!(c.get("u1", Some(2), t0, false, fail), Ok(vec![]));
    }

    #[test]
    fn no_tags_configured_means_no_calls() {
        let mut c = MetadataCache::new(MetadataSpec::default());
        let read = |_: &str| -> Result<Option<String>, ()> { panic!("no call expected") };
        assert!(c
            .get("u", None, Instant::now(), true, read)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn refreshes_spread_over_the_interval() {
        let i = Duration::from_secs(60);
        let shares: std::collections::BTreeSet<u64> = (0..1000)
            .map(|n| spread(&format!("00000000-0000-4000-8000-{n:012}"), i).as_secs() / 10)
            .collect();
        assert_eq!(
            shares.len(),
            6,
            "every tenth of a minute gets some: {shares:?}"
        );
    }
}
