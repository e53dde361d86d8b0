#ifndef MK_SVC_OAUTH_H
#define MK_SVC_OAUTH_H

#include "service.h"
#include "../oauth/oauth.h"

/*
 * OAuth 2 accounts in the workflows (docs/oauth.md): an access token for a
 * sync or a send, from the sealed refresh token, and what happens when the
 * provider says the grant is gone.
 *
 * Access tokens are kept only in sodium_malloc'd memory, in a small cache
 * per process (keyed by data directory, account and secret version), and
 * reused until SVC_OAUTH_EARLY seconds before they expire. A refresh:
 *   1. takes DIR/oauth.lock (flock), so two processes never spend one
 *      refresh token at the same time (a provider that rotates refresh
 *      tokens may treat the second use as theft and revoke the grant);
 *   2. re-reads the account row (another process may have rotated it);
 *   3. audits credential.decrypt (purpose, kind oauth-refresh-token), opens
 *      the refresh token, calls the token endpoint, audits oauth.refresh
 *      (provider, result, rotated, expires);
 *   4. a rotated refresh token is sealed again at once, in one transaction
 *      under the next anchored version (hub_account_set_refresh_token);
 *   5. invalid_grant: the account is marked as needing sign-in (audited
 *      oauth.signin result=needed) and the user gets a notice in the hub's
 *      notices mailbox; until the user signs in again every sync and send
 *      of the account stops before any network call.
 * The provider's settings come from mailkeep.conf (oauth.NAME.*); the token
 * endpoint and client id there must still be those the refresh token was
 * sealed for, or nothing is sent.
 */

#define SVC_OAUTH_EARLY 120 /* refresh this many seconds before expiry */

/* svc_account_open_secret()'s extra result for an OAuth account whose
 * grant is gone: retrying will not help until the user signs in again. */
#define SVC_NEEDS_SIGNIN (-3)

/* An access token for the OAuth account a (purpose "sync" or "send").
 * Returns 0 with *token_r (sodium_malloc'd; free with svc_secret_free()),
 * -1 (permanent: misconfiguration, the provider refused otherwise), -2
 * (temporary: network, the provider's 5xx or error page, a busy hub: try
 * later) or SVC_NEEDS_SIGNIN, with the reason in error. */
int svc_oauth_access_token(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                           const struct vault_kek *kek, const char *purpose, char **token_r,
                           char *error, size_t error_size);

/* Revoke the account's refresh token at the provider (RFC 7009) before it
 * is removed: writes one sentence for the removal receipt into outcome
 * ("revoked at PROVIDER", "could not be revoked at PROVIDER: why",
 * "PROVIDER offers no revocation endpoint", ...). Never fails the removal. */
void svc_oauth_revoke(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                      char *outcome, size_t outcome_size);

/* The access token cache: one entry per account, keyed by its secret
 * version. get returns a copy (sodium_malloc'd; svc_secret_free()) of the
 * account's token if it was cached under a's secret_version and is valid
 * for SVC_OAUTH_EARLY seconds more, else NULL. put replaces the account's
 * entry, whatever version it had (expires_at 0: ten minutes). count is how
 * many entries the account has (tests: never more than one). */
char *svc_oauth_cache_get(struct hub *hub, const struct hub_account *a);
void svc_oauth_cache_put(struct hub *hub, const struct hub_account *a, const char *token,
                         int64_t expires_at);
size_t svc_oauth_cache_count(struct hub *hub, int64_t account_id);

/* Forget the cached access tokens of one account (a server refused one
 * before its time, the account was signed in again or removed: the next
 * svc_oauth_access_token() refreshes). */
void svc_oauth_cache_forget(struct hub *hub, int64_t account_id);

/* Forget every cached access token (tests). */
void svc_oauth_cache_clear(void);

struct hub_oauth_provider;
/* The OAuth client's view of a configured provider; its strings point into
 * cfg (timeout 30 s, the system's CAs). */
struct oauth_provider svc_oauth_provider_from(const struct hub_oauth_provider *cfg);

#endif
