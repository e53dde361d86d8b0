/* Build a message from a JMAP Email create object with GMime. See
 * mime-build.h. */
#include "mime-build.h"

#include <gmime/gmime.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_TEXT (4u * 1024 * 1024) /* bytes of one header or body value */

struct build {
	json_t *email;
	json_t *body_values;
	mime_build_blob_fn *blob_fn;
	void *blob_ctx;
	size_t max_size, used;
	unsigned parts;
	struct mime_build_error *err;
};

static int fail(struct build *b, enum mime_build_status status, const char *property,
                const char *description)
{
	b->err->status = status;
	snprintf(b->err->property, sizeof(b->err->property), "%s", property);
	b->err->description = description;
	return -1;
}

static bool has_controls(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return true;
	return false;
}

/* Header text: a string without CR, LF or NUL (json strings may hold NUL;
 * jansson's length tells). */
static const char *header_text(json_t *v, size_t max)
{
	const char *s = json_string_value(v);
	if (s == NULL || strlen(s) != json_string_length(v) || strlen(s) > max ||
	    strpbrk(s, "\r\n") != NULL)
		return NULL;
	return s;
}

static bool valid_address(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 998 || has_controls(s))
		return false;
	const char *at = strrchr(s, '@');
	return at != NULL && at != s && at[1] != '\0' && strpbrk(s, " <>()[],;:\\\"") == NULL;
}

static bool is_token(const char *s, size_t max)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++, n++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("()<>@,;:\\\"/[]?=", *p) != NULL)
			return false;
	return n > 0 && n <= max;
}

/* "type/subtype" with tokens on both sides. */
static bool split_type(const char *t, char *type, size_t tsize, char *sub, size_t ssize)
{
	const char *slash = t != NULL ? strchr(t, '/') : NULL;
	if (slash == NULL || (size_t)(slash - t) >= tsize || strlen(slash + 1) >= ssize)
		return false;
	memcpy(type, t, (size_t)(slash - t));
	type[slash - t] = '\0';
	snprintf(sub, ssize, "%s", slash + 1);
	return is_token(type, 64) && is_token(sub, 64);
}

bool mime_build_parse_date(const char *s, int64_t *time_r)
{
	/* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
	if (s == NULL || strlen(s) < 20 || strlen(s) > 40)
		return false;
	static const char shape[] = "dddd-dd-ddTdd:dd:dd";
	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		bool digit = s[i] >= '0' && s[i] <= '9';
		if (shape[i] == 'd' ? !digit : s[i] != shape[i])
			return false;
	}
	int v[6];
	static const int off[6] = {0, 5, 8, 11, 14, 17}, len[6] = {4, 2, 2, 2, 2, 2};
	for (int i = 0; i < 6; i++) {
		int x = 0;
		for (int k = 0; k < len[i]; k++)
			x = x * 10 + (s[off[i] + k] - '0');
		v[i] = x;
	}
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	int tz = 0;
	if (*p == 'Z' && p[1] == '\0') {
		tz = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' && p[1] >= '0' &&
	           p[1] <= '9' && p[2] >= '0' && p[2] <= '9' && p[4] >= '0' && p[4] <= '5' &&
	           p[5] >= '0' && p[5] <= '9') {
		tz = ((p[1] - '0') * 10 + (p[2] - '0')) * 60 + (p[4] - '0') * 10 + (p[5] - '0');
		if (*p == '-')
			tz = -tz;
	} else {
		return false;
	}
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60 ||
	    v[0] < 1970)
		return false;
	struct tm tm = {.tm_year = v[0] - 1900,
	                .tm_mon = v[1] - 1,
	                .tm_mday = v[2],
	                .tm_hour = v[3],
	                .tm_min = v[4],
	                .tm_sec = v[5]};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*time_r = (int64_t)t - (int64_t)tz * 60;
	return true;
}

/* from/to/...: null or an array of {name, email}. */
static int add_addresses(struct build *b, GMimeMessage *msg, const char *prop,
                         GMimeAddressType type)
{
	json_t *list = json_object_get(b->email, prop);
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > MIME_BUILD_MAX_ADDRESSES)
		return fail(b, MIME_BUILD_INVALID, prop, "an array of EmailAddress objects");
	InternetAddressList *dst = g_mime_message_get_addresses(msg, type);
	size_t i;
	json_t *a;
	json_array_foreach(list, i, a)
	{
		const char *email = json_string_value(json_object_get(a, "email"));
		json_t *jname = json_object_get(a, "name");
		const char *name = NULL;
		if (jname != NULL && !json_is_null(jname) &&
		    ((name = header_text(jname, 998)) == NULL || has_controls(name)))
			return fail(b, MIME_BUILD_INVALID, prop, "an address name has line breaks");
		const char *key;
		json_t *v;
		json_object_foreach(a, key, v)
		{
			if (strcmp(key, "name") != 0 && strcmp(key, "email") != 0)
				return fail(b, MIME_BUILD_INVALID, prop,
				            "an EmailAddress has only name and email");
		}
		if (!json_is_object(a) || !valid_address(email) ||
		    strlen(email) != json_string_length(json_object_get(a, "email")))
			return fail(b, MIME_BUILD_INVALID, prop, "not a valid email address");
		InternetAddress *ia = internet_address_mailbox_new(name, email);
		internet_address_list_add(dst, ia);
		g_object_unref(ia);
	}
	return 0;
}

