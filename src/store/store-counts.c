/*
 * Per-mailbox counts, kept by triggers on every write of the messages and
 * emails tables, so Mailbox/get costs the number of mailboxes, not the
 * number of messages (a count over 100,000 rows took about 20 ms). Triggers
 * rather than calls in each writer: every path (sync, device changes,
 * removal, UID repair, threading) is covered without having to remember it.
 *
 * The counts are RFC 8621 section 2's:
 *   total           memberships of the mailbox (totalEmails)
 *   unread          of those, the ones whose Email has neither \Seen nor
 *                   \Draft (unreadEmails): the Email's flags, emails.flags
 *                   (the union of its memberships'), the keywords JMAP
 *                   shows, not the membership's own
 *   threads         threads with at least one Email in the mailbox
 *                   (totalThreads)
 *   unread_threads  threads with at least one Email that is in the mailbox
 *                   and unread in the sense above (unreadThreads; the RFC's
 *                   "simplest solution")
 *
 * mailbox_threads(mailbox_id, thread_id, emails, unread) holds, for every
 * thread present in a mailbox, how many of its memberships are there and
 * how many of those are unread; the row goes when emails reaches 0. The
 * triggers on messages keep it (the thread is the Email's, emails.thread_id),
 * a trigger on emails moves an Email's memberships when its thread changes
 * (threading a new Email, threads merged by a linking message or by Gmail's
 * thread id), and the triggers on mailbox_threads keep the two thread
 * counts of mailbox_counts. An Email not threaded yet (thread_id 0: only
 * inside the transaction that adds it, or in a store from before threads
 * until store_envelope_catch_up threads it) is in no thread.
 *
 * A membership counts when its uid is positive: UID repair parks rows at
 * negative uids while it re-pairs them, and those are not shown.
 *
 * Unread follows the Email: the triggers on messages read its current
 * emails.flags, and a trigger on emails moves the unread counts of all its
 * counted memberships when its unread bit changes (a keyword set in one
 * mailbox changes what the Email shows in every other). The store writes an
 * Email before its first membership and removes it after its last
 * (store_member_add, store_member_remove), so the row is there whenever a
 * membership is written; were it not, the membership counts as unread
 * (flags 0) until the Email's flags move.
 */
#include <stdio.h>

#include "store-private.h"

/* The version of the counts' definition in meta.mailbox_counts: 1 counted
 * drafts as unread and had no thread counts; 2 took unread from each
 * membership's own flags; 3 is this file's. */
#define COUNTS_VERSION 3
#define COUNTS_VERSION_SQL "3"

/* The definitions of version 1 and of this one go before they are made anew. */
static const char drop_sql[] = "DROP TRIGGER IF EXISTS counts_insert;"
                               "DROP TRIGGER IF EXISTS counts_delete;"
                               "DROP TRIGGER IF EXISTS counts_update;"
                               "DROP TRIGGER IF EXISTS counts_mailbox_gone;"
                               "DROP TRIGGER IF EXISTS counts_email_thread;"
                               "DROP TRIGGER IF EXISTS counts_email_unthread;"
                               "DROP TRIGGER IF EXISTS counts_email_flags;"
                               "DROP TRIGGER IF EXISTS threads_insert;"
                               "DROP TRIGGER IF EXISTS threads_update;"
                               "DROP TRIGGER IF EXISTS threads_delete;"
                               "DROP TABLE IF EXISTS mailbox_counts;"
                               "DROP TABLE IF EXISTS mailbox_threads;";

static const char tables_sql[] =
    "CREATE TABLE mailbox_counts("
    " mailbox_id INTEGER PRIMARY KEY, total INTEGER NOT NULL, unread INTEGER NOT NULL,"
    " threads INTEGER NOT NULL DEFAULT 0, unread_threads INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE mailbox_threads("
    " mailbox_id INTEGER NOT NULL, thread_id INTEGER NOT NULL,"
    " emails INTEGER NOT NULL, unread INTEGER NOT NULL,"
    " PRIMARY KEY(mailbox_id, thread_id)) WITHOUT ROWID;";

