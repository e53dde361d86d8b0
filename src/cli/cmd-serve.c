/*
 * mailkeep serve: the hub daemon. The JMAP API (RFC 8620/8621) with
 * EventSource push for the devices, and a scheduler that syncs every
 * server-key user's stored accounts.
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded); the push
 * thread watches each user's change counter and each stream's device; the
 * sync thread runs the scheduled syncs with its own hub and store handles.
 * Shared state: the hub handle (hub_lock), the per-user store cache (each
 * entry with its own lock), the push stream list (push_lock), the sign-in
 * gate (serve-signin.h, its own locks). Order: a user's store lock may be
 * held while taking hub_lock (a request reading the user's accounts), never
 * the other way round. No lock is held while a password is hashed.
 *
 * Requests are authenticated on their headers alone (http.h's admit
 * callback), before any body byte is read; the handler gets the principal
 * as req->state.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "service/svc-lease.h"
#include "service/svc-outbox.h"
#include "serve-signin.h"
#include "jmap/jmap-submission.h"
#include "http/http.h"
#include "audit/audit.h"
#include "hub/hub.h"
#include "jmap/jmap-email.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap-session.h"
#include "jmap/jmap.h"
#include "mime/mime-cache.h"
#include "store/store-accounts.h"
#include "store/store.h"

#define SERVE_MAX_USERS 256
#define SERVE_MAX_STREAMS 256
#define SERVE_MAX_CONNECTIONS 128
#define SERVE_PER_ADDRESS 16 /* connections from one address (IPv6: /64) */
#define SERVE_HEADER_TIMEOUT 10
#define SERVE_BODY_MEMORY (64u * 1024 * 1024) /* request bodies held at once */
#define SERVE_MAX_REQUEST (10 * 1024 * 1024)
#define SERVE_MAX_DOWNLOAD (64u * 1024 * 1024)
#define SERVE_PARSE_CACHE (64u * 1024 * 1024) /* parsed messages, all users */
/* maxSizeUpload: the HTTP layer's body bound, so a larger upload gets its
 * 413 before any byte is kept. */
#define SERVE_MAX_UPLOAD SERVE_MAX_REQUEST

struct user_store {
	char name[65];
	struct store *store; /* NULL once the user's store went away */
	dev_t dev;           /* of the store.db that store has open */
	ino_t ino;
	pthread_mutex_t lock;
};

struct push_stream {
	struct http_stream *stream;
	char user[65];
	int64_t device_id; /* 0 for Basic sign-ins */
	unsigned ping;     /* seconds, 0 = none */
	unsigned types;    /* PUSH_TYPE_* bits the device asked for */
	bool close_after_state;
	uint64_t sent_state;
	time_t last_ping;
};

/* The data types a StateChange names (RFC 8620 7.1); all of them share the
 * store's change counter as their state. */
static const char *const push_type_names[] = {"Mailbox", "Email", "Thread"};
#define PUSH_TYPES_ALL ((1u << (sizeof(push_type_names) / sizeof(push_type_names[0]))) - 1)

struct serve {
	struct cli *cli;
	struct hub *hub;
	pthread_mutex_t hub_lock;
	struct jmap_registry *registry;
	struct mime_cache *parse_cache; /* keyed per user (jmap-email.h) */
	char public_url[512];
	struct user_store users[SERVE_MAX_USERS];
	size_t n_users;
	pthread_mutex_t users_lock;
	struct push_stream streams[SERVE_MAX_STREAMS];
	pthread_mutex_t push_lock;
	struct signin_gate *signin;
	unsigned sync_interval;
	/* Zero-access users' unlock leases (svc-lease.h): their key while they
	 * are signed in, for the scheduler and the outbox thread. */
	struct svc_leases *leases;
	volatile sig_atomic_t sync_now; /* a user was unlocked: sync now */
	volatile sig_atomic_t stop;
	volatile sig_atomic_t fts_relist; /* the indexer lists the users again */
};

static void serve_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR serve [--listen ADDR:PORT] [--public-url URL]\n"
	           "                [--tls-cert C --tls-key K] [--sync-interval SECONDS]\n"
	           "                [--access-log FILE] [--trusted-proxy ADDR]\n"
	           "                [--max-connections N] [--max-connections-per-address N]\n"
	           "                [--header-timeout SECONDS] [--max-body-memory BYTES]\n\n"
	           "Runs the hub: the JMAP API for devices at /.well-known/jmap and /jmap/...\n"
	           "(Bearer device tokens from 'mailkeep device add', or Basic with the hub\n"
	           "user's password), EventSource push, and a scheduler that syncs every\n"
	           "server-key user's stored accounts every SECONDS (default 300, 0 = never).\n"
	           "Zero-access users are synced only on their own 'sync --passphrase-file'.\n"
	           "Changes made through the API stay in the hosted mailbox (recorded for the\n"
	           "two-way sync); scheduled syncs do not undo them.\n\n"
	           "  --listen ADDR:PORT  default 127.0.0.1:8080\n"
	           "  --public-url URL    the URL devices use (behind a reverse proxy); default\n"
	           "                      http(s)://ADDR:PORT\n"
	           "  --tls-cert C --tls-key K  serve HTTPS itself (PEM files)\n"
	           "  --access-log FILE   one line per request, no secrets (default stderr)\n"
	           "  --trusted-proxy ADDR  the reverse proxy's address: for its requests the\n"
	           "                      client is the last X-Forwarded-For entry (access log,\n"
	           "                      sign-in rate limit); never believed from others\n"
	           "  --max-connections N   open connections at most (default 128; each has a\n"
	           "                      thread)\n"
	           "  --max-connections-per-address N  from one address, an IPv6 /64 counting\n"
	           "                      as one (default 16; the trusted proxy is exempt)\n"
	           "  --header-timeout SECONDS  a connection must send a complete request head\n"
	           "                      within this (default 10), however slowly it trickles\n"
	           "  --max-body-memory BYTES  request bodies held in memory at once, all\n"
	           "                      clients together (default 64 MiB; more than 10 MiB);\n"
	           "                      beyond it 503 with Retry-After\n\n"
	           "Requests are authenticated on their headers before a body is read\n"
	           "(unauthenticated: 401, the body is never read). Password sign-ins are\n"
	           "limited before the password is checked: 10 a minute per user, 10 per\n"
	           "address (IPv4 address or IPv6 /64), 100 for the whole hub; beyond that\n"
	           "429 with Retry-After. Device tokens are not limited by another's guesses.\n");
}

/* --- per-user stores -------------------------------------------------------- */

/* The identity of the user's store.db now; false if there is none. */
static bool store_file_id(struct serve *sv, const char *user, dev_t *dev_r, ino_t *ino_r)
{
	const char *dir = cli_data_dir(sv->cli, true);
	char path[PATH_MAX];
	struct stat st;
	int n = dir != NULL ? snprintf(path, sizeof(path), "%s/users/%s/store.db", dir, user) : -1;
	if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) < 0)
		return false;
	*dev_r = st.st_dev;
	*ino_r = st.st_ino;
	return true;
}

