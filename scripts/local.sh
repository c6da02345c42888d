#!/usr/bin/env bash
# The main job: the whole app on this machine (local cloud + the real Lambda
# bootstrap behind the emulated API Gateway). Ctrl-C stops it.
# scripts/setup.sh local checks Python and Node.js and vendors Leaflet first,
# so a missing tool stops this before anything is built.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh local
# Built with --workspace like the tests, so no dependency is built twice with
# other features (`cargo run --bin` would select one package).
cargo build --workspace --locked --bins
exec "${CARGO_TARGET_DIR:-$root/target}/debug/deployer" local "$@"
