#!/usr/bin/env bash
# Makes (once) and prints the path of a minimal Debian 12 root that boots under
# systemd-nspawn: debootstrap minbase + systemd, systemd-sysv, dbus, and
# libvirt-daemon-system (so the group `libvirt` exists, as on every KVM host),
# ca-certificates and libnss-systemd.
# tests/system_boot.rs boots it with the .deb from scripts/package.sh.
#
# Cached in $VMPULSE_BOOT_CACHE (default /var/cache/vmpulse-tests) under a name keyed
# by the recipe below; a root is built as `<name>.partial.<pid>` and renamed only when
# complete, so a half-made root (interrupted run, failed download) is never reused.
# The mirror is the one this host's apt already uses. Needs root, debootstrap and
# systemd-nspawn (scripts/setup.sh test installs both).
set -euo pipefail
cache=${VMPULSE_BOOT_CACHE:-/var/cache/vmpulse-tests}
suite=bookworm
include=systemd,systemd-sysv,dbus
# ca-certificates: a Depends of the package (its HTTPS client needs a trust store).
# libnss-systemd (Priority standard, so on every standard install): libvirtd names each
# client by its uid, and a DynamicUser= uid has a name only through nss-systemd.
extra="libvirt-daemon-system ca-certificates libnss-systemd"
recipe="$suite minbase $include + $extra (no recommends) v1"
root="$cache/root-$suite-$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"
if [ -e "$root/.vmpulse-root-complete" ]; then
  echo "$root"
  exit 0
fi

# The first URI of a deb822 stanza (or sources.list line) that serves $suite itself.
mirror_of_host() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (uri != "" && ok) print uri }' "$f"
  done
  if [ -e /etc/apt/sources.list ]; then
    awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2 }' /etc/apt/sources.list
  fi
}
mirror=$(mirror_of_host | head -1)
[ -n "$mirror" ] || { echo "boot-root: no apt source for $suite on this host" >&2; exit 1; }

mkdir -p "$cache"
partial="$root.partial.$$"
trap 'rm -rf --one-file-system "$partial" "$partial.log"' EXIT
echo "boot-root: debootstrap $suite into $partial" >&2
debootstrap --variant=minbase --include="$include" "$suite" "$partial" "$mirror" >"$partial.log" 2>&1 ||
  { tail -20 "$partial.log" >&2; rm -f "$partial.log"; exit 1; }
rm -f "$partial.log"
echo "boot-root: installing $extra" >&2
# Not booted: maintainer scripts find no running systemd and start nothing.
systemd-nspawn -q --register=no --keep-unit -D "$partial" sh -c \
  "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $extra" \
  >"$partial.log" 2>&1 || { tail -20 "$partial.log" >&2; rm -f "$partial.log"; exit 1; }
rm -f "$partial.log"
touch "$partial/.vmpulse-root-complete"
# Another run may have finished first: keep its root, drop ours.
mv -T "$partial" "$root" 2>/dev/null || true
trap - EXIT
rm -rf --one-file-system "$partial"
# Roots of an older recipe are never used again.
for old in "$cache/root-$suite-"*; do
  [ "$old" = "$root" ] || [ ! -e "$old/.vmpulse-root-complete" ] || rm -rf --one-file-system "$old"
done
echo "$root"
