//! The fleet's InfluxQL (pure): which statements a refresh sends, bounded in time
//! range and columns, and the URL each API answers them on. Every statement asks for
//! the newest point of every series (`GROUP BY * ORDER BY time DESC LIMIT 1`), so
//! the answer holds one row per VM and measurement whatever the window; a column no
//! line ever carried comes back null (InfluxQL, unlike InfluxDB 3's SQL, does not
//! refuse it), so any subset of the columns below may exist.

use std::time::Duration;

use crate::config::{InfluxApi, InfluxConfig};
use crate::schema::METRICS;

/// Measurements of the host list whose newest point per series is read.
pub const LATEST_FROM: [&str; 4] = [
    "vm_metrics",
    "vm_features",
    "hypervisor",
    "vmpulse_internal",
];

/// Alerts are points on change only: read with the lookback, not the window.
pub const ALERTS_FROM: &str = "vm_alerts";

/// The columns of the host list: VM state, size and load (`vm_metrics`,
/// `vm_features`), the host's capacity (`hypervisor`), the service's health
/// (`vmpulse_internal`).
pub const HOST_COLUMNS: [&str; 22] = [
    "state",
    "cpu_count",
    "memory_max_kb",
    "memory_used_kb",
    "cpu_usage_percent",
    "cpu_steal_percent",
    "disk_read_bytes_per_sec",
    "disk_write_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
    "cpus",
    "memory_total_kb",
    "vcpus_assigned",
    "memory_assigned_kb",
    "vms_cpu_cores",
    "vms_cpu_percent",
    "steal_percent_max",
    "queue_depth",
    "lines_dropped",
    "lines_written",
    "collecting",
    "vms",
];

/// The columns of `vm_alerts` the host list counts.
pub const ALERT_COLUMNS: [&str; 2] = ["level", "active"];

/// Whether a column is a field (InfluxDB 3's rows mix tags and fields): every
/// metric of the table and the columns above.
pub fn is_field(col: &str) -> bool {
    HOST_COLUMNS.contains(&col)
        || ALERT_COLUMNS.contains(&col)
        || METRICS.iter().any(|m| m.name == col)
}

/// `"name"`: an identifier quoted for InfluxQL.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `'text'`: a string literal for InfluxQL.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The newest point of every series of `from` in the last `range`, `columns` only
/// (`None`: every column), optionally of one host.
pub fn latest(
    from: &[&str],
    columns: Option<&[&str]>,
    range: Duration,
    host: Option<&str>,
) -> String {
    let cols = match columns {
        Some(c) => c.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", "),
        None => "*".into(),
    };
    let from = from.iter().map(|m| ident(m)).collect::<Vec<_>>().join(", ");
    let host = host
        .map(|h| format!("\"host\" = {} AND ", literal(h)))
        .unwrap_or_default();
    // Whole seconds, at least one: InfluxQL durations are integers.
    let secs = range.as_secs_f64().ceil().max(1.0) as u64;
    format!(
        "SELECT {cols} FROM {from} WHERE {host}time > now() - {secs}s GROUP BY * ORDER BY time DESC LIMIT 1"
    )
}

/// The statements of one refresh of the host list: the newest VM, host and
/// service points of `range`, and the alerts of `lookback`.
pub fn host_statements(range: Duration, lookback: Duration) -> [String; 2] {
    [
        latest(&LATEST_FROM, Some(&HOST_COLUMNS), range, None),
        latest(&[ALERTS_FROM], Some(&ALERT_COLUMNS), lookback, None),
    ]
}

/// The statement of a drilled-down host: every column of its VMs' newest points.
pub fn host_vms_statement(host: &str, range: Duration) -> String {
    latest(&["vm_metrics", "vm_features"], None, range, Some(host))
}

/// The columns the detail view's sparklines draw (`history::Sample`).
pub const HISTORY_COLUMNS: [&str; 7] = [
    "cpu_usage_percent",
    "cpu_steal_percent",
    "memory_usage_percent",
    "disk_read_bytes_per_sec",
    "disk_write_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
];

