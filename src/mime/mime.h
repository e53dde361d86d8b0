#ifndef MK_MIME_H
#define MK_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A summary of one message for the device API, parsed with GMime: the
 * headers clients list (decoded to UTF-8), a plain-text preview and whether
 * it has attachments. Malformed input never fails: what cannot be parsed is
 * left empty. Call mime_init() once per process before the first parse.
 */

#define MIME_MAX_ADDRESSES 32
#define MIME_PREVIEW_CHARS 256

struct mime_address {
	char *name;  /* may be NULL */
	char *email; /* never NULL */
};

struct mime_summary {
	char *subject;                  /* NULL if absent */
	char *message_id;               /* without <>, NULL if absent */
	char *in_reply_to, *references; /* raw header values, NULL if absent */
	int64_t sent_at;                /* Date header, seconds since the epoch; 0 if absent/bad */
	struct mime_address from[MIME_MAX_ADDRESSES], to[MIME_MAX_ADDRESSES],
	    cc[MIME_MAX_ADDRESSES];
	size_t n_from, n_to, n_cc;
	char *preview; /* UTF-8, at most MIME_PREVIEW_CHARS characters, never NULL */
	bool has_attachment;
};

void mime_init(void);
/* Parse data (a whole message). Returns 0 (always, for any input) or -1
 * when out of memory. Free with mime_summary_free(). */
int mime_summarize(const void *data, size_t len, struct mime_summary *summary_r);
void mime_summary_free(struct mime_summary *summary);

/*
 * The searchable text of a message (mime-text.c), all UTF-8, never NULL:
 * the decoded Subject, the From/To/Cc/Bcc lists as text (names and
 * addresses), and body: the decoded text/plain parts, the text of
 * text/html parts (tags dropped; an HTML part with a text/plain sibling in
 * multipart/alternative is skipped) and attachment file names, at most
 * max_body bytes (plus a replacement character where a cut split one).
 * At most MIME_TEXT_MAX_PARTS parts are looked at. Returns 0 (for any
 * input) or -1 when out of memory. Free with mime_text_free().
 */
#define MIME_TEXT_MAX_PARTS 256

struct mime_text {
	char *subject, *from, *to, *cc, *bcc, *body;
};

int mime_text_extract(const void *data, size_t len, size_t max_body, struct mime_text *text_r);
void mime_text_free(struct mime_text *text);

#endif
