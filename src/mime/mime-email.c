/* Messages parsed with GMime into RFC 8621 Email shapes (see mime-email.h). */
#include "mime-email.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

/* --- text helpers --------------------------------------------------------------- */

/* Valid UTF-8 from arbitrary bytes: NULs dropped, invalid runs become
 * U+FFFD. Returns a g_malloc()ed string; *bad_r (may be NULL) tells whether
 * anything had to be replaced. */
static char *utf8_clean(const char *s, size_t len, bool *bad_r)
{
	char *tmp = NULL;
	if (len == 0)
		return g_strdup("");
	if (memchr(s, '\0', len) != NULL) {
		tmp = g_malloc(len + 1);
		size_t n = 0;
		for (size_t i = 0; i < len; i++)
			if (s[i] != '\0')
				tmp[n++] = s[i];
		s = tmp;
		len = n;
	}
	bool valid = g_utf8_validate(s, (gssize)len, NULL);
	if (bad_r != NULL)
		*bad_r = !valid;
	char *out = valid ? g_strndup(s, len) : g_utf8_make_valid(s, (gssize)len);
	g_free(tmp);
	return out;
}

static json_t *json_clean_string(const char *s)
{
	if (s == NULL)
		return json_null();
	char *c = utf8_clean(s, strlen(s), NULL);
	json_t *j = json_string_nocheck(c); /* clean: valid UTF-8 without NUL */
	g_free(c);
	return j != NULL ? j : json_null();
}

/* Unfold (CRLF/LF before white space removed) and trim. g_malloc()ed. */
static char *unfold_trim(const char *raw)
{
	size_t len = strlen(raw);
	char *out = g_malloc(len + 1), *o = out;
	for (const char *p = raw; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		*o++ = *p;
	}
	*o = '\0';
	return g_strstrip(out);
}

/* --- header forms --------------------------------------------------------------- */

static const char *const addr_headers[] = {
    "from",        "sender",        "reply-to",        "to",        "cc",        "bcc",
    "resent-from", "resent-sender", "resent-reply-to", "resent-to", "resent-cc", "resent-bcc"};
static const char *const text_headers[] = {"subject", "comments", "keywords", "list-id"};
static const char *const id_headers[] = {"message-id", "in-reply-to", "references",
                                         "resent-message-id"};
static const char *const date_headers[] = {"date", "resent-date"};
static const char *const url_headers[] = {"list-help", "list-unsubscribe", "list-subscribe",
                                          "list-post", "list-owner",       "list-archive"};
/* Defined by RFC 5322 / RFC 2369 but in no list above: Raw only. */
static const char *const other_known[] = {"return-path", "received"};

#define IN(list, name) in_list(list, sizeof(list) / sizeof(list[0]), name)
static bool in_list(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(list[i], name) == 0)
			return true;
	return false;
}

bool mime_header_form_parse(const char *s, enum mime_header_form *form_r)
{
	static const struct {
		const char *name;
		enum mime_header_form form;
	} forms[] = {{"asRaw", MIME_FORM_RAW},
	             {"asText", MIME_FORM_TEXT},
	             {"asAddresses", MIME_FORM_ADDRESSES},
	             {"asGroupedAddresses", MIME_FORM_GROUPED_ADDRESSES},
	             {"asMessageIds", MIME_FORM_MESSAGE_IDS},
	             {"asDate", MIME_FORM_DATE},
	             {"asURLs", MIME_FORM_URLS}};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (strcmp(s, forms[i].name) == 0) {
			*form_r = forms[i].form;
			return true;
		}
	}
	return false;
}

bool mime_header_form_allowed(const char *name, enum mime_header_form form)
{
	bool known = IN(addr_headers, name) || IN(text_headers, name) || IN(id_headers, name) ||
	             IN(date_headers, name) || IN(url_headers, name) || IN(other_known, name);
	switch (form) {
	case MIME_FORM_RAW:
		return true;
	case MIME_FORM_TEXT:
		return !known || IN(text_headers, name);
	case MIME_FORM_ADDRESSES:
	case MIME_FORM_GROUPED_ADDRESSES:
		return !known || IN(addr_headers, name);
	case MIME_FORM_MESSAGE_IDS:
		return !known || IN(id_headers, name);
	case MIME_FORM_DATE:
		return !known || IN(date_headers, name);
	case MIME_FORM_URLS:
		return !known || IN(url_headers, name);
	}
	return false;
}

