//! UI state and its update function (Elm style: state, message, update; the
//! view lives in `render`). `update` is pure apart from the [`Command`]s it
//! returns, which the event loop in `ui::run` carries out.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;
use tui_logger::{LevelFilter, TuiWidgetState};

use super::ceiling::Peaks;
use super::keys::{self, Action, Context, SortKey};
use super::layout;
use super::theme::Theme;
use crate::config::Config;
use crate::engine::Control;
use crate::format;
use crate::history::History;
use crate::model::{Snapshot, VmSnapshot};

/// Poll intervals that `+` / `-` step through.
pub const POLL_STEPS_MS: [u64; 9] = [100, 250, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000];

/// Smallest ceiling an auto-scaled gauge uses, so an idle host does not show
/// a few bytes per second as a full bar.
pub const MIN_AUTO_CEILING: f64 = 1024.0 * 1024.0;

/// Input to [`App::update`].
#[derive(Debug, Clone)]
pub enum Msg {
    Key(KeyEvent),
    Resize(u16, u16),
    Snapshot(Arc<Snapshot>),
    /// SIGTERM / SIGHUP: quit with a flush, the terminal may already be gone.
    Signal(&'static str),
}

/// Side effects `update` asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Engine(Control),
    /// Start the engine's shutdown (flush) and keep drawing its progress.
    Quit,
    /// Second Ctrl-C during the flush: leave now.
    ForceQuit,
}

/// What fills the body of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    List,
    Detail { uuid: String, scroll: u16 },
}

/// What asked to quit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitReason {
    /// The `q` key.
    Key,
    /// Ctrl-C; a second one during the flush abandons it.
    CtrlC,
    /// SIGTERM / SIGHUP (the name).
    Signal(&'static str),
}

impl QuitReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Key => "q",
            Self::CtrlC => "Ctrl-C",
            Self::Signal(name) => name,
        }
    }
}

/// A quit in progress: the engine is flushing.
#[derive(Debug, Clone, PartialEq)]
pub struct Quitting {
    pub started: SystemTime,
    /// Queue depth when the quit began, for the progress display.
    pub initial_depth: usize,
    pub reason: QuitReason,
}

/// Where a gauge's 100 % comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ceiling {
    /// `ui.disk_ceiling` / `ui.net_ceiling` in the config.
    Fixed(f64),
    /// The busiest VM's peak over the history window (at least [`MIN_AUTO_CEILING`]).
    Peak(f64),
}

impl Ceiling {
    pub fn value(self) -> f64 {
        match self {
            Self::Fixed(v) | Self::Peak(v) => v,
        }
    }
}

/// Settings the UI takes from the config and the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub theme: Theme,
    pub disk_ceiling: Option<f64>,
    pub net_ceiling: Option<f64>,
    pub history: Duration,
}

impl Options {
    pub fn from_config(config: &Config, theme: Theme) -> Self {
        Self {
            theme,
            disk_ceiling: config.ui.disk_ceiling,
            net_ceiling: config.ui.net_ceiling,
            history: History::window_of(&config.ui),
        }
    }
}

pub struct App {
    pub theme: Theme,
    pub screen: Screen,
    /// `Some(scroll)` while the help overlay is open.
    pub help: Option<u16>,
    pub table: bool,
    pub show_status: bool,
    pub show_logs: bool,
    /// The alerts pane (`a`).
    pub show_alerts: bool,
    pub logs_focused: bool,
    pub filter: String,
    pub filter_editing: bool,
    pub sort: SortKey,
    pub sort_reverse: bool,
    /// The snapshot whose VMs stay on screen while frozen.
    pub frozen: Option<Arc<Snapshot>>,
    /// Index into the visible (filtered, sorted) list.
    pub selected: usize,
    selected_uuid: Option<String>,
    /// First visible row of the grid or table.
    pub top: usize,
    pub size: (u16, u16),
    pub history: History,
    /// The busiest VM's disk and network peaks over the history window (the ceilings).
    peaks: Peaks,
    /// The filtered, sorted order of the shown snapshot's VMs, made once per
    /// (snapshot, filter, sort) and shared by the state and every frame.
    order: RefCell<Option<Order>>,
    disk_ceiling_cfg: Option<f64>,
    net_ceiling_cfg: Option<f64>,
    pub disk_ceiling: Ceiling,
    pub net_ceiling: Ceiling,
    /// The latest snapshot from the engine.
    pub live: Arc<Snapshot>,
    pub quitting: Option<Quitting>,
    /// Collection state asked for with `s` and not yet confirmed by a snapshot.
    pub pending_collecting: Option<bool>,
    /// Why the local engine's InfluxDB writer is held off (`remote::shipper`).
    pub writer_held: Option<&'static str>,
    pub log_state: TuiWidgetState,
}

