#!/usr/bin/env bash
# Push from the provider against a real Dovecot: APPEND -> change within 2 s,
# wrong password, BYE, server restart, network cut, a silent server (see
# push_test.py). Skipped (77) when Dovecot or bench/push-probe is missing.
set -euo pipefail
exec </dev/null
command -v dovecot >/dev/null || { echo "skip: no dovecot"; exit 77; }
exec python3 "$(dirname "$0")/push_test.py" "$@"
