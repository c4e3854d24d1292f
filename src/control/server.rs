//! The control API server: one axum router served on the Unix socket and,
//! behind a bearer token, on an optional TCP listener.
//!
//! Every failure a request can cause is an HTTP answer with a JSON body
//! `{"error": "..."}` (404 unknown path, 405 wrong method, 400 bad JSON or
//! value, 413 body too large, 401 missing or wrong token on TCP); handlers
//! never unwrap anything a client sent, and every query and body value is
//! checked against its range before use, so no request can stop the service.
//! How connections are accepted and bounded is `serve.rs`.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::error::ApiError;
use super::health;
use super::serve::{self, Limits, Listener, Token};
use super::socket::{self, SocketError, SocketGuard};
use super::views::{self, ServiceInfo};
use super::{listen_addr, metrics, socket_path};
use crate::config::ControlConfig;
use crate::config::Secret;
use crate::engine::{Control, Controller, MIN_POLL_INTERVAL};
use crate::history::{History, Keep};
use crate::model::Snapshot;

/// Largest request body accepted (the only body is `{"seconds": N}`).
pub const BODY_LIMIT: usize = 4096;

/// How long `POST /start` etc. wait for the engine to confirm the change.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest poll interval `PUT /poll-interval` accepts (same bound as the flag).
const MAX_POLL_SECS: f64 = 86_400.0;

/// Largest `minutes` `GET /history` accepts (a year); answers cover at most
/// the window the service keeps.
const MAX_HISTORY_MINUTES: f64 = 525_600.0;

/// Longest piece of a client's input quoted back in an error message.
const QUOTE_CHARS: usize = 64;

struct Shared {
    ctl: Controller,
    svc: ServiceInfo,
    /// Masked effective config; replaced on reload.
    config: RwLock<serde_json::Value>,
    history: Mutex<History>,
    /// `control.metrics_per_vm`; reloadable.
    metrics_per_vm: AtomicBool,
    /// The threshold and spool trend `/status` judges health by.
    health: Mutex<health::Watch>,
    /// The TCP listener's `control.token`; reloadable.
    token: Option<Token>,
}

impl Shared {
    /// The history, also after a panic elsewhere left its lock poisoned: every
    /// change to it is one `ingest` that leaves it consistent at each step.
    fn history(&self) -> MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The health watch, likewise: `observe` and `set` leave it whole at each step.
    fn health(&self) -> MutexGuard<'_, health::Watch> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The masked config; a poisoned lock still holds a whole value (it is only replaced).
    fn config_view(&self) -> serde_json::Value {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

type St = State<Arc<Shared>>;

type ApiResult<T> = Result<T, ApiError>;

/// The routes, without transport or authentication.
fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/start", post(start))
        .route("/stop", post(stop))
        .route("/poll-interval", put(poll_interval))
        .route("/vms", get(vms))
        .route("/host", get(host))
        .route("/alerts", get(alert_list))
        .route("/vms/{uuid}", get(vm))
        .route("/history/{uuid}", get(history))
        .route("/config", get(config))
        .route("/snapshots", get(snapshots))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// At most [`QUOTE_CHARS`] characters of `text`, for quoting a client's input.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", quote(req.uri().path())),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} is not allowed on {}",
            quote(req.method().as_str()),
            quote(req.uri().path())
        ),
    )
}

fn latest(s: &Shared) -> Arc<Snapshot> {
    s.ctl.subscribe().borrow().clone()
}

/// The configuration in force (the poll interval as the engine runs it).
fn config_of(s: &Shared, snap: &Snapshot) -> serde_json::Value {
    views::live_config(&s.config_view(), snap)
}

fn status_of(s: &Shared, snap: &Snapshot) -> views::StatusView {
    let config = config_of(s, snap);
    let now = SystemTime::now();
    let health = s.health().judge(snap, s.svc.started_at, now);
    views::status(snap, s.svc, &config, now, health)
}

async fn status(State(s): St) -> Json<views::StatusView> {
    Json(status_of(&s, &latest(&s)))
}

