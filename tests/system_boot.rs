//! The package under a real systemd: a minimal Debian 12 with libvirt-daemon-system
//! (so the group `libvirt` exists, as on every KVM host) is booted with
//! `systemd-nspawn -b` (tests/common/nspawn.rs), the .deb from `scripts/package.sh`
//! is installed with apt and the service is driven as an operator drives it: it
//! starts and stays up, answers `vmpulse status` by group, reloads, is restarted by
//! an upgrade, stops cleanly, refuses a bad config without a restart loop, retries
//! while libvirt is down and runs once it is up, and `apt remove` / `apt purge` take
//! it away. The unprivileged variant
//! (`DynamicUser=yes`) runs too. No seccomp kill may show in the kernel log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::nspawn::{cached_root, Booted};

/// The package as built, and the same one with a higher version (the upgrade),
/// in a directory the containers see at /mnt/share.
fn packages() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let built = Command::new(format!("{root}/scripts/package.sh"))
            .current_dir(root)
            .output()
            .expect("run scripts/package.sh");
        let said = String::from_utf8_lossy(&built.stdout).into_owned();
        assert!(
            built.status.success(),
            "package.sh: {said}{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let deb = Path::new(root).join(said.lines().last().unwrap_or_default().trim());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("boot-debs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir boot-debs");
        std::fs::copy(&deb, dir.join("vmpulse.deb")).expect("copy the .deb");
        let next = format!("{}+boot1", env!("CARGO_PKG_VERSION"));
        let bumped = Command::new("cargo")
            .args([
                "deb",
                "--no-build",
                "--locked",
                "--quiet",
                "--deb-version",
                &next,
            ])
            .arg("--output")
            .arg(dir.join("vmpulse-next.deb"))
            .current_dir(root)
            .output()
            .expect("run cargo deb");
        assert!(
            bumped.status.success(),
            "cargo deb --deb-version: {}",
            String::from_utf8_lossy(&bumped.stderr)
        );
        dir
    })
}

fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(cached_root)
}

/// Kernel log lines of seccomp kills (audit type 1326) of vmpulse.
fn seccomp_kills() -> Vec<String> {
    let out = Command::new("dmesg").output().expect("dmesg");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("type=1326") && l.contains("vmpulse"))
        .map(str::to_string)
        .collect()
}

fn boot(name: &str) -> Booted {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "booting a container needs root"
    );
    let debs = packages();
    Booted::boot(root(), &format!("{name}-{}", std::process::id()), debs)
}

/// The unit's own log (what vmpulse printed and what systemd said about it).
fn journal(c: &Booted) -> String {
    c.ok("journalctl -u vmpulse -o cat --no-pager")
}

/// Polls `what` every 500 ms for at most `limit`; the last answer when it never held.
fn wait_for(limit: Duration, mut what: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if what() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Active for `span` without a single restart, checked every 5 s.
fn stays_up(c: &Booted, span: Duration) {
    let pid = c.prop("vmpulse", "MainPID");
    let deadline = Instant::now() + span;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(5));
        let state = c.prop("vmpulse", "ActiveState");
        let restarts = c.prop("vmpulse", "NRestarts");
        let now = c.prop("vmpulse", "MainPID");
        assert!(
            state == "active" && restarts == "0" && now == pid,
            "after start: {state}, NRestarts={restarts}, MainPID {pid} -> {now}\n{}",
            journal(c)
        );
    }
}

/// `vmpulse status` as `user` (root when `None`): exit code and stderr.
fn status_as(c: &Booted, user: Option<&str>) -> (Option<i32>, String) {
    let cmd = match user {
        Some(u) => format!("runuser -u {u} -- vmpulse status"),
        None => "vmpulse status".to_string(),
    };
    let out = c.sh(&cmd);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), said)
}

