#!/usr/bin/env bash
# Sets up and runs the hub on its embedded defaults: SQLite stores in the data
# directory ($MAILKEEP_DATA, default ./data).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${MAILKEEP_DATA:-$PWD/data}
build/mailkeep --data "$DATA" init
if build/mailkeep serve --help >/dev/null 2>&1; then
	exec build/mailkeep --data "$DATA" serve
fi
cat <<EOT

The hub's data directory is $DATA.
The 'serve' daemon is not built yet; add a user and sync an account into their hosted
mailbox with:

  build/mailkeep --data $DATA user add NAME
  build/mailkeep --data $DATA sync --user NAME --imap imaps://HOST[:PORT] \\
      --login LOGIN --password-file FILE

and see 'build/mailkeep --help'.
EOT
