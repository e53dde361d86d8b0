/*
 * Mailbox/set (RFC 8621 2.5) over the hosted store, and what Mailbox/get
 * shows of the device-only properties.
 *
 * A mailbox belongs to the JMAP account of the call (an external
 * account, or the hub's own "mailkeep" account); its full server name is
 * built from its parent's with that account's hierarchy delimiter. Only
 * the account's own mailboxes are seen: a parentId of another account is
 * "no such parent". A rename renames the
 * children along. Renaming or destroying the inbox and role changes are
 * refused. sortOrder and isSubscribed are kept in the store for the
 * devices (not on the server). Everything is recorded as a pending local
 * change (store-local) for the two-way sync.
 */
#include <string.h>
#include <strings.h>

#include "jmap-set-private.h"

#define MAX_NAME 490 /* maxSizeMailboxName */

void jmap_mailbox_decorate(struct jmap_mail_ctx *ctx, json_t *mailbox, bool noselect)
{
	const char *err;
	int64_t id;
	int sort = -1;
	bool subscribed = true;
	if (!jmap_parse_id(json_string_value(json_object_get(mailbox, "id")), 'M', &id))
		return;
	if (store_local_mailbox_props(ctx->store, id, &sort, &subscribed, &err) == 1) {
		json_object_set_new(mailbox, "sortOrder", json_integer(sort));
		json_object_set_new(mailbox, "isSubscribed", json_boolean(subscribed));
	}
	bool inbox = json_is_string(json_object_get(mailbox, "role")) &&
	             strcmp(json_string_value(json_object_get(mailbox, "role")), "inbox") == 0;
	/* A mailbox the server lists as \Noselect (or only as a parent) holds
	 * no mail: nothing can be put into it or changed in it. */
	bool items = !noselect;
	json_object_set_new(mailbox, "myRights",
	                    json_pack("{s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b,s:b}", "mayReadItems", 1,
	                              "mayAddItems", items, "mayRemoveItems", items, "maySetSeen",
	                              items, "maySetKeywords", items, "mayCreateChild", 1,
	                              "mayRename", !inbox, "mayDelete", !inbox, "maySubmit", 0));
}

struct boxes {
	struct store_mailbox *all;
	size_t n;
	int64_t *account; /* per mailbox */
};

static void boxes_free(struct boxes *b)
{
	store_mailboxes_free(&b->all, b->n);
	free(b->account);
	memset(b, 0, sizeof(*b));
}

/* The mailboxes of the call's account: a Mailbox/set never sees or
 * touches another account's. */
static int boxes_load(struct jmap_mail_ctx *ctx, struct boxes *b)
{
	const char *err;
	memset(b, 0, sizeof(*b));
	if (store_mailboxes(ctx->store, ctx->store_account_id, &b->all, &b->n, &err) < 0)
		return -1;
	b->account = calloc(b->n + 1, sizeof(*b->account));
	if (b->account == NULL) {
		boxes_free(b);
		return -1;
	}
	for (size_t i = 0; i < b->n; i++)
		b->account[i] = ctx->store_account_id;
	return 0;
}

static struct store_mailbox *box_find(struct boxes *b, int64_t id, int64_t *account_r)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->all[i].id == id) {
			if (account_r != NULL)
				*account_r = b->account[i];
			return &b->all[i];
		}
	}
	return NULL;
}

static bool name_taken(struct boxes *b, int64_t account, const char *full, int64_t except)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->account[i] == account && b->all[i].id != except &&
		    strcmp(b->all[i].name, full) == 0)
			return true;
	return false;
}

static bool has_children(struct boxes *b, const struct store_mailbox *m, int64_t account)
{
	size_t len = strlen(m->name);
	for (size_t i = 0; i < b->n && m->delim != 0; i++)
		if (b->account[i] == account && strncmp(b->all[i].name, m->name, len) == 0 &&
		    b->all[i].name[len] == m->delim)
			return true;
	return false;
}

