/*
 * Client connection: TCP, then optional TLS (OpenSSL), then optional raw
 * DEFLATE (zlib), with every wait bounded by poll() and the conn's timeout.
 *
 * Layering:
 *
 *   caller --conn_write--> [deflate] --> wbuf --> [TLS] --> send(MSG_NOSIGNAL)
 *   caller <--conn_read--- [inflate] <-- zin_buf <-- [TLS] <-- recv
 *
 * The socket stays non-blocking for its whole life. TLS talks to it through
 * a small custom BIO (so writes use MSG_NOSIGNAL and received bytes are
 * counted); when OpenSSL or recv/send would block we poll for the wanted
 * event. Without compression, conn_read() hands the caller's buffer straight
 * to recv()/SSL_read(), so nothing is buffered inside the conn on the read
 * side; with compression, inflate reads from zin_buf straight into the
 * caller's buffer.
 *
 * After any I/O error (including a timeout) the conn is marked failed: the
 * byte streams may be out of step (half a TLS record, half a deflate block),
 * so later I/O calls return -1 with the first error message.
 */
#include "net/conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <zlib.h>

#define CONN_DEFAULT_TIMEOUT_MS 30000
#define CONN_HOST_MAX 255
#define CONN_PORT_MAX 32
#define CONN_NAME_SIZE (CONN_HOST_MAX + CONN_PORT_MAX + 8)
#define CONN_ERROR_SIZE 640
/* Bytes ready for the transport (already deflated when compressing). */
#define CONN_WBUF_SIZE (64 * 1024)
/* Compressed bytes waiting for inflate. */
#define CONN_ZIN_SIZE (128 * 1024)
/* OpenSSL's read-ahead buffer: several TLS records per recv(). */
#define CONN_TLS_READ_BUF (64 * 1024)
/* Unsolicited plaintext we are willing to throw away before a handshake. */
#define CONN_PRE_TLS_DISCARD_MAX (64 * 1024)

struct conn {
	int fd;
	int timeout_ms;
	bool failed;               /* an I/O error happened; error[] holds it */
	enum conn_failure failure; /* what kind of error, for the caller's advice */
	char name[CONN_NAME_SIZE]; /* "host:port" for messages */
	char error[CONN_ERROR_SIZE];
	struct sockaddr_storage peer;
	socklen_t peer_len;
	int io_errno; /* errno of the last hard socket error seen by the BIO */
	bool bio_eof; /* the BIO saw the peer's FIN */

	BIO_METHOD *bio_method;
	SSL_CTX *ssl_ctx;
	SSL *ssl; /* non-NULL only after a successful handshake */

	bool compressed;
	bool zout_ready, zin_ready, zin_end, zout_dirty;
	z_stream zout, zin;
	unsigned char *zin_buf;

	unsigned char *wbuf;
	size_t wlen;

	unsigned long long wire_in, data_in;
};

/* Errors from conn_connect(), which has no conn to own them. */
static _Thread_local char connect_error[CONN_ERROR_SIZE];

/* Record an error message and return -1. Truncating a long message is
 * acceptable. */
static int set_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int set_error(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return -1;
}

/* Record an error, mark the conn unusable and return -1. */
#define fail(c, ...) ((c)->failed = true, set_error((c), __VA_ARGS__))

