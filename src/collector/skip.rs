//! What a cycle left out and why. Shared by the source and its per-domain
//! fallback calls (its own module so neither imports the other for it).

/// A domain or device left out of a cycle, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipNote {
    /// e.g. `domain 'web01'` or `disk vdb of 'web01'`.
    pub what: String,
    pub why: String,
}
