/*
 * Transcript tests for src/imap/imap-client.c against a scripted fake IMAP
 * server (a forked child on 127.0.0.1, TLS by OpenSSL with certificates made
 * at run time by the openssl tool), in the manner of Dovecot's
 * test-imapc-client.c. A real Dovecot (tests/test-sync.sh) cannot be made to
 * pipeline out of order, send BYE mid-command, split a literal at a chosen
 * byte or hang, so those are scripted here byte for byte.
 *
 * A script is a list of steps the server plays in order:
 *   SEND(text)    write text (as one write)
 *   EXPECT(line)  read one line from the client (without CRLF); a different
 *                 line fails the server, and so the test
 *   PAUSE(ms)     sleep, so the next SEND reaches the client in a new read
 *   TLS()         TLS handshake as the server (after STARTTLS's OK)
 *   HANG()        stop answering: read and discard until the client closes
 *   CLOSE()       close the connection
 * After the last step the server reads until the client closes; any further
 * line from the client fails it. The client's tags are M1, M2, ... in order.
 */
#include "imap/imap-client.h"

#include <arpa/inet.h>
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

#include <openssl/ssl.h>
#include <sodium.h>

#include "imap/imap-cmd.h"
#include "test.h"

enum step_op { OP_END, OP_SEND, OP_EXPECT, OP_PAUSE, OP_TLS, OP_HANG, OP_CLOSE };

struct step {
	enum step_op op;
	const char *text;
	int ms;
};

#define SEND(t)                                                                                    \
	{                                                                                          \
		OP_SEND, (t), 0                                                                    \
	}
#define EXPECT(t)                                                                                  \
	{                                                                                          \
		OP_EXPECT, (t), 0                                                                  \
	}
#define PAUSE(n)                                                                                   \
	{                                                                                          \
		OP_PAUSE, NULL, (n)                                                                \
	}
#define TLS()                                                                                      \
	{                                                                                          \
		OP_TLS, NULL, 0                                                                    \
	}
#define HANG()                                                                                     \
	{                                                                                          \
		OP_HANG, NULL, 0                                                                   \
	}
#define CLOSE()                                                                                    \
	{                                                                                          \
		OP_CLOSE, NULL, 0                                                                  \
	}
#define END()                                                                                      \
	{                                                                                          \
		OP_END, NULL, 0                                                                    \
	}

/* SASL PLAIN of "\0alice\0secret". */
#define PLAIN_B64 "AGFsaWNlAHNlY3JldA=="

static char tmpdir[64];
static pid_t parent_pid;
static pid_t server_pid = -1;
static char ca_pem[128], srv_pem[128], srv_key[128];

/* --- Certificates and cleanup --------------------------------------------- */

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
	CHECK(snprintf(full, sizeof(full), "%s >/dev/null 2>&1 </dev/null", cmd) <
	      (int)sizeof(full));
	if (system(full) != 0) {
		fprintf(stderr, "command failed: %s\n", cmd);
		exit(1);
	}
}

/* A test CA and a server certificate for 127.0.0.1 signed by it. */
static void make_certs(void)
{
	char cmd[1024], ext[128];
	const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mk-test-imap-client-XXXXXX");
	CHECK(mkdtemp(tmpdir) != NULL);
	snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", tmpdir);
	snprintf(srv_pem, sizeof(srv_pem), "%s/srv.pem", tmpdir);
	snprintf(srv_key, sizeof(srv_key), "%s/srv.key", tmpdir);
	snprintf(ext, sizeof(ext), "%s/ext.cnf", tmpdir);
	FILE *f = fopen(ext, "w");
	CHECK(f != NULL);
	fputs("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
	      "extendedKeyUsage=serverAuth\n",
	      f);
	CHECK(fclose(f) == 0);
	CHECK(snprintf(cmd, sizeof(cmd),
	               "openssl req -x509 %s -keyout %s/ca.key -out %s -days 2 "
	               "-subj '/CN=mailkeep imap-client test CA' "
	               "-addext 'basicConstraints=critical,CA:TRUE' "
	               "-addext 'keyUsage=critical,keyCertSign,cRLSign'",
	               ec, tmpdir, ca_pem) < (int)sizeof(cmd));
	run(cmd);
	CHECK(snprintf(cmd, sizeof(cmd),
	               "openssl req -new %s -keyout %s -out %s/srv.csr -subj '/CN=127.0.0.1'", ec,
	               srv_key, tmpdir) < (int)sizeof(cmd));
	run(cmd);
	CHECK(snprintf(cmd, sizeof(cmd),
	               "openssl x509 -req -in %s/srv.csr -CA %s -CAkey %s/ca.key "
	               "-CAcreateserial -out %s -days 2 -extfile %s",
	               tmpdir, ca_pem, tmpdir, srv_pem, ext) < (int)sizeof(cmd));
	run(cmd);
}

