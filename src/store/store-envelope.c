/* Envelopes and threads. See store-envelope.h for the model. */
#include "store-envelope.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "../mime/mime-envelope.h"
#include "store-private.h"
#include "../lib/array.h"

static const char envelope_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS envelopes("
    " blob_id INTEGER PRIMARY KEY, size INTEGER NOT NULL, sent_at INTEGER NOT NULL,"
    " subject TEXT NOT NULL, base_subject TEXT NOT NULL, subject_key TEXT NOT NULL,"
    " from_text TEXT NOT NULL, from_key TEXT NOT NULL, to_text TEXT NOT NULL,"
    " to_key TEXT NOT NULL, message_id TEXT, refs TEXT NOT NULL,"
    " has_attachment INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS threads("
    " id INTEGER PRIMARY KEY, created_modseq INTEGER NOT NULL, modseq INTEGER NOT NULL,"
    " account_id INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS threads_modseq ON threads(modseq);"
    "CREATE TABLE IF NOT EXISTS thread_refs("
    " key INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS thread_refs_thread ON thread_refs(thread_id);"
    /* A content's envelope goes with it (secure_delete zeroes it). */
    "CREATE TRIGGER IF NOT EXISTS blobs_envelope_gone AFTER DELETE ON blobs BEGIN"
    " DELETE FROM envelopes WHERE blob_id = old.id; END;"
    /* An Email removed: its thread's email list changed, and the thread
     * is destroyed with its last Email. mk_next_modseq() is the change
     * the removal is about to be recorded under (store.c tombstones it
     * right after the DELETE). Threads hold Emails since schema 3. */
    "DROP TRIGGER IF EXISTS messages_thread_gone;"
    "CREATE TRIGGER IF NOT EXISTS emails_thread_gone AFTER DELETE ON emails"
    " WHEN old.thread_id != 0 BEGIN"
    " UPDATE threads SET modseq = mk_next_modseq() WHERE id = old.thread_id;"
    " INSERT INTO tombstones(modseq, kind, object_id, account_id) SELECT mk_next_modseq(),"
    "  'thread', old.thread_id, old.account_id WHERE EXISTS (SELECT 1 FROM threads"
    "  WHERE id = old.thread_id) AND NOT"
    "  EXISTS (SELECT 1 FROM emails WHERE thread_id = old.thread_id);"
    " DELETE FROM thread_refs WHERE thread_id = old.thread_id AND NOT EXISTS"
    "  (SELECT 1 FROM emails WHERE thread_id = old.thread_id);"
    " DELETE FROM threads WHERE id = old.thread_id AND NOT EXISTS"
    "  (SELECT 1 FROM emails WHERE thread_id = old.thread_id);"
    " END;";

enum env_stmt {
	E_ENV_GET,
	E_BLOB_SIZE,
	E_ENV_ADD,
	E_REF_GET,
	E_REF_SET,
	E_THREAD_ADD,
	E_THREAD_TOUCH,
	E_MSG_THREAD,
	E_MERGE_MSGS,
	E_MERGE_REFS,
	E_THREAD_DEL,
	E_TOMBSTONE,
	E_EMAIL_ACCOUNT,
	E_COUNT,
};

static const char *const env_sql[E_COUNT] = {
    [E_ENV_GET] = "SELECT subject_key, message_id, refs FROM envelopes WHERE blob_id = ?1",
    [E_BLOB_SIZE] = "SELECT size FROM blobs WHERE id = ?1",
    [E_ENV_ADD] = "INSERT OR REPLACE INTO envelopes(blob_id, size, sent_at, subject, "
                  "base_subject, subject_key, from_text, from_key, to_text, to_key, "
                  "message_id, refs, has_attachment) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [E_REF_GET] = "SELECT r.thread_id FROM thread_refs r JOIN threads t ON t.id = r.thread_id "
                  "WHERE r.key = ?1 AND t.account_id = ?2",
    [E_REF_SET] = "INSERT OR REPLACE INTO thread_refs(key, thread_id) VALUES (?1, ?2)",
    [E_THREAD_ADD] = "INSERT INTO threads(id, created_modseq, modseq, account_id) "
                     "VALUES (?1, ?2, ?2, ?3)",
    [E_THREAD_TOUCH] = "UPDATE threads SET modseq = ?2 WHERE id = ?1",
    [E_MSG_THREAD] = "UPDATE emails SET thread_id = ?2, modseq = max(modseq, ?3) "
                     "WHERE id = ?1",
    [E_MERGE_MSGS] = "UPDATE emails SET thread_id = ?2, modseq = ?3 WHERE thread_id = ?1",
    [E_MERGE_REFS] = "UPDATE thread_refs SET thread_id = ?2 WHERE thread_id = ?1",
    [E_THREAD_DEL] = "DELETE FROM threads WHERE id = ?1",
    [E_TOMBSTONE] = "INSERT INTO tombstones(modseq, kind, object_id, account_id) "
                    "VALUES (?1, 'thread', ?2, ?3)",
    [E_EMAIL_ACCOUNT] = "SELECT account_id FROM emails WHERE id = ?1",
};

struct store_envelope_stmts {
	sqlite3_stmt *st[E_COUNT];
};

static struct store_envelope_stmts *stmts(struct store *s)
{
	return *(struct store_envelope_stmts **)store_envelope_slot(s);
}

static sqlite3_stmt *get(struct store *s, enum env_stmt id)
{
	sqlite3_stmt *st = stmts(s)->st[id];
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static int done(struct store *s, sqlite3_stmt *st, const char *what, const char **error_r)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, what);
		return -1;
	}
	return 0;
}

