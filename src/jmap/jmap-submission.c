/* EmailSubmission (RFC 8621 section 7) over the outbox. */
#include "jmap-submission.h"
#include "jmap-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../hub/hub.h"
#include "../mime/mime-build.h"
#include "../mime/mime-submit.h"
#include "../store/store-outbox.h"

/* Email/set (jmap-email-set.c), for the implicit call of onSuccess*Email. */
jmap_method_fn jmap_email_set;

#define SUBMISSION_MAX_CHANGES 1000
#define SUBMISSION_MAX_CREATE 50

static int outbox_state(struct jmap_mail_ctx *ctx, char state[32])
{
	int64_t counter;
	const char *err;
	if (store_outbox_state(ctx->store, &counter, &err) < 0)
		return -1;
	snprintf(state, 32, "%lld", (long long)counter);
	return 0;
}

/* Is submission id one of the call's account (made with its identity)? */
static bool outbox_in_scope(struct jmap_mail_ctx *ctx, int64_t id)
{
	const char *err;
	struct store_outbox_item it;
	if (store_outbox_get(ctx->store, id, false, &it, &err) != 1)
		return false;
	bool ours = it.account_id == ctx->hub_account_id;
	store_outbox_item_free(&it);
	return ours;
}

/* A sending identity "I<account_id>": a hub account with an SMTP server.
 * *email_r: the envelope sender (the login when it is an address), or NULL
 * for the message's From. False when there is no such identity. */
static bool identity(struct jmap_mail_ctx *ctx, int64_t account_id, const char **email_r)
{
	for (size_t i = 0; i < jmap_scope_n(ctx); i++) {
		const struct hub_account *a = &jmap_scope_account(ctx)[i];
		if (a->id == account_id && a->smtp_url != NULL) {
			*email_r = mime_submit_valid_address(a->login) ? a->login : NULL;
			return true;
		}
	}
	return false;
}

static const char *undo_status(enum store_outbox_state st)
{
	return st == STORE_OUTBOX_QUEUED || st == STORE_OUTBOX_SENDING ? "pending" : "final";
}

static json_t *submission_json(const struct store_outbox_item *it)
{
	json_t *rcpts = json_array(), *status = json_object();
	const char *delivered = it->state == STORE_OUTBOX_FAILED ? "no" : "queued";
	for (size_t i = 0; i < it->n_rcpts; i++) {
		json_array_append_new(rcpts,
		                      json_pack("{s:s,s:n}", "email", it->rcpts[i], "parameters"));
		json_object_set_new(status, it->rcpts[i],
		                    json_pack("{s:s,s:s,s:s}", "smtpReply", it->last_reply,
		                              "delivered", delivered, "displayed", "unknown"));
	}
	return json_pack(
	    "{s:o,s:o,s:o,s:o,s:{s:{s:s,s:n},s:o},s:o,s:s,s:o,s:[],s:[]}", "id",
	    jmap_prefixed('S', it->id), "identityId", jmap_prefixed('I', it->account_id), "emailId",
	    it->email_id > 0 ? jmap_prefixed('E', it->email_id) : json_null(), "threadId",
	    it->email_id > 0 ? jmap_prefixed('T', it->email_id) : json_null(), "envelope",
	    "mailFrom", "email", it->mail_from, "parameters", "rcptTo", rcpts, "sendAt",
	    jmap_utc_date(it->created), "undoStatus", undo_status(it->state), "deliveryStatus",
	    status, "dsnBlobIds", "mdnBlobIds");
}

/* --- /get ------------------------------------------------------------------ */

