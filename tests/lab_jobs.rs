//! A job in flight on a real guest (`scripts/lab-host.sh up 1`): while the real
//! `vmpulse --no-ui` writes line protocol to a file, `virsh dump --live
//! --memory-only` dumps the guest into a FIFO that this test drains at a fixed
//! pace (so the dump takes seconds, not a fraction of the poll interval). The
//! `vm_jobs` lines must show the dump with its progress rising to the end and
//! one final line once it finished. Also times vmpulse's job call against the
//! real libvirtd (`collector::jobs::read_job`), the per-domain cost the
//! rotation bounds. Needs root (starts libvirtd).
mod common;

use std::ffi::CString;
use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{Lab, Vmpulse, URI};

/// The drain rate: a 128 MiB guest dumps in about 4 s.
const DRAIN_BYTES_PER_SEC: u64 = 32 * 1024 * 1024;

/// One `vm_jobs` line: (time s, type, operation, progress %).
fn job_lines(text: &str, vm: &str) -> Vec<(f64, String, String, Option<f64>)> {
    let name = format!(",name={vm},");
    text.lines()
        .filter(|l| l.starts_with("vm_jobs,") && l.contains(&name))
        .filter_map(|l| {
            let mut parts = l.split(' ');
            let (_, fields, ts) = (parts.next()?, parts.next()?, parts.next()?);
            let field = |k: &str| {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .map(|v| v.trim_matches('"').trim_end_matches('i').to_string())
            };
            Some((
                ts.parse::<f64>().ok()? / 1e9,
                field("type")?,
                field("operation")?,
                field("progress_percent").and_then(|v| v.parse().ok()),
            ))
        })
        .collect()
}

/// Reads the FIFO at [`DRAIN_BYTES_PER_SEC`] until the writer closes it.
fn drain(path: std::path::PathBuf) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::open(&path).expect("open the dump FIFO");
        let mut buf = vec![0u8; 1024 * 1024];
        let mut total = 0u64;
        let start = Instant::now();
        loop {
            let n = f.read(&mut buf).expect("read the dump FIFO");
            if n == 0 {
                return total;
            }
            total += n as u64;
            let due = Duration::from_secs_f64(total as f64 / DRAIN_BYTES_PER_SEC as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    })
}

#[test]
#[cfg_attr(
    not(feature = "lab-tests"),
    ignore = "needs root: installs QEMU, starts libvirtd and one guest: cargo test --features lab-tests"
)]
fn a_dump_shows_its_progress_rising_in_vm_jobs() {
    let (_lab, guests) = Lab::up_with(1, false);
    let guest = &guests[0];
    per_call_cost(guest);

    let mut vm = Vmpulse::start(0.5, &[]);
    vm.keep_running_until(Instant::now() + Duration::from_secs(3));
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("dump.fifo");
    let c = CString::new(fifo.to_string_lossy().as_bytes()).expect("path");
    // SAFETY: mkfifo(3) on a path in our own temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let reader = drain(fifo.clone());
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["120", "virsh", "-c", URI, "dump", "--live", "--memory-only"])
        .arg(guest)
        .arg(&fifo)
        .output()
        .expect("run virsh dump");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "virsh dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = reader.join().expect("drain thread");
    vm.keep_running_until(Instant::now() + Duration::from_secs(3));
    let status = vm.terminate();
    assert!(status.success(), "vmpulse: {status}\n{}", vm.log_text());

    let text = std::fs::read_to_string(&vm.output).unwrap_or_default();
    let jobs = job_lines(&text, guest);
    eprintln!(
        "dump of {guest}: {bytes} bytes in {:.1} s; vm_jobs lines:",
        took.as_secs_f64()
    );
    let t0 = jobs.first().map_or(0.0, |j| j.0);
    for (t, kind, op, pct) in &jobs {
        eprintln!("  +{:5.2} s {kind:<10} {op:<6} {pct:?}", t - t0);
    }
    let running: Vec<f64> = jobs
        .iter()
        .filter(|j| j.2 == "dump" && (j.1 == "bounded" || j.1 == "unbounded"))
        .filter_map(|j| j.3)
        .collect();
    assert!(
        running.len() >= 3,
        "want at least 3 readings of the running dump, got {running:?}"
    );
    assert!(
        running.windows(2).all(|w| w[1] >= w[0]),
        "progress went backwards: {running:?}"
    );
    let last_running = running.last().copied().unwrap_or(0.0);
    assert!(
        running[0] < last_running && last_running > 50.0,
        "progress did not rise towards the end: {running:?}"
    );
    let finals: Vec<&(f64, String, String, Option<f64>)> = jobs
        .iter()
        .filter(|j| j.1 == "completed" || j.1 == "ended")
        .collect();
    assert_eq!(finals.len(), 1, "one final line, got {jobs:?}");
    assert_eq!(finals[0].2, "dump");
    assert!(
        jobs.last().is_some_and(|j| j.1 == finals[0].1),
        "the final line comes last: {jobs:?}"
    );
}

/// Times `read_job` (one `virDomainGetJobStats` with no job running) against
/// the lab's libvirtd: what each domain of the rotation costs.
fn per_call_cost(guest: &str) {
    let conn = virt::connect::Connect::open_read_only(Some(URI)).expect("connect");
    let dom = conn.lookup_domain_by_name(guest).expect("lookup");
    let n = 500;
    let start = Instant::now();
    for _ in 0..n {
        let job = vmpulse::collector::jobs::read_job(&dom, 0).expect("job stats");
        assert!(job.is_none(), "no job should run yet: {job:?}");
    }
    let per = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        let job = vmpulse::collector::jobs::read_block_job(&dom, "vda").expect("block job info");
        assert!(job.is_none(), "no block job should run: {job:?}");
    }
    let per_block = start.elapsed() / n;
    let sweep = vmpulse::collector::jobs::per_cycle(1000) as u32;
    eprintln!(
        "without a job: virDomainGetJobStats {:.0} µs, virDomainGetBlockJobInfo {:.0} µs per call \
         ({n} calls each); at 1,000 domains with 2 disks the rotation reads {sweep} a cycle: {:.1} ms",
        per.as_secs_f64() * 1e6,
        per_block.as_secs_f64() * 1e6,
        ((per + per_block * 2) * sweep).as_secs_f64() * 1e3
    );
}
