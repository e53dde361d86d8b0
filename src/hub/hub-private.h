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
/* Prepare a statement (caller finalizes) or fail. */
int hub_prepare(struct hub *hub, const char *sql, sqlite3_stmt **st_r, const char **error_r);
/* Run SQL without results. */
int hub_exec(struct hub *hub, const char *sql, const char **error_r);

#endif
