/* Warm sync sessions (svc-pool.h): a bounded table of logged-in IMAP
 * sessions, most recently parked first, closed outside the lock. */
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc-pool.h"
#include "svc-lease.h"
#include "../hub/hub.h"
#include "../imap/imap-client.h"
#include "../lib/clock.h"

struct pool_entry {
	struct pool_entry *prev, *next; /* prev: more recently parked */
	int64_t user_id, account_id;
	unsigned char fingerprint[SVC_POOL_FINGERPRINT];
	bool zero_access;
	double parked;  /* clock_mono() */
	double created; /* clock_mono() of the login: kept across takes and puts */
	struct imap_client *client;
};

/* The last drops, for the put's generation check: a drop of a user
 * (account_id 0) or of an account (user_id 0), made at generation gen. */
/* Enough for the scheduler's round to drop every signed-out zero-access
 * user of a large hub during one sync without costing it its parking. */
#define POOL_DROPS 1024
struct drop_record {
	int64_t user_id, account_id;
	uint64_t gen;
};

struct svc_pool {
	pthread_mutex_t lock;
	unsigned max, keep_seconds;
	struct pool_entry *head, *tail;
	struct svc_pool_stats stats; /* stats.parked: entries in the list */
	uint64_t gen;                /* drops made; the last in drops[(gen - 1) % POOL_DROPS] */
	struct drop_record drops[POOL_DROPS];
};

struct svc_pool *svc_pool_create(unsigned max, unsigned keep_seconds)
{
	struct svc_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->max = max;
	p->keep_seconds = keep_seconds;
	return p;
}

bool svc_pool_enabled(const struct svc_pool *pool)
{
	return pool != NULL && pool->max > 0 && pool->keep_seconds > 0;
}

void svc_pool_fingerprint(const struct hub_account *a, unsigned char out[SVC_POOL_FINGERPRINT])
{
	crypto_generichash_state st;
	char num[128];
	crypto_generichash_init(&st, NULL, 0, SVC_POOL_FINGERPRINT);
	const char *parts[] = {a->imap_url, a->login, a->ca_file != NULL ? a->ca_file : ""};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		crypto_generichash_update(&st, (const unsigned char *)parts[i],
		                          strlen(parts[i]) + 1);
	/* An OAuth account's refresh token is resealed when the provider
	 * rotates it (a new secret version): a new login then, which is rare
	 * and safe. */
	int n = snprintf(num, sizeof(num), "%d %llu %llu %d", a->oauth ? 1 : 0,
	                 (unsigned long long)a->secret_version, (unsigned long long)a->key_version,
	                 a->needs_signin_since != 0 ? 1 : 0);
	if (n > 0 && (size_t)n < sizeof(num))
		crypto_generichash_update(&st, (const unsigned char *)num, (size_t)n);
	crypto_generichash_final(&st, out, SVC_POOL_FINGERPRINT);
}

/* A drop of a user or an account (0: any) at a new generation (the lock
 * held). */
static void record_drop(struct svc_pool *p, int64_t user_id, int64_t account_id)
{
	p->gen++;
	p->drops[(p->gen - 1) % POOL_DROPS] =
	    (struct drop_record){.user_id = user_id, .account_id = account_id, .gen = p->gen};
}

/* Was (user_id, account_id) dropped after generation since? When the
 * records since then were overwritten: yes, to be safe (the lock held). */
static bool dropped_since(const struct svc_pool *p, uint64_t since, int64_t user_id,
                          int64_t account_id)
{
	if (p->gen == since)
		return false;
	if (since > p->gen || p->gen - since > POOL_DROPS)
		return true;
	for (uint64_t g = since + 1; g <= p->gen; g++) {
		const struct drop_record *d = &p->drops[(g - 1) % POOL_DROPS];
		if ((d->user_id == 0 || d->user_id == user_id) &&
		    (d->account_id == 0 || d->account_id == account_id))
			return true;
	}
	return false;
}

/* Unlink e from the table (the lock held). */
static void unlink_entry(struct svc_pool *p, struct pool_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		p->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		p->tail = e->prev;
	e->prev = e->next = NULL;
	p->stats.parked--;
}

/* Move e (unlinked) onto the list *closing (the lock held). */
static void detach(struct svc_pool *p, struct pool_entry *e, struct pool_entry **closing)
{
	unlink_entry(p, e);
	e->next = *closing;
	*closing = e;
}

/* How long one close of several sessions may spend on LOGOUTs in all: a
 * LOGOUT waits up to 2 s for its answer, so 64 unreachable sessions one
 * after another would take 128 s (more than systemd's stop timeout, and a
 * sync thread's sweep would stall as long). Past it the rest are freed
 * without LOGOUT (the server sees the connection close). */
#define POOL_CLOSE_BUDGET_S 3.0

