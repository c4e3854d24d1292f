//! Golden line protocol: the exact bytes the encoder writes for the fixture
//! hosts (libvirt's test driver over `tests/fixtures/*.xml`) and for hand-built
//! domains with hostile names, under both escapings, recorded in
//! `tests/golden/line_protocol.txt`.
//!
//! The file changes only when a metric is added or removed on purpose:
//! `VMPULSE_BLESS=1 cargo test --test golden_line_protocol` rewrites it, and
//! the diff shows every byte that moved.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vmpulse::collector::derive::Deriver;
use vmpulse::collector::source::LibvirtSource;
use vmpulse::config::RatesConfig;
use vmpulse::encode::line_protocol::{encode_vm_into, EncodeCtx, Escaping};
use vmpulse::fixtures;
use vmpulse::model::{DiskStats, DomainState, RawDomain, VmSnapshot};

const GOLDEN: &str = "tests/golden/line_protocol.txt";
const WALL_NS: i64 = 1_699_868_400_000_000_000;
const FIXTURES: [&str; 3] = ["e2e-host.xml", "testhost.xml", "tui-host.xml"];

/// The test driver's readings with the clock-dependent values pinned.
fn pinned(mut raw: RawDomain, base: Instant) -> RawDomain {
    raw.mono = base;
    raw.wall_ns = WALL_NS;
    if let Some(c) = raw.cpu.as_mut() {
        c.time_ns = 10_000_000_000;
        c.user_ns = c.user_ns.map(|_| 6_000_000_000);
        c.system_ns = c.system_ns.map(|_| 2_000_000_000);
    }
    raw.monitor_stuck = None;
    // The test driver derives its device counters from the clock too.
    for (n, i) in raw.nics.iter_mut().zip(1u64..) {
        n.rx_bytes = 1_000_000 * i;
        n.tx_bytes = 500_000 * i;
        n.rx_packets = n.rx_packets.map(|_| 9_000 * i);
        n.tx_packets = n.tx_packets.map(|_| 4_000 * i);
        n.rx_errors = n.rx_errors.map(|_| i);
        n.tx_errors = n.tx_errors.map(|_| 0);
        n.rx_drops = n.rx_drops.map(|_| 2 * i);
        n.tx_drops = n.tx_drops.map(|_| 0);
    }
    for (d, i) in raw.disks.iter_mut().zip(1u64..) {
        d.rd_bytes = 40_000_000 * i;
        d.wr_bytes = 20_000_000 * i;
        d.rd_reqs = d.rd_reqs.map(|_| 3_000 * i);
        d.wr_reqs = d.wr_reqs.map(|_| 1_000 * i);
        d.fl_reqs = d.fl_reqs.map(|_| 100 * i);
        d.rd_times_ns = d.rd_times_ns.map(|_| 9_000_000 * i);
        d.wr_times_ns = d.wr_times_ns.map(|_| 7_000_000 * i);
        d.fl_times_ns = d.fl_times_ns.map(|_| 300_000 * i);
        d.errors = d.errors.map(|_| 0);
    }
    for (v, i) in raw.vcpu_times_ns.iter_mut().zip(1u64..) {
        *v = 1_000_000_000 * i;
    }
    for (v, i) in raw.vcpu_delays_ns.iter_mut().zip(1u64..) {
        *v = 1_000_000 * i;
    }
    raw
}

/// The same domain two seconds later, every counter advanced by a fixed step.
fn advanced(prev: &RawDomain, step: u64) -> RawDomain {
    let mut r = prev.clone();
    r.mono = prev.mono + Duration::from_secs(2);
    r.wall_ns = prev.wall_ns + 2_000_000_000;
    if let Some(c) = r.cpu.as_mut() {
        c.time_ns += 1_500_000_000 * step;
        c.user_ns = c.user_ns.map(|v| v + 700_000_000 * step);
        c.system_ns = c.system_ns.map(|v| v + 300_000_000 * step);
    }
    for v in r.vcpu_times_ns.iter_mut() {
        *v += 600_000_000 * step;
    }
    for v in r.vcpu_delays_ns.iter_mut() {
        *v += 20_000_000 * step;
    }
    for d in r.disks.iter_mut() {
        d.rd_bytes += 1_048_576 * step;
        d.wr_bytes += 524_288 * step;
        d.rd_reqs = d.rd_reqs.map(|v| v + 64 * step);
        d.wr_reqs = d.wr_reqs.map(|v| v + 16 * step);
        d.fl_reqs = d.fl_reqs.map(|v| v + 2 * step);
        d.rd_times_ns = d.rd_times_ns.map(|v| v + 640_000 * step);
        d.wr_times_ns = d.wr_times_ns.map(|v| v + 800_000 * step);
        d.fl_times_ns = d.fl_times_ns.map(|v| v + 100_000 * step);
    }
    for n in r.nics.iter_mut() {
        n.rx_bytes += 150_000 * step;
        n.tx_bytes += 75_000 * step;
        n.rx_packets = n.rx_packets.map(|v| v + 100 * step);
        n.tx_packets = n.tx_packets.map(|v| v + 50 * step);
    }
    r
}

