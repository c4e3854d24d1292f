#!/usr/bin/env bash
# vmpulse real-guest lab: libvirtd plus N small real QEMU guests (TCG) whose
# workload moves CPU, memory, disk and network. Demo host for contributors and
# fixture for tests/real_guests.rs.
#
#   scripts/lab-host.sh up [N]   install what is missing, start virtlogd + libvirtd,
#                                build the guest kernel + initramfs (cached), define an
#                                isolated network and N guests, wait until they report
#   scripts/lab-host.sh down     destroy/undefine guests and network, stop the daemons
#                                this script started (by pid); keeps the cached boot files
#   scripts/lab-host.sh status   daemons, network, guests and a few live stats
#
# Needs root. Facts behind every choice: docs/lab.md (TCG, not KVM;
# no systemd; /dev/kvm permissions; dnsmasq pitfalls; balloon stats period).
# Environment:
#   VMPULSE_LAB_DIR          state dir (default /var/tmp/vmpulse-lab)
#   VMPULSE_LAB_BOOT_TIMEOUT seconds to wait for the guests to report (default 120)
#   VMPULSE_LAB_HOSTILE      1 (default): guest 2 is named `lab 2,env=prod "x"`; 0: lab-2
#   VMPULSE_LAB_MEM_MIB      guest memory (default 128)
# No packet leaves the machine: the guests sit on an isolated libvirt network
# (no <forward>, no DHCP, no DNS) with static addresses.
set -euo pipefail

LAB_DIR=${VMPULSE_LAB_DIR:-/var/tmp/vmpulse-lab}
BOOT_TIMEOUT=${VMPULSE_LAB_BOOT_TIMEOUT:-120}
HOSTILE=${VMPULSE_LAB_HOSTILE:-1}
MEM_MIB=${VMPULSE_LAB_MEM_MIB:-128}
URI=qemu:///system
NET_NAME=vmpulse-lab
BRIDGE=vmplab0
NET_PREFIX=10.213.77 # host bridge is .1; guest i NIC j is .(10*i + j)
HOST_IP=$NET_PREFIX.1
HOSTILE_NAME='lab 2,env=prod "x"'
MAX_GUESTS=20
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GUEST_INIT=$SCRIPT_DIR/lab/guest-init.sh
PACKAGES=(libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu libvirt-dev
    pkg-config qemu-system-x86 qemu-utils cpio iptables dnsmasq-base)
# Guest kernel modules; their dependencies are resolved from the .ko files.
MODULES=(virtio_pci virtio_blk virtio_net virtio_balloon pvpanic-mmio button evdev)

say() { printf 'lab: %s\n' "$*" >&2; }
die() {
    printf 'lab: error: %s\n' "$*" >&2
    exit 1
}
# Every libvirt call is bounded in time.
v() { timeout 60 virsh -q -c "$URI" "$@"; }

