/* The HTTP server on libmicrohttpd (see http.h for the contract). One file:
 * the server (start/stop, request assembly, the access log), the response
 * setters and the streams, which share the per-connection state. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <sodium.h>

#include "lib/buf.h"

#define HTTP_MAX_PEM_SIZE (1024 * 1024)
#define HTTP_STREAM_BLOCK 4096
#define HTTP_MAX_METHOD 16
#define HTTP_ERROR_SIZE 512
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define HTTP_SWEEP_MS 250 /* how often the header deadline is looked at */
#define HTTP_ADDR_KEY (INET6_ADDRSTRLEN + 4)

static _Thread_local char error_buf[HTTP_ERROR_SIZE];

struct http_server {
	struct MHD_Daemon *daemon;
	http_handler_t *handler;
	void *ctx;
	size_t max_body_size;
	unsigned int port;
	FILE *access_log;
	pthread_mutex_t log_lock;
	char trusted_proxy[INET6_ADDRSTRLEN]; /* "" for none */
	http_admit_t *admit;
	void (*state_free)(void *state);
	unsigned int header_timeout;
	unsigned int per_address; /* 0: no cap */
	size_t max_buffered;
	/* Under conn_lock: the open connections, body bytes held. */
	pthread_mutex_t conn_lock;
	pthread_cond_t sweep_cond;
	struct conn_track *tracks;
	size_t buffered;
	bool stopping;
	bool sweeper_started;
	pthread_t sweeper;
};

/* One accepted connection (MHD's socket context), in server->tracks. */
struct conn_track {
	struct conn_track *prev, *next;
	int fd;
	ino_t ino;                /* the socket's inode: a reused fd is not ours */
	struct timespec deadline; /* for a complete request head */
	bool in_request;          /* head complete, answer not yet finished */
	bool cut;                 /* shut down by the sweep or the per-address cap */
	bool counted;             /* counts against its address's cap */
	char key[HTTP_ADDR_KEY];  /* http_address_prefix of the peer */
};

struct http_stream {
	pthread_mutex_t lock;
	unsigned int refs;
	struct buf queue;
	int wake_fd; /* eventfd: written when bytes are queued or on close */
	bool closed;
	bool client_gone;
	bool attached; /* handed to a response */
	uint64_t bytes_sent;
	http_stream_closed_cb_t *closed_cb;
	void *closed_ctx;
};

struct http_response {
	unsigned int status;
	char *content_type;
	unsigned char *body;
	size_t body_len;
	bool body_borrowed; /* body is the caller's (set_body_static): never freed */
	char *header_names[HTTP_MAX_RESPONSE_HEADERS];
	char *header_values[HTTP_MAX_RESPONSE_HEADERS];
	unsigned int header_count;
	struct http_stream *stream; /* the server's reference */
	char auth_label[HTTP_MAX_AUTH_LABEL];
};

/* One request on a connection; MHD's con_cls. Created by the URI log
 * callback (the first thing MHD calls) so the raw URI is kept. */
struct http_exchange {
	struct http_server *server;
	char *uri;         /* as sent: path and query; cut at '?' once split */
	const char *query; /* NULL until split off the URI */
	struct timespec started;
	char method[HTTP_MAX_METHOD];
	bool headers_seen;
	struct buf body;
	unsigned int status; /* 0 until a response is queued */
	uint64_t body_bytes;
	char auth_label[HTTP_MAX_AUTH_LABEL];
	struct http_stream *stream; /* a reference while the request lives */
	size_t reserved;            /* body bytes counted in server->buffered */
	void *state;                /* from the admit callback */
};

/* The content reader's state for a streamed response. */
struct stream_reader {
	struct http_stream *stream; /* a reference until MHD frees the response */
	int client_fd;
};

/* -------------------------------------------------------------- streams */

int http_stream_create(size_t max_queued, http_stream_closed_cb_t *closed_cb, void *closed_ctx,
                       struct http_stream **stream_r, const char **error_r)
{
	if (max_queued == 0) {
		*error_r = "stream queue size must be at least 1 byte";
		return -1;
	}
	struct http_stream *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		snprintf(error_buf, sizeof(error_buf), "eventfd: %s", strerror(errno));
		free(s);
		*error_r = error_buf;
		return -1;
	}
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		close(s->wake_fd);
		free(s);
		*error_r = "cannot create a mutex";
		return -1;
	}
	s->refs = 1;
	buf_init(&s->queue, max_queued);
	s->closed_cb = closed_cb;
	s->closed_ctx = closed_ctx;
	*stream_r = s;
	return 0;
}

static void stream_wake(struct http_stream *s)
{
	uint64_t one = 1;
	/* A full counter (never in practice) still leaves the fd readable. */
	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		abort();
}

static void stream_ref(struct http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->refs++;
	pthread_mutex_unlock(&s->lock);
}

