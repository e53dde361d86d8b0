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

/* The brute-force counts of every mailbox, from the committed state: a
 * membership is unread when its Email (emails.flags, what JMAP shows) has
 * neither \\Seen nor \\Draft, whatever its own flags. */
static const char brute_sql[] =
    "SELECT b.id, count(m.id), coalesce(sum((e.flags & 17) = 0), 0),"
    " count(DISTINCT nullif(e.thread_id, 0)),"
    " count(DISTINCT CASE WHEN (e.flags & 17) = 0 THEN nullif(e.thread_id, 0) END)"
    " FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id AND m.uid > 0"
    " LEFT JOIN emails e ON e.id = m.email_id GROUP BY b.id ORDER BY b.id";

/* The per-thread rows the triggers keep, as they would be counted anew. */
static const char rows_sql[] =
    "SELECT (SELECT count(*) FROM (SELECT * FROM mailbox_threads EXCEPT"
    " SELECT m.mailbox_id, e.thread_id, count(*), sum((e.flags & 17) = 0)"
    " FROM messages m JOIN emails e ON e.id = m.email_id"
    " WHERE m.uid > 0 AND e.thread_id != 0 GROUP BY 1, 2))"
    " + (SELECT count(*) FROM (SELECT m.mailbox_id, e.thread_id, count(*),"
    " sum((e.flags & 17) = 0) FROM messages m JOIN emails e ON e.id = m.email_id"
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
			fprintf(
			    stderr, "line %d mailbox %lld: kept %u/%u/%u/%u, counted %u/%u/%u/%u\n",
			    line, (long long)c[i].mailbox_id, c[i].total, c[i].unread, c[i].threads,
			    c[i].unread_threads, want[0], want[1], want[2], want[3]);
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
	uint64_t before_merge;
	OK(store_read_modseq(s, &before_merge, &error));
	STEP(store_message_add(s, y, 1, b, STORE_FLAG_SEEN, "", 1004, &error));
	expect(s, x, 4, 2, 2, 1);
	expect(s, y, 1, 0, 1, 0);
	/* Mailbox/changes reports x: its thread counts changed. */
	struct store_changes ch;
	OK(store_changes_account(s, acct, STORE_CHANGES_MAILBOX, before_merge, 100, &ch, &error));
	bool x_updated = false;
	for (size_t i = 0; i < ch.n_updated; i++)
		x_updated |= ch.updated[i] == x;
	store_changes_free(&ch);
	CHECK(x_updated);
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
	STEP(store_local_remove_from_mailbox(s,
	                                     (int64_t)query_int(store_db(s),
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
	/* One Email in two mailboxes, seen in one only: its keywords are the
	 * union, so it is read in both, and unread in both once neither
	 * membership has \\Seen. */
	int64_t z, w, e = mail(s, "e", "", "Both");
	OK(store_begin(s, &error));
	OK(store_mailbox_create(s, acct, "Z", '/', NULL, &z, &error));
	OK(store_mailbox_create(s, acct, "W", '/', NULL, &w, &error));
	OK(store_commit(s, &error));
	STEP(store_message_add(s, z, 1, e, 0, "", 2000, &error));
	expect(s, z, 1, 1, 1, 1);
	uint64_t before_seen;
	OK(store_read_modseq(s, &before_seen, &error));
	STEP(store_message_add(s, w, 1, e, STORE_FLAG_SEEN, "", 2000, &error));
	expect(s, z, 1, 0, 1, 0);
	expect(s, w, 1, 0, 1, 0);
	/* z's count changed though nothing in z did: Mailbox/changes says so. */
	OK(store_changes_account(s, acct, STORE_CHANGES_MAILBOX, before_seen, 100, &ch, &error));
	bool z_updated = false;
	for (size_t i = 0; i < ch.n_updated; i++)
		z_updated |= ch.updated[i] == z;
	store_changes_free(&ch);
	CHECK(z_updated);
	STEP(store_message_set_flags(s, w, 1, STORE_FLAG_FLAGGED, "", &error));
	expect(s, z, 1, 1, 1, 1);
	expect(s, w, 1, 1, 1, 1);
	STEP(store_message_set_flags(s, z, 1, STORE_FLAG_DRAFT, "", &error));
	expect(s, z, 1, 0, 1, 0);
	expect(s, w, 1, 0, 1, 0);
	/* The draft membership goes: the Email is unread again in w. */
	STEP(store_message_expunge(s, z, 1, &error));
	expect(s, z, 0, 0, 0, 0);
	expect(s, w, 1, 1, 1, 1);
#undef STEP
	store_close(&s);
}

/* Version 1 of the counts, as a store made before thread counts has them:
 * drafts counted as unread, no thread counts. */
static const char version1_sql[] =
    "DROP TRIGGER IF EXISTS counts_insert; DROP TRIGGER IF EXISTS counts_delete;"
    "DROP TRIGGER IF EXISTS counts_update; DROP TRIGGER IF EXISTS counts_mailbox_gone;"
    "DROP TRIGGER IF EXISTS counts_email_thread; DROP TRIGGER IF EXISTS counts_email_unthread;"
    "DROP TRIGGER IF EXISTS counts_email_flags;"
    "DROP TRIGGER IF EXISTS threads_insert;"
    "DROP TRIGGER IF EXISTS threads_update; DROP TRIGGER IF EXISTS threads_delete;"
    "DROP TABLE mailbox_counts; DROP TABLE mailbox_threads;"
    "CREATE TABLE mailbox_counts("
    " mailbox_id INTEGER PRIMARY KEY, total INTEGER NOT NULL, unread INTEGER NOT NULL);"
    "CREATE TRIGGER counts_insert AFTER INSERT ON messages WHEN NEW.uid > 0 BEGIN"
    " INSERT INTO mailbox_counts VALUES (NEW.mailbox_id, 1, (NEW.flags & 1) = 0)"
    "  ON CONFLICT(mailbox_id) DO UPDATE SET total = total + 1,"
    "  unread = unread + excluded.unread;"
    " END;"
    "CREATE TRIGGER counts_delete AFTER DELETE ON messages WHEN OLD.uid > 0 BEGIN"
    " UPDATE mailbox_counts SET total = total - 1, unread = unread - ((OLD.flags & 1) = 0)"
    "  WHERE mailbox_id = OLD.mailbox_id;"
    " END;"
    "CREATE TRIGGER counts_update AFTER UPDATE OF mailbox_id, uid, flags"
    " ON messages BEGIN"
    " UPDATE mailbox_counts SET total = total - 1, unread = unread - ((OLD.flags & 1) = 0)"
    "  WHERE mailbox_id = OLD.mailbox_id AND OLD.uid > 0;"
    " INSERT INTO mailbox_counts SELECT NEW.mailbox_id, 1, (NEW.flags & 1) = 0 WHERE NEW.uid > 0"
    "  ON CONFLICT(mailbox_id) DO UPDATE SET total = total + 1,"
    "  unread = unread + excluded.unread;"
    " END;"
    "CREATE TRIGGER counts_mailbox_gone AFTER DELETE ON mailboxes BEGIN"
    " DELETE FROM mailbox_counts WHERE mailbox_id = OLD.id;"
    " END;"
    "INSERT INTO mailbox_counts SELECT mailbox_id, count(*), sum((flags & 1) = 0)"
    " FROM messages WHERE uid > 0 GROUP BY mailbox_id;"
    "INSERT OR REPLACE INTO meta(key, value) VALUES ('mailbox_counts', 1);";

/* Make the store at path look as an older mailkeep left it: counts of
 * version 1 (with), or none at all (without). */
static void make_old(bool with_version1)
{
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, version1_sql, NULL, NULL, NULL) == SQLITE_OK);
	CHECK(query_int(db, "SELECT value FROM meta WHERE key = 'mailbox_counts'") == 1);
	if (!with_version1)
		CHECK(sqlite3_exec(db,
		                   "DROP TRIGGER counts_insert; DROP TRIGGER counts_delete;"
		                   "DROP TRIGGER counts_update; DROP TRIGGER counts_mailbox_gone;"
		                   "DROP TABLE mailbox_counts;"
		                   "DELETE FROM meta WHERE key = 'mailbox_counts'",
		                   NULL, NULL, NULL) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
}

static int64_t counts_version(void)
{
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	int64_t v = query_int(db, "SELECT value FROM meta WHERE key = 'mailbox_counts'");
	sqlite3_close(db);
	return v;
}

/* A store from before thread counts is counted once when opened, also by
 * two processes opening it at the same moment. */
static void test_backfill(void)
{
	struct store *s;
	const char *error;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, box;
	OK(store_account_ensure(s, "old", &acct, &error));
	OK(store_mailbox_create(s, acct, "Old", '/', NULL, &box, &error));
	OK(store_message_add(s, box, 1, mail(s, "o1", "", "Old"), 0, "", 1, &error));
	OK(store_message_add(s, box, 2, mail(s, "o2", "o1", "Re: Old"), 0, "", 2, &error));
	OK(store_message_add(s, box, 3, mail(s, "o3", "", "Draft"), STORE_FLAG_DRAFT, "", 3,
	                     &error));
	OK(store_message_add(s, box, 4, mail(s, "o4", "", "Read"), STORE_FLAG_SEEN, "", 4, &error));
	OK(store_commit(s, &error));
	store_close(&s);

	/* Version 1, and a write made by an older mailkeep under its triggers:
	 * the draft counts as unread there. */
	make_old(true);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db, "UPDATE messages SET flags = 16 WHERE flags = 1", NULL, NULL,
	                   NULL) == SQLITE_OK);
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT unread FROM mailbox_counts WHERE mailbox_id = %lld",
	         (long long)box);
	CHECK(query_int(db, sql) == 4);
	uint64_t before = (uint64_t)query_int(db, "SELECT value FROM meta WHERE key = 'modseq'");
	int64_t boxes = query_int(db, "SELECT count(*) FROM mailboxes");
	sqlite3_close(db);
	OK(store_open(path, &s, &error));
	CHECK(counts_version() == 3);
	check_counts(s);
	expect(s, box, 4, 2, 3, 1);
	/* The recount took a new change: Mailbox/changes since before it lists
	 * every mailbox (of every account) as updated, and nothing else. */
	uint64_t after;
	OK(store_read_modseq(s, &after, &error));
	CHECK(after == before + 1);
	struct store_changes ch;
	OK(store_changes_account(s, 0, STORE_CHANGES_MAILBOX, before, 100, &ch, &error));
	CHECK(!ch.has_more && ch.n_created == 0 && ch.n_destroyed == 0);
	CHECK(ch.n_updated == (size_t)boxes && boxes >= 3);
	CHECK(ch.new_state == after);
	store_changes_free(&ch);
	/* Opened again, nothing is recounted and the state stays. */
	store_close(&s);
	OK(store_open(path, &s, &error));
	OK(store_read_modseq(s, &after, &error));
	CHECK(after == before + 1);
	store_close(&s);

	/* No counts at all (older still). */
	make_old(false);
	OK(store_open(path, &s, &error));
	CHECK(counts_version() == 3);
	check_counts(s);
	expect(s, box, 4, 2, 3, 1);
	store_close(&s);

	/* Two processes race to count: both open, one counts, the counts are
	 * right and the triggers are there once. */
	for (int round = 0; round < 3; round++) {
		make_old(round != 1);
		int go[2];
		CHECK(pipe(go) == 0);
		pid_t kids[2];
		for (int k = 0; k < 2; k++) {
			kids[k] = fork();
			CHECK(kids[k] >= 0);
			if (kids[k] == 0) {
				close(go[1]);
				char c;
				if (read(go[0], &c, 1) != 0)
					_exit(3);
				struct store *ks;
				const char *kerr;
				if (store_open(path, &ks, &kerr) < 0) {
					fprintf(stderr, "child: %s\n", kerr);
					_exit(1);
				}
				store_close(&ks);
				_exit(0);
			}
		}
		close(go[0]);
		close(go[1]); /* both start now */
		for (int k = 0; k < 2; k++) {
			int status;
			CHECK(waitpid(kids[k], &status, 0) == kids[k]);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		CHECK(counts_version() == 3);
		OK(store_open(path, &s, &error));
		check_counts(s);
		expect(s, box, 4, 2, 3, 1);
		CHECK(query_int(store_db(s), "SELECT count(*) FROM sqlite_master WHERE type = "
		                             "'trigger' AND name LIKE 'counts_%'") == 7);
		/* And the triggers work after it. */
		OK(store_begin(s, &error));
		OK(store_message_set_flags(s, box, 1, STORE_FLAG_SEEN, "", &error));
		OK(store_commit(s, &error));
		check_counts(s);
		expect(s, box, 4, 1, 3, 1);
		OK(store_begin(s, &error));
		OK(store_message_set_flags(s, box, 1, 0, "", &error));
		OK(store_commit(s, &error));
		store_close(&s);
	}
}

