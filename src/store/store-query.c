/* Email/query and /queryChanges over the store. See store-query.h.
 *
 * A query becomes one statement
 *   SELECT m.id, m.thread_id FROM emails m
 *     [LEFT JOIN envelopes e ON e.blob_id = m.blob_id]
 *     [WHERE m.account_id = ? AND <filter>] ORDER BY <sort>, m.id [LIMIT ? OFFSET ?]
 * whose every user-supplied value is a bound parameter. A filter that
 * requires one mailbox (inMailbox at the top, alone or in an AND) is
 * driven by the memberships instead:
 *   SELECT ... FROM messages x CROSS JOIN emails m ON m.id = x.email_id
 *     WHERE x.mailbox_id = ? AND <x is the Email's first membership there>
 * so that inMailbox sorted by receivedAt walks the (mailbox_id,
 * internaldate) index and stops after the window (receivedAt is then the
 * membership's internal date, the Email's except when the server gave two
 * copies different ones; ties go by membership id). Collapsing threads,
 * anchors and negative positions walk the sorted rows in C. */
#include "store-query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store-private.h"

#define SQL_MAX 16384
#define BINDS_MAX 512

struct bind {
	bool is_text;
	int64_t num;
	const char *text;
	char *owned; /* text we allocated (freed with the builder) */
};

/* One part of the statement under construction, with its parameters in
 * the order their "?" appear. */
struct sqlb {
	char sql[SQL_MAX];
	size_t len;
	struct bind binds[BINDS_MAX];
	int n_binds;
	bool overflow;
	bool uses_envelope;
	int64_t mailbox; /* != 0: driven by this mailbox's memberships (x) */
};

static void sqlb_free(struct sqlb *b)
{
	for (int i = 0; i < b->n_binds; i++)
		free(b->binds[i].owned);
	b->n_binds = 0;
}

static void emit(struct sqlb *b, const char *text)
{
	size_t l = strlen(text);
	if (b->len + l + 1 > sizeof(b->sql)) {
		b->overflow = true;
		return;
	}
	memcpy(b->sql + b->len, text, l + 1);
	b->len += l;
}

static void bind_num(struct sqlb *b, int64_t v)
{
	if (b->n_binds == BINDS_MAX) {
		b->overflow = true;
		return;
	}
	b->binds[b->n_binds++] = (struct bind){.num = v};
	emit(b, "?");
}

/* Binds text; takes ownership of owned (may be NULL). */
static void bind_text(struct sqlb *b, const char *text, char *owned)
{
	if (b->n_binds == BINDS_MAX) {
		free(owned);
		b->overflow = true;
		return;
	}
	b->binds[b->n_binds++] = (struct bind){.is_text = true, .text = text, .owned = owned};
	emit(b, "?");
}

static void apply_binds(sqlite3_stmt *st, const struct sqlb *b, int *next)
{
	for (int i = 0; i < b->n_binds; i++, (*next)++) {
		if (b->binds[i].is_text)
			sqlite3_bind_text(st, *next, b->binds[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, *next, b->binds[i].num);
	}
}

/* --- Conditions ------------------------------------------------------------ */

/* "Has keyword kw" for the message row alias (m or t): the system flags
 * are bits, other keywords a space-separated list. */
static void keyword_sql(struct sqlb *b, const char *alias, const char *kw)
{
	static const struct {
		const char *kw;
		unsigned bit;
	} bits[] = {{"$seen", STORE_FLAG_SEEN},
	            {"$answered", STORE_FLAG_ANSWERED},
	            {"$flagged", STORE_FLAG_FLAGGED},
	            {"$draft", STORE_FLAG_DRAFT}};
	char buf[64];
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		if (strcmp(kw, bits[i].kw) == 0) {
			snprintf(buf, sizeof(buf), "((%s.flags & %u) != 0)", alias, bits[i].bit);
			emit(b, buf);
			return;
		}
	}
	size_t l = strlen(kw);
	char *padded = malloc(l + 3);
	if (padded == NULL) {
		b->overflow = true;
		return;
	}
	padded[0] = ' ';
	memcpy(padded + 1, kw, l);
	padded[l + 1] = ' ';
	padded[l + 2] = '\0';
	snprintf(buf, sizeof(buf), "(instr(' ' || lower(%s.keywords) || ' ', ", alias);
	emit(b, buf);
	bind_text(b, padded, padded);
	emit(b, ") > 0)");
}

