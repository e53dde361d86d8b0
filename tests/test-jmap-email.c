/* Unit tests of Email/get and Email/parse (MIME -> JMAP) on hand-written
 * messages in a real store, through the real request envelope. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "jmap/jmap-email.h"
#include "jmap/jmap.h"
#include "mime/mime-cache.h"
#include "mime/mime-email.h"
#include "store/store.h"
#include "test.h"
#include <stdarg.h>
/* json_pack that names the line of a bad format. */
static json_t *pack_checked(int line, const char *fmt, ...)
{
	json_error_t jerr;
	va_list ap;
	va_start(ap, fmt);
	json_t *j = json_vpack_ex(&jerr, 0, fmt, ap);
	va_end(ap);
	if (j == NULL) {
		fprintf(stderr, "line %d: json_pack: %s\n", line, jerr.text);
		exit(1);
	}
	return j;
}
#define json_pack(...) pack_checked(__LINE__, __VA_ARGS__)

static struct store *store;
static struct jmap_registry *registry;
static struct mime_cache *cache;
static int64_t inbox;
static uint32_t next_uid = 1;

static int64_t add_message(const char *raw)
{
	const char *err;
	struct store_blob_writer *w;
	int64_t blob;
	size_t len = strlen(raw);
	CHECK(store_begin(store, &err) == 0);
	CHECK(store_blob_begin(store, len, &w, &err) == 0);
	CHECK(store_blob_write(w, raw, len, &err) == 0);
	CHECK(store_blob_finish(&w, &blob, &err) == 0);
	CHECK(store_message_add(store, inbox, next_uid++, blob, STORE_FLAG_SEEN, "$Label",
	                        1600000000, &err) == 0);
	CHECK(store_commit(store, &err) == 0);
	int64_t *ids = NULL;
	size_t n = 0;
	CHECK(store_email_query(store, inbox, true, 0, 1, &ids, &n, NULL, &err) == 0 && n == 1);
	int64_t id = ids[0];
	free(ids);
	return id;
}

/* Run one method call; returns its [name, args, id] response (new ref). */
static json_t *call(const char *method, json_t *args)
{
	const char *err;
	CHECK(args != NULL);
	json_object_set_new(args, "accountId", json_string("A1"));
	json_t *req = json_pack("{s:[s,s],s:[[s,o,s]]}", "using", "urn:ietf:params:jmap:core",
	                        "urn:ietf:params:jmap:mail", "methodCalls", method, args, "c0");
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	struct jmap_mail_ctx ctx = {.store = store, .cache = cache, .account_id = ""};
	snprintf(ctx.state, sizeof(ctx.state), "1");
	struct jmap_limits limits = {1 << 20, 16, 64};
	struct jmap_output out;
	CHECK(jmap_process(registry, &limits, &ctx, "s", body, strlen(body), &out, &err) == 0);
	free(body);
	CHECK(out.status == 200);
	json_t *resp = json_loadb(out.body, out.body_len, 0, NULL);
	free(out.body);
	CHECK(resp != NULL);
	json_t *r = json_incref(json_array_get(json_object_get(resp, "methodResponses"), 0));
	json_decref(resp);
	return r;
}

static json_t *get_one(int64_t id, json_t *args)
{
	char eid[32];
	snprintf(eid, sizeof(eid), "E%lld", (long long)id);
	json_object_set_new(args, "ids", json_pack("[s]", eid));
	json_t *r = call("Email/get", args);
	CHECK_STR(json_string_value(json_array_get(r, 0)), "Email/get");
	json_t *e = json_incref(json_array_get(json_object_get(json_array_get(r, 1), "list"), 0));
	CHECK(e != NULL);
	json_decref(r);
	return e;
}

static const char *str_at(json_t *root, const char *path)
{
	/* path: dot-separated keys, [n] as numbers (e.g. "from.0.email") */
	json_t *v = root;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *t = strtok_r(buf, ".", &save); t != NULL && v != NULL;
	     t = strtok_r(NULL, ".", &save))
		v = json_is_array(v) ? json_array_get(v, strtoul(t, NULL, 10))
		                     : json_object_get(v, t);
	return json_is_string(v) ? json_string_value(v) : json_is_null(v) ? "(null)" : "(missing)";
}

