/* The daemon's start and stop. */
#include <jansson.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "daemon-oauth.h"
#include "daemon-manage.h"
#include "daemon-signin.h"
#include "http/http.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap-submission.h"
#include "jmap/jmap.h"
#include "mime/mime-cache.h"
#include "service/svc-lease.h"
#include "service/svc-pool.h"

static struct daemon_job jobs[DAEMON_MAX_JOBS];
static size_t n_jobs;

/* JSON memory is wiped when freed: request bodies parsed by jansson hold
 * the passwords of ExternalAccount/set, ExternalAccount/test and
 * User/changePassword (in the lexer's buffer and the string values), and
 * no cheaper rule tells those blocks from the others. Measured (issue #14,
 * bench/json-wipe.c): the wipe adds about 10 us to the JSON work of
 * bench/jmap.sh's Email/get of 50 (24 KB answer, ~0.1 % of the ~10 ms
 * request) and about 0.25 ms to an Email/get of 50 with 8 KiB body values
 * each (~450 KB, ~1 % of the request); end to end it is below the noise of
 * an A/B of serve with and without it. So every block is wiped. */
static void *json_alloc(size_t size)
{
	return malloc(size);
}

static void json_release(void *p)
{
	if (p != NULL) {
		sodium_memzero(p, malloc_usable_size(p));
		free(p);
	}
}

int daemon_job_add(const struct daemon_job *job)
{
	if (n_jobs == DAEMON_MAX_JOBS)
		return -1;
	jobs[n_jobs++] = *job;
	return 0;
}

bool daemon_stopping(const struct daemon *d)
{
	return d->stop != 0;
}

const char *daemon_data_dir(const struct daemon *d)
{
	return d->data_dir;
}