static json_t *address_json(InternetAddress *a)
{
	const char *email = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
	const char *name = internet_address_get_name(a);
	return json_pack("{s:o,s:o}", "name",
	                 name != NULL && name[0] != '\0' ? json_clean_string(name) : json_null(),
	                 "email", json_clean_string(email != NULL ? email : ""));
}

/* Mailboxes of a list into arr; groups are flattened (depth-bounded). */
static void addresses_flat(InternetAddressList *list, json_t *arr, int depth)
{
	int n = list != NULL ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n && json_array_size(arr) < MIME_EMAIL_MAX_HEADERS; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_MAILBOX(a))
			json_array_append_new(arr, address_json(a));
		else if (INTERNET_ADDRESS_IS_GROUP(a) && depth < 4)
			addresses_flat(
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), arr,
			    depth + 1);
	}
}

static json_t *grouped_addresses(InternetAddressList *list)
{
	json_t *groups = json_array(), *loose = NULL;
	int n = list != NULL ? internet_address_list_length(list) : 0;
	for (int i = 0; i < n && i < MIME_EMAIL_MAX_HEADERS; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			loose = NULL; /* a later mailbox starts a new null group */
			json_t *members = json_array();
			addresses_flat(
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), members,
			    1);
			const char *name = internet_address_get_name(a);
			json_array_append_new(groups, json_pack("{s:o,s:o}", "name",
			                                        json_clean_string(name),
			                                        "addresses", members));
		} else if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			if (loose == NULL) {
				loose = json_array();
				json_array_append_new(
				    groups, json_pack("{s:n,s:o}", "name", "addresses", loose));
			}
			json_array_append_new(loose, address_json(a));
		}
	}
	return groups;
}

static json_t *message_ids(const char *raw)
{
	GMimeReferences *refs = g_mime_references_parse(NULL, raw);
	int n = refs != NULL ? g_mime_references_length(refs) : 0;
	json_t *arr = json_array();
	for (int i = 0; i < n && i < MIME_EMAIL_MAX_HEADERS; i++)
		json_array_append_new(arr,
		                      json_clean_string(g_mime_references_get_message_id(refs, i)));
	if (refs != NULL)
		g_mime_references_free(refs);
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return json_null();
	}
	return arr;
}

static json_t *date_value(const char *raw)
{
	char *text = unfold_trim(raw);
	GDateTime *dt = g_mime_utils_header_decode_date(text);
	g_free(text);
	if (dt == NULL)
		return json_null();
	json_t *out = json_null();
	int year = g_date_time_get_year(dt);
	if (year >= 1 && year <= 9999) {
		char *s = g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S%:z");
		if (s != NULL) {
			json_decref(out);
			/* RFC 3339 prefers Z for UTC. */
			size_t l = strlen(s);
			if (l > 6 && strcmp(s + l - 6, "+00:00") == 0)
				memcpy(s + l - 6, "Z", 2);
			out = json_string(s);
			g_free(s);
		}
	}
	g_date_time_unref(dt);
	return out;
}

static json_t *urls(const char *raw)
{
	json_t *arr = json_array();
	for (const char *p = raw; (p = strchr(p, '<')) != NULL;) {
		const char *end = strchr(p, '>');
		if (end == NULL)
			break;
		char *u = g_strndup(p + 1, (size_t)(end - p - 1));
		char *t = unfold_trim(u);
		json_array_append_new(arr, json_clean_string(t));
		g_free(t);
		g_free(u);
		p = end + 1;
		if (json_array_size(arr) >= MIME_EMAIL_MAX_HEADERS)
			break;
	}
	if (json_array_size(arr) == 0) {
		json_decref(arr);
		return json_null();
	}
	return arr;
}

static json_t *header_value_of(const char *raw, enum mime_header_form form);

