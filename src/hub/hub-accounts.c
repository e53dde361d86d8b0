/* External accounts with their wrapped data key and sealed credentials. */
#include "hub-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void account_name(int64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "%lld", (long long)id);
}

static int seal_into(struct hub *hub, const struct hub_user *user, int64_t account_id,
		     const struct vault_data_key *key, const char *kind, uint64_t version,
		     const char *secret, const char **error_r)
{
	const char *err;
	char acct[32];
	unsigned char *blob;
	size_t blob_size;
	account_name(account_id, acct, sizeof(acct));
	if (vault_seal_secret(key, user->name, acct, kind, version, secret, strlen(secret), &blob,
			      &blob_size, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	sqlite3_stmt *st;
	int r = hub_prepare(hub,
			    "INSERT OR REPLACE INTO secrets(account_id, kind, blob) "
			    "VALUES (?1, ?2, ?3)",
			    &st, error_r);
	if (r == 0) {
		sqlite3_bind_int64(st, 1, account_id);
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, blob, (int)blob_size, SQLITE_STATIC);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "store secret");
		sqlite3_finalize(st);
	}
	free(blob);
	return r;
}

int hub_account_add(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
		    const char *imap_url, const char *smtp_url, const char *login,
		    const char *ca_file, const char *password, int64_t *account_id_r,
		    const char **error_r)
{
	const char *err;
	struct vault_data_key *key = NULL;
	unsigned char wrapped[VAULT_WRAPPED_KEY_SIZE];
	const uint64_t key_version = 1, secret_version = 1;
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	if (vault_data_key_new(&key, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		goto fail;
	/* The row first (its id is bound into the key's and secrets' associated
	 * data), then the wrapped key and the sealed secrets. */
	if (hub_prepare(hub,
			"INSERT INTO accounts(user_id, imap_url, smtp_url, login, ca_file, created, "
			"data_key, key_version, secret_version) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, zeroblob(1), ?7, ?8)",
			&st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, user->id);
	sqlite3_bind_text(st, 2, imap_url, -1, SQLITE_STATIC);
	if (smtp_url != NULL)
		sqlite3_bind_text(st, 3, smtp_url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, login, -1, SQLITE_STATIC);
	if (ca_file != NULL)
		sqlite3_bind_text(st, 5, ca_file, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, time(NULL));
	sqlite3_bind_int64(st, 7, (sqlite3_int64)key_version);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)secret_version);
	if (sqlite3_step(st) != SQLITE_DONE) {
		hub_db_fail(hub, error_r, "add account");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	id = sqlite3_last_insert_rowid(hub->db);
	char acct[32];
	account_name(id, acct, sizeof(acct));
	if (vault_data_key_wrap(kek, key, user->name, acct, key_version, wrapped, &err) < 0) {
		hub_fail(hub, error_r, "%s", err);
		goto fail;
	}
	if (hub_prepare(hub, "UPDATE accounts SET data_key = ?2 WHERE id = ?1", &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, wrapped, sizeof(wrapped), SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		hub_db_fail(hub, error_r, "store data key");
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (seal_into(hub, user, id, key, "imap-password", secret_version, password, error_r) < 0 ||
	    (smtp_url != NULL && seal_into(hub, user, id, key, "smtp-password", secret_version,
					   password, error_r) < 0) ||
	    hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	vault_data_key_free(&key);
	*account_id_r = id;
	return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	vault_data_key_free(&key);
	return -1;
}

int hub_account_set_password(struct hub *hub, const struct hub_user *user,
			     const struct hub_account *account, const struct vault_kek *kek,
			     const char *password, const char **error_r)
{
	const char *err = NULL;
	char acct[32];
	account_name(account->id, acct, sizeof(acct));
	struct vault_data_key *key = NULL;
	sqlite3_stmt *st;
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (hub_prepare(hub, "SELECT data_key FROM accounts WHERE id = ?1", &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, account->id);
	int r = -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		r = vault_data_key_unwrap(kek, sqlite3_column_blob(st, 0),
					  (size_t)sqlite3_column_bytes(st, 0), user->name, acct,
					  account->key_version, &key, &err);
	sqlite3_finalize(st);
	if (r < 0) {
		hub_fail(hub, error_r, "account %s: %s", acct, err != NULL ? err : "not found");
		goto fail;
	}
	uint64_t version = account->secret_version + 1;
	if (hub_prepare(hub, "UPDATE accounts SET secret_version = ?2 WHERE id = ?1", &st,
			error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, account->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)version);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (r < 0) {
		hub_db_fail(hub, error_r, "bump secret version");
		goto fail;
	}
	if (seal_into(hub, user, account->id, key, "imap-password", version, password, error_r) <
		    0 ||
	    (account->smtp_url != NULL && seal_into(hub, user, account->id, key, "smtp-password",
						    version, password, error_r) < 0) ||
	    hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	vault_data_key_free(&key);
	return 0;
fail:
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	vault_data_key_free(&key);
	return -1;
}

static char *dup_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return t != NULL ? strdup((const char *)t) : NULL;
}

int hub_account_list(struct hub *hub, int64_t user_id, struct hub_account **accounts_r,
		     size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
			"SELECT id, user_id, imap_url, smtp_url, login, ca_file, created, "
			"secret_version, key_version FROM accounts WHERE user_id = ?1 ORDER BY id",
			&st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	struct hub_account *a = NULL;
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hub_account *n = realloc(a, (count + 1) * sizeof(*a));
		if (n == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		a = n;
		struct hub_account *x = &a[count++];
		memset(x, 0, sizeof(*x));
		x->id = sqlite3_column_int64(st, 0);
		x->user_id = sqlite3_column_int64(st, 1);
		x->imap_url = dup_text(st, 2);
		x->smtp_url = dup_text(st, 3);
		x->login = dup_text(st, 4);
		x->ca_file = dup_text(st, 5);
		x->created = sqlite3_column_int64(st, 6);
		x->secret_version = (uint64_t)sqlite3_column_int64(st, 7);
		x->key_version = (uint64_t)sqlite3_column_int64(st, 8);
		if (x->imap_url == NULL || x->login == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		hub_accounts_free(&a, count);
		return hub_db_fail(hub, error_r, "list accounts");
	}
	*accounts_r = a;
	*count_r = count;
	return 0;
}

void hub_accounts_free(struct hub_account **accounts, size_t count)
{
	if (*accounts == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*accounts)[i].imap_url);
		free((*accounts)[i].smtp_url);
		free((*accounts)[i].login);
		free((*accounts)[i].ca_file);
	}
	free(*accounts);
	*accounts = NULL;
}

int hub_account_open_secret(struct hub *hub, const struct hub_user *user,
			    const struct hub_account *account, const struct vault_kek *kek,
			    const char *kind, char **secret_r, const char **error_r)
{
	const char *err = NULL;
	char acct[32];
	account_name(account->id, acct, sizeof(acct));
	sqlite3_stmt *st;
	if (hub_prepare(hub,
			"SELECT a.data_key, s.blob FROM accounts a JOIN secrets s "
			"ON s.account_id = a.id WHERE a.id = ?1 AND s.kind = ?2",
			&st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account->id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	int r = -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		struct vault_data_key *key = NULL;
		size_t secret_size;
		if (vault_data_key_unwrap(kek, sqlite3_column_blob(st, 0),
					  (size_t)sqlite3_column_bytes(st, 0), user->name, acct,
					  account->key_version, &key, &err) == 0 &&
		    vault_open_secret(key, user->name, acct, kind, account->secret_version,
				      sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
				      secret_r, &secret_size, &err) == 0)
			r = 0;
		vault_data_key_free(&key);
	} else {
		err = "no such credential stored";
	}
	sqlite3_finalize(st);
	if (r < 0)
		return hub_fail(hub, error_r, "account %s of %s: %s", acct, user->name, err);
	return 0;
}

/* Run the statements (each bound to account_id) in one transaction, then
 * checkpoint hub.db's WAL into the database and truncate it: secure_delete
 * zeroed the freed pages, so no copy is left in the log either. The
 * changes of the first statement go to *changes_r. An optional receipt is
 * inserted in the same transaction. */
static int remove_in_txn(struct hub *hub, int64_t account_id, const char *const *sql, size_t n,
			 int64_t user_id, const char *receipt, unsigned *changes_r,
			 const char **error_r)
{
	unsigned changes = 0;
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		sqlite3_stmt *st;
		if (hub_prepare(hub, sql[i], &st, error_r) < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, account_id);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			hub_db_fail(hub, error_r, "remove account");
			goto fail;
		}
		if (i == 0)
			changes = (unsigned)sqlite3_changes(hub->db);
	}
	if (receipt != NULL && hub_receipt_add(hub, user_id, receipt, error_r) < 0)
		goto fail;
	if (hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	if (hub_exec(hub, "PRAGMA wal_checkpoint(TRUNCATE)", error_r) < 0)
		return -1;
	if (changes_r != NULL)
		*changes_r = changes;
	return 0;
fail:
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int hub_account_remove_secrets(struct hub *hub, int64_t account_id, unsigned *secrets_r,
			       const char **error_r)
{
	static const char *const sql[] = {
		"DELETE FROM secrets WHERE account_id = ?1",
		"DELETE FROM consents WHERE account_id = ?1",
	};
	return remove_in_txn(hub, account_id, sql, 2, 0, NULL, secrets_r, error_r);
}

int hub_account_remove_finish(struct hub *hub, int64_t account_id, int64_t user_id,
			      const char *receipt, const char **error_r)
{
	static const char *const sql[] = {
		"DELETE FROM secrets WHERE account_id = ?1",
		"DELETE FROM consents WHERE account_id = ?1",
		"DELETE FROM accounts WHERE id = ?1",
	};
	return remove_in_txn(hub, account_id, sql, 3, user_id, receipt, NULL, error_r);
}

int hub_account_remove(struct hub *hub, int64_t account_id, unsigned *secrets_r,
		       const char **error_r)
{
	static const char *const sql[] = {
		"DELETE FROM secrets WHERE account_id = ?1",
		"DELETE FROM consents WHERE account_id = ?1",
		"DELETE FROM accounts WHERE id = ?1",
	};
	return remove_in_txn(hub, account_id, sql, 3, 0, NULL, secrets_r, error_r);
}

int hub_consent_record(struct hub *hub, int64_t user_id, int64_t account_id,
		       const char *disclosure_id, const char *tool, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
			"INSERT INTO consents(user_id, account_id, time, disclosure_id, tool) "
			"VALUES (?1, ?2, ?3, ?4, ?5)",
			&st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, account_id);
	sqlite3_bind_int64(st, 3, time(NULL));
	sqlite3_bind_text(st, 4, disclosure_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, tool, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "record consent");
}

int hub_receipt_add(struct hub *hub, int64_t user_id, const char *text, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "INSERT INTO receipts(user_id, time, text) VALUES (?1, ?2, ?3)", &st,
			error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, time(NULL));
	sqlite3_bind_text(st, 3, text, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "record receipt");
}

int hub_receipt_find(struct hub *hub, int64_t user_id, const char *prefix, char **text_r,
		     const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
			"SELECT text FROM receipts WHERE user_id = ?1 AND substr(text, 1, ?3) = ?2 "
			"ORDER BY time DESC, rowid DESC LIMIT 1",
			&st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, prefix, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)strlen(prefix));
	int rc = sqlite3_step(st);
	int r = 0;
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 0);
		*text_r = strdup(t != NULL ? (const char *)t : "");
		r = *text_r != NULL ? 1 : hub_fail(hub, error_r, "out of memory");
	} else if (rc != SQLITE_DONE) {
		r = hub_db_fail(hub, error_r, "find receipt");
	}
	sqlite3_finalize(st);
	return r;
}
