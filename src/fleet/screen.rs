//! The host list screen: one row per host, worst first, refreshed every
//! `fleet.refresh`; `/` filters host names and VM tags, `s` cycles the order,
//! Enter opens the host's VMs in the live view's own screens (fed by
//! [`HostEngine`] from the database), `q` there comes back. `HostList` is the
//! state and `draw` its pure view, so both are tested without a terminal.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use color_eyre::eyre::WrapErr;
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyEventKind};
use futures::StreamExt;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Paragraph, Row, Table, TableState};
use ratatui::Frame;
use tokio::sync::watch;

use super::client::Client;
use super::hosts::{matches, HostRow, SortKey};
use super::store::Store;
use crate::config::Config;
use crate::engine::{Control, FinalReport};
use crate::format;
use crate::model::{Origin, Snapshot, WriterState};
use crate::ui::theme::Theme;

const SORTS: [SortKey; 6] = [
    SortKey::Worst,
    SortKey::Name,
    SortKey::Cpu,
    SortKey::Memory,
    SortKey::Vms,
    SortKey::Age,
];

/// What the host list shows.
#[derive(Debug, Default)]
pub struct HostList {
    pub rows: Vec<HostRow>,
    pub selected: usize,
    pub filter: String,
    pub editing: bool,
    pub sort: SortKey,
    pub help: bool,
    pub endpoint: String,
    /// The last refresh's error (the rows are then the last data).
    pub error: Option<String>,
    pub last_ok: Option<SystemTime>,
}

/// What a key asks the loop to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Stay,
    Open(String),
    Quit,
}

impl HostList {
    /// The rows that pass the filter, in the chosen order.
    pub fn visible(&self) -> Vec<&HostRow> {
        let mut v: Vec<&HostRow> = self
            .rows
            .iter()
            .filter(|r| matches(r, &self.filter))
            .collect();
        v.sort_by(|a, b| self.sort.compare(a, b));
        v
    }

