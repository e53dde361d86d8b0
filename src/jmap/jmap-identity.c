/*
 * Identity/get, /changes and /set (RFC 8621 6) from the user's hub
 * accounts: one identity per account, id "I<hub account id>", email the
 * account's login when it is an address, else login@ the host of the
 * account's submission (or IMAP) URL. name, replyTo, bcc, textSignature and
 * htmlSignature can be set (Identity/set update) and are kept in the
 * user's store (store-identity.h); the name is the display name of the
 * From the hub writes for the identity (drafts created without "from",
 * submissions of a message without From). Identities cannot be created or
 * destroyed here (they are the hub's accounts: `mailkeep account add`);
 * mayDelete is false.
 *
 * State "i<hash>.<seq>": hash is an FNV-1a over the ids and addresses (the
 * hub.db account list keeps no change log, so any change there moves the
 * hash and Identity/changes answers cannotCalculateChanges: clients fetch
 * the few identities again); seq is the store's identity change counter,
 * so for updates made through Identity/set, /changes lists exactly the
 * identities updated since.
 */
#include "jmap-set-private.h"
#include "../hub/hub.h"
#include "../mime/mime-build.h"
#include "../mime/mime-submit.h"
#include "../store/store-identity.h"

/* The host of "imaps://host:port/..." into out; false if none. */
static bool url_host(const char *url, char *out, size_t size)
{
	const char *p = url != NULL ? strstr(url, "://") : NULL;
	if (p == NULL)
		return false;
	p += 3;
	const char *at = strchr(p, '@');
	const char *end = p + strcspn(p, "/?#");
	if (at != NULL && at < end)
		p = at + 1;
	if (*p == '[')
		return false; /* an IP literal is no mail domain */
	size_t len = strcspn(p, ":/?#");
	if (len == 0 || len >= size)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	if (strspn(out, "0123456789.") == len) {
		/* An IPv4 address: the address literal of RFC 5321 4.1.3. */
		if (len + 2 >= size)
			return false;
		memmove(out + 1, out, len);
		out[0] = '[';
		out[len + 1] = ']';
		out[len + 2] = '\0';
		return true;
	}
	/* mail.example.org and imap.example.org serve example.org */
	static const char *const prefixes[] = {"imap.", "smtp.", "mail.", "submission."};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);
		if (strncmp(out, prefixes[i], pl) == 0 && strchr(out + pl, '.') != NULL) {
			memmove(out, out + pl, strlen(out + pl) + 1);
			break;
		}
	}
	return true;
}

static void identity_email(const struct hub_account *a, char *out, size_t size)
{
	const char *login = a->login != NULL ? a->login : "";
	if (strchr(login, '@') != NULL && strchr(login, '@') != login) {
		snprintf(out, size, "%s", login);
		return;
	}
	char host[256];
	if (url_host(a->smtp_url, host, sizeof(host)) || url_host(a->imap_url, host, sizeof(host)))
		snprintf(out, size, "%s@%s", login, host);
	else
		snprintf(out, size, "%s", login);
}

/* The state (see above); -1 if the store cannot be read. */
static int identity_state(struct jmap_mail_ctx *ctx, char *out, size_t size, uint64_t *hash_r,
                          int64_t *seq_r)
{
	/* FNV-1a over the ids and addresses. */
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < jmap_scope_n(ctx); i++) {
		char email[600], item[700];
		identity_email(&jmap_scope_account(ctx)[i], email, sizeof(email));
		snprintf(item, sizeof(item), "%lld %s;", (long long)jmap_scope_account(ctx)[i].id,
		         email);
		for (const unsigned char *p = (const unsigned char *)item; *p != '\0'; p++) {
			h ^= *p;
			h *= 1099511628211ull;
		}
	}
	const char *err;
	int64_t seq;
	if (store_identity_seq(ctx->store, &seq, &err) < 0)
		return -1;
	snprintf(out, size, "i%016llx.%lld", (unsigned long long)h, (long long)seq);
	if (hash_r != NULL)
		*hash_r = h;
	if (seq_r != NULL)
		*seq_r = seq;
	return 0;
}

/* Stored JSON text of an EmailAddress list, or null. */
static json_t *address_list(const char *text)
{
	json_t *v = text != NULL ? json_loads(text, 0, NULL) : NULL;
	return v != NULL ? v : json_null();
}

