//! Exit statuses on real disk faults: the spool directory on a full tmpfs (ENOSPC)
//! and on a read-only one (EROFS, what a failing ext4 is remounted as) makes
//! `vmpulse --no-ui` exit 1, which the unit's `Restart=on-failure` retries, not 2
//! (bad configuration, never restarted). Each run mounts its tmpfs in a mount
//! namespace of its own (`unshare -m`), so nothing is left mounted on the host.

use std::process::{Command, Output};

/// `vmpulse --no-ui` with its spool in a fresh tmpfs mounted with `opts`, after
/// `prepare` ran there (in the new mount namespace, `$1` is the mount point).
fn run_on_tmpfs(opts: &str, prepare: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mnt = dir.path().join("disk");
    std::fs::create_dir(&mnt).expect("mkdir");
    let script = format!(
        "mount -t tmpfs -o {opts} vmpulse-test \"$1\" && {prepare} && shift && exec \"$@\""
    );
    Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(&mnt)
        .arg(env!("CARGO_BIN_EXE_vmpulse"))
        .args(["--no-ui", "-c", "test:///default", "--spool-dir"])
        .arg(mnt.join("spool"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/nonexistent-vmpulse-test")
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("VMPULSE_SOCKET", dir.path().join("c.sock"))
        // Nothing listens there; the URL only makes the writer open its spool.
        .env("INFLUX_URL", "http://127.0.0.1:9")
        .output()
        .expect("run unshare")
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root (mounts a tmpfs in its own mount namespace): cargo test --features system-tests"
)]
fn a_spool_on_a_full_or_read_only_disk_exits_1_for_a_retry() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "mount needs root");
    // Filled to the last block by dd (which then fails: `|| true`).
    let full = run_on_tmpfs(
        "size=64k",
        "{ dd if=/dev/zero of=\"$1/fill\" bs=4k 2>/dev/null || true; }",
    );
    let err = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("--spool-dir"),
        "{err}"
    );

    let read_only = run_on_tmpfs("ro,size=64k", "true");
    let err = String::from_utf8_lossy(&read_only.stderr);
    assert_eq!(read_only.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Read-only file system") && err.contains("--spool-dir"),
        "{err}"
    );
}
