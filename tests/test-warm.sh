#!/usr/bin/env bash
# Warm sync sessions in serve against a real Dovecot: a push-triggered sync
# reuses the last sync's login; a changed account, a kicked session and
# sync_keep_seconds = 0 log in anew (see warm_test.py). Skipped (77) when
# Dovecot is missing.
set -euo pipefail
exec </dev/null
command -v dovecot >/dev/null || { echo "skip: no dovecot"; exit 77; }
exec python3 "$(dirname "$0")/warm_test.py" "$@"