static void stream_release(struct http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	bool last = --s->refs == 0;
	pthread_mutex_unlock(&s->lock);
	if (!last)
		return;
	close(s->wake_fd);
	buf_free(&s->queue);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int http_stream_send(struct http_stream *s, const void *data, size_t len, const char **error_r)
{
	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		*error_r = "stream is closed";
		return -1;
	}
	if (buf_append(&s->queue, data, len) < 0) {
		s->closed = true;
		buf_free(&s->queue);
		pthread_mutex_unlock(&s->lock);
		stream_wake(s);
		*error_r = "stream queue full (client too slow); stream closed";
		return -1;
	}
	pthread_mutex_unlock(&s->lock);
	stream_wake(s);
	return 0;
}

void http_stream_close(struct http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	bool was_closed = s->closed;
	s->closed = true;
	if (!was_closed)
		buf_free(&s->queue); /* dropped and wiped: nothing more goes out */
	pthread_mutex_unlock(&s->lock);
	if (!was_closed)
		stream_wake(s);
}

void http_stream_finish(struct http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	bool was_closed = s->closed;
	s->closed = true; /* the reader hands out what is queued, then ends */
	pthread_mutex_unlock(&s->lock);
	if (!was_closed)
		stream_wake(s);
}

bool http_stream_is_closed(struct http_stream *s)
{
	pthread_mutex_lock(&s->lock);
	bool closed = s->closed;
	pthread_mutex_unlock(&s->lock);
	return closed;
}

void http_stream_unref(struct http_stream **stream)
{
	if (*stream == NULL)
		return;
	http_stream_close(*stream);
	stream_release(*stream);
	*stream = NULL;
}

/* MHD's content reader, on the connection's thread (thread-per-connection
 * mode lets it block): hand out queued bytes, or wait in poll() for more
 * bytes, a close, or the client hanging up. */
static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct stream_reader *rd = cls;
	struct http_stream *s = rd->stream;
	(void)pos;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		if (s->queue.len > 0) {
			size_t n = s->queue.len < max ? s->queue.len : max;
			memcpy(out, s->queue.data, n);
			buf_consume(&s->queue, n);
			s->bytes_sent += n;
			pthread_mutex_unlock(&s->lock);
			return (ssize_t)n;
		}
		if (s->closed) {
			bool gone = s->client_gone;
			pthread_mutex_unlock(&s->lock);
			return gone ? MHD_CONTENT_READER_END_WITH_ERROR
			            : MHD_CONTENT_READER_END_OF_STREAM;
		}
		pthread_mutex_unlock(&s->lock);

		/* The client sends nothing on an event stream; a hang-up shows
		 * as POLLRDHUP/POLLHUP (also when the server shuts the socket
		 * down on stop). */
		struct pollfd p[2] = {{.fd = rd->client_fd, .events = POLLRDHUP},
		                      {.fd = s->wake_fd, .events = POLLIN}};
		int ret = poll(p, 2, -1);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0 || p[0].revents != 0) {
			pthread_mutex_lock(&s->lock);
			if (!s->closed) {
				s->closed = true;
				s->client_gone = true;
			}
			pthread_mutex_unlock(&s->lock);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (p[1].revents & POLLIN) {
			uint64_t v;
			if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
}

static void stream_reader_free(void *cls)
{
	struct stream_reader *rd = cls;
	stream_release(rd->stream);
	free(rd);
}

/* ------------------------------------------------------------ responses */

static bool has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			return true;
	return false;
}

static bool is_token(const char *s)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	if (*s == '\0' || strlen(s) > 64)
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c != '\0' && strchr(extra, c) != NULL)))
			return false;
	}
	return true;
}

int http_response_set_status(struct http_response *resp, unsigned int status, const char **error_r)
{
	if (status < 200 || status > 999) {
		*error_r = "HTTP status out of range (200-999)";
		return -1;
	}
	resp->status = status;
	return 0;
}

static int set_content_type(struct http_response *resp, const char *content_type,
                            const char **error_r)
{
	if (content_type == NULL || has_ctl(content_type) ||
	    strlen(content_type) > HTTP_MAX_HEADER_VALUE) {
		*error_r = "invalid content type";
		return -1;
	}
	char *copy = strdup(content_type);
	if (copy == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	free(resp->content_type);
	resp->content_type = copy;
	return 0;
}

static void clear_body(struct http_response *resp)
{
	if (!resp->body_borrowed)
		free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
	resp->body_borrowed = false;
	if (resp->stream != NULL) {
		stream_release(resp->stream);
		resp->stream = NULL;
	}
}

int http_response_set_body(struct http_response *resp, const char *content_type, void *body,
                           size_t len, const char **error_r)
{
	if ((body == NULL && len > 0) || set_content_type(resp, content_type, error_r) < 0) {
		if (body == NULL && len > 0)
			*error_r = "body is NULL";
		free(body);
		return -1;
	}
	clear_body(resp);
	resp->body = body;
	resp->body_len = len;
	return 0;
}

int http_response_set_body_static(struct http_response *resp, const char *content_type,
                                  const void *body, size_t len, const char **error_r)
{
	if ((body == NULL && len > 0) || set_content_type(resp, content_type, error_r) < 0) {
		if (body == NULL && len > 0)
			*error_r = "body is NULL";
		return -1;
	}
	clear_body(resp);
	/* The cast only lets the one body field hold it: a borrowed body is
	 * never written nor freed here, and MHD only reads it. */
	resp->body = (unsigned char *)(uintptr_t)body;
	resp->body_len = len;
	resp->body_borrowed = true;
	return 0;
}

int http_response_set_body_copy(struct http_response *resp, const char *content_type,
                                const void *body, size_t len, const char **error_r)
{
	void *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (len > 0)
		memcpy(copy, body, len);
	return http_response_set_body(resp, content_type, copy, len, error_r);
}

int http_response_add_header(struct http_response *resp, const char *name, const char *value,
                             const char **error_r)
{
	static const char *const reserved[] = {"Content-Type", "Content-Length",
	                                       "Transfer-Encoding", "Connection"};
	if (!is_token(name)) {
		*error_r = "invalid header name";
		return -1;
	}
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
		if (strcasecmp(name, reserved[i]) == 0) {
			*error_r = "header is set by the server";
			return -1;
		}
	}
	if (has_ctl(value) || strlen(value) > HTTP_MAX_HEADER_VALUE) {
		*error_r = "invalid header value";
		return -1;
	}
	if (resp->header_count == HTTP_MAX_RESPONSE_HEADERS) {
		*error_r = "too many response headers";
		return -1;
	}
	char *n = strdup(name), *v = strdup(value);
	if (n == NULL || v == NULL) {
		free(n);
		free(v);
		*error_r = "out of memory";
		return -1;
	}
	resp->header_names[resp->header_count] = n;
	resp->header_values[resp->header_count] = v;
	resp->header_count++;
	return 0;
}

