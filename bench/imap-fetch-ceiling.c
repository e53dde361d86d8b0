/*
 * imap-fetch-ceiling: the least work any IMAP client must do to download a
 * whole account, used by bench/sync.sh as the ceiling that mailkeep's full
 * sync is compared with.
 *
 * usage: imap-fetch-ceiling HOST PORT USER PASSFILE CAFILE
 *
 * Connects with implicit TLS (the certificate is verified against CAFILE and
 * HOST), LOGINs, LISTs all folders, then for each selectable folder SELECTs
 * it and sends `UID FETCH 1:* BODY.PEEK[]`. Responses are only scanned for
 * literal sizes ({N}, whose bytes are skipped unread) and for the tagged
 * completion of each command; message bodies are counted and thrown away.
 * Prints "folders=F messages=M bytes=B seconds=S" on stdout, where S is the
 * wall time from TCP connect to LOGOUT.
 *
 * Exit status: 0 ok, 1 network/TLS/IMAP failure, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define READ_BUF_SIZE (1024 * 1024)
#define MAX_LINE_SIZE (64 * 1024)
#define MAX_FOLDERS 100000
#define MAX_LITERAL_SIZE ((uint64_t)1 << 40)

struct conn {
	SSL *ssl;
	char *buf; /* READ_BUF_SIZE bytes; [pos, end) is unread */
	size_t pos, end;
	unsigned int next_tag;
};

struct totals {
	uint64_t messages;
	uint64_t bytes;
};

