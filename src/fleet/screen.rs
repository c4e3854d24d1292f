//! The host list screen.

use crate::config::Config;

/// The host list screen (not in this build yet: `--once` prints the same rows).
pub async fn run(_config: &Config) -> color_eyre::Result<()> {
    Err(color_eyre::eyre::eyre!(
        "the fleet screen is not in this build; use vmpulse fleet --once"
    ))
}
