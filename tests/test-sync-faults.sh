#!/usr/bin/env bash
# Faults a sync must survive without losing mail: a full disk, a NIL body,
# folders sharing a UIDVALIDITY, re-paired dates (see sync_faults_test.py).
set -euo pipefail
exec python3 "$(dirname "$0")/sync_faults_test.py" "$@"
