//! Screens of the TUI rendered with `TestBackend` from fixed fake snapshots
//! and a fixed clock, compared with insta snapshots; plus the help-covers-
//! every-binding check, NO_COLOR, key handling, and the README screenshot.
//!
//! Regenerate snapshots: `INSTA_UPDATE=always cargo test --test ui_snapshots`
//! (then review `tests/snapshots/*.snap`). Regenerate the screenshot assets:
//! `VMPULSE_UPDATE_ASSETS=1 cargo test --test ui_snapshots screenshot`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;

use vmpulse::engine::Control;
use vmpulse::model::*;
use vmpulse::ui::app::{App, Command, Msg, Options, QuitReason};
use vmpulse::ui::keys::BINDINGS;
use vmpulse::ui::render::view;
use vmpulse::ui::theme::Theme;

const MIB: f64 = 1024.0 * 1024.0;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn opts(color: bool) -> Options {
    Options {
        theme: Theme { color },
        disk_ceiling: None,
        net_ceiling: None,
        history: Duration::from_secs(300),
    }
}

fn raw(name: &str, uuid: &str, state: DomainState, vcpus: u32, mem_mib: u64) -> RawDomain {
    RawDomain {
        id: state.has_guest_counters().then_some(7),
        state,
        vcpus: Some(vcpus),
        max_mem_kib: Some(mem_mib * 1024),
        cur_mem_kib: Some(mem_mib * 1024),
        cpu: Some(CpuTimes {
            time_ns: 123_000_000_000,
            user_ns: None,
            system_ns: None,
        }),
        ..vmpulse::fixtures::raw(name, uuid)
    }
}

struct Load {
    cpu: f64,
    cpu_deg: f64,
    mem_deg: f64,
    disk_r: f64,
    disk_w: f64,
    rx: f64,
    tx: f64,
}

fn derived(l: &Load) -> Derived {
    let deg = |bps: f64| (bps / MIB).atan().to_degrees();
    // Latency that rises with the load; none where no request completed.
    let lat = |bps: f64, base: f64| (bps > 0.0).then(|| base + bps / MIB * 0.5);
    let vda = DiskLatency {
        read_ms: lat(l.disk_r, 0.3),
        write_ms: lat(l.disk_w * 0.75, 1.1),
        flush_ms: lat(l.disk_w, 4.0),
    };
    let vdb = DiskLatency {
        read_ms: None,
        write_ms: lat(l.disk_w * 0.25, 2.5),
        flush_ms: None,
    };
    Derived {
        dt_secs: 1.0,
        cpu_percent: Some(l.cpu),
        cpu_split: CpuSplit {
            guest: Some(l.cpu * 0.9),
            overhead: Some(l.cpu * 0.1),
            steal: Some(l.cpu / 12.0),
        },
        cpu_angle_deg: Some(l.cpu_deg),
        memory_percent_angle_deg: Some(l.mem_deg),
        memory_rate_kb_per_sec: 0.0,
        memory_angle_deg: 0.0,
        disk_read: Throughput {
            bytes_per_sec: l.disk_r,
            ops_per_sec: Some(l.disk_r / 4096.0),
        },
        disk_write: Throughput {
            bytes_per_sec: l.disk_w,
            ops_per_sec: Some(l.disk_w / 4096.0),
        },
        net_rx: Throughput {
            bytes_per_sec: l.rx,
            ops_per_sec: Some(l.rx / 1500.0),
        },
        net_tx: Throughput {
            bytes_per_sec: l.tx,
            ops_per_sec: Some(l.tx / 1500.0),
        },
        disk_angle_deg: deg(l.disk_r + l.disk_w),
        disk_read_angle_deg: deg(l.disk_r),
        disk_write_angle_deg: deg(l.disk_w),
        net_rx_angle_deg: deg(l.rx) * if l.rx > 400_000.0 { 1.0 } else { -1.0 },
        net_tx_angle_deg: -deg(l.tx),
        net_drops_per_sec: None,
        disks: vec![
            DeviceRates {
                name: "vda".into(),
                read: Throughput {
                    bytes_per_sec: l.disk_r,
                    ops_per_sec: Some(l.disk_r / 4096.0),
                },
                write: Throughput {
                    bytes_per_sec: l.disk_w * 0.75,
                    ops_per_sec: Some(l.disk_w / 8192.0),
                },
                latency: vda,
            },
            DeviceRates {
                name: "vdb".into(),
                read: Throughput::default(),
                write: Throughput {
                    bytes_per_sec: l.disk_w * 0.25,
                    ops_per_sec: Some(3.0),
                },
                latency: vdb,
            },
        ],
        disk_latency: DiskLatency {
            read_ms: vda.read_ms,
            write_ms: lat(l.disk_w, 1.4),
            flush_ms: vda.flush_ms,
        },
        nics: vec![DeviceRates {
            name: "tap-web0".into(),
            read: Throughput {
                bytes_per_sec: l.rx,
                ops_per_sec: Some(l.rx / 1500.0),
            },
            write: Throughput {
                bytes_per_sec: l.tx,
                ops_per_sec: Some(l.tx / 1500.0),
            },
            latency: DiskLatency::default(),
        }],
        vcpu_percent: vec![l.cpu * 1.2, l.cpu * 0.8],
        vcpu_steal_percent: vec![l.cpu / 3.0, l.cpu / 6.0],
    }
}

fn mem(used_mib: u64, total_mib: u64) -> Option<MemoryUse> {
    Some(MemoryUse {
        used_kb: used_mib * 1024,
        source: MemSource::AvailableMinusUsable,
        total_kb: Some(total_mib * 1024),
        percent: Some(100.0 * used_mib as f64 / total_mib as f64),
    })
}

