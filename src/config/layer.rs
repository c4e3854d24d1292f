//! One partial-config type for file, environment and flags, and the one merge.
