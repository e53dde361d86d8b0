/* Helpers the JMAP method files share (see jmap-private.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../hub/hub.h"
#include "../lib/imap-utf7.h"
#include "../store/store-accounts.h"
#include "../store/store.h"
#include "jmap-mail.h"
#include "jmap-private.h"
#include "jmap-set-private.h"

bool jmap_parse_id(const char *id, char prefix, int64_t *id_r)
{
	if (id == NULL || id[0] != prefix || id[1] < '1' || id[1] > '9')
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(id + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return false;
	*id_r = v;
	return true;
}

json_t *jmap_prefixed(char prefix, int64_t id)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%c%lld", prefix, (long long)id);
	return json_string(buf);
}

json_t *jmap_utc_date(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

int jmap_account_select(struct jmap_mail_ctx *ctx, const char *account_id,
                        const char **error_type_r)
{
	const char *err;
	int64_t id;
	char *key = NULL;
	if (!jmap_parse_id(account_id, 'A', &id)) {
		*error_type_r = "accountNotFound";
		return -1;
	}
	/* The store is the user's own: its accounts are the user's. */
	int r = store_account_key(ctx->store, id, &key, &err);
	if (r <= 0) {
		*error_type_r = r == 0 ? "accountNotFound" : "serverFail";
		return -1;
	}
	int64_t hub_id = 0;
	if (strncmp(key, "account:", 8) == 0 && !jmap_parse_id(key + 7, ':', &hub_id))
		hub_id = 0;
	free(key);
	snprintf(ctx->account_text, sizeof(ctx->account_text), "A%lld", (long long)id);
	ctx->account_id = ctx->account_text;
	ctx->store_account_id = id;
	ctx->hub_account_id = hub_id;
	return 0;
}

int jmap_check_account(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r)
{
	const char *acct = json_string_value(json_object_get(args, "accountId"));
	if (acct == NULL) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	return jmap_account_select(ctx, acct, error_type_r);
}

