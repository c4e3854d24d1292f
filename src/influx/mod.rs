//! What is specific to InfluxDB's line protocol: `line_protocol` encodes snapshots.
//! Delivery is the writer's room (`crate::writer`).

pub mod line_protocol;