/* Some (some=true) / no (some=false) email of m's thread has kw, or
 * (all) every one has it. */
static void thread_keyword_sql(struct sqlb *b, const char *kw, const char *how)
{
	if (strcmp(how, "all") == 0) {
		emit(b, "NOT EXISTS (SELECT 1 FROM emails t WHERE t.thread_id = m.thread_id AND "
		        "NOT ");
	} else {
		emit(b, strcmp(how, "some") == 0 ? "EXISTS" : "NOT EXISTS");
		emit(b, " (SELECT 1 FROM emails t WHERE t.thread_id = m.thread_id AND ");
	}
	keyword_sql(b, "t", kw);
	emit(b, ")");
}

/*
 * The full-text conditions text, from, to, cc, bcc, subject and body: the
 * one place where they become SQL, over the FTS5 index (store-fts.c). The
 * unary + keeps SQLite walking messages in the window's order and stopping
 * after the window, instead of sorting every match. Messages the
 * background indexer has not reached yet do not match.
 * Returns 0, or -1 with *error_r (answered as unsupportedFilter).
 */
static int text_condition_sql(struct sqlb *b, const char *field, const char *text,
                              const char **error_r)
{
	char *expr;
	if (store_fts_expr(field, text != NULL ? text : "", &expr, error_r) < 0)
		return -1;
	emit(b, "+m.blob_id IN (SELECT rowid FROM email_fts WHERE email_fts MATCH ");
	bind_text(b, expr, expr);
	emit(b, ")");
	return 0;
}

/* Compile cond into b: 0, or -1 with *kind_r and *error_r. */
static int cond_sql(struct sqlb *b, const struct store_cond *c, unsigned depth,
                    enum store_query_error *kind_r, const char **error_r)
{
	if (depth > STORE_QUERY_MAX_DEPTH) {
		*kind_r = STORE_QUERY_UNSUPPORTED_FILTER;
		*error_r = "filter nested too deeply";
		return -1;
	}
	switch (c->kind) {
	case STORE_COND_AND:
	case STORE_COND_OR:
	case STORE_COND_NOT:
		if (c->n_children == 0) {
			emit(b, c->kind == STORE_COND_OR ? "0" : "1");
			return 0;
		}
		emit(b, c->kind == STORE_COND_NOT ? "NOT (" : "(");
		for (size_t i = 0; i < c->n_children; i++) {
			if (i > 0)
				emit(b, c->kind == STORE_COND_AND ? " AND " : " OR ");
			emit(b, "(");
			if (cond_sql(b, &c->children[i], depth + 1, kind_r, error_r) < 0)
				return -1;
			emit(b, ")");
		}
		emit(b, ")");
		return 0;
	case STORE_COND_IN_MAILBOX:
		/* Driven by that mailbox's memberships: every row is in it. */
		if (b->mailbox != 0 && c->num == b->mailbox) {
			emit(b, "x.mailbox_id = ");
			bind_num(b, c->num);
			return 0;
		}
		emit(b, "EXISTS (SELECT 1 FROM messages y WHERE y.email_id = m.id AND "
		        "y.mailbox_id = ");
		bind_num(b, c->num);
		emit(b, ")");
		return 0;
	case STORE_COND_IN_MAILBOX_OTHER_THAN:
		/* RFC 8621: in at least one mailbox not in the list. */
		emit(b, "EXISTS (SELECT 1 FROM messages y WHERE y.email_id = m.id");
		if (c->n_ids > 0) {
			emit(b, " AND y.mailbox_id NOT IN (");
			for (size_t i = 0; i < c->n_ids; i++) {
				if (i > 0)
					emit(b, ", ");
				bind_num(b, c->ids[i]);
			}
			emit(b, ")");
		}
		emit(b, ")");
		return 0;
	case STORE_COND_BEFORE:
		emit(b, b->mailbox != 0 ? "x.internaldate < " : "m.internaldate < ");
		bind_num(b, c->num);
		return 0;
	case STORE_COND_AFTER:
		emit(b, b->mailbox != 0 ? "x.internaldate >= " : "m.internaldate >= ");
		bind_num(b, c->num);
		return 0;
	case STORE_COND_MIN_SIZE:
	case STORE_COND_MAX_SIZE:
		b->uses_envelope = true;
		emit(b, c->kind == STORE_COND_MIN_SIZE ? "e.size >= " : "e.size < ");
		bind_num(b, c->num);
		return 0;
	case STORE_COND_ALL_IN_THREAD_KEYWORD:
		thread_keyword_sql(b, c->text, "all");
		return 0;
	case STORE_COND_SOME_IN_THREAD_KEYWORD:
		thread_keyword_sql(b, c->text, "some");
		return 0;
	case STORE_COND_NONE_IN_THREAD_KEYWORD:
		thread_keyword_sql(b, c->text, "none");
		return 0;
	case STORE_COND_HAS_KEYWORD:
		keyword_sql(b, "m", c->text);
		return 0;
	case STORE_COND_NOT_KEYWORD:
		emit(b, "NOT ");
		keyword_sql(b, "m", c->text);
		return 0;
	case STORE_COND_HAS_ATTACHMENT:
		b->uses_envelope = true;
		emit(b, "coalesce(e.has_attachment, 0) = ");
		bind_num(b, c->flag ? 1 : 0);
		return 0;
	case STORE_COND_HEADER:
		emit(b, "mk_header_match(m.blob_id, ");
		bind_text(b, c->name, NULL);
		emit(b, ", ");
		bind_text(b, c->text != NULL ? c->text : "", NULL);
		emit(b, ")");
		return 0;
	case STORE_COND_TEXT:
		if (text_condition_sql(b, c->name, c->text, error_r) < 0) {
			*kind_r = STORE_QUERY_UNSUPPORTED_FILTER;
			return -1;
		}
		return 0;
	case STORE_COND_NONE:
		emit(b, "0");
		return 0;
	}
	*kind_r = STORE_QUERY_UNSUPPORTED_FILTER;
	*error_r = "unknown condition";
	return -1;
}

