#!/usr/bin/env bash
# Installs what vmpulse needs on a Debian 12 machine, only where missing.
#   scripts/setup.sh build   libvirt headers + pkg-config (to build vmpulse)
#   scripts/setup.sh test    + the servers and tools the test suite runs for real
#                              (influxd 1.x, VictoriaMetrics, virsh, tmux), and what the
#                              package test uses (dpkg-dev, man-db, systemd-analyze,
#                              readelf, cargo-deb), and what the boot test uses
#                              (debootstrap, systemd-nspawn), and what a built
#                              InfluxDB 3 Core binary links (libpython3.11); real guests'
#                              packages are installed by scripts/lab-host.sh itself.
set -euo pipefail
what=${1:-build}
pkgs=(libvirt-dev pkg-config)
bins=(pkg-config)
if [ "$what" = test ]; then
  pkgs+=(libvirt-clients libvirt-daemon influxdb victoria-metrics tmux procps
    dpkg-dev man-db systemd binutils debootstrap systemd-container libpython3.11)
  bins+=(virsh influxd victoria-metrics tmux dpkg-shlibdeps man systemd-analyze readelf
    debootstrap systemd-nspawn)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  # Keep maintainer scripts from starting services (no systemd here; tests start their own).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
for b in "${bins[@]}"; do
  command -v "$b" >/dev/null || { echo "setup: '$b' is still missing after install" >&2; exit 1; }
done
if [ "$what" = test ] && ! command -v cargo-deb >/dev/null; then
  echo "setup: installing cargo-deb" >&2
  cargo install cargo-deb --locked
fi
