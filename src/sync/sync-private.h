#ifndef MK_SYNC_PRIVATE_H
#define MK_SYNC_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sync.h"
#include "../imap/imap-parser.h"
#include "../lib/buf.h"
#include "../lib/clock.h"
#include "../store/store-provider.h"

/* A growable, sorted-on-demand vector of UIDs (optionally with sizes). */
struct uidvec {
	uint32_t *uids;
	uint64_t *sizes; /* NULL unless sizes were added */
	size_t count, cap;
};

int uidvec_add(struct uidvec *v, uint32_t uid);
int uidvec_add_sized(struct uidvec *v, uint32_t uid, uint64_t size);
void uidvec_sort(struct uidvec *v);
/* Binary search in a sorted vector. */
bool uidvec_contains(const struct uidvec *v, uint32_t uid);
void uidvec_free(struct uidvec *v);
/* Parse an IMAP sequence set of UIDs ("1:3,7,9:10") into v; '*' refused.
 * At most max_uids UIDs. Returns 0 / -1. */
int uidvec_parse_set(struct uidvec *v, const char *set, size_t max_uids);
/* Append uids[from..to) as a compact sequence set ("1:3,7") to b. */
int uidset_format(struct buf *b, const uint32_t *uids, size_t from, size_t to);

/* FLAGS list -> system flag mask + sorted, de-duplicated keyword string
 * (written into kw, which is reset first). Unknown system flags and \Recent
 * are dropped. Returns 0 / -1 (not a list, too many keywords). */
int flags_parse(const struct imap_arg *list, unsigned *flags_r, struct buf *kw);

/* INTERNALDATE ("17-Jul-1996 02:44:25 -0700") -> seconds since the epoch. */
int internaldate_parse(const char *s, int64_t *time_r);

/* Special-use attribute of a LIST response -> role name ("Sent") or NULL. */
const char *role_from_attribute(const char *attr);

/* A folder as the server listed it. */
struct remote_folder {
	char *name;
	char delim;
	const char *role;
	bool selectable;
	bool parent_only; /* not listed: made up as the parent of a listed folder */
	bool have_status, have_messages, have_unseen;
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t highestmodseq;
	int64_t mailbox_id; /* local mailbox it maps to, 0 before reconciling */
};

enum sync_tier {
	SYNC_TIER_PLAIN,
	SYNC_TIER_CONDSTORE,
	SYNC_TIER_QRESYNC,
};

/* State of one account sync; the selected folder's state is in sel. */
struct sync_ctx {
	struct store *store;
	struct imap_client *client;
	const struct sync_options *opts;
	struct sync_stats *stats;
	int64_t account_id;
	enum sync_tier tier;
	bool esearch;
	char error[512];

	/* The folder being synced. */
	struct {
		const struct remote_folder *folder;
		int64_t mailbox_id;
		/* What the store had at the start. */
		uint32_t local_uidvalidity, local_uidnext;
		uint64_t local_modseq;
		/* What SELECT said. */
		uint32_t exists, uidvalidity, uidnext;
		uint64_t highestmodseq;
		bool nomodseq;
		/* Plain tier: the folder was fully scanned at the last sync
		 * and STATUS (MESSAGES, UNSEEN) then and now is given: if only
		 * new messages explain the difference, the FLAGS scan of the
		 * known ones is skipped (full_scanned says whether it ran). */
		bool plain_hint, full_scanned;
		uint32_t hint_messages, hint_unseen, status_messages, status_unseen;
		uint32_t fresh_unseen;
		/* Progress of new-message fetching: below this UID every
		 * message of the fetch list is stored in the open transaction.
		 * sync_checkpoint() writes it (with uidvalidity and
		 * local_modseq) in the transaction that holds those messages. */
		uint32_t stored_uidnext;
		/* The folder's state as last committed (what the store holds
		 * if the open transaction is lost): a failed checkpoint goes
		 * back to it. */
		struct {
			uint32_t uidvalidity, uidnext;
			uint64_t modseq;
		} committed;
	} sel;

	/* A store write failed in the open transaction: it may be half done
	 * (or rolled back by SQLite already, as on SQLITE_FULL), so it must
	 * not be committed; the next checkpoint rolls it back instead. */
	bool store_broken;

	/* The messages being fetched (ascending UIDs), which of them arrived,
	 * and the first that has not: responses to pipelined FETCH commands
	 * may interleave (Dovecot runs them in parallel), so arrival order is
	 * not UID order. */
	const struct uidvec *fetch_list;
	bool *fetch_done;
	size_t fetch_low;

	/* Streaming of message bodies. */
	struct store_blob_writer *writer;
	int64_t streamed_blob;
	bool have_streamed_blob;
	struct buf keywords;

	/* Commit pacing. */
	uint64_t bytes_since_commit;
	unsigned msgs_since_commit;

	struct sync_progress progress;
	double last_progress;

	/* Gmail (X-GM-EXT-1): new messages whose X-GM-MSGID the account
	 * holds become memberships of that Email without a download. */
	bool gmail;
	/* Provider state of the account (budget, progress), written with
	 * every checkpoint. budget: bytes a day in force (0 = unlimited);
	 * issued: bytes asked for in this run's body FETCHes. */
	struct store_provider_state prov;
	uint64_t budget, issued, dl_start;
	/* The budget is spent: the fetch stopped cleanly; the rest follows
	 * on a later day. */
	bool paced;
};

/* sync-folder.c: sync the folder (must exist locally; transaction open). */
int sync_folder(struct sync_ctx *ctx, const struct remote_folder *folder);
/* Set ctx->error and return -1. */
int sync_fail(struct sync_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sync-folder.c: a local folder gone from the server and the server
 * folder f with its UIDVALIDITY (in the open transaction; selects f):
 * 1 when the content confirms f is the folder renamed (the server's
 * messages below our UIDNEXT are ours, same UIDs and sizes, a sample with
 * the same headers), 0 when not, -1 on an error that ends the sync. */
int sync_rename_confirmed(struct sync_ctx *ctx, const struct store_mailbox *box,
                          const struct remote_folder *f);
/* Set ctx->error from a store error and mark the transaction broken. */
int sync_store_failed(struct sync_ctx *ctx, const char *err);
/* Save the selected folder's state in the open transaction, commit it and
 * open the next. If a store write failed since the last checkpoint, or the
 * commit fails (disk full), the transaction is rolled back instead and the
 * folder's state goes back to what was committed last; returns -1 then
 * (ctx->error set; a new transaction is open unless that failed too). */
int sync_checkpoint(struct sync_ctx *ctx);

#endif
