//! The real binary on the command line: bad input gets one clear line on stderr and
//! exit code 2, no panic or backtrace; one-shot runs (`--once`, `-n`) print exactly
//! what they collected in the format asked for and exit 0; a closed pipe ends the run.

use std::process::{Command, Output};

fn vmpulse(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmpulse"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    // No stray system or user config file may change what these tests see.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("HOME", "/nonexistent-vmpulse-test")
        .env("VMPULSE_SOCKET", test_socket());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run vmpulse")
}

/// A control socket of its own for each run: tests run in parallel, as root
/// the default would be the same /run/vmpulse/vmpulse.sock for all of them.
fn test_socket() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "vmpulse-cli-test-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn assert_clean_failure(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr should mention {n:?}: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn unknown_flag() {
    assert_clean_failure(&vmpulse(&["--bogus"], &[]), &["--bogus"]);
}

#[test]
fn non_numeric_zero_and_negative_intervals() {
    assert_clean_failure(
        &vmpulse(&["--poll-interval", "abc", "--print-config"], &[]),
        &["--poll-interval", "abc"],
    );
    assert_clean_failure(
        &vmpulse(&["--poll-interval", "0", "--print-config"], &[]),
        &["--poll-interval"],
    );
    assert_clean_failure(
        &vmpulse(&["--poll-interval", "-1", "--print-config"], &[]),
        &["--poll-interval"],
    );
    assert_clean_failure(
        &vmpulse(&["--print-config"], &[("POLL_INTERVAL", "fast")]),
        &["POLL_INTERVAL", "fast"],
    );
}

#[test]
fn malformed_url_and_unknown_api() {
    assert_clean_failure(
        &vmpulse(&["--influx-url", "localhost:8181:x", "--print-config"], &[]),
        &["--influx-url"],
    );
    assert_clean_failure(
        &vmpulse(&["--influx-api", "v9", "--print-config"], &[]),
        &["--influx-api", "v9"],
    );
    assert_clean_failure(
        &vmpulse(&["--print-config"], &[("INFLUX_API", "v0")]),
        &["INFLUX_API"],
    );
}

#[test]
fn unreadable_and_invalid_config_files() {
    assert_clean_failure(
        &vmpulse(
            &["--config", "/nonexistent/vmpulse.toml", "--print-config"],
            &[],
        ),
        &["/nonexistent/vmpulse.toml"],
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[influx]\ndb = \"x\"\n\n[libvirt]\nurl = \"qemu:///system\"\n",
    )
    .unwrap();
    assert_clean_failure(
        &vmpulse(&["--config", bad.to_str().unwrap(), "--print-config"], &[]),
        &["bad.toml", "url", "line 5"],
    );
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[collector]\npoll_interval = = 1\n").unwrap();
    assert_clean_failure(
        &vmpulse(
            &["--print-config"],
            &[("VMPULSE_CONFIG", broken.to_str().unwrap())],
        ),
        &["broken.toml", "line 2"],
    );
}

