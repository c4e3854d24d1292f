//! InfluxDB line protocol and the batching writer.

pub mod line_protocol;
pub mod retry;
pub mod writer;
