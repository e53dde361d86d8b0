/*
 * Account sync: choose the tier, list folders with their status in one
 * round trip, reconcile the folder list (created, renamed, deleted), then
 * sync each folder that changed. See sync.h.
 */
#include "sync-private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../imap/imap-cmd.h"

#define MAX_FOLDERS 10000

struct folder_list {
	struct sync_ctx *ctx;
	struct remote_folder *folders;
	size_t count, cap;
};

static void folder_list_free(struct folder_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->folders[i].name);
	free(l->folders);
	l->folders = NULL;
	l->count = l->cap = 0;
}

static struct remote_folder *folder_find(struct folder_list *l, const char *name)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->folders[i].name, name) == 0)
			return &l->folders[i];
	return NULL;
}

/* INBOX is case-insensitive (RFC 9051 5.1); keep one spelling. */
static const char *canonical_name(const char *name)
{
	return strcasecmp(name, "INBOX") == 0 ? "INBOX" : name;
}

/* Delimiter, selectability and role from a LIST response. */
static void list_attributes(struct remote_folder *f, const struct imap_arg *attrs,
                            const struct imap_arg *delim)
{
	f->delim = delim->type == IMAP_ARG_STRING && delim->len == 1 ? delim->str[0] : 0;
	f->selectable = true;
	f->parent_only = false;
	for (const struct imap_arg *a = attrs->list; a != NULL; a = a->next) {
		if (imap_arg_is_atom(a, "\\Noselect") || imap_arg_is_atom(a, "\\NonExistent"))
			f->selectable = false;
		else if (role_from_attribute(imap_arg_string(a)) != NULL)
			f->role = role_from_attribute(imap_arg_string(a));
	}
	if (strcmp(f->name, "INBOX") == 0)
		f->role = "Inbox";
}

static int folders_grow(struct folder_list *l)
{
	size_t cap = l->cap == 0 ? 32 : l->cap * 2;
	struct remote_folder *f = realloc(l->folders, cap * sizeof(*f));
	if (f == NULL)
		return -1;
	l->folders = f;
	l->cap = cap;
	return 0;
}

