/*
 * idle-server: a minimal IMAP server for benchmark 2 of issue #11 (the cost
 * of an idle account, bench/idle-bench.py). One thread, epoll, non-blocking
 * sockets, implicit TLS (OpenSSL, buffers released while idle). Not a
 * test, not a real server: every login succeeds, every mailbox is empty.
 *
 *   idle-server PORT CERT KEY STATSFILE
 *
 * Answers CAPABILITY, LOGIN, AUTHENTICATE PLAIN (with or without SASL-IR),
 * SELECT/EXAMINE (an empty INBOX), LIST (INBOX and Sent), STATUS, IDLE/DONE,
 * NOOP, LOGOUT; anything else gets "BAD". Advertises IDLE but not NOTIFY,
 * so clients idle on INBOX.
 *
 * Every second it appends one line to STATSFILE:
 *   UNIX-SECOND ACCEPTS LOGINS OPEN IDLING
 * (ACCEPTS and LOGINS: in that second; OPEN and IDLING: connections now),
 * so the bench can read the connect rate the clients kept to. Connections
 * are accepted by a thread of their own that does nothing else, so the
 * second an accept is counted in is the second the client connected, even
 * while the main thread is busy with TLS handshakes (a busy server would
 * otherwise drain a full backlog at once and report a burst the clients
 * never made). On start it
 * prints "listening PORT" on stdout. SIGTERM or SIGINT: exit at once
 * (the kernel closes every connection, as a crashed server would).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LINE_MAX_LEN 1024
#define TAG_MAX 64
#define CAPS "IMAP4rev1 IDLE AUTH=PLAIN SASL-IR LITERAL+ ID ENABLE"

enum conn_state {
	C_HANDSHAKE, /* TLS handshake, then the greeting */
	C_COMMAND,   /* reading command lines */
	C_AUTH,      /* AUTHENTICATE PLAIN without SASL-IR: waiting for the response */
	C_IDLE,      /* IDLE: waiting for DONE */
	C_CLOSING    /* LOGOUT answered: close once the output is written */
};

struct conn {
	int fd;
	enum conn_state state;
	SSL *ssl;
	char tag[TAG_MAX]; /* the IDLE or AUTHENTICATE command's tag */
	size_t inlen;
	char in[LINE_MAX_LEN];
	char *out; /* pending output (rare: only when SSL_write would block) */
	size_t outlen;
};

static struct conn **conns; /* by descriptor */
static size_t nconns_max;
static SSL_CTX *tls;
static int ep;
static FILE *statsf;
static unsigned long open_now, idling_now, sec_logins;
#define RING 65536                 /* seconds of accept counts, by (second - start) */
static atomic_ulong accepts[RING]; /* counted by the accept thread */
static time_t start_sec;
static int accept_pipe[2]; /* accepted descriptors, accept thread -> main */
static time_t cur_sec;
static volatile sig_atomic_t quit;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

/* One line per second that has ended (LOGINS go to the first of several
 * seconds a busy loop took; ACCEPTS are exact, by the accept thread). */
static void stats_tick(bool final)
{
	time_t now = time(NULL);
	while (cur_sec < now || final) {
		unsigned long acc = atomic_load(&accepts[(size_t)(cur_sec - start_sec) % RING]);
		fprintf(statsf, "%lld %lu %lu %lu %lu\n", (long long)cur_sec, acc, sec_logins,
		        open_now, idling_now);
		sec_logins = 0;
		cur_sec++;
		final = false;
	}
	fflush(statsf);
}

static void conn_close(struct conn *c)
{
	if (c->state == C_IDLE)
		idling_now--;
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	SSL_free(c->ssl);
	close(c->fd);
	conns[c->fd] = NULL;
	free(c->out);
	free(c);
	open_now--;
}

static void set_events(struct conn *c, bool want_write)
{
	struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0u),
	                         .data.fd = c->fd};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is pending; 0 done or waiting, -1 the connection is gone. */
static int flush_out(struct conn *c)
{
	while (c->outlen > 0) {
		int n = SSL_write(c->ssl, c->out, (int)c->outlen);
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
				set_events(c, true);
				return 0;
			}
			return -1;
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	set_events(c, false);
	return 0;
}

static int send_str(struct conn *c, const char *s)
{
	size_t len = strlen(s);
	char *o = realloc(c->out, c->outlen + len);
	if (o == NULL)
		return -1;
	memcpy(o + c->outlen, s, len);
	c->out = o;
	c->outlen += len;
	return 0;
}

/* "TAG TEXT\r\n" */
static int send_tagged(struct conn *c, const char *tag, const char *text)
{
	char line[LINE_MAX_LEN + 128];
	int n = snprintf(line, sizeof(line), "%s %s\r\n", tag, text);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	return send_str(c, line);
}

