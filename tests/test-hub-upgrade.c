/* Passwords stored by an older mailkeep (sealed in format 1, bound to no
 * server settings, in a hub.db without the newer columns and without
 * DIR/hub.anchor) keep working after the upgrade: the first open with the
 * master key tags them with the settings they have then, and the first use
 * re-seals them bound (format 2). An edit of the row after the upgrade stops
 * them from opening, as for passwords stored bound. Real SQLite, libsodium. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "test.h"

static char dir[64];

static void sql(const char *q)
{
	char path[128];
	sqlite3 *db;
	snprintf(path, sizeof(path), "%s/hub.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "sql: %s: %s\n", q, msg);
		exit(1);
	}
	sqlite3_free(msg);
	sqlite3_close(db);
}

static int sql_int(const char *q)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	snprintf(path, sizeof(path), "%s/hub.db", dir);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, q, -1, &st, NULL) == SQLITE_OK);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static int64_t add_account(struct hub *hub, const char *user, const char *passphrase,
                           const char *password)
{
	struct hub_user u;
	struct vault_kek *kek;
	const char *err;
	int64_t id = 0;
	CHECK(hub_user_get(hub, user, &u, &err) == 0);
	CHECK(hub_user_kek(hub, &u, passphrase, &kek, &err) == 0);
	CHECK(hub_account_add(hub, &u, kek, "imaps://127.0.0.1:993", NULL, "x@example.com", NULL,
	                      password, &id, &err) == 0);
	vault_kek_free(&kek);
	return id;
}

/* Replace the account's sealed password by a format-1 copy, as an older
 * mailkeep wrote it. */
static void make_legacy(const char *user, const char *passphrase, int64_t id, const char *password)
{
	char path[128], acct[32];
	const char *err;
	sqlite3 *db;
	sqlite3_stmt *st;
	struct vault_kek *kek = NULL;
	struct vault_data_key *key = NULL;
	unsigned char *blob;
	size_t blob_size;
	snprintf(path, sizeof(path), "%s/hub.db", dir);
	snprintf(acct, sizeof(acct), "%lld", (long long)id);
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db,
	                         "SELECT a.data_key, u.kdf FROM accounts a JOIN users u ON "
	                         "u.id = a.user_id WHERE a.id = ?1",
	                         -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	CHECK(sqlite3_step(st) == SQLITE_ROW);
	if (passphrase != NULL) {
		CHECK(vault_kek_from_passphrase(
		          passphrase, strlen(passphrase), sqlite3_column_blob(st, 1),
		          (size_t)sqlite3_column_bytes(st, 1), &kek, &err) == 0);
	} else {
		struct vault_master *master;
		char key_path[128];
		snprintf(key_path, sizeof(key_path), "%s/master.key", dir);
		CHECK(vault_master_load(key_path, &master, &err) == 0);
		CHECK(vault_kek_from_master(master, &kek, &err) == 0);
		vault_master_free(&master);
	}
	CHECK(vault_data_key_unwrap(kek, sqlite3_column_blob(st, 0),
	                            (size_t)sqlite3_column_bytes(st, 0), user, acct, 1, &key,
	                            &err) == 0);
	sqlite3_finalize(st);
	CHECK(vault_seal_secret(key, user, acct, "imap-password", 1, password, strlen(password),
	                        &blob, &blob_size, &err) == 0);
	CHECK(sqlite3_prepare_v2(db,
	                         "UPDATE secrets SET blob = ?2 WHERE account_id = ?1 AND kind = "
	                         "'imap-password'",
	                         -1, &st, NULL) == SQLITE_OK);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, blob, (int)blob_size, SQLITE_STATIC);
	CHECK(sqlite3_step(st) == SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(blob);
	vault_data_key_free(&key);
	vault_kek_free(&kek);
}

static int open_secret(struct hub *hub, const char *user, int64_t id, const char *passphrase,
                       char **secret_r, const char **err)
{
	struct hub_user u;
	struct hub_account *a;
	size_t n;
	struct vault_kek *kek = NULL;
	int r = -1;
	if (hub_user_get(hub, user, &u, err) < 0 || hub_account_list(hub, u.id, &a, &n, err) < 0)
		return -1;
	*err = "no such account";
	for (size_t i = 0; i < n; i++)
		if (a[i].id == id && hub_user_kek(hub, &u, passphrase, &kek, err) == 0)
			r = hub_account_open_secret(hub, &u, &a[i], kek, "imap-password", secret_r,
			                            err);
	vault_kek_free(&kek);
	hub_accounts_free(&a, n);
	return r;
}

