//! One polling cycle: runs the blocking libvirt source on a blocking thread,
//! bounded by `LIBVIRT_TIMEOUT`, and reconnects after failures.
//!
//! libvirt calls cannot be cancelled, so a cycle that times out leaves its
//! thread running with its connection locked until that call returns. Later
//! cycles use another connection (at most [`MAX_CONNECTIONS`], so hung calls
//! cannot pile up threads); with every connection held, a cycle reports busy.

use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
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

/// Connections (each with its own blocking thread) the poller may have at
/// once: one in use, plus fresh ones while earlier calls hang (a QEMU monitor
/// that never answers keeps its call, and its libvirtd worker, busy).
pub const MAX_CONNECTIONS: usize = 3;

type Slot = Arc<Mutex<Option<LibvirtSource>>>;

pub struct Poller {
    uri: String,
    device_cache_ttl: Duration,
    timeout: Duration,
    filter: DomainFilter,
    slots: Vec<Slot>,
}

impl Poller {
    pub fn new(uri: &str, device_cache_ttl: Duration, timeout: Duration) -> Self {
        Self {
            uri: uri.to_string(),
            device_cache_ttl,
            timeout,
            filter: DomainFilter::default(),
            slots: (0..MAX_CONNECTIONS)
                .map(|_| Arc::new(Mutex::new(None)))
                .collect(),
        }
    }

    /// Collect only the domains `filter` matches.
    pub fn with_filter(self, filter: DomainFilter) -> Self {
        Self { filter, ..self }
    }

    /// Opens a connection if needed and samples every domain once. A call
    /// that times out keeps its connection; the cycle is retried once at
    /// once on another one, where the bulk call's NOWAIT flag skips the
    /// monitor the hung call holds, so the other VMs still get their sample.
    pub async fn cycle(&self) -> Result<CycleSample, CycleError> {
        match self.attempt().await {
            Err(first @ CycleError::Timeout { .. }) => {
                tracing::warn!("{first}; sampling again on another connection");
                match self.attempt().await {
                    Ok(sample) => Ok(sample),
                    Err(CycleError::Busy { .. }) => Err(first),
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }

    /// One sample on the first free connection (an open one if any is free).
    async fn attempt(&self) -> Result<CycleSample, CycleError> {
        let slots = self.slots.clone();
        let (uri, ttl, timeout) = (self.uri.clone(), self.device_cache_ttl, self.timeout);
        let filter = self.filter.clone();
        let task = tokio::task::spawn_blocking(move || -> Result<CycleSample, CycleError> {
            let Some(mut guard) = free_slot(&slots) else {
                return Err(CycleError::Busy { uri });
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

/// The first slot no hung call holds, preferring one with an open
/// connection; `None` when every slot is busy.
fn free_slot(slots: &[Slot]) -> Option<MutexGuard<'_, Option<LibvirtSource>>> {
    let mut empty = None;
    for slot in slots {
        let guard = match slot.try_lock() {
            Ok(g) => g,
            Err(TryLockError::WouldBlock) => continue,
            // A panic inside libvirt parsing poisoned it: start over with a new connection.
            Err(TryLockError::Poisoned(p)) => {
                let mut g = p.into_inner();
                *g = None;
                g
            }
        };
        if guard.is_some() {
            return Some(guard);
        }
        empty.get_or_insert(guard);
    }
    empty
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_passed_over_and_all_held_means_busy() {
        let slots: Vec<Slot> = (0..2).map(|_| Arc::new(Mutex::new(None))).collect();
        let held = slots[0].lock().expect("fresh lock");
        assert!(free_slot(&slots).is_some(), "second slot is free");
        let held2 = slots[1].lock().expect("fresh lock");
        assert!(free_slot(&slots).is_none());
        drop((held, held2));
    }

    #[tokio::test]
    async fn unreachable_uri_fails_fast_without_retry() {
        let p = Poller::new(
            "test:///nonexistent/vmpulse-no-such-file.xml",
            Duration::from_secs(60),
            Duration::from_secs(5),
        );
        let t0 = Instant::now();
        assert!(matches!(p.cycle().await, Err(CycleError::Source(_))));
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}
