#ifndef MK_STORE_QUERY_H
#define MK_STORE_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * Email queries (store-query.c): a filter tree and sort compiled to one SQL
 * statement with bound parameters (user data is never put into the SQL
 * text) over the emails, memberships (messages), envelopes and threads
 * tables, each Email once, and the RFC 8620
 * windowing (position, anchor, limit, collapse of threads) on its rows.
 */

#define STORE_QUERY_MAX_DEPTH 10      /* nesting of AND/OR/NOT */
#define STORE_QUERY_MAX_NODES 256     /* conditions and operators in one filter */
#define STORE_QUERY_MAX_SORT 8        /* sort comparators */
#define STORE_QUERY_MAX_IDS 256       /* mailbox ids in inMailboxOtherThan */
#define STORE_QUERY_MAX_CHANGED 50000 /* emails changed since a queryChanges state */

enum store_cond_kind {
	STORE_COND_AND,
	STORE_COND_OR,
	STORE_COND_NOT,                    /* none of the children */
	STORE_COND_IN_MAILBOX,             /* num: mailbox id */
	STORE_COND_IN_MAILBOX_OTHER_THAN,  /* ids */
	STORE_COND_BEFORE,                 /* num: receivedAt < num */
	STORE_COND_AFTER,                  /* num: receivedAt >= num */
	STORE_COND_MIN_SIZE,               /* num */
	STORE_COND_MAX_SIZE,               /* num: size < num */
	STORE_COND_ALL_IN_THREAD_KEYWORD,  /* text: keyword */
	STORE_COND_SOME_IN_THREAD_KEYWORD, /* text */
	STORE_COND_NONE_IN_THREAD_KEYWORD, /* text */
	STORE_COND_HAS_KEYWORD,            /* text */
	STORE_COND_NOT_KEYWORD,            /* text */
	STORE_COND_HAS_ATTACHMENT,         /* flag */
	STORE_COND_HEADER,                 /* name, text (NULL: field present) */
	STORE_COND_TEXT, /* name: "text" "from" "to" "cc" "bcc" "subject" "body"; text */
	STORE_COND_NONE, /* matches nothing */
};

/* One node. Strings are borrowed (the caller keeps them alive for the
 * call); keywords are lower case. */
struct store_cond {
	enum store_cond_kind kind;
	struct store_cond *children; /* AND/OR/NOT */
	size_t n_children;
	int64_t num;
	int64_t *ids;
	size_t n_ids;
	bool flag;
	const char *name, *text;
};
/* Free the children and id arrays below cond (not cond itself). */
void store_cond_free(struct store_cond *cond);

enum store_sort_property {
	STORE_SORT_RECEIVED_AT,
	STORE_SORT_SENT_AT,
	STORE_SORT_SIZE,
	STORE_SORT_FROM,
	STORE_SORT_TO,
	STORE_SORT_SUBJECT, /* the RFC 5256 base subject */
	STORE_SORT_HAS_KEYWORD,
	STORE_SORT_ALL_IN_THREAD_KEYWORD,
	STORE_SORT_SOME_IN_THREAD_KEYWORD,
};
enum store_collation {
	STORE_COLLATION_UNICODE_CASEMAP, /* i;unicode-casemap (the default) */
	STORE_COLLATION_ASCII_CASEMAP,   /* i;ascii-casemap */
	STORE_COLLATION_ASCII_NUMERIC,   /* i;ascii-numeric */
};
struct store_sort {
	enum store_sort_property property;
	bool ascending;
	enum store_collation collation;
	const char *keyword; /* the keyword sorts; borrowed */
};

struct store_query {
	int64_t account_id;              /* the store account; 0: all */
	const struct store_cond *filter; /* NULL: every email */
	const struct store_sort *sort;   /* n_sort == 0: receivedAt, newest first */
	size_t n_sort;
	bool collapse_threads;
	int64_t position; /* negative: from the end */
	bool has_anchor;
	int64_t anchor, anchor_offset;
	uint64_t limit;
	bool want_total;
};

enum store_query_error {
	STORE_QUERY_FAILED,             /* serverFail */
	STORE_QUERY_UNSUPPORTED_FILTER, /* *error_r says why */
	STORE_QUERY_ANCHOR_NOT_FOUND,
	STORE_QUERY_TOO_MANY_CHANGES,
	STORE_QUERY_CANNOT_CALCULATE,
};

struct store_query_result {
	int64_t *ids; /* caller frees */
	size_t n_ids;
	uint64_t position; /* index of ids[0] in the whole result */
	uint64_t total;    /* when want_total */
};

/* Run a query. -1 with *kind_r and *error_r on failure. */
int store_email_query_run(struct store *s, const struct store_query *q,
                          struct store_query_result *result_r, enum store_query_error *kind_r,
                          const char **error_r);

/* RFC 8620 5.6 queryChanges from state since: every email changed since
 * then (and, for thread-dependent queries, every email of a thread that
 * changed) that may have been in the old results is removed, and added
 * again with its index when it is in the current results. Correct for
 * every filter and sort here; upToId (has_up_to) is honoured when the
 * query uses only immutable properties. max_changes 0 = no limit. */
struct store_query_changes {
	int64_t *removed; /* caller frees */
	size_t n_removed;
	int64_t *added; /* ids; added_index[i] is the index of added[i] */
	uint64_t *added_index;
	size_t n_added;
	uint64_t total; /* when want_total */
};
int store_email_query_changes(struct store *s, const struct store_query *q, uint64_t since,
                              uint64_t max_changes, bool has_up_to, int64_t up_to,
                              struct store_query_changes *changes_r, enum store_query_error *kind_r,
                              const char **error_r);
void store_query_changes_free(struct store_query_changes *changes);

#endif
