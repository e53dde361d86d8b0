/* Tests for src/lib/imap-utf7.c: modified UTF-7 mailbox names. */
#include "lib/imap-utf7.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

static void check_pair(const char *utf8, const char *mutf7)
{
	struct buf b;
	const char *error;
	buf_init(&b, 4096);
	OK(imap_utf7_encode(utf8, &b, &error));
	CHECK_STR(buf_str(&b), mutf7);
	buf_reset(&b);
	OK(imap_utf7_decode(mutf7, &b, &error));
	CHECK_STR(buf_str(&b), utf8);
	buf_free(&b);
}

static void test_pairs(void)
{
	check_pair("", "");
	check_pair("INBOX", "INBOX");
	check_pair("Caf\xc3\xa9", "Caf&AOk-");
	/* RFC 3501 section 5.1.3's example. */
	check_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	           "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	check_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	check_pair("\xf0\x9f\x98\x80 x", "&2D3eAA- x"); /* outside the BMP: a surrogate pair */
	check_pair("a&b", "a&-b");
	check_pair("\xc3\xa9&\xc3\xa9", "&AOk-&-&AOk-");
	check_pair("\x01", "&AAE-"); /* control characters are encoded */
	check_pair("\xc3\xbf\xc3\xbf\xc3\xbf", "&AP8A,wD,-");
	check_pair("~ []{}\"\\", "~ []{}\"\\");
}

static void test_refused(void)
{
	struct buf b;
	const char *error;
	buf_init(&b, 4096);
	static const char *const bad_utf8[] = {
	    "\xc3",             /* cut */
	    "\xc0\xaf",         /* overlong */
	    "\xe0\x80\xaf",     /* overlong */
	    "\xed\xa0\x80",     /* surrogate */
	    "\xf4\x90\x80\x80", /* past U+10FFFF */
	    "\xff",
	    "a\x80",
	};
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		buf_reset(&b);
		error = NULL;
		CHECK(imap_utf7_encode(bad_utf8[i], &b, &error) == -1 && error != NULL);
	}
	static const char *const bad_mutf7[] = {
	    "&",           /* unterminated */
	    "&AOk",        /* unterminated */
	    "&AOk-&AOk-",  /* two runs in a row: one in canonical form */
	    "&AGE-",       /* encodes printable ASCII ("a") */
	    "&AOl-",       /* bits left over that are not zero */
	    "&AOkA-",      /* six bits left over */
	    "&2D0-",       /* a lone high surrogate */
	    "&3gA-",       /* a lone low surrogate */
	    "&2D3YPQ-",    /* high surrogate followed by another high one */
	    "&A/k-",       /* "/" is not in the modified alphabet */
	    "&AOk=-",      /* no padding */
	    "Caf\xc3\xa9", /* 8-bit */
	    "a\tb",        /* not printable */
	    "&-&",
	};
	for (size_t i = 0; i < sizeof(bad_mutf7) / sizeof(bad_mutf7[0]); i++) {
		buf_reset(&b);
		error = NULL;
		if (imap_utf7_decode(bad_mutf7[i], &b, &error) != -1)
			fprintf(stderr, "accepted '%s'\n", bad_mutf7[i]);
		CHECK(error != NULL);
	}
	/* A full buffer is an error, never a silent cut. */
	struct buf tiny;
	buf_init(&tiny, 6);
	CHECK(imap_utf7_encode("Caf\xc3\xa9", &tiny, &error) == -1);
	buf_reset(&tiny);
	CHECK(imap_utf7_decode("&U,BTFw-", &tiny, &error) == 0);
	buf_reset(&tiny);
	CHECK(imap_utf7_decode("&U,BTFw-x", &tiny, &error) == -1);
	buf_free(&tiny);
	buf_free(&b);
}

/* Every code point (in steps) alone and beside ASCII survives both ways. */
static void test_all_code_points(void)
{
	struct buf u, m, back;
	const char *error;
	buf_init(&u, 64);
	buf_init(&m, 256);
	buf_init(&back, 64);
	for (uint32_t c = 1; c <= 0x10ffff; c += (c < 0x3000 ? 1 : 97)) {
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		unsigned char s[8];
		size_t n;
		if (c < 0x80)
			s[0] = (unsigned char)c, n = 1;
		else if (c < 0x800)
			s[0] = (unsigned char)(0xc0 | c >> 6),
			s[1] = (unsigned char)(0x80 | (c & 0x3f)), n = 2;
		else if (c < 0x10000)
			s[0] = (unsigned char)(0xe0 | c >> 12),
			s[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f)),
			s[2] = (unsigned char)(0x80 | (c & 0x3f)), n = 3;
		else
			s[0] = (unsigned char)(0xf0 | c >> 18),
			s[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f)),
			s[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f)),
			s[3] = (unsigned char)(0x80 | (c & 0x3f)), n = 4;
		buf_reset(&u);
		CHECK(buf_append(&u, "x", 1) == 0 && buf_append(&u, s, n) == 0 &&
		      buf_append(&u, s, n) == 0 && buf_append(&u, "y", 1) == 0);
		buf_reset(&m);
		buf_reset(&back);
		OK(imap_utf7_encode(buf_str(&u), &m, &error));
		for (size_t i = 0; i < m.len; i++)
			CHECK(m.data[i] >= 0x20 && m.data[i] < 0x7f);
		OK(imap_utf7_decode(buf_str(&m), &back, &error));
		CHECK_STR(buf_str(&back), buf_str(&u));
	}
	buf_free(&u);
	buf_free(&m);
	buf_free(&back);
}

int main(void)
{
	test_pairs();
	test_refused();
	test_all_code_points();
	TEST_DONE("test-imap-utf7");
}
