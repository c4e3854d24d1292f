#!/usr/bin/env bash
# Builds the Debian package: target/debian/vmpulse_<version>_<arch>.deb (its path printed
# last); arguments go to cargo-deb (e.g. --deb-version V --output FILE).
#   1. the release binary (no debug info, see [profile.release] in Cargo.toml)
#   2. the man page and bash/zsh/fish completions, generated from the flags
#      (examples/generate-assets.rs) into target/assets
#   3. cargo-deb (installed with `cargo install cargo-deb --locked` if missing) packs
#      them with the unit, /etc/default/vmpulse and the config per [package.metadata.deb].
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
command -v dpkg-shlibdeps >/dev/null || {
  # cargo-deb computes Depends ($auto) with dpkg-shlibdeps from dpkg-dev.
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get install -y -qq --no-install-recommends dpkg-dev >/dev/null
}
cargo build --release --locked --bin vmpulse
# The dev profile: its dependencies are the ones `cargo test` already built.
cargo run --quiet --locked --example generate-assets -- target/assets >/dev/null
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
# cargo-deb prints the path of the package it wrote (also with --output).
cargo deb --no-build --locked --quiet "$@"
