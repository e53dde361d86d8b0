#!/usr/bin/env bash
# Integration tests of account add --email (profiles, autoconfig, ISPDB, MX,
# SRV, guess) and account import, against a local autoconfig server and DNS
# responder on 127.0.0.1.
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/setup_test.py" "$@"
