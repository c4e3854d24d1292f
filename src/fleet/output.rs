//! `vmpulse fleet --once`: the host list as a JSON array or CSV, and one host's VMs
//! as `vmpulse --once --format json` prints them (pure).

use std::collections::BTreeMap;

use super::hosts::HostRow;
use crate::encode::line_protocol::EncodeCtx;
use crate::encode::{csv, json};
use crate::model::Snapshot;

/// The host list as one JSON array, worst first.
pub fn rows_json(rows: &[HostRow]) -> String {
    serde_json::to_string_pretty(rows).unwrap_or_else(|_| "[]".into())
}

/// The columns of `--format csv`.
pub const CSV_COLUMNS: [&str; 19] = [
    "host",
    "age_seconds",
    "stale",
    "vms_running",
    "vms_total",
    "cpu_cores_used",
    "cpu_percent_of_host",
    "cpus",
    "steal_worst_percent",
    "memory_used_kb",
    "memory_assigned_kb",
    "memory_total_kb",
    "disk_bytes_per_sec",
    "net_bytes_per_sec",
    "alerts_careful",
    "alerts_warning",
    "alerts_critical",
    "service_queue_depth",
    "service_lines_dropped",
];

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The host list as CSV: a header row, then one row per host (each ending in `\n`).
pub fn rows_csv(rows: &[HostRow]) -> String {
    let mut out = csv::join(CSV_COLUMNS.into_iter());
    out.push('\n');
    for r in rows {
        let svc = r.service.as_ref();
        let cells = [
            r.host.clone(),
            format!("{:.3}", r.age_seconds),
            r.stale.to_string(),
            r.vms_running.to_string(),
            r.vms_total.to_string(),
            cell(r.cpu_cores_used),
            cell(r.cpu_percent_of_host),
            cell(r.cpus),
            cell(r.steal_worst_percent),
            cell(r.memory_used_kb),
            cell(r.memory_assigned_kb),
            cell(r.memory_total_kb),
            r.disk_bytes_per_sec.to_string(),
            r.net_bytes_per_sec.to_string(),
            r.alerts.careful.to_string(),
            r.alerts.warning.to_string(),
            r.alerts.critical.to_string(),
            cell(svc.and_then(|s| s.queue_depth)),
            cell(svc.and_then(|s| s.lines_dropped)),
        ];
        out.push_str(&csv::join(cells.iter().map(String::as_str)));
        out.push('\n');
    }
    out
}

/// One host's VMs, one JSON object per line, as `vmpulse --once --format json`.
pub fn vms_json(snap: &Snapshot) -> String {
    let ctx = EncodeCtx::new(&snap.hostname, &BTreeMap::new());
    let mut out = String::new();
    for vm in &snap.vms {
        out.push_str(&json::object(&ctx, vm));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::answer::Point;
    use crate::fleet::hosts::host_rows;
    use crate::fleet::hosts::tests::{now, vm};
    use std::time::Duration;

    fn rows() -> Vec<HostRow> {
        let mut ps: Vec<Point> = vm("hv-a", "1", 1.0, "running", 50.0, 2.0).into();
        ps.extend(vm("hv,b", "2", 90.0, "shutoff", 0.0, 0.0));
        host_rows(&ps, now(), Duration::from_secs(30))
    }

    #[test]
    fn json_has_the_scripting_keys() {
        let v: serde_json::Value = serde_json::from_str(&rows_json(&rows())).unwrap();
        let a = &v[1];
        assert_eq!(a["host"], "hv-a");
        for k in [
            "age_seconds",
            "stale",
            "vms_running",
            "vms_total",
            "cpu_cores_used",
            "steal_worst_percent",
            "memory_used_kb",
        ] {
            assert!(a.get(k).is_some(), "{k}");
        }
        assert_eq!(
            a["alerts"],
            serde_json::json!({"careful": 0, "warning": 0, "critical": 0})
        );
        assert_eq!(v[0]["host"], "hv,b");
        assert_eq!(v[0]["stale"], true);
    }

    #[test]
    fn csv_quotes_what_needs_it_and_leaves_unknowns_empty() {
        let text = rows_csv(&rows());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("host,age_seconds,stale,"));
        assert!(
            lines[1].starts_with("\"hv,b\",90.000,true,0,1,,,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("hv-a,1.000,false,1,1,1,,,2,"),
            "{}",
            lines[2]
        );
    }
}
