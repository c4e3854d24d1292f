//! The card grid: one bordered card per VM with CPU, MEM, DISK, RX and TX
//! gauges, values in human units and degree rates; the DISK row also shows the
//! disk latency, and a job in flight is a badge in the title (`DUMP 43% 85.0 MiB/s`). Reflows with the width;
//! scrolls by rows.

use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

use crate::format;
use crate::model::{Snapshot, SourceState, VmSnapshot};
use crate::ui::app::App;
use crate::ui::layout::{ListGeometry, CARD_HEIGHT};
use crate::ui::levels;
use crate::ui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let shown = app.shown();
    let vis = app.visible();
    if vis.is_empty() {
        empty(frame, area, app, shown);
        return;
    }
    let ListGeometry { cols, rows } = ListGeometry::cards(area);
    let card_w = area.width / cols as u16;
    for row in 0..rows {
        for col in 0..cols {
            let pos = (app.top + row) * cols + col;
            let Some(&i) = vis.get(pos) else { break };
            let x = area.x + col as u16 * card_w;
            let w = if col == cols - 1 {
                area.x + area.width - x
            } else {
                card_w
            };
            let y = area.y + row as u16 * CARD_HEIGHT;
            let h = CARD_HEIGHT.min(area.y + area.height - y);
            card(
                frame,
                Rect::new(x, y, w, h),
                app,
                &shown.vms[i],
                pos == app.selected,
            );
        }
    }
}

/// What the list says when it has no VM to show, including why.
pub fn empty_message(app: &App, snap: &Snapshot) -> Vec<Line<'static>> {
    let t = app.theme;
    match &snap.source {
        SourceState::Failed(msg) => vec![
            Line::styled(
                format!("Cannot reach libvirt at {}", snap.libvirt_uri),
                t.bad(),
            ),
            Line::from(msg.clone()),
            Line::styled(
                "Retrying every poll interval; keys keep working (q quits).",
                t.dim(),
            ),
        ],
        SourceState::Connecting if snap.vms.is_empty() => vec![Line::from(format!(
            "Connecting to libvirt at {}…",
            snap.libvirt_uri
        ))],
        _ if !snap.vms.is_empty() => vec![
            Line::from(format!("No VM matches \"{}\".", app.filter)),
            Line::styled("Esc clears the filter.", t.dim()),
        ],
        _ => vec![
            Line::from(format!(
                "No domains on {} ({}).",
                snap.hostname, snap.libvirt_uri
            )),
            Line::styled(
                "VMs appear here at the next refresh after they are defined.",
                t.dim(),
            ),
        ],
    }
}

fn empty(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot) {
    let lines = empty_message(app, snap);
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let r = Rect::new(area.x, area.y + top, area.width, area.height - top);
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        r,
    );
}

/// When this VM's values were read (its line timestamp).
pub fn sample_time(vm: &VmSnapshot) -> std::time::SystemTime {
    let ns = u64::try_from(vm.raw.wall_ns).unwrap_or(0);
    std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(ns)
}

/// `running · 2 vCPU · 716 MiB / 2.00 GiB`
pub fn vm_info(vm: &VmSnapshot) -> String {
    let mut parts = vec![vm.raw.state.as_str().to_string()];
    if let Some(v) = vm.raw.vcpus {
        parts.push(format!("{v} vCPU"));
    }
    let size = vm.raw.cur_mem_kib.or(vm.raw.max_mem_kib);
    match (vm.memory, size) {
        (Some(m), Some(s)) => {
            parts.push(format!("{} / {}", format::kib(m.used_kb), format::kib(s)))
        }
        (None, Some(s)) => parts.push(format::kib(s)),
        (Some(m), None) => parts.push(format!("{} used", format::kib(m.used_kb))),
        (None, None) => {}
    }
    parts.join(" · ")
}

/// The VM's metadata tag values, `shop · m1.small` (names would crowd a card:
/// the filter and `/vms` have them); empty without tags.
pub fn tags_text(vm: &VmSnapshot) -> String {
    let values: Vec<&str> = vm.raw.tags.iter().map(|(_, v)| v.as_str()).collect();
    values.join(" · ")
}

/// One gauge row's content, shared with the table.
pub struct Metric {
    pub label: &'static str,
    /// Fill fraction of the gauge, `None` when unknown.
    pub fraction: Option<f64>,
    /// A second segment after the fill (CPU steal), as a fraction.
    pub extra: Option<f64>,
    pub value: String,
    /// A short second value shown before `value` (DISK: its latency).
    pub note: Option<String>,
    pub angle: Option<f64>,
}

