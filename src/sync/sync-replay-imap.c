/*
 * The replay's commands on the server (see sync-replay.c for the run):
 * thin wrappers over the client's commands (imap-commands.c) that fold
 * their results into the replay's 0 / 1 refused / -1 convention, STATUS
 * and a header FETCH built here, and finding a message the hub holds in a
 * folder by its content (Message-ID, then size and header hash).
 */
#include "sync-replay-private.h"
#include "../imap/imap-cmd.h"
#include "../lib/crashpoint.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A set of positive ids (open addressing; 0 marks a free slot), for the
 * "no message twice in a batch" check. */
bool idset_has(const struct idset *set, int64_t id)
{
	if (set->cap == 0)
		return false;
	for (size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (set->cap - 1);;
	     i = (i + 1) & (set->cap - 1)) {
		if (set->slots[i] == 0)
			return false;
		if (set->slots[i] == id)
			return true;
	}
}

int idset_add(struct idset *set, int64_t id)
{
	if ((set->count + 1) * 2 > set->cap) {
		size_t cap = set->cap == 0 ? 64 : set->cap * 2;
		int64_t *slots = calloc(cap, sizeof(*slots));
		if (slots == NULL)
			return -1;
		struct idset grown = {slots, cap, 0};
		for (size_t i = 0; i < set->cap; i++)
			if (set->slots[i] != 0)
				(void)idset_add(&grown, set->slots[i]);
		free(set->slots);
		*set = grown;
	}
	size_t i = (size_t)((uint64_t)id * 0x9E3779B97F4A7C15ull) & (set->cap - 1);
	while (set->slots[i] != 0 && set->slots[i] != id)
		i = (i + 1) & (set->cap - 1);
	if (set->slots[i] == 0) {
		set->slots[i] = id;
		set->count++;
	}
	return 0;
}

void idset_clear(struct idset *set)
{
	if (set->cap > 0)
		memset(set->slots, 0, set->cap * sizeof(*set->slots));
	set->count = 0;
}

int replay_fail(struct replay *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->st->error), fmt, ap);
	va_end(ap);
	return -1;
}

static int64_t touch_key(int64_t mailbox_id, uint32_t uid)
{
	return (int64_t)(((uint64_t)mailbox_id << 32) | uid);
}

void touch(struct replay *r, int64_t mailbox_id, uint32_t uid)
{
	/* Out of memory only costs a needless [MODIFIED] round. */
	(void)idset_add(r->touched, touch_key(mailbox_id, uid));
}

bool touched(const struct replay *r, int64_t mailbox_id, uint32_t uid)
{
	return idset_has(r->touched, touch_key(mailbox_id, uid));
}

/* --- small IMAP commands ---------------------------------------------- */

/* A refusal is for good unless the server says it is temporary. */
bool refusal_temporary(struct replay *r)
{
	static const char *const temporary[] = {"UNAVAILABLE", "INUSE",         "LIMIT",
	                                        "SERVERBUG",   "EXPUNGEISSUED", "CORRUPTION"};
	const char *code = imap_client_last_code(r->c);
	for (size_t i = 0; i < sizeof(temporary) / sizeof(temporary[0]); i++)
		if (strcasecmp(code, temporary[i]) == 0)
			return true;
	return false;
}

/* Result of a command: 0 OK, 1 refused (NO/BAD), -1 broken (r->error). */
int cmd_result(struct replay *r, int rc, const char *const *errp)
{
	/* errp, not the text: the caller's call that sets it is an argument
	 * evaluated in an unspecified order with this one. */
	const char *err = *errp;
	if (rc == 0)
		return 0;
	if (rc == IMAP_CMD_FAILED && imap_client_is_open(r->c)) {
		snprintf(r->error, sizeof(r->st->error), "%s", err);
		return 1;
	}
	return replay_fail(r, "%s", err);
}

