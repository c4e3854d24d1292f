//! Compact table mode (`t`): one VM per line with the card's columns (and LAT,
//! the disk latency), for
//! hosts with 50–500 VMs. Columns are dropped from the right by priority
//! when the terminal is narrow; the sorted column's header carries ▼/▲.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

use super::cards::{self, angle_span};
use crate::format;
use crate::model::VmSnapshot;
use crate::ui::app::App;
use crate::ui::keys::SortKey;
use crate::ui::levels;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Col {
    Name,
    State,
    Vcpu,
    Mem,
    Value(usize),
    Angle(usize),
    /// Direction arrow only, when the full degree columns do not fit.
    Arrow(usize),
    /// The CPU split: 0 guest, 1 steal, 2 overhead.
    Split(usize),
    /// The metadata tag values; only when some VM has tags.
    Tags,
    /// Disk latency, the slower of read and write.
    Lat,
}

/// Columns in the order they are given up when space runs out (last first).
const PRIORITY: [(Col, u16); 19] = [
    (Col::Name, 16),
    (Col::State, 8),
    (Col::Value(0), 6),
    (Col::Value(1), 6),
    (Col::Value(2), 11),
    (Col::Value(3), 11),
    (Col::Value(4), 11),
    (Col::Split(1), 6),
    (Col::Angle(0), 7),
    (Col::Angle(1), 7),
    (Col::Angle(2), 7),
    (Col::Angle(3), 7),
    (Col::Angle(4), 7),
    (Col::Tags, 16),
    (Col::Lat, 6),
    (Col::Vcpu, 4),
    (Col::Split(0), 6),
    (Col::Split(2), 6),
    (Col::Mem, 19),
];

/// Display order of the columns.
const ORDER: [Col; 19] = [
    Col::Name,
    Col::Tags,
    Col::State,
    Col::Vcpu,
    Col::Mem,
    Col::Value(0),
    Col::Angle(0),
    Col::Split(0),
    Col::Split(1),
    Col::Split(2),
    Col::Value(1),
    Col::Angle(1),
    Col::Value(2),
    Col::Angle(2),
    Col::Lat,
    Col::Value(3),
    Col::Angle(3),
    Col::Value(4),
    Col::Angle(4),
];

const LABELS: [&str; 5] = ["CPU%", "MEM%", "DISK/s", "RX/s", "TX/s"];
const SPLIT_LABELS: [&str; 3] = ["GST%", "STL%", "OVH%"];
const SORTS: [Option<SortKey>; 5] = [
    Some(SortKey::Cpu),
    Some(SortKey::Memory),
    Some(SortKey::Disk),
    Some(SortKey::Network),
    Some(SortKey::Network),
];

/// The columns that fit in `width`; `tags`: some VM has metadata tags.
fn columns(width: u16, tags: bool) -> Vec<(Col, u16)> {
    let pick = |prio: &[(Col, u16)]| {
        let mut used = 0u16;
        let mut chosen = Vec::new();
        for &(col, w) in prio.iter().filter(|(c, _)| tags || *c != Col::Tags) {
            let need = w + u16::from(!chosen.is_empty());
            if used + need > width {
                break;
            }
            used += need;
            chosen.push((col, w));
        }
        chosen
    };
    let mut chosen = pick(&PRIORITY);
    if !chosen.iter().any(|(c, _)| *c == Col::Angle(4)) {
        // Narrow: keep the direction of every rate as a one-cell arrow.
        let narrow: Vec<(Col, u16)> = PRIORITY
            .iter()
            .map(|&(c, w)| match c {
                Col::Name => (c, 12),
                Col::Angle(i) => (Col::Arrow(i), 1),
                _ => (c, w),
            })
            .collect();
        chosen = pick(&narrow);
    }
    let order = |c: &Col| {
        ORDER
            .iter()
            .position(|o| o == c || matches!((o, c), (Col::Angle(a), Col::Arrow(b)) if a == b))
            .unwrap_or(usize::MAX)
    };
    chosen.sort_by_key(|(c, _)| order(c));
    chosen
}

fn header_label(app: &App, col: Col) -> String {
    let arrow = if app.sort_reverse { "▲" } else { "▼" };
    let name_arrow = if app.sort_reverse { "▼" } else { "▲" };
    match col {
        Col::Name if app.sort == SortKey::Name => format!("NAME{name_arrow}"),
        Col::Name => "NAME".into(),
        Col::State => "STATE".into(),
        Col::Vcpu => "vCPU".into(),
        Col::Mem => "MEM used/size".into(),
        Col::Value(i) if SORTS[i] == Some(app.sort) => format!("{}{arrow}", LABELS[i]),
        Col::Value(i) => LABELS[i].into(),
        Col::Angle(i) => format!(
            "∠{}",
            LABELS[i].trim_end_matches("/s").trim_end_matches('%')
        ),
        Col::Arrow(_) => String::new(),
        Col::Split(1) if app.sort == SortKey::Steal => format!("{}{arrow}", SPLIT_LABELS[1]),
        Col::Split(i) => SPLIT_LABELS[i].into(),
        Col::Tags => "TAGS".into(),
        Col::Lat if app.sort == SortKey::Latency => format!("LAT{arrow}"),
        Col::Lat => "LAT".into(),
    }
}

