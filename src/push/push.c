/* Push from the provider (push.h): idle IMAP connections on one libevent
 * loop. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "push.h"
#include "../imap/imap-parser.h"
#include "../imap/imap-url.h"

#define PUSH_PASSWORD_MAX 1024
#define PUSH_TOKEN_MAX 16384 /* access tokens: Microsoft's JWTs run to a few KB */
#define PUSH_FOLDERS_MAX 10000

/*
 * The session of one account (internal states; push_state is what callers
 * see):
 *
 *   BACKOFF --timer--> QUEUED --slot--> CONNECTING --TLS up--> GREETING
 *   GREETING --OK [CAPABILITY]--> LOGIN | --OK--> CAPABILITY --> LOGIN
 *   (imap://: GREETING --> STARTTLS --> TLS --> CAPABILITY)
 *   LOGIN --OK--> [CAPABILITY] --> EXAMINE --> NOTIFY | SWEEP_LIST
 *   SWEEP_LIST --> SWEEP_STATUS --> IDLE_START --+ idling--> IDLE
 *   IDLE --renewal/sweep timer--> DONE --OK--> SWEEP_LIST | IDLE_START
 *   any failure --> BACKOFF;  login refused --> STOPPED
 */
enum sess {
	S_BACKOFF,
	S_QUEUED,
	S_CONNECTING,
	S_GREETING,
	S_STARTTLS,
	S_CAPABILITY,
	S_LOGIN,
	S_CAPABILITY2,
	S_EXAMINE,
	S_NOTIFY,
	S_SWEEP_LIST,
	S_SWEEP_STATUS,
	S_IDLE_START,
	S_IDLE,
	S_DONE,
	S_STOPPED,
};

enum {
	CAP_IDLE = 1 << 0,
	CAP_NOTIFY = 1 << 1,
	CAP_SASL_IR = 1 << 2,
	CAP_AUTH_PLAIN = 1 << 3,
	CAP_LOGINDISABLED = 1 << 4,
	CAP_CONDSTORE = 1 << 5,
	CAP_STARTTLS = 1 << 6,
	CAP_KNOWN = 1 << 7, /* a capability list was seen */
	CAP_AUTH_XOAUTH2 = 1 << 8,
	CAP_AUTH_OAUTHBEARER = 1 << 9,
};

struct folder {
	char *name;
	uint64_t messages, uidnext, uidvalidity, modseq;
	bool known, listed;
};

struct ctx_entry {
	char *ca_file; /* NULL: system trust only */
	SSL_CTX *ctx;
	struct ctx_entry *next;
};

struct account {
	struct push_loop *loop;
	int64_t id;
	char *host, *port, *login, *ca_file;
	bool starttls;
	bool oauth;         /* log in by SASL XOAUTH2/OAUTHBEARER with an access token */
	bool oauth_ir_due;  /* AUTHENTICATE sent without SASL-IR: the server asks for it */
	bool oauth_refused; /* the last access token was refused: one retry with a new one */
	enum sess sess;
	enum push_state pub;
	struct bufferevent *bev;
	struct event *timer;
	struct imap_parser *parser;
	unsigned caps;
	unsigned tag, wait_tag; /* the tagged response that ends the state */
	unsigned failures;      /* consecutive, for the backoff */
	bool throttled;         /* the server asked us to wait */
	bool bye;
	int64_t next_sweep_ms, idle_since_ms;
	double pub_idle_since; /* CLOCK_MONOTONIC seconds: became idle (under mu) */
	/* INBOX as last seen; the other folders from the sweeps. */
	uint64_t inbox_exists, inbox_uidnext, inbox_uidvalidity, inbox_modseq;
	bool inbox_known;
	bool notify_on; /* NOTIFY SET accepted on this connection */
	bool swept;     /* a sweep finished: a folder new to the next one is a change */
	uint64_t sel_exists, sel_uidnext, sel_uidvalidity, sel_modseq;
	struct folder *folders;
	size_t nfolders;
	struct account *next;
};

enum op_kind { OP_ADD, OP_REMOVE };
struct op {
	enum op_kind kind;
	struct account *acct; /* OP_ADD */
	int64_t id;           /* OP_REMOVE */
	struct op *next;
};

struct push_loop {
	struct push_settings set;
	struct push_callbacks cb;
	struct event_base *base;
	struct evdns_base *dns;
	struct event *wake;
	struct ctx_entry *ctxs;
	pthread_mutex_t mu; /* ops, counts, the public states */
	struct op *ops, **ops_tail;
	struct account *accounts; /* loop thread only (pub read under mu) */
	unsigned counts[PUSH_STATE_COUNT];
	uint64_t logins;
	int64_t next_slot_ms;
	int64_t tokens_milli, tokens_at_ms; /* the connect rate's bucket (take_token) */
	int stopping;                       /* under mu */
};

static const struct imap_parser_limits push_limits = {
    .max_line = 16384,
    .inline_literal_max = 8192,
    .max_literal = 8192,
    .max_depth = 8,
    .max_args = 4096,
};

static void sess_enter(struct account *a, enum sess s);
static void setup_bev(struct account *a);
static void fail(struct account *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

const char *push_state_name(enum push_state s)
{
	switch (s) {
	case PUSH_STATE_CONNECTING:
		return "connecting";
	case PUSH_STATE_AUTHENTICATING:
		return "authenticating";
	case PUSH_STATE_IDLE:
		return "idle";
	case PUSH_STATE_BACKOFF:
		return "backoff";
	case PUSH_STATE_STOPPED:
		return "stopped";
	case PUSH_STATE_COUNT:
		break;
	}
	return "unknown";
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum push_state pub_of(enum sess s)
{
	switch (s) {
	case S_BACKOFF:
		return PUSH_STATE_BACKOFF;
	case S_QUEUED:
	case S_CONNECTING:
	case S_GREETING:
	case S_STARTTLS:
		return PUSH_STATE_CONNECTING;
	case S_CAPABILITY:
	case S_LOGIN:
		return PUSH_STATE_AUTHENTICATING;
	case S_STOPPED:
		return PUSH_STATE_STOPPED;
	default:
		return PUSH_STATE_IDLE;
	}
}

static void timer_in(struct account *a, int64_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	evtimer_add(a->timer, &tv);
}

/* ---- TLS ---------------------------------------------------------------- */

/* The system's trust anchors, as src/net/conn.c loads them: the hashed
 * directory lazily, the bundle only without one. */
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

/* One SSL_CTX per CA file, shared by the accounts that use it. */
static SSL_CTX *tls_ctx(struct push_loop *loop, const char *ca_file)
{
	for (struct ctx_entry *e = loop->ctxs; e != NULL; e = e->next)
		if ((e->ca_file == NULL && ca_file == NULL) ||
		    (e->ca_file != NULL && ca_file != NULL && strcmp(e->ca_file, ca_file) == 0))
			return e->ctx;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* An idle connection keeps no record buffers (about 34 KB each way
	 * otherwise); they come back for the few bytes of a notification. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!tls_load_system_trust(ctx) ||
	    (ca_file != NULL && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)) {
		SSL_CTX_free(ctx);
		ERR_clear_error();
		return NULL;
	}
	struct ctx_entry *e = calloc(1, sizeof(*e));
	if (e == NULL || (ca_file != NULL && (e->ca_file = strdup(ca_file)) == NULL)) {
		free(e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	e->ctx = ctx;
	e->next = loop->ctxs;
	loop->ctxs = e;
	return ctx;
}

static SSL *tls_new(struct account *a)
{
	SSL_CTX *ctx = tls_ctx(a->loop, a->ca_file);
	if (ctx == NULL)
		return NULL;
	SSL *ssl = SSL_new(ctx);
	if (ssl == NULL)
		return NULL;
	unsigned char bin[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, a->host, bin) == 1 || inet_pton(AF_INET6, a->host, bin) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), a->host) != 1)
			goto err;
	} else {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(ssl, a->host) != 1 || SSL_set1_host(ssl, a->host) != 1)
			goto err;
	}
	return ssl;
