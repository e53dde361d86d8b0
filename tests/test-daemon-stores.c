/* The daemon's registry of user stores (src/daemon/daemon-stores.c): at
 * most sv->open_stores handles open, the least recently used one closed
 * past that (never one another thread holds), a closed entry reopened on
 * its next use, a store.db replaced behind the registry's back reopened,
 * and the default bound of DAEMON_OPEN_STORES (128) with 130 users. Real
 * SQLite stores in a temporary directory, no server. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon-internal.h"
#include "store/store.h"
#include "test.h"

static char dir[64];

static void make_user(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/users", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/users/%s", dir, name);
	CHECK(mkdir(path, 0700) == 0);
}

static size_t open_count(struct daemon *sv)
{
	size_t n = 0;
	for (size_t i = 0; i < sv->n_users; i++)
		n += sv->users[i].store != NULL;
	return n;
}

static struct daemon_store *entry(struct daemon *sv, const char *name)
{
	for (size_t i = 0; i < sv->n_users; i++)
		if (strcmp(sv->users[i].name, name) == 0)
			return &sv->users[i];
	return NULL;
}

/* Use the user's store once (acquire, release). */
static struct daemon_store *use(struct daemon *sv, const char *name)
{
	struct daemon_store *us = daemon_store_acquire(sv, name);
	CHECK(us != NULL && us->store != NULL);
	pthread_mutex_unlock(&us->lock);
	return us;
}

static struct daemon *daemon_new(unsigned bound)
{
	struct daemon *sv = calloc(1, sizeof(*sv));
	CHECK(sv != NULL);
	sv->data_dir = dir;
	sv->open_stores = bound;
	pthread_mutex_init(&sv->users_lock, NULL);
	return sv;
}

static void daemon_free(struct daemon *sv)
{
	daemon_stores_close(sv);
	for (size_t i = 0; i < sv->n_users; i++)
		pthread_mutex_destroy(&sv->users[i].lock);
	pthread_mutex_destroy(&sv->users_lock);
	free(sv);
}

int main(void)
{
	char name[32];
	snprintf(dir, sizeof(dir), "/tmp/mk-test-stores-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	for (int i = 0; i < 130; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		make_user(name);
	}

	/* A bound of 2. */
	struct daemon *sv = daemon_new(2);
	use(sv, "u0");
	use(sv, "u1");
	CHECK(open_count(sv) == 2);
	use(sv, "u0"); /* u1 is now the least recently used */
	use(sv, "u2");
	CHECK(open_count(sv) == 2);
	CHECK(entry(sv, "u1")->store == NULL);
	CHECK(entry(sv, "u0")->store != NULL && entry(sv, "u2")->store != NULL);
	/* The closed entry stays and reopens on its next use (evicting u0). */
	use(sv, "u1");
	CHECK(open_count(sv) == 2 && entry(sv, "u0")->store == NULL);
	CHECK(sv->n_users == 3);

	/* A store another thread holds is never closed under it, yet counts:
	 * with u2 held, u1 (the other open one) goes, and u2 stays open
	 * however many users come and go, the bound kept. */
	struct daemon_store *held = daemon_store_acquire(sv, "u2");
	CHECK(held != NULL);
	for (int i = 3; i < 8; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		use(sv, name);
		CHECK(held->store != NULL);
		CHECK(open_count(sv) <= 2);
	}
	pthread_mutex_unlock(&held->lock);
	/* Both open ones held: the bound is passed for the third, and the
	 * next opening closes down to it again. */
	struct daemon_store *h1 = daemon_store_acquire(sv, "u2");
	struct daemon_store *h2 = daemon_store_acquire(sv, "u7");
	CHECK(h1 != NULL && h2 != NULL && open_count(sv) == 2);
	use(sv, "u0");
	CHECK(open_count(sv) == 3 && h1->store != NULL && h2->store != NULL);
	pthread_mutex_unlock(&h1->lock);
	pthread_mutex_unlock(&h2->lock);
	use(sv, "u1");
	CHECK(open_count(sv) == 2 && entry(sv, "u1")->store != NULL);
	CHECK(sv->stores_open == 2);

	/* A store.db replaced behind the registry's back (a purge, then a new
	 * user of the same name) is closed and the new one opened. */
	struct daemon_store *u7 = use(sv, "u7");
	ino_t before = u7->ino;
	char path[256], moved[256];
	snprintf(path, sizeof(path), "%s/users/u7/store.db", dir);
	snprintf(moved, sizeof(moved), "%s/users/u7/store.db.old", dir);
	CHECK(rename(path, moved) == 0);
	use(sv, "u7");
	CHECK(u7->ino != before);
	CHECK(open_count(sv) <= 2);

	/* A user without a folder gets no entry. */
	CHECK(daemon_store_acquire(sv, "nobody") == NULL);
	daemon_free(sv);

	/* The default bound: 130 users, 128 open, the two used first closed. */
	sv = daemon_new(DAEMON_OPEN_STORES);
	for (int i = 0; i < 130; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		use(sv, name);
	}
	CHECK(DAEMON_OPEN_STORES == 128);
	CHECK(open_count(sv) == 128);
	CHECK(entry(sv, "u0")->store == NULL && entry(sv, "u1")->store == NULL);
	CHECK(entry(sv, "u2")->store != NULL && entry(sv, "u129")->store != NULL);
	daemon_free(sv);

	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("test-daemon-stores");
}
