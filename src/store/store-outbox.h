#ifndef MK_STORE_OUTBOX_H
#define MK_STORE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * The durable outbox in a user's store (table "outbox", created by
 * store_open, no schema version of its own). A message is committed here
 * before any attempt to send it. States:
 *
 *   queued --claim--> sending --server accepted--> sent
 *      ^                 |  '--5xx / refused--> failed --retry--> queued
 *      '--4xx, network---'  (attempts < max; next_attempt = now + backoff)
 *
 * A 'sending' row carries the claiming process id and a lease
 * (next_attempt = claim time + lease); after a crash it is claimed again
 * once its process is gone or the lease ran out. The only window for a
 * duplicate is a crash between the server's final 250 and the commit of
 * 'sent'.
 *
 * The Sent copy of a sent message is work of its own, kept in the same row
 * (sent_copy '' while pending):
 *
 *   sent, copy pending --claim_copy--> filing (lease) --APPEND ok--> "appended"
 *      ^                                  |  '--gave up--> "failed: ..."
 *      '--temporary failure (backoff)-----'
 *
 * 'sent' is committed with the copy pending and due at once (or "provider"
 * when the provider files it itself), so a process killed between the
 * server's 250 and the APPEND leaves work that the next run resumes. A kill
 * after the APPEND but before "appended" is recorded is detected on the
 * next attempt (by Message-ID in the Sent folder), so the copy is not
 * filed twice.
 *
 * Each call below is its own durable transaction (synchronous=FULL); do not
 * call them inside store_begin(). Errors: -1 with *error_r owned by the
 * store.
 */

enum store_outbox_state {
	STORE_OUTBOX_QUEUED,
	STORE_OUTBOX_SENDING,
	STORE_OUTBOX_SENT,
	STORE_OUTBOX_FAILED,
};

#define STORE_OUTBOX_REPLY_SIZE 512

struct store_outbox_item {
	int64_t id;
	int64_t account_id; /* hub account id (the identity "I<id>") */
	int64_t email_id;   /* store message id, or 0 */
	int64_t seq;        /* outbox change counter at its last change */
	char *mail_from;
	char **rcpts;
	size_t n_rcpts;
	char *data; /* message bytes; NULL in listings */
	uint64_t size;
	enum store_outbox_state state;
	unsigned attempts;
	int64_t next_attempt, created, updated;
	char last_reply[STORE_OUTBOX_REPLY_SIZE];
	char sent_copy[64];     /* "" pending, "appended", "provider", "skipped", "failed: ..." */
	unsigned copy_attempts; /* Sent copy attempts claimed so far */
	int64_t copy_next;      /* pending copy: next attempt, or its claim's lease end */
	char copy_error[STORE_OUTBOX_REPLY_SIZE]; /* what the last copy attempt ran into */
};

const char *store_outbox_state_name(enum store_outbox_state state);

/* The outcome of the account's (hub account id) latest send attempt, for
 * ExternalAccount/get: a message queued again after a temporary failure,
 * sent, or failed for good, whichever changed last (a message never tried
 * does not count). 1 with *state_r, the server's reply (or what went wrong)
 * in reply (STORE_OUTBOX_REPLY_SIZE bytes) and *at_r; 0 when none; -1. */
int store_outbox_last_attempt(struct store *s, int64_t account_id, enum store_outbox_state *state_r,
                              char *reply, int64_t *at_r, const char **error_r);

/* Queue a message (state queued, due now); email_id: the store message it
 * was made from (JMAP EmailSubmission), or 0. */
int store_outbox_add(struct store *s, int64_t account_id, int64_t email_id, const char *mail_from,
                     const char *const *rcpts, size_t n_rcpts, const void *data, size_t len,
                     int64_t now, int64_t *id_r, const char **error_r);
/* Claim the next due message (only_id: that one, if due; 0: any) for this
 * process: it becomes 'sending' with attempts + 1 and a lease until
 * now + lease_s. Returns 1 with *item_r (free with store_outbox_item_free),
 * 0 when none is due, -1 on error. */
int store_outbox_claim(struct store *s, int64_t now, int64_t lease_s, int64_t only_id,
                       struct store_outbox_item *item_r, const char **error_r);
