/* Read-only views of the store for the device API. */
#include "store-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/array.h"

int store_mailbox_counts(struct store *s, struct store_mailbox_counts **counts_r, size_t *count_r,
                         const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT b.id, coalesce(c.total, 0), coalesce(c.unread, 0), "
	                       "coalesce(c.threads, 0), coalesce(c.unread_threads, 0) "
	                       "FROM mailboxes b LEFT JOIN mailbox_counts c ON c.mailbox_id = b.id "
	                       "ORDER BY b.id",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "count mailboxes");
		return -1;
	}
	struct store_mailbox_counts *c = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&c, &cap, n, sizeof(*c)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		c[n].mailbox_id = sqlite3_column_int64(st, 0);
		c[n].total = (uint32_t)sqlite3_column_int64(st, 1);
		c[n].unread = (uint32_t)sqlite3_column_int64(st, 2);
		c[n].threads = (uint32_t)sqlite3_column_int64(st, 3);
		c[n].unread_threads = (uint32_t)sqlite3_column_int64(st, 4);
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

int store_email_get(struct store *s, int64_t id, struct store_email *email_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT e.id, e.account_id, m.mailbox_id, m.uid, e.blob_id, b.size, e.flags, "
	        "e.keywords, e.internaldate, e.thread_id, (SELECT count(*) FROM messages x "
	        "WHERE x.email_id = e.id) FROM emails e JOIN blobs b ON b.id = e.blob_id "
	        "JOIN messages m ON m.id = (SELECT min(y.id) FROM messages y WHERE y.email_id = "
	        "e.id "
	        "AND y.uid > 0) WHERE e.id = ?1",
	        -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "get email");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(email_r, 0, sizeof(*email_r));
		email_r->id = sqlite3_column_int64(st, 0);
		email_r->account_id = sqlite3_column_int64(st, 1);
		email_r->mailbox_id = sqlite3_column_int64(st, 2);
		email_r->uid = (uint32_t)sqlite3_column_int64(st, 3);
		email_r->blob_id = sqlite3_column_int64(st, 4);
		email_r->size = (uint64_t)sqlite3_column_int64(st, 5);
		email_r->flags = (unsigned)sqlite3_column_int(st, 6);
		const unsigned char *kw = sqlite3_column_text(st, 7);
		snprintf(email_r->keywords, sizeof(email_r->keywords), "%s",
		         kw != NULL ? (const char *)kw : "");
		email_r->internaldate = sqlite3_column_int64(st, 8);
		email_r->thread_id = sqlite3_column_int64(st, 9);
		email_r->n_members = (size_t)sqlite3_column_int64(st, 10);
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "get email");
	return -1;
}

