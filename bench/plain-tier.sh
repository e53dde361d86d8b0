#!/usr/bin/env bash
# The plain tier's no-change cost on a large folder (servers without
# CONDSTORE/QRESYNC, as Microsoft's): a real Dovecot with those capabilities
# hidden (imap_capability), one folder of N small messages, measured in the
# same run against the bare STATUS round trip.
#
#   bench/plain-tier.sh [--count N] [--keep] [--label TEXT]
#
# Environment: MK_BIN (default build/mailkeep), MK_BEFORE (optional: another
# mailkeep build measured interleaved with MK_BIN in the same run), MK_BUILD
# (build dir holding imap-fetch-ceiling, default build/).
#
#   status_ms    median of 5 runs of `imap-fetch-ceiling --status` (process
#                start to exit: connect, TLS, LOGIN, LIST-STATUS, LOGOUT): the
#                least any client pays to learn whether anything changed.
#   nochange_ms  median of 5 `mailkeep sync` runs with nothing changed, timed
#                the same way (within the full-scan interval).
#   arrival_ms   median of 3 runs each after one new message in the folder,
#                against the STATUS ceiling right after an arrival (Dovecot
#                re-reads the Maildir then, whoever asks).
#   fullscan_ms  median of 3 no-change runs that do the bounded-interval full
#                flag scan (the scan time in the store set back by a day).
#   ratio        nochange_ms / status_ms (and fullscan_ms / status_ms).
# Results are appended to bench/out/plain-tier-results.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out
MK_BIN=${MK_BIN:-$ROOT/build/mailkeep}
MK_BUILD=${MK_BUILD:-$ROOT/build}
FIXTURE=$ROOT/tests/fixture/dovecot.sh
CEILING=$MK_BUILD/imap-fetch-ceiling
COUNT=50000
KEEP=no
LABEL=$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
while [ $# -gt 0 ]; do
	case $1 in
	--count) COUNT=${2:?}; shift 2 ;;
	--keep) KEEP=yes; shift ;;
	--label) LABEL=${2:?}; shift 2 ;;
	*) echo "plain-tier.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
log() { echo "plain-tier.sh: $*" >&2; }
[ -x "$CEILING" ] || { log "build imap-fetch-ceiling first"; exit 1; }
now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

mkdir -p "$OUT"
RUN=$(mktemp -d "$OUT/plain.XXXXXX")
FX=$RUN/fx
cleanup() {
	bash "$FIXTURE" stop "$FX" >/dev/null 2>&1 || true
	[ "$KEEP" = yes ] && log "kept $RUN" || rm -rf "$RUN"
}
trap cleanup EXIT

# A Maildir with COUNT small messages in INBOX, written directly (fast;
# the no-change cost depends on the count, not on sizes).
CORPUS=$OUT/corpus-plain-$COUNT
if [ ! -f "$CORPUS/done" ]; then
	log "writing $COUNT messages to $CORPUS"
	rm -rf "$CORPUS"
	python3 - "$CORPUS/Maildir" "$COUNT" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for d in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
for i in range(n):
    flags = "S" if i % 3 else ""
    name = "%d.M%dP1.bench:2,%s" % (1700000000 + i, i, flags)
    with open(os.path.join(root, "cur", name), "w") as f:
        f.write("From: a%d@example.org\r\nTo: b@example.org\r\nSubject: message %d\r\n"
                "Message-ID: <p%d@example.org>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
                "body %d\r\n" % (i % 97, i, i, i))
PY
	touch "$CORPUS/done"
fi
mkdir -p "$FX/mail/alice"
cp -al "$CORPUS/Maildir" "$FX/mail/alice/Maildir"
bash "$FIXTURE" start "$FX" --capability "IMAP4rev1 LITERAL+ AUTH=PLAIN SPECIAL-USE" >/dev/null
# shellcheck disable=SC1091
. "$FX/env"

