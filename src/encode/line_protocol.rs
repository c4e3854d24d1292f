//! Encoding snapshots as InfluxDB line protocol (pure).
//!
//! Four measurements per VM, with the names and field types of the Python
//! collector vmpulse replaces (so its dashboards keep working): `vm_metrics`,
//! `vm_features`, `vm_devices` (one line per NIC and disk) and `vm_totals`. Every line carries the tags `host`,
//! the operator's static tags, then `VMID` (left out for inactive domains),
//! `name`, `uuid` and the VM's metadata tags (`collector.metadata_tags`), all
//! written by [`vm_tags`]; `vm_devices` adds `devtype` and `device`.
//!
//! Escaping: measurement `,` and space; tag keys, tag values and field keys
//! `,` `=` and space; string field values `"` and `\`. Backslashes in tag keys
//! and values depend on the parser at the other end ([`Escaping`]):
//! - InfluxDB 3 (Rust parser, `influxdb-line-protocol`) reads `\\` as one
//!   backslash, so every backslash is doubled.
//! - InfluxDB 1.x and 2.x (Go parser) take backslashes literally and treat any
//!   delimiter preceded by a backslash as escaped, so backslashes are written
//!   unchanged.
//!
//! Either way every name arrives exactly, except one that *ends* in a
//! backslash: InfluxDB 3 refuses such a value and the Go parser would read
//! the backslash as escaping the delimiter after it. Such a key or value gets
//! a `_` appended (`a\` is stored as `a\_`), the one documented substitute.
//!
//! `\n`, `\r` and `\t` are replaced by a space (libvirt refuses newlines in
//! names; InfluxDB 3 ends a tag at a tab), which is then escaped. An empty tag
//! value is left out (InfluxDB rejects `k=`). Integers carry the `i` suffix;
//! values above `i64::MAX` are left out rather than wrapped. Floats always
//! contain a `.` so the server types them as floats; NaN and ±inf are left
//! out. Line timestamps are the sample's wall clock (`raw.wall_ns`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::alert::AlertEvent;
use crate::config::InfluxApi;
use crate::model::{RawDomain, VmSnapshot};
use crate::schema::metrics::{self, Metric, Read, Value};
use crate::schema::{Measurement, RESERVED_TAGS};

/// How backslashes in tag keys and values are written (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escaping {
    /// InfluxDB 3's Rust parser: `\\` is an escaped backslash.
    Rust,
    /// InfluxDB 1.x/2.x's Go parser: backslashes are literal.
    Go,
}

impl Escaping {
    /// The parser behind each write API (and `--output` for that API).
    pub fn for_api(api: InfluxApi) -> Self {
        match api {
            InfluxApi::V3 => Self::Rust,
            InfluxApi::V2 | InfluxApi::V1 => Self::Go,
        }
    }
}

/// Appended to a tag key or value that ends in a backslash (no parser can hold one).
pub const TRAILING_BACKSLASH_SUFFIX: char = '_';

/// Tags every line carries besides the VM's own, escaped once.
#[derive(Debug, Clone)]
pub struct EncodeCtx {
    escaping: Escaping,
    host: String,
    tags: Vec<(String, String)>,
    /// `,host=...,k=v` already escaped, shared by every line.
    prefix: String,
    /// The names of `collector.metadata_tags`: JSON/CSV columns (each VM's values
    /// are in `RawDomain::tags`).
    metadata_tags: Vec<String>,
}

impl EncodeCtx {
    /// Encoding for InfluxDB 3 (the default API).
    pub fn new(host: &str, tags: &BTreeMap<String, String>) -> Self {
        Self::with_escaping(host, tags, Escaping::Rust)
    }

    pub fn with_escaping(host: &str, tags: &BTreeMap<String, String>, escaping: Escaping) -> Self {
        let tags: Vec<(String, String)> = tags
            .iter()
            .filter(|(k, _)| !RESERVED_TAGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut prefix = String::new();
        push_tag(&mut prefix, "host", host, escaping);
        for (k, v) in &tags {
            push_tag(&mut prefix, k, v, escaping);
        }
        Self {
            escaping,
            host: host.to_string(),
            tags,
            prefix,
            metadata_tags: Vec::new(),
        }
    }

    /// With the names of the configured metadata tags (`collector.metadata_tags`).
    pub fn with_metadata_tags(mut self, names: Vec<String>) -> Self {
        self.metadata_tags = names;
        self
    }

    /// The names of the configured metadata tags.
    pub fn metadata_tags(&self) -> &[String] {
        &self.metadata_tags
    }

    /// The `host` tag value.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `,host=...,k=v`, escaped: the tags of a host-level line.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(super) fn escaping(&self) -> Escaping {
        self.escaping
    }

