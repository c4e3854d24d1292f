#!/usr/bin/env bash
# The whole test suite: installs the test servers it needs, then runs every test,
# including the real-binary tests against libvirt's test driver, influxd 1.x,
# real QEMU guests (scripts/lab-host.sh) and tmux.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Benches are type-checked by clippy above; run them with `cargo bench`.
# There are no doc tests: leave out that (empty) target so the last result line counts real tests.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --no-fail-fast --lib --bins --tests "$@" 2>&1 | tee "$log" || status=$?
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
