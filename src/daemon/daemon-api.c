/* The session object and the JMAP API. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon-internal.h"
#include "daemon-manage.h"
#include "audit/audit.h"
#include "http/http.h"
#include "service/svc-lease.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap-session.h"
#include "jmap/jmap.h"
#include "store/store-accounts.h"
#include "store/store-replay.h"
#include "store/store.h"

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
void daemon_respond_session(struct daemon *sv, const struct hub_user *u, struct http_response *resp)
{
	const char *err;
	struct hub_account *accounts = NULL;
	size_t n = 0;
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_account_list(sv->hub, u->id, &accounts, &n, &err);
	pthread_mutex_unlock(&sv->hub_lock);
	struct daemon_store *us = r == 0 ? daemon_store_acquire(sv, u->name) : NULL;
	json_t *session = NULL;
	if (us != NULL) {
		uint64_t modseq = 0;
		char state[64] = "";
		store_read_modseq(us->store, &modseq, &err);
		struct jmap_session_limits limits = {
		    .max_size_upload = DAEMON_MAX_UPLOAD,
		    .max_size_request = DAEMON_MAX_REQUEST,
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
			daemon_manage_session(session); /* urn:mailkeep:manage */
			if (u->zero_access && caps != NULL)
				json_object_set_new(caps, "urn:mailkeep:lease",
				                    json_pack("{s:o}", "unlockedUntil",
				                              daemon_lease_until_json(sv, u)));
		} else {
			json_decref(session);
			session = NULL;
		}
		pthread_mutex_unlock(&us->lock);
	}
	hub_accounts_free(&accounts, n);
	if (session == NULL) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot build the session");
		return;
	}
	daemon_respond_json(resp, 200, session);
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
static int audit_change(struct daemon *sv, const struct principal *p, const char *methods)
{
	const char *err;
	const char *slash = strchr(p->label, '/');
	struct audit_detail d[] = {{"device", slash != NULL ? slash + 1 : "-"},
	                           {"methods", methods}};
	pthread_mutex_lock(&sv->hub_lock);
	int r = hub_audit(sv->hub, &p->user, AUDIT_API_CHANGE, 0, d, 2, &err);
	if (r < 0) {
		daemon_log(DAEMON_LOG_ERROR, p->user.name, 0, "audit for %s: %s", p->user.name,
		           err);
		if (hub_error_is_temporary(sv->hub))
			r = -2;
	}
	pthread_mutex_unlock(&sv->hub_lock);
	return r;
}

/* The user's hub accounts for a request that needs them (Identity/get,
 * EmailSubmission): read once, on first use, not for every request. */
struct account_loader {
	struct daemon *sv;
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

/* Device changes committed (local_changes): each account with changes
 * pending is replayed to its provider now (daemon-work.c). Zero-access
 * users' accounts wait for a sync that has their key. */
static void replay_wake(struct daemon *sv, struct store *store, const char *user)
{
	const char *err;
	struct store_account *accounts = NULL;
	size_t n = 0;
	if (store_accounts_list(store, &accounts, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		long long hub_id;
		char *end;
		if (strncmp(accounts[i].key, "account:", 8) != 0)
			continue;
		hub_id = strtoll(accounts[i].key + 8, &end, 10);
		struct store_replay_change *changes = NULL;
		size_t count = 0;
		if (*end != '\0' || hub_id <= 0 ||
		    store_replay_pending(store, accounts[i].id, &changes, &count, &err) < 0)
			continue;
		store_replay_changes_free(&changes, count);
		if (count > 0)
			daemon_replay_wake(sv, user, hub_id);
	}
	store_accounts_free(&accounts, n);
}

void daemon_handle_api(struct daemon *sv, const struct principal *p, const struct http_request *req,
                       struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "POST") != 0) {
		daemon_respond_problem(resp, 405, "about:blank", "use POST");
		return;
	}
	if (!content_is_json(req->content_type)) {
		daemon_respond_problem(resp, 400, "urn:ietf:params:jmap:error:notJSON",
		                       "the request's Content-Type is not application/json");
		return;
	}
	struct daemon_store *us = daemon_store_get(sv, p->user.name);
	if (us == NULL) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	char methods[AUDIT_MAX_VALUE_SIZE];
	request_changes(req, methods, sizeof(methods));
	int audited = methods[0] != '\0' ? audit_change(sv, p, methods) : 0;
	if (audited == -2) {
		/* The log stayed busy beyond the bounded wait: nothing was
		 * changed, the device may try again. */
		daemon_respond_problem(resp, 503, "about:blank",
		                       "the audit log is busy; try again");
		return;
	}
	if (audited < 0) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot write the audit log");
		return;
	}
	if (!daemon_store_lock(sv, us)) {
		daemon_respond_problem(resp, 500, "about:blank", "cannot open the user's store");
		return;
	}
	struct account_loader loader = {.sv = sv, .user_id = p->user.id};
	/* The mail methods' context, inside the management methods' one
	 * (daemon-manage.h). */
	struct daemon_api_ctx actx = {.mail = {.store = us->store,
	                                       .cache = sv->parse_cache,
	                                       .user_name = p->user.name,
	                                       .account_id = "",
	                                       .load_accounts = load_accounts,
	                                       .loader = &loader},
	                              .sv = sv,
	                              .p = p};
	struct jmap_mail_ctx *ctx = &actx.mail;
	uint64_t modseq = 0;
	store_read_modseq(us->store, &modseq, &err);
	snprintf(ctx->state, sizeof(ctx->state), "%llu", (unsigned long long)modseq);
	char session_state[64] = "";
	jmap_session_state(us->store, modseq, session_state, sizeof(session_state), &err);
	struct jmap_limits limits = {DAEMON_MAX_REQUEST, 32, 64};
	struct jmap_output out;
	int r = jmap_process(sv->registry, &limits, &actx, session_state, req->body, req->body_len,
	                     &out, &err);
	uint64_t after = modseq;
	if (r == 0 && methods[0] != '\0')
		store_read_modseq(us->store, &after, &err);
	if (after != modseq && sv->replay_now &&
	    (!p->user.zero_access || svc_lease_held(sv->leases, p->user.id, NULL)))
		replay_wake(sv, us->store, p->user.name);
	pthread_mutex_unlock(&us->lock);
	/* After the store's lock: the push thread takes push_lock, then a
	 * store's lock; waking it (push_lock) while holding the store's lock
	 * deadlocked both (an account added over the web with an event stream
	 * open). */
	daemon_manage_finish(&actx);
	hub_accounts_free(&loader.accounts, loader.n);
	if (r < 0) {
		daemon_respond_problem(resp, 500, "about:blank", "server failure");
		return;
	}
	http_response_set_status(resp, out.status, &err);
	http_response_set_body(resp, out.content_type, out.body, out.body_len, &err);
}