/* messageId/inReplyTo/references: null or an array of ids without <>. */
static int id_list(struct build *b, const char *prop, char *out, size_t size, bool *set_r)
{
	json_t *list = json_object_get(b->email, prop);
	*set_r = false;
	out[0] = '\0';
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 100)
		return fail(b, MIME_BUILD_INVALID, prop, "an array of message ids");
	size_t i, used = 0;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		const char *id = header_text(v, 250);
		if (id == NULL || !valid_address(id))
			return fail(b, MIME_BUILD_INVALID, prop,
			            "message ids look like left@right");
		int n = snprintf(out + used, size - used, "%s<%s>", used > 0 ? " " : "", id);
		if (n < 0 || (size_t)n >= size - used)
			return fail(b, MIME_BUILD_INVALID, prop, "too many message ids");
		used += (size_t)n;
	}
	*set_r = true;
	return 0;
}

/* header:NAME[:asRaw|:asText] properties on an object (the Email or a
 * body part). */
static int add_header_properties(struct build *b, json_t *obj, GMimeObject *target,
                                 const char *path)
{
	static const char *const managed[] = {
	    "from",
	    "sender",
	    "to",
	    "cc",
	    "bcc",
	    "reply-to",
	    "subject",
	    "date",
	    "message-id",
	    "in-reply-to",
	    "references",
	    "mime-version",
	    "content-type",
	    "content-transfer-encoding",
	    "content-disposition",
	    "content-id",
	};
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		if (strncmp(key, "header:", 7) != 0)
			continue;
		char name[128], prop[160];
		snprintf(prop, sizeof(prop), "%s%s", path, key);
		const char *rest = key + 7, *colon = strchr(rest, ':');
		size_t nlen = colon != NULL ? (size_t)(colon - rest) : strlen(rest);
		bool as_text = colon != NULL && strcmp(colon, ":asText") == 0;
		if (nlen == 0 || nlen >= sizeof(name) ||
		    (colon != NULL && !as_text && strcmp(colon, ":asRaw") != 0))
			return fail(b, MIME_BUILD_INVALID, prop,
			            "header properties are header:NAME, :asRaw or :asText here");
		memcpy(name, rest, nlen);
		name[nlen] = '\0';
		for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++)
			if (*c <= 0x20 || *c >= 0x7f || *c == ':')
				return fail(b, MIME_BUILD_INVALID, prop, "not a header field name");
		for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
			if (strcasecmp(name, managed[i]) == 0)
				return fail(b, MIME_BUILD_INVALID, prop,
				            "set this header through its own property");
		const char *value = header_text(v, 998);
		if (value == NULL)
			return fail(b, MIME_BUILD_INVALID, prop,
			            "a header value is a string without line breaks");
		if (!as_text) {
			for (const unsigned char *c = (const unsigned char *)value; *c != '\0'; c++)
				if (*c >= 0x80)
					return fail(b, MIME_BUILD_INVALID, prop,
					            "an :asRaw value is ASCII; use :asText");
		}
		g_mime_object_append_header(target, name, value, as_text ? "utf-8" : NULL);
	}
	return 0;
}

