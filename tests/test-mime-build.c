/* Unit tests of the MIME builder (mime-build.c): messages built from JMAP
 * Email objects parse back (GMime, mime_summarize) to what was given, and
 * bad input is refused with the property it concerns. */
#include <stdlib.h>
#include <string.h>

#include "mime/mime-build.h"
#include "mime/mime.h"
#include "test.h"

static int blobs(void *ctx, const char *id, void **data_r, size_t *len_r)
{
	(void)ctx;
	if (strcmp(id, "B7") != 0)
		return 0;
	static const char pdf[] = "%PDF-1.4\x00\x01\x02 binary";
	*data_r = malloc(sizeof(pdf));
	memcpy(*data_r, pdf, sizeof(pdf));
	*len_r = sizeof(pdf);
	return 1;
}

static json_t *parse(const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
	if (j == NULL)
		fprintf(stderr, "bad test JSON: %s\n", je.text);
	CHECK(j != NULL);
	return j;
}

static char *build(const char *text, size_t *len_r, struct mime_build_error *e)
{
	json_t *j = parse(text);
	char *data = NULL;
	int r = mime_build_email(j, blobs, NULL, 100000, 1700000000, &data, len_r, e);
	json_decref(j);
	return r == 0 ? data : NULL;
}

static void refused(const char *text, enum mime_build_status status, const char *property)
{
	struct mime_build_error e;
	size_t len;
	char *data = build(text, &len, &e);
	if (data != NULL || e.status != status || strcmp(e.property, property) != 0) {
		fprintf(stderr, "%s: status %d property '%s' (wanted %d '%s')\n", text, e.status,
		        e.property, status, property);
		exit(1);
	}
}

static void test_full(void)
{
	struct mime_build_error e;
	size_t len;
	char *m =
	    build("{\"from\":[{\"name\":\"Zoë Ünal\",\"email\":\"zoe@example.org\"}],"
	          "\"to\":[{\"email\":\"bob@example.org\"},{\"name\":\"C, D\",\"email\":"
	          "\"cd@example.org\"}],\"bcc\":[{\"email\":\"hidden@example.org\"}],"
	          "\"subject\":\"Grüße aus Köln\",\"sentAt\":\"2024-10-02T10:30:00+02:00\","
	          "\"messageId\":[\"m1@example.org\"],\"inReplyTo\":[\"p@example.org\"],"
	          "\"references\":[\"o@example.org\",\"p@example.org\"],"
	          "\"header:X-Tag:asText\":\"ünïcode tag\",\"header:X-Raw\":\"plain\","
	          "\"mailboxIds\":{\"M1\":true},\"keywords\":{\"$draft\":true},"
	          "\"textBody\":[{\"partId\":\"1\"}],\"htmlBody\":[{\"partId\":\"2\",\"type\":"
	          "\"text/html\"}],\"bodyValues\":{\"1\":{\"value\":\"Hallo Bob, schöne Grüße\\n"
	          "Line two\"},\"2\":{\"value\":\"<p>Hallo</p>\"}},"
	          "\"attachments\":[{\"blobId\":\"B7\",\"type\":\"application/pdf\",\"name\":"
	          "\"report.pdf\"}]}",
	          &len, &e);
	if (m == NULL)
		fprintf(stderr, "refused: %s %s\n", e.property, e.description);
	CHECK(m != NULL && len == strlen(m));
	for (size_t i = 0; i < len; i++) {
		CHECK(m[i] != '\n' || (i > 0 && m[i - 1] == '\r')); /* CRLF only */
		CHECK((unsigned char)m[i] < 0x80);                  /* 7-bit after encoding */
	}
	CHECK(strstr(m, "Message-Id: <m1@example.org>") != NULL ||
	      strstr(m, "Message-ID: <m1@example.org>") != NULL);
	CHECK(strstr(m, "In-Reply-To: <p@example.org>\r\n") != NULL);
	CHECK(strstr(m, "References: <o@example.org> <p@example.org>\r\n") != NULL);
	CHECK(strstr(m, "X-Raw: plain\r\n") != NULL);
	CHECK(strstr(m, "multipart/mixed") != NULL && strstr(m, "multipart/alternative") != NULL);
	CHECK(strstr(m, "report.pdf") != NULL);
	CHECK(strstr(m, "hidden@example.org") != NULL); /* a draft keeps its Bcc */
	struct mime_summary s;
	CHECK(mime_summarize(m, len, &s) == 0);
	CHECK_STR(s.subject, "Grüße aus Köln");
	CHECK_STR(s.message_id, "m1@example.org");
	CHECK(s.n_from == 1);
	CHECK_STR(s.from[0].name, "Zoë Ünal");
	CHECK_STR(s.from[0].email, "zoe@example.org");
	CHECK(s.n_to == 2);
	CHECK_STR(s.to[1].name, "C, D");
	CHECK(s.sent_at == 1727857800); /* 08:30 UTC */
	CHECK(s.has_attachment);
	CHECK(strstr(s.preview, "schöne Grüße") != NULL);
	mime_summary_free(&s);
	free(m);

	/* Nothing but a mailbox: a minimal message with Date and Message-ID. */
	m = build("{\"mailboxIds\":{\"M1\":true}}", &len, &e);
	CHECK(m != NULL);
	CHECK(strstr(m, "Date: ") != NULL && strstr(m, "@mailkeep.invalid>") != NULL);
	free(m);

	/* bodyStructure. */
	m = build("{\"bodyStructure\":{\"type\":\"multipart/related\",\"subParts\":[{\"partId\":"
	          "\"a\",\"type\":\"text/html\"},{\"blobId\":\"B7\",\"type\":\"image/png\","
	          "\"cid\":\"img1@x\",\"disposition\":\"inline\"}]},\"bodyValues\":{\"a\":{"
	          "\"value\":\"<img src=cid:img1@x>\"}}}",
	          &len, &e);
	CHECK(m != NULL);
	CHECK(strstr(m, "multipart/related") != NULL && strstr(m, "Content-Id: <img1@x>") != NULL);
	free(m);
}

