//! The TUI attached to a running service: an [`Engine`] whose snapshots come
//! from `GET /snapshots` and whose controls become `POST /start`, `POST /stop`
//! and `PUT /poll-interval`. Quitting detaches; the service keeps collecting.
//!
//! When the stream ends (the service stopped or restarted) the last snapshot
//! is republished marked [`Origin::Gone`] and the socket is retried every
//! second; a service answering again is reattached without a keypress.
//!
//! `vmpulse fleet` attaches the same way to a host's `control.listen` over TCP
//! with its token ([`Attached::connect_live`]); its snapshots are marked
//! [`Origin::Live`] (and `gone_since` while it reattaches).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::BodyExt;
use hyper::Method;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::client::{Client, ClientError};
use crate::config::Config;
use crate::control::views::{parse_rfc3339, SnapshotView};
use crate::engine::{Control, FinalReport};
use crate::model::{Origin, Snapshot};
use crate::ui::Engine;

/// Longest line accepted from `/snapshots` (a snapshot of thousands of VMs fits).
const MAX_LINE: usize = 64 * 1024 * 1024;

/// How often a gone service is looked for again.
const RETRY: Duration = Duration::from_secs(1);

/// Whom the snapshots come from, for their [`Origin`].
#[derive(Debug, Clone)]
enum Peer {
    /// The service on this machine's control socket.
    Socket,
    /// A fleet host's control API on TCP.
    Fleet { host: String },
}

pub struct Attached {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    controls: mpsc::UnboundedSender<Control>,
    tasks: Vec<JoinHandle<()>>,
}

impl Attached {
    /// Connects to the service on `socket` and reads its first snapshot.
    pub async fn connect(socket: &Path) -> Result<Self, ClientError> {
        Self::attach(Client::new(socket), Peer::Socket).await
    }

    /// Connects to `host`'s control API at `url` (`http://ADDR:PORT`, reached at
    /// `addr`) with its bearer `token`, and reads its first snapshot.
    pub async fn connect_live(
        host: &str,
        url: &str,
        addr: &str,
        token: crate::config::Secret,
    ) -> Result<Self, ClientError> {
        let peer = Peer::Fleet {
            host: host.to_string(),
        };
        Self::attach(Client::tcp(url, addr, token), peer).await
    }

    async fn attach(client: Client, peer: Peer) -> Result<Self, ClientError> {
        let (origin, mut lines) = open_stream(&client, &peer).await?;
        let first = tokio::time::timeout(super::client::REQUEST_TIMEOUT, lines.next())
            .await
            .ok()
            .flatten()
            .ok_or_else(|| ClientError::Io {
                path: client.path().to_path_buf(),
                message: "the service sent no snapshot (closed the stream or was silent)".into(),
            })?;
        let (tx, snapshots) = watch::channel(Arc::new(first));
        let (controls, rx) = mpsc::unbounded_channel();
        let tasks = vec![
            tokio::spawn(follow(client.clone(), peer, origin, lines, tx)),
            tokio::spawn(steer(client, rx)),
        ];
        Ok(Self {
            snapshots,
            controls,
            tasks,
        })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Engine for Attached {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    fn send(&self, control: Control) {
        let _ = self.controls.send(control);
    }

    /// Detaches: the service is not asked to stop or flush.
    async fn shutdown(self) -> FinalReport {
        let last = self.snapshots.borrow().clone();
        FinalReport {
            collector: last.collector.clone(),
            writer: last.writer.clone(),
            unsent: 0,
        }
    }
}

/// The snapshot lines of one `/snapshots` response, parsed.
struct Lines {
    body: hyper::body::Incoming,
    buf: Vec<u8>,
    origin: Origin,
}

impl Lines {
    /// The next snapshot, marked with its origin; `None` when the stream ends.
    async fn next(&mut self) -> Option<Snapshot> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                match serde_json::from_slice::<SnapshotView>(&line).map(SnapshotView::into_snapshot)
                {
                    Ok(mut snap) => {
                        snap.origin = self.origin.clone();
                        return Some(snap);
                    }
                    Err(e) => {
                        tracing::warn!("unreadable snapshot from the service skipped: {e}");
                        continue;
                    }
                }
            }
            if self.buf.len() > MAX_LINE {
                tracing::warn!("snapshot line over {MAX_LINE} bytes; reconnecting");
                return None;
            }
            let frame = self.body.frame().await?.ok()?;
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }
}

