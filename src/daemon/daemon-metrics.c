/*
 * The daemon's metrics, served at /metrics in the Prometheus text format
 * (0.0.4): sync runs and errors per account, replay runs, changes and
 * failures per account, provider push connections by state, the outbox
 * queue and its failures, HTTP request latency by route, open stores.
 * Counters live for the process. Account ids are the hub's; no user names
 * (the account id is enough for an operator and leaks less).
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon-internal.h"
#include "service/svc-pool.h"
#include "lib/buf.h"

#define METRICS_ACCOUNTS 1024
#define METRICS_PUSH_STATES 16
#define METRICS_ROUTES 8

struct account_metrics {
	int64_t id;
	uint64_t sync_runs, sync_errors;
	uint64_t replay_runs, replay_changes, replay_failures;
};

static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct route_metrics {
	const char *route;
	uint64_t buckets[N_BOUNDS]; /* each bound's own, summed when written */
	uint64_t count;
	double sum;
};

static const char *const route_names[METRICS_ROUTES] = {
    "session", "api", "download", "upload", "eventsource", "healthz", "metrics", "other"};

static struct {
	pthread_mutex_t lock;
	struct account_metrics accounts[METRICS_ACCOUNTS];
	size_t n_accounts;
	struct {
		char state[32];
		unsigned count;
	} push[METRICS_PUSH_STATES];
	size_t n_push;
	unsigned outbox_queued;
	uint64_t outbox_failures;
	struct route_metrics routes[METRICS_ROUTES];
} m = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* m.lock held. NULL when the table is full (the account is not counted). */
static struct account_metrics *account(int64_t id)
{
	for (size_t i = 0; i < m.n_accounts; i++)
		if (m.accounts[i].id == id)
			return &m.accounts[i];
	if (m.n_accounts == METRICS_ACCOUNTS)
		return NULL;
	struct account_metrics *a = &m.accounts[m.n_accounts++];
	memset(a, 0, sizeof(*a));
	a->id = id;
	return a;
}

void daemon_metrics_sync(int64_t account_id, bool ran, bool failed)
{
	pthread_mutex_lock(&m.lock);
	struct account_metrics *a = account(account_id);
	if (a != NULL) {
		a->sync_runs += ran || failed;
		a->sync_errors += failed;
	}
	pthread_mutex_unlock(&m.lock);
}

void daemon_metrics_replay(int64_t account_id, unsigned changes, bool failed)
{
	pthread_mutex_lock(&m.lock);
	struct account_metrics *a = account(account_id);
	if (a != NULL) {
		a->replay_runs++;
		a->replay_changes += changes;
		a->replay_failures += failed;
	}
	pthread_mutex_unlock(&m.lock);
}

void daemon_metrics_set_push(const char *state, unsigned count)
{
	char name[32];
	size_t n = 0;
	for (const char *c = state; *c != '\0' && n + 1 < sizeof(name); c++)
		name[n++] = (*c >= 'a' && *c <= 'z') || *c == '_' ? *c : '_';
	name[n] = '\0';
	pthread_mutex_lock(&m.lock);
	size_t i = 0;
	while (i < m.n_push && strcmp(m.push[i].state, name) != 0)
		i++;
	if (i == m.n_push && m.n_push < METRICS_PUSH_STATES)
		snprintf(m.push[m.n_push++].state, sizeof(m.push[0].state), "%s", name);
	if (i < m.n_push)
		m.push[i].count = count;
	pthread_mutex_unlock(&m.lock);
}

void daemon_metrics_outbox(int queued, unsigned failed)
{
	pthread_mutex_lock(&m.lock);
	if (queued >= 0)
		m.outbox_queued = (unsigned)queued;
	m.outbox_failures += failed;
	pthread_mutex_unlock(&m.lock);
}

void daemon_metrics_request(const char *route, double seconds)
{
	size_t r = 0;
	while (r < METRICS_ROUTES - 1 && strcmp(route_names[r], route) != 0)
		r++;
	pthread_mutex_lock(&m.lock);
	struct route_metrics *rm = &m.routes[r];
	size_t b = 0;
	while (b < N_BOUNDS && seconds > bounds[b])
		b++;
	if (b < N_BOUNDS)
		rm->buckets[b]++;
	rm->count++;
	rm->sum += seconds;
	pthread_mutex_unlock(&m.lock);
}