json_t *mime_header_value(const char *raw, enum mime_header_form form)
{
	mime_init();
	/* Parsed forms read at most the first MIME_EMAIL_MAX_PARSED_HEADER
	 * bytes: a huge header cannot make huge address lists. */
	if (form == MIME_FORM_RAW || strlen(raw) <= MIME_EMAIL_MAX_PARSED_HEADER)
		return header_value_of(raw, form);
	char *cut = g_strndup(raw, MIME_EMAIL_MAX_PARSED_HEADER);
	json_t *j = header_value_of(cut, form);
	g_free(cut);
	return j;
}

static json_t *header_value_of(const char *raw, enum mime_header_form form)
{
	switch (form) {
	case MIME_FORM_RAW:
		return json_clean_string(raw);
	case MIME_FORM_TEXT: {
		char *u = unfold_trim(raw);
		char *d = g_mime_utils_header_decode_text(NULL, u);
		json_t *j = json_clean_string(d != NULL ? g_strstrip(d) : u);
		g_free(d);
		g_free(u);
		return j;
	}
	case MIME_FORM_ADDRESSES:
	case MIME_FORM_GROUPED_ADDRESSES: {
		InternetAddressList *list = internet_address_list_parse(NULL, raw);
		json_t *j;
		if (form == MIME_FORM_ADDRESSES) {
			j = json_array();
			addresses_flat(list, j, 0);
		} else {
			j = grouped_addresses(list);
		}
		if (list != NULL)
			g_object_unref(list);
		return j;
	}
	case MIME_FORM_MESSAGE_IDS:
		return message_ids(raw);
	case MIME_FORM_DATE:
		return date_value(raw);
	case MIME_FORM_URLS:
		return urls(raw);
	}
	return json_null();
}

/* --- parts ----------------------------------------------------------------------- */

struct walk {
	size_t parts;
	json_t *body_values;
};

static json_t *header_json(GMimeHeader *h)
{
	const char *name = g_mime_header_get_name(h);
	const char *raw = g_mime_header_get_raw_value(h);
	if (raw == NULL)
		raw = "";
	/* The raw value runs up to, not including, the terminating CRLF. */
	size_t len = strlen(raw);
	while (len > 0 && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
		len--;
	char *value = utf8_clean(raw, len, NULL);
	json_t *j = json_object();
	json_object_set_new_nocheck(j, "name", json_clean_string(name != NULL ? name : ""));
	json_object_set_new_nocheck(j, "value", json_string_nocheck(value)); /* clean */
	g_free(value);
	return j;
}

/* The headers of an object in order; for a message, its own and those
 * GMime keeps on the top-level part (Content-*), merged by offset. */
static json_t *headers_json(GMimeObject *obj, GMimeObject *root_part)
{
	json_t *arr = json_array();
	GMimeHeaderList *a = g_mime_object_get_header_list(obj);
	GMimeHeaderList *b = root_part != NULL ? g_mime_object_get_header_list(root_part) : NULL;
	int na = a != NULL ? g_mime_header_list_get_count(a) : 0;
	int nb = b != NULL ? g_mime_header_list_get_count(b) : 0;
	int i = 0, k = 0;
	while ((i < na || k < nb) && json_array_size(arr) < MIME_EMAIL_MAX_HEADERS) {
		GMimeHeader *ha = i < na ? g_mime_header_list_get_header_at(a, i) : NULL;
		GMimeHeader *hb = k < nb ? g_mime_header_list_get_header_at(b, k) : NULL;
		if (ha != NULL && hb != NULL &&
		    g_mime_header_get_offset(ha) == g_mime_header_get_offset(hb)) {
			k++; /* the same header in both lists */
			continue;
		}
		if (hb == NULL ||
		    (ha != NULL && g_mime_header_get_offset(ha) < g_mime_header_get_offset(hb))) {
			json_array_append_new(arr, header_json(ha));
			i++;
		} else {
			json_array_append_new(arr, header_json(hb));
			k++;
		}
	}
	return arr;
}

/* The last raw value of a header in a "headers" array, or NULL. */
static const char *last_header(json_t *headers, const char *name)
{
	const char *v = NULL;
	size_t i;
	json_t *h;
	json_array_foreach(headers, i, h)
	{
		if (strcasecmp(json_string_value(json_object_get(h, "name")), name) == 0)
			v = json_string_value(json_object_get(h, "value"));
	}
	return v;
}

/* Decoded bytes of a leaf (transfer encoding removed). g_byte_array. */
static GByteArray *leaf_bytes(GMimeObject *obj, size_t max)
{
	GMimeStream *mem = g_mime_stream_mem_new();
	if (GMIME_IS_PART(obj)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
		if (w != NULL)
			g_mime_data_wrapper_write_to_stream(w, mem);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (m != NULL)
			g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, mem);
	}
	/* The array becomes ours (a shared one would be emptied with the stream). */
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	g_object_unref(mem);
	if (bytes->len > max)
		g_byte_array_set_size(bytes, (guint)max);
	return bytes;
}

