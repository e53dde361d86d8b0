/*
 * libFuzzer target for the IMAP response parser.
 *
 * The first two input bytes choose small limits (so every limit gets hit)
 * and seed the chunking; the rest is the server's byte stream. It is parsed
 * whole, in pseudo-random chunks and (when short) one byte at a time, with
 * streamed literals consumed the way a real caller does. All three runs must
 * produce the same transcript of events, and every tree must be well formed.
 *
 * Every response also goes through the readers the replay trusts: the
 * COPYUID, APPENDUID and MODIFIED codes (checked against a fixed request
 * set: whatever they accept must lie inside it) and the UID set parser on
 * every atom (what it accepts must format and parse back to the same set),
 * and modified UTF-7 both ways on every atom and string (one form only);
 * and the response handlers of every replay command (imap-commands.c).
 */
#include "imap/imap-client-private.h"
#include "imap/imap-parser.h"
#include "imap/imap-uidset.h"
#include "lib/imap-utf7.h"
#include "lib/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void dump_bytes(struct buf *o, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\'')
			REQUIRE(buf_printf(o, "\\x%02x", c) == 0);
		else
			REQUIRE(buf_append(o, &c, 1) == 0);
	}
}

static void dump_args(struct buf *o, const struct imap_arg *a, unsigned depth,
                      const struct imap_parser_limits *lim, unsigned *count)
{
	for (; a != NULL; a = a->next) {
		REQUIRE(++*count <= lim->max_args);
		switch (a->type) {
		case IMAP_ARG_ATOM:
		case IMAP_ARG_STRING:
			REQUIRE(a->str != NULL && a->str[a->len] == '\0');
			REQUIRE(a->type == IMAP_ARG_STRING ||
			        (a->len > 0 && strlen(a->str) == a->len));
			REQUIRE(a->len <= lim->max_line);
			REQUIRE(buf_append_str(o, a->type == IMAP_ARG_ATOM ? "A'" : "S'") == 0);
			dump_bytes(o, a->str, a->len);
			REQUIRE(buf_append_str(o, "'") == 0);
			break;
		case IMAP_ARG_NIL:
			REQUIRE(a->str == NULL && a->list == NULL);
			REQUIRE(buf_append_str(o, "NIL") == 0);
			break;
		case IMAP_ARG_LIST:
			REQUIRE(depth < lim->max_depth);
			REQUIRE(buf_append_str(o, "(") == 0);
			dump_args(o, a->list, depth + 1, lim, count);
			REQUIRE(buf_append_str(o, ")") == 0);
			break;
		case IMAP_ARG_LITERAL_STREAM:
			REQUIRE(a->str == NULL && a->literal_size <= lim->max_literal);
			REQUIRE(buf_printf(o, "%s{%" PRIu64 "}", a->literal8 ? "~" : "",
			                   a->literal_size) == 0);
			break;
		default:
			REQUIRE(!"bad arg type");
		}
		REQUIRE(buf_append_str(o, " ") == 0);
	}
}

/* The UIDs the fuzzed server is "answering": 1:50,100:200,4294967295. */
static const struct imap_uid_range request_ranges[] = {
    {1, 50}, {100, 200}, {4294967295u, 4294967295u}};
static const struct imap_uidset request = {(struct imap_uid_range *)request_ranges, 3, 0};

static void check_set(const struct imap_uidset *s, uint64_t max)
{
	REQUIRE(imap_uidset_size(s) <= max);
	for (size_t i = 0; i < s->count; i++) {
		REQUIRE(s->ranges[i].lo >= 1 && s->ranges[i].lo <= s->ranges[i].hi);
		REQUIRE(i == 0 || (uint64_t)s->ranges[i - 1].hi + 1 < s->ranges[i].lo);
	}
}

/* A UID set parsed from an atom formats and parses back to itself, and
 * splits into pieces that join up to it. */
