/*
 * Full-text search over the store with SQLite FTS5 (see store.h,
 * store_fts_*).
 *
 * email_fts(subject, from, to, cc, bcc, body): one row per blob (rowid =
 * blob id), so a message in several folders or accounts is indexed once.
 * It is a regular FTS5 table (it keeps its own copy of the text): SQLite
 * 3.40 has no contentless_delete, and a contentless table could only drop a
 * row if given the same text again, which the blob being deleted cannot be
 * relied on to give. The copy also lets highlight() and snippet() work.
 *
 * Tokenizer: unicode61 with remove_diacritics 2 (case and diacritics
 * folded: "resume" finds "Résumé", "strasse" does not find "straße" - that
 * is a spelling, not a diacritic). Search words match whole words, not
 * prefixes, so there are no prefix indexes: measured on 100k messages
 * (bench/jmap.sh), a prefix query beyond the indexed lengths took about
 * twice as long as the whole word (FTS5 merges the list of every matching
 * term) and pushed a query for a word in most messages past the 50 ms
 * target, and prefix indexes make the index larger. unicode61 does not
 * split CJK runs into words: such a run is one token, found as a whole.
 *
 * Email/query: messages_internaldate (made here) lets "the newest matches"
 * walk the messages newest first and stop after one page; see store.h.
 *
 * Indexing is lazy, never in the sync path: meta 'fts_indexed' is a
 * watermark, every blob with an id at or below it is indexed. New blobs
 * always get a larger id than any existing one (SQLite gives max(rowid)+1),
 * and a trigger on blob deletion lowers the watermark to the largest
 * remaining id when the deleted blob was the last one, so an id reused
 * later is never taken for indexed. The same trigger deletes the blob's
 * FTS row and sets meta 'fts_dirty'.
 *
 * Deleted text: FTS5 deletes by writing delete markers; the removed tokens
 * stay in older index segments until a merge folds them away. 'optimize'
 * (after an account removal) and incremental 'merge' steps (the background
 * store_fts_purge) rewrite the index into one segment, which drops them;
 * secure_delete zeroes the freed pages and the content row, and
 * store_scrub() truncates the WAL.
 */
#include "store-private.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mime/mime.h"

#define FTS_READ_MAX (1024u * 1024) /* message bytes read for indexing */
#define FTS_BODY_MAX (256u * 1024)  /* body text indexed per message */
#define FTS_EXPR_MAX_TEXT 1024      /* bytes of one search text */
#define FTS_EXPR_MAX_WORDS 32

static const char fts_schema_sql[] =
    "CREATE VIRTUAL TABLE IF NOT EXISTS email_fts USING fts5("
    " subject, \"from\", \"to\", cc, bcc, body,"
    " tokenize = 'unicode61 remove_diacritics 2');"
    /* Email/query over all mailboxes walks emails_date (store.c); the
     * messages-wide date index of before schema 3 goes. */
    "DROP INDEX IF EXISTS messages_internaldate;"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('fts_indexed', 0), ('fts_dirty', 0);"
    "CREATE TRIGGER IF NOT EXISTS blobs_fts_delete AFTER DELETE ON blobs"
    " WHEN old.id <= (SELECT value FROM meta WHERE key = 'fts_indexed') BEGIN"
    "  DELETE FROM email_fts WHERE rowid = old.id;"
    "  UPDATE meta SET value = 1 WHERE key = 'fts_dirty';"
    "  UPDATE meta SET value = (SELECT coalesce(max(id), 0) FROM blobs)"
    "   WHERE key = 'fts_indexed' AND value > (SELECT coalesce(max(id), 0) FROM blobs);"
    " END;";

int store_fts_schema(struct store *s, const char **error_r)
{
	if (sqlite3_exec(store_db(s), fts_schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "create the full-text index");
		return -1;
	}
	return 0;
}

/* --- search expressions ------------------------------------------------------ */

