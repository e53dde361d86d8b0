/* Unit tests of changes made through the device API (store-local.c) on a
 * real SQLite database: recorded, counted by the change counter, and kept
 * out of what the server-to-hub sync touches. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store-private.h"
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

/* The membership (messages row) at (mailbox, uid), 0 if none. */
static int64_t id_of(struct store *s, int64_t mailbox, uint32_t uid)
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

static bool has_uid(struct store *s, int64_t mailbox, uint32_t uid)
{
	const char *err;
	uint32_t *uids;
	size_t n;
	bool found = false;
	CHECK(store_mailbox_uids(s, mailbox, &uids, &n, &err) == 0);
	for (size_t i = 0; i < n; i++)
		found |= uids[i] == uid;
	free(uids);
	return found;
}

static void test_messages(void)
{
	struct store *s;
	const char *error, *err;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, inbox, arch, other_acct, other_box;
	OK(store_account_ensure(s, "account:1", &acct, &error));
	OK(store_account_ensure(s, "account:2", &other_acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	OK(store_mailbox_create(s, acct, "Archive", '/', NULL, &arch, &error));
	OK(store_mailbox_create(s, other_acct, "INBOX", '/', "Inbox", &other_box, &error));
	for (uint32_t uid = 1; uid <= 4; uid++) {
		char text[64];
		snprintf(text, sizeof(text), "Subject: m%u\r\n\r\nbody %u\r\n", uid, uid);
		OK(store_message_add(s, inbox, uid, blob(s, text), 0, "", 1000 + uid, &error));
	}
	OK(store_commit(s, &error));
	int64_t m1 = id_of(s, inbox, 1), m2 = id_of(s, inbox, 2), m3 = id_of(s, inbox, 3);
	CHECK(m1 != 0 && m2 != 0 && m3 != 0);

	/* A keyword change made here: one change, and the sync cannot undo it. */
	OK(store_begin(s, &error));
	uint64_t before = store_modseq(s);
	OK(store_local_set_flags(s, m1, STORE_FLAG_FLAGGED, "work", &error));
	CHECK(store_modseq(s) == before + 1);
	uint64_t after_kw = store_modseq(s);
	OK(store_message_set_flags(s, inbox, 1, STORE_FLAG_SEEN, "", &error));
	CHECK(store_modseq(s) == after_kw);
	struct store_email e;
	CHECK(store_email_get(s, m1, &e, &err) == 1);
	CHECK(e.flags == STORE_FLAG_FLAGGED);
	CHECK_STR(e.keywords, "work");
	/* Another message's server flags still apply. */
	OK(store_message_set_flags(s, inbox, 4, STORE_FLAG_SEEN, "", &error));
	CHECK(store_modseq(s) == after_kw + 1);

	/* A move: same id, a local UID, out of the sync's lists and counts. */
	OK(store_local_move(s, m2, arch, &error));
	CHECK(store_email_get(s, m2, &e, &err) == 1);
	CHECK(e.mailbox_id == arch);
	CHECK(!has_uid(s, inbox, 2) && !has_uid(s, arch, 2));
	uint32_t count;
	OK(store_mailbox_server_count(s, arch, &count, &error));
	CHECK(count == 0);
	OK(store_mailbox_count(s, arch, &count, &error));
	CHECK(count == 1);
	/* What the sync does for the server's UID 2 in INBOX touches nothing. */
	uint64_t m = store_modseq(s);
	OK(store_message_set_flags(s, inbox, 2, STORE_FLAG_SEEN, "x", &error));
	OK(store_message_expunge(s, inbox, 2, &error));
	CHECK(store_modseq(s) == m);
	CHECK(store_email_get(s, m2, &e, &err) == 1);
	/* Moving back keeps the local UID (the server still has UID 2). */
	OK(store_local_move(s, m2, inbox, &error));
	CHECK(!has_uid(s, inbox, 2));

	/* Destroy: a tombstone, the bytes go. */
	uint64_t since = store_modseq(s);
	OK(store_local_destroy(s, m3, &error));
	CHECK(store_email_get(s, m3, &e, &err) == 0);
	REFUSED(store_local_destroy(s, m3, &error), "no such message");

	/* Add: a local UID above every server UID. */
	int64_t b = blob(s, "Subject: new\r\n\r\nnew\r\n"), m5;
	OK(store_local_add(s, arch, b, STORE_FLAG_DRAFT, "", 2000, "create", &m5, &error));
	CHECK(store_email_get(s, m5, &e, &err) == 1);
	CHECK(e.mailbox_id == arch && e.flags == STORE_FLAG_DRAFT);
	REFUSED(store_local_add(s, 999999, b, 0, "", 0, "import", &m5, &error), "no such mailbox");
	OK(store_commit(s, &error));

	struct store_changes ch;
	OK(store_changes(s, STORE_CHANGES_EMAIL, since, 100, &ch, &error));
	CHECK(ch.n_destroyed == 1 && ch.destroyed[0] == m3);
	CHECK(ch.n_created == 1 && ch.created[0] == m5);
	store_changes_free(&ch);

	/* The record: in order, with origins. */
	struct store_local_change *lc;
	size_t n;
	OK(store_local_changes(s, &lc, &n, &error));
	CHECK(n == 5);
	CHECK_STR(lc[0].kind, "keywords");
	CHECK(lc[0].object_id == m1 && lc[0].origin_mailbox_id == inbox && lc[0].origin_uid == 1);
	CHECK_STR(lc[0].detail, "+\\Flagged +work");
	CHECK_STR(lc[1].kind, "move");
	CHECK(lc[1].origin_mailbox_id == inbox && lc[1].origin_uid == 2 &&
	      lc[1].mailbox_id == arch);
	CHECK_STR(lc[2].kind, "move");
	CHECK(lc[2].origin_mailbox_id == inbox && lc[2].origin_uid == 2); /* still the server's */
	CHECK_STR(lc[3].kind, "destroy");
	CHECK(lc[3].origin_uid == 3);
	CHECK_STR(lc[4].kind, "create");
	CHECK(lc[4].origin_mailbox_id == 0 && lc[4].object_id == m5);
	CHECK(lc[0].modseq < lc[1].modseq && lc[3].modseq < lc[4].modseq);
	store_local_changes_free(&lc, n);
	CHECK(lc == NULL);

	/* After a UIDVALIDITY change the re-pairing knows the moved and the
	 * destroyed message by their server pair key, and renumbers origins. */
	struct store_local_gone *gone;
	size_t ngone;
	OK(store_local_gone(s, inbox, &gone, &ngone, &error));
	CHECK(ngone == 2);
	unsigned char h[32];
	OK(store_blob_header_hash(s, blob(s, "Subject: m2\r\n\r\nbody 2\r\n"), 23, h, &error));
	bool seen2 = false;
	for (size_t i = 0; i < ngone; i++)
		seen2 |= gone[i].origin_uid == 2 && gone[i].size == 23 &&
		         memcmp(gone[i].hash, h, 32) == 0;
	CHECK(seen2);
	free(gone);
	OK(store_begin(s, &error));
	OK(store_local_renumber(s, inbox, 2, 3, &error)); /* new and old UIDs overlap */
	OK(store_local_renumber(s, inbox, 1, 2, &error));
	OK(store_local_renumber_done(s, inbox, &error));
	OK(store_commit(s, &error));
	OK(store_local_changes(s, &lc, &n, &error));
	CHECK(lc[0].origin_uid == 2 && lc[1].origin_uid == 3 && lc[2].origin_uid == 3);
	CHECK(lc[3].origin_uid == 0); /* not on the server any more under a known UID */
	store_local_changes_free(&lc, n);

	/* A server-side removal of the mailbox takes local messages too. */
	OK(store_begin(s, &error));
	OK(store_mailbox_delete(s, arch, &error));
	CHECK(store_email_get(s, m5, &e, &err) == 0);
	OK(store_commit(s, &error));
	store_close(&s);
}

/* An Email in several mailboxes: one change per membership. */
static void test_memberships(void)
{
	struct store *s;
	const char *error, *err;
	char p[160];
	snprintf(p, sizeof(p), "%s/members.db", dir);
	OK(store_open(p, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, other, inbox, arch, trash, parent, elsewhere;
	OK(store_account_ensure(s, "account:1", &acct, &error));
	OK(store_account_ensure(s, "account:2", &other, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	OK(store_mailbox_create(s, acct, "Archive", '/', NULL, &arch, &error));
	OK(store_mailbox_create(s, acct, "Trash", '/', "Trash", &trash, &error));
	OK(store_mailbox_create_noselect(s, acct, "Parent", '/', NULL, true, &parent, &error));
	OK(store_mailbox_create(s, other, "INBOX", '/', "Inbox", &elsewhere, &error));
	int64_t b = blob(s, "Subject: both\r\n\r\nin two folders\r\n");
	OK(store_message_add(s, inbox, 1, b, 0, "", 1000, &error));
	OK(store_message_add(s, arch, 3, b, STORE_FLAG_DELETED, "", 1000, &error));
	OK(store_commit(s, &error));
	int64_t in1 = id_of(s, inbox, 1), ar3 = id_of(s, arch, 3), email = in1;
	struct store_email e;
	CHECK(store_email_get(s, email, &e, &err) == 1 && e.n_members == 2 && e.flags == 0);
	CHECK(store_email_get(s, ar3, &e, &err) == 0); /* a membership id is no Email id */

	/* Keywords: a delta per membership; \Deleted stays per membership. */
	OK(store_begin(s, &error));
	OK(store_local_set_flags(s, email, STORE_FLAG_SEEN, "$x", &error));
	OK(store_local_set_flags(s, email, 0, "$x", &error));
	CHECK(store_email_get(s, email, &e, &err) == 1 && e.flags == 0);
	CHECK_STR(e.keywords, "$x");
	/* Copy into Trash: a new membership with a local UID. */
	int64_t tr;
	OK(store_local_copy(s, email, trash, &tr, &error));
	CHECK(!has_uid(s, trash, 0) && id_of(s, trash, 0) == 0);
	REFUSED(store_local_copy(s, email, parent, NULL, &error), "cannot hold");
	REFUSED(store_local_copy(s, email, elsewhere, NULL, &error), "another account");
	CHECK(store_email_get(s, email, &e, &err) == 1 && e.n_members == 3);
	CHECK_STR(e.keywords, "$x");
	/* Out of Trash again; then the Archive membership moves to Trash. */
	OK(store_local_expunge(s, tr, &error));
	OK(store_local_move(s, ar3, trash, &error));
	CHECK(store_email_get(s, email, &e, &err) == 1 && e.n_members == 2);
	REFUSED(store_local_move(s, ar3, parent, &error), "cannot hold");
	OK(store_commit(s, &error));
	int64_t *mids, *boxes;
	size_t n;
	OK(store_email_members(s, email, &mids, &boxes, &n, &error));
	CHECK(n == 2 && mids[0] == in1 && boxes[0] == inbox && mids[1] == ar3 && boxes[1] == trash);
	free(mids);
	free(boxes);
	/* The hub's UIDs: never reused, a move takes a new one. */
	struct store_mailbox *mb;
	size_t nmb;
	OK(store_mailboxes(s, acct, &mb, &nmb, &error));
	for (size_t i = 0; i < nmb; i++) {
		if (mb[i].id == trash)
			CHECK(mb[i].imap_uidnext == 3);
		if (mb[i].id == arch)
			CHECK(mb[i].imap_uidnext == 2);
		if (mb[i].id == parent)
			CHECK(mb[i].noselect);
		CHECK(mb[i].imap_uidvalidity != 0);
	}
	store_mailboxes_free(&mb, nmb);

	/* Destroy: one change per membership, the Email goes. */
	uint64_t since;
	OK(store_read_modseq(s, &since, &error));
	OK(store_begin(s, &error));
	OK(store_local_destroy(s, email, &error));
	REFUSED(store_local_expunge(s, in1, &error), "no such message");
	OK(store_commit(s, &error));
	struct store_changes ch;
	OK(store_changes_account(s, acct, STORE_CHANGES_EMAIL, since, 100, &ch, &error));
	CHECK(ch.n_destroyed == 1 && ch.destroyed[0] == email && ch.n_updated == 0);
	store_changes_free(&ch);
	OK(store_changes_account(s, other, STORE_CHANGES_EMAIL, since, 100, &ch, &error));
	CHECK(ch.n_destroyed == 0);
	store_changes_free(&ch);

	struct store_local_change *lc;
	OK(store_local_changes(s, &lc, &n, &error));
	const char *kinds[] = {"keywords", "keywords", "keywords", "keywords", "copy",
	                       "expunge",  "move",     "destroy",  "destroy"};
	CHECK(n == sizeof(kinds) / sizeof(kinds[0]));
	for (size_t i = 0; i < n && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		CHECK_STR(lc[i].kind, kinds[i]);
	CHECK(lc[0].object_id == in1 && lc[1].object_id == ar3);
	CHECK_STR(lc[0].detail, "+\\Seen +$x");
	CHECK_STR(lc[2].detail, "-\\Seen");
	CHECK(lc[1].origin_mailbox_id == arch && lc[1].origin_uid == 3);
	CHECK(lc[4].object_id == tr && lc[4].mailbox_id == trash &&
	      lc[4].origin_mailbox_id == inbox && lc[4].origin_uid == 1);
	CHECK(lc[5].object_id == tr && lc[5].origin_uid == 0); /* never on the server */
	CHECK(lc[6].object_id == ar3 && lc[6].origin_mailbox_id == arch && lc[6].origin_uid == 3);
	CHECK(lc[7].object_id == in1 && lc[7].origin_uid == 1);
	CHECK(lc[8].object_id == ar3 && lc[8].origin_mailbox_id == arch && lc[8].origin_uid == 3);
	store_local_changes_free(&lc, n);

	/* Out of one mailbox (a mailbox destroyed with its mail): expunged
	 * while the Email is elsewhere too, destroyed when not. */
	OK(store_begin(s, &error));
	int64_t b2 = blob(s, "Subject: two\r\n\r\nx\r\n");
	OK(store_message_add(s, inbox, 10, b2, 0, "", 1000, &error));
	OK(store_message_add(s, arch, 11, b2, 0, "", 1000, &error));
	int64_t e2 = id_of(s, inbox, 10);
	OK(store_local_remove_from_mailbox(s, e2, arch, &error));
	CHECK(store_email_get(s, e2, &e, &err) == 1 && e.n_members == 1 && e.mailbox_id == inbox);
	OK(store_local_remove_from_mailbox(s, e2, inbox, &error));
	CHECK(store_email_get(s, e2, &e, &err) == 0);
	OK(store_commit(s, &error));
	store_close(&s);
}

static void test_mailboxes(void)
{
	struct store *s;
	const char *error;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, box, made, sent;
	OK(store_account_ensure(s, "account:3", &acct, &error));
	OK(store_mailbox_create(s, acct, "Lists", '.', NULL, &box, &error));
	OK(store_mailbox_create(s, acct, "Sent", '.', "Sent", &sent, &error));
	char *name = NULL;
	bool local_only = true;
	CHECK(store_local_mailbox_origin(s, box, &name, &local_only, &error) == 0);
	CHECK(!local_only && name != NULL && strcmp(name, "Lists") == 0);
	free(name);

	uint64_t m = store_modseq(s);
	OK(store_local_mailbox_create(s, acct, "Lists.New", '.', &made, &error));
	CHECK(made == (int64_t)m + 1);
	CHECK(store_local_mailbox_origin(s, made, &name, &local_only, &error) == 1);
	CHECK(local_only && name == NULL);
	OK(store_local_mailbox_rename(s, made, "Other", &error));
	CHECK(store_local_mailbox_origin(s, made, &name, &local_only, &error) == 1);
	CHECK(local_only && name == NULL);

	/* A server mailbox renamed here keeps its server name for the sync. */
	OK(store_local_mailbox_rename(s, box, "Lists2", &error));
	OK(store_local_mailbox_rename(s, box, "Lists3", &error));
	CHECK(store_local_mailbox_origin(s, box, &name, &local_only, &error) == 1);
	CHECK(!local_only && strcmp(name, "Lists") == 0);
	free(name);

	/* Device-only properties. */
	int sort = -1;
	bool sub = false;
	CHECK(store_local_mailbox_props(s, box, &sort, &sub, &error) == 0);
	m = store_modseq(s);
	OK(store_local_mailbox_set_props(s, box, 5, -1, &error));
	CHECK(store_modseq(s) == m + 1);
	CHECK(store_local_mailbox_props(s, box, &sort, &sub, &error) == 1 && sort == 5 && sub);
	OK(store_local_mailbox_set_props(s, box, -1, 0, &error));
	CHECK(store_local_mailbox_props(s, box, &sort, &sub, &error) == 1 && sort == 5 && !sub);

	/* Destroy: only empty; then the sync must not create it again. */
	int64_t b = blob(s, "Subject: s\r\n\r\ns\r\n");
	OK(store_message_add(s, sent, 1, b, 0, "", 1, &error));
	REFUSED(store_local_mailbox_destroy(s, sent, &error), "not empty");
	OK(store_local_destroy(s, id_of(s, sent, 1), &error));
	OK(store_local_mailbox_destroy(s, sent, &error));
	CHECK(store_local_mailbox_destroyed(s, acct, "Sent", &error) == 1);
	CHECK(store_local_mailbox_destroyed(s, acct, "Lists", &error) == 0);
	OK(store_local_mailbox_destroy(s, box, &error));
	CHECK(store_local_mailbox_destroyed(s, acct, "Lists", &error) == 1); /* its server name */
	CHECK(store_local_mailbox_destroyed(s, acct, "Lists3", &error) == 0);
	int64_t acct_r;
	char *key = NULL;
	CHECK(store_mailbox_account(s, made, &acct_r, &key, &error) == 1);
	CHECK(acct_r == acct && strcmp(key, "account:3") == 0);
	free(key);
	CHECK(store_mailbox_account(s, box, &acct_r, &key, &error) == 0);
	OK(store_commit(s, &error));

	/* Removing the account forgets its pending changes. */
	struct store_local_change *lc;
	size_t n, before = 0, after = 0;
	OK(store_local_changes(s, &lc, &n, &error));
	for (size_t i = 0; i < n; i++)
		before += lc[i].account_id == acct;
	store_local_changes_free(&lc, n);
	CHECK(before > 0);
	struct store_removal rm;
	OK(store_begin(s, &error));
	OK(store_account_remove(s, "account:3", &rm, &error));
	OK(store_commit(s, &error));
	OK(store_local_changes(s, &lc, &n, &error));
	for (size_t i = 0; i < n; i++)
		after += lc[i].account_id == acct;
	store_local_changes_free(&lc, n);
	CHECK(after == 0 && n > 0);

	struct store_changes ch;
	OK(store_changes(s, STORE_CHANGES_MAILBOX, 0, 1000, &ch, &error));
	bool gone = false;
	for (size_t i = 0; i < ch.n_destroyed; i++)
		gone |= ch.destroyed[i] == sent;
	CHECK(gone);
	store_changes_free(&ch);
	store_close(&s);
}

static void test_uploads(void)
{
	struct store *s;
	const char *error;
	uint64_t n;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t now = (int64_t)time(NULL);
	int64_t old = blob(s, "old upload"), used = blob(s, "Subject: used\r\n\r\nx\r\n");
	int64_t fresh = blob(s, "fresh upload");
	OK(store_upload_add(s, old, "text/plain", now - 2 * STORE_UPLOAD_TTL, &error));
	OK(store_upload_add(s, used, "message/rfc822", now - 2 * STORE_UPLOAD_TTL, &error));
	OK(store_upload_add(s, fresh, "text/plain", now, &error));
	int64_t acct, box, id;
	OK(store_account_ensure(s, "hub:local", &acct, &error));
	OK(store_mailbox_create(s, acct, "Imports", '/', NULL, &box, &error));
	OK(store_local_add(s, box, used, 0, "", now, "import", &id, &error));
	/* An upload's bytes stay while it is tracked, even when its message goes. */
	int64_t id2;
	OK(store_local_add(s, box, fresh, 0, "", now, "import", &id2, &error));
	OK(store_local_destroy(s, id2, &error));
	uint64_t size;
	CHECK(store_blob_size(s, fresh, &size, &error) == 1);
	OK(store_uploads_expire(s, now, &n, &error));
	CHECK(n == 2);
	CHECK(store_blob_size(s, old, &size, &error) == 0);
	CHECK(store_blob_size(s, used, &size, &error) == 1); /* a message uses it */
	CHECK(store_blob_size(s, fresh, &size, &error) == 1);
	OK(store_commit(s, &error));
	store_close(&s);
	/* Reopening expires nothing more, and the tables are there. */
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	OK(store_uploads_expire(s, now, &n, &error));
	CHECK(n == 0);
	OK(store_commit(s, &error));
	store_close(&s);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mk-test-store-local-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	test_messages();
	test_memberships();
	test_mailboxes();
	test_uploads();
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-store-local");
}