/* Open the user's store into us (us->lock held, or us not yet shared). A
 * user whose folder is gone (purged) gets none: the folder is never made
 * here, so a purge racing with this cannot leave an orphan behind. */
static void user_store_open(struct serve *sv, struct user_store *us)
{
	const char *dir = cli_data_dir(sv->cli, true);
	char path[PATH_MAX];
	int n = dir != NULL ? snprintf(path, sizeof(path), "%s/users/%s", dir, us->name) : -1;
	if (n < 0 || (size_t)n >= sizeof(path) || access(path, F_OK) < 0 ||
	    cli_open_user_store(sv->cli, us->name, false, &us->store) < 0 ||
	    !store_file_id(sv, us->name, &us->dev, &us->ino)) {
		store_close(&us->store);
		us->store = NULL;
	}
}

static struct user_store *user_store_get(struct serve *sv, const char *user)
{
	pthread_mutex_lock(&sv->users_lock);
	struct user_store *us = NULL;
	for (size_t i = 0; i < sv->n_users; i++)
		if (strcmp(sv->users[i].name, user) == 0)
			us = &sv->users[i];
	if (us == NULL && sv->n_users < SERVE_MAX_USERS) {
		struct user_store fresh = {0};
		snprintf(fresh.name, sizeof(fresh.name), "%s", user);
		user_store_open(sv, &fresh);
		if (fresh.store != NULL) {
			us = &sv->users[sv->n_users++];
			*us = fresh;
			pthread_mutex_init(&us->lock, NULL);
		}
	}
	pthread_mutex_unlock(&sv->users_lock);
	return us;
}

/* Lock us and make sure its store is the user's store.db as it is now: a
 * store deleted or replaced behind serve's back (the lifecycle's purge, here
 * or by another process, then perhaps a new user of the same name) is
 * closed, so purged mail is not kept readable through an open handle and
 * nothing is written to deleted files, and opened again if there is a new
 * one. Returns false (unlocked) when the user has no store any more. */
static bool user_store_lock(struct serve *sv, struct user_store *us)
{
	pthread_mutex_lock(&us->lock);
	dev_t dev;
	ino_t ino;
	bool there = store_file_id(sv, us->name, &dev, &ino);
	if (us->store != NULL && (!there || dev != us->dev || ino != us->ino))
		store_close(&us->store);
	if (us->store == NULL)
		user_store_open(sv, us); /* none if the user's folder is gone */
	if (us->store == NULL) {
		pthread_mutex_unlock(&us->lock);
		return false;
	}
	return true;
}

/* user_store_get, then user_store_lock: the user's store, locked, or NULL. */
static struct user_store *user_store_acquire(struct serve *sv, const char *user)
{
	struct user_store *us = user_store_get(sv, user);
	return us != NULL && user_store_lock(sv, us) ? us : NULL;
}

/* --- authentication --------------------------------------------------------- */

struct principal {
	struct hub_user user;
	int64_t device_id;
	char device[65]; /* the device's name; "" for Basic */
	char label[140];
	/* POST /mailkeep/signin of a zero-access user only: the password, which
	 * is their passphrase, for the unlock (sodium_malloc; principal_free). */
	char *password;
};

static json_t *lease_until_json(struct serve *sv, const struct hub_user *u);

static void principal_free(void *state)
{
	struct principal *p = state;
	if (p == NULL)
		return;
	if (p->password != NULL)
		sodium_free(p->password); /* wipes */
	free(p);
}

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
static int authenticate_password(struct serve *sv, const char *name, const char *password,
                                 const char *addr, struct principal *p, unsigned *retry_after_r)
{
	const char *err;
	char hash[VAULT_PASSWORD_HASH_SIZE];
	pthread_mutex_lock(&sv->hub_lock);
	bool known = hub_valid_user_name(name) && hub_user_get(sv->hub, name, &p->user, &err) == 0;
	bool has_hash = known && hub_user_password_hash(sv->hub, &p->user, hash, &err) == 0;
	pthread_mutex_unlock(&sv->hub_lock);
	if (signin_password_begin(sv->signin, known ? p->user.name : NULL, addr, retry_after_r) < 0)
		return -2;
	if (!has_hash) {
		/* The same work as a wrong password of a known user. */
		unknown_user_hash_get(hash);
	}
	if (signin_hash_enter(sv->signin) < 0)
		return -3;
	int r =
	    hash[0] != '\0' ? vault_password_verify(hash, password, strlen(password), &err) : -1;
	signin_hash_leave(sv->signin);
	if (r < 0 || !has_hash)
		return -1;
	signin_password_ok(sv->signin, p->user.name, addr);
	p->device_id = 0;
	snprintf(p->label, sizeof(p->label), "%s/basic", p->user.name);
	return 0;
}

/* Signing in and API use are activity for the lifecycle, and a device's
 * last use for 'device list' (one write each per HUB_ACTIVITY_RESOLUTION at
 * most). */
static void note_activity(struct serve *sv, const struct principal *p,
                          const struct hub_device *device)
{
	const char *err;
	time_t now = time(NULL);
	pthread_mutex_lock(&sv->hub_lock);
	if (hub_user_activity(sv->hub, &p->user, now, &err) < 0 ||
	    (device != NULL && hub_device_used(sv->hub, device, now, &err) < 0))
		fprintf(stderr, "mailkeep: %s\n", err);
	pthread_mutex_unlock(&sv->hub_lock);
}

