/* Unit tests of the per-mailbox counts (store-counts.c) on a real SQLite
 * database: totalEmails, unreadEmails (no drafts), totalThreads and
 * unreadThreads (RFC 8621 section 2) as the triggers keep them, against a
 * count from scratch after every step, and the one-time recount of a store
 * made before them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store-private.h"
#include "store/store-provider.h"
#include "store/store.h"
#include "test.h"

static char dir[64], path[128];

static int64_t blob(struct store *s, const char *text)
{
	struct store_blob_writer *w;
	const char *error;
	int64_t id = 0;
	OK(store_blob_begin(s, strlen(text), &w, &error));
	OK(store_blob_write(w, text, strlen(text), &error));
	OK(store_blob_finish(&w, &id, &error));
	return id;
}

/* A message with Message-ID <id@t>, References to refs (space separated
 * ids, may be empty) and the subject given. */
static int64_t mail(struct store *s, const char *id, const char *refs, const char *subject)
{
	char text[512];
	int n = snprintf(text, sizeof(text), "Message-ID: <%s@t>\r\n", id);
	CHECK(n > 0 && (size_t)n < sizeof(text));
	if (refs[0] != '\0') {
		n += snprintf(text + n, sizeof(text) - (size_t)n, "References:");
		char copy[256];
		snprintf(copy, sizeof(copy), "%s", refs);
		for (char *p = copy, *end; *p != '\0'; p = end) {
			end = strchr(p, ' ');
			if (end != NULL)
				*end++ = '\0';
			else
				end = p + strlen(p);
			n += snprintf(text + n, sizeof(text) - (size_t)n, " <%s@t>", p);
		}
		n += snprintf(text + n, sizeof(text) - (size_t)n, "\r\n");
	}
	n += snprintf(text + n, sizeof(text) - (size_t)n, "Subject: %s\r\n\r\nbody of %s\r\n",
	              subject, id);
	CHECK(n > 0 && (size_t)n < sizeof(text));
	return blob(s, text);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(db));
		exit(1);
	}
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The brute-force counts of every mailbox, from the committed state. */
static const char brute_sql[] =
    "SELECT b.id, count(m.id), coalesce(sum((m.flags & 17) = 0), 0),"
    " count(DISTINCT nullif(e.thread_id, 0)),"
    " count(DISTINCT CASE WHEN (m.flags & 17) = 0 THEN nullif(e.thread_id, 0) END)"
    " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id AND m.uid > 0"
    " LEFT JOIN emails e ON e.id = m.email_id GROUP BY b.id ORDER BY b.id";

/* The per-thread rows the triggers keep, as they would be counted anew. */
static const char rows_sql[] =
    "SELECT (SELECT count(*) FROM (SELECT * FROM mailbox_threads EXCEPT"
    " SELECT m.mailbox_id, e.thread_id, count(*), sum((m.flags & 17) = 0)"
    " FROM messages m JOIN emails e ON e.id = m.email_id"
    " WHERE m.uid > 0 AND e.thread_id != 0 GROUP BY 1, 2))"
    " + (SELECT count(*) FROM (SELECT m.mailbox_id, e.thread_id, count(*),"
    " sum((m.flags & 17) = 0) FROM messages m JOIN emails e ON e.id = m.email_id"
    " WHERE m.uid > 0 AND e.thread_id != 0 GROUP BY 1, 2"
    " EXCEPT SELECT * FROM mailbox_threads))";

#define check_counts(s) check_counts_at(s, __LINE__)
/* The counts store_mailbox_counts() gives equal a count from scratch
 * (committed state, read through a second connection). */
