//! The Debian package, for real: `scripts/package.sh` builds it (release binary, man
//! page and completions generated from the flags, cargo-deb), `dpkg-deb` shows the
//! files, modes and maintainer scripts, `dpkg -i` installs it on this machine, the
//! installed binary, man page and unit work, and `dpkg --purge` removes it again,
//! leaving the host as it was (a failed run purges too). Its service under a booted
//! systemd is tests/system_boot.rs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dpkg-deb -c`: path (without the leading `.`) → permission string.
fn contents(deb: &Path) -> BTreeMap<String, String> {
    stdout(&run(Command::new("dpkg-deb").arg("-c").arg(deb)))
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let path = cols.get(5)?.trim_start_matches('.');
            Some((path.to_string(), cols[0].to_string()))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs root, dpkg, man-db, systemd-analyze and cargo-deb (scripts/setup.sh test installs them): cargo test --features system-tests"
)]
fn deb_has_the_files_installs_and_its_unit_verifies() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "dpkg -i needs root");
    let root = env!("CARGO_MANIFEST_DIR");
    let built = run(Command::new(format!("{root}/scripts/package.sh")).current_dir(root));
    let deb = stdout(&built)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();
    let deb = Path::new(root).join(deb);
    assert!(deb.is_file(), "package.sh printed {deb:?}");

    let files = contents(&deb);
    for (path, mode) in [
        ("/usr/bin/vmpulse", "-rwxr-xr-x"),
        ("/etc/vmpulse/config.toml", "-rw-r--r--"),
        ("/etc/default/vmpulse", "-rw-------"),
        ("/usr/lib/systemd/system/vmpulse.service", "-rw-r--r--"),
        (
            "/usr/share/bash-completion/completions/vmpulse",
            "-rw-r--r--",
        ),
        ("/usr/share/zsh/vendor-completions/_vmpulse", "-rw-r--r--"),
        (
            "/usr/share/fish/vendor_completions.d/vmpulse.fish",
            "-rw-r--r--",
        ),
    ] {
        assert_eq!(
            files.get(path).map(String::as_str),
            Some(mode),
            "{path} in {files:#?}"
        );
    }
    assert!(
        files
            .keys()
            .any(|p| p.starts_with("/usr/share/man/man1/vmpulse.1")),
        "man page in {files:#?}"
    );

    let field = |f: &str| stdout(&run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(f)));
    let depends = field("Depends");
    assert!(
        depends.contains("libvirt0") && depends.contains("ca-certificates"),
        "Depends: {depends}"
    );
    let conffiles = stdout(&run(Command::new("dpkg-deb")
        .arg("-I")
        .arg(&deb)
        .arg("conffiles")));
    for c in ["/etc/vmpulse/config.toml", "/etc/default/vmpulse"] {
        assert!(
            conffiles.lines().any(|l| l.trim() == c),
            "conffiles: {conffiles}"
        );
    }

    // The systemd snippets (cargo-deb adds them only with `maintainer-scripts` set).
    let script = |name: &str| stdout(&run(Command::new("dpkg-deb").arg("-I").arg(&deb).arg(name)));
    let postinst = script("postinst");
    assert!(
        postinst.contains("deb-systemd-helper enable vmpulse.service")
            && postinst.contains("_dh_action=restart")
            && postinst.contains("daemon-reload"),
        "postinst: {postinst}"
    );
    let prerm = script("prerm");
    assert!(
        prerm.contains("deb-systemd-invoke stop vmpulse.service"),
        "prerm: {prerm}"
    );
    let postrm = script("postrm");
    assert!(
        postrm.contains("deb-systemd-helper purge vmpulse.service")
            && postrm.contains("rm -rf /var/lib/vmpulse"),
        "postrm: {postrm}"
    );

    // The shipped binary carries no debug info.
    let x = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(x.path()));
    let bin = x.path().join("usr/bin/vmpulse");
    let sections = stdout(&run(Command::new("readelf").arg("-S").arg("-W").arg(&bin)));
    assert!(!sections.contains(".debug_info"), "{sections}");
    let size = std::fs::metadata(&bin).unwrap().len();
    assert!(size < 40 << 20, "binary is {size} bytes");

    let host_before = HOST_TRACES.map(|p| Path::new(p).exists());
    let installed = Purge;
    run(Command::new("dpkg")
        .arg("-i")
        .arg(&deb)
        .env("DEBIAN_FRONTEND", "noninteractive"));
    let version = stdout(&run(Command::new("/usr/bin/vmpulse").arg("--version")));
    assert!(version.starts_with("vmpulse "), "{version}");
    let man = stdout(&run(Command::new("man").args(["-w", "vmpulse"])));
    assert!(man.contains("/usr/share/man/man1/vmpulse.1"), "{man}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata("/etc/default/vmpulse")
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "installed /etc/default/vmpulse");
    let verify = Command::new("systemd-analyze")
        .args(["verify", "/usr/lib/systemd/system/vmpulse.service"])
        .output()
        .expect("systemd-analyze");
    let said = String::from_utf8_lossy(&verify.stderr).into_owned() + &stdout(&verify);
    assert!(verify.status.success(), "systemd-analyze verify: {said}");
    assert!(
        !said.contains("vmpulse"),
        "systemd-analyze verify complained: {said}"
    );

    // The hardening, as systemd scores it (0 = locked down, 10 = fully exposed).
    let security = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=true",
            "/usr/lib/systemd/system/vmpulse.service",
        ])
        .output()
        .expect("systemd-analyze security");
    let text = stdout(&security);
    let exposure: f64 = text
        .lines()
        .find_map(|l| l.split("vmpulse.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(exposure < 3.0, "exposure {exposure}: {text}");

    drop(installed);
    assert!(!Path::new("/usr/bin/vmpulse").exists());
    for (path, was) in HOST_TRACES.iter().zip(host_before) {
        assert!(was || !Path::new(path).exists(), "purge left {path}");
    }
}

/// What installing leaves on this host besides the package's files; none of it may
/// outlive the purge (unless it was there before).
const HOST_TRACES: [&str; 5] = [
    "/etc/vmpulse",
    "/etc/default/vmpulse",
    "/var/lib/vmpulse",
    "/etc/systemd/system/multi-user.target.wants/vmpulse.service",
    "/var/lib/systemd/deb-systemd-helper-enabled/vmpulse.service.dsh-also",
];

/// `dpkg --purge vmpulse` when dropped, also when the test failed half-way.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let out = Command::new("dpkg").args(["--purge", "vmpulse"]).output();
        if !std::thread::panicking() {
            let out = out.expect("dpkg --purge");
            assert!(
                out.status.success(),
                "dpkg --purge vmpulse: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
