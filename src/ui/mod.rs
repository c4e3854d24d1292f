//! The ratatui frontend: renders engine snapshots, sends controls.
//!
//! Elm style: [`app`] holds the state and its `update`, [`render`] is the
//! pure view, and [`run`] is the event loop that feeds messages in (keys,
//! resizes, snapshots, signals) and carries the resulting commands out. It
//! redraws only when something arrived, never polls, and restores the
//! terminal on every path.

pub mod alerts;
pub mod app;
pub mod ascii;
pub mod ceiling;
pub mod filter;
pub mod hangup;
pub mod help;
pub mod keys;
pub mod layout;
pub mod levels;
pub mod palette;
pub mod render;
pub mod state_reason;
pub mod theme;

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use color_eyre::eyre::WrapErr;
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use ratatui::DefaultTerminal;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Config;
use crate::engine::{Control, EngineHandle, FinalReport};
use crate::model::Snapshot;
use app::{App, Command, Msg, Options};
use theme::Theme;

/// Routes `tracing` events into tui-logger. Call before the engine starts.
///
/// Levels: `RUST_LOG` when set (tracing's env-filter syntax), else `info`
/// for vmpulse and `warn` for everything else.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};

    // tui-logger captures whatever passes the filter below. Not
    // `tui_logger::init_logger`: with tracing it only adds a thread that wakes
    // 100 times a second to move events from the hot buffer to the widget's;
    // the event loop moves them before each frame instead ([`draw`]).
    tui_logger::set_default_level(tui_logger::LevelFilter::Trace);
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,vmpulse=info"));
    let _ = tracing_subscriber::registry()
        .with(tui_logger::TuiTracingSubscriberLayer.with_filter(filter))
        .try_init();
}

/// What the TUI needs from an engine. [`EngineHandle`] is the real one; the
/// trait lets an example or a test drive the UI with fake snapshots.
pub trait Engine {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>>;
    fn send(&self, control: Control);
    /// Stops and flushes; snapshots keep flowing until it returns.
    fn shutdown(self) -> impl Future<Output = FinalReport>;
    /// Snapshots from before the first one, oldest first, for the history
    /// (sparklines); only `vmpulse fleet`'s database-fed engine has them.
    fn past(&self) -> Vec<Arc<Snapshot>> {
        Vec::new()
    }
}

impl Engine for EngineHandle {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        EngineHandle::subscribe(self)
    }
    fn send(&self, control: Control) {
        EngineHandle::send(self, control)
    }
    fn shutdown(self) -> impl Future<Output = FinalReport> {
        EngineHandle::shutdown(self)
    }
}

/// What the terminal can show: ASCII only, and how many colours.
#[derive(Debug, Clone, Copy)]
pub struct Fit {
    pub ascii: bool,
    pub palette: palette::Palette,
}

impl Fit {
    /// Rewrites a finished frame for this terminal.
    pub fn apply(self, buf: &mut ratatui::buffer::Buffer) {
        if self.ascii {
            ascii::asciify(buf);
        }
        palette::apply(buf, self.palette);
    }
}

/// Runs the TUI until the operator quits; shuts the engine down on the way out.
/// `writer_held`: why this local engine's InfluxDB writer is off (for the header).
pub async fn run(
    engine: EngineHandle,
    config: &Config,
    writer_held: Option<&'static str>,
) -> color_eyre::Result<()> {
    run_held(engine, config, writer_held).await
}

/// [`run`] over any [`Engine`].
pub async fn run_with<E: Engine>(engine: E, config: &Config) -> color_eyre::Result<()> {
    run_held(engine, config, None).await
}

async fn run_held<E: Engine>(
    engine: E,
    config: &Config,
    writer_held: Option<&'static str>,
) -> color_eyre::Result<()> {
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            let report = engine.shutdown().await;
            print_final(&report);
            return Err(e).wrap_err(
                "vmpulse cannot open the terminal for its UI; run it in a terminal, or use --no-ui",
            );
        }
    };
    let result = event_loop(&mut terminal, engine, config, writer_held).await;
    // A terminal that hung up cannot be restored, and stderr may be gone with
    // it: nothing here may panic on a failed write (eprintln! would).
    if let Err(e) = ratatui::try_restore() {
        let _ = writeln!(
            std::io::stderr(),
            "vmpulse: cannot restore the terminal: {e}"
        );
    }
    if let Ok(Some(report)) = &result {
        print_final(report);
    }
    result.map(|_| ())
}

