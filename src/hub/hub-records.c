/* Listing a user's consents and removal receipts (hub.h), for the
 * management methods that show them. */
#include "hub-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *column_dup(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return strdup(t != NULL ? (const char *)t : "");
}

int hub_consent_list(struct hub *hub, int64_t user_id, struct hub_consent **consents_r,
                     size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "SELECT c.id, c.account_id, c.time, c.disclosure_id, c.tool, a.login "
	                "FROM consents c LEFT JOIN accounts a ON a.id = c.account_id "
	                "WHERE c.user_id = ?1 ORDER BY c.time DESC, c.id DESC",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	struct hub_consent *c = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hub_consent *nc = realloc(c, (n + 1) * sizeof(*c));
		if (nc == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		c = nc;
		memset(&c[n], 0, sizeof(c[n]));
		c[n].id = sqlite3_column_int64(st, 0);
		c[n].account_id = sqlite3_column_int64(st, 1);
		c[n].time = sqlite3_column_int64(st, 2);
		snprintf(c[n].disclosure_id, sizeof(c[n].disclosure_id), "%s",
		         (const char *)sqlite3_column_text(st, 3));
		snprintf(c[n].tool, sizeof(c[n].tool), "%s",
		         (const char *)sqlite3_column_text(st, 4));
		if (sqlite3_column_type(st, 5) != SQLITE_NULL)
			snprintf(c[n].login, sizeof(c[n].login), "%s",
			         (const char *)sqlite3_column_text(st, 5));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(c);
		return hub_db_fail(hub, error_r, "list consents");
	}
	*consents_r = c;
	*count_r = n;
	return 0;
}

int hub_receipt_list(struct hub *hub, int64_t user_id, struct hub_receipt **receipts_r,
                     size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "SELECT id, time, text FROM receipts WHERE user_id = ?1 "
	                "ORDER BY time DESC, id DESC",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	struct hub_receipt *r = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hub_receipt *nr = realloc(r, (n + 1) * sizeof(*r));
		if (nr == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		r = nr;
		r[n].id = sqlite3_column_int64(st, 0);
		r[n].time = sqlite3_column_int64(st, 1);
		if ((r[n].text = column_dup(st, 2)) == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		hub_receipts_free(&r, n);
		return hub_db_fail(hub, error_r, "list receipts");
	}
	*receipts_r = r;
	*count_r = n;
	return 0;
}

void hub_receipts_free(struct hub_receipt **receipts, size_t count)
{
	if (*receipts == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*receipts)[i].text);
	free(*receipts);
	*receipts = NULL;
}
