//! End to end: the real `vmpulse --no-ui` against libvirt's test driver and a real
//! influxd 1.x. What InfluxDB holds after SIGTERM must match the final counters exactly.

mod common;

use common::final_counter as counter;
use std::process::{Command, Stdio};
use std::time::Duration;

const HOSTILE: &str = r#"web 01,env=prod "x"\y"#;

fn fixture() -> String {
    format!(
        "test://{}/tests/fixtures/e2e-host.xml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn tag_values(influx: &common::InfluxD, db: &str, measurement: &str, key: &str) -> Vec<String> {
    let v = influx.query(
        db,
        &format!("SHOW TAG VALUES FROM \"{measurement}\" WITH KEY = \"{key}\""),
    );
    let mut out: Vec<String> = v["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[1].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn no_ui_writes_every_measurement_and_counts_match_influxdb() {
    let influx = common::InfluxD::start();
    influx.create_db("e2e");
    let sockdir = tempfile::tempdir().expect("temp dir");
    let spool = tempfile::tempdir().expect("spool dir");
    let child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args([
            "--no-ui",
            "--connect",
            &fixture(),
            "--influx-url",
            &influx.url,
        ])
        .args([
            "--influx-api",
            "v1",
            "--influx-db",
            "e2e",
            "--poll-interval",
            "0.5",
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("SPOOL_DIR", spool.path())
        .env("VMPULSE_LOG", "info")
        .env("VMPULSE_SOCKET", sockdir.path().join("vmpulse.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    std::thread::sleep(Duration::from_secs(4));
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait for vmpulse");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "exit code; stderr:\n{stderr}");
    assert!(stderr.contains("SIGTERM"), "{stderr}");

    let written = counter(&stderr, "lines_written");
    let queued = counter(&stderr, "lines_queued");
    assert!(written > 0, "{stderr}");
    assert_eq!(written, queued, "everything queued was written: {stderr}");
    assert_eq!(counter(&stderr, "lines_dropped"), 0);
    assert_eq!(counter(&stderr, "lines_rejected"), 0);
    let collections = counter(&stderr, "collections");
    assert!(collections >= 4, "{stderr}");

    // Every point written is in InfluxDB, no more, no less.
    let metrics = influx.count("e2e", "vm_metrics", "state");
    let features = influx.count("e2e", "vm_features", "memory_rate_kb_per_sec");
    let nics = influx.count("e2e", "vm_devices", "rxbytes");
    let disks = influx.count("e2e", "vm_devices", "rd_bytes");
    let totals = influx.count("e2e", "vm_totals", "state");
    assert_eq!(common::stored_lines(&influx, "e2e"), written);
    // The host's capacity: one point per reading of the node figures (every 5 s).
    let host = influx.count("e2e", "hypervisor", "cpus");
    assert!((1..=2).contains(&host), "{host} hypervisor points");
    let rest = metrics + features + nics + disks + totals + host;
    let events = influx.count("e2e", "vm_alerts", "level");
    assert_eq!(rest + events, written);
    // Two domains: one vm_metrics and one vm_totals line each per collection;
    // vm_features from each domain's second sample on; 3 NICs and 3 disks in all.
    assert_eq!(metrics, 2 * collections);
    assert_eq!(totals, 2 * collections);
    assert_eq!(features, 2 * (collections - 1));
    assert_eq!(nics, 3 * collections);
    assert_eq!(disks, 3 * collections);

    // Tag values arrive exactly as libvirt names them, hostile characters and all.
    assert_eq!(
        tag_values(&influx, "e2e", "vm_metrics", "name"),
        vec!["db-1".to_string(), HOSTILE.to_string()]
    );
    assert_eq!(
        tag_values(&influx, "e2e", "vm_metrics", "uuid"),
        vec![
            "11111111-2222-3333-4444-000000000001",
            "11111111-2222-3333-4444-000000000002"
        ]
    );
    assert_eq!(
        tag_values(&influx, "e2e", "vm_metrics", "VMID"),
        vec!["1", "2"]
    );
    let host = tag_values(&influx, "e2e", "vm_totals", "host");
    assert_eq!(host.len(), 1);
    assert!(!host[0].is_empty());
    assert_eq!(
        tag_values(&influx, "e2e", "vm_devices", "device"),
        vec!["tap-db0", "tap-web0", "tap-web1", "vda", "vdb"]
    );
    assert_eq!(
        tag_values(&influx, "e2e", "vm_devices", "devtype"),
        vec!["disk", "nic"]
    );

    // Field types as the schema defines them: state is a string in vm_metrics, an integer in vm_totals.
    let keys = influx.query("e2e", "SHOW FIELD KEYS");
    let series = keys["results"][0]["series"].as_array().expect("field keys");
    let field_type = |m: &str, f: &str| -> String {
        series
            .iter()
            .find(|s| s["name"] == m)
            .and_then(|s| s["values"].as_array())
            .and_then(|vals| vals.iter().find(|v| v[0] == f))
            .and_then(|v| v[1].as_str())
            .unwrap_or("missing")
            .to_string()
    };
    assert_eq!(field_type("vm_metrics", "state"), "string");
    assert_eq!(field_type("vm_metrics", "cputime_ns"), "integer");
    assert_eq!(field_type("vm_totals", "state"), "integer");
    assert_eq!(field_type("vm_features", "cpu_usage_percent"), "float");
    assert_eq!(field_type("vm_features", "memory_angle_deg"), "float");
    assert_eq!(field_type("vm_devices", "wr_reqs"), "integer");

    // The hostile VM's CPU % is a percentage (the test driver's clock-based counters saturate it).
    let v = influx.query(
        "e2e",
        &format!("SELECT MAX(cpu_usage_percent), MIN(cpu_usage_percent) FROM vm_features WHERE \"name\" = '{}'", HOSTILE.replace('\\', "\\\\").replace('\'', "\\'")),
    );
    let row = &v["results"][0]["series"][0]["values"][0];
    let (max, min) = (
        row[1].as_f64().expect("max cpu"),
        row[2].as_f64().expect("min cpu"),
    );
    assert!(
        (0.0..=100.0).contains(&min) && (0.0..=100.0).contains(&max),
        "{row}"
    );
}
