/* RFC 8621 read methods over the hosted store. */
#include "jmap-mail.h"
#include "jmap-email.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../mime/mime.h"
#include "jmap-query.h"
#include "jmap-set-private.h"
#include "jmap-private.h"

bool jmap_mail_blob_id(const char *id, int64_t *blob_id_r)
{
	return jmap_parse_id(id, 'B', blob_id_r);
}

static const char *role_lower(const char *role)
{
	static const char *const roles[][2] = {
	    {"Inbox", "inbox"}, {"Sent", "sent"},       {"Drafts", "drafts"},
	    {"Trash", "trash"}, {"Junk", "junk"},       {"Archive", "archive"},
	    {"All", "all"},     {"Flagged", "flagged"},
	};
	for (size_t i = 0; role != NULL && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(role, roles[i][0]) == 0)
			return roles[i][1];
	return NULL;
}

static json_t *mailbox_json(const struct store_mailbox *b, const struct store_mailbox *all,
                            size_t n, const struct store_mailbox_counts *counts, size_t ncounts)
{
	const char *name = b->name;
	json_t *parent = json_null();
	if (b->delim != 0) {
		const char *last = strrchr(b->name, b->delim);
		if (last != NULL && last[1] != '\0') {
			size_t plen = (size_t)(last - b->name);
			for (size_t i = 0; i < n; i++) {
				if (strlen(all[i].name) == plen &&
				    strncmp(all[i].name, b->name, plen) == 0) {
					json_decref(parent);
					parent = jmap_prefixed('M', all[i].id);
					name = last + 1;
				}
			}
		}
	}
	uint32_t total = 0, unread = 0;
	for (size_t i = 0; i < ncounts; i++) {
		if (counts[i].mailbox_id == b->id) {
			total = counts[i].total;
			unread = counts[i].unread;
		}
	}
	const char *role = role_lower(b->role);
	json_t *rights =
	    json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}", "mayReadItems", 1, "mayAddItems", 0,
	              "mayRemoveItems", 0, "maySetSeen", 0, "maySetKeywords", 0, "mayCreateChild",
	              0, "mayRename", 0, "mayDelete", 0, "maySubmit", 0);
	return json_pack("{s:o,s:s,s:o,s:o,s:i,s:I,s:I,s:I,s:I,s:o,s:b}", "id",
	                 jmap_prefixed('M', b->id), "name", name, "parentId", parent, "role",
	                 role != NULL ? json_string(role) : json_null(), "sortOrder",
	                 role != NULL && strcmp(role, "inbox") == 0 ? 0 : 10, "totalEmails",
	                 (json_int_t)total, "unreadEmails", (json_int_t)unread, "totalThreads",
	                 (json_int_t)total, "unreadThreads", (json_int_t)unread, "myRights", rights,
	                 "isSubscribed", 1);
}

/* The properties of a Mailbox object (RFC 8621 2). */
static const char *const mailbox_props[] = {
    "id",           "name",         "parentId",      "role",     "sortOrder",   "totalEmails",
    "unreadEmails", "totalThreads", "unreadThreads", "myRights", "isSubscribed"};

static int mailbox_get(void *context, struct jmap_call *call, json_t *args,
                       const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids, *properties;
	if (jmap_arg_strings(args, "ids", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids, error_type_r,
	                     description_r) < 0 ||
	    jmap_arg_strings(args, "properties", 100, &properties, error_type_r, description_r) < 0)
		return -1;
	size_t idx;
	json_t *v;
	json_array_foreach(properties, idx, v)
	{
		bool known = false;
		for (size_t i = 0; i < sizeof(mailbox_props) / sizeof(mailbox_props[0]); i++)
			known |= strcmp(json_string_value(v), mailbox_props[i]) == 0;
		if (!known) {
			*error_type_r = "invalidArguments";
			*description_r = "properties: unknown Mailbox property";
			return -1;
		}
	}
	struct store_mailbox *boxes = NULL;
	struct store_mailbox_counts *counts = NULL;
	size_t n = 0, ncounts = 0;
	if (store_mailboxes_all(ctx->store, &boxes, &n, &err) < 0 ||
	    store_mailbox_counts(ctx->store, &counts, &ncounts, &err) < 0) {
		store_mailboxes_free(&boxes, n);
		*error_type_r = "serverFail";
		*description_r = "cannot read mailboxes";
		return -1;
	}
	json_t *list = json_array(), *not_found = json_array();
	if (ids == NULL) {
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list,
			                      mailbox_json(&boxes[i], boxes, n, counts, ncounts));
	} else {
		json_array_foreach(ids, idx, v)
		{
			int64_t row;
			bool found = false;
			if (jmap_list_id(call, v, 'M', &row)) {
				for (size_t i = 0; i < n; i++) {
					if (boxes[i].id == row) {
						json_array_append_new(
						    list, mailbox_json(&boxes[i], boxes, n, counts,
						                       ncounts));
						found = true;
					}
				}
			}
			if (!found)
				json_array_append(not_found, v);
		}
	}
	store_mailboxes_free(&boxes, n);
	free(counts);
	size_t at;
	json_t *box;
	json_array_foreach(list, at, box)
	{
		jmap_mailbox_decorate(ctx, box);
		jmap_keep_properties(box, properties);
	}
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state",
	                         ctx->state, "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Mailbox/get", resp, &err);
}

