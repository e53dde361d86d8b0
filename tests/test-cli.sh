#!/usr/bin/env bash
# Integration tests of CLI checks and messages (account add, errors, activity).
set -euo pipefail
exec python3 "$(dirname "$0")/cli_test.py" "$@"
