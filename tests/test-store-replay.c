/* Unit tests of the store side of the replay (store-replay.c) on a real
 * SQLite database: the pending list in order, the replay states, pairing a
 * membership made here with its server UID (and what that does to later
 * changes and the folder's UIDNEXT), failing a change for good. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store-private.h"
#include "store/store-replay.h"
#include "store/store.h"
#include "test.h"

static char dir[64], path[128];

static int64_t blob(struct store *s, const char *text)
{
	struct store_blob_writer *w;
	const char *err;
	int64_t id = 0;
	CHECK(store_blob_begin(s, strlen(text), &w, &err) == 0);
	CHECK(store_blob_write(w, text, strlen(text), &err) == 0);
	CHECK(store_blob_finish(&w, &id, &err) == 0);
	return id;
}

/* One integer from a query with one integer parameter (0 when no row). */
static int64_t q(struct store *s, const char *sql, int64_t arg)
{
	sqlite3_stmt *st;
	int64_t v = 0;
	CHECK(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, arg);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_replay_store(void)
{
	struct store *s;
	const char *error;
	OK(store_open(path, &s, &error));
	OK(store_replay_schema(s, &error)); /* idempotent over the schema's columns */
	OK(store_replay_schema(s, &error));
	OK(store_begin(s, &error));
	int64_t acct, other, inbox, arch, obox;
	OK(store_account_ensure(s, "account:1", &acct, &error));
	OK(store_account_ensure(s, "account:2", &other, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	OK(store_mailbox_create(s, acct, "Archive", '/', NULL, &arch, &error));
	OK(store_mailbox_create(s, other, "INBOX", '/', "Inbox", &obox, &error));
	for (uint32_t uid = 1; uid <= 4; uid++) {
		char text[64];
		snprintf(text, sizeof(text), "Subject: m%u\r\n\r\nbody %u\r\n", uid, uid);
		OK(store_message_add(s, inbox, uid, blob(s, text), 0, "", 1000 + uid, &error));
	}
	OK(store_message_add(s, obox, 1, blob(s, "Subject: o\r\n\r\no\r\n"), 0, "", 1, &error));
	OK(store_mailbox_set_state(s, inbox, 7, 5, 0, &error));
	OK(store_mailbox_set_state(s, arch, 9, 3, 0, &error));
	OK(store_commit(s, &error));
	int64_t m1 = q(s, "SELECT id FROM messages WHERE uid = 1 AND mailbox_id = ?1", inbox);
	int64_t m2 = q(s, "SELECT id FROM messages WHERE uid = 2 AND mailbox_id = ?1", inbox);
	int64_t e2 = q(s, "SELECT email_id FROM messages WHERE id = ?1", m2);
	int64_t o1 = q(s, "SELECT id FROM messages WHERE mailbox_id = ?1", obox);
	int64_t eo = q(s, "SELECT email_id FROM messages WHERE id = ?1", o1);

	/* Device changes: a move, a keyword change, a new message, and a
	 * change in the other account. */
	OK(store_begin(s, &error));
	OK(store_local_move(s, m1, arch, &error));
	OK(store_local_set_flags(s, e2, STORE_FLAG_SEEN, "$x", &error));
	int64_t e_new;
	OK(store_local_add(s, inbox, blob(s, "Subject: new\r\n\r\nnew\r\n"), 0, "", 5, "create",
	                   &e_new, &error));
	OK(store_local_set_flags(s, eo, STORE_FLAG_FLAGGED, "", &error));
	OK(store_commit(s, &error));
	int64_t m_new = q(s, "SELECT id FROM messages WHERE email_id = ?1", e_new);

	struct store_replay_change *v = NULL;
	size_t n = 0;
	OK(store_replay_pending(s, acct, &v, &n, &error));
	CHECK(n == 3);
	CHECK_STR(v[0].kind, "move");
	CHECK(v[0].object_id == m1 && v[0].mailbox_id == arch);
	CHECK(v[0].origin_mailbox_id == inbox && v[0].origin_uid == 1);
	CHECK(v[0].have_pair && v[0].pair_size > 0);
	CHECK_STR(v[1].kind, "keywords");
	CHECK_STR(v[1].detail, "+\\Seen +$x");
	CHECK(v[1].origin_mailbox_id == inbox && v[1].origin_uid == 2);
	CHECK_STR(v[2].kind, "create");
	CHECK(v[2].object_id == m_new && v[2].origin_uid == 0);
	CHECK(!v[0].sent && v[0].attempts == 0);

	/* Sent, committed: a resumed run sees it. */
	OK(store_begin(s, &error));
	OK(store_replay_mark_sent(s, &v[0], 1, &error));
	OK(store_commit(s, &error));
	OK(store_replay_refresh(s, &v[0], 1, &error));
	CHECK(v[0].sent && v[0].attempts == 1);

	/* A later change of the moved message, made before the move was
	 * replayed, names the old place... */
	OK(store_begin(s, &error));
	int64_t e1 = q(s, "SELECT email_id FROM messages WHERE id = ?1", m1);
	OK(store_local_set_flags(s, e1, STORE_FLAG_FLAGGED, "", &error));
	OK(store_commit(s, &error));
	int64_t later = q(s, "SELECT max(id) FROM local_changes WHERE object_id = ?1", m1);
	CHECK(q(s, "SELECT origin_uid FROM local_changes WHERE id = ?1", later) == 1);

	/* ...until the move's answer pairs it: Archive UID 3 (the next one, so
	 * Archive's UIDNEXT moves past it), and the later change follows. */
	OK(store_begin(s, &error));
	CHECK(store_replay_pair(s, m1, arch, 3, &error) == 1);
	OK(store_replay_finish(s, &v[0], 1, &error));
	OK(store_commit(s, &error));
	CHECK(q(s, "SELECT uid FROM messages WHERE id = ?1", m1) == 3);
	CHECK(q(s, "SELECT uidnext FROM mailboxes WHERE id = ?1", arch) == 4);
	CHECK(q(s, "SELECT origin_mailbox_id FROM local_changes WHERE id = ?1", later) == arch);
	CHECK(q(s, "SELECT origin_uid FROM local_changes WHERE id = ?1", later) == 3);
	CHECK(q(s, "SELECT count(*) FROM local_changes WHERE id = ?1", v[0].id) == 0);

	/* A UID above the folder's UIDNEXT (mail arrived on the server since
	 * the last sync): paired, UIDNEXT left for the sync to fetch the gap. */
	OK(store_begin(s, &error));
	CHECK(store_replay_pair(s, m_new, inbox, 9, &error) == 1);
	OK(store_commit(s, &error));
	CHECK(q(s, "SELECT uid FROM messages WHERE id = ?1", m_new) == 9);
	CHECK(q(s, "SELECT uidnext FROM mailboxes WHERE id = ?1", inbox) == 5);
	/* A UID another row holds is not taken twice. */
	OK(store_begin(s, &error));
	CHECK(store_replay_uid_held(s, inbox, 9, 0, &error) == 1);
	CHECK(store_replay_pair(s, m2, inbox, 9, &error) == 0);
	OK(store_commit(s, &error));
	CHECK(q(s, "SELECT uid FROM messages WHERE id = ?1", m2) == 2);

	/* Failed for good: out of the pending list, the error kept, a notice
	 * in the hub's INBOX, and the sync no longer holds the flags back. */
	CHECK(store_local_holds_flags(s, m2, &error) == 1);
	OK(store_begin(s, &error));
	OK(store_replay_fail(s, &v[1], "server answered NO: [CANNOT] no", true, &error));
	OK(store_commit(s, &error));
	CHECK(store_local_holds_flags(s, m2, &error) == 0);
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(store_db(s),
	                         "SELECT state, error FROM local_changes WHERE id = ?1", -1, &st,
	                         NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, v[1].id);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	CHECK_STR((const char *)sqlite3_column_text(st, 0), "failed");
	CHECK_STR((const char *)sqlite3_column_text(st, 1), "server answered NO: [CANNOT] no");
	sqlite3_finalize(st);
	CHECK(q(s,
	        "SELECT count(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
	        "JOIN accounts a ON a.id = b.account_id WHERE a.key = 'hub:local' AND ?1",
	        1) == 1);
	store_replay_changes_free(&v, n);
	OK(store_replay_pending(s, acct, &v, &n, &error));
	CHECK(n == 2); /* the create and the later keyword change */
	CHECK_STR(v[0].kind, "create");
	CHECK_STR(v[1].kind, "keywords");
	store_replay_changes_free(&v, n);

	/* Mailboxes: the server name through pending changes; a replayed
	 * rename renames the origin of the later ones. */
	OK(store_begin(s, &error));
	int64_t made;
	OK(store_local_mailbox_create(s, acct, "Made", '/', &made, &error));
	OK(store_local_mailbox_rename(s, arch, "Old", &error));
	OK(store_local_mailbox_rename(s, arch, "Older", &error));
	OK(store_commit(s, &error));
	char *name = NULL;
	CHECK(store_replay_server_name(s, made, &name, &error) == 0); /* not on the server */
	CHECK(store_replay_server_name(s, arch, &name, &error) == 1);
	CHECK_STR(name, "Archive");
	free(name);
	OK(store_replay_pending(s, acct, &v, &n, &error));
	CHECK(n == 5);
	CHECK_STR(v[3].kind, "mailbox-rename");
	CHECK_STR(v[3].origin_name, "Archive");
	CHECK_STR(v[4].origin_name, "Archive");
	OK(store_begin(s, &error));
	OK(store_replay_mailbox_renamed(s, arch, "Old", &error));
	OK(store_replay_finish(s, &v[3], 1, &error));
	OK(store_replay_mailbox_created(s, made, 42, 1, &error));
	OK(store_replay_mailbox_created(s, arch, 43, 1, &error)); /* has a state: kept */
	OK(store_commit(s, &error));
	OK(store_replay_refresh(s, &v[4], 1, &error));
	CHECK_STR(v[4].origin_name, "Old");
	CHECK(q(s, "SELECT uidvalidity FROM mailboxes WHERE id = ?1", made) == 42);
	CHECK(q(s, "SELECT uidvalidity FROM mailboxes WHERE id = ?1", arch) == 9);
	/* A failed rename: the mailbox gets the server's name back. */
	OK(store_begin(s, &error));
	OK(store_replay_fail(s, &v[4], "server answered NO: [ALREADYEXISTS] taken", false, &error));
	OK(store_commit(s, &error));
	CHECK(store_replay_server_name(s, arch, &name, &error) == 1);
	CHECK_STR(name, "Old");
	free(name);
	store_replay_changes_free(&v, n);
	store_close(&s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mk-test-store-replay-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	test_replay_store();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-store-replay");
}
