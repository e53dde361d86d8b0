/* OAuth accounts from the web (daemon-oauth.h): the pending sign-ins, the
 * management methods on them, the provider's redirect back to serve and
 * the device flow's polling thread. The workflow after the tokens (login
 * check, add or sign-in, consent, audit) is the command line's
 * (svc-account.h). */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "daemon-manage.h"
#include "daemon-oauth.h"
#include "hub/hub.h"
#include "http/http.h"
#include "imap/imap-url.h"
#include "jmap/jmap-session.h"
#include "lib/buf.h"
#include "oauth/oauth.h"
#include "service/svc-account.h"
#include "service/svc-lease.h"
#include "service/svc-pool.h"
#include "service/svc-oauth.h"
#include "smtp/smtp.h"

#define FAIL(type, desc)                                                                           \
	do {                                                                                       \
		*error_type_r = (type);                                                            \
		*description_r = (desc);                                                           \
		return -1;                                                                         \
	} while (0)

#define FLOW_ID_SIZE 34              /* "F" + 32 hex digits + NUL */
#define FLOW_ERROR_SIZE 600          /* what went wrong, for the user */
#define DEVICE_POLL_TIMEOUT_MS 10000 /* one poll request at most */
#define START_TIMEOUT_MS 15000       /* the device authorization request */

/*
 * A flow's states:
 *
 *   WAITING --callback / device approved--> FINISHING --> ADDED | SIGNED_IN | FAILED
 *   WAITING --provider's error, denied-----------------------------> FAILED
 *   WAITING --its time is over--> EXPIRED      WAITING --cancel--> CANCELLED
 *
 * Only WAITING -> FINISHING is taken by one thread (the callback or the
 * device thread) under the flows' lock; that thread alone then writes the
 * result.
 */
enum flow_state {
	FLOW_WAITING,
	FLOW_FINISHING,
	FLOW_ADDED,
	FLOW_SIGNED_IN,
	FLOW_FAILED,
	FLOW_EXPIRED,
	FLOW_CANCELLED,
};

static const char *const state_names[] = {"waiting", "finishing", "added",    "signedIn",
                                          "failed",  "expired",   "cancelled"};

/* sodium_malloc'd: it holds the provider's client secret (a copy of its
 * settings) and the pointers to the verifier and the device code. */
struct oauth_flow {
	char id[FLOW_ID_SIZE];
	char user[65];
	int64_t user_id;
	bool device;
	enum flow_state state;
	char error[FLOW_ERROR_SIZE];
	char account[32]; /* "A<n>" once added or signed in */
	int64_t started, expires, finished;
	/* A new account's settings, as consented to. */
	char imap[300], smtp[300], login[321], disclosure_id[SVC_DISCLOSURE_ID_SIZE];
	bool has_smtp, check;
	int64_t signin_account; /* hub id of the account signing in again; 0: new */
	struct hub_oauth_provider cfg;
	struct oauth_provider prov; /* over cfg */
	struct oauth_pkce *pkce;    /* redirect */
	char redirect_uri[600];
	struct oauth_device dev; /* device */
	pthread_t thread;
	bool has_thread, thread_done;
	bool cancel; /* the device thread stops polling */
	bool busy;   /* a callback request is using it: not freed */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* device threads sleep on it */
	struct oauth_flow *flows[DAEMON_OAUTH_MAX];
	bool stopping;
} F = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static bool flow_final(const struct oauth_flow *f)
{
	return f->state != FLOW_WAITING && f->state != FLOW_FINISHING;
}

static void flow_end(struct oauth_flow *f, enum flow_state state, const char *error)
{
	f->state = state;
	f->finished = time(NULL);
	if (error != NULL)
		snprintf(f->error, sizeof(f->error), "%s", error);
	f->cancel = true;
	oauth_pkce_free(&f->pkce);
}

static void flow_free(struct oauth_flow **fp)
{
	struct oauth_flow *f = *fp;
	if (f == NULL)
		return;
	oauth_pkce_free(&f->pkce);
	oauth_device_clear(&f->dev);
	sodium_free(f);
	*fp = NULL;
}

/* Under F.lock: waiting flows past their time expire; finished ones past
 * DAEMON_OAUTH_KEEP go (their thread joined: it has ended). */
static void flows_sweep(time_t now)
{
	for (size_t i = 0; i < DAEMON_OAUTH_MAX; i++) {
		struct oauth_flow *f = F.flows[i];
		if (f == NULL)
			continue;
		if (f->state == FLOW_WAITING && now >= f->expires) {
			flow_end(f, FLOW_EXPIRED,
			         "the sign-in was not finished in time: start again");
			pthread_cond_broadcast(&F.cond);
		}
		if (flow_final(f) && now - f->finished >= DAEMON_OAUTH_KEEP && !f->busy &&
		    (!f->has_thread || f->thread_done)) {
			if (f->has_thread)
				pthread_join(f->thread, NULL);
			flow_free(&F.flows[i]);
		}
	}
}

/* Under F.lock: the user's flow with this id, or NULL. */
static struct oauth_flow *flow_find(const char *id, int64_t user_id)
{
	for (size_t i = 0; id != NULL && i < DAEMON_OAUTH_MAX; i++)
		if (F.flows[i] != NULL && F.flows[i]->user_id == user_id &&
		    strcmp(F.flows[i]->id, id) == 0)
			return F.flows[i];
	return NULL;
}

