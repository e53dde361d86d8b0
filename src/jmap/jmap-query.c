/* Email/query, Email/queryChanges, Mailbox/query, Mailbox/queryChanges.
 * JSON arguments become a store_query (filter tree, sort) here; the store
 * compiles it to SQL (store-query.c). Mailboxes are few: their queries run
 * in memory. */
#include "jmap-query.h"
#include "jmap-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../mime/mime-envelope.h"
#include "../store/store-query.h"

/* --- Argument parsing -------------------------------------------------------- */

/* What parsing a request needs: the call (creation ids), strings made
 * here (lower-cased keywords), the node budget and the error. */
struct parse {
	struct jmap_call *call;
	int64_t account_id; /* the store account queried (0: all) */
	char *strings[STORE_QUERY_MAX_NODES * 2];
	size_t n_strings;
	size_t nodes;
	const char *error_type, *description;
};

static int fail(struct parse *p, const char *type, const char *description)
{
	p->error_type = type;
	p->description = description;
	return -1;
}

static void parse_free(struct parse *p)
{
	for (size_t i = 0; i < p->n_strings; i++)
		free(p->strings[i]);
	p->n_strings = 0;
}

/* A JMAP keyword (RFC 8621 4.1.1), lower-cased; NULL if invalid. */
static const char *keyword(struct parse *p, json_t *v)
{
	const char *k = json_string_value(v);
	size_t l = k != NULL ? strlen(k) : 0;
	if (l == 0 || l > 255 || p->n_strings == sizeof(p->strings) / sizeof(p->strings[0]))
		return NULL;
	char *out = malloc(l + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < l; i++) {
		unsigned char c = (unsigned char)k[i];
		if (c <= 0x20 || c >= 0x7f || strchr("(){]%*\"\\", c) != NULL) {
			free(out);
			return NULL;
		}
		out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	out[l] = '\0';
	p->strings[p->n_strings++] = out;
	return out;
}

/* RFC 3339 UTCDate "YYYY-MM-DDTHH:MM:SS[.fff]Z" -> seconds. */
static bool utc_date(const char *s, int64_t *t_r)
{
	if (s == NULL || strlen(s) < 20)
		return false;
	int v[6];
	static const int at[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
	static const char sep[6] = {'-', '-', 'T', ':', ':', 0};
	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int j = 0; j < len[i]; j++) {
			char c = s[at[i] + j];
			if (c < '0' || c > '9')
				return false;
			v[i] = v[i] * 10 + (c - '0');
		}
		if (sep[i] != 0 && s[at[i] + len[i]] != sep[i])
			return false;
	}
	const char *rest = s + 19;
	if (*rest == '.') {
		rest++;
		if (*rest < '0' || *rest > '9')
			return false;
		while (*rest >= '0' && *rest <= '9')
			rest++;
	}
	if (strcmp(rest, "Z") != 0 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 ||
	    v[4] > 59 || v[5] > 60)
		return false;
	struct tm tm = {.tm_year = v[0] - 1900,
	                .tm_mon = v[1] - 1,
	                .tm_mday = v[2],
	                .tm_hour = v[3],
	                .tm_min = v[4],
	                .tm_sec = v[5]};
	*t_r = (int64_t)timegm(&tm);
	return true;
}

static bool header_name_ok(const char *n)
{
	if (n == NULL || n[0] == '\0' || strlen(n) > 255)
		return false;
	for (; *n != '\0'; n++)
		if ((unsigned char)*n <= ' ' || (unsigned char)*n >= 127 || *n == ':')
			return false;
	return true;
}

static int add_child(struct parse *p, struct store_cond *parent, struct store_cond **child_r)
{
	if (++p->nodes > STORE_QUERY_MAX_NODES)
		return fail(p, "unsupportedFilter", "the filter has too many conditions");
	struct store_cond *n =
	    realloc(parent->children, (parent->n_children + 1) * sizeof(*parent->children));
	if (n == NULL)
		return fail(p, "serverFail", "out of memory");
	parent->children = n;
	*child_r = &n[parent->n_children++];
	memset(*child_r, 0, sizeof(**child_r));
	return 0;
}

static int mailbox_id(struct parse *p, json_t *v, int64_t *id_r)
{
	const char *id;
	const char *err;
	if (!json_is_string(v))
		return fail(p, "invalidArguments", "a mailbox id must be a string");
	if (jmap_call_resolve_id(p->call, json_string_value(v), &id, &err) < 0)
		return fail(p, "invalidArguments", "not a mailbox id");
	if (!jmap_parse_id(id, 'M', id_r))
		*id_r = 0; /* not one of ours: matches no mailbox */
	return 0;
}

