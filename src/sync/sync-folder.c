/*
 * Sync of one selected folder, server to hub.
 *
 * Steps (each a function below):
 *
 *   select ──> uidvalidity changed? ──yes──> repair (re-pair by content)
 *                   │ no                              │
 *                   v                                 v
 *   changes to known messages (tier)          fetch unpaired messages
 *     QRESYNC: applied during SELECT                  │
 *     CONDSTORE: CHANGEDSINCE + expunge check         │
 *     plain: FLAGS scan + expunge check               │
 *                   │                                 │
 *                   v                                 │
 *   new messages: size scan, pipelined body fetch     │
 *                   │                                 │
 *                   v                                 v
 *   save state (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) <┘
 *
 * The store's transaction is open throughout; sync_checkpoint() commits it
 * durably every few megabytes, recording how far the fetch got.
 */
#include "sync-private.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../imap/imap-cmd.h"
#include "../lib/array.h"

#define FETCH_BATCH_BYTES (4u * 1024 * 1024)
#define FETCH_BATCH_MSGS 400u
#define FETCH_PIPELINE 3
#define COMMIT_BYTES (32u * 1024 * 1024)
#define COMMIT_MSGS 2000u
#define MAX_LISTED_UIDS 50000000u
#define HEADER_READ_MAX (1024 * 1024)

int sync_fail(struct sync_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->error, sizeof(ctx->error), fmt, ap);
	va_end(ap);
	return -1;
}

int sync_store_failed(struct sync_ctx *ctx, const char *err)
{
	ctx->store_broken = true;
	return sync_fail(ctx, "%s", err);
}

static int store_failed(struct sync_ctx *ctx, const char *err)
{
	return sync_store_failed(ctx, err);
}

/* Roll back the open transaction (it holds a failed write, or the commit
 * failed) and open the next; the selected folder's state is what was
 * committed last, so nothing claims messages that were not stored. */
static void checkpoint_abandon(struct sync_ctx *ctx)
{
	const char *err;
	store_rollback(ctx->store);
	ctx->store_broken = false;
	ctx->sel.uidvalidity = ctx->sel.committed.uidvalidity;
	ctx->sel.stored_uidnext = ctx->sel.committed.uidnext;
	ctx->sel.local_modseq = ctx->sel.committed.modseq;
	if (store_begin(ctx->store, &err) < 0)
		snprintf(ctx->error, sizeof(ctx->error), "%s", err);
}

int sync_checkpoint(struct sync_ctx *ctx)
{
	const char *err;
	if (ctx->store_broken) {
		checkpoint_abandon(ctx);
		return -1;
	}
	if ((ctx->sel.mailbox_id != 0 &&
	     store_mailbox_set_state(ctx->store, ctx->sel.mailbox_id, ctx->sel.uidvalidity,
	                             ctx->sel.stored_uidnext, ctx->sel.local_modseq, &err) < 0) ||
	    (ctx->account_id != 0 &&
	     store_provider_put(ctx->store, ctx->account_id, &ctx->prov, &err) < 0) ||
	    store_commit(ctx->store, &err) < 0) {
		sync_fail(ctx, "%s", err);
		checkpoint_abandon(ctx);
		return -1;
	}
	ctx->sel.committed.uidvalidity = ctx->sel.uidvalidity;
	ctx->sel.committed.uidnext = ctx->sel.stored_uidnext;
	ctx->sel.committed.modseq = ctx->sel.local_modseq;
	if (store_begin(ctx->store, &err) < 0)
		return sync_fail(ctx, "%s", err);
	ctx->bytes_since_commit = 0;
	ctx->msgs_since_commit = 0;
	return 0;
}

static void report_progress(struct sync_ctx *ctx, bool force)
{
	if (ctx->opts->progress == NULL)
		return;
	double now = clock_mono();
	if (!force && now - ctx->last_progress < 0.1)
		return;
	ctx->last_progress = now;
	ctx->opts->progress(ctx->opts->progress_ctx, &ctx->progress);
}

/* Find "NAME value" in a FETCH item list. */
static const struct imap_arg *fetch_item(const struct imap_arg *list, const char *name)
{
	for (const struct imap_arg *a = list; a != NULL && a->next != NULL; a = a->next->next)
		if (imap_arg_is_atom(a, name))
			return a->next;
	return NULL;
}

/* "* n FETCH (...)": returns the item list or NULL. */
static const struct imap_arg *fetch_response(const struct imap_response *resp)
{
	const struct imap_arg *a = resp->args;
	uint64_t seq;
	if (resp->status != IMAP_STATUS_NONE || !imap_arg_number(a, UINT32_MAX, &seq) ||
	    !imap_arg_is_atom(a->next, "FETCH") || a->next->next == NULL ||
	    a->next->next->type != IMAP_ARG_LIST)
		return NULL;
	return a->next->next->list;
}

static bool fetch_uid(const struct imap_arg *items, uint32_t *uid_r)
{
	uint64_t uid;
	if (!imap_arg_number(fetch_item(items, "UID"), UINT32_MAX, &uid) || uid == 0)
		return false;
	*uid_r = (uint32_t)uid;
	return true;
}

/* A flags update for a message we hold (FETCH with UID and FLAGS). */
static int apply_flags(struct sync_ctx *ctx, const struct imap_arg *items)
{
	uint32_t uid;
	const struct imap_arg *flags = fetch_item(items, "FLAGS");
	if (flags == NULL || !fetch_uid(items, &uid) || uid >= ctx->sel.local_uidnext)
		return 0;
	unsigned mask;
	if (flags_parse(flags, &mask, &ctx->keywords) < 0)
		return sync_fail(ctx, "%s: bad FLAGS for UID %u", ctx->sel.folder->name, uid);
	uint64_t before = store_modseq(ctx->store);
	const char *err;
	if (store_message_set_flags(ctx->store, ctx->sel.mailbox_id, uid, mask,
	                            buf_str(&ctx->keywords), &err) < 0)
		return store_failed(ctx, err);
	if (store_modseq(ctx->store) != before)
		ctx->stats->flag_changes++;
	return 0;
}

static int apply_vanished(struct sync_ctx *ctx, const struct imap_arg *a)
{
	if (a != NULL && a->type == IMAP_ARG_LIST)
		a = a->next; /* (EARLIER) */
	const char *set = imap_arg_string(a);
	struct uidvec v = {0};
	if (set == NULL || uidvec_parse_set(&v, set, MAX_LISTED_UIDS) < 0) {
		uidvec_free(&v);
		return sync_fail(ctx, "%s: bad VANISHED response", ctx->sel.folder->name);
	}
	const char *err;
	for (size_t i = 0; i < v.count; i++) {
		uint64_t before = store_modseq(ctx->store);
		if (store_message_expunge(ctx->store, ctx->sel.mailbox_id, v.uids[i], &err) < 0) {
			uidvec_free(&v);
			return store_failed(ctx, err);
		}
		if (store_modseq(ctx->store) != before)
			ctx->stats->expunged++;
	}
	uidvec_free(&v);
	return 0;
}

