//! Command-line flags and the top-level `run`: config -> engine -> frontend.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::layer::{Layer, Sourced};
use crate::config::{self, Secret};

/// Live per-VM metrics for KVM hypervisors, shipped to InfluxDB.
#[derive(Debug, Parser)]
#[command(name = "vmpulse", version, about, long_about = None)]
pub struct Cli {
    /// libvirt URI, e.g. qemu:///system or test:///default [env: LIBVIRT_URI]
    #[arg(long, value_name = "URI")]
    pub connect: Option<String>,
    /// InfluxDB base URL; the writer is off until this is set [env: INFLUX_URL]
    #[arg(long, value_name = "URL")]
    pub influx_url: Option<String>,
    /// Database (v3, v1) or bucket (v2) [env: INFLUX_DB] [default: vmstats]
    #[arg(long, value_name = "NAME")]
    pub influx_db: Option<String>,
    /// API token; for v1 "user:password" is sent as basic auth [env: INFLUX_TOKEN]
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub influx_token: Option<String>,
    /// Write API version: v3, v2 or v1 [env: INFLUX_API] [default: v3]
    #[arg(long, value_name = "v3|v2|v1")]
    pub influx_api: Option<String>,
    /// Organisation (v2 only) [env: INFLUX_ORG]
    #[arg(long, value_name = "ORG")]
    pub influx_org: Option<String>,
    /// Seconds between samples [env: POLL_INTERVAL] [default: 1]
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub poll_interval: Option<f64>,
    /// Config file (TOML) [env: VMPULSE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Write line protocol to FILE (appending) or '-' for stdout instead of InfluxDB
    #[arg(long, value_name = "FILE|-", allow_hyphen_values = true)]
    pub output: Option<String>,
    /// Run collector and writer only, logging to stderr
    #[arg(long)]
    pub no_ui: bool,
    /// Print the effective configuration (secrets masked) and exit
    #[arg(long)]
    pub print_config: bool,
    /// Control socket of the service [env: VMPULSE_SOCKET] [default: /run/vmpulse/vmpulse.sock as root, else $XDG_RUNTIME_DIR/vmpulse.sock]
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// TUI: collect locally even when a service is running (do not attach)
    #[arg(long)]
    pub standalone: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Talk to the running service over its control socket.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Show the service's status (exit 0 collecting, 1 stopped or failing, 3 no service)
    Status {
        /// The full status as JSON
        #[arg(long)]
        json: bool,
    },
    /// Start the service's collection
    Start,
    /// Stop the service's collection (the service keeps running)
    Stop,
}

impl Cli {
    /// The flags as the highest-priority config layer.
    pub fn layer(&self) -> Layer {
        let s = |v: &Option<String>, flag: &str| v.clone().map(|v| Sourced::new(v, flag));
        Layer {
            libvirt_uri: s(&self.connect, "--connect"),
            influx_url: s(&self.influx_url, "--influx-url"),
            influx_db: s(&self.influx_db, "--influx-db"),
            influx_token: self
                .influx_token
                .clone()
                .map(|t| Sourced::new(Secret::new(t), "--influx-token")),
            influx_api: s(&self.influx_api, "--influx-api"),
            influx_org: s(&self.influx_org, "--influx-org"),
            poll_interval: self
                .poll_interval
                .map(|v| Sourced::new(v, "--poll-interval")),
            output: s(&self.output, "--output"),
            no_ui: self.no_ui.then(|| Sourced::new(true, "--no-ui")),
            ..Layer::default()
        }
    }
}

/// Parses flags, resolves the config, and runs the chosen frontend.
/// Bad input gets one clear line on stderr and exit code 2; runtime failures exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok();
    let control = crate::control::ControlConfig::resolve(cli.socket.clone(), &env);
    if let Some(cmd) = cli.command {
        use crate::control::shell::{self, ShellCommand};
        let cmd = match cmd {
            Command::Status { json } => ShellCommand::Status { json },
            Command::Start => ShellCommand::Start,
            Command::Stop => ShellCommand::Stop,
        };
        return shell::run(cmd, &control.socket);
    }
    let resolved = match config::resolve(cli.layer(), cli.config.clone(), &env) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmpulse: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", resolved.config.to_toml_masked());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = color_eyre::install() {
        eprintln!("vmpulse: cannot install error handlers: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("vmpulse")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vmpulse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = resolved.config;
    let result = runtime.block_on(async {
        if config.no_ui {
            crate::logging::init_stderr();
            for w in &resolved.warnings {
                tracing::warn!("{w}");
            }
            let (layer, file) = (cli.layer(), cli.config.clone());
            let reload: crate::control::service::Reloader = Box::new(move || {
                let env = |k: &str| std::env::var(k).ok();
                config::resolve(layer.clone(), file.clone(), &env)
                    .map(|r| r.config)
                    .map_err(|e| e.to_string())
            });
            let service = crate::control::service::ServiceOptions {
                control,
                reload: Some(reload),
            };
            crate::headless::run(config, service).await
        } else {
            crate::ui::init_logging();
            for w in &resolved.warnings {
                tracing::warn!("{w}");
            }
            crate::control::attach::run_tui(&config, &control.socket, cli.standalone).await
        }
    });
    // Blocking libvirt calls stuck in a dead daemon must not hold the exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmpulse: {e:#}");
            ExitCode::FAILURE
        }
    }
}