/* Under F.lock: a slot for a new flow of user_id: the user's oldest pending
 * flow is dropped when they have DAEMON_OAUTH_PER_USER; a full table gives
 * up its oldest finished flow. -1 when every slot is pending (or its
 * thread has not ended yet). */
static long flows_slot(int64_t user_id)
{
	size_t pending = 0;
	struct oauth_flow *oldest = NULL;
	for (size_t i = 0; i < DAEMON_OAUTH_MAX; i++) {
		struct oauth_flow *f = F.flows[i];
		if (f == NULL || f->user_id != user_id || flow_final(f))
			continue;
		pending++;
		if (f->state == FLOW_WAITING && (oldest == NULL || f->started < oldest->started))
			oldest = f;
	}
	if (pending >= DAEMON_OAUTH_PER_USER && oldest != NULL) {
		flow_end(oldest, FLOW_CANCELLED, "a newer sign-in replaced this one");
		pthread_cond_broadcast(&F.cond);
	}
	for (size_t i = 0; i < DAEMON_OAUTH_MAX; i++)
		if (F.flows[i] == NULL)
			return (long)i;
	long best = -1;
	for (size_t i = 0; i < DAEMON_OAUTH_MAX; i++) {
		struct oauth_flow *f = F.flows[i];
		if (flow_final(f) && !f->busy && (!f->has_thread || f->thread_done) &&
		    (best < 0 || f->finished < F.flows[best]->finished))
			best = (long)i;
	}
	if (best >= 0) {
		if (F.flows[best]->has_thread)
			pthread_join(F.flows[best]->thread, NULL);
		flow_free(&F.flows[best]);
	}
	return best;
}

/* ---- Finishing: the tokens are here ---- */

/* The JMAP id "A<n>" of the user's hub account hub_id (made in the user's
 * store if it has none yet). Takes the user's store lock: never called with
 * F.lock held or from inside a request. */
static void jmap_account_id(struct daemon *sv, struct hub *hub, const struct hub_user *u,
                            int64_t hub_id, char *out, size_t size)
{
	const char *err;
	struct hub_account *all = NULL;
	size_t n = 0;
	out[0] = '\0';
	if (hub_account_list(hub, u->id, &all, &n, &err) < 0)
		return;
	struct daemon_store *us = daemon_store_acquire(sv, u->name);
	if (us != NULL) {
		struct jmap_session_account *list = NULL;
		size_t count = 0, primary = 0;
		if (jmap_session_accounts(us->store, all, n, &list, &count, &primary, &err) == 0) {
			for (size_t i = 0; i < count; i++)
				if (list[i].hub_account_id == hub_id)
					snprintf(out, size, "A%lld",
					         (long long)list[i].store_account_id);
			free(list);
		}
		pthread_mutex_unlock(&us->lock);
	}
	hub_accounts_free(&all, n);
}

/* Push and the first sync for the account, and the user's event streams
 * learn of it. */
static void account_started(struct daemon *sv, struct hub *hub, const struct hub_user *u,
                            int64_t hub_id)
{
	const char *err;
	struct hub_account *all = NULL;
	size_t n = 0;
	/* Signed in again: a warm sync session of the old grant goes. */
	svc_pool_drop_account(sv->pool, hub_id);
	if (hub_account_list(hub, u->id, &all, &n, &err) == 0) {
		for (size_t i = 0; i < n; i++)
			if (all[i].id == hub_id)
				daemon_provider_account_start(u->name, &all[i]);
		hub_accounts_free(&all, n);
	}
	daemon_account_changed(sv, u->name, hub_id, "");
	daemon_push_wake(sv);
}

/* Add the account (or sign it in again) with the tokens t; the flow's
 * result written under F.lock. Runs on the callback's or the device
 * thread's own hub handle: the login check may take its 30 s without
 * holding hub_lock. */
