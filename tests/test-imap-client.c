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
	static char line[16384];
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
	static char line[16384];
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

/* A tagged answer for a command not sent yet (or already answered) is a
 * protocol error, not a completion remembered for later: a server cannot
 * make a command look done before it is sent. */
static void test_tag_not_sent(void)
{
	static const struct step ahead[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 NOOP"),
	    SEND("M3 OK [APPENDUID 1 1] fake\r\nM2 OK\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(ahead, 5000);
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	REFUSED(imap_client_run(c, NULL, NULL, &error), "tagged response for no open command (M3)");
	CHECK(!imap_client_is_open(c));
	imap_client_free(&c);
	server_done();

	static const struct step twice[] = {
	    LOGIN_STEPS,
	    EXPECT("M2 NOOP"),
	    SEND("M2 OK\r\n"),
	    EXPECT("M3 NOOP"),
	    SEND("M2 OK again\r\nM3 OK\r\n"),
	    END(),
	};
	c = login_session(twice, 5000);
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	OK(imap_client_run(c, NULL, NULL, &error));
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	REFUSED(imap_client_run(c, NULL, NULL, &error), "tagged response for no open command (M2)");
	imap_client_free(&c);
	server_done();
}

/* The session still works: a NOOP goes through. */
static void check_noop(struct imap_client *c)
{
	const char *error;
	CHECK(imap_client_is_open(c));
	CHECK(imap_client_cmd(c, "NOOP", &error) != NULL);
	OK(imap_client_run(c, NULL, NULL, &error));
}

/* Deep pipelining (sync sends a STATUS per folder before waiting for the
 * last): 300 commands in flight, answered in order and out of it. */
static void test_pipeline_deep(void)
{
	enum { N = 300 };
	static char expects[N][16];
	static char answers[N * 16 + 64];
	struct step script[N + 8];
	size_t k = 0;
	const struct step login[] = {LOGIN_STEPS};
	for (size_t i = 0; i < sizeof(login) / sizeof(login[0]); i++)
		script[k++] = login[i];
	size_t alen = 0;
	for (int i = 0; i < N; i++) {
		snprintf(expects[i], sizeof(expects[i]), "M%d NOOP", i + 2);
		script[k++] = (struct step)EXPECT(expects[i]);
	}
	/* The last one first, then the rest in order. */
	alen += (size_t)snprintf(answers + alen, sizeof(answers) - alen, "M%d OK\r\n", N + 1);
	for (int i = 0; i < N - 1; i++)
		alen +=
		    (size_t)snprintf(answers + alen, sizeof(answers) - alen, "M%d OK\r\n", i + 2);
	CHECK(alen < sizeof(answers));
	script[k++] = (struct step)SEND(answers);
	char last[16];
	snprintf(last, sizeof(last), "M%d NOOP", N + 2);
	script[k++] = (struct step)EXPECT(last);
	char last_ok[16];
	snprintf(last_ok, sizeof(last_ok), "M%d OK\r\n", N + 2);
	script[k++] = (struct step)SEND(last_ok);
	script[k++] = (struct step)END();
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	char tag[16], first[16] = "";
	for (int i = 0; i < N; i++) {
		send_noop(c, tag);
		if (i == 0)
			memcpy(first, tag, sizeof(first));
	}
	OK(imap_client_wait(c, first, NULL, NULL, &error));
	OK(imap_client_wait(c, tag, NULL, NULL, &error)); /* answered first, remembered */
	check_noop(c);
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

/* --- The replay commands (imap-commands.c) -------------------------------- */

/* Login whose tagged OK lists caps (IDLE always: login_session checks it). */
#define LOGIN_CAPS(caps)                                                                           \
	SEND("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"),                          \
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),                                            \
	    SEND("M1 OK [CAPABILITY IMAP4rev1 IDLE " caps "] logged in\r\n")

#define FULL_CAPS "UIDPLUS MOVE CONDSTORE LITERAL+"

static void uidset_of(struct imap_uidset *s, const char *text)
{
	const char *error;
	imap_uidset_init(s);
	OK(imap_uidset_parse(text, UINT32_MAX, SIZE_MAX, s, &error));
}

/* IMAP_CMD_FAILED with an error containing fragment. */
#define FAILED(call, fragment)                                                                     \
	do {                                                                                       \
		error = NULL;                                                                      \
		CHECK((call) == IMAP_CMD_FAILED);                                                  \
		CHECK(error != NULL);                                                              \
		if (strstr(error, fragment) == NULL) {                                             \
			fprintf(stderr, "%s:%d: error '%s' lacks '%s'\n", __FILE__, __LINE__,      \
			        error, fragment);                                                  \
			exit(1);                                                                   \
		}                                                                                  \
	} while (0)

/* SELECT with CONDSTORE: the state comes back; EXAMINE; NOMODSEQ; a refusal
 * keeps its code; a server that sends no UIDVALIDITY is refused. */
static void test_cmd_select(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS("CONDSTORE"),
	    EXPECT("M2 SELECT \"Sent Items\" (CONDSTORE)"),
	    SEND("* 172 EXISTS\r\n* 1 RECENT\r\n* OK [UNSEEN 12] x\r\n"
	         "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n* OK [UIDNEXT 4392] next\r\n"
	         "* FLAGS (\\Answered \\Seen)\r\n* OK [HIGHESTMODSEQ 715194045007] h\r\n"
	         "M2 OK [READ-WRITE] SELECT completed\r\n"),
	    EXPECT("M3 EXAMINE INBOX"),
	    SEND("* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n* OK [NOMODSEQ] none\r\n"
	         "* OK [HIGHESTMODSEQ 5] h\r\nM3 OK [READ-ONLY] done\r\n"),
	    EXPECT("M4 SELECT Gone (CONDSTORE)"),
	    SEND("M4 NO [NONEXISTENT] Mailbox doesn't exist\r\n"),
	    EXPECT("M5 SELECT INBOX"),
	    SEND("* 3 EXISTS\r\nM5 OK done\r\n"),
	    EXPECT("M6 NOOP"),
	    SEND("M6 OK\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_select_info info;
	OK(imap_client_select(c, "Sent Items", true, &info, &error));
	CHECK(info.exists == 172 && info.uidvalidity == 3857529045u && info.uidnext == 4392 &&
	      info.highestmodseq == 715194045007ull && !info.readonly && !info.nomodseq);
	OK(imap_client_examine(c, "INBOX", false, &info, &error));
	CHECK(info.exists == 0 && info.uidvalidity == 1 && info.nomodseq &&
	      info.highestmodseq == 0 && info.readonly);
	FAILED(imap_client_select(c, "Gone", true, &info, &error), "[NONEXISTENT]");
	CHECK_STR(imap_client_last_code(c), "NONEXISTENT");
	CHECK(info.uidvalidity == 1); /* untouched */
	FAILED(imap_client_select(c, "INBOX", false, &info, &error), "no UIDVALIDITY");
	check_noop(c);
	imap_client_free(&c);
	server_done();
}

/* Leaving the selected mailbox: UNSELECT when offered, else a failing
 * EXAMINE (never CLOSE, which would expunge). */
static void test_cmd_unselect(void)
{
	static const struct step with[] = {
	    LOGIN_CAPS("UNSELECT"),
	    EXPECT("M2 UNSELECT"),
	    SEND("M2 OK done\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(with, 5000);
	OK(imap_client_unselect(c, &error));
	imap_client_free(&c);
	server_done();
	static const struct step without[] = {
	    LOGIN_CAPS("UIDPLUS"),
	    EXPECT("M2 EXAMINE mailkeep-unselect-9f3c2e71"),
	    SEND("M2 NO [NONEXISTENT] Mailbox doesn't exist\r\n"),
	    EXPECT("M3 NOOP"),
	    SEND("M3 OK\r\n"),
	    END(),
	};
	c = login_session(without, 5000);
	OK(imap_client_unselect(c, &error));
	check_noop(c);
	imap_client_free(&c);
	server_done();
}

/* UID STORE: UNCHANGEDSINCE and the MODIFIED answer; without
 * UNCHANGEDSINCE; arguments and capabilities checked before sending. */
static void test_cmd_store(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID STORE 1:5,9,12:14 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Seen "
	           "$label)"),
	    SEND("* 3 FETCH (UID 3 MODSEQ (320162342))\r\n"
	         "M2 OK [MODIFIED 9,13] Conditional STORE failed\r\n"),
	    EXPECT("M3 UID STORE 7 -FLAGS.SILENT (\\Flagged)"),
	    SEND("M3 OK done\r\n"),
	    EXPECT("M4 UID STORE 7 FLAGS (\\Deleted)"),
	    SEND("* 2 FETCH (UID 7 FLAGS (\\Deleted))\r\nM4 OK done\r\n"),
	    EXPECT("M5 UID STORE 8 +FLAGS.SILENT ()"),
	    SEND("M5 NO [CANNOT] read-only mailbox\r\n"),
	    EXPECT("M6 NOOP"),
	    SEND("M6 OK\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_uidset uids, seven, eight, empty = IMAP_UIDSET_INIT;
	uidset_of(&uids, "1:5,9,12:14");
	uidset_of(&seven, "7");
	uidset_of(&eight, "8");
	struct imap_uidset modified = IMAP_UIDSET_INIT;
	OK(imap_client_uid_store(c, &uids, "+FLAGS.SILENT", "(\\Seen $label)", 320162338, &modified,
	                         &error));
	struct buf t;
	buf_init(&t, 1024);
	CHECK(imap_uidset_format(&modified, &t) == 0);
	CHECK_STR(buf_str(&t), "9,13");
	CHECK(imap_uidset_add(&modified, 99) == 0);
	OK(imap_client_uid_store(c, &seven, "-FLAGS.SILENT", "(\\Flagged)", 0, &modified, &error));
	CHECK(imap_uidset_is_empty(&modified));
	OK(imap_client_uid_store(c, &seven, "FLAGS", "(\\Deleted)", 0, NULL, &error));
	/* Refused before sending: bad op, bad flag lists, an empty set sends
	 * nothing. */
	FAILED(imap_client_uid_store(c, &seven, "+FLAGS.SILENT\r\nM9 DELETE INBOX", "(\\Seen)", 0,
	                             NULL, &error),
	       "invalid STORE operation");
	static const char *const bad_flags[] = {
	    "\\Seen", "(\\Seen", "(\\Seen)\r\nX", "(\\Seen  $x)", "( \\Seen)",     "(\\Seen )",
	    "(\\)",   "(a\"b)",  "((x))",         "(\\Se{n)",     "(caf\xc3\xa9)",
	};
	for (size_t i = 0; i < sizeof(bad_flags) / sizeof(bad_flags[0]); i++)
		FAILED(imap_client_uid_store(c, &seven, "+FLAGS", bad_flags[i], 0, NULL, &error),
		       "cannot send UID STORE");
	OK(imap_client_uid_store(c, &empty, "+FLAGS", "(\\Seen)", 0, NULL, &error));
	FAILED(imap_client_uid_store(c, &eight, "+FLAGS.SILENT", "()", 0, NULL, &error),
	       "read-only mailbox");
	CHECK_STR(imap_client_last_code(c), "CANNOT");
	check_noop(c);
	imap_client_free(&c);
	server_done();
	buf_free(&t);
	imap_uidset_free(&modified);
	imap_uidset_free(&uids);
	imap_uidset_free(&seven);
	imap_uidset_free(&eight);
}

/* UID FETCH (UID FLAGS MODSEQ): one answer per asked UID, the last of
 * repeated ones, unsolicited ones for other UIDs ignored; a malformed one
 * ends the session. */
static void test_cmd_fetch_flags(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID FETCH 7,9 (UID FLAGS MODSEQ)"),
	    SEND("* 1 FETCH (UID 9 FLAGS (\\Seen $label) MODSEQ (12))\r\n"
	         "* 5 FETCH (FLAGS (\\Deleted) UID 500)\r\n"
	         "* 2 FETCH (MODSEQ (13) UID 7 FLAGS ())\r\n"
	         "* 1 FETCH (UID 9 MODSEQ (14) FLAGS (\\Seen))\r\n"
	         "* 3 FETCH (UID 7 MODSEQ (15))\r\n"
	         "M2 OK done\r\n"),
	    EXPECT("M3 UID FETCH 7,9 (UID FLAGS MODSEQ)"),
	    SEND("* 1 FETCH (UID 9 FLAGS (\\Seen) MODSEQ 12)\r\nM3 OK\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_uidset uids;
	uidset_of(&uids, "7,9");
	struct imap_uid_flags *m = NULL;
	size_t n = 0;
	OK(imap_client_uid_fetch_flags(c, &uids, true, &m, &n, &error));
	CHECK(n == 2 && m[0].uid == 7 && m[0].modseq == 13 && m[1].uid == 9 && m[1].modseq == 14);
	CHECK_STR(m[0].flags, "");
	CHECK_STR(m[1].flags, "\\Seen");
	imap_uid_flags_free(&m, n);
	CHECK(m == NULL);
	REFUSED(imap_client_uid_fetch_flags(c, &uids, true, &m, &n, &error), "malformed MODSEQ");
	CHECK(!imap_client_is_open(c));
	imap_client_free(&c);
	server_done();

	static const struct step plain[] = {
	    LOGIN_CAPS("UIDPLUS"),
	    EXPECT("M2 UID FETCH 7,9 (UID FLAGS)"),
	    SEND("* 1 FETCH (UID 9 FLAGS (\\Recent \\Answered \\recent))\r\nM2 OK\r\n"),
	    END(),
	};
	c = login_session(plain, 5000);
	OK(imap_client_uid_fetch_flags(c, &uids, true, &m, &n, &error));
	CHECK(n == 1 && m[0].uid == 9 && m[0].modseq == 0);
	CHECK_STR(m[0].flags, "\\Answered");
	imap_uid_flags_free(&m, n);
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&uids);
}

/* A server without CONDSTORE gets no UNCHANGEDSINCE; a MODIFIED naming a
 * UID we did not store, or a malformed one, ends the session. */
static void test_cmd_store_hostile(void)
{
	static const struct step plain[] = {
	    LOGIN_CAPS("UIDPLUS"),
	    EXPECT("M2 NOOP"),
	    SEND("M2 OK\r\n"),
	    EXPECT("M3 UID STORE 1:3 +FLAGS.SILENT (\\Seen)"),
	    SEND("M3 OK [MODIFIED 4] x\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(plain, 5000);
	struct imap_uidset uids, modified = IMAP_UIDSET_INIT;
	uidset_of(&uids, "1:3");
	FAILED(imap_client_uid_store(c, &uids, "+FLAGS.SILENT", "(\\Seen)", 5, &modified, &error),
	       "does not offer CONDSTORE");
	check_noop(c);
	REFUSED(imap_client_uid_store(c, &uids, "+FLAGS.SILENT", "(\\Seen)", 0, &modified, &error),
	        "MODIFIED names a UID that was not stored");
	CHECK(!imap_client_is_open(c));
	imap_client_free(&c);
	server_done();

	static const struct step huge[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID STORE 1:3 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen)"),
	    SEND("M2 OK [MODIFIED 1:4294967295] x\r\n"),
	    END(),
	};
	c = login_session(huge, 5000);
	REFUSED(imap_client_uid_store(c, &uids, "+FLAGS.SILENT", "(\\Seen)", 9, &modified, &error),
	        "more UIDs than allowed");
	imap_client_free(&c);
	server_done();

	static const struct step junk[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID STORE 1:3 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen)"),
	    SEND("M2 OK [MODIFIED (1)] x\r\n"),
	    END(),
	};
	c = login_session(junk, 5000);
	REFUSED(imap_client_uid_store(c, &uids, "+FLAGS.SILENT", "(\\Seen)", 9, &modified, &error),
	        "malformed MODIFIED");
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&uids);
	imap_uidset_free(&modified);
}

/* A set whose text passes the line limit goes out in several commands, each
 * line within IMAP_CLIENT_LINE_MAX, together naming every UID once; the
 * MODIFIED of a later piece is checked against that piece. */
static void test_cmd_store_pieces(void)
{
	const char *suffix = " +FLAGS.SILENT (\\Seen)";
	struct imap_uidset uids = IMAP_UIDSET_INIT;
	for (uint32_t u = 1; u <= 12001; u += 2)
		CHECK(imap_uidset_add(&uids, u) == 0);
	/* The expected lines, by a greedy fill written independently. */
	static char lines[16][IMAP_CLIENT_LINE_MAX + 64];
	int nlines = 0;
	uint32_t u = 1;
	while (u <= 12001) {
		char *l = lines[nlines];
		int len = snprintf(l, sizeof(lines[0]), "M%d UID STORE ", nlines + 2);
		bool first = true;
		while (u <= 12001) {
			char item[16];
			int il = snprintf(item, sizeof(item), "%s%u", first ? "" : ",", u);
			if (len + il + (int)strlen(suffix) + 2 > IMAP_CLIENT_LINE_MAX)
				break;
			memcpy(l + len, item, (size_t)il + 1);
			len += il;
			first = false;
			u += 2;
		}
		snprintf(l + len, sizeof(lines[0]) - (size_t)len, "%s", suffix);
		nlines++;
		CHECK(nlines < 15);
	}
	CHECK(nlines >= 3);
	struct step script[64];
	size_t k = 0;
	const struct step login[] = {LOGIN_CAPS(FULL_CAPS)};
	for (size_t i = 0; i < sizeof(login) / sizeof(login[0]); i++)
		script[k++] = login[i];
	static char oks[16][64];
	for (int i = 0; i < nlines; i++) {
		script[k++] = (struct step)EXPECT(lines[i]);
		/* The second piece reports one of its own UIDs. */
		if (i == 1) {
			const char *comma = strchr(lines[i] + strlen("M3 UID STORE "), ',');
			CHECK(comma != NULL);
			snprintf(oks[i], sizeof(oks[i]), "M%d OK [MODIFIED %.*s] x\r\n", i + 2,
			         (int)(comma - lines[i] - strlen("M3 UID STORE ")),
			         lines[i] + strlen("M3 UID STORE "));
		} else {
			snprintf(oks[i], sizeof(oks[i]), "M%d OK done\r\n", i + 2);
		}
		script[k++] = (struct step)SEND(oks[i]);
	}
	script[k++] = (struct step)END();
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_uidset modified = IMAP_UIDSET_INIT;
	OK(imap_client_uid_store(c, &uids, "+FLAGS.SILENT", "(\\Seen)", 0, &modified, &error));
	CHECK(imap_uidset_size(&modified) == 1);
	CHECK(imap_uidset_contains(&uids, modified.ranges[0].lo) && modified.ranges[0].lo > 1000);
	for (int i = 0; i < nlines; i++)
		CHECK(strlen(lines[i]) + 2 <= IMAP_CLIENT_LINE_MAX);
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&modified);
	imap_uidset_free(&uids);
}

/* UID COPY: COPYUID in the tagged OK pairs the UIDs; a server without
 * UIDPLUS answers none; TRYCREATE; a malformed or hostile COPYUID is
 * ignored (valid false) and the session goes on. */
static void test_cmd_copy(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID COPY 304,319:320 Archive"),
	    SEND("* 3 EXISTS\r\nM2 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
	    EXPECT("M3 UID COPY 304 \"My \\\"Folder\\\\\""),
	    SEND("M3 OK Done\r\n"),
	    EXPECT("M4 UID COPY 304 Nope"),
	    SEND("M4 NO [TRYCREATE] Mailbox doesn't exist: Nope\r\n"),
	    EXPECT("M5 UID COPY 304,319:320 Archive"),
	    SEND("M5 OK [COPYUID 38505 1:4294967295 1:4294967295] Done\r\n"),
	    EXPECT("M6 UID COPY 304,319:320 Archive"),
	    SEND("M6 OK [COPYUID 38505 304,319:320 3956:3957] Done\r\n"),
	    EXPECT("M7 UID COPY 304,319:320 Archive"),
	    SEND("M7 OK [COPYUID 38505 320] Done\r\n"),
	    EXPECT("M8 NOOP"),
	    SEND("M8 OK\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_uidset uids, one;
	uidset_of(&uids, "304,319:320");
	uidset_of(&one, "304");
	struct imap_copyuid cu = {0};
	OK(imap_client_uid_copy(c, &uids, "Archive", &cu, &error));
	CHECK(cu.valid && cu.uidvalidity == 38505 && cu.count == 3);
	CHECK(imap_copyuid_lookup(&cu, 304) == 3956 && imap_copyuid_lookup(&cu, 320) == 3958);
	imap_copyuid_free(&cu);
	OK(imap_client_uid_copy(c, &one, "My \"Folder\\", &cu, &error));
	CHECK(!cu.valid && cu.count == 0);
	FAILED(imap_client_uid_copy(c, &one, "Nope", &cu, &error), "[TRYCREATE]");
	CHECK_STR(imap_client_last_code(c), "TRYCREATE");
	CHECK(!cu.valid);
	for (int i = 0; i < 3; i++) {
		OK(imap_client_uid_copy(c, &uids, "Archive", &cu, &error));
		CHECK(!cu.valid && cu.count == 0 && cu.pairs == NULL);
	}
	/* Nothing sent for names that cannot be sent. */
	FAILED(imap_client_uid_copy(c, &one, "a\r\nM9 LOGOUT", &cu, &error), "CR, LF");
	check_noop(c);
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&uids);
	imap_uidset_free(&one);
}

/* UID MOVE (RFC 6851): COPYUID in an untagged OK before the EXPUNGEs, or
 * with QRESYNC a VANISHED; several untagged COPYUIDs add up; without MOVE
 * nothing is sent. */
static void test_cmd_move(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID MOVE 42:43 Trash"),
	    SEND("* OK [COPYUID 432432 42:43 222:223] Moved UIDs.\r\n* 2 EXPUNGE\r\n"
	         "* 2 EXPUNGE\r\nM2 OK Move completed\r\n"),
	    EXPECT("M3 UID MOVE 42:43,50 Trash"),
	    SEND("* OK [COPYUID 432432 43,42 301:302] part\r\n* VANISHED 42:43\r\n"
	         "* OK [COPYUID 432432 50 303] part\r\n* VANISHED 50\r\n"
	         "* OK [HIGHESTMODSEQ 99] x\r\nM3 OK done\r\n"),
	    EXPECT("M4 UID MOVE 42:43 Trash"),
	    SEND("* OK [COPYUID 432432 42:43 222:223] x\r\n"
	         "* VANISHED 1:4294967295\r\n* 99999 EXPUNGE\r\nM4 OK done\r\n"),
	    EXPECT("M5 UID MOVE 42:43 Trash"),
	    SEND("* 1 EXPUNGE\r\nM5 OK [COPYUID 432432 42:43 5:6] tagged this time\r\n"),
	    EXPECT("M6 UID MOVE 42:43 Trash"),
	    SEND("* NO [CANNOT] some not moved\r\nM6 NO [CANNOT] cannot move\r\n"),
	    EXPECT("M7 UID MOVE 42:43 Trash"),
	    SEND("* OK [COPYUID 432432 42:43 222:223] x\r\n* 1 EXPUNGE\r\n* 1 EXPUNGE\r\n"
	         "M7 OK [COPYUID 432432 42:43 222:223] said twice\r\n"),
	    EXPECT("M8 UID MOVE 42:43 Trash"),
	    SEND("* OK [COPYUID 432432 42:43 222:223] x\r\n"
	         "M8 OK [COPYUID 432432 42:43 300:301] contradicts\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_uidset uids, three;
	uidset_of(&uids, "42:43");
	uidset_of(&three, "42:43,50");
	struct imap_copyuid cu = {0};
	OK(imap_client_uid_move(c, &uids, "Trash", &cu, &error));
	CHECK(cu.valid && cu.count == 2 && imap_copyuid_lookup(&cu, 42) == 222 &&
	      imap_copyuid_lookup(&cu, 43) == 223);
	imap_copyuid_free(&cu);
	OK(imap_client_uid_move(c, &three, "Trash", &cu, &error));
	CHECK(cu.valid && cu.count == 3 && imap_copyuid_lookup(&cu, 43) == 301 &&
	      imap_copyuid_lookup(&cu, 42) == 302 && imap_copyuid_lookup(&cu, 50) == 303);
	imap_copyuid_free(&cu);
	OK(imap_client_uid_move(c, &uids, "Trash", &cu, &error));
	CHECK(cu.valid && cu.count == 2);
	imap_copyuid_free(&cu);
	OK(imap_client_uid_move(c, &uids, "Trash", &cu, &error));
	CHECK(cu.valid && imap_copyuid_lookup(&cu, 43) == 6);
	imap_copyuid_free(&cu);
	FAILED(imap_client_uid_move(c, &uids, "Trash", &cu, &error), "cannot move");
	CHECK_STR(imap_client_last_code(c), "CANNOT");
	imap_copyuid_free(&cu);
	OK(imap_client_uid_move(c, &uids, "Trash", &cu, &error));
	CHECK(cu.valid && cu.count == 2 && imap_copyuid_lookup(&cu, 43) == 223);
	imap_copyuid_free(&cu);
	OK(imap_client_uid_move(c, &uids, "Trash", &cu, &error));
	CHECK(!cu.valid && cu.count == 0);
	imap_copyuid_free(&cu);
	imap_client_free(&c);
	server_done();

	static const struct step no_move[] = {
	    LOGIN_CAPS("UIDPLUS"),
	    EXPECT("M2 NOOP"),
	    SEND("M2 OK\r\n"),
	    END(),
	};
	c = login_session(no_move, 5000);
	FAILED(imap_client_uid_move(c, &uids, "Trash", &cu, &error), "does not offer MOVE");
	CHECK(!cu.valid);
	check_noop(c);
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&uids);
	imap_uidset_free(&three);
}

/* A server offering IMAP4rev2 alone has MOVE, UIDPLUS, UNSELECT and
 * LITERAL- built in (RFC 9051 appendix E); one offering IMAP4rev1 as well
 * speaks rev1 (we never ENABLE rev2) and gets only what it lists. */
static void test_cmd_imap4rev2(void)
{
	static const struct step rev2[] = {
	    SEND("* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN SASL-IR] ready\r\n"),
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),
	    SEND("M1 OK [CAPABILITY IMAP4rev2 IDLE] logged in\r\n"),
	    EXPECT("M2 UID MOVE 5 {5+}"),
	    EXPECT("Caf\xc3\xa9"),
	    SEND("* OK [COPYUID 9 5 1] moved\r\n* 1 EXPUNGE\r\nM2 OK done\r\n"),
	    EXPECT("M3 UID EXPUNGE 5"),
	    SEND("M3 OK done\r\n"),
	    EXPECT("M4 UNSELECT"),
	    SEND("M4 OK done\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(rev2, 5000);
	struct imap_uidset five;
	uidset_of(&five, "5");
	struct imap_copyuid cu = {0};
	OK(imap_client_uid_move(c, &five, "Caf\xc3\xa9", &cu, &error));
	CHECK(cu.valid && imap_copyuid_lookup(&cu, 5) == 1);
	imap_copyuid_free(&cu);
	OK(imap_client_uid_expunge(c, &five, &error));
	OK(imap_client_unselect(c, &error));
	imap_client_free(&c);
	server_done();

	static const struct step both[] = {
	    SEND("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 AUTH=PLAIN SASL-IR] ready\r\n"),
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),
	    SEND("M1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 IDLE] logged in\r\n"),
	    EXPECT("M2 NOOP"),
	    SEND("M2 OK\r\n"),
	    END(),
	};
	c = login_session(both, 5000);
	FAILED(imap_client_uid_move(c, &five, "x", &cu, &error), "does not offer MOVE");
	FAILED(imap_client_uid_expunge(c, &five, &error), "does not offer UIDPLUS");
	check_noop(c);
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&five);
}

/* UID EXPUNGE needs UIDPLUS; EXPUNGE's untagged answers are read. */
static void test_cmd_expunge(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID EXPUNGE 3000:3002"),
	    SEND("* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n* 3 EXPUNGE\r\nM2 OK done\r\n"),
	    EXPECT("M3 EXPUNGE"),
	    SEND("* 1 EXPUNGE\r\nM3 OK done\r\n"),
	    EXPECT("M4 UID EXPUNGE 7"),
	    SEND("M4 NO [EXPUNGEISSUED] busy\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	struct imap_uidset uids, seven;
	uidset_of(&uids, "3000:3002");
	uidset_of(&seven, "7");
	OK(imap_client_uid_expunge(c, &uids, &error));
	OK(imap_client_expunge(c, &error));
	FAILED(imap_client_uid_expunge(c, &seven, &error), "busy");
	CHECK_STR(imap_client_last_code(c), "EXPUNGEISSUED");
	imap_client_free(&c);
	server_done();

	static const struct step plain[] = {
	    LOGIN_CAPS("MOVE"),
	    EXPECT("M2 EXPUNGE"),
	    SEND("M2 OK\r\n"),
	    END(),
	};
	c = login_session(plain, 5000);
	FAILED(imap_client_uid_expunge(c, &uids, &error), "does not offer UIDPLUS");
	OK(imap_client_expunge(c, &error));
	imap_client_free(&c);
	server_done();
	imap_uidset_free(&uids);
	imap_uidset_free(&seven);
}

/* APPEND: LITERAL+ with date and APPENDUID; a synchronizing literal waits
 * for "+"; an 8-bit name goes as a literal of its own; a refusal instead of
 * "+" keeps the session in step; a malformed APPENDUID counts as none. */
static void test_cmd_append(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 APPEND INBOX (\\Seen $x) \" 6-Dec-2025 05:46:40 +0000\" {5+}"),
	    EXPECT("hello"),
	    SEND("M2 OK [APPENDUID 38505 3955] APPEND completed\r\n"),
	    EXPECT("M3 APPEND Sent {5+}"),
	    EXPECT("hello"),
	    SEND("M3 OK [APPENDUID 38505 1:2] odd\r\n"),
	    END(),
	};
	static const struct step binary[] = {
	    LOGIN_CAPS(FULL_CAPS " BINARY"),
	    EXPECT("M2 APPEND INBOX ~{5+}"),
	    EXPECT("he"), /* the server reads the 5 bytes "he\0lo" as a line here */
	    SEND("M2 OK [APPENDUID 1 2] done\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	uint32_t uv = 1, uid = 1;
	OK(imap_client_append_uid(c, "INBOX", "(\\Seen $x)", 1765000000, "hello", 5, &uv, &uid,
	                          &error));
	CHECK(uv == 38505 && uid == 3955);
	OK(imap_client_append_uid(c, "Sent", NULL, 0, "hello", 5, &uv, &uid, &error));
	CHECK(uv == 0 && uid == 0);
	/* NUL bytes need BINARY: refused before sending. */
	FAILED(imap_client_append(c, "INBOX", NULL, "he\0lo", 5, &error), "does not offer BINARY");
	imap_client_free(&c);
	server_done();
	c = login_session(binary, 5000);
	OK(imap_client_append_uid(c, "INBOX", NULL, 0, "he\0lo", 5, &uv, &uid, &error));
	CHECK(uid == 2);
	imap_client_free(&c);
	server_done();

	static const struct step sync[] = {
	    LOGIN_CAPS("UIDPLUS"),
	    EXPECT("M2 APPEND Drafts {5}"),
	    SEND("* 4 EXISTS\r\n+ go ahead\r\n"),
	    EXPECT("hello"),
	    SEND("M2 OK done\r\n"),
	    EXPECT("M3 APPEND {7}"),
	    SEND("+ name\r\n"),
	    EXPECT("Gr\xc3\xbc\xc3\x9f"
	           "e (\\Draft) {5}"),
	    SEND("+ body\r\n"),
	    EXPECT("hello"),
	    SEND("M3 OK [APPENDUID 7 8] done\r\n"),
	    EXPECT("M4 APPEND Nope {5}"),
	    SEND("M4 NO [TRYCREATE] no such mailbox\r\n"),
	    EXPECT("M5 APPEND {7}"),
	    SEND("M5 BAD [CANNOT] no UTF-8 here\r\n"),
	    EXPECT("M6 NOOP"),
	    SEND("M6 OK\r\n"),
	    END(),
	};
	c = login_session(sync, 5000);
	OK(imap_client_append_uid(c, "Drafts", NULL, 0, "hello", 5, &uv, &uid, &error));
	CHECK(uv == 0 && uid == 0);
	OK(imap_client_append_uid(c,
	                          "Gr\xc3\xbc\xc3\x9f"
	                          "e",
	                          "(\\Draft)", 0, "hello", 5, NULL, &uid, &error));
	CHECK(uid == 8);
	FAILED(imap_client_append(c, "Nope", NULL, "hello", 5, &error), "no such mailbox");
	CHECK_STR(imap_client_last_code(c), "TRYCREATE");
	FAILED(imap_client_append(c,
	                          "Gr\xc3\xbc\xc3\x9f"
	                          "e",
	                          NULL, "hello", 5, &error),
	       "no UTF-8 here");
	CHECK_STR(imap_client_last_code(c), "CANNOT");
	FAILED(imap_client_append_uid(c, "INBOX", "(\\Seen", 0, "hello", 5, NULL, NULL, &error),
	       "cannot send APPEND");
	FAILED(imap_client_append_uid(c, "INBOX", NULL, -70000000000000ll, "hello", 5, NULL, NULL,
	                              &error),
	       "date out of range");
	check_noop(c);
	imap_client_free(&c);
	server_done();
}

/* The mailbox commands, with names as atoms, quoted strings and literals
 * (LITERAL+ and synchronizing), and their refusal codes. */
static void test_cmd_mailboxes(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 CREATE Projects/Alpha"),
	    SEND("M2 OK created\r\n"),
	    EXPECT("M3 CREATE \"Sent Items\""),
	    SEND("M3 NO [ALREADYEXISTS] Mailbox already exists\r\n"),
	    EXPECT("M4 RENAME {5+}"),
	    EXPECT("Caf\xc3\xa9 \"New \\\\ name\""),
	    SEND("M4 NO [NONEXISTENT] no such mailbox\r\n"),
	    EXPECT("M5 DELETE Trash"),
	    SEND("M5 NO [INUSE] in use\r\n"),
	    EXPECT("M6 SUBSCRIBE \"\""),
	    SEND("M6 NO [CANNOT] bad name\r\n"),
	    EXPECT("M7 UNSUBSCRIBE INBOX"),
	    SEND("M7 OK\r\n"),
	    EXPECT("M8 CREATE x"),
	    SEND("M8 NO [LIMIT] too many mailboxes\r\n"),
	    EXPECT("M9 CREATE x"),
	    SEND("M9 NO [X-\xfe\xff"
	         "0123456789012345678901234567890123456789] weird\r\n"),
	    EXPECT("M10 CREATE x"),
	    SEND("M10 NO no code\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	OK(imap_client_create(c, "Projects/Alpha", &error));
	CHECK_STR(imap_client_last_code(c), "");
	FAILED(imap_client_create(c, "Sent Items", &error), "[ALREADYEXISTS]");
	CHECK_STR(imap_client_last_code(c), "ALREADYEXISTS");
	FAILED(imap_client_rename(c, "Caf\xc3\xa9", "New \\ name", &error), "no such mailbox");
	CHECK_STR(imap_client_last_code(c), "NONEXISTENT");
	FAILED(imap_client_delete(c, "Trash", &error), "in use");
	CHECK_STR(imap_client_last_code(c), "INUSE");
	FAILED(imap_client_subscribe(c, "", &error), "bad name");
	CHECK_STR(imap_client_last_code(c), "CANNOT");
	OK(imap_client_unsubscribe(c, "INBOX", &error));
	CHECK_STR(imap_client_last_code(c), "");
	FAILED(imap_client_create(c, "x", &error), "too many");
	CHECK_STR(imap_client_last_code(c), "LIMIT");
	/* A hostile code is cut and made printable, never trusted. */
	FAILED(imap_client_create(c, "x", &error), "weird");
	const char *code = imap_client_last_code(c);
	CHECK(strlen(code) < 32 && strncmp(code, "X-??0123", 8) == 0);
	FAILED(imap_client_create(c, "x", &error), "no code");
	CHECK_STR(imap_client_last_code(c), "");
	/* Refused before sending. */
	FAILED(imap_client_create(c, "a\rb", &error), "CR, LF");
	FAILED(imap_client_rename(c, "a", "b\n", &error), "CR, LF");
	imap_client_free(&c);
	server_done();

	static const struct step sync[] = {
	    LOGIN_CAPS("UIDPLUS"),     EXPECT("M2 RENAME {5}"), SEND("+ ok\r\n"),
	    EXPECT("Caf\xc3\xa9 {6}"), SEND("+ ok\r\n"),        EXPECT("Caf\xc3\xa9s"),
	    SEND("M2 OK renamed\r\n"), EXPECT("M3 CREATE {5}"), SEND("M3 NO [CANNOT] no\r\n"),
	    EXPECT("M4 NOOP"),         SEND("M4 OK\r\n"),       END(),
	};
	c = login_session(sync, 5000);
	OK(imap_client_rename(c, "Caf\xc3\xa9", "Caf\xc3\xa9s", &error));
	FAILED(imap_client_create(c, "Caf\xc3\xa9", &error), "[CANNOT]");
	check_noop(c);
	imap_client_free(&c);
	server_done();
}

/* UID SEARCH: results sorted without repeats, CONDSTORE's (MODSEQ n) read
 * over, header values quoted or sent as a UTF-8 literal; malformed or
 * unbounded answers end the session. */
static void test_cmd_search(void)
{
	static const struct step script[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID SEARCH DELETED"),
	    SEND("* SEARCH 9 3 7\r\n* SEARCH 3 1 (MODSEQ 917162500)\r\nM2 OK done\r\n"),
	    EXPECT("M3 UID SEARCH HEADER Message-ID <abc@example.org>"),
	    SEND("* SEARCH\r\nM3 OK done\r\n"),
	    EXPECT("M4 UID SEARCH HEADER Message-ID \"<a \\\"b\\\\c\\\" (d)>\""),
	    SEND("* SEARCH 12\r\nM4 OK done\r\n"),
	    EXPECT("M5 UID SEARCH CHARSET UTF-8 HEADER Subject {5+}"),
	    EXPECT("Caf\xc3\xa9"),
	    SEND("* SEARCH 4\r\nM5 OK done\r\n"),
	    EXPECT("M6 UID SEARCH UNDELETED"),
	    SEND("M6 NO [BADCHARSET] x\r\n"),
	    EXPECT("M7 UID SEARCH ALL"),
	    SEND("* SEARCH 1 two 3\r\nM7 OK\r\n"),
	    END(),
	};
	const char *error;
	struct imap_client *c = login_session(script, 5000);
	uint32_t *uids = (uint32_t *)1;
	size_t n = 99;
	OK(imap_client_uid_search(c, "DELETED", &uids, &n, &error));
	CHECK(n == 4 && uids[0] == 1 && uids[1] == 3 && uids[2] == 7 && uids[3] == 9);
	free(uids);
	OK(imap_client_uid_search_header(c, "Message-ID", "<abc@example.org>", &uids, &n, &error));
	CHECK(n == 0 && uids == NULL);
	OK(imap_client_uid_search_header(c, "Message-ID", "<a \"b\\c\" (d)>", &uids, &n, &error));
	CHECK(n == 1 && uids[0] == 12);
	free(uids);
	OK(imap_client_uid_search_header(c, "Subject", "Caf\xc3\xa9", &uids, &n, &error));
	CHECK(n == 1 && uids[0] == 4);
	free(uids);
	FAILED(imap_client_uid_search_header(c, "Message-ID", "a\r\nM9 LOGOUT", &uids, &n, &error),
	       "CR, LF");
	FAILED(imap_client_uid_search_header(c, "Message ID", "x", &uids, &n, &error),
	       "cannot send UID SEARCH");
	FAILED(imap_client_uid_search_header(c, "\\Seen", "x", &uids, &n, &error),
	       "invalid header name");
	FAILED(imap_client_uid_search(c, "UNDELETED", &uids, &n, &error), "[BADCHARSET]");
	REFUSED(imap_client_uid_search(c, "ALL", &uids, &n, &error), "malformed SEARCH");
	CHECK(!imap_client_is_open(c));
	imap_client_free(&c);
	server_done();
	/* IMAP4rev2 answers with ESEARCH only (RFC 9051 7.3.4): the ALL set is
	 * read (bounded); other commands' ESEARCH and MIN/MAX/COUNT ignored. */
	static const struct step rev2[] = {
	    SEND("* OK [CAPABILITY IMAP4rev2 AUTH=PLAIN SASL-IR] ready\r\n"),
	    EXPECT("M1 AUTHENTICATE PLAIN " PLAIN_B64),
	    SEND("M1 OK [CAPABILITY IMAP4rev2 IDLE] logged in\r\n"),
	    EXPECT("M2 UID SEARCH DELETED"),
	    SEND("* ESEARCH (TAG \"M1\") UID ALL 100:200\r\n"
	         "* ESEARCH (TAG \"M2\") UID MIN 3 ALL 9,3:5 MAX 9 COUNT 4\r\nM2 OK\r\n"),
	    EXPECT("M3 UID SEARCH HEADER Message-ID <a@b>"),
	    SEND("* ESEARCH (TAG \"M3\") UID COUNT 0\r\nM3 OK\r\n"),
	    EXPECT("M4 UID SEARCH ALL"),
	    SEND("* ESEARCH (TAG \"M4\") UID ALL 1:4294967295\r\nM4 OK\r\n"),
	    END(),
	};
	c = login_session(rev2, 5000);
	OK(imap_client_uid_search(c, "DELETED", &uids, &n, &error));
	CHECK(n == 4 && uids[0] == 3 && uids[2] == 5 && uids[3] == 9);
	free(uids);
	OK(imap_client_uid_search_header(c, "Message-ID", "<a@b>", &uids, &n, &error));
	CHECK(n == 0 && uids == NULL);
	REFUSED(imap_client_uid_search(c, "ALL", &uids, &n, &error), "more UIDs than allowed");
	imap_client_free(&c);
	server_done();

	static const struct step no_uid[] = {
	    LOGIN_CAPS(FULL_CAPS),
	    EXPECT("M2 UID SEARCH ALL"),
	    SEND("* ESEARCH (TAG \"M2\") ALL 1:3\r\nM2 OK\r\n"),
	    END(),
	};
	c = login_session(no_uid, 5000);
	REFUSED(imap_client_uid_search(c, "ALL", &uids, &n, &error), "without UID");
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
	test_tag_not_sent();
	test_pipeline_deep();
	test_bye_mid_command();
	test_hangs();
	test_literal_split();
	test_cmd_select();
	test_cmd_unselect();
	test_cmd_store();
	test_cmd_store_hostile();
	test_cmd_store_pieces();
	test_cmd_fetch_flags();
	test_cmd_copy();
	test_cmd_move();
	test_cmd_expunge();
	test_cmd_imap4rev2();
	test_cmd_append();
	test_cmd_mailboxes();
	test_cmd_search();
	TEST_DONE("test-imap-client");
}
