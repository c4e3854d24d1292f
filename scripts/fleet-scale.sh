#!/usr/bin/env bash
# The fleet's figures at scale: HOSTS hosts × VMS VMs of synthetic points (line protocol
# in vmpulse's schema: vm_metrics, vm_features, hypervisor, vmpulse_internal; one point
# per VM and second for SECONDS seconds, ending now) written to a real influxd 1.x on a
# loopback port, then:
#   - `vmpulse fleet --once` (the first refresh: the lookback), wall time, CPU and peak RSS;
#   - the steady-state query (the last window) as `curl` times it;
#   - the host list screen in tmux for SCREEN_SECS seconds: CPU time and peak RSS.
#   scripts/fleet-scale.sh [HOSTS=200] [VMS=50] [SECONDS=30] [SCREEN_SECS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/bench.sh
hosts=${1:-200} vms=${2:-50} secs=${3:-30} screen_secs=${4:-30}
tmp=$(mktemp -d)
influxd_pid=""
tmux_sock="vmpulse-fleet-scale-$$"
cleanup() {
  tmux -L "$tmux_sock" kill-server 2>/dev/null || true
  [ -n "$influxd_pid" ] && kill "$influxd_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
cargo build --release --quiet --bin vmpulse
bin=$PWD/target/release/vmpulse
port=$(free_port)
influxd_conf "$tmp" "$port"
influxd run -config "$tmp/influxd.conf" >"$tmp/influxd.log" 2>&1 &
influxd_pid=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$port/ping" >/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port"
curl -fs -XPOST "$url/query" --data-urlencode "q=CREATE DATABASE scale" >/dev/null

# The synthetic points, written in batches of 20000 lines.
start=$(date +%s.%N)
python3 - "$hosts" "$vms" "$secs" "$url" <<'PY'
import sys, time, random, urllib.request
hosts, vms, secs, url = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
now = time.time_ns()
batch = []
def flush():
    if batch:
        body = ("\n".join(batch) + "\n").encode()
        req = urllib.request.Request(f"{url}/write?db=scale&precision=ns", data=body, method="POST")
        urllib.request.urlopen(req).read()
        batch.clear()
def add(line):
    batch.append(line)
    if len(batch) >= 20000:
        flush()
rates = ["memory_rate_kb_per_sec", "memory_angle_deg", "cpu_guest_percent", "cpu_overhead_percent",
         "memory_usage_percent", "cpu_angle_deg", "memory_percent_angle_deg", "disk_read_bytes_per_sec",
         "disk_write_bytes_per_sec", "disk_read_req_per_sec", "disk_write_req_per_sec",
         "net_rx_bytes_per_sec", "net_tx_bytes_per_sec", "net_rx_packets_per_sec",
         "net_tx_packets_per_sec", "disk_angle_deg", "disk_read_angle_deg", "disk_write_angle_deg",
         "net_rx_angle_deg", "net_tx_angle_deg"]
for s in range(secs):
    ts = now - (secs - 1 - s) * 1_000_000_000
    for h in range(hosts):
        host = f"hv-{h:03d}"
        for v in range(vms):
            tags = f"host={host},VMID={v + 1},name=vm-{h:03d}-{v:02d},uuid={h:04x}{v:04x}-0000-0000-0000-000000000000,project=p{v % 7}"
            cpu = random.uniform(0, 100)
            add(f"vm_metrics,{tags} state=\"running\",cpu_count=2i,memory_max_kb=4194304i,memory_used_kb={random.randint(500000, 4000000)}i,cputime_ns={s * 10**9}i {ts}")
            fields = ",".join(f"{k}={random.uniform(0, 1e6):.3f}" for k in rates)
            add(f"vm_features,{tags} cpu_usage_percent={cpu:.3f},cpu_steal_percent={random.uniform(0, 5):.3f},{fields},memory_source=\"available-usable\" {ts}")
        add(f"hypervisor,host={host} cpus=64i,memory_total_kb=268435456i,memory_used_kb=134217728i,vcpus_assigned={2 * vms}i,memory_assigned_kb={4194304 * vms}i,vms_cpu_cores=12.5,vms_cpu_percent=19.5,steal_percent_max=4.2 {ts}")
        if s % 10 == 0:
            add(f"vmpulse_internal,host={host} collections={s}i,queue_depth=0i,lines_dropped=0i,lines_written={s * vms * 4}i {ts}")
flush()
PY
end=$(date +%s.%N)
lines=$(( hosts * vms * secs * 2 + hosts * secs + hosts * ((secs + 9) / 10) ))
printf 'wrote %d synthetic lines (%d hosts x %d VMs x %d s) in %.1f s\n' "$lines" "$hosts" "$vms" "$secs" "$(echo "$end - $start" | bc)"

export XDG_CONFIG_HOME="$tmp/none" INFLUX_URL="$url" INFLUX_API=v1 INFLUX_DB=scale VMPULSE_FLEET_WINDOW=600
echo "vmpulse fleet --once (first refresh, lookback 3600 s), 5 runs:"
for i in 1 2 3 4 5; do
  /usr/bin/time -f "  wall %e s  cpu %U+%S s  peak RSS %M KiB  exit %x" "$bin" fleet --once >"$tmp/once.json" 2>"$tmp/time.txt" || true
  tail -1 "$tmp/time.txt"
done
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f'  {len(r)} hosts, {sum(x[\"vms_total\"] for x in r)} VMs listed')" "$tmp/once.json"