/* Decoded size of a leaf, counted without keeping the bytes. */
static size_t leaf_size(GMimeObject *obj)
{
	GMimeStream *null = g_mime_stream_null_new();
	if (GMIME_IS_PART(obj)) {
		GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(obj));
		if (w != NULL)
			g_mime_data_wrapper_write_to_stream(w, null);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (m != NULL)
			g_mime_object_write_to_stream(GMIME_OBJECT(m), NULL, null);
	}
	size_t n = (size_t)GMIME_STREAM_NULL(null)->written;
	g_object_unref(null);
	return n;
}

/* Cut UTF-8 text to at most max bytes without splitting a character. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	size_t n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

static json_t *text_value(GByteArray *bytes, const char *charset, bool cut_before)
{
	bool problem = false;
	char *utf8 = NULL;
	const char *cs = charset != NULL ? charset : "us-ascii";
	if (bytes->len == 0) {
		utf8 = g_strdup("");
	} else if (g_ascii_strcasecmp(cs, "utf-8") == 0 ||
	           g_ascii_strcasecmp(cs, "us-ascii") == 0 || g_ascii_strcasecmp(cs, "utf8") == 0 ||
	           g_ascii_strcasecmp(cs, "ascii") == 0) {
		utf8 = utf8_clean((const char *)bytes->data, bytes->len, &problem);
	} else {
		GError *gerr = NULL;
		gsize written = 0;
		char *conv = g_convert((const char *)bytes->data, (gssize)bytes->len, "UTF-8",
		                       g_mime_charset_iconv_name(cs), NULL, &written, &gerr);
		if (conv == NULL) {
			problem = true;
			g_clear_error(&gerr);
			utf8 = utf8_clean((const char *)bytes->data, bytes->len, NULL);
		} else {
			utf8 = utf8_clean(conv, written, &problem);
			g_free(conv);
		}
	}
	size_t len = strlen(utf8), keep = utf8_cut(utf8, len, MIME_EMAIL_MAX_TEXT);
	json_t *j = json_pack("{s:o,s:b,s:b}", "value", json_stringn_nocheck(utf8, keep),
	                      "isEncodingProblem", problem, "cut", cut_before || keep < len);
	g_free(utf8);
	return j;
}

static bool type_is(json_t *part, const char *type)
{
	return strcmp(json_string_value(json_object_get(part, "type")), type) == 0;
}

static json_t *part_json(struct walk *w, GMimeObject *obj, GMimeObject *header_src,
                         const char *path, int depth)
{
	json_t *part = json_object();
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *mt = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *st = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	char *type = g_ascii_strdown(mt != NULL && st != NULL ? mt : "text", -1);
	char *sub = g_ascii_strdown(mt != NULL && st != NULL ? st : "plain", -1);
	char *full = g_strdup_printf("%s/%s", type, sub);
	json_t *headers = headers_json(header_src, header_src != obj ? obj : NULL);
	json_object_set_new(part, "partId", json_null());
	json_object_set_new(part, "headers", headers);
	json_object_set_new(part, "type", json_clean_string(full));

	/* charset: the parameter, or us-ascii for text (and no Content-Type). */
	const char *charset = ct != NULL ? g_mime_content_type_get_parameter(ct, "charset") : NULL;
	bool is_text = strcmp(type, "text") == 0;
	json_object_set_new(part, "charset",
	                    charset != NULL ? json_clean_string(charset)
	                    : is_text       ? json_string("us-ascii")
	                                    : json_null());
	GMimeContentDisposition *cd = g_mime_object_get_content_disposition(obj);
	const char *disp = cd != NULL ? g_mime_content_disposition_get_disposition(cd) : NULL;
	char *disp_l = disp != NULL ? g_ascii_strdown(disp, -1) : NULL;
	json_object_set_new(part, "disposition", json_clean_string(disp_l));
	const char *name =
	    cd != NULL ? g_mime_content_disposition_get_parameter(cd, "filename") : NULL;
	if (name == NULL && ct != NULL)
		name = g_mime_content_type_get_parameter(ct, "name");
	json_object_set_new(part, "name", json_clean_string(name));
	json_object_set_new(part, "cid", json_clean_string(g_mime_object_get_content_id(obj)));
	const char *lang = last_header(headers, "Content-Language");
	json_t *langs = json_null();
	if (lang != NULL) {
		char *l = unfold_trim(lang);
		char **tok = g_strsplit(l, ",", 64);
		langs = json_array();
		for (char **t = tok; *t != NULL; t++) {
			g_strstrip(*t);
			if (**t != '\0')
				json_array_append_new(langs, json_clean_string(*t));
		}
		g_strfreev(tok);
		g_free(l);
		if (json_array_size(langs) == 0) {
			json_decref(langs);
			langs = json_null();
		}
	}
	json_object_set_new(part, "language", langs);
	const char *loc = last_header(headers, "Content-Location");
	char *loc_t = loc != NULL ? unfold_trim(loc) : NULL;
	json_object_set_new(part, "location", json_clean_string(loc_t));
	g_free(loc_t);

	if (GMIME_IS_MULTIPART(obj)) {
		json_t *subs = json_array();
		int n = g_mime_multipart_get_count(GMIME_MULTIPART(obj));
		for (int i = 0;
		     i < n && depth < MIME_EMAIL_MAX_DEPTH && w->parts < MIME_EMAIL_MAX_PARTS;
		     i++) {
			GMimeObject *child = g_mime_multipart_get_part(GMIME_MULTIPART(obj), i);
			char *cpath = path[0] != '\0' ? g_strdup_printf("%s.%d", path, i + 1)
			                              : g_strdup_printf("%d", i + 1);
			w->parts++;
			json_array_append_new(subs, part_json(w, child, child, cpath, depth + 1));
			g_free(cpath);
		}
		json_object_set_new(part, "size", json_integer(0));
		json_object_set_new(part, "subParts", subs);
	} else {
		const char *id = path[0] != '\0' ? path : "1";
		json_object_set_new(part, "partId", json_string(id));
		size_t limit = is_text ? MIME_EMAIL_MAX_TEXT * 2 : SIZE_MAX;
		json_int_t size;
		if (is_text) {
			GByteArray *bytes = leaf_bytes(obj, SIZE_MAX);
			size = (json_int_t)bytes->len;
			bool cut = bytes->len > limit;
			if (cut)
				g_byte_array_set_size(bytes, (guint)limit);
			json_object_set_new(w->body_values, id, text_value(bytes, charset, cut));
			g_byte_array_unref(bytes);
		} else {
			size = (json_int_t)leaf_size(obj);
		}
		json_object_set_new(part, "size", json_integer(size));
	}
	g_free(disp_l);
	g_free(full);
	g_free(sub);
	g_free(type);
	return part;
}

