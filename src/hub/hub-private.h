#ifndef MK_HUB_PRIVATE_H
#define MK_HUB_PRIVATE_H

#include <sqlite3.h>

#include "hub.h"

struct hub {
	char *dir;
	sqlite3 *db;
	struct hub_settings set;
	struct vault_master *master;
	bool error_temporary; /* the last failure was a busy lock or database */
	char error[1024];
};

/* Set hub->error and *error_r; returns -1. */
int hub_fail(struct hub *hub, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* hub_fail for a temporary condition (a lock held too long by another
 * writer): hub_error_is_temporary() says so until the next failure. */
int hub_fail_temporary(struct hub *hub, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* hub_fail with SQLite's message for what failed. */
int hub_db_fail(struct hub *hub, const char **error_r, const char *what);
/*
 * The secret anchor, DIR/hub.anchor: what hub.db alone must not be able to
 * undo. Text, a header line "mailkeep-anchor 1", then lines appended (and
 * fdatasync'd) after the hub.db commit they follow:
 *   "secret ID V"        account ID's secrets are at version V or later
 *   "removed ID"         account ID was removed; its secrets never open again
 *   "upgraded binding"   the format-1 secrets present were tagged (once)
 * The highest V per account counts. A sealed secret whose account row says
 * an older version (a restored or edited hub.db: the old row with the old
 * sealed copy) is refused as rolled back. An incomplete last line (a crash
 * while appending) is ignored; any other unreadable line fails closed.
 */
struct hub_anchor {
	uint64_t secret_version; /* 0: none recorded */
	bool removed;
	bool binding_upgraded;
	bool exists;
};
int hub_anchor_read(struct hub *hub, int64_t account_id, struct hub_anchor *anchor_r,
                    const char **error_r);
/* what: "secret" (account_id, version), "removed" (account_id) or
 * "upgraded" (neither). Creates the file (0600) when missing. */
int hub_anchor_note(struct hub *hub, const char *what, int64_t account_id, uint64_t version,
                    const char **error_r);
/* Tag the format-1 secrets (sealed before secrets were bound to the server
 * settings) with the settings they have now, once (see hub-accounts.c). */
int hub_binding_upgrade(struct hub *hub, const char **error_r);

/* Prepare a statement (caller finalizes) or fail. */
int hub_prepare(struct hub *hub, const char *sql, sqlite3_stmt **st_r, const char **error_r);
/* Run SQL without results. */
int hub_exec(struct hub *hub, const char *sql, const char **error_r);

#endif