fn with_devices(mut r: RawDomain) -> RawDomain {
    r.nics = vec![NicStats {
        name: "tap-web0".into(),
        rx_bytes: 9_876_543_210,
        rx_packets: Some(7_654_321),
        rx_errors: Some(0),
        rx_drops: Some(2),
        tx_bytes: 1_234_567_890,
        tx_packets: Some(987_654),
        tx_errors: Some(0),
        tx_drops: Some(0),
    }];
    r.disks = vec![
        DiskStats {
            name: "vda".into(),
            path: Some("/var/lib/libvirt/images/web-01.qcow2".into()),
            rd_reqs: Some(123_456),
            rd_bytes: 5_000_000_000,
            wr_reqs: Some(654_321),
            wr_bytes: 12_000_000_000,
            fl_reqs: Some(1000),
            errors: Some(0),
            capacity: Some(20 * 1024 * 1024 * 1024),
            ..DiskStats::default()
        },
        DiskStats {
            name: "vdb".into(),
            rd_reqs: Some(10),
            rd_bytes: 40_960,
            wr_reqs: Some(20_000),
            wr_bytes: 800_000_000,
            ..DiskStats::default()
        },
    ];
    r.balloon = BalloonStats {
        current_kib: Some(2048 * 1024),
        maximum_kib: Some(2048 * 1024),
        swap_in_kib: Some(0),
        swap_out_kib: Some(0),
        major_fault: Some(321),
        minor_fault: Some(4_567_890),
        unused_kib: Some(900 * 1024),
        available_kib: Some(2000 * 1024),
        usable_kib: Some(1284 * 1024),
        rss_kib: Some(1100 * 1024),
        disk_caches_kib: Some(300 * 1024),
        last_update: Some(1_700_000_000),
    };
    r.vcpu_times_ns = vec![50_000_000_000, 40_000_000_000];
    r
}

const HOSTILE: &str = r#"web 01,env=prod "x"\y"#;

/// Seven VMs in every state; `step` varies the load for history.
fn vms(step: u64) -> Vec<VmSnapshot> {
    let s = step as f64;
    let wave = (s / 6.0).sin();
    let mut v = vec![
        VmSnapshot {
            raw: raw("batch-07", "uuid-batch", DomainState::Paused, 4, 4096),
            memory: mem(3000, 4096),
            derived: Some(derived(&Load {
                cpu: 0.0,
                cpu_deg: 0.0,
                mem_deg: 0.0,
                disk_r: 0.0,
                disk_w: 0.0,
                rx: 0.0,
                tx: 0.0,
            })),
        },
        VmSnapshot {
            raw: raw("crashy", "uuid-crashy", DomainState::Crashed, 1, 512),
            memory: None,
            derived: None,
        },
        VmSnapshot {
            raw: raw("db-primary", "uuid-db", DomainState::Running, 8, 16384),
            memory: mem(12800 + step * 10, 16384),
            derived: Some(derived(&Load {
                cpu: 91.3 - wave * 5.0,
                cpu_deg: 63.0,
                mem_deg: 5.7,
                disk_r: 30.0 * MIB + wave * 4.0 * MIB,
                disk_w: 18.0 * MIB,
                rx: 3.2 * MIB,
                tx: 2.1 * MIB,
            })),
        },
        VmSnapshot {
            raw: raw("new-vm", "uuid-new", DomainState::Running, 1, 1024),
            memory: mem(200, 1000),
            derived: None,
        },
        VmSnapshot {
            raw: raw("old-build", "uuid-old", DomainState::Shutoff, 2, 2048),
            memory: None,
            derived: None,
        },
        VmSnapshot {
            raw: with_devices(raw("web-01", "uuid-web01", DomainState::Running, 2, 2048)),
            memory: mem(716, 2000),
            derived: Some(derived(&Load {
                cpu: 42.1 + wave * 20.0,
                cpu_deg: 12.5,
                mem_deg: -3.2,
                disk_r: 2.3 * MIB,
                disk_w: 10.0 * MIB + wave * 2.0 * MIB,
                rx: 512.0 * 1024.0,
                tx: 1.2 * 1024.0,
            })),
        },
        VmSnapshot {
            raw: raw(HOSTILE, "uuid-hostile", DomainState::Running, 1, 512),
            memory: mem(100, 500),
            derived: None,
        },
    ];
    v.sort_by(|a, b| a.name().cmp(b.name()));
    v
}

fn base_snapshot(seq: u64, taken_at: SystemTime, vms: Vec<VmSnapshot>) -> Snapshot {
    let mut s = Snapshot::empty("qemu:///system", "hv-lab-01", Duration::from_secs(1));
    s.seq = seq;
    s.collection = seq;
    s.taken_at = taken_at;
    s.source = SourceState::Connected;
    s.host = Some(vmpulse::fixtures::host());
    s.collector = CollectorStats {
        started_at: taken_at - Duration::from_secs(3600),
        total_collections: 3600,
        total_errors: 0,
        skipped_items: 0,
        last_collection_time: Some(taken_at),
        last_collection_ms: Some(12.3),
        vms_monitored: vms.len(),
        used_bulk: true,
        monitor_stuck_vms: 0,
        monitor_stuck_samples: 0,
        libvirt_calls_held: 0,
        last_error: None,
    };
    s.vms = vms.into();
    s.writer = WriterStats {
        state: WriterState::Ok,
        endpoint: Some("http://127.0.0.1:8181 (v3, db=vmstats)".into()),
        lines_queued: 250_000,
        queue_depth: 40,
        queue_capacity: 20_000,
        lines_written: 249_960,
        lines_dropped: 0,
        lines_rejected: 0,
        write_retries: 0,
        requests_in_flight: 1,
        requests_in_flight_limit: 4,
        batch_lines_limit: 2000,
        lines_in_flight: 0,
        lines_recovered: 0,
        last_write_ok: Some(taken_at - Duration::from_millis(700)),
        last_error: None,
        last_error_at: None,
        spool: None,
    };
    s
}