/* --- The scripted server (child process) ---------------------------------- */

struct srv {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char pend[65536]; /* input not yet matched */
	size_t pend_len;
};

static void srv_die(const char *what, const char *detail)
{
	fprintf(stderr, "scripted server: %s%s%s\n", what, detail != NULL ? ": " : "",
	        detail != NULL ? detail : "");
	_exit(20);
}

static ssize_t srv_read(struct srv *s, void *buf, size_t len)
{
	if (s->ssl != NULL) {
		int n = SSL_read(s->ssl, buf, (int)len);
		return n > 0 ? n : (SSL_get_error(s->ssl, n) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
	}
	return read(s->fd, buf, len);
}

static void srv_write(struct srv *s, const char *text)
{
	size_t len = strlen(text);
	while (len > 0) {
		ssize_t n = s->ssl != NULL ? SSL_write(s->ssl, text, (int)len)
		                           : send(s->fd, text, len, MSG_NOSIGNAL);
		if (n <= 0)
			srv_die("write failed (client gone?)", NULL);
		text += n;
		len -= (size_t)n;
	}
}

/* Read one CRLF-terminated line into line (without CRLF); false on EOF. */
static bool srv_line(struct srv *s, char *line, size_t size)
{
	for (;;) {
		char *eol = memmem(s->pend, s->pend_len, "\r\n", 2);
		if (eol != NULL) {
			size_t n = (size_t)(eol - s->pend);
			if (n >= size)
				srv_die("client line too long", NULL);
			memcpy(line, s->pend, n);
			line[n] = '\0';
			memmove(s->pend, eol + 2, s->pend_len - n - 2);
			s->pend_len -= n + 2;
			return true;
		}
		if (s->pend_len == sizeof(s->pend))
			srv_die("client line too long", NULL);
		ssize_t n = srv_read(s, s->pend + s->pend_len, sizeof(s->pend) - s->pend_len);
		if (n <= 0)
			return false;
		s->pend_len += (size_t)n;
	}
}

static void srv_drain(struct srv *s)
{
	char buf[4096];
	while (srv_read(s, buf, sizeof(buf)) > 0)
		;
}

/* Play the steps of script (HANG and CLOSE end the process). */
static void srv_play_steps(struct srv *s, const struct step *script)
{
	char line[8192];
	for (const struct step *st = script; st->op != OP_END; st++) {
		switch (st->op) {
		case OP_SEND:
			srv_write(s, st->text);
			break;
		case OP_EXPECT:
			if (!srv_line(s, line, sizeof(line)))
				srv_die("client closed, expected", st->text);
			if (strcmp(line, st->text) != 0) {
				fprintf(stderr, "scripted server: got '%s'\n", line);
				srv_die("expected", st->text);
			}
			break;
		case OP_PAUSE:
			usleep((useconds_t)st->ms * 1000);
			break;
		case OP_TLS:
			if (s->pend_len != 0)
				srv_die("client sent data before TLS", NULL);
			s->ctx = SSL_CTX_new(TLS_server_method());
			if (s->ctx == NULL ||
			    SSL_CTX_use_certificate_chain_file(s->ctx, srv_pem) != 1 ||
			    SSL_CTX_use_PrivateKey_file(s->ctx, srv_key, SSL_FILETYPE_PEM) != 1)
				srv_die("TLS setup failed", NULL);
			s->ssl = SSL_new(s->ctx);
			SSL_set_fd(s->ssl, s->fd);
			if (SSL_accept(s->ssl) != 1)
				srv_die("TLS handshake failed", NULL);
			break;
		case OP_HANG:
			srv_drain(s);
			_exit(0);
		case OP_CLOSE:
			close(s->fd);
			_exit(0);
		case OP_END:
			break;
		}
	}
}

static void srv_play(struct srv *s, const struct step *script)
{
	char line[8192];
	srv_play_steps(s, script);
	if (srv_line(s, line, sizeof(line)))
		srv_die("unexpected line after the script", line);
	_exit(0);
}

/* Fork a server for one connection playing script; returns its port.
 * implicit_tls: TLS from the first byte (imaps). */
static int start_server(const struct step *script, bool implicit_tls)
{
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	fflush(NULL);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		alarm(30);
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
		static const struct step tls_first[] = {TLS(), END()};
		if (implicit_tls)
			srv_play_steps(&s, tls_first);
		srv_play(&s, script);
	}
	close(pfd[1]);
	int port = 0;
	CHECK(read(pfd[0], &port, sizeof(port)) == sizeof(port));
	close(pfd[0]);
	CHECK(port > 0);
	server_pid = pid;
	return port;
}

