/*
 * Provider push in the daemon: one src/push loop (one thread) holding an
 * idle connection per external account of every user whose credentials
 * the hub can open: server-key users from the start, zero-access users
 * while their unlock lease is open (svc-lease.h; the watch thread looks
 * at the leases twice a second, so a lease opened by any sign-in, API or
 * web, starts their accounts' push, and a wipe stops it). A change the
 * provider reports goes to daemon_account_changed(): the account worker
 * syncs and the devices get their StateChange.
 *
 * The credential callback opens the sealed password with its audit entry
 * (svc_account_open_secret, purpose "sync": push is part of sync), on the push thread with a hub
 * handle of its own; each login sent is audited (provider.login).
 */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "push/push.h"
#include "service/service.h"
#include "service/svc-lease.h"
#include "service/svc-oauth.h"

struct provider_account {
	int64_t id;
	char user[65];
	char server[300];
	/* What a restart follows: URL, login, CA file, OAuth or not, the
	 * password's version (not an OAuth account's: its refresh token is
	 * resealed at every refresh), needs sign-in. */
	unsigned char settings[16];
	unsigned seen;    /* the reconcile round that last saw it (P.round) */
	bool signin_stop; /* push stopped at needs sign-in (the grant went) */
};

/* A zero-access user whose accounts are pushed while their lease lasts. */
struct unlocked_user {
	int64_t id;
	char name[65];
	int64_t *accounts;
	size_t n;
};

