#!/usr/bin/env bash
# Peak RSS (VmHWM) and CPU time of `vmpulse --no-ui` after running for a while.
#   scripts/bench-rss.sh [SECONDS=300] [URI]
# Default URI: a generated test-driver host with 100 domains (2 NICs, 2 disks each).
# Writes to a real influxd 1.x on a loopback port when `influxd` is installed,
# else line protocol to a temp file.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
secs=${1:-300}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
uri=${2:-}
if [ -z "$uri" ]; then
  bench_host_xml 100 "$tmp/host.xml"
  uri="test://$tmp/host.xml"
fi
cargo build --release --quiet
args=(--no-ui --connect "$uri" --poll-interval 1 --spool-dir "$tmp/spool" --socket "$tmp/vmpulse.sock")
if command -v influxd >/dev/null; then
  port=$(free_port)
  influxd_conf "$tmp" "$port"
  influxd run -config "$tmp/influxd.conf" >"$tmp/influxd.log" 2>&1 &
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/ping" >/dev/null && break; sleep 0.1; done
  curl -fs -XPOST "http://127.0.0.1:$port/query" --data-urlencode "q=CREATE DATABASE bench" >/dev/null
  args+=(--influx-url "http://127.0.0.1:$port" --influx-api v1 --influx-db bench)
  sink="influxd 1.x on 127.0.0.1:$port"
else
  args+=(--output "$tmp/out.lp")
  sink="$tmp/out.lp"
fi
target/release/vmpulse "${args[@]}" 2>"$tmp/vmpulse.log" &
pid=$!
sleep "$secs"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
ticks=$(awk '{print $14+$15}' /proc/$pid/stat)
hz=$(getconf CLK_TCK)
kill -TERM $pid; wait $pid || true
echo "uri: $uri"
echo "sink: $sink"
echo "ran: ${secs} s"
echo "peak RSS (VmHWM): $((hwm / 1024)) MiB ($hwm KiB); RSS at end: $((rss / 1024)) MiB"
echo "CPU time: $(awk -v t=$ticks -v hz=$hz -v s=$secs 'BEGIN {printf "%.2f s (%.2f %% of one core)", t/hz, 100*t/hz/s}')"
grep -E "final:" "$tmp/vmpulse.log" | sed 's/^.*final:/final:/'
