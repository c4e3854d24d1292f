//! Fault injection with real parts: the real `vmpulse --no-ui`, libvirt's test
//! driver with 100 domains polled every second, a real influxd 1.x on
//! loopback that is stopped and started again, SIGKILL, a full spool, a torn
//! segment. What InfluxDB holds at the end is counted with InfluxQL.

mod common;

use common::final_counter as counter;
use common::stored_lines as stored;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DOMAINS: usize = 100;
const NEEDS: &str =
    "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests";

/// A config file for what has no flag or variable: status every second, short backoff.
fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("vmpulse.toml");
    std::fs::write(
        &path,
        "[collector]\nstatus_interval = 1.0\n[influx]\nmax_backoff = 1.0\nflush_timeout = 10.0\n",
    )
    .expect("write config");
    path
}

/// The real binary, logging to a file we can read while it runs.
struct Vmpulse {
    child: Child,
    log: PathBuf,
}

struct Setup {
    _dir: tempfile::TempDir,
    uri: String,
    config: PathBuf,
    spool: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        let uri = common::test_driver_host(dir.path(), DOMAINS);
        let config = config_file(dir.path());
        let spool = dir.path().join("spool");
        Setup {
            uri,
            config,
            spool,
            _dir: dir,
        }
    }

    fn start(&self, influx: &common::InfluxD, db: &str, env: &[(&str, &str)], n: u32) -> Vmpulse {
        let log = self.spool.with_file_name(format!("vmpulse-{n}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmpulse"));
        cmd.args(["--no-ui", "--connect", &self.uri, "--config"])
            .arg(&self.config)
            .args(["--influx-url", &influx.url, "--influx-api", "v1"])
            .args(["--influx-db", db, "--poll-interval", "1", "--spool-dir"])
            .arg(&self.spool)
            .env("VMPULSE_LOG", "info")
            .env(
                "VMPULSE_SOCKET",
                self.spool.with_file_name(format!("vmpulse-{n}.sock")),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        Vmpulse {
            child: cmd.spawn().expect("start vmpulse"),
            log,
        }
    }
}

impl Setup {
    /// Runs the binary on `spool` expecting it to refuse to start.
    fn run_until_exit(&self, influx: &common::InfluxD, spool: &Path) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_vmpulse"))
            .args([
                "--no-ui",
                "--connect",
                &self.uri,
                "--influx-url",
                &influx.url,
            ])
            .arg("--spool-dir")
            .arg(spool)
            .env(
                "VMPULSE_SOCKET",
                self.spool.with_file_name("vmpulse-once.sock"),
            )
            .output()
            .expect("run vmpulse")
    }
}

impl Vmpulse {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Seconds of CPU (user + system) used so far.
    fn cpu_secs(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 =
            f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }

    /// The latest status line.
    fn last_status(&self) -> Option<String> {
        self.log()
            .lines()
            .rev()
            .find(|l| l.contains("status:"))
            .map(str::to_string)
    }

    /// Waits (bounded) until `cond` holds for the latest status line.
    fn wait_status(&self, limit: Duration, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(l) = self.last_status().filter(|l| cond(l)) {
                return l;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}; log:\n{}", self.log());
    }

    /// SIGTERM, wait, return exit code and the whole log.
    fn stop(mut self) -> (Option<i32>, String) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let status = self.child.wait().expect("wait vmpulse");
        (status.code(), self.log())
    }

    fn sigkill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Vmpulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The number after `word` in a status line (`12 collections`, `spool 40 lines`).
fn status_num(line: &str, before: &str) -> u64 {
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| w.trim_end_matches([',', ';']) == before)
        .and_then(|i| words.get(i - 1))
        .and_then(|w| w.trim_end_matches([',', ';']).parse().ok())
        .unwrap_or_else(|| panic!("no number before '{before}' in {line}"))
}

fn spool_lines(line: &str) -> u64 {
    let rest = line
        .split("; spool ")
        .nth(1)
        .unwrap_or_else(|| panic!("no spool in {line}"));
    rest.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("spool lines")
}

/// `vm_metrics` points per domain name.
fn per_domain(influx: &common::InfluxD, db: &str) -> Vec<u64> {
    let v = influx.query(
        db,
        "SELECT COUNT(\"state\") FROM \"vm_metrics\" GROUP BY \"name\"",
    );
    v["results"][0]["series"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|x| x["values"][0][1].as_u64())
                .collect()
        })
        .unwrap_or_default()
}

