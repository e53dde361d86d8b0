#ifndef MK_SVC_SYNC_H
#define MK_SVC_SYNC_H

#include <signal.h>

#include "service.h"
#include "svc-pool.h"
#include "../imap/imap-client.h"
#include "../sync/sync.h"

/*
 * Syncing a user's accounts: for each account, its sealed IMAP password is
 * opened (audited first), the hub logs in (audited: provider.login), replays
 * the changes devices made in the hub, then brings the hub up to date with
 * the server (sync.h). Used by `sync` and by serve's scheduler and account
 * worker; serve keeps the session warm between syncs (svc-pool.h).
 */

/* One account's sync. */
struct svc_sync_account {
	int64_t account_id; /* 0 for an account given by URL and login */
	/* Who the texts are about: "USER, account ID", or "USER, URL". */
	char who[400];
	const char *url; /* the IMAP URL (valid while the call runs) */
	enum svc_status status;
	/* The sync ran (logged in): stats, compressed and seconds are set, also
	 * when it failed part way (status then says so, with error). */
	bool ran;
	struct sync_stats stats;
	struct sync_replay_stats replay; /* device changes carried to the server first */
	bool compressed;
	double seconds;             /* from the connect to the end */
	char error[SVC_ERROR_SIZE]; /* when status != SVC_OK; starts with who */
};

struct svc_sync_options {
	int64_t only_account; /* 0: every stored account */
	/* With only_account: sync only this folder (the server's name, as
	 * push reports a change); NULL: every folder. */
	const char *only_folder;
	/* Only carry the device changes to the server (the replay), no
	 * server-to-hub sync: svc_replay_account(). */
	bool replay_only;
	bool full_scan; /* sync_options.full_scan */
	/* Set (by a signal) when the caller is stopping: the account being
	 * synced finishes, no other starts. May be NULL. */
	volatile sig_atomic_t *stop;
	enum imap_compress_mode compress;
	sync_progress_fn *progress; /* may be NULL */
	void *progress_ctx;
	/* Asked for a zero-access user's passphrase (may be NULL: none). */
	struct svc_passphrase passphrase;
	const char *via; /* user.signin via=... for a zero-access unlock ("cli") */
	/* Called as each account ends (may be NULL), so a face can show it
	 * before the next one starts. */
	void (*account_done)(void *ctx, const struct svc_sync_account *r);
	void *account_done_ctx;
	/* Problems that did not stop the sync (an audit entry after the login
	 * that could not be written, the user's activity not recorded). */
	struct svc_reporter reporter;
	/* Warm sessions (svc-pool.h; serve's), NULL: none (the command line).
	 * A stored account's sync first takes its parked session and checks it
	 * with one NOOP: alive, the sync runs on it with no credential opened,
	 * no key unwrapped and no login (nor its audit entries); else it logs
	 * in as without a pool. A sync that went well parks its session (no
	 * LOGOUT). A zero-access user's sessions are used only while
	 * passphrase.leases holds their lease. */
	struct svc_pool *pool;
};

struct svc_sync_result {
	unsigned synced, failed, temporary; /* accounts */
	/* The user has no stored account (none to sync, or not only_account):
	 * nothing was tried and status is SVC_FAILED with error empty. */
	bool no_account;
	/* SVC_OK when every account synced, SVC_TEMPORARY when every failure
	 * was temporary, else SVC_FAILED. */
	enum svc_status status;
	char error[SVC_ERROR_SIZE]; /* a failure before any account, or "" */
};

/* Sync the stored accounts of hub user USER (all, or opt->only_account)
 * into their store (made if needed), each reported through
 * opt->account_done; then the user's activity is recorded. hub must have
 * its master key loaded. Returns 0 when every account synced, else -1;
 * res says what happened either way. */
int svc_sync_user(struct hub *hub, const char *user, const struct svc_sync_options *opt,
                  struct svc_sync_result *res);

/* An account given by URL, login and password (nothing stored but mail):
 * sync it into the hub user's store under the key "URL LOGIN". *password
 * (sodium_malloc()'d) is used for the login, then wiped and freed. Returns 0, or -1 with
 * r->error. The user's activity is recorded either way. */
struct svc_sync_target {
	const char *url, *login, *ca_file;
};
int svc_sync_url(struct hub *hub, const struct hub_user *u, const struct svc_sync_target *t,
                 char **password, const struct svc_sync_options *opt, struct svc_sync_account *r);

/* A push event's sync: account ACCOUNT of USER, only FOLDER (the server's
 * name), with the other options of opt; as svc_sync_user() otherwise. The
 * folder list is still read (one round trip), so creations, renames and
 * deletions are seen; only FOLDER is selected and fetched. */
int svc_sync_folder(struct hub *hub, const char *user, int64_t account, const char *folder,
                    const struct svc_sync_options *opt, struct svc_sync_result *res);
/* Replay one stored account's device changes to its server now: the login
 * (the sealed credential opened with its audit entry, as svc_sync_user
 * does), sync_replay_account(), the logout; no server-to-hub sync. r as
 * svc_sync_user's account_done gets it (r->replay the figures). Returns 0
 * when the replay ran through, -1 otherwise (r->status, r->error). */
int svc_replay_account(struct hub *hub, const char *user, int64_t account_id,
                       const struct svc_sync_options *opt, struct svc_sync_account *r);

/* The summary lines of an account's sync for a face: *replay the device
 * changes carried to the server ("" when none), *synced what the sync did
 * ("" when it did not run), *progress how far a paced or Gmail sync got
 * ("" when neither). Each line without a newline; each buffer
 * SVC_SUMMARY_SIZE bytes. */
#define SVC_SUMMARY_SIZE 1024
void svc_sync_summary(const struct svc_sync_account *r, char *replay, char *synced, char *progress);

#endif
