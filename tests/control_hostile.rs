//! A control API no request can break (laptop tier: libvirt test driver,
//! loopback only, no root). A real `vmpulse --no-ui` with a TCP listener and a
//! token, under the 1,024 open files of systemd's default soft limit, gets
//! hostile values at every endpoint (huge, negative, NaN, inf, non-numbers,
//! deep JSON, long paths and headers, broken HTTP), a slowloris head, and
//! 2,000 idle TCP connections held open; its owner's Unix socket still answers
//! at once, `/history` still answers 200, and the TCP listener recovers.

mod control_support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use control_support::*;

const WEB_UUID: &str = "11111111-2222-3333-4444-000000000001";
const TOKEN: &str = "hostile-T0KEN-9d2c";
/// Idle TCP connections the peer holds.
const FLOOD: usize = 2_000;

/// Sends raw bytes on the Unix socket; the status code of the answer, if any.
fn raw_unix(socket: &Path, bytes: &[u8]) -> Option<u16> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

fn history_path(query: &str) -> String {
    format!("/history/{WEB_UUID}?{query}")
}

/// Every endpoint with values that must be refused with a 4xx naming what is
/// wrong (or, where a value is ignored, answered normally), never a 5xx.
fn hostile_requests(svc: &Service) {
    for minutes in [
        "1e18",
        "-1",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "1e308",
        "0",
        "",
        "x",
        "0x10",
        "1e-400",
        "%00",
        "99999999999999999999999999",
    ] {
        let path = history_path(&format!("minutes={minutes}"));
        let r = svc.req("GET", &path, b"");
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        let err = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            err.contains("minutes") && err.contains("greater than 0"),
            "{path}: {err}"
        );
        // The service is fine after each one.
        let ok = svc.req("GET", &history_path("minutes=1"), b"");
        assert_eq!(ok.status, 200, "after {path}: {}", ok.body);
    }
    let unknown = svc.req("GET", &history_path("window=5"), b"");
    assert_eq!(unknown.status, 400, "{}", unknown.body);

    let deep = format!("{}{}", "[".repeat(2000), "]".repeat(2000));
    let deep_obj = format!(
        r#"{{"seconds": {}1{}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let bodies: [&[u8]; 12] = [
        br#"{"seconds": 1e18}"#,
        br#"{"seconds": -1}"#,
        br#"{"seconds": 1e400}"#,
        br#"{"seconds": "NaN"}"#,
        br#"{"seconds": "inf"}"#,
        br#"{"seconds": null}"#,
        br#"{"seconds": 1, "seconds": 2}"#,
        br#"{"seconds": 0.0000001}"#,
        deep.as_bytes(),
        deep_obj.as_bytes(),
        b"\xff\xfe\x00",
        br#"{"seconds": 1, "more": 1}"#,
    ];
    for body in bodies {
        let r = svc.req("PUT", "/poll-interval", body);
        assert_eq!(
            r.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            r.body
        );
        assert!(r.json()["error"].is_string());
    }
    let big = vec![b'['; 1 << 20];
    assert_eq!(svc.req("PUT", "/poll-interval", &big).status, 413);

    // Long paths and values quoted back only in part.
    let long_uuid = "a".repeat(6_000);
    for path in [
        format!("/vms/{long_uuid}"),
        format!("/history/{long_uuid}"),
        format!("/{long_uuid}"),
    ] {
        let r = svc.req("GET", &path, b"");
        assert_eq!(r.status, 404, "{}", r.body);
        assert!(r.body.len() < 1_000, "error quotes the whole path");
    }
    // Requests whose head is larger than any real client's.
    let huge_path = format!("/vms/{}", "b".repeat(100_000));
    let code = raw_unix(
        &svc.socket,
        format!("GET {huge_path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    );
    assert!(matches!(code, None | Some(400..=499)), "{code:?}");
    let huge_header = format!(
        "GET /status HTTP/1.1\r\nHost: x\r\nX-Junk: {}\r\n\r\n",
        "c".repeat(100_000)
    );
    let code = raw_unix(&svc.socket, huge_header.as_bytes());
    assert!(matches!(code, None | Some(400..=499)), "{code:?}");
    let many_headers: String = (0..500).map(|i| format!("X-{i}: {i}\r\n")).collect();
    let code = raw_unix(
        &svc.socket,
        format!("GET /status HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").as_bytes(),
    );
    assert!(matches!(code, None | Some(400..=499)), "{code:?}");
    // Broken HTTP.
    for raw in [
        &b"PUT /poll-interval HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"[..],
        b"PUT /poll-interval HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"PUT /poll-interval HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
        b"GET /vms/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /status HTTP/9.9\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    ] {
        let code = raw_unix(&svc.socket, raw);
        assert!(
            matches!(code, None | Some(400..=499)),
            "{}: {code:?}",
            String::from_utf8_lossy(raw)
        );
    }
    // Endpoints without parameters ignore junk queries and bodies.
    for (method, path) in [
        ("GET", "/status?x=%ff%00&y=1e999"),
        ("GET", "/vms?minutes=NaN"),
        ("GET", "/config?a"),
        ("GET", "/metrics?per_vm=-1"),
        ("POST", "/start?now=inf"),
    ] {
        let r = svc.req(method, path, b"{\"seconds\": 1e999}");
        assert_eq!(r.status, 200, "{method} {path}: {}", r.body);
    }
}

fn tcp_status(port: u16) -> Option<u16> {
    let auth = format!("Bearer {TOKEN}");
    tcp_request(port, "GET", "/status", &[("Authorization", &auth)], b"")
        .ok()
        .map(|r| r.status)
}

#[test]
fn hostile_values_and_2000_idle_connections_leave_the_owner_served() {
    let limit = raise_own_nofile(FLOOD as u64 + 200);
    assert!(
        limit >= FLOOD as u64 + 100,
        "this test needs {} open files; the hard limit allows {limit}",
        FLOOD + 100
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let svc = Service::start_limited(
        tempfile::tempdir().unwrap(),
        &["--poll-interval", "0.2"],
        &[
            ("VMPULSE_CONTROL_LISTEN", listen.as_str()),
            ("VMPULSE_CONTROL_TOKEN", TOKEN),
        ],
        1024,
    );
    wait_until("history samples", 10, || {
        let r = svc.req("GET", &history_path("minutes=1"), b"");
        (r.status == 200 && r.json()["samples"].as_array().is_some_and(|a| a.len() >= 2))
            .then_some(())
    });
    hostile_requests(&svc);
    assert_eq!(tcp_status(port), Some(200));

    // A peer holds 2,000 idle connections; the owner's socket answers at once.
    let held = idle_connections(port, FLOOD);
    assert!(held.len() >= FLOOD, "only {} connections", held.len());
    let t = Instant::now();
    let status = svc.get_json("/status");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(status["running"], true);
    let r = svc.req("GET", &history_path("minutes=5"), b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let before = status["total_collections"].as_u64().unwrap_or(0);
    wait_until("collection to go on under the flood", 10, || {
        (svc.collections() >= before + 5).then_some(())
    });

    // A slowloris head on the owner's socket is cut off; others are served meanwhile.
    let mut slow = UnixStream::connect(&svc.socket).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut cut = false;
    for piece in b"GET /status HTTP/1.1\r\nX-Slow: ".iter().cycle().take(400) {
        if slow.write_all(&[*piece]).is_err() || slow.read(&mut [0u8; 256]).is_ok() {
            cut = true;
            break;
        }
        assert_eq!(svc.req("GET", "/status", b"").status, 200);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cut, "slow head still open after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // The idle TCP connections are closed by the service, and with them gone
    // the listener answers its token holder again.
    let mut held = held;
    for s in held.iter_mut().step_by(97) {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let n = s.read(&mut [0u8; 64]).unwrap_or(0);
        assert_eq!(n, 0, "an idle connection the service answered?");
    }
    wait_until("the TCP listener to answer again", 30, || {
        (tcp_status(port) == Some(200)).then_some(())
    });
    drop(held);
    assert_eq!(svc.req("GET", &history_path("minutes=5"), b"").status, 200);
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}

/// The header-read timeout also ends idle keep-alive connections, but never
/// a `/snapshots` stream (the TUI's attach) that outlives it.
#[test]
fn a_snapshots_stream_outlives_the_idle_timeout() {
    use std::io::BufRead;
    let svc = Service::start(&["--poll-interval", "1"]);
    let mut s = UnixStream::connect(&svc.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /snapshots HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = std::io::BufReader::new(s);
    let started = Instant::now();
    let mut last_snapshot = None;
    let mut line = String::new();
    while started.elapsed() < Duration::from_secs(14) {
        line.clear();
        let n = r.read_line(&mut line).expect("the stream goes on");
        assert!(n > 0, "stream closed after {:?}", started.elapsed());
        if line.contains("\"seq\"") {
            last_snapshot = Some(started.elapsed());
        }
    }
    let last = last_snapshot.expect("snapshots arrived");
    assert!(last > Duration::from_secs(12), "last snapshot at {last:?}");
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
}

/// Seconds of CPU (user + system) process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// Out of file descriptors (a limit of 48, more idle connections than that on
/// the socket): accepting backs off instead of spinning, and once the idle
/// connections time out the owner is answered again.
#[test]
fn running_out_of_descriptors_neither_spins_nor_stops_the_socket() {
    let svc = Service::start_limited(
        tempfile::tempdir().unwrap(),
        &["--poll-interval", "0.5"],
        &[],
        48,
    );
    let pid = svc.pid();
    let held: Vec<UnixStream> = (0..80)
        .filter_map(|_| UnixStream::connect(&svc.socket).ok())
        .collect();
    assert!(held.len() >= 60, "{} connections", held.len());
    std::thread::sleep(Duration::from_secs(1));
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    assert!(fds >= 46, "not out of descriptors: {fds} open");
    let (cpu0, t0) = (cpu_secs(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let share = (cpu_secs(pid) - cpu0) / t0.elapsed().as_secs_f64();
    eprintln!(
        "CPU while out of descriptors: {:.1} % of one core",
        share * 100.0
    );
    assert!(
        share < 0.3,
        "{:.0} % of a core: accept spins",
        share * 100.0
    );
    drop(held);
    wait_until("the socket to answer again", 30, || {
        svc.try_get("/status").ok().filter(|r| r.status == 200)
    });
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("cannot accept connections"), "{log}");
}
