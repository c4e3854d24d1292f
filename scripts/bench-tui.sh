#!/usr/bin/env bash
# CPU and RSS of the TUI at scale: `vmpulse --standalone` in a detached tmux
# terminal of 160x48 on a test-driver host of N domains (2 NICs, 2 disks each),
# no InfluxDB; after WARM seconds (the history fills over ui.history_minutes),
# process and UI-thread CPU over SECS seconds from /proc/PID/stat, and VmRSS.
#   scripts/bench-tui.sh [BINARY=target/release/vmpulse] [N=1000] [WARM=330] [SECS=60] [cards|table]
# Give two binaries' runs side by side (two shells) to compare builds on a shared machine.
# N ending in `d` (`1000d`) opens the host through libvirtd (`test+unix://`, needs it
# running): the domains live in the daemon, as on a real host, not in vmpulse's heap
# (the test driver runs inside its client, about 35 MiB at 1,000 domains).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
bin=$(realpath "${1:-target/release/vmpulse}")
n=${2:-1000} warm=${3:-330} secs=${4:-60} view=${5:-cards}
driver=test
if [[ $n == *d ]]; then driver=test+unix n=${n%d}; fi
command -v tmux >/dev/null || { echo "bench-tui.sh needs tmux" >&2; exit 2; }
tmp=$(mktemp -d)
session="vmpulse-bench-tui-$$"
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -rf "$tmp"' EXIT
bench_host_xml "$n" "$tmp/host.xml"
mkdir -p "$tmp/home"
tmux new-session -d -s "$session" -x 160 -y 48 \
  "env HOME=$tmp/home XDG_CONFIG_HOME=$tmp/home $bin --connect $driver://$tmp/host.xml \
   --poll-interval 1 --standalone --socket $tmp/vmpulse.sock --spool-dir $tmp/spool 2>$tmp/vmpulse.log"
pid=
for _ in $(seq 1 50); do
  pid=$(pgrep -f "^$bin .*$tmp/spool" || true)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "vmpulse did not start: $(cat "$tmp/vmpulse.log")" >&2; exit 1; }
sleep 2
[ "$view" = table ] && tmux send-keys -t "$session" t
sleep "$warm"
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' "$1"; }
p0=$(ticks /proc/$pid/stat) u0=$(ticks /proc/$pid/task/$pid/stat) t0=$(date +%s.%N)
sleep "$secs"
p1=$(ticks /proc/$pid/stat) u1=$(ticks /proc/$pid/task/$pid/stat) t1=$(date +%s.%N)
rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
pct() { echo "scale=2; 100 * $1 / $hz / ($t1 - $t0)" | bc; }
echo "$(basename "$bin") $n domains ($driver), $view view, after ${warm}s, over ${secs}s:" \
  "process $(pct $((p1 - p0))) % of a core, UI thread $(pct $((u1 - u0))) %," \
  "threads $(ls /proc/$pid/task | wc -l), RSS $((rss / 1024)) MiB"
