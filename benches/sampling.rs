//! Sampling time per cycle, next to `virsh domstats` on the same domains.
//!
//! `cargo bench --bench sampling [-- CYCLES]` generates a test-driver host with
//! 100 domains (2 NICs, 2 disks each) and times `LibvirtSource::sample` over
//! CYCLES cycles (default 50), then `virsh -c URI domstats` as often.
//! `VMPULSE_BENCH_URI=qemu:///system cargo bench --bench sampling` (or
//! `-- --uri URI`) measures an existing hypervisor the same way instead.
//! `VMPULSE_BENCH_DOMAINS=N` changes the generated domain count.
//!
//! Each generated domain carries OpenStack Nova `<metadata>`; the cycles run three
//! times: without `collector.metadata_tags`, with three Nova tags (read once per
//! domain, then at `collector.metadata_refresh`), and with the tags read again
//! every cycle (the worst case, a refresh shorter than the poll interval).
//! It also times the job rotation's planning (`collector::jobs::plan`) over the
//! same domains and says how many job calls a cycle makes (the test driver has
//! no job calls: `sample` asks once and stops; their cost on a real libvirtd is
//! timed by `tests/lab_jobs.rs`).
//! What the engine does with each sample is timed too: `Deriver::apply` and the
//! alert evaluation (`alert::Tracker`, the default levels plus an override by name glob
//! and one by metadata tag), so the cost of alerts at N domains is a number.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vmpulse::collector::metadata::MetadataSpec;
use vmpulse::collector::source::LibvirtSource;
use vmpulse::config::metadata::parse_entry;

const NOVA: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";
use vmpulse::alert::{Rules, Tracker};
use vmpulse::collector::derive::Deriver;
use vmpulse::config::alerts::{AlertRules, Levels, Override, Selector};
use vmpulse::config::glob::Glob;

/// The default alert levels plus an override for `bench-1*` names and one for a tag.
fn bench_rules() -> Rules {
    let levels = |w: f64| {
        std::collections::BTreeMap::from([(
            "cpu_usage_percent".to_string(),
            Levels::Numeric {
                thresholds: [None, Some(w), None],
                lower_is_worse: false,
            },
        )])
    };
    Rules::new(&AlertRules {
        overrides: vec![
            Override {
                selector: Selector::Vms(Glob::new("bench-1*").expect("glob")),
                levels: levels(50.0),
            },
            Override {
                selector: Selector::Tag {
                    key: "project".into(),
                    value: "shop".into(),
                },
                levels: levels(80.0),
            },
        ],
        ..AlertRules::default()
    })
}

