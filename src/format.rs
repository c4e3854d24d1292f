//! Human units for people (the TUI, the status line, `vmpulse status`, health
//! messages): binary prefixes, percentages, degree rates, ages and text sparklines. Pure functions, so they are unit-tested here.

use std::time::{Duration, SystemTime};

const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

pub use crate::model::vm_count;

/// `value` in its binary unit: the scaled number, the unit's index and how many
/// decimals [`bytes`] shows of it.
fn scaled(value: f64) -> (f64, usize, usize) {
    let mut v = value;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    let decimals = match (unit, v) {
        (0, _) => 0,
        (_, v) if v < 10.0 => 2,
        (_, v) if v < 100.0 => 1,
        _ => 0,
    };
    (v, unit, decimals)
}

/// `1536.0` → `"1.5 KiB"`: binary prefixes, three significant digits at most.
pub fn bytes(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        return "—".into();
    }
    let (v, unit, decimals) = scaled(value);
    format!("{v:.decimals$} {}", UNITS[unit])
}

/// `value` rounded as [`bytes`] shows it (sorting: what looks equal is equal).
pub fn bytes_as_shown(value: f64) -> f64 {
    if !value.is_finite() || value < 0.0 {
        return value;
    }
    let (v, unit, decimals) = scaled(value);
    let step = 10f64.powi(-(decimals as i32));
    (v / step).round() * step * 1024f64.powi(unit as i32)
}

/// `p` rounded as [`percent`] shows it.
pub fn percent_as_shown(p: f64) -> f64 {
    (p * 10.0).round() / 10.0
}

/// Bytes per second, e.g. `"12.3 MiB/s"`.
pub fn rate(bytes_per_sec: f64) -> String {
    format!("{}/s", bytes(bytes_per_sec))
}

/// A KiB count as a size, e.g. `2097152` → `"2.00 GiB"`.
pub fn kib(kib: u64) -> String {
    bytes(kib as f64 * 1024.0)
}

/// `42.123` → `"42.1%"`.
pub fn percent(p: f64) -> String {
    format!("{p:.1}%")
}

/// A request latency in milliseconds, at most 6 characters: `"0.42ms"`,
/// `"4.20ms"`, `"42.1ms"`, `"421ms"`, `"4.2s"`.
pub fn latency_ms(ms: f64) -> String {
    match ms {
        m if m < 9.995 => format!("{m:.2}ms"),
        m if m < 99.95 => format!("{m:.1}ms"),
        m if m < 999.5 => format!("{m:.0}ms"),
        m => format!("{:.1}s", m / 1000.0),
    }
}

/// The latency as [`latency_ms`] shows it, for sorting.
pub fn latency_as_shown(ms: f64) -> f64 {
    match ms {
        m if m < 9.995 => (m * 100.0).round() / 100.0,
        m if m < 99.95 => (m * 10.0).round() / 10.0,
        m if m < 999.5 => m.round(),
        m => (m / 100.0).round() * 100.0,
    }
}

/// Operations per second, compact: `"3.0/s"`, `"1.2k/s"`.
pub fn ops(per_sec: f64) -> String {
    format!("{}/s", count(per_sec))
}

/// A large counter compactly: `999`, `1.2k`, `3.4M`, `5.6G` (decimal: these are counts).
pub fn count(n: f64) -> String {
    let a = n.abs();
    if a < 1000.0 {
        if n.fract() == 0.0 {
            format!("{n:.0}")
        } else {
            format!("{n:.1}")
        }
    } else if a < 1e6 {
        format!("{:.1}k", n / 1e3)
    } else if a < 1e9 {
        format!("{:.1}M", n / 1e6)
    } else if a < 1e12 {
        format!("{:.1}G", n / 1e9)
    } else {
        format!("{:.1}T", n / 1e12)
    }
}

/// Which way a degree rate points; carries the meaning without colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Flat,
    /// No derived value yet (first sample, inactive VM).
    Unknown,
}

