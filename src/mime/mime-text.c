/* The searchable text of a message with GMime (see mime.h, mime_text_*). */
#include "mime.h"

#include <gmime/gmime.h>
#include <stdlib.h>
#include <string.h>

/* A bounded text accumulator: appends stop at max bytes. */
struct text_acc {
	GString *s;
	size_t max;
};

static void acc_add(struct text_acc *a, const char *text, size_t len)
{
	if (a->s->len >= a->max || len == 0)
		return;
	if (a->s->len > 0)
		g_string_append_c(a->s, '\n');
	size_t room = a->max > a->s->len ? a->max - a->s->len : 0;
	g_string_append_len(a->s, text, (gssize)(len < room ? len : room));
}

/* Decode "&amp;" style entities we meet often; others stay as they are
 * (they tokenise to their name, which is harmless). Returns the bytes
 * consumed from p (0 when p is not a known entity). */
static size_t html_entity(const char *p, const char *end, GString *out)
{
	static const struct {
		const char *name;
		const char *text;
	} entities[] = {
	    {"&amp;", "&"},  {"&lt;", "<"},   {"&gt;", ">"},  {"&quot;", "\""},
	    {"&apos;", "'"}, {"&nbsp;", " "}, {"&#39;", "'"},
	};
	for (size_t i = 0; i < sizeof(entities) / sizeof(entities[0]); i++) {
		size_t n = strlen(entities[i].name);
		if ((size_t)(end - p) >= n && g_ascii_strncasecmp(p, entities[i].name, n) == 0) {
			g_string_append(out, entities[i].text);
			return n;
		}
	}
	/* Numeric: &#NNN; or &#xHHH; */
	if (end - p >= 4 && p[1] == '#') {
		const char *q = p + 2;
		bool hex = *q == 'x' || *q == 'X';
		q += hex;
		gunichar c = 0;
		const char *digits = q;
		while (q < end && q - digits < 8 && g_ascii_isxdigit(*q) &&
		       (hex || g_ascii_isdigit(*q))) {
			c = c * (hex ? 16 : 10) + (gunichar)g_ascii_xdigit_value(*q);
			q++;
		}
		if (q < end && *q == ';' && q > digits && g_unichar_validate(c) && c != 0) {
			g_string_append_unichar(out, c);
			return (size_t)(q + 1 - p);
		}
	}
	return 0;
}

/* HTML to text: tags dropped (each becomes a space), the content of
 * script and style dropped, common entities decoded. Not a full HTML
 * parser; it only has to give the tokenizer the words a reader sees. */
static GString *html_to_text(const char *html, size_t len)
{
	GString *out = g_string_sized_new(len / 2 + 1);
	const char *p = html, *end = html + len;
	while (p < end) {
		if (*p == '<') {
			bool skip_content =
			    end - p > 7 && (g_ascii_strncasecmp(p, "<script", 7) == 0 ||
			                    g_ascii_strncasecmp(p, "<style", 6) == 0);
			const char *close = memchr(p, '>', (size_t)(end - p));
			if (close == NULL)
				break;
			if (skip_content) {
				const char *tag = g_ascii_strncasecmp(p, "<script", 7) == 0
				                      ? "</script"
				                      : "</style";
				const char *q = close + 1;
				size_t tl = strlen(tag);
				while (q + tl <= end && g_ascii_strncasecmp(q, tag, tl) != 0)
					q++;
				if (q + tl > end)
					break;
				close = memchr(q, '>', (size_t)(end - q));
				if (close == NULL)
					break;
			}
			g_string_append_c(out, ' ');
			p = close + 1;
		} else if (*p == '&') {
			size_t n = html_entity(p, end, out);
			if (n == 0)
				g_string_append_c(out, *p++);
			else
				p += n;
		} else {
			g_string_append_c(out, *p++);
		}
	}
	return out;
}

/* The decoded content of a part as UTF-8 (NULL if it has none). At most
 * max bytes are kept. */
static char *part_text(GMimeObject *part, size_t max)
{
	GMimeDataWrapper *content = g_mime_part_get_content(GMIME_PART(part));
	if (content == NULL)
		return NULL;
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *filtered = g_mime_stream_filter_new(mem);
	const char *charset = g_mime_object_get_content_type_parameter(part, "charset");
	if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0 &&
	    g_ascii_strcasecmp(charset, "us-ascii") != 0) {
		GMimeFilter *f = g_mime_filter_charset_new(charset, "utf-8");
		if (f != NULL) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
			g_object_unref(f);
		}
	}
	g_mime_data_wrapper_write_to_stream(content, filtered);
	g_mime_stream_flush(filtered);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	size_t n = bytes->len < max ? bytes->len : max;
	char *text = g_utf8_make_valid((const char *)bytes->data, (gssize)n);
	g_object_unref(filtered);
	g_object_unref(mem);
	return text;
}

