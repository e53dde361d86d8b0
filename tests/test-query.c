/* Envelopes, threads and Email queries on a real store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mime/mime-envelope.h"
#include "store/store-envelope.h"
#include "store/store-private.h"
#include "store/store-query.h"
#include "store/store.h"
#include "test.h"

static char dir[64], path[128];
static struct store *s;
static int64_t inbox, archive;
static uint32_t next_uid = 1;

/* Add a message built from headers and a body; returns its email id. */
static int64_t add(int64_t mailbox, const char *headers, const char *body, int64_t date,
                   unsigned flags, const char *keywords)
{
	const char *error;
	char msg[8192];
	int n = snprintf(msg, sizeof(msg), "%s\r\n%s", headers, body);
	CHECK(n > 0 && (size_t)n < sizeof(msg));
	struct store_blob_writer *w;
	int64_t blob;
	OK(store_blob_begin(s, (uint64_t)n, &w, &error));
	OK(store_blob_write(w, msg, (size_t)n, &error));
	OK(store_blob_finish(&w, &blob, &error));
	OK(store_message_add(s, mailbox, next_uid++, blob, flags, keywords, date, &error));
	return (int64_t)store_modseq(s);
}

static int64_t thread_of(int64_t email)
{
	struct store_email e;
	const char *err;
	CHECK(store_email_get(s, email, &e, &err) == 1);
	return e.thread_id;
}

