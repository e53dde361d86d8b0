#!/usr/bin/env bash
# Real JMAP clients (Node: jmap-jam, eventsource) against `mailkeep serve`.
set -euo pipefail
exec python3 "$(dirname "$0")/jmap_test.py" "$@"