/* LOGOUT and free every session on the list (the lock not held), LOGOUT
 * only within POOL_CLOSE_BUDGET_S. */
static void close_list(struct pool_entry *list)
{
	double until = clock_mono() + POOL_CLOSE_BUDGET_S;
	while (list != NULL) {
		struct pool_entry *e = list;
		list = e->next;
		if (clock_mono() < until)
			imap_client_logout(e->client);
		imap_client_free(&e->client);
		free(e);
	}
}

static void close_client(struct imap_client **client)
{
	if (*client == NULL)
		return;
	imap_client_logout(*client);
	imap_client_free(client);
}

void svc_pool_free(struct svc_pool **pool)
{
	struct svc_pool *p = *pool;
	if (p == NULL)
		return;
	close_list(p->head);
	pthread_mutex_destroy(&p->lock);
	free(p);
	*pool = NULL;
}

struct imap_client *svc_pool_take(struct svc_pool *pool, int64_t user_id, int64_t account_id,
                                  const unsigned char fingerprint[SVC_POOL_FINGERPRINT],
                                  struct svc_pool_ticket *ticket_r)
{
	struct pool_entry *closing = NULL, *found = NULL;
	double now = clock_mono();
	pthread_mutex_lock(&pool->lock);
	ticket_r->generation = pool->gen;
	ticket_r->created = now; /* none taken: a login follows */
	for (struct pool_entry *e = pool->head; e != NULL; e = e->next)
		if (e->user_id == user_id && e->account_id == account_id) {
			found = e;
			break;
		}
	struct imap_client *client = NULL;
	if (found != NULL) {
		if (memcmp(found->fingerprint, fingerprint, SVC_POOL_FINGERPRINT) != 0) {
			pool->stats.stale++;
			detach(pool, found, &closing);
		} else if (now - found->parked >= pool->keep_seconds ||
		           now - found->created >= SVC_POOL_MAX_AGE) {
			pool->stats.expired++;
			detach(pool, found, &closing);
		} else {
			pool->stats.hit++;
			ticket_r->created = found->created;
			unlink_entry(pool, found);
			client = found->client;
			free(found);
		}
	}
	pthread_mutex_unlock(&pool->lock);
	close_list(closing);
	return client;
}

void svc_pool_ticket_now(struct svc_pool *pool, struct svc_pool_ticket *ticket_r)
{
	pthread_mutex_lock(&pool->lock);
	ticket_r->generation = pool->gen;
	pthread_mutex_unlock(&pool->lock);
	ticket_r->created = clock_mono();
}

void svc_pool_put(struct svc_pool *pool, int64_t user_id, int64_t account_id,
                  const unsigned char fingerprint[SVC_POOL_FINGERPRINT], bool zero_access,
                  const struct svc_pool_ticket *ticket, struct svc_leases *leases,
                  struct imap_client **client)
{
	struct pool_entry *e = NULL, *closing = NULL;
	if (!svc_pool_enabled(pool) || *client == NULL || !imap_client_is_open(*client) ||
	    (e = calloc(1, sizeof(*e))) == NULL) {
		close_client(client);
		return;
	}
	e->user_id = user_id;
	e->account_id = account_id;
	memcpy(e->fingerprint, fingerprint, SVC_POOL_FINGERPRINT);
	e->zero_access = zero_access;
	e->parked = clock_mono();
	e->created = ticket->created > 0 ? ticket->created : e->parked;
	e->client = *client;
	*client = NULL;
	pthread_mutex_lock(&pool->lock);
	if (dropped_since(pool, ticket->generation, user_id, account_id)) {
		pool->stats.dropped++;
		pthread_mutex_unlock(&pool->lock);
		e->next = NULL;
		close_list(e);
		return;
	}
	for (struct pool_entry *o = pool->head; o != NULL; o = o->next)
		if (o->user_id == user_id && o->account_id == account_id) {
			pool->stats.dropped++;
			detach(pool, o, &closing);
			break;
		}
	e->next = pool->head;
	if (pool->head != NULL)
		pool->head->prev = e;
	pool->head = e;
	if (pool->tail == NULL)
		pool->tail = e;
	pool->stats.parked++;
	pool->stats.put++;
	while (pool->stats.parked > pool->max) {
		pool->stats.evicted++;
		detach(pool, pool->tail, &closing);
	}
	pthread_mutex_unlock(&pool->lock);
	close_list(closing);
	/* Parked first, checked then: a lease that ends after this check is
	 * followed by a sweep or a drop of the user, which finds the entry. */
	if (zero_access && leases != NULL && !svc_lease_held(leases, user_id, NULL))
		svc_pool_drop_user(pool, user_id);
}

/* Close every entry match() says yes to; counts them under *counter. */
typedef bool drop_match_fn(const struct pool_entry *e, const void *ctx);

