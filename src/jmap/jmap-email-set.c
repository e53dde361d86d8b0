/*
 * Email/set and Email/import (RFC 8621 4.6, 4.8) over the hosted store.
 *
 * Model: an Email is in exactly one mailbox (the store keeps one row per
 * mailbox and UID), so mailboxIds has one entry (maxMailboxesPerEmail 1;
 * a second one is tooManyMailboxes), and a move stays within the account
 * the mailbox belongs to: moving between two providers' accounts (or the
 * hub-local one) would be a copy to one server and a delete on the other,
 * which the two-way sync does not do, so it is refused (invalidProperties
 * on mailboxIds, saying so). Every change is made in the hosted mailbox
 * and recorded as a pending local change (store-local); the providers see
 * it only after a two-way sync.
 *
 * One transaction per call: objects are checked before anything is written,
 * so a refused object leaves no trace; a store failure while writing rolls
 * the whole call back (serverFail).
 */
#include <ctype.h>
#include <time.h>

#include "jmap-set-private.h"
#include "../mime/mime-build.h"

#define MAX_KEYWORDS 100
#define MAX_KEYWORDS_TEXT 1000

/* --- keywords ---------------------------------------------------------------- */

/* RFC 8621 4.1.1: 1-255 of %x21-%x7E except ( ) { ] % * " \ */
static bool valid_keyword(const char *k)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)k; *p != '\0'; p++, n++)
		if (*p < 0x21 || *p > 0x7e || strchr("(){]%*\"\\", *p) != NULL)
			return false;
	return n > 0 && n <= 255;
}