/// Outage of 60 s with a memory queue that lasts about 4 s: the spool takes
/// the rest, and once influxd is back every queued line is in InfluxDB.
/// Also test 5: the CPU vmpulse uses while waiting stays small.
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn outage_of_a_minute_loses_nothing_and_does_not_spin() {
    let _ = NEEDS;
    let mut influx = common::InfluxD::start();
    influx.create_db("outage");
    let s = Setup::new();
    let env = [("MAX_QUEUE", "2000"), ("BATCH_MAX_LINES", "500")];
    let vm = s.start(&influx, "outage", &env, 1);
    vm.wait_status(Duration::from_secs(20), "lines written", |l| {
        status_num(l, "collections") >= 3
    });
    influx.stop();
    // Let the first failures and the backoff settle, then measure 20 s of waiting.
    std::thread::sleep(Duration::from_secs(10));
    let (cpu0, t0) = (vm.cpu_secs(), Instant::now());
    std::thread::sleep(Duration::from_secs(20));
    let cpu = (vm.cpu_secs() - cpu0) / t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(30));
    let during = vm.last_status().expect("status lines");
    assert!(
        spool_lines(&during) > 2000,
        "the spool holds more than the memory queue could: {during}"
    );
    influx.start_again();
    vm.wait_status(Duration::from_secs(40), "the spool to drain", |l| {
        spool_lines(l) == 0 && l.contains("dropped 0")
    });
    let (code, log) = vm.stop();
    assert_eq!(code, Some(0), "{log}");
    let queued = counter(&log, "lines_queued");
    assert_eq!(counter(&log, "lines_dropped"), 0, "{log}");
    assert_eq!(counter(&log, "lines_rejected"), 0, "{log}");
    assert_eq!(counter(&log, "unsent"), 0, "{log}");
    assert_eq!(counter(&log, "unaccounted"), 0, "{log}");
    assert_eq!(
        stored(&influx, "outage"),
        queued,
        "InfluxDB holds every queued line"
    );
    eprintln!(
        "{}",
        log.lines().find(|l| l.contains("final:")).unwrap_or("")
    );
    // A busy loop costs a whole core; 100 domains in a debug build cost a few %.
    assert!(
        cpu < 0.25,
        "{:.1} % of one core while InfluxDB was down",
        cpu * 100.0
    );
    eprintln!("CPU during the outage: {:.2} % of one core", cpu * 100.0);
}

/// SIGKILL during an outage, started again on the same spool: after the
/// server returns, every line both runs queued is in InfluxDB.
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn sigkill_during_an_outage_then_restart_loses_nothing() {
    let mut influx = common::InfluxD::start();
    influx.create_db("crash");
    let s = Setup::new();
    let env = [("MAX_QUEUE", "2000"), ("BATCH_MAX_LINES", "500")];
    let first = s.start(&influx, "crash", &env, 1);
    first.wait_status(Duration::from_secs(20), "collections", |l| {
        status_num(l, "collections") >= 3
    });
    influx.stop();
    std::thread::sleep(Duration::from_secs(15));
    let before_kill = first.wait_status(Duration::from_secs(5), "a status line", |_| true);
    let log1 = first.sigkill();
    let run1 = status_num(&before_kill, "collections");
    let second = s.start(&influx, "crash", &env, 2);
    second.wait_status(Duration::from_secs(20), "collections", |l| {
        status_num(l, "collections") >= 5
    });
    influx.start_again();
    second.wait_status(Duration::from_secs(40), "the spool to drain", |l| {
        spool_lines(l) == 0
    });
    let (code, log2) = second.stop();
    assert_eq!(code, Some(0), "{log2}");
    assert_eq!(counter(&log2, "lines_dropped"), 0, "{log2}");
    assert_eq!(counter(&log2, "unaccounted"), 0, "{log2}");
    assert!(counter(&log2, "lines_recovered") > 0, "{log2}");
    assert!(
        log2.contains("to replay"),
        "the second run found the first run's spool:\n{log2}"
    );
    let run2 = counter(&log2, "collections");
    // Every domain has one point per collection of both runs: nothing lost,
    // and the same count for all (no batch half-delivered). The first run
    // may have collected once more between its last status line and SIGKILL.
    let counts = per_domain(&influx, "crash");
    assert_eq!(counts.len(), DOMAINS, "{counts:?}");
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    assert!(
        (run1 + run2..=run1 + run2 + 1).contains(&counts[0]),
        "{} points per domain, runs collected {run1} + {run2}\nrun 1:\n{log1}",
        counts[0]
    );
}

