#ifndef MK_STORE_H
#define MK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The hosted store: one SQLite database per hub user (WAL mode), holding
 * that user's mailboxes, messages (bytes stored once per distinct content),
 * flags and keywords, internal dates, the per-folder sync state of each
 * external account, and a per-user change counter (modseq): every change to
 * a mailbox or message gets the next value, from which the device API
 * derives its state strings. Removals leave a tombstone with their modseq.
 *
 * Writes happen inside store_begin()/store_commit(); the change counter is
 * taken with the write lock, so concurrent writers serialise.
 *
 * Error convention: 0 ok / -1 error with *error_r set to a message owned by
 * the store, valid until its next call. All memory returned to the caller
 * is the caller's unless stated otherwise.
 */

struct store;

/* System flags as a bit mask. Keywords are kept as a space-separated,
 * sorted, de-duplicated string. */
enum store_flag {
	STORE_FLAG_SEEN = 1 << 0,
	STORE_FLAG_ANSWERED = 1 << 1,
	STORE_FLAG_FLAGGED = 1 << 2,
	STORE_FLAG_DELETED = 1 << 3,
	STORE_FLAG_DRAFT = 1 << 4,
};

/* Process-wide SQLite settings for the stores (store-counts.c): call once at
 * process start, before any database is opened (sqlite3_config). 0 ok, -1
 * when SQLite was initialised already (its defaults stay; still correct,
 * only slower). */
int store_library_init(void);
/* Open (creating if needed, mode 0600) the store at path. */
int store_open(const char *path, struct store **store_r, const char **error_r);
/* Close; sets *store to NULL; accepts NULL. */
void store_close(struct store **store);

/* Transactions. begin takes the write lock (BEGIN IMMEDIATE). If SQLite
 * rolls an open transaction back by itself after an error (SQLITE_FULL,
 * SQLITE_IOERR), later writes and the commit fail instead of committing
 * one by one outside it. */
int store_begin(struct store *s, const char **error_r);
int store_commit(struct store *s, const char **error_r);
void store_rollback(struct store *s);
/* The current change counter (committed or in the open transaction). */
uint64_t store_modseq(struct store *s);

/* Accounts: an external account identified by a stable key (for now
 * "imap-url login"). Returns its id, creating it if needed. */
int store_account_ensure(struct store *s, const char *key, int64_t *account_id_r,
                         const char **error_r);

struct store_mailbox {
	int64_t id;
	char *name; /* name on the server (UTF-8 or modified UTF-7 as sent) */
	char delim; /* hierarchy delimiter on the server, 0 if none */
	char *role; /* special-use without backslash ("Sent"), or NULL */
	uint32_t uidvalidity;
	uint32_t uidnext;          /* next UID we have not stored yet */
	uint64_t highestmodseq;    /* server HIGHESTMODSEQ we are in sync with */
	bool noselect;             /* \Noselect/\NonExistent on the server: holds no mail */
	uint32_t imap_uidvalidity; /* the hub's own IMAP UIDVALIDITY (nonzero, fixed) */
	uint32_t imap_uidnext;     /* the hub's next own IMAP UID */
};

/* All mailboxes of an account, sorted by name. Free with
 * store_mailboxes_free(). */
int store_mailboxes(struct store *s, int64_t account_id, struct store_mailbox **boxes_r,
                    size_t *count_r, const char **error_r);
void store_mailboxes_free(struct store_mailbox **boxes, size_t count);
/* All mailboxes of all accounts (export). */
int store_mailboxes_all(struct store *s, struct store_mailbox **boxes_r, size_t *count_r,
                        const char **error_r);

int store_mailbox_create(struct store *s, int64_t account_id, const char *name, char delim,
                         const char *role, int64_t *mailbox_id_r, const char **error_r);
/* The same for a folder the server lists as \Noselect or \NonExistent, or
 * a parent the server does not list (noselect): shown, holds no mail. */
int store_mailbox_create_noselect(struct store *s, int64_t account_id, const char *name, char delim,
                                  const char *role, bool noselect, int64_t *mailbox_id_r,
                                  const char **error_r);
/* Change whether a mailbox can hold mail (a new change only if it differs). */
int store_mailbox_set_noselect(struct store *s, int64_t mailbox_id, bool noselect,
                               const char **error_r);
