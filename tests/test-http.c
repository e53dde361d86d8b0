/* Tests for src/http: a real server on 127.0.0.1 (port 0) and a real client
 * (libcurl, and raw sockets where the test needs to see the bytes). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http/http.h"
#include "test.h"

struct app {
	atomic_int calls;
	atomic_int closed_calls;
	atomic_bool closed_client_gone;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct http_stream *stream; /* the latest stream handed out */
	atomic_int slow_inside;
	atomic_bool slow_release;
};

static void stream_closed(void *ctx, bool client_gone)
{
	struct app *app = ctx;
	app->closed_client_gone = client_gone;
	app->closed_calls++;
}

/* Routes: /echo returns the request as text; /slow waits until released;
 * /events answers with a stream; anything else gets 404 from the handler. */
static void handler(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct app *app = ctx;
	const char *error;
	app->calls++;
	if (strcmp(req->path, "/addr") == 0) {
		OK(http_response_set_status(resp, 200, &error));
		OK(http_response_set_body_copy(resp, "text/plain", req->remote_addr,
		                               strlen(req->remote_addr), &error));
		return;
	}
	if (strcmp(req->path, "/echo") == 0) {
		char text[512];
		int n = snprintf(
		    text, sizeof(text), "%s %s q=%s auth=%s ct=%s len=%zu body=%.*s", req->method,
		    req->path, req->query, req->authorization != NULL ? "yes" : "no",
		    req->content_type != NULL ? req->content_type : "-", req->body_len,
		    (int)(req->body_len > 100 ? 100 : req->body_len), (const char *)req->body);
		CHECK(n > 0 && (size_t)n < sizeof(text));
		CHECK(strcmp(req->remote_addr, "127.0.0.1") == 0);
		OK(http_response_set_status(resp, 200, &error));
		OK(http_response_set_body_copy(resp, "text/plain", text, (size_t)n, &error));
		OK(http_response_add_header(resp, "Cache-Control", "no-store", &error));
		OK(http_response_set_auth_label(resp, "alice/phone", &error));
		/* Bad setter input is refused and changes nothing. */
		REFUSED(http_response_add_header(resp, "X-Evil", "a\r\nSet-Cookie: x", &error),
		        "invalid header value");
		REFUSED(http_response_add_header(resp, "Content-Length", "1", &error),
		        "set by the server");
		REFUSED(http_response_add_header(resp, "Bad Name", "1", &error),
		        "invalid header name");
		REFUSED(http_response_set_auth_label(resp, "has space", &error), "printable");
		REFUSED(http_response_set_status(resp, 101, &error), "out of range");
	} else if (strcmp(req->path, "/static") == 0) {
		/* A borrowed body replaces an owned one (freed) and is sent as
		 * it is, never freed (ASan would catch a free of a constant). */
		static const char page[] = "a constant page\n";
		OK(http_response_set_status(resp, 200, &error));
		OK(http_response_set_body_copy(resp, "text/plain", "replaced", 8, &error));
		REFUSED(http_response_set_body_static(resp, "text/plain", NULL, 3, &error),
		        "body is NULL");
		OK(http_response_set_body_static(resp, "text/plain", page, sizeof(page) - 1,
		                                 &error));
	} else if (strcmp(req->path, "/static-then-copy") == 0) {
		/* An owned body replaces a borrowed one: the constant is not freed,
		 * the copy is (by the server, after sending). */
		OK(http_response_set_status(resp, 200, &error));
		OK(http_response_set_body_static(resp, "text/plain", "borrowed", 8, &error));
		OK(http_response_set_body_copy(resp, "text/plain", "owned", 5, &error));
	} else if (strcmp(req->path, "/slow") == 0) {
		app->slow_inside++;
		while (!app->slow_release)
			usleep(1000);
		app->slow_inside--;
		OK(http_response_set_status(resp, 204, &error));
	} else if (strcmp(req->path, "/events") == 0) {
		struct http_stream *s;
		OK(http_stream_create(4096, stream_closed, app, &s, &error));
		OK(http_stream_send(s, ": hello\n\n", 9, &error));
		OK(http_response_set_status(resp, 200, &error));
		OK(http_response_set_stream(resp, "text/event-stream", s, &error));
		REFUSED(http_response_set_stream(resp, "text/event-stream", s, &error), "already");
		OK(http_response_add_header(resp, "Cache-Control", "no-cache", &error));
		pthread_mutex_lock(&app->lock);
		if (app->stream != NULL)
			http_stream_unref(&app->stream);
		app->stream = s;
		pthread_cond_broadcast(&app->cond);
		pthread_mutex_unlock(&app->lock);
	} else if (strcmp(req->path, "/nostatus") == 0) {
		/* The handler forgets to answer: the server sends 500. */
	} else {
		OK(http_response_set_status(resp, 404, &error));
		OK(http_response_set_body_copy(resp, "text/plain", "no such thing\n", 14, &error));
		OK(http_response_add_header(resp, "WWW-Authenticate", "Bearer realm=\"mk\"",
		                            &error));
	}
}