/// Angles closer to zero than this are shown as flat: rounding noise, not a trend.
pub const FLAT_DEG: f64 = 0.05;

pub fn direction(angle: Option<f64>) -> Direction {
    match angle {
        None => Direction::Unknown,
        Some(a) if !a.is_finite() => Direction::Unknown,
        Some(a) if a >= FLAT_DEG => Direction::Up,
        Some(a) if a <= -FLAT_DEG => Direction::Down,
        Some(_) => Direction::Flat,
    }
}

/// `Some(12.5)` → `"▲ 12.5°"`, `Some(-3.2)` → `"▼  3.2°"`, `Some(0.0)` → `"·  0.0°"`,
/// `None` → `"—"`. Fixed width (7 columns) except for `None`, so columns line up.
pub fn angle(angle: Option<f64>) -> String {
    match (direction(angle), angle) {
        (Direction::Unknown, _) | (_, None) => "—".into(),
        (Direction::Up, Some(a)) => format!("▲{:>5.1}°", a.abs()),
        (Direction::Down, Some(a)) => format!("▼{:>5.1}°", a.abs()),
        (Direction::Flat, Some(_)) => format!("·{:>5.1}°", 0.0),
    }
}

/// How long ago `then` was, relative to `now`: `"0.4s"`, `"12s"`, `"3m05s"`, `"2h10m"`.
/// A time in the future (clock step) reads as `"0.0s"`.
pub fn age(then: SystemTime, now: SystemTime) -> String {
    duration(now.duration_since(then).unwrap_or_default())
}

/// Wall-clock time of day, UTC, `HH:MM:SS` (for "unreachable since ...").
pub fn clock(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        % 86_400;
    format!(
        "{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// A duration compactly: `"0.4s"`, `"12s"`, `"3m05s"`, `"2h10m"`, `"3d04h"`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else {
        let total = d.as_secs();
        let (m, sec) = (total / 60, total % 60);
        if m < 60 {
            format!("{m}m{sec:02}s")
        } else if m < 24 * 60 {
            format!("{}h{:02}m", m / 60, m % 60)
        } else {
            format!("{}d{:02}h", m / 1440, (m % 1440) / 60)
        }
    }
}

/// A poll interval: `"1s"`, `"0.5s"`, `"250ms"`.
pub fn interval(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 500 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

const BLOCKS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];

/// A horizontal bar `width` cells wide filled to `fraction` (clamped to 0..1),
/// with eighth-cell resolution. Unfilled cells are `·` so the bar reads
/// without colour.
pub fn bar(fraction: f64, width: usize) -> (String, String) {
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * width as f64 * 8.0).round() as usize;
    let full = eighths / 8;
    let rem = eighths % 8;
    let mut filled = "█".repeat(full);
    let mut used = full;
    if rem > 0 && used < width {
        filled.push(BLOCKS[rem - 1]);
        used += 1;
    }
    let empty = "·".repeat(width.saturating_sub(used));
    (filled, empty)
}