/* Next space-separated word of *p (NUL-terminated in place). */
static char *word(char **p)
{
	char *s = *p;
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return NULL;
	char *e = strchr(s, ' ');
	if (e != NULL) {
		*e = '\0';
		*p = e + 1;
	} else {
		*p = s + strlen(s);
	}
	return s;
}

static int command(struct conn *c, char *line)
{
	char *p = line;
	if (c->state == C_AUTH) { /* the SASL response: any is fine */
		c->state = C_COMMAND;
		sec_logins++;
		return send_tagged(c, c->tag, "OK [CAPABILITY " CAPS "] logged in");
	}
	if (c->state == C_IDLE) {
		if (strcasecmp(line, "DONE") != 0)
			return send_str(c, "* BAD expected DONE\r\n");
		c->state = C_COMMAND;
		idling_now--;
		return send_tagged(c, c->tag, "OK IDLE done");
	}
	char *tag = word(&p), *cmd = word(&p);
	if (tag == NULL || cmd == NULL || strlen(tag) >= TAG_MAX)
		return send_str(c, "* BAD no command\r\n");
	if (strcasecmp(cmd, "CAPABILITY") == 0) {
		if (send_str(c, "* CAPABILITY " CAPS "\r\n") < 0)
			return -1;
		return send_tagged(c, tag, "OK done");
	}
	if (strcasecmp(cmd, "LOGIN") == 0) {
		sec_logins++;
		return send_tagged(c, tag, "OK [CAPABILITY " CAPS "] logged in");
	}
	if (strcasecmp(cmd, "AUTHENTICATE") == 0) {
		char *mech = word(&p), *ir = word(&p);
		if (mech == NULL || strcasecmp(mech, "PLAIN") != 0)
			return send_tagged(c, tag, "NO unsupported mechanism");
		if (ir == NULL) {
			snprintf(c->tag, sizeof(c->tag), "%s", tag);
			c->state = C_AUTH;
			return send_str(c, "+ \r\n");
		}
		sec_logins++;
		return send_tagged(c, tag, "OK [CAPABILITY " CAPS "] logged in");
	}
	if (strcasecmp(cmd, "SELECT") == 0 || strcasecmp(cmd, "EXAMINE") == 0) {
		if (send_str(c, "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft)\r\n"
		                "* 0 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] ok\r\n"
		                "* OK [UIDNEXT 1] ok\r\n") < 0)
			return -1;
		return send_tagged(c, tag,
		                   strcasecmp(cmd, "EXAMINE") == 0 ? "OK [READ-ONLY] done"
		                                                   : "OK [READ-WRITE] done");
	}
	if (strcasecmp(cmd, "LIST") == 0) {
		if (send_str(c, "* LIST (\\HasNoChildren) \".\" INBOX\r\n"
		                "* LIST (\\HasNoChildren \\Sent) \".\" Sent\r\n") < 0)
			return -1;
		return send_tagged(c, tag, "OK done");
	}
	if (strcasecmp(cmd, "STATUS") == 0) {
		char *box = word(&p);
		char data[LINE_MAX_LEN + 128];
		int n = snprintf(data, sizeof(data),
		                 "* STATUS %s (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1 UNSEEN 0)\r\n",
		                 box != NULL ? box : "INBOX");
		if (n < 0 || (size_t)n >= sizeof(data) || send_str(c, data) < 0)
			return -1;
		return send_tagged(c, tag, "OK done");
	}
	if (strcasecmp(cmd, "IDLE") == 0) {
		snprintf(c->tag, sizeof(c->tag), "%s", tag);
		c->state = C_IDLE;
		idling_now++;
		return send_str(c, "+ idling\r\n");
	}
	if (strcasecmp(cmd, "NOOP") == 0 || strcasecmp(cmd, "ID") == 0 ||
	    strcasecmp(cmd, "ENABLE") == 0)
		return send_tagged(c, tag, "OK done");
	if (strcasecmp(cmd, "LOGOUT") == 0) {
		c->state = C_CLOSING;
		if (send_str(c, "* BYE logging out\r\n") < 0)
			return -1;
		return send_tagged(c, tag, "OK done");
	}
	return send_tagged(c, tag, "BAD unknown command");
}

