#!/usr/bin/env bash
# Stored passwords go only where they were stored for (issue #9 items 9, 10).
# Two recording IMAP servers on loopback (tests/fixture/recording_imapd.py),
# each with its own CA: "good" (the account's server) and "evil". An edit of
# hub.db that points the account at evil (URL and CA file, or the URL alone,
# or new contents in the CA file) must stop the password from opening: evil
# records no login. An old account row and sealed password put back after a
# password change (or after removal) must be refused as rolled back: no
# server records a login. Controls show that each server does record a login
# when the hub is meant to send one.
set -euo pipefail

SRC=${MK_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${MK_BIN:-$SRC/build/mailkeep}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
D=$WORK/data

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
mk() { "$BIN" --data "$D" "$@"; }

certs() {
	local d=$WORK/$1
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$d/ca.key" -out "$d/ca.pem" \
		-subj "/CN=$1 test CA" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
		-subj "/CN=127.0.0.1" 2>/dev/null
	printf '%s\n' "subjectAltName=IP:127.0.0.1" "basicConstraints=CA:FALSE" \
		"extendedKeyUsage=serverAuth" >"$d/server.ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -out "$d/server.pem" -extfile "$d/server.ext" 2>/dev/null
}
start_server() {
	local d=$WORK/$1
	python3 "$SRC/tests/fixture/recording_imapd.py" "$d/server.pem" "$d/server.key" \
		"$d/record" "$d/port" &
	PIDS+=($!)
	for _ in $(seq 1 100); do [ -f "$d/port" ] && break; sleep 0.1; done
	[ -f "$d/port" ] || fail "$1 server did not start"
	: >"$d/record"
}
# Did server $1 receive a login, or the password $2 in any form?
logins() { grep -ciE '^[^ ]+ (login|authenticate)' "$WORK/$1/record" || true; }
leaked() {
	python3 - "$WORK/$1/record" "$2" <<'EOF'
import base64, sys
data = open(sys.argv[1], "rb").read()
pw = sys.argv[2].encode()
forms = [pw, base64.b64encode(pw)]
for login in (b"alice@example.com", b""):
    forms.append(base64.b64encode(b"\0" + login + b"\0" + pw))
sys.exit(0 if any(f in data for f in forms) else 1)
EOF
}
reset_records() { : >"$WORK/good/record"; : >"$WORK/evil/record"; }
sync_fails_with() {
	if mk sync --user alice --quiet >"$WORK/sync.out" 2>&1; then
		fail "$1: sync succeeded"
	fi
	grep -q "$2" "$WORK/sync.out" || fail "$1: sync said: $(cat "$WORK/sync.out")"
}
# SQL on hub.db with Python's sqlite3 module (no sqlite3 command needed):
# a SELECT prints its rows, anything else runs as a script.
sqlq() {
	python3 - "$1" "$2" <<'PYEOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
sql = sys.argv[2]
if sql.lstrip().upper().startswith("SELECT"):
    for row in c.execute(sql):
        print("|".join("" if v is None else str(v) for v in row))
else:
    c.executescript(sql)
c.commit()
c.close()
PYEOF
}
db() { sqlq "$D/hub.db" "$1"; }

certs good
certs evil
start_server good
start_server evil
GOOD=imaps://127.0.0.1:$(cat "$WORK/good/port")
EVIL=imaps://127.0.0.1:$(cat "$WORK/evil/port")
printf 'first-canary-pw' >"$WORK/pw1"
printf 'second-canary-pw' >"$WORK/pw2"

mk init >/dev/null
mk user add alice >/dev/null
# --no-check: the recording servers refuse every login, and the counts
# below start from the first sync.
mk account add --user alice --imap "$GOOD" --login alice@example.com \
	--password-file "$WORK/pw1" --ca-file "$WORK/good/ca.pem" --consent --no-check >/dev/null

# Control: the hub logs in to the account's own server (which refuses).
mk sync --user alice --quiet >/dev/null 2>&1 || true
[ "$(logins good)" -ge 1 ] || fail "control: the good server saw no login"
leaked good first-canary-pw || fail "control: the good server did not get the password"

# usage: test-secret-binding.sh [rollback]   (rollback: steps 6 and 7 only)
if [ "${1:-all}" != rollback ]; then
# 1. The attack: URL and CA file pointed at evil.
reset_records
db "UPDATE accounts SET imap_url = '$EVIL', ca_file = '$WORK/evil/ca.pem'"
sync_fails_with "URL and CA edited" "server settings"
[ "$(logins evil)" -eq 0 ] || fail "URL and CA edited: evil saw a login"
leaked evil first-canary-pw && fail "URL and CA edited: the password reached evil"
# 2. The URL alone (a publicly trusted certificate would need no CA change).
db "UPDATE accounts SET imap_url = '$EVIL', ca_file = '$WORK/good/ca.pem'"
sync_fails_with "URL edited" "server settings"
# 3. The login alone.
db "UPDATE accounts SET imap_url = '$GOOD', login = 'mallory@example.com'"
sync_fails_with "login edited" "server settings"
db "UPDATE accounts SET login = 'alice@example.com'"
# 4. New contents in the account's CA file (same path).
cp "$WORK/good/ca.pem" "$WORK/good/ca.orig"
cat "$WORK/evil/ca.pem" >>"$WORK/good/ca.pem"
sync_fails_with "CA file contents changed" "server settings"
cp "$WORK/good/ca.orig" "$WORK/good/ca.pem"
[ "$(logins evil)" -eq 0 ] || fail "evil saw a login"
[ "$(logins good)" -eq 0 ] || fail "good saw a login while the row was edited"
# Put back as it was: the password opens again.
mk sync --user alice --quiet >/dev/null 2>&1 || true
[ "$(logins good)" -ge 1 ] || fail "restored settings: no login to the good server"
# 4b. The row edited, then the owner types a new password (the edited
# settings' error says to): a new password must not go to, or be sealed for,
# settings the stored password does not vouch for.
reset_records
db "UPDATE accounts SET imap_url = '$EVIL', ca_file = '$WORK/evil/ca.pem'"
printf 'typed-canary-pw' >"$WORK/pw3"
if mk account password --user alice 1 --password-file "$WORK/pw3" >"$WORK/out" 2>&1; then
	fail "account password on an edited row succeeded"
fi
grep -q "give every one" "$WORK/out" || fail "account password on an edited row: $(cat "$WORK/out")"
if mk account set --user alice 1 --login alice@example.com --password-file "$WORK/pw3" \
	--no-check >"$WORK/out" 2>&1; then
	fail "account set with settings from an edited row succeeded"
fi
mk sync --user alice --quiet >/dev/null 2>&1 || true
[ "$(logins evil)" -eq 0 ] || fail "edited row, new password: evil saw a login"
leaked evil typed-canary-pw && fail "edited row, new password: it reached evil"
db "UPDATE accounts SET imap_url = '$GOOD', ca_file = '$WORK/good/ca.pem'"

# 5. The owner changes the settings on purpose: the password is entered again
# and goes to the new server (which shows that evil does record logins).
reset_records
mk account set --user alice 1 --imap "$EVIL" --ca-file "$WORK/evil/ca.pem" \
	--password-file "$WORK/pw1" --no-check >/dev/null
mk sync --user alice --quiet >/dev/null 2>&1 || true
[ "$(logins evil)" -ge 1 ] || fail "account set: no login to the new server"
leaked evil first-canary-pw || fail "account set: the new server did not get the password"
mk account set --user alice 1 --imap "$GOOD" --ca-file "$WORK/good/ca.pem" \
	--password-file "$WORK/pw1" --no-check >/dev/null
fi

# 6. Rollback of a password change: keep the row and sealed copy, change the
# password, put the old ones back.
db "ATTACH '$WORK/old.db' AS o; CREATE TABLE o.accounts AS SELECT * FROM accounts;
    CREATE TABLE o.secrets AS SELECT * FROM secrets;"
mk account password --user alice 1 --password-file "$WORK/pw2" --no-check >/dev/null
reset_records
mk sync --user alice --quiet >/dev/null 2>&1 || true
leaked good second-canary-pw || fail "control: the new password did not reach the server"
restore_old() {
	db "ATTACH '$WORK/old.db' AS o; DELETE FROM secrets WHERE account_id = 1;
	    INSERT INTO secrets SELECT * FROM o.secrets WHERE account_id = 1;
	    INSERT OR REPLACE INTO accounts SELECT * FROM o.accounts WHERE id = 1;"
}
restore_old
reset_records
sync_fails_with "old row and sealed copy put back" "rolled back"
[ "$(logins good)" -eq 0 ] || fail "rollback: the server saw a login"
[ "$(logins evil)" -eq 0 ] || fail "rollback: evil saw a login"
leaked good first-canary-pw && fail "rollback: the old password was sent"
# The owner can store a password again, every setting given, and it works.
mk account set --user alice 1 --imap "$GOOD" --smtp none --login alice@example.com \
	--ca-file "$WORK/good/ca.pem" --password-file "$WORK/pw2" --no-check >/dev/null
mk sync --user alice --quiet >/dev/null 2>&1 || true
leaked good second-canary-pw || fail "after re-entry: no login"

# 7. A removed account put back.
mk account remove --user alice 1 --all-devices >/dev/null
restore_old
reset_records
sync_fails_with "removed account put back" "rolled back"
[ "$(logins good)" -eq 0 ] || fail "removed account: the server saw a login"

echo "test-secret-binding: ok"