/// A bar with a second segment after the first: `fraction` filled as in
/// [`bar`], then `extra` in whole `▒` cells (so it reads without colour),
/// then `·`. Returns (filled, extra, empty). The total is clamped to 0..1.
pub fn bar_with_extra(fraction: f64, extra: f64, width: usize) -> (String, String, String) {
    let (filled, _) = bar(fraction, width);
    let used = filled.chars().count();
    let total = if (fraction + extra).is_finite() {
        (fraction + extra).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let end = ((total * width as f64).round() as usize).clamp(used, width);
    // A visible extra (≥ half a cell) always gets at least one cell.
    let end = if end == used && extra * width as f64 >= 0.5 && used < width {
        used + 1
    } else {
        end
    };
    (filled, "▒".repeat(end - used), "·".repeat(width - end))
}

const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// A one-line sparkline of the last `width` values against `max` (or the
/// values' own maximum when `max` is `None`). Gaps (`None`) are blanks.
pub fn sparkline(values: &[Option<f64>], width: usize, max: Option<f64>) -> String {
    let start = values.len().saturating_sub(width);
    let tail = &values[start..];
    let top = max
        .unwrap_or_else(|| tail.iter().flatten().copied().fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let mut out = String::with_capacity(width * 3);
    for _ in 0..width.saturating_sub(tail.len()) {
        out.push(' ');
    }
    for v in tail {
        match v {
            Some(v) if v.is_finite() => {
                let idx = ((v / top).clamp(0.0, 1.0) * 7.0).round() as usize;
                out.push(SPARKS[idx]);
            }
            _ => out.push(' '),
        }
    }
    out
}

/// Cuts `s` to at most `width` characters, ending in `…` when cut.
pub fn truncate(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        s.to_string()
    } else if width == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(width - 1).collect();
        out.push('…');
        out
    }
}