static int account(struct build *b, size_t bytes, const char *prop)
{
	if (bytes > b->max_size || b->used > b->max_size - bytes)
		return fail(b, MIME_BUILD_TOO_LARGE, prop, "the message would be too large");
	b->used += bytes;
	return 0;
}

static GMimeObject *build_part(struct build *b, json_t *part, const char *path, unsigned depth,
                               const char *default_type);

/* A leaf from bodyValues (partId) or a blob (blobId). */
static GMimeObject *leaf_part(struct build *b, json_t *part, const char *path, const char *type,
                              const char *sub)
{
	char prop[160];
	json_t *part_id = json_object_get(part, "partId");
	json_t *blob_id = json_object_get(part, "blobId");
	bool has_part = part_id != NULL && !json_is_null(part_id);
	bool has_blob = blob_id != NULL && !json_is_null(blob_id);
	if (has_part == has_blob) {
		snprintf(prop, sizeof(prop), "%spartId", path);
		fail(b, MIME_BUILD_INVALID, prop, "a part has either partId or blobId");
		return NULL;
	}
	if (has_part) {
		snprintf(prop, sizeof(prop), "%spartId", path);
		const char *pid = json_string_value(part_id);
		json_t *bv = pid != NULL ? json_object_get(b->body_values, pid) : NULL;
		json_t *value = json_object_get(bv, "value");
		const char *text = json_string_value(value);
		if (strcasecmp(type, "text") != 0) {
			fail(b, MIME_BUILD_INVALID, prop, "a part with a partId is text/*");
			return NULL;
		}
		if (text == NULL || strlen(text) != json_string_length(value) ||
		    json_is_true(json_object_get(bv, "isTruncated")) ||
		    json_is_true(json_object_get(bv, "isEncodingProblem"))) {
			fail(b, MIME_BUILD_INVALID, prop,
			     "no usable bodyValues entry for this partId");
			return NULL;
		}
		if (account(b, strlen(text), prop) < 0)
			return NULL;
		GMimeTextPart *tp = g_mime_text_part_new_with_subtype(sub);
		g_mime_text_part_set_text(tp, text);
		return GMIME_OBJECT(tp);
	}
	snprintf(prop, sizeof(prop), "%sblobId", path);
	const char *bid = json_string_value(blob_id);
	void *data = NULL;
	size_t len = 0;
	int found = bid != NULL ? b->blob_fn(b->blob_ctx, bid, &data, &len) : 0;
	if (found <= 0) {
		fail(b, found < 0 ? MIME_BUILD_FAILED : MIME_BUILD_BLOB_NOT_FOUND, prop,
		     found < 0 ? "cannot read the blob" : "no such blob");
		return NULL;
	}
	if (account(b, len, prop) < 0) {
		free(data);
		return NULL;
	}
	GMimePart *gp = g_mime_part_new_with_type(type, sub);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	free(data);
	GMimeDataWrapper *w =
	    g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);
	g_object_unref(stream);
	g_mime_part_set_content(gp, w);
	g_object_unref(w);
	/* message/ types must not be base64 (RFC 2046 5.2); everything else is. */
	if (strcasecmp(type, "message") != 0)
		g_mime_part_set_content_encoding(gp, GMIME_CONTENT_ENCODING_BASE64);
	return GMIME_OBJECT(gp);
}

/* Common part properties: type, name, disposition, cid, charset,
 * language, location, header:*. */
