#!/usr/bin/env bash
# The CPU libvirtd spends answering vmpulse, next to collectd's virt plugin, per cycle.
#   flock /tmp/vmpulse-lab.lock scripts/bench-libvirtd-load.sh [SECONDS=60] [ROUNDS=1] [VMPULSE=target/release/vmpulse]
# Needs root (lab guests). Starts N lab guests (VMPULSE_BENCH_GUESTS, default 4) with
# scripts/lab-host.sh, then for each round measures libvirtd's utime+stime
# (/proc/<libvirtd>/stat) over SECONDS with nobody polling (idle), with collectd
# (collectd-core's virt plugin, Interval 1, csv writer) and with `vmpulse --no-ui
# --poll-interval 1` writing line protocol to a file. Per cycle = (run − idle) / SECONDS.
# Stops the guests and daemons at the end unless VMPULSE_BENCH_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
rounds=${2:-1}
bin=${3:-target/release/vmpulse}
guests=${VMPULSE_BENCH_GUESTS:-4}
[[ $(id -u) == 0 ]] || { echo "needs root (lab guests)" >&2; exit 1; }
command -v collectd >/dev/null || { echo "install collectd-core (apt-get install --no-install-recommends collectd-core)" >&2; exit 1; }
[[ -x $bin ]] || { echo "no vmpulse binary at $bin (cargo build --release)" >&2; exit 1; }
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

cat >"$tmp/collectd.conf" <<CONF
Interval 1
LoadPlugin virt
LoadPlugin csv
<Plugin virt>
  Connection "qemu:///system"
  RefreshInterval 60
</Plugin>
<Plugin csv>
  DataDir "$tmp/csv"
</Plugin>
CONF
vm_args=(--no-ui --connect qemu:///system --poll-interval 1 --output "$tmp/out.lp"
  --spool-dir "$tmp/spool" --socket "$tmp/vmpulse.sock")

echo "guests: $guests; ${secs} s per run; libvirtd $(libvirtd --version | awk '{print $NF}'); $(collectd -h | awk '/^collectd/ {print $1, $2; exit}')"
printf '%-6s %10s %10s %10s %18s %18s %8s\n' round idle_ms collectd_ms vmpulse_ms collectd_ms/cycle vmpulse_ms/cycle ratio
for r in $(seq 1 "$rounds"); do
  idle=$(measure idle)
  cd_t=$(measure collectd collectd -f -C "$tmp/collectd.conf")
  vm_t=$(measure vmpulse "$bin" "${vm_args[@]}")
  awk -v r="$r" -v i="$idle" -v c="$cd_t" -v v="$vm_t" -v hz="$hz" -v s="$secs" 'BEGIN {
    ms = 1000 / hz; cn = (c - i) * ms / s; vn = (v - i) * ms / s
    printf "%-6s %10.0f %10.0f %10.0f %18.2f %18.2f %8.2f\n", r, i * ms, c * ms, v * ms, cn, vn, (cn > 0 ? vn / cn : 0)
  }'
done
grep -h "final:" "$tmp/vmpulse.log" | sed 's/^.*final:/vmpulse final:/' || true
