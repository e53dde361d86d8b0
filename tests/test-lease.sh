#!/usr/bin/env bash
# Integration tests of zero-access unlock leases in serve (real Dovecot).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/lease_test.py" "$@"