/// `2025-11-11T12:34:56.789Z`: UTC with milliseconds (truncated), the one timestamp
/// format of the control API and of `--format json|csv`.
pub fn rfc3339(t: SystemTime) -> String {
    match jiff::Timestamp::try_from(t) {
        Ok(ts) => rfc3339_of(ts),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// [`rfc3339`] of `ns` nanoseconds since the Unix epoch (a line's timestamp).
pub fn rfc3339_ns(ns: i64) -> String {
    match jiff::Timestamp::from_nanosecond(i128::from(ns)) {
        Ok(ts) => rfc3339_of(ts),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

fn rfc3339_of(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses what [`rfc3339`] wrote.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    s.parse::<jiff::Timestamp>().ok().map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    #[test]
    fn latency_fits_six_columns_at_every_magnitude() {
        use super::{latency_as_shown, latency_ms};
        let cases = [
            (0.4249, "0.42ms"),
            (4.2, "4.20ms"),
            (9.999, "10.0ms"),
            (42.13, "42.1ms"),
            (99.96, "100ms"),
            (421.4, "421ms"),
            (999.6, "1.0s"),
            (4210.0, "4.2s"),
            (123_456.0, "123.5s"),
        ];
        for (ms, want) in cases {
            assert_eq!(latency_ms(ms), want, "{ms}");
            if ms < 100_000.0 {
                assert!(latency_ms(ms).chars().count() <= 6, "{ms}");
            }
        }
        assert_eq!(latency_as_shown(0.4249), 0.42);
        assert_eq!(latency_as_shown(421.4), 421.0);
        assert_eq!(latency_as_shown(4210.0), 4200.0);
    }

    use super::*;

    #[test]
    fn rfc3339_truncates_to_milliseconds_on_both_sides_of_the_epoch() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_ns(1_699_868_400_123_456_789),
            "2023-11-13T09:40:00.123Z"
        );
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(rfc3339_ns(-1_000_000), "1969-12-31T23:59:59.999Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_699_868_400_123_456_789);
        assert_eq!(rfc3339(t), rfc3339_ns(1_699_868_400_123_456_789));
        assert_eq!(
            parse_rfc3339(&rfc3339(t)),
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_699_868_400_123))
        );
    }

    #[test]
    fn values_round_as_they_are_shown() {
        for v in [
            0.0,
            999.4,
            1536.0,
            5.004 * 1024.0 * 1024.0,
            42.04 * 1024.0,
            123.4e9,
        ] {
            assert_eq!(bytes(bytes_as_shown(v)), bytes(v), "{v}");
        }
        assert_eq!(
            bytes_as_shown(5.001 * 1024.0 * 1024.0),
            bytes_as_shown(5.004 * 1024.0 * 1024.0)
        );
        assert_eq!(percent_as_shown(5.01), percent_as_shown(5.04));
        assert_ne!(percent_as_shown(5.01), percent_as_shown(5.11));
    }

    #[test]
    fn vm_counts_are_singular_for_one() {
        assert_eq!(vm_count(1), "1 VM");
        assert_eq!(vm_count(0), "0 VMs");
        assert_eq!(vm_count(2), "2 VMs");
    }

    #[test]
    fn bytes_use_binary_prefixes() {
        assert_eq!(bytes(0.0), "0 B");
        assert_eq!(bytes(1023.0), "1023 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes(12.5 * 1024.0 * 1024.0), "12.5 MiB");
        assert_eq!(bytes(300.0 * 1024.0 * 1024.0 * 1024.0), "300 GiB");
        assert_eq!(bytes(f64::NAN), "—");
        assert_eq!(rate(2048.0), "2.00 KiB/s");
        assert_eq!(kib(2 * 1024 * 1024), "2.00 GiB");
    }

    #[test]
    fn angles_keep_sign_and_read_without_colour() {
        assert_eq!(angle(Some(12.5)), "▲ 12.5°");
        assert_eq!(angle(Some(-3.2)), "▼  3.2°");
        assert_eq!(angle(Some(0.01)), "·  0.0°");
        assert_eq!(angle(Some(-0.0)), "·  0.0°");
        assert_eq!(angle(None), "—");
        assert_eq!(angle(Some(f64::NAN)), "—");
        assert_eq!(direction(Some(89.9)), Direction::Up);
        assert_eq!(direction(Some(-45.0)), Direction::Down);
    }

    #[test]
    fn ages_and_durations() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(age(t0, t0 + Duration::from_millis(400)), "0.4s");
        assert_eq!(age(t0 + Duration::from_secs(5), t0), "0.0s");
        assert_eq!(duration(Duration::from_secs(185)), "3m05s");
        assert_eq!(duration(Duration::from_secs(7800)), "2h10m");
        assert_eq!(duration(Duration::from_secs(3 * 86400 + 4 * 3600)), "3d04h");
        assert_eq!(interval(Duration::from_millis(250)), "250ms");
        assert_eq!(interval(Duration::from_millis(1500)), "1.5s");
        assert_eq!(interval(Duration::from_secs(2)), "2s");
    }

    #[test]
    fn bars_have_exact_width() {
        for f in [0.0, 0.01, 0.33, 0.5, 0.999, 1.0, 2.0, -1.0, f64::NAN] {
            let (a, b) = bar(f, 10);
            assert_eq!(a.chars().count() + b.chars().count(), 10, "fraction {f}");
        }
        assert_eq!(bar(0.5, 4), ("██".to_string(), "··".to_string()));
        assert_eq!(bar(1.0, 3).1, "");
    }

    #[test]
    fn sparkline_scales_and_pads() {
        let s = sparkline(&[Some(0.0), Some(50.0), Some(100.0), None], 6, Some(100.0));
        assert_eq!(s, "  ▁▅█ ");
        let long: Vec<_> = (0..100).map(|i| Some(i as f64)).collect();
        assert_eq!(sparkline(&long, 10, None).chars().count(), 10);
    }

    #[test]
    fn counts_and_truncation() {
        assert_eq!(count(999.0), "999");
        assert_eq!(count(1234.0), "1.2k");
        assert_eq!(count(5_600_000_000.0), "5.6G");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn bar_with_extra_segment() {
        let (f, e, rest) = bar_with_extra(0.5, 0.2, 10);
        assert_eq!(
            (f.as_str(), e.as_str(), rest.as_str()),
            ("█████", "▒▒", "···")
        );
        // A small steal still shows one cell; the total never overflows.
        let (_, e, _) = bar_with_extra(0.5, 0.06, 10);
        assert_eq!(e, "▒");
        let (f, e, rest) = bar_with_extra(0.9, 0.5, 10);
        assert_eq!(
            (f.chars().count() + e.chars().count(), rest.as_str()),
            (10, "")
        );
    }
}