static struct {
	struct daemon *d;
	struct push_settings set;
	struct push_loop *loop;
	struct hub *hub;                /* the push thread's */
	struct hub *watch_hub;          /* the watch thread's */
	struct unlocked_user *unlocked; /* the watch thread's */
	size_t n_unlocked;
	pthread_t thread, metrics;
	bool running;
	volatile int stopping;
	pthread_mutex_t mu; /* accounts, round */
	struct provider_account *accounts;
	size_t n, cap;
	unsigned round; /* the scheduler's reconcile round */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

static bool find(int64_t id, struct provider_account *out)
{
	bool found = false;
	pthread_mutex_lock(&P.mu);
	for (size_t i = 0; i < P.n && !found; i++)
		if (P.accounts[i].id == id) {
			*out = P.accounts[i];
			found = true;
		}
	pthread_mutex_unlock(&P.mu);
	return found;
}

static void settings_hash(const struct hub_account *a, unsigned char out[16])
{
	crypto_generichash_state st;
	char num[64];
	crypto_generichash_init(&st, NULL, 0, 16);
	const char *parts[] = {a->imap_url, a->login, a->ca_file != NULL ? a->ca_file : ""};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		crypto_generichash_update(&st, (const unsigned char *)parts[i],
		                          strlen(parts[i]) + 1);
	int n = snprintf(num, sizeof(num), "%d %llu %d", a->oauth ? 1 : 0,
	                 a->oauth ? 0ULL : (unsigned long long)a->secret_version,
	                 a->needs_signin_since != 0 ? 1 : 0);
	if (n > 0 && (size_t)n < sizeof(num))
		crypto_generichash_update(&st, (const unsigned char *)num, (size_t)n);
	crypto_generichash_final(&st, out, 16);
}

static void mark_signin_stop(int64_t id)
{
	pthread_mutex_lock(&P.mu);
	for (size_t i = 0; i < P.n; i++)
		if (P.accounts[i].id == id)
			P.accounts[i].signin_stop = true;
	pthread_mutex_unlock(&P.mu);
}

static int credential(void *ctx, int64_t account, char *buf, size_t size, char *error,
                      size_t error_size)
{
	(void)ctx;
	struct provider_account pa;
	struct hub_user u;
	struct hub_account *accts = NULL;
	size_t n = 0;
	struct vault_kek *kek = NULL;
	const char *err;
	int r = -1;
	if (!find(account, &pa)) {
		snprintf(error, error_size, "account %lld is not pushed", (long long)account);
		return -2;
	}
	if (hub_user_get(P.hub, pa.user, &u, &err) < 0 ||
	    hub_account_list(P.hub, u.id, &accts, &n, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (accts[i].id != account)
			continue;
		/* A zero-access user's key from their lease (none: no login). */
		struct svc_passphrase lease = {.leases = P.d->leases};
		char *secret = NULL;
		if (svc_user_kek(P.hub, &u, &lease, "serve", &kek, error, error_size) < 0)
			break;
		/* An OAuth account: an access token (cached in locked memory
		 * until shortly before it expires, else refreshed, audited).
		 * SVC_NEEDS_SIGNIN: the grant is gone; the user has a notice
		 * and push stops for the account. */
		int o = svc_account_open_secret(P.hub, &u, &accts[i], kek, "sync", "imap-password",
		                                &secret, error, error_size);
		if (o < 0) {
			r = o == -2 ? -1 : -2;
			if (o == SVC_NEEDS_SIGNIN)
				mark_signin_stop(account);
			break;
		}
		size_t len = strlen(secret);
		if (len + 1 > size) {
			snprintf(error, error_size, "password too long");
			r = -2;
		} else {
			memcpy(buf, secret, len + 1);
			r = 0;
		}
		svc_secret_free(&secret);
		break;
	}
	if (r == -1 && error[0] == '\0')
		snprintf(error, error_size, "the account is gone");
	vault_kek_free(&kek);
	hub_accounts_free(&accts, n);
	return r;
}

static void token_refused(void *ctx, int64_t account)
{
	(void)ctx;
	svc_oauth_cache_forget(P.hub, account);
}

static void changed(void *ctx, int64_t account, const char *folder)
{
	(void)ctx;
	struct provider_account pa;
	if (find(account, &pa))
		daemon_account_changed(P.d, pa.user, account, folder);
}

static void report(void *ctx, int64_t account, bool stopped, const char *message)
{
	(void)ctx;
	struct provider_account pa;
	const char *user = find(account, &pa) ? pa.user : NULL;
	if (stopped)
		daemon_log(DAEMON_LOG_ERROR, user, account,
		           "provider push stopped (not retried until the account is changed or "
		           "serve restarts): %s",
		           message);
	else
		daemon_log(DAEMON_LOG_INFO, user, account, "provider push: %s; reconnecting",
		           message);
}

static void login(void *ctx, int64_t account, bool ok)
{
	(void)ctx;
	struct provider_account pa;
	struct hub_user u;
	const char *err;
	if (!find(account, &pa) || hub_user_get(P.hub, pa.user, &u, &err) < 0)
		return;
	struct audit_detail det[] = {
	    {"server", pa.server}, {"mechanism", "push"}, {"result", ok ? "ok" : "failed"}};
	if (hub_audit(P.hub, &u, AUDIT_PROVIDER_LOGIN, account, det, 3, &err) < 0)
		daemon_log(DAEMON_LOG_ERROR, pa.user, account, "%s", err);
}

int daemon_provider_account_start(const char *user, const struct hub_account *a)
{
	const char *err;
	if (a->needs_signin_since != 0) {
		daemon_log(DAEMON_LOG_INFO, user, a->id,
		           "provider push: not until the account is signed in again");
		return -1;
	}
	pthread_mutex_lock(&P.mu);
	if (P.loop == NULL) {
		pthread_mutex_unlock(&P.mu);
		return -1;
	}
	size_t i;
	for (i = 0; i < P.n && P.accounts[i].id != a->id; i++)
		;
	if (i == P.n) {
		if (P.n == P.cap) {
			size_t cap = P.cap ? P.cap * 2 : 16;
			struct provider_account *na = realloc(P.accounts, cap * sizeof(*na));
			if (na == NULL) {
				pthread_mutex_unlock(&P.mu);
				return -1;
			}
			P.accounts = na;
			P.cap = cap;
		}
		P.n++;
	}
	P.accounts[i].id = a->id;
	snprintf(P.accounts[i].user, sizeof(P.accounts[i].user), "%s", user);
	snprintf(P.accounts[i].server, sizeof(P.accounts[i].server), "%s", a->imap_url);
	settings_hash(a, P.accounts[i].settings);
	P.accounts[i].seen = P.round;
	P.accounts[i].signin_stop = false;
	pthread_mutex_unlock(&P.mu);
	struct push_account_config cfg = {.id = a->id,
	                                  .url = a->imap_url,
	                                  .login = a->login,
	                                  .ca_file = a->ca_file,
	                                  .oauth = a->oauth};
	if (push_account_add(P.loop, &cfg, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, user, a->id, "provider push: %s", err);
		return -1;
	}
	return 0;
}

void daemon_provider_account_stop(int64_t account_id)
{
	pthread_mutex_lock(&P.mu);
	for (size_t i = 0; i < P.n; i++)
		if (P.accounts[i].id == account_id) {
			P.accounts[i] = P.accounts[--P.n];
			break;
		}
	struct push_loop *loop = P.loop;
	pthread_mutex_unlock(&P.mu);
	if (loop != NULL)
		push_account_remove(loop, account_id);
}

void daemon_provider_user_stop(const char *user)
{
	for (;;) {
		int64_t id = 0;
		pthread_mutex_lock(&P.mu);
		for (size_t i = 0; i < P.n && id == 0; i++)
			if (strcmp(P.accounts[i].user, user) == 0)
				id = P.accounts[i].id;
		pthread_mutex_unlock(&P.mu);
		if (id == 0)
			return;
		daemon_provider_account_stop(id);
	}
}

/* --- the scheduler's reconcile with hub.db ---------------------------------- */

void daemon_provider_round_begin(void)
{
	pthread_mutex_lock(&P.mu);
	P.round++;
	pthread_mutex_unlock(&P.mu);
}

void daemon_provider_round_account(const char *user, const struct hub_account *a,
                                   struct daemon_push_reconcile *r)
{
	unsigned char h[16];
	settings_hash(a, h);
	bool known = false, same = false;
	pthread_mutex_lock(&P.mu);
	if (P.loop == NULL) {
		pthread_mutex_unlock(&P.mu);
		return;
	}
	for (size_t i = 0; i < P.n; i++)
		if (P.accounts[i].id == a->id) {
			known = true;
			/* Stopped when the grant went, and signed in again
			 * before this round saw it marked: a restart too. */
			same = memcmp(P.accounts[i].settings, h, sizeof(h)) == 0 &&
			       strcmp(P.accounts[i].user, user) == 0 &&
			       !(P.accounts[i].signin_stop && a->needs_signin_since == 0);
			P.accounts[i].seen = P.round;
			break;
		}
	pthread_mutex_unlock(&P.mu);
	if (known && same)
		return;
	if (a->needs_signin_since != 0) {
		if (known) { /* the grant went: push stopped at it, or stops now */
			daemon_provider_account_stop(a->id);
			r->stopped++;
		}
		return;
	}
	if (daemon_provider_account_start(user, a) == 0) {
		daemon_log(DAEMON_LOG_INFO, user, a->id, "provider push: %s",
		           known ? "the account changed: reconnecting" : "a new account: pushing");
		if (known)
			r->restarted++;
		else
			r->started++;
	}
}

void daemon_provider_round_user_keep(const char *user)
{
	pthread_mutex_lock(&P.mu);
	for (size_t i = 0; i < P.n; i++)
		if (strcmp(P.accounts[i].user, user) == 0)
			P.accounts[i].seen = P.round;
	pthread_mutex_unlock(&P.mu);
}

void daemon_provider_round_end(struct daemon_push_reconcile *r)
{
	for (;;) {
		struct provider_account pa = {0};
		pthread_mutex_lock(&P.mu);
		for (size_t i = 0; i < P.n && pa.id == 0; i++)
			if (P.accounts[i].seen != P.round)
				pa = P.accounts[i];
		pthread_mutex_unlock(&P.mu);
		if (pa.id == 0)
			return;
		daemon_log(DAEMON_LOG_INFO, pa.user, pa.id,
		           "provider push: the account is gone: push stopped");
		daemon_provider_account_stop(pa.id);
		r->stopped++;
	}
}

static void *loop_thread(void *arg)
{
	(void)arg;
	push_loop_run(P.loop);
	return NULL;
}

bool daemon_provider_account_idle(int64_t account_id, double *since_r)
{
	pthread_mutex_lock(&P.mu);
	bool idle = P.loop != NULL && push_account_idle_since(P.loop, account_id, since_r);
	pthread_mutex_unlock(&P.mu);
	return idle;
}

const char *daemon_provider_account_state(int64_t account_id)
{
	enum push_state state;
	const char *name = NULL;
	pthread_mutex_lock(&P.mu);
	if (P.loop != NULL) {
		name = "off";
		if (push_account_state(P.loop, account_id, &state)) {
			switch (state) {
			case PUSH_STATE_CONNECTING:
			case PUSH_STATE_AUTHENTICATING:
				name = "connecting";
				break;
			case PUSH_STATE_IDLE:
				name = "idle";
				break;
			case PUSH_STATE_BACKOFF:
				name = "backoff";
				break;
			case PUSH_STATE_STOPPED:
			case PUSH_STATE_COUNT:
				break;
			}
		}
	}
	pthread_mutex_unlock(&P.mu);
	return name;
}

unsigned daemon_provider_pending(void)
{
	unsigned c[PUSH_STATE_COUNT] = {0};
	pthread_mutex_lock(&P.mu);
	if (P.loop != NULL)
		push_loop_counts(P.loop, c, NULL);
	pthread_mutex_unlock(&P.mu);
	return c[PUSH_STATE_CONNECTING] + c[PUSH_STATE_AUTHENTICATING];
}

/* --- zero-access users: push while the lease lasts --------------------------- */

static struct unlocked_user *unlocked_find(int64_t user_id)
{
	for (size_t i = 0; i < P.n_unlocked; i++)
		if (P.unlocked[i].id == user_id)
			return &P.unlocked[i];
	return NULL;
}

/* The lease of u opened: push its accounts. */
static void unlocked_add(const struct hub_user *u)
{
	const char *err;
	struct hub_account *accts = NULL;
	size_t n = 0;
	struct unlocked_user *na = realloc(P.unlocked, (P.n_unlocked + 1) * sizeof(*P.unlocked));
	if (na == NULL)
		return;
	P.unlocked = na;
	if (hub_account_list(P.watch_hub, u->id, &accts, &n, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, u->name, 0, "provider push: %s", err);
		return; /* tried again at the next look */
	}
	struct unlocked_user *e = &P.unlocked[P.n_unlocked];
	memset(e, 0, sizeof(*e));
	e->id = u->id;
	snprintf(e->name, sizeof(e->name), "%s", u->name);
	e->accounts = n > 0 ? calloc(n, sizeof(*e->accounts)) : NULL;
	if (n > 0 && e->accounts == NULL) {
		hub_accounts_free(&accts, n);
		return;
	}
	P.n_unlocked++;
	for (size_t i = 0; i < n; i++)
		if (daemon_provider_account_start(u->name, &accts[i]) == 0)
			e->accounts[e->n++] = accts[i].id;
	hub_accounts_free(&accts, n);
	daemon_log(DAEMON_LOG_INFO, u->name, 0,
	           "provider push: %s unlocked: pushing %zu account%s while the lease lasts",
	           u->name, e->n, e->n == 1 ? "" : "s");
}

/* The lease of P.unlocked[i] was wiped (or the user is gone): stop. */
static void unlocked_remove(size_t i)
{
	struct unlocked_user *e = &P.unlocked[i];
	for (size_t k = 0; k < e->n; k++)
		daemon_provider_account_stop(e->accounts[k]);
	/* And those added while the lease was open (the scheduler's
	 * reconcile started them). */
	daemon_provider_user_stop(e->name);
	daemon_log(DAEMON_LOG_INFO, e->name, 0,
	           "provider push: %s locked: push of %zu account%s stopped", e->name, e->n,
	           e->n == 1 ? "" : "s");
	free(e->accounts);
	P.unlocked[i] = P.unlocked[--P.n_unlocked];
}

/* One look at the leases: push starts for each zero-access user whose lease
 * is open, stops for each whose lease went (or who went). */
static void leases_look(void)
{
	const char *err;
	struct hub_user *users = NULL;
	size_t n = 0;
	if (hub_user_list(P.watch_hub, &users, &n, &err) < 0)
		return; /* the hub busy: the next look */
	for (size_t i = P.n_unlocked; i-- > 0;) {
		bool held = false;
		for (size_t u = 0; u < n && !held; u++)
			held = users[u].id == P.unlocked[i].id &&
			       svc_lease_held(P.d->leases, users[u].id, NULL);
		if (!held)
			unlocked_remove(i);
	}
	for (size_t u = 0; u < n && !P.stopping; u++)
		if (users[u].zero_access && unlocked_find(users[u].id) == NULL &&
		    svc_lease_held(P.d->leases, users[u].id, NULL))
			unlocked_add(&users[u]);
	free(users);
}

/* The watch thread: the leases twice a second, /metrics' connections by
 * state every 2 s. */
static void *watch_thread(void *arg)
{
	(void)arg;
	for (unsigned tick = 0; !P.stopping; tick++) {
		if (P.watch_hub != NULL)
			leases_look();
		if (tick % 4 == 0) {
			unsigned c[PUSH_STATE_COUNT];
			push_loop_counts(P.loop, c, NULL);
			for (int s = 0; s < PUSH_STATE_COUNT; s++)
				daemon_metrics_set_push(push_state_name((enum push_state)s), c[s]);
		}
		for (int i = 0; i < 5 && !P.stopping; i++)
			usleep(100000);
	}
	/* Serve stops: the loop goes with every account; only the records. */
	for (size_t i = 0; i < P.n_unlocked; i++)
		free(P.unlocked[i].accounts);
	P.n_unlocked = 0;
	free(P.unlocked);
	P.unlocked = NULL;
	return NULL;
}

static int start(struct daemon *d, void *ctx)
{
	(void)ctx;
	const char *err;
	struct hub_user *users = NULL;
	size_t nusers = 0;
	struct push_callbacks cb = {.credential = credential,
	                            .token_refused = token_refused,
	                            .changed = changed,
	                            .report = report,
	                            .login = login};
	P.d = d;
	P.stopping = 0;
	if (hub_open(daemon_data_dir(d), true, &P.hub, &err) < 0 ||
	    hub_open(daemon_data_dir(d), false, &P.watch_hub, &err) < 0 ||
	    push_loop_new(&P.set, &cb, &P.loop, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "provider push: %s", err);
		hub_close(&P.hub);
		hub_close(&P.watch_hub);
		return -1;
	}
	unsigned started = 0;
	if (hub_user_list(P.hub, &users, &nusers, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "provider push: %s", err);
	} else {
		for (size_t u = 0; u < nusers; u++) {
			struct hub_account *accts = NULL;
			size_t n = 0;
			if (users[u].zero_access)
				continue; /* while a lease is open (watch_thread) */
			if (hub_account_list(P.hub, users[u].id, &accts, &n, &err) < 0) {
				daemon_log(DAEMON_LOG_ERROR, users[u].name, 0, "provider push: %s",
				           err);
				continue;
			}
			for (size_t i = 0; i < n; i++)
				started +=
				    daemon_provider_account_start(users[u].name, &accts[i]) == 0;
			hub_accounts_free(&accts, n);
		}
		free(users);
	}
	daemon_log(DAEMON_LOG_INFO, NULL, 0, "provider push: %u accounts", started);
	pthread_create(&P.thread, NULL, loop_thread, NULL);
	pthread_create(&P.metrics, NULL, watch_thread, NULL);
	P.running = true;
	return 0;
}

static void stop(struct daemon *d, void *ctx)
{
	(void)d;
	(void)ctx;
	if (!P.running)
		return;
	P.stopping = 1;
	push_loop_stop(P.loop);
	pthread_join(P.thread, NULL);
	pthread_join(P.metrics, NULL);
	pthread_mutex_lock(&P.mu);
	struct push_loop *loop = P.loop;
	P.loop = NULL;
	free(P.accounts);
	P.accounts = NULL;
	P.n = P.cap = 0;
	pthread_mutex_unlock(&P.mu);
	push_loop_free(&loop);
	hub_close(&P.hub);
	hub_close(&P.watch_hub);
	P.running = false;
}

int daemon_provider_register(const struct daemon_push_settings *settings)
{
	memset(&P.set, 0, sizeof(P.set));
	if (settings != NULL) {
		P.set.status_interval_s = settings->sweep_interval;
		P.set.connect_rate = settings->connect_rate;
		P.set.idle_renew_s = settings->idle_restart;
		P.set.no_notify = settings->no_notify;
	}
	struct daemon_job job = {.name = "provider push", .start = start, .stop = stop};
	return daemon_job_add(&job);
}