/* The tokenizer of the index, to tell which words give tokens at all: a
 * phrase without tokens ("!!!", an emoji) would make an AND match
 * nothing. It lives in a private in-memory database for the process. */
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;
static sqlite3 *tok_db;
static fts5_api *tok_api;
static fts5_tokenizer tok_impl;
static void *tok_user;
static bool tok_ready;

static void tok_init(void)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_open_v2(":memory:", &tok_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX,
	                    NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(tok_db, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK) {
		sqlite3_finalize(st);
		return;
	}
	sqlite3_bind_pointer(st, 1, &tok_api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	tok_ready = tok_api != NULL && tok_api->xFindTokenizer(tok_api, "unicode61", &tok_user,
	                                                       &tok_impl) == SQLITE_OK;
}

struct tok_count {
	unsigned tokens;
};

static int tok_cb(void *ctx, int flags, const char *token, int len, int start, int end)
{
	struct tok_count *c = ctx;
	(void)flags, (void)start, (void)end;
	(void)token, (void)len;
	c->tokens++;
	return SQLITE_OK;
}

/* Tokens of one word as the index sees them: 0 ok, -1 tokenizer missing. */
static int word_tokens(const char *word, size_t len, struct tok_count *count_r)
{
	const char *args[] = {"remove_diacritics", "2"};
	pthread_once(&tok_once, tok_init);
	if (!tok_ready)
		return -1;
	Fts5Tokenizer *t = NULL;
	if (tok_impl.xCreate(tok_user, args, 2, &t) != SQLITE_OK)
		return -1;
	struct tok_count c = {0};
	int rc = tok_impl.xTokenize(t, &c, FTS5_TOKENIZE_QUERY, word, (int)len, tok_cb);
	tok_impl.xDelete(t);
	*count_r = c;
	return rc == SQLITE_OK ? 0 : -1;
}

static const char *fts_column(const char *field)
{
	static const char *const fields[] = {"subject", "from", "to", "cc", "bcc", "body"};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(field, fields[i]) == 0)
			return fields[i];
	return NULL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

int store_fts_expr(const char *field, const char *text, char **expr_r, const char **error_r)
{
	const char *column = NULL;
	if (field == NULL || (strcmp(field, "text") != 0 && (column = fts_column(field)) == NULL)) {
		*error_r = "store: unknown search field";
		return -1;
	}
	size_t text_len = strlen(text);
	if (text_len > FTS_EXPR_MAX_TEXT) {
		*error_r = "store: search text too long";
		return -1;
	}
	/* Worst case: every byte a quote (doubled), plus per word quotes, star
	 * and " AND ", plus the column filter. */
	size_t cap = text_len * 2 + FTS_EXPR_MAX_WORDS * 8 + 32;
	char *out = malloc(cap), *o = out;
	if (out == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	if (column != NULL) {
		/* Column names are short constants; cap has 32 spare bytes. */
		int n = snprintf(o, cap, "{%s} : (", column);
		if (n < 0 || (size_t)n >= 32) {
			free(out);
			*error_r = "store: search column name too long";
			return -1;
		}
		o += n;
	}
	unsigned words = 0;
	for (const char *p = text; *p != '\0';) {
		while (is_space(*p))
			p++;
		const char *w = p;
		while (*p != '\0' && !is_space(*p))
			p++;
		if (p == w)
			break;
		struct tok_count tc;
		if (word_tokens(w, (size_t)(p - w), &tc) < 0) {
			free(out);
			*error_r = "store: the full-text tokenizer is not available";
			return -1;
		}
		if (tc.tokens == 0)
			continue; /* punctuation only: nothing to look for */
		if (++words > FTS_EXPR_MAX_WORDS) {
			free(out);
			*error_r = "store: too many search words";
			return -1;
		}
		if (words > 1)
			o = stpcpy(o, " AND ");
		*o++ = '"';
		for (const char *c = w; c < p; c++) {
			if (*c == '"')
				*o++ = '"';
			*o++ = *c;
		}
		*o++ = '"';
	}
	/* No words: the empty phrase, which matches nothing. */
	if (words == 0)
		o = stpcpy(o, "\"\"");
	if (column != NULL)
		*o++ = ')';
	*o = '\0';
	*expr_r = out;
	return 0;
}

/* --- indexing ---------------------------------------------------------------- */

static int meta_int(struct store *s, const char *key, int64_t *value_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc =
	    sqlite3_prepare_v2(store_db(s), "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "read the full-text state");
		sqlite3_finalize(st);
		return -1;
	}
	*value_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int meta_set(struct store *s, const char *key, int64_t value, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(store_db(s), "UPDATE meta SET value = ?2 WHERE key = ?1", -1,
	                            &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, value);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "write the full-text state");
		return -1;
	}
	return 0;
}

/* Control characters become spaces: they mean nothing to a reader, and
 * \x01 and \x02 are the match markers of store_fts_snippet(). */
static void strip_controls(char *t)
{
	for (unsigned char *p = (unsigned char *)t; *p != '\0'; p++)
		if (*p < 0x20 && *p != '\n' && *p != '\t')
			*p = ' ';
}

static int index_blob(struct store *s, sqlite3_stmt *ins, int64_t id, uint64_t size, char *buf,
                      const char **error_r)
{
	size_t len = size < FTS_READ_MAX ? (size_t)size : FTS_READ_MAX;
	struct mime_text t;
	if (store_blob_read(s, id, 0, buf, len, error_r) < 0)
		return -1;
	if (mime_text_extract(buf, len, FTS_BODY_MAX, &t) < 0) {
		*error_r = "store: out of memory";
		return -1;
	}
	char *cols[] = {t.subject, t.from, t.to, t.cc, t.bcc, t.body};
	sqlite3_reset(ins);
	sqlite3_bind_int64(ins, 1, id);
	for (int i = 0; i < 6; i++) {
		strip_controls(cols[i]);
		sqlite3_bind_text(ins, i + 2, cols[i], -1, SQLITE_STATIC);
	}
	int rc = sqlite3_step(ins);
	sqlite3_reset(ins);
	mime_text_free(&t);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "index a message");
		return -1;
	}
	return 0;
}

