/* libFuzzer target: the web app's sign-in parsers (daemon-webparse.h): the
 * Cookie header's mk_session value, the X-Mailkeep-CSRF check, the
 * Content-Type check and the JSON body of POST /mailkeep/session.
 *
 * The first byte picks the parser, the rest is its input:
 *   0  a Cookie header; the second byte is the token buffer's size
 *   1  a session token, '\n', an X-Mailkeep-CSRF value
 *   2  the sign-in body (any bytes, not NUL-terminated)
 *   3  a Content-Type value
 * Beyond sanitizer reports and leaks, each answer is checked against what
 * the input says: a cookie value found is 43 bytes of the header right
 * after "mk_session=", the CSRF check takes the token's own CSRF value and
 * nothing else, a parsed body has the username and password it holds. */
#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/daemon-webparse.h"
#include "hub/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CSRF_LEN 43

/* The CSRF value as the spec defines it: base64url(BLAKE2b-256 keyed with
 * the token, of "mailkeep-csrf"). */
static void csrf_ref(const char *token, char out[CSRF_LEN + 1])
{
	static const char what[] = "mailkeep-csrf";
	unsigned char mac[32];
	crypto_generichash(mac, sizeof(mac), (const unsigned char *)what, sizeof(what) - 1,
	                   (const unsigned char *)token, strlen(token));
	sodium_bin2base64(out, CSRF_LEN + 1, mac, sizeof(mac),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void cookie(const uint8_t *data, size_t size)
{
	if (size == 0)
		return;
	size_t bufsize = 1 + data[0] % 64;
	char *h = strndup((const char *)data + 1, size - 1);
	char *token = malloc(bufsize);
	if (h == NULL || token == NULL)
		abort();
	if (daemon_websession_cookie_parse(h, token, bufsize)) {
		size_t len = strlen(token);
		char needle[64];
		snprintf(needle, sizeof(needle), "mk_session=%s", token);
		if (len != HUB_WEB_SESSION_TOKEN_LEN || len >= bufsize || strstr(h, needle) == NULL)
			abort();
	}
	free(token);
	free(h);
}

static void csrf(const uint8_t *data, size_t size)
{
	char *text = strndup((const char *)data, size);
	if (text == NULL)
		abort();
	char *given = strchr(text, '\n');
	if (given != NULL)
		*given++ = '\0';
	char ref[CSRF_LEN + 1];
	if (strlen(text) != HUB_WEB_SESSION_TOKEN_LEN) {
		/* Not a session token: nothing passes (the first finding here:
		 * a token over 64 bytes, BLAKE2b's longest key, left the MAC
		 * uninitialised). */
		if (daemon_websession_csrf_ok(text, given) || daemon_websession_csrf_ok(text, ""))
			abort();
	} else {
		csrf_ref(text, ref);
		if (!daemon_websession_csrf_ok(text, ref) || daemon_websession_csrf_ok(text, NULL))
			abort();
		if (given != NULL &&
		    daemon_websession_csrf_ok(text, given) != (strcmp(given, ref) == 0))
			abort();
	}
	free(text);
}

static void body(const uint8_t *data, size_t size)
{
	/* Not NUL-terminated: the parser must keep to len (a copy of exactly
	 * size bytes, so ASan sees any read past it). */
	unsigned char *copy = malloc(size > 0 ? size : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, data, size);
	json_t *json = NULL;
	const char *user = NULL, *password = NULL;
	int r = daemon_websession_signin_parse(copy, size, &json, &user, &password);
	if (r == 0) {
		json_t *ju = json_object_get(json, "username"),
		       *jp = json_object_get(json, "password");
		if (json == NULL || user != json_string_value(ju) ||
		    password != json_string_value(jp) || strlen(password) != json_string_length(jp))
			abort();
	} else if (r != -1 || json != NULL) {
		abort();
	}
	daemon_websession_signin_free(json);
	free(copy);
}

static void content_type(const uint8_t *data, size_t size)
{
	char *t = strndup((const char *)data, size);
	if (t == NULL)
		abort();
	bool ok = daemon_websession_json_type(t);
	bool want = strncasecmp(t, "application/json", 16) == 0 && strchr("; ", t[16]) != NULL;
	if (ok != want)
		abort();
	free(t);
	if (daemon_websession_json_type(NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 8192)
		return 0;
	switch (data[0] % 4) {
	case 0:
		cookie(data + 1, size - 1);
		break;
	case 1:
		csrf(data + 1, size - 1);
		break;
	case 2:
		body(data + 1, size - 1);
		break;
	default:
		content_type(data + 1, size - 1);
		break;
	}
	return 0;
}
