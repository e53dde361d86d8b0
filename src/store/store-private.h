#ifndef MK_STORE_PRIVATE_H
#define MK_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store.h"

/* The database handle, for the store's own other files. */
sqlite3 *store_db(struct store *s);
/* Format "store: what: sqlite message" into the store's error buffer. */
const char *store_err(struct store *s, const char *what);

/* Create the outbox tables if missing (store-outbox.c), from store_open. */
int store_outbox_schema(struct store *s, const char **error_r);

#endif
