/* Unlock leases of zero-access users (svc-lease.h). */
#include "svc-lease.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../audit/audit.h"
#include "../hub/hub.h"
#include "../vault/vault.h"

#define LEASE_MAX_HOLDERS 32

struct lease {
	struct hub_user user;
	struct vault_kek *kek; /* vault memory; NULL = slot free */
	time_t until;
	int64_t holders[LEASE_MAX_HOLDERS]; /* device ids */
	size_t n_holders;
};

/* A full check (every holder looked up in hub.db) at least this often
 * while a lease is held, for what no signal and no data_version shows: a
 * web session that expired by time, or one the serve process's own hub
 * connection deleted without svc_lease_release. */
#define LEASE_RECHECK_S 5

struct svc_leases {
	struct hub *hub;
	pthread_mutex_t *hub_lock;
	pthread_mutex_t lock;
	pthread_cond_t changed; /* svc_lease_wait sleeps on it */
	struct lease *leases;
	size_t n;
	/* svc_lease_watch's state: */
	bool woken;         /* a change or a wake not yet seen by svc_lease_wait */
	bool recheck;       /* look the holders up at the next watch */
	bool version_known; /* data_version holds hub.db's at the last full check */
	int64_t data_version;
	time_t next_full; /* the next full check while a lease is held */
};

static void hub_enter(struct svc_leases *l)
{
	if (l->hub_lock != NULL)
		pthread_mutex_lock(l->hub_lock);
}

static void hub_leave(struct svc_leases *l)
{
	if (l->hub_lock != NULL)
		pthread_mutex_unlock(l->hub_lock);
}

struct svc_leases *svc_leases_create(struct hub *hub, pthread_mutex_t *hub_lock)
{
	struct svc_leases *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->hub = hub;
	l->hub_lock = hub_lock;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0) {
		pthread_mutex_destroy(&l->lock);
		free(l);
		return NULL;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int r = pthread_cond_init(&l->changed, &ca);
	pthread_condattr_destroy(&ca);
	if (r != 0) {
		pthread_mutex_destroy(&l->lock);
		free(l);
		return NULL;
	}
	return l;
}

/* The table changed (a lease taken, extended, released, rekeyed): the next
 * watch looks at the holders, and a waiting watcher wakes. The caller
 * holds the table's lock. */
static void changed(struct svc_leases *l)
{
	l->recheck = true;
	l->woken = true;
	pthread_cond_broadcast(&l->changed);
}

static struct lease *find(struct svc_leases *l, int64_t user_id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->leases[i].kek != NULL && l->leases[i].user.id == user_id)
			return &l->leases[i];
	return NULL;
}

/* Wipe one lease; the caller holds hub_lock and the table's lock. The key
 * goes first; the audit entry follows (a busy log must not keep a key). */
static void wipe(struct svc_leases *l, struct lease *ls, const char *reason)
{
	const char *err;
	vault_kek_free(&ls->kek); /* sodium_free: zeroed, unlocked, freed */
	ls->n_holders = 0;
	struct audit_detail d[] = {{"reason", reason}};
	(void)hub_audit(l->hub, &ls->user, AUDIT_LEASE_WIPED, 0, d, 1, &err);
}

static void add_holder(struct lease *ls, int64_t device_id)
{
	for (size_t i = 0; i < ls->n_holders; i++)
		if (ls->holders[i] == device_id)
			return;
	if (ls->n_holders < LEASE_MAX_HOLDERS)
		ls->holders[ls->n_holders++] = device_id;
	else
		ls->holders[LEASE_MAX_HOLDERS - 1] = device_id; /* the oldest extra one yields */
}

