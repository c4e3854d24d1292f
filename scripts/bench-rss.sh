#!/usr/bin/env bash
# Peak RSS (VmHWM) and CPU time of `vmpulse --no-ui` after running for a while.
#   scripts/bench-rss.sh [SECONDS=300] [URI]
# Default URI: a generated test-driver host with 100 domains (2 NICs, 2 disks each).
# Writes to a real influxd 1.x on a loopback port when `influxd` is installed,
# else line protocol to a temp file.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
uri=${2:-}
if [ -z "$uri" ]; then
  {
    echo "<node>"
    for i in $(seq 1 100); do
      printf "<domain type='test'><name>bench-%03d</name><uuid>00000000-0000-0000-0000-%012d</uuid>" "$i" "$i"
      echo "<memory unit='KiB'>1048576</memory><vcpu>2</vcpu><os><type>hvm</type></os><devices>"
      for d in a b; do echo "<disk type='file' device='disk'><source file='/var/lib/x/$i$d.img'/><target dev='vd$d' bus='virtio'/></disk>"; done
      for n in 0 1; do printf "<interface type='ethernet'><mac address='52:54:00:%02x:%02x:%02x'/><target dev='tap-%d-%d'/></interface>\n" "$n" $((i / 256)) $((i % 256)) "$i" "$n"; done
      echo "</devices></domain>"
    done
    echo "</node>"
  } > "$tmp/host.xml"
  uri="test://$tmp/host.xml"
fi
cargo build --release --quiet
args=(--no-ui --connect "$uri" --poll-interval 1 --spool-dir "$tmp/spool" --socket "$tmp/vmpulse.sock")
if command -v influxd >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rpc=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$tmp/influxd.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$tmp/meta"
[data]
  dir = "$tmp/data"
  wal-dir = "$tmp/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
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
