//! Where batches go: one small trait, two outputs.
//!
//! The shape of OpenTelemetry's exporter: [`Sink::export`] takes one batch
//! and resolves to an [`Outcome`]; the writer task decides what happens
//! next (retry, split, spool...), so its rules can be tested with a fake sink.
//! [`HttpSink`] posts to InfluxDB (v3, v2 or v1 write API); [`FileSink`]
//! appends to `--output FILE` or stdout.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures::future::BoxFuture;
use reqwest::header::{
    HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};

use super::queue::lock;
use super::retry::{self, Outcome};
use super::WriterError;
use crate::config::{Config, InfluxApi, InfluxConfig, OutputTarget, Secret};
use crate::model::WriterState;

/// At most this much of a response body is read: InfluxDB's answers are
/// small, and a proxy or a hostile peer must not make us buffer gigabytes.
pub const MAX_RESPONSE_BODY: usize = 64 << 10;

/// One batch of lines (no trailing newlines), shared with the task so that a
/// send that panics never takes its lines with it.
pub type Batch = Arc<Vec<String>>;

pub trait Sink: Send + Sync + 'static {
    /// Delivers one batch; resolves to what the destination answered.
    fn export(self: Arc<Self>, batch: Batch) -> BoxFuture<'static, Outcome>;
    /// Requests at once (`--output` keeps its lines in order with one).
    fn max_in_flight(&self, configured: usize) -> usize;
    /// The writer's state while exports succeed.
    fn ok_state(&self) -> WriterState;
    /// For stats and logs (no credentials).
    fn endpoint(&self) -> String;
    /// Whether undeliverable lines may wait in the on-disk spool (InfluxDB
    /// may come back; a file that cannot be written is the operator's call).
    fn spools(&self) -> bool;
}

/// How requests authenticate (also the fleet's queries, `crate::fleet`).
pub(crate) enum Auth {
    None,
    Header(HeaderValue),
    Basic { user: String, password: Secret },
}

pub struct HttpSink {
    client: reqwest::Client,
    /// Write URL without credentials.
    url: url::Url,
    auth: Auth,
    gzip_min_bytes: usize,
    api: InfluxApi,
    /// For stats and logs: no credentials, no token.
    endpoint: String,
}

impl HttpSink {
    pub fn new(config: &Config, base: &url::Url) -> Result<Self, WriterError> {
        let ic = &config.influx;
        let (clean, user, password) = split_credentials(base);
        let shown = clean.as_str().trim_end_matches('/').to_string();
        let (url, detail) = write_url(clean, ic);
        Ok(Self {
            client: http_client(ic)?,
            url,
            auth: auth(ic, user, password)?,
            gzip_min_bytes: ic.gzip_min_bytes,
            api: ic.api,
            endpoint: format!("{shown} ({}, {detail})", ic.api.as_str()),
        })
    }

    async fn post(&self, body: Vec<u8>, gzip: bool) -> Outcome {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "text/plain; charset=utf-8");
        if gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Header(v) => req.header(AUTHORIZATION, v.clone()),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password.expose())),
        };
        let mut resp = match req.body(body).send().await {
            Ok(r) => r,
            Err(e) => return retry::network_error(&error_chain(&e)),
        };
        let status = resp.status().as_u16();
        if (300..400).contains(&status) {
            return redirect(status, resp.headers().get(LOCATION));
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // The status alone decides when the body cannot be read.
        let body = read_capped(&mut resp, MAX_RESPONSE_BODY).await;
        retry::classify_for(
            self.api,
            status,
            retry_after.as_deref(),
            &body,
            SystemTime::now(),
        )
    }
}

