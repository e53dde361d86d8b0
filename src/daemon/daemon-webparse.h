#ifndef MK_DAEMON_WEBPARSE_H
#define MK_DAEMON_WEBPARSE_H

/*
 * The small parsers of the web app's requests, on their own so that the
 * fuzzers (fuzz/fuzz-websession.c, fuzz/fuzz-static-headers.c) reach them
 * without a running serve. Pure functions of their arguments.
 */

#include <stdbool.h>
#include <stddef.h>

struct json_t;

/* daemon-websession.c */

/* The mk_session value of a Cookie header ("a=b; mk_session=TOKEN; c=d")
 * into token (size bytes, NUL-terminated): true if it has one of the right
 * length (HUB_WEB_SESSION_TOKEN_LEN). header may be NULL. */
bool daemon_websession_cookie_parse(const char *header, char *token, size_t size);
/* Is given (X-Mailkeep-CSRF, may be NULL) the CSRF token of the session
 * token? Constant time in the token's bytes; false for a token that is not
 * HUB_WEB_SESSION_TOKEN_LEN long. */
bool daemon_websession_csrf_ok(const char *token, const char *given);
/* Is content_type (may be NULL) application/json, with parameters or not? */
bool daemon_websession_json_type(const char *content_type);
/* The body of POST /mailkeep/session: {"username": "...", "password":
 * "..."}. 0 and *json_r (user and password point into it), or -1 when it
 * is not one (*json_r NULL, the password wiped). Free *json_r with
 * daemon_websession_signin_free(). */
int daemon_websession_signin_parse(const unsigned char *body, size_t len, struct json_t **json_r,
                                   const char **user_r, const char **password_r);
/* Wipe the password of a parsed sign-in body and free it (NULL: nothing). */
void daemon_websession_signin_free(struct json_t *json);

/* daemon-static.c */

/* Does an If-None-Match value name etag ("*", a list, weak tags)? */
bool daemon_static_etag_matches(const char *inm, const char *etag);
/* Does an Accept-Encoding value (may be NULL) take gzip (not with q=0)? */
bool daemon_static_accepts_gzip(const char *ae);

#endif