/// The main fixture: the last of 61 snapshots, one per second; `app` has seen them all.
fn fixture(color: bool, size: (u16, u16)) -> (App, Arc<Snapshot>) {
    let mut app: Option<App> = None;
    let mut last = None;
    for i in 0..=60u64 {
        let at = now() - Duration::from_millis(400) - Duration::from_secs(60 - i);
        let snap = Arc::new(base_snapshot(i + 1, at, vms(i)));
        match app.as_mut() {
            None => app = Some(App::new(opts(color), snap.clone(), size)),
            Some(a) => {
                a.update(Msg::Snapshot(snap.clone()), now());
            }
        }
        last = Some(snap);
    }
    (app.unwrap(), last.unwrap())
}

fn single(snap: Snapshot, size: (u16, u16)) -> (App, Arc<Snapshot>) {
    let snap = Arc::new(snap);
    (App::new(opts(true), snap.clone(), size), snap)
}

fn draw(app: &App, snap: &Snapshot) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    term.draw(|f| view(f, app, snap, now())).unwrap();
    term
}

fn text(buf: &Buffer) -> String {
    let mut out = String::new();
    for y in 0..buf.area.height {
        let mut line = String::new();
        for x in 0..buf.area.width {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn key(app: &mut App, code: KeyCode) -> Option<Command> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)), now())
}

fn ch(app: &mut App, c: char) -> Option<Command> {
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    app.update(Msg::Key(KeyEvent::new(KeyCode::Char(c), mods)), now())
}

fn many_vms(n: usize) -> Vec<VmSnapshot> {
    (0..n)
        .map(|i| {
            let f = i as f64;
            let state = match i % 17 {
                5 => DomainState::Paused,
                11 => DomainState::Shutoff,
                _ => DomainState::Running,
            };
            let running = state.has_guest_counters();
            VmSnapshot {
                raw: raw(
                    &format!("vm-{i:03}"),
                    &format!("uuid-{i:03}"),
                    state,
                    1 + (i % 4) as u32,
                    1024,
                ),
                memory: running
                    .then(|| mem(100 + (i as u64 * 37) % 900, 1000))
                    .flatten(),
                derived: running.then(|| {
                    derived(&Load {
                        cpu: (f * 7.3) % 100.0,
                        cpu_deg: ((f * 13.0) % 90.0) - 45.0,
                        mem_deg: ((f * 3.0) % 20.0) - 10.0,
                        disk_r: (f * 91_000.0) % (8.0 * MIB),
                        disk_w: (f * 53_000.0) % (4.0 * MIB),
                        rx: (f * 17_000.0) % MIB,
                        tx: (f * 9_000.0) % MIB,
                    })
                }),
            }
        })
        .collect()
}

// ---- snapshots of each screen ----

#[test]
fn cards_80x24() {
    let (app, snap) = fixture(true, (80, 24));
    insta::assert_snapshot!(draw(&app, &snap).backend());
}

#[test]
fn cards_160x48() {
    let (app, snap) = fixture(true, (160, 48));
    insta::assert_snapshot!(draw(&app, &snap).backend());
}

#[test]
fn table_mode_200_vms() {
    let s = base_snapshot(1, now() - Duration::from_millis(400), many_vms(200));
    let (mut app, snap) = single(s, (120, 40));
    ch(&mut app, 't');
    ch(&mut app, 'P'); // CPU, busiest first
    key(&mut app, KeyCode::PageDown);
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    assert!(t.contains("CPU%▼"), "sorted column marked:\n{t}");
    assert!(t.contains("of 200"), "position shown:\n{t}");
    insta::assert_snapshot!(out.backend());
}

#[test]
fn table_mode_80x24() {
    let (mut app, snap) = fixture(true, (80, 24));
    ch(&mut app, 't');
    insta::assert_snapshot!(draw(&app, &snap).backend());
}

#[test]
fn table_sorted_by_disk_latency_140x24() {
    let (mut app, snap) = fixture(true, (140, 24));
    ch(&mut app, 't');
    ch(&mut app, 'L');
    let vis = app.visible();
    let order: Vec<&str> = vis.iter().map(|&i| snap.vms[i].name()).collect();
    // db-primary's reads are slowest (15 ms), then web-01's writes; VMs with no
    // request completed (or no interval yet) last, by name.
    assert_eq!(
        &order[..3],
        ["db-primary", "web-01", "batch-07"],
        "{order:?}"
    );
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    assert!(t.contains("LAT▼"), "{t}");
    insta::assert_snapshot!(out.backend());
}

/// The fixture with a dump in flight on web-01, a block copy on db-primary and
/// batch-07's save just completed.
fn with_jobs(snap: &Snapshot) -> Snapshot {
    let mut s = snap.clone();
    for vm in &mut s.vms {
        match vm.name() {
            "web-01" => vm.raw.jobs = vec![vmpulse::fixtures::dump_job()],
            "db-primary" => vm.raw.jobs = vec![vmpulse::fixtures::copy_job("vda")],
            "batch-07" => {
                vm.raw.jobs = vec![DomainJob {
                    kind: JobKind::Completed,
                    operation: JobOperation::Save,
                    elapsed_ms: Some(12_400),
                    ..DomainJob::default()
                }]
            }
            _ => {}
        }
    }
    s
}

#[test]
fn cards_with_jobs_160x30() {
    let (_, snap) = fixture(true, (160, 30));
    let (app, snap) = single(with_jobs(&snap), (160, 30));
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    for badge in ["DUMP 43% 85.0 MiB/s", "COPY vda 25%", "SAVE COMPLETED"] {
        assert!(t.contains(badge), "{badge} missing:\n{t}");
    }
    insta::assert_snapshot!(out.backend());
}