    pub fn key(&mut self, k: KeyEvent) -> Step {
        if self.editing {
            match k.code {
                KeyCode::Enter | KeyCode::Esc => self.editing = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.selected = 0;
            return Step::Stay;
        }
        if self.help {
            self.help = false;
            return Step::Stay;
        }
        let n = self.visible().len();
        match k.code {
            KeyCode::Char('q') => return Step::Quit,
            KeyCode::Down | KeyCode::Char('j') => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.selected = n.saturating_sub(1),
            KeyCode::Char('/') => self.editing = true,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('s') => {
                let i = SORTS.iter().position(|s| *s == self.sort).unwrap_or(0);
                self.sort = SORTS[(i + 1) % SORTS.len()];
            }
            KeyCode::Char('?') => self.help = true,
            KeyCode::Enter => {
                if let Some(r) = self.visible().get(self.selected) {
                    return Step::Open(r.host.clone());
                }
            }
            _ => {}
        }
        Step::Stay
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

fn memory(r: &HostRow) -> String {
    match (r.memory_used_kb, r.memory_assigned_kb) {
        (Some(u), Some(a)) => format!("{}/{}", format::kib(u), format::kib(a)),
        (Some(u), None) => format::kib(u),
        (None, Some(a)) => format!("-/{}", format::kib(a)),
        (None, None) => "-".into(),
    }
}

fn alerts(r: &HostRow) -> String {
    let a = r.alerts;
    if a.total() == 0 {
        return "-".into();
    }
    format!("{}C {}W {}c", a.critical, a.warning, a.careful)
}

fn service(r: &HostRow) -> String {
    match &r.service {
        None => "-".into(),
        Some(s) => format!(
            "q{} drop{} {}",
            s.queue_depth.map_or("-".into(), |q| q.to_string()),
            s.lines_dropped.map_or("-".into(), |q| q.to_string()),
            format::duration(Duration::from_secs_f64(s.age_seconds)),
        ),
    }
}

fn row_cells(r: &HostRow) -> Vec<String> {
    vec![
        r.host.clone(),
        format::duration(Duration::from_secs_f64(r.age_seconds)),
        format!("{}/{}", r.vms_running, r.vms_total),
        opt(r.cpu_cores_used, |c| format!("{c:.2}")),
        opt(r.cpu_percent_of_host, format::percent),
        opt(r.steal_worst_percent, format::percent),
        memory(r),
        format::rate(r.disk_bytes_per_sec),
        format::rate(r.net_bytes_per_sec),
        alerts(r),
        service(r),
    ]
}

const HEADER: [&str; 11] = [
    "HOST",
    "AGE",
    "VMS",
    "CORES",
    "CPU%",
    "STEAL",
    "MEM USED/ASSIGNED",
    "DISK",
    "NET",
    "ALERTS",
    "SERVICE",
];

/// Draws the host list.
pub fn draw(frame: &mut Frame, list: &HostList, theme: Theme, now: SystemTime) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let visible = list.visible();
    let stale = visible.iter().filter(|r| r.stale).count();
    let mut top = vec![Line::from(vec![
        Span::styled("vmpulse fleet ", theme.title()),
        Span::raw(format!(
            "{} hosts ({} stale) · {} · sorted {}",
            visible.len(),
            stale,
            list.endpoint,
            list.sort.label()
        )),
    ])];
    top.push(match (&list.error, list.last_ok) {
        (Some(e), Some(t)) => Line::styled(
            format!("query failed: {e} · data {} old", format::age(t, now)),
            theme.bad(),
        ),
        (Some(e), None) => Line::styled(format!("query failed: {e}"), theme.bad()),
        (None, _) if list.editing || !list.filter.is_empty() => Line::raw(format!(
            "filter: {}{}",
            list.filter,
            if list.editing { "_" } else { "" }
        )),
        (None, _) => Line::styled(
            "Enter: a host's VMs · / filter · s sort · ? help · q quit",
            theme.dim(),
        ),
    });
    frame.render_widget(Paragraph::new(top), head);
    let rows = visible.iter().map(|r| {
        let style = if r.stale {
            theme.dim()
        } else if r.alerts.critical > 0 {
            theme.bad()
        } else if r.alerts.warning > 0 {
            theme.warn()
        } else {
            theme.base()
        };
        Row::new(row_cells(r).into_iter().map(Cell::from)).style(style)
    });
    let widths = [
        Constraint::Min(10),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(19),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(16),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(HEADER).style(theme.label()))
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED));
    let mut state = TableState::default().with_selected(Some(list.selected));
    frame.render_stateful_widget(table, body, &mut state);
    frame.render_widget(
        Paragraph::new(Line::styled(
            "↑↓ move  Enter open  / filter  Esc clear  s sort  ? help  q quit",
            theme.dim(),
        )),
        foot,
    );
    if list.help {
        draw_help(frame, frame.area(), theme);
    }
}

fn draw_help(frame: &mut Frame, area: Rect, theme: Theme) {
    let lines = [
        "↑/k ↓/j      move; g/G first/last",
        "Enter        the host's VMs (cards, table, detail) from the database; q there comes back",
        "             (live from its control API when [[fleet.hosts]] names the host)",
        "/            filter host names and VM tags (key=value); Enter/Esc ends typing",
        "Esc          clear the filter",
        "s            sort: worst first (alerts, stale, steal), name, CPU, memory, VMs, age",
        "q            quit",
        "",
        "Greyed rows are stale: their newest point is older than fleet.window.",
        "any key closes this help",
    ];
    let w = area.width.min(92);
    let h = (lines.len() as u16 + 2).min(area.height);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, r);
    let block = ratatui::widgets::Block::bordered().title(" fleet keys ");
    frame.render_widget(
        Paragraph::new(lines.iter().map(|l| Line::raw(*l)).collect::<Vec<_>>())
            .style(theme.base())
            .block(block),
        r,
    );
}