/* 0 signed in, -1 not (no or bad credentials), -2 limited, -3 busy. */
static int authenticate(struct serve *sv, const struct http_request *req, struct principal *p,
                        unsigned *retry_after_r)
{
	const char *h = req->authorization, *err;
	if (h == NULL)
		return -1;
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		struct hub_device d;
		pthread_mutex_lock(&sv->hub_lock);
		int r = hub_device_auth(sv->hub, h + 7, &p->user, &d, &err);
		pthread_mutex_unlock(&sv->hub_lock);
		if (r < 0) {
			signin_token_failed(sv->signin, req->remote_addr);
			return signin_address_blocked(sv->signin, req->remote_addr, retry_after_r)
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
			r = authenticate_password(sv, raw, colon + 1, req->remote_addr, p,
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

/* --- responses ---------------------------------------------------------------- */

static void respond_json(struct http_response *resp, unsigned status, json_t *body)
{
	const char *err;
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	http_response_set_status(resp, status, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/json", text, strlen(text), &err);
}

/* Every error body is an RFC 7807 problem, as RFC 8620 3.6.1 has it. */
static void respond_problem(struct http_response *resp, unsigned status, const char *type,
                            const char *detail)
{
	const char *err;
	json_t *body =
	    json_pack("{s:s,s:i,s:s}", "type", type, "status", (int)status, "detail", detail);
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	http_response_set_status(resp, status, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/problem+json", text, strlen(text), &err);
}

/* Is the request body declared as JSON ("application/json", any case,
 * parameters such as charset allowed)? RFC 8620 3.1. */
static bool content_is_json(const char *content_type)
{
	static const char json[] = "application/json";
	if (content_type == NULL || strncasecmp(content_type, json, sizeof(json) - 1) != 0)
		return false;
	char next = content_type[sizeof(json) - 1];
	return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

/* The session object (jmap-session.c), with the user's hub accounts for
 * the account names. */
static void respond_session(struct serve *sv, const struct hub_user *u,
                            struct http_response *resp)
{
	const char *err;
	struct hub_account *accounts = NULL;
	size_t n = 0;
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_account_list(sv->hub, u->id, &accounts, &n, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	struct user_store *us = r == 0 ? user_store_acquire(sv, u->name) : NULL;
	json_t *session = NULL;
	if (us != NULL) {
		uint64_t modseq = 0;
		char state[64] = "";
		store_read_modseq(us->store, &modseq, &err);
		struct jmap_session_limits limits = {
		    .max_size_upload = SERVE_MAX_UPLOAD,
		    .max_size_request = SERVE_MAX_REQUEST,
		    .max_concurrent_upload = 4,
		    .max_concurrent_requests = 8,
		    .max_calls_in_request = 32,
		    .max_objects_in_get = JMAP_MAIL_MAX_OBJECTS_IN_GET,
		    .max_objects_in_set = 500,
		};
		/* Built first: it makes the store accounts the state counts. */
		session = jmap_session_json(us->store, u->name, sv->public_url, "", accounts, n,
		                            &limits, &err);
		if (session != NULL &&
		    jmap_session_state(us->store, modseq, state, sizeof(state), &err) == 0) {
			json_object_set_new(session, "state", json_string(state));
			json_t *caps = json_object_get(session, "capabilities");
			if (u->zero_access && caps != NULL)
				json_object_set_new(caps, "urn:mailkeep:lease",
				                    json_pack("{s:o}", "unlockedUntil",
				                              lease_until_json(sv, u)));
		} else {
			json_decref(session);
			session = NULL;
		}
		pthread_mutex_unlock(&us->lock);
	}
	hub_accounts_free(&accounts, n);
	if (session == NULL) {
		respond_problem(resp, 500, "about:blank", "cannot build the session");
		return;
	}
	respond_json(resp, 200, session);
}

/* Value of a query parameter (no percent-decoding: our values are simple). */
static bool query_param(const char *query, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	for (const char *p = query; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '&');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			if (vlen >= size)
				return false;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* The names of the methods in a request that change mail ("Email/set",
 * "Mailbox/set", "Email/import", ...) as "A,B", at most size bytes; "" if
 * none (or the request is not even JSON: jmap_process() answers that).
 * Reads are in the access log; changes also go to the user's audit log. */
static void request_changes(const struct http_request *req, char *out, size_t size)
{
	out[0] = '\0';
	if (memmem(req->body, req->body_len, "/set\"", 5) == NULL &&
	    memmem(req->body, req->body_len, "/import\"", 8) == NULL &&
	    memmem(req->body, req->body_len, "/copy\"", 6) == NULL)
		return;
	json_t *root =
	    json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
	json_t *calls = json_object_get(root, "methodCalls");
	size_t i, o = 0;
	json_t *call;
	json_array_foreach(calls, i, call)
	{
		const char *name = json_string_value(json_array_get(call, 0));
		size_t len = name != NULL ? strlen(name) : 0;
		bool change = (len > 4 && strcmp(name + len - 4, "/set") == 0) ||
		              (len > 5 && strcmp(name + len - 5, "/copy") == 0) ||
		              (len > 7 && strcmp(name + len - 7, "/import") == 0);
		if (!change || strstr(out, name) != NULL)
			continue;
		if (o + len + 2 >= size) {
			snprintf(out + o, size - o, "%s", o + 4 < size ? ",..." : "");
			break;
		}
		o += (size_t)snprintf(out + o, size - o, "%s%s", o > 0 ? "," : "", name);
	}
	json_decref(root);
}

/* Write the audit entry for a device's change before it happens; -2 if the
 * log stayed busy beyond the bounded wait (temporary), -1 if it
 * cannot be written (the change must not proceed). */
static int audit_change(struct serve *sv, const struct principal *p, const char *methods)
{
	const char *err;
	const char *slash = strchr(p->label, '/');
	struct audit_detail d[] = {{"device", slash != NULL ? slash + 1 : "-"},
	                           {"methods", methods}};
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_audit(sv->hub, &p->user, AUDIT_API_CHANGE, 0, d, 2, &err);
	if (r < 0) {
		fprintf(stderr, "mailkeep: audit for %s: %s\n", p->user.name, err);
		if (hub_error_is_temporary(sv->hub))
			r = -2;
	}
	pthread_mutex_unlock(&sv->hub_lock);
	return r;
}

/* The user's hub accounts for a request that needs them (Identity/get,
 * EmailSubmission): read once, on first use, not for every request. */
struct account_loader {
	struct serve *sv;
	int64_t user_id;
	struct hub_account *accounts;
	size_t n;
};

static int load_accounts(struct jmap_mail_ctx *ctx)
{
	struct account_loader *l = ctx->loader;
	const char *err;
	pthread_mutex_lock(&l->sv->hub_lock);
	int r = hub_account_list(l->sv->hub, l->user_id, &l->accounts, &l->n, &err);
	pthread_mutex_unlock(&l->sv->hub_lock);
	if (r < 0)
		return -1;
	ctx->hub_accounts = l->accounts;
	ctx->n_hub_accounts = l->n;
	return 0;
}

static void handle_api(struct serve *sv, const struct principal *p, const struct http_request *req,
                       struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		respond_problem(resp, 405, "about:blank", "use POST");
		return;
	}
	if (!content_is_json(req->content_type)) {
		respond_problem(resp, 400, "urn:ietf:params:jmap:error:notJSON",
		                "the request's Content-Type is not application/json");
		return;
	}
	struct user_store *us = user_store_get(sv, p->user.name);
	if (us == NULL) {
		respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	char methods[AUDIT_MAX_VALUE_SIZE];
	request_changes(req, methods, sizeof(methods));
	int audited = methods[0] != '\0' ? audit_change(sv, p, methods) : 0;
	if (audited == -2) {
		/* The log stayed busy beyond the bounded wait: nothing was
		 * changed, the device may try again. */
		respond_problem(resp, 503, "about:blank", "the audit log is busy; try again");
		return;
	}
	if (audited < 0) {
		respond_problem(resp, 500, "about:blank", "cannot write the audit log");
		return;
	}
	if (!user_store_lock(sv, us)) {
		respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	struct account_loader loader = {.sv = sv, .user_id = p->user.id};
	struct jmap_mail_ctx ctx = {.store = us->store,
	                            .cache = sv->parse_cache,
	                            .user_name = p->user.name,
	                            .account_id = "",
	                            .load_accounts = load_accounts,
	                            .loader = &loader};
	uint64_t modseq = 0;
	store_read_modseq(us->store, &modseq, &err);
	snprintf(ctx.state, sizeof(ctx.state), "%llu", (unsigned long long)modseq);
	char session_state[64] = "";
	jmap_session_state(us->store, modseq, session_state, sizeof(session_state), &err);
	struct jmap_limits limits = {SERVE_MAX_REQUEST, 32, 64};
	struct jmap_output out;
	int r = jmap_process(sv->registry, &limits, &ctx, session_state, req->body, req->body_len,
	                     &out, &err);
	pthread_mutex_unlock(&us->lock);
	hub_accounts_free(&loader.accounts, loader.n);
	if (r < 0) {
		respond_problem(resp, 500, "about:blank", "server failure");
		return;
	}
	http_response_set_status(resp, out.status, &err);
	http_response_set_body(resp, out.content_type, out.body, out.body_len, &err);
}

static bool percent_decode(const char *src, char *dst, size_t size);

/* A media type with optional parameters ("text/plain; charset=utf-8"):
 * printable ASCII, a type and a subtype of token characters. */
static bool media_type_ok(const char *t)
{
	static const char token[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                            "0123456789!#$&^_.+-";
	size_t type_len = strspn(t, token);
	if (type_len == 0 || t[type_len] != '/' || strspn(t + type_len + 1, token) == 0)
		return false;
	for (const char *c = t; *c != '\0'; c++)
		if (*c < 0x20 || *c > 0x7e)
			return false;
	return true;
}

static void handle_download(struct serve *sv, const struct principal *p,
                            const struct http_request *req, struct http_response *resp)
{
	const char *err;
	/* /jmap/download/{accountId}/{blobId}/{name} */
	char acct[80], blob[JMAP_MAX_ID + 1];
	const char *rest = req->path + strlen("/jmap/download/");
	const char *slash = strchr(rest, '/');
	const char *slash2 = slash != NULL ? strchr(slash + 1, '/') : NULL;
	if (slash == NULL || slash2 == NULL || (size_t)(slash - rest) >= sizeof(acct) ||
	    (size_t)(slash2 - slash - 1) >= sizeof(blob)) {
		respond_problem(resp, 404, "about:blank", "no such blob");
		return;
	}
	memcpy(acct, rest, (size_t)(slash - rest));
	acct[slash - rest] = '\0';
	memcpy(blob, slash + 1, (size_t)(slash2 - slash - 1));
	blob[slash2 - slash - 1] = '\0';
	if (!jmap_is_id(blob)) {
		respond_problem(resp, 404, "about:blank", "no such blob");
		return;
	}
	/* A whole message, or a body part's decoded bytes (jmap-email.h), of
	 * an Email of the account or an upload of the user. */
	size_t size = 0;
	char *data = NULL, *part_type = NULL;
	struct user_store *us = user_store_acquire(sv, p->user.name);
	if (us == NULL) {
		respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	int64_t account = 0;
	int found = jmap_account_known(us->store, acct, &account, &err);
	if (found == 1)
		found = jmap_blob_visible(us->store, account, blob, &err);
	if (found == 1)
		found = jmap_email_blob_content(us->store, blob, SERVE_MAX_DOWNLOAD, &data, &size,
		                                &part_type, &err);
	pthread_mutex_unlock(&us->lock);
	if (found != 1) {
		respond_problem(resp, found == 0 ? 404 : 500, "about:blank",
		                found == 0 ? "no such blob" : "cannot read the blob");
		return;
	}
	static const char type_chars[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/.+-";
	char type[128] = "application/octet-stream";
	if (strspn(part_type, type_chars) == strlen(part_type) && strlen(part_type) < sizeof(type))
		snprintf(type, sizeof(type), "%s", part_type);
	free(part_type);
	/* ?type= is percent-encoded by clients ("text%2Fplain"); the media
	 * type the client asks for is what it gets (RFC 8620 6.2). */
	char raw[3 * sizeof(type)], asked[sizeof(type)];
	if (query_param(req->query, "type", raw, sizeof(raw)) &&
	    percent_decode(raw, asked, sizeof(asked)) && media_type_ok(asked))
		snprintf(type, sizeof(type), "%s", asked);
	http_response_set_status(resp, 200, &err);
	http_response_add_header(resp, "Cache-Control", "private, immutable, max-age=31536000",
	                         &err);
	http_response_set_body(resp, type, data, (size_t)size, &err);
}

/* Percent-decode src into dst (size > 0); false if malformed or too long. */
static bool percent_decode(const char *src, char *dst, size_t size)
{
	size_t o = 0;
	for (const char *p = src; *p != '\0'; p++) {
		char c = *p;
		if (c == '%') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
				return false;
			const char hex[3] = {p[1], p[2], '\0'};
			c = (char)strtoul(hex, NULL, 16);
			p += 2;
		}
		if (c == '\0' || o + 1 >= size)
			return false;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return true;
}

/* "types" of an event source URL (RFC 8620 7.3): "*" or a comma-separated
 * list of type names. Unknown names are ignored (the device may know types
 * this hub does not have); -1 if malformed. */
static int push_types_parse(const char *raw, unsigned *types_r)
{
	char text[256];
	if (!percent_decode(raw, text, sizeof(text)))
		return -1;
	if (strcmp(text, "*") == 0) {
		*types_r = PUSH_TYPES_ALL;
		return 0;
	}
	unsigned types = 0;
	for (char *save = NULL, *tok = strtok_r(text, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		for (size_t i = 0; i < sizeof(push_type_names) / sizeof(push_type_names[0]); i++)
			if (strcmp(tok, push_type_names[i]) == 0)
				types |= 1u << i;
	}
	*types_r = types;
	return 0;
}

/* POST /jmap/upload/{accountId}/ (RFC 8620 6.1): the body becomes a blob
 * of the user's store, kept as an upload for STORE_UPLOAD_TTL unless a
 * message uses it. */
static void handle_upload(struct serve *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp)
{
	const char *err;
	const char *rest = req->path + strlen("/jmap/upload/");
	size_t alen = strcspn(rest, "/");
	if (strcmp(req->method, "POST") != 0) {
		respond_problem(resp, 405, "about:blank", "use POST");
		return;
	}
	char acct[32];
	if (alen == 0 || alen >= sizeof(acct) ||
	    (rest[alen] != '\0' && strcmp(rest + alen, "/") != 0)) {
		respond_problem(resp, 404, "about:blank", "no such account");
		return;
	}
	memcpy(acct, rest, alen);
	acct[alen] = '\0';
	if (req->body_len > SERVE_MAX_UPLOAD) {
		json_t *body = json_pack(
		    "{s:s,s:i,s:s,s:s}", "type", "urn:ietf:params:jmap:error:limit", "status", 413,
		    "limit", "maxSizeUpload", "detail", "the upload is larger than maxSizeUpload");
		respond_json(resp, 413, body);
		return;
	}
	char type[256] = "application/octet-stream";
	const char *ct = req->content_type;
	if (ct != NULL && ct[0] != '\0' && strlen(ct) < sizeof(type)) {
		bool printable = true;
		for (const char *c = ct; *c != '\0'; c++)
			printable &= *c >= 0x20 && *c < 0x7f;
		if (printable)
			snprintf(type, sizeof(type), "%s", ct);
	}
	int64_t blob_id = 0;
	struct store_blob_writer *w = NULL;
	struct user_store *us = user_store_acquire(sv, p->user.name);
	if (us == NULL) {
		respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	/* An upload belongs to the user (any of the user's accounts may use
	 * it); the account must be one of theirs. */
	int64_t account = 0;
	int known = jmap_account_known(us->store, acct, &account, &err);
	if (known != 1) {
		pthread_mutex_unlock(&us->lock);
		respond_problem(resp, known == 0 ? 404 : 500, "about:blank",
		                known == 0 ? "no such account" : "cannot open the user's store");
		return;
	}
	int r = store_begin(us->store, &err);
	if (r == 0) {
		r = store_blob_begin(us->store, req->body_len, &w, &err);
		if (r == 0 && (store_blob_write(w, req->body, req->body_len, &err) < 0 ||
		               store_blob_finish(&w, &blob_id, &err) < 0)) {
			store_blob_abort(&w);
			r = -1;
		}
		if (r == 0)
			r = store_upload_add(us->store, blob_id, type, (int64_t)time(NULL), &err);
		if (r == 0)
			r = store_commit(us->store, &err);
		else
			store_rollback(us->store);
	}
	pthread_mutex_unlock(&us->lock);
	if (r < 0) {
		respond_problem(resp, 500, "about:blank", "cannot store the upload");
		return;
	}
	char bid[32];
	snprintf(bid, sizeof(bid), "B%lld", (long long)blob_id);
	respond_json(resp, 201,
	             json_pack("{s:s,s:s,s:s,s:I}", "accountId", acct, "blobId", bid,
	                       "type", type, "size", (json_int_t)req->body_len));
}

static void handle_events(struct serve *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp)
{
	const char *err;
	char ping_text[16] = "0", types_text[256] = "*", close_text[16] = "no";
	if (!query_param(req->query, "types", types_text, sizeof(types_text)) &&
	    strstr(req->query != NULL ? req->query : "", "types=") != NULL) {
		respond_problem(resp, 400, "about:blank", "types is too long");
		return;
	}
	query_param(req->query, "ping", ping_text, sizeof(ping_text));
	query_param(req->query, "closeafter", close_text, sizeof(close_text));
	unsigned types;
	if (push_types_parse(types_text, &types) < 0) {
		respond_problem(resp, 400, "about:blank", "bad types");
		return;
	}
	if (strcmp(close_text, "state") != 0 && strcmp(close_text, "no") != 0) {
		respond_problem(resp, 400, "about:blank", "closeafter is state or no");
		return;
	}
	char *end;
	long ping = strtol(ping_text, &end, 10);
	if (*end != '\0' || ping < 0 || ping > 3600) {
		respond_problem(resp, 400, "about:blank", "bad ping");
		return;
	}
	if (ping > 0 && ping < 5)
		ping = 5;
	struct http_stream *stream;
	if (http_stream_create(64 * 1024, NULL, NULL, &stream, &err) < 0) {
		respond_problem(resp, 500, "about:blank", "cannot create the stream");
		return;
	}
	pthread_mutex_lock(&sv->push_lock);
	struct push_stream *slot = NULL;
	for (size_t i = 0; i < SERVE_MAX_STREAMS && slot == NULL; i++)
		if (sv->streams[i].stream == NULL)
			slot = &sv->streams[i];
	if (slot != NULL) {
		slot->stream = stream;
		snprintf(slot->user, sizeof(slot->user), "%s", p->user.name);
		slot->device_id = p->device_id;
		slot->ping = (unsigned)ping;
		slot->types = types;
		slot->close_after_state = strcmp(close_text, "state") == 0;
		slot->sent_state = UINT64_MAX; /* send the current state first */
		slot->last_ping = time(NULL);
	}
	pthread_mutex_unlock(&sv->push_lock);
	if (slot == NULL) {
		http_stream_unref(&stream);
		respond_problem(resp, 503, "about:blank", "too many push streams");
		return;
	}
	http_response_add_header(resp, "Cache-Control", "no-cache", &err);
	http_response_set_status(resp, 200, &err);
	http_response_set_stream(resp, "text/event-stream", stream, &err);
}

/* --- sign-in and sign-out (unlock leases) --------------------------------------- */

/* "unlockedUntil" as RFC 3339 UTC, or JSON null. */
static json_t *lease_until_json(struct serve *sv, const struct hub_user *u)
{
	time_t until;
	char when[32];
	struct tm tm;
	if (!u->zero_access || !svc_lease_held(sv->leases, u->id, &until) ||
	    gmtime_r(&until, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(when);
}

/* POST /mailkeep/signin, with the hub password (Basic), ?device=NAME
 * optional: makes a device token for this sign-in and, for a zero-access
 * user, unlocks (or extends) their lease, the device its holder. */
static void handle_signin(struct serve *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		respond_problem(resp, 405, "about:blank", "sign in with POST");
		return;
	}
	if (p->device_id != 0) {
		respond_problem(resp, 400, "about:blank", "sign in with the hub password (Basic)");
		return;
	}
	if (p->user.zero_access && p->password == NULL) {
		respond_problem(resp, 503, "about:blank", "out of secure memory");
		return;
	}
	char name[65];
	if (!query_param(req->query, "device", name, sizeof(name)) || name[0] == '\0') {
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
		respond_problem(resp, 400, "about:blank", err);
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
			fprintf(stderr, "mailkeep: unlock: %s\n", error);
			respond_problem(resp, 503, "about:blank", "cannot unlock the account now");
			return;
		}
		if (u == 1) {
			printf("lease: %s unlocked\n", p->user.name);
			fflush(stdout);
		}
		sv->sync_now = 1;
	}
	json_t *body = json_pack("{s:s,s:s,s:b}", "device", name, "token", token, "zeroAccess",
	                         p->user.zero_access);
	sodium_memzero(token, sizeof(token));
	if (body == NULL) {
		respond_problem(resp, 500, "about:blank", "out of memory");
		return;
	}
	json_object_set_new(body, "unlockedUntil", lease_until_json(sv, &p->user));
	respond_json(resp, 200, body);
}

/* POST /mailkeep/signout with the device token the sign-in gave: revokes
 * it; the lease is wiped when no device holding it remains. */
static void handle_signout(struct serve *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		respond_problem(resp, 405, "about:blank", "sign out with POST");
		return;
	}
	if (p->device_id == 0) {
		respond_problem(resp, 400, "about:blank",
		                "sign out with the device token the sign-in gave (Bearer)");
		return;
	}
	int64_t gone;
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_device_revoke(sv->hub, &p->user, p->device, &gone, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	if (r < 0) {
		respond_problem(resp, 503, "about:blank", err);
		return;
	}
	if (svc_lease_release(sv->leases, p->user.id, p->device_id, "signout") == 1) {
		printf("lease: %s wiped (signout)\n", p->user.name);
		fflush(stdout);
	}
	json_t *body = json_pack("{s:b}", "signedOut", 1);
	if (body != NULL)
		json_object_set_new(body, "unlockedUntil", lease_until_json(sv, &p->user));
	respond_json(resp, 200, body != NULL ? body : json_object());
}

/* Admission (http.h): every request is authenticated on its headers, before
 * any of its body is read; the principal goes on to the handler. */
static void admit(void *context, const struct http_request *req, struct http_response *resp,
                  void **state_r)
{
	struct serve *sv = context;
	const char *err;
	struct principal *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		respond_problem(resp, 503, "about:blank", "out of memory");
		return;
	}
	unsigned retry_after = SIGNIN_WINDOW;
	int r = authenticate(sv, req, p, &retry_after);
	if (r == 0) {
		*state_r = p;
		return;
	}
	principal_free(p);
	if (r == -2 || r == -3) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%u", r == -3 ? 5 : retry_after);
		http_response_add_header(resp, "Retry-After", secs, &err);
		if (r == -2)
			respond_problem(resp, 429, "about:blank",
			                "too many failed sign-ins; wait a minute");
		else
			respond_problem(resp, 503, "about:blank",
			                "too many sign-ins at once; try again");
		return;
	}
	http_response_add_header(resp, "WWW-Authenticate",
	                         "Bearer realm=\"mailkeep\", Basic realm=\"mailkeep\"", &err);
	respond_problem(resp, 401, "about:blank", "sign in with a device token or password");
}

static void handler(void *context, const struct http_request *req, struct http_response *resp)
{
	struct serve *sv = context;
	const char *err;
	if (req->state == NULL) { /* admit() let no one through without one */
		respond_problem(resp, 500, "about:blank", "not signed in");
		return;
	}
	struct principal p = *(const struct principal *)req->state;
	http_response_set_auth_label(resp, p.label, &err);
	if (strcmp(req->path, "/.well-known/jmap") == 0) {
		respond_session(sv, &p.user, resp);
	} else if (strcmp(req->path, "/jmap/api/") == 0 || strcmp(req->path, "/jmap/api") == 0) {
		handle_api(sv, &p, req, resp);
	} else if (strncmp(req->path, "/jmap/download/", 15) == 0) {
		handle_download(sv, &p, req, resp);
	} else if (strncmp(req->path, "/jmap/eventsource", 17) == 0) {
		handle_events(sv, &p, req, resp);
	} else if (strncmp(req->path, "/jmap/upload/", 13) == 0) {
		handle_upload(sv, &p, req, resp);
	} else if (strcmp(req->path, "/mailkeep/signin") == 0) {
		handle_signin(sv, &p, req, resp);
	} else if (strcmp(req->path, "/mailkeep/signout") == 0) {
		handle_signout(sv, &p, req, resp);
	} else {
		respond_problem(resp, 404, "about:blank", "not found");
	}
}

/* --- push ---------------------------------------------------------------------- */

static void push_event(struct push_stream *ps, const char *event, const char *data)
{
	const char *err;
	char buf[4200];
	int n = snprintf(buf, sizeof(buf), "event: %s\ndata: %s\n\n", event, data);
	if (n > 0 && (size_t)n < sizeof(buf))
		http_stream_send(ps->stream, buf, (size_t)n, &err);
}

/* A StateChange naming the types the stream asked for, for each of the
 * user's JMAP accounts ("A<store account id>"); they all share the store's
 * change counter as their state. */
static void push_state_change(struct push_stream *ps, uint64_t modseq,
                              const struct store_account *accounts, size_t n_accounts)
{
	char data[4096];
	size_t o = (size_t)snprintf(data, sizeof(data), "{\"@type\":\"StateChange\",\"changed\":{");
	for (size_t a = 0; a < n_accounts && o < sizeof(data); a++) {
		o += (size_t)snprintf(data + o, sizeof(data) - o, "%s\"A%lld\":{", a > 0 ? "," : "",
		                      (long long)accounts[a].id);
		bool comma = false;
		for (size_t i = 0; i < sizeof(push_type_names) / sizeof(push_type_names[0]); i++) {
			if ((ps->types & (1u << i)) == 0 || o >= sizeof(data))
				continue;
			o += (size_t)snprintf(data + o, sizeof(data) - o, "%s\"%s\":\"%llu\"",
			                      comma ? "," : "", push_type_names[i],
			                      (unsigned long long)modseq);
			comma = true;
		}
		if (o < sizeof(data))
			o += (size_t)snprintf(data + o, sizeof(data) - o, "}");
	}
	if (o < sizeof(data) && (size_t)snprintf(data + o, sizeof(data) - o, "}}") < sizeof(data) - o)
		push_event(ps, "state", data);
}

/* Hourly: uploads no message used within a day go (RFC 8620 6.1). */
static void expire_uploads(struct serve *sv)
{
	const char *err;
	pthread_mutex_lock(&sv->users_lock);
	size_t n = sv->n_users;
	pthread_mutex_unlock(&sv->users_lock);
	for (size_t i = 0; i < n; i++) {
		struct user_store *us = &sv->users[i];
		if (!user_store_lock(sv, us))
			continue;
		if (store_begin(us->store, &err) == 0) {
			if (store_uploads_expire(us->store, (int64_t)time(NULL), NULL, &err) < 0 ||
			    store_commit(us->store, &err) < 0)
				store_rollback(us->store);
		}
		pthread_mutex_unlock(&us->lock);
	}
}

/* Every half second: drop finished streams, end those whose device was
 * revoked, send a StateChange when a user's change counter moved, ping. */
static void *push_thread(void *context)
{
	struct serve *sv = context;
	const char *err;
	time_t next_expiry = 0;
	while (!sv->stop) {
		if (time(NULL) >= next_expiry) {
			expire_uploads(sv);
			next_expiry = time(NULL) + 3600;
		}
		pthread_mutex_lock(&sv->push_lock);
		/* Revocations first, for every stream, before any store lock
		 * (which a long request may hold) is waited for. */
		for (size_t i = 0; i < SERVE_MAX_STREAMS; i++) {
			struct push_stream *ps = &sv->streams[i];
			if (ps->stream == NULL || ps->device_id == 0)
				continue;
			pthread_mutex_lock(&sv->hub_lock);
			int exists = hub_device_exists(sv->hub, ps->device_id, &err);
			pthread_mutex_unlock(&sv->hub_lock);
			if (exists == 0) {
				/* Revoked: the stream ends now. */
				http_stream_close(ps->stream);
				http_stream_unref(&ps->stream);
			}
		}
		for (size_t i = 0; i < SERVE_MAX_STREAMS; i++) {
			struct push_stream *ps = &sv->streams[i];
			if (ps->stream == NULL)
				continue;
			if (http_stream_is_closed(ps->stream)) {
				http_stream_unref(&ps->stream);
				continue;
			}
			struct user_store *us = user_store_acquire(sv, ps->user);
			uint64_t modseq = 0;
			struct store_account *accounts = NULL;
			size_t n_accounts = 0;
			if (us != NULL) {
				store_read_modseq(us->store, &modseq, &err);
				if (modseq != ps->sent_state &&
				    store_accounts_list(us->store, &accounts, &n_accounts, &err) < 0)
					n_accounts = 0;
				pthread_mutex_unlock(&us->lock);
			}
			if (modseq != ps->sent_state) {
				bool first = ps->sent_state == UINT64_MAX;
				ps->sent_state = modseq;
				/* closeafter=state (RFC 8620 7.3, for long polling through
				 * buffering proxies): no opening state; the first change is
				 * pushed and ends the stream. */
				bool skip = ps->close_after_state && first;
				if (!skip && ps->types != 0)
					push_state_change(ps, modseq, accounts, n_accounts);
				store_accounts_free(&accounts, n_accounts);
				if (skip)
					continue;
				if (ps->close_after_state) {
					http_stream_finish(ps->stream);
					http_stream_unref(&ps->stream);
					continue;
				}
			}
			time_t now = time(NULL);
			if (ps->ping > 0 && now - ps->last_ping >= (time_t)ps->ping) {
				char data[64];
				snprintf(data, sizeof(data), "{\"interval\":%u}", ps->ping);
				push_event(ps, "ping", data);
				ps->last_ping = now;
			}
		}
		pthread_mutex_unlock(&sv->push_lock);
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* --- scheduled syncs ---------------------------------------------------------- */

static void *sync_thread(void *context)
{
	struct serve *sv = context;
	time_t next = time(NULL);
	time_t retry = 0; /* after a temporary failure: 60 s, doubling, at most the interval */
	while (!sv->stop) {
		if (sv->sync_interval > 0 && (time(NULL) >= next || sv->sync_now)) {
			sv->sync_now = 0;
			/* A round: every server-key user, over a hub handle of its own
			 * (with the master key) for the round. */
			struct hub *hub = NULL;
			struct hub_user *users = NULL;
			size_t n = 0;
			const char *err;
			if (cli_open_hub(sv->cli, true, &hub) == 0 &&
			    hub_user_list(hub, &users, &n, &err) < 0) {
				cli_error("scheduler: %s", err);
				n = 0;
			}
			bool temporary = false;
			for (size_t i = 0; i < n && !sv->stop; i++) {
				if (users[i].zero_access) {
					if (!svc_lease_held(sv->leases, users[i].id, NULL)) {
						printf("scheduler: %s is zero-access and not signed "
						       "in; synced only while unlocked\n",
						       users[i].name);
						continue;
					}
					if (cli_sync_leased(hub, users[i].name, sv->leases) ==
					    EXIT_TEMPFAIL)
						temporary = true;
					continue;
				}
				if (cli_sync_stored(hub, users[i].name, 0, NULL, IMAP_COMPRESS_AUTO,
				                    true) == EXIT_TEMPFAIL)
					temporary = true;
			}
			free(users);
			hub_close(&hub);
			fflush(stdout);
			sv->fts_relist = 1;
			retry = !temporary ? 0 : retry == 0 ? 60 : retry * 2;
			if (retry > 0 && retry < (time_t)sv->sync_interval)
				next = time(NULL) + retry;
			else
				next = time(NULL) + (time_t)sv->sync_interval;
		}
		sleep(1);
	}
	return NULL;
}

/* Wipes the leases that expired or whose devices were all revoked. */
static void *lease_thread(void *context)
{
	struct serve *sv = context;
	while (!sv->stop) {
		svc_lease_tick(sv->leases, time(NULL));
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* --- background full-text indexing ------------------------------------------------ */

#define SERVE_FTS_BATCH 32         /* messages indexed per transaction */
#define SERVE_FTS_MERGE_PAGES 64   /* index pages rewritten per purge step */
#define SERVE_FTS_PURGE_EVERY 3600 /* seconds between purges of a user's index */

/* Works through each user's indexing backlog (and folds deleted text out
 * of the index) in small steps, each under the user's store lock, so an API
 * request waits for one step at most. A purge rewrites the whole index, so
 * words of expunged messages are folded out at most once an hour per user
 * (an account removal does it at once). All users' stores are opened at
 * start-up and after each scheduled sync round (sv->fts_relist); stores
 * already open are looked at every two seconds, which also catches syncs
 * run by other processes. */
static void *fts_thread(void *context)
{
	struct serve *sv = context;
	static time_t last_purge[SERVE_MAX_USERS];
	while (!sv->stop) {
		if (sv->fts_relist) {
			sv->fts_relist = 0;
			struct hub_user *users = NULL;
			size_t n = 0;
			const char *err;
			pthread_mutex_lock(&sv->hub_lock);
			if (hub_user_list(sv->hub, &users, &n, &err) < 0)
				n = 0;
			pthread_mutex_unlock(&sv->hub_lock);
			for (size_t i = 0; i < n; i++)
				user_store_get(sv, users[i].name);
			free(users);
		}
		pthread_mutex_lock(&sv->users_lock);
		size_t n_users = sv->n_users;
		pthread_mutex_unlock(&sv->users_lock);
		for (size_t i = 0; i < n_users && !sv->stop; i++) {
			struct user_store *us = &sv->users[i];
			bool indexed = false,
			     purged = time(NULL) < last_purge[i] + SERVE_FTS_PURGE_EVERY;
			const char *err;
			while (!sv->stop && !(indexed && purged)) {
				bool purge_step = indexed;
				if (!user_store_lock(sv, us))
					break;
				int r = !indexed ? store_fts_catch_up(us->store, SERVE_FTS_BATCH,
				                                      &indexed, &err)
				                 : store_fts_purge(us->store, SERVE_FTS_MERGE_PAGES,
				                                   &purged, &err);
				pthread_mutex_unlock(&us->lock);
				if (r == 0 && purge_step && purged)
					last_purge[i] = time(NULL);
				if (r < 0) {
					if (err != store_fts_busy) {
						printf("indexer: %s: %s\n", us->name, err);
						fflush(stdout);
					}
					break;
				}
			}
		}
		for (int t = 0; t < 20 && !sv->stop && !sv->fts_relist; t++)
			usleep(100 * 1000);
	}
	return NULL;
}

/* --- main ------------------------------------------------------------------------ */

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"public-url", required_argument, NULL, 'u'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"sync-interval", required_argument, NULL, 's'},
	    {"access-log", required_argument, NULL, 'a'},
	    {"trusted-proxy", required_argument, NULL, 'p'},
	    {"max-connections", required_argument, NULL, 'C'},
	    {"max-connections-per-address", required_argument, NULL, 'A'},
	    {"header-timeout", required_argument, NULL, 'T'},
	    {"max-body-memory", required_argument, NULL, 'M'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *listen = "127.0.0.1:8080", *public_url = NULL, *cert = NULL, *key = NULL;
	const char *access_log = NULL, *proxy = NULL, *err;
	long interval = 300;
	unsigned max_connections = SERVE_MAX_CONNECTIONS, per_address = SERVE_PER_ADDRESS;
	unsigned header_timeout = SERVE_HEADER_TIMEOUT;
	size_t body_memory = SERVE_BODY_MEMORY;
	unsigned long long value;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'u':
			public_url = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			access_log = optarg;
			break;
		case 'p':
			proxy = optarg;
			break;
		case 's':
			interval = strtol(optarg, &end, 10);
			if (*end != '\0' || interval < 0 || interval > 86400 * 7) {
				cli_error("--sync-interval takes 0 to 604800 seconds");
				return EXIT_USAGE;
			}
			break;
		case 'C':
		case 'A':
		case 'T':
		case 'M':
			errno = 0;
			value = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || value < 1 ||
			    (c == 'C' && value > 4096) || (c == 'A' && value > 4096) ||
			    (c == 'T' && value > 3600) ||
			    (c == 'M' && (value <= SERVE_MAX_REQUEST || value > (1ull << 40)))) {
				cli_error("bad --%s value '%s' (see --help)",
				          c == 'C'   ? "max-connections"
				          : c == 'A' ? "max-connections-per-address"
				          : c == 'T' ? "header-timeout"
				                     : "max-body-memory",
				          optarg);
				return EXIT_USAGE;
			}
			if (c == 'C')
				max_connections = (unsigned)value;
			else if (c == 'A')
				per_address = (unsigned)value;
			else if (c == 'T')
				header_timeout = (unsigned)value;
			else
				body_memory = (size_t)value;
			break;
		case 'h':
			serve_usage(stdout);
			return EXIT_OK;
		default:
			serve_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || (cert == NULL) != (key == NULL)) {
		cli_error(optind != argc ? "serve takes no arguments"
		                         : "--tls-cert and --tls-key go together");
		return EXIT_USAGE;
	}
	char addr[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
	if (colon == NULL || (size_t)(colon - listen) >= sizeof(addr) || colon == listen ||
	    *end != '\0' || port < 0 || port > 65535) {
		cli_error("bad --listen '%s': use ADDR:PORT, e.g. 127.0.0.1:8080", listen);
		return EXIT_USAGE;
	}
	memcpy(addr, listen, (size_t)(colon - listen));
	addr[colon - listen] = '\0';

	static struct serve sv_storage;
	struct serve *sv = &sv_storage;
	sv->cli = cli;
	sv->sync_interval = (unsigned)interval;
	pthread_mutex_init(&sv->hub_lock, NULL);
	pthread_mutex_init(&sv->users_lock, NULL);
	pthread_mutex_init(&sv->push_lock, NULL);
	if ((sv->signin = signin_gate_create()) == NULL) {
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	if (cli_open_hub(cli, true, &sv->hub) < 0)
		return EXIT_FAIL;
	if ((sv->leases = svc_leases_create(sv->hub, &sv->hub_lock)) == NULL) {
		cli_error("out of memory");
		hub_close(&sv->hub);
		return EXIT_FAIL;
	}
	if (jmap_registry_create(&sv->registry, &err) < 0 ||
	    jmap_mail_register(sv->registry, &err) < 0 ||
	    jmap_submission_register(sv->registry, &err) < 0) {
		cli_error("%s", err);
		hub_close(&sv->hub);
		return EXIT_FAIL;
	}
	if ((sv->parse_cache = mime_cache_create(SERVE_PARSE_CACHE)) == NULL) {
		cli_error("out of memory");
		jmap_registry_free(&sv->registry);
		hub_close(&sv->hub);
		return EXIT_FAIL;
	}
	FILE *log = stderr;
	if (access_log != NULL && (log = fopen(access_log, "a")) == NULL) {
		cli_error("cannot open --access-log %s", access_log);
		return EXIT_FAIL;
	}
	struct http_settings hs = {.address = addr,
	                           .port = (unsigned)port,
	                           .tls_cert_file = cert,
	                           .tls_key_file = key,
	                           .max_body_size = SERVE_MAX_REQUEST,
	                           .max_connections = max_connections,
	                           .timeout_seconds = 60,
	                           .access_log = log,
	                           .trusted_proxy = proxy,
	                           .header_timeout_seconds = header_timeout,
	                           .max_connections_per_address = per_address,
	                           .max_buffered_bytes = body_memory,
	                           .admit = admit,
	                           .state_free = principal_free};
	struct http_server *server;
	if (http_server_start(&hs, handler, sv, &server, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	if (public_url != NULL)
		snprintf(sv->public_url, sizeof(sv->public_url), "%s", public_url);
	else
		snprintf(sv->public_url, sizeof(sv->public_url), "%s://%s:%u",
		         cert != NULL ? "https" : "http", addr, http_server_port(server));
	size_t ul = strlen(sv->public_url);
	while (ul > 0 && sv->public_url[ul - 1] == '/')
		sv->public_url[--ul] = '\0';

	printf("mailkeep serving %s (JMAP session at %s/.well-known/jmap), sync every %ld s\n",
	       sv->public_url, sv->public_url, interval);
	fflush(stdout);
	/* The inactivity lifecycle (cmd-lifecycle.c): a round now, before any
	 * thread opens a user's store (a purge must not race the indexer
	 * re-creating the store it removes), then one a day. */
	pthread_mutex_lock(&sv->hub_lock);
	cli_lifecycle_run(sv->hub, time(NULL), false);
	pthread_mutex_unlock(&sv->hub_lock);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_t push, syncer, indexer, leaser;
	sv->fts_relist = 1;
	pthread_create(&push, NULL, push_thread, sv);
	pthread_create(&syncer, NULL, sync_thread, sv);
	pthread_create(&indexer, NULL, fts_thread, sv);
	pthread_create(&leaser, NULL, lease_thread, sv);
	pthread_t outboxer; /* sends queued mail (svc-outbox.c) */
	struct outbox_worker ow = {
	    .cli = cli, .stop = &sv->stop, .retry_base = SVC_OUTBOX_RETRY_BASE, .interval_s = 2,
	    .leases = sv->leases};
	pthread_create(&outboxer, NULL, cli_outbox_thread, &ow);
	pthread_t lifecycler;
	struct lifecycle_worker lw = {.cli = cli, .stop = &sv->stop, .interval_s = 86400};
	pthread_create(&lifecycler, NULL, cli_lifecycle_thread, &lw);
	int sig;
	sigwait(&set, &sig);
	printf("mailkeep: signal %d, stopping\n", sig);
	sv->stop = 1;
	pthread_join(push, NULL);
	pthread_join(syncer, NULL);
	pthread_join(indexer, NULL);
	pthread_join(outboxer, NULL);
	pthread_join(lifecycler, NULL);
	pthread_join(leaser, NULL);
	pthread_mutex_lock(&sv->push_lock);
	for (size_t i = 0; i < SERVE_MAX_STREAMS; i++) {
		if (sv->streams[i].stream != NULL) {
			http_stream_close(sv->streams[i].stream);
			http_stream_unref(&sv->streams[i].stream);
		}
	}
	pthread_mutex_unlock(&sv->push_lock);
	http_server_stop(&server);
	/* Every key held is wiped (lease.wiped reason=shutdown). */
	svc_leases_free(&sv->leases);
	for (size_t i = 0; i < sv->n_users; i++)
		store_close(&sv->users[i].store);
	jmap_registry_free(&sv->registry);
	mime_cache_free(&sv->parse_cache);
	hub_close(&sv->hub);
	signin_gate_free(&sv->signin);
	if (log != stderr)
		fclose(log);
	return EXIT_OK;
}
