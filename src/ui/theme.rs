//! Colours and text attributes. With `NO_COLOR` set, every style falls back
//! to attributes only (bold, dim, reversed), so the screen still reads: the
//! arrows and state words carry the meaning, colour only reinforces it.

use ratatui::style::{Color, Modifier, Style};

use crate::format::Direction;
use crate::model::AlertLevel;

/// The palette in use; `color == false` means `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless the `NO_COLOR` environment variable is set to anything non-empty
    /// (<https://no-color.org>).
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn base(self) -> Style {
        Style::new()
    }
    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn label(self) -> Style {
        self.fg(Color::Gray)
    }
    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    /// Trouble: drops, rejects, errors, auth failure. Bold so it stands out without colour.
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn alert(self) -> Style {
        if self.color {
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    /// A value by its alert level (Glances' colours: careful blue, warning
    /// magenta, critical red); without colour underlined, bold, reversed.
    pub fn level(self, level: AlertLevel) -> Style {
        match (level, self.color) {
            (AlertLevel::Careful, true) => Style::new().fg(Color::LightBlue),
            (AlertLevel::Warning, true) => Style::new()
                .fg(Color::LightMagenta)
                .add_modifier(Modifier::BOLD),
            (AlertLevel::Critical, true) => Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            (AlertLevel::Careful, false) => Style::new().add_modifier(Modifier::UNDERLINED),
            (AlertLevel::Warning, false) => Style::new().add_modifier(Modifier::BOLD),
            (AlertLevel::Critical, false) => {
                Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)
            }
        }
    }
    pub fn key(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn selected_border(self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
    pub fn table_header(self) -> Style {
        self.fg(Color::Cyan)
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }
    pub fn highlight(self) -> Style {
        if self.color {
            Style::new()
                .bg(Color::DarkGray)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::new().add_modifier(Modifier::REVERSED)
        }
    }

    /// Gauge fill colour by level: green, yellow above 70 %, red above 90 %.
    /// The steal segment of the CPU gauge: a colour no fill level uses.
    pub fn steal(self) -> Style {
        self.fg(Color::Magenta)
    }
    pub fn gauge(self, fraction: f64) -> Style {
        if fraction >= 0.9 {
            self.fg(Color::Red)
        } else if fraction >= 0.7 {
            self.fg(Color::Yellow)
        } else {
            self.fg(Color::Green)
        }
    }

    /// Degree rates: rising warm, falling cool; steeper is brighter and bold.
    pub fn angle(self, dir: Direction, angle: Option<f64>) -> Style {
        let steep = angle.is_some_and(|a| a.abs() >= 30.0);
        let gentle = angle.is_some_and(|a| a.abs() < 5.0);
        let style = match dir {
            Direction::Unknown | Direction::Flat => return self.dim(),
            Direction::Up if steep => self.fg(Color::LightRed),
            Direction::Up if gentle => self.fg(Color::Yellow),
            Direction::Up => self.fg(Color::LightYellow),
            Direction::Down if steep => self.fg(Color::LightCyan),
            Direction::Down if gentle => self.fg(Color::Blue),
            Direction::Down => self.fg(Color::Cyan),
        };
        if steep {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }
}
