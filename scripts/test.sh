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
cargo test --locked --no-fail-fast "$@"
