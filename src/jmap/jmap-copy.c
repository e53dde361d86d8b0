/*
 * Email/copy (RFC 8621 4.7, RFC 8620 5.4) and Blob/copy (RFC 8620 6.3)
 * between the JMAP accounts of one user.
 *
 * All of a user's accounts live in one store, so a copy never moves bytes:
 * Email/copy adds, in the target account's mailboxes, a message made here
 * from the same stored content (store_local_add, kind "import": the
 * two-way sync APPENDs it to the target's server). With
 * onSuccessDestroyOriginal the originals are destroyed afterwards through
 * Email/set's own destroy path, whose response follows as the implicit
 * "Email/set" response with the same call id (RFC 8620 5.4). Blob/copy
 * makes the blob an upload of the user (which every account of the user
 * may read; jmap-session.h) and answers with the same id, or, for a body
 * part, stores the part's bytes as a new upload.
 */
#include <assert.h>
#include <string.h>
#include <time.h>

#include "../mime/mime-build.h"
#include "../store/store-accounts.h"
#include "jmap-email.h"
#include "jmap-session.h"
#include "jmap-set-private.h"

#define COPY_MAX_BLOB (64u * 1024 * 1024) /* a body part copied as its own blob */

/* mailboxIds of a copy: mailboxes of the target account that can hold
 * mail. Fills ids (at most max); NULL or a SetError. */
static json_t *copy_mailboxes(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *boxes,
                              int64_t *ids, size_t max, size_t *n_r)
{
	const char *err, *key;
	json_t *v;
	if (!json_is_object(boxes) || json_object_size(boxes) == 0)
		return set_error("invalidProperties", "an Email is in at least one mailbox",
		                 "mailboxIds");
	if (json_object_size(boxes) > max)
		return set_error("tooManyMailboxes", NULL, "mailboxIds");
	size_t n = 0;
	json_object_foreach(boxes, key, v)
	{
		int64_t id, account;
		char *akey = NULL;
		if (!json_is_true(v) || !set_resolve_id(call, key, 'M', &id))
			return set_error("invalidProperties", "not a mailbox id", "mailboxIds");
		int r = store_mailbox_account(ctx->store, id, &account, &akey, &err);
		free(akey);
		if (r < 0)
			return set_error("serverFail", NULL, NULL);
		if (r == 0 || account != ctx->store_account_id)
			return set_error("invalidProperties", "no such mailbox in the account",
			                 "mailboxIds");
		bool noselect = false;
		if (store_mailbox_noselect(ctx->store, id, &noselect, &err) < 0)
			return set_error("serverFail", NULL, NULL);
		if (noselect)
			return set_error("invalidProperties",
			                 "the mailbox cannot hold mail (\\Noselect)", "mailboxIds");
		ids[n++] = id;
	}
	*n_r = n;
	return NULL;
}

