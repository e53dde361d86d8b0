#!/usr/bin/env bash
# Sets up and runs the hub on its embedded defaults: SQLite stores in the data
# directory ($MAILKEEP_DATA, default ./data), `mailkeep serve` on
# 127.0.0.1:8080. Arguments go to serve (see 'build/mailkeep serve --help').
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime
# Every mailkeep command takes $MAILKEEP_DATA as the default of --data.
export MAILKEEP_DATA=${MAILKEEP_DATA:-$PWD/data}
[ -f "$MAILKEEP_DATA/mailkeep.version" ] || build/mailkeep init
echo "hub.sh: data directory $MAILKEEP_DATA; add users and accounts with" \
	"'MAILKEEP_DATA=$MAILKEEP_DATA build/mailkeep user add NAME' and 'account add'" >&2
exec build/mailkeep serve "$@"