int store_mailbox_rename(struct store *s, int64_t mailbox_id, const char *name, char delim,
                         const char **error_r);
int store_mailbox_set_role(struct store *s, int64_t mailbox_id, const char *role,
                           const char **error_r);
/* Remove the mailbox and all its messages (blobs no longer referenced
 * are deleted too). */
int store_mailbox_delete(struct store *s, int64_t mailbox_id, const char **error_r);
/* Record the sync state reached. A state that says "everything below
 * uidnext is stored" belongs in the transaction that stored it: refused
 * outside a transaction, and (like every write) if that transaction was
 * rolled back after an error. */
int store_mailbox_set_state(struct store *s, int64_t mailbox_id, uint32_t uidvalidity,
                            uint32_t uidnext, uint64_t highestmodseq, const char **error_r);

/* Message bytes are written as a stream: begin with the exact size, write
 * exactly that many bytes, finish. finish() returns the id of the stored
 * content; identical content already in the store is reused (the new copy
 * is dropped), so a message in several folders is stored once. Must be
 * used inside a transaction. */
struct store_blob_writer;
int store_blob_begin(struct store *s, uint64_t size, struct store_blob_writer **w_r,
                     const char **error_r);
int store_blob_write(struct store_blob_writer *w, const void *data, size_t len,
                     const char **error_r);
int store_blob_finish(struct store_blob_writer **w, int64_t *blob_id_r, const char **error_r);
/* Drop an unfinished blob (its row is removed); accepts NULL. */
void store_blob_abort(struct store_blob_writer **w);

/* Read a stored blob in pieces: offset/len into buf. Returns 0 / -1. */
int store_blob_read(struct store *s, int64_t blob_id, uint64_t offset, void *buf, size_t len,
                    const char **error_r);

/*
 * Messages and Emails (schema 3, docs/store.md). A row of `messages` is a
 * membership: one server message (mailbox, server UID) with its own flags
 * and the hub's own IMAP UID in that mailbox. An Email (`emails`) is one
 * content within one account: all memberships of the account with the same
 * bytes belong to it. Its flags and keywords are the union of its
 * memberships' (without \Deleted, which is per membership). The Email goes
 * (tombstone kind "email") with its last membership; a membership removed
 * leaves a tombstone of kind "message" (parent: its mailbox).
 */
/* Add (mailbox, uid) as a membership of the Email of (the mailbox's
 * account, blob), created if needed. If the uid exists already it is
 * replaced. */
int store_message_add(struct store *s, int64_t mailbox_id, uint32_t uid, int64_t blob_id,
                      unsigned flags, const char *keywords, int64_t internaldate,
                      const char **error_r);
/* Set flags and keywords of (mailbox, uid); a no-op (no modseq) if they are
 * unchanged or the message is unknown. */
int store_message_set_flags(struct store *s, int64_t mailbox_id, uint32_t uid, unsigned flags,
                            const char *keywords, const char **error_r);
/* Remove (mailbox, uid); no-op if unknown. */
int store_message_expunge(struct store *s, int64_t mailbox_id, uint32_t uid, const char **error_r);
/* UIDVALIDITY re-pairing in three steps: stash() sets every message of
 * the mailbox aside (no UID); set_uid() gives a stashed message (by its old
 * UID) its new UID and the internal date the server gives it now;
 * drop_stashed() removes those left unpaired. */
int store_mailbox_stash_uids(struct store *s, int64_t mailbox_id, const char **error_r);
int store_message_set_uid(struct store *s, int64_t mailbox_id, uint32_t old_uid, uint32_t new_uid,
                          int64_t internaldate, const char **error_r);
int store_mailbox_drop_stashed(struct store *s, int64_t mailbox_id, const char **error_r);

/* Number of messages stored in a mailbox. */
int store_mailbox_count(struct store *s, int64_t mailbox_id, uint32_t *count_r,
                        const char **error_r);
/* The sorted UIDs stored for a mailbox; caller frees *uids_r with free(). */
int store_mailbox_uids(struct store *s, int64_t mailbox_id, uint32_t **uids_r, size_t *count_r,
                       const char **error_r);