/* strerror() with a lower-case first letter, to fit inside our sentences. */
static const char *errno_text(int err, char *buf, size_t size)
{
	if (err == EPIPE)
		return "connection closed by peer";
	(void)snprintf(buf, size, "%s", strerror(err));
	if (buf[0] >= 'A' && buf[0] <= 'Z' && buf[1] >= 'a' && buf[1] <= 'z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* "30 s" or "1500 ms". */
static const char *timeout_text(int ms, char *buf, size_t size)
{
	if (ms % 1000 == 0)
		(void)snprintf(buf, size, "%d s", ms / 1000);
	else
		(void)snprintf(buf, size, "%d ms", ms);
	return buf;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or deadline passes. Returns 1 ready,
 * 0 timed out, -1 poll error (errno set). POLLERR/POLLHUP count as ready:
 * the following recv/send reports the real error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd pfd = {.fd = fd, .events = events};
		int r = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Wait for one I/O step of an established conn; each wait gets a full
 * timeout (an inactivity timeout, not a deadline for the whole transfer). */
static int conn_wait(struct conn *c, short events)
{
	char tbuf[32], ebuf[128];
	int r = wait_fd(c->fd, events, now_ms() + c->timeout_ms);

	if (r > 0)
		return 0;
	if (r == 0) {
		c->failure = CONN_FAIL_TIMEOUT;
		return fail(c, "timed out after %s waiting %s %s",
		            timeout_text(c->timeout_ms, tbuf, sizeof(tbuf)),
		            events == POLLIN ? "for data from" : "to send to", c->name);
	}
	return fail(c, "poll on connection to %s failed: %s", c->name,
	            errno_text(errno, ebuf, sizeof(ebuf)));
}

/* After SSL_ERROR_WANT_READ/WRITE, wait for the socket. Returns 0 to retry,
 * -1 on timeout or error, 1 if err is not a WANT_* code. */
static int tls_wait(struct conn *c, int err)
{
	if (err == SSL_ERROR_WANT_READ)
		return conn_wait(c, POLLIN);
	if (err == SSL_ERROR_WANT_WRITE)
		return conn_wait(c, POLLOUT);
	return 1;
}

/* --- The BIO between OpenSSL and our non-blocking socket -------------- */

static int bio_sock_read(BIO *b, char *out, int len)
{
	struct conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	ssize_t n = recv(c->fd, out, (size_t)len, 0);
	if (n > 0) {
		c->wire_in += (unsigned long long)n;
		return (int)n;
	}
	if (n == 0) {
		c->bio_eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		BIO_set_retry_read(b);
	else
		c->io_errno = errno;
	return -1;
}

static int bio_sock_write(BIO *b, const char *in, int len)
{
	struct conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	ssize_t n = send(c->fd, in, (size_t)len, MSG_NOSIGNAL);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		BIO_set_retry_write(b);
	else
		c->io_errno = errno;
	return -1;
}

static long bio_sock_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	const struct conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		/* Writes go straight to the socket: nothing to flush. */
		return 1;
	case BIO_CTRL_EOF:
		/* OpenSSL asks this to tell a TCP close from other errors. */
		return c != NULL && c->bio_eof ? 1 : 0;
	default:
		/* kTLS queries, push/pop, ...: unsupported. */
		return 0;
	}
}

static int bio_sock_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static int bio_sock_destroy(BIO *b)
{
	/* The socket belongs to the conn and is closed by conn_free(). */
	BIO_set_data(b, NULL);
	return 1;
}

static BIO_METHOD *bio_sock_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mailkeep socket");

	if (m == NULL)
		return NULL;
	if (BIO_meth_set_read(m, bio_sock_read) != 1 ||
	    BIO_meth_set_write(m, bio_sock_write) != 1 ||
	    BIO_meth_set_ctrl(m, bio_sock_ctrl) != 1 ||
	    BIO_meth_set_create(m, bio_sock_create) != 1 ||
	    BIO_meth_set_destroy(m, bio_sock_destroy) != 1) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* --- TLS error text ---------------------------------------------------- */

/* Describe why an SSL call failed, then clear OpenSSL's error queue. */
static const char *tls_reason(struct conn *c, int ssl_err, char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = NULL;

	if (e != 0)
		reason = ERR_reason_error_string(e);
	if (reason != NULL) {
		(void)snprintf(buf, size, "%s", reason);
	} else if (ssl_err == SSL_ERROR_SYSCALL && c->io_errno != 0) {
		(void)errno_text(c->io_errno, buf, size);
	} else if (ssl_err == SSL_ERROR_SYSCALL || ssl_err == SSL_ERROR_ZERO_RETURN) {
		(void)snprintf(buf, size, "connection closed by peer");
	} else {
		(void)snprintf(buf, size, "TLS error %d", ssl_err);
	}
	ERR_clear_error();
	return buf;
}

/* --- Transport: plain socket or TLS ------------------------------------ */

/* Read whatever is available (at least 1 byte), waiting if needed.
 * Returns >0, 0 at EOF, -1 on error (conn failed). */
static ssize_t transport_read(struct conn *c, void *buf, size_t len)
{
	char ebuf[160];

	if (len > INT_MAX)
		len = INT_MAX;
	if (c->ssl == NULL) {
		for (;;) {
			ssize_t n = recv(c->fd, buf, len, 0);
			if (n > 0) {
				c->wire_in += (unsigned long long)n;
				return n;
			}
			if (n == 0)
				return 0;
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return fail(c, "read from %s failed: %s", c->name,
				            errno_text(errno, ebuf, sizeof(ebuf)));
			if (conn_wait(c, POLLIN) < 0)
				return -1;
		}
	}
	for (;;) {
		ERR_clear_error();
		c->io_errno = 0;
		int n = SSL_read(c->ssl, buf, (int)len);
		if (n > 0)
			return n;
		int err = SSL_get_error(c->ssl, n);
		/* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a TCP close */
		if (err == SSL_ERROR_ZERO_RETURN)
			return 0;
		int w = tls_wait(c, err);
		if (w < 0)
			return -1;
		if (w > 0)
			return fail(c, "TLS read from %s failed: %s", c->name,
			            tls_reason(c, err, ebuf, sizeof(ebuf)));
	}
}

/* Send all len bytes. Returns 0 or -1 (conn failed). */
static int transport_write_all(struct conn *c, const unsigned char *p, size_t len)
{
	char ebuf[160];

	while (len > 0) {
		size_t chunk = len > INT_MAX ? INT_MAX : len;
		ssize_t n;

		if (c->ssl == NULL) {
			n = send(c->fd, p, chunk, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno != EAGAIN && errno != EWOULDBLOCK)
					return fail(c, "write to %s failed: %s", c->name,
					            errno_text(errno, ebuf, sizeof(ebuf)));
				if (conn_wait(c, POLLOUT) < 0)
					return -1;
				continue;
			}
		} else {
			ERR_clear_error();
			c->io_errno = 0;
			int r = SSL_write(c->ssl, p, (int)chunk);
			if (r <= 0) {
				/* A retry must repeat the same buffer and length,
				 * which the loop does. */
				int err = SSL_get_error(c->ssl, r);
				int w = tls_wait(c, err);
				if (w < 0)
					return -1;
				if (w > 0)
					return fail(c, "TLS write to %s failed: %s", c->name,
					            tls_reason(c, err, ebuf, sizeof(ebuf)));
				continue;
			}
			n = r;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send what is in wbuf and wipe it (it may have carried a password). */
static int send_wbuf(struct conn *c)
{
	if (c->wlen == 0)
		return 0;
	int r = transport_write_all(c, c->wbuf, c->wlen);
	OPENSSL_cleanse(c->wbuf, c->wlen);
	c->wlen = 0;
	return r;
}

/* --- Connect ----------------------------------------------------------- */

static bool valid_text(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	}
	return true;
}

/* Try one address until the deadline. Returns the connected socket, or -1
 * with *err_r set (ETIMEDOUT for our own timeout). */
static int connect_one(const struct addrinfo *ai, int64_t deadline, int *err_r)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0) {
		*err_r = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int err = errno;
		if (err == EINPROGRESS || err == EINTR) {
			int r = wait_fd(fd, POLLOUT, deadline);
			socklen_t slen = sizeof(err);
			if (r <= 0)
				err = r == 0 ? ETIMEDOUT : errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &slen) < 0)
				err = errno;
		}
		if (err != 0) {
			*err_r = err;
			close(fd);
			return -1;
		}
	}
	int one = 1;
	/* Commands are small and latency matters more than packet count. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int conn_connect(const char *host, const char *port, int timeout_ms, struct conn **conn_r,
                 const char **error_r)
{
	char tbuf[32], ebuf[128], addr[INET6_ADDRSTRLEN] = "";
	struct addrinfo hints, *res = NULL;
	int last_err = 0, fd = -1;

	*error_r = connect_error;
	if (host == NULL || port == NULL || !valid_text(host, CONN_HOST_MAX) ||
	    !valid_text(port, CONN_PORT_MAX)) {
		(void)snprintf(connect_error, sizeof(connect_error),
		               "invalid host or port for connection");
		return -1;
	}
	if (timeout_ms <= 0)
		timeout_ms = CONN_DEFAULT_TIMEOUT_MS;
	/* "host:port" for messages, with IPv6 literals in brackets. */
	char name[CONN_NAME_SIZE];
	bool v6 = strchr(host, ':') != NULL;
	(void)snprintf(name, sizeof(name), "%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0) {
		(void)snprintf(connect_error, sizeof(connect_error), "cannot resolve %s: %s", host,
		               gai == EAI_SYSTEM ? errno_text(errno, ebuf, sizeof(ebuf))
		                                 : gai_strerror(gai));
		return -1;
	}

	int64_t deadline = now_ms() + timeout_ms;
	const struct addrinfo *ai;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		const void *a = ai->ai_family == AF_INET6
		                    ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
		                    : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		if (inet_ntop(ai->ai_family, a, addr, sizeof(addr)) == NULL)
			addr[0] = '\0';
		/* Leave time for the next address in case this one is
		 * black-holed (say, IPv6 without a route). */
		int64_t now = now_ms();
		int64_t until = ai->ai_next != NULL ? now + (deadline - now) / 2 : deadline;
		fd = connect_one(ai, until, &last_err);
		if (fd >= 0 || now_ms() >= deadline)
			break;
	}
	if (fd < 0) {
		char via[INET6_ADDRSTRLEN + 8] = "";
		if (addr[0] != '\0' && strcmp(addr, host) != 0)
			(void)snprintf(via, sizeof(via), " (%s)", addr);
		if (last_err == ETIMEDOUT)
			(void)snprintf(connect_error, sizeof(connect_error),
			               "cannot connect to %s%s: timed out after %s", name, via,
			               timeout_text(timeout_ms, tbuf, sizeof(tbuf)));
		else
			(void)snprintf(connect_error, sizeof(connect_error),
			               "cannot connect to %s%s: %s", name, via,
			               errno_text(last_err, ebuf, sizeof(ebuf)));
		freeaddrinfo(res);
		return -1;
	}

	struct conn *c = calloc(1, sizeof(*c));
	unsigned char *wbuf = malloc(CONN_WBUF_SIZE);
	if (c == NULL || wbuf == NULL) {
		free(c);
		free(wbuf);
		close(fd);
		freeaddrinfo(res);
		(void)snprintf(connect_error, sizeof(connect_error), "out of memory");
		return -1;
	}
	c->fd = fd;
	c->wbuf = wbuf;
	c->timeout_ms = timeout_ms;
	memcpy(c->name, name, sizeof(c->name));
	if (ai->ai_addrlen <= sizeof(c->peer)) {
		memcpy(&c->peer, ai->ai_addr, ai->ai_addrlen);
		c->peer_len = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	*conn_r = c;
	return 0;
}

