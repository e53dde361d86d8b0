#!/usr/bin/env bash
# Sync benchmark: mailkeep against the least possible work and against mbsync,
# all measured in the same run against the same throwaway Dovecot.
#
#   bench/sync.sh [--count N] [--seed S] [--big] [--big-count N] [--keep]
#
# Environment: MK_BIN (mailkeep binary, default build/mailkeep), MK_BUILD
# (build dir holding imap-fetch-ceiling, default build/). The messages come
# from bench/corpus.py (a seeded generator kept in the repository).
#
# What each number means:
#   ceiling_s   Wall time of bench/imap-fetch-ceiling, best of 3: connect, TLS,
#               LOGIN, LIST, and for every folder SELECT + UID FETCH 1:*
#               BODY.PEEK[] with the bodies counted and dropped. No client can
#               download the account with less work. A first, untimed pass warms
#               the page cache and Dovecot's indexes, so every timed run
#               (ceiling, mbsync, mailkeep) sees a warm server.
#   mbsync_s    Wall time of one `mbsync -a` (isync, default settings: fsync on)
#               from an empty Maildir to a full copy.
#   mailkeep_s  Wall time of one `mailkeep sync` from an empty data dir (after
#               `mailkeep init`) to a full copy.
#   rss_mb      Peak resident set size of that mailkeep sync (/usr/bin/time %M).
#   nochange_ms Median of 5 further `mailkeep sync` runs with nothing changed on
#               the server: the cost of "is there anything new?".
#   big_nochange_ms (--big) The same against a 100k-message account, to show
#               the no-change cost does not grow with the account.
# Ratios and targets:
#   mailkeep/ceiling <= 2.0   mbsync/mailkeep >= 3.0
#   nochange_ms <= 50         rss_mb <= 64
# MB/s figures divide the bytes the ceiling client counted by the wall time.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out
MK_BIN=${MK_BIN:-$ROOT/build/mailkeep}
MK_BUILD=${MK_BUILD:-$ROOT/build}
FIXTURE=$ROOT/tests/fixture/dovecot.sh
CORPUS=$ROOT/bench/corpus.py

COUNT=10000
SEED=1
BIG=no
BIG_COUNT=100000
KEEP=no
while [ $# -gt 0 ]; do
	case $1 in
	--count) COUNT=${2:?}; shift 2 ;;
	--seed) SEED=${2:?}; shift 2 ;;
	--big) BIG=yes; shift ;;
	--big-count) BIG=yes; BIG_COUNT=${2:?}; shift 2 ;;
	--keep) KEEP=yes; shift ;;
	-h | --help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "sync.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

log() { echo "sync.sh: $*" >&2; }
die() { log "$*"; exit 1; }

[ -f "$CORPUS" ] || die "corpus generator not found at $CORPUS"
command -v dovecot >/dev/null || die "dovecot is not installed"
command -v mbsync >/dev/null || die "mbsync (isync) is not installed"
if [ ! -x /usr/bin/time ]; then
	log "installing GNU time for peak RSS"
	apt-get install -y time >/dev/null 2>&1 || die "/usr/bin/time missing (apt-get install time)"
fi

mkdir -p "$OUT"
RUN=$(mktemp -d "$OUT/run.XXXXXX")
FIXTURES=()
cleanup() {
	local d
	for d in "${FIXTURES[@]}"; do
		bash "$FIXTURE" stop "$d" >/dev/null 2>&1 || true
	done
	if [ "$KEEP" = no ]; then
		rm -rf "$RUN"
	else
		log "kept $RUN"
	fi
}
trap cleanup EXIT

# The ceiling client: from the CMake build if there, else compiled here.
CEILING=$MK_BUILD/imap-fetch-ceiling
if [ ! -x "$CEILING" ]; then
	CEILING=$OUT/imap-fetch-ceiling
	if [ ! -x "$CEILING" ] || [ "$ROOT/bench/imap-fetch-ceiling.c" -nt "$CEILING" ]; then
		log "compiling $CEILING"
		cc -std=c11 -O2 -D_GNU_SOURCE -o "$CEILING" "$ROOT/bench/imap-fetch-ceiling.c" \
			"$(pkg-config --cflags openssl)" "$(pkg-config --libs openssl)"
	fi
