//! The real `vmpulse` binary in a real terminal (tmux) against the libvirt
//! test driver (`tests/fixtures/tui-host.xml`, four domains): it starts and
//! shows the right names, `?` opens the help, `s` toggles collection in the
//! header, `/` filters, `q` exits 0 and leaves the terminal in normal mode
//! (alternate screen left, canonical mode back); SIGTERM does the same.
//!
//! Each test uses its own tmux server (`-L`), killed on drop. Every wait is
//! bounded: capture-pane is polled every 100 ms up to a deadline.

mod common;

use std::path::{Path, PathBuf};

use common::tmux::Pane;

const BIN: &str = env!("CARGO_BIN_EXE_vmpulse");
const HOSTILE: &str = r#"web 01,env=prod "x"\y"#;

/// The TUI in a real terminal, with its own empty home.
struct Tmux {
    pane: Pane,
    _home: tempfile::TempDir,
}

impl std::ops::Deref for Tmux {
    type Target = Pane;
    fn deref(&self) -> &Pane {
        &self.pane
    }
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tui-host.xml")
}

impl Tmux {
    /// Starts `vmpulse --connect test:///…/tui-host.xml` in a 120×40 pane; after
    /// it exits the pane prints its exit code and whether the tty is canonical.
    fn start(name: &str) -> Self {
        Self::start_with(name, "LANG=C.UTF-8")
    }

    /// [`Tmux::start`] under the given locale (`LANG=...`).
    fn start_with(name: &str, locale: &str) -> Self {
        Self::start_env_args(name, locale, "", "")
    }

    /// [`Tmux::start_with`], with more variables (`K=V ...`, later ones win)
    /// and more flags, both already quoted for `sh`.
    fn start_env_args(name: &str, locale: &str, env: &str, args: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let uri = format!("test://{}", fixture().display());
        // A clean environment: no Influx settings or config file from the
        // developer's shell may change what the UI shows; a UTF-8 locale (under
        // LANG=C vmpulse draws ASCII only); no running service to attach to (the
        // socket points into the empty home).
        let script = format!(
            "env -u INFLUX_URL -u INFLUX_TOKEN -u INFLUX_DB -u INFLUX_API -u INFLUX_ORG \
             -u LIBVIRT_URI -u POLL_INTERVAL -u VMPULSE_CONFIG -u NO_COLOR -u LC_ALL -u LC_CTYPE \
             {locale} HOME={home} XDG_CONFIG_HOME={home} VMPULSE_SOCKET={home}/none.sock {env} {bin} --connect {uri} {args}; \
             echo \"vmpulse-exit=$?\"; \
             stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e -icanon | sed 's/^/tty-/'; \
             sleep 120",
            home = sh_quote(&home.path().display().to_string()),
            locale = sh_quote(locale),
            bin = sh_quote(BIN),
            uri = sh_quote(&uri),
        );
        Self {
            pane: Pane::start(name, &script),
            _home: home,
        }
    }

    fn wait_exit(&self) -> String {
        let screen = self.wait_for("vmpulse to exit", 30, |s| s.contains("tty-"));
        assert!(
            screen.contains("vmpulse-exit=0"),
            "exit code not 0:\n{screen}"
        );
        assert!(
            screen.lines().any(|l| l.trim() == "tty-icanon"),
            "terminal left in raw mode:\n{screen}"
        );
        assert_eq!(self.alternate_on(), "0", "alternate screen not left");
        screen
    }
}

impl Tmux {
    /// The pane runs `sh`; vmpulse is its only child.
    fn vmpulse_pid(&self) -> i32 {
        let sh = self.pane_pid();
        std::fs::read_to_string(format!("/proc/{sh}/task/{sh}/children"))
            .expect("read children of the pane's shell")
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .expect("vmpulse pid")
    }

    /// Closes the terminal under vmpulse, as a dropped SSH session does: the tmux
    /// server goes, the pty hangs up.
    fn close_terminal(&self) {
        self.tmux(&["kill-server"]);
    }
}