/* uids[0..n) as a set for the client's commands. */
static int to_set(struct replay *r, const uint32_t *uids, size_t n, struct imap_uidset *set)
{
	imap_uidset_init(set);
	if (imap_uidset_add_array(set, uids, n) < 0)
		return replay_fail(r, "out of memory");
	return 0;
}

/* The UIDs of a set, appended to v. */
static int set_to_vec(struct replay *r, const struct imap_uidset *set, struct uidvec *v)
{
	for (size_t i = 0; i < set->count; i++)
		for (uint64_t u = set->ranges[i].lo; u <= set->ranges[i].hi; u++)
			if (uidvec_add(v, (uint32_t)u) < 0)
				return replay_fail(r, "out of memory");
	return 0;
}

/* SELECT name unless it is selected. mailbox_id: the store's mailbox it
 * is (its UIDVALIDITY is checked), 0 for none. 0 / 1 refused / -1. */
int rp_select(struct replay *r, const char *name, int64_t mailbox_id)
{
	if (strcmp(r->selected, name) == 0)
		return 0;
	const char *err;
	struct imap_select_info info;
	r->selected[0] = '\0';
	int rc = cmd_result(
	    r, imap_client_select(r->c, name, r->tier != SYNC_TIER_PLAIN, &info, &err), &err);
	if (rc != 0)
		return rc;
	snprintf(r->selected, sizeof(r->selected), "%s", name);
	r->sel_uidvalidity = info.uidvalidity;
	r->sel_uidnext = info.uidnext;
	r->selected_box = mailbox_id;
	r->sel_stale = false;
	if (mailbox_id != 0) {
		uint32_t v = 0, next = 0;
		uint64_t hms = 0;
		if (store_replay_mailbox_state(r->s, mailbox_id, &v, &next, &hms, &err) < 0)
			return replay_fail(r, "%s", err);
		r->sel_stale = v != 0 && v != info.uidvalidity;
	}
	return 0;
}

/* CREATE, RENAME, DELETE, SUBSCRIBE, UNSUBSCRIBE. 0 / 1 refused / -1. */
int rp_simple(struct replay *r, const char *cmd, const char *name, const char *name2)
{
	const char *err;
	int rc;
	if ((strcmp(cmd, "DELETE") == 0 || strcmp(cmd, "RENAME") == 0) && r->selected[0] != '\0') {
		/* Dovecot ends the session on DELETE or RENAME of the
		 * selected mailbox: leave it first. */
		rc = cmd_result(r, imap_client_unselect(r->c, &err), &err);
		if (rc != 0)
			return rc < 0 ? -1 : replay_fail(r, "%s", r->error);
		r->selected[0] = '\0';
	}
	if (strcmp(cmd, "CREATE") == 0)
		rc = imap_client_create(r->c, name, &err);
	else if (strcmp(cmd, "RENAME") == 0)
		rc = imap_client_rename(r->c, name, name2, &err);
	else if (strcmp(cmd, "DELETE") == 0)
		rc = imap_client_delete(r->c, name, &err);
	else if (strcmp(cmd, "SUBSCRIBE") == 0)
		rc = imap_client_subscribe(r->c, name, &err);
	else
		rc = imap_client_unsubscribe(r->c, name, &err);
	r->st->commands++;
	return cmd_result(r, rc, &err);
}

static int status_untagged(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct status_ctx *sc = ctx;
	(void)error_r;
	if (resp->status != IMAP_STATUS_NONE || !imap_arg_is_atom(resp->args, "STATUS"))
		return 0;
	const struct imap_arg *list = resp->args->next != NULL ? resp->args->next->next : NULL;
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return 0;
	for (const struct imap_arg *a = list->list; a != NULL && a->next != NULL;
	     a = a->next->next) {
		uint64_t n;
		if (!imap_arg_number(a->next, UINT32_MAX, &n))
			continue;
		if (imap_arg_is_atom(a, "MESSAGES"))
			sc->messages = (uint32_t)n;
		else if (imap_arg_is_atom(a, "UIDNEXT"))
			sc->uidnext = (uint32_t)n;
		else if (imap_arg_is_atom(a, "UIDVALIDITY"))
			sc->uidvalidity = (uint32_t)n;
	}
	return 0;
}

