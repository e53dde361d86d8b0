/* Unit tests of full-text search (store-fts.c, mime-text.c) on a real
 * SQLite store: indexing, every field, quoting, Unicode, snippets,
 * batching, and that deleted text leaves no trace in the files. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "jmap/jmap-mail.h"
#include "mime/mime.h"
#include "store/store.h"
#include "test.h"

static char dir[64], path[160];

static const char m_plain[] =
    "From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <jm@example.com>\r\n"
    "To: Bob <bob@example.org>\r\nCc: carol@example.net\r\nBcc: dave@example.edu\r\n"
    "Subject: Quarterly =?utf-8?q?R=C3=A9sum=C3=A9?= review\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "The NEAR AND OR budget \"quoted\" stra\xc3\x9f"
    "e \xe6\x9d\xb1\xe4\xba\xac\r\n";
static const char m_html[] =
    "From: eve@example.com\r\nSubject: html\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n"
    "<html><style>p{stylewordx:1}</style><p><b>Invoice</b>&amp;caf\xe9 &lt;tagtext&gt;"
    "<script>secretscript()</script> &#x41;lpha</p></html>\r\n"
    "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
    "filename=\"report-2023.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n"
    "--b--\r\n";
static const char m_alt[] =
    "From: frank@example.com\r\nSubject: alt\r\n"
    "Content-Type: multipart/alternative; boundary=a\r\n\r\n"
    "--a\r\nContent-Type: text/plain\r\n\r\nplainword\r\n"
    "--a\r\nContent-Type: text/html\r\n\r\n<p>plainword htmlonlyword</p>\r\n--a--\r\n";
static const char m_canary[] = "From: x@example.com\r\nSubject: secret plans\r\n\r\n"
                               "the zqxcanaryword is here\r\n";

static int64_t deliver(struct store *s, int64_t mailbox, uint32_t uid, const char *msg)
{
	const char *err;
	struct store_blob_writer *w;
	int64_t blob;
	size_t len = strlen(msg);
	CHECK(store_blob_begin(s, len, &w, &err) == 0);
	CHECK(store_blob_write(w, msg, len, &err) == 0);
	CHECK(store_blob_finish(&w, &blob, &err) == 0);
	CHECK(store_message_add(s, mailbox, uid, blob, 0, "", 1000 + uid, &err) == 0);
	return blob;
}

/* Blob ids matching a field search, as a bit mask (ids < 64), through a
 * second connection as Email/query would see them (ids from 62 on share
 * bit 62); -1 on an SQL error. */
static int64_t match(const char *field, const char *text)
{
	const char *err;
	char *expr;
	CHECK(store_fts_expr(field, text, &expr, &err) == 0);
	sqlite3 *db;
	sqlite3_stmt *st;
	CHECK(sqlite3_open(path, &db) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, "SELECT rowid FROM email_fts WHERE email_fts MATCH ?1", -1,
	                         &st, NULL) == SQLITE_OK);
	sqlite3_bind_text(st, 1, expr, -1, SQLITE_STATIC);
	int64_t mask = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		mask |= (int64_t)1
		        << (sqlite3_column_int64(st, 0) < 62 ? sqlite3_column_int64(st, 0) : 62);
	if (rc != SQLITE_DONE) {
		fprintf(stderr, "MATCH %s: %s\n", expr, sqlite3_errmsg(db));
		mask = -1;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(expr);
	return mask;
}

/* Does any file of the store (database, WAL) hold needle? */
static bool files_contain(const char *needle)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	for (size_t i = 0; i < 4; i++) {
		char p[200];
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		FILE *f = fopen(p, "rb");
		if (f == NULL)
			continue;
		size_t cap = 1 << 20, len = 0, n;
		char *data = malloc(cap);
		CHECK(data != NULL);
		while ((n = fread(data + len, 1, cap - len, f)) > 0) {
			len += n;
			if (len == cap) {
				CHECK((data = realloc(data, cap *= 2)) != NULL);
			}
		}
		fclose(f);
		bool found = memmem(data, len, needle, strlen(needle)) != NULL;
		free(data);
		if (found)
			return true;
	}
	return false;
}

static void catch_up_all(struct store *s)
{
	const char *err;
	bool complete = false;
	while (!complete)
		CHECK(store_fts_catch_up(s, 7, &complete, &err) == 0);
}

static void purge_all(struct store *s)
{
	const char *err;
	bool complete = false;
	for (int i = 0; !complete; i++) {
		CHECK(i < 1000);
		CHECK(store_fts_purge(s, 16, &complete, &err) == 0);
	}
}

