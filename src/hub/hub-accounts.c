/* External accounts with their wrapped data key and sealed credentials. */
#include "hub-private.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void account_name(int64_t id, char *buf, size_t size)
{
	snprintf(buf, size, "%lld", (long long)id);
}

#define CA_FILE_MAX_SIZE (1024 * 1024)

/* SHA-256 of the CA file's contents, in hex. */
static int ca_file_sha256(struct hub *hub, const char *path, char hex[65], const char **error_r)
{
	unsigned char md[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	unsigned char buf[8192];
	size_t total = 0, n;
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return hub_fail(hub, error_r, "cannot read the account's CA file %s: %m", path);
	crypto_hash_sha256_init(&st);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		total += n;
		if (total > CA_FILE_MAX_SIZE) {
			fclose(f);
			return hub_fail(hub, error_r,
			                "the account's CA file %s is larger than %d bytes", path,
			                CA_FILE_MAX_SIZE);
		}
		crypto_hash_sha256_update(&st, buf, n);
	}
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad)
		return hub_fail(hub, error_r, "cannot read the account's CA file %s", path);
	crypto_hash_sha256_final(&st, md);
	sodium_bin2hex(hex, 65, md, sizeof(md));
	return 0;
}

/*
 * The binding of an account's sealed secrets: everything that decides where
 * they are sent. A secret opens only while all of it is what it was when the
 * secret was stored, so editing hub.db cannot send a password elsewhere.
 * Layout 1 (named in the first field; a later layout, e.g. with OAuth
 * endpoints, gets "2" and its own fields, and secrets are re-sealed when
 * their owner next enters them).
 */
/* Layout 2 (OAuth 2 accounts) adds what decides where the refresh token
 * goes and what it may do: the provider's name, the token endpoint, the
 * client id and the scopes. */