/* STATUS name (MESSAGES UIDNEXT UIDVALIDITY): the client has no command
 * for it, so it is built here. 0 / 1 refused / -1. */
int rp_status(struct replay *r, const char *name, struct status_ctx *sc)
{
	const char *err;
	memset(sc, 0, sizeof(*sc));
	struct buf *b = imap_client_cmd(r->c, "STATUS", &err);
	if (b == NULL || imap_cmd_astring(b, name, &err) < 0 ||
	    imap_cmd_raw(b, "(MESSAGES UIDNEXT UIDVALIDITY)", &err) < 0)
		return replay_fail(r, "STATUS %s: %s", name, err);
	return cmd_result(r, imap_client_run(r->c, status_untagged, sc, &err), &err);
}

/* Append the UID set of uids[from..to) as an argument (UID FETCH here). */
static int put_set(struct replay *r, struct buf *b, const uint32_t *uids, size_t from, size_t to)
{
	struct buf set;
	const char *err = "UID set too long";
	buf_init(&set, 64 * 1024);
	int ret =
	    uidset_format(&set, uids, from, to) < 0 || imap_cmd_seqset(b, buf_str(&set), &err) < 0
	        ? replay_fail(r, "%s", err)
	        : 0;
	buf_free(&set);
	return ret;
}

/* UID SEARCH criteria, or HEADER header value when value is not NULL, into
 * v (sorted). 0 / 1 / -1. */
int rp_search(struct replay *r, const char *criteria, const char *value, struct uidvec *v)
{
	const char *err;
	uint32_t *uids = NULL;
	size_t n = 0;
	int rc = value != NULL
	             ? imap_client_uid_search_header(r->c, criteria, value, &uids, &n, &err)
	             : imap_client_uid_search(r->c, criteria, &uids, &n, &err);
	rc = cmd_result(r, rc, &err);
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (uidvec_add(v, uids[i]) < 0)
			rc = replay_fail(r, "out of memory");
	free(uids);
	uidvec_sort(v);
	return rc;
}

/* UID STORE uids op flags, with UNCHANGEDSINCE when unchangedsince != 0;
 * the UIDs the server did not change for it go into modified (may be
 * NULL). 0 / 1 refused / -1. */
int rp_store(struct replay *r, const uint32_t *uids, size_t n, const char *op, const char *flags,
             uint64_t unchangedsince, struct uidvec *modified)
{
	const char *err;
	struct imap_uidset set, mod;
	if (to_set(r, uids, n, &set) < 0)
		return -1;
	imap_uidset_init(&mod);
	int rc = cmd_result(r,
	                    imap_client_uid_store(r->c, &set, op, flags, unchangedsince,
	                                          modified != NULL ? &mod : NULL, &err),
	                    &err);
	if (rc == 0 && modified != NULL) {
		rc = set_to_vec(r, &mod, modified);
		uidvec_sort(modified);
	}
	imap_uidset_free(&set);
	imap_uidset_free(&mod);
	r->st->commands++;
	return rc;
}

/* UID COPY or UID MOVE of uids to target; the (source, target) UID pairs
 * the server reported are added to src/dst (none without UIDPLUS). */
int rp_copy(struct replay *r, const char *cmd, const uint32_t *uids, size_t n, const char *target,
            struct uidvec *src, struct uidvec *dst)
{
	const char *err;
	struct imap_uidset set;
	struct imap_copyuid cu;
	memset(&cu, 0, sizeof(cu));
	if (to_set(r, uids, n, &set) < 0)
		return -1;
	int rc = strcmp(cmd, "UID MOVE") == 0 ? imap_client_uid_move(r->c, &set, target, &cu, &err)
	                                      : imap_client_uid_copy(r->c, &set, target, &cu, &err);
	rc = cmd_result(r, rc, &err);
	r->st->commands++;
	if (rc == 0)
		crashpoint_commit(); /* the server committed it: a crash point */
	for (size_t i = 0; rc == 0 && cu.valid && i < cu.count; i++)
		if (uidvec_add(src, cu.pairs[i].src) < 0 || uidvec_add(dst, cu.pairs[i].dst) < 0)
			rc = replay_fail(r, "out of memory");
	imap_copyuid_free(&cu);
	imap_uidset_free(&set);
	return rc;
}

