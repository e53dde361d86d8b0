/* Mailboxes by purpose (the Sent folder) and messages by Message-ID
 * (see imap-mailbox.h). */
#include "imap-mailbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap-cmd.h"

#define MAILBOX_LIST_MAX 10000 /* mailboxes looked at; more are ignored */
#define MAILBOX_NAME_MAX 1024

struct listed {
	char *name;
	bool sent, selectable;
};

struct listing {
	struct listed *v;
	size_t n, cap;
	bool oom;
};

/* Untagged LIST responses: "* LIST (attrs) delim name". */
static int list_cb(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct listing *l = ctx;
	(void)error_r;
	if (resp->status != IMAP_STATUS_NONE || !imap_arg_is_atom(resp->args, "LIST"))
		return 0;
	const struct imap_arg *attrs = resp->args->next;
	const struct imap_arg *delim = attrs != NULL ? attrs->next : NULL;
	const struct imap_arg *name = delim != NULL ? delim->next : NULL;
	const char *n = imap_arg_string(name);
	if (attrs == NULL || attrs->type != IMAP_ARG_LIST || delim == NULL || n == NULL ||
	    name->len != strlen(n) || n[0] == '\0' || name->len > MAILBOX_NAME_MAX)
		return 0; /* not usable; other mailboxes may be */
	if (l->n == MAILBOX_LIST_MAX || l->oom)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap == 0 ? 32 : l->cap * 2;
		struct listed *v = realloc(l->v, cap * sizeof(*v));
		if (v == NULL) {
			l->oom = true;
			return 0;
		}
		l->v = v;
		l->cap = cap;
	}
	struct listed *e = &l->v[l->n];
	e->name = strdup(n);
	if (e->name == NULL) {
		l->oom = true;
		return 0;
	}
	e->sent = false;
	e->selectable = true;
	for (const struct imap_arg *a = attrs->list; a != NULL; a = a->next) {
		if (imap_arg_is_atom(a, "\\Sent"))
			e->sent = true;
		else if (imap_arg_is_atom(a, "\\Noselect") || imap_arg_is_atom(a, "\\NonExistent"))
			e->selectable = false;
	}
	l->n++;
	return 0;
}

struct namespace
{
	char prefix[256];
	bool seen;
};

/* "* NAMESPACE (("INBOX." ".")) NIL NIL": the first personal namespace. */
static int namespace_cb(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct namespace *ns = ctx;
	(void)error_r;
	if (resp->status != IMAP_STATUS_NONE || !imap_arg_is_atom(resp->args, "NAMESPACE"))
		return 0;
	const struct imap_arg *personal = resp->args->next;
	if (personal == NULL || personal->type != IMAP_ARG_LIST || personal->list == NULL ||
	    personal->list->type != IMAP_ARG_LIST)
		return 0; /* NIL: no personal namespace */
	const struct imap_arg *first = personal->list->list;
	const char *prefix = imap_arg_string(first);
	if (prefix == NULL || first->len != strlen(prefix) || strlen(prefix) >= sizeof(ns->prefix))
		return 0;
	snprintf(ns->prefix, sizeof(ns->prefix), "%s", prefix);
	ns->seen = true;
	return 0;
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static const struct listed *listing_find(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].selectable && strcasecmp(l->v[i].name, name) == 0)
			return &l->v[i];
	return NULL;
}

static int copy_name(char *name_r, size_t size, const char *a, const char *b, const char **error_r)
{
	int n = snprintf(name_r, size, "%s%s", a, b);
	if (n < 0 || (size_t)n >= size) {
		*error_r = "the Sent folder's name is too long";
		return -1;
	}
	return 0;
}

int imap_mailbox_find_sent(struct imap_client *c, char *name_r, size_t size, bool *exists_r,
                           const char **error_r)
{
	static const char *const names[] = {"Sent", "Sent Items", "Sent Messages"};
	struct listing l = {0};
	struct namespace ns = {{0}, false};
	int r;
	if (imap_client_has_cap(c, "NAMESPACE")) {
		if (imap_client_cmd(c, "NAMESPACE", error_r) == NULL)
			return IMAP_CMD_FAILED;
		r = imap_client_run(c, namespace_cb, &ns, error_r);
		if (r == -1)
			return -1;
	}
	struct buf *b = imap_client_cmd(c, "LIST", error_r);
	if (b == NULL || imap_cmd_quoted(b, "", error_r) < 0 ||
	    imap_cmd_quoted(b, "*", error_r) < 0 ||
	    (imap_client_has_cap(c, "SPECIAL-USE") &&
	     imap_cmd_raw(b, "RETURN (SPECIAL-USE)", error_r) < 0))
		return IMAP_CMD_FAILED; /* nothing was sent */
	r = imap_client_run(c, list_cb, &l, error_r);
	if (r == 0 && l.oom) {
		*error_r = "out of memory";
		r = -1;
	}
	if (r < 0) {
		listing_free(&l);
		return r;
	}
	const struct listed *found = NULL;
	for (size_t i = 0; i < l.n && found == NULL; i++)
		if (l.v[i].sent && l.v[i].selectable)
			found = &l.v[i];
	/* Without NAMESPACE (or a personal namespace), the prefix is "". */
	const char *prefix = ns.seen ? ns.prefix : "";
	char cand[MAILBOX_NAME_MAX + 300];
	for (size_t i = 0; found == NULL && i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(cand, sizeof(cand), "%s%s", prefix, names[i]);
		found = listing_find(&l, cand);
	}
	for (size_t i = 0; found == NULL && i < sizeof(names) / sizeof(names[0]); i++)
		found = listing_find(&l, names[i]);
	if (found != NULL) {
		r = copy_name(name_r, size, found->name, "", error_r);
		*exists_r = true;
	} else {
		r = copy_name(name_r, size, prefix, "Sent", error_r);
		*exists_r = false;
	}
	listing_free(&l);
	return r;
}

/* "* SEARCH 3 7": any number means found. */
static int search_cb(void *ctx, const struct imap_response *resp, const char **error_r)
{
	bool *found = ctx;
	(void)error_r;
	if (resp->status == IMAP_STATUS_NONE && imap_arg_is_atom(resp->args, "SEARCH") &&
	    resp->args->next != NULL)
		*found = true;
	return 0;
}

int imap_mailbox_has_message_id(struct imap_client *c, const char *mailbox, const char *message_id,
                                bool *found_r, const char **error_r)
{
	struct buf *b = imap_client_cmd(c, "EXAMINE", error_r);
	if (b == NULL || imap_cmd_astring(b, mailbox, error_r) < 0)
		return IMAP_CMD_FAILED; /* nothing was sent */
	int r = imap_client_run(c, NULL, NULL, error_r);
	if (r < 0)
		return r;
	bool found = false;
	b = imap_client_cmd(c, "UID SEARCH", error_r);
	if (b == NULL || imap_cmd_atom(b, "HEADER", error_r) < 0 ||
	    imap_cmd_atom(b, "Message-ID", error_r) < 0 ||
	    imap_cmd_quoted(b, message_id, error_r) < 0)
		return IMAP_CMD_FAILED; /* nothing was sent */
	r = imap_client_run(c, search_cb, &found, error_r);
	if (r == 0)
		*found_r = found;
	return r;
}