int http_response_set_auth_label(struct http_response *resp, const char *label,
                                 const char **error_r)
{
	size_t len = strlen(label);
	if (len == 0 || len >= HTTP_MAX_AUTH_LABEL) {
		*error_r = "auth label empty or too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (label[i] <= 0x20 || label[i] >= 0x7f) {
			*error_r = "auth label must be printable ASCII without spaces";
			return -1;
		}
	}
	memcpy(resp->auth_label, label, len + 1);
	return 0;
}

int http_response_set_stream(struct http_response *resp, const char *content_type,
                             struct http_stream *stream, const char **error_r)
{
	pthread_mutex_lock(&stream->lock);
	bool taken = stream->attached;
	stream->attached = true;
	pthread_mutex_unlock(&stream->lock);
	if (taken) {
		*error_r = "stream already handed to a response";
		return -1;
	}
	if (set_content_type(resp, content_type, error_r) < 0) {
		pthread_mutex_lock(&stream->lock);
		stream->attached = false;
		pthread_mutex_unlock(&stream->lock);
		return -1;
	}
	clear_body(resp);
	stream_ref(stream);
	resp->stream = stream;
	return 0;
}

static void response_clear(struct http_response *resp)
{
	clear_body(resp);
	free(resp->content_type);
	resp->content_type = NULL;
	for (unsigned int i = 0; i < resp->header_count; i++) {
		free(resp->header_names[i]);
		free(resp->header_values[i]);
	}
	resp->header_count = 0;
}

/* ------------------------------------------------------------- requests */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)conn;
	struct http_exchange *ex = calloc(1, sizeof(*ex));
	if (ex == NULL)
		return NULL;
	ex->server = cls;
	ex->uri = strdup(uri != NULL ? uri : "");
	clock_gettime(CLOCK_MONOTONIC, &ex->started);
	buf_init(&ex->body, ex->server->max_body_size);
	return ex;
}

/* Count n more body bytes against the server-wide cap; false if they do
 * not fit. */
static bool body_reserve(struct http_exchange *ex, size_t n)
{
	struct http_server *server = ex->server;
	pthread_mutex_lock(&server->conn_lock);
	bool fits = n <= server->max_buffered - server->buffered;
	if (fits) {
		server->buffered += n;
		ex->reserved += n;
	}
	pthread_mutex_unlock(&server->conn_lock);
	return fits;
}

static void body_release(struct http_exchange *ex)
{
	buf_free(&ex->body);
	if (ex->reserved == 0)
		return;
	pthread_mutex_lock(&ex->server->conn_lock);
	ex->server->buffered -= ex->reserved;
	pthread_mutex_unlock(&ex->server->conn_lock);
	ex->reserved = 0;
}

static void exchange_free(struct http_exchange *ex)
{
	if (ex->stream != NULL)
		stream_release(ex->stream);
	body_release(ex);
	if (ex->state != NULL) {
		if (ex->server->state_free != NULL)
			ex->server->state_free(ex->state);
		else
			free(ex->state);
	}
	free(ex->uri);
	free(ex);
}

/* Queue a short plain-text answer made by the server itself (413, 500). */
static enum MHD_Result queue_plain(struct MHD_Connection *conn, struct http_exchange *ex,
                                   unsigned int status, const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	if (ret == MHD_YES) {
		ex->status = status;
		ex->body_bytes = strlen(text);
	}
	return ret;
}

/* Parse a Content-Length value strictly; false if it is not one. */
static bool parse_length(const char *s, uint64_t *len_r)
{
	uint64_t v = 0;
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*len_r = v;
	return true;
}

