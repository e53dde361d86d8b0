#!/usr/bin/env bash
# Integration tests of stored accounts, consent, audit, removal, lifecycle.
set -euo pipefail
exec python3 "$(dirname "$0")/accounts_test.py" "$@"