/// The statement of a host's history: every `vm_features` point of its VMs in the
/// last `range` (`ui.history_minutes`), the sparklines' columns only.
pub fn history_statement(host: &str, range: Duration) -> String {
    let secs = range.as_secs_f64().ceil().max(1.0) as u64;
    let cols = HISTORY_COLUMNS
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT {cols} FROM \"vm_features\" WHERE \"host\" = {} AND time > now() - {secs}s GROUP BY \"uuid\", \"name\"",
        literal(host)
    )
}

/// The URL answering `statement` on `base` (credentials already taken out) for
/// `ic.api`: 1.x `/query`, 2.x `/query` (through its DBRP mapping of the bucket),
/// InfluxDB 3 `/api/v3/query_influxql`.
pub fn query_url(base: &url::Url, ic: &InfluxConfig, statement: &str) -> url::Url {
    let prefix = base.path().trim_end_matches('/').to_string();
    let mut url = base.clone();
    match ic.api {
        InfluxApi::V3 => {
            url.set_path(&format!("{prefix}/api/v3/query_influxql"));
            url.query_pairs_mut()
                .append_pair("db", &ic.db)
                .append_pair("format", "json")
                .append_pair("q", statement);
        }
        InfluxApi::V2 | InfluxApi::V1 => {
            url.set_path(&format!("{prefix}/query"));
            url.query_pairs_mut()
                .append_pair("db", &ic.db)
                .append_pair("epoch", "ns")
                .append_pair("q", statement);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_query_is_bounded_in_time_and_columns() {
        let [newest, alerts] = host_statements(Duration::from_secs(30), Duration::from_secs(3600));
        assert!(newest.starts_with("SELECT \"state\", \"cpu_count\""));
        assert!(newest.contains(
            "FROM \"vm_metrics\", \"vm_features\", \"hypervisor\", \"vmpulse_internal\" WHERE time > now() - 30s GROUP BY * ORDER BY time DESC LIMIT 1"
        ));
        assert_eq!(
            alerts,
            "SELECT \"level\", \"active\" FROM \"vm_alerts\" WHERE time > now() - 3600s GROUP BY * ORDER BY time DESC LIMIT 1"
        );
        assert!(latest(&["m"], None, Duration::from_millis(1), None).contains("now() - 1s"));
    }

    #[test]
    fn a_host_name_is_a_quoted_literal() {
        let q = host_vms_statement(r"hv 'a'\b", Duration::from_secs(60));
        assert!(
            q.contains(r#"WHERE "host" = 'hv \'a\'\\b' AND time > now() - 60s"#),
            "{q}"
        );
        assert!(q.starts_with("SELECT * FROM \"vm_metrics\", \"vm_features\""));
    }

    #[test]
    fn the_history_reads_one_host_and_the_sparklines_columns() {
        let q = history_statement("hv-a", Duration::from_secs(300));
        assert!(q.starts_with("SELECT \"cpu_usage_percent\", "), "{q}");
        assert!(q.ends_with("FROM \"vm_features\" WHERE \"host\" = 'hv-a' AND time > now() - 300s GROUP BY \"uuid\", \"name\""), "{q}");
    }

    #[test]
    fn each_api_has_its_query_endpoint() {
        let base = url::Url::parse("http://db.example:8086/prefix/").unwrap();
        let mut ic = InfluxConfig {
            db: "vm stats".into(),
            ..InfluxConfig::default()
        };
        for (api, want) in [
            (InfluxApi::V1, "http://db.example:8086/prefix/query?db=vm+stats&epoch=ns&q=SELECT+1"),
            (InfluxApi::V2, "http://db.example:8086/prefix/query?db=vm+stats&epoch=ns&q=SELECT+1"),
            (
                InfluxApi::V3,
                "http://db.example:8086/prefix/api/v3/query_influxql?db=vm+stats&format=json&q=SELECT+1",
            ),
        ] {
            ic.api = api;
            assert_eq!(query_url(&base, &ic, "SELECT 1").as_str(), want);
        }
    }

    #[test]
    fn fields_are_known_and_tags_are_not() {
        assert!(is_field("cpu_usage_percent") && is_field("level") && is_field("vms_cpu_cores"));
        assert!(!is_field("host") && !is_field("project") && !is_field("metric"));
    }
}
