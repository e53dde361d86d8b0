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
	    (condstore && imap_client_has_cap(c, "CONDSTORE") &&
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
	if (imap_client_has_cap(c, "UNSELECT")) {
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
	if (cc->unusable || imap_copyuid_parse(resp->code_args, &cc->pc->piece, cc->cu, &err) < 0)
		cc->unusable = true; /* the caller falls back to finding the copies */
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
	if (!imap_client_has_cap(c, "MOVE")) {
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
	if (!imap_client_has_cap(c, "UIDPLUS"))
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
	snprintf(lit, sizeof(lit), "{%zu%s}", len, nonsync ? "+" : "");
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
};

/* "* SEARCH 3 7 9" (RFC 9051), with CONDSTORE "* SEARCH 3 7 (MODSEQ 12)". */
static int search_untagged(void *context, const struct imap_response *resp, const char **error_r)
{
	struct search_ctx *sc = context;
	if (resp->status != IMAP_STATUS_NONE || !imap_arg_is_atom(resp->args, "SEARCH"))
		return 0;
	for (const struct imap_arg *a = resp->args->next; a != NULL; a = a->next) {
		uint64_t uid;
		if (a->type == IMAP_ARG_LIST && a->next == NULL)
			break; /* (MODSEQ n) */
		if (a->type != IMAP_ARG_ATOM || !imap_arg_number(a, UINT32_MAX, &uid) || uid == 0) {
			*error_r = "malformed SEARCH response";
			return -1;
		}
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
		sc->uids[sc->n++] = (uint32_t)uid;
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
	struct search_ctx sc = {NULL, 0, 0};
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