/* One property of a FilterCondition into c. */
static int email_condition(struct parse *p, const char *key, json_t *v, struct store_cond *c)
{
	static const struct {
		const char *name;
		enum store_cond_kind kind;
	} kw[] = {
	    {"allInThreadHaveKeyword", STORE_COND_ALL_IN_THREAD_KEYWORD},
	    {"someInThreadHaveKeyword", STORE_COND_SOME_IN_THREAD_KEYWORD},
	    {"noneInThreadHaveKeyword", STORE_COND_NONE_IN_THREAD_KEYWORD},
	    {"hasKeyword", STORE_COND_HAS_KEYWORD},
	    {"notKeyword", STORE_COND_NOT_KEYWORD},
	};
	static const char *const text[] = {"text", "from", "to", "cc", "bcc", "subject", "body"};
	for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++) {
		if (strcmp(key, kw[i].name) == 0) {
			c->kind = kw[i].kind;
			c->text = keyword(p, v);
			return c->text != NULL ? 0 : fail(p, "invalidArguments", "invalid keyword");
		}
	}
	for (size_t i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		if (strcmp(key, text[i]) == 0) {
			if (!json_is_string(v))
				return fail(p, "invalidArguments", "a text condition is a string");
			c->kind = STORE_COND_TEXT;
			c->name = text[i];
			c->text = json_string_value(v);
			return 0;
		}
	}
	if (strcmp(key, "inMailbox") == 0) {
		c->kind = STORE_COND_IN_MAILBOX;
		if (mailbox_id(p, v, &c->num) < 0)
			return -1;
		if (c->num == 0)
			c->kind = STORE_COND_NONE;
		return 0;
	}
	if (strcmp(key, "inMailboxOtherThan") == 0) {
		c->kind = STORE_COND_IN_MAILBOX_OTHER_THAN;
		if (!json_is_array(v) || json_array_size(v) > STORE_QUERY_MAX_IDS)
			return fail(p, "invalidArguments", "inMailboxOtherThan is a list of ids");
		c->ids = calloc(json_array_size(v) + 1, sizeof(*c->ids));
		if (c->ids == NULL)
			return fail(p, "serverFail", "out of memory");
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			int64_t id;
			if (mailbox_id(p, e, &id) < 0)
				return -1;
			if (id != 0)
				c->ids[c->n_ids++] = id;
		}
		return 0;
	}
	if (strcmp(key, "before") == 0 || strcmp(key, "after") == 0) {
		c->kind = key[0] == 'b' ? STORE_COND_BEFORE : STORE_COND_AFTER;
		return utc_date(json_string_value(v), &c->num)
		           ? 0
		           : fail(p, "invalidArguments", "before/after take a UTCDate");
	}
	if (strcmp(key, "minSize") == 0 || strcmp(key, "maxSize") == 0) {
		c->kind = key[1] == 'i' ? STORE_COND_MIN_SIZE : STORE_COND_MAX_SIZE;
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return fail(p, "invalidArguments", "minSize/maxSize take an UnsignedInt");
		c->num = json_integer_value(v);
		return 0;
	}
	if (strcmp(key, "hasAttachment") == 0) {
		if (!json_is_boolean(v))
			return fail(p, "invalidArguments", "hasAttachment takes a boolean");
		c->kind = STORE_COND_HAS_ATTACHMENT;
		c->flag = json_is_true(v);
		return 0;
	}
	if (strcmp(key, "header") == 0) {
		size_t n = json_array_size(v);
		json_t *name = json_array_get(v, 0), *value = json_array_get(v, 1);
		if (!json_is_array(v) || n < 1 || n > 2 ||
		    !header_name_ok(json_string_value(name)) || (n == 2 && !json_is_string(value)))
			return fail(p, "invalidArguments",
			            "header takes [name] or [name, value] (strings)");
		c->kind = STORE_COND_HEADER;
		c->name = json_string_value(name);
		c->text = n == 2 ? json_string_value(value) : NULL;
		return 0;
	}
	return fail(p, "unsupportedFilter", "unknown filter condition");
}

typedef int condition_fn(struct parse *p, const char *key, json_t *v, struct store_cond *c);

/* A Filter (FilterOperator or FilterCondition) into c. */
static int filter(struct parse *p, json_t *f, unsigned depth, condition_fn *condition,
                  struct store_cond *c)
{
	if (!json_is_object(f))
		return fail(p, "invalidArguments", "a filter is an object");
	if (depth > STORE_QUERY_MAX_DEPTH)
		return fail(p, "unsupportedFilter", "the filter is nested too deeply");
	json_t *op = json_object_get(f, "operator");
	if (op != NULL) {
		const char *o = json_string_value(op);
		json_t *conds = json_object_get(f, "conditions");
		if (o == NULL || !json_is_array(conds) || json_object_size(f) != 2)
			return fail(p, "invalidArguments",
			            "a FilterOperator has operator and conditions only");
		if (strcmp(o, "AND") == 0)
			c->kind = STORE_COND_AND;
		else if (strcmp(o, "OR") == 0)
			c->kind = STORE_COND_OR;
		else if (strcmp(o, "NOT") == 0)
			c->kind = STORE_COND_NOT;
		else
			return fail(p, "unsupportedFilter", "operator is AND, OR or NOT");
		size_t i;
		json_t *e;
		json_array_foreach(conds, i, e)
		{
			struct store_cond *child;
			if (add_child(p, c, &child) < 0 ||
			    filter(p, e, depth + 1, condition, child) < 0)
				return -1;
		}
		return 0;
	}
	/* A FilterCondition: all its properties must hold. */
	c->kind = STORE_COND_AND;
	const char *key;
	json_t *v;
	json_object_foreach(f, key, v)
	{
		struct store_cond *child;
		if (add_child(p, c, &child) < 0 || condition(p, key, v, child) < 0)
			return -1;
	}
	return 0;
}

