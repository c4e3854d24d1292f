//! The `--no-ui` frontend: the control API on its socket (not for `--once` /
//! `-n`), a status line on stderr every `status_interval`, SIGHUP reloads the
//! config (`control::reload`), and on SIGINT/SIGTERM: stop polling, flush
//! (bounded), keep what cannot be sent in the spool, print final counters,
//! exit 0 (3 when lines were still unsent at the flush timeout). `--once` / `-n`
//! end by themselves, and `--output -` ends when its reader closes the pipe.
//! Under systemd (`Type=notify`) it reports ready once libvirt answered.

use std::time::{Duration, SystemTime};

use sd_notify::NotifyState;
use tokio::signal::unix::{signal, Signal, SignalKind};

use futures::future::Either;

use crate::config::{Config, OutputTarget};
use crate::control::service::{Reloader, Service};
use crate::engine::{EngineHandle, FinalReport};
use crate::model::{Snapshot, SourceState, SpoolState, WriterState};

/// The signals that end headless mode, in one place. SIGHUP is not one of
/// them: it reloads the configuration (see `run`).
struct StopSignals {
    term: Signal,
    int: Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next one; returns its name.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

pub async fn run(config: Config, reload: Option<Reloader>) -> color_eyre::Result<()> {
    let mut stop = StopSignals::install()?;
    let mut sighup = signal(SignalKind::hangup())?;
    // The control API belongs to the service, not to a bounded run; bound
    // before the engine starts, so a second service exits before collecting.
    let bounded = config.run.once || config.run.iterations.is_some();
    let listeners = match bounded {
        true => None,
        false => Some(Service::listen(&config).await?),
    };
    // An unusable or locked spool comes back as `WriterError::Spool` (cli: exit 2).
    let engine = EngineHandle::start(&config)?;
    let mut service = listeners.map(|l| Service::start(l, &engine, &config, reload));
    // A URI that cannot be reached at start is a setup error: say so and exit,
    // so a service manager shows it. Later outages are retried.
    let mut snaps = engine.subscribe();
    let first_outcome =
        tokio::time::timeout(config.libvirt.timeout + Duration::from_secs(2), async {
            loop {
                let done = {
                    let s = snaps.borrow_and_update();
                    match &s.source {
                        SourceState::Failed(msg) => Some(Err(msg.clone())),
                        SourceState::Connected => Some(Ok(())),
                        SourceState::Connecting => None,
                    }
                };
                if let Some(r) = done {
                    return r;
                }
                if snaps.changed().await.is_err() {
                    return Err("the engine stopped before its first cycle".to_string());
                }
            }
        })
        .await;
    match first_outcome {
        Ok(Ok(())) => notify_systemd(&[NotifyState::Ready]),
        Ok(Err(msg)) => {
            engine.shutdown().await;
            return Err(color_eyre::eyre::eyre!(msg));
        }
        Err(_) => {
            let msg = format!(
                "libvirt at '{}' has not answered yet; still trying",
                config.libvirt.uri
            );
            tracing::warn!("{msg}");
            // Up and retrying is running: a slow libvirtd must not fail the unit's start.
            notify_systemd(&[NotifyState::Ready, NotifyState::Status(&msg)]);
        }
    }
    let first = engine.latest();
    tracing::info!(
        "vmpulse {} polling '{}' every {:.1} s; writer: {}{}",
        env!("CARGO_PKG_VERSION"),
        config.libvirt.uri,
        config.collector.poll_interval.as_secs_f64(),
        writer_summary(&first, config.run.format),
        service
            .as_ref()
            .map(|s| format!("; {}", s.listening()))
            .unwrap_or_default()
    );
    let mut status = tokio::time::interval_at(
        tokio::time::Instant::now() + config.collector.status_interval,
        config.collector.status_interval,
    );
    let finished = engine.finished();
    let reader_gone = match config.run.output {
        Some(OutputTarget::Stdout) => Either::Left(crate::output::pipe::stdout_closed()),
        _ => Either::Right(std::future::pending()),
    };
    tokio::pin!(finished, reader_gone);
    let why = loop {
        tokio::select! {
            _ = status.tick() => {
                let line = status_line(&engine.latest());
                notify_systemd(&[NotifyState::Status(&line)]);
                tracing::info!("{line}");
                if let Some(s) = &service {
                    s.on_status_tick();
                }
            }
            _ = sighup.recv() => match service.as_mut() {
                Some(s) => {
                    if let Some(every) = s.on_sighup() {
                        status = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    }
                }
                None => tracing::info!("SIGHUP: a bounded run (--once, -n) does not reload"),
            },
            name = stop.recv() => break name,
            _ = &mut finished => break "done",
            _ = &mut reader_gone => break "stdout closed by its reader",
        }
    };
    notify_systemd(&[NotifyState::Stopping]);
    tracing::info!(
        "{why}: stopping collection, flushing (at most {:.0} s)",
        config.influx.flush_timeout.as_secs_f64()
    );
    let report = engine.shutdown().await;
    tracing::info!("{}", final_line(&report));
    if report.unsent > 0 {
        return Err(LinesUnsent {
            unsent: report.unsent,
        }
        .into());
    }
    Ok(())
}

/// Lines neither sent nor spooled when the flush timeout ran out: the run lost data, and
/// scripts and systemd must see it (exit status [`LinesUnsent::EXIT_CODE`]).
#[derive(Debug, thiserror::Error)]
#[error("{unsent} lines were still unsent when the flush timeout ran out (influx.flush_timeout)")]
pub struct LinesUnsent {
    pub unsent: usize,
}

impl LinesUnsent {
    pub const EXIT_CODE: u8 = 3;
}

/// Tells systemd (`Type=notify`) about readiness and status; a no-op unless
/// `NOTIFY_SOCKET` is set. Failing to notify is logged, never fatal.
fn notify_systemd(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

fn writer_summary(s: &Snapshot, format: crate::config::Format) -> String {
    match &s.writer.state {
        WriterState::Off { hint } => format!("off ({hint})"),
        WriterState::Output { target } => format!("{} to {target}", format.describe()),
        _ => s
            .writer
            .endpoint
            .clone()
            .unwrap_or_else(|| "InfluxDB".into()),
    }
}

/// One line: VMs, lines written, queued, dropped, errors (and why, when failing).
pub fn status_line(s: &Snapshot) -> String {
    let w = &s.writer;
    let c = &s.collector;
    let mut line = format!(
        "status: {}, {} collections ({} errors), last took {}; lines written {}, queued {}/{}, dropped {}, rejected {}, retries {}",
        crate::model::vm_count(c.vms_monitored),
        c.total_collections,
        c.total_errors,
        c.last_collection_ms
            .map(|ms| format!("{ms:.0} ms"))
            .unwrap_or_else(|| "-".into()),
        w.lines_written,
        w.queue_depth,
        w.queue_capacity,
        w.lines_dropped,
        w.lines_rejected,
        w.write_retries,
    );
    if let Some(sp) = &w.spool {
        line.push_str(&spool_part(sp, SystemTime::now()));
    }
    // A VM whose QEMU monitor hangs gets no per-domain stats: say so where the journal shows it.
    if c.monitor_stuck_vms > 0 {
        line.push_str(&format!(
            "; QEMU monitor stuck for {} now ({} VM-cycles so far)",
            crate::model::vm_count(c.monitor_stuck_vms),
            c.monitor_stuck_samples
        ));
    }
    // Each one holds a connection and a libvirtd worker until that QEMU answers.
    if c.libvirt_calls_held > 0 {
        line.push_str(&format!(
            "; {} libvirt call{} held by a hung monitor",
            c.libvirt_calls_held,
            if c.libvirt_calls_held == 1 { "" } else { "s" }
        ));
    }
    match &w.state {
        WriterState::AuthFailed => line.push_str("; writer: token rejected"),
        WriterState::Failing | WriterState::Retrying => {
            if let Some(e) = &w.last_error {
                line.push_str(&format!("; writer: {e}"));
            }
        }
        WriterState::Off { .. } => line.push_str("; writer off"),
        _ => {}
    }
    if let Some(age) = w
        .last_write_ok
        .and_then(|t| SystemTime::now().duration_since(t).ok())
    {
        if age > Duration::from_secs(120) {
            line.push_str(&format!("; last successful write {} s ago", age.as_secs()));
        }
    }
    line
}

/// `; spool N lines (B bytes, oldest Xs), replayed R, segments dropped D`, plus the alert.
fn spool_part(sp: &crate::model::SpoolStats, now: SystemTime) -> String {
    let oldest = sp
        .oldest
        .and_then(|t| now.duration_since(t).ok())
        .map(|d| format!(", oldest {} s", d.as_secs()))
        .unwrap_or_default();
    let mut s = format!(
        "; spool {} lines ({} bytes{oldest}), replayed {}, segments dropped {}",
        sp.lines, sp.bytes, sp.lines_replayed, sp.segments_dropped
    );
    match &sp.state {
        SpoolState::Active => {}
        SpoolState::Unavailable { reason } => {
            s.push_str(&format!(" (spool unavailable, memory only: {reason})"))
        }
        SpoolState::Off { reason } => s.push_str(&format!(" (no spool, memory only: {reason})")),
    }
    s
}

/// The last line: `lines_queued + lines_recovered = lines_written +
/// lines_rejected + lines_dropped + unsent + spooled` (`unaccounted` says by
/// how much that fails; 0 when every line is accounted for).
pub fn final_line(r: &FinalReport) -> String {
    let spooled = r.writer.spooled();
    format!(
        "final: collections={} collection_errors={} vms={} lines_queued={} lines_recovered={} lines_written={} lines_dropped={} lines_rejected={} write_retries={} unsent={} spooled={spooled} unaccounted={}",
        r.collector.total_collections,
        r.collector.total_errors,
        r.collector.vms_monitored,
        r.writer.lines_queued,
        r.writer.lines_recovered,
        r.writer.lines_written,
        r.writer.lines_dropped,
        r.writer.lines_rejected,
        r.writer.write_retries,
        r.unsent,
        r.writer.unaccounted(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_line_balances_the_books_and_says_by_how_much_when_not() {
        let mut w = crate::model::WriterStats::off("x");
        w.lines_queued = 100;
        w.lines_recovered = 20;
        w.lines_written = 90;
        w.lines_dropped = 5;
        w.lines_rejected = 1;
        w.queue_depth = 4;
        w.spool = Some(crate::model::SpoolStats {
            bytes: 1,
            lines: 20,
            lines_recovered: 20,
            ..crate::model::SpoolStats::empty("/s".into(), SpoolState::Active)
        });
        let mut r = FinalReport {
            collector: Snapshot::empty("test:///default", "h", Duration::from_secs(1)).collector,
            unsent: 4,
            writer: w,
        };
        let line = final_line(&r);
        assert!(
            line.contains("lines_queued=100 lines_recovered=20 lines_written=90 lines_dropped=5 lines_rejected=1")
                && line.ends_with("unsent=4 spooled=20 unaccounted=0"),
            "{line}"
        );
        r.writer.lines_written = 80;
        assert!(final_line(&r).ends_with("unaccounted=10"));
    }

    #[test]
    fn status_line_names_stuck_qemu_monitors_only_when_there_are_some() {
        let mut s = Snapshot::empty("qemu:///system", "hv01", Duration::from_secs(1));
        s.collector.vms_monitored = 3;
        let calm = status_line(&s);
        assert!(calm.starts_with("status: 3 VMs, 0 collections"), "{calm}");
        assert!(!calm.contains("monitor"), "{calm}");
        s.collector.monitor_stuck_vms = 1;
        s.collector.monitor_stuck_samples = 7;
        let stuck = status_line(&s);
        assert!(
            stuck.contains("; QEMU monitor stuck for 1 VM now (7 VM-cycles so far)"),
            "{stuck}"
        );
        assert!(!stuck.contains("held"), "{stuck}");
        s.collector.libvirt_calls_held = 1;
        let held = status_line(&s);
        assert!(
            held.contains("; 1 libvirt call held by a hung monitor"),
            "{held}"
        );
    }
}
