/* Unit tests of message preparation for submission (mime-submit.c), the
 * outbox table (store-outbox.c) and SMTP URLs (smtp.c). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mime/mime-submit.h"
#include "smtp/smtp.h"
#include "store/store-outbox.h"
#include "store/store.h"
#include "test.h"

static int prepare(const char *msg, const char *const *rcpts, size_t n, struct mime_submission *s,
                   const char **error)
{
	return mime_submit_prepare(msg, strlen(msg), rcpts, n, "me@example.org", 1700000000, s,
	                           error);
}

static void test_addresses(void)
{
	const char *good[] = {"a@b.c", "first.last+tag@example.org", "x@[192.0.2.1]",
	                      "\xc3\xa9@\xc3\xa9xample.org", "o'brien@example.ie"};
	const char *bad[] = {
	    "",        "a",       "@b.c",      "a@",       "a b@c.d",
	    "a@b c.d", "<a@b.c>", "a@b.c\r\n", "a..b@c.d", ".a@c.d",
	    "a@c..d",  "a@.c",    "\"q\"@c.d", "a@b@c.d",  "a@b.c\nRCPT TO:<x@y.z>",
	    "a,b@c.d", "a@(x).d"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(mime_submit_valid_address(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!mime_submit_valid_address(bad[i]));
	char long_local[80];
	memset(long_local, 'a', 65);
	snprintf(long_local + 65, sizeof(long_local) - 65, "@b.c");
	CHECK(!mime_submit_valid_address(long_local));
}

static void test_prepare(void)
{
	struct mime_submission s;
	const char *error;
	/* Recipients from To, Cc, Bcc (groups, folding, duplicates); Bcc gone
	 * from the bytes; Date and Message-ID in front; LF made CRLF. */
	OK(prepare("From: Me <me@example.org>\n"
	           "To: A <a@example.net>, undisclosed: b@example.net, c@example.net;\n"
	           "cc: A <A@example.net>\n"
	           "BCC: hidden@example.net,\n\tother@example.net\n"
	           "Subject: s\n"
	           "\n"
	           "Bcc: not a header, in the body\n",
	           NULL, 0, &s, &error));
	CHECK(s.n_rcpts == 5);
	CHECK_STR(s.rcpts[0], "a@example.net");
	CHECK_STR(s.rcpts[1], "b@example.net");
	CHECK_STR(s.rcpts[3], "hidden@example.net");
	CHECK_STR(s.rcpts[4], "other@example.net");
	CHECK(s.removed_bcc && s.added_date && s.added_message_id);
	CHECK_STR(s.from_header, "me@example.org");
	CHECK(strncmp(s.data, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <", 52) == 0);
	CHECK(strstr(s.data, "@example.org>\r\nFrom: Me <me@example.org>\r\nTo: A") != NULL);
	CHECK(strstr(s.data, "hidden") == NULL && strstr(s.data, "BCC") == NULL);
	CHECK(strstr(s.data, "\r\n\r\nBcc: not a header, in the body\r\n") != NULL);
	CHECK(memchr(s.data, '\n', s.len) != NULL);
	for (size_t i = 0; i < s.len; i++)
		CHECK(s.data[i] != '\n' || (i > 0 && s.data[i - 1] == '\r'));
	CHECK(s.len == strlen(s.data));
	mime_submission_free(&s);

	/* Explicit recipients win; present Date/Message-ID are kept. */
	const char *to[] = {"x@example.com", "X@example.com", "y@example.com"};
	const char *m2 = "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <k@x>\r\n"
	                 "To: a@example.net\r\n\r\nbody";
	OK(prepare(m2, to, 3, &s, &error));
	CHECK(s.n_rcpts == 2 && !s.added_date && !s.added_message_id && !s.removed_bcc);
	CHECK(s.len == strlen(m2) && memcmp(s.data, m2, s.len) == 0);
	mime_submission_free(&s);

	/* An empty Bcc is fine; a message with no recipients is not. */
	OK(prepare("To: a@example.net\r\nBcc:\r\n\r\n", NULL, 0, &s, &error));
	CHECK(s.n_rcpts == 1 && s.removed_bcc);
	mime_submission_free(&s);
	REFUSED(prepare("Subject: x\r\n\r\nbody", NULL, 0, &s, &error), "no recipients");
	REFUSED(prepare("Bcc:\r\n\r\n", NULL, 0, &s, &error), "no recipients");

	/* Refusals: injection and malformed input. */
	const char *inj[] = {"a@example.net\r\nRCPT TO:<evil@example.net>"};
	REFUSED(prepare("To: b@example.net\r\n\r\n", inj, 1, &s, &error), "line break");
	const char *bad[] = {"not an address"};
	REFUSED(prepare("To: b@example.net\r\n\r\n", bad, 1, &s, &error), "invalid recipient");
	REFUSED(prepare("To: b@exa mple.net\r\n\r\n", NULL, 0, &s, &error), "invalid recipient");
	REFUSED(prepare("To: b@example.net\r\nRCPT TO:<e@x.org>\r\n\r\n", NULL, 0, &s, &error),
	        "field name");
	REFUSED(prepare("To: b@example.net\r\nno colon here\r\n\r\n", NULL, 0, &s, &error),
	        "no field name");
	REFUSED(prepare(" To: b@example.net\r\n\r\n", NULL, 0, &s, &error), "field name");
	REFUSED(prepare("To: b@example.net\r\nSubject: no body separator", NULL, 0, &s, &error),
	        "empty line");
	REFUSED(
	    mime_submit_prepare("To: b@example.net\r\n\r\na\0b", 26, NULL, 0, NULL, 0, &s, &error),
	    "NUL");
	char longline[1200];
	snprintf(longline, sizeof(longline), "To: b@example.net\r\nX: %01100d\r\n\r\n", 0);
	REFUSED(prepare(longline, NULL, 0, &s, &error), "998");
	/* Too many recipients. */
	char many[8000] = "To: ";
	for (int i = 0; i <= MIME_SUBMIT_MAX_RCPTS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "r%d@example.net,%s", i,
		         i % 10 == 9 ? "\r\n " : "");
	snprintf(many + strlen(many), sizeof(many) - strlen(many), "last@example.net\r\n\r\n");
	REFUSED(prepare(many, NULL, 0, &s, &error), "too many");
	/* Without a sender, the Message-ID's domain is the From address's. */
	const char *m3 = "From: z@example.io\r\nTo: a@example.net\r\n\r\n";
	OK(mime_submit_prepare(m3, strlen(m3), NULL, 0, NULL, 0, &s, &error));
	CHECK(strstr(s.data, "@example.io>\r\n") != NULL);
	mime_submission_free(&s);
}

static void test_urls(void)
{
	char host[64];
	CHECK(smtp_url_valid("submissions://smtp.example.com"));
	CHECK(smtp_url_valid("smtp://127.0.0.1:2525/"));
	CHECK(!smtp_url_valid("smtps://smtp.example.com"));
	CHECK(!smtp_url_valid("smtp://"));
	CHECK(!smtp_url_valid("smtp://host:0"));
	CHECK(!smtp_url_valid("smtp://host:99999"));
	CHECK(!smtp_url_valid("smtp://user@host"));
	CHECK(!smtp_url_valid("smtp://host/x"));
	CHECK(smtp_url_host("submissions://SMTP.Gmail.com:465", host, sizeof(host)) == 0);
	CHECK_STR(host, "smtp.gmail.com");
}

static void test_outbox(void)
{
	char path[] = "/tmp/mk-test-outbox-XXXXXX";
	CHECK(mkdtemp(path) != NULL);
	char db[128];
	snprintf(db, sizeof(db), "%s/store.db", path);
	struct store *s;
	const char *error;
	OK(store_open(db, &s, &error));
	const char *rc[] = {"a@example.net", "b@example.net"};
	int64_t id, id2, when;
	CHECK(store_outbox_next_due(s, &when, &error) == 0);
	/* The account's latest send attempt (ExternalAccount/get's lastError):
	 * none before any was tried. */
	enum store_outbox_state last;
	char reply[STORE_OUTBOX_REPLY_SIZE];
	int64_t at;
	CHECK(store_outbox_last_attempt(s, 7, &last, reply, &at, &error) == 0);
	OK(store_outbox_add(s, 7, 0, "me@example.org", rc, 2, "bytes\r\n", 7, 100, &id, &error));
	OK(store_outbox_add(s, 7, 0, "me@example.org", rc, 1, "two\r\n", 5, 100, &id2, &error));
	CHECK(store_outbox_next_due(s, &when, &error) == 1 && when == 100);
	struct store_outbox_item it;
	CHECK(store_outbox_claim(s, 99, 60, 0, &it, &error) == 0); /* not due yet */
	CHECK(store_outbox_claim(s, 100, 60, id, &it, &error) == 1);
	CHECK(it.id == id && it.state == STORE_OUTBOX_SENDING && it.attempts == 1);
	CHECK(it.n_rcpts == 2 && strcmp(it.rcpts[1], "b@example.net") == 0);
	CHECK(it.size == 7 && memcmp(it.data, "bytes\r\n", 7) == 0);
	store_outbox_item_free(&it);
	/* Our own lease holds: the row is not claimed twice. */
	CHECK(store_outbox_claim(s, 100, 60, id, &it, &error) == 0);
	CHECK(store_outbox_claim(s, 161, 60, id, &it, &error) == 1); /* lease ran out */
	CHECK(it.attempts == 2);
	store_outbox_item_free(&it);
	CHECK(store_outbox_last_attempt(s, 7, &last, reply, &at, &error) == 0); /* not tried */
	OK(store_outbox_finish(s, id, STORE_OUTBOX_QUEUED, 500, "451 later", 170, &error));
	CHECK(store_outbox_last_attempt(s, 7, &last, reply, &at, &error) == 1);
	CHECK(last == STORE_OUTBOX_QUEUED && at == 170);
	CHECK_STR(reply, "451 later");
	CHECK(store_outbox_last_attempt(s, 8, &last, reply, &at, &error) == 0);
	CHECK(store_outbox_cancel(s, id2, &error) == 1);
	CHECK(store_outbox_claim(s, 200, 60, 0, &it, &error) == 0);
	CHECK(store_outbox_retry(s, id, 200, &error) == 1);
	CHECK(store_outbox_claim(s, 200, 60, 0, &it, &error) == 1 && it.attempts == 1);
	store_outbox_item_free(&it);
	CHECK(store_outbox_cancel(s, id, &error) == 0); /* sending: not cancellable */
	OK(store_outbox_finish(s, id, STORE_OUTBOX_SENT, 0, "250 ok", 201, &error));
	CHECK(store_outbox_last_attempt(s, 7, &last, reply, &at, &error) == 1);
	CHECK(last == STORE_OUTBOX_SENT && at == 201);
	CHECK(store_outbox_retry(s, id, 300, &error) == 0);
	/* The Sent copy: pending once sent and due at once; claimed with a
	 * lease; a failed attempt is due again later with its reason; then
	 * filed, and nothing is left to do. */
	CHECK(store_outbox_next_due(s, &when, &error) == 1 && when == 0);
	CHECK(store_outbox_claim_copy(s, 300, 60, 0, &it, &error) == 1);
	CHECK(it.id == id && it.copy_attempts == 1 && it.size == 7 && it.sent_copy[0] == '\0');
	store_outbox_item_free(&it);
	CHECK(store_outbox_claim_copy(s, 300, 60, 0, &it, &error) == 0); /* our lease holds */
	OK(store_outbox_finish_copy(s, id, NULL, 400, "imap down", &error));
	/* Its Sent copy is still owed: EmailSubmission/destroy keeps the row. */
	CHECK(store_outbox_destroy(s, id, &error) == 2);
	CHECK(store_outbox_claim_copy(s, 399, 60, 0, &it, &error) == 0);
	CHECK(store_outbox_next_due(s, &when, &error) == 1 && when == 400);
	CHECK(store_outbox_claim_copy(s, 400, 60, 0, &it, &error) == 1 && it.copy_attempts == 2);
	CHECK_STR(it.copy_error, "imap down");
	store_outbox_item_free(&it);
	OK(store_outbox_finish_copy(s, id, "appended", 0, NULL, &error));
	CHECK(store_outbox_next_due(s, &when, &error) == 0);
	CHECK(store_outbox_claim_copy(s, 9999, 60, 0, &it, &error) == 0);
	OK(store_outbox_finish_copy(s, id, "failed: late", 0, NULL,
	                            &error)); /* not pending: kept */
	struct store_outbox_item *items;
	size_t n;
	OK(store_outbox_list(s, &items, &n, &error));
	CHECK(n == 1 && items[0].state == STORE_OUTBOX_SENT && items[0].data == NULL);
	CHECK_STR(items[0].last_reply, "250 ok");
	CHECK_STR(items[0].sent_copy, "appended");
	store_outbox_items_free(&items, n);
	char mode[16];
	OK(store_outbox_sent_mode(s, 7, mode, &error));
	CHECK_STR(mode, "auto");
	OK(store_outbox_set_sent_mode(s, 7, "provider", &error));
	OK(store_outbox_sent_mode(s, 7, mode, &error));
	CHECK_STR(mode, "provider");
	REFUSED(store_outbox_set_sent_mode(s, 7, "x", &error), "auto, append or provider");
	/* Change counter: every write moves it; /changes sorts ids out. */
	int64_t st0, st1, *c, *u, *d, ns;
	size_t nc, nu, nd;
	bool more;
	OK(store_outbox_state(s, &st0, &error));
	int64_t id3;
	OK(store_outbox_add(s, 7, 42, "me@example.org", rc, 1, "x\r\n", 3, 300, &id3, &error));
	OK(store_outbox_changes(s, st0, 100, &c, &nc, &u, &nu, &d, &nd, &ns, &more, &error));
	CHECK(nc == 1 && c[0] == id3 && nu == 0 && nd == 0 && !more);
	free(c), free(u), free(d);
	OK(store_outbox_state(s, &st1, &error));
	CHECK(ns == st1 && st1 > st0);
	CHECK(store_outbox_destroy(s, id3, &error) == 0); /* queued: not destroyable */
	CHECK(store_outbox_destroy(s, id, &error) == 1);  /* sent */
	OK(store_outbox_finish(s, id3, STORE_OUTBOX_FAILED, 0, "550 no", 301, &error));
	CHECK(store_outbox_last_attempt(s, 7, &last, reply, &at, &error) == 1);
	CHECK(last == STORE_OUTBOX_FAILED && at == 301);
	CHECK_STR(reply, "550 no");
	OK(store_outbox_changes(s, st1, 100, &c, &nc, &u, &nu, &d, &nd, &ns, &more, &error));
	CHECK(nc == 0 && nu == 1 && u[0] == id3 && nd == 1 && d[0] == id);
	free(c), free(u), free(d);
	/* Paging: one change at a time. */
	OK(store_outbox_changes(s, st0, 1, &c, &nc, &u, &nu, &d, &nd, &ns, &more, &error));
	CHECK(nc + nu + nd == 1 && more && ns < st1 + 2);
	free(c), free(u), free(d);
	CHECK(store_outbox_get(s, id3, false, &it, &error) == 1 && it.email_id == 42);
	store_outbox_item_free(&it);
	id = id3;
	store_close(&s);
	/* Reopened: the tables are there, the rows kept. */
	OK(store_open(db, &s, &error));
	CHECK(store_outbox_get(s, id, false, &it, &error) == 1 && it.state == STORE_OUTBOX_FAILED);
	store_outbox_item_free(&it);
	store_close(&s);
	char cmd[200];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", path);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	test_addresses();
	test_prepare();
	test_urls();
	test_outbox();
	TEST_DONE("test-smtp-prepare");
}