static int collation(struct parse *p, json_t *c, enum store_collation *coll_r)
{
	const char *name = json_string_value(c);
	if (c == NULL || json_is_null(c) ||
	    (name != NULL && strcmp(name, "i;unicode-casemap") == 0))
		*coll_r = STORE_COLLATION_UNICODE_CASEMAP;
	else if (name != NULL && strcmp(name, "i;ascii-casemap") == 0)
		*coll_r = STORE_COLLATION_ASCII_CASEMAP;
	else if (name != NULL && strcmp(name, "i;ascii-numeric") == 0)
		*coll_r = STORE_COLLATION_ASCII_NUMERIC;
	else
		return fail(p, "unsupportedSort", "unsupported collation");
	return 0;
}

static int email_sort(struct parse *p, json_t *sort, struct store_sort *out, size_t *n_r)
{
	static const struct {
		const char *name;
		enum store_sort_property prop;
	} props[] = {
	    {"receivedAt", STORE_SORT_RECEIVED_AT},
	    {"sentAt", STORE_SORT_SENT_AT},
	    {"size", STORE_SORT_SIZE},
	    {"from", STORE_SORT_FROM},
	    {"to", STORE_SORT_TO},
	    {"subject", STORE_SORT_SUBJECT},
	    {"hasKeyword", STORE_SORT_HAS_KEYWORD},
	    {"allInThreadHaveKeyword", STORE_SORT_ALL_IN_THREAD_KEYWORD},
	    {"someInThreadHaveKeyword", STORE_SORT_SOME_IN_THREAD_KEYWORD},
	};
	*n_r = 0;
	if (sort == NULL || json_is_null(sort))
		return 0;
	if (!json_is_array(sort))
		return fail(p, "invalidArguments", "sort is a list of comparators");
	if (json_array_size(sort) > STORE_QUERY_MAX_SORT)
		return fail(p, "unsupportedSort", "too many comparators");
	size_t i;
	json_t *c;
	json_array_foreach(sort, i, c)
	{
		const char *prop = json_string_value(json_object_get(c, "property"));
		json_t *asc = json_object_get(c, "isAscending");
		if (prop == NULL || (asc != NULL && !json_is_boolean(asc)))
			return fail(p, "invalidArguments", "a comparator needs a property");
		struct store_sort *so = &out[i];
		memset(so, 0, sizeof(*so));
		size_t k = 0;
		while (k < sizeof(props) / sizeof(props[0]) && strcmp(props[k].name, prop) != 0)
			k++;
		if (k == sizeof(props) / sizeof(props[0]))
			return fail(p, "unsupportedSort", "unsupported sort property");
		so->property = props[k].prop;
		so->ascending = asc == NULL || json_is_true(asc); /* RFC 8620 5.5 */
		if (collation(p, json_object_get(c, "collation"), &so->collation) < 0)
			return -1;
		if (so->property == STORE_SORT_HAS_KEYWORD ||
		    so->property == STORE_SORT_ALL_IN_THREAD_KEYWORD ||
		    so->property == STORE_SORT_SOME_IN_THREAD_KEYWORD) {
			so->keyword = keyword(p, json_object_get(c, "keyword"));
			if (so->keyword == NULL)
				return fail(p, "invalidArguments",
				            "this sort needs a valid keyword");
		}
		(*n_r)++;
	}
	return 0;
}

/* An Int (RFC 8620 1.3: -2^53+1 to 2^53-1, so that position and
 * anchorOffset arithmetic cannot overflow) or UnsignedInt argument. */
static bool optional_int(json_t *args, const char *name, bool non_negative, json_int_t *v_r)
{
	const json_int_t max = ((json_int_t)1 << 53) - 1;
	json_t *v = json_object_get(args, name);
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_integer(v) || (non_negative && json_integer_value(v) < 0) ||
	    json_integer_value(v) > max || json_integer_value(v) < -max)
		return false;
	*v_r = json_integer_value(v);
	return true;
}

static bool optional_bool(json_t *args, const char *name, bool *v_r)
{
	json_t *v = json_object_get(args, name);
	if (v == NULL || json_is_null(v))
		return true;
	if (!json_is_boolean(v))
		return false;
	*v_r = json_is_true(v);
	return true;
}

/* The arguments Email/query and Email/queryChanges share. */
struct email_args {
	struct store_cond root;
	bool has_filter;
	struct store_sort sort[STORE_QUERY_MAX_SORT];
	struct store_query q;
};

static int email_args_parse(struct parse *p, json_t *args, struct email_args *a)
{
	memset(a, 0, sizeof(*a));
	json_t *f = json_object_get(args, "filter");
	if (f != NULL && !json_is_null(f)) {
		a->has_filter = true;
		if (filter(p, f, 0, email_condition, &a->root) < 0)
			return -1;
		a->q.filter = &a->root;
	}
	a->q.account_id = p->account_id;
	if (email_sort(p, json_object_get(args, "sort"), a->sort, &a->q.n_sort) < 0)
		return -1;
	a->q.sort = a->sort;
	if (!optional_bool(args, "collapseThreads", &a->q.collapse_threads) ||
	    !optional_bool(args, "calculateTotal", &a->q.want_total))
		return fail(p, "invalidArguments",
		            "collapseThreads and calculateTotal are booleans");
	return 0;
}

static const char *query_error_type(enum store_query_error kind)
{
	switch (kind) {
	case STORE_QUERY_UNSUPPORTED_FILTER:
		return "unsupportedFilter";
	case STORE_QUERY_ANCHOR_NOT_FOUND:
		return "anchorNotFound";
	case STORE_QUERY_TOO_MANY_CHANGES:
		return "tooManyChanges";
	case STORE_QUERY_CANNOT_CALCULATE:
		return "cannotCalculateChanges";
	case STORE_QUERY_FAILED:
		break;
	}
	return "serverFail";
}

