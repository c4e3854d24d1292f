//! The alerts pane (`a`): active alerts, worst first, then the recently cleared
//! ones greyed; each with its VM, metric, level, since when, latest value and peak.
//! Levels with alert thresholds come from the engine (`Snapshot.alerts`).

use std::time::SystemTime;

use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::Frame;

use crate::alert::text::number;
use crate::format;
use crate::model::{Alert, Snapshot};
use crate::ui::app::App;

/// One row: level, VM, metric, since (age), value / threshold, peak, cleared.
fn row(app: &App, a: &Alert, now: SystemTime) -> Row<'static> {
    let t = app.theme;
    let cleared = a.cleared.is_some();
    let level = Span::styled(
        a.level.as_str().to_uppercase(),
        if cleared { t.dim() } else { t.level(a.level) },
    );
    let text = if cleared { t.dim() } else { t.base() };
    let state = match a.cleared {
        Some(c) => format!("cleared {} ago", format::age(c, now)),
        None => "active".into(),
    };
    let peak = if a.peak_level > a.level {
        format!("{} ({})", number(a.peak), a.peak_level.as_str())
    } else {
        number(a.peak)
    };
    Row::new(vec![
        Cell::from(level),
        Cell::from(Span::styled(a.vm.clone(), text)),
        Cell::from(Span::styled(a.metric.clone(), text)),
        Cell::from(Span::styled(
            format!("{} ago", format::age(a.since, now)),
            text,
        )),
        Cell::from(
            Line::styled(
                format!("{} / {}", number(a.value), number(a.threshold)),
                text,
            )
            .right_aligned(),
        ),
        Cell::from(Line::styled(peak, text).right_aligned()),
        Cell::from(Span::styled(state, text)),
    ])
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let t = app.theme;
    let board = &snap.alerts;
    let title = format!(
        " Alerts (a): {} active, {} recent ",
        board.active.len(),
        board.recent.len()
    );
    let block = Block::bordered()
        .border_style(t.label())
        .title(Span::styled(title, t.title()));
    if board.active.is_empty() && board.recent.is_empty() {
        let text = Line::styled(
            "No alert. Levels are set per metric in [alerts.<metric>] (see config.example.toml).",
            t.dim(),
        );
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let header = Row::new([
        "LEVEL",
        "VM",
        "METRIC",
        "SINCE",
        "VALUE / LIMIT",
        "PEAK",
        "",
    ])
    .style(t.table_header());
    let rows: Vec<Row> = board
        .active
        .iter()
        .chain(&board.recent)
        .map(|a| row(app, a, now))
        .collect();
    let widths = [
        Constraint::Length(8),
        Constraint::Min(12),
        Constraint::Length(22),
        Constraint::Length(10),
        Constraint::Length(15),
        Constraint::Length(16),
        Constraint::Length(16),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .block(block),
        area,
    );
}