#[test]
fn detail_jobs_section_100x30() {
    let (_, snap) = fixture(true, (100, 30));
    let (mut app, snap) = single(with_jobs(&snap), (100, 30));
    let pos = app
        .visible()
        .iter()
        .position(|&i| snap.vms[i].name() == "web-01")
        .unwrap();
    for _ in 0..pos {
        key(&mut app, KeyCode::Right);
    }
    key(&mut app, KeyCode::Enter);
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    for needle in [
        "Jobs",
        "dump (unbounded)",
        "43.0%",
        "memory total",
        "1.00 GiB",
        "5.2s",
    ] {
        assert!(t.contains(needle), "{needle} missing:\n{t}");
    }
    insta::assert_snapshot!(out.backend());
}

#[test]
fn cards_scroll_with_many_vms() {
    let s = base_snapshot(1, now() - Duration::from_millis(400), many_vms(200));
    let (mut app, snap) = single(s, (160, 48));
    ch(&mut app, 'G');
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    assert!(t.contains("VMs 184–200 of 200"), "{t}");
    assert!(t.contains("vm-199"), "{t}");
    insta::assert_snapshot!(out.backend());
}

#[test]
fn detail_view() {
    let (mut app, snap) = fixture(true, (100, 48));
    // web-01 is the 6th VM by name; cards are one per row at 100 columns? two.
    let pos = app
        .visible()
        .iter()
        .position(|&i| snap.vms[i].name() == "web-01")
        .unwrap();
    for _ in 0..pos {
        key(&mut app, KeyCode::Right);
    }
    key(&mut app, KeyCode::Enter);
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    for needle in [
        "web-01",
        "tap-web0",
        "vda",
        "vdb",
        "rxdrop",
        "wr_bytes",
        "CPU %",
        "vcpu1",
        "available-usable",
    ] {
        assert!(t.contains(needle), "{needle} missing:\n{t}");
    }
    insta::assert_snapshot!(out.backend());
}

/// The detail view's end: each disk's latency and a sparkline of its history.
#[test]
fn detail_disk_latency_100x60() {
    let (mut app, snap) = fixture(true, (100, 60));
    let pos = app
        .visible()
        .iter()
        .position(|&i| snap.vms[i].name() == "web-01")
        .unwrap();
    for _ in 0..pos {
        key(&mut app, KeyCode::Right);
    }
    key(&mut app, KeyCode::Enter);
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    let spark = |disk: &str| {
        t.lines()
            .any(|l| l.contains(&format!("│{disk:<8}")) && l.contains("now") && l.contains("ms"))
    };
    assert!(spark("vda") && spark("vdb"), "{t}");
    assert!(t.contains("flush"), "{t}");
    insta::assert_snapshot!(out.backend());
}

#[test]
fn help_overlay_160x48() {
    let (mut app, snap) = fixture(true, (160, 48));
    ch(&mut app, '?');
    insta::assert_snapshot!(draw(&app, &snap).backend());
}

#[test]
fn help_overlay_80x24() {
    let (mut app, snap) = fixture(true, (80, 24));
    ch(&mut app, '?');
    let out = draw(&app, &snap);
    // Keys first: the first screen shows the bindings, not the glossary.
    let t = text(out.backend().buffer());
    assert!(t.contains("start / stop collection"), "{t}");
    assert!(!t.contains("Gauges:"), "{t}");
    insta::assert_snapshot!(out.backend());
}

#[test]
fn status_panel_with_errors() {
    let (mut app, _) = fixture(true, (100, 32));
    let mut s = (*app.live).clone();
    s.seq += 1;
    s.writer.state = WriterState::AuthFailed;
    s.writer.lines_dropped = 1500;
    s.writer.lines_rejected = 3;
    s.writer.write_retries = 17;
    s.writer.queue_depth = 19_990;
    s.writer.last_write_ok = Some(now() - Duration::from_secs(185));
    s.writer.last_error =
        Some("401 Unauthorized from http://127.0.0.1:8181: token rejected".into());
    s.collector.total_errors = 2;
    s.collector.last_error = Some("domain 'crashy': block stats timed out after 10s".into());
    let s = Arc::new(s);
    app.update(Msg::Snapshot(s.clone()), now());
    ch(&mut app, 'i');
    let out = draw(&app, &s);
    let buf = out.backend().buffer();
    let t = text(buf);
    assert!(t.contains("1500 lines dropped"), "alert line:\n{t}");
    assert!(t.contains("token rejected"), "{t}");
    // The dropped count in the panel is red.
    let y = (0..buf.area.height)
        .find(|&y| text_row(buf, y).contains("dropped         1500"))
        .expect("dropped row");
    let x = text_row(buf, y).find("1500").unwrap() as u16;
    let x = text_row(buf, y)[..x as usize].chars().count() as u16;
    assert_eq!(buf[(x, y)].fg, Color::Red);
    insta::assert_snapshot!(out.backend());
}