/* Counted from scratch, before the triggers exist. */
static const char backfill_sql[] =
    "INSERT INTO mailbox_counts(mailbox_id, total, unread)"
    " SELECT m.mailbox_id, count(*), sum((coalesce(e.flags, 0) & 17) = 0) FROM messages m"
    " LEFT JOIN emails e ON e.id = m.email_id WHERE m.uid > 0 GROUP BY m.mailbox_id;"
    "INSERT INTO mailbox_threads(mailbox_id, thread_id, emails, unread)"
    " SELECT m.mailbox_id, e.thread_id, count(*), sum((e.flags & 17) = 0)"
    " FROM messages m JOIN emails e ON e.id = m.email_id"
    " WHERE m.uid > 0 AND e.thread_id != 0 GROUP BY m.mailbox_id, e.thread_id;"
    "UPDATE mailbox_counts SET"
    " threads = (SELECT count(*) FROM mailbox_threads t"
    "  WHERE t.mailbox_id = mailbox_counts.mailbox_id),"
    " unread_threads = (SELECT count(*) FROM mailbox_threads t"
    "  WHERE t.mailbox_id = mailbox_counts.mailbox_id AND t.unread > 0);";

/* A membership row's unread, from its Email's current flags. */
#define UNREAD_NEW "(coalesce((SELECT flags FROM emails WHERE id = NEW.email_id), 0) & 17) = 0"
#define UNREAD_OLD "(coalesce((SELECT flags FROM emails WHERE id = OLD.email_id), 0) & 17) = 0"

/* Unread: the Email has neither \\Seen (1) nor \\Draft (16). A membership arriving in
 * (mailbox, its Email's thread) adds to that row (made if new); one leaving
 * takes from it, and the row goes when it is empty. */