impl App {
    pub fn new(options: Options, first: Arc<Snapshot>, size: (u16, u16)) -> Self {
        let mut app = Self {
            theme: options.theme,
            screen: Screen::List,
            help: None,
            table: false,
            show_status: false,
            show_logs: false,
            show_alerts: false,
            logs_focused: false,
            filter: String::new(),
            filter_editing: false,
            sort: SortKey::Name,
            sort_reverse: false,
            frozen: None,
            selected: 0,
            selected_uuid: None,
            top: 0,
            size,
            history: History::new(options.history),
            peaks: Peaks::new(options.history),
            order: RefCell::new(None),
            disk_ceiling_cfg: options.disk_ceiling,
            net_ceiling_cfg: options.net_ceiling,
            disk_ceiling: Ceiling::Peak(MIN_AUTO_CEILING),
            net_ceiling: Ceiling::Peak(MIN_AUTO_CEILING),
            live: first.clone(),
            quitting: None,
            pending_collecting: None,
            writer_held: None,
            log_state: TuiWidgetState::new().set_default_display_level(LevelFilter::Info),
        };
        app.ingest(first);
        app
    }

    /// The snapshot whose VMs are shown (frozen or live).
    pub fn shown(&self) -> &Arc<Snapshot> {
        self.frozen.as_ref().unwrap_or(&self.live)
    }

    /// Binding contexts active now, most specific first.
    pub fn contexts(&self) -> Vec<Context> {
        if self.help.is_some() {
            return vec![Context::Always, Context::Help];
        }
        if self.filter_editing {
            return vec![Context::Always, Context::Filter];
        }
        if self.logs_focused && self.show_logs {
            return vec![Context::Always, Context::Logs, Context::Global];
        }
        match self.screen {
            Screen::List => vec![Context::Always, Context::List, Context::Global],
            Screen::Detail { .. } => vec![Context::Always, Context::Detail, Context::Global],
        }
    }

    /// Indices into `self.shown().vms`, filtered and sorted as on screen; sorted
    /// once per snapshot, filter and sort, not once per use.
    pub fn visible(&self) -> Arc<[usize]> {
        let shown = self.shown();
        let mut cache = self.order.borrow_mut();
        if let Some(o) = cache.as_ref().filter(|o| o.is_for(self)) {
            return o.indices.clone();
        }
        let indices: Arc<[usize]> =
            visible_indices(shown, &self.filter, self.sort, self.sort_reverse).into();
        *cache = Some(Order {
            snapshot: Arc::downgrade(shown),
            filter: self.filter.clone(),
            sort: self.sort,
            reverse: self.sort_reverse,
            indices: indices.clone(),
        });
        indices
    }

    /// Older snapshots, oldest first, for the history and the ceilings (`Engine::past`).
    pub fn seed(&mut self, past: &[Arc<Snapshot>]) {
        for snap in past {
            self.history.ingest(snap);
            self.peaks.ingest(snap);
        }
    }

    pub fn update(&mut self, msg: Msg, now: SystemTime) -> Option<Command> {
        match msg {
            Msg::Resize(w, h) => {
                self.size = (w, h);
                self.follow_selection();
                None
            }
            Msg::Snapshot(snap) => {
                self.ingest(snap);
                None
            }
            Msg::Signal(name) => self.quit(now, QuitReason::Signal(name)),
            Msg::Key(ev) => self.key(ev, now),
        }
    }

