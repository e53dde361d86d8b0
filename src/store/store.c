/*
 * The hosted store on SQLite. See store.h for the model.
 *
 * Schema (version 3; docs/store.md has the model; the upgrade from 2 is in
 * store-upgrade.c):
 *   meta(key, value)                 schema version, change counter
 *   accounts(id, key)                external accounts
 *   mailboxes(id, account_id, name, delim, role, uidvalidity, uidnext,
 *             highestmodseq, modseq, created_modseq, imap_uidvalidity,
 *             imap_uidnext, noselect)
 *   blobs(id, sha256, size, data)    message bytes, one row per content
 *   emails(id, account_id, blob_id, thread_id, flags, keywords,
 *          internaldate, modseq, created_modseq)
 *                                    one JMAP Email per content and account
 *   messages(id, mailbox_id, uid, blob_id, flags, keywords, internaldate,
 *            modseq, created_modseq, thread_id (unused since 3), email_id,
 *            imap_uid)               memberships: an Email in a mailbox
 *   tombstones(modseq, kind, object_id, parent_id, account_id)
 *                                    removed emails, memberships
 *                                    ("message"), mailboxes, threads
 */
#include "lib/crashpoint.h"
#include "store-private.h"
#include "store-provider.h"
#include "store-envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/array.h"

#define STORE_SCHEMA_VERSION 3

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_GET_MODSEQ,
	ST_SET_MODSEQ,
	ST_ACCOUNT_GET,
	ST_ACCOUNT_ADD,
	ST_MBOX_LIST,
	ST_MBOX_LIST_ALL,
	ST_MBOX_ADD,
	ST_MBOX_RENAME,
	ST_MBOX_ROLE,
	ST_MBOX_STATE,
	ST_MBOX_DEL,
	ST_MBOX_COUNT,
	ST_MBOX_NOSELECT,
	ST_MBOX_NEXT_IMAP_UID,
	ST_BLOB_ADD,
	ST_BLOB_BY_HASH,
	ST_BLOB_SET_HASH,
	ST_BLOB_DEL,
	ST_BLOB_GC,
	ST_MSG_ADD,
	ST_MSG_STASH_ONE,
	ST_MSG_GET,
	ST_MSG_BY_ID,
	ST_MSG_FLAGS,
	ST_MSG_DEL,
	ST_MSG_SET_UID,
	ST_MSG_UIDS,
	ST_MSG_STASH,
	ST_MSG_STASHED,
	ST_MSG_ITER,
	ST_EMAIL_FIND,
	ST_EMAIL_ADD,
	ST_EMAIL_GET,
	ST_EMAIL_MEMBERS,
	ST_EMAIL_SET,
	ST_EMAIL_DEL,
	ST_TOMBSTONE,
	ST_COUNT,
};

#define MBOX_COLUMNS                                                                               \
	"id, name, delim, role, uidvalidity, uidnext, highestmodseq, noselect, imap_uidvalidity, " \
	"imap_uidnext"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_GET_MODSEQ] = "SELECT value FROM meta WHERE key = 'modseq'",
    [ST_SET_MODSEQ] = "UPDATE meta SET value = ?1 WHERE key = 'modseq'",
    [ST_ACCOUNT_GET] = "SELECT id FROM accounts WHERE key = ?1",
    [ST_ACCOUNT_ADD] = "INSERT INTO accounts(key) VALUES (?1)",
    [ST_MBOX_LIST] = "SELECT " MBOX_COLUMNS " FROM mailboxes WHERE account_id = ?1 ORDER BY name",
    [ST_MBOX_LIST_ALL] = "SELECT " MBOX_COLUMNS " FROM mailboxes ORDER BY name, id",
    /* The hub's own UIDVALIDITY: the low 32 bits of the id (a change
     * counter value, never reused), never 0. */
    [ST_MBOX_ADD] = "INSERT INTO mailboxes(id, account_id, name, delim, role, modseq, "
                    "created_modseq, imap_uidvalidity, noselect) VALUES (?5, ?1, ?2, ?3, ?4, ?5, "
                    "?5, CASE WHEN (?5 & 4294967295) = 0 THEN 1 ELSE ?5 & 4294967295 END, ?6)",
    [ST_MBOX_RENAME] = "UPDATE mailboxes SET name = ?2, delim = ?3, modseq = ?4 WHERE id = ?1",
    [ST_MBOX_ROLE] = "UPDATE mailboxes SET role = ?2, modseq = ?3 WHERE id = ?1",
    [ST_MBOX_STATE] = "UPDATE mailboxes SET uidvalidity = ?2, uidnext = ?3, "
                      "highestmodseq = ?4 WHERE id = ?1",
    [ST_MBOX_DEL] = "DELETE FROM mailboxes WHERE id = ?1",
    [ST_MBOX_COUNT] = "SELECT count(*) FROM messages WHERE mailbox_id = ?1",
    [ST_MBOX_NOSELECT] = "UPDATE mailboxes SET noselect = ?2, modseq = ?3 WHERE id = ?1 "
                         "AND noselect != ?2",
    [ST_MBOX_NEXT_IMAP_UID] = "UPDATE mailboxes SET imap_uidnext = imap_uidnext + 1 "
                              "WHERE id = ?1 RETURNING imap_uidnext - 1, account_id",
    [ST_BLOB_ADD] = "INSERT INTO blobs(size, data) VALUES (?1, zeroblob(?1))",
    [ST_BLOB_BY_HASH] = "SELECT id FROM blobs WHERE sha256 = ?1",
    [ST_BLOB_SET_HASH] = "UPDATE blobs SET sha256 = ?2 WHERE id = ?1",
    [ST_BLOB_DEL] = "DELETE FROM blobs WHERE id = ?1",
    [ST_BLOB_GC] = "DELETE FROM blobs WHERE id = ?1 AND NOT EXISTS "
                   "(SELECT 1 FROM messages WHERE blob_id = ?1) AND NOT EXISTS "
                   "(SELECT 1 FROM uploads WHERE blob_id = ?1)",
    [ST_MSG_ADD] = "INSERT INTO messages(id, mailbox_id, uid, blob_id, flags, keywords, "
                   "internaldate, modseq, created_modseq, email_id, imap_uid) "
                   "VALUES (?7, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9)",
    [ST_MSG_STASH_ONE] = "UPDATE messages SET uid = -uid WHERE id = ?1",
    [ST_MSG_GET] = "SELECT id, blob_id, flags, keywords FROM messages "
                   "WHERE mailbox_id = ?1 AND uid = ?2",
    [ST_MSG_BY_ID] = "SELECT m.mailbox_id, m.blob_id, m.email_id, b.account_id FROM messages m "
                     "JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.id = ?1",
    [ST_MSG_FLAGS] = "UPDATE messages SET flags = ?2, keywords = ?3, modseq = ?4 WHERE id = ?1",
    [ST_MSG_DEL] = "DELETE FROM messages WHERE id = ?1",
    [ST_MSG_SET_UID] = "UPDATE messages SET uid = ?3, modseq = ?4, internaldate = ?5 "
                       "WHERE mailbox_id = ?1 AND uid = -?2 RETURNING email_id",
    /* Server UIDs only: messages made through the device API have UIDs
     * from 2^32 on (store-local.c) and are not the sync's business. */
    [ST_MSG_STASH] = "UPDATE messages SET uid = -uid WHERE mailbox_id = ?1 AND uid > 0 "
                     "AND uid < 4294967296",
    [ST_MSG_STASHED] = "SELECT -uid FROM messages WHERE mailbox_id = ?1 AND uid < 0",
    [ST_MSG_UIDS] = "SELECT uid FROM messages WHERE mailbox_id = ?1 AND uid > 0 "
                    "AND uid < 4294967296 ORDER BY uid",
    [ST_MSG_ITER] = "SELECT m.uid, m.blob_id, b.size, m.flags, m.keywords, m.internaldate "
                    "FROM messages m JOIN blobs b ON b.id = m.blob_id "
                    "WHERE m.mailbox_id = ?1 ORDER BY m.uid",
    [ST_EMAIL_FIND] = "SELECT id FROM emails WHERE account_id = ?1 AND blob_id = ?2",
    [ST_EMAIL_ADD] = "INSERT INTO emails(id, account_id, blob_id, flags, keywords, internaldate, "
                     "modseq, created_modseq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1, ?1)",
    [ST_EMAIL_GET] = "SELECT flags, keywords FROM emails WHERE id = ?1",
    [ST_EMAIL_MEMBERS] = "SELECT flags, keywords FROM messages WHERE email_id = ?1",
    [ST_EMAIL_SET] = "UPDATE emails SET flags = ?2, keywords = ?3, modseq = ?4 WHERE id = ?1",
    [ST_EMAIL_DEL] = "DELETE FROM emails WHERE id = ?1",
    [ST_TOMBSTONE] = "INSERT INTO tombstones(modseq, kind, object_id, parent_id, account_id) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)",
};

