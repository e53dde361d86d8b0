#ifndef MK_STORE_ACCOUNTS_H
#define MK_STORE_ACCOUNTS_H

/*
 * The store's accounts as the device API sees them (store-accounts.c):
 * the list of accounts, the user's choice of primary account (meta
 * "primary_account") and whether a blob belongs to an account. Error convention as in store.h.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_account {
	int64_t id;
	char *key; /* "account:<hub account id>", "hub:local", ... */
};

/* Every account of the store in creation (id) order. Free with
 * store_accounts_free(). */
int store_accounts_list(struct store *s, struct store_account **accounts_r, size_t *count_r,
                        const char **error_r);
void store_accounts_free(struct store_account **accounts, size_t count);
/* The key of an account: 1 with *key_r (malloc()ed), 0 no such account, -1. */
int store_account_key(struct store *s, int64_t account_id, char **key_r, const char **error_r);
/* Find (never create) the account with this key: 1 with *account_id_r, 0, -1. */
int store_account_find(struct store *s, const char *key, int64_t *account_id_r,
                       const char **error_r);

/* The account the user chose as primary: 1 with *account_id_r, 0 when none
 * was chosen, -1. set: inside or outside a transaction; 0 clears it. */
int store_primary_account_get(struct store *s, int64_t *account_id_r, const char **error_r);
int store_primary_account_set(struct store *s, int64_t account_id, const char **error_r);

/* 1 when blob_id is the content of a message in a mailbox of the account,
 * 0 when not, -1. */
int store_blob_in_account(struct store *s, int64_t account_id, int64_t blob_id,
                          const char **error_r);
/* The Email of the account with these bytes (an Email is one content
 * within one account): 1 with *email_id_r, 0 none, -1. */
int store_email_of_blob(struct store *s, int64_t account_id, int64_t blob_id, int64_t *email_id_r,
                        const char **error_r);
/* 1 when blob_id is an upload (RFC 8620 6.1) still kept, 0 when not, -1. */
int store_blob_is_upload(struct store *s, int64_t blob_id, const char **error_r);

#endif
