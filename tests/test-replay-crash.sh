#!/usr/bin/env bash
# Replay killed at every commit and at every server answer (MK_CRASH_AFTER_COMMIT):
# no duplicate on the server, no lost change (see replay_test.py).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/replay_test.py" crash crash_each crash_each_nouidplus