/* APPEND with APPENDUID: *uid_r is the new UID, 0 when the server did not
 * say. 0 / 1 refused / -1. */
int rp_append(struct replay *r, const char *target, unsigned flags, const char *keywords,
              int64_t date, const void *data, size_t len, uint32_t *uid_r)
{
	struct buf fl;
	buf_init(&fl, 64 * 1024);
	static const struct {
		unsigned bit;
		const char *name;
	} sys[] = {{STORE_FLAG_SEEN, "\\Seen"},
	           {STORE_FLAG_ANSWERED, "\\Answered"},
	           {STORE_FLAG_FLAGGED, "\\Flagged"},
	           {STORE_FLAG_DRAFT, "\\Draft"}};
	int ok = buf_append_str(&fl, "(");
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++)
		if ((flags & sys[i].bit) != 0)
			ok |= buf_printf(&fl, "%s%s", fl.len > 1 ? " " : "", sys[i].name);
	if (keywords != NULL && *keywords != '\0')
		ok |= buf_printf(&fl, "%s%s", fl.len > 1 ? " " : "", keywords);
	ok |= buf_append_str(&fl, ")");
	if (ok < 0) {
		buf_free(&fl);
		return replay_fail(r, "too many keywords");
	}
	const char *err;
	uint32_t validity = 0;
	*uid_r = 0;
	int rc = cmd_result(r,
	                    imap_client_append_uid(r->c, target, buf_str(&fl), date, data, len,
	                                           &validity, uid_r, &err),
	                    &err);
	buf_free(&fl);
	r->st->commands++;
	if (rc == 0)
		crashpoint_commit(); /* the server committed it: a crash point */
	if (strcmp(r->selected, target) == 0)
		r->selected[0] = '\0'; /* UIDNEXT moved: select again to read it */
	return rc;
}

/* Expunge exactly uids in the selected folder. With UIDPLUS: UID EXPUNGE.
 * Without: other messages that carry \Deleted lose it for the moment,
 * EXPUNGE, and get it back. 0 / 1 / -1. */
int rp_expunge(struct replay *r, const uint32_t *uids, size_t n)
{
	const char *err;
	if (r->uidplus) {
		struct imap_uidset set;
		if (to_set(r, uids, n, &set) < 0)
			return -1;
		int rc = cmd_result(r, imap_client_uid_expunge(r->c, &set, &err), &err);
		imap_uidset_free(&set);
		r->st->commands++;
		return rc;
	}
	struct uidvec deleted = {0}, others = {0};
	int rc = rp_search(r, "DELETED", NULL, &deleted);
	struct uidvec mine = {(uint32_t *)uids, NULL, n, n};
	for (size_t i = 0; rc == 0 && i < deleted.count; i++)
		if (!uidvec_contains(&mine, deleted.uids[i]) &&
		    uidvec_add(&others, deleted.uids[i]) < 0)
			rc = replay_fail(r, "out of memory");
	if (rc == 0 && others.count > 0)
		rc =
		    rp_store(r, others.uids, others.count, "-FLAGS.SILENT", "(\\Deleted)", 0, NULL);
	if (rc == 0) {
		rc = cmd_result(r, imap_client_expunge(r->c, &err), &err);
		r->st->commands++;
	}
	/* Theirs back even if the EXPUNGE was refused. */
	if (rc >= 0 && others.count > 0) {
		int rc2 =
		    rp_store(r, others.uids, others.count, "+FLAGS.SILENT", "(\\Deleted)", 0, NULL);
		if (rc2 != 0 && rc == 0)
			rc = rc2;
	}
	uidvec_free(&deleted);
	uidvec_free(&others);
	return rc;
}

