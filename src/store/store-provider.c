/* Provider specifics kept per account (see store-provider.h). */
#include "store-provider.h"
#include "store-private.h"

#include <stdio.h>
#include <string.h>

/* 1 when table has column col, 0 not, -1 error. */
static int has_column(sqlite3 *db, const char *table, const char *col)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static const struct {
	const char *table, *col, *decl;
} provider_columns[] = {
    {"emails", "gm_msgid", "INTEGER"},
    {"emails", "gm_thrid", "INTEGER"},
    {"accounts", "gm_ext", "INTEGER NOT NULL DEFAULT 0"},
    {"mailboxes", "plain_scan_at", "INTEGER NOT NULL DEFAULT 0"},
    {"mailboxes", "plain_messages", "INTEGER NOT NULL DEFAULT 0"},
    {"mailboxes", "plain_unseen", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "dl_budget", "INTEGER NOT NULL DEFAULT -1"},
    {"accounts", "dl_day", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "dl_used", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "paced", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "status_messages", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "held_messages", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "bytes_done", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "last_sync_at", "INTEGER NOT NULL DEFAULT 0"},
    {"accounts", "last_error", "TEXT"},
    {"accounts", "last_error_at", "INTEGER NOT NULL DEFAULT 0"},
};

int store_provider_schema(struct store *s, const char **error_r)
{
	sqlite3 *db = store_db(s);
	bool missing = false;
	for (size_t i = 0; i < sizeof(provider_columns) / sizeof(provider_columns[0]); i++) {
		int h = has_column(db, provider_columns[i].table, provider_columns[i].col);
		if (h < 0)
			goto fail;
		missing |= h == 0;
	}
	if (!missing)
		return 0;
	/* One transaction: either every column is there or none. */
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < sizeof(provider_columns) / sizeof(provider_columns[0]); i++) {
		int h = has_column(db, provider_columns[i].table, provider_columns[i].col);
		char sql[256];
		int n = snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s",
		                 provider_columns[i].table, provider_columns[i].col,
		                 provider_columns[i].decl);
		if (h < 0 || n < 0 || (size_t)n >= sizeof(sql) ||
		    (h == 0 && sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
	}
	if (sqlite3_exec(
	        db,
	        "CREATE INDEX IF NOT EXISTS emails_gm_msgid ON emails(account_id, gm_msgid)"
	        " WHERE gm_msgid IS NOT NULL;"
	        "CREATE INDEX IF NOT EXISTS emails_gm_thrid ON emails(account_id, gm_thrid)"
	        " WHERE gm_thrid IS NOT NULL;"
	        "COMMIT",
	        NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	return 0;
fail:
	*error_r = store_err(s, "provider columns");
	return -1;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st_r, const char **error_r)
{
	if (sqlite3_prepare_v3(store_db(s), sql, -1, SQLITE_PREPARE_PERSISTENT, st_r, NULL) !=
	    SQLITE_OK) {
		*error_r = store_err(s, "provider");
		return -1;
	}
	return 0;
}

/* Step a statement that returns at most one row: 1 row (the statement is
 * left on it; the caller finalizes), 0 none, -1 error. */
static int step_one(struct store *s, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "provider");
	return -1;
}

int store_gmail_find(struct store *s, int64_t mailbox_id, uint64_t msgid, int64_t *blob_id_r,
                     const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "SELECT e.blob_id FROM emails e, mailboxes b WHERE b.id = ?1"
	            " AND e.account_id = b.account_id AND e.gm_msgid = ?2 LIMIT 1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (int64_t)msgid);
	int r = step_one(s, st, error_r);
	if (r == 1)
		*blob_id_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return r;
}

int store_gmail_set_msgid(struct store *s, int64_t mailbox_id, uint32_t uid, uint64_t msgid,
                          const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "UPDATE emails SET gm_msgid = ?3 WHERE id = (SELECT email_id FROM messages"
	            " WHERE mailbox_id = ?1 AND uid = ?2) AND gm_msgid IS NOT ?3",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	sqlite3_bind_int64(st, 3, (int64_t)msgid);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_message_held(struct store *s, int64_t mailbox_id, uint32_t uid, const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s, "SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2", &st, error_r) <
	    0)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	return r;
}

