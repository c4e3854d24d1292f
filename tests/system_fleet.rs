//! `vmpulse fleet` end to end: two real `vmpulse --no-ui` services on libvirt's test
//! driver, writing as hv-a and hv-b to a real influxd 1.x (and InfluxDB 3 Core where
//! its binary is configured); `vmpulse fleet --once` lists both with their VMs, and
//! a stopped one turns stale after `fleet.window`. Also the writer against the real
//! InfluxDB 3: every line queued is written, hostile names arrive exactly.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::final_counter as counter;

/// Where the services write and how the fleet reads it back.
struct Backend {
    url: String,
    api: &'static str,
    db: &'static str,
}

/// A `vmpulse --no-ui` service of `n` test-driver VMs writing as `host`.
fn service(b: &Backend, host: &str, n: usize, dir: &Path) -> Child {
    let uri = common::test_driver_host(dir, n);
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, format!("host = \"{host}\"\n")).expect("write config");
    Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args(["--no-ui", "--config"])
        .arg(&cfg)
        .args([
            "--connect",
            &uri,
            "--influx-url",
            &b.url,
            "--influx-api",
            b.api,
        ])
        .args(["--influx-db", b.db, "--poll-interval", "0.5"])
        .env("SPOOL_DIR", dir.join("spool"))
        .env("VMPULSE_SOCKET", dir.join("vmpulse.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start vmpulse --no-ui")
}

/// `vmpulse fleet --once` (with `extra` arguments) as its stdout, checked to exit 0.
fn fleet(b: &Backend, window: &str, extra: &[&str]) -> String {
    try_fleet(b, window, extra).unwrap_or_else(|e| panic!("vmpulse fleet failed: {e}"))
}

/// `vmpulse fleet --once` as its stdout, or its stderr when it failed.
fn try_fleet(b: &Backend, window: &str, extra: &[&str]) -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args([
            "--influx-url",
            &b.url,
            "--influx-api",
            b.api,
            "--influx-db",
            b.db,
        ])
        .args(["fleet", "--once"])
        .args(extra)
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("VMPULSE_FLEET_WINDOW", window)
        .output()
        .expect("run vmpulse fleet");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout).expect("UTF-8"))
}

fn rows(b: &Backend, window: &str) -> Vec<serde_json::Value> {
    let text = fleet(b, window, &["--format", "json"]);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn row<'a>(rows: &'a [serde_json::Value], host: &str) -> Option<&'a serde_json::Value> {
    rows.iter().find(|r| r["host"] == host)
}

