#!/usr/bin/env bash
# Integration tests of send / outbox / serve's outbox thread against a real
# SMTP server (aiosmtpd) and a real Dovecot on loopback.
set -euo pipefail
# Tests never read the terminal: a prompt must fail, not wait (ctest hands
# its own stdin, often a terminal, to every test).
exec </dev/null
if ! /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
	echo "SKIP: python3-aiosmtpd is not installed (apt-get install python3-aiosmtpd)"
	exit 77
fi
if ! command -v dovecot >/dev/null; then
	echo "SKIP: dovecot is not installed (apt-get install dovecot-imapd)"
	exit 77
fi
exec python3 "$(dirname "$0")/smtp_test.py" "$@"
