#!/usr/bin/env bash
# Copies the front-end libraries the pages use from npm (pinned in
# package.json / package-lock.json) into static/vendor/, with their licences.
# static/vendor/ is git-ignored: third-party code is installed, never committed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is not installed; install Node.js 18+ (Debian: apt-get install nodejs npm)" >&2
    exit 2
fi
if [[ ! -d node_modules/leaflet || ! -d node_modules/axe-core || ! -d node_modules/playwright-core \
    || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
dest=static/vendor/leaflet
rm -rf "$dest"
mkdir -p "$dest"
cp node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css "$dest/"
cp -r node_modules/leaflet/dist/images "$dest/images"
cp node_modules/leaflet/LICENSE "$dest/LICENSE"
