/* serve's sign-in gate (see daemon-signin.h). */
#include "daemon-signin.h"

#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "lib/ratelimit.h"

#define DAEMON_SIGNIN_SLOTS 1024

struct daemon_signin_gate {
	struct rate_limit *users, *addresses, *global;
	sem_t hashing;
};

struct daemon_signin_gate *daemon_signin_gate_create(void)
{
	struct daemon_signin_gate *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	/* Half the processors (rounded up): the rest stay free for requests. */
	long half = cpus < 1 ? 1 : (cpus + 1) / 2;
	unsigned turns = half > DAEMON_SIGNIN_MAX_HASHING ? DAEMON_SIGNIN_MAX_HASHING : (unsigned)half;
	g->users = rate_limit_create(DAEMON_SIGNIN_SLOTS, DAEMON_SIGNIN_PER_USER, DAEMON_SIGNIN_WINDOW);
	g->addresses = rate_limit_create(DAEMON_SIGNIN_SLOTS, DAEMON_SIGNIN_PER_ADDRESS, DAEMON_SIGNIN_WINDOW);
	g->global = rate_limit_create(1, DAEMON_SIGNIN_GLOBAL, DAEMON_SIGNIN_WINDOW);
	if (g->users == NULL || g->addresses == NULL || g->global == NULL ||
	    sem_init(&g->hashing, 0, turns) != 0) {
		rate_limit_free(&g->users);
		rate_limit_free(&g->addresses);
		rate_limit_free(&g->global);
		free(g);
		return NULL;
	}
	return g;
}

void daemon_signin_gate_free(struct daemon_signin_gate **gate)
{
	if (*gate == NULL)
		return;
	rate_limit_free(&(*gate)->users);
	rate_limit_free(&(*gate)->addresses);
	rate_limit_free(&(*gate)->global);
	sem_destroy(&(*gate)->hashing);
	free(*gate);
	*gate = NULL;
}

/* The key addr is counted under; an unparsable address (never from the
 * HTTP layer) shares one key. */
static void address_key(const char *addr, char *key, size_t size)
{
	if (http_address_prefix(addr, key, size) < 0)
		snprintf(key, size, "?");
}

int daemon_signin_password_begin(struct daemon_signin_gate *gate, const char *user, const char *addr,
                          unsigned *retry_after_r)
{
	char akey[RATE_LIMIT_MAX_KEY], ukey[RATE_LIMIT_MAX_KEY];
	address_key(addr, akey, sizeof(akey));
	snprintf(ukey, sizeof(ukey), "%s", user != NULL ? user : "");
	time_t now = time(NULL);
	if (rate_limit_take(gate->addresses, akey, now, retry_after_r) < 0)
		return -1;
	if (user != NULL && rate_limit_take(gate->users, ukey, now, retry_after_r) < 0) {
		rate_limit_give_back(gate->addresses, akey, now);
		return -1;
	}
	if (rate_limit_take(gate->global, "*", now, retry_after_r) < 0) {
		rate_limit_give_back(gate->addresses, akey, now);
		if (user != NULL)
			rate_limit_give_back(gate->users, ukey, now);
		return -1;
	}
	return 0;
}

void daemon_signin_password_ok(struct daemon_signin_gate *gate, const char *user, const char *addr)
{
	char akey[RATE_LIMIT_MAX_KEY];
	address_key(addr, akey, sizeof(akey));
	time_t now = time(NULL);
	rate_limit_give_back(gate->addresses, akey, now);
	rate_limit_give_back(gate->users, user, now);
	rate_limit_give_back(gate->global, "*", now);
}

void daemon_signin_token_failed(struct daemon_signin_gate *gate, const char *addr)
{
	char akey[RATE_LIMIT_MAX_KEY];
	address_key(addr, akey, sizeof(akey));
	rate_limit_take(gate->addresses, akey, time(NULL), NULL);
}

bool daemon_signin_address_blocked(struct daemon_signin_gate *gate, const char *addr, unsigned *retry_after_r)
{
	char akey[RATE_LIMIT_MAX_KEY];
	address_key(addr, akey, sizeof(akey));
	time_t now = time(NULL);
	/* Taking a unit and giving it back tells whether one is left. */
	if (rate_limit_take(gate->addresses, akey, now, retry_after_r) < 0)
		return true;
	rate_limit_give_back(gate->addresses, akey, now);
	return false;
}

int daemon_signin_hash_enter(struct daemon_signin_gate *gate)
{
	/* On the monotonic clock: a wall clock set back must not hold the
	 * waiters for longer than DAEMON_SIGNIN_HASH_WAIT. */
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += DAEMON_SIGNIN_HASH_WAIT;
	int r;
	while ((r = sem_clockwait(&gate->hashing, CLOCK_MONOTONIC, &until)) < 0 && errno == EINTR)
		;
	return r == 0 ? 0 : -1;
}

void daemon_signin_hash_leave(struct daemon_signin_gate *gate)
{
	sem_post(&gate->hashing);
}
