#ifndef MK_CRASHPOINT_H
#define MK_CRASHPOINT_H

#include <sqlite3.h>

/*
 * Crash points for the kill-at-every-commit tests (as isync's run-tests.pl
 * and SQLite's crash tests do): with MK_CRASH_AFTER_COMMIT=N in the
 * environment, the process ends with SIGKILL right after its Nth durable
 * commit, counted over every SQLite database it writes (each user store,
 * hub.db) and every audit log append. Without the variable nothing happens
 * beyond a counter. The variable names a test step, never a secret.
 *
 * crashpoint_commit() is called after a commit is durable.
 * crashpoint_watch_db() registers it as the WAL hook of a connection (the
 * hook SQLite calls after every commit in WAL mode) and keeps SQLite's
 * automatic checkpoint at wal_pages pages; it does nothing unless the
 * variable is set. Both are compiled only with MK_TEST_HOOKS (CMake option,
 * on by default; packaging builds turn it off) and are empty otherwise.
 */
void crashpoint_commit(void);
void crashpoint_watch_db(sqlite3 *db, int wal_pages);

#endif