/* True when name is m's name or below it. */
static bool in_subtree(const struct store_mailbox *m, const char *name)
{
	size_t len = strlen(m->name);
	return strncmp(name, m->name, len) == 0 &&
	       (name[len] == '\0' || (m->delim != 0 && name[len] == m->delim));
}

/* Rename m to full and its descendants along (each recorded with its own
 * server name for the sync). 0 with *error_r possibly set, -1 store
 * failure. */
static int rename_subtree(struct jmap_mail_ctx *ctx, struct boxes *b, struct store_mailbox *m,
                          int64_t account, const char *full, json_t **error_r)
{
	const char *err;
	size_t old_len = strlen(m->name);
	char name[2048];
	/* First check every new name, then rename. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < b->n; i++) {
			struct store_mailbox *c = &b->all[i];
			if (b->account[i] != account || c == m || !in_subtree(m, c->name))
				continue;
			int n = snprintf(name, sizeof(name), "%s%s", full, c->name + old_len);
			if (pass == 0 && (n < 0 || (size_t)n >= sizeof(name) || n > 4 * MAX_NAME)) {
				*error_r =
				    set_error("invalidProperties",
				              "a child mailbox's name would be too long", "name");
				return 0;
			}
			if (pass == 0 && name_taken(b, account, name, c->id) &&
			    !in_subtree(m, name)) {
				*error_r = set_error("invalidProperties",
				                     "a child mailbox's new name exists", "name");
				return 0;
			}
			if (pass == 1 &&
			    store_local_mailbox_rename(ctx->store, c->id, name, &err) < 0)
				return -1;
		}
		if (pass == 0 && store_local_mailbox_rename(ctx->store, m->id, full, &err) < 0)
			return -1;
	}
	return 0;
}

/* A top-level mailbox goes to the call's account, with the delimiter its
 * server uses ('/' until the account has a mailbox that says). */
static void top_level_account(struct jmap_mail_ctx *ctx, struct boxes *b, int64_t *account_r,
                              char *delim_r)
{
	*account_r = ctx->store_account_id;
	*delim_r = '/';
	for (size_t i = 0; i < b->n; i++)
		if (b->all[i].delim != 0)
			*delim_r = b->all[i].delim;
}

/* Validate a name part; NULL when fine, else the reason. */
static const char *bad_name(json_t *v, char delim)
{
	const char *s = json_string_value(v);
	if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(v))
		return "name is a non-empty string";
	if (strlen(s) > MAX_NAME)
		return "name is too long";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "name has control characters";
	if (delim != 0 && strchr(s, delim) != NULL)
		return "name contains the account's hierarchy delimiter";
	return NULL;
}

/* full_name with the level as the server spells it. */
static json_t *full_name_spelled(struct jmap_mail_ctx *ctx, struct jmap_call *call, struct boxes *b,
                                 json_t *parent, json_t *name, const char *level,
                                 int64_t *account_r, char *delim_r, char *out, size_t size)
{
	const char *why;
	if (parent != NULL && !json_is_null(parent)) {
		int64_t pid;
		struct store_mailbox *p;
		if (!set_resolve_id(call, json_string_value(parent), 'M', &pid) ||
		    (p = box_find(b, pid, account_r)) == NULL)
			return set_error("invalidProperties", "no such parent mailbox", "parentId");
		*delim_r = p->delim != 0 ? p->delim : '/';
		if ((why = bad_name(name, *delim_r)) != NULL)
			return set_error("invalidProperties", why, "name");
		int n = snprintf(out, size, "%s%c%s", p->name, *delim_r, level);
		if (n < 0 || (size_t)n >= size)
			return set_error("invalidProperties", "the full name is too long", "name");
		return NULL;
	}
	top_level_account(ctx, b, account_r, delim_r);
	if ((why = bad_name(name, *delim_r)) != NULL)
		return set_error("invalidProperties", why, "name");
	if (strcasecmp(json_string_value(name), "INBOX") == 0)
		return set_error("invalidProperties", "INBOX exists already", "name");
	if (strlen(level) >= size)
		return set_error("invalidProperties", "the full name is too long", "name");
	snprintf(out, size, "%s", level);
	return NULL;
}

