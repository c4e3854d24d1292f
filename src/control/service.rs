//! The control API's part of the `--no-ui` service: the server, SIGHUP
//! reloads and the optional `vmpulse_internal` self-metrics, behind three
//! calls headless mode makes (`listen`, `start`, and one per event).

use std::time::{Duration, SystemTime};

use super::metrics;
use super::reload::{changes, log_changes};
use super::server::{self, Listeners, Server, ServerError};
use super::views::{self, ServiceInfo};
use crate::config::{Config, Resolved};
use crate::engine::{Control, Controller, EngineHandle};

/// Re-reads the config file and environment (with the same flags) for SIGHUP,
/// with the warnings found on the way (a file others can read holding a secret).
pub type Reloader = Box<dyn Fn() -> Result<Resolved, String> + Send + Sync>;

pub struct Service {
    server: Server,
    ctl: Controller,
    /// `None`: SIGHUP only says that reloading is unavailable.
    reload: Option<Reloader>,
    /// The config in force: the start config plus reloaded reloadable settings.
    running: Config,
}

impl Service {
    /// Binds the socket first, so a second service exits before collecting.
    pub async fn listen(config: &Config) -> Result<Listeners, ServerError> {
        server::listen(&config.control).await
    }

    pub fn start(
        listeners: Listeners,
        engine: &EngineHandle,
        config: &Config,
        reload: Option<Reloader>,
    ) -> Self {
        let svc = ServiceInfo {
            pid: std::process::id(),
            started_at: SystemTime::now(),
        };
        let window = crate::history::History::window_of(&config.ui);
        let server = Server::serve(
            listeners,
            engine.controller(),
            views::config(config),
            svc,
            window,
        );
        Self {
            server,
            ctl: engine.controller(),
            reload,
            running: config.clone(),
        }
    }

    /// Where the API listens, for the start-up line.
    pub fn listening(&self) -> &str {
        self.server.listening()
    }

    /// Every status interval: one `vmpulse_internal` point when enabled.
    pub fn on_status_tick(&self) {
        if self.running.control.internal_metrics {
            let snap = self.ctl.subscribe().borrow().clone();
            let host = &self.running.collector.host;
            let line = metrics::internal_line(&snap, host, SystemTime::now());
            self.ctl.enqueue(vec![line]);
        }
    }

    /// SIGHUP: re-read, apply the reloadable settings, log the rest. Returns
    /// the new status interval when it changed.
    pub fn on_sighup(&mut self) -> Option<Duration> {
        let Some(reload) = &self.reload else {
            tracing::warn!("SIGHUP: this process cannot re-read its configuration");
            return None;
        };
        let new = match reload() {
            Ok(Resolved { config, warnings }) => {
                for w in warnings {
                    tracing::warn!("SIGHUP: {w}");
                }
                config
            }
            Err(e) => {
                tracing::error!("SIGHUP: configuration not reloaded, the running one stays: {e}");
                return None;
            }
        };
        log_changes(&changes(&self.running, &new));
        let old_status = self.running.collector.status_interval;
        if new.collector.poll_interval != self.running.collector.poll_interval {
            self.ctl
                .send(Control::SetPollInterval(new.collector.poll_interval));
        }
        let applied = super::reload::applied(&self.running, &new);
        let restart_writer = super::reload::writer_changed(&self.running, &applied);
        let alerts_changed = applied.alert_rules != self.running.alert_rules
            || applied.alerts != self.running.alerts;
        if restart_writer || applied.tags != self.running.tags || alerts_changed {
            self.ctl.reconfigure(applied.clone(), restart_writer);
        }
        self.running = applied;
        self.server.set_config(&self.running);
        (self.running.collector.status_interval != old_status)
            .then_some(self.running.collector.status_interval)
    }
}
