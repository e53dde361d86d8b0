/* libFuzzer target: the envelope header parser (mime-envelope.c): fields,
 * unfolding, RFC 2047 words, addresses, dates, message ids, base subjects,
 * the attachment guess and the header filter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime-envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_envelope env;
	/* The total size varies with the input so both attachment paths run. */
	uint64_t total = size + (size > 0 ? data[0] % 2 : 0) * 100000;
	if (mime_envelope_parse(data, size, total, &env) == 0) {
		char *key = mime_casemap(env.base_subject);
		free(key);
		mime_envelope_free(&env);
	}
	/* A header filter whose name and value come from the input's end. */
	char name[16] = "subject", value[16] = "";
	if (size > 8) {
		memcpy(value, data + size - 4, 4);
		value[4] = '\0';
		mime_header_match(data, size, name, value);
		mime_header_match(data, size, "x-a", NULL);
	}
	char *s = malloc(size + 1);
	if (s != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		char *b = mime_base_subject(s);
		free(b);
		free(s);
	}
	return 0;
}
