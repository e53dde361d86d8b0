/* The durable outbox (see store-outbox.h). */
#include "store-outbox.h"
#include "store-private.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char outbox_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS outbox("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " account_id INTEGER NOT NULL,"
    " mail_from TEXT NOT NULL,"
    " rcpts TEXT NOT NULL,"   /* addresses separated by "\n" */
    " size INTEGER NOT NULL," /* the bytes live in outbox_data */
    " state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt INTEGER NOT NULL,"
    " owner_pid INTEGER NOT NULL DEFAULT 0,"
    " last_reply TEXT NOT NULL DEFAULT '',"
    " sent_copy TEXT NOT NULL DEFAULT '',"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " email_id INTEGER NOT NULL DEFAULT 0,"    /* the JMAP Email it came from, or 0 */
    " created_seq INTEGER NOT NULL DEFAULT 0," /* outbox change counter at creation */
    " seq INTEGER NOT NULL DEFAULT 0,"         /* ... at its last change */
    /* The Sent copy of a sent message while pending (sent_copy ''): how
     * many attempts were claimed, when the next is due (or the claim's
     * lease ends), what the last one ran into. */
    " copy_attempts INTEGER NOT NULL DEFAULT 0,"
    " copy_next INTEGER NOT NULL DEFAULT 0,"
    " copy_error TEXT NOT NULL DEFAULT '');"
    /* The outbox's own change counter (JMAP EmailSubmission states) and the
     * removed rows. */
    /* The message bytes apart from the row, so that the state changes
     * around each attempt do not rewrite them. */
    "CREATE TABLE IF NOT EXISTS outbox_data(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
    "CREATE TRIGGER IF NOT EXISTS outbox_data_gc AFTER DELETE ON outbox BEGIN"
    " DELETE FROM outbox_data WHERE id = old.id; END;"
    "CREATE TABLE IF NOT EXISTS outbox_meta(k INTEGER PRIMARY KEY CHECK (k = 1),"
    " counter INTEGER NOT NULL);"
    "INSERT OR IGNORE INTO outbox_meta(k, counter) VALUES (1, 0);"
    "CREATE TABLE IF NOT EXISTS outbox_tombstones(id INTEGER PRIMARY KEY,"
    " seq INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS outbox_due ON outbox(state, next_attempt);"
    /* An account's latest attempt (store_outbox_last_attempt, read for
     * every ExternalAccount/get) without a scan of the whole outbox. */
    "CREATE INDEX IF NOT EXISTS outbox_account ON outbox(account_id, updated, id);"
    "CREATE TABLE IF NOT EXISTS outbox_accounts("
    " account_id INTEGER PRIMARY KEY, sent_mode TEXT NOT NULL);";

/* Columns added after the table was first made (stores from before them get
 * them here; a row sent before has copy_attempts 0 and is due at once). */
static const char *const outbox_added_columns[][2] = {
    {"copy_attempts", "ALTER TABLE outbox ADD COLUMN copy_attempts INTEGER NOT NULL DEFAULT 0"},
    {"copy_next", "ALTER TABLE outbox ADD COLUMN copy_next INTEGER NOT NULL DEFAULT 0"},
    {"copy_error", "ALTER TABLE outbox ADD COLUMN copy_error TEXT NOT NULL DEFAULT ''"},
};

static int outbox_add_columns(struct store *s, const char **error_r)
{
	for (size_t i = 0; i < sizeof(outbox_added_columns) / sizeof(outbox_added_columns[0]);
	     i++) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(store_db(s),
		                       "SELECT 1 FROM pragma_table_info('outbox') WHERE name = ?1",
		                       -1, &st, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "inspect outbox");
			return -1;
		}
		sqlite3_bind_text(st, 1, outbox_added_columns[i][0], -1, SQLITE_STATIC);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_ROW && sqlite3_exec(store_db(s), outbox_added_columns[i][1], NULL,
		                                     NULL, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "outbox schema");
			return -1;
		}
	}
	return 0;
}