static int account_binding(struct hub *hub, const char *imap_url, const char *smtp_url,
                           const char *login, const char *ca_file,
                           const struct hub_oauth_binding *oauth,
                           unsigned char digest_r[VAULT_BINDING_SIZE], const char **error_r)
{
	char ca_hex[65] = "";
	const char *err;
	if (ca_file != NULL && ca_file_sha256(hub, ca_file, ca_hex, error_r) < 0)
		return -1;
	const struct vault_binding_field fields[] = {
	    {"layout", oauth != NULL ? "2" : "1"},
	    {"imap-url", imap_url},
	    {"smtp-url", smtp_url != NULL ? smtp_url : ""},
	    {"login", login},
	    {"ca-file", ca_file != NULL ? ca_file : ""},
	    {"ca-file-sha256", ca_hex},
	    {"oauth-provider", oauth != NULL ? oauth->provider : ""},
	    {"oauth-token-url", oauth != NULL ? oauth->token_url : ""},
	    {"oauth-client-id", oauth != NULL ? oauth->client_id : ""},
	    {"oauth-scopes", oauth != NULL ? oauth->scopes : ""},
	};
	size_t n = sizeof(fields) / sizeof(fields[0]);
	if (oauth == NULL)
		n = 6; /* layout 1 is exactly its six fields */
	if (vault_binding_digest(fields, n, digest_r, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	return 0;
}

/* The OAuth binding of a row (NULL for a password account). */
static const struct hub_oauth_binding *row_oauth(const struct hub_account *a,
                                                 struct hub_oauth_binding *buf)
{
	if (!a->oauth)
		return NULL;
	buf->provider = a->oauth_provider != NULL ? a->oauth_provider : "";
	buf->token_url = a->oauth_token_url != NULL ? a->oauth_token_url : "";
	buf->client_id = a->oauth_client_id != NULL ? a->oauth_client_id : "";
	buf->scopes = a->oauth_scopes != NULL ? a->oauth_scopes : "";
	return buf;
}

/* The tag that lets a format-1 secret (sealed before bindings) be opened
 * and re-sealed bound, while its row is what it was at the upgrade. */
static int legacy_tag(struct hub *hub, const char *user, int64_t account_id, const char *kind,
                      uint64_t version, const unsigned char binding[VAULT_BINDING_SIZE],
                      unsigned char tag_r[VAULT_TAG_SIZE], const char **error_r)
{
	char text[512];
	unsigned char data[sizeof(text) + VAULT_BINDING_SIZE];
	const char *err;
	int n = snprintf(text, sizeof(text), "mailkeep legacy secret\n%s\n%lld\n%s\n%llu\n", user,
	                 (long long)account_id, kind, (unsigned long long)version);
	if (n < 0 || (size_t)n >= sizeof(text))
		return hub_fail(hub, error_r, "legacy tag: names too long");
	memcpy(data, text, (size_t)n);
	memcpy(data + n, binding, VAULT_BINDING_SIZE);
	if (hub->master == NULL)
		return hub_fail(hub, error_r, "the master key is not loaded");
	if (vault_master_tag(hub->master, data, (size_t)n + VAULT_BINDING_SIZE, tag_r, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	return 0;
}

static int seal_into(struct hub *hub, const struct hub_user *user, int64_t account_id,
                     const struct vault_data_key *key, const char *kind, uint64_t version,
                     const unsigned char binding[VAULT_BINDING_SIZE], const char *secret,
                     const char **error_r)
{
	const char *err;
	char acct[32];
	unsigned char *blob;
	size_t blob_size;
	account_name(account_id, acct, sizeof(acct));
	if (vault_seal_bound_secret(key, user->name, acct, kind, version, binding, secret,
	                            strlen(secret), &blob, &blob_size, &err) < 0)
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

static int account_add(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
                       const char *imap_url, const char *smtp_url, const char *login,
                       const char *ca_file, const struct hub_oauth_binding *oauth,
                       const char *password, int64_t *account_id_r, const char **error_r);

int hub_account_add(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
                    const char *imap_url, const char *smtp_url, const char *login,
                    const char *ca_file, const char *password, int64_t *account_id_r,
                    const char **error_r)
{
	return account_add(hub, user, kek, imap_url, smtp_url, login, ca_file, NULL, password,
	                   account_id_r, error_r);
}

int hub_account_add_oauth(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
                          const char *imap_url, const char *smtp_url, const char *login,
                          const char *ca_file, const struct hub_oauth_binding *oauth,
                          const char *refresh_token, int64_t *account_id_r, const char **error_r)
{
	if (oauth == NULL || oauth->provider == NULL || oauth->token_url == NULL ||
	    oauth->client_id == NULL || oauth->scopes == NULL)
		return hub_fail(hub, error_r,
		                "an OAuth account needs provider, token endpoint, "
		                "client id and scopes");
	return account_add(hub, user, kek, imap_url, smtp_url, login, ca_file, oauth, refresh_token,
	                   account_id_r, error_r);
}

static int account_add(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
                       const char *imap_url, const char *smtp_url, const char *login,
                       const char *ca_file, const struct hub_oauth_binding *oauth,
                       const char *password, int64_t *account_id_r, const char **error_r)
{
	const char *err;
	struct vault_data_key *key = NULL;
	unsigned char wrapped[VAULT_WRAPPED_KEY_SIZE], binding[VAULT_BINDING_SIZE];
	const uint64_t key_version = 1, secret_version = 1;
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	if (account_binding(hub, imap_url, smtp_url, login, ca_file, oauth, binding, error_r) < 0)
		return -1;
	if (vault_data_key_new(&key, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		goto fail;
	/* The row first (its id is bound into the key's and secrets' associated
	 * data), then the wrapped key and the sealed secrets. */
	if (hub_prepare(
	        hub,
	        "INSERT INTO accounts(user_id, imap_url, smtp_url, login, ca_file, created, "
	        "data_key, key_version, secret_version, auth, oauth_provider, oauth_token_url, "
	        "oauth_client_id, oauth_scopes) "
	        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, zeroblob(1), ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
	        &st, error_r) < 0)
		goto fail;
	sqlite3_bind_text(st, 9, oauth != NULL ? "oauth2" : "password", -1, SQLITE_STATIC);
	if (oauth != NULL) {
		sqlite3_bind_text(st, 10, oauth->provider, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 11, oauth->token_url, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 12, oauth->client_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 13, oauth->scopes, -1, SQLITE_STATIC);
	}
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
	if (oauth != NULL) {
		/* One refresh token serves IMAP and SMTP. */
		if (seal_into(hub, user, id, key, "oauth-refresh-token", secret_version, binding,
		              password, error_r) < 0 ||
		    hub_exec(hub, "COMMIT", error_r) < 0)
			goto fail;
	} else if (seal_into(hub, user, id, key, "imap-password", secret_version, binding, password,
	                     error_r) < 0 ||
	           (smtp_url != NULL &&
	            seal_into(hub, user, id, key, "smtp-password", secret_version, binding,
	                      password, error_r) < 0) ||
	           hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	vault_data_key_free(&key);
	*account_id_r = id;
	/* After the commit: a crash in between leaves no anchor line, which
	 * the first open of the secret writes. */
	return hub_anchor_note(hub, "secret", id, secret_version, error_r);
fail:
	sqlite3_finalize(st);
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	vault_data_key_free(&key);
	return -1;
}

int hub_account_update(struct hub *hub, const struct hub_user *user,
                       const struct hub_account *account, const struct vault_kek *kek,
                       const char *imap_url, const char *smtp_url, const char *login,
                       const char *ca_file, const char *password, const char **error_r)
{
	const char *err = NULL;
	char acct[32];
	unsigned char binding[VAULT_BINDING_SIZE];
	account_name(account->id, acct, sizeof(acct));
	struct vault_data_key *key = NULL;
	sqlite3_stmt *st;
	if (account->oauth)
		return hub_fail(hub, error_r,
		                "account %s signs in with OAuth 2: it has no password to set; "
		                "remove it and add it again to change its settings",
		                acct);
	if (account_binding(hub, imap_url, smtp_url, login, ca_file, NULL, binding, error_r) < 0)
		return -1;
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
	/* The next version: above the row's and the anchor's, so neither an
	 * old row nor an old anchor line can name it. */
	struct hub_anchor anchor;
	if (hub_anchor_read(hub, account->id, &anchor, error_r) < 0)
		goto fail;
	uint64_t version = account->secret_version + 1;
	if (anchor.secret_version >= version)
		version = anchor.secret_version + 1;
	if (hub_prepare(hub,
	                "UPDATE accounts SET secret_version = ?2, imap_url = ?3, smtp_url = ?4, "
	                "login = ?5, ca_file = ?6 WHERE id = ?1",
	                &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, account->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)version);
	sqlite3_bind_text(st, 3, imap_url, -1, SQLITE_STATIC);
	if (smtp_url != NULL)
		sqlite3_bind_text(st, 4, smtp_url, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, login, -1, SQLITE_STATIC);
	if (ca_file != NULL)
		sqlite3_bind_text(st, 6, ca_file, -1, SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (r < 0) {
		hub_db_fail(hub, error_r, "update account");
		goto fail;
	}
	if (smtp_url == NULL) {
		if (hub_prepare(
		        hub, "DELETE FROM secrets WHERE account_id = ?1 AND kind = 'smtp-password'",
		        &st, error_r) < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, account->id);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
		sqlite3_finalize(st);
		if (r < 0) {
			hub_db_fail(hub, error_r, "remove SMTP secret");
			goto fail;
		}
	}
	if (seal_into(hub, user, account->id, key, "imap-password", version, binding, password,
	              error_r) < 0 ||
	    (smtp_url != NULL && seal_into(hub, user, account->id, key, "smtp-password", version,
	                                   binding, password, error_r) < 0) ||
	    hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	vault_data_key_free(&key);
	/* After the commit: from here on the old row and sealed copy are
	 * refused even if hub.db is put back. */
	return hub_anchor_note(hub, "secret", account->id, version, error_r);
fail:
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	vault_data_key_free(&key);
	return -1;
}

int hub_account_set_refresh_token(struct hub *hub, const struct hub_user *user,
                                  const struct hub_account *account, const struct vault_kek *kek,
                                  const char *refresh_token, const char **error_r)
{
	const char *err = NULL;
	char acct[32];
	unsigned char binding[VAULT_BINDING_SIZE];
	struct hub_oauth_binding ob;
	struct vault_data_key *key = NULL;
	sqlite3_stmt *st;
	account_name(account->id, acct, sizeof(acct));
	if (!account->oauth)
		return hub_fail(hub, error_r, "account %s is not an OAuth account", acct);
	if (account_binding(hub, account->imap_url, account->smtp_url, account->login,
	                    account->ca_file, row_oauth(account, &ob), binding, error_r) < 0)
		return -1;
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	/* The row as it is now: another process may have rotated first; then
	 * this token is the newer one all the same (the provider handed it out
	 * last), and it goes above whatever version is there. */
	uint64_t row_version = 0;
	if (hub_prepare(hub, "SELECT data_key, secret_version FROM accounts WHERE id = ?1", &st,
	                error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, account->id);
	int r = -1;
	if (sqlite3_step(st) == SQLITE_ROW) {
		row_version = (uint64_t)sqlite3_column_int64(st, 1);
		r = vault_data_key_unwrap(kek, sqlite3_column_blob(st, 0),
		                          (size_t)sqlite3_column_bytes(st, 0), user->name, acct,
		                          account->key_version, &key, &err);
	}
	sqlite3_finalize(st);
	if (r < 0) {
		hub_fail(hub, error_r, "account %s: %s", acct, err != NULL ? err : "not found");
		goto fail;
	}
	struct hub_anchor anchor;
	if (hub_anchor_read(hub, account->id, &anchor, error_r) < 0)
		goto fail;
	uint64_t version = row_version + 1;
	if (anchor.secret_version >= version)
		version = anchor.secret_version + 1;
	if (hub_prepare(hub,
	                "UPDATE accounts SET secret_version = ?2, needs_signin = 0 WHERE id = ?1",
	                &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, account->id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)version);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (r < 0) {
		hub_db_fail(hub, error_r, "update account");
		goto fail;
	}
	if (seal_into(hub, user, account->id, key, "oauth-refresh-token", version, binding,
	              refresh_token, error_r) < 0 ||
	    hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	vault_data_key_free(&key);
	return hub_anchor_note(hub, "secret", account->id, version, error_r);
fail:
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	vault_data_key_free(&key);
	return -1;
}

int hub_account_set_needs_signin(struct hub *hub, int64_t account_id, int64_t since,
                                 const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "UPDATE accounts SET needs_signin = ?2 WHERE id = ?1", &st, error_r) <
	    0)
		return -1;
	sqlite3_bind_int64(st, 1, account_id);
	sqlite3_bind_int64(st, 2, since);
	int r = sqlite3_step(st) == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "mark account");
	sqlite3_finalize(st);
	return r;
}

int hub_account_set_password(struct hub *hub, const struct hub_user *user,
                             const struct hub_account *account, const struct vault_kek *kek,
                             const char *password, const char **error_r)
{
	return hub_account_update(hub, user, account, kek, account->imap_url, account->smtp_url,
	                          account->login, account->ca_file, password, error_r);
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
	                "secret_version, key_version, auth, oauth_provider, oauth_token_url, "
	                "oauth_client_id, oauth_scopes, needs_signin "
	                "FROM accounts WHERE user_id = ?1 ORDER BY id",
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
		const unsigned char *auth = sqlite3_column_text(st, 9);
		x->oauth = auth != NULL && strcmp((const char *)auth, "oauth2") == 0;
		if (x->oauth) {
			x->oauth_provider = dup_text(st, 10);
			x->oauth_token_url = dup_text(st, 11);
			x->oauth_client_id = dup_text(st, 12);
			x->oauth_scopes = dup_text(st, 13);
		}
		x->needs_signin_since = sqlite3_column_int64(st, 14);
		if (x->imap_url == NULL || x->login == NULL ||
		    (x->oauth && (x->oauth_provider == NULL || x->oauth_token_url == NULL ||
		                  x->oauth_client_id == NULL || x->oauth_scopes == NULL))) {
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
		free((*accounts)[i].oauth_provider);
		free((*accounts)[i].oauth_token_url);
		free((*accounts)[i].oauth_client_id);
		free((*accounts)[i].oauth_scopes);
	}
	free(*accounts);
	*accounts = NULL;
}

/* Re-seal a format-1 secret bound, in place (only if it is still the
 * blob that was opened). */
static void legacy_reseal(struct hub *hub, const struct hub_user *user,
                          const struct hub_account *account, const struct vault_data_key *key,
                          const char *kind, const unsigned char binding[VAULT_BINDING_SIZE],
                          const char *secret, size_t secret_size, const void *old_blob,
                          size_t old_size)
{
	char acct[32];
	unsigned char *blob;
	size_t blob_size;
	const char *err;
	sqlite3_stmt *st;
	account_name(account->id, acct, sizeof(acct));
	if (vault_seal_bound_secret(key, user->name, acct, kind, account->secret_version, binding,
	                            secret, secret_size, &blob, &blob_size, &err) < 0)
		return;
	if (hub_prepare(hub,
	                "UPDATE secrets SET blob = ?3, legacy_tag = NULL "
	                "WHERE account_id = ?1 AND kind = ?2 AND blob = ?4",
	                &st, &err) == 0) {
		sqlite3_bind_int64(st, 1, account->id);
		sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 3, blob, (int)blob_size, SQLITE_STATIC);
		sqlite3_bind_blob(st, 4, old_blob, (int)old_size, SQLITE_STATIC);
		(void)sqlite3_step(st); /* a failure leaves it to the next open */
		sqlite3_finalize(st);
	}
	free(blob);
}

int hub_account_open_secret(struct hub *hub, const struct hub_user *user,
                            const struct hub_account *account, const struct vault_kek *kek,
                            const char *kind, char **secret_r, const char **error_r)
{
	const char *err = NULL;
	char acct[32];
	unsigned char binding[VAULT_BINDING_SIZE];
	account_name(account->id, acct, sizeof(acct));

	/* Rolled back? The anchor is outside hub.db. */
	struct hub_anchor anchor;
	if (hub_anchor_read(hub, account->id, &anchor, error_r) < 0)
		return -1;
	if (anchor.removed || account->secret_version < anchor.secret_version)
		return hub_fail(hub, error_r,
		                "account %s of %s: the stored password was rolled back (hub.db "
		                "has version %llu, but %s): hub.db was restored or edited; "
		                "refusing to use it. Re-enter the password with every setting "
		                "given: 'mailkeep account set --user %s %s --imap URL --smtp "
		                "URL|none --login L --ca-file F|none --password-file F'",
		                acct, user->name, (unsigned long long)account->secret_version,
		                anchor.removed ? "the account was removed"
		                               : "a newer one was stored since",
		                user->name, acct);
	struct hub_oauth_binding ob;
	if (account_binding(hub, account->imap_url, account->smtp_url, account->login,
	                    account->ca_file, row_oauth(account, &ob), binding, error_r) < 0)
		return -1;

	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "SELECT a.data_key, s.blob, s.legacy_tag FROM accounts a JOIN secrets s "
	                "ON s.account_id = a.id WHERE a.id = ?1 AND s.kind = ?2",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, account->id);
	sqlite3_bind_text(st, 2, kind, -1, SQLITE_STATIC);
	int r = -1;
	bool changed = false;
	char legacy_error[sizeof(hub->error)];
	if (sqlite3_step(st) == SQLITE_ROW) {
		struct vault_data_key *key = NULL;
		size_t secret_size;
		const unsigned char *blob = sqlite3_column_blob(st, 1);
		size_t blob_size = (size_t)sqlite3_column_bytes(st, 1);
		int format = vault_sealed_format(blob, blob_size);
		if (vault_data_key_unwrap(kek, sqlite3_column_blob(st, 0),
		                          (size_t)sqlite3_column_bytes(st, 0), user->name, acct,
		                          account->key_version, &key, &err) < 0) {
			r = -1;
		} else if (format == 1) {
			/* Sealed before bindings: opens only while the row is
			 * what the upgrade tagged, and is re-sealed bound. */
			unsigned char tag[VAULT_TAG_SIZE];
			const void *stored = sqlite3_column_blob(st, 2);
			if (stored == NULL || sqlite3_column_bytes(st, 2) != VAULT_TAG_SIZE) {
				err = "the password was stored by an older mailkeep and could not "
				      "be bound to the account's server settings at the upgrade "
				      "(was its CA file readable?); re-enter it with every setting "
				      "given: 'mailkeep account set ID --imap URL --smtp URL|none "
				      "--login L --ca-file F|none --password-file F'";
			} else if (legacy_tag(hub, user->name, account->id, kind,
			                      account->secret_version, binding, tag, &err) < 0) {
				/* Copied: the message below is written into hub->error. */
				snprintf(legacy_error, sizeof(legacy_error), "%s", hub->error);
				err = legacy_error;
			} else if (!vault_mem_equal(tag, stored, VAULT_TAG_SIZE)) {
				changed = true;
			} else if (vault_open_secret(key, user->name, acct, kind,
			                             account->secret_version, blob, blob_size,
			                             secret_r, &secret_size, &err) == 0) {
				legacy_reseal(hub, user, account, key, kind, binding, *secret_r,
				              secret_size, blob, blob_size);
				r = 0;
			}
		} else if (vault_open_bound_secret(key, user->name, acct, kind,
		                                   account->secret_version, binding, blob,
		                                   blob_size, secret_r, &secret_size, &err) == 0) {
			r = 0;
		} else if (err == vault_binding_changed) {
			changed = true;
		}
		vault_data_key_free(&key);
	} else {
		err = "no such credential stored";
	}
	sqlite3_finalize(st);
	if (changed && account->oauth)
		return hub_fail(
		    hub, error_r,
		    "account %s of %s: the account's settings (servers, login, CA file, "
		    "OAuth provider, token endpoint, client id or scopes) changed since "
		    "the refresh token was stored, so it is not sent anywhere; sign in "
		    "again (remove the account and add it with --oauth)",
		    acct, user->name);
	if (changed)
		return hub_fail(
		    hub, error_r,
		    "account %s of %s: the account's server settings (IMAP/SMTP URL, "
		    "login or CA file) changed since the password was stored, so it "
		    "is not sent anywhere; if you changed them, re-enter the password "
		    "with every setting given: 'mailkeep account set --user %s %s --imap "
		    "URL --smtp URL|none --login L --ca-file F|none --password-file F'",
		    acct, user->name, user->name, acct);
	if (r < 0)
		return hub_fail(hub, error_r, "account %s of %s: %s", acct, user->name, err);
	if (account->secret_version > anchor.secret_version) {
		/* No anchor line yet (a crash after the commit, or a hub from
		 * before anchors): this version is the floor from now on. */
		const char *aerr;
		(void)hub_anchor_note(hub, "secret", account->id, account->secret_version, &aerr);
	}
	return 0;
}

int hub_binding_upgrade(struct hub *hub, const char **error_r)
{
	struct hub_anchor anchor;
	if (hub_anchor_read(hub, 0, &anchor, error_r) < 0)
		return -1;
	if (anchor.binding_upgraded)
		return 0;
	sqlite3_stmt *st;
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (hub_prepare(hub,
	                "SELECT s.account_id, s.kind, a.imap_url, a.smtp_url, a.login, a.ca_file, "
	                "a.secret_version, u.name FROM secrets s JOIN accounts a ON a.id = "
	                "s.account_id JOIN users u ON u.id = a.user_id WHERE substr(s.blob, 1, 1) "
	                "= x'01' AND s.legacy_tag IS NULL",
	                &st, error_r) < 0)
		goto fail;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		unsigned char binding[VAULT_BINDING_SIZE], tag[VAULT_TAG_SIZE];
		const char *err;
		int64_t id = sqlite3_column_int64(st, 0);
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		const char *smtp = (const char *)sqlite3_column_text(st, 3);
		const char *ca = (const char *)sqlite3_column_text(st, 5);
		uint64_t version = (uint64_t)sqlite3_column_int64(st, 6);
		/* A CA file that cannot be read now could not be used either:
		 * that secret is left untagged and must be entered again. */
		if (account_binding(hub, (const char *)sqlite3_column_text(st, 2), smtp,
		                    (const char *)sqlite3_column_text(st, 4), ca, NULL, binding,
		                    &err) < 0 ||
		    legacy_tag(hub, (const char *)sqlite3_column_text(st, 7), id, kind, version,
		               binding, tag, error_r) < 0)
			continue;
		sqlite3_stmt *up;
		if (hub_prepare(hub,
		                "UPDATE secrets SET legacy_tag = ?3 WHERE account_id = ?1 AND "
		                "kind = ?2",
		                &up, error_r) < 0) {
			sqlite3_finalize(st);
			goto fail;
		}
		sqlite3_bind_int64(up, 1, id);
		sqlite3_bind_text(up, 2, kind, -1, SQLITE_TRANSIENT);
		sqlite3_bind_blob(up, 3, tag, sizeof(tag), SQLITE_STATIC);
		rc = sqlite3_step(up);
		sqlite3_finalize(up);
		if (rc != SQLITE_DONE) {
			sqlite3_finalize(st);
			hub_db_fail(hub, error_r, "tag a stored password");
			goto fail;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		hub_db_fail(hub, error_r, "upgrade stored passwords");
		goto fail;
	}
	if (hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	/* Anchor the versions there are now, then mark the upgrade done. */
	if (hub_prepare(hub, "SELECT id, secret_version FROM accounts", &st, error_r) < 0)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (hub_anchor_note(hub, "secret", sqlite3_column_int64(st, 0),
		                    (uint64_t)sqlite3_column_int64(st, 1), error_r) < 0) {
			sqlite3_finalize(st);
			return -1;
		}
	sqlite3_finalize(st);
	return hub_anchor_note(hub, "upgraded", 0, 0, error_r);
fail:
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
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
	/* Anchored as removed before anything goes: after a crash anywhere, a
	 * restored copy of the row and its secrets cannot open (the removal
	 * was meant, and running it again finishes it). */
	if (hub_anchor_note(hub, "removed", account_id, 0, error_r) < 0)
		return -1;
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
	/* secure_delete zeroed the freed pages in the database; moving the WAL
	 * into it and truncating the WAL leaves no copy in the log either. */
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
	/* The wrapped data key goes too (zeroed; the row stays until the
	 * receipt is recorded). */
	static const char *const sql[] = {
	    "DELETE FROM secrets WHERE account_id = ?1",
	    "DELETE FROM consents WHERE account_id = ?1",
	    "UPDATE accounts SET data_key = zeroblob(1) WHERE id = ?1",
	};
	return remove_in_txn(hub, account_id, sql, 3, 0, NULL, secrets_r, error_r);
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

/* One account's data key, rewrapped from old to new (key_version + 1). */
static int rewrap_key(struct hub *hub, const struct hub_user *user, int64_t id, const void *wrapped,
                      size_t wrapped_size, uint64_t version, const struct vault_kek *old,
                      const struct vault_kek *new, const char **error_r)
{
	const char *err;
	char acct[32];
	unsigned char out[VAULT_WRAPPED_KEY_SIZE];
	struct vault_data_key *key = NULL;
	sqlite3_stmt *st;
	account_name(id, acct, sizeof(acct));
	if (vault_data_key_unwrap(old, wrapped, wrapped_size, user->name, acct, version, &key,
	                          &err) < 0)
		return hub_fail(hub, error_r, "account %s's key does not open: %s", acct, err);
	int r = vault_data_key_wrap(new, key, user->name, acct, version + 1, out, &err);
	vault_data_key_free(&key);
	if (r < 0)
		return hub_fail(hub, error_r, "%s", err);
	if (hub_prepare(hub, "UPDATE accounts SET data_key = ?2, key_version = ?3 WHERE id = ?1",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_blob(st, 2, out, sizeof(out), SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)(version + 1));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	sodium_memzero(out, sizeof(out));
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "store the rewrapped key");
}

int hub_user_change_passphrase(struct hub *hub, const struct hub_user *user,
                               const struct vault_kek *old_kek, const char *new_password,
                               const char *via, struct vault_kek **kek_r, const char **error_r)
{
	const char *err;
	char hash[VAULT_PASSWORD_HASH_SIZE];
	unsigned char kdf[VAULT_KDF_BLOB_SIZE], check[VAULT_CHECK_VALUE_SIZE];
	struct vault_kek *new_kek = NULL;
	sqlite3_stmt *st = NULL;
	if (!user->zero_access)
		return hub_fail(hub, error_r, "%s is not zero-access: change the password instead",
		                user->name);
	if (vault_password_hash(new_password, strlen(new_password), hash, &err) < 0 ||
	    vault_kdf_blob_new(kdf, &err) < 0 ||
	    vault_kek_from_passphrase(new_password, strlen(new_password), kdf, sizeof(kdf),
	                              &new_kek, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	vault_kek_check_value(new_kek, check);
	struct audit_detail d[] = {{"via", via}, {"rewrapped", "account keys"}};
	if (hub_audit(hub, user, AUDIT_USER_PASSWORD, 0, d, 2, error_r) < 0 ||
	    hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		goto fail_notx;
	/* old_kek was opened before the transaction: it must still be the
	 * current key (a change in between is refused, nothing is rewrapped).
	 * The check value costs no key derivation. */
	if (hub_prepare(hub, "SELECT kek_check FROM users WHERE id = ?1", &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, user->id);
	if (sqlite3_step(st) != SQLITE_ROW ||
	    vault_kek_check_value_verify(old_kek, sqlite3_column_blob(st, 0),
	                                 (size_t)sqlite3_column_bytes(st, 0), &err) < 0) {
		hub_fail(hub, error_r, "%s's password changed meanwhile: nothing was changed",
		         user->name);
		goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (hub_prepare(hub,
	                "SELECT id, data_key, key_version FROM accounts WHERE user_id = ?1 "
	                "ORDER BY id",
	                &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, user->id);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		/* Each UPDATE touches only the row already read; SQLite allows
		 * that while the SELECT steps on. */
		if (rewrap_key(hub, user, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
		               (size_t)sqlite3_column_bytes(st, 1),
		               (uint64_t)sqlite3_column_int64(st, 2), old_kek, new_kek,
		               error_r) < 0)
			goto fail;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE) {
		hub_db_fail(hub, error_r, "read the accounts");
		goto fail;
	}
	if (hub_prepare(
	        hub, "UPDATE users SET password_hash = ?2, kdf = ?3, kek_check = ?4 WHERE id = ?1",
	        &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, user->id);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, kdf, sizeof(kdf), SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, check, sizeof(check), SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE) {
		hub_db_fail(hub, error_r, "change the password");
		goto fail;
	}
	if (hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	if (kek_r != NULL)
		*kek_r = new_kek;
	else
		vault_kek_free(&new_kek);
	return 0;
fail:
	sqlite3_finalize(st);
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
fail_notx:
	vault_kek_free(&new_kek);
	return -1;
}
