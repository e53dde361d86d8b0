#!/usr/bin/env bash
# OAuth 2 accounts end to end: oidc-provider, Dovecot oauth2 passdb, mailkeep.
set -euo pipefail
exec </dev/null
exec python3 "$(dirname "$0")/oauth_test.py" "$@"