/* --- SQL functions ------------------------------------------------------ */

static void fn_next_modseq(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	(void)argv;
	struct store *s = sqlite3_user_data(ctx);
	sqlite3_result_int64(ctx, (sqlite3_int64)(store_modseq(s) + 1));
}

/* mk_header_match(blob_id, name, value): the header filter of Email/query
 * (reads the start of the message; see mime_header_match()). */
static void fn_header_match(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	struct store *s = sqlite3_user_data(ctx);
	int64_t blob_id = sqlite3_value_int64(argv[0]);
	const char *name = (const char *)sqlite3_value_text(argv[1]);
	const char *value = (const char *)sqlite3_value_text(argv[2]);
	sqlite3_blob *b = NULL;
	if (name == NULL ||
	    sqlite3_blob_open(store_db(s), "main", "blobs", "data", blob_id, 0, &b) != SQLITE_OK) {
		sqlite3_blob_close(b);
		sqlite3_result_int(ctx, 0);
		return;
	}
	int len = sqlite3_blob_bytes(b);
	if (len > MIME_ENVELOPE_HEAD_MAX)
		len = MIME_ENVELOPE_HEAD_MAX;
	char *buf = malloc((size_t)len + 1);
	int r = 0;
	if (buf != NULL && sqlite3_blob_read(b, buf, len, 0) == SQLITE_OK)
		r = mime_header_match(buf, (size_t)len, name, value);
	free(buf);
	sqlite3_blob_close(b);
	sqlite3_result_int(ctx, r);
}

/* i;ascii-numeric (RFC 4790 9.1): strings starting with a digit compare
 * by the value of their leading digits; all others are equal to each other
 * and greater than every number. */
static int collate_ascii_numeric(void *arg, int la, const void *a, int lb, const void *b)
{
	(void)arg;
	const char *pa = a, *pb = b;
	bool na = la > 0 && pa[0] >= '0' && pa[0] <= '9';
	bool nb = lb > 0 && pb[0] >= '0' && pb[0] <= '9';
	if (!na || !nb)
		return na == nb ? 0 : na ? -1 : 1;
	int ia = 0, ib = 0;
	while (ia < la && pa[ia] == '0')
		ia++;
	while (ib < lb && pb[ib] == '0')
		ib++;
	int ea = ia, eb = ib;
	while (ea < la && pa[ea] >= '0' && pa[ea] <= '9')
		ea++;
	while (eb < lb && pb[eb] >= '0' && pb[eb] <= '9')
		eb++;
	if (ea - ia != eb - ib)
		return ea - ia < eb - ib ? -1 : 1;
	int c = memcmp(pa + ia, pb + ib, (size_t)(ea - ia));
	return c < 0 ? -1 : c > 0 ? 1 : 0;
}

/* --- Envelopes ------------------------------------------------------------ */

struct env_row {
	char *subject_key, *message_id, *refs; /* refs: ids separated by spaces */
};

static void env_row_free(struct env_row *r)
{
	free(r->subject_key);
	free(r->message_id);
	free(r->refs);
	memset(r, 0, sizeof(*r));
}

static char *col_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t != NULL ? strdup((const char *)t) : NULL;
}

