#!/usr/bin/env bash
# Bench 3 of issue #11: what a no-change interval costs while serve runs.
#
#   bench/idle-logins.sh [--accounts N] [--interval S] [--intervals K]
#                        (defaults 50 accounts, 5 s, 3 intervals)
#
# N Dovecot users (the fixture, real Dovecot on loopback), one hub user with
# N accounts, no new mail. serve runs twice in the same run, each for K
# scheduler intervals after its first round:
#   push on   provider push watches every account; the scheduler leaves the
#             accounts whose push connection is idle alone (full sync every
#             full_sync_interval, 24 h here)
#   push off  (--push off) every round logs in to every account
# Counted per interval: logins Dovecot accepted (its log, "imap-login: Info:
# Login:"), and serve's CPU time (/proc/PID/stat, utime + stime).
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

# run_serve NAME PATTERN COUNT ARGS...: serve until COUNT lines match
# PATTERN (its first round is over), then K intervals counted; prints
# "logins cpu_ms" per interval.
run_serve() {
	local name=$1 pattern=$2 count=$3
	shift 3
	"$MK_BIN" --data "$D" serve --listen 127.0.0.1:0 --sync-interval "$INTERVAL" "$@" \
		>"$RUN/$name.out" 2>"$RUN/$name.err" &
	SERVE_PID=$!
	local t=0
	until [ "$(grep -Ec "$pattern" "$RUN/$name.out" || true)" -ge "$count" ]; do
		kill -0 "$SERVE_PID" 2>/dev/null || { cat "$RUN/$name.err" >&2; exit 1; }
		sleep 0.2
		t=$((t + 1))
		[ "$t" -lt 1500 ] || { echo "idle-logins.sh: $name: no first round" >&2; exit 1; }
	done
	sleep 1
	local i l0 c0 l1 c1
	for ((i = 1; i <= K; i++)); do
		l0=$(logins)
		c0=$(cpu_ticks)
		sleep "$INTERVAL"
		l1=$(logins)
		c1=$(cpu_ticks)
		echo "$((l1 - l0)) $(((c1 - c0) * 1000 / TICKS))"
	done
	kill -TERM "$SERVE_PID"
	wait "$SERVE_PID" || { echo "idle-logins.sh: $name: serve did not stop cleanly" >&2; exit 1; }
	SERVE_PID=
}

# With push: the first round is over when the scheduler says how many
# accounts it leaves to push (its second round: the first syncs them all).
ON=$(run_serve push-on " $N accounts? left to provider push" 1 --full-sync-interval 86400)
# Without: the first round is over when every account has been synced once.
OFF=$(run_serve push-off "account=[0-9]+ .*synced" "$N" --push off)

echo "idle-logins: $N accounts, no new mail, scheduler every $INTERVAL s, $K intervals each"
printf '%-10s %16s %16s %18s %18s\n' interval "logins (push)" "logins (polling)" \
	"serve CPU ms (push)" "serve CPU ms (polling)"
paste -d' ' <(echo "$ON") <(echo "$OFF") | awk '{ printf "%-10d %16d %16d %18d %18d\n", NR, $1, $3, $2, $4 }'
SUM_ON=$(echo "$ON" | awk '{ s += $1 } END { print s }')
SUM_OFF=$(echo "$OFF" | awk '{ s += $1 } END { print s }')
echo "logins per interval: push $(awk -v s="$SUM_ON" -v k="$K" 'BEGIN { printf "%.1f", s / k }')" \
	"(target 0), polling $(awk -v s="$SUM_OFF" -v k="$K" 'BEGIN { printf "%.1f", s / k }')" \
	"(N = $N)"
[ "$SUM_ON" -eq 0 ] || { echo "idle-logins.sh: FAIL: logins while push watched every account" >&2; exit 1; }
