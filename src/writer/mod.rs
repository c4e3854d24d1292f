//! The writer: lines leave the process here, and every one is accounted for.
//!
//! `handle` is the [`WriterHandle`] the engine holds (start, enqueue, flush,
//! shutdown, stats); `queue` the memory queue and its counters; `task` the one task
//! that batches, retries, spools and replays; `pace` how many requests and lines
//! it sends at once, raised while acknowledgements are slow; `sink` where batches go (InfluxDB over
//! HTTP, `--output FILE|-`); `retry` classifies a server's answer; `supervise` decides
//! how a writer replaced by a reload hands over to the next one.

mod handle;
mod pace;
pub(crate) mod queue;
pub mod retry;
pub mod sink;
pub mod supervise;
pub(crate) mod task;

pub use handle::{SpoolMode, WriterHandle};

use crate::spool::SpoolError;

/// Hint shown while the writer is off.
pub const OFF_HINT: &str = "set INFLUX_URL or --influx-url (or --output FILE|-) to write metrics";

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot open output '{path}': {message}")]
    Output { path: String, message: String },
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}
