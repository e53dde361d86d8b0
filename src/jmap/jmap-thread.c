/* Thread/get and Thread/changes (RFC 8621 3). Threads are formed in the
 * store (store-envelope.c); a thread's id is "T<id>". */
#include "jmap-query.h"
#include "jmap-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/store-envelope.h"

static int thread_get(void *context, struct jmap_call *call, json_t *args,
                      const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids;
	int r = jmap_arg_strings(args, "ids", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids, error_type_r,
	                         description_r);
	if (r <= 0) {
		if (r == 0) {
			*error_type_r = "requestTooLarge";
			*description_r =
			    "ids is required (fetching every thread at once is not allowed)";
		}
		return -1;
	}
	json_t *list = json_array(), *not_found = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v)
	{
		int64_t thread;
		int64_t *emails = NULL;
		size_t n = 0;
		if (!jmap_list_id(call, v, 'T', &thread)) {
			json_array_append(not_found, v);
			continue;
		}
		if (store_thread_emails(ctx->store, ctx->store_account_id, thread, &emails, &n,
		                        &err) < 0) {
			json_decref(list);
			json_decref(not_found);
			*error_type_r = "serverFail";
			return -1;
		}
		if (n == 0) {
			json_array_append(not_found, v);
			free(emails);
			continue;
		}
		json_t *e = json_array();
		for (size_t k = 0; k < n; k++)
			json_array_append_new(e, jmap_prefixed('E', emails[k]));
		free(emails);
		json_array_append_new(
		    list, json_pack("{s:o,s:o}", "id", jmap_prefixed('T', thread), "emailIds", e));
	}
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state",
	                         ctx->state, "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Thread/get", resp, &err);
}

static json_t *id_list(const int64_t *ids, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, jmap_prefixed('T', ids[i]));
	return arr;
}

static int thread_changes(void *context, struct jmap_call *call, json_t *args,
                          const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	const char *since_text = json_string_value(json_object_get(args, "sinceState"));
	json_t *max = json_object_get(args, "maxChanges");
	if (since_text == NULL || (max != NULL && !json_is_null(max) &&
	                           (!json_is_integer(max) || json_integer_value(max) < 1))) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	char *end;
	errno = 0;
	unsigned long long since = strtoull(since_text, &end, 10);
	unsigned long long current = strtoull(ctx->state, NULL, 10);
	if (errno != 0 || *end != '\0' || since_text[0] < '0' || since_text[0] > '9' ||
	    since > current) {
		*error_type_r = "cannotCalculateChanges";
		*description_r = "unknown state";
		return -1;
	}
	size_t limit = JMAP_QUERY_MAX_CHANGES;
	if (max != NULL && json_is_integer(max) && (size_t)json_integer_value(max) < limit)
		limit = (size_t)json_integer_value(max);
	struct store_changes ch;
	if (store_changes_account(ctx->store, ctx->store_account_id, STORE_CHANGES_THREAD, since,
	                          limit, &ch, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	char new_state[32];
	snprintf(new_state, sizeof(new_state), "%llu", (unsigned long long)ch.new_state);
	json_t *resp = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:o}", "accountId", ctx->account_id,
	                         "oldState", since_text, "newState", new_state, "hasMoreChanges",
	                         ch.has_more, "created", id_list(ch.created, ch.n_created),
	                         "updated", id_list(ch.updated, ch.n_updated), "destroyed",
	                         id_list(ch.destroyed, ch.n_destroyed));
	store_changes_free(&ch);
	return jmap_call_respond(call, "Thread/changes", resp, &err);
}

int jmap_thread_register(struct jmap_registry *registry, const char **error_r)
{
	if (jmap_registry_add_method(registry, "Thread/get", JMAP_CAPABILITY_MAIL, thread_get,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Thread/changes", JMAP_CAPABILITY_MAIL,
	                             thread_changes, error_r) < 0)
		return -1;
	return 0;
}
