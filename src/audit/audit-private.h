#ifndef MK_AUDIT_PRIVATE_H
#define MK_AUDIT_PRIVATE_H

/* Inside the audit module: the line format (audit-line.c), shared by the
 * file code (audit.c), the tests and the fuzz target. */

#include "audit/audit.h"

/* Bytes a parsed entry's strings need at most: a value never grows when
 * unescaped, so the line size bounds them all. */
#define AUDIT_PARSE_STORAGE_SIZE AUDIT_MAX_ENTRY_SIZE

/* Length of the hash field at the end of a line: ,"hash":"<64 hex>"} */
#define AUDIT_HASH_FIELD_LEN (9 + AUDIT_HASH_HEX_LEN + 2)

/*
 * Format the entry e (seq, time, event, account, details, prev; e->hash and
 * e->event_name are ignored) as one complete line with its "\n" into
 * line[0..line_size), *len_r bytes, and its hash into hash_r. Checks every
 * rule of the format (bounds, key and account characters, duplicate or
 * secret-like keys, UTF-8) and returns -1 with a static error if one is
 * broken or the line does not fit in min(line_size, AUDIT_MAX_ENTRY_SIZE).
 */
int audit_format_line(const struct audit_entry *e, char *line, size_t line_size, size_t *len_r,
                      char hash_r[AUDIT_HASH_HEX_SIZE], const char **error_r);

/*
 * Strictly parse one line (without its "\n") into *entry_r, whose strings
 * point into storage (AUDIT_PARSE_STORAGE_SIZE bytes). Only the exact
 * canonical form is accepted, so a successful parse formats back to the same
 * bytes. The hash is not checked here. Returns 0, or -1 with a static error.
 */
int audit_parse_line(const char *line, size_t len, struct audit_entry *entry_r, char *storage,
                     size_t storage_size, const char **error_r);

/*
 * Parse line (without "\n") and check that it is canonical and its own hash
 * is right. Returns 0, 1 when it parses but the hash is wrong (the entry was
 * edited), or -1 with a static error when it is malformed.
 */
int audit_check_line(const char *line, size_t len, struct audit_entry *entry_r, char *storage,
                     size_t storage_size, const char **error_r);

/* Format t as "YYYY-MM-DDTHH:MM:SSZ" into out (21 bytes). Returns 0, or -1
 * when the year is outside 0000-9999. */
int audit_format_time(int64_t t, char out[21]);

#endif