/* Parse the content's header block and store its envelope. */
static int envelope_compute(struct store *s, int64_t blob_id, struct env_row *row,
                            const char **error_r)
{
	sqlite3_stmt *st = get(s, E_BLOB_SIZE);
	sqlite3_bind_int64(st, 1, blob_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		*error_r = store_err(s, "envelope: message bytes not found");
		return -1;
	}
	uint64_t size = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	size_t len = size < MIME_ENVELOPE_HEAD_MAX ? (size_t)size : MIME_ENVELOPE_HEAD_MAX;
	char *buf = malloc(len + 1);
	if (buf == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	if (len > 0 && store_blob_read(s, blob_id, 0, buf, len, error_r) < 0) {
		free(buf);
		return -1;
	}
	struct mime_envelope env;
	int r = mime_envelope_parse(buf, len, size, &env);
	free(buf);
	if (r < 0) {
		*error_r = "store: out of memory";
		return -1;
	}
	size_t refs_len = 1;
	for (size_t i = 0; i < env.n_refs; i++)
		refs_len += strlen(env.refs[i]) + 1;
	char *refs = malloc(refs_len);
	char *subject_key = mime_casemap(env.base_subject);
	char *from_key = mime_casemap(env.from != NULL ? env.from : "");
	char *to_key = mime_casemap(env.to != NULL ? env.to : "");
	if (refs == NULL || subject_key == NULL || from_key == NULL || to_key == NULL) {
		free(refs);
		free(subject_key);
		free(from_key);
		free(to_key);
		mime_envelope_free(&env);
		*error_r = "store: out of memory";
		return -1;
	}
	refs[0] = '\0';
	for (size_t i = 0, off = 0; i < env.n_refs; i++) {
		size_t l = strlen(env.refs[i]);
		if (off > 0)
			refs[off++] = ' ';
		memcpy(refs + off, env.refs[i], l + 1);
		off += l;
	}
	st = get(s, E_ENV_ADD);
	sqlite3_bind_int64(st, 1, blob_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)size);
	sqlite3_bind_int64(st, 3, env.sent_at);
	sqlite3_bind_text(st, 4, env.subject != NULL ? env.subject : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, env.base_subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, subject_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, env.from != NULL ? env.from : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, from_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, env.to != NULL ? env.to : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, to_key, -1, SQLITE_STATIC);
	if (env.message_id != NULL)
		sqlite3_bind_text(st, 11, env.message_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, refs, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 13, env.has_attachment);
	r = done(s, st, "store envelope", error_r);
	free(from_key);
	free(to_key);
	if (r == 0) {
		row->subject_key = subject_key;
		row->message_id = env.message_id;
		env.message_id = NULL;
		row->refs = refs;
	} else {
		free(subject_key);
		free(refs);
	}
	mime_envelope_free(&env);
	return r;
}

static int envelope_get(struct store *s, int64_t blob_id, struct env_row *row, const char **error_r)
{
	memset(row, 0, sizeof(*row));
	sqlite3_stmt *st = get(s, E_ENV_GET);
	sqlite3_bind_int64(st, 1, blob_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row->subject_key = col_dup(st, 0);
		row->message_id = col_dup(st, 1);
		row->refs = col_dup(st, 2);
	}
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return row->subject_key != NULL && row->refs != NULL ? 0 : (env_row_free(row), -1);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "read envelope");
		return -1;
	}
	return envelope_compute(s, blob_id, row, error_r);
}

/* --- Threads ---------------------------------------------------------------- */

#define THREAD_MAX_KEYS (MIME_ENVELOPE_MAX_REFS + 1)

/* The key of (account, subject, message id). Account 0 gives the keys of
 * stores before schema 3 (one key space for all accounts), still looked
 * up so that old threads keep their replies. */
static int64_t thread_key(int64_t account_id, const char *subject_key, const char *msgid)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char h[32];
	unsigned int hl = 0;
	int64_t key = 0;
	char acct[32];
	int al = account_id != 0 ? snprintf(acct, sizeof(acct), "%lld:", (long long)account_id) : 0;
	if (md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    (al <= 0 || EVP_DigestUpdate(md, acct, (size_t)al) == 1) &&
	    EVP_DigestUpdate(md, subject_key, strlen(subject_key) + 1) == 1 &&
	    EVP_DigestUpdate(md, msgid, strlen(msgid)) == 1 &&
	    EVP_DigestFinal_ex(md, h, &hl) == 1) {
		uint64_t k = 0;
		for (int i = 0; i < 8; i++)
			k = (k << 8) | h[i];
		key = (int64_t)(k >> 1); /* positive: an INTEGER PRIMARY KEY */
	}
	EVP_MD_CTX_free(md);
	return key;
}

