#ifndef MK_JMAP_SESSION_H
#define MK_JMAP_SESSION_H

/*
 * The JMAP Session object (RFC 8620 2) of a hub user and the user's JMAP
 * accounts: one per external (hub) account, "A<store account id>", named
 * by the user's login at the account's IMAP host, plus the hub's own
 * notices account (store key "hub:local") named "mailkeep". The primary
 * account is the user's choice kept in the store (meta primary_account),
 * by default the first external account added; the notices account only
 * when there is no external one.
 *
 * The caller holds the user's store (and reads the hub accounts under its
 * own lock first). Error convention: 0 / -1 with *error_r (static text or
 * the store's message).
 */
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;
struct hub_account;

struct jmap_session_account {
	int64_t store_account_id; /* accountId "A<this>" */
	int64_t hub_account_id;   /* 0 for the notices account */
	char name[320];
};

/* The user's JMAP accounts in order (external accounts as the hub lists
 * them, by id, then the notices account) and the index of the primary one.
 * Store accounts missing for a hub account (never synced yet) are made, in
 * their own transaction, so that an account's id never changes. *list_r is
 * malloc()ed. */
int jmap_session_accounts(struct store *store, const struct hub_account *accounts, size_t n,
                          struct jmap_session_account **list_r, size_t *count_r, size_t *primary_r,
                          const char **error_r);

/* The Session's state (also every API response's sessionState): the
 * store's change counter and a hash of the user's accounts and primary
 * choice, so that adding, removing or choosing an account changes it (RFC
 * 8620 2). out: at least 48 bytes. 0, or -1 with *error_r. */
int jmap_session_state(struct store *store, uint64_t modseq, char *out, size_t size,
                       const char **error_r);

/* Limits the session advertises (the server enforces them elsewhere). */
struct jmap_session_limits {
	uint64_t max_size_upload, max_size_request;
	unsigned max_concurrent_upload, max_concurrent_requests, max_calls_in_request;
	unsigned max_objects_in_get, max_objects_in_set;
};

/* The Session object for user_name at public_url (no trailing slash),
 * state = jmap_session_state(). A new reference, or NULL with
 * *error_r. */
json_t *jmap_session_json(struct store *store, const char *user_name, const char *public_url,
                          const char *state, const struct hub_account *accounts, size_t n,
                          const struct jmap_session_limits *limits, const char **error_r);

/* Make the external account hub_account_id (one of accounts) the primary
 * one: 0, or -1 with *error_r ("no such account" when it is not the
 * user's). */
int jmap_session_set_primary(struct store *store, const struct hub_account *accounts, size_t n,
                             int64_t hub_account_id, const char **error_r);

/* Is account_id ("A<n>") one of the user's JMAP accounts (an account of
 * the user's store)? 1 with *store_account_id_r, 0 not, -1. */
int jmap_account_known(struct store *store, const char *account_id, int64_t *store_account_id_r,
                       const char **error_r);
/* May blob_id ("B<row>" or a part "B<row>_...") be read in the account
 * (download, Email/import, Blob/copy)? Yes when its stored bytes are an
 * Email of that account, or an upload of the user (uploads are shared by
 * the user's accounts). 1 yes, 0 no, -1. */
int jmap_blob_visible(struct store *store, int64_t store_account_id, const char *blob_id,
                      const char **error_r);

#endif