static struct MHD_Response *build_response(struct MHD_Connection *conn, struct http_response *resp)
{
	struct MHD_Response *r;
	if (resp->stream != NULL) {
		const union MHD_ConnectionInfo *info =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		struct stream_reader *rd = malloc(sizeof(*rd));
		if (info == NULL || rd == NULL) {
			free(rd);
			return NULL;
		}
		rd->stream = resp->stream;
		rd->client_fd = info->connect_fd;
		stream_ref(rd->stream);
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, HTTP_STREAM_BLOCK,
		                                      stream_read, rd, stream_reader_free);
		if (r == NULL) {
			stream_reader_free(rd);
			return NULL;
		}
		/* A stream lives as long as the application wants: no idle
		 * timeout, and the connection ends with it. */
		MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)0);
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	} else {
		if (resp->body_len > 0 && resp->body_borrowed) {
			/* The caller's memory, sent as it is: it outlives the server. */
			r = MHD_create_response_from_buffer(resp->body_len, resp->body,
			                                    MHD_RESPMEM_PERSISTENT);
		} else if (resp->body_len > 0) {
			r = MHD_create_response_from_buffer(resp->body_len, resp->body,
			                                    MHD_RESPMEM_MUST_FREE);
			if (r != NULL)
				resp->body = NULL; /* MHD frees it now */
		} else {
			r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		}
		if (r == NULL)
			return NULL;
	}
	if ((resp->content_type != NULL &&
	     MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, resp->content_type) !=
	         MHD_YES)) {
		MHD_destroy_response(r);
		return NULL;
	}
	for (unsigned int i = 0; i < resp->header_count; i++) {
		if (MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]) !=
		    MHD_YES) {
			MHD_destroy_response(r);
			return NULL;
		}
	}
	return r;
}

/* The peer's address as text, "-" if unknown; behind the trusted proxy the
 * last X-Forwarded-For entry (the one that proxy added) if it is an address. */
static void client_address(const struct http_server *server, struct MHD_Connection *conn,
                           char *addr, size_t size)
{
	snprintf(addr, size, "-");
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
		          (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		          addr, (socklen_t)size);
	if (server->trusted_proxy[0] == '\0' || strcmp(addr, server->trusted_proxy) != 0)
		return;
	const char *xff = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For");
	if (xff == NULL)
		return;
	const char *last = strrchr(xff, ',');
	last = last != NULL ? last + 1 : xff;
	while (*last == ' ' || *last == '\t')
		last++;
	char cand[INET6_ADDRSTRLEN];
	size_t len = strcspn(last, " \t");
	if (len == 0 || len >= sizeof(cand) || last[len + strspn(last + len, " \t")] != '\0')
		return;
	memcpy(cand, last, len);
	cand[len] = '\0';
	unsigned char bin[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, cand, bin) == 1 || inet_pton(AF_INET6, cand, bin) == 1)
		snprintf(addr, size, "%s", cand);
}

/* The request as the application sees it; the URI is split at its first
 * '?' (once: the split survives into the later calls). */
static void fill_request(struct MHD_Connection *conn, struct http_exchange *ex, char *addr,
                         size_t addr_size, struct http_request *req)
{
	client_address(ex->server, conn, addr, addr_size);
	if (ex->query == NULL) {
		char *q = strchr(ex->uri, '?');
		if (q != NULL)
			*q++ = '\0';
		ex->query = q != NULL ? q : "";
	}
	*req = (struct http_request){
	    .method = ex->method,
	    .path = ex->uri,
	    .query = ex->query,
	    .authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
	    .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
	    .accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept"),
	    .last_event_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID"),
	    .remote_addr = addr,
	    .body = ex->body.data != NULL ? ex->body.data : (const unsigned char *)"",
	    .body_len = ex->body.len,
	    .state = ex->state,
	    .content_length = -1,
	    .internal = conn,
	};
	uint64_t len;
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	if (cl != NULL && parse_length(cl, &len) && len <= (uint64_t)LLONG_MAX)
		req->content_length = (long long)len;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
	if (req->internal == NULL)
		return NULL;
	return MHD_lookup_connection_value(req->internal, MHD_HEADER_KIND, name);
}

/* Queue what the application put into resp (and clear resp). With
 * must_close the connection ends after the answer (a body may be unread). */
static enum MHD_Result queue_app_response(struct MHD_Connection *conn, struct http_exchange *ex,
                                          struct http_response *resp, bool must_close)
{
	memcpy(ex->auth_label, resp->auth_label, sizeof(ex->auth_label));
	if (resp->status == 0) {
		response_clear(resp);
		return queue_plain(conn, ex, 500, "internal server error\n");
	}
	size_t body_len = resp->body_len;
	struct MHD_Response *r = build_response(conn, resp);
	if (r == NULL) {
		response_clear(resp);
		return queue_plain(conn, ex, 500, "internal server error\n");
	}
	if (must_close && resp->stream == NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	if (ret == MHD_YES) {
		ex->status = resp->status;
		if (resp->stream != NULL) {
			ex->stream = resp->stream; /* the response's reference moves here */
			resp->stream = NULL;
		} else {
			ex->body_bytes = body_len;
		}
	}
	response_clear(resp);
	return ret;
}

/* The whole request is in: run the handler and queue its answer. */
static enum MHD_Result run_handler(struct MHD_Connection *conn, struct http_exchange *ex)
{
	struct http_server *server = ex->server;
	char addr[INET6_ADDRSTRLEN];
	struct http_request req;
	fill_request(conn, ex, addr, sizeof(addr), &req);
	struct http_response resp;
	memset(&resp, 0, sizeof(resp));
	server->handler(server->ctx, &req, &resp);
	body_release(ex);
	return queue_app_response(conn, ex, &resp, false);
}

static struct conn_track *conn_track_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci != NULL ? ci->socket_context : NULL;
}

