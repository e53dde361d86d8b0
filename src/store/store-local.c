/*
 * Changes made through the device API, and the record of them that the
 * later two-way sync will carry to the providers. See store.h ("Changes
 * made through the device API") for the model and the UID scheme.
 *
 * Tables (created if missing by store_open):
 *   local_changes(id, modseq, kind, object_id, mailbox_id, account_id,
 *                 origin_mailbox_id, origin_uid, origin_name, detail,
 *                 pair_size, pair_hash, state, attempts, error)
 *     state/attempts/error: the replay's (store-replay.c): '' pending,
 *     'sent' maybe applied by the server, 'failed' refused for good.
 *   uploads(blob_id, type, created)        RFC 8620 6.1 uploads
 *   mailbox_props(mailbox_id, sort_order, subscribed)
 */
#include "store-envelope.h"
#include "store-private.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/array.h"

static const char local_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS local_changes("
    " id INTEGER PRIMARY KEY, modseq INTEGER NOT NULL, kind TEXT NOT NULL,"
    " object_id INTEGER NOT NULL, mailbox_id INTEGER NOT NULL DEFAULT 0,"
    " account_id INTEGER NOT NULL DEFAULT 0,"
    " origin_mailbox_id INTEGER NOT NULL DEFAULT 0, origin_uid INTEGER NOT NULL DEFAULT 0,"
    " origin_name TEXT, detail TEXT, pair_size INTEGER, pair_hash BLOB,"
    " state TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, error TEXT);"
    "CREATE INDEX IF NOT EXISTS local_changes_object ON local_changes(object_id);"
    "CREATE INDEX IF NOT EXISTS local_changes_name ON local_changes(account_id, origin_name);"
    "CREATE INDEX IF NOT EXISTS local_changes_origin ON local_changes(origin_mailbox_id);"
    "CREATE TABLE IF NOT EXISTS uploads("
    " blob_id INTEGER PRIMARY KEY, type TEXT NOT NULL, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS mailbox_props("
    " mailbox_id INTEGER PRIMARY KEY, sort_order INTEGER NOT NULL DEFAULT 10,"
    " subscribed INTEGER NOT NULL DEFAULT 1);";

/*
 * Run one statement with bound values. types: one letter per parameter,
 * 'i' int64, 't' text (NULL binds NULL). With out (not NULL) the first
 * column of the first row is read as an integer into *out; *found_r
 * (may be NULL) says whether there was a row.
 */
static int run(struct store *s, const char *what, const char *sql, int64_t *out, bool *found_r,
               const char **error_r, const char *types, ...)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, what);
		return -1;
	}
	va_list ap;
	va_start(ap, types);
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
	va_end(ap);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && out != NULL)
		*out = sqlite3_column_int64(st, 0);
	if (found_r != NULL)
		*found_r = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, what);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	return 0;
}