/* --- RFC 8621 4.1.4 ------------------------------------------------------------ */

static bool inline_media(const char *type)
{
	return strncmp(type, "image/", 6) == 0 || strncmp(type, "audio/", 6) == 0 ||
	       strncmp(type, "video/", 6) == 0;
}

static void add_id(json_t *list, json_t *part)
{
	json_array_append(list, json_object_get(part, "partId"));
}

static void parse_structure(json_t *parts, const char *multipart_type, bool in_alternative,
                            json_t *html_body, json_t *text_body, json_t *attachments)
{
	size_t text_len = text_body != NULL ? json_array_size(text_body) : (size_t)-1;
	size_t html_len = html_body != NULL ? json_array_size(html_body) : (size_t)-1;
	size_t i;
	json_t *part;
	json_array_foreach(parts, i, part)
	{
		const char *type = json_string_value(json_object_get(part, "type"));
		const char *disp = json_string_value(json_object_get(part, "disposition"));
		bool is_multipart = strncmp(type, "multipart/", 10) == 0;
		bool has_name = json_is_string(json_object_get(part, "name"));
		bool is_inline = (disp == NULL || strcmp(disp, "attachment") != 0) &&
		                 (strcmp(type, "text/plain") == 0 ||
		                  strcmp(type, "text/html") == 0 || inline_media(type)) &&
		                 (i == 0 || (strcmp(multipart_type, "related") != 0 &&
		                             (inline_media(type) || !has_name)));
		if (is_multipart) {
			const char *sub = type + 10;
			parse_structure(json_object_get(part, "subParts"), sub,
			                in_alternative || strcmp(sub, "alternative") == 0,
			                html_body, text_body, attachments);
		} else if (is_inline) {
			if (strcmp(multipart_type, "alternative") == 0) {
				if (strcmp(type, "text/plain") == 0)
					add_id(text_body, part);
				else if (strcmp(type, "text/html") == 0)
					add_id(html_body, part);
				else
					add_id(attachments, part);
				continue;
			} else if (in_alternative) {
				if (strcmp(type, "text/plain") == 0)
					html_body = NULL;
				if (strcmp(type, "text/html") == 0)
					text_body = NULL;
			}
			if (text_body != NULL)
				add_id(text_body, part);
			if (html_body != NULL)
				add_id(html_body, part);
			if ((text_body == NULL || html_body == NULL) && inline_media(type))
				add_id(attachments, part);
		} else {
			add_id(attachments, part);
		}
	}
	if (strcmp(multipart_type, "alternative") == 0 && text_body != NULL && html_body != NULL) {
		size_t tl = json_array_size(text_body), hl = json_array_size(html_body);
		if (text_len == tl && html_len != hl)
			for (size_t k = html_len; k < hl; k++)
				json_array_append(text_body, json_array_get(html_body, k));
		if (html_len == hl && text_len != tl)
			for (size_t k = text_len; k < tl; k++)
				json_array_append(html_body, json_array_get(text_body, k));
	}
}

