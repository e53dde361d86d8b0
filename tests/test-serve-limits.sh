#!/usr/bin/env bash
# `mailkeep serve` against hostile clients: sign-in limits, body memory,
# slowloris, header deadline, device revocation (no mail server needed).
set -euo pipefail
exec python3 "$(dirname "$0")/serve_limits_test.py" "$@"
