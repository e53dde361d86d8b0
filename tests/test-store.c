/* Unit tests of the hosted store on a real SQLite database. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store.h"
#include "test.h"

static char dir[64], path[128];

static int64_t add_blob(struct store *s, const char *data, size_t len, size_t chunk)
{
	struct store_blob_writer *w;
	const char *err;
	int64_t id = 0;
	CHECK(store_blob_begin(s, len, &w, &err) == 0);
	for (size_t off = 0; off < len; off += chunk)
		CHECK(store_blob_write(w, data + off, len - off < chunk ? len - off : chunk,
		                       &err) == 0);
	CHECK(store_blob_finish(&w, &id, &err) == 0);
	CHECK(w == NULL);
	return id;
}

#define check_counts(s) check_counts_at(s, path, __LINE__)
/* The counts the triggers keep equal a count from scratch (committed state,
 * read through a second connection). */
static void check_counts_at(struct store *s, const char *file, int line)
{
	const char *err;
	struct store_mailbox_counts *c;
	size_t n;
	CHECK(store_mailbox_counts(s, &c, &n, &err) == 0);
	sqlite3 *db;
	sqlite3_stmt *st;
	CHECK(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db,
	                         "SELECT b.id, count(m.id), coalesce(sum((e.flags & 17) = 0), 0), "
	                         "count(DISTINCT nullif(e.thread_id, 0)), count(DISTINCT CASE "
	                         "WHEN (e.flags & 17) = 0 THEN nullif(e.thread_id, 0) END) "
	                         "FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id "
	                         "AND m.uid > 0 LEFT JOIN emails e ON e.id = m.email_id "
	                         "GROUP BY b.id ORDER BY b.id",
	                         -1, &st, NULL) == SQLITE_OK);
	size_t i = 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		CHECK(i < n);
		CHECK(c[i].mailbox_id == sqlite3_column_int64(st, 0));
		if (c[i].total != (uint32_t)sqlite3_column_int64(st, 1))
			fprintf(stderr, "line %d box %lld: %u vs %lld\n", line,
			        (long long)c[i].mailbox_id, c[i].total,
			        (long long)sqlite3_column_int64(st, 1));
		CHECK(c[i].total == (uint32_t)sqlite3_column_int64(st, 1));
		CHECK(c[i].unread == (uint32_t)sqlite3_column_int64(st, 2));
		CHECK(c[i].threads == (uint32_t)sqlite3_column_int64(st, 3));
		CHECK(c[i].unread_threads == (uint32_t)sqlite3_column_int64(st, 4));
		i++;
	}
	CHECK(i == n);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(c);
}

