//! `vmpulse fleet`'s live attach (Enter on a host named in `[[fleet.hosts]]`)
//! against a real `vmpulse --no-ui` on libvirt's test driver with a TCP
//! `control.listen` and a token (no root, no daemons): the fleet's config is read
//! from a file with the token in a token file, `fleet::live::attach` (what Enter
//! calls) streams the host's VM snapshots marked live from that host, steers
//! it, says when it is gone and reattaches to its successor; a wrong token and a
//! port nobody listens on fail with messages that say what to check, never
//! quoting a token.

mod control_support;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use control_support::*;
use vmpulse::config::fleet_hosts::FleetHost;
use vmpulse::engine::Control;
use vmpulse::model::{Origin, Snapshot};
use vmpulse::ui::Engine;

const TOKEN: &str = "fleet-ctl-S3CRET-0815";
const WRONG: &str = "fleet-WRONG-S3CRET-4711";

async fn latest_where(
    rx: &mut tokio::sync::watch::Receiver<Arc<Snapshot>>,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let found = tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|s| pred(s)))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|s| s.clone());
    match found {
        Some(s) => s,
        None => {
            let s = rx.borrow();
            panic!(
                "timed out waiting for {what}; last: {:?}, {} VMs, collecting {}, collection {}",
                s.origin,
                s.vms.len(),
                s.collecting,
                s.collection
            )
        }
    }
}

/// The `[[fleet.hosts]]` entries of a fleet config file, resolved as `vmpulse
/// fleet` resolves it (the token read from its file in the credentials directory).
fn fleet_hosts(port: u16, dir: &std::path::Path) -> Vec<FleetHost> {
    let token_file = dir.join("hv-a.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = dir.join("fleet.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[fleet.hosts]]\nname = \"hv-a\"\nurl = \"http://127.0.0.1:{port}\"\n\
             token_file = \"hv-a.token\"\n\n\
             [[fleet.hosts]]\nname = \"hv-wrong\"\nurl = \"http://127.0.0.1:{port}/\"\ntoken = \"{WRONG}\"\n\n\
             [[fleet.hosts]]\nname = \"hv-down\"\nurl = \"http://127.0.0.1:{}\"\ntoken = \"t\"\n",
            free_port()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let credentials = dir.display().to_string();
    let env = move |k: &str| (k == "CREDENTIALS_DIRECTORY").then(|| credentials.clone());
    let resolved = vmpulse::config::resolve(Default::default(), Some(cfg), &env)
        .expect("the fleet config resolves");
    assert!(
        resolved.warnings.is_empty(),
        "both files are 0600: {:?}",
        resolved.warnings
    );
    resolved.config.fleet.hosts
}

#[test]
fn enter_on_a_listed_host_attaches_live_over_tcp_with_its_token() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let svc = Service::start_in(
        tempfile::tempdir().unwrap(),
        &["--poll-interval", "0.2"],
        &[
            ("VMPULSE_CONTROL_LISTEN", listen.as_str()),
            ("VMPULSE_CONTROL_TOKEN", TOKEN),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let hosts = fleet_hosts(port, dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let attached = vmpulse::fleet::live::attach(&hosts[0])
            .await
            .expect("live attach to hv-a");
        let mut rx = attached.subscribe();
        let first = latest_where(&mut rx, "the service's VMs", |s| s.vms.len() == 2).await;
        assert!(
            matches!(&first.origin,
                Origin::Live { host, pid, gone_since: None, .. }
                    if host == "hv-a" && *pid == svc.pid()),
            "{:?}",
            first.origin
        );
        // Snapshots keep arriving: the stream is live, not one answer.
        let seq = first.collection;
        let later = latest_where(&mut rx, "three more collections", |s| {
            s.collection >= seq + 3
        })
        .await;
        assert_eq!(later.vms.len(), 2);
        assert!(later.vms.iter().all(|v| !v.name().is_empty()));
        // The live view's controls reach the host's service over TCP too.
        attached.send(Control::Stop);
        latest_where(&mut rx, "collection stopped", |s| !s.collecting).await;
        attached.send(Control::Start);
        latest_where(&mut rx, "collection started", |s| s.collecting).await;

        let wrong = vmpulse::fleet::live::attach(&hosts[1])
            .await
            .err()
            .expect("a wrong token is refused")
            .to_string();
        assert!(
            wrong.starts_with(&format!("hv-wrong at http://127.0.0.1:{port}: ")),
            "{wrong}"
        );
        assert!(
            wrong.contains("401") && wrong.contains("wrong bearer token"),
            "{wrong}"
        );
        assert!(
            wrong.contains("[[fleet.hosts]] token or token_file"),
            "{wrong}"
        );
        assert!(!wrong.contains(WRONG) && !wrong.contains(TOKEN), "{wrong}");

        let down = vmpulse::fleet::live::attach(&hosts[2])
            .await
            .err()
            .expect("nobody listens")
            .to_string();
        assert!(
            down.starts_with("hv-down at http://127.0.0.1:")
                && down.contains("cannot connect")
                && down.contains("is control.listen set on that host"),
            "{down}"
        );

        // The service answered 401 and went on collecting; no token in its log.
        let before = svc.collections();
        wait_until("collections after the refused token", 10, || {
            (svc.collections() > before).then_some(())
        });
        let log = svc.log();
        assert!(!log.contains(TOKEN) && !log.contains(WRONG), "{log}");

        // The host's service stops: the live view says so and keeps its last VMs;
        // a new service on the same listener is reattached without a keypress.
        let first_pid = svc.pid();
        assert_eq!(svc.stop().0, Some(0));
        let gone = latest_where(&mut rx, "hv-a gone", |s| {
            matches!(
                s.origin,
                Origin::Live {
                    gone_since: Some(_),
                    ..
                }
            )
        })
        .await;
        assert_eq!(gone.vms.len(), 2);
        let again = Service::start_in(
            tempfile::tempdir().unwrap(),
            &["--poll-interval", "0.2"],
            &[
                ("VMPULSE_CONTROL_LISTEN", listen.as_str()),
                ("VMPULSE_CONTROL_TOKEN", TOKEN),
            ],
        );
        assert_ne!(again.pid(), first_pid);
        latest_where(&mut rx, "hv-a reattached", |s| {
            matches!(&s.origin, Origin::Live { pid, gone_since: None, .. } if *pid == again.pid())
        })
        .await;
        drop(attached.shutdown().await);
    });
}