int store_local_schema(struct store *s, const char **error_r)
{
	*error_r = NULL;
	char *msg = NULL;
	if (sqlite3_exec(store_db(s), local_schema_sql, NULL, NULL, &msg) != SQLITE_OK) {
		sqlite3_free(msg);
		*error_r = store_err(s, "create the local change tables");
		return -1;
	}
	/* The replay's state (schema 3): added to older tables. */
	static const char *const replay_cols[][2] = {
	    {"state", "TEXT NOT NULL DEFAULT ''"},
	    {"attempts", "INTEGER NOT NULL DEFAULT 0"},
	    {"error", "TEXT"},
	};
	for (size_t i = 0; i < sizeof(replay_cols) / sizeof(replay_cols[0]); i++) {
		bool have = false;
		if (run(s, "inspect local changes",
		        "SELECT 1 FROM pragma_table_info('local_changes') WHERE name = ?1", NULL,
		        &have, error_r, "t", replay_cols[i][0]) < 0)
			return -1;
		if (have)
			continue;
		char sql[128];
		snprintf(sql, sizeof(sql), "ALTER TABLE local_changes ADD COLUMN %s %s",
		         replay_cols[i][0], replay_cols[i][1]);
		if (sqlite3_exec(store_db(s), sql, NULL, NULL, NULL) != SQLITE_OK) {
			*error_r = store_err(s, "add replay state");
			return -1;
		}
	}
	/* Uploads nobody used within the TTL go now (RFC 8620 6.1). This
	 * runs before the store's statements exist, hence the plain BEGIN;
	 * the write lock is taken only when there is something to remove. */
	bool expired = false;
	if (run(s, "expire uploads", "SELECT 1 FROM uploads WHERE created < ?1 LIMIT 1", NULL,
	        &expired, error_r, "i", (int64_t)time(NULL) - STORE_UPLOAD_TTL) < 0)
		return -1;
	if (!expired)
		return 0;
	if (sqlite3_exec(store_db(s), "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "expire uploads");
		return -1;
	}
	if (store_uploads_expire(s, (int64_t)time(NULL), NULL, error_r) < 0 ||
	    sqlite3_exec(store_db(s), "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		if (*error_r == NULL)
			*error_r = store_err(s, "expire uploads");
		sqlite3_exec(store_db(s), "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static int record(struct store *s, int64_t modseq, const char *kind, int64_t object_id,
                  int64_t mailbox_id, int64_t account_id, int64_t origin_mailbox,
                  int64_t origin_uid, const char *origin_name, const char *detail,
                  const char **error_r)
{
	/* The hub's own notices account has no server: its changes stay in
	 * the hub and are not queued for a replay that could never run. */
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(store_db(s), "SELECT key = 'hub:local' FROM accounts WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "record a local change");
		return -1;
	}
	sqlite3_bind_int64(st, 1, account_id);
	bool local_only = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	if (local_only)
		return 0;
	return run(s, "record a local change",
	           "INSERT INTO local_changes(modseq, kind, object_id, mailbox_id, account_id, "
	           "origin_mailbox_id, origin_uid, origin_name, detail) "
	           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	           NULL, NULL, error_r, "itiiiiitt", modseq, kind, object_id, mailbox_id,
	           account_id, origin_mailbox, origin_uid, origin_name, detail);
}

int store_blob_header_hash(struct store *s, int64_t blob_id, uint64_t size, unsigned char hash[32],
                           const char **error_r)
{
	/* The bytes through the first blank line, at most 1 MiB: what the
	 * server's BODY[HEADER] is for the sync's re-pairing. Read in pieces
	 * until the blank line shows. */
	size_t max = size < 1024 * 1024 ? (size_t)size : 1024 * 1024;
	char *hdr = malloc(max + 1);
	size_t have = 0;
	const char *end = NULL;
	if (hdr == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	while (end == NULL && have < max) {
		size_t n = max - have < 8192 ? max - have : 8192;
		if (store_blob_read(s, blob_id, have, hdr + have, n, error_r) < 0) {
			free(hdr);
			return -1;
		}
		size_t from = have >= 3 ? have - 3 : 0;
		have += n;
		end = memmem(hdr + from, have - from, "\r\n\r\n", 4);
	}
	size_t len = end != NULL ? (size_t)(end - hdr) + 4 : have;
	unsigned int n = 32;
	EVP_Digest(hdr, len, hash, &n, EVP_sha256(), NULL);
	free(hdr);
	return 0;
}

/* Remember how the sync's re-pairing recognises the message on its
 * server (size and header hash) on the last change record. */
static int record_pair_key(struct store *s, int64_t blob_id, const char **error_r)
{
	int64_t size = 0;
	bool found = false;
	unsigned char hash[32];
	if (run(s, "blob size", "SELECT size FROM blobs WHERE id = ?1", &size, &found, error_r, "i",
	        blob_id) < 0)
		return -1;
	if (!found)
		return 0;
	if (store_blob_header_hash(s, blob_id, (uint64_t)size, hash, error_r) < 0)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "UPDATE local_changes SET pair_size = ?1, pair_hash = ?2 "
	                       "WHERE id = last_insert_rowid()",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "record pair key");
		return -1;
	}
	sqlite3_bind_int64(st, 1, size);
	sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "record pair key");
		return -1;
	}
	return 0;
}

struct msg_row {
	int64_t mailbox_id, uid, blob_id, account_id, email_id;
	unsigned flags;
	char *keywords;
};

/* 1 found, 0 not, -1 error. Frees nothing: r->keywords is malloc()ed. */
static int msg_row(struct store *s, int64_t id, struct msg_row *r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT m.mailbox_id, m.uid, m.blob_id, b.account_id, m.email_id, "
	        "m.flags, m.keywords FROM messages m "
	        "JOIN mailboxes b ON b.id = m.mailbox_id WHERE m.id = ?1 AND m.uid > 0",
	        -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up message");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	r->keywords = NULL;
	if (rc == SQLITE_ROW) {
		r->mailbox_id = sqlite3_column_int64(st, 0);
		r->uid = sqlite3_column_int64(st, 1);
		r->blob_id = sqlite3_column_int64(st, 2);
		r->account_id = sqlite3_column_int64(st, 3);
		r->email_id = sqlite3_column_int64(st, 4);
		r->flags = (unsigned)sqlite3_column_int(st, 5);
		const unsigned char *kw = sqlite3_column_text(st, 6);
		r->keywords = strdup(kw != NULL ? (const char *)kw : "");
		if (r->keywords == NULL)
			rc = SQLITE_NOMEM;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "look up message");
	return -1;
}

/* Where the server has the membership: from its first local change, else
 * where it is now if that is a server UID; (0, 0) for memberships made here
 * (create, import, copy: a copy's origin is its source's place, not its
 * own). */
static int msg_origin(struct store *s, int64_t id, const struct msg_row *r, int64_t *mailbox_r,
                      int64_t *uid_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT CASE WHEN kind IN ('copy', 'create', 'import') THEN 0 ELSE "
	                       "origin_mailbox_id END, CASE WHEN kind IN ('copy', 'create', "
	                       "'import') THEN 0 ELSE origin_uid END FROM local_changes "
	                       "WHERE object_id = ?1 ORDER BY id LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up local changes");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*mailbox_r = sqlite3_column_int64(st, 0);
		*uid_r = sqlite3_column_int64(st, 1);
	} else if (r->uid < STORE_LOCAL_UID_BASE) {
		*mailbox_r = r->mailbox_id;
		*uid_r = r->uid;
	} else {
		*mailbox_r = *uid_r = 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		*error_r = store_err(s, "look up local changes");
		return -1;
	}
	return 0;
}

