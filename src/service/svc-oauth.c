/* OAuth 2 accounts in the workflows: access tokens from the sealed refresh
 * token, rotation, needs-sign-in, revocation (svc-oauth.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "svc-oauth.h"
#include "../hub/hub.h"
#include "../oauth/oauth.h"
#include "../store/store.h"

/* --- the access token cache ----------------------------------------------- */

#define CACHE_SLOTS 64

struct cached_token {
	char key[PATH_MAX + 64]; /* "DIR\nACCOUNT\nVERSION"; "" when free */
	char *token;             /* sodium_malloc'd */
	int64_t expires_at;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached_token cache[CACHE_SLOTS];

static void cache_key(struct hub *hub, const struct hub_account *a, char *key, size_t size)
{
	snprintf(key, size, "%s\n%lld\n%llu", hub_data_dir(hub), (long long)a->id,
	         (unsigned long long)a->secret_version);
}

/* A copy of a cached token still valid for SVC_OAUTH_EARLY seconds. */
static char *cache_get(const char *key)
{
	char *copy = NULL;
	int64_t now = (int64_t)time(NULL);
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		if (strcmp(cache[i].key, key) != 0 || cache[i].token == NULL)
			continue;
		if (cache[i].expires_at - SVC_OAUTH_EARLY > now)
			copy = oauth_secret_dup(cache[i].token, strlen(cache[i].token));
		break;
	}
	pthread_mutex_unlock(&cache_lock);
	return copy;
}

/* The length of key's account part ("DIR\nACCOUNT\n"): entries that share
 * it are the same account under any secret version. */
static size_t account_prefix_len(const char *key)
{
	const char *nl = strrchr(key, '\n');
	return nl != NULL ? (size_t)(nl - key) + 1 : strlen(key);
}

/* One entry per account: a token under a new secret version (a rotation, a
 * new sign-in) replaces the account's entry under the old one, which no
 * request can ask for any more. */
static void cache_put(const char *key, const char *token, int64_t expires_at)
{
	if (expires_at == 0)
		expires_at = (int64_t)time(NULL) + 600; /* no lifetime given: assume a short one */
	size_t plen = account_prefix_len(key);
	pthread_mutex_lock(&cache_lock);
	size_t slot = CACHE_SLOTS;
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].key[0] == '\0' || strncmp(cache[i].key, key, plen) != 0)
			continue;
		if (slot == CACHE_SLOTS) {
			slot = i;
			continue;
		}
		oauth_secret_free(&cache[i].token); /* a duplicate left by older code paths */
		cache[i].key[0] = '\0';
		cache[i].expires_at = 0;
	}
	if (slot == CACHE_SLOTS) {
		slot = 0;
		for (size_t i = 0; i < CACHE_SLOTS; i++) {
			if (cache[i].key[0] == '\0') {
				slot = i;
				break;
			}
			if (cache[i].expires_at < cache[slot].expires_at)
				slot = i; /* else the one closest to expiry goes */
		}
	}
	oauth_secret_free(&cache[slot].token);
	cache[slot].token = oauth_secret_dup(token, strlen(token));
	snprintf(cache[slot].key, sizeof(cache[slot].key), "%s", key);
	cache[slot].expires_at = expires_at;
	pthread_mutex_unlock(&cache_lock);
}

char *svc_oauth_cache_get(struct hub *hub, const struct hub_account *a)
{
	char key[sizeof(cache[0].key)];
	cache_key(hub, a, key, sizeof(key));
	return cache_get(key);
}

void svc_oauth_cache_put(struct hub *hub, const struct hub_account *a, const char *token,
                         int64_t expires_at)
{
	char key[sizeof(cache[0].key)];
	cache_key(hub, a, key, sizeof(key));
	cache_put(key, token, expires_at);
}

size_t svc_oauth_cache_count(struct hub *hub, int64_t account_id)
{
	char prefix[PATH_MAX + 32];
	int n = snprintf(prefix, sizeof(prefix), "%s\n%lld\n", hub_data_dir(hub),
	                 (long long)account_id);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return 0;
	size_t count = 0;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (cache[i].key[0] != '\0' && strncmp(cache[i].key, prefix, (size_t)n) == 0)
			count++;
	pthread_mutex_unlock(&cache_lock);
	return count;
}

void svc_oauth_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		oauth_secret_free(&cache[i].token);
		cache[i].key[0] = '\0';
		cache[i].expires_at = 0;
	}
	pthread_mutex_unlock(&cache_lock);
}