/// Up to `cap` bytes of the body; what follows is never read (the
/// connection is dropped with the response). A read error ends it early.
async fn read_capped(resp: &mut reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < cap {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(cap - body.len());
                body.extend_from_slice(&chunk[..take]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

/// A 3xx is an error for the operator: the lines are kept and retried slowly
/// (never counted as written); the message names where it pointed.
fn redirect(status: u16, location: Option<&HeaderValue>) -> Outcome {
    let to = location
        .and_then(|v| v.to_str().ok())
        .map(mask_location)
        .unwrap_or_else(|| "no Location".into());
    Outcome::Failing {
        status,
        message: format!(
            "InfluxDB answered {status} redirecting to {to}; redirects are not followed: set INFLUX_URL / --influx-url to the address that takes writes"
        ),
    }
}

/// A Location without any password it may carry, cut to a readable length.
fn mask_location(raw: &str) -> String {
    let shown = match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    };
    shown.chars().take(200).collect()
}

/// An error and its causes ("error sending request ...: connection refused").
/// reqwest errors carry the URL, which never holds credentials here.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s
}

fn body_of(lines: &[String]) -> Vec<u8> {
    let len = lines.iter().map(|l| l.len() + 1).sum();
    let mut body = Vec::with_capacity(len);
    for l in lines {
        body.extend_from_slice(l.as_bytes());
        body.push(b'\n');
    }
    body
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

impl Sink for HttpSink {
    fn export(self: Arc<Self>, batch: Batch) -> BoxFuture<'static, Outcome> {
        Box::pin(async move {
            let gzip_min = self.gzip_min_bytes;
            // Compressing a few MiB takes milliseconds: off the async threads.
            let prepared = tokio::task::spawn_blocking(move || {
                let body = body_of(&batch);
                if gzip_min > 0 && body.len() >= gzip_min {
                    if let Ok(z) = gzip(&body) {
                        return (z, true);
                    }
                }
                (body, false)
            })
            .await;
            match prepared {
                Ok((body, gz)) => self.post(body, gz).await,
                Err(e) => retry::network_error(&format!("cannot prepare the request: {e}")),
            }
        })
    }

    fn max_in_flight(&self, configured: usize) -> usize {
        configured.max(1)
    }

    fn ok_state(&self) -> WriterState {
        WriterState::Ok
    }

    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn spools(&self) -> bool {
        true
    }
}

enum Out {
    Stdout,
    File(File),
}

/// `--output FILE|-`: line protocol appended to a file or stdout.
pub struct FileSink {
    target: String,
    out: Mutex<Out>,
}

impl FileSink {
    pub fn open(target: &OutputTarget) -> Result<Self, WriterError> {
        let (target, out) = match target {
            OutputTarget::Stdout => ("stdout".to_string(), Out::Stdout),
            OutputTarget::File(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| WriterError::Output {
                        path: path.display().to_string(),
                        message: e.to_string(),
                    })?;
                (path.display().to_string(), Out::File(file))
            }
        };
        Ok(Self {
            target,
            out: Mutex::new(out),
        })
    }

    /// Appends one body. A file that fails half way is cut back to where it
    /// was, so a retry never leaves a torn line followed by a duplicate.
    fn write_body(&self, body: &[u8]) -> std::io::Result<()> {
        match &mut *lock(&self.out) {
            Out::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(body).and_then(|_| out.flush())
            }
            Out::File(f) => append_whole(f, body, &self.target),
        }
    }
}

/// A file that can be measured and cut back.
trait Cuttable: Write {
    fn size(&self) -> std::io::Result<u64>;
    fn cut(&mut self, len: u64) -> std::io::Result<()>;
}

impl Cuttable for File {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn cut(&mut self, len: u64) -> std::io::Result<()> {
        // Append mode: the next write lands at the new end.
        self.set_len(len)
    }
}

/// Writes all of `body` or, on error, none of it.
fn append_whole(f: &mut impl Cuttable, body: &[u8], name: &str) -> std::io::Result<()> {
    let start = f.size()?;
    let res = f.write_all(body).and_then(|_| f.flush());
    if res.is_err() {
        if let Err(e) = f.cut(start) {
            tracing::warn!("cannot cut a partial write from {name}: {e}");
        }
    }
    res
}

impl Sink for FileSink {
    fn export(self: Arc<Self>, batch: Batch) -> BoxFuture<'static, Outcome> {
        Box::pin(async move {
            let res = tokio::task::spawn_blocking(move || self.write_body(&body_of(&batch))).await;
            match res {
                Ok(Ok(())) => Outcome::Done,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Outcome::Closed {
                    message: format!("output closed by its reader: {e}"),
                },
                Ok(Err(e)) => retry::network_error(&format!("cannot write output: {e}")),
                Err(e) => retry::network_error(&format!("output write task failed: {e}")),
            }
        })
    }

    fn max_in_flight(&self, _configured: usize) -> usize {
        1
    }

    fn ok_state(&self) -> WriterState {
        WriterState::Output {
            target: self.target.clone(),
        }
    }

    fn endpoint(&self) -> String {
        self.target.clone()
    }

    fn spools(&self) -> bool {
        false
    }
}

/// `base` without credentials, query or fragment, and the user and password it
/// carried, decoded: the URL holds them percent-encoded (`p%40ss`), the server
/// wants `p@ss`.
pub(crate) fn split_credentials(base: &url::Url) -> (url::Url, String, Option<String>) {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = decode(base.username());
    let password = base.password().map(decode);
    let mut clean = base.clone();
    // Both only fail for URLs that cannot carry credentials, which then have none.
    let _ = clean.set_username("");
    let _ = clean.set_password(None);
    clean.set_query(None);
    clean.set_fragment(None);
    (clean, user, password)
}

