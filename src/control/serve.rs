//! Serving the control API's connections ourselves instead of `axum::serve`, so
//! that no peer can hold the service:
//!
//! - a cap on concurrent connections per listener: over it a connection is
//!   closed at once and holds no file descriptor (the Unix socket has its own
//!   cap, so its owner gets in while the TCP listener is full);
//! - hyper's header-read timeout (it needs the timer `axum::serve` does not
//!   give it), which also ends a keep-alive connection idle between requests,
//!   and a deadline on each request (slow bodies);
//! - on TCP the bearer token is checked before the router sees the request,
//!   and a refused connection is closed;
//! - a panicking handler is answered 500 and the connection ends; nothing else notices;
//! - accept errors such as EMFILE neither spin nor stop the listener: a spare
//!   descriptor is given up to take the waiting connection, then a bounded backoff.

use std::convert::Infallible;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use super::error::ApiError;
use crate::config::Secret;

/// What one listener allows its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// For a request head to arrive, counted from the first wait for it (so
    /// also the idle timeout of a keep-alive connection).
    pub header_timeout: Duration,
    /// For a handler to answer, reading the body included.
    pub request_timeout: Duration,
}

/// The owner's socket: the TUI's `/snapshots` streams and `vmpulse status`.
pub const UNIX_LIMITS: Limits = Limits {
    max_connections: 64,
    header_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(10),
};

/// Remote health checks. Both caps together stay far below the 1,024
/// descriptors of systemd's default soft limit.
pub const TCP_LIMITS: Limits = Limits {
    max_connections: 128,
    header_timeout: Duration::from_secs(10),
    request_timeout: Duration::from_secs(10),
};

/// Largest request head (line and headers) hyper reads; longer ones get 431.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// The token a TCP request must carry; shared so a reload can change it.
pub type Token = Arc<RwLock<Secret>>;

/// A bound listener of either kind.
pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

impl Listener {
    async fn accept(&self) -> io::Result<Conn> {
        match self {
            Self::Unix(l) => l.accept().await.map(|(s, _)| Conn::Unix(s)),
            Self::Tcp(l) => l.accept().await.map(|(s, _)| Conn::Tcp(s)),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Unix(_) => "control socket",
            Self::Tcp(_) => "control TCP listener",
        }
    }
}

/// Accepts and serves connections until the task is dropped.
pub async fn serve(listener: Listener, app: Router, limits: Limits, token: Option<Token>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut spare = Spare::open();
    let mut backoff = Backoff::default();
    let mut refused = Refused::default();
    loop {
        let conn = match listener.accept().await {
            Ok(conn) => conn,
            // Out of descriptors: give up the spare one so the waiting
            // connection can be taken (served or closed) instead of spinning on it.
            Err(e) if is_fd_exhaustion(&e) && spare.release() => continue,
            Err(e) => {
                backoff.wait(&e, listener.name()).await;
                continue;
            }
        };
        backoff.reset();
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let (app, token) = (app.clone(), token.clone());
                tokio::spawn(async move {
                    match conn {
                        Conn::Unix(s) => serve_conn(s, app, limits, token, permit).await,
                        Conn::Tcp(s) => serve_conn(s, app, limits, token, permit).await,
                    }
                });
            }
            // Closed here, at once: a full listener holds no descriptor for it.
            Err(_) => refused.note(listener.name(), limits.max_connections),
        }
        spare.restore();
    }
}

