/* RFC 8621 read methods over the hosted store. */
#include "jmap-mail.h"
#include "jmap-email.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
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

/* The nearest mailbox of the list that is an ancestor of boxes[at] by the
 * server's hierarchy (name split by the delimiter), or -1; *rest_r is what
 * of the name lies below it. */
static ssize_t mailbox_ancestor(const struct store_mailbox *boxes, size_t n, size_t at,
                                const char **rest_r)
{
	const struct store_mailbox *b = &boxes[at];
	*rest_r = b->name;
	if (b->delim == 0)
		return -1;
	/* Longest prefix first: the direct parent when the store has it. */
	for (const char *cut = strrchr(b->name, b->delim); cut != NULL;) {
		size_t plen = (size_t)(cut - b->name);
		for (size_t i = 0; i < n && plen > 0 && cut[1] != '\0'; i++) {
			if (i != at && strlen(boxes[i].name) == plen &&
			    strncmp(boxes[i].name, b->name, plen) == 0) {
				*rest_r = cut + 1;
				return (ssize_t)i;
			}
		}
		const char *prev = NULL;
		for (const char *c = b->name; c < cut; c++)
			if (*c == b->delim)
				prev = c;
		cut = prev;
	}
	return -1;
}

int jmap_mailbox_views(struct jmap_mail_ctx *ctx, struct store_mailbox **boxes_r, size_t *n_r,
                       struct jmap_mailbox_view **views_r, const char **error_r)
{
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	if (store_mailboxes(ctx->store, ctx->store_account_id, &boxes, &n, error_r) < 0)
		return -1;
	struct jmap_mailbox_view *v = calloc(n + 1, sizeof(*v));
	if (v == NULL) {
		store_mailboxes_free(&boxes, n);
		*error_r = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *rest;
		ssize_t up = mailbox_ancestor(boxes, n, i, &rest);
		v[i].box = &boxes[i];
		v[i].parent_id = up >= 0 ? boxes[up].id : 0;
		v[i].name = rest;
		v[i].noselect = boxes[i].noselect;
	}
	/* Roles are unique in an account (RFC 8621 2): the inbox is the one
	 * named INBOX when there is one, any other role goes to the first
	 * mailbox by name that has it; mailboxes that cannot hold mail have
	 * none. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			const char *role = role_lower(boxes[i].role);
			if (role == NULL && strcasecmp(boxes[i].name, "INBOX") == 0)
				role = "inbox";
			bool named_inbox = strcasecmp(boxes[i].name, "INBOX") == 0;
			if (role == NULL || v[i].noselect || v[i].role != NULL ||
			    (pass == 0 && !(strcmp(role, "inbox") == 0 && named_inbox)))
				continue;
			bool taken = false;
			for (size_t k = 0; k < n && !taken; k++)
				taken = v[k].role != NULL && strcmp(v[k].role, role) == 0;
			if (!taken)
				v[i].role = role;
		}
	}
	*boxes_r = boxes;
	*n_r = n;
	*views_r = v;
	return 0;
}

static json_t *mailbox_json(const struct jmap_mailbox_view *v,
                            const struct store_mailbox_counts *counts, size_t ncounts)
{
	const struct store_mailbox *b = v->box;
	/* RFC 8621 section 2's counts, kept by the store (store-counts.c). */
	struct store_mailbox_counts c = {0};
	for (size_t i = 0; i < ncounts; i++) {
		if (counts[i].mailbox_id == b->id)
			c = counts[i];
	}
	const char *role = v->role;
	char *name = jmap_mailbox_display(v->name);
	if (name == NULL)
		return NULL;
	json_t *r = json_pack(
	    "{s:o,s:s,s:o,s:o,s:i,s:I,s:I,s:I,s:I,s:b}", "id", jmap_prefixed('M', b->id), "name",
	    name, "parentId", v->parent_id > 0 ? jmap_prefixed('M', v->parent_id) : json_null(),
	    "role", role != NULL ? json_string(role) : json_null(), "sortOrder",
	    role != NULL && strcmp(role, "inbox") == 0 ? 0 : 10, "totalEmails", (json_int_t)c.total,
	    "unreadEmails", (json_int_t)c.unread, "totalThreads", (json_int_t)c.threads,
	    "unreadThreads", (json_int_t)c.unread_threads, "isSubscribed", 1);
	free(name);
	return r;
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
	struct jmap_mailbox_view *views = NULL;
	struct store_mailbox_counts *counts = NULL;
	size_t n = 0, ncounts = 0;
	if (jmap_mailbox_views(ctx, &boxes, &n, &views, &err) < 0) {
		*error_type_r = "serverFail";
		*description_r = "cannot read mailboxes";
		return -1;
	}
	if (store_mailbox_counts(ctx->store, &counts, &ncounts, &err) < 0) {
		jmap_mailbox_views_free(&boxes, n, &views);
		*error_type_r = "serverFail";
		*description_r = "cannot read mailboxes";
		return -1;
	}
	json_t *list = json_array(), *not_found = json_array();
	if (ids == NULL) {
		for (size_t i = 0; i < n; i++) {
			json_t *box = mailbox_json(&views[i], counts, ncounts);
			jmap_mailbox_decorate(ctx, box, views[i].noselect);
			json_array_append_new(list, box);
		}
	} else {
		json_array_foreach(ids, idx, v)
		{
			int64_t row;
			bool found = false;
			if (jmap_list_id(call, v, 'M', &row)) {
				for (size_t i = 0; i < n && !found; i++) {
					if (boxes[i].id == row) {
						json_t *box =
						    mailbox_json(&views[i], counts, ncounts);
						jmap_mailbox_decorate(ctx, box, views[i].noselect);
						json_array_append_new(list, box);
						found = true;
					}
				}
			}
			if (!found)
				json_array_append(not_found, v);
		}
	}
	jmap_mailbox_views_free(&boxes, n, &views);
	free(counts);
	size_t at;
	json_t *box;
	json_array_foreach(list, at, box) jmap_keep_properties(box, properties);
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

/* Mailbox/changes and Email/changes (RFC 8620 5.2) from the change counter,
 * of the call's account. */
static int changes(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
                   enum store_changes_kind kind, const char **error_type_r,
                   const char **description_r)
{
	const char *err, *since_text;
	size_t limit;
	uint64_t since;
	if (jmap_check_account(ctx, args, error_type_r) < 0 ||
	    jmap_changes_args(args, "sinceState", JMAP_MAIL_MAX_CHANGES, &since_text, &limit,
	                      error_type_r, description_r) < 0)
		return -1;
	if (!jmap_parse_state(since_text, strtoull(ctx->state, NULL, 10), &since)) {
		*error_type_r = "cannotCalculateChanges";
		*description_r = "unknown state";
		return -1;
	}
	struct store_changes ch;
	if (store_changes_account(ctx->store, ctx->store_account_id, kind, since, limit, &ch,
	                          &err) < 0) {
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

void jmap_mailbox_views_free(struct store_mailbox **boxes, size_t n,
                             struct jmap_mailbox_view **views)
{
	store_mailboxes_free(boxes, n);
	free(*views);
	*views = NULL;
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
	    jmap_copy_register(registry, error_r) < 0 ||
	    jmap_query_register(registry, error_r) < 0 ||
	    jmap_thread_register(registry, error_r) < 0 ||
	    jmap_search_register(registry, error_r) < 0)
		return -1;
	return 0;
}
