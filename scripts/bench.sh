#!/usr/bin/env bash
# Benchmarks against the peers, each in one run, printing Markdown tables:
# - deployer: no-change deploy and static sync vs awscli and aws-sam-cli, on
#   one fresh local cloud (deployer/benches/peers.rs);
# - app: 12 MP JPEG thumbnail vs Pillow (app/benches/thumbnail.rs), and the
#   album and search pages of a user with 10,000 photos through the local server
#   (app/benches/album.rs);
# - the inner loop: a one-line page edit until the local stage serves it, with
#   `deployer watch` vs `deployer up` (change set) vs `cargo lambda deploy`
#   (deployer/benches/inner_loop.rs).
#
#   scripts/bench.sh            # BENCH_RUNS=7 by default
set -euo pipefail

# The one place the peers' versions are pinned.
AWSCLI_VERSION=1.46.3
SAM_VERSION=1.170.0
PILLOW_VERSION=12.0.0
CARGO_LAMBDA_VERSION=1.9.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv=.tools/bench
want="awscli==$AWSCLI_VERSION aws-sam-cli==$SAM_VERSION pillow==$PILLOW_VERSION cargo-lambda==$CARGO_LAMBDA_VERSION"
if [[ ! -f "$venv/.installed" || "$(cat "$venv/.installed")" != "$want" ]]; then
    echo "installing $want into $venv ..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $want
    echo "$want" > "$venv/.installed"
fi
cargo bench --workspace --locked --bench peers --bench thumbnail --bench album --bench inner_loop
