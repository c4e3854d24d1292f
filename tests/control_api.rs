//! The control API of a real `vmpulse --no-ui` (libvirt test driver, socket in
//! a temp dir; no root, no daemons): every endpoint with its exact JSON
//! fields, stop/start seen in the `--output` lines, the poll interval
//! changing the pace, bad requests answered with their codes while
//! collection goes on, `/metrics` parsed by a Prometheus text parser and equal
//! to `/status`, `vmpulse status|start|stop` exit codes, SIGHUP reload, a
//! second service refused, and the TUI's attach engine following a service
//! that stops and comes back.

mod control_support;

use std::sync::Arc;
use std::time::Duration;

use control_support::*;
use vmpulse::engine::Control;
use vmpulse::model::{Origin, Snapshot};
use vmpulse::ui::Engine;

const WEB_UUID: &str = "11111111-2222-3333-4444-000000000001";

#[test]
fn every_endpoint_answers_with_its_exact_fields() {
    let svc = Service::start(&["--poll-interval", "0.2"]);
    let status = svc.get_json("/status");
    assert_eq!(
        keys(&status),
        sorted(&[
            "running",
            "pid",
            "version",
            "started_at",
            "uptime_seconds",
            "total_collections",
            "total_errors",
            "skipped_items",
            "last_collection_time",
            "last_collection_duration_ms",
            "last_error",
            "vms_monitored",
            "influx_queue_size",
            "poll_interval",
            "libvirt",
            "writer",
            "health",
            "config",
            "alerts",
        ])
    );
    assert_eq!(status["running"], true);
    assert_eq!(status["pid"], svc.pid());
    assert_eq!(status["vms_monitored"], 2);
    assert_eq!(status["poll_interval"], 0.2);
    assert!(status["started_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(keys(&status["libvirt"]), sorted(&["uri", "state", "error"]));
    assert_eq!(status["libvirt"]["state"], "connected");
    assert_eq!(status["libvirt"]["uri"], fixture_uri());
    assert_eq!(
        keys(&status["writer"]),
        sorted(&[
            "state",
            "endpoint",
            "lines_queued",
            "lines_written",
            "lines_dropped",
            "lines_rejected",
            "write_retries",
            "queue_depth",
            "queue_capacity",
            "requests_in_flight",
            "requests_in_flight_limit",
            "batch_lines_limit",
            "lines_in_flight",
            "lines_recovered",
            "lines_unaccounted",
            "last_write_ok",
            "last_error",
            "last_error_at",
            "spool",
        ])
    );
    assert_eq!(
        keys(&status["health"]),
        sorted(&[
            "state",
            "problems",
            "last_write_ok_age_seconds",
            "write_stale_after_seconds",
            "spool_backlog_lines",
            "spool_growing",
        ])
    );
    assert_eq!(status["health"]["state"], "ok");
    assert_eq!(status["writer"]["lines_unaccounted"], 0);
    assert_eq!(status["writer"]["state"], "output");
    // --output never spools.
    assert_eq!(status["writer"]["spool"], serde_json::Value::Null);
    assert_eq!(status["config"]["collector"]["poll_interval"], 0.2);

    let vms = svc.get_json("/vms");
    assert_eq!(keys(&vms), sorted(&["count", "vms"]));
    assert_eq!(vms["count"], 2);
    let vm_fields = [
        "id",
        "name",
        "uuid",
        "tags",
        "state",
        "cpu_count",
        "memory_max",
        "memory_used",
        "cputime",
        "memory_rate_kb_per_sec",
        "memory_angle_deg",
        "cpu_usage_percent",
        "cpu_guest_percent",
        "cpu_overhead_percent",
        "cpu_steal_percent",
        "memory_usage_percent",
        "cpu_angle_deg",
        "memory_percent_angle_deg",
        "disk_read_bytes_per_sec",
        "disk_write_bytes_per_sec",
        "disk_read_req_per_sec",
        "disk_write_req_per_sec",
        "net_rx_bytes_per_sec",
        "net_tx_bytes_per_sec",
        "net_rx_packets_per_sec",
        "net_tx_packets_per_sec",
        "disk_angle_deg",
        "disk_read_angle_deg",
        "disk_write_angle_deg",
        "net_rx_angle_deg",
        "net_tx_angle_deg",
        "memory_source",
        "disk_read_latency_ms",
        "disk_write_latency_ms",
        "disk_flush_latency_ms",
        "net_drops_per_sec",
    ];
    let web = vms["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["uuid"] == WEB_UUID)
        .expect("the hostile-named VM");
    assert_eq!(keys(web), sorted(&vm_fields));
    assert_eq!(
        web["tags"],
        serde_json::json!({}),
        "no metadata tags configured"
    );
    assert_eq!(web["name"], r#"web 01,env=prod "x"\y"#);
    assert_eq!(web["state"], "running");
    assert_eq!(web["cpu_count"], 2);
    assert_eq!(web["memory_max"], 1_048_576);

    // Derived values need two samples: wait for them.
    let detail = wait_until("derived values", 10, || {
        let d = svc.get_json(&format!("/vms/{WEB_UUID}"));
        d["cpu_usage_percent"].is_number().then_some(d)
    });
    let mut detail_fields = vm_fields.to_vec();
    detail_fields.extend(["disks", "nics", "vcpu_percent", "jobs"]);
    assert_eq!(keys(&detail), sorted(&detail_fields));
    let disks = detail["disks"].as_array().unwrap();
    assert_eq!(disks.len(), 2, "{detail}");
    assert_eq!(
        keys(&disks[0]),
        sorted(&[
            "name",
            "disk_read_bytes_per_sec",
            "disk_read_req_per_sec",
            "disk_write_bytes_per_sec",
            "disk_write_req_per_sec",
            "disk_read_latency_ms",
            "disk_write_latency_ms",
            "disk_flush_latency_ms"
        ])
    );
    // The test driver has no job calls: no job, ever.
    assert_eq!(detail["jobs"], serde_json::json!([]), "{detail}");
    let nics = detail["nics"].as_array().unwrap();
    assert_eq!(nics.len(), 2);
    assert_eq!(
        keys(&nics[0]),
        sorted(&[
            "name",
            "net_rx_bytes_per_sec",
            "net_rx_packets_per_sec",
            "net_tx_bytes_per_sec",
            "net_tx_packets_per_sec"
        ])
    );

    let h = svc.get_json(&format!("/history/{WEB_UUID}?minutes=1"));
    assert_eq!(keys(&h), sorted(&["uuid", "minutes", "samples"]));
    assert_eq!(h["minutes"], 1.0);
    let samples = h["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{h}");
    assert_eq!(
        keys(&samples[0]),
        sorted(&[
            "time",
            "cpu_usage_percent",
            "memory_usage_percent",
            "disk_bytes_per_sec",
            "net_bytes_per_sec",
            "net_rx_bytes_per_sec",
            "net_tx_bytes_per_sec"
        ])
    );
    // Asking for more than is kept returns what is kept.
    assert_eq!(
        svc.get_json(&format!("/history/{WEB_UUID}?minutes=999"))["minutes"],
        5.0
    );

    let config = svc.get_json("/config");
    assert_eq!(keys(&config), ["config"]);
    assert_eq!(
        keys(&config["config"]),
        sorted(&[
            "host",
            "libvirt",
            "collector",
            "influx",
            "rates",
            "ui",
            "tags",
            "output",
            "control",
            "spool",
            "alerts",
            "fleet"
        ])
    );
    assert_eq!(
        config["config"]["alerts"]["cpu_steal_percent"]["warning"], 20.0,
        "the alert levels in force"
    );
    assert_eq!(
        config["config"]["control"]["socket"],
        svc.socket.display().to_string()
    );

    let lines = snapshot_lines(&svc.socket, 2);
    let first: Snapshot = serde_json::from_str(&lines[0]).expect("a snapshot per line");
    let second: Snapshot = serde_json::from_str(&lines[1]).expect("a snapshot per line");
    assert_eq!(first.vms.len(), 2);
    assert!(second.seq > first.seq);

    let metrics = svc.req("GET", "/metrics", b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));

    for (method, path) in [("POST", "/stop"), ("POST", "/start")] {
        let r = svc.req(method, path, b"");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(
            keys(&r.json()),
            keys(&status),
            "{path} answers with the status"
        );
    }
    let r = svc.req("PUT", "/poll-interval", br#"{"seconds": 0.5}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["poll_interval"], 0.5);
    let (code, _) = svc.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn stop_and_start_show_in_the_output_lines_and_interval_sets_the_pace() {
    let svc = Service::start(&["--poll-interval", "1"]);
    let stopped = svc.req("POST", "/stop", b"").json();
    assert_eq!(stopped["running"], false);
    // Let the flush that follows a stop finish, then nothing more arrives.
    wait_until("the flush after stop", 10, || {
        (svc.get_json("/status")["writer"]["queue_depth"] == 0).then_some(())
    });
    let frozen = svc.output_lines();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(svc.output_lines(), frozen, "lines written while stopped");
    assert_eq!(svc.pace(Duration::from_millis(1200)), 0);

    let started = svc.req("POST", "/start", b"").json();
    assert_eq!(started["running"], true);
    wait_until("lines after start", 10, || {
        (svc.output_lines() > frozen).then_some(())
    });

    // 1 s interval: at most a few cycles in 2 s; 0.1 s: many.
    let slow = svc.pace(Duration::from_secs(2));
    assert!(slow <= 4, "{slow} collections in 2 s at 1 s");
    let r = svc.req("PUT", "/poll-interval", br#"{"seconds": 0.1}"#);
    assert_eq!(r.json()["poll_interval"], 0.1);
    // The configuration served is the one in force.
    assert_eq!(r.json()["config"]["collector"]["poll_interval"], 0.1);
    let config = svc.get_json("/config");
    assert_eq!(
        config["config"]["collector"]["poll_interval"], 0.1,
        "{config}"
    );
    let fast = svc.pace(Duration::from_secs(2));
    assert!(fast >= 8, "{fast} collections in 2 s at 0.1 s");
}

#[test]
fn bad_requests_get_their_codes_and_collection_goes_on() {
    let svc = Service::start(&["--poll-interval", "0.2"]);
    let before = svc.collections();
    let big = vec![b'7'; 64 * 1024];
    let cases: [(&str, &str, &[u8], u16); 11] = [
        ("GET", "/nope", b"", 404),
        ("GET", "/vms/no-such-uuid", b"", 404),
        ("GET", "/history/no-such-uuid", b"", 404),
        ("DELETE", "/status", b"", 405),
        ("GET", "/start", b"", 405),
        ("POST", "/poll-interval", br#"{"seconds": 1}"#, 405),
        ("PUT", "/poll-interval", b"{not json", 400),
        ("PUT", "/poll-interval", br#"{"seconds": 0}"#, 400),
        ("PUT", "/poll-interval", br#"{"seconds": "fast"}"#, 400),
        (
            "GET",
            "/history/11111111-2222-3333-4444-000000000001?minutes=x",
            b"",
            400,
        ),
        ("PUT", "/poll-interval", &big, 413),
    ];
    for (method, path, body, code) in cases {
        let r = svc.req(method, path, body);
        assert_eq!(r.status, code, "{method} {path}: {}", r.body);
        let err = r.json();
        assert!(
            err["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{method} {path}: {err}"
        );
        assert_eq!(err["status"], code);
    }
    // Garbage that is not HTTP at all.
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&svc.socket).unwrap();
        let _ = s.write_all(b"\x00\x01garbage\r\n\r\n");
    }
    let status = svc.get_json("/status");
    assert_eq!(status["running"], true);
    assert_eq!(status["poll_interval"], 0.2, "bad bodies changed nothing");
    wait_until("collection to go on", 10, || {
        (svc.collections() >= before + 3).then_some(())
    });
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn metrics_parse_as_prometheus_text_and_equal_status() {
    let svc = Service::start(&["--poll-interval", "0.2"]);
    svc.req("POST", "/stop", b"");
    // Stopped and flushed: counters no longer move.
    wait_until("the flush after stop", 10, || {
        (svc.get_json("/status")["writer"]["queue_depth"] == 0).then_some(())
    });
    let status = svc.get_json("/status");
    let text = svc.req("GET", "/metrics", b"").body;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    let value = |name: &str| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    let n = |v: &serde_json::Value| v.as_f64().unwrap();
    let w = &status["writer"];
    for (metric, expected) in [
        ("vmpulse_collections_total", n(&status["total_collections"])),
        (
            "vmpulse_collection_errors_total",
            n(&status["total_errors"]),
        ),
        ("vmpulse_skipped_items_total", n(&status["skipped_items"])),
        ("vmpulse_vms", n(&status["vms_monitored"])),
        ("vmpulse_poll_interval_seconds", n(&status["poll_interval"])),
        ("vmpulse_collecting", 0.0),
        ("vmpulse_libvirt_connected", 1.0),
        ("vmpulse_lines_queued_total", n(&w["lines_queued"])),
        ("vmpulse_lines_written_total", n(&w["lines_written"])),
        ("vmpulse_lines_dropped_total", n(&w["lines_dropped"])),
        ("vmpulse_lines_rejected_total", n(&w["lines_rejected"])),
        ("vmpulse_write_retries_total", n(&w["write_retries"])),
        ("vmpulse_queue_depth", n(&w["queue_depth"])),
        ("vmpulse_queue_capacity", n(&w["queue_capacity"])),
        ("vmpulse_spool_bytes", 0.0),
        ("vmpulse_spool_lines", 0.0),
        ("vmpulse_lines_in_flight", n(&w["lines_in_flight"])),
        ("vmpulse_requests_in_flight", n(&w["requests_in_flight"])),
        (
            "vmpulse_requests_in_flight_limit",
            n(&w["requests_in_flight_limit"]),
        ),
        ("vmpulse_batch_lines_limit", n(&w["batch_lines_limit"])),
        (
            "vmpulse_spool_lines_recovered_total",
            n(&w["lines_recovered"]),
        ),
        ("vmpulse_lines_unaccounted", 0.0),
        (
            "vmpulse_last_collection_duration_seconds",
            n(&status["last_collection_duration_ms"]) / 1000.0,
        ),
    ] {
        // Equal, up to the last bit of a ms -> s division.
        let got = value(metric);
        assert!(
            (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
            "{metric}: {got} vs {expected}"
        );
    }
    assert!(value("vmpulse_collections_total") >= 1.0);
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.metric.starts_with("vmpulse_vm_")),
        "per-VM series are off by default"
    );
}

#[test]
fn status_subcommand_exit_codes_and_start_stop() {
    let svc = Service::start(&["--poll-interval", "0.2"]);
    let sock = svc.socket.to_str().unwrap().to_string();
    let out = run(&["status", "--socket", &sock]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains(&format!("pid {}", svc.pid())), "{text}");
    assert!(text.contains("collecting"), "{text}");

    let out = run(&["stop", "--socket", &sock]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped"));
    let out = run(&["status", "--json", "--socket", &sock]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json");
    assert_eq!(json["running"], false);
    assert_eq!(json["pid"], svc.pid());

    let out = run(&["start", "--socket", &sock]);
    assert_eq!(out.status.code(), Some(0));
    // VMPULSE_SOCKET is read too.
    let out = command(&["status"])
        .env("VMPULSE_SOCKET", &sock)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    let (code, _) = svc.stop();
    assert_eq!(code, Some(0));
    assert!(
        !std::path::Path::new(&sock).exists(),
        "socket removed at exit"
    );
    let out = run(&["status", "--socket", &sock]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no vmpulse service answers on"), "{err}");
    assert_eq!(run(&["stop", "--socket", &sock]).status.code(), Some(7));
}

#[test]
fn second_service_on_a_live_socket_is_refused_naming_the_pid() {
    let svc = Service::start(&[]);
    let out = command(&[
        "--no-ui",
        "--connect",
        &fixture_uri(),
        "--socket",
        svc.socket.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("pid {}", svc.pid())), "{err}");
    assert!(
        !err.contains("connected to libvirt"),
        "no second collector: {err}"
    );
    // The first one is untouched.
    assert_eq!(svc.get_json("/status")["running"], true);
}

#[test]
fn stale_socket_from_a_crashed_run_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vmpulse.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let svc = Service::start_in(dir, &[], &[]);
    assert_eq!(svc.get_json("/status")["pid"], svc.pid());
    assert!(
        svc.log().contains("replacing stale control socket"),
        "{}",
        svc.log()
    );
}

#[test]
fn sighup_rereads_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vmpulse.toml");
    std::fs::write(
        &cfg,
        "[collector]\npoll_interval = 1.0\n[influx]\nmax_queue = 20000\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap().to_string();
    let svc = Service::start_in(dir, &["--config", &cfg_s], &[]);
    let slow = svc.pace(Duration::from_secs(2));
    assert!(slow <= 4, "{slow} collections in 2 s at 1 s");
    std::fs::write(
        &cfg,
        "[collector]\npoll_interval = 0.1\n[influx]\nmax_queue = 30000\n",
    )
    .unwrap();
    svc.signal(libc::SIGHUP);
    wait_until("the new interval", 10, || {
        (svc.get_json("/status")["poll_interval"] == 0.1).then_some(())
    });
    let fast = svc.pace(Duration::from_secs(2));
    assert!(
        fast >= 8,
        "{fast} collections in 2 s after SIGHUP set 0.1 s"
    );
    let log = svc.log();
    assert!(
        log.contains("collector.poll_interval changed (1.0 -> 0.1), applied"),
        "{log}"
    );
    assert!(
        log.contains("only taking effect after a restart: influx.max_queue (20000 -> 30000)"),
        "{log}"
    );
    assert_eq!(
        svc.get_json("/config")["config"]["collector"]["poll_interval"],
        0.1
    );
    // A broken file keeps the running config.
    std::fs::write(&cfg, "[collector]\npoll_interval = = 1\n").unwrap();
    svc.signal(libc::SIGHUP);
    wait_until("the reload error", 10, || {
        svc.log()
            .contains("configuration not reloaded")
            .then_some(())
    });
    assert_eq!(svc.get_json("/status")["poll_interval"], 0.1);
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn token_file_rotates_on_sighup_and_secrets_stay_out_of_errors_and_warnings() {
    use std::os::unix::fs::PermissionsExt;
    const FIRST: &str = "ctl-FIRST-9f1e";
    const SECOND: &str = "ctl-SECOND-77ab";
    const INFLUX: &str = "infl-SECRET-31c4";
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let token_file = creds.join("control-token");
    std::fs::write(&token_file, format!("{FIRST}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let cfg = dir.path().join("vmpulse.toml");
    let text = format!(
        "[influx]\ntoken = \"{INFLUX}\"\n[control]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"control-token\"\n"
    );
    std::fs::write(&cfg, &text).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let cfg_s = cfg.to_str().unwrap().to_string();
    let creds_s = creds.to_str().unwrap().to_string();
    let svc = Service::start_in(
        dir,
        &["--config", &cfg_s],
        &[("CREDENTIALS_DIRECTORY", creds_s.as_str())],
    );
    let status_with = |token: &str| {
        let auth = format!("Bearer {token}");
        tcp_request(port, "GET", "/status", &[("Authorization", &auth)], b"")
            .expect("TCP request")
            .status
    };
    assert_eq!(status_with(FIRST), 200);
    assert_eq!(status_with(SECOND), 401);
    let log = svc.log();
    assert!(
        log.contains("holds influx.token") && log.contains("chmod 600"),
        "{log}"
    );

    // Rotation: a new token in the file, then SIGHUP (systemctl reload).
    std::fs::write(&token_file, format!("{SECOND}\n")).unwrap();
    svc.signal(libc::SIGHUP);
    wait_until("the new token", 10, || {
        (status_with(SECOND) == 200).then_some(())
    });
    assert_eq!(status_with(FIRST), 401);
    let log = svc.log();
    assert!(
        log.contains("control.token changed (*** -> ***), applied"),
        "{log}"
    );
    assert!(
        log.contains("SIGHUP: config file"),
        "warning on reload too: {log}"
    );

    // A syntax error on a token's line: the reload error names line and
    // column, never the line itself.
    std::fs::write(&cfg, format!("[influx]\ntoken = {INFLUX}\n")).unwrap();
    svc.signal(libc::SIGHUP);
    wait_until("the reload error", 10, || {
        svc.log()
            .contains("configuration not reloaded")
            .then_some(())
    });
    assert!(svc.log().contains("line 2, column 9"), "{}", svc.log());
    assert_eq!(status_with(SECOND), 200, "the running config stays");
    // Both a token and its file: refused, naming both.
    let out = command(&["--print-config"])
        .env("VMPULSE_CONTROL_TOKEN", INFLUX)
        .env("VMPULSE_CONTROL_TOKEN_FILE", "/dev/null")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("control.token and control.token_file are both set"),
        "{err}"
    );
    assert!(!err.contains(INFLUX), "{err}");
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
    for secret in [FIRST, SECOND, INFLUX] {
        assert!(!log.contains(secret), "{secret} in the log: {log}");
    }
}

async fn latest_where(
    rx: &mut tokio::sync::watch::Receiver<Arc<Snapshot>>,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    match tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| pred(s))).await {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("timed out waiting for {what}"),
    }
}

#[test]
fn attach_follows_the_service_steers_it_and_reattaches_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vmpulse.sock");
    let svc = Service::start_at(
        tempfile::tempdir().unwrap(),
        socket.clone(),
        &["--poll-interval", "0.2"],
        &[],
    );
    let first_pid = svc.pid();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let attached = vmpulse::remote::attach::Attached::connect(&socket)
            .await
            .expect("attach");
        let mut rx = attached.subscribe();
        let snap = latest_where(&mut rx, "VMs from the service", |s| s.vms.len() == 2).await;
        assert!(
            matches!(snap.origin, Origin::Attached { pid, .. } if pid == first_pid),
            "{:?}",
            snap.origin
        );
        attached.send(Control::Stop);
        latest_where(&mut rx, "collection stopped", |s| !s.collecting).await;
        attached.send(Control::SetPollInterval(Duration::from_millis(500)));
        latest_where(&mut rx, "the new interval", |s| {
            s.poll_interval == Duration::from_millis(500)
        })
        .await;
        attached.send(Control::Start);
        latest_where(&mut rx, "collection started", |s| s.collecting).await;

        let (code, _) = svc.stop();
        assert_eq!(code, Some(0));
        latest_where(
            &mut rx,
            "service gone",
            |s| matches!(s.origin, Origin::Gone { pid, .. } if pid == first_pid),
        )
        .await;

        // A new service on the same socket path: the attached TUI finds it again.
        let again = Service::start_at(tempfile::tempdir().unwrap(), socket.clone(), &[], &[]);
        let snap = latest_where(
            &mut rx,
            "reattached",
            |s| matches!(s.origin, Origin::Attached { pid, .. } if pid == again.pid()),
        )
        .await;
        assert_eq!(snap.vms.len(), 2);
        // Detaching leaves the service running and collecting.
        let report = attached.shutdown().await;
        let _ = report;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = unix_request(&socket, "GET", "/status", &[], b"")
            .unwrap()
            .json();
        assert_eq!(status["running"], true);
        drop(again);
    });
}

#[test]
fn tcp_listener_needs_the_token_which_never_shows() {
    const TOKEN: &str = "ctl-S3CRET-token-4711";
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    // Refused at validation without a token, naming the setting.
    let out = command(&["--no-ui", "--connect", &fixture_uri()])
        .env("VMPULSE_CONTROL_LISTEN", &listen)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("VMPULSE_CONTROL_LISTEN") && err.contains("token"),
        "{err}"
    );

    let svc = Service::start_in(
        tempfile::tempdir().unwrap(),
        &["--poll-interval", "0.2"],
        &[
            ("VMPULSE_CONTROL_LISTEN", listen.as_str()),
            ("VMPULSE_CONTROL_TOKEN", TOKEN),
        ],
    );
    let get = |headers: &[(&str, &str)], path: &str| {
        tcp_request(port, "GET", path, headers, b"").expect("TCP request")
    };
    let none = get(&[], "/status");
    assert_eq!(none.status, 401, "{}", none.body);
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Bearer"));
    assert!(none.json()["error"].is_string());
    let wrong = get(
        &[("Authorization", "Bearer ctl-S3CRET-token-4712")],
        "/status",
    );
    assert_eq!(wrong.status, 401);
    let short = get(&[("Authorization", "Bearer x")], "/metrics");
    assert_eq!(short.status, 401);
    let basic = get(&[("Authorization", &format!("Basic {TOKEN}"))], "/status");
    assert_eq!(basic.status, 401);

    let auth = format!("Bearer {TOKEN}");
    let ok = get(&[("Authorization", &auth)], "/status");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["pid"], svc.pid());
    let metrics = get(&[("Authorization", &auth)], "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("vmpulse_collections_total"));
    let unknown = get(&[("Authorization", &auth)], "/nope");
    assert_eq!(unknown.status, 404);

    // The token is nowhere: not in /config, /status, errors or the log.
    let config = svc.get_json("/config");
    assert_eq!(config["config"]["control"]["token"], "***");
    assert_eq!(config["config"]["control"]["listen"], listen);
    for body in [
        config.to_string(),
        svc.get_json("/status").to_string(),
        ok.body,
        none.body,
        wrong.body,
        svc.req("PUT", "/poll-interval", TOKEN.as_bytes()).body,
    ] {
        assert!(!body.contains(TOKEN), "{body}");
    }
    let print = command(&["--print-config"])
        .env("VMPULSE_CONTROL_LISTEN", &listen)
        .env("VMPULSE_CONTROL_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&print.stdout).contains(TOKEN));
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("bearer token required"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}

#[test]
fn per_vm_metrics_and_internal_points_when_enabled() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vmpulse.toml");
    std::fs::write(
        &cfg,
        "[collector]\nstatus_interval = 0.5\n[control]\nmetrics_per_vm = true\ninternal_metrics = true\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap().to_string();
    let svc = Service::start_in(dir, &["--config", &cfg_s, "--poll-interval", "0.2"], &[]);
    let text = svc.req("GET", "/metrics", b"").body;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    let cpu: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "vmpulse_vm_vcpus")
        .collect();
    assert_eq!(cpu.len(), 2, "{text}");
    let web = cpu
        .iter()
        .find(|s| s.labels.get("uuid") == Some(WEB_UUID))
        .expect("the hostile-named VM");
    assert!(
        text.contains(r#"name="web 01,env=prod \"x\"\\y""#),
        "label escaped:\n{text}"
    );
    assert!(matches!(web.value, prometheus_parse::Value::Gauge(v) if v == 2.0));
    // vmpulse_internal points go through the writer like every other line.
    let line = wait_until("a vmpulse_internal point in --output", 10, || {
        std::fs::read_to_string(&svc.output)
            .ok()?
            .lines()
            .find(|l| l.starts_with("vmpulse_internal,host="))
            .map(str::to_string)
    });
    assert!(line.contains(" collections="), "{line}");
    assert!(line.contains("i,lines_written="), "{line}");
}

#[test]
fn sighup_rebuilds_the_writer_for_reloadable_writer_settings() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("vmpulse.toml");
    std::fs::write(
        &cfg,
        "[influx]\nbatch_max_lines = 2000\n[tags]\ndc = \"a\"\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap().to_string();
    let svc = Service::start_in(dir, &["--config", &cfg_s, "--poll-interval", "0.2"], &[]);
    wait_until("tagged lines", 10, || {
        std::fs::read_to_string(&svc.output)
            .ok()?
            .contains(",dc=a,")
            .then_some(())
    });
    let before = svc.get_json("/status")["writer"]["lines_written"]
        .as_u64()
        .unwrap();
    std::fs::write(
        &cfg,
        "[influx]\nbatch_max_lines = 500\n[tags]\ndc = \"b\"\n",
    )
    .unwrap();
    svc.signal(libc::SIGHUP);
    wait_until("lines with the reloaded tag", 10, || {
        std::fs::read_to_string(&svc.output)
            .ok()?
            .contains(",dc=b,")
            .then_some(())
    });
    let log = svc.log();
    assert!(
        log.contains("influx.batch_max_lines changed (2000 -> 500), applied"),
        "{log}"
    );
    assert!(
        log.contains("writer restarted with the reloaded settings"),
        "{log}"
    );
    // Counters keep counting across the new writer.
    let after = svc.get_json("/status")["writer"]["lines_written"]
        .as_u64()
        .unwrap();
    assert!(after > before, "{before} -> {after}");
    let output = svc.output.clone();
    let (code, log, _dir) = svc.stop_keeping_files();
    assert_eq!(code, Some(0), "{log}");
    let written: u64 = log
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("lines_written="))
        .and_then(|v| v.parse().ok())
        .expect("final counters");
    let in_file = std::fs::read_to_string(&output).unwrap().lines().count() as u64;
    assert_eq!(
        written, in_file,
        "every written line is in the file, counted once"
    );
}

#[test]
fn sighup_writer_restart_hands_the_spool_to_the_new_writer() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let cfg = dir.path().join("vmpulse.toml");
    // Nobody listens on port 9 of loopback: every line waits in the spool.
    let write = |db: &str| {
        std::fs::write(
            &cfg,
            format!("[influx]\nurl = \"http://127.0.0.1:9\"\ndb = \"{db}\"\napi = \"v1\"\n"),
        )
        .unwrap()
    };
    write("first");
    let socket = dir.path().join("vmpulse.sock");
    let cfg_s = cfg.to_str().unwrap().to_string();
    let child = command(&[
        "--no-ui",
        "--connect",
        &fixture_uri(),
        "--config",
        &cfg_s,
        "--poll-interval",
        "0.2",
        "--socket",
        socket.to_str().unwrap(),
        "--spool-dir",
        spool.to_str().unwrap(),
    ])
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let status = || {
        unix_request(&socket, "GET", "/status", &[], b"")
            .ok()
            .filter(|r| r.status == 200)
            .map(|r| r.json())
    };
    wait_until("lines in the spool", 20, || {
        status().filter(|s| s["writer"]["spool"]["lines"].as_u64() > Some(0))
    });
    write("second");
    // SAFETY: plain kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let after = wait_until("the new writer on the same spool", 20, || {
        status().filter(|s| {
            s["config"]["influx"]["db"] == "second" && s["writer"]["spool"]["state"] == "active"
        })
    });
    let kept = after["writer"]["spool"]["lines"].as_u64().unwrap();
    assert!(kept > 0, "{after}");
    // The lines the old writer left in the spool are the new one's
    // `lines_recovered`: counted once, the books still balance.
    assert_eq!(after["writer"]["lines_unaccounted"], 0, "{after}");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("influx.db changed (\"first\" -> \"second\"), applied"),
        "{log}"
    );
    assert!(
        log.contains("writer restarted with the reloaded settings"),
        "{log}"
    );
    assert!(!log.contains("running without a spool"), "{log}");
    assert!(log.contains(" unaccounted=0"), "{log}");
}

/// A loopback InfluxDB 1.x write endpoint that takes every request (204), on `port`.
fn accepting_influx(port: u16) -> std::thread::JoinHandle<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port again");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().expect("clone"));
                let mut w = conn;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err()
                        || w.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    })
}