/// CPU ticks (user + system) of `pid`; `None` once it is gone.
fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None; // exited, not yet reaped (its parent shell died with the pane)
    }
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Waits up to `secs` for `pid` to end; a survivor is measured for a second (a
/// process spinning on a dead terminal burns a whole core), killed, and reported.
fn assert_ends_within(pid: i32, secs: u64, what: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if cpu_ticks(pid).is_none() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let before = cpu_ticks(pid).unwrap_or(0);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after = cpu_ticks(pid).unwrap_or(before);
    // SAFETY: plain kill(2) on a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    panic!(
        "vmpulse still running {secs}s after {what}, using {} CPU ticks a second",
        after - before
    );
}

fn header(screen: &str) -> String {
    screen.lines().take(3).collect::<Vec<_>>().join("\n")
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux on PATH: cargo test --features system-tests"
)]
fn starts_shows_vms_help_toggle_filter_and_quits_cleanly() {
    let t = Tmux::start("keys");
    let names = ["alpha-web", "bravo-db", HOSTILE, "delta-off"];
    t.wait_for("all four VM cards", 20, |s| {
        names.iter().all(|n| s.contains(n))
    });
    assert_eq!(t.alternate_on(), "1", "UI runs on the alternate screen");
    let s = t.capture();
    assert!(s.contains("4 VMs"), "VM count in header:\n{s}");
    assert!(
        s.contains("SHUTOFF"),
        "shut-off domain shown with its state:\n{s}"
    );

    // Help overlay, generated from the binding table.
    t.keys(&["?"]);
    t.wait_for("help overlay", 10, |s| {
        s.contains("Help") && s.contains("start / stop collection")
    });
    t.keys(&["Escape"]);
    t.wait_for("help to close", 10, |s| {
        !s.contains("start / stop collection")
    });

    // Start/stop shows in the header.
    t.wait_for("collecting in header", 10, |s| {
        header(s).contains("▶ collecting")
    });
    t.keys(&["s"]);
    t.wait_for("stopped in header", 15, |s| header(s).contains("■ stopped"));
    t.keys(&["s"]);
    t.wait_for("collecting again", 15, |s| {
        header(s).contains("▶ collecting")
    });

    // Live filter by name substring; Esc clears it.
    t.keys(&["/"]);
    t.literal("bra");
    let s = t.wait_for("filtered list", 10, |s| {
        s.contains("bravo-db") && !s.contains("alpha-web")
    });
    assert!(!s.contains("delta-off"), "{s}");
    t.keys(&["Escape"]);
    t.wait_for("filter cleared", 10, |s| {
        names.iter().all(|n| s.contains(n))
    });

    t.keys(&["q"]);
    let s = t.wait_exit();
    assert!(
        !s.contains("alpha-web"),
        "UI left on screen after exit:\n{s}"
    );
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux on PATH: cargo test --features system-tests"
)]
fn sigterm_restores_the_terminal() {
    let t = Tmux::start("term");
    t.wait_for("cards", 20, |s| s.contains("alpha-web"));
    let pid = t.vmpulse_pid();
    // SAFETY: plain kill(2) on a process this test started.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0);
    t.wait_exit();
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux on PATH: cargo test --features system-tests"
)]
fn a_non_utf8_locale_draws_ascii_only() {
    let t = Tmux::start_with("ascii", "LANG=C");
    let s = t.wait_for("the cards in ASCII", 20, |s| {
        s.contains("alpha-web") && s.contains("> collecting")
    });
    assert!(s.is_ascii(), "only ASCII on screen:\n{s}");
    assert!(
        s.contains("+") && s.contains("|CPU"),
        "ASCII borders and gauges:\n{s}"
    );
    t.keys(&["q"]);
    t.wait_exit();
}

/// A stand-in InfluxDB: a loopback listener that only counts connections.
fn influx_listener() -> (std::net::TcpListener, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    (l, url)
}

fn connected(l: &std::net::TcpListener) -> bool {
    l.accept().is_ok()
}

/// A `vmpulse --no-ui` service (no InfluxDB) on `socket`; killed on drop.
struct Service(std::process::Child);

