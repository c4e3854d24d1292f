//! Logging setup for headless mode (stderr).
