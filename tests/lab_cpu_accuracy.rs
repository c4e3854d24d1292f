//! vmpulse against the guest's own view, on real TCG guests
//! (`scripts/lab-host.sh`). The lab guest prints its `/proc/stat` CPU jiffies,
//! `/proc/meminfo` totals, `/proc/diskstats` sectors and `/proc/net/dev` bytes
//! on its serial console (a file on the host) about once a second; vmpulse
//! writes line protocol to a file meanwhile. Compared over the run:
//! - guest CPU % per 5 s window: the guest's busy jiffies against vmpulse's
//!   `cpu_guest_percent + cpu_steal_percent` (a guest without a paravirtual
//!   steal clock counts the time its vCPU waited for the host as busy), and
//!   `cpu_guest_percent` alone;
//! - memory used (`memory_used_kb`) against the guest's MemTotal − MemAvailable;
//! - disk and network bytes over the run, integrated from vmpulse's rates;
//! - disk read and write latency per 5 s window: the guest's time spent reading
//!   (writing) over the requests it completed (`/proc/diskstats`) against
//!   vmpulse's per-interval `disk_read_latency_ms` (`_write_`) weighted by the
//!   requests of each interval. Printed, not bounded: the guest times its block
//!   layer queue and the virtio device, libvirt's `block.N.rd.times` QEMU's side
//!   of the request only;
//! - steal: one guest on an otherwise idle lab (near zero), then more busy
//!   guests than host cores (clearly above zero).
//!
//! The measured errors are printed (`--nocapture`) and recorded in the README.
//! Needs root (starts libvirtd).
mod common;

use std::time::{Duration, Instant};

use common::lab::{series, Console, Lab, LpLine, Vmpulse};

/// One `lab-stat` line, its time mapped onto the host's wall clock.
#[derive(Debug, Clone)]
struct GuestStat {
    /// Host wall-clock seconds.
    t: f64,
    busy_jiffies: f64,
    total_jiffies: f64,
    mem_used_kib: f64,
    disk_bytes: f64,
    net_bytes: f64,
    /// Summed over the disks: reads completed, ms reading, writes completed,
    /// ms writing; `None` from a guest that prints sectors only.
    disk_io: Option<DiskIo>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct DiskIo {
    rd_ios: f64,
    rd_ms: f64,
    wr_ios: f64,
    wr_ms: f64,
}

/// `vda:RD_SECT:WR_SECT:RD_IOS:RD_MS:WR_IOS:WR_MS ...` summed over the disks.
fn parse_disk_io(rest: &str) -> Option<DiskIo> {
    let part = rest.split("disk=").nth(1)?.split(" net=").next()?;
    let mut sum = DiskIo {
        rd_ios: 0.0,
        rd_ms: 0.0,
        wr_ios: 0.0,
        wr_ms: 0.0,
    };
    for dev in part.split_whitespace() {
        let f: Vec<f64> = dev
            .split(':')
            .skip(3)
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        let [ri, rm, wi, wm] = f[..] else { return None };
        sum.rd_ios += ri;
        sum.rd_ms += rm;
        sum.wr_ios += wi;
        sum.wr_ms += wm;
    }
    Some(sum)
}

/// Parses `lab-stat up=.. cpu=u n s i w q sq st mem=T:A disk= vda:r:w .. net= eth0:rx:tx ..`.
fn parse_stat(line: &str) -> Option<(f64, GuestStat)> {
    let rest = line.strip_prefix("lab-stat ")?;
    let up: f64 = rest.strip_prefix("up=")?.split(' ').next()?.parse().ok()?;
    let cpu: Vec<f64> = rest
        .split("cpu=")
        .nth(1)?
        .split(" mem=")
        .next()?
        .split(' ')
        .filter_map(|v| v.parse().ok())
        .collect();
    if cpu.len() != 8 {
        return None;
    }
    let (idle, iowait) = (cpu[3], cpu[4]);
    let total: f64 = cpu.iter().sum();
    let mem = rest.split("mem=").nth(1)?.split(' ').next()?;
    let (mt, ma) = mem.split_once(':')?;
    let (mt, ma): (f64, f64) = (mt.parse().ok()?, ma.parse().ok()?);
    let sum_pairs = |key: &str, scale: f64| -> Option<f64> {
        let part = rest.split(key).nth(1)?;
        let part = part.split(" net=").next()?;
        Some(
            part.split_whitespace()
                .filter_map(|dev| {
                    let mut f = dev.split(':').skip(1).map(|v| v.parse::<f64>().ok());
                    Some((f.next()?? + f.next()??) * scale)
                })
                .sum(),
        )
    };
    Some((
        up,
        GuestStat {
            t: 0.0,
            busy_jiffies: total - idle - iowait,
            total_jiffies: total,
            mem_used_kib: mt - ma,
            disk_bytes: sum_pairs("disk=", 512.0)?,
            net_bytes: sum_pairs("net=", 1.0)?,
            disk_io: parse_disk_io(rest),
        },
    ))
}

/// The guest's lines with times on the host clock: the console is read every
/// 20 ms, so `host read time − guest uptime` is smallest for the lines read
/// soonest after they were printed; that minimum is the offset.
fn guest_stats(console: &Console) -> Vec<GuestStat> {
    let parsed: Vec<(f64, f64, GuestStat)> = console
        .lines
        .iter()
        .filter_map(|(host_t, l)| parse_stat(l).map(|(up, s)| (*host_t, up, s)))
        .collect();
    let offset = parsed
        .iter()
        .map(|(h, up, _)| h - up)
        .fold(f64::INFINITY, f64::min);
    parsed
        .into_iter()
        .map(|(_, up, mut s)| {
            s.t = up + offset;
            s
        })
        .collect()
}

/// Time-weighted mean over `[a, b]` of a per-interval value: each line's value
/// holds from the previous line's timestamp to its own.
fn interval_mean(
    lines: &[&LpLine],
    pick: impl Fn(&LpLine) -> Option<f64>,
    a: f64,
    b: f64,
) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for w in lines.windows(2) {
        let (start, end) = (w[0].t, w[1].t);
        let overlap = end.min(b) - start.max(a);
        if overlap > 0.0 {
            sum += pick(w[1])? * overlap;
            weight += overlap;
        }
    }
    (weight > 0.0 && weight >= 0.9 * (b - a)).then(|| sum / weight)
}