/// The write endpoint of `ic.api` under `clean`'s path, and how the endpoint is
/// described in messages (`db=…`, `bucket=…, org=…`).
fn write_url(clean: url::Url, ic: &InfluxConfig) -> (url::Url, String) {
    let prefix = clean.path().trim_end_matches('/').to_string();
    let mut url = clean;
    let detail = match ic.api {
        InfluxApi::V3 => {
            url.set_path(&format!("{prefix}/api/v3/write_lp"));
            let mut q = url.query_pairs_mut();
            q.append_pair("db", &ic.db)
                .append_pair("precision", "nanosecond");
            if ic.no_sync {
                q.append_pair("no_sync", "true");
            }
            drop(q);
            format!("db={}{}", ic.db, if ic.no_sync { ", no_sync" } else { "" })
        }
        InfluxApi::V2 => {
            url.set_path(&format!("{prefix}/api/v2/write"));
            let mut q = url.query_pairs_mut();
            q.append_pair("bucket", &ic.db);
            if let Some(org) = &ic.org {
                q.append_pair("org", org);
            }
            q.append_pair("precision", "ns");
            drop(q);
            match &ic.org {
                Some(org) => format!("bucket={}, org={org}", ic.db),
                None => format!("bucket={}", ic.db),
            }
        }
        InfluxApi::V1 => {
            url.set_path(&format!("{prefix}/write"));
            url.query_pairs_mut()
                .append_pair("db", &ic.db)
                .append_pair("precision", "ns");
            format!("db={}", ic.db)
        }
    };
    (url, detail)
}

/// How requests authenticate: the token (v1 `user:password` as Basic, v3 `Bearer`,
/// v2 `Token`), else the URL's credentials as Basic, else nothing.
pub(crate) fn auth(
    ic: &InfluxConfig,
    user: String,
    password: Option<String>,
) -> Result<Auth, WriterError> {
    Ok(match (&ic.token, ic.api) {
        (Some(tok), InfluxApi::V1) if tok.expose().contains(':') => {
            let (user, password) = tok.expose().split_once(':').unwrap_or_default();
            Auth::Basic {
                user: user.to_string(),
                password: Secret::new(password),
            }
        }
        (Some(tok), api) => Auth::Header(token_header(tok, api)?),
        (None, _) if !user.is_empty() => Auth::Basic {
            user,
            password: Secret::new(password.unwrap_or_default()),
        },
        (None, _) => Auth::None,
    })
}

