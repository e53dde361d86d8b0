/* libFuzzer target: arbitrary bytes as JSON, fed as an Email create object
 * (RFC 8621 4.6) through the MIME builder. "B1" is a known blob, every
 * other blob id is unknown. A built message must be within the size bound,
 * CRLF-only, and parse again with GMime; a refusal must say why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime-build.h"
#include "mime/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SIZE (256 * 1024)

static int blobs(void *ctx, const char *id, void **data_r, size_t *len_r)
{
	(void)ctx;
	if (strcmp(id, "B1") != 0)
		return 0;
	static const char bytes[] = "Subject: attached\r\n\r\n\x00\x01\xff binary\r\n";
	*data_r = malloc(sizeof(bytes));
	if (*data_r == NULL)
		return -1;
	memcpy(*data_r, bytes, sizeof(bytes));
	*len_r = sizeof(bytes);
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		mime_init();
		ready = 1;
	}
	if (size > 64 * 1024)
		return 0;
	json_error_t je;
	/* What the JMAP envelope lets through: no duplicate keys; NUL inside
	 * strings may come (the builder refuses it). */
	json_t *j =
	    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
	if (j == NULL)
		return 0;
	char *msg = NULL;
	size_t len = 0;
	struct mime_build_error e;
	if (mime_build_email(j, blobs, NULL, MAX_SIZE, 1700000000, &msg, &len, &e) == 0) {
		if (len > MAX_SIZE)
			abort();
		for (size_t i = 0; i < len; i++)
			if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
				abort();
		struct mime_summary s;
		if (mime_summarize(msg, len, &s) == 0)
			mime_summary_free(&s);
		free(msg);
	} else if (e.status == MIME_BUILD_OK || e.description == NULL) {
		abort();
	}
	json_decref(j);
	return 0;
}
