#!/usr/bin/env bash
# The whole test suite, every tier (CONTRIBUTING.md explains the tiers):
#   laptop  plain `cargo test`: unit tests, libvirt's test driver, snapshots, the InfluxDB 3 peer
#   system  tests/system_*.rs with --features system-tests: real influxd 1.x, VictoriaMetrics, tmux, root
#   lab     tests/lab_*.rs with --features lab-tests: real QEMU guests (root; scripts/lab-host.sh)
# Installs the servers and tools the system tier needs first, then checks format and lints.
# Extra arguments go to every `cargo test` run (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# InfluxDB 3 Core is not packaged: a built influxdb3 in shared/bin beside the checkout's
# directory is used by the system tier (tests/common InfluxDb3); without one, those tests
# say so and pass.
if [ -z "${VMPULSE_INFLUXDB3:-}" ]; then
  beside="$(cd .. && pwd)/shared/bin/influxdb3"
  if [ -x "$beside" ]; then export VMPULSE_INFLUXDB3="$beside"; fi
fi
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo clippy --all-targets --locked --features lab-tests -- -D warnings
scripts/check-docs.sh
scripts/check-docs.sh --self-test
# Benches are type-checked by clippy above; run them with `cargo bench`.
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
status=0
tier() { # name, cargo test arguments...
  local name=$1; shift
  echo "=== tier $name: cargo test $*" >&2
  cargo test --locked --no-fail-fast "$@" 2>&1 | tee "$log/$name" || status=$?
}
# No doc tests: leaving that (empty) target out keeps the result lines to real tests.
tier laptop --lib --bins --tests "${@}"
tier system --features lab-tests --test 'system_*' "${@}"
tier lab --features lab-tests --test 'lab_*' "${@}"
count() { # passed failed ignored of one tier's log
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) g += $(i-1) } }
       END { printf "%d %d %d\n", p, f, g }' "$1"
}
total_p=0 total_f=0
for name in laptop system lab; do
  read -r p f g < <(count "$log/$name")
  # The laptop tier lists the system and lab tests as ignored; they run in their own tiers.
  printf 'tier %-6s %4d passed, %d failed, %d ignored\n' "$name" "$p" "$f" "$g"
  total_p=$((total_p + p)) total_f=$((total_f + f))
done
echo "tests: $total_p passed, $total_f failed"
exit "$status"
