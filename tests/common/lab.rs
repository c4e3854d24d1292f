//! Real-guest lab helpers shared by the `lab_*` tests: `scripts/lab-host.sh`
//! up/down as a guard, the real `vmpulse` binary as a child process, its
//! `--output` line protocol read back, and the guests' serial consoles.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const URI: &str = "qemu:///system";

/// The lab's state directory (as `scripts/lab-host.sh` sets it).
pub fn lab_dir() -> PathBuf {
    std::env::var_os("VMPULSE_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/vmpulse-lab"))
}

/// The lab is torn down when this guard drops, whether the test passed or panicked.
pub struct Lab {
    script: PathBuf,
}

impl Lab {
    /// `lab-host.sh up N` (bounded); guest 2 gets the hostile name.
    pub fn up(n: u32) -> (Lab, Vec<String>) {
        Self::up_with(n, true)
    }

    /// `lab-host.sh up N`; `hostile` false names every guest `lab-N`. Running
    /// it again with a larger N keeps the guests already up.
    pub fn up_with(n: u32, hostile: bool) -> (Lab, Vec<String>) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lab-host.sh");
        let lab = Lab {
            script: script.clone(),
        };
        // stdout carries the result; the script's progress goes to our stderr. Its
        // daemons never hold this pipe (the script redirects their stdio), so
        // `output()` returns when the script does. `timeout` bounds the whole run.
        let out = Command::new("timeout")
            .arg("900")
            .arg("bash")
            .arg(&script)
            .arg("up")
            .arg(n.to_string())
            .env("VMPULSE_LAB_HOSTILE", if hostile { "1" } else { "0" })
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/lab-host.sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "lab-host.sh up {n} failed ({}); stdout:\n{stdout}",
            out.status
        );
        let guests: Vec<String> = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("guest: "))
            .map(str::to_owned)
            .collect();
        assert_eq!(guests.len(), n as usize, "guest lines in:\n{stdout}");
        assert!(
            stdout.lines().any(|l| l == format!("uri: {URI}")),
            "uri line in:\n{stdout}"
        );
        (lab, guests)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let status = Command::new("timeout")
            .arg("300")
            .arg("bash")
            .arg(&self.script)
            .arg("down")
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("lab-host.sh down failed: {status:?}");
        }
    }
}

/// The pid of a running guest's QEMU process, from libvirt's pid file.
pub fn qemu_pid(guest: &str) -> libc::pid_t {
    let path = format!("/run/libvirt/qemu/{guest}.pid");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("pid in {path} ('{}'): {e}", text.trim()))
}

/// Sends `sig` to `pid` (a QEMU process of the lab).
pub fn signal(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: plain kill(2) on a pid read from libvirt's pid file.
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig})");
}

