#!/usr/bin/env bash
# Refuses an #include that points up the layers, or sideways where the table
# below does not allow it (docs/architecture.md draws the layers):
#
#   faces     cli
#   daemon    daemon
#   services  service
#   engines   sync imap smtp jmap maildir setup oauth push
#   state     store hub vault audit
#   base      lib net http mime
#
# A module may include its own headers and those of any module in a lower
# layer. Within one layer only the pairs in SIDEWAYS are allowed: what the
# code needs today, nothing more (a new pair is a design decision: add it
# here with a reason, or move the code). The build draws the same line: one
# static library per layer, linking only downwards (CMakeLists.txt).
#
# Both spellings are checked: "../hub/hub.h" and "hub/hub.h".
#
#   scripts/check-layers.sh [FILE...]   (default: every .c and .h under src/)
#
# The module of a file is the folder after the last "src/" in its path.
# Exits 0 when every arrow points down, 1 with every offence listed.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A LAYER=(
	[lib]=1 [net]=1 [http]=1 [mime]=1
	[store]=2 [hub]=2 [vault]=2 [audit]=2
	[sync]=3 [imap]=3 [smtp]=3 [jmap]=3 [maildir]=3 [setup]=3 [oauth]=3 [push]=3
	[service]=4
	[daemon]=5
	[cli]=6
)
LAYER_NAME=([1]=base [2]=state [3]=engines [4]=services [5]=daemon [6]=faces)

# from:to pairs within one layer.
#   net, http, mime -> lib: lib is the floor of the base (buffers, clock).
#   hub -> audit, vault: the hub seals credentials (vault) and audits their
#                        use (audit) in one step.
#   sync -> imap:        the sync engine drives an IMAP client session.
#   push -> imap:        push reads responses with the IMAP parser and
#                        account URLs with imap-url.
SIDEWAYS=" net:lib http:lib mime:lib hub:audit hub:vault sync:imap push:imap "

if [ $# -gt 0 ]; then
	files=("$@")
else
	mapfile -t files < <(find src -name '*.[ch]' -type f | LC_ALL=C sort)
fi
status=0
offences=""
for f in "${files[@]}"; do
	case "$f" in
	*src/*/*) ;;
	*) continue ;; # not in a module folder
	esac
	rel=${f##*src/}
	from=${rel%%/*}
	if [ -z "${LAYER[$from]:-}" ]; then
		offences+="$f: module '$from' is in no layer: add it to the table in scripts/check-layers.sh"$'\n'
		continue
	fi
	while IFS= read -r hit; do
		line=${hit%%:*}
		path=$(printf '%s\n' "$hit" | sed -E 's/^[0-9]+:[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/')
		path=${path#../}
		case "$path" in
		*/*) to=${path%%/*} ;;
		*) continue ;; # a header of the same folder
		esac
		[ "$to" = "$from" ] && continue
		if [ -z "${LAYER[$to]:-}" ]; then
			case "$to" in
			.. | .) offences+="$f:$line: includes \"$path\": reach another module as ../MODULE/header.h"$'\n' ;;
			esac
			continue # not a module of src/ (e.g. a system header path)
		fi
		lf=${LAYER[$from]} lt=${LAYER[$to]}
		if [ "$lt" -lt "$lf" ]; then
			continue
		fi
		if [ "$lt" -eq "$lf" ] && [[ "$SIDEWAYS" == *" $from:$to "* ]]; then
			continue
		fi
		if [ "$lt" -gt "$lf" ]; then
			why="points up: $from (${LAYER_NAME[$lf]}) may not use $to (${LAYER_NAME[$lt]})"
		else
			why="points sideways: $from may not use $to (both ${LAYER_NAME[$lf]}; allowed pairs are SIDEWAYS in scripts/check-layers.sh)"
		fi
		offences+="$f:$line: includes \"$path\": $why"$'\n'
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
done
if [ -n "$offences" ]; then
	echo "check-layers: includes against the layers (arrows point down: faces -> services -> engines -> state -> base):" >&2
	printf '%s' "$offences" >&2
	status=1
fi
[ $status -eq 0 ] && echo "check-layers: ${#files[@]} files, every include points down"
exit $status
