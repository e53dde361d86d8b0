/* Unit tests of the provider columns (store-provider.c): added in place to
 * a store that lacks them, Emails found by X-GM-MSGID within their account
 * only, Gmail threads merged, the budget and the plain-tier scan record. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store/store-accounts.h"
#include "store/store-private.h"
#include "store/store-provider.h"
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

static int64_t query(struct store *s, const char *sql)
{
	sqlite3_stmt *st;
	int64_t v = -1;
	CHECK(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int main(void)
{
	const char *error;
	struct store *s;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-store-provider-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);

	/* A store from before the provider columns: they are added in place,
	 * with what was there kept. */
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, other, inbox, work, box2;
	OK(store_account_ensure(s, "account:1", &acct, &error));
	OK(store_account_ensure(s, "account:2", &other, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', NULL, &inbox, &error));
	OK(store_mailbox_create(s, acct, "Work", '/', NULL, &work, &error));
	OK(store_mailbox_create(s, other, "INBOX", '/', NULL, &box2, &error));
	int64_t b1 = blob(s, "Subject: one\r\n\r\none\r\n");
	OK(store_message_add(s, inbox, 1, b1, 0, "", 0, &error));
	OK(store_commit(s, &error));
	store_close(&s);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
	                   "DROP INDEX emails_gm_msgid; DROP INDEX emails_gm_thrid;"
	                   "ALTER TABLE emails DROP COLUMN gm_msgid;"
	                   "ALTER TABLE emails DROP COLUMN gm_thrid;"
	                   "ALTER TABLE accounts DROP COLUMN dl_budget;"
	                   "ALTER TABLE accounts DROP COLUMN last_sync_at;"
	                   "ALTER TABLE mailboxes DROP COLUMN plain_scan_at;",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	OK(store_open(path, &s, &error));
	CHECK(query(s, "SELECT count(*) FROM messages") == 1);
	CHECK(
	    query(s, "SELECT count(*) FROM pragma_table_info('emails') WHERE name = 'gm_msgid'") ==
	    1);
	struct store_provider_state p;
	OK(store_provider_get(s, acct, &p, &error));
	CHECK(p.dl_budget == -1 && !p.gm_ext && p.dl_used == 0);

	/* X-GM-MSGID: found from any mailbox of its account, not another's. */
	OK(store_begin(s, &error));
	OK(store_gmail_set_msgid(s, inbox, 1, 42, &error));
	int64_t found = 0;
	CHECK(store_gmail_find(s, work, 42, &found, &error) == 1 && found == b1);
	CHECK(store_gmail_find(s, box2, 42, &found, &error) == 0);
	CHECK(store_gmail_find(s, inbox, 43, &found, &error) == 0);
	OK(store_message_add(s, work, 7, b1, 0, "", 0, &error));
	CHECK(query(s, "SELECT count(*) FROM emails") == 1);
	CHECK(store_message_held(s, work, 7, &error) == 1);
	CHECK(store_message_held(s, work, 8, &error) == 0);

	/* X-GM-THRID: an Email with unrelated headers joins the thread. */
	int64_t b2 = blob(s, "Subject: other\r\nMessage-ID: <x@y>\r\n\r\ntwo\r\n");
	OK(store_message_add(s, inbox, 2, b2, 0, "", 0, &error));
	OK(store_gmail_set_thread(s, inbox, 1, 900, &error));
	CHECK(query(s, "SELECT count(DISTINCT thread_id) FROM emails") == 2);
	OK(store_gmail_set_thread(s, inbox, 2, 900, &error));
	CHECK(query(s, "SELECT count(DISTINCT thread_id) FROM emails") == 1);
	CHECK(query(s, "SELECT count(*) FROM threads") == 1);
	CHECK(query(s, "SELECT count(*) FROM tombstones WHERE kind = 'thread'") == 1);

	/* Budget and progress; the plain-tier scan record. */
	OK(store_provider_set_budget(s, acct, 5000, &error));
	p.gm_ext = true;
	p.dl_day = 20000;
	p.dl_used = 1234;
	p.paced = true;
	OK(store_provider_put(s, acct, &p, &error));
	struct store_plain_scan scan = {.at = 1700000000, .messages = 50000, .unseen = 7}, got;
	OK(store_plain_scan_set(s, inbox, &scan, &error));
	OK(store_commit(s, &error));
	struct store_provider_state q;
	OK(store_provider_get(s, acct, &q, &error));
	CHECK(q.dl_budget == 5000 && q.gm_ext && q.dl_day == 20000 && q.dl_used == 1234 && q.paced);
	OK(store_plain_scan_get(s, inbox, &got, &error));
	CHECK(got.at == 1700000000 && got.messages == 50000 && got.unseen == 7);
	OK(store_plain_scan_get(s, work, &got, &error));
	CHECK(got.at == 0);
	uint64_t n = 0;
	OK(store_account_server_messages(s, acct, &n, &error));
	CHECK(n == 3);

	/* The sync status (ExternalAccount/get): nothing yet; a failure keeps
	 * the last good sync; a good sync clears the error; an account not in
	 * the store yet is made; it survives a reopen. */
	struct store_account_status st;
	OK(store_account_status_get(s, acct, &st, &error));
	CHECK(st.synced_at == 0 && st.failed_at == 0 && st.error[0] == '\0');
	OK(store_account_status_set(s, "account:1", 1700000100, NULL, &error));
	OK(store_account_status_set(s, "account:1", 1700000200, "authentication failed", &error));
	OK(store_account_status_get(s, acct, &st, &error));
	CHECK(st.synced_at == 1700000100 && st.failed_at == 1700000200 &&
	      strcmp(st.error, "authentication failed") == 0);
	OK(store_account_status_get(s, other, &st, &error));
	CHECK(st.synced_at == 0 && st.failed_at == 0);
	OK(store_account_status_set(s, "account:1", 1700000300, NULL, &error));
	OK(store_account_status_get(s, acct, &st, &error));
	CHECK(st.synced_at == 1700000300 && st.failed_at == 0 && st.error[0] == '\0');
	char longer[3000];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	OK(store_account_status_set(s, "account:9", 1700000400, longer, &error));
	int64_t nine = 0;
	CHECK(store_account_find(s, "account:9", &nine, &error) == 1);
	store_close(&s);
	OK(store_open(path, &s, &error));
	OK(store_account_status_get(s, nine, &st, &error));
	CHECK(st.synced_at == 0 && st.failed_at == 1700000400 &&
	      strlen(st.error) == STORE_ACCOUNT_ERROR_SIZE - 1);
	OK(store_account_status_get(s, acct, &st, &error));
	CHECK(st.synced_at == 1700000300);
	store_close(&s);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-store-provider");
}
