/* libFuzzer target: message preparation for submission (header scan,
 * address lists through GMime, Bcc removal, Date/Message-ID) and the
 * address check. The first line of the input is taken as a --to address. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime-submit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	const uint8_t *nl = memchr(data, '\n', size);
	char to[300] = "";
	if (nl != NULL && (size_t)(nl - data) < sizeof(to) &&
	    memchr(data, '\0', (size_t)(nl - data)) == NULL) {
		memcpy(to, data, (size_t)(nl - data));
		to[nl - data] = '\0';
		(void)mime_submit_valid_address(to);
	}
	const char *rcpts[] = {to};
	struct mime_submission sub;
	const char *error;
	/* Once with the headers' recipients, once with the explicit one. */
	for (int explicit = 0; explicit < 2; explicit ++) {
		if (mime_submit_prepare(data, size, rcpts, explicit && to[0] != '\0' ? 1 : 0,
		                        explicit ? "me@example.org" : NULL, 1700000000, &sub,
		                        &error) == 0) {
			if (sub.len == 0 || sub.n_rcpts == 0 || sub.n_rcpts > MIME_SUBMIT_MAX_RCPTS)
				abort();
			for (size_t i = 0; i < sub.n_rcpts; i++)
				if (!mime_submit_valid_address(sub.rcpts[i]))
					abort();
			/* No bare LF, no NUL in what would be sent. */
			for (size_t i = 0; i < sub.len; i++)
				if (sub.data[i] == '\0' ||
				    (sub.data[i] == '\n' && (i == 0 || sub.data[i - 1] != '\r')))
					abort();
			mime_submission_free(&sub);
		}
	}
	return 0;
}