static int submission_get(void *context, struct jmap_call *call, json_t *args,
                          const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	char state[32];
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *ids, *properties;
	if (jmap_arg_strings(args, "ids", JMAP_MAIL_MAX_OBJECTS_IN_GET, &ids, error_type_r,
	                     description_r) < 0 ||
	    jmap_arg_strings(args, "properties", 100, &properties, error_type_r, description_r) < 0)
		return -1;
	if (outbox_state(ctx, state) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *list = json_array(), *not_found = json_array();
	if (ids == NULL) {
		struct store_outbox_item *items = NULL;
		size_t n = 0;
		if (store_outbox_list(ctx->store, &items, &n, &err) < 0) {
			json_decref(list);
			json_decref(not_found);
			*error_type_r = "serverFail";
			return -1;
		}
		for (size_t i = 0; i < n && json_array_size(list) < JMAP_MAIL_MAX_OBJECTS_IN_GET;
		     i++)
			if (items[i].account_id == ctx->hub_account_id)
				json_array_append_new(list, submission_json(&items[i]));
		store_outbox_items_free(&items, n);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(ids, i, v)
		{
			int64_t oid;
			struct store_outbox_item it;
			if (jmap_list_id(call, v, 'S', &oid) &&
			    store_outbox_get(ctx->store, oid, false, &it, &err) == 1) {
				if (it.account_id == ctx->hub_account_id)
					json_array_append_new(list, submission_json(&it));
				else
					json_array_append(not_found, v);
				store_outbox_item_free(&it);
			} else {
				json_array_append(not_found, v);
			}
		}
	}
	size_t at;
	json_t *obj;
	json_array_foreach(list, at, obj) jmap_keep_properties(obj, properties);
	return jmap_call_respond(call, "EmailSubmission/get",
	                         json_pack("{s:s,s:s,s:o,s:o}", "accountId", ctx->account_id,
	                                   "state", state, "list", list, "notFound", not_found),
	                         &err);
}

/* --- /changes ---------------------------------------------------------------- */

static json_t *id_list(const int64_t *ids, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, jmap_prefixed('S', ids[i]));
	return a;
}

/* Created or updated submissions of the call's account only. */
static json_t *scoped_id_list(struct jmap_mail_ctx *ctx, const int64_t *ids, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		if (outbox_in_scope(ctx, ids[i]))
			json_array_append_new(a, jmap_prefixed('S', ids[i]));
	return a;
}

