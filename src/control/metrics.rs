//! The service's own counters as Prometheus text (`GET /metrics`) and as a
//! `vmpulse_internal` line-protocol point (like Telegraf's `internal` input).
//! Both are pure functions of one snapshot, so they always agree with `/status`.

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::model::{Snapshot, SourceState};

/// One service-level series: name, type, help, value.
struct Series {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: f64,
}

fn service_series(s: &Snapshot, started_at: SystemTime) -> Vec<Series> {
    let c = &s.collector;
    let w = &s.writer;
    let secs = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
    };
    let series = |name, kind, help, value| Series {
        name,
        kind,
        help,
        value,
    };
    vec![
        series(
            "vmpulse_collections_total",
            "counter",
            "Completed collection cycles.",
            c.total_collections as f64,
        ),
        series(
            "vmpulse_collection_errors_total",
            "counter",
            "Failed cycles plus skipped domains or devices.",
            c.total_errors as f64,
        ),
        series(
            "vmpulse_skipped_items_total",
            "counter",
            "Domains or devices skipped because one libvirt call failed or was slow.",
            c.skipped_items as f64,
        ),
        series(
            "vmpulse_last_collection_duration_seconds",
            "gauge",
            "Duration of the last collection cycle.",
            c.last_collection_ms.unwrap_or(0.0) / 1000.0,
        ),
        series(
            "vmpulse_collecting",
            "gauge",
            "1 while collection is on, 0 when stopped.",
            f64::from(u8::from(s.collecting)),
        ),
        series(
            "vmpulse_poll_interval_seconds",
            "gauge",
            "Seconds between collection cycles.",
            s.poll_interval.as_secs_f64(),
        ),
        series(
            "vmpulse_libvirt_connected",
            "gauge",
            "1 when the last cycle reached libvirt.",
            f64::from(u8::from(s.source == SourceState::Connected)),
        ),
        series(
            "vmpulse_vms",
            "gauge",
            "VMs seen in the last cycle.",
            c.vms_monitored as f64,
        ),
        series(
            "vmpulse_lines_queued_total",
            "counter",
            "Line-protocol lines handed to the writer.",
            w.lines_queued as f64,
        ),
        series(
            "vmpulse_lines_written_total",
            "counter",
            "Lines the server (or --output) accepted.",
            w.lines_written as f64,
        ),
        series(
            "vmpulse_lines_dropped_total",
            "counter",
            "Lines dropped (queue full, spool full or corrupt, output closed, flush timeout).",
            w.lines_dropped as f64,
        ),
        series(
            "vmpulse_lines_rejected_total",
            "counter",
            "Lines the server refused as invalid.",
            w.lines_rejected as f64,
        ),
        series(
            "vmpulse_write_retries_total",
            "counter",
            "Write requests retried.",
            w.write_retries as f64,
        ),
        series(
            "vmpulse_lines_in_flight",
            "gauge",
            "Live lines on the wire (replayed ones count in vmpulse_spool_lines).",
            w.lines_in_flight as f64,
        ),
        series(
            "vmpulse_spool_lines_recovered_total",
            "counter",
            "Lines found in the spool at start (left by an earlier run).",
            w.lines_recovered as f64,
        ),
        series(
            "vmpulse_lines_unaccounted",
            "gauge",
            "Lines queued or recovered and not written, rejected, dropped, spooled, queued or in flight (0 when all are accounted for).",
            w.unaccounted() as f64,
        ),
        series(
            "vmpulse_queue_depth",
            "gauge",
            "Lines waiting for the writer.",
            w.queue_depth as f64,
        ),
        series(
            "vmpulse_queue_capacity",
            "gauge",
            "Lines the writer queue holds at most.",
            w.queue_capacity as f64,
        ),
        series(
            "vmpulse_spool_bytes",
            "gauge",
            "Bytes waiting in the on-disk spool (0 without one).",
            w.spool.as_ref().map_or(0.0, |sp| sp.bytes as f64),
        ),
        series(
            "vmpulse_spool_lines",
            "gauge",
            "Lines waiting in the on-disk spool (0 without one).",
            w.spool.as_ref().map_or(0.0, |sp| sp.lines as f64),
        ),
        series(
            "vmpulse_start_time_seconds",
            "gauge",
            "Start of the service, seconds since the Unix epoch.",
            secs(started_at),
        ),
    ]
}

/// Prometheus text exposition format 0.0.4.
pub fn prometheus(s: &Snapshot, started_at: SystemTime, per_vm: bool) -> String {
    let mut o = String::with_capacity(4096);
    for m in service_series(s, started_at) {
        let _ = writeln!(o, "# HELP {} {}", m.name, m.help);
        let _ = writeln!(o, "# TYPE {} {}", m.name, m.kind);
        let _ = writeln!(o, "{} {}", m.name, number(m.value));
    }
    if per_vm {
        per_vm_series(&mut o, s);
    }
    o
}

/// A Prometheus sample value (`NaN`, `+Inf` spelled as the format wants).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

type VmPick = fn(&crate::model::VmSnapshot) -> Option<f64>;

