//! The one validation step over a merged config.
