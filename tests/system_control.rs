//! The control socket as the system sees it (root): mode 0660 and the
//! configured group; a user outside that group (created with `useradd`) is
//! refused by `vmpulse status` with a message naming the group, a member is
//! let in; and the real TUI in tmux attaches to a running service, steers it
//! with `s`, and leaves it running and collecting on `q`.

mod common;
mod control_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::tmux::Pane;
use control_support::*;

fn sh(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A group and two users (one in it, one not), removed on drop.
struct Accounts {
    group: String,
    member: String,
    outsider: String,
}

impl Accounts {
    fn create() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        // Tests run in parallel in one process: a name per call.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = format!(
            "{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let a = Self {
            group: format!("vmpctl{n}"),
            member: format!("vmpin{n}"),
            outsider: format!("vmpout{n}"),
        };
        sh("groupadd", &[&a.group]);
        sh("useradd", &["-M", "-N", "-G", &a.group, &a.member]);
        sh("useradd", &["-M", "-N", &a.outsider]);
        a
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        for u in [&self.member, &self.outsider] {
            let _ = Command::new("userdel").arg(u).output();
        }
        let _ = Command::new("groupdel").arg(&self.group).output();
    }
}

/// The binary, copied where any user can run it (the build tree may not be).
fn public_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("vmpulse");
    std::fs::copy(BIN, &bin).expect("copy vmpulse");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `vmpulse status --socket S` as `user`.
fn status_as(user: &str, bin: &Path, socket: &Path) -> std::process::Output {
    // The child's PATH below is also where Command looks: name runuser fully.
    let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runuser (util-linux)");
    Command::new(runuser)
        .args(["-u", user, "--"])
        .arg(bin)
        .args(["status", "--socket"])
        .arg(socket)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("runuser")
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (groupadd, useradd, runuser): cargo test --features system-tests"
)]
fn socket_mode_and_group_and_a_user_outside_it_is_refused() {
    let acc = Accounts::create();
    let dir = tempfile::tempdir().unwrap();
    // Others may traverse the directory; the socket itself decides.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = public_binary(dir.path());
    let svc = Service::start_in(dir, &[], &[("VMPULSE_CONTROL_GROUP", acc.group.as_str())]);
    let meta = std::fs::metadata(&svc.socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660, "socket mode");
    let gid = vmpulse::control::socket::gid_of(&acc.group).expect("group exists");
    assert_eq!(meta.gid(), gid, "socket group");

    let out = status_as(&acc.outsider, &bin, &svc.socket);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(
        err.contains(&format!("members of group '{}' may use it", acc.group)),
        "{err}"
    );

    let out = status_as(&acc.member, &bin, &svc.socket);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pid {}", svc.pid())));
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (groupadd): cargo test --features system-tests"
)]
fn missing_group_is_logged_and_the_process_group_kept() {
    let svc = Service::start_in(
        tempfile::tempdir().unwrap(),
        &[],
        &[("VMPULSE_CONTROL_GROUP", "no-such-group-vmpulse")],
    );
    let meta = std::fs::metadata(&svc.socket).unwrap();
    // SAFETY: getegid(2) cannot fail.
    assert_eq!(meta.gid(), unsafe { libc::getegid() });
    assert!(
        svc.log()
            .contains("group 'no-such-group-vmpulse' does not exist"),
        "{}",
        svc.log()
    );
}

