//! A real terminal for the TUI tests: one tmux server per test (its own `-L`
//! socket), one 120×40 session `vmp` running a shell script, killed on drop.

use std::process::Command;
use std::time::{Duration, Instant};

pub struct Pane {
    socket: String,
}

impl Pane {
    /// Starts `sh -c script` in a detached 120×40 session; `name` keeps the tmux
    /// servers of tests running in parallel apart.
    pub fn start(name: &str, script: &str) -> Pane {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "tmux is needed for this test (apt-get install tmux)"
        );
        let p = Pane {
            socket: format!("vmpulse-test-{}-{name}", std::process::id()),
        };
        p.tmux(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            "vmp",
            "sh",
            "-c",
            script,
        ]);
        p
    }

    /// Runs one tmux command against this test's server and returns its stdout.
    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn capture(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "vmp"])
    }

    /// Key names as tmux reads them (`Enter`, `q`, `C-c`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "vmp"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Text typed as it is.
    pub fn literal(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "vmp", "-l", text]);
    }

    pub fn alternate_on(&self) -> String {
        self.tmux(&["display", "-p", "-t", "vmp", "#{alternate_on}"])
            .trim()
            .to_string()
    }

    pub fn pane_pid(&self) -> u32 {
        self.tmux(&["display", "-p", "-t", "vmp", "#{pane_pid}"])
            .trim()
            .parse()
            .expect("pane pid")
    }

    /// Polls the pane until `pred` holds, at most `secs` seconds.
    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}