static void test_expr(void)
{
	const char *error;
	char *e;
	OK(store_fts_expr("text", "hello world", &e, &error));
	CHECK_STR(e, "\"hello\" AND \"world\"");
	free(e);
	OK(store_fts_expr("from", " a\"b  x ", &e, &error));
	CHECK_STR(e, "{from} : (\"a\"\"b\" AND \"x\")");
	free(e);
	OK(store_fts_expr("subject", " \t ", &e, &error));
	CHECK_STR(e, "{subject} : (\"\")");
	free(e);
	OK(store_fts_expr("body", "!!! \xf0\x9f\x8e\x89 ok", &e, &error));
	CHECK_STR(e, "{body} : (\"ok\")");
	free(e);
	REFUSED(store_fts_expr("keywords", "x", &e, &error), "unknown search field");
	char big[1100];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	REFUSED(store_fts_expr("text", big, &e, &error), "too long");
	char many[200] = "";
	for (int i = 0; i < 40; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "ab ");
	REFUSED(store_fts_expr("text", many, &e, &error), "too many");
}

static void test_text_extract(void)
{
	struct mime_text t;
	CHECK(mime_text_extract(m_html, strlen(m_html), 1 << 16, &t) == 0);
	CHECK(strstr(t.body, "Invoice") != NULL && strstr(t.body, "&caf\xc3\xa9") != NULL);
	CHECK(strstr(t.body, "<tagtext>") != NULL && strstr(t.body, "Alpha") != NULL);
	CHECK(strstr(t.body, "secretscript") == NULL && strstr(t.body, "stylewordx") == NULL);
	CHECK(strstr(t.body, "report-2023.pdf") != NULL);
	CHECK(strstr(t.body, "<b>") == NULL);
	mime_text_free(&t);
	/* Bounded, and garbage never fails. */
	CHECK(mime_text_extract(m_plain, strlen(m_plain), 10, &t) == 0);
	CHECK(strlen(t.body) <= 10 + 3);
	CHECK(strstr(t.from, "J\xc3\xbcrgen") != NULL && strstr(t.bcc, "dave@example.edu") != NULL);
	mime_text_free(&t);
	CHECK(mime_text_extract("\x00\xff\r\n\r\n", 6, 100, &t) == 0);
	CHECK(t.subject != NULL && t.body != NULL);
	mime_text_free(&t);
}

static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* SearchSnippet/get through the JMAP envelope: escaping and the preview
 * bound (RFC 8621 5.1: at most 255 octets). */
static void test_search_snippet_get(struct store *s)
{
	const char *error;
	int64_t acct, box;
	OK(store_begin(s, &error));
	OK(store_account_ensure(s, "imaps://h snippets", &acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &box, &error));
	char msg[8192];
	int len = snprintf(msg, sizeof(msg), "Subject: Tom & <Jerry> \"zebra\" 'x'\r\n\r\n");
	for (int i = 0; i < 120; i++)
		len += snprintf(msg + len, sizeof(msg) - (size_t)len, "a<b>&c %s ",
		                i == 20 || i == 23 ? "zebra" : "filler");
	deliver(s, box, 1, msg);
	OK(store_commit(s, &error));
	catch_up_all(s);
	int64_t *ids;
	size_t n;
	OK(store_email_query(s, box, true, 0, 10, &ids, &n, NULL, &error));
	CHECK(n == 1);
	struct jmap_registry *reg;
	OK(jmap_registry_create(&reg, &error));
	OK(jmap_mail_register(reg, &error));
	struct jmap_mail_ctx ctx = {.store = s, .account_id = "alice", .state = "1"};
	struct jmap_limits limits = {1 << 20, 16, 64};
	char req[512];
	snprintf(req, sizeof(req),
	         "{\"using\":[\"urn:ietf:params:jmap:core\",\"urn:ietf:params:jmap:mail\"],"
	         "\"methodCalls\":[[\"SearchSnippet/get\",{\"accountId\":\"A%lld\","
	         "\"filter\":{\"operator\":\"AND\",\"conditions\":[{\"text\":\"zebra\"},"
	         "{\"operator\":\"NOT\",\"conditions\":[{\"text\":\"filler\"}]}]},"
	         "\"emailIds\":[\"E%lld\",\"E1\"]},\"0\"]]}",
	         (long long)acct, (long long)ids[0]);
	free(ids);
	struct jmap_output out;
	OK(jmap_process(reg, &limits, &ctx, "1", req, strlen(req), &out, &error));
	CHECK(out.status == 200);
	json_t *resp = json_loadb(out.body, out.body_len, 0, NULL);
	CHECK(resp != NULL);
	json_t *args =
	    json_array_get(json_array_get(json_object_get(resp, "methodResponses"), 0), 1);
	json_t *snip = json_array_get(json_object_get(args, "list"), 0);
	CHECK_STR(json_string_value(json_object_get(snip, "subject")),
	          "Tom &amp; &lt;Jerry&gt; &quot;<mark>zebra</mark>&quot; &#39;x&#39;");
	const char *preview = json_string_value(json_object_get(snip, "preview"));
	CHECK(preview != NULL && strlen(preview) <= 255);
	CHECK(strstr(preview, "<mark>zebra</mark>") != NULL);
	CHECK(strstr(preview, "<mark>filler") == NULL); /* NOT: not marked */
	CHECK(strstr(preview, "a&lt;b&gt;&amp;c") != NULL);
	CHECK(count_of(preview, "<mark>") == count_of(preview, "</mark>"));
	CHECK(count_of(preview, "<") == 2 * count_of(preview, "<mark>"));
	CHECK_STR(json_string_value(json_array_get(json_object_get(args, "notFound"), 0)), "E1");
	json_decref(resp);
	free(out.body);
	jmap_registry_free(&reg);
}

