/* The web app's files (see daemon-internal.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-internal.h"
#include "http/http.h"

struct daemon_static {
	int unused;
};

static const char no_web_root[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>mailkeep</title></head>"
    "<body><h1>mailkeep</h1><p>The web app is not installed. Build it with "
    "<code>scripts/build-web.sh</code> (or give serve <code>--web-root DIR</code>).</p>"
    "</body></html>\n";

int daemon_static_load(const char *dir, struct daemon_static **static_r, char *note, size_t size)
{
	(void)dir;
	*static_r = NULL;
	snprintf(note, size, "no web app");
	return 0;
}

void daemon_static_free(struct daemon_static **st)
{
	free(*st);
	*st = NULL;
}

bool daemon_static_path(const char *path)
{
	return strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
	       strncmp(path, "/assets/", 8) == 0;
}

void daemon_handle_static(struct daemon *sv, const struct http_request *req,
                          struct http_response *resp)
{
	const char *err;
	(void)sv;
	(void)req;
	http_response_set_status(resp, 404, &err);
	http_response_set_body_copy(resp, "text/html; charset=utf-8", no_web_root,
	                            sizeof(no_web_root) - 1, &err);
}
