//! Drives the real TUI with a fake engine: N made-up VMs whose load moves,
//! one snapshot per poll interval. For trying the UI without libvirt, and for
//! measuring the UI's idle CPU.
//!
//! `cargo run --release --example fake_tui -- [VMS]` (default 10).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};
use vmpulse::config::Config;
use vmpulse::engine::{Control, FinalReport};
use vmpulse::model::*;
use vmpulse::ui::{self, Engine};

const MIB: f64 = 1024.0 * 1024.0;

struct Fake {
    rx: watch::Receiver<Arc<Snapshot>>,
    control: mpsc::UnboundedSender<Control>,
    state: Arc<Mutex<State>>,
}

struct State {
    snap: Snapshot,
    tx: watch::Sender<Arc<Snapshot>>,
}

impl State {
    fn publish(&mut self) {
        self.snap.seq += 1;
        self.snap.taken_at = SystemTime::now();
        let _ = self.tx.send(Arc::new(self.snap.clone()));
    }
}

fn vm(i: usize, step: u64) -> VmSnapshot {
    let t = step as f64 + i as f64 * 7.0;
    let cpu = 50.0 + 45.0 * (t / 9.0).sin();
    let prev = 50.0 + 45.0 * ((t - 1.0) / 9.0).sin();
    let disk = (2.0 + 2.0 * (t / 5.0).sin()) * MIB;
    let rx = (0.5 + 0.5 * (t / 4.0).cos()) * MIB;
    let tx = rx / 3.0;
    let deg = |v: f64| (v / MIB).atan().to_degrees();
    let state = match i % 10 {
        7 => DomainState::Paused,
        9 => DomainState::Shutoff,
        _ => DomainState::Running,
    };
    let active = state.has_guest_counters();
    let now_ns = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64;
    VmSnapshot {
        raw: RawDomain {
            id: active.then_some(i as u32 + 1),
            state,
            vcpus: Some(1 + (i % 4) as u32),
            max_mem_kib: Some(2 * 1024 * 1024),
            cur_mem_kib: Some(2 * 1024 * 1024),
            nics: vec![NicStats {
                name: format!("tap-g{i}"),
                rx_bytes: (t * rx) as u64,
                tx_bytes: (t * tx) as u64,
                ..Default::default()
            }],
            disks: vec![DiskStats {
                name: "vda".into(),
                rd_bytes: (t * disk) as u64,
                ..Default::default()
            }],
            wall_ns: now_ns,
            ..vmpulse::fixtures::raw(
                &format!("guest-{i:02}"),
                &format!("00000000-0000-0000-0000-{i:012}"),
            )
        },
        memory: active.then(|| MemoryUse {
            used_kb: 1024 * (600 + (i as u64 * 50) % 1000),
            source: MemSource::AvailableMinusUsable,
            total_kb: None,
            percent: Some(30.0 + (i as f64 * 5.0) % 60.0),
        }),
        derived: (active && step > 0).then(|| {
            // A made-up latency that rises with the disk load.
            let lat = DiskLatency {
                read_ms: Some(0.2 + disk / MIB / 10.0),
                write_ms: Some(0.5 + disk / MIB / 5.0),
                flush_ms: None,
            };
            Derived {
                dt_secs: 1.0,
                cpu_percent: Some(cpu),
                // A made-up split: a few percent of QEMU overhead, steal on every third VM.
                cpu_split: CpuSplit {
                    guest: Some(cpu * 0.94),
                    overhead: Some(cpu * 0.06),
                    steal: Some(if i.is_multiple_of(3) { cpu / 8.0 } else { 0.0 }),
                },
                cpu_angle_deg: Some((cpu - prev).atan().to_degrees()),
                memory_percent_angle_deg: Some(0.0),
                memory_rate_kb_per_sec: 0.0,
                memory_angle_deg: 0.0,
                disk_read: Throughput {
                    bytes_per_sec: disk * 0.3,
                    ops_per_sec: Some(10.0),
                },
                disk_write: Throughput {
                    bytes_per_sec: disk * 0.7,
                    ops_per_sec: Some(20.0),
                },
                net_rx: Throughput {
                    bytes_per_sec: rx,
                    ops_per_sec: Some(rx / 1500.0),
                },
                net_tx: Throughput {
                    bytes_per_sec: tx,
                    ops_per_sec: Some(tx / 1500.0),
                },
                disk_angle_deg: deg(disk),
                disk_read_angle_deg: deg(disk * 0.3),
                disk_write_angle_deg: deg(disk * 0.7),
                net_rx_angle_deg: deg(rx) * if (t / 4.0).sin() > 0.0 { -1.0 } else { 1.0 },
                net_tx_angle_deg: deg(tx),
                net_drops_per_sec: Some(0.0),
                disks: vec![DeviceRates {
                    name: "vda".into(),
                    read: Throughput {
                        bytes_per_sec: disk * 0.3,
                        ops_per_sec: Some(10.0),
                    },
                    write: Throughput {
                        bytes_per_sec: disk * 0.7,
                        ops_per_sec: Some(20.0),
                    },
                    latency: lat,
                }],
                disk_latency: lat,
                nics: vec![DeviceRates {
                    name: format!("tap-g{i}"),
                    read: Throughput {
                        bytes_per_sec: rx,
                        ops_per_sec: Some(rx / 1500.0),
                    },
                    write: Throughput {
                        bytes_per_sec: tx,
                        ops_per_sec: Some(tx / 1500.0),
                    },
                    latency: DiskLatency::default(),
                }],
                vcpu_percent: vec![cpu],
                vcpu_steal_percent: vec![if i.is_multiple_of(3) { cpu / 8.0 } else { 0.0 }],
            }
        }),
    }
}