int store_outbox_schema(struct store *s, const char **error_r)
{
	if (sqlite3_exec(store_db(s), outbox_schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "outbox schema");
		return -1;
	}
	if (outbox_add_columns(s, error_r) < 0)
		return -1;
	if (sqlite3_exec(store_db(s),
	                 "CREATE INDEX IF NOT EXISTS outbox_copy_due ON outbox(copy_next) "
	                 "WHERE state = 2 AND sent_copy = ''",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "outbox schema");
		return -1;
	}
	return 0;
}

const char *store_outbox_state_name(enum store_outbox_state state)
{
	switch (state) {
	case STORE_OUTBOX_QUEUED:
		return "queued";
	case STORE_OUTBOX_SENDING:
		return "sending";
	case STORE_OUTBOX_SENT:
		return "sent";
	case STORE_OUTBOX_FAILED:
		return "failed";
	}
	return "?";
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st_r, const char **error_r)
{
	if (sqlite3_prepare_v2(store_db(s), sql, -1, st_r, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "outbox");
		return -1;
	}
	return 0;
}

int store_outbox_last_attempt(struct store *s, int64_t account_id, enum store_outbox_state *state_r,
                              char *reply, int64_t *at_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (prepare(s,
	            "SELECT state, last_reply, updated FROM outbox WHERE account_id = ?1"
	            " AND state <> 1 AND (state <> 0 OR last_reply <> '')"
	            " ORDER BY updated DESC, id DESC LIMIT 1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *text = sqlite3_column_text(st, 1);
		*state_r = (enum store_outbox_state)sqlite3_column_int(st, 0);
		snprintf(reply, STORE_OUTBOX_REPLY_SIZE, "%s",
		         text != NULL ? (const char *)text : "");
		*at_r = sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		return -1;
	}
	return rc == SQLITE_ROW ? 1 : 0;
}

/* Run a prepared statement to completion (and finalize it). */
static int step_done(struct store *s, sqlite3_stmt *st, const char **error_r)
{
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		return -1;
	}
	return 0;
}

/* Next value of the outbox change counter, in the open transaction. */
static int bump(struct store *s, int64_t *seq_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_exec(store_db(s), "UPDATE outbox_meta SET counter = counter + 1", NULL, NULL,
	                 NULL) != SQLITE_OK ||
	    prepare(s, "SELECT counter FROM outbox_meta", &st, error_r) < 0 ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		*error_r = store_err(s, "outbox counter");
		return -1;
	}
	*seq_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Mark row id changed (update) or removed (tombstone) at a new counter. */
