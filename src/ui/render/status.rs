//! The status panel (`i`): writer queue and counters, collector counters,
//! last errors; trouble in red (and bold, for NO_COLOR). Also the flush
//! progress shown while quitting.

use std::time::SystemTime;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::{centered, header, popup};
use crate::format;
use crate::model::{Snapshot, SourceState, WriterState};
use crate::ui::app::App;
use crate::ui::theme::Theme;

fn kv(t: Theme, key: &str, value: String, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:<16}"), t.label()),
        Span::styled(value, style),
    ])
}

/// Red when non-zero.
fn trouble(t: Theme, n: u64) -> Style {
    if n > 0 {
        t.bad()
    } else {
        t.base()
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let t = app.theme;
    let w = &snap.writer;
    let c = &snap.collector;
    let block = Block::bordered()
        .border_style(t.label())
        .title(Span::styled(" Status (i) ", t.title()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [cols, errs] = Layout::vertical([Constraint::Length(8), Constraint::Min(0)]).areas(inner);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(cols);

    let mut summary = header::writer_spans(app, snap);
    // State word only here; the endpoint gets its own (truncated) row.
    summary.truncate(1);
    let mut wl = vec![Line::from(
        std::iter::once(Span::styled(format!("{:<16}", "writer"), t.label()))
            .chain(summary)
            .collect::<Vec<_>>(),
    )];
    let target = match &w.state {
        WriterState::Output { target } => Some(target.clone()),
        _ => w.endpoint.clone(),
    };
    if let Some(target) = target {
        let room = usize::from(left.width).saturating_sub(17);
        wl.push(kv(t, "endpoint", format::truncate(&target, room), t.base()));
    }
    let queue_style = if w.queue_capacity > 0 && w.queue_depth * 10 >= w.queue_capacity * 9 {
        t.bad()
    } else {
        t.base()
    };
    // The spool shares the queue's row: both are "lines waiting".
    let spool = w.spool.as_ref().map_or(String::new(), |sp| {
        let age = sp.oldest.map_or(String::new(), |t| {
            format!(", oldest {}", format::age(t, now))
        });
        let down = match sp.state {
            crate::model::SpoolState::Active => "",
            _ => " (spool unavailable, memory only)",
        };
        format!(
            "; spool {} ({} B{age}), replayed {}, segs dropped {}{down}",
            sp.lines, sp.bytes, sp.lines_replayed, sp.segments_dropped
        )
    });
    wl.push(kv(
        t,
        "queue",
        format!("{} / {} lines{spool}", w.queue_depth, w.queue_capacity),
        queue_style,
    ));
    wl.push(kv(
        t,
        "written",
        format!(
            "{} lines ({} in flight)",
            w.lines_written, w.requests_in_flight
        ),
        t.base(),
    ));
    wl.push(kv(
        t,
        "dropped",
        w.lines_dropped.to_string(),
        trouble(t, w.lines_dropped),
    ));
    wl.push(kv(
        t,
        "rejected",
        w.lines_rejected.to_string(),
        trouble(t, w.lines_rejected),
    ));
    wl.push(kv(t, "retries", w.write_retries.to_string(), t.base()));
    let auth = matches!(w.state, WriterState::AuthFailed);
    wl.push(kv(
        t,
        "last write OK",
        w.last_write_ok
            .map(|at| format!("{} ago", format::age(at, now)))
            .unwrap_or_else(|| "never".into()),
        if auth { t.bad() } else { t.base() },
    ));
    frame.render_widget(Paragraph::new(wl), left);

    let source = match &snap.source {
        SourceState::Connecting => Span::styled("connecting…", t.warn()),
        SourceState::Connected => Span::styled("connected", t.good()),
        SourceState::Failed(_) => Span::styled("unreachable (retrying)", t.bad()),
    };
    let cl = vec![
        Line::from(vec![
            Span::styled(format!("{:<16}", "libvirt"), t.label()),
            source,
        ]),
        kv(t, "collections", c.total_collections.to_string(), t.base()),
        kv(
            t,
            "errors",
            c.total_errors.to_string(),
            trouble(t, c.total_errors),
        ),
        kv(
            t,
            "skipped items",
            c.skipped_items.to_string(),
            trouble(t, c.skipped_items),
        ),
        kv(t, "VMs monitored", c.vms_monitored.to_string(), t.base()),
        kv(
            t,
            "stuck monitors",
            format!(
                "{} now ({} VM-cycles)",
                c.monitor_stuck_vms, c.monitor_stuck_samples
            ),
            trouble(t, c.monitor_stuck_vms as u64),
        ),
        kv(
            t,
            "last collection",
            match (c.last_collection_time, c.last_collection_ms) {
                (Some(at), Some(ms)) => format!("{} ago, took {ms:.0} ms", format::age(at, now)),
                (Some(at), None) => format!("{} ago", format::age(at, now)),
                _ => "none yet".into(),
            },
            if header::is_stale(snap, now) {
                t.bad()
            } else {
                t.base()
            },
        ),
        kv(
            t,
            "sampling",
            if c.used_bulk {
                "bulk (GetAllDomainStats)".into()
            } else {
                "per-domain calls".into()
            },
            t.base(),
        ),
    ];
    frame.render_widget(Paragraph::new(cl), right);

    let mut el = Vec::new();
    let err_line = |label: &str, e: &Option<String>| match e {
        Some(e) => Line::from(vec![
            Span::styled(format!("{label:<16}"), t.label()),
            Span::styled(e.clone(), t.bad()),
        ]),
        None => Line::from(vec![
            Span::styled(format!("{label:<16}"), t.label()),
            Span::styled("none", t.dim()),
        ]),
    };
    el.push(err_line("writer error", &w.last_error));
    el.push(err_line("collector error", &c.last_error));
    frame.render_widget(Paragraph::new(el).wrap(Wrap { trim: true }), errs);
}

/// Popup while quitting: how many lines are left to flush.
pub fn render_flush(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let Some(q) = &app.quitting else { return };
    let t = app.theme;
    let depth = snap.writer.queue_depth;
    let r = centered(area, 60, 7);
    let inner = popup(
        frame,
        r,
        Block::bordered()
            .border_style(t.warn())
            .title(Span::styled(" Quitting ", t.warn())),
    );
    let target = match &snap.writer.state {
        WriterState::Off { .. } => "nowhere (writer off)".to_string(),
        WriterState::Output { target } => target.clone(),
        _ => snap
            .writer
            .endpoint
            .clone()
            .unwrap_or_else(|| "InfluxDB".into()),
    };
    let done = q.initial_depth.saturating_sub(depth);
    let fraction = if q.initial_depth == 0 {
        1.0
    } else {
        done as f64 / q.initial_depth as f64
    };
    let bar_w = usize::from(inner.width.saturating_sub(2));
    let (filled, empty) = format::bar(fraction, bar_w);
    let lines = vec![
        Line::from(format!("flushing {depth} lines to {target}…")),
        Line::from(vec![
            Span::raw(" "),
            Span::styled(filled, t.good()),
            Span::styled(empty, t.dim()),
        ]),
        Line::from(format!(
            "{} elapsed ({})",
            format::age(q.started, now),
            q.reason.label()
        )),
        Line::styled("Ctrl-C again abandons the flush.", t.dim()),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), inner);
}
