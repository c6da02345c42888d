#!/usr/bin/env bash
# The one install step of the README's two commands and of CI (.ci/run):
# scripts/test.sh, scripts/local.sh and .ci/run all start with it, so what they
# need cannot drift apart.
#
# First it checks, in a second or two, what it cannot install itself: the Rust
# toolchain, Python >= 3.10 with venv (the local cloud, ministack, needs it),
# Node.js >= 18 with npm. A missing one stops it at once with the command that
# fixes it, before anything is built. Then it installs what is missing and is
# left alone when present:
#   - Chromium for the browser journey, through apt-get when /usr/bin/chromium is
#     missing (as root; otherwise it stops with the `sudo apt-get ...` command).
#     CHROMIUM=/path/to/chromium uses another build instead;
#   - cfn-lint, actionlint and the image corpus (scripts/tools.sh) into .tools/;
#   - the npm packages (package-lock.json) and Leaflet into static/vendor/
#     (scripts/vendor.sh).
#
#   scripts/setup.sh          # everything scripts/test.sh needs
#   scripts/setup.sh local    # what scripts/local.sh needs: no Chromium, no linters
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# The minimum versions, in one place.
PYTHON_MIN=3.10
NODE_MIN=18

mode="${1:-test}"
case "$mode" in
    test | local) ;;
    *) echo "error: unknown setup \`$mode\`; known: test (the default), local" >&2; exit 2 ;;
esac

problems=()
problem() { problems+=("$1"); }

# `sudo ` when not root, so every fix printed can be pasted as it is.
if [[ "$(id -u)" == 0 ]]; then sudo=""; else sudo="sudo "; fi
have_apt() { command -v apt-get >/dev/null 2>&1; }

check_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        problem "the Rust toolchain (cargo) is not installed; install it with rustup: curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y, then open a new shell"
    fi
}

check_python() {
    local fix="${sudo}apt-get install -y python3 python3-venv"
    if ! command -v python3 >/dev/null 2>&1; then
        problem "python3 is not installed; the local cloud (ministack) and cfn-lint need Python $PYTHON_MIN or newer with venv: $fix"
        return
    fi
    local version
    version="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo unknown)"
    if ! python3 -c "import sys; sys.exit(0 if sys.version_info >= tuple(map(int, '$PYTHON_MIN'.split('.'))) else 1)" 2>/dev/null; then
        problem "python3 is $version at $(command -v python3); the local cloud (ministack) needs Python $PYTHON_MIN or newer: install a newer one (Debian 12: $fix) and put it first on PATH"
        return
    fi
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        problem "python3 $version has no working venv module (ensurepip is missing); install it: ${sudo}apt-get install -y python3-venv"
    fi
}

check_node() {
    local fix="${sudo}apt-get install -y nodejs npm"
    if ! command -v node >/dev/null 2>&1; then
        problem "Node.js is not installed; the front-end packages and the browser tests need Node.js $NODE_MIN or newer with npm: $fix"
        return
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
    if (( major < NODE_MIN )); then
        problem "Node.js is $(node --version) at $(command -v node); the tests need Node.js $NODE_MIN or newer (node --test, fetch): install a newer one, e.g. $fix on Debian 12"
    fi
    if ! command -v npm >/dev/null 2>&1; then
        problem "npm is not installed (Node.js $(node --version) is); install it: ${sudo}apt-get install -y npm"
    fi
}

chromium_path() { echo "${CHROMIUM:-/usr/bin/chromium}"; }

check_chromium() {
    local exe
    exe="$(chromium_path)"
    if [[ -x "$exe" ]]; then return 0; fi
    if [[ -n "${CHROMIUM:-}" ]]; then
        problem "CHROMIUM is set to \`$CHROMIUM\`, which is not an executable; point it at a Chromium binary, or unset it to use Debian's /usr/bin/chromium"
    elif ! have_apt; then
        problem "Chromium is missing at /usr/bin/chromium and there is no apt-get here; install Chromium and run again with CHROMIUM=/path/to/chromium"
    elif [[ -n "$sudo" ]]; then
        problem "Chromium is missing at /usr/bin/chromium (the browser journey needs it); install it: sudo apt-get update && sudo apt-get install -y chromium"
    fi
    # As root with apt-get: installed below, after every check has passed.
}

check_rust
check_python
check_node
if [[ "$mode" == test ]]; then check_chromium; fi
if (( ${#problems[@]} > 0 )); then
    for p in "${problems[@]}"; do echo "error: $p" >&2; done
    echo "setup stopped before building anything; fix the above and run the command again" >&2
    exit 2
fi

if [[ "$mode" == test ]]; then
    if [[ ! -x "$(chromium_path)" ]]; then
        echo "installing Chromium with apt-get (the browser journey needs it; about a minute) ..." >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        if [[ ! -x /usr/bin/chromium ]]; then
            echo "error: apt-get installed the \`chromium\` package but /usr/bin/chromium is still missing; run: apt-get install -y chromium" >&2
            exit 2
        fi
    fi
    scripts/tools.sh cfn-lint
    scripts/tools.sh actionlint
    scripts/tools.sh corpus
fi
scripts/vendor.sh
