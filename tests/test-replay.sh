#!/usr/bin/env bash
# Replay of device changes to a real Dovecot: every kind on every tier and the
# conflict rules (see replay_test.py). The kill-at-every-commit scenarios run
# as their own test (test-replay-crash.sh), so ctest runs the two side by side.
set -euo pipefail
exec </dev/null
if [ $# -eq 0 ]; then
	set -- kinds_qresync kinds_condstore kinds_plain kinds_nouidplus conflicts_qresync \
		conflicts_plain conflicts_nouidplus delta_keywords
fi
exec python3 "$(dirname "$0")/replay_test.py" "$@"