fn text_row(buf: &Buffer, y: u16) -> String {
    (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect()
}

#[test]
fn empty_host() {
    let (app, snap) = single(
        base_snapshot(1, now() - Duration::from_millis(400), vec![]),
        (80, 24),
    );
    insta::assert_snapshot!(draw(&app, &snap).backend());
}

#[test]
fn libvirt_unreachable_keeps_running() {
    let mut s = Snapshot::empty("qemu+ssh://hv9/system", "hv-lab-01", Duration::from_secs(1));
    s.taken_at = now();
    s.collector.started_at = now();
    s.source = SourceState::Failed(
        "cannot connect to qemu+ssh://hv9/system: Cannot recv data: Connection reset by peer"
            .into(),
    );
    let (mut app, snap) = single(s, (80, 24));
    // Keys keep working.
    ch(&mut app, 't');
    ch(&mut app, 't');
    assert!(matches!(
        ch(&mut app, 's'),
        Some(Command::Engine(Control::Stop))
    ));
    let out = draw(&app, &snap);
    let t = text(out.backend().buffer());
    assert!(t.contains("qemu+ssh://hv9/system"), "{t}");
    insta::assert_snapshot!(out.backend());
}

#[test]
fn too_small_terminal() {
    let (app, snap) = fixture(true, (40, 10));
    let out = draw(&app, &snap);
    assert!(text(out.backend().buffer()).contains("enlarge to at least 60×16"));
    insta::assert_snapshot!(out.backend());
}

#[test]
fn filter_and_quit_progress() {
    let (mut app, snap) = fixture(true, (100, 30));
    ch(&mut app, '/');
    for c in "WEB".chars() {
        ch(&mut app, c);
    }
    let t = text(draw(&app, &snap).backend().buffer());
    assert!(t.contains("web-01") && t.contains("web 01,env=prod"), "{t}");
    assert!(!t.contains("db-primary"), "{t}");
    assert!(t.contains("(filtered from 7)"), "{t}");
    key(&mut app, KeyCode::Enter);
    assert!(matches!(ch(&mut app, 'q'), Some(Command::Quit)));
    // While flushing only Ctrl-C means anything, and it abandons the flush.
    assert_eq!(ch(&mut app, 's'), None);
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(
        app.update(Msg::Key(ctrl_c), now()),
        Some(Command::ForceQuit)
    );
    insta::assert_snapshot!(draw(&app, &snap).backend());
}

/// The fixture's VMs with Nova-style metadata tags: two in project shop (one
/// without a flavor), one with a hostile project name, the rest untagged.
fn tagged_snapshot() -> Snapshot {
    let mut vms = vms(60);
    let tag = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    for vm in &mut vms {
        vm.raw.tags = match vm.name() {
            "db-primary" => tag(&[("project", "shop"), ("flavor", "m1.xlarge")]),
            "web-01" => tag(&[("project", "shop")]),
            HOSTILE => tag(&[("project", r#"blog "x",=\"#), ("flavor", "m1.small")]),
            _ => Vec::new(),
        };
    }
    base_snapshot(61, now() - Duration::from_millis(400), vms)
}

#[test]
fn metadata_tags_in_cards_and_table_and_filtered_by_tag() {
    let (mut app, snap) = single(tagged_snapshot(), (100, 30));
    ch(&mut app, '/');
    for c in "project=shop".chars() {
        ch(&mut app, c);
    }
    key(&mut app, KeyCode::Enter);
    let cards = draw(&app, &snap);
    let t = text(cards.backend().buffer());
    assert!(
        t.contains("shop · m1.xlarge") && t.contains("web-01"),
        "{t}"
    );
    assert!(!t.contains("blog") && !t.contains("new-vm"), "{t}");
    assert!(t.contains("(filtered from 7)"), "{t}");
    insta::assert_snapshot!("metadata_tags_cards_filtered", cards.backend());

    // The table gives the tags a column where the rates' columns leave room.
    let (mut wide, wide_snap) = single(tagged_snapshot(), (150, 16));
    for c in "/project=shop".chars() {
        ch(&mut wide, c);
    }
    key(&mut wide, KeyCode::Enter);
    ch(&mut wide, 't');
    let table = draw(&wide, &wide_snap);
    let t = text(table.backend().buffer());
    assert!(t.contains("TAGS") && t.contains("shop · m1.xlarge"), "{t}");
    insta::assert_snapshot!("metadata_tags_table_filtered", table.backend());

    // The detail view names each tag.
    let (mut detail, detail_snap) = single(tagged_snapshot(), (100, 30));
    for c in "/project=shop".chars() {
        ch(&mut detail, c);
    }
    key(&mut detail, KeyCode::Enter);
    key(&mut detail, KeyCode::Enter);
    let t = text(draw(&detail, &detail_snap).backend().buffer());
    assert!(t.contains("tags project=shop · flavor=m1.xlarge"), "{t}");

    // A plain word finds tag values too; an unknown tag hides everything.
    key(&mut app, KeyCode::Esc);
    ch(&mut app, '/');
    for c in "blog".chars() {
        ch(&mut app, c);
    }
    let t = text(draw(&app, &snap).backend().buffer());
    assert!(
        t.contains("web 01,env=pr") && !t.contains("db-primary"),
        "{t}"
    );
    key(&mut app, KeyCode::Esc);
    ch(&mut app, '/');
    for c in "owner=shop".chars() {
        ch(&mut app, c);
    }
    let t = text(draw(&app, &snap).backend().buffer());
    assert!(t.contains("No VM matches \"owner=shop\""), "{t}");
}

// ---- behaviour ----

#[test]
fn help_lists_every_binding() {
    let (mut app, snap) = fixture(true, (200, 70));
    ch(&mut app, '?');
    let t = text(draw(&app, &snap).backend().buffer());
    for b in BINDINGS {
        let row = format!("{} ", b.keys_label());
        assert!(
            t.contains(&row),
            "keys {:?} missing from help:\n{t}",
            b.keys_label()
        );
        assert!(t.contains(b.help), "help text {:?} missing:\n{t}", b.help);
    }
}

#[test]
fn no_color_means_no_colour_but_same_text() {
    let (app_c, snap) = fixture(true, (120, 40));
    let (app_n, _) = fixture(false, (120, 40));
    let with = draw(&app_c, &snap);
    let without = draw(&app_n, &snap);
    let (bc, bn) = (with.backend().buffer(), without.backend().buffer());
    assert_eq!(text(bc), text(bn), "NO_COLOR changes colours, not text");
    assert!(
        bc.content.iter().any(|c| c.fg != Color::Reset),
        "colour used by default"
    );
    for c in &bn.content {
        assert_eq!(
            (c.fg, c.bg),
            (Color::Reset, Color::Reset),
            "cell {:?}",
            c.symbol()
        );
    }
    // Direction is readable without colour.
    let t = text(bn);
    assert!(t.contains("▲ 12.5°") && t.contains("▼  3.2°"), "{t}");
}

#[test]
fn keys_drive_engine_and_state() {
    let (mut app, _) = fixture(true, (120, 40));
    assert_eq!(ch(&mut app, 's'), Some(Command::Engine(Control::Stop)));
    // Pending until a snapshot confirms; pressing again asks to start.
    assert_eq!(ch(&mut app, 's'), Some(Command::Engine(Control::Start)));
    assert_eq!(
        ch(&mut app, '+'),
        Some(Command::Engine(Control::SetPollInterval(
            Duration::from_secs(2)
        )))
    );
    assert_eq!(
        ch(&mut app, '-'),
        Some(Command::Engine(Control::SetPollInterval(
            Duration::from_millis(500)
        )))
    );
    ch(&mut app, 'f');
    assert!(app.frozen.is_some());
    ch(&mut app, 'f');
    assert!(app.frozen.is_none());
    ch(&mut app, 'l');
    assert!(app.show_logs);
    key(&mut app, KeyCode::Tab);
    assert!(app.logs_focused);
    // In the log pane `f` is tui-logger's focus key, not freeze.
    ch(&mut app, 'f');
    assert!(app.frozen.is_none());
    key(&mut app, KeyCode::Tab);
    assert!(!app.logs_focused);
}

#[test]
fn selection_follows_the_vm_across_resort() {
    let (mut app, snap) = fixture(true, (80, 24));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    let vis = app.visible();
    let uuid = snap.vms[vis[app.selected]].uuid().to_string();
    ch(&mut app, 'P');
    let vis = app.visible();
    assert_eq!(snap.vms[vis[app.selected]].uuid(), uuid);
    // Sorting again by the same key reverses.
    let first = vis[0];
    ch(&mut app, 'P');
    assert_eq!(*app.visible().last().unwrap(), first);
}

#[test]
fn vm_that_disappears_goes_away() {
    let (mut app, snap) = fixture(true, (100, 30));
    let mut s = (*snap).clone();
    s.seq += 1;
    s.collection += 1;
    s.vms.retain(|vm| vm.name() != "db-primary");
    let s = Arc::new(s);
    app.update(Msg::Snapshot(s.clone()), now());
    let t = text(draw(&app, &s).backend().buffer());
    assert!(!t.contains("db-primary"));
    assert!(app.history.samples("uuid-db").is_none());
}

// ---- README screenshot ----

fn svg(buf: &Buffer) -> String {
    fn css(c: Color, default: &str) -> String {
        match c {
            Color::Reset => default.into(),
            Color::Black => "#000000".into(),
            Color::Red => "#cd3131".into(),
            Color::Green => "#0dbc79".into(),
            Color::Yellow => "#e5e510".into(),
            Color::Blue => "#2472c8".into(),
            Color::Magenta => "#bc3fbc".into(),
            Color::Cyan => "#11a8cd".into(),
            Color::Gray => "#cccccc".into(),
            Color::DarkGray => "#767676".into(),
            Color::LightRed => "#f14c4c".into(),
            Color::LightGreen => "#23d18b".into(),
            Color::LightYellow => "#f5f543".into(),
            Color::LightBlue => "#3b8eea".into(),
            Color::LightMagenta => "#d670d6".into(),
            Color::LightCyan => "#29b8db".into(),
            Color::White => "#ffffff".into(),
            Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
            Color::Indexed(_) => default.into(),
        }
    }
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let (cw, ch) = (8.4, 17.0);
    let (w, h) = (buf.area.width as f64 * cw, buf.area.height as f64 * ch);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#1e1e1e\"/>\n"
    );
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            let c = &buf[(x, y)];
            if c.bg != Color::Reset {
                out.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{cw}\" height=\"{ch}\" fill=\"{}\"/>\n",
                    x as f64 * cw,
                    y as f64 * ch,
                    css(c.bg, "#1e1e1e")
                ));
            }
        }
        // One <text> per run of cells with the same style; each cell placed
        // at its own x so box-drawing characters line up in any font.
        let mut x = 0;
        while x < buf.area.width {
            let c = &buf[(x, y)];
            if c.symbol().trim().is_empty() {
                x += 1;
                continue;
            }
            let bold = c.modifier.contains(ratatui::style::Modifier::BOLD);
            let fill = css(c.fg, "#d4d4d4");
            let mut xs = Vec::new();
            let mut s = String::new();
            let start = x;
            while x < buf.area.width {
                let d = &buf[(x, y)];
                if d.fg != c.fg || d.modifier != c.modifier || d.symbol().trim().is_empty() {
                    break;
                }
                xs.push(format!("{:.1}", x as f64 * cw));
                s.push_str(d.symbol());
                x += 1;
            }
            let _ = start;
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{:.1}\" fill=\"{fill}\"{}>{}</text>\n",
                xs.join(" "),
                y as f64 * ch + 13.0,
                if bold { " font-weight=\"bold\"" } else { "" },
                esc(&s)
            ));
        }
    }
    out.push_str("</svg>\n");
    out
}

