#!/usr/bin/env bash
# The audit log after a crash, and tampering told apart from it (issue #9
# item 5). `device add` (a hub.db commit and one audit entry) is killed at
# every durable commit in turn (MK_CRASH_AFTER_COMMIT=N); after each kill
# `audit --verify` must pass, recovering an entry written just before the kill
# and removing an incomplete last line. Entries added, edited or re-hashed
# behind the hub's back, also in the very state a crash leaves, must still be
# reported as tampering.
set -euo pipefail

SRC=${MK_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BIN=${MK_BIN:-$SRC/build/mailkeep}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
D=$WORK/data
LOG=$D/users/alice/audit.log

fail() {
	echo "FAIL: $*" >&2
	exit 1
}
mk() { "$BIN" --data "$D" "$@"; }
verify_ok() {
	mk audit --user alice --verify >"$WORK/v.out" 2>&1 ||
		fail "$1: verify failed: $(cat "$WORK/v.out")"
}
verify_tamper() {
	if mk audit --user alice --verify >"$WORK/v.out" 2>&1; then
		fail "$1: verify passed: $(cat "$WORK/v.out")"
	fi
	grep -q "NOT intact" "$WORK/v.out" || fail "$1: unexpected output: $(cat "$WORK/v.out")"
}
# Append a well-formed entry chained to the log's last line, its hash
# computed as the format says (anyone can do this: the chain has no key).
forge() {
	python3 - "$LOG" "$1" <<'EOF'
import hashlib, json, sys
path, event = sys.argv[1], sys.argv[2]
last = open(path, "rb").read().splitlines()[-1]
prev = json.loads(last)
seq = prev["seq"] + 1
body = ('{"seq":%d,"time":"2026-01-01T00:00:00Z","event":"%s","account":"",'
        '"detail":{},"prev":"%s"}' % (seq, event, prev["hash"]))
h = hashlib.sha256(body.encode()).hexdigest()
open(path, "ab").write((body[:-1] + ',"hash":"%s"}\n' % h).encode())
EOF
}
# Replace the last entry by an edited copy with a correct hash.
rehash_last() {
	python3 - "$LOG" <<'EOF'
import hashlib, json, sys
path = sys.argv[1]
lines = open(path, "rb").read().splitlines()
last = lines[-1].decode()
body = last[: last.index(',"hash":')] + "}"
body = body.replace('"event":"device.added"', '"event":"device.revoked"')
h = hashlib.sha256(body.encode()).hexdigest()
lines[-1] = (body[:-1] + ',"hash":"%s"}' % h).encode()
open(path, "wb").write(b"\n".join(lines) + b"\n")
EOF
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
pending() { sqlq "$D/hub.db" "SELECT coalesce(audit_pending, '') FROM users WHERE name = 'alice'"; }

mk init >/dev/null
mk user add alice >/dev/null

# 1. Kill at every commit of `device add`; verify passes after each.
recovered=0 kills=0
for n in $(seq 1 20); do
	set +e
	MK_CRASH_AFTER_COMMIT=$n mk device add --user alice "d$n" >/dev/null 2>&1
	rc=$?
	set -e
	verify_ok "kill after commit $n (exit $rc)"
	grep -q "recovered" "$WORK/v.out" && recovered=$((recovered + 1))
	[ "$rc" -eq 0 ] && break
	kills=$((kills + 1))
done
[ "$kills" -ge 3 ] || fail "expected at least 3 kills, got $kills"
[ "$recovered" -ge 1 ] || fail "no kill fell between the append and the head update"
verify_ok "after recovery"
grep -q "recovered" "$WORK/v.out" && fail "recovered twice"

# 2. An incomplete last line (an append cut off before it was synced) after
# the recorded head is removed, and appends go on.
printf '{"seq":99,"time":"2026-01-0' >>"$LOG"
verify_ok "torn tail"
grep -q "incomplete last line" "$WORK/v.out" || fail "torn tail not reported: $(cat "$WORK/v.out")"
[ "$(tail -c 1 "$LOG" | od -An -c | tr -d ' ')" = '\n' ] || fail "torn tail not removed"
mk device add --user alice after-torn >/dev/null
verify_ok "append after torn tail"
# ... and the hub trims one itself before its next append.
printf '{"seq":' >>"$LOG"
mk device add --user alice after-torn2 >/dev/null
verify_ok "append trims a torn tail"

# 3. Tampering is still tampering.
cp "$LOG" "$WORK/good.log"
cp "$D/hub.db" "$WORK/good.db"
restore() {
	cp "$WORK/good.log" "$LOG"
	cp "$WORK/good.db" "$D/hub.db"
	rm -f "$D/hub.db-wal" "$D/hub.db-shm"
}
# 3a. A forged, correctly chained and hashed extra entry.
forge user.signin
verify_tamper "forged extra entry"
restore
# 3b. An edited entry (hash no longer matches).
sed -i '2s/device.added/device.revoked/' "$LOG"
verify_tamper "edited entry"
restore
# 3c. Two extra entries.
forge user.signin
forge user.signin
verify_tamper "two extra entries"
restore
# 3d. The state a crash leaves (the hub announced an entry) with a forged
# entry instead of the announced one.
set +e
for n in $(seq 1 10); do
	MK_CRASH_AFTER_COMMIT=$n mk device add --user alice "p$n" >/dev/null 2>&1
	[ -n "$(pending)" ] && [ "$(wc -l <"$LOG")" -eq "$(sqlq "$D/hub.db" \
		"SELECT audit_count FROM users WHERE name = 'alice'")" ] && break
done
set -e
[ -n "$(pending)" ] || fail "no kill left an announced entry unwritten"
cp "$LOG" "$WORK/pending.log"
cp "$D/hub.db" "$WORK/pending.db"
forge user.signin
verify_tamper "forged entry in place of the announced one"
cp "$WORK/pending.log" "$LOG"
cp "$WORK/pending.db" "$D/hub.db"
rm -f "$D/hub.db-wal" "$D/hub.db-shm"
# 3e. The announced entry written, then edited and re-hashed.
set +e
for n in $(seq 1 10); do
	cp "$WORK/pending.log" "$LOG"
	cp "$WORK/pending.db" "$D/hub.db"
	rm -f "$D/hub.db-wal" "$D/hub.db-shm"
	MK_CRASH_AFTER_COMMIT=$n mk device add --user alice "q$n" >/dev/null 2>&1
	[ -n "$(pending)" ] && [ "$(wc -l <"$LOG")" -gt "$(sqlq "$D/hub.db" \
		"SELECT audit_count FROM users WHERE name = 'alice'")" ] && break
done
set -e
[ -n "$(pending)" ] || fail "no kill left the announced entry written but unrecorded"
rehash_last
verify_tamper "announced entry edited and re-hashed"
# 3f. Tampering is not made to look intact by the hub appending after it.
restore
forge user.signin
mk device add --user alice after-forgery >/dev/null
verify_tamper "forged entry, then a hub append"
grep -q "behind the hub's back" "$WORK/v.out" || fail "no alarm: $(cat "$WORK/v.out")"
restore
sed -i '$d' "$LOG" # the last entry dropped
mk device add --user alice after-truncation >/dev/null
verify_tamper "dropped entry, then a hub append"
# 3g. A torn line after an unrecorded forged entry.
restore
forge user.signin
printf '{"seq":' >>"$LOG"
verify_tamper "torn line after a forged entry"

echo "test-audit-crash: ok"