    /// Static tags actually written (reserved keys removed).
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }
}

/// Appends this VM's lines (`vm_metrics`, `vm_features`, `vm_devices`, `vm_totals`,
/// and `vm_jobs` while a job runs) to `out`.
/// Lines carry no trailing newline.
pub fn encode_vm(out: &mut Vec<String>, ctx: &EncodeCtx, vm: &VmSnapshot) {
    let mut buf = String::with_capacity(2048);
    encode_vm_into(&mut buf, ctx, vm);
    out.extend(buf.lines().map(str::to_owned));
}

/// Appends this VM's lines to one buffer, each terminated by `\n` (no line can
/// contain a raw newline, see the module header). Faster when the caller
/// wants one request body.
pub fn encode_vm_into(buf: &mut String, ctx: &EncodeCtx, vm: &VmSnapshot) {
    let raw = &vm.raw;
    let tags = vm_tags(ctx, raw);
    let ts = raw.wall_ns;
    per_vm_line(buf, &tags, vm, Measurement::VmMetrics, ts);
    if raw.state.has_guest_counters() {
        per_vm_line(buf, &tags, vm, Measurement::VmFeatures, ts);
        for nic in &raw.nics {
            let dt = device_tags(&tags, "nic", &nic.name, ctx.escaping);
            let mut f = Fields::start(buf, Measurement::VmDevices.as_str(), &dt);
            for m in metrics::of(Measurement::VmDevices) {
                if let Read::Nic(read) = m.read {
                    f.value(m, read(nic));
                }
            }
            f.finish(ts);
        }
        for disk in &raw.disks {
            let dt = device_tags(&tags, "disk", &disk.name, ctx.escaping);
            let mut f = Fields::start(buf, Measurement::VmDevices.as_str(), &dt);
            for m in metrics::of(Measurement::VmDevices) {
                if let Read::Disk(read) = m.read {
                    f.value(m, read(disk));
                }
            }
            f.finish(ts);
        }
    }
    per_vm_line(buf, &tags, vm, Measurement::VmTotals, ts);
    for job in &raw.jobs {
        let jt = match &job.disk {
            Some(disk) => {
                let mut t = tags.clone();
                push_tag(&mut t, "device", disk, ctx.escaping);
                t
            }
            None => tags.clone(),
        };
        let mut f = Fields::start(buf, Measurement::VmJobs.as_str(), &jt);
        for m in metrics::of(Measurement::VmJobs) {
            if let Read::Job(read) = m.read {
                f.value(m, read(job));
            }
        }
        f.finish(ts);
    }
}

/// The tags of a VM's line, escaped, with the leading comma: `host`, the static
/// tags, `VMID` (active domains only), `name`, `uuid`, then the VM's metadata
/// tags (`collector.metadata_tags`; a missing one is not there). Every
/// measurement written for a VM starts its tag set with this.
pub fn vm_tags(ctx: &EncodeCtx, raw: &RawDomain) -> String {
    tags_of(ctx, raw.id, &raw.name, &raw.uuid, &raw.tags)
}

/// [`vm_tags`] from the parts, for lines made from something other than a sample
/// (an alert transition keeps the VM's identity and metadata tags).
fn tags_of(
    ctx: &EncodeCtx,
    id: Option<u32>,
    name: &str,
    uuid: &str,
    meta: &[(String, String)],
) -> String {
    let mut tags = String::with_capacity(ctx.prefix.len() + 96);
    tags.push_str(&ctx.prefix);
    if let Some(id) = id {
        let _ = write!(tags, ",VMID={id}");
    }
    push_tag(&mut tags, "name", name, ctx.escaping);
    push_tag(&mut tags, "uuid", uuid, ctx.escaping);
    for (k, v) in meta {
        push_tag(&mut tags, k, v, ctx.escaping);
    }
    tags
}