pub fn metrics(app: &App, vm: &VmSnapshot) -> [Metric; 5] {
    let d = vm.derived.as_ref();
    let disk = d.map(|d| d.disk_read.bytes_per_sec + d.disk_write.bytes_per_sec);
    let rx = d.map(|d| d.net_rx.bytes_per_sec);
    let tx = d.map(|d| d.net_tx.bytes_per_sec);
    // The guest's own view where libvirt has per-vCPU counters, else the host's.
    let split = d.map(|d| d.cpu_split).unwrap_or_default();
    let cpu = split.guest.or(d.and_then(|d| d.cpu_percent));
    let steal = split.guest.and(split.steal);
    let mem = vm.memory.and_then(|m| m.percent);
    let dash = || "—".to_string();
    let (dc, nc) = (app.disk_ceiling.value(), app.net_ceiling.value());
    [
        Metric {
            label: "CPU",
            fraction: cpu.map(|c| c / 100.0),
            extra: steal.map(|s| s / 100.0),
            value: cpu.map(|c| cpu_value(c, steal)).unwrap_or_else(dash),
            note: None,
            angle: d.and_then(|d| d.cpu_angle_deg),
        },
        Metric {
            label: "MEM",
            fraction: mem.map(|m| m / 100.0),
            extra: None,
            value: mem
                .map(|m| match vm.memory.is_some_and(|m| m.over_total()) {
                    // Only RSS can: QEMU's own memory on top of the guest's.
                    true => format!("{}rss", format::percent(m)),
                    false => format::percent(m),
                })
                .unwrap_or_else(dash),
            note: None,
            angle: d.and_then(|d| d.memory_percent_angle_deg),
        },
        Metric {
            label: "DISK",
            extra: None,
            fraction: disk.map(|v| v / dc),
            value: disk.map(format::rate).unwrap_or_else(dash),
            note: disk_latency_note(vm),
            angle: d.map(|d| d.disk_angle_deg),
        },
        Metric {
            label: "RX",
            extra: None,
            fraction: rx.map(|v| v / nc),
            value: rx.map(format::rate).unwrap_or_else(dash),
            note: None,
            angle: d.map(|d| d.net_rx_angle_deg),
        },
        Metric {
            label: "TX",
            extra: None,
            fraction: tx.map(|v| v / nc),
            value: tx.map(format::rate).unwrap_or_else(dash),
            note: None,
            angle: d.map(|d| d.net_tx_angle_deg),
        },
    ]
}

/// The VM's disk latency (the slower of read and write) as the card shows it;
/// `—` when its disks report request times but none completed in the interval,
/// `None` (no slot) when they report none or there is no interval yet.
pub fn disk_latency_note(vm: &VmSnapshot) -> Option<String> {
    let d = vm.derived.as_ref()?;
    let timed = vm
        .raw
        .disks
        .iter()
        .any(|d| d.rd_times_ns.is_some() || d.wr_times_ns.is_some());
    match d.disk_latency.worst_rw_ms() {
        Some(ms) => Some(format::latency_ms(ms)),
        None if timed => Some("—".into()),
        None => None,
    }
}

/// The badge of the VM's first job: `DUMP 43% 85.0 MiB/s` while it runs,
/// `COPY vda 25%` for a block job, `DUMP COMPLETED` on its final reading.
pub fn job_badge(vm: &VmSnapshot) -> Option<String> {
    let j = vm.raw.jobs.first()?;
    let mut parts = vec![j.operation.badge().to_string()];
    parts.extend(j.disk.clone());
    if j.kind.running() {
        parts.extend(j.percent().map(|p| format!("{p:.0}%")));
        parts.extend(j.bandwidth_bytes_per_sec.map(format::rate));
    } else {
        parts.push(j.kind.as_str().to_uppercase());
    }
    if vm.raw.jobs.len() > 1 {
        parts.push(format!("+{}", vm.raw.jobs.len() - 1));
    }
    Some(parts.join(" "))
}

/// `41%`, or `41% +9 st` when the guest waited for a host CPU (steal ≥ 0.5 %).
pub fn cpu_value(cpu: f64, steal: Option<f64>) -> String {
    match steal {
        Some(s) if s >= 0.5 => format!("{:.0}% +{:.0} st", cpu, s),
        _ => format::percent(cpu),
    }
}

/// Angle text padded to 7 columns, styled by direction and steepness.
pub fn angle_span(t: Theme, angle: Option<f64>, greyed: bool) -> Span<'static> {
    let text = format!("{:>7}", format::angle(angle));
    let style = if greyed {
        t.dim()
    } else {
        t.angle(format::direction(angle), angle)
    };
    Span::styled(text, style)
}

