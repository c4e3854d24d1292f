//! The README's InfluxQL examples ("Querying the data") against a real influxd 1.x,
//! after two real `vmpulse --no-ui` runs posing as two hypervisors. The queries are
//! read from README.md, so the documentation cannot drift from what works.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

/// Every ```influxql block of the README's "Querying the data" section, in order.
fn readme_queries() -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## Querying the data")
        .expect("README has a 'Querying the data' section");
    let section = &readme[start..];
    let end = section[3..].find("\n## ").map_or(section.len(), |i| i + 3);
    let mut out = Vec::new();
    let mut lines = section[..end].lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```influxql" {
            let body: Vec<&str> = lines
                .by_ref()
                .take_while(|l| l.trim() != "```")
                .map(str::trim)
                .collect();
            out.push(body.join(" "));
        }
    }
    out
}

/// Runs vmpulse for a few seconds as hypervisor `host`, writing to `vmstats` over the v1 API.
fn collect_as(influx: &common::InfluxD, host: &str, dir: &std::path::Path) {
    let config = dir.join(format!("{host}.toml"));
    std::fs::write(&config, format!("host = \"{host}\"\n")).expect("write config");
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
        .args(["--influx-api", "v1", "--poll-interval", "0.5", "--config"])
        .arg(&config)
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        // Its own spool: as root the default one is shared with every other run.
        .env("SPOOL_DIR", dir.join(format!("spool-{host}")))
        .env("VMPULSE_SOCKET", dir.join(format!("vmpulse-{host}.sock")))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait for vmpulse");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("unsent=0"), "{stderr}");
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn readme_influxql_examples_return_rows() {
    let queries = readme_queries();
    assert!(
        queries.len() >= 7,
        "expected the README's examples: {queries:#?}"
    );
    let influx = common::InfluxD::start();
    influx.create_db("vmstats");
    let dir = tempfile::tempdir().expect("temp dir");
    collect_as(&influx, "hv-a", dir.path());
    collect_as(&influx, "hv-b", dir.path());

    let mut selects = 0;
    for q in &queries {
        let v = influx.query("vmstats", q);
        let result = &v["results"][0];
        assert!(result.get("error").is_none(), "{q}\n→ {v}");
        if !q.starts_with("SELECT") {
            continue;
        }
        selects += 1;
        let series = result["series"]
            .as_array()
            .unwrap_or_else(|| panic!("no rows for {q}\n→ {v}"));
        assert!(
            series
                .iter()
                .all(|s| !s["values"].as_array().is_none_or(Vec::is_empty)),
            "empty series for {q}\n→ {v}"
        );
        if q.contains("GROUP BY \"host\", \"name\" ORDER BY") {
            // Latest point per VM: two hypervisors × two VMs.
            assert_eq!(series.len(), 4, "{q}\n→ {v}");
        }
        if q.contains("TOP(") {
            // Only four VMs exist, so the top 10 holds all of them.
            assert_eq!(series[0]["values"].as_array().map(Vec::len), Some(4), "{v}");
        }
        if q.ends_with("GROUP BY \"host\"") {
            let hosts: Vec<&str> = series
                .iter()
                .filter_map(|s| s["tags"]["host"].as_str())
                .collect();
            assert_eq!(hosts, ["hv-a", "hv-b"], "{v}");
            for s in series {
                assert_eq!(s["values"][0][1], 2, "two VMs per host: {v}");
            }
        }
    }
    assert_eq!(selects, 4, "{queries:#?}");
}
