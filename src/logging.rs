//! Logging for headless mode: `tracing` to stderr, filtered by `VMPULSE_LOG`
//! (or `RUST_LOG`), default `info`. The TUI installs its own subscriber (`ui::init_logging`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init_stderr() {
    let filter = std::env::var("VMPULSE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .try_init();
}