/* Tables as a new store gets them (schema 3). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS accounts(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS mailboxes("
    " id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL REFERENCES accounts(id),"
    " name TEXT NOT NULL, delim TEXT, role TEXT,"
    " uidvalidity INTEGER NOT NULL DEFAULT 0,"
    " uidnext INTEGER NOT NULL DEFAULT 1,"
    " highestmodseq INTEGER NOT NULL DEFAULT 0,"
    " modseq INTEGER NOT NULL, created_modseq INTEGER NOT NULL DEFAULT 0,"
    " imap_uidvalidity INTEGER NOT NULL DEFAULT 0,"
    " imap_uidnext INTEGER NOT NULL DEFAULT 1,"
    " noselect INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(account_id, name));"
    "CREATE TABLE IF NOT EXISTS blobs("
    " id INTEGER PRIMARY KEY, sha256 BLOB UNIQUE, size INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS messages("
    " id INTEGER PRIMARY KEY,"
    " mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id),"
    " uid INTEGER NOT NULL,"
    " blob_id INTEGER NOT NULL REFERENCES blobs(id),"
    " flags INTEGER NOT NULL, keywords TEXT NOT NULL DEFAULT '',"
    " internaldate INTEGER NOT NULL, modseq INTEGER NOT NULL,"
    " created_modseq INTEGER NOT NULL DEFAULT 0,"
    " thread_id INTEGER NOT NULL DEFAULT 0,"
    " email_id INTEGER NOT NULL DEFAULT 0,"
    " imap_uid INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(mailbox_id, uid));"
    "CREATE TABLE IF NOT EXISTS tombstones("
    " modseq INTEGER NOT NULL, kind TEXT NOT NULL, object_id INTEGER NOT NULL,"
    " parent_id INTEGER NOT NULL DEFAULT 0, account_id INTEGER NOT NULL DEFAULT 0);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', 3), ('modseq', 0);";

/* Tables and indexes of schema 3 that schema 2 lacked (run on a new store
 * and by the upgrade, after the columns exist). */
static const char schema3_sql[] =
    "CREATE TABLE IF NOT EXISTS emails("
    " id INTEGER PRIMARY KEY,"
    " account_id INTEGER NOT NULL,"
    " blob_id INTEGER NOT NULL,"
    " thread_id INTEGER NOT NULL DEFAULT 0,"
    " flags INTEGER NOT NULL DEFAULT 0, keywords TEXT NOT NULL DEFAULT '',"
    " internaldate INTEGER NOT NULL, modseq INTEGER NOT NULL,"
    " created_modseq INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(account_id, blob_id));"
    "CREATE INDEX IF NOT EXISTS emails_account_modseq ON emails(account_id, modseq);"
    "CREATE INDEX IF NOT EXISTS emails_modseq ON emails(modseq);"
    "CREATE INDEX IF NOT EXISTS emails_account_date ON emails(account_id, internaldate);"
    "CREATE INDEX IF NOT EXISTS emails_date ON emails(internaldate);"
    "CREATE INDEX IF NOT EXISTS emails_thread ON emails(thread_id);"
    "CREATE INDEX IF NOT EXISTS messages_blob ON messages(blob_id);"
    "CREATE INDEX IF NOT EXISTS messages_modseq ON messages(modseq);"
    "CREATE INDEX IF NOT EXISTS messages_date ON messages(mailbox_id, internaldate);"
    "CREATE INDEX IF NOT EXISTS messages_email ON messages(email_id, mailbox_id);"
    "DROP INDEX IF EXISTS messages_thread;"
    "CREATE INDEX IF NOT EXISTS tombstones_modseq ON tombstones(modseq);"
    "CREATE INDEX IF NOT EXISTS tombstones_account ON tombstones(account_id, kind, modseq);";
/* Once every membership has its hub UID (the upgrade gives them). */
static const char schema3_unique_sql[] =
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_imap_uid ON messages(mailbox_id, imap_uid);";

/* Version 1 to 2: creation modseqs (for /changes) and the mailbox of a
 * removed message. Rows from before count as created at 0. */
