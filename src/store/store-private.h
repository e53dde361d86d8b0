#ifndef MK_STORE_PRIVATE_H
#define MK_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store.h"

#define STORE_BUSY_TIMEOUT_MS 30000

/* The database handle, for the store's own other files. */
sqlite3 *store_db(struct store *s);
/* Format "store: what: sqlite message" into the store's error buffer. */
const char *store_err(struct store *s, const char *what);
/* Create the full-text table and its triggers if missing (store_open). */
int store_fts_schema(struct store *s, const char **error_r);

#endif
