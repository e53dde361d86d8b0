/* The daemon's background jobs: scheduled syncs, the outbox, the full-text
 * indexer, upload expiry, the inactivity lifecycle. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "lib/clock.h"
#include "service/svc-lease.h"
#include "service/svc-pool.h"
#include "service/svc-outbox.h"
#include "service/svc-sync.h"
#include "service/svc-user.h"
#include "store/store-outbox.h"
#include "store/store-provider.h"
#include "store/store.h"

void daemon_expire_uploads(struct daemon *sv)
{
	const char *err;
	pthread_mutex_lock(&sv->users_lock);
	size_t n = sv->n_users;
	pthread_mutex_unlock(&sv->users_lock);
	for (size_t i = 0; i < n; i++) {
		struct daemon_store *us = &sv->users[i];
		if (!daemon_store_lock(sv, us))
			continue;
		if (store_begin(us->store, &err) == 0) {
			if (store_uploads_expire(us->store, (int64_t)time(NULL), NULL, &err) < 0 ||
			    store_commit(us->store, &err) < 0)
				store_rollback(us->store);
		}
		pthread_mutex_unlock(&us->lock);
	}
}

/* --- scheduled syncs ---------------------------------------------------------- */

/* The hub (DIR/hub.db), a handle of the caller's own; the error logged. */
static int open_hub(struct daemon *sv, bool load_master, struct hub **hub_r)
{
	const char *err;
	if (hub_open(sv->data_dir, load_master, hub_r, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s", err);
		return -1;
	}
	return 0;
}

void daemon_sync_record(struct daemon *sv, const char *user, const struct svc_sync_account *r)
{
	const char *err;
	bool synced = r->status == SVC_OK && r->ran;
	if (r->account_id <= 0 || (r->status == SVC_OK && !synced))
		return; /* an account given by URL, or a replay that went well */
	/* The error starts with who it is about ("alice, account 3: "): the
	 * page shows it beside the account already. */
	const char *text = r->error;
	size_t who = strlen(r->who);
	if (who > 0 && strncmp(text, r->who, who) == 0 && strncmp(text + who, ": ", 2) == 0)
		text += who + 2;
	if (!synced && text[0] == '\0')
		text = "the sync failed";
	char key[64];
	snprintf(key, sizeof(key), "account:%lld", (long long)r->account_id);
	struct daemon_store *us = daemon_store_acquire(sv, user);
	if (us == NULL)
		return; /* no store (any more): nothing to show it on */
	if (store_account_status_set(us->store, key, (int64_t)time(NULL), synced ? NULL : text,
	                             &err) < 0)
		daemon_log(DAEMON_LOG_ERROR, user, r->account_id, "sync status not recorded: %s",
		           err);
	pthread_mutex_unlock(&us->lock);
}

void daemon_sync_account_done(void *ctx, const struct svc_sync_account *r)
{
	const struct daemon_sync_done *done = ctx;
	const char *user = done->user;
	char replay[SVC_SUMMARY_SIZE], synced[SVC_SUMMARY_SIZE], progress[SVC_SUMMARY_SIZE];
	svc_sync_summary(r, replay, synced, progress);
	if (replay[0] != '\0')
		daemon_log(DAEMON_LOG_INFO, user, r->account_id, "%s", replay);
	if (synced[0] != '\0')
		daemon_log(DAEMON_LOG_INFO, user, r->account_id, "%s", synced);
	if (progress[0] != '\0')
		daemon_log(DAEMON_LOG_INFO, user, r->account_id, "%s", progress + 2);
	daemon_metrics_sync(r->account_id, r->ran, r->status != SVC_OK);
	if (r->status != SVC_OK)
		daemon_log(DAEMON_LOG_ERROR, user, r->account_id, "%s", r->error);
	daemon_sync_record(done->sv, user, r);
}

/*
 * The scheduler. Every sync_interval it syncs each user's accounts (server-key
 * users, and zero-access users while their lease is open), except the
 * accounts provider push watches: an account whose push connection has been
 * idle since before its last scheduled sync began is not logged in to at
 * all (push reports every change on it, and the account worker syncs what
 * changed), until full_sync_interval has passed since that sync: then it is
 * synced in full as a safety net. An account whose push connection came up
 * (again) after its last sync began is synced, so nothing that changed while
 * push was down is missed.
 */

/* When each account's last scheduled sync that succeeded began
 * (clock_mono(): the monotonic clock push's idle times are on too). */
struct sched_account {
	int64_t id;
	double synced;
};
struct sched {
	struct sched_account *a;
	size_t n;
	unsigned synced; /* accounts synced (logged in to) this round */
};

static struct sched_account *sched_find(struct sched *s, int64_t id, bool add)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->a[i].id == id)
			return &s->a[i];
	if (!add)
		return NULL;
	struct sched_account *na = realloc(s->a, (s->n + 1) * sizeof(*na));
	if (na == NULL)
		return NULL;
	s->a = na;
	s->a[s->n] = (struct sched_account){.id = id};
	return &s->a[s->n++];
}

