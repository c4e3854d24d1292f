//! The service's own counters as Prometheus text (`GET /metrics`) and as a
//! `vmpulse_internal` line-protocol point (like Telegraf's `internal` input).
//! Both are pure functions of one snapshot, so they always agree with `/status`.
//! The per-VM series come from the metric table (`crate::schema::metrics`).

use std::fmt::Write as _;
use std::time::SystemTime;

use crate::model::{HugePages, Snapshot, SourceState};
use crate::schema::hypervisor::{HostFigures, HYPERVISOR_FIELDS};
use crate::schema::METRICS;

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
            "vmpulse_requests_in_flight",
            "gauge",
            "Write requests on the wire.",
            w.requests_in_flight as f64,
        ),
        series(
            "vmpulse_requests_in_flight_limit",
            "gauge",
            "Write requests the writer keeps in flight at most now (influx.max_in_flight, raised while acknowledgements are slow).",
            w.requests_in_flight_limit as f64,
        ),
        series(
            "vmpulse_batch_lines_limit",
            "gauge",
            "Lines per write request now (influx.batch_max_lines, raised while acknowledgements are slow).",
            w.batch_lines_limit as f64,
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
    host_series(&mut o, s);
    alert_series(&mut o, s);
    if per_vm {
        per_vm_series(&mut o, s);
    }
    o
}

/// The host's gauges (`vmpulse_host_*`, from the `hypervisor` field table),
/// free memory per NUMA node and huge pages per size; none before the first reading.
fn host_series(o: &mut String, s: &Snapshot) {
    let Some(h) = s.host.as_ref() else {
        return;
    };
    let figures = HostFigures::of(h, &s.vms);
    for f in HYPERVISOR_FIELDS {
        let Some(v) = (f.read)(&figures).and_then(|v| v.as_f64()) else {
            continue;
        };
        let name = f.prometheus_name();
        let _ = writeln!(o, "# HELP {name} {}", help(f.help));
        let _ = writeln!(o, "# TYPE {name} gauge");
        let _ = writeln!(o, "{name} {}", number(v * f.unit.prometheus().1));
    }
    let gauge = |o: &mut String, name: &str, help: &str, rows: Vec<(String, f64)>| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} gauge");
        for (labels, v) in rows {
            let _ = writeln!(o, "{name}{{{labels}}} {}", number(v));
        }
    };
    let numa = h.numa_free_kib.iter().enumerate();
    gauge(
        o,
        "vmpulse_host_numa_memory_free_bytes",
        "Free memory of one NUMA node.",
        numa.map(|(n, kib)| (format!("node=\"{n}\""), *kib as f64 * 1024.0))
            .collect(),
    );
    let pages = |pick: fn(&HugePages) -> Option<u64>| {
        h.huge_pages
            .iter()
            .filter_map(|p| Some((format!("size_kb=\"{}\"", p.size_kib), pick(p)? as f64)))
            .collect()
    };
    gauge(
        o,
        "vmpulse_host_hugepages",
        "Huge pages of one size reserved on the host.",
        pages(|p| p.total),
    );
    gauge(
        o,
        "vmpulse_host_hugepages_free",
        "Huge pages of one size free.",
        pages(|p| Some(p.free)),
    );
}

