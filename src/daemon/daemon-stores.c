/*
 * The daemon's registry of user stores: one handle per user that every
 * thread shares (API requests, push, the indexer, upload expiry, the outbox's
 * look for due mail), each under its entry's lock, opened on first use and
 * checked fresh at every use (daemon_store_lock: a purged or re-created
 * user's store.db is closed and reopened). At most sv->open_stores
 * (DAEMON_OPEN_STORES unless a test sets fewer) handles are open: past
 * that, the one used least recently (by a use counter, not the clock, so
 * uses within one second keep their order) closes. Syncs,
 * replays and sends run for seconds, so they use handles of their own
 * (SQLite in WAL mode lets them write beside the shared one).
 */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon-internal.h"
#include "store/store.h"

/* --- per-user stores -------------------------------------------------------- */

/* The identity of the user's store.db now; false if there is none. */
static bool store_file_id(struct daemon *sv, const char *user, dev_t *dev_r, ino_t *ino_r)
{
	const char *dir = sv->data_dir;
	char path[PATH_MAX];
	struct stat st;
	int n = dir != NULL ? snprintf(path, sizeof(path), "%s/users/%s/store.db", dir, user) : -1;
	if (n < 0 || (size_t)n >= sizeof(path) || stat(path, &st) < 0)
		return false;
	*dev_r = st.st_dev;
	*ino_r = st.st_ino;
	return true;
}

/* Open DIR/users/NAME/store.db, path holding DIR/users/NAME (n bytes). */
static int store_path_open(char *path, size_t size, int n, struct store **store_r)
{
	const char *err;
	int m = snprintf(path + n, size - (size_t)n, "/store.db");
	if (m < 0 || (size_t)m >= size - (size_t)n)
		return -1;
	if (store_open(path, store_r, &err) < 0) {
		daemon_log(DAEMON_LOG_ERROR, NULL, 0, "%s", err);
		return -1;
	}
	return 0;
}

/* Close us's store (us->lock held, or us not shared any more), counted. */
static void registry_close(struct daemon *sv, struct daemon_store *us)
{
	if (us->store == NULL)
		return;
	store_close(&us->store);
	__atomic_sub_fetch(&sv->stores_open, 1, __ATOMIC_RELAXED);
}

/* Open the user's store into us (us->lock held, or us not yet shared). A
 * user whose folder is gone (purged) gets none: the folder is never made
 * here, so a purge racing with this cannot leave an orphan behind. */
static void daemon_store_open(struct daemon *sv, struct daemon_store *us)
{
	const char *dir = sv->data_dir;
	char path[PATH_MAX];
	int n = dir != NULL ? snprintf(path, sizeof(path), "%s/users/%s", dir, us->name) : -1;
	if (n < 0 || (size_t)n >= sizeof(path) || access(path, F_OK) < 0 ||
	    store_path_open(path, sizeof(path), n, &us->store) < 0 ||
	    !store_file_id(sv, us->name, &us->dev, &us->ino)) {
		store_close(&us->store);
		us->store = NULL;
		return;
	}
	__atomic_add_fetch(&sv->stores_open, 1, __ATOMIC_RELAXED);
}

struct daemon_store *daemon_store_get(struct daemon *sv, const char *user)
{
	pthread_mutex_lock(&sv->users_lock);
	struct daemon_store *us = NULL;
	for (size_t i = 0; i < sv->n_users; i++)
		if (strcmp(sv->users[i].name, user) == 0)
			us = &sv->users[i];
	if (us == NULL && sv->n_users < DAEMON_MAX_USERS) {
		/* An entry for a user with a folder; daemon_store_lock() opens
		 * the store (within the bound), making store.db if need be. */
		struct daemon_store fresh = {0};
		snprintf(fresh.name, sizeof(fresh.name), "%s", user);
		char path[PATH_MAX];
		int n = snprintf(path, sizeof(path), "%s/users/%s", sv->data_dir, user);
		if (n > 0 && (size_t)n < sizeof(path) && access(path, F_OK) == 0) {
			us = &sv->users[sv->n_users++];
			*us = fresh;
			pthread_mutex_init(&us->lock, NULL);
		}
	}
	pthread_mutex_unlock(&sv->users_lock);
	return us;
}

/* At sv->open_stores open handles (all of them counted, held or not), the
 * one used least recently that no thread holds is closed (us->lock held;
 * the others only tried, so the lock order cannot deadlock), making room
 * for us's. Its entry stays: the next use reopens it. When every open one
 * is held, none is closed: the bound is passed until they are let go. */
static void evict_idle(struct daemon *sv, struct daemon_store *us)
{
	pthread_mutex_lock(&sv->users_lock);
	size_t n = sv->n_users;
	/* One at a time: the bound may have been passed while stores were held. */
	while (__atomic_load_n(&sv->stores_open, __ATOMIC_RELAXED) >= sv->open_stores) {
		struct daemon_store *oldest = NULL;
		for (size_t i = 0; i < n; i++) {
			struct daemon_store *o = &sv->users[i];
			if (o == us || pthread_mutex_trylock(&o->lock) != 0)
				continue;
			if (o->store != NULL && (oldest == NULL || o->used < oldest->used)) {
				if (oldest != NULL)
					pthread_mutex_unlock(&oldest->lock);
				oldest = o;
				continue; /* keep it locked */
			}
			pthread_mutex_unlock(&o->lock);
		}
		if (oldest == NULL)
			break; /* every open one is held */
		registry_close(sv, oldest);
		pthread_mutex_unlock(&oldest->lock);
	}
	pthread_mutex_unlock(&sv->users_lock);
}

/* Lock us and make sure its store is the user's store.db as it is now: a
 * store deleted or replaced behind serve's back (the lifecycle's purge, here
 * or by another process, then perhaps a new user of the same name) is
 * closed, so purged mail is not kept readable through an open handle and
 * nothing is written to deleted files, and opened again if there is a new
 * one. Returns false (unlocked) when the user has no store any more. */
bool daemon_store_lock(struct daemon *sv, struct daemon_store *us)
{
	pthread_mutex_lock(&us->lock);
	dev_t dev;
	ino_t ino;
	bool there = store_file_id(sv, us->name, &dev, &ino);
	if (us->store != NULL && (!there || dev != us->dev || ino != us->ino))
		registry_close(sv, us);
	if (us->store == NULL) {
		evict_idle(sv, us);
		daemon_store_open(sv, us); /* none if the user's folder is gone */
	}
	if (us->store == NULL) {
		pthread_mutex_unlock(&us->lock);
		return false;
	}
	us->used = __atomic_add_fetch(&sv->store_clock, 1, __ATOMIC_RELAXED);
	return true;
}

/* daemon_store_get, then daemon_store_lock: the user's store, locked, or NULL. */
struct daemon_store *daemon_store_acquire(struct daemon *sv, const char *user)
{
	struct daemon_store *us = daemon_store_get(sv, user);
	return us != NULL && daemon_store_lock(sv, us) ? us : NULL;
}

void daemon_stores_close(struct daemon *sv)
{
	for (size_t i = 0; i < sv->n_users; i++)
		registry_close(sv, &sv->users[i]);
}
