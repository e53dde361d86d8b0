#ifndef MK_CONN_H
#define MK_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * A client connection: TCP, then optionally TLS (implicit, or started later
 * for STARTTLS), then optionally DEFLATE (RFC 4978 COMPRESS) on top.
 * Blocking I/O with a timeout on every wait (poll), so a silent server ends
 * in a clear error, never a hang.
 *
 * TLS always verifies the certificate chain and the host name (or IP
 * address) given to conn_start_tls(); extra trust comes only from ca_file,
 * added to the system's default trust store. There is no way to turn
 * verification off.
 *
 * Error convention: int 0 ok / -1 error with *error_r set to a message that
 * stays valid until the next call on this conn (owned by the conn).
 */

struct conn;

/* Connect to host:port (any address getaddrinfo gives, tried in order)
 * within timeout_ms. On success *conn_r owns the socket. */
int conn_connect(const char *host, const char *port, int timeout_ms, struct conn **conn_r,
                 const char **error_r);

/* TLS handshake over the connected socket; verifies chain and that the
 * certificate matches host (DNS name or IP literal). ca_file may be NULL.
 * Any bytes already buffered from before the handshake are discarded (a
 * STARTTLS response injection defence): call only right after the server's
 * STARTTLS OK. TLS 1.2 minimum. */
int conn_start_tls(struct conn *c, const char *host, const char *ca_file, const char **error_r);

/* Start raw DEFLATE (RFC 1951, no zlib header) in both directions, as
 * RFC 4978 COMPRESS=DEFLATE requires. Call right after the server's OK. */
int conn_start_deflate(struct conn *c, const char **error_r);

/* Read up to len bytes (after TLS and inflate). Waits at most the timeout.
 * Returns bytes read (>0), 0 on orderly EOF, -1 on error or timeout. */
ssize_t conn_read(struct conn *c, void *buf, size_t len, const char **error_r);

/* Queue len bytes for sending (after deflate and TLS). Data may stay
 * buffered until conn_flush(). */
int conn_write(struct conn *c, const void *buf, size_t len, const char **error_r);
/* Send everything queued (including a DEFLATE sync flush). */
int conn_flush(struct conn *c, const char **error_r);

void conn_set_timeout(struct conn *c, int timeout_ms);

/* What kind of error failed the conn, so the caller can say what to do:
 * TIMEOUT (a wait ran out: the peer said nothing), NOT_TLS (the TLS
 * handshake got a clear-text answer), CERT (the certificate was not
 * verified), OTHER; NONE while the conn has not failed. */
enum conn_failure {
	CONN_FAIL_NONE,
	CONN_FAIL_OTHER,
	CONN_FAIL_TIMEOUT,
	CONN_FAIL_NOT_TLS,
	CONN_FAIL_CERT,
};
enum conn_failure conn_failure(const struct conn *c);
bool conn_is_tls(const struct conn *c);
bool conn_is_compressed(const struct conn *c);
/* True if the peer address is loopback (127.0.0.0/8 or ::1). */
bool conn_peer_is_loopback(const struct conn *c);
/* Bytes received on the wire (before inflate) and after inflate. */
void conn_stats(const struct conn *c, unsigned long long *wire_in, unsigned long long *data_in);

/* Close and free; sets *c to NULL; accepts NULL. Sends TLS close_notify
 * best effort. */
void conn_free(struct conn **c);

#endif
