//! The TUI header when attached to a service and when that service is gone, and
//! for a host `vmpulse fleet` opened live from its control API or (the attach
//! failed) from the database (`TestBackend` + insta, fixed clock). Regenerate:
//! `INSTA_UPDATE=always cargo test --test ui_attached_header`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ratatui::backend::TestBackend;
use ratatui::Terminal;

use vmpulse::model::{Origin, Snapshot, SourceState};
use vmpulse::ui::app::{App, Options};
use vmpulse::ui::render::view;
use vmpulse::ui::theme::Theme;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn header_text(origin: Origin) -> String {
    let mut s = Snapshot::empty("qemu:///system", "hv-lab-01", Duration::from_secs(1));
    s.seq = 5;
    s.taken_at = now();
    s.source = SourceState::Connected;
    s.collector.last_collection_time = Some(now() - Duration::from_millis(300));
    s.collector.last_collection_ms = Some(4.0);
    s.origin = origin;
    let snap = Arc::new(s);
    let opts = Options {
        theme: Theme { color: false },
        disk_ceiling: None,
        net_ceiling: None,
        history: Duration::from_secs(300),
    };
    let app = App::new(opts, snap.clone(), (110, 20));
    let mut term = Terminal::new(TestBackend::new(110, 20)).unwrap();
    term.draw(|f| view(f, &app, &snap, now())).unwrap();
    let buf = term.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .take(3)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn attached_header_names_pid_and_uptime() {
    let text = header_text(Origin::Attached {
        pid: 4242,
        started_at: now() - Duration::from_secs(3 * 86_400 + 4 * 3600 + 120),
    });
    assert!(
        text.contains("attached to service pid 4242, up 3d04h"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn gone_header_says_since_when() {
    let text = header_text(Origin::Gone {
        pid: 4242,
        since: now() - Duration::from_secs(12),
    });
    assert!(
        text.contains("service pid 4242 gone since 22:13:08 UTC (12s ago)"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn standalone_header_says_nothing_about_a_service() {
    let text = header_text(Origin::Local);
    assert!(!text.contains("service"), "{text}");
}

fn live(gone_since: Option<SystemTime>) -> Origin {
    Origin::Live {
        host: "hv-a".into(),
        pid: 4242,
        started_at: now() - Duration::from_secs(2 * 3600 + 300),
        gone_since,
    }
}

#[test]
fn fleet_live_header_says_live_from_which_host() {
    let text = header_text(live(None));
    assert!(
        text.contains("live from hv-a · pid 4242, up 2h05m · Esc: back to the hosts"),
        "{text}"
    );
    assert!(text.contains("Esc: back to the hosts"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn fleet_live_header_while_the_host_is_gone() {
    let text = header_text(live(Some(now() - Duration::from_secs(7))));
    assert!(
        text.contains("live from hv-a: gone 7.0s ago, reattaching"),
        "{text}"
    );
}

#[test]
fn fleet_failed_attach_shows_its_error_over_the_database_view() {
    let text = header_text(Origin::Database {
        endpoint: "http://influx:8086/ (v1, db=vmstats)".into(),
        attach_error: Some("hv-a at http://10.0.0.5:9180: the service answered 401".into()),
    });
    assert!(
        text.contains("from InfluxDB (live attach failed)"),
        "{text}"
    );
    assert!(
        text.contains(
            "⚠ live attach failed: hv-a at http://10.0.0.5:9180: the service answered 401"
        ),
        "{text}"
    );
    insta::assert_snapshot!(text);
}