static json_t *at(json_t *root, const char *path)
{
	json_t *v = root;
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	char *save = NULL;
	for (char *t = strtok_r(buf, ".", &save); t != NULL && v != NULL;
	     t = strtok_r(NULL, ".", &save))
		v = json_is_array(v) ? json_array_get(v, strtoul(t, NULL, 10))
		                     : json_object_get(v, t);
	return v;
}

static const char nested[] =
    "From: \"A, B\" <a@x.org>\r\n"
    "To: Friends: c@x.org, =?utf-8?q?D=C3=BC?= <d@x.org>;, e@x.org\r\n"
    "Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n  folded\r\n"
    "Date: Tue, 01 Jun 2021 10:00:00 +0200\r\n"
    "Message-ID: <m1@x>\r\n"
    "References: <r1@x> <r2@x>\r\n"
    "List-Unsubscribe: <mailto:u@x.org>, <https://x.org/u>\r\n"
    "X-Custom: one\r\nX-Custom: two\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"
    "--c\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n\r\nHall=F6   world\r\n"
    "--c\r\nContent-Type: text/html\r\n\r\n<p>Hallo &amp; <b>world</b></p>\r\n--c--\r\n"
    "--b\r\nContent-Type: application/pdf\r\n"
    "Content-Disposition: attachment; filename*=utf-8''%C3%BC.pdf\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
    "Subject: inner\r\nFrom: i@x.org\r\nContent-Type: text/plain\r\n\r\ninner body\r\n--b--\r\n";