fn per_vm_series(o: &mut String, s: &Snapshot) {
    let table: [(&str, &str, &str, VmPick); 10] = [
        (
            "vmpulse_vm_state",
            "gauge",
            "libvirt domain state code (1 running, 3 paused, 5 shut off).",
            |v| Some(f64::from(v.raw.state.code())),
        ),
        ("vmpulse_vm_vcpus", "gauge", "Current vCPU count.", |v| {
            v.raw.vcpus.map(f64::from)
        }),
        (
            "vmpulse_vm_cpu_percent",
            "gauge",
            "CPU use over the last interval, percent of all vCPUs.",
            |v| v.derived.as_ref().and_then(|d| d.cpu_percent),
        ),
        (
            "vmpulse_vm_cpu_seconds_total",
            "counter",
            "Cumulative guest CPU time.",
            |v| {
                v.raw
                    .cpu
                    .filter(|_| v.raw.state.has_guest_counters())
                    .map(|c| c.time_ns as f64 / 1e9)
            },
        ),
        (
            "vmpulse_vm_memory_max_bytes",
            "gauge",
            "Maximum memory allocation.",
            |v| v.raw.max_mem_kib.map(|k| k as f64 * 1024.0),
        ),
        (
            "vmpulse_vm_memory_used_bytes",
            "gauge",
            "Memory the guest uses (best source libvirt offers).",
            |v| {
                v.memory
                    .filter(|_| v.raw.state.has_guest_counters())
                    .map(|m| m.used_kb as f64 * 1024.0)
            },
        ),
        (
            "vmpulse_vm_disk_read_bytes_total",
            "counter",
            "Bytes read from all disks.",
            |v| active(v, v.raw.disks.iter().map(|d| d.rd_bytes).sum()),
        ),
        (
            "vmpulse_vm_disk_write_bytes_total",
            "counter",
            "Bytes written to all disks.",
            |v| active(v, v.raw.disks.iter().map(|d| d.wr_bytes).sum()),
        ),
        (
            "vmpulse_vm_network_receive_bytes_total",
            "counter",
            "Bytes received on all NICs.",
            |v| active(v, v.raw.nics.iter().map(|n| n.rx_bytes).sum()),
        ),
        (
            "vmpulse_vm_network_transmit_bytes_total",
            "counter",
            "Bytes sent on all NICs.",
            |v| active(v, v.raw.nics.iter().map(|n| n.tx_bytes).sum()),
        ),
    ];
    for (name, kind, help, pick) in table {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for vm in &s.vms {
            if let Some(v) = pick(vm) {
                let _ = writeln!(
                    o,
                    "{name}{{uuid=\"{}\",name=\"{}\"}} {}",
                    label(vm.uuid()),
                    label(vm.name()),
                    number(v)
                );
            }
        }
    }
}

fn active(v: &crate::model::VmSnapshot, total: u64) -> Option<f64> {
    v.raw.state.has_guest_counters().then_some(total as f64)
}

/// One `vmpulse_internal` point: the same counters, tagged `host` (escaped
/// like every tag vmpulse writes), stamped `now`.
pub fn internal_line(s: &Snapshot, host: &str, now: SystemTime) -> String {
    let c = &s.collector;
    let w = &s.writer;
    let ts = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut host_tag = String::new();
    for ch in host.chars() {
        match ch {
            ',' | '=' | ' ' => {
                host_tag.push('\\');
                host_tag.push(ch);
            }
            '\n' | '\r' | '\t' => host_tag.push_str("\\ "),
            _ => host_tag.push(ch),
        }
    }
    let host_tag = host_tag.trim_end_matches('\\');
    format!(
        "vmpulse_internal,host={host_tag} collections={}i,collection_errors={}i,skipped_items={}i,last_collection_ms={},collecting={},vms={}i,lines_queued={}i,lines_written={}i,lines_dropped={}i,lines_rejected={}i,write_retries={}i,queue_depth={}i {ts}",
        c.total_collections,
        c.total_errors,
        c.skipped_items,
        float(c.last_collection_ms.unwrap_or(0.0)),
        s.collecting,
        c.vms_monitored,
        w.lines_queued,
        w.lines_written,
        w.lines_dropped,
        w.lines_rejected,
        w.write_retries,
        w.queue_depth,
    )
}

/// A line-protocol float: always with a `.`, never NaN or infinite.
fn float(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') {
        s
    } else {
        format!("{s}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn internal_line_parses_as_line_protocol_with_escaped_host() {
        let mut s = Snapshot::empty("test:///default", "h", Duration::from_secs(1));
        s.collector.total_collections = 7;
        s.collector.last_collection_ms = Some(12.0);
        let line = internal_line(
            &s,
            "rack 1,a=b",
            SystemTime::UNIX_EPOCH + Duration::from_secs(5),
        );
        assert!(
            line.starts_with(r"vmpulse_internal,host=rack\ 1\,a\=b collections=7i,"),
            "{line}"
        );
        assert!(line.contains("last_collection_ms=12.0,"), "{line}");
        assert!(line.ends_with(" 5000000000"), "{line}");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label(r#"web "x"\y"#), r#"web \"x\"\\y"#);
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(3.0), "3");
    }
}
