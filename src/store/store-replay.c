/*
 * The store side of the replay of device changes to the providers: the
 * pending list, the replay state of a change, pairing a message made here
 * with the UID the server gave it. See store-replay.h.
 */
#include "store-replay.h"
#include "store-private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/array.h"

/* Prepared statements kept for the length of one call over many changes
 * (slots chosen by the caller); a NULL cache prepares and finalizes each
 * time. */
#define CACHE_SLOTS 8
struct cache {
	sqlite3_stmt *st[CACHE_SLOTS];
};

static void cache_done(struct cache *c)
{
	for (int i = 0; i < CACHE_SLOTS; i++)
		sqlite3_finalize(c->st[i]);
	memset(c, 0, sizeof(*c));
}

/* Run one statement with bound values ('i' int64, 't' text or NULL). With
 * out (not NULL) the first column of the first row is read into *out;
 * *found_r (may be NULL) says whether there was a row. */
static int vcrun(struct store *s, struct cache *cache, int slot, const char *what, const char *sql,
                 int64_t *out, bool *found_r, const char **error_r, const char *types, va_list ap)
{
	sqlite3_stmt *st = cache != NULL ? cache->st[slot] : NULL;
	if (st == NULL) {
		if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
			*error_r = store_err(s, what);
			return -1;
		}
		if (cache != NULL)
			cache->st[slot] = st;
	}
	for (int i = 0; types[i] != '\0'; i++) {
		if (types[i] == 'i') {
			sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		} else {
			const char *t = va_arg(ap, const char *);
			if (t == NULL)
				sqlite3_bind_null(st, i + 1);
			else
				sqlite3_bind_text(st, i + 1, t, -1, SQLITE_TRANSIENT);
		}
	}
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && out != NULL)
		*out = sqlite3_column_int64(st, 0);
	if (found_r != NULL)
		*found_r = rc == SQLITE_ROW;
	if (cache != NULL) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, what);
		return -1;
	}
	return 0;
}

static int crun(struct store *s, struct cache *cache, int slot, const char *what, const char *sql,
                int64_t *out, bool *found_r, const char **error_r, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int r = vcrun(s, cache, slot, what, sql, out, found_r, error_r, types, ap);
	va_end(ap);
	return r;
}

static int run(struct store *s, const char *what, const char *sql, int64_t *out, bool *found_r,
               const char **error_r, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int r = vcrun(s, NULL, 0, what, sql, out, found_r, error_r, types, ap);
	va_end(ap);
	return r;
}

int store_replay_schema(struct store *s, const char **error_r)
{
	/* The columns belong to the schema (h-model's schema 3 has them);
	 * a store made before gets them here, each added only if missing. */
	static const struct {
		const char *name, *sql;
	} cols[] = {
	    {"state", "ALTER TABLE local_changes ADD COLUMN state TEXT NOT NULL DEFAULT ''"},
	    {"attempts", "ALTER TABLE local_changes ADD COLUMN attempts INTEGER DEFAULT 0"},
	    {"error", "ALTER TABLE local_changes ADD COLUMN error TEXT"},
	};
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		int64_t n = 0;
		if (run(s, "check replay columns",
		        "SELECT count(*) FROM pragma_table_info('local_changes') WHERE name = ?1",
		        &n, NULL, error_r, "t", cols[i].name) < 0)
			return -1;
		if (n == 0 &&
		    sqlite3_exec(store_db(s), cols[i].sql, NULL, NULL, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "add replay columns");
			return -1;
		}
	}
	return 0;
}

static char *col_strdup(sqlite3_stmt *st, int col, bool *oom)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	if (t == NULL)
		return NULL;
	char *d = strdup((const char *)t);
	if (d == NULL)
		*oom = true;
	return d;
}

