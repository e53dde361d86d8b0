#ifndef MK_HTTP_H
#define MK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/*
 * The device-facing HTTP server, on libmicrohttpd. It reads a whole request
 * (headers and a bounded body), hands it to one application handler, and
 * sends back what the handler put into the response: a body, or a stream
 * (text/event-stream push) that the application feeds from any thread.
 *
 * Threading model: one thread per connection (MHD_USE_THREAD_PER_CONNECTION
 * with an internal accept thread), at most max_connections of them; a
 * connection beyond that is accepted and closed at once. The handler runs
 * on the connection's thread, so it may block (SQLite, disk), and it is
 * called on several threads at once: the handler and its ctx must be
 * thread-safe. A stream's connection thread waits in poll() for queued
 * bytes or for the client to hang up; it uses no CPU while idle.
 *
 * TLS: Debian's libmicrohttpd 0.9.75 is built with GnuTLS, so tls_cert_file
 * and tls_key_file (PEM) turn on HTTPS (TLS 1.2 and 1.3 only). If a build of
 * libmicrohttpd lacks TLS, http_server_start() refuses TLS settings with an
 * error saying so; put a TLS-terminating reverse proxy in front instead.
 *
 * Bounds: the request line and headers fit in HTTP_HEADER_MEMORY bytes
 * (libmicrohttpd answers 414/431 beyond); the body is at most
 * max_body_size bytes: a larger Content-Length gets 413 before the handler
 * runs, a chunked body that grows past it ends the connection. Idle
 * connections close after timeout_seconds (streams excepted: they stay open
 * until either side ends them; the application sends its own pings).
 *
 * Hardening against clients that never authenticate:
 *  - admission: the application's admit callback sees each request's
 *    headers before a single body byte is read, and can answer at once
 *    (401, 429); then the body is never read and the connection closes.
 *  - header deadline: a connection must deliver a complete request head
 *    within header_timeout_seconds of being accepted (or of its previous
 *    answer, on a kept-alive connection), however slowly it trickles bytes;
 *    a periodic sweep shuts down those that do not.
 *  - per-address cap: at most max_connections_per_address connections from
 *    one address (IPv6: one /64, see http_address_prefix), the trusted
 *    proxy excepted; more are closed as soon as they are accepted.
 *  - body memory: request bodies held in memory by all connections together
 *    are at most max_buffered_bytes; a request whose Content-Length does not
 *    fit gets 503 with Retry-After (connection closed), a chunked body that
 *    outgrows it ends its connection.
 * So memory is bounded by configuration: max_connections *
 * (HTTP_HEADER_MEMORY + a thread) + max_buffered_bytes, plus what the
 * application's handlers use.
 *
 * Error convention: 0 ok / -1 error with *error_r set to static text or a
 * per-thread buffer valid until the thread's next call into this module;
 * output parameters are untouched on failure. Library code does not log
 * (the access log is the caller's file, written only if given).
 */

#define HTTP_HEADER_MEMORY (32 * 1024)
#define HTTP_MAX_RESPONSE_HEADERS 16
#define HTTP_MAX_HEADER_VALUE 1024 /* bytes of one response header value */
#define HTTP_MAX_AUTH_LABEL 64
#define HTTP_MAX_LOG_PATH 256 /* path bytes written to the access log */

struct http_server;
struct http_response;
struct http_stream;
struct http_request;

/*
 * Admission, called once per request as soon as its headers are in (req has
 * no body yet: body is "" and body_len 0; req->state is NULL), on the
 * connection's thread, possibly on several at once. To refuse, set a status
 * (and body, headers) on resp: that is the answer, the body is never read
 * and the connection closes after it. To let the request go on, leave resp
 * alone; *state_r may be set to anything the handler should get as
 * req->state (e.g. who signed in); the server frees it with the settings'
 * state_free when the request ends.
 */
typedef void http_admit_t(void *ctx, const struct http_request *req, struct http_response *resp,
                          void **state_r);

struct http_settings {
	const char *address; /* numeric IPv4 or IPv6 address to listen on */
	unsigned int port;   /* 0: pick a free port (see http_server_port) */
	/* PEM files; both or neither. Read once at start; the key is held in
	 * locked memory and wiped once GnuTLS has loaded it. */
	const char *tls_cert_file;
	const char *tls_key_file;
	size_t max_body_size;         /* request body bytes, >= 1 */
	unsigned int max_connections; /* concurrent connections, >= 1 */
	unsigned int timeout_seconds; /* idle connection timeout, >= 1 */
	/* One line per request when not NULL, written and flushed under a lock
	 * when the request ends:
	 *   TIME ADDR METHOD PATH STATUS BYTES DURATIONms LABEL
	 * e.g. "2024-05-01T10:00:00Z 127.0.0.1 GET /jmap/api 200 1234 5ms alice/phone".
	 * TIME is UTC; PATH is without its query string, at most
	 * HTTP_MAX_LOG_PATH bytes, bytes outside 0x21-0x7e written as '?';
	 * STATUS is "-" when no response was sent (e.g. the client left);
	 * BYTES counts body bytes handed to the connection; LABEL is what the
	 * handler set with http_response_set_auth_label(), or "-". No header
	 * value (so no Authorization, no token) and no query string is written.
	 * The file stays the caller's; it must outlive the server. */
	FILE *access_log;
	/* Numeric address of a reverse proxy in front, or NULL. For requests
	 * from exactly that address the client's address (remote_addr, the
	 * access log) is the last entry of X-Forwarded-For, which that proxy
	 * appended; a missing or malformed entry leaves the proxy's address.
	 * Requests from any other address never have the header believed. */
	const char *trusted_proxy;
	/* See "Hardening" above. 0 means: header_timeout_seconds =
	 * timeout_seconds, no per-address cap, max_buffered_bytes =
	 * max_connections * max_body_size (no cap beyond the per-request one). */
	unsigned int header_timeout_seconds;
	unsigned int max_connections_per_address;
	size_t max_buffered_bytes;
	/* Optional admission callback (called with the handler's ctx) and the
	 * destructor of the state it hands on (NULL: free()). */
	http_admit_t *admit;
	void (*state_free)(void *state);
};

/* What the handler sees. Every pointer is owned by the server and valid
 * until the handler returns. Strings are NUL-terminated. */
struct http_request {
	const char *method; /* "GET", "POST", ... as sent */
	/* The path as sent (still percent-encoded), without the query string. */
	const char *path;
	const char *query; /* after '?', as sent; "" if none */
	/* Selected request headers; NULL when absent. */
	const char *authorization;
	const char *content_type;
	const char *accept;
	const char *last_event_id;
	/* numeric, e.g. "127.0.0.1"; behind the trusted proxy the address it
	 * forwarded for (see http_settings.trusted_proxy) */
	const char *remote_addr;
	/* The whole body (at most max_body_size bytes), NUL-terminated for
	 * convenience; body_len does not count the NUL. Never NULL. */
	const unsigned char *body;
	size_t body_len;
	/* What the admit callback handed on for this request, or NULL. */
	void *state;
	/* The Content-Length the request announced; -1 when it has none (no
	 * body, or a chunked one: then Transfer-Encoding is set). */
	long long content_length;
	/* The server's own (see http_request_header); do not touch. */
	void *internal;
};

/* The value of any request header (name case-insensitive), or NULL when
 * absent; valid as the request's other strings. For the admit callback and
 * the handler. Of a header sent more than once, the first. */
const char *http_request_header(const struct http_request *req, const char *name);

/*
 * The application's handler: it reads req and fills resp with the setters
 * below. A handler that sets no status sends 500. It must not keep req or
 * resp after it returns. Called on connection threads, possibly at once.
 */
typedef void http_handler_t(void *ctx, const struct http_request *req, struct http_response *resp);

/* The key an address is counted under by per-address limits: an IPv4
 * address itself ("192.0.2.1"), an IPv6 address's /64 ("2001:db8:1:2::/64"),
 * an IPv4-mapped IPv6 address as IPv4. 0 ok; -1 if addr is not a numeric
 * address or out (size bytes) is too small (INET6_ADDRSTRLEN + 3 is enough). */
int http_address_prefix(const char *addr, char *out, size_t size);

/* Start listening. The handler and ctx must stay valid until
 * http_server_stop() returns. */
int http_server_start(const struct http_settings *settings, http_handler_t *handler, void *ctx,
                      struct http_server **server_r, const char **error_r);
/* The port the server listens on (useful with port 0). */
unsigned int http_server_port(const struct http_server *server);
/* Close every open stream, wait for running handlers and connections to
 * finish, close the socket and free the server. Accepts NULL; sets *server
 * to NULL. Streams the application still holds stay valid (closed) until it
 * releases them. */
void http_server_stop(struct http_server **server);
/* Stop accepting connections (the listening socket closes); the open ones
 * are served until http_server_stop(). */
void http_server_quiesce(struct http_server *server);

/* Response setters, for use inside the handler only. */
/* Status 200-999; informational statuses are refused. */
int http_response_set_status(struct http_response *resp, unsigned int status, const char **error_r);
/* The body: a malloc()ed buffer of len bytes whose ownership passes to the
 * server at once, whether the call succeeds or not (on failure it is freed).
 * content_type is copied; CR, LF and NUL in it are refused. Replaces an
 * earlier body. body may be NULL only when len is 0. */
int http_response_set_body(struct http_response *resp, const char *content_type, void *body,
                           size_t len, const char **error_r);
/* A body the server does not own and never copies nor frees: body must stay
 * unchanged until http_server_stop() has returned (e.g. files loaded once at
 * start, or a string constant). content_type is copied, as for set_body.
 * Replaces an earlier body. body may be NULL only when len is 0. */
int http_response_set_body_static(struct http_response *resp, const char *content_type,
                                  const void *body, size_t len, const char **error_r);
/* Copy a body from a buffer the caller keeps. */
int http_response_set_body_copy(struct http_response *resp, const char *content_type,
                                const void *body, size_t len, const char **error_r);
/* Add a header (e.g. WWW-Authenticate, Cache-Control); name and value are
 * copied. Names are HTTP tokens; values at most HTTP_MAX_HEADER_VALUE bytes
 * without CR, LF or NUL; at most HTTP_MAX_RESPONSE_HEADERS; Content-Type,
 * Content-Length, Transfer-Encoding and Connection are refused (the server
 * sets them). */
int http_response_add_header(struct http_response *resp, const char *name, const char *value,
                             const char **error_r);
/* The label written to the access log, e.g. "alice/phone"; copied, at most
 * HTTP_MAX_AUTH_LABEL - 1 bytes, printable ASCII without spaces. It must
 * never be a secret. */
int http_response_set_auth_label(struct http_response *resp, const char *label,
                                 const char **error_r);
/* Answer with a stream instead of a body. The server takes its own
 * reference; the caller keeps its own. content_type is copied (typically
 * "text/event-stream"). Bytes already queued on the stream are sent first.
 * A stream can be handed to one response only. */
int http_response_set_stream(struct http_response *resp, const char *content_type,
                             struct http_stream *stream, const char **error_r);

/*
 * Streams. A stream is a bounded queue of bytes between the application
 * (any thread) and one connection. It is reference counted: the creator
 * holds one reference, the server one while the connection lives; the
 * memory goes when the last is released.
 *
 * A stream ends once: by http_stream_close() (queued bytes not yet handed
 * to the connection are dropped and the connection ends at once), when the client disconnects
 * (noticed within milliseconds, even when nothing is being sent), when the queue overflows, or when
 * the server stops. After that http_stream_is_closed() is true and http_stream_send() fails. If the
 * stream was handed to a response, closed_cb (if given) is called once when its connection ends, on
 * the connection's thread, with client_gone true when the client left or the connection failed
 * rather than the application closing it.
 */
typedef void http_stream_closed_cb_t(void *ctx, bool client_gone);

/* Create a stream that queues at most max_queued bytes (>= 1). */
int http_stream_create(size_t max_queued, http_stream_closed_cb_t *closed_cb, void *closed_ctx,
                       struct http_stream **stream_r, const char **error_r);
/* Queue len bytes (all or nothing) to be sent. Fails when the stream is
 * closed; when the bytes do not fit in the queue the stream is closed (the
 * client is too slow; it reconnects and catches up with Last-Event-ID) and
 * the call fails (as with http_stream_close). Thread-safe. */
int http_stream_send(struct http_stream *stream, const void *data, size_t len,
                     const char **error_r);
/* End the stream now (e.g. its device token was revoked): bytes still in
 * the queue are dropped and wiped, and the connection ends. Idempotent; thread-safe. */
void http_stream_close(struct http_stream *stream);
/* End the stream after the bytes already queued have gone out (e.g.
 * closeafter=state). A later http_stream_close() or unref does not drop
 * them. Thread-safe. */
void http_stream_finish(struct http_stream *stream);
/* True once the stream has ended for any reason. Thread-safe. */
bool http_stream_is_closed(struct http_stream *stream);
/* Release the caller's reference. Since no one could send to the stream any
 * more, this also closes it (see http_stream_close). Accepts NULL;
 * sets *stream to NULL. */
void http_stream_unref(struct http_stream **stream);

#endif
