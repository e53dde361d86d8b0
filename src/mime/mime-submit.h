#ifndef MK_MIME_SUBMIT_H
#define MK_MIME_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Preparing a message for submission (RFC 5322 in, RFC 5321 envelope out):
 *
 * - line endings become CRLF (servers refuse bare LF); a NUL byte anywhere,
 *   a header without a body separator or a header line over 998 octets is
 *   refused;
 * - recipients: the explicit ones given (command line, JMAP envelope), or
 *   else every address of the To, Cc and Bcc fields (groups flattened),
 *   de-duplicated case-insensitively;
 * - Bcc fields are removed from the bytes sent (their addresses stay in the
 *   envelope);
 * - Date and Message-ID are added at the top when missing (the Message-ID's
 *   domain is the sender's);
 * - every address must be a plain addr-spec local@domain (UTF-8 allowed,
 *   no CR, LF, NUL, space, '<' or '>'; at most 254 octets), else refused.
 *
 * Nothing here does I/O. Errors: -1 with *error_r pointing to static text
 * (never containing message content).
 */

#define MIME_SUBMIT_MAX_SIZE (32u * 1024 * 1024) /* prepared bytes */
#define MIME_SUBMIT_MAX_RCPTS 100
#define MIME_SUBMIT_MAX_ADDR 254

struct mime_submission {
	char *data; /* the bytes to send (malloc'd, NUL after len), CRLF line endings */
	size_t len;
	char **rcpts; /* malloc'd addr-specs, n_rcpts of them */
	size_t n_rcpts;
	char *from_header; /* the first From address, or NULL */
	bool has_from;     /* the message has a From field */
	bool added_date, added_message_id, removed_bcc;
};

/* Is addr a plain addr-spec we accept in an envelope? */
bool mime_submit_valid_address(const char *addr);

/* Prepare data. rcpts (n_rcpts of them, may be 0) override the header
 * recipients. sender is the envelope sender (for the Message-ID's domain),
 * now the time for a missing Date. On success *sub_r owns everything; free
 * with mime_submission_free(). */
int mime_submit_prepare(const void *data, size_t len, const char *const *rcpts, size_t n_rcpts,
                        const char *sender, int64_t now, struct mime_submission *sub_r,
                        const char **error_r);
void mime_submission_free(struct mime_submission *sub);

#endif