int store_provider_get(struct store *s, int64_t account_id, struct store_provider_state *st_r,
                       const char **error_r)
{
	sqlite3_stmt *st;
	memset(st_r, 0, sizeof(*st_r));
	st_r->dl_budget = -1;
	if (prepare(s,
	            "SELECT gm_ext, dl_budget, dl_day, dl_used, paced, status_messages,"
	            " held_messages, bytes_done FROM accounts WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int r = step_one(s, st, error_r);
	if (r == 1) {
		st_r->gm_ext = sqlite3_column_int(st, 0) != 0;
		st_r->dl_budget = sqlite3_column_int64(st, 1);
		st_r->dl_day = sqlite3_column_int64(st, 2);
		st_r->dl_used = (uint64_t)sqlite3_column_int64(st, 3);
		st_r->paced = sqlite3_column_int(st, 4) != 0;
		st_r->status_messages = (uint64_t)sqlite3_column_int64(st, 5);
		st_r->held_messages = (uint64_t)sqlite3_column_int64(st, 6);
		st_r->bytes_done = (uint64_t)sqlite3_column_int64(st, 7);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_provider_put(struct store *s, int64_t account_id, const struct store_provider_state *p,
                       const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "UPDATE accounts SET gm_ext = ?2, dl_day = ?3, dl_used = ?4, paced = ?5,"
	            " status_messages = ?6, held_messages = ?7, bytes_done = ?8 WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int(st, 2, p->gm_ext ? 1 : 0);
	sqlite3_bind_int64(st, 3, p->dl_day);
	sqlite3_bind_int64(st, 4, (int64_t)p->dl_used);
	sqlite3_bind_int(st, 5, p->paced ? 1 : 0);
	sqlite3_bind_int64(st, 6, (int64_t)p->status_messages);
	sqlite3_bind_int64(st, 7, (int64_t)p->held_messages);
	sqlite3_bind_int64(st, 8, (int64_t)p->bytes_done);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_provider_set_budget(struct store *s, int64_t account_id, int64_t budget,
                              const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s, "UPDATE accounts SET dl_budget = ?2 WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, budget < 0 ? -1 : budget);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_account_server_messages(struct store *s, int64_t account_id, uint64_t *count_r,
                                  const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "SELECT count(*) FROM messages m, mailboxes b WHERE b.account_id = ?1"
	            " AND m.mailbox_id = b.id AND m.uid < 4294967296",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int r = step_one(s, st, error_r);
	*count_r = r == 1 ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

static int exec_bound(struct store *s, const char *sql, int64_t a, int64_t b, int64_t c,
                      const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s, sql, &st, error_r) < 0)
		return -1;
	int n = sqlite3_bind_parameter_count(st);
	sqlite3_bind_int64(st, 1, a);
	if (n >= 2)
		sqlite3_bind_int64(st, 2, b);
	if (n >= 3)
		sqlite3_bind_int64(st, 3, c);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_gmail_set_thread(struct store *s, int64_t mailbox_id, uint32_t uid, uint64_t thrid,
                           const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "SELECT e.id, e.thread_id, e.account_id FROM messages m, emails e"
	            " WHERE m.mailbox_id = ?1 AND m.uid = ?2 AND e.id = m.email_id",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	int r = step_one(s, st, error_r);
	int64_t email_id = 0, thread = 0, account = 0;
	if (r == 1) {
		email_id = sqlite3_column_int64(st, 0);
		thread = sqlite3_column_int64(st, 1);
		account = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (r <= 0)
		return r;
	if (exec_bound(s, "UPDATE emails SET gm_thrid = ?2 WHERE id = ?1", email_id, (int64_t)thrid,
	               0, error_r) < 0)
		return -1;
	/* The thread of another Email of this Gmail thread. */
	if (prepare(s,
	            "SELECT min(thread_id) FROM emails WHERE account_id = ?1 AND gm_thrid = ?2"
	            " AND id != ?3 AND thread_id != 0",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account);
	sqlite3_bind_int64(st, 2, (int64_t)thrid);
	sqlite3_bind_int64(st, 3, email_id);
	r = step_one(s, st, error_r);
	int64_t other = r == 1 ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (r < 0)
		return -1;
	if (other == 0 || thread == 0 || other == thread)
		return 0;
	/* Gmail says they are one conversation: merge into the older
	 * thread, as the header threading merges (a tombstone for the other). */
	int64_t into = other < thread ? other : thread, from = other < thread ? thread : other;
	int64_t modseq = (int64_t)store_modseq(s);
	if (exec_bound(s, "UPDATE emails SET thread_id = ?2, modseq = ?3 WHERE thread_id = ?1",
	               from, into, modseq, error_r) < 0 ||
	    exec_bound(s, "UPDATE thread_refs SET thread_id = ?2 WHERE thread_id = ?1", from, into,
	               0, error_r) < 0 ||
	    exec_bound(s, "DELETE FROM threads WHERE id = ?1", from, 0, 0, error_r) < 0 ||
	    exec_bound(s,
	               "INSERT INTO tombstones(modseq, kind, object_id, account_id)"
	               " VALUES (?1, 'thread', ?2, ?3)",
	               modseq, from, account, error_r) < 0 ||
	    exec_bound(s, "UPDATE threads SET modseq = ?2 WHERE id = ?1", into, modseq, 0,
	               error_r) < 0)
		return -1;
	return 0;
}

int store_plain_scan_get(struct store *s, int64_t mailbox_id, struct store_plain_scan *scan_r,
                         const char **error_r)
{
	sqlite3_stmt *st;
	memset(scan_r, 0, sizeof(*scan_r));
	if (prepare(s,
	            "SELECT plain_scan_at, plain_messages, plain_unseen FROM mailboxes"
	            " WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	int r = step_one(s, st, error_r);
	if (r == 1) {
		scan_r->at = sqlite3_column_int64(st, 0);
		scan_r->messages = (uint32_t)sqlite3_column_int64(st, 1);
		scan_r->unseen = (uint32_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_plain_scan_set(struct store *s, int64_t mailbox_id, const struct store_plain_scan *scan,
                         const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "UPDATE mailboxes SET plain_scan_at = ?2, plain_messages = ?3,"
	            " plain_unseen = ?4 WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, scan->at);
	sqlite3_bind_int64(st, 3, scan->messages);
	sqlite3_bind_int64(st, 4, scan->unseen);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_account_status_get(struct store *s, int64_t account_id, struct store_account_status *st_r,
                             const char **error_r)
{
	sqlite3_stmt *st;
	memset(st_r, 0, sizeof(*st_r));
	if (prepare(s, "SELECT last_sync_at, last_error, last_error_at FROM accounts WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int r = step_one(s, st, error_r);
	if (r == 1) {
		const unsigned char *text = sqlite3_column_text(st, 1);
		st_r->synced_at = sqlite3_column_int64(st, 0);
		st_r->failed_at = sqlite3_column_int64(st, 2);
		if (text != NULL)
			snprintf(st_r->error, sizeof(st_r->error), "%s", (const char *)text);
	}
	sqlite3_finalize(st);
	return r < 0 ? -1 : 0;
}

int store_account_status_set(struct store *s, const char *key, int64_t now, const char *failure,
                             const char **error_r)
{
	sqlite3_stmt *st;
	int64_t id;
	if (store_begin(s, error_r) < 0)
		return -1;
	if (store_account_ensure(s, key, &id, error_r) < 0 ||
	    prepare(s,
	            failure == NULL ? "UPDATE accounts SET last_sync_at = ?2, last_error = NULL,"
	                              " last_error_at = 0 WHERE id = ?1"
	                            : "UPDATE accounts SET last_error = ?3, last_error_at = ?2"
	                              " WHERE id = ?1",
	            &st, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now);
	if (failure != NULL)
		sqlite3_bind_text(st, 3, failure, -1, SQLITE_TRANSIENT);
	int r = step_one(s, st, error_r);
	sqlite3_finalize(st);
	if (r < 0 || store_commit(s, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	return 0;
}
