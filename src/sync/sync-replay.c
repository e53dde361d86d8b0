/*
 * Replay of the device changes recorded in local_changes to the account's
 * IMAP server (SPEC-10 section 3; the rules are in docs/sync.md).
 *
 * The changes of an account go in local_changes.id order. Consecutive
 * changes of one kind, one source folder (and one target, one detail) are
 * one batch and one command on a UID set. Per batch:
 *
 *   pending --(APPEND/COPY/MOVE: mark 'sent', commit)--> sent
 *      |                                                   |
 *      '-- command (STORE, EXPUNGE, CREATE, ...) ----------'--> answer
 *   answer OK  -> the store records it (pairs UIDs) and the changes are
 *                 deleted, in one transaction
 *   answer NO without a temporary code -> 'failed' + a hub notice
 *   temporary refusal, broken session -> stop; the next run goes on
 *
 * A change found 'sent' (a crash between the command and the commit of its
 * answer) is checked on the server first: a MOVE by whether the source UID
 * is still there, an APPEND or COPY by looking for the message in the
 * target folder (Message-ID, then size and header hash), so nothing is
 * ever appended twice.
 *
 * The commands on the server and finding a message there by content are in
 * sync-replay-imap.c (on the client's commands, imap-commands.c).
 */
#include "sync-replay-private.h"
#include "../imap/imap-cmd.h"
#include "../lib/imap-utf7.h"
#include "../lib/clock.h"
#include "../store/store-replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* --- the kinds ---------------------------------------------------------- */

static bool is_msg_kind(const char *k)
{
	return strncmp(k, "mailbox-", 8) != 0;
}

/* Finish changes [0, n) (the answer is in the open transaction). */
static int finish_all(struct replay *r, struct store_replay_change *v, size_t n)
{
	const char *err;
	if (store_replay_finish(r->s, v, n, &err) < 0)
		return replay_fail(r, "%s", err);
	r->st->replayed += (unsigned)n;
	return 0;
}