fn print_final(report: &FinalReport) {
    let w = &report.writer;
    let _ = writeln!(
        std::io::stderr(),
        "vmpulse: {} collections, {} lines written, {} dropped, {} rejected, {} unsent",
        report.collector.total_collections,
        w.lines_written,
        w.lines_dropped,
        w.lines_rejected,
        report.unsent
    );
}

/// After the terminal hangs up, how long past the flush timeout the process may
/// live before the backstop ends it ([`hangup`]).
const HANGUP_MARGIN: Duration = Duration::from_secs(5);

/// When the next redraw is due without any input: the flush progress while
/// quitting; otherwise only once a snapshot is overdue (then every second so
/// the age and the STALE mark keep counting).
fn next_tick(app: &App, last_snapshot: Instant) -> Instant {
    let now = Instant::now();
    if app.quitting.is_some() {
        return now + Duration::from_millis(250);
    }
    let due = last_snapshot + render::header::stale_after(&app.live);
    if due > now {
        due
    } else {
        now + Duration::from_secs(1)
    }
}

async fn event_loop<E: Engine>(
    terminal: &mut DefaultTerminal,
    engine: E,
    config: &Config,
    writer_held: Option<&'static str>,
) -> color_eyre::Result<Option<FinalReport>> {
    let mut snapshots: watch::Receiver<Arc<Snapshot>> = engine.subscribe();
    let first = snapshots.borrow_and_update().clone();
    let size = terminal.size()?;
    let theme = Theme::from_env();
    let fit = Fit {
        ascii: ascii::wanted(config.ui.ascii),
        palette: palette::Palette::from_env(),
    };
    let mut app = App::new(
        Options::from_config(config, theme),
        first,
        (size.width, size.height),
    );
    app.writer_held = writer_held;
    app.seed(&engine.past());
    let mut events = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // Ctrl-C arrives as a key in raw mode; a SIGINT from `kill` is a quit too.
    let mut sigint = signal(SignalKind::interrupt())?;
    // The terminal hanging up, seen without reading it (crossterm would spin on
    // it); after it, the flush gets its timeout and a margin before the backstop.
    let mut hangup = hangup::watch(config.influx.flush_timeout + HANGUP_MARGIN);
    let mut engine = Some(engine);
    // The flush runs inside this loop's select (not a spawned task) so the
    // engine's shutdown future need not be Send; the loop always awaits here,
    // so it makes progress continuously while frames keep being drawn.
    let mut shutdown: Option<Pin<Box<dyn Future<Output = FinalReport> + '_>>> = None;
    let mut events_open = true;
    let mut snapshots_open = true;
    // Once the terminal is gone (SIGHUP) drawing fails; keep flushing anyway.
    let mut can_draw = true;
    let mut last_snapshot = Instant::now();

    draw(terminal, &app, fit)?;
    loop {
        let tick = next_tick(&app, last_snapshot);
        let mut redraw = true;
        let command = tokio::select! {
            ev = events.next(), if events_open => match ev {
                Some(Ok(Event::Key(key))) => {
                    let (command, draw) = step(&mut app, Msg::Key(key), SystemTime::now());
                    redraw = draw;
                    command
                }
                Some(Ok(Event::Resize(w, h))) => app.update(Msg::Resize(w, h), SystemTime::now()),
                Some(Ok(_)) => { redraw = false; None }
                // The terminal went away: stop reading it (no busy loop) and quit.
                Some(Err(_)) | None => {
                    events_open = false;
                    can_draw = false;
                    app.update(Msg::Signal("terminal closed"), SystemTime::now())
                }
            },
            changed = snapshots.changed(), if snapshots_open => match changed {
                Ok(()) => {
                    last_snapshot = Instant::now();
                    let snap = snapshots.borrow_and_update().clone();
                    app.update(Msg::Snapshot(snap), SystemTime::now())
                }
                Err(_) => { snapshots_open = false; None }
            },
            _ = sigterm.recv() => app.update(Msg::Signal("SIGTERM"), SystemTime::now()),
            _ = sigint.recv() => app.update(Msg::Signal("SIGINT"), SystemTime::now()),
            _ = sighup.recv() => {
                // The terminal is gone (or going): neither draw on it nor read it.
                can_draw = false;
                events_open = false;
                app.update(Msg::Signal("SIGHUP"), SystemTime::now())
            }
            gone = async { hangup.as_mut().expect("guarded").await }, if hangup.is_some() => {
                hangup = None;
                match gone {
                    Ok(()) => {
                        can_draw = false;
                        events_open = false;
                        app.update(Msg::Signal("terminal closed"), SystemTime::now())
                    }
                    Err(_) => None, // the watcher cannot tell; SIGHUP still can
                }
            }
            done = async { shutdown.as_mut().expect("guarded").await }, if shutdown.is_some() => {
                return Ok(Some(done));
            }
            _ = tokio::time::sleep_until(tick) => None,
        };
        match command {
            Some(Command::Engine(control)) => {
                if let Some(e) = &engine {
                    e.send(control);
                }
            }
            Some(Command::Quit) => {
                if let Some(e) = engine.take() {
                    shutdown = Some(Box::pin(e.shutdown()));
                }
            }
            Some(Command::ForceQuit) => return Ok(None),
            None => {}
        }
        if redraw && can_draw {
            if let Err(e) = draw(terminal, &app, fit) {
                if app.quitting.is_none() {
                    return Err(e.into());
                }
                can_draw = false;
            }
        }
    }
}

