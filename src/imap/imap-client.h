#ifndef MK_IMAP_CLIENT_H
#define MK_IMAP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap-parser.h"
#include "imap-uidset.h"
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

/* Authenticate with an OAuth 2 access token: AUTHENTICATE OAUTHBEARER
 * (RFC 7628) when offered, else XOAUTH2 (Google, Microsoft), with SASL-IR
 * when offered. Refused unless the connection is encrypted. A server that
 * refuses the token sends an error challenge (base64 JSON with status and
 * scope): it is answered with the dummy response the RFC prescribes and
 * its status and scope end up in *error_r (never the token). Returns as
 * imap_client_login(). The caller owns and wipes token. */
int imap_client_login_oauth(struct imap_client *c, const char *user, const char *token,
                            const char **error_r);

/* The SASL mechanism or command the last login used: "PLAIN", "LOGIN",
 * "OAUTHBEARER", "XOAUTH2";
 * NULL before any login attempt. */
const char *imap_client_auth_mechanism(const struct imap_client *c);

/* The response code of the last command the server refused with NO or BAD
 * ("TRYCREATE", "UNAVAILABLE", ...; printable ASCII), or "" when that
 * refusal had none. Valid until the next call on the client. */
const char *imap_client_last_code(const struct imap_client *c);

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

/* NOOP, waiting at most timeout_ms for its answer (then the session's own
 * timeout again): is a session that sat idle still alive? Untagged
 * responses it brings (EXISTS, EXPUNGE of a selected mailbox) are read and
 * ignored. Returns as imap_client_run(). */
int imap_client_noop(struct imap_client *c, int timeout_ms, const char **error_r);

/* Send LOGOUT (best effort) before freeing. */
void imap_client_logout(struct imap_client *c);

/*
 * Commands for replaying changes to the server (imap-commands.c).
 *
 * Same error convention: 0 ok; IMAP_CMD_FAILED when the server refused
 * (NO/BAD: its response code, e.g. "TRYCREATE", "ALREADYEXISTS",
 * "NONEXISTENT", "CANNOT", "LIMIT", is then imap_client_last_code()) or when
 * the command was refused before sending (a missing capability, an argument
 * that cannot be sent): the session goes on; -1 when the session broke (I/O,
 * BYE, a malformed answer the command depends on): it is CLOSED.
 *
 * Mailbox names are taken as the server spells them (modified UTF-7 unless
 * UTF8=ACCEPT is enabled, which the hub never does: encode a device's UTF-8
 * name with imap_utf7_encode() from imap-utf7.h first) and sent as atoms,
 * quoted strings, or literals when they hold 8-bit bytes, never with CR, LF
 * or NUL (refused before sending). Commands on a UID set are split into several commands
 * when one line would pass IMAP_CLIENT_LINE_MAX; an empty set sends nothing
 * and succeeds. When a later piece fails, the earlier pieces have been done
 * by the server: the outputs then hold what the done pieces returned.
 */

/* Longest command line the client sends for a UID set command (RFC 7162
 * section 4: clients should keep lines under 8192 octets). */
#define IMAP_CLIENT_LINE_MAX 8000

struct imap_select_info {
	uint32_t uidvalidity;   /* never 0 after success */
	uint32_t uidnext;       /* 0 when the server sent none */
	uint32_t exists;        /* messages */
	uint64_t highestmodseq; /* 0 when none (no CONDSTORE, or NOMODSEQ) */
	bool nomodseq;          /* [NOMODSEQ]: the mailbox keeps no modseqs */
	bool readonly;          /* the tagged OK said [READ-ONLY] */
};

/* SELECT (read-write) or EXAMINE mailbox; with condstore and a server that
 * offers CONDSTORE, "(CONDSTORE)" is added so HIGHESTMODSEQ comes back and
 * FETCH/STORE carry modseqs. A server that sends no UIDVALIDITY is refused
 * (IMAP_CMD_FAILED). info_r is set on success only. */
int imap_client_select(struct imap_client *c, const char *mailbox, bool condstore,
                       struct imap_select_info *info_r, const char **error_r);
int imap_client_examine(struct imap_client *c, const char *mailbox, bool condstore,
                        struct imap_select_info *info_r, const char **error_r);

/* Leave the selected mailbox without expunging (CLOSE would expunge):
 * UNSELECT (RFC 3691) when offered, else an EXAMINE of a mailbox name that
 * does not exist, whose NO leaves no mailbox selected (RFC 9051 6.3.2).
 * Needed before DELETE or RENAME of the selected mailbox, which some servers
 * (Dovecot) answer by ending the session. */
int imap_client_unselect(struct imap_client *c, const char **error_r);

/* UID STORE uids op flags on the selected mailbox. op: "+FLAGS.SILENT",
 * "-FLAGS.SILENT", "FLAGS.SILENT" (or without .SILENT; untagged FETCH
 * answers are ignored). flags: a flag list "(\\Seen $label)". With
 * unchangedsince != 0 (RFC 7162 CONDSTORE; IMAP_CMD_FAILED without sending
 * when the server lacks it) messages changed since that modseq are left
 * alone and named in modified_r (cleared first; may be NULL). A MODIFIED
 * code that is malformed or names a UID not stored breaks the session
 * (we could not know what was stored). */
int imap_client_uid_store(struct imap_client *c, const struct imap_uidset *uids, const char *op,
                          const char *flags, uint64_t unchangedsince,
                          struct imap_uidset *modified_r, const char **error_r);