struct store_msg {
	uint32_t uid;
	int64_t blob_id;
	uint64_t size;
	unsigned flags;
	const char *keywords; /* valid until the next store_iter_next() */
	int64_t internaldate;
	bool local; /* made through the device API: uid is not a server UID */
};
/* Iterate the messages of a mailbox in UID order. */
struct store_iter;
int store_iter_init(struct store *s, int64_t mailbox_id, struct store_iter **it_r,
                    const char **error_r);
bool store_iter_next(struct store_iter *it, struct store_msg *msg_r);
/* Returns 0, or -1 if iteration stopped on an error. */
int store_iter_deinit(struct store_iter **it, const char **error_r);

/* Remove an account and everything that came from it: its mailboxes, their
 * messages and the bytes no other message shares (all within the caller's
 * transaction). Fills the counts of what was removed; an unknown key
 * removes nothing. */
struct store_removal {
	uint64_t mailboxes, messages, blobs, bytes;
};
int store_account_remove(struct store *s, const char *key, struct store_removal *removed_r,
                         const char **error_r);
/* After a removal has been committed: move the WAL into the database and
 * truncate it, so removed content (already zeroed in freed pages by
 * secure_delete) leaves no copy in the log. */
int store_scrub(struct store *s, const char **error_r);

/* Deliver a message the hub itself writes (notices to the user) into the
 * INBOX of the store's local account "hub:local", creating it if needed.
 * Inside the caller's transaction. */
int store_local_deliver(struct store *s, const void *data, size_t len, int64_t date,
                        const char **error_r);

/* Counts for summaries and tests. */
int store_counts(struct store *s, uint64_t *messages_r, uint64_t *blobs_r, uint64_t *bytes_r,
                 const char **error_r);

/* --- Views for the device API (store-views.c) ------------------------- */

struct store_mailbox_counts {
	int64_t mailbox_id;
	uint32_t total, unread;  /* memberships; those with neither \Seen nor \Draft */
	uint32_t threads;        /* threads with an Email in the mailbox */
	uint32_t unread_threads; /* threads with an unread Email in the mailbox */
};
/* The counts of every mailbox (RFC 8621 section 2's totalEmails,
 * unreadEmails, totalThreads, unreadThreads; store-counts.c keeps them),
 * ordered by mailbox id; caller frees *counts_r. */
int store_mailbox_counts(struct store *s, struct store_mailbox_counts **counts_r, size_t *count_r,
                         const char **error_r);

struct store_email {
	int64_t id;         /* emails row id: the JMAP Email id */
	int64_t account_id; /* the store account the Email belongs to */
	int64_t mailbox_id; /* the mailbox of its first membership (lowest id) */
	uint32_t uid;       /* that membership's server UID (or local) */
	int64_t blob_id;
	uint64_t size;
	unsigned flags;
	char keywords[1024]; /* truncated beyond that */
	int64_t internaldate;
	int64_t thread_id; /* the JMAP Thread id (store-envelope.h) */
	size_t n_members;  /* memberships (>= 1) */
};
/* The committed change counter (what the device API's states derive from). */
int store_read_modseq(struct store *s, uint64_t *modseq_r, const char **error_r);
/* Size of stored message bytes: 1 found, 0 not found, -1 error. */
int store_blob_size(struct store *s, int64_t blob_id, uint64_t *size_r, const char **error_r);
/* Size and SHA-256 of finished stored bytes (content-addressed, so a cache
 * key): 1 found, 0 not found (or not finished), -1 error. */
int store_blob_sha256(struct store *s, int64_t blob_id, uint64_t *size_r, uint8_t sha256_r[32],
                      const char **error_r);
/* What changed since a state (RFC 8620 /changes) for kind STORE_CHANGES_*:
 * ids created, updated and destroyed after since, at most max_changes ids
 * in all; when cut short, *has_more_r is set and *new_state_r is the
 * change up to which everything was reported, else the current counter.
 * Mailboxes count as updated when their messages changed (their counts
 * did). Caller frees the arrays. */
enum store_changes_kind { STORE_CHANGES_MAILBOX, STORE_CHANGES_EMAIL, STORE_CHANGES_THREAD };
struct store_changes {
	int64_t *created, *updated, *destroyed;
	size_t n_created, n_updated, n_destroyed;
	uint64_t new_state;
	bool has_more;
};
int store_changes(struct store *s, enum store_changes_kind kind, uint64_t since, size_t max_changes,
                  struct store_changes *changes_r, const char **error_r);