static void test_envelope_parser(void)
{
	struct mime_envelope env;
	const char *m = "Subject: =?UTF-8?Q?Re=3A_=5Blist=5D_Caf=C3=A9?=\r\n"
	                " (fwd)\r\n"
	                "From: \"Zoë Q\" <zoe@example.org>, other@example.org\r\n"
	                "To: undisclosed:;, b@example.org\r\n"
	                "Date: Tue, 3 Nov 2026 10:00:00 +0000\r\n"
	                "Message-ID: <m1@x>\r\n"
	                "In-Reply-To: <p1@x>\r\n"
	                "References: <r0@x> <p1@x>\r\n"
	                "Content-Type: multipart/mixed; boundary=b\r\n"
	                "\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n"
	                "Content-Type: application/pdf\r\n\r\nxx\r\n--b--\r\n";
	CHECK(mime_envelope_parse(m, strlen(m), strlen(m), &env) == 0);
	CHECK_STR(env.subject, "Re: [list] Café (fwd)");
	CHECK_STR(env.base_subject, "Café");
	CHECK_STR(env.from, "Zoë Q");
	CHECK_STR(env.to, "b@example.org");
	CHECK(env.sent_at == 1793700000);
	CHECK_STR(env.message_id, "m1@x");
	CHECK(env.n_refs == 2);
	CHECK_STR(env.refs[0], "p1@x");
	CHECK_STR(env.refs[1], "r0@x");
	CHECK(env.has_attachment);
	mime_envelope_free(&env);

	/* Multipart/mixed with text only, all read: no attachment; cut short:
	 * assumed to have one. */
	const char *t = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
	                "Content-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
	CHECK(mime_envelope_parse(t, strlen(t), strlen(t), &env) == 0);
	CHECK(!env.has_attachment && env.subject == NULL && env.message_id == NULL);
	CHECK_STR(env.base_subject, "");
	mime_envelope_free(&env);
	CHECK(mime_envelope_parse(t, strlen(t), 100000, &env) == 0 && env.has_attachment);
	mime_envelope_free(&env);

	/* Base subjects (RFC 5256 2.1). */
	static const char *const cases[][2] = {
	    {"Re: Fwd: hello", "hello"},
	    {"RE [x]: [tag] hello  world (fwd)", "hello world"},
	    {"[fwd: Re: hi]", "hi"},
	    {"[only]", "[only]"},
	    {"re:re:  ", ""},
	    {"Fw : x", "x"},
	    {"Fwx: y", "Fwx: y"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *b = mime_base_subject(cases[i][0]);
		CHECK_STR(b, cases[i][1]);
		free(b);
	}
	/* Header filter. */
	CHECK(mime_header_match(m, strlen(m), "subject", "CAFÉ") == 1);
	CHECK(mime_header_match(m, strlen(m), "X-None", NULL) == 0);
	CHECK(mime_header_match(m, strlen(m), "in-reply-to", "") == 1);
	CHECK(mime_header_match(m, strlen(m), "from", "nobody") == 0);
	/* The body is not the header block. */
	CHECK(mime_header_match(m, strlen(m), "Content-Type", "application/pdf") == 0);
	/* Bounded: folded lines without end, NULs. */
	char big[40000];
	memset(big, ' ', sizeof(big));
	memcpy(big, "Subject: x\n", 11);
	big[500] = '\0';
	CHECK(mime_envelope_parse(big, sizeof(big), sizeof(big), &env) == 0);
	mime_envelope_free(&env);
}

static void test_threads(void)
{
	const char *error;
	OK(store_begin(s, &error));
	/* A reply arriving before its original. */
	int64_t reply =
	    add(inbox, "Subject: Re: plan\r\nMessage-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n", "b",
	        2000, 0, "");
	int64_t orig = add(inbox, "Subject: plan\r\nMessage-ID: <a@x>\r\n", "a", 1000, 0, "");
	CHECK(thread_of(reply) == reply && thread_of(orig) == reply);
	/* Same references but another subject: a new conversation. */
	int64_t other = add(inbox, "Subject: lunch?\r\nMessage-ID: <c@x>\r\nReferences: <a@x>\r\n",
	                    "c", 3000, 0, "");
	CHECK(thread_of(other) == other);
	/* Same subject, no shared id: not threaded. */
	int64_t same_subject =
	    add(inbox, "Subject: plan\r\nMessage-ID: <d@x>\r\n", "d", 3500, 0, "");
	CHECK(thread_of(same_subject) == same_subject);
	/* No Message-ID at all: a thread of its own, and not a wildcard. */
	int64_t lone = add(inbox, "Subject: plan\r\n", "e", 3600, 0, "");
	int64_t lone2 = add(inbox, "Subject: plan\r\n", "f", 3700, 0, "");
	CHECK(thread_of(lone) == lone && thread_of(lone2) == lone2);
	/* The same message in another folder is the same Email (a second
	 * membership), in its thread still. */
	int64_t copy = add(archive, "Subject: plan\r\nMessage-ID: <a@x>\r\n", "a", 1000, 0, "");
	CHECK(copy != orig && thread_of(orig) == reply);
	{
		int64_t *mids, *boxes;
		size_t nm;
		OK(store_email_members(s, orig, &mids, &boxes, &nm, &error));
		CHECK(nm == 2 && mids[0] == orig && mids[1] == copy && boxes[0] == inbox &&
		      boxes[1] == archive);
		free(mids);
		free(boxes);
	}
	OK(store_commit(s, &error));

	/* A late message linking two threads merges them into the older. */
	uint64_t before;
	OK(store_read_modseq(s, &before, &error));
	OK(store_begin(s, &error));
	int64_t link =
	    add(inbox, "Subject: Re: plan\r\nMessage-ID: <g@x>\r\nReferences: <a@x> <d@x>\r\n", "g",
	        4000, 0, "");
	OK(store_commit(s, &error));
	CHECK(thread_of(link) == reply && thread_of(same_subject) == reply);
	struct store_changes ch;
	OK(store_changes(s, STORE_CHANGES_THREAD, before, 100, &ch, &error));
	CHECK(ch.n_destroyed == 1 && ch.destroyed[0] == same_subject);
	CHECK(ch.n_updated == 1 && ch.updated[0] == reply && ch.n_created == 0);
	store_changes_free(&ch);
	OK(store_changes(s, STORE_CHANGES_EMAIL, before, 100, &ch, &error));
	CHECK(ch.n_created == 1 && ch.created[0] == link);
	CHECK(ch.n_updated == 1 && ch.updated[0] == same_subject);
	store_changes_free(&ch);

	int64_t *ids;
	size_t n;
	OK(store_thread_emails(s, 0, reply, &ids, &n, &error));
	CHECK(n == 4 && ids[0] == orig && ids[1] == reply && ids[2] == same_subject &&
	      ids[3] == link);
	free(ids);

	/* Removing the last message of a thread destroys it. */
	OK(store_read_modseq(s, &before, &error));
	OK(store_begin(s, &error));
	OK(store_message_expunge(s, inbox, 6, &error)); /* lone2 */
	OK(store_message_expunge(s, inbox, 1, &error)); /* the reply: the thread stays */
	OK(store_commit(s, &error));
	OK(store_changes(s, STORE_CHANGES_THREAD, before, 100, &ch, &error));
	CHECK(ch.n_destroyed == 1 && ch.destroyed[0] == lone2);
	CHECK(ch.n_updated == 1 && ch.updated[0] == reply);
	store_changes_free(&ch);
	OK(store_thread_emails(s, 0, lone2, &ids, &n, &error));
	CHECK(n == 0);
	free(ids);
	OK(store_thread_emails(s, 0, reply, &ids, &n, &error));
	CHECK(n == 3);
	free(ids);
}

/* Run q and compare with the expected ids (0-terminated). */
static void expect(const struct store_query *q, const int64_t *want)
{
	struct store_query_result r;
	enum store_query_error kind;
	const char *err;
	if (store_email_query_run(s, q, &r, &kind, &err) < 0) {
		fprintf(stderr, "query failed: %s\n", err);
		CHECK(0);
	}
	size_t n = 0;
	while (want[n] != 0)
		n++;
	bool same = r.n_ids == n;
	for (size_t i = 0; same && i < n; i++)
		same = r.ids[i] == want[i];
	if (!same) {
		fprintf(stderr, "got:");
		for (size_t i = 0; i < r.n_ids; i++)
			fprintf(stderr, " %lld", (long long)r.ids[i]);
		fprintf(stderr, "\nwant:");
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %lld", (long long)want[i]);
		fprintf(stderr, "\n");
	}
	CHECK(same);
	free(r.ids);
}

static void test_queries(void)
{
	const char *error;
	/* A fresh mailbox with known content. */
	int64_t acct, box;
	OK(store_begin(s, &error));
	OK(store_account_ensure(s, "q", &acct, &error));
	OK(store_mailbox_create(s, acct, "Q", '/', NULL, &box, &error));
	int64_t a = add(box,
	                "Subject: alpha\r\nFrom: Bob <b@x>\r\nMessage-ID: <qa@x>\r\n"
	                "X-Tag: Hello World\r\n",
	                "x", 100, STORE_FLAG_SEEN, "");
	int64_t b = add(box,
	                "Subject: Re: alpha\r\nFrom: alice <a@x>\r\nMessage-ID: <qb@x>\r\n"
	                "References: <qa@x>\r\nContent-Type: image/png\r\n",
	                "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 200, 0, "$Label");
	int64_t c = add(box, "Subject: Ærlig talt\r\nFrom: zed@x\r\nMessage-ID: <qc@x>\r\n", "x",
	                300, STORE_FLAG_FLAGGED | STORE_FLAG_SEEN, "$label other");
	uint32_t d_uid = next_uid;
	int64_t d = add(box, "Subject: beta\r\nFrom: \"10 Ten\" <t@x>\r\n", "x", 400, 0, "");
	OK(store_commit(s, &error));

	struct store_cond in = {.kind = STORE_COND_IN_MAILBOX, .num = box};
	struct store_query q = {.filter = &in, .limit = 100};
	expect(&q, (int64_t[]){d, c, b, a, 0}); /* default: newest first */
	struct store_sort so = {STORE_SORT_SUBJECT, true, STORE_COLLATION_UNICODE_CASEMAP, NULL};
	q.sort = &so;
	q.n_sort = 1;
	/* Base subject "alpha" twice (tie: id order), then beta, Ærlig. */
	expect(&q, (int64_t[]){a, b, d, c, 0});
	so.property = STORE_SORT_FROM;
	expect(&q, (int64_t[]){d, b, a, c, 0}); /* "10 ten" < alice < bob < zed */
	so.collation = STORE_COLLATION_ASCII_NUMERIC;
	expect(&q, (int64_t[]){d, a, b, c, 0}); /* only d is a number */
	so = (struct store_sort){STORE_SORT_SIZE, false, 0, NULL};
	expect(&q, (int64_t[]){b, a, c, d, 0}); /* b is largest; then by id desc? */
	so = (struct store_sort){STORE_SORT_HAS_KEYWORD, false, 0, "$label"};
	expect(&q, (int64_t[]){c, b, d, a, 0});
	so = (struct store_sort){STORE_SORT_SOME_IN_THREAD_KEYWORD, false, 0, "$label"};
	expect(&q, (int64_t[]){c, b, a, d, 0}); /* a's thread has b */
	so = (struct store_sort){STORE_SORT_RECEIVED_AT, true, 0, NULL};

	/* Conditions. */
	struct store_cond leaves[4];
	struct store_cond and = {.kind = STORE_COND_AND, .children = leaves, .n_children = 2};
	q.filter = &and;
	leaves[0] = in;
	leaves[1] = (struct store_cond){.kind = STORE_COND_HAS_KEYWORD, .text = "$seen"};
	expect(&q, (int64_t[]){a, c, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_NOT_KEYWORD, .text = "$label"};
	expect(&q, (int64_t[]){a, d, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_HAS_KEYWORD, .text = "other"};
	expect(&q, (int64_t[]){c, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_HAS_KEYWORD, .text = "othe"};
	expect(&q, (int64_t[]){0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_ALL_IN_THREAD_KEYWORD, .text = "$seen"};
	expect(&q, (int64_t[]){c, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_SOME_IN_THREAD_KEYWORD, .text = "$seen"};
	expect(&q, (int64_t[]){a, b, c, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_NONE_IN_THREAD_KEYWORD, .text = "$seen"};
	expect(&q, (int64_t[]){d, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_HAS_ATTACHMENT, .flag = true};
	expect(&q, (int64_t[]){b, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_MIN_SIZE, .num = 80};
	expect(&q, (int64_t[]){b, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_AFTER, .num = 200};
	expect(&q, (int64_t[]){b, c, d, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_BEFORE, .num = 200};
	expect(&q, (int64_t[]){a, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_HEADER, .name = "x-tag", .text = "o w"};
	expect(&q, (int64_t[]){a, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_HEADER, .name = "Content-Type"};
	expect(&q, (int64_t[]){b, 0});
	/* NOT (a OR d) and an injection attempt that stays data. */
	struct store_cond ors[2] = {{.kind = STORE_COND_BEFORE, .num = 150},
	                            {.kind = STORE_COND_HAS_KEYWORD, .text = "') OR 1 --"}};
	leaves[1] = (struct store_cond){.kind = STORE_COND_NOT, .children = ors, .n_children = 2};
	expect(&q, (int64_t[]){b, c, d, 0});
	int64_t others[] = {inbox, archive};
	leaves[1] = (struct store_cond){
	    .kind = STORE_COND_IN_MAILBOX_OTHER_THAN, .ids = others, .n_ids = 2};
	expect(&q, (int64_t[]){a, b, c, d, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_NONE};
	expect(&q, (int64_t[]){0});
	/* Full-text conditions, once the backlog is indexed; an unknown field
	 * is unsupportedFilter. */
	bool complete = false;
	CHECK(store_fts_catch_up(s, 1000, &complete, &error) == 0 && complete);
	leaves[1] =
	    (struct store_cond){.kind = STORE_COND_TEXT, .name = "subject", .text = "ALPHA"};
	expect(&q, (int64_t[]){a, b, 0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_TEXT, .name = "text", .text = "zebra"};
	expect(&q, (int64_t[]){0});
	leaves[1] = (struct store_cond){.kind = STORE_COND_TEXT, .name = "nope", .text = "a"};
	struct store_query_result r;
	enum store_query_error kind;
	CHECK(store_email_query_run(s, &q, &r, &kind, &error) < 0 &&
	      kind == STORE_QUERY_UNSUPPORTED_FILTER);
	/* Too deep. */
	struct store_cond chain[STORE_QUERY_MAX_DEPTH + 3];
	for (size_t i = 0; i + 1 < sizeof(chain) / sizeof(chain[0]); i++)
		chain[i] = (struct store_cond){
		    .kind = STORE_COND_AND, .children = &chain[i + 1], .n_children = 1};
	chain[STORE_QUERY_MAX_DEPTH + 2] = in;
	q.filter = chain;
	CHECK(store_email_query_run(s, &q, &r, &kind, &error) < 0 &&
	      kind == STORE_QUERY_UNSUPPORTED_FILTER);

	/* Windows: position, negative position, anchors, collapse. */
	q.filter = &in;
	q.limit = 2;
	q.want_total = true;
	q.position = 1;
	expect(&q, (int64_t[]){b, c, 0});
	q.position = -1;
	expect(&q, (int64_t[]){d, 0});
	q.position = -10;
	expect(&q, (int64_t[]){a, b, 0});
	q.position = 0;
	q.has_anchor = true;
	q.anchor = c;
	q.anchor_offset = -1;
	expect(&q, (int64_t[]){b, c, 0});
	q.anchor_offset = 5;
	expect(&q, (int64_t[]){0});
	q.anchor = 999999;
	CHECK(store_email_query_run(s, &q, &r, &kind, &error) < 0 &&
	      kind == STORE_QUERY_ANCHOR_NOT_FOUND);
	q.has_anchor = false;
	q.collapse_threads = true;
	q.limit = 10;
	expect(&q, (int64_t[]){a, c, d, 0});
	CHECK(store_email_query_run(s, &q, &r, &kind, &error) == 0 && r.total == 3);
	free(r.ids);
	q.collapse_threads = false;
	CHECK(store_email_query_run(s, &q, &r, &kind, &error) == 0 && r.total == 4);
	free(r.ids);

	/* queryChanges: a flag change moves an email in a keyword sort. */
	uint64_t since;
	OK(store_read_modseq(s, &since, &error));
	OK(store_begin(s, &error));
	OK(store_message_set_flags(s, box, d_uid, STORE_FLAG_SEEN, "", &error));  /* d */
	OK(store_message_set_flags(s, inbox, 2, STORE_FLAG_FLAGGED, "", &error)); /* elsewhere */
	int64_t e = add(box, "Subject: gamma\r\nMessage-ID: <qe@x>\r\n", "x", 50, 0, "");
	OK(store_commit(s, &error));
	struct store_cond seen[2] = {in, {.kind = STORE_COND_HAS_KEYWORD, .text = "$seen"}};
	struct store_cond seen_and = {.kind = STORE_COND_AND, .children = seen, .n_children = 2};
	struct store_query cq = {.filter = &seen_and, .sort = &so, .n_sort = 1};
	struct store_query_changes qc;
	OK(store_email_query_changes(s, &cq, since, 0, false, 0, &qc, &kind, &error));
	/* e is new: never in the old list; the other mailbox's email may have
	 * been in this mailbox before (an Email's mailboxes change since
	 * schema 3): listed as removed too. */
	CHECK(qc.n_removed == 2 && (qc.removed[0] == d || qc.removed[1] == d));
	CHECK(qc.n_added == 1 && qc.added[0] == d && qc.added_index[0] == 2);
	store_query_changes_free(&qc);
	/* Without the mailbox condition it may have matched "$seen" before (a
	 * mutable filter): listed too. */
	cq.filter = &seen[1];
	OK(store_email_query_changes(s, &cq, since, 0, false, 0, &qc, &kind, &error));
	CHECK(qc.n_removed == 2 && (qc.removed[0] == d || qc.removed[1] == d));
	store_query_changes_free(&qc);
	cq.filter = &in;
	OK(store_email_query_changes(s, &cq, since, 0, false, 0, &qc, &kind, &error));
	CHECK(qc.n_added == 2 && qc.added[0] == e && qc.added_index[0] == 0 && qc.added[1] == d &&
	      qc.added_index[1] == 4);
	/* inMailbox is mutable (mailboxIds): the other mailbox's changed
	 * email is listed as removed too. */
	CHECK(qc.n_removed == 2 && (qc.removed[0] == d || qc.removed[1] == d));
	store_query_changes_free(&qc);
	/* upToId counts only for an immutable sort and filter: inMailbox is
	 * not one any more (an Email's mailboxes change). */
	OK(store_email_query_changes(s, &cq, since, 0, true, b, &qc, &kind, &error));
	CHECK(qc.n_added == 2 && qc.added[0] == e);
	store_query_changes_free(&qc);
	CHECK(store_email_query_changes(s, &cq, since, 2, false, 0, &qc, &kind, &error) < 0 &&
	      kind == STORE_QUERY_TOO_MANY_CHANGES);
	CHECK(store_email_query_changes(s, &cq, since + 100, 0, false, 0, &qc, &kind, &error) < 0 &&
	      kind == STORE_QUERY_CANNOT_CALCULATE);
	/* Collapsed threads: a new reply makes its thread's emails change. */
	OK(store_read_modseq(s, &since, &error));
	OK(store_begin(s, &error));
	int64_t f = add(box, "Subject: re: gamma\r\nMessage-ID: <qf@x>\r\nIn-Reply-To: <qe@x>\r\n",
	                "x", 60, 0, "");
	OK(store_commit(s, &error));
	cq.collapse_threads = true;
	OK(store_email_query_changes(s, &cq, since, 0, false, 0, &qc, &kind, &error));
	CHECK(qc.n_removed == 1 && qc.removed[0] == e);
	CHECK(qc.n_added == 1 && qc.added[0] == e && qc.added_index[0] == 0);
	store_query_changes_free(&qc);
	(void)f;
}

/* The last Email query statement run (its SQL with ? for the values). */
static char last_query[8192];

static int trace_query(unsigned type, void *ctx, void *p, void *x)
{
	(void)type;
	(void)ctx;
	(void)x;
	const char *sql = sqlite3_sql(p);
	if (sql != NULL && strncmp(sql, "SELECT m.id", 11) == 0)
		snprintf(last_query, sizeof(last_query), "%s", sql);
	return 0;
}

/* The plan of the last query: every line joined by " | ". */
static void plan_of_last(char *out, size_t size)
{
	char sql[8300];
	snprintf(sql, sizeof(sql), "EXPLAIN QUERY PLAN %s", last_query);
	sqlite3_stmt *st;
	CHECK(sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) == SQLITE_OK);
	size_t used = 0;
	out[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW) {
		int n = snprintf(out + used, size - used, "%s | ", sqlite3_column_text(st, 3));
		if (n > 0 && (size_t)n < size - used)
			used += (size_t)n;
	}
	sqlite3_finalize(st);
}

/* inMailbox with a receivedAt window walks the memberships' (mailbox,
 * internaldate) index and stops after the page: no sort of the mailbox;
 * all mailboxes of an account walk (account, internaldate). */
static void test_plans(void)
{
	const char *error;
	enum store_query_error kind;
	struct store_query_result r;
	char plan[4096];
	sqlite3_trace_v2(store_db(s), SQLITE_TRACE_STMT, trace_query, NULL);
	struct store_cond in = {.kind = STORE_COND_IN_MAILBOX, .num = inbox};
	struct store_query q = {.account_id = 1, .filter = &in, .limit = 50};
	OK(store_email_query_run(s, &q, &r, &kind, &error));
	free(r.ids);
	plan_of_last(plan, sizeof(plan));
	CHECK(strstr(plan, "messages_date (mailbox_id=?)") != NULL);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	struct store_cond window[3] = {
	    in, {.kind = STORE_COND_AFTER, .num = 100}, {.kind = STORE_COND_BEFORE, .num = 5000}};
	struct store_cond and = {.kind = STORE_COND_AND, .children = window, .n_children = 3};
	q.filter = &and;
	OK(store_email_query_run(s, &q, &r, &kind, &error));
	free(r.ids);
	plan_of_last(plan, sizeof(plan));
	CHECK(strstr(plan, "messages_date (mailbox_id=? AND internaldate>? AND internaldate<?)") !=
	      NULL);
	CHECK(strstr(plan, "TEMP B-TREE") == NULL);
	q.filter = NULL;
	OK(store_email_query_run(s, &q, &r, &kind, &error));
	free(r.ids);
	plan_of_last(plan, sizeof(plan));
	CHECK(strstr(plan, "emails_account_date") != NULL && strstr(plan, "TEMP B-TREE") == NULL);
	sqlite3_trace_v2(store_db(s), 0, NULL, NULL);
}

static void test_catch_up(void)
{
	/* A store from before envelopes: threads filled in on open. */
	const char *error;
	store_close(&s);
	sqlite3 *db;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
	                   "DROP TRIGGER emails_thread_gone; UPDATE emails SET thread_id = 0;"
	                   "DELETE FROM threads; DELETE FROM thread_refs; DELETE FROM envelopes;",
	                   NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	uint64_t before;
	OK(store_open(path, &s, &error));
	OK(store_read_modseq(s, &before, &error));
	struct store_changes ch;
	OK(store_changes(s, STORE_CHANGES_EMAIL, before - 1, 1000, &ch, &error));
	CHECK(ch.n_updated > 10);
	store_changes_free(&ch);
	struct store_query q = {.limit = 1000, .collapse_threads = true, .want_total = true};
	struct store_query_result r;
	enum store_query_error kind;
	OK(store_email_query_run(s, &q, &r, &kind, &error));
	CHECK(r.total > 3 && r.total < r.n_ids + 1);
	free(r.ids);
}

int main(void)
{
	const char *error;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-query.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	OK(store_open(path, &s, &error));
	int64_t acct;
	OK(store_begin(s, &error));
	OK(store_account_ensure(s, "imaps://h alice", &acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	OK(store_mailbox_create(s, acct, "Archive", '/', NULL, &archive, &error));
	OK(store_commit(s, &error));
	test_envelope_parser();
	test_threads();
	test_queries();
	test_plans();
	test_catch_up();
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("test-query");
}