static int msg_get(struct store *s, int64_t id, struct msg_row *r, int64_t *omb, int64_t *ouid,
                   const char **error_r)
{
	int found = msg_row(s, id, r, error_r);
	if (found < 0)
		return -1;
	if (found == 0) {
		*error_r = "store: no such message";
		return -1;
	}
	if (msg_origin(s, id, r, omb, ouid, error_r) < 0) {
		free(r->keywords);
		r->keywords = NULL;
		return -1;
	}
	return 0;
}

/* The memberships of an Email (ids, in id order); -1 with "no such
 * message" when it has none. */
static int email_members(struct store *s, int64_t email_id, int64_t **ids_r, size_t *n_r,
                         const char **error_r)
{
	int64_t *boxes = NULL;
	if (store_email_members(s, email_id, ids_r, &boxes, n_r, error_r) < 0)
		return -1;
	free(boxes);
	if (*n_r == 0) {
		free(*ids_r);
		*ids_r = NULL;
		*error_r = "store: no such message";
		return -1;
	}
	return 0;
}

int store_local_holds_flags(struct store *s, int64_t message_id, const char **error_r)
{
	int64_t v = 0;
	if (run(s, "look up local changes",
	        "SELECT EXISTS(SELECT 1 FROM local_changes WHERE object_id = ?1 AND kind = "
	        "'keywords' AND state != 'failed')",
	        &v, NULL, error_r, "i", message_id) < 0)
		return -1;
	return v != 0;
}

/* Append "+word" or "-word" to a growing detail string. */
static int detail_add(char **d, size_t *len, char sign, const char *word, size_t wl)
{
	char *n = realloc(*d, *len + wl + 3);
	if (n == NULL)
		return -1;
	*d = n;
	if (*len > 0)
		n[(*len)++] = ' ';
	n[(*len)++] = sign;
	memcpy(n + *len, word, wl);
	*len += wl;
	n[*len] = '\0';
	return 0;
}

/* 1 when the space-separated list has word. */
static bool list_has(const char *list, const char *word, size_t wl)
{
	while (*list != '\0') {
		while (*list == ' ')
			list++;
		size_t l = strcspn(list, " ");
		if (l == wl && memcmp(list, word, l) == 0)
			return true;
		list += l;
	}
	return false;
}

/* Words of a that b lacks, each with sign. */
static int list_diff(char **d, size_t *len, char sign, const char *a, const char *b)
{
	while (*a != '\0') {
		while (*a == ' ')
			a++;
		size_t l = strcspn(a, " ");
		if (l > 0 && !list_has(b, a, l) && detail_add(d, len, sign, a, l) < 0)
			return -1;
		a += l;
	}
	return 0;
}

/* The delta from (of, okw) to (nf, nkw): "+\Seen +$label -\Flagged".
 * malloc()ed; NULL when out of memory. */
static char *flags_delta(unsigned of, const char *okw, unsigned nf, const char *nkw)
{
	static const struct {
		unsigned bit;
		const char *name;
	} names[] = {{STORE_FLAG_SEEN, "\\Seen"},
	             {STORE_FLAG_ANSWERED, "\\Answered"},
	             {STORE_FLAG_FLAGGED, "\\Flagged"},
	             {STORE_FLAG_DELETED, "\\Deleted"},
	             {STORE_FLAG_DRAFT, "\\Draft"}};
	char *d = calloc(1, 1);
	size_t len = 0;
	for (size_t i = 0; d != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
		bool was = (of & names[i].bit) != 0, is = (nf & names[i].bit) != 0;
		if (was != is && detail_add(&d, &len, is ? '+' : '-', names[i].name,
		                            strlen(names[i].name)) < 0) {
			free(d);
			d = NULL;
		}
	}
	if (d != NULL &&
	    (list_diff(&d, &len, '+', nkw, okw) < 0 || list_diff(&d, &len, '-', okw, nkw) < 0)) {
		free(d);
		d = NULL;
	}
	return d;
}

