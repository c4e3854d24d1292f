//! Classifying write responses: done, reject, split, retry, auth (pure).
//!
//! [`classify`] turns one HTTP answer into what the writer must do with the
//! batch; [`decorrelated_jitter`] and [`full_jitter`] compute the wait before
//! a retry from a caller-supplied random number, so everything here is pure.
//!
//! Server behaviours handled (docs/influxdb-behaviour.md): InfluxDB 3 answers 400 with
//! `{"error":..,"data":[{"error_message","line_number","original_line"}]}` for a
//! partial write (good lines kept) and with `"data":{..}` (an object) when
//! `accept_partial=false` (nothing kept); 500 `max request size ... exceeded`
//! above 10 MiB; 401 on a bad token. InfluxDB 1.x answers 400
//! `{"error":"partial write: unable to parse '..': ..\n.. dropped=N"}` and 404
//! `database not found`. InfluxDB 2.x answers 400 `{"code":"invalid",
//! "message":"unable to parse ..."}` when any line is bad and then stores
//! *none* of the batch: [`classify_for`] turns that into [`Outcome::Bisect`],
//! so the good lines are written and only the bad ones counted as rejected.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::InfluxApi;

/// How many lines of a batch the server refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectedCount {
    /// The whole batch.
    All,
    /// This many lines; the rest were written.
    Lines(usize),
}

impl RejectedCount {
    /// Rejected lines out of a batch of `batch_len`.
    pub fn of(self, batch_len: usize) -> usize {
        match self {
            Self::All => batch_len,
            Self::Lines(n) => n.min(batch_len),
        }
    }
}

/// One line the server named as rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedLine {
    pub error_message: String,
    /// 1-based line number in the request body, when the server says.
    pub line_number: Option<u64>,
    pub original_line: Option<String>,
}

/// What to do with a batch after the server answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx: all lines written.
    Done,
    /// 400/422: some or all lines refused; never retried.
    Rejected {
        count: RejectedCount,
        details: Vec<RejectedLine>,
        message: String,
    },
    /// 413, or InfluxDB 3's 500 `max request size`: split the batch and resend.
    Split { message: String },
    /// The whole batch was refused for some bad line (InfluxDB 2.x): split it
    /// in halves until the bad lines stand alone; a single line is rejected.
    Bisect { message: String },
    /// 429, 5xx, 408, network errors: retry after backoff (at least `after`).
    Retry {
        after: Option<Duration>,
        message: String,
    },
    /// 401/403: keep the data, retry at the backoff ceiling.
    Auth { status: u16, message: String },
    /// 404: database or endpoint not found; keep the data, retry slowly.
    NotFound { message: String },
    /// Any other 4xx: needs the operator; keep the data, retry slowly.
    Failing { status: u16, message: String },
    /// `--output`'s reader went away (broken pipe): nothing can ever be
    /// delivered there again, so the lines are dropped, not retried.
    Closed { message: String },
}

/// Longest server message kept in `last_error` and logs.
const MAX_MESSAGE: usize = 300;

/// Classifies one HTTP answer. `retry_after` is the raw `Retry-After` header;
/// `now` resolves an HTTP-date in it.
pub fn classify(status: u16, retry_after: Option<&str>, body: &[u8], now: SystemTime) -> Outcome {
    let text = String::from_utf8_lossy(body);
    let server_msg = error_text(&text);
    match status {
        200..=299 => Outcome::Done,
        400 | 422 => classify_reject(status, &text, server_msg),
        401 | 403 => Outcome::Auth {
            status,
            message: format!(
                "token rejected ({status}) — check INFLUX_TOKEN / --influx-token{}",
                suffix(&server_msg)
            ),
        },
        404 => {
            let message = if server_msg.contains("database not found") {
                format!(
                    "database not found (404): create it or check INFLUX_DB / --influx-db{}",
                    suffix(&server_msg)
                )
            } else {
                format!(
                    "write endpoint not found (404): check INFLUX_URL and --influx-api (v3|v2|v1){}",
                    suffix(&server_msg)
                )
            };
            Outcome::NotFound { message }
        }
        413 => Outcome::Split {
            message: format!("request too large (413){}", suffix(&server_msg)),
        },
        500 if server_msg.to_ascii_lowercase().contains("max request size") => Outcome::Split {
            message: format!("request too large (500){}", suffix(&server_msg)),
        },
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after.and_then(|v| parse_retry_after(v, now)),
            message: format!("server answered {status}{}", suffix(&server_msg)),
        },
        _ => Outcome::Failing {
            status,
            message: format!("unexpected answer {status}{}", suffix(&server_msg)),
        },
    }
}