static void test_refusals(void)
{
	refused("[]", MIME_BUILD_INVALID, "");
	refused("{\"subject\":\"a\\r\\nBcc: x@y\"}", MIME_BUILD_INVALID, "subject");
	refused("{\"subject\":\"a\\u0000b\"}", MIME_BUILD_INVALID, "subject");
	refused("{\"headers\":[]}", MIME_BUILD_INVALID, "headers");
	refused("{\"id\":\"E1\"}", MIME_BUILD_INVALID, "id");
	refused("{\"header:From\":\"x@y\"}", MIME_BUILD_INVALID, "header:From");
	refused("{\"header:X-A:asAddresses\":\"x@y\"}", MIME_BUILD_INVALID,
	        "header:X-A:asAddresses");
	refused("{\"header:X-A\":\"ü\"}", MIME_BUILD_INVALID, "header:X-A");
	refused("{\"header:X A\":\"v\"}", MIME_BUILD_INVALID, "header:X A");
	refused("{\"to\":[{\"email\":\"two words@x\"}]}", MIME_BUILD_INVALID, "to");
	refused("{\"to\":[{\"email\":\"a@b\",\"extra\":1}]}", MIME_BUILD_INVALID, "to");
	refused("{\"from\":[{\"name\":\"a\\nb\",\"email\":\"a@b\"}]}", MIME_BUILD_INVALID, "from");
	refused("{\"to\":\"a@b\"}", MIME_BUILD_INVALID, "to");
	refused("{\"sentAt\":\"yesterday\"}", MIME_BUILD_INVALID, "sentAt");
	refused("{\"messageId\":[\"a@b\",\"c@d\"]}", MIME_BUILD_INVALID, "messageId");
	refused("{\"messageId\":[\"<a@b>\"]}", MIME_BUILD_INVALID, "messageId");
	refused("{\"textBody\":[{\"partId\":\"1\"}]}", MIME_BUILD_INVALID, "textBody/0/partId");
	refused("{\"textBody\":[{\"partId\":\"1\",\"type\":\"text/html\"}],\"bodyValues\":{\"1\":"
	        "{\"value\":\"x\"}}}",
	        MIME_BUILD_INVALID, "textBody");
	refused("{\"textBody\":[{\"partId\":\"1\"},{\"partId\":\"2\"}]}", MIME_BUILD_INVALID,
	        "textBody");
	refused("{\"attachments\":[{\"blobId\":\"B8\"}]}", MIME_BUILD_BLOB_NOT_FOUND,
	        "attachments/0/blobId");
	refused("{\"attachments\":[{\"blobId\":\"B7\",\"type\":\"no-slash\"}]}", MIME_BUILD_INVALID,
	        "attachments/0/type");
	refused("{\"attachments\":[{\"blobId\":\"B7\",\"name\":\"a\\r\\nb\"}]}", MIME_BUILD_INVALID,
	        "attachments/0/name");
	refused("{\"bodyStructure\":{\"type\":\"multipart/mixed\",\"subParts\":[]}}",
	        MIME_BUILD_INVALID, "bodyStructure/subParts");
	refused("{\"bodyStructure\":{\"partId\":\"1\",\"type\":\"text/plain\"},\"textBody\":[]}",
	        MIME_BUILD_INVALID, "bodyStructure");
	refused(
	    "{\"bodyStructure\":{\"type\":\"image/png\",\"partId\":\"1\"},\"bodyValues\":{\"1\":"
	    "{\"value\":\"x\"}}}",
	    MIME_BUILD_INVALID, "bodyStructure/partId");
	/* Nesting beyond the bound. */
	char deep[4096] = "{\"bodyStructure\":";
	size_t dl = strlen(deep);
	for (int i = 0; i < 12; i++)
		dl += (size_t)snprintf(deep + dl, sizeof(deep) - dl,
		                       "{\"type\":\"multipart/mixed\",\"subParts\":[");
	dl += (size_t)snprintf(deep + dl, sizeof(deep) - dl, "{\"blobId\":\"B7\"}");
	for (int i = 0; i < 12; i++)
		dl += (size_t)snprintf(deep + dl, sizeof(deep) - dl, "]}");
	dl += (size_t)snprintf(deep + dl, sizeof(deep) - dl, "}");
	CHECK(dl < sizeof(deep));
	struct mime_build_error e;
	size_t len;
	CHECK(build(deep, &len, &e) == NULL && e.status == MIME_BUILD_INVALID);
	/* Too large. */
	json_t *big = json_pack("{s:[{s:s}],s:{s:{s:s%}}}", "textBody", "partId", "1", "bodyValues",
	                        "1", "value", "x", (size_t)1);
	char *huge = malloc(200001);
	memset(huge, 'a', 200000);
	huge[200000] = '\0';
	json_object_set_new(json_object_get(json_object_get(big, "bodyValues"), "1"), "value",
	                    json_string(huge));
	free(huge);
	char *data;
	CHECK(mime_build_email(big, blobs, NULL, 100000, 0, &data, &len, &e) < 0);
	CHECK(e.status == MIME_BUILD_TOO_LARGE);
	json_decref(big);
}

static void test_dates(void)
{
	int64_t t;
	CHECK(mime_build_parse_date("2024-10-02T08:30:00Z", &t) && t == 1727857800);
	CHECK(mime_build_parse_date("2024-10-02T10:30:00.123+02:00", &t) && t == 1727857800);
	CHECK(mime_build_parse_date("2024-10-02T03:30:00-05:00", &t) && t == 1727857800);
	CHECK(!mime_build_parse_date("2024-10-02 08:30:00Z", &t));
	CHECK(!mime_build_parse_date("2024-13-02T08:30:00Z", &t));
	CHECK(!mime_build_parse_date("2024-10-02T08:30:00", &t));
	CHECK(!mime_build_parse_date("2024-10-02T08:30:00+0200", &t));
	CHECK(!mime_build_parse_date(NULL, &t));
}

int main(void)
{
	mime_init();
	test_full();
	test_refusals();
	test_dates();
	TEST_DONE("test-mime-build");
}