/* Put Email message_id in its thread; changes are recorded under modseq
 * (the change that added the Email, or the catch-up's). Threads are per
 * account. */
static int thread_assign(struct store *s, int64_t message_id, int64_t blob_id, uint64_t modseq,
                         const char **error_r)
{
	sqlite3_stmt *ast = get(s, E_EMAIL_ACCOUNT);
	sqlite3_bind_int64(ast, 1, message_id);
	int arc = sqlite3_step(ast);
	int64_t account_id = arc == SQLITE_ROW ? sqlite3_column_int64(ast, 0) : 0;
	sqlite3_reset(ast);
	if (arc != SQLITE_ROW && arc != SQLITE_DONE) {
		*error_r = store_err(s, "look up email");
		return -1;
	}
	struct env_row row;
	if (envelope_get(s, blob_id, &row, error_r) < 0)
		return -1;
	/* keys[] are this account's; legacy[] the same ids keyed as before
	 * schema 3, looked up only. */
	int64_t keys[THREAD_MAX_KEYS], legacy[THREAD_MAX_KEYS];
	size_t n_keys = 0;
	if (row.message_id != NULL && row.message_id[0] != '\0') {
		legacy[n_keys] = thread_key(0, row.subject_key, row.message_id);
		keys[n_keys++] = thread_key(account_id, row.subject_key, row.message_id);
	}
	char *save = NULL;
	for (char *t = strtok_r(row.refs, " ", &save); t != NULL && n_keys < THREAD_MAX_KEYS;
	     t = strtok_r(NULL, " ", &save)) {
		legacy[n_keys] = thread_key(0, row.subject_key, t);
		keys[n_keys++] = thread_key(account_id, row.subject_key, t);
	}
	env_row_free(&row);

	/* The existing threads these ids lead to. */
	int64_t found[THREAD_MAX_KEYS * 2];
	size_t n_found = 0;
	int64_t target = 0;
	for (size_t i = 0; i < n_keys * 2; i++) {
		sqlite3_stmt *st = get(s, E_REF_GET);
		sqlite3_bind_int64(st, 1, i < n_keys ? keys[i] : legacy[i - n_keys]);
		sqlite3_bind_int64(st, 2, account_id);
		int rc = sqlite3_step(st);
		int64_t t = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			*error_r = store_err(s, "look up thread");
			return -1;
		}
		bool seen = t == 0;
		for (size_t j = 0; j < n_found && !seen; j++)
			seen = found[j] == t;
		if (!seen) {
			found[n_found++] = t;
			if (target == 0 || t < target)
				target = t;
		}
	}
	sqlite3_stmt *st;
	if (target == 0) {
		target = message_id;
		st = get(s, E_THREAD_ADD);
		sqlite3_bind_int64(st, 1, target);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
		sqlite3_bind_int64(st, 3, account_id);
		if (done(s, st, "add thread", error_r) < 0)
			return -1;
	} else {
		st = get(s, E_THREAD_TOUCH);
		sqlite3_bind_int64(st, 1, target);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq);
		if (done(s, st, "update thread", error_r) < 0)
			return -1;
	}
	/* A message linking several threads merges them into the oldest. */
	for (size_t i = 0; i < n_found; i++) {
		if (found[i] == target)
			continue;
		st = get(s, E_MERGE_MSGS);
		sqlite3_bind_int64(st, 1, found[i]);
		sqlite3_bind_int64(st, 2, target);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		if (done(s, st, "merge threads", error_r) < 0)
			return -1;
		st = get(s, E_MERGE_REFS);
		sqlite3_bind_int64(st, 1, found[i]);
		sqlite3_bind_int64(st, 2, target);
		if (done(s, st, "merge threads", error_r) < 0)
			return -1;
		st = get(s, E_THREAD_DEL);
		sqlite3_bind_int64(st, 1, found[i]);
		if (done(s, st, "merge threads", error_r) < 0)
			return -1;
		st = get(s, E_TOMBSTONE);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)modseq);
		sqlite3_bind_int64(st, 2, found[i]);
		sqlite3_bind_int64(st, 3, account_id);
		if (done(s, st, "merge threads", error_r) < 0)
			return -1;
	}
	st = get(s, E_MSG_THREAD);
	sqlite3_bind_int64(st, 1, message_id);
	sqlite3_bind_int64(st, 2, target);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
	if (done(s, st, "set thread", error_r) < 0)
		return -1;
	for (size_t i = 0; i < n_keys; i++) {
		st = get(s, E_REF_SET);
		sqlite3_bind_int64(st, 1, keys[i]);
		sqlite3_bind_int64(st, 2, target);
		if (done(s, st, "record thread ids", error_r) < 0)
			return -1;
	}
	return 0;
}