static void expect_open(struct hub *hub, const char *user, int64_t id, const char *passphrase,
                        const char *want, const char *error_fragment)
{
	char *secret = NULL;
	const char *err = "";
	int r = open_secret(hub, user, id, passphrase, &secret, &err);
	if (want != NULL) {
		if (r != 0)
			fprintf(stderr, "open %lld: %s\n", (long long)id, err);
		CHECK(r == 0 && strcmp(secret, want) == 0);
	} else {
		CHECK(r < 0 && secret == NULL);
		if (strstr(err, error_fragment) == NULL) {
			fprintf(stderr, "error '%s' lacks '%s'\n", err, error_fragment);
			exit(1);
		}
	}
	vault_secret_free(&secret);
}

int main(void)
{
	const char *err;
	bool existed;
	struct hub *hub;
	char q[512], anchor[128];
	snprintf(dir, sizeof(dir), "/tmp/mk-test-upgrade-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	CHECK(rmdir(dir) == 0);
	CHECK(hub_create(dir, NULL, &existed, &err) == 0);
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	CHECK(hub_user_add(hub, "alice", NULL, false, NULL, &err) == 0);
	CHECK(hub_user_add(hub, "zed", NULL, true, "correct horse", &err) == 0);
	int64_t a1 = add_account(hub, "alice", NULL, "canary-one");
	int64_t a2 = add_account(hub, "alice", NULL, "canary-two");
	int64_t z1 = add_account(hub, "zed", "correct horse", "canary-zed");
	hub_close(&hub);

	/* What an older mailkeep left: format-1 blobs, no anchor, no new
	 * columns. */
	make_legacy("alice", NULL, a1, "canary-one");
	make_legacy("alice", NULL, a2, "canary-two");
	make_legacy("zed", "correct horse", z1, "canary-zed");
	snprintf(anchor, sizeof(anchor), "%s/hub.anchor", dir);
	CHECK(unlink(anchor) == 0);
	sql("ALTER TABLE secrets DROP COLUMN legacy_tag; ALTER TABLE users DROP COLUMN "
	    "audit_pending");

	/* A hub opened without the master key changes nothing of it. */
	CHECK(hub_open(dir, false, &hub, &err) == 0);
	hub_close(&hub);
	CHECK(access(anchor, F_OK) < 0);

	/* The upgrade: everything still opens, and is re-sealed bound. */
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	CHECK(access(anchor, F_OK) == 0);
	CHECK(sql_int("SELECT count(*) FROM secrets WHERE legacy_tag IS NOT NULL") == 3);
	expect_open(hub, "alice", a1, NULL, "canary-one", NULL);
	expect_open(hub, "zed", z1, "correct horse", "canary-zed", NULL);
	snprintf(q, sizeof(q),
	         "SELECT hex(substr(blob, 1, 1)) = '02' AND legacy_tag IS NULL FROM secrets WHERE "
	         "account_id = %lld",
	         (long long)a1);
	CHECK(sql_int(q) == 1);
	expect_open(hub, "alice", a1, NULL, "canary-one", NULL); /* bound now */
	expect_open(hub, "zed", z1, "correct horse", "canary-zed", NULL);

	/* A format-1 password not used yet: an edit of its row after the
	 * upgrade stops it, like any bound one, and a later upgrade pass does
	 * not tag it again with the edited row. */
	snprintf(q, sizeof(q),
	         "UPDATE accounts SET imap_url = 'imaps://127.0.0.1:1' WHERE id = %lld",
	         (long long)a2);
	sql(q);
	expect_open(hub, "alice", a2, NULL, NULL, "server settings");
	hub_close(&hub);
	snprintf(q, sizeof(q), "UPDATE secrets SET legacy_tag = NULL WHERE account_id = %lld",
	         (long long)a2);
	sql(q);
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	expect_open(hub, "alice", a2, NULL, NULL, "re-enter it");
	/* Its owner stores it again for the settings it now has. */
	{
		struct hub_user u;
		struct hub_account *a;
		size_t n;
		struct vault_kek *kek;
		CHECK(hub_user_get(hub, "alice", &u, &err) == 0);
		CHECK(hub_account_list(hub, u.id, &a, &n, &err) == 0 && n == 2);
		CHECK(hub_user_kek(hub, &u, NULL, &kek, &err) == 0);
		CHECK(hub_account_set_password(hub, &u, &a[1], kek, "canary-new", &err) == 0);
		vault_kek_free(&kek);
		hub_accounts_free(&a, n);
	}
	expect_open(hub, "alice", a2, NULL, "canary-new", NULL);
	hub_close(&hub);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("test-hub-upgrade");
}
