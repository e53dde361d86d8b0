#!/usr/bin/env bash
# The web app on a large mailbox, in Debian's chromium (playwright-core)
# against a real `mailkeep serve --web-root` on loopback.
#
#   bench/web-bench.sh [--count N] [--runs R]   (default 100000 messages, 10 runs)
#
# Prints (bench/web-bench.mjs measures; timings are taken in the page):
#   bundle          the app's script and style, gzip -9 (target: script <= 150 KB)
#   first render    sign-in to the first rows of the INBOX of N messages, warm
#                   cache (target <= 300 ms), next to the same JMAP requests
#                   made bare (node fetch, no browser) in the same run
#   message open    click on a row to the message shown in the reader, p50
#                   and p95 (target p50 <= 100 ms): rows in order from the top
#                   (warm: the app fetched them ahead as the neighbours of the
#                   open one) and far rows (cold: nothing fetched ahead)
#   requests        the JMAP requests each screen makes and their sizes
#
# Seeding: N small, realistic messages (threads, some HTML, a few attachments,
# most read) written straight into a Maildir served by the Dovecot fixture,
# then one `mailkeep sync` (timed). The synced hub (not the Maildir) is kept in
# bench/out/web-seed-N-vV/ and reused by later runs (each run works on a copy),
# so only the first run pays for it. MK_BIN: the mailkeep binary (default
# build/mailkeep). MK_BENCH_WEB: a web app built before (scripts/build-web.sh
# DIR) to measure instead of this tree's (before/after comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=100000
RUNS=10
while [ $# -gt 0 ]; do
	case $1 in
	--count) COUNT=${2:?}; shift 2 ;;
	--runs) RUNS=${2:?}; shift 2 ;;
	*) echo "usage: $0 [--count N] [--runs R]" >&2; exit 2 ;;
	esac
done
MK_BIN=${MK_BIN:-$PWD/build/mailkeep}
[ -x "$MK_BIN" ] || { echo "web-bench: $MK_BIN not built" >&2; exit 1; }
[ -x "${MK_CHROMIUM:-/usr/bin/chromium}" ] || { echo "web-bench: chromium is not installed (scripts/setup.sh)" >&2; exit 1; }
if [ ! -d tests/web/node_modules/playwright-core ]; then
	(cd tests/web && npm ci --no-audit --no-fund --loglevel=error)
fi
OUT=$PWD/bench/out
mkdir -p "$OUT"
# Bump V when the generator or the seeding changes: a new seed is made.
V=1
SEED=$OUT/web-seed-$COUNT-v$V
HUB_PASSWORD="web bench password"

RUN=$(mktemp -d /tmp/mk-web-bench.XXXXXX)
chmod 755 "$RUN"
SERVE_PID=
cleanup() {
	[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null || true
	bash tests/fixture/dovecot.sh stop "$RUN/fx" >/dev/null 2>&1 || true
	rm -rf "$RUN"
}
trap cleanup EXIT

if [ -n "${MK_BENCH_WEB:-}" ]; then
	# A web app built before (scripts/build-web.sh DIR), e.g. of another commit: the
	# same run conditions for a before/after comparison.
	echo "web-bench: the web app in $MK_BENCH_WEB" >&2
	cp -a "$MK_BENCH_WEB" "$RUN/web"
else
	echo "web-bench: building the web app" >&2
	scripts/build-web.sh "$RUN/web" >"$RUN/build-web.log" 2>&1 || { cat "$RUN/build-web.log" >&2; exit 1; }
fi

if [ ! -f "$SEED/done" ]; then
	rm -rf "$SEED"
	mkdir -p "$SEED"
	t0=$(date +%s.%N)
	echo "web-bench: writing $COUNT messages into a Maildir" >&2
	python3 - "$RUN/fx/mail/alice/Maildir" "$COUNT" <<'PY'
# Small, realistic mail: most plain text of 1-3 KB, 10% with an HTML
# alternative, 2% with a small attachment, 30% replies in threads, 90% read,
# 2% flagged; dates over five years, newest last (the INBOX's top).
import os, random, sys, time, email.utils
md, count = sys.argv[1], int(sys.argv[2])
for d in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(md, d), exist_ok=True)
r = random.Random(1)
WORDS = ("alpha beta gamma delta report meeting invoice budget quarterly schedule review draft "
         "final update project server deploy release notes urgent question answer thanks regards "
         "friday monday lunch travel ticket hotel kündigung straße grüße résumé naïve").split()
NAMES = ["Alice Example", "Bob Müller", "Carol Ng", "Dave O'Brien", "Eve Dupont", "Frank Zhang",
         "Grace Hopper", "Heidi Svensson", "Ivan Petrov", "Judy Alvarez"]
def words(n):
    return " ".join(r.choice(WORDS) for _ in range(n))
def body(nbytes):
    out, size = [], 0
    while size < nbytes:
        line = words(r.randint(6, 14)).capitalize() + "."
        out.append(line)
        size += len(line) + 2
    return "\r\n".join(out)
def person():
    n = r.choice(NAMES)
    return email.utils.formataddr((n, n.split()[0].lower() + "@example.com"))
