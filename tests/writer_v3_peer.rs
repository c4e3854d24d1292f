//! The writer against a loopback HTTP/1.1 peer that answers as InfluxDB 3
//! documents (204, 400 partial/full with its JSON body, 401, 413, 500 max
//! request size, 429 with Retry-After, 503). The peer really parses every
//! request (headers, Content-Length body, gzip) and records it.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vmpulse::config::{Config, Secret};
use vmpulse::model::{WriterState, WriterStats};
use vmpulse::writer::WriterHandle;

const TOKEN: &str = "s3cr3t-token-value";

#[derive(Debug, Clone)]
struct Req {
    method: String,
    target: String,
    headers: BTreeMap<String, String>,
    raw_len: usize,
    /// Body after gunzip, split into lines.
    lines: Vec<String>,
    status: u16,
    at: Instant,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
    /// Announce a 1 GiB body, send this many bytes of it, then hold the connection.
    endless_body: Option<usize>,
}

impl Reply {
    fn status(status: u16) -> Self {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
            endless_body: None,
        }
    }
}

type Behaviour = dyn Fn(&Req, usize) -> Reply + Send + Sync;

struct PeerState {
    requests: Mutex<Vec<Req>>,
    active: AtomicUsize,
    max_active: AtomicUsize,
    stop: AtomicBool,
    behaviour: Box<Behaviour>,
}

struct Peer {
    port: u16,
    state: Arc<PeerState>,
    accept: Option<JoinHandle<()>>,
}

