//! Command-line flags and the top-level `run`: config -> engine -> frontend.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Arg, ArgAction, ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::layer::Layer;
use crate::config::settings::{Setting, SETTINGS};
use crate::config::{self};

/// Live per-VM metrics for KVM hypervisors, shipped to InfluxDB.
#[derive(Debug, Parser)]
#[command(name = "vmpulse", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct Cli {
    /// Every setting that has a flag, from the settings table.
    #[command(flatten)]
    pub settings: SettingFlags,
    /// Config file (TOML) [env: VMPULSE_CONFIG]; also after a subcommand
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (secrets masked) and exit
    #[arg(long)]
    pub print_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Talk to the running service over its control socket.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Show the service's status (exit 0 collecting, 1 stopped or failing, 3 no service)
    Status {
        /// The full status as JSON
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Start the service's collection
    Start {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Stop the service's collection (the service keeps running)
    Stop {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Every host that writes to the InfluxDB of [influx], read back from it
    #[command(after_help = FLEET_AFTER_HELP)]
    Fleet(FleetCmd),
}

/// `vmpulse fleet`: the host list (or one host's VMs) from InfluxDB.
#[derive(Debug, Clone, Args)]
pub struct FleetCmd {
    /// Print the host list once (one row per host, worst first) and exit
    #[arg(long = "once", id = "fleet_once")]
    pub once: bool,
    /// Encoding of --once: json (an array of host objects) or csv
    #[arg(long = "format", id = "fleet_format", value_name = "FORMAT", default_value = "json",
          value_parser = ["json", "csv"])]
    pub format: String,
    /// Print this host's VMs instead (implies --once), as `vmpulse --once --format json` does
    #[arg(long = "host", id = "fleet_host", value_name = "NAME")]
    pub host: Option<String>,
}

/// The end of `vmpulse fleet --help`.
const FLEET_AFTER_HELP: &str = "\
Reads what every host's `vmpulse --no-ui` wrote to InfluxDB: one InfluxQL query per refresh
for all hosts (InfluxDB 1.x and 2.x /query, InfluxDB 3 /api/v3/query_influxql), with the
[influx] settings the writer uses (influx.url, influx.api, influx.db, influx.token) and
fleet.window (a host whose newest point is older is stale), fleet.refresh, fleet.lookback.
Host rows are sorted worst first: active alerts, stale, the worst VM's steal.

Screen keys: arrows/j/k move, Enter opens a host's VMs in the live view's screens (q or Esc
back), / filters host names and VM tags, s cycles the sort, ? help, q quits.

Live hosts: a [[fleet.hosts]] table (name = the host tag, url = \"http://ADDR:PORT\" of its
control.listen, token or token_file = its control.token) makes Enter attach to that host's
service live instead; when that fails, the host opens from InfluxDB with the error shown.

Examples:
  vmpulse --influx-url http://influx:8086 --influx-api v1 fleet
  vmpulse fleet --once --format json | jq '.[] | select(.stale)'
  vmpulse fleet --once --host hv-a | jq -r .name";

/// `--socket` after a subcommand (`vmpulse status --socket PATH`).
#[derive(Debug, Clone, Args)]
pub struct SocketArg {
    /// Control socket of the service (default: control.socket, see the main --help)
    #[arg(long = "socket", id = "subcommand_socket", value_name = "PATH")]
    pub path: Option<PathBuf>,
}

/// The end of `--help`: where settings come from, and examples.
const AFTER_HELP: &str = "\
Config file: --config FILE, else $VMPULSE_CONFIG, else /etc/vmpulse/config.toml with
$XDG_CONFIG_HOME/vmpulse/config.toml (~/.config/vmpulse/config.toml) over it.
Priority: defaults < config file < environment < flags; see `vmpulse --print-config`.
libvirt: qemu:///system unless --connect, LIBVIRT_URI or LIBVIRT_DEFAULT_URI says otherwise;
the connection is read-only (a user in the libvirt group can run vmpulse).

Examples:
  vmpulse                                   live view of every VM on this host
  vmpulse -c test:///default                try it without a hypervisor
  vmpulse --once --format json | jq .       one collection as JSON, then exit
  vmpulse -n 10 -d 5 --format csv > vms.csv ten collections 5 s apart as CSV
  INFLUX_URL=http://127.0.0.1:8181 vmpulse --no-ui     the collection service

Exit status: 0 ok, 1 runtime failure (e.g. libvirt unreachable at start), 2 bad input,
3 lines still unsent at the flush timeout. `man vmpulse` has the rest.";

/// `--version`: the package version, the git revision it was built from and the
/// libvirt library it runs with.
pub fn long_version() -> String {
    let libvirt = virt::connect::Connect::version()
        .map(|v| format!("{}.{}.{}", v / 1_000_000, v / 1000 % 1000, v % 1000))
        .unwrap_or_else(|_| "unknown".into());
    format!(
        "{} (git {}; libvirt {libvirt})",
        env!("CARGO_PKG_VERSION"),
        env!("VMPULSE_GIT_REVISION")
    )
}

/// Whether the live view can run: stdout is a terminal and there is a
/// controlling terminal to read keys from.
fn have_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
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