/* Does the scheduler leave the account to push now? */
static bool sched_pushed(struct daemon *sv, struct sched *s, int64_t id, double now)
{
	double since;
	struct sched_account *a = sched_find(s, id, false);
	return a != NULL && a->synced > 0 && daemon_provider_account_idle(id, &since) &&
	       since < a->synced && now < a->synced + sv->full_sync_interval;
}

struct sched_call {
	struct daemon *sv;
	const char *user;
	struct sched *sched;
	double began;
};

static void sched_account_done(void *ctx, const struct svc_sync_account *r)
{
	struct sched_call *c = ctx;
	struct daemon_sync_done done = {.sv = c->sv, .user = c->user};
	daemon_sync_account_done(&done, r);
	c->sched->synced++;
	struct sched_account *a;
	if (r->status == SVC_OK && (a = sched_find(c->sched, r->account_id, true)) != NULL)
		a->synced = c->began;
}

/* Sync a user's stored accounts (only_account: one of them) over hub (its
 * master key loaded), logging a summary per account. Returns the status. */
static enum svc_status sync_user(struct daemon *sv, struct hub *hub, const char *user,
                                 int64_t only_account, struct sched *sched)
{
	struct sched_call call = {.sv = sv, .user = user, .sched = sched, .began = clock_mono()};
	struct svc_sync_options opt = {.only_account = only_account,
	                               .compress = IMAP_COMPRESS_AUTO,
	                               .pool = sv->pool,
	                               .via = "serve",
	                               .passphrase = {.leases = sv->leases},
	                               .account_done = sched_account_done,
	                               .account_done_ctx = &call,
	                               .reporter = {.report = daemon_report, .ctx = (void *)user}};
	struct svc_sync_result res;
	svc_sync_user(hub, user, &opt, &res);
	if (res.error[0] != '\0')
		daemon_log(DAEMON_LOG_ERROR, user, 0, "%s", res.error);
	if (res.no_account)
		daemon_log(DAEMON_LOG_ERROR, user, 0,
		           "%s has no accounts yet (add one with 'mailkeep account add')", user);
	return res.status;
}

