//! `vmpulse fleet`: every host that writes to one InfluxDB, read back from it.
//!
//! The database does the distributed part: each hypervisor's `vmpulse --no-ui`
//! writes with its `host` tag, and the fleet asks InfluxQL for the newest point of
//! every series (`query.rs`), once per refresh for all hosts, parses the answer of
//! either API shape (`answer.rs`), keeps what it has seen (`store.rs`), and makes the
//! host list (`hosts.rs`) and a host's VMs as the live view's `Snapshot` (`vms.rs`).
//! `client.rs` is the HTTP edge, `output.rs` the `--once` formats.

pub mod answer;
pub mod client;
pub mod hosts;
pub mod live;
pub mod output;
pub mod query;
pub mod screen;
pub mod store;
pub mod vms;

use std::time::SystemTime;

use crate::config::Config;
use client::{Client, FleetError};
use store::Store;

/// `vmpulse fleet --once --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnceFormat {
    #[default]
    Json,
    Csv,
}

/// What `vmpulse fleet` was asked for.
#[derive(Debug, Clone, Default)]
pub struct FleetArgs {
    pub once: bool,
    pub format: OnceFormat,
    /// One host's VMs instead of the host list.
    pub host: Option<String>,
}

/// One refresh of the host list into `store`: the newest points of the window (the
/// lookback on the first refresh) and the alerts of the lookback. On an error the
/// store keeps its points and notes the error.
pub async fn refresh(
    client: &Client,
    config: &Config,
    store: &mut Store,
) -> Result<(), FleetError> {
    let f = &config.fleet;
    let now = SystemTime::now();
    let range = store.range(now, f.window, f.lookback);
    match fetch(client, config, range).await {
        Ok(points) => {
            store.merge(points, now, f.lookback);
            Ok(())
        }
        Err(e) => {
            store.last_error = Some(e.to_string());
            Err(e)
        }
    }
}

/// The points of one refresh of the host list over `range` (alerts over the lookback).
pub async fn fetch(
    client: &Client,
    config: &Config,
    range: std::time::Duration,
) -> Result<Vec<answer::Point>, FleetError> {
    let [latest, alerts] = query::host_statements(range, config.fleet.lookback);
    let mut points = client.query(&latest).await?;
    points.extend(client.query(&alerts).await?);
    Ok(points)
}

/// The newest points of one host's VMs (every column) and its `hypervisor` point.
pub async fn host_snapshot(
    client: &Client,
    config: &Config,
    host: &str,
) -> Result<crate::model::Snapshot, FleetError> {
    let f = &config.fleet;
    let mut points = client
        .query(&query::host_vms_statement(host, f.lookback))
        .await?;
    let hyp = query::latest(&["hypervisor"], None, f.lookback, Some(host));
    points.extend(client.query(&hyp).await?);
    let refs: Vec<&answer::Point> = points.iter().collect();
    Ok(vms::snapshot(host, &refs, f.window, &client.endpoint))
}

/// `vmpulse fleet --once`: the host list (or `--host`'s VMs) as text for stdout.
pub async fn once(config: &Config, args: &FleetArgs) -> Result<String, FleetError> {
    let client = Client::new(config)?;
    if let Some(host) = &args.host {
        let snap = host_snapshot(&client, config, host).await?;
        return Ok(output::vms_json(&snap));
    }
    let mut store = Store::default();
    refresh(&client, config, &mut store).await?;
    let rows = store.rows(SystemTime::now(), config.fleet.window);
    Ok(match args.format {
        OnceFormat::Json => output::rows_json(&rows) + "\n",
        OnceFormat::Csv => output::rows_csv(&rows),
    })
}
