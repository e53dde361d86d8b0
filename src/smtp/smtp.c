/* SMTP submission with libcurl. */
#include "smtp.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *url_rest(const char *url, bool *implicit_tls_r)
{
	if (strncasecmp(url, "submissions://", 14) == 0) {
		*implicit_tls_r = true;
		return url + 14;
	}
	if (strncasecmp(url, "smtp://", 7) == 0) {
		*implicit_tls_r = false;
		return url + 7;
	}
	return NULL;
}

/* Split "host[:port][/]" into host and port (0 if none). */
static int split_host_port(const char *rest, char *host, size_t size, long *port_r)
{
	size_t n = strcspn(rest, ":/");
	if (n == 0 || n >= size)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)rest[i];
		if (!(isalnum(c) || c == '.' || c == '-'))
			return -1;
		host[i] = (char)tolower(c);
	}
	host[n] = '\0';
	*port_r = 0;
	const char *p = rest + n;
	if (*p == ':') {
		char *end;
		*port_r = strtol(p + 1, &end, 10);
		if (end == p + 1 || *port_r <= 0 || *port_r > 65535)
			return -1;
		p = end;
	}
	if (*p == '/')
		p++;
	return *p == '\0' ? 0 : -1;
}

bool smtp_url_valid(const char *url)
{
	char host[256];
	bool tls;
	long port;
	const char *rest = url_rest(url, &tls);
	return rest != NULL && split_host_port(rest, host, sizeof(host), &port) == 0;
}

int smtp_url_host(const char *url, char *host_r, size_t size)
{
	bool tls;
	long port;
	const char *rest = url_rest(url, &tls);
	return rest != NULL && split_host_port(rest, host_r, size, &port) == 0 ? 0 : -1;
}

struct upload {
	const char *data;
	size_t len, pos;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ctx)
{
	struct upload *u = ctx;
	size_t n = size * nitems;
	if (n > u->len - u->pos)
		n = u->len - u->pos;
	memcpy(buf, u->data + u->pos, n);
	u->pos += n;
	return n;
}

/* What the server said: its last reply line, and its last failure reply
 * (4xx/5xx) with the code, made printable. Only CURLINFO_HEADER_IN (what
 * the server says) is looked at: what we send, AUTH included, is never seen
 * here. */
struct replies {
	char last[SMTP_REPLY_SIZE];
	char failure[SMTP_REPLY_SIZE];
	long failure_code;
};

static void copy_printable(char *out, const char *data, size_t start, size_t end)
{
	size_t o = 0;
	for (size_t i = start; i < end && o + 1 < SMTP_REPLY_SIZE; i++) {
		unsigned char c = (unsigned char)data[i];
		out[o++] = c >= 32 && c < 127 ? (char)c : '?';
	}
	out[o] = '\0';
}

static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ctx)
{
	(void)h;
	struct replies *r = ctx;
	if (type != CURLINFO_HEADER_IN || size == 0)
		return 0;
	/* Keep the last line of this piece. */
	while (size > 0 && (data[size - 1] == '\n' || data[size - 1] == '\r'))
		size--;
	size_t start = size;
	while (start > 0 && data[start - 1] != '\n')
		start--;
	copy_printable(r->last, data, start, size);
	if (size - start >= 3 && (data[start] == '4' || data[start] == '5') &&
	    isdigit((unsigned char)data[start + 1]) && isdigit((unsigned char)data[start + 2])) {
		memcpy(r->failure, r->last, sizeof(r->failure));
		r->failure_code = (data[start] - '0') * 100 + (data[start + 1] - '0') * 10 +
		                  (data[start + 2] - '0');
	}
	return 0;
}

static bool permanent_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
	case CURLE_USE_SSL_FAILED:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_LOGIN_DENIED:
	case CURLE_FILESIZE_EXCEEDED:
		return true;
	default:
		return false;
	}
}

struct smtp_session {
	CURL *h;
	struct replies replies;
	char errbuf[CURL_ERROR_SIZE];
};

int smtp_session_create(const struct smtp_settings *set, struct smtp_session **session_r,
                        const char **error_r)
{
	char host[256], url[300];
	bool implicit_tls;
	long port;
	const char *rest = url_rest(set->url, &implicit_tls);
	if (rest == NULL || split_host_port(rest, host, sizeof(host), &port) < 0) {
		*error_r = "bad SMTP URL (submissions://host[:port] or smtp://host[:port])";
		return -1;
	}
	if (port == 0)
		port = implicit_tls ? 465 : 587;
	snprintf(url, sizeof(url), "%s://%s:%ld/", implicit_tls ? "smtps" : "smtp", host, port);
	struct smtp_session *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->h = curl_easy_init()) == NULL) {
		free(s);
		*error_r = "cannot initialise libcurl";
		return -1;
	}
	CURL *h = s->h;
	long timeout = set->timeout_ms > 0 ? set->timeout_ms : 60000;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	/* smtp://: STARTTLS or nothing (CURLE_USE_SSL_FAILED), never clear text. */
	curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (set->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, set->ca_file);
	if (set->login != NULL && set->bearer != NULL) {
		/* libcurl picks OAUTHBEARER (RFC 7628) when the server's AUTH list
		 * has it, else XOAUTH2; never PLAIN or LOGIN with a token. */
		curl_easy_setopt(h, CURLOPT_USERNAME, set->login);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, set->bearer);
		curl_easy_setopt(h, CURLOPT_LOGIN_OPTIONS, "AUTH=OAUTHBEARER;AUTH=XOAUTH2");
	} else if (set->login != NULL && set->password != NULL) {
		curl_easy_setopt(h, CURLOPT_USERNAME, set->login);
		curl_easy_setopt(h, CURLOPT_PASSWORD, set->password);
	}
	curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	curl_easy_setopt(h, CURLOPT_SERVER_RESPONSE_TIMEOUT, (timeout + 999) / 1000);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (timeout + 999) / 1000);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10L * 60 * 1000);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
	/* VERBOSE only routes the trace to debug_cb, which keeps server replies. */
	curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
	curl_easy_setopt(h, CURLOPT_DEBUGDATA, &s->replies);
	curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	*session_r = s;
	return 0;
}