/// [`classify`], knowing which API answered: the same status and body mean
/// different things to different servers.
pub fn classify_for(
    api: InfluxApi,
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Outcome {
    if api == InfluxApi::V2 && status == 400 && is_v2_whole_batch_rejection(body) {
        let text = String::from_utf8_lossy(body);
        return Outcome::Bisect {
            message: format!("400 rejected the whole batch{}", suffix(&error_text(&text))),
        };
    }
    classify(status, retry_after, body, now)
}

/// InfluxDB 2.x's `{"code":"invalid","message":..}`: nothing of the batch was stored.
fn is_v2_whole_batch_rejection(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("code")
                .and_then(|c| c.as_str())
                .map(|c| c == "invalid")
        })
        .unwrap_or(false)
}

/// The wait before a retry: `Retry-After` is a floor under the jittered
/// backoff, never a replacement (0 or a past date cannot cause a storm);
/// when it dominates it gets up to 10 % jitter so clients do not return in
/// step. Capped at `cap` (`max_backoff`) or the backoff, whichever is larger.
pub fn retry_wait(
    backoff: Duration,
    retry_after: Option<Duration>,
    cap: Duration,
    rand01: f64,
) -> Duration {
    match retry_after {
        Some(after) if after > backoff => {
            let after = after.min(cap.max(backoff));
            after + after.mul_f64(0.1 * rand01.clamp(0.0, 1.0))
        }
        _ => backoff,
    }
}

/// A network-level failure (connect, timeout, reset): always retried.
pub fn network_error(message: &str) -> Outcome {
    Outcome::Retry {
        after: None,
        message: truncate(message),
    }
}

fn suffix(msg: &str) -> String {
    if msg.is_empty() {
        String::new()
    } else {
        format!(": {msg}")
    }
}

fn truncate(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The server's message: `error` (v1, v3) or `message` (v2) of a JSON body, else the text.
fn error_text(text: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        for key in ["error", "message"] {
            if let Some(s) = v.get(key).and_then(|e| e.as_str()) {
                return truncate(s);
            }
        }
    }
    truncate(text)
}

fn classify_reject(status: u16, text: &str, server_msg: String) -> Outcome {
    let json = serde_json::from_str::<serde_json::Value>(text).ok();
    let message = format!("{status} rejected{}", suffix(&server_msg));
    // InfluxDB 3: `data` array = partial write, `data` object = nothing written.
    if let Some(data) = json.as_ref().and_then(|v| v.get("data")) {
        if let Some(items) = data.as_array() {
            let details: Vec<RejectedLine> = items.iter().map(rejected_line).collect();
            let count = if details.is_empty() {
                RejectedCount::All
            } else {
                RejectedCount::Lines(details.len())
            };
            return Outcome::Rejected {
                count,
                details,
                message,
            };
        }
        if data.is_object() {
            let details = vec![rejected_line(data)];
            return Outcome::Rejected {
                count: RejectedCount::All,
                details,
                message,
            };
        }
    }
    // InfluxDB 1.x / 2.x text: count `unable to parse` entries and `dropped=N`.
    let full = json
        .as_ref()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|e| e.as_str())
        })
        .unwrap_or(text);
    let partial = full.contains("partial write");
    let parse_errors: Vec<RejectedLine> = full
        .split("unable to parse '")
        .skip(1)
        .map(|rest| {
            let (line, err) = match rest.rfind("': ") {
                Some(i) => (&rest[..i], rest[i + 3..].lines().next().unwrap_or("")),
                None => (rest, ""),
            };
            let err = err.split(" dropped=").next().unwrap_or(err);
            RejectedLine {
                error_message: truncate(err),
                line_number: None,
                original_line: Some(truncate(line)),
            }
        })
        .collect();
    let dropped = full
        .rsplit("dropped=")
        .next()
        .filter(|_| full.contains("dropped="))
        .and_then(|s| {
            let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse::<usize>().ok()
        });
    let count = if partial || !parse_errors.is_empty() {
        let n = parse_errors.len() + dropped.unwrap_or(0);
        if n == 0 {
            RejectedCount::All
        } else {
            RejectedCount::Lines(n)
        }
    } else {
        RejectedCount::All
    };
    Outcome::Rejected {
        count,
        details: parse_errors,
        message,
    }
}