/* Copy one Email: 0 with *created_r or *error_r, -1 store failure. */
static int copy_one(struct jmap_mail_ctx *ctx, struct jmap_call *call, int64_t from_account,
                    json_t *obj, int64_t *source_r, json_t **created_r, json_t **error_r)
{
	const char *err, *key;
	json_t *v;
	if (!json_is_object(obj)) {
		*error_r = set_error("invalidProperties", "an Email object", NULL);
		return 0;
	}
	json_object_foreach(obj, key, v)
	{
		if (strcmp(key, "id") != 0 && strcmp(key, "mailboxIds") != 0 &&
		    strcmp(key, "keywords") != 0 && strcmp(key, "receivedAt") != 0) {
			*error_r = set_error("invalidProperties",
			                     "only id, mailboxIds, keywords and receivedAt", key);
			return 0;
		}
	}
	int64_t source, existing;
	struct store_email e;
	int r = set_resolve_id(call, json_string_value(json_object_get(obj, "id")), 'E', &source)
	            ? store_email_get(ctx->store, source, &e, &err)
	            : 0;
	if (r < 0)
		return -1;
	if (r == 0 || e.account_id != from_account) {
		*error_r = set_error("notFound", "no such Email in fromAccountId", "id");
		return 0;
	}
	/* An Email is one content within an account: the same bytes there
	 * already are that Email (RFC 8620 5.4 alreadyExists). */
	r = store_email_of_blob(ctx->store, ctx->store_account_id, e.blob_id, &existing, &err);
	if (r < 0)
		return -1;
	if (r == 1) {
		*error_r = set_error("alreadyExists", "the account has this Email", NULL);
		json_object_set_new(*error_r, "existingId", jmap_prefixed('E', existing));
		return 0;
	}
	int64_t boxes[JMAP_SET_MAX_OBJECTS];
	size_t n_boxes = 0;
	if ((*error_r = copy_mailboxes(ctx, call, json_object_get(obj, "mailboxIds"), boxes,
	                               JMAP_SET_MAX_OBJECTS, &n_boxes)) != NULL)
		return 0;
	unsigned flags = e.flags & ~STORE_FLAG_DELETED;
	char keywords[sizeof(e.keywords)];
	snprintf(keywords, sizeof(keywords), "%s", e.keywords);
	json_t *kw = json_object_get(obj, "keywords");
	if (kw != NULL && jmap_keywords_parse(kw, &flags, keywords, sizeof(keywords)) < 0) {
		*error_r = set_error("invalidProperties",
		                     "keywords: lower-case keywords set to true", "keywords");
		return 0;
	}
	int64_t when = e.internaldate;
	json_t *at = json_object_get(obj, "receivedAt");
	if (at != NULL && !json_is_null(at) &&
	    !mime_build_parse_date(json_string_value(at), &when)) {
		*error_r = set_error("invalidProperties", "receivedAt is a UTCDate", "receivedAt");
		return 0;
	}
	/* One membership per mailbox of the same stored bytes: one Email of
	 * the target account (the store's Email model). */
	int64_t first = 0;
	for (size_t i = 0; i < n_boxes; i++) {
		int64_t id;
		if (store_local_add(ctx->store, boxes[i], e.blob_id, flags, keywords, when,
		                    "import", &id, &err) < 0)
			return -1;
		if (first == 0)
			first = id;
		assert(id == first);
	}
	*created_r = json_pack("{s:o,s:o,s:o,s:I}", "id", jmap_prefixed('E', first), "blobId",
	                       jmap_prefixed('B', e.blob_id), "threadId",
	                       jmap_thread_id(ctx, first), "size", (json_int_t)e.size);
	*source_r = source;
	return 0;
}

/* Both accounts of a /copy: the source's store account into *from_r, ctx
 * selected on the target. 0, or -1 with the method error. */
static int copy_accounts(struct jmap_mail_ctx *ctx, json_t *args, int64_t *from_r,
                         char from_text[32], const char **error_type_r, const char **description_r)
{
	const char *from = json_string_value(json_object_get(args, "fromAccountId"));
	if (from == NULL || !json_is_string(json_object_get(args, "accountId"))) {
		*error_type_r = "invalidArguments";
		*description_r = "fromAccountId and accountId are required";
		return -1;
	}
	if (strcmp(from, json_string_value(json_object_get(args, "accountId"))) == 0) {
		*error_type_r = "invalidArguments";
		*description_r = "fromAccountId must differ from accountId (use /set within one)";
		return -1;
	}
	if (jmap_account_select(ctx, from, error_type_r) < 0) {
		*error_type_r = "fromAccountNotFound";
		return -1;
	}
	*from_r = ctx->store_account_id;
	snprintf(from_text, 32, "%s", ctx->account_id);
	return jmap_check_account(ctx, args, error_type_r);
}

/* ifInState / ifFromInState against the state now held: false on mismatch. */
static bool state_ok(json_t *args, const char *name, const char *now)
{
	json_t *s = json_object_get(args, name);
	return !json_is_string(s) || strcmp(json_string_value(s), now) == 0;
}