err:
	SSL_free(ssl);
	return NULL;
}

/* ---- bookkeeping -------------------------------------------------------- */

static void set_pub(struct account *a, enum push_state p)
{
	struct push_loop *loop = a->loop;
	if (p == a->pub)
		return;
	pthread_mutex_lock(&loop->mu);
	loop->counts[a->pub]--;
	loop->counts[p]++;
	a->pub = p;
	if (p == PUSH_STATE_IDLE)
		a->pub_idle_since = (double)now_ms() / 1000;
	pthread_mutex_unlock(&loop->mu);
}

static void close_conn(struct account *a)
{
	if (a->bev != NULL) {
		/* Not SSL_shutdown: a dead peer would stall us; the server
		 * sees a closed TCP connection, as after a network loss. */
		bufferevent_free(a->bev);
		a->bev = NULL;
	}
	imap_parser_free(&a->parser);
	evtimer_del(a->timer);
}

static void changed(struct account *a, const char *folder)
{
	if (a->loop->cb.changed != NULL)
		a->loop->cb.changed(a->loop->cb.ctx, a->id, folder);
}

static void report(struct account *a, bool stopped, const char *msg)
{
	if (a->loop->cb.report != NULL)
		a->loop->cb.report(a->loop->cb.ctx, a->id, stopped, msg);
}

/* Wait, then reconnect: full jitter over [base/2, base], base doubling
 * from backoff_min_ms (throttle_min_ms when the server asked for a pause)
 * up to backoff_max_ms. */
static void backoff(struct account *a)
{
	const struct push_settings *set = &a->loop->set;
	uint64_t base = a->throttled ? set->throttle_min_ms : set->backoff_min_ms;
	for (unsigned i = 1; i < a->failures && base < set->backoff_max_ms; i++)
		base *= 2;
	if (base > set->backoff_max_ms)
		base = set->backoff_max_ms;
	uint64_t delay = base / 2 + randombytes_uniform((uint32_t)(base / 2 + 1));
	close_conn(a);
	a->sess = S_BACKOFF;
	set_pub(a, PUSH_STATE_BACKOFF);
	timer_in(a, (int64_t)delay);
}

static void fail(struct account *a, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	a->failures++;
	report(a, false, msg);
	backoff(a);
}

static void stop(struct account *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stop(struct account *a, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	close_conn(a);
	a->sess = S_STOPPED;
	set_pub(a, PUSH_STATE_STOPPED);
	report(a, true, msg);
}

/* ---- sending ------------------------------------------------------------ */

static void send_cmd(struct account *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_cmd(struct account *a, const char *fmt, ...)
{
	char line[2048];
	int n = snprintf(line, sizeof(line), "P%u ", ++a->tag);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)(n + m) + 2 >= sizeof(line)) {
		fail(a, "command too long");
		return;
	}
	memcpy(line + n + m, "\r\n", 2);
	a->wait_tag = a->tag;
	if (a->loop->cb.trace != NULL)
		a->loop->cb.trace(a->loop->cb.ctx, a->id, false, line, (size_t)(n + m) + 2);
	bufferevent_write(a->bev, line, (size_t)(n + m) + 2);
}

static void wipe_cb(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	sodium_free(arg);
}

/* A mailbox name as a quoted string, or false if it cannot be one (8-bit,
 * CR, LF, NUL: such a folder is left out of the sweep). */
static bool quote(const char *s, char *out, size_t size)
{
	size_t o = 0;
	if (size < 3)
		return false;
	out[o++] = '"';
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x80 || c == '\r' || c == '\n')
			return false;
		if (o + 4 >= size)
			return false;
		if (c == '"' || c == '\\')
			out[o++] = '\\';
		out[o++] = (char)c;
	}
	out[o++] = '"';
	out[o] = '\0';
	return true;
}

/* Hand a line built in locked memory to libevent, to be wiped and freed once
 * written. */
static void send_secret_line(struct account *a, char *line, size_t len)
{
	if (evbuffer_add_reference(bufferevent_get_output(a->bev), line, len, wipe_cb, line) < 0) {
		sodium_free(line);
		fail(a, "out of memory");
	}
}

/* The SASL initial response for OAUTHBEARER (RFC 7628) or XOAUTH2 with a
 * fresh access token from the credential callback, base64, in locked memory
 * followed by CRLF; NULL after fail() or stop(). *len_r: with the CRLF. */
