//! Whether a TUI that collects on its own also ships to InfluxDB (pure).
//!
//! One host, one shipper: when a service runs here (its socket exists, even if
//! it refuses this user) or with `--standalone`, the service is the shipper, and
//! a local TUI holds its InfluxDB writer off unless `--write` asks for it; two
//! shippers would write every point twice. With no service the TUI ships as it
//! always did. `--output` is never held: it is this run's own file.

use crate::config::Config;

/// Why the local TUI's writer is held off; shown in its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// A service answers (or refuses this user) on the control socket.
    ServiceRuns,
    /// `--standalone` without `--write`.
    Standalone,
}

impl Hold {
    /// Short enough for the header at 80 columns (the log line names `--write`).
    pub fn header_text(&self) -> &'static str {
        match self {
            Hold::ServiceRuns => "off (service ships)",
            Hold::Standalone => "off (--standalone)",
        }
    }

    /// The log line, with the whole reason.
    pub fn log_text(&self) -> &'static str {
        match self {
            Hold::ServiceRuns => {
                "InfluxDB writer held off: a vmpulse service runs on this host and ships the same metrics; start with --write to ship from this TUI too"
            }
            Hold::Standalone => {
                "InfluxDB writer held off with --standalone (a service may ship the same metrics); add --write to ship from this TUI"
            }
        }
    }
}

/// The decision: `service_runs` is whether a service's socket exists.
pub fn hold(config: &Config, service_runs: bool) -> Option<Hold> {
    let run = &config.run;
    if run.write || run.output.is_some() || config.influx.url.is_none() {
        return None;
    }
    match (service_runs, run.standalone) {
        (true, _) => Some(Hold::ServiceRuns),
        (false, true) => Some(Hold::Standalone),
        (false, false) => None,
    }
}

/// The config the local engine runs with: without the InfluxDB URL when held.
pub fn apply(config: &Config, hold: Option<&Hold>) -> Config {
    let mut c = config.clone();
    if hold.is_some() {
        c.influx.url = None;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputTarget;

    fn with_url() -> Config {
        let mut c = Config::default();
        c.influx.url = url::Url::parse("http://127.0.0.1:8181").ok();
        c
    }

    #[test]
    fn a_service_or_standalone_holds_the_writer_unless_write_is_given() {
        let c = with_url();
        assert_eq!(hold(&c, false), None, "no service: the TUI ships");
        assert_eq!(hold(&c, true), Some(Hold::ServiceRuns));
        let mut s = c.clone();
        s.run.standalone = true;
        assert_eq!(hold(&s, false), Some(Hold::Standalone));
        assert_eq!(hold(&s, true), Some(Hold::ServiceRuns));
        s.run.write = true;
        assert_eq!(hold(&s, true), None);
        assert_eq!(apply(&c, hold(&c, true).as_ref()).influx.url, None);
        assert_eq!(apply(&c, None).influx.url, c.influx.url);
    }

    #[test]
    fn nothing_to_hold_without_a_url_or_with_an_output_file() {
        assert_eq!(hold(&Config::default(), true), None);
        let mut c = with_url();
        c.run.output = Some(OutputTarget::File("/tmp/x.lp".into()));
        assert_eq!(hold(&c, true), None);
    }

    #[test]
    fn the_header_text_fits_next_to_the_rest_of_its_line() {
        for h in [Hold::ServiceRuns, Hold::Standalone] {
            assert!(h.header_text().chars().count() <= 20, "{h:?}");
            assert!(h.log_text().contains("--write"));
        }
    }
}
