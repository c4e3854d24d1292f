//! The `--no-ui` frontend: status lines on stderr, clean stop on SIGINT/SIGTERM.