/// One `vm_alerts` point for an alert transition, terminated by `\n`: the VM's
/// tags plus `metric`; fields `level` (`ok` on the clearing point), `active`,
/// `value`, `threshold`; stamped with the sample's wall clock.
pub fn encode_alert(buf: &mut String, ctx: &EncodeCtx, e: &AlertEvent) {
    let mut tags = tags_of(ctx, e.vm_id, &e.vm, &e.uuid, &e.tags);
    push_tag(&mut tags, "metric", &e.metric, ctx.escaping);
    let mut f = Fields::start(buf, Measurement::VmAlerts.as_str(), &tags);
    f.string("level", e.level.map_or("ok", |l| l.as_str()));
    f.key("active");
    f.buf
        .push_str(if e.level.is_some() { "true" } else { "false" });
    f.float("value", e.value);
    f.float("threshold", e.threshold);
    f.finish(e.wall_ns);
}

/// One line of per-VM values; the table's rules say which are present.
fn per_vm_line(buf: &mut String, tags: &str, vm: &VmSnapshot, m: Measurement, ts: i64) {
    let mut f = Fields::start(buf, m.as_str(), tags);
    for metric in metrics::of(m) {
        f.value(metric, metric.vm_value(vm));
    }
    f.finish(ts);
}

/// The VM's tag prefix plus `devtype` and `device` for one `vm_devices` line.
fn device_tags(vm_tags: &str, devtype: &str, device: &str, escaping: Escaping) -> String {
    let mut t = String::with_capacity(vm_tags.len() + 32);
    t.push_str(vm_tags);
    t.push_str(",devtype=");
    t.push_str(devtype);
    push_tag(&mut t, "device", device, escaping);
    t
}

/// Builds one line's field set; the line is dropped if no field was written.
pub(super) struct Fields<'a> {
    buf: &'a mut String,
    line_start: usize,
    n: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn start(buf: &'a mut String, measurement: &str, tags: &str) -> Self {
        let line_start = buf.len();
        push_escaped(buf, measurement, MEASUREMENT);
        buf.push_str(tags);
        buf.push(' ');
        Self {
            buf,
            line_start,
            n: 0,
        }
    }

    /// One metric's value under its schema name; nothing when unknown.
    fn value(&mut self, m: &Metric, v: Option<Value>) {
        self.field(m.name, v);
    }

    /// One value under `name`; nothing when unknown.
    pub(super) fn field(&mut self, name: &str, v: Option<Value>) {
        match v {
            Some(Value::Int(v)) => self.int(name, v),
            Some(Value::Signed(v)) => self.signed(name, v),
            Some(Value::Float(v)) => self.float(name, v),
            Some(Value::Str(v)) => self.string(name, v),
            None => {}
        }
    }

    fn key(&mut self, key: &str) {
        if self.n > 0 {
            self.buf.push(',');
        }
        self.n += 1;
        push_escaped(self.buf, key, KEY);
        self.buf.push('=');
    }

    fn int(&mut self, key: &str, v: u64) {
        if let Ok(v) = i64::try_from(v) {
            self.signed(key, v);
        }
    }

    fn signed(&mut self, key: &str, v: i64) {
        self.key(key);
        let _ = write!(self.buf, "{v}i");
    }

    fn float(&mut self, key: &str, v: f64) {
        if !v.is_finite() {
            return;
        }
        self.key(key);
        push_float(self.buf, v);
    }

    fn string(&mut self, key: &str, v: &str) {
        self.key(key);
        self.buf.push('"');
        for c in v.chars() {
            match c {
                '"' | '\\' => {
                    self.buf.push('\\');
                    self.buf.push(c);
                }
                '\n' | '\r' => self.buf.push(' '),
                c => self.buf.push(c),
            }
        }
        self.buf.push('"');
    }

    pub(super) fn finish(self, ts: i64) {
        if self.n == 0 {
            self.buf.truncate(self.line_start);
            return;
        }
        let _ = writeln!(self.buf, " {ts}");
    }
}

/// Writes a finite float so that it always parses as a float: Rust's `Display`
/// gives the shortest round-trip digits without an exponent; `1` becomes `1.0`.
fn push_float(buf: &mut String, v: f64) {
    let start = buf.len();
    let _ = write!(buf, "{v}");
    if !buf[start..].contains('.') {
        buf.push_str(".0");
    }
}

/// Which characters a backslash must precede.
#[derive(Clone, Copy, PartialEq)]
enum Escape {
    Measurement,
    Key,
}
const MEASUREMENT: Escape = Escape::Measurement;
const KEY: Escape = Escape::Key;