/* --- TLS --------------------------------------------------------------- */

/* Throw away plaintext the server sent before the handshake: a server
 * cannot legitimately send anything before our ClientHello, so these bytes
 * are an injection attempt (or garbage) and must not reach the caller. */
static int discard_pre_tls_input(struct conn *c)
{
	unsigned char tmp[4096];
	size_t total = 0;
	char ebuf[128];

	for (;;) {
		ssize_t n = recv(c->fd, tmp, sizeof(tmp), MSG_DONTWAIT);
		if (n > 0) {
			c->wire_in += (unsigned long long)n;
			total += (size_t)n;
			if (total > CONN_PRE_TLS_DISCARD_MAX)
				return fail(c, "%s sent unexpected data before the TLS handshake",
				            c->name);
			continue;
		}
		OPENSSL_cleanse(tmp, sizeof(tmp));
		if (n == 0)
			return fail(c, "%s closed the connection before the TLS handshake",
			            c->name);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		return fail(c, "read from %s failed: %s", c->name,
		            errno_text(errno, ebuf, sizeof(ebuf)));
	}
}

/*
 * The system's trust anchors. The hashed certificate directory is looked up
 * lazily (only the issuers a chain needs are read), where loading the whole
 * bundle file, as SSL_CTX_set_default_verify_paths() does, costs tens of
 * milliseconds per connection. The directory is SSL_CERT_DIR or OpenSSL's
 * default; only without one are the default paths (SSL_CERT_FILE, the
 * bundle) used. Extra anchors come from --ca-file.
 */