static const char migrate_1_2[] =
    "BEGIN IMMEDIATE;"
    "ALTER TABLE mailboxes ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE messages ADD COLUMN created_modseq INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tombstones ADD COLUMN parent_id INTEGER NOT NULL DEFAULT 0;"
    "UPDATE meta SET value = 2 WHERE key = 'schema';"
    "COMMIT;";

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST_COUNT];
	uint64_t modseq, modseq_at_begin;
	bool in_txn;
	char error[512];
	void *envelope; /* store-envelope.c's prepared statements */
};

struct store_blob_writer {
	struct store *store;
	sqlite3_blob *blob;
	int64_t id;
	uint64_t size, written;
	EVP_MD_CTX *md;
};

struct store_iter {
	struct store *store;
	sqlite3_stmt *stmt;
	bool failed;
};

const char *store_err(struct store *s, const char *what)
{
	snprintf(s->error, sizeof(s->error), "store: %s: %s", what, sqlite3_errmsg(s->db));
	return s->error;
}

static sqlite3_stmt *stmt_get(struct store *s, enum stmt_id id)
{
	sqlite3_stmt *st = s->stmt[id];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* SQLite rolls a transaction back by itself on some errors (SQLITE_FULL,
 * SQLITE_IOERR, SQLITE_NOMEM); the connection is then in autocommit mode
 * and every later statement would commit on its own, outside the
 * transaction the caller believes open. */
static bool txn_lost(struct store *s)
{
	return s->in_txn && sqlite3_get_autocommit(s->db);
}

static const char *txn_lost_error(struct store *s, const char *what)
{
	snprintf(s->error, sizeof(s->error),
	         "store: %s: the transaction was rolled back after an earlier error", what);
	return s->error;
}

/* Run a statement that returns no rows. Refused (not run) when the
 * caller's transaction was rolled back under it. */
static int stmt_done(struct store *s, sqlite3_stmt *st, const char *what, const char **error_r)
{
	if (txn_lost(s)) {
		*error_r = txn_lost_error(s, what);
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, what);
		return -1;
	}
	return 0;
}

sqlite3 *store_db(struct store *s)
{
	return s->db;
}

void **store_envelope_slot(struct store *s)
{
	return &s->envelope;
}

int store_open(const char *path, struct store **store_r, const char **error_r)
{
	/* No store to own the text of a failed open: it is the thread's own
	 * (serve opens stores in several threads at once), valid until the
	 * thread's next failed open. */
	static _Thread_local char open_error[512];
	/* Create the file 0600 before SQLite does, whatever the umask. Only when
	 * it is new: closing any descriptor of a file drops every POSIX lock this
	 * process holds on it, including those of another SQLite connection to it
	 * in this process (serve), which could then take itself for the last one
	 * and checkpoint and remove the WAL under the other's feet. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST) {
		snprintf(open_error, sizeof(open_error), "store: cannot open %s: %m", path);
		*error_r = open_error;
		return -1;
	}
	if (fd >= 0)
		close(fd);

	struct store *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		snprintf(open_error, sizeof(open_error), "store: cannot open %s: %s", path,
		         s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		*error_r = open_error;
		store_close(&s);
		return -1;
	}
	sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
	/* Durable commits (synchronous=FULL syncs the WAL on every commit);
	 * large pages suit a store that is mostly message bytes; checkpoints
	 * batched to 64 MiB of WAL so bulk imports are not written twice in
	 * small steps. secure_delete so removed mail does not linger in free
	 * pages. */
	const char *pragmas = "PRAGMA page_size = 16384;"
	                      "PRAGMA journal_mode = WAL;"
	                      "PRAGMA synchronous = FULL;"
	                      "PRAGMA foreign_keys = ON;"
	                      "PRAGMA secure_delete = ON;"
	                      "PRAGMA wal_autocheckpoint = 4096;"
	                      "PRAGMA cache_size = -8192;";
	char *msg = NULL;
	if (sqlite3_exec(s->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(open_error, sizeof(open_error), "store: cannot initialise %s: %s", path,
		         msg != NULL ? msg : "unknown error");
		sqlite3_free(msg);
		*error_r = open_error;
		store_close(&s);
		return -1;
	}
	crashpoint_watch_db(s->db, 4096);
	sqlite3_stmt *ver = NULL;
	int version = 0;
	if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &ver,
	                       NULL) == SQLITE_OK &&
	    sqlite3_step(ver) == SQLITE_ROW)
		version = sqlite3_column_int(ver, 0);
	sqlite3_finalize(ver);
	if (version == 1) {
		if (sqlite3_exec(s->db, migrate_1_2, NULL, NULL, &msg) != SQLITE_OK) {
			snprintf(open_error, sizeof(open_error), "store: cannot upgrade %s: %s",
			         path, msg != NULL ? msg : "unknown error");
			sqlite3_free(msg);
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
			*error_r = open_error;
			store_close(&s);
			return -1;
		}
		version = 2;
	}
	if (version == 2) {
		char why[256];
		if (store_upgrade_2_3(s->db, schema3_sql, why, sizeof(why)) < 0) {
			snprintf(open_error, sizeof(open_error), "store: cannot upgrade %s: %s",
			         path, why);
			*error_r = open_error;
			store_close(&s);
			return -1;
		}
		version = 3;
	} else if (version == STORE_SCHEMA_VERSION &&
	           (sqlite3_exec(s->db, schema3_sql, NULL, NULL, &msg) != SQLITE_OK ||
	            sqlite3_exec(s->db, schema3_unique_sql, NULL, NULL, &msg) != SQLITE_OK)) {
		snprintf(open_error, sizeof(open_error), "store: cannot initialise %s: %s", path,
		         msg != NULL ? msg : "unknown error");
		sqlite3_free(msg);
		*error_r = open_error;
		store_close(&s);
		return -1;
	}
	if (version != STORE_SCHEMA_VERSION) {
		snprintf(open_error, sizeof(open_error),
		         "store: %s has schema version %d, this mailkeep knows %d", path, version,
		         STORE_SCHEMA_VERSION);
		*error_r = open_error;
		store_close(&s);
		return -1;
	}
	if (store_envelope_open(s, error_r) < 0 || store_local_schema(s, error_r) < 0 ||
	    store_fts_schema(s, error_r) < 0 || store_outbox_schema(s, error_r) < 0 ||
	    store_identity_schema(s, error_r) < 0 || store_provider_schema(s, error_r) < 0) {
		snprintf(open_error, sizeof(open_error), "%s", *error_r);
		*error_r = open_error;
		store_close(&s);
		return -1;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &s->stmt[i], NULL) != SQLITE_OK) {
			snprintf(open_error, sizeof(open_error), "store: prepare failed: %s",
			         sqlite3_errmsg(s->db));
			*error_r = open_error;
			store_close(&s);
			return -1;
		}
	}
	if (store_counts_schema(s, error_r) < 0 || store_envelope_catch_up(s, error_r) < 0) {
		snprintf(open_error, sizeof(open_error), "%s", *error_r);
		*error_r = open_error;
		store_close(&s);
		return -1;
	}
	*store_r = s;
	return 0;
}

