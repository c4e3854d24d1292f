//! InfluxDB line protocol and the batching writer.
//!
//! `writer` is the handle the engine holds; `queue` the memory queue and
//! counters; `task` the state machine; `sink` the outputs (HTTP, file);
//! `retry` classifies answers; `line_protocol` encodes snapshots.

pub mod line_protocol;
pub(crate) mod queue;
pub mod retry;
pub mod sink;
pub(crate) mod task;
pub mod writer;