fi

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# corpus_dir COUNT SEED: a cached Maildir for user alice, generated once.
corpus_dir() {
	local dir=$OUT/corpus-$1-s$2
	if [ ! -f "$dir/done" ]; then
		log "generating corpus: $1 messages, seed $2 (cached in $dir)"
		rm -rf "$dir"
		mkdir -p "$dir"
		python3 "$CORPUS" --maildir "$dir/Maildir" --count "$1" --seed "$2" >&2
		touch "$dir/done"
	fi
	echo "$dir/Maildir"
}

# start_fixture NAME MAILDIR: starts a fixture serving a hard-linked copy of
# MAILDIR (Dovecot only adds its own files and renames messages, so the cache
# is never changed) and sets FX to its directory.
start_fixture() {
	FX=$RUN/$1
	mkdir -p "$FX/mail/alice"
	cp -al "$2" "$FX/mail/alice/Maildir"
	FIXTURES+=("$FX")
	bash "$FIXTURE" start "$FX" >/dev/null
}

run_ceiling() {
	"$CEILING" 127.0.0.1 "$IMAPS_PORT" "$IMAP_USER" "$PASS_FILE" "$CA_FILE" "$@"
}

# status_ceiling_ms FILE: median wall time (process start to exit, timed like
# the mailkeep runs) of 5 minimal clients that log in, LIST-STATUS every
# folder and log out: the least any client pays to learn nothing changed.
status_ceiling_ms() {
	for i in 1 2 3 4 5; do
		t0=$(now_ns)
		run_ceiling --status >/dev/null
		ms_since "$t0"
	done >"$1"
	median <"$1"
}

# mailkeep_sync DATA_DIR: one quiet sync of alice from the current fixture.
mailkeep_sync() {
	"$MK_BIN" --data "$1" sync --user alice \
		--imap "imaps://127.0.0.1:$IMAPS_PORT" --login "$IMAP_USER" \
		--password-file "$PASS_FILE" --ca-file "$CA_FILE" --quiet
}

MAILDIR_SRC=$(corpus_dir "$COUNT" "$SEED")
start_fixture main "$MAILDIR_SRC"
# shellcheck disable=SC1091
. "$FX/env"