/// A spool budget far below the outage: exactly the oldest segments go, the
/// drop counter says how many lines, and everything else arrives.
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn small_spool_drops_exactly_the_oldest_segments() {
    let mut influx = common::InfluxD::start();
    influx.create_db("budget");
    let s = Setup::new();
    let env = [
        ("MAX_QUEUE", "2000"),
        ("BATCH_MAX_LINES", "500"),
        ("SPOOL_MAX_BYTES", "400000"),
    ];
    let vm = s.start(&influx, "budget", &env, 1);
    vm.wait_status(Duration::from_secs(20), "collections", |l| {
        status_num(l, "collections") >= 3
    });
    influx.stop();
    vm.wait_status(Duration::from_secs(60), "segments dropped", |l| {
        l.contains("segments dropped ") && !l.contains("segments dropped 0")
    });
    // Keep dropping for a while: the hole in the data is then many seconds wide.
    std::thread::sleep(Duration::from_secs(12));
    influx.start_again();
    vm.wait_status(Duration::from_secs(40), "the spool to drain", |l| {
        spool_lines(l) == 0
    });
    let (code, log) = vm.stop();
    assert_eq!(code, Some(0), "{log}");
    let (queued, dropped) = (
        counter(&log, "lines_queued"),
        counter(&log, "lines_dropped"),
    );
    assert!(dropped > 0, "{log}");
    assert!(
        log.contains("spool.max_bytes"),
        "the drop is logged naming the setting:\n{log}"
    );
    assert_eq!(stored(&influx, "budget"), queued - dropped);
    // The dropped lines are the oldest of the outage: one domain's points
    // show a single hole, then every second until the end (a collection
    // delayed by a busy machine leaves 2-3 s, never the hole's width).
    let v = influx.query(
        "budget",
        "SELECT \"state\" FROM \"vm_metrics\" WHERE \"name\" = 'vm-007'",
    );
    let times: Vec<i64> = v["results"][0]["series"][0]["values"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p[0].as_i64())
        .collect();
    let gaps = times
        .windows(2)
        .filter(|w| w[1] - w[0] > 6_000_000_000)
        .count();
    assert_eq!(gaps, 1, "{times:?}");
}

/// An unusable spool directory stops the start with one line naming it
/// (exit 2); a torn segment is skipped and counted, and no broken line is
/// sent; a second process on a spool in use is refused naming the holder's pid (exit 1:
/// the holder ends, so systemd's Restart=on-failure may retry).
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
fn unusable_spool_dir_exits_2_and_a_torn_segment_is_skipped() {
    let influx = common::InfluxD::start();
    influx.create_db("torn");
    let s = Setup::new();
    // A file where a directory should be: unusable even for root.
    let blocker = s.spool.with_file_name("not-a-dir");
    std::fs::write(&blocker, "x").expect("write");
    let bad = blocker.join("spool");
    let out = s.run_until_exit(&influx, &bad);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("spool")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&bad.display().to_string()) && lines[0].contains("--spool-dir"),
        "{stderr}"
    );

    // A segment with two good records and a third cut short.
    std::fs::create_dir_all(&s.spool).expect("spool dir");
    let good: Vec<String> = (0..3)
        .map(|i| format!("spooltest,k=a v={i}i {}", 1_000 + i))
        .collect();
    let more: Vec<String> = (3..5)
        .map(|i| format!("spooltest,k=a v={i}i {}", 1_000 + i))
        .collect();
    let torn = vmpulse::spool::record::encode(&["spooltest,k=a v=99i 1099".to_string()], 0);
    let mut f = File::create(s.spool.join("00000000000000000001.seg")).expect("segment");
    f.write_all(&vmpulse::spool::record::encode(&good, 0))
        .expect("write");
    f.write_all(&vmpulse::spool::record::encode(&more, 0))
        .expect("write");
    f.write_all(&torn[..torn.len() - 4]).expect("write");
    drop(f);
    let vm = s.start(&influx, "torn", &[], 1);
    vm.wait_status(Duration::from_secs(20), "the spool to drain", |l| {
        spool_lines(l) == 0 && status_num(l, "collections") >= 2
    });
    // A second process on the same spool is refused, naming the holder.
    let second = s.run_until_exit(&influx, &s.spool);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", vm.pid())), "{stderr}");
    let (code, log) = vm.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("torn or corrupt tail"), "{log}");
    assert_eq!(counter(&log, "lines_rejected"), 0, "{log}");
    assert_eq!(influx.count("torn", "spooltest", "v"), 5);
}

