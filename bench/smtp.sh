#!/usr/bin/env bash
# Submission throughput of the outbox against a local SMTP sink, and a
# minimal peer measured in the same run.
#
#   bench/smtp.sh [--count N]     (default 200 messages of about 3 KB)
#
# Both sides talk to the same aiosmtpd sink (tests/fixture/smtpd.py --sink)
# on loopback with STARTTLS (the Dovecot fixture's test CA) and AUTH PLAIN:
#   mailkeep  `send --queue-only` N times (each: preparation, a durable
#             commit to the outbox), then one `outbox run` sending all N
#             (each: a durable 'sending' and 'sent' commit around the
#             transfer; one connection, reused)
#   peer      Python smtplib: one connection, STARTTLS, AUTH, N sendmail()
#             calls with the same messages, nothing recorded anywhere
# Prints messages/s for the run alone, for queue + run, and for the peer, and
# the ratios mailkeep/peer. The Sent copy is switched off (sent-copy
# provider) so that only submission is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=200
while [ $# -gt 0 ]; do
	case $1 in
	--count) COUNT=${2:?}; shift 2 ;;
	*) echo "usage: $0 [--count N]" >&2; exit 2 ;;
	esac
done
MK_BIN=${MK_BIN:-$PWD/build/mailkeep}
SRC=$PWD
RUN=$(mktemp -d /tmp/mk-bench-smtp.XXXXXX)
chmod 755 "$RUN"
SINK_PID=
cleanup() {
	[ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
	bash "$SRC/tests/fixture/dovecot.sh" stop "$RUN/dc" >/dev/null 2>&1 || true
	rm -rf "$RUN"
}
trap cleanup EXIT

bash tests/fixture/dovecot.sh start "$RUN/dc" >/dev/null
# shellcheck disable=SC1091
. "$RUN/dc/env"
/usr/bin/python3 tests/fixture/smtpd.py "$RUN/sink" --cert "$RUN/dc/server.pem" \
	--key "$RUN/dc/server.key" --starttls --user alice --password-file "$PASS_FILE" \
	--sink >"$RUN/sink.out" 2>"$RUN/sink.err" &
SINK_PID=$!
for _ in $(seq 1 100); do
	grep -q ready "$RUN/sink.out" 2>/dev/null && break
	sleep 0.1
done
PORT=$(awk '/ready/ {print $2}' "$RUN/sink.out")
[ -n "$PORT" ] || { echo "smtp.sh: the sink did not start" >&2; cat "$RUN/sink.err" >&2; exit 1; }

H=$RUN/hub
"$MK_BIN" --data "$H" init >/dev/null
"$MK_BIN" --data "$H" user add alice >/dev/null
"$MK_BIN" --data "$H" account add --user alice --imap "imaps://127.0.0.1:$IMAPS_PORT" \
	--smtp "smtp://127.0.0.1:$PORT" --login alice --password-file "$PASS_FILE" \
	--ca-file "$CA_FILE" --consent >/dev/null
"$MK_BIN" --data "$H" outbox --user alice sent-copy 1 provider >/dev/null

# The messages: about 3 KB each, distinct.
mkdir -p "$RUN/msgs"
python3 - "$RUN/msgs" "$COUNT" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
body = "".join("line %d of a plain text message body, nothing special\r\n" % i for i in range(50))
for i in range(n):
    with open(os.path.join(d, "%06d.eml" % i), "w", newline="") as f:
        f.write("From: Alice <alice@example.org>\r\nTo: Bob <bob@example.net>\r\n"
                "Subject: bench message %d\r\nMessage-ID: <bench-%d@example.org>\r\n"
                "Date: Fri, 27 Nov 2026 12:00:00 +0000\r\n\r\n%s" % (i, i, body))
PY

now() { date +%s.%N; }
t0=$(now)
for f in "$RUN"/msgs/*.eml; do
	"$MK_BIN" --data "$H" send --user alice --account 1 --queue-only <"$f" >/dev/null
done
t1=$(now)
"$MK_BIN" --data "$H" outbox --user alice run >"$RUN/run.out"
t2=$(now)
grep -q "^outbox alice: $COUNT sent, 0 to retry, 0 failed" "$RUN/run.out" ||
	{ echo "smtp.sh: not all sent:" >&2; tail -3 "$RUN/run.out" >&2; exit 1; }

t3=$(now)
python3 - "$RUN/msgs" "$PORT" "$PASS_FILE" "$CA_FILE" <<'PY'
import glob, smtplib, ssl, sys
d, port, pw, ca = sys.argv[1], int(sys.argv[2]), open(sys.argv[3]).read(), sys.argv[4]
ctx = ssl.create_default_context(cafile=ca)
s = smtplib.SMTP("127.0.0.1", port)
s.starttls(context=ctx)
s.login("alice", pw)
for path in sorted(glob.glob(d + "/*.eml")):
    s.sendmail("alice@example.org", ["bob@example.net"], open(path, "rb").read())
s.quit()
PY
t4=$(now)
kill "$SINK_PID"
wait "$SINK_PID" 2>/dev/null || true
SINK_PID=
got=$(cat "$RUN/sink/count")
[ "$got" -eq $((2 * COUNT)) ] || { echo "smtp.sh: the sink got $got, expected $((2 * COUNT))" >&2; exit 1; }

python3 - "$COUNT" "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import sys
n = int(sys.argv[1]); t0, t1, t2, t3, t4 = map(float, sys.argv[2:])
run, total, peer = n / (t2 - t1), n / (t2 - t0), n / (t4 - t3)
print("messages           %d (about 3 KB each), STARTTLS + AUTH PLAIN, loopback aiosmtpd sink" % n)
print("mailkeep outbox run %8.1f msg/s  (%.2f s; durable sending/sent commits, one connection)" % (run, t2 - t1))
print("mailkeep queue+run  %8.1f msg/s  (%.2f s; one 'send --queue-only' process per message)" % (total, t2 - t0))
print("peer smtplib        %8.1f msg/s  (%.2f s; one connection, nothing recorded)" % (peer, t4 - t3))
print("ratio run/peer      %8.2f" % (run / peer))
print("ratio queue+run/peer%8.2f" % (total / peer))
PY