static int list_add(struct folder_list *l, const struct imap_arg *args, const char **error_r)
{
	const struct imap_arg *attrs = args, *delim = args != NULL ? args->next : NULL;
	const struct imap_arg *name = delim != NULL ? delim->next : NULL;
	const char *n = imap_arg_string(name);
	if (attrs == NULL || attrs->type != IMAP_ARG_LIST || n == NULL ||
	    (delim->type != IMAP_ARG_NIL && delim->type != IMAP_ARG_STRING)) {
		*error_r = "bad LIST response";
		return -1;
	}
	if (name->len != strlen(n) || n[0] == '\0') {
		*error_r = "LIST response with an empty or NUL-containing mailbox name";
		return -1;
	}
	n = canonical_name(n);
	struct remote_folder *known = folder_find(l, n);
	if (known != NULL) {
		/* Listed after a child made it up as a parent: the listing wins. */
		if (known->parent_only)
			list_attributes(known, attrs, delim);
		return 0;
	}
	if (l->count == MAX_FOLDERS) {
		*error_r = "too many folders";
		return -1;
	}
	if (l->count == l->cap && folders_grow(l) < 0) {
		*error_r = "out of memory";
		return -1;
	}
	struct remote_folder *f = &l->folders[l->count];
	memset(f, 0, sizeof(*f));
	f->name = strdup(n);
	if (f->name == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	l->count++;
	list_attributes(f, attrs, delim);
	return 0;
}

/*
 * Parents the server does not list ("a/b/c" listed, "a/b" not): made up as
 * folders that cannot hold mail (noselect), so that the hierarchy has no
 * holes. A parent listed later takes its listed attributes.
 */
static int add_missing_parents(struct folder_list *l, const char **error_r)
{
	size_t listed = l->count;
	for (size_t i = 0; i < listed; i++) {
		char delim = l->folders[i].delim;
		if (delim == 0)
			continue;
		/* Each prefix ending before a delimiter, shortest first. */
		for (size_t at = 1; l->folders[i].name[at] != '\0'; at++) {
			const char *name = l->folders[i].name;
			if (name[at] != delim || name[at - 1] == delim)
				continue;
			char *parent = strndup(name, at);
			if (parent == NULL) {
				*error_r = "out of memory";
				return -1;
			}
			if (folder_find(l, canonical_name(parent)) == NULL) {
				if (l->count == MAX_FOLDERS ||
				    (l->count == l->cap && folders_grow(l) < 0)) {
					free(parent);
					*error_r = l->count == MAX_FOLDERS ? "too many folders"
					                                   : "out of memory";
					return -1;
				}
				struct remote_folder *f = &l->folders[l->count++];
				memset(f, 0, sizeof(*f));
				if (strcasecmp(parent, "INBOX") == 0) {
					free(parent);
					parent = strdup("INBOX");
					if (parent == NULL) {
						l->count--;
						*error_r = "out of memory";
						return -1;
					}
				}
				f->name = parent;
				f->delim = delim;
				f->parent_only = true;
				parent = NULL;
			}
			free(parent);
		}
	}
	return 0;
}

static int status_add(struct folder_list *l, const struct imap_arg *args)
{
	const char *n = imap_arg_string(args);
	const struct imap_arg *items = args != NULL ? args->next : NULL;
	if (n == NULL || items == NULL || items->type != IMAP_ARG_LIST)
		return -1;
	struct remote_folder *f = folder_find(l, canonical_name(n));
	if (f == NULL)
		return 0;
	bool have_uidvalidity = false, have_uidnext = false;
	for (const struct imap_arg *a = items->list; a != NULL && a->next != NULL;
	     a = a->next->next) {
		uint64_t v;
		if (!imap_arg_number(a->next, UINT64_MAX, &v))
			return -1;
		if (imap_arg_is_atom(a, "MESSAGES"))
			f->messages = (uint32_t)v, f->have_messages = true;
		else if (imap_arg_is_atom(a, "UNSEEN"))
			f->unseen = (uint32_t)v, f->have_unseen = true;
		else if (imap_arg_is_atom(a, "UIDNEXT"))
			f->uidnext = (uint32_t)v, have_uidnext = true;
		else if (imap_arg_is_atom(a, "UIDVALIDITY"))
			f->uidvalidity = (uint32_t)v, have_uidvalidity = true;
		else if (imap_arg_is_atom(a, "HIGHESTMODSEQ"))
			f->highestmodseq = v;
	}
	f->have_status = have_uidvalidity && have_uidnext;
	return 0;
}

static int list_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct folder_list *l = context;
	if (resp->status != IMAP_STATUS_NONE)
		return 0;
	if (imap_arg_is_atom(resp->args, "LIST"))
		return list_add(l, resp->args->next, error_r);
	if (imap_arg_is_atom(resp->args, "STATUS") && status_add(l, resp->args->next) < 0) {
		*error_r = "bad STATUS response";
		return -1;
	}
	return 0;
}

static const char *status_items(const struct sync_ctx *ctx)
{
	/* Plain: UNSEEN too, so that a folder whose counts did not change
	 * can skip the FLAGS scan between full scans (\Seen changes show). */
	return ctx->tier >= SYNC_TIER_CONDSTORE ? "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
	                                        : "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)";
}

/* LIST (with STATUS in the same round trip where LIST-STATUS is offered,
 * else pipelined STATUS commands). */
static int list_folders(struct sync_ctx *ctx, struct folder_list *l)
{
	const char *err;
	bool list_status = imap_client_has_cap(ctx->client, "LIST-STATUS");
	bool special_use = imap_client_has_cap(ctx->client, "SPECIAL-USE");
	struct buf *b = imap_client_cmd(ctx->client, "LIST", &err);
	if (b == NULL || imap_cmd_quoted(b, "", &err) < 0 || imap_cmd_quoted(b, "*", &err) < 0)
		return sync_fail(ctx, "LIST: %s", err);
	if (list_status || special_use) {
		char ret[160];
		snprintf(ret, sizeof(ret), "RETURN (%s%s%s%s)", special_use ? "SPECIAL-USE" : "",
		         special_use && list_status ? " " : "", list_status ? "STATUS " : "",
		         list_status ? status_items(ctx) : "");
		if (imap_cmd_raw(b, ret, &err) < 0)
			return sync_fail(ctx, "LIST: %s", err);
	}
	int r = imap_client_run(ctx->client, list_untagged, l, &err);
	if (r != 0)
		return sync_fail(ctx, "listing folders: %s", err);
	if (add_missing_parents(l, &err) < 0)
		return sync_fail(ctx, "listing folders: %s", err);
	if (list_status)
		return 0;
	/* Pipelined STATUS for every selectable folder. */
	char last_tag[16] = "";
	for (size_t i = 0; i < l->count; i++) {
		if (!l->folders[i].selectable)
			continue;
		const char *tag;
		b = imap_client_cmd(ctx->client, "STATUS", &err);
		if (b == NULL || imap_cmd_astring(b, l->folders[i].name, &err) < 0 ||
		    imap_cmd_raw(b, status_items(ctx), &err) < 0 ||
		    imap_client_send(ctx->client, &tag, &err) != 0)
			return sync_fail(ctx, "STATUS: %s", err);
		snprintf(last_tag, sizeof(last_tag), "%s", tag);
	}
	/* Earlier tagged OKs are passed over by wait(); a NO for one folder
	 * breaks the wait, which is what we want: STATUS must not fail. */
	if (last_tag[0] != '\0' &&
	    imap_client_wait(ctx->client, last_tag, list_untagged, l, &err) != 0)
		return sync_fail(ctx, "STATUS: %s", err);
	return 0;
}

