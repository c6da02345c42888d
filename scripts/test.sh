#!/usr/bin/env bash
# The project's test command. scripts/setup.sh first: it checks the toolchain
# and installs the tools the tests use (Chromium, cfn-lint, npm packages), so a
# missing one stops this in its first seconds, not after minutes of building.
# Then the checks that need no build (nothing refers outside the repository),
# every test of the workspace (unit, snapshot, cfn-lint, CLI, handlers, Lambda,
# end to end), and the browser journey.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
node --test tests/repo/
cargo test --workspace --locked "$@"
# Browser journeys: headless Chromium against the stage `deployer local` deploys.
node --test tests/browser/