static void test_blobs_and_messages(void)
{
	struct store *s;
	const char *err;
	CHECK(store_open(path, &s, &err) == 0);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(store_begin(s, &err) == 0);
	int64_t acct, inbox, arch;
	CHECK(store_account_ensure(s, "imaps://h alice", &acct, &err) == 0);
	int64_t again;
	CHECK(store_account_ensure(s, "imaps://h alice", &again, &err) == 0 && again == acct);
	uint64_t m0 = store_modseq(s);
	CHECK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &err) == 0);
	CHECK(store_mailbox_create(s, acct, "Archive", '/', NULL, &arch, &err) == 0);
	CHECK(store_modseq(s) == m0 + 2);

	/* Streamed in odd chunks, byte-exact, NUL and 8-bit included. */
	char msg[70000];
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i * 7 + (i >> 9));
	int64_t b1 = add_blob(s, msg, sizeof(msg), 333);
	char back[sizeof(msg)];
	CHECK(store_blob_read(s, b1, 0, back, sizeof(back), &err) == 0);
	CHECK(memcmp(back, msg, sizeof(msg)) == 0);
	/* The same content again is stored once. */
	int64_t b2 = add_blob(s, msg, sizeof(msg), 65536);
	CHECK(b2 == b1);
	int64_t empty = add_blob(s, "", 0, 1);
	CHECK(empty != b1);

	/* Wrong sizes are refused. */
	struct store_blob_writer *w;
	CHECK(store_blob_begin(s, 3, &w, &err) == 0);
	CHECK(store_blob_write(w, "abcd", 4, &err) < 0);
	CHECK(store_blob_finish(&w, &b2, &err) < 0 && w == NULL);

	CHECK(store_message_add(s, inbox, 5, b1, STORE_FLAG_SEEN, "$A", 1000, &err) == 0);
	CHECK(store_message_add(s, arch, 9, b1, 0, "", 2000, &err) == 0);
	uint64_t blobs, msgs, bytes;
	CHECK(store_counts(s, &msgs, &blobs, &bytes, &err) == 0);
	CHECK(msgs == 2 && blobs == 2 && bytes == sizeof(msg));

	/* Unchanged flags do not bump the change counter; changed ones do. */
	uint64_t m1 = store_modseq(s);
	CHECK(store_message_set_flags(s, inbox, 5, STORE_FLAG_SEEN, "$A", &err) == 0);
	CHECK(store_modseq(s) == m1);
	CHECK(store_message_set_flags(s, inbox, 5, STORE_FLAG_FLAGGED, "$B", &err) == 0);
	CHECK(store_modseq(s) == m1 + 1);
	CHECK(store_message_set_flags(s, inbox, 77, 0, "", &err) == 0); /* unknown: no-op */
	CHECK(store_modseq(s) == m1 + 1);
	CHECK(store_commit(s, &err) == 0);
	check_counts(s);
	store_close(&s);
	CHECK(s == NULL);

	/* Reopened: everything is there, the counter survived. */
	CHECK(store_open(path, &s, &err) == 0);
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_modseq(s) == m1 + 1);
	struct store_iter *it;
	struct store_msg m;
	CHECK(store_iter_init(s, inbox, &it, &err) == 0);
	CHECK(store_iter_next(it, &m));
	CHECK(m.uid == 5 && m.flags == STORE_FLAG_FLAGGED && strcmp(m.keywords, "$B") == 0 &&
	      m.size == sizeof(msg) && m.internaldate == 1000);
	CHECK(!store_iter_next(it, &m));
	CHECK(store_iter_deinit(&it, &err) == 0);

	/* Expunging one copy keeps the shared bytes; the last copy frees them. */
	CHECK(store_message_expunge(s, inbox, 5, &err) == 0);
	CHECK(store_counts(s, &msgs, &blobs, &bytes, &err) == 0 && msgs == 1 && blobs == 2);
	CHECK(store_mailbox_delete(s, arch, &err) == 0);
	CHECK(store_counts(s, &msgs, &blobs, &bytes, &err) == 0 && msgs == 0 && blobs == 1);
	CHECK(store_commit(s, &err) == 0);
	check_counts(s);
	store_close(&s);
}

static void test_repairing(void)
{
	struct store *s;
	const char *err;
	int64_t acct, box;
	CHECK(store_open(path, &s, &err) == 0);
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_account_ensure(s, "k2", &acct, &err) == 0);
	CHECK(store_mailbox_create(s, acct, "R", '.', NULL, &box, &err) == 0);
	int64_t a = add_blob(s, "aaa", 3, 3), b = add_blob(s, "bbb", 3, 3),
	        c = add_blob(s, "ccc", 3, 3);
	CHECK(store_message_add(s, box, 1, a, 0, "", 0, &err) == 0);
	CHECK(store_message_add(s, box, 2, b, 0, "", 0, &err) == 0);
	CHECK(store_message_add(s, box, 3, c, 0, "", 0, &err) == 0);
	/* New numbering that swaps 1 and 2 (would collide without the stash). */
	CHECK(store_mailbox_stash_uids(s, box, &err) == 0);
	CHECK(store_message_set_uid(s, box, 1, 2, 1000, &err) == 0);
	CHECK(store_message_set_uid(s, box, 2, 1, 1000, &err) == 0);
	CHECK(store_mailbox_drop_stashed(s, box, &err) == 0); /* 3 is gone */
	uint32_t *uids;
	size_t n;
	CHECK(store_mailbox_uids(s, box, &uids, &n, &err) == 0);
	CHECK(n == 2 && uids[0] == 1 && uids[1] == 2);
	free(uids);
	char buf[3];
	struct store_iter *it;
	struct store_msg m;
	CHECK(store_iter_init(s, box, &it, &err) == 0);
	CHECK(store_iter_next(it, &m) && m.uid == 1);
	CHECK(store_blob_read(s, m.blob_id, 0, buf, 3, &err) == 0 && memcmp(buf, "bbb", 3) == 0);
	/* The server's internal date after the renumbering, not the old one. */
	CHECK(m.internaldate == 1000);
	CHECK(store_iter_deinit(&it, &err) == 0);
	uint32_t count;
	CHECK(store_mailbox_count(s, box, &count, &err) == 0 && count == 2);
	CHECK(store_mailbox_set_state(s, box, 77, 10, 12345, &err) == 0);
	/* Never on its own: only with what it covers. */
	CHECK(store_commit(s, &err) == 0);
	CHECK(store_mailbox_set_state(s, box, 77, 99, 12345, &err) == -1);
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_mailbox_rename(s, box, "R2", '/', &err) == 0);
	CHECK(store_commit(s, &err) == 0);
	struct store_mailbox *boxes;
	size_t nb;
	CHECK(store_mailboxes(s, acct, &boxes, &nb, &err) == 0);
	CHECK(nb == 1 && strcmp(boxes[0].name, "R2") == 0 && boxes[0].delim == '/' &&
	      boxes[0].uidvalidity == 77 && boxes[0].uidnext == 10 &&
	      boxes[0].highestmodseq == 12345);
	store_mailboxes_free(&boxes, nb);
	/* A rolled back transaction leaves nothing behind. */
	CHECK(store_begin(s, &err) == 0);
	uint64_t before = store_modseq(s);
	CHECK(store_mailbox_create(s, acct, "Tmp", 0, NULL, &box, &err) == 0);
	store_rollback(s);
	CHECK(store_begin(s, &err) == 0 && store_modseq(s) == before);
	store_rollback(s);
	check_counts(s);
	store_close(&s);
}

