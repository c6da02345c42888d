#!/usr/bin/env bash
# Installs the project's Python tools into project-local virtualenvs under .tools/.
# Idempotent: a tool already installed at its pinned version is left alone.
#
#   scripts/tools.sh            # every tool
#   scripts/tools.sh cfn-lint   # one tool
set -euo pipefail

# The one place the cfn-lint version is pinned.
CFN_LINT_VERSION=1.58.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

need_python() {
    if ! command -v python3 >/dev/null 2>&1; then
        echo "error: python3 is not installed; install Python 3.10+ with its venv module (Debian 12: apt-get install -y python3 python3-venv); scripts/setup.sh checks it" >&2
        exit 2
    fi
}

# venv_install NAME REQUIREMENT EXECUTABLE
venv_install() {
    local name="$1" requirement="$2" executable="$3"
    local venv="$tools/$name"
    if [[ -f "$venv/.installed" && "$(cat "$venv/.installed")" == "$requirement" ]]; then
        return 0
    fi
    need_python
    echo "installing $requirement into .tools/$name ..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$requirement"
    "$venv/bin/$executable" --version >/dev/null
    echo "$requirement" > "$venv/.installed"
}

install_cfn_lint() {
    venv_install cfn-lint "cfn-lint==$CFN_LINT_VERSION" cfn-lint
}

case "${1:-all}" in
    cfn-lint | all) install_cfn_lint ;;
    *) echo "error: unknown tool \`$1\`; known: cfn-lint" >&2; exit 2 ;;
esac
