//! The header: host and URI, VM count, collection state, poll interval,
//! writer state, age and duration of the last collection, the host's
//! capacity on one line (parts dropped by priority to fit the width), and a
//! one-line alert when something needs the operator (drops, rejects, errors, auth).

use std::time::{Duration, SystemTime};

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::format;
use crate::model::{AlertLevel, Origin, Snapshot, WriterState};
use crate::schema::hypervisor::HostFigures;
use crate::ui::alerts::alerts;
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// One part of the host line; when the line is too wide the parts with the
/// highest `drop` go first (the last of them first).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    pub text: String,
    pub drop: u8,
}

/// The host line's parts, in display order:
/// `16 CPU · vCPU 48/16 · VM CPU 41% · steal ≤2.1% · mem 23.0/64.0 GiB · VM mem 62% ·
/// NUMA free 20.2G 18.5G · huge 2M 512/1024 1G 0/4 · libvirt 9.0.0`
/// (vCPUs assigned over host CPUs; VM CPU: the VMs' share of the host's CPUs;
/// steal: the worst VM's; VM mem: memory assigned over host memory; huge pages free/total).
pub fn host_parts(snap: &Snapshot) -> Option<Vec<Part>> {
    let h = snap.host.as_ref()?;
    let f = HostFigures::of(h, &snap.vms);
    let part = |drop, text: String| Part { text, drop };
    let whole = |p: Option<f64>| p.map_or("—".into(), |p| format!("{p:.0}%"));
    let mut parts = vec![
        part(0, format!("{} CPU", h.cpus)),
        part(1, format!("vCPU {}/{}", f.vcpus_assigned, h.cpus)),
        part(1, format!("VM CPU {}", whole(f.vms_cpu_percent()))),
    ];
    if let Some(st) = f.steal_percent_max {
        parts.push(part(2, format!("steal ≤{st:.1}%")));
    }
    parts.push(part(
        0,
        match h.memory_used_kib {
            Some(u) => format!("mem {}", kib_pair(u, h.memory_total_kib)),
            None => format!("mem {}", format::kib(h.memory_total_kib)),
        },
    ));
    parts.push(part(
        1,
        format!("VM mem {}", whole(f.memory_assigned_percent())),
    ));
    if !h.numa_free_kib.is_empty() {
        let free: Vec<String> = h.numa_free_kib.iter().map(|k| short_kib(*k)).collect();
        parts.push(part(3, format!("NUMA free {}", free.join(" "))));
    }
    if !h.huge_pages.is_empty() {
        let pages: Vec<String> = h
            .huge_pages
            .iter()
            .map(|p| {
                let total = p.total.map_or("?".into(), |t| t.to_string());
                format!("{} {}/{total}", short_kib(p.size_kib), p.free)
            })
            .collect();
        parts.push(part(3, format!("huge {}", pages.join(" "))));
    }
    parts.push(part(4, format!("libvirt {}", h.libvirt_version)));
    Some(parts)
}

/// The parts joined by ` · `, dropping parts (see [`Part`]) until the line
/// fits `width` columns; the last part standing is kept whatever its width. Pure.
pub fn fit(mut parts: Vec<Part>, width: usize) -> String {
    loop {
        let line = parts
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" · ");
        if line.chars().count() <= width || parts.len() <= 1 {
            return line;
        }
        let worst = parts
            .iter()
            .enumerate()
            .max_by_key(|(i, p)| (p.drop, *i))
            .map_or(0, |(i, _)| i);
        parts.remove(worst);
    }
}

/// The host line for a header `width` columns wide (one leading space).
pub fn host_summary(snap: &Snapshot, width: usize) -> Option<String> {
    Some(fit(host_parts(snap)?, width.saturating_sub(1)))
}

/// `23.0/64.0 GiB`: both in the unit of the total. Pure.
pub fn kib_pair(used: u64, total: u64) -> String {
    let (k, unit) = unit_of(total);
    let scale = |v: u64| v as f64 / 1024f64.powi(k);
    format!("{:.1}/{:.1} {unit}", scale(used), scale(total))
}

/// `20.2G`, `2M`, `512K`: a KiB count in one letter's unit. Pure.
pub fn short_kib(kib: u64) -> String {
    let (k, unit) = unit_of(kib);
    let v = kib as f64 / 1024f64.powi(k);
    let letter = &unit[..1];
    if v.fract() == 0.0 || v >= 100.0 {
        format!("{v:.0}{letter}")
    } else {
        format!("{v:.1}{letter}")
    }
}

/// The largest binary unit (from KiB up) in which `kib` is at least 1.
fn unit_of(kib: u64) -> (i32, &'static str) {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut k = 0;
    while k + 1 < UNITS.len() && kib as f64 >= 1024f64.powi(k as i32 + 1) {
        k += 1;
    }
    (k as i32, UNITS[k])
}

