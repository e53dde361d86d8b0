/*
 * libFuzzer target for struct imap_uidset (src/imap/imap-uidset.c).
 *
 * The input is a program of set operations (add, add a range, add an array,
 * remove, merge a parsed text) on UIDs from two regions, 1..512 and the top
 * 512 below 2^32 (where overflow would show), checked every 50 steps
 * against a bitmap; at the end the set must format, split into pieces of any
 * width and parse back to itself. An input starting with 'T' is instead
 * parsed as server text with small bounds.
 */
#include "imap/imap-uidset.h"
#include "lib/buf.h"

#include <stdint.h>
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

enum { REGION = 512, SLOTS = 2 * REGION };

/* Slot i <-> UID: 1..512, then 2^32-512 .. 2^32-1. */
static uint32_t slot_uid(unsigned i)
{
	return i < REGION ? i + 1 : UINT32_MAX - (SLOTS - 1 - i);
}

static void check_against(const struct imap_uidset *s, const unsigned char *bits)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->count; i++) {
		REQUIRE(s->ranges[i].lo >= 1 && s->ranges[i].lo <= s->ranges[i].hi);
		REQUIRE(i == 0 || (uint64_t)s->ranges[i - 1].hi + 1 < s->ranges[i].lo);
	}
	for (unsigned i = 0; i < SLOTS; i++) {
		REQUIRE(imap_uidset_contains(s, slot_uid(i)) == (bits[i] != 0));
		n += bits[i];
	}
	REQUIRE(imap_uidset_size(s) == n);
	REQUIRE(!imap_uidset_contains(s, 0) && !imap_uidset_contains(s, REGION + 1));
}

static void check_text_round_trip(const struct imap_uidset *s)
{
	struct buf t;
	buf_init(&t, 1 << 20);
	REQUIRE(imap_uidset_format(s, &t) == 0);
	struct imap_uidset back = IMAP_UIDSET_INIT;
	const char *error;
	if (s->count > 0) {
		REQUIRE(imap_uidset_parse(buf_str(&t), UINT64_MAX, SIZE_MAX, &back, &error) == 0);
		REQUIRE(imap_uidset_equal(s, &back));
	}
	for (size_t width = IMAP_UIDSET_RANGE_MAX_CHARS; width < 80; width += 13) {
		imap_uidset_clear(&back);
		size_t pos = 0;
		while (pos < s->count) {
			buf_reset(&t);
			size_t before = pos;
			int n = imap_uidset_write(s, &pos, width, &t);
			REQUIRE(n > 0 && (size_t)n == t.len && t.len <= width && pos > before);
			REQUIRE(imap_uidset_parse(buf_str(&t), UINT64_MAX, SIZE_MAX, &back,
			                          &error) == 0);
		}
		REQUIRE(imap_uidset_equal(s, &back));
	}
	imap_uidset_free(&back);
	buf_free(&t);
}

static void run_text(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	REQUIRE(text != NULL);
	memcpy(text, data, size);
	text[size] = '\0';
	struct imap_uidset s = IMAP_UIDSET_INIT;
	const char *error = NULL;
	if (imap_uidset_parse(text, 5000, 50, &s, &error) == 0) {
		REQUIRE(imap_uidset_size(&s) <= 5000 && s.count <= 50);
		check_text_round_trip(&s);
	} else {
		REQUIRE(error != NULL && s.count == 0);
	}
	imap_uidset_free(&s);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0 && data[0] == 'T') {
		run_text(data + 1, size - 1);
		return 0;
	}
	static unsigned char bits[SLOTS];
	memset(bits, 0, sizeof(bits));
	struct imap_uidset s = IMAP_UIDSET_INIT;
	size_t pos = 0;
	while (pos + 5 <= size) {
		unsigned op = data[pos] % 5;
		unsigned a = (data[pos + 1] | (unsigned)data[pos + 2] << 8) % SLOTS;
		unsigned b = (data[pos + 3] | (unsigned)data[pos + 4] << 8) % SLOTS;
		pos += 5;
		/* A range stays in one region (the slots are not contiguous UIDs
		 * across the gap). */
		if ((a < REGION) != (b < REGION))
			b = a;
		unsigned lo = a < b ? a : b, hi = a < b ? b : a;
		switch (op) {
		case 0:
			REQUIRE(imap_uidset_add(&s, slot_uid(a)) == 0);
			bits[a] = 1;
			break;
		case 1:
			REQUIRE(imap_uidset_add_range(&s, slot_uid(b), slot_uid(a)) == 0);
			for (unsigned i = lo; i <= hi; i++)
				bits[i] = 1;
			break;
		case 2: {
			uint32_t arr[16];
			size_t n = (hi - lo) % 16 + 1;
			for (size_t i = 0; i < n; i++) {
				unsigned slot = (lo + (unsigned)i * 37u) % SLOTS;
				arr[i] = slot_uid(slot);
				bits[slot] = 1;
			}
			REQUIRE(imap_uidset_add_array(&s, arr, n) == 0);
			break;
		}
		case 3:
			REQUIRE(imap_uidset_remove(&s, slot_uid(a)) == 0);
			bits[a] = 0;
			break;
		default: {
			char text[64];
			snprintf(text, sizeof(text), "%u:%u,%u", slot_uid(a), slot_uid(b),
			         slot_uid(lo));
			const char *error;
			REQUIRE(imap_uidset_parse(text, UINT64_MAX, SIZE_MAX, &s, &error) == 0);
			for (unsigned i = lo; i <= hi; i++)
				bits[i] = 1;
			break;
		}
		}
		if (pos % 250 == 0) /* every 50 steps */
			check_against(&s, bits);
	}
	check_against(&s, bits);
	check_text_round_trip(&s);
	struct imap_uidset copy = IMAP_UIDSET_INIT;
	REQUIRE(imap_uidset_add_set(&copy, &s) == 0 && imap_uidset_equal(&copy, &s));
	REQUIRE(imap_uidset_contains_set(&s, &copy) && imap_uidset_contains_set(&copy, &s));
	imap_uidset_free(&copy);
	imap_uidset_free(&s);
	return 0;
}