static void test_views(void)
{
	struct store *s;
	const char *err;
	int64_t acct, box;
	CHECK(store_open(path, &s, &err) == 0);
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_account_ensure(s, "views", &acct, &err) == 0);
	CHECK(store_mailbox_create(s, acct, "V", '/', NULL, &box, &err) == 0);
	for (uint32_t uid = 1; uid <= 5; uid++) {
		char body[32];
		snprintf(body, sizeof(body), "message %u", uid);
		int64_t blob = add_blob(s, body, strlen(body), 7);
		/* internal dates out of UID order: 3 is newest */
		int64_t date = uid == 3 ? 9000 : 1000 + uid;
		CHECK(store_message_add(s, box, uid, blob, uid <= 2 ? STORE_FLAG_SEEN : 0, "$x",
		                        date, &err) == 0);
	}
	CHECK(store_commit(s, &err) == 0);
	int64_t *ids;
	size_t n;
	uint64_t total;
	CHECK(store_email_query(s, box, true, 0, 2, &ids, &n, &total, &err) == 0);
	CHECK(total == 5 && n == 2);
	struct store_email e;
	CHECK(store_email_get(s, ids[0], &e, &err) == 1 && e.uid == 3 && e.internaldate == 9000);
	CHECK(store_email_get(s, ids[1], &e, &err) == 1 && e.uid == 5);
	CHECK(strcmp(e.keywords, "$x") == 0 && e.size == strlen("message 5"));
	free(ids);
	CHECK(store_email_query(s, box, false, 4, 10, &ids, &n, &total, &err) == 0);
	CHECK(n == 1 && store_email_get(s, ids[0], &e, &err) == 1 && e.uid == 3);
	free(ids);
	CHECK(store_email_get(s, 999999, &e, &err) == 0);
	struct store_mailbox_counts *c;
	CHECK(store_mailbox_counts(s, &c, &n, &err) == 0);
	bool found = false;
	for (size_t i = 0; i < n; i++)
		if (c[i].mailbox_id == box)
			found = c[i].total == 5 && c[i].unread == 3;
	CHECK(found);
	free(c);
	check_counts(s);
	store_close(&s);
}

