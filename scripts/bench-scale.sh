#!/usr/bin/env bash
# Every figure of the README's performance table in one run:
#   flock /tmp/vmpulse-lab.lock scripts/bench-scale.sh [SECONDS=120] [SCALE_SECONDS=300] [VMPULSE=target/release/vmpulse]
# 1. Four real guests (lab, needs root; scripts/lab-host.sh starts them): nobody polling
#    (idle), then collectd (collectd-core's virt plugin, Interval 1, csv writer), then
#    `vmpulse --no-ui --poll-interval 1` writing line protocol to a file, one after the
#    other for SECONDS each. For each: RSS, anonymous memory, PSS at the end, peak RSS, CPU
#    over the window, and the CPU libvirtd spent per cycle answering it (minus idle).
# 2. 1,000 and 3,000 test-driver domains (2 disks, 2 NICs each) at 1 s into a real
#    InfluxDB 3 Core (`VMPULSE_INFLUXDB3` names its binary; scripts/test.sh sets it) for
#    SCALE_SECONDS each, after 20 s of warm-up: each collection's duration (median, p90),
#    RSS, CPU, lines per second, the writer's queue depth over the run (first and second
#    half, and per minute, so a growing queue shows), requests in flight, the final
#    counters, and the rows the server holds (SQL count per table) against the lines written.
# Every run also prints its resident memory by kind of mapping (the binary, libraries,
# heap, thread stacks): where the memory goes.
# VMPULSE_BENCH_PARTS ("lab scale") picks parts, VMPULSE_BENCH_SIZES ("1000 3000") the
# scale runs; a size ending in `d` (`1000d`) opens the same host through libvirtd
# (`test+unix://`, needs it running, e.g. the lab's): the domains then live in the daemon
# as on a real host, not in vmpulse's heap (the test driver runs inside its client; about
# 36 MiB at 1,000 domains), but each domain's counters cost RPCs, so its cycle is long.
# VMPULSE_BENCH_KEEP=1 leaves the lab guests up.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
secs=${1:-120}
scale_secs=${2:-300}
bin=${3:-target/release/vmpulse}
parts=${VMPULSE_BENCH_PARTS:-lab scale}
[[ -x $bin ]] || { echo "no vmpulse binary at $bin (cargo build --release)" >&2; exit 1; }
tmp=$(mktemp -d)
lab_up=0
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
  if [[ $lab_up == 1 && ${VMPULSE_BENCH_KEEP:-0} != 1 ]]; then scripts/lab-host.sh down >&2 || true; fi
}
trap cleanup EXIT
sample() { python3 scripts/lib/sample.py "$@"; }
kinds() { python3 -c 'import json,sys; k=json.load(sys.stdin).get("memory_by_kind_mib", {})
print("  resident by kind (MiB): " + ", ".join(n.replace("_", " ") + " " + str(v) for n, v in k.items()))'; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1].split("."): d = d.get(k) if isinstance(d, dict) else None
print("-" if d is None else d)' "$1"; }

lab_part() {
  [[ $(id -u) == 0 ]] || { echo "lab part needs root (real guests); skipped" >&2; return; }
  command -v collectd >/dev/null || { echo "install collectd-core (apt-get install --no-install-recommends collectd-core)" >&2; exit 1; }
  scripts/lab-host.sh up 4 >/dev/null
  lab_up=1
  local lv
  lv=$(cat /run/libvirtd.pid)
  collectd_conf "$tmp"
  echo "## 4 real guests, 1 s, ${secs} s each (libvirtd $(libvirtd --version | awk '{print $NF}'), $(collectd -h | awk '/^collectd/ {print $1, $2; exit}'))"
  local idle
  idle=$(python3 - "$lv" "$secs" <<'PY'
import os, sys, time
pid, secs = sys.argv[1], float(sys.argv[2])
def t():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
a = t(); time.sleep(secs); print(round(1000 * (t() - a) / os.sysconf("SC_CLK_TCK") / secs, 2))
PY
)
  printf '%-10s %8s %8s %8s %8s %8s %12s\n' run RSS_MiB anon_MiB PSS_MiB peak_MiB CPU_% libvirtd_ms
  printf '%-10s %8s %8s %8s %8s %8s %12s\n' idle - - - - - "$idle/s"
  one() { # NAME CMD...
    local name=$1 pid out
    shift
    "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    out=$(sample "$pid" "$secs" --libvirtd "$lv" --warmup 20)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    echo "$out" >"$tmp/$name.json"
    printf '%-10s %8s %8s %8s %8s %8s %12s\n' "$name" "$(field memory_mib.VmRSS <<<"$out")" \
      "$(field memory_mib.RssAnon <<<"$out")" "$(field memory_mib.Pss <<<"$out")" \
      "$(field memory_mib.VmHWM <<<"$out")" "$(field cpu_percent <<<"$out")" \
      "$(awk -v v="$(field libvirtd_ms_per_s <<<"$out")" -v i="$idle" 'BEGIN {printf "%.2f", v - i}')"
    kinds <<<"$out"
  }
  one collectd collectd -f -C "$tmp/collectd.conf"
  one vmpulse "$bin" --no-ui --connect qemu:///system --poll-interval 1 --output "$tmp/lab.lp" \
    --spool-dir "$tmp/lab-spool" --socket "$tmp/lab.sock"
  echo "(libvirtd_ms: libvirtd's CPU per 1 s cycle minus idle; memory at the end of the window)"
}

scale_part() {
  local influx=${VMPULSE_INFLUXDB3:-}
  [[ -n $influx && -x $influx ]] || { echo "scale part needs VMPULSE_INFLUXDB3 (the influxdb3 binary); skipped" >&2; return; }
  local port
  port=$(free_port)
  "$influx" serve --node-id bench --object-store file --data-dir "$tmp/influxdb3" \
    --http-bind "127.0.0.1:$port" --without-auth >"$tmp/influxdb3.log" 2>&1 &
  for _ in $(seq 1 600); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
  echo "## test-driver domains at 1 s into InfluxDB 3 Core ($("$influx" --version 2>/dev/null | head -1)), ${scale_secs} s each"
  printf '%-6s %10s %8s %8s %8s %7s %10s %16s %9s %-48s %s\n' VMs cycle_ms p90_ms RSS_MiB peak_MiB CPU_% lines/s queue_1st/2nd/max in_flight final stored
  local n
  for n in ${VMPULSE_BENCH_SIZES:-1000 3000}; do
    local driver=test db="bench$n"
    if [[ $n == *d ]]; then driver=test+unix; n=${n%d}; fi
    bench_host_xml "$n" "$tmp/h$n.xml"
    "$bin" --no-ui --connect "$driver://$tmp/h$n.xml" --poll-interval 1 \
      --influx-url "http://127.0.0.1:$port" --influx-api v3 --influx-db "$db" \
      --spool-dir "$tmp/spool$n" --socket "$tmp/s$n.sock" 2>"$tmp/v$n.log" &
    local pid=$! out final stored
    out=$(sample "$pid" "$scale_secs" --socket "$tmp/s$n.sock" --warmup 20)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    final=$(grep -h "final:" "$tmp/v$n.log" | sed 's/^.*final: *//' | tr ' ' '\n' |
      grep -E '^lines_(queued|written|dropped)=' | tr '\n' ' ')
    stored=$(stored_rows "$port" "$db")
    [[ $driver == test ]] || n="${n}d"
    printf '%-6s %10s %8s %8s %8s %7s %10s %16s %9s %-48s %s\n' "$n" "$(field cycle_ms.median <<<"$out")" \
      "$(field cycle_ms.p90 <<<"$out")" "$(field memory_mib.VmRSS <<<"$out")" "$(field memory_mib.VmHWM <<<"$out")" \
      "$(field cpu_percent <<<"$out")" "$(field lines_per_s.written <<<"$out")" \
      "$(field queue_depth.first_half_mean <<<"$out")/$(field queue_depth.second_half_mean <<<"$out")/$(field queue_depth.max <<<"$out")" \
      "$(field requests_in_flight_max <<<"$out")" "$final" "$stored"
    kinds <<<"$out"
    echo "  queue per minute (peak/mean): $(python3 -c 'import json,sys
print(" ".join(f"{p}/{m}" for p, m in json.load(sys.stdin).get("queue_by_minute", [])))' <<<"$out")"
  done
  echo "(cycle: each collection's duration from /status; queue: the writer's depth sampled each second after warm-up)"
}

# stored_rows PORT DB: rows per table the server holds, summed.
stored_rows() {
  local port=$1 db=$2 tables
  tables=$(curl -fsG "http://127.0.0.1:$port/api/v3/query_sql" --data-urlencode "db=$db" \
    --data-urlencode "format=json" --data-urlencode "q=SHOW TABLES" |
    python3 -c 'import json,sys; print(" ".join(r["table_name"] for r in json.load(sys.stdin) if r.get("table_schema") == "iox"))')
  local t total=0 c
  for t in $tables; do
    c=$(curl -fsG "http://127.0.0.1:$port/api/v3/query_sql" --data-urlencode "db=$db" --data-urlencode "format=json" \
      --data-urlencode "q=SELECT count(*) AS n FROM \"$t\"" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["n"])')
    total=$((total + c))
  done
  echo "$total"
}

for part in $parts; do "${part}_part"; done