int store_local_set_flags(struct store *s, int64_t email_id, unsigned flags, const char *keywords,
                          const char **error_r)
{
	int64_t *ids = NULL;
	size_t n = 0;
	if (keywords == NULL)
		keywords = "";
	if (email_members(s, email_id, &ids, &n, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct msg_row r;
		int64_t omb, ouid;
		if (msg_get(s, ids[i], &r, &omb, &ouid, error_r) < 0) {
			ret = -1;
			break;
		}
		/* \\Deleted belongs to the membership, not the Email. */
		unsigned nf = (flags & ~(unsigned)STORE_FLAG_DELETED) |
		              (r.flags & (unsigned)STORE_FLAG_DELETED);
		if (nf != r.flags || strcmp(r.keywords, keywords) != 0) {
			char *delta = flags_delta(r.flags, r.keywords, nf, keywords);
			if (delta == NULL) {
				*error_r = "store: out of memory";
				ret = -1;
			} else if (store_member_set_flags(s, ids[i], nf, keywords, error_r) < 0 ||
			           record(s, (int64_t)store_modseq(s), "keywords", ids[i],
			                  r.mailbox_id, r.account_id, omb, ouid, NULL, delta,
			                  error_r) < 0) {
				ret = -1;
			}
			free(delta);
		}
		free(r.keywords);
	}
	free(ids);
	return ret;
}

/* The mailbox's counts changed: it counts as updated (Mailbox/changes). */
static int touch_mailbox(struct store *s, int64_t mailbox_id, int64_t modseq, const char **error_r)
{
	return run(s, "update mailbox", "UPDATE mailboxes SET modseq = ?2 WHERE id = ?1", NULL,
	           NULL, error_r, "ii", mailbox_id, modseq);
}

/* A mailbox of the account that can hold mail: 0, or -1 with error. */
static int target_ok(struct store *s, int64_t mailbox_id, int64_t account_id, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT account_id, noselect FROM mailboxes WHERE id = ?1", -1, &st,
	                       NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up mailbox");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	int ret = 0;
	if (rc != SQLITE_ROW) {
		*error_r =
		    rc == SQLITE_DONE ? "store: no such mailbox" : store_err(s, "look up mailbox");
		ret = -1;
	} else if (sqlite3_column_int64(st, 0) != account_id) {
		*error_r = "store: the mailbox is in another account";
		ret = -1;
	} else if (sqlite3_column_int(st, 1) != 0) {
		*error_r = "store: the mailbox cannot hold messages";
		ret = -1;
	}
	sqlite3_finalize(st);
	return ret;
}

int store_local_move(struct store *s, int64_t message_id, int64_t to_mailbox_id,
                     const char **error_r)
{
	struct msg_row r;
	int64_t omb, ouid;
	if (msg_get(s, message_id, &r, &omb, &ouid, error_r) < 0)
		return -1;
	free(r.keywords);
	if (r.mailbox_id == to_mailbox_id)
		return 0;
	if (target_ok(s, to_mailbox_id, r.account_id, error_r) < 0)
		return -1;
	int64_t modseq = store_next_modseq(s);
	/* A new hub IMAP UID in the target (never reassigned in the source). */
	int64_t imap_uid = 0;
	if (run(s, "allocate UID",
	        "UPDATE mailboxes SET imap_uidnext = imap_uidnext + 1 WHERE id = ?1 "
	        "RETURNING imap_uidnext - 1",
	        &imap_uid, NULL, error_r, "i", to_mailbox_id) < 0 ||
	    run(s, "move message",
	        "UPDATE messages SET mailbox_id = ?2, uid = ?3, modseq = ?4, imap_uid = ?5 "
	        "WHERE id = ?1",
	        NULL, NULL, error_r, "iiiii", message_id, to_mailbox_id,
	        STORE_LOCAL_UID_BASE + message_id, modseq, imap_uid) < 0 ||
	    touch_mailbox(s, r.mailbox_id, modseq, error_r) < 0 ||
	    store_email_refresh(s, r.email_id, true, error_r) < 0)
		return -1;
	char detail[48];
	snprintf(detail, sizeof(detail), "from %lld", (long long)r.mailbox_id);
	if (record(s, modseq, "move", message_id, to_mailbox_id, r.account_id, omb, ouid, NULL,
	           detail, error_r) < 0)
		return -1;
	return ouid != 0 ? record_pair_key(s, r.blob_id, error_r) : 0;
}

int store_local_copy(struct store *s, int64_t email_id, int64_t mailbox_id, int64_t *message_id_r,
                     const char **error_r)
{
	int64_t *ids = NULL;
	size_t n = 0;
	if (email_members(s, email_id, &ids, &n, error_r) < 0)
		return -1;
	/* The source on the server: the first membership that has one. */
	struct msg_row r = {0}, first = {0};
	int64_t omb = 0, ouid = 0;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		int64_t mb, uid;
		if (msg_get(s, ids[i], &r, &mb, &uid, error_r) < 0) {
			ret = -1;
			break;
		}
		if (i == 0) {
			first = r;
			r.keywords = NULL;
		}
		free(r.keywords);
		if (uid != 0) {
			omb = mb;
			ouid = uid;
			break;
		}
	}
	free(ids);
	if (ret == 0)
		ret = target_ok(s, mailbox_id, first.account_id, error_r);
	struct store_email e;
	int found = ret == 0 ? store_email_get(s, email_id, &e, error_r) : -1;
	if (found == 0)
		*error_r = "store: no such message";
	int64_t mid = 0;
	if (found != 1 ||
	    store_member_add(s, mailbox_id, -1, e.blob_id, e.flags, e.keywords, e.internaldate,
	                     email_id, &mid, NULL, error_r) < 0 ||
	    record(s, mid, "copy", mid, mailbox_id, first.account_id, omb, ouid, NULL, NULL,
	           error_r) < 0 ||
	    (ouid != 0 && record_pair_key(s, e.blob_id, error_r) < 0))
		ret = -1;
	free(first.keywords);
	if (ret == 0 && message_id_r != NULL)
		*message_id_r = mid;
	return ret;
}