static size_t count_selectable(const struct folder_list *l)
{
	size_t n = 0;
	for (size_t i = 0; i < l->count; i++)
		n += l->folders[i].selectable;
	return n;
}

/* Changes made through the device API that the folder reconcile must
 * respect (see store.h): per local mailbox, the name its server knows it
 * by (before renames made here) and whether it exists only here. */
struct local_view {
	char **server_name; /* NULL entries: the mailbox's own name */
	bool *local_only, *renamed;
};

static void local_view_free(struct local_view *v, size_t n)
{
	for (size_t j = 0; v->server_name != NULL && j < n; j++)
		free(v->server_name[j]);
	free(v->server_name);
	free(v->local_only);
	free(v->renamed);
}

static int local_view_load(struct sync_ctx *ctx, struct store_mailbox *boxes, size_t n,
                           struct local_view *v)
{
	const char *err;
	v->server_name = calloc(n + 1, sizeof(*v->server_name));
	v->local_only = calloc(n + 1, sizeof(*v->local_only));
	v->renamed = calloc(n + 1, sizeof(*v->renamed));
	if (v->server_name == NULL || v->local_only == NULL || v->renamed == NULL)
		return sync_fail(ctx, "out of memory");
	for (size_t j = 0; j < n; j++) {
		int r = store_local_mailbox_origin(ctx->store, boxes[j].id, &v->server_name[j],
		                                   &v->local_only[j], &err);
		if (r < 0)
			return sync_store_failed(ctx, err);
		v->renamed[j] =
		    v->server_name[j] != NULL && strcmp(v->server_name[j], boxes[j].name) != 0;
	}
	return 0;
}

static const char *server_name(const struct local_view *v, const struct store_mailbox *boxes,
                               size_t j)
{
	return v->server_name[j] != NULL ? v->server_name[j] : boxes[j].name;
}

/* A folder became (un)selectable on the server. One that cannot hold mail
 * any more has none on the server: its server messages go (those made
 * here stay for the two-way sync). */
static int set_noselect(struct sync_ctx *ctx, struct store_mailbox *box, bool noselect)
{
	const char *err;
	if (noselect) {
		uint32_t *uids = NULL;
		size_t n = 0;
		if (store_mailbox_uids(ctx->store, box->id, &uids, &n, &err) < 0)
			return sync_store_failed(ctx, err);
		for (size_t i = 0; i < n; i++) {
			if (store_message_expunge(ctx->store, box->id, uids[i], &err) < 0) {
				free(uids);
				return sync_store_failed(ctx, err);
			}
		}
		free(uids);
		/* Selectable again later: a full resync of it. */
		if (store_mailbox_set_state(ctx->store, box->id, 0, 1, 0, &err) < 0)
			return sync_store_failed(ctx, err);
		box->uidvalidity = 0;
		box->uidnext = 1;
		box->highestmodseq = 0;
	}
	if (store_mailbox_set_noselect(ctx->store, box->id, noselect, &err) < 0)
		return sync_store_failed(ctx, err);
	box->noselect = noselect;
	return 0;
}