static void test_nested(void)
{
	const char *err;
	int64_t id = add_message(nested);
	/* Default properties. */
	json_t *e = get_one(id, json_object());
	CHECK_STR(str_at(e, "subject"), "Gr\xc3\xbc\xc3\x9f"
	                                "e  folded");
	CHECK_STR(str_at(e, "from.0.name"), "A, B");
	CHECK_STR(str_at(e, "from.0.email"), "a@x.org");
	CHECK(json_array_size(at(e, "to")) == 3); /* group members flattened */
	CHECK_STR(str_at(e, "to.1.name"), "D\xc3\xbc");
	CHECK_STR(str_at(e, "messageId.0"), "m1@x");
	CHECK_STR(str_at(e, "references.1"), "r2@x");
	CHECK(json_is_null(at(e, "inReplyTo")));
	CHECK(json_is_null(at(e, "sender")));
	CHECK_STR(str_at(e, "sentAt"), "2021-06-01T10:00:00+02:00");
	CHECK_STR(str_at(e, "receivedAt"), "2020-09-13T12:26:40Z");
	CHECK(json_is_true(at(e, "keywords.$seen")) && json_is_true(at(e, "keywords.$label")));
	CHECK_STR(str_at(e, "preview"), "Hall\xc3\xb6 world");
	CHECK(json_is_true(at(e, "hasAttachment")));
	CHECK(json_array_size(at(e, "textBody")) == 1 && json_array_size(at(e, "htmlBody")) == 1);
	CHECK_STR(str_at(e, "textBody.0.partId"), "1.1");
	CHECK_STR(str_at(e, "textBody.0.charset"), "iso-8859-1");
	CHECK_STR(str_at(e, "htmlBody.0.partId"), "1.2");
	CHECK(json_array_size(at(e, "attachments")) == 2);
	CHECK_STR(str_at(e, "attachments.0.name"), "\xc3\xbc.pdf");
	CHECK_STR(str_at(e, "attachments.0.disposition"), "attachment");
	CHECK(json_integer_value(at(e, "attachments.0.size")) == 9); /* decoded */
	CHECK_STR(str_at(e, "attachments.1.type"), "message/rfc822");
	CHECK(json_object_size(at(e, "bodyValues")) == 0); /* not asked for */
	CHECK(at(e, "bodyStructure") == NULL && at(e, "headers") == NULL);
	char blob[32];
	snprintf(blob, sizeof(blob), "%s", str_at(e, "blobId"));
	char pdf_blob[64], msg_blob[64];
	snprintf(pdf_blob, sizeof(pdf_blob), "%s_2", blob);
	snprintf(msg_blob, sizeof(msg_blob), "%s_3", blob);
	CHECK_STR(str_at(e, "attachments.0.blobId"), pdf_blob);
	CHECK_STR(str_at(e, "textBody.0.blobId"),
	          (snprintf(pdf_blob, sizeof(pdf_blob), "%s_1-1", blob), pdf_blob));
	CHECK(jmap_is_id(pdf_blob));

	/* Part download: decoded bytes. */
	char *data, *type;
	size_t len;
	snprintf(pdf_blob, sizeof(pdf_blob), "%s_2", blob);
	CHECK(jmap_email_blob_content(store, pdf_blob, 1 << 20, &data, &len, &type, &err) == 1);
	CHECK(len == 9 && memcmp(data, "%PDF-1.4\n", 9) == 0);
	CHECK_STR(type, "application/pdf");
	free(data);
	free(type);
	CHECK(jmap_email_blob_content(store, pdf_blob, 4, &data, &len, &type, &err) == -1);
	snprintf(pdf_blob, sizeof(pdf_blob), "%s_9", blob);
	CHECK(jmap_email_blob_content(store, pdf_blob, 1 << 20, &data, &len, &type, &err) == 0);
	CHECK(jmap_email_blob_content(store, "B999999", 1 << 20, &data, &len, &type, &err) == 0);
	CHECK(jmap_email_blob_content(store, "B1_", 1 << 20, &data, &len, &type, &err) == 0);
	CHECK(jmap_email_blob_content(store, "B1_1--1", 1 << 20, &data, &len, &type, &err) == 0);
	/* A part of a non-message part has no parts. */
	snprintf(pdf_blob, sizeof(pdf_blob), "%s_2_1", blob);
	CHECK(jmap_email_blob_content(store, pdf_blob, 1 << 20, &data, &len, &type, &err) == 0);
	/* The embedded message's own part. */
	snprintf(pdf_blob, sizeof(pdf_blob), "%s_3_1", blob);
	CHECK(jmap_email_blob_content(store, pdf_blob, 1 << 20, &data, &len, &type, &err) == 1);
	CHECK(len == 10 && memcmp(data, "inner body", 10) == 0);
	free(data);
	free(type);
	json_decref(e);

	/* Everything else. */
	e = get_one(id, json_pack("{s:[s,s,s,s,s,s,s,s,s,s,s],s:b,s:b,s:[s,s,s,s,s]}", "properties",
	                          "headers", "bodyStructure", "bodyValues", "header:x-custom:all",
	                          "header:X-Custom", "header:To:asGroupedAddresses",
	                          "header:List-Unsubscribe:asURLs", "header:Subject:asRaw",
	                          "header:Date:asDate", "header:X-Custom:asDate",
	                          "header:references:asMessageIds:all", "fetchTextBodyValues", 1,
	                          "fetchHTMLBodyValues", 1, "bodyProperties", "partId", "type",
	                          "size", "header:Content-Type", "headers"));
	CHECK(at(e, "subject") == NULL && at(e, "id") != NULL);
	CHECK(json_array_size(at(e, "headers")) == 11);
	CHECK_STR(str_at(e, "headers.2.value"), " =?utf-8?b?R3LDvMOfZQ==?=\r\n  folded");
	CHECK_STR(str_at(e, "header:Subject:asRaw"), " =?utf-8?b?R3LDvMOfZQ==?=\r\n  folded");
	CHECK_STR(str_at(e, "headers.10.name"), "Content-Type");
	CHECK_STR(str_at(e, "header:x-custom:all.1"), " two");
	CHECK_STR(str_at(e, "header:X-Custom"), " two");
	CHECK(json_is_null(at(e, "header:X-Custom:asDate")));
	CHECK_STR(str_at(e, "header:Date:asDate"), "2021-06-01T10:00:00+02:00");
	CHECK_STR(str_at(e, "header:To:asGroupedAddresses.0.name"), "Friends");
	CHECK(json_array_size(at(e, "header:To:asGroupedAddresses.0.addresses")) == 2);
	CHECK(json_is_null(at(e, "header:To:asGroupedAddresses.1.name")));
	CHECK_STR(str_at(e, "header:To:asGroupedAddresses.1.addresses.0.email"), "e@x.org");
	CHECK_STR(str_at(e, "header:List-Unsubscribe:asURLs.1"), "https://x.org/u");
	CHECK_STR(str_at(e, "header:references:asMessageIds:all.0.0"), "r1@x");
	CHECK_STR(str_at(e, "bodyStructure.type"), "multipart/mixed");
	CHECK(json_is_null(at(e, "bodyStructure.partId")));
	CHECK_STR(str_at(e, "bodyStructure.subParts.0.subParts.1.type"), "text/html");
	CHECK_STR(str_at(e, "bodyStructure.subParts.1.header:Content-Type"), " application/pdf");
	CHECK(at(e, "bodyStructure.subParts.1.name") == NULL);
	CHECK_STR(str_at(e, "bodyValues.1\x2e"
	                    "1.value"),
	          "(missing)"); /* keys have dots */
	json_t *bv = json_object_get(at(e, "bodyValues"), "1.1");
	CHECK_STR(json_string_value(json_object_get(bv, "value")), "Hall\xc3\xb6   world");
	CHECK(json_is_false(json_object_get(bv, "isTruncated")));
	CHECK(json_is_false(json_object_get(bv, "isEncodingProblem")));
	bv = json_object_get(at(e, "bodyValues"), "1.2");
	CHECK_STR(json_string_value(json_object_get(bv, "value")),
	          "<p>Hallo &amp; <b>world</b></p>");
	json_decref(e);

	/* Email/parse of the attached message and of the whole message. */
	char ids[2][64];
	snprintf(ids[0], sizeof(ids[0]), "%s_3", blob);
	snprintf(ids[1], sizeof(ids[1]), "%s_2", blob);
	json_t *r = call("Email/parse", json_pack("{s:[s,s,s,s],s:[s,s,s,s]}", "blobIds", ids[0],
	                                          ids[1], "B999999", "nonsense", "properties",
	                                          "subject", "from", "textBody", "id"));
	CHECK_STR(json_string_value(json_array_get(r, 0)), "Email/parse");
	json_t *parsed = json_object_get(json_array_get(r, 1), "parsed");
	json_t *inner = json_object_get(parsed, ids[0]);
	CHECK(inner != NULL);
	CHECK_STR(str_at(inner, "subject"), "inner");
	CHECK_STR(str_at(inner, "from.0.email"), "i@x.org");
	CHECK(json_is_null(at(inner, "id")));
	char inner_part[80];
	snprintf(inner_part, sizeof(inner_part), "%s_1", ids[0]);
	CHECK_STR(str_at(inner, "textBody.0.blobId"), inner_part);
	CHECK(json_array_size(json_object_get(json_array_get(r, 1), "notParsable")) == 1);
	CHECK_STR(str_at(json_array_get(r, 1), "notParsable.0"), ids[1]);
	CHECK(json_array_size(json_object_get(json_array_get(r, 1), "notFound")) == 2);
	json_decref(r);
}

