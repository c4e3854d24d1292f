//! A small HTTP/1.1 client for the control API (hyper over a tokio `UnixStream`,
//! or a `TcpStream` with the bearer token of `control.listen`), used by
//! `vmpulse status|start|stop`, the TUI's attach and `vmpulse fleet`'s live attach.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};

use crate::config::Secret;
use crate::control::socket::access_hint;
use crate::control::views::StatusView;

/// Bound on one request (connect, send, read the whole answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no vmpulse service answers on {} (start one with `vmpulse --no-ui`, or pass --socket)", .path.display())]
    Absent { path: PathBuf },
    #[error("permission denied on {}: {hint}", .path.display())]
    PermissionDenied { path: PathBuf, hint: String },
    #[error("control socket {}: {message}", .path.display())]
    Io { path: PathBuf, message: String },
    /// A control API on TCP (`control.listen`) that does not answer or speak HTTP.
    #[error("control API {url}: {message}")]
    Tcp { url: String, message: String },
    #[error("the service answered {status}: {message}")]
    Status { status: StatusCode, message: String },
    #[error("the service did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
}

/// Where the API is: a Unix socket, or `control.listen` with its token.
#[derive(Debug, Clone)]
enum Remote {
    Unix,
    Tcp {
        url: String,
        addr: String,
        token: Secret,
    },
}

#[derive(Debug, Clone)]
pub struct Client {
    path: PathBuf,
    remote: Remote,
}

/// Either kind of connection, for one hyper handshake.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Stream for T {}

impl Client {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            remote: Remote::Unix,
        }
    }

    /// The API of `control.listen` at `url` (`http://ADDR:PORT`, connecting to
    /// `addr`), each request carrying `Authorization: Bearer <token>`.
    pub fn tcp(url: &str, addr: &str, token: Secret) -> Self {
        Self {
            path: PathBuf::from(url),
            remote: Remote::Tcp {
                url: url.to_string(),
                addr: addr.to_string(),
                token,
            },
        }
    }

    /// The socket's path, or the TCP API's url.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ClientError> {
        match &self.remote {
            Remote::Unix => match UnixStream::connect(&self.path).await {
                Ok(s) => Ok(Box::new(s)),
                Err(e) => Err(self.connect_error(e)),
            },
            Remote::Tcp { addr, .. } => match TcpStream::connect(addr.as_str()).await {
                Ok(s) => Ok(Box::new(s)),
                Err(e) => Err(self.io(format!("cannot connect to {addr}: {e}"))),
            },
        }
    }

    /// Sends one request and returns the response head and its streaming body.
    pub async fn open(
        &self,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        let stream = tokio::time::timeout(REQUEST_TIMEOUT, self.connect())
            .await
            .map_err(|_| ClientError::Timeout)??;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.io(e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, "localhost");
        if let Remote::Tcp { token, .. } = &self.remote {
            req = req.header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", token.expose()),
            );
        }
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.io(e))?;
        sender.send_request(req).await.map_err(|e| self.io(e))
    }

    /// One request, whole answer; non-2xx answers become [`ClientError::Status`]
    /// carrying the service's `error` message.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, ClientError> {
        let fut = async {
            let res = self.open(method, uri, body).await?;
            let status = res.status();
            let bytes = res
                .into_body()
                .collect()
                .await
                .map_err(|e| self.io(e))?
                .to_bytes();
            if status.is_success() {
                Ok(bytes)
            } else {
                let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
                Err(ClientError::Status { status, message })
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, fut)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    pub async fn status(&self) -> Result<StatusView, ClientError> {
        let bytes = self.call(Method::GET, "/status", None).await?;
        self.parse(&bytes)
    }

    /// `POST /start` or `POST /stop`; the answer is the new status.
    pub async fn post(&self, uri: &str) -> Result<StatusView, ClientError> {
        let bytes = self.call(Method::POST, uri, None).await?;
        self.parse(&bytes)
    }

    pub async fn set_poll_interval(&self, d: Duration) -> Result<StatusView, ClientError> {
        let body = serde_json::json!({"seconds": d.as_secs_f64()}).to_string();
        let bytes = self
            .call(Method::PUT, "/poll-interval", Some(body.into_bytes()))
            .await?;
        self.parse(&bytes)
    }

    fn parse(&self, bytes: &[u8]) -> Result<StatusView, ClientError> {
        serde_json::from_slice(bytes).map_err(|e| {
            self.io(format!(
                "unexpected answer (another program on this socket?): {e}"
            ))
        })
    }

    fn connect_error(&self, e: std::io::Error) -> ClientError {
        use std::io::ErrorKind::*;
        match e.kind() {
            NotFound | ConnectionRefused => ClientError::Absent {
                path: self.path.clone(),
            },
            PermissionDenied => ClientError::PermissionDenied {
                path: self.path.clone(),
                hint: access_hint(&self.path),
            },
            _ => self.io(e),
        }
    }

    fn io(&self, e: impl std::fmt::Display) -> ClientError {
        match &self.remote {
            Remote::Unix => ClientError::Io {
                path: self.path.clone(),
                message: e.to_string(),
            },
            Remote::Tcp { url, .. } => ClientError::Tcp {
                url: url.clone(),
                message: e.to_string(),
            },
        }
    }
}