/// vmpulse's per-interval latency over `[a, b]`, each interval weighted by the
/// requests it completed (`ops × Δt`, the part inside the window): the same
/// `Σtime / Σrequests` the guest's counters give for the window.
fn weighted_latency(lines: &[&LpLine], lat: &str, ops: &str, a: f64, b: f64) -> Option<f64> {
    let (mut sum, mut reqs) = (0.0, 0.0);
    for w in lines.windows(2) {
        let (start, end) = (w[0].t, w[1].t);
        let overlap = end.min(b) - start.max(a);
        if overlap <= 0.0 {
            continue;
        }
        let r = w[1].get(ops).unwrap_or(0.0) * overlap;
        if let Some(l) = w[1].get(lat).filter(|_| r > 0.0) {
            sum += l * r;
            reqs += r;
        }
    }
    (reqs > 0.0).then(|| sum / reqs)
}

/// Read and write latency, the guest's own against vmpulse's, per 5 s window:
/// `(guest read, vmpulse read, guest write, vmpulse write)` means over the
/// windows where both saw requests, and the window count.
fn latency_windows(feats: &[&LpLine], guest: &[GuestStat]) -> Latency {
    let mut out = Latency::default();
    let mut i = 0;
    while i < guest.len() {
        let Some(j) = (i + 1..guest.len()).find(|&j| guest[j].t - guest[i].t >= 5.0) else {
            break;
        };
        let (a, b) = (&guest[i], &guest[j]);
        i = j;
        let (Some(ga), Some(gb)) = (a.disk_io, b.disk_io) else {
            continue;
        };
        let own = |ms: f64, ios: f64| (ios > 0.0).then(|| ms / ios);
        let own_rd = own(gb.rd_ms - ga.rd_ms, gb.rd_ios - ga.rd_ios);
        let own_wr = own(gb.wr_ms - ga.wr_ms, gb.wr_ios - ga.wr_ios);
        let host_rd = weighted_latency(
            feats,
            "disk_read_latency_ms",
            "disk_read_req_per_sec",
            a.t,
            b.t,
        );
        let host_wr = weighted_latency(
            feats,
            "disk_write_latency_ms",
            "disk_write_req_per_sec",
            a.t,
            b.t,
        );
        eprintln!(
            "  latency window {:.1}..{:.1}: read guest {} vmpulse {}; write guest {} vmpulse {}",
            a.t - guest[0].t,
            b.t - guest[0].t,
            show_ms(own_rd),
            show_ms(host_rd),
            show_ms(own_wr),
            show_ms(host_wr)
        );
        if let (Some(g), Some(h)) = (own_rd, host_rd) {
            out.read.push((g, h));
        }
        if let (Some(g), Some(h)) = (own_wr, host_wr) {
            out.write.push((g, h));
        }
    }
    out
}