static void flow_finish(struct daemon *sv, struct oauth_flow *f, struct oauth_tokens *t)
{
	const char *err;
	char error[SVC_ERROR_SIZE] = "", account[32] = "";
	struct hub *hub = NULL;
	struct hub_user u;
	struct vault_kek *kek = NULL;
	struct hub_account *all = NULL;
	size_t n = 0;
	int64_t hub_id = 0;
	enum flow_state result = FLOW_FAILED;
	if (hub_open(sv->data_dir, true, &hub, &err) < 0 ||
	    hub_user_get(hub, f->user, &u, &err) < 0 || u.id != f->user_id) {
		snprintf(error, sizeof(error), "the hub cannot be read now; start again");
		goto out;
	}
	struct svc_passphrase pass = {.leases = sv->leases};
	if (svc_user_kek(hub, &u, &pass, "web", &kek, error, sizeof(error)) < 0) {
		snprintf(error, sizeof(error),
		         u.zero_access ? "your key is locked: sign in to mailkeep again with your "
		                         "password, then start again"
		                       : "the hub cannot open its key; ask its administrator");
		goto out;
	}
	if (f->signin_account == 0) {
		struct svc_account_oauth_new add = {.imap = f->imap,
		                                    .smtp = f->has_smtp ? f->smtp : NULL,
		                                    .login = f->login,
		                                    .ca = NULL,
		                                    .provider = &f->prov,
		                                    .disclosure_id = f->disclosure_id,
		                                    .tool = "web",
		                                    .flow = f->device ? "device" : "redirect",
		                                    .check = f->check};
		if (svc_account_add_oauth(hub, &u, kek, &add, t, &hub_id, error, sizeof(error)) < 0)
			goto out;
		daemon_log(DAEMON_LOG_INFO, u.name, hub_id,
		           "OAuth account added with consent (web, %s flow)",
		           f->device ? "device" : "redirect");
		result = FLOW_ADDED;
	} else {
		struct hub_account *acct = NULL;
		if (hub_account_list(hub, u.id, &all, &n, &err) < 0) {
			snprintf(error, sizeof(error), "cannot read the accounts; start again");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			if (all[i].id == f->signin_account && all[i].oauth)
				acct = &all[i];
		if (acct == NULL) {
			snprintf(error, sizeof(error), "the account is gone");
			goto out;
		}
		const struct hub_oauth_provider *now =
		    svc_oauth_configured(hub, acct->oauth_provider);
		if (!svc_oauth_signin_matches(now, acct) ||
		    strcmp(now->token_url, f->cfg.token_url) != 0 ||
		    strcmp(now->client_id, f->cfg.client_id) != 0) {
			snprintf(
			    error, sizeof(error),
			    "the hub's settings for %s changed meanwhile: remove the account and "
			    "add it again",
			    f->cfg.name);
			goto out;
		}
		if (svc_account_signin_oauth(hub, &u, acct, kek, &f->prov, t, f->check, error,
		                             sizeof(error)) < 0)
			goto out;
		hub_id = acct->id;
		daemon_log(DAEMON_LOG_INFO, u.name, hub_id, "OAuth account signed in again (web)");
		result = FLOW_SIGNED_IN;
	}
	account_started(sv, hub, &u, hub_id);
	jmap_account_id(sv, hub, &u, hub_id, account, sizeof(account));
out:
	if (result == FLOW_FAILED)
		daemon_log(DAEMON_LOG_INFO, f->user, f->signin_account,
		           "OAuth sign-in (web) failed: %s", error);
	hub_accounts_free(&all, n);
	vault_kek_free(&kek);
	hub_close(&hub);
	pthread_mutex_lock(&F.lock);
	snprintf(f->account, sizeof(f->account), "%s", account);
	flow_end(f, result, result == FLOW_FAILED ? error : NULL);
	pthread_mutex_unlock(&F.lock);
}

/* ---- The device flow's thread ---- */

static __thread struct oauth_flow *polling;

/* oauth_device_poll()'s sleep: wakes at once on cancel or shutdown, and
 * then makes the poll end without another request (the code counts as
 * expired, the token endpoint is an empty URL, refused before any
 * connection). */
static void device_sleep(unsigned seconds)
{
	struct oauth_flow *f = polling;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&F.lock);
	while (!f->cancel && !F.stopping &&
	       pthread_cond_timedwait(&F.cond, &F.lock, &ts) != ETIMEDOUT)
		;
	if (f->cancel || F.stopping) {
		f->dev.expires_at = 0;
		f->prov.token_url = "";
	}
	pthread_mutex_unlock(&F.lock);
}

struct device_run {
	struct daemon *sv;
	struct oauth_flow *f;
};

static void *device_thread(void *context)
{
	struct device_run *run = context;
	struct daemon *sv = run->sv;
	struct oauth_flow *f = run->f;
	free(run);
	struct oauth_tokens t = {0};
	struct oauth_error oe;
	polling = f;
	int r = oauth_device_poll(&f->prov, &f->dev, device_sleep, &t, &oe);
	pthread_mutex_lock(&F.lock);
	f->prov.timeout_ms = 30000;
	bool go = false;
	if (f->state == FLOW_WAITING) {
		if (r == 0 && !f->cancel && !F.stopping) {
			f->state = FLOW_FINISHING;
			go = true;
		} else if (r < 0 && !f->cancel && !F.stopping) {
			bool expired =
			    time(NULL) >= f->expires || strcmp(oe.code, "expired_token") == 0;
			flow_end(f, expired ? FLOW_EXPIRED : FLOW_FAILED, oe.text);
		} else {
			flow_end(f, FLOW_CANCELLED, "cancelled");
		}
	}
	pthread_mutex_unlock(&F.lock);
	if (go)
		flow_finish(sv, f, &t);
	oauth_tokens_clear(&t);
	pthread_mutex_lock(&F.lock);
	oauth_device_clear(&f->dev);
	f->thread_done = true;
	pthread_mutex_unlock(&F.lock);
	return NULL;
}

/* ---- The methods ---- */

bool daemon_oauth_configured(struct daemon *sv, const char *name)
{
	/* The settings are read once at start and not changed: no lock. */
	return svc_oauth_configured(sv->hub, name) != NULL;
}