static void sort_sql(struct sqlb *b, const struct store_sort *so)
{
	static const char *const text_cols[][2] = {
	    [STORE_SORT_FROM] = {"e.from_key", "e.from_text"},
	    [STORE_SORT_TO] = {"e.to_key", "e.to_text"},
	    [STORE_SORT_SUBJECT] = {"e.subject_key", "e.base_subject"},
	};
	switch (so->property) {
	case STORE_SORT_RECEIVED_AT:
		emit(b, b->mailbox != 0 ? "x.internaldate" : "m.internaldate");
		break;
	case STORE_SORT_SENT_AT:
		b->uses_envelope = true;
		emit(b, "e.sent_at");
		break;
	case STORE_SORT_SIZE:
		b->uses_envelope = true;
		emit(b, "e.size");
		break;
	case STORE_SORT_FROM:
	case STORE_SORT_TO:
	case STORE_SORT_SUBJECT:
		b->uses_envelope = true;
		if (so->collation == STORE_COLLATION_UNICODE_CASEMAP) {
			emit(b, text_cols[so->property][0]);
		} else {
			emit(b, text_cols[so->property][1]);
			emit(b, so->collation == STORE_COLLATION_ASCII_CASEMAP
			            ? " COLLATE NOCASE"
			            : " COLLATE mk_ascii_numeric");
		}
		break;
	case STORE_SORT_HAS_KEYWORD:
		keyword_sql(b, "m", so->keyword);
		break;
	case STORE_SORT_ALL_IN_THREAD_KEYWORD:
		emit(b, "(");
		thread_keyword_sql(b, so->keyword, "all");
		emit(b, ")");
		break;
	case STORE_SORT_SOME_IN_THREAD_KEYWORD:
		emit(b, "(");
		thread_keyword_sql(b, so->keyword, "some");
		emit(b, ")");
		break;
	}
	emit(b, so->ascending ? " ASC" : " DESC");
}

/* --- Statements -------------------------------------------------------------- */

struct compiled {
	struct sqlb where, order;
	bool has_where;
	int64_t mailbox; /* != 0: driven by this mailbox's memberships */
};

/* The mailbox every match must be in, judging by the top of the filter
 * (inMailbox alone or in an AND), else 0. */
static int64_t required_mailbox(const struct store_cond *c)
{
	if (c == NULL)
		return 0;
	if (c->kind == STORE_COND_IN_MAILBOX)
		return c->num;
	if (c->kind == STORE_COND_AND)
		for (size_t i = 0; i < c->n_children; i++)
			if (c->children[i].kind == STORE_COND_IN_MAILBOX)
				return c->children[i].num;
	return 0;
}

