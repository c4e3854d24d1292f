//! `Type=notify` in the unit: the real binary tells a service manager it is ready
//! once libvirt answered, and that it is stopping on SIGTERM (sd_notify datagrams
//! on `$NOTIFY_SOCKET`, received here as systemd would).

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn no_ui_notifies_ready_after_libvirt_answered_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args(["--no-ui", "--connect", "test:///default"])
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("NOTIFY_SOCKET", &path)
        // A control socket of its own (as root the default is shared by every run).
        .env("VMPULSE_SOCKET", dir.path().join("vmpulse.sock"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmpulse");
    let ready = recv(&sock);
    assert_eq!(ready.trim(), "READY=1");
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(recv(&sock).trim(), "STOPPING=1");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("connected to libvirt"),
        "ready came after libvirt answered: {err}"
    );
}

#[test]
fn no_notification_when_libvirt_is_unreachable_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vmpulse"))
        .args(["--no-ui", "--connect", "nosuchdriver:///x"])
        .env("XDG_CONFIG_HOME", "/nonexistent-vmpulse-test")
        .env("NOTIFY_SOCKET", &path)
        // A control socket of its own (as root the default is shared by every run).
        .env("VMPULSE_SOCKET", dir.path().join("vmpulse.sock"))
        .output()
        .expect("run vmpulse");
    assert_eq!(out.status.code(), Some(1));
    let mut buf = [0u8; 256];
    assert!(
        sock.recv(&mut buf).is_err(),
        "READY must not be sent before libvirt answered"
    );
}
