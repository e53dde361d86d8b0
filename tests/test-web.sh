#!/usr/bin/env bash
# Browser tests of the web app (tests/web/*.test.mjs, playwright-core driving
# Debian's chromium) against a real serve --web-root, Dovecot and SMTP server
# (tests/web_test.py sets them up).
#
#   tests/test-web.sh [FILE.test.mjs...]
#
# Outside CI, a machine without chromium, node or the fixtures skips (77);
# in CI (CI set) scripts/setup.sh has installed them, so their absence fails.
# MK_SCREENSHOTS=1 writes docs/screenshots/*.png.
set -euo pipefail
# Tests never read the terminal: a prompt must fail, not wait (ctest hands
# its own stdin, often a terminal, to every test).
exec </dev/null
cd "$(dirname "$0")/.."

missing() {
	if [ -n "${CI:-}" ]; then
		echo "FAIL: $1 (scripts/setup.sh installs it)" >&2
		exit 1
	fi
	echo "SKIP: $1 (scripts/setup.sh installs it)"
	exit 77
}
chromium=${MK_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || missing "chromium is not installed (apt-get install chromium)"
command -v node >/dev/null && command -v npm >/dev/null || missing "node and npm are not installed"
command -v dovecot >/dev/null || missing "dovecot is not installed (apt-get install dovecot-imapd)"
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || missing "python3-aiosmtpd is not installed"
[ -f web/package.json ] && [ -f scripts/build-web.sh ] || missing "the web app (web/, scripts/build-web.sh) is not in this tree"
exec python3 tests/web_test.py "$@"
