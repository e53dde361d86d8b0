#ifndef MK_STORE_PRIVATE_H
#define MK_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store.h"

/* The database handle, for the store's own other files. */
sqlite3 *store_db(struct store *s);
/* Format "store: what: sqlite message" into the store's error buffer. */
const char *store_err(struct store *s, const char *what);
/* Create the per-mailbox counts and their triggers (store-counts.c); counts
 * an older store once. Run by store_open(). */
int store_counts_schema(struct store *s, const char **error_r);

/* The next change counter value (inside a transaction). */
uint64_t store_next_modseq(struct store *s);
/* Where store-envelope.c keeps its state on the handle. */
void **store_envelope_slot(struct store *s);

#endif
