#!/bin/busybox sh
# shellcheck shell=dash
# /init of the vmpulse lab guests (PID 1 inside a busybox initramfs; no OS image).
#
# Built into the initramfs by scripts/lab-host.sh. It loads the virtio modules,
# configures the NICs from the kernel command line and then loops a workload that
# moves every metric vmpulse samples:
#   CPU      ~1 s busy, then ~1 s idle
#   memory   fills a tmpfs (shmem: lowers MemAvailable = balloon.usable) and frees it
#   disk     O_DIRECT writes and reads on every virtio disk (block.N.rd/wr move)
#   network  pings the host bridge through every NIC (net.N.rx/tx move)
#
# Kernel command line keys (set by lab-host.sh):
#   lab.name=NAME  lab.host=HOST_IP  lab.ip=IP/PREFIX[,IP/PREFIX...] (one per NIC, in order)
# PID 1 must never exit (the kernel would panic), hence no `set -e` and an endless loop.

/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /mnt/fill /var/run /var/log

log() { echo "lab-init: $*" > /dev/console; }

# Modules in dependency order (computed on the host, see lab-host.sh).
while read -r m; do
    [ -n "$m" ] && insmod "/lib/modules/$m.ko" 2>/dev/null
done < /lib/modules/load-order

name=lab; host=; ips=
# shellcheck disable=SC2013 # the command line is words, not lines
for kv in $(cat /proc/cmdline); do
    case "$kv" in
        lab.name=*) name=${kv#lab.name=} ;;
        lab.host=*) host=${kv#lab.host=} ;;
        lab.ip=*) ips=${kv#lab.ip=} ;;
    esac
done
hostname "$name"

# `virsh shutdown` sends an ACPI power-button press: power off cleanly.
mkdir -p /etc/acpi
printf '#!/bin/sh\necho "lab-init: ACPI power button: powering off" > /dev/console\nsync\npoweroff -f\n' > /etc/acpi/power
chmod +x /etc/acpi/power
echo "PWRF power" > /etc/acpid.conf
acpid -c /etc/acpi -a /etc/acpid.conf -l /var/log/acpid.log 2>/dev/null

# `virsh inject-nmi` panics the guest; with the pvpanic device and on_crash=preserve
# libvirt then reports state 6 "crashed (panicked)" (state handling can be tested).
echo 1 > /proc/sys/kernel/unknown_nmi_panic

# Several NICs share one subnet: answer ARP only on the NIC that owns the address,
# so each NIC receives its own ping replies.
echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore
echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce
ip link set lo up

count() { # number of existing paths among the glob-expanded arguments
    c=0
    for f in "$@"; do [ -e "$f" ] && c=$((c + 1)); done
    echo "$c"
}

# Devices appear asynchronously after insmod: wait (bounded) for them.
nics=
want=$(echo "$ips" | tr ',' ' ' | wc -w)
i=0
while [ "$i" -lt 50 ]; do
    [ "$(count /sys/class/net/eth*)" -ge "$want" ] && [ "$(count /sys/block/vd*)" -ge 1 ] && break
    sleep 0.2
    i=$((i + 1))
done
i=0
for addr in $(echo "$ips" | tr ',' ' '); do
    dev=eth$i
    ip addr add "$addr" dev "$dev" && ip link set "$dev" up && nics="$nics $dev"
    i=$((i + 1))
done
disks=
for d in /sys/block/vd*; do [ -e "$d" ] && disks="$disks ${d##*/}"; done

mount -t tmpfs -o size=80m tmpfs /mnt/fill
log "up: name=$name host=$host nics=[$nics ] disks=[$disks ]"

# The guest's own view, about once a second, for the accuracy tests
# (tests/lab_cpu_accuracy.rs) to compare with what vmpulse derives on the host:
#   lab-stat up=UPTIME_S cpu=USER NICE SYSTEM IDLE IOWAIT IRQ SOFTIRQ STEAL (jiffies)
#            mem=MEMTOTAL_KB:MEMAVAILABLE_KB
#            disk= vda:RD_SECTORS:WR_SECTORS:RD_IOS:RD_MS:WR_IOS:WR_MS ...
#              (reads/writes completed and the ms spent on them: the guest's latency)
#            net= eth0:RX_BYTES:TX_BYTES ...
# One awk process prints the whole line in one write, so lines never interleave.
report_stats() {
    while true; do
        awk 'FILENAME == "/proc/uptime" { up = $1 }
            FILENAME == "/proc/stat" && $1 == "cpu" { cpu = $2 " " $3 " " $4 " " $5 " " $6 " " $7 " " $8 " " $9 }
            FILENAME == "/proc/meminfo" && $1 == "MemTotal:" { mt = $2 }
            FILENAME == "/proc/meminfo" && $1 == "MemAvailable:" { ma = $2 }
            FILENAME == "/proc/diskstats" && $3 ~ /^vd[a-z]$/ { disk = disk " " $3 ":" $6 ":" $10 ":" $4 ":" $7 ":" $8 ":" $11 }
            FILENAME == "/proc/net/dev" && $0 ~ /eth[0-9]+:/ {
                line = $0; sub(/:/, " ", line); split(line, f, " ")
                net = net " " f[1] ":" f[2] ":" f[10]
            }
            END { print "lab-stat up=" up " cpu=" cpu " mem=" mt ":" ma " disk=" disk " net=" net }' \
            /proc/uptime /proc/stat /proc/meminfo /proc/diskstats /proc/net/dev > /dev/console 2>/dev/null
        sleep 1
    done
}
# In a subshell, so the workload loop's `wait` (for its pings) does not wait
# for this endless loop too.
(report_stats &)

n=0
while true; do
    n=$((n + 1))

    # CPU: ~1 s busy.
    timeout 1 sh -c 'while :; do :; done' 2>/dev/null

    # Network: a few pings per NIC, in the background so a missing host never stalls us.
    if [ -n "$host" ]; then
        for dev in $nics; do
            ping -q -c 3 -s 1000 -W 1 -I "$dev" "$host" > /dev/null 2>&1 &
        done
    fi

    # Memory: 4 cycles of 2 s with 40 MiB in tmpfs, then 4 without (balloon stats
    # are refreshed every 2 s, so each state is seen several times).
    case $((n % 8)) in
        1) dd if=/dev/zero of=/mnt/fill/blob bs=1M count=40 2>/dev/null ;;
        5) rm -f /mnt/fill/blob ;;
    esac

    # Disk: O_DIRECT so every request reaches the virtio disk (no guest page cache).
    off=$(((n % 32) * 16))
    for d in $disks; do
        dd if=/dev/zero of="/dev/$d" bs=64k count=16 seek="$off" oflag=direct conv=notrunc 2>/dev/null
        dd if="/dev/$d" of=/dev/null bs=64k count=16 skip="$off" iflag=direct 2>/dev/null
    done

    [ $((n % 30)) -eq 1 ] && log "cycle $n: $(grep -E '^(MemAvailable|Shmem):' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"

    # ~1 s idle.
    sleep 1
    wait 2>/dev/null
done
