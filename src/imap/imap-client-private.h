#ifndef MK_IMAP_CLIENT_PRIVATE_H
#define MK_IMAP_CLIENT_PRIVATE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "imap-client.h"

/*
 * What the command helpers (imap-commands.c) need from the session beyond
 * the public API. Error convention as imap-client.h.
 */

/* imap_client_run(), and tagged_fn (if not NULL, with ctx) sees the
 * command's own tagged OK, NO or BAD before it is acted on; -1 from it
 * breaks the session. */
int imap_client_run_tagged(struct imap_client *c, imap_untagged_fn *fn, void *ctx,
                           imap_untagged_fn *tagged_fn, const char **error_r);
/* imap_client_wait() with tagged_fn as above. */
int imap_client_wait_tagged(struct imap_client *c, const char *tag, imap_untagged_fn *fn, void *ctx,
                            imap_untagged_fn *tagged_fn, const char **error_r);

/* The server broke the protocol: the session is CLOSED; returns -1 with
 * "<host>: what". */
int imap_client_protocol_error(struct imap_client *c, const char **error_r, const char *what);

/* A command refused before anything was sent (a bad argument, a missing
 * capability): discards the command being built, formats the reason into
 * the client's error buffer and returns IMAP_CMD_FAILED. */
int imap_client_refuse(struct imap_client *c, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *imap_client_host(const struct imap_client *c);
/* The tag of the command built or sent last ("M7"). */
const char *imap_client_tag(const struct imap_client *c);

/* imap_client_has_cap(), and true also for the extensions IMAP4rev2 folds in
 * (UIDPLUS, MOVE, UNSELECT, LITERAL-, BINARY) on a server that offers
 * IMAP4rev2 without IMAP4rev1 (RFC 9051 appendix E). */
bool imap_client_has_ext(const struct imap_client *c, const char *cap);

/* Literals up to this many bytes may be sent non-synchronizing: SIZE_MAX
 * with LITERAL+, 4096 with LITERAL- (RFC 7888), else 0. */
size_t imap_client_nonsync_max(const struct imap_client *c);

/* After a command ending in a literal announcement for len bytes was sent:
 * wait for "+" unless nonsync, then send data and the command's final CRLF.
 * IMAP_CMD_FAILED when the server refused instead of continuing. */
int imap_client_send_message_literal(struct imap_client *c, const char *tag, const void *data,
                                     size_t len, bool nonsync, const char **error_r);

/* For fuzz/fuzz-imap-parser.c: run every response handler of
 * imap-commands.c on resp, as if it answered a command on request. Returns
 * a bit mask of the handlers that rejected it (the session would end), or
 * -1 when a handler accepted something it must not have (an invariant
 * broken: the fuzzer aborts; memory may then leak). */
int imap_commands_check_response(const struct imap_response *resp,
                                 const struct imap_uidset *request);

#endif
