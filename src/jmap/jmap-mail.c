/* RFC 8621 read methods over the hosted store. */
#include "jmap-mail.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../mime/mime.h"

#define PARSE_MAX_BYTES (8u * 1024 * 1024) /* larger messages: headers and start only */

static bool parse_prefixed_id(const char *id, char prefix, int64_t *id_r)
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

bool jmap_mail_blob_id(const char *id, int64_t *blob_id_r)
{
	return parse_prefixed_id(id, 'B', blob_id_r);
}

static json_t *prefixed(char prefix, int64_t id)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%c%lld", prefix, (long long)id);
	return json_string(buf);
}

static json_t *utc_date(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;
	if (gmtime_r(&tt, &tm) == NULL)
		return json_null();
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* Check accountId: 0 ok, -1 with the error type set. */
static int check_account(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r)
{
	const char *acct = json_string_value(json_object_get(args, "accountId"));
	if (acct == NULL) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	if (strcmp(acct, ctx->account_id) != 0) {
		*error_type_r = "accountNotFound";
		return -1;
	}
	return 0;
}

static const char *role_lower(const char *role)
{
	static const char *const roles[][2] = {
		{"Inbox", "inbox"}, {"Sent", "sent"},   {"Drafts", "drafts"},
		{"Trash", "trash"}, {"Junk", "junk"},   {"Archive", "archive"},
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
					parent = prefixed('M', all[i].id);
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
	json_t *rights = json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}", "mayReadItems", 1,
				   "mayAddItems", 0, "mayRemoveItems", 0, "maySetSeen", 0,
				   "maySetKeywords", 0, "mayCreateChild", 0, "mayRename", 0,
				   "mayDelete", 0, "maySubmit", 0);
	return json_pack("{s:o,s:s,s:o,s:o,s:i,s:I,s:I,s:I,s:I,s:o,s:b}", "id", prefixed('M', b->id),
			 "name", name, "parentId", parent, "role",
			 role != NULL ? json_string(role) : json_null(), "sortOrder",
			 role != NULL && strcmp(role, "inbox") == 0 ? 0 : 10, "totalEmails",
			 (json_int_t)total, "unreadEmails", (json_int_t)unread, "totalThreads",
			 (json_int_t)total, "unreadThreads", (json_int_t)unread, "myRights", rights,
			 "isSubscribed", 1);
}

