#!/usr/bin/env bash
# The daemon (`mailkeep serve`): logs, /healthz, /metrics, the replay of
# device changes at once, SIGTERM with a sync and a send in flight
# (real Dovecot and SMTP server on loopback).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/daemon_test.py" "$@"
