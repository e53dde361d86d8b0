/* The management capability "urn:mailkeep:manage" (daemon-manage.h): the
 * ExternalAccount methods, Receipt/get, Consent/get, the Device and
 * WebSession methods, AuditLog/get and Policy/get. Every method takes
 * accountId "mailkeep" (or the notices account's id) and acts on the
 * signed-in hub user only. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "daemon-manage.h"
#include "daemon-oauth.h"
#include "audit/audit.h"
#include "hub/hub.h"
#include "imap/imap-url.h"
#include "jmap/jmap-session.h"
#include "lib/buf.h"
#include "service/svc-account.h"
#include "service/svc-lease.h"
#include "service/svc-pool.h"
#include "service/svc-user.h"
#include "setup/setup.h"
#include "smtp/smtp.h"
#include "store/store-accounts.h"
#include "store/store-outbox.h"
#include "store/store-provider.h"
#include "store/store.h"

#define MANAGE_AUDIT_MAX_LIMIT 500
#define MANAGE_AUDIT_DEFAULT_LIMIT 100

/* Method errors: the type and a description saying what to do. */
#define FAIL(type, desc)                                                                           \
	do {                                                                                       \
		*error_type_r = (type);                                                            \
		*description_r = (desc);                                                           \
		return -1;                                                                         \
	} while (0)

/* A UTCDate, or null for "never" (0). */
static json_t *json_date(int64_t t)
{
	return t > 0 ? jmap_utc_date(t) : json_null();
}

/* Parse a UTCDate "YYYY-MM-DDTHH:MM:SSZ"; false if it is not one. */
static bool parse_date(const char *s, int64_t *t_r)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *end = s != NULL ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;
	if (end == NULL || *end != '\0')
		return false;
	*t_r = (int64_t)timegm(&tm);
	return true;
}

/*
 * The hub. Reads and quick writes use serve's shared handle under hub_lock:
 * manage_lock() ... manage_unlock(), held only around hub calls. The
 * request holds the user's store lock already, which daemon-internal.h's
 * order allows before hub_lock; so nothing between the two may take a lock
 * that comes before hub_lock elsewhere (a store's, users_lock, push_lock),
 * or one that takes hub_lock itself (svc_lease_release, svc_lease_signin),
 * nor wait for the network or hash a password. The calls that do (the
 * create with its login check, a new password with its own, the removal
 * revoking an OAuth grant, the hub password change hashing twice), and
 * AuditLog/get verifying the whole log, use manage_private_hub(): a handle
 * of the request's own.
 */
static struct hub *manage_lock(struct daemon_api_ctx *c)
{
	pthread_mutex_lock(&c->sv->hub_lock);
	return c->sv->hub;
}

static void manage_unlock(struct daemon_api_ctx *c)
{
	pthread_mutex_unlock(&c->sv->hub_lock);
}

/* The request's own hub handle (daemon-manage.h), opened with the master
 * key on first use. */
static struct hub *manage_private_hub(struct daemon_api_ctx *c)
{
	const char *err;
	if (c->hub == NULL && hub_open(c->sv->data_dir, true, &c->hub, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, c->p->user.name, 0, "management: %s", err);
		c->hub = NULL;
	}
	return c->hub;
}

int daemon_manage_check_account(struct daemon_api_ctx *c, json_t *args, const char **error_type_r,
                                const char **description_r)
{
	const char *id = json_string_value(json_object_get(args, "accountId"));
	if (id == NULL)
		FAIL("invalidArguments", "accountId is required: use \"mailkeep\"");
	if (strcmp(id, JMAP_NOTICES_NAME) == 0)
		return 0;
	int64_t notices = 0;
	const char *err;
	char text[32];
	if (store_account_find(c->mail.store, JMAP_NOTICES_KEY, &notices, &err) == 1) {
		snprintf(text, sizeof(text), "A%lld", (long long)notices);
		if (strcmp(id, text) == 0)
			return 0;
	}
	FAIL("accountNotFound", "management methods take accountId \"mailkeep\"");
}

/* The user as hub.db has them now (last activity, ...). */
static int current_user(struct daemon_api_ctx *c, struct hub *hub, struct hub_user *u_r)
{
	const char *err;
	return hub_user_get(hub, c->p->user.name, u_r, &err);
}

/* ---- External accounts ---- */

/* The user's hub accounts and their JMAP accounts (ids "A<store id>"). */
struct account_view {
	struct hub_account *a;
	size_t n;
	struct jmap_session_account *list; /* n + 1: the notices account last */
	size_t count, primary;
};

static void account_view_free(struct account_view *v)
{
	hub_accounts_free(&v->a, v->n);
	free(v->list);
	v->list = NULL;
}

/* The user's accounts from the shared hub (hub_lock only around the read). */
static int account_view_load(struct daemon_api_ctx *c, struct account_view *v)
{
	const char *err;
	memset(v, 0, sizeof(*v));
	struct hub *hub = manage_lock(c);
	int r = hub_account_list(hub, c->p->user.id, &v->a, &v->n, &err);
	manage_unlock(c);
	if (r < 0)
		return -1;
	if (jmap_session_accounts(c->mail.store, v->a, v->n, &v->list, &v->count, &v->primary,
	                          &err) < 0) {
		account_view_free(v);
		return -1;
	}
	return 0;
}

/* The index into v->a of the account with JMAP id "A<n>", or -1. */
static long account_index(const struct account_view *v, const char *id)
{
	char text[32];
	for (size_t i = 0; i < v->n; i++) {
		snprintf(text, sizeof(text), "A%lld", (long long)v->list[i].store_account_id);
		if (id != NULL && strcmp(id, text) == 0)
			return (long)i;
	}
	return -1;
}