/* In a transaction of its own: the whole batch fails for good. */
static int fail_batch(struct replay *r, struct store_replay_change *v, size_t n, const char *why)
{
	const char *err;
	char reason[600];
	snprintf(reason, sizeof(reason), "%s", why);
	if (store_begin(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	for (size_t i = 0; i < n; i++) {
		bool notify = r->notices < REPLAY_NOTICES;
		if (notify)
			r->notices++;
		else
			r->unnotified++;
		if (store_replay_fail(r->s, &v[i], reason, notify, &err) < 0) {
			store_rollback(r->s);
			return replay_fail(r, "%s", err);
		}
		r->st->failed++;
	}
	if (store_commit(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	return 0;
}

static int commit_finish(struct replay *r, struct store_replay_change *v, size_t n)
{
	const char *err;
	if (store_begin(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	if (finish_all(r, v, n) < 0) {
		store_rollback(r->s);
		return -1;
	}
	if (store_commit(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	return 0;
}

static int mark_sent(struct replay *r, struct store_replay_change *v, size_t n)
{
	const char *err;
	if (store_begin(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	if (store_replay_mark_sent(r->s, v, n, &err) < 0) {
		store_rollback(r->s);
		return replay_fail(r, "%s", err);
	}
	if (store_commit(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	return 0;
}

/* A refusal: temporary ones stop the run (-1, retried next time); others
 * fail the batch for good. Returns 0 after failing it, -1 to stop. */
static int refused(struct replay *r, struct store_replay_change *v, size_t n)
{
	if (refusal_temporary(r))
		return -1;
	char why[600];
	snprintf(why, sizeof(why), "%s", r->error);
	return fail_batch(r, v, n, why);
}

/* The server name of a mailbox (*name_r malloc()ed; NULL when it has no
 * server folder). */
static int server_name(struct replay *r, int64_t mailbox_id, char **name_r)
{
	const char *err;
	*name_r = NULL;
	int found = store_replay_server_name(r->s, mailbox_id, name_r, &err);
	if (found < 0)
		return replay_fail(r, "%s", err);
	return 0;
}

/* keywords: "+\Seen -$x" deltas, or the old absolute "<flags> <keywords>". */
struct kw_delta {
	struct buf add, del; /* "(\\Seen $x)" or empty */
	bool absolute;
	struct buf abs;
};

static const char *sys_flag_name(unsigned bit)
{
	switch (bit) {
	case STORE_FLAG_SEEN:
		return "\\Seen";
	case STORE_FLAG_ANSWERED:
		return "\\Answered";
	case STORE_FLAG_FLAGGED:
		return "\\Flagged";
	case STORE_FLAG_DELETED:
		return "\\Deleted";
	case STORE_FLAG_DRAFT:
		return "\\Draft";
	}
	return NULL;
}

static int kw_parse(const char *detail, struct kw_delta *d)
{
	buf_init(&d->add, 16 * 1024);
	buf_init(&d->del, 16 * 1024);
	buf_init(&d->abs, 16 * 1024);
	d->absolute = false;
	if (detail == NULL)
		return 0;
	if (*detail >= '0' && *detail <= '9') {
		d->absolute = true;
		unsigned long flags = strtoul(detail, NULL, 10);
		const char *kw = strchr(detail, ' ');
		buf_append_str(&d->abs, "(");
		for (unsigned bit = 1; bit <= STORE_FLAG_DRAFT; bit <<= 1)
			if ((flags & bit) != 0)
				buf_printf(&d->abs, "%s%s", d->abs.len > 1 ? " " : "",
				           sys_flag_name(bit));
		if (kw != NULL && kw[1] != '\0')
			buf_printf(&d->abs, "%s%s", d->abs.len > 1 ? " " : "", kw + 1);
		return buf_append_str(&d->abs, ")");
	}
	const char *p = detail;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		const char *e = p;
		while (*e != '\0' && *e != ' ')
			e++;
		struct buf *b = *p == '+' ? &d->add : *p == '-' ? &d->del : NULL;
		if (b == NULL || e - p < 2)
			return -1;
		if (buf_append_str(b, b->len == 0 ? "(" : " ") < 0 ||
		    buf_append(b, p + 1, (size_t)(e - p - 1)) < 0)
			return -1;
		p = e;
	}
	if (d->add.len > 0 && buf_append_str(&d->add, ")") < 0)
		return -1;
	if (d->del.len > 0 && buf_append_str(&d->del, ")") < 0)
		return -1;
	return 0;
}

static void kw_free(struct kw_delta *d)
{
	buf_free(&d->add);
	buf_free(&d->del);
	buf_free(&d->abs);
}

/* One STORE of a delta with UNCHANGEDSINCE where the tier has it; UIDs the
 * server changed meanwhile ([MODIFIED]) get the delta again without it:
 * a +FLAGS/-FLAGS applies per flag over whatever the server has now. */
static int store_delta(struct replay *r, const uint32_t *uids, size_t n, const char *op,
                       const char *flags, uint64_t unchangedsince)
{
	struct uidvec modified = {0};
	int rc = rp_store(r, uids, n, op, flags, unchangedsince, &modified);
	if (rc == 0 && modified.count > 0) {
		r->st->conflicts += (unsigned)modified.count;
		rc = rp_store(r, modified.uids, modified.count, op, flags, 0, NULL);
	}
	uidvec_free(&modified);
	return rc;
}

static int replay_keywords_group(struct replay *r, struct store_replay_change *v, size_t n)
{
	struct uidvec uids = {0};
	for (size_t i = 0; i < n; i++)
		if (v[i].origin_uid > 0 && v[i].origin_uid < STORE_LOCAL_UID_BASE &&
		    uidvec_add(&uids, (uint32_t)v[i].origin_uid) < 0) {
			uidvec_free(&uids);
			return replay_fail(r, "out of memory");
		}
	uidvec_sort(&uids);
	struct kw_delta d;
	int rc = 0;
	if (kw_parse(v[0].detail, &d) < 0) {
		kw_free(&d);
		uidvec_free(&uids);
		return fail_batch(r, v, n, "unreadable keyword change");
	}
	uint32_t v_, next_;
	uint64_t hms = 0;
	const char *err;
	if (store_replay_mailbox_state(r->s, v[0].origin_mailbox_id, &v_, &next_, &hms, &err) < 0) {
		rc = replay_fail(r, "%s", err);
		goto out;
	}
	uint64_t unch = r->tier != SYNC_TIER_PLAIN ? hms : 0;
	/* Messages this run changed already carry our own modseq: no
	 * UNCHANGEDSINCE for them. */
	struct uidvec own = {0};
	if (unch != 0) {
		size_t k = 0;
		for (size_t i = 0; i < uids.count; i++) {
			if (touched(r, v[0].origin_mailbox_id, uids.uids[i]))
				uidvec_add(&own, uids.uids[i]);
			else
				uids.uids[k++] = uids.uids[i];
		}
		uids.count = k;
	}
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		struct uidvec *set = pass == 0 ? &uids : &own;
		uint64_t since = pass == 0 ? unch : 0;
		if (set->count == 0)
			continue;
		if (d.absolute) {
			/* The old absolute form has no base to merge with: where
			 * the server changed the message since our last sync, the
			 * device's flags are added to the server's (a flag the
			 * device removed stays: the union loses nothing). */
			struct uidvec modified = {0};
			rc = rp_store(r, set->uids, set->count, "FLAGS.SILENT", buf_str(&d.abs),
			              since, &modified);
			r->st->conflicts += (unsigned)modified.count;
			if (rc == 0 && modified.count > 0 && strcmp(buf_str(&d.abs), "()") != 0)
				rc = rp_store(r, modified.uids, modified.count, "+FLAGS.SILENT",
				              buf_str(&d.abs), 0, NULL);
			uidvec_free(&modified);
		} else {
			if (d.add.len > 0)
				rc = store_delta(r, set->uids, set->count, "+FLAGS.SILENT",
				                 buf_str(&d.add), since);
			if (rc == 0 && d.del.len > 0)
				rc = store_delta(r, set->uids, set->count, "-FLAGS.SILENT",
				                 buf_str(&d.del), since);
		}
		for (size_t i = 0; rc == 0 && i < set->count; i++)
			touch(r, v[0].origin_mailbox_id, set->uids[i]);
	}
	uidvec_free(&own);
	if (rc == 1 && n > 1 && !refusal_temporary(r)) {
		/* One message the server refuses must not fail the others:
		 * each on its own (a STORE may be sent again). */
		rc = 0;
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = replay_keywords_group(r, &v[i], 1);
	} else if (rc == 1) {
		rc = refused(r, v, n);
	} else if (rc == 0) {
		rc = commit_finish(r, v, n);
	}
out:
	kw_free(&d);
	uidvec_free(&uids);
	return rc;
}

static int cmp_detail(const void *a, const void *b)
{
	const struct store_replay_change *x = *(const struct store_replay_change *const *)a;
	const struct store_replay_change *y = *(const struct store_replay_change *const *)b;
	int c = strcmp(x->detail != NULL ? x->detail : "", y->detail != NULL ? y->detail : "");
	if (c != 0)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* keywords of distinct messages of one folder: one STORE per distinct
 * change (their order does not matter: no message is in the batch twice). */
static int replay_keywords(struct replay *r, struct store_replay_change *v, size_t n)
{
	struct store_replay_change **order = malloc(n * sizeof(*order));
	struct store_replay_change *group = malloc(n * sizeof(*group));
	if (order == NULL || group == NULL) {
		free(order);
		free(group);
		return replay_fail(r, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		order[i] = &v[i];
	qsort(order, n, sizeof(*order), cmp_detail);
	int rc = 0;
	for (size_t i = 0; i < n && (rc == 0);) {
		size_t j = i;
		/* Shallow copies: the group shares the strings of v. */
		while (j < n && strcmp(order[j]->detail != NULL ? order[j]->detail : "",
		                       order[i]->detail != NULL ? order[i]->detail : "") == 0) {
			group[j - i] = *order[j];
			j++;
		}
		rc = replay_keywords_group(r, group, j - i);
		i = j;
	}
	free(order);
	free(group);
	return rc;
}

/* expunge, destroy: \Deleted + expunge of exactly these UIDs. A message the
 * server has expunged already is simply not there. */
static int replay_expunge(struct replay *r, struct store_replay_change *v, size_t n)
{
	struct uidvec uids = {0};
	for (size_t i = 0; i < n; i++)
		if (v[i].origin_uid > 0 && v[i].origin_uid < STORE_LOCAL_UID_BASE &&
		    uidvec_add(&uids, (uint32_t)v[i].origin_uid) < 0) {
			uidvec_free(&uids);
			return replay_fail(r, "out of memory");
		}
	uidvec_sort(&uids);
	int rc = 0;
	if (uids.count > 0) {
		rc = rp_store(r, uids.uids, uids.count, "+FLAGS.SILENT", "(\\Deleted)", 0, NULL);
		if (rc == 0)
			rc = rp_expunge(r, uids.uids, uids.count);
	}
	uidvec_free(&uids);
	if (rc == 1 && n > 1 && !refusal_temporary(r)) {
		rc = 0;
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = replay_expunge(r, &v[i], 1);
		return rc;
	}
	if (rc == 1)
		return refused(r, v, n);
	if (rc < 0)
		return -1;
	const char *err;
	if (store_begin(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	for (size_t i = 0; i < n; i++)
		if (store_replay_forget_origin(r->s, v[i].object_id, &err) < 0) {
			store_rollback(r->s);
			return replay_fail(r, "%s", err);
		}
	if (finish_all(r, v, n) < 0) {
		store_rollback(r->s);
		return -1;
	}
	if (store_commit(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	return 0;
}

/* Put a message the hub holds into target by APPEND (create, import, and
 * a copy or move whose source the server no longer has: the hub still has
 * the bytes, so nothing is lost); with check_first (sent before a crash)
 * only when the target does not have it already. *uid_r: its UID there,
 * 0 when unknown or when the message is gone here. No store writes (no
 * transaction is held during the commands). 0 / 1 refused / -1. */
static int put_message(struct replay *r, int64_t message_id, int64_t mailbox_id, const char *target,
                       bool check_first, uint32_t *uid_r)
{
	*uid_r = 0;
	struct store_replay_msg m;
	const char *err;
	int found = store_replay_message(r->s, message_id, &m, &err);
	if (found < 0)
		return replay_fail(r, "%s", err);
	if (found == 0)
		return 0; /* gone here since: nothing to carry */
	int rc = 0;
	uint32_t uid = 0;
	if (check_first) {
		/* Sent before a crash: is it there already? */
		rc = rp_select(r, target, mailbox_id);
		if (rc == 0)
			rc = rp_find(r, mailbox_id, message_id, m.blob_id, m.size, 1, &uid);
	}
	uint32_t before = 0;
	if (rc == 0 && uid == 0 && !r->uidplus) {
		struct status_ctx sc;
		rc = rp_status(r, target, &sc);
		if (rc == 1)
			rc = 0; /* not there (deleted on the server): made again below */
		before = sc.uidnext;
	}
	if (rc == 0 && uid == 0) {
		char *data = malloc(m.size > 0 ? (size_t)m.size : 1);
		if (data == NULL) {
			rc = replay_fail(r, "out of memory");
		} else if (store_blob_read(r->s, m.blob_id, 0, data, (size_t)m.size, &err) < 0) {
			rc = replay_fail(r, "%s", err);
		} else {
			rc = rp_append(r, target, m.flags & ~(unsigned)STORE_FLAG_DELETED,
			               m.keywords, m.internaldate, data, (size_t)m.size, &uid);
			if (rc == 1 && strcasecmp(imap_client_last_code(r->c), "TRYCREATE") == 0) {
				/* The server deleted the folder the device put
				 * this into: create it again. */
				rc = rp_simple(r, "CREATE", target, NULL);
				if (rc == 0)
					rc = rp_append(
					    r, target, m.flags & ~(unsigned)STORE_FLAG_DELETED,
					    m.keywords, m.internaldate, data, (size_t)m.size, &uid);
			}
			r->st->appended++;
		}
		free(data);
		if (rc == 0 && uid == 0) {
			rc = rp_select(r, target, mailbox_id);
			if (rc == 0)
				rc = rp_find(r, mailbox_id, message_id, m.blob_id, m.size,
				             before > 0 ? before : 1, &uid);
		}
	}
	if (rc == 0)
		*uid_r = uid;
	store_replay_message_free(&m);
	return rc;
}

/* Record the server's answers to a batch in one transaction: each change
 * whose membership got a server UID (uids[i], 0 for none) is paired with
 * it, and every change of the batch is done. */
static int record_answers(struct replay *r, struct store_replay_change *v, size_t n,
                          const uint32_t *uids)
{
	const char *err;
	if (store_begin(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	if (store_replay_pair_many(r->s, v, n, uids, &err) < 0) {
		store_rollback(r->s);
		return replay_fail(r, "%s", err);
	}
	for (size_t i = 0; i < n; i++)
		if (uids[i] != 0)
			touch(r, v[i].mailbox_id, uids[i]);
	if (finish_all(r, v, n) < 0) {
		store_rollback(r->s);
		return -1;
	}
	if (store_commit(r->s, &err) < 0)
		return replay_fail(r, "%s", err);
	return 0;
}

/* create, import (one at a time). */
static int replay_append(struct replay *r, struct store_replay_change *c)
{
	const char *err;
	struct store_replay_msg m;
	int found = store_replay_message(r->s, c->object_id, &m, &err);
	if (found < 0)
		return replay_fail(r, "%s", err);
	if (found == 0)
		return commit_finish(r, c, 1); /* destroyed here before it went out */
	int64_t box = m.mailbox_id;
	bool on_server = m.uid < STORE_LOCAL_UID_BASE;
	store_replay_message_free(&m);
	if (on_server)
		return commit_finish(r, c, 1);
	char *target = NULL;
	if (server_name(r, box, &target) < 0)
		return -1;
	if (target == NULL)
		return replay_fail(r, "mailbox %lld has no server folder yet", (long long)box);
	bool check = c->sent;
	uint32_t uid = 0;
	int rc = mark_sent(r, c, 1);
	if (rc == 0)
		rc = put_message(r, c->object_id, box, target, check, &uid);
	if (rc == 0)
		rc = record_answers(r, c, 1, &uid);
	else if (rc == 1)
		rc = refused(r, c, 1);
	free(target);
	return rc;
}

/* copy, move: one source folder, one target folder. */
static int replay_copy_move(struct replay *r, struct store_replay_change *v, size_t n,
                            const char *source, bool is_move)
{
	const char *err;
	char *target = NULL;
	if (server_name(r, v[0].mailbox_id, &target) < 0)
		return -1;
	if (target == NULL)
		return replay_fail(r, "mailbox %lld has no server folder yet",
		                   (long long)v[0].mailbox_id);
	bool check = v[0].sent;
	struct uidvec todo = {0}, src = {0}, dst = {0}, present = {0};
	int rc = mark_sent(r, v, n);
	bool source_gone = false;
	if (rc == 0)
		rc = rp_select(r, source, v[0].origin_mailbox_id);
	if (rc == 1 && strcasecmp(imap_client_last_code(r->c), "NONEXISTENT") == 0) {
		/* The server deleted the source folder: the hub's bytes go to
		 * the target (below). */
		source_gone = true;
		rc = 0;
	}
	if (rc == 0 && r->sel_stale && !source_gone) {
		/* Our UIDs are of an older UIDVALIDITY: the sync re-pairs them
		 * first (and renumbers these origins). */
		rc = 2;
		goto out;
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		if (v[i].origin_uid > 0 && v[i].origin_uid < STORE_LOCAL_UID_BASE &&
		    uidvec_add(&todo, (uint32_t)v[i].origin_uid) < 0)
			rc = replay_fail(r, "out of memory");
	uidvec_sort(&todo);
	if (rc == 0 && todo.count > 0 && !source_gone) {
		/* Only what the server still has (a MOVE sent before a crash
		 * took the source away; a server expunge too). */
		rc = search_present(r, &todo, &present);
	}
	/* Sent before a crash and the source still there: a COPY may have
	 * gone out (or the COPY of a MOVE without MOVE): what the target has
	 * already is paired, not copied again. */
	struct uidvec prefound_src = {0}, prefound_dst = {0}, expunge_only = {0};
	for (size_t i = 0; rc == 0 && check && i < n; i++) {
		uint32_t ouid = (uint32_t)v[i].origin_uid;
		if (v[i].origin_uid <= 0 || v[i].origin_uid >= STORE_LOCAL_UID_BASE ||
		    !uidvec_contains(&present, ouid))
			continue;
		struct store_replay_msg m;
		int found = store_replay_message(r->s, v[i].object_id, &m, &err);
		if (found < 0) {
			rc = replay_fail(r, "%s", err);
			break;
		}
		if (found == 0)
			continue;
		uint32_t uid = 0;
		rc = rp_select(r, target, v[i].mailbox_id);
		if (rc == 0)
			rc =
			    rp_find(r, v[i].mailbox_id, v[i].object_id, m.blob_id, m.size, 1, &uid);
		store_replay_message_free(&m);
		if (rc == 0 && uid != 0 &&
		    (uidvec_add(&prefound_src, ouid) < 0 || uidvec_add(&prefound_dst, uid) < 0 ||
		     uidvec_add(&expunge_only, ouid) < 0))
			rc = replay_fail(r, "out of memory");
	}
	if (rc == 0 && expunge_only.count > 0) {
		/* Take them out of the copy set. */
		size_t k = 0;
		uidvec_sort(&expunge_only);
		for (size_t i = 0; i < present.count; i++)
			if (!uidvec_contains(&expunge_only, present.uids[i]))
				present.uids[k++] = present.uids[i];
		present.count = k;
		rc = rp_select(r, source, v[0].origin_mailbox_id);
		if (rc == 0 && is_move) {
			rc = rp_store(r, expunge_only.uids, expunge_only.count, "+FLAGS.SILENT",
			              "(\\Deleted)", 0, NULL);
			if (rc == 0)
				rc = rp_expunge(r, expunge_only.uids, expunge_only.count);
		}
	}
	for (size_t k = 0; rc == 0 && k < prefound_src.count; k++)
		if (uidvec_add(&src, prefound_src.uids[k]) < 0 ||
		    uidvec_add(&dst, prefound_dst.uids[k]) < 0)
			rc = replay_fail(r, "out of memory");
	uidvec_free(&prefound_src);
	uidvec_free(&prefound_dst);
	uidvec_free(&expunge_only);
	if (rc == 0 && present.count > 0 && strcmp(r->selected, source) != 0)
		rc = rp_select(r, source, v[0].origin_mailbox_id);
	uint32_t before = 0;
	if (rc == 0 && present.count > 0 && !r->uidplus) {
		struct status_ctx sc;
		rc = rp_status(r, target, &sc);
		if (rc == 1)
			rc = 0; /* not there (deleted on the server): made again below */
		before = sc.uidnext;
	}
	if (rc == 0 && present.count > 0) {
		const char *cmd = is_move && r->move ? "UID MOVE" : "UID COPY";
		rc = rp_copy(r, cmd, present.uids, present.count, target, &src, &dst);
		if (rc == 1 && strcasecmp(imap_client_last_code(r->c), "TRYCREATE") == 0) {
			rc = rp_simple(r, "CREATE", target, NULL);
			if (rc == 0)
				rc = rp_select(r, source, v[0].origin_mailbox_id);
			if (rc == 0)
				rc = rp_copy(r, cmd, present.uids, present.count, target, &src,
				             &dst);
		}
		if (rc == 0 && is_move && !r->move) {
			rc = rp_store(r, present.uids, present.count, "+FLAGS.SILENT",
			              "(\\Deleted)", 0, NULL);
			if (rc == 0)
				rc = rp_expunge(r, present.uids, present.count);
		}
	}
	if (rc != 0)
		goto out;
	/* Each change's new UID in the target: from COPYUID, else found by
	 * content, else (the server lacks the source) appended from the
	 * hub's bytes. Then all of it recorded in one transaction. */
	uint32_t *nuids = calloc(n, sizeof(*nuids));
	if (nuids == NULL) {
		rc = replay_fail(r, "out of memory");
		goto out;
	}
	size_t unpaired = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t ouid = v[i].origin_uid > 0 && v[i].origin_uid < STORE_LOCAL_UID_BASE
		                    ? (uint32_t)v[i].origin_uid
		                    : 0;
		for (size_t k = 0; ouid != 0 && k < src.count; k++)
			if (src.uids[k] == ouid)
				nuids[i] = dst.uids[k];
		if (nuids[i] == 0 && ouid != 0 && uidvec_contains(&present, ouid))
			unpaired++;
	}
	if (unpaired > 1)
		rc = match_arrivals(r, target, v[0].mailbox_id, before, v, n, &present, nuids);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		uint32_t ouid = v[i].origin_uid > 0 && v[i].origin_uid < STORE_LOCAL_UID_BASE
		                    ? (uint32_t)v[i].origin_uid
		                    : 0;
		if (nuids[i] != 0)
			continue;
		bool was_present = ouid != 0 && uidvec_contains(&present, ouid);
		struct store_replay_msg m;
		int found = store_replay_message(r->s, v[i].object_id, &m, &err);
		if (found < 0) {
			rc = replay_fail(r, "%s", err);
			break;
		}
		if (found == 0)
			continue; /* gone here since */
		bool local = m.uid >= STORE_LOCAL_UID_BASE && m.mailbox_id == v[i].mailbox_id;
		int64_t blob = m.blob_id;
		uint64_t size = m.size;
		store_replay_message_free(&m);
		if (!local)
			continue; /* moved on here since: a later change carries it */
		if (was_present || check) {
			/* Copied without COPYUID, or sent before a crash: find it. */
			rc = rp_select(r, target, v[i].mailbox_id);
			if (rc == 0)
				rc = rp_find(r, v[i].mailbox_id, v[i].object_id, blob, size,
				             was_present && before > 0 ? before : 1, &nuids[i]);
			if (rc != 0 || nuids[i] != 0)
				continue;
		}
		/* The server does not have the source (expunged there, or
		 * never had it): the hub's bytes go to the target. */
		rc = put_message(r, v[i].object_id, v[i].mailbox_id, target, false, &nuids[i]);
	}
	if (rc == 0)
		rc = record_answers(r, v, n, nuids);
	free(nuids);
out:
	if (rc == 1)
		rc = refused(r, v, n);
	uidvec_free(&todo);
	uidvec_free(&src);
	uidvec_free(&dst);
	uidvec_free(&present);
	free(target);
	return rc;
}

struct list_ctx {
	char **names;
	size_t count, cap;
	bool oom;
};

static int list_untagged(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct list_ctx *lc = ctx;
	(void)error_r;
	if (resp->status != IMAP_STATUS_NONE || !imap_arg_is_atom(resp->args, "LIST"))
		return 0;
	const struct imap_arg *attrs = resp->args->next;
	const struct imap_arg *delim = attrs != NULL ? attrs->next : NULL;
	const char *name = delim != NULL ? imap_arg_string(delim->next) : NULL;
	if (attrs == NULL || attrs->type != IMAP_ARG_LIST || name == NULL)
		return 0;
	for (const struct imap_arg *a = attrs->list; a != NULL; a = a->next)
		if (imap_arg_is_atom(a, "\\Noselect") || imap_arg_is_atom(a, "\\NonExistent"))
			return 0;
	if (lc->count == lc->cap) {
		size_t cap = lc->cap == 0 ? 32 : lc->cap * 2;
		void *nn = realloc(lc->names, cap * sizeof(*lc->names));
		if (nn == NULL) {
			lc->oom = true;
			return 0;
		}
		lc->names = nn;
		lc->cap = cap;
	}
	if ((lc->names[lc->count] = strdup(name)) == NULL)
		lc->oom = true;
	else
		lc->count++;
	return 0;
}

/* The folder the server renamed mailbox_id's folder to: the one selectable
 * folder no mailbox of the account knows whose UIDVALIDITY is the
 * mailbox's (RFC 9051: a rename keeps it). *name_r malloc()ed, NULL when
 * there is not exactly one. 0 / -1. */
static int find_renamed(struct replay *r, int64_t mailbox_id, char **name_r)
{
	const char *err;
	*name_r = NULL;
	uint32_t validity = 0, next;
	uint64_t hms;
	if (store_replay_mailbox_state(r->s, mailbox_id, &validity, &next, &hms, &err) < 0)
		return replay_fail(r, "%s", err);
	if (validity == 0)
		return 0;
	struct store_mailbox *boxes = NULL;
	size_t nboxes = 0;
	if (store_mailboxes(r->s, r->account_id, &boxes, &nboxes, &err) < 0)
		return replay_fail(r, "%s", err);
	char **known = calloc(nboxes + 1, sizeof(*known));
	int rc = known == NULL ? replay_fail(r, "out of memory") : 0;
	for (size_t i = 0; rc == 0 && i < nboxes; i++)
		if (server_name(r, boxes[i].id, &known[i]) < 0)
			rc = -1;
	struct list_ctx lc = {NULL, 0, 0, false};
	if (rc == 0) {
		struct buf *b = imap_client_cmd(r->c, "LIST", &err);
		if (b == NULL || imap_cmd_raw(b, "\"\" \"*\"", &err) < 0)
			rc = replay_fail(r, "LIST: %s", err);
		else
			rc = cmd_result(r, imap_client_run(r->c, list_untagged, &lc, &err), &err);
		if (rc == 0 && lc.oom)
			rc = replay_fail(r, "out of memory");
	}
	char *found = NULL;
	unsigned matches = 0;
	for (size_t i = 0; rc == 0 && i < lc.count; i++) {
		bool is_known = false;
		for (size_t k = 0; k < nboxes && !is_known; k++)
			is_known = known[k] != NULL && strcmp(known[k], lc.names[i]) == 0;
		if (is_known)
			continue;
		struct status_ctx sc;
		rc = rp_status(r, lc.names[i], &sc);
		if (rc == 1) {
			rc = 0;
			continue;
		}
		if (rc == 0 && sc.uidvalidity == validity) {
			matches++;
			found = lc.names[i];
		}
	}
	if (rc == 0 && matches == 1 && (*name_r = strdup(found)) == NULL)
		rc = replay_fail(r, "out of memory");
	for (size_t i = 0; i < lc.count; i++)
		free(lc.names[i]);
	free(lc.names);
	for (size_t i = 0; known != NULL && i < nboxes; i++)
		free(known[i]);
	free(known);
	store_mailboxes_free(&boxes, nboxes);
	return rc < 0 ? -1 : 0;
}

static int replay_mailbox_named(struct replay *r, struct store_replay_change *c, const char *wire);

/* mailbox-create/-rename/-destroy/-props (one at a time). */
static int replay_mailbox(struct replay *r, struct store_replay_change *c)
{
	const char *err;
	struct buf wire;
	buf_init(&wire, 64 * 1024);
	if (strcmp(c->kind, "mailbox-create") == 0 || strcmp(c->kind, "mailbox-rename") == 0) {
		/* Mailbox/set records the name as the server spells it (modified
		 * UTF-7); a change queued by an older hub holds the device's UTF-8,
		 * which is never valid modified UTF-7 unless it is plain ASCII
		 * without "&" (the same either way). */
		struct buf probe;
		buf_init(&probe, 64 * 1024);
		bool spelled = c->detail != NULL && imap_utf7_decode(c->detail, &probe, &err) == 0;
		buf_free(&probe);
		if (spelled && buf_append(&wire, c->detail, strlen(c->detail)) < 0) {
			buf_free(&wire);
			return fail_batch(r, c, 1, "the new name is too long");
		}
		if (c->detail != NULL && !spelled && imap_utf7_encode(c->detail, &wire, &err) < 0) {
			buf_free(&wire);
			return fail_batch(r, c, 1, "the new name is not valid UTF-8");
		}
	}
	int rc = replay_mailbox_named(r, c, c->detail != NULL ? buf_str(&wire) : NULL);
	buf_free(&wire);
	return rc;
}

/* replay_mailbox with the new name of a create or rename as the server
 * spells it (wire). */
static int replay_mailbox_named(struct replay *r, struct store_replay_change *c, const char *wire)
{
	const char *err;
	char *name = NULL;
	int rc = 0;
	if (strcmp(c->kind, "mailbox-create") == 0) {
		const char *want = wire;
		if (want == NULL)
			return commit_finish(r, c, 1);
		rc = rp_simple(r, "CREATE", want, NULL);
		bool created = rc == 0;
		if (rc == 1 && strcasecmp(imap_client_last_code(r->c), "ALREADYEXISTS") == 0)
			rc = 0; /* made on both sides: the hub's mailbox is the server's */
		struct status_ctx sc = {0, 0, 0};
		if (rc == 0 && created)
			rc = rp_status(r, want, &sc);
		if (rc == 0) {
			if (store_begin(r->s, &err) < 0)
				return replay_fail(r, "%s", err);
			if ((created && sc.uidvalidity != 0 &&
			     store_replay_mailbox_created(r->s, c->object_id, sc.uidvalidity,
			                                  sc.uidnext, &err) < 0) ||
			    store_replay_mailbox_renamed(r->s, c->object_id, want, &err) < 0 ||
			    store_replay_mailbox_spelled(r->s, c->object_id, c->detail, want,
			                                 &err) < 0) {
				store_rollback(r->s);
				return replay_fail(r, "%s", err);
			}
			if (finish_all(r, c, 1) < 0) {
				store_rollback(r->s);
				return -1;
			}
			if (store_commit(r->s, &err) < 0)
				return replay_fail(r, "%s", err);
		}
	} else {
		const char *from = c->origin_name;
		if (from == NULL) {
			if (server_name(r, c->object_id, &name) < 0)
				return -1;
			from = name;
		}
		if (from == NULL) {
			rc = 0; /* never on the server */
		} else if (strcmp(c->kind, "mailbox-rename") == 0) {
			const char *to = wire;
			bool gone = false;
			if (to != NULL && strcmp(from, to) != 0) {
				rc = rp_simple(r, "RENAME", from, to);
				if (rc == 1 &&
				    strcasecmp(imap_client_last_code(r->c), "NONEXISTENT") == 0) {
					/* Renamed on the server too: the device's rename
					 * is applied from the server's current name. */
					char *now = NULL;
					if (find_renamed(r, c->object_id, &now) < 0) {
						free(name);
						return -1;
					}
					if (now != NULL) {
						rc = strcmp(now, to) == 0
						         ? 0
						         : rp_simple(r, "RENAME", now, to);
						free(now);
					} else {
						rc = 1;
						gone = true;
					}
				}
				if (rc == 1 && gone && c->attempts + 1 < REPLAY_MAX_ATTEMPTS) {
					/* Renamed or gone on the server: the sync finds out
					 * first; we try again from its name next time. */
					if (store_begin(r->s, &err) < 0 ||
					    store_replay_mark_sent(r->s, c, 1, &err) < 0 ||
					    store_commit(r->s, &err) < 0)
						rc = replay_fail(r, "%s", err);
					else
						rc = 2;
				}
			}
			if (rc == 0) {
				if (store_begin(r->s, &err) < 0 ||
				    (to != NULL &&
				     (store_replay_mailbox_renamed(r->s, c->object_id, to, &err) <
				          0 ||
				      store_replay_mailbox_spelled(r->s, c->object_id, c->detail,
				                                   to, &err) < 0)) ||
				    finish_all(r, c, 1) < 0 || store_commit(r->s, &err) < 0) {
					store_rollback(r->s);
					rc = replay_fail(r, "%s", err);
				}
				free(name);
				return rc;
			}
		} else if (strcmp(c->kind, "mailbox-destroy") == 0) {
			struct status_ctx sc;
			rc = rp_status(r, from, &sc);
			if (rc == 1 && strcasecmp(imap_client_last_code(r->c), "NONEXISTENT") == 0)
				rc = 0, sc.messages = 0; /* gone there too */
			else if (rc == 0 && sc.messages > 0) {
				/* New mail arrived there: the folder is not deleted;
				 * it comes back on the device with that mail. */
				snprintf(
				    r->error, sizeof(r->st->error),
				    "the folder is not empty on the server (%u messages arrived "
				    "there): not deleted",
				    sc.messages);
				free(name);
				return fail_batch(r, c, 1, r->error);
			} else if (rc == 0) {
				rc = rp_simple(r, "DELETE", from, NULL);
				if (rc == 1 &&
				    strcasecmp(imap_client_last_code(r->c), "NONEXISTENT") == 0)
					rc = 0;
			}
		} else if (strcmp(c->kind, "mailbox-props") == 0) {
			const char *p = c->detail != NULL ? strstr(c->detail, "subscribed ") : NULL;
			if (p != NULL && (p[11] == '0' || p[11] == '1'))
				rc = rp_simple(r, p[11] == '1' ? "SUBSCRIBE" : "UNSUBSCRIBE", from,
				               NULL);
		}
		if (rc == 0)
			rc = commit_finish(r, c, 1);
	}
	free(name);
	if (rc == 1)
		rc = refused(r, c, 1);
	return rc;
}

/* --- the run ------------------------------------------------------------- */

/* Can change b join the batch that starts at a? (Whether b's message is in
 * the batch already is the caller's check.) */
static bool same_batch(const struct store_replay_change *a, const struct store_replay_change *b)
{
	if (strcmp(a->kind, b->kind) != 0 || a->sent != b->sent ||
	    a->origin_mailbox_id != b->origin_mailbox_id)
		return false;
	bool expunge_like = strcmp(a->kind, "expunge") == 0 || strcmp(a->kind, "destroy") == 0;
	if (!expunge_like && strcmp(a->kind, "keywords") != 0 && strcmp(a->kind, "move") != 0 &&
	    strcmp(a->kind, "copy") != 0)
		return false;
	if ((strcmp(a->kind, "move") == 0 || strcmp(a->kind, "copy") == 0) &&
	    a->mailbox_id != b->mailbox_id)
		return false;
	return true;
}

/* A move not yet sent whose message moves again later, with nothing else
 * done to it in between: the later move carries it. */
static bool superseded_move(const struct store_replay_change *v, size_t n, size_t i)
{
	if (strcmp(v[i].kind, "move") != 0 || v[i].sent)
		return false;
	for (size_t j = i + 1; j < n; j++) {
		if (v[j].object_id != v[i].object_id)
			continue;
		return strcmp(v[j].kind, "move") == 0 && !v[j].sent &&
		       v[j].origin_mailbox_id == v[i].origin_mailbox_id &&
		       v[j].origin_uid == v[i].origin_uid;
	}
	return false;
}

static int replay_batch(struct replay *r, struct store_replay_change *v, size_t n)
{
	struct store_replay_change *c = &v[0];
	if (c->sent && c->attempts >= REPLAY_MAX_ATTEMPTS) {
		/* Sent again and again without an answer we could record (a
		 * session that breaks on it): no storm, the user is told. */
		char why[128];
		snprintf(why, sizeof(why), "no answer from the server after %u attempts",
		         c->attempts);
		return fail_batch(r, v, n, why);
	}
	if (!is_msg_kind(c->kind))
		return replay_mailbox(r, c);
	if (strcmp(c->kind, "create") == 0 || strcmp(c->kind, "import") == 0)
		return replay_append(r, c);
	bool copy_like = strcmp(c->kind, "move") == 0 || strcmp(c->kind, "copy") == 0;
	if (c->origin_uid == 0 || c->origin_mailbox_id == 0) {
		if (!copy_like)
			return commit_finish(r, v, n); /* not on the server: nothing to do */
		/* A copy or move of a message the server does not have. */
		char *target = NULL;
		if (server_name(r, c->mailbox_id, &target) < 0)
			return -1;
		if (target == NULL)
			return replay_fail(r, "mailbox %lld has no server folder yet",
			                   (long long)c->mailbox_id);
		uint32_t *nuids = calloc(n, sizeof(*nuids));
		int rc = nuids == NULL ? replay_fail(r, "out of memory") : mark_sent(r, v, n);
		for (size_t i = 0; rc == 0 && i < n; i++)
			rc = put_message(r, v[i].object_id, v[i].mailbox_id, target, v[i].sent,
			                 &nuids[i]);
		if (rc == 0)
			rc = record_answers(r, v, n, nuids);
		else if (rc == 1)
			rc = refused(r, v, n);
		free(nuids);
		free(target);
		return rc;
	}
	if (copy_like && c->mailbox_id == c->origin_mailbox_id && strcmp(c->kind, "move") == 0) {
		/* Moved back where the server has it: the row is that message
		 * again (same UID), nothing to send. */
		uint32_t *same = calloc(n, sizeof(*same));
		if (same == NULL)
			return replay_fail(r, "out of memory");
		for (size_t i = 0; i < n; i++)
			same[i] =
			    v[i].origin_uid < STORE_LOCAL_UID_BASE ? (uint32_t)v[i].origin_uid : 0;
		int rc = record_answers(r, v, n, same);
		free(same);
		return rc;
	}
	char *folder = NULL;
	if (server_name(r, c->origin_mailbox_id, &folder) < 0)
		return -1;
	if (folder == NULL)
		return commit_finish(r, v, n);
	int rc;
	if (copy_like) {
		rc = replay_copy_move(r, v, n, folder, strcmp(c->kind, "move") == 0);
	} else {
		rc = rp_select(r, folder, c->origin_mailbox_id);
		if (rc == 0 && r->sel_stale)
			rc = 2;
		else if (rc == 0 && strcmp(c->kind, "keywords") == 0)
			rc = replay_keywords(r, v, n);
		else if (rc == 0)
			rc = replay_expunge(r, v, n);
		else if (rc == 1 && strcasecmp(imap_client_last_code(r->c), "NONEXISTENT") == 0)
			rc = commit_finish(r, v, n); /* the folder is gone: so is the message */
		else if (rc == 1)
			rc = refused(r, v, n);
	}
	free(folder);
	return rc;
}

int sync_replay_account(struct store *s, struct imap_client *c, int64_t account_id,
                        const struct sync_replay_options *opt, struct sync_replay_stats *st,
                        const char **error_r)
{
	memset(st, 0, sizeof(*st));
	double t0 = clock_mono();
	struct idset touched_set = {NULL, 0, 0};
	struct replay r = {.s = s,
	                   .c = c,
	                   .account_id = account_id,
	                   .st = st,
	                   .error = st->error,
	                   .touched = &touched_set};
	r.max_batch = opt != NULL && opt->max_batch > 0 ? opt->max_batch : REPLAY_BATCH_DEFAULT;
	r.uidplus = imap_client_has_cap(c, "UIDPLUS");
	r.move = imap_client_has_cap(c, "MOVE");
	const char *err;
	r.tier = SYNC_TIER_PLAIN;
	if (imap_client_has_cap(c, "QRESYNC"))
		r.tier = SYNC_TIER_QRESYNC;
	else if (imap_client_has_cap(c, "CONDSTORE"))
		r.tier = SYNC_TIER_CONDSTORE;
	static const char *const tier_names[] = {"plain", "CONDSTORE", "QRESYNC"};
	st->tier = tier_names[r.tier];

	if (store_replay_schema(s, &err) < 0) {
		replay_fail(&r, "%s", err);
		*error_r = st->error;
		return -1;
	}
	struct store_replay_change *v = NULL;
	size_t n = 0;
	if (store_replay_pending(s, account_id, &v, &n, &err) < 0) {
		replay_fail(&r, "%s", err);
		*error_r = st->error;
		return -1;
	}
	int ret = 0;
	struct idset objs = {NULL, 0, 0}, ouids = {NULL, 0, 0};
	/* v[k] for k < fresh are as the store has them now: a batch may
	 * rewrite the origins of later changes, so after each batch the
	 * rest is read again, a window at a time. */
	size_t i = 0, fresh = n, window = 64; /* all read just now */
	while (i < n) {
		if (i >= fresh) {
			fresh = i + window < n ? i + window : n;
			if (store_replay_refresh(s, &v[i], fresh - i, &err) < 0) {
				ret = replay_fail(&r, "%s", err);
				break;
			}
		}
		if (superseded_move(v, n, i)) {
			/* Moved on again before it went out: the later move goes
			 * from where the server has it (its origin) straight to
			 * the last place. */
			if (commit_finish(&r, &v[i], 1) < 0) {
				ret = -1;
				break;
			}
			i++;
			continue;
		}
		/* One object twice: the second waits for the first. Objects
		 * (memberships) and server UIDs of the batch. */
		idset_clear(&objs);
		idset_clear(&ouids);
		if (idset_add(&objs, v[i].object_id) < 0 ||
		    (v[i].origin_uid > 0 && idset_add(&ouids, v[i].origin_uid) < 0)) {
			ret = replay_fail(&r, "out of memory");
			break;
		}
		size_t j = i + 1;
		while (j < n && j - i < r.max_batch) {
			if (j >= fresh) {
				fresh = j + window < n ? j + window : n;
				if (store_replay_refresh(s, &v[j], fresh - j, &err) < 0) {
					ret = replay_fail(&r, "%s", err);
					break;
				}
			}
			if (!same_batch(&v[i], &v[j]) || idset_has(&objs, v[j].object_id) ||
			    (v[j].origin_uid > 0 && idset_has(&ouids, v[j].origin_uid)))
				break;
			if (idset_add(&objs, v[j].object_id) < 0 ||
			    (v[j].origin_uid > 0 && idset_add(&ouids, v[j].origin_uid) < 0)) {
				ret = replay_fail(&r, "out of memory");
				break;
			}
			j++;
		}
		if (ret < 0)
			break;
		int rc = replay_batch(&r, &v[i], j - i);
		st->batches++;
		fresh = j;
		if (j - i + 1 > window)
			window = j - i + 1;
		if (rc < 0) {
			ret = -1;
			break;
		}
		if (rc == 2) {
			/* Wait for the sync (a UIDVALIDITY change, a server
			 * rename): the rest keeps its order for the next run. */
			st->deferred = (unsigned)(n - i);
			break;
		}
		i = j;
	}
	if (r.unnotified > 0) {
		const char *nerr;
		if (store_begin(s, &nerr) < 0 ||
		    store_replay_notice_more(s, account_id, r.unnotified, &nerr) < 0 ||
		    store_commit(s, &nerr) < 0) {
			store_rollback(s);
			if (ret == 0)
				ret = replay_fail(&r, "%s", nerr);
		}
	}
	store_replay_changes_free(&v, n);
	free(objs.slots);
	free(ouids.slots);
	free(touched_set.slots);
	st->seconds = clock_mono() - t0;
	if (ret < 0)
		*error_r = st->error;
	return ret;
}

int sync_replay_account_key(struct store *s, const char *account_key, struct imap_client *c,
                            const struct sync_replay_options *opt, struct sync_replay_stats *st,
                            const char **error_r)
{
	int64_t account_id;
	const char *err;
	memset(st, 0, sizeof(*st));
	if (store_begin(s, &err) < 0 ||
	    store_account_ensure(s, account_key, &account_id, &err) < 0 ||
	    store_commit(s, &err) < 0) {
		store_rollback(s);
		snprintf(st->error, sizeof(st->error), "%s", err);
		*error_r = st->error;
		return -1;
	}
	return sync_replay_account(s, c, account_id, opt, st, error_r);
}
