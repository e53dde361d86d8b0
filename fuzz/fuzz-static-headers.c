/* libFuzzer target: the request headers the web app's files are served by
 * (daemon-webparse.h): If-None-Match against a file's ETag and
 * Accept-Encoding for the gzip copy.
 *
 * The first byte picks the parser, the rest is its input:
 *   0  an If-None-Match value, '\n', an ETag
 *   1  an If-None-Match value, against an ETag as serve makes them
 *   2  an Accept-Encoding value
 * Beyond sanitizer reports, a few facts are checked: "*" and the ETag
 * itself (also weak, also in a list) match, and the answers do not change
 * when a list gets an empty element or an element the parsers ignore. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon-webparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char serve_etag[] = "\"0123456789abcdef01234567\"";

static void etag(const char *text, bool split)
{
	char *inm = strdup(text);
	if (inm == NULL)
		abort();
	const char *tag = serve_etag;
	char *nl = split ? strchr(inm, '\n') : NULL;
	if (nl != NULL) {
		*nl = '\0';
		tag = nl + 1;
	}
	bool m = daemon_static_etag_matches(inm, tag);
	if (!daemon_static_etag_matches("*", tag))
		abort();
	/* An extra empty element, or one more tag after it, keeps a match. */
	size_t n = strlen(inm) + strlen(tag) + 16;
	char *more = malloc(n);
	if (more == NULL)
		abort();
	snprintf(more, n, "%s, ,", inm);
	if (daemon_static_etag_matches(more, tag) != m)
		abort();
	/* A tag as an ETag can be: not empty, no comma, no blank at either
	 * end, not itself weak ("W/..."; serve's are strong). */
	if (strchr(tag, ',') == NULL && tag[0] != '\0' && strchr(" \t", tag[0]) == NULL &&
	    strchr(" \t", tag[strlen(tag) - 1]) == NULL && strncmp(tag, "W/", 2) != 0) {
		snprintf(more, n, "%s,%s", inm, tag);
		if (!daemon_static_etag_matches(more, tag))
			abort();
		snprintf(more, n, "W/%s", tag);
		if (!daemon_static_etag_matches(more, tag))
			abort();
	}
	free(more);
	free(inm);
}

static void encoding(const char *ae)
{
	bool g = daemon_static_accepts_gzip(ae);
	size_t n = strlen(ae) + 16;
	char *more = malloc(n);
	if (more == NULL)
		abort();
	/* Leading empty elements change nothing. */
	snprintf(more, n, ", ,%s", ae);
	if (daemon_static_accepts_gzip(more) != g)
		abort();
	free(more);
	if (daemon_static_accepts_gzip(NULL) || !daemon_static_accepts_gzip("gzip") ||
	    daemon_static_accepts_gzip("gzip;q=0") || daemon_static_accepts_gzip("gzip;q=0\t"))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 4096)
		return 0;
	char *text = strndup((const char *)data + 1, size - 1);
	if (text == NULL)
		abort();
	switch (data[0] % 3) {
	case 0:
		etag(text, true);
		break;
	case 1:
		etag(text, false);
		break;
	default:
		encoding(text);
		break;
	}
	free(text);
	return 0;
}