/* --- preview --------------------------------------------------------------------- */

/* Text of HTML: tags, comments, style and script dropped, a few entities. */
static char *html_text(const char *html, size_t max)
{
	size_t len = strlen(html);
	if (len > max)
		len = max;
	char *out = g_malloc(len + 1), *o = out;
	const char *p = html, *end = html + len;
	while (p < end) {
		if (*p == '<') {
			const char *skip_to = NULL;
			if (g_ascii_strncasecmp(p, "<style", 6) == 0)
				skip_to = "</style";
			else if (g_ascii_strncasecmp(p, "<script", 7) == 0)
				skip_to = "</script";
			else if (strncmp(p, "<!--", 4) == 0)
				skip_to = "-->";
			if (skip_to != NULL) {
				const char *q = strcasestr(p, skip_to);
				p = q != NULL ? q + strlen(skip_to) : end;
			}
			const char *gt = p < end ? memchr(p, '>', (size_t)(end - p)) : NULL;
			p = gt != NULL ? gt + 1 : end;
			*o++ = ' ';
			continue;
		}
		if (*p == '&') {
			static const char *const ent[][2] = {{"&amp;", "&"},  {"&lt;", "<"},
			                                     {"&gt;", ">"},   {"&quot;", "\""},
			                                     {"&nbsp;", " "}, {"&#39;", "'"}};
			bool done = false;
			for (size_t k = 0; k < sizeof(ent) / sizeof(ent[0]) && !done; k++) {
				size_t el = strlen(ent[k][0]);
				if ((size_t)(end - p) >= el && strncmp(p, ent[k][0], el) == 0) {
					*o++ = ent[k][1][0];
					p += el;
					done = true;
				}
			}
			if (done)
				continue;
		}
		*o++ = *p++;
	}
	*o = '\0';
	return out;
}

