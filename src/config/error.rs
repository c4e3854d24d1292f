//! The one error type of the config room: a file that cannot be read or parsed, or a
//! value that breaks a rule, each naming the setting or file at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file '{}': {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}