static json_t *account_json(struct daemon_api_ctx *c, const struct account_view *v, size_t i)
{
	const struct hub_account *a = &v->a[i];
	char id[32];
	snprintf(id, sizeof(id), "A%lld", (long long)v->list[i].store_account_id);
	json_t *progress = json_null();
	struct store_provider_state ps;
	const char *err;
	memset(&ps, 0, sizeof(ps));
	if (store_provider_get(c->mail.store, v->list[i].store_account_id, &ps, &err) == 0 &&
	    (ps.status_messages > 0 || ps.held_messages > 0))
		progress = json_pack("{s:I,s:I}", "downloaded", (json_int_t)ps.held_messages,
		                     "total", (json_int_t)ps.status_messages);
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "hubId", json_integer(a->id));
	json_object_set_new(o, "login", json_string(a->login));
	json_object_set_new(o, "email",
	                    strchr(a->login, '@') != NULL ? json_string(a->login) : json_null());
	json_object_set_new(o, "imapUrl", json_string(a->imap_url));
	json_object_set_new(o, "smtpUrl",
	                    a->smtp_url != NULL ? json_string(a->smtp_url) : json_null());
	json_object_set_new(o, "kind", json_string(a->oauth ? "oauth" : "password"));
	json_object_set_new(o, "oauthProvider",
	                    a->oauth && a->oauth_provider != NULL ? json_string(a->oauth_provider)
	                                                          : json_null());
	json_object_set_new(o, "needsSignIn", json_boolean(a->needs_signin_since != 0));
	json_object_set_new(o, "needsSignInSince", json_date(a->needs_signin_since));
	json_object_set_new(o, "isPrimary", json_boolean(v->primary == i));
	json_object_set_new(o, "addedAt", json_date(a->created));
	/* What serve's syncs recorded in the user's store (daemon-jobs.c):
	 * the error of the last sync when it failed, else that of the last
	 * send when it failed (the outbox keeps each message's outcome). */
	struct store_account_status status;
	if (store_account_status_get(c->mail.store, v->list[i].store_account_id, &status, &err) < 0)
		memset(&status, 0, sizeof(status));
	enum store_outbox_state sent;
	char reply[STORE_OUTBOX_REPLY_SIZE];
	int64_t sent_at = 0;
	if (status.failed_at == 0 &&
	    store_outbox_last_attempt(c->mail.store, a->id, &sent, reply, &sent_at, &err) == 1 &&
	    sent != STORE_OUTBOX_SENT) {
		snprintf(status.error, sizeof(status.error), "%s: %s",
		         sent == STORE_OUTBOX_FAILED
		             ? "a message could not be sent"
		             : "a message is not sent yet (tried again later)",
		         reply[0] != '\0' ? reply : "no reply");
		status.failed_at = sent_at;
	}
	json_object_set_new(o, "lastSyncAt", json_date(status.synced_at));
	json_object_set_new(o, "lastError",
	                    status.failed_at != 0 ? json_string(status.error) : json_null());
	json_object_set_new(o, "lastErrorAt", json_date(status.failed_at));
	json_object_set_new(o, "syncProgress", progress);
	const char *push = daemon_provider_account_state(a->id);
	json_object_set_new(o, "pushState", push != NULL ? json_string(push) : json_null());
	return o;
}

static int external_get(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                        const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	json_t *ids = json_object_get(args, "ids");
	if (ids != NULL && !json_is_null(ids) && !json_is_array(ids))
		FAIL("invalidArguments", "ids must be null or a list of ids");
	struct account_view v;
	if (account_view_load(c, &v) < 0)
		FAIL("serverFail", "cannot read the accounts; try again");
	json_t *list = json_array(), *not_found = json_array();
	if (ids == NULL || json_is_null(ids)) {
		for (size_t i = 0; i < v.n; i++)
			json_array_append_new(list, account_json(c, &v, i));
	} else {
		size_t k;
		json_t *id;
		json_array_foreach(ids, k, id)
		{
			long i = account_index(&v, json_string_value(id));
			if (i >= 0)
				json_array_append_new(list, account_json(c, &v, (size_t)i));
			else
				json_array_append(not_found, id);
		}
	}
	account_view_free(&v);
	return jmap_call_respond(call, jmap_call_name(call),
	                         json_pack("{s:s,s:s,s:o,s:o}", "accountId", JMAP_NOTICES_NAME,
	                                   "state", c->mail.state, "list", list, "notFound",
	                                   not_found),
	                         &err);
}

static int external_discover(void *ctx, struct jmap_call *call, json_t *args,
                             const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err, *domain;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *email = json_string_value(json_object_get(args, "email"));
	if (email == NULL || !setup_email_split(email, &domain))
		FAIL("invalidArguments", "email must be an address: local@domain");
	struct setup_profiles *profiles = NULL;
	if (setup_profiles_builtin(&profiles, &err) < 0)
		FAIL("serverFail", "the built-in provider profiles do not load");
	struct setup_options opt = {0};
	struct setup_found *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		setup_profiles_free(&profiles);
		FAIL("serverFail", "out of memory");
	}
	bool found = setup_discover(profiles, email, &opt, f, &err) == 0;
	char imap[300] = "", smtp[300] = "";
	if (f->has_imap && setup_imap_url(&f->imap, imap, sizeof(imap)) < 0)
		imap[0] = '\0';
	if (f->has_smtp && setup_smtp_url(&f->smtp, smtp, sizeof(smtp)) < 0)
		smtp[0] = '\0';
	json_t *sources = json_array();
	for (const char *line = f->trail; *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t n = nl != NULL ? (size_t)(nl - line) : strlen(line);
		json_array_append_new(sources, json_stringn(line, n));
		line += n + (nl != NULL ? 1 : 0);
	}
	const char *login = f->has_imap && f->imap.login[0] != '\0' ? f->imap.login : email;
	json_t *res =
	    json_pack("{s:s,s:o,s:o,s:s,s:o,s:o,s:o}", "accountId", JMAP_NOTICES_NAME, "imapUrl",
	              imap[0] != '\0' ? json_string(imap) : json_null(), "smtpUrl",
	              smtp[0] != '\0' ? json_string(smtp) : json_null(), "login", login, "sources",
	              sources, "oauthProvider",
	              f->profile != NULL && (f->profile->auth & SETUP_AUTH_OAUTH2) != 0
	                  ? json_string(f->profile->oauth.provider)
	                  : json_null(),
	              "providerName",
	              f->provider_name[0] != '\0' ? json_string(f->provider_name) : json_null());
	/* Can this hub sign in at the discovered provider (daemon-oauth.c)? */
	json_object_set_new(
	    res, "oauthConfigured",
	    json_boolean(f->profile != NULL && (f->profile->auth & SETUP_AUTH_OAUTH2) != 0 &&
	                 daemon_oauth_configured(c->sv, f->profile->oauth.provider)));
	free(f);
	setup_profiles_free(&profiles);
	if (!found && imap[0] == '\0') {
		json_decref(res);
		FAIL("serverFail", "no settings found for this address: enter the IMAP and SMTP "
		                   "servers yourself");
	}
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

const char *daemon_manage_settings(json_t *o, struct daemon_new_settings *s)
{
	char host[256], port[8];
	enum imap_security sec;
	json_t *smtp = json_object_get(o, "smtpUrl");
	s->imap = json_string_value(json_object_get(o, "imapUrl"));
	s->login = json_string_value(json_object_get(o, "login"));
	s->smtp = json_string_value(smtp);
	if (s->imap == NULL ||
	    imap_url_parse(s->imap, host, sizeof(host), port, sizeof(port), &sec) < 0)
		return "imapUrl must be imaps://host[:port] or imap://host[:port] (STARTTLS)";
	if (smtp != NULL && !json_is_null(smtp) && (s->smtp == NULL || !smtp_url_valid(s->smtp)))
		return "smtpUrl must be null, submissions://host[:port] or smtp://host[:port] "
		       "(STARTTLS)";
	if (s->login == NULL || s->login[0] == '\0' || strpbrk(s->login, "\r\n") != NULL ||
	    strlen(s->login) > 320)
		return "login must be the account's user name (1 to 320 characters, one line)";
	return NULL;
}