void svc_oauth_cache_forget(struct hub *hub, int64_t account_id)
{
	char prefix[PATH_MAX + 32];
	int n = snprintf(prefix, sizeof(prefix), "%s\n%lld\n", hub_data_dir(hub),
	                 (long long)account_id);
	if (n < 0 || (size_t)n >= sizeof(prefix))
		return;
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		if (strncmp(cache[i].key, prefix, (size_t)n) != 0)
			continue;
		oauth_secret_free(&cache[i].token);
		cache[i].key[0] = '\0';
		cache[i].expires_at = 0;
	}
	pthread_mutex_unlock(&cache_lock);
}

/* --- helpers ----------------------------------------------------------------- */

struct oauth_provider svc_oauth_provider_from(const struct hub_oauth_provider *cfg)
{
	/* A CA file given for an account is for its mail servers; the
	 * provider is checked against the system's CAs. */
	struct oauth_provider p = {
	    .name = cfg->name,
	    .token_url = cfg->token_url,
	    .authorization_url = cfg->authorization_url[0] ? cfg->authorization_url : NULL,
	    .device_url = cfg->device_url[0] ? cfg->device_url : NULL,
	    .revocation_url = cfg->revocation_url[0] ? cfg->revocation_url : NULL,
	    .client_id = cfg->client_id,
	    .client_secret = cfg->client_secret[0] ? cfg->client_secret : NULL,
	    .scopes = cfg->scopes,
	    .timeout_ms = 30000,
	};
	return p;
}

/* The provider's settings from mailkeep.conf, checked against what the
 * refresh token was sealed for. */
static int provider_for(struct hub *hub, const struct hub_account *a, struct oauth_provider *p_r,
                        char *error, size_t error_size)
{
	const struct hub_oauth_provider *cfg = hub_oauth_provider(hub, a->oauth_provider);
	if (cfg == NULL) {
		snprintf(error, error_size,
		         "account %lld: OAuth provider '%s' is not configured in mailkeep.conf "
		         "(oauth.%s.client_id, oauth.%s.token_url, ...)",
		         (long long)a->id, a->oauth_provider, a->oauth_provider, a->oauth_provider);
		return -1;
	}
	if (strcmp(cfg->token_url, a->oauth_token_url) != 0 ||
	    strcmp(cfg->client_id, a->oauth_client_id) != 0) {
		snprintf(error, error_size,
		         "account %lld: oauth.%s's token_url or client_id in mailkeep.conf is not "
		         "the one the account signed in with; the refresh token is not sent "
		         "anywhere else: restore the setting, or sign in again",
		         (long long)a->id, cfg->name);
		return -1;
	}
	struct oauth_provider p = svc_oauth_provider_from(cfg);
	p.scopes = a->oauth_scopes; /* what the account signed in with */
	*p_r = p;
	return 0;
}

/* DIR/oauth.lock, held while a refresh token is spent. */
static int refresh_lock(struct hub *hub, char *error, size_t error_size)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/oauth.lock", hub_data_dir(hub));
	if (n < 0 || (size_t)n >= sizeof(path)) {
		snprintf(error, error_size, "data directory path too long");
		return -1;
	}
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(error, error_size, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 100) {
		if (errno != EWOULDBLOCK || waited >= 60000) {
			snprintf(error, error_size, "%s stayed locked (another refresh)", path);
			close(fd);
			return -2;
		}
		usleep(100 * 1000);
	}
	return fd;
}

