#ifndef MK_STORE_IDENTITY_H
#define MK_STORE_IDENTITY_H

#include <stdint.h>

#include "store.h"

/*
 * What a user set on the JMAP Identity of one of their hub accounts
 * (RFC 8621 6: name, replyTo, bcc, textSignature, htmlSignature), kept in
 * the user's store (table "identities", created by store_open). The
 * identities themselves come from the hub's account list; a row here only
 * holds the settable properties of the identity "I<account_id>". The
 * display name is the one the hub puts in From when it builds or submits
 * mail for that identity.
 *
 * seq is the identities' own change counter (JMAP Identity state): every
 * store_identity_put() gives the row a value above every other row's.
 *
 * store_identity_put() writes one row; call it inside store_begin() /
 * store_commit() to make several atomic (Identity/set). Errors: -1 with
 * *error_r owned by the store.
 */

struct store_identity {
	int64_t account_id;
	char *name;           /* "" when never set */
	char *reply_to, *bcc; /* JSON text of an EmailAddress list, or NULL */
	char *text_signature, *html_signature;
	int64_t seq;
};

/* 1 with *identity_r filled (free with store_identity_free()), 0 when
 * nothing was ever set (*identity_r untouched), -1 error. */
int store_identity_get(struct store *s, int64_t account_id, struct store_identity *identity_r,
                       const char **error_r);
/* Replace the row of identity->account_id (its seq is ignored); the new
 * seq into *seq_r. NULL strings are stored as "" (name, signatures) or
 * NULL (reply_to, bcc). */
int store_identity_put(struct store *s, const struct store_identity *identity, int64_t *seq_r,
                       const char **error_r);
/* The highest seq of any row (0 if none). */
int store_identity_seq(struct store *s, int64_t *seq_r, const char **error_r);
/* Delete what was set for the account's identity (inside the caller's
 * transaction: account removal). Returns 0 or -1. */
int store_identity_remove(struct store *s, int64_t account_id, const char **error_r);
void store_identity_free(struct store_identity *identity);

#endif
