/* Unlock leases (src/service/svc-lease.c): unlock and extend, holders,
 * sign-out, revocation, expiry, a key copy outliving a wipe, the audit
 * entries, and threads using one table at once. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "hub/hub.h"
#include "service/svc-lease.h"
#include "vault/vault.h"

static char dir[64];
static const char pass[] = "dana's passphrase";

/* The events of user's audit log, space-separated, in order. */
static void events(const char *user, char *out, size_t size)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/users/%s/audit.log", dir, user);
	FILE *f = fopen(path, "r");
	out[0] = '\0';
	if (f == NULL)
		return;
	char line[4096];
	while (fgets(line, sizeof(line), f) != NULL) {
		char *e = strstr(line, "\"event\":\"");
		if (e == NULL)
			continue;
		e += 9;
		char *end = strchr(e, '"');
		if (end == NULL)
			continue;
		size_t o = strlen(out);
		snprintf(out + o, size - o, "%.*s ", (int)(end - e), e);
	}
	fclose(f);
}

struct worker {
	struct svc_leases *leases;
	int64_t user_id;
	unsigned got;
};

static void *use_keys(void *context)
{
	struct worker *w = context;
	for (int i = 0; i < 2000; i++) {
		struct vault_kek *kek = NULL;
		if (svc_lease_kek(w->leases, w->user_id, &kek) == 1)
			w->got++;
		vault_kek_free(&kek);
	}
	return NULL;
}