static GMimeObject *build_part(struct build *b, json_t *part, const char *path, unsigned depth,
                               const char *default_type)
{
	char prop[160];
	if (!json_is_object(part)) {
		fail(b, MIME_BUILD_INVALID, path, "a body part is an object");
		return NULL;
	}
	if (depth > MIME_BUILD_MAX_DEPTH || ++b->parts > MIME_BUILD_MAX_PARTS) {
		fail(b, MIME_BUILD_INVALID, path, "too many or too deeply nested body parts");
		return NULL;
	}
	const char *key;
	json_t *v;
	static const char *const known[] = {"partId",      "blobId",   "type",    "name",
	                                    "disposition", "cid",      "charset", "language",
	                                    "location",    "subParts", "size",    NULL};
	json_object_foreach(part, key, v)
	{
		bool ok = strncmp(key, "header:", 7) == 0;
		for (size_t i = 0; known[i] != NULL && !ok; i++)
			ok = strcmp(key, known[i]) == 0;
		if (!ok || strcmp(key, "headers") == 0) {
			snprintf(prop, sizeof(prop), "%s%s", path, key);
			fail(b, MIME_BUILD_INVALID, prop, "not a body part property one can set");
			return NULL;
		}
	}
	json_t *jtype = json_object_get(part, "type");
	const char *t =
	    jtype == NULL || json_is_null(jtype) ? default_type : json_string_value(jtype);
	char type[65], sub[65];
	json_t *subparts = json_object_get(part, "subParts");
	if (t == NULL && subparts != NULL && !json_is_null(subparts))
		t = "multipart/mixed";
	if (t == NULL || !split_type(t, type, sizeof(type), sub, sizeof(sub))) {
		snprintf(prop, sizeof(prop), "%stype", path);
		fail(b, MIME_BUILD_INVALID, prop, "type is type/subtype");
		return NULL;
	}
	GMimeObject *obj;
	if (strcasecmp(type, "multipart") == 0) {
		snprintf(prop, sizeof(prop), "%ssubParts", path);
		if (!json_is_array(subparts) || json_array_size(subparts) == 0 ||
		    json_object_get(part, "partId") != NULL ||
		    json_object_get(part, "blobId") != NULL) {
			fail(b, MIME_BUILD_INVALID, prop,
			     "a multipart has subParts and no content");
			return NULL;
		}
		GMimeMultipart *mp = g_mime_multipart_new_with_subtype(sub);
		size_t i;
		json_array_foreach(subparts, i, v)
		{
			char sub_path[160];
			snprintf(sub_path, sizeof(sub_path), "%ssubParts/%zu/", path, i);
			GMimeObject *child = build_part(b, v, sub_path, depth + 1, "text/plain");
			if (child == NULL) {
				g_object_unref(mp);
				return NULL;
			}
			g_mime_multipart_add(mp, child);
			g_object_unref(child);
		}
		obj = GMIME_OBJECT(mp);
	} else {
		if (subparts != NULL && !json_is_null(subparts)) {
			snprintf(prop, sizeof(prop), "%ssubParts", path);
			fail(b, MIME_BUILD_INVALID, prop, "only multipart/* parts have subParts");
			return NULL;
		}
		obj = leaf_part(b, part, path, type, sub);
		if (obj == NULL)
			return NULL;
	}
	/* Optional decorations. */
	struct {
		const char *prop;
		size_t max;
	} const texts[] = {
	    {"name", 255}, {"disposition", 64}, {"cid", 250}, {"location", 998}, {"charset", 64}};
	const char *val[5] = {NULL};
	for (size_t i = 0; i < 5; i++) {
		v = json_object_get(part, texts[i].prop);
		if (v == NULL || json_is_null(v))
			continue;
		val[i] = header_text(v, texts[i].max);
		if (val[i] == NULL || has_controls(val[i]) || (i == 1 && !is_token(val[i], 64)) ||
		    (i == 2 && !valid_address(val[i])) || (i == 4 && !is_token(val[i], 64))) {
			snprintf(prop, sizeof(prop), "%s%s", path, texts[i].prop);
			g_object_unref(obj);
			fail(b, MIME_BUILD_INVALID, prop, "not a valid value here");
			return NULL;
		}
	}
	if (val[1] != NULL || (val[0] != NULL && GMIME_IS_PART(obj)))
		g_mime_object_set_disposition(obj, val[1] != NULL ? val[1] : "attachment");
	if (val[0] != NULL && GMIME_IS_PART(obj))
		g_mime_part_set_filename(GMIME_PART(obj), val[0]);
	if (val[2] != NULL)
		g_mime_object_set_content_id(obj, val[2]);
	if (val[3] != NULL)
		g_mime_object_set_header(obj, "Content-Location", val[3], NULL);
	if (val[4] != NULL && !GMIME_IS_TEXT_PART(obj))
		g_mime_object_set_content_type_parameter(obj, "charset", val[4]);
	json_t *lang = json_object_get(part, "language");
	if (lang != NULL && !json_is_null(lang)) {
		snprintf(prop, sizeof(prop), "%slanguage", path);
		g_object_unref(obj);
		fail(b, MIME_BUILD_INVALID, prop, "language is not supported on create");
		return NULL;
	}
	if (add_header_properties(b, part, obj, path) < 0) {
		g_object_unref(obj);
		return NULL;
	}
	return obj;
}

