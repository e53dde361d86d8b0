/* Unit tests of the sync engine's pure helpers and the account URL parser. */
#include <string.h>

#include "imap/imap-url.h"
#include "sync/sync-private.h"
#include "test.h"

static void test_uidsets(void)
{
	struct uidvec v = {0};
	CHECK(uidvec_parse_set(&v, "1:3,7,10:9", 100) == 0);
	CHECK(v.count == 6);
	uidvec_sort(&v);
	CHECK(v.uids[0] == 1 && v.uids[2] == 3 && v.uids[3] == 7 && v.uids[4] == 9 &&
	      v.uids[5] == 10);
	CHECK(uidvec_contains(&v, 7) && !uidvec_contains(&v, 8));
	struct buf b;
	buf_init(&b, 1024);
	CHECK(uidset_format(&b, v.uids, 0, v.count) == 0);
	CHECK(strcmp(buf_str(&b), "1:3,7,9:10") == 0);
	buf_reset(&b);
	CHECK(uidset_format(&b, v.uids, 3, 4) == 0 && strcmp(buf_str(&b), "7") == 0);
	buf_free(&b);
	uidvec_free(&v);
	/* Bad sets and limits. */
	static const char *const bad[] = {"",    "0", "1:",         ":3",  "1,,2",
	                                  "1:*", "a", "4294967296", "1 2", "1:3,"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct uidvec w = {0};
		CHECK(bad[i][0] == '\0' ? uidvec_parse_set(&w, bad[i], 10) == 0 && w.count == 0
		                        : uidvec_parse_set(&w, bad[i], 10) < 0);
		uidvec_free(&w);
	}
	struct uidvec big = {0};
	CHECK(uidvec_parse_set(&big, "1:4294967295", 1000) < 0); /* limit, no huge alloc */
	uidvec_free(&big);
}

static void test_flags(void)
{
	struct imap_parser *p = imap_parser_create(&imap_parser_default_limits);
	const char *line = "* FLAGS (\\Seen $Label1 \\Flagged Work $Label1 \\Recent \\Draft "
	                   "\\Answered \\Deleted \\Unknown)\r\n";
	size_t consumed;
	const char *err;
	CHECK(imap_parser_feed(p, (const unsigned char *)line, strlen(line), &consumed, &err) ==
	      IMAP_PARSE_RESPONSE);
	const struct imap_response *r = imap_parser_response(p);
	unsigned flags = 0;
	struct buf kw;
	buf_init(&kw, 1024);
	CHECK(flags_parse(r->args->next, &flags, &kw) == 0);
	CHECK(flags == (STORE_FLAG_SEEN | STORE_FLAG_FLAGGED | STORE_FLAG_DRAFT |
	                STORE_FLAG_ANSWERED | STORE_FLAG_DELETED));
	CHECK(strcmp(buf_str(&kw), "$Label1 Work") == 0);
	CHECK(flags_parse(r->args, &flags, &kw) < 0); /* not a list */
	buf_free(&kw);
	imap_parser_free(&p);
}

static void test_dates(void)
{
	int64_t t;
	CHECK(internaldate_parse("17-Jul-1996 02:44:25 -0700", &t) == 0 && t == 837596665);
	CHECK(internaldate_parse(" 1-Jan-1970 00:00:00 +0000", &t) == 0 && t == 0);
	CHECK(internaldate_parse("29-Feb-2024 23:59:59 +0100", &t) == 0 && t == 1709247599);
	CHECK(internaldate_parse("01-Mar-2021 00:00:00 +0000", &t) == 0 && t == 1614556800);
	CHECK(internaldate_parse("31-Dec-2020 12:00:00 -0930", &t) == 0 && t == 1609450200);
	static const char *const bad[] = {"",
	                                  "17-Jul-1996",
	                                  "17-Foo-1996 02:44:25 -0700",
	                                  "17-Jul-1996 02:44:25",
	                                  "32-Jul-1996 02:44:25 +0000",
	                                  "17-Jul-1996 24:00:00 +0000",
	                                  "17-Jul-1996 02:44:25 +0000x",
	                                  "17-Jul-96 02:44:25 +0000"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(internaldate_parse(bad[i], &t) < 0);
}

static void test_roles(void)
{
	CHECK(strcmp(role_from_attribute("\\Sent"), "Sent") == 0);
	CHECK(strcmp(role_from_attribute("\\junk"), "Junk") == 0);
	CHECK(role_from_attribute("\\HasNoChildren") == NULL);
	CHECK(role_from_attribute("Sent") == NULL);
	CHECK(role_from_attribute(NULL) == NULL);
}

static void test_urls(void)
{
	char host[64], port[8];
	enum imap_security sec;
	CHECK(imap_url_parse("imaps://imap.example.com", host, sizeof(host), port, sizeof(port),
	                     &sec) == 0);
	CHECK(strcmp(host, "imap.example.com") == 0 && strcmp(port, "993") == 0 &&
	      sec == IMAP_SECURITY_TLS);
	CHECK(imap_url_parse("imap://127.0.0.1:1143/", host, sizeof(host), port, sizeof(port),
	                     &sec) == 0);
	CHECK(strcmp(host, "127.0.0.1") == 0 && strcmp(port, "1143") == 0 &&
	      sec == IMAP_SECURITY_STARTTLS);
	CHECK(imap_url_parse("imaps://[::1]:993", host, sizeof(host), port, sizeof(port), &sec) ==
	      0);
	CHECK(strcmp(host, "::1") == 0);
	static const char *const bad[] = {"",
	                                  "imap:/x",
	                                  "http://x",
	                                  "imaps://",
	                                  "imaps://:993",
	                                  "imaps://h:0",
	                                  "imaps://h:65536",
	                                  "imaps://h:99999999",
	                                  "imaps://u@h",
	                                  "imaps://h/INBOX",
	                                  "imaps://h x",
	                                  "imaps://[::1",
	                                  "imaps://h:12a",
	                                  "imaps://h\r\nA1 X"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(host, sizeof(host), "untouched");
		CHECK(imap_url_parse(bad[i], host, sizeof(host), port, sizeof(port), &sec) < 0);
		CHECK(strcmp(host, "untouched") == 0);
	}
	char tiny[4];
	CHECK(imap_url_parse("imaps://longhost", tiny, sizeof(tiny), port, sizeof(port), &sec) < 0);
}

/* Duplicate accounts (issue #9 item 15): the same server however written. */
static void test_same_server(void)
{
	CHECK(imap_url_same_server("imaps://imap.example.com", "imaps://imap.example.com:993/"));
	CHECK(imap_url_same_server("imap://imap.example.com", "imaps://IMAP.Example.com"));
	CHECK(imap_url_same_server("imap://imap.example.com:143", "imaps://imap.example.com.:993"));
	CHECK(imap_url_same_server("imaps://127.0.0.1:10993", "imaps://127.0.0.1:10993"));
	CHECK(imap_url_same_server("imaps://[::1]:993", "imap://[::1]"));
	CHECK(!imap_url_same_server("imaps://imap.example.com", "imaps://imap.example.org"));
	CHECK(!imap_url_same_server("imaps://127.0.0.1:10993", "imaps://127.0.0.1:10994"));
	CHECK(!imap_url_same_server("imap://h:993", "imaps://h:143"));
	CHECK(!imap_url_same_server("imaps://h", "bogus"));
}

int main(void)
{
	test_uidsets();
	test_flags();
	test_dates();
	test_roles();
	test_urls();
	test_same_server();
	TEST_DONE("test-sync-util");
}
