//! One guest's QEMU hangs (SIGSTOP: its monitor never answers, as in a storage
//! stall or a QEMU bug); every other guest must still get a sample every
//! cycle, whether vmpulse was started before or after the hang, and the hung
//! one comes back after SIGCONT. Three real TCG guests via
//! `scripts/lab-host.sh up 3`. Needs root (starts libvirtd).
mod common;

use std::time::{Duration, Instant};

use common::lab::{qemu_pid, series, signal, Lab, LpLine, Vmpulse};

const POLL: f64 = 1.0;
/// LIBVIRT_TIMEOUT for vmpulse: how long the first call on the hung monitor
/// blocks before the cycle is retried on another connection.
const TIMEOUT_S: f64 = 3.0;

/// Sample instants (vm_metrics line timestamps) of `vm` in `[from, to]`.
fn sample_times(lines: &[LpLine], vm: &str, from: f64, to: f64) -> Vec<f64> {
    series(lines, "vm_metrics", vm)
        .iter()
        .map(|l| l.t)
        .filter(|t| *t >= from && *t <= to)
        .collect()
}

/// Longest gap between consecutive samples, counting from `from` and to `to`.
fn longest_gap(times: &[f64], from: f64, to: f64) -> f64 {
    let mut edges = vec![from];
    edges.extend_from_slice(times);
    edges.push(to);
    edges.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Checks that every healthy guest was sampled all through `[from, to]`:
/// no gap longer than one timed-out call plus two poll intervals.
fn healthy_guests_kept_their_samples(
    lines: &[LpLine],
    healthy: &[String],
    from: f64,
    to: f64,
    what: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let allowed = TIMEOUT_S + 0.5 + 2.0 * POLL + 1.0;
    for g in healthy {
        let times = sample_times(lines, g, from, to);
        let gap = longest_gap(&times, from, to);
        let want = ((to - from - allowed) / POLL * 0.7).floor().max(1.0) as usize;
        eprintln!(
            "{what}: '{g}' {} samples in {:.1} s, longest gap {gap:.2} s",
            times.len(),
            to - from
        );
        if gap > allowed || times.len() < want {
            failures.push(format!(
                "{what}: '{g}' had {} samples in {:.1} s (want ≥ {want}), longest gap {gap:.2} s (allowed {allowed:.1} s)",
                times.len(),
                to - from
            ));
        }
    }
    failures
}

#[test]
#[cfg_attr(
    not(feature = "lab-tests"),
    ignore = "needs root: installs QEMU, starts libvirtd and three guests: cargo test --features lab-tests"
)]
fn other_guests_keep_their_samples_while_one_qemu_is_stopped() {
    let (_lab, guests) = Lab::up_with(3, false);
    let stuck = guests[1].clone();
    let healthy: Vec<String> = guests.iter().filter(|g| **g != stuck).cloned().collect();
    let pid = qemu_pid(&stuck);
    let env = [("LIBVIRT_TIMEOUT", "3")];
    let mut failures = Vec::new();

    // 1. vmpulse runs, then the QEMU stops, then it resumes.
    let mut vm = Vmpulse::start(POLL, &env);
    vm.keep_running_until(Instant::now() + Duration::from_secs(6));
    let stop_at = common::lab::wall_secs();
    signal(pid, libc::SIGSTOP);
    vm.keep_running_until(Instant::now() + Duration::from_secs(20));
    let cont_at = common::lab::wall_secs();
    signal(pid, libc::SIGCONT);
    vm.keep_running_until(Instant::now() + Duration::from_secs(8));
    let end_at = common::lab::wall_secs();
    let status = vm.terminate();
    assert!(status.success(), "vmpulse: {status}\n{}", vm.log_text());
    let lines = vm.lines();
    failures.extend(healthy_guests_kept_their_samples(
        &lines,
        &healthy,
        stop_at,
        cont_at,
        "started before the stop",
    ));
    // The stopped guest is picked up again (full stats: disks reported).
    let recovered = series(&lines, "vm_devices", &stuck)
        .iter()
        .any(|l| l.t > cont_at + 1.0 && l.tags.get("devtype").map(String::as_str) == Some("disk"));
    if !recovered {
        failures.push(format!(
            "'{stuck}' has no disk sample in the {:.0} s after SIGCONT",
            end_at - cont_at
        ));
    }

    // 2. The QEMU is already stopped when vmpulse starts.
    signal(pid, libc::SIGSTOP);
    std::thread::sleep(Duration::from_secs(1));
    let start_at = common::lab::wall_secs();
    let mut vm = Vmpulse::start(POLL, &env);
    vm.keep_running_until(Instant::now() + Duration::from_secs(10));
    // vmpulse's first call now holds the stopped guest's monitor: a sample of
    // our own (NOWAIT) answers at once and marks that guest, and only it.
    let mut src =
        vmpulse::collector::source::LibvirtSource::open(common::lab::URI, Duration::from_secs(60))
            .expect("open qemu:///system");
    let t0 = Instant::now();
    let sample = src
        .sample(Instant::now() + Duration::from_secs(10))
        .expect("sample while one monitor hangs");
    let took = t0.elapsed();
    let marked: Vec<&str> = sample
        .domains
        .iter()
        .filter(|d| d.monitor_stuck.is_some())
        .map(|d| d.name.as_str())
        .collect();
    eprintln!("own sample while '{stuck}' hangs: {took:?}, marked stuck: {marked:?}");
    if marked != [stuck.as_str()] || took > Duration::from_secs(2) {
        failures.push(format!(
            "a sample while '{stuck}' hangs took {took:?} and marked {marked:?} (want only '{stuck}', fast)"
        ));
    }
    vm.keep_running_until(Instant::now() + Duration::from_secs(10));
    let cont_at = common::lab::wall_secs();
    signal(pid, libc::SIGCONT);
    vm.keep_running_until(Instant::now() + Duration::from_secs(6));
    let status = vm.terminate();
    let log = vm.log_text();
    assert!(status.success(), "vmpulse: {status}\n{log}");
    let lines = vm.lines();
    // The first cycle waits for the hung call once (LIBVIRT_TIMEOUT) before
    // retrying on another connection: count from there.
    failures.extend(healthy_guests_kept_their_samples(
        &lines,
        &healthy,
        start_at + 1.0,
        cont_at,
        "started after the stop",
    ));
    assert!(
        failures.is_empty(),
        "hung-QEMU checks failed:\n  {}\nvmpulse stderr (second run):\n{log}",
        failures.join("\n  ")
    );
}