static const char triggers_sql[] =
    /* Messages and unread messages. */
    "CREATE TRIGGER counts_insert AFTER INSERT ON messages WHEN NEW.uid > 0 BEGIN"
    " INSERT INTO mailbox_counts(mailbox_id, total, unread)"
    "  VALUES (NEW.mailbox_id, 1, " UNREAD_NEW ")"
    "  ON CONFLICT(mailbox_id) DO UPDATE SET total = total + 1,"
    "  unread = unread + excluded.unread;"
    " INSERT INTO mailbox_threads(mailbox_id, thread_id, emails, unread)"
    "  SELECT NEW.mailbox_id, e.thread_id, 1, (e.flags & 17) = 0 FROM emails e"
    "  WHERE e.id = NEW.email_id AND e.thread_id != 0"
    "  ON CONFLICT(mailbox_id, thread_id) DO UPDATE SET emails = emails + 1,"
    "  unread = unread + excluded.unread;"
    " END;"
    "CREATE TRIGGER counts_delete AFTER DELETE ON messages WHEN OLD.uid > 0 BEGIN"
    " UPDATE mailbox_counts SET total = total - 1, unread = unread - (" UNREAD_OLD ")"
    "  WHERE mailbox_id = OLD.mailbox_id;"
    " UPDATE mailbox_threads SET emails = emails - 1, unread = unread - (" UNREAD_OLD ")"
    "  WHERE mailbox_id = OLD.mailbox_id"
    "  AND thread_id = (SELECT thread_id FROM emails WHERE id = OLD.email_id);"
    " DELETE FROM mailbox_threads WHERE mailbox_id = OLD.mailbox_id"
    "  AND thread_id = (SELECT thread_id FROM emails WHERE id = OLD.email_id)"
    "  AND emails <= 0;"
    " END;"
    /* Only when what is counted changes (not a UID repair between two
     * positive uids, not a keyword or modseq change: the membership's own
     * flags count through its Email's, below). The new place is
     * counted before the old one is left, so a thread that stays in the
     * mailbox keeps its row. */
    "CREATE TRIGGER counts_update AFTER UPDATE OF mailbox_id, uid, email_id"
    " ON messages WHEN (OLD.uid > 0 OR NEW.uid > 0) AND (OLD.mailbox_id != NEW.mailbox_id"
    " OR (OLD.uid > 0) != (NEW.uid > 0) OR OLD.email_id != NEW.email_id) BEGIN"
    " INSERT INTO mailbox_counts(mailbox_id, total, unread)"
    "  SELECT NEW.mailbox_id, 1, " UNREAD_NEW "  WHERE NEW.uid > 0"
    "  ON CONFLICT(mailbox_id) DO UPDATE SET total = total + 1,"
    "  unread = unread + excluded.unread;"
    " UPDATE mailbox_counts SET total = total - 1, unread = unread - (" UNREAD_OLD ")"
    "  WHERE mailbox_id = OLD.mailbox_id AND OLD.uid > 0;"
    " INSERT INTO mailbox_threads(mailbox_id, thread_id, emails, unread)"
    "  SELECT NEW.mailbox_id, e.thread_id, 1, (e.flags & 17) = 0 FROM emails e"
    "  WHERE e.id = NEW.email_id AND e.thread_id != 0 AND NEW.uid > 0"
    "  ON CONFLICT(mailbox_id, thread_id) DO UPDATE SET emails = emails + 1,"
    "  unread = unread + excluded.unread;"
    " UPDATE mailbox_threads SET emails = emails - 1, unread = unread - (" UNREAD_OLD ")"
    "  WHERE OLD.uid > 0 AND mailbox_id = OLD.mailbox_id"
    "  AND thread_id = (SELECT thread_id FROM emails WHERE id = OLD.email_id);"
    " DELETE FROM mailbox_threads WHERE OLD.uid > 0 AND mailbox_id = OLD.mailbox_id"
    "  AND thread_id = (SELECT thread_id FROM emails WHERE id = OLD.email_id)"
    "  AND emails <= 0;"
    " END;"
    "CREATE TRIGGER counts_mailbox_gone AFTER DELETE ON mailboxes BEGIN"
    " DELETE FROM mailbox_threads WHERE mailbox_id = OLD.id;"
    " DELETE FROM mailbox_counts WHERE mailbox_id = OLD.id;"
    " END;"
    /* An Email changes thread: its counted memberships move with it (two
     * triggers: joining the first thread, the common case, runs only the
     * first). */
    "CREATE TRIGGER counts_email_thread AFTER UPDATE OF thread_id ON emails"
    " WHEN NEW.thread_id != 0 AND OLD.thread_id != NEW.thread_id BEGIN"
    " INSERT INTO mailbox_threads(mailbox_id, thread_id, emails, unread)"
    "  SELECT mailbox_id, NEW.thread_id, count(*), count(*) * ((NEW.flags & 17) = 0)"
    "  FROM messages"
    "  WHERE email_id = NEW.id AND uid > 0 GROUP BY mailbox_id"
    "  ON CONFLICT(mailbox_id, thread_id) DO UPDATE SET emails = emails + excluded.emails,"
    "  unread = unread + excluded.unread;"
    " END;"
    "CREATE TRIGGER counts_email_unthread AFTER UPDATE OF thread_id ON emails"
    " WHEN OLD.thread_id != 0 AND OLD.thread_id != NEW.thread_id BEGIN"
    " UPDATE mailbox_threads SET emails = emails - c.n, unread = unread - c.u"
    "  FROM (SELECT mailbox_id AS mb, count(*) AS n, count(*) * ((OLD.flags & 17) = 0) AS u"
    "  FROM messages WHERE email_id = NEW.id AND uid > 0 GROUP BY mailbox_id) AS c"
    "  WHERE mailbox_threads.mailbox_id = c.mb AND mailbox_threads.thread_id = OLD.thread_id;"
    " DELETE FROM mailbox_threads WHERE thread_id = OLD.thread_id AND emails <= 0"
    "  AND mailbox_id IN (SELECT mailbox_id FROM messages WHERE email_id = NEW.id);"
    /* Their thread counts may have changed: Mailbox/changes reports them. */
    " UPDATE mailboxes SET modseq = max(modseq, NEW.modseq) WHERE id IN"
    "  (SELECT mailbox_id FROM messages WHERE email_id = NEW.id AND uid > 0);"
    " END;"
    /* An Email's unread bit changes: so does each of its counted memberships'
     * (its thread's row only when its thread stays: a thread change moves
     * the memberships with the new flags itself), and the mailboxes count as
     * updated so Mailbox/changes reports them. */
    "CREATE TRIGGER counts_email_flags AFTER UPDATE OF flags ON emails"
    " WHEN ((OLD.flags & 17) = 0) != ((NEW.flags & 17) = 0) BEGIN"
    " UPDATE mailbox_counts SET unread = unread + c.d"
    "  FROM (SELECT mailbox_id AS mb, count(*) * (((NEW.flags & 17) = 0) - ((OLD.flags & 17) = 0))"
    "  AS d FROM messages WHERE email_id = NEW.id AND uid > 0 GROUP BY mailbox_id) AS c"
    "  WHERE mailbox_counts.mailbox_id = c.mb;"
    " UPDATE mailbox_threads SET unread = unread + c.d"
    "  FROM (SELECT mailbox_id AS mb, count(*) * (((NEW.flags & 17) = 0) - ((OLD.flags & 17) = 0))"
    "  AS d FROM messages WHERE email_id = NEW.id AND uid > 0 GROUP BY mailbox_id) AS c"
    "  WHERE NEW.thread_id != 0 AND OLD.thread_id = NEW.thread_id"
    "  AND mailbox_threads.mailbox_id = c.mb AND mailbox_threads.thread_id = NEW.thread_id;"
    " UPDATE mailboxes SET modseq = max(modseq, NEW.modseq) WHERE id IN"
    "  (SELECT mailbox_id FROM messages WHERE email_id = NEW.id AND uid > 0);"
    " END;"
    /* Threads and unread threads, from the rows above. */
    "CREATE TRIGGER threads_insert AFTER INSERT ON mailbox_threads BEGIN"
    " INSERT INTO mailbox_counts(mailbox_id, total, unread, threads, unread_threads)"
    "  VALUES (NEW.mailbox_id, 0, 0, 1, NEW.unread > 0)"
    "  ON CONFLICT(mailbox_id) DO UPDATE SET threads = threads + 1,"
    "  unread_threads = unread_threads + excluded.unread_threads;"
    " END;"
    "CREATE TRIGGER threads_update AFTER UPDATE OF unread ON mailbox_threads"
    " WHEN (OLD.unread > 0) != (NEW.unread > 0) BEGIN"
    " UPDATE mailbox_counts SET unread_threads = unread_threads + (NEW.unread > 0)"
    "  - (OLD.unread > 0) WHERE mailbox_id = NEW.mailbox_id;"
    " END;"
    "CREATE TRIGGER threads_delete AFTER DELETE ON mailbox_threads BEGIN"
    " UPDATE mailbox_counts SET threads = threads - 1,"
    "  unread_threads = unread_threads - (OLD.unread > 0) WHERE mailbox_id = OLD.mailbox_id;"
    " END;";