int store_local_expunge(struct store *s, int64_t message_id, const char **error_r)
{
	struct msg_row r;
	int64_t omb, ouid;
	if (msg_get(s, message_id, &r, &omb, &ouid, error_r) < 0)
		return -1;
	free(r.keywords);
	int64_t others = 0;
	if (run(s, "count memberships",
	        "SELECT count(*) FROM messages WHERE email_id = ?1 AND id != ?2", &others, NULL,
	        error_r, "ii", r.email_id, message_id) < 0)
		return -1;
	if (others == 0) {
		*error_r = "store: the email's last mailbox (destroy it instead)";
		return -1;
	}
	int64_t modseq = store_next_modseq(s);
	/* Recorded (with the pair key, read while the bytes exist) first. */
	if (record(s, modseq, "expunge", message_id, r.mailbox_id, r.account_id, omb, ouid, NULL,
	           NULL, error_r) < 0 ||
	    (ouid != 0 && record_pair_key(s, r.blob_id, error_r) < 0))
		return -1;
	return store_member_remove(s, message_id, error_r);
}

int store_local_destroy(struct store *s, int64_t email_id, const char **error_r)
{
	int64_t *ids = NULL;
	size_t n = 0;
	if (email_members(s, email_id, &ids, &n, error_r) < 0)
		return -1;
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct msg_row r;
		int64_t omb, ouid;
		if (msg_get(s, ids[i], &r, &omb, &ouid, error_r) < 0) {
			ret = -1;
			break;
		}
		free(r.keywords);
		int64_t modseq = store_next_modseq(s);
		/* Recorded (with the pair key, read while the bytes exist) first. */
		if (record(s, modseq, "destroy", ids[i], r.mailbox_id, r.account_id, omb, ouid,
		           NULL, NULL, error_r) < 0 ||
		    (ouid != 0 && record_pair_key(s, r.blob_id, error_r) < 0) ||
		    store_member_remove(s, ids[i], error_r) < 0)
			ret = -1;
	}
	free(ids);
	return ret;
}

int store_local_remove_from_mailbox(struct store *s, int64_t email_id, int64_t mailbox_id,
                                    const char **error_r)
{
	int64_t *mids = NULL, *boxes = NULL;
	size_t n = 0;
	if (store_email_members(s, email_id, &mids, &boxes, &n, error_r) < 0)
		return -1;
	bool elsewhere = false;
	for (size_t i = 0; i < n; i++)
		elsewhere |= boxes[i] != mailbox_id;
	int ret = 0;
	if (!elsewhere) {
		ret = n > 0 ? store_local_destroy(s, email_id, error_r) : 0;
	} else {
		for (size_t i = 0; i < n && ret == 0; i++)
			if (boxes[i] == mailbox_id)
				ret = store_local_expunge(s, mids[i], error_r);
	}
	free(mids);
	free(boxes);
	return ret;
}

int store_local_add(struct store *s, int64_t mailbox_id, int64_t blob_id, unsigned flags,
                    const char *keywords, int64_t internaldate, const char *kind,
                    int64_t *email_id_r, const char **error_r)
{
	int64_t account_id = 0;
	bool found = false;
	if (run(s, "look up mailbox", "SELECT account_id FROM mailboxes WHERE id = ?1", &account_id,
	        &found, error_r, "i", mailbox_id) < 0)
		return -1;
	if (!found) {
		*error_r = "store: no such mailbox";
		return -1;
	}
	if (target_ok(s, mailbox_id, account_id, error_r) < 0)
		return -1;
	int64_t mid, eid;
	if (store_member_add(s, mailbox_id, -1, blob_id, flags, keywords, internaldate, 0, &mid,
	                     &eid, error_r) < 0 ||
	    record(s, mid, kind, mid, mailbox_id, account_id, 0, 0, NULL, NULL, error_r) < 0)
		return -1;
	*email_id_r = eid;
	return 0;
}

