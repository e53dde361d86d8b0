/*
 * Full-text search at the store level, on a user's store.db (run by
 * bench/jmap.sh; the serve is not involved, so figures are SQLite + FTS5 +
 * our SQL only):
 *
 *   fts-query STORE.db --index
 *       indexes the whole backlog with store_fts_catch_up() in batches of 256
 *       and prints messages/s and the database growth;
 *   fts-query STORE.db [--runs N] [--floor-ms MS] [--mailbox ID] TEXT...
 *       for each TEXT (a "text" filter condition), times the query Email/query
 *       will run for "the 50 newest matches by receivedAt" and prints
 *       p50/p95 and the ratio of p50 to MS (the Core/echo floor).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "store/store-private.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double file_mb(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0;
}

static int do_index(struct store *s, const char *path)
{
	const char *err;
	uint64_t pending;
	if (store_scrub(s, &err) < 0 || store_fts_pending(s, &pending, &err) < 0) {
		fprintf(stderr, "fts-query: %s\n", err);
		return 1;
	}
	double before = file_mb(path), t0 = now_ms();
	bool complete = false;
	while (!complete) {
		if (store_fts_catch_up(s, 256, &complete, &err) < 0) {
			fprintf(stderr, "fts-query: %s\n", err);
			return 1;
		}
	}
	double dt = (now_ms() - t0) / 1000.0;
	if (store_scrub(s, &err) < 0) {
		fprintf(stderr, "fts-query: %s\n", err);
		return 1;
	}
	/* What an account removal adds: one full rewrite of the index. */
	double t1 = now_ms();
	if (sqlite3_exec(store_db(s), "INSERT INTO email_fts(email_fts) VALUES('optimize')", NULL,
	                 NULL, NULL) != SQLITE_OK ||
	    store_scrub(s, &err) < 0) {
		fprintf(stderr, "fts-query: optimize failed\n");
		return 1;
	}
	double opt = (now_ms() - t1) / 1000.0;
	double after = file_mb(path);
	printf("%-34s %" PRIu64 " messages in %.1f s: %.0f messages/s\n", "full-text indexing",
	       pending, dt, dt > 0 ? (double)pending / dt : 0.0);
	printf("%-34s %.1f s\n", "optimize (as in account removal)", opt);
	printf("%-34s %.1f MB -> %.1f MB (+%.1f MB, +%.1f%%)\n", "database size with the index",
	       before, after, after - before, before > 0 ? (after - before) * 100.0 / before : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: fts-query STORE.db --index | [--runs N] [--floor-ms MS] "
		                "[--mailbox ID] TEXT...\n");
		return 2;
	}
	const char *path = argv[1], *err;
	struct store *s;
	if (store_open(path, &s, &err) < 0) {
		fprintf(stderr, "fts-query: %s\n", err);
		return 1;
	}
	if (strcmp(argv[2], "--index") == 0) {
		int r = do_index(s, path);
		store_close(&s);
		return r;
	}
	int runs = 50;
	double floor_ms = 0;
	long long mailbox = 0;
	int i = 2;
	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--runs") == 0)
			runs = (int)strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--floor-ms") == 0)
			floor_ms = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "--mailbox") == 0)
			mailbox = strtoll(argv[i + 1], NULL, 10);
	}
	if (runs < 1 || runs > 10000)
		runs = 50;
	/* The SQL the lead wires into Email/query (text condition, optionally
	 * with inMailbox), newest first, 50 results. */
	sqlite3 *db;
	sqlite3_stmt *q = NULL, *count = NULL;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "SELECT m.id FROM messages m "
	                       "WHERE +m.blob_id IN (SELECT rowid FROM email_fts WHERE email_fts "
	                       "MATCH ?1) AND (?2 = 0 OR m.mailbox_id = ?2) "
	                       "ORDER BY m.internaldate DESC, m.id DESC LIMIT 50",
	                       -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM email_fts WHERE email_fts MATCH ?1", -1,
	                       &count, NULL) != SQLITE_OK) {
		fprintf(stderr, "fts-query: %s\n", sqlite3_errmsg(db));
		return 1;
	}
	int ret = 0;
	for (; i < argc; i++) {
		char *expr;
		if (store_fts_expr("text", argv[i], &expr, &err) < 0) {
			fprintf(stderr, "fts-query: %s\n", err);
			ret = 1;
			continue;
		}
		sqlite3_bind_text(count, 1, expr, -1, SQLITE_STATIC);
		long long hits =
		    sqlite3_step(count) == SQLITE_ROW ? sqlite3_column_int64(count, 0) : -1;
		sqlite3_reset(count);
		double *t = calloc((size_t)runs, sizeof(*t));
		int got = 0;
		for (int r = 0; r < runs; r++) {
			double t0 = now_ms();
			sqlite3_bind_text(q, 1, expr, -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 2, mailbox);
			got = 0;
			while (sqlite3_step(q) == SQLITE_ROW)
				got++;
			sqlite3_reset(q);
			t[r] = now_ms() - t0;
		}
		qsort(t, (size_t)runs, sizeof(*t), cmp_double);
		double p50 = t[runs / 2], p95 = t[(runs * 95 + 99) / 100 - 1];
		char label[80];
		snprintf(label, sizeof(label), "text \"%s\"%s", argv[i],
		         mailbox ? " inMailbox" : "");
		char ratio[32] = "";
		if (floor_ms > 0)
			snprintf(ratio, sizeof(ratio), "%.1fx echo ", p50 / floor_ms);
		printf("%-34s p50 %7.2f ms   p95 %7.2f ms   %s(%lld matching blobs, %d returned)\n",
		       label, p50, p95, ratio, hits, got);
		free(t);
		free(expr);
	}
	sqlite3_finalize(q);
	sqlite3_finalize(count);
	sqlite3_close(db);
	store_close(&s);
	return ret;
}
