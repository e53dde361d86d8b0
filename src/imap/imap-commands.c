/*
 * The commands the two-way sync replays: SELECT/EXAMINE, UID STORE, UID
 * COPY, UID MOVE, UID EXPUNGE, EXPUNGE, APPEND with APPENDUID, the mailbox
 * commands and UID SEARCH. Contracts in imap-client.h.
 *
 * Commands on a UID set go out in pieces whose lines stay under
 * IMAP_CLIENT_LINE_MAX; the answer of each piece (COPYUID, MODIFIED) is
 * checked against the UIDs of that piece, so a hostile server can neither
 * name UIDs we did not send nor make us expand a huge range.
 */
#include "imap-client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap-client-private.h"
#include "imap-cmd.h"

/* --- SELECT / EXAMINE ----------------------------------------------------- */

static int select_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct imap_select_info *info = context;
	uint64_t n;
	(void)error_r;
	if (resp->status == IMAP_STATUS_OK && resp->code != NULL) {
		if (strcasecmp(resp->code, "UIDVALIDITY") == 0 &&
		    imap_arg_number(resp->code_args, UINT32_MAX, &n))
			info->uidvalidity = (uint32_t)n;
		else if (strcasecmp(resp->code, "UIDNEXT") == 0 &&
		         imap_arg_number(resp->code_args, UINT32_MAX, &n))
			info->uidnext = (uint32_t)n;
		else if (strcasecmp(resp->code, "HIGHESTMODSEQ") == 0 &&
		         imap_arg_number(resp->code_args, UINT64_MAX, &n))
			info->highestmodseq = n;
		else if (strcasecmp(resp->code, "NOMODSEQ") == 0)
			info->nomodseq = true;
	} else if (resp->status == IMAP_STATUS_NONE &&
	           imap_arg_number(resp->args, UINT32_MAX, &n) &&
	           imap_arg_is_atom(resp->args->next, "EXISTS")) {
		info->exists = (uint32_t)n;
	}
	return 0;
}

static int select_tagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct imap_select_info *info = context;
	(void)error_r;
	if (resp->status == IMAP_STATUS_OK && resp->code != NULL)
		info->readonly = strcasecmp(resp->code, "READ-ONLY") == 0;
	return 0;
}

static int select_or_examine(struct imap_client *c, const char *cmd, const char *mailbox,
                             bool condstore, struct imap_select_info *info_r, const char **error_r)
{
	struct buf *b = imap_client_cmd(c, cmd, error_r);
	if (b == NULL ||
	    imap_cmd_astring_lit(b, mailbox, imap_client_nonsync_max(c), error_r) < 0 ||
	    (condstore &&
	     (imap_client_has_cap(c, "CONDSTORE") || imap_client_has_cap(c, "QRESYNC")) &&
	     imap_cmd_raw(b, "(CONDSTORE)", error_r) < 0))
		return imap_client_refuse(c, error_r, "%s: cannot send %s: %s", imap_client_host(c),
		                          cmd, *error_r);
	struct imap_select_info info = {0};
	int r = imap_client_run_tagged(c, select_untagged, &info, select_tagged, error_r);
	if (r != 0)
		return r;
	if (info.uidvalidity == 0)
		return imap_client_refuse(c, error_r, "%s: server sent no UIDVALIDITY for %s",
		                          imap_client_host(c), cmd);
	if (info.nomodseq)
		info.highestmodseq = 0;
	*info_r = info;
	return 0;
}

int imap_client_select(struct imap_client *c, const char *mailbox, bool condstore,
                       struct imap_select_info *info_r, const char **error_r)
{
	return select_or_examine(c, "SELECT", mailbox, condstore, info_r, error_r);
}

int imap_client_examine(struct imap_client *c, const char *mailbox, bool condstore,
                        struct imap_select_info *info_r, const char **error_r)
{
	return select_or_examine(c, "EXAMINE", mailbox, condstore, info_r, error_r);
}