int store_replay_pending(struct store *s, int64_t account_id,
                         struct store_replay_change **changes_r, size_t *count_r,
                         const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT id, kind, object_id, mailbox_id, account_id, "
	                       "origin_mailbox_id, origin_uid, origin_name, detail, state, "
	                       "attempts, pair_size, pair_hash FROM local_changes "
	                       "WHERE account_id = ?1 AND state IN ('', 'sent') ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "list pending changes");
		return -1;
	}
	sqlite3_bind_int64(st, 1, account_id);
	struct store_replay_change *v = NULL;
	size_t n = 0, cap = 0;
	bool oom = false;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&v, &cap, n, sizeof(*v)) < 0) {
			oom = true;
			break;
		}
		struct store_replay_change *c = &v[n++];
		memset(c, 0, sizeof(*c));
		c->id = sqlite3_column_int64(st, 0);
		snprintf(c->kind, sizeof(c->kind), "%s", (const char *)sqlite3_column_text(st, 1));
		c->object_id = sqlite3_column_int64(st, 2);
		c->mailbox_id = sqlite3_column_int64(st, 3);
		c->account_id = sqlite3_column_int64(st, 4);
		c->origin_mailbox_id = sqlite3_column_int64(st, 5);
		c->origin_uid = sqlite3_column_int64(st, 6);
		c->origin_name = col_strdup(st, 7, &oom);
		c->detail = col_strdup(st, 8, &oom);
		const unsigned char *state = sqlite3_column_text(st, 9);
		c->sent = state != NULL && strcmp((const char *)state, "sent") == 0;
		c->attempts = (unsigned)sqlite3_column_int(st, 10);
		if (sqlite3_column_type(st, 11) != SQLITE_NULL &&
		    sqlite3_column_bytes(st, 12) == 32) {
			c->have_pair = true;
			c->pair_size = (uint64_t)sqlite3_column_int64(st, 11);
			memcpy(c->pair_hash, sqlite3_column_blob(st, 12), 32);
		}
		if (oom)
			break;
	}
	sqlite3_finalize(st);
	if (oom || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
		store_replay_changes_free(&v, n);
		*error_r = oom ? "out of memory" : store_err(s, "list pending changes");
		return -1;
	}
	*changes_r = v;
	*count_r = n;
	return 0;
}

void store_replay_changes_free(struct store_replay_change **changes, size_t count)
{
	if (*changes == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*changes)[i].origin_name);
		free((*changes)[i].detail);
	}
	free(*changes);
	*changes = NULL;
}

int store_replay_mark_sent(struct store *s, const struct store_replay_change *v, size_t n,
                           const char **error_r)
{
	struct cache c = {0};
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = crun(s, &c, 0, "mark a change sent",
		           "UPDATE local_changes SET state = 'sent', attempts = attempts + 1 "
		           "WHERE id = ?1",
		           NULL, NULL, error_r, "i", v[i].id);
	cache_done(&c);
	return ret;
}

int store_replay_finish(struct store *s, const struct store_replay_change *v, size_t n,
                        const char **error_r)
{
	struct cache c = {0};
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = crun(s, &c, 0, "finish a change", "DELETE FROM local_changes WHERE id = ?1",
		           NULL, NULL, error_r, "i", v[i].id);
	cache_done(&c);
	return ret;
}

/* Printable ASCII of untrusted text (a server's answer) for the notice. */
static void clean_text(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src != NULL && *src != '\0' && i + 1 < size; src++)
		dst[i++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	dst[i] = '\0';
}

/* A notice in the hub's INBOX: body lines joined with CRLF. */
static int notice(struct store *s, const char *subject, const char *body, int64_t tag,
                  const char **error_r)
{
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	char msg[3072];
	int len = snprintf(msg, sizeof(msg),
	                   "From: mailkeep <mailkeep@localhost>\r\n"
	                   "To: you\r\n"
	                   "Date: %s\r\n"
	                   "Subject: %s\r\n"
	                   "Message-ID: <replay-%lld-%lld@mailkeep>\r\n"
	                   "MIME-Version: 1.0\r\n"
	                   "Content-Type: text/plain; charset=us-ascii\r\n"
	                   "\r\n"
	                   "%s",
	                   date, subject, (long long)tag, (long long)now, body);
	if (len < 0 || (size_t)len >= sizeof(msg))
		len = (int)strlen(msg);
	return store_local_deliver(s, msg, (size_t)len, (int64_t)now, error_r);
}