/// `,key=value` with key and value escaped; nothing when the value is empty.
pub(super) fn push_tag(buf: &mut String, key: &str, value: &str, escaping: Escaping) {
    if key.is_empty() || value.is_empty() {
        return;
    }
    buf.push(',');
    push_tag_part(buf, key, escaping);
    buf.push('=');
    push_tag_part(buf, value, escaping);
}

/// One tag key or value for the given parser (see the module header).
fn push_tag_part(buf: &mut String, s: &str, escaping: Escaping) {
    match escaping {
        Escaping::Go => push_escaped(buf, s, KEY),
        Escaping::Rust if s.contains('\\') => {
            for c in s.chars() {
                match c {
                    '\\' => buf.push_str("\\\\"),
                    ',' | ' ' | '=' => {
                        buf.push('\\');
                        buf.push(c);
                    }
                    '\n' | '\r' | '\t' => buf.push_str("\\ "),
                    c => buf.push(c),
                }
            }
        }
        Escaping::Rust => push_escaped(buf, s, KEY),
    }
    if s.ends_with('\\') {
        buf.push(TRAILING_BACKSLASH_SUFFIX);
    }
}

/// What the server stores for tag key or value `s` (the documented substitute
/// for a trailing backslash; newlines and tabs become spaces).
pub fn stored_tag(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if s.ends_with('\\') {
        out.push(TRAILING_BACKSLASH_SUFFIX);
    }
    out
}