# (1) The ceiling: one warm-up pass, then the best of 3.
log "warm-up pass (page cache, Dovecot indexes)"
warm=$(run_ceiling)
log "  $warm"
best=
for i in 1 2 3; do
	r=$(run_ceiling)
	s=${r##*seconds=}
	log "  ceiling run $i: $r"
	if [ -z "$best" ] || awk -v a="$s" -v b="$best" 'BEGIN { exit !(a < b) }'; then
		best=$s
	fi
done
CEIL_S=$best
# "folders=F messages=M bytes=B seconds=S"
read -r FOLDERS MESSAGES BYTES _ <<<"$(tr -c '0-9.\n' ' ' <<<"$warm")"

# (2) mbsync from empty, default settings.
MB=$RUN/mbsync
mkdir -p "$MB/mail"
cat >"$MB/mbsyncrc" <<EOF
IMAPAccount fixture
Host 127.0.0.1
Port $IMAPS_PORT
User $IMAP_USER
PassCmd "cat $PASS_FILE"
SSLType IMAPS
CertificateFile $CA_FILE

IMAPStore remote
Account fixture

MaildirStore local
Path $MB/mail/
Inbox $MB/mail/INBOX
SubFolders Verbatim

Channel all
Far :remote:
Near :local:
Patterns *
Create Near
SyncState *
EOF
log "mbsync from empty"
t0=$(now_ns)
/usr/bin/time -f %M -o "$MB/rss" mbsync -q -c "$MB/mbsyncrc" -a >"$MB/log" 2>&1 ||
	die "mbsync failed: $(tail -n 5 "$MB/log")"
MBSYNC_MS=$(ms_since "$t0")
MBSYNC_RSS_MB=$(($(cat "$MB/rss") / 1024))
MBSYNC_N=$(find "$MB/mail" -path '*/cur/*' -type f -o -path '*/new/*' -type f | wc -l)
[ "$MBSYNC_N" -eq "$MESSAGES" ] || log "warning: mbsync copied $MBSYNC_N of $MESSAGES messages"

# (3)-(5) mailkeep, if it can sync yet.
MK_OK=no
MK_S='' MK_RSS_MB='' NOCHANGE_MS='' BIG_NOCHANGE_MS='' STATUS_MS='' BIG_STATUS_MS=''
# A stub CLI may exit 0 for anything: the help must at least name --imap.
if [ -x "$MK_BIN" ] && "$MK_BIN" sync --help 2>&1 | grep -q -- --imap; then
	MK_OK=yes
else
	log "SKIP mailkeep: '$MK_BIN sync --help' failed or does not mention --imap" \
		"(not built, or no sync command yet)"
fi

# A mailkeep failure is reported in the table; the other figures still count.
MK_FAIL=''
mk_failed() {
	MK_FAIL="$1: $(tail -n 3 "$RUN/mk-log" | tr '\n' ' ')"
	log "mailkeep $MK_FAIL"
	MK_OK=failed
}

if [ "$MK_OK" = yes ]; then
	D=$RUN/mk-data
	{ "$MK_BIN" --data "$D" init && "$MK_BIN" --data "$D" user add alice; } \
		>"$RUN/mk-log" 2>&1 || mk_failed "init failed"
fi
if [ "$MK_OK" = yes ]; then
	log "mailkeep sync from empty"
	t0=$(now_ns)
	/usr/bin/time -f %M -o "$RUN/mk-rss" "$MK_BIN" --data "$D" sync --user alice \
		--imap "imaps://127.0.0.1:$IMAPS_PORT" --login "$IMAP_USER" \
		--password-file "$PASS_FILE" --ca-file "$CA_FILE" --quiet >>"$RUN/mk-log" 2>&1 ||
		mk_failed "full sync failed"
	MK_MS=$(ms_since "$t0")
fi
if [ "$MK_OK" = yes ]; then
	MK_S=$(secs "$MK_MS")
	MK_RSS_MB=$(($(cat "$RUN/mk-rss") / 1024))
	stored=$(du -sb "$D" | cut -f1)
	if [ "$stored" -lt $((BYTES / 10)) ]; then
		log "WARNING: mailkeep stored only $stored bytes for $BYTES bytes of mail;" \
			"its figures below are suspect"
	fi

	log "mailkeep no-change sync x5"
	for i in 1 2 3 4 5; do
		t0=$(now_ns)
		mailkeep_sync "$D" >/dev/null 2>>"$RUN/mk-log" || { mk_failed "no-change sync failed"; break; }
		ms_since "$t0" >>"$RUN/nochange"
	done
	[ "$MK_OK" = yes ] && NOCHANGE_MS=$(median <"$RUN/nochange")
	STATUS_MS=$(status_ceiling_ms "$RUN/status")
fi

if [ "$BIG" = yes ] && [ "$MK_OK" = yes ]; then
	bash "$FIXTURE" stop "$FX"
	BIG_SRC=$(corpus_dir "$BIG_COUNT" "$SEED")
	start_fixture big "$BIG_SRC"
	# shellcheck disable=SC1091
	. "$FX/env"
	log "big: warm-up and first mailkeep sync of $BIG_COUNT messages (untimed)"
	run_ceiling >/dev/null
	DB=$RUN/mk-data-big
	"$MK_BIN" --data "$DB" init >/dev/null
	"$MK_BIN" --data "$DB" user add alice >/dev/null
	if mailkeep_sync "$DB" >/dev/null 2>>"$RUN/mk-log"; then
		for i in 1 2 3 4 5; do
			t0=$(now_ns)
			mailkeep_sync "$DB" >/dev/null 2>>"$RUN/mk-log" ||
				{ log "big no-change sync failed"; break; }
			ms_since "$t0" >>"$RUN/big-nochange"
		done
		[ -s "$RUN/big-nochange" ] && BIG_NOCHANGE_MS=$(median <"$RUN/big-nochange")
		BIG_STATUS_MS=$(status_ceiling_ms "$RUN/big-status")
	else
		log "big first sync failed: $(tail -n 3 "$RUN/mk-log" | tr '\n' ' ')"
	fi
elif [ "$BIG" = yes ]; then
	log "SKIP --big: needs a working mailkeep sync"
fi

# Report.
CEIL_MS=$(awk -v s="$CEIL_S" 'BEGIN { printf "%d", s * 1000 }')
# Parenthesised: a bare ">" in awk's printf would redirect to a file.
mbps() { awk -v b="$BYTES" -v ms="$1" 'BEGIN { printf "%.1f", (ms > 0 ? b / 1e6 / (ms / 1000) : 0) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
verdict() { awk -v v="$1" -v t="$3" -v op="$2" \
	'BEGIN { ok = (op == "<=") ? v <= t : v >= t; print ok ? "ok" : "MISSED" }'; }

{
	echo "corpus: $COUNT messages (seed $SEED), $FOLDERS folders, $MESSAGES messages served," \
		"$(awk -v b="$BYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
	printf '%-22s %10s %10s %10s\n' "client" "seconds" "MB/s" "peak MB"
	printf '%-22s %10s %10s %10s\n' "ceiling (best of 3)" "$(secs "$CEIL_MS")" "$(mbps "$CEIL_MS")" "-"
	printf '%-22s %10s %10s %10s\n' "mbsync" "$(secs "$MBSYNC_MS")" "$(mbps "$MBSYNC_MS")" "$MBSYNC_RSS_MB"
	if [ "$MK_OK" = yes ]; then
		printf '%-22s %10s %10s %10s\n' "mailkeep" "$MK_S" "$(mbps "$MK_MS")" "$MK_RSS_MB"
		echo
		r1=$(ratio "$MK_MS" "$CEIL_MS")
		r2=$(ratio "$MBSYNC_MS" "$MK_MS")
		printf '%-28s %8s   target %-8s %s\n' "mailkeep/ceiling" "$r1" "<= 2.0" "$(verdict "$r1" "<=" 2.0)"
		printf '%-28s %8s   target %-8s %s\n' "mbsync/mailkeep" "$r2" ">= 3.0" "$(verdict "$r2" ">=" 3.0)"
		printf '%-28s %8s   target %-8s %s\n' "no-change sync ms (median)" "$NOCHANGE_MS" "<= 50" "$(verdict "$NOCHANGE_MS" "<=" 50)"
		printf '%-28s %8s   target %-8s %s\n' "peak RSS MB" "$MK_RSS_MB" "<= 64" "$(verdict "$MK_RSS_MB" "<=" 64)"
		printf '%-28s %8s   (login + LIST-STATUS + logout, same timing)\n' "  no-change ceiling ms" "$STATUS_MS"
		printf '%-28s %8s\n' "  mailkeep over ceiling ms" "$((NOCHANGE_MS - STATUS_MS))"
		if [ -n "$BIG_NOCHANGE_MS" ]; then
			printf '%-28s %8s   target %-8s %s\n' "no-change ms, $BIG_COUNT msgs" "$BIG_NOCHANGE_MS" "<= 50" "$(verdict "$BIG_NOCHANGE_MS" "<=" 50)"
			printf '%-28s %8s   (the server alone; Maildir STATUS grows with the folder)\n' "  no-change ceiling ms" "$BIG_STATUS_MS"
			printf '%-28s %8s   (does not grow: compare with the line above)\n' "  mailkeep over ceiling ms" "$((BIG_NOCHANGE_MS - BIG_STATUS_MS))"
		fi
	elif [ "$MK_OK" = failed ]; then
		echo
		echo "mailkeep: $MK_FAIL"
		echo "mbsync/ceiling = $(ratio "$MBSYNC_MS" "$CEIL_MS")"
	else
		echo
		echo "mailkeep: skipped ($MK_BIN cannot sync yet); mbsync/ceiling = $(ratio "$MBSYNC_MS" "$CEIL_MS")"
	fi
} | tee "$OUT/sync-results.txt"