/* Warm sessions of users no longer in hub.db (purged) are closed. */
static void pool_keep_users(struct daemon *sv, const struct hub_user *users, size_t n)
{
	int64_t *ids = n > 0 ? calloc(n, sizeof(*ids)) : NULL;
	if (n > 0 && ids == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		ids[i] = users[i].id;
	svc_pool_keep_users(sv->pool, ids, n);
	free(ids);
}

/* A user's part of a round: every account, or those push does not cover;
 * *pushed_r counts the accounts left to push. */
static enum svc_status sync_user_round(struct daemon *sv, struct hub *hub, const struct hub_user *u,
                                       struct sched *sched, unsigned *pushed_r,
                                       struct daemon_push_reconcile *rec)
{
	const char *err;
	struct hub_account *accts = NULL;
	size_t n = 0, pushed = 0;
	double now = clock_mono();
	if (hub_account_list(hub, u->id, &accts, &n, &err) < 0) {
		n = 0; /* the sync says what is wrong */
		daemon_provider_round_user_keep(u->name);
	} else {
		/* Warm sessions follow hub.db too: an account removed or changed
		 * by the CLI loses its session here (a take would refuse it). */
		svc_pool_keep_accounts(sv->pool, u->id, accts, n);
	}
	/* Provider push follows hub.db: accounts added or changed by the CLI
	 * while serve runs start (or reconnect) here. */
	for (size_t i = 0; i < n; i++)
		daemon_provider_round_account(u->name, &accts[i], rec);
	bool *skip = n > 0 ? calloc(n, sizeof(*skip)) : NULL;
	for (size_t i = 0; i < n && skip != NULL; i++)
		pushed += skip[i] = sched_pushed(sv, sched, accts[i].id, now);
	enum svc_status st = SVC_OK;
	if (pushed == 0) {
		st = sync_user(sv, hub, u->name, 0, sched);
	} else {
		for (size_t i = 0; i < n && !sv->stop; i++) {
			if (skip[i])
				continue;
			enum svc_status one = sync_user(sv, hub, u->name, accts[i].id, sched);
			if (one != SVC_OK && st != SVC_FAILED)
				st = one;
		}
	}
	*pushed_r += (unsigned)pushed;
	free(skip);
	hub_accounts_free(&accts, n);
	return st;
}

void *daemon_sync_thread(void *context)
{
	struct daemon *sv = context;
	struct sched sched = {0};
	time_t next = time(NULL);
	time_t retry = 0; /* after a temporary failure: 60 s, doubling, at most the interval */
	/* Provider push starts as a job, after this thread: the first round
	 * waits for it (then for its connections, below). */
	while (!sv->jobs_started && !sv->stop)
		usleep(50 * 1000);
	while (!sv->stop) {
		if (sv->sync_interval > 0 && (time(NULL) >= next || sv->sync_now)) {
			sv->sync_now = 0;
			/* Push connections being made (serve starting, a lease just
			 * opened) get a few seconds first: an account whose push is
			 * up before its sync begins is not polled afterwards. */
			for (int t = 0; t < 100 && !sv->stop && daemon_provider_pending() > 0; t++)
				usleep(100 * 1000);
			/* A round: every server-key user, over a hub handle of its own
			 * (with the master key) for the round. */
			struct hub *hub = NULL;
			struct hub_user *users = NULL;
			size_t n = 0;
			unsigned pushed = 0;
			double began = clock_mono();
			sched.synced = 0;
			const char *err;
			struct daemon_push_reconcile rec = {0};
			bool listed = false;
			daemon_provider_round_begin();
			if (open_hub(sv, true, &hub) == 0) {
				if (hub_user_list(hub, &users, &n, &err) < 0) {
					daemon_log(DAEMON_LOG_ERROR, NULL, 0, "scheduler: %s", err);
					n = 0;
				} else {
					listed = true;
					pool_keep_users(sv, users, n);
				}
			}
			bool temporary = false;
			for (size_t i = 0; i < n && !sv->stop; i++) {
				if (users[i].zero_access &&
				    !svc_lease_held(sv->leases, users[i].id, NULL)) {
					daemon_log(
					    DAEMON_LOG_INFO, users[i].name, 0,
					    "scheduler: %s is zero-access and not signed in; "
					    "synced only while unlocked",
					    users[i].name);
					/* A lease wiped without a drop (expired, or
					 * revoked from the command line). */
					svc_pool_drop_user(sv->pool, users[i].id);
					daemon_provider_round_user_keep(users[i].name);
					continue;
				}
				if (sync_user_round(sv, hub, &users[i], &sched, &pushed, &rec) ==
				    SVC_TEMPORARY)
					temporary = true;
			}
			/* Push of accounts (and users) no longer in hub.db stops,
			 * once every user was looked at. */
			if (listed && !sv->stop)
				daemon_provider_round_end(&rec);
			char full[64] = "", push[96] = "";
			if (pushed > 0)
				snprintf(full, sizeof(full), " (a full sync of each every %u s)",
				         sv->full_sync_interval);
			if (rec.started + rec.restarted + rec.stopped > 0)
				snprintf(push, sizeof(push),
				         "; push: %u started, %u restarted, %u stopped",
				         rec.started, rec.restarted, rec.stopped);
			daemon_log(DAEMON_LOG_INFO, NULL, 0,
			           "scheduler: round: %u account%s synced, %u left to provider "
			           "push%s%s, %.1f s",
			           sched.synced, sched.synced == 1 ? "" : "s", pushed, full, push,
			           clock_mono() - began);
			free(users);
			hub_close(&hub);
			sv->fts_relist = 1;
			retry = !temporary ? 0 : retry == 0 ? 60 : retry * 2;
			if (retry > 0 && retry < (time_t)sv->sync_interval)
				next = time(NULL) + retry;
			else
				next = time(NULL) + (time_t)sv->sync_interval;
		}
		sleep(1);
	}
	free(sched.a);
	return NULL;
}

/* --- background full-text indexing ------------------------------------------------ */

#define DAEMON_FTS_BATCH 32         /* messages indexed per transaction */
#define DAEMON_FTS_MERGE_PAGES 64   /* index pages rewritten per purge step */
#define DAEMON_FTS_PURGE_EVERY 3600 /* seconds between purges of a user's index */

/* Works through each user's indexing backlog (and folds deleted text out
 * of the index) in small steps, each under the user's store lock, so an API
 * request waits for one step at most. A purge rewrites the whole index, so
 * words of expunged messages are folded out at most once an hour per user
 * (an account removal does it at once). All users' stores are opened at
 * start-up and after each scheduled sync round (sv->fts_relist); stores
 * already open are looked at every two seconds, which also catches syncs
 * run by other processes. */
void *daemon_fts_thread(void *context)
{
	struct daemon *sv = context;
	static time_t last_purge[DAEMON_MAX_USERS];
	while (!sv->stop) {
		if (sv->fts_relist) {
			sv->fts_relist = 0;
			struct hub_user *users = NULL;
			size_t n = 0;
			const char *err;
			pthread_mutex_lock(&sv->hub_lock);
			if (hub_user_list(sv->hub, &users, &n, &err) < 0)
				n = 0;
			pthread_mutex_unlock(&sv->hub_lock);
			for (size_t i = 0; i < n; i++)
				daemon_store_get(sv, users[i].name);
			free(users);
		}
		pthread_mutex_lock(&sv->users_lock);
		size_t n_users = sv->n_users;
		pthread_mutex_unlock(&sv->users_lock);
		for (size_t i = 0; i < n_users && !sv->stop; i++) {
			struct daemon_store *us = &sv->users[i];
			bool indexed = false,
			     purged = time(NULL) < last_purge[i] + DAEMON_FTS_PURGE_EVERY;
			const char *err;
			while (!sv->stop && !(indexed && purged)) {
				bool purge_step = indexed;
				if (!daemon_store_lock(sv, us))
					break;
				int r = !indexed
				            ? store_fts_catch_up(us->store, DAEMON_FTS_BATCH,
				                                 &indexed, &err)
				            : store_fts_purge(us->store, DAEMON_FTS_MERGE_PAGES,
				                              &purged, &err);
				pthread_mutex_unlock(&us->lock);
				if (r == 0 && purge_step && purged)
					last_purge[i] = time(NULL);
				if (r < 0) {
					if (err != store_fts_busy) {
						daemon_log(DAEMON_LOG_INFO, us->name, 0,
						           "indexer: %s: %s", us->name, err);
					}
					break;
				}
			}
		}
		for (int t = 0; t < 20 && !sv->stop && !sv->fts_relist; t++)
			usleep(100 * 1000);
	}
	return NULL;
}

/* --- outbox and lifecycle ------------------------------------------------------ */

#define DAEMON_OUTBOX_INTERVAL 2 /* seconds between outbox passes */
#define DAEMON_LIFECYCLE_INTERVAL 86400

/* Messages queued or being sent in the user's outbox (for the metrics). */
static unsigned outbox_queued(struct store *store)
{
	const char *err;
	struct store_outbox_item *items = NULL;
	size_t n = 0;
	unsigned queued = 0;
	if (store_outbox_list(store, &items, &n, &err) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		queued +=
		    items[i].state == STORE_OUTBOX_QUEUED || items[i].state == STORE_OUTBOX_SENDING;
		store_outbox_item_free(&items[i]);
	}
	free(items);
	return queued;
}

/* One outbox pass: for each server-key user, the shared store (daemon-stores.c,
 * checked fresh) tells whether anything is due; only then is a store handle
 * of the send's own opened (a send takes seconds, and must not hold the
 * shared handle's lock that API requests wait for) and svc_outbox_run()
 * sends. Nothing is reopened when nothing is due. */
static void outbox_pass(struct daemon *sv, struct hub *hub, bool count)
{
	struct hub_user *users = NULL;
	size_t n = 0;
	unsigned queued = 0, failed = 0;
	const char *err;
	if (hub_user_list(hub, &users, &n, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "outbox: %s", err);
		return;
	}
	for (size_t i = 0; i < n && !sv->stop; i++) {
		if (users[i].zero_access && !svc_lease_held(sv->leases, users[i].id, NULL))
			continue; /* their mail waits until they sign in (a lease) or run it */
		struct daemon_store *us = daemon_store_acquire(sv, users[i].name);
		int64_t when;
		int due = 0;
		char path[4096];
		if (us != NULL) {
			due = store_outbox_next_due(us->store, &when, &err);
			pthread_mutex_unlock(&us->lock);
		} else if (hub_user_path(hub, users[i].name, "store.db", path, sizeof(path)) == 0 &&
		           access(path, F_OK) == 0) {
			due = 1; /* past the registry's bound: the run itself looks */
		}
		if (due == 1) {
			struct svc_reporter rep = {.report = daemon_report, .ctx = users[i].name};
			struct svc_outbox_options opt = {.retry_base = SVC_OUTBOX_RETRY_BASE,
			                                 .max_attempts = SVC_OUTBOX_MAX_ATTEMPTS,
			                                 .passphrase = {.leases = sv->leases},
			                                 .reporter = rep};
			struct svc_outbox_result st;
			struct store *store = NULL;
			char error[SVC_ERROR_SIZE];
			if (svc_store_open(sv->data_dir, users[i].name, false, &store, error,
			                   sizeof(error)) < 0)
				daemon_log(DAEMON_LOG_ERROR, users[i].name, 0, "%s", error);
			else if (svc_outbox_run(hub, &users[i], store, &opt, &st) < 0)
				daemon_log(DAEMON_LOG_ERROR, users[i].name, 0, "%s", st.error);
			else
				failed += st.failed;
			store_close(&store);
		}
		if (count && us != NULL && daemon_store_lock(sv, us)) {
			queued += outbox_queued(us->store);
			pthread_mutex_unlock(&us->lock);
		}
	}
	free(users);
	daemon_metrics_outbox(count ? (int)queued : -1, failed);
}

/* Sends queued mail (svc-outbox.c): a pass every two seconds, over a hub
 * handle of the thread's own, opened once. */
void *daemon_outbox_thread(void *context)
{
	struct daemon *sv = context;
	struct hub *hub = NULL;
	time_t next_count = 0;
	while (!sv->stop) {
		if (hub == NULL && open_hub(sv, true, &hub) < 0)
			hub = NULL;
		if (hub != NULL) {
			bool count = time(NULL) >= next_count; /* the queue length: every 30 s */
			outbox_pass(sv, hub, count);
			if (count)
				next_count = time(NULL) + 30;
		}
		for (unsigned i = 0; i < DAEMON_OUTBOX_INTERVAL * 10 && !sv->stop; i++)
			usleep(100 * 1000);
	}
	hub_close(&hub);
	return NULL;
}

void daemon_lifecycle_round(struct daemon *sv)
{
	struct svc_reporter rep = {.report = daemon_report};
	pthread_mutex_lock(&sv->hub_lock);
	svc_lifecycle_run(sv->hub, time(NULL), false, &rep);
	pthread_mutex_unlock(&sv->hub_lock);
}

/* The inactivity lifecycle (svc_lifecycle_run): a round a day (the first a
 * day after the start, which daemon_run() began with one), with a hub handle
 * of its own. */
void *daemon_lifecycle_thread(void *context)
{
	struct daemon *sv = context;
	struct svc_reporter rep = {.report = daemon_report};
	time_t next = time(NULL) + DAEMON_LIFECYCLE_INTERVAL;
	while (!sv->stop) {
		if (time(NULL) >= next) {
			struct hub *hub;
			if (open_hub(sv, false, &hub) == 0) {
				svc_lifecycle_run(hub, time(NULL), false, &rep);
				struct hub_user *users = NULL;
				size_t n = 0;
				const char *err;
				if (hub_user_list(hub, &users, &n, &err) == 0)
					pool_keep_users(sv, users, n);
				free(users);
				hub_close(&hub);
			}
			next = time(NULL) + DAEMON_LIFECYCLE_INTERVAL;
		}
		sleep(1);
	}
	return NULL;
}
