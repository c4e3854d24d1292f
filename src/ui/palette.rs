//! Colours a terminal can show. The views use the 16 ANSI colours; a terminal
//! that declares only 8 (`TERM=linux`, the Linux console and serial consoles;
//! `TERM=screen`) gets the bright ones mapped onto the 8 base colours, with bold
//! or dim carrying the difference. The pass runs over the finished frame (pure).

use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

/// How many colours the terminal declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    /// 256 colours or more: draw as the views say.
    Full,
    /// The 16 ANSI colours.
    Ansi16,
    /// The 8 base colours only.
    Ansi8,
}

impl Palette {
    /// From `TERM` and `COLORTERM`, as terminfo declares them: `linux`, `screen`,
    /// `ansi`, `vt100`-likes and `*-8color` have 8; `*-16color` 16; `*-256color`,
    /// `*-direct` and `COLORTERM=truecolor|24bit` more.
    pub fn detect(term: Option<&str>, colorterm: Option<&str>) -> Self {
        if matches!(colorterm, Some("truecolor") | Some("24bit")) {
            return Self::Full;
        }
        let Some(term) = term else { return Self::Full };
        if term.contains("256color") || term.contains("direct") || term.contains("truecolor") {
            Self::Full
        } else if term.ends_with("16color") {
            Self::Ansi16
        } else if matches!(
            term,
            "linux" | "screen" | "ansi" | "vt220" | "vt100" | "cons25"
        ) || term.starts_with("screen.")
            || term.ends_with("8color")
        {
            Self::Ansi8
        } else {
            Self::Full
        }
    }

    pub fn from_env() -> Self {
        Self::detect(
            std::env::var("TERM").ok().as_deref(),
            std::env::var("COLORTERM").ok().as_deref(),
        )
    }
}

/// A foreground colour within the palette, and what to add so its weight stays.
fn fg(c: Color, p: Palette) -> (Color, Modifier) {
    match (p, c) {
        (Palette::Full, c) => (c, Modifier::empty()),
        (_, Color::Indexed(_) | Color::Rgb(..)) => (Color::Reset, Modifier::empty()),
        (Palette::Ansi16, c) => (c, Modifier::empty()),
        (Palette::Ansi8, Color::DarkGray) => (Color::Reset, Modifier::DIM),
        (Palette::Ansi8, Color::White) => (Color::Gray, Modifier::BOLD),
        (Palette::Ansi8, Color::LightRed) => (Color::Red, Modifier::BOLD),
        (Palette::Ansi8, Color::LightGreen) => (Color::Green, Modifier::BOLD),
        (Palette::Ansi8, Color::LightYellow) => (Color::Yellow, Modifier::BOLD),
        (Palette::Ansi8, Color::LightBlue) => (Color::Blue, Modifier::BOLD),
        (Palette::Ansi8, Color::LightMagenta) => (Color::Magenta, Modifier::BOLD),
        (Palette::Ansi8, Color::LightCyan) => (Color::Cyan, Modifier::BOLD),
        (Palette::Ansi8, c) => (c, Modifier::empty()),
    }
}

/// A background colour within the palette; `REVERSED` stands in for one it lacks.
fn bg(c: Color, p: Palette) -> (Color, Modifier) {
    match (p, c) {
        (Palette::Full, c) => (c, Modifier::empty()),
        (_, Color::Indexed(_) | Color::Rgb(..)) => (Color::Reset, Modifier::empty()),
        (Palette::Ansi16, c) => (c, Modifier::empty()),
        (Palette::Ansi8, Color::DarkGray) => (Color::Reset, Modifier::REVERSED),
        (Palette::Ansi8, Color::White) => (Color::Gray, Modifier::empty()),
        (Palette::Ansi8, Color::LightRed) => (Color::Red, Modifier::empty()),
        (Palette::Ansi8, Color::LightGreen) => (Color::Green, Modifier::empty()),
        (Palette::Ansi8, Color::LightYellow) => (Color::Yellow, Modifier::empty()),
        (Palette::Ansi8, Color::LightBlue) => (Color::Blue, Modifier::empty()),
        (Palette::Ansi8, Color::LightMagenta) => (Color::Magenta, Modifier::empty()),
        (Palette::Ansi8, Color::LightCyan) => (Color::Cyan, Modifier::empty()),
        (Palette::Ansi8, c) => (c, Modifier::empty()),
    }
}

/// Whether a colour is one of the 8 base colours (or the terminal's default).
pub fn is_base8(c: Color) -> bool {
    matches!(
        c,
        Color::Reset
            | Color::Black
            | Color::Red
            | Color::Green
            | Color::Yellow
            | Color::Blue
            | Color::Magenta
            | Color::Cyan
            | Color::Gray
    )
}

/// Maps every cell of a finished frame into the palette.
pub fn apply(buf: &mut Buffer, p: Palette) {
    if p == Palette::Full {
        return;
    }
    for cell in buf.content.iter_mut() {
        let (f, fm) = fg(cell.fg, p);
        let (b, bm) = bg(cell.bg, p);
        cell.fg = f;
        cell.bg = b;
        cell.modifier |= fm | bm;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;
    use ratatui::style::Style;

    #[test]
    fn terms_declare_their_colours() {
        assert_eq!(Palette::detect(Some("linux"), None), Palette::Ansi8);
        assert_eq!(Palette::detect(Some("screen"), None), Palette::Ansi8);
        assert_eq!(
            Palette::detect(Some("screen.xterm-new"), None),
            Palette::Ansi8
        );
        assert_eq!(
            Palette::detect(Some("xterm-16color"), None),
            Palette::Ansi16
        );
        assert_eq!(
            Palette::detect(Some("screen-256color"), None),
            Palette::Full
        );
        assert_eq!(Palette::detect(Some("tmux-256color"), None), Palette::Full);
        assert_eq!(
            Palette::detect(Some("linux"), Some("truecolor")),
            Palette::Full
        );
        assert_eq!(Palette::detect(None, None), Palette::Full);
    }

    #[test]
    fn eight_colours_keep_brightness_as_bold_and_grey_as_dim() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 3, 1));
        buf.set_string(0, 0, "a", Style::new().fg(Color::LightRed));
        buf.set_string(1, 0, "b", Style::new().fg(Color::DarkGray));
        buf.set_string(2, 0, "c", Style::new().bg(Color::DarkGray).fg(Color::White));
        apply(&mut buf, Palette::Ansi8);
        assert_eq!(
            (buf[(0, 0)].fg, buf[(0, 0)].modifier),
            (Color::Red, Modifier::BOLD)
        );
        assert_eq!(
            (buf[(1, 0)].fg, buf[(1, 0)].modifier),
            (Color::Reset, Modifier::DIM)
        );
        assert!(buf[(2, 0)].modifier.contains(Modifier::REVERSED));
        assert!(buf.content.iter().all(|c| is_base8(c.fg) && is_base8(c.bg)));
    }
}