/// `GET /status` for the pid and start time, then `GET /snapshots`.
async fn open_stream(client: &Client, peer: &Peer) -> Result<(Origin, Lines), ClientError> {
    let status = client.status().await?;
    let (pid, started_at) = (
        status.pid,
        parse_rfc3339(&status.started_at).unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let origin = match peer {
        Peer::Socket => Origin::Attached { pid, started_at },
        Peer::Fleet { host } => Origin::Live {
            host: host.clone(),
            pid,
            started_at,
            gone_since: None,
        },
    };
    let res = client.open(Method::GET, "/snapshots", None).await?;
    if !res.status().is_success() {
        return Err(ClientError::Status {
            status: res.status(),
            message: "GET /snapshots refused".into(),
        });
    }
    let lines = Lines {
        body: res.into_body(),
        buf: Vec::new(),
        origin: origin.clone(),
    };
    Ok((origin, lines))
}

/// Republishes the service's snapshots; marks it gone and reattaches when it returns.
async fn follow(
    client: Client,
    peer: Peer,
    mut origin: Origin,
    mut lines: Lines,
    tx: watch::Sender<Arc<Snapshot>>,
) {
    loop {
        while let Some(snap) = lines.next().await {
            if tx.send(Arc::new(snap)).is_err() {
                return;
            }
        }
        let since = SystemTime::now();
        let mut gone = (**tx.borrow()).clone();
        gone.origin = gone_origin(origin, since);
        gone.seq += 1;
        if tx.send(Arc::new(gone)).is_err() {
            return;
        }
        loop {
            tokio::time::sleep(RETRY).await;
            if tx.is_closed() {
                return;
            }
            if let Ok((o, l)) = open_stream(&client, &peer).await {
                tracing::info!("reattached to the service on {}", client.path().display());
                origin = o;
                lines = l;
                break;
            }
        }
    }
}

/// The origin of the last snapshot once the stream broke at `since`.
fn gone_origin(origin: Origin, since: SystemTime) -> Origin {
    match origin {
        Origin::Live {
            host,
            pid,
            started_at,
            ..
        } => {
            tracing::warn!("{host}'s service pid {pid} gone; looking for it again every second");
            Origin::Live {
                host,
                pid,
                started_at,
                gone_since: Some(since),
            }
        }
        Origin::Attached { pid, .. } | Origin::Gone { pid, .. } => {
            tracing::warn!("service pid {pid} gone; looking for it again every second");
            Origin::Gone { pid, since }
        }
        Origin::Local | Origin::Database { .. } => Origin::Gone { pid: 0, since },
    }
}

/// Carries the TUI's controls to the service, one request at a time.
async fn steer(client: Client, mut rx: mpsc::UnboundedReceiver<Control>) {
    while let Some(control) = rx.recv().await {
        let result = match control {
            Control::Start => client.post("/start").await,
            Control::Stop => client.post("/stop").await,
            Control::SetPollInterval(d) => client.set_poll_interval(d).await,
        };
        if let Err(e) = result {
            tracing::warn!("service did not take {control:?}: {e}");
        }
    }
}

/// The TUI: attached to the service on `control.socket` (when unset: this
/// user's default, then the system socket) when one answers (unless
/// `--standalone`), else with its own collector, which ships only when no
/// service runs here or `--write` asks for it (`shipper`).
pub async fn run_tui(config: &Config) -> color_eyre::Result<()> {
    let socket = &crate::control::client_socket(&config.control);
    let service_runs = if config.run.standalone {
        service_runs(socket).await
    } else {
        match Attached::connect(socket).await {
            Ok(attached) => {
                tracing::info!("attached to the service on {}", socket.display());
                let result = crate::ui::run_with(attached, config).await;
                if result.is_ok() {
                    eprintln!(
                        "vmpulse: detached; the service on {} keeps running",
                        socket.display()
                    );
                }
                return result;
            }
            Err(ClientError::Absent { .. }) => false,
            Err(e @ ClientError::PermissionDenied { .. }) => {
                tracing::warn!("{e}; running standalone with a collector of its own");
                true
            }
            Err(e) => {
                tracing::warn!("cannot attach: {e}; running standalone");
                true
            }
        }
    };
    let hold = super::shipper::hold(config, service_runs);
    if let Some(h) = &hold {
        tracing::warn!("{}", h.log_text());
    }
    let local = super::shipper::apply(config, hold.as_ref());
    let engine = crate::engine::EngineHandle::start(&local)?;
    crate::ui::run(engine, &local, hold.as_ref().map(|h| h.header_text())).await
}

/// Whether a service listens on `socket`: it accepts, or refuses this user.
/// A socket file nobody listens on (a crashed service) is no service.
async fn service_runs(socket: &Path) -> bool {
    match tokio::net::UnixStream::connect(socket).await {
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
    }
}