/// Three cycles of one fixture host: a baseline, first rates, then angles of rates.
fn fixture_cycles(file: &str) -> Vec<Vec<VmSnapshot>> {
    let uri = format!(
        "test://{}/tests/fixtures/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut src = LibvirtSource::open(&uri, Duration::from_secs(300)).expect("open test driver");
    let sample = src
        .sample(Instant::now() + Duration::from_secs(30))
        .expect("sample");
    let base = Instant::now();
    let first: Vec<RawDomain> = sample
        .domains
        .into_iter()
        .map(|d| pinned(d, base))
        .collect();
    let second: Vec<RawDomain> = first.iter().map(|d| advanced(d, 1)).collect();
    let third: Vec<RawDomain> = second.iter().map(|d| advanced(d, 3)).collect();
    let mut deriver = Deriver::new(RatesConfig::default());
    [first, second, third]
        .into_iter()
        .map(|c| deriver.apply(c))
        .collect()
}

/// A running domain with every group reported, named `name`, with two vCPUs' counters,
/// one NIC and one disk named after it.
fn hand_built(name: &str, n: u32) -> RawDomain {
    RawDomain {
        id: Some(n),
        vcpu_times_ns: vec![2_000_000_000, 2_500_000_000],
        vcpu_delays_ns: vec![10_000_000, 30_000_000],
        nics: vec![fixtures::nic(name)],
        disks: vec![DiskStats {
            fl_reqs: Some(1),
            rd_times_ns: Some(2_000_000),
            wr_times_ns: Some(3_000_000),
            fl_times_ns: Some(500_000),
            errors: Some(0),
            ..fixtures::disk(name)
        }],
        ..fixtures::reported(name, &format!("550e8400-e29b-41d4-a716-4466554400{n:02}"))
    }
}

/// Two cycles of the hostile-named domains plus one paused and one shut off.
fn hostile_cycles() -> Vec<Vec<VmSnapshot>> {
    let base = Instant::now();
    let mut first: Vec<RawDomain> = fixtures::HOSTILE_NAMES
        .iter()
        .zip(0u32..)
        .map(|(name, n)| pinned(hand_built(name, n), base))
        .collect();
    let mut paused = hand_built("paused vm", 40);
    paused.state = DomainState::Paused;
    let mut off = hand_built("off,vm", 41);
    off.state = DomainState::Shutoff;
    off.id = None;
    first.extend([pinned(paused, base), pinned(off, base)]);
    let second: Vec<RawDomain> = first.iter().map(|d| advanced(d, 1)).collect();
    let mut deriver = Deriver::new(RatesConfig::default());
    vec![deriver.apply(first), deriver.apply(second)]
}

fn contexts() -> Vec<(String, EncodeCtx)> {
    let mut tags = BTreeMap::new();
    tags.insert("dc".to_string(), "zürich=1".to_string());
    tags.insert(r"k\ ey\".to_string(), r"v\,a=l\".to_string());
    tags.insert("name".to_string(), "ignored: reserved".to_string());
    vec![
        (
            "rust".into(),
            EncodeCtx::with_escaping("hv1", &BTreeMap::new(), Escaping::Rust),
        ),
        (
            "go".into(),
            EncodeCtx::with_escaping("hv1", &BTreeMap::new(), Escaping::Go),
        ),
        (
            "rust+tags".into(),
            EncodeCtx::with_escaping(r"hv ä\", &tags, Escaping::Rust),
        ),
        (
            "go+tags".into(),
            EncodeCtx::with_escaping(r"hv ä\", &tags, Escaping::Go),
        ),
    ]
}

fn render() -> String {
    let mut sets: Vec<(String, Vec<Vec<VmSnapshot>>)> = FIXTURES
        .iter()
        .map(|f| (f.to_string(), fixture_cycles(f)))
        .collect();
    sets.push(("hostile".into(), hostile_cycles()));
    let mut out = String::new();
    for (label, ctx) in contexts() {
        for (set, cycles) in &sets {
            for (i, cycle) in cycles.iter().enumerate() {
                out.push_str(&format!("# {set} cycle {i} escaping {label}\n"));
                for vm in cycle {
                    encode_vm_into(&mut out, &ctx, vm);
                }
            }
        }
    }
    out
}

#[test]
fn line_protocol_is_byte_for_byte_the_golden_file() {
    let got = render();
    let path = format!("{}/{GOLDEN}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("VMPULSE_BLESS").is_some() {
        std::fs::create_dir_all(format!("{}/tests/golden", env!("CARGO_MANIFEST_DIR")))
            .expect("create tests/golden");
        std::fs::write(&path, &got).expect("write golden file");
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{GOLDEN}: {e} (VMPULSE_BLESS=1 records it)"));
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or(got.lines().count().min(want.lines().count()));
        panic!(
            "line protocol differs from {GOLDEN} at line {}:\n got: {:?}\nwant: {:?}\n\
             (VMPULSE_BLESS=1 rewrites it when a metric was added on purpose)",
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
}

#[test]
fn golden_covers_rates_devices_and_every_escaping() {
    let got = render();
    for needle in [
        "vm_features,",
        "vm_devices,",
        "devtype=disk",
        "devtype=nic",
        "cpu_angle_deg=",
        "vcpu_delay=",
        "disk_read_latency_ms=",
        "flush_total_times=",
        r"a\\_",
    ] {
        assert!(got.contains(needle), "golden input lacks {needle}");
    }
}
