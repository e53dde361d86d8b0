/* Helpers the JMAP method files share (see jmap-private.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../hub/hub.h"
#include "../store/store-accounts.h"
#include "../store/store.h"
#include "jmap-mail.h"
#include "jmap-private.h"

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

int jmap_changes_args(json_t *args, const char *since_name, size_t server_max,
                      const char **since_r, size_t *limit_r, const char **error_type_r,
                      const char **description_r)
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