static int mark_changed(struct store *s, int64_t id, bool removed, const char **error_r)
{
	int64_t seq;
	sqlite3_stmt *st = NULL;
	if (bump(s, &seq, error_r) < 0)
		return -1;
	if (prepare(s,
	            removed ? "INSERT OR REPLACE INTO outbox_tombstones(id, seq) VALUES (?1, ?2)"
	                    : "UPDATE outbox SET seq = ?2 WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, seq);
	return step_done(s, st, error_r);
}

int store_outbox_add(struct store *s, int64_t account_id, int64_t email_id, const char *mail_from,
                     const char *const *rcpts, size_t n_rcpts, const void *data, size_t len,
                     int64_t now, int64_t *id_r, const char **error_r)
{
	size_t total = 1;
	for (size_t i = 0; i < n_rcpts; i++)
		total += strlen(rcpts[i]) + 1;
	char *joined = malloc(total);
	if (joined == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	size_t o = 0;
	for (size_t i = 0; i < n_rcpts; i++) {
		if (i > 0)
			joined[o++] = '\n';
		size_t l = strlen(rcpts[i]);
		memcpy(joined + o, rcpts[i], l);
		o += l;
	}
	joined[o] = '\0';
	sqlite3_stmt *st = NULL;
	int ret = -1;
	if (store_begin(s, error_r) < 0) {
		free(joined);
		return -1;
	}
	int64_t seq;
	if (bump(s, &seq, error_r) < 0 ||
	    prepare(s,
	            "INSERT INTO outbox(account_id, mail_from, rcpts, size, state, next_attempt, "
	            "created, updated, email_id, created_seq, seq) "
	            "VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5, ?5, ?6, ?7, ?7)",
	            &st, error_r) < 0)
		goto out;
	sqlite3_bind_int64(st, 6, email_id);
	sqlite3_bind_int64(st, 7, seq);
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_text(st, 2, mail_from, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, joined, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)len);
	sqlite3_bind_int64(st, 5, now);
	if (step_done(s, st, error_r) < 0)
		goto out;
	int64_t id = sqlite3_last_insert_rowid(store_db(s));
	if (prepare(s, "INSERT INTO outbox_data(id, data) VALUES (?1, ?2)", &st, error_r) < 0)
		goto out;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob64(st, 2, data, len, SQLITE_STATIC);
	if (step_done(s, st, error_r) < 0 || store_commit(s, error_r) < 0)
		goto out;
	*id_r = id;
	ret = 0;
out:
	if (ret < 0)
		store_rollback(s);
	free(joined);
	return ret;
}

static char *dup_col(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return strdup(t != NULL ? (const char *)t : "");
}

/* Columns: id, account_id, mail_from, rcpts, size, state, attempts,
 * next_attempt, created, updated, last_reply, sent_copy, email_id, seq,
 * copy_attempts, copy_next, copy_error[, data] */
#define ITEM_COLUMNS                                                                               \
	"id, account_id, mail_from, rcpts, size, state, attempts, next_attempt, "                  \
	"created, updated, last_reply, sent_copy, email_id, seq, copy_attempts, copy_next, "       \
	"copy_error"
#define ITEM_DATA_COLUMN 17

static int item_from_row(sqlite3_stmt *st, bool with_data, struct store_outbox_item *it)
{
	memset(it, 0, sizeof(*it));
	it->id = sqlite3_column_int64(st, 0);
	it->account_id = sqlite3_column_int64(st, 1);
	it->mail_from = dup_col(st, 2);
	char *rc = dup_col(st, 3);
	it->size = (uint64_t)sqlite3_column_int64(st, 4);
	it->state = (enum store_outbox_state)sqlite3_column_int(st, 5);
	it->attempts = (unsigned)sqlite3_column_int(st, 6);
	it->next_attempt = sqlite3_column_int64(st, 7);
	it->created = sqlite3_column_int64(st, 8);
	it->updated = sqlite3_column_int64(st, 9);
	const unsigned char *t = sqlite3_column_text(st, 10);
	snprintf(it->last_reply, sizeof(it->last_reply), "%s", t != NULL ? (const char *)t : "");
	t = sqlite3_column_text(st, 11);
	snprintf(it->sent_copy, sizeof(it->sent_copy), "%s", t != NULL ? (const char *)t : "");
	it->email_id = sqlite3_column_int64(st, 12);
	it->seq = sqlite3_column_int64(st, 13);
	it->copy_attempts = (unsigned)sqlite3_column_int(st, 14);
	it->copy_next = sqlite3_column_int64(st, 15);
	t = sqlite3_column_text(st, 16);
	snprintf(it->copy_error, sizeof(it->copy_error), "%s", t != NULL ? (const char *)t : "");
	if (it->mail_from == NULL || rc == NULL) {
		free(rc);
		return -1;
	}
	/* Split the recipients. */
	size_t n = rc[0] != '\0' ? 1 : 0;
	for (char *p = rc; *p != '\0'; p++)
		n += *p == '\n';
	it->rcpts = calloc(n + 1, sizeof(char *));
	if (it->rcpts == NULL) {
		free(rc);
		return -1;
	}
	char *p = rc;
	for (size_t i = 0; i < n; i++) {
		char *nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		it->rcpts[i] = strdup(p);
		it->n_rcpts++;
		if (it->rcpts[i] == NULL) {
			free(rc);
			return -1;
		}
		p = nl != NULL ? nl + 1 : p + strlen(p);
	}
	free(rc);
	if (with_data) {
		const void *d = sqlite3_column_blob(st, ITEM_DATA_COLUMN);
		size_t len = (size_t)sqlite3_column_bytes(st, ITEM_DATA_COLUMN);
		if ((it->data = malloc(len + 1)) == NULL)
			return -1;
		if (len > 0)
			memcpy(it->data, d, len);
		it->data[len] = '\0';
		it->size = len;
	}
	return 0;
}

int store_outbox_get(struct store *s, int64_t id, bool with_data, struct store_outbox_item *item_r,
                     const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (prepare(s,
	            "SELECT " ITEM_COLUMNS
	            ", (SELECT data FROM outbox_data d WHERE d.id = outbox.id) "
	            "FROM outbox WHERE id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW) {
		if (item_from_row(st, with_data, item_r) < 0) {
			store_outbox_item_free(item_r);
			*error_r = "out of memory";
			ret = -1;
		} else {
			ret = 1;
		}
	} else if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		ret = -1;
	}
	sqlite3_finalize(st);
	return ret;
}

/* Is the process that claimed a row gone? */
static bool owner_gone(int64_t pid)
{
	if (pid <= 0 || pid == (int64_t)getpid())
		return false;
	return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static int claim(struct store *s, int64_t now, int64_t lease_s, int64_t only_id,
                 struct store_outbox_item *item_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	if (store_begin(s, error_r) < 0)
		return -1;
	if (prepare(s,
	            "SELECT id, state, next_attempt, owner_pid FROM outbox WHERE state IN (0, 1) "
	            "AND (?1 = 0 OR id = ?1) ORDER BY next_attempt, id",
	            &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, only_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int state = sqlite3_column_int(st, 1);
		int64_t next = sqlite3_column_int64(st, 2);
		if (next <= now ||
		    (state == STORE_OUTBOX_SENDING && owner_gone(sqlite3_column_int64(st, 3)))) {
			id = sqlite3_column_int64(st, 0);
			break;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		goto fail;
	}
	if (id == 0) {
		store_rollback(s);
		return 0;
	}
	if (prepare(s,
	            "UPDATE outbox SET state = 1, attempts = attempts + 1, next_attempt = ?2, "
	            "owner_pid = ?3, updated = ?4 WHERE id = ?1",
	            &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now + lease_s);
	sqlite3_bind_int64(st, 3, (int64_t)getpid());
	sqlite3_bind_int64(st, 4, now);
	int done = step_done(s, st, error_r);
	st = NULL; /* finalized by step_done() */
	if (done < 0 || mark_changed(s, id, false, error_r) < 0 || store_commit(s, error_r) < 0)
		goto fail;
	int r = store_outbox_get(s, id, true, item_r, error_r);
	return r == 1 ? 1 : -1;
fail:
	sqlite3_finalize(st);
	store_rollback(s);
	return -1;
}

int store_outbox_next_due(struct store *s, int64_t *when_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (prepare(s,
	            "SELECT min(t) FROM (SELECT min(next_attempt) AS t FROM outbox WHERE state IN "
	            "(0, 1) UNION ALL SELECT min(copy_next) FROM outbox WHERE state = 2 AND "
	            "sent_copy = '')",
	            &st, error_r) < 0)
		return -1;
	int rc = sqlite3_step(st), ret = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*when_r = sqlite3_column_int64(st, 0);
		ret = 1;
	} else if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "outbox");
		ret = -1;
	}
	sqlite3_finalize(st);
	return ret;
}

/* The claim is committed without its own fsync (synchronous NORMAL for
 * this transaction): other processes see it at once, a killed process
 * leaves it in the WAL, and the fsync of the next commit ('sent' or the
 * retry) makes it durable with that. Only a power loss in between can lose
 * it: the message is then 'queued' again and sent again, which is the same
 * duplicate window as a crash before 'sent' is recorded. */
int store_outbox_claim(struct store *s, int64_t now, int64_t lease_s, int64_t only_id,
                       struct store_outbox_item *item_r, const char **error_r)
{
	sqlite3_exec(store_db(s), "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
	int r = claim(s, now, lease_s, only_id, item_r, error_r);
	sqlite3_exec(store_db(s), "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	return r;
}

/* Run one UPDATE/DELETE in its own transaction with ?1 = a, ?2 = b,
 * ?3 = text, ?4 = c (parameters a statement lacks are not bound: SQLite
 * ignores them with SQLITE_RANGE); *changes_r gets the rows changed. */
enum mark { MARK_NONE, MARK_UPDATE, MARK_REMOVE };

static int write1(struct store *s, const char *sql, int64_t a, int64_t b, const char *text,
                  int64_t c, enum mark mark, int *changes_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (store_begin(s, error_r) < 0)
		return -1;
	if (prepare(s, sql, &st, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, a);
	sqlite3_bind_int64(st, 2, b);
	if (text != NULL)
		sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, c);
	if (step_done(s, st, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	int changes = sqlite3_changes(store_db(s));
	if ((changes > 0 && mark != MARK_NONE &&
	     mark_changed(s, a, mark == MARK_REMOVE, error_r) < 0) ||
	    store_commit(s, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	if (changes_r != NULL)
		*changes_r = changes;
	return 0;
}

int store_outbox_finish(struct store *s, int64_t id, enum store_outbox_state state,
                        int64_t next_attempt, const char *reply, int64_t now, const char **error_r)
{
	char sql[200];
	snprintf(sql, sizeof(sql),
	         "UPDATE outbox SET state = %d, next_attempt = ?2, last_reply = coalesce(?3, ''), "
	         "owner_pid = 0, updated = ?4 WHERE id = ?1",
	         (int)state);
	return write1(s, sql, id, next_attempt, reply, now, MARK_UPDATE, NULL, error_r);
}

int store_outbox_finish_sent(struct store *s, int64_t id, const char *reply, const char *sent_copy,
                             int64_t now, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (store_begin(s, error_r) < 0)
		return -1;
	if (prepare(
	        s,
	        "UPDATE outbox SET state = 2, next_attempt = 0, last_reply = ?2, owner_pid = 0, "
	        "updated = ?3, sent_copy = coalesce(?4, sent_copy) WHERE id = ?1",
	        &st, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, reply, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	if (sent_copy != NULL)
		sqlite3_bind_text(st, 4, sent_copy, -1, SQLITE_STATIC);
	if (step_done(s, st, error_r) < 0 || mark_changed(s, id, false, error_r) < 0 ||
	    store_commit(s, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	return 0;
}

int store_outbox_claim_copy(struct store *s, int64_t now, int64_t lease_s, int64_t only_id,
                            struct store_outbox_item *item_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	if (store_begin(s, error_r) < 0)
		return -1;
	if (prepare(s,
	            "SELECT id, copy_next, owner_pid FROM outbox WHERE state = 2 AND "
	            "sent_copy = '' AND (?1 = 0 OR id = ?1) ORDER BY copy_next, id",
	            &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, only_id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t pid = sqlite3_column_int64(st, 2);
		if (sqlite3_column_int64(st, 1) <= now || (pid != 0 && owner_gone(pid))) {
			id = sqlite3_column_int64(st, 0);
			break;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		goto fail;
	}
	if (id == 0) {
		store_rollback(s);
		return 0;
	}
	if (prepare(s,
	            "UPDATE outbox SET copy_attempts = copy_attempts + 1, copy_next = ?2, "
	            "owner_pid = ?3 WHERE id = ?1",
	            &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, now + lease_s);
	sqlite3_bind_int64(st, 3, (int64_t)getpid());
	int done = step_done(s, st, error_r);
	st = NULL;
	if (done < 0 || store_commit(s, error_r) < 0)
		goto fail;
	return store_outbox_get(s, id, true, item_r, error_r) == 1 ? 1 : -1;
fail:
	sqlite3_finalize(st);
	store_rollback(s);
	return -1;
}

int store_outbox_finish_copy(struct store *s, int64_t id, const char *what, int64_t next_attempt,
                             const char *error, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (store_begin(s, error_r) < 0)
		return -1;
	if (prepare(s,
	            "UPDATE outbox SET sent_copy = coalesce(?2, ''), copy_next = ?3, "
	            "copy_error = coalesce(?4, ''), owner_pid = 0 WHERE id = ?1 AND state = 2 "
	            "AND sent_copy = ''",
	            &st, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	if (what != NULL)
		sqlite3_bind_text(st, 2, what, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, next_attempt);
	if (error != NULL)
		sqlite3_bind_text(st, 4, error, -1, SQLITE_STATIC);
	if (step_done(s, st, error_r) < 0 ||
	    (sqlite3_changes(store_db(s)) > 0 && what != NULL &&
	     mark_changed(s, id, false, error_r) < 0) ||
	    store_commit(s, error_r) < 0) {
		store_rollback(s);
		return -1;
	}
	return 0;
}

int store_outbox_retry(struct store *s, int64_t id, int64_t now, const char **error_r)
{
	int n = 0;
	if (write1(s,
	           "UPDATE outbox SET state = 0, attempts = 0, next_attempt = ?2, updated = ?2 "
	           "WHERE id = ?1 AND state IN (0, 3)",
	           id, now, NULL, 0, MARK_UPDATE, &n, error_r) < 0)
		return -1;
	return n > 0 ? 1 : 0;
}

int store_outbox_cancel(struct store *s, int64_t id, const char **error_r)
{
	int n = 0;
	if (write1(s, "DELETE FROM outbox WHERE id = ?1 AND state IN (0, 3)", id, 0, NULL, 0,
	           MARK_REMOVE, &n, error_r) < 0)
		return -1;
	return n > 0 ? 1 : 0;
}

int store_outbox_destroy(struct store *s, int64_t id, const char **error_r)
{
	int n = 0;
	/* A sent message whose Sent copy is still to be filed keeps its row
	 * and bytes: the copy is durable work that needs them. */
	if (write1(s,
	           "DELETE FROM outbox WHERE id = ?1 AND (state = 3 OR (state = 2 AND sent_copy <> "
	           "''))",
	           id, 0, NULL, 0, MARK_REMOVE, &n, error_r) < 0)
		return -1;
	if (n > 0)
		return 1;
	sqlite3_stmt *st;
	if (prepare(s, "SELECT 1 FROM outbox WHERE id = ?1 AND state = 2", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		return -1;
	}
	return rc == SQLITE_ROW ? 2 : 0;
}

int store_outbox_remove_account(struct store *s, int64_t account_id, unsigned *removed_r,
                                const char **error_r)
{
	int64_t seq;
	sqlite3_stmt *st = NULL;
	if (bump(s, &seq, error_r) < 0 ||
	    prepare(s,
	            "INSERT OR REPLACE INTO outbox_tombstones(id, seq) "
	            "SELECT id, ?2 FROM outbox WHERE account_id = ?1",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, seq);
	if (step_done(s, st, error_r) < 0 ||
	    prepare(s, "DELETE FROM outbox WHERE account_id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	if (step_done(s, st, error_r) < 0)
		return -1;
	*removed_r = (unsigned)sqlite3_changes(store_db(s));
	if (prepare(s, "DELETE FROM outbox_accounts WHERE account_id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	return step_done(s, st, error_r);
}

int store_outbox_state(struct store *s, int64_t *counter_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (prepare(s, "SELECT counter FROM outbox_meta", &st, error_r) < 0)
		return -1;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		*error_r = store_err(s, "outbox counter");
		return -1;
	}
	*counter_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int push_id(int64_t **v, size_t *n, int64_t id)
{
	int64_t *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (nv == NULL)
		return -1;
	nv[(*n)++] = id;
	*v = nv;
	return 0;
}

int store_outbox_changes(struct store *s, int64_t since, size_t max, int64_t **created_r,
                         size_t *n_created_r, int64_t **updated_r, size_t *n_updated_r,
                         int64_t **destroyed_r, size_t *n_destroyed_r, int64_t *new_state_r,
                         bool *has_more_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int64_t *c = NULL, *u = NULL, *d = NULL, state;
	size_t nc = 0, nu = 0, nd = 0;
	bool more = false;
	if (store_outbox_state(s, &state, error_r) < 0)
		return -1;
	/* Changes in counter order; each id appears once (its last change). */
	if (prepare(s,
	            "SELECT id, created_seq, seq, 0 FROM outbox WHERE seq > ?1 UNION ALL "
	            "SELECT id, 0, seq, 1 FROM outbox_tombstones WHERE seq > ?1 ORDER BY 3",
	            &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, since);
	int rc;
	int64_t reached = since;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 2);
		if (nc + nu + nd >= max && seq != reached) {
			more = true;
			break;
		}
		int64_t id = sqlite3_column_int64(st, 0);
		int r = sqlite3_column_int(st, 3)             ? push_id(&d, &nd, id)
		        : sqlite3_column_int64(st, 1) > since ? push_id(&c, &nc, id)
		                                              : push_id(&u, &nu, id);
		if (r < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		reached = seq;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		free(c);
		free(u);
		free(d);
		*error_r = "cannot read outbox changes";
		return -1;
	}
	*created_r = c;
	*n_created_r = nc;
	*updated_r = u;
	*n_updated_r = nu;
	*destroyed_r = d;
	*n_destroyed_r = nd;
	*new_state_r = more ? reached : state;
	*has_more_r = more;
	return 0;
}

int store_outbox_list(struct store *s, struct store_outbox_item **items_r, size_t *count_r,
                      const char **error_r)
{
	sqlite3_stmt *st = NULL;
	struct store_outbox_item *items = NULL;
	size_t n = 0;
	if (prepare(s, "SELECT " ITEM_COLUMNS " FROM outbox ORDER BY id", &st, error_r) < 0)
		return -1;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_outbox_item *ni = realloc(items, (n + 1) * sizeof(*ni));
		if (ni == NULL)
			goto oom;
		items = ni;
		if (item_from_row(st, false, &items[n]) < 0) {
			store_outbox_item_free(&items[n]);
			goto oom;
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_outbox_items_free(&items, n);
		*error_r = store_err(s, "outbox");
		return -1;
	}
	*items_r = items;
	*count_r = n;
	return 0;
oom:
	sqlite3_finalize(st);
	store_outbox_items_free(&items, n);
	*error_r = "out of memory";
	return -1;
}

void store_outbox_item_free(struct store_outbox_item *item)
{
	if (item == NULL)
		return;
	free(item->mail_from);
	for (size_t i = 0; i < item->n_rcpts; i++)
		free(item->rcpts[i]);
	free(item->rcpts);
	free(item->data);
	memset(item, 0, sizeof(*item));
}

void store_outbox_items_free(struct store_outbox_item **items, size_t count)
{
	if (*items == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		store_outbox_item_free(&(*items)[i]);
	free(*items);
	*items = NULL;
}

int store_outbox_sent_mode(struct store *s, int64_t account_id, char mode_r[16],
                           const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (prepare(s, "SELECT sent_mode FROM outbox_accounts WHERE account_id = ?1", &st,
	            error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
	snprintf(mode_r, 16, "%s", t != NULL ? (const char *)t : "auto");
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "outbox");
		return -1;
	}
	return 0;
}

int store_outbox_set_sent_mode(struct store *s, int64_t account_id, const char *mode,
                               const char **error_r)
{
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "append") != 0 &&
	    strcmp(mode, "provider") != 0) {
		*error_r = "sent-copy mode must be auto, append or provider";
		return -1;
	}
	return write1(s,
	              "INSERT INTO outbox_accounts(account_id, sent_mode) VALUES (?1, ?3) "
	              "ON CONFLICT(account_id) DO UPDATE SET sent_mode = ?3",
	              account_id, 0, mode, 0, MARK_NONE, NULL, error_r);
}
