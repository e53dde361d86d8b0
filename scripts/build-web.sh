#!/bin/sh
# Builds the web app into OUTDIR (default build/web): npm ci in web/ when its node_modules
# is missing or older than the lockfile, a type check, then the esbuild bundle.
# Usage: scripts/build-web.sh [OUTDIR]
set -eu
root=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
out=${1:-"$root/build/web"}
case $out in /*) ;; *) out="$(pwd)/$out" ;; esac
web="$root/web"
command -v node >/dev/null 2>&1 || { echo "build-web: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "build-web: npm is not installed (apt-get install npm)" >&2; exit 1; }
if [ ! -d "$web/node_modules" ] || [ "$web/package-lock.json" -nt "$web/node_modules" ]; then
	(cd "$web" && npm ci --no-audit --no-fund)
	touch "$web/node_modules"
fi
(cd "$web" && npx --no-install tsc --noEmit -p .)
node "$web/build.mjs" "$out"
