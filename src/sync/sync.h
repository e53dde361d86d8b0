#ifndef MK_SYNC_H
#define MK_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "../imap/imap-client.h"
#include "../store/store.h"

/*
 * Server-to-hub sync of one external IMAP account into the hosted store.
 *
 * Per folder it uses the best tier the server offers:
 *   QRESYNC   SELECT (QRESYNC (uidvalidity modseq)): VANISHED + changed FETCHes
 *   CONDSTORE UID FETCH ... (FLAGS) (CHANGEDSINCE modseq), expunges by UID SEARCH
 *             only when the message count says something went away
 *   plain     UID FETCH 1:n (FLAGS) scan
 * Folders whose LIST-STATUS/STATUS (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) did not
 * change since the last sync are not even selected, so a sync with nothing
 * changed costs one round trip whatever the mailbox size.
 *
 * New messages are fetched pipelined and streamed into the store; commits
 * are durable and frequent, so a broken connection loses at most the message
 * in flight and the next sync resumes after the last stored UID.
 */

/* Gmail's daily IMAP download limit is about 2.5 GB; stay a little under. */
#define SYNC_GMAIL_DAILY_BYTES (2400ull * 1000 * 1000)

/* Plain tier: every flag change arrives within this many seconds (\Seen,
 * arrivals and expunges at the next sync). */
#define SYNC_PLAIN_FULL_SCAN_S (15 * 60)

struct sync_progress {
	const char *folder;
	uint64_t msgs_done, msgs_total; /* new messages in this run */
	uint64_t bytes_done, bytes_total;
};

typedef void sync_progress_fn(void *ctx, const struct sync_progress *p);

struct sync_options {
	sync_progress_fn *progress; /* may be NULL */
	void *progress_ctx;
	/* Below this many messages a mass disappearance is applied without a
	 * second look (default 10 when 0). */
	unsigned mass_delete_min;
	/* The UTC day (days since the epoch) the daily download budget counts
	 * in; 0: today by the clock. */
	int64_t utc_day;
	/* Plain tier: a folder whose STATUS counts did not change is not
	 * scanned for flags until this many seconds after its last full
	 * scan (0: SYNC_PLAIN_FULL_SCAN_S). */
	unsigned plain_full_scan_s;
	/* Scan every folder's flags in full: no plain-tier STATUS shortcut. A
	 * sync of named folders (only_folders: a push event) always does. */
	bool full_scan;
	/* Sync only these folders (the server's names, as push reports them;
	 * "INBOX" in any case is the inbox); NULL: every folder. The folder
	 * list is still read and reconciled (creations, renames, deletions:
	 * one round trip); only the named folders are selected. */
	const char *const *only_folders;
	size_t n_only_folders;
};

struct sync_stats {
	unsigned folders, folders_selected;
	unsigned folders_created, folders_renamed, folders_deleted;
	uint64_t new_messages, new_bytes;
	uint64_t flag_changes, expunged, repaired;
	const char *tier; /* best tier used: "QRESYNC", "CONDSTORE" or "plain" */
	/* Gmail: messages added to an Email the account held (by X-GM-MSGID)
	 * without downloading them again. */
	uint64_t linked;
	/* Plain tier: folders not scanned (STATUS unchanged, full scan recent). */
	unsigned plain_skipped;
	/* The daily download budget stopped the sync (it resumes on a later
	 * day); the account's progress against the server's STATUS counts. */
	bool paced;
	uint64_t budget, budget_used;
	uint64_t held_messages, status_messages, bytes_done;
};

/* Sync the account (key as for store_account_ensure()) over an authenticated
 * client. On error, what was stored before the error stays committed and
 * *error_r says what went wrong (owned by the sync module; valid until the
 * next call). stats_r is filled in either case. */
int sync_account(struct store *store, const char *account_key, struct imap_client *client,
                 const struct sync_options *opts, struct sync_stats *stats_r, const char **error_r);

/*
 * Replay of the changes made on the devices (local_changes) to the
 * account's server, before the server-to-hub sync (sync-replay.c; the
 * rules, conflicts and crash behaviour are in docs/sync.md). Runs the
 * pending changes in order over an authenticated client, batching
 * consecutive changes of one kind and folder into UID sets.
 */
struct sync_replay_options {
	unsigned max_batch; /* changes in one command (default 1000 when 0) */
};

struct sync_replay_stats {
	unsigned replayed;  /* changes done (deleted from local_changes) */
	unsigned failed;    /* refused for good: 'failed' + a hub notice */
	unsigned deferred;  /* left for after the sync (UIDVALIDITY, rename) */
	unsigned conflicts; /* STOREs the server had changed meanwhile */
	unsigned appended;  /* APPENDs sent */
	unsigned batches, commands;
	const char *tier; /* "QRESYNC", "CONDSTORE" or "plain" */
	double seconds;   /* the run's duration */
	char error[512];  /* what *error_r points to */
};

/* Replay the account's pending changes. Returns 0 when every change was
 * done, failed for good or deferred; -1 when the run stopped (a broken
 * session, a temporary refusal, a store error): what was done is
 * committed and the rest goes next time; *error_r then points into
 * stats_r->error. */
int sync_replay_account(struct store *store, struct imap_client *client, int64_t account_id,
                        const struct sync_replay_options *opts, struct sync_replay_stats *stats_r,
                        const char **error_r);
/* The same for the account key of sync_account(). */
int sync_replay_account_key(struct store *store, const char *account_key,
                            struct imap_client *client, const struct sync_replay_options *opts,
                            struct sync_replay_stats *stats_r, const char **error_r);

#endif