static void deadline_in(struct timespec *ts, unsigned int seconds)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)seconds;
}

/* First call for a request: its head is complete. Admission, then the
 * body's bounds (per request and server-wide). */
static enum MHD_Result on_headers(struct MHD_Connection *conn, struct http_exchange *ex,
                                  const char *method)
{
	struct http_server *server = ex->server;
	ex->headers_seen = true;
	snprintf(ex->method, sizeof(ex->method), "%s", method);
	struct conn_track *t = conn_track_of(conn);
	if (t != NULL) {
		pthread_mutex_lock(&server->conn_lock);
		t->in_request = true; /* the head came in time */
		pthread_mutex_unlock(&server->conn_lock);
	}

	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
	uint64_t len = 0;
	bool has_length = cl != NULL && parse_length(cl, &len);
	bool has_body = (has_length && len > 0) || te != NULL;
	if (has_length && len > server->max_body_size)
		return queue_plain(conn, ex, 413, "request body too large\n");

	if (server->admit != NULL) {
		char addr[INET6_ADDRSTRLEN];
		struct http_request req;
		fill_request(conn, ex, addr, sizeof(addr), &req);
		struct http_response resp;
		memset(&resp, 0, sizeof(resp));
		void *state = NULL;
		server->admit(server->ctx, &req, &resp, &state);
		ex->state = state;
		if (resp.status != 0) /* refused: the body is never read */
			return queue_app_response(conn, ex, &resp, has_body);
		response_clear(&resp);
	}

	if (has_length && len > 0) {
		/* Exactly the announced size (plus the NUL) is allocated. */
		buf_init(&ex->body, (size_t)len);
		if (!body_reserve(ex, (size_t)len + 1)) {
			struct http_response resp;
			memset(&resp, 0, sizeof(resp));
			const char *err;
			static const char text[] =
			    "server busy: too many request bodies in memory\n";
			http_response_set_status(&resp, 503, &err);
			http_response_add_header(&resp, "Retry-After", "5", &err);
			http_response_set_body_copy(&resp, "text/plain; charset=utf-8", text,
			                            sizeof(text) - 1, &err);
			return queue_app_response(conn, ex, &resp, true);
		}
	}
	return MHD_YES; /* MHD sends 100 Continue if asked for */
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct http_exchange *ex = *con_cls;
	(void)cls;
	(void)url;
	(void)version;

	if (ex == NULL || ex->uri == NULL)
		return MHD_NO; /* out of memory in on_uri */
	if (!ex->headers_seen)
		return on_headers(conn, ex, method);
	if (*upload_data_size > 0) {
		/* A body without Content-Length (chunked) is counted as it grows,
		 * by exactly what the buffer will have allocated. libmicrohttpd
		 * cannot answer in the middle of an upload: past either bound the
		 * connection ends. */
		size_t n = *upload_data_size;
		if (n > ex->server->max_body_size - ex->body.len)
			return MHD_NO;
		size_t cap = buf_capacity_for(&ex->body, n);
		if (cap > ex->reserved && !body_reserve(ex, cap - ex->reserved))
			return MHD_NO;
		if (buf_append(&ex->body, upload_data, n) < 0)
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return run_handler(conn, ex);
}

/* Bytes of the path as they go into the access log. */
static void log_path(const char *uri, char *out, size_t size)
{
	size_t i = 0;
	for (; uri[i] != '\0' && uri[i] != '?' && i < size - 1 && i < HTTP_MAX_LOG_PATH; i++) {
		unsigned char c = (unsigned char)uri[i];
		out[i] = c > 0x20 && c < 0x7f ? (char)c : '?';
	}
	if (i == 0)
		out[i++] = '-';
	out[i] = '\0';
}

static void write_access_log(struct http_server *server, struct http_exchange *ex,
                             struct MHD_Connection *conn, uint64_t bytes)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	int64_t ms = (int64_t)(now.tv_sec - ex->started.tv_sec) * 1000 +
	             (now.tv_nsec - ex->started.tv_nsec) / 1000000;
	time_t t = time(NULL);
	struct tm tm;
	char when[32] = "-";
	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);

	char addr[INET6_ADDRSTRLEN];
	client_address(server, conn, addr, sizeof(addr));
	char path[HTTP_MAX_LOG_PATH + 1], method[HTTP_MAX_METHOD];
	log_path(ex->uri != NULL ? ex->uri : "", path, sizeof(path));
	log_path(ex->method, method, sizeof(method));
	char status[16] = "-";
	if (ex->status != 0)
		snprintf(status, sizeof(status), "%u", ex->status);

	pthread_mutex_lock(&server->log_lock);
	fprintf(server->access_log, "%s %s %s %s %s %" PRIu64 " %" PRId64 "ms %s\n", when, addr,
	        method, path, status, bytes, ms < 0 ? 0 : ms,
	        ex->auth_label[0] != '\0' ? ex->auth_label : "-");
	fflush(server->access_log);
	pthread_mutex_unlock(&server->log_lock);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_server *server = cls;
	struct http_exchange *ex = *con_cls;
	(void)toe;
	if (ex == NULL)
		return;
	*con_cls = NULL;

	uint64_t bytes = ex->body_bytes;
	struct http_stream *s = ex->stream;
	if (s != NULL) {
		pthread_mutex_lock(&s->lock);
		if (!s->closed) {
			s->closed = true;
			s->client_gone = true;
		}
		bool gone = s->client_gone;
		bytes = s->bytes_sent;
		pthread_mutex_unlock(&s->lock);
		if (s->closed_cb != NULL)
			s->closed_cb(s->closed_ctx, gone);
	}
	if (server->access_log != NULL)
		write_access_log(server, ex, conn, bytes);
	exchange_free(ex);
	/* A kept-alive connection's next request head has the same deadline. */
	struct conn_track *t = conn_track_of(conn);
	if (t != NULL) {
		pthread_mutex_lock(&server->conn_lock);
		t->in_request = false;
		deadline_in(&t->deadline, server->header_timeout);
		pthread_mutex_unlock(&server->conn_lock);
	}
}