static bool has(const int64_t *ids, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

static void test_changes(void)
{
	struct store *s;
	const char *err;
	int64_t acct, box, box2;
	char p[160];
	snprintf(p, sizeof(p), "%s/changes.db", dir);
	CHECK(store_open(p, &s, &err) == 0);
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_account_ensure(s, "c", &acct, &err) == 0);
	CHECK(store_mailbox_create(s, acct, "A", '/', NULL, &box, &err) == 0);
	for (uint32_t uid = 1; uid <= 3; uid++) {
		char body[16];
		snprintf(body, sizeof(body), "m%u", uid);
		CHECK(store_message_add(s, box, uid, add_blob(s, body, strlen(body), 9), 0, "", 0,
		                        &err) == 0);
	}
	CHECK(store_commit(s, &err) == 0);
	uint64_t s0;
	CHECK(store_read_modseq(s, &s0, &err) == 0);
	int64_t *ids;
	size_t n;
	CHECK(store_email_query(s, box, false, 0, 10, &ids, &n, NULL, &err) == 0 && n == 3);
	int64_t m1 = ids[0], m2 = ids[1], m3 = ids[2];
	free(ids);
	/* After s0: m1 flagged, m2 expunged, m4 new, a new mailbox. */
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_message_set_flags(s, box, 1, STORE_FLAG_FLAGGED, "", &err) == 0);
	CHECK(store_message_expunge(s, box, 2, &err) == 0);
	CHECK(store_message_add(s, box, 4, add_blob(s, "m4", 2, 9), 0, "", 0, &err) == 0);
	CHECK(store_mailbox_create(s, acct, "B", '/', NULL, &box2, &err) == 0);
	CHECK(store_commit(s, &err) == 0);
	struct store_changes ch;
	CHECK(store_changes(s, STORE_CHANGES_EMAIL, s0, 100, &ch, &err) == 0);
	CHECK(ch.n_created == 1 && !has(ch.created, ch.n_created, m1));
	CHECK(ch.n_updated == 1 && ch.updated[0] == m1);
	CHECK(ch.n_destroyed == 1 && ch.destroyed[0] == m2);
	CHECK(!ch.has_more && !has(ch.updated, ch.n_updated, m3));
	uint64_t now;
	CHECK(store_read_modseq(s, &now, &err) == 0 && ch.new_state == now);
	store_changes_free(&ch);
	CHECK(store_changes(s, STORE_CHANGES_MAILBOX, s0, 100, &ch, &err) == 0);
	CHECK(ch.n_created == 1 && ch.created[0] == box2);
	CHECK(ch.n_updated == 1 && ch.updated[0] == box); /* its messages changed */
	CHECK(ch.n_destroyed == 0);
	store_changes_free(&ch);
	/* Paging: one id at a time, states advancing, nothing lost. */
	uint64_t state = s0;
	size_t seen = 0;
	for (int round = 0; round < 10; round++) {
		CHECK(store_changes(s, STORE_CHANGES_EMAIL, state, 1, &ch, &err) == 0);
		seen += ch.n_created + ch.n_updated + ch.n_destroyed;
		CHECK(ch.new_state >= state);
		state = ch.new_state;
		bool more = ch.has_more;
		store_changes_free(&ch);
		if (!more)
			break;
	}
	CHECK(seen >= 3 && state == now);
	/* Ids are never reused, even after the newest message is removed; a
	 * message replaced at the same UID gets a new id and the old one a
	 * tombstone, while shared bytes stay. */
	CHECK(store_begin(s, &err) == 0);
	int64_t bx = add_blob(s, "m5", 2, 9);
	CHECK(store_message_add(s, box, 5, bx, 0, "", 0, &err) == 0);
	CHECK(store_email_query(s, box, false, 0, 10, &ids, &n, NULL, &err) == 0);
	int64_t newest = 0;
	for (size_t i = 0; i < n; i++)
		newest = ids[i] > newest ? ids[i] : newest;
	free(ids);
	CHECK(store_message_expunge(s, box, 5, &err) == 0);
	CHECK(store_message_add(s, box, 6, add_blob(s, "m6", 2, 9), 0, "", 0, &err) == 0);
	CHECK(store_message_add(s, box, 6, add_blob(s, "m6", 2, 9), STORE_FLAG_SEEN, "", 0, &err) ==
	      0);
	CHECK(store_commit(s, &err) == 0);
	CHECK(store_email_query(s, box, false, 0, 10, &ids, &n, NULL, &err) == 0);
	for (size_t i = 0; i < n; i++)
		CHECK(ids[i] != newest);
	free(ids);
	uint32_t count;
	CHECK(store_mailbox_count(s, box, &count, &err) == 0 && count == 4); /* UIDs 1, 3, 4, 6 */
	CHECK(store_read_modseq(s, &now, &err) == 0);
	uint64_t blobs, msgs, bytes;
	CHECK(store_counts(s, &msgs, &blobs, &bytes, &err) == 0);

	/* Nothing since now. */
	CHECK(store_changes(s, STORE_CHANGES_EMAIL, now, 100, &ch, &err) == 0);
	CHECK(ch.n_created + ch.n_updated + ch.n_destroyed == 0 && ch.new_state == now);
	store_changes_free(&ch);
	check_counts_at(s, p, __LINE__);
	store_close(&s);
}