/* The same within one store account (account_id 0: all accounts). Costs
 * the number of changes since, not the size of the account. */
int store_changes_account(struct store *s, int64_t account_id, enum store_changes_kind kind,
                          uint64_t since, size_t max_changes, struct store_changes *changes_r,
                          const char **error_r);
void store_changes_free(struct store_changes *changes);
/* One Email by id: 1 found, 0 not found, -1 error. */
int store_email_get(struct store *s, int64_t id, struct store_email *email_r, const char **error_r);
/* The memberships of an Email in membership id order: their ids and
 * mailboxes (a mailbox appears twice when the server has two copies in
 * it). Caller frees both arrays. */
int store_email_members(struct store *s, int64_t email_id, int64_t **message_ids_r,
                        int64_t **mailbox_ids_r, size_t *count_r, const char **error_r);
/* Email ids in a mailbox (0: all), each once, newest or oldest first by
 * internal date, from position, at most limit; *total_r (when not NULL)
 * gets the full count, which costs a count of the mailbox. Caller frees
 * *ids_r. */
int store_email_query(struct store *s, int64_t mailbox_id, bool newest_first, uint64_t position,
                      uint64_t limit, int64_t **ids_r, size_t *count_r, uint64_t *total_r,
                      const char **error_r);

/* --- Changes made through the device API (store-local.c) -------------- *
 *
 * The device API writes into the hosted mailbox; the providers learn of it
 * only from a later two-way sync. Until then every such change is kept in
 * a durable table of pending local changes (local_changes), in order, with
 * where the object lives on its server (its origin: mailbox and UID of a
 * message, server name of a mailbox), and the server-to-hub sync respects
 * it: it does not overwrite a pending keyword change, does not fetch again
 * a message moved or destroyed here (its server UID stays below the
 * folder's UIDNEXT, and the row is no longer at its origin), does not
 * delete a mailbox created here, maps a mailbox renamed here by its server
 * name, and does not re-create a mailbox destroyed here.
 *
 * UIDs: messages created, imported or moved here get the UID
 * STORE_LOCAL_UID_BASE + their row id: above every IMAP UID (32 bits), so
 * never equal to a server UID, and unique per mailbox because row ids are
 * never reused. The sync's UID lists and counts leave them out.
 *
 * Every function below runs inside the caller's transaction, takes a new
 * change counter value for what it changes (tombstones for removals), and
 * records one local change. Accounts: a message moves only between
 * mailboxes of one account (the caller refuses others).
 */
#define STORE_LOCAL_UID_BASE 4294967296LL
#define STORE_UPLOAD_TTL (24 * 3600) /* seconds an unused upload is kept */

/* Set system flags and keywords of an Email (by Email id) on every
 * membership (each keeps its own \Deleted): one change "keywords" per
 * membership whose flags changed, detail the delta ("+\Seen -$x"). */
int store_local_set_flags(struct store *s, int64_t email_id, unsigned flags, const char *keywords,
                          const char **error_r);
/* Move a membership (by messages row id) to another mailbox: same row, a
 * local UID and a new hub IMAP UID there; change "move". */
int store_local_move(struct store *s, int64_t message_id, int64_t to_mailbox_id,
                     const char **error_r);
/* Add a membership of an Email in another mailbox of its account (change
 * "copy", origin: a server membership of the Email). *message_id_r (may
 * be NULL) gets the new membership's id. */
int store_local_copy(struct store *s, int64_t email_id, int64_t mailbox_id, int64_t *message_id_r,
                     const char **error_r);
/* Remove one membership of an Email that stays in other mailboxes (change
 * "expunge"); refused for the Email's last membership. */
int store_local_expunge(struct store *s, int64_t message_id, const char **error_r);
/* Destroy an Email (by Email id): one change "destroy" per membership,
 * tombstones; its bytes go unless shared or uploaded. */
int store_local_destroy(struct store *s, int64_t email_id, const char **error_r);
/* Take an Email out of a mailbox (Mailbox/set onDestroyRemoveEmails):
 * its memberships there are expunged when it stays in another mailbox,
 * else it is destroyed. */
int store_local_remove_from_mailbox(struct store *s, int64_t email_id, int64_t mailbox_id,
                                    const char **error_r);