/// A `ui::Engine` whose snapshots are one host's newest points in the database,
/// queried every `fleet.refresh`: the live view runs on it unchanged.
pub struct HostEngine {
    rx: watch::Receiver<Arc<Snapshot>>,
    task: tokio::task::JoinHandle<()>,
    past: Vec<Arc<Snapshot>>,
}

/// Marks a snapshot made from the database as such for the live view's header.
fn from_database(
    snap: &mut Snapshot,
    endpoint: &str,
    attach_error: Option<&str>,
    refresh: Duration,
    collection: u64,
) {
    snap.origin = Origin::Database {
        endpoint: endpoint.to_string(),
        attach_error: attach_error.map(str::to_owned),
    };
    snap.poll_interval = refresh;
    snap.seq = collection;
    snap.collection = collection;
    snap.collector.last_collection_time = Some(snap.taken_at);
    snap.writer.state = WriterState::Output {
        target: "nothing (this view reads InfluxDB)".into(),
    };
}

impl HostEngine {
    /// Reads the host's last `ui.history_minutes` (for the sparklines; without it
    /// when that query fails), then its newest points every `fleet.refresh`.
    /// `attach_error`: why the live attach failed, for the header.
    pub async fn start(
        client: Arc<Client>,
        config: Config,
        host: String,
        attach_error: Option<String>,
    ) -> Self {
        let refresh = config.fleet.refresh;
        let window = crate::history::History::window_of(&config.ui);
        let statement = super::query::history_statement(&host, window);
        let points = client.query(&statement).await.unwrap_or_default();
        let past: Vec<Arc<Snapshot>> = super::vms::past(&host, &points, &client.endpoint)
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                let note = attach_error.as_deref();
                from_database(&mut s, &client.endpoint, note, refresh, i as u64 + 1);
                Arc::new(s)
            })
            .collect();
        let mut first = Snapshot::empty(&client.endpoint, &host, refresh);
        from_database(
            &mut first,
            &client.endpoint,
            attach_error.as_deref(),
            refresh,
            0,
        );
        let (tx, rx) = watch::channel(Arc::new(first));
        let mut seq = past.len() as u64;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(refresh);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let snap = match super::host_snapshot(&client, &config, &host).await {
                    Ok(mut s) => {
                        seq += 1;
                        let note = attach_error.as_deref();
                        from_database(&mut s, &client.endpoint, note, refresh, seq);
                        s
                    }
                    // The last data stays, marked unreachable with the server's message;
                    // the same collection adds nothing to the history.
                    Err(e) => {
                        let mut last = (**tx.borrow()).clone();
                        last.collector.last_error = Some(e.to_string());
                        last.unreachable_since.get_or_insert_with(SystemTime::now);
                        last.seq += 1;
                        last
                    }
                };
                if tx.send(Arc::new(snap)).is_err() {
                    return;
                }
            }
        });
        Self { rx, task, past }
    }
}

impl crate::ui::Engine for HostEngine {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }
    /// Start, stop and the poll interval steer a collector; here there is none.
    fn send(&self, _control: Control) {}
    fn past(&self) -> Vec<Arc<Snapshot>> {
        self.past.clone()
    }
    async fn shutdown(self) -> FinalReport {
        self.task.abort();
        let last = self.rx.borrow().clone();
        FinalReport {
            collector: last.collector.clone(),
            writer: last.writer.clone(),
            unsent: 0,
        }
    }
}

/// A refresh running as its own task: when it started, and its points.
type Refresh = tokio::task::JoinHandle<(
    SystemTime,
    Result<Vec<super::answer::Point>, super::client::FleetError>,
)>;

fn start_refresh(client: &Arc<Client>, config: &Config, store: &Store) -> Refresh {
    let f = &config.fleet;
    let at = SystemTime::now();
    let range = store.range(at, f.window, f.lookback);
    let (client, config) = (client.clone(), config.clone());
    tokio::spawn(async move { (at, super::fetch(&client, &config, range).await) })
}

