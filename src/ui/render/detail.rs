//! The detail view (`Enter`): identity, sparklines over the history window,
//! the CPU split (guest, overhead, steal) with every vCPU's guest % and
//! steal %, balloon memory breakdown, and per-NIC and per-disk tables with
//! every `vm_devices` field as rates and totals, and each disk's read, write
//! and flush latency with a sparkline of its history; a Jobs section while a
//! job (dump, save, migration, block job) runs. Scrolls with j/k. One
//! function per section.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::format;
use crate::history::Sample;
use crate::model::{DeviceRates, VmSnapshot};
use crate::ui::app::App;
use crate::ui::theme::Theme;

fn heading(t: Theme, s: &str) -> Line<'static> {
    Line::styled(s.to_string(), t.title())
}

const DASH: &str = "—";

fn opt_kib(v: Option<u64>) -> String {
    v.map(format::kib).unwrap_or_else(|| DASH.into())
}

fn opt_count(v: Option<u64>) -> String {
    v.map(|v| format::count(v as f64))
        .unwrap_or_else(|| DASH.into())
}

fn opt_pct(v: Option<f64>) -> String {
    v.map(format::percent).unwrap_or_else(|| DASH.into())
}

fn opt_ops(v: Option<f64>) -> String {
    v.map(format::ops).unwrap_or_else(|| DASH.into())
}

/// `key value` pairs laid out in columns of `col_w` to fill `width`.
fn grid(t: Theme, pairs: Vec<(String, String)>, width: usize) -> Vec<Line<'static>> {
    let col_w = 30usize;
    let per_line = (width / col_w).max(1);
    pairs
        .chunks(per_line)
        .map(|chunk| {
            Line::from(
                chunk
                    .iter()
                    .flat_map(|(k, v)| {
                        [
                            Span::styled(format!("{k:<13}"), t.label()),
                            Span::raw(format!("{:<w$}", v, w = col_w - 13)),
                        ]
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

fn spark_line(
    t: Theme,
    label: &str,
    samples: &[Sample],
    pick: impl Fn(&Sample) -> Option<f64>,
    max: Option<f64>,
    fmt: impl Fn(f64) -> String,
    width: usize,
) -> Line<'static> {
    let values: Vec<Option<f64>> = samples.iter().map(&pick).collect();
    spark_values(t, label, &values, max, fmt, width)
}

/// A labelled sparkline of `values` (oldest first) with the last and the peak value.
fn spark_values(
    t: Theme,
    label: &str,
    values: &[Option<f64>],
    max: Option<f64>,
    fmt: impl Fn(f64) -> String,
    width: usize,
) -> Line<'static> {
    let now = values.last().copied().flatten();
    let peak = values
        .iter()
        .flatten()
        .copied()
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
    let stats = format!(
        " now {:>10}  max {:>10}",
        now.map(&fmt).unwrap_or_else(|| DASH.into()),
        peak.map(&fmt).unwrap_or_else(|| DASH.into())
    );
    let spark_w = width.saturating_sub(8 + stats.chars().count());
    Line::from(vec![
        Span::styled(format!("{label:<8}"), t.label()),
        Span::styled(format::sparkline(values, spark_w, max), t.good()),
        Span::raw(stats),
    ])
}

/// A device section's start: its heading, then the rates table when rates
/// are known yet. `Err` holds the whole section when there is no device.
fn device_section(
    t: Theme,
    title: &str,
    no_devices: bool,
    heads: [&str; 4],
    rates: Option<&[DeviceRates]>,
) -> Result<Vec<Line<'static>>, Vec<Line<'static>>> {
    let mut out = vec![heading(t, title)];
    if no_devices {
        out.push(Line::styled("none reported", t.dim()));
        return Err(out);
    }
    if let Some(r) = rates {
        out.extend(rates_table(t, "rates", heads, r));
    }
    Ok(out)
}

fn rates_table(
    t: Theme,
    title: &str,
    heads: [&str; 4],
    rates: &[DeviceRates],
) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(
        format!(
            "{:<12}{:>13}{:>11}{:>13}{:>11}",
            title, heads[0], heads[1], heads[2], heads[3]
        ),
        t.table_header(),
    )];
    for r in rates {
        out.push(Line::raw(format!(
            "{:<12}{:>13}{:>11}{:>13}{:>11}",
            format::truncate(&r.name, 11),
            format::rate(r.read.bytes_per_sec),
            opt_ops(r.read.ops_per_sec),
            format::rate(r.write.bytes_per_sec),
            opt_ops(r.write.ops_per_sec),
        )));
    }
    out
}

/// State, identity, size, and the sample's age when it is stale.
fn identity_lines(app: &App, vm: &VmSnapshot) -> Vec<Line<'static>> {
    let t = app.theme;
    let raw = &vm.raw;
    let state_style = if raw.state.is_running() {
        t.good()
    } else {
        t.warn()
    };
    let mut out = vec![Line::from(vec![
        Span::styled(raw.state.as_str().to_uppercase(), state_style),
        Span::raw(format!(
            " ({}) · id {} · uuid {}",
            crate::ui::state_reason::name(raw.state, raw.state_reason),
            raw.id.map(|i| i.to_string()).unwrap_or_else(|| DASH.into()),
            raw.uuid
        )),
    ])];
    out.push(Line::raw(format!(
        "{} vCPU · max memory {} · current {}{}",
        raw.vcpus
            .map(|v| v.to_string())
            .unwrap_or_else(|| DASH.into()),
        opt_kib(raw.max_mem_kib),
        opt_kib(raw.cur_mem_kib),
        vm.derived
            .as_ref()
            .map(|d| format!(" · Δt {:.2}s", d.dt_secs))
            .unwrap_or_else(|| " · no rates yet (first sample)".into()),
    )));
    if !raw.tags.is_empty() {
        // Names with values here: the cards and table have room for values only.
        let tags: Vec<String> = raw.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push(Line::raw(format!("tags {}", tags.join(" · "))));
    }
    if let Some(busy) = raw.monitor_stuck {
        out.push(Line::styled(
            format!(
                "QEMU monitor busy for {}: balloon and disk stats unavailable",
                format::duration(busy)
            ),
            t.bad(),
        ));
    }
    if let Some(since) = app.shown().unreachable_since {
        out.push(Line::styled(
            format!(
                "libvirt unreachable since {}: last known values",
                format::clock(since)
            ),
            t.bad(),
        ));
    }
    out.push(Line::raw(""));
    out
}

