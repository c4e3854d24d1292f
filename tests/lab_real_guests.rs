//! Real guests end to end: `scripts/lab-host.sh up 2` starts libvirtd and two small
//! TCG guests whose workload moves CPU, memory, disk and network (one of them has a
//! hostile name); the real `vmpulse --no-ui` samples them for ~25 s into a real
//! influxd; InfluxQL then proves every metric moved for both guests and that the
//! device series carry the real device names. Needs root (starts libvirtd).
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::{Duration, Instant};

use common::lab::{Lab, Vmpulse, URI};

const RUN_FOR: Duration = Duration::from_secs(25);

/// InfluxQL string literal: single quotes, with `\` and `'` escaped.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// First value of the first series (None when the query matched nothing).
fn scalar(influx: &common::InfluxD, db: &str, q: &str) -> Option<f64> {
    let v = influx.query(db, q);
    assert!(
        v["results"][0]["error"].is_null(),
        "query '{q}' answered an error: {v}"
    );
    v["results"][0]["series"][0]["values"][0][1].as_f64()
}

/// Values of tag `key` over the series of a GROUP BY query.
fn group_tags(influx: &common::InfluxD, db: &str, q: &str, key: &str) -> BTreeSet<String> {
    let v = influx.query(db, q);
    v["results"][0]["series"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .filter_map(|s| s["tags"][key].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Real NIC and disk names per guest from `virsh domstats --raw` (tap names change
/// at every guest start, so they are read, never assumed).
fn real_devices(guests: &[String]) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut cmd = Command::new("timeout");
    cmd.args([
        "60",
        "virsh",
        "-c",
        URI,
        "domstats",
        "--raw",
        "--interface",
        "--block",
        "--",
    ]);
    cmd.args(guests);
    let out = cmd.output().expect("run virsh domstats");
    assert!(
        out.status.success(),
        "virsh domstats: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("Domain: '") {
            current = rest.strip_suffix('\'').map(str::to_owned);
            continue;
        }
        let (Some(dom), Some((key, value))) = (&current, line.trim().split_once('=')) else {
            continue;
        };
        let entry = map.entry(dom.clone()).or_default();
        if key.starts_with("net.") && key.ends_with(".name") {
            entry.0.insert(value.to_owned());
        } else if key.starts_with("block.") && key.ends_with(".name") {
            entry.1.insert(value.to_owned());
        }
    }
    map
}

/// The source itself against the real hypervisor: the bulk call supplies every
/// group, and what it reports matches libvirt's own per-domain answers and XML.
fn source_uses_bulk_and_matches_domain_xml(uri: &str) {
    let mut src = vmpulse::collector::source::LibvirtSource::open(uri, Duration::from_secs(300))
        .expect("open real hypervisor");
    let s1 = src
        .sample(Instant::now() + Duration::from_secs(60))
        .expect("sample");
    std::thread::sleep(Duration::from_millis(1500));
    let s2 = src
        .sample(Instant::now() + Duration::from_secs(60))
        .expect("sample");
    assert!(s1.skipped.is_empty(), "{:?}", s1.skipped);
    assert!(s1.used_bulk, "qemu supplies every group in the bulk call");
    let active: Vec<_> = s1
        .domains
        .iter()
        .filter(|d| d.state.has_guest_counters())
        .collect();
    assert!(!active.is_empty(), "at least one running guest on {uri}");

    let conn = virt::connect::Connect::open(Some(uri)).expect("second connection");
    let m2: BTreeMap<&str, &vmpulse::model::RawDomain> =
        s2.domains.iter().map(|d| (d.uuid.as_str(), d)).collect();
    for d in &s1.domains {
        let dom = conn
            .lookup_domain_by_uuid_string(&d.uuid)
            .expect("domain by uuid");
        assert_eq!(dom.name().expect("name"), d.name);
        if !d.state.has_guest_counters() {
            assert!(d.cpu.is_none() && d.nics.is_empty() && d.disks.is_empty());
            continue;
        }
        let info = dom.info().expect("info");
        assert_eq!(d.vcpus, Some(info.nr_virt_cpu), "{}", d.name);
        assert_eq!(d.max_mem_kib, Some(info.max_mem), "{}", d.name);
        let xml = dom.xml_desc(0).expect("xml");
        let devs = vmpulse::collector::devices::parse_domain_devices(&xml).expect("parse");
        let nics: Vec<_> = d.nics.iter().map(|n| n.name.clone()).collect();
        let want: Vec<_> = devs.nics.iter().map(|n| n.name.clone()).collect();
        assert_eq!(nics, want, "NIC names of {}", d.name);
        let disks: Vec<_> = d.disks.iter().map(|n| n.name.clone()).collect();
        let want: Vec<_> = devs.disks.iter().map(|n| n.name.clone()).collect();
        assert_eq!(disks, want, "disk names of {}", d.name);
        let later = m2.get(d.uuid.as_str()).expect("still there");
        if d.state.is_running() && later.state.is_running() {
            let (a, b) = (d.cpu.expect("cpu"), later.cpu.expect("cpu"));
            assert!(b.time_ns > a.time_ns, "running guest {} uses CPU", d.name);
        }
    }
}

#[test]
#[cfg_attr(
    not(feature = "lab-tests"),
    ignore = "needs root: installs QEMU, starts libvirtd and two guests: cargo test --features lab-tests"
)]
fn vmpulse_sees_cpu_memory_disk_and_network_move_in_real_guests() {
    let (_lab, guests) = Lab::up(2);
    let devices = real_devices(&guests);
    for g in &guests {
        let (nics, disks) = devices.get(g).cloned().unwrap_or_default();
        assert!(
            !nics.is_empty() && !disks.is_empty(),
            "guest '{g}' has NICs and disks in domstats: {devices:?}"
        );
    }

    source_uses_bulk_and_matches_domain_xml(URI);

    let influx = common::InfluxD::start();
    let db = "realguests";
    influx.create_db(db);

    let args = |_: &str| {
        [
            "--influx-url",
            &influx.url,
            "--influx-api",
            "v1",
            "--influx-db",
            db,
            "--poll-interval",
            "1",
        ]
        .map(String::from)
        .to_vec()
    };
    let mut vmpulse = Vmpulse::spawn(args, &[]);
    vmpulse.keep_running_until(Instant::now() + RUN_FOR);
    let status = vmpulse.terminate();
    let log_text = vmpulse.log_text();
    assert!(
        status.success(),
        "vmpulse exit status {status}; its stderr:\n{log_text}"
    );

    let mut failures = Vec::new();
    for g in &guests {
        let name = lit(g);
        let max = |field: &str, m: &str| {
            scalar(
                &influx,
                db,
                &format!("SELECT MAX(\"{field}\") FROM \"{m}\" WHERE \"name\" = {name}"),
            )
            .unwrap_or(0.0)
        };

        let cpu = max("cpu_usage_percent", "vm_features");
        if cpu <= 0.0 {
            failures.push(format!("'{g}': max cpu_usage_percent = {cpu}, want > 0"));
        }

        let nonzero_mem_rate = scalar(
            &influx,
            db,
            &format!(
                "SELECT COUNT(\"memory_rate_kb_per_sec\") FROM \"vm_features\" \
                 WHERE \"name\" = {name} AND \"memory_rate_kb_per_sec\" != 0"
            ),
        )
        .unwrap_or(0.0);
        let distinct_used = scalar(
            &influx,
            db,
            &format!(
                "SELECT COUNT(DISTINCT(\"memory_used_kb\")) FROM \"vm_metrics\" WHERE \"name\" = {name}"
            ),
        )
        .unwrap_or(0.0);
        if nonzero_mem_rate < 1.0 && distinct_used < 2.0 {
            failures.push(format!(
                "'{g}': memory does not move (nonzero memory_rate_kb_per_sec: {nonzero_mem_rate}, \
                 distinct memory_used_kb: {distinct_used})"
            ));
        }

        let disk_w = max("disk_write_bytes_per_sec", "vm_features");
        let disk_r = max("disk_read_bytes_per_sec", "vm_features");
        if disk_w <= 0.0 && disk_r <= 0.0 {
            failures.push(format!(
                "'{g}': disk does not move (max disk_write_bytes_per_sec {disk_w}, \
                 max disk_read_bytes_per_sec {disk_r})"
            ));
        }

        let net_rx = max("net_rx_bytes_per_sec", "vm_features");
        let net_tx = max("net_tx_bytes_per_sec", "vm_features");
        if net_rx <= 0.0 && net_tx <= 0.0 {
            failures.push(format!(
                "'{g}': network does not move (max net_rx_bytes_per_sec {net_rx}, \
                 max net_tx_bytes_per_sec {net_tx})"
            ));
        }

        let (want_nics, want_disks) = devices.get(g).cloned().unwrap_or_default();
        let nics = group_tags(
            &influx,
            db,
            &format!(
                "SELECT COUNT(\"rxbytes\") FROM \"vm_devices\" \
                 WHERE \"name\" = {name} AND \"devtype\" = 'nic' GROUP BY \"device\""
            ),
            "device",
        );
        let disks = group_tags(
            &influx,
            db,
            &format!(
                "SELECT COUNT(\"wr_bytes\") FROM \"vm_devices\" \
                 WHERE \"name\" = {name} AND \"devtype\" = 'disk' GROUP BY \"device\""
            ),
            "device",
        );
        if !want_nics.is_subset(&nics) {
            failures.push(format!(
                "'{g}': vm_devices nic series {nics:?}, want the real NICs {want_nics:?}"
            ));
        }
        if !want_disks.is_subset(&disks) {
            failures.push(format!(
                "'{g}': vm_devices disk series {disks:?}, want the real disks {want_disks:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "real-guest checks failed:\n  {}\nvmpulse stderr:\n{log_text}",
        failures.join("\n  ")
    );
}
