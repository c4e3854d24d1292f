//! Sampling libvirt and deriving honest metrics from consecutive samples.

pub mod bulk;
pub mod derive;
pub mod devices;
pub mod fallback;
pub mod host;
pub mod poll;
pub mod skip;
pub mod source;