static bool tls_load_system_trust(SSL_CTX *ctx)
{
	const char *dir = getenv(X509_get_default_cert_dir_env());
	struct stat st;
	if (dir == NULL)
		dir = X509_get_default_cert_dir();
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return SSL_CTX_load_verify_dir(ctx, dir) == 1;
	return SSL_CTX_set_default_verify_paths(ctx) == 1;
}

static SSL_CTX *tls_ctx_new(struct conn *c, const char *ca_file)
{
	char ebuf[160];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		set_error(c, "cannot create TLS context: %s", tls_reason(c, 0, ebuf, sizeof(ebuf)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* IMAP servers often just close the TCP connection; treat that as EOF
	 * and let the protocol layer notice a truncated response. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, CONN_TLS_READ_BUF);
	bool system_ok = tls_load_system_trust(ctx);
	if (!system_ok ||
	    (ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)) {
		set_error(c, "cannot load %s%s: %s", system_ok ? "CA file " : "",
		          system_ok ? ca_file : "the system's trusted certificates",
		          tls_reason(c, 0, ebuf, sizeof(ebuf)));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* Set SNI and the identity the certificate must match. host is a DNS name
 * or an IP literal (IPv6 possibly in brackets). */
static int tls_set_peer_identity(struct conn *c, SSL *ssl, const char *host)
{
	char ip[CONN_HOST_MAX + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		memcpy(ip, host + 1, n - 2);
		ip[n - 2] = '\0';
	} else {
		memcpy(ip, host, n + 1);
	}
	if (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1) {
		/* No SNI for IP literals (RFC 6066 section 3). */
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) != 1)
			return set_error(c, "cannot set TLS peer address %s", ip);
		return 0;
	}
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
		return set_error(c, "cannot set TLS peer name %s", host);
	return 0;
}

static int tls_handshake(struct conn *c, SSL *ssl, const char *host)
{
	int64_t deadline = now_ms() + c->timeout_ms;
	char tbuf[32], ebuf[160];

	for (;;) {
		ERR_clear_error();
		c->io_errno = 0;
		int r = SSL_connect(ssl);
		if (r == 1)
			return 0;
		int err = SSL_get_error(ssl, r);
		short ev;
		if (err == SSL_ERROR_WANT_READ) {
			ev = POLLIN;
		} else if (err == SSL_ERROR_WANT_WRITE) {
			ev = POLLOUT;
		} else {
			long v = SSL_get_verify_result(ssl);
			if (v != X509_V_OK) {
				ERR_clear_error();
				c->failure = CONN_FAIL_CERT;
				if (v == X509_V_ERR_HOSTNAME_MISMATCH ||
				    v == X509_V_ERR_IP_ADDRESS_MISMATCH)
					return fail(
					    c,
					    "TLS certificate verification failed for %s: %s "
					    "(the certificate is issued for another name: "
					    "connect with the name it is issued for)",
					    host, X509_verify_cert_error_string(v));
				return fail(
				    c,
				    "TLS certificate verification failed for %s: %s (if you "
				    "trust the authority that issued it, give its "
				    "certificate with --ca-file)",
				    host, X509_verify_cert_error_string(v));
			}
			unsigned long e = ERR_peek_last_error();
			if (e != 0 && ERR_GET_LIB(e) == ERR_LIB_SSL &&
			    ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER)
				c->failure = CONN_FAIL_NOT_TLS;
			return fail(c, "TLS handshake with %s failed: %s%s", c->name,
			            tls_reason(c, err, ebuf, sizeof(ebuf)),
			            c->failure == CONN_FAIL_NOT_TLS
			                ? " (the server answered in clear text, not TLS)"
			                : "");
		}
		/* The whole handshake shares one deadline, so a server that
		 * trickles bytes cannot stretch it. */
		int w = wait_fd(c->fd, ev, deadline);
		if (w == 0) {
			c->failure = CONN_FAIL_TIMEOUT;
			return fail(c, "TLS handshake with %s timed out after %s", c->name,
			            timeout_text(c->timeout_ms, tbuf, sizeof(tbuf)));
		}
		if (w < 0)
			return fail(c, "poll on connection to %s failed: %s", c->name,
			            errno_text(errno, ebuf, sizeof(ebuf)));
	}
}

int conn_start_tls(struct conn *c, const char *host, const char *ca_file, const char **error_r)
{
	*error_r = c->error;
	if (c->failed)
		return -1;
	if (c->ssl != NULL)
		return set_error(c, "TLS is already active on the connection to %s", c->name);
	if (c->compressed)
		return set_error(c, "cannot start TLS inside compression on %s", c->name);
	if (host == NULL || !valid_text(host, CONN_HOST_MAX))
		return set_error(c, "invalid TLS host name for %s", c->name);
	/* Whatever the caller queued belongs to the plaintext phase. */
	if (send_wbuf(c) < 0 || discard_pre_tls_input(c) < 0)
		return -1;

	if (c->bio_method == NULL) {
		c->bio_method = bio_sock_method_new();
		if (c->bio_method == NULL)
			return set_error(c, "cannot create TLS socket BIO");
	}
	SSL_CTX *ctx = tls_ctx_new(c, ca_file);
	if (ctx == NULL)
		return -1;
	SSL *ssl = SSL_new(ctx);
	BIO *bio = BIO_new(c->bio_method);
	if (ssl == NULL || bio == NULL) {
		set_error(c, "cannot create TLS session");
		goto fail;
	}
	BIO_set_data(bio, c);
	SSL_set_bio(ssl, bio, bio); /* ssl owns bio now */
	bio = NULL;
	if (tls_set_peer_identity(c, ssl, host) < 0)
		goto fail;
	if (tls_handshake(c, ssl, host) < 0)
		goto fail;
	c->ssl_ctx = ctx;
	c->ssl = ssl;
	return 0;
fail:
	ERR_clear_error();
	BIO_free(bio);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	/* The socket is somewhere inside a handshake: unusable. */
	c->failed = true;
	return -1;
}

/* --- DEFLATE ----------------------------------------------------------- */

/* zlib allocators that wipe on free: the deflate window holds recent
 * plaintext, which may include credentials. */
#define Z_HDR 16

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	if (size != 0 && items > (SIZE_MAX - Z_HDR) / size)
		return Z_NULL;
	size_t n = (size_t)items * size;
	unsigned char *p = malloc(n + Z_HDR);
	if (p == NULL)
		return Z_NULL;
	memcpy(p, &n, sizeof(n));
	return p + Z_HDR;
}