static void test_related_and_inline(void)
{
	int64_t id = add_message(
	    "Subject: related\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
	    "--a\r\nContent-Type: text/plain\r\n\r\nplain version\r\n"
	    "--a\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
	    "--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
	    "<style>p{}</style><p>html <img src=\"cid:i1@x\"></p>\r\n"
	    "--r\r\nContent-Type: image/png\r\nContent-ID: <i1@x>\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\n"
	    "iVBORw0KGgo=\r\n--r--\r\n--a--\r\n");
	json_t *e = get_one(id, json_pack("{s:[s,s,s,s,s]}", "properties", "textBody", "htmlBody",
	                                  "attachments", "hasAttachment", "preview"));
	CHECK(json_array_size(at(e, "textBody")) == 1);
	CHECK_STR(str_at(e, "textBody.0.type"), "text/plain");
	CHECK(json_array_size(at(e, "htmlBody")) == 1);
	CHECK_STR(str_at(e, "htmlBody.0.partId"), "2.1");
	CHECK(json_array_size(at(e, "attachments")) == 1);
	CHECK_STR(str_at(e, "attachments.0.cid"), "i1@x");
	CHECK(json_integer_value(at(e, "attachments.0.size")) == 8);
	CHECK(json_is_false(at(e, "hasAttachment"))); /* only an image the HTML embeds */
	CHECK_STR(str_at(e, "preview"), "plain version");
	json_decref(e);

	/* The same image not referenced by the HTML is an attachment to offer. */
	id = add_message("Subject: related\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
	                 "--r\r\nContent-Type: text/html\r\n\r\n<p>no image</p>\r\n"
	                 "--r\r\nContent-Type: image/png\r\nContent-ID: <i2@x>\r\n\r\n"
	                 "PNG\r\n--r--\r\n");
	e = get_one(id, json_pack("{s:[s,s]}", "properties", "attachments", "hasAttachment"));
	CHECK(json_array_size(at(e, "attachments")) == 1);
	CHECK(json_is_true(at(e, "hasAttachment")));
	json_decref(e);

	/* HTML only: text body falls back to the HTML part; preview from it. */
	id = add_message("Subject: h\r\nContent-Type: text/html\r\n\r\n"
	                 "<html><head><style>x{}</style></head><body><p>Hi &amp; bye</p>"
	                 "<!-- c --></body></html>\r\n");
	e = get_one(id, json_pack("{s:[s,s,s]}", "properties", "textBody", "htmlBody", "preview"));
	CHECK_STR(str_at(e, "textBody.0.partId"), "1");
	CHECK_STR(str_at(e, "htmlBody.0.partId"), "1");
	CHECK_STR(str_at(e, "preview"), "Hi & bye");
	json_decref(e);
}

