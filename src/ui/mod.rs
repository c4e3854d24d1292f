//! The ratatui frontend: renders engine snapshots, sends controls.

use crate::config::Config;
use crate::engine::EngineHandle;

/// Routes `tracing` events into tui-logger. Call before the engine starts.
pub fn init_logging() {}

/// Runs the TUI until the operator quits; shuts the engine down on the way out.
pub async fn run(engine: EngineHandle, config: &Config) -> color_eyre::Result<()> {
    let _ = (engine, config);
    Ok(())
}
