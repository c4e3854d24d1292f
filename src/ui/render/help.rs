//! The help overlay (`?`): every key binding, gauge scales and legend, in one
//! or two columns (keys first in one); scrolls with j/k when the terminal is short.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};
use ratatui::Frame;

use super::footer::ceiling_label;
use super::popup;
use crate::ui::app::App;
use crate::ui::help::{sections, Section, LEGEND};
use crate::ui::theme::Theme;

fn section_lines(t: Theme, s: &Section, key_w: usize) -> Vec<Line<'static>> {
    let mut out = vec![Line::styled(s.title.to_string(), t.title())];
    for (keys, help) in &s.rows {
        out.push(Line::from(vec![
            Span::styled(format!("  {keys:<key_w$} "), t.key()),
            Span::raw(help.to_string()),
        ]));
    }
    out.push(Line::raw(""));
    out
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, scroll: u16) {
    let t = app.theme;
    let r = Rect::new(
        area.x + 1,
        area.y + 1,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    );
    let inner = popup(
        frame,
        r,
        Block::bordered()
            .border_style(t.selected_border())
            .title(Span::styled(
                " Help — Esc or ? closes, j/k scroll ",
                t.title(),
            )),
    );
    let secs = sections();
    let key_w = secs
        .iter()
        .flat_map(|s| s.rows.iter().map(|(k, _)| k.chars().count()))
        .max()
        .unwrap_or(4);

    let mut intro = vec![
        Line::from(vec![
            Span::styled("Gauges: ", t.title()),
            Span::raw(format!(
                "DISK 100% = {}; RX/TX 100% = {}. ",
                ceiling_label(app.disk_ceiling),
                ceiling_label(app.net_ceiling)
            )),
            Span::styled(
                "peak = busiest VM's peak over the history window; fixed = ui.disk_ceiling / ui.net_ceiling.",
                t.dim(),
            ),
        ]),
    ];
    intro.extend(LEGEND.iter().map(|l| Line::raw(*l)));
    intro.push(Line::raw(""));
    let intro_h = intro.len() as u16 + 1;
    let _ = inner.height;

    // Two columns when there is room for the longest row twice.
    let longest = secs
        .iter()
        .flat_map(|s| s.rows.iter().map(|(_, h)| h.chars().count()))
        .max()
        .unwrap_or(20)
        + key_w
        + 4;
    let two = usize::from(inner.width) >= 2 * longest + 2;
    if two {
        let [intro_area, body] =
            Layout::vertical([Constraint::Length(intro_h), Constraint::Min(0)]).areas(inner);
        frame.render_widget(Paragraph::new(intro).wrap(Wrap { trim: true }), intro_area);
        let total: usize = secs.iter().map(|s| s.rows.len() + 2).sum();
        let mut left = Vec::new();
        let mut right = Vec::new();
        for s in &secs {
            let lines = section_lines(t, s, key_w);
            if left.len() + lines.len() / 2 < total / 2 {
                left.extend(lines);
            } else {
                right.extend(lines);
            }
        }
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(body);
        frame.render_widget(Paragraph::new(left).scroll((scroll, 0)), l);
        frame.render_widget(Paragraph::new(right).scroll((scroll, 0)), r);
    } else {
        // Short or narrow terminal: one scrolling column, the keys first (what
        // `?` is pressed for), the gauge scales and the glossary after them.
        let mut lines: Vec<Line> = secs
            .iter()
            .flat_map(|s| section_lines(t, s, key_w))
            .collect();
        lines.extend(intro);
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0)),
            inner,
        );
    }
}