async fn serve_conn<I>(
    io: I,
    app: Router,
    limits: Limits,
    token: Option<Token>,
    _permit: OwnedSemaphorePermit,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (app, token) = (app.clone(), token.clone());
        async move {
            let res = answer(app, req, limits.request_timeout, token.as_deref()).await;
            Ok::<_, Infallible>(res)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = conn.await {
        tracing::debug!("control connection ended: {e}");
    }
}

/// One request: the token first, then the router, bounded in time, panics caught.
async fn answer<B>(
    app: Router,
    req: Request<B>,
    timeout: Duration,
    token: Option<&RwLock<Secret>>,
) -> Response<Body>
where
    B: hyper::body::Body<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    if let Some(token) = token {
        if !authorized(&req, token) {
            return unauthorized();
        }
    }
    let handled = AssertUnwindSafe(app.oneshot(req.map(Body::new))).catch_unwind();
    match tokio::time::timeout(timeout, handled).await {
        Ok(Ok(Ok(res))) => res,
        Ok(Ok(Err(never))) => match never {},
        Ok(Err(panic)) => {
            let what = panic_text(&*panic);
            tracing::error!("control API handler failed ({what}); answered 500, service goes on");
            closing(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the request failed inside the service (logged); other requests are unaffected",
            ))
        }
        Err(_) => closing(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request not completed within {} s (send the whole body at once)",
                timeout.as_secs()
            ),
        )),
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// `Authorization: Bearer <control.token>`, compared in constant time.
fn authorized<B>(req: &Request<B>, token: &RwLock<Secret>) -> bool {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let token = token.read().unwrap_or_else(|e| e.into_inner());
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

fn unauthorized() -> Response<Body> {
    let mut res = closing(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "missing or wrong bearer token (Authorization: Bearer <control.token>)",
    ));
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// An error answer after which hyper closes the connection.
fn closing(err: ApiError) -> Response<Body> {
    let mut res = err.into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

fn is_fd_exhaustion(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// One descriptor kept open to be given up when the process runs out.
struct Spare(Option<std::fs::File>);

impl Spare {
    fn open() -> Self {
        Self(std::fs::File::open("/dev/null").ok())
    }

    /// Closes the spare; `false` when there was none to close.
    fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

/// Counts an event and says when it is time to log it again (once a minute).
#[derive(Default)]
struct Tally {
    count: u64,
    logged: Option<Instant>,
}

const LOG_EVERY: Duration = Duration::from_secs(60);

impl Tally {
    /// Counts one; `Some(count so far)` when it should be logged.
    fn count(&mut self) -> Option<u64> {
        self.count += 1;
        let due = self.logged.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        due.then(|| {
            self.logged = Some(Instant::now());
            self.count
        })
    }
}

/// Waits after a failed accept: 10 ms doubling to 1 s.
#[derive(Default)]
struct Backoff {
    delay: Option<Duration>,
    failures: Tally,
}

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The wait after a failed accept that followed a wait of `previous`.
fn next_delay(previous: Option<Duration>) -> Duration {
    previous.map_or(BACKOFF_MIN, |d| (d * 2).min(BACKOFF_MAX))
}

impl Backoff {
    async fn wait(&mut self, e: &io::Error, name: &str) {
        if let Some(n) = self.failures.count() {
            tracing::warn!(
                "{name}: cannot accept connections ({e}; {n} time(s)); retrying with backoff"
            );
        }
        let delay = next_delay(self.delay);
        self.delay = Some(delay);
        tokio::time::sleep(delay).await;
    }

    fn reset(&mut self) {
        self.delay = None;
    }
}

/// Connections closed because the listener was full.
#[derive(Default)]
struct Refused(Tally);

impl Refused {
    fn note(&mut self, name: &str, cap: usize) {
        if let Some(n) = self.0.count() {
            tracing::warn!(
                "{name}: {cap} connections open, the most it serves; closed new ones at once ({n} so far)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use axum::routing::get;

    async fn call(app: &Router, path: &str, token: Option<&RwLock<Secret>>) -> Response<Body> {
        let req = Request::get(path)
            .header(header::AUTHORIZATION, "Bearer right")
            .body(Body::empty())
            .expect("request");
        answer(app.clone(), req, Duration::from_millis(200), token).await
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_next_request_is_served() {
        let app = Router::new()
            .route(
                "/boom",
                get(|| async { panic!("handler bug") as &'static str }),
            )
            .route("/slow", get(|| tokio::time::sleep(Duration::from_secs(5))))
            .route("/ok", get(|| async { "fine" }));
        let res = call(&app, "/boom", None).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(res.headers()[header::CONNECTION], "close");
        assert_eq!(call(&app, "/ok", None).await.status(), StatusCode::OK);
        let res = call(&app, "/slow", None).await;
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        // The token is checked before the router runs anything.
        let wrong = RwLock::new(Secret::new("other"));
        let res = call(&app, "/boom", Some(&wrong)).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let right = RwLock::new(Secret::new("right"));
        assert_eq!(
            call(&app, "/ok", Some(&right)).await.status(),
            StatusCode::OK
        );
    }

    #[test]
    fn backoff_doubles_to_a_ceiling() {
        let mut waits = Vec::new();
        let mut d = None;
        for _ in 0..9 {
            d = Some(next_delay(d));
            waits.extend(d.map(|d| d.as_millis()));
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        let e = io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_fd_exhaustion(&e));
        assert!(!is_fd_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
