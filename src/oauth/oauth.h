#ifndef MK_OAUTH_H
#define MK_OAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * OAuth 2 client for mail accounts (RFC 6749): calls to a provider's token
 * endpoint with libcurl and the redirect receiver a command-line client
 * needs.
 *
 *   authorization code + PKCE S256 (RFC 7636), with a loopback redirect
 *     (RFC 8252: http://127.0.0.1:<ephemeral port>/, state checked)
 *   refresh (RFC 6749 section 6), rotation: a new refresh token in the
 *     answer replaces the old one (oauth_tokens.refresh_token)
 *   revocation (RFC 7009)
 *   device authorization grant (RFC 8628), polled per interval / slow_down
 *
 * Secrets (codes, verifiers, client secrets, tokens) live in sodium_malloc
 * memory here: the request body, the response buffer, the tokens handed
 * out. Two copies are outside our control and freed unwiped: libcurl's
 * receive buffer and jansson's parse of the answer (jansson's allocator is
 * process-wide and cannot be swapped once in use). Neither is ever written
 * anywhere; the process is non-dumpable.
 *
 * Errors: every call that can fail fills a struct oauth_error the caller
 * owns (thread-safe, no static buffers): its kind says what to do next, its
 * text is for people. The text holds the provider's `error` code and
 * `error_description` (made printable, cut to size) or our description of
 * what failed; never a token, code, verifier or client secret.
 *
 * All responses are bounded (OAUTH_MAX_RESPONSE); HTTPS is required for
 * every endpoint except http://127.0.0.1 / [::1] / localhost (tests and
 * local providers).
 */

#define OAUTH_ERROR_SIZE 512
#define OAUTH_MAX_RESPONSE (64 * 1024)

enum oauth_error_kind {
	OAUTH_OK = 0,
	/* Network failure, timeout, HTTP 5xx, 429, an answer that is not JSON
	 * (an HTML error page), temporarily_unavailable: try again later. */
	OAUTH_ERR_TEMPORARY,
	/* invalid_grant: the refresh token (or code) is no longer valid:
	 * consent revoked, expired, password changed. The user must sign in
	 * again; retrying does not help. */
	OAUTH_ERR_SIGN_IN,
	/* Anything else the provider refused (invalid_client, invalid_scope,
	 * unauthorized_client, access_denied, expired_token, ...) or a
	 * configuration we refuse: retrying does not help. */
	OAUTH_ERR_PERMANENT,
};

struct oauth_error {
	enum oauth_error_kind kind;
	char code[64]; /* the provider's `error` value when it sent one, else "" */
	char text[OAUTH_ERROR_SIZE];
};

/* Where a provider is and who we are there (from the hub's configuration). */
struct oauth_provider {
	const char *name;              /* "google", "microsoft", ... (for messages) */
	const char *token_url;         /* required */
	const char *authorization_url; /* code flow; NULL if none */
	const char *device_url;        /* device flow; NULL if none */
	const char *revocation_url;    /* RFC 7009; NULL if none */
	const char *client_id;         /* required */
	const char *client_secret;     /* NULL for a public client (sent as client_secret_post) */
	const char *scopes;            /* space separated */
	const char *ca_file;           /* extra trust anchors (replaces the bundle), or NULL */
	long timeout_ms;               /* per request; 0: 30 s */
};

/* Tokens from a token endpoint. Strings are sodium_malloc'd (NULL when
 * absent); free with oauth_tokens_clear(). expires_at is our clock's time
 * (time(NULL) when the answer came plus expires_in), 0 when the provider
 * gave no lifetime. scope: what was granted (the answer's scope, else
 * what was asked), in normal heap (not secret). */
struct oauth_tokens {
	char *access_token;
	char *refresh_token;
	int64_t expires_at;
	char *scope;
	char token_type[32];
};
void oauth_tokens_clear(struct oauth_tokens *t);

/* Does the space-separated list scopes hold scope (exactly)? */
bool oauth_scope_has(const char *scopes, const char *scope);

/* Is url usable as an endpoint (https://, or http:// on loopback)? */
bool oauth_url_allowed(const char *url);

/* Check a provider's settings: token_url and client_id given, every URL
 * allowed. */
int oauth_provider_check(const struct oauth_provider *p, struct oauth_error *err);

/* --- authorization code with PKCE -------------------------------------- */

/* A PKCE verifier (RFC 7636: 43 characters of base64url from 32 random
 * bytes), its S256 challenge, and a random state. The verifier is secret
 * until the exchange; the struct lives in sodium_malloc memory (the caller
 * frees it with oauth_pkce_free()). */