/* A small deterministic generator (xorshift64), so a failure repeats. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

/* A random membership matching where (SQL on messages), false if none. */
static bool pick(struct store *s, const char *where, int64_t *mailbox_r, int64_t *uid_r,
                 int64_t *id_r, int64_t *email_r)
{
	char sql[384];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM messages WHERE %s", where);
	int64_t n = query_int(store_db(s), sql);
	if (n == 0)
		return false;
	snprintf(sql, sizeof(sql),
	         "SELECT mailbox_id, uid, id, email_id FROM messages WHERE %s ORDER BY id "
	         "LIMIT 1 OFFSET %u",
	         where, rnd((uint32_t)n));
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	*mailbox_r = sqlite3_column_int64(st, 0);
	*uid_r = sqlite3_column_int64(st, 1);
	*id_r = sqlite3_column_int64(st, 2);
	*email_r = sqlite3_column_int64(st, 3);
	sqlite3_finalize(st);
	return true;
}

/* Random operations (fixed seed) on three mailboxes of messages that
 * thread with each other in changing ways; after every one the counts
 * equal the brute-force count. */
static void test_random(void)
{
	struct store *s;
	const char *error;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, box[3];
	int64_t next_uid[3] = {1, 1, 1};
	OK(store_account_ensure(s, "random", &acct, &error));
	for (int i = 0; i < 3; i++) {
		char name[8];
		snprintf(name, sizeof(name), "R%d", i);
		OK(store_mailbox_create(s, acct, name, '/', NULL, &box[i], &error));
	}
	/* 24 contents in 4 topics; a message refers to up to two earlier ones
	 * of its topic, so a late arrival can merge two threads. */
	char ids[24][16], refs[24][64], subjects[24][32];
	for (int i = 0; i < 24; i++) {
		snprintf(ids[i], sizeof(ids[i]), "p%d", i);
		snprintf(subjects[i], sizeof(subjects[i]), "%sTopic %d", i >= 4 ? "Re: " : "",
		         i % 4);
		refs[i][0] = '\0';
		int nrefs = i >= 8 ? (int)rnd(3) : i >= 4 ? (int)rnd(2) : 0;
		for (int k = 0; k < nrefs; k++) {
			int j = (int)rnd((uint32_t)(i / 4)) * 4 + i % 4;
			size_t len = strlen(refs[i]);
			snprintf(refs[i] + len, sizeof(refs[i]) - len, "%sp%d", len > 0 ? " " : "",
			         j);
		}
	}
	OK(store_commit(s, &error));
	/* Only this test's mailboxes (the file has others). */
	char mine[128], server_row[200], any_row[200];
	snprintf(mine, sizeof(mine), "mailbox_id IN (%lld, %lld, %lld)", (long long)box[0],
	         (long long)box[1], (long long)box[2]);
	snprintf(server_row, sizeof(server_row), "%s AND uid > 0 AND uid < 4294967296", mine);
	snprintf(any_row, sizeof(any_row), "%s AND uid > 0", mine);
	static const unsigned flag_choices[] = {0,
	                                        STORE_FLAG_SEEN,
	                                        STORE_FLAG_DRAFT,
	                                        STORE_FLAG_SEEN | STORE_FLAG_DRAFT,
	                                        STORE_FLAG_FLAGGED,
	                                        STORE_FLAG_ANSWERED};
	unsigned ops[10] = {0};
	for (int step = 0; step < 400; step++) {
		int64_t mb, uid, id, email;
		unsigned flags = flag_choices[rnd(6)];
		uint32_t op = step < 30 ? 0 : rnd(10);
		int b = (int)rnd(3);
		OK(store_begin(s, &error));
		switch (op) {
		case 0:
		case 1: { /* a message arrives (maybe an Email already elsewhere) */
			int i = (int)rnd(24);
			OK(store_message_add(s, box[b], (uint32_t)next_uid[b]++,
			                     mail(s, ids[i], refs[i], subjects[i]), flags, "", step,
			                     &error));
			break;
		}
		case 2: /* flags change on the server */
			if (pick(s, server_row, &mb, &uid, &id, &email))
				OK(store_message_set_flags(s, mb, (uint32_t)uid, flags, "",
				                           &error));
			break;
		case 3: /* expunged on the server */
			if (pick(s, server_row, &mb, &uid, &id, &email))
				OK(store_message_expunge(s, mb, (uint32_t)uid, &error));
			break;
		case 4: /* moved by a device */
			if (pick(s, any_row, &mb, &uid, &id, &email))
				OK(store_local_move(s, id, box[b] != mb ? box[b] : box[(b + 1) % 3],
				                    &error));
			break;
		case 5: /* flags set by a device on every membership */
			if (pick(s, any_row, &mb, &uid, &id, &email))
				OK(store_local_set_flags(s, email, flags, "", &error));
			break;
		case 6: /* Gmail's thread id */
			if (pick(s, server_row, &mb, &uid, &id, &email))
				OK(store_gmail_set_thread(s, mb, (uint32_t)uid, 1 + rnd(3),
				                          &error));
			break;
		case 7: /* destroyed by a device */
			if (rnd(3) == 0 && pick(s, any_row, &mb, &uid, &id, &email))
				OK(store_local_destroy(s, email, &error));
			break;
		case 8: { /* UID repair: parked (committed so), some paired, the rest dropped */
			OK(store_mailbox_stash_uids(s, box[b], &error));
			OK(store_commit(s, &error));
			check_counts(s);
			OK(store_begin(s, &error));
			char where[96];
			snprintf(where, sizeof(where), "mailbox_id = %lld AND uid < 0",
			         (long long)box[b]);
			for (int k = 0; k < 4 && pick(s, where, &mb, &uid, &id, &email); k++)
				OK(store_message_set_uid(s, mb, (uint32_t)-uid,
				                         (uint32_t)next_uid[b]++, step, &error));
			OK(store_commit(s, &error));
			check_counts(s);
			OK(store_begin(s, &error));
			OK(store_mailbox_drop_stashed(s, box[b], &error));
			break;
		}
		case 9: /* the Email's flags alone (no membership's): counts follow them */
			if (pick(s, any_row, &mb, &uid, &id, &email)) {
				char sql[128];
				snprintf(sql, sizeof(sql),
				         "UPDATE emails SET flags = %u WHERE id = %lld", flags,
				         (long long)email);
				CHECK(sqlite3_exec(store_db(s), sql, NULL, NULL, NULL) ==
				      SQLITE_OK);
			}
			break;
		}
		OK(store_commit(s, &error));
		ops[op]++;
		check_counts(s);
	}
	/* The sequence did reach the interesting states. */
	for (int op = 0; op < 10; op++)
		CHECK(ops[op] > 10);
	CHECK(query_int(store_db(s), "SELECT count(*) FROM tombstones WHERE kind = 'thread'") > 0);
	CHECK(query_int(store_db(s), "SELECT max(emails) FROM mailbox_threads") > 1);
	store_close(&s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mk-test-store-counts-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	test_steps();
	test_backfill();
	test_random();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-store-counts");
}