static char *oauth_response(struct account *a, bool bearer, size_t *len_r)
{
	struct push_loop *loop = a->loop;
	char err[256] = "";
	char *tok = sodium_malloc(PUSH_TOKEN_MAX);
	size_t ulen = strlen(a->login);
	size_t rawsize = 3 * ulen + PUSH_TOKEN_MAX + strlen(a->host) + strlen(a->port) + 64;
	char *raw = sodium_malloc(rawsize);
	size_t b64size = sodium_base64_encoded_len(rawsize, sodium_base64_VARIANT_ORIGINAL) + 2;
	char *b64 = sodium_malloc(b64size);
	if (tok == NULL || raw == NULL || b64 == NULL) {
		sodium_free(tok);
		sodium_free(raw);
		sodium_free(b64);
		fail(a, "out of memory");
		return NULL;
	}
	int r = loop->cb.credential(loop->cb.ctx, a->id, tok, PUSH_TOKEN_MAX, err, sizeof(err));
	if (r == 0 && (strchr(a->login, '\x01') != NULL || strpbrk(tok, " \x01\r\n") != NULL)) {
		snprintf(err, sizeof(err),
		         "the login or access token holds characters SASL "
		         "cannot carry");
		r = -2;
	}
	if (r < 0) {
		sodium_free(tok);
		sodium_free(raw);
		sodium_free(b64);
		if (r == -2)
			stop(a, "credential: %s", err);
		else
			fail(a, "credential: %s", err);
		return NULL;
	}
	/* XOAUTH2:     "user=" U ^A "auth=Bearer " T ^A ^A
	 * OAUTHBEARER: "n,a=" U' "," ^A "host=" H ^A "port=" P ^A
	 *              "auth=Bearer " T ^A ^A  (U' with ',' -> =2C, '=' -> =3D) */
	size_t n = 0;
	if (bearer) {
		memcpy(raw, "n,a=", 4);
		n = 4;
		for (const char *p = a->login; *p != '\0'; p++) {
			if (*p == ',' || *p == '=') {
				memcpy(raw + n, *p == ',' ? "=2C" : "=3D", 3);
				n += 3;
			} else {
				raw[n++] = *p;
			}
		}
		int m = snprintf(raw + n, rawsize - n,
		                 ",\x01"
		                 "host=%s\x01"
		                 "port=%s\x01"
		                 "auth=Bearer %s\x01\x01",
		                 a->host, a->port, tok);
		n = m < 0 ? rawsize : n + (size_t)m;
	} else {
		int m = snprintf(raw, rawsize,
		                 "user=%s\x01"
		                 "auth=Bearer %s\x01\x01",
		                 a->login, tok);
		n = m < 0 ? rawsize : (size_t)m;
	}
	sodium_free(tok);
	if (n >= rawsize) {
		sodium_free(raw);
		sodium_free(b64);
		stop(a, "the SASL response does not fit");
		return NULL;
	}
	sodium_bin2base64(b64, b64size - 2, (const unsigned char *)raw, n,
	                  sodium_base64_VARIANT_ORIGINAL);
	sodium_free(raw);
	size_t len = strlen(b64);
	memcpy(b64 + len, "\r\n", 2);
	*len_r = len + 2;
	return b64;
}

/* Log in by AUTHENTICATE OAUTHBEARER (preferred) or XOAUTH2, the initial
 * response inline where SASL-IR is offered, else after the server's
 * continuation (oauth_continue). */
static void send_login_oauth(struct account *a)
{
	bool bearer = a->caps & CAP_AUTH_OAUTHBEARER;
	if (!bearer && !(a->caps & CAP_AUTH_XOAUTH2)) {
		stop(a, "the server offers neither AUTHENTICATE OAUTHBEARER nor XOAUTH2 (is OAuth "
		        "enabled for IMAP on this server?)");
		return;
	}
	const char *mech = bearer ? "OAUTHBEARER" : "XOAUTH2";
	char head[64];
	int h = snprintf(head, sizeof(head), "P%u AUTHENTICATE %s", ++a->tag, mech);
	a->wait_tag = a->tag;
	pthread_mutex_lock(&a->loop->mu);
	a->loop->logins++;
	pthread_mutex_unlock(&a->loop->mu);
	if (!(a->caps & CAP_SASL_IR)) {
		a->oauth_ir_due = true;
		bufferevent_write(a->bev, head, (size_t)h);
		bufferevent_write(a->bev, "\r\n", 2);
		return;
	}
	size_t len;
	char *resp = oauth_response(a, bearer, &len);
	if (resp == NULL)
		return;
	a->oauth_ir_due = false;
	bufferevent_write(a->bev, head, (size_t)h);
	bufferevent_write(a->bev, " ", 1);
	send_secret_line(a, resp, len);
}

/* A continuation while logging in by OAuth: the initial response it asks
 * for, or an error challenge (the token refused), answered with the dummy
 * response (RFC 7628 3.2.3: %x01 for OAUTHBEARER; an empty line for
 * XOAUTH2) so the tagged NO follows. */
static void oauth_continue(struct account *a)
{
	bool bearer = a->caps & CAP_AUTH_OAUTHBEARER;
	if (a->oauth_ir_due) {
		a->oauth_ir_due = false;
		size_t len;
		char *resp = oauth_response(a, bearer, &len);
		if (resp != NULL)
			send_secret_line(a, resp, len);
		return;
	}
	bufferevent_write(a->bev, bearer ? "AQ==\r\n" : "\r\n", bearer ? 6 : 2);
}

/* Log in: AUTHENTICATE PLAIN with SASL-IR where offered, else LOGIN with
 * quoted strings. The password lives only in locked memory: the command
 * line is built there and handed to libevent by reference, and wiped and
 * freed (sodium_free) once it is written to TLS. */
static void send_login(struct account *a)
{
	struct push_loop *loop = a->loop;
	char err[256] = "";
	if (a->oauth) {
		send_login_oauth(a);
		return;
	}
	char *pw = sodium_malloc(PUSH_PASSWORD_MAX);
	size_t cap = 2 * PUSH_PASSWORD_MAX + 1024;
	char *line = sodium_malloc(cap);
	if (pw == NULL || line == NULL) {
		sodium_free(pw);
		sodium_free(line);
		fail(a, "out of memory");
		return;
	}
	int r = loop->cb.credential(loop->cb.ctx, a->id, pw, PUSH_PASSWORD_MAX, err, sizeof(err));
	if (r < 0) {
		sodium_free(pw);
		sodium_free(line);
		if (r == -2)
			stop(a, "credential: %s", err);
		else
			fail(a, "credential: %s", err);
		return;
	}
	size_t plen = strnlen(pw, PUSH_PASSWORD_MAX);
	size_t llen = strlen(a->login);
	int n = snprintf(line, cap, "P%u ", ++a->tag);
	bool ok = true;
	if ((a->caps & (CAP_SASL_IR | CAP_AUTH_PLAIN)) == (CAP_SASL_IR | CAP_AUTH_PLAIN) &&
	    llen + plen + 2 <= PUSH_PASSWORD_MAX) {
		/* \0login\0password, base64: built in locked memory too. */
		unsigned char *raw = sodium_malloc(llen + plen + 2);
		ok = raw != NULL;
		if (ok) {
			raw[0] = 0;
			memcpy(raw + 1, a->login, llen);
			raw[1 + llen] = 0;
			memcpy(raw + 2 + llen, pw, plen);
			size_t b64 = sodium_base64_encoded_len(llen + plen + 2,
			                                       sodium_base64_VARIANT_ORIGINAL);
			ok = (size_t)n + 20 + b64 + 2 < cap;
			if (ok) {
				memcpy(line + n, "AUTHENTICATE PLAIN ", 19);
				sodium_bin2base64(line + n + 19, b64, raw, llen + plen + 2,
				                  sodium_base64_VARIANT_ORIGINAL);
				n += 19 + (int)strlen(line + n + 19);
			}
			sodium_free(raw);
		}
	} else if (a->caps & CAP_LOGINDISABLED) {
		sodium_free(pw);
		sodium_free(line);
		stop(a, "the server refuses LOGIN here (LOGINDISABLED) and offers no "
		        "AUTHENTICATE PLAIN");
		return;
	} else {
		char *ql = sodium_malloc(2 * PUSH_PASSWORD_MAX + 3);
		char *qp = sodium_malloc(2 * PUSH_PASSWORD_MAX + 3);
		ok = ql != NULL && qp != NULL && quote(a->login, ql, 2 * PUSH_PASSWORD_MAX + 3) &&
		     quote(pw, qp, 2 * PUSH_PASSWORD_MAX + 3);
		if (ok) {
			int m = snprintf(line + n, cap - (size_t)n, "LOGIN %s %s", ql, qp);
			ok = m > 0 && (size_t)(n + m) + 2 < cap;
			n += m;
		}
		sodium_free(ql);
		sodium_free(qp);
	}
	sodium_free(pw);
	if (!ok) {
		sodium_free(line);
		stop(a, "the login name or password cannot be sent as a quoted string "
		        "and the server offers no AUTHENTICATE PLAIN with SASL-IR");
		return;
	}
	memcpy(line + n, "\r\n", 2);
	a->wait_tag = a->tag;
	pthread_mutex_lock(&loop->mu);
	loop->logins++;
	pthread_mutex_unlock(&loop->mu);
	if (evbuffer_add_reference(bufferevent_get_output(a->bev), line, (size_t)n + 2, wipe_cb,
	                           line) < 0) {
		sodium_free(line);
		fail(a, "out of memory");
	}
}