struct body {
	char data[8192];
	size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t len = size * n;
	if (len > sizeof(b->data) - 1 - b->len)
		len = sizeof(b->data) - 1 - b->len;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return size * n;
}

/* One request with libcurl; returns the status (0 on a transport error). */
static long request(unsigned int port, const char *method, const char *path, const char *body,
                    size_t body_len, const char *extra_header, struct body *out)
{
	char url[256];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
	CURL *c = curl_easy_init();
	CHECK(c != NULL);
	struct curl_slist *h = NULL;
	h = curl_slist_append(h, "Authorization: Bearer SECRET-TOKEN-123");
	h = curl_slist_append(h, "Expect:");
	if (extra_header != NULL)
		h = curl_slist_append(h, extra_header);
	out->len = 0;
	out->data[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	}
	long status = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

static int connect_to(unsigned int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	return fd;
}

static void send_all(int fd, const char *s)
{
	size_t len = strlen(s);
	CHECK(send(fd, s, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* Read until the peer closes or timeout_ms passes; returns 1 on EOF, 0 on
 * timeout, and the bytes read so far in out. */
static int read_until_eof(int fd, struct body *out, int timeout_ms)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long elapsed =
		    (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (elapsed >= timeout_ms)
			return 0;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)(timeout_ms - elapsed)) <= 0)
			continue;
		char tmp[1024];
		ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
		if (n <= 0)
			return 1;
		size_t room = sizeof(out->data) - 1 - out->len;
		size_t k = (size_t)n < room ? (size_t)n : room;
		memcpy(out->data + out->len, tmp, k);
		out->len += k;
		out->data[out->len] = '\0';
	}
}

/* Read until the buffer contains want (or fail after 5 s). */
static void read_until(int fd, struct body *out, const char *want)
{
	for (int i = 0; i < 500 && strstr(out->data, want) == NULL; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10) <= 0)
			continue;
		ssize_t n = recv(fd, out->data + out->len, sizeof(out->data) - 1 - out->len, 0);
		CHECK(n > 0);
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	if (strstr(out->data, want) == NULL) {
		fprintf(stderr, "waited for '%s', got '%s'\n", want, out->data);
		exit(1);
	}
}

static struct http_stream *wait_stream(struct app *app)
{
	pthread_mutex_lock(&app->lock);
	while (app->stream == NULL)
		pthread_cond_wait(&app->cond, &app->lock);
	struct http_stream *s = app->stream;
	app->stream = NULL;
	pthread_mutex_unlock(&app->lock);
	return s;
}

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 2000 && *v != want; i++)
		usleep(1000);
	CHECK(*v == want);
}