static json_t *id_array(char prefix, const int64_t *ids, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, jmap_prefixed(prefix, ids[i]));
	return arr;
}

/* Window arguments (position, anchor, anchorOffset, limit) into q;
 * *capped_r when the server's limit applied. */
static int window_args(struct parse *p, json_t *args, char prefix, struct store_query *q,
                       bool *anchor_unknown_r, bool *capped_r)
{
	json_int_t position = 0, offset = 0, limit = JMAP_MAIL_MAX_QUERY_LIMIT;
	*capped_r = true;
	*anchor_unknown_r = false;
	json_t *l = json_object_get(args, "limit");
	if (!optional_int(args, "position", false, &position) ||
	    !optional_int(args, "anchorOffset", false, &offset) ||
	    !optional_int(args, "limit", true, &limit))
		return fail(p, "invalidArguments",
		            "position and anchorOffset are integers, limit non-negative");
	if (l != NULL && !json_is_null(l) && limit <= JMAP_MAIL_MAX_QUERY_LIMIT)
		*capped_r = false;
	if (limit > JMAP_MAIL_MAX_QUERY_LIMIT)
		limit = JMAP_MAIL_MAX_QUERY_LIMIT;
	q->position = position;
	q->limit = (uint64_t)limit;
	json_t *anchor = json_object_get(args, "anchor");
	if (anchor != NULL && !json_is_null(anchor)) {
		const char *id, *err;
		if (!json_is_string(anchor) ||
		    jmap_call_resolve_id(p->call, json_string_value(anchor), &id, &err) < 0)
			return fail(p, "invalidArguments", "anchor is an id");
		q->has_anchor = true;
		q->anchor_offset = offset;
		if (!jmap_parse_id(id, prefix, &q->anchor))
			*anchor_unknown_r = true;
	}
	return 0;
}

static int email_query(void *context, struct jmap_call *call, json_t *args,
                       const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	struct parse p = {.call = call, .account_id = ctx->store_account_id};
	struct email_args *a = malloc(sizeof(*a));
	if (a == NULL) {
		*error_type_r = "serverFail";
		return -1;
	}
	int ret = -1;
	bool anchor_unknown, capped;
	if (email_args_parse(&p, args, a) < 0 ||
	    window_args(&p, args, 'E', &a->q, &anchor_unknown, &capped) < 0)
		goto out;
	if (anchor_unknown) {
		fail(&p, "anchorNotFound", NULL);
		goto out;
	}
	struct store_query_result r;
	enum store_query_error kind;
	const char *err;
	if (store_email_query_run(ctx->store, &a->q, &r, &kind, &err) < 0) {
		fail(&p, query_error_type(kind), kind == STORE_QUERY_FAILED ? NULL : err);
		goto out;
	}
	json_t *resp = json_pack("{s:s,s:s,s:b,s:I,s:o}", "accountId", ctx->account_id,
	                         "queryState", ctx->state, "canCalculateChanges", 1, "position",
	                         (json_int_t)r.position, "ids", id_array('E', r.ids, r.n_ids));
	free(r.ids);
	if (a->q.want_total)
		json_object_set_new(resp, "total", json_integer((json_int_t)r.total));
	if (capped)
		json_object_set_new(resp, "limit", json_integer((json_int_t)a->q.limit));
	ret = jmap_call_respond(call, "Email/query", resp, &err);
	if (ret < 0)
		fail(&p, "serverFail", NULL);
out:
	store_cond_free(&a->root);
	free(a);
	parse_free(&p);
	*error_type_r = p.error_type;
	*description_r = p.description;
	return ret;
}

/* sinceQueryState -> modseq; false when it is not one of our states. */
static bool parse_state(struct jmap_mail_ctx *ctx, json_t *args, uint64_t *since_r)
{
	const char *text = json_string_value(json_object_get(args, "sinceQueryState"));
	if (text == NULL || text[0] < '0' || text[0] > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long since = strtoull(text, &end, 10);
	unsigned long long current = strtoull(ctx->state, NULL, 10);
	if (errno != 0 || *end != '\0' || since > current)
		return false;
	*since_r = since;
	return true;
}

static json_t *added_json(char prefix, const int64_t *ids, const uint64_t *index, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr,
		                      json_pack("{s:o,s:I}", "id", jmap_prefixed(prefix, ids[i]),
		                                "index", (json_int_t)index[i]));
	return arr;
}

