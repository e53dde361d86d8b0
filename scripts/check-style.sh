#!/usr/bin/env bash
# Enforces what STYLE.md says can be checked mechanically, over every C file
# in src/ tests/ fuzz/ bench/ (or over the files given as arguments):
#
#   1. No banned functions: sprintf, vsprintf, strcpy, strcat, strtok, atoi,
#      atol, atoll, sscanf, gets (curl's banned list; use snprintf with a
#      truncation check, memcpy with a known length, strtol/strtoul).
#   2. Layout as .clang-format says: `clang-format --dry-run --Werror` (the
#      Debian 12 clang-format, version 14, so everyone gets the same answer).
#   3. The layers: no #include in src/ points up the layers or sideways where
#      not allowed (scripts/check-layers.sh, which holds the table).
#
#   scripts/check-style.sh [FILE...]
#
# Exits 0 when clean, 1 with every offence listed otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -gt 0 ]; then
	files=("$@")
else
	mapfile -t files < <(find src tests fuzz bench -name '*.[ch]' -type f | LC_ALL=C sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "check-style: no C files found" >&2; exit 1; }
status=0

# 1. Banned calls. A call is the name, not preceded by an identifier
# character, '.' or '->', followed by '('. Comments are stripped first
# (// lines and /* */ spans on one line) so prose may name the functions.
BANNED='sprintf|vsprintf|strcpy|strcat|strtok|atoi|atol|atoll|sscanf|gets'
banned=$(for f in "${files[@]}"; do
	sed -E -e 's#/\*.*\*/##g' -e 's#//.*$##' -e 's#^[[:space:]]*\*([[:space:]/].*)?$##' "$f" |
		grep -nE "(^|[^A-Za-z0-9_.>])($BANNED)[[:space:]]*\(" |
		sed "s#^#$f:#"
done || true)
if [ -n "$banned" ]; then
	echo "check-style: banned functions (see STYLE.md, Safety):" >&2
	echo "$banned" >&2
	status=1
fi

# 3. The layers (before formatting, which may exit early).
if ! scripts/check-layers.sh "$@" >/dev/null; then
	status=1
fi

# 2. Formatting.
CF=${CLANG_FORMAT:-}
if [ -z "$CF" ]; then
	for c in clang-format-14 clang-format; do
		if command -v "$c" >/dev/null; then
			CF=$c
			break
		fi
	done
fi
if [ -z "$CF" ]; then
	echo "check-style: clang-format not found (scripts/setup.sh installs it)" >&2
	exit 1
fi
out=$(mktemp)
if ! "$CF" --dry-run --Werror --style="file:$PWD/.clang-format" "${files[@]}" 2>"$out"; then
	mapfile -t differ < <(grep -oE '^[^: ]+\.[ch]:[0-9]+:[0-9]+: error' "$out" | cut -d: -f1 | sort -u)
	echo "check-style: ${#differ[@]} files differ from .clang-format (run: $CF -i FILE):" >&2
	printf '  %s\n' "${differ[@]}" >&2
	[ ${#differ[@]} -gt 0 ] || cat "$out" >&2
	status=1
fi
rm -f "$out"

[ $status -eq 0 ] && echo "check-style: ${#files[@]} files clean"
exit $status