struct oauth_pkce {
	char verifier[64];
	char challenge[64];
	char state[64];
};
int oauth_pkce_new(struct oauth_pkce **pkce_r, struct oauth_error *err);
void oauth_pkce_free(struct oauth_pkce **pkce);

/* The URL the user opens: authorization_url with response_type=code,
 * client_id, redirect_uri, scope, state, code_challenge(_method=S256), and
 * login_hint when not NULL. *url_r is malloc'd (not secret). */
int oauth_authorization_url(const struct oauth_provider *p, const struct oauth_pkce *pkce,
                            const char *redirect_uri, const char *login_hint, char **url_r,
                            struct oauth_error *err);

/* Exchange an authorization code (grant_type=authorization_code with the
 * verifier). */
int oauth_exchange_code(const struct oauth_provider *p, const char *code, const char *redirect_uri,
                        const struct oauth_pkce *pkce, struct oauth_tokens *tokens_r,
                        struct oauth_error *err);

/* --- refresh and revocation -------------------------------------------- */

/* grant_type=refresh_token. A refresh token in the answer (rotation) is in
 * tokens_r->refresh_token; NULL means keep the old one. The scope is asked
 * for again only when scope is not NULL. */
int oauth_refresh(const struct oauth_provider *p, const char *refresh_token,
                  struct oauth_tokens *tokens_r, struct oauth_error *err);

/* RFC 7009: revoke token (hint "refresh_token" or "access_token", may be
 * NULL). 0 when the server answered 200 (which it also does for a token it
 * no longer knows), -1 otherwise; -1 with OAUTH_ERR_PERMANENT and "no
 * revocation endpoint" when the provider has none. */
int oauth_revoke(const struct oauth_provider *p, const char *token, const char *hint,
                 struct oauth_error *err);

/* --- device authorization grant (RFC 8628) ------------------------------ */

struct oauth_device {
	char *device_code; /* sodium_malloc'd: lets its holder poll for tokens */
	char user_code[64];
	char verification_uri[512];
	char verification_uri_complete[768]; /* "" when not sent */
	unsigned interval;                   /* seconds, at least 1 */
	int64_t expires_at;
};
int oauth_device_start(const struct oauth_provider *p, struct oauth_device *dev_r,
                       struct oauth_error *err);
/* Poll until the user approved (0, tokens), denied, or the code expired
 * (-1). authorization_pending waits interval seconds; slow_down adds 5
 * seconds to it (RFC 8628 3.5); a temporary failure is retried on the same
 * schedule until the code expires. sleep_fn (NULL: sleep()) lets tests
 * shorten the waits. */
int oauth_device_poll(const struct oauth_provider *p, struct oauth_device *dev,
                      void (*sleep_fn)(unsigned seconds), struct oauth_tokens *tokens_r,
                      struct oauth_error *err);
void oauth_device_clear(struct oauth_device *dev);

/* --- token file -------------------------------------------------------- */

/* Read tokens a device obtained and handed over as a JSON file:
 * {"refresh_token": "...", "access_token": "...", "expires_in": N or
 * "expires_at": T, "scope": "..."}; refresh_token is required. The file
 * must be at most OAUTH_MAX_RESPONSE bytes. */
int oauth_tokens_from_file(const char *path, struct oauth_tokens *tokens_r,
                           struct oauth_error *err);

/* --- loopback redirect receiver (RFC 8252 7.3) ------------------------- */

struct oauth_loopback;
/* Listen on 127.0.0.1 with an ephemeral port; *redirect_uri_r is
 * "http://127.0.0.1:PORT/" (owned by the receiver). */
int oauth_loopback_open(struct oauth_loopback **lb_r, const char **redirect_uri_r,
                        struct oauth_error *err);
/* Wait (at most timeout_ms) for the browser's redirect carrying state and
 * a code; requests for other paths (a favicon) are answered 404 and
 * waited past. A wrong state, or an `error` in the redirect, ends the wait
 * with a clear error. *code_r is sodium_malloc'd (free with
 * oauth_secret_free()). */
int oauth_loopback_wait(struct oauth_loopback *lb, const char *state, int timeout_ms, char **code_r,
                        struct oauth_error *err);
void oauth_loopback_free(struct oauth_loopback **lb);

/* Wipe and free a sodium_malloc'd string; accepts NULL. */
void oauth_secret_free(char **secret);
/* A sodium_malloc'd copy of s (NULL when out of memory). */
char *oauth_secret_dup(const char *s, size_t len);

#endif
