//! The detail view (`Enter`): identity, sparklines over the history window,
//! balloon memory breakdown, per-vCPU use, and per-NIC and per-disk tables
//! with every `vm_devices` field as rates and totals. Scrolls with j/k.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::model::{DeviceRates, VmSnapshot};
use crate::ui::app::App;
use crate::ui::format;
use crate::ui::history::Sample;
use crate::ui::theme::Theme;

fn heading(t: Theme, s: &str) -> Line<'static> {
    Line::styled(s.to_string(), t.title())
}

fn opt_kib(v: Option<u64>) -> String {
    v.map(format::kib).unwrap_or_else(|| "—".into())
}

fn opt_count(v: Option<u64>) -> String {
    v.map(|v| format::count(v as f64))
        .unwrap_or_else(|| "—".into())
}

/// `key value` pairs laid out in columns of `col_w` to fill `width`.
fn grid(t: Theme, pairs: Vec<(&'static str, String)>, width: usize) -> Vec<Line<'static>> {
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
    let now = values.last().copied().flatten();
    let peak = values
        .iter()
        .flatten()
        .copied()
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))));
    let stats = format!(
        " now {:>10}  max {:>10}",
        now.map(&fmt).unwrap_or_else(|| "—".into()),
        peak.map(&fmt).unwrap_or_else(|| "—".into())
    );
    let spark_w = width.saturating_sub(8 + stats.chars().count());
    Line::from(vec![
        Span::styled(format!("{label:<8}"), t.label()),
        Span::styled(format::sparkline(&values, spark_w, max), t.good()),
        Span::raw(stats),
    ])
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
            format::ops(r.read.ops_per_sec),
            format::rate(r.write.bytes_per_sec),
            format::ops(r.write.ops_per_sec),
        )));
    }
    out
}

fn lines(app: &App, vm: &VmSnapshot, width: usize) -> Vec<Line<'static>> {
    let t = app.theme;
    let raw = &vm.raw;
    let mut out = Vec::new();
    let state_style = if raw.state.is_running() {
        t.good()
    } else {
        t.warn()
    };
    out.push(Line::from(vec![
        Span::styled(raw.state.as_str().to_uppercase(), state_style),
        Span::raw(format!(
            " ({}) · id {} · uuid {}",
            crate::collector::state_reason::name(raw.state, raw.state_reason),
            raw.id.map(|i| i.to_string()).unwrap_or_else(|| "—".into()),
            raw.uuid
        )),
    ]));
    out.push(Line::raw(format!(
        "{} vCPU · max memory {} · current {}{}",
        raw.vcpus
            .map(|v| v.to_string())
            .unwrap_or_else(|| "—".into()),
        opt_kib(raw.max_mem_kib),
        opt_kib(raw.cur_mem_kib),
        vm.derived
            .as_ref()
            .map(|d| format!(" · Δt {:.2}s", d.dt_secs))
            .unwrap_or_else(|| " · no rates yet (first sample)".into()),
    )));
    out.push(Line::raw(""));

    let mins = app.history.window().as_secs() / 60;
    out.push(heading(t, &format!("History (last {mins} min)")));
    let samples: Vec<Sample> = app
        .history
        .samples(vm.uuid())
        .map(|q| q.iter().copied().collect())
        .unwrap_or_default();
    let pct = |v: f64| format::percent(v);
    out.push(spark_line(
        t,
        "CPU %",
        &samples,
        |s| s.cpu_percent,
        Some(100.0),
        pct,
        width,
    ));
    out.push(spark_line(
        t,
        "MEM %",
        &samples,
        |s| s.mem_percent,
        Some(100.0),
        pct,
        width,
    ));
    out.push(spark_line(
        t,
        "DISK",
        &samples,
        |s| s.disk_bps,
        None,
        format::rate,
        width,
    ));
    out.push(spark_line(
        t,
        "NET",
        &samples,
        |s| s.net_bps,
        None,
        format::rate,
        width,
    ));
    out.push(Line::raw(""));

    out.push(heading(t, "Memory (balloon)"));
    let b = &raw.balloon;
    let mut pairs = Vec::new();
    if let Some(m) = vm.memory {
        pairs.push(("used", format::kib(m.used_kb)));
        pairs.push((
            "used %",
            m.percent.map(format::percent).unwrap_or_else(|| "—".into()),
        ));
        pairs.push(("measured as", m.source.as_str().to_string()));
    }
    pairs.extend([
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
    ]);
    out.extend(grid(t, pairs, width));
    out.push(Line::raw(""));

    out.push(heading(t, "vCPUs"));
    match vm.derived.as_ref().map(|d| &d.vcpu_percent) {
        Some(v) if !v.is_empty() => {
            let pairs = v
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let label: &'static str = match i {
                        0 => "vcpu0",
                        1 => "vcpu1",
                        2 => "vcpu2",
                        3 => "vcpu3",
                        4 => "vcpu4",
                        5 => "vcpu5",
                        6 => "vcpu6",
                        7 => "vcpu7",
                        _ => "vcpu8+",
                    };
                    (label, format::percent(*p))
                })
                .collect();
            out.extend(grid(t, pairs, width));
        }
        _ if !raw.vcpu_times_ns.is_empty() => {
            let text = raw
                .vcpu_times_ns
                .iter()
                .enumerate()
                .map(|(i, ns)| format!("vcpu{i} {:.1}s", *ns as f64 / 1e9))
                .collect::<Vec<_>>()
                .join("  ");
            out.push(Line::raw(format!("cumulative time: {text}")));
        }
        _ => out.push(Line::styled("per-vCPU time not reported", t.dim())),
    }
    out.push(Line::raw(""));

    out.push(heading(t, "Network interfaces"));
    if raw.nics.is_empty() {
        out.push(Line::styled("none reported", t.dim()));
    } else {
        if let Some(d) = &vm.derived {
            out.extend(rates_table(
                t,
                "rates",
                ["rx", "rx pkt", "tx", "tx pkt"],
                &d.nics,
            ));
        }
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
            let bad = n.rx_errors + n.rx_drops + n.tx_errors + n.tx_drops > 0;
            out.push(Line::styled(
                format!(
                    "{:<12}{:>10}{:>9}{:>7}{:>7}{:>10}{:>9}{:>7}{:>7}",
                    format::truncate(&n.name, 11),
                    format::bytes(n.rx_bytes as f64),
                    format::count(n.rx_packets as f64),
                    n.rx_errors,
                    n.rx_drops,
                    format::bytes(n.tx_bytes as f64),
                    format::count(n.tx_packets as f64),
                    n.tx_errors,
                    n.tx_drops,
                ),
                if bad { t.bad() } else { t.base() },
            ));
        }
    }
    out.push(Line::raw(""));

    out.push(heading(t, "Disks"));
    if raw.disks.is_empty() {
        out.push(Line::styled("none reported", t.dim()));
    } else {
        if let Some(d) = &vm.derived {
            out.extend(rates_table(
                t,
                "rates",
                ["read", "rd req", "write", "wr req"],
                &d.disks,
            ));
        }
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
                    format::count(d.rd_reqs as f64),
                    format::bytes(d.rd_bytes as f64),
                    format::count(d.wr_reqs as f64),
                    format::bytes(d.wr_bytes as f64),
                    opt_count(d.errors),
                    d.capacity
                        .map(|c| format::bytes(c as f64))
                        .unwrap_or_else(|| "—".into()),
                ),
                if bad { t.bad() } else { t.base() },
            ));
            if let Some(p) = &d.path {
                out.push(Line::styled(format!("  {p}"), t.dim()));
            }
        }
    }
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