static void check_uidset_atom(const char *text)
{
	struct imap_uidset s = IMAP_UIDSET_INIT, back = IMAP_UIDSET_INIT;
	const char *error = NULL;
	if (imap_uidset_parse(text, 100000, 1000, &s, &error) < 0) {
		REQUIRE(error != NULL && s.count == 0);
		return;
	}
	check_set(&s, 100000);
	struct buf t;
	buf_init(&t, 1 << 20);
	REQUIRE(imap_uidset_format(&s, &t) == 0);
	REQUIRE(imap_uidset_parse(buf_str(&t), 100000, 1000, &back, &error) == 0);
	REQUIRE(imap_uidset_equal(&s, &back));
	imap_uidset_clear(&back);
	size_t pos = 0;
	while (pos < s.count) {
		buf_reset(&t);
		int n = imap_uidset_write(&s, &pos, IMAP_UIDSET_RANGE_MAX_CHARS + 3, &t);
		REQUIRE(n > 0 && (size_t)n == t.len && t.len <= IMAP_UIDSET_RANGE_MAX_CHARS + 3);
		REQUIRE(imap_uidset_parse(buf_str(&t), 100000, 1000, &back, &error) == 0);
	}
	REQUIRE(imap_uidset_equal(&s, &back));
	buf_free(&t);
	imap_uidset_free(&s);
	imap_uidset_free(&back);
}

/* Modified UTF-7 has one form: what decodes encodes back to the same text,
 * and what encodes decodes back. */
static void check_utf7(const char *text)
{
	struct buf a, b;
	const char *error;
	buf_init(&a, 1 << 20);
	buf_init(&b, 1 << 20);
	if (imap_utf7_decode(text, &a, &error) == 0) {
		REQUIRE(imap_utf7_encode(buf_str(&a), &b, &error) == 0);
		REQUIRE(strcmp(buf_str(&b), text) == 0);
	}
	buf_reset(&a);
	buf_reset(&b);
	if (imap_utf7_encode(text, &a, &error) == 0) {
		REQUIRE(imap_utf7_decode(buf_str(&a), &b, &error) == 0);
		REQUIRE(strcmp(buf_str(&b), text) == 0);
	}
	buf_free(&a);
	buf_free(&b);
}

static void check_atoms(const struct imap_arg *a)
{
	for (; a != NULL; a = a->next) {
		if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_STRING)
			check_utf7(a->str);
		if (a->type == IMAP_ARG_ATOM)
			check_uidset_atom(a->str);
		else if (a->type == IMAP_ARG_LIST)
			check_atoms(a->list);
	}
}

static void check_codes(const struct imap_response *r)
{
	const char *error = NULL;
	check_atoms(r->code_args);
	check_atoms(r->args);
	/* The command handlers (SELECT, STORE, FETCH, COPY/MOVE, APPEND,
	 * SEARCH) on the same response. */
	REQUIRE(imap_commands_check_response(r, &request) >= 0);
	if (r->code == NULL)
		return;
	struct imap_copyuid cu = {0};
	if (imap_copyuid_parse(r->code_args, &request, &cu, &error) == 0) {
		REQUIRE(cu.valid && cu.count > 0 && cu.count <= imap_uidset_size(&request));
		for (size_t i = 0; i < cu.count; i++) {
			REQUIRE(imap_uidset_contains(&request, cu.pairs[i].src) &&
			        cu.pairs[i].dst != 0);
			REQUIRE(i == 0 || cu.pairs[i - 1].src < cu.pairs[i].src);
			REQUIRE(imap_copyuid_lookup(&cu, cu.pairs[i].src) == cu.pairs[i].dst);
		}
		/* The same again is a repeat, refused, nothing changed. */
		size_t count = cu.count;
		REQUIRE(imap_copyuid_parse(r->code_args, &request, &cu, &error) == -1);
		REQUIRE(cu.count == count);
	} else {
		REQUIRE(error != NULL && !cu.valid && cu.count == 0);
	}
	imap_copyuid_free(&cu);
	uint32_t uv = 7, uid = 7;
	if (imap_appenduid_parse(r->code_args, &uv, &uid, &error) == 0)
		REQUIRE(uv != 0 && uid != 0);
	else
		REQUIRE(uv == 7 && uid == 7);
	struct imap_uidset mod = IMAP_UIDSET_INIT;
	if (imap_modified_parse(r->code_args, &request, &mod, &error) == 0) {
		check_set(&mod, imap_uidset_size(&request));
		REQUIRE(imap_uidset_contains_set(&request, &mod));
	} else {
		REQUIRE(mod.count == 0);
	}
	imap_uidset_free(&mod);
}

static void dump_response(struct buf *o, const struct imap_response *r,
                          const struct imap_parser_limits *lim)
{
	check_codes(r);
	unsigned count = 0;
	REQUIRE(r != NULL && r->tag != NULL);
	REQUIRE(buf_printf(o, "%d %s %d", (int)r->kind, r->tag, (int)r->status) == 0);
	if (r->code != NULL)
		REQUIRE(buf_printf(o, " [%s ", r->code) == 0);
	REQUIRE(r->code != NULL || r->code_args == NULL);
	dump_args(o, r->code_args, 0, lim, &count);
	if (r->text != NULL) {
		REQUIRE(buf_append_str(o, " text='") == 0);
		dump_bytes(o, r->text, strlen(r->text));
	}
	REQUIRE(r->args == NULL || r->status == IMAP_STATUS_NONE);
	REQUIRE(buf_append_str(o, " args: ") == 0);
	dump_args(o, r->args, 0, lim, &count);
	REQUIRE(buf_append_str(o, "\n") == 0);
}