/* ---------------------------------------------------------- connections */

/* End a connection from outside its thread: shutting the socket down wakes
 * libmicrohttpd's connection thread, which reads end-of-file and closes it.
 * The inode check keeps a descriptor number that was already closed and
 * reused by another socket from being touched. Under conn_lock. */
static void conn_cut(struct conn_track *t)
{
	struct stat st;
	if (!t->cut && fstat(t->fd, &st) == 0 && st.st_ino == t->ino)
		shutdown(t->fd, SHUT_RDWR);
	t->cut = true;
}

/* MHD_OPTION_NOTIFY_CONNECTION: keep track of each connection (header
 * deadline) and enforce the per-address cap as soon as it is accepted. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct http_server *server = cls;
	if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn_track *t = *socket_context;
		if (t == NULL)
			return;
		pthread_mutex_lock(&server->conn_lock);
		if (t->prev != NULL)
			t->prev->next = t->next;
		else
			server->tracks = t->next;
		if (t->next != NULL)
			t->next->prev = t->prev;
		pthread_mutex_unlock(&server->conn_lock);
		free(t);
		*socket_context = NULL;
		return;
	}
	const union MHD_ConnectionInfo *fdi =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct conn_track *t = calloc(1, sizeof(*t));
	struct stat st;
	if (fdi == NULL || t == NULL || fstat(fdi->connect_fd, &st) < 0) {
		if (fdi != NULL)
			shutdown(fdi->connect_fd, SHUT_RDWR); /* cannot watch it: refuse it */
		free(t);
		return;
	}
	t->fd = fdi->connect_fd;
	t->ino = st.st_ino;
	deadline_in(&t->deadline, server->header_timeout);

	/* The peer's own address (X-Forwarded-For is not in yet, and the
	 * trusted proxy carries everyone's connections: it is not capped). */
	char addr[INET6_ADDRSTRLEN] = "";
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET,
			          &((const struct sockaddr_in *)(const void *)sa)->sin_addr, addr,
			          sizeof(addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6,
			          &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, addr,
			          sizeof(addr));
	}
	t->counted = server->per_address > 0 &&
	             http_address_prefix(addr, t->key, sizeof(t->key)) == 0 &&
	             strcmp(addr, server->trusted_proxy) != 0;

	pthread_mutex_lock(&server->conn_lock);
	if (t->counted) {
		unsigned int same = 0;
		for (struct conn_track *o = server->tracks; o != NULL; o = o->next)
			if (o->counted && strcmp(o->key, t->key) == 0)
				same++;
		if (same >= server->per_address) {
			t->counted = false; /* closed at once: it does not count */
			conn_cut(t);
		}
	}
	t->next = server->tracks;
	if (t->next != NULL)
		t->next->prev = t;
	server->tracks = t;
	pthread_mutex_unlock(&server->conn_lock);
	*socket_context = t;
}

/* Every HTTP_SWEEP_MS: cut the connections whose request head is late. */
static void *sweep_thread(void *arg)
{
	struct http_server *server = arg;
	pthread_mutex_lock(&server->conn_lock);
	while (!server->stopping) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (struct conn_track *t = server->tracks; t != NULL; t = t->next) {
			if (t->in_request || t->cut)
				continue;
			if (now.tv_sec > t->deadline.tv_sec || (now.tv_sec == t->deadline.tv_sec &&
			                                        now.tv_nsec >= t->deadline.tv_nsec))
				conn_cut(t);
		}
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += HTTP_SWEEP_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&server->sweep_cond, &server->conn_lock, &until);
	}
	pthread_mutex_unlock(&server->conn_lock);
	return NULL;
}