void smtp_session_free(struct smtp_session **session)
{
	if (*session == NULL)
		return;
	curl_easy_cleanup((*session)->h);
	free(*session);
	*session = NULL;
}

static enum smtp_result session_result(struct smtp_session *s, CURLcode rc,
                                       char reply_r[SMTP_REPLY_SIZE]);

enum smtp_result smtp_check_login(const struct smtp_settings *set, char reply_r[SMTP_REPLY_SIZE])
{
	struct smtp_session *s = NULL;
	const char *err;
	reply_r[0] = '\0';
	if (smtp_session_create(set, &s, &err) < 0) {
		snprintf(reply_r, SMTP_REPLY_SIZE, "%s", err);
		return SMTP_PERMANENT;
	}
	/* libcurl's SMTP connect phase is greeting, EHLO, STARTTLS and AUTH:
	 * with CONNECT_ONLY it stops there, and the cleanup says QUIT. */
	curl_easy_setopt(s->h, CURLOPT_UPLOAD, 0L);
	curl_easy_setopt(s->h, CURLOPT_CONNECT_ONLY, 1L);
	memset(&s->replies, 0, sizeof(s->replies));
	s->errbuf[0] = '\0';
	CURLcode rc = curl_easy_perform(s->h);
	enum smtp_result res = session_result(s, rc, reply_r);
	smtp_session_free(&s);
	return res;
}

enum smtp_result smtp_session_send(struct smtp_session *s, const char *mail_from,
                                   const char *const *rcpts, size_t n_rcpts, const void *data,
                                   size_t len, char reply_r[SMTP_REPLY_SIZE])
{
	char from[300];
	reply_r[0] = '\0';
	if (strpbrk(mail_from, "\r\n<>") != NULL || strlen(mail_from) > 256) {
		snprintf(reply_r, SMTP_REPLY_SIZE, "bad sender address");
		return SMTP_PERMANENT;
	}
	snprintf(from, sizeof(from), "<%s>", mail_from);
	struct curl_slist *rl = NULL;
	for (size_t i = 0; i < n_rcpts; i++) {
		if (strpbrk(rcpts[i], "\r\n") != NULL) {
			curl_slist_free_all(rl);
			snprintf(reply_r, SMTP_REPLY_SIZE, "bad recipient address");
			return SMTP_PERMANENT;
		}
		struct curl_slist *n = curl_slist_append(rl, rcpts[i]);
		if (n == NULL) {
			curl_slist_free_all(rl);
			snprintf(reply_r, SMTP_REPLY_SIZE, "out of memory");
			return SMTP_TEMPORARY;
		}
		rl = n;
	}
	CURL *h = s->h;
	struct upload up = {.data = data, .len = len};
	memset(&s->replies, 0, sizeof(s->replies));
	s->errbuf[0] = '\0';
	curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rl);
	curl_easy_setopt(h, CURLOPT_READDATA, &up);
	curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_MAIL_RCPT, NULL);
	curl_easy_setopt(h, CURLOPT_READDATA, NULL);
	curl_slist_free_all(rl);
	return session_result(s, rc, reply_r);
}

/* The outcome of curl_easy_perform on the session: SMTP_SENT for CURLE_OK. */
static enum smtp_result session_result(struct smtp_session *s, CURLcode rc,
                                       char reply_r[SMTP_REPLY_SIZE])
{
	const struct replies *rp = &s->replies;
	if (rc == CURLE_OK) {
		snprintf(reply_r, SMTP_REPLY_SIZE, "%s", rp->last);
		return SMTP_SENT;
	}
	/* The server's own verdict decides when there is one: 5xx permanent,
	 * 4xx temporary; otherwise what failed on our side. */
	enum smtp_result res;
	if (rp->failure_code >= 500)
		res = SMTP_PERMANENT;
	else if (rp->failure_code >= 400)
		res = SMTP_TEMPORARY;
	else
		res = permanent_curl_error(rc) ? SMTP_PERMANENT : SMTP_TEMPORARY;
	if (rp->failure_code >= 400)
		snprintf(reply_r, SMTP_REPLY_SIZE, "%s", rp->failure);
	else
		snprintf(reply_r, SMTP_REPLY_SIZE, "%s%s%s%s", curl_easy_strerror(rc),
		         s->errbuf[0] != '\0' ? ": " : "", s->errbuf,
		         rc == CURLE_PEER_FAILED_VERIFICATION
		             ? " (if you trust the authority that issued the server's "
		               "certificate, give its certificate with --ca-file)"
		             : "");
	return res;
}