int daemon_oauth_provider_get(void *ctx, struct jmap_call *call, json_t *args,
                              const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const struct hub_settings *set = hub_get_settings(c->sv->hub);
	json_t *list = json_array();
	for (size_t i = 0; i < set->n_oauth; i++) {
		const struct hub_oauth_provider *p = &set->oauth[i];
		if (p->client_id[0] == '\0' || p->token_url[0] == '\0')
			continue;
		json_t *flows = json_array();
		if (p->authorization_url[0] != '\0')
			json_array_append_new(flows, json_string("redirect"));
		if (p->device_url[0] != '\0')
			json_array_append_new(flows, json_string("device"));
		json_array_append_new(list, json_pack("{s:s,s:o,s:s}", "id", p->name, "flows",
		                                      flows, "scopes", p->scopes));
	}
	return jmap_call_respond(
	    call, jmap_call_name(call),
	    json_pack("{s:s,s:o,s:[]}", "accountId", JMAP_NOTICES_NAME, "list", list, "notFound"),
	    &err);
}

/* A new account's settings from args, checked as a password account's,
 * and bounded for the flow's buffers; description on error. */
static const char *settings_from(json_t *o, const char **imap, const char **smtp,
                                 const char **login)
{
	struct daemon_new_settings s;
	const char *bad = daemon_manage_settings(o, &s);
	if (bad != NULL)
		return bad;
	*imap = s.imap;
	*smtp = s.smtp;
	*login = s.login;
	if (strlen(s.imap) >= 300 || (s.smtp != NULL && strlen(s.smtp) >= 300))
		return "imapUrl and smtpUrl must be shorter than 300 characters";
	if (strchr(s.login, '\x01') != NULL) /* XOAUTH2's separator */
		return "login must be the account's user name (1 to 320 characters, one line)";
	return NULL;
}

/* The description for a provider the hub has no app for; in buf. */
static const char *unconfigured(const char *name, char *buf, size_t size)
{
	snprintf(buf, size,
	         "this hub has no OAuth app for %.40s: its administrator sets "
	         "oauth.%.40s.client_id and token_url in mailkeep.conf (docs/oauth.md)",
	         name, name);
	return buf;
}

/* The disclosure for these settings at provider p, as the user reads it
 * now (under hub_lock: the shared handle). */
static int disclosure(struct daemon_api_ctx *c, const char *imap, const char *smtp,
                      const char *login, const struct oauth_provider *p, struct buf *text,
                      char id[SVC_DISCLOSURE_ID_SIZE], struct hub_user *u_r)
{
	const char *err;
	pthread_mutex_lock(&c->sv->hub_lock);
	int r = hub_user_get(c->sv->hub, c->p->user.name, u_r, &err);
	if (r == 0)
		r = svc_account_disclosure_oauth(c->sv->hub, u_r, imap, smtp, login, p, text, id);
	pthread_mutex_unlock(&c->sv->hub_lock);
	return r;
}

/* The per-call description buffer: method errors' descriptions must outlive
 * the call (jmap.h copies them right after the method returns). */
static __thread char why[OAUTH_ERROR_SIZE + 100];

