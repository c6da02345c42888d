#!/usr/bin/env bash
# The main job: the whole app on this machine (local cloud + the real Lambda
# bootstrap behind the emulated API Gateway). Ctrl-C stops it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/vendor.sh
exec cargo run --locked --bin deployer -- local "$@"
