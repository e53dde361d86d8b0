#!/usr/bin/env bash
# cmake --install lays out the binary, the man page, the example settings and
# the systemd unit; the man page renders without warnings, the unit passes
# systemd-analyze verify, the installed binary runs, and the example
# settings, uncommented, are what the loader reads (their defaults are the
# embedded ones).
set -euo pipefail
exec </dev/null
BIN=${MK_BIN:?MK_BIN is the mailkeep binary}
SRC=${MK_SRC:-$PWD}
BUILD=$(dirname "$BIN")
WORK=$(mktemp -d)
PID=
cleanup() {
	[ -z "$PID" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
P=$WORK/p

cmake --install "$BUILD" --prefix "$P" >"$WORK/install.log" || fail "cmake --install: $(cat "$WORK/install.log")"
for f in bin/mailkeep share/man/man1/mailkeep.1 share/doc/mailkeep/mailkeep.conf.example \
	lib/systemd/system/mailkeep.service; do
	[ -f "$P/$f" ] || fail "not installed: $f"
done
[ -x "$P/bin/mailkeep" ] || fail "bin/mailkeep not executable"
"$P/bin/mailkeep" --help | grep -q "usage: mailkeep" || fail "installed binary --help"

# The man page: renders, no warnings, names every command and serve option.
if command -v man >/dev/null; then
	MANWIDTH=80 man --warnings -l "$P/share/man/man1/mailkeep.1" >"$WORK/man.txt" 2>"$WORK/man.err" ||
		fail "man -l: $(cat "$WORK/man.err")"
	[ ! -s "$WORK/man.err" ] || fail "man warnings: $(cat "$WORK/man.err")"
	for w in init serve sync send outbox export user account device audit lifecycle \
		MAILKEEP_DATA "EXIT STATUS" SECURITY FILES; do
		grep -q -- "$w" "$WORK/man.txt" || fail "man page lacks $w"
	done
	# Every option any command's --help names. (--oauth is named by
	# 'account --help' as the command to run for OAuth-only providers; it is
	# an option once src/cli/cmd-account-oauth.c is there.)
	commands=$("$BIN" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
	[ -n "$commands" ] || fail "no commands in mailkeep --help"
	for c in $commands; do
		grep -q "^   $c " "$WORK/man.txt" || fail "man page has no section for $c"
	done
	for c in "" $commands; do
		for o in $("$BIN" $c --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
			[ "$o" != --oauth ] || [ -f "$SRC/src/cli/cmd-account-oauth.c" ] || continue
			grep -q -- "$o" "$WORK/man.txt" || fail "man page lacks ${c:-mailkeep} $o"
		done
	done
else
	echo "man not installed: man page rendering not checked" >&2
fi

# Every serve option is a documented setting of the example file.
for o in $("$BIN" serve --help | grep '^  --' | grep -o -- '--[a-z-]*' | sort -u); do
	[ "$o" = --help ] && continue
	k=${o#--}
	k=${k//-/_}
	grep -q "^#$k = " "$P/share/doc/mailkeep/mailkeep.conf.example" ||
		fail "example settings lack $k"
done

# The unit: the hardening asked for, and systemd-analyze verify on it (with
# ExecStart pointing at the installed binary, the man page on MANPATH).
U=$P/lib/systemd/system/mailkeep.service
for l in "ExecStart=/usr/bin/mailkeep --data /var/lib/mailkeep serve" "StateDirectory=mailkeep" \
	"StateDirectoryMode=0700" "ProtectSystem=strict" "ProtectHome=yes" "PrivateTmp=yes" \
	"PrivateDevices=yes" "NoNewPrivileges=yes" \
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" "MemoryDenyWriteExecute=yes" \
	"LockPersonality=yes" "RestrictRealtime=yes" "SystemCallFilter=@system-service" \
	"CapabilityBoundingSet=" "LimitCORE=0" "LoadCredential=master.key:/etc/mailkeep/master.key" \
	"Restart=on-failure"; do
	grep -qxF "$l" "$U" || fail "unit lacks $l"
done
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$WORK/unit"
	sed "s#/usr/bin/mailkeep#$P/bin/mailkeep#" "$U" >"$WORK/unit/mailkeep.service"
	MANPATH=$P/share/man systemd-analyze verify "$WORK/unit/mailkeep.service" >"$WORK/verify" 2>&1 ||
		fail "systemd-analyze verify: $(cat "$WORK/verify")"
	[ ! -s "$WORK/verify" ] || fail "systemd-analyze verify warns: $(cat "$WORK/verify")"
else
	NO_VERIFY=1
fi

# The example, uncommented (without the key and TLS lines, which need
# files), is read by the installed binary: serve starts on its defaults.
D=$WORK/data
"$P/bin/mailkeep" --data "$D" init >/dev/null
grep '^#[a-z_]* = ' "$P/share/doc/mailkeep/mailkeep.conf.example" | sed 's/^#//' |
	grep -v -e '^master_key' -e '^tls_' -e '^inactive_purge_days' -e '^access_log' >>"$D/mailkeep.conf"
"$P/bin/mailkeep" --data "$D" serve --listen 127.0.0.1:0 >"$WORK/out" 2>"$WORK/err" &
PID=$!
for _ in $(seq 100); do
	grep -q "mailkeep serving" "$WORK/out" && break
	kill -0 "$PID" 2>/dev/null || fail "serve on the example settings: $(cat "$WORK/err")"
	sleep 0.1
done
kill -TERM "$PID"
wait "$PID" || fail "serve did not stop cleanly"
PID=
grep -q "serving https://mail.example.org (JMAP.*sync every 300 s" "$WORK/out" ||
	fail "example settings: $(cat "$WORK/out")"
if [ -n "${NO_VERIFY:-}" ]; then
	echo "SKIP: systemd-analyze not installed (scripts/setup.sh installs systemd);" \
		"everything else passed" >&2
	exit 77
fi
echo "install: ok"
