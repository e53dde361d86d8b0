/* libFuzzer target: the audit log's strict line parser and the whole-file
 * verifier, iterator and tail reader on arbitrary bytes. Every line the
 * parser accepts must format back to exactly the same bytes (one spelling
 * per entry); anything else must fail cleanly. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];
static int fd = -1;

/* Parse each line; a parsed line must round-trip through the formatter. */
static void check_lines(const char *s, size_t size)
{
	static char storage[AUDIT_PARSE_STORAGE_SIZE], again[AUDIT_MAX_ENTRY_SIZE];
	size_t start = 0;
	while (start < size) {
		const char *nl = memchr(s + start, '\n', size - start);
		size_t len = nl != NULL ? (size_t)(nl - (s + start)) : size - start;
		struct audit_entry e;
		const char *error;
		if (audit_parse_line(s + start, len, &e, storage, sizeof(storage), &error) == 0) {
			char hash[AUDIT_HASH_HEX_SIZE];
			size_t again_len;
			if (audit_format_line(&e, again, sizeof(again), &again_len, hash, &error) <
			        0 ||
			    again_len != len + 1 ||
			    memcmp(again, s + start, len - AUDIT_HASH_FIELD_LEN) != 0) {
				fprintf(stderr, "parsed line does not format back: %.*s\n",
				        (int)len, s + start);
				abort();
			}
			int ret =
			    audit_check_line(s + start, len, &e, storage, sizeof(storage), &error);
			if (ret != (strcmp(hash, e.hash) == 0 ? 0 : 1))
				abort();
		}
		start += len + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error;

	if (fd < 0) {
		snprintf(path, sizeof(path), "/tmp/fuzz-audit-XXXXXX");
		fd = mkstemp(path);
		if (fd < 0)
			abort();
	}
	check_lines((const char *)data, size);

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	uint64_t count = 0;
	(void)audit_verify(path, NULL, 0, &count, &error);

	struct audit_iter *it;
	struct audit_entry e;
	if (audit_iter_init(path, &it, &error) == 0) {
		uint64_t seq = 0;
		while (audit_iter_next(it, &e)) {
			if (e.seq != ++seq || e.n_details > AUDIT_MAX_DETAILS)
				abort();
		}
		(void)audit_iter_deinit(&it, &error);
	}

	struct audit_log *log;
	if (audit_open(path, &log, &error) == 0) {
		uint64_t head_count;
		char head[AUDIT_HASH_HEX_SIZE];
		audit_head(log, &head_count, head);
		audit_close(&log);
	}
	return 0;
}
