//! The writer and encoder against Debian's real `influxd` 1.x on loopback:
//! v1 writes of encoded VM lines read back exactly (hostile names included),
//! and 404 "database not found" until the database exists.

#[allow(clippy::while_let_loop)]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use vmpulse::config::{Config, InfluxApi};
use vmpulse::encode::line_protocol::{encode_vm, EncodeCtx, Escaping};
use vmpulse::model::*;
use vmpulse::writer::WriterHandle;

fn config(url: &str, db: &str) -> Config {
    let mut c = Config::default();
    c.influx.url = Some(url::Url::parse(url).expect("url"));
    c.influx.api = InfluxApi::V1;
    c.influx.db = db.into();
    c.influx.batch_max_lines = 100;
    c.influx.batch_max_age = Duration::from_millis(50);
    c.influx.max_backoff = Duration::from_millis(300);
    c
}

fn vm(i: usize, name: &str, state: DomainState) -> VmSnapshot {
    let active = state.has_guest_counters();
    VmSnapshot {
        raw: RawDomain {
            id: active.then_some(i as u32 + 1),
            state,
            state_reason: 0,
            vcpus: Some(2),
            max_mem_kib: Some(1 << 20),
            cur_mem_kib: Some(1 << 20),
            cpu: Some(CpuTimes {
                time_ns: 1_000_000 * i as u64 + 7,
                user_ns: Some(5),
                system_ns: Some(2),
            }),
            balloon: BalloonStats {
                current_kib: Some(1 << 20),
                rss_kib: Some(300_000 + i as u64),
                ..BalloonStats::default()
            },
            nics: vec![NicStats {
                name: format!("tap-{i}"),
                rx_bytes: 1000 + i as u64,
                ..NicStats::default()
            }],
            disks: vec![DiskStats {
                name: "vda".into(),
                rd_bytes: 4096 * i as u64,
                errors: Some(0),
                ..DiskStats::default()
            }],
            wall_ns: 1_700_000_000_000_000_000 + i as i64,
            ..vmpulse::fixtures::raw(name, &format!("00000000-0000-0000-0000-{i:012}"))
        },
        memory: active.then_some(MemoryUse {
            used_kb: 300_000 + i as u64,
            source: MemSource::Rss,
            total_kb: None,
            percent: Some(28.5),
        }),
        derived: active.then(|| Derived {
            dt_secs: 1.0,
            cpu_percent: Some(12.5),
            cpu_split: CpuSplit::default(),
            cpu_angle_deg: Some(-3.25),
            memory_percent_angle_deg: None,
            memory_rate_kb_per_sec: 1.0,
            memory_angle_deg: 45.0,
            disk_read: Throughput::default(),
            disk_write: Throughput::default(),
            net_rx: Throughput {
                bytes_per_sec: 1048576.0,
                ops_per_sec: Some(3.0),
            },
            net_tx: Throughput::default(),
            disk_angle_deg: 0.0,
            disk_read_angle_deg: 0.0,
            disk_write_angle_deg: 0.0,
            net_rx_angle_deg: 45.0,
            net_tx_angle_deg: 0.0,
            disks: vec![],
            nics: vec![],
            vcpu_percent: vec![],
            vcpu_steal_percent: vec![],
            ..Default::default()
        }),
    }
}