/* textBody/htmlBody: at most one part each, text/plain and text/html. */
static int one_body(struct build *b, const char *prop, const char *want, json_t **part_r)
{
	json_t *list = json_object_get(b->email, prop);
	*part_r = NULL;
	if (list == NULL || json_is_null(list))
		return 0;
	if (!json_is_array(list) || json_array_size(list) > 1)
		return fail(b, MIME_BUILD_INVALID, prop, "at most one body part");
	json_t *p = json_array_get(list, 0);
	if (p == NULL)
		return 0;
	json_t *t = json_object_get(p, "type");
	if (t != NULL && !json_is_null(t) &&
	    (!json_is_string(t) || strcasecmp(json_string_value(t), want) != 0))
		return fail(b, MIME_BUILD_INVALID, prop,
		            strcmp(want, "text/plain") == 0 ? "textBody is text/plain"
		                                            : "htmlBody is text/html");
	*part_r = p;
	return 0;
}

static GMimeObject *build_body(struct build *b)
{
	json_t *structure = json_object_get(b->email, "bodyStructure");
	json_t *text = NULL, *html = NULL;
	json_t *atts = json_object_get(b->email, "attachments");
	if (structure != NULL && !json_is_null(structure)) {
		if (json_object_get(b->email, "textBody") != NULL ||
		    json_object_get(b->email, "htmlBody") != NULL || atts != NULL) {
			fail(b, MIME_BUILD_INVALID, "bodyStructure",
			     "bodyStructure goes without textBody, htmlBody and attachments");
			return NULL;
		}
		return build_part(b, structure, "bodyStructure/", 0, NULL);
	}
	if (one_body(b, "textBody", "text/plain", &text) < 0 ||
	    one_body(b, "htmlBody", "text/html", &html) < 0)
		return NULL;
	if (atts != NULL && !json_is_null(atts) &&
	    (!json_is_array(atts) || json_array_size(atts) > MIME_BUILD_MAX_PARTS)) {
		fail(b, MIME_BUILD_INVALID, "attachments", "an array of body parts");
		return NULL;
	}
	GMimeObject *tp = NULL, *hp = NULL, *body = NULL;
	if (text != NULL && (tp = build_part(b, text, "textBody/0/", 1, "text/plain")) == NULL)
		return NULL;
	if (html != NULL && (hp = build_part(b, html, "htmlBody/0/", 1, "text/html")) == NULL) {
		g_clear_object(&tp);
		return NULL;
	}
	if (tp != NULL && hp != NULL) {
		GMimeMultipart *alt = g_mime_multipart_new_with_subtype("alternative");
		g_mime_multipart_add(alt, tp);
		g_mime_multipart_add(alt, hp);
		g_object_unref(tp);
		g_object_unref(hp);
		body = GMIME_OBJECT(alt);
	} else if (tp != NULL || hp != NULL) {
		body = tp != NULL ? tp : hp;
	} else {
		/* No body given: an empty text part. */
		GMimeTextPart *empty = g_mime_text_part_new_with_subtype("plain");
		g_mime_text_part_set_text(empty, "");
		body = GMIME_OBJECT(empty);
	}
	size_t natts = json_is_array(atts) ? json_array_size(atts) : 0;
	if (natts == 0)
		return body;
	GMimeMultipart *mixed = g_mime_multipart_new_with_subtype("mixed");
	g_mime_multipart_add(mixed, body);
	g_object_unref(body);
	for (size_t i = 0; i < natts; i++) {
		char path[64];
		snprintf(path, sizeof(path), "attachments/%zu/", i);
		json_t *a = json_array_get(atts, i);
		if (json_is_object(a) && json_object_get(a, "partId") != NULL) {
			fail(b, MIME_BUILD_INVALID, path, "attachments are given by blobId");
			g_object_unref(mixed);
			return NULL;
		}
		GMimeObject *ap = build_part(b, a, path, 1, "application/octet-stream");
		if (ap == NULL) {
			g_object_unref(mixed);
			return NULL;
		}
		if (g_mime_object_get_content_disposition(ap) == NULL)
			g_mime_object_set_disposition(ap, "attachment");
		g_mime_multipart_add(mixed, ap);
		g_object_unref(ap);
	}
	return GMIME_OBJECT(mixed);
}

