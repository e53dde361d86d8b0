/* Unit tests of the hub records and the credential handling around them:
 * tamper detection, zero-access, master key checks. Real SQLite, real
 * libsodium. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
		test_failures++;
	}
	sqlite3_free(msg);
	sqlite3_close(db);
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
	*err = "no such account key";
	for (size_t i = 0; i < n; i++)
		if (a[i].id == id && hub_user_kek(hub, &u, passphrase, &kek, err) == 0)
			r = hub_account_open_secret(hub, &u, &a[i], kek, "imap-password", secret_r,
			                            err);
	vault_kek_free(&kek);
	hub_accounts_free(&a, n);
	return r;
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
	CHECK(hub_account_add(hub, &u, kek, "imaps://h", "submissions://h", "x@h", NULL, password,
	                      &id, &err) == 0);
	vault_kek_free(&kek);
	return id;
}

static void expect_open(struct hub *hub, const char *user, int64_t id, const char *passphrase,
                        const char *expect)
{
	char *secret = NULL;
	const char *err = "";
	int r = open_secret(hub, user, id, passphrase, &secret, &err);
	if (expect != NULL) {
		CHECK(r == 0 && secret != NULL && strcmp(secret, expect) == 0);
	} else {
		CHECK(r < 0 && secret == NULL);
		CHECK(strstr(err, "canary") == NULL); /* no secret in errors */
		bool clear =
		    strstr(err, "sealed credential") != NULL || strstr(err, "passphrase") != NULL ||
		    strstr(err, "zero-access") != NULL || strstr(err, "key") != NULL ||
		    strstr(err, "unlock") != NULL || strstr(err, "server settings") != NULL ||
		    strstr(err, "rolled back") != NULL;
		if (!clear)
			fprintf(stderr, "unclear error: %s\n", err);
		CHECK(clear);
	}
	vault_secret_free(&secret);
}