impl Fake {
    fn start(n: usize) -> Self {
        let mut snap = Snapshot::empty("fake:///example", "fakehost", Duration::from_secs(1));
        snap.source = SourceState::Connected;
        snap.writer = WriterStats {
            state: WriterState::Ok,
            endpoint: Some("http://127.0.0.1:8181 (v3, db=vmstats)".into()),
            queue_capacity: 20_000,
            ..WriterStats::off("")
        };
        let (tx, rx) = watch::channel(Arc::new(snap.clone()));
        let state = Arc::new(Mutex::new(State { snap, tx }));
        let (control, mut crx) = mpsc::unbounded_channel();
        let st = state.clone();
        tokio::spawn(async move {
            let mut step = 0u64;
            let mut interval = Duration::from_secs(1);
            let mut collecting = true;
            loop {
                tokio::select! {
                    c = crx.recv() => match c {
                        Some(Control::Stop) => collecting = false,
                        Some(Control::Start) => collecting = true,
                        Some(Control::SetPollInterval(d)) => interval = d,
                        None => return,
                    },
                    _ = tokio::time::sleep(interval), if collecting => {}
                }
                let mut s = st.lock().unwrap();
                s.snap.collecting = collecting;
                s.snap.poll_interval = interval;
                if collecting {
                    let started = Instant::now();
                    s.snap.vms = (0..n).map(|i| vm(i, step)).collect();
                    s.snap.vms.sort_by(|a, b| a.name().cmp(b.name()));
                    step += 1;
                    let lines = 4 * n as u64;
                    s.snap.collector.total_collections += 1;
                    s.snap.collection += 1;
                    s.snap.collector.vms_monitored = n;
                    s.snap.collector.last_collection_time = Some(SystemTime::now());
                    s.snap.collector.last_collection_ms =
                        Some(started.elapsed().as_secs_f64() * 1e3 + 3.0);
                    s.snap.writer.lines_queued += lines;
                    s.snap.writer.lines_written += lines;
                    s.snap.writer.queue_depth = (step as usize * 37) % 400;
                    s.snap.writer.last_write_ok = Some(SystemTime::now());
                }
                s.publish();
            }
        });
        Self { rx, control, state }
    }
}

impl Engine for Fake {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }
    fn send(&self, control: Control) {
        let _ = self.control.send(control);
    }
    async fn shutdown(self) -> FinalReport {
        let _ = self.control.send(Control::Stop);
        // Pretend to flush a backlog for a second and a half.
        {
            let mut s = self.state.lock().unwrap();
            s.snap.writer.queue_depth = 3000;
            s.publish();
        }
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut s = self.state.lock().unwrap();
            s.snap.writer.queue_depth = s.snap.writer.queue_depth.saturating_sub(200);
            s.snap.writer.lines_written += 200;
            s.publish();
        }
        let s = self.state.lock().unwrap();
        FinalReport {
            collector: s.snap.collector.clone(),
            writer: s.snap.writer.clone(),
            unsent: s.snap.writer.queue_depth,
        }
    }
}

fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    ui::init_logging();
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let engine = Fake::start(n);
        tracing::info!(vms = n, "fake engine started");
        ui::run_with(engine, &Config::default()).await
    })
}
