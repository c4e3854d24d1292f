#!/usr/bin/env bash
# The CPU libvirtd spends answering vmpulse, next to collectd's virt plugin, per cycle.
#   flock /tmp/vmpulse-lab.lock scripts/bench-libvirtd-load.sh [SECONDS=60] [ROUNDS=1] [VMPULSE...]
# Needs root (lab guests). Starts N lab guests (VMPULSE_BENCH_GUESTS, default 4) with
# scripts/lab-host.sh, then for each round measures libvirtd's utime+stime
# (/proc/<libvirtd>/stat) over SECONDS with nobody polling (idle), with collectd
# (collectd-core's virt plugin, Interval 1, csv writer) and with `vmpulse --no-ui
# --poll-interval 1` writing line protocol to a file (each VMPULSE binary given, default
# target/release/vmpulse: pass an older build too to compare before and after a change,
# in the same rounds). Per cycle = (run − idle) / SECONDS; the ratio is to collectd's in the
# same round, and over all rounds to the sum of collectd's.
# Stops the guests and daemons at the end unless VMPULSE_BENCH_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
secs=${1:-60}
rounds=${2:-1}
shift $(($# < 2 ? $# : 2))
bins=("$@")
[[ ${#bins[@]} -gt 0 ]] || bins=(target/release/vmpulse)
guests=${VMPULSE_BENCH_GUESTS:-4}
[[ $(id -u) == 0 ]] || { echo "needs root (lab guests)" >&2; exit 1; }
command -v collectd >/dev/null || { echo "install collectd-core (apt-get install --no-install-recommends collectd-core)" >&2; exit 1; }
for bin in "${bins[@]}"; do
  [[ -x $bin ]] || { echo "no vmpulse binary at $bin (cargo build --release)" >&2; exit 1; }
done
tmp=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$tmp"
  [[ ${VMPULSE_BENCH_KEEP:-0} == 1 ]] || scripts/lab-host.sh down >&2 || true
}
trap cleanup EXIT
scripts/lab-host.sh up "$guests" >/dev/null
lv=$(cat /run/libvirtd.pid)
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$lv/stat"; }

# measure NAME CMD...: libvirtd ticks over $secs while CMD runs (none: idle).
measure() {
  local name=$1 pid='' t0 t1
  shift
  if [[ $# -gt 0 ]]; then
    "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    sleep 3 # connected and past its first cycle
  fi
  t0=$(ticks)
  sleep "$secs"
  t1=$(ticks)
  if [[ -n $pid ]]; then kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; fi
  echo $((t1 - t0))
}

collectd_conf "$tmp"
vm_args=(--no-ui --connect qemu:///system --poll-interval 1 --output "$tmp/out.lp"
  --spool-dir "$tmp/spool" --socket "$tmp/vmpulse.sock")

echo "guests: $guests; ${secs} s per run; libvirtd $(libvirtd --version | awk '{print $NF}'); $(collectd -h | awk '/^collectd/ {print $1, $2; exit}')"
printf '%-6s %-28s %12s %14s %8s\n' round run libvirtd_ms ms_per_cycle ratio
declare -A sum
for r in $(seq 1 "$rounds"); do
  idle=$(measure idle)
  cd_t=$(measure collectd collectd -f -C "$tmp/collectd.conf")
  row() { # NAME TICKS: one line; the ratio is to this round's collectd
    awk -v r="$r" -v n="$1" -v t="$2" -v i="$idle" -v c="$cd_t" -v hz="$hz" -v s="$secs" 'BEGIN {
      ms = 1000 / hz; v = (t - i) * ms / s; cn = (c - i) * ms / s
      printf "%-6s %-28s %12.0f %14.2f %8.2f\n", r, n, t * ms, v, (cn > 0 ? v / cn : 0) }'
  }
  row idle "$idle"
  row collectd "$cd_t"
  sum[collectd]=$((${sum[collectd]:-0} + cd_t - idle))
  for bin in "${bins[@]}"; do
    vm_t=$(measure vmpulse "$bin" "${vm_args[@]}")
    row "$bin" "$vm_t"
    sum[$bin]=$((${sum[$bin]:-0} + vm_t - idle))
    # A second sample (a slow monitor blamed as stuck, collector/poll.rs) costs a full call more.
    echo "  second samples: $(grep -c 'sampling the other VMs again' "$tmp/vmpulse.log" || true);" \
      "$(grep -h "final:" "$tmp/vmpulse.log" | sed 's/^.*final: *//' | cut -d' ' -f1-3)"
  done
done
for bin in "${bins[@]}"; do
  awk -v n="$bin" -v v="${sum[$bin]}" -v c="${sum[collectd]}" -v hz="$hz" -v s="$secs" -v r="$rounds" 'BEGIN {
    ms = 1000 / hz
    printf "all rounds: %s %.2f ms/cycle, collectd %.2f ms/cycle: %.2f x collectd\n", n, v * ms / s / r, c * ms / s / r, (c > 0 ? v / c : 0) }'
done
