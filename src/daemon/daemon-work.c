/*
 * The daemon's account work: device changes replayed to the provider at
 * once, and syncs of an account asked for now (a change the provider
 * reported). A queue of accounts, one entry per account however many times
 * it is woken before its turn (a burst of device changes is one replay),
 * and one worker thread with a hub handle of its own, opened once.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "lib/clock.h"
#include "service/svc-sync.h"

/* Queue (user, account) for kind (DAEMON_WORK_*); coalesces with an entry
 * not yet taken. A full queue drops the wake: the scheduled sync still
 * carries the changes. */
static void work_add(struct daemon *sv, const char *user, int64_t account_id, unsigned kind,
                     const char *folder)
{
	pthread_mutex_lock(&sv->work_lock);
	struct daemon_work *w = NULL;
	for (size_t i = 0; i < sv->n_work && w == NULL; i++)
		if (sv->work[i].account_id == account_id && strcmp(sv->work[i].user, user) == 0)
			w = &sv->work[i];
	if (w == NULL && sv->n_work < DAEMON_MAX_WORK) {
		w = &sv->work[sv->n_work++];
		memset(w, 0, sizeof(*w));
		snprintf(w->user, sizeof(w->user), "%s", user);
		w->account_id = account_id;
		w->queued = clock_mono();
		/* A new sync of one folder names it; otherwise the whole account. */
		if (kind == DAEMON_WORK_SYNC && folder != NULL &&
		    (size_t)snprintf(w->folder, sizeof(w->folder), "%s", folder) >=
		        sizeof(w->folder))
			w->folder[0] = '\0';
	} else if (w != NULL &&
	           (kind != DAEMON_WORK_SYNC || folder == NULL || strcmp(w->folder, folder) != 0 ||
	            !(w->kinds & DAEMON_WORK_SYNC))) {
		/* Another folder, or a wake of another kind: the whole account. */
		w->folder[0] = '\0';
	}
	if (w != NULL)
		w->kinds |= kind;
	pthread_cond_signal(&sv->work_cond);
	pthread_mutex_unlock(&sv->work_lock);
	if (w == NULL)
		daemon_log(DAEMON_LOG_ERROR, user, account_id,
		           "work queue full; the change waits for the scheduled sync");
}

void daemon_replay_wake(struct daemon *sv, const char *user, int64_t account_id)
{
	work_add(sv, user, account_id, DAEMON_WORK_REPLAY, NULL);
}

void daemon_account_changed(struct daemon *sv, const char *user, int64_t account_id,
                            const char *folder)
{
	/* Only that folder (svc_sync_options.only_folder): a push event
	 * costs one folder, plus the folder list. */
	work_add(sv, user, account_id, DAEMON_WORK_SYNC, folder);
}

static void work_run(struct daemon *sv, struct hub *hub, const struct daemon_work *w)
{
	struct svc_sync_options opt = {
	    .compress = IMAP_COMPRESS_AUTO,
	    .via = "serve",
	    .only_account = w->account_id,
	    .stop = &sv->stop,
	    .pool = sv->pool,
	    .passphrase = {.leases = sv->leases},
	    .reporter = {.report = daemon_report, .ctx = (void *)w->user}};
	if (w->kinds & DAEMON_WORK_SYNC) {
		/* The sync replays the device changes first. */
		struct svc_sync_result res;
		opt.account_done = daemon_sync_account_done;
		if (w->folder[0] != '\0')
			opt.only_folder = w->folder;
		struct daemon_sync_done done = {.sv = sv, .user = w->user};
		opt.account_done_ctx = &done;
		svc_sync_user(hub, w->user, &opt, &res);
		if (res.error[0] != '\0')
			daemon_log(DAEMON_LOG_ERROR, w->user, w->account_id, "%s", res.error);
	} else {
		struct svc_sync_account r;
		int ret = svc_replay_account(hub, w->user, w->account_id, &opt, &r);
		const struct sync_replay_stats *rst = &r.replay;
		daemon_metrics_replay(w->account_id, rst->replayed, ret < 0 || rst->failed > 0);
		if (ret < 0) {
			daemon_log(DAEMON_LOG_ERROR, w->user, w->account_id, "replay: %s", r.error);
			daemon_sync_record(sv, w->user, &r);
		} else if (rst->replayed + rst->failed + rst->deferred > 0)
			daemon_log(DAEMON_LOG_INFO, w->user, w->account_id,
			           "replayed %s: %u device changes in %u commands, %u failed, "
			           "%u deferred, %u conflicts, %.3f s (%.3f s after the change)",
			           r.who, rst->replayed, rst->commands, rst->failed, rst->deferred,
			           rst->conflicts, rst->seconds, clock_mono() - w->queued);
	}
	daemon_push_wake(sv);
}

static void work_sweep(struct daemon *sv)
{
	unsigned n = svc_pool_sweep(sv->pool, clock_mono(), sv->leases);
	if (n > 0)
		daemon_log(DAEMON_LOG_INFO, NULL, 0,
		           "warm sessions: %u logged out (kept their time, or a lease ended)", n);
}

void *daemon_work_thread(void *context)
{
	struct daemon *sv = context;
	struct hub *hub = NULL;
	const char *err;
	while (!sv->stop) {
		pthread_mutex_lock(&sv->work_lock);
		while (sv->n_work == 0 && !sv->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&sv->work_cond, &sv->work_lock, &ts);
			/* Idle: warm sessions kept too long, or whose user's lease
			 * went, log out (not under the queue's lock). */
			pthread_mutex_unlock(&sv->work_lock);
			work_sweep(sv);
			pthread_mutex_lock(&sv->work_lock);
		}
		if (sv->stop) {
			pthread_mutex_unlock(&sv->work_lock);
			break;
		}
		struct daemon_work w = sv->work[0];
		memmove(&sv->work[0], &sv->work[1], (sv->n_work - 1) * sizeof(sv->work[0]));
		sv->n_work--;
		pthread_mutex_unlock(&sv->work_lock);
		if (hub == NULL && hub_open(sv->data_dir, true, &hub, &err) < 0) {
			daemon_log(DAEMON_LOG_ERROR, w.user, w.account_id, "%s", err);
			hub = NULL;
			continue;
		}
		work_run(sv, hub, &w);
		work_sweep(sv);
	}
	hub_close(&hub);
	return NULL;
}

void daemon_work_stop(struct daemon *sv)
{
	pthread_mutex_lock(&sv->work_lock);
	pthread_cond_broadcast(&sv->work_cond);
	pthread_mutex_unlock(&sv->work_lock);
}