static int submission_changes(void *context, struct jmap_call *call, json_t *args,
                              const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	char state[32];
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	const char *since_text;
	size_t limit;
	uint64_t since;
	if (jmap_changes_args(args, "sinceState", SUBMISSION_MAX_CHANGES, &since_text, &limit,
	                      error_type_r, description_r) < 0)
		return -1;
	if (outbox_state(ctx, state) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	if (!jmap_parse_state(since_text, strtoull(state, NULL, 10), &since)) {
		*error_type_r = "cannotCalculateChanges";
		*description_r = "unknown state";
		return -1;
	}
	int64_t *c, *u, *d, new_state;
	size_t nc, nu, nd;
	bool more;
	if (store_outbox_changes(ctx->store, (int64_t)since, limit, &c, &nc, &u, &nu, &d, &nd,
	                         &new_state, &more, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	char ns[32];
	snprintf(ns, sizeof(ns), "%lld", (long long)new_state);
	json_t *resp = json_pack("{s:s,s:s,s:s,s:b,s:o,s:o,s:o}", "accountId", ctx->account_id,
	                         "oldState", since_text, "newState", ns, "hasMoreChanges", more,
	                         "created", scoped_id_list(ctx, c, nc), "updated",
	                         scoped_id_list(ctx, u, nu), "destroyed", id_list(d, nd));
	free(c);
	free(u);
	free(d);
	return jmap_call_respond(call, "EmailSubmission/changes", resp, &err);
}

/* --- /query ------------------------------------------------------------------ */

static bool in_id_list(struct jmap_call *call, json_t *list, char prefix, int64_t id)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		int64_t x;
		if (jmap_list_id(call, v, prefix, &x) && x == id)
			return true;
	}
	return false;
}

static int submission_query(void *context, struct jmap_call *call, json_t *args,
                            const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	char state[32];
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	json_t *filter = json_object_get(args, "filter"), *sort = json_object_get(args, "sort");
	json_t *f_ident = NULL, *f_email = NULL;
	const char *f_undo = NULL;
	if (filter != NULL && !json_is_null(filter)) {
		const char *key;
		json_t *v;
		if (!json_is_object(filter)) {
			*error_type_r = "invalidArguments";
			return -1;
		}
		json_object_foreach(filter, key, v)
		{
			if (strcmp(key, "identityIds") == 0 || strcmp(key, "emailIds") == 0) {
				json_t *list;
				if (jmap_arg_strings(filter, key, JMAP_MAIL_MAX_OBJECTS_IN_GET,
				                     &list, error_type_r, description_r) < 0)
					return -1;
				if (key[0] == 'i')
					f_ident = list;
				else
					f_email = list;
			} else if (strcmp(key, "undoStatus") == 0 && json_is_string(v))
				f_undo = json_string_value(v);
			else {
				*error_type_r = "unsupportedFilter";
				*description_r = "filters: identityIds, emailIds, undoStatus";
				return -1;
			}
		}
	}
	bool newest_first = false;
	if (sort != NULL && !json_is_null(sort)) {
		json_t *s0 = json_array_get(sort, 0);
		const char *prop = json_string_value(json_object_get(s0, "property"));
		if (!json_is_array(sort) || json_array_size(sort) > 1 ||
		    (json_array_size(sort) == 1 && (prop == NULL || strcmp(prop, "sentAt") != 0))) {
			*error_type_r = "unsupportedSort";
			*description_r = "sort: sentAt only";
			return -1;
		}
		json_t *asc = json_object_get(s0, "isAscending");
		newest_first = s0 != NULL && asc != NULL && json_is_false(asc);
	}
	json_t *pos = json_object_get(args, "position"), *lim = json_object_get(args, "limit");
	if ((pos != NULL && !json_is_null(pos) &&
	     (!json_is_integer(pos) || json_integer_value(pos) < 0)) ||
	    (lim != NULL && !json_is_null(lim) &&
	     (!json_is_integer(lim) || json_integer_value(lim) < 0))) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	size_t position = pos != NULL && json_is_integer(pos) ? (size_t)json_integer_value(pos) : 0;
	size_t limit = lim != NULL && json_is_integer(lim) ? (size_t)json_integer_value(lim) : 1000;
	if (limit > 1000)
		limit = 1000;
	struct store_outbox_item *items = NULL;
	size_t n = 0;
	if (outbox_state(ctx, state) < 0 || store_outbox_list(ctx->store, &items, &n, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *ids = json_array();
	size_t total = 0;
	for (size_t k = 0; k < n; k++) {
		const struct store_outbox_item *it = &items[newest_first ? n - 1 - k : k];
		if (it->account_id != ctx->hub_account_id ||
		    (f_ident != NULL && !in_id_list(call, f_ident, 'I', it->account_id)) ||
		    (f_email != NULL && !in_id_list(call, f_email, 'E', it->email_id)) ||
		    (f_undo != NULL && strcmp(f_undo, undo_status(it->state)) != 0))
			continue;
		if (total >= position && json_array_size(ids) < limit)
			json_array_append_new(ids, jmap_prefixed('S', it->id));
		total++;
	}
	store_outbox_items_free(&items, n);
	return jmap_call_respond(
	    call, "EmailSubmission/query",
	    json_pack("{s:s,s:s,s:b,s:I,s:o,s:I}", "accountId", ctx->account_id, "queryState",
	              state, "canCalculateChanges", 0, "position", (json_int_t)position, "ids", ids,
	              "total", (json_int_t)total),
	    &err);
}

/* --- /set -------------------------------------------------------------------- */

static json_t *set_error(const char *type, const char *description)
{
	return json_pack("{s:s,s:s}", "type", type, "description", description);
}

/* Read a stored message's bytes (at most the submission limit). */
static char *email_bytes(struct jmap_mail_ctx *ctx, int64_t email_id, size_t *len_r,
                         const char **type_r, const char **why_r)
{
	struct store_email e;
	const char *err;
	int r = store_email_get(ctx->store, email_id, &e, &err);
	if (r == 1 && e.account_id != ctx->store_account_id)
		r = 0; /* an Email of another account */
	if (r != 1) {
		*type_r = r == 0 ? "invalidProperties" : "serverFail";
		*why_r = "emailId: no such Email";
		return NULL;
	}
	if (e.size > MIME_SUBMIT_MAX_SIZE) {
		*type_r = "tooLarge";
		*why_r = "the Email is larger than the submission limit";
		return NULL;
	}
	char *buf = malloc(e.size + 1);
	if (buf == NULL || store_blob_read(ctx->store, e.blob_id, 0, buf, e.size, &err) < 0) {
		free(buf);
		*type_r = "serverFail";
		*why_r = "cannot read the Email";
		return NULL;
	}
	*len_r = e.size;
	return buf;
}

/* Create one submission: 0 with *id_r, or -1 with a SetError. */
static int create_one(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *obj, int64_t *id_r,
                      json_t **error_r)
{
	const char *err, *email_ref, *resolved = NULL, *type = NULL, *why = NULL;
	int64_t account_id, email_id;
	const char *ident_s = json_string_value(json_object_get(obj, "identityId"));
	email_ref = json_string_value(json_object_get(obj, "emailId"));
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "identityId") != 0 && strcmp(key, "emailId") != 0 &&
		    strcmp(key, "envelope") != 0) {
			*error_r = set_error("invalidProperties", "unknown or server-set property");
			return -1;
		}
	}
	if (ident_s == NULL || jmap_call_resolve_id(call, ident_s, &ident_s, &err) < 0)
		ident_s = NULL;
	const char *ident_email = NULL;
	if (!jmap_parse_id(ident_s, 'I', &account_id) || !identity(ctx, account_id, &ident_email)) {
		*error_r = set_error("invalidProperties", "identityId: no such identity");
		return -1;
	}
	if (email_ref == NULL || jmap_call_resolve_id(call, email_ref, &resolved, &err) < 0 ||
	    !jmap_parse_id(resolved, 'E', &email_id)) {
		*error_r = set_error("invalidProperties", "emailId: no such Email");
		return -1;
	}
	/* The envelope: optional; its sender must be the identity's. */
	json_t *env = json_object_get(obj, "envelope");
	const char *rcpts[MIME_SUBMIT_MAX_RCPTS];
	size_t n_rcpts = 0;
	const char *mail_from = NULL;
	if (env != NULL && !json_is_null(env)) {
		json_t *rt = json_object_get(env, "rcptTo");
		mail_from =
		    json_string_value(json_object_get(json_object_get(env, "mailFrom"), "email"));
		if (!json_is_object(env) || mail_from == NULL || !json_is_array(rt)) {
			*error_r = set_error("invalidProperties", "envelope: mailFrom and rcptTo");
			return -1;
		}
		if (json_array_size(rt) == 0) {
			*error_r = set_error("noRecipients", "envelope.rcptTo is empty");
			return -1;
		}
		if (json_array_size(rt) > MIME_SUBMIT_MAX_RCPTS) {
			*error_r = set_error("tooManyRecipients", "too many recipients");
			return -1;
		}
		size_t i;
		json_array_foreach(rt, i, v)
		{
			const char *a = json_string_value(json_object_get(v, "email"));
			if (a == NULL || !mime_submit_valid_address(a)) {
				*error_r =
				    set_error("invalidRecipients", "envelope.rcptTo: invalid");
				return -1;
			}
			rcpts[n_rcpts++] = a;
		}
		if (!mime_submit_valid_address(mail_from) ||
		    (ident_email != NULL && strcasecmp(mail_from, ident_email) != 0)) {
			*error_r = set_error("forbiddenMailFrom",
			                     "envelope.mailFrom must be the identity's address");
			return -1;
		}
	}
	size_t len;
	char *data = email_bytes(ctx, email_id, &len, &type, &why);
	if (data == NULL) {
		*error_r = set_error(type, why);
		return -1;
	}
	struct mime_submission sub;
	int r = mime_submit_prepare(data, len, rcpts, n_rcpts, ident_email, time(NULL), &sub, &err);
	if (r == 0 && !sub.has_from && ident_email != NULL) {
		/* No From: the identity's, with its display name (Identity/set). */
		json_t *from = jmap_identity_from(ctx, account_id);
		char *field = mime_build_from_field(
		    json_string_value(json_object_get(json_array_get(from, 0), "name")),
		    ident_email);
		json_decref(from);
		size_t flen = field != NULL ? strlen(field) : 0;
		char *with = field != NULL ? malloc(flen + len + 1) : NULL;
		if (with == NULL) {
			free(field);
			free(data);
			mime_submission_free(&sub);
			*error_r = set_error("serverFail", "out of memory");
			return -1;
		}
		memcpy(with, field, flen);
		memcpy(with + flen, data, len);
		free(field);
		free(data);
		data = with;
		len += flen;
		mime_submission_free(&sub);
		r = mime_submit_prepare(data, len, rcpts, n_rcpts, ident_email, time(NULL), &sub,
		                        &err);
	}
	free(data);
	if (r < 0) {
		*error_r = set_error(
		    strstr(err, "recipient") != NULL ? "noRecipients" : "invalidEmail", err);
		return -1;
	}
	const char *sender = ident_email != NULL ? ident_email
	                     : mail_from != NULL ? mail_from
	                                         : sub.from_header;
	if (sender == NULL) {
		mime_submission_free(&sub);
		*error_r = set_error("forbiddenMailFrom", "no sender address");
		return -1;
	}
	r = store_outbox_add(ctx->store, account_id, email_id, sender,
	                     (const char *const *)sub.rcpts, sub.n_rcpts, sub.data, sub.len,
	                     time(NULL), id_r, &err);
	mime_submission_free(&sub);
	if (r < 0) {
		*error_r = set_error("serverFail", "cannot queue the message");
		return -1;
	}
	return 0;
}