/* Wait for the server to exit (killing it after 10 s); CHECKs that it played
 * its whole script. */
static void server_done(void)
{
	int status = -1;
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(server_pid, &status, WNOHANG);
		if (r == server_pid)
			break;
		if (i == 999) {
			kill(server_pid, SIGKILL);
			waitpid(server_pid, &status, 0);
			fprintf(stderr, "scripted server did not finish\n");
		}
		usleep(10000);
	}
	server_pid = -1;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* --- The client side ------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(int port, enum imap_security sec, int timeout_ms, struct imap_client **c_r,
                      const char **error_r)
{
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%d", port);
	struct imap_client_settings set = {
	    .host = "127.0.0.1",
	    .port = portstr,
	    .security = sec,
	    .ca_file = ca_pem,
	    .timeout_ms = timeout_ms,
	    .compress = IMAP_COMPRESS_NO,
	};
	return imap_client_connect(&set, c_r, error_r);
}

/* Send a command without waiting; returns a copy of its tag. */
static void send_noop(struct imap_client *c, char tag[16])
{
	const char *error, *t;
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	OK(imap_client_send(c, &t, &error));
	snprintf(tag, 16, "%s", t);
}

/* Untagged responses seen by a command. */
struct seen {
	unsigned exists, fetches;
	char first_body[64];
	bool streamed_placeholder;
};

static int on_untagged(void *ctx, const struct imap_response *resp, const char **error_r)
{
	struct seen *s = ctx;
	(void)error_r;
	const struct imap_arg *a = resp->args;
	if (a != NULL && imap_arg_is_atom(a->next, "EXISTS"))
		s->exists++;
	if (a != NULL && imap_arg_is_atom(a->next, "FETCH") && a->next->next != NULL) {
		s->fetches++;
		/* (UID n BODY[] value) */
		const struct imap_arg *l = a->next->next->list;
		for (; l != NULL && l->next != NULL; l = l->next) {
			if (!imap_arg_is_atom(l, "BODY[]"))
				continue;
			if (l->next->type == IMAP_ARG_STRING)
				snprintf(s->first_body, sizeof(s->first_body), "%s", l->next->str);
			else if (l->next->type == IMAP_ARG_LITERAL_STREAM)
				s->streamed_placeholder = true;
		}
	}
	return 0;
}

/* imaps with capabilities in the greeting, then AUTHENTICATE PLAIN with
 * SASL-IR whose OK carries the capabilities: tag M1. */
#define LOGIN_STEPS                                                                                \
	SEND("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"),                          \
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),                                            \
	    SEND("M1 OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n")

static struct imap_client *login_session(const struct step *script, int timeout_ms)
{
	const char *error;
	struct imap_client *c = NULL;
	int port = start_server(script, true);
	OK(connect_to(port, IMAP_SECURITY_TLS, timeout_ms, &c, &error));
	OK(imap_client_login(c, "alice", "secret", &error));
	CHECK(imap_client_has_cap(c, "IDLE"));
	return c;
}

