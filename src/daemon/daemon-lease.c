/* Sign-in and sign-out on the device API, and the unlock leases of
 * zero-access users they make and end (service/svc-lease.h). */
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "http/http.h"
#include "lib/clock.h"
#include "service/svc-lease.h"
#include "service/svc-pool.h"

void daemon_principal_free(void *state)
{
	struct principal *p = state;
	if (p == NULL)
		return;
	if (p->password != NULL)
		sodium_free(p->password); /* wipes */
	free(p);
}

json_t *daemon_lease_until_json(struct daemon *sv, const struct hub_user *u)
{
	time_t until;
	char when[32];
	struct tm tm;
	if (!u->zero_access || !svc_lease_held(sv->leases, u->id, &until) ||
	    gmtime_r(&until, &tm) == NULL ||
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(when);
}

/* POST /mailkeep/signin with the hub password (Basic), ?device=NAME
 * optional: makes a device token for this sign-in and, for a zero-access
 * user, unlocks (or extends) their lease, the device its holder. */
void daemon_handle_signin(struct daemon *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "sign in with POST");
		return;
	}
	if (p->device_id != 0 || p->web_session_id != 0) {
		daemon_respond_problem(resp, 400, "about:blank",
		                       "sign in with the hub password (Basic)");
		return;
	}
	if (p->user.zero_access && p->password == NULL) {
		daemon_respond_problem(resp, 503, "about:blank", "out of secure memory");
		return;
	}
	char name[65];
	if (!daemon_query_param(req->query, "device", name, sizeof(name)) || name[0] == '\0') {
		unsigned char rnd[4];
		randombytes_buf(rnd, sizeof(rnd));
		snprintf(name, sizeof(name), "signin-%lld-%02x%02x%02x%02x", (long long)time(NULL),
		         rnd[0], rnd[1], rnd[2], rnd[3]);
	}
	char token[HUB_DEVICE_TOKEN_SIZE];
	int64_t device_id;
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_device_add(sv->hub, &p->user, name, token, &device_id, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	if (r < 0) {
		daemon_respond_problem(resp, 400, "about:blank", err);
		return;
	}
	if (p->user.zero_access) {
		char error[SVC_ERROR_SIZE];
		time_t until;
		int u = svc_lease_signin(sv->leases, &p->user, p->password, device_id, time(NULL),
		                         hub_get_settings(sv->hub)->lease_seconds, &until, error,
		                         sizeof(error));
		if (u < 0) {
			int64_t gone;
			pthread_mutex_lock(&sv->hub_lock);
			hub_device_revoke(sv->hub, &p->user, name, &gone, &err);
			pthread_mutex_unlock(&sv->hub_lock);
			sodium_memzero(token, sizeof(token));
			daemon_log(DAEMON_LOG_ERROR, p->user.name, 0, "unlock: %s", error);
			daemon_respond_problem(resp, 503, "about:blank",
			                       "cannot unlock the account now");
			return;
		}
		if (u == 1)
			daemon_log(DAEMON_LOG_INFO, p->user.name, 0, "lease: %s unlocked",
			           p->user.name);
		sv->sync_now = 1;
	}
	json_t *body = json_pack("{s:s,s:s,s:b}", "device", name, "token", token, "zeroAccess",
	                         p->user.zero_access);
	sodium_memzero(token, sizeof(token));
	if (body == NULL) {
		daemon_respond_problem(resp, 500, "about:blank", "out of memory");
		return;
	}
	json_object_set_new(body, "unlockedUntil", daemon_lease_until_json(sv, &p->user));
	daemon_respond_json(resp, 200, body);
}

/* POST /mailkeep/signout with the device token the sign-in gave: revokes
 * it; the lease is wiped when no device holding it remains. */
void daemon_handle_signout(struct daemon *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "sign out with POST");
		return;
	}
	if (p->device_id <= 0) {
		daemon_respond_problem(resp, 400, "about:blank",
		                       "sign out with the device token the sign-in gave (Bearer)");
		return;
	}
	int64_t gone;
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_device_revoke(sv->hub, &p->user, p->device, &gone, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	if (r < 0) {
		daemon_respond_problem(resp, 503, "about:blank", err);
		return;
	}
	if (svc_lease_release(sv->leases, p->user.id, p->device_id, "signout") == 1) {
		/* No background access remains: the warm sessions go too. */
		unsigned warm = svc_pool_drop_user(sv->pool, p->user.id);
		daemon_log(DAEMON_LOG_INFO, p->user.name, 0,
		           "lease: %s wiped (signout), %u warm sync session%s logged out",
		           p->user.name, warm, warm == 1 ? "" : "s");
	}
	json_t *body = json_pack("{s:b}", "signedOut", 1);
	if (body != NULL)
		json_object_set_new(body, "unlockedUntil", daemon_lease_until_json(sv, &p->user));
	daemon_respond_json(resp, 200, body != NULL ? body : json_object());
}

/* Wipes the leases that expired or whose devices were all revoked. With
 * no lease held it sleeps until a sign-in (or shutdown) wakes it; with one
 * held it looks twice a second, which reads hub.db's data_version only and
 * the holders when something changed (svc_lease_watch). After each full
 * look the warm sync sessions are swept: those of a user whose lease it
 * wiped log out now, not at the account worker's next idle second (which
 * a long job postpones); this thread never syncs. */
void *daemon_lease_thread(void *context)
{
	struct daemon *sv = context;
	while (!sv->stop) {
		if (svc_lease_watch(sv->leases, time(NULL))) {
			unsigned n = svc_pool_sweep(sv->pool, clock_mono(), sv->leases);
			if (n > 0)
				daemon_log(DAEMON_LOG_INFO, NULL, 0,
				           "warm sessions: %u logged out (a lease ended, or kept "
				           "their time)",
				           n);
		}
		svc_lease_wait(sv->leases, 500);
	}
	return NULL;
}