/* Remember that the submission known as ref ("#creationId", may be NULL)
 * and id succeeded, for the Email email_id (0: none). */
static void email_succeeded(json_t *succeeded, const char *ref, const char *id, int64_t email_id)
{
	if (email_id == 0)
		return;
	char eid[32];
	snprintf(eid, sizeof(eid), "E%lld", (long long)email_id);
	if (ref != NULL)
		json_object_set_new(succeeded, ref, json_string(eid));
	json_object_set_new(succeeded, id, json_string(eid));
}

/* The Email a submission was made from, or 0. */
static int64_t outbox_email(struct jmap_mail_ctx *ctx, int64_t id)
{
	const char *err;
	struct store_outbox_item it;
	if (store_outbox_get(ctx->store, id, false, &it, &err) != 1)
		return 0;
	int64_t email = it.email_id;
	store_outbox_item_free(&it);
	return email;
}

/*
 * onSuccessUpdateEmail / onSuccessDestroyEmail (RFC 8621 7.5): after the
 * EmailSubmission/set response, an implicit Email/set over the Emails of
 * the submissions that succeeded (e.g. move the draft to Sent, drop
 * $draft), answered as its own "Email/set" response with this call's id.
 * Keys naming a submission that did not succeed are skipped. Sending
 * itself happens later, from the outbox: "success" here is the
 * submission being accepted, as the RFC has it.
 */
