#!/usr/bin/env bash
# Sets up and runs the hub on its embedded defaults: SQLite stores in the data
# directory ($MAILKEEP_DATA, default ./data), `mailkeep serve` on
# 127.0.0.1:8080. Arguments go to serve (see 'build/mailkeep serve --help').
# Installs only what building and running the hub needs (setup.sh --runtime:
# no test tools).
#
#   scripts/hub.sh [SERVE OPTIONS...]
#   scripts/hub.sh --install-service
#
# --install-service installs mailkeep as a system service instead of running
# it here (docs/operations.md): cmake --install into /usr (binary, man page,
# example settings, the hardened unit), a system user 'mailkeep', the data
# directory /var/lib/mailkeep (0700) initialised with its master key in
# /etc/mailkeep/master.key, given to the service as a systemd credential;
# where systemd runs, the unit is enabled and started. Safe to run again (an
# upgrade: the binary is replaced, the data and key are kept).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --install-service ]; then
	[ $# -eq 1 ] || {
		echo "usage: scripts/hub.sh --install-service (no other arguments)" >&2
		exit 2
	}
	scripts/setup.sh --runtime
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	DATA=/var/lib/mailkeep
	KEY=/etc/mailkeep/master.key
	$SUDO cmake --install build --prefix /usr
	if ! getent passwd mailkeep >/dev/null; then
		$SUDO useradd --system --user-group --home-dir "$DATA" --no-create-home \
			--shell /usr/sbin/nologin --comment "mailkeep hub" mailkeep
	fi
	$SUDO install -d -m 0700 -o mailkeep -g mailkeep "$DATA" /etc/mailkeep
	as_mailkeep() { $SUDO runuser -u mailkeep -- "$@"; }
	if [ ! -f "$DATA/mailkeep.version" ]; then
		as_mailkeep /usr/bin/mailkeep --data "$DATA" init --master-key "$KEY"
	fi
	# The service reads the key as a credential (the unit's LoadCredential=);
	# commands run by hand as mailkeep read the file (master_key).
	if ! as_mailkeep grep -q '^master_key_credential' "$DATA/mailkeep.conf"; then
		printf '%s\n' "# The service gets the master key as a systemd credential" \
			"# (LoadCredential=master.key:$KEY); commands run by hand use master_key." \
			"master_key_credential = master.key" |
			as_mailkeep tee -a "$DATA/mailkeep.conf" >/dev/null
	fi
	if [ -d /run/systemd/system ]; then
		$SUDO systemctl daemon-reload
		$SUDO systemctl enable mailkeep.service
		$SUDO systemctl restart mailkeep.service
		echo "hub.sh: mailkeep.service enabled and started; see 'systemctl status mailkeep'" \
			"and 'journalctl -u mailkeep'" >&2
	else
		echo "hub.sh: installed; systemd is not running here, so the unit" \
			"(/usr/lib/systemd/system/mailkeep.service) was not enabled" >&2
	fi
	echo "hub.sh: data in $DATA, master key in $KEY, settings in $DATA/mailkeep.conf;" \
		"add users with 'sudo -u mailkeep mailkeep --data $DATA user add NAME'" >&2
	exit 0
fi

scripts/setup.sh --runtime
# Every mailkeep command takes $MAILKEEP_DATA as the default of --data.
export MAILKEEP_DATA=${MAILKEEP_DATA:-$PWD/data}
[ -f "$MAILKEEP_DATA/mailkeep.version" ] || build/mailkeep init
echo "hub.sh: data directory $MAILKEEP_DATA; add users and accounts with" \
	"'MAILKEEP_DATA=$MAILKEEP_DATA build/mailkeep user add NAME' and 'account add'" >&2
exec build/mailkeep serve "$@"
