//! One polling cycle: runs the blocking libvirt source on a blocking thread,
//! bounded by `LIBVIRT_TIMEOUT`, and reconnects after failures.
//!
//! libvirt calls cannot be cancelled, so a cycle that times out leaves its
//! thread running; the source stays locked until that call returns and the
//! cycles in between are reported as failed instead of piling up threads.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::filter::DomainFilter;
use super::source::{CycleSample, LibvirtSource, SourceError};

/// Why a cycle produced no sample.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CycleError {
    #[error("{0}")]
    Source(String),
    #[error("libvirt at '{uri}' did not answer within {secs:.1} s (LIBVIRT_TIMEOUT); the call is still pending")]
    Timeout { uri: String, secs: f64 },
    #[error("libvirt at '{uri}' is still busy with an earlier call that timed out")]
    Busy { uri: String },
    #[error("internal error in the sampling thread: {0}")]
    Internal(String),
}

impl CycleError {
    /// Whether the connection should be considered down.
    pub fn is_connection_failure(&self) -> bool {
        !matches!(self, Self::Internal(_))
    }
}

pub struct Poller {
    uri: String,
    device_cache_ttl: Duration,
    timeout: Duration,
    filter: DomainFilter,
    source: Arc<Mutex<Option<LibvirtSource>>>,
}

impl Poller {
    pub fn new(uri: &str, device_cache_ttl: Duration, timeout: Duration) -> Self {
        Self {
            uri: uri.to_string(),
            device_cache_ttl,
            timeout,
            filter: DomainFilter::default(),
            source: Arc::new(Mutex::new(None)),
        }
    }

    /// Collect only the domains `filter` matches.
    pub fn with_filter(self, filter: DomainFilter) -> Self {
        Self { filter, ..self }
    }

    /// Opens the connection if needed and samples every domain once.
    pub async fn cycle(&self) -> Result<CycleSample, CycleError> {
        let source = Arc::clone(&self.source);
        let (uri, ttl, timeout) = (self.uri.clone(), self.device_cache_ttl, self.timeout);
        let filter = self.filter.clone();
        let busy_uri = uri.clone();
        let task = tokio::task::spawn_blocking(move || -> Result<CycleSample, CycleError> {
            let mut guard = match source.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::WouldBlock) => {
                    return Err(CycleError::Busy { uri: busy_uri })
                }
                // A panic inside libvirt parsing poisoned the lock: start over with a new connection.
                Err(std::sync::TryLockError::Poisoned(p)) => {
                    let mut g = p.into_inner();
                    *g = None;
                    g
                }
            };
            let deadline = Instant::now() + timeout;
            if guard.is_none() {
                *guard = Some(
                    LibvirtSource::open(&uri, ttl)
                        .map_err(|e| CycleError::Source(e.to_string()))?
                        .with_filter(filter),
                );
            }
            let Some(src) = guard.as_mut() else {
                return Err(CycleError::Internal("source vanished".into()));
            };
            match src.sample(deadline) {
                Ok(s) => Ok(s),
                Err(e) => {
                    // Listing failed: the connection is suspect, reopen next cycle.
                    if matches!(e, SourceError::List { .. } | SourceError::Connect { .. }) {
                        *guard = None;
                    }
                    Err(CycleError::Source(e.to_string()))
                }
            }
        });
        // A little slack so the source's own deadline handling can answer first.
        match tokio::time::timeout(self.timeout + Duration::from_millis(500), task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(CycleError::Internal(join.to_string())),
            Err(_) => Err(CycleError::Timeout {
                uri: self.uri.clone(),
                secs: self.timeout.as_secs_f64(),
            }),
        }
    }
}
