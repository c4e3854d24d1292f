//! ASCII-only drawing for terminals that cannot show Unicode: a non-UTF-8 locale
//! (`LANG=C`, common on minimal hypervisor installs and serial consoles) or
//! `--ascii`. The views draw as usual; this pass then replaces every non-ASCII
//! cell of the finished frame (pure), so no view needs two sets of glyphs.

use ratatui::buffer::Buffer;
use unicode_width::UnicodeWidthStr;

/// Whether the locale promises UTF-8: the first of `LC_ALL`, `LC_CTYPE`, `LANG`
/// that is set and not empty decides, as setlocale(3) does; none means "C".
pub fn locale_is_utf8(lc_all: Option<&str>, lc_ctype: Option<&str>, lang: Option<&str>) -> bool {
    [lc_all, lc_ctype, lang]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
        .is_some_and(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("utf-8") || v.contains("utf8")
        })
}

/// ASCII drawing unless the locale is UTF-8; `--ascii` forces it.
pub fn wanted(flag: bool) -> bool {
    let var = |k: &str| std::env::var(k).ok();
    flag || !locale_is_utf8(
        var("LC_ALL").as_deref(),
        var("LC_CTYPE").as_deref(),
        var("LANG").as_deref(),
    )
}

/// The ASCII stand-in for one drawn character.
pub fn glyph(c: char) -> char {
    match c {
        c if c.is_ascii() => c,
        // Box drawing: lines, then corners and joints.
        '─' | '━' | '═' | '╌' | '┄' => '-',
        '│' | '┃' | '║' | '╎' | '┆' => '|',
        '╭' | '╮' | '╰' | '╯' | '┌' | '┐' | '└' | '┘' | '┏' | '┓' | '┗' | '┛' | '╔' | '╗' | '╚'
        | '╝' | '├' | '┤' | '┬' | '┴' | '┼' | '┣' | '┫' | '┳' | '┻' | '╋' => {
            '+'
        }
        // Gauges: full and at least half-full eighths fill, thinner ones hint.
        '█' | '▉' | '▊' | '▋' | '▌' => '#',
        '▍' | '▎' | '▏' => '|',
        // Sparklines, lowest to highest.
        '▁' | '▂' => '_',
        '▃' | '▄' => '-',
        '▅' | '▆' => '=',
        '▇' => '#',
        '·' | '•' | '∙' => '.',
        '▲' | '↑' => '^',
        '▼' | '↓' => 'v',
        '▶' | '►' | '→' => '>',
        '◀' | '◄' | '←' => '<',
        '■' => '=',
        '…' => '~',
        '⚠' => '!',
        '°' => 'o',
        '–' | '—' | '−' => '-',
        '×' => 'x',
        '≥' => '>',
        '≤' => '<',
        _ => '?',
    }
}

/// Rewrites every cell of a finished frame to ASCII. A wide character (CJK in a
/// VM name) becomes `?` plus a blank, so columns stay where they were.
pub fn asciify(buf: &mut Buffer) {
    let mut pad = 0usize;
    for cell in buf.content.iter_mut() {
        if pad > 0 {
            pad -= 1;
            if cell.symbol().is_empty() {
                cell.set_symbol(" ");
            }
            continue;
        }
        let sym = cell.symbol();
        if sym.is_ascii() {
            continue;
        }
        pad = sym.width().saturating_sub(1);
        let c = sym.chars().next().map_or(' ', glyph);
        cell.set_char(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::layout::Rect;

    #[test]
    fn the_first_set_locale_variable_decides() {
        assert!(locale_is_utf8(None, None, Some("en_US.UTF-8")));
        assert!(locale_is_utf8(None, Some("C.utf8"), Some("C")));
        assert!(!locale_is_utf8(Some("C"), None, Some("en_US.UTF-8")));
        assert!(!locale_is_utf8(None, None, Some("C")));
        assert!(!locale_is_utf8(None, None, None));
        assert!(!locale_is_utf8(Some(""), None, Some("POSIX")));
        assert!(locale_is_utf8(Some(""), None, Some("de_DE.utf8")));
    }

    #[test]
    fn frames_come_out_ascii_with_columns_kept() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 24, 2));
        buf.set_string(0, 0, "╭ db-数据 ─╮ ▲ 89.1°", ratatui::style::Style::new());
        buf.set_string(0, 1, "│█████▌▏··│ ▁▄▇ …", ratatui::style::Style::new());
        asciify(&mut buf);
        let rows: Vec<String> = (0..2)
            .map(|y| (0..24).map(|x| buf[(x, y)].symbol().to_string()).collect())
            .collect();
        assert_eq!(rows[0], "+ db-? ?  -+ ^ 89.1o    ");
        assert_eq!(rows[1], "|######|..| _-# ~       ");
        assert!(buf.content.iter().all(|c| c.symbol().is_ascii()));
    }
}