/* STARTTLS: nothing learnt before TLS survives it (greeting, untagged and
 * tagged CAPABILITY in plaintext); capabilities are asked again after TLS;
 * then AUTHENTICATE PLAIN without SASL-IR goes through a continuation. */
static void test_starttls_capabilities(void)
{
	static const struct step script[] = {
	    SEND("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN SASL-IR X-GREETING] hi\r\n"),
	    EXPECT("M1 CAPABILITY"),
	    SEND("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED AUTH=PLAIN SASL-IR "
	         "X-PRETLS\r\nM1 OK done\r\n"),
	    EXPECT("M2 STARTTLS"),
	    SEND("* CAPABILITY IMAP4rev1 SASL-IR X-DURING\r\n"
	         "M2 OK [CAPABILITY IMAP4rev1 SASL-IR X-TAGGED] begin TLS\r\n"),
	    TLS(),
	    EXPECT("M3 CAPABILITY"),
	    SEND("* CAPABILITY IMAP4rev1 AUTH=PLAIN X-POSTTLS\r\nM3 OK done\r\n"),
	    EXPECT("M4 AUTHENTICATE PLAIN"),
	    SEND("+ \r\n"),
	    EXPECT(PLAIN_B64),
	    SEND("M4 OK [CAPABILITY IMAP4rev1 X-AUTHED] logged in\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = NULL;
	int port = start_server(script, false);
	OK(connect_to(port, IMAP_SECURITY_STARTTLS, 5000, &c, &error));
	CHECK(imap_client_has_cap(c, "X-POSTTLS"));
	CHECK(imap_client_has_cap(c, "AUTH=PLAIN"));
	static const char *const stale[] = {"X-GREETING", "X-PRETLS", "X-DURING",     "X-TAGGED",
	                                    "SASL-IR",    "STARTTLS", "LOGINDISABLED"};
	for (size_t i = 0; i < sizeof(stale) / sizeof(stale[0]); i++)
		CHECK(!imap_client_has_cap(c, stale[i]));
	OK(imap_client_login(c, "alice", "secret", &error));
	CHECK_STR(imap_client_auth_mechanism(c), "PLAIN");
	/* The OK's capabilities replace the old ones; no CAPABILITY is sent. */
	CHECK(imap_client_has_cap(c, "X-AUTHED") && !imap_client_has_cap(c, "X-POSTTLS"));
	imap_client_free(&c);
	server_done();
}

/* Plaintext sent after STARTTLS's OK (in the same packet) is an injection
 * attempt: the session ends. */
static void test_starttls_injection(void)
{
	static const struct step script[] = {
	    SEND("* OK ready\r\n"),
	    EXPECT("M1 CAPABILITY"),
	    SEND("* CAPABILITY IMAP4rev1 STARTTLS\r\nM1 OK done\r\n"),
	    EXPECT("M2 STARTTLS"),
	    SEND("M2 OK begin TLS\r\n* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"),
	    HANG(),
	};
	const char *error;
	struct imap_client *c = NULL;
	int port = start_server(script, false);
	REFUSED(connect_to(port, IMAP_SECURITY_STARTTLS, 5000, &c, &error), "before TLS");
	CHECK(c == NULL);
	server_done();
}

/* imap:// to a server without STARTTLS is refused before any password. */
static void test_starttls_missing(void)
{
	static const struct step script[] = {
	    SEND("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n"),
	    EXPECT("M1 CAPABILITY"),
	    SEND("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nM1 OK done\r\n"),
	    HANG(),
	};
	const char *error;
	struct imap_client *c = NULL;
	int port = start_server(script, false);
	REFUSED(connect_to(port, IMAP_SECURITY_STARTTLS, 5000, &c, &error),
	        "does not offer STARTTLS");
	server_done();
}

/* imaps: the greeting's capabilities are used; SASL-IR sends the response
 * with the command; an OK without capabilities makes the client ask. */
static void test_authenticate_sasl_ir(void)
{
	static const struct step script[] = {
	    SEND("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"),
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),
	    SEND("M1 OK logged in\r\n"),
	    EXPECT("M2 CAPABILITY"),
	    SEND("* CAPABILITY IMAP4rev1 QRESYNC\r\nM2 OK done\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = NULL;
	int port = start_server(script, true);
	OK(connect_to(port, IMAP_SECURITY_TLS, 5000, &c, &error));
	OK(imap_client_login(c, "alice", "secret", &error));
	CHECK_STR(imap_client_auth_mechanism(c), "PLAIN");
	CHECK(imap_client_has_cap(c, "QRESYNC") && !imap_client_has_cap(c, "SASL-IR"));
	imap_client_free(&c);
	server_done();
}

/* A refused AUTHENTICATE is a clear error that names the login, not the
 * password. */
static void test_authenticate_refused(void)
{
	static const struct step script[] = {
	    SEND("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"),
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),
	    SEND("M1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = NULL;
	int port = start_server(script, true);
	OK(connect_to(port, IMAP_SECURITY_TLS, 5000, &c, &error));
	REFUSED(imap_client_login(c, "alice", "secret", &error), "authentication failed for alice");
	CHECK(strstr(error, "secret") == NULL && strstr(error, PLAIN_B64) == NULL);
	imap_client_free(&c);
	server_done();
}

/* Pipelined commands completing out of order: each wait returns when its own
 * tag completes, earlier OKs are remembered, untagged data still reaches the
 * handler; a pipelined NO for another tag ends the session clearly. */
static void test_pipelining_out_of_order(void)
{
	static const struct step script[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 NOOP"),
	    EXPECT("M3 NOOP"),
	    EXPECT("M4 NOOP"),
	    SEND("M4 OK third\r\n"),
	    PAUSE(30),
	    SEND("* 7 EXISTS\r\nM2 OK first\r\n"),
	    PAUSE(30),
	    SEND("M3 OK second\r\n"),
	    EXPECT("M5 NOOP"),
	    EXPECT("M6 NOOP"),
	    SEND("M6 NO [SERVERBUG] nope\r\nM5 OK fine\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	char t2[16], t3[16], t4[16], t5[16], t6[16];
	send_noop(c, t2);
	send_noop(c, t3);
	send_noop(c, t4);
	CHECK_STR(t2, "M2");
	CHECK_STR(t4, "M4");
	struct seen seen = {0};
	OK(imap_client_wait(c, t2, on_untagged, &seen, &error));
	CHECK(seen.exists == 1);
	OK(imap_client_wait(c, t3, on_untagged, &seen, &error));
	OK(imap_client_wait(c, t4, on_untagged, &seen, &error)); /* remembered */
	CHECK(imap_client_is_open(c));
	send_noop(c, t5);
	send_noop(c, t6);
	REFUSED(imap_client_wait(c, t5, NULL, NULL, &error), "pipelined command M6 failed");
	CHECK(!imap_client_is_open(c));
	imap_client_free(&c);
	server_done();
}

/* BYE in the middle of a command: a clear error with the server's text,
 * the session is closed, and later calls fail without I/O. */
static void test_bye_mid_command(void)
{
	static const struct step script[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 SELECT INBOX"),
	    SEND("* 3 EXISTS\r\n* BYE server shutting down\r\n"),
	    CLOSE(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct buf *b = imap_client_cmd(c, "SELECT", &error);
	CHECK(b != NULL);
	OK(imap_cmd_astring(b, "INBOX", &error));
	struct seen seen = {0};
	REFUSED(imap_client_run(c, on_untagged, &seen, &error),
	        "server closed the session: server shutting down");
	CHECK(seen.exists == 1);
	CHECK(!imap_client_is_open(c));
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	REFUSED(imap_client_run(c, NULL, NULL, &error), "server shutting down");
	imap_client_free(&c);
	server_done();
}

/* A server that stops answering: before the greeting, mid-response and
 * mid-literal. Each ends in a timeout error within a bounded time. */
static void test_hangs(void)
{
	const char *error;
	struct imap_client *c = NULL;

	static const struct step silent[] = {HANG()};
	int port = start_server(silent, false);
	double t0 = now_s();
	REFUSED(connect_to(port, IMAP_SECURITY_STARTTLS, 300, &c, &error), "timed out");
	CHECK(now_s() - t0 < 5.0);
	server_done();

	static const struct step mid_response[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 NOOP"),
	    SEND("* 1 EXISTS\r\n* 2 EXPUNGE"),
	    HANG(),
	};
	c = login_session(mid_response, 300);
	t0 = now_s();
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	REFUSED(imap_client_run(c, NULL, NULL, &error), "timed out");
	CHECK(now_s() - t0 < 5.0);
	CHECK(!imap_client_is_open(c));
	imap_client_free(&c);
	server_done();

	static const struct step mid_literal[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 NOOP"),
	    SEND("* 1 FETCH (UID 1 BODY[] {200000}\r\nFrom: a\r\n"),
	    HANG(),
	};
	c = login_session(mid_literal, 300);
	t0 = now_s();
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	REFUSED(imap_client_run(c, NULL, NULL, &error), "timed out");
	CHECK(now_s() - t0 < 5.0);
	imap_client_free(&c);
	server_done();
}

/* A literal sink that keeps what it is given. */
struct sink_state {
	uint64_t announced;
	unsigned char *data;
	size_t len, cap;
	unsigned begins, ends;
};

static int sink_begin(void *ctx, const struct imap_response *partial, uint64_t size,
                      const char **error_r)
{
	struct sink_state *s = ctx;
	(void)partial, (void)error_r;
	s->announced = size;
	s->begins++;
	return 0;
}

static int sink_data(void *ctx, const void *data, size_t len, const char **error_r)
{
	struct sink_state *s = ctx;
	if (s->len + len > s->cap) {
		*error_r = "sink overflow";
		return -1;
	}
	memcpy(s->data + s->len, data, len);
	s->len += len;
	return 0;
}

static int sink_end(void *ctx, const char **error_r)
{
	struct sink_state *s = ctx;
	(void)error_r;
	s->ends++;
	return 0;
}

/* Literals split across reads: a small one (kept in the response) split in
 * its text, a large one (streamed to the sink) split in its size and its
 * bytes, and the tagged OK split in its word. */
static void test_literal_split(void)
{
	enum { BIG = 100000, FIRST = 30000 };
	static char body[BIG + 1], part1[FIRST + 64], part2[BIG - FIRST + 64];
	for (size_t i = 0; i < BIG; i++)
		body[i] = (char)('a' + i % 26);
	snprintf(part1, sizeof(part1), "%d}\r\n%.*s", BIG, FIRST, body);
	snprintf(part2, sizeof(part2), "%s)\r\nM2 O", body + FIRST);
	const struct step script[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 NOOP"),
	    SEND("* 1 FETCH (UID 5 BODY[] {11}\r\nhello"),
	    PAUSE(50),
	    SEND(" world)\r\n* 2 FETCH (UID 6 BODY[] {"),
	    PAUSE(50),
	    SEND(part1),
	    PAUSE(50),
	    SEND(part2),
	    PAUSE(50),
	    SEND("K done\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct sink_state st = {.cap = BIG, .data = malloc(BIG)};
	CHECK(st.data != NULL);
	struct imap_literal_sink sink = {sink_begin, sink_data, sink_end, &st};
	imap_client_set_literal_sink(c, &sink);
	struct seen seen = {0};
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	OK(imap_client_run(c, on_untagged, &seen, &error));
	CHECK(seen.fetches == 2);
	CHECK_STR(seen.first_body, "hello world");
	CHECK(seen.streamed_placeholder);
	CHECK(st.begins == 1 && st.ends == 1 && st.announced == BIG);
	CHECK(st.len == BIG && memcmp(st.data, body, BIG) == 0);
	free(st.data);
	imap_client_free(&c);
	server_done();
}

int main(void)
{
	CHECK(sodium_init() >= 0);
	parent_pid = getpid();
	signal(SIGPIPE, SIG_IGN);
	atexit(cleanup);
	make_certs();
	test_starttls_capabilities();
	test_starttls_injection();
	test_starttls_missing();
	test_authenticate_sasl_ir();
	test_authenticate_refused();
	test_pipelining_out_of_order();
	test_bye_mid_command();
	test_hangs();
	test_literal_split();
	TEST_DONE("test-imap-client");
}