/*
 * Map server folders to local mailboxes: same (server) name; else a
 * vanished local folder with the same UIDVALIDITY was renamed if its
 * content confirms it (sync_rename_confirmed()); the
 * remaining local ones were deleted on the server, the remaining server
 * ones are new. Mailboxes created through the device API stay; folders
 * destroyed through it are not created again.
 */
static int reconcile_folders(struct sync_ctx *ctx, struct folder_list *l,
                             struct store_mailbox *boxes, size_t nboxes)
{
	const char *err;
	struct local_view lv = {0};
	if (local_view_load(ctx, boxes, nboxes, &lv) < 0) {
		local_view_free(&lv, nboxes);
		return -1;
	}
	bool *matched = calloc(nboxes + 1, sizeof(*matched));
	if (matched == NULL) {
		local_view_free(&lv, nboxes);
		return sync_fail(ctx, "out of memory");
	}
	for (size_t i = 0; i < l->count; i++) {
		struct remote_folder *f = &l->folders[i];
		for (size_t j = 0; j < nboxes && f->mailbox_id == 0; j++) {
			if (!matched[j] && strcmp(server_name(&lv, boxes, j), f->name) == 0) {
				/* Destroyed here and made again under the same name:
				 * the server folder's old mail stays away. */
				int gone = lv.local_only[j]
				               ? store_local_mailbox_destroyed(
				                     ctx->store, ctx->account_id, f->name, &err)
				               : 0;
				if (gone < 0) {
					free(matched);
					local_view_free(&lv, nboxes);
					return sync_store_failed(ctx, err);
				}
				if (gone > 0)
					continue;
				matched[j] = true;
				f->mailbox_id = boxes[j].id;
			}
		}
	}
	int r = 0;
	for (size_t j = 0; j < nboxes && r == 0; j++) {
		if (matched[j])
			continue;
		if (lv.local_only[j]) {
			matched[j] = true; /* made here; the two-way sync creates it */
			continue;
		}
		struct remote_folder *to = NULL;
		for (size_t i = 0; i < l->count && boxes[j].uidvalidity != 0; i++) {
			struct remote_folder *f = &l->folders[i];
			if (f->selectable && f->mailbox_id == 0 && f->have_status &&
			    f->uidvalidity == boxes[j].uidvalidity &&
			    folder_find(l, f->name) == f) {
				bool taken = false;
				for (size_t k = 0; k < nboxes; k++)
					taken |= matched[k] && strcmp(boxes[k].name, f->name) == 0;
				if (taken)
					continue;
				/* UIDVALIDITY is unique per name only: the content
				 * decides. */
				int confirmed = sync_rename_confirmed(ctx, &boxes[j], f);
				if (confirmed < 0)
					r = -1;
				if (confirmed != 0) {
					to = confirmed > 0 ? f : NULL;
					break;
				}
			}
		}
		if (r < 0)
			break;
		if (to != NULL) {
			/* Renamed here too: the local name stays (the server name
			 * is found again by UIDVALIDITY on every sync). */
			if (!lv.renamed[j] && store_mailbox_rename(ctx->store, boxes[j].id,
			                                           to->name, to->delim, &err) < 0)
				r = sync_store_failed(ctx, err);
			to->mailbox_id = boxes[j].id;
			ctx->stats->folders_renamed++;
		} else {
			if (store_mailbox_delete(ctx->store, boxes[j].id, &err) < 0)
				r = sync_store_failed(ctx, err);
			ctx->stats->folders_deleted++;
		}
		matched[j] = true;
	}
	for (size_t i = 0; i < l->count && r == 0; i++) {
		struct remote_folder *f = &l->folders[i];
		if (f->mailbox_id == 0) {
			int gone = store_local_mailbox_destroyed(ctx->store, ctx->account_id,
			                                         f->name, &err);
			if (gone != 0) {
				if (gone < 0)
					r = sync_store_failed(ctx, err);
				f->selectable = false; /* destroyed here: not again */
				continue;
			}
			/* Folders that cannot hold mail (\Noselect, \NonExistent,
			 * parents not listed) are kept as noselect mailboxes. */
			if (store_mailbox_create_noselect(ctx->store, ctx->account_id, f->name,
			                                  f->delim, f->role, !f->selectable,
			                                  &f->mailbox_id, &err) < 0)
				r = sync_store_failed(ctx, err);
			if (f->selectable)
				ctx->stats->folders_created++;
			continue;
		}
		for (size_t j = 0; j < nboxes; j++) {
			if (boxes[j].id != f->mailbox_id)
				continue;
			if (boxes[j].noselect != !f->selectable &&
			    set_noselect(ctx, &boxes[j], !f->selectable) < 0) {
				r = -1;
				break;
			}
			const char *old = boxes[j].role;
			bool same = (old == NULL && f->role == NULL) ||
			            (old != NULL && f->role != NULL && strcmp(old, f->role) == 0);
			if (!same &&
			    store_mailbox_set_role(ctx->store, f->mailbox_id, f->role, &err) < 0)
				r = sync_store_failed(ctx, err);
		}
	}
	free(matched);
	local_view_free(&lv, nboxes);
	return r;
}