/* The Identity object; NULL if the store cannot be read. */
static json_t *identity_json(struct jmap_mail_ctx *ctx, const struct hub_account *a)
{
	const char *err;
	char email[600];
	identity_email(a, email, sizeof(email));
	struct store_identity si = {0};
	int r = store_identity_get(ctx->store, a->id, &si, &err);
	if (r < 0)
		return NULL;
	json_t *o =
	    json_pack("{s:o,s:s,s:s,s:o,s:o,s:s,s:s,s:b}", "id", jmap_prefixed('I', a->id), "name",
	              r == 1 ? si.name : "", "email", email, "replyTo", address_list(si.reply_to),
	              "bcc", address_list(si.bcc), "textSignature", r == 1 ? si.text_signature : "",
	              "htmlSignature", r == 1 ? si.html_signature : "", "mayDelete", 0);
	store_identity_free(&si);
	return o;
}

json_t *jmap_identity_from(struct jmap_mail_ctx *ctx, int64_t account_id)
{
	const char *err;
	if (jmap_mail_accounts(ctx) < 0)
		return NULL;
	for (size_t i = 0; i < jmap_scope_n(ctx); i++) {
		const struct hub_account *a = &jmap_scope_account(ctx)[i];
		if (a->id != account_id)
			continue;
		char email[600];
		identity_email(a, email, sizeof(email));
		if (!mime_submit_valid_address(email) || !mime_build_valid_address(email))
			return NULL; /* e.g. alice@[192.0.2.1]: no From of ours */
		struct store_identity si = {0};
		if (store_identity_get(ctx->store, a->id, &si, &err) < 0)
			return NULL;
		json_t *from = json_pack("[{s:s,s:s}]", "name", si.name != NULL ? si.name : "",
		                         "email", email);
		if (si.name == NULL || si.name[0] == '\0')
			json_object_set_new(json_array_get(from, 0), "name", json_null());
		store_identity_free(&si);
		return from;
	}
	return NULL;
}

/* Append the identity of hub account a to list: false if the store fails. */
static bool add_identity(struct jmap_mail_ctx *ctx, json_t *list, const struct hub_account *a)
{
	json_t *o = identity_json(ctx, a);
	return o != NULL && json_array_append_new(list, o) == 0;
}

int jmap_identity_get(void *context, struct jmap_call *call, json_t *args,
                      const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	if (jmap_mail_accounts(ctx) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *ids, *properties;
	if (jmap_arg_strings(args, "ids", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids, error_type_r,
	                     description_r) < 0 ||
	    jmap_arg_strings(args, "properties", 100, &properties, error_type_r, description_r) < 0)
		return -1;
	json_t *list = json_array(), *not_found = json_array();
	bool ok = true;
	if (ids == NULL) {
		for (size_t i = 0; i < jmap_scope_n(ctx) && ok; i++)
			ok = add_identity(ctx, list, &jmap_scope_account(ctx)[i]);
	} else {
		size_t idx;
		json_t *v;
		json_array_foreach(ids, idx, v)
		{
			int64_t id;
			bool found = false;
			if (jmap_list_id(call, v, 'I', &id)) {
				for (size_t i = 0; i < jmap_scope_n(ctx) && !found; i++) {
					if (jmap_scope_account(ctx)[i].id == id) {
						ok =
						    ok && add_identity(ctx, list,
						                       &jmap_scope_account(ctx)[i]);
						found = true;
					}
				}
			}
			if (!found)
				json_array_append(not_found, v);
		}
	}
	char state[64];
	if (!ok || identity_state(ctx, state, sizeof(state), NULL, NULL) < 0) {
		json_decref(list);
		json_decref(not_found);
		*error_type_r = "serverFail";
		return -1;
	}
	size_t at;
	json_t *obj;
	json_array_foreach(list, at, obj) jmap_keep_properties(obj, properties);
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state", state,
	                         "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Identity/get", resp, &err);
}