int daemon_oauth_disclose(void *ctx, struct jmap_call *call, json_t *args,
                          const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err, *imap, *smtp, *login;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *name = json_string_value(json_object_get(args, "oauthProvider"));
	if (name == NULL)
		FAIL("invalidArguments", "oauthProvider is required for kind \"oauth\"");
	const struct hub_oauth_provider *cfg = svc_oauth_configured(c->sv->hub, name);
	if (cfg == NULL)
		FAIL("invalidArguments", unconfigured(name, why, sizeof(why)));
	const char *bad = settings_from(args, &imap, &smtp, &login);
	if (bad != NULL)
		FAIL("invalidArguments", bad);
	struct oauth_provider p = svc_oauth_provider_from(cfg);
	struct buf text;
	char id[SVC_DISCLOSURE_ID_SIZE];
	struct hub_user u;
	buf_init(&text, SVC_DISCLOSURE_MAX);
	if (disclosure(c, imap, smtp, login, &p, &text, id, &u) < 0) {
		buf_free(&text);
		FAIL("serverFail",
		     "the disclosure cannot be made; use shorter settings or try again");
	}
	json_t *res = json_pack("{s:s,s:s,s:s}", "accountId", JMAP_NOTICES_NAME, "text",
	                        buf_str(&text), "disclosureId", id);
	buf_free(&text);
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

static json_t *flow_json(const struct oauth_flow *f)
{
	return json_pack("{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "accountId", JMAP_NOTICES_NAME,
	                 "flowId", f->id, "flow", f->device ? "device" : "redirect", "expiresAt",
	                 jmap_utc_date(f->expires), "authorizationUrl", json_null(),
	                 "verificationUri",
	                 f->device ? json_string(f->dev.verification_uri) : json_null(),
	                 "verificationUriComplete",
	                 f->device && f->dev.verification_uri_complete[0] != '\0'
	                     ? json_string(f->dev.verification_uri_complete)
	                     : json_null(),
	                 "userCode", f->device ? json_string(f->dev.user_code) : json_null());
}

/* Fill the flow for a new account from args (the create's checks). */
static int start_new(struct daemon_api_ctx *c, json_t *args, struct oauth_flow *f,
                     const char **error_type_r, const char **description_r)
{
	const char *imap, *smtp, *login;
	const char *bad = settings_from(args, &imap, &smtp, &login);
	if (bad != NULL)
		FAIL("invalidArguments", bad);
	json_t *test = json_object_get(args, "test");
	if (test != NULL && !json_is_boolean(test))
		FAIL("invalidArguments", "test must be true or false");
	if (!json_is_true(json_object_get(args, "consent")))
		FAIL("invalidArguments",
		     "consent must be true: show the disclosure (ExternalAccount/disclose) and "
		     "start only when the user agreed");
	const char *given = json_string_value(json_object_get(args, "disclosureId"));
	struct buf text;
	char id[SVC_DISCLOSURE_ID_SIZE];
	struct hub_user u;
	buf_init(&text, SVC_DISCLOSURE_MAX);
	int built = disclosure(c, imap, smtp, login, &f->prov, &text, id, &u);
	buf_free(&text);
	if (built < 0)
		FAIL("serverFail",
		     "the disclosure cannot be made; use shorter settings or try again");
	if (given == NULL || strcmp(given, id) != 0)
		FAIL("invalidArguments",
		     "disclosureId is not the disclosure for these settings as it reads now: show "
		     "the current one (ExternalAccount/disclose) and ask for consent again");
	char error[SVC_ERROR_SIZE];
	int64_t dup_id = 0;
	pthread_mutex_lock(&c->sv->hub_lock);
	int dup = svc_account_duplicate(c->sv->hub, &u, imap, login, &dup_id, NULL, 0, NULL, 0,
	                                error, sizeof(error));
	pthread_mutex_unlock(&c->sv->hub_lock);
	if (dup < 0)
		FAIL("serverFail", "cannot read the accounts; try again");
	if (dup > 0)
		FAIL("alreadyExists", "this login on this server is one of your accounts already: "
		                      "sign it in again instead");
	if (u.zero_access && !svc_lease_held(c->sv->leases, u.id, NULL))
		FAIL("forbidden", "your key is locked: sign in again with your password");
	snprintf(f->imap, sizeof(f->imap), "%s", imap);
	f->has_smtp = smtp != NULL;
	snprintf(f->smtp, sizeof(f->smtp), "%s", smtp != NULL ? smtp : "");
	snprintf(f->login, sizeof(f->login), "%s", login);
	snprintf(f->disclosure_id, sizeof(f->disclosure_id), "%s", id);
	f->check = test == NULL || json_is_true(test);
	return 0;
}

/* Fill the flow for signing account "A<n>" in again. */
static int start_signin(struct daemon_api_ctx *c, const char *jmap_id, struct oauth_flow *f,
                        const struct hub_oauth_provider **cfg_r, const char **error_type_r,
                        const char **description_r)
{
	const char *err;
	struct hub_account *all = NULL;
	size_t n = 0;
	struct jmap_session_account *list = NULL;
	size_t count = 0, primary = 0;
	pthread_mutex_lock(&c->sv->hub_lock);
	int r = hub_account_list(c->sv->hub, c->p->user.id, &all, &n, &err);
	pthread_mutex_unlock(&c->sv->hub_lock);
	if (r < 0 ||
	    jmap_session_accounts(c->mail.store, all, n, &list, &count, &primary, &err) < 0) {
		hub_accounts_free(&all, n);
		FAIL("serverFail", "cannot read the accounts; try again");
	}
	const struct hub_account *acct = NULL;
	for (size_t i = 0; i < count; i++) {
		char text[32];
		snprintf(text, sizeof(text), "A%lld", (long long)list[i].store_account_id);
		if (list[i].hub_account_id != 0 && strcmp(text, jmap_id) == 0)
			for (size_t k = 0; k < n; k++)
				if (all[k].id == list[i].hub_account_id)
					acct = &all[k];
	}
	free(list);
	int ret = -1;
	if (acct == NULL || !acct->oauth) {
		*error_type_r = "invalidArguments";
		*description_r = "signIn must be the id of one of your OAuth accounts";
		goto out;
	}
	const struct hub_oauth_provider *cfg =
	    svc_oauth_configured(c->sv->hub, acct->oauth_provider);
	if (!svc_oauth_signin_matches(cfg, acct)) {
		snprintf(
		    why, sizeof(why),
		    "oauth.%.40s in mailkeep.conf is missing or no longer what this account "
		    "signed in with (token_url, client_id, scopes): remove the account and add "
		    "it again",
		    acct->oauth_provider != NULL ? acct->oauth_provider : "?");
		*error_type_r = "invalidArguments";
		*description_r = why;
		goto out;
	}
	if (c->p->user.zero_access && !svc_lease_held(c->sv->leases, c->p->user.id, NULL)) {
		*error_type_r = "forbidden";
		*description_r = "your key is locked: sign in again with your password";
		goto out;
	}
	f->signin_account = acct->id;
	f->check = true;
	snprintf(f->login, sizeof(f->login), "%s", acct->login);
	*cfg_r = cfg;
	ret = 0;
out:
	hub_accounts_free(&all, n);
	return ret;
}

int daemon_oauth_start(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                       const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *flow = json_string_value(json_object_get(args, "flow"));
	if (flow == NULL || (strcmp(flow, "redirect") != 0 && strcmp(flow, "device") != 0))
		FAIL("invalidArguments", "flow must be \"redirect\" or \"device\"");
	bool device = strcmp(flow, "device") == 0;
	json_t *jsignin = json_object_get(args, "signIn");
	const char *signin = json_string_value(jsignin);
	if (jsignin != NULL && !json_is_null(jsignin) && signin == NULL)
		FAIL("invalidArguments", "signIn is the id of an OAuth account (\"A<n>\")");
	struct oauth_flow *f = sodium_malloc(sizeof(*f));
	if (f == NULL)
		FAIL("serverFail", "out of secure memory; try again");
	memset(f, 0, sizeof(*f));
	const struct hub_oauth_provider *cfg = NULL;
	int ret = -1;
	if (signin != NULL) {
		if (start_signin(c, signin, f, &cfg, error_type_r, description_r) < 0)
			goto fail;
	} else {
		const char *name = json_string_value(json_object_get(args, "oauthProvider"));
		if (name == NULL) {
			*error_type_r = "invalidArguments";
			*description_r = "give oauthProvider and the settings, or signIn";
			goto fail;
		}
		if ((cfg = svc_oauth_configured(c->sv->hub, name)) == NULL) {
			*error_type_r = "invalidArguments";
			*description_r = unconfigured(name, why, sizeof(why));
			goto fail;
		}
	}
	f->cfg = *cfg;
	f->prov = svc_oauth_provider_from(&f->cfg);
	if ((device && f->prov.device_url == NULL) ||
	    (!device && f->prov.authorization_url == NULL)) {
		snprintf(why, sizeof(why),
		         "%.40s offers no %s flow on this hub (oauth.%.40s.%s is not set)",
		         cfg->name, flow, cfg->name, device ? "device_url" : "authorization_url");
		*error_type_r = "invalidArguments";
		*description_r = why;
		goto fail;
	}
	struct oauth_error oe;
	if (oauth_provider_check(&f->prov, &oe) < 0) {
		snprintf(why, sizeof(why), "%s", oe.text);
		*error_type_r = "serverFail";
		*description_r = why;
		goto fail;
	}
	if (signin == NULL && start_new(c, args, f, error_type_r, description_r) < 0)
		goto fail;
	f->device = device;
	f->user_id = c->p->user.id;
	snprintf(f->user, sizeof(f->user), "%s", c->p->user.name);
	unsigned char rnd[16];
	randombytes_buf(rnd, sizeof(rnd));
	f->id[0] = 'F';
	sodium_bin2hex(f->id + 1, sizeof(f->id) - 1, rnd, sizeof(rnd));
	f->started = time(NULL);
	char *url = NULL;
	if (device) {
		f->prov.timeout_ms = START_TIMEOUT_MS;
		if (oauth_device_start(&f->prov, &f->dev, &oe) < 0) {
			snprintf(why, sizeof(why), "%s", oe.text);
			*error_type_r = "serverFail";
			*description_r = why;
			goto fail;
		}
		f->prov.timeout_ms = DEVICE_POLL_TIMEOUT_MS;
		f->expires = f->dev.expires_at;
	} else {
		int n = snprintf(f->redirect_uri, sizeof(f->redirect_uri), "%s%s",
		                 c->sv->public_url, DAEMON_OAUTH_CALLBACK_PATH);
		if (n < 0 || (size_t)n >= sizeof(f->redirect_uri) ||
		    oauth_pkce_new(&f->pkce, &oe) < 0 ||
		    oauth_authorization_url(&f->prov, f->pkce, f->redirect_uri, f->login, &url,
		                            &oe) < 0) {
			*error_type_r = "serverFail";
			*description_r = "cannot make the sign-in address; try again";
			goto fail;
		}
		f->expires = f->started + DAEMON_OAUTH_REDIRECT_TTL;
	}
	pthread_mutex_lock(&F.lock);
	flows_sweep(time(NULL));
	long slot = F.stopping ? -1 : flows_slot(f->user_id);
	if (slot < 0) {
		pthread_mutex_unlock(&F.lock);
		free(url);
		*error_type_r = "rateLimit";
		*description_r =
		    "too many sign-ins are pending on this hub; try again in a few minutes";
		goto fail;
	}
	F.flows[slot] = f;
	json_t *res = flow_json(f);
	if (url != NULL)
		json_object_set_new(res, "authorizationUrl", json_string(url));
	if (device) {
		struct device_run *run = malloc(sizeof(*run));
		if (run != NULL) {
			run->sv = c->sv;
			run->f = f;
		}
		if (run == NULL || pthread_create(&f->thread, NULL, device_thread, run) != 0) {
			free(run);
			flow_end(f, FLOW_FAILED, "serve could not start polling; try again");
		} else {
			f->has_thread = true;
		}
	}
	pthread_mutex_unlock(&F.lock);
	free(url);
	daemon_log(DAEMON_LOG_INFO, c->p->user.name, f->signin_account,
	           "OAuth %s flow %s started at %s", device ? "device" : "redirect",
	           f->signin_account != 0 ? "(sign in again)" : "(add)", f->cfg.name);
	ret = jmap_call_respond(call, jmap_call_name(call), res, &err);
	return ret;
fail:
	oauth_pkce_free(&f->pkce);
	oauth_device_clear(&f->dev);
	sodium_free(f);
	return -1;
}

int daemon_oauth_status(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                        const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *id = json_string_value(json_object_get(args, "flowId"));
	pthread_mutex_lock(&F.lock);
	flows_sweep(time(NULL));
	struct oauth_flow *f = flow_find(id, c->p->user.id);
	json_t *res = NULL;
	if (f != NULL)
		res = json_pack("{s:s,s:s,s:s,s:o,s:o}", "accountId", JMAP_NOTICES_NAME, "flowId",
		                f->id, "state", state_names[f->state], "error",
		                f->state == FLOW_FAILED || f->state == FLOW_EXPIRED ||
		                        f->state == FLOW_CANCELLED
		                    ? json_string(f->error)
		                    : json_null(),
		                "account",
		                f->account[0] != '\0' ? json_string(f->account) : json_null());
	pthread_mutex_unlock(&F.lock);
	if (res == NULL)
		FAIL("notFound", "no such sign-in (it ended more than 10 minutes ago, or serve "
		                 "restarted): start again");
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

int daemon_oauth_cancel(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                        const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *id = json_string_value(json_object_get(args, "flowId"));
	pthread_mutex_lock(&F.lock);
	struct oauth_flow *f = flow_find(id, c->p->user.id);
	json_t *res = NULL;
	if (f != NULL) {
		if (f->state == FLOW_WAITING) {
			flow_end(f, FLOW_CANCELLED, "cancelled");
			pthread_cond_broadcast(&F.cond);
		}
		/* A sign-in already finishing (or finished) is not undone: its
		 * state says what became of it. */
		res = json_pack("{s:s,s:s,s:s}", "accountId", JMAP_NOTICES_NAME, "flowId", f->id,
		                "state", state_names[f->state]);
	}
	pthread_mutex_unlock(&F.lock);
	if (res == NULL)
		FAIL("notFound", "no such sign-in");
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* ---- GET /mailkeep/oauth/callback ---- */

static void html_escape(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '<':
			buf_append(b, "&lt;", 4);
			break;
		case '>':
			buf_append(b, "&gt;", 4);
			break;
		case '&':
			buf_append(b, "&amp;", 5);
			break;
		case '"':
			buf_append(b, "&quot;", 6);
			break;
		case '\'':
			buf_append(b, "&#39;", 5);
			break;
		default:
			if ((unsigned char)*s >= 0x20 && *s != 0x7f)
				buf_append(b, s, 1);
		}
	}
}

static void callback_page(struct http_response *resp, unsigned status, const char *state,
                          const char *title, const char *login, const char *text)
{
	const char *err;
	struct buf b;
	buf_init(&b, 16384);
	buf_printf(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	               "<meta name=\"viewport\" content=\"width=device-width\">"
	               "<title>mailkeep: ");
	html_escape(&b, title);
	buf_printf(&b,
	           "</title></head>\n<body><main id=\"mk-oauth-result\" data-state=\"%s\">"
	           "<h1>",
	           state);
	html_escape(&b, title);
	buf_printf(&b, "</h1>\n");
	if (login != NULL && login[0] != '\0') {
		buf_printf(&b, "<p>");
		html_escape(&b, login);
		buf_printf(&b, "</p>\n");
	}
	buf_printf(&b, "<p>");
	html_escape(&b, text);
	buf_printf(&b, "</p>\n<p><a href=\"/#/accounts\">Accounts in mailkeep</a></p>"
	               "</main></body></html>\n");
	http_response_set_status(resp, status, &err);
	http_response_add_header(resp, "Content-Security-Policy",
	                         "default-src 'none'; style-src 'self'; frame-ancestors 'none'",
	                         &err);
	http_response_add_header(resp, "Cache-Control", "no-store", &err);
	http_response_add_header(resp, "Referrer-Policy", "no-referrer", &err);
	http_response_add_header(resp, "X-Content-Type-Options", "nosniff", &err);
	http_response_add_header(resp, "X-Frame-Options", "DENY", &err);
	http_response_set_body_copy(resp, "text/html; charset=utf-8", b.data, b.len, &err);
	buf_free(&b);
}

/* A query parameter, percent-decoded ('+' is a space in a query), at most
 * size - 1 bytes; false when missing, malformed or too long. */
static bool query_value(const char *query, const char *name, char *out, size_t size)
{
	char *raw = sodium_malloc(size * 3 + 1);
	if (raw == NULL)
		return false;
	bool ok = daemon_query_param(query, name, raw, size * 3 + 1);
	if (ok)
		for (char *p = raw; *p != '\0'; p++)
			if (*p == '+')
				*p = ' ';
	ok = ok && daemon_percent_decode(raw, out, size);
	sodium_free(raw);
	return ok;
}

#define CALLBACK_STATE_MAX 128
#define CALLBACK_CODE_MAX 4096

static const char expired_text[] =
    "This sign-in link has expired or was already used: start again from Accounts → Add "
    "account in mailkeep.";

void daemon_handle_oauth_callback(struct daemon *sv, const struct http_request *req,
                                  struct http_response *resp)
{
	const char *err;
	if (strcmp(req->method, "GET") != 0) {
		http_response_add_header(resp, "Allow", "GET", &err);
		daemon_respond_problem(resp, 405, "about:blank",
		                       "the provider's redirect is a GET");
		return;
	}
	char state[CALLBACK_STATE_MAX], error[64] = "", description[300] = "";
	const char *query = req->query != NULL ? req->query : "";
	bool has_state = query_value(query, "state", state, sizeof(state));
	bool has_error = query_value(query, "error", error, sizeof(error));
	if (has_error)
		query_value(query, "error_description", description, sizeof(description));
	char *code = sodium_malloc(CALLBACK_CODE_MAX);
	if (code == NULL) {
		daemon_respond_problem(resp, 503, "about:blank", "out of memory");
		return;
	}
	bool has_code = query_value(query, "code", code, CALLBACK_CODE_MAX) && code[0] != '\0';
	struct oauth_flow *f = NULL;
	pthread_mutex_lock(&F.lock);
	flows_sweep(time(NULL));
	size_t slen = has_state ? strlen(state) : 0;
	for (size_t i = 0; slen > 0 && i < DAEMON_OAUTH_MAX; i++) {
		struct oauth_flow *g = F.flows[i];
		if (g != NULL && !g->device && g->state == FLOW_WAITING && g->pkce != NULL &&
		    strlen(g->pkce->state) == slen &&
		    sodium_memcmp(g->pkce->state, state, slen) == 0)
			f = g;
	}
	sodium_memzero(state, sizeof(state));
	if (f != NULL && has_error) {
		char text[FLOW_ERROR_SIZE];
		snprintf(text, sizeof(text), "%.40s answered: %.60s%s%.300s", f->cfg.name, error,
		         description[0] != '\0' ? ": " : "", description);
		flow_end(f, FLOW_FAILED, text);
		pthread_mutex_unlock(&F.lock);
		sodium_free(code);
		char page[FLOW_ERROR_SIZE + 100];
		snprintf(
		    page, sizeof(page),
		    "The sign-in did not go through (%s). Start again from Accounts in mailkeep.",
		    text);
		callback_page(resp, 200, "failed", "Sign-in failed", NULL, page);
		return;
	}
	if (f == NULL || !has_code) {
		pthread_mutex_unlock(&F.lock);
		sodium_free(code);
		callback_page(resp, 400, "expired", "Sign-in link expired", NULL, expired_text);
		return;
	}
	/* The state is single-use: from here on, no other request finds it. */
	f->state = FLOW_FINISHING;
	f->busy = true;
	pthread_mutex_unlock(&F.lock);
	struct oauth_tokens t = {0};
	struct oauth_error oe;
	int r = oauth_exchange_code(&f->prov, code, f->redirect_uri, f->pkce, &t, &oe);
	oauth_secret_free(&code);
	if (r < 0) {
		daemon_log(DAEMON_LOG_INFO, f->user, 0, "OAuth code exchange (web) failed: %s",
		           oe.text);
		pthread_mutex_lock(&F.lock);
		flow_end(f, FLOW_FAILED, oe.text);
		pthread_mutex_unlock(&F.lock);
	} else {
		flow_finish(sv, f, &t);
	}
	oauth_tokens_clear(&t);
	/* The flow is final now; only its sweep frees it (DAEMON_OAUTH_KEEP
	 * from now), so reading it is safe under the lock. */
	pthread_mutex_lock(&F.lock);
	enum flow_state s = f->state;
	char login[321], text[FLOW_ERROR_SIZE + 100];
	snprintf(login, sizeof(login), "%s", f->login);
	snprintf(text, sizeof(text), "%s", f->error);
	f->busy = false;
	pthread_mutex_unlock(&F.lock);
	if (s == FLOW_ADDED)
		callback_page(resp, 200, "added", "Account added", login,
		              "You can close this tab and return to mailkeep.");
	else if (s == FLOW_SIGNED_IN)
		callback_page(resp, 200, "signedIn", "Signed in again", login,
		              "You can close this tab and return to mailkeep.");
	else {
		char page[FLOW_ERROR_SIZE + 200];
		snprintf(page, sizeof(page), "%.*s Start again from Accounts in mailkeep.",
		         FLOW_ERROR_SIZE, text);
		callback_page(resp, 200, "failed", "Sign-in failed", login, page);
	}
}

void daemon_oauth_shutdown(struct daemon *sv)
{
	(void)sv;
	pthread_mutex_lock(&F.lock);
	F.stopping = true;
	pthread_cond_broadcast(&F.cond);
	pthread_mutex_unlock(&F.lock);
	/* Join without the lock: a thread ending takes it. */
	for (size_t i = 0; i < DAEMON_OAUTH_MAX; i++) {
		pthread_mutex_lock(&F.lock);
		struct oauth_flow *f = F.flows[i];
		bool join = f != NULL && f->has_thread;
		pthread_t th = join ? f->thread : (pthread_t)0;
		if (f != NULL)
			f->has_thread = false;
		pthread_mutex_unlock(&F.lock);
		if (join)
			pthread_join(th, NULL);
	}
	/* A callback still answering keeps its flow (the process ends). */
	pthread_mutex_lock(&F.lock);
	for (size_t i = 0; i < DAEMON_OAUTH_MAX; i++)
		if (F.flows[i] != NULL && !F.flows[i]->busy)
			flow_free(&F.flows[i]);
	pthread_mutex_unlock(&F.lock);
}