static int compile(const struct store_query *q, struct compiled *c, enum store_query_error *kind_r,
                   const char **error_r)
{
	memset(c, 0, sizeof(*c));
	c->mailbox = required_mailbox(q->filter);
	c->where.mailbox = c->order.mailbox = c->mailbox;
	/* Scope first: the account, and in a mailbox each Email once (its
	 * first membership there). */
	if (c->mailbox != 0) {
		c->has_where = true;
		emit(&c->where, "x.mailbox_id = ");
		bind_num(&c->where, c->mailbox);
		emit(&c->where, " AND NOT EXISTS (SELECT 1 FROM messages y WHERE y.email_id = "
		                "x.email_id AND y.mailbox_id = x.mailbox_id AND y.id < x.id)");
	}
	if (q->account_id != 0) {
		emit(&c->where, c->has_where ? " AND m.account_id = " : "m.account_id = ");
		bind_num(&c->where, q->account_id);
		c->has_where = true;
	}
	if (q->filter != NULL) {
		if (c->has_where)
			emit(&c->where, " AND (");
		if (cond_sql(&c->where, q->filter, 0, kind_r, error_r) < 0)
			return -1;
		if (c->has_where)
			emit(&c->where, ")");
		c->has_where = true;
	}
	static const struct store_sort newest = {STORE_SORT_RECEIVED_AT, false,
	                                         STORE_COLLATION_UNICODE_CASEMAP, NULL};
	const struct store_sort *sorts = q->n_sort > 0 ? q->sort : &newest;
	size_t n = q->n_sort > 0 ? q->n_sort : 1;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			emit(&c->order, ", ");
		sort_sql(&c->order, &sorts[i]);
	}
	/* Ties in the order of the first key, so that one-key sorts walk an
	 * index (which ends in the row id) as it is. */
	if (c->mailbox != 0)
		emit(&c->order, sorts[0].ascending ? ", x.id ASC" : ", x.id DESC");
	else
		emit(&c->order, sorts[0].ascending ? ", m.id ASC" : ", m.id DESC");
	if (c->where.overflow || c->order.overflow) {
		*kind_r = STORE_QUERY_UNSUPPORTED_FILTER;
		*error_r = "filter too large";
		return -1;
	}
	return 0;
}

static void compiled_free(struct compiled *c)
{
	sqlb_free(&c->where);
	sqlb_free(&c->order);
}

/* Prepare "SELECT what FROM emails m [JOIN] [WHERE] tail" (or from the
 * mailbox's memberships x, see the top). */
static int prepare(struct store *s, const struct compiled *c, const char *what, bool order,
                   const char *tail, sqlite3_stmt **st_r, int *next_bind_r, const char **error_r)
{
	static const char join[] = " LEFT JOIN envelopes e ON e.blob_id = m.blob_id";
	size_t cap = c->where.len + c->order.len + 256;
	char *sql = malloc(cap);
	if (sql == NULL) {
		*error_r = "store: out of memory";
		return -1;
	}
	bool env = c->where.uses_envelope || (order && c->order.uses_envelope);
	snprintf(sql, cap, "SELECT %s FROM %s%s%s%s%s%s%s", what,
	         c->mailbox != 0 ? "messages x CROSS JOIN emails m ON m.id = x.email_id"
	                         : "emails m",
	         env ? join : "", c->has_where ? " WHERE " : "", c->has_where ? c->where.sql : "",
	         order ? " ORDER BY " : "", order ? c->order.sql : "", tail);
	int rc = sqlite3_prepare_v2(store_db(s), sql, -1, st_r, NULL);
	free(sql);
	if (rc != SQLITE_OK) {
		*error_r = store_err(s, "query emails");
		return -1;
	}
	int next = 1;
	apply_binds(*st_r, &c->where, &next);
	if (order)
		apply_binds(*st_r, &c->order, &next);
	*next_bind_r = next;
	return 0;
}

/* --- Id lists ------------------------------------------------------------------ */

struct idvec {
	int64_t *v;
	size_t n, cap;
};