/* Collapse white space, at most MIME_EMAIL_PREVIEW_CHARS characters. */
static json_t *preview_of(const char *text)
{
	size_t cap = MIME_EMAIL_PREVIEW_CHARS * 4 + 1, len = 0, chars = 0;
	char *out = g_malloc(cap);
	bool space = false;
	for (const char *p = text; *p != '\0' && chars < MIME_EMAIL_PREVIEW_CHARS;) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = len > 0;
			p++;
			continue;
		}
		if (space) {
			out[len++] = ' ';
			chars++;
			space = false;
			if (chars == MIME_EMAIL_PREVIEW_CHARS)
				break;
		}
		const char *next = g_utf8_next_char(p);
		memcpy(out + len, p, (size_t)(next - p));
		len += (size_t)(next - p);
		p = next;
		chars++;
	}
	out[len] = '\0';
	json_t *j = json_string(out);
	g_free(out);
	return j;
}

static json_t *find_part(json_t *part, const char *id)
{
	const char *pid = json_string_value(json_object_get(part, "partId"));
	if (pid != NULL && strcmp(pid, id) == 0)
		return part;
	size_t i;
	json_t *sub;
	json_array_foreach(json_object_get(part, "subParts"), i, sub)
	{
		json_t *f = find_part(sub, id);
		if (f != NULL)
			return f;
	}
	return NULL;
}

/* Whether an HTML body part refers to the content id (an embedded image,
 * which RFC 8621 4.1.4 lets hasAttachment ignore). */
static bool cid_in_html(json_t *html_ids, json_t *body_values, const char *cid)
{
	if (cid == NULL || cid[0] == '\0')
		return false;
	char *ref = g_strdup_printf("cid:%s", cid);
	bool found = false;
	size_t i;
	json_t *id;
	json_array_foreach(html_ids, i, id)
	{
		json_t *bv = json_object_get(body_values, json_string_value(id));
		const char *text = json_string_value(json_object_get(bv, "value"));
		if (text != NULL && strcasestr(text, ref) != NULL)
			found = true;
	}
	g_free(ref);
	return found;
}

/* --- the message --------------------------------------------------------------- */

static GMimeMessage *parse_message(const void *data, size_t len)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	return msg;
}

int mime_email_parse(const void *data, size_t len, json_t **parsed_r, const char **error_r)
{
	mime_init();
	/* GMime parses any nesting depth without deep recursion (tested to
	 * 100000 levels on a 1 MB stack); the walk below stops at
	 * MIME_EMAIL_MAX_DEPTH. */
	GMimeMessage *msg = parse_message(data, len);
	struct walk w = {0, json_object()};
	json_t *out = json_object(), *structure;
	if (w.body_values == NULL || out == NULL) {
		json_decref(w.body_values);
		json_decref(out);
		*error_r = "out of memory";
		return -1;
	}
	GMimeObject *root = msg != NULL ? g_mime_message_get_mime_part(msg) : NULL;
	if (root != NULL) {
		structure = part_json(&w, root, GMIME_OBJECT(msg), "", 0);
		json_object_set_new(out, "headers",
		                    json_incref(json_object_get(structure, "headers")));
	} else {
		/* Nothing GMime could use: the headers and an empty body. */
		json_t *headers =
		    msg != NULL ? headers_json(GMIME_OBJECT(msg), root) : json_array();
		structure =
		    json_pack("{s:s,s:I,s:O,s:n,s:s,s:s,s:n,s:n,s:n,s:n}", "partId", "1", "size",
		              (json_int_t)0, "headers", headers, "name", "type", "text/plain",
		              "charset", "us-ascii", "disposition", "cid", "language", "location");
		json_object_set_new(out, "headers", headers);
	}
	if (msg != NULL)
		g_object_unref(msg);
	json_t *text = json_array(), *html = json_array(), *att = json_array();
	json_t *roots = json_pack("[O]", structure);
	parse_structure(roots, "mixed", false, html, text, att);
	json_decref(roots);

	/* Preview from the first text part of textBody. */
	json_t *preview = NULL;
	size_t i;
	json_t *id;
	json_array_foreach(text, i, id)
	{
		json_t *part = find_part(structure, json_string_value(id));
		json_t *bv = json_object_get(w.body_values, json_string_value(id));
		if (part == NULL || bv == NULL)
			continue;
		const char *value = json_string_value(json_object_get(bv, "value"));
		if (type_is(part, "text/html")) {
			char *t = html_text(value, 64 * 1024);
			preview = preview_of(t);
			g_free(t);
		} else {
			preview = preview_of(value);
		}
		break;
	}
	bool has_attachment = false;
	json_array_foreach(att, i, id)
	{
		json_t *part = find_part(structure, json_string_value(id));
		const char *disp = json_string_value(json_object_get(part, "disposition"));
		const char *cid = json_string_value(json_object_get(part, "cid"));
		if ((disp == NULL || strcmp(disp, "inline") != 0) &&
		    !(disp == NULL && cid_in_html(html, w.body_values, cid)))
			has_attachment = true;
	}
	json_object_set_new(out, "bodyStructure", structure);
	json_object_set_new(out, "textBody", text);
	json_object_set_new(out, "htmlBody", html);
	json_object_set_new(out, "attachments", att);
	json_object_set_new(out, "bodyValues", w.body_values);
	json_object_set_new(out, "preview", preview != NULL ? preview : json_string(""));
	json_object_set_new(out, "hasAttachment", json_boolean(has_attachment));
	*parsed_r = out;
	return 0;
}