/// Each job in flight with every value libvirt reports; nothing without a job.
fn job_lines(t: Theme, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    if vm.raw.jobs.is_empty() {
        return Vec::new();
    }
    let mut out = vec![heading(t, "Jobs")];
    let ms = |v: Option<u64>| {
        v.map(|v| format::duration(std::time::Duration::from_millis(v)))
            .unwrap_or_else(|| DASH.into())
    };
    let b = |v: Option<u64>| {
        v.map(|v| format::bytes(v as f64))
            .unwrap_or_else(|| DASH.into())
    };
    for j in &vm.raw.jobs {
        let what = match &j.disk {
            Some(d) => format!("{} on {d}", j.operation.as_str()),
            None => j.operation.as_str().to_string(),
        };
        out.push(Line::from(vec![
            Span::styled(format!("{what} "), t.warn()),
            Span::raw(format!("({})", j.kind.as_str())),
        ]));
        let pairs = [
            ("progress", opt_pct(j.percent())),
            ("elapsed", ms(j.elapsed_ms)),
            ("remaining", ms(j.remaining_ms)),
            (
                "bandwidth",
                j.bandwidth_bytes_per_sec
                    .map(format::rate)
                    .unwrap_or_else(|| DASH.into()),
            ),
            ("data done", b(j.data_processed_bytes)),
            ("data left", b(j.data_remaining_bytes)),
            ("data total", b(j.data_total_bytes)),
            ("memory done", b(j.memory_processed_bytes)),
            ("memory left", b(j.memory_remaining_bytes)),
            ("memory total", b(j.memory_total_bytes)),
            (
                "dirty pages/s",
                opt_count(j.memory_dirty_rate_pages_per_sec),
            ),
            ("iteration", opt_count(j.memory_iteration)),
            ("downtime", ms(j.downtime_ms)),
        ];
        let known: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(_, v)| v != DASH)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        out.extend(grid(t, known, width));
        if let Some(e) = &j.error {
            out.push(Line::styled(format!("error: {e}"), t.bad()));
        }
    }
    out.push(Line::raw(""));
    out
}

fn history_lines(app: &App, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mins = app.history.window().as_secs() / 60;
    let samples: Vec<Sample> = app
        .history
        .samples(vm.uuid())
        .map(|q| q.collect())
        .unwrap_or_default();
    let pct = |v: f64| format::percent(v);
    // Steal is usually small: scale to its own peak, at least 10 %.
    let steal_top = samples
        .iter()
        .filter_map(|s| s.steal_percent)
        .fold(10.0, f64::max);
    vec![
        heading(t, &format!("History (last {mins} min)")),
        spark_line(
            t,
            "CPU %",
            &samples,
            |s| s.cpu_percent,
            Some(100.0),
            pct,
            width,
        ),
        spark_line(
            t,
            "STEAL %",
            &samples,
            |s| s.steal_percent,
            Some(steal_top),
            pct,
            width,
        ),
        spark_line(
            t,
            "MEM %",
            &samples,
            |s| s.mem_percent,
            Some(100.0),
            pct,
            width,
        ),
        spark_line(
            t,
            "DISK",
            &samples,
            |s| s.disk_bps,
            None,
            format::rate,
            width,
        ),
        spark_line(
            t,
            "LATENCY",
            &samples,
            |s| s.disk_latency_ms,
            None,
            format::latency_ms,
            width,
        ),
        spark_line(t, "NET", &samples, |s| s.net_bps, None, format::rate, width),
        Line::raw(""),
    ]
}

