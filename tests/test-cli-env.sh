#!/usr/bin/env bash
# The command line without a mail server: MAILKEEP_DATA is the default of
# --data for every command, --data wins over it, and neither given is a clear
# usage error; a consent prompt never waits when stdin is not a terminal.
set -euo pipefail
# Tests never read the terminal: a prompt must fail, not wait (ctest hands
# its own stdin, often a terminal, to every test).
exec </dev/null
BIN=${MK_BIN:?MK_BIN is the mailkeep binary}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Neither --data nor MAILKEEP_DATA: exit 1 naming both.
set +e
env -u MAILKEEP_DATA "$BIN" user list >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
[ $rc -eq 1 ] || fail "no data dir: exit $rc"
grep -q -- "--data DIR is required" "$WORK/err" && grep -q MAILKEEP_DATA "$WORK/err" ||
	fail "no data dir: $(cat "$WORK/err")"

# MAILKEEP_DATA alone: init, user add and user list all use it.
export MAILKEEP_DATA=$WORK/env-data
"$BIN" init >/dev/null || fail "init with MAILKEEP_DATA"
[ -f "$WORK/env-data/mailkeep.version" ] || fail "init did not use MAILKEEP_DATA"
"$BIN" user add alice >/dev/null || fail "user add with MAILKEEP_DATA"
"$BIN" user list | grep -q '^alice' || fail "user list with MAILKEEP_DATA: $("$BIN" user list)"
"$BIN" audit --user alice --verify >/dev/null 2>&1 || "$BIN" audit --user alice >/dev/null ||
	fail "audit with MAILKEEP_DATA"

# --data wins over MAILKEEP_DATA.
"$BIN" --data "$WORK/flag-data" init >/dev/null || fail "init with --data"
"$BIN" --data "$WORK/flag-data" user add bob >/dev/null
"$BIN" --data "$WORK/flag-data" user list | grep -q '^bob' || fail "--data not used"
! "$BIN" user list | grep -q '^bob' || fail "bob landed in MAILKEEP_DATA"

# account add without --consent and without a terminal refuses at once
# (stdin is /dev/null here), storing nothing.
printf 'secret' >"$WORK/pw"
set +e
timeout 20 "$BIN" account add --user alice --imap imaps://127.0.0.1:1 --login a \
	--password-file "$WORK/pw" >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
[ $rc -ne 124 ] || fail "account add waited for a prompt without a terminal"
[ $rc -eq 1 ] && grep -q "no consent" "$WORK/err" || fail "account add: exit $rc: $(cat "$WORK/err")"
"$BIN" account list --user alice | grep -q imaps && fail "declined account stored"
echo "OK: MAILKEEP_DATA, --data, no prompt without a terminal"