/// Per window `(guest's own, vmpulse's)` latency, ms.
#[derive(Debug, Default)]
struct Latency {
    read: Vec<(f64, f64)>,
    write: Vec<(f64, f64)>,
}

impl Latency {
    /// `guest mean, vmpulse mean, mean of (vmpulse − guest)` over the windows.
    fn summary(pairs: &[(f64, f64)]) -> Option<(f64, f64, f64)> {
        (!pairs.is_empty()).then(|| {
            let g = mean(&pairs.iter().map(|p| p.0).collect::<Vec<_>>());
            let h = mean(&pairs.iter().map(|p| p.1).collect::<Vec<_>>());
            (
                g,
                h,
                mean(&pairs.iter().map(|p| p.1 - p.0).collect::<Vec<_>>()),
            )
        })
    }

    fn describe(pairs: &[(f64, f64)]) -> String {
        match Self::summary(pairs) {
            Some((g, h, d)) => format!(
                "guest {g:.2} ms, vmpulse {h:.2} ms, vmpulse − guest {d:+.2} ms ({:+.0} %) over {} windows",
                100.0 * d / g,
                pairs.len()
            ),
            None => "no window with requests on both sides".into(),
        }
    }
}

fn show_ms(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2} ms"))
}

/// Cumulative value of a rate at each line: Σ rate × Δt (what vmpulse's rates add up to).
fn integrate(lines: &[&LpLine], pick: impl Fn(&LpLine) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut acc = 0.0;
    for w in lines.windows(2) {
        if let Some(r) = pick(w[1]) {
            acc += r * (w[1].t - w[0].t);
            if out.is_empty() {
                out.push((w[0].t, 0.0));
            }
            out.push((w[1].t, acc));
        }
    }
    out
}

/// Relative error of the bytes vmpulse's rates add up to against the guest's
/// counters between two anchors. Anchors are guest lines printed while
/// vmpulse's cumulative stood still (between two samples with no I/O), so
/// neither side depends on interpolating a burst; else the nearest lines.
fn bytes_error(
    cum: &[(f64, f64)],
    guest: &[GuestStat],
    pick: fn(&GuestStat) -> f64,
) -> Option<(f64, f64, f64)> {
    let flat_at = |g: &GuestStat| -> Option<f64> {
        let i = cum.iter().position(|(t, _)| *t > g.t)?;
        (i > 0 && cum[i].1 == cum[i - 1].1).then_some(cum[i].1)
    };
    let (start, end) = (cum.first()?.0, cum.last()?.0);
    let inside: Vec<&GuestStat> = guest.iter().filter(|g| g.t > start && g.t < end).collect();
    let anchors: Vec<(&GuestStat, f64)> = inside
        .iter()
        .filter_map(|g| Some((*g, flat_at(g)?)))
        .collect();
    let (first, last) = (anchors.first()?, anchors.last()?);
    let host = last.1 - first.1;
    let own = pick(last.0) - pick(first.0);
    (own > 0.0 && last.0.t - first.0.t > 30.0).then(|| (100.0 * (host - own) / own, host, own))
}

struct Accuracy {
    cpu_windows: usize,
    /// Mean distance of the guest's own CPU % outside [guest, guest + steal].
    cpu_outside_bracket: f64,
    cpu_err_with_steal: f64,
    cpu_err_guest_only: f64,
    cpu_bias_guest_only: f64,
    mem_err_mib: f64,
    disk: Option<(f64, f64, f64)>,
    net: Option<(f64, f64, f64)>,
    steal_mean: f64,
    latency: Latency,
}

