//! Enter on a host that `[[fleet.hosts]]` names: the live view attached to that
//! host's control API (`control.listen`, over TCP with its bearer token) through
//! `remote::attach`, instead of its newest points in the database. A failed attach
//! is an [`AttachError`] naming the host, its url and what to check.

use crate::config::fleet_hosts::FleetHost;
use crate::remote::attach::Attached;
use crate::remote::client::ClientError;

/// Why the live attach to a `[[fleet.hosts]]` entry failed (never with its token).
#[derive(Debug, thiserror::Error)]
#[error("{host} at {url}: {cause}{hint}")]
pub struct AttachError {
    pub host: String,
    pub url: String,
    pub cause: String,
    pub hint: &'static str,
}

/// What to check for a failure, by its kind.
fn hint(e: &ClientError) -> &'static str {
    match e {
        ClientError::Status { status, .. } if status.as_u16() == 401 => {
            " (its [[fleet.hosts]] token or token_file must hold that host's control.token)"
        }
        ClientError::Tcp { .. } | ClientError::Timeout => {
            " (is control.listen set on that host and reachable from here?)"
        }
        _ => "",
    }
}

/// Attaches to `entry`'s control API and reads its first snapshot: the function
/// Enter calls on the host list.
pub async fn attach(entry: &FleetHost) -> Result<Attached, AttachError> {
    let fail = |cause: String, hint: &'static str| AttachError {
        host: entry.name.clone(),
        url: entry.url.clone(),
        cause,
        hint,
    };
    // `secrets::read_token_files` filled it from token_file when the config was read.
    let Some(token) = entry.token.clone() else {
        return Err(fail(
            "no token".into(),
            " (set token or token_file in its [[fleet.hosts]] entry)",
        ));
    };
    Attached::connect_live(&entry.name, &entry.url, entry.address(), token)
        .await
        .map_err(|e| fail(e.to_string(), hint(&e)))
}