/// What one message does: the command to carry out, and whether the screen
/// may have changed, so the loop draws a frame (a key that changes nothing
/// does not; a snapshot, a resize or a signal always may).
fn step(app: &mut App, msg: Msg, now: SystemTime) -> (Option<Command>, bool) {
    let draw = match &msg {
        Msg::Key(key) => app.acts_on(key),
        Msg::Snapshot(_) | Msg::Resize(..) | Msg::Signal(_) => true,
    };
    (app.update(msg, now), draw)
}

/// One frame: the log events since the last one are moved into the log
/// widget's buffer first (tui-logger's hot buffer keeps 1,000, and a frame
/// comes at least once a poll interval while collecting).
fn draw(terminal: &mut DefaultTerminal, app: &App, fit: Fit) -> std::io::Result<()> {
    tui_logger::move_events();
    terminal.draw(|f| {
        render::view(f, app, &app.live, SystemTime::now());
        fit.apply(f.buffer_mut());
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
    use std::time::Duration;

    fn snapshot(collection: u64) -> Arc<Snapshot> {
        let mut s = Snapshot::empty("test:///default", "h", Duration::from_secs(1));
        s.collection = collection;
        s.vms = ["a", "b", "c"]
            .iter()
            .map(|n| crate::fixtures::vm(crate::fixtures::raw(n, n)))
            .collect();
        Arc::new(s)
    }

    fn key(c: char, kind: KeyEventKind) -> Msg {
        let mut k = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        k.kind = kind;
        Msg::Key(k)
    }

    /// Frames the loop draws for `msgs`, and the filter they leave.
    fn frames(msgs: Vec<Msg>) -> (usize, String) {
        let options = Options {
            theme: Theme { color: true },
            disk_ceiling: None,
            net_ceiling: None,
            history: Duration::from_secs(300),
        };
        let mut app = App::new(options, snapshot(1), (100, 40));
        let now = SystemTime::now();
        let drawn = msgs
            .into_iter()
            .filter(|m| step(&mut app, m.clone(), now).1)
            .count();
        (drawn, app.filter.clone())
    }

    #[test]
    fn keys_that_change_nothing_draw_no_frame() {
        use KeyEventKind::{Press, Release};
        let msgs = vec![
            key('z', Press),   // bound to nothing in the list
            key('t', Release), // the release of a key that acted on its press
            key('t', Press),   // the table: a frame
            Msg::Snapshot(snapshot(2)),
            Msg::Snapshot(snapshot(2)), // the engine's refresh between collections
            key('/', Press),            // filter editing: a frame
            key('z', Press),            // typed into the filter: a frame
            key('z', Release),
            Msg::Resize(120, 40),
        ];
        assert_eq!(frames(msgs), (6, "z".to_string()));
    }

    #[test]
    fn while_flushing_only_quitting_again_draws() {
        let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
        let msgs = vec![
            key('q', KeyEventKind::Press), // the quit: the flush progress
            key('t', KeyEventKind::Press),
            ctrl_c,
        ];
        assert_eq!(frames(msgs).0, 2);
    }
}