int imap_client_unselect(struct imap_client *c, const char **error_r)
{
	if (imap_client_has_ext(c, "UNSELECT")) {
		if (imap_client_cmd(c, "UNSELECT", error_r) == NULL)
			return imap_client_refuse(c, error_r, "cannot send UNSELECT: %s", *error_r);
		return imap_client_run(c, NULL, NULL, error_r);
	}
	struct buf *b = imap_client_cmd(c, "EXAMINE", error_r);
	if (b == NULL || imap_cmd_atom(b, "mailkeep-unselect-9f3c2e71", error_r) < 0)
		return imap_client_refuse(c, error_r, "cannot send EXAMINE: %s", *error_r);
	int r = imap_client_run(c, NULL, NULL, error_r);
	/* NO: nothing selected now, which is what we asked for. A mailbox of
	 * that name that exists is now selected read-only: as good. */
	return r == IMAP_CMD_FAILED ? 0 : r;
}

/* --- Commands on UID sets, in pieces -------------------------------------- */

/* One command on a UID set: name, then the set, then rest (arguments built
 * with imap-cmd.h, each starting with its SP). For each piece, piece is set
 * to the UIDs it names before it runs. */
struct piece_cmd {
	struct imap_client *c;
	const char *name;
	struct buf rest;
	struct imap_uidset piece; /* a view into the caller's set */
	imap_untagged_fn *untagged;
	imap_untagged_fn *tagged;
	void *ctx;
	/* After each piece that completed with OK. */
	void (*piece_done)(void *ctx);
};

static int piece_cmd_run(struct piece_cmd *pc, const struct imap_uidset *uids, const char **error_r)
{
	struct imap_client *c = pc->c;
	size_t pos = 0;
	int r = 0;
	while (r == 0 && pos < uids->count) {
		struct buf *b = imap_client_cmd(c, pc->name, error_r);
		if (b == NULL)
			return imap_client_refuse(c, error_r, "%s: cannot send %s: %s",
			                          imap_client_host(c), pc->name, *error_r);
		/* Tag, name, SP, set, rest, CRLF. */
		size_t fixed = b->len + 1 + pc->rest.len + 2;
		size_t start = pos;
		if (fixed >= IMAP_CLIENT_LINE_MAX ||
		    IMAP_CLIENT_LINE_MAX - fixed < IMAP_UIDSET_RANGE_MAX_CHARS ||
		    buf_append(b, " ", 1) < 0 ||
		    imap_uidset_write(uids, &pos, IMAP_CLIENT_LINE_MAX - fixed, b) < 0 ||
		    buf_append(b, pc->rest.data, pc->rest.len) < 0)
			return imap_client_refuse(c, error_r, "%s: %s arguments too long",
			                          imap_client_host(c), pc->name);
		pc->piece.ranges = uids->ranges + start;
		pc->piece.count = pos - start;
		pc->piece.cap = 0;
		r = imap_client_run_tagged(c, pc->untagged, pc->ctx, pc->tagged, error_r);
		if (r == 0 && pc->piece_done != NULL)
			pc->piece_done(pc->ctx);
	}
	return r;
}

static void piece_cmd_init(struct piece_cmd *pc, struct imap_client *c, const char *name)
{
	memset(pc, 0, sizeof(*pc));
	pc->c = c;
	pc->name = name;
	buf_init(&pc->rest, 4096);
}

/* --- UID STORE ------------------------------------------------------------ */

struct store_ctx {
	struct piece_cmd *pc;
	struct imap_uidset *modified;
};

static int store_tagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct store_ctx *sc = context;
	if (resp->status != IMAP_STATUS_OK || resp->code == NULL ||
	    strcasecmp(resp->code, "MODIFIED") != 0)
		return 0;
	struct imap_uidset scratch = IMAP_UIDSET_INIT;
	struct imap_uidset *into = sc->modified != NULL ? sc->modified : &scratch;
	int r = imap_modified_parse(resp->code_args, &sc->pc->piece, into, error_r);
	imap_uidset_free(&scratch);
	return r;
}

static bool store_op_valid(const char *op)
{
	static const char *const ops[] = {"+FLAGS.SILENT", "-FLAGS.SILENT", "FLAGS.SILENT",
	                                  "+FLAGS",        "-FLAGS",        "FLAGS"};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcasecmp(op, ops[i]) == 0)
			return true;
	}
	return false;
}

