//! The clients of a running service's control API, on the other side of its socket.
//!
//! - [`client`]: HTTP/1.1 requests over the Unix socket (hyper over `UnixStream`).
//! - [`shell`]: `vmpulse status|start|stop`, with LSB exit codes.
//! - [`attach`]: a [`crate::ui::Engine`] fed by `GET /snapshots`, so the TUI runs
//!   unchanged on a service's snapshots.
//! - [`shipper`]: whether a TUI collecting on its own next to a service (or with
//!   `--standalone`) holds its InfluxDB writer off unless `--write`.

pub mod attach;
pub mod client;
pub mod shell;
pub mod shipper;
