#ifndef MK_STORE_PRIVATE_H
#define MK_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store.h"

#define STORE_BUSY_TIMEOUT_MS 30000

/* The database handle, for the store's own other files. */
sqlite3 *store_db(struct store *s);
/* Format "store: what: sqlite message" into the store's error buffer. */
const char *store_err(struct store *s, const char *what);
/* Create the per-mailbox counts and their triggers (store-counts.c); counts
 * an older store once. Run by store_open(). */
int store_counts_schema(struct store *s, const char **error_r);

/* The next change counter value (inside a transaction). */
uint64_t store_next_modseq(struct store *s);
/* Memberships (store.c). Add one to mailbox_id: the Email given
 * (email_id != 0) or the account's Email of blob_id (created when missing,
 * with the new row's id). uid < 0: a local UID (STORE_LOCAL_UID_BASE +
 * the new id). The hub's IMAP UID is taken from the mailbox. Either out
 * pointer may be NULL. */
int store_member_add(struct store *s, int64_t mailbox_id, int64_t uid, int64_t blob_id,
                     unsigned flags, const char *keywords, int64_t internaldate, int64_t email_id,
                     int64_t *message_id_r, int64_t *email_id_r, const char **error_r);
/* Remove a membership (tombstone "message"); the Email too when it was its
 * last (tombstone "email"); the bytes when nothing uses them. No-op when
 * unknown. */
int store_member_remove(struct store *s, int64_t message_id, const char **error_r);
/* Set a membership's flags and keywords (new modseq), and its Email's. */
int store_member_set_flags(struct store *s, int64_t message_id, unsigned flags,
                           const char *keywords, const char **error_r);
/* store-upgrade.c. The union of an Email's memberships' flags (without
 * \Deleted, which is per membership) and keywords (sorted, de-duplicated;
 * *keywords_r malloc()ed); members is "SELECT flags, keywords FROM
 * messages WHERE email_id = ?1". 0 / -1. */
int store_email_union(sqlite3_stmt *members, int64_t email_id, unsigned *flags_r,
                      char **keywords_r);
/* Upgrade an open schema-2 database to 3 in one transaction (schema3_sql:
 * the tables and indexes schema 3 adds); -1 with the reason in error. */
int store_upgrade_2_3(sqlite3 *db, const char *schema3_sql, char *error, size_t error_size);
/* Recompute an Email's flags and keywords from its memberships; its modseq
 * becomes the current change counter when they changed, or always (force:
 * its mailboxes changed). */
int store_email_refresh(struct store *s, int64_t email_id, bool force, const char **error_r);
/* Where store-envelope.c keeps its state on the handle. */
void **store_envelope_slot(struct store *s);

/* store-local.c: its tables (CREATE IF NOT EXISTS) and the expiry of old
 * uploads, run by store_open() before statements are prepared. */
int store_local_schema(struct store *s, const char **error_r);
/* 1 when message_id has a keyword change made through the device API that
 * is still pending (the sync must not overwrite it), 0 not, -1 error. */
int store_local_holds_flags(struct store *s, int64_t message_id, const char **error_r);
/* Remove the messages of a mailbox that were made through the device API
 * (local UIDs), with tombstones; before the mailbox itself goes. */
int store_local_purge_mailbox(struct store *s, int64_t mailbox_id, const char **error_r);
/* The account is being removed: its pending local changes go too (they
 * name its folders and keywords). */
int store_local_forget_account(struct store *s, int64_t account_id, const char **error_r);

/* Create the full-text table and its triggers if missing (store_open). */
int store_fts_schema(struct store *s, const char **error_r);

/* Create the outbox tables if missing (store-outbox.c), from store_open. */
int store_outbox_schema(struct store *s, const char **error_r);
/* Create the identities table if missing (store-identity.c), from store_open. */
int store_identity_schema(struct store *s, const char **error_r);

#endif