static int idvec_push(struct idvec *a, int64_t id)
{
	if (a->n == a->cap) {
		size_t cap = a->cap == 0 ? 64 : a->cap * 2;
		int64_t *n = realloc(a->v, cap * sizeof(*n));
		if (n == NULL)
			return -1;
		a->v = n;
		a->cap = cap;
	}
	a->v[a->n++] = id;
	return 0;
}

/* A set of ids (open addressing, 0 never stored). */
struct idhash {
	int64_t *slots;
	size_t nslots, n;
};

static size_t idhash_slot(const struct idhash *h, int64_t id)
{
	uint64_t x = (uint64_t)id * 0x9E3779B97F4A7C15ull;
	size_t i = (size_t)(x >> 20) & (h->nslots - 1);
	while (h->slots[i] != 0 && h->slots[i] != id)
		i = (i + 1) & (h->nslots - 1);
	return i;
}

static bool idhash_has(const struct idhash *h, int64_t id)
{
	return h->nslots > 0 && h->slots[idhash_slot(h, id)] == id;
}

/* 1 added, 0 already there, -1 out of memory. */
static int idhash_add(struct idhash *h, int64_t id)
{
	if ((h->n + 1) * 2 > h->nslots) {
		size_t nslots = h->nslots == 0 ? 64 : h->nslots * 2;
		struct idhash g = {calloc(nslots, sizeof(int64_t)), nslots, 0};
		if (g.slots == NULL)
			return -1;
		for (size_t i = 0; i < h->nslots; i++)
			if (h->slots[i] != 0)
				g.slots[idhash_slot(&g, h->slots[i])] = h->slots[i], g.n++;
		free(h->slots);
		*h = g;
	}
	size_t i = idhash_slot(h, id);
	if (h->slots[i] == id)
		return 0;
	h->slots[i] = id;
	h->n++;
	return 1;
}

/* --- Running --------------------------------------------------------------------- */

static int count(struct store *s, const struct compiled *c, bool threads, uint64_t *total_r,
                 const char **error_r)
{
	sqlite3_stmt *st;
	int next;
	if (prepare(s, c, threads ? "count(DISTINCT m.thread_id)" : "count(*)", false, "", &st,
	            &next, error_r) < 0)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*total_r = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW) {
		*error_r = store_err(s, "count emails");
		return -1;
	}
	return 0;
}

/* Every matching id in order (one per thread when collapsing), stopping
 * after stop_after ids when that is not 0. */
static int walk(struct store *s, const struct compiled *c, bool collapse, uint64_t stop_after,
                struct idvec *out, const char **error_r)
{
	sqlite3_stmt *st;
	int next;
	if (prepare(s, c, "m.id, m.thread_id", true, "", &st, &next, error_r) < 0)
		return -1;
	struct idhash threads = {0};
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		int64_t thread = sqlite3_column_int64(st, 1);
		if (collapse && thread != 0) {
			int r = idhash_add(&threads, thread);
			if (r < 0) {
				rc = SQLITE_NOMEM;
				break;
			}
			if (r == 0)
				continue;
		}
		if (idvec_push(out, id) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (stop_after != 0 && out->n >= stop_after) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_finalize(st);
	free(threads.slots);
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "query emails");
		return -1;
	}
	return 0;
}

static uint64_t clamp_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

