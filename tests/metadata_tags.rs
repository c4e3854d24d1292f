//! `collector.metadata_tags` against libvirt's test driver (no daemon): Nova
//! `<metadata>` in `tests/fixtures/nova-host.xml` read by `LibvirtSource`, then
//! the real binary's line protocol (parsed by InfluxDB 3's parser), JSON, CSV,
//! `/vms` and `/metrics`, and a malformed entry refused at start.

mod control_support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use control_support::{command, Service};
use vmpulse::collector::metadata::MetadataSpec;
use vmpulse::collector::source::LibvirtSource;
use vmpulse::config::metadata::parse_entry;
use vmpulse::encode::line_protocol::stored_tag;

const NOVA: &str = "http://openstack.org/xmlns/libvirt/nova/1.1";
const WEB: &str = "0a7a0000-0000-4000-8000-000000000001";
const DB: &str = "0a7a0000-0000-4000-8000-000000000002";
const EVIL: &str = "0a7a0000-0000-4000-8000-000000000003";
const PLAIN: &str = "0a7a0000-0000-4000-8000-000000000004";
const OFF: &str = "0a7a0000-0000-4000-8000-000000000005";
const EVIL_PROJECT: &str = r#"blog, env=prod "x"\y\"#;
const EVIL_NAME: &str = r#"evil "1", =x\"#;
const EVIL_FLAVOR: &str = r#"m1 large,x="y""#;

fn fixture_uri() -> String {
    format!(
        "test://{}/tests/fixtures/nova-host.xml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The configured tags, as `[collector.metadata_tags]` says them.
const ENTRIES: [(&str, &str); 3] = [
    ("project", "instance/owner/project"),
    ("flavor", "instance/flavor/@name"),
    ("instance", "instance/name"),
];

/// Each fixture VM's tags, in the order the config gives them (a table's keys
/// are read sorted: flavor, instance, project).
fn expected() -> HashMap<&'static str, Vec<(&'static str, &'static str)>> {
    HashMap::from([
        (
            WEB,
            vec![
                ("flavor", "m1.small"),
                ("instance", "shop-web-1"),
                ("project", "shop"),
            ],
        ),
        (DB, vec![("instance", "shop-db-1"), ("project", "shop")]),
        (
            EVIL,
            vec![
                ("flavor", EVIL_FLAVOR),
                ("instance", EVIL_NAME),
                ("project", EVIL_PROJECT),
            ],
        ),
        (PLAIN, vec![]),
        (
            OFF,
            vec![
                ("flavor", "m1.tiny"),
                ("instance", "old-shop-1"),
                ("project", "shop"),
            ],
        ),
    ])
}

fn config_text(extra: &str) -> String {
    let mut t = String::from("[collector.metadata_tags]\n");
    for (name, path) in ENTRIES {
        t.push_str(&format!("{name} = \"{NOVA} {path}\"\n"));
    }
    t.push_str(extra);
    t
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// `vmpulse --config F --connect URI ARGS`, clean environment.
fn run(config: &Path, args: &[&str]) -> std::process::Output {
    let uri = fixture_uri();
    let mut all = vec!["--config", config.to_str().unwrap(), "--connect", &uri];
    all.extend_from_slice(args);
    command(&all).output().expect("run vmpulse")
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

#[test]
fn the_source_reads_each_domains_tags_once_and_leaves_missing_ones_out() {
    // Sorted, as the config file's table gives them.
    let mut entries = ENTRIES;
    entries.sort();
    let spec = MetadataSpec::new(
        entries
            .iter()
            .map(|(n, p)| parse_entry(n, &format!("{NOVA} {p}")).unwrap())
            .collect(),
        Duration::from_secs(60),
    );
    let mut src = LibvirtSource::open(&fixture_uri(), Duration::from_secs(300))
        .expect("open test driver")
        .with_metadata(spec);
    let deadline = || Instant::now() + Duration::from_secs(30);
    let first = src.sample(deadline()).expect("sample");
    assert!(first.skipped.is_empty(), "{:?}", first.skipped);
    let want = expected();
    assert_eq!(first.domains.len(), want.len());
    for d in &first.domains {
        // In the setting's order (a TOML table's keys come sorted).
        let got: Vec<(&str, &str)> = d
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(got, want[d.uuid.as_str()], "{}", d.name);
    }
    let second = src.sample(deadline()).expect("sample");
    for (a, b) in first.domains.iter().zip(&second.domains) {
        assert_eq!(a.tags, b.tags, "cached tags of {}", a.name);
    }
}

#[test]
fn every_line_of_a_tagged_vm_carries_its_tags_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config_text("[tags]\ndc = \"par1\"\n"));
    let text = stdout_of(&run(&config, &["--once", "--output", "-"]));
    let want = expected();
    let mut measurements: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let parsed = influxdb_line_protocol::parse_lines(line)
            .next()
            .expect("one line")
            .unwrap_or_else(|e| panic!("InfluxDB 3's parser refused {line:?}: {e}"));
        let tag = |k: &str| parsed.tag_value(k).map(|v| v.to_string());
        assert_eq!(tag("dc").as_deref(), Some("par1"), "{line}");
        if parsed.series.measurement.starts_with("hypervisor") {
            // The host's lines: no VM, so no VM or metadata tags.
            assert_eq!(tag("uuid"), None, "{line}");
            continue;
        }
        let uuid = tag("uuid").expect("uuid tag");
        let tags = &want[uuid.as_str()];
        for (name, _) in ENTRIES {
            let expect = tags
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| stored_tag(v));
            assert_eq!(tag(name), expect, "{name} on {line}");
        }
        measurements
            .entry(uuid)
            .or_default()
            .push(parsed.series.measurement.to_string());
    }
    let web = &measurements[WEB];
    for m in ["vm_metrics", "vm_features", "vm_devices", "vm_totals"] {
        assert!(web.contains(&m.to_string()), "{m} of shop-web-1: {web:?}");
    }
    assert_eq!(web.iter().filter(|m| *m == "vm_devices").count(), 2);
    assert!(measurements[OFF].contains(&"vm_metrics".to_string()));
    assert_eq!(measurements.len(), want.len());
}