impl Peer {
    fn start(behaviour: impl Fn(&Req, usize) -> Reply + Send + Sync + 'static) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(PeerState {
            requests: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            behaviour: Box::new(behaviour),
        });
        let st = state.clone();
        let accept = std::thread::spawn(move || {
            while !st.stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((sock, _)) => {
                        let st = st.clone();
                        std::thread::spawn(move || serve(sock, st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Peer {
            port,
            state,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Req> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// Lines of every request the peer answered with 204.
    fn accepted_lines(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 204)
            .flat_map(|r| r.lines)
            .collect()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// One keep-alive connection: parse requests until EOF or stop.
fn serve(sock: TcpStream, st: Arc<PeerState>) {
    sock.set_read_timeout(Some(Duration::from_millis(100))).ok();
    let mut writer = sock.try_clone().expect("clone socket");
    let mut reader = BufReader::new(sock);
    'conn: loop {
        // Request line and headers.
        let mut head = Vec::<String>::new();
        let mut line = String::new();
        loop {
            if st.stop.load(Ordering::Relaxed) {
                return;
            }
            match reader.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    let l = line.trim_end_matches(['\r', '\n']).to_string();
                    line.clear();
                    if l.is_empty() {
                        if head.is_empty() {
                            continue;
                        }
                        break;
                    }
                    head.push(l);
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    continue
                }
                Err(_) => return,
            }
        }
        let mut parts = head[0].split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let headers: BTreeMap<String, String> = head[1..]
            .iter()
            .filter_map(|h| h.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        // A followed redirect turns the POST into a GET without a body.
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut raw = vec![0u8; len];
        let mut got = 0;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < len {
            match reader.read(&mut raw[got..]) {
                Ok(0) => return,
                Ok(n) => got += n,
                Err(_) if Instant::now() < deadline => continue,
                Err(_) => return,
            }
        }
        let body = if headers.get("content-encoding").map(String::as_str) == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_end(&mut out)
                .expect("body labelled gzip is gzip");
            out
        } else {
            raw.clone()
        };
        let text = String::from_utf8(body).expect("utf-8 body");
        assert!(
            method != "POST" || text.ends_with('\n'),
            "body ends with a newline"
        );
        let mut req = Req {
            method,
            target,
            headers,
            raw_len: len,
            lines: text.lines().map(str::to_string).collect(),
            status: 0,
            at: Instant::now(),
        };
        let now_active = st.active.fetch_add(1, Ordering::SeqCst) + 1;
        st.max_active.fetch_max(now_active, Ordering::SeqCst);
        let index = {
            let reqs = st.requests.lock().expect("lock");
            reqs.len()
        };
        let reply = (st.behaviour)(&req, index);
        req.status = reply.status;
        st.requests.lock().expect("lock").push(req);
        let until = Instant::now() + reply.delay;
        while Instant::now() < until {
            if st.stop.load(Ordering::Relaxed) {
                st.active.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(sent) = reply.endless_body {
            endless(&mut writer, reply.status, sent, &st);
            st.active.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        let mut resp = format!(
            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        if !reply.body.is_empty() {
            resp.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in &reply.headers {
            resp.push_str(&format!("{k}: {v}\r\n"));
        }
        resp.push_str("\r\n");
        resp.push_str(&reply.body);
        st.active.fetch_sub(1, Ordering::SeqCst);
        if writer.write_all(resp.as_bytes()).is_err() {
            break 'conn;
        }
    }
}

/// A body announced as 1 GiB: `sent` bytes of it, then nothing until the peer stops.
fn endless(writer: &mut TcpStream, status: u16, sent: usize, st: &PeerState) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n",
        1u64 << 30
    );
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = vec![b'x'; 8192];
    let mut left = sent;
    while left > 0 {
        let n = left.min(chunk.len());
        if writer.write_all(&chunk[..n]).is_err() {
            return;
        }
        left -= n;
    }
    while !st.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config(url: &str) -> Config {
    let mut c = Config::default();
    c.influx.url = Some(url::Url::parse(url).expect("url"));
    c.influx.token = Some(Secret::new(TOKEN));
    c.influx.batch_max_age = Duration::from_millis(50);
    c.influx.max_backoff = Duration::from_millis(300);
    c.influx.request_timeout = Duration::from_secs(5);
    c
}

fn lines(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "vm_metrics,host=h,name={prefix}{i} cpu_count={i}i {}",
                1_000 + i
            )
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Polls `cond` every 10 ms for at most `limit`.
async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

fn assert_no_token(stats: &WriterStats) {
    let dbg = format!("{stats:?}");
    assert!(!dbg.contains(TOKEN), "token leaked into stats: {dbg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_path_every_line_once_in_bounded_gzip_batches() {
    let peer = Peer::start(|_, _| Reply::status(204));
    let mut c = config(&peer.url());
    c.influx.batch_max_lines = 50;
    c.influx.gzip_min_bytes = 1500;
    let w = WriterHandle::start(&c).expect("start");
    let mut sent = Vec::new();
    for k in 0..10 {
        let chunk = lines(&format!("c{k}-"), if k % 2 == 0 { 100 } else { 7 });
        sent.extend(chunk.clone());
        w.enqueue(chunk);
    }
    assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
    let stats = w.shutdown(Duration::from_secs(5)).await;
    let reqs = peer.requests();
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent.clone()));
    assert!(reqs.iter().all(|r| r.lines.len() <= 50));
    let gz: Vec<&Req> = reqs
        .iter()
        .filter(|r| r.headers.get("content-encoding").map(String::as_str) == Some("gzip"))
        .collect();
    assert!(!gz.is_empty(), "large batches are gzipped");
    assert!(gz
        .iter()
        .all(|r| r.raw_len < r.lines.iter().map(|l| l.len() + 1).sum()));
    for r in &reqs {
        assert_eq!(r.target, "/api/v3/write_lp?db=vmstats&precision=nanosecond");
        assert_eq!(r.headers["authorization"], format!("Bearer {TOKEN}"));
        assert_eq!(r.headers["content-type"], "text/plain; charset=utf-8");
    }
    assert_eq!(stats.lines_queued, sent.len() as u64);
    assert_eq!(stats.lines_written, sent.len() as u64);
    assert_eq!(stats.queue_depth, 0);
    assert_eq!(
        stats.lines_dropped + stats.lines_rejected + stats.write_retries,
        0
    );
    assert_eq!(stats.state, WriterState::Ok);
    assert!(stats.last_write_ok.is_some());
    assert_eq!(
        stats.endpoint.as_deref(),
        Some(format!("{} (v3, db=vmstats)", peer.url()).as_str())
    );
    assert_no_token(&stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_write_counts_listed_lines_and_is_not_retried() {
    let peer = Peer::start(|req, _| {
        let data: Vec<String> = [2usize, 5]
            .iter()
            .map(|&n| {
                format!(
                    r#"{{"error_message":"invalid column type","line_number":{n},"original_line":{}}}"#,
                    serde_json::Value::String(req.lines[n - 1].clone())
                )
            })
            .collect();
        Reply {
            body: format!(
                r#"{{"error":"partial write of line protocol occurred","data":[{}]}}"#,
                data.join(",")
            ),
            ..Reply::status(400)
        }
    });
    let mut c = config(&peer.url());
    c.influx.batch_max_lines = 10;
    let w = WriterHandle::start(&c).expect("start");
    w.enqueue(lines("p", 10));
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(peer.requests().len(), 1, "a rejection is never retried");
    assert_eq!(stats.lines_rejected, 2);
    assert_eq!(stats.lines_written, 8);
    assert_eq!(stats.write_retries, 0);
    assert!(stats
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("partial write")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_partial_false_object_body_rejects_the_whole_batch() {
    let peer = Peer::start(|_, _| {
        Reply {
        body: r#"{"error":"parsing failed for write_lp endpoint","data":{"original_line":"x","line_number":3,"error_message":"No fields were provided"}}"#.into(),
        ..Reply::status(400)
    }
    });
    let mut c = config(&peer.url());
    c.influx.batch_max_lines = 10;
    let w = WriterHandle::start(&c).expect("start");
    w.enqueue(lines("o", 10));
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(peer.requests().len(), 1);
    assert_eq!(stats.lines_rejected, 10);
    assert_eq!(stats.lines_written, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failure_keeps_data_and_recovers() {
    let accept = Arc::new(AtomicBool::new(false));
    let a = accept.clone();
    let peer = Peer::start(move |_, _| {
        if a.load(Ordering::SeqCst) {
            Reply::status(204)
        } else {
            Reply::status(401)
        }
    });
    let w = WriterHandle::start(&config(&peer.url())).expect("start");
    let sent = lines("a", 20);
    w.enqueue(sent.clone());
    assert!(
        wait_for(Duration::from_secs(5), || w.stats().state
            == WriterState::AuthFailed)
        .await,
        "state becomes AuthFailed: {:?}",
        w.stats()
    );
    let s = w.stats();
    assert_eq!(
        s.last_error.as_deref(),
        Some("token rejected (401) — check INFLUX_TOKEN / --influx-token")
    );
    assert_eq!(s.lines_written, 0);
    assert_eq!(s.lines_dropped + s.lines_rejected, 0, "data is kept");
    assert_no_token(&s);
    assert!(!format!("{w:?}").contains(TOKEN));
    accept.store(true, Ordering::SeqCst);
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats.lines_written, 20);
    assert_eq!(stats.state, WriterState::Ok);
    assert!(stats.write_retries >= 1);
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_413_is_split_until_accepted() {
    let peer = Peer::start(|req, _| {
        if req.lines.len() > 4 {
            Reply::status(413)
        } else {
            Reply::status(204)
        }
    });
    let mut c = config(&peer.url());
    c.influx.batch_max_lines = 40;
    let w = WriterHandle::start(&c).expect("start");
    let sent = lines("s", 40);
    w.enqueue(sent.clone());
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
    assert_eq!(stats.lines_written, 40);
    assert_eq!(stats.lines_rejected, 0);
    assert!(peer.requests().iter().any(|r| r.status == 413));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_500_max_request_size_is_split_too() {
    let peer = Peer::start(|req, _| {
        let size: usize = req.lines.iter().map(|l| l.len() + 1).sum();
        if size > 300 {
            Reply {
                body: r#"{"error":"max request size (300 bytes) exceeded"}"#.into(),
                ..Reply::status(500)
            }
        } else {
            Reply::status(204)
        }
    });
    let mut c = config(&peer.url());
    c.influx.batch_max_lines = 30;
    let w = WriterHandle::start(&c).expect("start");
    let sent = lines("m", 30);
    w.enqueue(sent.clone());
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
    assert_eq!(stats.lines_written, 30);
    assert_eq!(stats.write_retries, 0, "a split is not a retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_honours_retry_after() {
    let peer = Peer::start(|_, i| {
        if i == 0 {
            Reply {
                headers: vec![("Retry-After", "1".into())],
                ..Reply::status(429)
            }
        } else {
            Reply::status(204)
        }
    });
    let mut c = config(&peer.url());
    c.influx.max_backoff = Duration::from_secs(5);
    let w = WriterHandle::start(&c).expect("start");
    let sent = lines("r", 5);
    w.enqueue(sent.clone());
    assert_eq!(w.flush(Duration::from_secs(8)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    let reqs = peer.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at.duration_since(reqs[0].at);
    // Loose: the retry waited for Retry-After rather than the 200 ms base backoff.
    assert!(gap >= Duration::from_millis(800), "retried after {gap:?}");
    assert_eq!(stats.write_retries, 1);
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_then_ok_loses_nothing() {
    let peer = Peer::start(|_, i| {
        if i < 2 {
            Reply::status(503)
        } else {
            Reply::status(204)
        }
    });
    let mut c = config(&peer.url());
    c.influx.max_in_flight = 1;
    c.influx.batch_max_lines = 100;
    let w = WriterHandle::start(&c).expect("start");
    let sent = lines("u", 60);
    w.enqueue(sent.clone());
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(stats.write_retries, 2);
    assert_eq!(stats.lines_written, 60);
    assert_eq!(stats.lines_dropped, 0);
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
    assert_eq!(stats.state, WriterState::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_overflow_drops_exactly_the_oldest() {
    let peer = Peer::start(|_, _| Reply::status(204));
    let mut c = config(&peer.url());
    c.influx.max_queue = 100;
    c.influx.batch_max_lines = 1000;
    c.influx.batch_max_age = Duration::from_secs(60);
    let w = WriterHandle::start(&c).expect("start");
    let all = lines("q", 250);
    w.enqueue(all.clone());
    let s = w.stats();
    assert_eq!(s.lines_dropped, 150);
    assert_eq!(s.lines_queued, 250);
    assert_eq!(s.queue_capacity, 100);
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert_eq!(
        peer.accepted_lines(),
        all[150..].to_vec(),
        "the newest 100 survive"
    );
    assert_eq!(stats.lines_written, 100);
    assert_eq!(stats.lines_dropped, 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_requests_in_flight() {
    let peer = Peer::start(|_, _| Reply {
        delay: Duration::from_millis(300),
        ..Reply::status(204)
    });
    let mut c = config(&peer.url());
    c.influx.max_in_flight = 4;
    c.influx.batch_max_lines = 10;
    let w = WriterHandle::start(&c).expect("start");
    let sent = lines("f", 80);
    w.enqueue(sent.clone());
    let mut max_seen = 0;
    let ok = wait_for(Duration::from_secs(5), || {
        max_seen = max_seen.max(w.stats().requests_in_flight);
        max_seen > 1
    })
    .await;
    assert!(ok, "writer reports several requests in flight");
    assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    assert!(
        peer.state.max_active.load(Ordering::SeqCst) > 1,
        "peer saw concurrent requests"
    );
    assert!(peer.state.max_active.load(Ordering::SeqCst) <= 4);
    assert_eq!(stats.lines_written, 80);
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_shutdown_are_bounded_when_the_peer_hangs() {
    let peer = Peer::start(|_, _| Reply {
        delay: Duration::from_secs(120),
        ..Reply::status(204)
    });
    let mut c = config(&peer.url());
    c.influx.request_timeout = Duration::from_secs(60);
    let w = WriterHandle::start(&c).expect("start");
    w.enqueue(lines("h", 10));
    let t = Instant::now();
    let unsent = w.flush(Duration::from_millis(500)).await;
    assert_eq!(unsent, 10);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "flush took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let stats = w.shutdown(Duration::from_millis(500)).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "shutdown took {:?}",
        t.elapsed()
    );
    assert_eq!(stats.lines_written, 0);
    assert_eq!(stats.queue_depth, 10, "unsent lines stay counted");
    assert_eq!(stats.requests_in_flight, 0);
}

/// `Retry-After: 0` (and a date in the past) is a floor of zero under the
/// backoff, not an order to resend at once: no storm of requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_zero_or_past_date_causes_no_storm() {
    for value in ["0", "Sun, 06 Nov 1994 08:49:37 GMT"] {
        let peer = Peer::start(move |_, _| Reply {
            headers: vec![("Retry-After", value.into())],
            ..Reply::status(503)
        });
        let mut c = config(&peer.url());
        c.influx.max_backoff = Duration::from_secs(2);
        let w = WriterHandle::start(&c).expect("start");
        w.enqueue(lines("z", 5));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let n = peer.requests().len();
        let reqs = peer.requests();
        // Backoff starts at 200 ms and grows: a handful of requests in 2 s, not hundreds.
        assert!(
            (2..=10).contains(&n),
            "{n} requests in 2 s with Retry-After {value}"
        );
        for pair in reqs.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(gap >= Duration::from_millis(150), "resent after {gap:?}");
        }
        let stats = w.shutdown(Duration::from_millis(200)).await;
        assert_eq!(stats.lines_written, 0);
        assert_eq!(stats.state, WriterState::Retrying);
    }
}

/// InfluxDB 2.x refuses a whole batch with `{"code":"invalid"}` for one bad
/// line and stores nothing: the batch is halved until the bad line stands
/// alone, so every good line is written and only the bad one is rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_whole_batch_400_is_bisected_to_the_bad_line() {
    let peer = Peer::start(|req, _| {
        if req.lines.iter().any(|l| l.contains("BAD")) {
            Reply {
                body: r#"{"code":"invalid","message":"unable to parse 'BAD': missing fields"}"#
                    .into(),
                ..Reply::status(400)
            }
        } else {
            Reply::status(204)
        }
    });
    let mut c = config(&peer.url());
    c.influx.api = vmpulse::config::InfluxApi::V2;
    c.influx.org = Some("acme".into());
    c.influx.batch_max_lines = 100;
    let w = WriterHandle::start(&c).expect("start");
    let mut sent = lines("g", 99);
    sent.insert(37, "BAD".into());
    w.enqueue(sent.clone());
    assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
    let stats = w.shutdown(Duration::from_secs(2)).await;
    let good: Vec<String> = sent.into_iter().filter(|l| l != "BAD").collect();
    assert_eq!(sorted(peer.accepted_lines()), sorted(good));
    assert_eq!((stats.lines_written, stats.lines_rejected), (99, 1));
    assert!(peer
        .requests()
        .iter()
        .all(|r| r.target.starts_with("/api/v2/write?")));
}

/// Every hostile name the writer sends to InfluxDB 3 is read back exactly by
/// `influxdb-line-protocol`, the parser InfluxDB 3 runs (a trailing
/// backslash, which no parser can hold, becomes the documented `\_`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_reach_influxdb3_exactly() {
    use vmpulse::encode::line_protocol::{encode_vm, stored_tag, EncodeCtx};
    let peer = Peer::start(|_, _| Reply::status(204));
    let w = WriterHandle::start(&config(&peer.url())).expect("start");
    // The shared hostile names, plus a trailing backslash and a tab to check by name.
    let hostile: Vec<&str> = vmpulse::fixtures::HOSTILE_NAMES
        .into_iter()
        .chain([r"ends\", "tab\there"])
        .collect();
    let ctx = EncodeCtx::new("hv", &BTreeMap::new());
    let mut out = Vec::new();
    for name in &hostile {
        encode_vm(&mut out, &ctx, &common_vm(name));
    }
    w.enqueue(out);
    assert_eq!(w.flush(Duration::from_secs(5)).await, 0);
    w.shutdown(Duration::from_secs(1)).await;
    let mut names: Vec<String> = Vec::new();
    for l in peer.accepted_lines() {
        let parsed = influxdb_line_protocol::parse_lines(&l)
            .next()
            .expect("a line")
            .unwrap_or_else(|e| panic!("InfluxDB 3 would refuse {l:?}: {e}"));
        names.push(parsed.tag_value("name").expect("name tag").to_string());
    }
    names.dedup();
    let want: Vec<String> = hostile.iter().map(|n| stored_tag(n)).collect();
    assert_eq!(names, want);
    assert_eq!(stored_tag(r"ends\"), r"ends\_");
    assert_eq!(stored_tag("tab\there"), "tab here");
}

/// A running test-driver-like VM with the given name.
fn common_vm(name: &str) -> vmpulse::model::VmSnapshot {
    use vmpulse::model::RawDomain;
    vmpulse::fixtures::vm(RawDomain {
        max_mem_kib: Some(1024),
        cur_mem_kib: Some(1024),
        ..vmpulse::fixtures::raw(name, "550e8400-e29b-41d4-a716-446655440000")
    })
}

/// A proxy that answers the write with a redirect to a page that says 200:
/// the redirect is not followed (a POST turned into a GET would "succeed"),
/// nothing counts as written, and the error names where it pointed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_is_an_error_naming_the_location_never_a_write() {
    for status in [301u16, 302, 307, 308] {
        let peer = Peer::start(move |req, _| {
            if req.target.starts_with("/api/v3/") {
                Reply {
                    headers: vec![("Location", "/login?next=write".into())],
                    ..Reply::status(status)
                }
            } else {
                Reply {
                    body: "<html>welcome</html>".into(),
                    ..Reply::status(200)
                }
            }
        });
        let w = WriterHandle::start(&config(&peer.url())).expect("start");
        w.enqueue(lines("r", 10));
        let failing = wait_for(Duration::from_secs(5), || {
            w.stats().state == WriterState::Failing
        })
        .await;
        let stats = w.shutdown(Duration::from_millis(200)).await;
        assert!(failing, "{status}: {stats:?}");
        assert_eq!(
            stats.lines_written, 0,
            "{status}: a redirect is not a write"
        );
        let err = stats.last_error.unwrap_or_default();
        assert!(
            err.contains(&status.to_string()) && err.contains("/login?next=write"),
            "{status}: {err}"
        );
        let reqs = peer.requests();
        assert!(
            reqs.iter()
                .all(|r| r.method == "POST" && r.target.starts_with("/api/v3/")),
            "{status}: the redirect was followed: {:?}",
            reqs.iter()
                .map(|r| (&r.method, &r.target))
                .collect::<Vec<_>>()
        );
    }
}

/// An error body that never ends (announced as 1 GiB, then silence): the
/// writer reads at most 64 KiB of it, classifies the answer and retries,
/// instead of holding the request until its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_body_is_capped_not_read_to_the_end() {
    let peer = Peer::start(|_, i| {
        if i == 0 {
            Reply {
                endless_body: Some(256 << 10),
                ..Reply::status(503)
            }
        } else {
            Reply::status(204)
        }
    });
    let mut c = config(&peer.url());
    c.influx.request_timeout = Duration::from_secs(30);
    let w = WriterHandle::start(&c).expect("start");
    let sent = lines("b", 5);
    w.enqueue(sent.clone());
    let started = Instant::now();
    assert_eq!(w.flush(Duration::from_secs(10)).await, 0);
    let took = started.elapsed();
    let stats = w.shutdown(Duration::from_secs(1)).await;
    assert!(took < Duration::from_secs(5), "waited {took:?} on the body");
    assert_eq!(stats.write_retries, 1);
    assert_eq!(stats.lines_written, 5);
    assert_eq!(sorted(peer.accepted_lines()), sorted(sent));
}