/* --- finding a message on the server by content ------------------------ */

/* The Message-ID of stored bytes (first 64 KiB), or "" when none or not
 * plain printable ASCII. */
static int message_id_of(struct replay *r, int64_t blob_id, uint64_t size, char *out,
                         size_t outsize)
{
	out[0] = '\0';
	size_t n = size < 65536 ? (size_t)size : 65536;
	char *h = malloc(n + 1);
	const char *err;
	if (h == NULL)
		return replay_fail(r, "out of memory");
	if (store_blob_read(r->s, blob_id, 0, h, n, &err) < 0) {
		free(h);
		return replay_fail(r, "%s", err);
	}
	h[n] = '\0';
	for (size_t i = 0; i < n;) {
		size_t end = i;
		while (end < n && h[end] != '\n')
			end++;
		if (end == i || (end == i + 1 && h[i] == '\r'))
			break; /* the blank line: end of the header */
		if (end - i > 11 && strncasecmp(h + i, "Message-ID:", 11) == 0) {
			size_t a = i + 11, b = end;
			/* Folded: take the next line's content too. */
			while (b + 1 < n && (h[b + 1] == ' ' || h[b + 1] == '\t')) {
				size_t e2 = b + 1;
				while (e2 < n && h[e2] != '\n')
					e2++;
				b = e2;
			}
			size_t o = 0;
			for (size_t k = a; k < b && o + 1 < outsize; k++) {
				unsigned char ch = (unsigned char)h[k];
				if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n')
					continue;
				if (ch < 0x21 || ch > 0x7e) {
					o = 0;
					break;
				}
				out[o++] = (char)ch;
			}
			out[o] = '\0';
			break;
		}
		i = end + 1;
	}
	free(h);
	return 0;
}

struct hash_ctx {
	const unsigned char *want;
	uint32_t found; /* highest candidate with the hash */
	const uint32_t *skip;
	size_t nskip;
};

static int hash_untagged(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct hash_ctx *hc = ctx;
	(void)error_r;
	if (resp->status != IMAP_STATUS_NONE || resp->args == NULL ||
	    !imap_arg_is_atom(resp->args->next, "FETCH"))
		return 0;
	const struct imap_arg *list = resp->args->next->next;
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return 0;
	uint64_t uid = 0;
	const struct imap_arg *hdr = NULL;
	for (const struct imap_arg *a = list->list; a != NULL && a->next != NULL;
	     a = a->next->next) {
		if (imap_arg_is_atom(a, "UID"))
			imap_arg_number(a->next, UINT32_MAX, &uid);
		else if (imap_arg_is_atom(a, "BODY[HEADER]"))
			hdr = a->next;
	}
	if (uid == 0 || hdr == NULL || hdr->type != IMAP_ARG_STRING)
		return 0;
	unsigned char hash[32];
	unsigned int hl = 0;
	EVP_Digest(hdr->str, hdr->len, hash, &hl, EVP_sha256(), NULL);
	if (memcmp(hash, hc->want, 32) != 0)
		return 0;
	for (size_t i = 0; i < hc->nskip; i++)
		if (hc->skip[i] == uid)
			return 0;
	if (uid > hc->found)
		hc->found = (uint32_t)uid;
	return 0;
}

/* Find stored bytes (blob, size) in the selected folder target among UIDs
 * >= min_uid that no other message of mailbox_id holds (a Message-ID
 * search, else by size; then the header hash decides). *uid_r = 0 when
 * not there. 0 / -1 (a refusal counts as not found). */