/* Full name, as the server spells it, from parent and name (a device's
 * UTF-8 name, or with wire set the level as the server already spells it);
 * fills *account_r and *delim_r. NULL when fine, else a SetError. */
static json_t *full_name(struct jmap_mail_ctx *ctx, struct jmap_call *call, struct boxes *b,
                         json_t *parent, json_t *name, bool wire, int64_t *account_r, char *delim_r,
                         char *out, size_t size)
{
	json_t *e = NULL;
	char *level = NULL;
	if (!wire && json_is_string(name) &&
	    (level = jmap_mailbox_wire(json_string_value(name))) == NULL)
		return set_error("invalidProperties", "name is not valid UTF-8", "name");
	e = full_name_spelled(ctx, call, b, parent, name,
	                      level != NULL ? level : json_string_value(name), account_r, delim_r,
	                      out, size);
	free(level);
	return e;
}

/* sortOrder and isSubscribed from an object; -1 keeps. NULL or a SetError. */
static json_t *props(json_t *obj, int *sort_r, int *subscribed_r)
{
	json_t *s = json_object_get(obj, "sortOrder"), *sub = json_object_get(obj, "isSubscribed");
	*sort_r = *subscribed_r = -1;
	if (s != NULL) {
		if (!json_is_integer(s) || json_integer_value(s) < 0 ||
		    json_integer_value(s) > 0x7fffffff)
			return set_error("invalidProperties", "sortOrder is an UnsignedInt",
			                 "sortOrder");
		*sort_r = (int)json_integer_value(s);
	}
	if (sub != NULL) {
		if (!json_is_boolean(sub))
			return set_error("invalidProperties", "isSubscribed is a boolean",
			                 "isSubscribed");
		*subscribed_r = json_is_true(sub);
	}
	return NULL;
}

/* Unknown properties and role changes (the role may be given unchanged:
 * current_role is the store's, e.g. "Inbox", or NULL). */
static json_t *unknown_property(json_t *obj, const char *const *allowed, const char *current_role)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		bool ok = false;
		for (size_t i = 0; allowed[i] != NULL && !ok; i++)
			ok = strcmp(key, allowed[i]) == 0;
		bool same_role = json_is_null(v)
		                     ? current_role == NULL
		                     : json_is_string(v) && current_role != NULL &&
		                           strcasecmp(json_string_value(v), current_role) == 0;
		if (ok && strcmp(key, "role") == 0 && !same_role)
			return set_error("invalidProperties",
			                 "roles come from the server; they cannot be set here",
			                 "role");
		if (!ok)
			return set_error("invalidProperties", "not a property one can set", key);
	}
	return NULL;
}