const char store_fts_busy[] = "store: busy with another writer; index later";

/* Begin a write transaction without waiting long for another writer (a
 * sync may hold the store for seconds; background work gives way and comes
 * back later). */
static int begin_briefly(struct store *s, const char **error_r)
{
	sqlite3_busy_timeout(store_db(s), 100);
	int ret = store_begin(s, error_r);
	if (ret < 0 && (sqlite3_errcode(store_db(s)) & 0xff) == SQLITE_BUSY)
		*error_r = store_fts_busy;
	sqlite3_busy_timeout(store_db(s), STORE_BUSY_TIMEOUT_MS);
	return ret;
}

int store_fts_catch_up(struct store *s, unsigned max_blobs, bool *complete_r, const char **error_r)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *sel = NULL, *ins = NULL;
	char *buf = NULL;
	int64_t upto;
	unsigned done = 0;
	if (begin_briefly(s, error_r) < 0)
		return -1;
	if (meta_int(s, "fts_indexed", &upto, error_r) < 0)
		goto fail;
	if (sqlite3_prepare_v2(db, "SELECT id, size FROM blobs WHERE id > ?1 ORDER BY id LIMIT ?2",
	                       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "INSERT INTO email_fts(rowid, subject, \"from\", \"to\", cc, bcc, "
	                       "body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	                       -1, &ins, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "prepare indexing");
		goto fail;
	}
	if ((buf = malloc(FTS_READ_MAX)) == NULL) {
		*error_r = "store: out of memory";
		goto fail;
	}
	sqlite3_bind_int64(sel, 1, upto);
	sqlite3_bind_int64(sel, 2, max_blobs);
	int rc;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(sel, 0);
		if (index_blob(s, ins, id, (uint64_t)sqlite3_column_int64(sel, 1), buf, error_r) <
		    0)
			goto fail;
		upto = id;
		done++;
	}
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "list messages to index");
		goto fail;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	free(buf);
	sel = ins = NULL;
	buf = NULL;
	if ((done > 0 && meta_set(s, "fts_indexed", upto, error_r) < 0) ||
	    store_commit(s, error_r) < 0)
		goto fail;
	*complete_r = done < max_blobs;
	return 0;