#[test]
fn print_config_layers_and_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[collector]\npoll_interval = 5.0\n[influx]\ndb = \"from_file\"\ntoken = \"file-token-XYZ\"\n[tags]\ndc = \"par1\"\n").unwrap();
    let out = vmpulse(
        &[
            "--config",
            file.to_str().unwrap(),
            "--print-config",
            "--poll-interval",
            "2",
        ],
        &[
            ("INFLUX_DB", "from_env"),
            ("INFLUX_URL", "http://127.0.0.1:8181"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("poll_interval = 2.0"), "{text}");
    assert!(text.contains("db = \"from_env\""), "{text}");
    assert!(text.contains("token = \"***\""), "{text}");
    assert!(text.contains("dc = \"par1\""), "{text}");
    assert!(!text.contains("file-token-XYZ"), "{text}");
    // The world-readable file holding a token earns a warning on stderr... but only once logging
    // is up, which --print-config never reaches; the warning itself is unit-tested in config.
}

#[test]
fn unreachable_libvirt_uri_at_start_exits_naming_uri_and_answer() {
    let out = vmpulse(
        &["--no-ui", "--connect", "test:///nonexistent/host.xml"],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("vmpulse: cannot connect to libvirt at 'test:///nonexistent/host.xml'"),
        "{err}"
    );
    assert!(
        last.contains("does not exist"),
        "what libvirt (or the check before it) answered: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );

    // A real libvirt error message comes through too (no such driver).
    let out = vmpulse(&["--no-ui", "--connect", "nosuchdriver:///x"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("'nosuchdriver:///x'"), "{err}");
}

/// The two-domain fixture (one VM with a hostile name, `db-1`).
fn e2e() -> String {
    format!(
        "test://{}/tests/fixtures/e2e-host.xml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn counter(stderr: &str, key: &str) -> u64 {
    stderr
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {stderr}"))
}

#[test]
fn once_and_iterations_write_exactly_that_many_collections_with_rates() {
    let uri = e2e();
    for (args, n) in [(vec!["--once"], 1usize), (vec!["-n", "3"], 3)] {
        let mut all = vec!["-c", &uri, "-d", "0.2"];
        all.extend(args.iter().copied());
        let out = vmpulse(&all, &[]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        let count = |m: &str| stdout.lines().filter(|l| l.starts_with(m)).count();
        // Two domains; a baseline sample first, so every written collection has rates.
        assert_eq!(count("vm_metrics,"), 2 * n, "{args:?}: {stdout}");
        assert_eq!(count("vm_features,"), 2 * n, "{args:?}: {stdout}");
        assert_eq!(count("vm_totals,"), 2 * n, "{args:?}: {stdout}");
        // One host point per reading of the node figures (every 5 s), not per cycle.
        assert_eq!(count("hypervisor,"), 1, "{args:?}: {stdout}");
        assert_eq!(counter(&stderr, "collections"), n as u64 + 1, "{stderr}");
        assert_eq!(counter(&stderr, "unsent"), 0);
    }
}

#[test]
fn json_format_is_one_object_per_vm_per_collection() {
    let out = vmpulse(
        &["-c", &e2e(), "-d", "0.2", "-n", "2", "--format", "json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let objects: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect();
    assert_eq!(objects.len(), 4);
    let mut names: Vec<&str> = objects.iter().filter_map(|o| o["name"].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "db-1",
            "db-1",
            r#"web 01,env=prod "x"\y"#,
            r#"web 01,env=prod "x"\y"#
        ]
    );
    for o in &objects {
        for key in [
            "time",
            "host",
            "uuid",
            "state",
            "cpu_usage_percent",
            "disk_read_bytes_per_sec",
            "net_tx_angle_deg",
        ] {
            assert!(o.get(key).is_some(), "{key} missing: {o}");
        }
        assert!(o["cpu_usage_percent"].is_f64(), "{o}");
        assert_eq!(o["state"], "running");
    }
}

#[test]
fn csv_format_has_a_header_and_one_row_per_vm_per_collection() {
    let out = vmpulse(
        &["-c", &e2e(), "-d", "0.2", "-n", "2", "--format", "csv"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut r = csv::Reader::from_reader(out.stdout.as_slice());
    let header: Vec<String> = r
        .headers()
        .expect("header row")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        &header[..6],
        ["time", "timestamp_ns", "host", "VMID", "name", "uuid"]
    );
    assert!(header.contains(&"cpu_usage_percent".to_string()));
    assert!(header.contains(&"net_rx_bytes_per_sec".to_string()));
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.expect("a CSV row")).collect();
    assert_eq!(rows.len(), 4);
    let name = header.iter().position(|h| h == "name").unwrap();
    assert!(rows
        .iter()
        .any(|row| &row[name] == r#"web 01,env=prod "x"\y"#));
    let cpu = header
        .iter()
        .position(|h| h == "cpu_usage_percent")
        .unwrap();
    for row in &rows {
        assert_eq!(row.len(), header.len());
        let v: f64 = row[cpu].parse().expect("cpu % is a number");
        assert!((0.0..=100.0).contains(&v), "{v}");
    }
}

#[test]
fn closing_the_pipe_like_head_1_ends_the_run_within_a_second() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args(["--no-ui", "--output", "-", "-d", "0.2", "-c", &e2e()])
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("VMPULSE_SOCKET", test_socket())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("one line");
    assert!(first.starts_with("vm_"), "{first}");
    // The reader is dropped here, as `head -1` exits after its line.
    let closed = std::time::Instant::now();
    let out = child.wait_with_output().expect("wait");
    let took = closed.elapsed();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        took < std::time::Duration::from_secs(1),
        "took {took:?}: {err}"
    );
    assert!(err.contains("stdout closed by its reader"), "{err}");
}

#[test]
fn stdout_output_needs_no_terminal_and_says_it_wins_over_the_url() {
    let out = vmpulse(
        &[
            "--output",
            "-",
            "--once",
            "-c",
            "test:///default",
            "-d",
            "0.1",
            // A one-shot considers only a URL given by its flag.
            "--influx-url",
            "http://user:hunter2@127.0.0.1:9",
        ],
        &[],
    );
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--output - implies --no-ui: {err}"
    );
    assert!(err.contains("--output wins over the InfluxDB URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(text(&out.stdout).starts_with("vm_metrics,"));
}

#[test]
fn the_live_view_without_a_terminal_is_one_clean_line() {
    // Piped stdout and no controlling terminal, as under cron or ssh -T.
    let out = vmpulse(&["-c", "test:///default"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "vmpulse needs a terminal; use --no-ui\n");
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout, not even an escape: {:?}",
        out.stdout
    );
}

#[test]
fn an_unknown_uri_is_one_line_without_retrying() {
    let out = vmpulse(&["--no-ui", "-c", "bogus://x"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("vmpulse: cannot connect to libvirt at 'bogus://x': "),
        "{err}"
    );
    assert!(!err.contains("retrying"), "{err}");
}

#[test]
fn one_shot_and_filter_mistakes_are_refused_naming_the_flag() {
    for (args, needles) in [
        (
            vec!["-d", "0.05", "--print-config"],
            vec!["--poll-interval", "at least 0.1"],
        ),
        (
            vec!["--format", "xml", "--print-config"],
            vec!["--format", "'xml'", "lp, json or csv"],
        ),
        (
            vec!["--format", "json", "--no-ui"],
            vec!["--format", "--output"],
        ),
        (
            vec!["--once", "-n", "3", "--print-config"],
            vec!["--iterations", "--once"],
        ),
        (
            vec!["-n", "0", "--print-config"],
            vec!["--iterations", "at least 1"],
        ),
        (
            vec!["--domains", "db-[", "--print-config"],
            vec!["--domains", "unclosed"],
        ),
    ] {
        assert_clean_failure(&vmpulse(&args, &[]), &needles);
    }
}

#[test]
fn short_flags_and_libvirt_default_uri() {
    let out = vmpulse(
        &["-c", "test:///default", "-d", "2.5", "--print-config"],
        &[],
    );
    let t = text(&out.stdout);
    assert!(
        t.contains("uri = \"test:///default\"") && t.contains("poll_interval = 2.5"),
        "{t}"
    );
    let out = vmpulse(
        &["--print-config"],
        &[("LIBVIRT_DEFAULT_URI", "test:///default")],
    );
    assert!(
        text(&out.stdout).contains("uri = \"test:///default\""),
        "virsh's variable is honoured"
    );
    let out = vmpulse(
        &["--print-config"],
        &[
            ("LIBVIRT_DEFAULT_URI", "test:///default"),
            ("LIBVIRT_URI", "qemu:///session"),
        ],
    );
    assert!(
        text(&out.stdout).contains("uri = \"qemu:///session\""),
        "LIBVIRT_URI wins"
    );
}

#[test]
fn domain_filter_keeps_only_matching_vms() {
    let uri = e2e();
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec![
            "-c",
            uri.as_str(),
            "-d",
            "0.1",
            "--once",
            "--format",
            "json",
        ];
        all.extend_from_slice(args);
        let out = vmpulse(&all, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    assert_eq!(names(&["--domains", "db-*"]), ["db-1"]);
    assert_eq!(names(&["--exclude", "db-?"]), [r#"web 01,env=prod "x"\y"#]);
    assert!(names(&["--domains", "nothing*"]).is_empty());
}

#[test]
fn help_and_version_say_where_and_what() {
    let help = text(&vmpulse(&["--help"], &[]).stdout);
    for needle in [
        "/etc/vmpulse/config.toml",
        "qemu:///system",
        "LIBVIRT_DEFAULT_URI",
        "Examples:",
        "--once",
        "-c, --connect",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
    let version = text(&vmpulse(&["--version"], &[]).stdout);
    assert!(
        version.starts_with(&format!("vmpulse {} (git ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    assert!(version.contains("; libvirt "), "{version}");
}

#[test]
fn lines_unsent_at_the_flush_timeout_exit_3() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        // Without the spool, whatever InfluxDB has not taken at the flush timeout is lost.
        "[influx]\nflush_timeout = 0.5\nmax_backoff = 0.2\n[spool]\nenabled = false\n",
    )
    .unwrap();
    // Nothing listens on port 9 (discard) here: every write fails and is retried.
    let child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args([
            "--no-ui",
            "-c",
            "test:///default",
            "-d",
            "0.2",
            "--influx-api",
            "v1",
        ])
        .args(["--influx-url", "http://127.0.0.1:9", "--config"])
        .arg(&config)
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("VMPULSE_SOCKET", test_socket())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(counter(&err, "unsent") > 0, "{err}");
    assert!(
        err.lines().last().unwrap_or_default().contains("unsent"),
        "{err}"
    );
}

/// SIGHUP in `--no-ui` re-reads the configuration and keeps collecting (the
/// reload itself is tested in control_api.rs); SIGTERM then flushes, prints the
/// final counters, exits 0, and every line counted as written is in the file.
#[test]
fn sighup_reloads_and_sigterm_flushes_and_exits() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("temp dir");
    let out_file = dir.path().join("out.lp");
    let uri = format!(
        "test://{}/tests/fixtures/e2e-host.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args([
            "--no-ui",
            "--poll-interval",
            "0.2",
            "--connect",
            &uri,
            "--output",
        ])
        .arg(&out_file)
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("VMPULSE_SOCKET", test_socket())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "SIGHUP must not end the service"
    );
    let lines_after_hup = std::fs::read_to_string(&out_file)
        .map(|t| t.lines().count())
        .unwrap_or(0);
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("SIGHUP: configuration re-read; nothing changed"),
        "{err}"
    );
    assert!(err.contains("SIGTERM: stopping collection"), "{err}");
    let written: usize = err
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("lines_written="))
        .and_then(|v| v.parse().ok())
        .expect("final counters");
    let text = std::fs::read_to_string(&out_file).expect("output file");
    assert!(written > 0 && written >= lines_after_hup, "{err}");
    assert_eq!(text.lines().count(), written, "{err}");
}

/// Exit statuses systemd acts on (`RestartPreventExitStatus=2`): a spool directory that
/// cannot be one is a setting to fix (2, not restarted); a spool another process holds
/// may be free on the next try (1, `Restart=on-failure` retries). The spool is opened
/// only for an InfluxDB URL; nothing listens at this one, and nothing is sent.
#[test]
fn a_spool_that_cannot_be_a_directory_exits_2_one_held_by_another_process_exits_1() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("write");
    let run = |spool: &std::path::Path| {
        let spool = spool.display().to_string();
        let args = ["--no-ui", "-c", "test:///default", "--spool-dir", &spool];
        vmpulse(&args, &[("INFLUX_URL", "http://127.0.0.1:9")])
    };
    let out = run(&file.join("spool"));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--spool-dir") && err.contains("a-file/spool"),
        "{err}"
    );

    // Held like a running vmpulse holds it: flock on its lock file, our pid inside.
    let held = dir.path().join("held");
    std::fs::create_dir(&held).expect("mkdir");
    let mut lock = std::fs::File::create(held.join("lock")).expect("lock file");
    write!(lock, "{}", std::process::id()).expect("write pid");
    // SAFETY: flock(2) on a descriptor this test owns until the end of the test.
    let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    assert_eq!(rc, 0, "flock");
    let out = run(&held);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "names the holder: {err}"
    );
    drop(lock);
}

/// A loopback port that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// On a packaged host the config file names the service's InfluxDB: a one-shot
/// still prints (in the format asked for) and never connects there.
#[test]
fn a_one_shot_prints_and_never_writes_to_the_url_of_the_file_or_environment() {
    let influx = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}", influx.local_addr().unwrap().port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("[influx]\nurl = \"{url}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    for (args, env) in [
        (
            vec!["--once", "--format", "json", "--config", config],
            vec![],
        ),
        (vec!["--once"], vec![("INFLUX_URL", url.as_str())]),
        (
            vec!["-n", "1", "--format", "csv"],
            vec![("VMPULSE_CONFIG", config)],
        ),
    ] {
        let mut all = vec!["-c", "test:///default", "-d", "0.1"];
        all.extend(args.iter().copied());
        let out = vmpulse(&all, &env);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            stdout.starts_with("{\"VMID\"")
                || stdout.starts_with("vm_metrics,")
                || stdout.starts_with("time,"),
            "{args:?}: {stdout}"
        );
        assert_eq!(
            counter(&stderr, "lines_written"),
            counter(&stderr, "lines_queued")
        );
    }
    influx.set_nonblocking(true).unwrap();
    assert!(
        influx.accept().is_err(),
        "a one-shot connected to the InfluxDB of the config"
    );
}

/// A one-shot that writes to an `--influx-url` it cannot reach loses its lines
/// (exit 3) rather than leaving them in a spool the service would later replay.
#[test]
fn a_one_shot_never_leaves_lines_in_a_spool() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[influx]\nflush_timeout = 0.5\nmax_backoff = 0.2\n",
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{}", closed_port());
    let out = vmpulse(
        &[
            "--once",
            "-c",
            "test:///default",
            "-d",
            "0.1",
            "--influx-api",
            "v1",
            "--influx-url",
            &url,
            "--config",
            config.to_str().unwrap(),
        ],
        &[("SPOOL_DIR", spool.to_str().unwrap())],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert_eq!(counter(&err, "spooled"), 0, "{err}");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the one-shot left {left:?} in {}",
        spool.display()
    );
}

/// Two CSV runs appending to one file make one table: a header row only in a
/// new (or empty) file.
#[test]
fn csv_runs_appending_to_one_file_write_one_header() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vms.csv");
    let path = file.to_str().unwrap();
    for run in 1..=2 {
        let out = vmpulse(
            &[
                "-c",
                &e2e(),
                "-d",
                "0.1",
                "-n",
                "1",
                "--format",
                "csv",
                "--output",
                path,
            ],
            &[],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}: {}",
            text(&out.stderr)
        );
    }
    let csv = std::fs::read_to_string(&file).unwrap();
    let headers = csv.lines().filter(|l| l.starts_with("time,")).count();
    assert_eq!(headers, 1, "{csv}");
    assert_eq!(csv.lines().count(), 1 + 2 * 2, "{csv}");
}

/// The start-up line names the format that goes out, not always line protocol.
#[test]
fn the_start_up_line_names_the_output_format() {
    for (format, said) in [
        ("json", "writer: JSON to stdout"),
        ("csv", "writer: CSV to stdout"),
        ("lp", "writer: line protocol to stdout"),
    ] {
        let out = vmpulse(
            &[
                "-c",
                "test:///default",
                "-d",
                "0.1",
                "--once",
                "--format",
                format,
            ],
            &[],
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains(said), "{format}: {err}");
    }
}

/// `--config` works after a subcommand, as `--socket` does: `vmpulse status
/// --config FILE` looks for the service where that file says.
#[test]
fn config_is_accepted_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("from-the-file.sock");
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!("[control]\nsocket = \"{}\"\n", socket.display()),
    )
    .unwrap();
    for args in [
        vec!["status", "--config", config.to_str().unwrap()],
        vec!["--config", config.to_str().unwrap(), "status"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
            .args(&args)
            .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
            .env_remove("VMPULSE_SOCKET")
            .output()
            .expect("run vmpulse");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {err}");
        assert!(err.contains("from-the-file.sock"), "{args:?}: {err}");
    }
}