static void test_part_properties(void)
{
	int64_t id = add_message(
	    "Subject: names\r\nContent-Type: multipart/mixed; boundary=n\r\n\r\n"
	    "--n\r\nContent-Type: text/plain\r\nContent-Language: de, en\r\n"
	    "Content-Location: https://x.org/a\r\n\r\nhi\r\n"
	    "--n\r\nContent-Type: application/octet-stream; "
	    "name=\"=?utf-8?q?gr=C3=BC=C3=9F?=.bin\"\r\n"
	    "Content-Disposition: ATTACHMENT\r\n\r\nxyz\r\n"
	    "--n\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Disposition: attachment; filename*0*=utf-8''a%C3%A4; filename*1=.txt\r\n\r\n"
	    "attached text\r\n--n--\r\n");
	json_t *e = get_one(id, json_pack("{s:[s,s,s],s:[s,s,s,s,s,s,s]}", "properties", "textBody",
	                                  "attachments", "hasAttachment", "bodyProperties",
	                                  "partId", "name", "disposition", "language", "location",
	                                  "charset", "subParts"));
	CHECK_STR(str_at(e, "textBody.0.language.1"), "en");
	CHECK_STR(str_at(e, "textBody.0.location"), "https://x.org/a");
	CHECK_STR(str_at(e, "textBody.0.charset"), "us-ascii");
	CHECK(json_is_null(at(e, "textBody.0.subParts")));
	CHECK(json_array_size(at(e, "attachments")) == 2);
	CHECK_STR(str_at(e, "attachments.0.name"), "gr\xc3\xbc\xc3\x9f.bin");
	CHECK_STR(str_at(e, "attachments.0.disposition"), "attachment");
	CHECK(json_is_null(at(e, "attachments.0.charset")));
	CHECK_STR(str_at(e, "attachments.1.name"), "a\xc3\xa4.txt");
	CHECK(json_is_true(at(e, "hasAttachment")));
	json_decref(e);
}

/* Beyond the old 8 MB parse window: sizes and downloads are whole. */
static void test_large(void)
{
	const char *err;
	size_t raw_len = 9u * 1024 * 1024;
	unsigned char *raw = malloc(raw_len);
	for (size_t i = 0; i < raw_len; i++)
		raw[i] = (unsigned char)(i * 31 + (i >> 11));
	gchar *b64 = g_base64_encode(raw, raw_len);
	size_t cap = strlen(b64) + strlen(b64) / 76 * 2 + 1024, len = 0;
	char *msg = malloc(cap);
	len += (size_t)snprintf(msg, cap,
	                        "Subject: big\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
	                        "--z\r\nContent-Type: application/octet-stream\r\n"
	                        "Content-Transfer-Encoding: base64\r\n\r\n");
	size_t b64_len = strlen(b64);
	for (size_t off = 0; off < b64_len; off += 76) {
		const char *p = b64 + off;
		size_t n = b64_len - off < 76 ? b64_len - off : 76;
		memcpy(msg + len, p, n);
		len += n;
		memcpy(msg + len, "\r\n", 2);
		len += 2;
	}
	len += (size_t)snprintf(
	    msg + len, cap - len,
	    "--z\r\nContent-Type: text/plain\r\n\r\nafter the attachment\r\n--z--\r\n");
	g_free(b64);
	int64_t id = add_message(msg);
	free(msg);
	json_t *e =
	    get_one(id, json_pack("{s:[s,s,s]}", "properties", "attachments", "preview", "blobId"));
	CHECK(json_integer_value(at(e, "attachments.0.size")) == (json_int_t)raw_len);
	CHECK_STR(str_at(e, "preview"), "after the attachment");
	char part[64], *data, *type;
	size_t dlen;
	snprintf(part, sizeof(part), "%s", str_at(e, "attachments.0.blobId"));
	CHECK(jmap_email_blob_content(store, part, 64u << 20, &data, &dlen, &type, &err) == 1);
	CHECK(dlen == raw_len && memcmp(data, raw, raw_len) == 0);
	free(data);
	free(type);
	free(raw);
	json_decref(e);
}