/* --------------------------------------------------------------- server */

/* Read a PEM file of at most HTTP_MAX_PEM_SIZE bytes, NUL-terminated, into
 * memory from alloc (malloc or sodium_malloc). */
static int read_pem(const char *path, bool secret, char **data_r, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(error_buf, sizeof(error_buf), "cannot open %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		*error_r = error_buf;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > HTTP_MAX_PEM_SIZE) {
		close(fd);
		snprintf(error_buf, sizeof(error_buf), "%s: not a regular file of 1 byte to 1 MiB",
		         path);
		*error_r = error_buf;
		return -1;
	}
	size_t size = (size_t)st.st_size;
	char *data = secret ? sodium_malloc(size + 1) : malloc(size + 1);
	if (data == NULL) {
		close(fd);
		*error_r = "out of memory";
		return -1;
	}
	size_t got = 0;
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got != size) {
		if (secret)
			sodium_free(data);
		else
			free(data);
		snprintf(error_buf, sizeof(error_buf), "%s: short read", path);
		*error_r = error_buf;
		return -1;
	}
	data[size] = '\0';
	*data_r = data;
	return 0;
}

static int check_settings(const struct http_settings *set, const char **error_r)
{
	if (set->address == NULL) {
		*error_r = "no listen address";
		return -1;
	}
	if (set->port > 65535) {
		*error_r = "port out of range";
		return -1;
	}
	if (set->max_body_size == 0 || set->max_connections == 0 || set->timeout_seconds == 0) {
		*error_r = "max_body_size, max_connections and timeout_seconds must be at least 1";
		return -1;
	}
	if ((set->tls_cert_file == NULL) != (set->tls_key_file == NULL)) {
		*error_r = "TLS needs both a certificate file and a key file";
		return -1;
	}
	if (set->tls_cert_file != NULL && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		*error_r = "this libmicrohttpd has no TLS support: terminate TLS in a reverse "
		           "proxy and listen on loopback without tls settings";
		return -1;
	}
	return 0;
}

static void sweeper_stop(struct http_server *server)
{
	if (!server->sweeper_started)
		return;
	pthread_mutex_lock(&server->conn_lock);
	server->stopping = true;
	pthread_cond_signal(&server->sweep_cond);
	pthread_mutex_unlock(&server->conn_lock);
	pthread_join(server->sweeper, NULL);
	server->sweeper_started = false;
}

/* libmicrohttpd says only that the daemon did not start. Say why: bind the
 * address ourselves (the daemon is gone, so nothing of ours holds it) to
 * tell a busy or forbidden address from a certificate or key GnuTLS
 * refused. */
static void start_failure_text(const struct http_settings *settings,
                               const struct sockaddr_storage *ss, char *buf, size_t size)
{
	int bind_errno = 0;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		bind_errno = errno;
	} else {
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                          : sizeof(struct sockaddr_in);
		if (bind(fd, (const struct sockaddr *)ss, len) < 0)
			bind_errno = errno;
		close(fd);
	}
	if (bind_errno == EADDRINUSE)
		snprintf(buf, size,
		         "cannot listen on %s port %u: the address is in use (another process "
		         "listens there: stop it or choose another --listen)",
		         settings->address, settings->port);
	else if (bind_errno == EACCES)
		snprintf(buf, size,
		         "cannot listen on %s port %u: permission denied (ports below 1024 need "
		         "privileges: choose a higher port)",
		         settings->address, settings->port);
	else if (bind_errno != 0)
		snprintf(buf, size, "cannot listen on %s port %u: %s", settings->address,
		         settings->port, strerror(bind_errno));
	else if (settings->tls_cert_file != NULL)
		snprintf(buf, size,
		         "cannot start the HTTPS server on %s port %u: the TLS certificate %s or "
		         "key %s was refused (each must be PEM, and the key must match the "
		         "certificate)",
		         settings->address, settings->port, settings->tls_cert_file,
		         settings->tls_key_file);
	else
		snprintf(buf, size,
		         "cannot start the HTTP server on %s port %u (out of memory or threads)",
		         settings->address, settings->port);
}