static int external_disclose(void *ctx, struct jmap_call *call, json_t *args,
                             const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *kind = json_string_value(json_object_get(args, "kind"));
	if (kind != NULL && strcmp(kind, "oauth") == 0) /* daemon-oauth.c */
		return daemon_oauth_disclose(ctx, call, args, error_type_r, description_r);
	if (kind != NULL && strcmp(kind, "password") != 0)
		FAIL("invalidArguments", "kind is \"password\" or \"oauth\"");
	struct daemon_new_settings s;
	const char *bad = daemon_manage_settings(args, &s);
	if (bad != NULL)
		FAIL("invalidArguments", bad);
	/* The shared hub: the disclosure reads it only. */
	struct hub *hub = manage_lock(c);
	struct hub_user u;
	if (current_user(c, hub, &u) < 0) {
		manage_unlock(c);
		FAIL("serverFail", "cannot read the hub; try again");
	}
	struct buf text;
	char id[SVC_DISCLOSURE_ID_SIZE];
	buf_init(&text, SVC_DISCLOSURE_MAX);
	if (svc_account_disclosure(hub, &u, s.imap, s.smtp, s.login, NULL, &text, id) < 0) {
		manage_unlock(c);
		buf_free(&text);
		FAIL("serverFail", "the disclosure does not fit; use shorter settings");
	}
	manage_unlock(c);
	json_t *res = json_pack("{s:s,s:s,s:s}", "accountId", JMAP_NOTICES_NAME, "text",
	                        buf_str(&text), "disclosureId", id);
	buf_free(&text);
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* A SetError {type, description}. */
static json_t *set_error(const char *type, const char *description)
{
	return json_pack("{s:s,s:s}", "type", type, "description", description);
}

/* The user's key-encryption key: the master key's, or a zero-access user's
 * from their unlock lease. */
static int user_kek(struct daemon_api_ctx *c, struct hub *hub, const struct hub_user *u,
                    struct vault_kek **kek_r, char *error, size_t size)
{
	struct svc_passphrase pass = {.leases = c->sv->leases};
	return svc_user_kek(hub, u, &pass, "web", kek_r, error, size);
}

static json_t *account_create(struct daemon_api_ctx *c, struct hub *hub, json_t *o,
                              int64_t *hub_id_r)
{
	struct daemon_new_settings s;
	const char *bad = daemon_manage_settings(o, &s);
	if (bad != NULL)
		return set_error("invalidProperties", bad);
	const char *password = json_string_value(json_object_get(o, "password"));
	const char *disclosure = json_string_value(json_object_get(o, "disclosureId"));
	json_t *test = json_object_get(o, "test");
	if (password == NULL || password[0] == '\0')
		return set_error("invalidProperties", "password is required");
	if (!json_is_true(json_object_get(o, "consent")))
		return set_error("invalidProperties",
		                 "consent must be true: show the disclosure "
		                 "(ExternalAccount/disclose) and add only when the user agreed");
	if (test != NULL && !json_is_boolean(test))
		return set_error("invalidProperties", "test must be true or false");
	struct hub_user u;
	if (current_user(c, hub, &u) < 0)
		return set_error("serverFail", "cannot read the hub; try again");
	char error[SVC_ERROR_SIZE];
	int64_t dup_id = 0;
	int dup = svc_account_duplicate(hub, &u, s.imap, s.login, &dup_id, NULL, 0, NULL, 0, error,
	                                sizeof(error));
	if (dup != 0)
		return set_error(dup < 0 ? "serverFail" : "alreadyExists",
		                 dup < 0 ? "cannot read the accounts; try again"
		                         : "this login on this server is one of your accounts "
		                           "already: change its password instead");
	struct buf text;
	char id[SVC_DISCLOSURE_ID_SIZE];
	buf_init(&text, SVC_DISCLOSURE_MAX);
	int built = svc_account_disclosure(hub, &u, s.imap, s.smtp, s.login, NULL, &text, id);
	buf_free(&text);
	if (built < 0)
		return set_error("serverFail", "the disclosure does not fit; use shorter settings");
	if (disclosure == NULL || strcmp(disclosure, id) != 0)
		return set_error("invalidProperties",
		                 "disclosureId is not the disclosure for these settings as it "
		                 "reads now: show the current one (ExternalAccount/disclose) and "
		                 "ask for consent again");
	struct vault_kek *kek = NULL;
	if (user_kek(c, hub, &u, &kek, error, sizeof(error)) < 0)
		return set_error("forbidden", u.zero_access
		                                  ? "your key is locked: sign in again with your "
		                                    "password, then add the account"
		                                  : "the hub cannot open its key; ask its "
		                                    "administrator");
	struct svc_account_new add = {.imap = s.imap,
	                              .smtp = s.smtp,
	                              .login = s.login,
	                              .ca = NULL,
	                              .password = password,
	                              .disclosure_id = id,
	                              .tool = "web",
	                              .check = test == NULL || json_is_true(test),
	                              .signin_via = NULL};
	int r = svc_account_add(hub, &u, kek, &add, hub_id_r, error, sizeof(error));
	vault_kek_free(&kek);
	if (r < 0) {
		daemon_log(DAEMON_LOG_INFO, u.name, 0, "account add refused: %s", error);
		json_t *e = set_error("invalidProperties", error);
		return e;
	}
	daemon_log(DAEMON_LOG_INFO, u.name, *hub_id_r, "account added with consent (web)");
	return NULL;
}

static json_t *account_update(struct daemon_api_ctx *c, struct account_view *v, size_t i,
                              json_t *patch)
{
	const struct hub_account *a = &v->a[i];
	const char *key, *err;
	json_t *value;
	json_object_foreach(patch, key, value)
	{
		if (strcmp(key, "password") != 0 && strcmp(key, "isPrimary") != 0 &&
		    strcmp(key, "test") != 0)
			return set_error("invalidProperties",
			                 "only password and isPrimary can be changed");
	}
	json_t *primary = json_object_get(patch, "isPrimary");
	if (primary != NULL && !json_is_true(primary))
		return set_error("invalidProperties",
		                 "isPrimary can only be set to true (make another account primary "
		                 "instead)");
	json_t *pw = json_object_get(patch, "password");
	json_t *test = json_object_get(patch, "test");
	if (pw != NULL) {
		const char *password = json_string_value(pw);
		if (password == NULL || password[0] == '\0')
			return set_error("invalidProperties",
			                 "password must be a non-empty string");
		if (a->oauth)
			return set_error("invalidProperties",
			                 "an OAuth account has no password: sign it in again "
			                 "(ExternalAccount/oauthStart with signIn)");
		/* A handle of the request's own: the login check waits for
		 * the servers. */
		struct hub *hub = manage_private_hub(c);
		struct hub_user u;
		char error[SVC_ERROR_SIZE];
		struct vault_kek *kek = NULL;
		if (hub == NULL || current_user(c, hub, &u) < 0)
			return set_error("serverFail", "cannot read the hub; try again");
		if (user_kek(c, hub, &u, &kek, error, sizeof(error)) < 0)
			return set_error("forbidden",
			                 u.zero_access ? "your key is locked: sign in again with "
			                                 "your password first"
			                               : "the hub cannot open its key; ask its "
			                                 "administrator");
		/* The stored settings are used only when the stored password
		 * vouches for them (as 'account password' does). */
		char *old = NULL;
		int r = svc_account_open_secret(hub, &u, a, kek, "test", "imap-password", &old,
		                                error, sizeof(error));
		svc_secret_free(&old);
		if (r == 0 && (test == NULL || json_is_true(test)))
			r = svc_account_check_login(a->imap_url, a->smtp_url, a->login, a->ca_file,
			                            password, error, sizeof(error));
		struct audit_detail d[] = {{"imap", a->imap_url},
		                           {"smtp", a->smtp_url != NULL ? a->smtp_url : "none"},
		                           {"login", a->login},
		                           {"ca", a->ca_file != NULL ? a->ca_file : "none"}};
		if (r == 0 && (hub_audit(hub, &u, AUDIT_ACCOUNT_CHANGED, a->id, d, 4, &err) < 0 ||
		               hub_account_set_password(hub, &u, a, kek, password, &err) < 0)) {
			snprintf(error, sizeof(error), "%s", err);
			r = -1;
		}
		vault_kek_free(&kek);
		if (r < 0)
			return set_error("invalidProperties", error);
		/* A warm sync session logged in with the old password goes. */
		svc_pool_drop_account(c->sv->pool, a->id);
		/* Push reconnects with the new password: the account as stored
		 * now (its new secret version), or the next round would see a
		 * change and reconnect once more. */
		struct hub_account *now = NULL;
		size_t n_now = 0;
		if (hub_account_list(hub, u.id, &now, &n_now, &err) == 0)
			for (size_t k = 0; k < n_now; k++)
				if (now[k].id == a->id)
					daemon_provider_account_start(u.name, &now[k]);
		hub_accounts_free(&now, n_now);
	}
	if (primary != NULL && jmap_session_set_primary(c->mail.store, v->a, v->n, a->id, &err) < 0)
		return set_error("serverFail", err);
	if (primary != NULL)
		c->accounts_changed = true;
	return NULL;
}

static int external_set(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                        const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err, *key;
	json_t *value;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	json_t *create = json_object_get(args, "create");
	json_t *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	if ((create != NULL && !json_is_null(create) && !json_is_object(create)) ||
	    (update != NULL && !json_is_null(update) && !json_is_object(update)) ||
	    (destroy != NULL && !json_is_null(destroy) && !json_is_array(destroy)))
		FAIL("invalidArguments", "create and update are objects, destroy a list of ids");
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	json_t *receipts = json_object();
	json_object_foreach(create, key, value)
	{
		int64_t hub_id = 0;
		/* A handle of the request's own: the login check takes up to
		 * 30 s, which must not hold hub_lock. */
		struct hub *hub = manage_private_hub(c);
		json_t *e = !json_is_object(value)
		                ? set_error("invalidProperties", "an account is an object")
		            : hub == NULL
		                ? set_error("serverFail", "cannot open the hub; try again")
		                : account_create(c, hub, value, &hub_id);
		struct account_view v;
		if (e == NULL && account_view_load(c, &v) < 0)
			e = set_error("serverFail", "the account was added, but cannot be listed");
		if (e != NULL) {
			json_object_set_new(not_created, key, e);
			continue;
		}
		char id[32] = "";
		for (size_t i = 0; i < v.n; i++)
			if (v.a[i].id == hub_id) {
				snprintf(id, sizeof(id), "A%lld",
				         (long long)v.list[i].store_account_id);
				daemon_provider_account_start(c->p->user.name, &v.a[i]);
			}
		account_view_free(&v);
		json_object_set_new(created, key,
		                    json_pack("{s:s,s:I}", "id", id, "hubId", (json_int_t)hub_id));
		jmap_call_set_created_id(call, key, id, &err);
		c->accounts_changed = true;
		/* Its first sync now, by the account worker. */
		daemon_account_changed(c->sv, c->p->user.name, hub_id, "");
	}
	json_object_foreach(update, key, value)
	{
		struct account_view v;
		if (account_view_load(c, &v) < 0) {
			json_object_set_new(not_updated, key,
			                    set_error("serverFail", "cannot read the accounts"));
			continue;
		}
		const char *id = key;
		jmap_call_resolve_id(call, key, &id, &err);
		long i = account_index(&v, id);
		json_t *e = i < 0 ? set_error("notFound", "no such account")
		            : !json_is_object(value)
		                ? set_error("invalidPatch", "a patch is an object")
		                : account_update(c, &v, (size_t)i, value);
		account_view_free(&v);
		if (e != NULL)
			json_object_set_new(not_updated, key, e);
		else
			json_object_set_new(updated, key, json_null());
	}
	size_t k;
	json_array_foreach(destroy, k, value)
	{
		const char *key_text = json_string_value(value);
		const char *id = key_text;
		if (key_text == NULL)
			continue;
		jmap_call_resolve_id(call, key_text, &id, &err);
		struct account_view v;
		long i = -1;
		int64_t hub_id = 0;
		if (account_view_load(c, &v) == 0) {
			i = account_index(&v, id);
			hub_id = i >= 0 ? v.a[i].id : 0;
			account_view_free(&v);
		}
		if (i < 0) {
			json_object_set_new(not_destroyed, key_text,
			                    set_error("notFound", "no such account"));
			continue;
		}
		/* A handle of the request's own: an OAuth grant is revoked at
		 * the provider. */
		struct hub *hub = manage_private_hub(c);
		struct svc_account_removal *r = hub != NULL ? calloc(1, sizeof(*r)) : NULL;
		if (r == NULL) {
			json_object_set_new(
			    not_destroyed, key_text,
			    set_error("serverFail", hub == NULL ? "cannot open the hub; try again"
			                                        : "out of memory"));
			continue;
		}
		daemon_provider_account_stop(hub_id);
		unsigned warm = svc_pool_drop_account(c->sv->pool, hub_id);
		svc_account_remove(hub, c->p->user.name, hub_id, r);
		/* And one a sync running meanwhile parked again. */
		warm += svc_pool_drop_account(c->sv->pool, hub_id);
		if (warm > 0)
			daemon_log(DAEMON_LOG_INFO, c->p->user.name, hub_id,
			           "warm sync session logged out (account removed)");
		if (r->outcome == SVC_REMOVAL_DONE || r->outcome == SVC_REMOVAL_ALREADY) {
			json_array_append_new(destroyed, json_string(key_text));
			json_object_set_new(receipts, key_text, json_string(r->receipt));
			c->accounts_changed = true;
			daemon_log(DAEMON_LOG_INFO, c->p->user.name, hub_id,
			           "account removed from all devices (web)");
		} else {
			char desc[SVC_ERROR_SIZE + 64];
			snprintf(desc, sizeof(desc), "%s%s", r->error,
			         r->finish_again ? " (remove it again to finish)" : "");
			json_object_set_new(not_destroyed, key_text, set_error("serverFail", desc));
		}
		free(r);
	}
	json_t *res = json_pack("{s:s,s:n,s:s}", "accountId", JMAP_NOTICES_NAME, "oldState",
	                        "newState", c->mail.state);
	json_object_set_new(res, "created", created);
	json_object_set_new(res, "updated", updated);
	json_object_set_new(res, "destroyed", destroyed);
	json_object_set_new(res, "notCreated", not_created);
	json_object_set_new(res, "notUpdated", not_updated);
	json_object_set_new(res, "notDestroyed", not_destroyed);
	json_object_set_new(res, "receipts", receipts);
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

static int external_test(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                         const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	char error[SVC_ERROR_SIZE] = "";
	int r;
	const char *id = json_string_value(json_object_get(args, "id"));
	if (id != NULL) {
		struct account_view v;
		if (account_view_load(c, &v) < 0)
			FAIL("serverFail", "cannot read the accounts; try again");
		long i = account_index(&v, id);
		if (i < 0) {
			account_view_free(&v);
			FAIL("invalidArguments", "no such account");
		}
		const struct hub_account *a = &v.a[i];
		struct hub_user u;
		struct vault_kek *kek = NULL;
		char *secret = NULL;
		if (a->oauth) {
			snprintf(error, sizeof(error),
			         "an OAuth account is tested by its next sync, not here");
			r = -1;
		} else {
			/* The password opened (and audited) over the shared hub;
			 * the login check after hub_lock is released. */
			struct hub *hub = manage_lock(c);
			if ((r = current_user(c, hub, &u)) < 0)
				snprintf(error, sizeof(error), "cannot read the hub; try again");
			else if ((r = user_kek(c, hub, &u, &kek, error, sizeof(error))) == 0)
				r = svc_account_open_secret(hub, &u, a, kek, "test",
				                            "imap-password", &secret, error,
				                            sizeof(error));
			manage_unlock(c);
			if (r == 0)
				r = svc_account_check_login(a->imap_url, a->smtp_url, a->login,
				                            a->ca_file, secret, error,
				                            sizeof(error));
		}
		svc_secret_free(&secret);
		vault_kek_free(&kek);
		account_view_free(&v);
	} else {
		struct daemon_new_settings s;
		const char *bad = daemon_manage_settings(args, &s);
		const char *password = json_string_value(json_object_get(args, "password"));
		if (bad != NULL)
			FAIL("invalidArguments", bad);
		if (password == NULL)
			FAIL("invalidArguments", "give id, or imapUrl, login and password");
		r = svc_account_check_login(s.imap, s.smtp, s.login, NULL, password, error,
		                            sizeof(error));
	}
	/* The CLI's wording ends in "; nothing was stored": true, but a test
	 * stores nothing anyway. */
	char *tail = strstr(error, "; nothing was stored");
	if (tail != NULL)
		*tail = '\0';
	json_t *res = json_pack("{s:s,s:b,s:o}", "accountId", JMAP_NOTICES_NAME, "ok", r == 0,
	                        "error", r == 0 ? json_null() : json_string(error));
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* A /get answer of the notices account: list (taken), nothing not found. */
static int respond_list(struct daemon_api_ctx *c, struct jmap_call *call, json_t *list)
{
	const char *err;
	return jmap_call_respond(call, jmap_call_name(call),
	                         json_pack("{s:s,s:s,s:o,s:[]}", "accountId", JMAP_NOTICES_NAME,
	                                   "state", c->mail.state, "list", list, "notFound"),
	                         &err);
}

/* ---- Receipts, consents, devices ---- */

/* Each reads one of the user's lists from hub.db under the hub lock and
 * makes its /get list; NULL when it cannot be read. */
typedef json_t *user_list_fn(struct daemon_api_ctx *c);

/* The /get of a list the hub keeps per user: the account check, the list,
 * the answer; what names the list in the error. */
static int user_list_get(struct daemon_api_ctx *c, struct jmap_call *call, json_t *args,
                         user_list_fn *read_list, const char *description,
                         const char **error_type_r, const char **description_r)
{
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	json_t *list = read_list(c);
	if (list == NULL)
		FAIL("serverFail", description);
	return respond_list(c, call, list);
}

static json_t *receipts_json(struct daemon_api_ctx *c)
{
	const char *err;
	struct hub_receipt *r = NULL;
	size_t n = 0;
	int listed = hub_receipt_list(manage_lock(c), c->p->user.id, &r, &n, &err);
	manage_unlock(c);
	if (listed < 0)
		return NULL;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof(id), "R%lld", (long long)r[i].id);
		json_array_append_new(list, json_pack("{s:s,s:o,s:s}", "id", id, "created",
		                                      json_date(r[i].time), "text", r[i].text));
	}
	hub_receipts_free(&r, n);
	return list;
}

static int receipt_get(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                       const char **description_r)
{
	return user_list_get(ctx, call, args, receipts_json, "cannot read the receipts; try again",
	                     error_type_r, description_r);
}

static json_t *consents_json(struct daemon_api_ctx *c)
{
	const char *err;
	struct hub_consent *r = NULL;
	size_t n = 0;
	int listed = hub_consent_list(manage_lock(c), c->p->user.id, &r, &n, &err);
	manage_unlock(c);
	if (listed < 0)
		return NULL;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof(id), "C%lld", (long long)r[i].id);
		json_array_append_new(list, json_pack("{s:s,s:I,s:s,s:o,s:s,s:s}", "id", id,
		                                      "hubAccountId", (json_int_t)r[i].account_id,
		                                      "login", r[i].login, "at",
		                                      json_date(r[i].time), "tool", r[i].tool,
		                                      "disclosure", r[i].disclosure_id));
	}
	free(r);
	return list;
}

