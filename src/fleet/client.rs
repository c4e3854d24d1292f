//! The fleet's one HTTP edge: InfluxQL statements to the configured InfluxDB
//! (`[influx]`: URL, API, database, token, as the writer uses them), answers parsed
//! into points. A refused query is an error carrying the server's own message.

use std::time::Duration;

use reqwest::header::AUTHORIZATION;

use super::answer::{self, AnswerError, Point};
use super::query;
use crate::config::{masked_url, Config, InfluxApi, InfluxConfig};
use crate::writer::sink::{auth, split_credentials, Auth};

/// Most of an answer read; the 200 × 50 host list is about 4 MiB.
const MAX_ANSWER: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("vmpulse fleet reads InfluxDB: set influx.url (INFLUX_URL, --influx-url)")]
    NoUrl,
    #[error("{0}")]
    Setup(String),
    #[error("{endpoint}: {message}")]
    Request { endpoint: String, message: String },
    #[error("{endpoint}: HTTP {status}: {message}")]
    Status {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("{endpoint}: {source}")]
    Answer {
        endpoint: String,
        source: AnswerError,
    },
}

pub struct Client {
    http: reqwest::Client,
    base: url::Url,
    auth: Auth,
    influx: InfluxConfig,
    /// For messages: the URL without credentials, the API and the database.
    pub endpoint: String,
}

impl Client {
    pub fn new(config: &Config) -> Result<Self, FleetError> {
        let ic = &config.influx;
        let url = ic.url.as_ref().ok_or(FleetError::NoUrl)?;
        let (base, user, password) = split_credentials(url);
        let auth = auth(ic, user, password).map_err(|e| FleetError::Setup(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(ic.request_timeout.max(Duration::from_secs(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| FleetError::Setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            endpoint: format!("{} ({}, db={})", masked_url(&base), ic.api.as_str(), ic.db),
            http,
            base,
            auth,
            influx: ic.clone(),
        })
    }

    /// Runs one statement; its newest points.
    pub async fn query(&self, statement: &str) -> Result<Vec<Point>, FleetError> {
        let url = query::query_url(&self.base, &self.influx, statement);
        let mut req = self.http.get(url);
        req = match &self.auth {
            Auth::None => req,
            Auth::Header(v) => req.header(AUTHORIZATION, v.clone()),
            Auth::Basic { user, password } => req.basic_auth(user, Some(password.expose())),
        };
        let request_error = |e: reqwest::Error| FleetError::Request {
            endpoint: self.endpoint.clone(),
            message: error_chain(&e),
        };
        let resp = req.send().await.map_err(request_error)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(request_error)?;
        let body = &body[..body.len().min(MAX_ANSWER)];
        let parsed = match self.influx.api {
            InfluxApi::V3 => answer::parse_v3(body, &query::is_field),
            InfluxApi::V1 | InfluxApi::V2 => answer::parse_v1(body),
        };
        match (status, parsed) {
            (200, Ok(points)) => Ok(points),
            (200, Err(source)) => Err(FleetError::Answer {
                endpoint: self.endpoint.clone(),
                source,
            }),
            (status, parsed) => Err(FleetError::Status {
                endpoint: self.endpoint.clone(),
                status,
                message: server_message(parsed.err(), body),
            }),
        }
    }
}

/// The server's words for a refused query: its JSON `error`, else the start of the body.
fn server_message(parsed: Option<AnswerError>, body: &[u8]) -> String {
    match parsed {
        Some(AnswerError::Server(m)) => m,
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
            text.trim().to_string()
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_query_says_what_the_server_said() {
        let m = server_message(
            Some(AnswerError::Server("database not found: x".into())),
            b"",
        );
        assert_eq!(m, "database not found: x");
        assert_eq!(
            server_message(None, b" 404 page not found\n"),
            "404 page not found"
        );
    }

    #[test]
    fn the_endpoint_names_no_credentials() {
        let mut c = Config::default();
        c.influx.url = Some(url::Url::parse("http://u:secret@db:8086/").unwrap());
        let client = Client::new(&c).unwrap();
        assert!(!client.endpoint.contains("secret"), "{}", client.endpoint);
        assert!(matches!(
            Client::new(&Config::default()),
            Err(FleetError::NoUrl)
        ));
    }
}
