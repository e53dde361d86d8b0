#include "lib/crashpoint.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef MK_TEST_HOOKS
/* -1: not read yet; 0: off; N > 0: kill after the Nth commit. */
static atomic_long crash_after = -1;
static atomic_long commits;

static long crash_limit(void)
{
	long n = atomic_load(&crash_after);
	if (n >= 0)
		return n;
	const char *v = getenv("MK_CRASH_AFTER_COMMIT");
	char *end = NULL;
	n = v != NULL ? strtol(v, &end, 10) : 0;
	if (v == NULL || end == v || *end != '\0' || n < 0)
		n = 0;
	atomic_store(&crash_after, n);
	return n;
}

void crashpoint_commit(void)
{
	long n = atomic_fetch_add(&commits, 1) + 1;
	long limit = crash_limit();
	if (limit > 0 && n >= limit)
		kill(getpid(), SIGKILL);
}

static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	/* Replaces SQLite's own auto-checkpoint hook, so do its job too. */
	int limit = (int)(long)arg;
	crashpoint_commit();
	if (limit > 0 && pages >= limit)
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

void crashpoint_watch_db(sqlite3 *db, int wal_pages)
{
	if (crash_limit() > 0)
		sqlite3_wal_hook(db, wal_hook, (void *)(long)wal_pages);
}
#else
void crashpoint_commit(void)
{
}

void crashpoint_watch_db(sqlite3 *db, int wal_pages)
{
	(void)db;
	(void)wal_pages;
}
#endif
