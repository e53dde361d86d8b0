#ifndef MK_IMAP_CLIENT_H
#define MK_IMAP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap-parser.h"
#include "../lib/buf.h"

/*
 * An IMAP client session on top of conn (TLS, DEFLATE) and the sans-I/O
 * response parser. Blocking, one session per account sync.
 *
 * Session states and transitions:
 *
 *   connect() --greeting OK--> NOT_AUTHENTICATED --login()--> AUTHENTICATED
 *       |  (imap:// : STARTTLS first; capabilities read again after TLS)
 *       '--greeting PREAUTH is refused (it would skip TLS negotiation)
 *   any state --BYE / I/O error / protocol error--> CLOSED (every call fails)
 *
 * Error convention: 0 ok; IMAP_CMD_FAILED (-2) when the server answered NO
 * or BAD (the session goes on); -1 when the session is broken (I/O, TLS,
 * protocol error, BYE): the client is then CLOSED. *error_r is owned by the
 * client and valid until its next call. Error texts never contain secrets.
 */

#define IMAP_CMD_FAILED (-2)

enum imap_security {
	IMAP_SECURITY_TLS,      /* imaps:// implicit TLS */
	IMAP_SECURITY_STARTTLS, /* imap:// upgraded with STARTTLS; refused if not offered */
};

enum imap_compress_mode {
	IMAP_COMPRESS_AUTO, /* when offered, unless the server is on loopback */
	IMAP_COMPRESS_YES,  /* when offered */
	IMAP_COMPRESS_NO,
};

struct imap_client_settings {
	const char *host;
	const char *port;
	enum imap_security security;
	const char *ca_file; /* extra trust anchors, or NULL */
	int timeout_ms;
	enum imap_compress_mode compress;
};

/* Called for a literal too large to keep in memory (a message body). begin()
 * sees the response so far (e.g. "* 5 FETCH (UID 9 BODY[]"); data() gets the
 * bytes in order; end() follows the last byte. Returning -1 from any of them
 * breaks the session with that error. */
struct imap_literal_sink {
	int (*begin)(void *ctx, const struct imap_response *partial, uint64_t size,
	             const char **error_r);
	int (*data)(void *ctx, const void *data, size_t len, const char **error_r);
	int (*end)(void *ctx, const char **error_r);
	void *ctx;
};

/* Handler of untagged responses during a command. Returns 0, or -1 to
 * break the session with *error_r. */
typedef int imap_untagged_fn(void *ctx, const struct imap_response *resp, const char **error_r);

struct imap_client;

int imap_client_connect(const struct imap_client_settings *set, struct imap_client **client_r,
                        const char **error_r);
void imap_client_free(struct imap_client **client);

/* Authenticate: AUTHENTICATE PLAIN (with SASL-IR when offered) or LOGIN.
 * Refused unless the connection is encrypted. password is wiped from our
 * buffers after use; the caller owns and wipes its own copy. Afterwards
 * capabilities are refreshed and COMPRESS=DEFLATE is started per settings.
 * Returns 0; IMAP_LOGIN_TEMPORARY when the server refused for a temporary
 * reason (RFC 5530 [UNAVAILABLE], [INUSE], [LIMIT], [SERVERBUG]: try again
 * later with the same credentials); -1 for any other failure (a refusal
 * such as [AUTHENTICATIONFAILED] or [AUTHORIZATIONFAILED], or a broken
 * session). After a refusal the session stays NOT_AUTHENTICATED. */
#define IMAP_LOGIN_TEMPORARY (-3)
int imap_client_login(struct imap_client *c, const char *user, const char *password,
                      const char **error_r);

/* The SASL mechanism or command the last login used: "PLAIN", "LOGIN";
 * NULL before any login attempt. */
const char *imap_client_auth_mechanism(const struct imap_client *c);

/* The response code of the last command the server refused with NO or BAD
 * ("TRYCREATE", "UNAVAILABLE", ...; printable ASCII), or "" when that
 * refusal had none. Valid until the next call on the client. */
const char *imap_client_last_code(const struct imap_client *c);

/* The response code of the last command's tagged OK with its atom
 * arguments as text ("APPENDUID 38505 3955", "COPYUID 7 1:3 10:12"), or ""
 * when it had none. Valid until the next call on the client. */
const char *imap_client_ok_code(const struct imap_client *c);

/* Capability check (case-insensitive, exact name such as "QRESYNC"). */
bool imap_client_has_cap(const struct imap_client *c, const char *cap);
bool imap_client_is_compressed(const struct imap_client *c);
/* False once the session is CLOSED (after an I/O or protocol error or BYE). */
bool imap_client_is_open(const struct imap_client *c);

/* Begin a command: resets and returns the client's command buffer with the
 * tag and name written (see imap-cmd.h for adding arguments). */
struct buf *imap_client_cmd(struct imap_client *c, const char *name, const char **error_r);
/* Send the command built in the buffer (imap_cmd_end() is called here) and
 * return its tag (owned by the client, valid until the next send). Does not
 * wait for the answer: several commands may be sent before reading
 * (pipelining). */
int imap_client_send(struct imap_client *c, const char **tag_r, const char **error_r);
/* Read responses, passing untagged ones to fn (may be NULL), until the
 * tagged completion of tag. Tagged completions of other pipelined commands
 * seen on the way are an error unless they are OK; OKs are remembered (the
 * last 16), so waiting later for a command that already finished returns at
 * once: pipelined commands may complete out of order. */
int imap_client_wait(struct imap_client *c, const char *tag, imap_untagged_fn *fn, void *ctx,
                     const char **error_r);
/* Send the command in the buffer and wait for it. */
int imap_client_run(struct imap_client *c, imap_untagged_fn *fn, void *ctx, const char **error_r);

void imap_client_set_literal_sink(struct imap_client *c, const struct imap_literal_sink *sink);

/* Bytes received (wire, after TLS; data, after inflate). */
void imap_client_stats(const struct imap_client *c, unsigned long long *wire_r,
                       unsigned long long *data_r);

/* APPEND data (a whole message, exact bytes) to mailbox with flags (a
 * parenthesised list such as "(\\Seen)", or NULL), sent as a literal
 * (non-synchronizing when the server offers LITERAL+). Returns 0,
 * IMAP_CMD_FAILED when the server refused (NO/BAD), -1 when the session
 * broke. */
int imap_client_append(struct imap_client *c, const char *mailbox, const char *flags,
                       const void *data, size_t len, const char **error_r);

/* Send LOGOUT (best effort) before freeing. */
void imap_client_logout(struct imap_client *c);

#endif
