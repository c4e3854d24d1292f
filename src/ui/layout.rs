//! Screen geometry shared by the view (`render`) and the state (`app`):
//! where the header, body, panels and footer go, and how many cards or table
//! rows the list shows, so paging and scrolling match what is drawn.

use ratatui::layout::{Constraint, Layout, Rect};

use super::app::App;
use super::render::header;
use crate::model::Snapshot;

/// Smallest terminal the layout is designed for.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// A card is at least this wide: one column at 80 columns, two at 100+, three at 150+.
pub const CARD_MIN_WIDTH: u16 = 50;
/// Border, five metric rows, border.
pub const CARD_HEIGHT: u16 = 7;
/// Height of the status panel (`i`).
pub const STATUS_HEIGHT: u16 = 12;

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub body: Rect,
    pub status: Option<Rect>,
    pub logs: Option<Rect>,
    pub footer: Rect,
}

pub fn areas(area: Rect, app: &App, snap: &Snapshot) -> Areas {
    let header_h = header::height(app, snap);
    let [header, middle, footer] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut constraints = vec![Constraint::Min(CARD_HEIGHT.min(middle.height))];
    if app.show_status {
        constraints.push(Constraint::Length(STATUS_HEIGHT));
    }
    if app.show_logs {
        constraints.push(Constraint::Length((middle.height / 3).max(6)));
    }
    let parts = Layout::vertical(constraints).split(middle);
    let mut it = parts.iter().copied();
    let body = it.next().unwrap_or(middle);
    let status = if app.show_status { it.next() } else { None };
    let logs = if app.show_logs { it.next() } else { None };
    Areas {
        header,
        body,
        status,
        logs,
        footer,
    }
}

/// How many VMs the list shows: `cols` per row, `rows` rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListGeometry {
    pub cols: usize,
    pub rows: usize,
}

impl ListGeometry {
    /// Cards in `body`: as many columns of [`CARD_MIN_WIDTH`] and rows of
    /// [`CARD_HEIGHT`] as fit (at least one of each).
    pub fn cards(body: Rect) -> Self {
        Self {
            cols: usize::from(body.width / CARD_MIN_WIDTH).max(1),
            rows: usize::from(body.height / CARD_HEIGHT).max(1),
        }
    }

    /// Table rows in `body` below the header row.
    pub fn table(body: Rect) -> Self {
        Self {
            cols: 1,
            rows: usize::from(body.height.saturating_sub(1)).max(1),
        }
    }
}

/// The list's geometry for a terminal of `area`, as the view will draw it.
pub fn list_geometry(area: Rect, app: &App, snap: &Snapshot) -> ListGeometry {
    let body = areas(area, app, snap).body;
    if app.table {
        ListGeometry::table(body)
    } else {
        ListGeometry::cards(body)
    }
}

/// Lines the detail view shows at once (its body inside the border): one page.
pub fn detail_page(area: Rect, app: &App, snap: &Snapshot) -> u16 {
    areas(area, app, snap).body.height.saturating_sub(2).max(1)
}