/* The keywords of a stored message as a JMAP object (lower case). */
static json_t *keywords_from_store(unsigned flags, const char *keywords)
{
	json_t *k = json_object();
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {{STORE_FLAG_SEEN, "$seen"},
	           {STORE_FLAG_FLAGGED, "$flagged"},
	           {STORE_FLAG_ANSWERED, "$answered"},
	           {STORE_FLAG_DRAFT, "$draft"}};
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if (flags & sys[i].bit)
			json_object_set_new(k, sys[i].name, json_true());
	char kw[1024];
	snprintf(kw, sizeof(kw), "%s", keywords);
	char *save = NULL;
	for (char *t = strtok_r(kw, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
		for (char *c = t; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		json_object_set_new(k, t, json_true());
	}
	return k;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A JMAP keywords object -> system flags (keeping \Deleted from old_flags)
 * and a sorted keyword string. 0, or -1 if not a valid keywords object. */
static int keywords_to_store(json_t *k, unsigned old_flags, unsigned *flags_r, char *out,
                             size_t size)
{
	if (!json_is_object(k) || json_object_size(k) > MAX_KEYWORDS)
		return -1;
	const char *names[MAX_KEYWORDS];
	size_t n = 0;
	unsigned flags = old_flags & STORE_FLAG_DELETED;
	const char *key;
	json_t *v;
	json_object_foreach(k, key, v)
	{
		if (!json_is_true(v) || !valid_keyword(key))
			return -1;
		for (const char *c = key; *c != '\0'; c++)
			if (isupper((unsigned char)*c))
				return -1; /* JMAP keywords are lower case */
		if (strcmp(key, "$seen") == 0)
			flags |= STORE_FLAG_SEEN;
		else if (strcmp(key, "$flagged") == 0)
			flags |= STORE_FLAG_FLAGGED;
		else if (strcmp(key, "$answered") == 0)
			flags |= STORE_FLAG_ANSWERED;
		else if (strcmp(key, "$draft") == 0)
			flags |= STORE_FLAG_DRAFT;
		else
			names[n++] = key;
	}
	qsort(names, n, sizeof(names[0]), cmp_str);
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(out + used, size - used, "%s%s", used > 0 ? " " : "", names[i]);
		if (w < 0 || (size_t)w >= size - used)
			return -1;
		used += (size_t)w;
	}
	*flags_r = flags;
	return 0;
}

/* --- mailboxIds ------------------------------------------------------------- */

/* The mailboxes an Email is to be in: all of one account (ids[0] is where
 * it is created). */
#define MAX_MAILBOXES_PER_EMAIL 1024
struct target {
	int64_t ids[MAX_MAILBOXES_PER_EMAIL];
	size_t n;
	int64_t mailbox_id, account_id; /* mailbox_id = ids[0] */
	char *account_key;
};

static bool target_has(const struct target *t, int64_t mailbox_id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->ids[i] == mailbox_id)
			return true;
	return false;
}

/* Check a mailboxIds object: at least one existing mailbox that can hold
 * mail, all of one account (the JMAP account's, when it names one). NULL
 * on success, else the SetError. */
static json_t *mailbox_ids(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *ids,
                           struct target *t)
{
	const char *err;
	if (!json_is_object(ids) || json_object_size(ids) == 0)
		return set_error("invalidProperties", "an Email is in at least one mailbox",
		                 "mailboxIds");
	if (json_object_size(ids) > MAX_MAILBOXES_PER_EMAIL)
		return set_error("tooManyMailboxes", "too many mailboxes for one Email",
		                 "mailboxIds");
	const char *key;
	json_t *v;
	t->n = 0;
	json_object_foreach(ids, key, v)
	{
		int64_t mb;
		if (!json_is_true(v) || !set_resolve_id(call, key, 'M', &mb))
			return set_error("invalidProperties", "not a mailbox id", "mailboxIds");
		if (!target_has(t, mb))
			t->ids[t->n++] = mb;
	}
	t->mailbox_id = t->ids[0];
	for (size_t i = 0; i < t->n; i++) {
		int64_t account;
		char *key_text = NULL;
		bool noselect = false;
		int r = store_mailbox_account(ctx->store, t->ids[i], &account, &key_text, &err);
		if (r == 1)
			r = store_mailbox_noselect(ctx->store, t->ids[i], &noselect, &err);
		if (r <= 0) {
			free(key_text);
			return set_error(r < 0 ? "serverFail" : "invalidProperties",
			                 r < 0 ? "cannot read mailboxes" : "no such mailbox",
			                 "mailboxIds");
		}
		if ((i > 0 && account != t->account_id) ||
		    (ctx->store_account_id != 0 && account != ctx->store_account_id)) {
			free(key_text);
			return set_error("invalidProperties",
			                 "the mailboxes belong to another account: an Email is in "
			                 "mailboxes of one account (copy it instead)",
			                 "mailboxIds");
		}
		if (noselect) {
			free(key_text);
			return set_error("invalidProperties", "the mailbox cannot hold mail",
			                 "mailboxIds");
		}
		if (i == 0) {
			t->account_id = account;
			t->account_key = key_text;
		} else {
			free(key_text);
		}
	}
	return NULL;
}

/* Put a new Email (created in t->ids[0]) into the other mailboxes of t. */
static int add_other_mailboxes(struct jmap_mail_ctx *ctx, int64_t email_id, const struct target *t,
                               const char **err)
{
	for (size_t i = 1; i < t->n; i++)
		if (store_local_copy(ctx->store, email_id, t->ids[i], NULL, err) < 0)
			return -1;
	return 0;
}

static json_t *received_at(json_t *obj, int64_t *when_r)
{
	json_t *v = json_object_get(obj, "receivedAt");
	*when_r = (int64_t)time(NULL);
	if (v != NULL && !json_is_null(v) && !mime_build_parse_date(json_string_value(v), when_r))
		return set_error("invalidProperties", "receivedAt is an RFC 3339 UTC date",
		                 "receivedAt");
	return NULL;
}

/* --- blobs ------------------------------------------------------------------ */

struct blob_ctx {
	struct jmap_mail_ctx *ctx;
	struct jmap_call *call;
};

static int read_blob(struct jmap_mail_ctx *ctx, int64_t blob_id, size_t max, void **data_r,
                     size_t *len_r)
{
	const char *err;
	uint64_t size;
	int found = store_blob_size(ctx->store, blob_id, &size, &err);
	if (found <= 0)
		return found;
	if (size > max)
		size = max + 1; /* enough for the caller to see it is too large */
	char *data = malloc(size + 1);
	if (data == NULL || store_blob_read(ctx->store, blob_id, 0, data, (size_t)size, &err) < 0) {
		free(data);
		return -1;
	}
	*data_r = data;
	*len_r = (size_t)size;
	return 1;
}

static int build_blob(void *context, const char *blob_id, void **data_r, size_t *len_r)
{
	struct blob_ctx *bc = context;
	int64_t id;
	const char *resolved, *err;
	if (jmap_call_resolve_id(bc->call, blob_id, &resolved, &err) < 0 ||
	    !jmap_mail_blob_id(resolved, &id))
		return 0;
	return read_blob(bc->ctx, id, JMAP_SET_MAX_EMAIL_SIZE, data_r, len_r);
}

/* Store message bytes; 0 / -1. */
static int store_bytes(struct jmap_mail_ctx *ctx, const char *data, size_t len, int64_t *blob_r)
{
	const char *err;
	struct store_blob_writer *w;
	if (store_blob_begin(ctx->store, len, &w, &err) < 0)
		return -1;
	if (store_blob_write(w, data, len, &err) < 0 || store_blob_finish(&w, blob_r, &err) < 0) {
		store_blob_abort(&w);
		return -1;
	}
	return 0;
}

static json_t *created_json(struct jmap_mail_ctx *ctx, int64_t id, int64_t blob_id, uint64_t size)
{
	return json_pack("{s:o,s:o,s:o,s:I}", "id", jmap_prefixed('E', id), "blobId",
	                 jmap_prefixed('B', blob_id), "threadId", jmap_thread_id(ctx, id), "size",
	                 (json_int_t)size);
}

/* --- create ----------------------------------------------------------------- */

/* Returns 0 with *created_r or *error_r (a SetError), -1 on a store failure. */
static int email_create(struct jmap_mail_ctx *ctx, struct jmap_call *call, json_t *obj,
                        json_t **created_r, json_t **error_r)
{
	struct target t = {0};
	unsigned flags = 0;
	char kw[MAX_KEYWORDS_TEXT + 24];
	int64_t when;
	int ret = 0;
	if (!json_is_object(obj)) {
		*error_r = set_error("invalidProperties", "an Email object", NULL);
		return 0;
	}
	if ((*error_r = mailbox_ids(ctx, call, json_object_get(obj, "mailboxIds"), &t)) != NULL)
		goto out;
	json_t *k = json_object_get(obj, "keywords");
	kw[0] = '\0';
	if (k != NULL && keywords_to_store(k, 0, &flags, kw, sizeof(kw)) < 0) {
		*error_r = set_error("invalidProperties",
		                     "keywords: lower-case keywords set to true", "keywords");
		goto out;
	}
	if ((*error_r = received_at(obj, &when)) != NULL)
		goto out;
	/* A draft without "from" gets the From of the identity of its
	 * mailbox's account, display name included (jmap-identity.c). */
	json_t *built = json_incref(obj);
	int64_t hub_account;
	char *end;
	if (json_object_get(obj, "from") == NULL && t.account_key != NULL &&
	    strncmp(t.account_key, "account:", 8) == 0 &&
	    (hub_account = strtoll(t.account_key + 8, &end, 10)) > 0 && *end == '\0') {
		json_t *from = jmap_identity_from(ctx, hub_account);
		json_t *copy = from != NULL ? json_copy(obj) : NULL;
		if (copy != NULL && json_object_set_new(copy, "from", from) == 0) {
			json_decref(built);
			built = copy;
		} else {
			json_decref(copy);
			if (copy == NULL)
				json_decref(from);
		}
	}
	struct blob_ctx bc = {ctx, call};
	struct mime_build_error be;
	char *data = NULL;
	size_t len = 0;
	int built_r = mime_build_email(built, build_blob, &bc, JMAP_SET_MAX_EMAIL_SIZE,
	                               (int64_t)time(NULL), &data, &len, &be);
	json_decref(built);
	if (built_r < 0) {
		static const char *const types[] = {
		    [MIME_BUILD_INVALID] = "invalidProperties",
		    [MIME_BUILD_BLOB_NOT_FOUND] = "blobNotFound",
		    [MIME_BUILD_TOO_LARGE] = "tooLarge",
		    [MIME_BUILD_FAILED] = "serverFail",
		};
		*error_r = set_error(
		    types[be.status], be.description,
		    be.property[0] != '\0' && be.status == MIME_BUILD_INVALID ? be.property : NULL);
		if (be.status == MIME_BUILD_BLOB_NOT_FOUND)
			json_object_set_new(*error_r, "notFound", json_pack("[s]", be.property));
		goto out;
	}
	int64_t blob_id, id;
	const char *err;
	if (store_bytes(ctx, data, len, &blob_id) < 0 ||
	    store_local_add(ctx->store, t.mailbox_id, blob_id, flags, kw, when, "create", &id,
	                    &err) < 0 ||
	    add_other_mailboxes(ctx, id, &t, &err) < 0)
		ret = -1;
	else
		*created_r = created_json(ctx, id, blob_id, len);
	free(data);
out:
	free(t.account_key);
	return ret;
}

/* --- update ----------------------------------------------------------------- */

/* "a~1b" -> "a/b" (RFC 6901); false if malformed. */
static bool unescape_pointer(const char *in, char *out, size_t size)
{
	size_t n = 0;
	for (const char *p = in; *p != '\0'; p++) {
		char c = *p;
		if (c == '/')
			return false;
		if (c == '~') {
			if (p[1] != '0' && p[1] != '1')
				return false;
			c = p[1] == '0' ? '~' : '/';
			p++;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return n > 0;
}

/*
 * Make the Email's memberships match the mailboxes of t: a mailbox it
 * leaves and one it enters pair up as a move (the membership keeps its
 * server origin), further new mailboxes are copies, further left ones
 * expunges (after the copies, so the Email never has none). Duplicate
 * memberships in a left mailbox (two server copies) all go.
 */
static int apply_mailboxes(struct jmap_mail_ctx *ctx, int64_t email_id, const struct target *t,
                           const char **err)
{
	int64_t *mids = NULL, *boxes = NULL;
	size_t n = 0;
	if (store_email_members(ctx->store, email_id, &mids, &boxes, &n, err) < 0)
		return -1;
	int ret = 0;
	/* Mailboxes to enter. */
	int64_t *enter = calloc(t->n + 1, sizeof(*enter));
	size_t n_enter = 0, next_enter = 0;
	if (enter == NULL)
		ret = -1;
	for (size_t i = 0; ret == 0 && i < t->n; i++) {
		bool have = false;
		for (size_t k = 0; k < n && !have; k++)
			have = boxes[k] == t->ids[i];
		if (!have)
			enter[n_enter++] = t->ids[i];
	}
	/* Memberships to leave: moved while there is a mailbox to enter. */
	bool *leave = calloc(n + 1, sizeof(*leave));
	if (leave == NULL)
		ret = -1;
	for (size_t k = 0; ret == 0 && k < n; k++) {
		if (target_has(t, boxes[k]))
			continue;
		if (next_enter < n_enter)
			ret = store_local_move(ctx->store, mids[k], enter[next_enter++], err);
		else
			leave[k] = true;
	}
	for (; ret == 0 && next_enter < n_enter; next_enter++)
		ret = store_local_copy(ctx->store, email_id, enter[next_enter], NULL, err);
	for (size_t k = 0; ret == 0 && k < n; k++)
		if (leave[k])
			ret = store_local_expunge(ctx->store, mids[k], err);
	free(leave);
	free(enter);
	free(mids);
	free(boxes);
	return ret;
}

static int email_update(struct jmap_mail_ctx *ctx, struct jmap_call *call, int64_t id,
                        json_t *patch, json_t **error_r)
{
	const char *err;
	struct store_email e;
	int found = store_email_get(ctx->store, id, &e, &err);
	if (found < 0)
		return -1;
	if (found == 0 || (ctx->store_account_id != 0 && e.account_id != ctx->store_account_id)) {
		*error_r = set_error("notFound", NULL, NULL);
		return 0;
	}
	if (!json_is_object(patch)) {
		*error_r = set_error("invalidPatch", "a PatchObject", NULL);
		return 0;
	}
	json_t *kws = keywords_from_store(e.flags, e.keywords);
	json_t *boxes = json_object();
	int64_t *cur_mids = NULL, *cur_boxes = NULL;
	size_t n_cur = 0;
	if (store_email_members(ctx->store, id, &cur_mids, &cur_boxes, &n_cur, &err) < 0) {
		json_decref(kws);
		json_decref(boxes);
		return -1;
	}
	for (size_t i = 0; i < n_cur; i++) {
		char cur[32];
		snprintf(cur, sizeof(cur), "M%lld", (long long)cur_boxes[i]);
		json_object_set_new(boxes, cur, json_true());
	}
	free(cur_mids);
	free(cur_boxes);
	bool whole_kw = false, part_kw = false, whole_mb = false, part_mb = false;
	struct target *tp = calloc(1, sizeof(*tp));
	if (tp == NULL) {
		json_decref(kws);
		json_decref(boxes);
		return -1;
	}
	struct target *const t = tp;
	const char *key;
	json_t *v;
	int ret = 0;
	json_object_foreach(patch, key, v)
	{
		char name[300];
		const char *bad = NULL;
		if (strcmp(key, "keywords") == 0) {
			whole_kw = true;
			json_decref(kws);
			kws = json_is_object(v) ? json_deep_copy(v) : json_object();
			if (!json_is_object(v))
				bad = "keywords";
		} else if (strncmp(key, "keywords/", 9) == 0) {
			part_kw = true;
			if (!unescape_pointer(key + 9, name, sizeof(name)) ||
			    !valid_keyword(name) || !(json_is_true(v) || json_is_null(v)))
				bad = key;
			else if (json_is_true(v))
				json_object_set_new(kws, name, json_true());
			else
				json_object_del(kws, name);
		} else if (strcmp(key, "mailboxIds") == 0) {
			whole_mb = true;
			json_decref(boxes);
			boxes = json_is_object(v) ? json_deep_copy(v) : json_object();
		} else if (strncmp(key, "mailboxIds/", 11) == 0) {
			part_mb = true;
			int64_t mb;
			char canon[32];
			if (!unescape_pointer(key + 11, name, sizeof(name)) ||
			    !set_resolve_id(call, name, 'M', &mb) ||
			    !(json_is_true(v) || json_is_null(v))) {
				bad = "mailboxIds";
			} else {
				snprintf(canon, sizeof(canon), "M%lld", (long long)mb);
				if (json_is_true(v))
					json_object_set_new(boxes, canon, json_true());
				else
					json_object_del(boxes, canon);
			}
		} else {
			bad = key;
		}
		if (bad == NULL && ((whole_kw && part_kw) || (whole_mb && part_mb)))
			bad = whole_kw && part_kw ? "keywords" : "mailboxIds";
		if (bad != NULL) {
			*error_r = set_error("invalidProperties",
			                     "only keywords and mailboxIds can change (whole or "
			                     "by patch path, not both)",
			                     bad);
			goto out;
		}
	}
	unsigned flags;
	char kw[MAX_KEYWORDS_TEXT + 24];
	if (keywords_to_store(kws, e.flags, &flags, kw, sizeof(kw)) < 0) {
		*error_r = set_error("invalidProperties",
		                     "keywords: lower-case keywords set to true", "keywords");
		goto out;
	}
	if ((*error_r = mailbox_ids(ctx, call, boxes, t)) != NULL)
		goto out;
	if (t->account_id != e.account_id) {
		*error_r = set_error("invalidProperties",
		                     "the mailbox belongs to another account: an Email moves only "
		                     "between mailboxes of the account it is in (copy it instead)",
		                     "mailboxIds");
		goto out;
	}
	/* The flags as stored may be upper case (IMAP keywords): compare what
	 * JMAP sees, so an unchanged set records nothing. */
	json_t *before = keywords_from_store(e.flags, e.keywords);
	bool kw_same = json_equal(before, kws) &&
	               (flags & ~STORE_FLAG_DELETED) == (e.flags & ~STORE_FLAG_DELETED);
	json_decref(before);
	if (!kw_same && store_local_set_flags(ctx->store, id, flags, kw, &err) < 0)
		ret = -1;
	else if ((whole_mb || part_mb) && apply_mailboxes(ctx, id, t, &err) < 0)
		ret = -1;
out:
	free(t->account_key);
	free(tp);
	json_decref(kws);
	json_decref(boxes);
	return ret;
}

/* --- the methods ------------------------------------------------------------ */

static int finish(struct jmap_mail_ctx *ctx, struct jmap_call *call, const char *name, json_t *resp,
                  const char *old_state, const char **error_type_r)
{
	const char *err;
	if (store_commit(ctx->store, &err) < 0) {
		json_decref(resp);
		*error_type_r = "serverFail";
		return -1;
	}
	snprintf(ctx->state, sizeof(ctx->state), "%llu",
	         (unsigned long long)store_modseq(ctx->store));
	json_object_set_new(resp, "accountId", json_string(ctx->account_id));
	json_object_set_new(resp, "oldState", json_string(old_state));
	json_object_set_new(resp, "newState", json_string(ctx->state));
	return jmap_call_respond(call, name, resp, &err);
}

/* Common argument checks of /set and /import: 0 ok, -1 method error. */
static int begin_set(struct jmap_mail_ctx *ctx, json_t *args, const char *const *allowed,
                     size_t objects, const char **error_type_r, const char **description_r)
{
	const char *err;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	if (jmap_unknown_key(args, allowed) != NULL) {
		*error_type_r = "invalidArguments";
		*description_r = "unknown argument";
		return -1;
	}
	if (objects > JMAP_SET_MAX_OBJECTS) {
		*error_type_r = "requestTooLarge";
		*description_r = "more than maxObjectsInSet objects";
		return -1;
	}
	if (set_check_state(ctx, args, error_type_r) < 0)
		return -1;
	if (store_begin(ctx->store, &err) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	/* Another writer (a sync) may have moved the state since the request
	 * started: ifInState is checked against what we now hold. */
	char now[32];
	snprintf(now, sizeof(now), "%llu", (unsigned long long)store_modseq(ctx->store));
	json_t *s = json_object_get(args, "ifInState");
	if (json_is_string(s) && strcmp(json_string_value(s), now) != 0) {
		store_rollback(ctx->store);
		*error_type_r = "stateMismatch";
		return -1;
	}
	snprintf(ctx->state, sizeof(ctx->state), "%s", now);
	return 0;
}

static bool object_or_null(json_t *v)
{
	return v == NULL || json_is_null(v) || json_is_object(v);
}

int jmap_email_set(void *context, struct jmap_call *call, json_t *args, const char **error_type_r,
                   const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	static const char *const allowed[] = {"accountId", "ifInState", "create",
	                                      "update",    "destroy",   NULL};
	json_t *create = json_object_get(args, "create"), *update = json_object_get(args, "update");
	json_t *destroy = json_object_get(args, "destroy");
	if (!object_or_null(create) || !object_or_null(update) ||
	    (destroy != NULL && !json_is_null(destroy) && !json_is_array(destroy))) {
		*error_type_r = "invalidArguments";
		*description_r = "create and update are objects, destroy an array";
		return -1;
	}
	size_t objects = json_object_size(create) + json_object_size(update) +
	                 (json_is_array(destroy) ? json_array_size(destroy) : 0);
	if (begin_set(ctx, args, allowed, objects, error_type_r, description_r) < 0)
		return -1;
	char old_state[32];
	snprintf(old_state, sizeof(old_state), "%s", ctx->state);
	json_t *created = json_object(), *not_created = json_object();
	json_t *updated = json_object(), *not_updated = json_object();
	json_t *destroyed = json_array(), *not_destroyed = json_object();
	const char *key, *err;
	json_t *v;
	int fatal = 0;
	json_object_foreach(create, key, v)
	{
		json_t *ok = NULL, *bad = NULL;
		if (!jmap_is_id(key)) {
			bad = set_error("invalidProperties", "creation ids are Ids", NULL);
		} else if ((fatal = email_create(ctx, call, v, &ok, &bad)) < 0) {
			break;
		}
		if (ok != NULL) {
			json_object_set_new(created, key, ok);
			jmap_call_set_created_id(
			    call, key, json_string_value(json_object_get(ok, "id")), &err);
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
		if (!set_resolve_id(call, key, 'E', &id))
			bad = set_error("notFound", NULL, NULL);
		else if ((fatal = email_update(ctx, call, id, v, &bad)) < 0)
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
		int64_t id;
		struct store_email e;
		int found =
		    jmap_list_id(call, v, 'E', &id) ? store_email_get(ctx->store, id, &e, &err) : 0;
		if (found == 1 && ctx->store_account_id != 0 &&
		    e.account_id != ctx->store_account_id)
			found = 0; /* another JMAP account's */
		if (found < 0 || (found == 1 && store_local_destroy(ctx->store, id, &err) < 0)) {
			fatal = -1;
			break;
		}
		if (found == 1) {
			json_array_append_new(destroyed, jmap_prefixed('E', id));
			continue;
		}
		char *key_text = jmap_destroy_key(v);
		if (key_text == NULL) {
			fatal = -1;
			break;
		}
		json_object_set_new(not_destroyed, key_text,
		                    json_is_string(v)
		                        ? set_error("notFound", NULL, NULL)
		                        : set_error("invalidArguments", "an Id is a string", NULL));
		free(key_text);
	}
	json_t *resp = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "created", created, "notCreated",
	                         not_created, "updated", updated, "notUpdated", not_updated,
	                         "destroyed", destroyed, "notDestroyed", not_destroyed);
	if (fatal < 0) {
		store_rollback(ctx->store);
		json_decref(resp);
		*error_type_r = "serverFail";
		*description_r = "the store failed; nothing was changed";
		return -1;
	}
	return finish(ctx, call, "Email/set", resp, old_state, error_type_r);
}

/* A message starts with a header field ("Name:"), as RFC 5322 has it. */
static bool looks_like_message(const char *data, size_t len)
{
	size_t i = 0;
	while (i < len && data[i] > 0x20 && data[i] < 0x7f && data[i] != ':')
		i++;
	return i > 0 && i < len && data[i] == ':';
}

int jmap_email_import(void *context, struct jmap_call *call, json_t *args,
                      const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	static const char *const allowed[] = {"accountId", "ifInState", "emails", NULL};
	json_t *emails = json_object_get(args, "emails");
	if (!json_is_object(emails)) {
		*error_type_r = "invalidArguments";
		*description_r = "emails is an object";
		return -1;
	}
	if (begin_set(ctx, args, allowed, json_object_size(emails), error_type_r, description_r) <
	    0)
		return -1;
	char old_state[32];
	snprintf(old_state, sizeof(old_state), "%s", ctx->state);
	json_t *created = json_object(), *not_created = json_object();
	const char *key, *err;
	json_t *v;
	int fatal = 0;
	json_object_foreach(emails, key, v)
	{
		struct target t = {0};
		json_t *bad = NULL;
		unsigned flags = 0;
		char kw[MAX_KEYWORDS_TEXT + 24] = "";
		int64_t blob_id, when, id;
		uint64_t size = 0;
		const char *k2;
		json_t *v2;
		json_object_foreach(v, k2, v2)
		{
			if (bad == NULL && strcmp(k2, "blobId") != 0 &&
			    strcmp(k2, "mailboxIds") != 0 && strcmp(k2, "keywords") != 0 &&
			    strcmp(k2, "receivedAt") != 0)
				bad = set_error("invalidProperties", "not an EmailImport property",
				                k2);
		}
		json_t *kwj = json_object_get(v, "keywords");
		if (bad != NULL) {
			/* reported below */
		} else if (!jmap_is_id(key) || !json_is_object(v)) {
			bad = set_error("invalidProperties", "an EmailImport object", NULL);
		} else if (!set_resolve_id(call, json_string_value(json_object_get(v, "blobId")),
		                           'B', &blob_id) ||
		           store_blob_size(ctx->store, blob_id, &size, &err) != 1) {
			/* RFC 8621 4.8: a blobId that is not found is an invalid
			 * property (blobNotFound is Email/set's, for parts). */
			bad = set_error("invalidProperties", "blobId: no such blob", "blobId");
		} else if (size > JMAP_SET_MAX_EMAIL_SIZE) {
			bad = set_error("tooLarge", "the message is too large", NULL);
		} else if ((bad = mailbox_ids(ctx, call, json_object_get(v, "mailboxIds"), &t)) !=
		           NULL) {
			/* reported below */
		} else if (kwj != NULL && !json_is_null(kwj) &&
		           keywords_to_store(kwj, 0, &flags, kw, sizeof(kw)) < 0) {
			bad = set_error("invalidProperties",
			                "keywords: lower-case keywords set to true", "keywords");
		} else if ((bad = received_at(v, &when)) == NULL) {
			char head[1024];
			size_t n = size < sizeof(head) ? (size_t)size : sizeof(head);
			if (store_blob_read(ctx->store, blob_id, 0, head, n, &err) < 0) {
				fatal = -1;
			} else if (!looks_like_message(head, n)) {
				bad = set_error("invalidEmail",
				                "the blob is not an RFC 5322 message", NULL);
			} else if (store_local_add(ctx->store, t.mailbox_id, blob_id, flags, kw,
			                           when, "import", &id, &err) < 0 ||
			           add_other_mailboxes(ctx, id, &t, &err) < 0) {
				fatal = -1;
			} else {
				json_t *ok = created_json(ctx, id, blob_id, size);
				jmap_call_set_created_id(
				    call, key, json_string_value(json_object_get(ok, "id")), &err);
				json_object_set_new(created, key, ok);
			}
		}
		free(t.account_key);
		if (bad != NULL)
			json_object_set_new(not_created, key, bad);
		if (fatal < 0)
			break;
	}
	json_t *resp = json_pack("{s:o,s:o}", "created", created, "notCreated", not_created);
	if (fatal < 0) {
		store_rollback(ctx->store);
		json_decref(resp);
		*error_type_r = "serverFail";
		*description_r = "the store failed; nothing was changed";
		return -1;
	}
	return finish(ctx, call, "Email/import", resp, old_state, error_type_r);
}
