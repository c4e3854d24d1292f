//! Which domains to collect: `collector.domains` (include globs) and
//! `collector.exclude`, matched against VM names before any per-domain call (pure).
//! With no include globs every VM is included; exclusion wins.

use crate::config::glob::Glob;

/// Include and exclude globs together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainFilter {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
}

impl DomainFilter {
    /// From the config's pattern lists (already checked by the config step).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, String> {
        let compile = |v: &[String]| {
            v.iter()
                .map(|p| Glob::new(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            include: compile(include)?,
            exclude: compile(exclude)?,
        })
    }

    /// Whether every VM is collected.
    pub fn is_everything(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn matches(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.matches(name)))
            && !self.exclude.iter().any(|g| g.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_then_exclude_wins() {
        let f = DomainFilter::new(&["web-*".into(), "db-*".into()], &["*-test".into()]).unwrap();
        assert!(f.matches("web-1") && f.matches("db-2"));
        assert!(!f.matches("web-test") && !f.matches("cache-1"));
        let all = DomainFilter::new(&[], &[]).unwrap();
        assert!(all.is_everything() && all.matches("anything"));
        let only_ex = DomainFilter::new(&[], &["tmp*".into()]).unwrap();
        assert!(only_ex.matches("web") && !only_ex.matches("tmp1"));
    }
}