int rp_find(struct replay *r, int64_t mailbox_id, int64_t message_id, int64_t blob_id,
            uint64_t size, uint32_t min_uid, uint32_t *uid_r)
{
	*uid_r = 0;
	char msgid[998];
	if (message_id_of(r, blob_id, size, msgid, sizeof(msgid)) < 0)
		return -1;
	struct uidvec cand = {0};
	int rc;
	if (msgid[0] != '\0' && strchr(msgid, '"') == NULL && strchr(msgid, '\\') == NULL) {
		rc = rp_search(r, "Message-ID", msgid, &cand);
	} else {
		char crit[80];
		snprintf(crit, sizeof(crit), "LARGER %llu SMALLER %llu",
		         (unsigned long long)(size > 0 ? size - 1 : 0),
		         (unsigned long long)size + 1);
		rc = rp_search(r, crit, NULL, &cand);
	}
	if (rc < 0) {
		uidvec_free(&cand);
		return -1;
	}
	/* Candidates the store holds already (in this mailbox, as other rows)
	 * are other copies. */
	struct uidvec fresh = {0};
	const char *err;
	for (size_t i = 0; i < cand.count; i++) {
		if (cand.uids[i] < min_uid)
			continue;
		int held = store_replay_uid_held(r->s, mailbox_id, cand.uids[i], message_id, &err);
		if (held < 0) {
			uidvec_free(&cand);
			uidvec_free(&fresh);
			return replay_fail(r, "%s", err);
		}
		if (held == 0 && uidvec_add(&fresh, cand.uids[i]) < 0) {
			uidvec_free(&cand);
			uidvec_free(&fresh);
			return replay_fail(r, "out of memory");
		}
	}
	uidvec_free(&cand);
	if (fresh.count == 0) {
		uidvec_free(&fresh);
		return 0;
	}
	unsigned char want[32];
	if (store_blob_header_hash(r->s, blob_id, size, want, &err) < 0) {
		uidvec_free(&fresh);
		return replay_fail(r, "%s", err);
	}
	struct buf *b = imap_client_cmd(r->c, "UID FETCH", &err);
	if (b == NULL || put_set(r, b, fresh.uids, 0, fresh.count) < 0 ||
	    imap_cmd_raw(b, "(UID RFC822.SIZE BODY.PEEK[HEADER])", &err) < 0) {
		uidvec_free(&fresh);
		return replay_fail(r, "UID FETCH: %s", err);
	}
	struct hash_ctx hc = {want, 0, NULL, 0};
	rc = cmd_result(r, imap_client_run(r->c, hash_untagged, &hc, &err), &err);
	uidvec_free(&fresh);
	if (rc < 0)
		return -1;
	*uid_r = hc.found;
	return 0;
}

/* The messages at UIDs >= from of the selected folder, by header hash:
 * what a COPY or MOVE without COPYUID made there. */
struct arrival {
	uint32_t uid;
	bool used;
	unsigned char hash[32];
};

struct arrivals_ctx {
	struct arrival *v;
	size_t count, cap;
	uint32_t from;
	bool oom;
};

static int arrivals_untagged(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct arrivals_ctx *ac = ctx;
	(void)error_r;
	if (resp->status != IMAP_STATUS_NONE || resp->args == NULL ||
	    !imap_arg_is_atom(resp->args->next, "FETCH"))
		return 0;
	const struct imap_arg *list = resp->args->next->next;
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return 0;
	uint64_t uid = 0;
	const struct imap_arg *hdr = NULL;
	for (const struct imap_arg *a = list->list; a != NULL && a->next != NULL;
	     a = a->next->next) {
		if (imap_arg_is_atom(a, "UID"))
			imap_arg_number(a->next, UINT32_MAX, &uid);
		else if (imap_arg_is_atom(a, "BODY[HEADER]"))
			hdr = a->next;
	}
	/* "n:*" names the last message even below n. */
	if (uid < ac->from || hdr == NULL || hdr->type != IMAP_ARG_STRING)
		return 0;
	if (ac->count == ac->cap) {
		size_t cap = ac->cap == 0 ? 64 : ac->cap * 2;
		void *nv = realloc(ac->v, cap * sizeof(*ac->v));
		if (nv == NULL) {
			ac->oom = true;
			return 0;
		}
		ac->v = nv;
		ac->cap = cap;
	}
	struct arrival *a = &ac->v[ac->count++];
	a->uid = (uint32_t)uid;
	a->used = false;
	unsigned int hl = 0;
	EVP_Digest(hdr->str, hdr->len, a->hash, &hl, EVP_sha256(), NULL);
	return 0;
}