/// A snapshot older than this (and at least 3 poll intervals) is stale: the
/// collector is stuck on a slow libvirtd, or the engine stopped publishing.
pub fn stale_after(snap: &Snapshot) -> Duration {
    (snap.poll_interval * 3).max(Duration::from_secs(3))
}

/// Whether the last collection is older than [`stale_after`] while collecting.
pub fn is_stale(snap: &Snapshot, now: SystemTime) -> bool {
    let last = snap.collector.last_collection_time.unwrap_or(snap.taken_at);
    snap.collecting
        && now
            .duration_since(last)
            .is_ok_and(|age| age > stale_after(snap))
}

/// `attached to service pid N, up 3d04h`, or `service pid N gone since
/// 21:04:05 UTC (12s ago), reattaching` (then `true`: shown as an alert); for a
/// host opened from `vmpulse fleet`, whether it is live from that host or from InfluxDB.
pub fn origin_text(origin: &Origin, now: SystemTime) -> Option<(String, bool)> {
    match origin {
        Origin::Local => None,
        Origin::Attached { pid, started_at } => Some((
            format!(
                "attached to service pid {pid}, up {}",
                format::age(*started_at, now)
            ),
            false,
        )),
        // The endpoint is the header's source already (`Snapshot::libvirt_uri`).
        Origin::Database {
            attach_error: None, ..
        } => Some(("from InfluxDB · Esc: back to the hosts".into(), false)),
        // The live attach failed: the database's view; the reason is on the alert line.
        Origin::Database {
            attach_error: Some(_),
            ..
        } => Some((
            " from InfluxDB (live attach failed) · Esc: back to the hosts ".into(),
            true,
        )),
        Origin::Live {
            host,
            pid,
            started_at,
            gone_since: None,
        } => Some((
            format!(
                "live from {host} · pid {pid}, up {} · Esc: back to the hosts",
                format::age(*started_at, now)
            ),
            false,
        )),
        Origin::Live {
            host,
            gone_since: Some(since),
            ..
        } => Some((
            format!(
                " live from {host}: gone {} ago, reattaching · Esc: back to the hosts ",
                format::age(*since, now)
            ),
            true,
        )),
        Origin::Gone { pid, since } => {
            let secs = since
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            let (h, m, s) = (secs / 3600 % 24, secs / 60 % 60, secs % 60);
            Some((
                format!(
                    " service pid {pid} gone since {h:02}:{m:02}:{s:02} UTC ({} ago), reattaching ",
                    format::age(*since, now)
                ),
                true,
            ))
        }
    }
}

pub fn writer_summary(snap: &Snapshot, t: Theme) -> Vec<Span<'static>> {
    let w = &snap.writer;
    let ep = w.endpoint.clone().unwrap_or_default();
    match &w.state {
        // The full hint is in the status panel (i); here it must fit 80 columns.
        WriterState::Off { .. } => vec![Span::styled("off (set INFLUX_URL)", t.dim())],
        WriterState::Output { target } => {
            vec![
                Span::styled("ok ", t.good()),
                Span::raw(format!("→ {target}")),
            ]
        }
        WriterState::Ok => vec![Span::styled("ok ", t.good()), Span::raw(ep)],
        WriterState::Retrying => vec![Span::styled("retrying ", t.warn()), Span::raw(ep)],
        WriterState::AuthFailed => vec![Span::styled("token rejected ", t.bad()), Span::raw(ep)],
        WriterState::Failing => vec![Span::styled("failing ", t.bad()), Span::raw(ep)],
    }
}

/// [`writer_summary`], or why a local TUI's writer is held off (`remote::shipper`).
pub fn writer_spans(app: &App, snap: &Snapshot) -> Vec<Span<'static>> {
    match (app.writer_held, &snap.writer.state) {
        (Some(why), WriterState::Off { .. }) => vec![Span::styled(why, app.theme.warn())],
        _ => writer_summary(snap, app.theme),
    }
}

/// `  ALERTS 1 critical 2 warning` in the levels' colours; nothing without alerts.
pub fn alert_count(snap: &Snapshot, t: Theme) -> Vec<Span<'static>> {
    let counts = snap.alerts.counts();
    if counts.iter().all(|n| *n == 0) {
        return Vec::new();
    }
    let mut spans = vec![Span::raw("  "), Span::styled("ALERTS", t.label())];
    for level in AlertLevel::ALL.into_iter().rev() {
        let n = counts[level as usize];
        if n > 0 {
            spans.push(Span::raw(" "));
            spans.push(Span::styled(
                format!("{n} {}", level.as_str()),
                t.level(level),
            ));
        }
    }
    spans.push(Span::styled(" (a)", t.dim()));
    spans
}

