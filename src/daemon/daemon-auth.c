/* Authentication of device requests: Bearer device tokens and Basic passwords. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon-internal.h"
#include "daemon-signin.h"
#include "http/http.h"
#include "vault/vault.h"

/* --- authentication --------------------------------------------------------- */

/* A password hash no password matches, checked for names the hub does not
 * know, so that a sign-in's time does not tell which users exist. Made on
 * first need (one Argon2id hash) and kept for the process. */
static char unknown_user_hash[VAULT_PASSWORD_HASH_SIZE];
static pthread_mutex_t unknown_user_lock = PTHREAD_MUTEX_INITIALIZER;

/* Copy the hash into hash_r, making it first if needed (again after a
 * failure, so one failure does not bring the timing difference back). */
static void unknown_user_hash_get(char hash_r[VAULT_PASSWORD_HASH_SIZE])
{
	pthread_mutex_lock(&unknown_user_lock);
	if (unknown_user_hash[0] == '\0') {
		unsigned char random[32];
		char password[65];
		const char *err;
		randombytes_buf(random, sizeof(random));
		sodium_bin2hex(password, sizeof(password), random, sizeof(random));
		if (vault_password_hash(password, strlen(password), unknown_user_hash, &err) < 0)
			unknown_user_hash[0] = '\0';
		sodium_memzero(password, sizeof(password));
	}
	memcpy(hash_r, unknown_user_hash, VAULT_PASSWORD_HASH_SIZE);
	pthread_mutex_unlock(&unknown_user_lock);
}

/* Check a Basic sign-in's password. 0 signed in; -1 not; -2 limited
 * (*retry_after_r set); -3 too busy hashing. The hub is held only to read
 * the user and the hash; the Argon2id check runs without any lock, at most
 * a few at once, and only after the attempt has been counted. */
int daemon_password_check(struct daemon *sv, const char *name, const char *password,
                          const char *addr, struct principal *p, unsigned *retry_after_r)
{
	const char *err;
	char hash[VAULT_PASSWORD_HASH_SIZE];
	pthread_mutex_lock(&sv->hub_lock);
	bool known = hub_valid_user_name(name) && hub_user_get(sv->hub, name, &p->user, &err) == 0;
	bool has_hash = known && hub_user_password_hash(sv->hub, &p->user, hash, &err) == 0;
	pthread_mutex_unlock(&sv->hub_lock);
	if (daemon_signin_password_begin(sv->signin, known ? p->user.name : NULL, addr,
	                                 retry_after_r) < 0)
		return -2;
	if (!has_hash) {
		/* The same work as a wrong password of a known user. */
		unknown_user_hash_get(hash);
	}
	if (daemon_signin_hash_enter(sv->signin) < 0)
		return -3;
	int r =
	    hash[0] != '\0' ? vault_password_verify(hash, password, strlen(password), &err) : -1;
	daemon_signin_hash_leave(sv->signin);
	if (r < 0 || !has_hash)
		return -1;
	daemon_signin_password_ok(sv->signin, p->user.name, addr);
	p->device_id = 0;
	snprintf(p->label, sizeof(p->label), "%s/basic", p->user.name);
	return 0;
}

/* Signing in and API use are activity for the lifecycle, and a device's
 * last use for 'device list' (one write each per HUB_ACTIVITY_RESOLUTION at
 * most). */
static void note_activity(struct daemon *sv, const struct principal *p,
                          const struct hub_device *device)
{
	const char *err;
	time_t now = time(NULL);
	pthread_mutex_lock(&sv->hub_lock);
	if (hub_user_activity(sv->hub, &p->user, now, &err) < 0 ||
	    (device != NULL && hub_device_used(sv->hub, device, now, &err) < 0))
		daemon_log(DAEMON_LOG_ERROR, p->user.name, 0, "%s", err);
	pthread_mutex_unlock(&sv->hub_lock);
}

int daemon_authenticate(struct daemon *sv, const struct http_request *req, struct principal *p,
                        unsigned *retry_after_r)
{
	const char *h = req->authorization, *err;
	if (h == NULL) {
		int r = daemon_websession_authenticate(sv, req, p);
		if (r == 0)
			note_activity(sv, p, NULL);
		return r;
	}
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		struct hub_device d;
		pthread_mutex_lock(&sv->hub_lock);
		int r = hub_device_auth(sv->hub, h + 7, &p->user, &d, &err);
		pthread_mutex_unlock(&sv->hub_lock);
		if (r < 0) {
			daemon_signin_token_failed(sv->signin, req->remote_addr);
			return daemon_signin_address_blocked(sv->signin, req->remote_addr,
			                                     retry_after_r)
			           ? -2
			           : -1;
		}
		p->device_id = d.id;
		snprintf(p->device, sizeof(p->device), "%s", d.name);
		snprintf(p->label, sizeof(p->label), "%s/%s", p->user.name, d.name);
		note_activity(sv, p, &d);
		return 0;
	}
	if (strncasecmp(h, "Basic ", 6) != 0)
		return -1;
	int r = -1;
	char *raw = sodium_malloc(1024);
	size_t len = 0;
	if (raw != NULL && sodium_base642bin((unsigned char *)raw, 1023, h + 6, strlen(h + 6), NULL,
	                                     &len, NULL, sodium_base64_VARIANT_ORIGINAL) == 0) {
		raw[len] = '\0';
		char *colon = memchr(raw, ':', len);
		if (colon != NULL && memchr(raw, '\0', len) == NULL) {
			*colon = '\0';
			r = daemon_password_check(sv, raw, colon + 1, req->remote_addr, p,
			                          retry_after_r);
			size_t plen = len - (size_t)(colon + 1 - raw);
			if (r == 0 && p->user.zero_access &&
			    strcmp(req->path, "/mailkeep/signin") == 0 &&
			    (p->password = sodium_malloc(plen + 1)) != NULL)
				memcpy(p->password, colon + 1, plen + 1);
		}
	}
	if (raw != NULL)
		sodium_free(raw);
	if (r == 0)
		note_activity(sv, p, NULL);
	return r;
}