/// Descriptors vmpulse holds now.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Holds up to `max` idle connections to `sock`; every 3 s the 20 oldest
/// (those the process accepted) are closed and replaced, so that at its
/// descriptor limit the process's own calls now and then win a descriptor.
fn flood(sock: PathBuf, max: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut held = std::collections::VecDeque::new();
        let mut opened = 0;
        let mut tick = 0u64;
        while !stop.load(Ordering::Relaxed) {
            if held.len() < max {
                if let Ok(c) = std::os::unix::net::UnixStream::connect(&sock) {
                    held.push_back(c);
                    opened += 1;
                }
            }
            tick += 1;
            if tick.is_multiple_of(150) {
                held.drain(..held.len().min(20));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        opened
    })
}

/// File descriptors run out during an outage: the process's limit is set
/// just above what it uses, and idle connections to its control socket take
/// the rest, so appends to a new segment, replay reads and connects to
/// InfluxDB fail with EMFILE at random points while InfluxDB is down and
/// after it is back. Nothing is lost and nothing uncounted: the final
/// counters balance and InfluxDB holds every queued line.
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH and prlimit: cargo test --features system-tests"
)]
fn fd_exhaustion_during_an_outage_loses_nothing() {
    let mut influx = common::InfluxD::start();
    influx.create_db("emfile");
    let s = Setup::new();
    // Segments of 1 MB: a new file is needed every few seconds. The memory
    // queue (default) holds lines while the spool rests after an EMFILE.
    let env = [
        ("BATCH_MAX_LINES", "500"),
        ("SPOOL_MAX_BYTES", "8000000"),
        ("VMPULSE_LOG", "info,vmpulse=debug"),
    ];
    let vm = s.start(&influx, "emfile", &env, 1);
    vm.wait_status(Duration::from_secs(20), "collections", |l| {
        status_num(l, "collections") >= 3
    });
    let limit = open_fds(vm.pid()) + 16;
    let set = Command::new("prlimit")
        .args(["--pid", &vm.pid().to_string()])
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("run prlimit");
    assert!(set.success(), "prlimit failed");
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(s.spool.with_file_name("vmpulse-1.sock"), 200, stop.clone());
    std::thread::sleep(Duration::from_secs(5));
    influx.stop();
    let mut at_limit = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(5));
        at_limit.push(open_fds(vm.pid()));
    }
    influx.start_again();
    std::thread::sleep(Duration::from_secs(20));
    stop.store(true, Ordering::Relaxed);
    let opened = flooder.join().expect("flood thread");
    vm.wait_status(Duration::from_secs(60), "the spool to drain", |l| {
        spool_lines(l) == 0
    });
    let (code, log) = vm.stop();
    let emfile = log.matches("os error 24").count();
    let kinds = [
        "cannot write the spool",
        "cannot read the spool",
        "tcp open error",
    ]
    .map(|k| {
        (
            k,
            log.lines()
                .filter(|l| l.contains(k) && l.contains("os error 24"))
                .count(),
        )
    });
    eprintln!("EMFILE by kind: {kinds:?}");
    eprintln!(
        "fd limit {limit} ({at_limit:?} open during the outage), {opened} connections opened, {emfile} EMFILE errors logged\n{}",
        log.lines().find(|l| l.contains("final:")).unwrap_or("")
    );
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(counter(&log, "unaccounted"), 0, "{log}");
    assert_eq!(counter(&log, "lines_dropped"), 0, "{log}");
    assert_eq!(counter(&log, "unsent"), 0, "{log}");
    assert_eq!(counter(&log, "spooled"), 0, "{log}");
    assert!(!log.contains("rest skipped"), "{log}");
    assert_eq!(
        stored(&influx, "emfile"),
        counter(&log, "lines_queued"),
        "InfluxDB holds every queued line"
    );
}