#[test]
fn json_and_csv_have_a_column_per_tag() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config_text(""));
    let want = expected();
    let value = |uuid: &str, name: &str| {
        want[uuid]
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    };
    let json = stdout_of(&run(
        &config,
        &["--once", "--output", "-", "--format", "json"],
    ));
    let mut seen = 0;
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        let uuid = v["uuid"].as_str().unwrap();
        for (name, _) in ENTRIES {
            assert_eq!(
                v[name].as_str().map(String::from),
                value(uuid, name),
                "{line}"
            );
            assert!(v.get(name).is_some(), "{name} column even when null");
        }
        seen += 1;
    }
    assert_eq!(seen, want.len());

    let csv = stdout_of(&run(
        &config,
        &["--once", "--output", "-", "--format", "csv"],
    ));
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let h: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| {
        h.iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("{n} in {h:?}"))
    };
    let uuid_col = col("uuid");
    assert_eq!(
        &h[uuid_col + 1..uuid_col + 4],
        ["flavor", "instance", "project"]
    );
    let mut rows = 0;
    for row in r.records() {
        let row = row.expect("csv row");
        let uuid = &row[uuid_col];
        for (name, _) in ENTRIES {
            assert_eq!(
                row[col(name)].to_string(),
                value(uuid, name).unwrap_or_default()
            );
        }
        rows += 1;
    }
    assert_eq!(rows, want.len());
}

#[test]
fn vms_and_metrics_show_the_tags() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &config_text("[control]\nmetrics_per_vm = true\n"),
    );
    let svc = Service::start_on(
        &fixture_uri(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--poll-interval",
            "0.2",
        ],
    );
    let want = expected();
    let vms = svc.get_json("/vms");
    for vm in vms["vms"].as_array().expect("vms") {
        let uuid = vm["uuid"].as_str().unwrap();
        let tags: BTreeMap<String, String> =
            serde_json::from_value(vm["tags"].clone()).expect("tags object");
        let expect: BTreeMap<String, String> = want[uuid]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(tags, expect, "{uuid}");
    }
    let one = svc.get_json(&format!("/vms/{EVIL}"));
    assert_eq!(one["tags"]["project"], EVIL_PROJECT);
    let metrics = svc.req("GET", "/metrics", b"").body;
    let web_cpu = metrics
        .lines()
        .find(|l| l.starts_with("vmpulse_vm_vcpus{") && l.contains(WEB))
        .unwrap_or_else(|| panic!("vcpus of shop-web-1 in\n{metrics}"));
    assert!(
        web_cpu.contains(
            r#",name="shop-web-1",flavor="m1.small",instance="shop-web-1",project="shop"}"#
        ),
        "{web_cpu}"
    );
    let evil = metrics
        .lines()
        .find(|l| l.starts_with("vmpulse_vm_vcpus{") && l.contains(EVIL))
        .expect("evil-1's series");
    assert!(
        evil.contains(r#"project="blog, env=prod \"x\"\\y\\""#),
        "{evil}"
    );
    let (code, log) = svc.stop();
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_malformed_entry_is_refused_at_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (entry, why) in [
        ("project = \"instance/owner/project\"", "namespace URI"),
        (
            "project = \"http://openstack.org/xmlns/libvirt/nova/1.1 instance//project\"",
            "element name",
        ),
        ("uuid = \"urn:x instance/uuid\"", "reserved"),
    ] {
        let config = write_config(dir.path(), &format!("[collector.metadata_tags]\n{entry}\n"));
        let out = run(&config, &["--once", "--output", "-"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{entry}: {err}");
        assert!(
            err.contains("collector.metadata_tags") && err.contains(why),
            "{entry}: {err}"
        );
        assert!(out.stdout.is_empty(), "nothing written");
    }
}
