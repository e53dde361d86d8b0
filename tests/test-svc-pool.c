/*
 * Warm sync sessions (src/service/svc-pool.c) with real sessions on a real
 * Dovecot (tests/fixture/dovecot.sh): take gives back the parked session
 * only for its (user, account) and fingerprint; the bound evicts the least
 * recently parked; drops by account, by user, by hub.db (keep_accounts,
 * keep_users); the sweep closes expired sessions and a zero-access user's
 * once their lease is gone; a pool turned off keeps nothing; takes are
 * exclusive across threads; freeing the pool logs every session out
 * (Dovecot's log says "Logged out"). Skipped (77) without Dovecot.
 */
#include "service/svc-pool.h"

#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hub/hub.h"
#include "imap/imap-client.h"
#include "lib/clock.h"
#include "service/svc-lease.h"
#include "test.h"
#include "test-dovecot.h"

static char hubdir[64];

static void cleanup(void)
{
	dovecot_stop();
	if (hubdir[0] != '\0') {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", hubdir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n", hubdir);
		hubdir[0] = '\0';
	}
}

/* Lines of Dovecot's log that say a session ended with LOGOUT. */
static unsigned logged_out(void)
{
	char path[256], line[2048];
	snprintf(path, sizeof(path), "%s/dovecot.log", dovecot_dir);
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, "imap(") != NULL && strstr(line, "Logged out") != NULL;
	fclose(f);
	return n;
}

/* Dovecot writes its log line as the session's process ends: wait for it
 * (30 s at most, polling). */