int store_replay_fail(struct store *s, const struct store_replay_change *c, const char *error,
                      bool notify, const char **error_r)
{
	if (run(s, "fail a change",
	        "UPDATE local_changes SET state = 'failed', error = ?2 WHERE id = ?1", NULL, NULL,
	        error_r, "it", c->id, error) < 0)
		return -1;
	if (strcmp(c->kind, "mailbox-rename") == 0 && c->origin_name != NULL) {
		/* Nothing moved on the server: the mailbox goes back to the
		 * name the server has, and devices see that (a new modseq). */
		if (run(s, "rename mailbox back",
		        "UPDATE mailboxes SET name = ?2, modseq = ?3 WHERE id = ?1 AND NOT EXISTS "
		        "(SELECT 1 FROM mailboxes o WHERE o.account_id = mailboxes.account_id "
		        "AND o.name = ?2 AND o.id != ?1)",
		        NULL, NULL, error_r, "iti", c->object_id, c->origin_name,
		        (int64_t)store_next_modseq(s)) < 0)
			return -1;
	}
	if (!notify)
		return 0;
	char err[600], what[400], body[1600];
	clean_text(err, sizeof(err), error);
	if (strncmp(c->kind, "mailbox-", 8) == 0) {
		char name[300];
		clean_text(name, sizeof(name),
		           c->origin_name != NULL ? c->origin_name
		           : c->detail != NULL    ? c->detail
		                                  : "");
		snprintf(what, sizeof(what), "The change \"%s\" of the folder \"%s\"", c->kind,
		         name);
	} else {
		snprintf(what, sizeof(what), "The change \"%s\" of message %lld", c->kind,
		         (long long)c->object_id);
	}
	snprintf(body, sizeof(body),
	         "%s, made on one of your devices, was refused by the mail server\r\n"
	         "of account %lld, so it is not on the server:\r\n"
	         "\r\n  %s\r\n\r\n"
	         "mailkeep will not try it again. The next sync shows the server's\r\n"
	         "state on your devices where it differs.\r\n",
	         what, (long long)c->account_id, err);
	return notice(s, "A change could not be made on your mail provider", body, c->id, error_r);
}

int store_replay_notice_more(struct store *s, int64_t account_id, unsigned count,
                             const char **error_r)
{
	char body[600];
	snprintf(body, sizeof(body),
	         "%u more changes made on your devices were refused by the mail server\r\n"
	         "of account %lld in the same sync, so they are not on the server.\r\n"
	         "mailkeep will not try them again. The next sync shows the server's\r\n"
	         "state on your devices where it differs.\r\n",
	         count, (long long)account_id);
	return notice(s, "More changes could not be made on your mail provider", body,
	              -(int64_t)count, error_r);
}

static int uid_held(struct store *s, struct cache *c, int64_t mailbox_id, uint32_t uid,
                    int64_t except_id, const char **error_r)
{
	bool found = false;
	if (crun(s, c, 0, "look up message",
	         "SELECT 1 FROM messages WHERE mailbox_id = ?1 AND uid = ?2 AND id != ?3", NULL,
	         &found, error_r, "iii", mailbox_id, (int64_t)uid, except_id) < 0)
		return -1;
	return found ? 1 : 0;
}

int store_replay_uid_held(struct store *s, int64_t mailbox_id, uint32_t uid, int64_t except_id,
                          const char **error_r)
{
	return uid_held(s, NULL, mailbox_id, uid, except_id, error_r);
}

static int pair_one(struct store *s, struct cache *c, int64_t message_id, int64_t mailbox_id,
                    uint32_t uid, const char **error_r)
{
	if (crun(s, c, 1, "update origins",
	         "UPDATE local_changes SET origin_mailbox_id = ?2, origin_uid = ?3 "
	         "WHERE object_id = ?1 AND state IN ('', 'sent') AND kind NOT LIKE 'mailbox-%'",
	         NULL, NULL, error_r, "iii", message_id, mailbox_id, (int64_t)uid) < 0)
		return -1;
	/* Still in that mailbox with its local uid, and no other row holds
	 * the UID (one the sync fetched meanwhile is not taken twice). */
	if (crun(s, c, 2, "pair message",
	         "UPDATE messages SET uid = ?3 WHERE id = ?1 AND mailbox_id = ?2 AND uid >= ?4 "
	         "AND NOT EXISTS (SELECT 1 FROM messages o WHERE o.mailbox_id = ?2 AND o.uid = ?3)",
	         NULL, NULL, error_r, "iiii", message_id, mailbox_id, (int64_t)uid,
	         (int64_t)STORE_LOCAL_UID_BASE) < 0)
		return -1;
	if (sqlite3_changes(store_db(s)) == 0)
		return 0;
	if (crun(s, c, 3, "advance uidnext",
	         "UPDATE mailboxes SET uidnext = ?2 + 1 WHERE id = ?1 AND uidnext = ?2 "
	         "AND uidvalidity != 0",
	         NULL, NULL, error_r, "ii", mailbox_id, (int64_t)uid) < 0)
		return -1;
	return 1;
}