static void check_counts_at(struct store *s, int line)
{
	const char *error;
	struct store_mailbox_counts *c;
	size_t n;
	OK(store_mailbox_counts(s, &c, &n, &error));
	sqlite3 *db;
	sqlite3_stmt *st;
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, brute_sql, -1, &st, NULL) == SQLITE_OK);
	size_t i = 0;
	bool bad = false;
	while (sqlite3_step(st) == SQLITE_ROW) {
		CHECK(i < n);
		CHECK(c[i].mailbox_id == sqlite3_column_int64(st, 0));
		uint32_t want[4];
		for (int k = 0; k < 4; k++)
			want[k] = (uint32_t)sqlite3_column_int64(st, k + 1);
		if (c[i].total != want[0] || c[i].unread != want[1] || c[i].threads != want[2] ||
		    c[i].unread_threads != want[3]) {
			fprintf(stderr,
			        "line %d mailbox %lld: kept %u/%u/%u/%u, counted %u/%u/%u/%u\n",
			        line, (long long)c[i].mailbox_id, c[i].total, c[i].unread,
			        c[i].threads, c[i].unread_threads, want[0], want[1], want[2],
			        want[3]);
			bad = true;
		}
		i++;
	}
	CHECK(i == n);
	sqlite3_finalize(st);
	int64_t wrong_rows = query_int(db, rows_sql);
	if (wrong_rows != 0)
		fprintf(stderr, "line %d: %lld mailbox_threads rows differ\n", line,
		        (long long)wrong_rows);
	sqlite3_close(db);
	free(c);
	CHECK(!bad && wrong_rows == 0);
}

#define expect(s, box, t, u, th, uth) expect_at(s, box, t, u, th, uth, __LINE__)
static void expect_at(struct store *s, int64_t box, uint32_t total, uint32_t unread,
                      uint32_t threads, uint32_t unread_threads, int line)
{
	const char *error;
	struct store_mailbox_counts *c;
	size_t n;
	OK(store_mailbox_counts(s, &c, &n, &error));
	bool found = false;
	for (size_t i = 0; i < n; i++) {
		if (c[i].mailbox_id != box)
			continue;
		found = true;
		if (c[i].total != total || c[i].unread != unread || c[i].threads != threads ||
		    c[i].unread_threads != unread_threads) {
			fprintf(stderr, "line %d: got %u/%u/%u/%u, want %u/%u/%u/%u\n", line,
			        c[i].total, c[i].unread, c[i].threads, c[i].unread_threads, total,
			        unread, threads, unread_threads);
			exit(1);
		}
	}
	free(c);
	CHECK(found);
}

