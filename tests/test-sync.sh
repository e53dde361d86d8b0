#!/usr/bin/env bash
# Integration tests of sync/export against a real Dovecot (see sync_test.py).
set -euo pipefail
# Tests never read the terminal: a prompt must fail, not wait (ctest hands
# its own stdin, often a terminal, to every test).
exec </dev/null
exec python3 "$(dirname "$0")/sync_test.py" "$@"