    fn ingest(&mut self, snap: Arc<Snapshot>) {
        self.history.ingest(&snap);
        self.peaks.ingest(&snap);
        let ceiling = |cfg: Option<f64>, peak: Option<f64>| match cfg {
            Some(v) => Ceiling::Fixed(v),
            None => Ceiling::Peak(peak.unwrap_or(0.0).max(MIN_AUTO_CEILING)),
        };
        self.disk_ceiling = ceiling(self.disk_ceiling_cfg, self.peaks.disk());
        self.net_ceiling = ceiling(self.net_ceiling_cfg, self.peaks.net());
        if let Some(q) = self.quitting.as_mut() {
            // The flush may start by taking in what the collector still had.
            q.initial_depth = q.initial_depth.max(snap.writer.queue_depth);
        }
        if self.pending_collecting == Some(snap.collecting) {
            self.pending_collecting = None;
        }
        self.live = snap;
        if let Screen::Detail { uuid, .. } = &self.screen {
            if !self.shown().vms.iter().any(|vm| vm.uuid() == uuid) {
                // The VM went away: so does its detail view.
                self.screen = Screen::List;
            }
        }
        self.follow_selection();
    }

    fn quit(&mut self, now: SystemTime, reason: QuitReason) -> Option<Command> {
        if self.quitting.is_some() {
            return if reason == QuitReason::CtrlC {
                Some(Command::ForceQuit)
            } else {
                None
            };
        }
        self.help = None;
        self.quitting = Some(Quitting {
            started: now,
            initial_depth: self.live.writer.queue_depth,
            reason,
        });
        Some(Command::Quit)
    }

    /// Whether `update` does anything with this key: the event loop draws no
    /// frame for a key that changes nothing (a release, an unbound key).
    pub fn acts_on(&self, ev: &KeyEvent) -> bool {
        if ev.kind == KeyEventKind::Release {
            return false;
        }
        let action = keys::lookup(&self.contexts(), ev);
        if self.quitting.is_some() {
            // While flushing only quitting again means anything.
            return action == Some(Action::Quit);
        }
        action.is_some() || self.typed_into_filter(ev).is_some()
    }