/* Feeds data in chunks: step 0 means all at once, otherwise chunk sizes
 * come from a small PRNG seeded with seed (1..max_step bytes). */
static void run(const struct imap_parser_limits *lim, const uint8_t *data, size_t len,
                unsigned seed, unsigned max_step, struct buf *o)
{
	struct imap_parser *p = imap_parser_create(lim);
	REQUIRE(p != NULL);
	size_t pos = 0, arrived = 0;
	uint64_t lit_left = 0;
	bool in_literal = false;
	uint32_t rng = seed * 2654435761u + 1;
	for (;;) {
		if (in_literal) {
			size_t k = arrived - pos;
			if (k > lit_left)
				k = (size_t)lit_left;
			pos += k;
			lit_left -= k;
			if (lit_left == 0) {
				REQUIRE(buf_printf(o, "LITDATA %zu\n", pos) == 0);
				in_literal = false;
				imap_parser_literal_done(p);
			}
		}
		if (pos == arrived) {
			if (arrived == len)
				break;
			size_t step = len;
			if (max_step > 0) {
				rng = rng * 1103515245u + 12345u;
				step = 1 + (rng >> 16) % max_step;
			}
			arrived = step < len - arrived ? arrived + step : len;
			continue;
		}
		if (in_literal)
			continue;
		size_t consumed = SIZE_MAX;
		const char *error = NULL;
		enum imap_parse_result r =
		    imap_parser_feed(p, data + pos, arrived - pos, &consumed, &error);
		if (r == IMAP_PARSE_ERROR) {
			REQUIRE(error != NULL);
			REQUIRE(buf_printf(o, "ERROR %s\n", error) == 0);
			break;
		}
		REQUIRE(consumed <= arrived - pos);
		pos += consumed;
		if (r == IMAP_PARSE_MORE) {
			REQUIRE(pos == arrived);
		} else if (r == IMAP_PARSE_RESPONSE) {
			REQUIRE(consumed > 0);
			REQUIRE(imap_parser_partial(p) == NULL);
			dump_response(o, imap_parser_response(p), lim);
		} else {
			REQUIRE(r == IMAP_PARSE_LITERAL && consumed > 0);
			lit_left = imap_parser_literal_size(p);
			REQUIRE(lit_left > 0);
			REQUIRE(buf_printf(o, "LITERAL %" PRIu64 ": ", lit_left) == 0);
			dump_response(o, imap_parser_partial(p), lim);
			in_literal = true;
		}
	}
	if (in_literal)
		REQUIRE(buf_append_str(o, "EOF in literal\n") == 0);
	imap_parser_free(&p);
	REQUIRE(p == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct imap_parser_limits lim = {
	    .max_line = 16 + (data[0] & 0x0f) * 24,
	    .inline_literal_max = (data[0] >> 4) * 3,
	    .max_literal = 4096,
	    .max_depth = 1 + (data[1] & 0x07),
	    .max_args = 4 + (data[1] >> 3) * 3,
	};
	unsigned seed = data[0] | (unsigned)data[1] << 8;
	data += 2;
	size -= 2;

	struct buf whole, split;
	buf_init(&whole, 1 << 26);
	buf_init(&split, 1 << 26);
	run(&lim, data, size, seed, 0, &whole);
	run(&lim, data, size, seed, 17, &split);
	if (whole.len != split.len || memcmp(buf_str(&whole), buf_str(&split), whole.len) != 0) {
		fprintf(stderr, "whole:\n%s\nsplit:\n%s\n", buf_str(&whole), buf_str(&split));
		abort();
	}
	if (size <= 1024) {
		buf_reset(&split);
		run(&lim, data, size, seed, 1, &split);
		if (whole.len != split.len ||
		    memcmp(buf_str(&whole), buf_str(&split), whole.len) != 0) {
			fprintf(stderr, "whole:\n%s\nbytewise:\n%s\n", buf_str(&whole),
			        buf_str(&split));
			abort();
		}
	}
	buf_free(&whole);
	buf_free(&split);
	return 0;
}