fn show(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2} %"))
}

/// Host load while a phase ran (the lab shares its cores with whatever else runs).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Below this mean steal the host counts as quiet for the lone guest.
const QUIET_STEAL: f64 = 1.0;

/// The lab tests in this file bring guests up and down: one at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn accuracy(lines: &[LpLine], vm: &str, guest: &[GuestStat]) -> Accuracy {
    let feats = series(lines, "vm_features", vm);
    let metrics = series(lines, "vm_metrics", vm);
    // CPU: consecutive non-overlapping 5 s windows between guest lines.
    let (mut with_steal, mut guest_only, mut bias) = (Vec::new(), Vec::new(), Vec::new());
    let mut outside = Vec::new();
    let mut i = 0;
    while i < guest.len() {
        let Some(j) = (i + 1..guest.len()).find(|&j| guest[j].t - guest[i].t >= 5.0) else {
            break;
        };
        let (a, b) = (&guest[i], &guest[j]);
        let own = 100.0 * (b.busy_jiffies - a.busy_jiffies) / (b.total_jiffies - a.total_jiffies);
        let g = interval_mean(&feats, |l| l.get("cpu_guest_percent"), a.t, b.t);
        let s = interval_mean(&feats, |l| l.get("cpu_steal_percent"), a.t, b.t);
        let total = interval_mean(&feats, |l| l.get("cpu_usage_percent"), a.t, b.t);
        eprintln!(
            "  window {:.1}..{:.1}: guest's own {own:.2} %, vmpulse guest {}, steal {}, host total {}",
            a.t - guest[0].t,
            b.t - guest[0].t,
            show(g),
            show(s),
            show(total)
        );
        if let (Some(g), Some(s)) = (g, s) {
            // How far the guest's own view lies outside [guest, guest + steal].
            outside.push((g - own).max(own - (g + s)).max(0.0));
            with_steal.push((g + s - own).abs());
            guest_only.push((g - own).abs());
            bias.push(g - own);
        }
        i = j;
    }
    // Memory: each vmpulse reading against the guest's latest line before it.
    let mem: Vec<f64> = metrics
        .iter()
        .filter_map(|l| {
            let used = l.get("memory_used_kb")?;
            let g = guest.iter().rev().find(|g| g.t <= l.t)?;
            Some((used - g.mem_used_kib).abs() / 1024.0)
        })
        .collect();
    let disk_cum = integrate(&feats, |l| {
        Some(l.get("disk_read_bytes_per_sec")? + l.get("disk_write_bytes_per_sec")?)
    });
    let net_cum = integrate(&feats, |l| {
        Some(l.get("net_rx_bytes_per_sec")? + l.get("net_tx_bytes_per_sec")?)
    });
    let steal: Vec<f64> = feats
        .iter()
        .filter_map(|l| l.get("cpu_steal_percent"))
        .collect();
    Accuracy {
        cpu_windows: with_steal.len(),
        cpu_outside_bracket: mean(&outside),
        cpu_err_with_steal: mean(&with_steal),
        cpu_err_guest_only: mean(&guest_only),
        cpu_bias_guest_only: mean(&bias),
        mem_err_mib: mean(&mem),
        disk: bytes_error(&disk_cum, guest, |g| g.disk_bytes),
        net: bytes_error(&net_cum, guest, |g| g.net_bytes),
        steal_mean: mean(&steal),
        latency: latency_windows(&feats, guest),
    }
}

/// Runs vmpulse for `secs` while following the consoles of guests `1..=n`.
fn run(n: u32, secs: u64) -> (Vec<LpLine>, Vec<Console>) {
    let mut consoles: Vec<Console> = (1..=n).map(Console::open).collect();
    let mut vm = Vmpulse::start(0.5, &[]);
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        consoles.iter_mut().for_each(Console::poll);
        vm.keep_running_until(Instant::now() + Duration::from_millis(20));
    }
    let status = vm.terminate();
    assert!(status.success(), "vmpulse: {status}\n{}", vm.log_text());
    (vm.lines(), consoles)
}

