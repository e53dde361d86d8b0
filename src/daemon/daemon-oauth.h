#ifndef MK_DAEMON_OAUTH_H
#define MK_DAEMON_OAUTH_H

/*
 * OAuth accounts from the web (daemon-oauth.c; docs/oauth.md "From the web
 * app", docs/jmap.md): the management methods OAuthProvider/get and
 * ExternalAccount/oauthStart, oauthStatus, oauthCancel, the OAuth kind of
 * ExternalAccount/disclose, and the provider's redirect back to serve,
 * GET /mailkeep/oauth/callback.
 *
 * A started sign-in is a pending flow in serve's memory only (a restart
 * forgets it: the user starts again): at most DAEMON_OAUTH_PER_USER per user
 * (a new one drops the user's oldest) and DAEMON_OAUTH_MAX in all. A
 * redirect flow waits DAEMON_OAUTH_REDIRECT_TTL seconds for the callback; a
 * device flow polls the provider from its own thread until the code expires,
 * is approved or the flow is cancelled. A finished flow stays readable for
 * DAEMON_OAUTH_KEEP seconds. The PKCE verifier, the device code and every
 * token are in sodium_malloc memory only; the state of a redirect flow
 * (256 random bits) is single-use and is the callback's only credential.
 *
 * The user's flows are found by their id and the signed-in user (another
 * user's id is notFound). Lock order: a user's store lock, then the flows'
 * lock; nothing else is taken while the flows' lock is held.
 */

#include <jansson.h>

#include "daemon-internal.h"
#include "jmap/jmap.h"

#define DAEMON_OAUTH_MAX 64
#define DAEMON_OAUTH_PER_USER 3
#define DAEMON_OAUTH_REDIRECT_TTL 600
#define DAEMON_OAUTH_KEEP 600
#define DAEMON_OAUTH_CALLBACK_PATH "/mailkeep/oauth/callback"

/* The methods (jmap.h's jmap_method_fn; ctx is a struct daemon_api_ctx). */
int daemon_oauth_provider_get(void *ctx, struct jmap_call *call, json_t *args,
                              const char **error_type_r, const char **description_r);
int daemon_oauth_start(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                       const char **description_r);
int daemon_oauth_status(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                        const char **description_r);
int daemon_oauth_cancel(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                        const char **description_r);
/* ExternalAccount/disclose with kind "oauth" (daemon-manage.c hands it on). */
int daemon_oauth_disclose(void *ctx, struct jmap_call *call, json_t *args,
                          const char **error_type_r, const char **description_r);

/* Is the provider called name configured on this hub (client_id and
 * token_url)? For ExternalAccount/discover's oauthConfigured. */
bool daemon_oauth_configured(struct daemon *sv, const char *name);

/* GET /mailkeep/oauth/callback (a public route: no session). */
void daemon_handle_oauth_callback(struct daemon *sv, const struct http_request *req,
                                  struct http_response *resp);

/* On serve's shutdown (after sv->stop is set): device flows stop polling at
 * once, their threads are joined, every pending flow is wiped. */
void daemon_oauth_shutdown(struct daemon *sv);

#endif
