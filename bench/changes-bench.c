/*
 * The cost of /changes against the size of the store: the same 100 Email
 * changes (flag changes made by the sync) asked for by Email/changes,
 * Mailbox/changes and Thread/changes on stores of 10k and 100k messages.
 * The cost must follow the number of changes, not the store (schema 3:
 * one range of an (account_id, modseq) index per part).
 *
 *   changes-bench [--runs N] [COUNT...]      (default: 10000 100000)
 *
 * Builds each store in a temporary directory (synthetic small messages,
 * a tenth of them in a second mailbox too), makes the 100 changes, then
 * times store_changes_account() and prints p50/p95 in ms. For comparison
 * in the same run, "schema-2 SQL" times the query schema 2 ran for
 * Email/changes (over messages, created_modseq unindexed) on the same
 * rows. Not a test: prints numbers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "store/store-private.h"

#define CHANGES 100

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

static void die(const char *what, const char *err)
{
	fprintf(stderr, "changes-bench: %s: %s\n", what, err);
	exit(1);
}

static int64_t add_blob(struct store *s, const char *text)
{
	const char *err;
	struct store_blob_writer *w;
	int64_t id = 0;
	size_t len = strlen(text);
	if (store_blob_begin(s, len, &w, &err) < 0 || store_blob_write(w, text, len, &err) < 0 ||
	    store_blob_finish(&w, &id, &err) < 0)
		die("blob", err);
	return id;
}

static void report(const char *what, double *t, int runs)
{
	qsort(t, (size_t)runs, sizeof(*t), cmp_double);
	printf("  %-28s p50 %7.3f ms   p95 %7.3f ms\n", what, t[runs / 2], t[runs * 95 / 100]);
}

static void bench(unsigned count, int runs)
{
	char dir[] = "/tmp/mk-changes-bench-XXXXXX", path[64];
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", "failed");
	snprintf(path, sizeof(path), "%s/store.db", dir);
	struct store *s;
	const char *err;
	if (store_open(path, &s, &err) < 0)
		die("open", err);
	int64_t acct, other, inbox, arch, other_box;
	double t0 = now_ms();
	if (store_begin(s, &err) < 0 || store_account_ensure(s, "account:1", &acct, &err) < 0 ||
	    store_account_ensure(s, "account:2", &other, &err) < 0 ||
	    store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &err) < 0 ||
	    store_mailbox_create(s, acct, "Archive", '/', NULL, &arch, &err) < 0 ||
	    store_mailbox_create(s, other, "INBOX", '/', "Inbox", &other_box, &err) < 0)
		die("setup", err);
	for (unsigned i = 1; i <= count; i++) {
		char text[160];
		snprintf(text, sizeof(text),
		         "Subject: message %u\r\nMessage-ID: <%u@bench>\r\n\r\nbody %u\r\n", i, i,
		         i);
		int64_t b = add_blob(s, text);
		if (store_message_add(s, inbox, i, b, 0, "", 1000000 + i, &err) < 0 ||
		    (i % 10 == 0 &&
		     store_message_add(s, arch, i, b, 0, "", 1000000 + i, &err) < 0) ||
		    (i % 4 == 0 &&
		     store_message_add(s, other_box, i, b, 0, "", 1000000 + i, &err) < 0))
			die("add", err);
		if (i % 2000 == 0 && (store_commit(s, &err) < 0 || store_begin(s, &err) < 0))
			die("commit", err);
	}
	if (store_commit(s, &err) < 0)
		die("commit", err);
	double built = now_ms() - t0;
	uint64_t since;
	if (store_read_modseq(s, &since, &err) < 0)
		die("modseq", err);
	/* The same 100 changes at every size: \Seen on 100 messages spread
	 * over the mailbox. */
	if (store_begin(s, &err) < 0)
		die("begin", err);
	for (unsigned k = 0; k < CHANGES; k++)
		if (store_message_set_flags(s, inbox, 1 + k * (count / CHANGES), STORE_FLAG_SEEN,
		                            "", &err) < 0)
			die("flags", err);
	if (store_commit(s, &err) < 0)
		die("commit", err);
	printf("%u messages (%u memberships; store built in %.1f s), %d changes:\n", count,
	       count + count / 10 + count / 4, built / 1000, CHANGES);

	static const struct {
		const char *name;
		enum store_changes_kind kind;
		bool all;
	} cases[] = {
	    {"Email/changes (account)", STORE_CHANGES_EMAIL, false},
	    {"Email/changes (all)", STORE_CHANGES_EMAIL, true},
	    {"Mailbox/changes (account)", STORE_CHANGES_MAILBOX, false},
	    {"Thread/changes (account)", STORE_CHANGES_THREAD, false},
	};
	double *t = calloc((size_t)runs, sizeof(*t));
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		for (int r = 0; r < runs; r++) {
			struct store_changes ch;
			double a = now_ms();
			if (store_changes_account(s, cases[c].all ? 0 : acct, cases[c].kind, since,
			                          500, &ch, &err) < 0)
				die("changes", err);
			t[r] = now_ms() - a;
			if (cases[c].kind == STORE_CHANGES_EMAIL && ch.n_updated != CHANGES)
				die("changes", "not the 100 changes");
			store_changes_free(&ch);
		}
		report(cases[c].name, t, runs);
	}
	/* What schema 2 ran for Email/changes, on the same rows. */
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(
	        store_db(s),
	        "SELECT created_modseq, 'c', id FROM messages WHERE created_modseq > "
	        "?1 UNION ALL SELECT modseq, 'u', id FROM messages WHERE modseq > ?1 "
	        "AND created_modseq <= ?1 UNION ALL SELECT modseq, 'd', object_id "
	        "FROM tombstones WHERE kind = 'message' AND modseq > ?1 ORDER BY 1",
	        -1, &st, NULL) != SQLITE_OK)
		die("prepare", sqlite3_errmsg(store_db(s)));
	for (int r = 0; r < runs; r++) {
		double a = now_ms();
		sqlite3_bind_int64(st, 1, (sqlite3_int64)since);
		while (sqlite3_step(st) == SQLITE_ROW)
			;
		sqlite3_reset(st);
		t[r] = now_ms() - a;
	}
	sqlite3_finalize(st);
	report("schema-2 SQL (same rows)", t, runs);
	free(t);
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "changes-bench: could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
	int runs = 200;
	unsigned counts[8], n = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
			runs = (int)strtol(argv[++i], NULL, 10);
		} else if (n < 8) {
			counts[n++] = (unsigned)strtoul(argv[i], NULL, 10);
		}
	}
	if (runs < 1)
		runs = 1;
	if (n == 0) {
		counts[n++] = 10000;
		counts[n++] = 100000;
	}
	for (unsigned i = 0; i < n; i++)
		if (counts[i] >= CHANGES)
			bench(counts[i], runs);
	return 0;
}