static long ms_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void test_settings(void)
{
	const char *error;
	struct http_server *server = NULL;
	struct http_settings set = {.address = "127.0.0.1",
	                            .max_body_size = 10,
	                            .max_connections = 4,
	                            .timeout_seconds = 5};
	struct http_settings bad = set;
	bad.address = "localhost";
	REFUSED(http_server_start(&bad, handler, NULL, &server, &error), "numeric");
	bad = set;
	bad.max_body_size = 0;
	REFUSED(http_server_start(&bad, handler, NULL, &server, &error), "at least 1");
	bad = set;
	bad.tls_cert_file = "/nonexistent.pem";
	REFUSED(http_server_start(&bad, handler, NULL, &server, &error), "both");
	bad.tls_key_file = "/nonexistent.key";
	REFUSED(http_server_start(&bad, handler, NULL, &server, &error), "cannot open");
	bad = set;
	bad.port = 70000;
	REFUSED(http_server_start(&bad, handler, NULL, &server, &error), "port");
	CHECK(server == NULL);
	http_server_stop(&server); /* NULL is fine */

	struct http_stream *s = NULL;
	REFUSED(http_stream_create(0, NULL, NULL, &s, &error), "at least");
	CHECK(s == NULL);
	http_stream_unref(&s);
}

static void test_requests(struct app *app, unsigned int port, FILE *log)
{
	struct body b;
	CHECK(request(port, "GET", "/echo?a=1&b=%20", NULL, 0, NULL, &b) == 200);
	CHECK_STR(b.data, "GET /echo q=a=1&b=%20 auth=yes ct=- len=0 body=");
	CHECK(request(port, "POST", "/echo", "{\"x\":1}", 7, "Content-Type: application/json",
	              &b) == 200);
	CHECK_STR(b.data, "POST /echo q= auth=yes ct=application/json len=7 body={\"x\":1}");

	/* Exactly the limit passes; one byte more is 413 and the handler
	 * never sees it. */
	char big[101];
	memset(big, 'x', sizeof(big));
	CHECK(request(port, "POST", "/echo", big, 100, NULL, &b) == 200);
	int before = app->calls;
	CHECK(request(port, "POST", "/echo", big, 101, NULL, &b) == 413);
	CHECK(app->calls == before);

	/* A chunked body past the limit ends the connection. */
	int fd = connect_to(port);
	send_all(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "64\r\n");
	for (int i = 0; i < 2; i++)
		send_all(
		    fd, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		        "xxxxxxxxxxxxxxxxxxxxxxxxxx");
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	CHECK(read_until_eof(fd, &raw, 3000) == 1);
	CHECK(strstr(raw.data, "200") == NULL);
	close(fd);
	CHECK(app->calls == before);

	/* Borrowed (no-copy) bodies. */
	CHECK(request(port, "GET", "/static", NULL, 0, NULL, &b) == 200);
	CHECK_STR(b.data, "a constant page\n");
	CHECK(request(port, "GET", "/static", NULL, 0, NULL, &b) == 200);
	CHECK_STR(b.data, "a constant page\n");
	CHECK(request(port, "GET", "/static-then-copy", NULL, 0, NULL, &b) == 200);
	CHECK_STR(b.data, "owned");

	/* Unknown paths are the handler's business. */
	CHECK(request(port, "GET", "/no/such/path", NULL, 0, NULL, &b) == 404);
	CHECK_STR(b.data, "no such thing\n");
	CHECK(request(port, "DELETE", "/whatever", NULL, 0, NULL, &b) == 404);
	CHECK(request(port, "GET", "/nostatus", NULL, 0, NULL, &b) == 500);

	/* The raw response carries the handler's headers. */
	fd = connect_to(port);
	send_all(fd, "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	raw.len = 0;
	raw.data[0] = '\0';
	CHECK(read_until_eof(fd, &raw, 3000) == 1);
	close(fd);
	CHECK(strstr(raw.data, "HTTP/1.1 200") == raw.data);
	CHECK(strstr(raw.data, "Cache-Control: no-store\r\n") != NULL);
	CHECK(strstr(raw.data, "Content-Type: text/plain\r\n") != NULL);
	CHECK(strstr(raw.data, "X-Evil") == NULL && strstr(raw.data, "Set-Cookie") == NULL);

	/* Oversized headers are answered by libmicrohttpd, not the handler. */
	before = app->calls;
	fd = connect_to(port);
	char line[HTTP_HEADER_MEMORY + 64];
	memset(line, 'a', sizeof(line));
	memcpy(line, "GET /echo HTTP/1.1\r\nX-Big: ", 27);
	line[sizeof(line) - 1] = '\0';
	(void)send(fd, line, strlen(line), MSG_NOSIGNAL);
	raw.len = 0;
	raw.data[0] = '\0';
	CHECK(read_until_eof(fd, &raw, 3000) == 1);
	close(fd);
	CHECK(app->calls == before);

	/* The access log: one line per request, the label, never the token. */
	fflush(log);
	rewind(log);
	char text[16384];
	size_t n = fread(text, 1, sizeof(text) - 1, log);
	text[n] = '\0';
	CHECK(strstr(text, "SECRET") == NULL && strstr(text, "Bearer") == NULL);
	CHECK(strstr(text, " 127.0.0.1 GET /echo 200 ") != NULL);
	CHECK(strstr(text, "ms alice/phone\n") != NULL);
	CHECK(strstr(text, " POST /echo 413 ") != NULL);
	CHECK(strstr(text, " GET /no/such/path 404 14 ") != NULL);
	CHECK(strstr(text, "a=1") == NULL); /* no query strings */
	fseek(log, 0, SEEK_END);
}

static void test_stream_server_close(struct app *app, unsigned int port)
{
	const char *error;
	int fd = connect_to(port);
	send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
	struct http_stream *s = wait_stream(app);
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	read_until(fd, &raw, ": hello");
	CHECK(strstr(raw.data, "Content-Type: text/event-stream") != NULL);
	CHECK(strstr(raw.data, "Cache-Control: no-cache") != NULL);
	for (int i = 1; i <= 3; i++) {
		char ev[64];
		snprintf(ev, sizeof(ev), "id: %d\ndata: {\"n\":%d}\n\n", i, i);
		OK(http_stream_send(s, ev, strlen(ev), &error));
		snprintf(ev, sizeof(ev), "data: {\"n\":%d}", i);
		read_until(fd, &raw, ev);
	}
	CHECK(!http_stream_is_closed(s));
	int closed_before = app->closed_calls;

	/* The server side closes (a revoked token): the client's connection
	 * ends promptly. */
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	http_stream_close(s);
	CHECK(http_stream_is_closed(s));
	REFUSED(http_stream_send(s, "x", 1, &error), "closed");
	CHECK(read_until_eof(fd, &raw, 2000) == 1);
	CHECK(ms_since(&start) < 1000);
	CHECK(strstr(raw.data, "data: {\"n\":3}\n\n") != NULL);
	close(fd);
	wait_for(&app->closed_calls, closed_before + 1);
	CHECK(!app->closed_client_gone);
	http_stream_unref(&s);
	CHECK(s == NULL);
}

static void test_stream_client_leaves(struct app *app, unsigned int port)
{
	const char *error;
	int fd = connect_to(port);
	send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *s = wait_stream(app);
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	read_until(fd, &raw, ": hello");
	int closed_before = app->closed_calls;

	/* The client goes away while nothing is being sent: noticed at once,
	 * the callback runs, and sending fails. */
	close(fd);
	for (int i = 0; i < 2000 && !http_stream_is_closed(s); i++)
		usleep(1000);
	CHECK(http_stream_is_closed(s));
	wait_for(&app->closed_calls, closed_before + 1);
	CHECK(app->closed_client_gone);
	REFUSED(http_stream_send(s, "data: x\n\n", 9, &error), "closed");
	http_stream_unref(&s);
}

static void test_stream_overflow(struct app *app, unsigned int port)
{
	const char *error;
	int fd = connect_to(port);
	send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *s = wait_stream(app);
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	read_until(fd, &raw, ": hello");
	/* The client stops reading; the queue (4 KiB) and socket buffers fill
	 * up; the stream closes instead of growing. */
	char chunk[4000];
	memset(chunk, 'x', sizeof(chunk));
	int i;
	for (i = 0; i < 100000; i++) {
		if (http_stream_send(s, chunk, sizeof(chunk), &error) < 0)
			break;
	}
	CHECK(i < 100000);
	CHECK(strstr(error, "queue full") != NULL);
	CHECK(http_stream_is_closed(s));
	close(fd);
	http_stream_unref(&s);
}

/* A stream the application drops while the client waits: the connection
 * ends (unref closes). */
static void test_stream_unref_closes(struct app *app, unsigned int port)
{
	int fd = connect_to(port);
	send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *s = wait_stream(app);
	http_stream_unref(&s);
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	CHECK(read_until_eof(fd, &raw, 2000) == 1);
	close(fd);
}

/* Bytes queued before http_stream_finish() go out, then the stream ends;
 * a later unref does not drop them. */
static void test_stream_finish(struct app *app, unsigned int port)
{
	const char *error;
	int fd = connect_to(port);
	send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *s = wait_stream(app);
	OK(http_stream_send(s, "data: last\n\n", 12, &error));
	http_stream_finish(s);
	http_stream_unref(&s);
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	CHECK(read_until_eof(fd, &raw, 2000) == 1);
	CHECK(strstr(raw.data, "data: last") != NULL);
	close(fd);
}

/* X-Forwarded-For is believed only from the trusted proxy, and only its
 * last entry, and only if it is an address. */
static void test_trusted_proxy(void)
{
	const char *error;
	struct app app = {.calls = 0};
	struct http_settings set = {.address = "127.0.0.1",
	                            .max_body_size = 100,
	                            .max_connections = 4,
	                            .timeout_seconds = 5};
	struct http_settings bad = set;
	bad.trusted_proxy = "proxy.example";
	struct http_server *server = NULL;
	REFUSED(http_server_start(&bad, handler, &app, &server, &error), "trusted proxy");
	struct body out;
	const char *xff = "X-Forwarded-For: 10.9.9.9, 192.0.2.7";
	OK(http_server_start(&set, handler, &app, &server, &error));
	CHECK(request(http_server_port(server), "GET", "/addr", NULL, 0, xff, &out) == 200);
	CHECK_STR(out.data, "127.0.0.1"); /* no proxy configured: ignored */
	http_server_stop(&server);

	set.trusted_proxy = "127.0.0.1";
	OK(http_server_start(&set, handler, &app, &server, &error));
	unsigned int port = http_server_port(server);
	CHECK(request(port, "GET", "/addr", NULL, 0, xff, &out) == 200);
	CHECK_STR(out.data, "192.0.2.7");
	CHECK(request(port, "GET", "/addr", NULL, 0, "X-Forwarded-For: 2001:db8::1", &out) == 200);
	CHECK_STR(out.data, "2001:db8::1");
	CHECK(request(port, "GET", "/addr", NULL, 0, "X-Forwarded-For: 1.2.3.4, evil host", &out) ==
	      200);
	CHECK_STR(out.data, "127.0.0.1");
	CHECK(request(port, "GET", "/addr", NULL, 0, NULL, &out) == 200);
	CHECK_STR(out.data, "127.0.0.1");
	http_server_stop(&server);
}

struct slow_arg {
	unsigned int port;
	long status;
};

static void *slow_request(void *p)
{
	struct slow_arg *a = p;
	struct body b;
	a->status = request(a->port, "GET", "/slow", NULL, 0, NULL, &b);
	return NULL;
}

static void test_connection_limit(void)
{
	const char *error;
	struct app app = {.calls = 0};
	pthread_mutex_init(&app.lock, NULL);
	pthread_cond_init(&app.cond, NULL);
	struct http_settings set = {.address = "127.0.0.1",
	                            .max_body_size = 1024,
	                            .max_connections = 2,
	                            .timeout_seconds = 5};
	struct http_server *server;
	OK(http_server_start(&set, handler, &app, &server, &error));
	unsigned int port = http_server_port(server);

	/* Two handlers run at once (on two threads); a third connection is
	 * turned away while they hold their connections. */
	pthread_t t[2];
	struct slow_arg args[2] = {{port, 0}, {port, 0}};
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, slow_request, &args[i]) == 0);
	wait_for(&app.slow_inside, 2);
	struct body b;
	CHECK(request(port, "GET", "/echo", NULL, 0, NULL, &b) == 0);
	app.slow_release = true;
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK(args[i].status == 204);
	}
	/* Once they are done, requests are served again. */
	/* (A connection just closed may still count for a moment: the
	 * answer to a retry, not a second request, is what is checked.) */
	long served = 0;
	for (int i = 0;
	     i < 100 && (served = request(port, "GET", "/echo", NULL, 0, NULL, &b)) != 200; i++)
		usleep(10000);
	CHECK(served == 200);

	/* Stopping the server ends an open stream (client_gone: the
	 * application did not close it). */
	int fd = connect_to(port);
	send_all(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
	struct http_stream *s = wait_stream(&app);
	http_server_stop(&server);
	CHECK(server == NULL);
	CHECK(http_stream_is_closed(s));
	http_stream_unref(&s);
	struct body raw = {.len = 0};
	raw.data[0] = '\0';
	CHECK(read_until_eof(fd, &raw, 2000) == 1);
	close(fd);
	pthread_mutex_destroy(&app.lock);
	pthread_cond_destroy(&app.cond);
}