/* Add a message made here (kind "create" or "import") from stored bytes:
 * a membership with a local UID of the account's Email of those bytes
 * (created if needed). *email_id_r gets the Email id. */
int store_local_add(struct store *s, int64_t mailbox_id, int64_t blob_id, unsigned flags,
                    const char *keywords, int64_t internaldate, const char *kind,
                    int64_t *email_id_r, const char **error_r);
/* Mailboxes. create: full name (with the account's delimiter) in an
 * account; rename: new full name; destroy: the mailbox must be empty. */
int store_local_mailbox_create(struct store *s, int64_t account_id, const char *name, char delim,
                               int64_t *mailbox_id_r, const char **error_r);
int store_local_mailbox_rename(struct store *s, int64_t mailbox_id, const char *name,
                               const char **error_r);
int store_local_mailbox_destroy(struct store *s, int64_t mailbox_id, const char **error_r);
/* Device-only mailbox properties (sortOrder, isSubscribed): kept in the
 * store, not synced. set: a negative value keeps the property. */
int store_local_mailbox_props(struct store *s, int64_t mailbox_id, int *sort_order_r,
                              bool *subscribed_r, const char **error_r);
int store_local_mailbox_set_props(struct store *s, int64_t mailbox_id, int sort_order,
                                  int subscribed, const char **error_r);
/* Whether a mailbox cannot hold mail (noselect): 1 found, 0 not, -1. */
int store_mailbox_noselect(struct store *s, int64_t mailbox_id, bool *noselect_r,
                           const char **error_r);
/* The account of a mailbox and that account's key: 1 found, 0 not, -1
 * error. *key_r is malloc()ed. */
int store_mailbox_account(struct store *s, int64_t mailbox_id, int64_t *account_id_r, char **key_r,
                          const char **error_r);

/* For the sync: the name the server knows a mailbox by (its name before
 * renames made here; *local_only_r when it was created here and has no
 * server folder). *name_r is malloc()ed, NULL when local only. */
int store_local_mailbox_origin(struct store *s, int64_t mailbox_id, char **name_r,
                               bool *local_only_r, const char **error_r);
/* 1 when a mailbox of the account with this server name was destroyed
 * here (the sync must not create it again), 0 not, -1 error. */
int store_local_mailbox_destroyed(struct store *s, int64_t account_id, const char *name,
                                  const char **error_r);
/* Re-pairing after a UIDVALIDITY change (sync-folder.c). The key the
 * sync pairs messages by: SHA-256 of the bytes through the first blank
 * line (at most 1 MiB), with the size. */
int store_blob_header_hash(struct store *s, int64_t blob_id, uint64_t size, unsigned char hash[32],
                           const char **error_r);
/* Messages that came from this mailbox's server folder and were moved or
 * destroyed here, by their pair key: the re-pairing must not fetch them
 * again. Caller frees *gone_r. */
struct store_local_gone {
	int64_t origin_uid;
	uint64_t size;
	unsigned char hash[32];
};
int store_local_gone(struct store *s, int64_t mailbox_id, struct store_local_gone **gone_r,
                     size_t *count_r, const char **error_r);
/* The server renumbered the folder: the records' origin old_uid is new_uid
 * now. After all calls, _done() applies them; origins not renumbered are
 * cleared (0: not on the server under a known UID). */
int store_local_renumber(struct store *s, int64_t mailbox_id, int64_t old_uid, int64_t new_uid,
                         const char **error_r);
int store_local_renumber_done(struct store *s, int64_t mailbox_id, const char **error_r);
/* Messages of a mailbox that have server UIDs (what the sync compares
 * with the server's count). */
int store_mailbox_server_count(struct store *s, int64_t mailbox_id, uint32_t *count_r,
                               const char **error_r);

/* The pending local changes in order (for the two-way sync and tests). */
struct store_local_change {
	int64_t id;
	uint64_t modseq;
	char kind[24];             /* keywords copy move expunge destroy create import
	                              mailbox-create mailbox-rename mailbox-destroy
	                              mailbox-props */
	int64_t object_id;         /* membership (messages row) or mailbox row id */
	int64_t mailbox_id;        /* the message's mailbox after the change */
	int64_t account_id;        /* the mailbox's account */
	int64_t origin_mailbox_id; /* message on a server: where, else 0 */
	int64_t origin_uid;        /* and its server UID, else 0 */
	char *origin_name;         /* mailbox: its server name, NULL if local */
	char *detail;              /* keywords / new name / kind-specific, may be NULL */
};
int store_local_changes(struct store *s, struct store_local_change **changes_r, size_t *count_r,
                        const char **error_r);
