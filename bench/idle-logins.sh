#!/usr/bin/env bash
# Bench 3 of issue #11: what a no-change interval costs while serve runs.
#
#   bench/idle-logins.sh [--accounts N] [--interval S] [--intervals K]
#                        (defaults 50 accounts, 5 s, 3 intervals)
#
# N Dovecot users (the fixture, real Dovecot on loopback), one hub user with
# N accounts, no new mail. serve runs twice in the same run, each for K
# scheduler rounds after its first round:
#   push on   provider push watches every account; the scheduler leaves the
#             accounts whose push connection is idle alone (full sync every
#             full_sync_interval, 24 h here)
#   push off  (--push off) every round logs in to every account
# Counted per scheduler round (from the end of one round, as its log line
# says, to the end of the next: the sync_interval wait and the round): logins
# Dovecot accepted (its log, "imap-login: Info: Login:"), serve's CPU time
# (/proc/PID/stat, utime + stime) and the seconds it took.
# Target: 0 logins per interval with push, against N without.
set -euo pipefail
cd "$(dirname "$0")/.."
N=50
INTERVAL=5
K=3
while [ $# -gt 0 ]; do
	case $1 in
	--accounts) N=${2:?}; shift 2 ;;
	--interval) INTERVAL=${2:?}; shift 2 ;;
	--intervals) K=${2:?}; shift 2 ;;
	*) echo "usage: $0 [--accounts N] [--interval S] [--intervals K]" >&2; exit 2 ;;
	esac
done
MK_BIN=${MK_BIN:-$PWD/build/mailkeep}
[ -x "$MK_BIN" ] || { echo "idle-logins.sh: build mailkeep first ($MK_BIN)" >&2; exit 1; }
command -v dovecot >/dev/null || { echo "idle-logins.sh: needs dovecot" >&2; exit 1; }
RUN=$(mktemp -d /tmp/mk-bench-idle.XXXXXX)
chmod 755 "$RUN"
SERVE_PID=
cleanup() {
	[ -z "$SERVE_PID" ] || kill "$SERVE_PID" 2>/dev/null || true
	bash tests/fixture/dovecot.sh stop "$RUN/fx" >/dev/null 2>&1 || true
	rm -rf "$RUN"
}
trap cleanup EXIT

bash tests/fixture/dovecot.sh start "$RUN/fx" --users "$N" >/dev/null
# shellcheck disable=SC1091
. "$RUN/fx/env"
D=$RUN/data
"$MK_BIN" --data "$D" init >/dev/null
printf 'bench hub password' >"$RUN/hub.pass"
"$MK_BIN" --data "$D" user add bench --password-file "$RUN/hub.pass" >/dev/null
for u in $USERS; do
	"$MK_BIN" --data "$D" account add --user bench --imap "imaps://127.0.0.1:$IMAPS_PORT" \
		--login "$u" --password-file "$RUN/fx/$u.pass" --ca-file "$CA_FILE" \
		--consent --no-check >/dev/null
done

logins() { grep -c "imap-login: Info: Login:" "$RUN/fx/dovecot.log" || true; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVE_PID/stat"; }
TICKS=$(getconf CLK_TCK)

rounds() {
	local c
	c=$(grep -c "scheduler: round:" "$RUN/$1.out" 2>/dev/null) || true
	echo "${c:-0}"
}

# run_serve NAME ARGS...: serve until its first round is over, then K more
# rounds (the scheduler's log line at each round's end) counted; prints
# "logins cpu_ms seconds" per round (round end to round end: the round and
# the interval after it).
run_serve() {
	local name=$1
	shift
	"$MK_BIN" --data "$D" serve --listen 127.0.0.1:0 --sync-interval "$INTERVAL" "$@" \
		>"$RUN/$name.out" 2>"$RUN/$name.err" &
	SERVE_PID=$!
	wait_rounds() {
		local t=0
		until [ "$(rounds "$name")" -ge "$1" ]; do
			kill -0 "$SERVE_PID" 2>/dev/null || { cat "$RUN/$name.err" >&2; exit 1; }
			sleep 0.05
			t=$((t + 1))
			[ "$t" -lt 12000 ] || { echo "idle-logins.sh: $name: no round" >&2; exit 1; }
		done
	}
	wait_rounds 1
	local i l0 c0 t0 l1 c1 t1
	l0=$(logins)
	c0=$(cpu_ticks)
	t0=$(date +%s.%N)
	for ((i = 1; i <= K; i++)); do
		wait_rounds $((i + 1))
		l1=$(logins)
		c1=$(cpu_ticks)
		t1=$(date +%s.%N)
		echo "$((l1 - l0)) $(((c1 - c0) * 1000 / TICKS)) $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
		l0=$l1
		c0=$c1
		t0=$t1
	done
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID" || { echo "idle-logins.sh: $name: serve did not stop cleanly" >&2; exit 1; }
	SERVE_PID=
	grep "scheduler: round:" "$RUN/$name.out" | sed "s/^/  $name: /" >&2
}

ON=$(run_serve push-on --full-sync-interval 86400)
OFF=$(run_serve push-off --push off)

echo "idle-logins: $N accounts, no new mail, scheduler every $INTERVAL s, $K rounds each"
echo "(a round = from one round's end to the next: the wait of sync_interval and the round)"
printf '%-6s %14s %16s %12s %14s %12s %14s\n' round "logins (push)" "logins (polling)" \
	"CPU ms push" "CPU ms polling" "s (push)" "s (polling)"
paste -d' ' <(echo "$ON") <(echo "$OFF") |
	awk '{ printf "%-6d %14d %16d %12d %14d %12s %14s\n", NR, $1, $4, $2, $5, $3, $6 }'
SUM_ON=$(echo "$ON" | awk '{ s += $1 } END { print s }')
SUM_OFF=$(echo "$OFF" | awk '{ s += $1 } END { print s }')
echo "logins per round: push $(awk -v s="$SUM_ON" -v k="$K" 'BEGIN { printf "%.1f", s / k }')" \
	"(target 0), polling $(awk -v s="$SUM_OFF" -v k="$K" 'BEGIN { printf "%.1f", s / k }')" \
	"(N = $N)"
[ "$SUM_ON" -eq 0 ] || { echo "idle-logins.sh: FAIL: logins while push watched every account" >&2; exit 1; }
