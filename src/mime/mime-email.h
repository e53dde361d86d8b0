#ifndef MK_MIME_EMAIL_H
#define MK_MIME_EMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * A whole message parsed with GMime into the shape RFC 8621 section 4.1
 * describes, as a JSON tree that the JMAP layer picks properties from:
 *
 *   { "headers":       [{"name", "value"}]            raw form, every header
 *     "bodyStructure": PART
 *     "textBody", "htmlBody", "attachments": [partId]  (RFC 8621 4.1.4)
 *     "bodyValues":    {partId: {"value", "isEncodingProblem", "cut"}}
 *                      every text leaf, decoded to UTF-8; "cut" when the
 *                      value was cut at MIME_EMAIL_MAX_TEXT bytes
 *     "preview":       string, "hasAttachment": bool }
 *   PART = { "partId": string|null, "size": decoded bytes, "headers": [...],
 *            "name", "type", "charset", "disposition", "cid", "language",
 *            "location" (null when absent), "subParts": [PART] (multipart) }
 *
 * Part ids are section paths like IMAP's: "1", "2.1", ...; multiparts have
 * none. A message/rfc822 part is a leaf (its content is a message that
 * can be parsed again). The tree is immutable once built: callers share it
 * across threads and copy what they put into responses.
 *
 * Bounds: MIME nesting beyond MIME_EMAIL_MAX_DEPTH, parts beyond
 * MIME_EMAIL_MAX_PARTS and headers beyond MIME_EMAIL_MAX_HEADERS per part
 * are left out; lists in parsed header forms stop at MIME_EMAIL_MAX_HEADERS
 * items and read the first MIME_EMAIL_MAX_PARSED_HEADER bytes. Malformed input
 * never fails: what cannot be parsed is left empty or null.
 */

#define MIME_EMAIL_MAX_DEPTH 32
#define MIME_EMAIL_MAX_PARTS 1000
#define MIME_EMAIL_MAX_HEADERS 1000
#define MIME_EMAIL_MAX_TEXT (2u * 1024 * 1024) /* bytes of one decoded text value */
#define MIME_EMAIL_PREVIEW_CHARS 256
#define MIME_EMAIL_MAX_PARSED_HEADER (64u * 1024) /* bytes of a header value parsed into a form */

/* The parsed forms of a header value (RFC 8621 4.1.2). */
enum mime_header_form {
	MIME_FORM_RAW,
	MIME_FORM_TEXT,
	MIME_FORM_ADDRESSES,
	MIME_FORM_GROUPED_ADDRESSES,
	MIME_FORM_MESSAGE_IDS,
	MIME_FORM_DATE,
	MIME_FORM_URLS,
};

/* Parse a whole message. Returns 0 with *parsed_r (a new reference) for
 * any input, -1 with *error_r (static text) only when out of memory.
 * Calls mime_init() itself. */
int mime_email_parse(const void *data, size_t len, json_t **parsed_r, const char **error_r);

/* "asText" -> MIME_FORM_TEXT etc. (the suffix after "header:NAME:");
 * false for an unknown form. */
bool mime_header_form_parse(const char *suffix, enum mime_header_form *form_r);
/* Whether RFC 8621 4.1.2 allows this form for this header name
 * (case-insensitive); e.g. asAddresses on Subject is not. */
bool mime_header_form_allowed(const char *name, enum mime_header_form form);
/* The value of a raw header value (as in "headers") in a form: a new
 * reference, json null when it does not parse (never NULL unless out of
 * memory). */
json_t *mime_header_value(const char *raw, enum mime_header_form form);

/*
 * The content of leaf part part_id (a path as in "partId") of a message:
 * transfer encoding removed, charset untouched; for a message/rfc822 part
 * the embedded message's bytes. Returns 1 with *content_r (malloc()ed,
 * NUL-terminated past *len_r), *len_r and *type_r (malloc()ed, the part's
 * media type) set; 0 when there is no such leaf part; -1 with *error_r when
 * the content is larger than max_len or memory runs out.
 */
int mime_email_part(const void *data, size_t len, const char *part_id, size_t max_len,
                    char **content_r, size_t *len_r, char **type_r, const char **error_r);

/* Approximate memory held by a JSON tree (for cache accounting). */
size_t mime_json_weight(const json_t *v);

#endif
