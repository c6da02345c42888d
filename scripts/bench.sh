#!/usr/bin/env bash
# Benchmarks against the peers (awscli, aws-sam-cli), on one fresh local cloud,
# in one run; prints a Markdown table of medians and ratios.
#
#   scripts/bench.sh            # BENCH_RUNS=7 by default
set -euo pipefail

# The one place the peers' versions are pinned.
AWSCLI_VERSION=1.46.3
SAM_VERSION=1.170.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv=.tools/bench
want="awscli==$AWSCLI_VERSION aws-sam-cli==$SAM_VERSION"
if [[ ! -f "$venv/.installed" || "$(cat "$venv/.installed")" != "$want" ]]; then
    echo "installing $want into $venv ..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" > "$venv/.installed"
fi
cargo bench --workspace --locked --bench peers