void store_close(struct store **store)
{
	struct store *s = *store;
	if (s == NULL)
		return;
	if (s->in_txn)
		store_rollback(s);
	store_envelope_close(s);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	if (s->db != NULL)
		sqlite3_close_v2(s->db);
	free(s);
	*store = NULL;
}

int store_begin(struct store *s, const char **error_r)
{
	if (stmt_done(s, stmt_get(s, ST_BEGIN), "begin", error_r) < 0)
		return -1;
	s->in_txn = true;
	sqlite3_stmt *st = stmt_get(s, ST_GET_MODSEQ);
	if (sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_err(s, "read change counter");
		sqlite3_reset(st);
		store_rollback(s);
		return -1;
	}
	s->modseq = (uint64_t)sqlite3_column_int64(st, 0);
	s->modseq_at_begin = s->modseq;
	sqlite3_reset(st);
	return 0;
}

int store_commit(struct store *s, const char **error_r)
{
	/* Unchanged counter: nothing to write, and a transaction that wrote
	 * nothing commits without touching the disk. */
	if (txn_lost(s)) {
		*error_r = txn_lost_error(s, "commit");
		s->in_txn = false;
		return -1;
	}
	sqlite3_stmt *st = stmt_get(s, ST_SET_MODSEQ);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)s->modseq);
	if ((s->modseq != s->modseq_at_begin &&
	     stmt_done(s, st, "write change counter", error_r) < 0) ||
	    stmt_done(s, stmt_get(s, ST_COMMIT), "commit", error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	s->in_txn = false;
	return 0;
}

void store_rollback(struct store *s)
{
	if (!s->in_txn)
		return;
	sqlite3_step(stmt_get(s, ST_ROLLBACK));
	sqlite3_reset(s->stmt[ST_ROLLBACK]);
	s->in_txn = false;
}

uint64_t store_modseq(struct store *s)
{
	return s->modseq;
}

static int64_t next_modseq(struct store *s)
{
	return (int64_t)++s->modseq;
}

uint64_t store_next_modseq(struct store *s)
{
	return (uint64_t)next_modseq(s);
}

static int message_remove(struct store *s, int64_t mailbox_id, int64_t uid, const char **error_r);

static int tombstone(struct store *s, const char *kind, int64_t id, int64_t parent_id,
                     int64_t account_id, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_TOMBSTONE);
	sqlite3_bind_int64(st, 1, next_modseq(s));
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	sqlite3_bind_int64(st, 4, parent_id);
	sqlite3_bind_int64(st, 5, account_id);
	return stmt_done(s, st, "tombstone", error_r);
}

int store_account_ensure(struct store *s, const char *key, int64_t *account_id_r,
                         const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_ACCOUNT_GET);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*account_id_r = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		return 0;
	}
	sqlite3_reset(st);
	st = stmt_get(s, ST_ACCOUNT_ADD);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (stmt_done(s, st, "add account", error_r) < 0)
		return -1;
	*account_id_r = sqlite3_last_insert_rowid(s->db);
	return 0;
}

static char *dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t != NULL ? strdup((const char *)t) : NULL;
}

static int mailboxes_read(struct store *s, sqlite3_stmt *st, struct store_mailbox **boxes_r,
                          size_t *count_r, const char **error_r)
{
	struct store_mailbox *boxes = NULL;
	size_t count = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			struct store_mailbox *nb = realloc(boxes, cap * sizeof(*boxes));
			if (nb == NULL)
				break;
			boxes = nb;
		}
		struct store_mailbox *b = &boxes[count++];
		memset(b, 0, sizeof(*b));
		b->id = sqlite3_column_int64(st, 0);
		b->name = dup_col(st, 1);
		const unsigned char *d = sqlite3_column_text(st, 2);
		b->delim = d != NULL ? (char)d[0] : 0;
		b->role = dup_col(st, 3);
		b->uidvalidity = (uint32_t)sqlite3_column_int64(st, 4);
		b->uidnext = (uint32_t)sqlite3_column_int64(st, 5);
		b->highestmodseq = (uint64_t)sqlite3_column_int64(st, 6);
		b->noselect = sqlite3_column_int(st, 7) != 0;
		b->imap_uidvalidity = (uint32_t)sqlite3_column_int64(st, 8);
		b->imap_uidnext = (uint32_t)sqlite3_column_int64(st, 9);
		if (b->name == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_mailboxes_free(&boxes, count);
		*error_r = store_err(s, "list mailboxes");
		return -1;
	}
	*boxes_r = boxes;
	*count_r = count;
	return 0;
}

int store_mailboxes(struct store *s, int64_t account_id, struct store_mailbox **boxes_r,
                    size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_LIST);
	sqlite3_bind_int64(st, 1, account_id);
	return mailboxes_read(s, st, boxes_r, count_r, error_r);
}

int store_mailboxes_all(struct store *s, struct store_mailbox **boxes_r, size_t *count_r,
                        const char **error_r)
{
	return mailboxes_read(s, stmt_get(s, ST_MBOX_LIST_ALL), boxes_r, count_r, error_r);
}

void store_mailboxes_free(struct store_mailbox **boxes, size_t count)
{
	if (*boxes == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*boxes)[i].name);
		free((*boxes)[i].role);
	}
	free(*boxes);
	*boxes = NULL;
}

static void bind_delim(sqlite3_stmt *st, int col, char delim)
{
	if (delim == 0)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_text(st, col, &delim, 1, SQLITE_TRANSIENT);
}

static void bind_text_or_null(sqlite3_stmt *st, int col, const char *text)
{
	if (text == NULL)
		sqlite3_bind_null(st, col);
	else
		sqlite3_bind_text(st, col, text, -1, SQLITE_STATIC);
}

int store_mailbox_create(struct store *s, int64_t account_id, const char *name, char delim,
                         const char *role, int64_t *mailbox_id_r, const char **error_r)
{
	return store_mailbox_create_noselect(s, account_id, name, delim, role, false, mailbox_id_r,
	                                     error_r);
}

