/* The loopback redirect receiver of RFC 8252 section 7.3 (oauth.h): a
 * one-shot HTTP listener on 127.0.0.1 with an ephemeral port that takes the
 * browser's redirect, checks the state and hands back the code. */
#include "oauth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 8192

struct oauth_loopback {
	int fd;
	char redirect_uri[64];
};

static int lb_fail(struct oauth_error *err, enum oauth_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int lb_fail(struct oauth_error *err, enum oauth_error_kind kind, const char *fmt, ...)
{
	va_list ap;
	err->kind = kind;
	err->code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof(err->text), fmt, ap);
	va_end(ap);
	return -1;
}

int oauth_loopback_open(struct oauth_loopback **lb_r, const char **redirect_uri_r,
                        struct oauth_error *err)
{
	struct oauth_loopback *lb = calloc(1, sizeof(*lb));
	if (lb == NULL)
		return lb_fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	lb->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	if (lb->fd < 0 || bind(lb->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lb->fd, 8) < 0 || getsockname(lb->fd, (struct sockaddr *)&sa, &len) < 0) {
		int e = errno;
		oauth_loopback_free(&lb);
		return lb_fail(err, OAUTH_ERR_TEMPORARY, "cannot listen on 127.0.0.1: %s",
		               strerror(e));
	}
	snprintf(lb->redirect_uri, sizeof(lb->redirect_uri), "http://127.0.0.1:%u/",
	         (unsigned)ntohs(sa.sin_port));
	*redirect_uri_r = lb->redirect_uri;
	*lb_r = lb;
	err->kind = OAUTH_OK;
	err->text[0] = err->code[0] = '\0';
	return 0;
}

void oauth_loopback_free(struct oauth_loopback **lb)
{
	if (*lb == NULL)
		return;
	if ((*lb)->fd >= 0)
		close((*lb)->fd);
	free(*lb);
	*lb = NULL;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void respond(int fd, int status, const char *text)
{
	char out[512];
	int n = snprintf(out, sizeof(out),
	                 "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\n"
	                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
	                 "<!doctype html><title>mailkeep</title><p>%s</p>\n",
	                 status,
	                 status == 200   ? "OK"
	                 : status == 404 ? "Not Found"
	                                 : "Bad Request",
	                 text);
	if (n > 0 && (size_t)n < sizeof(out)) {
		ssize_t w = write(fd, out, (size_t)n);
		(void)w;
	}
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Find name=value in the query q (up to a space), percent-decode it into a
 * sodium_malloc'd string. NULL when absent or malformed. */
static char *query_param(const char *q, const char *name)
{
	size_t nl = strlen(name);
	const char *p = q;
	while (*p != '\0' && *p != ' ') {
		size_t seg = strcspn(p, "& ");
		if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			const char *v = p + nl + 1;
			size_t vl = seg - nl - 1;
			char *out = sodium_malloc(vl + 1);
			if (out == NULL)
				return NULL;
			size_t o = 0;
			for (size_t i = 0; i < vl; i++) {
				if (v[i] == '%' && i + 2 < vl + 1 && hexval(v[i + 1]) >= 0 &&
				    hexval(v[i + 2]) >= 0) {
					out[o++] = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
					i += 2;
				} else if (v[i] == '+') {
					out[o++] = ' ';
				} else {
					out[o++] = v[i];
				}
			}
			out[o] = '\0';
			if (strlen(out) != o) { /* an encoded NUL */
				sodium_free(out);
				return NULL;
			}
			return out;
		}
		p += seg;
		if (*p == '&')
			p++;
	}
	return NULL;
}

/* Read one request head (bounded) into buf. */
static int read_request(int fd, char *buf, size_t size, int timeout_ms)
{
	size_t len = 0;
	while (len + 1 < size) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -1;
		ssize_t n = read(fd, buf + len, size - 1 - len);
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
			return 0;
	}
	return -1;
}

int oauth_loopback_wait(struct oauth_loopback *lb, const char *state, int timeout_ms, char **code_r,
                        struct oauth_error *err)
{
	int64_t deadline = now_ms() + timeout_ms;
	char *req = sodium_malloc(REQUEST_MAX);
	if (req == NULL)
		return lb_fail(err, OAUTH_ERR_TEMPORARY, "out of memory");
	int r = -1;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			lb_fail(err, OAUTH_ERR_TEMPORARY,
			        "no sign-in came back to %s within %d s (open the URL shown, on "
			        "this machine)",
			        lb->redirect_uri, timeout_ms / 1000);
			break;
		}
		struct pollfd pfd = {.fd = lb->fd, .events = POLLIN};
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue; /* the deadline check above ends it */
		int cfd = accept4(lb->fd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		if (read_request(cfd, req, REQUEST_MAX, 5000) < 0 ||
		    strncmp(req, "GET /", 5) != 0) {
			respond(cfd, 400, "Bad request.");
			close(cfd);
			continue;
		}
		const char *path = req + 4;
		/* Only the redirect path itself: "/" or "/?..." */
		if (!(path[1] == '?' || path[1] == ' ')) {
			respond(cfd, 404, "Not found.");
			close(cfd);
			continue;
		}
		const char *q = path[1] == '?' ? path + 2 : "";
		char *got_state = query_param(q, "state");
		char *code = query_param(q, "code");
		char *error = query_param(q, "error");
		char *desc = query_param(q, "error_description");
		bool state_ok = got_state != NULL && strlen(got_state) == strlen(state) &&
		                sodium_memcmp(got_state, state, strlen(state)) == 0;
		if (!state_ok) {
			/* Not ours (a stale tab or a forged redirect): keep waiting
			 * for the real one, but say so to the browser. */
			respond(cfd, 400,
			        "This sign-in does not belong to the running mailkeep "
			        "command (state mismatch).");
			lb_fail(err, OAUTH_ERR_PERMANENT,
			        "the redirect's state did not match (a stale or forged sign-in): "
			        "refused");
		} else if (error != NULL) {
			char e[64], d[256];
			size_t o = 0;
			for (const char *s = error; *s != '\0' && o + 1 < sizeof(e); s++)
				e[o++] = (*s >= 32 && *s < 127) ? *s : '?';
			e[o] = '\0';
			o = 0;
			for (const char *s = desc != NULL ? desc : "";
			     *s != '\0' && o + 1 < sizeof(d); s++)
				d[o++] = (*s >= 32 && *s < 127) ? *s : '?';
			d[o] = '\0';
			respond(cfd, 200,
			        "The sign-in was not completed. You can close this window.");
			lb_fail(err, OAUTH_ERR_PERMANENT,
			        "the provider refused the sign-in: %s%s%s", e, d[0] ? ": " : "", d);
			snprintf(err->code, sizeof(err->code), "%s", e);
		} else if (code == NULL || code[0] == '\0') {
			respond(cfd, 400, "The redirect carried no code.");
			lb_fail(err, OAUTH_ERR_PERMANENT,
			        "the redirect carried no authorization code");
		} else {
			respond(cfd, 200,
			        "Signed in. You can close this window and return to "
			        "mailkeep.");
			*code_r = code;
			code = NULL;
			err->kind = OAUTH_OK;
			err->text[0] = err->code[0] = '\0';
			r = 0;
		}
		close(cfd);
		oauth_secret_free(&got_state);
		oauth_secret_free(&code);
		oauth_secret_free(&error);
		oauth_secret_free(&desc);
		if (r == 0 || state_ok)
			break;
		/* A wrong state is refused but does not end the wait: the
		 * legitimate redirect may still come. */
	}
	sodium_free(req);
	return r;
}
