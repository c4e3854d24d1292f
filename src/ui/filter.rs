//! The list filter typed after `/` (pure): which VMs it keeps.
//!
//! Words separated by spaces, all of which must match (case-insensitive). A
//! word `tag=value` matches a VM whose metadata tag `tag` (`collector.metadata_tags`)
//! contains `value`, e.g. `/project=shop`; any other word matches a VM whose
//! name or one of whose tag values contains it.

use crate::model::VmSnapshot;

/// Whether `vm` passes `filter` (an empty filter passes every VM).
pub fn matches(vm: &VmSnapshot, filter: &str) -> bool {
    filter.split_whitespace().all(|word| word_matches(vm, word))
}

fn contains(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn word_matches(vm: &VmSnapshot, word: &str) -> bool {
    let tags = &vm.raw.tags;
    match word.split_once('=') {
        Some((key, value)) if !key.is_empty() => tags
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case(key) && contains(v, value)),
        _ => contains(vm.name(), word) || tags.iter().any(|(_, v)| contains(v, word)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{raw, vm};

    fn tagged(name: &str, tags: &[(&str, &str)]) -> VmSnapshot {
        let mut v = vm(raw(name, "u"));
        v.raw.tags = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v
    }

    #[test]
    fn tag_terms_names_and_all_words() {
        let shop = tagged("web-1", &[("project", "Shop"), ("flavor", "m1.small")]);
        let bare = tagged("db-1", &[]);
        assert!(matches(&shop, "") && matches(&bare, "  "));
        assert!(matches(&shop, "project=shop"));
        assert!(matches(&shop, "PROJECT=sho"));
        assert!(!matches(&shop, "project=blog"));
        assert!(!matches(&bare, "project=shop"), "no tag, no match");
        assert!(!matches(&shop, "owner=shop"));
        assert!(matches(&shop, "web"));
        assert!(matches(&shop, "small"), "plain words find tag values too");
        assert!(matches(&shop, "web project=shop flavor=m1"));
        assert!(!matches(&shop, "web project=blog"));
        assert!(matches(&bare, "db-1") && !matches(&bare, "web"));
        // `=value` alone is a plain word.
        assert!(!matches(&shop, "=shop"));
    }
}