/* "i<hash>.<seq>" -> its parts; false if not of that shape. */
static bool parse_state(const char *text, uint64_t *hash_r, int64_t *seq_r)
{
	if (text == NULL || text[0] != 'i' || strlen(text) < 19 || text[17] != '.')
		return false;
	char hex[17], *end;
	memcpy(hex, text + 1, 16);
	hex[16] = '\0';
	if (strspn(hex, "0123456789abcdef") != 16 || text[18] < '0' || text[18] > '9')
		return false;
	errno = 0;
	unsigned long long h = strtoull(hex, &end, 16);
	long long seq = strtoll(text + 18, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*hash_r = h;
	*seq_r = seq;
	return true;
}

int jmap_identity_changes(void *context, struct jmap_call *call, json_t *args,
                          const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	if (jmap_mail_accounts(ctx) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	const char *since;
	size_t limit;
	if (jmap_changes_args(args, "sinceState", JMAP_MAIL_MAX_OBJECTS_IN_GET, &since, &limit,
	                      error_type_r, description_r) < 0)
		return -1;
	char state[64];
	uint64_t hash, since_hash;
	int64_t seq, since_seq;
	if (identity_state(ctx, state, sizeof(state), &hash, &seq) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	if (!parse_state(since, &since_hash, &since_seq) || since_hash != hash || since_seq > seq) {
		*error_type_r = "cannotCalculateChanges";
		*description_r = "the hub's account list changed since (it keeps no history): "
		                 "fetch the identities again with Identity/get";
		return -1;
	}
	/* The identities updated after since_seq, oldest change first. */
	json_t *updated = json_array();
	int64_t last = since_seq;
	bool more = false;
	for (;;) {
		int64_t best_seq = 0, best_id = 0;
		for (size_t i = 0; i < jmap_scope_n(ctx); i++) {
			struct store_identity si = {0};
			int r = store_identity_get(ctx->store, jmap_scope_account(ctx)[i].id, &si,
			                           &err);
			if (r < 0) {
				json_decref(updated);
				*error_type_r = "serverFail";
				return -1;
			}
			if (r == 1 && si.seq > last && (best_seq == 0 || si.seq < best_seq)) {
				best_seq = si.seq;
				best_id = jmap_scope_account(ctx)[i].id;
			}
			store_identity_free(&si);
		}
		if (best_seq == 0)
			break;
		if (json_array_size(updated) == limit) {
			more = true;
			break;
		}
		json_array_append_new(updated, jmap_prefixed('I', best_id));
		last = best_seq;
	}
	char new_state[64];
	if (more)
		snprintf(new_state, sizeof(new_state), "i%016llx.%lld", (unsigned long long)hash,
		         (long long)last);
	else
		snprintf(new_state, sizeof(new_state), "%s", state);
	json_t *resp = json_pack("{s:s,s:s,s:s,s:b,s:[],s:o,s:[]}", "accountId", ctx->account_id,
	                         "oldState", since, "newState", new_state, "hasMoreChanges", more,
	                         "created", "updated", updated, "destroyed");
	return jmap_call_respond(call, "Identity/changes", resp, &err);
}

/* --- Identity/set ---------------------------------------------------------- */

#define IDENTITY_MAX_NAME 256
#define IDENTITY_MAX_SIGNATURE (64 * 1024)
#define IDENTITY_MAX_ADDRESSES 50

/* Text that goes into a header: no control characters (CR, LF, NUL, ...). */
static bool header_text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* null or EmailAddress[] (RFC 8621 4.1.2.3) with valid addresses. */
static bool address_list_ok(json_t *v)
{
	if (json_is_null(v))
		return true;
	if (!json_is_array(v) || json_array_size(v) > IDENTITY_MAX_ADDRESSES)
		return false;
	size_t i;
	json_t *a;
	json_array_foreach(v, i, a)
	{
		const char *key;
		json_t *x;
		if (!json_is_object(a))
			return false;
		json_object_foreach(a, key, x)
		{
			if (strcmp(key, "email") == 0) {
				if (!json_is_string(x) ||
				    !mime_submit_valid_address(json_string_value(x)))
					return false;
			} else if (strcmp(key, "name") == 0) {
				if (!json_is_null(x) &&
				    !(json_is_string(x) &&
				      header_text_ok(json_string_value(x), IDENTITY_MAX_NAME)))
					return false;
			} else {
				return false;
			}
		}
		if (json_object_get(a, "email") == NULL)
			return false;
	}
	return true;
}

/* Apply one update (a patch of top-level properties) to si: NULL, or the
 * SetError. */
static json_t *identity_patch(struct store_identity *si, json_t *patch, const char *email,
                              int64_t account_id)
{
	const char *key;
	json_t *v;
	if (!json_is_object(patch))
		return set_error("invalidPatch", "an update is an object", NULL);
	json_object_foreach(patch, key, v)
	{
		char **field = NULL;
		if (strcmp(key, "name") == 0) {
			if (!json_is_string(v) ||
			    !header_text_ok(json_string_value(v), IDENTITY_MAX_NAME))
				return set_error("invalidProperties",
				                 "name is a string without control characters",
				                 key);
			field = &si->name;
		} else if (strcmp(key, "textSignature") == 0 || strcmp(key, "htmlSignature") == 0) {
			if (!json_is_string(v) || json_string_length(v) > IDENTITY_MAX_SIGNATURE ||
			    strlen(json_string_value(v)) != json_string_length(v))
				return set_error("invalidProperties", "a signature is a string",
				                 key);
			field = key[0] == 't' ? &si->text_signature : &si->html_signature;
		} else if (strcmp(key, "replyTo") == 0 || strcmp(key, "bcc") == 0) {
			if (!address_list_ok(v))
				return set_error(
				    "invalidProperties",
				    "null or a list of {name, email} with valid addresses", key);
			field = key[0] == 'r' ? &si->reply_to : &si->bcc;
		} else {
			/* Server-set or immutable: allowed only unchanged (RFC 8620 5.3). */
			bool same = false;
			if (strcmp(key, "id") == 0) {
				int64_t id;
				same = jmap_parse_id(json_string_value(v), 'I', &id) &&
				       id == account_id;
			} else if (strcmp(key, "email") == 0) {
				same =
				    json_is_string(v) && strcmp(json_string_value(v), email) == 0;
			} else if (strcmp(key, "mayDelete") == 0) {
				same = json_is_false(v);
			}
			if (!same)
				return set_error("invalidProperties",
				                 "only name, replyTo, bcc, textSignature and "
				                 "htmlSignature can be set",
				                 key);
			continue;
		}
		char *text = json_is_string(v) ? strdup(json_string_value(v))
		             : json_is_null(v) ? NULL
		                               : json_dumps(v, JSON_COMPACT);
		if (text == NULL && !json_is_null(v))
			return set_error("serverFail", "out of memory", NULL);
		free(*field);
		*field = text;
	}
	return NULL;
}

static const struct hub_account *find_account(struct jmap_mail_ctx *ctx, int64_t id)
{
	for (size_t i = 0; i < jmap_scope_n(ctx); i++)
		if (jmap_scope_account(ctx)[i].id == id)
			return &jmap_scope_account(ctx)[i];
	return NULL;
}

/* --- the driver's callbacks (jmap_set_run) --------------------------------- */

static int identity_set_state(struct jmap_mail_ctx *ctx, char *out, size_t size)
{
	return identity_state(ctx, out, size, NULL, NULL);
}

static int identity_set_prepare(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r,
                                const char **description_r)
{
	(void)args;
	(void)description_r;
	if (jmap_mail_accounts(ctx) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	return 0;
}

static int identity_create(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                           json_t *obj, json_t **created_r, json_t **error_r)
{
	(void)ctx, (void)call, (void)args, (void)obj, (void)created_r;
	*error_r = set_error(
	    "forbidden", "identities are the hub's accounts: add one with `mailkeep account add`",
	    NULL);
	return 0;
}

static int identity_update(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                           int64_t id, json_t *patch, json_t **error_r)
{
	(void)call, (void)args;
	const char *err;
	const struct hub_account *a = find_account(ctx, id);
	if (a == NULL) {
		*error_r = set_error("notFound", NULL, NULL);
		return 0;
	}
	char email[600];
	identity_email(a, email, sizeof(email));
	struct store_identity si = {.account_id = a->id};
	if (store_identity_get(ctx->store, a->id, &si, &err) < 0)
		return -1;
	int64_t seq;
	int r = 0;
	*error_r = identity_patch(&si, patch, email, a->id);
	if (*error_r == NULL && store_identity_put(ctx->store, &si, &seq, &err) < 0)
		r = -1;
	store_identity_free(&si);
	return r;
}

static int identity_destroy(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                            int64_t id, json_t **error_r)
{
	(void)call, (void)args;
	*error_r = find_account(ctx, id) != NULL
	               ? set_error("forbidden",
	                           "identities are the hub's accounts: remove one with "
	                           "`mailkeep account remove`",
	                           NULL)
	               : set_error("notFound", NULL, NULL);
	return 0;
}

int jmap_identity_set(void *context, struct jmap_call *call, json_t *args,
                      const char **error_type_r, const char **description_r)
{
	static const struct jmap_set_ops ops = {
	    .name = "Identity/set",
	    .prefix = 'I',
	    .empty_as_null = true,
	    .check_args = identity_set_prepare,
	    .state = identity_set_state,
	    .create = identity_create,
	    .update = identity_update,
	    .destroy = identity_destroy,
	};
	return jmap_set_run(context, call, args, &ops, error_type_r, description_r);
}

int jmap_identity_register(struct jmap_registry *registry, const char **error_r)
{
	/* The EmailSubmission methods may have declared the capability. */
	if (jmap_registry_add_capability(registry, JMAP_CAPABILITY_SUBMISSION, error_r) < 0 &&
	    strcmp(*error_r, "capability already declared") != 0)
		return -1;
	if (jmap_registry_add_method(registry, "Identity/get", JMAP_CAPABILITY_SUBMISSION,
	                             jmap_identity_get, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Identity/changes", JMAP_CAPABILITY_SUBMISSION,
	                             jmap_identity_changes, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Identity/set", JMAP_CAPABILITY_SUBMISSION,
	                             jmap_identity_set, error_r) < 0)
		return -1;
	return 0;
}
