#!/usr/bin/env bash
# Self-check of the Dovecot fixture (tests/fixture/dovecot.sh): start it, seed
# 50 messages, then check as a client that imaps verifies against the test CA,
# the plain port demands STARTTLS before LOGIN, the untrusted port fails
# verification, COMPRESS=DEFLATE is offered and doveadm works; then stop it.
set -euo pipefail
# Tests never read the terminal: a prompt must fail, not wait (ctest hands
# its own stdin, often a terminal, to every test).
exec </dev/null

SRC=${MK_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
FX=$SRC/tests/fixture/dovecot.sh
CTL=$SRC/tests/fixture/imapctl.py

if ! command -v dovecot >/dev/null; then
	echo "SKIP: dovecot is not installed (apt-get install dovecot-imapd)"
	exit 77
fi

WORK=$(mktemp -d)
cleanup() {
	bash "$FX" stop "$WORK/dc" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	if [ -f "$WORK/dc/dovecot.log" ]; then
		echo "--- dovecot.log (tail)" >&2
		tail -n 20 "$WORK/dc/dovecot.log" >&2
	fi
	exit 1
}

bash "$FX" start "$WORK/dc" >"$WORK/start.out" || fail "start"
# shellcheck disable=SC1091
. "$WORK/dc/env"
cmp -s "$WORK/start.out" "$WORK/dc/env" || fail "start output differs from DIR/env"
for v in IMAPS_PORT IMAP_PORT UNTRUSTED_PORT IMAP_USER PASS_FILE CA_FILE MAILDIR CONF; do
	[ -n "${!v:-}" ] || fail "env lacks $v"
done
[ "$IMAP_USER" = alice ] || fail "IMAP_USER is $IMAP_USER"
[ -s "$PASS_FILE" ] || fail "empty password file"
[ "$(tail -c 1 "$PASS_FILE" | od -An -c | tr -d ' ')" != '\n' ] ||
	fail "password file ends with a newline"

bash "$FX" seed "$WORK/dc" --count 50 --seed 7 2>/dev/null || fail "seed"

# imaps, verified against the CA: folders and message count.
"$CTL" "$WORK/dc" list >"$WORK/list" || fail "list over imaps"
total=$(awk '{ n += $4 } END { print n }' "$WORK/list")
{ [ "$total" -ge 45 ] && [ "$total" -le 50 ]; } || fail "expected ~50 messages, got $total"
grep -q '^INBOX ' "$WORK/list" || fail "no INBOX in list"
grep -q '^Archive ' "$WORK/list" || fail "no Archive in list"

# The special-use flag is announced.
python3 - "$WORK/dc" <<'EOF' || fail "Archive lacks \\Archive special-use"
import imaplib, ssl, sys
d = sys.argv[1]
env = dict(l.strip().split("=", 1) for l in open(d + "/env") if "=" in l)
ctx = ssl.create_default_context(cafile=env["CA_FILE"])
c = imaplib.IMAP4_SSL("127.0.0.1", int(env["IMAPS_PORT"]), ssl_context=ctx)
c.login("alice", open(env["PASS_FILE"]).read())
typ, data = c.list()
ok = any(b"\\Archive" in l and l.endswith(b"Archive") for l in data if isinstance(l, bytes))
c.logout()
sys.exit(0 if ok else 1)
EOF

# Capabilities after login include COMPRESS=DEFLATE and QRESYNC.
caps=$("$CTL" "$WORK/dc" caps) || fail "caps"
case " $caps " in *" COMPRESS=DEFLATE "*) ;; *) fail "no COMPRESS=DEFLATE in: $caps" ;; esac
case " $caps " in *" QRESYNC "*) ;; *) fail "no QRESYNC in: $caps" ;; esac

# The plain port: LOGINDISABLED before STARTTLS, login works after it.
"$CTL" "$WORK/dc" --via starttls login || fail "STARTTLS login"
python3 - "$IMAP_PORT" "$PASS_FILE" <<'EOF' || fail "plain port accepted LOGIN without TLS"
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
assert "LOGINDISABLED" in c.capabilities, c.capabilities
try:
    c.login("alice", open(sys.argv[2]).read())
except imaplib.IMAP4.error:
    sys.exit(0)
sys.exit(1)
EOF

# The untrusted port's certificate does not verify.
if "$CTL" "$WORK/dc" --via untrusted login 2>"$WORK/untrusted.err"; then
	fail "untrusted port passed verification"
fi
grep -q "certificate verification failed" "$WORK/untrusted.err" ||
	fail "untrusted port failed for another reason: $(cat "$WORK/untrusted.err")"

# Connecting by the name "localhost" is a host-name mismatch.
python3 - "$IMAPS_PORT" "$CA_FILE" <<'EOF' || fail "localhost matched the certificate"
import socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
try:
    with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as s:
        ctx.wrap_socket(s, server_hostname="localhost").close()
except ssl.SSLCertVerificationError:
    sys.exit(0)
sys.exit(1)
EOF

# Acting as another client: append, flag, fetch, expunge, folders.
printf 'Subject: fixture check\r\n\r\nhello\r\n' >"$WORK/m.eml"
uid=$("$CTL" "$WORK/dc" append INBOX "$WORK/m.eml" '\Seen') || fail "append"
[ -n "$uid" ] || fail "append returned no UID"
"$CTL" "$WORK/dc" flags INBOX "$uid" add '\Flagged $Label1' || fail "flags"
"$CTL" "$WORK/dc" uids INBOX | grep -q "^$uid .*\\\\Flagged" || fail "flag not set"
"$CTL" "$WORK/dc" fetch INBOX "$uid" | cmp -s - "$WORK/m.eml" || fail "fetch differs"
"$CTL" "$WORK/dc" expunge INBOX "$uid" || fail "expunge"
! "$CTL" "$WORK/dc" uids INBOX | grep -q "^$uid " || fail "UID $uid still there"
"$CTL" "$WORK/dc" create Projects.Beta || fail "create"
"$CTL" "$WORK/dc" rename Projects.Beta Projects.Gamma || fail "rename"
"$CTL" "$WORK/dc" delete Projects.Gamma || fail "delete"

# doveadm with the fixture's config.
DA=(bash "$FX" doveadm "$WORK/dc")
"${DA[@]}" flags add -u alice '\Flagged' mailbox INBOX uid 3 || fail "doveadm flags"
"${DA[@]}" mailbox create -u alice Tmp || fail "doveadm mailbox create"
"${DA[@]}" mailbox rename -u alice Tmp Tmp2 || fail "doveadm mailbox rename"
"${DA[@]}" mailbox delete -u alice Tmp2 || fail "doveadm mailbox delete"
printf 'Subject: saved\r\n\r\nx\r\n' | "${DA[@]}" save -u alice -m INBOX || fail "doveadm save"
"${DA[@]}" expunge -u alice mailbox INBOX uid 3 || fail "doveadm expunge"
"${DA[@]}" mailbox update -u alice --uid-validity 424242 INBOX || fail "doveadm uid-validity"
"$CTL" "$WORK/dc" list | grep -q '^INBOX 424242 ' || fail "UIDVALIDITY not changed"

bash "$FX" stop "$WORK/dc" || fail "stop"
if (exec 3<>"/dev/tcp/127.0.0.1/$IMAPS_PORT") 2>/dev/null; then
	fail "port $IMAPS_PORT still open after stop"
fi
echo "OK: fixture works (imaps, STARTTLS, untrusted, COMPRESS, doveadm)"
