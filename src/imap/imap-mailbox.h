#ifndef MK_IMAP_MAILBOX_H
#define MK_IMAP_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

#include "imap-client.h"

/*
 * Finding mailboxes by purpose on an authenticated session, and finding a
 * message in one by its Message-ID. Used to file the Sent copy of a message
 * submitted by SMTP. Error convention as imap-client.h: 0 ok,
 * IMAP_CMD_FAILED when the server refused a command, -1 when the session
 * broke; *error_r is owned by the client.
 */

/* The Sent folder of the account, as a mail client finds it:
 *   1. the mailbox with the \Sent attribute (RFC 6154 SPECIAL-USE);
 *   2. else, under the personal namespace's prefix (RFC 2342 NAMESPACE, e.g.
 *      "INBOX." on Courier and Cyrus-style servers; "" without NAMESPACE),
 *      an existing mailbox named "Sent", "Sent Items" or "Sent Messages"
 *      (ASCII case-insensitive), then the same names without the prefix;
 *   3. else prefix + "Sent", which does not exist yet (*exists_r false: the
 *      caller CREATEs it).
 * name_r gets the mailbox name as the server spells it (modified UTF-7).
 * Fails with -1 also when the name does not fit in size. */
int imap_mailbox_find_sent(struct imap_client *c, char *name_r, size_t size, bool *exists_r,
                           const char **error_r);

/* Is a message with this Message-ID (e.g. "abc@example.org", with or
 * without the <>: SEARCH HEADER matches a substring of the field) in
 * mailbox? EXAMINEs the mailbox (the session stays in it, read-only) and
 * runs UID SEARCH HEADER Message-ID. The id must be printable ASCII without
 * CR/LF (else IMAP_CMD_FAILED, nothing sent). */
int imap_mailbox_has_message_id(struct imap_client *c, const char *mailbox, const char *message_id,
                                bool *found_r, const char **error_r);

#endif