now = time.time()
start = now - 5 * 365 * 86400
threads = []
cur = os.path.join(md, "cur")
for i in range(count):
    when = start + (now - start) * i / count
    mid = "<web-%d@bench.example>" % i
    subj = words(r.randint(2, 7)).capitalize()
    hdr = ["From: " + person(), "To: Alice Example <alice@example.com>",
           "Date: " + email.utils.formatdate(when), "Message-ID: " + mid]
    if threads and r.random() < 0.3:
        parent_mid, parent_subj = r.choice(threads[-200:])
        subj = "Re: " + parent_subj
        hdr += ["In-Reply-To: " + parent_mid, "References: " + parent_mid]
    else:
        threads.append((mid, subj))
    hdr += ["Subject: " + subj, "MIME-Version: 1.0"]
    text = body(r.randint(300, 3000))
    k = r.random()
    if k < 0.10:
        html = "<html><body>" + "".join("<p>%s</p>" % l for l in text.split("\r\n")) + "</body></html>"
        hdr.append('Content-Type: multipart/alternative; boundary="b%d"' % i)
        msg = ("\r\n".join(hdr) + "\r\n\r\n--b%d\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--b%d\r\nContent-Type: text/html; "
               "charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--b%d--\r\n"
               % (i, text, i, html, i))
    elif k < 0.12:
        att = "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                      for _ in range(r.randint(2000, 20000)))
        att = "\r\n".join(att[j:j + 76] for j in range(0, len(att), 76))
        hdr.append('Content-Type: multipart/mixed; boundary="m%d"' % i)
        msg = ("\r\n".join(hdr) + "\r\n\r\n--m%d\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--m%d\r\nContent-Type: application/pdf; "
               "name=\"report-%d.pdf\"\r\nContent-Disposition: attachment; filename=\"report-%d.pdf\"\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n%s\r\n--m%d--\r\n" % (i, text, i, i, i, att, i))
    else:
        hdr += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"]
        msg = "\r\n".join(hdr) + "\r\n\r\n" + text + "\r\n"
    flags = ("F" if r.random() < 0.02 else "") + ("S" if i < count - 200 and r.random() < 0.9 else "")
    data = msg.encode()
    name = "%d.M%dP1.bench,S=%d:2,%s" % (int(when), i, len(data), flags)
    with open(os.path.join(cur, name), "wb") as f:
        f.write(data)
    os.utime(os.path.join(cur, name), (when, when))
PY
	bash tests/fixture/dovecot.sh start "$RUN/fx" >/dev/null
	# shellcheck disable=SC1091
	. "$RUN/fx/env"
	D=$SEED/data
	"$MK_BIN" --data "$D" init >/dev/null
	printf '%s' "$HUB_PASSWORD" >"$RUN/hub.pass"
	"$MK_BIN" --data "$D" user add alice --password-file "$RUN/hub.pass" >/dev/null
	"$MK_BIN" --data "$D" account add --user alice --imap "imaps://127.0.0.1:$IMAPS_PORT" \
		--login alice --password-file "$PASS_FILE" --ca-file "$CA_FILE" --consent >/dev/null
	t1=$(date +%s.%N)
	echo "web-bench: syncing $COUNT messages" >&2
	"$MK_BIN" --data "$D" sync --user alice --quiet >&2
	t2=$(date +%s.%N)
	# The full-text index, built now (serve would build it in the background
	# while the run measures).
	FTS_BIN=${MK_FTS_QUERY:-$(dirname "$MK_BIN")/fts-query}
	[ -x "$FTS_BIN" ] || cmake --build "$(dirname "$MK_BIN")" --target fts-query >&2
	"$FTS_BIN" "$D/users/alice/store.db" --index >&2
	t3=$(date +%s.%N)
	"$MK_BIN" --data "$D" device add --user alice web-bench | tail -n 1 >"$SEED/token"
	bash tests/fixture/dovecot.sh stop "$RUN/fx" >/dev/null
	rm -rf "$RUN/fx"
	awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v n="$COUNT" 'BEGIN {
		printf "seeded %d messages in %.0f s (Maildir + Dovecot start %.0f s, mailkeep sync %.0f s, full-text index %.0f s)\n",
			n, d - a, b - a, c - b, d - c }' | tee "$SEED/seed.txt" >&2
	touch "$SEED/done"
fi
echo "web-bench: $(cat "$SEED/seed.txt") (cached in $SEED)" >&2
# Each run works on a copy: the app marks what it opens read, sign-ins add
# web sessions.
cp -a "$SEED/data" "$RUN/data"
MK_NO_PROVIDER_PUSH=1 "$MK_BIN" --data "$RUN/data" serve --listen 127.0.0.1:0 --sync-interval 0 \
	--no-replay --web-root "$RUN/web" --access-log /dev/null >"$RUN/serve.out" 2>"$RUN/serve.err" &
SERVE_PID=$!
for _ in $(seq 100); do grep -q "session at" "$RUN/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/.*serving \(http[^ ]*\) .*/\1/p' "$RUN/serve.out")
[ -n "$URL" ] || { echo "web-bench: serve did not start:" >&2; cat "$RUN/serve.out" "$RUN/serve.err" >&2; exit 1; }

MK_BENCH_URL="$URL/" MK_BENCH_USER=alice MK_BENCH_PASSWORD="$HUB_PASSWORD" \
	MK_BENCH_TOKEN="$(cat "$SEED/token")" MK_BENCH_WEB_ROOT="$RUN/web" MK_BENCH_COUNT="$COUNT" \
	MK_BENCH_RUNS="$RUNS" node bench/web-bench.mjs | tee "$OUT/web-results.txt"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(/usr/bin/chromium --version 2>/dev/null)" | tee -a "$OUT/web-results.txt"