/// `vmpulse_alert_active{vm,metric,level} 1` per active alert (none: no sample).
fn alert_series(o: &mut String, s: &Snapshot) {
    let name = "vmpulse_alert_active";
    let _ = writeln!(
        o,
        "# HELP {name} An active alert: 1 per VM, metric and level (alerts.* levels)."
    );
    let _ = writeln!(o, "# TYPE {name} gauge");
    for a in &s.alerts.active {
        let _ = writeln!(
            o,
            "{name}{{vm=\"{}\",metric=\"{}\",level=\"{}\"}} 1",
            label(&a.vm),
            label(&a.metric),
            a.level.as_str()
        );
    }
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

/// The labels of a VM's series: `uuid`, `name`, then its metadata tags (their
/// names are label names: `config::metadata::check_name`).
fn vm_labels(vm: &crate::model::VmSnapshot) -> String {
    let mut l = format!(
        "uuid=\"{}\",name=\"{}\"",
        label(vm.uuid()),
        label(vm.name())
    );
    for (k, v) in &vm.raw.tags {
        let _ = write!(l, ",{k}=\"{}\"", label(v));
    }
    l
}

/// One series per metric of the table that has a Prometheus name, labelled
/// by [`vm_labels`]; the value is scaled into the unit the name ends in.
fn per_vm_series(o: &mut String, s: &Snapshot) {
    let labels: Vec<String> = s.vms.iter().map(vm_labels).collect();
    for m in METRICS.iter().filter(|m| m.per_vm()) {
        let (Some(name), Some(p)) = (m.prometheus_name(), m.prom) else {
            continue;
        };
        let kind = if p.counter { "counter" } else { "gauge" };
        let (_, scale) = m.unit.prometheus();
        let _ = writeln!(o, "# HELP {name} {}", help(m.help));
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (vm, labels) in s.vms.iter().zip(&labels) {
            if let Some(v) = m.vm_value(vm).and_then(|v| v.as_f64()) {
                let _ = writeln!(o, "{name}{{{labels}}} {}", number(v * scale));
            }
        }
    }
}

/// A HELP text: backslashes and newlines escaped, as the format wants.
fn help(text: &str) -> String {
    text.replace('\\', r"\\").replace('\n', r"\n")
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
    fn per_vm_series_come_from_the_metric_table_under_their_old_names() {
        let mut s = Snapshot::empty("test:///default", "h", Duration::from_secs(1));
        let vm = crate::fixtures::sampled("web", crate::model::DomainState::Running, true);
        *s.vms = vec![vm];
        let text = prometheus(&s, SystemTime::UNIX_EPOCH, true);
        let names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE vmpulse_vm_"))
            .collect();
        for want in [
            "state gauge",
            "vcpus gauge",
            "cpu_percent gauge",
            "cpu_seconds_total counter",
            "memory_max_bytes gauge",
            "memory_used_bytes gauge",
            "disk_read_bytes_total counter",
            "disk_write_bytes_total counter",
            "network_receive_bytes_total counter",
            "network_transmit_bytes_total counter",
        ] {
            assert!(names.contains(&want), "{want} missing: {names:?}");
        }
        let uuid = "550e8400-e29b-41d4-a716-446655440000";
        let sample = |name: &str| format!("{name}{{uuid=\"{uuid}\",name=\"web\"}} ");
        // Scaled into the unit the name ends in: KiB → bytes, ns → seconds.
        assert!(
            text.contains(&format!("{}5\n", sample("vmpulse_vm_cpu_seconds_total"))),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "{}512000000\n",
                sample("vmpulse_vm_memory_used_bytes")
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("{}12.5\n", sample("vmpulse_vm_cpu_percent"))),
            "{text}"
        );
        assert!(
            text.contains(&format!("{}1\n", sample("vmpulse_vm_state"))),
            "{text}"
        );
    }

    #[test]
    fn metadata_tags_are_labels_escaped() {
        let mut vm = crate::fixtures::sampled("web", crate::model::DomainState::Running, true);
        vm.raw.tags = vec![
            ("project".into(), "shop \"x\"\\y".into()),
            ("flavor".into(), "m1.small".into()),
        ];
        let l = vm_labels(&vm);
        assert!(
            l.ends_with(r#",name="web",project="shop \"x\"\\y",flavor="m1.small""#),
            "{l}"
        );
    }

    #[test]
    fn host_series_come_from_the_hypervisor_table() {
        let mut s = Snapshot::empty("test:///default", "hv", std::time::Duration::from_secs(1));
        let text = prometheus(&s, SystemTime::UNIX_EPOCH, false);
        assert!(!text.contains("vmpulse_host_"), "no reading yet");
        s.host = Some(crate::fixtures::host());
        let text = prometheus(&s, SystemTime::UNIX_EPOCH, false);
        assert!(text.contains("\nvmpulse_host_cpus 16\n"), "{text}");
        assert!(text.contains("\nvmpulse_host_memory_total_bytes 68719476736\n"));
        assert!(text.contains("\nvmpulse_host_memory_used_percent 35.9375\n"));
        assert!(text.contains("\nvmpulse_host_numa_memory_free_bytes{node=\"1\"} "));
        assert!(text.contains("\nvmpulse_host_hugepages{size_kb=\"2048\"} 1024\n"));
        assert!(text.contains("\nvmpulse_host_hugepages_free{size_kb=\"1048576\"} 0\n"));
        // No VM has a rate yet: no share of the host's CPU, no steal.
        assert!(!text.contains("vmpulse_host_steal_percent_max"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label(r#"web "x"\y"#), r#"web \"x\"\\y"#);
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(3.0), "3");
    }
}
