#ifndef MK_SYNC_REPLAY_PRIVATE_H
#define MK_SYNC_REPLAY_PRIVATE_H

/*
 * Shared by the two halves of the replay: sync-replay.c (the run, the kinds,
 * the store side of each answer) and sync-replay-imap.c (the commands on the
 * server and finding a message there by content). Error convention of the
 * rp_* commands: 0 OK, 1 refused by the server (NO/BAD; r->error says why,
 * imap_client_last_code() gives the code), -1 the run stops (a broken
 * session or a store error; r->error says why).
 */

#include "sync-private.h"
#include "../imap/imap-uidset.h"
#include "../store/store-replay.h"

#define REPLAY_BATCH_DEFAULT 1000
#define REPLAY_SET_MAX 8000   /* bytes of a UID set in one command */
#define REPLAY_MAX_ATTEMPTS 5 /* runs a change may be retried before it fails */
#define REPLAY_NOTICES 3      /* notices of failed changes per run; then one for the rest */

/* A set of positive ids (open addressing; 0 marks a free slot). */
struct idset {
	int64_t *slots;
	size_t cap, count;
};

struct replay {
	struct store *s;
	struct imap_client *c;
	int64_t account_id;
	enum sync_tier tier;
	bool uidplus, move;
	unsigned max_batch;
	struct sync_replay_stats *st;
	/* The folder selected on the server, "" when none. */
	char selected[1024];
	int64_t selected_box;
	uint32_t sel_uidvalidity, sel_uidnext;
	bool sel_stale; /* its UIDVALIDITY is not the one our UIDs belong to */
	char *error;    /* st->error */
	/* Messages this run stored flags on or put into a folder: their
	 * modseq on the server is ours, not a concurrent change. Keys
	 * mailbox_id << 32 | uid. */
	struct idset *touched;
	unsigned notices, unnotified; /* failures told / not told one by one */
};

struct status_ctx {
	uint32_t messages, uidnext, uidvalidity;
};

bool idset_has(const struct idset *set, int64_t id);
/* 0, or -1 when out of memory. */
int idset_add(struct idset *set, int64_t id);
void idset_clear(struct idset *set);

/* Set r->error; returns -1. */
int replay_fail(struct replay *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Remember that this run changed (mailbox, uid) on the server. */
void touch(struct replay *r, int64_t mailbox_id, uint32_t uid);
bool touched(const struct replay *r, int64_t mailbox_id, uint32_t uid);
/* Was the last refusal temporary (RFC 5530 codes)? */
bool refusal_temporary(struct replay *r);
/* A client call's result as 0 / 1 / -1 (r->error set from *errp). */
int cmd_result(struct replay *r, int rc, const char *const *errp);

/* SELECT name unless selected (mailbox_id: the store's mailbox, whose
 * UIDVALIDITY is checked into r->sel_stale; 0 for none). */
int rp_select(struct replay *r, const char *name, int64_t mailbox_id);
/* CREATE, RENAME (name2: the new name), DELETE, SUBSCRIBE, UNSUBSCRIBE. */
int rp_simple(struct replay *r, const char *cmd, const char *name, const char *name2);
int rp_status(struct replay *r, const char *name, struct status_ctx *sc);
/* UID SEARCH criteria, or HEADER criteria value; UIDs added to v. */
int rp_search(struct replay *r, const char *criteria, const char *value, struct uidvec *v);
/* UID STORE (UNCHANGEDSINCE when not 0; [MODIFIED] UIDs into modified). */
int rp_store(struct replay *r, const uint32_t *uids, size_t n, const char *op, const char *flags,
             uint64_t unchangedsince, struct uidvec *modified);
/* "UID COPY" or "UID MOVE"; COPYUID pairs added to src/dst. */
int rp_copy(struct replay *r, const char *cmd, const uint32_t *uids, size_t n, const char *target,
            struct uidvec *src, struct uidvec *dst);
/* APPEND; *uid_r from APPENDUID, 0 without. */
int rp_append(struct replay *r, const char *target, unsigned flags, const char *keywords,
              int64_t date, const void *data, size_t len, uint32_t *uid_r);
/* Expunge exactly uids (which carry \Deleted) in the selected folder. */
int rp_expunge(struct replay *r, const uint32_t *uids, size_t n);
/* Find stored bytes in the selected folder among UIDs >= min_uid no other
 * row of mailbox_id holds; *uid_r 0 when not there. 0 / -1. */
int rp_find(struct replay *r, int64_t mailbox_id, int64_t message_id, int64_t blob_id,
            uint64_t size, uint32_t min_uid, uint32_t *uid_r);
/* Without COPYUID: pair the copies of a batch by one header FETCH of the
 * target's UIDs >= from. 0 / -1. */
int match_arrivals(struct replay *r, const char *target, int64_t target_box, uint32_t from,
                   struct store_replay_change *v, size_t n, const struct uidvec *present,
                   uint32_t *nuids);
/* Which of todo (sorted) the selected folder has. */
int search_present(struct replay *r, const struct uidvec *todo, struct uidvec *present);

#endif