/// A flag's value as text, checked later by its kind (which names the setting
/// and accepts aliases such as `V1` or `ndjson`); the choices only tell clap what
/// to offer in shell completions, so `--format <TAB>` does not list file names.
#[derive(Clone)]
struct Choices(&'static [&'static str]);

impl TypedValueParser for Choices {
    type Value = String;
    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }
    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        if self.0.is_empty() {
            return None;
        }
        Some(Box::new(self.0.iter().map(|v| PossibleValue::new(*v))))
    }
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
                    .value_parser(Choices(s.choices))
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

/// The most glibc malloc arenas this process uses (unless `MALLOC_ARENA_MAX` says
/// otherwise). glibc gives each thread that allocates its own arena, up to eight per
/// core, and each keeps what it freed for that thread: the runtime's workers and the
/// blocking threads that read libvirt took turns with the same work, so every arena
/// grew to a cycle's peak (1,000 VMs after 5 minutes: 91 MiB anonymous with the
/// default, 57 MiB with one arena). One cycle runs at a time, so few arenas are
/// no bottleneck.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: libc::c_int = 1;

fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called first thing in
        // main, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
        }
    }
}

/// Parses flags, resolves the config, and runs the chosen frontend.
/// Bad input gets one clear line on stderr and exit code 2; runtime failures exit 1;
/// lines unsent at the flush timeout exit 3.
pub fn main() -> ExitCode {
    limit_malloc_arenas();
    let version = long_version();
    let matches = Cli::command().version(version).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let env = |k: &str| std::env::var(k).ok();
    let mut resolved = match config::resolve(cli.layer(), cli.config.clone(), &env) {
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
    if let Some(cmd) = cli.command.clone() {
        return dispatch(cmd, &resolved.config);
    }
    if !resolved.config.run.no_ui && !have_terminal() {
        // Checked before anything touches the terminal: no escape sequence on stdout.
        eprintln!("vmpulse needs a terminal; use --no-ui");
        return ExitCode::from(2);
    }
    resolved
        .warnings
        .extend(config::run::notes(&resolved.config));
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
        tokio::spawn(crate::residency::release_periodically());
        if config.run.no_ui {
            crate::logging::init_stderr();
            for w in &resolved.warnings {
                tracing::warn!("{w}");
            }
            let (layer, file) = (cli.layer(), cli.config.clone());
            let reload: crate::control::service::Reloader = Box::new(move || {
                let env = |k: &str| std::env::var(k).ok();
                config::resolve(layer.clone(), file.clone(), &env).map_err(|e| e.to_string())
            });
            crate::headless::run(config, Some(reload)).await
        } else {
            crate::ui::init_logging();
            for w in &resolved.warnings {
                tracing::warn!("{w}");
            }
            crate::remote::attach::run_tui(&config).await
        }
    });
    // Blocking libvirt calls stuck in a dead daemon must not hold the exit hostage.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmpulse: {e:#}");
            // A spool directory that cannot be one is a bad setting (2: systemd does not
            // restart); a full or failing disk, or a lock another process holds, may
            // clear (1: Restart=on-failure tries again).
            if let Some(crate::writer::WriterError::Spool(spool)) =
                e.downcast_ref::<crate::writer::WriterError>()
            {
                return match spool.is_transient() {
                    true => ExitCode::FAILURE,
                    false => ExitCode::from(2),
                };
            }
            match e.downcast_ref::<crate::headless::LinesUnsent>() {
                Some(_) => ExitCode::from(crate::headless::LinesUnsent::EXIT_CODE),
                None => ExitCode::FAILURE,
            }
        }
    }
}

/// `vmpulse status|start|stop`: the socket from the subcommand's `--socket`,
/// else from the config (`control.socket`, `VMPULSE_SOCKET`).
fn dispatch(cmd: Command, config: &config::Config) -> ExitCode {
    use crate::remote::shell::{self, ShellCommand};
    let (cmd, flag) = match cmd {
        Command::Fleet(f) => return fleet(f, config),
        Command::Status { json, socket } => (ShellCommand::Status { json }, socket.path),
        Command::Start { socket } => (ShellCommand::Start, socket.path),
        Command::Stop { socket } => (ShellCommand::Stop, socket.path),
    };
    let socket = flag.unwrap_or_else(|| crate::control::client_socket(&config.control));
    shell::run(cmd, &socket)
}

/// `vmpulse fleet`: `--once` prints and exits (1 when the query fails); otherwise
/// the host list screen, which needs a terminal.
fn fleet(cmd: FleetCmd, config: &config::Config) -> ExitCode {
    use crate::fleet::{FleetArgs, OnceFormat};
    let args = FleetArgs {
        once: cmd.once || cmd.host.is_some(),
        format: if cmd.format == "csv" {
            OnceFormat::Csv
        } else {
            OnceFormat::Json
        },
        host: cmd.host,
    };
    if !args.once && !have_terminal() {
        eprintln!("vmpulse fleet needs a terminal; use --once");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("vmpulse: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.once {
        return match runtime.block_on(crate::fleet::once(config, &args)) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e @ crate::fleet::client::FleetError::NoUrl) => {
                eprintln!("vmpulse: {e}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("vmpulse: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Err(e) = color_eyre::install() {
        eprintln!("vmpulse: cannot install error handlers: {e}");
    }
    match runtime.block_on(crate::fleet::screen::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmpulse: {e:#}");
            ExitCode::FAILURE
        }
    }
}
