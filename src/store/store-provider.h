#ifndef MK_STORE_PROVIDER_H
#define MK_STORE_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

/*
 * Provider specifics the sync keeps per account (store-provider.c):
 *
 * - Gmail's X-GM-MSGID on each Email (emails.gm_msgid), so a message seen
 *   in a second label folder becomes a membership of the Email the account
 *   holds instead of a second download;
 * - what the server said about itself (accounts.gm_ext: it offers
 *   X-GM-EXT-1, so it files its own Sent copy);
 * - the daily download budget (accounts.dl_budget bytes a day, 0 =
 *   unlimited) with what was used on which UTC day, and the progress of the
 *   first sync (messages held and bytes downloaded against the total the
 *   server's STATUS gives).
 *
 * Added in place to older stores (columns, when missing) by
 * store_provider_schema(), which store_open() runs.
 */

int store_provider_schema(struct store *s, const char **error_r);

/* The account's Email with X-GM-MSGID msgid, as seen from mailbox_id (its
 * account): 1 with its blob, 0 none, -1 error. */
int store_gmail_find(struct store *s, int64_t mailbox_id, uint64_t msgid, int64_t *blob_id_r,
                     const char **error_r);
/* Record msgid on the Email of membership (mailbox_id, uid). */
int store_gmail_set_msgid(struct store *s, int64_t mailbox_id, uint32_t uid, uint64_t msgid,
                          const char **error_r);
/* Record X-GM-THRID on the Email of membership (mailbox_id, uid) and make
 * its thread the one of the account's other Emails of that Gmail thread
 * (merging the two threads into the older, as header threading does). */
int store_gmail_set_thread(struct store *s, int64_t mailbox_id, uint32_t uid, uint64_t thrid,
                           const char **error_r);
/* 1 when (mailbox_id, uid) is held, 0 not, -1 error. */
int store_message_held(struct store *s, int64_t mailbox_id, uint32_t uid, const char **error_r);

/* Plain tier (no CONDSTORE): when the mailbox's flags were last scanned in
 * full and its STATUS MESSAGES and UNSEEN as of the last scan. */
struct store_plain_scan {
	int64_t at; /* 0: never */
	uint32_t messages, unseen;
};
int store_plain_scan_get(struct store *s, int64_t mailbox_id, struct store_plain_scan *scan_r,
                         const char **error_r);
int store_plain_scan_set(struct store *s, int64_t mailbox_id, const struct store_plain_scan *scan,
                         const char **error_r);

struct store_provider_state {
	bool gm_ext;              /* the server offered X-GM-EXT-1 at the last sync */
	int64_t dl_budget;        /* bytes a day, 0 = unlimited, -1 never set */
	int64_t dl_day;           /* UTC day number of dl_used */
	uint64_t dl_used;         /* bytes downloaded that day */
	bool paced;               /* the last sync stopped on the budget */
	uint64_t status_messages; /* sum of STATUS MESSAGES at the last sync */
	uint64_t held_messages;   /* server messages held (memberships) */
	uint64_t bytes_done;      /* bytes downloaded by syncs in all */
};

int store_provider_get(struct store *s, int64_t account_id, struct store_provider_state *st_r,
                       const char **error_r);
/* Write everything but dl_budget (in the open transaction). */
int store_provider_put(struct store *s, int64_t account_id, const struct store_provider_state *st,
                       const char **error_r);
/* Set the budget (bytes a day, 0 = unlimited); -1 marks "not set" (the sync
 * then uses its default for the provider). */
int store_provider_set_budget(struct store *s, int64_t account_id, int64_t budget,
                              const char **error_r);
/* Server memberships of the account (UIDs below 2^32). */
int store_account_server_messages(struct store *s, int64_t account_id, uint64_t *count_r,
                                  const char **error_r);

/* The outcome of the account's last sync attempts, as serve's sync jobs
 * record them (daemon-jobs.c) for ExternalAccount/get: when the last
 * server-to-hub sync succeeded, and the error of the last attempt when it
 * failed (text meant for the user: no secret in it). One small write per
 * attempt. */
#define STORE_ACCOUNT_ERROR_SIZE 1024
struct store_account_status {
	int64_t synced_at;                    /* 0: never */
	int64_t failed_at;                    /* 0: the last attempt did not fail */
	char error[STORE_ACCOUNT_ERROR_SIZE]; /* "" unless failed_at */
};
int store_account_status_get(struct store *s, int64_t account_id, struct store_account_status *st_r,
                             const char **error_r);
/* Record an attempt on the account with key (made if missing), in a
 * transaction of its own: failure NULL: it synced at now (clears the
 * error); else its text (cut to STORE_ACCOUNT_ERROR_SIZE - 1 bytes when
 * read). */
int store_account_status_set(struct store *s, const char *key, int64_t now, const char *failure,
                             const char **error_r);

#endif
