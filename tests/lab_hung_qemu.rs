//! One guest's QEMU hangs (SIGSTOP: its monitor never answers, as in a storage
//! stall or a QEMU bug); every other guest must still get a sample every
//! cycle, whether vmpulse was started before or after the hang, even in the
//! cycle that first meets the hung monitor, and the hung one comes back after
//! SIGCONT; also with two of the three stopped at once. With the default
//! `LIBVIRT_TIMEOUT` (10 s), a healthy guest's samples are at most 1.5 poll
//! intervals apart. Three real TCG guests via `scripts/lab-host.sh up 3`.
//! Needs root (starts libvirtd).
mod common;

use std::time::{Duration, Instant};

use common::lab::{qemu_pid, series, signal, Lab, LpLine, Vmpulse};

const POLL: f64 = 1.0;
/// The longest allowed gap between a healthy guest's samples.
const MAX_GAP: f64 = 1.5 * POLL;

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
/// no gap longer than [`MAX_GAP`] (edges included), and most cycles there.
fn healthy_guests_kept_their_samples(
    lines: &[LpLine],
    healthy: &[String],
    from: f64,
    to: f64,
    what: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    let allowed = MAX_GAP;
    for g in healthy {
        let times = sample_times(lines, g, from, to);
        // The gap that spans `from` counts from the sample before it.
        let before = sample_times(lines, g, from - 10.0 * POLL, from)
            .last()
            .copied()
            .unwrap_or(from);
        let gap = longest_gap(&times, before, to);
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

/// Checks a run that started with a QEMU already stopped: the first healthy
/// sample comes from the first cycle (not after a timed-out call), and gaps
/// count from it (process start-up is not the collector's).
fn sampled_from_the_start(
    lines: &[LpLine],
    healthy: &[String],
    start_at: f64,
    cont_at: f64,
    what: &str,
) -> Vec<String> {
    let first = healthy
        .iter()
        .filter_map(|g| sample_times(lines, g, start_at, cont_at).first().copied())
        .fold(f64::INFINITY, f64::min);
    eprintln!(
        "{what}: first healthy sample {:.2} s after the start",
        first - start_at
    );
    let mut failures = Vec::new();
    if first - start_at > 2.0 * POLL + 1.0 {
        failures.push(format!(
            "{what}: the first healthy sample came {:.2} s after the start",
            first - start_at
        ));
    }
    failures.extend(healthy_guests_kept_their_samples(
        lines,
        healthy,
        first.min(cont_at),
        cont_at,
        what,
    ));
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
    // The default LIBVIRT_TIMEOUT (10 s): the hung call must not be waited for.
    let env: [(&str, &str); 0] = [];
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
    // our own (NOWAIT) answers at once and marks that guest, and only it. A
    // healthy guest is marked too when vmpulse's own cycle holds its monitor
    // at that instant (two samplers race): that must not happen three times.
    let mut src =
        vmpulse::collector::source::LibvirtSource::open(common::lab::URI, Duration::from_secs(60))
            .expect("open qemu:///system");
    let mut tries = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let sample = src
            .sample(Instant::now() + Duration::from_secs(10))
            .expect("sample while one monitor hangs");
        let took = t0.elapsed();
        let marked: Vec<String> = sample
            .domains
            .iter()
            .filter(|d| d.monitor_stuck.is_some())
            .map(|d| d.name.clone())
            .collect();
        eprintln!("own sample while '{stuck}' hangs: {took:?}, marked stuck: {marked:?}");
        let only_stuck = marked == [stuck.clone()];
        tries.push((took, marked));
        if only_stuck
            || took > Duration::from_secs(2)
            || !tries.iter().all(|t| t.1.contains(&stuck))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(330));
    }
    let ok = tries.last().is_some_and(|(took, marked)| {
        *marked == [stuck.clone()] && *took <= Duration::from_secs(2)
    });
    if !ok {
        failures.push(format!(
            "samples while '{stuck}' hangs (took, marked): {tries:?} (want only '{stuck}', fast)"
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
    failures.extend(sampled_from_the_start(
        &lines,
        &healthy,
        start_at,
        cont_at,
        "started after the stop",
    ));

    // 3. Two of the three QEMUs are stopped when vmpulse starts: the second
    // call, which passes the first hung monitor by, hangs in the other one.
    let pids = [qemu_pid(&guests[1]), qemu_pid(&guests[2])];
    for p in pids {
        signal(p, libc::SIGSTOP);
    }
    std::thread::sleep(Duration::from_secs(1));
    let start_at = common::lab::wall_secs();
    let mut vm = Vmpulse::start(POLL, &env);
    vm.keep_running_until(Instant::now() + Duration::from_secs(12));
    let cont_at = common::lab::wall_secs();
    for p in pids {
        signal(p, libc::SIGCONT);
    }
    let status = vm.terminate();
    assert!(status.success(), "vmpulse: {status}\n{}", vm.log_text());
    failures.extend(sampled_from_the_start(
        &vm.lines(),
        &guests[..1],
        start_at,
        cont_at,
        "two stopped before the start",
    ));
    assert!(
        failures.is_empty(),
        "hung-QEMU checks failed:\n  {}\nvmpulse stderr (second run):\n{log}",
        failures.join("\n  ")
    );
}