static int implicit_email_set(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *on_update,
                              json_t *on_destroy, json_t *succeeded)
{
	const char *err;
	json_t *update = json_object(), *destroy = json_array();
	const char *key;
	json_t *v;
	json_object_foreach(on_update, key, v)
	{
		const char *email = json_string_value(json_object_get(succeeded, key));
		if (email != NULL)
			json_object_set(update, email, v);
	}
	size_t i;
	json_array_foreach(on_destroy, i, v)
	{
		const char *email =
		    json_string_value(json_object_get(succeeded, json_string_value(v)));
		if (email != NULL)
			json_array_append_new(destroy, json_string(email));
	}
	if (json_object_size(update) == 0 && json_array_size(destroy) == 0) {
		json_decref(update);
		json_decref(destroy);
		return 0;
	}
	json_t *args = json_pack("{s:s,s:o,s:o}", "accountId", ctx->account_id, "update", update,
	                         "destroy", destroy);
	const char *type = NULL, *description = NULL;
	int r = jmap_email_set(ctx, call, args, &type, &description);
	json_decref(args);
	if (r == 0)
		return 0;
	/* The submission stands; the implicit call's failure is its own
	 * error response. */
	json_t *e = json_pack("{s:s}", "type", type != NULL ? type : "serverFail");
	if (description != NULL)
		json_object_set_new(e, "description", json_string(description));
	return jmap_call_respond(call, "error", e, &err) < 0 ? -1 : 0;
}