# sync_once NAME BIN: one quiet sync into data dir NAME.
sync_once() {
	"$2" --data "$RUN/$1" sync --user alice --imap "imaps://127.0.0.1:$IMAPS_PORT" \
		--login "$IMAP_USER" --password-file "$PASS_FILE" --ca-file "$CA_FILE" --quiet
}
ceiling_ms() {
	local t0
	t0=$(now_ns)
	"$CEILING" 127.0.0.1 "$IMAPS_PORT" "$IMAP_USER" "$PASS_FILE" "$CA_FILE" --status >/dev/null
	ms_since "$t0"
}
timed_sync() {
	local t0
	t0=$(now_ns)
	sync_once "$1" "$2" >/dev/null
	ms_since "$t0"
}
append_one() {
	python3 - "$IMAPS_PORT" "$IMAP_USER" "$PASS_FILE" "$CA_FILE" "$1" <<'PY'
import imaplib, ssl, sys
port, user, pwfile, ca, i = sys.argv[1:6]
c = imaplib.IMAP4_SSL("127.0.0.1", int(port), ssl_context=ssl.create_default_context(cafile=ca))
c.login(user, open(pwfile).read().strip())
c.append("INBOX", None, None, b"Subject: new %s\r\n\r\nnew mail\r\n" % i.encode())
c.logout()
PY
}
# The binaries compared in this run: "after" (MK_BIN) and, when MK_BEFORE is
# set, "before" (another build), interleaved so both see the same load.
NAMES=(after)
BINS=("$MK_BIN")
if [ -n "${MK_BEFORE:-}" ]; then
	NAMES+=(before)
	BINS+=("$MK_BEFORE")
fi
for k in "${!NAMES[@]}"; do
	"${BINS[$k]}" --data "$RUN/${NAMES[$k]}" init >/dev/null
	"${BINS[$k]}" --data "$RUN/${NAMES[$k]}" user add alice >/dev/null
	log "${NAMES[$k]}: first sync of $COUNT messages (untimed)"
	sync_once "${NAMES[$k]}" "${BINS[$k]}" | tee "$RUN/first" >&2
	grep -q plain "$RUN/first" || { log "not the plain tier"; exit 1; }
	sync_once "${NAMES[$k]}" "${BINS[$k]}" >/dev/null # records the scan
done
ceiling_ms >/dev/null

# No change: 5 rounds of STATUS ceiling and each binary's sync.
for r in 1 2 3 4 5; do
	ceiling_ms >>"$RUN/status"
	for k in "${!NAMES[@]}"; do
		timed_sync "${NAMES[$k]}" "${BINS[$k]}" >>"$RUN/nochange-${NAMES[$k]}"
	done
done
# New mail: each timed run follows exactly one APPEND (Dovecot re-reads a
# Maildir of COUNT files then, whoever asks next), the STATUS ceiling too.
for r in 1 2 3; do
	append_one "c$r"
	ceiling_ms >>"$RUN/arrival-status"
	for k in "${!NAMES[@]}"; do
		append_one "${NAMES[$k]}$r"
		# The others have not seen this one: they sync it in their turn.
		timed_sync "${NAMES[$k]}" "${BINS[$k]}" >>"$RUN/arrival-${NAMES[$k]}"
	done
	# Bring every store level again (untimed).
	for k in "${!NAMES[@]}"; do sync_once "${NAMES[$k]}" "${BINS[$k]}" >/dev/null; done
done
# The bounded-interval full scan of "after": its scan time set back a day.
for r in 1 2 3; do
	python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('UPDATE mailboxes SET plain_scan_at = plain_scan_at - 86400'); c.commit()" "$RUN/after/users/alice/store.db"
	timed_sync after "$MK_BIN" >>"$RUN/fullscan"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }'; }
S=$(median <"$RUN/status")
AS=$(median <"$RUN/arrival-status")
F=$(median <"$RUN/fullscan")
{
	echo "plain tier, one folder of $COUNT messages, $(date -u +%Y-%m-%dT%H:%MZ), $LABEL," \
		"load $(cut -d' ' -f1-3 /proc/loadavg):"
	echo "  STATUS ceiling: no change $S ms, after an arrival $AS ms"
	for k in "${!NAMES[@]}"; do
		N=$(median <"$RUN/nochange-${NAMES[$k]}")
		A=$(median <"$RUN/arrival-${NAMES[$k]}")
		echo "  ${NAMES[$k]}: no-change $N ms (x$(ratio "$N" "$S")), new mail $A ms (x$(ratio "$A" "$AS"))"
	done
	echo "  after, bounded-interval full scan: $F ms (x$(ratio "$F" "$S"))"
} | tee -a "$OUT/plain-tier-results.txt"
