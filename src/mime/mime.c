/* Message summaries with GMime. */
#include "mime.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void mime_do_init(void)
{
	g_mime_init();
}

void mime_init(void)
{
	pthread_once(&mime_once, mime_do_init);
}

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void addresses(InternetAddressList *list, struct mime_address *out, size_t *n)
{
	*n = 0;
	if (list == NULL)
		return;
	int count = internet_address_list_length(list);
	for (int i = 0; i < count && *n < MIME_MAX_ADDRESSES; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (!INTERNET_ADDRESS_IS_MAILBOX(a))
			continue; /* groups: their members are not listed here */
		const char *email = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
		const char *name = internet_address_get_name(a);
		out[*n].email = strdup(email != NULL ? email : "");
		out[*n].name = name != NULL && name[0] != '\0' ? strdup(name) : NULL;
		(*n)++;
	}
}

/* Collapse whitespace and cut to MIME_PREVIEW_CHARS UTF-8 characters. */
static char *make_preview(const char *text)
{
	size_t cap = MIME_PREVIEW_CHARS * 4 + 1, len = 0, chars = 0;
	char *out = malloc(cap);
	if (out == NULL)
		return NULL;
	bool space = false;
	for (const unsigned char *p = (const unsigned char *)text;
	     *p != '\0' && chars < MIME_PREVIEW_CHARS;) {
		if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			space = len > 0;
			p++;
			continue;
		}
		if (space) {
			out[len++] = ' ';
			chars++;
			space = false;
			if (chars == MIME_PREVIEW_CHARS)
				break;
		}
		size_t clen = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : 4;
		for (size_t i = 0; i < clen && p[0] != '\0' && len + 1 < cap; i++)
			out[len++] = (char)*p++;
		chars++;
	}
	out[len] = '\0';
	return out;
}

struct walk {
	char *text;
	bool has_attachment;
};

static void walk_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	struct walk *w = data;
	(void)parent;
	if (!GMIME_IS_PART(part))
		return;
	GMimePart *p = GMIME_PART(part);
	if (g_mime_part_is_attachment(p)) {
		w->has_attachment = true;
		return;
	}
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	if (w->text != NULL || ct == NULL || !g_mime_content_type_is_type(ct, "text", "plain"))
		return;
	GMimeDataWrapper *content = g_mime_part_get_content(p);
	if (content == NULL)
		return;
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *filtered = g_mime_stream_filter_new(mem);
	const char *charset = g_mime_object_get_content_type_parameter(part, "charset");
	if (charset != NULL && g_ascii_strcasecmp(charset, "utf-8") != 0) {
		GMimeFilter *f = g_mime_filter_charset_new(charset, "utf-8");
		if (f != NULL) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered), f);
			g_object_unref(f);
		}
	}
	/* Only the start matters for a preview. */
	g_mime_data_wrapper_write_to_stream(content, filtered);
	g_mime_stream_flush(filtered);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	size_t n = bytes->len < 4096 ? bytes->len : 4096;
	char *text = g_utf8_make_valid((const char *)bytes->data, (gssize)n);
	w->text = text != NULL ? strdup(text) : NULL;
	g_free(text);
	g_object_unref(filtered);
	g_object_unref(mem);
}

int mime_summarize(const void *data, size_t len, struct mime_summary *sum)
{
	memset(sum, 0, sizeof(*sum));
	mime_init();
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	struct walk w = {NULL, false};
	if (msg != NULL) {
		sum->subject = dup_or_null(g_mime_message_get_subject(msg));
		sum->message_id = dup_or_null(g_mime_message_get_message_id(msg));
		GMimeObject *obj = GMIME_OBJECT(msg);
		sum->in_reply_to = dup_or_null(g_mime_object_get_header(obj, "In-Reply-To"));
		sum->references = dup_or_null(g_mime_object_get_header(obj, "References"));
		GDateTime *date = g_mime_message_get_date(msg);
		if (date != NULL)
			sum->sent_at = g_date_time_to_unix(date);
		addresses(g_mime_message_get_from(msg), sum->from, &sum->n_from);
		addresses(g_mime_message_get_to(msg), sum->to, &sum->n_to);
		addresses(g_mime_message_get_cc(msg), sum->cc, &sum->n_cc);
		g_mime_message_foreach(msg, walk_part, &w);
		g_object_unref(msg);
	}
	sum->has_attachment = w.has_attachment;
	sum->preview = make_preview(w.text != NULL ? w.text : "");
	free(w.text);
	return sum->preview != NULL ? 0 : -1;
}

static void free_addresses(struct mime_address *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].name);
		free(a[i].email);
	}
}

void mime_summary_free(struct mime_summary *sum)
{
	free(sum->subject);
	free(sum->message_id);
	free(sum->in_reply_to);
	free(sum->references);
	free(sum->preview);
	free_addresses(sum->from, sum->n_from);
	free_addresses(sum->to, sum->n_to);
	free_addresses(sum->cc, sum->n_cc);
	memset(sum, 0, sizeof(*sum));
}