int store_envelope_message_added(struct store *s, int64_t message_id, int64_t blob_id,
                                 const char **error_r)
{
	return thread_assign(s, message_id, blob_id, store_modseq(s), error_r);
}

int store_thread_emails(struct store *s, int64_t account_id, int64_t thread_id, int64_t **ids_r,
                        size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT id FROM emails WHERE thread_id = ?1 "
	                       "AND (?2 = 0 OR account_id = ?2) ORDER BY internaldate, id",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "thread emails");
		return -1;
	}
	sqlite3_bind_int64(st, 1, thread_id);
	sqlite3_bind_int64(st, 2, account_id);
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&ids, &cap, n, sizeof(*ids)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		*error_r = store_err(s, "thread emails");
		return -1;
	}
	*ids_r = ids;
	*count_r = n;
	return 0;
}

/* --- Open, catch-up, close -------------------------------------------------- */

static int add_thread_column(struct store *s, const char **error_r)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db,
	                       "SELECT 1 FROM pragma_table_info('messages') "
	                       "WHERE name = 'thread_id'",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "inspect messages");
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (sqlite3_exec(db, "ALTER TABLE messages ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0",
	                 NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "add thread column");
		return -1;
	}
	return 0;
}

/* Messages without a thread (a store from before envelopes): thread them
 * all now, in id (= arrival) order, under one new change. */
int store_envelope_catch_up(struct store *s, const char **error_r)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM emails WHERE thread_id = 0 LIMIT 1", -1, &st,
	                       NULL) != SQLITE_OK) {
		*error_r = store_err(s, "find unthreaded messages");
		return -1;
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return 0;
	if (store_begin(s, error_r) < 0)
		return -1;
	uint64_t modseq = store_next_modseq(s);
	if (sqlite3_prepare_v2(db, "SELECT id, blob_id FROM emails WHERE thread_id = 0 ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "find unthreaded messages");
		store_rollback(s);
		return -1;
	}
	int r = 0;
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
		r = thread_assign(s, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
		                  modseq, error_r);
	if (r == 0 && rc != SQLITE_DONE) {
		*error_r = store_err(s, "find unthreaded messages");
		r = -1;
	}
	sqlite3_finalize(st);
	if (r < 0) {
		store_rollback(s);
		return -1;
	}
	return store_commit(s, error_r);
}

int store_envelope_open(struct store *s, const char **error_r)
{
	sqlite3 *db = store_db(s);
	if (sqlite3_create_function(db, "mk_next_modseq", 0, SQLITE_UTF8, s, fn_next_modseq, NULL,
	                            NULL) != SQLITE_OK ||
	    sqlite3_create_function(db, "mk_header_match", 3, SQLITE_UTF8, s, fn_header_match, NULL,
	                            NULL) != SQLITE_OK ||
	    sqlite3_create_collation(db, "mk_ascii_numeric", SQLITE_UTF8, NULL,
	                             collate_ascii_numeric) != SQLITE_OK) {
		*error_r = store_err(s, "register functions");
		return -1;
	}
	if (add_thread_column(s, error_r) < 0)
		return -1;
	char *msg = NULL;
	if (sqlite3_exec(db, envelope_schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		sqlite3_free(msg);
		*error_r = store_err(s, "create envelope tables");
		return -1;
	}
	struct store_envelope_stmts *e = calloc(1, sizeof(*e));
	if (e == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	*(struct store_envelope_stmts **)store_envelope_slot(s) = e;
	for (int i = 0; i < E_COUNT; i++) {
		if (sqlite3_prepare_v3(db, env_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &e->st[i],
		                       NULL) != SQLITE_OK) {
			*error_r = store_err(s, "prepare envelope statements");
			return -1;
		}
	}
	return 0;
}

void store_envelope_close(struct store *s)
{
	struct store_envelope_stmts **slot = (struct store_envelope_stmts **)store_envelope_slot(s);
	if (*slot == NULL)
		return;
	for (int i = 0; i < E_COUNT; i++)
		sqlite3_finalize((*slot)->st[i]);
	free(*slot);
	*slot = NULL;
}