static void test_charsets_and_truncation(void)
{
	int64_t id = add_message(
	    "Subject: cs\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
	    "--m\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nabc \xe9\r\n"
	    "--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbad \xff\xfe utf8\r\n"
	    "--m\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x82\xac\r\n"
	    "--m\r\nContent-Type: text/plain; charset=windows-1252\r\n\r\n\x80 euro\r\n--m--\r\n");
	json_t *e = get_one(id, json_pack("{s:[s],s:b,s:i}", "properties", "bodyValues",
	                                  "fetchAllBodyValues", 1, "maxBodyValueBytes", 5));
	json_t *bv = at(e, "bodyValues");
	CHECK(json_object_size(bv) == 4);
	CHECK(json_is_true(at(json_object_get(bv, "1"), "isEncodingProblem")));
	CHECK(json_is_true(at(json_object_get(bv, "2"), "isEncodingProblem")));
	CHECK_STR(json_string_value(at(json_object_get(bv, "2"), "value")), "bad ");
	/* 5 bytes cut inside the third two-byte character: two characters. */
	CHECK_STR(json_string_value(at(json_object_get(bv, "3"), "value")), "\xc3\xa9\xc3\xa9");
	CHECK(json_is_true(at(json_object_get(bv, "3"), "isTruncated")));
	CHECK(json_is_false(at(json_object_get(bv, "3"), "isEncodingProblem")));
	CHECK_STR(json_string_value(at(json_object_get(bv, "4"), "value")), "\xe2\x82\xac e");
	json_decref(e);
	e = get_one(id, json_pack("{s:[s],s:b,s:i}", "properties", "bodyValues",
	                          "fetchAllBodyValues", 1, "maxBodyValueBytes", 10));
	bv = at(e, "bodyValues");
	CHECK_STR(json_string_value(at(json_object_get(bv, "3"), "value")),
	          "\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x82\xac");
	CHECK(json_is_false(at(json_object_get(bv, "3"), "isTruncated")));
	CHECK_STR(json_string_value(at(json_object_get(bv, "2"), "value")),
	          "bad \xef\xbf\xbd\xef\xbf\xbd");
	json_decref(e);
}

static void test_bad_arguments(void)
{
	static const char *const bad[] = {
	    "header:Subject:asAddresses", "header:From:asText", "header:Date:asURLs",
	    "header:Message-ID:asDate",   "header:X:asNothing", "header::asRaw",
	    "header:X:all:asRaw",         "nosuchproperty",     "header:Received:asText"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *r = call("Email/get",
		                 json_pack("{s:[s],s:[s]}", "ids", "E1", "properties", bad[i]));
		CHECK_STR(json_string_value(json_array_get(r, 0)), "error");
		CHECK_STR(str_at(json_array_get(r, 1), "type"), "invalidArguments");
		json_decref(r);
	}
	json_t *r =
	    call("Email/get", json_pack("{s:[s],s:i}", "ids", "E1", "maxBodyValueBytes", -1));
	CHECK_STR(str_at(json_array_get(r, 1), "type"), "invalidArguments");
	json_decref(r);
	r = call("Email/get", json_pack("{s:[s],s:[s]}", "ids", "E1", "bodyProperties", "preview"));
	CHECK_STR(str_at(json_array_get(r, 1), "type"), "invalidArguments");
	json_decref(r);
	/* Allowed on an unknown header: every form. */
	r = call("Email/get",
	         json_pack("{s:[s],s:[s,s,s]}", "ids", "E1", "properties", "header:X-Any:asDate",
	                   "header:X-Any:asURLs:all", "header:Subject:asText"));
	CHECK_STR(json_string_value(json_array_get(r, 0)), "Email/get");
	json_decref(r);
}

