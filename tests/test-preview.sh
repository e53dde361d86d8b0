#!/usr/bin/env bash
# PDF preview: GET /jmap/preview/ (src/daemon/daemon-blob.c) against a real
# serve on loopback (tests/preview_test.py). The browser side is
# tests/web/preview.test.mjs (run by tests/test-web.sh).
set -euo pipefail
# Tests never read the terminal.
exec </dev/null
exec python3 "$(dirname "$0")/preview_test.py" "$@"
