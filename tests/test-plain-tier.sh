#!/usr/bin/env bash
# The plain tier against a real Dovecot with CONDSTORE/QRESYNC hidden (see plain_tier_test.py).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/plain_tier_test.py" "$@"