/* True when part is text/html inside a multipart/alternative that also has
 * a text/plain part: the plain one carries the same words. */
static bool html_has_plain_sibling(GMimeObject *parent)
{
	if (parent == NULL || !GMIME_IS_MULTIPART(parent))
		return false;
	GMimeContentType *pct = g_mime_object_get_content_type(parent);
	if (pct == NULL || !g_mime_content_type_is_type(pct, "multipart", "alternative"))
		return false;
	GMimeMultipart *mp = GMIME_MULTIPART(parent);
	int n = g_mime_multipart_get_count(mp);
	for (int i = 0; i < n && i < 64; i++) {
		GMimeContentType *ct =
		    g_mime_object_get_content_type(g_mime_multipart_get_part(mp, i));
		if (ct != NULL && g_mime_content_type_is_type(ct, "text", "plain"))
			return true;
	}
	return false;
}

struct walk {
	struct text_acc body;
	GString *names;
	unsigned parts;
};

static void walk_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct walk *w = data;
	if (!GMIME_IS_PART(part) || ++w->parts > MIME_TEXT_MAX_PARTS)
		return;
	const char *filename = g_mime_part_get_filename(GMIME_PART(part));
	if (filename != NULL && w->names->len < 4096) {
		g_string_append_c(w->names, '\n');
		g_string_append_len(w->names, filename, (gssize)strnlen(filename, 1024));
	}
	if (g_mime_part_is_attachment(GMIME_PART(part)) || w->body.s->len >= w->body.max)
		return;
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	bool plain = ct != NULL && g_mime_content_type_is_type(ct, "text", "plain");
	bool html = ct != NULL && g_mime_content_type_is_type(ct, "text", "html");
	if (!plain && !(html && !html_has_plain_sibling(parent)))
		return;
	/* HTML shrinks when its tags go: read a bit more of it. */
	size_t room = w->body.max - w->body.s->len;
	char *text = part_text(part, html ? room * 4 : room);
	if (text == NULL)
		return;
	if (html) {
		GString *t = html_to_text(text, strlen(text));
		acc_add(&w->body, t->str, t->len);
		g_string_free(t, TRUE);
	} else {
		acc_add(&w->body, text, strlen(text));
	}
	g_free(text);
}

static char *address_text(InternetAddressList *list)
{
	if (list == NULL || internet_address_list_length(list) == 0)
		return strdup("");
	char *s = internet_address_list_to_string(list, NULL, FALSE);
	char *out = strdup(s != NULL ? s : "");
	g_free(s);
	return out;
}

static char *valid_dup(const char *s, size_t max)
{
	if (s == NULL)
		return strdup("");
	size_t n = strnlen(s, max);
	char *v = g_utf8_make_valid(s, (gssize)n);
	char *out = strdup(v != NULL ? v : "");
	g_free(v);
	return out;
}

int mime_text_extract(const void *data, size_t len, size_t max_body, struct mime_text *text_r)
{
	struct mime_text t = {0};
	mime_init();
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	struct walk w = {{g_string_new(NULL), max_body}, g_string_new(NULL), 0};
	if (msg != NULL) {
		t.subject = valid_dup(g_mime_message_get_subject(msg), 4096);
		t.from = address_text(g_mime_message_get_from(msg));
		t.to = address_text(g_mime_message_get_to(msg));
		t.cc = address_text(g_mime_message_get_cc(msg));
		t.bcc = address_text(g_mime_message_get_bcc(msg));
		g_mime_message_foreach(msg, walk_part, &w);
		g_object_unref(msg);
	}
	/* File names count as body text, within the same bound. */
	if (w.names->len > 0)
		acc_add(&w.body, w.names->str + 1, w.names->len - 1);
	t.body = valid_dup(w.body.s->str, max_body);
	g_string_free(w.body.s, TRUE);
	g_string_free(w.names, TRUE);
	if (t.subject == NULL)
		t.subject = strdup("");
	if (t.from == NULL)
		t.from = strdup("");
	if (t.to == NULL)
		t.to = strdup("");
	if (t.cc == NULL)
		t.cc = strdup("");
	if (t.bcc == NULL)
		t.bcc = strdup("");
	if (t.subject == NULL || t.from == NULL || t.to == NULL || t.cc == NULL || t.bcc == NULL ||
	    t.body == NULL) {
		mime_text_free(&t);
		return -1;
	}
	*text_r = t;
	return 0;
}

void mime_text_free(struct mime_text *text)
{
	free(text->subject);
	free(text->from);
	free(text->to);
	free(text->cc);
	free(text->bcc);
	free(text->body);
	memset(text, 0, sizeof(*text));
}