int store_mailbox_create_noselect(struct store *s, int64_t account_id, const char *name, char delim,
                                  const char *role, bool noselect, int64_t *mailbox_id_r,
                                  const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_ADD);
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	bind_delim(st, 3, delim);
	bind_text_or_null(st, 4, role);
	int64_t id = next_modseq(s);
	sqlite3_bind_int64(st, 5, id);
	sqlite3_bind_int(st, 6, noselect ? 1 : 0);
	if (stmt_done(s, st, "create mailbox", error_r) < 0)
		return -1;
	*mailbox_id_r = id;
	return 0;
}

int store_mailbox_set_noselect(struct store *s, int64_t mailbox_id, bool noselect,
                               const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_NOSELECT);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int(st, 2, noselect ? 1 : 0);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(s->modseq + 1));
	if (stmt_done(s, st, "set mailbox selectable", error_r) < 0)
		return -1;
	if (sqlite3_changes(s->db) > 0)
		next_modseq(s);
	return 0;
}

int store_mailbox_rename(struct store *s, int64_t mailbox_id, const char *name, char delim,
                         const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_RENAME);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	bind_delim(st, 3, delim);
	sqlite3_bind_int64(st, 4, next_modseq(s));
	return stmt_done(s, st, "rename mailbox", error_r);
}

int store_mailbox_set_role(struct store *s, int64_t mailbox_id, const char *role,
                           const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_ROLE);
	sqlite3_bind_int64(st, 1, mailbox_id);
	bind_text_or_null(st, 2, role);
	sqlite3_bind_int64(st, 3, next_modseq(s));
	return stmt_done(s, st, "set mailbox role", error_r);
}

int store_mailbox_set_state(struct store *s, int64_t mailbox_id, uint32_t uidvalidity,
                            uint32_t uidnext, uint64_t highestmodseq, const char **error_r)
{
	if (!s->in_txn) {
		/* On its own it would claim messages no transaction stored. */
		*error_r = "store: sync state saved outside a transaction";
		return -1;
	}
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_STATE);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidvalidity);
	sqlite3_bind_int64(st, 3, uidnext);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)highestmodseq);
	return stmt_done(s, st, "save sync state", error_r);
}

int store_mailbox_delete(struct store *s, int64_t mailbox_id, const char **error_r)
{
	uint32_t *uids = NULL;
	size_t count = 0;
	if (store_local_purge_mailbox(s, mailbox_id, error_r) < 0 ||
	    store_mailbox_uids(s, mailbox_id, &uids, &count, error_r) < 0)
		return -1;
	for (size_t i = 0; i < count; i++) {
		if (store_message_expunge(s, mailbox_id, uids[i], error_r) < 0) {
			free(uids);
			return -1;
		}
	}
	free(uids);
	int64_t account_id = 0;
	char *key = NULL;
	if (store_mailbox_account(s, mailbox_id, &account_id, &key, error_r) < 0)
		return -1;
	free(key);
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_DEL);
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (stmt_done(s, st, "delete mailbox", error_r) < 0)
		return -1;
	return tombstone(s, "mailbox", mailbox_id, 0, account_id, error_r);
}

int store_blob_begin(struct store *s, uint64_t size, struct store_blob_writer **w_r,
                     const char **error_r)
{
	if (size > (uint64_t)INT32_MAX) {
		*error_r = "store: message larger than 2 GiB";
		return -1;
	}
	sqlite3_stmt *st = stmt_get(s, ST_BLOB_ADD);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)size);
	if (stmt_done(s, st, "add message bytes", error_r) < 0)
		return -1;
	struct store_blob_writer *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	w->store = s;
	w->id = sqlite3_last_insert_rowid(s->db);
	w->size = size;
	w->md = EVP_MD_CTX_new();
	if (w->md == NULL || EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1) {
		*error_r = "store: cannot start SHA-256";
		store_blob_abort(&w);
		return -1;
	}
	if (size > 0 &&
	    sqlite3_blob_open(s->db, "main", "blobs", "data", w->id, 1, &w->blob) != SQLITE_OK) {
		*error_r = store_err(s, "open message bytes");
		store_blob_abort(&w);
		return -1;
	}
	*w_r = w;
	return 0;
}

int store_blob_write(struct store_blob_writer *w, const void *data, size_t len,
                     const char **error_r)
{
	if (len > w->size - w->written) {
		*error_r = "store: more message bytes than announced";
		return -1;
	}
	if (len == 0)
		return 0;
	if (sqlite3_blob_write(w->blob, data, (int)len, (int)w->written) != SQLITE_OK) {
		*error_r = store_err(w->store, "write message bytes");
		return -1;
	}
	EVP_DigestUpdate(w->md, data, len);
	w->written += len;
	return 0;
}

int store_blob_finish(struct store_blob_writer **wp, int64_t *blob_id_r, const char **error_r)
{
	struct store_blob_writer *w = *wp;
	struct store *s = w->store;
	if (w->written != w->size) {
		*error_r = "store: fewer message bytes than announced";
		store_blob_abort(wp);
		return -1;
	}
	unsigned char hash[32];
	unsigned int hlen = 0;
	EVP_DigestFinal_ex(w->md, hash, &hlen);
	if (w->blob != NULL) {
		sqlite3_blob_close(w->blob);
		w->blob = NULL;
	}
	sqlite3_stmt *st = stmt_get(s, ST_BLOB_BY_HASH);
	sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
	int64_t existing = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		existing = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (existing != 0) {
		/* Same content stored already: keep that one. */
		store_blob_abort(wp);
		*blob_id_r = existing;
		return 0;
	}
	st = stmt_get(s, ST_BLOB_SET_HASH);
	sqlite3_bind_int64(st, 1, w->id);
	sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
	if (stmt_done(s, st, "record message hash", error_r) < 0) {
		store_blob_abort(wp);
		return -1;
	}
	*blob_id_r = w->id;
	EVP_MD_CTX_free(w->md);
	free(w);
	*wp = NULL;
	return 0;
}

void store_blob_abort(struct store_blob_writer **wp)
{
	struct store_blob_writer *w = *wp;
	if (w == NULL)
		return;
	if (w->blob != NULL)
		sqlite3_blob_close(w->blob);
	sqlite3_stmt *st = stmt_get(w->store, ST_BLOB_DEL);
	sqlite3_bind_int64(st, 1, w->id);
	sqlite3_step(st);
	sqlite3_reset(st);
	EVP_MD_CTX_free(w->md);
	free(w);
	*wp = NULL;
}