/// A `<node>` for libvirt's test driver with `n` running domains.
fn testdriver_xml(n: usize) -> String {
    let mut x = String::from("<node>\n");
    for i in 0..n {
        let _ = write!(
            x,
            "  <domain type='test'>\n    <name>bench-{i:03}</name>\n    \
             <uuid>00000000-0000-4000-8000-{i:012}</uuid>\n    \
             <memory unit='KiB'>{mem}</memory>\n    <vcpu>{vcpu}</vcpu>\n    \
             <os><type>hvm</type></os>\n    \
             <metadata><nova:instance xmlns:nova=\"{NOVA}\"><nova:name>inst-{i:03}</nova:name>\
             <nova:flavor name=\"m1.f{f}\"/><nova:owner><nova:project uuid=\"p{p}\">project-{p}</nova:project>\
             </nova:owner></nova:instance></metadata>\n    <devices>\n",
            f = i % 4,
            p = i % 10,
            mem = 262_144 * (1 + i % 4),
            vcpu = 1 + i % 4,
        );
        for d in ["vda", "vdb"] {
            let _ = writeln!(
                x,
                "      <disk type='file' device='disk'><source file='/img/bench-{i:03}-{d}.img'/>\
                 <target dev='{d}' bus='virtio'/></disk>"
            );
        }
        for k in 0..2 {
            let _ = writeln!(
                x,
                "      <interface type='network'><mac address='52:54:00:{:02x}:{:02x}:{k:02x}'/>\
                 <source network='default'/><target dev='tap-b{i}-{k}'/></interface>",
                i / 256,
                i % 256
            );
        }
        x.push_str("    </devices>\n  </domain>\n");
    }
    x.push_str("</node>\n");
    x
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (median, p90, max) in ms.
fn summary(mut v: Vec<Duration>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (ms(at(0.5)), ms(at(0.9)), ms(at(1.0)))
}

fn print_row(label: &str, v: Vec<Duration>) {
    let n = v.len();
    let (med, p90, max) = summary(v);
    println!("{label:<44} n={n:<4} median {med:>8.2} ms   p90 {p90:>8.2} ms   max {max:>8.2} ms");
}

fn main() {
    let mut cycles: usize = 50;
    let mut uri = std::env::var("VMPULSE_BENCH_URI").ok();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--uri" {
            uri = args.next();
        } else if let Ok(n) = a.parse::<usize>() {
            cycles = n.max(1);
        }
        // Everything else (`--bench` from cargo) is ignored.
    }
    let n_domains: usize = std::env::var("VMPULSE_BENCH_DOMAINS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);

    let _tmp; // keeps the generated XML alive for the whole run
    let uri = match uri {
        Some(u) => u,
        None => {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("bench-host.xml");
            std::fs::write(&path, testdriver_xml(n_domains)).expect("write XML");
            _tmp = dir;
            format!("test://{}", path.display())
        }
    };
    println!("sampling benchmark: {uri}, {cycles} cycles");

    let nova = |refresh: Duration| {
        let tags = [
            ("flavor", "instance/flavor/@name"),
            ("instance", "instance/name"),
            ("project", "instance/owner/project"),
        ]
        .iter()
        .map(|(n, p)| parse_entry(n, &format!("{NOVA} {p}")).expect("valid entry"))
        .collect();
        MetadataSpec::new(tags, refresh)
    };
    for (label, spec) in [
        ("no metadata tags", MetadataSpec::default()),
        (
            "3 Nova metadata tags, refresh 60 s",
            nova(Duration::from_secs(60)),
        ),
        (
            "3 Nova metadata tags, read every cycle",
            nova(Duration::from_nanos(1)),
        ),
    ] {
        println!("--- {label}");
        sample_cycles(&uri, cycles, spec);
    }
    print_row(
        "virsh domstats (process incl. connect)",
        virsh_processes(&uri, cycles),
    );
    print_row(
        "virsh domstats (in-session, virsh -t)",
        virsh_in_session(&uri, cycles),
    );
}