/* Untagged responses while a folder is selected. */
static int selected_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct sync_ctx *ctx = context;
	int r = 0;
	uint64_t n;
	if (resp->status == IMAP_STATUS_OK && resp->code != NULL) {
		const char *code = resp->code;
		if (strcasecmp(code, "UIDVALIDITY") == 0 &&
		    imap_arg_number(resp->code_args, UINT32_MAX, &n))
			ctx->sel.uidvalidity = (uint32_t)n;
		else if (strcasecmp(code, "UIDNEXT") == 0 &&
		         imap_arg_number(resp->code_args, UINT32_MAX, &n))
			ctx->sel.uidnext = (uint32_t)n;
		else if (strcasecmp(code, "HIGHESTMODSEQ") == 0 &&
		         imap_arg_number(resp->code_args, UINT64_MAX, &n))
			ctx->sel.highestmodseq = n;
		else if (strcasecmp(code, "NOMODSEQ") == 0)
			ctx->sel.nomodseq = true;
	} else if (resp->status == IMAP_STATUS_NONE) {
		const struct imap_arg *items = fetch_response(resp);
		if (items != NULL)
			r = apply_flags(ctx, items);
		else if (imap_arg_is_atom(resp->args, "VANISHED"))
			r = apply_vanished(ctx, resp->args->next);
		else if (imap_arg_number(resp->args, UINT32_MAX, &n) &&
		         imap_arg_is_atom(resp->args->next, "EXISTS"))
			ctx->sel.exists = (uint32_t)n;
	}
	if (r < 0)
		*error_r = ctx->error;
	return r;
}

