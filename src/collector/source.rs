//! The libvirt source: one connection, one blocking `sample` per cycle.
//! Uses the bulk call where libvirt offers the groups, per-domain calls otherwise.

use std::time::{Duration, Instant};

use crate::model::RawDomain;

/// A domain or device left out of a cycle, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipNote {
    /// e.g. `domain 'web01'` or `disk vdb of 'web01'`.
    pub what: String,
    pub why: String,
}

/// One cycle's raw readings.
#[derive(Debug, Clone)]
pub struct CycleSample {
    /// Active and inactive domains; inactive ones carry identity and state only.
    pub domains: Vec<RawDomain>,
    pub skipped: Vec<SkipNote>,
    /// Whether `virConnectGetAllDomainStats` supplied the groups.
    pub used_bulk: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot connect to libvirt at '{uri}': {message} (check --connect / LIBVIRT_URI and that libvirtd is running)")]
    Connect { uri: String, message: String },
    #[error("libvirt at '{uri}' failed to list domains: {message}")]
    List { uri: String, message: String },
}

/// Blocking: call from a blocking thread, never from the async runtime.
pub struct LibvirtSource {
    uri: String,
}

impl LibvirtSource {
    pub fn open(uri: &str, device_cache_ttl: Duration) -> Result<Self, SourceError> {
        let _ = device_cache_ttl;
        Err(SourceError::Connect {
            uri: uri.to_string(),
            message: "not implemented".into(),
        })
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Reads every domain once. Stops starting new per-domain calls after
    /// `deadline` and reports the rest as skipped.
    pub fn sample(&mut self, deadline: Instant) -> Result<CycleSample, SourceError> {
        let _ = deadline;
        Ok(CycleSample {
            domains: Vec::new(),
            skipped: Vec::new(),
            used_bulk: false,
        })
    }
}
