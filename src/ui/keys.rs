//! The key binding table: one row per binding (context, keys, action, help
//! text, footer hint). `App::update` dispatches through [`lookup`]; the help
//! overlay and every footer hint ([`hints`]) come from the same [`BINDINGS`],
//! so they cannot drift.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_logger::TuiWidgetEvent;

/// Which metric the VM list is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Name,
    Cpu,
    Memory,
    Disk,
    Network,
    /// CPU steal: time the guest wanted a host CPU and did not get one.
    Steal,
    /// Disk latency: the slower of read and write, per request.
    Latency,
}

impl SortKey {
    pub fn label(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Cpu => "CPU",
            Self::Memory => "memory",
            Self::Disk => "disk",
            Self::Network => "network",
            Self::Steal => "steal",
            Self::Latency => "disk latency",
        }
    }
}

/// Everything a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    ToggleCollection,
    ToggleHelp,
    /// Close the overlay or view on top; in the list, clear the filter.
    Close,
    StartFilter,
    Sort(SortKey),
    Freeze,
    PollSlower,
    PollFaster,
    ToggleTable,
    ToggleStatus,
    ToggleLogs,
    /// The alerts pane: active and recent alerts with levels.
    ToggleAlerts,
    FocusLogs,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    OpenDetail,
    FilterAccept,
    FilterClear,
    FilterBackspace,
    /// Passed on to tui-logger's widget state.
    Log(TuiWidgetEvent),
}

/// Where a binding applies. Several contexts are active at once; the first
/// active one that binds a key wins (see [`App::contexts`](super::app::App::contexts)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// Works everywhere, even while typing a filter.
    Always,
    /// Main screen and detail view.
    Global,
    /// Card grid and table.
    List,
    Detail,
    Help,
    /// Typing a filter after `/`; other printable keys are typed into it.
    Filter,
    /// Log pane focused with Tab.
    Logs,
}

impl Context {
    pub fn title(self) -> &'static str {
        match self {
            Self::Always => "Anywhere",
            Self::Global => "Main screen",
            Self::List => "VM cards and table",
            Self::Detail => "Detail view",
            Self::Help => "This help",
            Self::Filter => "Filter (after /)",
            Self::Logs => "Log pane (after Tab)",
        }
    }
}

/// One key: a code plus the modifiers that must be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub const fn ch(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            mods: KeyModifiers::NONE,
        }
    }
    pub const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            mods: KeyModifiers::CONTROL,
        }
    }
    pub const fn code(code: KeyCode) -> Self {
        Self {
            code,
            mods: KeyModifiers::NONE,
        }
    }

    /// Whether a terminal key event is this key. Shift is ignored for
    /// characters (the character already says `P` rather than `p`).
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let mut mods = ev.modifiers;
        if matches!(ev.code, KeyCode::Char(_)) {
            mods.remove(KeyModifiers::SHIFT);
        }
        let code = match ev.code {
            // Some terminals send Ctrl-C as uppercase with Shift held.
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            // Shift-Tab arrives as BackTab; treat it as Tab.
            KeyCode::BackTab => KeyCode::Tab,
            c => c,
        };
        code == self.code && mods == self.mods
    }

    /// How the key is written in the help and footer.
    pub fn label(&self) -> String {
        let base = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{}", base.to_uppercase())
        } else {
            base
        }
    }
}

/// One row of the binding table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub context: Context,
    pub keys: &'static [Key],
    pub action: Action,
    pub help: &'static str,
    /// Short word for the footer, for the few keys worth advertising there
    /// (see [`hints`]).
    pub hint: Option<&'static str>,
}

impl Binding {
    /// `"j/↓"`: all keys of the binding.
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(Key::label)
            .collect::<Vec<_>>()
            .join("/")
    }
}

const fn b(
    context: Context,
    keys: &'static [Key],
    action: Action,
    help: &'static str,
    hint: Option<&'static str>,
) -> Binding {
    Binding {
        context,
        keys,
        action,
        help,
        hint,
    }
}

use Action as A;
use Context as C;