    /// The character this key adds to the filter being edited.
    fn typed_into_filter(&self, ev: &KeyEvent) -> Option<char> {
        match ev.code {
            KeyCode::Char(c)
                if self.filter_editing
                    && !ev
                        .modifiers
                        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                Some(c)
            }
            _ => None,
        }
    }

    fn key(&mut self, ev: KeyEvent, now: SystemTime) -> Option<Command> {
        if !self.acts_on(&ev) {
            return None;
        }
        if self.quitting.is_some() {
            return self.quit(now, quit_reason(&ev));
        }
        let Some(action) = keys::lookup(&self.contexts(), &ev) else {
            if let Some(c) = self.typed_into_filter(&ev) {
                self.filter.push(c);
                self.selected = 0;
                self.follow_selection_reset();
            }
            return None;
        };
        self.act(action, ev, now)
    }

    fn act(&mut self, action: Action, ev: KeyEvent, now: SystemTime) -> Option<Command> {
        match action {
            Action::Quit => return self.quit(now, quit_reason(&ev)),
            Action::ToggleCollection => {
                let collecting = self.pending_collecting.unwrap_or(self.live.collecting);
                self.pending_collecting = Some(!collecting);
                return Some(Command::Engine(if collecting {
                    Control::Stop
                } else {
                    Control::Start
                }));
            }
            Action::ToggleHelp => {
                self.help = if self.help.is_some() { None } else { Some(0) };
            }
            Action::Close => match self.screen {
                Screen::Detail { .. } => self.screen = Screen::List,
                // A host drilled into from `vmpulse fleet`: Esc goes back to the hosts.
                Screen::List if self.filter.is_empty() && self.live.origin.from_fleet() => {
                    return self.quit(now, QuitReason::Key);
                }
                Screen::List => {
                    self.filter.clear();
                    self.follow_selection();
                }
            },
            Action::StartFilter => {
                self.screen = Screen::List;
                self.filter_editing = true;
            }
            Action::FilterAccept => self.filter_editing = false,
            Action::FilterClear => {
                self.filter.clear();
                self.filter_editing = false;
                self.follow_selection();
            }
            Action::FilterBackspace => {
                self.filter.pop();
                self.follow_selection();
            }
            Action::Sort(key) => {
                if self.sort == key {
                    self.sort_reverse = !self.sort_reverse;
                } else {
                    self.sort = key;
                    self.sort_reverse = false;
                }
                self.follow_selection();
            }
            Action::Freeze => {
                self.frozen = match self.frozen {
                    Some(_) => None,
                    None => Some(self.live.clone()),
                };
                self.follow_selection();
            }
            Action::PollSlower | Action::PollFaster => {
                let cur = self.live.poll_interval.as_millis() as u64;
                let next = if action == Action::PollSlower {
                    POLL_STEPS_MS.iter().copied().find(|&s| s > cur)
                } else {
                    POLL_STEPS_MS.iter().rev().copied().find(|&s| s < cur)
                };
                if let Some(ms) = next {
                    return Some(Command::Engine(Control::SetPollInterval(
                        Duration::from_millis(ms),
                    )));
                }
            }
            Action::ToggleTable => {
                self.table = !self.table;
                self.follow_selection();
            }
            Action::ToggleStatus => {
                self.show_status = !self.show_status;
                self.follow_selection();
            }
            Action::ToggleLogs => {
                self.show_logs = !self.show_logs;
                if !self.show_logs {
                    self.logs_focused = false;
                }
                self.follow_selection();
            }
            Action::ToggleAlerts => {
                self.show_alerts = !self.show_alerts;
                self.follow_selection();
            }
            Action::FocusLogs => {
                self.logs_focused = self.show_logs && !self.logs_focused;
            }
            Action::Log(event) => self.log_state.transition(event),
            Action::OpenDetail => {
                let vis = self.visible();
                if let Some(&i) = vis.get(self.selected) {
                    self.screen = Screen::Detail {
                        uuid: self.shown().vms[i].uuid().to_string(),
                        scroll: 0,
                    };
                }
            }
            Action::Up
            | Action::Down
            | Action::Left
            | Action::Right
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => self.navigate(action),
        }
        None
    }

    fn navigate(&mut self, action: Action) {
        if let Some(scroll) = self.help.as_mut() {
            *scroll = match action {
                Action::Up => scroll.saturating_sub(1),
                Action::Down => scroll.saturating_add(1),
                _ => *scroll,
            };
            return;
        }
        let page_body = layout::detail_page(self.area(), self.shape(&self.live));
        if let Screen::Detail { scroll, .. } = &mut self.screen {
            *scroll = match action {
                Action::Up => scroll.saturating_sub(1),
                Action::Down => scroll.saturating_add(1),
                Action::PageUp => scroll.saturating_sub(page_body),
                Action::PageDown => scroll.saturating_add(page_body),
                Action::Top => 0,
                _ => *scroll,
            };
            return;
        }
        let n = self.visible().len();
        if n == 0 {
            return;
        }
        let geo = self.geometry();
        let cols = geo.cols.max(1);
        let page = cols * geo.rows.max(1);
        let s = self.selected.min(n - 1);
        self.selected = match action {
            Action::Up => s.saturating_sub(cols),
            Action::Down => (s + cols).min(n - 1),
            Action::Left => s.saturating_sub(1),
            Action::Right => (s + 1).min(n - 1),
            Action::PageUp => s.saturating_sub(page),
            Action::PageDown => (s + page).min(n - 1),
            Action::Top => 0,
            Action::Bottom => n - 1,
            _ => s,
        };
        let vis = self.visible();
        self.selected_uuid = vis
            .get(self.selected)
            .map(|&i| self.shown().vms[i].uuid().to_string());
        self.scroll_to_selection();
    }

    /// Layout of the list for the current terminal size.
    pub fn geometry(&self) -> layout::ListGeometry {
        layout::list_geometry(self.area(), self.shape(&self.live))
    }

    /// What the screen geometry depends on, with `snap` in the header.
    pub fn shape(&self, snap: &Snapshot) -> layout::Shape {
        layout::Shape {
            header: super::alerts::header_height(snap),
            status: self.show_status,
            logs: self.show_logs,
            alerts: self.show_alerts,
            table: self.table,
        }
    }

    /// The whole terminal.
    fn area(&self) -> Rect {
        Rect::new(0, 0, self.size.0, self.size.1)
    }

    /// After the list changed (snapshot, sort, filter, resize): keep the same
    /// VM selected if it is still there, else clamp the index.
    fn follow_selection(&mut self) {
        let vis = self.visible();
        if let Some(uuid) = &self.selected_uuid {
            if let Some(pos) = vis.iter().position(|&i| self.shown().vms[i].uuid() == uuid) {
                self.selected = pos;
            }
        }
        self.selected = self.selected.min(vis.len().saturating_sub(1));
        self.selected_uuid = vis
            .get(self.selected)
            .map(|&i| self.shown().vms[i].uuid().to_string());
        self.scroll_to_selection();
    }

    fn follow_selection_reset(&mut self) {
        self.selected_uuid = None;
        self.top = 0;
        self.follow_selection();
    }

    fn scroll_to_selection(&mut self) {
        let geo = self.geometry();
        let cols = geo.cols.max(1);
        let rows = geo.rows.max(1);
        let n = self.visible().len();
        let total_rows = n.div_ceil(cols);
        let row = self.selected / cols;
        if row < self.top {
            self.top = row;
        } else if row >= self.top + rows {
            self.top = row + 1 - rows;
        }
        // Never leave empty space below the last row when it could be filled.
        self.top = self.top.min(total_rows.saturating_sub(rows));
    }
}

