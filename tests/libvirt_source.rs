//! `LibvirtSource` against libvirt's real test driver (no daemon needed).
//!
//! Expected values are read from the fixture XML itself, so the fixture can
//! change without touching the assertions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vmpulse::collector::source::{CycleSample, LibvirtSource, SourceError};
use vmpulse::model::{DomainState, RawDomain};

const TTL: Duration = Duration::from_secs(300);

fn fixture_path() -> String {
    format!("{}/tests/fixtures/testhost.xml", env!("CARGO_MANIFEST_DIR"))
}

fn fixture_uri() -> String {
    format!("test://{}", fixture_path())
}

/// One `<domain>` of the fixture, as the test expects to see it.
#[derive(Debug)]
struct Expected {
    name: String,
    vcpus: u32,
    memory_kib: u64,
    current_kib: u64,
    nics: Vec<String>,
    disks: Vec<String>,
    /// From `<test:runstate>`; running when absent.
    state: DomainState,
}

fn expected() -> HashMap<String, Expected> {
    let xml = std::fs::read_to_string(fixture_path()).expect("fixture readable");
    let doc = roxmltree::Document::parse(&xml).expect("fixture parses");
    let text = |n: roxmltree::Node, tag: &str| {
        n.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    let mut out = HashMap::new();
    for d in doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("domain"))
    {
        let uuid = text(d, "uuid").expect("uuid");
        let devices = d.children().find(|c| c.has_tag_name("devices"));
        let targets = |kind: &str| -> Vec<String> {
            devices
                .into_iter()
                .flat_map(|dv| dv.children().filter(|c| c.has_tag_name(kind)))
                .filter_map(|c| {
                    c.children()
                        .find(|t| t.has_tag_name("target"))
                        .and_then(|t| t.attribute("dev"))
                        .map(str::to_string)
                })
                .collect()
        };
        let runstate = d
            .children()
            .find(|c| c.tag_name().name() == "runstate")
            .and_then(|c| c.text())
            .map(|t| t.trim().parse::<i32>().expect("runstate int"))
            .unwrap_or(1);
        out.insert(
            uuid,
            Expected {
                name: text(d, "name").expect("name"),
                vcpus: text(d, "vcpu").expect("vcpu").parse().expect("vcpu int"),
                memory_kib: text(d, "memory").expect("memory").parse().expect("int"),
                current_kib: text(d, "currentMemory")
                    .expect("currentMemory")
                    .parse()
                    .expect("int"),
                nics: targets("interface"),
                disks: targets("disk"),
                state: DomainState::from_code(runstate),
            },
        );
    }
    out
}

fn by_uuid(s: &CycleSample) -> HashMap<&str, &RawDomain> {
    s.domains.iter().map(|d| (d.uuid.as_str(), d)).collect()
}

fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