int main(void)
{
	const char *err;
	bool existed;
	char error[1024], ev[8192];
	snprintf(dir, sizeof(dir), "/tmp/mk-test-lease-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	CHECK(hub_create(dir, NULL, &existed, &err) == 0);
	struct hub *hub;
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	CHECK(hub_user_add(hub, "dana", pass, true, pass, &err) == 0);
	CHECK(hub_user_add(hub, "sam", NULL, false, NULL, &err) == 0);
	struct hub_user dana, sam;
	CHECK(hub_user_get(hub, "dana", &dana, &err) == 0);
	CHECK(hub_user_get(hub, "sam", &sam, &err) == 0);
	char tok[HUB_DEVICE_TOKEN_SIZE];
	int64_t d1, d2;
	CHECK(hub_device_add(hub, &dana, "laptop", tok, &d1, &err) == 0);
	CHECK(hub_device_add(hub, &dana, "phone", tok, &d2, &err) == 0);

	pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
	struct svc_leases *l = svc_leases_create(hub, &hub_lock);
	CHECK(l != NULL);
	time_t now = time(NULL), until;
	struct vault_kek *kek = NULL;

	/* No lease: no key. A wrong passphrase unlocks nothing; a server-key
	 * user has no lease to make. */
	CHECK(svc_lease_kek(l, dana.id, &kek) == 0 && kek == NULL);
	CHECK(!svc_lease_held(l, dana.id, NULL));
	CHECK(svc_lease_signin(l, &dana, "wrong", d1, now, 60, &until, error, sizeof(error)) < 0);
	CHECK(strstr(error, "wrong passphrase") != NULL);
	CHECK(svc_lease_signin(l, &sam, "x", d1, now, 60, &until, error, sizeof(error)) < 0);
	CHECK(!svc_lease_held(l, dana.id, NULL));

	/* Unlock, then a second device extends (latest expiry wins, no second
	 * unlock); an earlier expiry does not shorten it. */
	CHECK(svc_lease_signin(l, &dana, pass, d1, now, 60, &until, error, sizeof(error)) == 1);
	CHECK(until == now + 60);
	CHECK(svc_lease_signin(l, &dana, pass, d2, now + 10, 100, &until, error, sizeof(error)) ==
	      0);
	CHECK(until == now + 110);
	CHECK(svc_lease_signin(l, &dana, pass, d2, now, 10, &until, error, sizeof(error)) == 0);
	CHECK(until == now + 110);
	time_t held_until;
	CHECK(svc_lease_held(l, dana.id, &held_until) && held_until == now + 110);

	/* The key from the lease opens what the passphrase opens. */
	struct vault_kek *direct = NULL;
	CHECK(hub_user_kek(hub, &dana, pass, &direct, &err) == 0);
	unsigned char a[VAULT_CHECK_VALUE_SIZE], b[VAULT_CHECK_VALUE_SIZE];
	CHECK(svc_lease_kek(l, dana.id, &kek) == 1);
	vault_kek_check_value(kek, a);
	vault_kek_check_value(direct, b);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	vault_kek_free(&direct);

	/* Threads share the table. */
	struct worker w[3];
	pthread_t t[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct worker){l, dana.id, 0};
		CHECK(pthread_create(&t[i], NULL, use_keys, &w[i]) == 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		CHECK(w[i].got == 2000);
	}

	/* One holder signs out: still held; the last: wiped. The copy taken
	 * before the wipe still works (a running sync finishes). */
	CHECK(svc_lease_release(l, dana.id, d1, "signout") == 0);
	CHECK(svc_lease_held(l, dana.id, NULL));
	CHECK(svc_lease_release(l, dana.id, d2, "signout") == 1);
	CHECK(!svc_lease_held(l, dana.id, NULL));
	CHECK(svc_lease_kek(l, dana.id, &direct) == 0);
	vault_kek_check_value(kek, a);
	CHECK(memcmp(a, b, sizeof(a)) == 0);
	vault_kek_free(&kek);

	/* Revocation of the only holder wipes at the next tick. */
	CHECK(svc_lease_signin(l, &dana, pass, d1, now, 60, &until, error, sizeof(error)) == 1);
	svc_lease_tick(l, now + 1);
	CHECK(svc_lease_held(l, dana.id, NULL));
	int64_t gone;
	CHECK(hub_device_revoke(hub, &dana, "laptop", &gone, &err) == 0);
	svc_lease_tick(l, now + 2);
	CHECK(!svc_lease_held(l, dana.id, NULL));

	/* Expiry, whatever the holders; an expired lease gives no key even
	 * before the tick. */
	CHECK(svc_lease_signin(l, &dana, pass, d2, now - 100, 50, &until, error, sizeof(error)) ==
	      1);
	CHECK(svc_lease_kek(l, dana.id, &kek) == 0);
	svc_lease_tick(l, now);
	CHECK(!svc_lease_held(l, dana.id, NULL));

	/* The watcher (svc_lease_watch): nothing held, nothing to do. */
	CHECK(!svc_lease_watch(l, now));
	int64_t d3, d4;
	CHECK(hub_device_add(hub, &dana, "tablet", tok, &d3, &err) == 0);
	CHECK(hub_device_add(hub, &dana, "reader", tok, &d4, &err) == 0);
	CHECK(svc_lease_signin(l, &dana, pass, d3, now, 60, &until, error, sizeof(error)) == 1);
	/* A sign-in wakes a waiting watcher (this wait returns at once, or the
	 * test hangs) and makes the next watch look at the holders; with no
	 * change after that, a watch only reads data_version. */
	svc_lease_wait(l, 3600 * 1000);
	CHECK(svc_lease_watch(l, now));
	CHECK(!svc_lease_watch(l, now + 1));
	CHECK(svc_lease_held(l, dana.id, NULL));
	/* Another process (another hub connection: the CLI) revokes the only
	 * holder: data_version moves, the next watch looks and wipes. */
	struct hub *other;
	CHECK(hub_open(dir, true, &other, &err) == 0);
	CHECK(hub_device_revoke(other, &dana, "tablet", &gone, &err) == 0);
	CHECK(svc_lease_watch(l, now + 1));
	CHECK(!svc_lease_held(l, dana.id, NULL));
	hub_close(&other);
	/* A revocation through the watcher's own connection does not move
	 * data_version (serve's own revocations call svc_lease_release): the
	 * periodic full check finds it within 5 s. */
	CHECK(svc_lease_signin(l, &dana, pass, d4, now, 60, &until, error, sizeof(error)) == 1);
	CHECK(svc_lease_watch(l, now));
	CHECK(hub_device_revoke(hub, &dana, "reader", &gone, &err) == 0);
	CHECK(!svc_lease_watch(l, now + 4));
	CHECK(svc_lease_held(l, dana.id, NULL));
	CHECK(svc_lease_watch(l, now + 5));
	CHECK(!svc_lease_held(l, dana.id, NULL));
	/* Expiry: the watch at the lease's end wipes it. */
	CHECK(svc_lease_signin(l, &dana, pass, d2, now, 10, &until, error, sizeof(error)) == 1);
	CHECK(svc_lease_watch(l, now));
	CHECK(!svc_lease_watch(l, now + 4));
	CHECK(svc_lease_watch(l, now + 10));
	CHECK(!svc_lease_held(l, dana.id, NULL));
	/* With nothing held the wait ends only when woken (a wake given before
	 * the wait is not lost); with a lease held, after max_ms. */
	svc_lease_wait(l, 10); /* takes the change the wipe above made */
	svc_lease_wake(l);
	svc_lease_wait(l, 3600 * 1000);
	CHECK(svc_lease_signin(l, &dana, pass, d2, now, 60, &until, error, sizeof(error)) == 1);
	svc_lease_wait(l, 10);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	svc_lease_wait(l, 50);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 45);
	CHECK(svc_lease_release(l, dana.id, d2, "signout") == 1);

	/* Shutdown wipes what is left. */
	CHECK(svc_lease_signin(l, &dana, pass, d2, now, 60, &until, error, sizeof(error)) == 1);
	svc_leases_free(&l);
	CHECK(l == NULL);

	events("dana", ev, sizeof(ev));
	unsigned unlocked = 0, wiped = 0;
	for (char *p = ev; (p = strstr(p, "lease.unlocked")) != NULL; p++)
		unlocked++;
	for (char *p = ev; (p = strstr(p, "lease.wiped")) != NULL; p++)
		wiped++;
	CHECK(unlocked == 8 && wiped == 8);
	uint64_t count;
	const char *note;
	CHECK(hub_audit_verify(hub, &dana, &count, &note, &err) == 0);

	hub_close(&hub);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	printf("test-lease: ok\n");
	return 0;
}
