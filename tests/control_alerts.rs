//! Alerts end to end on a real `vmpulse --no-ui` (libvirt test driver, no root, no
//! daemons): levels from a config file raise an alert on a fixture VM after
//! `alerts.min_duration`, seen in `GET /alerts`, `/metrics`, `vmpulse status`, a
//! `vm_alerts` point in the `--output` lines and one log line; a SIGHUP that drops
//! the levels clears it with an `ok` point.

mod control_support;

use control_support::*;

const DB_UUID: &str = "11111111-2222-3333-4444-000000000002";

/// db-1 has 4 vCPUs (warning at 3), "web 01,…" 2 (careful at 1 through the override).
const CONFIG: &str = "[alerts]\nmin_duration = 0.5\n\n\
    [alerts.cpu_count]\nwarning = 3\ncritical = 8\n\n\
    [[alerts.override]]\nvms = \"web*\"\ncpu_count = { careful = 1 }\n";

fn vm_alerts_lines(svc: &Service) -> Vec<String> {
    std::fs::read_to_string(&svc.output)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("vm_alerts,"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn an_alert_on_a_fixture_vm_reaches_every_output_and_clears_on_reload() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alerts.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let svc = Service::start_in(
        dir,
        &[
            "--poll-interval",
            "0.2",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );

    let alerts = wait_until("two alerts raised", 15, || {
        let a = svc.get_json("/alerts");
        (a["alerts"].as_array()?.len() == 2).then_some(a)
    });
    assert_eq!(keys(&alerts), sorted(&["alerts"]));
    let first = &alerts["alerts"][0];
    assert_eq!(
        keys(first),
        sorted(&[
            "vm",
            "uuid",
            "metric",
            "level",
            "value",
            "threshold",
            "since"
        ])
    );
    // Worst first: db-1's warning, then web's careful from the override.
    assert_eq!(first["vm"], "db-1");
    assert_eq!(first["uuid"], DB_UUID);
    assert_eq!(first["metric"], "cpu_count");
    assert_eq!(first["level"], "warning");
    assert_eq!(first["value"], 4.0);
    assert_eq!(first["threshold"], 3.0);
    assert!(first["since"].as_str().unwrap().ends_with('Z'));
    let second = &alerts["alerts"][1];
    assert_eq!(
        (&second["level"], &second["threshold"]),
        (&"careful".into(), &1.0.into())
    );

    let metrics = svc.req("GET", "/metrics", b"");
    let text = metrics.body;
    assert!(
        text.contains(r#"vmpulse_alert_active{vm="db-1",metric="cpu_count",level="warning"} 1"#),
        "{text}"
    );
    assert!(text.contains("# TYPE vmpulse_alert_active gauge"));

    let status = svc.get_json("/status");
    assert_eq!(status["alerts"], alerts["alerts"]);
    let out = run(&["status", "--socket", svc.socket.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("alert        WARNING db-1 cpu_count 4 (threshold 3)"),
        "{shown}"
    );

    let lines = wait_until("vm_alerts points", 10, || {
        let l = vm_alerts_lines(&svc);
        (l.len() >= 2).then_some(l)
    });
    let db = lines
        .iter()
        .find(|l| l.contains(DB_UUID))
        .expect("a vm_alerts point for db-1");
    assert!(
        db.starts_with("vm_alerts,host=")
            && db.contains(",name=db-1,")
            && db.contains(",metric=cpu_count ")
            && db.contains(r#"level="warning",active=true,value=4.0,threshold=3.0 "#),
        "{db}"
    );
    assert!(
        svc.log().contains("alert raised: VM 'db-1' (11111111-2222-3333-4444-000000000002) cpu_count warning: 4 (threshold 3)"),
        "{}",
        svc.log()
    );

    // Reload without the levels: both alerts clear after min_duration, with an ok point each.
    std::fs::write(&config, "[alerts]\nmin_duration = 0.5\n").unwrap();
    svc.signal(libc::SIGHUP);
    wait_until("the alerts cleared", 15, || {
        svc.get_json("/alerts")["alerts"]
            .as_array()?
            .is_empty()
            .then_some(())
    });
    let lines = wait_until("the clearing points", 10, || {
        let l = vm_alerts_lines(&svc);
        (l.len() >= 4).then_some(l)
    });
    let cleared = lines
        .iter()
        .filter(|l| l.contains(DB_UUID))
        .nth(1)
        .expect("a second point for db-1");
    assert!(
        cleared.contains(r#"level="ok",active=false,value=4.0,threshold=3.0 "#),
        "{cleared}"
    );
    assert!(
        svc.log().contains("alert cleared: VM 'db-1'"),
        "{}",
        svc.log()
    );
    let (code, _) = svc.stop();
    assert_eq!(code, Some(0));
}