json_t *jmap_keywords_json(unsigned flags, const char *keywords)
{
	json_t *k = json_object();
	if (flags & STORE_FLAG_SEEN)
		json_object_set_new(k, "$seen", json_true());
	if (flags & STORE_FLAG_FLAGGED)
		json_object_set_new(k, "$flagged", json_true());
	if (flags & STORE_FLAG_ANSWERED)
		json_object_set_new(k, "$answered", json_true());
	if (flags & STORE_FLAG_DRAFT)
		json_object_set_new(k, "$draft", json_true());
	char kw[1024];
	snprintf(kw, sizeof(kw), "%s", keywords != NULL ? keywords : "");
	char *save = NULL;
	for (char *t = strtok_r(kw, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		for (char *c = t; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a'); /* JMAP keywords are lower case */
		json_object_set_new(k, t, json_true());
	}
	return k;
}

json_t *jmap_thread_id(struct jmap_mail_ctx *ctx, int64_t email_id)
{
	const char *err;
	struct store_email e;
	if (store_email_get(ctx->store, email_id, &e, &err) != 1)
		return json_null();
	return jmap_prefixed('T', e.thread_id);
}

int jmap_mail_accounts(struct jmap_mail_ctx *ctx)
{
	if (ctx->accounts_loaded || ctx->load_accounts == NULL)
		return 0;
	if (ctx->load_accounts(ctx) < 0)
		return -1;
	ctx->accounts_loaded = true;
	return 0;
}

const char *jmap_unknown_key(json_t *args, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(args, key, v)
	{
		size_t i = 0;
		while (allowed[i] != NULL && strcmp(key, allowed[i]) != 0)
			i++;
		if (allowed[i] == NULL)
			return key;
	}
	return NULL;
}

int jmap_arg_strings(json_t *args, const char *name, size_t max, json_t **list_r,
                     const char **error_type_r, const char **description_r)
{
	static __thread char why[160];
	json_t *list = json_object_get(args, name);
	if (list == NULL || json_is_null(list)) {
		*list_r = NULL;
		return 0;
	}
	if (!json_is_array(list)) {
		snprintf(why, sizeof(why), "%s must be null or a list of strings", name);
		*error_type_r = "invalidArguments";
		*description_r = why;
		return -1;
	}
	if (json_array_size(list) > max) {
		snprintf(why, sizeof(why), "%s has more than %zu entries", name, max);
		*error_type_r = "requestTooLarge";
		*description_r = why;
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		if (!json_is_string(v)) {
			snprintf(why, sizeof(why), "%s[%zu] is not a string", name, i);
			*error_type_r = "invalidArguments";
			*description_r = why;
			return -1;
		}
	}
	*list_r = list;
	return 1;
}

bool jmap_list_id(struct jmap_call *call, json_t *entry, char prefix, int64_t *id_r)
{
	const char *text = json_string_value(entry), *id, *err;
	return text != NULL && jmap_call_resolve_id(call, text, &id, &err) == 0 &&
	       jmap_parse_id(id, prefix, id_r);
}

char *jmap_destroy_key(json_t *entry)
{
	if (json_is_string(entry))
		return strdup(json_string_value(entry));
	return json_dumps(entry, JSON_COMPACT | JSON_ENCODE_ANY);
}

void jmap_keep_properties(json_t *obj, json_t *properties)
{
	if (properties == NULL)
		return;
	const char *key;
	json_t *val, *tmp;
	json_object_foreach_safe(obj, tmp, key, val)
	{
		bool keep = strcmp(key, "id") == 0;
		size_t j;
		json_t *p;
		json_array_foreach(properties, j, p) keep |= strcmp(json_string_value(p), key) == 0;
		if (!keep)
			json_object_del(obj, key);
	}
}

bool jmap_parse_state(const char *text, uint64_t current, uint64_t *since_r)
{
	/* Only what this server hands out: a decimal counter, no sign, no
	 * blanks, no leading zeros, not from the future. */
	if (text == NULL || text[0] < '0' || text[0] > '9' || (text[0] == '0' && text[1] != '\0'))
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > current)
		return false;
	*since_r = v;
	return true;
}

int jmap_changes_args(json_t *args, const char *since_name, size_t server_max, const char **since_r,
                      size_t *limit_r, const char **error_type_r, const char **description_r)
{
	static __thread char why[96];
	json_t *since = json_object_get(args, since_name);
	json_t *max = json_object_get(args, "maxChanges");
	if (!json_is_string(since)) {
		snprintf(why, sizeof(why), "%s is required (a string)", since_name);
		*error_type_r = "invalidArguments";
		*description_r = why;
		return -1;
	}
	if (max != NULL && !json_is_null(max) &&
	    (!json_is_integer(max) || json_integer_value(max) < 1)) {
		*error_type_r = "invalidArguments";
		*description_r = "maxChanges is a positive integer or null";
		return -1;
	}
	size_t limit = server_max;
	if (json_is_integer(max) && (uint64_t)json_integer_value(max) < (uint64_t)limit)
		limit = (size_t)json_integer_value(max);
	*since_r = json_string_value(since);
	*limit_r = limit;
	return 0;
}

const struct hub_account *jmap_scope_account(const struct jmap_mail_ctx *ctx)
{
	for (size_t i = 0; ctx->hub_account_id > 0 && i < ctx->n_hub_accounts; i++)
		if (ctx->hub_accounts[i].id == ctx->hub_account_id)
			return &ctx->hub_accounts[i];
	return NULL;
}

size_t jmap_scope_n(const struct jmap_mail_ctx *ctx)
{
	return jmap_scope_account(ctx) != NULL ? 1 : 0;
}

int jmap_keywords_parse(json_t *k, unsigned *flags_r, char *out, size_t size)
{
	if (!json_is_object(k) || json_object_size(k) > 100)
		return -1;
	static const struct {
		const char *name;
		unsigned bit;
	} sys[] = {{"$seen", STORE_FLAG_SEEN},
	           {"$flagged", STORE_FLAG_FLAGGED},
	           {"$answered", STORE_FLAG_ANSWERED},
	           {"$draft", STORE_FLAG_DRAFT}};
	unsigned flags = 0;
	size_t used = 0;
	const char *key;
	json_t *v;
	if (size == 0)
		return -1;
	out[0] = '\0';
	/* jansson keeps insertion order; the store wants them sorted. */
	const char *names[100];
	size_t n = 0;
	json_object_foreach(k, key, v)
	{
		if (!json_is_true(v) || key[0] == '\0' || strlen(key) > 255)
			return -1;
		for (const unsigned char *c = (const unsigned char *)key; *c != '\0'; c++)
			if (*c < 0x21 || *c > 0x7e || (*c >= 'A' && *c <= 'Z') ||
			    strchr("(){]%*\"\\", *c) != NULL)
				return -1;
		bool system = false;
		for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
			if (strcmp(key, sys[i].name) == 0) {
				flags |= sys[i].bit;
				system = true;
			}
		}
		if (!system)
			names[n++] = key;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + used, size - used, "%s%s", used > 0 ? " " : "", names[i]);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	*flags_r = flags;
	return 0;
}