/* Run the command in the client's buffer with the selected handler. */
static int run_selected(struct sync_ctx *ctx, imap_untagged_fn *fn)
{
	const char *err;
	int r = imap_client_run(ctx->client, fn, ctx, &err);
	if (r != 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	return 0;
}

/* EXAMINE the folder: 0, 1 when the server says it does not exist (any more),
 * -1 on error. */
static int select_folder(struct sync_ctx *ctx)
{
	const char *err;
	struct buf *b = imap_client_cmd(ctx->client, "EXAMINE", &err);
	if (b == NULL || imap_cmd_astring(b, ctx->sel.folder->name, &err) < 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	char params[96];
	params[0] = '\0';
	if (ctx->tier == SYNC_TIER_QRESYNC && ctx->sel.local_uidvalidity != 0 &&
	    ctx->sel.local_modseq != 0)
		snprintf(params, sizeof(params), "(QRESYNC (%u %llu))", ctx->sel.local_uidvalidity,
		         (unsigned long long)ctx->sel.local_modseq);
	else if (ctx->tier >= SYNC_TIER_CONDSTORE)
		snprintf(params, sizeof(params), "(CONDSTORE)");
	if (params[0] != '\0' && imap_cmd_raw(b, params, &err) < 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	int r = imap_client_run(ctx->client, selected_untagged, ctx, &err);
	if (r == IMAP_CMD_FAILED && strcmp(imap_client_last_code(ctx->client), "NONEXISTENT") == 0)
		return 1; /* renamed or deleted since the LIST (another client): next time */
	if (r != 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	if (ctx->sel.uidvalidity == 0)
		return sync_fail(ctx, "%s: server sent no UIDVALIDITY", ctx->sel.folder->name);
	return 0;
}

/* List the UIDs below 'below' the server has now (UID SEARCH). */
struct search_ctx {
	struct sync_ctx *ctx;
	struct uidvec *v;
};

static int search_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct search_ctx *sc = context;
	const struct imap_arg *a = resp->args;
	if (resp->status != IMAP_STATUS_NONE)
		return 0;
	if (imap_arg_is_atom(a, "SEARCH")) {
		for (a = a->next; a != NULL; a = a->next) {
			uint64_t uid;
			if (!imap_arg_number(a, UINT32_MAX, &uid) ||
			    uidvec_add(sc->v, (uint32_t)uid) < 0)
				goto bad;
		}
		return 0;
	}
	if (imap_arg_is_atom(a, "ESEARCH")) {
		for (a = a->next; a != NULL; a = a->next) {
			if (imap_arg_is_atom(a, "ALL")) {
				const char *set = imap_arg_string(a->next);
				if (set == NULL ||
				    uidvec_parse_set(sc->v, set, MAX_LISTED_UIDS) < 0)
					goto bad;
				a = a->next;
			}
		}
		return 0;
	}
	if (fetch_response(resp) != NULL)
		return selected_untagged(sc->ctx, resp, error_r);
	return 0;
bad:
	*error_r = "bad SEARCH response";
	return -1;
}

static int list_server_uids(struct sync_ctx *ctx, uint32_t below, struct uidvec *v)
{
	const char *err;
	char range[32];
	snprintf(range, sizeof(range), "1:%u", below - 1);
	struct buf *b = imap_client_cmd(ctx->client, "UID SEARCH", &err);
	if (b == NULL || (ctx->esearch && imap_cmd_raw(b, "RETURN (ALL)", &err) < 0) ||
	    imap_cmd_atom(b, "UID", &err) < 0 || imap_cmd_seqset(b, range, &err) < 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	struct search_ctx sc = {ctx, v};
	int r = imap_client_run(ctx->client, search_untagged, &sc, &err);
	if (r != 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	uidvec_sort(v);
	return 0;
}

/*
 * Remove the messages we hold below local_uidnext that are not in present
 * (sorted). A sudden mass disappearance (more than half of the folder) is
 * applied only if a second, independent listing confirms it.
 */
static int expunge_missing(struct sync_ctx *ctx, const struct uidvec *present)
{
	const char *err;
	uint32_t *local = NULL;
	size_t nlocal = 0, missing = 0;
	if (store_mailbox_uids(ctx->store, ctx->sel.mailbox_id, &local, &nlocal, &err) < 0)
		return store_failed(ctx, err);
	for (size_t i = 0; i < nlocal; i++)
		if (local[i] < ctx->sel.local_uidnext && !uidvec_contains(present, local[i]))
			missing++;
	unsigned min = ctx->opts->mass_delete_min != 0 ? ctx->opts->mass_delete_min : 10;
	struct uidvec second = {0};
	const struct uidvec *confirm = NULL;
	if (missing >= min && missing * 2 > nlocal) {
		if (list_server_uids(ctx, ctx->sel.local_uidnext, &second) < 0)
			goto fail;
		confirm = &second;
	}
	for (size_t i = 0; i < nlocal; i++) {
		uint32_t uid = local[i];
		if (uid >= ctx->sel.local_uidnext || uidvec_contains(present, uid))
			continue;
		if (confirm != NULL && uidvec_contains(confirm, uid))
			continue; /* the second look still sees it: keep */
		if (store_message_expunge(ctx->store, ctx->sel.mailbox_id, uid, &err) < 0) {
			store_failed(ctx, err);
			goto fail;
		}
		ctx->stats->expunged++;
	}
	free(local);
	uidvec_free(&second);
	return 0;
fail:
	free(local);
	uidvec_free(&second);
	return -1;
}

/* Plain tier: FLAGS of every known message; absent ones were expunged. */
struct scan_ctx {
	struct sync_ctx *ctx;
	struct uidvec seen;
};

static int scan_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct scan_ctx *sc = context;
	const struct imap_arg *items = fetch_response(resp);
	uint32_t uid;
	if (items != NULL && fetch_uid(items, &uid) && uid < sc->ctx->sel.local_uidnext &&
	    uidvec_add(&sc->seen, uid) < 0) {
		*error_r = "out of memory";
		return -1;
	}
	return selected_untagged(sc->ctx, resp, error_r);
}

static int sync_known_plain(struct sync_ctx *ctx)
{
	const char *err;
	char range[32];
	snprintf(range, sizeof(range), "1:%u", ctx->sel.local_uidnext - 1);
	struct buf *b = imap_client_cmd(ctx->client, "UID FETCH", &err);
	if (b == NULL || imap_cmd_seqset(b, range, &err) < 0 ||
	    imap_cmd_raw(b, "(UID FLAGS)", &err) < 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	struct scan_ctx sc = {.ctx = ctx};
	int r = imap_client_run(ctx->client, scan_untagged, &sc, &err);
	if (r != 0) {
		uidvec_free(&sc.seen);
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	}
	uidvec_sort(&sc.seen);
	r = expunge_missing(ctx, &sc.seen);
	uidvec_free(&sc.seen);
	return r;
}

/* CONDSTORE tier: only what changed since our modseq. */
static int sync_known_condstore(struct sync_ctx *ctx)
{
	const char *err;
	char range[32], changed[64];
	snprintf(range, sizeof(range), "1:%u", ctx->sel.local_uidnext - 1);
	snprintf(changed, sizeof(changed), "(UID FLAGS) (CHANGEDSINCE %llu)",
	         (unsigned long long)ctx->sel.local_modseq);
	struct buf *b = imap_client_cmd(ctx->client, "UID FETCH", &err);
	if (b == NULL || imap_cmd_seqset(b, range, &err) < 0 || imap_cmd_raw(b, changed, &err) < 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	return run_selected(ctx, selected_untagged);
}

/* Expunges without QRESYNC: the server's count of old messages against
 * ours; only when they differ do we list UIDs. */
static int check_expunges(struct sync_ctx *ctx, size_t new_count)
{
	const char *err;
	uint32_t local_count;
	if (store_mailbox_server_count(ctx->store, ctx->sel.mailbox_id, &local_count, &err) < 0)
		return store_failed(ctx, err);
	if ((uint64_t)local_count + new_count == ctx->sel.exists)
		return 0;
	struct uidvec present = {0};
	int r = list_server_uids(ctx, ctx->sel.local_uidnext, &present);
	if (r == 0)
		r = expunge_missing(ctx, &present);
	uidvec_free(&present);
	return r;
}

/* Size scan of the new messages: UID FETCH n:* (UID RFC822.SIZE). */
struct sizes_ctx {
	struct sync_ctx *ctx;
	struct uidvec *v;
	uint32_t from;
};

/* Gmail: a new message whose X-GM-MSGID the account holds joins that
 * Email (its flags and date from the size scan): 1 done, 0 not known, -1
 * error. */
static int gmail_link(struct sync_ctx *ctx, uint32_t uid, const struct imap_arg *items)
{
	uint64_t msgid;
	int64_t blob_id, date;
	unsigned flags;
	const char *err, *datestr = imap_arg_string(fetch_item(items, "INTERNALDATE"));
	if (!imap_arg_number(fetch_item(items, "X-GM-MSGID"), UINT64_MAX, &msgid) || msgid == 0)
		return 0;
	int found = store_gmail_find(ctx->store, ctx->sel.mailbox_id, msgid, &blob_id, &err);
	if (found <= 0)
		return found < 0 ? store_failed(ctx, err) : 0;
	if (flags_parse(fetch_item(items, "FLAGS"), &flags, &ctx->keywords) < 0 ||
	    datestr == NULL || internaldate_parse(datestr, &date) < 0)
		return sync_fail(ctx, "%s: bad FLAGS or INTERNALDATE for UID %u",
		                 ctx->sel.folder->name, uid);
	if (store_message_add(ctx->store, ctx->sel.mailbox_id, uid, blob_id, flags,
	                      buf_str(&ctx->keywords), date, &err) < 0)
		return store_failed(ctx, err);
	ctx->stats->linked++;
	/* A large All Mail joins many: commit now and then (the folder's
	 * UIDNEXT is not moved; a resumed run skips what is held). */
	if (++ctx->msgs_since_commit >= COMMIT_MSGS && sync_checkpoint(ctx) < 0)
		return -1;
	return 1;
}

static int sizes_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct sizes_ctx *sc = context;
	const struct imap_arg *items = fetch_response(resp);
	uint32_t uid;
	uint64_t size;
	if (items != NULL && fetch_uid(items, &uid) &&
	    imap_arg_number(fetch_item(items, "RFC822.SIZE"), UINT64_MAX, &size)) {
		if (uid < sc->from)
			return 0; /* "n:*" includes the last message even below n */
		if (sc->v->count > 0 && uid <= sc->v->uids[sc->v->count - 1]) {
			*error_r = "server sent UIDs out of order";
			return -1;
		}
		/* Held already: fetched newest first by a run the download
		 * budget stopped, or joined to an Email by its X-GM-MSGID. */
		const char *err;
		int held = store_message_held(sc->ctx->store, sc->ctx->sel.mailbox_id, uid, &err);
		if (held < 0)
			held = store_failed(sc->ctx, err);
		else if (held == 0 && sc->ctx->gmail)
			held = gmail_link(sc->ctx, uid, items);
		if (held < 0) {
			*error_r = sc->ctx->error;
			return -1;
		}
		if (held > 0)
			return 0;
		unsigned mask;
		const struct imap_arg *fl = fetch_item(items, "FLAGS");
		if (fl != NULL && !sc->ctx->gmail &&
		    flags_parse(fl, &mask, &sc->ctx->keywords) == 0 && !(mask & STORE_FLAG_SEEN))
			sc->ctx->sel.fresh_unseen++;
		if (uidvec_add_sized(sc->v, uid, size) < 0) {
			*error_r = "out of memory";
			return -1;
		}
		return 0;
	}
	return selected_untagged(sc->ctx, resp, error_r);
}

static int scan_new(struct sync_ctx *ctx, struct uidvec *v)
{
	const char *err;
	char range[32];
	snprintf(range, sizeof(range), "%u:*", ctx->sel.local_uidnext);
	struct buf *b = imap_client_cmd(ctx->client, "UID FETCH", &err);
	if (b == NULL || imap_cmd_seqset(b, range, &err) < 0 ||
	    imap_cmd_raw(b,
	                 ctx->gmail            ? "(UID RFC822.SIZE FLAGS INTERNALDATE X-GM-MSGID)"
	                 : ctx->sel.plain_hint ? "(UID RFC822.SIZE FLAGS)"
	                                       : "(UID RFC822.SIZE)",
	                 &err) < 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	struct sizes_ctx sc = {ctx, v, ctx->sel.local_uidnext};
	int r = imap_client_run(ctx->client, sizes_untagged, &sc, &err);
	if (r != 0)
		return sync_fail(ctx, "%s: %s", ctx->sel.folder->name, err);
	return 0;
}

/* Body streaming: large literals go straight into the store. */
static int body_begin(void *context, const struct imap_response *partial, uint64_t size,
                      const char **error_r)
{
	struct sync_ctx *ctx = context;
	(void)partial;
	if (ctx->writer != NULL) {
		*error_r = "two message bodies in one FETCH response";
		return -1;
	}
	if (store_blob_begin(ctx->store, size, &ctx->writer, error_r) < 0) {
		ctx->store_broken = true;
		return -1;
	}
	return 0;
}

static int body_data(void *context, const void *data, size_t len, const char **error_r)
{
	struct sync_ctx *ctx = context;
	ctx->progress.bytes_done += len;
	report_progress(ctx, false);
	if (store_blob_write(ctx->writer, data, len, error_r) < 0) {
		ctx->store_broken = true;
		return -1;
	}
	return 0;
}

static int body_end(void *context, const char **error_r)
{
	struct sync_ctx *ctx = context;
	if (store_blob_finish(&ctx->writer, &ctx->streamed_blob, error_r) < 0) {
		ctx->store_broken = true;
		return -1;
	}
	ctx->have_streamed_blob = true;
	return 0;
}

static int store_inline_body(struct sync_ctx *ctx, const struct imap_arg *body, int64_t *blob_r)
{
	const char *err;
	struct store_blob_writer *w;
	if (store_blob_begin(ctx->store, body->len, &w, &err) < 0 ||
	    store_blob_write(w, body->str, body->len, &err) < 0 ||
	    store_blob_finish(&w, blob_r, &err) < 0) {
		store_blob_abort(&w);
		return store_failed(ctx, err);
	}
	ctx->progress.bytes_done += body->len;
	return 0;
}

/* The position of uid in the fetch list; an error if it was not asked
 * for or has arrived already. */
static int fetch_index(struct sync_ctx *ctx, uint32_t uid, size_t *index_r)
{
	const struct uidvec *v = ctx->fetch_list;
	size_t lo = 0, hi = v != NULL ? v->count : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (v == NULL || lo == v->count || v->uids[lo] != uid)
		return sync_fail(ctx, "%s: server sent UID %u, which was not asked for",
		                 ctx->sel.folder->name, uid);
	if (ctx->fetch_done[lo])
		return sync_fail(ctx, "%s: server sent UID %u twice", ctx->sel.folder->name, uid);
	*index_r = lo;
	return 0;
}

/* Record that the message at index of the fetch list is stored (only once
 * it is: a checkpoint writes stored_uidnext in the same transaction);
 * everything below the first missing one is. */
static void fetch_mark_stored(struct sync_ctx *ctx, size_t index)
{
	const struct uidvec *v = ctx->fetch_list;
	ctx->fetch_done[index] = true;
	while (ctx->fetch_low < v->count && ctx->fetch_done[ctx->fetch_low])
		ctx->fetch_low++;
	ctx->sel.stored_uidnext =
	    ctx->fetch_low < v->count ? v->uids[ctx->fetch_low] : v->uids[v->count - 1] + 1;
}

/* A FETCH with a body: store the message. */
static int message_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct sync_ctx *ctx = context;
	const struct imap_arg *items = fetch_response(resp);
	const struct imap_arg *body = items != NULL ? fetch_item(items, "BODY[]") : NULL;
	if (body == NULL) {
		ctx->have_streamed_blob = false;
		return selected_untagged(ctx, resp, error_r);
	}
	const char *folder = ctx->sel.folder->name;
	uint32_t uid;
	unsigned flags = 0;
	int64_t date = 0, blob_id;
	size_t index = 0;
	const char *datestr = imap_arg_string(fetch_item(items, "INTERNALDATE"));
	int r = -1;
	if (!fetch_uid(items, &uid))
		sync_fail(ctx, "%s: FETCH without UID", folder);
	else if (flags_parse(fetch_item(items, "FLAGS"), &flags, &ctx->keywords) < 0)
		sync_fail(ctx, "%s: bad FLAGS for UID %u", folder, uid);
	else if (datestr == NULL || internaldate_parse(datestr, &date) < 0)
		sync_fail(ctx, "%s: bad INTERNALDATE for UID %u", folder, uid);
	else if (fetch_index(ctx, uid, &index) < 0)
		; /* error set */
	else
		r = 0;
	if (r == 0) {
		if (body->type == IMAP_ARG_LITERAL_STREAM && ctx->have_streamed_blob)
			blob_id = ctx->streamed_blob;
		else if (body->type == IMAP_ARG_STRING)
			r = store_inline_body(ctx, body, &blob_id);
		else
			r = sync_fail(ctx, "%s: UID %u has no message body (NIL)", folder, uid);
	}
	ctx->have_streamed_blob = false;
	const char *err;
	if (r == 0 && store_message_add(ctx->store, ctx->sel.mailbox_id, uid, blob_id, flags,
	                                buf_str(&ctx->keywords), date, &err) < 0)
		r = store_failed(ctx, err);
	uint64_t msgid, thrid;
	if (r == 0 && ctx->gmail &&
	    ((imap_arg_number(fetch_item(items, "X-GM-MSGID"), UINT64_MAX, &msgid) && msgid != 0 &&
	      store_gmail_set_msgid(ctx->store, ctx->sel.mailbox_id, uid, msgid, &err) < 0) ||
	     (imap_arg_number(fetch_item(items, "X-GM-THRID"), UINT64_MAX, &thrid) && thrid != 0 &&
	      store_gmail_set_thread(ctx->store, ctx->sel.mailbox_id, uid, thrid, &err) < 0)))
		r = store_failed(ctx, err);
	if (r < 0) {
		*error_r = ctx->error;
		return -1;
	}
	fetch_mark_stored(ctx, index);
	uint64_t size = body->type == IMAP_ARG_STRING ? body->len : body->literal_size;
	ctx->prov.dl_used += size;
	ctx->prov.bytes_done += size;
	ctx->stats->new_messages++;
	ctx->stats->new_bytes += size;
	ctx->progress.msgs_done++;
	ctx->bytes_since_commit += size;
	ctx->msgs_since_commit++;
	report_progress(ctx, false);
	if ((ctx->bytes_since_commit >= COMMIT_BYTES || ctx->msgs_since_commit >= COMMIT_MSGS) &&
	    sync_checkpoint(ctx) < 0) {
		*error_r = ctx->error;
		return -1;
	}
	return 0;
}

/* Fetch the messages in v (ascending UIDs with sizes), pipelined. */
static int fetch_messages(struct sync_ctx *ctx, const struct uidvec *v)
{
	const char *folder = ctx->sel.folder->name, *err;
	char tags[FETCH_PIPELINE][16];
	size_t head = 0, inflight = 0, next = 0;
	/* Under a daily budget newest first (the user sees recent mail at
	 * once; a later run skips what is held): batches from the end. */
	bool newest_first = ctx->budget != 0;
	size_t left = v->count; /* newest first: v[0..left) not yet asked for */
	int r = 0;
	struct imap_literal_sink sink = {body_begin, body_data, body_end, ctx};
	struct buf set;
	buf_init(&set, 32 * 1024);
	if (v->count == 0)
		return 0;
	ctx->fetch_done = calloc(v->count, sizeof(*ctx->fetch_done));
	if (ctx->fetch_done == NULL)
		return sync_fail(ctx, "out of memory");
	ctx->fetch_list = v;
	ctx->fetch_low = 0;
	imap_client_set_literal_sink(ctx->client, &sink);
	while (r == 0 && ((newest_first ? left > 0 : next < v->count) || inflight > 0)) {
		while ((newest_first ? left > 0 : next < v->count) && inflight < FETCH_PIPELINE &&
		       !ctx->paced) {
			size_t start = next, end = next;
			uint64_t bytes = 0;
			if (newest_first) {
				start = end = left;
				while (start > 0 && end - start < FETCH_BATCH_MSGS &&
				       (bytes == 0 ||
				        bytes + v->sizes[start - 1] <= FETCH_BATCH_BYTES))
					bytes += v->sizes[--start];
			} else {
				while (end < v->count && end - next < FETCH_BATCH_MSGS &&
				       (bytes == 0 || bytes + v->sizes[end] <= FETCH_BATCH_BYTES))
					bytes += v->sizes[end++];
			}
			/* The daily budget: stop asking once it would be
			 * exceeded (the first message of a day always goes, so
			 * a message larger than the budget still arrives). */
			if (ctx->budget != 0) {
				while (end - start > 1 &&
				       ctx->dl_start + ctx->issued + bytes > ctx->budget) {
					if (newest_first)
						bytes -= v->sizes[start++];
					else
						bytes -= v->sizes[--end];
				}
				if (ctx->dl_start + ctx->issued + bytes > ctx->budget &&
				    (ctx->dl_start != 0 || ctx->issued != 0)) {
					ctx->paced = true;
					break;
				}
			}
			ctx->issued += bytes;
			buf_reset(&set);
			if (uidset_format(&set, v->uids, start, end) < 0) {
				r = sync_fail(ctx, "%s: cannot build FETCH", folder);
				break;
			}
			struct buf *b = imap_client_cmd(ctx->client, "UID FETCH", &err);
			const char *tag;
			if (b == NULL || imap_cmd_seqset(b, buf_str(&set), &err) < 0 ||
			    imap_cmd_raw(
			        b,
			        ctx->gmail
			            ? "(UID FLAGS INTERNALDATE X-GM-MSGID X-GM-THRID BODY.PEEK[])"
			            : "(UID FLAGS INTERNALDATE BODY.PEEK[])",
			        &err) < 0 ||
			    imap_client_send(ctx->client, &tag, &err) != 0) {
				r = sync_fail(ctx, "%s: %s", folder, err);
				break;
			}
			snprintf(tags[(head + inflight) % FETCH_PIPELINE], sizeof(tags[0]), "%s",
			         tag);
			inflight++;
			if (newest_first)
				left = start;
			else
				next = end;
		}
		if (r != 0 || inflight == 0)
			break;
		int w = imap_client_wait(ctx->client, tags[head], message_untagged, ctx, &err);
		if (w != 0)
			r = sync_fail(ctx, "%s: %s", folder, err);
		head = (head + 1) % FETCH_PIPELINE;
		inflight--;
	}
	imap_client_set_literal_sink(ctx->client, NULL);
	store_blob_abort(&ctx->writer);
	buf_free(&set);
	free(ctx->fetch_done);
	ctx->fetch_done = NULL;
	ctx->fetch_list = NULL;
	report_progress(ctx, true);
	return r;
}

/* Read the header of a stored message (through the blank line) and hash it
 * together with the size: the key that pairs messages across a UIDVALIDITY
 * change without downloading them again. */
struct pair_key {
	uint64_t size;
	unsigned char hash[32];
	uint32_t uid; /* local: old UID; remote: new UID */
	bool used;
};

static int cmp_pair_key(const void *a, const void *b)
{
	const struct pair_key *x = a, *y = b;
	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return memcmp(x->hash, y->hash, sizeof(x->hash));
}

static void hash_bytes(const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

static int local_header_key(struct sync_ctx *ctx, const struct store_msg *m, struct pair_key *k)
{
	/* The store computes it (store-local records it for messages moved
	 * or destroyed through the device API the same way). */
	const char *err;
	if (store_blob_header_hash(ctx->store, m->blob_id, m->size, k->hash, &err) < 0)
		return store_failed(ctx, err);
	k->size = m->size;
	k->uid = m->uid;
	return 0;
}

struct repair_ctx {
	struct sync_ctx *ctx;
	struct pair_key *remote;
	unsigned *remote_flags;
	int64_t *remote_dates;
	char **remote_keywords;
	size_t count, cap;
	/* A header too large to arrive inline is hashed as it streams. */
	EVP_MD_CTX *md;
	unsigned char streamed_hash[32];
	bool have_streamed_hash;
	/* Checking a rename (no folder selected for sync): other untagged
	 * responses are not the sync's. */
	bool confirming;
};

static int header_begin(void *context, const struct imap_response *partial, uint64_t size,
                        const char **error_r)
{
	struct repair_ctx *rc = context;
	(void)partial, (void)size;
	rc->have_streamed_hash = false;
	if (EVP_DigestInit_ex(rc->md, EVP_sha256(), NULL) != 1) {
		*error_r = "cannot start SHA-256";
		return -1;
	}
	return 0;
}

static int header_data(void *context, const void *data, size_t len, const char **error_r)
{
	struct repair_ctx *rc = context;
	(void)error_r;
	EVP_DigestUpdate(rc->md, data, len);
	return 0;
}

static int header_end(void *context, const char **error_r)
{
	struct repair_ctx *rc = context;
	unsigned int n = sizeof(rc->streamed_hash);
	(void)error_r;
	EVP_DigestFinal_ex(rc->md, rc->streamed_hash, &n);
	rc->have_streamed_hash = true;
	return 0;
}

static int repair_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct repair_ctx *rc = context;
	const struct imap_arg *items = fetch_response(resp);
	const struct imap_arg *hdr = items != NULL ? fetch_item(items, "BODY[HEADER]") : NULL;
	uint32_t uid;
	uint64_t size;
	unsigned flags;
	int64_t date;
	if (hdr == NULL)
		return rc->confirming ? 0 : selected_untagged(rc->ctx, resp, error_r);
	const char *datestr = imap_arg_string(fetch_item(items, "INTERNALDATE"));
	if (!fetch_uid(items, &uid) ||
	    !imap_arg_number(fetch_item(items, "RFC822.SIZE"), UINT64_MAX, &size) ||
	    datestr == NULL || internaldate_parse(datestr, &date) < 0 ||
	    flags_parse(fetch_item(items, "FLAGS"), &flags, &rc->ctx->keywords) < 0 ||
	    (hdr->type != IMAP_ARG_STRING &&
	     !(hdr->type == IMAP_ARG_LITERAL_STREAM && rc->have_streamed_hash))) {
		*error_r = "bad FETCH response while re-pairing messages";
		return -1;
	}
	if (rc->count == rc->cap) {
		size_t cap = rc->cap == 0 ? 256 : rc->cap * 2;
		struct pair_key *k = realloc(rc->remote, cap * sizeof(*k));
		unsigned *f = k != NULL ? realloc(rc->remote_flags, cap * sizeof(*f)) : NULL;
		int64_t *d = f != NULL ? realloc(rc->remote_dates, cap * sizeof(*d)) : NULL;
		char **kw = d != NULL ? realloc(rc->remote_keywords, cap * sizeof(*kw)) : NULL;
		if (k != NULL)
			rc->remote = k;
		if (f != NULL)
			rc->remote_flags = f;
		if (d != NULL)
			rc->remote_dates = d;
		if (kw == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		rc->remote_keywords = kw;
		rc->cap = cap;
	}
	struct pair_key *k = &rc->remote[rc->count];
	k->size = size;
	k->uid = uid;
	k->used = false;
	if (hdr->type == IMAP_ARG_STRING)
		hash_bytes(hdr->str, hdr->len, k->hash);
	else
		memcpy(k->hash, rc->streamed_hash, sizeof(k->hash));
	rc->have_streamed_hash = false;
	rc->remote_flags[rc->count] = flags;
	rc->remote_dates[rc->count] = date;
	rc->remote_keywords[rc->count] = strdup(buf_str(&rc->ctx->keywords));
	if (rc->remote_keywords[rc->count] == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	rc->count++;
	return 0;
}

static void repair_ctx_free(struct repair_ctx *rc)
{
	for (size_t i = 0; i < rc->count; i++)
		free(rc->remote_keywords[i]);
	free(rc->remote_keywords);
	free(rc->remote_flags);
	free(rc->remote_dates);
	free(rc->remote);
	EVP_MD_CTX_free(rc->md);
	memset(rc, 0, sizeof(*rc));
}

/* UID and size of every message the server lists (rename check). */
struct confirm_ctx {
	struct uidvec *v;
	uint32_t below, uidvalidity;
};

static int confirm_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct confirm_ctx *cc = context;
	const struct imap_arg *items = fetch_response(resp);
	uint32_t uid;
	uint64_t size, n;
	if (resp->status == IMAP_STATUS_OK && resp->code != NULL &&
	    strcasecmp(resp->code, "UIDVALIDITY") == 0 &&
	    imap_arg_number(resp->code_args, UINT32_MAX, &n))
		cc->uidvalidity = (uint32_t)n;
	if (items == NULL || cc->v == NULL || !fetch_uid(items, &uid) || uid >= cc->below ||
	    !imap_arg_number(fetch_item(items, "RFC822.SIZE"), UINT64_MAX, &size))
		return 0;
	if (cc->v->count > 0 && uid <= cc->v->uids[cc->v->count - 1]) {
		*error_r = "server sent UIDs out of order";
		return -1;
	}
	if (uidvec_add_sized(cc->v, uid, size) < 0) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

/* A server command of the rename check failed: 0 (not confirmed) while
 * the session lives, else -1. */
static int confirm_failed(struct sync_ctx *ctx, const char *name, const char *err)
{
	if (imap_client_is_open(ctx->client))
		return 0;
	return sync_fail(ctx, "%s: %s", name, err);
}

int sync_rename_confirmed(struct sync_ctx *ctx, const struct store_mailbox *box,
                          const struct remote_folder *f)
{
	enum { SAMPLE = 8 };
	const char *err;
	struct store_msg *local = NULL;
	size_t nlocal = 0, cap = 0;
	struct uidvec server = {0};
	struct store_local_gone *gone = NULL;
	size_t ngone = 0;
	struct repair_ctx rc = {.ctx = ctx, .confirming = true};
	struct buf set;
	int r = -1;
	buf_init(&set, 4096);

	/* What we hold from the server, in UID order. */
	struct store_iter *it;
	struct store_msg m;
	if (store_iter_init(ctx->store, box->id, &it, &err) < 0)
		return store_failed(ctx, err);
	while (store_iter_next(it, &m)) {
		if (m.local)
			continue;
		if (array_grow(&local, &cap, nlocal, sizeof(*local)) < 0) {
			store_iter_deinit(&it, &err);
			free(local);
			return sync_fail(ctx, "out of memory");
		}
		local[nlocal] = m;
		local[nlocal++].keywords = NULL;
	}
	if (store_iter_deinit(&it, &err) < 0) {
		free(local);
		return store_failed(ctx, err);
	}

	/* What the server has below our UIDNEXT. */
	struct confirm_ctx cc = {NULL, box->uidnext, 0};
	struct buf *b = imap_client_cmd(ctx->client, "EXAMINE", &err);
	if (b == NULL || imap_cmd_astring(b, f->name, &err) < 0 ||
	    imap_client_run(ctx->client, confirm_untagged, &cc, &err) != 0) {
		r = confirm_failed(ctx, f->name, err);
		goto out;
	}
	if (cc.uidvalidity != box->uidvalidity) {
		r = 0;
		goto out;
	}
	if (box->uidnext > 1) {
		char range[32];
		snprintf(range, sizeof(range), "1:%u", box->uidnext - 1);
		cc.v = &server;
		b = imap_client_cmd(ctx->client, "UID FETCH", &err);
		if (b == NULL || imap_cmd_seqset(b, range, &err) < 0 ||
		    imap_cmd_raw(b, "(UID RFC822.SIZE)", &err) < 0 ||
		    imap_client_run(ctx->client, confirm_untagged, &cc, &err) != 0) {
			r = confirm_failed(ctx, f->name, err);
			goto out;
		}
	}
	/* A rename keeps UIDs: every one of them must be a message we hold,
	 * of the same size, or one moved or destroyed here that the server
	 * still has at its origin. (Ours the server lacks were expunged.) */
	if (store_local_gone(ctx->store, box->id, &gone, &ngone, &err) < 0) {
		store_failed(ctx, err);
		goto out;
	}
	size_t j = 0, common = 0;
	for (size_t i = 0; i < server.count; i++) {
		while (j < nlocal && local[j].uid < server.uids[i])
			j++;
		if (j < nlocal && local[j].uid == server.uids[i] &&
		    local[j].size == server.sizes[i]) {
			server.uids[common] = server.uids[i];
			server.sizes[common++] = server.sizes[i];
			continue;
		}
		bool was_here = false;
		for (size_t g = 0; g < ngone && !was_here; g++)
			was_here =
			    gone[g].origin_uid == server.uids[i] && gone[g].size == server.sizes[i];
		if (!was_here) {
			r = 0;
			goto out;
		}
	}
	server.count = common; /* the sample is taken from those we hold */
	if (server.count == 0) {
		/* Nothing in common: a rename only if we held nothing either
		 * (then pairing loses nothing). */
		r = nlocal == 0 ? 1 : 0;
		goto out;
	}
	/* The same headers, on a sample spread over the folder. */
	size_t nsample = server.count < SAMPLE ? server.count : SAMPLE;
	uint32_t sample[SAMPLE];
	for (size_t i = 0; i < nsample; i++)
		sample[i] = server.uids[nsample == 1 ? 0 : i * (server.count - 1) / (nsample - 1)];
	if (uidset_format(&set, sample, 0, nsample) < 0) {
		sync_fail(ctx, "%s: cannot build FETCH", f->name);
		goto out;
	}
	rc.md = EVP_MD_CTX_new();
	if (rc.md == NULL) {
		sync_fail(ctx, "out of memory");
		goto out;
	}
	struct imap_literal_sink sink = {header_begin, header_data, header_end, &rc};
	imap_client_set_literal_sink(ctx->client, &sink);
	b = imap_client_cmd(ctx->client, "UID FETCH", &err);
	int fetched = b == NULL || imap_cmd_seqset(b, buf_str(&set), &err) < 0 ||
	                      imap_cmd_raw(b,
	                                   "(UID FLAGS INTERNALDATE RFC822.SIZE "
	                                   "BODY.PEEK[HEADER])",
	                                   &err) < 0
	                  ? -1
	                  : imap_client_run(ctx->client, repair_untagged, &rc, &err);
	imap_client_set_literal_sink(ctx->client, NULL);
	if (fetched != 0) {
		r = confirm_failed(ctx, f->name, err);
		goto out;
	}
	size_t matched = 0;
	for (size_t i = 0; i < rc.count; i++) {
		struct pair_key want;
		j = 0;
		while (j < nlocal && local[j].uid != rc.remote[i].uid)
			j++;
		if (j == nlocal)
			continue;
		if (local_header_key(ctx, &local[j], &want) < 0)
			goto out;
		if (cmp_pair_key(&want, &rc.remote[i]) != 0) {
			r = 0;
			goto out;
		}
		matched++;
	}
	r = matched == nsample ? 1 : 0;
out:
	repair_ctx_free(&rc);
	buf_free(&set);
	uidvec_free(&server);
	free(gone);
	free(local);
	return r;
}

/* A server message not paired with a stored one: 1 when it is one that
 * was moved or destroyed through the device API (its record now names
 * the new UID), 0 not, -1 error. Each record matches once. */
static int gone_match(struct sync_ctx *ctx, struct store_local_gone *gone, size_t n,
                      const struct pair_key *k)
{
	const char *err;
	for (size_t i = 0; i < n; i++) {
		if (gone[i].origin_uid == 0 || gone[i].size != k->size ||
		    memcmp(gone[i].hash, k->hash, 32) != 0)
			continue;
		if (store_local_renumber(ctx->store, ctx->sel.mailbox_id, gone[i].origin_uid,
		                         k->uid, &err) < 0)
			return store_failed(ctx, err);
		gone[i].origin_uid = 0;
		return 1;
	}
	return 0;
}

/*
 * UIDVALIDITY changed: the server renumbered the folder. Pair our messages
 * with the server's by (size, header hash), give them their new UIDs and
 * flags, drop the ones the server no longer has, and fetch only the rest.
 */
static int sync_folder_repair(struct sync_ctx *ctx)
{
	const char *err, *folder = ctx->sel.folder->name;
	struct repair_ctx rc = {.ctx = ctx};
	struct pair_key *local = NULL;
	size_t nlocal = 0, caplocal = 0;
	struct store_local_gone *gone = NULL;
	size_t ngone = 0;
	struct uidvec fetch = {0};
	bool stashed = false;
	int r = -1;

	struct imap_literal_sink sink = {header_begin, header_data, header_end, &rc};
	rc.md = EVP_MD_CTX_new();
	if (rc.md == NULL) {
		sync_fail(ctx, "out of memory");
		goto out;
	}
	imap_client_set_literal_sink(ctx->client, &sink);
	struct buf *b = imap_client_cmd(ctx->client, "UID FETCH", &err);
	int fetched =
	    b == NULL || imap_cmd_seqset(b, "1:*", &err) < 0 ||
	            imap_cmd_raw(b, "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])",
	                         &err) < 0
	        ? -1
	        : imap_client_run(ctx->client, repair_untagged, &rc, &err);
	imap_client_set_literal_sink(ctx->client, NULL);
	if (fetched != 0) {
		sync_fail(ctx, "%s: %s", folder, err);
		goto out;
	}
	struct store_iter *it;
	struct store_msg m;
	if (store_iter_init(ctx->store, ctx->sel.mailbox_id, &it, &err) < 0) {
		store_failed(ctx, err);
		goto out;
	}
	while (store_iter_next(it, &m)) {
		if (m.local)
			continue; /* made here: no server UID to pair */
		if (nlocal == caplocal) {
			caplocal = caplocal == 0 ? 256 : caplocal * 2;
			struct pair_key *n = realloc(local, caplocal * sizeof(*n));
			if (n == NULL)
				break;
			local = n;
		}
		if (local_header_key(ctx, &m, &local[nlocal]) < 0)
			break;
		local[nlocal++].used = false;
	}
	if (store_iter_deinit(&it, &err) < 0) {
		store_failed(ctx, err);
		goto out;
	}
	qsort(local, nlocal, sizeof(*local), cmp_pair_key);
	if (store_mailbox_stash_uids(ctx->store, ctx->sel.mailbox_id, &err) < 0) {
		store_failed(ctx, err);
		goto out;
	}
	stashed = true;
	if (store_local_gone(ctx->store, ctx->sel.mailbox_id, &gone, &ngone, &err) < 0) {
		store_failed(ctx, err);
		goto out;
	}
	for (size_t i = 0; i < rc.count; i++) {
		struct pair_key *k = &rc.remote[i];
		struct pair_key *hit = bsearch(k, local, nlocal, sizeof(*local), cmp_pair_key);
		/* Duplicates: step to the first unused equal key. */
		while (hit != NULL && hit > local && cmp_pair_key(hit - 1, k) == 0)
			hit--;
		while (hit != NULL && hit < local + nlocal && cmp_pair_key(hit, k) == 0 &&
		       hit->used)
			hit++;
		if (hit == NULL || hit == local + nlocal || cmp_pair_key(hit, k) != 0) {
			/* Moved or destroyed through the device API: not again. */
			int was_gone = gone_match(ctx, gone, ngone, k);
			if (was_gone < 0)
				goto out;
			if (was_gone > 0)
				continue;
			if (uidvec_add_sized(&fetch, k->uid, k->size) < 0) {
				sync_fail(ctx, "out of memory");
				goto out;
			}
			continue;
		}
		hit->used = true;
		if (store_message_set_uid(ctx->store, ctx->sel.mailbox_id, hit->uid, k->uid,
		                          rc.remote_dates[i], &err) < 0 ||
		    store_local_renumber(ctx->store, ctx->sel.mailbox_id, hit->uid, k->uid, &err) <
		        0 ||
		    store_message_set_flags(ctx->store, ctx->sel.mailbox_id, k->uid,
		                            rc.remote_flags[i], rc.remote_keywords[i], &err) < 0) {
			store_failed(ctx, err);
			goto out;
		}
		ctx->stats->repaired++;
	}
	if (store_mailbox_drop_stashed(ctx->store, ctx->sel.mailbox_id, &err) < 0 ||
	    store_local_renumber_done(ctx->store, ctx->sel.mailbox_id, &err) < 0) {
		store_failed(ctx, err);
		goto out;
	}
	ctx->sel.local_uidvalidity = ctx->sel.uidvalidity;
	ctx->sel.local_modseq = 0;
	ctx->sel.stored_uidnext = 1;
	ctx->progress.msgs_total = fetch.count;
	for (size_t i = 0; i < fetch.count; i++)
		ctx->progress.bytes_total += fetch.sizes[i];
	if (sync_checkpoint(ctx) < 0)
		goto out;
	stashed = false; /* committed: a failure from here on keeps what is stored */
	if (fetch_messages(ctx, &fetch) < 0)
		goto out;
	r = 0;
out:
	if (r < 0 && stashed) {
		/* Never commit a half-done renumbering: go back to the last
		 * checkpoint, where the folder is as it was before. */
		store_rollback(ctx->store);
		if (store_begin(ctx->store, &err) < 0)
			store_failed(ctx, err);
	}
	repair_ctx_free(&rc);
	free(local);
	free(gone);
	uidvec_free(&fetch);
	return r;
}

int sync_folder(struct sync_ctx *ctx, const struct remote_folder *folder)
{
	ctx->sel.folder = folder;
	ctx->sel.exists = ctx->sel.uidvalidity = ctx->sel.uidnext = 0;
	ctx->sel.highestmodseq = 0;
	ctx->sel.nomodseq = false;
	memset(&ctx->progress, 0, sizeof(ctx->progress));
	ctx->progress.folder = folder->name;
	ctx->stats->folders_selected++;

	int sr = select_folder(ctx);
	if (sr < 0)
		return -1;
	if (sr == 1)
		return 0; /* gone since the LIST: nothing here changes, the next LIST sees it */
	bool modseq_ok = ctx->tier >= SYNC_TIER_CONDSTORE && !ctx->sel.nomodseq;
	if (ctx->sel.local_uidvalidity != 0 && ctx->sel.local_uidvalidity != ctx->sel.uidvalidity) {
		if (sync_folder_repair(ctx) < 0)
			return -1;
	} else {
		if (ctx->sel.local_uidvalidity == 0) {
			ctx->sel.local_uidnext = 1;
			ctx->sel.local_modseq = 0;
		}
		ctx->sel.stored_uidnext = ctx->sel.local_uidnext;
		/* Changes to the messages we hold. */
		bool qresynced = ctx->tier == SYNC_TIER_QRESYNC && ctx->sel.local_modseq != 0;
		bool condstore = modseq_ok && ctx->sel.local_modseq != 0;
		/* Plain tier with a hint: the new messages first; when they
		 * alone explain how MESSAGES and UNSEEN changed since the last
		 * full scan, no known message went or changed \Seen. */
		bool hinted = !condstore && !qresynced && ctx->sel.plain_hint &&
		              ctx->sel.local_uidnext > 1 &&
		              ctx->sel.uidnext > ctx->sel.local_uidnext;
		ctx->sel.full_scanned = false;
		ctx->sel.fresh_unseen = 0;
		if (!hinted)
			ctx->sel.plain_hint = false;
		struct uidvec fresh = {0};
		if (hinted && scan_new(ctx, &fresh) < 0) {
			uidvec_free(&fresh);
			return -1;
		}
		bool explained =
		    hinted &&
		    (uint64_t)ctx->sel.hint_messages + fresh.count == ctx->sel.status_messages &&
		    (uint64_t)ctx->sel.hint_unseen + ctx->sel.fresh_unseen ==
		        ctx->sel.status_unseen &&
		    ctx->sel.exists == ctx->sel.status_messages;
		if (ctx->sel.local_uidnext > 1 && !qresynced && !explained) {
			int r = condstore ? sync_known_condstore(ctx) : sync_known_plain(ctx);
			if (r < 0) {
				uidvec_free(&fresh);
				return -1;
			}
			ctx->sel.full_scanned = !condstore;
		}
		/* New messages. */
		if (!hinted &&
		    (ctx->sel.uidnext == 0 || ctx->sel.uidnext > ctx->sel.local_uidnext)) {
			if (scan_new(ctx, &fresh) < 0) {
				uidvec_free(&fresh);
				return -1;
			}
		}
		if (ctx->sel.local_uidnext > 1 && modseq_ok && ctx->sel.local_modseq != 0 &&
		    !qresynced && check_expunges(ctx, fresh.count) < 0) {
			uidvec_free(&fresh);
			return -1;
		}
		ctx->progress.msgs_total = fresh.count;
		for (size_t i = 0; i < fresh.count; i++)
			ctx->progress.bytes_total += fresh.sizes[i];
		int r = fetch_messages(ctx, &fresh);
		uidvec_free(&fresh);
		if (r < 0)
			return -1;
	}
	/* Everything up to the server's UIDNEXT is now ours, unless the
	 * download budget stopped the fetch (then the folder's state stays
	 * where the stored messages put it, and the next run goes on). */
	if (!ctx->paced) {
		if (ctx->sel.uidnext > ctx->sel.stored_uidnext)
			ctx->sel.stored_uidnext = ctx->sel.uidnext;
		ctx->sel.local_modseq = modseq_ok ? ctx->sel.highestmodseq : 0;
	}
	return sync_checkpoint(ctx);
}
