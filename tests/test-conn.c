/*
 * Tests for src/net/conn.c against a real TLS server (OpenSSL) running in a
 * forked child on 127.0.0.1, with certificates made at run time by the
 * openssl command-line tool.
 *
 * The server speaks a tiny line protocol (lines end in CRLF):
 *   STARTTLS  -> "OK begin TLS\r\nINJECT\r\n" in one write, then TLS
 *                (the INJECT line plays a STARTTLS response injection)
 *   COMPRESS  -> "OK\r\n", then raw DEFLATE both ways
 *   SNI       -> "SNI <name>\r\n" or "SNI none\r\n"
 *   ECHO      -> echo every following byte until EOF
 *   SILENT    -> read and discard until EOF, never answer
 *   CLOSE     -> "BYE\r\n", then close without TLS close_notify
 *   other     -> the line is echoed back
 */
#include "net/conn.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "test.h"

#define CHECK_OK(expr, err)                                                                        \
	do {                                                                                       \
		if ((expr) != 0) {                                                                 \
			fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,       \
			        (err));                                                            \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

static char tmpdir[64];
static pid_t parent_pid;
static pid_t server_pid = -1;
static char ca_pem[128], srv_pem[128], srv_key[128], self_pem[128], self_key[128];

/* --- Setup and cleanup ---------------------------------------------------- */

static void cleanup(void)
{
	if (getpid() != parent_pid)
		return;
	if (server_pid > 0) {
		kill(server_pid, SIGKILL);
		waitpid(server_pid, NULL, 0);
		server_pid = -1;
	}
	if (tmpdir[0] == '\0')
		return;
	DIR *d = opendir(tmpdir);
	if (d != NULL) {
		struct dirent *e;
		char path[512];
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name) <
			    (int)sizeof(path))
				unlink(path);
		}
		closedir(d);
	}
	rmdir(tmpdir);
	tmpdir[0] = '\0';
}

static void run(const char *cmd)
{
	char full[2048];
	CHECK(snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd) < (int)sizeof(full));
	if (system(full) != 0) {
		fprintf(stderr, "command failed: %s\n", cmd);
		exit(1);
	}
}

static void make_certs(void)
{
	char cmd[1024], ext[128];
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mk-test-conn-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", tmpdir);
	snprintf(srv_pem, sizeof(srv_pem), "%s/srv.pem", tmpdir);
	snprintf(srv_key, sizeof(srv_key), "%s/srv.key", tmpdir);
	snprintf(self_pem, sizeof(self_pem), "%s/self.pem", tmpdir);
	snprintf(self_key, sizeof(self_key), "%s/self.key", tmpdir);
	snprintf(ext, sizeof(ext), "%s/ext.cnf", tmpdir);

	FILE *f = fopen(ext, "w");
	CHECK(f != NULL);
	fputs("subjectAltName=IP:127.0.0.1,DNS:mk-test.invalid\n"
	      "basicConstraints=CA:FALSE\n"
	      "extendedKeyUsage=serverAuth\n",
	      f);
	CHECK(fclose(f) == 0);

	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 %s -keyout %s/ca.key -out %s -days 2 "
	         "-subj '/CN=mailkeep test CA' -addext 'basicConstraints=critical,CA:TRUE' "
	         "-addext 'keyUsage=critical,keyCertSign,cRLSign'",
	         ec, tmpdir, ca_pem);
	run(cmd);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -new %s -keyout %s -out %s/srv.csr -subj '/CN=mk-test.invalid'", ec,
	         srv_key, tmpdir);
	run(cmd);
	snprintf(cmd, sizeof(cmd),
	         "openssl x509 -req -in %s/srv.csr -CA %s -CAkey %s/ca.key -CAcreateserial "
	         "-out %s -days 2 -extfile %s",
	         tmpdir, ca_pem, tmpdir, srv_pem, ext);
	run(cmd);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 %s -keyout %s -out %s -days 2 -subj '/CN=127.0.0.1' "
	         "-addext 'subjectAltName=IP:127.0.0.1'",
	         ec, self_key, self_pem);
	run(cmd);
}

