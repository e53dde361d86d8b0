#!/usr/bin/env bash
# Gmail specifics against a scripted fake Gmail (see gmail_test.py).
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/gmail_test.py" "$@"
