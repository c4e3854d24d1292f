//! A user outside the `libvirt` group on a real `qemu:///system`. libvirtd asks polkit
//! whether a non-root user may connect (on this lab host polkit cannot even be reached:
//! no system bus), so libvirt's own answer is the bare "Unable to get system bus
//! connection". vmpulse must keep that answer and name the fix: the libvirt group
//! (which Debian's polkit rule lets in) or `qemu:///session`.
//! Needs root (creates a user, starts libvirtd and a guest through the lab).
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::lab::{Lab, URI};

const USER: &str = "vmpulse-nogroup";

/// Creates the user once (no libvirt group), with a home for its state directory.
fn ensure_user() {
    let exists = Command::new("id").arg(USER).output().expect("run id");
    if !exists.status.success() {
        let st = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", USER])
            .status()
            .expect("run useradd");
        assert!(st.success(), "useradd {USER}");
    }
    let groups = Command::new("id").args(["-nG", USER]).output().expect("id");
    let groups = String::from_utf8_lossy(&groups.stdout);
    assert!(
        !groups.split_whitespace().any(|g| g == "libvirt"),
        "{USER} must not be in the libvirt group: {groups}"
    );
}

/// The binary, copied where any user can run it (the build tree may sit in a
/// directory only root can enter).
fn public_binary(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let bin = dir.join("vmpulse");
    std::fs::copy(env!("CARGO_BIN_EXE_vmpulse"), &bin).expect("copy vmpulse");
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).expect("chmod bin");
    bin
}

/// Runs the real binary as the unprivileged user.
fn vmpulse_as_user(bin: &Path, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", USER, "--", "env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME=/home/{USER}"))
        .arg(format!("USER={USER}"))
        .arg("XDG_CONFIG_HOME=/nonexistent-vmpulse-test")
        .arg(bin)
        .args(args)
        .output()
        .expect("run vmpulse as the user")
}

#[test]
#[cfg_attr(
    not(feature = "lab-tests"),
    ignore = "needs root: creates a user, installs QEMU, starts libvirtd and a guest: cargo test --features lab-tests"
)]
fn a_user_outside_the_libvirt_group_reads_stats_or_is_told_the_fix() {
    let (_lab, guests) = Lab::up_with(1, false);
    ensure_user();
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = public_binary(dir.path());

    let out = vmpulse_as_user(&bin, &["--once", "--connect", URI, "--output", "-"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty(), "no lines without a connection");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("vmpulse: cannot connect to libvirt at '{URI}'")),
        "{stderr}"
    );
    // libvirt's own answer is kept, and the fix is named.
    assert!(
        last.contains("system bus") || last.contains("ermission"),
        "{stderr}"
    );
    assert!(
        last.contains(&format!("sudo usermod -aG libvirt {USER}")),
        "the message names the fix: {stderr}"
    );
    assert!(last.contains("qemu:///session"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!guests.is_empty());
}