/* The account's row as it is now (after the lock). */
static int reread_account(struct hub *hub, const struct hub_user *u, int64_t id,
                          struct hub_account **all_r, size_t *n_r, const struct hub_account **a_r,
                          char *error, size_t error_size)
{
	const char *err;
	if (hub_account_list(hub, u->id, all_r, n_r, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	for (size_t i = 0; i < *n_r; i++)
		if ((*all_r)[i].id == id) {
			*a_r = &(*all_r)[i];
			return 0;
		}
	snprintf(error, error_size, "account %lld is gone", (long long)id);
	return -1;
}

static void notify_signin(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                          const char *why)
{
	struct store *store = NULL;
	char error[SVC_ERROR_SIZE], date[64];
	const char *err;
	time_t now = time(NULL);
	struct tm tm;
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&now, &tm));
	if (svc_store_open(hub_data_dir(hub), u->name, true, &store, error, sizeof(error)) < 0)
		return;
	char *text = NULL;
	int len =
	    asprintf(&text,
	             "From: mailkeep hub <mailkeep@hub.invalid>\r\n"
	             "To: %s\r\n"
	             "Date: %s\r\n"
	             "Subject: Sign in again: %s\r\n"
	             "Content-Type: text/plain; charset=utf-8\r\n"
	             "MIME-Version: 1.0\r\n"
	             "\r\n"
	             "The hub can no longer reach the mail of %s (account %lld): %s no "
	             "longer accepts the sign-in the hub holds.\r\n\r\n"
	             "%s\r\n\r\n"
	             "Syncing and sending for this account are paused; messages in the "
	             "outbox wait. Sign in again to resume:\r\n"
	             "  mailkeep account add --user %s --oauth %s --login %s --imap %s ...\r\n"
	             "after removing the old account, or with a token file from your "
	             "device.\r\n",
	             u->name, date, a->login, a->login, (long long)a->id, a->oauth_provider, why,
	             u->name, a->oauth_provider, a->login, a->imap_url);
	if (len >= 0) {
		if (store_begin(store, &err) < 0 ||
		    store_local_deliver(store, text, (size_t)len, (int64_t)now, &err) < 0 ||
		    store_commit(store, &err) < 0)
			store_rollback(store);
		free(text);
	}
	store_close(&store);
}

int svc_oauth_access_token(struct hub *hub, const struct hub_user *u, const struct hub_account *a0,
                           const struct vault_kek *kek, const char *purpose, char **token_r,
                           char *error, size_t error_size)
{
	const char *err;
	char key[sizeof(cache[0].key)];
	struct oauth_provider p;
	if (!a0->oauth) {
		snprintf(error, error_size, "account %lld is not an OAuth account",
		         (long long)a0->id);
		return -1;
	}
	if (a0->needs_signin_since != 0) {
		snprintf(error, error_size,
		         "%s, account %lld: paused: %s refused the hub's sign-in; sign in again "
		         "(a notice with the steps is in the hub's notices)",
		         u->name, (long long)a0->id, a0->oauth_provider);
		return SVC_NEEDS_SIGNIN;
	}
	if (provider_for(hub, a0, &p, error, error_size) < 0)
		return -1;
	cache_key(hub, a0, key, sizeof(key));
	if ((*token_r = cache_get(key)) != NULL)
		return 0;

	int lock = refresh_lock(hub, error, error_size);
	if (lock < 0)
		return lock;
	struct hub_account *all = NULL;
	size_t n = 0;
	const struct hub_account *a = NULL;
	char *refresh = NULL;
	struct oauth_tokens t = {0};
	struct oauth_error oe;
	int ret = -1;
	if (reread_account(hub, u, a0->id, &all, &n, &a, error, error_size) < 0)
		goto out;
	if (a->needs_signin_since != 0) {
		snprintf(error, error_size, "%s, account %lld: paused: sign in again", u->name,
		         (long long)a->id);
		ret = SVC_NEEDS_SIGNIN;
		goto out;
	}
	cache_key(hub, a, key, sizeof(key));
	if ((*token_r = cache_get(key)) != NULL) {
		ret = 0; /* another thread refreshed while we waited */
		goto out;
	}
	if ((ret = svc_account_open_secret(hub, u, a, kek, purpose, "oauth-refresh-token", &refresh,
	                                   error, error_size)) < 0)
		goto out;
	int r = oauth_refresh(&p, refresh, &t, &oe);
	char expires[32] = "";
	if (r == 0 && t.expires_at != 0)
		snprintf(expires, sizeof(expires), "%lld", (long long)(t.expires_at - time(NULL)));
	bool rotated = r == 0 && t.refresh_token != NULL && strcmp(t.refresh_token, refresh) != 0;
	struct audit_detail d[] = {{"provider", p.name},
	                           {"result", r == 0                           ? "ok"
	                                      : oe.kind == OAUTH_ERR_SIGN_IN   ? "invalid_grant"
	                                      : oe.kind == OAUTH_ERR_TEMPORARY ? "temporary"
	                                                                       : "refused"},
	                           {"rotated", rotated ? "yes" : "no"},
	                           {"expires_in", expires}};
	if (hub_audit(hub, u, AUDIT_OAUTH_REFRESH, a->id, d, r == 0 ? 4 : 2, &err) < 0 && r == 0) {
		/* The refresh happened but its record did not: the new token is
		 * not used (the audit entry is what makes a use visible). */
		snprintf(error, error_size, "%s, account %lld: %s", u->name, (long long)a->id, err);
		ret = hub_error_is_temporary(hub) ? -2 : -1;
		if (!rotated)
			goto out;
		/* A rotated token must still be kept, or the grant is lost. */
		(void)hub_account_set_refresh_token(hub, u, a, kek, t.refresh_token, &err);
		goto out;
	}
	if (r < 0) {
		snprintf(error, error_size, "%s, account %lld: %s", u->name, (long long)a->id,
		         oe.text);
		if (oe.kind == OAUTH_ERR_SIGN_IN) {
			struct audit_detail sd[] = {{"provider", p.name}, {"result", "needed"}};
			if (hub_account_set_needs_signin(hub, a->id, (int64_t)time(NULL), &err) ==
			    0) {
				(void)hub_audit(hub, u, AUDIT_OAUTH_SIGNIN, a->id, sd, 2, &err);
				notify_signin(hub, u, a, oe.text);
			}
			ret = SVC_NEEDS_SIGNIN;
		} else {
			ret = oe.kind == OAUTH_ERR_TEMPORARY ? -2 : -1;
		}
		goto out;
	}
	/* The granted scope is not checked here: providers narrow or rename
	 * scopes in the answer (Microsoft leaves offline_access out); the mail
	 * server decides, and its refusal names the scope it wanted. */
	if (rotated) {
		/* Sealed again before the new access token is used: the old
		 * refresh token is spent. */
		if (hub_account_set_refresh_token(hub, u, a, kek, t.refresh_token, &err) < 0) {
			snprintf(error, error_size,
			         "%s, account %lld: the provider rotated the refresh token but it "
			         "could not be stored: %s",
			         u->name, (long long)a->id, err);
			ret = hub_error_is_temporary(hub) ? -2 : -1;
			goto out;
		}
		/* The row moved to the next version: key the cache by it. */
		char next[sizeof(key)];
		struct hub_account *again = NULL;
		size_t m = 0;
		const struct hub_account *na = NULL;
		if (reread_account(hub, u, a->id, &again, &m, &na, error, error_size) == 0) {
			cache_key(hub, na, next, sizeof(next));
			cache_put(next, t.access_token, t.expires_at);
		}
		hub_accounts_free(&again, m);
	} else {
		cache_put(key, t.access_token, t.expires_at);
	}
	*token_r = t.access_token;
	t.access_token = NULL;
	ret = 0;
out:
	oauth_tokens_clear(&t);
	svc_secret_free(&refresh);
	hub_accounts_free(&all, n);
	close(lock);
	return ret;
}