/// The table, one row per binding: context, keys, action, help text, footer
/// hint. Order within a context is the order in the help overlay.
#[rustfmt::skip]
pub const BINDINGS: &[Binding] = &[
    // Always
    b(C::Always, &[Key::ctrl('c')],                                      A::Quit,                             "quit (flushes the writer; again to abandon)",       None),
    // Main screen
    b(C::Global, &[Key::ch('q')],                                        A::Quit,                             "quit (flushes the writer, bounded by its timeout)", Some("quit")),
    b(C::Global, &[Key::ch('?')],                                        A::ToggleHelp,                       "show / hide this help",                             Some("help")),
    b(C::Global, &[Key::code(KeyCode::Esc)],                             A::Close,                            "close view; clear the filter",                      None),
    b(C::Global, &[Key::ch('s')],                                        A::ToggleCollection,                 "start / stop collection (stop flushes the writer)", Some("start/stop")),
    b(C::Global, &[Key::ch('/')],                                        A::StartFilter,                      "filter by name or tag=value",                       Some("filter")),
    b(C::Global, &[Key::ch('P')],                                        A::Sort(SortKey::Cpu),               "sort by CPU % (again reverses)",                    None),
    b(C::Global, &[Key::ch('M')],                                        A::Sort(SortKey::Memory),            "sort by memory % (again reverses)",                 None),
    b(C::Global, &[Key::ch('D')],                                        A::Sort(SortKey::Disk),              "sort by disk throughput (again reverses)",          None),
    b(C::Global, &[Key::ch('N')],                                        A::Sort(SortKey::Network),           "sort by network throughput (again reverses)",       None),
    b(C::Global, &[Key::ch('S')],                                        A::Sort(SortKey::Steal),             "sort by CPU steal % (again reverses)",              None),
    b(C::Global, &[Key::ch('L')],                                        A::Sort(SortKey::Latency),           "sort by disk latency (again reverses)",             None),
    b(C::Global, &[Key::ch('n')],                                        A::Sort(SortKey::Name),              "sort by name (again reverses)",                     None),
    b(C::Global, &[Key::ch('f')],                                        A::Freeze,                           "freeze the display (collection continues)",         Some("freeze")),
    b(C::Global, &[Key::ch('+')],                                        A::PollSlower,                       "poll less often (longer interval)",                 None),
    b(C::Global, &[Key::ch('-')],                                        A::PollFaster,                       "poll more often (shorter interval)",                None),
    b(C::Global, &[Key::ch('t')],                                        A::ToggleTable,                      "cards / compact table",                             Some("table")),
    b(C::Global, &[Key::ch('i')],                                        A::ToggleStatus,                     "show / hide the status panel (queue, errors)",      Some("status")),
    b(C::Global, &[Key::ch('l')],                                        A::ToggleLogs,                       "show / hide the log pane",                          Some("logs")),
    b(C::Global, &[Key::ch('a')],                                        A::ToggleAlerts,                     "show / hide the alerts pane (active and recent)",   None),
    b(C::Global, &[Key::code(KeyCode::Tab)],                             A::FocusLogs,                        "focus the log pane and back",                       None),
    // List
    b(C::List,   &[Key::ch('k'), Key::code(KeyCode::Up)],                A::Up,                               "previous row",                                      None),
    b(C::List,   &[Key::ch('j'), Key::code(KeyCode::Down)],              A::Down,                             "next row",                                          None),
    b(C::List,   &[Key::code(KeyCode::Left)],                            A::Left,                             "previous card",                                     None),
    b(C::List,   &[Key::code(KeyCode::Right)],                           A::Right,                            "next card",                                         None),
    b(C::List,   &[Key::code(KeyCode::PageUp)],                          A::PageUp,                           "page up",                                           None),
    b(C::List,   &[Key::code(KeyCode::PageDown)],                        A::PageDown,                         "page down",                                         None),
    b(C::List,   &[Key::ch('g'), Key::code(KeyCode::Home)],              A::Top,                              "first VM",                                          None),
    b(C::List,   &[Key::ch('G'), Key::code(KeyCode::End)],               A::Bottom,                           "last VM",                                           None),
    b(C::List,   &[Key::code(KeyCode::Enter)],                           A::OpenDetail,                       "detail of the selected VM",                         Some("detail")),
    // Detail
    b(C::Detail, &[Key::code(KeyCode::Esc), Key::code(KeyCode::Enter)],  A::Close,                            "back to the list",                                  None),
    b(C::Detail, &[Key::ch('k'), Key::code(KeyCode::Up)],                A::Up,                               "scroll up",                                         None),
    b(C::Detail, &[Key::ch('j'), Key::code(KeyCode::Down)],              A::Down,                             "scroll down",                                       None),
    b(C::Detail, &[Key::code(KeyCode::PageUp)],                          A::PageUp,                           "page up",                                           None),
    b(C::Detail, &[Key::code(KeyCode::PageDown)],                        A::PageDown,                         "page down",                                         None),
    b(C::Detail, &[Key::ch('g'), Key::code(KeyCode::Home)],              A::Top,                              "top",                                               None),
    // Help
    b(C::Help,   &[Key::code(KeyCode::Esc), Key::ch('?'), Key::ch('q')], A::ToggleHelp,                       "close the help",                                    None),
    b(C::Help,   &[Key::ch('k'), Key::code(KeyCode::Up)],                A::Up,                               "scroll up",                                         None),
    b(C::Help,   &[Key::ch('j'), Key::code(KeyCode::Down)],              A::Down,                             "scroll down",                                       None),
    // Filter
    b(C::Filter, &[Key::code(KeyCode::Enter)],                           A::FilterAccept,                     "keep the filter, back to the list",                 Some("keep")),
    b(C::Filter, &[Key::code(KeyCode::Esc)],                             A::FilterClear,                      "clear the filter",                                  Some("clear")),
    b(C::Filter, &[Key::code(KeyCode::Backspace)],                       A::FilterBackspace,                  "delete a character",                                None),
    // Logs (tui-logger's own key set)
    b(C::Logs,   &[Key::code(KeyCode::Tab)],                             A::FocusLogs,                        "back to the VM list",                               Some("back")),
    b(C::Logs,   &[Key::ch('h')],                                        A::Log(TuiWidgetEvent::HideKey),     "hide / show the target selector",                   None),
    b(C::Logs,   &[Key::ch('f')],                                        A::Log(TuiWidgetEvent::FocusKey),    "show only the selected target",                     None),
    b(C::Logs,   &[Key::code(KeyCode::Up)],                              A::Log(TuiWidgetEvent::UpKey),       "previous target",                                   None),
    b(C::Logs,   &[Key::code(KeyCode::Down)],                            A::Log(TuiWidgetEvent::DownKey),     "next target",                                       None),
    b(C::Logs,   &[Key::code(KeyCode::Left)],                            A::Log(TuiWidgetEvent::LeftKey),     "show one level less",                               None),
    b(C::Logs,   &[Key::code(KeyCode::Right)],                           A::Log(TuiWidgetEvent::RightKey),    "show one level more",                               None),
    b(C::Logs,   &[Key::ch('-')],                                        A::Log(TuiWidgetEvent::MinusKey),    "capture one level less",                            None),
    b(C::Logs,   &[Key::ch('+')],                                        A::Log(TuiWidgetEvent::PlusKey),     "capture one level more",                            None),
    b(C::Logs,   &[Key::code(KeyCode::PageUp)],                          A::Log(TuiWidgetEvent::PrevPageKey), "scroll back (page mode)",                           None),
    b(C::Logs,   &[Key::code(KeyCode::PageDown)],                        A::Log(TuiWidgetEvent::NextPageKey), "scroll forward (page mode)",                        None),
    b(C::Logs,   &[Key::code(KeyCode::Esc)],                             A::Log(TuiWidgetEvent::EscapeKey),   "leave page mode",                                   None),
    b(C::Logs,   &[Key::ch(' ')],                                        A::Log(TuiWidgetEvent::SpaceKey),    "hide targets that are off",                         None),
];