/// Enter on `host`: live from its control API when `[[fleet.hosts]]` names it and
/// the attach succeeds, else its newest points in the database (with the attach's
/// error in the header). Returns when the live view is left (Esc or q).
async fn open(client: &Arc<Client>, config: &Config, host: String) -> color_eyre::Result<()> {
    let mut attach_error = None;
    if let Some(entry) = config.fleet.hosts.iter().find(|h| h.name == host) {
        // Between the two screens, so a host that takes its time is no blank wait.
        eprintln!(
            "vmpulse fleet: attaching live to {host} at {} ...",
            entry.url
        );
        match super::live::attach(entry).await {
            Ok(engine) => return crate::ui::run_with(engine, config).await,
            Err(e) => {
                tracing::warn!("{e}; showing {host} from the database");
                attach_error = Some(e.to_string());
            }
        }
    }
    let engine = HostEngine::start(client.clone(), config.clone(), host, attach_error).await;
    crate::ui::run_with(engine, config).await
}

/// Runs the host list until `q`.
pub async fn run(config: &Config) -> color_eyre::Result<()> {
    let client = Arc::new(Client::new(config)?);
    let theme = Theme::from_env();
    let mut store = Store::default();
    let mut list = HostList {
        endpoint: client.endpoint.clone(),
        ..HostList::default()
    };
    let mut tick = tokio::time::interval(config.fleet.refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The refresh in flight: its own task, so keys are answered while InfluxDB works.
    let mut pending: Option<Refresh> = None;
    loop {
        let mut terminal =
            ratatui::try_init().wrap_err("vmpulse fleet cannot open the terminal")?;
        let mut events = EventStream::new();
        let step = loop {
            terminal.draw(|f| draw(f, &list, theme, SystemTime::now()))?;
            tokio::select! {
                _ = tick.tick(), if pending.is_none() => {
                    pending = Some(start_refresh(&client, config, &store));
                }
                done = async { pending.as_mut().ok_or(())?.await.map_err(|_| ()) }, if pending.is_some() => {
                    pending = None;
                    // An error stays in the store and on screen; the rows keep the last data.
                    match done {
                        Ok((at, Ok(points))) => store.merge(points, at, config.fleet.lookback),
                        Ok((_, Err(e))) => store.last_error = Some(e.to_string()),
                        Err(()) => store.last_error = Some("the refresh task ended unexpectedly".into()),
                    }
                    list.rows = store.rows(SystemTime::now(), config.fleet.window);
                    list.error = store.last_error.clone();
                    list.last_ok = store.last_ok;
                    list.selected = list.selected.min(list.visible().len().saturating_sub(1));
                }
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => match list.key(k) {
                        Step::Stay => {}
                        other => break other,
                    },
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break Err(e)?,
                    None => break Step::Quit,
                },
            }
        };
        ratatui::restore();
        match step {
            Step::Open(host) => open(&client, config, host).await?,
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::answer::Point;
    use crate::fleet::hosts::host_rows;
    use crate::fleet::hosts::tests::{now, point, vm};
    use crossterm::event::KeyModifiers;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use serde_json::json;

    /// Fixed query results: a live host, one with a critical alert, a stale one.
    pub fn list() -> HostList {
        let mut ps: Vec<Point> = vm("hv-a", "1", 1.0, "running", 50.0, 2.0).into();
        ps.extend(vm("hv-a", "2", 1.0, "shutoff", 0.0, 0.0));
        ps.extend(vm("hv-b", "3", 2.0, "running", 90.0, 15.0));
        ps[4].tags.insert("project".into(), "shop".into());
        ps.push(point(
            "vm_alerts",
            "hv-b",
            Some("3"),
            30.0,
            json!({"level": "critical", "active": true}),
        ));
        ps.push(point("hypervisor", "hv-b", None, 2.0,
            json!({"cpus": 8, "vms_cpu_cores": 1.8, "vms_cpu_percent": 22.5, "memory_assigned_kb": 2_097_152})));
        ps.push(point(
            "vmpulse_internal",
            "hv-b",
            None,
            5.0,
            json!({"queue_depth": 0, "lines_dropped": 0}),
        ));
        ps.extend(vm("hv-old", "4", 400.0, "running", 10.0, 0.0));
        HostList {
            rows: host_rows(&ps, now(), Duration::from_secs(30)),
            endpoint: "http://influx:8086/ (v1, db=vmstats)".into(),
            ..HostList::default()
        }
    }

    fn text(list: &HostList) -> String {
        let mut t = Terminal::new(TestBackend::new(130, 10)).unwrap();
        t.draw(|f| draw(f, list, Theme { color: true }, now()))
            .unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn press(list: &mut HostList, c: KeyCode) -> Step {
        list.key(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn host_list_worst_first() {
        insta::assert_snapshot!(text(&list()));
    }

    #[test]
    fn filter_sort_and_open() {
        let mut l = list();
        for c in ['/', 's', 'h', 'o', 'p'] {
            press(&mut l, KeyCode::Char(c));
        }
        press(&mut l, KeyCode::Enter);
        assert_eq!(l.visible().len(), 1, "project=shop is hv-b's");
        insta::assert_snapshot!(text(&l));
        assert_eq!(press(&mut l, KeyCode::Enter), Step::Open("hv-b".into()));
        press(&mut l, KeyCode::Esc);
        press(&mut l, KeyCode::Char('s'));
        assert_eq!(l.sort, SortKey::Name);
        assert_eq!(l.visible()[0].host, "hv-a");
        assert_eq!(press(&mut l, KeyCode::Char('q')), Step::Quit);
    }

    /// A host's VMs from fixed query results, drawn by the live view.
    fn drilled() -> (crate::ui::app::App, Arc<Snapshot>) {
        use crate::ui::app::{App, Options};
        let mut ps: Vec<Point> = Vec::new();
        for (i, (cpu, state)) in [(80.0, "running"), (12.5, "running"), (0.0, "shutoff")]
            .iter()
            .enumerate()
        {
            let [m, f] = vm("hv-b", &format!("{i}"), 1.0, state, *cpu, 1.0);
            ps.push(m);
            if *state == "running" {
                ps.push(f);
            }
        }
        ps.push(point(
            "hypervisor",
            "hv-b",
            None,
            1.0,
            json!({"cpus": 8, "memory_total_kb": 16_777_216, "memory_used_kb": 4_194_304}),
        ));
        let refs: Vec<&Point> = ps.iter().collect();
        let mut snap = crate::fleet::vms::snapshot(
            "hv-b",
            &refs,
            Duration::from_secs(30),
            "http://influx:8086/ (v1, db=vmstats)",
        );
        from_database(
            &mut snap,
            "http://influx:8086/ (v1, db=vmstats)",
            None,
            Duration::from_secs(2),
            7,
        );
        let snap = Arc::new(snap);
        let opts = Options {
            theme: Theme { color: true },
            disk_ceiling: None,
            net_ceiling: None,
            history: Duration::from_secs(300),
        };
        (App::new(opts, snap.clone(), (100, 24)), snap)
    }

    #[test]
    fn a_drilled_down_host_in_the_live_views_cards() {
        let (app, snap) = drilled();
        let mut t = Terminal::new(TestBackend::new(100, 24)).unwrap();
        t.draw(|f| crate::ui::render::view(f, &app, &snap, now() + Duration::from_secs(1)))
            .unwrap();
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn esc_on_a_drilled_down_list_goes_back_to_the_hosts() {
        use crate::ui::app::{Command, Msg};
        let (mut app, _) = drilled();
        let esc = Msg::Key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert!(matches!(app.update(esc, now()), Some(Command::Quit)));
    }

    #[test]
    fn a_failed_query_shows_beside_the_last_data() {
        let mut l = list();
        l.error = Some("HTTP 404: database not found: vmstats".into());
        l.last_ok = Some(now() - Duration::from_secs(12));
        let t = text(&l);
        assert!(
            t.contains("query failed: HTTP 404: database not found: vmstats"),
            "{t}"
        );
        assert!(t.contains("hv-old"), "{t}");
    }
}