/// `Authorization: Bearer|Token <token>`, marked sensitive.
fn token_header(tok: &Secret, api: InfluxApi) -> Result<HeaderValue, WriterError> {
    let scheme = if api == InfluxApi::V3 {
        "Bearer"
    } else {
        "Token"
    };
    let mut v = HeaderValue::from_str(&format!("{scheme} {}", tok.expose())).map_err(|_| {
        WriterError::Setup(
            "INFLUX_TOKEN / --influx-token contains characters not allowed in an HTTP header"
                .into(),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn http_client(ic: &InfluxConfig) -> Result<reqwest::Client, WriterError> {
    reqwest::Client::builder()
        .timeout(ic.request_timeout)
        // A followed 301/302 turns the POST into a GET that a proxy page
        // may answer 2xx: the batch would count as written. Never follow.
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(ic.max_in_flight.max(1) * super::pace::IN_FLIGHT_FACTOR)
        .build()
        .map_err(|e| WriterError::Setup(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> Config {
        let mut c = Config::default();
        c.influx.url = Some(url::Url::parse(url).expect("url"));
        c
    }

    fn target(c: &Config) -> HttpSink {
        let url = c.influx.url.clone().expect("url");
        HttpSink::new(c, &url).expect("target")
    }

    #[test]
    fn credentials_leave_the_url_decoded() {
        let base = url::Url::parse("http://u%40x:p%40ss@h:8181/pre/?q=1#f").unwrap();
        let (clean, user, password) = split_credentials(&base);
        assert_eq!(clean.as_str(), "http://h:8181/pre/");
        assert_eq!((user.as_str(), password.as_deref()), ("u@x", Some("p@ss")));
        let (url, detail) = write_url(clean, &cfg("http://h").influx);
        assert_eq!(url.path(), "/pre/api/v3/write_lp");
        assert!(detail.starts_with("db="), "{detail}");
    }

    #[test]
    fn a_token_that_cannot_be_a_header_names_the_setting_not_the_value() {
        let err = token_header(&Secret::new("abc\nXYZ-secret"), InfluxApi::V3).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("INFLUX_TOKEN") && !text.contains("XYZ"),
            "{text}"
        );
        assert!(token_header(&Secret::new("ok"), InfluxApi::V2)
            .unwrap()
            .is_sensitive());
    }

    #[test]
    fn v3_url_keeps_prefix_and_strips_credentials() {
        let mut c = cfg("http://admin:pw@127.0.0.1:8181/influx/?x=1");
        c.influx.no_sync = true;
        c.influx.db = "vm stats".into();
        let t = target(&c);
        assert_eq!(
            t.url.as_str(),
            "http://127.0.0.1:8181/influx/api/v3/write_lp?db=vm+stats&precision=nanosecond&no_sync=true"
        );
        assert_eq!(
            t.endpoint,
            "http://127.0.0.1:8181/influx (v3, db=vm stats, no_sync)"
        );
        assert!(matches!(t.auth, Auth::Basic { ref user, .. } if user == "admin"));
    }

    #[test]
    fn v2_and_v1_urls_and_auth() {
        let mut c = cfg("http://h:8086");
        c.influx.api = InfluxApi::V2;
        c.influx.org = Some("acme".into());
        c.influx.token = Some(Secret::new("sekrit"));
        let t = target(&c);
        assert_eq!(
            t.url.as_str(),
            "http://h:8086/api/v2/write?bucket=vmstats&org=acme&precision=ns"
        );
        match &t.auth {
            Auth::Header(v) => {
                assert_eq!(v.to_str().ok(), Some("Token sekrit"));
                assert!(v.is_sensitive());
                assert!(!format!("{v:?}").contains("sekrit"));
            }
            _ => panic!("expected a Token header"),
        }
        c.influx.api = InfluxApi::V1;
        c.influx.token = Some(Secret::new("user:pa:ss"));
        let t = target(&c);
        assert_eq!(
            t.url.as_str(),
            "http://h:8086/write?db=vmstats&precision=ns"
        );
        assert!(
            matches!(&t.auth, Auth::Basic { user, password } if user == "user" && password.expose() == "pa:ss")
        );
        c.influx.api = InfluxApi::V3;
        c.influx.token = Some(Secret::new("tok"));
        match &target(&c).auth {
            Auth::Header(v) => assert_eq!(v.to_str().ok(), Some("Bearer tok")),
            _ => panic!("expected a Bearer header"),
        }
    }

    #[test]
    fn redirect_names_the_location_without_its_password() {
        let v = HeaderValue::from_static("https://u:hunter2@proxy.example/login");
        match redirect(302, Some(&v)) {
            Outcome::Failing { status, message } => {
                assert_eq!(status, 302);
                assert!(
                    message.contains("https://u:***@proxy.example/login"),
                    "{message}"
                );
                assert!(!message.contains("hunter2"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(redirect(301, None), Outcome::Failing { message, .. } if message.contains("no Location"))
        );
    }

    #[test]
    fn body_is_newline_terminated_and_gzip_round_trips() {
        let lines = vec!["a b=1i 1".to_string(), "c d=2i 2".to_string()];
        let body = body_of(&lines);
        assert_eq!(body, b"a b=1i 1\nc d=2i 2\n");
        let z = gzip(&body).expect("gzip");
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).expect("gunzip");
        assert_eq!(back, body);
    }

    #[test]
    fn url_credentials_are_percent_decoded() {
        let t = target(&cfg("http://us%20er:p%40ss%3Aw@127.0.0.1:8086"));
        match &t.auth {
            Auth::Basic { user, password } => {
                assert_eq!(user, "us er");
                assert_eq!(password.expose(), "p@ss:w");
            }
            _ => panic!("expected basic auth"),
        }
        assert!(!t.endpoint.contains("p%40ss") && !t.endpoint.contains("p@ss"));
    }

    /// Accepts `room` more bytes, then fails like a full disk.
    struct FullDisk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::other("No space left on device"));
            }
            let n = b.len().min(self.room).min(100);
            self.room -= n;
            self.data.extend_from_slice(&b[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Cuttable for FullDisk {
        fn size(&self) -> std::io::Result<u64> {
            Ok(self.data.len() as u64)
        }
        fn cut(&mut self, len: u64) -> std::io::Result<()> {
            self.data.truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn failed_output_write_leaves_no_torn_line() {
        let mut f = FullDisk {
            data: b"a v=1i 1\n".to_vec(),
            room: 250,
        };
        let body = body_of(&vec!["b v=2i 2".to_string(); 100]);
        assert!(append_whole(&mut f, &body, "test").is_err());
        assert_eq!(f.data, b"a v=1i 1\n");
        f.room = 1 << 20;
        append_whole(&mut f, &body, "test").expect("retry");
        let text = String::from_utf8(f.data).expect("utf8");
        assert_eq!(text.lines().count(), 101);
        assert!(text.lines().skip(1).all(|l| l == "b v=2i 2"));
    }

    #[test]
    fn output_file_appends_whole_bodies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.lp");
        std::fs::write(&path, "a v=1i 1\n").expect("seed");
        let sink = FileSink::open(&OutputTarget::File(path.clone())).expect("open");
        sink.write_body(b"c v=3i 3\n").expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "a v=1i 1\nc v=3i 3\n"
        );
    }
}