/// `vmpulse --no-ui` on the e2e fixture with its socket and spool in `dir`,
/// without `--output`; killed on drop. Returns it and the socket path.
struct Headless(std::process::Child);

impl Headless {
    fn start(dir: &std::path::Path, args: &[&str]) -> (Self, String) {
        let sock = dir.join("vmpulse.sock").display().to_string();
        let uri = fixture_uri();
        let mut all = vec!["--no-ui", "--connect", &uri, "--socket", &sock, "-d", "0.2"];
        all.extend_from_slice(args);
        let child = command(&all)
            .env("SPOOL_DIR", dir.join("spool"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start vmpulse --no-ui");
        (Self(child), sock)
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn status_of(sock: &str) -> (Option<i32>, String) {
    let out = run(&["status", "--socket", sock]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Collecting is not healthy when nothing reaches InfluxDB: with every write
/// refused, `vmpulse status` exits 1 past `control.write_stale_after` and names the
/// spool backlog and the age of the last successful write; once InfluxDB takes
/// writes again it exits 0 and the old error says writes succeed since.
#[test]
fn status_fails_while_writes_are_refused_and_recovers_when_they_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[influx]\nmax_backoff = 0.3\nbatch_max_sec = 0.2\n[control]\nwrite_stale_after = 1.5\n",
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (_svc, sock) = Headless::start(
        dir.path(),
        &[
            "--influx-url",
            &url,
            "--influx-api",
            "v1",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let failing = wait_until("status to say FAILING after a refused write", 20, || {
        let (code, text) = status_of(&sock);
        (code == Some(1) && text.contains("; last error ")).then_some(text)
    });
    assert!(failing.contains("FAILING"), "{failing}");
    assert!(failing.contains("last successful write never"), "{failing}");
    assert!(failing.contains("spool backlog "), "{failing}");
    assert!(
        failing.contains("problem      no successful write for"),
        "{failing}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["status", "--json", "--socket", &sock]).stdout).unwrap();
    let h = &json["health"];
    assert_eq!(h["state"], "failing", "{h}");
    assert_eq!(h["write_stale_after_seconds"], 1.5);
    assert_eq!(h["last_write_ok_age_seconds"], serde_json::Value::Null);
    assert!(json["writer"]["last_error_at"].is_string(), "{json}");

    let _influx = accepting_influx(port);
    let ok = wait_until("status to recover", 20, || {
        let (code, text) = status_of(&sock);
        (code == Some(0) && text.contains("spool backlog 0 lines")).then_some(text)
    });
    assert!(ok.contains("writes succeed since"), "{ok}");
    assert!(!ok.contains("problem"), "{ok}");
}

/// A service without an InfluxDB URL is healthy and says its writer is off.
#[test]
fn status_of_a_service_with_the_writer_off_says_so_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (_svc, sock) = Headless::start(dir.path(), &[]);
    let text = wait_until("the service", 20, || {
        let (code, text) = status_of(&sock);
        (code == Some(0)).then_some(text)
    });
    assert!(text.contains("writer       off: no InfluxDB URL"), "{text}");
}
