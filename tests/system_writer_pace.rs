//! The writer's pace against a real InfluxDB 3 that acknowledges slowly on
//! purpose (a 3 s WAL flush): a few hundred test-driver VMs make more lines
//! than one request of 500 lines per acknowledgement carries, so the writer
//! must raise its requests in flight and its batch lines. The queue stays
//! bounded, nothing is dropped, and every line queued is written and stored.
//! Skipped unless `VMPULSE_INFLUXDB3` names the `influxdb3` binary.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::final_counter as counter;

/// Test-driver VMs: 5 lines each per collection (one disk, one NIC).
const VMS: usize = 300;
/// How long vmpulse collects before it is stopped.
const RUN: Duration = Duration::from_secs(40);

/// `GET /status` of the control API on its Unix socket, or `None` while it
/// does not answer yet.
fn status(sock: &Path) -> Option<serde_json::Value> {
    let mut s = UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /status HTTP/1.1\r\nHost: vmpulse\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let (_, body) = text.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// The writer's figures seen over the run.
#[derive(Default, Debug)]
struct Seen {
    max_in_flight_limit: u64,
    max_batch_lines: u64,
    max_depth: u64,
    samples: usize,
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs InfluxDB 3 Core (VMPULSE_INFLUXDB3): cargo test --features system-tests"
)]
fn slow_acknowledgements_raise_the_pace_and_lose_nothing() {
    let Some(influx) = common::InfluxDb3::start_if_present_with(
        "slow_acknowledgements_raise_the_pace",
        &["--wal-flush-interval", "3s"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let uri = common::test_driver_host(dir.path(), VMS);
    let cfg = dir.path().join("config.toml");
    // One request of 500 lines per 3 s acknowledgement carries ~170 lines/s;
    // 300 VMs every 0.5 s make ~3,000.
    std::fs::write(
        &cfg,
        "[influx]\nmax_in_flight = 1\nbatch_max_lines = 500\nmax_queue = 50000\n",
    )
    .unwrap();
    let sock = dir.path().join("vmpulse.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args(["--no-ui", "--config"])
        .arg(&cfg)
        .args(["--connect", &uri, "--influx-url", &influx.url])
        .args(["--influx-api", "v3", "--influx-db", "pace"])
        .args(["--poll-interval", "0.5"])
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("SPOOL_DIR", dir.path().join("spool"))
        .env("VMPULSE_SOCKET", &sock)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");

    let mut seen = Seen::default();
    let end = Instant::now() + RUN;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        let Some(s) = status(&sock) else { continue };
        let w = &s["writer"];
        let n = |k: &str| w[k].as_u64().unwrap_or_else(|| panic!("{k} in {w}"));
        assert_eq!(n("lines_dropped"), 0, "{w}");
        seen.max_in_flight_limit = seen.max_in_flight_limit.max(n("requests_in_flight_limit"));
        seen.max_batch_lines = seen.max_batch_lines.max(n("batch_lines_limit"));
        let backlog = n("queue_depth") + w["spool"]["lines"].as_u64().unwrap_or(0);
        seen.max_depth = seen.max_depth.max(backlog);
        seen.samples += 1;
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait for vmpulse");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(seen.samples > 20, "the control API answered: {seen:?}");
    assert!(
        seen.max_in_flight_limit > 1 && seen.max_batch_lines > 500,
        "the writer raised its figures: {seen:?}\n{log}"
    );
    // Bounded: never more than a few acknowledgements' worth of lines (~3,000 lines/s).
    assert!(seen.max_depth < 25_000, "backlog bounded: {seen:?}");

    let queued = counter(&log, "lines_queued");
    let written = counter(&log, "lines_written");
    assert!(queued > 30_000, "{log}");
    assert_eq!(written, queued, "{log}");
    assert_eq!(counter(&log, "lines_dropped"), 0, "{log}");
    assert_eq!(counter(&log, "lines_rejected"), 0, "{log}");
    assert_eq!(counter(&log, "unaccounted"), 0, "{log}");
    let tables = influx.sql("pace", "SHOW TABLES");
    let stored: u64 = tables
        .iter()
        .filter(|r| r["table_schema"] == "iox")
        .filter_map(|r| r["table_name"].as_str())
        .map(|t| {
            influx.sql("pace", &format!("SELECT COUNT(*) AS n FROM \"{t}\""))[0]["n"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(stored, written, "every line written is stored: {seen:?}");
}
