#ifndef MK_IMAP_CMD_H
#define MK_IMAP_CMD_H

#include <stddef.h>
#include <stdint.h>
#include "../lib/buf.h"

/*
 * Builds IMAP commands into a bounded buffer, refusing anything that could
 * inject protocol: CR, LF and NUL are never accepted in any part; atoms are
 * checked against the atom grammar; strings are quoted with escapes.
 *
 * Usage:
 *   imap_cmd_begin(b, "A7", "UID FETCH");
 *   imap_cmd_seqset(b, "1:*");
 *   imap_cmd_raw(b, "(UID FLAGS BODY.PEEK[])");
 *   imap_cmd_end(b);                 -> "A7 UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n"
 *
 * Every function returns 0, or -1 with *error_r set to a static reason; on
 * error the command in the buffer is incomplete and must be discarded
 * (buf_reset()). Arguments after the first are separated by one space,
 * added automatically.
 */

/* Start a command: tag and command name (e.g. "UID FETCH"; letters, digits,
 * '.', '-' and single spaces between words). Resets the buffer. */
int imap_cmd_begin(struct buf *b, const char *tag, const char *name, const char **error_r);
/* An atom (RFC 9051 atom-char; '\' allowed at the start for flags). */
int imap_cmd_atom(struct buf *b, const char *atom, const char **error_r);
/* A string argument: quoted with \\ and \" escapes. 8-bit bytes are refused
 * (callers send those as literals, which we do not need yet). */
int imap_cmd_quoted(struct buf *b, const char *s, const char **error_r);
/* An astring: as an atom when it is one, otherwise quoted. */
int imap_cmd_astring(struct buf *b, const char *s, const char **error_r);
/* A number. */
int imap_cmd_number(struct buf *b, uint64_t n, const char **error_r);
/* A sequence set: digits, ':', ',', '*' only. */
int imap_cmd_seqset(struct buf *b, const char *set, const char **error_r);
/* Trusted, fixed syntax written by our own code (e.g. a FETCH item list);
 * still refuses CR, LF, NUL and 8-bit bytes. */
int imap_cmd_raw(struct buf *b, const char *s, const char **error_r);
/* A literal holding s: " {n}" CRLF s, or " {n+}" CRLF s (RFC 7888
 * non-synchronizing) when strlen(s) <= nonsync_max. For names and search
 * strings only: s must not hold CR or LF (it can hold 8-bit bytes). Every
 * CRLF in a command before its end is such a literal's announcement: the
 * client sends the command in parts, waiting for the server's "+" after
 * each synchronizing one. */
int imap_cmd_literal(struct buf *b, const char *s, size_t nonsync_max, const char **error_r);
/* An astring that can carry anything but CR/LF: an atom when it is one,
 * quoted when it is 7-bit, else a literal (as above). For mailbox names and
 * search values. */
int imap_cmd_astring_lit(struct buf *b, const char *s, size_t nonsync_max, const char **error_r);
/* A flag list such as "(\\Seen $label)": "(" flags separated by single
 * spaces ")", each a system flag ("\\" atom) or a keyword (atom); "()" is
 * allowed. Anything else is refused. */
int imap_cmd_flag_list(struct buf *b, const char *list, const char **error_r);
/* Terminate with CRLF. */
int imap_cmd_end(struct buf *b, const char **error_r);

#endif