fail:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	free(buf);
	store_rollback(s);
	return -1;
}

int store_fts_pending(struct store *s, uint64_t *pending_r, const char **error_r)
{
	int64_t upto;
	sqlite3_stmt *st = NULL;
	if (meta_int(s, "fts_indexed", &upto, error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM blobs WHERE id > ?1", -1, &st,
	                       NULL) != SQLITE_OK ||
	    (sqlite3_bind_int64(st, 1, upto), sqlite3_step(st)) != SQLITE_ROW) {
		*error_r = store_err(s, "count messages to index");
		sqlite3_finalize(st);
		return -1;
	}
	*pending_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* --- removing deleted text ----------------------------------------------------- */

static int fts_command(struct store *s, const char *command, int arg, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(
	    store_db(s), "INSERT INTO email_fts(email_fts, rank) VALUES (?1, ?2)", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, command, -1, SQLITE_STATIC);
		if (arg != 0)
			sqlite3_bind_int(st, 2, arg);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "rewrite the full-text index");
		return -1;
	}
	return 0;
}

int store_fts_optimize(struct store *s, const char **error_r)
{
	int64_t dirty;
	if (meta_int(s, "fts_dirty", &dirty, error_r) < 0)
		return -1;
	if (dirty == 0)
		return 0;
	if (fts_command(s, "optimize", 0, error_r) < 0)
		return -1;
	return meta_set(s, "fts_dirty", 0, error_r);
}

int store_fts_purge(struct store *s, unsigned max_pages, bool *complete_r, const char **error_r)
{
	int64_t dirty;
	if (begin_briefly(s, error_r) < 0)
		return -1;
	if (meta_int(s, "fts_dirty", &dirty, error_r) < 0)
		goto fail;
	bool complete = dirty == 0;
	if (!complete) {
		/* A negative page count merges segments of every level; a merge
		 * that changed fewer than two rows found nothing left to do. */
		sqlite3_int64 before = sqlite3_total_changes64(store_db(s));
		if (fts_command(s, "merge", -(int)max_pages, error_r) < 0)
			goto fail;
		complete = sqlite3_total_changes64(store_db(s)) - before < 2;
		if (complete && meta_set(s, "fts_dirty", 0, error_r) < 0)
			goto fail;
	}
	if (store_commit(s, error_r) < 0)
		return -1;
	*complete_r = complete;
	return 0;
fail:
	store_rollback(s);
	return -1;
}

/* --- snippets ------------------------------------------------------------------ */

int store_fts_snippet(struct store *s, int64_t blob_id, const char *expr, char **subject_r,
                      char **preview_r, const char **error_r)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT highlight(email_fts, 0, char(1), char(2)), "
	                       "snippet(email_fts, 5, char(1), char(2), '…', 24) "
	                       "FROM email_fts WHERE email_fts MATCH ?1 AND rowid = ?2",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "prepare a snippet");
		return -1;
	}
	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, blob_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		*subject_r = *preview_r = NULL;
		return 0;
	}
	if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "make a snippet");
		sqlite3_finalize(st);
		return -1;
	}
	const char *subject = (const char *)sqlite3_column_text(st, 0);
	const char *preview = (const char *)sqlite3_column_text(st, 1);
	char *sub = subject != NULL && strchr(subject, '\x01') != NULL ? strdup(subject) : NULL;
	char *pre = preview != NULL && strchr(preview, '\x01') != NULL ? strdup(preview) : NULL;
	sqlite3_finalize(st);
	*subject_r = sub;
	*preview_r = pre;
	return 1;
}
