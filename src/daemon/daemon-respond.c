/* The daemon's responses (JSON, RFC 7807 problems) and the little parsing
 * of request URLs the routes share. */
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-internal.h"
#include "http/http.h"

void daemon_respond_json(struct http_response *resp, unsigned status, json_t *body)
{
	const char *err;
	char *text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	http_response_set_status(resp, status, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/json", text, strlen(text), &err);
}

/* Every error body is an RFC 7807 problem, as RFC 8620 3.6.1 has it. */
void daemon_respond_problem(struct http_response *resp, unsigned status, const char *type,
                            const char *detail)
{
	const char *err;
	json_t *body =
	    json_pack("{s:s,s:i,s:s}", "type", type, "status", (int)status, "detail", detail);
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	http_response_set_status(resp, status, &err);
	if (text != NULL)
		http_response_set_body(resp, "application/problem+json", text, strlen(text), &err);
}

/* Value of a query parameter (no percent-decoding: our values are simple). */
bool daemon_query_param(const char *query, const char *name, char *out, size_t size)
{
	size_t nlen = strlen(name);
	for (const char *p = query; p != NULL && *p != '\0';) {
		const char *end = strchr(p, '&');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			size_t vlen = len - nlen - 1;
			if (vlen >= size)
				return false;
			memcpy(out, p + nlen + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* Percent-decode src into dst (size > 0); false if malformed or too long. */
bool daemon_percent_decode(const char *src, char *dst, size_t size)
{
	size_t o = 0;
	for (const char *p = src; *p != '\0'; p++) {
		char c = *p;
		if (c == '%') {
			if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
				return false;
			const char hex[3] = {p[1], p[2], '\0'};
			c = (char)strtoul(hex, NULL, 16);
			p += 2;
		}
		if (c == '\0' || o + 1 >= size)
			return false;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return true;
}