struct folder_list {
	char **names;
	size_t count;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("imap-fetch-ceiling: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads more bytes after the unread ones, compacting the buffer first.
   Dies on EOF or error. */
static void conn_fill(struct conn *c)
{
	int n;

	if (c->pos > 0) {
		memmove(c->buf, c->buf + c->pos, c->end - c->pos);
		c->end -= c->pos;
		c->pos = 0;
	}
	if (c->end == READ_BUF_SIZE)
		die("response line longer than %d bytes", READ_BUF_SIZE);
	n = SSL_read(c->ssl, c->buf + c->end, (int)(READ_BUF_SIZE - c->end));
	if (n <= 0)
		die("connection closed by server (SSL error %d)", SSL_get_error(c->ssl, n));
	c->end += (size_t)n;
}

/* Returns the next line without its CRLF, NUL-terminated in place; valid
   until the next read. Dies if it is longer than MAX_LINE_SIZE. */
static char *conn_read_line(struct conn *c, size_t *len_r)
{
	size_t scanned = 0;

	for (;;) {
		char *start = c->buf + c->pos;
		char *lf = memchr(start + scanned, '\n', c->end - c->pos - scanned);

		if (lf != NULL) {
			size_t len = (size_t)(lf - start);

			if (len > 0 && start[len - 1] == '\r')
				len--;
			start[len] = '\0';
			c->pos += (size_t)(lf - start) + 1;
			*len_r = len;
			return start;
		}
		scanned = c->end - c->pos;
		if (scanned > MAX_LINE_SIZE)
			die("response line longer than %d bytes", MAX_LINE_SIZE);
		conn_fill(c);
	}
}

/* Discards SIZE bytes of literal data. */
static void conn_skip(struct conn *c, uint64_t size)
{
	while (size > 0) {
		size_t avail = c->end - c->pos;

		if (avail == 0) {
			int n;

			c->pos = c->end = 0;
			n = SSL_read(c->ssl, c->buf, READ_BUF_SIZE);
			if (n <= 0)
				die("connection closed inside a literal");
			c->end = (size_t)n;
			continue;
		}
		if ((uint64_t)avail > size)
			avail = (size_t)size;
		c->pos += avail;
		size -= avail;
	}
}

/* Copies SIZE bytes of literal data into out (size+1 bytes, NUL-terminated). */
static void conn_read_literal(struct conn *c, char *out, size_t size)
{
	size_t done = 0;

	while (done < size) {
		size_t avail = c->end - c->pos;

		if (avail == 0) {
			conn_fill(c);
			continue;
		}
		if (avail > size - done)
			avail = size - done;
		memcpy(out + done, c->buf + c->pos, avail);
		c->pos += avail;
		done += avail;
	}
	out[size] = '\0';
}

/* If the line ends with a literal announcement {N} or {N+}, returns 1 and
   sets size_r; else 0. */
static int line_literal_size(const char *line, size_t len, uint64_t *size_r)
{
	uint64_t size = 0, mul = 1;
	size_t i;

	if (len < 3 || line[len - 1] != '}')
		return 0;
	i = len - 1;
	if (line[i - 1] == '+')
		i--;
	if (i == 0 || line[i - 1] < '0' || line[i - 1] > '9')
		return 0;
	while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9') {
		size += (uint64_t)(line[i - 1] - '0') * mul;
		mul *= 10;
		if (mul > MAX_LITERAL_SIZE * 10)
			die("literal size too large");
		i--;
	}
	if (i == 0 || line[i - 1] != '{')
		return 0;
	if (size > MAX_LITERAL_SIZE)
		die("literal size too large");
	*size_r = size;
	return 1;
}

static void conn_write(struct conn *c, const char *data, size_t len)
{
	while (len > 0) {
		int n = SSL_write(c->ssl, data, (int)len);

		if (n <= 0)
			die("write failed (SSL error %d)", SSL_get_error(c->ssl, n));
		data += n;
		len -= (size_t)n;
	}
}

/* Appends an IMAP quoted string for s to out. Dies on CR, LF or NUL. */
static size_t quote(char *out, size_t out_size, const char *s)
{
	size_t o = 0;

	if (out_size < 3)
		die("quote buffer too small");
	out[o++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n')
			die("CR or LF in a command argument");
		if (o + 3 >= out_size)
			die("command argument too long");
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
	return o;
}

/* Handler for untagged lines: called with each line (and, when the line ends
   with a literal, after the literal has been consumed by the handler or
   skipped). Returns nothing; may read the literal itself. */
typedef void untagged_fn(struct conn *c, char *line, size_t len, void *ctx);

/* Sends "TAG CMD\r\n" and reads until the tagged response; dies unless OK. */
static void conn_command(struct conn *c, const char *cmd, untagged_fn *untagged, void *ctx)
{
	char tag[16], out[MAX_LINE_SIZE];
	int n;

	n = snprintf(tag, sizeof(tag), "a%u", c->next_tag++);
	if (n < 0 || (size_t)n >= sizeof(tag))
		die("tag overflow");
	n = snprintf(out, sizeof(out), "%s %s\r\n", tag, cmd);
	if (n < 0 || (size_t)n >= sizeof(out))
		die("command too long");
	conn_write(c, out, (size_t)n);

	for (;;) {
		size_t len, tag_len = strlen(tag);
		char *line = conn_read_line(c, &len);

		if (len > tag_len && strncmp(line, tag, tag_len) == 0 && line[tag_len] == ' ') {
			if (strncmp(line + tag_len + 1, "OK", 2) != 0)
				die("%.40s failed: %s", cmd, line + tag_len + 1);
			return;
		}
		if (untagged != NULL) {
			untagged(c, line, len, ctx);
			continue;
		}
		uint64_t size;
		while (line_literal_size(line, len, &size)) {
			conn_skip(c, size);
			line = conn_read_line(c, &len);
		}
	}
}

/* FETCH responses: every literal is a message body. */
static void fetch_untagged(struct conn *c, char *line, size_t len, void *ctx)
{
	struct totals *t = ctx;
	uint64_t size;

	while (line_literal_size(line, len, &size)) {
		t->messages++;
		t->bytes += size;
		conn_skip(c, size);
		line = conn_read_line(c, &len);
	}
}

/* Skips one IMAP string (quoted, atom or NIL) at *p; returns 0 or -1. */
static int skip_sep(char **p)
{
	char *s = *p;

	if (*s == '"') {
		for (s++; *s != '\0' && *s != '"'; s++) {
			if (*s == '\\' && s[1] != '\0')
				s++;
		}
		if (*s != '"')
			return -1;
		s++;
	} else {
		while (*s != '\0' && *s != ' ')
			s++;
	}
	*p = s;
	return 0;
}

/* LIST responses: "* LIST (flags) sep name", name quoted, atom or literal. */
static void list_untagged(struct conn *c, char *line, size_t len, void *ctx)
{
	struct folder_list *fl = ctx;
	uint64_t lit;
	char *p, *rparen, *name;
	int noselect;

	if (strncmp(line, "* LIST (", 8) != 0) {
		while (line_literal_size(line, len, &lit)) {
			conn_skip(c, lit);
			line = conn_read_line(c, &len);
		}
		return;
	}
	rparen = strchr(line + 8, ')');
	if (rparen == NULL)
		die("bad LIST response: %s", line);
	*rparen = '\0';
	noselect = strcasestr(line + 8, "\\Noselect") != NULL ||
	           strcasestr(line + 8, "\\NonExistent") != NULL;
	p = rparen + 1;
	if (*p++ != ' ' || skip_sep(&p) < 0 || *p++ != ' ')
		die("bad LIST response");

	if (line_literal_size(p, strlen(p), &lit)) {
		if (lit > 4096)
			die("folder name literal too long");
		name = malloc((size_t)lit + 1);
		if (name == NULL)
			die("out of memory");
		conn_read_literal(c, name, (size_t)lit);
		(void)conn_read_line(c, &len); /* rest of the response */
	} else if (*p == '"') {
		char *o;

		name = malloc(strlen(p) + 1);
		if (name == NULL)
			die("out of memory");
		o = name;
		for (p++; *p != '\0' && *p != '"'; p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			*o++ = *p;
		}
		*o = '\0';
	} else {
		name = strdup(p);
		if (name == NULL)
			die("out of memory");
	}
	if (noselect) {
		free(name);
		return;
	}
	if (fl->count == MAX_FOLDERS)
		die("more than %d folders", MAX_FOLDERS);
	if (fl->count % 64 == 0) {
		char **n = realloc(fl->names, (fl->count + 64) * sizeof(*n));

		if (n == NULL)
			die("out of memory");
		fl->names = n;
	}
	fl->names[fl->count++] = name;
}

/* SELECT responses: remember "* N EXISTS". */
static void select_untagged(struct conn *c, char *line, size_t len, void *ctx)
{
	unsigned long *exists = ctx;
	uint64_t lit;
	char *end;

	if (strncmp(line, "* ", 2) == 0 && line[2] >= '0' && line[2] <= '9') {
		unsigned long n = strtoul(line + 2, &end, 10);

		if (strcmp(end, " EXISTS") == 0)
			*exists = n;
	}
	while (line_literal_size(line, len, &lit)) {
		conn_skip(c, lit);
		line = conn_read_line(c, &len);
	}
}

static int tcp_connect(const char *host, const char *port)
{
	struct addrinfo hints, *res, *ai;
	int fd = -1, err;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	err = getaddrinfo(host, port, &hints, &res);
	if (err != 0)
		die("%s:%s: %s", host, port, gai_strerror(err));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("connect %s:%s: %s", host, port, strerror(errno));
	return fd;
}

static SSL *tls_connect(int fd, const char *host, const char *ca_file, SSL_CTX **ctx_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	X509_VERIFY_PARAM *param;
	unsigned char ipbuf[16];

	if (ctx == NULL)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
		die("cannot load CA file %s", ca_file);
	ssl = SSL_new(ctx);
	if (ssl == NULL)
		die("SSL_new failed");
	param = SSL_get0_param(ssl);
	if (inet_pton(AF_INET, host, ipbuf) == 1 || inet_pton(AF_INET6, host, ipbuf) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
			die("bad IP address %s", host);
	} else {
		if (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)
			die("bad host name %s", host);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("TLS handshake with %s failed: %s", host,
		    X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
	*ctx_r = ctx;
	return ssl;
}

static char *read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	char *pw;
	size_t len;

	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	pw = calloc(1, 1024);
	if (pw == NULL)
		die("out of memory");
	len = fread(pw, 1, 1023, f);
	fclose(f);
	while (len > 0 && (pw[len - 1] == '\n' || pw[len - 1] == '\r'))
		pw[--len] = '\0';
	if (memchr(pw, '\0', len) != NULL || strpbrk(pw, "\r\n") != NULL)
		die("%s: password contains NUL, CR or LF", path);
	return pw;
}

int main(int argc, char **argv)
{
	struct conn c;
	struct folder_list fl = {NULL, 0};
	struct totals t = {0, 0};
	SSL_CTX *ctx;
	char cmd[MAX_LINE_SIZE], qa[4096], qb[4096];
	char *password, *line;
	double start, seconds;
	size_t len, i;
	int fd, n;

	/* --status: the least a client must do to learn that nothing changed
	 * (login, one LIST-STATUS, logout): the ceiling for a no-change sync. */
	bool status_only = argc == 7 && strcmp(argv[6], "--status") == 0;
	if (argc != 6 && !status_only) {
		fprintf(stderr, "usage: %s HOST PORT USER PASSFILE CAFILE [--status]\n", argv[0]);
		return 2;
	}
	password = read_password(argv[4]);
	memset(&c, 0, sizeof(c));
	c.buf = malloc(READ_BUF_SIZE);
	if (c.buf == NULL)
		die("out of memory");
	c.next_tag = 1;

	start = now_seconds();
	fd = tcp_connect(argv[1], argv[2]);
	c.ssl = tls_connect(fd, argv[1], argv[5], &ctx);
	line = conn_read_line(&c, &len);
	if (strncmp(line, "* OK", 4) != 0)
		die("unexpected greeting: %s", line);

	quote(qa, sizeof(qa), argv[3]);
	quote(qb, sizeof(qb), password);
	n = snprintf(cmd, sizeof(cmd), "LOGIN %s %s", qa, qb);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		die("LOGIN too long");
	conn_command(&c, cmd, NULL, NULL);
	OPENSSL_cleanse(cmd, sizeof(cmd));
	OPENSSL_cleanse(qb, sizeof(qb));
	OPENSSL_cleanse(password, 1024);
	free(password);

	if (status_only)
		conn_command(&c,
		             "LIST \"\" \"*\" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY "
		             "HIGHESTMODSEQ))",
		             NULL, NULL);
	else
		conn_command(&c, "LIST \"\" \"*\"", list_untagged, &fl);
	for (i = 0; i < fl.count; i++) {
		unsigned long exists = 0;

		quote(qa, sizeof(qa), fl.names[i]);
		n = snprintf(cmd, sizeof(cmd), "SELECT %s", qa);
		if (n < 0 || (size_t)n >= sizeof(cmd))
			die("SELECT too long");
		conn_command(&c, cmd, select_untagged, &exists);
		if (exists > 0)
			conn_command(&c, "UID FETCH 1:* BODY.PEEK[]", fetch_untagged, &t);
	}
	conn_command(&c, "LOGOUT", NULL, NULL);
	seconds = now_seconds() - start;

	printf("folders=%zu messages=%llu bytes=%llu seconds=%.3f\n", fl.count,
	       (unsigned long long)t.messages, (unsigned long long)t.bytes, seconds);

	SSL_shutdown(c.ssl);
	SSL_free(c.ssl);
	SSL_CTX_free(ctx);
	close(fd);
	for (i = 0; i < fl.count; i++)
		free(fl.names[i]);
	free(fl.names);
	free(c.buf);
	return 0;
}