int store_email_query_run(struct store *s, const struct store_query *q,
                          struct store_query_result *result_r, enum store_query_error *kind_r,
                          const char **error_r)
{
	struct compiled c;
	*kind_r = STORE_QUERY_FAILED;
	if (compile(q, &c, kind_r, error_r) < 0) {
		compiled_free(&c);
		return -1;
	}
	struct idvec ids = {0};
	uint64_t total = 0, start = 0;
	int ret = -1;
	if (!q->collapse_threads && !q->has_anchor) {
		/* The window in SQL: LIMIT/OFFSET on the sorted rows. */
		if ((q->want_total || q->position < 0) && count(s, &c, false, &total, error_r) < 0)
			goto out;
		if (q->position >= 0)
			start = (uint64_t)q->position;
		else
			start =
			    (uint64_t)-q->position >= total ? 0 : total - (uint64_t)-q->position;
		sqlite3_stmt *st;
		int next;
		if (prepare(s, &c, "m.id", true, " LIMIT ? OFFSET ?", &st, &next, error_r) < 0)
			goto out;
		sqlite3_bind_int64(st, next,
		                   (sqlite3_int64)(q->limit > INT64_MAX ? INT64_MAX : q->limit));
		sqlite3_bind_int64(st, next + 1,
		                   (sqlite3_int64)(start > INT64_MAX ? INT64_MAX : start));
		int rc;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW)
			if (idvec_push(&ids, sqlite3_column_int64(st, 0)) < 0) {
				rc = SQLITE_NOMEM;
				break;
			}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			*error_r = store_err(s, "query emails");
			goto out;
		}
		result_r->ids = ids.v;
		result_r->n_ids = ids.n;
		ids.v = NULL;
		ret = 0;
		goto out;
	}
	/* Walk the sorted rows: all of them when the total, the anchor or the
	 * end matters, else only up to the end of the window. */
	bool whole = q->want_total || q->has_anchor || q->position < 0;
	uint64_t stop = whole ? 0 : clamp_add((uint64_t)q->position, q->limit);
	if (!whole && stop == 0) {
		result_r->ids = NULL;
		result_r->n_ids = 0;
		start = (uint64_t)q->position;
		ret = 0;
		goto out;
	}
	if (walk(s, &c, q->collapse_threads, stop, &ids, error_r) < 0)
		goto out;
	total = ids.n;
	if (q->has_anchor) {
		size_t i = 0;
		while (i < ids.n && ids.v[i] != q->anchor)
			i++;
		if (i == ids.n) {
			*kind_r = STORE_QUERY_ANCHOR_NOT_FOUND;
			*error_r = "the anchor is not in the results";
			goto out;
		}
		int64_t at = (int64_t)i + q->anchor_offset;
		start = at < 0 ? 0 : (uint64_t)at;
	} else if (q->position < 0) {
		start = (uint64_t)-q->position >= total ? 0 : total - (uint64_t)-q->position;
	} else {
		start = (uint64_t)q->position;
	}
	size_t from = start >= ids.n ? ids.n : (size_t)start;
	size_t n = ids.n - from;
	if (n > q->limit)
		n = (size_t)q->limit;
	if (n > 0) /* ids.v is NULL when nothing matched: no arithmetic on it */
		memmove(ids.v, ids.v + from, n * sizeof(*ids.v));
	result_r->ids = ids.v;
	result_r->n_ids = n;
	ids.v = NULL;
	ret = 0;
out:
	if (ret == 0) {
		result_r->position = start;
		result_r->total = total;
	}
	free(ids.v);
	compiled_free(&c);
	return ret;
}

/* --- queryChanges ----------------------------------------------------------------- */

static bool cond_thread_dependent(const struct store_cond *c, bool *mutable_r)
{
	bool dep = false;
	switch (c->kind) {
	case STORE_COND_ALL_IN_THREAD_KEYWORD:
	case STORE_COND_SOME_IN_THREAD_KEYWORD:
	case STORE_COND_NONE_IN_THREAD_KEYWORD:
		dep = true;
		*mutable_r = true;
		break;
	case STORE_COND_HAS_KEYWORD:
	case STORE_COND_NOT_KEYWORD:
	case STORE_COND_IN_MAILBOX: /* an Email's mailboxes change */
	case STORE_COND_IN_MAILBOX_OTHER_THAN:
		*mutable_r = true;
		break;
	default:
		break;
	}
	for (size_t i = 0; i < c->n_children; i++)
		dep |= cond_thread_dependent(&c->children[i], mutable_r);
	return dep;
}

/* Could an Email in these mailboxes match c, judging by the mailboxes
 * alone? The other conditions count as maybe. */
enum maybe { MAYBE_FALSE, MAYBE_TRUE, MAYBE };

static bool box_in(const int64_t *boxes, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (boxes[i] == id)
			return true;
	return false;
}