#[test]
fn screenshot_assets_are_current() {
    let (mut app, snap) = fixture(true, (120, 32));
    ch(&mut app, 'P'); // busiest first, as an operator would look at it
    let out = draw(&app, &snap);
    let buf = out.backend().buffer();
    let txt = text(buf);
    let svg = svg(buf);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    if std::env::var_os("VMPULSE_UPDATE_ASSETS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("screenshot.txt"), &txt).unwrap();
        std::fs::write(dir.join("screenshot.svg"), &svg).unwrap();
    }
    let on_disk = std::fs::read_to_string(dir.join("screenshot.txt")).unwrap_or_default();
    assert_eq!(
        on_disk, txt,
        "assets/screenshot.txt is stale: VMPULSE_UPDATE_ASSETS=1 cargo test --test ui_snapshots screenshot"
    );
}

// ---- terminals that cannot show everything: ASCII only, 8 and 16 colours ----

/// The frame as the terminal gets it after `Fit` (what `ui::run` does).
fn fitted(app: &App, snap: &Snapshot, fit: vmpulse::ui::Fit) -> Buffer {
    let mut term = draw(app, snap);
    let mut buf = term.backend().buffer().clone();
    fit.apply(&mut buf);
    // Keep the terminal alive until here: `draw` owns the backend.
    term.clear().unwrap();
    buf
}