/// A made order and what it was made from.
struct Order {
    /// Weak: the order never keeps a replaced snapshot's VMs alive (and while
    /// it exists, no other snapshot can take its address).
    snapshot: std::sync::Weak<Snapshot>,
    filter: String,
    sort: SortKey,
    reverse: bool,
    indices: Arc<[usize]>,
}

impl Order {
    fn is_for(&self, app: &App) -> bool {
        std::ptr::eq(self.snapshot.as_ptr(), Arc::as_ptr(app.shown()))
            && self.filter == app.filter
            && self.sort == app.sort
            && self.reverse == app.sort_reverse
    }
}

/// Ctrl-C or the `q` key.
fn quit_reason(ev: &KeyEvent) -> QuitReason {
    if ev.modifiers.contains(KeyModifiers::CONTROL) {
        QuitReason::CtrlC
    } else {
        QuitReason::Key
    }
}

fn total_disk(vm: &VmSnapshot) -> Option<f64> {
    vm.derived
        .as_ref()
        .map(|d| d.disk_read.bytes_per_sec + d.disk_write.bytes_per_sec)
}

fn total_net(vm: &VmSnapshot) -> Option<f64> {
    vm.derived
        .as_ref()
        .map(|d| d.net_rx.bytes_per_sec + d.net_tx.bytes_per_sec)
}

/// The value as the screen shows it: VMs that look equal sort by name, so jitter
/// below the shown precision does not swap rows on every refresh.
fn sort_value(vm: &VmSnapshot, key: SortKey) -> Option<f64> {
    let pct = |p: Option<f64>| p.map(format::percent_as_shown);
    match key {
        SortKey::Name => None,
        SortKey::Cpu => pct(vm.derived.as_ref().and_then(|d| d.cpu_percent)),
        SortKey::Memory => vm
            .memory
            .and_then(|m| pct(m.percent).or(Some(m.used_kb as f64 / 1e12))),
        SortKey::Disk => total_disk(vm).map(format::bytes_as_shown),
        SortKey::Network => total_net(vm).map(format::bytes_as_shown),
        SortKey::Steal => pct(vm.derived.as_ref().and_then(|d| d.cpu_split.steal)),
        SortKey::Latency => vm
            .derived
            .as_ref()
            .and_then(|d| d.disk_latency.worst_rw_ms())
            .map(format::latency_as_shown),
    }
}

/// Filter (`ui::filter`: name words and `tag=value` terms), then sort: metrics descending
/// (busiest first, VMs without a value last), names ascending; `reverse` flips.
pub fn visible_indices(snap: &Snapshot, filter: &str, key: SortKey, reverse: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = snap
        .vms
        .iter()
        .enumerate()
        .filter(|(_, vm)| super::filter::matches(vm, filter))
        .map(|(i, _)| i)
        .collect();
    let by_name = |a: &VmSnapshot, b: &VmSnapshot| {
        a.name().cmp(b.name()).then_with(|| a.uuid().cmp(b.uuid()))
    };
    idx.sort_by(|&a, &b| {
        let (va, vb) = (&snap.vms[a], &snap.vms[b]);
        let ord = if key == SortKey::Name {
            by_name(va, vb)
        } else {
            match (sort_value(va, key), sort_value(vb, key)) {
                (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| by_name(va, vb)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => by_name(va, vb),
            }
        };
        if reverse {
            ord.reverse()
        } else {
            ord
        }
    });
    idx
}
