#ifndef MK_MIME_BUILD_H
#define MK_MIME_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Build an RFC 5322 message with GMime from a JMAP Email create object
 * (RFC 8621 4.6): from, sender, to, cc, bcc, replyTo, subject, sentAt,
 * messageId, inReplyTo, references, header:NAME[:asRaw|:asText], and the
 * body from bodyStructure, or textBody/htmlBody with bodyValues plus
 * attachments. Parts given by blobId take their bytes from the caller's
 * blob callback. Properties the caller handles (mailboxIds, keywords,
 * receivedAt) are passed over; anything else, server-set properties and
 * "headers" (RFC 8621: each header is set as its own property) are
 * refused.
 *
 * Untrusted input: every string is checked (no CR, LF or NUL in header
 * text, addresses without controls or spaces, header names as RFC 5322
 * field names, content types as type/subtype tokens), the structure is
 * bounded (MIME_BUILD_MAX_DEPTH, MIME_BUILD_MAX_PARTS, MIME_BUILD_MAX_ADDRESSES)
 * and so is the size (max_size: the attachments' bytes and the result).
 * Call mime_init() (mime.h) once before.
 *
 * The message has CRLF line ends, a Date (sentAt, else now) and a
 * Message-ID (messageId, else a random one under "mailkeep.invalid").
 */

#define MIME_BUILD_MAX_DEPTH 8
#define MIME_BUILD_MAX_PARTS 64
#define MIME_BUILD_MAX_ADDRESSES 100

/* Look up a blob's bytes: 1 found (*data_r malloc()ed, the caller frees
 * it), 0 no such blob, -1 error. */
typedef int mime_build_blob_fn(void *ctx, const char *blob_id, void **data_r, size_t *len_r);

enum mime_build_status {
	MIME_BUILD_OK = 0,
	MIME_BUILD_INVALID,        /* invalidProperties: property names it */
	MIME_BUILD_BLOB_NOT_FOUND, /* blobNotFound: property names the part */
	MIME_BUILD_TOO_LARGE,      /* tooLarge */
	MIME_BUILD_FAILED,         /* out of memory or the blob lookup failed */
};

struct mime_build_error {
	enum mime_build_status status;
	char property[160];      /* JSON path of the offending property, or "" */
	const char *description; /* static text */
};

/* Build the message. now: seconds since the epoch for a missing sentAt.
 * Returns 0 with *data_r (malloc()ed) and *len_r, or -1 with *error_r
 * filled. */
int mime_build_email(json_t *email, mime_build_blob_fn *blob_fn, void *blob_ctx, size_t max_size,
                     int64_t now, char **data_r, size_t *len_r, struct mime_build_error *error_r);

/* Parse an RFC 3339 date-time (UTCDate or Date of RFC 8620 1.4) into
 * seconds since the epoch; false if malformed. */
bool mime_build_parse_date(const char *s, int64_t *time_r);

/* Is s an address the builder accepts in from/to/... (local@domain, no
 * address literal, controls or spaces)? */
bool mime_build_valid_address(const char *s);

/* The header field "From: name <email>\r\n" (name RFC 2047-encoded as
 * needed; no name when NULL or ""), malloc()ed; NULL when email is not a
 * valid address, name has control characters, or out of memory. */
char *mime_build_from_field(const char *name, const char *email);

#endif
