//! Command-line flags and the top-level `run`: config -> engine -> frontend.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Args, FromArgMatches, Parser};

use crate::config::layer::Layer;
use crate::config::settings::{Setting, SETTINGS};
use crate::config::{self};

/// Live per-VM metrics for KVM hypervisors, shipped to InfluxDB.
#[derive(Debug, Parser)]
#[command(name = "vmpulse", version, about, long_about = None)]
pub struct Cli {
    /// Every setting that has a flag, from the settings table.
    #[command(flatten)]
    pub settings: SettingFlags,
    /// Config file (TOML) [env: VMPULSE_CONFIG]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets masked) and exit
    #[arg(long)]
    pub print_config: bool,
}

/// The flags of `config::settings`, read into the highest-priority layer.
#[derive(Debug, Clone, Default)]
pub struct SettingFlags(pub Layer);

/// `--help` text: the description, then where else it can be set and its default.
fn help(s: &Setting) -> String {
    let mut h = s.summary();
    if let Some(env) = s.meta.env.first() {
        h.push_str(&format!(" [env: {env}]"));
    }
    let default = (s.default)().filter(|_| !s.switch && s.meta.computed_default.is_none());
    if let Some(v) = default {
        let shown = match v {
            toml::Value::String(t) => t,
            other => other.to_string(),
        };
        h.push_str(&format!(" [default: {shown}]"));
    }
    h
}

impl Args for SettingFlags {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for s in SETTINGS.iter() {
            let Some(flag) = s.meta.flag else { continue };
            let mut arg = Arg::new(s.id).long(flag).help(help(s));
            if let Some(c) = s.meta.short {
                arg = arg.short(c);
            }
            arg = if s.switch {
                arg.action(ArgAction::SetTrue)
            } else {
                // Negative numbers reach validation, which names the flag and the range.
                arg.value_name(s.value_name)
                    .num_args(1)
                    .allow_negative_numbers(true)
            };
            cmd = cmd.arg(arg);
        }
        cmd
    }
    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        let mut out = Self::default();
        out.update_from_arg_matches(m)?;
        Ok(out)
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        for s in SETTINGS.iter() {
            let Some(flag) = s.meta.flag else { continue };
            let origin = format!("--{flag}");
            if s.switch {
                if m.get_flag(s.id) {
                    self.0.set(s.id, true, origin);
                }
            } else if let Some(v) = m.get_one::<String>(s.id) {
                self.0.set(s.id, v.as_str(), origin);
            }
        }
        Ok(())
    }
}

impl Cli {
    /// The flags as the highest-priority config layer.
    pub fn layer(&self) -> Layer {
        self.settings.0.clone()
    }
}

/// Parses flags, resolves the config, and runs the chosen frontend.
/// Bad input gets one clear line on stderr and exit code 2; runtime failures exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok();
    let resolved = match config::resolve(cli.layer(), cli.config.clone(), &env) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vmpulse: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        print!("{}", config::docs::print_config(&resolved.config));
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
        if config.run.no_ui {
            crate::logging::init_stderr();
            for w in &resolved.warnings {
                tracing::warn!("{w}");
            }
            crate::headless::run(config).await
        } else {
            crate::ui::init_logging();
            for w in &resolved.warnings {
                tracing::warn!("{w}");
            }
            let engine = crate::engine::EngineHandle::start(&config)?;
            crate::ui::run(engine, &config).await
        }
    });
    // Blocking libvirt calls stuck in a dead daemon must not hold the exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmpulse: {e:#}");
            // An unusable or locked spool directory is a bad setting, like any other.
            match e.downcast_ref::<crate::influx::writer::WriterError>() {
                Some(crate::influx::writer::WriterError::Spool(_)) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
