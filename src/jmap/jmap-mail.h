#ifndef MK_JMAP_MAIL_H
#define MK_JMAP_MAIL_H

#include "jmap.h"
#include "../store/store.h"

struct hub_account;

/*
 * RFC 8621 methods over a user's hosted store: Mailbox/get, Email/query,
 * Email/get and Email/parse (jmap-email.h); Email/query and the Thread
 * methods in jmap-query.c, jmap-thread.c; Email/set, Email/import,
 * Mailbox/set and Identity/get, /changes, /set in jmap-email-set.c,
 * jmap-mailbox-set.c, jmap-identity.c (see jmap-set-private.h). Every list
 * argument from the client (ids, properties, ...) is read with
 * jmap_arg_strings() (jmap-private.h): a non-string entry is
 * invalidArguments, a /set destroy entry that is no string is answered in
 * notDestroyed. Changes made through the API
 * stay in the hosted mailbox, recorded for the two-way sync (store.h,
 * store-local).
 *
 * Ids: Mailbox "M<row id>", Email "E<row id>", blob "B<row id>", thread
 * "T<thread id>" (store-envelope.h; queries and threads: jmap-query.h).
 * State strings are the store's change counter.
 */

#define JMAP_CAPABILITY_MAIL "urn:ietf:params:jmap:mail"
#define JMAP_MAIL_MAX_OBJECTS_IN_GET 500
#define JMAP_MAIL_MAX_QUERY_LIMIT 1000

struct mime_cache;

/* What a method call works on; the caller owns and locks the store. */
struct jmap_mail_ctx {
	struct store *store;
	struct mime_cache *cache; /* parsed messages (src/mime/mime-cache.h); may be NULL */
	const char *account_id;   /* the hub user name */
	/* The store account the JMAP account stands for, set by
	 * jmap_check_account(); 0: every account of the user. */
	int64_t store_account_id;
	char state[32];           /* the store's change counter as a string */
	/* The user's hub accounts (identities: Identity/get, EmailSubmission),
	 * read only by the requests that need them: methods call
	 * jmap_mail_accounts() first, which runs load_accounts (if set) once;
	 * it fills the two fields below (owned by the caller). /set methods
	 * update state after they commit. */
	const struct hub_account *hub_accounts;
	size_t n_hub_accounts;
	int (*load_accounts)(struct jmap_mail_ctx *ctx);
	void *loader; /* for load_accounts */
	bool accounts_loaded;
};

/* Make hub_accounts available (see above): 0, or -1 (serverFail). */
int jmap_mail_accounts(struct jmap_mail_ctx *ctx);

/* Register the mail capability and methods. */
int jmap_mail_register(struct jmap_registry *registry, const char **error_r);

/* SearchSnippet/get (jmap-search.c), called by jmap_mail_register(). */
int jmap_search_register(struct jmap_registry *registry, const char **error_r);

/* Parse "B<digits>" -> blob row id; false if not a blob id. */
bool jmap_mail_blob_id(const char *id, int64_t *blob_id_r);

#endif
