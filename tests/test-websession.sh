#!/usr/bin/env bash
# The web app's side of serve: static files from a hand-made web root and
# cookie sessions with CSRF (tests/websession_test.py; no npm, no Dovecot).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/websession_test.py" "$@"