static int consent_get(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                       const char **description_r)
{
	return user_list_get(ctx, call, args, consents_json, "cannot read the consents; try again",
	                     error_type_r, description_r);
}

static json_t *device_json(const struct hub_device *d)
{
	char id[32];
	snprintf(id, sizeof(id), "D%lld", (long long)d->id);
	return json_pack("{s:s,s:s,s:o,s:o}", "id", id, "name", d->name, "createdAt",
	                 json_date(d->created), "lastUsedAt", json_date(d->last_used));
}

static json_t *devices_json(struct daemon_api_ctx *c)
{
	const char *err;
	struct hub_device *d = NULL;
	size_t n = 0;
	int listed = hub_device_list(manage_lock(c), c->p->user.id, &d, &n, &err);
	manage_unlock(c);
	if (listed < 0)
		return NULL;
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, device_json(&d[i]));
	free(d);
	return list;
}

static int device_get(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                      const char **description_r)
{
	return user_list_get(ctx, call, args, devices_json, "cannot read the devices; try again",
	                     error_type_r, description_r);
}

static int device_set(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                      const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err, *key;
	json_t *value;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	json_t *create = json_object_get(args, "create");
	json_t *destroy = json_object_get(args, "destroy");
	json_t *update = json_object_get(args, "update");
	if ((create != NULL && !json_is_null(create) && !json_is_object(create)) ||
	    (destroy != NULL && !json_is_null(destroy) && !json_is_array(destroy)))
		FAIL("invalidArguments", "create is an object, destroy a list of ids");
	json_t *created = json_object(), *not_created = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	json_t *not_updated = json_object();
	json_object_foreach(create, key, value)
	{
		const char *name = json_string_value(json_object_get(value, "name"));
		char token[HUB_DEVICE_TOKEN_SIZE];
		int64_t id = 0;
		if (name == NULL) {
			json_object_set_new(not_created, key,
			                    set_error("invalidProperties", "name is required"));
			continue;
		}
		int added = hub_device_add(manage_lock(c), &c->p->user, name, token, &id, &err);
		if (added < 0)
			json_object_set_new(not_created, key, set_error("invalidProperties", err));
		manage_unlock(c); /* after err is copied: it is the handle's */
		if (added < 0)
			continue;
		char idt[32];
		snprintf(idt, sizeof(idt), "D%lld", (long long)id);
		json_object_set_new(
		    created, key,
		    json_pack("{s:s,s:s,s:s}", "id", idt, "name", name, "token", token));
		sodium_memzero(token, sizeof(token));
		jmap_call_set_created_id(call, key, idt, &err);
	}
	json_object_foreach(update, key, value)
	{
		json_object_set_new(not_updated, key,
		                    set_error("forbidden", "a device cannot be changed: add a new "
		                                           "one and revoke the old"));
	}
	size_t k;
	json_array_foreach(destroy, k, value)
	{
		const char *key_text = json_string_value(value), *id = key_text;
		if (key_text == NULL)
			continue;
		jmap_call_resolve_id(call, key_text, &id, &err);
		struct hub_device *d = NULL;
		size_t n = 0;
		char name[65] = "";
		struct hub *hub = manage_lock(c);
		if (hub_device_list(hub, c->p->user.id, &d, &n, &err) == 0) {
			for (size_t i = 0; i < n; i++) {
				char idt[32];
				snprintf(idt, sizeof(idt), "D%lld", (long long)d[i].id);
				if (strcmp(idt, id) == 0)
					snprintf(name, sizeof(name), "%s", d[i].name);
			}
			free(d);
		}
		int64_t revoked = 0;
		int r =
		    name[0] == '\0' ? 1 : hub_device_revoke(hub, &c->p->user, name, &revoked, &err);
		if (r < 0)
			json_object_set_new(not_destroyed, key_text, set_error("serverFail", err));
		/* Before the lease's release, which takes hub_lock itself. */
		manage_unlock(c);
		if (r == 1) {
			json_object_set_new(not_destroyed, key_text,
			                    set_error("notFound", "no such device"));
		} else if (r == 0) {
			/* A zero-access user's lease it held goes with it. */
			int wiped =
			    svc_lease_release(c->sv->leases, c->p->user.id, revoked, "revoked");
			if (wiped == 1)
				svc_pool_drop_user(c->sv->pool, c->p->user.id);
			json_array_append_new(destroyed, json_string(key_text));
		}
	}
	json_t *res = json_pack("{s:s,s:n,s:s}", "accountId", JMAP_NOTICES_NAME, "oldState",
	                        "newState", c->mail.state);
	json_object_set_new(res, "created", created);
	json_object_set_new(res, "updated", json_object());
	json_object_set_new(res, "destroyed", destroyed);
	json_object_set_new(res, "notCreated", not_created);
	json_object_set_new(res, "notUpdated", not_updated);
	json_object_set_new(res, "notDestroyed", not_destroyed);
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* ---- Web sessions (the shared hub: its web session lifetimes are serve's
 * settings) ---- */

static bool web_session_id(const char *text, int64_t *id_r)
{
	char *end;
	if (text == NULL || text[0] != 'W' || text[1] < '1' || text[1] > '9')
		return false;
	errno = 0;
	long long v = strtoll(text + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return false;
	*id_r = v;
	return true;
}

static int web_session_get(void *ctx, struct jmap_call *call, json_t *args,
                           const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	struct hub_web_session *s = NULL;
	size_t n = 0;
	pthread_mutex_lock(&c->sv->hub_lock);
	int r = hub_web_session_list(c->sv->hub, c->p->user.id, &s, &n, &err);
	pthread_mutex_unlock(&c->sv->hub_lock);
	if (r < 0)
		FAIL("serverFail", "cannot read the sessions; try again");
	json_t *list = json_array();
	for (size_t i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof(id), "W%lld", (long long)s[i].id);
		json_array_append_new(
		    list, json_pack("{s:s,s:o,s:o,s:o,s:s,s:s,s:b}", "id", id, "createdAt",
		                    json_date(s[i].created), "lastUsedAt",
		                    json_date(s[i].last_used), "expiresAt", json_date(s[i].expires),
		                    "userAgent", s[i].user_agent, "address", s[i].address,
		                    "isCurrent", s[i].id == c->p->web_session_id));
	}
	free(s);
	return respond_list(c, call, list);
}

static int web_session_set(void *ctx, struct jmap_call *call, json_t *args,
                           const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err, *key;
	json_t *value;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	json_t *destroy = json_object_get(args, "destroy");
	if (destroy != NULL && !json_is_null(destroy) && !json_is_array(destroy))
		FAIL("invalidArguments", "destroy is a list of ids");
	json_t *not_created = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	json_object_foreach(json_object_get(args, "create"), key, value)
	{
		json_object_set_new(not_created, key,
		                    set_error("forbidden", "web sessions are made by signing in"));
	}
	json_object_foreach(json_object_get(args, "update"), key, value)
	{
		json_object_set_new(not_updated, key,
		                    set_error("forbidden", "a web session cannot be changed"));
	}
	size_t k;
	json_array_foreach(destroy, k, value)
	{
		const char *text = json_string_value(value);
		int64_t id = 0;
		if (text == NULL)
			continue;
		if (!web_session_id(text, &id)) {
			json_object_set_new(not_destroyed, text,
			                    set_error("notFound", "no such session"));
			continue;
		}
		pthread_mutex_lock(&c->sv->hub_lock);
		int r = hub_web_session_revoke(c->sv->hub, &c->p->user, id, &err);
		pthread_mutex_unlock(&c->sv->hub_lock);
		if (r == 0) {
			/* A zero-access user's lease it held goes with it (the
			 * session is holder -id, daemon-websession.c). */
			if (svc_lease_release(c->sv->leases, c->p->user.id, -id, "revoked") == 1)
				svc_pool_drop_user(c->sv->pool, c->p->user.id);
			json_array_append_new(destroyed, json_string(text));
		} else {
			json_object_set_new(
			    not_destroyed, text,
			    r == 1 ? set_error("notFound", "no such session")
			           : set_error("serverFail", "cannot revoke it; try again"));
		}
	}
	json_t *res = json_pack("{s:s,s:n,s:s}", "accountId", JMAP_NOTICES_NAME, "oldState",
	                        "newState", c->mail.state);
	json_object_set_new(res, "created", json_object());
	json_object_set_new(res, "updated", json_object());
	json_object_set_new(res, "destroyed", destroyed);
	json_object_set_new(res, "notCreated", not_created);
	json_object_set_new(res, "notUpdated", not_updated);
	json_object_set_new(res, "notDestroyed", not_destroyed);
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* ---- The audit log ---- */

struct audit_filter {
	const char *event, *account;
	int64_t after, before; /* 0: none */
};

static bool audit_match(const struct audit_filter *f, const struct audit_entry *e)
{
	return (f->event == NULL || strcmp(f->event, e->event_name) == 0) &&
	       (f->account == NULL || strcmp(f->account, e->account) == 0) &&
	       (f->after == 0 || e->time >= f->after) && (f->before == 0 || e->time < f->before);
}

static json_t *audit_json(const struct audit_entry *e)
{
	json_t *details = json_object();
	for (size_t i = 0; i < e->n_details; i++)
		json_object_set_new(details, e->details[i].key, json_string(e->details[i].value));
	return json_pack("{s:o,s:s,s:o,s:o}", "at", json_date(e->time), "event", e->event_name,
	                 "account", e->account[0] != '\0' ? json_string(e->account) : json_null(),
	                 "details", details);
}

static int audit_log_get(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                         const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	json_t *filter = json_object_get(args, "filter");
	json_t *jpos = json_object_get(args, "position"), *jlimit = json_object_get(args, "limit");
	struct audit_filter f = {0};
	char acct_text[32];
	if (filter != NULL && !json_is_null(filter)) {
		if (!json_is_object(filter))
			FAIL("invalidArguments", "filter is an object");
		f.event = json_string_value(json_object_get(filter, "event"));
		json_t *acct = json_object_get(filter, "account");
		f.account = json_string_value(acct);
		if (json_is_integer(acct)) {
			snprintf(acct_text, sizeof(acct_text), "%lld",
			         (long long)json_integer_value(acct));
			f.account = acct_text;
		}
		const char *after = json_string_value(json_object_get(filter, "after"));
		const char *before = json_string_value(json_object_get(filter, "before"));
		if ((after != NULL && !parse_date(after, &f.after)) ||
		    (before != NULL && !parse_date(before, &f.before)))
			FAIL("invalidArguments", "after and before are UTCDates "
			                         "(YYYY-MM-DDTHH:MM:SSZ)");
	}
	json_int_t position = jpos != NULL ? json_integer_value(jpos) : 0;
	json_int_t limit = jlimit != NULL ? json_integer_value(jlimit) : MANAGE_AUDIT_DEFAULT_LIMIT;
	if ((jpos != NULL && !json_is_integer(jpos)) || position < 0 ||
	    (jlimit != NULL && !json_is_integer(jlimit)) || limit < 0 ||
	    limit > MANAGE_AUDIT_MAX_LIMIT)
		FAIL("invalidArguments", "position is 0 or more, limit 0 to 500");
	/* A handle of the request's own: the verification reads and hashes
	 * the whole log, which may take a while; hub_lock would hold up every
	 * sign-in meanwhile. Appends by other handles take turns with it on
	 * the log's own lock (hub.h). */
	struct hub *hub = manage_private_hub(c);
	if (hub == NULL)
		FAIL("serverFail", "cannot open the hub; try again");
	/* Verified first (it may repair what a crash left, see hub.h). */
	uint64_t count = 0;
	const char *note = NULL, *verify_error = NULL;
	char verify_text[512] = "";
	if (hub_audit_verify(hub, &c->p->user, &count, &note, &err) < 0) {
		snprintf(verify_text, sizeof(verify_text), "%s", err);
		verify_error = verify_text;
	}
	char path[4200];
	if (hub_user_path(hub, c->p->user.name, "audit.log", path, sizeof(path)) < 0)
		FAIL("serverFail", "cannot find the audit log");
	/* Two passes: count the matches, then take the newest-first window
	 * [position, position + limit) of them. */
	json_t *entries = json_array();
	uint64_t total = 0;
	for (int pass = 0; pass < 2; pass++) {
		struct audit_iter *it = NULL;
		struct audit_entry e;
		uint64_t k = 0;
		if (audit_iter_init(path, &it, &err) < 0) {
			if (errno == ENOENT || access(path, F_OK) < 0)
				break; /* no log yet: nothing happened */
			json_decref(entries);
			FAIL("serverFail", "cannot read the audit log");
		}
		while (audit_iter_next(it, &e)) {
			if (!audit_match(&f, &e))
				continue;
			if (pass == 0) {
				total++;
				continue;
			}
			/* Match k (oldest first) is at newest-first index total-1-k. */
			uint64_t idx = total - 1 - k++;
			if (idx >= (uint64_t)position && idx < (uint64_t)position + (uint64_t)limit)
				json_array_insert_new(entries, 0, audit_json(&e));
		}
		audit_iter_deinit(&it, &err);
	}
	json_t *res =
	    json_pack("{s:s,s:o,s:I,s:I,s:b,s:o}", "accountId", JMAP_NOTICES_NAME, "entries",
	              entries, "total", (json_int_t)total, "position", (json_int_t)position,
	              "verified", verify_error == NULL, "verifyError",
	              verify_error != NULL ? json_string(verify_error) : json_null());
	if (note != NULL)
		json_object_set_new(res, "verifyNote", json_string(note));
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* ---- Policy ---- */

static json_t *stored(const char *what, const char *where, const char *who, const char *kept)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "what", what, "where", where, "whoCanRead", who,
	                 "keptFor", kept);
}

static int policy_get(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                      const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	struct hub *hub = manage_lock(c);
	struct hub_user u;
	int read = current_user(c, hub, &u);
	const struct hub_settings *set = hub_get_settings(hub);
	unsigned purge = set->inactive_purge_days;
	unsigned warn = purge > 30 ? purge - 30 : 0;
	char where_hub[4300], purge_text[200];
	snprintf(where_hub, sizeof(where_hub), "on this hub, in its data directory %s",
	         hub_data_dir(hub));
	manage_unlock(c);
	if (read < 0)
		FAIL("serverFail", "cannot read the hub; try again");
	snprintf(purge_text, sizeof(purge_text),
	         "while the account is on the hub; everything of yours is deleted after %u "
	         "days without any activity (warnings 30 and 7 days before)",
	         purge);
	json_t *list = json_array();
	json_array_append_new(
	    list,
	    stored("the passwords (or OAuth tokens) of your mail accounts, sealed "
	           "(XChaCha20-Poly1305) with a key made for each account",
	           where_hub,
	           u.zero_access
	               ? "only you: the key is derived from your passphrase; the hub can open it "
	                 "only while you are signed in, for a limited time"
	               : "this hub, with its master key, when it syncs or sends for you; whoever "
	                 "holds both that key and a copy of the data directory",
	           "until you remove the account (its receipt says so) or your data is purged "
	           "for inactivity"));
	json_array_append_new(
	    list, stored("a copy of all mail of your accounts (every folder, message and flag), "
	                 "kept in sync with the servers",
	                 where_hub,
	                 "you, through your devices and the web app; the hub itself when it "
	                 "syncs, searches and sends; the hub's administrator (the mail is not "
	                 "encrypted at rest by mailkeep)",
	                 "as long as the account is on the hub; mail deleted on the server is "
	                 "deleted here at the next sync"));
	json_array_append_new(
	    list, stored("your audit log: every use of a password, every login to a provider, "
	                 "consents, accounts added and removed, sign-ins, devices and lifecycle "
	                 "steps (never a password or mail content)",
	                 where_hub, "you (here and with 'mailkeep audit') and the administrator",
	                 purge_text));
	json_array_append_new(
	    list, stored("your hub user: name, password hash (Argon2id), devices (only a hash "
	                 "of each token), web sign-ins, consents and removal receipts",
	                 where_hub, "the hub, to sign you in; the administrator", purge_text));
	json_t *res = json_pack("{s:s,s:I,s:I,s:o,s:b,s:o}", "accountId", JMAP_NOTICES_NAME,
	                        "inactiveWarnAfterDays", (json_int_t)warn, "purgeAfterDays",
	                        (json_int_t)purge, "lastActivityAt", json_date(u.last_active),
	                        "zeroAccess", u.zero_access, "stored", list);
	return jmap_call_respond(call, jmap_call_name(call), res, &err);
}

/* ---- The hub password ---- */

static int user_change_password(void *ctx, struct jmap_call *call, json_t *args,
                                const char **error_type_r, const char **description_r)
{
	struct daemon_api_ctx *c = ctx;
	const char *err;
	if (daemon_manage_check_account(c, args, error_type_r, description_r) < 0)
		return -1;
	const char *old = json_string_value(json_object_get(args, "old"));
	const char *new = json_string_value(json_object_get(args, "new"));
	if (old == NULL || new == NULL)
		FAIL("invalidArguments", "give the old and the new password");
	if (strlen(new) < SVC_PASSWORD_MIN || strlen(new) > SVC_PASSWORD_MAX)
		FAIL("invalidArguments", "the new password needs 8 to 1024 characters");
	/* A handle of the request's own: both passwords are hashed (Argon2id),
	 * which no lock may wait for. */
	struct hub *hub = manage_private_hub(c);
	struct hub_user u;
	if (hub == NULL || current_user(c, hub, &u) < 0)
		FAIL("serverFail", "cannot read the hub; try again");
	char error[SVC_ERROR_SIZE];
	struct vault_kek *kek = NULL;
	int r = svc_user_set_password(hub, &u, old, new, "web", &kek, error, sizeof(error));
	if (r > 0)
		FAIL("forbidden", "the old password is wrong");
	if (r < 0) {
		daemon_log(DAEMON_LOG_ERROR, u.name, 0, "hub password change: %s", error);
		FAIL("serverFail", "the password was not changed; try again");
	}
	/* A zero-access user's lease held the old key, which opens nothing now. */
	if (kek != NULL)
		svc_lease_rekey(c->sv->leases, u.id, kek);
	vault_kek_free(&kek);
	daemon_log(DAEMON_LOG_INFO, u.name, 0, "hub password changed (web)%s",
	           u.zero_access ? ", account keys rewrapped" : "");
	return jmap_call_respond(
	    call, jmap_call_name(call),
	    json_pack("{s:s,s:b}", "accountId", JMAP_NOTICES_NAME, "changed", 1), &err);
}

/* ---- Registration, session ---- */

int daemon_manage_register(struct jmap_registry *registry, const char **error_r)
{
	static const struct {
		const char *name;
		jmap_method_fn *fn;
	} methods[] = {
	    {"ExternalAccount/get", external_get},
	    {"ExternalAccount/discover", external_discover},
	    {"ExternalAccount/disclose", external_disclose},
	    {"ExternalAccount/set", external_set},
	    {"ExternalAccount/test", external_test},
	    {"Receipt/get", receipt_get},
	    {"Consent/get", consent_get},
	    {"Device/get", device_get},
	    {"Device/set", device_set},
	    {"WebSession/get", web_session_get},
	    {"WebSession/set", web_session_set},
	    {"AuditLog/get", audit_log_get},
	    {"Policy/get", policy_get},
	    {"User/changePassword", user_change_password},
	    {"OAuthProvider/get", daemon_oauth_provider_get},
	    {"ExternalAccount/oauthStart", daemon_oauth_start},
	    {"ExternalAccount/oauthStatus", daemon_oauth_status},
	    {"ExternalAccount/oauthCancel", daemon_oauth_cancel},
	};
	if (jmap_registry_add_capability(registry, DAEMON_MANAGE_CAPABILITY, error_r) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (jmap_registry_add_method(registry, methods[i].name, DAEMON_MANAGE_CAPABILITY,
		                             methods[i].fn, error_r) < 0)
			return -1;
	return 0;
}

void daemon_manage_finish(struct daemon_api_ctx *c)
{
	hub_close(&c->hub);
	if (c->accounts_changed)
		daemon_push_wake(c->sv);
}

void daemon_manage_session(json_t *session)
{
	json_t *caps = json_object_get(session, "capabilities");
	json_t *accounts = json_object_get(session, "accounts");
	if (caps != NULL)
		json_object_set_new(caps, DAEMON_MANAGE_CAPABILITY, json_object());
	const char *id;
	json_t *a;
	json_object_foreach(accounts, id, a)
	{
		const char *name = json_string_value(json_object_get(a, "name"));
		json_t *acaps = json_object_get(a, "accountCapabilities");
		if (name != NULL && strcmp(name, JMAP_NOTICES_NAME) == 0 && acaps != NULL)
			json_object_set_new(acaps, DAEMON_MANAGE_CAPABILITY, json_object());
	}
}
