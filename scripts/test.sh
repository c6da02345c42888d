#!/usr/bin/env bash
# The project's test command: installs the tools the tests use, then runs every
# test of the workspace (unit, snapshot, cfn-lint, CLI).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/tools.sh
scripts/vendor.sh
cargo test --workspace --locked "$@"
# Browser journeys: headless Chromium against the stage `deployer local` deploys.
node --test tests/browser/