/// `LibvirtSource::sample` on a fresh connection: the first (cold) cycle, then `cycles` more.
fn sample_cycles(uri: &str, cycles: usize, spec: MetadataSpec) {
    let t = Instant::now();
    let mut src = LibvirtSource::open(uri, Duration::from_secs(300))
        .expect("open libvirt")
        .with_metadata(spec);
    println!("open: {:.2} ms", ms(t.elapsed()));
    let mut times = Vec::with_capacity(cycles);
    let mut cpu = Vec::with_capacity(cycles);
    let mut first = None;
    let mut tagged = 0;
    let mut doms = 0;
    let mut devices = 0;
    let mut skipped = 0;
    let mut used_bulk = false;
    let mut deriver = Deriver::new(Default::default());
    let (rules, mut tracker) = (bench_rules(), Tracker::default());
    let (mut derive_times, mut alert_times) = (Vec::new(), Vec::new());
    for i in 0..=cycles {
        let (t, c) = (Instant::now(), process_cpu());
        let s = src
            .sample(Instant::now() + Duration::from_secs(10))
            .expect("sample");
        let (d, dc) = (t.elapsed(), process_cpu().saturating_sub(c));
        if i == 0 {
            // Cold: device names are read from XML here, then cached.
            first = Some(d);
            doms = s.domains.len();
            devices = s.domains.iter().map(|d| d.nics.len() + d.disks.len()).sum();
            used_bulk = s.used_bulk;
            tagged = s.domains.iter().filter(|d| !d.tags.is_empty()).count();
        } else {
            times.push(d);
            cpu.push(dc);
        }
        skipped += s.skipped.len();
        let mut domains = s.domains;
        for (n, d) in domains.iter_mut().enumerate() {
            // Half the domains carry the tag the second override matches.
            if n % 2 == 0 {
                d.tags = vec![("project".into(), "shop".into())];
            }
        }
        let t = Instant::now();
        let vms = deriver.apply(domains);
        derive_times.push(t.elapsed());
        let t = Instant::now();
        let events = tracker.evaluate(
            &rules,
            &vms,
            std::time::SystemTime::now(),
            Duration::from_secs(10),
        );
        alert_times.push(t.elapsed());
        std::hint::black_box(events);
    }
    println!("domains {doms} ({tagged} with tags), devices {devices}, used_bulk {used_bulk}, skipped total {skipped}");
    if let Some(f) = first {
        println!("LibvirtSource::sample, first (cold) cycle: {:.2} ms", ms(f));
    }
    print_row("LibvirtSource::sample (warm)", times);
    print_row("Deriver::apply", derive_times);
    print_row("alerts: Tracker::evaluate (+2 overrides)", alert_times);
    // CPU time is what a busy machine cannot inflate (the test driver runs in-process).
    print_row("LibvirtSource::sample (warm, process CPU)", cpu);
    job_rotation(&mut src, cycles);
}

/// CPU time this process used so far (all threads).
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into `ts`, which lives for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `virsh -c URI domstats` as a new process each time.
fn virsh_processes(uri: &str, cycles: usize) -> Vec<Duration> {
    let mut virsh = Vec::with_capacity(cycles);
    for _ in 0..cycles {
        let t = Instant::now();
        let st = Command::new("virsh")
            .args(["-c", uri, "domstats"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        match st {
            Ok(s) if s.success() => virsh.push(t.elapsed()),
            Ok(s) => {
                println!("virsh domstats failed: {s}");
                break;
            }
            Err(e) => {
                println!("virsh not runnable: {e}");
                break;
            }
        }
    }
    virsh
}

/// The job rotation's planning over the sampled domains, per cycle.
fn job_rotation(src: &mut LibvirtSource, cycles: usize) {
    use vmpulse::collector::jobs::{active, candidates, per_cycle, plan};
    let s = src
        .sample(Instant::now() + Duration::from_secs(10))
        .expect("sample");
    let cands = candidates(&s.domains);
    let active = active(&cands);
    let mut times = Vec::with_capacity(cycles);
    let mut calls = 0;
    for i in 0..cycles {
        let t = Instant::now();
        calls = plan(&cands, |_| false, i * per_cycle(active), per_cycle(active)).len();
        times.push(t.elapsed());
    }
    println!("job rotation: {active} active domains, {calls} job calls per cycle");
    print_row("collector::jobs::plan", times);
}

/// Per-call time of `domstats` inside one virsh session (one connection),
/// read from `virsh -t`'s `(Time: X ms)` lines: the libvirt call without
/// process start-up and connect.
fn virsh_in_session(uri: &str, cycles: usize) -> Vec<Duration> {
    let script = vec!["domstats"; cycles].join("; ");
    let out = match Command::new("virsh")
        .args(["-t", "-c", uri, &script])
        .stderr(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("virsh not runnable: {e}");
            return Vec::new();
        }
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(Time: "))
        .filter_map(|l| l.strip_suffix(" ms)"))
        .filter_map(|v| v.parse::<f64>().ok())
        .map(|v| Duration::from_secs_f64(v / 1000.0))
        .collect()
}
