//! Every setting, described once.
//!
//! Each entry below is the only place a setting is declared: its field in the
//! config struct (name, type, doc comment), its kind (how it is parsed and
//! checked, with its default and limits), and its [`Meta`]: file key, environment
//! variables, flag, whether it is secret, whether SIGHUP can reload it. From this
//! table come the layer types, the file and environment readers, the clap flags,
//! validation, `--print-config`, `config.example.toml` and the README table
//! (`config::docs` has the tests that keep those two files equal to the table).
//!
//! To add a setting: add one entry to the section it belongs to, then use
//! `config.<section>.<field>` where it is needed. Run
//! `VMPULSE_BLESS=1 cargo test --lib config::docs` once to rewrite
//! `config.example.toml` and the README table, and review the diff.
//! Settings that need more than their own value (one that depends on another,
//! like `influx.org` for the v2 API) get a check in `validate.rs`.

use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Duration;

use super::kind::{
    Api, Count, FleetHosts, Format, Globs, HttpUrl, Kind, MetadataTags, OptCount, OptText, Output,
    Positive, Raw, Seconds, SecretText, Switch, Text, Unit,
};
use super::{InfluxApi, OutputTarget, Secret};

/// Where a setting can be given, and how it behaves. Built with `const` calls:
/// `Meta::key("influx.db").env(&["INFLUX_DB"]).flag("influx-db").reload()`.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    /// Dotted key in the config file (`section.name`, or `name` at the top).
    pub key: Option<&'static str>,
    /// Environment variables, the first one set wins.
    pub env: &'static [&'static str],
    /// Long flag without the dashes.
    pub flag: Option<&'static str>,
    pub short: Option<char>,
    /// Shown commented out in the example file when the default is "not set".
    pub example: Option<&'static str>,
    /// For a default computed at run time (the hostname): what to call it in the
    /// docs; the example file then shows `example` commented out.
    pub computed_default: Option<&'static str>,
    /// Never printed, logged or served: `***` instead.
    pub secret: bool,
    /// SIGHUP can change it in a running process; otherwise a restart is needed.
    pub reload: bool,
}

impl Meta {
    /// A setting with a config-file key.
    pub const fn key(key: &'static str) -> Self {
        Self {
            key: Some(key),
            env: &[],
            flag: None,
            short: None,
            example: None,
            computed_default: None,
            secret: false,
            reload: false,
        }
    }
    /// A command-line-only setting (how this run behaves, not how the host is set up).
    pub const fn flag_only(flag: &'static str) -> Self {
        Self {
            key: None,
            flag: Some(flag),
            ..Self::key("")
        }
    }
    pub const fn env(self, names: &'static [&'static str]) -> Self {
        Self { env: names, ..self }
    }
    pub const fn flag(self, flag: &'static str) -> Self {
        Self {
            flag: Some(flag),
            ..self
        }
    }
    pub const fn short(self, c: char) -> Self {
        Self {
            short: Some(c),
            ..self
        }
    }
    pub const fn example(self, text: &'static str) -> Self {
        Self {
            example: Some(text),
            ..self
        }
    }
    pub const fn computed_default(self, text: &'static str) -> Self {
        Self {
            computed_default: Some(text),
            ..self
        }
    }
    pub const fn secret(self) -> Self {
        Self {
            secret: true,
            ..self
        }
    }
    pub const fn reload(self) -> Self {
        Self {
            reload: true,
            ..self
        }
    }
}

/// One row of the table, with the kind's operations erased to function pointers.
pub struct Setting {
    /// `section.field` in the config struct, e.g. `collector.poll_interval`.
    pub id: &'static str,
    pub meta: Meta,
    /// The doc comment, one line per `///` line.
    pub doc: &'static str,
    pub value_name: &'static str,
    pub switch: bool,
    /// The values to offer in completions (`Kind::choices`); empty: free text.
    pub choices: &'static [&'static str],
    /// Checks a raw value and stores it in the config.
    pub(crate) apply: fn(&mut super::Config, &Raw) -> Result<(), String>,
    /// The current value as TOML (secrets as `***`), `None` when not set.
    pub render: fn(&super::Config) -> Option<toml::Value>,
    /// The default as TOML, `None` when there is none.
    pub default: fn() -> Option<toml::Value>,
}