static int email_query_changes(void *context, struct jmap_call *call, json_t *args,
                               const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	struct parse p = {.call = call, .account_id = ctx->store_account_id};
	struct email_args *a = malloc(sizeof(*a));
	if (a == NULL) {
		*error_type_r = "serverFail";
		return -1;
	}
	int ret = -1;
	uint64_t since = 0;
	json_int_t max = 0;
	const char *err;
	if (email_args_parse(&p, args, a) < 0)
		goto out;
	json_t *since_v = json_object_get(args, "sinceQueryState");
	json_t *up_to = json_object_get(args, "upToId");
	if (!json_is_string(since_v) || !optional_int(args, "maxChanges", true, &max) ||
	    (up_to != NULL && !json_is_null(up_to) && !json_is_string(up_to))) {
		fail(&p, "invalidArguments", "sinceQueryState is required; maxChanges, upToId");
		goto out;
	}
	if (!parse_state(ctx, args, &since)) {
		fail(&p, "cannotCalculateChanges", "unknown state");
		goto out;
	}
	int64_t up_to_id = 0;
	bool has_up_to = false;
	if (json_is_string(up_to)) {
		const char *id;
		has_up_to = jmap_call_resolve_id(call, json_string_value(up_to), &id, &err) == 0 &&
		            jmap_parse_id(id, 'E', &up_to_id);
	}
	/* tooManyChanges is about the client's maxChanges; past the server's
	 * own bound the client had better query afresh. */
	uint64_t limit =
	    max > 0 && max < JMAP_QUERY_MAX_CHANGES ? (uint64_t)max : JMAP_QUERY_MAX_CHANGES;
	struct store_query_changes ch;
	enum store_query_error kind;
	if (store_email_query_changes(ctx->store, &a->q, since, limit, has_up_to, up_to_id, &ch,
	                              &kind, &err) < 0) {
		if (kind == STORE_QUERY_TOO_MANY_CHANGES && (max == 0 || max > (json_int_t)limit))
			kind = STORE_QUERY_CANNOT_CALCULATE;
		fail(&p, query_error_type(kind), kind == STORE_QUERY_FAILED ? NULL : err);
		goto out;
	}
	json_t *resp = json_pack("{s:s,s:s,s:s,s:o,s:o}", "accountId", ctx->account_id,
	                         "oldQueryState", json_string_value(since_v), "newQueryState",
	                         ctx->state, "removed", id_array('E', ch.removed, ch.n_removed),
	                         "added", added_json('E', ch.added, ch.added_index, ch.n_added));
	if (a->q.want_total)
		json_object_set_new(resp, "total", json_integer((json_int_t)ch.total));
	store_query_changes_free(&ch);
	ret = jmap_call_respond(call, "Email/queryChanges", resp, &err);
	if (ret < 0)
		fail(&p, "serverFail", NULL);
out:
	store_cond_free(&a->root);
	free(a);
	parse_free(&p);
	*error_type_r = p.error_type;
	*description_r = p.description;
	return ret;
}

/* --- Mailbox/query ------------------------------------------------------------ */

/* A mailbox as Mailbox/get shows it (the same derivation as jmap-mail.c's
 * mailbox_json: parent by name prefix, role in lower case, sortOrder 0
 * for the inbox and 10 for the others, always subscribed). */
struct mbox {
	int64_t id, parent_id;
	char *name;       /* display name: the last level, decoded */
	char *name_key;   /* i;unicode-casemap of it */
	const char *role; /* lower case or NULL */
	int sort_order;
	bool subscribed;
	bool match, placed; /* Mailbox/query's own */
};

static const char *role_lower(const char *role)
{
	static const char *const roles[][2] = {
	    {"Inbox", "inbox"}, {"Sent", "sent"}, {"Drafts", "drafts"},   {"Trash", "trash"},
	    {"Junk", "junk"},   {"All", "all"},   {"Archive", "archive"}, {"Flagged", "flagged"},
	};
	for (size_t i = 0; role != NULL && i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcmp(role, roles[i][0]) == 0)
			return roles[i][1];
	return NULL;
}

static void mboxes_free(struct mbox *m, size_t n);

static struct mbox *mboxes_build(const struct store_mailbox *b, size_t n)
{
	struct mbox *m = calloc(n + 1, sizeof(*m));
	if (m == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		m[i].id = b[i].id;
		const char *level = b[i].name;
		if (b[i].delim != 0) {
			const char *last = strrchr(b[i].name, b[i].delim);
			if (last != NULL && last[1] != '\0') {
				size_t plen = (size_t)(last - b[i].name);
				for (size_t j = 0; j < n; j++) {
					if (strlen(b[j].name) == plen &&
					    strncmp(b[j].name, b[i].name, plen) == 0) {
						m[i].parent_id = b[j].id;
						level = last + 1;
					}
				}
			}
		}
		m[i].role = role_lower(b[i].role);
		m[i].sort_order = m[i].role != NULL && strcmp(m[i].role, "inbox") == 0 ? 0 : 10;
		m[i].subscribed = true;
		m[i].name = jmap_mailbox_display(level);
		m[i].name_key = m[i].name != NULL ? mime_casemap(m[i].name) : NULL;
		if (m[i].name == NULL) {
			mboxes_free(m, i + 1);
			return NULL;
		}
	}
	return m;
}

static void mboxes_free(struct mbox *m, size_t n)
{
	for (size_t i = 0; m != NULL && i < n; i++) {
		free(m[i].name);
		free(m[i].name_key);
	}
	free(m);
}

/* Mailbox FilterCondition properties; they are checked in memory, so the
 * node keeps the JSON value (text) and kind NONE/AND is unused. */
enum mbox_prop { MB_PARENT, MB_NAME, MB_ROLE, MB_HAS_ANY_ROLE, MB_SUBSCRIBED };

