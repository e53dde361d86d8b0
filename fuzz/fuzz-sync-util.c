/* libFuzzer target: the sync engine's small parsers (UID sets, INTERNALDATE,
 * FLAGS lists through the response parser). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sync/sync-private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	char *nl = strchr(s, '\n');
	char *date = nl != NULL ? nl + 1 : s;
	if (nl != NULL)
		*nl = '\0';
	struct uidvec v = {0};
	if (uidvec_parse_set(&v, s, 100000) == 0) {
		struct buf b;
		buf_init(&b, 1 << 20);
		uidvec_sort(&v);
		uidset_format(&b, v.uids, 0, v.count);
		buf_free(&b);
	}
	uidvec_free(&v);
	int64_t t;
	internaldate_parse(date, &t);

	/* FLAGS through the real response parser. */
	struct imap_parser *p = imap_parser_create(&imap_parser_default_limits);
	size_t consumed;
	const char *err;
	struct buf line, kw;
	buf_init(&line, 1 << 20);
	buf_init(&kw, 64 * 1024);
	buf_printf(&line, "* FLAGS (%s)\r\n", s);
	if (imap_parser_feed(p, line.data, line.len, &consumed, &err) == IMAP_PARSE_RESPONSE) {
		const struct imap_response *r = imap_parser_response(p);
		unsigned flags;
		if (r->args != NULL)
			flags_parse(r->args->next, &flags, &kw);
	}
	imap_parser_free(&p);
	buf_free(&line);
	buf_free(&kw);
	free(s);
	return 0;
}
