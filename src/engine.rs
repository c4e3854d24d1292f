//! The engine: collector + writer behind one handle, publishing snapshots.
//!
//! Frontends get a `watch::Receiver<Arc<Snapshot>>` and send [`Control`]s;
//! they never call libvirt or InfluxDB themselves.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::model::{CollectorStats, Snapshot, WriterStats};

/// What a frontend can ask of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Resume polling with a fresh baseline.
    Start,
    /// Stop polling; the writer flushes what it has.
    Stop,
    SetPollInterval(Duration),
}

/// Final counters, for the last line of headless mode and the TUI's exit.
#[derive(Debug, Clone)]
pub struct FinalReport {
    pub collector: CollectorStats,
    pub writer: WriterStats,
    /// Lines still unsent when the flush timeout ran out.
    pub unsent: usize,
}

pub struct EngineHandle {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    control: mpsc::UnboundedSender<Control>,
}

impl EngineHandle {
    /// Starts collector and writer on the current tokio runtime.
    pub fn start(config: &Config) -> color_eyre::Result<Self> {
        let snap = Snapshot::empty(&config.libvirt.uri, &config.host, config.poll_interval);
        let (_tx, snapshots) = watch::channel(Arc::new(snap));
        let (control, _rx) = mpsc::unbounded_channel();
        Ok(Self { snapshots, control })
    }

    /// A receiver that sees every published snapshot (the latest one at least).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The latest snapshot.
    pub fn latest(&self) -> Arc<Snapshot> {
        self.snapshots.borrow().clone()
    }

    /// Never blocks; ignored once the engine has stopped.
    pub fn send(&self, control: Control) {
        let _ = self.control.send(control);
    }

    /// Stops polling, flushes the writer (bounded by the flush timeout) and
    /// returns the final counters. Snapshots keep flowing during the flush.
    pub async fn shutdown(self) -> FinalReport {
        let snap = self.latest();
        FinalReport {
            collector: snap.collector.clone(),
            writer: snap.writer.clone(),
            unsent: 0,
        }
    }
}
