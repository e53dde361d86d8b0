#!/usr/bin/env bash
# scripts/hub.sh installs only what running the hub needs: on a machine that
# has nothing, setup.sh --runtime (which hub.sh runs) asks apt for the build
# and run dependencies and none of the test tools (clang, Dovecot, isync, the
# SMTP server, Node.js and its packages), and builds only the binary. The
# package tools, sudo and cmake are replaced by recorders on PATH: nothing is
# installed or built for real.
set -euo pipefail
exec </dev/null
SRC=${MK_SRC:-$PWD}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

grep -q '^scripts/setup.sh --runtime$' "$SRC/scripts/hub.sh" ||
	fail "hub.sh does not run 'scripts/setup.sh --runtime'"
grep -q 'setup.sh --runtime' <(sed -n '/--install-service/,/^fi$/p' "$SRC/scripts/hub.sh") ||
	fail "hub.sh --install-service does not run 'scripts/setup.sh --runtime'"

mkdir -p "$WORK/bin" "$WORK/tree/scripts"
cp "$SRC/scripts/setup.sh" "$WORK/tree/scripts/"
for tool in apt-get npm node cmake; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls"\n' "$tool" "$WORK" >"$WORK/bin/$tool"
done
printf '#!/bin/sh\nexec "$@"\n' >"$WORK/bin/sudo"
# Nothing is installed yet.
printf '#!/bin/sh\nexit 1\n' >"$WORK/bin/dpkg-query"
chmod +x "$WORK/bin/"*
PATH=$WORK/bin:$PATH bash "$WORK/tree/scripts/setup.sh" --runtime >"$WORK/out" 2>&1 ||
	fail "setup.sh --runtime: $(cat "$WORK/out")"
calls=$(cat "$WORK/calls")
echo "$calls" | grep -q "^apt-get .*install.* libsqlite3-dev" || fail "no runtime install: $calls"
for p in clang clang-format libclang-rt dovecot-imapd isync python3-aiosmtpd nodejs npm \
	systemd man-db time; do
	echo "$calls" | grep "^apt-get .*install" | tr ' ' '\n' | grep -qx "$p" &&
		fail "setup.sh --runtime installs the test tool $p"
done
echo "$calls" | grep -q "^npm" && fail "setup.sh --runtime runs npm"
echo "$calls" | grep -q "^cmake --build build .*--target mailkeep" ||
	fail "setup.sh --runtime does not build only the binary: $calls"

# Without --runtime the test tools come too (the recorder sees them).
rm -f "$WORK/calls"
PATH=$WORK/bin:$PATH bash "$WORK/tree/scripts/setup.sh" --no-build >"$WORK/out" 2>&1 || true
grep "^apt-get .*install" "$WORK/calls" | tr ' ' '\n' | grep -qx dovecot-imapd ||
	fail "setup.sh (tests) does not install dovecot-imapd: $(cat "$WORK/calls")"
echo "hub-sh: ok"