/* --- The server (child process) ------------------------------------------- */

struct srv {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	bool z;
	z_stream zin, zout;
	unsigned char raw[65536];  /* compressed input waiting for inflate */
	unsigned char pend[65536]; /* plaintext input not yet handled */
	size_t pend_len;
	unsigned char zbuf[65536 + 1024];
};

static ssize_t srv_raw_read(struct srv *s, void *buf, size_t len)
{
	if (s->ssl != NULL) {
		int n = SSL_read(s->ssl, buf, (int)len);
		return n > 0 ? n : (SSL_get_error(s->ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
	}
	return read(s->fd, buf, len);
}

static void srv_raw_write(struct srv *s, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = s->ssl != NULL ? SSL_write(s->ssl, p, (int)len)
		                           : send(s->fd, p, len, MSG_NOSIGNAL);
		if (n <= 0)
			_exit(3);
		p += n;
		len -= (size_t)n;
	}
}

static ssize_t srv_read(struct srv *s, unsigned char *buf, size_t len)
{
	if (!s->z)
		return srv_raw_read(s, buf, len);
	for (;;) {
		s->zin.next_out = buf;
		s->zin.avail_out = (uInt)len;
		int r = inflate(&s->zin, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR)
			_exit(4);
		if (s->zin.avail_out < len)
			return (ssize_t)(len - s->zin.avail_out);
		ssize_t n = srv_raw_read(s, s->raw, sizeof(s->raw));
		if (n <= 0)
			return n;
		s->zin.next_in = s->raw;
		s->zin.avail_in = (uInt)n;
	}
}

static void srv_write(struct srv *s, const void *buf, size_t len)
{
	if (!s->z) {
		srv_raw_write(s, buf, len);
		return;
	}
	s->zout.next_in = (unsigned char *)(uintptr_t)buf;
	s->zout.avail_in = (uInt)len;
	do {
		s->zout.next_out = s->zbuf;
		s->zout.avail_out = sizeof(s->zbuf);
		if (deflate(&s->zout, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
			_exit(5);
		srv_raw_write(s, s->zbuf, sizeof(s->zbuf) - s->zout.avail_out);
	} while (s->zout.avail_out == 0);
}

static void srv_tls_accept(struct srv *s, const char *cert, const char *key)
{
	s->ctx = SSL_CTX_new(TLS_server_method());
	if (s->ctx == NULL || SSL_CTX_use_certificate_chain_file(s->ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s->ctx, key, SSL_FILETYPE_PEM) != 1)
		_exit(6);
	s->ssl = SSL_new(s->ctx);
	SSL_set_fd(s->ssl, s->fd);
	if (SSL_accept(s->ssl) != 1)
		_exit(0); /* the client refused us: expected in some tests */
}

static void srv_session(struct srv *s)
{
	for (;;) {
		unsigned char *eol = memmem(s->pend, s->pend_len, "\r\n", 2);
		if (eol == NULL) {
			if (s->pend_len == sizeof(s->pend))
				_exit(7);
			ssize_t n =
			    srv_read(s, s->pend + s->pend_len, sizeof(s->pend) - s->pend_len);
			if (n <= 0)
				_exit(n == 0 ? 0 : 8);
			s->pend_len += (size_t)n;
			continue;
		}
		size_t line_len = (size_t)(eol - s->pend);
		char line[256] = "";
		if (line_len < sizeof(line))
			memcpy(line, s->pend, line_len);
		size_t used = line_len + 2;

		if (strcmp(line, "ECHO") == 0) {
			memmove(s->pend, s->pend + used, s->pend_len - used);
			s->pend_len -= used;
			if (s->pend_len > 0)
				srv_write(s, s->pend, s->pend_len);
			for (;;) {
				ssize_t n = srv_read(s, s->pend, sizeof(s->pend));
				if (n <= 0)
					_exit(n == 0 ? 0 : 9);
				srv_write(s, s->pend, (size_t)n);
			}
		} else if (strcmp(line, "SILENT") == 0) {
			while (srv_raw_read(s, s->raw, sizeof(s->raw)) > 0)
				;
			_exit(0);
		} else if (strcmp(line, "CLOSE") == 0) {
			srv_write(s, "BYE\r\n", 5);
			_exit(0); /* no close_notify */
		} else if (strcmp(line, "STARTTLS") == 0) {
			srv_raw_write(s, "OK begin TLS\r\nINJECT\r\n", 22);
			srv_tls_accept(s, srv_pem, srv_key);
		} else if (strcmp(line, "COMPRESS") == 0) {
			srv_write(s, "OK\r\n", 4);
			if (inflateInit2(&s->zin, -15) != Z_OK ||
			    deflateInit2(&s->zout, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) !=
			        Z_OK)
				_exit(10);
			s->z = true;
		} else if (strcmp(line, "SNI") == 0) {
			const char *name =
			    s->ssl != NULL ? SSL_get_servername(s->ssl, TLSEXT_NAMETYPE_host_name)
			                   : NULL;
			char reply[300];
			int n = snprintf(reply, sizeof(reply), "SNI %s\r\n", name ? name : "none");
			srv_write(s, reply, (size_t)n);
		} else {
			srv_write(s, s->pend, used);
		}
		memmove(s->pend, s->pend + used, s->pend_len - used);
		s->pend_len -= used;
	}
}

/* Fork a server for one connection. cert == NULL: plaintext at first;
 * otherwise implicit TLS with that certificate. Returns the port. */
static int start_server(const char *cert, const char *key)
{
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		alarm(60);
		int ls = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in sin = {.sin_family = AF_INET};
		socklen_t slen = sizeof(sin);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int port = 0;
		if (ls >= 0 && bind(ls, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
		    listen(ls, 1) == 0 && getsockname(ls, (struct sockaddr *)&sin, &slen) == 0)
			port = ntohs(sin.sin_port);
		if (write(pfd[1], &port, sizeof(port)) != sizeof(port) || port == 0)
			_exit(11);
		close(pfd[1]);
		static struct srv s;
		s.fd = accept(ls, NULL, NULL);
		if (s.fd < 0)
			_exit(12);
		close(ls);
		if (cert != NULL)
			srv_tls_accept(&s, cert, key);
		srv_session(&s);
		_exit(0);
	}
	close(pfd[1]);
	int port = 0;
	CHECK(read(pfd[0], &port, sizeof(port)) == sizeof(port));
	close(pfd[0]);
	CHECK(port > 0);
	server_pid = pid;
	return port;
}

/* Wait for the server to exit (killing it after 10 s); returns its status. */
static int stop_server(void)
{
	int status = -1;
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(server_pid, &status, WNOHANG);
		if (r == server_pid) {
			server_pid = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
		}
		usleep(10000);
	}
	kill(server_pid, SIGKILL);
	waitpid(server_pid, NULL, 0);
	server_pid = -1;
	return 128;
}

/* --- Client helpers ------------------------------------------------------- */

static struct conn *connect_to(int port)
{
	char ports[16];
	struct conn *c = NULL;
	const char *error;

	snprintf(ports, sizeof(ports), "%d", port);
	CHECK_OK(conn_connect("127.0.0.1", ports, 5000, &c, &error), error);
	CHECK(c != NULL);
	return c;
}

static void send_str(struct conn *c, const char *s)
{
	const char *error;
	CHECK_OK(conn_write(c, s, strlen(s), &error), error);
	CHECK_OK(conn_flush(c, &error), error);
}

/* Read exactly strlen(want) bytes and compare. */
static void expect(struct conn *c, const char *want)
{
	char got[512];
	size_t n = strlen(want), have = 0;
	const char *error;

	CHECK(n < sizeof(got));
	while (have < n) {
		ssize_t r = conn_read(c, got + have, n - have, &error);
		if (r <= 0)
			fprintf(stderr, "read: %s\n", r < 0 ? error : "EOF");
		CHECK(r > 0);
		have += (size_t)r;
	}
	got[n] = '\0';
	if (strcmp(got, want) != 0)
		fprintf(stderr, "expected [%s], got [%s]\n", want, got);
	CHECK(strcmp(got, want) == 0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Payload byte i: stretches of random bytes between stretches of text, so
 * the stream is neither trivially compressible nor incompressible. */
static unsigned char payload_byte(uint64_t i)
{
	static const char text[] = "Received: from mx.example.com by imap.example.org; "
	                           "Subject: quarterly report\r\n";
	uint64_t x = (i / 8192 % 3 == 0) ? i : i / 256;
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	if (i / 8192 % 3 == 0)
		return (unsigned char)x;
	return (unsigned char)text[(i + x) % (sizeof(text) - 1)];
}

/* Send total payload bytes after "ECHO" and check they come back, keeping
 * at most a bounded amount in flight so neither side blocks forever. */
static void echo_payload(struct conn *c, size_t total)
{
	static unsigned char out[65536], in[100000];
	static const size_t read_sizes[] = {65536, 1, 3000, 100000, 7, 16384};
	size_t sent = 0, got = 0, k = 0;
	const char *error;

	send_str(c, "ECHO\r\n");
	while (got < total) {
		if (sent < total && sent - got < 2 * sizeof(out)) {
			size_t n = total - sent < sizeof(out) ? total - sent : sizeof(out);
			for (size_t i = 0; i < n; i++)
				out[i] = payload_byte(sent + i);
			CHECK_OK(conn_write(c, out, n, &error), error);
			CHECK_OK(conn_flush(c, &error), error);
			sent += n;
			continue;
		}
		size_t want = read_sizes[k++ % 6];
		ssize_t r = conn_read(c, in, want, &error);
		if (r <= 0)
			fprintf(stderr, "read: %s\n", r < 0 ? error : "EOF");
		CHECK(r > 0 && (size_t)r <= want);
		for (ssize_t i = 0; i < r; i++)
			CHECK(in[i] == payload_byte(got + (size_t)i));
		got += (size_t)r;
	}
	CHECK(got == total);
}

/* --- Tests ---------------------------------------------------------------- */

static void test_implicit_tls(void)
{
	const char *error;
	int port = start_server(srv_pem, srv_key);
	struct conn *c = connect_to(port);

	CHECK(conn_peer_is_loopback(c));
	CHECK(!conn_is_tls(c));
	CHECK_OK(conn_start_tls(c, "127.0.0.1", ca_pem, &error), error);
	CHECK(conn_is_tls(c));
	CHECK(!conn_is_compressed(c));
	send_str(c, "hello\r\n");
	expect(c, "hello\r\n");
	send_str(c, "SNI\r\n"); /* no SNI for an IP literal */
	expect(c, "SNI none\r\n");
	/* A second handshake on the same conn is refused. */
	CHECK(conn_start_tls(c, "127.0.0.1", ca_pem, &error) == -1);
	CHECK(strstr(error, "already") != NULL);
	echo_payload(c, 1024 * 1024);

	unsigned long long wire, data;
	conn_stats(c, &wire, &data);
	CHECK(data >= 1024 * 1024 && wire > data); /* TLS records add overhead */
	conn_free(&c);
	CHECK(c == NULL);
	CHECK(stop_server() == 0);
}

static void test_tls_refused(const char *cert, const char *key, const char *host,
                             const char *ca_file, const char *want1, const char *want2)
{
	const char *error;
	int port = start_server(cert, key);
	struct conn *c = connect_to(port);

	CHECK(conn_start_tls(c, host, ca_file, &error) == -1);
	if (strstr(error, want1) == NULL || (want2 != NULL && strstr(error, want2) == NULL))
		fprintf(stderr, "unexpected error: %s\n", error);
	CHECK(strstr(error, want1) != NULL);
	CHECK(want2 == NULL || strstr(error, want2) != NULL);
	CHECK(!conn_is_tls(c));
	/* The conn is dead after a failed handshake. */
	char buf[16];
	CHECK(conn_read(c, buf, sizeof(buf), &error) == -1);
	CHECK(conn_write(c, "x", 1, &error) == -1);
	conn_free(&c);
	stop_server();
}

static void test_starttls_and_deflate(void)
{
	const char *error;
	int port = start_server(NULL, NULL);
	struct conn *c = connect_to(port);

	send_str(c, "HELLO\r\n");
	expect(c, "HELLO\r\n");
	send_str(c, "STARTTLS\r\n");
	/* Read only the OK line; the injected line stays in the socket and
	 * conn_start_tls() must throw it away. */
	expect(c, "OK begin TLS\r\n");
	usleep(100000);
	CHECK_OK(conn_start_tls(c, "mk-test.invalid", ca_pem, &error), error);
	CHECK(conn_is_tls(c));
	send_str(c, "SNI\r\n");
	expect(c, "SNI mk-test.invalid\r\n");

	send_str(c, "COMPRESS\r\n");
	expect(c, "OK\r\n");
	CHECK_OK(conn_start_deflate(c, &error), error);
	CHECK(conn_is_compressed(c));
	CHECK(conn_start_deflate(c, &error) == -1);
	CHECK(conn_start_tls(c, "127.0.0.1", ca_pem, &error) == -1);
	send_str(c, "small\r\n");
	expect(c, "small\r\n");
	/* Several flushes in a row with nothing new must be harmless. */
	CHECK_OK(conn_flush(c, &error), error);
	CHECK_OK(conn_flush(c, &error), error);

	unsigned long long wire0, data0, wire, data;
	conn_stats(c, &wire0, &data0);
	size_t total = 6 * 1024 * 1024;
	double t0 = now_s();
	echo_payload(c, total);
	double dt = now_s() - t0;
	conn_stats(c, &wire, &data);
	CHECK(data - data0 == total);
	CHECK(wire - wire0 < data - data0); /* compression helped, even with TLS */
	fprintf(stderr, "TLS+deflate echo: %zu bytes in %.2f s, wire %llu\n", total, dt,
	        wire - wire0);
	conn_free(&c);
	CHECK(stop_server() == 0);
}

static void test_plain_deflate(void)
{
	const char *error;
	int port = start_server(NULL, NULL);
	struct conn *c = connect_to(port);

	send_str(c, "COMPRESS\r\n");
	expect(c, "OK\r\n");
	CHECK_OK(conn_start_deflate(c, &error), error);
	send_str(c, "SNI\r\n");
	expect(c, "SNI none\r\n");
	echo_payload(c, 3 * 1024 * 1024 + 12345);
	unsigned long long wire, data;
	conn_stats(c, &wire, &data);
	CHECK(wire < data);
	conn_free(&c);
	CHECK(stop_server() == 0);
}

static void test_read_timeout(void)
{
	const char *error;
	char buf[64];
	int port = start_server(NULL, NULL);
	struct conn *c = connect_to(port);

	send_str(c, "SILENT\r\n");
	conn_set_timeout(c, 700);
	double t0 = now_s();
	CHECK(conn_read(c, buf, sizeof(buf), &error) == -1);
	double dt = now_s() - t0;
	CHECK(dt > 0.6 && dt < 3.0);
	CHECK(strstr(error, "timed out after 700 ms") != NULL);
	CHECK(strstr(error, "127.0.0.1:") != NULL);
	/* Later calls keep failing with the same message. */
	CHECK(conn_read(c, buf, sizeof(buf), &error) == -1);
	CHECK(strstr(error, "timed out") != NULL);
	conn_free(&c);
	stop_server();

	/* A TLS handshake with a server that never answers. */
	port = start_server(NULL, NULL);
	c = connect_to(port);
	send_str(c, "SILENT\r\n");
	conn_set_timeout(c, 700);
	t0 = now_s();
	CHECK(conn_start_tls(c, "127.0.0.1", ca_pem, &error) == -1);
	dt = now_s() - t0;
	CHECK(dt > 0.6 && dt < 3.0);
	CHECK(strstr(error, "TLS handshake") != NULL && strstr(error, "timed out") != NULL);
	conn_free(&c);
	stop_server();
}

static void test_bad_ca_file(void)
{
	const char *error;
	int port = start_server(NULL, NULL);
	struct conn *c = connect_to(port);
	char path[160];

	snprintf(path, sizeof(path), "%s/missing.pem", tmpdir);
	CHECK(conn_start_tls(c, "127.0.0.1", path, &error) == -1);
	CHECK(strstr(error, "cannot load CA file") != NULL);
	conn_free(&c);
	stop_server();
}

static void test_connection_refused(void)
{
	struct conn *c = NULL;
	const char *error;
	char ports[16];
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(s >= 0 && bind(s, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(getsockname(s, (struct sockaddr *)&sin, &slen) == 0);
	close(s); /* bound but never listening: the port is closed */
	snprintf(ports, sizeof(ports), "%d", ntohs(sin.sin_port));
	CHECK(conn_connect("127.0.0.1", ports, 2000, &c, &error) == -1);
	CHECK(c == NULL);
	CHECK(strstr(error, "connection refused") != NULL);
	CHECK(strstr(error, "127.0.0.1:") != NULL && strstr(error, ports) != NULL);

	CHECK(conn_connect("127.0.0.1", "no\r\nport", 2000, &c, &error) == -1);
	CHECK(c == NULL);
}

/* The peer goes away mid-stream: reads give EOF, writes give an error,
 * and nothing raises SIGPIPE (the default action would kill us). */
static void test_peer_close(bool tls)
{
	const char *error;
	int port = tls ? start_server(srv_pem, srv_key) : start_server(NULL, NULL);
	struct conn *c = connect_to(port);
	char buf[64];
	static unsigned char junk[65536];

	if (tls)
		CHECK_OK(conn_start_tls(c, "127.0.0.1", ca_pem, &error), error);
	send_str(c, "CLOSE\r\n");
	expect(c, "BYE\r\n");
	ssize_t n = conn_read(c, buf, sizeof(buf), &error);
	if (n != 0)
		fprintf(stderr, "read after close (tls=%d): %zd %s\n", tls, n, n < 0 ? error : "");
	CHECK(n == 0);
	CHECK(stop_server() == 0);
	int r = 0;
	for (int i = 0; i < 100 && r == 0; i++) {
		r = conn_write(c, junk, sizeof(junk), &error);
		if (r == 0)
			r = conn_flush(c, &error);
		usleep(1000);
	}
	CHECK(r == -1);
	CHECK(strstr(error, "127.0.0.1:") != NULL);
	conn_free(&c);
}

int main(void)
{
	parent_pid = getpid();
	signal(SIGPIPE, SIG_DFL);
	atexit(cleanup);
	make_certs();

	test_implicit_tls();
	test_tls_refused(srv_pem, srv_key, "localhost", ca_pem, "hostname mismatch", "localhost");
	test_tls_refused(srv_pem, srv_key, "mk-test.invalid.example", ca_pem, "mismatch", NULL);
	test_tls_refused(self_pem, self_key, "127.0.0.1", NULL, "verification failed for 127.0.0.1",
	                 "self");
	test_tls_refused(self_pem, self_key, "127.0.0.1", ca_pem, "verification failed", NULL);
	test_tls_refused(srv_pem, srv_key, "127.0.0.1", NULL, "verification failed",
	                 "local issuer");
	test_tls_refused(srv_pem, srv_key, "127.0.0.2", ca_pem, "IP address mismatch", NULL);
	test_starttls_and_deflate();
	test_plain_deflate();
	test_read_timeout();
	test_bad_ca_file();
	test_connection_refused();
	test_peer_close(false);
	test_peer_close(true);

	cleanup();
	printf("test-conn: all passed\n");
	return 0;
}
