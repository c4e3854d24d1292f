//! Screen geometry shared by the view (`render`) and the state (`app`):
//! where the header, body, panels and footer go, and how many cards or table
//! rows the list shows, so paging and scrolling match what is drawn.

use ratatui::layout::{Constraint, Layout, Rect};

/// Smallest terminal the layout is designed for.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// A card is at least this wide: one column at 80 columns, two at 100+, three at 150+.
pub const CARD_MIN_WIDTH: u16 = 50;
/// Border, five metric rows, border.
pub const CARD_HEIGHT: u16 = 7;
/// Height of the status panel (`i`).
pub const STATUS_HEIGHT: u16 = 12;
/// Height of the alerts pane (`a`): border, heading, eight alerts, border.
pub const ALERTS_HEIGHT: u16 = 11;

/// What the geometry depends on: the header's height and which panels are open.
/// The state (`App::shape`) says it; the layout never looks at the state itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Lines of the header (`alerts::header_height`).
    pub header: u16,
    /// The status panel (`i`).
    pub status: bool,
    /// The log panel (`l`).
    pub logs: bool,
    /// The alerts pane (`a`).
    pub alerts: bool,
    /// The table instead of cards (`t`).
    pub table: bool,
}

/// Where each part of the screen goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    pub header: Rect,
    pub body: Rect,
    pub status: Option<Rect>,
    pub logs: Option<Rect>,
    pub alerts: Option<Rect>,
    pub footer: Rect,
}

pub fn areas(area: Rect, shape: Shape) -> Areas {
    let [header, middle, footer] = Layout::vertical([
        Constraint::Length(shape.header),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let mut constraints = vec![Constraint::Min(CARD_HEIGHT.min(middle.height))];
    if shape.status {
        constraints.push(Constraint::Length(STATUS_HEIGHT));
    }
    if shape.alerts {
        constraints.push(Constraint::Length(ALERTS_HEIGHT));
    }
    if shape.logs {
        constraints.push(Constraint::Length((middle.height / 3).max(6)));
    }
    let parts = Layout::vertical(constraints).split(middle);
    let mut it = parts.iter().copied();
    let body = it.next().unwrap_or(middle);
    let status = if shape.status { it.next() } else { None };
    let alerts = if shape.alerts { it.next() } else { None };
    let logs = if shape.logs { it.next() } else { None };
    Areas {
        header,
        body,
        status,
        logs,
        alerts,
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
pub fn list_geometry(area: Rect, shape: Shape) -> ListGeometry {
    let body = areas(area, shape).body;
    if shape.table {
        ListGeometry::table(body)
    } else {
        ListGeometry::cards(body)
    }
}

/// Lines the detail view shows at once (its body inside the border): one page.
pub fn detail_page(area: Rect, shape: Shape) -> u16 {
    areas(area, shape).body.height.saturating_sub(2).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_take_their_room_below_the_body() {
        let area = Rect::new(0, 0, 100, 40);
        let plain = areas(
            area,
            Shape {
                header: 3,
                ..Shape::default()
            },
        );
        assert_eq!(
            (plain.header.height, plain.body.height, plain.footer.height),
            (3, 36, 1)
        );
        assert!(plain.status.is_none() && plain.logs.is_none());
        let both = Shape {
            header: 4,
            status: true,
            logs: true,
            alerts: false,
            table: false,
        };
        let a = areas(area, both);
        assert_eq!(a.status.map(|r| r.height), Some(STATUS_HEIGHT));
        assert_eq!(a.logs.map(|r| r.height), Some(35 / 3));
        assert_eq!(a.body.height, 35 - STATUS_HEIGHT - 35 / 3);
        assert_eq!(detail_page(area, both), a.body.height - 2);
        let tall = Rect::new(0, 0, 100, 60);
        let all = areas(
            tall,
            Shape {
                alerts: true,
                ..both
            },
        );
        let pane = all.alerts.expect("the alerts pane");
        assert_eq!(pane.height, ALERTS_HEIGHT);
        assert!(all.status.unwrap().bottom() <= pane.y && pane.bottom() <= all.logs.unwrap().y);
        assert_eq!(all.body.height, 55 - STATUS_HEIGHT - ALERTS_HEIGHT - 55 / 3);
    }

    #[test]
    fn the_table_shows_one_row_per_line_and_cards_fill_columns() {
        let area = Rect::new(0, 0, 120, 40);
        let cards = list_geometry(
            area,
            Shape {
                header: 2,
                ..Shape::default()
            },
        );
        assert_eq!((cards.cols, cards.rows), (2, 37 / usize::from(CARD_HEIGHT)));
        let table = list_geometry(
            area,
            Shape {
                header: 2,
                table: true,
                ..Shape::default()
            },
        );
        assert_eq!((table.cols, table.rows), (1, 36));
    }
}
