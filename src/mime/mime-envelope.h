#ifndef MK_MIME_ENVELOPE_H
#define MK_MIME_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The envelope of a message: what sorting, filtering and threading need,
 * taken from the header block at the start of the message by a small,
 * bounded parser (no MIME tree is built). Header values are unfolded and
 * RFC 2047-decoded to UTF-8 with GMime's header utilities; only the first
 * occurrence of each field counts. At most MIME_ENVELOPE_HEAD_MAX bytes are
 * looked at; malformed input never fails, it just yields empty fields.
 *
 * hasAttachment is a cheap determination from what was read: true when the
 * top-level part is itself an attachment (Content-Disposition: attachment,
 * or an application/image/audio/video type), or the message is
 * multipart/mixed and either a part header within the bytes read names an
 * attachment (Content-Disposition: attachment, a filename/name parameter, a
 * non-text non-multipart type) or the message is longer than what was read
 * (then the unseen part is assumed to be an attachment).
 */

#define MIME_ENVELOPE_HEAD_MAX (16 * 1024) /* bytes of a message parsed */
#define MIME_ENVELOPE_VALUE_MAX (8 * 1024) /* bytes of one unfolded field */
#define MIME_ENVELOPE_MAX_REFS 64          /* message ids kept from references */
#define MIME_ENVELOPE_MSGID_MAX 998        /* longer message ids are ignored */

struct mime_envelope {
	char *subject;      /* decoded UTF-8; NULL if absent */
	char *base_subject; /* RFC 5256 base subject (UTF-8), never NULL */
	char *from;         /* first From: its name, or its address without one; NULL */
	char *to;           /* first To: likewise; NULL */
	int64_t sent_at;    /* Date: seconds since the epoch; 0 if absent or bad */
	char *message_id;   /* first id of Message-ID, without <>; NULL */
	/* In-Reply-To then References ids (without <>), de-duplicated, at most
	 * MIME_ENVELOPE_MAX_REFS (the first and last of a long References). */
	char *refs[MIME_ENVELOPE_MAX_REFS];
	size_t n_refs;
	bool has_attachment;
};

/* Parse the start of a message (data, len: the bytes available; total: the
 * message's full size). Returns 0, or -1 when out of memory (*env_r is then
 * freed). Free with mime_envelope_free(). Thread-safe. */
int mime_envelope_parse(const void *data, size_t len, uint64_t total, struct mime_envelope *env_r);
void mime_envelope_free(struct mime_envelope *env);

/* The RFC 5256 base subject of a decoded UTF-8 subject; malloc()ed. */
char *mime_base_subject(const char *subject);
/* A sort/compare key for i;unicode-casemap (RFC 5051): case folded and
 * decomposed (NFKD); invalid UTF-8 is repaired first. malloc()ed, NULL only
 * when out of memory. */
char *mime_casemap(const char *text);

/* Does the header block at the start of data have a field named name
 * (case-insensitive) whose unfolded, decoded value contains value
 * (case-insensitive, i;unicode-casemap; NULL or "" = the field exists)?
 * 1 yes, 0 no. Looks at no more than MIME_ENVELOPE_HEAD_MAX bytes. */
int mime_header_match(const void *data, size_t len, const char *name, const char *value);

#endif