/* The flags of messages, from UID FETCH. */
struct imap_uid_flags {
	uint32_t uid;
	uint64_t modseq; /* 0 unless asked for and the server sent it */
	/* The flags as the server listed them, separated by single spaces
	 * ("\\Seen $label"; "" for none); each one an atom. \\Recent, a
	 * session flag no STORE can change, is left out. Owned by the array. */
	char *flags;
};

/* UID FETCH uids (UID FLAGS [MODSEQ]) on the selected mailbox (MODSEQ only
 * when modseq is true and the server offers CONDSTORE), for reading the
 * server's flags after a MODIFIED answer. *msgs_r (sorted by UID, one per
 * UID, only UIDs of uids: unsolicited FETCHes for others are ignored, and
 * for a UID answered twice the last answer counts) is the caller's to free
 * with imap_uid_flags_free(). UIDs that no longer exist are simply absent. */
int imap_client_uid_fetch_flags(struct imap_client *c, const struct imap_uidset *uids, bool modseq,
                                struct imap_uid_flags **msgs_r, size_t *n_r, const char **error_r);
void imap_uid_flags_free(struct imap_uid_flags **msgs, size_t n);

/* UID COPY / UID MOVE (RFC 6851; IMAP_CMD_FAILED without sending when the
 * server lacks MOVE) uids to mailbox. copyuid_r (overwritten: pass a zeroed
 * or freed struct; free it with imap_copyuid_free() whatever the result)
 * gets the RFC 4315 COPYUID pairs, from the tagged OK or, for MOVE, the
 * untagged OK before the expunges; valid is false unless every piece of the
 * command got a well-formed COPYUID whose source UIDs are ones we sent
 * (then the caller finds the new UIDs itself, e.g. by Message-ID; the same
 * COPYUID said twice is fine, a contradicting second one is not). The
 * EXPUNGE and VANISHED responses of MOVE are read and ignored (sequence
 * numbers are not tracked; the next sync sees the change). A refusal with
 * TRYCREATE means the target does not exist. */
int imap_client_uid_copy(struct imap_client *c, const struct imap_uidset *uids, const char *mailbox,
                         struct imap_copyuid *copyuid_r, const char **error_r);
int imap_client_uid_move(struct imap_client *c, const struct imap_uidset *uids, const char *mailbox,
                         struct imap_copyuid *copyuid_r, const char **error_r);

/* UID EXPUNGE uids (RFC 4315; IMAP_CMD_FAILED without sending when the
 * server lacks UIDPLUS): removes those of uids that have \Deleted. */
int imap_client_uid_expunge(struct imap_client *c, const struct imap_uidset *uids,
                            const char **error_r);
/* EXPUNGE: removes every message with \Deleted in the selected mailbox. */
int imap_client_expunge(struct imap_client *c, const char **error_r);

/* APPEND data (a whole message, exact bytes) to mailbox with flags (a flag
 * list such as "(\\Seen)", or NULL) and internaldate (seconds since the
 * epoch, sent as UTC; 0 for none), sent as a literal (non-synchronizing
 * with LITERAL+, or LITERAL- up to 4096 bytes; a message holding NUL bytes
 * as a literal8, RFC 3516, refused without sending when the server lacks
 * BINARY). *uidvalidity_r and *uid_r get the RFC 4315 APPENDUID (both 0 when the server sent none
 * or a malformed one); either pointer may be NULL. TRYCREATE: the mailbox does not exist. */
int imap_client_append_uid(struct imap_client *c, const char *mailbox, const char *flags,
                           int64_t internaldate, const void *data, size_t len,
                           uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r);
/* imap_client_append_uid() without date and APPENDUID. */
int imap_client_append(struct imap_client *c, const char *mailbox, const char *flags,
                       const void *data, size_t len, const char **error_r);

/* CREATE, RENAME, DELETE, SUBSCRIBE, UNSUBSCRIBE. Refusal codes of note
 * (RFC 5530): ALREADYEXISTS (CREATE, RENAME target), NONEXISTENT, CANNOT,
 * LIMIT, INUSE. */
int imap_client_create(struct imap_client *c, const char *name, const char **error_r);
int imap_client_rename(struct imap_client *c, const char *from, const char *to,
                       const char **error_r);
int imap_client_delete(struct imap_client *c, const char *name, const char **error_r);
int imap_client_subscribe(struct imap_client *c, const char *name, const char **error_r);
int imap_client_unsubscribe(struct imap_client *c, const char *name, const char **error_r);

/* Most UIDs one UID SEARCH may return (more breaks the session). */
#define IMAP_CLIENT_SEARCH_MAX (4u * 1024 * 1024)

/* UID SEARCH criteria (fixed text written by our code, such as "DELETED"
 * or "UNDELETED 1:100"; printable ASCII) in the selected mailbox. *uids_r
 * (malloc'd, sorted ascending, no repeats; NULL when *n_r is 0) is the
 * caller's to free. */
int imap_client_uid_search(struct imap_client *c, const char *criteria, uint32_t **uids_r,
                           size_t *n_r, const char **error_r);
/* UID SEARCH HEADER header value (a substring match, RFC 9051 6.4.4): header
 * is a field name atom ("Message-ID"); value any text without CR/LF, sent
 * quoted, or as a literal with CHARSET UTF-8 when it holds 8-bit bytes. */
int imap_client_uid_search_header(struct imap_client *c, const char *header, const char *value,
                                  uint32_t **uids_r, size_t *n_r, const char **error_r);

#endif
