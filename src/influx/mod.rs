//! The batching writer that delivers line protocol (encoded by `crate::encode`).
//!
//! `writer` is the handle the engine holds; `queue` the memory queue and
//! counters; `task` the state machine; `sink` the outputs (HTTP, file);
//! `retry` classifies answers.

pub(crate) mod queue;
pub mod retry;
pub mod sink;
pub(crate) mod task;
pub mod writer;