impl Setting {
    /// The doc comment as one line.
    pub fn summary(&self) -> String {
        self.doc
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }
    /// `--flag / ENV / file.key`: every way to give it, for messages.
    pub fn names(&self) -> String {
        let mut v: Vec<String> = Vec::new();
        if let Some(f) = self.meta.flag {
            v.push(format!("--{f}"));
        }
        v.extend(self.meta.env.iter().map(|e| e.to_string()));
        if let Some(k) = self.meta.key {
            v.push(k.to_string());
        }
        v.join(" / ")
    }
}

/// The setting with this id (`section.field`). Panics on a name that is not in the
/// table: ids are written in the code, never read from outside.
pub fn find(id: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no setting '{id}' in config/settings.rs"))
}

macro_rules! settings {
    ($(
        $(#[doc = $sdoc:literal])*
        [$sect:ident] $Struct:ident {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $kind:expr, $meta:expr;
            )*
        }
    )*) => {
        $(
            $(#[doc = $sdoc])*
            #[derive(Debug, Clone, PartialEq)]
            pub struct $Struct {
                $( $(#[doc = $doc])* pub $field: $ty, )*
            }

            impl Default for $Struct {
                fn default() -> Self {
                    Self { $( $field: Kind::default_value(&$kind), )* }
                }
            }
        )*

        /// Every setting, in the order of `config.example.toml`.
        pub static SETTINGS: LazyLock<Vec<Setting>> = LazyLock::new(|| vec![
            $($(
                Setting {
                    id: concat!(stringify!($sect), ".", stringify!($field)),
                    meta: $meta,
                    doc: concat!($($doc, "\n",)*),
                    value_name: Kind::value_name(&$kind),
                    switch: Kind::is_switch(&$kind),
                    choices: Kind::choices(&$kind),
                    apply: |c: &mut super::Config, raw: &Raw| {
                        c.$sect.$field = Kind::check(&$kind, raw)?;
                        Ok(())
                    },
                    render: |c: &super::Config| Kind::render(&$kind, &c.$sect.$field),
                    default: || Kind::render(&$kind, &Kind::default_value(&$kind)),
                },
            )*)*
        ]);
    };
}

fn hostname() -> String {
    super::default_host()
}
fn qemu_system() -> String {
    "qemu:///system".into()
}
fn vmstats() -> String {
    "vmstats".into()
}

settings! {
    /// The libvirt connection.
    [libvirt] LibvirtConfig {
        /// libvirt connection URI; test:///default needs no daemon.
        /// LIBVIRT_DEFAULT_URI (as virsh reads it) is used when LIBVIRT_URI is not set.
        uri: String = Text { default: qemu_system, value_name: "URI" },
            Meta::key("libvirt.uri").env(&["LIBVIRT_URI", "LIBVIRT_DEFAULT_URI"])
                .flag("connect").short('c');
        /// Seconds one sampling cycle's libvirt calls may take before the rest is skipped (a call stuck in one VM's QEMU monitor is given up for that VM after a quarter of the poll interval, at most half this timeout).
        timeout: Duration = Seconds::new(10.0),
            Meta::key("libvirt.timeout").env(&["LIBVIRT_TIMEOUT"]);
        /// Seconds device names read from domain XML are reused.
        device_cache_ttl: Duration = Seconds::new(300.0),
            Meta::key("libvirt.device_cache_ttl").env(&["DEVICE_CACHE_TTL"]);
    }

    /// Where the collector runs and how often it samples.
    [collector] CollectorConfig {
        /// Value of the `host` tag on every line.
        host: String = Text { default: hostname, value_name: "NAME" },
            Meta::key("host").example("hv01").computed_default("this machine's hostname");
        /// Seconds between samples (at least 0.1).
        poll_interval: Duration = Seconds::new(1.0).at_least(0.1),
            Meta::key("collector.poll_interval").env(&["POLL_INTERVAL"]).flag("poll-interval")
                .short('d').reload();
        /// Seconds between status lines in --no-ui mode.
        status_interval: Duration = Seconds::new(60.0),
            Meta::key("collector.status_interval").reload();
        /// Only VMs whose name matches one of these globs (* ? [..]); empty: every VM.
        /// Applied before any per-domain libvirt call.
        domains: Vec<String> = Globs,
            Meta::key("collector.domains").flag("domains");
        /// Leave out VMs whose name matches one of these globs (wins over domains).
        exclude: Vec<String> = Globs,
            Meta::key("collector.exclude").flag("exclude");
        /// Tags read from each domain's metadata (virDomainGetMetadata): tag name = "NAMESPACE-URI path", the path
        /// being element names separated by / from the namespace's root element, ending at an
        /// element (its text) or at @attribute. They go on every line of the VM, into JSON/CSV
        /// columns, /vms, Prometheus labels and the TUI (filter /project=shop); a missing value
        /// leaves the tag out. OpenStack Nova, e.g.: metadata_tags = { project =
        /// "http://openstack.org/xmlns/libvirt/nova/1.1 instance/owner/project", flavor =
        /// "http://openstack.org/xmlns/libvirt/nova/1.1 instance/flavor/@name" }
        metadata_tags: Vec<super::metadata::MetadataTag> = MetadataTags,
            Meta::key("collector.metadata_tags");
        /// Seconds a domain's metadata tags are reused before they are read again (also
        /// read again at once when the domain restarts).
        metadata_refresh: Duration = Seconds::new(60.0),
            Meta::key("collector.metadata_refresh");
        /// Seconds between readings of the host's own figures (CPUs, memory, NUMA
        /// free memory, huge pages): the header's host line and one `hypervisor`
        /// point per reading. Each reading is a few libvirtd calls; they change slowly.
        /// Shut-off VMs are listed again this often too (at once when a VM stops).
        host_interval: Duration = Seconds::new(5.0).at_least(1.0),
            Meta::key("collector.host_interval").env(&["HOST_INTERVAL"]);
    }

    /// Where the lines go and how they are batched.
    [influx] InfluxConfig {
        /// InfluxDB base URL; the writer stays off until it is set.
        /// InfluxDB 3 listens on 8181, InfluxDB 1.x/2.x on 8086.
        url: Option<url::Url> = HttpUrl,
            Meta::key("influx.url").env(&["INFLUX_URL"]).flag("influx-url")
                .example("http://127.0.0.1:8181").reload();
        /// Database (v3, v1) or bucket (v2).
        db: String = Text { default: vmstats, value_name: "NAME" },
            Meta::key("influx.db").env(&["INFLUX_DB"]).flag("influx-db").reload();
        /// API token; for v1, "user:password" is sent as basic auth.
        /// Keep the config file mode 600 if you put a token in it.
        token: Option<Secret> = SecretText,
            Meta::key("influx.token").env(&["INFLUX_TOKEN"]).flag("influx-token")
                .example("").secret().reload();
        /// File holding the API token instead (its trailing newline trimmed), read at
        /// start and on SIGHUP; a relative name is looked up in $CREDENTIALS_DIRECTORY
        /// (systemd's LoadCredential=). Not together with influx.token.
        token_file: Option<String> = OptText { value_name: "PATH" },
            Meta::key("influx.token_file").env(&["INFLUX_TOKEN_FILE"]).flag("influx-token-file")
                .example("/etc/vmpulse/influx.token").reload();
        /// Write API: v3 (/api/v3/write_lp), v2 (/api/v2/write), v1 (/write).
        api: InfluxApi = Api(InfluxApi::V3),
            Meta::key("influx.api").env(&["INFLUX_API"]).flag("influx-api").reload();
        /// Organisation, v2 only.
        org: Option<String> = OptText { value_name: "ORG" },
            Meta::key("influx.org").env(&["INFLUX_ORG"]).flag("influx-org").example("").reload();
        /// A batch is sent at this many lines while InfluxDB keeps up; while its acknowledgements are slow and the queue grows the writer raises it up to 8 times, and lowers it back once the queue drains...
        batch_max_lines: usize = Count::new(2000, 1, "lines"),
            Meta::key("influx.batch_max_lines").env(&["BATCH_MAX_LINES"]).reload();
        /// ...or this many bytes, however many lines the writer allows (at most 10 MiB: InfluxDB 3 refuses larger bodies)...
        batch_max_bytes: usize = Count::new(8 * 1024 * 1024, 1024, "bytes"),
            Meta::key("influx.batch_max_bytes").reload();
        /// ...or when its oldest line is this many seconds old.
        batch_max_age: Duration = Seconds::new(1.0),
            Meta::key("influx.batch_max_sec").env(&["BATCH_MAX_SEC"]).reload();
        /// Lines held between collector and writer; when full the oldest are dropped (past half of it, with every request busy, they go to the spool). Keep it above two collections' lines: 3,000 VMs make about 21,000 a collection.
        max_queue: usize = Count::new(50_000, 1, "lines"),
            Meta::key("influx.max_queue").env(&["MAX_QUEUE"]);
        /// Concurrent write requests while InfluxDB keeps up; InfluxDB 3 acknowledges only after its WAL flush (about 1 s), so while acknowledgements are slow and the queue grows the writer raises it up to 4 times, and lowers it back once the queue drains.
        max_in_flight: usize = Count::new(4, 1, "requests"),
            Meta::key("influx.max_in_flight");
        /// Gzip request bodies of at least this many bytes; 0 never compresses.
        gzip_min_bytes: usize = Count::new(64 * 1024, 0, "bytes"),
            Meta::key("influx.gzip_min_bytes").reload();
        /// v3 only: let InfluxDB 3 answer before its WAL is persisted.
        no_sync: bool = Switch(false),
            Meta::key("influx.no_sync").reload();
        /// Seconds one write request may take.
        request_timeout: Duration = Seconds::new(10.0),
            Meta::key("influx.request_timeout");
        /// Ceiling of the retry backoff in seconds (also the pace of retries after 401/403).
        max_backoff: Duration = Seconds::new(30.0),
            Meta::key("influx.max_backoff");
        /// Seconds a flush on stop or exit may take before the rest is given up.
        flush_timeout: Duration = Seconds::new(10.0),
            Meta::key("influx.flush_timeout");
    }

    /// Units of the degree rates: angle = degrees(atan(slope / unit)); one unit per second is 45°.
    [rates] RatesConfig {
        /// CPU % slope, percentage points per second, that makes 45°.
        cpu_unit: f64 = Unit(1.0),
            Meta::key("rates.cpu_unit");
        /// Memory % slope, percentage points per second, that makes 45°.
        memory_unit: f64 = Unit(1.0),
            Meta::key("rates.memory_unit");
        /// Disk and network throughput, bytes per second, that makes 45° (1 MiB/s).
        throughput_unit: f64 = Unit(1_048_576.0),
            Meta::key("rates.throughput_unit");
    }

    /// The live view.
    [ui] UiConfig {
        /// Fixed ceiling of the DISK gauge in bytes/s (default: the busiest VM's recent peak).
        disk_ceiling: Option<f64> = Positive { default: None },
            Meta::key("ui.disk_ceiling").example("209715200.0");
        /// Fixed ceiling of the RX/TX gauges in bytes/s (default: the busiest VM's recent peak).
        net_ceiling: Option<f64> = Positive { default: None },
            Meta::key("ui.net_ceiling").example("125000000.0");
        /// Minutes of per-VM history kept for the detail view's sparklines.
        history_minutes: usize = Count::new(5, 1, "minutes"),
            Meta::key("ui.history_minutes");
        /// Draw with ASCII only (borders, gauges, arrows, sparklines); also the
        /// default when the locale is not UTF-8 (LANG=C).
        ascii: bool = Switch(false),
            Meta::key("ui.ascii").flag("ascii");
    }

    /// The control API of the --no-ui service (status, start/stop, metrics; the TUI attaches to it).
    [control] ControlConfig {
        /// Unix socket of the control API; the TUI and `vmpulse status` look for the service there.
        socket: Option<String> = OptText { value_name: "PATH" },
            Meta::key("control.socket").env(&["VMPULSE_SOCKET"]).flag("socket")
                .example("/run/vmpulse/vmpulse.sock")
                .computed_default("$RUNTIME_DIRECTORY/vmpulse.sock under systemd (RuntimeDirectory=), else /run/vmpulse/vmpulse.sock as root, else $XDG_RUNTIME_DIR/vmpulse.sock");
        /// Group given the socket (mode 0660): its members may read and steer the service.
        group: Option<String> = OptText { value_name: "GROUP" },
            Meta::key("control.group").env(&["VMPULSE_CONTROL_GROUP"]).example("libvirt")
                .computed_default("libvirt (kept by root when this host has no such group)");
        /// Optional TCP listener (host:port) for remote health checks and `vmpulse fleet`'s
        /// live view ([[fleet.hosts]]); needs control.token.
        listen: Option<String> = OptText { value_name: "ADDR" },
            Meta::key("control.listen").env(&["VMPULSE_CONTROL_LISTEN"]).example("127.0.0.1:9180");
        /// Bearer token every request on the TCP listener must carry.
        token: Option<Secret> = SecretText,
            Meta::key("control.token").env(&["VMPULSE_CONTROL_TOKEN"]).example("").secret().reload();
        /// File holding the bearer token instead, read like influx.token_file.
        token_file: Option<String> = OptText { value_name: "PATH" },
            Meta::key("control.token_file").env(&["VMPULSE_CONTROL_TOKEN_FILE"])
                .example("control-token").reload();
        /// Also expose per-VM series on /metrics (for sites that scrape instead of running InfluxDB).
        metrics_per_vm: bool = Switch(false),
            Meta::key("control.metrics_per_vm").reload();
        /// Write a vmpulse_internal point (the service's own counters) every status interval.
        internal_metrics: bool = Switch(false),
            Meta::key("control.internal_metrics").reload();
        /// Seconds without a successful write, while lines wait, after which `vmpulse status`
        /// calls the writer failing (exit 1); so does a spool that grows that long.
        write_stale_after: Option<f64> = Positive { default: None },
            Meta::key("control.write_stale_after").env(&["VMPULSE_WRITE_STALE_AFTER"])
                .example("30.0").computed_default("the larger of 3 poll intervals and 30 s").reload();
    }

    /// The on-disk spool: lines InfluxDB cannot take yet wait there instead of being dropped.
    [spool] SpoolSettings {
        /// Keep undeliverable lines on disk; false keeps them in memory only
        /// (the oldest dropped when influx.max_queue is full).
        enabled: bool = Switch(true),
            Meta::key("spool.enabled").env(&["SPOOL_ENABLED"]);
        /// Spool directory; one vmpulse per directory (a lock file says which).
        dir: Option<String> = OptText { value_name: "DIR" },
            Meta::key("spool.dir").env(&["SPOOL_DIR"]).flag("spool-dir")
                .example("/var/lib/vmpulse/spool")
                .computed_default("$STATE_DIRECTORY/spool under systemd (StateDirectory=), else /var/lib/vmpulse/spool as root, else $XDG_STATE_HOME/vmpulse/spool");
        /// Largest spool in bytes; over it the oldest segment is deleted and its lines counted as dropped.
        max_bytes: usize = Count::new(1 << 30, 4096, "bytes"),
            Meta::key("spool.max_bytes").env(&["SPOOL_MAX_BYTES"]);
        /// Seconds between fsyncs of the spool: at most this much is lost on power loss.
        fsync_interval: Duration = Seconds::new(1.0),
            Meta::key("spool.fsync_interval");
    }

    /// Alerts: `[alerts.<metric>]` levels and `[[alerts.override]]` are tables of their
    /// own (`config::alerts`); this section's keys are the settings beside them.
    [alerts] AlertsSettings {
        /// Seconds a level must hold before its alert is raised, changes level or clears.
        min_duration: Duration = Seconds::new(10.0),
            Meta::key("alerts.min_duration").env(&["ALERT_MIN_DURATION"]).reload();
    }

    /// How this run behaves (command line only).
    [run] RunConfig {
        /// Write to FILE (appending) or '-' for stdout instead of InfluxDB
        /// (wins over --influx-url; '-' implies --no-ui).
        output: Option<OutputTarget> = Output,
            Meta::flag_only("output");
        /// Encoding of --output: lp (InfluxDB line protocol), json (one object per VM
        /// per collection) or csv (a header row, then one row per VM per collection).
        format: crate::config::Format = Format,
            Meta::flag_only("format");
        /// One collection (two samples a poll interval apart, for the rates) printed
        /// on stdout, then exit; implies --no-ui. It writes only to --output or to a URL
        /// given with --influx-url (never the file's or environment's), and never spools.
        once: bool = Switch(false),
            Meta::flag_only("once");
        /// N collections, then exit (like --once).
        iterations: Option<u64> = OptCount { min: 1, unit: "collections" },
            Meta::flag_only("iterations").short('n');
        /// Run collector and writer only, logging to stderr.
        no_ui: bool = Switch(false),
            Meta::flag_only("no-ui");
        /// TUI: collect locally even when a service answers on the control socket.
        standalone: bool = Switch(false),
            Meta::flag_only("standalone");
        /// TUI collecting locally: ship to InfluxDB even though a service runs on this
        /// host or --standalone was given (the writer is held off then: the service ships).
        write: bool = Switch(false),
            Meta::flag_only("write");
    }

    /// `vmpulse fleet`: every host's newest points, read back from the InfluxDB of [influx].
    [fleet] FleetConfig {
        /// Seconds the newest point of a host may be old for the host to count as live;
        /// older hosts stay listed, greyed, with their age.
        window: Duration = Seconds::new(30.0).at_least(1.0),
            Meta::key("fleet.window").env(&["VMPULSE_FLEET_WINDOW"]);
        /// Seconds between two queries of the fleet view.
        refresh: Duration = Seconds::new(2.0).at_least(0.5),
            Meta::key("fleet.refresh").env(&["VMPULSE_FLEET_REFRESH"]);
        /// Seconds the first query looks back for hosts that stopped writing (and for
        /// alerts still active); later queries read only the last window.
        lookback: Duration = Seconds::new(3600.0).at_least(1.0),
            Meta::key("fleet.lookback").env(&["VMPULSE_FLEET_LOOKBACK"]);
        /// Hosts whose control API Enter attaches to live instead of reading the database:
        /// [[fleet.hosts]] tables of name (the host tag), url (http://ADDR:PORT of its
        /// control.listen) and token or token_file (its control.token; a relative file is
        /// looked up in $CREDENTIALS_DIRECTORY), e.g. [[fleet.hosts]] name = "hv-a"
        /// url = "http://10.0.0.5:9180" token_file = "/etc/vmpulse/hv-a.token"
        hosts: Vec<super::fleet_hosts::FleetHost> = FleetHosts,
            Meta::key("fleet.hosts");
    }
}

/// Static tags are a table of their own: `[tags]` in the file, no flag or variable.
pub type Tags = BTreeMap<String, String>;

/// The file keys (for the unknown-key check), with their settings.
pub fn by_file_key() -> BTreeMap<&'static str, &'static Setting> {
    SETTINGS
        .iter()
        .filter_map(|s| s.meta.key.map(|k| (k, s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_keys_variables_and_flags_are_unique() {
        let mut seen = BTreeSet::new();
        for s in SETTINGS.iter() {
            assert!(seen.insert(s.id.to_string()), "{}", s.id);
            if let Some(k) = s.meta.key {
                assert!(seen.insert(format!("key {k}")), "{k}");
            }
            for e in s.meta.env {
                assert!(seen.insert(format!("env {e}")), "{e}");
            }
            if let Some(f) = s.meta.flag {
                assert!(seen.insert(format!("flag {f}")), "{f}");
            }
            assert!(!s.summary().is_empty(), "{} has no description", s.id);
        }
    }

    #[test]
    fn secrets_have_no_printable_default() {
        for s in SETTINGS.iter().filter(|s| s.meta.secret) {
            assert_eq!((s.default)(), None, "{}", s.id);
        }
    }

    #[test]
    fn names_list_every_way_to_give_a_setting() {
        assert_eq!(
            find("collector.poll_interval").names(),
            "--poll-interval / POLL_INTERVAL / collector.poll_interval"
        );
    }
}