static int check_properties(struct build *b)
{
	static const char *const settable[] = {
	    "from",       "sender",        "to",       "cc",         "bcc",
	    "replyTo",    "subject",       "sentAt",   "messageId",  "inReplyTo",
	    "references", "bodyStructure", "textBody", "htmlBody",   "attachments",
	    "bodyValues", "mailboxIds",    "keywords", "receivedAt", NULL,
	};
	const char *key;
	json_t *v;
	json_object_foreach(b->email, key, v)
	{
		bool ok = strncmp(key, "header:", 7) == 0;
		for (size_t i = 0; settable[i] != NULL && !ok; i++)
			ok = strcmp(key, settable[i]) == 0;
		if (!ok)
			return fail(b, MIME_BUILD_INVALID, key,
			            strcmp(key, "headers") == 0
			                ? "set each header as its own header: property"
			                : "not an Email property one can set on create");
	}
	json_t *bv = json_object_get(b->email, "bodyValues");
	if (bv != NULL && !json_is_null(bv) && !json_is_object(bv))
		return fail(b, MIME_BUILD_INVALID, "bodyValues", "an object by partId");
	b->body_values = bv;
	return 0;
}

static char *random_message_id(void)
{
	unsigned char r[16];
	char hex[33];
	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(hex, sizeof(hex), r, sizeof(r));
	char *id = malloc(64);
	if (id != NULL)
		snprintf(id, 64, "%s@mailkeep.invalid", hex);
	return id;
}