fn status_json(socket: &Path) -> (Option<i32>, serde_json::Value) {
    let out = run(&["status", "--json", "--socket", socket.to_str().unwrap()]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), v)
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs tmux on PATH: cargo test --features system-tests"
)]
fn tui_attaches_steers_the_service_and_leaves_it_running() {
    let svc = Service::start(&["--poll-interval", "0.5"]);
    let home = tempfile::tempdir().unwrap();
    // The TUI's own --connect names another host: what it shows must be the service's.
    let other = format!(
        "test://{}/tests/fixtures/tui-host.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let script = format!(
        "env -u INFLUX_URL -u LIBVIRT_URI -u VMPULSE_CONFIG -u NO_COLOR HOME='{home}' XDG_CONFIG_HOME='{home}' \
         '{bin}' --socket '{sock}' --connect '{other}'; echo \"vmpulse-exit=$?\"; sleep 60",
        home = home.path().display(),
        bin = BIN,
        sock = svc.socket.display(),
    );
    let t = Pane::start("attach", &script);
    let screen = t.wait_for("the service's VMs, attached", 20, |s| {
        s.contains("db-1") && s.contains("attached to service pid")
    });
    assert!(
        screen.contains(&format!("attached to service pid {}", svc.pid())),
        "{screen}"
    );
    assert!(!screen.contains("alpha-web"), "local VMs shown:\n{screen}");

    t.tmux(&["send-keys", "-t", "vmp", "s"]);
    wait_until("the service to stop collecting", 15, || {
        let (code, v) = status_json(&svc.socket);
        (code == Some(1) && v["running"] == false).then_some(())
    });
    t.wait_for("stopped in the header", 10, |s| s.contains("■ stopped"));
    t.tmux(&["send-keys", "-t", "vmp", "s"]);
    wait_until("the service to collect again", 15, || {
        let (code, v) = status_json(&svc.socket);
        (code == Some(0) && v["running"] == true).then_some(())
    });

    t.tmux(&["send-keys", "-t", "vmp", "q"]);
    t.wait_for("the TUI to exit", 15, |s| s.contains("vmpulse-exit=0"));
    let before = svc.collections();
    wait_until("collection going on after q", 10, || {
        (svc.collections() >= before + 2).then_some(())
    });
    let (code, v) = status_json(&svc.socket);
    assert_eq!(code, Some(0));
    assert_eq!(v["pid"], svc.pid());
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (groupadd, useradd, runuser) and tmux: cargo test --features system-tests"
)]
fn tui_refused_by_the_socket_names_the_group_and_runs_standalone() {
    let acc = Accounts::create();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = public_binary(dir.path());
    let svc = Service::start_in(dir, &[], &[("VMPULSE_CONTROL_GROUP", acc.group.as_str())]);
    let local = format!(
        "test://{}/tests/fixtures/tui-host.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    let home = tempfile::tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let script = format!(
        "runuser -u {user} -- env -i PATH=/usr/bin:/bin TERM=xterm HOME='{home}' '{bin}' \
         --socket '{sock}' --connect '{local}'; echo \"vmpulse-exit=$?\"; sleep 60",
        user = acc.outsider,
        home = home.path().display(),
        bin = bin.display(),
        sock = svc.socket.display(),
    );
    let t = Pane::start("refused", &script);
    let screen = t.wait_for("the local VMs (standalone)", 20, |s| {
        s.contains("alpha-web")
    });
    assert!(!screen.contains("attached to service"), "{screen}");
    t.tmux(&["send-keys", "-t", "vmp", "l"]);
    t.wait_for("the reason in the log pane", 10, |s| {
        s.contains(&format!("members of group '{}'", acc.group))
    });
    t.tmux(&["send-keys", "-t", "vmp", "q"]);
    t.wait_for("the TUI to exit", 15, |s| s.contains("vmpulse-exit=0"));
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (groupadd, useradd, runuser) and /run: cargo test --features system-tests"
)]
fn a_member_finds_the_root_service_on_the_system_socket_by_default() {
    let system = Path::new(vmpulse::control::SYSTEM_SOCKET);
    if std::os::unix::net::UnixStream::connect(system).is_ok() {
        // A real service answers there; do not disturb it.
        eprintln!("skipped: a service answers on {}", system.display());
        return;
    }
    let acc = Accounts::create();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = public_binary(dir.path());
    let svc = Service::start_at(
        dir,
        system.to_path_buf(),
        &[],
        &[("VMPULSE_CONTROL_GROUP", acc.group.as_str())],
    );
    // No --socket, no VMPULSE_SOCKET, no XDG_RUNTIME_DIR: the member's own default
    // does not exist, the system socket answers.
    let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("runuser (util-linux)");
    let out = Command::new(runuser)
        .args(["-u", &acc.member, "--"])
        .arg(&bin)
        .arg("status")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent-vmpulse-test")
        .output()
        .expect("runuser");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&format!("pid {}", svc.pid())), "{text}");
    assert!(text.contains(vmpulse::control::SYSTEM_SOCKET), "{text}");
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
    assert!(!system.exists(), "the service removes its socket on exit");
    let _ = std::fs::remove_dir(system.parent().expect("/run/vmpulse"));
}