static void account_family(struct buf *b, const char *name, const char *help, size_t field)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < m.n_accounts; i++) {
		uint64_t v;
		memcpy(&v, (const char *)&m.accounts[i] + field, sizeof(v));
		buf_printf(b, "%s{account=\"%lld\"} %llu\n", name, (long long)m.accounts[i].id,
		           (unsigned long long)v);
	}
}

char *daemon_metrics_text(struct daemon *sv)
{
	struct buf b;
	buf_init(&b, 1024 * 1024);
	pthread_mutex_lock(&sv->users_lock);
	size_t open_stores = 0;
	for (size_t i = 0; i < sv->n_users; i++)
		open_stores += sv->users[i].store != NULL;
	pthread_mutex_unlock(&sv->users_lock);
	pthread_mutex_lock(&m.lock);
	buf_printf(&b,
	           "# HELP mailkeep_uptime_seconds Seconds since serve started.\n"
	           "# TYPE mailkeep_uptime_seconds gauge\nmailkeep_uptime_seconds %lld\n",
	           (long long)(time(NULL) - sv->started));
	account_family(&b, "mailkeep_sync_runs_total", "Account syncs run.",
	               offsetof(struct account_metrics, sync_runs));
	account_family(&b, "mailkeep_sync_errors_total", "Account syncs that failed.",
	               offsetof(struct account_metrics, sync_errors));
	account_family(&b, "mailkeep_replay_runs_total", "Replays of device changes run.",
	               offsetof(struct account_metrics, replay_runs));
	account_family(&b, "mailkeep_replay_changes_total",
	               "Device changes carried to the provider.",
	               offsetof(struct account_metrics, replay_changes));
	account_family(&b, "mailkeep_replay_failures_total",
	               "Replays that stopped or had changes refused.",
	               offsetof(struct account_metrics, replay_failures));
	buf_printf(&b, "# HELP mailkeep_push_connections Provider push connections by state.\n"
	               "# TYPE mailkeep_push_connections gauge\n");
	for (size_t i = 0; i < m.n_push; i++)
		buf_printf(&b, "mailkeep_push_connections{state=\"%s\"} %u\n", m.push[i].state,
		           m.push[i].count);
	buf_printf(
	    &b,
	    "# HELP mailkeep_outbox_queued Messages queued or being sent in the outboxes (counted "
	    "every 30 s).\n"
	    "# TYPE mailkeep_outbox_queued gauge\nmailkeep_outbox_queued %u\n"
	    "# HELP mailkeep_outbox_failures_total Messages the outbox gave up on.\n"
	    "# TYPE mailkeep_outbox_failures_total counter\nmailkeep_outbox_failures_total %llu\n",
	    m.outbox_queued, (unsigned long long)m.outbox_failures);
	buf_printf(&b,
	           "# HELP mailkeep_open_stores User stores open in serve.\n"
	           "# TYPE mailkeep_open_stores gauge\nmailkeep_open_stores %zu\n",
	           open_stores);
	/* Warm sync sessions (svc-pool.h). */
	struct svc_pool_stats ps;
	svc_pool_stats(sv->pool, &ps);
	buf_printf(&b,
	           "# HELP mailkeep_warm_sessions Logged-in sync sessions kept for the next sync.\n"
	           "# TYPE mailkeep_warm_sessions gauge\nmailkeep_warm_sessions %u\n"
	           "# HELP mailkeep_warm_session_reuses_total Syncs that took a kept session.\n"
	           "# TYPE mailkeep_warm_session_reuses_total counter\n"
	           "mailkeep_warm_session_reuses_total %llu\n",
	           ps.parked, ps.hit);
	buf_printf(&b, "# HELP mailkeep_http_request_duration_seconds Request latency by route.\n"
	               "# TYPE mailkeep_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r < METRICS_ROUTES; r++) {
		const struct route_metrics *rm = &m.routes[r];
		uint64_t cum = 0;
		for (size_t i = 0; i < N_BOUNDS; i++) {
			cum += rm->buckets[i];
			buf_printf(&b,
			           "mailkeep_http_request_duration_seconds_bucket{route=\"%s\",le="
			           "\"%g\"} %llu\n",
			           route_names[r], bounds[i], (unsigned long long)cum);
		}
		buf_printf(
		    &b,
		    "mailkeep_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n"
		    "mailkeep_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
		    "mailkeep_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    route_names[r], (unsigned long long)rm->count, route_names[r], rm->sum,
		    route_names[r], (unsigned long long)rm->count);
	}
	pthread_mutex_unlock(&m.lock);
	char *text = b.data != NULL ? strdup(buf_str(&b)) : NULL;
	buf_free(&b);
	return text;
}