int store_blob_read(struct store *s, int64_t blob_id, uint64_t offset, void *buf, size_t len,
                    const char **error_r)
{
	sqlite3_blob *b = NULL;
	if (sqlite3_blob_open(s->db, "main", "blobs", "data", blob_id, 0, &b) != SQLITE_OK) {
		*error_r = store_err(s, "open message bytes");
		sqlite3_blob_close(b);
		return -1;
	}
	int rc = sqlite3_blob_read(b, buf, (int)len, (int)offset);
	sqlite3_blob_close(b);
	if (rc != SQLITE_OK) {
		*error_r = store_err(s, "read message bytes");
		return -1;
	}
	return 0;
}

static int message_get(struct store *s, int64_t mailbox_id, int64_t uid, int64_t *id_r,
                       int64_t *blob_id_r, unsigned *flags_r, char **keywords_r,
                       const char **error_r);

int store_email_refresh(struct store *s, int64_t email_id, bool force, const char **error_r)
{
	unsigned flags, old_flags = 0;
	char *kw = NULL;
	if (store_email_union(s->stmt[ST_EMAIL_MEMBERS], email_id, &flags, &kw) < 0) {
		*error_r = store_err(s, "read memberships");
		return -1;
	}
	bool same = false;
	if (!force) {
		sqlite3_stmt *st = stmt_get(s, ST_EMAIL_GET);
		sqlite3_bind_int64(st, 1, email_id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			old_flags = (unsigned)sqlite3_column_int(st, 0);
			const unsigned char *okw = sqlite3_column_text(st, 1);
			same =
			    old_flags == flags && okw != NULL && strcmp((const char *)okw, kw) == 0;
		}
		sqlite3_reset(st);
	}
	int r = 0;
	if (!same) {
		sqlite3_stmt *st = stmt_get(s, ST_EMAIL_SET);
		sqlite3_bind_int64(st, 1, email_id);
		sqlite3_bind_int(st, 2, (int)flags);
		sqlite3_bind_text(st, 3, kw, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)s->modseq);
		r = stmt_done(s, st, "update email", error_r);
	}
	free(kw);
	return r;
}

int store_member_add(struct store *s, int64_t mailbox_id, int64_t uid, int64_t blob_id,
                     unsigned flags, const char *keywords, int64_t internaldate, int64_t email_id,
                     int64_t *message_id_r, int64_t *email_id_r, const char **error_r)
{
	/* The hub's own UID in the mailbox, taken in this transaction. */
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_NEXT_IMAP_UID);
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	int64_t imap_uid = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	int64_t account_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE || imap_uid == 0) {
		*error_r = imap_uid == 0 && rc == SQLITE_DONE ? "store: no such mailbox"
		                                              : store_err(s, "allocate UID");
		return -1;
	}
	if (imap_uid > UINT32_MAX) {
		*error_r = "store: the mailbox has used up its IMAP UIDs";
		return -1;
	}
	/* The id is the change that created the row: unique, increasing and
	 * never reused, as JMAP ids must be. */
	int64_t id = next_modseq(s);
	if (uid < 0)
		uid = STORE_LOCAL_UID_BASE + id;
	if (keywords == NULL)
		keywords = "";
	bool created = false;
	if (email_id == 0) {
		st = stmt_get(s, ST_EMAIL_FIND);
		sqlite3_bind_int64(st, 1, account_id);
		sqlite3_bind_int64(st, 2, blob_id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			email_id = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			*error_r = store_err(s, "look up email");
			return -1;
		}
	}
	if (email_id == 0) {
		/* A new Email: its id is its first membership's. */
		email_id = id;
		created = true;
		st = stmt_get(s, ST_EMAIL_ADD);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, account_id);
		sqlite3_bind_int64(st, 3, blob_id);
		sqlite3_bind_int(st, 4, (int)(flags & ~(unsigned)STORE_FLAG_DELETED));
		sqlite3_bind_text(st, 5, keywords, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, internaldate);
		if (stmt_done(s, st, "add email", error_r) < 0)
			return -1;
	}
	st = stmt_get(s, ST_MSG_ADD);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, blob_id);
	sqlite3_bind_int(st, 4, (int)flags);
	sqlite3_bind_text(st, 5, keywords, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, internaldate);
	sqlite3_bind_int64(st, 7, id);
	sqlite3_bind_int64(st, 8, email_id);
	sqlite3_bind_int64(st, 9, imap_uid);
	if (stmt_done(s, st, "add message", error_r) < 0)
		return -1;
	if (created ? store_envelope_message_added(s, email_id, blob_id, error_r) < 0
	            : store_email_refresh(s, email_id, true, error_r) < 0)
		return -1;
	if (message_id_r != NULL)
		*message_id_r = id;
	if (email_id_r != NULL)
		*email_id_r = email_id;
	return 0;
}

int store_member_remove(struct store *s, int64_t message_id, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MSG_BY_ID);
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	int64_t mailbox_id = 0, blob_id = 0, email_id = 0, account_id = 0;
	if (rc == SQLITE_ROW) {
		mailbox_id = sqlite3_column_int64(st, 0);
		blob_id = sqlite3_column_int64(st, 1);
		email_id = sqlite3_column_int64(st, 2);
		account_id = sqlite3_column_int64(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "look up message");
		return -1;
	}
	st = stmt_get(s, ST_MSG_DEL);
	sqlite3_bind_int64(st, 1, message_id);
	if (stmt_done(s, st, "remove message", error_r) < 0 ||
	    tombstone(s, "message", message_id, mailbox_id, account_id, error_r) < 0)
		return -1;
	/* The Email goes with its last membership. */
	st = stmt_get(s, ST_EMAIL_MEMBERS);
	sqlite3_bind_int64(st, 1, email_id);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW) {
		if (store_email_refresh(s, email_id, true, error_r) < 0)
			return -1;
	} else {
		/* The thread trigger records its changes under the next change
		 * counter value, which the tombstone then takes. */
		st = stmt_get(s, ST_EMAIL_DEL);
		sqlite3_bind_int64(st, 1, email_id);
		if (stmt_done(s, st, "remove email", error_r) < 0 ||
		    tombstone(s, "email", email_id, mailbox_id, account_id, error_r) < 0)
			return -1;
	}
	st = stmt_get(s, ST_BLOB_GC);
	sqlite3_bind_int64(st, 1, blob_id);
	return stmt_done(s, st, "remove message bytes", error_r);
}