int main(void)
{
	const char *error;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-fts-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	mime_init();
	test_expr();
	test_text_extract();

	struct store *s;
	OK(store_open(path, &s, &error));
	int64_t acct, inbox, other, other_box;
	OK(store_begin(s, &error));
	OK(store_account_ensure(s, "imaps://h alice", &acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	int64_t b_plain = deliver(s, inbox, 1, m_plain);
	int64_t b_html = deliver(s, inbox, 2, m_html);
	int64_t b_alt = deliver(s, inbox, 3, m_alt);
	int64_t b_canary = deliver(s, inbox, 4, m_canary);
	OK(store_account_ensure(s, "imaps://h other", &other, &error));
	OK(store_mailbox_create(s, other, "INBOX", '/', "Inbox", &other_box, &error));
	char other_msg[200];
	snprintf(other_msg, sizeof(other_msg),
	         "Subject: gone\r\n\r\nthe otheraccountcanary words\r\n");
	int64_t b_other = deliver(s, other_box, 1, other_msg);
	uint64_t modseq = store_modseq(s);
	OK(store_commit(s, &error));
	CHECK(b_other < 64);

	/* Nothing indexed during the writes; catch-up in bounded batches. */
	uint64_t pending;
	OK(store_fts_pending(s, &pending, &error));
	CHECK(pending == 5);
	CHECK(match("text", "budget") == 0);
	bool complete;
	OK(store_fts_catch_up(s, 2, &complete, &error));
	CHECK(!complete);
	OK(store_fts_pending(s, &pending, &error));
	CHECK(pending == 3);
	OK(store_fts_catch_up(s, 3, &complete, &error));
	CHECK(!complete);
	OK(store_fts_catch_up(s, 3, &complete, &error));
	CHECK(complete);
	OK(store_fts_pending(s, &pending, &error));
	CHECK(pending == 0);
	/* Indexing is not a change devices see. */
	uint64_t now;
	OK(store_read_modseq(s, &now, &error));
	CHECK(now == modseq);

	int64_t P = (int64_t)1 << b_plain, H = (int64_t)1 << b_html, A = (int64_t)1 << b_alt;
	/* Each field. */
	CHECK(match("subject", "quarterly") == P);
	CHECK(match("subject", "budget") == 0);
	CHECK(match("from", "jm@example.com") == P);
	CHECK(match("from", "jurgen muller") == P); /* diacritics folded */
	CHECK(match("to", "bob") == P);
	CHECK(match("cc", "carol") == P);
	CHECK(match("bcc", "dave") == P);
	CHECK(match("bcc", "bob") == 0);
	CHECK(match("body", "budget") == P);
	CHECK(match("text", "budget") == P);
	CHECK(match("text", "dave") == P);
	/* Unicode: case and diacritics, CJK as one token; whole words only. */
	CHECK(match("text", "quart") == 0);
	CHECK(match("text", "RESUME") == P);
	CHECK(match("text", "r\xc3\xa9sum\xc3\xa9") == P);
	CHECK(match("text", "quarterly review") == P);
	CHECK(match("text", "stra\xc3\x9f"
	                    "e") == P);
	CHECK(match("text", "\xe6\x9d\xb1\xe4\xba\xac") == P);
	CHECK(match("body", "cafe") == H);
	/* HTML: text yes, tags, script and style no; file names yes. */
	CHECK(match("body", "invoice") == H);
	CHECK(match("body", "tagtext") == H);
	CHECK(match("text", "secretscript") == 0);
	CHECK(match("text", "stylewordx") == 0);
	CHECK(match("body", "report-2023.pdf") == H);
	/* multipart/alternative: the plain part only. */
	CHECK(match("body", "plainword") == A);
	CHECK(match("body", "htmlonlyword") == 0);
	/* Query syntax in user text is plain words, never a syntax error. */
	CHECK(match("text", "near and or") == P);
	CHECK(match("text", "NEAR(and") == P);
	CHECK(match("text", "\"quoted\"") == P);
	CHECK(match("text", "budget\" OR \"invoice") == 0);
	static const char *const hostile[] = {
	    "\"",       "\"\"", "*",    "^budget",   "-budget",         "budget*", "subject:budget",
	    "{body}:x", "(",    ")",    "NOT",       "AND OR NOT NEAR", "a+b",     "NEAR/2",
	    ":",        "''",   "\\\"", "budget\"*", "\"*\"",           "x\"y\"z",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		for (int f = 0; f < 2; f++)
			CHECK(match(f == 0 ? "text" : "subject", hostile[i]) >= 0);
	CHECK(match("text", "subject:budget") == 0); /* not a column filter */
	/* Empty, white space or punctuation only: matches nothing. */
	CHECK(match("text", "") == 0);
	CHECK(match("text", "  \t ") == 0);
	CHECK(match("text", "!!! ...") == 0);

	/* Snippets: markers around matches; NULL where a column has none. */
	char *subject, *preview, *expr;
	OK(store_fts_expr("text", "budget", &expr, &error));
	CHECK(store_fts_snippet(s, b_plain, expr, &subject, &preview, &error) == 1);
	CHECK(subject == NULL && preview != NULL);
	CHECK(strstr(preview, "\x01"
	                      "budget\x02") != NULL);
	free(preview);
	CHECK(store_fts_snippet(s, b_html, expr, &subject, &preview, &error) == 0);
	CHECK(subject == NULL && preview == NULL);
	free(expr);
	OK(store_fts_expr("text", "resume", &expr, &error));
	CHECK(store_fts_snippet(s, b_plain, expr, &subject, &preview, &error) == 1);
	CHECK(subject != NULL && preview == NULL);
	CHECK_STR(subject, "Quarterly \x01R\xc3\xa9sum\xc3\xa9\x02 review");
	free(subject);
	free(expr);

	/* Deletion: the expunge of a blob's last message drops its row, and
	 * once merged the text is nowhere in the files. */
	OK(store_scrub(s, &error));
	CHECK(files_contain("zqxcanaryword")); /* the scan is not blind */
	CHECK(match("text", "zqxcanaryword") == (int64_t)1 << b_canary);
	OK(store_begin(s, &error));
	OK(store_message_expunge(s, inbox, 4, &error));
	OK(store_commit(s, &error));
	CHECK(match("text", "zqxcanaryword") == 0);
	purge_all(s);
	OK(store_scrub(s, &error));
	CHECK(!files_contain("zqxcanaryword"));
	CHECK(!files_contain("secret plans"));
	CHECK(match("text", "budget") == P); /* the rest is intact */

	/* The id of the deleted last blob is reused by the next blob: it must
	 * be indexed, not taken for done. */
	OK(store_begin(s, &error));
	int64_t b_last = deliver(s, inbox, 5, "Subject: last\r\n\r\nlastword\r\n");
	OK(store_commit(s, &error));
	catch_up_all(s);
	OK(store_begin(s, &error));
	OK(store_message_expunge(s, inbox, 5, &error));
	int64_t b_new = deliver(s, inbox, 6, "Subject: reused\r\n\r\nfreshword\r\n");
	OK(store_commit(s, &error));
	CHECK(b_new == b_last);
	OK(store_fts_pending(s, &pending, &error));
	CHECK(pending == 1);
	catch_up_all(s);
	CHECK(match("text", "freshword") == (int64_t)1 << b_new);

	/* Account removal optimizes the index in the same transaction. */
	CHECK(files_contain("otheraccountcanary"));
	struct store_removal rm;
	OK(store_begin(s, &error));
	OK(store_account_remove(s, "imaps://h other", &rm, &error));
	OK(store_commit(s, &error));
	OK(store_scrub(s, &error));
	CHECK(rm.blobs == 1);
	CHECK(match("text", "otheraccountcanary") == 0);
	CHECK(!files_contain("otheraccountcanary"));
	CHECK(match("text", "invoice") == H);

	/* Many messages in batches, then a mass removal. */
	OK(store_begin(s, &error));
	for (uint32_t i = 0; i < 300; i++) {
		char m[200];
		snprintf(m, sizeof(m), "Subject: bulk %u\r\n\r\nbulkcanary%05u word%u\r\n", i, i,
		         i % 7);
		deliver(s, inbox, 100 + i, m);
	}
	OK(store_commit(s, &error));
	catch_up_all(s);
	CHECK(match("text", "bulkcanary00299") != 0);
	OK(store_begin(s, &error));
	for (uint32_t i = 0; i < 300; i++)
		OK(store_message_expunge(s, inbox, 100 + i, &error));
	OK(store_commit(s, &error));
	purge_all(s);
	OK(store_scrub(s, &error));
	CHECK(!files_contain("bulkcanary00299") && !files_contain("bulkcanary00007"));
	CHECK(match("text", "invoice") == H);

	test_search_snippet_get(s);
	store_close(&s);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("test-fts");
}
