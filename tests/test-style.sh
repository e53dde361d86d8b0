#!/usr/bin/env bash
# scripts/check-style.sh catches what it is for: a banned call (but not a
# mention in a comment, nor snprintf), and a file .clang-format would change;
# a clean file passes.
set -euo pipefail
exec </dev/null
SRC=${MK_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
CHECK=$SRC/scripts/check-style.sh
if ! command -v clang-format-14 >/dev/null && ! command -v clang-format >/dev/null; then
	echo "SKIP: clang-format is not installed (apt-get install clang-format)"
	exit 77
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf '%s\n' '#include <stdio.h>' '' '/* Never sprintf(x) here; strcpy() neither. */' \
	'int f(char *d, size_t n, const char *s)' '{' '	return snprintf(d, n, "%s", s);' '}' \
	>"$WORK/clean.c"
"$CHECK" "$WORK/clean.c" >/dev/null 2>"$WORK/err" || fail "clean file refused: $(cat "$WORK/err")"

for call in 'sprintf(d, "%s", s)' 'strcpy(d, s)' 'strcat(d, s)' 'atoi(s)' \
	'sscanf(s, "%d", &x)' 'strtok(d, " ")' 'vsprintf(d, s, ap)' 'gets(d)'; do
	printf '%s\n' 'int g(char *d, const char *s)' '{' "	return (int)$call;" '}' >"$WORK/banned.c"
	if "$CHECK" "$WORK/banned.c" >/dev/null 2>"$WORK/err"; then
		fail "banned call passed: $call"
	fi
	grep -q "banned functions" "$WORK/err" || fail "no banned report for $call: $(cat "$WORK/err")"
	grep -q "banned.c:3:" "$WORK/err" || fail "banned call not located: $(cat "$WORK/err")"
done

printf '%s\n' 'int h( int x ){return x;}' >"$WORK/ugly.c"
if "$CHECK" "$WORK/ugly.c" >/dev/null 2>"$WORK/err"; then
	fail "misformatted file passed"
fi
grep -q "ugly.c" "$WORK/err" && grep -q "differ from .clang-format" "$WORK/err" ||
	fail "misformatted file not named: $(cat "$WORK/err")"

# The layers: an include that points up (state -> engines), or sideways
# where the table does not allow it, is refused and located; one that points
# down passes.
LAYERS=$SRC/scripts/check-layers.sh
mkdir -p "$WORK/src/store" "$WORK/src/cli" "$WORK/src/smtp"
printf '%s\n' '#include "../lib/buf.h"' '#include "store.h"' 'int f(void);' >"$WORK/src/store/down.c"
"$LAYERS" "$WORK/src/store/down.c" >/dev/null 2>"$WORK/err" || fail "a downward include refused: $(cat "$WORK/err")"
printf '%s\n' '#include "../jmap/jmap.h"' 'int f(void);' >"$WORK/src/store/up.c"
if "$LAYERS" "$WORK/src/store/up.c" >/dev/null 2>"$WORK/err"; then
	fail "an upward include (store -> jmap) passed"
fi
grep -q 'up.c:1: includes "jmap/jmap.h": points up: store (state) may not use jmap (engines)' "$WORK/err" ||
	fail "upward include not reported: $(cat "$WORK/err")"
printf '%s\n' '#include "service/svc-sync.h"' 'int f(void);' >"$WORK/src/smtp/up2.c"
"$LAYERS" "$WORK/src/smtp/up2.c" >/dev/null 2>&1 && fail "an upward include without ../ (smtp -> service) passed"
printf '%s\n' '#include "../imap/imap-client.h"' 'int f(void);' >"$WORK/src/smtp/side.c"
if "$LAYERS" "$WORK/src/smtp/side.c" >/dev/null 2>"$WORK/err"; then
	fail "a sideways include not in the table (smtp -> imap) passed"
fi
grep -q "points sideways" "$WORK/err" || fail "sideways include not reported: $(cat "$WORK/err")"
# check-style.sh runs the layer check too, and fails on it.
if "$CHECK" "$WORK/src/store/up.c" >/dev/null 2>"$WORK/err"; then
	fail "check-style.sh passed an upward include"
fi
grep -q "points up" "$WORK/err" || fail "check-style.sh did not report the upward include: $(cat "$WORK/err")"
# The tree as it is passes.
"$LAYERS" >/dev/null 2>"$WORK/err" || fail "the tree has includes against the layers: $(cat "$WORK/err")"
echo "OK: check-style.sh catches banned calls, misformatted files and upward includes"