/* --- the /set driver (jmap-set-private.h) --------------------------------- */

static json_t *set_or_null(json_t *v, bool empty_as_null)
{
	if (empty_as_null && json_object_size(v) == 0 && json_array_size(v) == 0) {
		json_decref(v);
		return json_null();
	}
	return v;
}

int jmap_set_run(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                 const struct jmap_set_ops *ops, const char **error_type_r,
                 const char **description_r)
{
	static const char *const standard[] = {"accountId", "ifInState", "create",
	                                       "update",    "destroy",   NULL};
	const char *err, *key;
	json_t *v;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_object_foreach(args, key, v)
	{
		bool known = false;
		for (size_t i = 0; !known && standard[i] != NULL; i++)
			known = strcmp(key, standard[i]) == 0;
		for (size_t i = 0; !known && ops->extra_args != NULL && ops->extra_args[i] != NULL;
		     i++)
			known = strcmp(key, ops->extra_args[i]) == 0;
		if (!known) {
			*error_type_r = "invalidArguments";
			*description_r = "unknown argument";
			return -1;
		}
	}
	json_t *create = json_object_get(args, "create"), *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy"),
	       *if_in = json_object_get(args, "ifInState");
	if ((create != NULL && !json_is_null(create) && !json_is_object(create)) ||
	    (update != NULL && !json_is_null(update) && !json_is_object(update)) ||
	    (destroy != NULL && !json_is_null(destroy) && !json_is_array(destroy)) ||
	    (if_in != NULL && !json_is_null(if_in) && !json_is_string(if_in))) {
		*error_type_r = "invalidArguments";
		*description_r =
		    "create and update are objects, destroy a list, ifInState a string";
		return -1;
	}
	if (ops->check_args != NULL && ops->check_args(ctx, args, error_type_r, description_r) < 0)
		return -1;
	if (json_object_size(create) + json_object_size(update) + json_array_size(destroy) >
	    JMAP_SET_MAX_OBJECTS) {
		*error_type_r = "requestTooLarge";
		*description_r = "more than maxObjectsInSet objects";
		return -1;
	}
	if (store_begin(ctx->store, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	/* Another writer (a sync) may have moved the state since the request
	 * started: ifInState is compared with what is held now. */
	char old_state[64], new_state[64];
	if (ops->state(ctx, old_state, sizeof(old_state)) < 0) {
		store_rollback(ctx->store);
		*error_type_r = "serverFail";
		return -1;
	}
	if (json_is_string(if_in) && strcmp(json_string_value(if_in), old_state) != 0) {
		store_rollback(ctx->store);
		*error_type_r = "stateMismatch";
		return -1;
	}
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	int fatal = 0;
	json_object_foreach(create, key, v)
	{
		json_t *ok = NULL, *bad = NULL;
		if (!jmap_is_id(key))
			bad = set_error("invalidProperties", "creation ids are Ids", NULL);
		else if ((fatal = ops->create(ctx, call, args, v, &ok, &bad)) < 0)
			break;
		if (ok != NULL) {
			jmap_call_set_created_id(
			    call, key, json_string_value(json_object_get(ok, "id")), &err);
			json_object_set_new(created, key, ok);
		} else {
			json_object_set_new(not_created, key, bad);
		}
	}
	json_object_foreach(update, key, v)
	{
		if (fatal < 0)
			break;
		json_t *bad = NULL;
		int64_t id;
		if (!set_resolve_id(call, key, ops->prefix, &id))
			bad = set_error("notFound", NULL, NULL);
		else if ((fatal = ops->update(ctx, call, args, id, v, &bad)) < 0)
			break;
		if (bad != NULL)
			json_object_set_new(not_updated, key, bad);
		else
			json_object_set_new(updated, key, json_null());
	}
	size_t i;
	json_array_foreach(destroy, i, v)
	{
		if (fatal < 0)
			break;
		json_t *bad = NULL;
		int64_t id = 0;
		if (!json_is_string(v))
			bad = set_error("invalidArguments", "an Id is a string", NULL);
		else if (!jmap_list_id(call, v, ops->prefix, &id))
			bad = set_error("notFound", NULL, NULL);
		else if ((fatal = ops->destroy(ctx, call, args, id, &bad)) < 0)
			break;
		if (bad == NULL) {
			json_array_append_new(destroyed, jmap_prefixed(ops->prefix, id));
			continue;
		}
		/* Every entry is answered (RFC 8620 5.3), also one that is no
		 * string. */
		char *key_text = jmap_destroy_key(v);
		if (key_text == NULL) {
			json_decref(bad);
			fatal = -1;
			break;
		}
		json_object_set_new(not_destroyed, key_text, bad);
		free(key_text);
	}
	json_t *resp = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "created",
	                         set_or_null(created, ops->empty_as_null), "notCreated",
	                         set_or_null(not_created, ops->empty_as_null), "updated",
	                         set_or_null(updated, ops->empty_as_null), "notUpdated",
	                         set_or_null(not_updated, ops->empty_as_null), "destroyed",
	                         set_or_null(destroyed, ops->empty_as_null), "notDestroyed",
	                         set_or_null(not_destroyed, ops->empty_as_null));
	if (fatal < 0 || ops->state(ctx, new_state, sizeof(new_state)) < 0 ||
	    store_commit(ctx->store, &err) < 0) {
		store_rollback(ctx->store);
		json_decref(resp);
		*error_type_r = "serverFail";
		*description_r = "the store failed; nothing was changed";
		return -1;
	}
	snprintf(ctx->state, sizeof(ctx->state), "%llu",
	         (unsigned long long)store_modseq(ctx->store));
	json_object_set_new(resp, "accountId", json_string(ctx->account_id));
	json_object_set_new(resp, "oldState", json_string(old_state));
	json_object_set_new(resp, "newState", json_string(new_state));
	return jmap_call_respond(call, ops->name, resp, &err);
}

char *jmap_mailbox_display(const char *wire)
{
	const char *err;
	struct buf b;
	buf_init(&b, 4 * 4096);
	char *r = imap_utf7_decode(wire, &b, &err) == 0 ? strdup(buf_str(&b)) : strdup(wire);
	buf_free(&b);
	return r;
}

char *jmap_mailbox_wire(const char *utf8)
{
	const char *err;
	struct buf b;
	buf_init(&b, 8 * 4096);
	char *r = imap_utf7_encode(utf8, &b, &err) == 0 ? strdup(buf_str(&b)) : NULL;
	buf_free(&b);
	return r;
}
