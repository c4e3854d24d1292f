//! vmpulse: live per-VM metrics for KVM hypervisors, shipped to InfluxDB.
//!
//! The engine (`collector`, `influx`, `engine`) never touches the terminal; the
//! TUI (`ui`) and headless mode (`headless`) are two frontends over the same
//! `watch` stream of `Arc<Snapshot>`.

pub mod cli;
pub mod collector;
pub mod config;
pub mod control;
pub mod encode;
pub mod engine;
pub mod generate;
pub mod headless;
pub mod influx;
pub mod limit;
pub mod logging;
pub mod model;
pub mod output;
pub mod schema;
pub mod spool;
pub mod ui;
