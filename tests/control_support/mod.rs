//! A real `vmpulse --no-ui` on the libvirt test driver with its control
//! socket in a temp dir, and a minimal blocking HTTP/1.1 client for Unix
//! sockets (independent of vmpulse's own client). Every wait is bounded.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_vmpulse");

pub fn fixture_uri() -> String {
    format!(
        "test://{}/tests/fixtures/e2e-host.xml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A command with a clean environment: no config file or Influx settings
/// from the developer's shell.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("HOME", "/nonexistent-vmpulse-test");
    cmd
}

pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        let needle = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with(&needle)
                .then(|| l[needle.len()..].trim().to_string())
        })
    }
}

fn parse_response(buf: &[u8]) -> std::io::Result<Response> {
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
    Ok(Response {
        status,
        head,
        body: String::from_utf8_lossy(&buf[head_end + 4..]).into_owned(),
    })
}

fn request_text(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request over a Unix socket (Connection: close, Content-Length bodies).
pub fn unix_request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    // Like curl: a server that answers early (413) and closes may cut the
    // upload short; its answer is still there to read.
    let sent = s.write_all(&request_text(method, path, headers, body));
    let mut buf = Vec::new();
    let read = read_answer(&mut s, &mut buf);
    match parse_response(&buf) {
        Ok(r) => Ok(r),
        Err(e) => Err(sent.and(read).err().unwrap_or(e)),
    }
}

/// Reads until EOF; an error after some bytes arrived ends the answer.
fn read_answer(s: &mut impl Read, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One request over TCP to 127.0.0.1:`port`.
pub fn tcp_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(&request_text(method, path, headers, body))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    parse_response(&buf)
}

/// The first `n` lines of `GET /snapshots` (chunked), read as they arrive.
pub fn snapshot_lines(socket: &Path, n: usize) -> Vec<String> {
    let mut s = UnixStream::connect(socket).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(&request_text("GET", "/snapshots", &[], b""))
        .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Head.
    loop {
        line.clear();
        r.read_line(&mut line).expect("read head");
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut data = Vec::new();
    let mut lines = Vec::new();
    while lines.len() < n {
        line.clear();
        r.read_line(&mut line).expect("chunk size");
        let size = usize::from_str_radix(line.trim(), 16).expect("hex chunk size");
        assert!(size > 0, "stream ended after {} lines", lines.len());
        let mut chunk = vec![0u8; size + 2];
        r.read_exact(&mut chunk).expect("chunk");
        data.extend_from_slice(&chunk[..size]);
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = data.drain(..=pos).collect();
            lines.push(String::from_utf8_lossy(&l).trim_end().to_string());
        }
    }
    lines.truncate(n);
    lines
}

/// Polls `f` every 50 ms until it returns `Some`, at most `secs` seconds.
pub fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub struct Service {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub output: PathBuf,
    pub stderr: PathBuf,
}

impl Service {
    /// Starts `vmpulse --no-ui --socket DIR/vmpulse.sock --output DIR/out.lp
    /// --connect test:///…/e2e-host.xml ARGS` and waits for the first collection.
    pub fn start(args: &[&str]) -> Self {
        Self::start_in(tempfile::tempdir().expect("temp dir"), args, &[])
    }

    pub fn start_in(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Self {
        let socket = dir.path().join("vmpulse.sock");
        Self::start_at(dir, socket, args, env)
    }

    /// As [`Service::start_at`], with the soft limit of open files set to
    /// `nofile` in the child (as `prlimit --nofile=N:<hard>` or systemd's default would).
    pub fn start_limited(
        dir: tempfile::TempDir,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: u64,
    ) -> Self {
        let socket = dir.path().join("vmpulse.sock");
        Self::start_with(dir, socket, &fixture_uri(), args, env, move |cmd| {
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe getrlimit/setrlimit between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut lim = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    lim.rlim_cur = nofile.min(lim.rlim_max);
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    /// As [`Service::start_in`], with the socket at `socket`.
    pub fn start_at(
        dir: tempfile::TempDir,
        socket: PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::start_with(dir, socket, &fixture_uri(), args, env, |_| {})
    }

    /// As [`Service::start`], on the libvirt URI `uri` instead of the e2e fixture.
    pub fn start_on(uri: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let socket = dir.path().join("vmpulse.sock");
        Self::start_with(dir, socket, uri, args, &[], |_| {})
    }

    fn start_with(
        dir: tempfile::TempDir,
        socket: PathBuf,
        uri: &str,
        args: &[&str],
        env: &[(&str, &str)],
        customize: impl FnOnce(&mut Command),
    ) -> Self {
        let output = dir.path().join("out.lp");
        let stderr = dir.path().join("stderr.log");
        let mut all = vec![
            "--no-ui",
            "--connect",
            uri,
            "--socket",
            socket.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let mut cmd = command(&all);
        for (k, v) in env {
            cmd.env(k, v);
        }
        customize(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start vmpulse --no-ui");
        let svc = Self {
            child: Some(child),
            dir,
            socket,
            output,
            stderr,
        };
        wait_until("the first collection", 20, || {
            svc.try_get("/status")
                .ok()
                .filter(|r| r.status == 200)
                .filter(|r| r.json()["total_collections"].as_u64() >= Some(1))
        });
        svc
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn try_get(&self, path: &str) -> std::io::Result<Response> {
        unix_request(&self.socket, "GET", path, &[], b"")
    }

    pub fn req(&self, method: &str, path: &str, body: &[u8]) -> Response {
        unix_request(&self.socket, method, path, &[], body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let r = self.req("GET", path, b"");
        assert_eq!(r.status, 200, "GET {path}: {}", r.body);
        r.json()
    }

    pub fn collections(&self) -> u64 {
        self.get_json("/status")["total_collections"]
            .as_u64()
            .expect("total_collections")
    }

    /// Collections counted over `window`.
    pub fn pace(&self, window: Duration) -> u64 {
        let before = self.collections();
        std::thread::sleep(window);
        self.collections() - before
    }

    pub fn output_lines(&self) -> usize {
        std::fs::read_to_string(&self.output)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) on a child this test started.
        unsafe { libc::kill(self.pid() as i32, sig) };
    }

    /// SIGTERM, wait; returns the exit code and stderr.
    pub fn stop(self) -> (Option<i32>, String) {
        let (code, log, _) = self.stop_keeping_files();
        (code, log)
    }

    /// As [`Service::stop`], handing over the temp dir (output, log) to read on.
    pub fn stop_keeping_files(mut self) -> (Option<i32>, String, tempfile::TempDir) {
        self.signal(libc::SIGTERM);
        let status = self.child.take().and_then(|mut c| c.wait().ok());
        let log = self.log();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        (status.and_then(|s| s.code()), log, dir)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Raises this process's soft limit of open files to `want` (at most the hard
/// limit, which needs no privilege) and returns the limit now in force.
pub fn raise_own_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// Up to `n` idle TCP connections to 127.0.0.1:`port`, opened one after
/// another; fewer when 50 attempts fail (a listener whose backlog is full).
pub fn idle_connections(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut held = Vec::with_capacity(n);
    let mut failures = 0;
    while held.len() < n && failures < 50 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(s) => held.push(s),
            Err(_) => failures += 1,
        }
    }
    held
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// `vmpulse ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    command(args).output().expect("run vmpulse")
}

/// The sorted keys of a JSON object.
pub fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

pub fn sorted(k: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = k.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