int store_replay_pair(struct store *s, int64_t message_id, int64_t mailbox_id, uint32_t uid,
                      const char **error_r)
{
	return pair_one(s, NULL, message_id, mailbox_id, uid, error_r);
}

int store_replay_pair_many(struct store *s, const struct store_replay_change *v, size_t n,
                           const uint32_t *uids, const char **error_r)
{
	/* In UID order per mailbox, so each one can move UIDNEXT on past the
	 * one before: the answers come sorted by source UID. */
	size_t *order = malloc((n > 0 ? n : 1) * sizeof(*order));
	if (order == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (uids[i] != 0)
			order[k++] = i;
	for (size_t i = 1; i < k; i++) { /* insertion sort: mostly sorted */
		size_t x = order[i], j = i;
		while (j > 0 && (v[order[j - 1]].mailbox_id > v[x].mailbox_id ||
		                 (v[order[j - 1]].mailbox_id == v[x].mailbox_id &&
		                  uids[order[j - 1]] > uids[x]))) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = x;
	}
	struct cache c = {0};
	int ret = 0;
	for (size_t i = 0; i < k && ret == 0; i++)
		if (pair_one(s, &c, v[order[i]].object_id, v[order[i]].mailbox_id, uids[order[i]],
		             error_r) < 0)
			ret = -1;
	cache_done(&c);
	free(order);
	return ret;
}

int store_replay_forget_origin(struct store *s, int64_t message_id, const char **error_r)
{
	return run(s, "update origins",
	           "UPDATE local_changes SET origin_mailbox_id = 0, origin_uid = 0 "
	           "WHERE object_id = ?1 AND state IN ('', 'sent') AND kind NOT LIKE 'mailbox-%'",
	           NULL, NULL, error_r, "i", message_id);
}

int store_replay_mailbox_renamed(struct store *s, int64_t mailbox_id, const char *name,
                                 const char **error_r)
{
	return run(s, "update origins",
	           "UPDATE local_changes SET origin_name = ?2 WHERE object_id = ?1 "
	           "AND state IN ('', 'sent') AND kind IN ('mailbox-rename', 'mailbox-destroy')",
	           NULL, NULL, error_r, "it", mailbox_id, name);
}

int store_replay_mailbox_spelled(struct store *s, int64_t mailbox_id, const char *device_name,
                                 const char *server_name, const char **error_r)
{
	if (strcmp(device_name, server_name) == 0)
		return 0;
	return run(s, "mailbox name",
	           "UPDATE mailboxes SET name = ?3, modseq = ?4 WHERE id = ?1 AND name = ?2 "
	           "AND NOT EXISTS (SELECT 1 FROM mailboxes o WHERE "
	           "o.account_id = mailboxes.account_id AND o.name = ?3 AND o.id != ?1)",
	           NULL, NULL, error_r, "itti", mailbox_id, device_name, server_name,
	           (int64_t)store_next_modseq(s));
}

int store_replay_mailbox_created(struct store *s, int64_t mailbox_id, uint32_t uidvalidity,
                                 uint32_t uidnext, const char **error_r)
{
	return run(s, "mailbox state",
	           "UPDATE mailboxes SET uidvalidity = ?2, uidnext = ?3 WHERE id = ?1 "
	           "AND uidvalidity = 0",
	           NULL, NULL, error_r, "iii", mailbox_id, (int64_t)uidvalidity, (int64_t)uidnext);
}

int store_replay_message(struct store *s, int64_t message_id, struct store_replay_msg *msg_r,
                         const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT m.mailbox_id, m.uid, m.blob_id, b.size, m.flags, m.keywords, "
	        "m.internaldate FROM messages m JOIN blobs b ON b.id = m.blob_id "
	        "WHERE m.id = ?1",
	        -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up message");
		return -1;
	}
	sqlite3_bind_int64(st, 1, message_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (ret == 1) {
		bool oom = false;
		msg_r->mailbox_id = sqlite3_column_int64(st, 0);
		msg_r->uid = sqlite3_column_int64(st, 1);
		msg_r->blob_id = sqlite3_column_int64(st, 2);
		msg_r->size = (uint64_t)sqlite3_column_int64(st, 3);
		msg_r->flags = (unsigned)sqlite3_column_int(st, 4);
		msg_r->keywords = col_strdup(st, 5, &oom);
		msg_r->internaldate = sqlite3_column_int64(st, 6);
		if (oom) {
			*error_r = "out of memory";
			ret = -1;
		}
	} else if (ret < 0) {
		*error_r = store_err(s, "look up message");
	}
	sqlite3_finalize(st);
	return ret;
}

void store_replay_message_free(struct store_replay_msg *msg)
{
	free(msg->keywords);
	msg->keywords = NULL;
}

int store_replay_server_name(struct store *s, int64_t mailbox_id, char **name_r,
                             const char **error_r)
{
	char *name = NULL;
	bool local_only = false;
	if (store_local_mailbox_origin(s, mailbox_id, &name, &local_only, error_r) < 0)
		return -1;
	if (name == NULL && !local_only) {
		/* A first change without a server name (mailbox-props): the
		 * server knows the mailbox by its name here. */
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(store_db(s), "SELECT name FROM mailboxes WHERE id = ?1", -1,
		                       &st, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "look up mailbox");
			return -1;
		}
		sqlite3_bind_int64(st, 1, mailbox_id);
		bool oom = false;
		if (sqlite3_step(st) == SQLITE_ROW)
			name = col_strdup(st, 0, &oom);
		sqlite3_finalize(st);
		if (oom) {
			*error_r = "out of memory";
			return -1;
		}
	}
	if (name == NULL)
		return 0;
	*name_r = name;
	return 1;
}