/* ---- folders ------------------------------------------------------------ */

static struct folder *folder_get(struct account *a, const char *name, bool create)
{
	for (size_t i = 0; i < a->nfolders; i++)
		if (strcmp(a->folders[i].name, name) == 0)
			return &a->folders[i];
	if (!create || a->nfolders >= PUSH_FOLDERS_MAX)
		return NULL;
	struct folder *f = realloc(a->folders, (a->nfolders + 1) * sizeof(*f));
	if (f == NULL)
		return NULL;
	a->folders = f;
	f = &a->folders[a->nfolders];
	memset(f, 0, sizeof(*f));
	if ((f->name = strdup(name)) == NULL)
		return NULL;
	a->nfolders++;
	return f;
}

static bool is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

/* "* STATUS name (MESSAGES n UIDNEXT n ...)": a change against the last
 * STATUS of that folder is reported (not the first one seen). */
static void on_status(struct account *a, const struct imap_arg *args)
{
	const char *name = imap_arg_string(args->next);
	const struct imap_arg *list = args->next != NULL ? args->next->next : NULL;
	if (name == NULL || list == NULL || list->type != IMAP_ARG_LIST)
		return;
	struct folder nv = {0};
	for (const struct imap_arg *k = list->list; k != NULL && k->next != NULL;
	     k = k->next->next) {
		uint64_t v;
		if (!imap_arg_number(k->next, UINT64_MAX, &v))
			continue;
		if (imap_arg_is_atom(k, "MESSAGES"))
			nv.messages = v;
		else if (imap_arg_is_atom(k, "UIDNEXT"))
			nv.uidnext = v;
		else if (imap_arg_is_atom(k, "UIDVALIDITY"))
			nv.uidvalidity = v;
		else if (imap_arg_is_atom(k, "HIGHESTMODSEQ"))
			nv.modseq = v;
	}
	struct folder *f = folder_get(a, name, true);
	if (f == NULL)
		return;
	bool differs = f->messages != nv.messages || f->uidnext != nv.uidnext ||
	               f->uidvalidity != nv.uidvalidity || f->modseq != nv.modseq;
	bool was_known = f->known;
	f->messages = nv.messages;
	f->uidnext = nv.uidnext;
	f->uidvalidity = nv.uidvalidity;
	f->modseq = nv.modseq;
	f->known = true;
	/* Under NOTIFY a STATUS is itself the event (it may carry only some
	 * items). */
	if ((was_known && differs) || (!was_known && a->swept) || a->sess == S_IDLE)
		changed(a, name);
}

/* "* LIST (attrs) sep name" during a sweep: remember selectable folders;
 * during IDLE (NOTIFY MailboxName) a folder was created or renamed. */
static void on_list(struct account *a, const struct imap_arg *args)
{
	const struct imap_arg *attrs = args->next;
	if (attrs == NULL || attrs->type != IMAP_ARG_LIST || attrs->next == NULL)
		return;
	const char *name = imap_arg_string(attrs->next->next);
	if (name == NULL)
		return;
	if (a->sess == S_IDLE) {
		changed(a, name);
		return;
	}
	for (const struct imap_arg *x = attrs->list; x != NULL; x = x->next)
		if (imap_arg_is_atom(x, "\\Noselect") || imap_arg_is_atom(x, "\\NonExistent"))
			return;
	if (is_inbox(name))
		return;
	struct folder *f = folder_get(a, name, true);
	if (f != NULL)
		f->listed = true;
}

static void send_idle(struct account *a)
{
	if (a->caps & CAP_IDLE) {
		send_cmd(a, "IDLE");
		sess_enter(a, S_IDLE_START);
	} else {
		/* Polled with NOOP at the sweep interval. */
		sess_enter(a, S_IDLE);
	}
}

/* Untagged data while logged in. */
static void on_data(struct account *a, const struct imap_response *r)
{
	const struct imap_arg *x = r->args;
	if (x == NULL)
		return;
	uint64_t n;
	if (imap_arg_number(x, UINT32_MAX, &n) && x->next != NULL) {
		const struct imap_arg *kw = x->next;
		if (imap_arg_is_atom(kw, "EXISTS")) {
			if (a->sess == S_EXAMINE) {
				a->sel_exists = n;
			} else if (n != a->inbox_exists) {
				a->inbox_exists = n;
				changed(a, "INBOX");
			}
		} else if (imap_arg_is_atom(kw, "EXPUNGE")) {
			if (a->inbox_exists > 0)
				a->inbox_exists--;
			changed(a, "INBOX");
		} else if (imap_arg_is_atom(kw, "FETCH")) {
			changed(a, "INBOX");
		}
		return;
	}
	if (imap_arg_is_atom(x, "VANISHED"))
		changed(a, "INBOX");
	else if (imap_arg_is_atom(x, "STATUS"))
		on_status(a, x);
	else if (imap_arg_is_atom(x, "LIST"))
		on_list(a, x);
	else if (imap_arg_is_atom(x, "CAPABILITY")) {
		a->caps = CAP_KNOWN;
		for (const struct imap_arg *c = x->next; c != NULL; c = c->next) {
			if (imap_arg_is_atom(c, "IDLE"))
				a->caps |= CAP_IDLE;
			else if (imap_arg_is_atom(c, "NOTIFY"))
				a->caps |= CAP_NOTIFY;
			else if (imap_arg_is_atom(c, "SASL-IR"))
				a->caps |= CAP_SASL_IR;
			else if (imap_arg_is_atom(c, "AUTH=PLAIN"))
				a->caps |= CAP_AUTH_PLAIN;
			else if (imap_arg_is_atom(c, "AUTH=XOAUTH2"))
				a->caps |= CAP_AUTH_XOAUTH2;
			else if (imap_arg_is_atom(c, "AUTH=OAUTHBEARER"))
				a->caps |= CAP_AUTH_OAUTHBEARER;
			else if (imap_arg_is_atom(c, "LOGINDISABLED"))
				a->caps |= CAP_LOGINDISABLED;
			else if (imap_arg_is_atom(c, "CONDSTORE") || imap_arg_is_atom(c, "QRESYNC"))
				a->caps |= CAP_CONDSTORE;
			else if (imap_arg_is_atom(c, "STARTTLS"))
				a->caps |= CAP_STARTTLS;
		}
	}
}

