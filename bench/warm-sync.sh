#!/usr/bin/env bash
# Warm sync sessions against none, in the same run: N deliveries one at a
# time to one account with provider push on; push latency p50/p90, sync
# logins and serve CPU with sync_keep_seconds = 120 and = 0, and the ratios
# (bench/warm-sync.py; bench/README.md).
#
#   bench/warm-sync.sh [--count N]    (default 50; MK_BIN: the binary)
set -euo pipefail
exec </dev/null
cd "$(dirname "$0")/.."
command -v dovecot >/dev/null || { echo "warm-sync: needs dovecot (scripts/setup.sh)" >&2; exit 1; }
export MK_BIN="${MK_BIN:-$PWD/build/mailkeep}"
exec python3 bench/warm-sync.py "$@"
