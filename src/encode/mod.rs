//! Encoding snapshots for the outside (pure): InfluxDB line protocol
//! (`line_protocol.rs`), and for `--output` besides it JSON (`json.rs`, one
//! object per VM per collection, one per line) and CSV (`csv.rs`, a header
//! row, then one row per VM per collection: what `virt-top --csv` users
//! expect). JSON and CSV share one column list ([`record::COLUMNS`]) made
//! from the metric table (`crate::schema`); `encoder.rs` turns one collection
//! into lines of the chosen `config::Format`. `hypervisor.rs` writes the
//! host's lines, line protocol only (JSON/CSV have one record per VM).

pub mod csv;
pub mod encoder;
pub mod hypervisor;
pub mod json;
pub mod line_protocol;
pub mod record;