#[test]
fn ascii_cards_and_detail_80x24_and_100x48() {
    use vmpulse::ui::palette::Palette;
    let fit = vmpulse::ui::Fit {
        ascii: true,
        palette: Palette::Full,
    };
    let (app, snap) = fixture(true, (80, 24));
    let cards = fitted(&app, &snap, fit);
    assert!(cards.content.iter().all(|c| c.symbol().is_ascii()));
    insta::assert_snapshot!("ascii_cards_80x24", text(&cards));

    let (mut app, snap) = fixture(true, (100, 48));
    key(&mut app, KeyCode::Enter);
    let detail = fitted(&app, &snap, fit);
    assert!(detail.content.iter().all(|c| c.symbol().is_ascii()));
    insta::assert_snapshot!("ascii_detail_100x48", text(&detail));
}

#[test]
fn eight_and_sixteen_colour_terminals_get_only_their_colours() {
    use std::collections::BTreeSet;
    use vmpulse::ui::palette::{is_base8, Palette};
    let (app, snap) = fixture(true, (80, 24));
    for (palette, name) in [
        (Palette::Ansi8, "colours_8_cards_80x24"),
        (Palette::Ansi16, "colours_16_cards_80x24"),
    ] {
        let fit = vmpulse::ui::Fit {
            ascii: false,
            palette,
        };
        let buf = fitted(&app, &snap, fit);
        let is16 = |c: Color| !matches!(c, Color::Indexed(_) | Color::Rgb(..));
        for c in &buf.content {
            match palette {
                Palette::Ansi8 => assert!(is_base8(c.fg) && is_base8(c.bg), "{c:?}"),
                _ => assert!(is16(c.fg) && is16(c.bg), "{c:?}"),
            }
        }
        // The styles in use, one per line: what the terminal is asked to show.
        let styles: BTreeSet<String> = buf
            .content
            .iter()
            .map(|c| format!("fg {:?} bg {:?} {:?}", c.fg, c.bg, c.modifier))
            .collect();
        insta::assert_snapshot!(name, styles.into_iter().collect::<Vec<_>>().join("\n"));
    }
}

// ---- history: one point per collection ----

/// A fake engine that publishes like the real one: one snapshot per
/// collection plus writer-counter refreshes in between, and refreshes only
/// while stopped.
struct FakeEngine {
    snap: Snapshot,
}

impl FakeEngine {
    fn publish(&mut self) -> Arc<Snapshot> {
        self.snap.seq += 1;
        self.snap.taken_at += Duration::from_millis(250);
        Arc::new(self.snap.clone())
    }
    fn collect(&mut self) -> Arc<Snapshot> {
        self.snap.collection += 1;
        self.publish()
    }
}

#[test]
fn history_gets_one_point_per_collection_and_none_while_stopped() {
    let start = now() - Duration::from_secs(100);
    let mut engine = FakeEngine {
        snap: base_snapshot(1, start, vms(1)),
    };
    let mut app = App::new(opts(false), Arc::new(engine.snap.clone()), (100, 30));
    let points = |app: &App| app.history.samples("uuid-web01").map_or(0, |q| q.len());
    let before = points(&app);
    for _ in 0..5 {
        let s = engine.collect();
        app.update(Msg::Snapshot(s), now());
        for _ in 0..3 {
            let s = engine.publish();
            app.update(Msg::Snapshot(s), now());
        }
    }
    assert_eq!(points(&app), before + 5, "one point per collection");
    engine.snap.collecting = false;
    for _ in 0..10 {
        let s = engine.publish();
        app.update(Msg::Snapshot(s), now());
    }
    assert_eq!(points(&app), before + 5, "no points while stopped");
}

#[test]
fn libvirt_down_keeps_last_known_vms_greyed_with_their_age() {
    let (mut app, snap) = fixture(false, (120, 30));
    let mut s = (*snap).clone();
    s.seq += 5;
    s.taken_at += Duration::from_secs(12);
    s.source = SourceState::Failed("cannot connect to qemu:///system: Connection refused".into());
    s.unreachable_since = Some(snap.taken_at + Duration::from_secs(2));
    let s = Arc::new(s);
    app.update(Msg::Snapshot(s.clone()), now());
    let t = text(draw(&app, &s).backend().buffer());
    assert!(t.contains("db-primary"), "last known VMs stay:\n{t}");
    assert!(t.contains("unreachable since"), "{t}");
    assert!(t.contains("old ·"), "each card shows its age:\n{t}");
}

#[test]
fn only_a_second_ctrl_c_abandons_the_flush() {
    let (mut app, _) = fixture(false, (100, 30));
    assert_eq!(ch(&mut app, 'q'), Some(Command::Quit));
    assert_eq!(ch(&mut app, 'q'), None, "q again keeps flushing");
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(
        app.update(Msg::Key(ctrl_c), now()),
        Some(Command::ForceQuit)
    );
    assert_eq!(
        app.quitting.as_ref().map(|q| q.reason),
        Some(QuitReason::Key)
    );
}

#[test]
fn footer_hints_come_from_the_binding_table() {
    let (mut app, snap) = fixture(false, (100, 30));
    ch(&mut app, '/');
    let t = text(draw(&app, &snap).backend().buffer());
    let footer = t.lines().last().unwrap_or_default().to_string();
    for (keys, hint) in vmpulse::ui::keys::hints(&[vmpulse::ui::keys::Context::Filter]) {
        assert!(
            footer.contains(&format!("{keys} {hint}")),
            "{keys} {hint} in '{footer}'"
        );
    }
}

