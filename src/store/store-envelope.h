#ifndef MK_STORE_ENVELOPE_H
#define MK_STORE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/*
 * Envelopes and threads (store-envelope.c).
 *
 * envelopes(blob_id, size, sent_at, subject, base_subject, subject_key,
 *           from_text, from_key, to_text, to_key, message_id, refs,
 *           has_attachment)
 *     what sorting and filtering need, per stored content (a message in
 *     several folders shares its bytes, so its envelope too); *_key are
 *     i;unicode-casemap keys; removed with the blob (trigger).
 * threads(id, created_modseq, modseq, account_id)
 *     id = the id of the Email that started the thread (Email ids are
 *     never reused, so thread ids are not either); modseq moves whenever the
 *     thread's list of emails changes; one store account's Emails.
 * thread_refs(key, thread_id)
 *     key = first 8 bytes of SHA-256(base subject key NUL message id) for
 *     every Message-ID, In-Reply-To and References id of the thread's
 *     messages.
 * emails.thread_id
 *     the Email's thread (messages.thread_id is unused since schema 3).
 *
 * Threading rule (RFC 8621 section 3's suggestion): two messages share a
 * thread when one message id appears in both (Message-ID, In-Reply-To,
 * References) AND their base subjects (RFC 5256, case-folded) are equal.
 * No subject-only threading. A message linking several existing threads
 * merges them into the oldest: the others are destroyed (tombstone kind
 * 'thread') and their emails count as updated.
 */

/* Called by store_open before it prepares its statements: adds the
 * tables, triggers and SQL functions (mk_next_modseq, mk_header_match,
 * mk_ascii_numeric collation). */
int store_envelope_open(struct store *s, const char **error_r);
/* Called by store_open last: for a store written before envelopes existed
 * (messages with thread_id 0), fills in the envelopes and threads of every
 * such message in one transaction, in arrival order, as one change (every
 * one of them counts as updated). A no-op costing one index probe after. */
int store_envelope_catch_up(struct store *s, const char **error_r);
/* Called by store_close before the database closes. */
void store_envelope_close(struct store *s);

/* Called by store_member_add (inside its transaction) after a new Email
 * row was inserted: computes the content's envelope if new and puts the
 * Email in its thread. */
int store_envelope_message_added(struct store *s, int64_t message_id, int64_t blob_id,
                                 const char **error_r);

/* The Emails of a thread within a store account (0: any), oldest first by
 * internal date; *count_r = 0 when the thread does not exist. Caller frees
 * *ids_r. */
int store_thread_emails(struct store *s, int64_t account_id, int64_t thread_id, int64_t **ids_r,
                        size_t *count_r, const char **error_r);

#endif
