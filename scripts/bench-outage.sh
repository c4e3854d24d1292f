#!/usr/bin/env bash
# The outage drill: `vmpulse --no-ui` (release build) polls a test-driver host
# every second into a real influxd 1.x on loopback; influxd is killed for
# OUTAGE seconds, then started again on the same data. Prints lines queued /
# written / dropped, what InfluxDB holds, vmpulse's CPU during the outage, RSS
# over the outage (it must not grow), peak RSS, spool size, and how long the
# backlog took to drain once InfluxDB was back.
#   scripts/bench-outage.sh [OUTAGE_SECS=600] [DOMAINS=100]
# Numbers, not pass/fail. Needs influxd (Debian influxdb) and curl.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
outage=${1:-600}
domains=${2:-100}
before=30
tmp=$(mktemp -d)
influx_pid=
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

bench_host_xml "$domains" "$tmp/host.xml"

port=$(free_port)
influxd_conf "$tmp" "$port"
start_influxd() {
  influxd run -config "$tmp/influxd.conf" >>"$tmp/influxd.log" 2>&1 &
  influx_pid=$!
  for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/ping" >/dev/null && return; sleep 0.1; done
  echo "influxd did not start" >&2; exit 1
}
q() { curl -fs -XPOST "http://127.0.0.1:$port/query" --data-urlencode "db=bench" --data-urlencode "q=$1"; }
count() { q "SELECT COUNT(\"$2\") FROM \"$1\"" | python3 -c 'import json,sys; v=json.load(sys.stdin)["results"][0].get("series"); print(v[0]["values"][0][1] if v else 0)'; }

cargo build --release --quiet
start_influxd
q "CREATE DATABASE bench" >/dev/null
printf '[collector]\nstatus_interval = 1.0\n' > "$tmp/vmpulse.toml"
target/release/vmpulse --no-ui --connect "test://$tmp/host.xml" --config "$tmp/vmpulse.toml" \
  --poll-interval 1 --influx-url "http://127.0.0.1:$port" --influx-api v1 --influx-db bench \
  --spool-dir "$tmp/spool" --socket "$tmp/vmpulse.sock" 2>"$tmp/vmpulse.log" &
pid=$!
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep "$before"
rss_steady=$(rss)
if [ "$outage" -gt 0 ]; then
  kill -KILL "$influx_pid"; wait "$influx_pid" 2>/dev/null || true
  t0=$(ticks); s0=$(date +%s.%N)
  rss_samples=""
  for i in $(seq 1 "$outage"); do
    sleep 1
    if [ $((i % 60)) -eq 0 ] || [ "$i" -eq 10 ]; then rss_samples+=" ${i}s:$(($(rss) / 1024))MiB"; fi
  done
  t1=$(ticks); s1=$(date +%s.%N)
  spool_bytes=$(du -sb "$tmp/spool" | cut -f1)
  spool_line=$(grep "status:" "$tmp/vmpulse.log" | tail -1 | sed 's/.*; spool /spool /; s/; .*//')
  start_influxd
  back=$(date +%s.%N)
  # Drained: the first status line after the restart that shows an empty spool.
  while sleep 1; do
    last=$(grep "status:" "$tmp/vmpulse.log" | tail -1)
    case "$last" in *"; spool 0 lines"*) break ;; esac
    if [ "$(echo "$(date +%s.%N) - $back > 1800" | bc)" = 1 ]; then echo "not drained after 30 min" >&2; break; fi
  done
  drained=$(date +%s.%N)
fi
sleep 5
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
kill -TERM "$pid"; wait "$pid" || true
final=$(grep "final:" "$tmp/vmpulse.log" | sed 's/^.*final:/final:/')
stored=0
for mf in vm_metrics:state vm_features:memory_rate_kb_per_sec vm_devices:rxbytes vm_devices:rd_bytes vm_totals:state; do
  stored=$((stored + $(count "${mf%%:*}" "${mf##*:}")))
done
if [ "$outage" -gt 0 ]; then
  echo "domains: $domains at 1 s; outage: ${outage} s (influxd SIGKILLed, then started again)"
else
  echo "domains: $domains at 1 s; no outage (steady state, $((before + 5)) s)"
fi
echo "$final"
echo "lines in InfluxDB: $stored"
echo "RSS steady state (before the outage): $((rss_steady / 1024)) MiB; peak RSS (VmHWM): $((hwm / 1024)) MiB"
if [ "$outage" -gt 0 ]; then
  echo "RSS during the outage:$rss_samples"
  echo "CPU during the outage: $(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s0="$s0" -v s1="$s1" 'BEGIN {printf "%.1f s of %.0f s (%.2f %% of one core)", (b-a)/hz, s1-s0, 100*(b-a)/hz/(s1-s0)}')"
  echo "spool at the end of the outage: $spool_bytes bytes on disk; $spool_line"
  echo "backlog drained $(echo "$drained - $back" | bc | xargs printf '%.0f') s after influxd was back (status lines every 1 s)"
fi