static int mailbox_get(void *context, struct jmap_call *call, json_t *args,
		       const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids = json_object_get(args, "ids");
	if (ids != NULL && !json_is_null(ids) &&
	    (!json_is_array(ids) || json_array_size(ids) > JMAP_MAIL_MAX_OBJECTS_IN_GET)) {
		*error_type_r = json_is_array(ids) ? "requestTooLarge" : "invalidArguments";
		return -1;
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
	if (ids == NULL || json_is_null(ids)) {
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, mailbox_json(&boxes[i], boxes, n, counts, ncounts));
	} else {
		size_t idx;
		json_t *v;
		json_array_foreach(ids, idx, v)
		{
			const char *id;
			int64_t row;
			bool found = false;
			if (jmap_call_resolve_id(call, json_string_value(v), &id, &err) == 0 &&
			    parse_prefixed_id(id, 'M', &row)) {
				for (size_t i = 0; i < n; i++) {
					if (boxes[i].id == row) {
						json_array_append_new(
							list, mailbox_json(&boxes[i], boxes, n, counts, ncounts));
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
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state",
				 ctx->state, "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Mailbox/get", resp, &err);
}

static int email_query(void *context, struct jmap_call *call, json_t *args,
		       const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (check_account(ctx, args, error_type_r) < 0)
		return -1;
	int64_t mailbox = 0;
	json_t *filter = json_object_get(args, "filter");
	if (filter != NULL && !json_is_null(filter)) {
		const char *key;
		json_t *v;
		if (!json_is_object(filter)) {
			*error_type_r = "invalidArguments";
			return -1;
		}
		json_object_foreach(filter, key, v)
		{
			const char *id;
			if (strcmp(key, "inMailbox") != 0) {
				*error_type_r = "unsupportedFilter";
				*description_r = "only inMailbox is supported yet";
				return -1;
			}
			if (jmap_call_resolve_id(call, json_string_value(v), &id, &err) < 0 ||
			    !parse_prefixed_id(id, 'M', &mailbox)) {
				*error_type_r = "invalidArguments";
				*description_r = "inMailbox is not a mailbox id";
				return -1;
			}
		}
	}
	bool newest_first = true;
	json_t *sort = json_object_get(args, "sort");
	if (sort != NULL && !json_is_null(sort)) {
		json_t *c = json_array_get(sort, 0);
		const char *prop = json_string_value(json_object_get(c, "property"));
		if (!json_is_array(sort) || json_array_size(sort) > 1 || prop == NULL) {
			*error_type_r = json_is_array(sort) ? "unsupportedSort" : "invalidArguments";
			return -1;
		}
		if (strcmp(prop, "receivedAt") != 0) {
			*error_type_r = "unsupportedSort";
			*description_r = "only receivedAt is supported yet";
			return -1;
		}
		/* isAscending defaults to true (RFC 8620 5.5). */
		newest_first = json_is_false(json_object_get(c, "isAscending"));
	}
	json_int_t position = 0, limit = JMAP_MAIL_MAX_QUERY_LIMIT;
	json_t *p = json_object_get(args, "position"), *l = json_object_get(args, "limit");
	if ((p != NULL && !json_is_null(p) && (!json_is_integer(p) || json_integer_value(p) < 0)) ||
	    (l != NULL && !json_is_null(l) && (!json_is_integer(l) || json_integer_value(l) < 0)) ||
	    json_object_get(args, "anchor") != NULL) {
		*error_type_r = "invalidArguments";
		*description_r = json_object_get(args, "anchor") != NULL
					 ? "anchor is not supported yet"
					 : "position and limit are non-negative integers";
		return -1;
	}
	if (p != NULL && json_is_integer(p))
		position = json_integer_value(p);
	if (l != NULL && json_is_integer(l) && json_integer_value(l) < limit)
		limit = json_integer_value(l);
	int64_t *rows = NULL;
	size_t n = 0;
	uint64_t total = 0;
	bool want_total = json_is_true(json_object_get(args, "calculateTotal"));
	if (store_email_query(ctx->store, mailbox, newest_first, (uint64_t)position,
			      (uint64_t)limit, &rows, &n, want_total ? &total : NULL, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *ids = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(ids, prefixed('E', rows[i]));
	free(rows);
	json_t *resp = json_pack("{s:s,s:s,s:b,s:I,s:o,s:I}", "accountId", ctx->account_id,
				 "queryState", ctx->state, "canCalculateChanges", 0, "position",
				 position, "ids", ids, "limit", limit);
	if (want_total)
		json_object_set_new(resp, "total", json_integer((json_int_t)total));
	return jmap_call_respond(call, "Email/query", resp, &err);
}

static json_t *addresses_json(const struct mime_address *a, size_t n)
{
	if (n == 0)
		return json_null();
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, json_pack("{s:o,s:s}", "name",
						     a[i].name != NULL ? json_string(a[i].name)
								       : json_null(),
						     "email", a[i].email));
	return arr;
}

static json_t *keywords_json(unsigned flags, const char *keywords)
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
	snprintf(kw, sizeof(kw), "%s", keywords);
	char *save = NULL;
	for (char *t = strtok_r(kw, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		for (char *c = t; *c != '\0'; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a'); /* JMAP keywords are lower case */
		json_object_set_new(k, t, json_true());
	}
	return k;
}

static json_t *message_ids(const char *header)
{
	if (header == NULL)
		return json_null();
	json_t *arr = json_array();
	for (const char *p = header; (p = strchr(p, '<')) != NULL;) {
		const char *end = strchr(p, '>');
		if (end == NULL)
			break;
		json_array_append_new(arr, json_stringn(p + 1, (size_t)(end - p - 1)));
		p = end + 1;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return json_null();
	}
	return arr;
}

static json_t *email_json(struct jmap_mail_ctx *ctx, const struct store_email *e)
{
	const char *err;
	size_t len = e->size < PARSE_MAX_BYTES ? (size_t)e->size : PARSE_MAX_BYTES;
	char *data = malloc(len + 1);
	struct mime_summary s;
	bool parsed = data != NULL &&
		      store_blob_read(ctx->store, e->blob_id, 0, data, len, &err) == 0 &&
		      mime_summarize(data, len, &s) == 0;
	free(data);
	json_t *mailboxes = json_object();
	char mid[32];
	snprintf(mid, sizeof(mid), "M%lld", (long long)e->mailbox_id);
	json_object_set_new(mailboxes, mid, json_true());
	json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:I,s:o}", "id", prefixed('E', e->id), "blobId",
			      prefixed('B', e->blob_id), "threadId", prefixed('T', e->id),
			      "mailboxIds", mailboxes, "keywords",
			      keywords_json(e->flags, e->keywords), "size", (json_int_t)e->size,
			      "receivedAt", utc_date(e->internaldate));
	if (parsed) {
		json_object_set_new(o, "subject",
				    s.subject != NULL ? json_string(s.subject) : json_null());
		json_object_set_new(o, "messageId",
				    s.message_id != NULL ? json_pack("[s]", s.message_id)
							 : json_null());
		json_object_set_new(o, "inReplyTo", message_ids(s.in_reply_to));
		json_object_set_new(o, "references", message_ids(s.references));
		json_object_set_new(o, "from", addresses_json(s.from, s.n_from));
		json_object_set_new(o, "to", addresses_json(s.to, s.n_to));
		json_object_set_new(o, "cc", addresses_json(s.cc, s.n_cc));
		json_object_set_new(o, "sentAt", s.sent_at != 0 ? utc_date(s.sent_at) : json_null());
		json_object_set_new(o, "preview", json_string(s.preview));
		json_object_set_new(o, "hasAttachment", json_boolean(s.has_attachment));
		mime_summary_free(&s);
	}
	return o;
}

/* Keep only the requested properties (id always). */
static void filter_properties(json_t *o, json_t *properties)
{
	if (properties == NULL || !json_is_array(properties))
		return;
	const char *key;
	json_t *v, *tmp;
	json_object_foreach_safe(o, tmp, key, v)
	{
		bool keep = strcmp(key, "id") == 0;
		size_t i;
		json_t *p;
		json_array_foreach(properties, i, p) keep |= json_is_string(p) &&
							   strcmp(json_string_value(p), key) == 0;
		if (!keep)
			json_object_del(o, key);
	}
}

static int email_get(void *context, struct jmap_call *call, json_t *args,
		     const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	if (check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids = json_object_get(args, "ids");
	if (!json_is_array(ids)) {
		*error_type_r = json_is_null(ids) || ids == NULL ? "requestTooLarge" : "invalidArguments";
		*description_r = "ids is required (fetching every email at once is not allowed)";
		return -1;
	}
	if (json_array_size(ids) > JMAP_MAIL_MAX_OBJECTS_IN_GET) {
		*error_type_r = "requestTooLarge";
		return -1;
	}
	json_t *properties = json_object_get(args, "properties");
	json_t *list = json_array(), *not_found = json_array();
	size_t idx;
	json_t *v;
	json_array_foreach(ids, idx, v)
	{
		const char *id;
		int64_t row;
		struct store_email e;
		if (jmap_call_resolve_id(call, json_string_value(v), &id, &err) == 0 &&
		    parse_prefixed_id(id, 'E', &row) && store_email_get(ctx->store, row, &e, &err) == 1) {
			json_t *o = email_json(ctx, &e);
			filter_properties(o, properties);
			json_array_append_new(list, o);
		} else {
			json_array_append(not_found, v);
		}
	}
	json_t *resp = json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id, "state",
				 ctx->state, "list", list, "notFound", not_found);
	return jmap_call_respond(call, "Email/get", resp, &err);
}

static json_t *id_list(char prefix, const int64_t *ids, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, prefixed(prefix, ids[i]));
	return arr;
}

#define JMAP_MAIL_MAX_CHANGES 5000

/* Mailbox/changes and Email/changes (RFC 8620 5.2) from the change counter. */
static int changes(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args,
		   enum store_changes_kind kind, const char **error_type_r,
		   const char **description_r)
{
	const char *err;
	if (check_account(ctx, args, error_type_r) < 0)
		return -1;
	const char *since_text = json_string_value(json_object_get(args, "sinceState"));
	json_t *max = json_object_get(args, "maxChanges");
	if (since_text == NULL ||
	    (max != NULL && !json_is_null(max) && (!json_is_integer(max) || json_integer_value(max) < 1))) {
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
	if (store_changes(ctx->store, kind, since, limit, &ch, &err) < 0) {
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
	return jmap_call_respond(call, kind == STORE_CHANGES_MAILBOX ? "Mailbox/changes"
								      : "Email/changes",
				 resp, &err);
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
	    jmap_registry_add_method(registry, "Email/query", JMAP_CAPABILITY_MAIL, email_query,
				     error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/get", JMAP_CAPABILITY_MAIL, email_get,
				     error_r) < 0 ||
	    jmap_registry_add_method(registry, "Mailbox/changes", JMAP_CAPABILITY_MAIL,
				     mailbox_changes, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/changes", JMAP_CAPABILITY_MAIL, email_changes,
				     error_r) < 0 ||
	    jmap_search_register(registry, error_r) < 0)
		return -1;
	return 0;
}
