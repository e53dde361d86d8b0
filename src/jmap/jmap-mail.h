#ifndef MK_JMAP_MAIL_H
#define MK_JMAP_MAIL_H

#include "jmap.h"
#include "../store/store.h"

/*
 * RFC 8621 methods over a user's hosted store: Mailbox/get, Email/query,
 * Email/get. The account is read-only through the API for now (the
 * session says isReadOnly): changes arrive from the providers by sync.
 *
 * Ids: Mailbox "M<row id>", Email "E<row id>", blob "B<row id>", thread
 * "T<email row id>" (one thread per email until threading lands).
 * State strings are the store's change counter.
 */

#define JMAP_CAPABILITY_MAIL "urn:ietf:params:jmap:mail"
#define JMAP_MAIL_MAX_OBJECTS_IN_GET 500
#define JMAP_MAIL_MAX_QUERY_LIMIT 1000

/* A sending identity (EmailSubmission, jmap-submission.c): a hub account
 * with an SMTP server; id "I<account_id>". */
struct jmap_identity {
	int64_t account_id;
	const char *email; /* the envelope sender, or NULL: the message's From */
};

/* What a method call works on; the caller owns and locks the store. */
struct jmap_mail_ctx {
	struct store *store;
	const char *account_id;                 /* the hub user name */
	char state[32];                         /* the store's change counter as a string */
	const struct jmap_identity *identities; /* may be NULL (none) */
	size_t n_identities;
};

/* Register the mail capability and methods. */
int jmap_mail_register(struct jmap_registry *registry, const char **error_r);

/* Parse "B<digits>" -> blob row id; false if not a blob id. */
bool jmap_mail_blob_id(const char *id, int64_t *blob_id_r);

#endif