fn rejected_line(v: &serde_json::Value) -> RejectedLine {
    RejectedLine {
        error_message: truncate(
            v.get("error_message")
                .and_then(|e| e.as_str())
                .unwrap_or(""),
        ),
        line_number: v.get("line_number").and_then(|n| n.as_u64()),
        original_line: v
            .get("original_line")
            .and_then(|l| l.as_str())
            .map(truncate),
    }
}

/// `Retry-After`: delay-seconds or an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
/// A date in the past means "now" (zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// IMF-fixdate only (the form RFC 9110 requires senders to use).
fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut it = s.split_whitespace();
    let _weekday = it.next()?.strip_suffix(',')?;
    let day: u32 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: u64 = hms.next()?.parse().ok()?;
    let m: u64 = hms.next()?.parse().ok()?;
    let sec: u64 = hms.next()?.parse().ok()?;
    if it.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + sec;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "Full jitter": uniform in `[0, min(cap, base × 2^attempt)]`; `rand01` in `[0, 1)`.
pub fn full_jitter(attempt: u32, base: Duration, cap: Duration, rand01: f64) -> Duration {
    let exp = base.saturating_mul(2u32.saturating_pow(attempt.min(31)));
    exp.min(cap).mul_f64(rand01.clamp(0.0, 1.0))
}