static int mailbox_condition(struct parse *p, const char *key, json_t *v, struct store_cond *c)
{
	c->kind = STORE_COND_NONE; /* a leaf; num says which property */
	if (strcmp(key, "parentId") == 0) {
		c->num = MB_PARENT;
		c->ids = calloc(1, sizeof(*c->ids));
		if (c->ids == NULL)
			return fail(p, "serverFail", "out of memory");
		c->n_ids = 1;
		if (json_is_null(v))
			return 0;
		if (mailbox_id(p, v, &c->ids[0]) < 0)
			return -1;
		if (c->ids[0] == 0)
			c->ids[0] = -1; /* an id not ours: no mailbox has it as parent */
		return 0;
	}
	if (strcmp(key, "name") == 0 && json_is_string(v)) {
		c->num = MB_NAME;
		c->text = json_string_value(v);
		return 0;
	}
	if (strcmp(key, "role") == 0 && (json_is_null(v) || json_is_string(v))) {
		c->num = MB_ROLE;
		c->text = json_string_value(v);
		return 0;
	}
	if ((strcmp(key, "hasAnyRole") == 0 || strcmp(key, "isSubscribed") == 0) &&
	    json_is_boolean(v)) {
		c->num = key[0] == 'h' ? MB_HAS_ANY_ROLE : MB_SUBSCRIBED;
		c->flag = json_is_true(v);
		return 0;
	}
	if (strcmp(key, "parentId") == 0 || strcmp(key, "name") == 0 || strcmp(key, "role") == 0 ||
	    strcmp(key, "hasAnyRole") == 0 || strcmp(key, "isSubscribed") == 0)
		return fail(p, "invalidArguments", "wrong type of a Mailbox filter value");
	return fail(p, "unsupportedFilter", "unknown Mailbox filter condition");
}

static bool mailbox_matches(const struct store_cond *c, const struct mbox *m)
{
	switch (c->kind) {
	case STORE_COND_AND:
	case STORE_COND_OR:
	case STORE_COND_NOT: {
		bool any = false, all = true;
		for (size_t i = 0; i < c->n_children; i++) {
			bool r = mailbox_matches(&c->children[i], m);
			any |= r;
			all &= r;
		}
		return c->kind == STORE_COND_AND ? all : c->kind == STORE_COND_OR ? any : !any;
	}
	default:
		break;
	}
	switch ((enum mbox_prop)c->num) {
	case MB_PARENT:
		return m->parent_id == c->ids[0];
	case MB_NAME: {
		char *want = mime_casemap(c->text);
		bool r = want != NULL && m->name_key != NULL && strstr(m->name_key, want) != NULL;
		free(want);
		return r;
	}
	case MB_ROLE:
		return c->text == NULL ? m->role == NULL
		                       : m->role != NULL && strcmp(m->role, c->text) == 0;
	case MB_HAS_ANY_ROLE:
		return (m->role != NULL) == c->flag;
	case MB_SUBSCRIBED:
		return m->subscribed == c->flag;
	}
	return false;
}

struct mbox_sort {
	bool by_name, ascending;
	enum store_collation collation;
};
struct mbox_sorts {
	const struct mbox_sort *sort;
	size_t n;
};

static int mbox_cmp(const void *a, const void *b, void *arg)
{
	const struct mbox *x = *(const struct mbox *const *)a, *y = *(const struct mbox *const *)b;
	const struct mbox_sorts *sorts = arg;
	for (size_t i = 0; i < sorts->n; i++) {
		const struct mbox_sort *s = &sorts->sort[i];
		int c;
		if (!s->by_name)
			c = (x->sort_order > y->sort_order) - (x->sort_order < y->sort_order);
		else if (s->collation == STORE_COLLATION_ASCII_CASEMAP)
			c = strcasecmp(x->name, y->name);
		else if (s->collation == STORE_COLLATION_ASCII_NUMERIC)
			c = strtoull(x->name, NULL, 10) < strtoull(y->name, NULL, 10)   ? -1
			    : strtoull(x->name, NULL, 10) > strtoull(y->name, NULL, 10) ? 1
			                                                                : 0;
		else
			c = strcmp(x->name_key != NULL ? x->name_key : "",
			           y->name_key != NULL ? y->name_key : "");
		if (c != 0)
			return s->ascending ? c : -c;
	}
	return (x->id > y->id) - (x->id < y->id);
}

/* filterAsTree: m[i] and all its ancestors match. */
static bool tree_match(const struct mbox *m, size_t n, size_t i)
{
	for (size_t hops = 0; hops <= n; hops++) {
		if (!m[i].match)
			return false;
		size_t j = 0;
		while (m[i].parent_id != 0 && j < n && m[j].id != m[i].parent_id)
			j++;
		if (m[i].parent_id == 0 || j == n)
			return true;
		i = j;
	}
	return false;
}

#define MBOX_TREE_MAX_DEPTH 64

/* sortAsTree: each mailbox, then its children, siblings in the order of
 * sorted (RFC 8621 2.3: ancestors first; others compare by their nearest
 * ancestors that are siblings). */
static void tree_order(struct mbox **sorted, size_t n, int64_t parent, struct mbox **out,
                       size_t *placed, unsigned depth)
{
	if (depth > MBOX_TREE_MAX_DEPTH)
		return;
	for (size_t i = 0; i < n; i++) {
		if (sorted[i]->parent_id == parent && !sorted[i]->placed) {
			sorted[i]->placed = true;
			out[(*placed)++] = sorted[i];
			tree_order(sorted, n, sorted[i]->id, out, placed, depth + 1);
		}
	}
}