static void test_hostile(void)
{
	/* Broken headers and structure: what parses is returned. */
	int64_t id = add_message("From: <<<>>>@@@\r\nTo: ,,,\r\nDate: yesterday\r\n"
	                         "Message-ID: no brackets\r\nSubject: =?bogus?x?zz?=\r\n"
	                         "Content-Type: multipart/mixed\r\n\r\nno boundary at all\r\n");
	json_t *e = get_one(id, json_object());
	CHECK(json_is_null(at(e, "sentAt")));
	CHECK(json_is_string(at(e, "subject")));
	CHECK(json_is_string(at(e, "preview")));
	json_decref(e);

	/* Deep nesting: headers only, no crash. */
	size_t depth = 5000, cap = depth * 80 + 200, len = 0;
	char *msg = malloc(cap);
	len += (size_t)snprintf(msg + len, cap - len, "Subject: deep\r\n");
	for (size_t i = 0; i < depth; i++)
		len += (size_t)snprintf(
		    msg + len, cap - len,
		    "Content-Type: multipart/mixed; boundary=b%zu\r\n\r\n--b%zu\r\n", i, i);
	len += (size_t)snprintf(msg + len, cap - len, "\r\nleaf\r\n");
	id = add_message(msg);
	free(msg);
	e = get_one(
	    id, json_pack("{s:[s,s,s]}", "properties", "subject", "bodyStructure", "attachments"));
	CHECK_STR(str_at(e, "subject"), "deep");
	json_decref(e);

	/* A huge address header: bounded lists. */
	size_t n_addr = 100000;
	msg = malloc(n_addr * 12 + 100);
	len = (size_t)snprintf(msg, 100, "Subject: many\r\nTo: ");
	for (size_t i = 0; i < n_addr; i++)
		len += (size_t)snprintf(msg + len, 13, "a%05zu@x.o, ", i);
	memcpy(msg + len, "\r\n\r\nx\r\n", 8);
	id = add_message(msg);
	free(msg);
	e = get_one(id, json_pack("{s:[s,s,s]}", "properties", "to", "header:To:asGroupedAddresses",
	                          "header:To:asRaw"));
	CHECK(json_array_size(at(e, "to")) > 100 &&
	      json_array_size(at(e, "to")) <= MIME_EMAIL_MAX_HEADERS);
	CHECK(json_array_size(at(e, "header:To:asGroupedAddresses.0.addresses")) <=
	      MIME_EMAIL_MAX_HEADERS);
	CHECK(strlen(str_at(e, "header:To:asRaw")) > n_addr * 10);
	json_decref(e);

	/* Many parts: bounded. */
	cap = 2000 * 60 + 200;
	len = 0;
	msg = malloc(cap);
	len +=
	    (size_t)snprintf(msg + len, cap - len,
	                     "Subject: wide\r\nContent-Type: multipart/mixed; boundary=w\r\n\r\n");
	for (size_t i = 0; i < 2000; i++)
		len += (size_t)snprintf(msg + len, cap - len,
		                        "--w\r\nContent-Type: text/plain\r\n\r\n%zu\r\n", i);
	snprintf(msg + len, cap - len, "--w--\r\n");
	id = add_message(msg);
	free(msg);
	e = get_one(id, json_pack("{s:[s]}", "properties", "attachments"));
	CHECK(json_array_size(at(e, "attachments")) <= MIME_EMAIL_MAX_PARTS);
	json_decref(e);
}

static void test_header_forms(void)
{
	json_t *v = mime_header_value(" undisclosed-recipients:;", MIME_FORM_GROUPED_ADDRESSES);
	CHECK(json_array_size(v) == 1 && json_array_size(at(v, "0.addresses")) == 0);
	CHECK_STR(str_at(v, "0.name"), "undisclosed-recipients");
	json_decref(v);
	v = mime_header_value(" =?iso-8859-1?q?caf=E9?= and\r\n more ", MIME_FORM_TEXT);
	CHECK_STR(json_string_value(v), "caf\xc3\xa9 and more");
	json_decref(v);
	v = mime_header_value(" a\0b\xff", MIME_FORM_RAW);
	CHECK_STR(json_string_value(v), " a");
	json_decref(v);
	v = mime_header_value(" Tue, 01 Jun 2021 10:00:00 +0000", MIME_FORM_DATE);
	CHECK_STR(json_string_value(v), "2021-06-01T10:00:00Z");
	json_decref(v);
	v = mime_header_value(" garbage", MIME_FORM_MESSAGE_IDS);
	CHECK(json_is_null(v) || json_is_array(v));
	json_decref(v);
	CHECK(mime_header_form_allowed("subject", MIME_FORM_TEXT));
	CHECK(!mime_header_form_allowed("SUBJECT", MIME_FORM_DATE));
	CHECK(mime_header_form_allowed("X-Whatever", MIME_FORM_URLS));
	CHECK(!mime_header_form_allowed("List-Post", MIME_FORM_TEXT));
}