static bool lists_equal(const struct folder_list *a, const struct folder_list *b)
{
	if (count_selectable(a) != count_selectable(b))
		return false;
	for (size_t i = 0; i < a->count; i++) {
		if (!a->folders[i].selectable)
			continue;
		bool found = false;
		for (size_t j = 0; j < b->count && !found; j++)
			found = b->folders[j].selectable &&
			        strcmp(a->folders[i].name, b->folders[j].name) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Is name among opts->only_folders (or is there no such list)? */
static bool folder_wanted(const struct sync_options *opts, const char *name)
{
	if (opts == NULL || opts->only_folders == NULL)
		return true;
	for (size_t i = 0; i < opts->n_only_folders; i++) {
		const char *w = opts->only_folders[i];
		if (strcmp(w, name) == 0 ||
		    (strcasecmp(w, "INBOX") == 0 && strcasecmp(name, "INBOX") == 0))
			return true;
	}
	return false;
}

static int sync_folders(struct sync_ctx *ctx)
{
	const char *err;
	struct folder_list l = {.ctx = ctx}, again = {.ctx = ctx};
	struct store_mailbox *boxes = NULL;
	size_t nboxes = 0;
	int r = -1, failures = 0;
	char first_error[sizeof(ctx->error)] = "";

	if (list_folders(ctx, &l) < 0)
		goto out;
	if (store_mailboxes(ctx->store, ctx->account_id, &boxes, &nboxes, &err) < 0) {
		sync_store_failed(ctx, err);
		goto out;
	}
	/* A listing that suddenly lost most folders gets a second look
	 * before anything is deleted. */
	size_t nselectable = 0;
	for (size_t j = 0; j < nboxes; j++)
		nselectable += !boxes[j].noselect;
	if (nselectable >= 2 && count_selectable(&l) * 2 < nselectable) {
		if (list_folders(ctx, &again) < 0)
			goto out;
		if (!lists_equal(&l, &again)) {
			sync_fail(ctx, "the server's folder list changed between two looks; "
			               "not deleting anything, try again later");
			goto out;
		}
	}
	if (reconcile_folders(ctx, &l, boxes, nboxes) < 0 || sync_checkpoint(ctx) < 0)
		goto out;
	ctx->stats->folders = (unsigned)count_selectable(&l);
	int64_t plain_interval = ctx->opts->plain_full_scan_s != 0
	                             ? (int64_t)ctx->opts->plain_full_scan_s
	                             : SYNC_PLAIN_FULL_SCAN_S;
	ctx->prov.status_messages = 0;
	for (size_t i = 0; i < l.count; i++)
		if (l.folders[i].selectable && l.folders[i].have_status)
			ctx->prov.status_messages += l.folders[i].messages;

	/* Gmail or a paced sync: INBOX first (the user sees it at once), All
	 * Mail last (by then most of it joins Emails held already). Three
	 * passes over the list; otherwise one, in the server's order. */
	bool ordered = ctx->gmail || ctx->budget != 0;
	for (size_t k = 0; k < (ordered ? 3 : 1) * l.count && !ctx->paced; k++) {
		size_t i = k % l.count, pass = k / l.count;
		struct remote_folder *f = &l.folders[i];
		if (!f->selectable || !folder_wanted(ctx->opts, f->name))
			continue;
		if (ordered) {
			bool inbox = strcasecmp(f->name, "INBOX") == 0;
			bool all = f->role != NULL && strcmp(f->role, "All") == 0;
			if ((pass == 0) != inbox || (pass == 2) != (all && !inbox))
				continue;
		}
		const struct store_mailbox *local = NULL;
		for (size_t j = 0; j < nboxes; j++)
			if (boxes[j].id == f->mailbox_id)
				local = &boxes[j];
		ctx->sel.mailbox_id = f->mailbox_id;
		ctx->sel.local_uidvalidity = local != NULL ? local->uidvalidity : 0;
		ctx->sel.local_uidnext = local != NULL ? local->uidnext : 1;
		ctx->sel.local_modseq = local != NULL ? local->highestmodseq : 0;
		ctx->sel.stored_uidnext = ctx->sel.local_uidnext;
		ctx->sel.uidvalidity = ctx->sel.local_uidvalidity;
		ctx->sel.committed.uidvalidity = ctx->sel.local_uidvalidity;
		ctx->sel.committed.uidnext = ctx->sel.local_uidnext;
		ctx->sel.committed.modseq = ctx->sel.local_modseq;
		/* Unchanged since last time: not even selected. */
		if (f->have_status && local != NULL && local->uidvalidity == f->uidvalidity &&
		    local->uidnext == f->uidnext && ctx->tier >= SYNC_TIER_CONDSTORE &&
		    local->highestmodseq != 0 && local->highestmodseq == f->highestmodseq) {
			ctx->sel.mailbox_id = 0;
			continue;
		}
		/* Plain tier: the same UIDVALIDITY, UIDNEXT, MESSAGES and UNSEEN
		 * as at a full FLAGS scan less than the interval ago: nothing
		 * arrived or went, no \Seen changed; other flag changes wait
		 * for the next full scan. */
		struct store_plain_scan scan = {0};
		int64_t now = time(NULL);
		bool plain = ctx->tier == SYNC_TIER_PLAIN && f->have_status && f->have_messages &&
		             f->have_unseen && !ctx->paced && !ctx->opts->full_scan &&
		             ctx->opts->only_folders == NULL;
		if (plain && store_plain_scan_get(ctx->store, f->mailbox_id, &scan, &err) < 0) {
			sync_store_failed(ctx, err);
			goto out;
		}
		if (plain && local != NULL && scan.at != 0 && now >= scan.at &&
		    now - scan.at < plain_interval && local->uidvalidity == f->uidvalidity &&
		    local->uidnext == f->uidnext && scan.messages == f->messages &&
		    scan.unseen == f->unseen) {
			ctx->stats->plain_skipped++;
			ctx->sel.mailbox_id = 0;
			continue;
		}
		/* Only new messages since a recent full scan? (sync_folder
		 * checks that the counts add up, else it scans in full.) */
		ctx->sel.plain_hint = plain && local != NULL && scan.at != 0 && now >= scan.at &&
		                      now - scan.at < plain_interval &&
		                      local->uidvalidity == f->uidvalidity &&
		                      f->uidnext > local->uidnext;
		ctx->sel.hint_messages = scan.messages;
		ctx->sel.hint_unseen = scan.unseen;
		ctx->sel.status_messages = f->messages;
		ctx->sel.status_unseen = f->unseen;
		int synced = sync_folder(ctx, f);
		if (synced == 0 && plain && !ctx->paced) {
			/* A full scan (or a folder new here) starts the interval
			 * again; new messages alone keep its start. Recorded with
			 * the next commit; lost, it costs a scan. */
			if (ctx->sel.full_scanned || local == NULL || scan.at == 0 ||
			    !ctx->sel.plain_hint)
				scan.at = now;
			scan.messages = f->messages;
			scan.unseen = f->unseen;
			if (store_plain_scan_set(ctx->store, f->mailbox_id, &scan, &err) < 0) {
				sync_store_failed(ctx, err);
				goto out;
			}
		}
		if (synced < 0) {
			/* Keep what was stored; the folder resumes next time. */
			char saved[sizeof(ctx->error)];
			snprintf(saved, sizeof(saved), "%s", ctx->error);
			if (sync_checkpoint(ctx) < 0 || !imap_client_is_open(ctx->client)) {
				snprintf(ctx->error, sizeof(ctx->error), "%s", saved);
				goto out;
			}
			if (failures++ == 0)
				snprintf(first_error, sizeof(first_error), "%s", saved);
		}
		ctx->sel.mailbox_id = 0;
	}
	if (failures > 0) {
		snprintf(ctx->error, sizeof(ctx->error), "%s%s", first_error,
		         failures > 1 ? " (and more folders failed)" : "");
		goto out;
	}
	r = 0;
out:
	ctx->sel.mailbox_id = 0;
	folder_list_free(&l);
	folder_list_free(&again);
	store_mailboxes_free(&boxes, nboxes);
	return r;
}

int sync_account(struct store *store, const char *account_key, struct imap_client *client,
                 const struct sync_options *opts, struct sync_stats *stats_r, const char **error_r)
{
	static struct sync_ctx ctx_storage;
	struct sync_ctx *ctx = &ctx_storage;
	const char *err;
	memset(ctx, 0, sizeof(*ctx));
	memset(stats_r, 0, sizeof(*stats_r));
	ctx->store = store;
	ctx->client = client;
	ctx->opts = opts;
	ctx->stats = stats_r;
	buf_init(&ctx->keywords, 64 * 1024);

	if (imap_client_has_cap(client, "QRESYNC")) {
		struct buf *b = imap_client_cmd(client, "ENABLE", &err);
		if (b != NULL && imap_cmd_atom(b, "QRESYNC", &err) == 0 &&
		    imap_client_run(client, NULL, NULL, &err) == 0)
			ctx->tier = SYNC_TIER_QRESYNC;
		else if (!imap_client_is_open(client))
			goto fail_err;
	}
	if (ctx->tier == SYNC_TIER_PLAIN && imap_client_has_cap(client, "CONDSTORE"))
		ctx->tier = SYNC_TIER_CONDSTORE;
	ctx->esearch = imap_client_has_cap(client, "ESEARCH");
	static const char *const tier_names[] = {"plain", "CONDSTORE", "QRESYNC"};
	stats_r->tier = tier_names[ctx->tier];

	int r = -1;
	if (store_begin(store, &err) < 0)
		goto fail_err;
	if (store_account_ensure(store, account_key, &ctx->account_id, &err) < 0) {
		store_rollback(store);
		goto fail_err;
	}
	ctx->gmail = imap_client_has_cap(client, "X-GM-EXT-1");
	if (store_provider_get(store, ctx->account_id, &ctx->prov, &err) < 0) {
		store_rollback(store);
		goto fail_err;
	}
	ctx->prov.gm_ext = ctx->gmail;
	/* The daily download budget: as set for the account, else Gmail's
	 * documented ~2.5 GB a day of IMAP download, else none. */
	ctx->budget = ctx->prov.dl_budget >= 0 ? (uint64_t)ctx->prov.dl_budget
	              : ctx->gmail             ? SYNC_GMAIL_DAILY_BYTES
	                                       : 0;
	int64_t day = opts->utc_day != 0 ? opts->utc_day : (int64_t)(time(NULL) / 86400);
	if (ctx->prov.dl_day != day) {
		ctx->prov.dl_day = day;
		ctx->prov.dl_used = 0;
	}
	ctx->dl_start = ctx->prov.dl_used;
	r = sync_folders(ctx);
	ctx->prov.paced = ctx->paced;
	/* The account's progress, written with the last commit. */
	if (!ctx->store_broken &&
	    (store_account_server_messages(store, ctx->account_id, &ctx->prov.held_messages, &err) <
	         0 ||
	     store_provider_put(store, ctx->account_id, &ctx->prov, &err) < 0)) {
		ctx->store_broken = true; /* rolled back below */
		if (r == 0) {
			sync_fail(ctx, "%s", err);
			r = -1;
		}
	}
	stats_r->paced = ctx->paced;
	stats_r->budget = ctx->budget;
	stats_r->budget_used = ctx->prov.dl_used;
	stats_r->held_messages = ctx->prov.held_messages;
	stats_r->status_messages = ctx->prov.status_messages;
	stats_r->bytes_done = ctx->prov.bytes_done;
	/* What is left in the transaction: nothing of a folder (each ends
	 * with its checkpoint), but a broken write must not be committed. */
	if (ctx->store_broken)
		store_rollback(store);
	else if (store_commit(store, &err) < 0 && r == 0) {
		sync_fail(ctx, "%s", err);
		r = -1;
	}
	buf_free(&ctx->keywords);
	if (r < 0)
		*error_r = ctx->error;
	return r;
fail_err:
	buf_free(&ctx->keywords);
	snprintf(ctx->error, sizeof(ctx->error), "%s", err);
	*error_r = ctx->error;
	return -1;
}