/* [CAPABILITY ...] in a status response: parse it as the data response. */
static void on_code(struct account *a, const struct imap_response *r)
{
	if (r->code == NULL)
		return;
	uint64_t v = 0;
	bool num = r->code_args != NULL && imap_arg_number(r->code_args, UINT64_MAX, &v);
	if (strcasecmp(r->code, "CAPABILITY") == 0) {
		struct imap_arg head = {
		    .type = IMAP_ARG_ATOM, .str = "CAPABILITY", .len = 10, .next = r->code_args};
		struct imap_response fake = {.args = &head};
		on_data(a, &fake);
	} else if (a->sess == S_EXAMINE && num) {
		if (strcasecmp(r->code, "UIDNEXT") == 0)
			a->sel_uidnext = v;
		else if (strcasecmp(r->code, "UIDVALIDITY") == 0)
			a->sel_uidvalidity = v;
		else if (strcasecmp(r->code, "HIGHESTMODSEQ") == 0)
			a->sel_modseq = v;
	}
}

static bool temporary_code(const char *code)
{
	return code != NULL &&
	       (strcasecmp(code, "UNAVAILABLE") == 0 || strcasecmp(code, "LIMIT") == 0 ||
	        strcasecmp(code, "INUSE") == 0 || strcasecmp(code, "SERVERBUG") == 0);
}

static void start_sweep(struct account *a)
{
	for (size_t i = 0; i < a->nfolders; i++)
		a->folders[i].listed = false;
	send_cmd(a, "LIST \"\" \"*\"");
	sess_enter(a, S_SWEEP_LIST);
}

/* After the sweep's LIST: one pipelined STATUS per listed folder. */
static void send_statuses(struct account *a)
{
	const char *items = (a->caps & CAP_CONDSTORE)
	                        ? "(MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)"
	                        : "(MESSAGES UIDNEXT UIDVALIDITY)";
	bool any = false;
	size_t keep = 0;
	for (size_t i = 0; i < a->nfolders; i++) {
		struct folder *f = &a->folders[i];
		if (!f->listed) { /* gone: forget it */
			free(f->name);
			continue;
		}
		a->folders[keep++] = *f;
	}
	a->nfolders = keep;
	for (size_t i = 0; i < a->nfolders; i++) {
		char q[1024];
		if (!quote(a->folders[i].name, q, sizeof(q)))
			continue;
		send_cmd(a, "STATUS %s %s", q, items);
		any = true;
	}
	a->next_sweep_ms = now_ms() + (int64_t)a->loop->set.status_interval_s * 1000;
	if (any) {
		sess_enter(a, S_SWEEP_STATUS);
	} else {
		a->swept = true;
		send_idle(a);
	}
}

/* The tagged response that ends the current state. */
static void on_tagged(struct account *a, const struct imap_response *r)
{
	bool ok = r->status == IMAP_STATUS_OK;
	if (temporary_code(r->code) && !ok) {
		a->throttled = true;
		fail(a, "server busy: [%s] %s", r->code, r->text);
		return;
	}
	switch (a->sess) {
	case S_STARTTLS:
		if (!ok) {
			stop(a, "STARTTLS refused: %s", r->text);
			return;
		}
		{
			SSL *ssl = tls_new(a);
			struct bufferevent *f =
			    ssl == NULL ? NULL
			                : bufferevent_openssl_filter_new(a->loop->base, a->bev, ssl,
			                                                 BUFFEREVENT_SSL_CONNECTING,
			                                                 BEV_OPT_CLOSE_ON_FREE);
			if (f == NULL) {
				if (ssl != NULL)
					SSL_free(ssl);
				fail(a, "cannot start TLS");
				return;
			}
			/* Bytes after the OK were sent in clear text: dropped
			 * (STARTTLS response injection). */
			evbuffer_drain(bufferevent_get_input(a->bev),
			               evbuffer_get_length(bufferevent_get_input(a->bev)));
			a->bev = f;
			a->caps = 0;
			imap_parser_reset(a->parser);
			setup_bev(a);
			sess_enter(a, S_CONNECTING);
		}
		return;
	case S_CAPABILITY:
		if (!ok) {
			fail(a, "CAPABILITY failed: %s", r->text);
			return;
		}
		if (a->starttls && bufferevent_openssl_get_ssl(a->bev) == NULL) {
			if (!(a->caps & CAP_STARTTLS)) {
				stop(a, "the server does not offer STARTTLS");
				return;
			}
			send_cmd(a, "STARTTLS");
			sess_enter(a, S_STARTTLS);
			return;
		}
		send_login(a);
		if (a->sess == S_CAPABILITY)
			sess_enter(a, S_LOGIN);
		return;
	case S_LOGIN:
		if (a->loop->cb.login != NULL)
			a->loop->cb.login(a->loop->cb.ctx, a->id, ok);
		if (!ok && a->oauth && !a->oauth_refused && r->status == IMAP_STATUS_NO) {
			/* A token refused may be one the provider dropped before
			 * its time: once, forget it and try again with a new one;
			 * a grant that is gone then stops the account at the
			 * credential callback (needs sign-in). */
			a->oauth_refused = true;
			if (a->loop->cb.token_refused != NULL)
				a->loop->cb.token_refused(a->loop->cb.ctx, a->id);
			fail(a, "access token refused: %s%s%s%s", r->code != NULL ? "[" : "",
			     r->code != NULL ? r->code : "", r->code != NULL ? "] " : "", r->text);
			return;
		}
		if (ok)
			a->oauth_refused = false;
		if (!ok) {
			if (r->status == IMAP_STATUS_NO && r->code != NULL &&
			    strcasecmp(r->code, "AUTHENTICATIONFAILED") != 0 &&
			    strcasecmp(r->code, "AUTHORIZATIONFAILED") != 0 &&
			    strcasecmp(r->code, "EXPIRED") != 0 &&
			    strcasecmp(r->code, "PRIVACYREQUIRED") != 0) {
				fail(a, "login failed: [%s] %s", r->code, r->text);
				return;
			}
			stop(a, "login refused: %s%s%s%s", r->code != NULL ? "[" : "",
			     r->code != NULL ? r->code : "", r->code != NULL ? "] " : "", r->text);
			return;
		}
		if (r->code == NULL || strcasecmp(r->code, "CAPABILITY") != 0) {
			send_cmd(a, "CAPABILITY");
			sess_enter(a, S_CAPABILITY2);
			return;
		}
		/* fall through */
	case S_CAPABILITY2:
		if (!ok) {
			fail(a, "CAPABILITY failed: %s", r->text);
			return;
		}
		a->sel_exists = a->sel_uidnext = a->sel_uidvalidity = a->sel_modseq = 0;
		send_cmd(a, "EXAMINE INBOX");
		sess_enter(a, S_EXAMINE);
		return;
	case S_EXAMINE:
		if (!ok) {
			fail(a, "EXAMINE INBOX failed: %s", r->text);
			return;
		}
		/* A change while we were away counts as a change. */
		if (a->inbox_known &&
		    (a->sel_exists != a->inbox_exists || a->sel_uidnext != a->inbox_uidnext ||
		     a->sel_uidvalidity != a->inbox_uidvalidity ||
		     a->sel_modseq != a->inbox_modseq))
			changed(a, "INBOX");
		a->inbox_exists = a->sel_exists;
		a->inbox_uidnext = a->sel_uidnext;
		a->inbox_uidvalidity = a->sel_uidvalidity;
		a->inbox_modseq = a->sel_modseq;
		a->inbox_known = true;
		if ((a->caps & CAP_NOTIFY) && (a->caps & CAP_IDLE) && !a->loop->set.no_notify) {
			send_cmd(a,
			         "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
			         "(personal (MessageNew MessageExpunge FlagChange MailboxName))");
			sess_enter(a, S_NOTIFY);
		} else {
			start_sweep(a);
		}
		return;
	case S_NOTIFY:
		if (!ok) { /* refused: IDLE and sweeps instead */
			a->caps &= ~(unsigned)CAP_NOTIFY;
			start_sweep(a);
			return;
		}
		a->notify_on = true;
		send_idle(a);
		return;
	case S_SWEEP_LIST:
		if (!ok) {
			fail(a, "LIST failed: %s", r->text);
			return;
		}
		send_statuses(a);
		return;
	case S_SWEEP_STATUS:
		a->swept = true;
		/* fall through */
	case S_DONE:
		if (a->sess == S_DONE && !ok) {
			fail(a, "IDLE ended with: %s", r->text);
			return;
		}
		if (a->sess == S_DONE && !a->notify_on && now_ms() >= a->next_sweep_ms)
			start_sweep(a);
		else
			send_idle(a);
		return;
	case S_IDLE_START:
		fail(a, "IDLE refused: %s", r->text);
		return;
	default:
		fail(a, "unexpected tagged response %s", r->tag);
		return;
	}
}