/* Counted anew, every mailbox's counts may have changed: they all count as
 * updated under one new change counter value (meta.modseq, as store_begin
 * and store_commit keep it), so Mailbox/changes reports them and clients
 * read the new figures. A store without mailboxes (a new one) keeps its
 * counter. */
static const char touch_sql[] =
    "UPDATE meta SET value = value + 1 WHERE key = 'modseq'"
    " AND EXISTS (SELECT 1 FROM mailboxes);"
    "UPDATE mailboxes SET modseq = (SELECT value FROM meta WHERE key = 'modseq');";

/* This store's counts version (meta.mailbox_counts; 0 none yet), or -1. */
static int counts_version(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'mailbox_counts'", -1, &st,
	                       NULL) != SQLITE_OK)
		return -1;
	int rc = sqlite3_step(st);
	int v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? v : -1;
}

int store_counts_schema(struct store *s, const char **error_r)
{
	sqlite3 *db = store_db(s);
	/* The usual open: everything is there, and no write lock is taken. */
	int v = counts_version(db);
	if (v >= COUNTS_VERSION)
		return 0;
	if (v < 0 || sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "mailbox counts");
		return -1;
	}
	/* Another process may have counted meanwhile: look again under the
	 * lock. Otherwise the old definitions go, everything is counted once
	 * and every mailbox is touched, all in this one transaction. */
	if ((v = counts_version(db)) < 0 ||
	    (v < COUNTS_VERSION && (sqlite3_exec(db, drop_sql, NULL, NULL, NULL) != SQLITE_OK ||
	                            sqlite3_exec(db, tables_sql, NULL, NULL, NULL) != SQLITE_OK ||
	                            sqlite3_exec(db, backfill_sql, NULL, NULL, NULL) != SQLITE_OK ||
	                            sqlite3_exec(db, triggers_sql, NULL, NULL, NULL) != SQLITE_OK ||
	                            sqlite3_exec(db, touch_sql, NULL, NULL, NULL) != SQLITE_OK ||
	                            sqlite3_exec(db,
	                                         "INSERT OR REPLACE INTO meta(key, value) VALUES "
	                                         "('mailbox_counts', " COUNTS_VERSION_SQL ")",
	                                         NULL, NULL, NULL) != SQLITE_OK)) ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "mailbox counts");
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

int store_library_init(void)
{
	/* Triggers make a statement that writes more than one table keep a
	 * statement journal (the pages it changes, to undo it alone), which
	 * SQLite writes to a temporary file past 64 KiB: four of our 16 KiB
	 * pages. Threading a new Email fires the count triggers, so a full
	 * sync wrote ~12 more pages a message to such files (measured: +47 %
	 * pwrite calls, ~+0.5 s CPU over 10,000 messages). In memory up to
	 * 1 MiB per statement instead; beyond that it still spills. */
	return sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 1 << 20) == SQLITE_OK ? 0 : -1;
}