# The statement of a steady refresh, timed by curl: over the synthetic points (a live fleet's
# last window holds about as many points per series as these SECONDS).
q='SELECT "state", "cpu_count", "memory_max_kb", "memory_used_kb", "cpu_usage_percent", "cpu_steal_percent", "disk_read_bytes_per_sec", "disk_write_bytes_per_sec", "net_rx_bytes_per_sec", "net_tx_bytes_per_sec", "cpus", "memory_total_kb", "vcpus_assigned", "memory_assigned_kb", "vms_cpu_cores", "vms_cpu_percent", "steal_percent_max", "queue_depth", "lines_dropped", "lines_written", "collecting", "vms" FROM "vm_metrics", "vm_features", "hypervisor", "vmpulse_internal" WHERE time > now() - 900s GROUP BY * ORDER BY time DESC LIMIT 1'
echo "steady refresh query (the synthetic seconds), 5 runs:"
for i in 1 2 3 4 5; do
  curl -s -o "$tmp/q.json" -w "  %{time_total} s, %{size_download} bytes\n" -G "$url/query" \
    --data-urlencode "db=scale" --data-urlencode "epoch=ns" --data-urlencode "q=$q"
done

if command -v tmux >/dev/null; then
  tmux -L "$tmux_sock" new-session -d -x 160 -y 50 -s scale \
    "env XDG_CONFIG_HOME=$tmp/none INFLUX_URL=$url INFLUX_API=v1 INFLUX_DB=scale VMPULSE_FLEET_WINDOW=600 LANG=C.UTF-8 $bin fleet; sleep 60"
  sleep 2
  pid=$(pgrep -n -f "^$bin fleet$" || true)
  if [ -n "$pid" ]; then
    tck=$(getconf CLK_TCK)
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    sleep "$screen_secs"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    cpu=$(echo "scale=3; ($u1 - $u0 + $s1 - $s0) / $tck" | bc)
    printf 'host list screen, refresh 2 s, %d s: CPU %s s (%.1f %% of one core), RSS %s KiB, peak %s KiB\n' \
      "$screen_secs" "$cpu" "$(echo "100 * $cpu / $screen_secs" | bc -l)" "$rss" "$hwm"
  else
    echo "host list screen: did not start (see tmux)"
  fi
fi