/// A TUI collecting next to a running service holds its writer off and says so
/// in the header (not only in the log pane): the service is this host's shipper.
#[test]
fn held_writer_header_80x24() {
    use vmpulse::remote::shipper::Hold;
    let (mut app, _) = fixture(true, (80, 24));
    let mut s = (*app.live).clone();
    s.seq += 1;
    s.writer = WriterStats::off(vmpulse::writer::OFF_HINT);
    let s = Arc::new(s);
    app.update(Msg::Snapshot(s.clone()), now());
    app.writer_held = Some(Hold::ServiceRuns.header_text());
    let out = draw(&app, &s);
    let header = text_row(out.backend().buffer(), 1);
    assert!(header.contains("writer off (service ships)"), "{header}");
    insta::assert_snapshot!(out.backend());
}

/// VMs whose sort values look equal on screen keep their name order on every
/// refresh, whichever is a hair higher this time (idle VMs at "0.0%").
#[test]
fn rows_that_look_equal_keep_their_order_across_refreshes() {
    use vmpulse::ui::app::visible_indices;
    use vmpulse::ui::keys::SortKey;
    let (_, snap) = fixture(true, (80, 24));
    let mut s = (*snap).clone();
    let names = |s: &Snapshot, key| -> Vec<String> {
        visible_indices(s, "", key, false)
            .into_iter()
            .filter(|&i| s.vms[i].derived.is_some())
            .map(|i| s.vms[i].name().to_string())
            .collect()
    };
    for round in 0..2 {
        let running = s.vms.iter_mut().filter_map(|vm| vm.derived.as_mut());
        for (i, d) in running.enumerate() {
            // 5.0x %: shown as 5.0 % for all; the jitter flips each round.
            let jitter = if (i + round) % 2 == 0 { 0.01 } else { 0.04 };
            d.cpu_percent = Some(5.0 + jitter);
            d.disk_read.bytes_per_sec = 1024.0 * 1024.0 * (3.0 + jitter / 10.0);
            d.disk_write.bytes_per_sec = 0.0;
        }
        for key in [SortKey::Cpu, SortKey::Disk] {
            let shown = names(&s, key);
            let mut sorted = shown.clone();
            sorted.sort();
            assert_eq!(shown, sorted, "round {round}, {key:?}");
        }
    }
}

/// The fixture with alerts: db-primary critical on CPU, web-01 warning on memory,
/// batch-07 warning on its paused state, and one cleared careful steal alert.
fn with_alerts(size: (u16, u16)) -> (App, Arc<Snapshot>) {
    let (mut app, snap) = fixture(true, size);
    let alert = |vm: &str, uuid: &str, metric: &str, level, value, threshold, ago| Alert {
        vm: vm.into(),
        uuid: uuid.into(),
        metric: metric.into(),
        level,
        value,
        threshold,
        since: now() - Duration::from_secs(ago),
        peak: value * 1.1,
        peak_level: level,
        cleared: None,
    };
    let mut s = (*snap).clone();
    s.alerts = AlertBoard {
        active: vec![
            alert(
                "db-primary",
                "uuid-db",
                "cpu_usage_percent",
                AlertLevel::Critical,
                92.5,
                90.0,
                75,
            ),
            alert(
                "web-01",
                "uuid-web01",
                "memory_usage_percent",
                AlertLevel::Warning,
                87.0,
                85.0,
                12,
            ),
            alert(
                "batch-07",
                "uuid-batch",
                "state",
                AlertLevel::Warning,
                3.0,
                3.0,
                600,
            ),
        ],
        recent: vec![Alert {
            cleared: Some(now() - Duration::from_secs(30)),
            peak_level: AlertLevel::Warning,
            peak: 24.0,
            ..alert(
                "web-01",
                "uuid-web01",
                "cpu_steal_percent",
                AlertLevel::Careful,
                3.0,
                10.0,
                300,
            )
        }],
    };
    let s = Arc::new(s);
    app.update(Msg::Snapshot(s.clone()), now());
    (app, s)
}

/// Runs of cells of one style on row `y`: (text, fg, modifiers), for the colour snapshot.
fn styled_runs(buf: &Buffer, y: u16) -> Vec<String> {
    let mut runs: Vec<(String, Color, ratatui::style::Modifier)> = Vec::new();
    for x in 0..buf.area.width {
        let c = &buf[(x, y)];
        match runs.last_mut() {
            Some((text, fg, m)) if *fg == c.fg && *m == c.modifier => text.push_str(c.symbol()),
            _ => runs.push((c.symbol().to_string(), c.fg, c.modifier)),
        }
    }
    runs.into_iter()
        .filter(|(t, _, _)| !t.trim().is_empty())
        .map(|(t, fg, m)| format!("{:?} {fg:?} {m:?}", t.trim()))
        .collect()
}

#[test]
fn alerts_pane_lists_active_then_recent_and_the_header_counts_them() {
    let (mut app, snap) = with_alerts((120, 40));
    assert!(ch(&mut app, 'a').is_none());
    assert!(app.show_alerts);
    let term = draw(&app, &snap);
    insta::assert_snapshot!(term.backend());
    let t = text(term.backend().buffer());
    assert!(t.contains("ALERTS 1 critical 2 warning (a)"), "{t}");
    ch(&mut app, 'a');
    assert!(!text(draw(&app, &snap).backend().buffer()).contains("Alerts (a)"));
}

#[test]
fn a_value_is_coloured_by_its_alert_level() {
    let (mut app, snap) = with_alerts((120, 30));
    ch(&mut app, 't');
    let term = draw(&app, &snap);
    let buf = term.backend().buffer();
    let row = |name: &str| {
        (0..buf.area.height)
            .find(|y| text_row(buf, *y).trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no table row for {name}"))
    };
    let rows: Vec<String> = ["db-primary", "web-01", "batch-07"]
        .iter()
        .flat_map(|n| std::iter::once(format!("-- {n}")).chain(styled_runs(buf, row(n))))
        .collect();
    insta::assert_snapshot!(rows.join("\n"));
}
