#ifndef MK_IMAP_URL_H
#define MK_IMAP_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "imap-client.h"

/*
 * Parse an account URL: imaps://host[:port][/] (implicit TLS, default port
 * 993) or imap://host[:port][/] (STARTTLS required, default 143). An IPv6
 * literal is written in brackets. No user info, path or query is accepted.
 * On success fills host (without brackets) and port (digits) and returns 0;
 * on error returns -1 and leaves the outputs untouched.
 */
int imap_url_parse(const char *url, char *host_r, size_t host_size, char *port_r, size_t port_size,
                   enum imap_security *security_r);

/* Do two account URLs reach the same server? Same host (compared without
 * case and without a trailing '.') and the same port, where imap:// on 143
 * and imaps:// on 993, the two standard ports of one IMAP service, count as
 * the same. False if either does not parse. */
bool imap_url_same_server(const char *a, const char *b);

#endif
