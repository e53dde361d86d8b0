#!/usr/bin/env bash
# serve's scheduler beside provider push, against a real Dovecot: pushed
# accounts are not polled (Dovecot's log), push off polls them, the
# full_sync_interval safety net, a zero-access lease starts and its wipe
# stops push, the push settings (see scheduler_test.py). Skipped (77)
# without Dovecot.
set -euo pipefail
exec </dev/null
command -v dovecot >/dev/null || { echo "skip: no dovecot"; exit 77; }
exec python3 "$(dirname "$0")/scheduler_test.py" "$@"