/* Find the GMime object of a leaf by path, numbering as part_json does. */
static GMimeObject *find_object(GMimeObject *obj, const char *path)
{
	if (!GMIME_IS_MULTIPART(obj))
		return strcmp(path, "1") == 0 ? obj : NULL;
	int depth = 0;
	while (GMIME_IS_MULTIPART(obj) && *path != '\0') {
		char *end;
		long k = strtol(path, &end, 10);
		if (k < 1 || (*end != '.' && *end != '\0') || ++depth > MIME_EMAIL_MAX_DEPTH ||
		    k > g_mime_multipart_get_count(GMIME_MULTIPART(obj)))
			return NULL;
		obj = g_mime_multipart_get_part(GMIME_MULTIPART(obj), (int)k - 1);
		path = *end == '.' ? end + 1 : end;
	}
	return *path == '\0' && !GMIME_IS_MULTIPART(obj) ? obj : NULL;
}

int mime_email_part(const void *data, size_t len, const char *part_id, size_t max_len,
                    char **content_r, size_t *len_r, char **type_r, const char **error_r)
{
	mime_init();
	GMimeMessage *msg = parse_message(data, len);
	GMimeObject *root = msg != NULL ? g_mime_message_get_mime_part(msg) : NULL;
	GMimeObject *obj = root != NULL ? find_object(root, part_id) : NULL;
	int r = 0;
	if (obj != NULL) {
		GByteArray *bytes = leaf_bytes(obj, max_len + 1);
		GMimeContentType *ct = g_mime_object_get_content_type(obj);
		char *type = ct != NULL ? g_mime_content_type_get_mime_type(ct) : NULL;
		char *content = bytes->len <= max_len ? malloc(bytes->len + 1) : NULL;
		char *t = strdup(type != NULL ? type : "application/octet-stream");
		if (content == NULL || t == NULL) {
			free(content);
			free(t);
			*error_r = bytes->len > max_len ? "part too large" : "out of memory";
			r = -1;
		} else {
			if (bytes->len > 0)
				memcpy(content, bytes->data, bytes->len);
			content[bytes->len] = '\0';
			for (char *c = t; *c != '\0'; c++)
				*c = g_ascii_tolower(*c);
			*content_r = content;
			*len_r = bytes->len;
			*type_r = t;
			r = 1;
		}
		g_free(type);
		g_byte_array_unref(bytes);
	}
	if (msg != NULL)
		g_object_unref(msg);
	return r;
}

size_t mime_json_weight(const json_t *v)
{
	size_t w = 64;
	if (json_is_string(v)) {
		w += json_string_length(v);
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)v, k, x) w += strlen(k) + 32 + mime_json_weight(x);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x) w += 8 + mime_json_weight(x);
	}
	return w;
}