int store_email_members(struct store *s, int64_t email_id, int64_t **message_ids_r,
                        int64_t **mailbox_ids_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT id, mailbox_id FROM messages WHERE email_id = ?1 AND uid > 0 "
	        "ORDER BY id",
	        -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "list memberships");
		return -1;
	}
	sqlite3_bind_int64(st, 1, email_id);
	int64_t *ids = NULL, *boxes = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			int64_t *ni = realloc(ids, cap * sizeof(*ni));
			if (ni != NULL)
				ids = ni;
			int64_t *nb = ni != NULL ? realloc(boxes, cap * sizeof(*nb)) : NULL;
			if (nb == NULL) {
				rc = SQLITE_NOMEM;
				break;
			}
			boxes = nb;
		}
		ids[n] = sqlite3_column_int64(st, 0);
		boxes[n++] = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(ids);
		free(boxes);
		*error_r = store_err(s, "list memberships");
		return -1;
	}
	*message_ids_r = ids;
	*mailbox_ids_r = boxes;
	*count_r = n;
	return 0;
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
	 * instead of walking (mailbox, internaldate). An Email with two
	 * memberships in the mailbox counts once (its first). */
	static const char first_member[] =
	    "NOT EXISTS (SELECT 1 FROM messages y WHERE y.email_id = x.email_id "
	    "AND y.mailbox_id = x.mailbox_id AND y.id < x.id)";
	uint64_t total = 0;
	char sql[512];
	if (total_r != NULL) {
		if (mailbox_id != 0)
			snprintf(sql, sizeof(sql),
			         "SELECT count(*) FROM messages x WHERE x.mailbox_id = ?1 AND %s",
			         first_member);
		else
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM emails");
		if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "query messages");
			return -1;
		}
		if (mailbox_id != 0)
			sqlite3_bind_int64(st, 1, mailbox_id);
		if (sqlite3_step(st) == SQLITE_ROW)
			total = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	const char *dir = newest_first ? "DESC" : "ASC";
	if (mailbox_id != 0)
		snprintf(sql, sizeof(sql),
		         "SELECT x.email_id FROM messages x WHERE x.mailbox_id = ?1 AND %s "
		         "ORDER BY x.internaldate %s, x.id %s LIMIT ?2 OFFSET ?3",
		         first_member, dir, dir);
	else
		snprintf(sql, sizeof(sql),
		         "SELECT id FROM emails ORDER BY internaldate %s, id %s LIMIT ?2 OFFSET ?3",
		         dir, dir);
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
		if (array_grow(&ids, &cap, n, sizeof(*ids)) < 0) {
			rc = SQLITE_NOMEM;
			break;
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
	if (sqlite3_prepare_v2(store_db(s), "SELECT size FROM blobs WHERE id = ?1", -1, &st,
	                       NULL) != SQLITE_OK) {
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

/* Change records in modseq order: (modseq, 'c'|'u'|'d', id), of one
 * account (?2) or all (?2 = 0). Each part is a range of an index on
 * (account_id, modseq) or (modseq): the cost follows the number of changes.
 * A row changed after it was created is reported once, at its last
 * change, as created when that happened after since. Tombstones of
 * account 0 are from before schema 3 (account unknown): every account
 * sees them (a client ignores a destroyed id it does not know). */
static const char *const changes_sql[][2] = {
    [STORE_CHANGES_MAILBOX] =
        {"SELECT modseq, CASE WHEN created_modseq > ?1 THEN 'c' ELSE 'u' END, id "
         "FROM mailboxes WHERE modseq > ?1 "
         "UNION ALL SELECT modseq, 'u', mailbox_id FROM messages WHERE modseq > ?1 "
         "UNION ALL SELECT modseq, 'u', parent_id FROM tombstones "
         "  WHERE kind = 'message' AND modseq > ?1 "
         "UNION ALL SELECT modseq, 'd', object_id FROM tombstones "
         "  WHERE kind = 'mailbox' AND modseq > ?1 ORDER BY 1",
         "SELECT modseq, CASE WHEN created_modseq > ?1 THEN 'c' ELSE 'u' END, id "
         "FROM mailboxes WHERE account_id = ?2 AND modseq > ?1 "
         "UNION ALL SELECT m.modseq, 'u', m.mailbox_id FROM messages m CROSS JOIN mailboxes b "
         "  ON b.id = m.mailbox_id WHERE m.modseq > ?1 AND b.account_id = ?2 "
         "UNION ALL SELECT modseq, 'u', parent_id FROM tombstones "
         "  WHERE account_id = ?2 AND kind = 'message' AND modseq > ?1 "
         "UNION ALL SELECT modseq, 'd', object_id FROM tombstones "
         "  WHERE account_id IN (0, ?2) AND kind = 'mailbox' AND modseq > ?1 ORDER BY 1"},
    [STORE_CHANGES_EMAIL] =
        {"SELECT modseq, CASE WHEN created_modseq > ?1 THEN 'c' ELSE 'u' END, id "
         "FROM emails WHERE modseq > ?1 "
         "UNION ALL SELECT modseq, 'd', object_id FROM tombstones "
         "  WHERE kind = 'email' AND modseq > ?1 ORDER BY 1",
         "SELECT modseq, CASE WHEN created_modseq > ?1 THEN 'c' ELSE 'u' END, id "
         "FROM emails WHERE account_id = ?2 AND modseq > ?1 "
         "UNION ALL SELECT modseq, 'd', object_id FROM tombstones "
         "  WHERE account_id IN (0, ?2) AND kind = 'email' AND modseq > ?1 ORDER BY 1"},
    [STORE_CHANGES_THREAD] =
        {"SELECT modseq, CASE WHEN created_modseq > ?1 THEN 'c' ELSE 'u' END, id "
         "FROM threads WHERE modseq > ?1 "
         "UNION ALL SELECT modseq, 'd', object_id FROM tombstones "
         "  WHERE kind = 'thread' AND modseq > ?1 ORDER BY 1",
         "SELECT modseq, CASE WHEN created_modseq > ?1 THEN 'c' ELSE 'u' END, id "
         "FROM threads WHERE account_id IN (0, ?2) AND modseq > ?1 "
         "UNION ALL SELECT modseq, 'd', object_id FROM tombstones "
         "  WHERE account_id IN (0, ?2) AND kind = 'thread' AND modseq > ?1 ORDER BY 1"},
};

/* A list of ids with a hash index on the side (open addressing). */
struct idset {
	int64_t *ids;
	size_t n, cap;
	int64_t *slots; /* 0 = empty */
	size_t nslots;
};

static size_t idset_slot(const struct idset *set, int64_t id)
{
	uint64_t h = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	size_t i = (size_t)(h >> 20) & (set->nslots - 1);
	while (set->slots[i] != 0 && set->slots[i] != id)
		i = (i + 1) & (set->nslots - 1);
	return i;
}

static bool idset_has(const struct idset *set, int64_t id)
{
	return set->nslots > 0 && set->slots[idset_slot(set, id)] == id;
}

static int idset_add(struct idset *set, int64_t id)
{
	if ((set->n + 1) * 2 > set->nslots) {
		size_t nslots = set->nslots == 0 ? 64 : set->nslots * 2;
		int64_t *slots = calloc(nslots, sizeof(*slots));
		if (slots == NULL)
			return -1;
		free(set->slots);
		set->slots = slots;
		set->nslots = nslots;
		for (size_t i = 0; i < set->n; i++)
			set->slots[idset_slot(set, set->ids[i])] = set->ids[i];
	}
	if (set->n == set->cap) {
		size_t cap = set->cap == 0 ? 16 : set->cap * 2;
		int64_t *n = realloc(set->ids, cap * sizeof(*n));
		if (n == NULL)
			return -1;
		set->ids = n;
		set->cap = cap;
	}
	set->ids[set->n++] = id;
	set->slots[idset_slot(set, id)] = id;
	return 0;
}

/* Remove id from the list (the hash keeps it: membership then means "was
 * listed", which is what the caller wants). */
static void idset_drop(struct idset *set, int64_t id)
{
	for (size_t i = 0; i < set->n; i++) {
		if (set->ids[i] == id) {
			set->ids[i] = set->ids[--set->n];
			return;
		}
	}
}

int store_changes(struct store *s, enum store_changes_kind kind, uint64_t since, size_t max_changes,
                  struct store_changes *changes_r, const char **error_r)
{
	return store_changes_account(s, 0, kind, since, max_changes, changes_r, error_r);
}

int store_changes_account(struct store *s, int64_t account_id, enum store_changes_kind kind,
                          uint64_t since, size_t max_changes, struct store_changes *changes_r,
                          const char **error_r)
{
	uint64_t current;
	if (store_read_modseq(s, &current, error_r) < 0)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), changes_sql[kind][account_id != 0], -1, &st, NULL) !=
	    SQLITE_OK) {
		*error_r = store_err(s, "changes");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	if (account_id != 0)
		sqlite3_bind_int64(st, 2, account_id);
	struct idset c = {0}, u = {0}, d = {0};
	uint64_t reached = since, last = since;
	bool more = false;
	int rc;
	/* Several records may share a modseq only across kinds of record for
	 * one change; a state is reported only once all its records are in. */
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t modseq = (uint64_t)sqlite3_column_int64(st, 0);
		char type = (char)sqlite3_column_text(st, 1)[0];
		int64_t id = sqlite3_column_int64(st, 2);
		if (id == 0)
			continue;
		if (modseq != last)
			reached = last;
		last = modseq;
		bool known = idset_has(&c, id) || idset_has(&u, id) || idset_has(&d, id);
		if (!known && c.n + u.n + d.n >= max_changes) {
			more = true;
			break;
		}
		int r = 0;
		if (type == 'c' && !idset_has(&c, id))
			r = idset_add(&c, id);
		else if (type == 'u' && !known)
			r = idset_add(&u, id);
		else if (type == 'd' && !idset_has(&d, id)) {
			/* destroyed wins; created-then-destroyed is still reported */
			if (idset_has(&u, id))
				idset_drop(&u, id);
			r = idset_add(&d, id);
		}
		if (r < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	free(c.slots);
	free(u.slots);
	free(d.slots);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		free(c.ids);
		free(u.ids);
		free(d.ids);
		*error_r = store_err(s, "changes");
		return -1;
	}
	changes_r->created = c.ids;
	changes_r->n_created = c.n;
	changes_r->updated = u.ids;
	changes_r->n_updated = u.n;
	changes_r->destroyed = d.ids;
	changes_r->n_destroyed = d.n;
	changes_r->has_more = more;
	changes_r->new_state = more ? reached : current;
	return 0;
}

void store_changes_free(struct store_changes *changes)
{
	free(changes->created);
	free(changes->updated);
	free(changes->destroyed);
	memset(changes, 0, sizeof(*changes));
}