/// `systemd-analyze security vmpulse` on the booted system: the overall exposure.
fn exposure(c: &Booted) -> f64 {
    let text = c.ok("systemd-analyze security --no-pager vmpulse");
    if let Some(line) = text.lines().find(|l| l.contains("Overall exposure")) {
        eprintln!("booted: {line}");
    }
    text.lines()
        .find_map(|l| l.split("vmpulse.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"))
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root, debootstrap and systemd-nspawn (scripts/setup.sh test), cargo-deb; boots a Debian 12 container: cargo test --features system-tests"
)]
fn the_package_runs_reloads_upgrades_stops_and_purges_under_systemd() {
    let kills_before = seccomp_kills();
    let c = boot("vmpulse-boot");

    // Installed, it is enabled and running at once (no InfluxDB URL: it collects
    // and serves the control API).
    c.ok("apt-get install -y -q /mnt/share/vmpulse.deb");
    assert_eq!(c.prop("vmpulse", "UnitFileState"), "enabled");
    c.ok("systemctl enable --now vmpulse");
    assert_eq!(
        c.prop("vmpulse", "ActiveState"),
        "active",
        "{}",
        journal(&c)
    );
    stays_up(&c, Duration::from_secs(60));
    let socket = c.ok("stat -c '%A %U %G' /run/vmpulse/vmpulse.sock");
    assert_eq!(socket.trim(), "srw-rw---- root libvirt");

    // The socket's group decides who may ask.
    c.ok("useradd -M -N -G libvirt vmp-member && useradd -M -N vmp-outsider");
    for user in [None, Some("vmp-member")] {
        let (code, said) = status_as(&c, user);
        assert_eq!(code, Some(0), "vmpulse status as {user:?}: {said}");
    }
    let (code, said) = status_as(&c, Some("vmp-outsider"));
    assert_eq!(code, Some(4), "vmpulse status as an outsider: {said}");
    assert!(said.contains("'libvirt'"), "names the group: {said}");

    // The unit's descriptor limit applies; what an idle service holds, for the README.
    let pid = c.prop("vmpulse", "MainPID");
    let limits = c.ok(&format!("grep 'Max open files' /proc/{pid}/limits"));
    assert!(limits.contains("4096"), "{limits}");
    let fds = c.ok(&format!("ls /proc/{pid}/fd | wc -l"));
    eprintln!("booted: an idle service holds {} descriptors", fds.trim());

    let score = exposure(&c);
    eprintln!("systemd-analyze security vmpulse (booted): {score}");
    assert!(score < 3.0, "exposure {score}");

    // Reload: the journal names what changed; the process stays.
    let pid = c.prop("vmpulse", "MainPID");
    c.ok("sed -i 's/^poll_interval = 1.0$/poll_interval = 2.0/' /etc/vmpulse/config.toml");
    c.ok("systemctl reload vmpulse");
    assert!(
        wait_for(Duration::from_secs(10), || journal(&c)
            .contains("collector.poll_interval changed")),
        "reload: {}",
        journal(&c)
    );
    assert_eq!(c.prop("vmpulse", "MainPID"), pid);

    // An upgrade restarts the running service with the new files.
    c.ok("apt-get install -y -q /mnt/share/vmpulse-next.deb");
    let version = c.ok("dpkg-query -W -f '${Version}' vmpulse");
    assert!(version.ends_with("+boot1"), "{version}");
    let after = c.prop("vmpulse", "MainPID");
    assert!(
        after != pid && after != "0",
        "upgrade: MainPID {pid} -> {after}"
    );
    assert_eq!(
        c.prop("vmpulse", "ActiveState"),
        "active",
        "{}",
        journal(&c)
    );

    // Stop: exit status 0, the final counters are the process's last words.
    c.ok("systemctl stop vmpulse");
    assert_eq!(c.prop("vmpulse", "ExecMainStatus"), "0", "{}", journal(&c));
    assert_eq!(c.prop("vmpulse", "Result"), "success");
    let last = c.ok(&format!(
        "journalctl _PID={after} -o cat --no-pager | tail -1"
    ));
    assert!(last.contains("final: collections="), "last line: {last}");

    // Bad configuration: exit 2, failed, and no restart loop.
    c.ok("cp /etc/vmpulse/config.toml /root/config.toml");
    c.ok("sed -i 's/^poll_interval = 2.0$/poll_interval = -1.0/' /etc/vmpulse/config.toml");
    assert!(!c.sh("systemctl start vmpulse").status.success());
    std::thread::sleep(Duration::from_secs(8)); // longer than RestartSec=5
    assert_eq!(c.prop("vmpulse", "ExecMainStatus"), "2", "{}", journal(&c));
    assert_eq!(c.prop("vmpulse", "NRestarts"), "0");
    assert_eq!(c.prop("vmpulse", "ActiveState"), "failed");
    c.ok("cp /root/config.toml /etc/vmpulse/config.toml && systemctl reset-failed vmpulse");

    // libvirt not up yet: exit 1, and systemd retries until it answers. (Masked, so
    // that the unit's Wants= cannot start it again.)
    let libvirt = "libvirtd.service libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket";
    c.ok(&format!("systemctl mask --runtime --now {libvirt}"));
    assert!(!c.sh("systemctl start vmpulse").status.success());
    assert!(
        wait_for(Duration::from_secs(20), || c.prop("vmpulse", "NRestarts")
            != "0"),
        "no retry: {}",
        journal(&c)
    );
    // (ExecMainStatus is already the next attempt's: the journal keeps the status.)
    let log = journal(&c);
    assert!(
        log.contains("cannot connect to libvirt") && log.contains("status=1/FAILURE"),
        "{log}"
    );
    c.ok(&format!("systemctl unmask --runtime {libvirt}"));
    c.ok("systemctl start libvirtd.socket libvirtd-ro.socket libvirtd-admin.socket");
    assert!(
        wait_for(Duration::from_secs(20), || c.prop("vmpulse", "ActiveState")
            == "active"),
        "not back once libvirt answers: {}",
        journal(&c)
    );

    // Remove stops it and keeps the configuration; purge takes that and the state.
    let running = c.prop("vmpulse", "MainPID");
    c.ok("apt-get remove -y -q vmpulse");
    assert_ne!(c.prop("vmpulse", "ActiveState"), "active");
    assert!(!c.sh(&format!("test -e /proc/{running}")).status.success());
    c.ok("test -f /etc/vmpulse/config.toml && test -d /var/lib/vmpulse");
    c.ok("apt-get purge -y -q vmpulse");
    for gone in [
        "/etc/vmpulse",
        "/etc/default/vmpulse",
        "/var/lib/vmpulse",
        "/etc/systemd/system/multi-user.target.wants/vmpulse.service",
    ] {
        assert!(
            !c.sh(&format!("test -e {gone} || test -L {gone}"))
                .status
                .success(),
            "{gone} is still there after purge"
        );
    }

    let log = journal(&c);
    assert!(!log.contains("status=31/SYS"), "{log}");
    drop(c);
    let kills: Vec<String> = seccomp_kills()
        .into_iter()
        .filter(|l| !kills_before.contains(l))
        .collect();
    assert!(kills.is_empty(), "seccomp killed vmpulse: {kills:#?}");
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root, debootstrap and systemd-nspawn (scripts/setup.sh test), cargo-deb; boots a Debian 12 container: cargo test --features system-tests"
)]
fn the_unprivileged_variant_runs_with_a_dynamic_user() {
    let c = boot("vmpulse-dyn");
    c.ok("apt-get install -y -q /mnt/share/vmpulse.deb");
    // The README's drop-in, plus a URL where nobody listens, so that lines go to the spool.
    c.ok("mkdir -p /etc/systemd/system/vmpulse.service.d && printf '[Service]\\nDynamicUser=yes\\nSupplementaryGroups=libvirt\\nEnvironment=INFLUX_URL=http://127.0.0.1:9\\n' > /etc/systemd/system/vmpulse.service.d/unprivileged.conf");
    c.ok("systemctl daemon-reload && systemctl restart vmpulse");
    assert_eq!(
        c.prop("vmpulse", "ActiveState"),
        "active",
        "{}",
        journal(&c)
    );
    stays_up(&c, Duration::from_secs(20));
    let pid = c.prop("vmpulse", "MainPID");
    let uid = c.ok(&format!("awk '/^Uid:/ {{print $2}}' /proc/{pid}/status"));
    assert_ne!(uid.trim(), "0", "runs as a dynamic user");

    // The spool is in its StateDirectory=, the socket in its RuntimeDirectory=.
    c.ok("test -f /var/lib/private/vmpulse/spool/lock");
    let socket = c.ok("stat -c '%A %G' /run/vmpulse/vmpulse.sock");
    assert_eq!(socket.trim(), "srw-rw---- libvirt");
    c.ok("useradd -M -N -G libvirt vmp-member");
    let (code, said) = status_as(&c, Some("vmp-member"));
    // It answers (0 collecting, 1 while its writes fail); 3 or 4 would mean no service.
    assert!(matches!(code, Some(0 | 1)), "status: {code:?} {said}");
    assert!(said.contains("libvirt") || said.contains("VM"), "{said}");
    eprintln!(
        "systemd-analyze security vmpulse (DynamicUser=yes): {}",
        exposure(&c)
    );

    c.ok("apt-get purge -y -q vmpulse");
    for gone in ["/var/lib/vmpulse", "/var/lib/private/vmpulse"] {
        assert!(
            !c.sh(&format!("test -e {gone} || test -L {gone}"))
                .status
                .success(),
            "{gone} is still there after purge"
        );
    }
    assert!(!journal(&c).contains("status=31/SYS"));
}
