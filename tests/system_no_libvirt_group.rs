//! A host without libvirt-daemon-system has no group `libvirt`. There the default
//! control group is skipped quietly (the socket keeps root's group; stderr has only
//! what matters), while a group the operator named (control.group) that does not
//! exist is a warning. Each run hides the group itself: a copy of /etc/group without
//! `libvirt` is bound over it in a mount namespace of its own (`unshare -m`), so the
//! test means the same on a host that has the group and on one that never had it.

use std::process::{Command, Output};

/// `vmpulse --no-ui -c bogus://x` (binds its socket, then fails to connect: exit 1)
/// where the group database has no `libvirt`.
fn run_without_libvirt_group(env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = "grep -v '^libvirt:' /etc/group > \"$1\" && mount --bind \"$1\" /etc/group \
                  && ! getent group libvirt && shift && exec \"$@\"";
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(dir.path().join("group"))
    .arg(env!("CARGO_BIN_EXE_vmpulse"))
    .args(["--no-ui", "-c", "bogus://x"])
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", "/nonexistent-vmpulse-test")
    .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
    .env("VMPULSE_SOCKET", dir.path().join("c.sock"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run unshare")
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (bind-mounts a copy of /etc/group in its own mount namespace): cargo test --features system-tests"
)]
fn a_missing_default_group_is_quiet_a_missing_named_group_warns() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "mount needs root");
    let out = run_without_libvirt_group(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "only the libvirt error: {err}");
    assert!(
        err.starts_with("vmpulse: cannot connect to libvirt at 'bogus://x'"),
        "{err}"
    );

    let out = run_without_libvirt_group(&[("VMPULSE_CONTROL_GROUP", "libvirt")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("WARN") && first.contains("group 'libvirt' does not exist"),
        "a group the operator named: {err}"
    );
}
