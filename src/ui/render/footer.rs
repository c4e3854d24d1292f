//! The footer: the filter being typed, or key hints from the binding table;
//! on the right the sort order, the gauge scale and "VMs a–b of N".

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::format;
use crate::ui::app::{App, Ceiling, Screen};
use crate::ui::keys::{hints, Context};
use crate::ui::theme::Theme;

/// `key hint` pairs as spans, as many as fit in `avail` columns.
fn hint_spans(t: Theme, contexts: &[Context], avail: usize) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    let mut used = 0usize;
    for (key, hint) in hints(contexts) {
        let w = key.chars().count() + hint.chars().count() + 2;
        if used + w > avail {
            break;
        }
        used += w;
        spans.push(Span::styled(key, t.key()));
        spans.push(Span::raw(format!(" {hint} ")));
    }
    spans
}

/// `"VMs 4–6 of 200"`, or `"0 of 200"` when the filter hides everything.
pub fn position(app: &App) -> String {
    let n = app.visible().len();
    let total = app.shown().vms.len();
    if n == 0 {
        return format!("0 of {total}");
    }
    let geo = app.geometry();
    let first = app.top * geo.cols + 1;
    let last = ((app.top + geo.rows) * geo.cols).min(n);
    let of = if n == total {
        format!("{n}")
    } else {
        format!("{n} (filtered from {total})")
    };
    format!("VMs {first}–{last} of {of}")
}

pub fn ceiling_label(c: Ceiling) -> String {
    match c {
        Ceiling::Fixed(v) => format!("{} (fixed)", format::rate(v)),
        Ceiling::Peak(v) => format!("{} (peak)", format::rate(v)),
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let mut right = Vec::new();
    if matches!(app.screen, Screen::List) {
        let arrow = match (app.sort, app.sort_reverse) {
            (crate::ui::keys::SortKey::Name, false) | (_, true) => "▲",
            _ => "▼",
        };
        right.push(format!("sort {}{arrow}", app.sort.label()));
        right.push(position(app));
    }
    let right = right.join(" · ");
    let right_w = right.chars().count() as u16 + 1;
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_w)]).areas(area);

    let avail = usize::from(left_area.width);
    let left = if app.filter_editing {
        let mut spans = vec![
            Span::styled("/", t.key()),
            Span::raw(app.filter.clone()),
            Span::styled("█", t.key()),
            Span::raw("  "),
        ];
        let used = app.filter.chars().count() + 4;
        spans.extend(hint_spans(
            t,
            &[Context::Filter],
            avail.saturating_sub(used),
        ));
        Line::from(spans)
    } else if app.logs_focused && app.show_logs {
        let mut spans = vec![Span::styled("log pane focused  ", t.key())];
        spans.extend(hint_spans(t, &[Context::Logs], avail.saturating_sub(18)));
        Line::from(spans)
    } else {
        Line::from(hint_spans(t, &[Context::Global, Context::List], avail))
    };
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(
        Paragraph::new(Line::styled(right, t.label()).right_aligned()),
        right_area,
    );
}