/// The vmpulse process; killed if the test panics before it was stopped.
pub struct Vmpulse {
    child: Child,
    pub log: PathBuf,
    /// Line protocol written with `--output`.
    pub output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Vmpulse {
    /// `vmpulse --no-ui --connect URI --output FILE --poll-interval SECS`, with
    /// extra environment (e.g. `LIBVIRT_TIMEOUT`).
    pub fn start(poll_secs: f64, env: &[(&str, &str)]) -> Vmpulse {
        let poll = poll_secs.to_string();
        Self::spawn(
            |out| {
                vec![
                    "--output".into(),
                    out.to_string(),
                    "--poll-interval".into(),
                    poll,
                ]
            },
            env,
        )
    }

    /// `vmpulse --no-ui --connect URI` plus `args(output file path)`.
    pub fn spawn(args: impl FnOnce(&str) -> Vec<String>, env: &[(&str, &str)]) -> Vmpulse {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("vmpulse.stderr");
        let output = dir.path().join("lines.lp");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_vmpulse"));
        cmd.args(["--no-ui", "--connect", URI])
            .args(args(&output.to_string_lossy()))
            // A socket of its own: the default one may belong to a running service.
            .env("VMPULSE_SOCKET", dir.path().join("vmpulse.sock"))
            // Its own spool: never another run's leftovers replayed into this test's InfluxDB.
            .env("SPOOL_DIR", dir.path().join("spool"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("vmpulse log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start vmpulse");
        Vmpulse {
            child,
            log,
            output,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails (with the log) if vmpulse exited on its own before `until`.
    pub fn keep_running_until(&mut self, until: Instant) {
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().expect("try_wait vmpulse") {
                panic!(
                    "vmpulse exited on its own ({status}) before SIGTERM; its stderr:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, then a bounded wait (the flush timeout is 10 s by default).
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.child.id() as libc::pid_t, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait vmpulse") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "vmpulse did not exit within 30 s of SIGTERM; its stderr:\n{}",
            self.log_text()
        );
    }

    /// Every line written so far, parsed.
    pub fn lines(&self) -> Vec<LpLine> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines().filter_map(LpLine::parse).collect()
    }
}

impl Drop for Vmpulse {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One line-protocol line of a lab guest (names without spaces, commas or
/// quotes: the lab runs with `VMPULSE_LAB_HOSTILE=0` for these tests).
#[derive(Debug, Clone)]
pub struct LpLine {
    pub measurement: String,
    pub tags: BTreeMap<String, String>,
    /// Numeric fields only (`i` suffix dropped).
    pub fields: BTreeMap<String, f64>,
    /// Seconds since the Unix epoch.
    pub t: f64,
}

impl LpLine {
    pub fn parse(line: &str) -> Option<LpLine> {
        let mut parts = line.split(' ');
        let series = parts.next()?;
        let fields = parts.next()?;
        let ts: i64 = parts.next()?.parse().ok()?;
        let mut s = series.split(',');
        let measurement = s.next()?.to_string();
        let tags = s
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let fields = fields
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k.to_string(), v.trim_end_matches('i').parse().ok()?)))
            .collect();
        Some(LpLine {
            measurement,
            tags,
            fields,
            t: ts as f64 / 1e9,
        })
    }

    pub fn name(&self) -> &str {
        self.tags.get("name").map(String::as_str).unwrap_or("")
    }

    pub fn get(&self, field: &str) -> Option<f64> {
        self.fields.get(field).copied()
    }
}

/// Lines of one measurement for one VM, in time order.
pub fn series<'a>(lines: &'a [LpLine], measurement: &str, vm: &str) -> Vec<&'a LpLine> {
    let mut v: Vec<&LpLine> = lines
        .iter()
        .filter(|l| l.measurement == measurement && l.name() == vm)
        .collect();
    v.sort_by(|a, b| a.t.total_cmp(&b.t));
    v
}

/// Seconds since the Unix epoch, now.
pub fn wall_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Follows a guest's serial console file, stamping each new line with the
/// host's wall clock when it was read (polled every 20 ms by [`Console::poll`]).
pub struct Console {
    reader: BufReader<File>,
    partial: String,
    pub lines: Vec<(f64, String)>,
}

impl Console {
    /// Opens `logs/lab-N.console.log` of guest `index`, from its current end.
    pub fn open(index: u32) -> Console {
        let path = lab_dir().join(format!("logs/lab-{index}.console.log"));
        let mut f = File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        f.seek(SeekFrom::End(0)).expect("seek console end");
        Console {
            reader: BufReader::new(f),
            partial: String::new(),
            lines: Vec::new(),
        }
    }

    /// Reads whatever the guest printed since the last call.
    pub fn poll(&mut self) {
        loop {
            let mut buf = String::new();
            match self.reader.read_line(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    self.partial.push_str(&buf);
                    if self.partial.ends_with('\n') {
                        let line = std::mem::take(&mut self.partial);
                        self.lines.push((wall_secs(), line.trim_end().to_string()));
                    }
                }
            }
        }
    }
}