/* HTTPS with a throwaway self-signed certificate made by openssl(1). */
static void test_tls(void)
{
	const char *error;
	char dir[] = "/tmp/test-http-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char cmd[512], cert[128], key[128];
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(cmd, sizeof(cmd),
	         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	         "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1 "
	         "-keyout %s -out %s >/dev/null 2>&1",
	         key, cert);
	if (system(cmd) != 0) {
		printf("test-http: TLS test skipped: openssl(1) could not make a certificate\n");
		return;
	}
	struct app app = {.calls = 0};
	struct http_settings set = {.address = "127.0.0.1",
	                            .tls_cert_file = cert,
	                            .tls_key_file = key,
	                            .max_body_size = 1024,
	                            .max_connections = 4,
	                            .timeout_seconds = 5};
	struct http_server *server;
	OK(http_server_start(&set, handler, &app, &server, &error));
	char url[128];
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/echo", http_server_port(server));
	CURL *c = curl_easy_init();
	struct body b = {.len = 0};
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, cert);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	CHECK(curl_easy_perform(c) == CURLE_OK);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	CHECK(status == 200);
	CHECK(strstr(b.data, "GET /echo") == b.data);
	curl_easy_cleanup(c);
	http_server_stop(&server);

	/* A key that does not parse is refused at start. */
	FILE *f = fopen(key, "w");
	CHECK(f != NULL);
	fputs("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n", f);
	fclose(f);
	REFUSED(http_server_start(&set, handler, &app, &server, &error), "cannot start");
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

int main(void)
{
	const char *error;
	CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
	test_settings();

	struct app app = {.calls = 0};
	pthread_mutex_init(&app.lock, NULL);
	pthread_cond_init(&app.cond, NULL);
	FILE *log = tmpfile();
	CHECK(log != NULL);
	struct http_settings set = {.address = "127.0.0.1",
	                            .port = 0,
	                            .max_body_size = 100,
	                            .max_connections = 16,
	                            .timeout_seconds = 5,
	                            .access_log = log};
	struct http_server *server;
	OK(http_server_start(&set, handler, &app, &server, &error));
	unsigned int port = http_server_port(server);
	CHECK(port != 0);

	test_requests(&app, port, log);
	test_stream_server_close(&app, port);
	test_stream_client_leaves(&app, port);
	test_stream_overflow(&app, port);
	test_stream_unref_closes(&app, port);
	test_stream_finish(&app, port);
	http_server_stop(&server);
	fclose(log);
	pthread_mutex_destroy(&app.lock);
	pthread_cond_destroy(&app.cond);

	test_connection_limit();
	test_trusted_proxy();
	test_tls();
	curl_global_cleanup();
	TEST_DONE("test-http");
}
