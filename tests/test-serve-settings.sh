#!/usr/bin/env bash
# serve's settings: DIR/mailkeep.conf over the embedded defaults, the
# command line over the file; a bad value stops serve with the file and
# line; --help works whatever the file says. No mail server needed.
set -euo pipefail
exec </dev/null
BIN=${MK_BIN:?MK_BIN is the mailkeep binary}
WORK=$(mktemp -d)
PID=
cleanup() {
	[ -z "$PID" ] || kill "$PID" 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
D=$WORK/data
"$BIN" --data "$D" init >/dev/null

# Start serve with args, wait for its first line, stop it; the line in $WORK/line.
serve_line() {
	: >"$WORK/out"
	"$BIN" --data "$D" serve "$@" >"$WORK/out" 2>"$WORK/err" &
	PID=$!
	for _ in $(seq 100); do
		grep -q "mailkeep serving" "$WORK/out" && break
		kill -0 "$PID" 2>/dev/null || fail "serve $* exited: $(cat "$WORK/err")"
		sleep 0.1
	done
	kill -TERM "$PID"
	wait "$PID" || fail "serve $* did not stop cleanly"
	PID=
	grep "mailkeep serving" "$WORK/out" >"$WORK/line" || fail "serve $*: no start line"
}

# Defaults: loopback 8080 unless the file says otherwise (port 0: any free).
cat >>"$D/mailkeep.conf" <<'CONF'
listen = 127.0.0.1:0
public_url = https://conf.example.org
sync_interval = 0
max_connections = 7
CONF
serve_line
grep -q "serving https://conf.example.org (JMAP" "$WORK/line" || fail "file: $(cat "$WORK/line")"
grep -q "sync every 0 s" "$WORK/line" || fail "file interval: $(cat "$WORK/line")"

# The command line wins over the file.
serve_line --public-url https://cli.example.org --sync-interval 42
grep -q "serving https://cli.example.org (JMAP" "$WORK/line" || fail "cli: $(cat "$WORK/line")"
grep -q "sync every 42 s" "$WORK/line" || fail "cli interval: $(cat "$WORK/line")"


# listen from the file (no public_url: the URL is the listen address).
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i -e "s/^listen = .*/listen = 127.0.0.1:$PORT/" -e '/^public_url/d' "$D/mailkeep.conf"
serve_line
grep -q "serving http://127.0.0.1:$PORT (JMAP" "$WORK/line" || fail "listen: $(cat "$WORK/line")"

# A bad value: exit 2, naming the file, the line and what to use.
echo "header_timeout = 0" >>"$D/mailkeep.conf"
set +e
"$BIN" --data "$D" serve >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
[ $rc -eq 2 ] || fail "bad value: exit $rc"
grep -q "$D/mailkeep.conf:[0-9]*: bad header_timeout '0': use 1 to 3600 seconds" "$WORK/err" ||
	fail "bad value: $(cat "$WORK/err")"
# ... while --help still answers.
"$BIN" --data "$D" serve --help | grep -q "DIR/mailkeep.conf" || fail "--help with a bad file"
# An unknown key: every command refuses it (the hub reads the same file).
sed -i '$d' "$D/mailkeep.conf"
echo "max_conections = 5" >>"$D/mailkeep.conf"
set +e
"$BIN" --data "$D" user list >"$WORK/out" 2>"$WORK/err"
rc=$?
set -e
[ $rc -ne 0 ] || fail "unknown key accepted"
grep -q "mailkeep.conf:[0-9]*: unknown setting.*max_conections" "$WORK/err" ||
	fail "unknown key: $(cat "$WORK/err")"
echo "serve-settings: ok"
