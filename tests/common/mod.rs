//! Test servers started for real: Debian's `influxd` 1.x on a loopback port
//! with a temp data dir, stopped by pid when dropped.
#![allow(dead_code)]

pub mod lab;
pub mod nspawn;
pub mod tmux;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

pub struct InfluxD {
    /// `None` while stopped (`stop`), until `start_again`.
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    conf: PathBuf,
    dir: tempfile::TempDir,
}

impl InfluxD {
    /// Starts `influxd run` and waits (bounded) until `/ping` answers 204.
    pub fn start() -> InfluxD {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let d = dir.path();
        let conf = format!(
            r#"reporting-enabled = false
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"#,
            rpc = free_port(),
            d = d.display(),
            port = port
        );
        let conf_path = d.join("influxd.conf");
        std::fs::write(&conf_path, conf).expect("write influxd.conf");
        let mut server = InfluxD {
            child: None,
            port,
            url: format!("http://127.0.0.1:{port}"),
            conf: conf_path,
            dir,
        };
        server.start_again();
        server
    }

    /// Stops the server (SIGKILL, like a crash or a pulled cable); its data stays.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and data, waiting (bounded) for `/ping`.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "influxd is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("influxd.log"))
            .expect("influxd log");
        let child = Command::new(influxd_bin())
            .arg("run")
            .arg("-config")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start influxd (install Debian's 'influxdb' package)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((status, _)) = http("GET", self.port, "/ping", &[], b"") {
                if status == 204 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "influxd did not answer /ping on port {} within 30 s",
            self.port
        );
    }

    pub fn create_db(&self, db: &str) {
        let (status, body) = self.query_raw("", &format!("CREATE DATABASE \"{db}\""));
        assert_eq!(status, 200, "CREATE DATABASE failed: {body}");
    }

    /// Runs an InfluxQL query; returns the status and body.
    pub fn query_raw(&self, db: &str, q: &str) -> (u16, String) {
        let body = format!("db={}&epoch=ns&q={}", urlencode(db), urlencode(q));
        let (status, body) = http(
            "POST",
            self.port,
            "/query",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
        .expect("query influxd");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// Runs an InfluxQL query and parses the JSON answer.
    pub fn query(&self, db: &str, q: &str) -> serde_json::Value {
        let (status, body) = self.query_raw(db, q);
        assert_eq!(status, 200, "query '{q}' failed: {body}");
        serde_json::from_str(&body).expect("influxd answers JSON")
    }

    /// `SELECT COUNT(field) FROM m` as a number (0 when the series is empty).
    pub fn count(&self, db: &str, measurement: &str, field: &str) -> u64 {
        let v = self.query(
            db,
            &format!("SELECT COUNT(\"{field}\") FROM \"{measurement}\""),
        );
        v["results"][0]["series"][0]["values"][0][1]
            .as_u64()
            .unwrap_or(0)
    }
}

impl Drop for InfluxD {
    fn drop(&mut self) {
        self.stop();
    }
}

fn influxd_bin() -> PathBuf {
    for p in ["/usr/bin/influxd", "/usr/local/bin/influxd"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("influxd")
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A minimal blocking HTTP/1.1 client (Connection: close), so test helpers
/// need no async runtime.
pub fn http(
    method: &str,
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header end"))?;
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let mut rest = buf[head_end + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        rest = dechunk(&rest);
    }
    Ok((status, rest))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

/// A test-driver host of `n` running domains (`vm-000`...), one disk and one
/// NIC each, written to `dir/host.xml`; returns its `test://` URI.
pub fn test_driver_host(dir: &Path, n: usize) -> String {
    let mut x = String::from("<node>\n");
    for i in 0..n {
        x.push_str(&format!(
            "<domain type='test'><name>vm-{i:03}</name><uuid>00000000-0000-0000-0000-{i:012}</uuid>\
             <memory unit='KiB'>1048576</memory><vcpu>1</vcpu><os><type>hvm</type></os><devices>\
             <disk type='file' device='disk'><source file='/var/lib/x/{i}.img'/><target dev='vda' bus='virtio'/></disk>\
             <interface type='ethernet'><mac address='52:54:00:00:{:02x}:{:02x}'/><target dev='tap{i}'/></interface>\
             </devices></domain>\n",
            i / 256,
            i % 256
        ));
    }
    x.push_str("</node>\n");
    let path = dir.join("host.xml");
    std::fs::write(&path, x).expect("write host.xml");
    format!("test://{}", path.display())
}

/// Lines InfluxDB holds for a test-driver host like [`test_driver_host`]'s,
/// all measurements (one disk and one NIC line per domain in `vm_devices`).
pub fn stored_lines(influx: &InfluxD, db: &str) -> u64 {
    STORED_BY.iter().map(|(m, f)| influx.count(db, m, f)).sum()
}

/// Every measurement vmpulse writes, with a field each of its lines carries (the
/// NICs and disks of `vm_devices` share no field, hence two entries): their counts
/// add up to the lines written. The host's and the event measurements count too: a
/// test-driver host writes a `hypervisor` point, and the default alert levels may
/// raise one on a paused fixture VM.
pub const STORED_BY: [(&str, &str); 10] = [
    ("vm_metrics", "state"),
    ("vm_features", "memory_rate_kb_per_sec"),
    ("vm_devices", "rxbytes"),
    ("vm_devices", "rd_bytes"),
    ("vm_totals", "state"),
    ("vm_jobs", "type"),
    ("vm_alerts", "level"),
    ("hypervisor", "cpus"),
    ("hypervisor_numa", "memory_free_kb"),
    ("hypervisor_hugepages", "pages_free"),
];

/// `key=value` from the final counters line of a `--no-ui` run's log.
pub fn final_counter(log: &str, key: &str) -> u64 {
    let line = log
        .lines()
        .find(|l| l.contains("final:"))
        .unwrap_or_else(|| panic!("no final line in:\n{log}"));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {line}"))
}

/// A real InfluxDB 3 Core (`influxdb3 serve`, file object store in a temp dir,
/// no auth) on a loopback port, killed when dropped. The binary is not packaged:
/// `VMPULSE_INFLUXDB3` names it (scripts/test.sh sets it when one lies next to the
/// checkout); without it the tests that need it say so and return.
pub struct InfluxDb3 {
    child: Child,
    pub port: u16,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl InfluxDb3 {
    /// The server, or `None` (with one line on stderr) when no binary is configured.
    pub fn start_if_present(test: &str) -> Option<InfluxDb3> {
        Self::start_if_present_with(test, &[])
    }

    /// Like [`InfluxDb3::start_if_present`], with more `serve` arguments.
    pub fn start_if_present_with(test: &str, extra: &[&str]) -> Option<InfluxDb3> {
        let bin = match std::env::var_os("VMPULSE_INFLUXDB3").map(PathBuf::from) {
            Some(b) if b.exists() => b,
            _ => {
                eprintln!(
                    "{test}: skipped, no InfluxDB 3 binary (set VMPULSE_INFLUXDB3 to influxdb3)"
                );
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("influxdb3.log")).expect("log file");
        let child = Command::new(bin)
            .args([
                "serve",
                "--node-id",
                "t",
                "--object-store",
                "file",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .args([
                "--http-bind",
                &format!("127.0.0.1:{port}"),
                "--without-auth",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start influxdb3 (it needs Debian's libpython3.11: scripts/setup.sh test)");
        let server = InfluxDb3 {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http("GET", port, "/health", &[], b"") {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("influxdb3 did not answer /health on port {port} within 60 s");
    }

    /// An SQL query's rows (`/api/v3/query_sql`, JSON).
    pub fn sql(&self, db: &str, q: &str) -> Vec<serde_json::Value> {
        let path = format!(
            "/api/v3/query_sql?db={}&format=json&q={}",
            urlencode(db),
            urlencode(q)
        );
        let (status, body) = http("GET", self.port, &path, &[], b"").expect("query influxdb3");
        let text = String::from_utf8_lossy(&body).into_owned();
        assert_eq!(status, 200, "query '{q}' failed: {text}");
        serde_json::from_str(&text).expect("influxdb3 answers JSON rows")
    }
}

impl Drop for InfluxDb3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