static void z_free(voidpf opaque, voidpf ptr)
{
	(void)opaque;
	if (ptr == Z_NULL)
		return;
	unsigned char *p = (unsigned char *)ptr - Z_HDR;
	size_t n;
	memcpy(&n, p, sizeof(n));
	OPENSSL_cleanse(ptr, n);
	free(p);
}

int conn_start_deflate(struct conn *c, const char **error_r)
{
	*error_r = c->error;
	if (c->failed)
		return -1;
	if (c->compressed)
		return set_error(c, "compression is already active on the connection to %s",
		                 c->name);
	/* Whatever the caller queued belongs to the uncompressed phase. */
	if (send_wbuf(c) < 0)
		return -1;
	c->zin_buf = malloc(CONN_ZIN_SIZE);
	if (c->zin_buf == NULL)
		return fail(c, "out of memory");
	c->zout.zalloc = c->zin.zalloc = z_alloc;
	c->zout.zfree = c->zin.zfree = z_free;
	c->zout.opaque = c->zin.opaque = Z_NULL;
	/* A failure here leaves the conn failed: the server already expects
	 * compressed data. */
	if (deflateInit2(&c->zout, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return fail(c, "cannot start compression: %s", c->zout.msg ? c->zout.msg : "zlib");
	c->zout_ready = true;
	c->zin.next_in = c->zin_buf;
	c->zin.avail_in = 0;
	if (inflateInit2(&c->zin, -15) != Z_OK)
		return fail(c, "cannot start decompression: %s", c->zin.msg ? c->zin.msg : "zlib");
	c->zin_ready = true;
	c->compressed = true;
	return 0;
}

/* Fill the caller's buffer from the inflate stream, reading compressed
 * bytes only when inflate cannot produce anything from what it has. */
static ssize_t inflate_read(struct conn *c, unsigned char *buf, size_t len)
{
	if (len > UINT_MAX)
		len = UINT_MAX;
	for (;;) {
		if (c->zin_end)
			return 0;
		c->zin.next_out = buf;
		c->zin.avail_out = (uInt)len;
		/* Called even with no new input: inflate may still hold output
		 * that did not fit into the previous caller's buffer. */
		int ret = inflate(&c->zin, Z_SYNC_FLUSH);
		size_t produced = len - c->zin.avail_out;
		if (ret == Z_STREAM_END) {
			/* RFC 4978 streams never end; treat a final block as EOF. */
			c->zin_end = true;
		} else if (ret != Z_OK && ret != Z_BUF_ERROR) {
			return fail(c, "decompressing data from %s failed: %s", c->name,
			            c->zin.msg != NULL ? c->zin.msg : "corrupt stream");
		}
		if (produced > 0) {
			c->data_in += produced;
			return (ssize_t)produced;
		}
		if (c->zin_end)
			return 0;

		/* Need more input: keep any unconsumed bytes, then read. */
		size_t keep = c->zin.avail_in;
		if (keep > 0 && c->zin.next_in != c->zin_buf)
			memmove(c->zin_buf, c->zin.next_in, keep);
		c->zin.next_in = c->zin_buf;
		if (keep == CONN_ZIN_SIZE)
			return fail(c, "decompressing data from %s failed: stalled", c->name);
		ssize_t n = transport_read(c, c->zin_buf + keep, CONN_ZIN_SIZE - keep);
		if (n <= 0)
			return n;
		c->zin.avail_in = (uInt)(keep + (size_t)n);
	}
}

/* Deflate into wbuf, sending it whenever it fills. */
static int deflate_into_wbuf(struct conn *c, int flush)
{
	for (;;) {
		c->zout.next_out = c->wbuf + c->wlen;
		c->zout.avail_out = (uInt)(CONN_WBUF_SIZE - c->wlen);
		int ret = deflate(&c->zout, flush);
		c->wlen = CONN_WBUF_SIZE - c->zout.avail_out;
		if (ret != Z_OK && ret != Z_BUF_ERROR)
			return fail(c, "compressing data for %s failed: %s", c->name,
			            c->zout.msg != NULL ? c->zout.msg : "zlib error");
		if (c->zout.avail_out != 0) {
			if (c->zout.avail_in == 0)
				return 0;
			return fail(c, "compressing data for %s failed: no progress", c->name);
		}
		/* wbuf is full: send it and go on. */
		if (send_wbuf(c) < 0)
			return -1;
	}
}

/* --- Public I/O -------------------------------------------------------- */

ssize_t conn_read(struct conn *c, void *buf, size_t len, const char **error_r)
{
	*error_r = c->error;
	if (c->failed)
		return -1;
	if (len == 0)
		return set_error(c, "conn_read called with an empty buffer");
	if (c->compressed)
		return inflate_read(c, buf, len);
	ssize_t n = transport_read(c, buf, len);
	if (n > 0)
		c->data_in += (unsigned long long)n;
	return n;
}

int conn_write(struct conn *c, const void *buf, size_t len, const char **error_r)
{
	*error_r = c->error;
	if (c->failed)
		return -1;
	if (len == 0)
		return 0;
	if (c->compressed) {
		const unsigned char *p = buf;
		while (len > 0) {
			size_t chunk = len > UINT_MAX ? UINT_MAX : len;
			c->zout.next_in = (unsigned char *)(uintptr_t)p;
			c->zout.avail_in = (uInt)chunk;
			if (deflate_into_wbuf(c, Z_NO_FLUSH) < 0)
				return -1;
			p += chunk;
			len -= chunk;
		}
		c->zout.next_in = NULL;
		c->zout_dirty = true;
		return 0;
	}
	if (len <= CONN_WBUF_SIZE - c->wlen) {
		memcpy(c->wbuf + c->wlen, buf, len);
		c->wlen += len;
		return 0;
	}
	if (send_wbuf(c) < 0)
		return -1;
	if (len >= CONN_WBUF_SIZE)
		return transport_write_all(c, buf, len); /* no point copying */
	memcpy(c->wbuf, buf, len);
	c->wlen = len;
	return 0;
}

int conn_flush(struct conn *c, const char **error_r)
{
	*error_r = c->error;
	if (c->failed)
		return -1;
	if (c->compressed && c->zout_dirty) {
		if (deflate_into_wbuf(c, Z_SYNC_FLUSH) < 0)
			return -1;
		c->zout_dirty = false;
	}
	return send_wbuf(c);
}

/* --- Small accessors ----------------------------------------------------- */

enum conn_failure conn_failure(const struct conn *c)
{
	if (!c->failed)
		return CONN_FAIL_NONE;
	return c->failure != CONN_FAIL_NONE ? c->failure : CONN_FAIL_OTHER;
}

void conn_set_timeout(struct conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : CONN_DEFAULT_TIMEOUT_MS;
}

bool conn_is_tls(const struct conn *c)
{
	return c->ssl != NULL;
}

bool conn_is_compressed(const struct conn *c)
{
	return c->compressed;
}

bool conn_peer_is_loopback(const struct conn *c)
{
	if (c->peer.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&c->peer;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (c->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&c->peer;
		const struct in6_addr *a = &sin6->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

void conn_stats(const struct conn *c, unsigned long long *wire_in, unsigned long long *data_in)
{
	if (wire_in != NULL)
		*wire_in = c->wire_in;
	if (data_in != NULL)
		*data_in = c->data_in;
}

void conn_free(struct conn **cp)
{
	struct conn *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->ssl != NULL) {
		/* Best effort close_notify: one non-blocking attempt, no
		 * waiting for the peer's reply. Not after a fatal error. */
		if (!c->failed)
			(void)SSL_shutdown(c->ssl);
		ERR_clear_error();
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ssl_ctx);
	BIO_meth_free(c->bio_method);
	if (c->zout_ready)
		(void)deflateEnd(&c->zout);
	if (c->zin_ready)
		(void)inflateEnd(&c->zin);
	if (c->fd >= 0)
		close(c->fd);
	if (c->wbuf != NULL) {
		OPENSSL_cleanse(c->wbuf, CONN_WBUF_SIZE);
		free(c->wbuf);
	}
	if (c->zin_buf != NULL) {
		OPENSSL_cleanse(c->zin_buf, CONN_ZIN_SIZE);
		free(c->zin_buf);
	}
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}
