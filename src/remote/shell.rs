//! `vmpulse status [--json]`, `vmpulse start`, `vmpulse stop`: the control API
//! from the shell, with LSB exit codes.
//!
//! `status`: 0 the service runs and collects, 1 it runs but is stopped or
//! failing (`control::health`: libvirt unreachable, token refused, no successful
//! write past `control.write_stale_after` while lines wait, a growing spool), 3 no service answers,
//! 4 the socket refuses this user. `start` / `stop`: 0 done, 1 the service
//! did not confirm, 4 permission denied, 7 no service answers.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::client::{Client, ClientError};
use crate::control::views::{parse_rfc3339, AlertView, Health, StatusView};
use crate::format;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellCommand {
    Status { json: bool },
    Start,
    Stop,
}

/// Runs one subcommand against the service on `socket`; prints to stdout
/// (errors to stderr) and returns the exit code.
pub fn run(cmd: ShellCommand, socket: &Path) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vmpulse: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let client = Client::new(socket);
    let code = rt.block_on(async {
        match cmd {
            ShellCommand::Status { json } => status(&client, json).await,
            ShellCommand::Start => steer(&client, "/start", true).await,
            ShellCommand::Stop => steer(&client, "/stop", false).await,
        }
    });
    ExitCode::from(code)
}

async fn status(client: &Client, json: bool) -> u8 {
    match client.status().await {
        Ok(s) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
            } else {
                print!("{}", status_text(&s, client.path(), SystemTime::now()));
            }
            match s.health() {
                Health::Collecting => 0,
                Health::Stopped | Health::Failing => 1,
            }
        }
        Err(e) => {
            eprintln!("vmpulse: {e}");
            match e {
                ClientError::Absent { .. } => 3,
                _ => 4,
            }
        }
    }
}

async fn steer(client: &Client, uri: &str, want_running: bool) -> u8 {
    match client.post(uri).await {
        Ok(s) if s.running == want_running => {
            println!(
                "vmpulse service pid {}: collection {}",
                s.pid,
                if s.running { "started" } else { "stopped" }
            );
            0
        }
        Ok(s) => {
            eprintln!(
                "vmpulse: service pid {} did not confirm within the timeout; it is {}",
                s.pid,
                if s.running { "collecting" } else { "stopped" }
            );
            1
        }
        Err(e) => {
            eprintln!("vmpulse: {e}");
            match e {
                ClientError::Absent { .. } => 7,
                ClientError::PermissionDenied { .. } => 4,
                _ => 1,
            }
        }
    }
}

/// The readable status (pure, for tests).
pub fn status_text(s: &StatusView, socket: &Path, now: SystemTime) -> String {
    let state = match s.health() {
        Health::Collecting => "collecting",
        Health::Stopped => "STOPPED",
        Health::Failing => "FAILING",
    };
    let last = s
        .last_collection_time
        .as_deref()
        .and_then(parse_rfc3339)
        .map(|t| format!("last {} ago", format::age(t, now)))
        .unwrap_or_else(|| "no collection yet".into());
    let took = s
        .last_collection_duration_ms
        .map(|ms| format!(" in {ms:.0} ms"))
        .unwrap_or_default();
    let libvirt = match &s.libvirt.error {
        Some(e) => format!("{} ({e})", s.libvirt.state),
        None => s.libvirt.state.clone(),
    };
    let mut out = format!(
        "vmpulse {} service pid {}, up {}: {state} every {}\n",
        s.version,
        s.pid,
        format::duration(Duration::from_secs_f64(s.uptime_seconds.max(0.0))),
        format::interval(Duration::from_secs_f64(s.poll_interval.max(0.0))),
    );
    out.push_str(&format!(
        "  libvirt      {} {libvirt}; {} VMs\n",
        s.libvirt.uri, s.vms_monitored
    ));
    out.push_str(&format!(
        "  collections  {} ({} errors), {last}{took}\n",
        s.total_collections, s.total_errors
    ));
    if let Some(e) = &s.last_error {
        out.push_str(&format!("  last error   {e}\n"));
    }
    out.push_str(&format!("  writer       {}\n", writer_text(s, now)));
    if let Some(d) = delivery_text(s) {
        out.push_str(&format!("  delivery     {d}\n"));
    }
    for p in &s.health.problems {
        out.push_str(&format!("  problem      {p}\n"));
    }
    for a in &s.alerts {
        out.push_str(&format!("  alert        {}\n", alert_text(a, now)));
    }
    out.push_str(&format!("  socket       {}\n", socket.display()));
    out
}

/// `WARNING db-1 cpu_steal_percent 25.5 (threshold 20) for 3m 10s`.
fn alert_text(a: &AlertView, now: SystemTime) -> String {
    let since = parse_rfc3339(&a.since)
        .map(|t| format!(" for {}", format::age(t, now)))
        .unwrap_or_default();
    format!(
        "{} {} {} {} (threshold {}){since}",
        a.level.to_uppercase(),
        a.vm,
        a.metric,
        a.value,
        a.threshold
    )
}

/// The writer's state and counters, and its last error with how old it is.
fn writer_text(s: &StatusView, now: SystemTime) -> String {
    let w = &s.writer;
    if w.state == "off" {
        return "off: no InfluxDB URL (set influx.url or INFLUX_URL and reload); collecting and serving this API only".into();
    }
    let mut text = format!(
        "{}{}; lines written {}, queued {}/{}, dropped {}, rejected {}, retries {}",
        w.state,
        w.endpoint
            .as_deref()
            .map(|e| format!(" {e}"))
            .unwrap_or_default(),
        w.lines_written,
        w.queue_depth,
        w.queue_capacity,
        w.lines_dropped,
        w.lines_rejected,
        w.write_retries
    );
    if let Some(e) = &w.last_error {
        let at = w.last_error_at.as_deref().and_then(parse_rfc3339);
        let ok = w.last_write_ok.as_deref().and_then(parse_rfc3339);
        let when = at
            .map(|t| format!(" {} ago", format::age(t, now)))
            .unwrap_or_default();
        let since = match (at, ok) {
            (Some(at), Some(ok)) if ok > at => ", writes succeed since",
            _ => "",
        };
        text.push_str(&format!("; last error{when}{since}: {e}"));
    }
    text
}

/// `last successful write 3s ago; spool backlog 120 lines (growing)`, for a
/// writer that ships to InfluxDB.
fn delivery_text(s: &StatusView) -> Option<String> {
    if matches!(s.writer.state.as_str(), "off" | "output") {
        return None;
    }
    let h = &s.health;
    let last = match h.last_write_ok_age_seconds {
        Some(a) => format!(
            "{} ago",
            format::duration(Duration::from_secs_f64(a.max(0.0)))
        ),
        None => "never".into(),
    };
    let growing = if h.spool_growing { " (growing)" } else { "" };
    Some(format!(
        "last successful write {last}; spool backlog {} lines{growing}; failing after {} without a write",
        h.spool_backlog_lines,
        format::duration(Duration::from_secs_f64(h.write_stale_after_seconds.max(0.0)))
    ))
}
