#ifndef MK_STORE_PRIVATE_H
#define MK_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store.h"

/* The database handle, for the store's own other files. */
sqlite3 *store_db(struct store *s);
/* Format "store: what: sqlite message" into the store's error buffer. */
const char *store_err(struct store *s, const char *what);

/* The next change counter value (inside a transaction). */
uint64_t store_next_modseq(struct store *s);
/* Where store-envelope.c keeps its state on the handle. */
void **store_envelope_slot(struct store *s);

#endif
