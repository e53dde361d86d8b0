#!/usr/bin/env bash
# Replay of device changes to a real Dovecot: every kind on every tier, the
# conflict rules, a kill at every commit (see replay_test.py).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/replay_test.py" "$@"