/* A version 1 store (before creation modseqs) opens and is upgraded. */
static void test_migration(void)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/v1.db", dir);
	sqlite3 *db;
	CHECK(sqlite3_open(p, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(
	          db,
	          "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	          "CREATE TABLE accounts(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
	          "CREATE TABLE mailboxes(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,"
	          " name TEXT NOT NULL, delim TEXT, role TEXT, uidvalidity INTEGER NOT NULL "
	          "DEFAULT 0, uidnext INTEGER NOT NULL DEFAULT 1, highestmodseq INTEGER NOT "
	          "NULL DEFAULT 0, modseq INTEGER NOT NULL, UNIQUE(account_id, name));"
	          "CREATE TABLE blobs(id INTEGER PRIMARY KEY, sha256 BLOB UNIQUE, size INTEGER "
	          "NOT NULL, data BLOB NOT NULL);"
	          "CREATE TABLE messages(id INTEGER PRIMARY KEY, mailbox_id INTEGER NOT NULL,"
	          " uid INTEGER NOT NULL, blob_id INTEGER NOT NULL, flags INTEGER NOT NULL,"
	          " keywords TEXT NOT NULL DEFAULT '', internaldate INTEGER NOT NULL, modseq "
	          "INTEGER NOT NULL, UNIQUE(mailbox_id, uid));"
	          "CREATE TABLE tombstones(modseq INTEGER NOT NULL, kind TEXT NOT NULL, "
	          "object_id INTEGER NOT NULL);"
	          "INSERT INTO meta VALUES ('schema', 1), ('modseq', 2);"
	          "INSERT INTO accounts VALUES (1, 'k');"
	          "INSERT INTO mailboxes(id, account_id, name, modseq) VALUES (1, 1, 'INBOX', 1);"
	          "INSERT INTO blobs VALUES (1, NULL, 2, X'6869');"
	          "INSERT INTO messages VALUES (1, 1, 1, 1, 0, '', 0, 2);",
	          NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	struct store *s;
	const char *err;
	CHECK(store_open(p, &s, &err) == 0);
	struct store_email e;
	CHECK(store_email_get(s, 1, &e, &err) == 1 && e.size == 2);
	struct store_changes ch;
	CHECK(store_changes(s, STORE_CHANGES_EMAIL, 0, 10, &ch, &err) == 0);
	CHECK(ch.n_updated == 1); /* rows from before count as created at 0 */
	store_changes_free(&ch);
	store_close(&s);
	CHECK(store_open(p, &s, &err) == 0); /* and opens again as version 2 */
	store_close(&s);
}

/* A schema-2 store (as mailkeep wrote it before Emails had several
 * mailboxes) upgraded in place: groups of one content in one account
 * become one Email with the smallest id, the other ids destroyed. */
static void test_upgrade_2_3(void)
{
	char p[160];
	snprintf(p, sizeof(p), "%s/v2.db", dir);
	sqlite3 *db;
	CHECK(sqlite3_open(p, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(
	          db,
	          "CREATE TABLE meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
	          "CREATE TABLE accounts(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);"
	          "CREATE TABLE mailboxes(id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,"
	          " name TEXT NOT NULL, delim TEXT, role TEXT, uidvalidity INTEGER NOT NULL "
	          "DEFAULT 0, uidnext INTEGER NOT NULL DEFAULT 1, highestmodseq INTEGER NOT "
	          "NULL DEFAULT 0, modseq INTEGER NOT NULL, created_modseq INTEGER NOT NULL "
	          "DEFAULT 0, UNIQUE(account_id, name));"
	          "CREATE TABLE blobs(id INTEGER PRIMARY KEY, sha256 BLOB UNIQUE, size INTEGER "
	          "NOT NULL, data BLOB NOT NULL);"
	          "CREATE TABLE messages(id INTEGER PRIMARY KEY, mailbox_id INTEGER NOT NULL,"
	          " uid INTEGER NOT NULL, blob_id INTEGER NOT NULL, flags INTEGER NOT NULL,"
	          " keywords TEXT NOT NULL DEFAULT '', internaldate INTEGER NOT NULL, modseq "
	          "INTEGER NOT NULL, created_modseq INTEGER NOT NULL DEFAULT 0, thread_id "
	          "INTEGER NOT NULL DEFAULT 0, UNIQUE(mailbox_id, uid));"
	          "CREATE INDEX messages_thread ON messages(thread_id);"
	          "CREATE TABLE tombstones(modseq INTEGER NOT NULL, kind TEXT NOT NULL, "
	          "object_id INTEGER NOT NULL, parent_id INTEGER NOT NULL DEFAULT 0);"
	          "CREATE TABLE threads(id INTEGER PRIMARY KEY, created_modseq INTEGER NOT NULL,"
	          " modseq INTEGER NOT NULL);"
	          "CREATE TRIGGER messages_thread_gone AFTER DELETE ON messages BEGIN"
	          " DELETE FROM threads WHERE id = old.thread_id; END;"
	          "CREATE TABLE local_changes(id INTEGER PRIMARY KEY, modseq INTEGER NOT NULL,"
	          " kind TEXT NOT NULL, object_id INTEGER NOT NULL, mailbox_id INTEGER NOT NULL"
	          " DEFAULT 0, account_id INTEGER NOT NULL DEFAULT 0, origin_mailbox_id INTEGER"
	          " NOT NULL DEFAULT 0, origin_uid INTEGER NOT NULL DEFAULT 0, origin_name TEXT,"
	          " detail TEXT, pair_size INTEGER, pair_hash BLOB);"
	          "INSERT INTO meta VALUES ('schema', 2), ('modseq', 30);"
	          "INSERT INTO accounts VALUES (1, 'a'), (2, 'b');"
	          "INSERT INTO mailboxes(id, account_id, name, modseq, created_modseq) VALUES"
	          " (10, 1, 'INBOX', 10, 10), (11, 1, 'Archive', 11, 11), (12, 2, 'INBOX', 12, 12);"
	          "INSERT INTO blobs VALUES (100, X'01', 17, CAST('Subject: x' || char(13, 10, 13, "
	          "10)"
	          " || 'one' AS BLOB)), (101, X'02', 17, CAST('Subject: y' || char(13, 10, 13, 10)"
	          " || 'two' AS BLOB));"
	          /* Email 20: INBOX twice (the same bytes twice in one folder)
	           * and Archive (flagged and \Deleted there); 22 alone; 23 the
	           * same bytes in the other account. */
	          "INSERT INTO messages VALUES (20, 10, 5, 100, 1, 'a', 1000, 20, 20, 20),"
	          " (21, 11, 7, 100, 12, 'b', 1000, 21, 21, 20),"
	          " (22, 10, 6, 101, 0, '', 2000, 22, 22, 22),"
	          " (23, 12, 1, 100, 0, '', 1000, 23, 23, 20),"
	          " (24, 10, 9, 100, 0, 'c', 1000, 24, 24, 20);"
	          "INSERT INTO threads VALUES (20, 20, 24), (22, 22, 22);"
	          "INSERT INTO tombstones VALUES (15, 'message', 19, 10);"
	          "INSERT INTO local_changes(modseq, kind, object_id, mailbox_id, account_id,"
	          " detail) VALUES (25, 'keywords', 22, 10, 1, '0 ');",
	          NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	struct store *s;
	const char *err;
	CHECK(store_open(p, &s, &err) == 0);

	/* Emails: the groups' smallest ids. */
	struct store_email e;
	CHECK(store_email_get(s, 20, &e, &err) == 1);
	CHECK(e.account_id == 1 && e.n_members == 3 && e.mailbox_id == 10 && e.uid == 5);
	CHECK(e.flags == (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED)); /* no \Deleted */
	CHECK(strcmp(e.keywords, "a b c") == 0);
	CHECK(store_email_get(s, 21, &e, &err) == 0 && store_email_get(s, 24, &e, &err) == 0);
	CHECK(store_email_get(s, 22, &e, &err) == 1 && e.n_members == 1);
	CHECK(store_email_get(s, 23, &e, &err) == 1 && e.account_id == 2);
	int64_t *mids, *boxes;
	size_t n;
	CHECK(store_email_members(s, 20, &mids, &boxes, &n, &err) == 0 && n == 3);
	CHECK(mids[0] == 20 && mids[1] == 21 && mids[2] == 24);
	CHECK(boxes[0] == 10 && boxes[1] == 11 && boxes[2] == 10);
	free(mids);
	free(boxes);

	/* Hub UIDs in UID order from 1, per mailbox. */
	struct store_mailbox *mb;
	size_t nmb;
	CHECK(store_mailboxes(s, 1, &mb, &nmb, &err) == 0 && nmb == 2);
	for (size_t i = 0; i < nmb; i++) {
		CHECK(mb[i].imap_uidvalidity != 0 && !mb[i].noselect);
		CHECK(mb[i].imap_uidnext == (mb[i].id == 10 ? 4u : 2u));
	}
	store_mailboxes_free(&mb, nmb);
	CHECK(sqlite3_open(p, &db) == SQLITE_OK);
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(db,
	                         "SELECT group_concat(imap_uid) FROM (SELECT imap_uid FROM "
	                         "messages WHERE mailbox_id = 10 ORDER BY uid)",
	                         -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW &&
	      strcmp((const char *)sqlite3_column_text(st, 0), "1,2,3") == 0);
	sqlite3_finalize(st);
	CHECK(sqlite3_prepare_v2(db, "SELECT state, attempts FROM local_changes", -1, &st, NULL) ==
	      SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 1) == 0);
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* Devices learn of the merge: the merged ids destroyed, the Email
	 * updated; the removal of before is an Email removal too. */
	struct store_changes ch;
	CHECK(store_changes_account(s, 1, STORE_CHANGES_EMAIL, 30, 10, &ch, &err) == 0);
	CHECK(ch.n_created == 0 && ch.n_updated == 1 && ch.updated[0] == 20);
	CHECK(ch.n_destroyed == 2);
	CHECK((ch.destroyed[0] == 21 && ch.destroyed[1] == 24) ||
	      (ch.destroyed[0] == 24 && ch.destroyed[1] == 21));
	store_changes_free(&ch);
	CHECK(store_changes_account(s, 2, STORE_CHANGES_EMAIL, 30, 10, &ch, &err) == 0);
	CHECK(ch.n_created + ch.n_updated + ch.n_destroyed == 0);
	store_changes_free(&ch);
	CHECK(store_changes_account(s, 1, STORE_CHANGES_EMAIL, 14, 10, &ch, &err) == 0);
	bool has19 = false;
	for (size_t i = 0; i < ch.n_destroyed; i++)
		has19 |= ch.destroyed[i] == 19;
	CHECK(has19);
	store_changes_free(&ch);

	/* The store works on: a membership removed (the old thread trigger
	 * is gone), a new one added with the next hub UID. */
	CHECK(store_begin(s, &err) == 0);
	CHECK(store_message_expunge(s, 11, 7, &err) == 0);
	CHECK(store_email_get(s, 20, &e, &err) == 1 && e.n_members == 2);
	CHECK(e.flags == STORE_FLAG_SEEN && strcmp(e.keywords, "a c") == 0);
	CHECK(store_message_add(s, 11, 8, 101, 0, "", 2000, &err) == 0);
	CHECK(store_commit(s, &err) == 0);
	CHECK(store_email_get(s, 22, &e, &err) == 1 && e.n_members == 2);
	CHECK(store_mailboxes(s, 1, &mb, &nmb, &err) == 0);
	for (size_t i = 0; i < nmb; i++)
		if (mb[i].id == 11)
			CHECK(mb[i].imap_uidnext == 3);
	store_mailboxes_free(&mb, nmb);
	check_counts_at(s, p, __LINE__);
	store_close(&s);
	CHECK(store_open(p, &s, &err) == 0); /* and opens again as version 3 */
	store_close(&s);
}

static void test_bad_files(void)
{
	struct store *s = NULL;
	const char *err;
	char bad[160];
	snprintf(bad, sizeof(bad), "%s/garbage.db", dir);
	FILE *f = fopen(bad, "w");
	fputs("this is not an SQLite database, just junk bytes ............................", f);
	fclose(f);
	CHECK(store_open(bad, &s, &err) < 0 && s == NULL);
	CHECK(strstr(err, "garbage.db") != NULL);
	CHECK(store_open("/nonexistent-dir/x.db", &s, &err) < 0);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mk-test-store-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	test_blobs_and_messages();
	test_repairing();
	test_views();
	test_changes();
	test_migration();
	test_upgrade_2_3();
	test_bad_files();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-store");
}