int svc_lease_signin(struct svc_leases *l, const struct hub_user *u, const char *password,
                     int64_t device_id, time_t now, unsigned seconds, time_t *until_r, char *error,
                     size_t error_size)
{
	const char *err;
	int ret = -1;
	time_t until = now + (time_t)seconds;
	hub_enter(l);
	pthread_mutex_lock(&l->lock);
	struct lease *ls = find(l, u->id);
	if (ls != NULL) {
		if (until > ls->until)
			ls->until = until;
		add_holder(ls, device_id);
		*until_r = ls->until;
		ret = 0;
		goto out;
	}
	struct vault_kek *kek = NULL;
	if (!u->zero_access) {
		snprintf(error, error_size, "%s is not a zero-access user", u->name);
		goto out;
	}
	if (hub_user_kek(l->hub, u, password, &kek, &err) < 0) {
		snprintf(error, error_size, "%s: %s", u->name, err);
		goto out;
	}
	char dev[32], when[32];
	snprintf(dev, sizeof(dev), "%" PRId64, device_id);
	snprintf(when, sizeof(when), "%lld", (long long)until);
	struct audit_detail d[] = {{"reason", "signin"}, {"device", dev}, {"until", when}};
	/* Durable before the key is held. */
	if (hub_audit(l->hub, u, AUDIT_LEASE_UNLOCKED, 0, d, 3, &err) < 0) {
		snprintf(error, error_size, "%s: %s", u->name, err);
		vault_kek_free(&kek);
		goto out;
	}
	for (size_t i = 0; i < l->n && ls == NULL; i++)
		if (l->leases[i].kek == NULL)
			ls = &l->leases[i];
	if (ls == NULL) {
		struct lease *grown = realloc(l->leases, (l->n + 1) * sizeof(*grown));
		if (grown == NULL) {
			snprintf(error, error_size, "out of memory");
			vault_kek_free(&kek);
			goto out;
		}
		l->leases = grown;
		ls = &l->leases[l->n++];
	}
	memset(ls, 0, sizeof(*ls));
	ls->user = *u;
	ls->kek = kek;
	ls->until = until;
	add_holder(ls, device_id);
	*until_r = until;
	ret = 1;
out:
	if (ret >= 0)
		changed(l);
	pthread_mutex_unlock(&l->lock);
	hub_leave(l);
	return ret;
}

int svc_lease_release(struct svc_leases *l, int64_t user_id, int64_t device_id, const char *reason)
{
	int ret = 0;
	hub_enter(l);
	pthread_mutex_lock(&l->lock);
	struct lease *ls = find(l, user_id);
	if (ls != NULL) {
		for (size_t i = 0; i < ls->n_holders; i++) {
			if (ls->holders[i] == device_id) {
				ls->holders[i] = ls->holders[--ls->n_holders];
				break;
			}
		}
		if (ls->n_holders == 0) {
			wipe(l, ls, reason);
			ret = 1;
		}
		changed(l);
	}
	pthread_mutex_unlock(&l->lock);
	hub_leave(l);
	return ret;
}

void svc_lease_tick(struct svc_leases *l, time_t now)
{
	const char *err;
	int64_t version;
	hub_enter(l);
	/* Read before the holders are: a change that lands during the check
	 * moves data_version past what is recorded, so the next watch looks
	 * again. */
	bool version_read = hub_data_version(l->hub, &version, &err) == 0;
	pthread_mutex_lock(&l->lock);
	l->recheck = false;
	l->version_known = version_read;
	l->data_version = version_read ? version : 0;
	l->next_full = now + LEASE_RECHECK_S;
	for (size_t i = 0; i < l->n; i++) {
		struct lease *ls = &l->leases[i];
		if (ls->kek == NULL)
			continue;
		if (now >= ls->until) {
			wipe(l, ls, "expired");
			continue;
		}
		for (size_t h = 0; h < ls->n_holders;) {
			/* An error reading hub.db keeps the holder (the next tick
			 * looks again); only a device known gone is dropped. */
			int64_t holder = ls->holders[h];
			int alive = holder < 0 ? hub_web_session_exists(l->hub, -holder, now, &err)
			                       : hub_device_exists(l->hub, holder, &err);
			if (alive == 0)
				ls->holders[h] = ls->holders[--ls->n_holders];
			else
				h++;
		}
		if (ls->n_holders == 0)
			wipe(l, ls, "revoked");
	}
	pthread_mutex_unlock(&l->lock);
	hub_leave(l);
}