#[test]
fn samples_every_domain_of_the_fixture() {
    let exp = expected();
    assert!(exp.len() >= 6, "fixture has the domains the test relies on");
    assert!(
        exp.values().any(|e| e.name == "web 01,env=prod \"x\"\\y"),
        "fixture keeps its hostile name"
    );

    let mut src = LibvirtSource::open(&fixture_uri(), TTL).expect("open test driver");
    assert_eq!(src.uri(), fixture_uri());
    assert!(src.is_alive());
    let s1 = src.sample(far_deadline()).expect("first sample");
    assert!(s1.skipped.is_empty(), "nothing skipped: {:?}", s1.skipped);
    // The test driver's bulk call supplies only `state`.
    assert!(!s1.used_bulk);
    assert_eq!(src.bulk_supported(), Some(true));
    assert_eq!(s1.domains.len(), exp.len());

    std::thread::sleep(Duration::from_millis(20));
    let s2 = src.sample(far_deadline()).expect("second sample");
    assert!(s2.skipped.is_empty(), "nothing skipped: {:?}", s2.skipped);
    let (m1, m2) = (by_uuid(&s1), by_uuid(&s2));

    for (uuid, e) in &exp {
        let a = m1
            .get(uuid.as_str())
            .unwrap_or_else(|| panic!("{uuid} found"));
        let b = m2
            .get(uuid.as_str())
            .unwrap_or_else(|| panic!("{uuid} found"));
        assert_eq!(a.name, e.name, "exact name of {uuid}");
        assert_eq!(a.state, e.state, "state of {}", e.name);
        assert!(
            b.mono > a.mono && b.wall_ns > a.wall_ns,
            "timestamps advance"
        );

        if !e.state.has_guest_counters() {
            assert_eq!(a.id, None, "inactive {} has no ID", e.name);
            assert_eq!(a.cpu, None, "inactive {} has no CPU", e.name);
            assert_eq!(a.vcpus, None);
            assert_eq!(a.max_mem_kib, None);
            assert!(a.nics.is_empty() && a.disks.is_empty(), "no devices");
            assert!(a.vcpu_times_ns.is_empty());
            assert_eq!(a.balloon, Default::default());
            continue;
        }

        assert!(a.id.is_some(), "active {} has an ID", e.name);
        assert_eq!(a.vcpus, Some(e.vcpus), "vcpus of {}", e.name);
        assert_eq!(a.max_mem_kib, Some(e.memory_kib), "max mem of {}", e.name);
        assert_eq!(a.cur_mem_kib, Some(e.current_kib), "cur mem of {}", e.name);
        let nic_names: Vec<_> = a.nics.iter().map(|n| n.name.clone()).collect();
        let disk_names: Vec<_> = a.disks.iter().map(|d| d.name.clone()).collect();
        assert_eq!(nic_names, e.nics, "NICs of {}", e.name);
        assert_eq!(disk_names, e.disks, "disks of {}", e.name);

        let (ca, cb) = (a.cpu.expect("cpu"), b.cpu.expect("cpu"));
        assert!(cb.time_ns > ca.time_ns, "cpu time grows for {}", e.name);
        for (na, nb) in a.nics.iter().zip(&b.nics) {
            assert_eq!(na.name, nb.name);
            assert!(nb.rx_bytes > na.rx_bytes && nb.tx_bytes > na.tx_bytes);
            assert!(nb.rx_packets > na.rx_packets && nb.tx_packets > na.tx_packets);
        }
        for (da, db) in a.disks.iter().zip(&b.disks) {
            assert_eq!(da.name, db.name);
            assert!(db.rd_bytes > da.rd_bytes && db.wr_bytes > da.wr_bytes);
            assert!(db.rd_reqs > da.rd_reqs && db.wr_reqs > da.wr_reqs);
            assert!(da.errors.is_some(), "per-domain call reports errors");
            assert!(da.path.is_some(), "path from the XML");
        }
    }
}

#[test]
fn past_deadline_skips_per_domain_reads_but_keeps_inactive_states() {
    let exp = expected();
    let mut src = LibvirtSource::open(&fixture_uri(), TTL).expect("open test driver");
    let s = src.sample(Instant::now()).expect("sample");
    let active = exp
        .values()
        .filter(|e| e.state.has_guest_counters())
        .count();
    let inactive = exp.len() - active;
    // Active test-driver domains need per-domain calls, which the deadline forbids.
    assert_eq!(s.skipped.len(), active, "{:?}", s.skipped);
    assert!(s.skipped.iter().all(|n| n.why.contains("deadline")));
    assert_eq!(s.domains.len(), inactive);
    assert!(s.domains.iter().all(|d| !d.state.has_guest_counters()));
}

#[test]
fn builtin_test_domain_reports_balloon_stats() {
    let mut src = LibvirtSource::open("test:///default", TTL).expect("open test:///default");
    let s = src.sample(far_deadline()).expect("sample");
    assert!(s.skipped.is_empty(), "{:?}", s.skipped);
    let d = s
        .domains
        .iter()
        .find(|d| d.name == "test")
        .expect("built-in domain 'test'");
    assert!(d.state.is_running());
    // `dommemstat` works only for this domain in the test driver.
    assert!(d.balloon.current_kib.is_some(), "{:?}", d.balloon);
}

#[test]
fn bad_uri_names_the_uri() {
    let uri = format!(
        "test://{}/tests/fixtures/does-not-exist.xml",
        env!("CARGO_MANIFEST_DIR")
    );
    match LibvirtSource::open(&uri, TTL) {
        Err(e @ SourceError::Connect { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(&uri), "{msg}");
            let SourceError::Connect { message, .. } = e else {
                unreachable!()
            };
            assert!(!message.is_empty());
        }
        Err(other) => panic!("expected Connect error, got {other}"),
        Ok(_) => panic!("opening {uri} must fail"),
    }
}

