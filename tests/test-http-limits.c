/* Tests for src/http's defences against clients that never authenticate:
 * admission on headers (the body of a refused request is never read), the
 * server-wide cap on body memory, the per-address connection cap and the
 * header deadline. A real server on 127.0.0.1 and raw sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http.h"
#include "test.h"

static atomic_int handled;
static atomic_int admitted;

/* Requests with "Authorization: ok" get in, with their state; others 401. */
static void admit(void *ctx, const struct http_request *req, struct http_response *resp,
                  void **state_r)
{
	const char *error;
	(void)ctx;
	CHECK(req->body_len == 0 && req->state == NULL);
	if (req->authorization == NULL || strcmp(req->authorization, "ok") != 0) {
		OK(http_response_set_status(resp, 401, &error));
		OK(http_response_set_body_copy(resp, "text/plain", "no\n", 3, &error));
		return;
	}
	admitted++;
	char *state = strdup("principal");
	CHECK(state != NULL);
	*state_r = state;
}

static void handler(void *ctx, const struct http_request *req, struct http_response *resp)
{
	const char *error;
	(void)ctx;
	handled++;
	CHECK(req->state != NULL && strcmp(req->state, "principal") == 0);
	char text[64];
	int n = snprintf(text, sizeof(text), "len=%zu q=%s", req->body_len, req->query);
	OK(http_response_set_status(resp, 200, &error));
	OK(http_response_set_body_copy(resp, "text/plain", text, (size_t)n, &error));
}

static int connect_from(unsigned int port, const char *source)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	CHECK(inet_pton(AF_INET, source, &sa.sin_addr) == 1);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	sa.sin_port = htons((uint16_t)port);
	CHECK(inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr) == 1);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

static void send_all(int fd, const char *s)
{
	size_t len = strlen(s);
	while (len > 0) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
		CHECK(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

/* Read until the peer closes or timeout_ms pass; returns bytes read, -1 if
 * the connection is still open at the end. */
static ssize_t read_until_close(int fd, char *out, size_t size, int timeout_ms)
{
	size_t got = 0;
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		ssize_t n = recv(fd, out + got, size - 1 - got, 0);
		if (n <= 0) {
			out[got] = '\0';
			return (ssize_t)got;
		}
		got += (size_t)n;
		if (got == size - 1)
			got = 0; /* keep only the latest bytes */
	}
	out[got] = '\0';
	return -1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	const char *error;
	struct http_settings set = {.address = "127.0.0.1",
	                            .max_body_size = 1000,
	                            .max_connections = 16,
	                            .timeout_seconds = 30,
	                            .header_timeout_seconds = 1,
	                            .max_connections_per_address = 3,
	                            .max_buffered_bytes = 1200,
	                            .admit = admit,
	                            .state_free = free};
	struct http_server *server;
	OK(http_server_start(&set, handler, NULL, &server, &error));
	unsigned int port = http_server_port(server);
	char buf[4096];

	/* Refused on its headers: 401 at once, although the announced body has
	 * not been sent, and the connection closes; the handler never runs. */
	int fd = connect_from(port, "127.0.0.2");
	send_all(fd, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n");
	CHECK(read_until_close(fd, buf, sizeof(buf), 3000) > 0);
	CHECK(strncmp(buf, "HTTP/1.1 401", 12) == 0);
	close(fd);
	CHECK(handled == 0);

	/* Admitted: the handler gets the body, the query and the state. */
	fd = connect_from(port, "127.0.0.2");
	send_all(fd, "POST /x?a=1 HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nConnection: close\r\n"
	             "Content-Length: 5\r\n\r\nhello");
	CHECK(read_until_close(fd, buf, sizeof(buf), 3000) > 0);
	CHECK(strstr(buf, "200") != NULL && strstr(buf, "len=5 q=a=1") != NULL);
	close(fd);
	CHECK(handled == 1);

	/* Body memory: two 700-byte bodies do not fit in 1200 bytes at once. */
	int a = connect_from(port, "127.0.0.3");
	send_all(
	    a, "POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 700\r\n\r\nab");
	usleep(200 * 1000);
	int b = connect_from(port, "127.0.0.4");
	send_all(b,
	         "POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nContent-Length: 700\r\n\r\n");
	CHECK(read_until_close(b, buf, sizeof(buf), 3000) > 0);
	CHECK(strncmp(buf, "HTTP/1.1 503", 12) == 0 && strstr(buf, "Retry-After: 5") != NULL);
	close(b);
	close(a); /* its reservation goes with it */
	usleep(200 * 1000);
	fd = connect_from(port, "127.0.0.4");
	send_all(fd, "POST /x HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nConnection: close\r\n"
	             "Content-Length: 700\r\n\r\n");
	char body[701];
	memset(body, 'z', 700);
	body[700] = '\0';
	send_all(fd, body);
	CHECK(read_until_close(fd, buf, sizeof(buf), 3000) > 0);
	CHECK(strstr(buf, "len=700") != NULL);
	close(fd);

	/* Per address: three connections from 127.0.0.5, a fourth is closed at
	 * once; another address is still served. */
	int held[3];
	for (int i = 0; i < 3; i++)
		held[i] = connect_from(port, "127.0.0.5");
	fd = connect_from(port, "127.0.0.5");
	CHECK(read_until_close(fd, buf, sizeof(buf), 2000) == 0);
	close(fd);
	fd = connect_from(port, "127.0.0.6");
	send_all(fd,
	         "GET /y HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\nConnection: close\r\n\r\n");
	CHECK(read_until_close(fd, buf, sizeof(buf), 3000) > 0 && strstr(buf, " 200 ") != NULL);
	close(fd);
	for (int i = 0; i < 3; i++)
		close(held[i]);

	/* Header deadline: a head trickled a byte every 200 ms is cut after
	 * about a second, although the idle timeout (30 s) never runs out. */
	fd = connect_from(port, "127.0.0.7");
	double t0 = now_s();
	bool closed = false;
	const char *slow =
	    "GET /y HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	for (size_t i = 0; slow[i] != '\0' && !closed; i++) {
		if (send(fd, slow + i, 1, MSG_NOSIGNAL) != 1) {
			closed = true;
			break;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 200) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
			closed = true;
	}
	double took = now_s() - t0;
	close(fd);
	CHECK(closed);
	CHECK(took >= 0.9 && took < 4);

	/* A kept-alive connection's next head has the same deadline. */
	fd = connect_from(port, "127.0.0.8");
	send_all(fd, "GET /y HTTP/1.1\r\nHost: x\r\nAuthorization: ok\r\n\r\n");
	t0 = now_s();
	CHECK(read_until_close(fd, buf, sizeof(buf), 5000) >= 0);
	took = now_s() - t0;
	CHECK(strstr(buf, " 200 ") != NULL || took >= 0.9);
	CHECK(took < 4);
	close(fd);

	http_server_stop(&server);
	CHECK(server == NULL);
	printf("test-http-limits: ok\n");
	return 0;
}