/// `(keys, hint)` of the bindings in `contexts` that carry a footer hint, in
/// table order.
pub fn hints(contexts: &[Context]) -> Vec<(String, &'static str)> {
    BINDINGS
        .iter()
        .filter(|b| contexts.contains(&b.context))
        .filter_map(|b| b.hint.map(|h| (b.keys_label(), h)))
        .collect()
}

/// The action bound to `ev` in the first of `contexts` that binds it; key
/// releases bind nothing.
pub fn lookup(contexts: &[Context], ev: &KeyEvent) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    contexts.iter().find_map(|ctx| {
        BINDINGS
            .iter()
            .filter(|b| b.context == *ctx)
            .find(|b| b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn no_key_is_bound_twice_in_one_context() {
        let mut seen = HashSet::new();
        for b in BINDINGS {
            for k in b.keys {
                assert!(
                    seen.insert((b.context, k.code, k.mods)),
                    "{:?} bound twice in {:?}",
                    k.label(),
                    b.context
                );
            }
        }
    }

    #[test]
    fn uppercase_sort_keys_match_with_shift() {
        let a = lookup(
            &[Context::List, Context::Global],
            &ev(KeyCode::Char('P'), KeyModifiers::SHIFT),
        );
        assert_eq!(a, Some(Action::Sort(SortKey::Cpu)));
        let a = lookup(
            &[Context::Global],
            &ev(KeyCode::Char('n'), KeyModifiers::NONE),
        );
        assert_eq!(a, Some(Action::Sort(SortKey::Name)));
    }

    #[test]
    fn ctrl_c_quits_even_while_typing_a_filter() {
        let ctx = [Context::Always, Context::Filter];
        assert_eq!(
            lookup(&ctx, &ev(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        // A plain `q` is not bound there: it is typed into the filter.
        assert_eq!(
            lookup(&ctx, &ev(KeyCode::Char('q'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn first_context_wins() {
        let logs = [Context::Logs, Context::Global];
        assert_eq!(
            lookup(&logs, &ev(KeyCode::Char('f'), KeyModifiers::NONE)),
            Some(Action::Log(TuiWidgetEvent::FocusKey))
        );
        assert_eq!(
            lookup(
                &[Context::Global],
                &ev(KeyCode::Char('f'), KeyModifiers::NONE)
            ),
            Some(Action::Freeze)
        );
    }

    #[test]
    fn labels() {
        assert_eq!(Key::ctrl('c').label(), "Ctrl-C");
        assert_eq!(Key::code(KeyCode::PageDown).label(), "PgDn");
        assert_eq!(
            BINDINGS
                .iter()
                .find(|b| b.action == Action::Top)
                .map(|b| b.keys_label()),
            Some("g/Home".to_string())
        );
    }
}