fn memory_lines(t: Theme, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    let b = &vm.raw.balloon;
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(m) = vm.memory {
        pairs.push(("used".into(), format::kib(m.used_kb)));
        let over = if m.over_total() { " (qemu>ram)" } else { "" };
        pairs.push(("used %".into(), format!("{}{over}", opt_pct(m.percent))));
        pairs.push(("measured as".into(), m.source.as_str().to_string()));
    }
    pairs.extend(
        [
            ("current", opt_kib(b.current_kib)),
            ("maximum", opt_kib(b.maximum_kib)),
            ("total", opt_kib(b.available_kib)),
            ("available", opt_kib(b.usable_kib)),
            ("free", opt_kib(b.unused_kib)),
            ("disk caches", opt_kib(b.disk_caches_kib)),
            ("rss (host)", opt_kib(b.rss_kib)),
            ("swap in", opt_kib(b.swap_in_kib)),
            ("swap out", opt_kib(b.swap_out_kib)),
            ("major faults", opt_count(b.major_fault)),
            ("minor faults", opt_count(b.minor_fault)),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let mut out = vec![heading(t, "Memory (balloon)")];
    out.extend(grid(t, pairs, width));
    out.push(Line::raw(""));
    out
}

/// The guest/overhead/steal split and every vCPU's guest % and steal %.
fn cpu_lines(t: Theme, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    let raw = &vm.raw;
    let mut out = vec![heading(t, "CPU")];
    let d = vm.derived.as_ref();
    let split = d.map(|d| d.cpu_split).unwrap_or_default();
    out.extend(grid(
        t,
        vec![
            ("host total".into(), opt_pct(d.and_then(|d| d.cpu_percent))),
            ("guest".into(), opt_pct(split.guest)),
            ("overhead".into(), opt_pct(split.overhead)),
            ("steal".into(), opt_pct(split.steal)),
        ],
        width,
    ));
    match d {
        Some(d) if !d.vcpu_percent.is_empty() => {
            out.push(Line::styled(
                format!("{:<8}{:>9}{:>9}", "vCPU", "guest", "steal"),
                t.table_header(),
            ));
            for (i, p) in d.vcpu_percent.iter().enumerate() {
                let steal = d.vcpu_steal_percent.get(i).copied();
                out.push(Line::raw(format!(
                    "{:<8}{:>9}{:>9}",
                    format!("vcpu{i}"),
                    format::percent(*p),
                    opt_pct(steal)
                )));
            }
        }
        _ if !raw.vcpu_times_ns.is_empty() => {
            for (i, ns) in raw.vcpu_times_ns.iter().enumerate() {
                out.push(Line::raw(format!(
                    "vcpu{i:<4} cumulative {:.1}s",
                    *ns as f64 / 1e9
                )));
            }
        }
        _ => out.push(Line::styled("per-vCPU time not reported", t.dim())),
    }
    out.push(Line::raw(""));
    out
}

fn nic_lines(t: Theme, vm: &VmSnapshot) -> Vec<Line<'static>> {
    let raw = &vm.raw;
    let heads = ["rx", "rx pkt", "tx", "tx pkt"];
    let rates = vm.derived.as_ref().map(|d| d.nics.as_slice());
    let mut out = match device_section(t, "Network interfaces", raw.nics.is_empty(), heads, rates) {
        Ok(out) => out,
        Err(mut none) => {
            none.push(Line::raw(""));
            return none;
        }
    };
    out.push(Line::styled(
        format!(
            "{:<12}{:>10}{:>9}{:>7}{:>7}{:>10}{:>9}{:>7}{:>7}",
            "totals",
            "rxbytes",
            "rxpkts",
            "rxerr",
            "rxdrop",
            "txbytes",
            "txpkts",
            "txerr",
            "txdrop"
        ),
        t.table_header(),
    ));
    for n in &raw.nics {
        let bad = [n.rx_errors, n.rx_drops, n.tx_errors, n.tx_drops]
            .iter()
            .any(|v| v.unwrap_or(0) > 0);
        out.push(Line::styled(
            format!(
                "{:<12}{:>10}{:>9}{:>7}{:>7}{:>10}{:>9}{:>7}{:>7}",
                format::truncate(&n.name, 11),
                format::bytes(n.rx_bytes as f64),
                opt_count(n.rx_packets),
                opt_count(n.rx_errors),
                opt_count(n.rx_drops),
                format::bytes(n.tx_bytes as f64),
                opt_count(n.tx_packets),
                opt_count(n.tx_errors),
                opt_count(n.tx_drops),
            ),
            if bad { t.bad() } else { t.base() },
        ));
    }
    out.push(Line::raw(""));
    out
}

fn disk_lines(t: Theme, vm: &VmSnapshot) -> Vec<Line<'static>> {
    let raw = &vm.raw;
    let heads = ["read", "rd req", "write", "wr req"];
    let rates = vm.derived.as_ref().map(|d| d.disks.as_slice());
    let mut out = match device_section(t, "Disks", raw.disks.is_empty(), heads, rates) {
        Ok(out) => out,
        Err(none) => return none,
    };
    out.push(Line::styled(
        format!(
            "{:<12}{:>9}{:>10}{:>9}{:>10}{:>7}{:>10}",
            "totals", "rd_req", "rd_bytes", "wr_reqs", "wr_bytes", "errors", "capacity"
        ),
        t.table_header(),
    ));
    for d in &raw.disks {
        let bad = d.errors.unwrap_or(0) > 0;
        out.push(Line::styled(
            format!(
                "{:<12}{:>9}{:>10}{:>9}{:>10}{:>7}{:>10}",
                format::truncate(&d.name, 11),
                opt_count(d.rd_reqs),
                format::bytes(d.rd_bytes as f64),
                opt_count(d.wr_reqs),
                format::bytes(d.wr_bytes as f64),
                opt_count(d.errors),
                d.capacity
                    .map(|c| format::bytes(c as f64))
                    .unwrap_or_else(|| DASH.into()),
            ),
            if bad { t.bad() } else { t.base() },
        ));
        if let Some(p) = &d.path {
            out.push(Line::styled(format!("  {p}"), t.dim()));
        }
    }
    out
}

