/* Read-only views of the store for the device API. */
#include "store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int store_mailbox_counts(struct store *s, struct store_mailbox_counts **counts_r,
			 size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT b.id, count(m.id), coalesce(sum((m.flags & 1) = 0), 0) "
			       "FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id "
			       "AND m.uid > 0 GROUP BY b.id ORDER BY b.id",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "count mailboxes");
		return -1;
	}
	struct store_mailbox_counts *c = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			struct store_mailbox_counts *nc = realloc(c, cap * sizeof(*c));
			if (nc == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			c = nc;
		}
		c[n].mailbox_id = sqlite3_column_int64(st, 0);
		c[n].total = (uint32_t)sqlite3_column_int64(st, 1);
		c[n].unread = (uint32_t)sqlite3_column_int64(st, 2);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(c);
		*error_r = store_err(s, "count mailboxes");
		return -1;
	}
	*counts_r = c;
	*count_r = n;
	return 0;
}

int store_email_get(struct store *s, int64_t id, struct store_email *email_r,
		    const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
			       "SELECT m.id, m.mailbox_id, m.uid, m.blob_id, b.size, m.flags, "
			       "m.keywords, m.internaldate FROM messages m JOIN blobs b "
			       "ON b.id = m.blob_id WHERE m.id = ?1 AND m.uid > 0",
			       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "get message");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(email_r, 0, sizeof(*email_r));
		email_r->id = sqlite3_column_int64(st, 0);
		email_r->mailbox_id = sqlite3_column_int64(st, 1);
		email_r->uid = (uint32_t)sqlite3_column_int64(st, 2);
		email_r->blob_id = sqlite3_column_int64(st, 3);
		email_r->size = (uint64_t)sqlite3_column_int64(st, 4);
		email_r->flags = (unsigned)sqlite3_column_int(st, 5);
		const unsigned char *kw = sqlite3_column_text(st, 6);
		snprintf(email_r->keywords, sizeof(email_r->keywords), "%s",
			 kw != NULL ? (const char *)kw : "");
		email_r->internaldate = sqlite3_column_int64(st, 7);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "get message");
	return -1;
}

int store_email_query(struct store *s, int64_t mailbox_id, bool newest_first, uint64_t position,
		      uint64_t limit, int64_t **ids_r, size_t *count_r, uint64_t *total_r,
		      const char **error_r)
{
	sqlite3 *db = store_db(s);
	sqlite3_stmt *st = NULL;
	/* Committed rows always have positive UIDs (set-aside ones exist only
	 * inside a re-pairing transaction), so no UID condition: it would lead
	 * SQLite to the (mailbox, uid) index and a sort of the whole mailbox
	 * instead of walking (mailbox, internaldate). */
	uint64_t total = 0;
	if (total_r != NULL) {
		const char *count_sql = mailbox_id != 0
						? "SELECT count(*) FROM messages WHERE mailbox_id = ?1"
						: "SELECT count(*) FROM messages";
		if (sqlite3_prepare_v2(db, count_sql, -1, &st, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "query messages");
			return -1;
		}
		if (mailbox_id != 0)
			sqlite3_bind_int64(st, 1, mailbox_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			total = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT id FROM messages %s ORDER BY internaldate %s, id %s LIMIT ?2 OFFSET ?3",
		 mailbox_id != 0 ? "WHERE mailbox_id = ?1" : "", newest_first ? "DESC" : "ASC",
		 newest_first ? "DESC" : "ASC");
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "query messages");
		return -1;
	}
	if (mailbox_id != 0)
		sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(position > INT64_MAX ? INT64_MAX : position));
	int64_t *ids = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 64 : cap * 2;
			int64_t *ni = realloc(ids, cap * sizeof(*ids));
			if (ni == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			ids = ni;
		}
		ids[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		*error_r = store_err(s, "query messages");
		return -1;
	}
	*ids_r = ids;
	*count_r = n;
	if (total_r != NULL)
		*total_r = total;
	return 0;
}

int store_read_modseq(struct store *s, uint64_t *modseq_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "SELECT value FROM meta WHERE key = 'modseq'", -1, &st,
			       NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		*error_r = store_err(s, "read change counter");
		return -1;
	}
	*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int store_blob_size(struct store *s, int64_t blob_id, uint64_t *size_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "SELECT size FROM blobs WHERE id = ?1", -1, &st, NULL) !=
	    SQLITE_OK) {
		*error_r = store_err(s, "blob size");
		return -1;
	}
	sqlite3_bind_int64(st, 1, blob_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*size_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "blob size");
	return -1;
}