/* Threads hammering one small cache: hits return the tree that was put. */
static void *cache_worker(void *arg)
{
	struct mime_cache *c = arg;
	char key[32];
	for (int i = 0; i < 20000; i++) {
		int k = (i * 7919) % 300;
		snprintf(key, sizeof(key), "u/%d", k);
		json_t *t = mime_cache_get(c, key);
		if (t != NULL) {
			CHECK(json_integer_value(json_object_get(t, "k")) == k);
			mime_cache_release(c, t);
		} else {
			t = json_pack("{s:i,s:s}", "k", k, "pad",
			              "................................");
			mime_cache_put(c, key, t);
			mime_cache_release(c, t);
		}
	}
	return NULL;
}

static void test_cache(void)
{
	uint64_t hits0, misses0, hits1, misses1;
	size_t bytes, entries;
	mime_cache_stats(cache, &hits0, &misses0, &bytes, &entries);
	int64_t id = add_message("Subject: cached\r\n\r\nbody\r\n");
	json_decref(get_one(id, json_pack("{s:[s]}", "properties", "preview")));
	json_decref(get_one(id, json_pack("{s:[s]}", "properties", "preview")));
	mime_cache_stats(cache, &hits1, &misses1, &bytes, &entries);
	CHECK(misses1 == misses0 + 1 && hits1 == hits0 + 1);
	CHECK(bytes <= 1u << 20 && entries > 0);
	/* Metadata alone does not parse. */
	json_decref(get_one(id, json_pack("{s:[s,s]}", "properties", "size", "keywords")));
	mime_cache_stats(cache, &hits0, &misses0, &bytes, &entries);
	CHECK(hits0 == hits1 && misses0 == misses1);

	/* LRU eviction by bytes. */
	struct mime_cache *small = mime_cache_create(64 * 1024);
	json_t *tree = json_pack("{s:s%}", "v", "................................", (size_t)32);
	char key[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		mime_cache_put(small, key, tree);
		json_t *again = mime_cache_get(small, "k0"); /* keep k0 recent */
		json_decref(again);
	}
	mime_cache_stats(small, &hits0, &misses0, &bytes, &entries);
	CHECK(bytes <= 64 * 1024 && entries < 1000);
	json_t *k0 = mime_cache_get(small, "k0"), *k1 = mime_cache_get(small, "k1");
	CHECK(k0 != NULL && k1 == NULL);
	json_decref(k0);
	json_decref(tree);
	mime_cache_free(&small);
	CHECK(small == NULL);

	small = mime_cache_create(32 * 1024);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, cache_worker, small) == 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	mime_cache_stats(small, &hits0, &misses0, &bytes, &entries);
	CHECK(hits0 > 0 && misses0 > 0 && bytes <= 32 * 1024);
	mime_cache_free(&small);
}

int main(void)
{
	const char *err;
	char dir[] = "/tmp/mk-test-jmap-email.XXXXXX", path[128];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	CHECK(store_open(path, &store, &err) == 0);
	int64_t acct;
	CHECK(store_begin(store, &err) == 0);
	CHECK(store_account_ensure(store, "imaps://h alice", &acct, &err) == 0);
	CHECK(store_mailbox_create(store, acct, "INBOX", '/', "Inbox", &inbox, &err) == 0);
	CHECK(store_commit(store, &err) == 0);
	CHECK(jmap_registry_create(&registry, &err) == 0);
	CHECK(jmap_mail_register(registry, &err) == 0);
	cache = mime_cache_create(8u << 20);

	test_header_forms();
	test_nested();
	test_related_and_inline();
	test_part_properties();
	test_large();
	test_charsets_and_truncation();
	test_bad_arguments();
	test_hostile();
	test_cache();

	jmap_registry_free(&registry);
	mime_cache_free(&cache);
	store_close(&store);
	unlink(path);
	char wal[160];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	TEST_DONE("test-jmap-email");
}