/* 0 with *created_r or *error_r; -1 store failure. */
static int mailbox_create(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *obj,
                          json_t **created_r, json_t **error_r)
{
	static const char *const allowed[] = {"name",      "parentId",     "role",
	                                      "sortOrder", "isSubscribed", NULL};
	const char *err;
	struct boxes b;
	char full[2048], delim;
	int64_t account, id;
	int sort, sub;
	if (!json_is_object(obj)) {
		*error_r = set_error("invalidProperties", "a Mailbox object", NULL);
		return 0;
	}
	if ((*error_r = unknown_property(obj, allowed, NULL)) != NULL ||
	    (*error_r = props(obj, &sort, &sub)) != NULL)
		return 0;
	if (boxes_load(ctx, &b) < 0)
		return -1;
	int ret = 0;
	if ((*error_r = full_name(ctx, call, &b, json_object_get(obj, "parentId"),
	                          json_object_get(obj, "name"), false, &account, &delim, full,
	                          sizeof(full))) != NULL) {
		if (strcmp(json_string_value(json_object_get(*error_r, "type")), "serverFail") ==
		    0) {
			json_decref(*error_r);
			*error_r = NULL;
			ret = -1;
		}
	} else if (name_taken(&b, account, full, 0)) {
		*error_r =
		    set_error("invalidProperties", "a mailbox with this name exists", "name");
	} else if (store_local_mailbox_create(ctx->store, account, full, delim, &id, &err) < 0 ||
	           ((sort >= 0 || sub >= 0) &&
	            store_local_mailbox_set_props(ctx->store, id, sort, sub, &err) < 0)) {
		ret = -1;
	} else {
		*created_r = json_pack(
		    "{s:o,s:n,s:i,s:i,s:i,s:i,s:i,s:b}", "id", jmap_prefixed('M', id), "role",
		    "sortOrder", sort >= 0 ? sort : 10, "totalEmails", 0, "unreadEmails", 0,
		    "totalThreads", 0, "unreadThreads", 0, "isSubscribed", sub != 0);
		jmap_mailbox_decorate(ctx, *created_r, false);
	}
	boxes_free(&b);
	return ret;
}

static int mailbox_update(struct jmap_mail_ctx *ctx, struct jmap_call *call, int64_t id,
                          json_t *patch, json_t **error_r)
{
	static const char *const allowed[] = {"name",      "parentId",     "role",
	                                      "sortOrder", "isSubscribed", NULL};
	const char *err;
	struct boxes b;
	int64_t account, new_account;
	int sort, sub, ret = 0;
	if (!json_is_object(patch)) {
		*error_r = set_error("invalidPatch", "a PatchObject", NULL);
		return 0;
	}
	if (boxes_load(ctx, &b) < 0)
		return -1;
	struct store_mailbox *m = box_find(&b, id, &account);
	if (m == NULL) {
		*error_r = set_error("notFound", NULL, NULL);
		goto out;
	}
	if ((*error_r = unknown_property(patch, allowed, m->role)) != NULL ||
	    (*error_r = props(patch, &sort, &sub)) != NULL)
		goto out;
	json_t *name = json_object_get(patch, "name"), *parent = json_object_get(patch, "parentId");
	if (name != NULL || parent != NULL) {
		/* The current name part and parent. */
		const char *last = m->delim != 0 ? strrchr(m->name, m->delim) : NULL;
		json_t *cur_name = json_string(last != NULL ? last + 1 : m->name);
		json_t *cur_parent = json_null();
		if (last != NULL) {
			for (size_t i = 0; i < b.n; i++)
				if (b.account[i] == account &&
				    strlen(b.all[i].name) == (size_t)(last - m->name) &&
				    strncmp(b.all[i].name, m->name, (size_t)(last - m->name)) ==
				        0) {
					json_decref(cur_parent);
					cur_parent = jmap_prefixed('M', b.all[i].id);
				}
		}
		char full[2048], delim;
		json_t *e = full_name(ctx, call, &b, parent != NULL ? parent : cur_parent,
		                      name != NULL ? name : cur_name, name == NULL, &new_account,
		                      &delim, full, sizeof(full));
		json_decref(cur_name);
		json_decref(cur_parent);
		if (e != NULL) {
			*error_r = e;
			goto out;
		}
		if (strcmp(full, m->name) != 0) {
			int64_t pid;
			if (new_account != account)
				*error_r = set_error("invalidProperties",
				                     "a mailbox stays in its account", "parentId");
			else if (m->role != NULL && strcmp(m->role, "Inbox") == 0)
				*error_r =
				    set_error("forbidden", "the inbox cannot be renamed", NULL);
			else if ((parent != NULL &&
			          set_resolve_id(call, json_string_value(parent), 'M', &pid) &&
			          pid == id) ||
			         in_subtree(m, full))
				*error_r =
				    set_error("invalidProperties",
				              "a mailbox cannot move under itself", "parentId");
			else if (name_taken(&b, account, full, id))
				*error_r = set_error("invalidProperties",
				                     "a mailbox with this name exists", "name");
			else
				ret = rename_subtree(ctx, &b, m, account, full, error_r);
			if (*error_r != NULL || ret < 0)
				goto out;
		}
	}
	if ((sort >= 0 || sub >= 0) &&
	    store_local_mailbox_set_props(ctx->store, id, sort, sub, &err) < 0)
		ret = -1;
out:
	boxes_free(&b);
	return ret;
}