fn stop(mut child: Child) {
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

fn fleet_lists_both_hosts_and_a_stopped_one_turns_stale(b: &Backend) {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = service(b, "hv-a", 3, da.path());
    let hv_b = service(b, "hv-b", 2, db.path());
    // Both hosts with every VM, once their first points are in (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        // Until the first write, InfluxDB 3 has no such database: an error, retried.
        let r: Vec<serde_json::Value> = try_fleet(b, "3", &[])
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let full = |h: &str, n: u64| row(&r, h).is_some_and(|x| x["vms_total"] == n);
        if full("hv-a", 3) && full("hv-b", 2) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "both hosts not listed within 30 s: {r:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for (h, n) in [("hv-a", 3), ("hv-b", 2)] {
        let r = row(&listed, h).unwrap();
        assert_eq!(r["vms_running"], n, "{r}");
        assert_eq!(r["stale"], false, "{r}");
        assert!(r["age_seconds"].as_f64().unwrap() < 3.0, "{r}");
        assert!(r["memory_used_kb"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["alerts"]["critical"], 0);
    }
    // One host's VMs in the shape of `vmpulse --once --format json`.
    let vms = fleet(b, "3", &["--host", "hv-a"]);
    let names: Vec<String> = vms
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["vm-000", "vm-001", "vm-002"]);
    let csv = fleet(b, "3", &["--format", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");

    stop(hv_b);
    std::thread::sleep(Duration::from_secs(5));
    let r = rows(b, "3");
    let gone = row(&r, "hv-b").expect("a stopped host stays listed");
    assert_eq!(gone["stale"], true, "{gone}");
    assert!(gone["age_seconds"].as_f64().unwrap() > 3.0, "{gone}");
    assert_eq!(gone["vms_total"], 2, "{gone}");
    assert_eq!(row(&r, "hv-a").unwrap()["stale"], false);
    assert_eq!(r[0]["host"], "hv-b", "stale sorts before live: {r:?}");
    stop(a);
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x (Debian influxdb): cargo test --features system-tests"
)]
fn fleet_on_influxd_1x() {
    let influx = common::InfluxD::start();
    influx.create_db("fleet");
    let b = Backend {
        url: influx.url.clone(),
        api: "v1",
        db: "fleet",
    };
    fleet_lists_both_hosts_and_a_stopped_one_turns_stale(&b);
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs InfluxDB 3 Core (VMPULSE_INFLUXDB3): cargo test --features system-tests"
)]
fn fleet_on_influxdb3() {
    let Some(influx) = common::InfluxDb3::start_if_present("fleet_on_influxdb3") else {
        return;
    };
    let b = Backend {
        url: influx.url.clone(),
        api: "v3",
        db: "fleet",
    };
    fleet_lists_both_hosts_and_a_stopped_one_turns_stale(&b);
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs InfluxDB 3 Core (VMPULSE_INFLUXDB3): cargo test --features system-tests"
)]
fn writer_on_influxdb3_writes_every_line_and_names_exactly() {
    let Some(influx) = common::InfluxDb3::start_if_present("writer_on_influxdb3") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fixture = format!(
        "test://{}/tests/fixtures/e2e-host.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args([
            "--no-ui",
            "--connect",
            &fixture,
            "--influx-url",
            &influx.url,
        ])
        .args([
            "--influx-api",
            "v3",
            "--influx-db",
            "w3",
            "--poll-interval",
            "0.5",
        ])
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("SPOOL_DIR", dir.path().join("spool"))
        .env("VMPULSE_SOCKET", dir.path().join("vmpulse.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    std::thread::sleep(Duration::from_secs(4));
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait for vmpulse");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    let written = counter(&log, "lines_written");
    assert!(written > 0, "{log}");
    assert_eq!(written, counter(&log, "lines_queued"), "{log}");
    assert_eq!(
        counter(&log, "lines_dropped") + counter(&log, "lines_rejected"),
        0,
        "{log}"
    );
    let count = |table: &str| -> u64 {
        influx.sql("w3", &format!("SELECT COUNT(*) AS n FROM {table}"))[0]["n"]
            .as_u64()
            .unwrap_or(0)
    };
    // Every measurement that may hold a line (InfluxDB 3 answers a table no line
    // created with an error, so only the tables it lists are counted).
    let tables = influx.sql("w3", "SHOW TABLES");
    let present: Vec<&str> = tables
        .iter()
        .filter_map(|r| r["table_name"].as_str())
        .collect();
    let stored: u64 = [
        "vm_metrics",
        "vm_features",
        "vm_devices",
        "vm_totals",
        "vm_jobs",
        "vm_alerts",
        "hypervisor",
        "hypervisor_numa",
        "hypervisor_hugepages",
    ]
    .iter()
    .filter(|t| present.contains(t))
    .map(|t| count(t))
    .sum();
    assert_eq!(
        stored, written,
        "every line written is stored, one point per line"
    );
    let collections = counter(&log, "collections");
    assert_eq!(
        count("vm_metrics"),
        2 * collections,
        "one point per VM per collection"
    );
    let names: Vec<String> = influx
        .sql("w3", "SELECT DISTINCT name FROM vm_metrics ORDER BY name")
        .iter()
        .filter_map(|r| r["name"].as_str().map(String::from))
        .collect();
    assert_eq!(names, ["db-1", r#"web 01,env=prod "x"\y"#]);
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x and tmux: cargo test --features system-tests"
)]
fn fleet_screen_in_tmux_lists_both_hosts_and_opens_one() {
    let influx = common::InfluxD::start();
    influx.create_db("fleet");
    let b = Backend {
        url: influx.url.clone(),
        api: "v1",
        db: "fleet",
    };
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = service(&b, "hv-a", 3, da.path());
    let hv_b = service(&b, "hv-b", 2, db.path());
    let home = tempfile::tempdir().unwrap();
    let script = format!(
        "env -u INFLUX_TOKEN -u VMPULSE_CONFIG -u NO_COLOR LANG=C.UTF-8 HOME='{home}' XDG_CONFIG_HOME='{home}' \
         VMPULSE_FLEET_REFRESH=0.5 '{bin}' --influx-url {url} --influx-api v1 --influx-db fleet fleet; \
         echo \"vmpulse-exit=$?\"; sleep 120",
        home = home.path().display(),
        bin = env!("CARGO_BIN_EXE_vmpulse"),
        url = b.url,
    );
    let pane = common::tmux::Pane::start("fleet", &script);
    let has_row =
        |s: &str, host: &str, vms: &str| s.lines().any(|l| l.starts_with(host) && l.contains(vms));
    pane.wait_for("both hosts with their VMs", 30, |s| {
        has_row(s, "hv-a", "3/3") && has_row(s, "hv-b", "2/2")
    });
    // Both live and calm: by name, hv-a is selected first.
    pane.keys(&["Enter"]);
    pane.wait_for("hv-a's VMs in the live view's cards", 20, |s| {
        s.contains("from InfluxDB")
            && s.contains("vm-000")
            && s.contains("vm-002")
            && !s.contains("vm-003")
    });
    pane.keys(&["Escape"]);
    pane.wait_for("the host list again", 20, |s| {
        s.contains("vmpulse fleet") && has_row(s, "hv-b", "2/2")
    });
    pane.keys(&["q"]);
    pane.wait_for("exit 0", 20, |s| s.contains("vmpulse-exit=0"));
    stop(hv_b);
    stop(a);
}
