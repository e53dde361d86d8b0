/* The settable properties of JMAP identities (see store-identity.h). */
#include "store-identity.h"
#include "store-private.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char identity_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS identities("
    " account_id INTEGER PRIMARY KEY," /* the hub account: identity "I<account_id>" */
    " name TEXT NOT NULL,"
    " reply_to TEXT," /* JSON EmailAddress[] or NULL */
    " bcc TEXT,"
    " text_signature TEXT NOT NULL,"
    " html_signature TEXT NOT NULL,"
    " seq INTEGER NOT NULL);";

int store_identity_schema(struct store *s, const char **error_r)
{
	if (sqlite3_exec(store_db(s), identity_schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "identity schema");
		return -1;
	}
	return 0;
}

static char *column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t != NULL ? strdup((const char *)t) : NULL;
}

int store_identity_get(struct store *s, int64_t account_id, struct store_identity *identity_r,
                       const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT name, reply_to, bcc, text_signature, html_signature, seq"
	                       " FROM identities WHERE account_id = ?",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "identity");
		return -1;
	}
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "identity");
		sqlite3_finalize(st);
		return -1;
	}
	struct store_identity id = {
	    .account_id = account_id,
	    .name = column_dup(st, 0),
	    .reply_to = column_dup(st, 1),
	    .bcc = column_dup(st, 2),
	    .text_signature = column_dup(st, 3),
	    .html_signature = column_dup(st, 4),
	    .seq = sqlite3_column_int64(st, 5),
	};
	bool lost = (sqlite3_column_type(st, 1) != SQLITE_NULL && id.reply_to == NULL) ||
	            (sqlite3_column_type(st, 2) != SQLITE_NULL && id.bcc == NULL);
	sqlite3_finalize(st);
	if (id.name == NULL || id.text_signature == NULL || id.html_signature == NULL || lost) {
		store_identity_free(&id);
		*error_r = "store: identity: out of memory";
		return -1;
	}
	*identity_r = id;
	return 1;
}

int store_identity_put(struct store *s, const struct store_identity *identity, int64_t *seq_r,
                       const char **error_r)
{
	int64_t seq;
	if (store_identity_seq(s, &seq, error_r) < 0)
		return -1;
	seq++;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "INSERT OR REPLACE INTO identities(account_id, name, reply_to, bcc,"
	                       " text_signature, html_signature, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "identity");
		return -1;
	}
	const struct store_identity *i = identity;
	sqlite3_bind_int64(st, 1, i->account_id);
	sqlite3_bind_text(st, 2, i->name != NULL ? i->name : "", -1, SQLITE_TRANSIENT);
	if (i->reply_to != NULL)
		sqlite3_bind_text(st, 3, i->reply_to, -1, SQLITE_TRANSIENT);
	if (i->bcc != NULL)
		sqlite3_bind_text(st, 4, i->bcc, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 5, i->text_signature != NULL ? i->text_signature : "", -1,
	                  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 6, i->html_signature != NULL ? i->html_signature : "", -1,
	                  SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 7, seq);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "identity");
		return -1;
	}
	*seq_r = seq;
	return 0;
}

int store_identity_seq(struct store *s, int64_t *seq_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "SELECT COALESCE(MAX(seq), 0) FROM identities", -1, &st,
	                       NULL) != SQLITE_OK) {
		*error_r = store_err(s, "identity");
		return -1;
	}
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "identity");
		sqlite3_finalize(st);
		return -1;
	}
	*seq_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

void store_identity_free(struct store_identity *identity)
{
	free(identity->name);
	free(identity->reply_to);
	free(identity->bcc);
	free(identity->text_signature);
	free(identity->html_signature);
	memset(identity, 0, sizeof(*identity));
}

int store_identity_remove(struct store *s, int64_t account_id, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "DELETE FROM identities WHERE account_id = ?1", -1, &st,
	                       NULL) != SQLITE_OK) {
		*error_r = store_err(s, "identity");
		return -1;
	}
	sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "identity");
		return -1;
	}
	return 0;
}
