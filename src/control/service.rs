//! The control API's part of the `--no-ui` service: the server, SIGHUP
//! reloads and the optional `vmpulse_internal` self-metrics, behind three
//! calls headless mode makes (`listen`, `start`, and one per event).

use std::time::{Duration, SystemTime};

use super::reload::{changes, log_changes};
use super::server::{self, Listeners, Server, ServerError};
use super::views::{self, ServiceInfo};
use super::{metrics, ControlConfig};
use crate::config::Config;
use crate::engine::{Control, Controller, EngineHandle};

/// Re-reads the config file and environment (with the same flags) for SIGHUP.
pub type Reloader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

pub struct ServiceOptions {
    pub control: ControlConfig,
    /// `None`: SIGHUP only says that reloading is unavailable.
    pub reload: Option<Reloader>,
}

pub struct Service {
    server: Server,
    ctl: Controller,
    opts: ServiceOptions,
    /// The config in force: the start config plus reloaded reloadable settings.
    running: Config,
}

impl Service {
    /// Binds the socket first, so a second service exits before collecting.
    pub async fn listen(opts: &ServiceOptions) -> Result<Listeners, ServerError> {
        server::listen(&opts.control).await
    }

    pub fn start(
        listeners: Listeners,
        engine: &EngineHandle,
        config: &Config,
        opts: ServiceOptions,
    ) -> Self {
        let svc = ServiceInfo {
            pid: std::process::id(),
            started_at: SystemTime::now(),
        };
        let window = Duration::from_secs(config.ui.history_minutes.max(1) * 60);
        let server = Server::serve(
            listeners,
            engine.controller(),
            views::config(config, &opts.control),
            svc,
            window,
        );
        Self {
            server,
            ctl: engine.controller(),
            opts,
            running: config.clone(),
        }
    }

    /// Every status interval: one `vmpulse_internal` point when enabled.
    pub fn on_status_tick(&self) {
        if self.opts.control.internal_metrics {
            let snap = self.ctl.subscribe().borrow().clone();
            let line = metrics::internal_line(&snap, &self.running.host, SystemTime::now());
            self.ctl.enqueue(vec![line]);
        }
    }

    /// SIGHUP: re-read, apply the reloadable settings, log the rest. Returns
    /// the new status interval when it changed.
    pub fn on_sighup(&mut self) -> Option<Duration> {
        let Some(reload) = &self.opts.reload else {
            tracing::warn!("SIGHUP: this process cannot re-read its configuration");
            return None;
        };
        let new = match reload() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("SIGHUP: configuration not reloaded, the running one stays: {e}");
                return None;
            }
        };
        log_changes(&changes(&self.running, &new));
        let mut status = None;
        if new.poll_interval != self.running.poll_interval {
            self.running.poll_interval = new.poll_interval;
            self.ctl.send(Control::SetPollInterval(new.poll_interval));
        }
        if new.status_interval != self.running.status_interval {
            self.running.status_interval = new.status_interval;
            status = Some(new.status_interval);
        }
        self.server
            .set_config(views::config(&self.running, &self.opts.control));
        status
    }
}
