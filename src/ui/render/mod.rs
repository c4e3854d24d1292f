//! The view: a pure function of (app state, snapshot, clock) onto a frame.
//!
//! `view` splits the screen and hands each area to one module: header,
//! cards or table, detail, status panel, logs, footer, and the overlays
//! (help, flush progress). Nothing here reads the clock or the environment,
//! so `TestBackend` renders are deterministic.

pub mod alerts_pane;
pub mod cards;
pub mod detail;
pub mod footer;
pub mod header;
pub mod help;
pub mod logs;
pub mod status;
pub mod table;

use std::time::SystemTime;

use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::app::{App, Screen};
use super::layout::{areas, MIN_HEIGHT, MIN_WIDTH};
use crate::model::Snapshot;

/// Draws one frame. `snap` is the live snapshot (header, status); the VMs come
/// from `app.shown()`, which is the frozen snapshot while frozen.
pub fn view(frame: &mut Frame, app: &App, snap: &Snapshot, now: SystemTime) {
    let area = frame.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area, app);
        return;
    }
    let a = areas(area, app.shape(snap));
    header::render(frame, a.header, app, snap, now);
    match &app.screen {
        Screen::List if app.table => table::render(frame, a.body, app),
        Screen::List => cards::render(frame, a.body, app),
        Screen::Detail { uuid, scroll } => detail::render(frame, a.body, app, uuid, *scroll),
    }
    if let Some(r) = a.status {
        status::render(frame, r, app, snap, now);
    }
    if let Some(r) = a.alerts {
        alerts_pane::render(frame, r, app, snap, now);
    }
    if let Some(r) = a.logs {
        logs::render(frame, r, app);
    }
    footer::render(frame, a.footer, app);
    if let Some(scroll) = app.help {
        help::render(frame, area, app, scroll);
    }
    if app.quitting.is_some() {
        status::render_flush(frame, area, app, snap, now);
    }
}

fn too_small(frame: &mut Frame, area: Rect, app: &App) {
    let t = app.theme;
    let text = vec![
        Line::styled("Terminal too small", t.bad()),
        Line::from(format!("now {}×{}", area.width, area.height)),
        Line::from(format!("enlarge to at least {MIN_WIDTH}×{MIN_HEIGHT}")),
        Line::from(vec![Span::styled("q", t.key()), Span::raw(" quits")]),
    ];
    let h = (text.len() as u16).min(area.height);
    let [mid] = Layout::vertical([Constraint::Length(h)])
        .flex(Flex::Center)
        .areas(area);
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        mid,
    );
}

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(r);
    r
}

/// Clears `r` and draws a bordered popup block, returning its inner area.
pub fn popup(frame: &mut Frame, r: Rect, block: Block) -> Rect {
    frame.render_widget(Clear, r);
    let inner = block.inner(r);
    frame.render_widget(block, r);
    inner
}
