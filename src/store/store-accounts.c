/* The store's accounts for the device API (see store-accounts.h). */
#include "store-accounts.h"

#include <stdlib.h>
#include <string.h>

#include "store-private.h"

int store_accounts_list(struct store *s, struct store_account **accounts_r, size_t *count_r,
                        const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "SELECT id, key FROM accounts ORDER BY id", -1, &st,
	                       NULL) != SQLITE_OK) {
		*error_r = store_err(s, "list accounts");
		return -1;
	}
	struct store_account *list = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			struct store_account *bigger = realloc(list, cap * sizeof(*list));
			if (bigger == NULL)
				break;
			list = bigger;
		}
		const unsigned char *key = sqlite3_column_text(st, 1);
		list[n].id = sqlite3_column_int64(st, 0);
		list[n].key = strdup(key != NULL ? (const char *)key : "");
		if (list[n].key == NULL)
			break;
		n++;
	}
	if (rc != SQLITE_DONE) {
		*error_r =
		    rc == SQLITE_ROW ? "store: out of memory" : store_err(s, "list accounts");
		sqlite3_finalize(st);
		store_accounts_free(&list, n);
		return -1;
	}
	sqlite3_finalize(st);
	*accounts_r = list;
	*count_r = n;
	return 0;
}

void store_accounts_free(struct store_account **accounts, size_t count)
{
	if (*accounts == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*accounts)[i].key);
	free(*accounts);
	*accounts = NULL;
}

/* One row of one statement with an integer parameter (and an optional
 * second one): 1 row (first column into *out / *text_r), 0 none, -1. */
static int one_row(struct store *s, const char *what, const char *sql, int64_t a, int64_t b,
                   const char *text_param, int64_t *out, char **text_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, what);
		return -1;
	}
	if (text_param != NULL)
		sqlite3_bind_text(st, 1, text_param, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(st, 1, a);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, b);
	int rc = sqlite3_step(st), r = 0;
	if (rc == SQLITE_ROW) {
		r = 1;
		if (out != NULL)
			*out = sqlite3_column_int64(st, 0);
		if (text_r != NULL) {
			const unsigned char *t = sqlite3_column_text(st, 0);
			*text_r = strdup(t != NULL ? (const char *)t : "");
			if (*text_r == NULL) {
				*error_r = "store: out of memory";
				r = -1;
			}
		}
	} else if (rc != SQLITE_DONE) {
		*error_r = store_err(s, what);
		r = -1;
	}
	sqlite3_finalize(st);
	return r;
}

int store_account_key(struct store *s, int64_t account_id, char **key_r, const char **error_r)
{
	return one_row(s, "account key", "SELECT key FROM accounts WHERE id = ?1", account_id, 0,
	               NULL, NULL, key_r, error_r);
}

int store_account_find(struct store *s, const char *key, int64_t *account_id_r,
                       const char **error_r)
{
	return one_row(s, "find account", "SELECT id FROM accounts WHERE key = ?1", 0, 0, key,
	               account_id_r, NULL, error_r);
}

int store_primary_account_get(struct store *s, int64_t *account_id_r, const char **error_r)
{
	int64_t id = 0;
	int r = one_row(s, "primary account",
	                "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'primary_account'", 0,
	                0, NULL, &id, NULL, error_r);
	if (r == 1 && id <= 0)
		r = 0;
	if (r == 1)
		*account_id_r = id;
	return r;
}

int store_primary_account_set(struct store *s, int64_t account_id, const char **error_r)
{
	const char *sql = account_id > 0 ? "INSERT OR REPLACE INTO meta(key, value) "
	                                   "VALUES ('primary_account', ?1)"
	                                 : "DELETE FROM meta WHERE key = 'primary_account'";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "set primary account");
		return -1;
	}
	if (account_id > 0)
		sqlite3_bind_int64(st, 1, account_id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "set primary account");
		return -1;
	}
	return 0;
}

int store_blob_in_account(struct store *s, int64_t account_id, int64_t blob_id,
                          const char **error_r)
{
	int64_t email;
	return store_email_of_blob(s, account_id, blob_id, &email, error_r);
}

int store_email_of_blob(struct store *s, int64_t account_id, int64_t blob_id, int64_t *email_id_r,
                        const char **error_r)
{
	return one_row(s, "email of blob",
	               "SELECT id FROM emails WHERE blob_id = ?1 AND account_id = ?2", blob_id,
	               account_id, NULL, email_id_r, NULL, error_r);
}

int store_blob_is_upload(struct store *s, int64_t blob_id, const char **error_r)
{
	return one_row(s, "upload", "SELECT 1 FROM uploads WHERE blob_id = ?1", blob_id, 0, NULL,
	               NULL, NULL, error_r);
}