static json_t *id_list(char prefix, const int64_t *ids, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, jmap_prefixed(prefix, ids[i]));
	return arr;
}

#define JMAP_MAIL_MAX_CHANGES 5000

/* Mailbox/changes and Email/changes (RFC 8620 5.2) from the change counter. */
static int changes(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                   enum store_changes_kind kind, const char **error_type_r,
                   const char **description_r)
{
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
	if (errno != 0 || *end != '\0' || since_text[0] == '\0' || since_text[0] == '-' ||
	    since > current) {
		*error_type_r = "cannotCalculateChanges";
		*description_r = "unknown state";
		return -1;
	}
	size_t limit = JMAP_MAIL_MAX_CHANGES;
	if (max != NULL && json_is_integer(max) && (size_t)json_integer_value(max) < limit)
		limit = (size_t)json_integer_value(max);
	struct store_changes ch;
	if (store_changes_account(ctx->store, ctx->store_account_id, kind, since, limit, &ch, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	char prefix = kind == STORE_CHANGES_MAILBOX ? 'M' : 'E';
	char new_state[32];
	snprintf(new_state, sizeof(new_state), "%llu", (unsigned long long)ch.new_state);
	json_t *resp = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:o}", "accountId", ctx->account_id,
	                         "oldState", since_text, "newState", new_state, "hasMoreChanges",
	                         ch.has_more, "created", id_list(prefix, ch.created, ch.n_created),
	                         "updated", id_list(prefix, ch.updated, ch.n_updated), "destroyed",
	                         id_list(prefix, ch.destroyed, ch.n_destroyed));
	if (kind == STORE_CHANGES_MAILBOX)
		json_object_set_new(resp, "updatedProperties", json_null());
	store_changes_free(&ch);
	return jmap_call_respond(
	    call, kind == STORE_CHANGES_MAILBOX ? "Mailbox/changes" : "Email/changes", resp, &err);
}

static int mailbox_changes(void *context, struct jmap_call *call, json_t *args,
                           const char **error_type_r, const char **description_r)
{
	return changes(context, call, args, STORE_CHANGES_MAILBOX, error_type_r, description_r);
}

static int email_changes(void *context, struct jmap_call *call, json_t *args,
                         const char **error_type_r, const char **description_r)
{
	return changes(context, call, args, STORE_CHANGES_EMAIL, error_type_r, description_r);
}

int jmap_mail_register(struct jmap_registry *registry, const char **error_r)
{
	mime_init();
	if (jmap_registry_add_capability(registry, JMAP_CAPABILITY_MAIL, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Mailbox/get", JMAP_CAPABILITY_MAIL, mailbox_get,
	                             error_r) < 0 ||
	    jmap_email_register(registry, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Mailbox/changes", JMAP_CAPABILITY_MAIL,
	                             mailbox_changes, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/changes", JMAP_CAPABILITY_MAIL, email_changes,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/set", JMAP_CAPABILITY_MAIL, jmap_email_set,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/import", JMAP_CAPABILITY_MAIL,
	                             jmap_email_import, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Mailbox/set", JMAP_CAPABILITY_MAIL,
	                             jmap_mailbox_set, error_r) < 0 ||
	    jmap_identity_register(registry, error_r) < 0 ||
	    jmap_query_register(registry, error_r) < 0 ||
	    jmap_thread_register(registry, error_r) < 0 ||
	    jmap_search_register(registry, error_r) < 0)
		return -1;
	return 0;
}