int store_replay_mailbox_state(struct store *s, int64_t mailbox_id, uint32_t *uidvalidity_r,
                               uint32_t *uidnext_r, uint64_t *highestmodseq_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT uidvalidity, uidnext, highestmodseq FROM mailboxes "
	                       "WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up mailbox");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	*uidvalidity_r = *uidnext_r = 0;
	*highestmodseq_r = 0;
	if (rc == SQLITE_ROW) {
		*uidvalidity_r = (uint32_t)sqlite3_column_int64(st, 0);
		*uidnext_r = (uint32_t)sqlite3_column_int64(st, 1);
		*highestmodseq_r = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "look up mailbox");
		return -1;
	}
	return rc == SQLITE_ROW ? 1 : 0;
}

int store_replay_refresh(struct store *s, struct store_replay_change *v, size_t n,
                         const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT origin_mailbox_id, origin_uid, origin_name, state, attempts "
	                       "FROM local_changes WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up change");
		return -1;
	}
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct store_replay_change *c = &v[i];
		sqlite3_bind_int64(st, 1, c->id);
		int rc = sqlite3_step(st);
		bool oom = false;
		if (rc == SQLITE_ROW) {
			c->origin_mailbox_id = sqlite3_column_int64(st, 0);
			c->origin_uid = sqlite3_column_int64(st, 1);
			free(c->origin_name);
			c->origin_name = col_strdup(st, 2, &oom);
			const unsigned char *state = sqlite3_column_text(st, 3);
			c->sent = state != NULL && strcmp((const char *)state, "sent") == 0;
			c->attempts = (unsigned)sqlite3_column_int(st, 4);
		}
		sqlite3_reset(st);
		if (oom) {
			*error_r = "out of memory";
			ret = -1;
		} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			*error_r = store_err(s, "look up change");
			ret = -1;
		}
	}
	sqlite3_finalize(st);
	return ret;
}