int main(void)
{
	const char *err;
	bool existed;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-hub-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	CHECK(hub_create(dir, NULL, &existed, &err) == 0 && !existed);
	CHECK(hub_create(dir, NULL, &existed, &err) == 0 && existed); /* leaves it alone */
	struct hub *hub;
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	CHECK(hub_user_add(hub, "alice", "pw-alice", false, NULL, &err) == 0);
	CHECK(hub_user_add(hub, "alice", "pw", false, NULL, &err) < 0); /* exists */
	CHECK(hub_user_add(hub, "../x", "pw", false, NULL, &err) < 0);
	CHECK(hub_user_add(hub, "zed", "correct horse", true, "correct horse", &err) == 0);
	int64_t a1 = add_account(hub, "alice", NULL, "canary-one");
	int64_t a2 = add_account(hub, "alice", NULL, "canary-two");
	int64_t z1 = add_account(hub, "zed", "correct horse", "canary-zed");
	expect_open(hub, "alice", a1, NULL, "canary-one");
	expect_open(hub, "alice", a2, NULL, "canary-two");

	/* Passwords. */
	struct hub_user u;
	CHECK(hub_user_get(hub, "alice", &u, &err) == 0);
	CHECK(hub_user_check_password(hub, &u, "pw-alice", &err) == 0);
	CHECK(hub_user_check_password(hub, &u, "wrong", &err) < 0);

	/* Zero-access: without the passphrase, with a wrong one, and with the
	 * master key's KEK (what the server alone could try), it stays shut. */
	expect_open(hub, "zed", z1, "correct horse", "canary-zed");
	expect_open(hub, "zed", z1, NULL, NULL);
	expect_open(hub, "zed", z1, "wrong horse", NULL);
	{
		struct hub_user z;
		struct hub_account *a;
		size_t n;
		struct vault_kek *master_kek = NULL;
		char *secret = NULL;
		CHECK(hub_user_get(hub, "zed", &z, &err) == 0);
		CHECK(hub_account_list(hub, z.id, &a, &n, &err) == 0 && n == 1);
		struct hub_user pretend = z;
		pretend.zero_access = false; /* master-derived KEK */
		CHECK(hub_user_kek(hub, &pretend, NULL, &master_kek, &err) == 0);
		CHECK(hub_account_open_secret(hub, &z, &a[0], master_kek, "imap-password", &secret,
		                              &err) < 0);
		CHECK(secret == NULL);
		vault_kek_free(&master_kek);
		hub_accounts_free(&a, n);
	}

	/* Tampering: a flipped bit in nonce, ciphertext or tag. */
	char q[512];
	/* binding copy, nonce, ciphertext, tag (last byte) */
	static const int offsets[] = {1, 33, 57, -1};
	for (int i = 0; i < 4; i++) {
		/* Flip the bit in C (SQLite has no byte-level blob edit). */
		sqlite3 *db;
		char path[128];
		snprintf(path, sizeof(path), "%s/hub.db", dir);
		CHECK(sqlite3_open(path, &db) == SQLITE_OK);
		sqlite3_stmt *st;
		CHECK(sqlite3_prepare_v2(db,
		                         "SELECT blob FROM secrets WHERE account_id = ?1 AND "
		                         "kind = 'imap-password'",
		                         -1, &st, NULL) == SQLITE_OK);
		sqlite3_bind_int64(st, 1, a1);
		CHECK(sqlite3_step(st) == SQLITE_ROW);
		int len = sqlite3_column_bytes(st, 0);
		unsigned char *blob = malloc((size_t)len), *orig = malloc((size_t)len);
		memcpy(blob, sqlite3_column_blob(st, 0), (size_t)len);
		memcpy(orig, blob, (size_t)len);
		sqlite3_finalize(st);
		int off = offsets[i] < 0 ? len + offsets[i] : offsets[i];
		blob[off] ^= 0x01;
		sqlite3_stmt *up;
		CHECK(sqlite3_prepare_v2(db,
		                         "UPDATE secrets SET blob = ?2 WHERE account_id = ?1 AND "
		                         "kind = 'imap-password'",
		                         -1, &up, NULL) == SQLITE_OK);
		sqlite3_bind_int64(up, 1, a1);
		sqlite3_bind_blob(up, 2, blob, len, SQLITE_STATIC);
		CHECK(sqlite3_step(up) == SQLITE_DONE);
		sqlite3_reset(up);
		expect_open(hub, "alice", a1, NULL, NULL);
		expect_open(hub, "alice", a2, NULL, "canary-two"); /* others keep working */
		sqlite3_bind_int64(up, 1, a1);
		sqlite3_bind_blob(up, 2, orig, len, SQLITE_STATIC);
		CHECK(sqlite3_step(up) == SQLITE_DONE);
		sqlite3_finalize(up);
		sqlite3_close(db);
		free(blob);
		free(orig);
		expect_open(hub, "alice", a1, NULL, "canary-one");
	}

	/* A sealed blob moved to another account. */
	snprintf(q, sizeof(q),
	         "UPDATE secrets SET blob = (SELECT blob FROM secrets WHERE account_id = %lld AND "
	         "kind = 'imap-password') WHERE account_id = %lld AND kind = 'imap-password'",
	         (long long)a2, (long long)a1);
	sql(q);
	expect_open(hub, "alice", a1, NULL, NULL);
	/* A data key moved as well still does not open: the key is bound too. */
	snprintf(q, sizeof(q),
	         "UPDATE accounts SET data_key = (SELECT data_key FROM accounts WHERE id = %lld) "
	         "WHERE id = %lld",
	         (long long)a2, (long long)a1);
	sql(q);
	expect_open(hub, "alice", a1, NULL, NULL);

	/* An older copy put back after a password change. */
	int64_t a3 = add_account(hub, "alice", NULL, "canary-old");
	snprintf(q, sizeof(q),
	         "CREATE TABLE old AS SELECT blob FROM secrets WHERE account_id = %lld AND kind = "
	         "'imap-password'",
	         (long long)a3);
	sql(q);
	{
		struct hub_account *a;
		size_t n;
		struct vault_kek *kek;
		CHECK(hub_account_list(hub, u.id, &a, &n, &err) == 0);
		CHECK(hub_user_kek(hub, &u, NULL, &kek, &err) == 0);
		for (size_t i = 0; i < n; i++)
			if (a[i].id == a3)
				CHECK(hub_account_set_password(hub, &u, &a[i], kek, "canary-new",
				                               &err) == 0);
		vault_kek_free(&kek);
		hub_accounts_free(&a, n);
	}
	expect_open(hub, "alice", a3, NULL, "canary-new");
	snprintf(q, sizeof(q),
	         "UPDATE secrets SET blob = (SELECT blob FROM old) WHERE account_id = %lld AND "
	         "kind = 'imap-password'",
	         (long long)a3);
	sql(q);
	expect_open(hub, "alice", a3, NULL, NULL);

	/* Devices: a token shown once, stored hashed, revocable. */
	{
		char token[HUB_DEVICE_TOKEN_SIZE], token2[HUB_DEVICE_TOKEN_SIZE];
		int64_t dev, dev2;
		struct hub_user who;
		struct hub_device d;
		CHECK(hub_device_add(hub, &u, "phone", token, &dev, &err) == 0);
		CHECK(strncmp(token, "mk_", 3) == 0 && strlen(token) == HUB_DEVICE_TOKEN_SIZE - 1);
		CHECK(hub_device_add(hub, &u, "phone", token2, &dev2, &err) < 0); /* same name */
		CHECK(hub_device_add(hub, &u, "bad name", token2, &dev2, &err) < 0);
		CHECK(hub_device_add(hub, &u, "laptop", token2, &dev2, &err) == 0);
		CHECK(strcmp(token, token2) != 0);
		CHECK(hub_device_auth(hub, token, &who, &d, &err) == 0);
		CHECK(who.id == u.id && d.id == dev && strcmp(d.name, "phone") == 0);
		token[10] ^= 1;
		CHECK(hub_device_auth(hub, token, &who, &d, &err) < 0);
		token[10] ^= 1;
		CHECK(hub_device_auth(hub, "mk_short", &who, &d, &err) < 0);
		int64_t revoked;
		CHECK(hub_device_revoke(hub, &u, "phone", &revoked, &err) == 0 && revoked == dev);
		CHECK(hub_device_auth(hub, token, &who, &d, &err) < 0);
		CHECK(hub_device_auth(hub, token2, &who, &d, &err) == 0);
		CHECK(hub_device_revoke(hub, &u, "phone", &revoked, &err) < 0);
		/* The table holds no token, only its hash. */
		char path[128];
		snprintf(path, sizeof(path), "%s/hub.db", dir);
		FILE *f = fopen(path, "rb");
		char *buf = malloc(1 << 20);
		size_t n = fread(buf, 1, 1 << 20, f);
		fclose(f);
		CHECK(memmem(buf, n, token2, strlen(token2)) == NULL);
		free(buf);
	}

	/* Removal deletes the secrets. */
	unsigned removed = 0;
	CHECK(hub_account_remove(hub, a2, &removed, &err) == 0 && removed == 2);
	expect_open(hub, "alice", a2, NULL, NULL);
	hub_close(&hub);

	/* Master key: missing, damaged, or another valid key: refused, and
	 * nothing is overwritten. */
	char key[128], saved[128], cmd[512];
	snprintf(key, sizeof(key), "%s/master.key", dir);
	snprintf(saved, sizeof(saved), "%s/master.key.saved", dir);
	CHECK(rename(key, saved) == 0);
	CHECK(hub_open(dir, true, &hub, &err) < 0 && strstr(err, "master key") != NULL);
	CHECK(access(key, F_OK) < 0); /* not recreated */
	CHECK(vault_master_create(key, NULL, &err) == 0);
	CHECK(hub_open(dir, true, &hub, &err) < 0 && strstr(err, "does not match") != NULL);
	snprintf(cmd, sizeof(cmd),
	         "cp %s %s && printf 'g' | dd of=%s bs=1 seek=30 conv=notrunc 2>/dev/null", saved,
	         key, key);
	CHECK(system(cmd) == 0);
	CHECK(hub_open(dir, true, &hub, &err) < 0 && strstr(err, "damaged") != NULL);
	CHECK(rename(saved, key) == 0);
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	hub_close(&hub);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("test-hub");
}
