#!/usr/bin/env bash
# Integration tests of sync/export against a real Dovecot (see sync_test.py).
set -euo pipefail
exec python3 "$(dirname "$0")/sync_test.py" "$@"