guest_name() { # index -> domain name
    if [[ $1 == 2 && $HOSTILE == 1 ]]; then printf '%s' "$HOSTILE_NAME"; else printf 'lab-%s' "$1"; fi
}
is_lab_name() { [[ $1 =~ ^lab-[0-9]+$ || $1 == "$HOSTILE_NAME" ]]; }
lab_index() { # domain name -> index
    if [[ $1 == "$HOSTILE_NAME" ]]; then echo 2; else echo "${1#lab-}"; fi
}
xml_escape() { # sed, not ${s//...}: bash 5.2 expands '&' in replacements
    printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' \
        -e 's/"/\&quot;/g' -e "s/'/\\&apos;/g"
}
first_match() { # first existing path among the (glob-expanded) arguments
    local f
    for f in "$@"; do [[ -e $f ]] && { printf '%s' "$f"; return 0; }; done
    return 1
}
pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------- packages
ensure_packages() {
    local missing=() p st
    for p in "${PACKAGES[@]}"; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $st == "install ok installed" ]] || missing+=("$p")
    done
    # qemu-utils from bookworm-backports (10.x) conflicts with qemu-system-x86 7.2:
    # pin it to the version of qemu-system-x86 that is (or will be) installed.
    local qsys qutl
    qsys=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null || true)
    [[ -n $qsys ]] || qsys=$(apt-cache policy qemu-system-x86 2>/dev/null | awk '/Candidate:/ {print $2}')
    qutl=$(dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null || true)
    if [[ -n $qutl && -n $qsys && $qsys != "(none)" && $qutl != "$qsys" ]]; then
        say "qemu-utils $qutl does not match qemu-system-x86 $qsys: pinning it"
        missing=("${missing[@]/qemu-utils/}")
        missing+=("qemu-utils=$qsys")
    fi
    local todo=()
    for p in "${missing[@]}"; do [[ -n $p ]] && todo+=("$p"); done
    ((${#todo[@]})) || return 0
    say "installing: ${todo[*]}"
    # Maintainer scripts must not try to start services (no systemd here).
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    apt_install "${todo[@]}" || rc=$?
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install ${todo[*]} failed (rc $rc)"
}

apt_install() {
    local opts=(-y -q --no-install-recommends --allow-downgrades -o Dpkg::Options::=--force-confold)
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install "${opts[@]}" "$@" >&2 && return 0
    say "apt-get install failed; refreshing package lists and retrying"
    timeout 300 apt-get update -q >&2 || true
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install "${opts[@]}" "$@" >&2
}

# ---------------------------------------------------------------- daemons
fix_kvm() {
    # Without root:kvm 0660 libvirt 9.0 re-probes QEMU on every define/start (50-60 s).
    if [[ -e /dev/kvm ]]; then
        getent group kvm >/dev/null || groupadd -r kvm
        chgrp kvm /dev/kvm
        chmod 0660 /dev/kvm
    fi
}

libvirt_answers() { timeout 10 virsh -q -c "$URI" list >/dev/null 2>&1; }

# Starts DAEMON -d unless its pidfile names a live process; records the pid.
start_daemon() {
    local name=$1 pidfile=/run/$1.pid pid
    pid=$(cat "$pidfile" 2>/dev/null || true)
    if pid_alive "$pid"; then
        [[ -f $LAB_DIR/run/$name.pid ]] || say "$name already running (pid $pid), not started by the lab: reusing it"
        return 0
    fi
    say "starting $name"
    # Own session, stdio on a log file, and fd 9 (our lock) closed: the daemon must
    # not hold the lab lock nor a caller's pipe (a test reading our output would hang).
    setsid "$name" -d </dev/null >>"$LAB_DIR/logs/$name.log" 2>&1 9>&- || die "$name -d failed (see $LAB_DIR/logs/$name.log)"
    local i
    for ((i = 0; i < 100; i++)); do
        pid=$(cat "$pidfile" 2>/dev/null || true)
        pid_alive "$pid" && break
        sleep 0.1
    done
    pid_alive "$pid" || die "$name did not start (see $LAB_DIR/logs/$name.log)"
    echo "$pid" >"$LAB_DIR/run/$name.pid"
}

start_daemons() {
    fix_kvm
    # libvirtd 9.0 segfaults at start with an active network and no dnsmasq/dir.
    command -v dnsmasq >/dev/null || die "dnsmasq missing (package dnsmasq-base)"
    mkdir -p /var/lib/libvirt/dnsmasq /run/libvirt
    start_daemon virtlogd
    start_daemon libvirtd
    local t0=$SECONDS
    until libvirt_answers; do
        ((SECONDS - t0 < 60)) || die "libvirtd does not answer on $URI after 60 s (see $LAB_DIR/logs/libvirtd.log)"
        pid_alive "$(cat /run/libvirtd.pid 2>/dev/null || true)" || die "libvirtd died (see $LAB_DIR/logs/libvirtd.log)"
        sleep 0.3
    done
}

stop_daemon() {
    local name=$1 pid i
    pid=$(cat "$LAB_DIR/run/$name.pid" 2>/dev/null || true)
    [[ -n $pid ]] || return 0
    rm -f "$LAB_DIR/run/$name.pid"
    pid_alive "$pid" || return 0
    # Only our own daemon: the pid must still be that program.
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || return 0
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    say "$name did not stop in 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- guest boot files
download_debs() { # into $LAB_DIR/cache
    local c=$LAB_DIR/cache
    mkdir -p "$c"
    chown _apt "$c" 2>/dev/null || true # apt-get download warns otherwise
    if ! first_match "$c"/linux-image-*-cloud-amd64_*.deb >/dev/null; then
        (cd "$c" && timeout 300 apt-get download -q linux-image-cloud-amd64 >&2) ||
            { timeout 300 apt-get update -q >&2 && (cd "$c" && timeout 300 apt-get download -q linux-image-cloud-amd64 >&2); }
        local meta real
        meta=$(first_match "$c"/linux-image-cloud-amd64_*.deb) || die "apt-get download linux-image-cloud-amd64 failed"
        real=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | grep -o 'linux-image-[^ ]*-cloud-amd64' | head -n1)
        [[ -n $real ]] || die "cannot tell the kernel package from $meta"
        (cd "$c" && timeout 300 apt-get download -q "$real" >&2)
        rm -f "$meta"
    fi
    if ! first_match "$c"/busybox-static_*.deb >/dev/null; then
        (cd "$c" && timeout 300 apt-get download -q busybox-static >&2)
    fi
}

# Appends MODULE's dependencies (depth first) then MODULE to the load order.
add_module() {
    local m=$1 kdir=$2 f dep
    [[ " ${LOAD_ORDER[*]} " == *" $m "* ]] && return 0
    f=$(find "$kdir/kernel" \( -name "$m.ko" -o -name "${m//_/-}.ko" -o -name "${m//-/_}.ko" \) | head -n1)
    if [[ -z $f ]]; then
        # Built into the kernel: nothing to load.
        grep -qE "/(${m}|${m//_/-}|${m//-/_})\.ko$" "$kdir/modules.builtin" && return 0
        die "kernel module $m not found under $kdir"
    fi
    for dep in $(tr '\0' '\n' <"$f" | grep -a '^depends=' | head -n1 | cut -d= -f2 | tr ',' ' '); do
        add_module "$dep" "$kdir"
    done
    LOAD_ORDER+=("$(basename "$f" .ko)")
    cp "$f" "$INITRD_ROOT/lib/modules/"
}

build_boot_files() {
    local boot=$LAB_DIR/boot want
    # Rebuilt when the guest /init or the module list changes.
    want=$({
        cat "$GUEST_INIT"
        echo "${MODULES[*]}"
    } | sha256sum | cut -c1-16)
    if [[ -f $boot/vmlinuz && -f $boot/initrd.gz && $(cat "$boot/stamp" 2>/dev/null) == "$want" ]]; then
        return 0
    fi
    say "building guest kernel + busybox initramfs in $boot"
    download_debs
    local work
    work=$(mktemp -d "$LAB_DIR/build.XXXXXX")
    local x=$work/x
    mkdir -p "$x"
    local kdeb bdeb kdir vmlinuz
    kdeb=$(first_match "$LAB_DIR"/cache/linux-image-*-cloud-amd64_*.deb) || die "no kernel .deb in $LAB_DIR/cache"
    bdeb=$(first_match "$LAB_DIR"/cache/busybox-static_*.deb) || die "no busybox-static .deb in $LAB_DIR/cache"
    dpkg-deb -x "$kdeb" "$x"
    dpkg-deb -x "$bdeb" "$x"
    kdir=$(first_match "$x"/lib/modules/*) || die "no lib/modules in $kdeb"
    vmlinuz=$(first_match "$x"/boot/vmlinuz-*) || die "no boot/vmlinuz-* in $kdeb"
    INITRD_ROOT=$work/root
    mkdir -p "$INITRD_ROOT"/{bin,dev,proc,sys,tmp,mnt,etc,lib/modules}
    cp "$x/bin/busybox" "$INITRD_ROOT/bin/busybox"
    install -m 0755 "$GUEST_INIT" "$INITRD_ROOT/init"
    LOAD_ORDER=()
    local m
    for m in "${MODULES[@]}"; do add_module "$m" "$kdir"; done
    printf '%s\n' "${LOAD_ORDER[@]}" >"$INITRD_ROOT/lib/modules/load-order"
    mkdir -p "$boot"
    (cd "$INITRD_ROOT" && find . | cpio -o -H newc --quiet | gzip -6) >"$boot/initrd.gz.new"
    cp "$vmlinuz" "$boot/vmlinuz.new"
    mv "$boot/initrd.gz.new" "$boot/initrd.gz"
    mv "$boot/vmlinuz.new" "$boot/vmlinuz"
    chmod 0644 "$boot/initrd.gz" "$boot/vmlinuz"
    echo "$want" >"$boot/stamp"
    rm -rf "$work"
    say "modules: ${LOAD_ORDER[*]}"
}

# ---------------------------------------------------------------- network + guests
ensure_network() {
    local xml=$LAB_DIR/xml/network.xml
    cat >"$xml" <<EOF
<network>
  <name>$NET_NAME</name>
  <bridge name='$BRIDGE' stp='off' delay='0'/>
  <dns enable='no'/>
  <ip address='$HOST_IP' netmask='255.255.255.0'/>
</network>
EOF
    if ! v net-info "$NET_NAME" >/dev/null 2>&1; then
        say "defining isolated network $NET_NAME ($BRIDGE, $HOST_IP/24)"
        v net-define "$xml" >/dev/null
    fi
    if [[ $(v net-info "$NET_NAME" | awk '/^Active:/ {print $2}') != yes ]]; then
        v net-start "$NET_NAME" >/dev/null
    fi
}

nics_of() { # guest index -> NIC count (odd guests get two NICs)
    if (($1 % 2)); then echo 2; else echo 1; fi
}

guest_xml() { # index
    local i=$1 name ename nics j ips="" disks="" ifaces=""
    name=$(guest_name "$i")
    ename=$(xml_escape "$name")
    nics=$(nics_of "$i")
    for ((j = 0; j < nics; j++)); do
        ips+="${ips:+,}$NET_PREFIX.$((10 * i + j))/24"
        ifaces+="    <interface type='network'>
      <source network='$NET_NAME'/>
      <mac address='52:54:00:77:$(printf '%02x:%02x' "$i" "$j")'/>
      <model type='virtio'/>
    </interface>
"
    done
    for j in a b; do
        disks+="    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$LAB_DIR/disks/lab-$i-vd$j.qcow2'/>
      <target dev='vd$j' bus='virtio'/>
    </disk>
"
    done
    # lab.build changes with the initramfs, so a rebuilt one restarts the guests.
    cat <<EOF
<domain type='qemu'>
  <name>$ename</name>
  <description>vmpulse lab guest $i (scripts/lab-host.sh)</description>
  <memory unit='MiB'>$MEM_MIB</memory>
  <currentMemory unit='MiB'>$MEM_MIB</currentMemory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$LAB_DIR/boot/vmlinuz</kernel>
    <initrd>$LAB_DIR/boot/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet loglevel=3 mitigations=off no_timer_check lab.name=lab-$i lab.host=$HOST_IP lab.ip=$ips lab.build=$(cat "$LAB_DIR/boot/stamp")</cmdline>
  </os>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>preserve</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
$disks$ifaces    <serial type='file'>
      <source path='$LAB_DIR/logs/lab-$i.console.log' append='off'/>
      <target port='0'/>
    </serial>
    <memballoon model='virtio'>
      <stats period='2'/>
    </memballoon>
    <panic model='isa'/>
  </devices>
</domain>
EOF
}

domain_state() { v domstate -- "$1" 2>/dev/null | head -n1 || true; }
domain_defined() { v dominfo -- "$1" >/dev/null 2>&1; }

remove_guest() {
    local name=$1
    say "removing guest '$name'"
    if [[ $(domain_state "$name") != "shut off" ]]; then v destroy -- "$name" >/dev/null 2>&1 || true; fi
    v undefine -- "$name" >/dev/null 2>&1 || true
}

ensure_guest() { # index
    local i=$1 name xml j
    name=$(guest_name "$i")
    xml=$LAB_DIR/xml/lab-$i.xml
    for j in a b; do
        local d=$LAB_DIR/disks/lab-$i-vd$j.qcow2
        [[ -f $d ]] || qemu-img create -q -f qcow2 "$d" 64M
    done
    guest_xml "$i" >"$xml.new"
    if domain_defined "$name"; then
        if cmp -s "$xml.new" "$xml"; then
            case $(domain_state "$name") in
            running)
                rm -f "$xml.new"
                return 0
                ;;
            paused)
                say "resuming guest '$name'"
                v resume -- "$name" >/dev/null
                rm -f "$xml.new"
                return 0
                ;;
            esac
        fi
        remove_guest "$name"
    fi
    mv "$xml.new" "$xml"
    say "starting guest '$name'"
    v define "$xml" >/dev/null
    v start -- "$name" >/dev/null
}

lab_domains() { # every defined lab guest, one name per line
    local n
    while IFS= read -r n; do
        [[ -n $n ]] && is_lab_name "$n" && printf '%s\n' "$n"
    done < <(v list --all --name 2>/dev/null || true)
}

# A guest that has not come up this long after its start and whose console
# is empty or shows a kernel panic is started again, once, with the whole
# timeout again. Measured in two fresh CI runs, 4 TCG guests on 2 loaded cores:
# one guest panicked in its first 0.06 s ("IO-APIC + timer doesn't work"; the
# command line now has `no_timer_check` for it) or stayed silent for 120 s
# while the others booted in 20.
SILENT_RESTART=$((BOOT_TIMEOUT / 2))

# Starts guest $1 (index $2) again if its console is empty or shows a panic;
# status 0 if it did.
restart_if_dead() {
    local name=$1 log="$LAB_DIR/logs/lab-$2.console.log"
    if [[ -s $log ]] && ! grep -q 'Kernel panic' "$log"; then
        return 1
    fi
    say "guest '$name' did not boot in ${SILENT_RESTART}s (console: $(tail -n 1 "$log" 2>/dev/null | cut -c1-120)): starting it again"
    v destroy -- "$name" >/dev/null 2>&1 || true
    v start -- "$name" >/dev/null
}

# Waits until every guest reports balloon.usable and nonzero net.0.rx.pkts.
wait_guests() {
    local n=$1 t0=$SECONDS i name pending stats restarted=0
    while :; do
        pending=()
        for ((i = 1; i <= n; i++)); do
            name=$(guest_name "$i")
            stats=$(v domstats --raw --balloon --interface -- "$name" 2>/dev/null || true)
            if ! grep -q 'balloon\.usable=' <<<"$stats" ||
                ! grep -qE 'net\.0\.rx\.pkts=[1-9]' <<<"$stats"; then
                pending+=("$name")
            fi
        done
        ((${#pending[@]} == 0)) && break
        if ((!restarted && SECONDS - t0 >= SILENT_RESTART)); then
            restarted=1
            for name in "${pending[@]}"; do
                # A restarted guest gets the whole timeout again.
                restart_if_dead "$name" "$(lab_index "$name")" && t0=$SECONDS
            done
        fi
        if ((SECONDS - t0 >= BOOT_TIMEOUT)); then
            say "guests not reporting after ${BOOT_TIMEOUT}s: ${pending[*]}"
            for name in "${pending[@]}"; do
                i=$(lab_index "$name")
                say "--- console of '$name' (last lines):"
                tail -n 20 "$LAB_DIR/logs/lab-$i.console.log" >&2 2>/dev/null || true
            done
            die "guests did not come up (state dir $LAB_DIR)"
        fi
        sleep 1
    done
    say "all $n guests report balloon and network stats after $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- commands
cmd_up() {
    local n=${1:-3} t0=$SECONDS i name idx
    if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > MAX_GUESTS)); then die "N must be 1..$MAX_GUESTS, got '$n'"; fi
    ensure_packages
    start_daemons
    build_boot_files
    ensure_network
    # Guests beyond N (from an earlier, larger `up`) or renamed ones go away.
    while IFS= read -r name; do
        idx=$(lab_index "$name")
        if ((idx > n)) || [[ $name != "$(guest_name "$idx")" ]]; then remove_guest "$name"; fi
    done < <(lab_domains)
    for ((i = 1; i <= n; i++)); do ensure_guest "$i"; done
    wait_guests "$n"
    say "up $n took $((SECONDS - t0)) s"
    echo "uri: $URI"
    for ((i = 1; i <= n; i++)); do echo "guest: $(guest_name "$i")"; done
}

# Pids of QEMU processes booted from the lab's kernel (ours, whatever libvirt says).
lab_qemu_pids() {
    local p
    for p in $(pgrep -f qemu-system-x86_64 || true); do
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-kernel $LAB_DIR/boot/vmlinuz" && echo "$p"
    done
    return 0
}

cmd_down() {
    local name names=() p i
    # Guests still running but libvirtd gone (killed, crashed): bring it back so it
    # tears them down properly (it reattaches to running QEMU processes).
    if ! libvirt_answers && [[ -n $(lab_qemu_pids) ]]; then start_daemons; fi
    if libvirt_answers; then
        while IFS= read -r name; do names+=("$name"); done < <(lab_domains)
        # In parallel: each destroy waits for QEMU to exit (~2 s under TCG).
        for name in "${names[@]}"; do remove_guest "$name" & done
        wait
        if v net-info "$NET_NAME" >/dev/null 2>&1; then
            say "removing network $NET_NAME"
            v net-destroy "$NET_NAME" >/dev/null 2>&1 || true
            v net-undefine "$NET_NAME" >/dev/null 2>&1 || true
        fi
    fi
    stop_daemon libvirtd
    stop_daemon virtlogd
    # Last resort: QEMU processes of lab guests that outlived libvirt, by pid.
    for p in $(lab_qemu_pids); do
        say "QEMU pid $p of a lab guest outlived libvirtd: SIGTERM"
        kill -TERM "$p" 2>/dev/null || true
    done
    for ((i = 0; i < 50; i++)); do
        [[ -z $(lab_qemu_pids) ]] && break
        sleep 0.2
    done
    for p in $(lab_qemu_pids); do kill -KILL "$p" 2>/dev/null || true; done
    say "down (cached kernel/initramfs kept in $LAB_DIR/boot)"
}

cmd_status() {
    local d pid name
    for d in virtlogd libvirtd; do
        pid=$(cat "/run/$d.pid" 2>/dev/null || true)
        if pid_alive "$pid"; then
            if [[ $(cat "$LAB_DIR/run/$d.pid" 2>/dev/null) == "$pid" ]]; then
                echo "$d: running (pid $pid, started by the lab)"
            else echo "$d: running (pid $pid, not started by the lab)"; fi
        else echo "$d: stopped"; fi
    done
    libvirt_answers || {
        echo "libvirt: not answering on $URI"
        return 0
    }
    echo "uri: $URI"
    if v net-info "$NET_NAME" >/dev/null 2>&1; then
        echo "network: $NET_NAME active=$(v net-info "$NET_NAME" | awk '/^Active:/ {print $2}') bridge=$BRIDGE $HOST_IP/24"
    else echo "network: $NET_NAME not defined"; fi
    while IFS= read -r name; do
        local s
        s=$(v domstats --raw --state --cpu-total --balloon --interface --block -- "$name" 2>/dev/null || true)
        printf 'guest: %-22s state=%s cpu.time=%s balloon.usable=%s net.0.rx.pkts=%s block.0.wr.reqs=%s\n' \
            "'$name'" "$(domain_state "$name")" \
            "$(sed -n 's/^ *cpu\.time=//p' <<<"$s")" "$(sed -n 's/^ *balloon\.usable=//p' <<<"$s")" \
            "$(sed -n 's/^ *net\.0\.rx\.pkts=//p' <<<"$s")" "$(sed -n 's/^ *block\.0\.wr\.reqs=//p' <<<"$s")"
    done < <(lab_domains)
}

main() {
    [[ $(id -u) == 0 ]] || die "run as root (starts libvirtd and QEMU guests)"
    local cmd=${1:-}
    case $cmd in
    up | down | status) ;;
    *)
        echo "usage: $0 up [N] | down | status" >&2
        exit 2
        ;;
    esac
    mkdir -p "$LAB_DIR"/{run,logs,xml,disks,boot,cache}
    chmod 0755 "$LAB_DIR" "$LAB_DIR/boot" "$LAB_DIR/disks" "$LAB_DIR/logs"
    # One lab operation at a time (tests may run in parallel with a demo).
    exec 9>"$LAB_DIR/lock"
    flock -w 900 9 || die "another lab-host.sh holds $LAB_DIR/lock"
    case $cmd in
    up) cmd_up "${2:-3}" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    esac
}

main "$@"
