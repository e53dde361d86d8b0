/* Unit tests of message summaries (GMime), malformed input included. */
#include <string.h>

#include "mime/mime.h"
#include "test.h"

static void summarize(const char *msg, struct mime_summary *s)
{
	CHECK(mime_summarize(msg, strlen(msg), s) == 0);
	CHECK(s->preview != NULL);
}

int main(void)
{
	struct mime_summary s;
	mime_init();
	summarize("From: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
	          "To: a@example.org, \"B, Bee\" <b@example.org>\r\n"
	          "Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n"
	          "Date: Tue, 01 Jun 2021 10:00:00 +0200\r\n"
	          "Message-ID: <m1@example.com>\r\n"
	          "In-Reply-To: <m0@example.com>\r\n"
	          "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n"
	          "Hello   \xfc\r\nworld\r\n",
	          &s);
	CHECK_STR(s.subject, "Gr\xc3\xbc\xc3\x9f"
	                     "e");
	CHECK(s.n_from == 1 && strcmp(s.from[0].email, "j@example.com") == 0);
	CHECK_STR(s.from[0].name, "J\xc3\xbcrgen");
	CHECK(s.n_to == 2 && strcmp(s.to[1].name, "B, Bee") == 0);
	CHECK_STR(s.message_id, "m1@example.com");
	CHECK(s.sent_at == 1622534400);
	CHECK_STR(s.preview, "Hello \xc3\xbc world");
	CHECK(!s.has_attachment);
	mime_summary_free(&s);

	summarize("Subject: alt\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
	          "--b\r\nContent-Type: text/plain\r\n\r\nbody text\r\n"
	          "--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
	          "filename=x.pdf\r\n\r\nPDF\r\n--b--\r\n",
	          &s);
	CHECK(s.has_attachment);
	CHECK_STR(s.preview, "body text");
	mime_summary_free(&s);

	/* Malformed: no headers, broken MIME, 8-bit junk, empty. */
	static const char *const bad[] = {
	    "", "no headers at all\r\n",
	    "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n",
	    "Subject: \xff\xfe\r\n\r\n\x80\x81",
	    "From: <<<>>>@@@\r\nTo: ,,,\r\nDate: yesterday\r\n\r\nx"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		summarize(bad[i], &s);
		mime_summary_free(&s);
	}
	char long_text[5000];
	memset(long_text, 'a', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	char msg[6000];
	snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n%s", long_text);
	summarize(msg, &s);
	CHECK(strlen(s.preview) == MIME_PREVIEW_CHARS);
	mime_summary_free(&s);
	TEST_DONE("test-mime");
}
