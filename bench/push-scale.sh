#!/usr/bin/env bash
# Benchmark 1 of issue #11: push latency with 1,000 accounts idling against a
# real Dovecot on loopback with imap_hibernate on (bench/push-scale.py does
# the work; bench/README.md explains the figures).
#
#   bench/push-scale.sh [--accounts N] [--hub-users U] [--samples S]
#                       [--hibernate SECONDS] [--notify] [--keep DIR]
#
# Defaults: 1,000 accounts over 10 hub users, 200 samples, hibernate after
# 5 s. MK_BIN selects the mailkeep binary (default build/mailkeep). Needs
# dovecot-imapd, python3, openssl; run as root or as a user Dovecot can run
# as (the fixture's rules). Raises the descriptor limit for itself, Dovecot
# and serve; every process it starts is stopped when it ends, even on failure.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export MK_BIN=${MK_BIN:-$here/../build/mailkeep}
[ -x "$MK_BIN" ] || { echo "push-scale: $MK_BIN missing (cmake --build build --target mailkeep)" >&2; exit 1; }
command -v dovecot >/dev/null || { echo "push-scale: dovecot is not installed" >&2; exit 1; }
hard=$(ulimit -Hn)
ulimit -n "$hard"
[ "$hard" -ge 4096 ] || echo "push-scale: warning: descriptor limit $hard is low" >&2
exec </dev/null
# The driver in its own process group: a signal stops it and it stops the rest.
python3 "$here/push-scale.py" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
wait "$pid"
