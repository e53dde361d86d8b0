/*
 * What serve's wiping JSON free (daemon.c: every block jansson frees is
 * zeroed first, because request bodies hold passwords) costs on the JSON
 * work of a JMAP request, against a plain free().
 *
 *   json-wipe [--runs N]        (default 2000 of each shape)
 *
 * Two shapes, each done the way serve does it for one request: parse the
 * request body, build the response (jansson objects), dump it to text,
 * free everything:
 *   get50    Email/get of 50 ids with subject, from, receivedAt, preview,
 *            keywords (bench/jmap.sh's "get50")
 *   bodies   the same 50 with bodyValues of 8 KiB of text each (~420 KB)
 * Runs alternate plain and wiping free (the allocator functions switched
 * between runs, as nothing is allocated across them), and prints the p50
 * of each in microseconds and the difference. The difference is what the
 * wipe adds to one request; compare it with the request's end-to-end time
 * (bench/jmap.sh). Not a test: prints numbers.
 */
#include <jansson.h>
#include <malloc.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *plain_alloc(size_t size)
{
	return malloc(size);
}

static void plain_release(void *p)
{
	free(p);
}

/* The same functions as daemon.c's json_alloc/json_release. */
static void wipe_release(void *p)
{
	if (p != NULL) {
		sodium_memzero(p, malloc_usable_size(p));
		free(p);
	}
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static const char request_fmt[] =
    "{\"using\":[\"urn:ietf:params:jmap:core\",\"urn:ietf:params:jmap:mail\"],"
    "\"methodCalls\":[[\"Email/get\",{\"accountId\":\"alice\",\"ids\":[%s],"
    "\"properties\":[\"subject\",\"from\",\"receivedAt\",\"preview\",\"keywords\"%s]%s},"
    "\"g\"]]}";

/* One request of the shape: parse, build, dump, free. Returns bytes dumped. */
static size_t one_request(const char *request, size_t body_len)
{
	json_error_t jerr;
	json_t *req = json_loads(request, 0, &jerr);
	if (req == NULL) {
		fprintf(stderr, "json-wipe: bad request: %s\n", jerr.text);
		exit(1);
	}
	json_t *ids = json_object_get(
	    json_array_get(json_array_get(json_object_get(req, "methodCalls"), 0), 1), "ids");
	json_t *list = json_array();
	char *body = NULL;
	if (body_len > 0) {
		body = malloc(body_len + 1);
		for (size_t i = 0; i < body_len; i++)
			body[i] = (i % 73 == 72) ? '\n' : (char)('a' + (i * 7) % 26);
		body[body_len] = '\0';
	}
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		json_t *from = json_pack("[{s:s, s:s}]", "name", "Somebody Withalongname", "email",
		                         "somebody.withalongname@example.org");
		json_t *email = json_pack(
		    "{s:O, s:s, s:o, s:s, s:s, s:{s:b, s:b}}", "id", id, "subject",
		    "Re: the quarterly report, with the figures you asked for last week", "from",
		    from, "receivedAt", "2026-12-06T23:44:37Z", "preview",
		    "Thanks for the numbers. I went through them this morning and most of it looks "
		    "right, but the second table seems to count the returns twice; could you check "
		    "the totals before Friday? I have also attached",
		    "keywords", "$seen", 1, "$flagged", 0);
		if (body != NULL) {
			json_object_set_new(email, "bodyValues",
			                    json_pack("{s:{s:s, s:b, s:b}}", "1", "value", body,
			                              "isEncodingProblem", 0, "isTruncated", 0));
			json_object_set_new(email, "textBody",
			                    json_pack("[{s:s, s:s, s:i}]", "partId", "1", "type",
			                              "text/plain", "size", (json_int_t)body_len));
		}
		json_array_append_new(list, email);
	}
	json_t *resp = json_pack("{s:[[s, {s:s, s:s, s:o, s:[]}, s]], s:s}", "methodResponses",
	                         "Email/get", "accountId", "alice", "state", "12345", "list", list,
	                         "notFound", "g", "sessionState", "0a1b2c3d");
	char *text = json_dumps(resp, JSON_COMPACT);
	size_t n = strlen(text);
	free(text); /* json_dumps uses jansson's allocator: freed like serve does */
	json_decref(resp);
	json_decref(req);
	free(body);
	return n;
}

static void run_shape(const char *label, size_t body_len, int runs)
{
	char ids[50 * 12 + 1] = "";
	size_t off = 0;
	for (int k = 0; k < 50; k++)
		off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s\"M%08d\"", k ? "," : "",
		                        k * 37 + 1000);
	char request[2048];
	int n = snprintf(request, sizeof(request), request_fmt, ids,
	                 body_len > 0 ? ",\"bodyValues\",\"textBody\"" : "",
	                 body_len > 0 ? ",\"fetchAllBodyValues\":true" : "");
	if (n < 0 || (size_t)n >= sizeof(request)) {
		fprintf(stderr, "json-wipe: request does not fit\n");
		exit(1);
	}
	double *plain = calloc((size_t)runs, sizeof(double));
	double *wipe = calloc((size_t)runs, sizeof(double));
	size_t bytes = 0;
	for (int r = 0; r < 50; r++) /* warm the allocator */
		bytes = one_request(request, body_len);
	for (int r = 0; r < runs; r++) {
		json_set_alloc_funcs(plain_alloc, plain_release);
		double t0 = now_us();
		one_request(request, body_len);
		plain[r] = now_us() - t0;
		json_set_alloc_funcs(plain_alloc, wipe_release);
		t0 = now_us();
		one_request(request, body_len);
		wipe[r] = now_us() - t0;
	}
	qsort(plain, (size_t)runs, sizeof(double), cmp_double);
	qsort(wipe, (size_t)runs, sizeof(double), cmp_double);
	double p = plain[runs / 2], w = wipe[runs / 2];
	printf("%-7s response %7zu bytes: plain free p50 %8.1f us, wiping free p50 %8.1f us, "
	       "wipe adds %6.1f us (%+.1f %% of the JSON work)\n",
	       label, bytes, p, w, w - p, p > 0 ? (w - p) * 100.0 / p : 0.0);
	free(plain);
	free(wipe);
}

int main(int argc, char **argv)
{
	int runs = 2000;
	if (argc == 3 && strcmp(argv[1], "--runs") == 0) {
		char *end;
		long v = strtol(argv[2], &end, 10);
		if (*end != '\0' || v < 1 || v > 1000000) {
			fprintf(stderr, "usage: json-wipe [--runs N]\n");
			return 2;
		}
		runs = (int)v;
	} else if (argc != 1) {
		fprintf(stderr, "usage: json-wipe [--runs N]\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	run_shape("get50", 0, runs);
	run_shape("bodies", 8192, runs);
	return 0;
}