int daemon_run(const struct daemon_settings *s)
{
	json_set_alloc_funcs(json_alloc, json_release);
	const char *err;
	/* SIGTERM/SIGINT are taken by sigwait() below: blocked before any thread
	 * starts (the HTTP server's too), so none of them inherits a mask that
	 * lets the default action end the process uncleanly, and before the
	 * "serving" line, which tells a supervisor it may signal. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	static struct daemon sv_storage;
	struct daemon *sv = &sv_storage;
	sv->data_dir = s->data_dir;
	sv->sync_interval = s->sync_interval;
	sv->replay_now = s->replay_now;
	sv->full_sync_interval =
	    s->full_sync_interval > 0 ? s->full_sync_interval : DAEMON_FULL_SYNC;
	sv->open_stores = s->open_stores > 0 ? s->open_stores : DAEMON_OPEN_STORES;
	pthread_mutex_init(&sv->hub_lock, NULL);
	pthread_mutex_init(&sv->users_lock, NULL);
	pthread_mutex_init(&sv->push_lock, NULL);
	pthread_mutex_init(&sv->work_lock, NULL);
	pthread_cond_init(&sv->work_cond, NULL);
	pthread_cond_init(&sv->push_cond, NULL);
	sv->started = time(NULL);
	if ((sv->signin = daemon_signin_gate_create()) == NULL) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "out of memory");
		return -1;
	}
	if (hub_open(sv->data_dir, true, &sv->hub, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s", err);
		daemon_signin_gate_free(&sv->signin);
		return -1;
	}
	if ((sv->leases = svc_leases_create(sv->hub, &sv->hub_lock)) == NULL ||
	    (sv->pool = svc_pool_create(s->sync_keep_max, s->sync_keep_seconds)) == NULL) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "out of memory");
		svc_leases_free(&sv->leases);
		hub_close(&sv->hub);
		return -1;
	}
	if (jmap_registry_create(&sv->registry, &err) < 0 ||
	    jmap_mail_register(sv->registry, &err) < 0 ||
	    jmap_submission_register(sv->registry, &err) < 0 ||
	    daemon_manage_register(sv->registry, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s", err);
		svc_pool_free(&sv->pool);
		svc_leases_free(&sv->leases);
		hub_close(&sv->hub);
		return -1;
	}
	if ((sv->parse_cache = mime_cache_create(DAEMON_PARSE_CACHE)) == NULL) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "out of memory");
		jmap_registry_free(&sv->registry);
		svc_pool_free(&sv->pool);
		svc_leases_free(&sv->leases);
		hub_close(&sv->hub);
		return -1;
	}
	hub_web_session_lifetime(sv->hub, s->web_session_days, s->web_session_idle_days);
	char note[4200];
	if (daemon_static_load(s->web_root, &sv->web, note, sizeof(note)) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s", note);
		mime_cache_free(&sv->parse_cache);
		jmap_registry_free(&sv->registry);
		svc_pool_free(&sv->pool);
		svc_leases_free(&sv->leases);
		hub_close(&sv->hub);
		return -1;
	}
	struct http_settings hs = {.address = s->address,
	                           .port = s->port,
	                           .tls_cert_file = s->tls_cert,
	                           .tls_key_file = s->tls_key,
	                           .max_body_size = DAEMON_MAX_REQUEST,
	                           .max_connections = s->max_connections,
	                           .timeout_seconds = 60,
	                           .access_log = s->access_log,
	                           .trusted_proxy = s->trusted_proxy,
	                           .header_timeout_seconds = s->header_timeout,
	                           .max_connections_per_address = s->per_address,
	                           .max_buffered_bytes = s->body_memory,
	                           .admit = daemon_admit,
	                           .state_free = daemon_principal_free};
	struct http_server *server;
	if (http_server_start(&hs, daemon_handler, sv, &server, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s", err);
		svc_pool_free(&sv->pool);
		svc_leases_free(&sv->leases);
		return -1;
	}
	if (s->public_url != NULL)
		snprintf(sv->public_url, sizeof(sv->public_url), "%s", s->public_url);
	else
		snprintf(sv->public_url, sizeof(sv->public_url), "%s://%s:%u",
		         s->tls_cert != NULL ? "https" : "http", s->address,
		         http_server_port(server));
	size_t ul = strlen(sv->public_url);
	while (ul > 0 && sv->public_url[ul - 1] == '/')
		sv->public_url[--ul] = '\0';

	daemon_log(DAEMON_LOG_INFO, NULL, 0,
	           "mailkeep serving %s (JMAP session at %s/.well-known/jmap), sync every %u s",
	           sv->public_url, sv->public_url, s->sync_interval);
	/* After the "serving" line, which tools wait for as the first. */
	daemon_log(DAEMON_LOG_INFO, NULL, 0, "web app: %s", note);
	/* The inactivity lifecycle: a round now, before any thread opens a
	 * user's store (a purge must not race the indexer re-creating the store
	 * it removes), then one a day. */
	daemon_lifecycle_round(sv);
	pthread_t push, syncer, indexer, outboxer, lifecycler, worker, leaser;
	sv->fts_relist = 1;
	pthread_create(&push, NULL, daemon_push_thread, sv);
	pthread_create(&syncer, NULL, daemon_sync_thread, sv);
	pthread_create(&indexer, NULL, daemon_fts_thread, sv);
	pthread_create(&outboxer, NULL, daemon_outbox_thread, sv);
	pthread_create(&lifecycler, NULL, daemon_lifecycle_thread, sv);
	pthread_create(&worker, NULL, daemon_work_thread, sv);
	pthread_create(&leaser, NULL, daemon_lease_thread, sv);
	size_t started = 0;
	while (started < n_jobs && jobs[started].start(sv, jobs[started].ctx) == 0)
		started++;
	sv->jobs_started = 1; /* the scheduler's first round waits for push */
	int sig = 0;
	if (started == n_jobs) {
		sigwait(&set, &sig);
		daemon_log(DAEMON_LOG_INFO, NULL, 0, "mailkeep: signal %d, stopping", sig);
	} else {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s did not start; stopping",
		           jobs[started].name);
	}
	/* SIGTERM/SIGINT: no new connection or request is taken, the threads
	 * finish what they run (a request, an account's sync or replay, a
	 * message being sent: each is bounded by its timeouts) and start
	 * nothing new. What stays queued (replays, outbox) is durable in the
	 * stores and runs at the next start. */
	sv->stop = 1;
	http_server_quiesce(server);
	daemon_work_stop(sv);
	daemon_push_wake(sv);
	daemon_oauth_shutdown(sv); /* device sign-ins stop polling at once */
	for (size_t i = started; i-- > 0;)
		if (jobs[i].stop != NULL)
			jobs[i].stop(sv, jobs[i].ctx);
	pthread_join(push, NULL);
	pthread_join(syncer, NULL);
	pthread_join(indexer, NULL);
	pthread_join(outboxer, NULL);
	pthread_join(lifecycler, NULL);
	pthread_join(worker, NULL);
	svc_lease_wake(sv->leases); /* it may sleep until a sign-in */
	pthread_join(leaser, NULL);
	daemon_push_close_all(sv);
	http_server_stop(&server);
	/* The warm sync sessions log out (no thread syncs any more). */
	struct svc_pool_stats ps;
	svc_pool_stats(sv->pool, &ps);
	if (ps.parked > 0)
		daemon_log(DAEMON_LOG_INFO, NULL, 0, "warm sessions: %u logged out (stopping)",
		           ps.parked);
	svc_pool_free(&sv->pool);
	/* Every key held is wiped (lease.wiped reason=shutdown). */
	svc_leases_free(&sv->leases);
	daemon_stores_close(sv);
	jmap_registry_free(&sv->registry);
	mime_cache_free(&sv->parse_cache);
	daemon_static_free(&sv->web);
	hub_close(&sv->hub);
	daemon_signin_gate_free(&sv->signin);
	daemon_log(DAEMON_LOG_INFO, NULL, 0, "mailkeep: stopped");
	return started == n_jobs ? 0 : -1;
}