/* Is any lease held; is a full check due at now? The caller holds the lock. */
static bool any_held(const struct svc_leases *l, time_t now, bool *due_r)
{
	bool held = false;
	*due_r = l->recheck || !l->version_known || now >= l->next_full;
	for (size_t i = 0; i < l->n; i++) {
		if (l->leases[i].kek == NULL)
			continue;
		held = true;
		if (now >= l->leases[i].until)
			*due_r = true;
	}
	return held;
}

bool svc_lease_watch(struct svc_leases *l, time_t now)
{
	const char *err;
	bool due;
	pthread_mutex_lock(&l->lock);
	bool held = any_held(l, now, &due);
	pthread_mutex_unlock(&l->lock);
	if (!held)
		return false;
	if (!due) {
		int64_t version;
		hub_enter(l);
		int r = hub_data_version(l->hub, &version, &err);
		hub_leave(l);
		pthread_mutex_lock(&l->lock);
		due = r < 0 || !l->version_known || version != l->data_version;
		pthread_mutex_unlock(&l->lock);
	}
	if (due)
		svc_lease_tick(l, now);
	return due;
}

void svc_lease_wait(struct svc_leases *l, unsigned max_ms)
{
	pthread_mutex_lock(&l->lock);
	if (!l->woken) {
		bool due;
		if (any_held(l, time(NULL), &due)) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)(max_ms / 1000);
			ts.tv_nsec += (long)(max_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&l->changed, &l->lock, &ts);
		} else {
			/* Nothing held: nothing can expire or lose its holders
			 * until a sign-in, which wakes us. */
			pthread_cond_wait(&l->changed, &l->lock);
		}
	}
	l->woken = false;
	pthread_mutex_unlock(&l->lock);
}

void svc_lease_wake(struct svc_leases *l)
{
	pthread_mutex_lock(&l->lock);
	l->woken = true;
	pthread_cond_broadcast(&l->changed);
	pthread_mutex_unlock(&l->lock);
}

bool svc_lease_held(struct svc_leases *l, int64_t user_id, time_t *until_r)
{
	pthread_mutex_lock(&l->lock);
	struct lease *ls = find(l, user_id);
	if (ls != NULL && until_r != NULL)
		*until_r = ls->until;
	pthread_mutex_unlock(&l->lock);
	return ls != NULL;
}

int svc_lease_kek(struct svc_leases *l, int64_t user_id, struct vault_kek **kek_r)
{
	const char *err;
	int ret = 0;
	pthread_mutex_lock(&l->lock);
	struct lease *ls = find(l, user_id);
	if (ls != NULL && ls->until > time(NULL))
		ret = vault_kek_dup(ls->kek, kek_r, &err) == 0 ? 1 : -1;
	pthread_mutex_unlock(&l->lock);
	return ret;
}

int svc_lease_rekey(struct svc_leases *l, int64_t user_id, const struct vault_kek *kek)
{
	const char *err;
	struct vault_kek *copy = NULL;
	int ret = 0;
	hub_enter(l);
	pthread_mutex_lock(&l->lock);
	struct lease *ls = find(l, user_id);
	if (ls != NULL && vault_kek_dup(kek, &copy, &err) < 0) {
		wipe(l, ls, "rekey-failed");
		ret = -1;
	} else if (ls != NULL) {
		vault_kek_free(&ls->kek);
		ls->kek = copy;
		ret = 1;
	}
	pthread_mutex_unlock(&l->lock);
	hub_leave(l);
	return ret;
}

void svc_lease_wipe_all(struct svc_leases *l, const char *reason)
{
	hub_enter(l);
	pthread_mutex_lock(&l->lock);
	for (size_t i = 0; i < l->n; i++)
		if (l->leases[i].kek != NULL)
			wipe(l, &l->leases[i], reason);
	pthread_mutex_unlock(&l->lock);
	hub_leave(l);
}

void svc_leases_free(struct svc_leases **leases)
{
	struct svc_leases *l = *leases;
	if (l == NULL)
		return;
	svc_lease_wipe_all(l, "shutdown");
	free(l->leases);
	pthread_cond_destroy(&l->changed);
	pthread_mutex_destroy(&l->lock);
	free(l);
	*leases = NULL;
}