/// Sends `control` and answers with the status once a snapshot shows `done`
/// (or after [`CONFIRM_TIMEOUT`], with whatever the engine shows then).
async fn steer(
    s: &Shared,
    control: Control,
    done: impl Fn(&Snapshot) -> bool,
) -> Json<views::StatusView> {
    let mut rx = s.ctl.subscribe();
    s.ctl.send(control);
    let _ = tokio::time::timeout(CONFIRM_TIMEOUT, rx.wait_for(|snap| done(snap))).await;
    let snap = rx.borrow().clone();
    Json(status_of(s, &snap))
}

async fn start(State(s): St) -> Json<views::StatusView> {
    steer(&s, Control::Start, |snap| snap.collecting).await
}

async fn stop(State(s): St) -> Json<views::StatusView> {
    steer(&s, Control::Stop, |snap| !snap.collecting).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollInterval {
    seconds: f64,
}

/// Parses and checks `{"seconds": N}`: a number of seconds from 0.1 to 86400.
pub fn parse_poll_interval(body: &[u8]) -> Result<Duration, String> {
    let p: PollInterval =
        serde_json::from_slice(body).map_err(|e| format!("expected {{\"seconds\": N}}: {e}"))?;
    let min = MIN_POLL_INTERVAL.as_secs_f64();
    if !p.seconds.is_finite() || p.seconds < min || p.seconds > MAX_POLL_SECS {
        return Err(format!(
            "seconds must be a number from {min} to {MAX_POLL_SECS}, not {}",
            p.seconds
        ));
    }
    Ok(Duration::from_secs_f64(p.seconds))
}

fn body_error(e: BytesRejection) -> ApiError {
    let status = e.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("request body larger than {BODY_LIMIT} bytes")
    } else {
        e.body_text()
    };
    ApiError::new(status, message)
}

async fn poll_interval(
    State(s): St,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<views::StatusView>> {
    let body = body.map_err(body_error)?;
    let d = parse_poll_interval(&body).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    Ok(steer(&s, Control::SetPollInterval(d), |snap| {
        snap.poll_interval == d
    })
    .await)
}

async fn host(State(s): St) -> Json<serde_json::Value> {
    Json(views::host(&latest(&s)))
}

async fn vms(State(s): St) -> Json<views::VmList> {
    Json(views::vm_list(&latest(&s)))
}

async fn alert_list(State(s): St) -> Json<views::AlertList> {
    Json(views::AlertList {
        alerts: views::alerts(&latest(&s)),
    })
}

fn unknown_vm(uuid: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no VM with uuid '{}' in the last collection (GET /vms lists them)",
            quote(uuid)
        ),
    )
}

async fn vm(State(s): St, Path(uuid): Path<String>) -> ApiResult<Json<views::VmDetail>> {
    let snap = latest(&s);
    snap.vms
        .iter()
        .find(|v| v.uuid().eq_ignore_ascii_case(&uuid))
        .map(|v| Json(views::vm_detail(v)))
        .ok_or_else(|| unknown_vm(&uuid))
}

/// The window `GET /history` answers for, from its query: `minutes` (a
/// number greater than 0, at most [`MAX_HISTORY_MINUTES`]) capped at the
/// `kept` window; no query is the whole kept window. Any other parameter is an error.
pub fn history_window(query: Option<&str>, kept: Duration) -> Result<Duration, String> {
    let mut minutes = None;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "minutes" if minutes.is_none() => minutes = Some(value.into_owned()),
            "minutes" => return Err("minutes is given twice".into()),
            other => {
                return Err(format!(
                    "unknown query parameter '{}' (only minutes)",
                    quote(other)
                ))
            }
        }
    }
    let Some(text) = minutes else {
        return Ok(kept);
    };
    let m = text
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|m| m.is_finite() && *m > 0.0 && *m <= MAX_HISTORY_MINUTES)
        .ok_or_else(|| {
            format!(
                "minutes must be a number greater than 0 and at most {MAX_HISTORY_MINUTES}, not '{}'",
                quote(&text)
            )
        })?;
    // In range, so the seconds fit a Duration.
    Ok(Duration::from_secs_f64(m * 60.0).min(kept))
}