static bool wait_logged_out(unsigned want)
{
	for (int i = 0; i < 300; i++) {
		if (logged_out() >= want)
			return true;
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return false;
}

static unsigned parked(struct svc_pool *p)
{
	struct svc_pool_stats st;
	svc_pool_stats(p, &st);
	return st.parked;
}

struct racer {
	struct svc_pool *pool;
	const unsigned char *fp;
	atomic_int *holders;
	unsigned took, clashes;
};

/* Take and put the one session back, many times: never two holders. */
static void *race(void *context)
{
	struct racer *r = context;
	struct svc_pool_ticket tk;
	for (int i = 0; i < 2000; i++) {
		struct imap_client *c = svc_pool_take(r->pool, 1, 1, r->fp, &tk);
		if (c == NULL)
			continue;
		r->took++;
		if (atomic_fetch_add(r->holders, 1) != 0)
			r->clashes++;
		atomic_fetch_sub(r->holders, 1);
		svc_pool_put(r->pool, 1, 1, r->fp, false, &tk, NULL, &c);
	}
	return NULL;
}

int main(void)
{
	if (access("/usr/sbin/dovecot", X_OK) != 0) {
		printf("test-svc-pool: skipped (no Dovecot installed)\n");
		return 77;
	}
	CHECK(sodium_init() >= 0);
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup);
	dovecot_start("mk-test-svc-pool", NULL);
	const char *error;
	unsigned char fa[SVC_POOL_FINGERPRINT], fb[SVC_POOL_FINGERPRINT];

	/* Fingerprints: the same account, the same; a new secret version, the
	 * URL, the login or needs sign-in: another. */
	struct hub_account acct = {.id = 20,
	                           .imap_url = "imaps://127.0.0.1:993",
	                           .login = "alice",
	                           .secret_version = 1,
	                           .key_version = 1};
	svc_pool_fingerprint(&acct, fa);
	svc_pool_fingerprint(&acct, fb);
	CHECK(memcmp(fa, fb, sizeof(fa)) == 0);
	acct.secret_version = 2;
	svc_pool_fingerprint(&acct, fb);
	CHECK(memcmp(fa, fb, sizeof(fa)) != 0);
	acct.secret_version = 1;
	acct.login = "bob";
	svc_pool_fingerprint(&acct, fb);
	CHECK(memcmp(fa, fb, sizeof(fa)) != 0);
	acct.login = "alice";
	acct.needs_signin_since = 5;
	svc_pool_fingerprint(&acct, fb);
	CHECK(memcmp(fa, fb, sizeof(fa)) != 0);
	acct.needs_signin_since = 0;

	struct svc_pool *pool = svc_pool_create(2, 60);
	CHECK(pool != NULL && svc_pool_enabled(pool));
	struct svc_pool_stats st;
	struct svc_pool_ticket tk;

	/* Parked and taken back: the same session, alive; only for its key and
	 * fingerprint. */
	struct imap_client *c = dovecot_login(), *first = c;
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 1, 10, fa, false, &tk, NULL, &c);
	CHECK(c == NULL && parked(pool) == 1);
	CHECK(svc_pool_take(pool, 1, 11, fa, &tk) == NULL &&
	      svc_pool_take(pool, 2, 10, fa, &tk) == NULL);
	c = svc_pool_take(pool, 1, 10, fa, &tk);
	CHECK(c == first && parked(pool) == 0);
	OK(imap_client_noop(c, SVC_POOL_NOOP_MS, &error));
	CHECK(svc_pool_take(pool, 1, 10, fa, &tk) == NULL); /* exclusive */
	svc_pool_put(pool, 1, 10, fa, false, &tk, NULL, &c);
	CHECK(svc_pool_take(pool, 1, 10, fb, &tk) == NULL); /* another fingerprint: closed */
	svc_pool_stats(pool, &st);
	CHECK(st.parked == 0 && st.stale == 1 && st.hit == 1 && st.put == 2);
	CHECK(svc_pool_take(pool, 1, 10, fa, &tk) == NULL);

	/* At most 2: the least recently parked goes. */
	for (int64_t a = 1; a <= 3; a++) {
		c = dovecot_login();
		svc_pool_ticket_now(pool, &tk);
		svc_pool_put(pool, 1, a, fa, false, &tk, NULL, &c);
	}
	svc_pool_stats(pool, &st);
	CHECK(st.parked == 2 && st.evicted == 1);
	CHECK(svc_pool_take(pool, 1, 1, fa, &tk) == NULL);
	c = svc_pool_take(pool, 1, 3, fa, &tk);
	CHECK(c != NULL);
	svc_pool_put(pool, 1, 3, fa, false, &tk, NULL, &c);

	/* Drops by account and by user. */
	CHECK(svc_pool_drop_account(pool, 2) == 1 && parked(pool) == 1);
	CHECK(svc_pool_drop_account(pool, 2) == 0);
	CHECK(svc_pool_drop_user(pool, 1) == 1 && parked(pool) == 0);

	/* A session in use (taken, or a login after a take that gave none)
	 * when its account or user is dropped is closed, not parked again; a
	 * drop of others leaves it be; too many drops since its take: closed
	 * (the records are gone). */
	svc_pool_ticket_now(pool, &tk);
	c = dovecot_login();
	svc_pool_put(pool, 1, 5, fa, false, &tk, NULL, &c);
	c = svc_pool_take(pool, 1, 5, fa, &tk);
	CHECK(c != NULL && svc_pool_drop_account(pool, 5) == 0);
	svc_pool_stats(pool, &st);
	unsigned long long dropped = st.dropped;
	svc_pool_put(pool, 1, 5, fa, false, &tk, NULL, &c);
	svc_pool_stats(pool, &st);
	CHECK(c == NULL && st.parked == 0 && st.dropped == dropped + 1);
	CHECK(svc_pool_take(pool, 1, 6, fa, &tk) == NULL);
	CHECK(svc_pool_drop_user(pool, 1) == 0);
	c = dovecot_login();
	svc_pool_put(pool, 1, 6, fa, false, &tk, NULL, &c);
	CHECK(c == NULL && parked(pool) == 0);
	CHECK(svc_pool_take(pool, 2, 7, fa, &tk) == NULL);
	CHECK(svc_pool_drop_account(pool, 5) == 0 && svc_pool_drop_user(pool, 1) == 0);
	c = dovecot_login();
	svc_pool_put(pool, 2, 7, fa, false, &tk, NULL, &c);
	CHECK(parked(pool) == 1);
	c = svc_pool_take(pool, 2, 7, fa, &tk);
	CHECK(c != NULL);
	for (int64_t a = 100; a < 2000; a++)
		svc_pool_drop_account(pool, a);
	svc_pool_put(pool, 2, 7, fa, false, &tk, NULL, &c);
	CHECK(c == NULL && parked(pool) == 0);

	/* hub.db as it is now: a session of an account gone, or changed, goes;
	 * one whose account is unchanged stays; so do other users'. */
	svc_pool_fingerprint(&acct, fa);
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 7, 20, fa, false, &tk, NULL, &c);
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 7, 21, fa, false, &tk, NULL, &c);
	CHECK(svc_pool_keep_accounts(pool, 7, &acct, 1) == 1 && parked(pool) == 1);
	CHECK(svc_pool_keep_accounts(pool, 8, NULL, 0) == 0 && parked(pool) == 1);
	acct.secret_version = 3; /* a new password */
	CHECK(svc_pool_keep_accounts(pool, 7, &acct, 1) == 1 && parked(pool) == 0);
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 7, 20, fa, false, &tk, NULL, &c);
	int64_t users[] = {1, 2};
	CHECK(svc_pool_keep_users(pool, users, 2) == 1 && parked(pool) == 0); /* user 7 purged */

	/* The sweep: kept too long. */
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 1, 1, fa, false, &tk, NULL, &c);
	CHECK(svc_pool_sweep(pool, clock_mono(), NULL) == 0 && parked(pool) == 1);
	CHECK(svc_pool_sweep(pool, clock_mono() + 61, NULL) == 1 && parked(pool) == 0);
	svc_pool_stats(pool, &st);
	CHECK(st.expired == 1);

	/* A session's total age is bounded: one logged in SVC_POOL_MAX_AGE
	 * ago is closed by the take and by the sweep, however recently it was
	 * parked; a take keeps the login's time for the next put. */
	svc_pool_ticket_now(pool, &tk);
	double login_at = tk.created;
	c = dovecot_login();
	svc_pool_put(pool, 1, 1, fa, false, &tk, NULL, &c);
	c = svc_pool_take(pool, 1, 1, fa, &tk);
	CHECK(c != NULL && tk.created == login_at);
	tk.created = clock_mono() - SVC_POOL_MAX_AGE - 1;
	svc_pool_put(pool, 1, 1, fa, false, &tk, NULL, &c);
	CHECK(parked(pool) == 1 && svc_pool_take(pool, 1, 1, fa, &tk) == NULL);
	svc_pool_stats(pool, &st);
	CHECK(st.expired == 2 && st.parked == 0);
	svc_pool_ticket_now(pool, &tk);
	tk.created = clock_mono() - SVC_POOL_MAX_AGE + 30;
	c = dovecot_login();
	svc_pool_put(pool, 1, 1, fa, false, &tk, NULL, &c);
	CHECK(svc_pool_sweep(pool, clock_mono(), NULL) == 0 && parked(pool) == 1);
	CHECK(svc_pool_sweep(pool, clock_mono() + 31, NULL) == 1 && parked(pool) == 0);

	/* A zero-access user's session lasts while their lease does. */
	snprintf(hubdir, sizeof(hubdir), "/tmp/mk-test-svc-pool-hub-XXXXXX");
	CHECK(mkdtemp(hubdir) != NULL);
	bool existed;
	static const char pass[] = "dana's passphrase";
	struct hub *hub;
	OK(hub_create(hubdir, NULL, &existed, &error));
	OK(hub_open(hubdir, true, &hub, &error));
	OK(hub_user_add(hub, "dana", pass, true, pass, &error));
	struct hub_user dana;
	OK(hub_user_get(hub, "dana", &dana, &error));
	char tok[HUB_DEVICE_TOKEN_SIZE], lerr[1024];
	int64_t dev;
	OK(hub_device_add(hub, &dana, "laptop", tok, &dev, &error));
	pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
	struct svc_leases *leases = svc_leases_create(hub, &hub_lock);
	CHECK(leases != NULL);
	time_t until;
	CHECK(svc_lease_signin(leases, &dana, pass, dev, time(NULL), 600, &until, lerr,
	                       sizeof(lerr)) == 1);
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, dana.id, 30, fa, true, &tk, leases, &c);
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	/* A server-key user's: not a lease's. */
	svc_pool_put(pool, dana.id + 1, 1, fa, false, &tk, NULL, &c);
	CHECK(svc_pool_sweep(pool, clock_mono(), leases) == 0 && parked(pool) == 2);
	CHECK(svc_lease_release(leases, dana.id, dev, "signout") == 1);
	CHECK(svc_pool_sweep(pool, clock_mono(), leases) == 1 && parked(pool) == 1);
	/* A sync that took before the lease ended parks nothing. */
	svc_pool_ticket_now(pool, &tk);
	c = dovecot_login();
	svc_pool_put(pool, dana.id, 30, fa, true, &tk, leases, &c);
	CHECK(c == NULL && parked(pool) == 1);
	CHECK(svc_pool_take(pool, dana.id, 30, fa, &tk) == NULL);
	svc_leases_free(&leases);
	hub_close(&hub);

	/* Takes are exclusive across threads. */
	CHECK(svc_pool_drop_user(pool, dana.id + 1) == 1);
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 1, 1, fa, false, &tk, NULL, &c);
	atomic_int holders = 0;
	struct racer r[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.pool = pool, .fp = fa, .holders = &holders};
		CHECK(pthread_create(&t[i], NULL, race, &r[i]) == 0);
	}
	unsigned took = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(r[i].clashes == 0);
		took += r[i].took;
	}
	CHECK(took > 0 && parked(pool) == 1);

	/* Freeing the pool logs the parked sessions out. */
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 1, 2, fa, false, &tk, NULL, &c);
	CHECK(parked(pool) == 2);
	unsigned before = logged_out();
	svc_pool_free(&pool);
	CHECK(pool == NULL);
	CHECK(wait_logged_out(before + 2));

	/* Turned off: nothing kept, the session logged out at once. */
	pool = svc_pool_create(64, 0);
	CHECK(pool != NULL && !svc_pool_enabled(pool));
	before = logged_out();
	c = dovecot_login();
	svc_pool_ticket_now(pool, &tk);
	svc_pool_put(pool, 1, 1, fa, false, &tk, NULL, &c);
	CHECK(c == NULL && parked(pool) == 0 && svc_pool_take(pool, 1, 1, fa, &tk) == NULL);
	CHECK(wait_logged_out(before + 1));
	svc_pool_free(&pool);
	svc_pool_free(&pool); /* NULL: nothing */

	cleanup();
	TEST_DONE("test-svc-pool");
}