/* Readable (or writable during the handshake): make progress. */
static void conn_io(struct conn *c, bool writable)
{
	if (c->state == C_HANDSHAKE) {
		int r = SSL_do_handshake(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				set_events(c, false);
			else if (e == SSL_ERROR_WANT_WRITE)
				set_events(c, true);
			else
				conn_close(c);
			return;
		}
		c->state = C_COMMAND;
		if (send_str(c, "* OK [CAPABILITY " CAPS "] idle-server ready\r\n") < 0 ||
		    flush_out(c) < 0)
			conn_close(c);
		return;
	}
	if (writable && c->outlen > 0 && flush_out(c) < 0) {
		conn_close(c);
		return;
	}
	for (;;) {
		if (c->inlen >= sizeof(c->in)) { /* no line end in 1 KB: not our client */
			conn_close(c);
			return;
		}
		int n = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - c->inlen));
		if (n <= 0) {
			int e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				break;
			conn_close(c); /* EOF, reset, TLS error */
			return;
		}
		c->inlen += (size_t)n;
		char *nl;
		while ((nl = memchr(c->in, '\n', c->inlen)) != NULL) {
			size_t len = (size_t)(nl - c->in) + 1;
			*nl = '\0';
			if (nl > c->in && nl[-1] == '\r')
				nl[-1] = '\0';
			if (command(c, c->in) < 0) {
				conn_close(c);
				return;
			}
			memmove(c->in, c->in + len, c->inlen - len);
			c->inlen -= len;
		}
	}
	if (c->outlen > 0 && flush_out(c) < 0) {
		conn_close(c);
		return;
	}
	if (c->state == C_CLOSING && c->outlen == 0)
		conn_close(c);
}

/* The accept thread: blocking accepts, counted, handed to the main thread. */
static void *accept_thread(void *arg)
{
	int lfd = *(int *)arg;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				usleep(10000);
			continue;
		}
		atomic_fetch_add(&accepts[(size_t)(time(NULL) - start_sec) % RING], 1);
		if (write(accept_pipe[1], &fd, sizeof(fd)) != (ssize_t)sizeof(fd))
			close(fd);
	}
	return NULL;
}

/* Take the descriptors the accept thread passed. */
static void take_accepted(void)
{
	int fd;
	while (read(accept_pipe[0], &fd, sizeof(fd)) == (ssize_t)sizeof(fd)) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		struct conn *c = (size_t)fd < nconns_max ? calloc(1, sizeof(*c)) : NULL;
		SSL *ssl = c != NULL ? SSL_new(tls) : NULL;
		if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
			SSL_free(ssl);
			free(c);
			close(fd);
			continue;
		}
		SSL_set_accept_state(ssl);
		c->fd = fd;
		c->ssl = ssl;
		c->state = C_HANDSHAKE;
		conns[fd] = c;
		open_now++;
		struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: idle-server PORT CERT KEY STATSFILE\n");
		return 2;
	}
	char *end;
	long port = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "idle-server: bad port %s\n", argv[1]);
		return 2;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	nconns_max = rl.rlim_cur == RLIM_INFINITY ? 1048576 : (size_t)rl.rlim_cur;
	conns = calloc(nconns_max, sizeof(*conns));
	statsf = fopen(argv[4], "a");
	tls = SSL_CTX_new(TLS_server_method());
	if (conns == NULL || statsf == NULL || tls == NULL) {
		fprintf(stderr, "idle-server: cannot set up\n");
		return 1;
	}
	SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION);
	SSL_CTX_set_mode(tls, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(tls, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(tls, 0);
	if (SSL_CTX_use_certificate_chain_file(tls, argv[2]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(tls, argv[3], SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "idle-server: cannot load the certificate or key\n");
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4096) < 0) {
		fprintf(stderr, "idle-server: cannot listen on 127.0.0.1:%ld: %s\n", port,
		        strerror(errno));
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	pthread_t at;
	if (ep < 0 || pipe2(accept_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		fprintf(stderr, "idle-server: cannot set up: %s\n", strerror(errno));
		return 1;
	}
	/* The accept thread blocks on writes only if the main thread is
	 * 16k descriptors behind: the pipe end it writes stays blocking. */
	fcntl(accept_pipe[1], F_SETFL, fcntl(accept_pipe[1], F_GETFL) & ~O_NONBLOCK);
	fcntl(accept_pipe[1], F_SETPIPE_SZ, 1 << 20);
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = accept_pipe[0]};
	epoll_ctl(ep, EPOLL_CTL_ADD, accept_pipe[0], &lev);
	struct sigaction sa_sig = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa_sig, NULL);
	sigaction(SIGINT, &sa_sig, NULL);
	signal(SIGPIPE, SIG_IGN);
	start_sec = cur_sec = time(NULL);
	if (pthread_create(&at, NULL, accept_thread, &lfd) != 0) {
		fprintf(stderr, "idle-server: cannot start the accept thread\n");
		return 1;
	}
	printf("listening %ld\n", port);
	fflush(stdout);
	struct epoll_event evs[256];
	while (!quit) {
		int n = epoll_wait(ep, evs, 256, 1000);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == accept_pipe[0]) {
				take_accepted();
				continue;
			}
			struct conn *c = conns[fd];
			if (c != NULL)
				conn_io(c, (evs[i].events & EPOLLOUT) != 0);
		}
		stats_tick(false);
	}
	stats_tick(true);
	fclose(statsf);
	return 0;
}