async fn history(
    State(s): St,
    Path(uuid): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<views::HistoryView>> {
    let kept = s.history().window();
    let window = history_window(query.as_deref(), kept)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, m))?;
    let key = latest(&s)
        .vms
        .iter()
        .map(|v| v.uuid().to_string())
        .find(|u| u.eq_ignore_ascii_case(&uuid))
        .ok_or_else(|| unknown_vm(&uuid))?;
    let samples: Vec<_> = s.history().samples(&key).into_iter().flatten().collect();
    Ok(Json(views::history(
        &key,
        samples.into_iter(),
        window,
        SystemTime::now(),
    )))
}

async fn config(State(s): St) -> Json<serde_json::Value> {
    let config = config_of(&s, &latest(&s));
    Json(serde_json::json!({ "config": config }))
}

async fn metrics_text(State(s): St) -> Response {
    let per_vm = s.metrics_per_vm.load(Ordering::Relaxed);
    let text = metrics::prometheus(&latest(&s), s.svc.started_at, per_vm);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// One JSON snapshot per line: the current one at once, then one per
/// published snapshot, until the service stops or the client hangs up.
async fn snapshots(State(s): St) -> Response {
    let rx = s.ctl.subscribe();
    let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let snap = rx.borrow_and_update().clone();
        let mut line = match serde_json::to_vec(&views::snapshot(&snap)) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("snapshot {} not sent on /snapshots: {e}", snap.seq);
                b"{}".to_vec()
            }
        };
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), (rx, false)))
    });
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-ndjson"),
        )],
        Body::from_stream(stream),
    )
        .into_response()
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("cannot listen on control.listen {addr}: {source}")]
    Tcp {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The bound socket (and TCP listener), before the engine starts: a second
/// service is refused before it opens a collector of its own.
pub struct Listeners {
    unix: socket::BoundSocket,
    tcp: Option<(tokio::net::TcpListener, Secret)>,
    metrics_per_vm: bool,
    write_stale_after: Option<f64>,
}

/// Checks the settings and binds the listeners.
pub async fn listen(control: &ControlConfig) -> Result<Listeners, ServerError> {
    let unix = socket::bind(&socket_path(control), control.group.as_deref()).await?;
    let tcp = match (listen_addr(control), &control.token) {
        (Some(addr), Some(token)) => Some((
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Tcp { addr, source })?,
            token.clone(),
        )),
        _ => None,
    };
    Ok(Listeners {
        unix,
        tcp,
        metrics_per_vm: control.metrics_per_vm,
        write_stale_after: control.write_stale_after,
    })
}

/// The running control API; dropping it stops serving and removes the socket.
pub struct Server {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    guard: SocketGuard,
    listening: String,
}

impl Server {
    /// Serves the bound listeners until dropped. Also keeps the per-VM
    /// history that `/history` answers from.
    pub fn serve(
        listeners: Listeners,
        ctl: Controller,
        config_view: serde_json::Value,
        svc: ServiceInfo,
        history_window: Duration,
    ) -> Self {
        let Listeners {
            unix,
            tcp,
            metrics_per_vm,
            write_stale_after,
        } = listeners;
        let token = tcp.as_ref().map(|(_, t)| Arc::new(RwLock::new(t.clone())));
        let shared = Arc::new(Shared {
            ctl: ctl.clone(),
            svc,
            config: RwLock::new(config_view),
            history: Mutex::new(History::keeping(history_window, Keep::Api)),
            metrics_per_vm: AtomicBool::new(metrics_per_vm),
            health: Mutex::new(health::Watch::new(write_stale_after)),
            token: token.clone(),
        });
        let mut tasks = vec![tokio::spawn(keep_history(ctl.subscribe(), shared.clone()))];
        let app = routes(shared.clone());
        let mut listening = format!("control API on {}", unix.guard.path().display());
        let guard = unix.guard;
        let unix = Listener::Unix(unix.listener);
        tasks.push(tokio::spawn(serve::serve(
            unix,
            app,
            serve::UNIX_LIMITS,
            None,
        )));
        if let Some((listener, _)) = tcp {
            let addr = listener.local_addr().ok();
            listening.push_str(&format!(
                " and tcp {} (bearer token required)",
                addr.map(|a| a.to_string()).unwrap_or_default()
            ));
            let tcp_limits: Limits = serve::TCP_LIMITS;
            tasks.push(tokio::spawn(serve::serve(
                Listener::Tcp(listener),
                routes(shared.clone()),
                tcp_limits,
                token,
            )));
        }
        Self {
            shared,
            tasks,
            guard,
            listening,
        }
    }

