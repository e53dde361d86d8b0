#ifndef MK_SMTP_H
#define MK_SMTP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Message submission (RFC 6409) to an account's own server with libcurl.
 *
 *   submissions://host[:port]  implicit TLS (port 465)
 *   smtp://host[:port]         STARTTLS required (port 587): a server that
 *                              does not offer it is refused, never used in
 *                              clear
 *
 * The certificate chain and host name are always verified (the system's
 * trust store, or ca_file when given). AUTH with the server's best offered
 * mechanism libcurl knows (PLAIN, LOGIN, ...), only over TLS. libcurl sends
 * SIZE= with MAIL FROM when the server announces SIZE, and SMTPUTF8 when an
 * address needs it and the server offers it. Every recipient must be
 * accepted, or nothing is sent.
 *
 * The password is handed to libcurl from the caller's locked memory; libcurl
 * keeps its own heap copy until the handle is cleaned up, which happens
 * before smtp_send() returns. Protocol tracing is captured only for the
 * server's replies (never for what we send), so no trace holds it.
 */

enum smtp_result {
	SMTP_SENT = 0,      /* the server accepted the message (250 after DATA) */
	SMTP_TEMPORARY = 1, /* 4xx, network error, timeout: try again later */
	SMTP_PERMANENT = 2, /* 5xx, TLS or certificate refused, bad URL: do not retry */
};

#define SMTP_REPLY_SIZE 512

struct smtp_settings {
	const char *url;      /* submissions://... or smtp://... */
	const char *ca_file;  /* extra trust anchors (replaces the bundle), or NULL */
	const char *login;    /* NULL: no AUTH */
	const char *password; /* with login */
	const char *bearer;   /* OAuth 2 access token instead of password: SASL
	                         OAUTHBEARER when offered, else XOAUTH2 */
	long timeout_ms;      /* connect and per-phase inactivity; 0: 60 s */
};

/* Is url a submissions:// or smtp:// URL with a host (and optional port)? */
bool smtp_url_valid(const char *url);
/* The host of a valid url (lower-cased) into host_r. */
int smtp_url_host(const char *url, char *host_r, size_t size);

/* A submission session: the settings are copied (libcurl keeps its own
 * copy of the password until smtp_session_free, which wipes nothing it does
 * not own: see the note above), so the caller may wipe its password right
 * after create. Consecutive sends reuse the connection when the server
 * allows. Call curl_global_init() once per process first, before any
 * thread (mailkeep's main() does; nothing below it calls it). */
struct smtp_session;
int smtp_session_create(const struct smtp_settings *set, struct smtp_session **session_r,
                        const char **error_r);
void smtp_session_free(struct smtp_session **session);

/* Connect, say EHLO, start TLS (per the URL) and authenticate with
 * set->login and set->password, then say QUIT: nothing is sent. Returns
 * SMTP_SENT (here: logged in), SMTP_TEMPORARY or SMTP_PERMANENT (as for
 * smtp_session_send) with reply_r: the server's reply or our description of
 * what failed (never the password). Call curl_global_init() first. */
enum smtp_result smtp_check_login(const struct smtp_settings *set, char reply_r[SMTP_REPLY_SIZE]);

/* Send data (exact bytes, CRLF line endings; dot-stuffing is done here)
 * from mail_from to the recipients. reply_r gets the server's last reply
 * or our description of what failed (never the password). */
enum smtp_result smtp_session_send(struct smtp_session *s, const char *mail_from,
                                   const char *const *rcpts, size_t n_rcpts, const void *data,
                                   size_t len, char reply_r[SMTP_REPLY_SIZE]);

#endif
