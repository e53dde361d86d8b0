#ifndef MK_JMAP_EMAIL_H
#define MK_JMAP_EMAIL_H

#include "jmap-mail.h"

/*
 * Email/get and Email/parse (RFC 8621 4.1, 4.2, 4.9) over a user's store,
 * with every Email and EmailBodyPart property, the header:NAME:FORM[:all]
 * forms, body values and the RFC 8621 4.1.4 textBody/htmlBody/attachments
 * algorithm (the MIME work is src/mime/mime-email.c).
 *
 * Blob ids: "B<row>" is a whole stored message; a leaf body part of it is
 * "B<row>_<partId with '.' as '-'>", e.g. "B12_2-1" for part "2.1" of
 * blob 12. Parts of a message/rfc822 part chain on: "B12_3_1" is part "1"
 * of the message in part "3" (at most JMAP_EMAIL_MAX_NESTING links). All
 * are valid JMAP Ids; they download as the part's decoded bytes and the
 * rfc822 ones can be given to Email/parse.
 *
 * Parsed messages are cached in ctx->cache (when not NULL) under
 * "<account>/<sha256 of the stored bytes>/<chain>": per user, and never
 * stale because stored bytes are content-addressed and immutable.
 */

#define JMAP_EMAIL_MAX_NESTING 8
/* Messages are parsed and taken apart in full up to this size; of a larger
 * one only the first JMAP_EMAIL_PARSE_MAX bytes are parsed (its structure
 * and sizes describe that start) and its parts cannot be downloaded. */
#define JMAP_EMAIL_SOURCE_MAX (64u * 1024 * 1024)
#define JMAP_EMAIL_PARSE_MAX JMAP_EMAIL_SOURCE_MAX

/* Register Email/get and Email/parse (the mail capability must exist). */
int jmap_email_register(struct jmap_registry *registry, const char **error_r);

/*
 * The bytes a blob id names in this store, for downloads: a whole message,
 * or a part's decoded content. Returns 1 with *data_r (malloc()ed,
 * *len_r bytes) and *type_r (malloc()ed; "message/rfc822" for a whole
 * message, else the part's media type); 0 when the id names nothing here;
 * -1 with *error_r when larger than max_len or on a store error.
 */
int jmap_email_blob_content(struct store *store, const char *blob_id, size_t max_len, char **data_r,
                            size_t *len_r, char **type_r, const char **error_r);

#endif