static enum maybe cond_in_mailboxes(const struct store_cond *c, const int64_t *boxes, size_t n)
{
	switch (c->kind) {
	case STORE_COND_IN_MAILBOX:
		return box_in(boxes, n, c->num) ? MAYBE_TRUE : MAYBE_FALSE;
	case STORE_COND_IN_MAILBOX_OTHER_THAN:
		for (size_t i = 0; i < n; i++)
			if (!box_in(c->ids, c->n_ids, boxes[i]))
				return MAYBE_TRUE;
		return MAYBE_FALSE;
	case STORE_COND_NONE:
		return MAYBE_FALSE;
	case STORE_COND_AND:
	case STORE_COND_OR:
	case STORE_COND_NOT: {
		bool any_true = false, any_maybe = false, all_true = true;
		for (size_t i = 0; i < c->n_children; i++) {
			enum maybe r = cond_in_mailboxes(&c->children[i], boxes, n);
			any_true |= r == MAYBE_TRUE;
			any_maybe |= r == MAYBE;
			all_true &= r == MAYBE_TRUE;
			if (c->kind == STORE_COND_AND && r == MAYBE_FALSE)
				return MAYBE_FALSE;
		}
		if (c->kind == STORE_COND_AND)
			return all_true ? MAYBE_TRUE : MAYBE;
		if (c->kind == STORE_COND_OR)
			return any_true ? MAYBE_TRUE : any_maybe ? MAYBE : MAYBE_FALSE;
		return any_true ? MAYBE_FALSE : any_maybe ? MAYBE : MAYBE_TRUE;
	}
	default:
		return MAYBE;
	}
}

/* 1 when the Email's current mailboxes alone keep it out of c, 0 not,
 * -1 error. */
static int cond_mailboxes_exclude(struct store *s, const struct store_cond *c, int64_t email_id)
{
	int64_t *mids = NULL, *boxes = NULL;
	size_t n = 0;
	const char *err;
	if (store_email_members(s, email_id, &mids, &boxes, &n, &err) < 0)
		return -1;
	int r = cond_in_mailboxes(c, boxes, n) == MAYBE_FALSE;
	free(mids);
	free(boxes);
	return r;
}

