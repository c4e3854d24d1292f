//! Line-protocol encoding throughput for a realistic VM (2 NICs, 2 disks,
//! derived values present): 6 lines per VM, reported as lines/s.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use vmpulse::encode::line_protocol::{encode_vm, encode_vm_into, EncodeCtx};
use vmpulse::model::*;

fn snapshot(i: usize) -> VmSnapshot {
    let nic = |n: usize| NicStats {
        name: format!("tap-web{i}-{n}"),
        rx_bytes: 98_765_432_100 + n as u64,
        rx_packets: Some(123_456_789),
        rx_errors: Some(0),
        rx_drops: Some(3),
        tx_bytes: 45_678_901_234,
        tx_packets: Some(98_765_432),
        tx_errors: Some(0),
        tx_drops: Some(0),
    };
    let disk = |name: &str| DiskStats {
        name: name.into(),
        path: Some(format!("/var/lib/libvirt/images/web{i}-{name}.qcow2")),
        rd_reqs: Some(1_234_567),
        rd_bytes: 56_789_012_345,
        wr_reqs: Some(2_345_678),
        wr_bytes: 67_890_123_456,
        fl_reqs: Some(12_345),
        ..DiskStats::default()
    };
    VmSnapshot {
        raw: RawDomain {
            id: Some(i as u32 + 1),
            state: DomainState::Running,
            vcpus: Some(4),
            max_mem_kib: Some(8_388_608),
            cur_mem_kib: Some(8_388_608),
            cpu: Some(CpuTimes {
                time_ns: 9_876_543_210_123,
                user_ns: Some(6_543_210_000_000),
                system_ns: Some(1_234_560_000_000),
            }),
            balloon: BalloonStats {
                current_kib: Some(8_388_608),
                maximum_kib: Some(8_388_608),
                swap_in_kib: Some(0),
                swap_out_kib: Some(0),
                major_fault: Some(1_234),
                minor_fault: Some(98_765_432),
                unused_kib: Some(2_345_678),
                available_kib: Some(8_126_464),
                usable_kib: Some(5_678_901),
                rss_kib: Some(8_500_000),
                disk_caches_kib: Some(1_234_567),
                last_update: Some(1_700_000_000),
            },
            vcpu_times_ns: vec![2_469_135_802_530; 4],
            nics: vec![nic(0), nic(1)],
            disks: vec![disk("vda"), disk("vdb")],
            wall_ns: 1_700_000_000_123_456_789,
            ..vmpulse::fixtures::raw(
                &format!("web-{i:03}.prod.example"),
                &format!("550e8400-e29b-41d4-a716-{i:012}"),
            )
        },
        memory: Some(MemoryUse {
            used_kb: 2_447_563,
            source: MemSource::AvailableMinusUsable,
            total_kb: None,
            percent: Some(30.118_448_734),
        }),
        derived: Some(Derived {
            dt_secs: 1.000_213,
            cpu_percent: Some(37.251_234_5),
            cpu_split: CpuSplit::default(),
            cpu_angle_deg: Some(-12.345_678),
            memory_percent_angle_deg: Some(0.123_456),
            memory_rate_kb_per_sec: -123.456_789,
            memory_angle_deg: -89.535_897,
            disk_read: Throughput {
                bytes_per_sec: 1_234_567.891,
                ops_per_sec: Some(123.4),
            },
            disk_write: Throughput {
                bytes_per_sec: 7_654_321.123,
                ops_per_sec: Some(456.7),
            },
            net_rx: Throughput {
                bytes_per_sec: 987_654.321,
                ops_per_sec: Some(876.5),
            },
            net_tx: Throughput {
                bytes_per_sec: 123_456.789,
                ops_per_sec: Some(234.5),
            },
            disk_angle_deg: 83.3,
            disk_read_angle_deg: 49.6,
            disk_write_angle_deg: 82.1,
            net_rx_angle_deg: 43.3,
            net_tx_angle_deg: 6.7,
            disks: vec![],
            nics: vec![],
            vcpu_percent: vec![37.0; 4],
            vcpu_steal_percent: vec![],
            ..Default::default()
        }),
    }
}

fn bench(c: &mut Criterion) {
    let mut tags = BTreeMap::new();
    tags.insert("dc".to_string(), "fra1".to_string());
    let ctx = EncodeCtx::new("hv-bench-01", &tags);
    let vms: Vec<VmSnapshot> = (0..100).map(snapshot).collect();
    let mut probe = Vec::new();
    encode_vm(&mut probe, &ctx, &vms[0]);
    let lines_per_cycle = (probe.len() * vms.len()) as u64;

    let mut g = c.benchmark_group("encode_100_vms");
    g.throughput(criterion::Throughput::Elements(lines_per_cycle));
    g.bench_function("encode_vm (Vec<String>)", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(lines_per_cycle as usize);
            for vm in &vms {
                encode_vm(&mut out, &ctx, black_box(vm));
            }
            out
        })
    });
    g.bench_function("encode_vm_into (one String)", |b| {
        let mut buf = String::with_capacity(256 * 1024);
        b.iter(|| {
            buf.clear();
            for vm in &vms {
                encode_vm_into(&mut buf, &ctx, black_box(vm));
            }
            buf.len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