/// "Decorrelated jitter": uniform in `[base, prev × 3]`, capped; `rand01` in `[0, 1)`.
/// Never below `base` (or `cap` if that is smaller), so retries cannot spin.
pub fn decorrelated_jitter(prev: Duration, base: Duration, cap: Duration, rand01: f64) -> Duration {
    let hi = prev.max(base).saturating_mul(3);
    let span = hi.saturating_sub(base);
    (base + span.mul_f64(rand01.clamp(0.0, 1.0))).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(784_111_777) // Sun, 06 Nov 1994 08:49:37 GMT
    }

    #[test]
    fn success_is_done() {
        assert_eq!(classify(204, None, b"", now()), Outcome::Done);
        assert_eq!(classify(200, None, b"{}", now()), Outcome::Done);
    }

    #[test]
    fn v3_partial_write_counts_listed_lines() {
        let body = br#"{"error":"partial write of line protocol occurred","data":[{"error_message":"invalid column type for column 'v', expected iox::column_type::field::integer, got iox::column_type::field::float","line_number":2,"original_line":"m v=1.5 2"},{"error_message":"No fields were provided","line_number":4,"original_line":"m 4"}]}"#;
        match classify(400, None, body, now()) {
            Outcome::Rejected {
                count,
                details,
                message,
            } => {
                assert_eq!(count, RejectedCount::Lines(2));
                assert_eq!(count.of(10), 2);
                assert_eq!(details[0].line_number, Some(2));
                assert_eq!(details[1].original_line.as_deref(), Some("m 4"));
                assert!(details[0].error_message.contains("invalid column type"));
                assert!(message.contains("partial write"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v3_accept_partial_false_rejects_all() {
        let body = br#"{"error":"parsing failed for write_lp endpoint","data":{"original_line":"bad","line_number":1,"error_message":"No fields were provided"}}"#;
        match classify(400, None, body, now()) {
            Outcome::Rejected { count, details, .. } => {
                assert_eq!(count, RejectedCount::All);
                assert_eq!(count.of(7), 7);
                assert_eq!(details.len(), 1);
                assert_eq!(details[0].original_line.as_deref(), Some("bad"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v1_partial_write_parse_errors_and_dropped() {
        // Bodies exactly as influxd 1.6.7 answered them on this machine.
        let body = br#"{"error":"partial write: unable to parse 'g,a=x\\ v=1i 2': invalid tag format\nunable to parse 'g,a=x\\ v=1i 4': invalid tag format dropped=0"}"#;
        match classify(400, None, body, now()) {
            Outcome::Rejected { count, details, .. } => {
                assert_eq!(count, RejectedCount::Lines(2));
                assert_eq!(details[0].original_line.as_deref(), Some("g,a=x\\ v=1i 2"));
                assert_eq!(details[0].error_message, "invalid tag format");
                assert_eq!(details[1].error_message, "invalid tag format");
            }
            other => panic!("{other:?}"),
        }
        let body = br#"{"error":"partial write: field type conflict: input field \"v\" on measurement \"g\" is type float, already exists as type integer dropped=2"}"#;
        match classify(400, None, body, now()) {
            Outcome::Rejected { count, .. } => assert_eq!(count, RejectedCount::Lines(2)),
            other => panic!("{other:?}"),
        }
        // Every line unparsable: no "partial write" prefix.
        let body = br#"{"error":"unable to parse 'm1,a=x\\,b=2 v=1i 1': invalid tag format"}"#;
        match classify(400, None, body, now()) {
            Outcome::Rejected { count, .. } => assert_eq!(count.of(1), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_400_and_422_reject_all() {
        for (status, body) in [
            (400u16, &b""[..]),
            (422, br#"{"error":"database limit reached"}"#),
        ] {
            match classify(status, None, body, now()) {
                Outcome::Rejected { count, message, .. } => {
                    assert_eq!(count, RejectedCount::All);
                    assert!(message.starts_with(&status.to_string()));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn too_large_splits() {
        assert!(matches!(
            classify(413, None, b"Request Entity Too Large", now()),
            Outcome::Split { .. }
        ));
        assert!(matches!(
            classify(
                500,
                None,
                br#"{"error":"max request size (10485760 bytes) exceeded"}"#,
                now()
            ),
            Outcome::Split { .. }
        ));
        assert!(matches!(
            classify(
                500,
                None,
                b"max request size (10485760 bytes) exceeded",
                now()
            ),
            Outcome::Split { .. }
        ));
    }

    #[test]
    fn transient_errors_retry_and_honour_retry_after() {
        for s in [408u16, 429, 500, 502, 503, 504, 599] {
            assert!(
                matches!(
                    classify(s, None, b"", now()),
                    Outcome::Retry { after: None, .. }
                ),
                "{s}"
            );
        }
        assert_eq!(
            classify(429, Some("7"), b"", now()),
            Outcome::Retry {
                after: Some(Duration::from_secs(7)),
                message: "server answered 429".into()
            }
        );
        match classify(503, Some("Sun, 06 Nov 1994 08:49:47 GMT"), b"", now()) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(10))),
            other => panic!("{other:?}"),
        }
        match classify(503, Some("garbage"), b"", now()) {
            Outcome::Retry { after, .. } => assert_eq!(after, None),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            network_error("connection refused"),
            Outcome::Retry { after: None, .. }
        ));
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now()),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 12:00:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(951_825_600))
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
    }

    #[test]
    fn auth_and_not_found() {
        match classify(401, None, b"", now()) {
            Outcome::Auth { status, message } => {
                assert_eq!(status, 401);
                assert_eq!(
                    message,
                    "token rejected (401) — check INFLUX_TOKEN / --influx-token"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(403, None, b"{}", now()),
            Outcome::Auth { status: 403, .. }
        ));
        match classify(
            404,
            None,
            br#"{"error":"database not found: \"x\""}"#,
            now(),
        ) {
            Outcome::NotFound { message } => {
                assert!(message.contains("database not found"), "{message}");
                assert!(message.contains("INFLUX_DB"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        match classify(404, None, b"404 page not found", now()) {
            Outcome::NotFound { message } => assert!(message.contains("--influx-api"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify(405, None, b"", now()),
            Outcome::Failing { status: 405, .. }
        ));
    }

    #[test]
    fn long_messages_are_truncated() {
        let body = format!(r#"{{"error":"{}"}}"#, "é".repeat(1000));
        match classify(503, None, body.as_bytes(), now()) {
            Outcome::Retry { message, .. } => assert!(message.len() < 2 * MAX_MESSAGE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v2_whole_batch_400_bisects_only_for_v2() {
        let body = br#"{"code":"invalid","message":"unable to parse 'bad': missing fields"}"#;
        match classify_for(InfluxApi::V2, 400, None, body, now()) {
            Outcome::Bisect { message } => assert!(message.contains("missing fields"), "{message}"),
            other => panic!("{other:?}"),
        }
        // The same status from a 1.x or 3.x server keeps its meaning.
        assert!(matches!(
            classify_for(InfluxApi::V1, 400, None, body, now()),
            Outcome::Rejected { .. }
        ));
        // 2.x partial writes (422 field type conflicts) are not whole-batch rejections.
        let body = br#"{"code":"unprocessable entity","message":"partial write: field type conflict dropped=1"}"#;
        match classify_for(InfluxApi::V2, 422, None, body, now()) {
            Outcome::Rejected { count, .. } => assert_eq!(count, RejectedCount::Lines(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            classify_for(InfluxApi::V2, 204, None, b"", now()),
            Outcome::Done
        );
    }

    #[test]
    fn retry_after_is_a_floor_not_a_replacement() {
        let cap = Duration::from_secs(30);
        let backoff = Duration::from_millis(800);
        // 0, a past date, or less than the backoff: the backoff stands.
        assert_eq!(retry_wait(backoff, Some(Duration::ZERO), cap, 0.7), backoff);
        assert_eq!(retry_wait(backoff, None, cap, 0.7), backoff);
        assert_eq!(
            retry_wait(backoff, Some(Duration::from_millis(500)), cap, 0.7),
            backoff
        );
        // Larger: at least Retry-After, jittered up to 10 %.
        let w = retry_wait(backoff, Some(Duration::from_secs(5)), cap, 0.5);
        assert_eq!(w, Duration::from_millis(5250));
        assert_eq!(
            retry_wait(backoff, Some(Duration::from_secs(5)), cap, 0.0),
            Duration::from_secs(5)
        );
        // Capped at max_backoff.
        assert_eq!(
            retry_wait(backoff, Some(Duration::from_secs(3600)), cap, 0.0),
            cap
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(30);
        assert_eq!(full_jitter(0, base, cap, 1.0), base);
        assert_eq!(full_jitter(3, base, cap, 1.0), Duration::from_millis(800));
        assert_eq!(full_jitter(3, base, cap, 0.5), Duration::from_millis(400));
        assert_eq!(full_jitter(100, base, cap, 1.0), cap);
        assert_eq!(full_jitter(3, base, cap, 0.0), Duration::ZERO);

        assert_eq!(decorrelated_jitter(Duration::ZERO, base, cap, 0.0), base);
        assert_eq!(
            decorrelated_jitter(Duration::from_secs(1), base, cap, 1.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            decorrelated_jitter(Duration::from_secs(1), base, cap, 0.5),
            Duration::from_millis(1550)
        );
        assert_eq!(
            decorrelated_jitter(Duration::from_secs(20), base, cap, 0.9),
            cap
        );
        // Cap below base: the cap wins.
        assert_eq!(
            decorrelated_jitter(Duration::ZERO, base, Duration::from_millis(10), 0.3),
            Duration::from_millis(10)
        );
    }
}