int imap_client_uid_store(struct imap_client *c, const struct imap_uidset *uids, const char *op,
                          const char *flags, uint64_t unchangedsince,
                          struct imap_uidset *modified_r, const char **error_r)
{
	if (modified_r != NULL)
		imap_uidset_clear(modified_r);
	if (!store_op_valid(op))
		return imap_client_refuse(c, error_r, "invalid STORE operation");
	if (unchangedsince != 0 && !imap_client_has_cap(c, "CONDSTORE") &&
	    !imap_client_has_cap(c, "QRESYNC"))
		return imap_client_refuse(c, error_r,
		                          "%s does not offer CONDSTORE: no UNCHANGEDSINCE",
		                          imap_client_host(c));
	struct piece_cmd pc;
	piece_cmd_init(&pc, c, "UID STORE");
	struct store_ctx sc = {&pc, modified_r};
	pc.tagged = store_tagged;
	pc.ctx = &sc;
	int r = 0;
	if (unchangedsince != 0) {
		char mod[48];
		snprintf(mod, sizeof(mod), "(UNCHANGEDSINCE %llu)",
		         (unsigned long long)unchangedsince);
		r = imap_cmd_raw(&pc.rest, mod, error_r);
	}
	if (r < 0 || imap_cmd_raw(&pc.rest, op, error_r) < 0 ||
	    imap_cmd_flag_list(&pc.rest, flags, error_r) < 0) {
		r = imap_client_refuse(c, error_r, "cannot send UID STORE: %s", *error_r);
		buf_free(&pc.rest);
		return r;
	}
	r = piece_cmd_run(&pc, uids, error_r);
	buf_free(&pc.rest);
	return r;
}

/* --- UID FETCH FLAGS ------------------------------------------------------ */

struct fetch_ctx {
	struct piece_cmd *pc;
	const struct imap_uidset *all;
	struct imap_uid_flags *v;
	size_t n, cap, max;
	struct buf flags;
};