/* The current results of a Mailbox/query (ids in order). */
static int mailbox_results(struct jmap_mail_ctx *ctx, struct parse *p, json_t *args,
                           int64_t **ids_r, size_t *n_r)
{
	struct store_cond root = {0};
	struct mbox_sort sorts[STORE_QUERY_MAX_SORT];
	size_t n_sort = 0;
	json_t *f = json_object_get(args, "filter");
	bool sort_tree = false, filter_tree = false;
	if ((f != NULL && !json_is_null(f) && filter(p, f, 0, mailbox_condition, &root) < 0) ||
	    !optional_bool(args, "sortAsTree", &sort_tree) ||
	    !optional_bool(args, "filterAsTree", &filter_tree)) {
		store_cond_free(&root);
		return p->error_type != NULL ? -1
		                             : fail(p, "invalidArguments",
		                                    "sortAsTree and filterAsTree are booleans");
	}
	json_t *sort = json_object_get(args, "sort");
	if (sort != NULL && !json_is_null(sort)) {
		if (!json_is_array(sort) || json_array_size(sort) > STORE_QUERY_MAX_SORT) {
			store_cond_free(&root);
			return fail(p, "invalidArguments", "sort is a list of comparators");
		}
		size_t i;
		json_t *c;
		json_array_foreach(sort, i, c)
		{
			const char *prop = json_string_value(json_object_get(c, "property"));
			json_t *asc = json_object_get(c, "isAscending");
			if (prop == NULL ||
			    (strcmp(prop, "name") != 0 && strcmp(prop, "sortOrder") != 0)) {
				store_cond_free(&root);
				return fail(p,
				            prop == NULL ? "invalidArguments" : "unsupportedSort",
				            "Mailbox sorts: sortOrder, name");
			}
			sorts[n_sort].by_name = prop[0] == 'n';
			sorts[n_sort].ascending = asc == NULL || !json_is_false(asc);
			if (collation(p, json_object_get(c, "collation"),
			              &sorts[n_sort].collation) < 0) {
				store_cond_free(&root);
				return -1;
			}
			n_sort++;
		}
	} else {
		sorts[0] = (struct mbox_sort){false, true, STORE_COLLATION_UNICODE_CASEMAP};
		sorts[1] = (struct mbox_sort){true, true, STORE_COLLATION_UNICODE_CASEMAP};
		n_sort = 2;
	}
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	const char *err;
	if (store_mailboxes(ctx->store, ctx->store_account_id, &boxes, &n, &err) < 0) {
		store_cond_free(&root);
		return fail(p, "serverFail", NULL);
	}
	struct mbox *m = mboxes_build(boxes, n);
	struct mbox **sel = calloc(n + 1, sizeof(*sel));
	struct mbox **order = calloc(n + 1, sizeof(*order));
	int64_t *ids = calloc(n + 1, sizeof(*ids));
	size_t k = 0;
	if (m != NULL && sel != NULL && order != NULL && ids != NULL) {
		for (size_t i = 0; i < n; i++) {
			m[i].match = f == NULL || json_is_null(f) || mailbox_matches(&root, &m[i]);
			sel[i] = &m[i];
		}
		struct mbox_sorts ctx_sorts = {sorts, n_sort};
		qsort_r(sel, n, sizeof(*sel), mbox_cmp, &ctx_sorts);
		if (sort_tree) {
			/* Depth first over all mailboxes, siblings in sort order. */
			size_t placed = 0;
			tree_order(sel, n, 0, order, &placed, 0);
			for (size_t i = 0; i < n; i++) /* deeper than the bound: at the end */
				if (!sel[i]->placed)
					order[placed++] = sel[i];
			memcpy(sel, order, n * sizeof(*sel));
		}
		for (size_t i = 0; i < n; i++)
			if (filter_tree ? tree_match(m, n, (size_t)(sel[i] - m)) : sel[i]->match)
				ids[k++] = sel[i]->id;
	}
	free(order);
	bool ok = m != NULL && sel != NULL && ids != NULL;
	free(sel);
	mboxes_free(m, n);
	store_mailboxes_free(&boxes, n);
	store_cond_free(&root);
	if (!ok) {
		free(ids);
		return fail(p, "serverFail", "out of memory");
	}
	*ids_r = ids;
	*n_r = k;
	return 0;
}

static int mailbox_query(void *context, struct jmap_call *call, json_t *args,
                         const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	struct parse p = {.call = call, .account_id = ctx->store_account_id};
	struct store_query q = {0};
	bool anchor_unknown, capped, want_total = false;
	int64_t *ids = NULL;
	size_t n = 0;
	int ret = -1;
	if (window_args(&p, args, 'M', &q, &anchor_unknown, &capped) < 0)
		goto out;
	if (!optional_bool(args, "calculateTotal", &want_total)) {
		fail(&p, "invalidArguments", "calculateTotal is a boolean");
		goto out;
	}
	if (mailbox_results(ctx, &p, args, &ids, &n) < 0)
		goto out;
	size_t start;
	if (q.has_anchor) {
		size_t i = 0;
		while (!anchor_unknown && i < n && ids[i] != q.anchor)
			i++;
		if (anchor_unknown || i == n) {
			fail(&p, "anchorNotFound", NULL);
			goto out;
		}
		int64_t at = (int64_t)i + q.anchor_offset;
		start = at < 0 ? 0 : (size_t)at;
	} else if (q.position < 0) {
		start = (uint64_t)-q.position >= n ? 0 : n - (size_t)-q.position;
	} else {
		start = (size_t)q.position;
	}
	size_t from = start > n ? n : start, count = n - from;
	if (count > q.limit)
		count = (size_t)q.limit;
	json_t *resp = json_pack("{s:s,s:s,s:b,s:I,s:o}", "accountId", ctx->account_id,
	                         "queryState", ctx->state, "canCalculateChanges", 1, "position",
	                         (json_int_t)start, "ids", id_array('M', ids + from, count));
	if (want_total)
		json_object_set_new(resp, "total", json_integer((json_int_t)n));
	if (capped)
		json_object_set_new(resp, "limit", json_integer((json_int_t)q.limit));
	const char *err;
	ret = jmap_call_respond(call, "Mailbox/query", resp, &err);
	if (ret < 0)
		fail(&p, "serverFail", NULL);
out:
	free(ids);
	parse_free(&p);
	*error_type_r = p.error_type;
	*description_r = p.description;
	return ret;
}