int mime_build_email(json_t *email, mime_build_blob_fn *blob_fn, void *blob_ctx, size_t max_size,
                     int64_t now, char **data_r, size_t *len_r, struct mime_build_error *error_r)
{
	struct build b = {.email = email,
	                  .blob_fn = blob_fn,
	                  .blob_ctx = blob_ctx,
	                  .max_size = max_size,
	                  .err = error_r};
	memset(error_r, 0, sizeof(*error_r));
	if (!json_is_object(email)) {
		fail(&b, MIME_BUILD_INVALID, "", "an Email object");
		return -1;
	}
	if (check_properties(&b) < 0)
		return -1;
	GMimeMessage *msg = g_mime_message_new(TRUE);
	int r = -1;
	char ids[3][8192];
	bool has_ids[3];
	static const char *const id_props[3] = {"messageId", "inReplyTo", "references"};
	static const struct {
		const char *prop;
		GMimeAddressType type;
	} addrs[] = {{"from", GMIME_ADDRESS_TYPE_FROM},
	             {"sender", GMIME_ADDRESS_TYPE_SENDER},
	             {"replyTo", GMIME_ADDRESS_TYPE_REPLY_TO},
	             {"to", GMIME_ADDRESS_TYPE_TO},
	             {"cc", GMIME_ADDRESS_TYPE_CC},
	             {"bcc", GMIME_ADDRESS_TYPE_BCC}};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++)
		if (add_addresses(&b, msg, addrs[i].prop, addrs[i].type) < 0)
			goto out;
	json_t *subject = json_object_get(email, "subject");
	if (subject != NULL && !json_is_null(subject)) {
		const char *s = header_text(subject, 998);
		if (s == NULL) {
			fail(&b, MIME_BUILD_INVALID, "subject", "a string without line breaks");
			goto out;
		}
		g_mime_message_set_subject(msg, s, "utf-8");
	}
	int64_t sent = now;
	json_t *sent_at = json_object_get(email, "sentAt");
	if (sent_at != NULL && !json_is_null(sent_at) &&
	    !mime_build_parse_date(json_string_value(sent_at), &sent)) {
		fail(&b, MIME_BUILD_INVALID, "sentAt", "an RFC 3339 date");
		goto out;
	}
	GDateTime *dt = g_date_time_new_from_unix_utc(sent);
	if (dt == NULL) {
		fail(&b, MIME_BUILD_INVALID, "sentAt", "a date out of range");
		goto out;
	}
	g_mime_message_set_date(msg, dt);
	g_date_time_unref(dt);
	for (int i = 0; i < 3; i++)
		if (id_list(&b, id_props[i], ids[i], sizeof(ids[i]), &has_ids[i]) < 0)
			goto out;
	if (has_ids[0]) {
		json_t *list = json_object_get(email, "messageId");
		if (json_array_size(list) != 1) {
			fail(&b, MIME_BUILD_INVALID, "messageId", "exactly one message id");
			goto out;
		}
		g_mime_message_set_message_id(msg, json_string_value(json_array_get(list, 0)));
	} else {
		char *id = random_message_id();
		if (id == NULL) {
			fail(&b, MIME_BUILD_FAILED, "", "out of memory");
			goto out;
		}
		g_mime_message_set_message_id(msg, id);
		free(id);
	}
	if (has_ids[1])
		g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", ids[1], NULL);
	if (has_ids[2])
		g_mime_object_set_header(GMIME_OBJECT(msg), "References", ids[2], NULL);
	if (add_header_properties(&b, email, GMIME_OBJECT(msg), "") < 0)
		goto out;
	GMimeObject *body = build_body(&b);
	if (body == NULL)
		goto out;
	g_mime_message_set_mime_part(msg, body);
	g_object_unref(body);
	/* Text parts get quoted-printable or base64 as their bytes need. */
	g_mime_object_encode(GMIME_OBJECT(msg), GMIME_ENCODING_CONSTRAINT_7BIT);

	GMimeStream *out = g_mime_stream_mem_new();
	GMimeFormatOptions *fo = g_mime_format_options_clone(NULL);
	g_mime_format_options_set_newline_format(fo, GMIME_NEWLINE_FORMAT_DOS);
	ssize_t w = g_mime_object_write_to_stream(GMIME_OBJECT(msg), fo, out);
	g_mime_format_options_free(fo);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out));
	if (w < 0 || bytes == NULL) {
		fail(&b, MIME_BUILD_FAILED, "", "cannot write the message");
	} else if (bytes->len > max_size) {
		fail(&b, MIME_BUILD_TOO_LARGE, "", "the message would be too large");
	} else {
		char *data = malloc(bytes->len + 1);
		if (data == NULL) {
			fail(&b, MIME_BUILD_FAILED, "", "out of memory");
		} else {
			memcpy(data, bytes->data, bytes->len);
			data[bytes->len] = '\0';
			*data_r = data;
			*len_r = bytes->len;
			r = 0;
		}
	}
	g_object_unref(out);
out:
	g_object_unref(msg);
	return r;
}

bool mime_build_valid_address(const char *s)
{
	return s != NULL && valid_address(s);
}

char *mime_build_from_field(const char *name, const char *email)
{
	if (email == NULL || !valid_address(email) || (name != NULL && has_controls(name)))
		return NULL;
	InternetAddress *ia =
	    internet_address_mailbox_new(name != NULL && name[0] != '\0' ? name : NULL, email);
	char *text = internet_address_to_string(ia, NULL, TRUE);
	g_object_unref(ia);
	if (text == NULL)
		return NULL;
	size_t size = strlen(text) + sizeof("From: \r\n");
	char *out = malloc(size);
	if (out != NULL) {
		int n = snprintf(out, size, "From: %s\r\n", text);
		if (n < 0 || (size_t)n >= size) {
			free(out);
			out = NULL;
		}
	}
	g_free(text);
	return out;
}