int store_local_purge_mailbox(struct store *s, int64_t mailbox_id, const char **error_r)
{
	/* Collect first, then remove (no statement open while writing). */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT id FROM messages WHERE mailbox_id = ?1 "
	                       "AND uid >= 4294967296",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "list local messages");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	int64_t *rows = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&rows, &cap, n, sizeof(*rows)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		rows[n++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		*error_r = store_err(s, "list local messages");
		return -1;
	}
	int ret =
	    run(s, "remove mailbox properties", "DELETE FROM mailbox_props WHERE mailbox_id = ?1",
	        NULL, NULL, error_r, "i", mailbox_id);
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = store_member_remove(s, rows[i], error_r);
	free(rows);
	return ret;
}

int store_local_forget_account(struct store *s, int64_t account_id, const char **error_r)
{
	return run(s, "forget local changes", "DELETE FROM local_changes WHERE account_id = ?1",
	           NULL, NULL, error_r, "i", account_id) < 0 ||
	               run(s, "forget mailbox properties",
	                   "DELETE FROM mailbox_props WHERE mailbox_id NOT IN "
	                   "(SELECT id FROM mailboxes)",
	                   NULL, NULL, error_r, "") < 0
	           ? -1
	           : 0;
}

/* --- mailboxes ------------------------------------------------------------ */

int store_mailbox_account(struct store *s, int64_t mailbox_id, int64_t *account_id_r, char **key_r,
                          const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT a.id, a.key FROM mailboxes b JOIN accounts a "
	                       "ON a.id = b.account_id WHERE b.id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up mailbox");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (ret == 1) {
		const unsigned char *k = sqlite3_column_text(st, 1);
		char *key = strdup(k != NULL ? (const char *)k : "");
		if (key == NULL) {
			ret = -1;
		} else {
			*account_id_r = sqlite3_column_int64(st, 0);
			*key_r = key;
		}
	}
	if (ret < 0)
		*error_r = store_err(s, "look up mailbox");
	sqlite3_finalize(st);
	return ret;
}

int store_mailbox_noselect(struct store *s, int64_t mailbox_id, bool *noselect_r,
                           const char **error_r)
{
	int64_t v = 0;
	bool found = false;
	if (run(s, "look up mailbox", "SELECT noselect FROM mailboxes WHERE id = ?1", &v, &found,
	        error_r, "i", mailbox_id) < 0)
		return -1;
	if (found)
		*noselect_r = v != 0;
	return found ? 1 : 0;
}

/* Current name of a mailbox (malloc()ed): 1 found, 0 not, -1 error. */
static int mailbox_name(struct store *s, int64_t id, char **name_r, int64_t *account_r,
                        const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), "SELECT name, account_id FROM mailboxes WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up mailbox");
		return -1;
	}
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (ret == 1) {
		*name_r = strdup((const char *)sqlite3_column_text(st, 0));
		*account_r = sqlite3_column_int64(st, 1);
		if (*name_r == NULL)
			ret = -1;
	}
	if (ret < 0)
		*error_r = store_err(s, "look up mailbox");
	sqlite3_finalize(st);
	return ret;
}

int store_local_mailbox_origin(struct store *s, int64_t mailbox_id, char **name_r,
                               bool *local_only_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT kind, origin_name FROM local_changes WHERE object_id = ?1 "
	        "AND kind LIKE 'mailbox-%' AND state != 'failed' ORDER BY id LIMIT 1",
	        -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "look up local changes");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	int ret = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
	if (ret == 1) {
		const char *kind = (const char *)sqlite3_column_text(st, 0);
		const unsigned char *origin = sqlite3_column_text(st, 1);
		*local_only_r = strcmp(kind, "mailbox-create") == 0;
		*name_r = NULL;
		if (!*local_only_r && origin != NULL &&
		    (*name_r = strdup((const char *)origin)) == NULL)
			ret = -1;
	}
	if (ret < 0)
		*error_r = store_err(s, "look up local changes");
	sqlite3_finalize(st);
	if (ret == 0) {
		/* No change made here: the server knows it by its name. */
		int64_t account;
		*local_only_r = false;
		*name_r = NULL;
		ret = mailbox_name(s, mailbox_id, name_r, &account, error_r);
		if (ret == 1)
			ret = 0;
	}
	return ret;
}

int store_local_mailbox_destroyed(struct store *s, int64_t account_id, const char *name,
                                  const char **error_r)
{
	int64_t v = 0;
	if (run(s, "look up local changes",
	        "SELECT EXISTS(SELECT 1 FROM local_changes WHERE account_id = ?1 "
	        "AND origin_name = ?2 AND kind = 'mailbox-destroy' AND state != 'failed')",
	        &v, NULL, error_r, "it", account_id, name) < 0)
		return -1;
	return v != 0;
}

int store_local_mailbox_create(struct store *s, int64_t account_id, const char *name, char delim,
                               int64_t *mailbox_id_r, const char **error_r)
{
	int64_t id;
	if (store_mailbox_create(s, account_id, name, delim, NULL, &id, error_r) < 0)
		return -1;
	/* The creation took the change counter value that is the id. */
	if (record(s, id, "mailbox-create", id, 0, account_id, 0, 0, NULL, name, error_r) < 0)
		return -1;
	*mailbox_id_r = id;
	return 0;
}