/// Mean `cpu_steal_percent` per guest over a vmpulse run of `secs`.
fn steal_means(guests: &[String], secs: u64) -> Vec<(String, f64)> {
    let (lines, _) = run(0, secs);
    guests
        .iter()
        .map(|g| {
            let v: Vec<f64> = series(&lines, "vm_features", g)
                .iter()
                .filter_map(|l| l.get("cpu_steal_percent"))
                .collect();
            (g.clone(), mean(&v))
        })
        .collect()
}

#[test]
#[cfg_attr(
    not(feature = "lab-tests"),
    ignore = "needs root: installs QEMU, starts libvirtd and one guest: cargo test --features lab-tests"
)]
fn vmpulse_matches_the_guests_own_counters() {
    let _one_lab = LAB.lock().unwrap_or_else(|p| p.into_inner());
    let (_lab, guests) = Lab::up_with(1, false);
    let (lines, consoles) = run(1, 70);
    let guest = guest_stats(&consoles[0]);
    assert!(
        guest.len() >= 50,
        "guest printed {} lab-stat lines in 70 s",
        guest.len()
    );
    let a = accuracy(&lines, &guests[0], &guest);
    let fmt = |e: &Option<(f64, f64, f64)>| match e {
        Some((pct, host, own)) => format!("{pct:+.2} % (vmpulse {host:.0} B, guest {own:.0} B)"),
        None => "no anchors".into(),
    };
    eprintln!(
        "one guest, 70 s (load {}): CPU {} windows of 5 s: mean |guest+steal − own| {:.2} pp, \
         mean |guest − own| {:.2} pp (bias {:+.2} pp), own outside [guest, guest+steal] by {:.2} pp; \
         memory mean |Δ| {:.2} MiB; disk {}; net {}; steal mean {:.2} %",
        loadavg(),
        a.cpu_windows,
        a.cpu_err_with_steal,
        a.cpu_err_guest_only,
        a.cpu_bias_guest_only,
        a.cpu_outside_bracket,
        a.mem_err_mib,
        fmt(&a.disk),
        fmt(&a.net),
        a.steal_mean
    );
    // Reported, not bounded: the guest times its own queue too (see the README).
    eprintln!(
        "disk latency per 5 s window: read {}; write {}",
        Latency::describe(&a.latency.read),
        Latency::describe(&a.latency.write)
    );
    let mut failures = Vec::new();
    if a.cpu_windows < 10 {
        failures.push(format!("only {} CPU windows", a.cpu_windows));
    }
    // vmpulse's guest % is what the vCPUs ran; a guest without a steal clock
    // also counts the time it waited for the host as busy. So its own view
    // lies between guest and guest + steal; on a quiet host (steal near zero)
    // that is within 1 pp of guest. Under outside load (a shared CI machine)
    // the waits are long and bursty and only the bracket can be checked.
    if a.cpu_outside_bracket.is_nan() || a.cpu_outside_bracket > 1.0 {
        failures.push(format!(
            "guest's own CPU % lies {:.2} pp (mean per 5 s window) outside [guest, guest + steal] (want ≤ 1)",
            a.cpu_outside_bracket
        ));
    }
    if a.steal_mean < QUIET_STEAL && (a.cpu_err_guest_only.is_nan() || a.cpu_err_guest_only > 1.0) {
        failures.push(format!(
            "quiet host (steal {:.2} %) but guest CPU off by {:.2} pp mean per 5 s window (want ≤ 1)",
            a.steal_mean, a.cpu_err_guest_only
        ));
    } else if a.steal_mean >= QUIET_STEAL {
        eprintln!(
            "host not quiet (lone guest's steal {:.2} %, load {}): the 1 pp bound on guest % is not checked, the bracket is",
            a.steal_mean,
            loadavg()
        );
    }
    if a.mem_err_mib.is_nan() || a.mem_err_mib > 8.0 {
        failures.push(format!(
            "memory used off by {:.2} MiB mean (want ≤ 8)",
            a.mem_err_mib
        ));
    }
    for (what, e) in [("disk", &a.disk), ("network", &a.net)] {
        match e {
            Some((pct, _, _)) if pct.abs() <= 2.0 => {}
            other => failures.push(format!("{what} bytes: {} (want within 2 %)", fmt(other))),
        }
    }
    assert!(
        failures.is_empty(),
        "accuracy checks failed:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
#[cfg_attr(
    not(feature = "lab-tests"),
    ignore = "needs root: installs QEMU, starts libvirtd and up to six guests: cargo test --features lab-tests"
)]
fn steal_shows_when_guests_outnumber_host_cores() {
    let _one_lab = LAB.lock().unwrap_or_else(|p| p.into_inner());
    let (_lab, one) = Lab::up_with(1, false);
    let alone = steal_means(&one, 20)[0].1;
    let alone_load = loadavg();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let n = (cores + 2).min(6);
    let (_lab2, many) = Lab::up_with(n, false);
    let steals = steal_means(&many, 30);
    let contended = mean(&steals.iter().map(|(_, s)| *s).collect::<Vec<_>>());
    eprintln!(
        "steal: one guest {alone:.2} % (load {alone_load}); {n} guests on {cores} cores \
         {contended:.2} % per guest (load {}): {steals:?}",
        loadavg()
    );
    // On a quiet host the lone guest's steal is near zero; on a shared CI
    // machine other work steals from it too, so compare with it. How much the
    // crowded guests lose depends on how much their TCG vCPUs want to run:
    // 14.9 % per guest on one machine, 3.7-5.7 % (mean 4.68 %, lone 0.33 %) on
    // another, so the margin is 3 points, not 5.
    assert!(
        contended > 3.0 && contended > alone + 3.0,
        "steal with {n} guests on {cores} cores {contended:.2} %, alone {alone:.2} %: \
         want clearly above zero and above the lone guest's"
    );
}