const VALUE_W: usize = 11;

fn card(frame: &mut Frame, area: Rect, app: &App, vm: &VmSnapshot, selected: bool) {
    let t = app.theme;
    let stale = app.shown().unreachable_since.is_some();
    let greyed = !vm.raw.state.is_running() || stale;
    let text_style = if greyed { t.dim() } else { t.base() };
    let info_style = levels::worst(&app.shown().alerts, vm.uuid(), levels::state_shows)
        .map_or(text_style, |l| t.level(l));
    let border_style = if selected {
        t.selected_border()
    } else if greyed {
        t.dim()
    } else {
        t.label()
    };
    let inner_w = usize::from(area.width.saturating_sub(2));
    let badge = job_badge(vm).map(|b| format!(" {} ", format::truncate(&b, inner_w / 2)));
    let badge_w = badge.as_ref().map_or(0, |b| b.chars().count());
    let name = format::truncate(vm.name(), inner_w.saturating_sub(4 + badge_w));
    let mut info = vm_info(vm);
    if stale {
        info = format!(
            "{} old · {info}",
            format::age(sample_time(vm), app.shown().taken_at)
        );
    } else if let Some(busy) = vm.raw.monitor_stuck {
        info = format!("MONITOR STUCK {} · {info}", format::duration(busy));
    } else if greyed {
        // The state word in capitals: greyed is not the only cue.
        let state = vm.raw.state.as_str();
        info = format!("{}{}", state.to_uppercase(), &info[state.len()..]);
    }
    // The tags share the top border with the name, right-aligned, in what the
    // name leaves free.
    let tags = tags_text(vm);
    let tags_w = inner_w.saturating_sub(name.chars().count() + 4);
    let tags_title = (!tags.is_empty() && tags_w > 4).then(|| {
        Line::styled(
            format!(" {} ", format::truncate(&tags, tags_w - 2)),
            text_style,
        )
        .right_aligned()
    });
    let mut block = Block::bordered()
        .border_type(if selected {
            BorderType::Thick
        } else {
            BorderType::Rounded
        })
        .border_style(border_style)
        .title(Line::from(vec![
            Span::raw(if selected { "▶" } else { " " }),
            Span::styled(name, if greyed { t.dim() } else { t.title() }),
            Span::raw(" "),
        ]))
        .title_bottom(
            Line::styled(
                format!(" {} ", format::truncate(&info, inner_w.saturating_sub(2))),
                info_style,
            )
            .right_aligned(),
        );
    // A job in flight outranks the tags for the border's right side.
    if let Some(b) = badge {
        block = block.title(Line::styled(b, t.warn()).right_aligned());
    } else if let Some(tt) = tags_title {
        block = block.title(tt);
    }
    let bar_w = inner_w.saturating_sub(5 + 1 + VALUE_W + 1 + 7);
    let board = &app.shown().alerts;
    let lines: Vec<Line> = metrics(app, vm)
        .into_iter()
        .map(|m| {
            let level = levels::worst(board, vm.uuid(), |x| levels::card_row_shows(m.label, x));
            let value_style = level.map_or(text_style, |l| t.level(l));
            gauge_line(t, &m, bar_w, greyed, value_style)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Width of a gauge row's note (a space and six characters).
const NOTE_W: usize = 7;

fn gauge_line(t: Theme, m: &Metric, bar_w: usize, greyed: bool, text: Style) -> Line<'static> {
    let fraction = m.fraction.unwrap_or(0.0);
    // The note takes its columns from the bar, when the bar can spare them.
    let note = m.note.as_ref().filter(|_| bar_w > NOTE_W + 4);
    let bar_w = bar_w - note.map_or(0, |_| NOTE_W);
    let (filled, extra, empty) = format::bar_with_extra(fraction, m.extra.unwrap_or(0.0), bar_w);
    let (fill_style, extra_style) = if greyed {
        (t.dim(), t.dim())
    } else {
        (t.gauge(fraction + m.extra.unwrap_or(0.0)), t.steal())
    };
    Line::from(vec![
        Span::styled(
            format!("{:<5}", m.label),
            if greyed { t.dim() } else { t.label() },
        ),
        Span::styled(filled, fill_style),
        Span::styled(extra, extra_style),
        Span::styled(empty, t.dim()),
        Span::styled(
            note.map(|n| format!("{n:>NOTE_W$}")).unwrap_or_default(),
            if greyed { t.dim() } else { t.label() },
        ),
        Span::styled(format!(" {:>VALUE_W$}", m.value), text),
        Span::raw(" "),
        angle_span(t, m.angle, greyed),
    ])
}