static unsigned drop_where(struct svc_pool *pool, drop_match_fn *match, const void *ctx,
                           unsigned long long *counter)
{
	struct pool_entry *closing = NULL;
	unsigned n = 0;
	if (pool == NULL)
		return 0;
	pthread_mutex_lock(&pool->lock);
	for (struct pool_entry *e = pool->head, *next; e != NULL; e = next) {
		next = e->next;
		if (match(e, ctx)) {
			detach(pool, e, &closing);
			n++;
		}
	}
	*counter += n;
	pthread_mutex_unlock(&pool->lock);
	close_list(closing);
	return n;
}

static bool match_account(const struct pool_entry *e, const void *ctx)
{
	return e->account_id == *(const int64_t *)ctx;
}

static bool match_user(const struct pool_entry *e, const void *ctx)
{
	return e->user_id == *(const int64_t *)ctx;
}

unsigned svc_pool_drop_account(struct svc_pool *pool, int64_t account_id)
{
	if (pool == NULL)
		return 0;
	pthread_mutex_lock(&pool->lock);
	record_drop(pool, 0, account_id);
	pthread_mutex_unlock(&pool->lock);
	return drop_where(pool, match_account, &account_id, &pool->stats.dropped);
}

unsigned svc_pool_drop_user(struct svc_pool *pool, int64_t user_id)
{
	if (pool == NULL)
		return 0;
	pthread_mutex_lock(&pool->lock);
	record_drop(pool, user_id, 0);
	pthread_mutex_unlock(&pool->lock);
	return drop_where(pool, match_user, &user_id, &pool->stats.dropped);
}

struct keep_accounts {
	int64_t user_id;
	const struct hub_account *accts;
	size_t n;
};

static bool match_not_kept_account(const struct pool_entry *e, const void *ctx)
{
	const struct keep_accounts *k = ctx;
	if (e->user_id != k->user_id)
		return false;
	for (size_t i = 0; i < k->n; i++)
		if (k->accts[i].id == e->account_id) {
			unsigned char fp[SVC_POOL_FINGERPRINT];
			svc_pool_fingerprint(&k->accts[i], fp);
			return memcmp(fp, e->fingerprint, sizeof(fp)) != 0;
		}
	return true;
}

unsigned svc_pool_keep_accounts(struct svc_pool *pool, int64_t user_id,
                                const struct hub_account *accts, size_t n)
{
	struct keep_accounts k = {.user_id = user_id, .accts = accts, .n = n};
	return drop_where(pool, match_not_kept_account, &k,
	                  pool != NULL ? &pool->stats.dropped : NULL);
}

struct keep_users {
	const int64_t *ids;
	size_t n;
};

static bool match_not_kept_user(const struct pool_entry *e, const void *ctx)
{
	const struct keep_users *k = ctx;
	for (size_t i = 0; i < k->n; i++)
		if (k->ids[i] == e->user_id)
			return false;
	return true;
}

unsigned svc_pool_keep_users(struct svc_pool *pool, const int64_t *user_ids, size_t n)
{
	struct keep_users k = {.ids = user_ids, .n = n};
	return drop_where(pool, match_not_kept_user, &k,
	                  pool != NULL ? &pool->stats.dropped : NULL);
}

unsigned svc_pool_sweep(struct svc_pool *pool, double now, struct svc_leases *leases)
{
	if (pool == NULL)
		return 0;
	struct pool_entry *closing = NULL;
	int64_t *users = NULL;
	size_t n_users = 0;
	unsigned n = 0;
	pthread_mutex_lock(&pool->lock);
	if (leases != NULL && pool->stats.parked > 0)
		users = calloc(pool->stats.parked, sizeof(*users)); /* NULL: next time */
	for (struct pool_entry *e = pool->head, *next; e != NULL; e = next) {
		next = e->next;
		if (now - e->parked >= pool->keep_seconds || now - e->created >= SVC_POOL_MAX_AGE) {
			detach(pool, e, &closing);
			n++;
			continue;
		}
		if (!e->zero_access || users == NULL)
			continue;
		size_t i = 0;
		while (i < n_users && users[i] != e->user_id)
			i++;
		if (i == n_users)
			users[n_users++] = e->user_id;
	}
	pool->stats.expired += n;
	pthread_mutex_unlock(&pool->lock);
	close_list(closing);
	/* The lease table's lock may be held for seconds (a sign-in's
	 * Argon2id): asked with the pool's lock released. */
	for (size_t i = 0; i < n_users; i++)
		if (!svc_lease_held(leases, users[i], NULL))
			n += svc_pool_drop_user(pool, users[i]);
	free(users);
	return n;
}

void svc_pool_stats(struct svc_pool *pool, struct svc_pool_stats *stats_r)
{
	pthread_mutex_lock(&pool->lock);
	*stats_r = pool->stats;
	pthread_mutex_unlock(&pool->lock);
}
