#!/usr/bin/env bash
# Real JMAP clients (Node: jmap-jam, eventsource) against `mailkeep serve`.
set -euo pipefail
# Tests never read the terminal: a prompt must fail, not wait (ctest hands
# its own stdin, often a terminal, to every test).
exec </dev/null
exec python3 "$(dirname "$0")/jmap_test.py" "$@"
