//! The control API server: one axum router served on the Unix socket and,
//! behind a bearer token, on an optional TCP listener.
//!
//! Every failure a request can cause is an HTTP answer with a JSON body
//! `{"error": "..."}` (404 unknown path, 405 wrong method, 400 bad JSON or
//! value, 413 body too large, 401 missing or wrong token on TCP); handlers
//! never unwrap anything a client sent, so no request can stop the service.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::health;
use super::socket::{self, SocketError, SocketGuard};
use super::views::{self, ServiceInfo};
use super::{listen_addr, metrics, socket_path};
use crate::config::ControlConfig;
use crate::config::Secret;
use crate::engine::{Control, Controller, MIN_POLL_INTERVAL};
use crate::model::Snapshot;
use crate::ui::history::History;

/// Largest request body accepted (the only body is `{"seconds": N}`).
pub const BODY_LIMIT: usize = 4096;

/// How long `POST /start` etc. wait for the engine to confirm the change.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest poll interval `PUT /poll-interval` accepts (same bound as the flag).
const MAX_POLL_SECS: f64 = 86_400.0;

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
}

type St = State<Arc<Shared>>;

/// A JSON error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The routes, without transport or authentication.
fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/start", post(start))
        .route("/stop", post(stop))
        .route("/poll-interval", put(poll_interval))
        .route("/vms", get(vms))
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

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {}", req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

fn latest(s: &Shared) -> Arc<Snapshot> {
    s.ctl.subscribe().borrow().clone()
}

/// The configuration in force (the poll interval as the engine runs it).
fn config_of(s: &Shared, snap: &Snapshot) -> serde_json::Value {
    let config = s.config.read().map(|c| c.clone()).unwrap_or_default();
    views::live_config(&config, snap)
}

fn status_of(s: &Shared, snap: &Snapshot) -> views::StatusView {
    let config = config_of(s, snap);
    let now = SystemTime::now();
    let health = match s.health.lock() {
        Ok(h) => h.judge(snap, s.svc.started_at, now),
        Err(e) => e.get_ref().judge(snap, s.svc.started_at, now),
    };
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

async fn vms(State(s): St) -> Json<views::VmList> {
    Json(views::vm_list(&latest(&s)))
}

fn unknown_vm(uuid: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no VM with uuid '{uuid}' in the last collection (GET /vms lists them)"),
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

#[derive(Deserialize)]
struct HistoryQuery {
    minutes: Option<f64>,
}

async fn history(
    State(s): St,
    Path(uuid): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<views::HistoryView>> {
    let Query(q) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("minutes must be a number: {}", e.body_text()),
        )
    })?;
    let h = s
        .history
        .lock()
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "history unavailable"))?;
    let kept = h.window();
    let window = match q.minutes {
        None => kept,
        Some(m) if m.is_finite() && m > 0.0 => Duration::from_secs_f64(m * 60.0).min(kept),
        Some(m) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("minutes must be greater than 0, not {m}"),
            ))
        }
    };
    let key = latest(&s)
        .vms
        .iter()
        .map(|v| v.uuid().to_string())
        .find(|u| u.eq_ignore_ascii_case(&uuid))
        .ok_or_else(|| unknown_vm(&uuid))?;
    let samples = h.samples(&key).into_iter().flatten();
    Ok(Json(views::history(
        &key,
        samples,
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
        let mut line = match serde_json::to_vec(&*snap) {
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

/// TCP only: every request needs `Authorization: Bearer <control.token>`.
async fn require_token(State(token): State<Arc<Secret>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        return next.run(req).await;
    }
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <control.token>)",
    )
    .into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
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
        let shared = Arc::new(Shared {
            ctl: ctl.clone(),
            svc,
            config: RwLock::new(config_view),
            history: Mutex::new(History::new(history_window)),
            metrics_per_vm: AtomicBool::new(metrics_per_vm),
            health: Mutex::new(health::Watch::new(write_stale_after)),
        });
        let mut tasks = vec![tokio::spawn(keep_history(ctl.subscribe(), shared.clone()))];
        let app = routes(shared.clone());
        let mut listening = format!("control API on {}", unix.guard.path().display());
        let guard = unix.guard;
        let listener = unix.listener;
        tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("control socket stopped serving: {e}");
            }
        }));
        if let Some((listener, token)) = tcp {
            let addr = listener.local_addr().ok();
            let app = routes(shared.clone()).layer(middleware::from_fn_with_state(
                Arc::new(token),
                require_token,
            ));
            listening.push_str(&format!(
                " and tcp {} (bearer token required)",
                addr.map(|a| a.to_string()).unwrap_or_default()
            ));
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!("control TCP listener stopped serving: {e}");
                }
            }));
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

    /// After a reload: what `/config` and `/status` show from now on, and
    /// whether `/metrics` has per-VM series.
    pub fn set_config(&self, config: &crate::config::Config) {
        if let Ok(mut c) = self.shared.config.write() {
            *c = views::config(config);
        }
        self.shared
            .metrics_per_vm
            .store(config.control.metrics_per_vm, Ordering::Relaxed);
        if let Ok(mut h) = self.shared.health.lock() {
            h.set(config.control.write_stale_after);
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
        if let Ok(mut h) = shared.history.lock() {
            h.ingest(&snap);
        }
        if let Ok(mut h) = shared.health.lock() {
            h.observe(&snap, SystemTime::now());
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