void svc_oauth_revoke(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                      char *outcome, size_t outcome_size)
{
	struct oauth_provider p;
	char error[SVC_ERROR_SIZE];
	if (provider_for(hub, a, &p, error, sizeof(error)) < 0) {
		snprintf(outcome, outcome_size,
		         "The refresh token was not revoked at %s (%s); revoke the hub's access in "
		         "your account's security settings.",
		         a->oauth_provider, error);
		return;
	}
	if (p.revocation_url == NULL) {
		snprintf(outcome, outcome_size,
		         "%s offers no revocation endpoint (oauth.%s.revocation_url): revoke the "
		         "hub's access in your account's security settings.",
		         p.name, p.name);
		return;
	}
	struct vault_kek *kek = NULL;
	const char *err;
	char *refresh = NULL;
	if (u->zero_access || hub_user_kek(hub, u, NULL, &kek, &err) < 0) {
		snprintf(
		    outcome, outcome_size,
		    "The refresh token was not revoked at %s (its key cannot be opened here%s); "
		    "revoke the hub's access in your account's security settings.",
		    p.name, u->zero_access ? ": zero-access user" : "");
		return;
	}
	if (svc_account_open_secret(hub, u, a, kek, "revoke", "oauth-refresh-token", &refresh,
	                            error, sizeof(error)) < 0) {
		snprintf(outcome, outcome_size,
		         "The refresh token was not revoked at %s (it could not be opened); revoke "
		         "the hub's access in your account's security settings.",
		         p.name);
		vault_kek_free(&kek);
		return;
	}
	struct oauth_error oe;
	if (oauth_revoke(&p, refresh, "refresh_token", &oe) == 0)
		snprintf(outcome, outcome_size, "The refresh token was revoked at %s.", p.name);
	else
		snprintf(outcome, outcome_size,
		         "The refresh token could not be revoked at %s (%s); revoke the hub's "
		         "access in your account's security settings.",
		         p.name, oe.text);
	svc_secret_free(&refresh);
	vault_kek_free(&kek);
}