void store_local_changes_free(struct store_local_change **changes, size_t count);

/* Uploads (RFC 8620 6.1): a blob kept for STORE_UPLOAD_TTL seconds after
 * now unless a message uses it. */
int store_upload_add(struct store *s, int64_t blob_id, const char *type, int64_t now,
                     const char **error_r);
/* Remove uploads older than the TTL and their bytes when nothing uses
 * them; *removed_r (may be NULL) counts the uploads removed. */
int store_uploads_expire(struct store *s, int64_t now, uint64_t *removed_r, const char **error_r);

/* --- Full-text search (store-fts.c) ------------------------------------- */

/*
 * The FTS5 table email_fts(subject, from, to, cc, bcc, body) holds one row
 * per blob (rowid = blob id), indexed lazily in the background (never in the
 * sync path); a deleted blob's row goes with it. Email/query uses
 *   +m.blob_id IN (SELECT rowid FROM email_fts WHERE email_fts MATCH ?)
 * with an expression from store_fts_expr() (several conditions: combine
 * the expressions as "(e1) AND (e2)" / "(e1) OR (e2)", or use one IN per
 * condition; FTS5 has no unary NOT, so a NOT filter is SQL "NOT IN"). The unary + keeps SQLite from
 * driving the query from the match list: with ORDER BY m.internaldate DESC, m.id DESC LIMIT n it
 * walks messages_internaldate (or messages_date with m.mailbox_id = ?) newest first and stops after
 * n matches, instead of sorting every match.
 *
 * store_fts_expr: the MATCH expression for one filter condition. field is
 * "text" (all columns), "subject", "from", "to", "cc", "bcc" or "body".
 * text is split at white space into words; each word is quoted as an FTS5
 * string (so query syntax, quotes, NEAR/AND/OR/NOT and column names in it
 * are plain words) and all words must match (AND). Words match whole words
 * (a word with inner punctuation, "jm@example.com", as a phrase); case
 * and diacritics are ignored. Words without letters or digits are dropped;
 * a text without any (empty, white space, punctuation) gives an expression
 * that matches nothing: there is nothing to look for (RFC 8621 leaves it
 * open). At most
 * 1024 bytes and 32 words. Returns 0 with a malloc()ed expression, or -1
 * with static error text (unknown field, too long).
 */
int store_fts_expr(const char *field, const char *text, char **expr_r, const char **error_r);
/* Index up to max_blobs not yet indexed blobs in one transaction (takes the
 * write lock; not inside the caller's transaction). *complete_r is set when
 * nothing is left. Fails with store_fts_busy when another writer holds
 * the store. */
int store_fts_catch_up(struct store *s, unsigned max_blobs, bool *complete_r, const char **error_r);
/* The error of store_fts_catch_up and store_fts_purge (pointer-equal)
 * when another writer holds the store: they wait 0.1 s at most. */
extern const char store_fts_busy[];
/* Blobs waiting to be indexed. */
int store_fts_pending(struct store *s, uint64_t *pending_r, const char **error_r);
/* After deletions the removed words remain in older index segments until a
 * merge rewrites them. store_fts_purge does one bounded merge step (about
 * max_pages pages) in its own transaction and sets *complete_r when nothing
 * deleted is left; store_fts_optimize rewrites the whole index at once
 * inside the caller's transaction (store_account_remove does this). Both
 * do nothing when nothing was deleted since the last time. */
int store_fts_purge(struct store *s, unsigned max_pages, bool *complete_r, const char **error_r);
int store_fts_optimize(struct store *s, const char **error_r);
/* Highlighted subject and body snippet of one indexed blob for a MATCH
 * expression: matches are between \x01 and \x02 (the index holds no
 * control characters); the body snippet is about 24 words with "…" where
 * text was left out. Each is NULL when its column has no match. Returns 1
 * (blob matches), 0 (not indexed or no match; both NULL), -1. Caller frees. */
int store_fts_snippet(struct store *s, int64_t blob_id, const char *expr, char **subject_r,
                      char **preview_r, const char **error_r);

#endif