/// The test driver reports no per-vCPU counters: the CPU split and the
/// per-vCPU totals are left out, never written as 0, while the host's CPU %
/// and the host summary are there.
#[test]
fn cpu_split_is_left_out_without_per_vcpu_counters() {
    let mut src = LibvirtSource::open(&fixture_uri(), TTL).expect("open fixture");
    let mut deriver = vmpulse::collector::derive::Deriver::new(vmpulse::config::RatesConfig {
        cpu_unit: 1.0,
        memory_unit: 1.0,
        throughput_unit: 1_048_576.0,
    });
    let first = src
        .sample(Instant::now() + Duration::from_secs(30))
        .expect("sample");
    deriver.apply(first.domains);
    std::thread::sleep(Duration::from_millis(50));
    let second = src
        .sample(Instant::now() + Duration::from_secs(30))
        .expect("sample");
    let host = second.host.clone().expect("the test driver has node info");
    assert!(host.cpus > 0 && host.memory_total_kib > 0, "{host:?}");
    let vms = deriver.apply(second.domains);
    let ctx = vmpulse::encode::line_protocol::EncodeCtx::new("h", &Default::default());
    let mut lines = Vec::new();
    let mut derived = 0;
    for vm in &vms {
        if let Some(d) = &vm.derived {
            derived += 1;
            assert!(
                d.cpu_percent.is_some(),
                "{}: host CPU % from cpu.time",
                vm.name()
            );
            assert_eq!(d.cpu_split, Default::default(), "{}", vm.name());
        }
        vmpulse::encode::line_protocol::encode_vm(&mut lines, &ctx, vm);
    }
    assert!(derived > 0, "running fixture domains get derived values");
    let text = lines.join("\n");
    for absent in [
        "cpu_guest_percent",
        "cpu_overhead_percent",
        "cpu_steal_percent",
        "vcpu_time",
        "vcpu_delay",
    ] {
        assert!(
            !text.contains(absent),
            "{absent} written for the test driver:\n{text}"
        );
    }
    assert!(text.contains("cpu_usage_percent="), "{text}");
}

#[test]
fn held_monitors_answers_with_none_held_on_an_idle_host() {
    // The poller's probe: the test driver answers virDomainGetControlInfo
    // ("ok" for every domain), so nothing is blamed and no call is doubled.
    let src = LibvirtSource::open(&fixture_uri(), TTL).expect("open test driver");
    let held = src.held_monitors().expect("probe answers");
    assert!(held.is_empty(), "{held:?}");
}

#[tokio::test]
async fn the_poller_samples_the_fixture_within_one_cycle() {
    use vmpulse::collector::poll::Poller;
    let p = Poller::new(&fixture_uri(), TTL, Duration::from_secs(10));
    let s = p
        .cycle(Duration::from_secs(1))
        .await
        .expect("cycle on the test driver");
    assert_eq!(s.domains.len(), expected().len());
    assert!(s.domains.iter().all(|d| d.monitor_stuck.is_none()));
    assert_eq!(p.held_calls(), 0, "no call left running");
}

#[test]
fn host_figures_come_from_the_node_calls_the_test_driver_answers() {
    let mut src = LibvirtSource::open("test:///default", TTL)
        .expect("open test:///default")
        .with_host_interval(Duration::from_millis(50));
    let first = src.sample(far_deadline()).expect("sample");
    let h = first.host.expect("the test driver answers virNodeGetInfo");
    assert_eq!((h.cpus, h.memory_total_kib), (16, 3_145_728));
    // No virNodeGetMemoryStats in the test driver: absent, not an error.
    assert_eq!(h.memory_used_kib, None);
    assert!(first.skipped.is_empty(), "{:?}", first.skipped);
    // Two NUMA cells (`virsh freecell --all`: 2048 and 4096 KiB).
    assert_eq!(h.numa_free_kib, [2048, 4096]);
    // The test driver answers virNodeGetFreePages but says it filled 0 counts:
    // free huge pages unknown, left out (the pure parts are unit-tested in collector::host).
    assert!(h.huge_pages.is_empty(), "{:?}", h.huge_pages);
    // Within the interval the same reading comes back; after it, a new one.
    let again = src
        .sample(far_deadline())
        .expect("sample")
        .host
        .expect("host");
    assert_eq!(again.read_at_ns, h.read_at_ns);
    std::thread::sleep(Duration::from_millis(60));
    let later = src
        .sample(far_deadline())
        .expect("sample")
        .host
        .expect("host");
    assert!(later.read_at_ns > h.read_at_ns);
}
