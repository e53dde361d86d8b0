/*
 * The upgrade of a store from schema 2 to 3 (one Email per content within
 * an account, memberships, the hub's own IMAP UIDs; docs/store.md), and the
 * union of an Email's memberships' flags and keywords, which the upgrade
 * and every membership write (store.c) compute the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

/* 1 when table has column col, 0 not, -1 error. */
static int has_column(sqlite3 *db, const char *table, const char *col)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int add_column(sqlite3 *db, const char *table, const char *col, const char *decl)
{
	int h = has_column(db, table, col);
	if (h != 0)
		return h < 0 ? -1 : 0;
	char sql[256];
	int n = snprintf(sql, sizeof(sql), "ALTER TABLE %s ADD COLUMN %s %s", table, col, decl);
	if (n < 0 || (size_t)n >= sizeof(sql))
		return -1;
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Merge a space-separated keyword list into a sorted, de-duplicated set
 * (an array of malloc()ed words). */
struct kwset {
	char **w;
	size_t n, cap;
	bool failed;
};

static int kwcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void kwset_add_list(struct kwset *k, const char *list)
{
	while (list != NULL && *list != '\0') {
		while (*list == ' ')
			list++;
		size_t l = strcspn(list, " ");
		if (l == 0)
			break;
		bool have = false;
		for (size_t i = 0; i < k->n && !have; i++)
			have = strlen(k->w[i]) == l && memcmp(k->w[i], list, l) == 0;
		if (!have) {
			if (k->n == k->cap) {
				size_t cap = k->cap == 0 ? 8 : k->cap * 2;
				char **nw = realloc(k->w, cap * sizeof(*nw));
				if (nw == NULL) {
					k->failed = true;
					return;
				}
				k->w = nw;
				k->cap = cap;
			}
			char *w = strndup(list, l);
			if (w == NULL) {
				k->failed = true;
				return;
			}
			k->w[k->n++] = w;
		}
		list += l;
	}
}

/* The set as a sorted space-separated string (malloc()ed); frees the set. */
static char *kwset_join(struct kwset *k)
{
	size_t len = 1;
	for (size_t i = 0; i < k->n; i++)
		len += strlen(k->w[i]) + 1;
	char *out = k->failed ? NULL : malloc(len);
	if (k->n > 0)
		qsort(k->w, k->n, sizeof(*k->w), kwcmp);
	size_t at = 0;
	if (out != NULL)
		out[0] = '\0';
	for (size_t i = 0; i < k->n; i++) {
		if (out != NULL) {
			size_t l = strlen(k->w[i]);
			if (at > 0)
				out[at++] = ' ';
			memcpy(out + at, k->w[i], l + 1);
			at += l;
		}
		free(k->w[i]);
	}
	free(k->w);
	memset(k, 0, sizeof(*k));
	return out;
}

int store_email_union(sqlite3_stmt *members, int64_t email_id, unsigned *flags_r, char **keywords_r)
{
	sqlite3_reset(members);
	sqlite3_bind_int64(members, 1, email_id);
	struct kwset k = {0};
	unsigned flags = 0;
	int rc;
	while ((rc = sqlite3_step(members)) == SQLITE_ROW) {
		flags |= (unsigned)sqlite3_column_int(members, 0);
		kwset_add_list(&k, (const char *)sqlite3_column_text(members, 1));
	}
	sqlite3_reset(members);
	char *kw = kwset_join(&k);
	if (rc != SQLITE_DONE || kw == NULL) {
		free(kw);
		return -1;
	}
	*flags_r = flags & ~(unsigned)STORE_FLAG_DELETED;
	*keywords_r = kw;
	return 0;
}

/*
 * Version 2 to 3 (docs/store.md): in one transaction, each (account, blob)
 * group of messages becomes one Email whose id is the smallest message id
 * of the group; the other ids of a merged group get tombstones of kind
 * email, and merged Emails count as updated, under one new change; the
 * hub's IMAP UIDs are given per mailbox in UID order from 1; removed
 * messages of before (tombstones kind message) are removed Emails too.
 */
static const char migrate_2_3_data[] =
    "UPDATE messages SET email_id = (SELECT min(x.id) FROM messages x JOIN mailboxes bx"
    " ON bx.id = x.mailbox_id WHERE x.blob_id = messages.blob_id AND bx.account_id ="
    " (SELECT account_id FROM mailboxes WHERE id = messages.mailbox_id));"
    "UPDATE messages SET imap_uid = r.n FROM (SELECT id, row_number() OVER"
    " (PARTITION BY mailbox_id ORDER BY uid) AS n FROM messages) AS r"
    " WHERE r.id = messages.id;"
    "UPDATE mailboxes SET imap_uidnext = 1 + (SELECT count(*) FROM messages"
    " WHERE mailbox_id = mailboxes.id), imap_uidvalidity = CASE WHEN (id & 4294967295) = 0"
    " THEN 1 ELSE id & 4294967295 END;"
    "INSERT INTO emails(id, account_id, blob_id, thread_id, flags, keywords, internaldate,"
    " modseq, created_modseq) SELECT m.id, b.account_id, m.blob_id, m.thread_id, m.flags & ~8,"
    " m.keywords, m.internaldate, m.modseq, m.created_modseq FROM messages m JOIN mailboxes b"
    " ON b.id = m.mailbox_id WHERE m.id = m.email_id;"
    "INSERT INTO tombstones(modseq, kind, object_id, parent_id, account_id)"
    " SELECT ?1, 'email', m.id, m.mailbox_id, b.account_id FROM messages m JOIN mailboxes b"
    " ON b.id = m.mailbox_id WHERE m.id != m.email_id;"
    "UPDATE tombstones SET account_id = coalesce((SELECT account_id FROM mailboxes"
    " WHERE id = tombstones.parent_id), 0) WHERE kind = 'message';"
    "INSERT INTO tombstones(modseq, kind, object_id, parent_id, account_id)"
    " SELECT modseq, 'email', object_id, parent_id, account_id FROM tombstones"
    " WHERE kind = 'message';"
    "UPDATE threads SET account_id = coalesce((SELECT account_id FROM emails"
    " WHERE thread_id = threads.id ORDER BY id LIMIT 1), 0);"
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_imap_uid ON messages(mailbox_id, imap_uid);"
    "DROP TRIGGER IF EXISTS messages_thread_gone;"
    "UPDATE meta SET value = 3 WHERE key = 'schema';";

/* Run every statement of sql, binding ?1 to v where it appears. */
static int exec_bound(sqlite3 *db, const char *sql, int64_t v)
{
	const char *tail = sql;
	while (tail != NULL && *tail != '\0') {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK)
			return -1;
		if (st == NULL)
			break;
		if (sqlite3_bind_parameter_count(st) > 0)
			sqlite3_bind_int64(st, 1, v);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return -1;
	}
	return 0;
}