fn push_escaped(buf: &mut String, s: &str, kind: Escape) {
    let needs = |b: u8| match b {
        b',' | b' ' | b'\n' | b'\r' | b'\t' => true,
        b'=' => kind == Escape::Key,
        _ => false,
    };
    // Fast path: most names need no escaping.
    if !s.bytes().any(needs) {
        buf.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            ',' | ' ' => {
                buf.push('\\');
                buf.push(c);
            }
            '=' if kind == Escape::Key => buf.push_str("\\="),
            '\n' | '\r' | '\t' => buf.push_str("\\ "),
            c => buf.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::HOSTILE_NAMES as HOSTILE;
    use crate::model::*;
    use crate::schema::FIELD_KEYS;
    use pretty_assertions::assert_eq;

    fn ctx() -> EncodeCtx {
        EncodeCtx::new("hv1", &BTreeMap::new())
    }

    fn raw(name: &str) -> RawDomain {
        RawDomain {
            nics: vec![crate::fixtures::nic("tap-web0")],
            disks: vec![crate::fixtures::disk("vda")],
            wall_ns: 1_699_868_400_000_000_000,
            ..crate::fixtures::reported(name, crate::fixtures::UUID)
        }
    }

    fn derived() -> Derived {
        Derived {
            dt_secs: 2.0,
            cpu_percent: Some(12.5),
            cpu_split: CpuSplit::default(),
            cpu_angle_deg: None,
            memory_percent_angle_deg: Some(-45.0),
            memory_rate_kb_per_sec: 1024.0,
            memory_angle_deg: 89.944,
            disk_read: Throughput {
                bytes_per_sec: 2048.0,
                ops_per_sec: Some(0.5),
            },
            disk_write: Throughput {
                bytes_per_sec: 0.0,
                ops_per_sec: Some(0.0),
            },
            net_rx: Throughput {
                bytes_per_sec: 100.25,
                ops_per_sec: Some(1.0),
            },
            net_tx: Throughput {
                bytes_per_sec: f64::NAN,
                ops_per_sec: Some(f64::INFINITY),
            },
            disk_angle_deg: 0.1,
            disk_read_angle_deg: 0.1,
            disk_write_angle_deg: 0.0,
            net_rx_angle_deg: 0.00005,
            net_tx_angle_deg: 0.0,
            ..Derived::default()
        }
    }

    fn vm(name: &str) -> VmSnapshot {
        VmSnapshot {
            raw: raw(name),
            memory: Some(MemoryUse {
                used_kb: 500_000,
                source: MemSource::AvailableMinusUsable,
                total_kb: None,
                percent: Some(25.0),
            }),
            derived: Some(derived()),
        }
    }

    fn lines(ctx: &EncodeCtx, vm: &VmSnapshot) -> Vec<String> {
        let mut out = Vec::new();
        encode_vm(&mut out, ctx, vm);
        out
    }

    #[test]
    fn each_job_in_flight_is_one_vm_jobs_line_after_the_vms_others() {
        let mut v = vm("web-1");
        v.raw.jobs = vec![
            crate::fixtures::dump_job(),
            crate::fixtures::copy_job("vda"),
        ];
        let got = lines(&ctx(), &v);
        let t = "host=hv1,VMID=7,name=web-1,uuid=550e8400-e29b-41d4-a716-446655440000";
        let n = got.len();
        assert_eq!(
            got[n - 2],
            format!("vm_jobs,{t} type=\"unbounded\",operation=\"dump\",progress_percent=42.999992333352566,elapsed_ms=5200i,memory_processed_bytes=461708902i,memory_remaining_bytes=612032922i,memory_total_bytes=1073741824i,bandwidth_bytes_per_sec=89128960.0 1699868400000000000")
        );
        assert_eq!(
            got[n - 1],
            format!("vm_jobs,{t},device=vda type=\"bounded\",operation=\"block_copy\",progress_percent=25.0,data_processed_bytes=1073741824i,data_remaining_bytes=3221225472i,data_total_bytes=4294967296i 1699868400000000000")
        );
        // No job: no vm_jobs line.
        assert!(!lines(&ctx(), &vm("web-1"))
            .iter()
            .any(|l| l.starts_with("vm_jobs")));
    }

    #[test]
    fn an_alert_point_carries_the_vm_tags_its_metric_and_the_level() {
        let mut e = AlertEvent {
            vm: "web 01,env=prod".into(),
            ..AlertEvent::example()
        };
        let mut buf = String::new();
        encode_alert(&mut buf, &ctx(), &e);
        e.level = None;
        e.vm_id = None;
        encode_alert(&mut buf, &ctx(), &e);
        let lines: Vec<&str> = buf.lines().collect();
        assert_eq!(
            lines,
            [
                r#"vm_alerts,host=hv1,VMID=3,name=web\ 01\,env\=prod,uuid=u-1,metric=cpu_steal_percent level="warning",active=true,value=25.5,threshold=20.0 17"#,
                r#"vm_alerts,host=hv1,name=web\ 01\,env\=prod,uuid=u-1,metric=cpu_steal_percent level="ok",active=false,value=25.5,threshold=20.0 17"#,
            ]
        );
    }

    #[test]
    fn full_expected_lines_for_a_fixed_snapshot() {
        let got = lines(&ctx(), &vm("web-1"));
        let t = "host=hv1,VMID=7,name=web-1,uuid=550e8400-e29b-41d4-a716-446655440000";
        let want = vec![
            format!("vm_metrics,{t} state=\"running\",cpu_count=2i,memory_max_kb=2097152i,memory_used_kb=500000i,cputime_ns=5000000000i 1699868400000000000"),
            format!("vm_features,{t} memory_rate_kb_per_sec=1024.0,memory_angle_deg=89.944,cpu_usage_percent=12.5,memory_usage_percent=25.0,memory_percent_angle_deg=-45.0,disk_read_bytes_per_sec=2048.0,disk_write_bytes_per_sec=0.0,disk_read_req_per_sec=0.5,disk_write_req_per_sec=0.0,net_rx_bytes_per_sec=100.25,net_rx_packets_per_sec=1.0,disk_angle_deg=0.1,disk_read_angle_deg=0.1,disk_write_angle_deg=0.0,net_rx_angle_deg=0.00005,net_tx_angle_deg=0.0,memory_source=\"available-usable\" 1699868400000000000"),
            format!("vm_devices,{t},devtype=nic,device=tap-web0 rxbytes=1000i,rxpackets=10i,rxerrors=0i,rxdrops=1i,txbytes=2000i,txpackets=20i,txerrors=0i,txdrops=0i 1699868400000000000"),
            format!("vm_devices,{t},devtype=disk,device=vda rd_req=5i,rd_bytes=4096i,wr_reqs=6i,wr_bytes=8192i 1699868400000000000"),
            format!("vm_totals,{t} net_rxbytes=1000i,net_rxpackets=10i,net_rxerrors=0i,net_rxdrops=1i,net_txbytes=2000i,net_txpackets=20i,net_txerrors=0i,net_txdrops=0i,disk_rd_req=5i,disk_rd_bytes=4096i,disk_wr_reqs=6i,disk_wr_bytes=8192i,memactual=2097152i,memrss=600000i,memavailable=2000000i,memusable=1500000i,memswap_in=0i,memswap_out=0i,memmajor_fault=12i,memminor_fault=3400i,memdisk_cache=200000i,timeusr=3000000000i,timesys=1000000000i,cpus=2i,cputime=5000000000i,state=1i 1699868400000000000"),
        ];
        assert_eq!(got, want);
    }

    fn tag_of(line: &str, key: &str) -> Option<String> {
        let parsed = influxdb_line_protocol::parse_lines(line)
            .next()
            .expect("one line")
            .unwrap_or_else(|e| panic!("InfluxDB 3's parser refused {line:?}: {e}"));
        parsed.tag_value(key).map(|v| v.to_string())
    }

    #[test]
    fn metadata_tags_go_on_every_line_escaped_and_missing_ones_left_out() {
        let mut v = vm("web-1");
        let hostile = "shop, \"prod\"=a\\b\tc";
        v.raw.tags = vec![
            ("project".into(), hostile.into()),
            ("flavor".into(), "m1.small".into()),
            ("empty".into(), String::new()),
        ];
        let got = lines(&ctx(), &v);
        assert_eq!(got.len(), 5, "every measurement: {got:?}");
        for l in &got {
            assert_eq!(tag_of(l, "project"), Some(stored_tag(hostile)), "{l}");
            assert_eq!(tag_of(l, "flavor").as_deref(), Some("m1.small"), "{l}");
            assert_eq!(tag_of(l, "empty"), None, "{l}");
            assert_eq!(tag_of(l, "uuid").as_deref(), Some(v.raw.uuid.as_str()));
        }
        assert!(
            got[2].contains(",flavor=m1.small,devtype=nic"),
            "{}",
            got[2]
        );
        let prefix = vm_tags(&ctx(), &v.raw);
        assert!(got.iter().all(|l| l.contains(&prefix)));
    }

    #[test]
    fn cpu_split_and_vcpu_totals_are_written_only_when_known() {
        let mut v = vm("web-1");
        // No per-vCPU counters (test driver): none of the new fields.
        let got = lines(&ctx(), &v).join("\n");
        for absent in [
            "cpu_guest_percent",
            "cpu_steal_percent",
            "cpu_overhead_percent",
            "vcpu_time",
            "vcpu_delay",
        ] {
            assert!(
                !got.contains(absent),
                "{absent} written without counters:\n{got}"
            );
        }
        v.raw.vcpu_times_ns = vec![3_000, 4_000];
        v.raw.vcpu_delays_ns = vec![10, 20];
        if let Some(d) = v.derived.as_mut() {
            d.cpu_split = CpuSplit {
                guest: Some(11.0),
                overhead: Some(1.5),
                steal: Some(2.25),
            };
        }
        let got = lines(&ctx(), &v).join("\n");
        for present in [
            "cpu_guest_percent=11.0",
            "cpu_overhead_percent=1.5",
            "cpu_steal_percent=2.25",
            "vcpu_time=7000i",
            "vcpu_delay=30i",
        ] {
            assert!(got.contains(present), "{present} missing:\n{got}");
        }
    }

    #[test]
    fn disk_latency_is_written_only_when_requests_completed() {
        let mut v = vm("web-1");
        let got = lines(&ctx(), &v).join("\n");
        assert!(!got.contains("latency_ms"), "{got}");
        v.raw.disks[0].rd_times_ns = Some(7_000);
        if let Some(d) = v.derived.as_mut() {
            d.disk_latency.read_ms = Some(0.25);
        }
        let got = lines(&ctx(), &v);
        assert!(
            got[1].ends_with(",disk_read_latency_ms=0.25 1699868400000000000"),
            "{}",
            got[1]
        );
        assert!(!got[1].contains("disk_write_latency_ms"), "{}", got[1]);
        assert!(got[3].contains(",rd_total_times=7000i "), "{}", got[3]);
    }

    #[test]
    fn unknown_device_counters_are_left_out_not_zero() {
        let mut v = vm("web-1");
        v.raw.nics[0].rx_packets = None;
        v.raw.disks[0].wr_reqs = None;
        let got = lines(&ctx(), &v).join("\n");
        assert!(!got.contains("rxpackets="), "{got}");
        assert!(!got.contains("net_rxpackets="), "{got}");
        assert!(!got.contains("wr_reqs="), "{got}");
        assert!(got.contains("rxbytes=1000i"), "{got}");
    }

    #[test]
    fn hostile_names_parse_back_exactly_with_influxdb3s_parser() {
        let mut tags = BTreeMap::new();
        tags.insert(r"k\ ey\".to_string(), r"v\,a=l\".to_string());
        let (key, value) = (stored_tag(r"k\ ey\"), stored_tag(r"v\,a=l\"));
        let ctx = EncodeCtx::with_escaping("hv\\", &tags, Escaping::Rust);
        for name in HOSTILE {
            let mut v = vm(name);
            v.raw.nics[0].name = name.to_string();
            let got = lines(&ctx, &v);
            assert_eq!(got.len(), 5);
            for l in &got {
                assert!(!l.contains('\n'));
                let want = stored_tag(name);
                assert_eq!(tag_of(l, "name"), Some(want.clone()), "{l}");
                if !name.ends_with('\\') {
                    assert_eq!(want, name, "exact wherever a parser can hold it");
                }
                assert_eq!(tag_of(l, "host").as_deref(), Some("hv\\_"), "{l}");
                assert_eq!(tag_of(l, &key), Some(value.clone()), "{l}");
            }
            assert_eq!(tag_of(&got[2], "device"), Some(stored_tag(name)));
        }
    }

    #[test]
    fn field_keys_lists_every_field_written() {
        let mut v = vm("x");
        v.raw.disks[0].errors = Some(1);
        v.raw.vcpu_times_ns = vec![1];
        v.raw.vcpu_delays_ns = vec![1];
        if let Some(d) = v.derived.as_mut() {
            d.cpu_split = CpuSplit {
                guest: Some(1.0),
                overhead: Some(1.0),
                steal: Some(1.0),
            };
        }
        for l in lines(&ctx(), &v) {
            let parsed = influxdb_line_protocol::parse_lines(&l)
                .next()
                .expect("a line")
                .expect("parses");
            for (k, _) in &parsed.field_set {
                assert!(
                    FIELD_KEYS.contains(&k.as_str()),
                    "{k} missing from FIELD_KEYS"
                );
            }
        }
    }

    #[test]
    fn every_metric_reads_the_type_the_table_declares() {
        let mut v = vm("x");
        v.raw.disks[0].errors = Some(1);
        v.raw.vcpu_times_ns = vec![1];
        v.raw.vcpu_delays_ns = vec![1];
        let mut seen = 0;
        for m in crate::schema::METRICS {
            let got = match m.read {
                Read::Disk(f) => f(&v.raw.disks[0]),
                Read::Nic(f) => f(&v.raw.nics[0]),
                Read::Job(f) => f(&crate::fixtures::dump_job()).or_else(|| {
                    f(&DomainJob {
                        memory_dirty_rate_pages_per_sec: Some(1),
                        memory_iteration: Some(1),
                        downtime_ms: Some(1),
                        remaining_ms: Some(1),
                        ..crate::fixtures::copy_job("vda")
                    })
                }),
                _ => m.vm_value(&v),
            };
            if let Some(got) = got {
                assert!(m.type_matches(got), "{} read {got:?}", m.name);
                seen += 1;
            }
        }
        assert!(seen > 60, "only {seen} metrics had a value");
    }

    #[test]
    fn go_escaping_keeps_backslashes_and_marks_a_trailing_one() {
        let ctx = EncodeCtx::with_escaping("hv1", &BTreeMap::new(), Escaping::Go);
        let name_tag = |name: &str| {
            let l = lines(&ctx, &vm(name)).remove(0);
            let start = l.find(",name=").expect("name tag") + 6;
            let end = l.find(",uuid=").expect("uuid tag");
            l[start..end].to_string()
        };
        assert_eq!(
            name_tag(r#"web 01,env=prod "x"\y"#),
            r#"web\ 01\,env\=prod\ "x"\y"#
        );
        assert_eq!(name_tag(r"a\ b"), r"a\\ b");
        assert_eq!(name_tag(r"a\"), r"a\_");
        assert_eq!(name_tag(r"a\\"), r"a\\_");
        assert_eq!(Escaping::for_api(InfluxApi::V1), Escaping::Go);
        assert_eq!(Escaping::for_api(InfluxApi::V2), Escaping::Go);
        assert_eq!(Escaping::for_api(InfluxApi::V3), Escaping::Rust);
    }

    #[test]
    fn unicode_and_equals_in_tag_values() {
        let mut c = BTreeMap::new();
        c.insert("dc".to_string(), "zürich=1".to_string());
        c.insert("empty".to_string(), String::new());
        c.insert("name".to_string(), "ignored".to_string());
        let ctx = EncodeCtx::new("hv ä", &c);
        let got = lines(&ctx, &vm("日本語 vm"));
        assert!(
            got[0].starts_with(r"vm_metrics,host=hv\ ä,dc=zürich\=1,VMID=7,name=日本語\ vm,uuid="),
            "{}",
            got[0]
        );
        assert!(!got[0].contains("empty"));
        assert!(!got[0].contains("ignored"));
        assert_eq!(ctx.tags().len(), 2);
    }

    #[test]
    fn control_chars_become_escaped_spaces() {
        for esc in [Escaping::Rust, Escaping::Go] {
            let ctx = EncodeCtx::with_escaping("hv1", &BTreeMap::new(), esc);
            let got = lines(&ctx, &vm("x\ny\rz\tw"));
            assert!(got[0].contains(r",name=x\ y\ z\ w,uuid="), "{}", got[0]);
            assert!(got.iter().all(|l| !l.contains('\n') && !l.contains('\r')));
        }
    }

    #[test]
    fn empty_tags_are_omitted_and_inactive_domains_get_state_only() {
        let mut v = vm("");
        v.raw.id = None;
        v.raw.state = DomainState::Shutoff;
        v.raw.nics.clear();
        v.derived = None;
        v.memory = None;
        let got = lines(&ctx(), &v);
        let t = "host=hv1,uuid=550e8400-e29b-41d4-a716-446655440000";
        assert_eq!(
            got,
            vec![
                format!("vm_metrics,{t} state=\"shutoff\",cpu_count=2i,memory_max_kb=2097152i 1699868400000000000"),
                format!("vm_totals,{t} state=5i 1699868400000000000"),
            ]
        );
    }

    #[test]
    fn inactive_domain_never_gets_features_or_devices_even_if_given() {
        let mut v = vm("x");
        v.raw.state = DomainState::Crashed;
        let got = lines(&ctx(), &v);
        assert_eq!(got.len(), 2);
        assert!(!got[0].contains("cputime_ns"));
        assert!(got[1].starts_with("vm_totals,") && got[1].contains(" state=6i "));
    }

    #[test]
    fn floats_always_parse_as_floats() {
        let mut s = String::new();
        for v in [1.0, -0.0, 0.1, 1e21, 1e-7, -3.5, 123456789.0] {
            s.clear();
            push_float(&mut s, v);
            assert!(s.contains('.'), "{s}");
            assert!(!s.contains('e'), "{s}");
            assert_eq!(s.parse::<f64>().ok(), Some(v));
        }
    }

    #[test]
    fn string_fields_escape_quotes_and_backslashes() {
        let mut buf = String::new();
        let mut f = Fields::start(&mut buf, "m", "");
        f.string("s", "a\"b\\c\nd");
        f.finish(1);
        assert_eq!(buf, "m s=\"a\\\"b\\\\c d\" 1\n");
    }

    #[test]
    fn huge_integers_and_missing_values_are_left_out() {
        let mut buf = String::new();
        let mut f = Fields::start(&mut buf, "m a", ",t=1");
        f.int("big", u64::MAX);
        f.int("k,e y=", 3);
        f.finish(5);
        assert_eq!(buf, "m\\ a,t=1 k\\,e\\ y\\==3i 5\n");
        // No field at all: no line.
        let mut buf = String::new();
        let f = Fields::start(&mut buf, "m", "");
        f.finish(5);
        assert_eq!(buf, "");
    }

    #[test]
    fn disk_errors_summed_when_known() {
        let mut v = vm("x");
        v.raw.disks[0].errors = Some(2);
        let mut d2 = v.raw.disks[0].clone();
        d2.name = "vdb".into();
        d2.errors = None;
        v.raw.disks.push(d2);
        let got = lines(&ctx(), &v);
        let totals = got.last().cloned().unwrap_or_default();
        assert!(totals.contains(",disk_errors=2i,"), "{totals}");
        assert!(totals.contains(",disk_rd_req=10i,"), "{totals}");
        assert!(got.iter().any(|l| l
            .contains("device=vda rd_req=5i,rd_bytes=4096i,wr_reqs=6i,wr_bytes=8192i,errors=2i ")));
    }

    #[test]
    fn encode_into_matches_encode_vm() {
        let v = vm(r#"web 01,env=prod "x"\y"#);
        let mut buf = String::new();
        encode_vm_into(&mut buf, &ctx(), &v);
        let joined: String = lines(&ctx(), &v).iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(buf, joined);
    }
}