/// Names as libvirt accepts them, and the tag value InfluxDB must hold
/// (with the v1 encoding, `Escaping::Go`).
const NAMES: [(&str, &str); 13] = [
    (r#"web 01,env=prod "x"\y"#, r#"web 01,env=prod "x"\y"#),
    ("日本語-vm ü", "日本語-vm ü"),
    ("a=b=c", "a=b=c"),
    (r"back\slash", r"back\slash"),
    ("plain", "plain"),
    // Backslashes before each delimiter, doubled: all exact.
    (r"a\ b", r"a\ b"),
    (r"a\,b", r"a\,b"),
    (r"a\=b", r"a\=b"),
    (r"a\\b", r"a\\b"),
    (r"a\\ b", r"a\\ b"),
    (r"x\ ,=\y", r"x\ ,=\y"),
    // No parser can hold a trailing backslash: the documented substitute `\_`.
    ("trailing\\", "trailing\\_"),
    // Tabs end a tag in InfluxDB 3: replaced by a space.
    ("tab\there", "tab here"),
];

fn tag_values(influx: &common::InfluxD, db: &str, m: &str, key: &str) -> BTreeSet<String> {
    let v = influx.query(
        db,
        &format!("SHOW TAG VALUES FROM \"{m}\" WITH KEY = \"{key}\""),
    );
    v["results"][0]["series"][0]["values"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[1].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
async fn v1_write_of_encoded_vms_reads_back_exactly() {
    let influx = common::InfluxD::start();
    influx.create_db("vmpulse");
    let mut tags = BTreeMap::new();
    tags.insert("rack".to_string(), "r 1,=".to_string());
    let ctx = EncodeCtx::with_escaping("hv-test", &tags, Escaping::Go);
    let mut lines = Vec::new();
    for (i, (name, _)) in NAMES.iter().enumerate() {
        encode_vm(&mut lines, &ctx, &vm(i, name, DomainState::Running));
    }
    let off = NAMES.len();
    encode_vm(
        &mut lines,
        &ctx,
        &vm(off, "stopped vm", DomainState::Shutoff),
    );
    let n = lines.len();
    let w = WriterHandle::start(&config(&influx.url, "vmpulse")).expect("start");
    w.enqueue(lines);
    assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats.lines_written, n as u64);
    assert_eq!(stats.lines_rejected, 0, "{:?}", stats.last_error);

    let want: BTreeSet<String> = NAMES
        .iter()
        .map(|(_, stored)| stored.to_string())
        .chain(["stopped vm".to_string()])
        .collect();
    for m in ["vm_metrics", "vm_totals"] {
        assert_eq!(tag_values(&influx, "vmpulse", m, "name"), want, "{m}");
    }
    let active: BTreeSet<String> = NAMES.iter().map(|(_, s)| s.to_string()).collect();
    for m in ["vm_features", "vm_devices"] {
        assert_eq!(tag_values(&influx, "vmpulse", m, "name"), active, "{m}");
    }
    assert_eq!(
        tag_values(&influx, "vmpulse", "vm_metrics", "rack"),
        BTreeSet::from(["r 1,=".to_string()])
    );
    assert_eq!(
        tag_values(&influx, "vmpulse", "vm_devices", "devtype"),
        BTreeSet::from(["disk".to_string(), "nic".to_string()])
    );
    // Counts per measurement: every VM once, devices twice per active VM.
    let active_n = NAMES.len() as u64;
    assert_eq!(influx.count("vmpulse", "vm_metrics", "state"), active_n + 1);
    assert_eq!(influx.count("vmpulse", "vm_totals", "state"), active_n + 1);
    assert_eq!(
        influx.count("vmpulse", "vm_features", "cpu_usage_percent"),
        active_n
    );
    assert_eq!(influx.count("vmpulse", "vm_devices", "rxbytes"), active_n);
    assert_eq!(influx.count("vmpulse", "vm_devices", "rd_bytes"), active_n);

    // Exact values and types for the hostile name.
    let q = r#"SELECT "state","cpu_count","cputime_ns","memory_used_kb" FROM "vm_metrics" WHERE "name" = 'web 01,env=prod "x"\\y'"#;
    let v = influx.query("vmpulse", q);
    let row = &v["results"][0]["series"][0]["values"][0];
    assert_eq!(row[0].as_i64(), Some(1_700_000_000_000_000_000), "{v}");
    assert_eq!(row[1].as_str(), Some("running"));
    assert_eq!(row[2].as_i64(), Some(2));
    assert_eq!(row[3].as_i64(), Some(7));
    assert_eq!(row[4].as_i64(), Some(300_000));
    let v = influx.query(
        "vmpulse",
        r#"SELECT "cpu_usage_percent","cpu_angle_deg","net_rx_bytes_per_sec","memory_source" FROM "vm_features" WHERE "uuid" = '00000000-0000-0000-0000-000000000001'"#,
    );
    let row = &v["results"][0]["series"][0]["values"][0];
    assert_eq!(row[1].as_f64(), Some(12.5), "{v}");
    assert_eq!(row[2].as_f64(), Some(-3.25));
    assert_eq!(row[3].as_f64(), Some(1048576.0));
    assert_eq!(row[4].as_str(), Some("rss"));
    // The shut-off VM has state only in vm_totals, no VMID.
    let v = influx.query(
        "vmpulse",
        r#"SELECT * FROM "vm_totals" WHERE "name" = 'stopped vm'"#,
    );
    let series = &v["results"][0]["series"][0];
    let cols: Vec<&str> = series["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    let row = &series["values"][0];
    let state_idx = cols
        .iter()
        .position(|c| *c == "state")
        .expect("state column");
    assert_eq!(row[state_idx].as_i64(), Some(5));
    let vmid_idx = cols.iter().position(|c| *c == "VMID").expect("VMID column");
    assert!(
        row[vmid_idx].is_null(),
        "no VMID for a shut-off domain: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(feature = "system-tests"),
    ignore = "needs influxd 1.x on PATH (Debian influxdb): cargo test --features system-tests"
)]
async fn database_not_found_until_created_then_written() {
    let influx = common::InfluxD::start();
    let w = WriterHandle::start(&config(&influx.url, "later")).expect("start");
    let lines: Vec<String> = (0..500)
        .map(|i| format!("m,host=h v={i}i {}", 1_700_000_000_000_000_000i64 + i))
        .collect();
    w.enqueue(lines);
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end && w.stats().state != WriterState::Failing {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = w.stats();
    assert_eq!(s.state, WriterState::Failing);
    let err = s.last_error.unwrap_or_default();
    assert!(err.contains("database not found"), "{err}");
    assert!(err.contains("INFLUX_DB"), "{err}");
    assert_eq!(s.lines_written, 0);
    assert_eq!(s.lines_dropped + s.lines_rejected, 0, "data is kept");

    influx.create_db("later");
    assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats.lines_written, 500);
    assert_eq!(stats.state, WriterState::Ok);
    assert_eq!(influx.count("later", "m", "v"), 500);
    let v = influx.query("later", "SELECT SUM(\"v\") FROM \"m\"");
    assert_eq!(
        v["results"][0]["series"][0]["values"][0][1].as_i64(),
        Some((0..500).sum::<i64>())
    );
}
