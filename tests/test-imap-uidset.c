/* Tests for src/imap/imap-uidset.c: sorted UID sets, their compact text in
 * bounded pieces, and bounded parsing of the sets servers send. */
#include "imap/imap-uidset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static void check_text(const struct imap_uidset *s, const char *want)
{
	struct buf b;
	buf_init(&b, 1 << 20);
	CHECK(imap_uidset_format(s, &b) == 0);
	CHECK_STR(buf_str(&b), want);
	buf_free(&b);
}

/* Ranges are sorted, disjoint, with a gap between neighbours. */
static void check_invariants(const struct imap_uidset *s)
{
	for (size_t i = 0; i < s->count; i++) {
		CHECK(s->ranges[i].lo >= 1 && s->ranges[i].lo <= s->ranges[i].hi);
		if (i > 0)
			CHECK((uint64_t)s->ranges[i - 1].hi + 1 < s->ranges[i].lo);
	}
}

static void test_add(void)
{
	struct imap_uidset s = IMAP_UIDSET_INIT;
	check_text(&s, "");
	CHECK(imap_uidset_is_empty(&s) && imap_uidset_size(&s) == 0);
	static const uint32_t in[] = {9, 3, 1, 2, 5, 4, 12, 14, 13, 9, 1};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		CHECK(imap_uidset_add(&s, in[i]) == 0);
		check_invariants(&s);
	}
	check_text(&s, "1:5,9,12:14");
	CHECK(imap_uidset_size(&s) == 9);
	CHECK(imap_uidset_add(&s, 0) == -1);
	check_text(&s, "1:5,9,12:14");
	/* A range joining three. */
	CHECK(imap_uidset_add_range(&s, 10, 6) == 0);
	check_text(&s, "1:10,12:14");
	CHECK(imap_uidset_add(&s, 11) == 0);
	check_text(&s, "1:14");
	CHECK(imap_uidset_add(&s, UINT32_MAX) == 0 && imap_uidset_add(&s, UINT32_MAX - 1) == 0);
	check_text(&s, "1:14,4294967294:4294967295");
	CHECK(imap_uidset_contains(&s, 7) && imap_uidset_contains(&s, UINT32_MAX) &&
	      !imap_uidset_contains(&s, 15) && !imap_uidset_contains(&s, 0));
	/* Removing splits and trims. */
	CHECK(imap_uidset_remove(&s, 7) == 0);
	check_text(&s, "1:6,8:14,4294967294:4294967295");
	CHECK(imap_uidset_remove(&s, 1) == 0 && imap_uidset_remove(&s, 14) == 0 &&
	      imap_uidset_remove(&s, 4294967294u) == 0 &&
	      imap_uidset_remove(&s, 4294967295u) == 0 && imap_uidset_remove(&s, 100) == 0);
	check_text(&s, "2:6,8:13");
	check_invariants(&s);

	/* Bulk add in any order, merged with what is there. */
	static const uint32_t bulk[] = {100, 7, 99, 1, 101, 15, 15, 14};
	CHECK(imap_uidset_add_array(&s, bulk, sizeof(bulk) / sizeof(bulk[0])) == 0);
	check_text(&s, "1:15,99:101");
	check_invariants(&s);
	static const uint32_t with_zero[] = {5, 0};
	CHECK(imap_uidset_add_array(&s, with_zero, 2) == -1);
	check_text(&s, "1:15,99:101");

	struct imap_uidset t = IMAP_UIDSET_INIT, sub = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add_range(&t, 16, 98) == 0);
	CHECK(imap_uidset_add_set(&t, &s) == 0);
	check_text(&t, "1:101");
	CHECK(imap_uidset_add_range(&sub, 3, 4) == 0 && imap_uidset_add(&sub, 100) == 0);
	CHECK(imap_uidset_contains_set(&s, &sub) && imap_uidset_contains_set(&t, &sub));
	CHECK(imap_uidset_add(&sub, 50) == 0);
	CHECK(!imap_uidset_contains_set(&s, &sub) && imap_uidset_contains_set(&t, &sub));
	CHECK(!imap_uidset_equal(&s, &t));
	imap_uidset_clear(&t);
	CHECK(imap_uidset_add_set(&t, &s) == 0 && imap_uidset_equal(&s, &t));
	imap_uidset_free(&t);
	imap_uidset_free(&sub);
	imap_uidset_free(&s);
	CHECK(s.ranges == NULL && s.count == 0);
}