/* The server name of a mailbox for its first local change record. */
static int origin_for_record(struct store *s, int64_t mailbox_id, char **origin_r,
                             int64_t *account_r, const char **error_r)
{
	bool local_only;
	char *current = NULL;
	if (store_local_mailbox_origin(s, mailbox_id, origin_r, &local_only, error_r) < 0)
		return -1;
	int found = mailbox_name(s, mailbox_id, &current, account_r, error_r);
	free(current);
	if (found <= 0) {
		free(*origin_r);
		*origin_r = NULL;
		if (found == 0)
			*error_r = "store: no such mailbox";
		return -1;
	}
	return 0;
}

int store_local_mailbox_rename(struct store *s, int64_t mailbox_id, const char *name,
                               const char **error_r)
{
	char *origin = NULL;
	int64_t account;
	if (origin_for_record(s, mailbox_id, &origin, &account, error_r) < 0)
		return -1;
	int64_t modseq = store_next_modseq(s);
	int r =
	    run(s, "rename mailbox", "UPDATE mailboxes SET name = ?2, modseq = ?3 WHERE id = ?1",
	        NULL, NULL, error_r, "iti", mailbox_id, name, modseq);
	if (r == 0)
		r = record(s, modseq, "mailbox-rename", mailbox_id, 0, account, 0, 0, origin, name,
		           error_r);
	free(origin);
	return r;
}

int store_local_mailbox_destroy(struct store *s, int64_t mailbox_id, const char **error_r)
{
	char *origin = NULL;
	int64_t account, count = 0;
	if (origin_for_record(s, mailbox_id, &origin, &account, error_r) < 0)
		return -1;
	int r = run(s, "count messages", "SELECT count(*) FROM messages WHERE mailbox_id = ?1",
	            &count, NULL, error_r, "i", mailbox_id);
	if (r == 0 && count != 0) {
		*error_r = "store: the mailbox is not empty";
		r = -1;
	}
	if (r == 0 && (r = store_mailbox_delete(s, mailbox_id, error_r)) == 0)
		r = run(s, "remove mailbox properties",
		        "DELETE FROM mailbox_props WHERE mailbox_id = ?1", NULL, NULL, error_r, "i",
		        mailbox_id);
	/* store_mailbox_delete took the tombstone's change counter value. */
	if (r == 0)
		r = record(s, (int64_t)store_modseq(s), "mailbox-destroy", mailbox_id, 0, account,
		           0, 0, origin, NULL, error_r);
	free(origin);
	return r;
}

int store_local_mailbox_props(struct store *s, int64_t mailbox_id, int *sort_order_r,
                              bool *subscribed_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT sort_order, subscribed FROM mailbox_props WHERE mailbox_id = ?1", -1, &st,
	        NULL) != SQLITE_OK) {
		*error_r = store_err(s, "mailbox properties");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*sort_order_r = sqlite3_column_int(st, 0);
		*subscribed_r = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	*error_r = store_err(s, "mailbox properties");
	return -1;
}

int store_local_mailbox_set_props(struct store *s, int64_t mailbox_id, int sort_order,
                                  int subscribed, const char **error_r)
{
	int64_t modseq = store_next_modseq(s), account = 0;
	char *name = NULL;
	int found = mailbox_name(s, mailbox_id, &name, &account, error_r);
	free(name);
	if (found <= 0) {
		if (found == 0)
			*error_r = "store: no such mailbox";
		return -1;
	}
	char detail[64];
	snprintf(detail, sizeof(detail), "sortOrder %d subscribed %d", sort_order, subscribed);
	return run(s, "mailbox properties",
	           "INSERT OR IGNORE INTO mailbox_props(mailbox_id) VALUES (?1)", NULL, NULL,
	           error_r, "i", mailbox_id) < 0 ||
	               (sort_order >= 0 &&
	                run(s, "mailbox properties",
	                    "UPDATE mailbox_props SET sort_order = ?2 WHERE mailbox_id = ?1", NULL,
	                    NULL, error_r, "ii", mailbox_id, (int64_t)sort_order) < 0) ||
	               (subscribed >= 0 &&
	                run(s, "mailbox properties",
	                    "UPDATE mailbox_props SET subscribed = ?2 WHERE mailbox_id = ?1", NULL,
	                    NULL, error_r, "ii", mailbox_id, (int64_t)subscribed) < 0) ||
	               touch_mailbox(s, mailbox_id, modseq, error_r) < 0 ||
	               record(s, modseq, "mailbox-props", mailbox_id, 0, account, 0, 0, NULL,
	                      detail, error_r) < 0
	           ? -1
	           : 0;
}

int store_mailbox_server_count(struct store *s, int64_t mailbox_id, uint32_t *count_r,
                               const char **error_r)
{
	int64_t n = 0;
	if (run(s, "count messages",
	        "SELECT count(*) FROM messages WHERE mailbox_id = ?1 AND uid < 4294967296", &n,
	        NULL, error_r, "i", mailbox_id) < 0)
		return -1;
	*count_r = (uint32_t)n;
	return 0;
}