#[test]
fn lab_stat_lines_parse() {
    let (up, s) = parse_stat(
        "lab-stat up=25.09 cpu=42 0 500 682 4 0 20 0 mem=94780:28964 disk= vda:2056:2048 vdb:8:0 net= eth0:3860:3796 eth1:1:2",
    )
    .expect("parses");
    assert_eq!(up, 25.09);
    assert_eq!((s.busy_jiffies, s.total_jiffies), (562.0, 1248.0));
    assert_eq!(s.mem_used_kib, 94780.0 - 28964.0);
    assert_eq!(s.disk_bytes, (2056.0 + 2048.0 + 8.0) * 512.0);
    assert_eq!(s.net_bytes, 3860.0 + 3796.0 + 3.0);
    assert!(parse_stat("lab-init: up").is_none());
    assert_eq!(s.disk_io, None, "sectors only: no latency counters");
    let (_, s) = parse_stat(
        "lab-stat up=1 cpu=1 0 1 1 0 0 0 0 mem=2:1 disk= vda:8:16:10:30:20:50 vdb:0:8:0:0:2:10 net= eth0:1:2",
    )
    .expect("parses");
    assert_eq!(s.disk_bytes, (8.0 + 16.0 + 8.0) * 512.0);
    assert_eq!(
        s.disk_io,
        Some(DiskIo {
            rd_ios: 10.0,
            rd_ms: 30.0,
            wr_ios: 22.0,
            wr_ms: 60.0
        })
    );
}

#[test]
fn vmpulse_latency_is_weighted_by_the_requests_of_each_interval() {
    let line = |t: f64, lat: Option<f64>, ops: f64| {
        let mut fields = std::collections::BTreeMap::new();
        if let Some(l) = lat {
            fields.insert("disk_read_latency_ms".to_string(), l);
        }
        fields.insert("disk_read_req_per_sec".to_string(), ops);
        LpLine {
            measurement: "vm_features".into(),
            tags: Default::default(),
            fields,
            t,
        }
    };
    let lines = [
        line(0.0, None, 0.0),
        // 10 requests at 1 ms, 30 at 3 ms, an idle interval, then outside the window.
        line(1.0, Some(1.0), 10.0),
        line(2.0, Some(3.0), 30.0),
        line(3.0, None, 0.0),
        line(4.0, Some(100.0), 50.0),
    ];
    let refs: Vec<&LpLine> = lines.iter().collect();
    let l = weighted_latency(
        &refs,
        "disk_read_latency_ms",
        "disk_read_req_per_sec",
        0.0,
        3.0,
    );
    assert_eq!(l, Some((10.0 + 90.0) / 40.0));
    assert_eq!(
        weighted_latency(
            &refs,
            "disk_read_latency_ms",
            "disk_read_req_per_sec",
            2.0,
            3.0
        ),
        None
    );
}
