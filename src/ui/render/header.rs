//! The header: host and URI, VM count, collection state, poll interval,
//! writer state, age and duration of the last collection, and a one-line
//! alert when something needs the operator (drops, rejects, errors, auth).

use std::time::{Duration, SystemTime};

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::format;
use crate::model::{Origin, Snapshot, WriterState};
use crate::ui::alerts::alerts;
use crate::ui::app::App;
use crate::ui::theme::Theme;

/// `host 16 CPUs · mem 23.0 GiB / 64.0 GiB · VMs 41% of host CPU · steal 0.3 CPU · libvirt 9.0.0`
pub fn host_summary(snap: &Snapshot) -> Option<String> {
    let h = snap.host.as_ref()?;
    let mem = match h.memory_used_kib {
        Some(u) => format!("{} / {}", format::kib(u), format::kib(h.memory_total_kib)),
        None => format!("{} total", format::kib(h.memory_total_kib)),
    };
    let vcpus = |vm: &crate::model::VmSnapshot| f64::from(vm.raw.vcpus.unwrap_or(0));
    // CPU-seconds per second, summed over VMs: share of the host and steal in CPUs.
    let used: f64 = snap
        .vms
        .iter()
        .filter_map(|vm| Some(vm.derived.as_ref()?.cpu_percent? * vcpus(vm) / 100.0))
        .sum();
    let steal: Option<f64> = snap
        .vms
        .iter()
        .filter_map(|vm| Some(vm.derived.as_ref()?.cpu_split.steal? * vcpus(vm) / 100.0))
        .reduce(|a, b| a + b);
    let share = if h.cpus > 0 {
        format::percent(100.0 * used / f64::from(h.cpus))
    } else {
        "—".into()
    };
    Some(format!(
        "host {} CPUs · mem {mem} · VMs use {share} of host CPU · steal {} · libvirt {}",
        h.cpus,
        steal
            .map(|s| format!("{s:.2} CPU"))
            .unwrap_or_else(|| "—".into()),
        h.libvirt_version
    ))
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
/// 21:04:05 UTC (12s ago), reattaching` (then `true`: shown as an alert).
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
        Origin::Database { .. } => Some(("from InfluxDB · Esc: back to the hosts".into(), false)),
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
    if let Some(h) = host_summary(snap) {
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