static int submission_set(void *context, struct jmap_call *call, json_t *args,
                          const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	const char *err;
	char old_state[32], new_state[32];
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	if (jmap_mail_accounts(ctx) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *on_update = json_object_get(args, "onSuccessUpdateEmail"), *on_destroy;
	if (on_update != NULL && !json_is_null(on_update) && !json_is_object(on_update)) {
		*error_type_r = "invalidArguments";
		*description_r = "onSuccessUpdateEmail is a map";
		return -1;
	}
	if (jmap_arg_strings(args, "onSuccessDestroyEmail", SUBMISSION_MAX_CREATE, &on_destroy,
	                     error_type_r, description_r) < 0)
		return -1;
	json_t *create = json_object_get(args, "create"), *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	if ((create != NULL && !json_is_null(create) && !json_is_object(create)) ||
	    (update != NULL && !json_is_null(update) && !json_is_object(update)) ||
	    (destroy != NULL && !json_is_null(destroy) && !json_is_array(destroy))) {
		*error_type_r = "invalidArguments";
		return -1;
	}
	if (json_object_size(create) + json_object_size(update) + json_array_size(destroy) >
	    SUBMISSION_MAX_CREATE) {
		*error_type_r = "requestTooLarge";
		return -1;
	}
	if (outbox_state(ctx, old_state) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *if_in_v = json_object_get(args, "ifInState");
	const char *if_in = json_string_value(if_in_v);
	if (if_in_v != NULL && !json_is_null(if_in_v) && if_in == NULL) {
		*error_type_r = "invalidArguments";
		*description_r = "ifInState is a string";
		return -1;
	}
	if (if_in != NULL && strcmp(if_in, old_state) != 0) {
		*error_type_r = "stateMismatch";
		return -1;
	}
	/* The Email of each submission that succeeded, by "#creationId" and by
	 * id, for the implicit Email/set (RFC 8621 7.5). */
	json_t *succeeded = json_object();
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	const char *key;
	json_t *v;
	json_object_foreach(create, key, v)
	{
		int64_t id;
		json_t *e = NULL;
		if (!json_is_object(v)) {
			json_object_set_new(not_created, key,
			                    set_error("invalidProperties", "not an object"));
			continue;
		}
		if (create_one(ctx, call, v, &id, &e) < 0) {
			json_object_set_new(not_created, key, e);
			continue;
		}
		char sid[32];
		snprintf(sid, sizeof(sid), "S%lld", (long long)id);
		jmap_call_set_created_id(call, key, sid, &err);
		struct store_outbox_item it;
		json_t *obj = json_pack("{s:s}", "id", sid);
		if (store_outbox_get(ctx->store, id, false, &it, &err) == 1) {
			char ref[300];
			snprintf(ref, sizeof(ref), "#%s", key);
			email_succeeded(succeeded, ref, sid, it.email_id);
			json_t *full = submission_json(&it);
			json_object_set(obj, "sendAt", json_object_get(full, "sendAt"));
			json_object_set(obj, "undoStatus", json_object_get(full, "undoStatus"));
			json_object_set(obj, "envelope", json_object_get(full, "envelope"));
			json_decref(full);
			store_outbox_item_free(&it);
		}
		json_object_set_new(created, key, obj);
	}
	json_object_foreach(update, key, v)
	{
		int64_t id;
		const char *undo = json_string_value(json_object_get(v, "undoStatus"));
		if (!jmap_parse_id(key, 'S', &id) || !outbox_in_scope(ctx, id)) {
			json_object_set_new(not_updated, key, set_error("notFound", "no such id"));
		} else if (!json_is_object(v) || json_object_size(v) != 1 || undo == NULL ||
		           strcmp(undo, "canceled") != 0) {
			json_object_set_new(
			    not_updated, key,
			    set_error("invalidProperties", "only undoStatus: canceled can be set"));
		} else {
			int64_t email = outbox_email(ctx, id);
			int r = store_outbox_cancel(ctx->store, id, &err);
			if (r == 1) {
				json_object_set_new(updated, key, json_null());
				email_succeeded(succeeded, NULL, key, email);
			} else
				json_object_set_new(
				    not_updated, key,
				    set_error(r < 0 ? "serverFail" : "cannotUnsend",
				              "it is being sent or was sent already"));
		}
	}
	size_t i;
	json_array_foreach(destroy, i, v)
	{
		int64_t id;
		const char *s = json_string_value(v);
		bool ours = jmap_list_id(call, v, 'S', &id) && outbox_in_scope(ctx, id);
		int64_t email = ours ? outbox_email(ctx, id) : 0;
		int r = ours ? store_outbox_destroy(ctx->store, id, &err) : 0;
		if (r == 1) {
			json_array_append_new(destroyed, json_string(s));
			email_succeeded(succeeded, NULL, s, email);
			continue;
		}
		char *key_text = jmap_destroy_key(v);
		if (key_text != NULL)
			json_object_set_new(
			    not_destroyed, key_text,
			    s == NULL ? set_error("invalidArguments", "an Id is a string")
			    : r == 2  ? set_error("forbidden",
			                          "sent; its copy to the Sent folder is still being "
			                           "filed: try again later")
			              : set_error(r < 0 ? "serverFail" : "notFound",
			                         "no sent or failed submission with this id "
			                         "(cancel a pending one first)"));
		free(key_text);
	}
	outbox_state(ctx, new_state);
	json_t *resp = json_pack("{s:s,s:s,s:s}", "accountId", ctx->account_id, "oldState",
	                         old_state, "newState", new_state);
	json_object_set_new(resp, "created", json_object_size(created) ? created : json_null());
	json_object_set_new(resp, "notCreated",
	                    json_object_size(not_created) ? not_created : json_null());
	json_object_set_new(resp, "updated", json_object_size(updated) ? updated : json_null());
	json_object_set_new(resp, "notUpdated",
	                    json_object_size(not_updated) ? not_updated : json_null());
	json_object_set_new(resp, "destroyed",
	                    json_array_size(destroyed) ? destroyed : json_null());
	json_object_set_new(resp, "notDestroyed",
	                    json_object_size(not_destroyed) ? not_destroyed : json_null());
	if (json_object_size(created) == 0)
		json_decref(created);
	if (json_object_size(not_created) == 0)
		json_decref(not_created);
	if (json_object_size(updated) == 0)
		json_decref(updated);
	if (json_object_size(not_updated) == 0)
		json_decref(not_updated);
	if (json_array_size(destroyed) == 0)
		json_decref(destroyed);
	if (json_object_size(not_destroyed) == 0)
		json_decref(not_destroyed);
	if (jmap_call_respond(call, "EmailSubmission/set", resp, &err) < 0) {
		json_decref(succeeded);
		*error_type_r = "serverFail";
		return -1;
	}
	int r = implicit_email_set(ctx, call, on_update, on_destroy, succeeded);
	json_decref(succeeded);
	return r;
}

int jmap_submission_register(struct jmap_registry *registry, const char **error_r)
{
	/* Identity/get (jmap-identity.c) may have declared the capability. */
	if (jmap_registry_add_capability(registry, JMAP_CAPABILITY_SUBMISSION, error_r) < 0 &&
	    strcmp(*error_r, "capability already declared") != 0)
		return -1;
	if (jmap_registry_add_method(registry, "EmailSubmission/get", JMAP_CAPABILITY_SUBMISSION,
	                             submission_get, error_r) < 0 ||
	    jmap_registry_add_method(registry, "EmailSubmission/changes",
	                             JMAP_CAPABILITY_SUBMISSION, submission_changes, error_r) < 0 ||
	    jmap_registry_add_method(registry, "EmailSubmission/query", JMAP_CAPABILITY_SUBMISSION,
	                             submission_query, error_r) < 0 ||
	    jmap_registry_add_method(registry, "EmailSubmission/set", JMAP_CAPABILITY_SUBMISSION,
	                             submission_set, error_r) < 0)
		return -1;
	return 0;
}