/// Each disk's read, write and flush latency over the last interval and a
/// sparkline of the slower of read and write over the history window.
fn disk_latency_lines(app: &App, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let Some(d) = vm.derived.as_ref().filter(|_| !vm.raw.disks.is_empty()) else {
        return Vec::new();
    };
    let ms = |v: Option<f64>| v.map(format::latency_ms).unwrap_or_else(|| DASH.into());
    let mut out = vec![Line::styled(
        format!("{:<12}{:>9}{:>9}{:>9}", "latency", "read", "write", "flush"),
        t.table_header(),
    )];
    for r in &d.disks {
        out.push(Line::raw(format!(
            "{:<12}{:>9}{:>9}{:>9}",
            format::truncate(&r.name, 11),
            ms(r.latency.read_ms),
            ms(r.latency.write_ms),
            ms(r.latency.flush_ms),
        )));
    }
    for series in app.history.disk_latency(vm.uuid()) {
        let values: Vec<Option<f64>> = series.values().collect();
        let label = format::truncate(series.name, 7);
        out.push(spark_values(
            t,
            &label,
            &values,
            None,
            format::latency_ms,
            width,
        ));
    }
    out
}

fn lines(app: &App, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let mut out = identity_lines(app, vm);
    out.extend(job_lines(t, vm, width));
    out.extend(history_lines(app, vm, width));
    out.extend(cpu_lines(t, vm, width));
    out.extend(memory_lines(t, vm, width));
    out.extend(nic_lines(t, vm));
    out.extend(disk_lines(t, vm));
    out.extend(disk_latency_lines(app, vm, width));
    out
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, uuid: &str, scroll: u16) {
    let t = app.theme;
    let Some(vm) = app.shown().vms.iter().find(|vm| vm.uuid() == uuid) else {
        frame.render_widget(
            Paragraph::new("This VM is no longer reported by libvirt. Esc goes back."),
            area,
        );
        return;
    };
    let block = Block::bordered()
        .border_style(t.selected_border())
        .title(Line::from(vec![
            Span::styled(format!(" {} ", vm.name()), t.title()),
            Span::styled("— Esc back, j/k scroll ", t.dim()),
        ]));
    let width = usize::from(block.inner(area).width);
    let body = lines(app, vm, width);
    let max_scroll = (body.len() as u16).saturating_sub(block.inner(area).height);
    frame.render_widget(
        Paragraph::new(body)
            .block(block)
            .scroll((scroll.min(max_scroll), 0)),
        area,
    );
}
