#ifndef MK_JMAP_PRIVATE_H
#define MK_JMAP_PRIVATE_H

/*
 * Helpers the JMAP method files share (jmap-util.c): the "X<digits>" ids
 * of this server (M mailbox, E email, B blob, T thread, I identity, S
 * submission), UTCDate, the accountId check and the keywords object.
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

struct jmap_mail_ctx;

/* "X<digits>" with prefix X -> the positive number; false if not one. */
bool jmap_parse_id(const char *id, char prefix, int64_t *id_r);
/* The id string "X<id>" (a new reference). */
json_t *jmap_prefixed(char prefix, int64_t id);
/* RFC 3339 UTCDate of a Unix time, or null. */
json_t *jmap_utc_date(int64_t t);
/* accountId must be the signed-in user: 0, or -1 with invalidArguments
 * (missing) or accountNotFound. */
int jmap_check_account(struct jmap_mail_ctx *ctx, json_t *args, const char **error_type_r);
/* The JMAP keywords object of stored flags and keywords (lower case). */
json_t *jmap_keywords_json(unsigned flags, const char *keywords);
/* An Email's threadId from the store (null if the email is gone). */
json_t *jmap_thread_id(struct jmap_mail_ctx *ctx, int64_t email_id);

#endif