/* The membership (messages row) at (mailbox, uid), 0 if none. */
static int64_t id_of(struct store *s, int64_t mailbox, int64_t uid)
{
	sqlite3_stmt *st;
	int64_t found = 0;
	CHECK(sqlite3_prepare_v2(store_db(s),
	                         "SELECT id FROM messages WHERE mailbox_id = ?1 AND uid = ?2", -1,
	                         &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, mailbox);
	sqlite3_bind_int64(st, 2, uid);
	if (sqlite3_step(st) == SQLITE_ROW)
		found = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return found;
}

/* Each step commits, is checked against the brute-force count, and
 * against the figures worked out by hand (total, unread, threads, unread
 * threads). */
static void test_steps(void)
{
	struct store *s;
	const char *error;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, x, y;
	OK(store_account_ensure(s, "steps", &acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &x, &error));
	OK(store_mailbox_create(s, acct, "Archive", '/', NULL, &y, &error));
	int64_t a = mail(s, "a", "", "Plan"), c = mail(s, "c", "", "Plan"),
	        d = mail(s, "d", "", "Notes"), r = mail(s, "r", "a", "Re: Plan"),
	        b = mail(s, "b", "a c", "Re: Plan");
	OK(store_commit(s, &error));

#define STEP(call)                                                                                 \
	do {                                                                                       \
		OK(store_begin(s, &error));                                                        \
		OK(call);                                                                          \
		OK(store_commit(s, &error));                                                       \
		check_counts(s);                                                                   \
	} while (0)

	/* Insert: an unread message, a read one in its own thread, a draft. */
	STEP(store_message_add(s, x, 1, a, 0, "", 1000, &error));
	expect(s, x, 1, 1, 1, 1);
	STEP(store_message_add(s, x, 2, c, STORE_FLAG_SEEN, "", 1001, &error));
	expect(s, x, 2, 1, 2, 1);
	STEP(store_message_add(s, x, 3, d, STORE_FLAG_DRAFT, "", 1002, &error));
	expect(s, x, 3, 1, 3, 1);
	/* Flag changes: seen, then not seen; a keyword alone changes nothing. */
	STEP(store_message_set_flags(s, x, 1, STORE_FLAG_SEEN, "", &error));
	expect(s, x, 3, 0, 3, 0);
	STEP(store_message_set_flags(s, x, 1, 0, "$x", &error));
	expect(s, x, 3, 1, 3, 1);
	STEP(store_message_set_flags(s, x, 1, STORE_FLAG_FLAGGED, "$y", &error));
	expect(s, x, 3, 1, 3, 1);
	/* A reply joins a's thread: fewer threads than emails. */
	STEP(store_message_add(s, x, 4, r, 0, "", 1003, &error));
	expect(s, x, 4, 2, 3, 1);
	/* b, filed in y, links a's thread and c's: they merge, and x has one
	 * thread fewer though nothing in x changed. */
	STEP(store_message_add(s, y, 1, b, STORE_FLAG_SEEN, "", 1004, &error));
	expect(s, x, 4, 2, 2, 1);
	expect(s, y, 1, 0, 1, 0);
	/* The same Email in x too (a second membership). */
	STEP(store_message_add(s, x, 5, b, STORE_FLAG_SEEN, "", 1004, &error));
	expect(s, x, 5, 2, 2, 1);
	/* Move r to y: x keeps the thread through a, c and b. */
	STEP(store_local_move(s, id_of(s, x, 4), y, &error));
	expect(s, x, 4, 1, 2, 1);
	expect(s, y, 2, 1, 1, 1);
	/* Delete a: the thread in x has only read messages left. */
	STEP(store_message_expunge(s, x, 1, &error));
	expect(s, x, 3, 0, 2, 0);
	/* Negative uids: set aside, not counted; paired again, counted. */
	STEP(store_mailbox_stash_uids(s, x, &error));
	expect(s, x, 0, 0, 0, 0);
	STEP(store_message_set_uid(s, x, 2, 12, 1001, &error));
	expect(s, x, 1, 0, 1, 0);
	STEP(store_message_set_uid(s, x, 3, 13, 1002, &error));
	expect(s, x, 2, 0, 2, 0);
	STEP(store_mailbox_drop_stashed(s, x, &error)); /* b's second membership */
	expect(s, x, 2, 0, 2, 0);
	/* A draft that is read is still not unread; a draft made unread... is
	 * still a draft. */
	STEP(store_message_set_flags(s, x, 13, STORE_FLAG_DRAFT | STORE_FLAG_SEEN, "", &error));
	expect(s, x, 2, 0, 2, 0);
	STEP(store_message_set_flags(s, x, 13, 0, "", &error));
	expect(s, x, 2, 1, 2, 1);
	/* Gmail's thread id merges d's thread into c's. */
	STEP(store_gmail_set_thread(s, x, 12, 77, &error));
	STEP(store_gmail_set_thread(s, x, 13, 77, &error));
	expect(s, x, 2, 1, 1, 1);
	/* Removing a mailbox removes its counts. */
	STEP(store_message_expunge(s, y, 1, &error));
	expect(s, y, 1, 1, 1, 1);
	STEP(store_local_remove_from_mailbox(s, (int64_t)query_int(store_db(s),
	                                                            "SELECT email_id FROM messages "
	                                                            "WHERE uid > 4294967295"),
	                                     y, &error));
	expect(s, y, 0, 0, 0, 0);
	STEP(store_mailbox_delete(s, y, &error));
	/* Nothing of y is left behind. */
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT (SELECT count(*) FROM mailbox_threads WHERE mailbox_id = %lld) + "
	         "(SELECT count(*) FROM mailbox_counts WHERE mailbox_id = %lld)",
	         (long long)y, (long long)y);
	CHECK(query_int(store_db(s), sql) == 0);
#undef STEP
	store_close(&s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mk-test-store-counts-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	test_steps();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-store-counts");
}