int store_message_add(struct store *s, int64_t mailbox_id, uint32_t uid, int64_t blob_id,
                      unsigned flags, const char *keywords, int64_t internaldate,
                      const char **error_r)
{
	/* A message already at this UID is replaced properly: set aside,
	 * the new one added, then the old one removed with a tombstone (its
	 * bytes go only if the new message does not share them). */
	int64_t old_id, old_blob;
	unsigned old_flags;
	int existing =
	    message_get(s, mailbox_id, uid, &old_id, &old_blob, &old_flags, NULL, error_r);
	if (existing < 0)
		return -1;
	if (existing == 1 && old_blob == blob_id) {
		/* The same message again (a sync that fetched a UID the replay had
		 * paired already): the membership stays, with its ids and the
		 * hub's IMAP UID; only its flags follow the server. */
		return store_message_set_flags(s, mailbox_id, uid, flags, keywords, error_r);
	}
	if (existing == 1) {
		sqlite3_stmt *stash = stmt_get(s, ST_MSG_STASH_ONE);
		sqlite3_bind_int64(stash, 1, old_id);
		if (stmt_done(s, stash, "replace message", error_r) < 0)
			return -1;
	}
	if (store_member_add(s, mailbox_id, uid, blob_id, flags, keywords, internaldate, 0, NULL,
	                     NULL, error_r) < 0)
		return -1;
	return existing == 1 ? store_member_remove(s, old_id, error_r) : 0;
}

/* Look up (mailbox, uid): 1 found, 0 not found, -1 error. */
static int message_get(struct store *s, int64_t mailbox_id, int64_t uid, int64_t *id_r,
                       int64_t *blob_id_r, unsigned *flags_r, char **keywords_r,
                       const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MSG_GET);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(st, 0);
		*blob_id_r = sqlite3_column_int64(st, 1);
		*flags_r = (unsigned)sqlite3_column_int(st, 2);
		if (keywords_r != NULL)
			*keywords_r = dup_col(st, 3);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "look up message");
	return -1;
}

int store_member_set_flags(struct store *s, int64_t message_id, unsigned flags,
                           const char *keywords, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MSG_FLAGS);
	sqlite3_bind_int64(st, 1, message_id);
	sqlite3_bind_int(st, 2, (int)flags);
	sqlite3_bind_text(st, 3, keywords != NULL ? keywords : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, next_modseq(s));
	if (stmt_done(s, st, "set flags", error_r) < 0)
		return -1;
	st = stmt_get(s, ST_MSG_BY_ID);
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	int64_t email_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 2) : 0;
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		*error_r = rc == SQLITE_DONE ? "store: no such message" : store_err(s, "set flags");
		return -1;
	}
	return store_email_refresh(s, email_id, false, error_r);
}

int store_message_set_flags(struct store *s, int64_t mailbox_id, uint32_t uid, unsigned flags,
                            const char *keywords, const char **error_r)
{
	int64_t id, blob_id;
	unsigned old_flags;
	char *old_keywords = NULL;
	int r = message_get(s, mailbox_id, uid, &id, &blob_id, &old_flags, &old_keywords, error_r);
	if (r <= 0)
		return r;
	if (keywords == NULL)
		keywords = "";
	bool same =
	    old_flags == flags && old_keywords != NULL && strcmp(old_keywords, keywords) == 0;
	free(old_keywords);
	if (same)
		return 0;
	/* A keyword change made through the device API wins until the
	 * two-way sync has carried it to the server. */
	int held = store_local_holds_flags(s, id, error_r);
	if (held != 0)
		return held < 0 ? -1 : 0;
	return store_member_set_flags(s, id, flags, keywords, error_r);
}

static int message_remove(struct store *s, int64_t mailbox_id, int64_t uid, const char **error_r)
{
	int64_t id, blob_id;
	unsigned flags;
	int r = message_get(s, mailbox_id, uid, &id, &blob_id, &flags, NULL, error_r);
	if (r <= 0)
		return r;
	return store_member_remove(s, id, error_r);
}

int store_message_expunge(struct store *s, int64_t mailbox_id, uint32_t uid, const char **error_r)
{
	return message_remove(s, mailbox_id, uid, error_r);
}

int store_message_set_uid(struct store *s, int64_t mailbox_id, uint32_t old_uid, uint32_t new_uid,
                          int64_t internaldate, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MSG_SET_UID);
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, old_uid);
	sqlite3_bind_int64(st, 3, new_uid);
	sqlite3_bind_int64(st, 4, next_modseq(s));
	sqlite3_bind_int64(st, 5, internaldate);
	int rc = sqlite3_step(st);
	int64_t email_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "renumber message");
		return -1;
	}
	return email_id != 0 ? store_email_refresh(s, email_id, true, error_r) : 0;
}

int store_mailbox_count(struct store *s, int64_t mailbox_id, uint32_t *count_r,
                        const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MBOX_COUNT);
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		*error_r = store_err(s, "count messages");
		return -1;
	}
	*count_r = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return 0;
}

int store_mailbox_stash_uids(struct store *s, int64_t mailbox_id, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, ST_MSG_STASH);
	sqlite3_bind_int64(st, 1, mailbox_id);
	return stmt_done(s, st, "set messages aside", error_r);
}

/* Run a one-column UID query for mailbox_id and collect the results. */
static int collect_uids(struct store *s, enum stmt_id id, int64_t mailbox_id, uint32_t **uids_r,
                        size_t *count_r, const char *what, const char **error_r)
{
	sqlite3_stmt *st = stmt_get(s, id);
	sqlite3_bind_int64(st, 1, mailbox_id);
	uint32_t *uids = NULL;
	size_t count = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&uids, &cap, count, sizeof(*uids)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(uids);
		*error_r = store_err(s, what);
		return -1;
	}
	*uids_r = uids;
	*count_r = count;
	return 0;
}