/* The earliest next_attempt of a queued or sending message or of a
 * pending Sent copy: 1 with *when_r, 0 when the outbox has nothing to do,
 * -1 on error. */
int store_outbox_next_due(struct store *s, int64_t *when_r, const char **error_r);
/* Record the outcome of an attempt: state, when to try next (queued), the
 * server's reply. */
int store_outbox_finish(struct store *s, int64_t id, enum store_outbox_state state,
                        int64_t next_attempt, const char *reply, int64_t now, const char **error_r);
/* Record that the server accepted the message (state sent, its reply) and,
 * when not NULL, the Sent copy's fate, in one commit. */
int store_outbox_finish_sent(struct store *s, int64_t id, const char *reply, const char *sent_copy,
                             int64_t now, const char **error_r);
/* Claim the next sent message whose Sent copy is pending and due (only_id:
 * that one; 0: any), or whose claiming process is gone: copy_attempts + 1,
 * this process as owner, copy_next = now + lease_s, committed. Returns 1
 * with *item_r (with data; free with store_outbox_item_free), 0 when none
 * is due, -1 on error. */
int store_outbox_claim_copy(struct store *s, int64_t now, int64_t lease_s, int64_t only_id,
                            struct store_outbox_item *item_r, const char **error_r);
/* Record a Sent copy attempt: what (NULL: still pending, due again at
 * next_attempt, with error as the reason; else its final fate such as
 * "appended" or "failed: ..."). Only a pending copy changes. */
int store_outbox_finish_copy(struct store *s, int64_t id, const char *what, int64_t next_attempt,
                             const char *error, const char **error_r);
/* One message (with data when with_data): 1 found, 0 not, -1 error. */
int store_outbox_get(struct store *s, int64_t id, bool with_data, struct store_outbox_item *item_r,
                     const char **error_r);
/* Every message, oldest first, without their bytes. */
int store_outbox_list(struct store *s, struct store_outbox_item **items_r, size_t *count_r,
                      const char **error_r);
/* retry: a failed (or queued) message is due again now with its attempts
 * reset; cancel: a queued or failed message is deleted. Both return 1 when
 * done, 0 when there is no such message in such a state. */
int store_outbox_retry(struct store *s, int64_t id, int64_t now, const char **error_r);
int store_outbox_cancel(struct store *s, int64_t id, const char **error_r);

/* The outbox change counter (JMAP EmailSubmission state). */
int store_outbox_state(struct store *s, int64_t *counter_r, const char **error_r);
/* Ids changed after since: created (created after since), updated (created
 * before, changed after) and destroyed; at most max ids in all, oldest
 * changes first; when cut short *has_more_r is set and *new_state_r is the
 * counter up to which everything was reported. Caller frees the arrays. */
int store_outbox_changes(struct store *s, int64_t since, size_t max, int64_t **created_r,
                         size_t *n_created_r, int64_t **updated_r, size_t *n_updated_r,
                         int64_t **destroyed_r, size_t *n_destroyed_r, int64_t *new_state_r,
                         bool *has_more_r, const char **error_r);
/* Delete a sent or failed message's record (EmailSubmission/destroy): 1
 * done, 0 no such message in such a state, 2 sent but its Sent copy is
 * still to be filed (kept until it is; try again later). */
int store_outbox_destroy(struct store *s, int64_t id, const char **error_r);

/* Account removal: delete every outbox message of the account (whatever
 * its state) and its setting, inside the caller's transaction (unlike the
 * functions above). */
int store_outbox_remove_account(struct store *s, int64_t account_id, unsigned *removed_r,
                                const char **error_r);

void store_outbox_item_free(struct store_outbox_item *item);
void store_outbox_items_free(struct store_outbox_item **items, size_t count);

/* Per-account setting: who files the Sent copy on the provider.
 * "auto" (default: detected from the SMTP host), "append" (we APPEND it),
 * "provider" (the provider files it itself). */
int store_outbox_sent_mode(struct store *s, int64_t account_id, char mode_r[16],
                           const char **error_r);
int store_outbox_set_sent_mode(struct store *s, int64_t account_id, const char *mode,
                               const char **error_r);

#endif
