#!/usr/bin/env bash
# Kill at every commit of an initial sync, an incremental sync and an
# account removal; resume and compare with the server (sync_crash_test.py).
set -euo pipefail
exec python3 "$(dirname "$0")/sync_crash_test.py" "$@"