    /// `control API on PATH [and tcp ADDR (bearer token required)]`, for the start-up log.
    pub fn listening(&self) -> &str {
        &self.listening
    }

    pub fn socket_path(&self) -> &std::path::Path {
        self.guard.path()
    }

    /// After a reload: what `/config` and `/status` show from now on,
    /// whether `/metrics` has per-VM series, and the TCP listener's token.
    pub fn set_config(&self, config: &crate::config::Config) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(|e| e.into_inner()) = views::config(config);
        self.shared
            .metrics_per_vm
            .store(config.control.metrics_per_vm, Ordering::Relaxed);
        self.shared.health().set(config.control.write_stale_after);
        // A TCP listener keeps its token when the new config has none:
        // validation refuses control.listen without one.
        if let (Some(current), Some(new)) = (&self.shared.token, &config.control.token) {
            *current.write().unwrap_or_else(|e| e.into_inner()) = new.clone();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn keep_history(mut rx: watch::Receiver<Arc<Snapshot>>, shared: Arc<Shared>) {
    loop {
        let snap = rx.borrow_and_update().clone();
        shared.history().ingest(&snap);
        shared.health().observe(&snap, SystemTime::now());
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_window_takes_only_minutes_in_range() {
        let kept = Duration::from_secs(300);
        let w = |q: &str| history_window(Some(q), kept);
        assert_eq!(history_window(None, kept), Ok(kept));
        assert_eq!(w("minutes=2"), Ok(Duration::from_secs(120)));
        assert_eq!(w("minutes=0.5"), Ok(Duration::from_secs(30)));
        assert_eq!(w("minutes=9999"), Ok(kept), "capped at the kept window");
        assert_eq!(w("minutes=525600"), Ok(kept));
        for bad in [
            "minutes=1e18",
            "minutes=-1",
            "minutes=NaN",
            "minutes=nan",
            "minutes=inf",
            "minutes=-inf",
            "minutes=1e308",
            "minutes=0",
            "minutes=",
            "minutes=x",
            "minutes=525601",
            "minutes=1&minutes=2",
            "window=5",
        ] {
            let err = w(bad).expect_err(bad);
            assert!(err.contains("minutes"), "{bad}: {err}");
        }
        let err = w("minutes=1e18").unwrap_err();
        assert!(
            err.contains("greater than 0") && err.contains("525600"),
            "{err}"
        );
        let long = format!("minutes={}", "9".repeat(10_000));
        assert!(w(&long).unwrap_err().len() < 200, "input quoted in full");
    }

    #[test]
    fn poll_interval_bodies() {
        assert_eq!(
            parse_poll_interval(br#"{"seconds": 0.5}"#),
            Ok(Duration::from_millis(500))
        );
        for bad in [
            &br#"{"seconds": 0}"#[..],
            br#"{"seconds": -1}"#,
            br#"{"seconds": 1e9}"#,
            br#"{"seconds": "1"}"#,
            br#"{"secs": 1}"#,
            br#"{"seconds": 1"#,
            b"",
        ] {
            assert!(
                parse_poll_interval(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