int store_upgrade_2_3(sqlite3 *db, const char *schema3_sql, char *error, size_t error_size)
{
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_stmt *st = NULL, *members = NULL, *set = NULL;
	int64_t modseq = 0;
	int ok =
	    add_column(db, "messages", "thread_id", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    add_column(db, "messages", "email_id", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    add_column(db, "messages", "imap_uid", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    add_column(db, "mailboxes", "imap_uidvalidity", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    add_column(db, "mailboxes", "imap_uidnext", "INTEGER NOT NULL DEFAULT 1") == 0 &&
	    add_column(db, "mailboxes", "noselect", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    add_column(db, "tombstones", "account_id", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    sqlite3_exec(db,
	                 "CREATE TABLE IF NOT EXISTS threads(id INTEGER PRIMARY KEY,"
	                 " created_modseq INTEGER NOT NULL, modseq INTEGER NOT NULL)",
	                 NULL, NULL, NULL) == SQLITE_OK &&
	    add_column(db, "threads", "account_id", "INTEGER NOT NULL DEFAULT 0") == 0 &&
	    sqlite3_exec(db, schema3_sql, NULL, NULL, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'modseq'", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW;
	if (ok) {
		modseq = sqlite3_column_int64(st, 0) + 1;
		ok = exec_bound(db, migrate_2_3_data, modseq) == 0;
	}
	sqlite3_finalize(st);
	st = NULL;
	/* Merged Emails: the union of their memberships' flags and keywords,
	 * and updated (their mailboxIds grew) under the upgrade's change. */
	ok = ok &&
	     sqlite3_prepare_v2(
	         db, "SELECT email_id FROM messages GROUP BY email_id HAVING count(*) > 1", -1, &st,
	         NULL) == SQLITE_OK &&
	     sqlite3_prepare_v2(db, "SELECT flags, keywords FROM messages WHERE email_id = ?1", -1,
	                        &members, NULL) == SQLITE_OK &&
	     sqlite3_prepare_v2(
	         db, "UPDATE emails SET flags = ?2, keywords = ?3, modseq = ?4 WHERE id = ?1", -1,
	         &set, NULL) == SQLITE_OK;
	int rc = SQLITE_DONE;
	while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		unsigned flags;
		char *kw;
		if (store_email_union(members, id, &flags, &kw) < 0) {
			ok = 0;
			break;
		}
		sqlite3_reset(set);
		sqlite3_bind_int64(set, 1, id);
		sqlite3_bind_int(set, 2, (int)flags);
		sqlite3_bind_text(set, 3, kw, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(set, 4, modseq);
		ok = sqlite3_step(set) == SQLITE_DONE;
		free(kw);
	}
	ok = ok && rc == SQLITE_DONE;
	sqlite3_finalize(st);
	sqlite3_finalize(members);
	sqlite3_finalize(set);
	st = NULL;
	ok = ok &&
	     sqlite3_prepare_v2(db, "UPDATE meta SET value = ?1 WHERE key = 'modseq'", -1, &st,
	                        NULL) == SQLITE_OK &&
	     sqlite3_bind_int64(st, 1, modseq) == SQLITE_OK && sqlite3_step(st) == SQLITE_DONE;
	sqlite3_finalize(st);
	if (!ok || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		snprintf(error, error_size, "%s", sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}