static void on_response(struct account *a, const struct imap_response *r)
{
	on_code(a, r);
	if (r->kind == IMAP_RESP_CONTINUATION) {
		if (a->sess == S_LOGIN && a->oauth) {
			oauth_continue(a);
			return;
		}
		if (a->sess == S_IDLE_START) {
			a->failures = 0;
			a->throttled = false;
			sess_enter(a, S_IDLE);
		}
		return;
	}
	if (r->kind == IMAP_RESP_UNTAGGED) {
		if (r->status == IMAP_STATUS_BYE) {
			a->bye = true;
			if (temporary_code(r->code))
				a->throttled = true;
			return;
		}
		if (a->sess == S_GREETING) {
			if (r->status == IMAP_STATUS_PREAUTH) {
				stop(a, "the server greets with PREAUTH: refused");
				return;
			}
			if (r->status != IMAP_STATUS_OK) {
				fail(a, "greeting: %s", r->text);
				return;
			}
			if (a->starttls) {
				/* Ask: the greeting's list may be a lie in clear text. */
				send_cmd(a, "CAPABILITY");
				sess_enter(a, S_CAPABILITY);
			} else if (a->caps & CAP_KNOWN) {
				send_login(a);
				if (a->sess == S_GREETING)
					sess_enter(a, S_LOGIN);
			} else {
				send_cmd(a, "CAPABILITY");
				sess_enter(a, S_CAPABILITY);
			}
			return;
		}
		if (r->status == IMAP_STATUS_NONE)
			on_data(a, r);
		return;
	}
	/* Tagged: only the last command's tag ends a state. */
	char want[16];
	snprintf(want, sizeof(want), "P%u", a->wait_tag);
	if (strcmp(r->tag, want) == 0)
		on_tagged(a, r);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	struct account *a = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (a->bev == bev && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			break;
		size_t used = 0;
		const char *err;
		enum imap_parse_result pr =
		    imap_parser_feed(a->parser, v.iov_base, v.iov_len, &used, &err);
		if (a->loop->cb.trace != NULL)
			a->loop->cb.trace(a->loop->cb.ctx, a->id, true, v.iov_base, used);
		evbuffer_drain(in, used);
		if (pr == IMAP_PARSE_ERROR || pr == IMAP_PARSE_LITERAL) {
			fail(a, "bad response from the server: %s",
			     pr == IMAP_PARSE_ERROR ? err : "literal too large");
			return;
		}
		if (pr == IMAP_PARSE_RESPONSE)
			on_response(a, imap_parser_response(a->parser));
	}
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct account *a = arg;
	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		if (ssl != NULL || a->starttls) {
			if (a->sess == S_CONNECTING && ssl != NULL &&
			    bufferevent_get_underlying(bev) != NULL) {
				/* STARTTLS done: ask the capabilities again. */
				send_cmd(a, "CAPABILITY");
				sess_enter(a, S_CAPABILITY);
				return;
			}
			sess_enter(a, S_GREETING);
		}
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
		unsigned long e = bufferevent_get_openssl_error(bev);
		int sock_err = EVUTIL_SOCKET_ERROR();
		const char *dns = NULL;
		int dnserr = bufferevent_socket_get_dns_error(bev);
		if (dnserr != 0)
			dns = evutil_gai_strerror(dnserr);
		ERR_clear_error();
		if (v != X509_V_OK && a->sess == S_CONNECTING) {
			/* Not fixed by retrying soon: the long end of the backoff. */
			a->failures = 32;
			fail(a, "TLS certificate verification failed for %s: %s", a->host,
			     X509_verify_cert_error_string(v));
		} else if (dns != NULL) {
			fail(a, "cannot resolve %s: %s", a->host, dns);
		} else if (what & BEV_EVENT_EOF) {
			fail(a, "%s closed the connection%s", a->host, a->bye ? " (BYE)" : "");
		} else if (e != 0) {
			char buf[256];
			ERR_error_string_n(e, buf, sizeof(buf));
			fail(a, "TLS error with %s: %s", a->host, buf);
		} else {
			fail(a, "connection to %s failed: %s", a->host,
			     evutil_socket_error_to_string(sock_err));
		}
	}
}

static void setup_bev(struct account *a)
{
	bufferevent_setcb(a->bev, read_cb, NULL, event_cb, a);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
}