static int mailbox_destroy(struct jmap_mail_ctx *ctx, int64_t id, bool remove_emails,
                           json_t **error_r)
{
	const char *err;
	struct boxes b;
	int64_t account;
	if (boxes_load(ctx, &b) < 0)
		return -1;
	struct store_mailbox *m = box_find(&b, id, &account);
	int ret = 0;
	int64_t *ids = NULL;
	size_t n = 0;
	if (m == NULL) {
		*error_r = set_error("notFound", NULL, NULL);
	} else if (m->role != NULL && strcmp(m->role, "Inbox") == 0) {
		*error_r = set_error("forbidden", "the inbox cannot be destroyed", NULL);
	} else if (has_children(&b, m, account)) {
		*error_r = set_error("mailboxHasChild", NULL, NULL);
	} else if (store_email_query(ctx->store, id, false, 0, UINT32_MAX, &ids, &n, NULL, &err) <
	           0) {
		ret = -1;
	} else if (n > 0 && !remove_emails) {
		*error_r =
		    set_error("mailboxHasEmail",
		              "the mailbox has emails (onDestroyRemoveEmails removes them)", NULL);
	} else {
		for (size_t i = 0; i < n && ret == 0; i++)
			ret = store_local_remove_from_mailbox(ctx->store, ids[i], id, &err);
		if (ret == 0)
			ret = store_local_mailbox_destroy(ctx->store, id, &err);
	}
	free(ids);
	boxes_free(&b);
	return ret;
}

/* --- the driver's callbacks (jmap_set_run) --------------------------------- */

static int mailbox_state(struct jmap_mail_ctx *ctx, char *out, size_t size)
{
	snprintf(out, size, "%llu", (unsigned long long)store_modseq(ctx->store));
	return 0;
}

static int mailbox_check_args(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r,
                              const char **description_r)
{
	(void)ctx;
	json_t *remove = json_object_get(args, "onDestroyRemoveEmails");
	if (remove != NULL && !json_is_boolean(remove)) {
		*error_type_r = "invalidArguments";
		*description_r = "onDestroyRemoveEmails is a boolean";
		return -1;
	}
	return 0;
}

static int set_create(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args, json_t *obj,
                      json_t **created_r, json_t **error_r)
{
	(void)args;
	return mailbox_create(ctx, call, obj, created_r, error_r);
}

static int set_update(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args, int64_t id,
                      json_t *patch, json_t **error_r)
{
	(void)args;
	return mailbox_update(ctx, call, id, patch, error_r);
}

static int set_destroy(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *args, int64_t id,
                       json_t **error_r)
{
	(void)call;
	return mailbox_destroy(
	    ctx, id, json_is_true(json_object_get(args, "onDestroyRemoveEmails")), error_r);
}

int jmap_mailbox_set(void *context, struct jmap_call *call, json_t *args, const char **error_type_r,
                     const char **description_r)
{
	static const char *const extra[] = {"onDestroyRemoveEmails", NULL};
	static const struct jmap_set_ops ops = {
	    .name = "Mailbox/set",
	    .prefix = 'M',
	    .extra_args = extra,
	    .check_args = mailbox_check_args,
	    .state = mailbox_state,
	    .create = set_create,
	    .update = set_update,
	    .destroy = set_destroy,
	};
	return jmap_set_run(context, call, args, &ops, error_type_r, description_r);
}