/// Guest, steal or overhead %, `—` where libvirt has no per-vCPU counters.
fn split_value(vm: &VmSnapshot, i: usize) -> String {
    let s = vm.derived.as_ref().map(|d| d.cpu_split).unwrap_or_default();
    [s.guest, s.steal, s.overhead][i]
        .map(format::percent)
        .unwrap_or_else(|| "—".into())
}

/// Whether a column shows `metric` (its alert colours the cell).
fn col_shows(col: Col, metric: &str) -> bool {
    match col {
        Col::State => levels::state_shows(metric),
        Col::Mem => metric == "memory_used_kb",
        Col::Value(0) => metric == "cpu_usage_percent",
        Col::Value(i) => levels::card_row_shows(
            LABELS[i].trim_end_matches("/s").trim_end_matches('%'),
            metric,
        ),
        Col::Split(i) => {
            metric
                == [
                    "cpu_guest_percent",
                    "cpu_steal_percent",
                    "cpu_overhead_percent",
                ][i]
        }
        _ => false,
    }
}

fn cell(app: &App, vm: &VmSnapshot, metrics: &[cards::Metric; 5], col: Col) -> Cell<'static> {
    let t = app.theme;
    let greyed = !vm.raw.state.is_running() || app.shown().unreachable_since.is_some();
    let level = levels::worst(&app.shown().alerts, vm.uuid(), |m| col_shows(col, m));
    let style = match level {
        Some(l) => t.level(l),
        None if greyed => t.dim(),
        None => t.base(),
    };
    match col {
        Col::Name => Cell::from(Span::styled(vm.name().to_string(), style)),
        Col::State => Cell::from(Span::styled(vm.raw.state.as_str(), style)),
        Col::Tags => Cell::from(Span::styled(cards::tags_text(vm), style)),
        Col::Vcpu => Cell::from(
            Line::styled(
                vm.raw
                    .vcpus
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "—".into()),
                style,
            )
            .right_aligned(),
        ),
        Col::Mem => {
            let size = vm.raw.cur_mem_kib.or(vm.raw.max_mem_kib);
            let text = match (vm.memory, size) {
                (Some(m), Some(s)) => format!("{}/{}", format::kib(m.used_kb), format::kib(s)),
                (None, Some(s)) => format!("—/{}", format::kib(s)),
                _ => "—".into(),
            };
            Cell::from(Line::styled(text, style).right_aligned())
        }
        // The table has its own guest/steal columns: CPU% is the host's total here.
        Col::Value(0) => Cell::from(
            Line::styled(
                vm.derived
                    .as_ref()
                    .and_then(|d| d.cpu_percent)
                    .map(format::percent)
                    .unwrap_or_else(|| "—".into()),
                style,
            )
            .right_aligned(),
        ),
        Col::Value(i) => Cell::from(Line::styled(metrics[i].value.clone(), style).right_aligned()),
        Col::Split(i) => Cell::from(Line::styled(split_value(vm, i), style).right_aligned()),
        Col::Lat => Cell::from(
            Line::styled(
                cards::disk_latency_note(vm).unwrap_or_else(|| "—".into()),
                style,
            )
            .right_aligned(),
        ),
        Col::Angle(i) => {
            Cell::from(Line::from(angle_span(t, metrics[i].angle, greyed)).right_aligned())
        }
        Col::Arrow(i) => {
            let a = metrics[i].angle;
            let arrow = match format::direction(a) {
                format::Direction::Up => "▲",
                format::Direction::Down => "▼",
                format::Direction::Flat => "·",
                format::Direction::Unknown => " ",
            };
            let style = if greyed {
                t.dim()
            } else {
                t.angle(format::direction(a), a)
            };
            Cell::from(Span::styled(arrow, style))
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let shown = app.shown();
    let vis = app.visible();
    if vis.is_empty() {
        let lines = cards::empty_message(app, shown);
        frame.render_widget(ratatui::widgets::Paragraph::new(lines), area);
        return;
    }
    let t = app.theme;
    let cols = columns(area.width, shown.vms.iter().any(|v| !v.raw.tags.is_empty()));
    let rows_visible = usize::from(area.height.saturating_sub(1));
    let header = Row::new(
        cols.iter()
            .map(|(c, _)| {
                let label = header_label(app, *c);
                match c {
                    Col::Name | Col::State | Col::Tags => Cell::from(label),
                    _ => Cell::from(Line::from(label).right_aligned()),
                }
            })
            .collect::<Vec<_>>(),
    )
    .style(t.table_header());
    let rows = vis
        .iter()
        .enumerate()
        .skip(app.top)
        .take(rows_visible)
        .map(|(pos, &i)| {
            let vm = &shown.vms[i];
            let m = cards::metrics(app, vm);
            let row = Row::new(
                cols.iter()
                    .map(|(c, _)| cell(app, vm, &m, *c))
                    .collect::<Vec<_>>(),
            );
            if pos == app.selected {
                row.style(t.highlight())
            } else {
                row
            }
        })
        .collect::<Vec<_>>();
    let widths = cols.iter().map(|(c, w)| match c {
        Col::Name => Constraint::Min(*w),
        _ => Constraint::Length(*w),
    });
    frame.render_widget(
        Table::new(rows, widths).header(header).column_spacing(1),
        area,
    );
}
