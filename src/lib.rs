//! vmpulse: live per-VM metrics for KVM hypervisors, shipped to InfluxDB.
//!
//! The engine (`collector`, the encoders, `writer`, `engine`) never touches the
//! terminal; the TUI (`ui`), headless mode (`headless`) and the control API
//! (`control`, with its clients in `remote`) are frontends over the same `watch`
//! stream of `Arc<Snapshot>`. ARCHITECTURE.md lists the modules floor by floor:
//! each imports only those below it.

pub mod alert;
pub mod cli;
pub mod collector;
pub mod config;
pub mod control;
pub mod encode;
pub mod engine;
pub mod fixtures;
pub mod fleet;
pub mod format;
pub mod generate;
pub mod headless;
pub mod history;
pub mod limit;
pub mod logging;
pub mod model;
pub mod output;
pub mod remote;
pub mod residency;
pub mod schema;
pub mod spool;
pub mod ui;
pub mod writer;