pub fn render(frame: &mut Frame, area: Rect, app: &App, snap: &Snapshot, now: SystemTime) {
    let t = app.theme;
    let shown = app.shown();
    let mut l1 = vec![
        Span::styled(" vmpulse ", t.title()),
        Span::raw(" "),
        Span::styled(snap.hostname.clone(), t.title()),
        Span::styled(format!(" {} ", snap.libvirt_uri), t.label()),
        Span::raw(format!("· {}", format::vm_count(shown.vms.len()))),
    ];
    if let Some((text, gone)) = origin_text(&snap.origin, now) {
        l1.push(Span::raw("  "));
        l1.push(Span::styled(text, if gone { t.alert() } else { t.label() }));
    }
    l1.extend(alert_count(snap, t));
    if app.frozen.is_some() {
        l1.push(Span::raw("  "));
        l1.push(Span::styled(" FROZEN (f) ", t.alert()));
    }
    if !app.filter.is_empty() {
        l1.push(Span::raw("  filter "));
        l1.push(Span::styled(format!("\"{}\"", app.filter), t.key()));
    }

    let collecting = app.pending_collecting.unwrap_or(snap.collecting);
    let mut l2 = Vec::new();
    match (app.pending_collecting, collecting) {
        (Some(true), _) => l2.push(Span::styled("▶ starting…", t.warn())),
        (Some(false), _) => l2.push(Span::styled("■ stopping…", t.warn())),
        (None, true) => l2.push(Span::styled("▶ collecting", t.good())),
        (None, false) => l2.push(Span::styled("■ stopped", t.warn())),
    }
    if collecting {
        l2.push(Span::raw(format!(
            " every {}",
            format::interval(snap.poll_interval)
        )));
    }
    match snap.collector.last_collection_time {
        Some(last) => {
            let stale = is_stale(snap, now);
            let took = snap
                .collector
                .last_collection_ms
                .map(|ms| format!(" in {ms:.0} ms"))
                .unwrap_or_default();
            let text = format!(" · last {} ago{took}", format::age(last, now));
            if stale {
                l2.push(Span::styled(text, t.bad()));
                l2.push(Span::styled(" STALE", t.bad()));
            } else {
                l2.push(Span::raw(text));
            }
        }
        None => l2.push(Span::styled(" · no collection yet", t.dim())),
    }
    l2.push(Span::raw(" · writer "));
    l2.extend(writer_spans(app, snap));

    let mut lines = vec![Line::from(l1), Line::from(l2)];
    if let Some(h) = host_summary(snap, usize::from(area.width)) {
        lines.push(Line::styled(format!(" {h}"), t.label()));
    }
    let alerts = alerts(snap);
    if !alerts.is_empty() {
        lines.push(Line::styled(
            format!(" ⚠ {} ", alerts.join(" · ")),
            t.alert(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::model::{CpuSplit, Derived, DomainState, RawDomain};
    use std::time::Duration;

    fn snap() -> Snapshot {
        let mut s = Snapshot::empty("qemu:///system", "hv", Duration::from_secs(1));
        s.host = Some(fixtures::host());
        let busy = |name: &str, vcpus, cpu, steal| {
            let mut v = fixtures::vm(RawDomain {
                vcpus: Some(vcpus),
                max_mem_kib: Some(20 * 1024 * 1024),
                ..fixtures::raw(name, &format!("u-{name}"))
            });
            v.derived = Some(Derived {
                cpu_percent: Some(cpu),
                cpu_split: CpuSplit {
                    steal: Some(steal),
                    ..Default::default()
                },
                ..Default::default()
            });
            v
        };
        *s.vms = vec![busy("a", 16, 25.0, 2.1), busy("b", 8, 50.0, 0.5)];
        s.vms[1].raw.state = DomainState::Running;
        s
    }

    #[test]
    fn the_host_line_fits_80_columns_and_shows_everything_when_wide() {
        let s = snap();
        let narrow = host_summary(&s, 80).unwrap();
        assert_eq!(
            narrow,
            "16 CPU · vCPU 24/16 · VM CPU 50% · steal ≤2.1% · mem 23.0/64.0 GiB · VM mem 62%"
        );
        assert!(narrow.chars().count() < 80);
        let wide = host_summary(&s, 200).unwrap();
        assert!(wide.ends_with(
            "VM mem 62% · NUMA free 20.2G 18.5G · huge 2M 512/1024 1G 0/4 · libvirt 9.0.0"
        ));
        let tiny = host_summary(&s, 30).unwrap();
        assert_eq!(tiny, "16 CPU · mem 23.0/64.0 GiB");
    }

    #[test]
    fn units_are_compact() {
        assert_eq!(
            kib_pair(23 * 1024 * 1024, 64 * 1024 * 1024),
            "23.0/64.0 GiB"
        );
        assert_eq!(kib_pair(512, 900), "512.0/900.0 KiB");
        assert_eq!(short_kib(2048), "2M");
        assert_eq!(short_kib(1024 * 1024), "1G");
        assert_eq!(short_kib(20 * 1024 * 1024 + 1024 * 1024 / 5), "20.2G");
        assert_eq!(short_kib(4), "4K");
    }
}