/* "* 12 FETCH (UID 7 FLAGS (\Seen) MODSEQ (9))": items in any order. */
static int fetch_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct fetch_ctx *fc = context;
	const struct imap_arg *a = resp->args;
	if (resp->status != IMAP_STATUS_NONE || a == NULL || !imap_arg_is_atom(a->next, "FETCH"))
		return 0;
	const struct imap_arg *items = a->next->next;
	if (items == NULL || items->type != IMAP_ARG_LIST) {
		*error_r = "malformed FETCH response";
		return -1;
	}
	uint64_t uid = 0, modseq = 0;
	const struct imap_arg *flags = NULL;
	for (const struct imap_arg *i = items->list; i != NULL; i = i->next->next) {
		if (i->next == NULL) {
			*error_r = "malformed FETCH response";
			return -1;
		}
		if (imap_arg_is_atom(i, "UID")) {
			if (!imap_arg_number(i->next, UINT32_MAX, &uid) || uid == 0) {
				*error_r = "malformed UID in FETCH response";
				return -1;
			}
		} else if (imap_arg_is_atom(i, "FLAGS")) {
			if (i->next->type != IMAP_ARG_LIST) {
				*error_r = "malformed FLAGS in FETCH response";
				return -1;
			}
			flags = i->next;
		} else if (imap_arg_is_atom(i, "MODSEQ")) {
			if (imap_arg_list_count(i->next) != 1 ||
			    !imap_arg_number(i->next->list, UINT64_MAX, &modseq)) {
				*error_r = "malformed MODSEQ in FETCH response";
				return -1;
			}
		}
	}
	/* Unsolicited FETCHes (another client changed something) may name
	 * other messages or leave out FLAGS: not ours. */
	if (uid == 0 || flags == NULL || !imap_uidset_contains(fc->all, (uint32_t)uid))
		return 0;
	buf_reset(&fc->flags);
	for (const struct imap_arg *f = flags->list; f != NULL; f = f->next) {
		if (f->type != IMAP_ARG_ATOM) {
			*error_r = "malformed flag in FETCH response";
			return -1;
		}
		/* A session flag (RFC 3501), not part of the message state. */
		if (strcasecmp(f->str, "\\Recent") == 0)
			continue;
		if ((fc->flags.len > 0 && buf_append(&fc->flags, " ", 1) < 0) ||
		    buf_append(&fc->flags, f->str, f->len) < 0) {
			*error_r = "flags in FETCH response too long";
			return -1;
		}
	}
	if (fc->n == fc->max) {
		*error_r = "too many FETCH responses";
		return -1;
	}
	if (fc->n == fc->cap) {
		size_t cap = fc->cap == 0 ? 64 : fc->cap * 2;
		if (cap > fc->max)
			cap = fc->max;
		struct imap_uid_flags *v = realloc(fc->v, cap * sizeof(*v));
		if (v == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		fc->v = v;
		fc->cap = cap;
	}
	char *text = strdup(buf_str(&fc->flags));
	if (text == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	fc->v[fc->n++] = (struct imap_uid_flags){(uint32_t)uid, modseq, text};
	return 0;
}

/* A FETCH answer's UID and its place in arrival order. */
struct fetch_order {
	uint32_t uid;
	size_t index;
};

/* By UID, and for one UID in arrival order (so the last answer counts). */
static int cmp_fetch_order(const void *a, const void *b)
{
	const struct fetch_order *x = a, *y = b;
	if (x->uid != y->uid)
		return x->uid < y->uid ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

void imap_uid_flags_free(struct imap_uid_flags **msgs, size_t n)
{
	if (*msgs == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*msgs)[i].flags);
	free(*msgs);
	*msgs = NULL;
}

int imap_client_uid_fetch_flags(struct imap_client *c, const struct imap_uidset *uids, bool modseq,
                                struct imap_uid_flags **msgs_r, size_t *n_r, const char **error_r)
{
	struct piece_cmd pc;
	piece_cmd_init(&pc, c, "UID FETCH");
	bool with_modseq =
	    modseq && (imap_client_has_cap(c, "CONDSTORE") || imap_client_has_cap(c, "QRESYNC"));
	if (imap_cmd_raw(&pc.rest, with_modseq ? "(UID FLAGS MODSEQ)" : "(UID FLAGS)", error_r) <
	    0) {
		buf_free(&pc.rest);
		return imap_client_refuse(c, error_r, "cannot send UID FETCH: %s", *error_r);
	}
	/* Each UID once, plus as many again for answers repeated by the
	 * server (a flag change by another client in between). */
	uint64_t size = imap_uidset_size(uids);
	struct fetch_ctx fc = {&pc, uids, NULL, 0, 0, 0, {0}};
	fc.max = size > SIZE_MAX / 4 / sizeof(*fc.v) ? SIZE_MAX / 4 / sizeof(*fc.v)
	                                             : (size_t)size * 2 + 64;
	buf_init(&fc.flags, 64 * 1024);
	pc.untagged = fetch_untagged;
	pc.ctx = &fc;
	int r = piece_cmd_run(&pc, uids, error_r);
	buf_free(&pc.rest);
	buf_free(&fc.flags);
	if (r != 0) {
		imap_uid_flags_free(&fc.v, fc.n);
		return r;
	}
	/* One answer per UID, sorted; of repeated answers the last counts. */
	size_t w = 0;
	if (fc.n > 0) {
		struct fetch_order *ord = malloc(fc.n * sizeof(*ord));
		struct imap_uid_flags *out = malloc(fc.n * sizeof(*out));
		if (ord == NULL || out == NULL) {
			free(ord);
			free(out);
			imap_uid_flags_free(&fc.v, fc.n);
			return imap_client_refuse(c, error_r, "out of memory");
		}
		for (size_t i = 0; i < fc.n; i++)
			ord[i] = (struct fetch_order){fc.v[i].uid, i};
		qsort(ord, fc.n, sizeof(*ord), cmp_fetch_order);
		for (size_t i = 0; i < fc.n; i++) {
			struct imap_uid_flags m = fc.v[ord[i].index];
			if (w > 0 && out[w - 1].uid == m.uid) {
				free(out[w - 1].flags);
				out[w - 1] = m;
			} else {
				out[w++] = m;
			}
		}
		free(ord);
		free(fc.v);
		fc.v = out;
	}
	*msgs_r = fc.v;
	*n_r = w;
	return 0;
}

/* --- UID COPY / UID MOVE -------------------------------------------------- */

struct copy_ctx {
	struct piece_cmd *pc;
	struct imap_copyuid *cu;
	bool piece_got; /* this piece got a COPYUID */
	bool unusable;  /* a piece got none, or a malformed one */
};

static int copy_code(void *context, const struct imap_response *resp, const char **error_r)
{
	struct copy_ctx *cc = context;
	(void)error_r;
	if (resp->status != IMAP_STATUS_OK || resp->code == NULL ||
	    strcasecmp(resp->code, "COPYUID") != 0)
		return 0;
	const char *err;
	if (cc->unusable)
		return 0;
	/* A server may say it twice (MOVE's untagged OK and again in the
	 * tagged one): a repeat of pairs already known is no news. Sources are
	 * checked against this piece, so a repeat is of this piece. */
	struct imap_copyuid one = {0};
	if (imap_copyuid_parse(resp->code_args, &cc->pc->piece, &one, &err) < 0) {
		cc->unusable = true; /* the caller falls back to finding the copies */
		return 0;
	}
	bool repeat = cc->cu->valid && one.uidvalidity == cc->cu->uidvalidity;
	for (size_t i = 0; repeat && i < one.count; i++)
		repeat = imap_copyuid_lookup(cc->cu, one.pairs[i].src) == one.pairs[i].dst;
	imap_copyuid_free(&one);
	if (repeat)
		return 0;
	if (imap_copyuid_parse(resp->code_args, &cc->pc->piece, cc->cu, &err) < 0)
		cc->unusable = true;
	else
		cc->piece_got = true;
	return 0;
}

static void copy_piece_done(void *context)
{
	struct copy_ctx *cc = context;
	if (!cc->piece_got)
		cc->unusable = true;
	cc->piece_got = false;
}

static int copy_or_move(struct imap_client *c, const char *name, const struct imap_uidset *uids,
                        const char *mailbox, struct imap_copyuid *copyuid_r, const char **error_r)
{
	memset(copyuid_r, 0, sizeof(*copyuid_r));
	struct piece_cmd pc;
	piece_cmd_init(&pc, c, name);
	if (imap_cmd_astring_lit(&pc.rest, mailbox, imap_client_nonsync_max(c), error_r) < 0) {
		int r = imap_client_refuse(c, error_r, "cannot send %s: %s", name, *error_r);
		buf_free(&pc.rest);
		return r;
	}
	struct copy_ctx cc = {&pc, copyuid_r, false, false};
	pc.untagged = copy_code;
	pc.tagged = copy_code;
	pc.piece_done = copy_piece_done;
	pc.ctx = &cc;
	int r = piece_cmd_run(&pc, uids, error_r);
	buf_free(&pc.rest);
	if (cc.unusable || copyuid_r->count == 0) {
		imap_copyuid_free(copyuid_r);
		copyuid_r->valid = false;
	}
	return r;
}

int imap_client_uid_copy(struct imap_client *c, const struct imap_uidset *uids, const char *mailbox,
                         struct imap_copyuid *copyuid_r, const char **error_r)
{
	return copy_or_move(c, "UID COPY", uids, mailbox, copyuid_r, error_r);
}

int imap_client_uid_move(struct imap_client *c, const struct imap_uidset *uids, const char *mailbox,
                         struct imap_copyuid *copyuid_r, const char **error_r)
{
	if (!imap_client_has_ext(c, "MOVE")) {
		memset(copyuid_r, 0, sizeof(*copyuid_r));
		return imap_client_refuse(c, error_r, "%s does not offer MOVE",
		                          imap_client_host(c));
	}
	return copy_or_move(c, "UID MOVE", uids, mailbox, copyuid_r, error_r);
}

/* --- EXPUNGE -------------------------------------------------------------- */

int imap_client_uid_expunge(struct imap_client *c, const struct imap_uidset *uids,
                            const char **error_r)
{
	if (!imap_client_has_ext(c, "UIDPLUS"))
		return imap_client_refuse(c, error_r, "%s does not offer UIDPLUS: no UID EXPUNGE",
		                          imap_client_host(c));
	struct piece_cmd pc;
	piece_cmd_init(&pc, c, "UID EXPUNGE");
	int r = piece_cmd_run(&pc, uids, error_r);
	buf_free(&pc.rest);
	return r;
}

int imap_client_expunge(struct imap_client *c, const char **error_r)
{
	if (imap_client_cmd(c, "EXPUNGE", error_r) == NULL)
		return imap_client_refuse(c, error_r, "cannot send EXPUNGE: %s", *error_r);
	return imap_client_run(c, NULL, NULL, error_r);
}

/* --- APPEND --------------------------------------------------------------- */

/* RFC 9051 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day space-padded). */
static int format_date_time(int64_t t, char *out, size_t size)
{
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t tt = (time_t)t;
	struct tm tm;
	if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 < 1000 ||
	    tm.tm_year + 1900 > 9999 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	int n = snprintf(out, size, "%2d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
	                 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

struct append_ctx {
	uint32_t uidvalidity, uid;
};

static int append_tagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct append_ctx *ac = context;
	(void)error_r;
	const char *err;
	if (resp->status == IMAP_STATUS_OK && resp->code != NULL &&
	    strcasecmp(resp->code, "APPENDUID") == 0 &&
	    imap_appenduid_parse(resp->code_args, &ac->uidvalidity, &ac->uid, &err) < 0)
		ac->uidvalidity = ac->uid = 0; /* malformed: as if absent */
	return 0;
}

int imap_client_append_uid(struct imap_client *c, const char *mailbox, const char *flags,
                           int64_t internaldate, const void *data, size_t len,
                           uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r)
{
	size_t nonsync_max = imap_client_nonsync_max(c);
	bool nonsync = len <= nonsync_max;
	char date[40], lit[32];
	if (internaldate != 0 && format_date_time(internaldate, date, sizeof(date)) < 0)
		return imap_client_refuse(c, error_r, "cannot send APPEND: date out of range");
	/* A literal may not hold NUL (RFC 9051 CHAR8); a message that does
	 * goes as a literal8 (RFC 3516), which needs BINARY. */
	bool binary = len > 0 && memchr(data, 0, len) != NULL;
	if (binary && !imap_client_has_ext(c, "BINARY"))
		return imap_client_refuse(c, error_r,
		                          "cannot send APPEND: the message holds NUL bytes and %s "
		                          "does not offer BINARY",
		                          imap_client_host(c));
	snprintf(lit, sizeof(lit), "%s{%zu%s}", binary ? "~" : "", len, nonsync ? "+" : "");
	struct buf *b = imap_client_cmd(c, "APPEND", error_r);
	if (b == NULL || imap_cmd_astring_lit(b, mailbox, nonsync_max, error_r) < 0 ||
	    (flags != NULL && imap_cmd_flag_list(b, flags, error_r) < 0) ||
	    (internaldate != 0 && imap_cmd_quoted(b, date, error_r) < 0) ||
	    imap_cmd_raw(b, lit, error_r) < 0)
		return imap_client_refuse(c, error_r, "cannot send APPEND: %s", *error_r);
	const char *tag;
	int r = imap_client_send(c, &tag, error_r);
	if (r != 0)
		return r;
	char tagcopy[16];
	snprintf(tagcopy, sizeof(tagcopy), "%s", tag);
	r = imap_client_send_message_literal(c, tagcopy, data, len, nonsync, error_r);
	if (r != 0)
		return r;
	struct append_ctx ac = {0, 0};
	r = imap_client_wait_tagged(c, tagcopy, NULL, &ac, append_tagged, error_r);
	if (r != 0)
		return r;
	if (uidvalidity_r != NULL)
		*uidvalidity_r = ac.uidvalidity;
	if (uid_r != NULL)
		*uid_r = ac.uid;
	return 0;
}

int imap_client_append(struct imap_client *c, const char *mailbox, const char *flags,
                       const void *data, size_t len, const char **error_r)
{
	return imap_client_append_uid(c, mailbox, flags, 0, data, len, NULL, NULL, error_r);
}

/* --- Mailbox commands ----------------------------------------------------- */

static int mailbox_cmd(struct imap_client *c, const char *cmd, const char *name, const char *to,
                       const char **error_r)
{
	size_t nonsync_max = imap_client_nonsync_max(c);
	struct buf *b = imap_client_cmd(c, cmd, error_r);
	if (b == NULL || imap_cmd_astring_lit(b, name, nonsync_max, error_r) < 0 ||
	    (to != NULL && imap_cmd_astring_lit(b, to, nonsync_max, error_r) < 0))
		return imap_client_refuse(c, error_r, "cannot send %s: %s", cmd, *error_r);
	return imap_client_run(c, NULL, NULL, error_r);
}

int imap_client_create(struct imap_client *c, const char *name, const char **error_r)
{
	return mailbox_cmd(c, "CREATE", name, NULL, error_r);
}

int imap_client_rename(struct imap_client *c, const char *from, const char *to,
                       const char **error_r)
{
	return mailbox_cmd(c, "RENAME", from, to, error_r);
}

int imap_client_delete(struct imap_client *c, const char *name, const char **error_r)
{
	return mailbox_cmd(c, "DELETE", name, NULL, error_r);
}

int imap_client_subscribe(struct imap_client *c, const char *name, const char **error_r)
{
	return mailbox_cmd(c, "SUBSCRIBE", name, NULL, error_r);
}

int imap_client_unsubscribe(struct imap_client *c, const char *name, const char **error_r)
{
	return mailbox_cmd(c, "UNSUBSCRIBE", name, NULL, error_r);
}

/* --- UID SEARCH ----------------------------------------------------------- */

struct search_ctx {
	uint32_t *uids;
	size_t n, cap;
	const char *tag; /* of the UID SEARCH, for ESEARCH's correlator */
};

static int search_add(struct search_ctx *sc, uint32_t uid, const char **error_r)
{
	if (sc->n == sc->cap) {
		if (sc->cap >= IMAP_CLIENT_SEARCH_MAX) {
			*error_r = "SEARCH response names too many messages";
			return -1;
		}
		size_t cap = sc->cap == 0 ? 64 : sc->cap * 2;
		if (cap > IMAP_CLIENT_SEARCH_MAX)
			cap = IMAP_CLIENT_SEARCH_MAX;
		uint32_t *n = realloc(sc->uids, cap * sizeof(*n));
		if (n == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		sc->uids = n;
		sc->cap = cap;
	}
	sc->uids[sc->n++] = uid;
	return 0;
}

/* "* ESEARCH (TAG "M3") UID ALL 1:5,9" (RFC 4731; the only answer an
 * IMAP4rev2 server gives, RFC 9051 7.3.4). MIN, MAX, COUNT, MODSEQ are
 * not asked for and ignored. */
static int esearch_untagged(struct search_ctx *sc, const struct imap_arg *a, const char **error_r)
{
	if (a != NULL && a->type == IMAP_ARG_LIST) {
		const struct imap_arg *t = a->list;
		if (!imap_arg_is_atom(t, "TAG") || imap_arg_string(t->next) == NULL) {
			*error_r = "malformed ESEARCH response";
			return -1;
		}
		if (sc->tag == NULL || strcmp(imap_arg_string(t->next), sc->tag) != 0)
			return 0; /* another command's */
		a = a->next;
	}
	bool uid = imap_arg_is_atom(a, "UID");
	if (uid)
		a = a->next;
	for (; a != NULL; a = a->next->next) {
		if (a->next == NULL || a->type != IMAP_ARG_ATOM) {
			*error_r = "malformed ESEARCH response";
			return -1;
		}
		if (!imap_arg_is_atom(a, "ALL"))
			continue;
		const char *set = imap_arg_string(a->next);
		struct imap_uidset all = IMAP_UIDSET_INIT;
		if (!uid || a->next->type != IMAP_ARG_ATOM ||
		    imap_uidset_parse(set, IMAP_CLIENT_SEARCH_MAX - sc->n, SIZE_MAX, &all,
		                      error_r) < 0) {
			if (!uid)
				*error_r = "ESEARCH answer to UID SEARCH without UID";
			return -1;
		}
		for (size_t i = 0; i < all.count; i++) {
			for (uint64_t u = all.ranges[i].lo; u <= all.ranges[i].hi; u++) {
				if (search_add(sc, (uint32_t)u, error_r) < 0) {
					imap_uidset_free(&all);
					return -1;
				}
			}
		}
		imap_uidset_free(&all);
	}
	return 0;
}

/* "* SEARCH 3 7 9" (RFC 3501), with CONDSTORE "* SEARCH 3 7 (MODSEQ 12)". */
static int search_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct search_ctx *sc = context;
	if (resp->status != IMAP_STATUS_NONE)
		return 0;
	if (imap_arg_is_atom(resp->args, "ESEARCH"))
		return esearch_untagged(sc, resp->args->next, error_r);
	if (!imap_arg_is_atom(resp->args, "SEARCH"))
		return 0;
	for (const struct imap_arg *a = resp->args->next; a != NULL; a = a->next) {
		uint64_t uid;
		if (a->type == IMAP_ARG_LIST && a->next == NULL)
			break; /* (MODSEQ n) */
		if (a->type != IMAP_ARG_ATOM || !imap_arg_number(a, UINT32_MAX, &uid) || uid == 0) {
			*error_r = "malformed SEARCH response";
			return -1;
		}
		if (search_add(sc, (uint32_t)uid, error_r) < 0)
			return -1;
	}
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y ? 1 : 0;
}

static int search_run(struct imap_client *c, uint32_t **uids_r, size_t *n_r, const char **error_r)
{
	struct search_ctx sc = {NULL, 0, 0, imap_client_tag(c)};
	int r = imap_client_run(c, search_untagged, &sc, error_r);
	if (r != 0) {
		free(sc.uids);
		return r;
	}
	if (sc.n > 0) {
		qsort(sc.uids, sc.n, sizeof(*sc.uids), cmp_u32);
		size_t w = 1;
		for (size_t i = 1; i < sc.n; i++) {
			if (sc.uids[i] != sc.uids[w - 1])
				sc.uids[w++] = sc.uids[i];
		}
		sc.n = w;
	} else {
		free(sc.uids);
		sc.uids = NULL;
	}
	*uids_r = sc.uids;
	*n_r = sc.n;
	return 0;
}

int imap_client_uid_search(struct imap_client *c, const char *criteria, uint32_t **uids_r,
                           size_t *n_r, const char **error_r)
{
	struct buf *b = imap_client_cmd(c, "UID SEARCH", error_r);
	if (b == NULL || imap_cmd_raw(b, criteria, error_r) < 0)
		return imap_client_refuse(c, error_r, "cannot send UID SEARCH: %s", *error_r);
	return search_run(c, uids_r, n_r, error_r);
}

int imap_client_uid_search_header(struct imap_client *c, const char *header, const char *value,
                                  uint32_t **uids_r, size_t *n_r, const char **error_r)
{
	bool eight_bit = false;
	for (const char *p = value; *p != '\0'; p++)
		eight_bit = eight_bit || (unsigned char)*p >= 0x80;
	struct buf *b = imap_client_cmd(c, "UID SEARCH", error_r);
	if (b == NULL || (eight_bit && imap_cmd_raw(b, "CHARSET UTF-8", error_r) < 0) ||
	    imap_cmd_atom(b, "HEADER", error_r) < 0 || header[0] == '\\' ||
	    imap_cmd_atom(b, header, error_r) < 0 ||
	    imap_cmd_astring_lit(b, value, imap_client_nonsync_max(c), error_r) < 0)
		return imap_client_refuse(c, error_r, "cannot send UID SEARCH: %s",
		                          header[0] == '\\' ? "invalid header name" : *error_r);
	return search_run(c, uids_r, n_r, error_r);
}

/* --- For the fuzzer -------------------------------------------------------- */

int imap_commands_check_response(const struct imap_response *resp,
                                 const struct imap_uidset *request)
{
	const char *err;
	int rejected = 0;

	struct imap_select_info info = {0};
	(void)select_untagged(&info, resp, &err);
	(void)select_tagged(&info, resp, &err);

	struct piece_cmd pc;
	memset(&pc, 0, sizeof(pc));
	pc.piece = *request;
	struct imap_uidset modified = IMAP_UIDSET_INIT;
	struct store_ctx sc = {&pc, &modified};
	if (store_tagged(&sc, resp, &err) < 0)
		rejected |= 1;
	if (!imap_uidset_contains_set(request, &modified))
		return -1;
	imap_uidset_free(&modified);

	struct fetch_ctx fc = {&pc, request, NULL, 0, 0, 1000, {0}};
	buf_init(&fc.flags, 64 * 1024);
	if (fetch_untagged(&fc, resp, &err) < 0)
		rejected |= 2;
	for (size_t i = 0; i < fc.n; i++) {
		if (!imap_uidset_contains(request, fc.v[i].uid) || fc.v[i].flags == NULL ||
		    strstr(fc.v[i].flags, "  ") != NULL)
			return -1;
	}
	imap_uid_flags_free(&fc.v, fc.n);
	buf_free(&fc.flags);

	struct imap_copyuid cu = {0};
	struct copy_ctx cc = {&pc, &cu, false, false};
	(void)copy_code(&cc, resp, &err);
	if (cc.piece_got != (cu.valid && cu.count > 0))
		return -1;
	for (size_t i = 0; i < cu.count; i++) {
		if (!imap_uidset_contains(request, cu.pairs[i].src) || cu.pairs[i].dst == 0)
			return -1;
	}
	imap_copyuid_free(&cu);

	struct append_ctx ac = {0, 0};
	(void)append_tagged(&ac, resp, &err);
	if ((ac.uid == 0) != (ac.uidvalidity == 0))
		return -1;

	struct search_ctx sr = {NULL, 0, 0, "M1"};
	if (search_untagged(&sr, resp, &err) < 0)
		rejected |= 4;
	for (size_t i = 0; i < sr.n; i++) {
		if (sr.uids[i] == 0)
			return -1;
	}
	free(sr.uids);
	return rejected;
}
