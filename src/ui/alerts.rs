//! What needs the operator, as the header's alert line says it (drops, rejects,
//! errors, auth, the spool, libvirt), and so how tall the header is. Pure text from
//! a [`Snapshot`]: the header draws it, the layout makes room for it.

use crate::format;
use crate::model::{Snapshot, SourceState, SpoolState, WriterState};

/// The header's height: two lines, one more for the host summary once known, one
/// more for an alert.
pub fn header_height(snap: &Snapshot) -> u16 {
    2 + u16::from(snap.host.is_some()) + u16::from(!alerts(snap).is_empty())
}

/// The problems worth a red line, most serious first.
pub fn alerts(snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if let crate::model::Origin::Database {
        attach_error: Some(e),
        ..
    } = &snap.origin
    {
        out.push(format!(
            "live attach failed: {e}; showing InfluxDB's newest points"
        ));
    }
    if let SourceState::Failed(msg) = &snap.source {
        let since = snap
            .unreachable_since
            .map(|t| format!(" since {}", format::clock(t)))
            .unwrap_or_default();
        out.push(format!(
            "libvirt {} unreachable{since}: {msg} (retrying)",
            snap.libvirt_uri
        ));
    }
    if snap.collector.monitor_stuck_vms > 0 {
        out.push(format!(
            "{} VM(s) with a stuck QEMU monitor",
            snap.collector.monitor_stuck_vms
        ));
    }
    let w = &snap.writer;
    match w.state {
        WriterState::AuthFailed => out.push("InfluxDB token rejected (401/403)".into()),
        WriterState::Failing => out.push(format!(
            "writer failing: {}",
            w.last_error.as_deref().unwrap_or("see status (i)")
        )),
        _ => {}
    }
    match w.spool.as_ref().map(|s| &s.state) {
        Some(SpoolState::Unavailable { reason }) => {
            out.push(format!("spool unavailable, memory only: {reason}"))
        }
        Some(SpoolState::Off { reason }) => out.push(format!("no spool, memory only: {reason}")),
        _ => {}
    }
    if w.lines_dropped > 0 {
        out.push(format!("{} lines dropped", w.lines_dropped));
    }
    if w.lines_rejected > 0 {
        out.push(format!("{} lines rejected", w.lines_rejected));
    }
    if snap.collector.total_errors > 0 {
        out.push(format!("{} collection errors", snap.collector.total_errors));
    }
    out
}
