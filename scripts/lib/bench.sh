# Helpers shared by the benchmark scripts (sourced, not run).

# bench_host_xml N FILE: a libvirt test-driver host with N running domains,
# 2 disks and 2 NICs each (interface names avoid `vnet`, which libvirt drops).
bench_host_xml() {
  local n=$1 file=$2 i d k
  {
    echo "<node>"
    for i in $(seq 1 "$n"); do
      printf "<domain type='test'><name>bench-%04d</name><uuid>00000000-0000-0000-0000-%012d</uuid>" "$i" "$i"
      echo "<memory unit='KiB'>1048576</memory><vcpu>2</vcpu><os><type>hvm</type></os><devices>"
      for d in a b; do echo "<disk type='file' device='disk'><source file='/var/lib/x/$i$d.img'/><target dev='vd$d' bus='virtio'/></disk>"; done
      for k in 0 1; do printf "<interface type='ethernet'><mac address='52:54:00:%02x:%02x:%02x'/><target dev='tap-%d-%d'/></interface>\n" "$k" $((i / 256)) $((i % 256)) "$i" "$k"; done
      echo "</devices></domain>"
    done
    echo "</node>"
  } > "$file"
}

# free_port: a free loopback TCP port (bound, then released).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# influxd_conf DIR HTTP_PORT: writes DIR/influxd.conf for an influxd 1.x whose data
# lives in DIR and that listens on loopback only.
influxd_conf() {
  local dir=$1 port=$2
  cat > "$dir/influxd.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$(free_port)"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
}

# collectd_conf DIR: DIR/collectd.conf, collectd-core's virt plugin on qemu:///system every
# second with the csv writer into DIR/csv (what the benchmarks compare vmpulse with).
collectd_conf() {
  cat >"$1/collectd.conf" <<CONF
Interval 1
LoadPlugin virt
LoadPlugin csv
<Plugin virt>
  Connection "qemu:///system"
  RefreshInterval 60
</Plugin>
<Plugin csv>
  DataDir "$1/csv"
</Plugin>
CONF
}