/* --- the sync's re-pairing after a UIDVALIDITY change ------------------------ */

int store_local_gone(struct store *s, int64_t mailbox_id, struct store_local_gone **gone_r,
                     size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT DISTINCT origin_uid, pair_size, pair_hash FROM local_changes "
	        "WHERE origin_mailbox_id = ?1 AND origin_uid != 0 "
	        "AND kind IN ('move', 'destroy', 'expunge') AND length(pair_hash) = 32",
	        -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "list moved and destroyed messages");
		return -1;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	struct store_local_gone *g = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&g, &cap, n, sizeof(*g)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		g[n].origin_uid = sqlite3_column_int64(st, 0);
		g[n].size = (uint64_t)sqlite3_column_int64(st, 1);
		memcpy(g[n].hash, sqlite3_column_blob(st, 2), 32);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(g);
		*error_r = store_err(s, "list moved and destroyed messages");
		return -1;
	}
	*gone_r = g;
	*count_r = n;
	return 0;
}

int store_local_renumber(struct store *s, int64_t mailbox_id, int64_t old_uid, int64_t new_uid,
                         const char **error_r)
{
	/* Negative until store_local_renumber_done(): old and new UIDs of a
	 * renumbered folder overlap. */
	return run(s, "renumber local changes",
	           "UPDATE local_changes SET origin_uid = ?3 WHERE origin_mailbox_id = ?1 "
	           "AND origin_uid = ?2",
	           NULL, NULL, error_r, "iii", mailbox_id, old_uid, -new_uid);
}

int store_local_renumber_done(struct store *s, int64_t mailbox_id, const char **error_r)
{
	/* Renumbered ones get their new UID; the rest are no longer on the
	 * server under any UID we know (0). */
	return run(s, "renumber local changes",
	           "UPDATE local_changes SET origin_uid = CASE WHEN origin_uid < 0 "
	           "THEN -origin_uid ELSE 0 END WHERE origin_mailbox_id = ?1 AND origin_uid != 0",
	           NULL, NULL, error_r, "i", mailbox_id);
}

/* --- the record ----------------------------------------------------------- */

int store_local_changes(struct store *s, struct store_local_change **changes_r, size_t *count_r,
                        const char **error_r)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s),
	                       "SELECT id, modseq, kind, object_id, mailbox_id, account_id, "
	                       "origin_mailbox_id, origin_uid, origin_name, detail "
	                       "FROM local_changes ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "list local changes");
		return -1;
	}
	struct store_local_change *c = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (array_grow(&c, &cap, n, sizeof(*c)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		struct store_local_change *x = &c[n++];
		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		x->modseq = (uint64_t)sqlite3_column_int64(st, 1);
		snprintf(x->kind, sizeof(x->kind), "%s", (const char *)sqlite3_column_text(st, 2));
		x->object_id = sqlite3_column_int64(st, 3);
		x->mailbox_id = sqlite3_column_int64(st, 4);
		x->account_id = sqlite3_column_int64(st, 5);
		x->origin_mailbox_id = sqlite3_column_int64(st, 6);
		x->origin_uid = sqlite3_column_int64(st, 7);
		const unsigned char *t = sqlite3_column_text(st, 8);
		x->origin_name = t != NULL ? strdup((const char *)t) : NULL;
		t = sqlite3_column_text(st, 9);
		x->detail = t != NULL ? strdup((const char *)t) : NULL;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_local_changes_free(&c, n);
		*error_r = store_err(s, "list local changes");
		return -1;
	}
	*changes_r = c;
	*count_r = n;
	return 0;
}

void store_local_changes_free(struct store_local_change **changes, size_t count)
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

/* --- uploads -------------------------------------------------------------- */

int store_upload_add(struct store *s, int64_t blob_id, const char *type, int64_t now,
                     const char **error_r)
{
	/* The same bytes uploaded again: one upload, its clock restarted. */
	return run(s, "record upload",
	           "INSERT INTO uploads(blob_id, type, created) VALUES (?1, ?2, ?3) "
	           "ON CONFLICT(blob_id) DO UPDATE SET type = ?2, created = ?3",
	           NULL, NULL, error_r, "iti", blob_id, type, now);
}

int store_uploads_expire(struct store *s, int64_t now, uint64_t *removed_r, const char **error_r)
{
	int64_t cutoff = now - STORE_UPLOAD_TTL;
	if (run(s, "expire uploads",
	        "DELETE FROM blobs WHERE id IN (SELECT blob_id FROM uploads WHERE created < ?1) "
	        "AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = blobs.id)",
	        NULL, NULL, error_r, "i", cutoff) < 0 ||
	    run(s, "expire uploads", "DELETE FROM uploads WHERE created < ?1", NULL, NULL, error_r,
	        "i", cutoff) < 0)
		return -1;
	if (removed_r != NULL)
		*removed_r = (uint64_t)sqlite3_changes(store_db(s));
	return 0;
}