static void connect_now(struct account *a)
{
	struct push_loop *loop = a->loop;
	SSL *ssl = NULL;
	a->bye = false;
	a->notify_on = false;
	a->caps = 0;
	a->parser = imap_parser_create(&push_limits);
	if (a->parser == NULL) {
		fail(a, "out of memory");
		return;
	}
	if (!a->starttls && (ssl = tls_new(a)) == NULL) {
		fail(a, "cannot set up TLS (CA file %s)", a->ca_file != NULL ? a->ca_file : "none");
		return;
	}
	a->bev = ssl != NULL ? bufferevent_openssl_socket_new(loop->base, -1, ssl,
	                                                      BUFFEREVENT_SSL_CONNECTING,
	                                                      BEV_OPT_CLOSE_ON_FREE)
	                     : bufferevent_socket_new(loop->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (a->bev == NULL) {
		if (ssl != NULL)
			SSL_free(ssl);
		fail(a, "out of memory");
		return;
	}
	if (ssl != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(a->bev, 1);
	setup_bev(a);
	sess_enter(a, S_CONNECTING);
	int port = (int)strtol(a->port, NULL, 10); /* digits only: imap_url_parse checked */
	if (bufferevent_socket_connect_hostname(a->bev, loop->dns, AF_UNSPEC, a->host, port) < 0) {
		fail(a, "cannot connect to %s:%s", a->host, a->port);
		return;
	}
	evutil_socket_t fd = bufferevent_getfd(a->bev);
	if (fd >= 0) {
		/* A silent network loss during IDLE is found by TCP keepalive
		 * (about 2 minutes) or at the next renewal. */
		int on = 1, idle = 60, intvl = 15, cnt = 4;
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
}

/* The connect rate is a token bucket holding connect_burst() connects,
 * refilled at connect_rate - connect_burst() a second (connect_rate when
 * that is under 1), so that no second ever sees more than connect_rate
 * connects, however late the loop runs its timers. */
static int64_t connect_burst(const struct push_loop *loop)
{
	int64_t b = (int64_t)loop->set.connect_rate / 20;
	return b < 1 ? 1 : b;
}

static int64_t connect_refill(const struct push_loop *loop)
{
	int64_t r = (int64_t)loop->set.connect_rate - connect_burst(loop);
	return r < 1 ? (int64_t)loop->set.connect_rate : r;
}

/* Milliseconds between two slots (rounded up). */
static int64_t connect_gap(const struct push_loop *loop)
{
	return (1000 + connect_refill(loop) - 1) / connect_refill(loop);
}

static bool take_token(struct push_loop *loop)
{
	int64_t now = now_ms(), cap = 1000 * connect_burst(loop);
	loop->tokens_milli += (now - loop->tokens_at_ms) * connect_refill(loop);
	loop->tokens_at_ms = now;
	if (loop->tokens_milli > cap)
		loop->tokens_milli = cap;
	if (loop->tokens_milli < 1000)
		return false;
	loop->tokens_milli -= 1000;
	return true;
}

/* Take the next slot of the global connect rate. */
static void queue_connect(struct account *a)
{
	struct push_loop *loop = a->loop;
	int64_t now = now_ms(), gap = connect_gap(loop);
	int64_t slot = loop->next_slot_ms > now ? loop->next_slot_ms : now;
	loop->next_slot_ms = slot + gap;
	a->sess = S_QUEUED;
	set_pub(a, PUSH_STATE_CONNECTING);
	if (slot > now)
		timer_in(a, slot - now);
	else if (take_token(loop))
		connect_now(a);
	else
		timer_in(a, gap);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct account *a = arg;
	(void)fd;
	(void)what;
	switch (a->sess) {
	case S_BACKOFF:
		queue_connect(a);
		return;
	case S_QUEUED:
		/* A loop that was held up (a burst of TLS handshakes, a busy
		 * machine) fires the slots it missed all at once: the bucket
		 * lets a few of them connect, the others take new slots, so the
		 * connects never exceed the rate (a server restart stays a
		 * trickle). */
		if (take_token(a->loop))
			connect_now(a);
		else
			queue_connect(a);
		return;
	case S_IDLE:
		/* Renewal or sweep time: end IDLE (or poll). */
		if (a->caps & CAP_IDLE) {
			bufferevent_write(a->bev, "DONE\r\n", 6);
			if (a->loop->cb.trace != NULL)
				a->loop->cb.trace(a->loop->cb.ctx, a->id, false, "DONE\r\n", 6);
		} else
			send_cmd(a, "NOOP");
		sess_enter(a, S_DONE);
		return;
	case S_STOPPED:
		return;
	default:
		fail(a, "%s did not answer within %u s", a->host, a->loop->set.timeout_ms / 1000);
		return;
	}
}

/* Enter a state: its public name and its deadline (or, in IDLE, the time
 * of the next renewal or sweep). */
static void sess_enter(struct account *a, enum sess s)
{
	a->sess = s;
	set_pub(a, pub_of(s));
	evtimer_del(a->timer);
	if (s == S_IDLE) {
		int64_t now = now_ms();
		int64_t ms = (int64_t)a->loop->set.idle_renew_s * 1000;
		if (!a->notify_on) {
			int64_t sweep = a->next_sweep_ms - now;
			if (sweep < ms)
				ms = sweep < 0 ? 0 : sweep;
		}
		a->idle_since_ms = now;
		timer_in(a, ms);
	} else if (s != S_STOPPED && s != S_BACKOFF && s != S_QUEUED) {
		timer_in(a, a->loop->set.timeout_ms);
	}
}

/* ---- accounts and the loop ---------------------------------------------- */

static void account_free(struct account *a)
{
	if (a == NULL)
		return;
	close_conn(a);
	if (a->timer != NULL)
		event_free(a->timer);
	for (size_t i = 0; i < a->nfolders; i++)
		free(a->folders[i].name);
	free(a->folders);
	free(a->host);
	free(a->port);
	free(a->login);
	free(a->ca_file);
	free(a);
}

static void detach(struct push_loop *loop, int64_t id)
{
	for (struct account **p = &loop->accounts; *p != NULL; p = &(*p)->next) {
		if ((*p)->id == id) {
			struct account *a = *p;
			pthread_mutex_lock(&loop->mu);
			*p = a->next;
			loop->counts[a->pub]--;
			pthread_mutex_unlock(&loop->mu);
			account_free(a);
			return;
		}
	}
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	struct push_loop *loop = arg;
	(void)fd;
	(void)what;
	pthread_mutex_lock(&loop->mu);
	if (loop->stopping)
		event_base_loopbreak(loop->base);
	struct op *ops = loop->ops;
	loop->ops = NULL;
	loop->ops_tail = &loop->ops;
	pthread_mutex_unlock(&loop->mu);
	while (ops != NULL) {
		struct op *o = ops;
		ops = o->next;
		if (o->kind == OP_REMOVE) {
			detach(loop, o->id);
		} else {
			struct account *a = o->acct;
			detach(loop, a->id);
			a->timer = evtimer_new(loop->base, timer_cb, a);
			if (a->timer == NULL) {
				account_free(a);
			} else {
				pthread_mutex_lock(&loop->mu);
				a->next = loop->accounts;
				loop->accounts = a;
				a->pub = PUSH_STATE_CONNECTING;
				loop->counts[a->pub]++;
				pthread_mutex_unlock(&loop->mu);
				queue_connect(a);
			}
		}
		free(o);
	}
}

static void init_threads(void)
{
	evthread_use_pthreads();
}

static void post(struct push_loop *loop, struct op *o)
{
	pthread_mutex_lock(&loop->mu);
	*loop->ops_tail = o;
	loop->ops_tail = &o->next;
	pthread_mutex_unlock(&loop->mu);
	event_active(loop->wake, EV_READ, 0);
}

int push_loop_new(const struct push_settings *set, const struct push_callbacks *cb,
                  struct push_loop **loop_r, const char **error_r)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_threads);
	if (sodium_init() < 0) {
		*error_r = "libsodium failed to start";
		return -1;
	}
	struct push_loop *loop = calloc(1, sizeof(*loop));
	if (loop == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	loop->set = *set;
	loop->cb = *cb;
	struct push_settings *s = &loop->set;
	if (s->idle_renew_s == 0)
		s->idle_renew_s = 28 * 60;
	if (s->status_interval_s == 0)
		s->status_interval_s = 300;
	if (s->connect_rate == 0)
		s->connect_rate = 50;
	if (s->connect_rate > 1000)
		s->connect_rate = 1000;
	if (s->backoff_min_ms == 0)
		s->backoff_min_ms = 1000;
	if (s->backoff_max_ms == 0)
		s->backoff_max_ms = 300000;
	if (s->backoff_max_ms < s->backoff_min_ms)
		s->backoff_max_ms = s->backoff_min_ms;
	if (s->throttle_min_ms == 0)
		s->throttle_min_ms = 60000;
	if (s->timeout_ms == 0)
		s->timeout_ms = 60000;
	loop->tokens_at_ms = now_ms();
	loop->tokens_milli = 1000 * connect_burst(loop);
	pthread_mutex_init(&loop->mu, NULL);
	loop->ops_tail = &loop->ops;
	loop->base = event_base_new();
	if (loop->base != NULL)
		loop->dns = evdns_base_new(loop->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (loop->base != NULL)
		loop->wake = event_new(loop->base, -1, EV_PERSIST, wake_cb, loop);
	if (loop->base == NULL || loop->wake == NULL) {
		push_loop_free(&loop);
		*error_r = "cannot create the event loop";
		return -1;
	}
	*loop_r = loop;
	return 0;
}

int push_loop_run(struct push_loop *loop)
{
	/* The wake event is persistent with no fd: activated by post(). An
	 * added timer far away keeps the loop alive with no account. */
	pthread_mutex_lock(&loop->mu);
	int stopping = loop->stopping;
	pthread_mutex_unlock(&loop->mu);
	if (stopping)
		return 0;
	struct event *keep = event_new(loop->base, -1, EV_PERSIST, NULL, NULL);
	struct timeval day = {86400, 0};
	if (keep != NULL)
		event_add(keep, &day);
	int r = event_base_dispatch(loop->base);
	if (keep != NULL)
		event_free(keep);
	return r < 0 ? -1 : 0;
}

void push_loop_stop(struct push_loop *loop)
{
	/* Through the wake event, so a stop before the loop runs is not lost. */
	pthread_mutex_lock(&loop->mu);
	loop->stopping = 1;
	pthread_mutex_unlock(&loop->mu);
	event_active(loop->wake, EV_READ, 0);
}

void push_loop_free(struct push_loop **loopp)
{
	struct push_loop *loop = *loopp;
	if (loop == NULL)
		return;
	*loopp = NULL;
	while (loop->accounts != NULL) {
		struct account *a = loop->accounts;
		loop->accounts = a->next;
		account_free(a);
	}
	while (loop->ops != NULL) {
		struct op *o = loop->ops;
		loop->ops = o->next;
		if (o->kind == OP_ADD)
			account_free(o->acct);
		free(o);
	}
	while (loop->ctxs != NULL) {
		struct ctx_entry *e = loop->ctxs;
		loop->ctxs = e->next;
		SSL_CTX_free(e->ctx);
		free(e->ca_file);
		free(e);
	}
	if (loop->wake != NULL)
		event_free(loop->wake);
	if (loop->dns != NULL)
		evdns_base_free(loop->dns, 0);
	if (loop->base != NULL)
		event_base_free(loop->base);
	pthread_mutex_destroy(&loop->mu);
	free(loop);
}

int push_account_add(struct push_loop *loop, const struct push_account_config *cfg,
                     const char **error_r)
{
	char host[256], port[8];
	enum imap_security sec;
	if (imap_url_parse(cfg->url, host, sizeof(host), port, sizeof(port), &sec) < 0) {
		*error_r = "bad IMAP URL";
		return -1;
	}
	if (strpbrk(cfg->login, "\r\n") != NULL) {
		*error_r = "bad login name";
		return -1;
	}
	struct account *a = calloc(1, sizeof(*a));
	struct op *o = calloc(1, sizeof(*o));
	if (a == NULL || o == NULL || (a->host = strdup(host)) == NULL ||
	    (a->port = strdup(port)) == NULL || (a->login = strdup(cfg->login)) == NULL ||
	    (cfg->ca_file != NULL && (a->ca_file = strdup(cfg->ca_file)) == NULL)) {
		account_free(a);
		free(o);
		*error_r = "out of memory";
		return -1;
	}
	a->loop = loop;
	a->id = cfg->id;
	a->starttls = sec == IMAP_SECURITY_STARTTLS;
	a->oauth = cfg->oauth;
	a->sess = S_QUEUED;
	a->pub = PUSH_STATE_CONNECTING;
	o->kind = OP_ADD;
	o->acct = a;
	post(loop, o);
	return 0;
}

void push_account_remove(struct push_loop *loop, int64_t id)
{
	struct op *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return;
	o->kind = OP_REMOVE;
	o->id = id;
	post(loop, o);
}

bool push_account_state(struct push_loop *loop, int64_t id, enum push_state *state_r)
{
	bool found = false;
	pthread_mutex_lock(&loop->mu);
	/* The list changes on the loop thread under mu. */
	for (struct account *a = loop->accounts; a != NULL; a = a->next)
		if (a->id == id) {
			*state_r = a->pub;
			found = true;
			break;
		}
	pthread_mutex_unlock(&loop->mu);
	return found;
}

bool push_account_idle_since(struct push_loop *loop, int64_t id, double *since_r)
{
	bool idle = false;
	pthread_mutex_lock(&loop->mu);
	for (struct account *a = loop->accounts; a != NULL; a = a->next)
		if (a->id == id) {
			idle = a->pub == PUSH_STATE_IDLE;
			if (idle)
				*since_r = a->pub_idle_since;
			break;
		}
	pthread_mutex_unlock(&loop->mu);
	return idle;
}

void push_loop_counts(struct push_loop *loop, unsigned counts[PUSH_STATE_COUNT], uint64_t *logins_r)
{
	pthread_mutex_lock(&loop->mu);
	memcpy(counts, loop->counts, sizeof(loop->counts));
	if (logins_r != NULL)
		*logins_r = loop->logins;
	pthread_mutex_unlock(&loop->mu);
}
