/*
 * Identity/get and Identity/changes (RFC 8621 6) from the user's hub
 * accounts: one identity per account, id "I<hub account id>", email the
 * account's login when it is an address, else login@ the host of the
 * account's submission (or IMAP) URL; name empty; nothing can be changed
 * (mayDelete false, no Identity/set).
 *
 * State: the identities live in hub.db, which keeps no change log, so the
 * state is a hash of what the identities are (ids and addresses): it moves
 * whenever they change. Identity/changes therefore cannot say what changed
 * since an older state and answers cannotCalculateChanges for any state
 * but the current one (RFC 8620 5.2 allows this); clients then fetch the
 * few identities again with Identity/get.
 */
#include "jmap-set-private.h"
#include "../hub/hub.h"

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

static void identity_state(struct jmap_mail_ctx *ctx, char *out, size_t size)
{
	/* FNV-1a over the ids and addresses. */
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < ctx->n_hub_accounts; i++) {
		char email[600], item[700];
		identity_email(&ctx->hub_accounts[i], email, sizeof(email));
		snprintf(item, sizeof(item), "%lld %s;", (long long)ctx->hub_accounts[i].id, email);
		for (const unsigned char *p = (const unsigned char *)item; *p != '\0'; p++) {
			h ^= *p;
			h *= 1099511628211ull;
		}
	}
	snprintf(out, size, "i%016llx", (unsigned long long)h);
}

static json_t *identity_json(const struct hub_account *a)
{
	char email[600];
	identity_email(a, email, sizeof(email));
	return json_pack("{s:o,s:s,s:s,s:n,s:n,s:s,s:s,s:b}", "id", jmap_prefixed('I', a->id),
	                 "name", "", "email", email, "replyTo", "bcc", "textSignature", "",
	                 "htmlSignature", "", "mayDelete", 0);
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
	    jmap_arg_strings(args, "properties", 100, &properties, error_type_r, description_r) <
	        0)
		return -1;
	json_t *list = json_array(), *not_found = json_array();
	if (ids == NULL) {
		for (size_t i = 0; i < ctx->n_hub_accounts; i++)
			json_array_append_new(list, identity_json(&ctx->hub_accounts[i]));
	} else {
		size_t idx;
		json_t *v;
		json_array_foreach(ids, idx, v)
		{
			int64_t id;
			bool found = false;
			if (jmap_list_id(call, v, 'I', &id)) {
				for (size_t i = 0; i < ctx->n_hub_accounts && !found; i++) {
					if (ctx->hub_accounts[i].id == id) {
						json_array_append_new(
						    list, identity_json(&ctx->hub_accounts[i]));
						found = true;
					}
				}
			}
			if (!found)
				json_array_append(not_found, v);
		}
	}
	size_t at;
	json_t *obj;
	json_array_foreach(list, at, obj) jmap_keep_properties(obj, properties);
	char state[32];
	identity_state(ctx, state, sizeof(state));
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state", state,
	                         "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Identity/get", resp, &err);
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
	const char *since = json_string_value(json_object_get(args, "sinceState"));
	if (since == NULL) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	char state[32];
	identity_state(ctx, state, sizeof(state));
	if (strcmp(since, state) != 0) {
		*error_type_r = "cannotCalculateChanges";
		*description_r = "identities come from the hub's account list, which keeps no "
		                 "history: fetch them again with Identity/get";
		return -1;
	}
	json_t *resp = json_pack("{s:s,s:s,s:s,s:b,s:[],s:[],s:[]}", "accountId", ctx->account_id,
	                         "oldState", since, "newState", state, "hasMoreChanges", 0,
	                         "created", "updated", "destroyed");
	return jmap_call_respond(call, "Identity/changes", resp, &err);
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
	                             jmap_identity_changes, error_r) < 0)
		return -1;
	return 0;
}