impl Service {
    fn start(socket: &Path) -> Self {
        let child = std::process::Command::new(BIN)
            .args(["--no-ui", "-c", "test:///default", "--socket"])
            .arg(socket)
            .env_remove("INFLUX_URL")
            .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
            .env("SPOOL_DIR", socket.with_extension("spool"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the service");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !socket.exists() {
            assert!(std::time::Instant::now() < deadline, "no service socket");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Self(child)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Next to a running service, a TUI that collects on its own (`--standalone`
/// here; a socket that refuses this user does the same) must not become a second
/// shipper: its header says the writer is off and InfluxDB hears nothing from it.
/// With no service on the host it ships, as it always did.
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux on PATH: cargo test --features system-tests"
)]
fn a_standalone_tui_next_to_a_service_does_not_ship() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("svc.sock");
    let _service = Service::start(&socket);
    let (influx, url) = influx_listener();
    let env = format!(
        "VMPULSE_SOCKET={} INFLUX_URL={} INFLUX_API=v1",
        sh_quote(&socket.display().to_string()),
        sh_quote(&url)
    );
    let t = Tmux::start_env_args("held", "LANG=C.UTF-8", &env, "--standalone -d 0.2");
    t.wait_for("the held writer in the header", 20, |s| {
        header(s).contains("writer off (service ships)")
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(!connected(&influx), "the held TUI wrote to InfluxDB");
    t.keys(&["q"]);
    t.wait_exit();

    // No service: the TUI is the host's shipper.
    let (influx, url) = influx_listener();
    let env = format!("INFLUX_URL={} INFLUX_API=v1", sh_quote(&url));
    let t = Tmux::start_env_args("ships", "LANG=C.UTF-8", &env, "-d 0.2");
    t.wait_for("the cards", 20, |s| s.contains("alpha-web"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !connected(&influx) {
        assert!(std::time::Instant::now() < deadline, "the TUI never wrote");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Quitting flushes to a server that never answers (up to influx.flush_timeout,
    // 10 s); the terminal closing meanwhile must not keep vmpulse alive.
    let pid = t.vmpulse_pid();
    t.keys(&["q"]);
    t.wait_for("the flush on screen", 10, |s| {
        s.contains("Quitting") || s.contains("vmpulse-exit")
    });
    t.close_terminal();
    assert_ends_within(pid, 20, "its terminal closed during the flush");
}

/// An operator's SSH session drops: the pty hangs up under a running TUI. vmpulse
/// ends, flushing what it holds, instead of living on without a terminal: crossterm
/// alone re-reads a dead terminal forever at 100 % of a core, and the loop never got
/// back to the flush or its timeout (crossterm-rs/crossterm#793). Both with nothing
/// to flush and with lines held for an InfluxDB that accepts and never answers (the
/// flush then runs to `influx.flush_timeout`, 10 s), the terminal closing right
/// after `q` (before this was handled, vmpulse survived that every time, spinning).
#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux on PATH: cargo test --features system-tests"
)]
fn a_closed_terminal_ends_the_tui() {
    for round in 0..2 {
        let t = Tmux::start(&format!("hangup{round}"));
        t.wait_for("cards", 20, |s| s.contains("alpha-web"));
        let pid = t.vmpulse_pid();
        t.close_terminal();
        assert_ends_within(pid, 10, "its terminal closed");
    }
    let (url, _held) = black_hole();
    let env = format!("INFLUX_URL={} INFLUX_API=v1", sh_quote(&url));
    for round in 0..2 {
        let t = Tmux::start_env_args(
            &format!("hangup-flush{round}"),
            "LANG=C.UTF-8",
            &env,
            "-d 0.2",
        );
        t.wait_for("cards", 20, |s| s.contains("alpha-web"));
        std::thread::sleep(std::time::Duration::from_millis(600)); // lines to flush
        let pid = t.vmpulse_pid();
        if round == 1 {
            t.keys(&["q"]);
        }
        t.close_terminal();
        assert_ends_within(pid, 25, "its terminal closed with lines to flush");
    }
}

/// An InfluxDB that accepts connections and never answers; they stay open while
/// the returned guard lives.
fn black_hole() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in l.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    (url, held)
}