/* 200000 UIDs in random order agree with a bitmap. */
static void test_random(void)
{
	enum { N = 200000, SPAN = 300000 };
	unsigned char *bits = calloc(SPAN + 1, 1);
	uint32_t *arr = malloc(N * sizeof(*arr));
	CHECK(bits != NULL && arr != NULL);
	struct imap_uidset a = IMAP_UIDSET_INIT, b = IMAP_UIDSET_INIT;
	uint32_t rng = 12345;
	for (size_t i = 0; i < N; i++) {
		rng = rng * 1103515245u + 12345u;
		uint32_t uid = 1 + (rng >> 8) % SPAN;
		arr[i] = uid;
		bits[uid] = 1;
		if (i < 20000)
			CHECK(imap_uidset_add(&a, uid) == 0);
	}
	CHECK(imap_uidset_add_array(&a, arr + 20000, N - 20000) == 0);
	CHECK(imap_uidset_add_array(&b, arr, N) == 0);
	check_invariants(&a);
	CHECK(imap_uidset_equal(&a, &b));
	uint64_t n = 0;
	for (uint32_t u = 1; u <= SPAN; u++) {
		n += bits[u];
		if (u % 7 == 0)
			CHECK(imap_uidset_contains(&a, u) == (bits[u] != 0));
	}
	CHECK(imap_uidset_size(&a) == n);
	/* The text parses back to the same set. */
	struct buf t;
	buf_init(&t, 1 << 24);
	CHECK(imap_uidset_format(&a, &t) == 0);
	struct imap_uidset c = IMAP_UIDSET_INIT;
	const char *error;
	OK(imap_uidset_parse(buf_str(&t), UINT64_MAX, SIZE_MAX, &c, &error));
	CHECK(imap_uidset_equal(&a, &c));
	buf_free(&t);
	imap_uidset_free(&a);
	imap_uidset_free(&b);
	imap_uidset_free(&c);
	free(bits);
	free(arr);
}

/* Pieces: each at most max_chars, together the whole set, in order. */
static void test_write_pieces(void)
{
	struct imap_uidset s = IMAP_UIDSET_INIT;
	for (uint32_t u = 1; u < 20000; u += 2)
		CHECK(imap_uidset_add(&s, u) == 0);
	CHECK(imap_uidset_add_range(&s, 4000000000u, 4294967295u) == 0);
	struct buf piece, all;
	buf_init(&piece, 1 << 20);
	buf_init(&all, 1 << 20);
	struct imap_uidset back = IMAP_UIDSET_INIT;
	size_t pos = 0, pieces = 0;
	const char *error;
	while (pos < s.count) {
		buf_reset(&piece);
		size_t before = pos;
		int n = imap_uidset_write(&s, &pos, 1000, &piece);
		CHECK(n > 0 && (size_t)n == piece.len && piece.len <= 1000 && pos > before);
		/* A piece never ends in a comma and would not fit one more. */
		CHECK(piece.data[piece.len - 1] != ',');
		OK(imap_uidset_parse(buf_str(&piece), UINT64_MAX, SIZE_MAX, &back, &error));
		pieces++;
	}
	CHECK(pieces > 50 && imap_uidset_equal(&s, &back));
	CHECK(imap_uidset_write(&s, &pos, 1000, &piece) == -1); /* nothing left */
	pos = 0;
	CHECK(imap_uidset_write(&s, &pos, IMAP_UIDSET_RANGE_MAX_CHARS - 1, &piece) == -1);
	/* The longest range fits the minimum. */
	struct imap_uidset big = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add_range(&big, 4294967294u, 4294967295u) == 0);
	buf_reset(&piece);
	pos = 0;
	CHECK(imap_uidset_write(&big, &pos, IMAP_UIDSET_RANGE_MAX_CHARS, &piece) ==
	      IMAP_UIDSET_RANGE_MAX_CHARS);
	CHECK_STR(buf_str(&piece), "4294967294:4294967295");
	/* A full buffer is an error, not a silent cut. */
	struct buf tiny;
	buf_init(&tiny, 5);
	pos = 0;
	CHECK(imap_uidset_write(&big, &pos, 100, &tiny) == -1 && pos == 0);
	buf_free(&tiny);
	imap_uidset_free(&big);
	imap_uidset_free(&back);
	imap_uidset_free(&s);
	buf_free(&piece);
	buf_free(&all);
}

static void test_parse(void)
{
	struct imap_uidset s = IMAP_UIDSET_INIT;
	const char *error;
	OK(imap_uidset_parse("5:3,9,1,2,10", 100, 100, &s, &error));
	check_text(&s, "1:5,9:10");
	static const char *const bad[] = {
	    "",    "0",    "1:0", "01",         "1,",
	    ",1",  "1::2", "1:*", "*",          "1 2",
	    "a",   "-1",   "+1",  "4294967296", "1:99999999999999999999",
	    "1;2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (imap_uidset_parse(bad[i], 1000, 1000, &s, &error) != -1)
			fprintf(stderr, "accepted '%s'\n", bad[i]);
		CHECK(error != NULL);
	}
	check_text(&s, "1:5,9:10");
	/* Bounds: UIDs counted with repeats, and elements. */
	CHECK(imap_uidset_parse("1:10", 9, 100, &s, &error) == -1);
	CHECK(imap_uidset_parse("1:4294967295", 1000000, 100, &s, &error) == -1);
	CHECK(imap_uidset_parse("1,1,1,1", 3, 100, &s, &error) == -1);
	CHECK(imap_uidset_parse("1,2,3", 100, 2, &s, &error) == -1);
	OK(imap_uidset_parse("1,2,3", 3, 3, &s, &error));
	check_text(&s, "1:5,9:10");
	imap_uidset_free(&s);
}

int main(void)
{
	test_add();
	test_random();
	test_write_pieces();
	test_parse();
	TEST_DONE("test-imap-uidset");
}
