#ifndef MK_STORE_REPLAY_H
#define MK_STORE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * The store side of the replay of device changes (local_changes) to the
 * providers (src/sync/sync-replay.c). SQL on local_changes and messages
 * only; every write runs inside the caller's transaction.
 *
 * Replay state of a change (columns state, attempts, error):
 *
 *   '' (pending) --mark_sent--> 'sent' --finish--> (row deleted)
 *        |                        |
 *        '--------fail------------'--> 'failed' (kept, with its error,
 *                                       a hub notice to the user)
 *
 * 'sent' is committed before a command that must not run twice (APPEND,
 * COPY, MOVE) goes out: a change found 'sent' after a crash is checked on
 * the server before it is sent again. A change is deleted in the
 * transaction that records the server's answer into the store.
 */

struct store_replay_change {
	int64_t id;
	char kind[24];
	int64_t object_id, mailbox_id, account_id;
	int64_t origin_mailbox_id, origin_uid;
	char *origin_name; /* NULL if none */
	char *detail;      /* NULL if none */
	bool sent;         /* state 'sent': the server may have applied it */
	unsigned attempts;
	bool have_pair; /* pair key recorded with the change (move, destroy) */
	uint64_t pair_size;
	unsigned char pair_hash[32];
};

/* Add the replay-state columns to local_changes if they are missing
 * (stores made before they existed). Outside a transaction. */
int store_replay_schema(struct store *s, const char **error_r);

/* The account's changes not yet replayed nor failed, in order. Caller frees
 * with store_replay_changes_free(). */
int store_replay_pending(struct store *s, int64_t account_id,
                         struct store_replay_change **changes_r, size_t *count_r,
                         const char **error_r);
void store_replay_changes_free(struct store_replay_change **changes, size_t count);

/* Read again what earlier replayed changes may have changed in v[0..n)
 * (origins, state and attempts). */
int store_replay_refresh(struct store *s, struct store_replay_change *v, size_t n,
                         const char **error_r);
/* The stored sync state of a mailbox: 1 found, 0 not (zeros), -1 error. */
int store_replay_mailbox_state(struct store *s, int64_t mailbox_id, uint32_t *uidvalidity_r,
                               uint32_t *uidnext_r, uint64_t *highestmodseq_r,
                               const char **error_r);

/* v[0..n): state 'sent', one more attempt. */
int store_replay_mark_sent(struct store *s, const struct store_replay_change *v, size_t n,
                           const char **error_r);
/* v[0..n) are done: deleted. */
int store_replay_finish(struct store *s, const struct store_replay_change *v, size_t n,
                        const char **error_r);
/* The server refused the change for good: state 'failed' with the error,
 * and with notify a notice in the hub's INBOX (store_local_deliver) that
 * says what was not carried over and why. A failed mailbox-rename gives
 * the mailbox its server name back. */
int store_replay_fail(struct store *s, const struct store_replay_change *c, const char *error,
                      bool notify, const char **error_r);
/* One notice for count further failures of a run (so a run that fails
 * many changes does not fill the INBOX with notices). */
int store_replay_notice_more(struct store *s, int64_t account_id, unsigned count,
                             const char **error_r);

/* A message (membership) made or moved here now has the server UID uid in
 * mailbox_id: its uid becomes uid if it is still in that mailbox with its
 * local uid; the mailbox's stored UIDNEXT moves past uid when uid is the
 * next one the sync would fetch (so the sync does not fetch it again as a
 * new message); later pending changes of the message get (mailbox_id,
 * uid) as their origin. Returns 1 paired, 0 when the row is gone or
 * elsewhere now (only the origins were updated), -1 error. */
int store_replay_pair(struct store *s, int64_t message_id, int64_t mailbox_id, uint32_t uid,
                      const char **error_r);
/* store_replay_pair() for the memberships of v[0..n) (object_id,
 * mailbox_id) whose uids[i] is not 0. 0 / -1. */
int store_replay_pair_many(struct store *s, const struct store_replay_change *v, size_t n,
                           const uint32_t *uids, const char **error_r);
/* The server no longer has the message (a move or copy out of it, an
 * expunge): later pending changes of it get no origin (0, 0). */
int store_replay_forget_origin(struct store *s, int64_t message_id, const char **error_r);
/* A mailbox change was replayed: later pending changes of the mailbox
 * know it by name on the server now. */
int store_replay_mailbox_renamed(struct store *s, int64_t mailbox_id, const char *name,
                                 const char **error_r);
/* A device's mailbox name went to the server as server_name (modified
 * UTF-7): the mailbox takes that spelling, as the sync stores the names
 * of folders it finds, unless the device renamed it again since (its name
 * is no longer device_name). */
int store_replay_mailbox_spelled(struct store *s, int64_t mailbox_id, const char *device_name,
                                 const char *server_name, const char **error_r);
/* A folder created on the server for a mailbox made here: its state
 * starts at (uidvalidity, uidnext) so the sync continues from there. */
int store_replay_mailbox_created(struct store *s, int64_t mailbox_id, uint32_t uidvalidity,
                                 uint32_t uidnext, const char **error_r);

/* A message (membership) as the replay needs it. 1 found, 0 gone, -1. */
struct store_replay_msg {
	int64_t mailbox_id;
	int64_t uid;
	int64_t blob_id;
	uint64_t size;
	unsigned flags;
	char *keywords; /* malloc()ed */
	int64_t internaldate;
};
int store_replay_message(struct store *s, int64_t message_id, struct store_replay_msg *msg_r,
                         const char **error_r);
void store_replay_message_free(struct store_replay_msg *msg);

/* 1 when some message of the mailbox holds server uid (another row than
 * except_id), 0 not, -1 error. */
int store_replay_uid_held(struct store *s, int64_t mailbox_id, uint32_t uid, int64_t except_id,
                          const char **error_r);

/* The name the server knows a mailbox by now (see store_local_mailbox_origin;
 * for a destroyed mailbox its name from the destroy record): 1 found, 0
 * unknown, -1 error. *name_r malloc()ed. */
int store_replay_server_name(struct store *s, int64_t mailbox_id, char **name_r,
                             const char **error_r);

#endif