int store_email_query_changes(struct store *s, const struct store_query *q, uint64_t since,
                              uint64_t max_changes, bool has_up_to, int64_t up_to,
                              struct store_query_changes *changes_r, enum store_query_error *kind_r,
                              const char **error_r)
{
	*kind_r = STORE_QUERY_FAILED;
	memset(changes_r, 0, sizeof(*changes_r));
	uint64_t current;
	if (store_read_modseq(s, &current, error_r) < 0)
		return -1;
	if (since > current) {
		*kind_r = STORE_QUERY_CANNOT_CALCULATE;
		*error_r = "unknown state";
		return -1;
	}
	bool mutable_filter = false, mutable_sort = false;
	bool thread_dep = q->filter != NULL && cond_thread_dependent(q->filter, &mutable_filter);
	thread_dep |= q->collapse_threads;
	for (size_t i = 0; i < q->n_sort; i++) {
		enum store_sort_property p = q->sort[i].property;
		if (p == STORE_SORT_HAS_KEYWORD)
			mutable_sort = true;
		if (p == STORE_SORT_ALL_IN_THREAD_KEYWORD || p == STORE_SORT_SOME_IN_THREAD_KEYWORD)
			thread_dep = mutable_sort = true;
	}
	/* The emails that changed since (an Email's modseq moves when its
	 * keywords or mailboxes change): their own changes, and for queries
	 * that look at threads every email of a thread whose list of emails or
	 * whose emails changed. ?2: the account (0: all). */
	/* Columns: id, gone, changed itself (else only its thread did). */
	const char *changed_sql =
	    thread_dep
	        ? "SELECT id, 0, 1 FROM emails WHERE modseq > ?1 AND (?2 = 0 OR account_id = ?2) "
	          "UNION SELECT object_id, 1, 1 FROM tombstones WHERE kind = 'email' AND "
	          "modseq > ?1 AND (?2 = 0 OR account_id IN (0, ?2)) "
	          "UNION SELECT id, 0, modseq > ?1 FROM emails WHERE thread_id IN (SELECT "
	          "thread_id FROM emails WHERE modseq > ?1 UNION SELECT id FROM threads WHERE "
	          "modseq > ?1) AND (?2 = 0 OR account_id = ?2)"
	        : "SELECT id, 0, 1 FROM emails WHERE modseq > ?1 AND (?2 = 0 OR account_id = ?2) "
	          "UNION SELECT object_id, 1, 1 FROM tombstones WHERE kind = 'email' AND "
	          "modseq > ?1 AND (?2 = 0 OR account_id IN (0, ?2))";
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(store_db(s), changed_sql, -1, &st, NULL) != SQLITE_OK) {
		*error_r = store_err(s, "query changes");
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
	sqlite3_bind_int64(st, 2, q->account_id);
	struct idhash changed = {0}, present = {0};
	struct idvec removed = {0}, added = {0}, all = {0}, existing = {0};
	uint64_t *index = NULL;
	int rc, ret = -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(st, 0);
		if (changed.n >= STORE_QUERY_MAX_CHANGED) {
			rc = SQLITE_FULL;
			break;
		}
		/* Only what existed at since can leave the old results; emails
		 * still here are looked at once the current results are known. */
		bool gone = sqlite3_column_int(st, 1) != 0;
		bool itself = sqlite3_column_int(st, 2) != 0;
		if (!gone && !itself && (uint64_t)id <= since && q->filter != NULL) {
			/* Only its thread changed: its mailboxes are those it had at
			 * since (they move its modseq), and they may alone have kept
			 * it out of the results, then as now. */
			int out = cond_mailboxes_exclude(s, q->filter, id);
			if (out < 0) {
				rc = SQLITE_ERROR;
				break;
			}
			if (out > 0) {
				if (idhash_add(&changed, id) < 0) {
					rc = SQLITE_NOMEM;
					break;
				}
				continue;
			}
		}
		if (idhash_add(&changed, id) < 0 ||
		    ((uint64_t)id <= since && idvec_push(gone ? &removed : &existing, id) < 0)) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_FULL) {
		*kind_r = STORE_QUERY_CANNOT_CALCULATE;
		*error_r = "too much changed since that state";
		goto out;
	}
	if (rc != SQLITE_DONE) {
		*error_r = store_err(s, "query changes");
		goto out;
	}
	struct compiled c;
	if (compile(q, &c, kind_r, error_r) < 0) {
		compiled_free(&c);
		goto out;
	}
	int r = walk(s, &c, q->collapse_threads, 0, &all, error_r);
	compiled_free(&c);
	if (r < 0)
		goto out;
	/* An email still here that is not in the results now was not in them
	 * before either when the filter looks only at immutable properties. */
	bool exact = !mutable_filter && !thread_dep;
	for (size_t i = 0; exact && i < all.n; i++)
		if (idhash_add(&present, all.v[i]) < 0) {
			*error_r = "store: out of memory";
			goto out;
		}
	for (size_t i = 0; i < existing.n; i++) {
		if (exact && !idhash_has(&present, existing.v[i]))
			continue;
		if (idvec_push(&removed, existing.v[i]) < 0) {
			*error_r = "store: out of memory";
			goto out;
		}
	}
	size_t last = all.n;
	if (has_up_to && !mutable_filter && !mutable_sort && !thread_dep) {
		/* Immutable sort and filter: nothing after upToId matters. */
		for (size_t i = 0; i < all.n; i++)
			if (all.v[i] == up_to)
				last = i + 1;
	}
	for (size_t i = 0; i < last; i++) {
		if (!idhash_has(&changed, all.v[i]))
			continue;
		if (idvec_push(&added, all.v[i]) < 0) {
			*error_r = "store: out of memory";
			goto out;
		}
		uint64_t *ni = realloc(index, added.cap * sizeof(*ni));
		if (ni == NULL) {
			*error_r = "store: out of memory";
			goto out;
		}
		index = ni;
		index[added.n - 1] = i;
	}
	if (max_changes != 0 && removed.n + added.n > max_changes) {
		*kind_r = STORE_QUERY_TOO_MANY_CHANGES;
		*error_r = "more changes than maxChanges";
		goto out;
	}
	changes_r->removed = removed.v;
	changes_r->n_removed = removed.n;
	changes_r->added = added.v;
	changes_r->added_index = index;
	changes_r->n_added = added.n;
	changes_r->total = all.n;
	removed.v = added.v = NULL;
	index = NULL;
	ret = 0;
out:
	free(changed.slots);
	free(present.slots);
	free(existing.v);
	free(removed.v);
	free(added.v);
	free(index);
	free(all.v);
	return ret;
}

void store_query_changes_free(struct store_query_changes *changes)
{
	free(changes->removed);
	free(changes->added);
	free(changes->added_index);
	memset(changes, 0, sizeof(*changes));
}

void store_cond_free(struct store_cond *cond)
{
	for (size_t i = 0; i < cond->n_children; i++)
		store_cond_free(&cond->children[i]);
	free(cond->children);
	free(cond->ids);
	cond->children = NULL;
	cond->n_children = 0;
	cond->ids = NULL;
	cond->n_ids = 0;
}