/* Mailbox/queryChanges: the mailboxes created, changed or destroyed since
 * the state are removed and, when in the results now, added with their
 * index. A created or destroyed mailbox can change other mailboxes'
 * parentId and display name (they derive from names), so then every
 * mailbox counts as changed. */
static int mailbox_query_changes(void *context, struct jmap_call *call, json_t *args,
                                 const char **error_type_r, const char **description_r)
{
	struct jmap_mail_ctx *ctx = context;
	if (jmap_check_account(ctx, args, error_type_r) < 0)
		return -1;
	struct parse p = {.call = call, .account_id = ctx->store_account_id};
	uint64_t since;
	json_int_t max = 0;
	bool want_total = false;
	int64_t *ids = NULL;
	size_t n = 0;
	int ret = -1;
	const char *err;
	struct store_changes ch = {0};
	json_t *since_v = json_object_get(args, "sinceQueryState");
	if (!json_is_string(since_v) || !optional_int(args, "maxChanges", true, &max) ||
	    !optional_bool(args, "calculateTotal", &want_total)) {
		fail(&p, "invalidArguments", "sinceQueryState is required; maxChanges");
		goto out;
	}
	if (!parse_state(ctx, args, &since)) {
		fail(&p, "cannotCalculateChanges", "unknown state");
		goto out;
	}
	if (mailbox_results(ctx, &p, args, &ids, &n) < 0)
		goto out;
	if (store_changes_account(ctx->store, ctx->store_account_id, STORE_CHANGES_MAILBOX, since,
	                          SIZE_MAX, &ch, &err) < 0) {
		fail(&p, "serverFail", NULL);
		goto out;
	}
	bool everything = ch.n_created > 0 || ch.n_destroyed > 0;
	json_t *removed = json_array(), *added = json_array();
	for (size_t i = 0; i < ch.n_updated; i++)
		json_array_append_new(removed, jmap_prefixed('M', ch.updated[i]));
	for (size_t i = 0; i < ch.n_destroyed; i++)
		if ((uint64_t)ch.destroyed[i] <= since)
			json_array_append_new(removed, jmap_prefixed('M', ch.destroyed[i]));
	for (size_t i = 0; i < n; i++) {
		bool changed = everything;
		for (size_t j = 0; j < ch.n_created && !changed; j++)
			changed = ch.created[j] == ids[i];
		for (size_t j = 0; j < ch.n_updated && !changed; j++)
			changed = ch.updated[j] == ids[i];
		if (!changed)
			continue;
		if (everything && (uint64_t)ids[i] <= since) {
			bool listed = false;
			for (size_t j = 0; j < ch.n_updated && !listed; j++)
				listed = ch.updated[j] == ids[i];
			if (!listed)
				json_array_append_new(removed, jmap_prefixed('M', ids[i]));
		}
		json_array_append_new(added,
		                      json_pack("{s:o,s:I}", "id", jmap_prefixed('M', ids[i]),
		                                "index", (json_int_t)i));
	}
	if (max > 0 && json_array_size(removed) + json_array_size(added) > (size_t)max) {
		json_decref(removed);
		json_decref(added);
		fail(&p, "tooManyChanges", NULL);
		goto out;
	}
	json_t *resp = json_pack("{s:s,s:s,s:s,s:o,s:o}", "accountId", ctx->account_id,
	                         "oldQueryState", json_string_value(since_v), "newQueryState",
	                         ctx->state, "removed", removed, "added", added);
	if (want_total)
		json_object_set_new(resp, "total", json_integer((json_int_t)n));
	ret = jmap_call_respond(call, "Mailbox/queryChanges", resp, &err);
	if (ret < 0)
		fail(&p, "serverFail", NULL);
out:
	store_changes_free(&ch);
	free(ids);
	parse_free(&p);
	*error_type_r = p.error_type;
	*description_r = p.description;
	return ret;
}

int jmap_query_register(struct jmap_registry *registry, const char **error_r)
{
	if (jmap_registry_add_method(registry, "Email/query", JMAP_CAPABILITY_MAIL, email_query,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Email/queryChanges", JMAP_CAPABILITY_MAIL,
	                             email_query_changes, error_r) < 0 ||
	    jmap_registry_add_method(registry, "Mailbox/query", JMAP_CAPABILITY_MAIL, mailbox_query,
	                             error_r) < 0 ||
	    jmap_registry_add_method(registry, "Mailbox/queryChanges", JMAP_CAPABILITY_MAIL,
	                             mailbox_query_changes, error_r) < 0)
		return -1;
	return 0;
}