/* Without COPYUID: the copies of a batch found in the target in one FETCH
 * of the UIDs from the target's UIDNEXT before the command (from), each
 * change of v whose source was copied (present) and has no UID yet
 * (nuids[i] == 0) paired with an arrival of the same header hash, in UID
 * order. The rest is left to rp_find(). 0 / -1. */
int match_arrivals(struct replay *r, const char *target, int64_t target_box, uint32_t from,
                   struct store_replay_change *v, size_t n, const struct uidvec *present,
                   uint32_t *nuids)
{
	if (from == 0)
		return 0;
	const char *err;
	int rc = rp_select(r, target, target_box);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	char range[32];
	snprintf(range, sizeof(range), "%u:*", from);
	struct buf *b = imap_client_cmd(r->c, "UID FETCH", &err);
	if (b == NULL || imap_cmd_seqset(b, range, &err) < 0 ||
	    imap_cmd_raw(b, "(UID BODY.PEEK[HEADER])", &err) < 0)
		return replay_fail(r, "UID FETCH: %s", err);
	struct arrivals_ctx ac = {NULL, 0, 0, from, false};
	rc = cmd_result(r, imap_client_run(r->c, arrivals_untagged, &ac, &err), &err);
	if (rc == 0 && ac.oom)
		rc = replay_fail(r, "out of memory");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (nuids[i] != 0 || v[i].origin_uid <= 0 ||
		    v[i].origin_uid >= STORE_LOCAL_UID_BASE ||
		    !uidvec_contains(present, (uint32_t)v[i].origin_uid))
			continue;
		struct store_replay_msg m;
		int found = store_replay_message(r->s, v[i].object_id, &m, &err);
		if (found < 0) {
			rc = replay_fail(r, "%s", err);
			break;
		}
		if (found == 0)
			continue;
		unsigned char want[32];
		if (store_blob_header_hash(r->s, m.blob_id, m.size, want, &err) < 0)
			rc = replay_fail(r, "%s", err);
		store_replay_message_free(&m);
		for (size_t k = 0; rc == 0 && k < ac.count; k++) {
			if (!ac.v[k].used && memcmp(ac.v[k].hash, want, 32) == 0) {
				ac.v[k].used = true;
				nuids[i] = ac.v[k].uid;
				break;
			}
		}
	}
	free(ac.v);
	return rc < 0 ? -1 : 0;
}

/* Which of todo (sorted) the selected folder has, into present: UID
 * SEARCH UID set, in pieces of lines under REPLAY_SET_MAX bytes. */
int search_present(struct replay *r, const struct uidvec *todo, struct uidvec *present)
{
	struct buf crit;
	buf_init(&crit, 64 * 1024);
	int rc = 0;
	/* The whole set when it is short (runs of UIDs are), else pieces in
	 * which each UID takes at most 11 characters. */
	size_t step = todo->count;
	if (uidset_format(&crit, todo->uids, 0, todo->count) < 0 || crit.len > REPLAY_SET_MAX)
		step = REPLAY_SET_MAX / 11;
	for (size_t from = 0; from < todo->count && rc == 0;) {
		size_t to = todo->count - from > step ? from + step : todo->count;
		buf_reset(&crit);
		if (buf_append_str(&crit, "UID ") < 0 ||
		    uidset_format(&crit, todo->uids, from, to) < 0)
			rc = replay_fail(r, "UID set too long");
		else
			rc = rp_search(r, buf_str(&crit), NULL, present);
		from = to;
	}
	buf_free(&crit);
	uidvec_sort(present);
	return rc;
}