static int email_copy(void *context, struct jmap_call *call, json_t *args,
                      const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	static const char *const allowed[] = {"fromAccountId",
	                                      "ifFromInState",
	                                      "accountId",
	                                      "ifInState",
	                                      "create",
	                                      "onSuccessDestroyOriginal",
	                                      "destroyFromIfInState",
	                                      NULL};
	const char *err, *key;
	json_t *v;
	char from_text[32];
	int64_t from;
	if (copy_accounts(ctx, args, &from, from_text, error_type_r, description_r) < 0)
		return -1;
	json_t *create = json_object_get(args, "create");
	json_t *destroy_orig = json_object_get(args, "onSuccessDestroyOriginal");
	if (jmap_unknown_key(args, allowed) != NULL || !json_is_object(create) ||
	    (destroy_orig != NULL && !json_is_boolean(destroy_orig))) {
		*error_type_r = "invalidArguments";
		*description_r = "create is an object; onSuccessDestroyOriginal a boolean";
		return -1;
	}
	for (size_t i = 0; i < 3; i++) {
		const char *name =
		    (const char *[]){"ifInState", "ifFromInState", "destroyFromIfInState"}[i];
		json_t *s = json_object_get(args, name);
		if (s != NULL && !json_is_null(s) && !json_is_string(s)) {
			*error_type_r = "invalidArguments";
			*description_r = "a state is a string";
			return -1;
		}
	}
	if (json_object_size(create) > JMAP_SET_MAX_OBJECTS) {
		*error_type_r = "requestTooLarge";
		return -1;
	}
	if (store_begin(ctx->store, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	char old_state[32];
	snprintf(old_state, sizeof(old_state), "%llu",
	         (unsigned long long)store_modseq(ctx->store));
	if (!state_ok(args, "ifInState", old_state) ||
	    !state_ok(args, "ifFromInState", old_state)) {
		store_rollback(ctx->store);
		*error_type_r = "stateMismatch";
		return -1;
	}
	json_t *created = json_object(), *not_created = json_object(), *originals = json_array();
	int fatal = 0;
	json_object_foreach(create, key, v)
	{
		json_t *ok = NULL, *bad = NULL;
		int64_t source = 0;
		if (!jmap_is_id(key))
			bad = set_error("invalidProperties", "creation ids are Ids", NULL);
		else if ((fatal = copy_one(ctx, call, from, v, &source, &ok, &bad)) < 0)
			break;
		if (ok != NULL) {
			jmap_call_set_created_id(
			    call, key, json_string_value(json_object_get(ok, "id")), &err);
			json_object_set_new(created, key, ok);
			json_array_append_new(originals, jmap_prefixed('E', source));
		} else {
			json_object_set_new(not_created, key, bad);
		}
	}
	if (fatal < 0 || store_commit(ctx->store, &err) < 0) {
		store_rollback(ctx->store);
		json_decref(created);
		json_decref(not_created);
		json_decref(originals);
		*error_type_r = "serverFail";
		*description_r = "the store failed; nothing was copied";
		return -1;
	}
	snprintf(ctx->state, sizeof(ctx->state), "%llu",
	         (unsigned long long)store_modseq(ctx->store));
	json_t *resp =
	    json_pack("{s:s,s:s,s:s,s:s,s:o,s:o}", "fromAccountId", from_text, "accountId",
	              ctx->account_id, "oldState", old_state, "newState", ctx->state, "created",
	              json_object_size(created) > 0 ? created : json_null(), "notCreated",
	              json_object_size(not_created) > 0 ? not_created : json_null());
	if (json_object_size(created) == 0)
		json_decref(created);
	if (json_object_size(not_created) == 0)
		json_decref(not_created);
	if (jmap_call_respond(call, "Email/copy", resp, &err) < 0) {
		json_decref(originals);
		*error_type_r = "serverFail";
		return -1;
	}
	if (!json_is_true(destroy_orig) || json_array_size(originals) == 0) {
		json_decref(originals);
		return 0;
	}
	/* The implicit Email/set in the source account (RFC 8620 5.4). Its
	 * failure is its own error response; the copies stay made. */
	json_t *set_args = json_pack("{s:s,s:o}", "accountId", from_text, "destroy", originals);
	json_t *if_state = json_object_get(args, "destroyFromIfInState");
	if (json_is_string(if_state))
		json_object_set(set_args, "ifInState", if_state);
	const char *type = NULL, *why = NULL;
	int r = jmap_email_set(ctx, call, set_args, &type, &why);
	json_decref(set_args);
	if (r < 0) {
		json_t *e = json_pack("{s:s}", "type", type != NULL ? type : "serverFail");
		if (why != NULL)
			json_object_set_new(e, "description", json_string(why));
		if (jmap_call_respond(call, "error", e, &err) < 0) {
			*error_type_r = "serverFail";
			return -1;
		}
	}
	return 0;
}

/* Copy one blob: 0 with *copied_r (the new id) or *error_r, -1 failure. */
static int blob_copy_one(struct jmap_mail_ctx *ctx, int64_t from, json_t *id, json_t **copied_r,
                         json_t **error_r)
{
	const char *err, *text = json_string_value(id);
	int r = jmap_blob_visible(ctx->store, from, text, &err);
	if (r < 0)
		return -1;
	if (r == 0) {
		*error_r = set_error("blobNotFound", NULL, NULL);
		return 0;
	}
	int64_t row;
	if (jmap_parse_id(text, 'B', &row)) {
		/* A whole stored blob: it is an upload of the user from now. */
		if (store_upload_add(ctx->store, row, "application/octet-stream",
		                     (int64_t)time(NULL), &err) < 0)
			return -1;
		*copied_r = json_string(text);
		return 0;
	}
	/* A body part: its decoded bytes become a blob of their own. */
	char *data = NULL, *type = NULL;
	size_t len = 0;
	r = jmap_email_blob_content(ctx->store, text, COPY_MAX_BLOB, &data, &len, &type, &err);
	if (r <= 0) {
		free(data);
		free(type);
		if (r < 0) {
			*error_r = set_error("tooLarge", "the part is too large to copy", NULL);
			return 0;
		}
		*error_r = set_error("blobNotFound", NULL, NULL);
		return 0;
	}
	struct store_blob_writer *w = NULL;
	int64_t blob = 0;
	int ret = 0;
	if (store_blob_begin(ctx->store, len, &w, &err) < 0 ||
	    store_blob_write(w, data, len, &err) < 0 || store_blob_finish(&w, &blob, &err) < 0 ||
	    store_upload_add(ctx->store, blob, type, (int64_t)time(NULL), &err) < 0) {
		store_blob_abort(&w);
		ret = -1;
	} else {
		*copied_r = jmap_prefixed('B', blob);
	}
	free(data);
	free(type);
	return ret;
}

static int blob_copy(void *context, struct jmap_call *call, json_t *args, const char **error_type_r,
                     const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	static const char *const allowed[] = {"fromAccountId", "accountId", "blobIds", NULL};
	const char *err;
	char from_text[32];
	int64_t from;
	json_t *ids;
	if (copy_accounts(ctx, args, &from, from_text, error_type_r, description_r) < 0)
		return -1;
	if (jmap_unknown_key(args, allowed) != NULL) {
		*error_type_r = "invalidArguments";
		*description_r = "unknown argument";
		return -1;
	}
	int got = jmap_arg_strings(args, "blobIds", JMAP_SET_MAX_OBJECTS, &ids, error_type_r,
	                           description_r);
	if (got <= 0) {
		if (got == 0) {
			*error_type_r = "invalidArguments";
			*description_r = "blobIds is required";
		}
		return -1;
	}
	if (store_begin(ctx->store, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *copied = json_object(), *not_copied = json_object();
	size_t i;
	json_t *v;
	int fatal = 0;
	json_array_foreach(ids, i, v)
	{
		json_t *ok = NULL, *bad = NULL;
		if ((fatal = blob_copy_one(ctx, from, v, &ok, &bad)) < 0)
			break;
		if (ok != NULL)
			json_object_set_new(copied, json_string_value(v), ok);
		else
			json_object_set_new(not_copied, json_string_value(v), bad);
	}
	if (fatal < 0 || store_commit(ctx->store, &err) < 0) {
		store_rollback(ctx->store);
		json_decref(copied);
		json_decref(not_copied);
		*error_type_r = "serverFail";
		return -1;
	}
	json_t *resp =
	    json_pack("{s:s,s:s,s:o,s:o}", "fromAccountId", from_text, "accountId", ctx->account_id,
	              "copied", json_object_size(copied) > 0 ? copied : json_null(), "notCopied",
	              json_object_size(not_copied) > 0 ? not_copied : json_null());
	if (json_object_size(copied) == 0)
		json_decref(copied);
	if (json_object_size(not_copied) == 0)
		json_decref(not_copied);
	return jmap_call_respond(call, "Blob/copy", resp, &err);
}

int jmap_copy_register(struct jmap_registry *registry, const char **error_r)
{
	if (jmap_registry_add_method(registry, "Email/copy", JMAP_CAPABILITY_MAIL, email_copy,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Blob/copy", JMAP_CAPABILITY_CORE, blob_copy,
	                             error_r) < 0)
		return -1;
	return 0;
}
