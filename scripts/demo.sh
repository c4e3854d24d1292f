#!/usr/bin/env bash
# Runs vmpulse against libvirt's built-in test hypervisor: no daemon, no root, no InfluxDB.
# Extra arguments go to vmpulse, e.g. `scripts/demo.sh --no-ui --output -`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cargo build --release --quiet
exec target/release/vmpulse --connect "test://$PWD/tests/fixtures/testhost.xml" "$@"