int store_mailbox_drop_stashed(struct store *s, int64_t mailbox_id, const char **error_r)
{
	/* Collect first: expunging while the query runs would disturb it. */
	uint32_t *uids;
	size_t count;
	if (collect_uids(s, ST_MSG_STASHED, mailbox_id, &uids, &count, "list stashed messages",
	                 error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < count && ret == 0; i++)
		ret = message_remove(s, mailbox_id, -(int64_t)uids[i], error_r);
	free(uids);
	return ret;
}

int store_mailbox_uids(struct store *s, int64_t mailbox_id, uint32_t **uids_r, size_t *count_r,
                       const char **error_r)
{
	return collect_uids(s, ST_MSG_UIDS, mailbox_id, uids_r, count_r, "list message UIDs",
	                    error_r);
}

int store_iter_init(struct store *s, int64_t mailbox_id, struct store_iter **it_r,
                    const char **error_r)
{
	struct store_iter *it = calloc(1, sizeof(*it));
	if (it == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	/* A private statement, so iteration can interleave with other calls. */
	if (sqlite3_prepare_v2(s->db, stmt_sql[ST_MSG_ITER], -1, &it->stmt, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "iterate messages");
		free(it);
		return -1;
	}
	sqlite3_bind_int64(it->stmt, 1, mailbox_id);
	it->store = s;
	*it_r = it;
	return 0;
}

bool store_iter_next(struct store_iter *it, struct store_msg *msg_r)
{
	int rc = sqlite3_step(it->stmt);
	if (rc != SQLITE_ROW) {
		it->failed = rc != SQLITE_DONE;
		return false;
	}
	int64_t uid = sqlite3_column_int64(it->stmt, 0);
	msg_r->uid = (uint32_t)uid;
	msg_r->local = uid >= STORE_LOCAL_UID_BASE;
	msg_r->blob_id = sqlite3_column_int64(it->stmt, 1);
	msg_r->size = (uint64_t)sqlite3_column_int64(it->stmt, 2);
	msg_r->flags = (unsigned)sqlite3_column_int(it->stmt, 3);
	const unsigned char *kw = sqlite3_column_text(it->stmt, 4);
	msg_r->keywords = kw != NULL ? (const char *)kw : "";
	msg_r->internaldate = sqlite3_column_int64(it->stmt, 5);
	return true;
}

int store_iter_deinit(struct store_iter **itp, const char **error_r)
{
	struct store_iter *it = *itp;
	if (it == NULL)
		return 0;
	int ret = 0;
	if (it->failed) {
		*error_r = store_err(it->store, "iterate messages");
		ret = -1;
	}
	sqlite3_finalize(it->stmt);
	free(it);
	*itp = NULL;
	return ret;
}

int store_account_remove(struct store *s, const char *key, struct store_removal *removed_r,
                         const char **error_r)
{
	struct store_removal rm = {0, 0, 0, 0};
	sqlite3_stmt *st = NULL;
	int64_t account_id = 0;
	st = stmt_get(s, ST_ACCOUNT_GET);
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		account_id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (account_id == 0) {
		*removed_r = rm;
		return 0;
	}
	/* Bytes that will go: those no other account's message shares. */
	st = NULL;
	if (sqlite3_prepare_v2(s->db,
	                       "SELECT count(*), coalesce(sum(size), 0) FROM blobs WHERE id IN "
	                       "(SELECT m.blob_id FROM messages m JOIN mailboxes b ON b.id = "
	                       "m.mailbox_id WHERE b.account_id = ?1) AND id NOT IN "
	                       "(SELECT m.blob_id FROM messages m JOIN mailboxes b ON b.id = "
	                       "m.mailbox_id WHERE b.account_id != ?1)",
	                       -1, &st, NULL) != SQLITE_OK ||
	    (sqlite3_bind_int64(st, 1, account_id), sqlite3_step(st)) != SQLITE_ROW) {
		sqlite3_finalize(st);
		*error_r = store_err(s, "count account data");
		return -1;
	}
	rm.blobs = (uint64_t)sqlite3_column_int64(st, 0);
	rm.bytes = (uint64_t)sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	if (store_mailboxes(s, account_id, &boxes, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint32_t count;
		if (store_mailbox_count(s, boxes[i].id, &count, error_r) < 0 ||
		    store_mailbox_delete(s, boxes[i].id, error_r) < 0) {
			store_mailboxes_free(&boxes, n);
			return -1;
		}
		rm.messages += count;
		rm.mailboxes++;
	}
	store_mailboxes_free(&boxes, n);
	if (store_local_forget_account(s, account_id, error_r) < 0)
		return -1;
	st = NULL;
	if (sqlite3_prepare_v2(s->db, "DELETE FROM accounts WHERE id = ?1", -1, &st, NULL) !=
	        SQLITE_OK ||
	    (sqlite3_bind_int64(st, 1, account_id), sqlite3_step(st)) != SQLITE_DONE) {
		sqlite3_finalize(st);
		*error_r = store_err(s, "remove account");
		return -1;
	}
	sqlite3_finalize(st);
	/* The removed text must not linger in old full-text segments. */
	if (store_fts_optimize(s, error_r) < 0)
		return -1;
	*removed_r = rm;
	return 0;
}

int store_local_deliver(struct store *s, const void *data, size_t len, int64_t date,
                        const char **error_r)
{
	int64_t account_id, mailbox_id = 0, blob_id;
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	uint32_t uidnext = 1;
	if (store_account_ensure(s, "hub:local", &account_id, error_r) < 0 ||
	    store_mailboxes(s, account_id, &boxes, &n, error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(boxes[i].name, "INBOX") == 0) {
			mailbox_id = boxes[i].id;
			uidnext = boxes[i].uidnext;
		}
	}
	store_mailboxes_free(&boxes, n);
	if (mailbox_id == 0 &&
	    store_mailbox_create(s, account_id, "INBOX", '/', "Inbox", &mailbox_id, error_r) < 0)
		return -1;
	struct store_blob_writer *w;
	if (store_blob_begin(s, len, &w, error_r) < 0)
		return -1;
	if (store_blob_write(w, data, len, error_r) < 0 ||
	    store_blob_finish(&w, &blob_id, error_r) < 0) {
		store_blob_abort(&w);
		return -1;
	}
	if (store_message_add(s, mailbox_id, uidnext, blob_id, 0, "", date, error_r) < 0)
		return -1;
	return store_mailbox_set_state(s, mailbox_id, 1, uidnext + 1, 0, error_r);
}

int store_scrub(struct store *s, const char **error_r)
{
	if (sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "checkpoint");
		return -1;
	}
	return 0;
}

int store_counts(struct store *s, uint64_t *messages_r, uint64_t *blobs_r, uint64_t *bytes_r,
                 const char **error_r)
{
	sqlite3_stmt *st = NULL;
	const char *sql = "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM blobs), "
	                  "(SELECT coalesce(sum(size), 0) FROM blobs)";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		*error_r = store_err(s, "count");
		sqlite3_finalize(st);
		return -1;
	}
	*messages_r = (uint64_t)sqlite3_column_int64(st, 0);
	*blobs_r = (uint64_t)sqlite3_column_int64(st, 1);
	*bytes_r = (uint64_t)sqlite3_column_int64(st, 2);
	sqlite3_finalize(st);
	return 0;
}
