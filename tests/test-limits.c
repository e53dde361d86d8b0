/* Tests for the rate-limit windows (src/lib/ratelimit.c) and the address
 * prefixes per-address limits count under (http_address_prefix). */
#include <string.h>

#include "http/http.h"
#include "lib/buf.h"
#include "lib/ratelimit.h"
#include "test.h"

static void test_prefix(void)
{
	char key[64];
	CHECK(http_address_prefix("192.0.2.7", key, sizeof(key)) == 0);
	CHECK_STR(key, "192.0.2.7");
	/* Every address of one /64 is one key; the next /64 another. */
	CHECK(http_address_prefix("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key, sizeof(key)) == 0);
	CHECK_STR(key, "2001:db8:1:2::/64");
	CHECK(http_address_prefix("2001:0db8:0001:0002::1", key, sizeof(key)) == 0);
	CHECK_STR(key, "2001:db8:1:2::/64");
	CHECK(http_address_prefix("2001:db8:1:3::1", key, sizeof(key)) == 0);
	CHECK_STR(key, "2001:db8:1:3::/64");
	CHECK(http_address_prefix("::1", key, sizeof(key)) == 0);
	CHECK_STR(key, "::/64");
	/* IPv4-mapped: counted as the IPv4 address, not as ::ffff:0:0/64. */
	CHECK(http_address_prefix("::ffff:198.51.100.4", key, sizeof(key)) == 0);
	CHECK_STR(key, "198.51.100.4");
	CHECK(http_address_prefix("not an address", key, sizeof(key)) < 0);
	CHECK(http_address_prefix("-", key, sizeof(key)) < 0);
	CHECK(http_address_prefix("2001:db8:1:2::1", key, 8) < 0); /* too small */
}

static void test_rate_limit(void)
{
	struct rate_limit *rl = rate_limit_create(4, 3, 60);
	CHECK(rl != NULL);
	unsigned retry = 0;
	for (int i = 0; i < 3; i++)
		CHECK(rate_limit_take(rl, "alice", 1000, &retry) == 0);
	CHECK(rate_limit_take(rl, "alice", 1010, &retry) < 0);
	CHECK(retry == 50);
	/* A success gives its unit back. */
	rate_limit_give_back(rl, "alice", 1010);
	CHECK(rate_limit_take(rl, "alice", 1011, &retry) == 0);
	CHECK(rate_limit_take(rl, "alice", 1011, &retry) < 0);
	/* Other keys are independent. */
	CHECK(rate_limit_take(rl, "bob", 1011, &retry) == 0);
	/* The window ends. */
	CHECK(rate_limit_take(rl, "alice", 1060, &retry) == 0);
	/* Keys that are empty or too long are refused. */
	char long_key[RATE_LIMIT_MAX_KEY + 1];
	memset(long_key, 'x', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = '\0';
	CHECK(rate_limit_take(rl, long_key, 1060, &retry) < 0);
	CHECK(rate_limit_take(rl, "", 1060, &retry) < 0);
	/* A full table reuses an expired slot first, then the oldest. */
	CHECK(rate_limit_take(rl, "c", 1061, NULL) == 0);
	CHECK(rate_limit_take(rl, "d", 1062, NULL) == 0);
	/* None has expired at 1063: "e" takes the oldest slot (bob's). */
	CHECK(rate_limit_take(rl, "e", 1063, NULL) == 0);
	for (int i = 0; i < 2; i++)
		CHECK(rate_limit_take(rl, "e", 1063, NULL) == 0);
	CHECK(rate_limit_take(rl, "e", 1063, NULL) < 0);
	rate_limit_free(&rl);
	CHECK(rl == NULL);
	rate_limit_free(&rl);
	CHECK(rate_limit_create(0, 1, 1) == NULL);
}

/* What a growing buffer will have allocated is known before it grows, so a
 * server can account body memory exactly (not the bytes held: the buffer
 * grows by doubling). */
static void test_buf_capacity(void)
{
	struct buf b;
	buf_init(&b, 3 * 1024 * 1024);
	char chunk[4097];
	memset(chunk, 'x', sizeof(chunk));
	size_t sizes[] = {64, 1, 4097, 63, 4000, 4097, 1};
	for (unsigned round = 0; round < 200; round++) {
		size_t n = sizes[round % (sizeof(sizes) / sizeof(sizes[0]))];
		size_t want = buf_capacity_for(&b, n);
		CHECK(buf_append(&b, chunk, n) == 0);
		CHECK(b.cap == want);
		CHECK(b.cap <= b.max + 1 && b.cap > b.len);
	}
	size_t cap = b.cap;
	CHECK(buf_capacity_for(&b, b.max) == cap); /* would not fit: no growth */
	buf_free(&b);
}

int main(void)
{
	test_buf_capacity();
	test_prefix();
	test_rate_limit();
	printf("test-limits: ok\n");
	return 0;
}
