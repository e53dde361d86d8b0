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

struct svc_leases {
	struct hub *hub;
	pthread_mutex_t *hub_lock;
	pthread_mutex_t lock;
	struct lease *leases;
	size_t n;
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
	return l;
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
	}
	pthread_mutex_unlock(&l->lock);
	hub_leave(l);
	return ret;
}

void svc_lease_tick(struct svc_leases *l, time_t now)
{
	const char *err;
	hub_enter(l);
	pthread_mutex_lock(&l->lock);
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
	pthread_mutex_destroy(&l->lock);
	free(l);
	*leases = NULL;
}
