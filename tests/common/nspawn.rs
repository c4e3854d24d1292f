//! A real systemd booted in a container: the cached Debian 12 root of
//! `scripts/boot-root.sh`, booted by `systemd-nspawn -b` with a private network and a
//! tmpfs overlay over the root (the cache stays as it was), commands run inside with
//! `nsenter`. Dropping it powers the container off (bounded, then SIGKILL), so no
//! container, process or mount outlives the test, failed or not.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The cached root (made on first use, a few minutes; then reused).
pub fn cached_root() -> PathBuf {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/boot-root.sh");
    let out = Command::new(script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{script}: {e}"));
    assert!(out.status.success(), "{script} failed");
    let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    PathBuf::from(root)
}

pub struct Booted {
    nspawn: Child,
    /// The container's PID 1 (its systemd) as this host numbers it.
    leader: u32,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Booted {
    /// Boots `root` read-only under a tmpfs overlay, with `share` bound read-only at
    /// `/mnt/share`, and waits (bounded) until its systemd says the boot finished.
    pub fn boot(root: &Path, name: &str, share: &Path) -> Booted {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("console.log");
        let console = std::fs::File::create(&log).expect("console log");
        let nspawn = Command::new("systemd-nspawn")
            // --keep-unit: without it nspawn wants a system bus to register a scope.
            .args([
                "-q",
                "-b",
                "--register=no",
                "--keep-unit",
                "--private-network",
            ])
            .args(["--volatile=overlay", "--console=read-only"])
            .arg(format!("--machine={name}"))
            .arg(format!("--bind-ro={}:/mnt/share", share.display()))
            .arg("-D")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(console.try_clone().expect("log"))
            .stderr(console)
            .spawn()
            .expect("start systemd-nspawn (apt-get install systemd-container)");
        let mut booted = Booted {
            leader: 0,
            nspawn,
            log,
            _dir: dir,
        };
        booted.leader = booted.find_leader();
        // Until its manager answers, systemctl says "offline" (or nothing); then
        // "initializing", "starting", and at the end "running" or "degraded" (some
        // unit of the minimal system failed; vmpulse is judged on its own).
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = booted.sh("systemctl is-system-running");
            let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                return booted;
            }
            assert!(
                Instant::now() < deadline,
                "boot not finished after 120 s ({state:?}):\n{}",
                booted.console()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// nspawn's child in another pid namespace whose command is systemd.
    fn find_leader(&mut self) -> u32 {
        let pid = self.nspawn.id();
        let own_ns = std::fs::read_link("/proc/self/ns/pid").expect("own pid namespace");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.nspawn.try_wait() {
                panic!("systemd-nspawn exited {st}:\n{}", self.console());
            }
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            for child in children.split_whitespace() {
                let ns = std::fs::read_link(format!("/proc/{child}/ns/pid")).ok();
                let comm =
                    std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                if ns.is_some_and(|n| n != own_ns) && comm.trim() == "systemd" {
                    return child.parse().expect("pid");
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no systemd in the container after 30 s:\n{}",
            self.console()
        );
    }

    /// `sh -c script` inside the container, as its root, with a plain environment.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.leader.to_string(), "-a", "sh", "-c", script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C.UTF-8")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// [`Booted::sh`] that must succeed; its stdout.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        if !out.status.success() {
            let journal = self.sh("journalctl -n 40 -o short-monotonic --no-pager");
            panic!(
                "in the container `{script}` failed ({}):\n{}\n{}\nthe journal's end:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&journal.stdout)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `systemctl show -p NAME --value UNIT`.
    pub fn prop(&self, unit: &str, name: &str) -> String {
        self.ok(&format!("systemctl show -p {name} --value {unit}"))
            .trim()
            .to_string()
    }

    /// What the container printed on its console (the boot messages).
    pub fn console(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill(2) on nspawn (our unreaped child) or the container's init (0 before it
    /// was found: then nothing is sent).
    fn signal(&self, pid: u32, sig: i32) {
        if pid == 0 {
            return;
        }
        // SAFETY: kill(2) touches no memory; both pids stay ours until nspawn is reaped.
        unsafe { libc::kill(pid as libc::pid_t, sig) };
    }

    fn exited_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Booted {
    /// SIGTERM makes nspawn power the container off cleanly; after 30 s it is killed.
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.nspawn.try_wait() {
            return;
        }
        self.signal(self.nspawn.id(), libc::SIGTERM);
        if self.exited_within(Duration::from_secs(30)) {
            return;
        }
        // Killing a pid namespace's init kills every process in it; nspawn then
        // exits and its mount namespace (overlay, binds) goes with it.
        self.signal(self.leader, libc::SIGKILL);
        if !self.exited_within(Duration::from_secs(10)) {
            self.signal(self.nspawn.id(), libc::SIGKILL);
            let _ = self.nspawn.wait();
        }
    }
}
