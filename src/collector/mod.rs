//! Sampling libvirt and deriving honest metrics from consecutive samples.

pub mod access;
pub mod bulk;
pub mod derive;
pub mod devices;
pub mod fallback;
pub mod filter;
pub mod host;
pub mod jobs;
pub mod metadata;
pub mod poll;
pub mod schedule;
pub mod skip;
pub mod source;