int http_server_start(const struct http_settings *settings, http_handler_t *handler, void *ctx,
                      struct http_server **server_r, const char **error_r)
{
	if (check_settings(settings, error_r) < 0)
		return -1;

	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	unsigned int flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                     MHD_USE_AUTO | MHD_USE_ITC; /* for http_server_quiesce() */
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, settings->address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)settings->port);
	} else if (inet_pton(AF_INET6, settings->address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)settings->port);
		flags |= MHD_USE_IPv6;
	} else {
		*error_r = "listen address is not a numeric IPv4 or IPv6 address";
		return -1;
	}

	/* The proxy's address in the form client_address() prints, so that
	 * "::1" and "0:0::1" compare equal. */
	char proxy[INET6_ADDRSTRLEN] = "";
	if (settings->trusted_proxy != NULL) {
		unsigned char bin[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET, settings->trusted_proxy, bin) == 1)
			inet_ntop(AF_INET, bin, proxy, sizeof(proxy));
		else if (inet_pton(AF_INET6, settings->trusted_proxy, bin) == 1)
			inet_ntop(AF_INET6, bin, proxy, sizeof(proxy));
		else {
			*error_r = "trusted proxy is not a numeric IPv4 or IPv6 address";
			return -1;
		}
	}

	char *cert = NULL, *key = NULL;
	if (settings->tls_cert_file != NULL) {
		if (sodium_init() < 0) {
			*error_r = "libsodium initialisation failed";
			return -1;
		}
		if (read_pem(settings->tls_cert_file, false, &cert, error_r) < 0)
			return -1;
		if (read_pem(settings->tls_key_file, true, &key, error_r) < 0) {
			free(cert);
			return -1;
		}
		flags |= MHD_USE_TLS;
	}

	struct http_server *server = calloc(1, sizeof(*server));
	pthread_condattr_t cattr;
	bool cattr_ok = pthread_condattr_init(&cattr) == 0 &&
	                pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC) == 0;
	if (server == NULL || !cattr_ok || pthread_mutex_init(&server->log_lock, NULL) != 0 ||
	    pthread_mutex_init(&server->conn_lock, NULL) != 0 ||
	    pthread_cond_init(&server->sweep_cond, &cattr) != 0) {
		free(server);
		free(cert);
		if (key != NULL)
			sodium_free(key);
		*error_r = "out of memory";
		return -1;
	}
	server->handler = handler;
	server->ctx = ctx;
	server->max_body_size = settings->max_body_size;
	server->access_log = settings->access_log;
	memcpy(server->trusted_proxy, proxy, sizeof(proxy));
	pthread_condattr_destroy(&cattr);
	server->admit = settings->admit;
	server->state_free = settings->state_free;
	server->header_timeout = settings->header_timeout_seconds != 0
	                             ? settings->header_timeout_seconds
	                             : settings->timeout_seconds;
	server->per_address = settings->max_connections_per_address;
	server->max_buffered = settings->max_buffered_bytes;
	if (server->max_buffered == 0)
		server->max_buffered =
		    settings->max_body_size > SIZE_MAX / settings->max_connections
		        ? SIZE_MAX
		        : settings->max_body_size * settings->max_connections;
	if (pthread_create(&server->sweeper, NULL, sweep_thread, server) != 0) {
		free(cert);
		if (key != NULL)
			sodium_free(key);
		pthread_cond_destroy(&server->sweep_cond);
		pthread_mutex_destroy(&server->conn_lock);
		pthread_mutex_destroy(&server->log_lock);
		free(server);
		*error_r = "cannot start a thread";
		return -1;
	}
	server->sweeper_started = true;

	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
	    {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HTTP_TLS_PRIORITIES},
	    {MHD_OPTION_END, 0, NULL},
	};
	struct MHD_OptionItem no_opts[] = {{MHD_OPTION_END, 0, NULL}};
	server->daemon = MHD_start_daemon(
	    flags, (uint16_t)settings->port, NULL, NULL, on_access, server, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_URI_LOG_CALLBACK, on_uri, server,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, server, MHD_OPTION_NOTIFY_CONNECTION,
	    on_connection, server, MHD_OPTION_CONNECTION_LIMIT, settings->max_connections,
	    MHD_OPTION_CONNECTION_TIMEOUT, settings->timeout_seconds,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_HEADER_MEMORY, MHD_OPTION_ARRAY,
	    cert != NULL ? tls_opts : no_opts, MHD_OPTION_END);
	free(cert);
	if (key != NULL)
		sodium_free(key); /* wipes it; GnuTLS holds its own parsed copy */
	if (server->daemon == NULL) {
		sweeper_stop(server);
		pthread_cond_destroy(&server->sweep_cond);
		pthread_mutex_destroy(&server->conn_lock);
		pthread_mutex_destroy(&server->log_lock);
		free(server);
		start_failure_text(settings, &ss, error_buf, sizeof(error_buf));
		*error_r = error_buf;
		return -1;
	}
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(server->daemon, MHD_DAEMON_INFO_BIND_PORT);
	server->port = info != NULL ? info->port : settings->port;
	*server_r = server;
	return 0;
}

unsigned int http_server_port(const struct http_server *server)
{
	return server->port;
}

void http_server_quiesce(struct http_server *server)
{
	MHD_socket fd =
	    server->daemon != NULL ? MHD_quiesce_daemon(server->daemon) : MHD_INVALID_SOCKET;
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
}

void http_server_stop(struct http_server **server)
{
	if (*server == NULL)
		return;
	/* MHD shuts every connection's socket down, which wakes the stream
	 * readers (POLLHUP), and joins the connection threads. */
	if ((*server)->daemon != NULL)
		MHD_stop_daemon((*server)->daemon);
	sweeper_stop(*server);
	pthread_cond_destroy(&(*server)->sweep_cond);
	pthread_mutex_destroy(&(*server)->conn_lock);
	pthread_mutex_destroy(&(*server)->log_lock);
	free(*server);
	*server = NULL;
}
