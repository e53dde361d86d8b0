/* Tests for the IMAP response parser: every example fed whole, one byte at
 * a time and split at every position must give the same transcript. */
#include "imap/imap-parser.h"
#include "imap/imap-uidset.h"
#include "lib/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* ---- Canonical dump of a response ---- */

static void dump_bytes(struct buf *o, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f || c == '\'')
			CHECK(buf_printf(o, "\\x%02x", c) == 0);
		else
			CHECK(buf_append(o, &c, 1) == 0);
	}
}

static void dump_args(struct buf *o, const struct imap_arg *a)
{
	for (; a != NULL; a = a->next) {
		switch (a->type) {
		case IMAP_ARG_ATOM:
		case IMAP_ARG_STRING:
			/* The data is NUL-terminated, and atoms have no NULs. */
			CHECK(a->str != NULL && a->str[a->len] == '\0');
			CHECK(a->type == IMAP_ARG_STRING || strlen(a->str) == a->len);
			CHECK(buf_append_str(o, a->type == IMAP_ARG_ATOM ? "A'" : "S'") == 0);
			dump_bytes(o, a->str, a->len);
			CHECK(buf_append_str(o, "'") == 0);
			break;
		case IMAP_ARG_NIL:
			CHECK(a->str == NULL);
			CHECK(buf_append_str(o, "NIL") == 0);
			break;
		case IMAP_ARG_LIST:
			CHECK(buf_append_str(o, "(") == 0);
			dump_args(o, a->list);
			CHECK(buf_append_str(o, ")") == 0);
			break;
		case IMAP_ARG_LITERAL_STREAM:
			CHECK(buf_printf(o, "%s{%" PRIu64 "}", a->literal8 ? "~" : "",
			                 a->literal_size) == 0);
			break;
		}
		if (a->next != NULL)
			CHECK(buf_append_str(o, " ") == 0);
	}
}

static void dump_response(struct buf *o, const struct imap_response *r)
{
	static const char *const status[] = {"", " OK", " NO", " BAD", " BYE", " PREAUTH"};
	CHECK(buf_append_str(o, r->tag) == 0);
	CHECK(buf_append_str(o, status[r->status]) == 0);
	CHECK((r->kind == IMAP_RESP_TAGGED) == (strcmp(r->tag, "*") && strcmp(r->tag, "+")));
	if (r->code != NULL) {
		CHECK(buf_printf(o, " [%s", r->code) == 0);
		if (r->code_args != NULL) {
			CHECK(buf_append_str(o, " ") == 0);
			dump_args(o, r->code_args);
		}
		CHECK(buf_append_str(o, "]") == 0);
	}
	CHECK(r->code != NULL || r->code_args == NULL);
	if (r->text != NULL &&
	    (r->status != IMAP_STATUS_NONE || r->kind == IMAP_RESP_CONTINUATION)) {
		CHECK(buf_append_str(o, " text='") == 0);
		dump_bytes(o, r->text, strlen(r->text));
		CHECK(buf_append_str(o, "'") == 0);
	}
	if (r->args != NULL) {
		CHECK(r->status == IMAP_STATUS_NONE);
		CHECK(buf_append_str(o, " args: ") == 0);
		dump_args(o, r->args);
	}
}

/* ---- A caller that receives input in chunks ---- */

/*
 * Feeds in[0..len) as it "arrives": in chunks of `step` bytes (0: all at
 * once), with an extra cut at split_at (0: none). Streamed literals are
 * consumed like a real caller would and shown as LITDATA. Returns the
 * transcript, one event a line (caller frees).
 */
static char *run(const struct imap_parser_limits *lim, const char *in, size_t len, size_t step,
                 size_t split_at)
{
	struct imap_parser *p = imap_parser_create(lim);
	CHECK(p != NULL);
	struct buf o, lit;
	buf_init(&o, 1 << 26);
	buf_init(&lit, 1 << 26);
	size_t pos = 0, arrived = 0;
	uint64_t lit_left = 0;
	bool in_literal = false;
	for (;;) {
		if (in_literal) {
			size_t k = arrived - pos;
			if (k > lit_left)
				k = (size_t)lit_left;
			CHECK(buf_append(&lit, in + pos, k) == 0);
			pos += k;
			lit_left -= k;
			if (lit_left == 0) {
				CHECK(buf_append_str(&o, "LITDATA '") == 0);
				dump_bytes(&o, (const char *)lit.data, lit.len);
				CHECK(buf_append_str(&o, "'\n") == 0);
				buf_reset(&lit);
				in_literal = false;
				imap_parser_literal_done(p);
			}
		}
		if (pos == arrived) {
			if (arrived == len)
				break;
			size_t next = step == 0 ? len : arrived + step;
			if (split_at > arrived && split_at < next)
				next = split_at;
			arrived = next < len ? next : len;
			continue;
		}
		if (in_literal)
			continue;
		size_t consumed = SIZE_MAX;
		const char *error = NULL;
		enum imap_parse_result r = imap_parser_feed(p, (const unsigned char *)in + pos,
		                                            arrived - pos, &consumed, &error);
		if (r == IMAP_PARSE_ERROR) {
			CHECK(error != NULL);
			CHECK(buf_printf(&o, "ERROR %s\n", error) == 0);
			/* The error is sticky. */
			const char *error2 = NULL;
			CHECK(imap_parser_feed(p, (const unsigned char *)"*", 1, &consumed,
			                       &error2) == IMAP_PARSE_ERROR);
			CHECK(error2 == error);
			break;
		}
		CHECK(consumed <= arrived - pos);
		pos += consumed;
		if (r == IMAP_PARSE_MORE) {
			CHECK(pos == arrived);
			CHECK(imap_parser_response(p) == NULL);
		} else if (r == IMAP_PARSE_RESPONSE) {
			dump_response(&o, imap_parser_response(p));
			CHECK(buf_append_str(&o, "\n") == 0);
		} else {
			CHECK(r == IMAP_PARSE_LITERAL);
			lit_left = imap_parser_literal_size(p);
			CHECK(buf_printf(&o, "LITERAL %" PRIu64 ":", lit_left) == 0);
			dump_response(&o, imap_parser_partial(p));
			CHECK(buf_append_str(&o, "\n") == 0);
			in_literal = true;
		}
	}
	if (in_literal)
		CHECK(buf_append_str(&o, "EOF in literal\n") == 0);
	imap_parser_free(&p);
	CHECK(p == NULL);
	buf_free(&lit);
	char *s = strdup(buf_str(&o));
	CHECK(s != NULL);
	buf_free(&o);
	return s;
}

/* Whole, byte at a time, in odd chunks and split at every position: all
 * must give want. */
static void check_all_splits(const struct imap_parser_limits *lim, const char *in, size_t len,
                             const char *want)
{
	char *got = run(lim, in, len, 0, 0);
	CHECK_STR(got, want);
	free(got);
	static const size_t steps[] = {1, 2, 3, 7, 64};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		got = run(lim, in, len, steps[i], 0);
		CHECK_STR(got, want);
		free(got);
	}
	for (size_t k = 1; k < len; k++) {
		got = run(lim, in, len, 0, k);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "split at %zu:\n", k);
		CHECK_STR(got, want);
		free(got);
	}
}

struct example {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *want;
};

#define EX(s, w)                                                                                   \
	{                                                                                          \
		s, sizeof(s) - 1, w                                                                \
	}

static const struct example examples[] = {
    EX("* 12 FETCH (UID 7 FLAGS (\\Seen $Label1) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
       "RFC822.SIZE 44827 MODSEQ (12121) BODY[] {5}\r\nhello)\r\n",
       "* args: A'12' A'FETCH' (A'UID' A'7' A'FLAGS' (A'\\Seen' A'$Label1') A'INTERNALDATE' "
       "S'17-Jul-1996 02:44:25 -0700' A'RFC822.SIZE' A'44827' A'MODSEQ' (A'12121') "
       "A'BODY[]' S'hello')\n"),
    EX("* LIST (\\HasNoChildren \\Sent) \"/\" \"Sent Items\"\r\n",
       "* args: A'LIST' (A'\\HasNoChildren' A'\\Sent') S'/' S'Sent Items'\n"),
    EX("* LIST () \".\" {8}\r\nweird\"na\r\n", "* args: A'LIST' () S'.' S'weird\"na'\n"),
    EX("* STATUS INBOX (MESSAGES 231 UIDNEXT 44292 UIDVALIDITY 1 HIGHESTMODSEQ 9)\r\n",
       "* args: A'STATUS' A'INBOX' (A'MESSAGES' A'231' A'UIDNEXT' A'44292' A'UIDVALIDITY' "
       "A'1' A'HIGHESTMODSEQ' A'9')\n"),
    EX("* ESEARCH (TAG \"A282\") UID ALL 2,10:11\r\n",
       "* args: A'ESEARCH' (A'TAG' S'A282') A'UID' A'ALL' A'2,10:11'\n"),
    EX("* VANISHED (EARLIER) 41,43:116,118\r\n",
       "* args: A'VANISHED' (A'EARLIER') A'41,43:116,118'\n"),
    EX("* ENABLED QRESYNC\r\n", "* args: A'ENABLED' A'QRESYNC'\n"),
    EX("* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR AUTH=PLAIN\r\n",
       "* args: A'CAPABILITY' A'IMAP4rev1' A'LITERAL+' A'SASL-IR' A'AUTH=PLAIN'\n"),
    EX("* OK [UIDNEXT 4392] Predicted next UID\r\n",
       "* OK [UIDNEXT A'4392'] text='Predicted next UID'\n"),
    EX("A1 OK [READ-WRITE] SELECT completed\r\n", "A1 OK [READ-WRITE] text='SELECT completed'\n"),
    EX("* BYE bye\r\n", "* BYE text='bye'\n"),
    EX("+ \r\n", "+ text=''\n"),
    EX("+\r\n", "+ text=''\n"),
    EX("+ UGFzc3dvcmQ6\r\n", "+ text='UGFzc3dvcmQ6'\n"),
    EX("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n",
       "* args: A'FLAGS' (A'\\Answered' A'\\Flagged' A'\\Deleted' A'\\Seen' A'\\Draft')\n"),
    EX("* SEARCH 2 84 882\r\n", "* args: A'SEARCH' A'2' A'84' A'882'\n"),
    EX("* SEARCH\r\n", "* args: A'SEARCH'\n"),
    EX("* SEARCH \r\n", "* args: A'SEARCH'\n"),
    EX("* 5 FETCH (BINARY[] ~{3}\r\n\x00\x01\x02)\r\n",
       "* args: A'5' A'FETCH' (A'BINARY[]' S'\\x00\\x01\\x02')\n"),
    EX("* 3 EXISTS\r\n", "* args: A'3' A'EXISTS'\n"),
    EX("* 3 EXPUNGE\r\n", "* args: A'3' A'EXPUNGE'\n"),
    EX("* OK [PERMANENTFLAGS (\\Answered \\Seen \\*)] Limited\r\n",
       "* OK [PERMANENTFLAGS (A'\\Answered' A'\\Seen' A'\\*')] text='Limited'\n"),
    EX("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
       "* OK [UIDVALIDITY A'3857529045'] text='UIDs valid'\n"),
    EX("* OK [HIGHESTMODSEQ 715194045007] Highest\r\n",
       "* OK [HIGHESTMODSEQ A'715194045007'] text='Highest'\n"),
    EX("A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n",
       "A3 OK [COPYUID A'38505' A'304,319:320' A'3956:3958'] text='Done'\n"),
    EX("* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE] Dovecot ready.\r\n",
       "* OK [CAPABILITY A'IMAP4rev1' A'SASL-IR' A'ID' A'ENABLE'] text='Dovecot ready.'\n"),
    EX("* NO [ALERT] Quota (soon) exceeded [really]\r\n",
       "* NO [ALERT] text='Quota (soon) exceeded [really]'\n"),
    EX("* ok [alert]\r\n", "* OK [alert] text=''\n"),
    EX("a2 bad\r\n", "a2 BAD text=''\n"),
    EX("* PREAUTH welcome \r\n", "* PREAUTH text='welcome '\n"),
    EX("A4 NO [BADCHARSET (UTF-8 US-ASCII)] bad charset\r\n",
       "A4 NO [BADCHARSET (A'UTF-8' A'US-ASCII')] text='bad charset'\n"),
    EX("* 1 FETCH (BODY[HEADER.FIELDS (Message-ID Subject)]<0> {2}\r\nhi)\r\n",
       "* args: A'1' A'FETCH' (A'BODY[HEADER.FIELDS (Message-ID Subject)]<0>' S'hi')\n"),
    EX("* 1 FETCH (ENVELOPE (NIL nil \"a\\\\b\\\"c\" ((\"x\" NIL \"y\" \"z\"))))\r\n",
       "* args: A'1' A'FETCH' (A'ENVELOPE' (NIL NIL S'a\\b\"c' ((S'x' NIL S'y' S'z'))))\n"),
    EX("* LIST (\\Noselect) NIL \"\"\r\n", "* args: A'LIST' (A'\\Noselect') NIL S''\n"),
    EX("* LIST () \"/\" \"Gr\xc3\xbc\xc3\x9f"
       "e\"\r\n",
       "* args: A'LIST' () S'/' S'Gr\\xc3\\xbc\\xc3\\x9fe'\n"),
    EX("* 2 FETCH (BODY[] {0}\r\n)\r\n", "* args: A'2' A'FETCH' (A'BODY[]' S'')\n"),
    EX("* 4 FETCH (X ~abc)\r\n", "* args: A'4' A'FETCH' (A'X' A'~abc')\n"),
    EX("* LIST () \"/\" ]x]\r\n", "* args: A'LIST' () S'/' A']x]'\n"),
    /* The response codes the replay reads (RFC 4315, 7162, 5530, 6851). */
    EX("A5 OK [APPENDUID 38505 3955] APPEND completed\r\n",
       "A5 OK [APPENDUID A'38505' A'3955'] text='APPEND completed'\n"),
    EX("d105 OK [MODIFIED 7,9] Conditional STORE failed\r\n",
       "d105 OK [MODIFIED A'7,9'] text='Conditional STORE failed'\n"),
    EX("* OK [COPYUID 432432 42:43 222:223] Moved\r\n",
       "* OK [COPYUID A'432432' A'42:43' A'222:223'] text='Moved'\n"),
    EX("A6 NO [ALREADYEXISTS] Mailbox already exists\r\n",
       "A6 NO [ALREADYEXISTS] text='Mailbox already exists'\n"),
    EX("A7 NO [NONEXISTENT] No such mailbox\r\n", "A7 NO [NONEXISTENT] text='No such mailbox'\n"),
    EX("A8 NO [TRYCREATE] Mailbox doesn't exist: Foo\r\n",
       "A8 NO [TRYCREATE] text='Mailbox doesn\\x27t exist: Foo'\n"),
    EX("A9 NO [CANNOT] Invalid mailbox name\r\n", "A9 NO [CANNOT] text='Invalid mailbox name'\n"),
    EX("A10 NO [LIMIT] Too many\r\n", "A10 NO [LIMIT] text='Too many'\n"),
    EX("A11 OK [COPYUID 1 1:4294967295 1:4294967295]\r\n",
       "A11 OK [COPYUID A'1' A'1:4294967295' A'1:4294967295'] text=''\n"),
    EX("A12 OK [MODIFIED] x\r\n", "A12 OK [MODIFIED] text='x'\n"),
    EX("A13 OK [APPENDUID \"1\" (2)] x\r\n", "A13 OK [APPENDUID S'1' (A'2')] text='x'\n"),
};

static void test_examples(void)
{
	const struct imap_parser_limits *lim = &imap_parser_default_limits;
	struct buf all, want;
	buf_init(&all, 1 << 20);
	buf_init(&want, 1 << 20);
	for (size_t i = 0; i < sizeof(examples) / sizeof(examples[0]); i++) {
		const struct example *e = &examples[i];
		check_all_splits(lim, e->in, e->len, e->want);
		CHECK(buf_append(&all, e->in, e->len) == 0);
		CHECK(buf_append_str(&want, e->want) == 0);
	}
	/* All of them back to back, in one feed and in pieces. */
	for (size_t step = 0; step < 20; step += 3) {
		char *got = run(lim, (const char *)all.data, all.len, step, 0);
		CHECK_STR(got, buf_str(&want));
		free(got);
	}
	buf_free(&all);
	buf_free(&want);
}

/* consumed_r stops at the end of each response. */
static void test_consumed(void)
{
	struct imap_parser *p = imap_parser_create(&imap_parser_default_limits);
	CHECK(p != NULL);
	const char *in = "* 1 EXISTS\r\nA1 OK done\r\n* 2";
	size_t len = strlen(in), consumed = 0;
	const char *error = NULL;
	CHECK(imap_parser_feed(p, (const unsigned char *)in, len, &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	CHECK(consumed == 12);
	const struct imap_response *r = imap_parser_response(p);
	CHECK(r->kind == IMAP_RESP_UNTAGGED && r->status == IMAP_STATUS_NONE);
	uint64_t n = 0;
	CHECK(imap_arg_number(r->args, UINT32_MAX, &n) && n == 1);
	CHECK(imap_arg_is_atom(r->args->next, "exists"));
	CHECK(r->text != NULL && r->text[0] == '\0');
	in += consumed;
	len -= consumed;
	CHECK(imap_parser_feed(p, (const unsigned char *)in, len, &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	CHECK(consumed == 12);
	r = imap_parser_response(p);
	CHECK(r->kind == IMAP_RESP_TAGGED && strcmp(r->tag, "A1") == 0);
	CHECK(r->status == IMAP_STATUS_OK && strcmp(r->text, "done") == 0);
	CHECK(r->code == NULL && r->code_args == NULL && r->args == NULL);
	in += consumed;
	len -= consumed;
	CHECK(imap_parser_feed(p, (const unsigned char *)in, len, &consumed, &error) ==
	      IMAP_PARSE_MORE);
	CHECK(consumed == 3);
	CHECK(imap_parser_response(p) == NULL);
	/* An empty feed changes nothing. */
	CHECK(imap_parser_feed(p, (const unsigned char *)"", 0, &consumed, &error) ==
	      IMAP_PARSE_MORE);
	CHECK(consumed == 0);
	CHECK(imap_parser_feed(p, (const unsigned char *)" RECENT\r\n", 9, &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	CHECK(imap_arg_is_atom(imap_parser_response(p)->args->next, "RECENT"));
	/* Reset drops a partial response. */
	CHECK(imap_parser_feed(p, (const unsigned char *)"* 9 FE", 6, &consumed, &error) ==
	      IMAP_PARSE_MORE);
	imap_parser_reset(p);
	CHECK(imap_parser_feed(p, (const unsigned char *)"+ go\r\n", 6, &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	CHECK(strcmp(imap_parser_response(p)->text, "go") == 0);
	imap_parser_free(&p);
	imap_parser_free(&p); /* NULL is fine */
	imap_parser_free(NULL);
}

static void test_streamed_literals(void)
{
	struct imap_parser_limits lim = imap_parser_default_limits;
	lim.inline_literal_max = 4;
	static const char in[] = "* 1 FETCH (UID 5 BODY[] {10}\r\n0123456789 BODY[1] {4}\r\nabcd "
	                         "BINARY[2] ~{6}\r\nab\x00\r\nd FLAGS (\\Seen))\r\n"
	                         "A9 OK [X {5}\r\nhello] done\r\n";
	check_all_splits(&lim, in, sizeof(in) - 1,
	                 "LITERAL 10:* args: A'1' A'FETCH' (A'UID' A'5' A'BODY[]' {10})\n"
	                 "LITDATA '0123456789'\n"
	                 "LITERAL 6:* args: A'1' A'FETCH' (A'UID' A'5' A'BODY[]' {10} A'BODY[1]' "
	                 "S'abcd' A'BINARY[2]' ~{6})\n"
	                 "LITDATA 'ab\\x00\\x0d\\x0ad'\n"
	                 "* args: A'1' A'FETCH' (A'UID' A'5' A'BODY[]' {10} A'BODY[1]' S'abcd' "
	                 "A'BINARY[2]' ~{6} A'FLAGS' (A'\\Seen'))\n"
	                 "LITERAL 5:A9 OK [X {5}]\n"
	                 "LITDATA 'hello'\n"
	                 "A9 OK [X {5}] text='done'\n");

	/* The API in detail. */
	struct imap_parser *p = imap_parser_create(&lim);
	CHECK(p != NULL);
	const char *a = "* 7 FETCH (BODY[] {12}\r\n";
	size_t consumed = 0;
	const char *error = NULL;
	CHECK(imap_parser_feed(p, (const unsigned char *)a, strlen(a), &consumed, &error) ==
	      IMAP_PARSE_LITERAL);
	CHECK(consumed == strlen(a));
	CHECK(imap_parser_literal_size(p) == 12);
	CHECK(imap_parser_response(p) == NULL);
	const struct imap_response *r = imap_parser_partial(p);
	CHECK(r != NULL && r->args != NULL);
	const struct imap_arg *list = r->args->next->next;
	CHECK(list->type == IMAP_ARG_LIST && imap_arg_list_count(list) == 2);
	CHECK(list->list->next->type == IMAP_ARG_LITERAL_STREAM);
	CHECK(list->list->next->literal_size == 12 && !list->list->next->literal8);
	imap_parser_literal_done(p);
	CHECK(imap_parser_feed(p, (const unsigned char *)")\r\n", 3, &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	r = imap_parser_response(p);
	CHECK(r->args->next->next->list->next->literal_size == 12);
	/* Feeding without consuming the literal is an error. */
	CHECK(imap_parser_feed(p, (const unsigned char *)a, strlen(a), &consumed, &error) ==
	      IMAP_PARSE_LITERAL);
	CHECK(imap_parser_feed(p, (const unsigned char *)")", 1, &consumed, &error) ==
	      IMAP_PARSE_ERROR);
	CHECK(strstr(error, "literal") != NULL);
	imap_parser_free(&p);

	/* A literal within inline_literal_max that does not fit in the rest of
	 * max_line is streamed rather than refused. */
	lim = imap_parser_default_limits;
	lim.max_line = 40;
	lim.inline_literal_max = 30;
	check_all_splits(&lim, "* 1 FETCH (BODY[] {25}\r\n0123456789012345678901234)\r\n", 52,
	                 "LITERAL 25:* args: A'1' A'FETCH' (A'BODY[]' {25})\n"
	                 "LITDATA '0123456789012345678901234'\n"
	                 "* args: A'1' A'FETCH' (A'BODY[]' {25})\n");
	check_all_splits(&lim, "* 1 FETCH (B {12}\r\n012345678901)\r\n", 34,
	                 "* args: A'1' A'FETCH' (A'B' S'012345678901')\n");
}

static char *repeat(const char *head, const char *unit, unsigned n, const char *tail)
{
	struct buf b;
	buf_init(&b, 1 << 24);
	CHECK(buf_append_str(&b, head) == 0);
	for (unsigned i = 0; i < n; i++)
		CHECK(buf_append_str(&b, unit) == 0);
	CHECK(buf_append_str(&b, tail) == 0);
	char *s = strdup(buf_str(&b));
	CHECK(s != NULL);
	buf_free(&b);
	return s;
}

static void check_run(const struct imap_parser_limits *lim, const char *in, const char *want)
{
	char *got = run(lim, in, strlen(in), 0, 0);
	CHECK_STR(got, want);
	free(got);
	got = run(lim, in, strlen(in), 1, 0);
	CHECK_STR(got, want);
	free(got);
}

static void test_limits(void)
{
	struct imap_parser_limits lim = imap_parser_default_limits;
	/* max_line: exactly at the limit is fine, one more byte is not. */
	lim.max_line = 20;
	check_run(&lim, "* 1 FETCH (UID 123)\r\n", "ERROR IMAP response line too long\n");
	check_run(&lim, "* 1 FETCH (UID 12)\r\n", "* args: A'1' A'FETCH' (A'UID' A'12')\n");
	check_run(&lim, "* OK 3456789012345\r\n", "* OK text='3456789012345'\n");
	check_run(&lim, "* OK 34567890123456\r\n", "ERROR IMAP response line too long\n");
	check_run(&lim, "* 1 FETCH (\"1234\")\r\n", "* args: A'1' A'FETCH' (S'1234')\n");
	check_run(&lim, "* 1 FETCH (\"12345\")\r\n", "ERROR IMAP response line too long\n");
	check_run(&lim, "* 1 X {7}\r\nabcdefg\r\n", "* args: A'1' A'X' S'abcdefg'\n");
	/* Inlined because it fits the budget left, then the CRLF does not. */
	check_run(&lim, "* 1 X {8}\r\nabcdefgh\r\n", "ERROR IMAP response line too long\n");
	/* Does not fit the budget left: streamed instead. */
	check_run(&lim, "* 1 X {10}\r\nabcdefghij\r\n",
	          "LITERAL 10:* args: A'1' A'X' {10}\nLITDATA 'abcdefghij'\n"
	          "* args: A'1' A'X' {10}\n");
	check_run(&lim, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ERROR IMAP response line too long\n");
	/* Streamed literal bytes do not count. */
	lim.inline_literal_max = 2;
	check_run(&lim, "* 1 X {30}\r\n012345678901234567890123456789\r\n",
	          "LITERAL 30:* args: A'1' A'X' {30}\n"
	          "LITDATA '012345678901234567890123456789'\n"
	          "* args: A'1' A'X' {30}\n");
	/* A huge line does not grow memory past the limit. */
	lim = imap_parser_default_limits;
	char *big = repeat("* SEARCH", " 1", 40000, "\r\n");
	check_run(&lim, big, "ERROR IMAP response line too long\n");
	free(big);

	/* max_depth */
	lim = imap_parser_default_limits;
	lim.max_depth = 2;
	check_run(&lim, "* X ((a) b)\r\n", "* args: A'X' ((A'a') A'b')\n");
	check_run(&lim, "* X (((a)))\r\n", "ERROR IMAP response nested too deeply\n");
	lim.max_depth = 0;
	check_run(&lim, "* X ()\r\n", "ERROR IMAP response nested too deeply\n");
	lim = imap_parser_default_limits;
	char *deep = repeat("* X ", "(", 17, "\r\n");
	check_run(&lim, deep, "ERROR IMAP response nested too deeply\n");
	free(deep);

	/* max_args counts all levels, lists included */
	lim.max_args = 4;
	check_run(&lim, "* A B C D\r\n", "* args: A'A' A'B' A'C' A'D'\n");
	check_run(&lim, "* A B C D E\r\n", "ERROR too many arguments in IMAP response\n");
	check_run(&lim, "* A (B C)\r\n", "* args: A'A' (A'B' A'C')\n");
	check_run(&lim, "* A (B C) D\r\n", "ERROR too many arguments in IMAP response\n");
	check_run(&lim, "* OK [X A B C D] t\r\n", "* OK [X A'A' A'B' A'C' A'D'] text='t'\n");
	check_run(&lim, "* OK [X A B C D E] t\r\n", "ERROR too many arguments in IMAP response\n");
	lim = imap_parser_default_limits;
	char *many = repeat("* SEARCH", " 1", 20000, "\r\n");
	char *got = run(&lim, many, strlen(many), 0, 0);
	CHECK(strncmp(got, "* args: A'SEARCH' A'1' A'1'", 27) == 0);
	free(got);
	free(many);

	/* max_literal */
	lim = imap_parser_default_limits;
	lim.max_literal = 100;
	lim.inline_literal_max = 10;
	check_run(&lim, "* 1 X {101}\r\n", "ERROR IMAP literal too large\n");
	got = run(&lim, "* 1 X {100}\r\n", 13, 0, 0);
	CHECK_STR(got, "LITERAL 100:* args: A'1' A'X' {100}\nEOF in literal\n");
	free(got);
	lim = imap_parser_default_limits;
	lim.max_literal = UINT64_MAX;
	lim.inline_literal_max = 0;
	got = run(&lim, "* 1 X {18446744073709551615}\r\n", 30, 0, 0);
	CHECK_STR(got, "LITERAL 18446744073709551615:* args: A'1' A'X' {18446744073709551615}\n"
	               "EOF in literal\n");
	free(got);
	check_run(&lim, "* 1 X {18446744073709551616}\r\n", "ERROR IMAP literal size overflows\n");
	check_run(&lim, "* 1 X {99999999999999999999999}\r\n",
	          "ERROR IMAP literal size overflows\n");
}

static void test_errors(void)
{
	static const struct {
		const char *in, *error;
	} cases[] = {
	    {"* 1 FETCH (UID\r\n", "unterminated list in IMAP response"},
	    {"* 1 FETCH (UID 1))\r\n", "unexpected ')'"},
	    {"* )\r\n", "missing response name after '*'"},
	    {"* \r\n", "missing response name after '*'"},
	    {"*\r\n", "expected SP after '*' in IMAP response"},
	    {"* SEARCH 1\n", "bare LF in IMAP response"},
	    {"* OK text\n", "bare LF in IMAP response"},
	    {"* SEARCH 1\rX", "CR without LF in IMAP response"},
	    {"* SEARCH \x01\r\n", "control character in IMAP response"},
	    {"* LIST () \"a\rb\"\r\n", "CR, LF or NUL in IMAP quoted string"},
	    {"* LIST () \"a\nb\"\r\n", "CR, LF or NUL in IMAP quoted string"},
	    {"* LIST () \"a\\\nb\"\r\n", "CR, LF or NUL in IMAP quoted string"},
	    {"* LIST () \"ab\r\n", "CR, LF or NUL in IMAP quoted string"},
	    {"* X {12a}\r\n", "invalid IMAP literal size"},
	    {"* X {}\r\n", "invalid IMAP literal size"},
	    {"* X {+1}\r\n", "invalid IMAP literal size"},
	    {"* X {1}\n", "expected CRLF after IMAP literal size"},
	    {"* X {1}x", "expected CRLF after IMAP literal size"},
	    {"A1 FOO bar\r\n", "tagged IMAP response without status"},
	    {"A1 (OK)\r\n", "tagged IMAP response without status"},
	    {"A1\r\n", "tagged IMAP response without status"},
	    {"A1 \r\n", "tagged IMAP response without status"},
	    {"(A1 OK\r\n", "invalid tag in IMAP response"},
	    {" * OK\r\n", "invalid tag in IMAP response"},
	    {"\r\n", "invalid tag in IMAP response"},
	    {"A\"1 OK\r\n", "invalid tag in IMAP response"},
	    {"* OK [ALERT\r\n", "unterminated response code"},
	    {"* OK [X (a]\r\n", "unterminated list in response code"},
	    {"* OK [X a\r\n", "unterminated response code"},
	    {"* OK []\r\n", "empty IMAP response code"},
	    {"* OK [ ] x\r\n", "empty IMAP response code"},
	    {"* OK [A(B] x\r\n", "invalid IMAP response code"},
	    {"* OK(x)\r\n", "expected SP after IMAP response status"},
	    {"* X BODY[TEXT\r\n", "unterminated '[' in IMAP atom"},
	    {"* X BODY[\t]\r\n", "control character in IMAP response"},
	};
	const struct imap_parser_limits *lim = &imap_parser_default_limits;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[256];
		int n = snprintf(want, sizeof(want), "ERROR %s\n", cases[i].error);
		CHECK(n > 0 && (size_t)n < sizeof(want));
		check_all_splits(lim, cases[i].in, strlen(cases[i].in), want);
	}
	/* Embedded NULs need explicit lengths. */
	check_all_splits(lim, "* SEARCH 1\x00 2\r\n", 15, "ERROR NUL byte in IMAP response\n");
	check_all_splits(lim, "* OK a\x00\r\n", 9, "ERROR NUL byte in IMAP response\n");
	check_all_splits(lim, "* X \"a\x00\"\r\n", 10,
	                 "ERROR CR, LF or NUL in IMAP quoted string\n");
	check_all_splits(lim, "* X BODY[\x00]\r\n", 13, "ERROR NUL byte in IMAP response\n");
	check_all_splits(lim, "\x00", 1, "ERROR invalid tag in IMAP response\n");
	/* A good response before the bad one is still delivered. */
	check_all_splits(lim, "* 1 EXISTS\r\n* 1 FETCH (UID\r\n", 28,
	                 "* args: A'1' A'EXISTS'\nERROR unterminated list in IMAP response\n");
}

static void test_helpers(void)
{
	struct imap_parser *p = imap_parser_create(&imap_parser_default_limits);
	CHECK(p != NULL);
	const char *in = "* 1 FETCH (UID 4294967295 X 4294967296 Y 18446744073709551615 "
	                 "Z 18446744073709551616 E \"5\" N -1 L (1 (2 3) NIL) NIL 007 ())\r\n";
	size_t consumed;
	const char *error;
	CHECK(imap_parser_feed(p, (const unsigned char *)in, strlen(in), &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	const struct imap_response *r = imap_parser_response(p);
	const struct imap_arg *l = r->args->next->next;
	CHECK(imap_arg_list_count(l) == 17);
	const struct imap_arg *a = l->list;
	uint64_t n = 0;
	CHECK(imap_arg_is_atom(a, "uid") && !imap_arg_is_atom(a, "UI"));
	CHECK(!imap_arg_is_atom(a, "UIDX") && !imap_arg_is_atom(NULL, "UID"));
	a = a->next;
	CHECK(imap_arg_number(a, UINT32_MAX, &n) && n == UINT32_MAX);
	a = a->next->next;
	n = 7;
	CHECK(!imap_arg_number(a, UINT32_MAX, &n) && n == 7); /* untouched */
	CHECK(imap_arg_number(a, UINT64_MAX, &n) && n == 4294967296ULL);
	a = a->next->next;
	CHECK(imap_arg_number(a, UINT64_MAX, &n) && n == UINT64_MAX);
	a = a->next->next;
	CHECK(!imap_arg_number(a, UINT64_MAX, &n));
	a = a->next->next;
	CHECK(a->type == IMAP_ARG_STRING && !imap_arg_number(a, 10, &n)); /* strings aren't */
	CHECK(strcmp(imap_arg_string(a), "5") == 0 && !imap_arg_is_atom(a, "5"));
	a = a->next->next;
	CHECK(!imap_arg_number(a, 10, &n)); /* -1 */
	a = a->next->next;
	CHECK(imap_arg_list_count(a) == 3 && imap_arg_string(a) == NULL);
	CHECK(imap_arg_list_count(a->list->next) == 2);
	CHECK(a->list->next->next->type == IMAP_ARG_NIL);
	a = a->next;
	CHECK(a->type == IMAP_ARG_NIL && imap_arg_string(a) == NULL && !imap_arg_is_atom(a, "NIL"));
	a = a->next;
	CHECK(imap_arg_number(a, 7, &n) && n == 7 && !imap_arg_number(a, 6, &n));
	a = a->next;
	CHECK(a->type == IMAP_ARG_LIST && a->list == NULL && imap_arg_list_count(a) == 0);
	CHECK(a->next == NULL);
	CHECK(imap_arg_list_count(NULL) == 0 && imap_arg_string(NULL) == NULL);
	CHECK(!imap_arg_number(NULL, 1, &n));
	imap_parser_free(&p);
}

/* Parse one whole response; the parser stays alive in *p. */
static const struct imap_response *parse_one(struct imap_parser **p, const char *in)
{
	imap_parser_free(p);
	*p = imap_parser_create(&imap_parser_default_limits);
	CHECK(*p != NULL);
	size_t consumed;
	const char *error;
	CHECK(imap_parser_feed(*p, (const unsigned char *)in, strlen(in), &consumed, &error) ==
	      IMAP_PARSE_RESPONSE);
	CHECK(consumed == strlen(in));
	return imap_parser_response(*p);
}

/* The response-code readers on what the parser makes of real and hostile
 * answers: COPYUID pairs in the server's order, bounded by the request;
 * APPENDUID one UID; MODIFIED a subset of the request. */
static void test_response_codes(void)
{
	struct imap_parser *p = NULL;
	const char *error;
	struct imap_uidset req = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add(&req, 304) == 0 && imap_uidset_add_range(&req, 319, 320) == 0);

	/* RFC 4315's example. */
	const struct imap_response *r =
	    parse_one(&p, "A003 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n");
	struct imap_copyuid cu = {0};
	OK(imap_copyuid_parse(r->code_args, &req, &cu, &error));
	CHECK(cu.valid && cu.uidvalidity == 38505 && cu.count == 3);
	CHECK(imap_copyuid_lookup(&cu, 304) == 3956 && imap_copyuid_lookup(&cu, 319) == 3957 &&
	      imap_copyuid_lookup(&cu, 320) == 3958 && imap_copyuid_lookup(&cu, 305) == 0);
	imap_copyuid_free(&cu);

	/* Pairs follow the written order, not the numeric one. */
	r = parse_one(&p, "* OK [COPYUID 7 320,304,319 10:12] Moved\r\n");
	OK(imap_copyuid_parse(r->code_args, &req, &cu, &error));
	CHECK(imap_copyuid_lookup(&cu, 320) == 10 && imap_copyuid_lookup(&cu, 304) == 11 &&
	      imap_copyuid_lookup(&cu, 319) == 12);
	/* A second piece of the same command adds to it... */
	struct imap_uidset req2 = IMAP_UIDSET_INIT;
	CHECK(imap_uidset_add(&req2, 500) == 0);
	r = parse_one(&p, "* OK [COPYUID 7 500 13] Moved\r\n");
	OK(imap_copyuid_parse(r->code_args, &req2, &cu, &error));
	CHECK(cu.count == 4 && imap_copyuid_lookup(&cu, 500) == 13);
	/* ...with the same UIDVALIDITY, and a UID not twice. */
	r = parse_one(&p, "* OK [COPYUID 8 500 14] Moved\r\n");
	CHECK(imap_copyuid_parse(r->code_args, &req2, &cu, &error) == -1);
	r = parse_one(&p, "* OK [COPYUID 7 500 14] Moved\r\n");
	CHECK(imap_copyuid_parse(r->code_args, &req2, &cu, &error) == -1);
	CHECK(cu.count == 4 && imap_copyuid_lookup(&cu, 500) == 13);
	imap_copyuid_free(&cu);
	imap_uidset_free(&req2);

	/* Hostile or broken COPYUIDs are refused and leave nothing behind. */
	static const char *const bad_copyuid[] = {
	    "A1 OK [COPYUID 1 1:4294967295 1:4294967295] x\r\n", /* more than asked */
	    "A1 OK [COPYUID 1 304,319 5:7] x\r\n",               /* sizes differ */
	    "A1 OK [COPYUID 1 304,304 5:6] x\r\n",               /* repeated source */
	    "A1 OK [COPYUID 1 305 5] x\r\n",                     /* not copied */
	    "A1 OK [COPYUID 0 304 5] x\r\n",                     /* UIDVALIDITY 0 */
	    "A1 OK [COPYUID 1 304 0] x\r\n",                     /* UID 0 */
	    "A1 OK [COPYUID 1 304] x\r\n",                       /* missing set */
	    "A1 OK [COPYUID 1 304 5 6] x\r\n",                   /* extra argument */
	    "A1 OK [COPYUID 1 304 *] x\r\n",                     /* no * in uid-set */
	    "A1 OK [COPYUID 1 \"304\" 5] x\r\n",                 /* a string */
	    "A1 OK [COPYUID 1 (304) 5] x\r\n",                   /* a list */
	    "A1 OK [COPYUID 1 304, 5] x\r\n",                    /* trailing comma */
	    "A1 OK [COPYUID 1 0304 5] x\r\n",                    /* leading zero */
	    "A1 OK [COPYUID 1 304 4294967296] x\r\n",            /* past 2^32 */
	    "A1 OK [COPYUID 4294967296 304 5] x\r\n",
	    "A1 OK [COPYUID] x\r\n",
	};
	for (size_t i = 0; i < sizeof(bad_copyuid) / sizeof(bad_copyuid[0]); i++) {
		r = parse_one(&p, bad_copyuid[i]);
		error = NULL;
		if (imap_copyuid_parse(r->code_args, &req, &cu, &error) != -1)
			fprintf(stderr, "accepted: %s", bad_copyuid[i]);
		CHECK(error != NULL && !cu.valid && cu.count == 0);
	}
	imap_copyuid_free(&cu);

	/* APPENDUID. */
	uint32_t uv = 1, uid = 1;
	r = parse_one(&p, "A5 OK [APPENDUID 38505 3955] APPEND completed\r\n");
	OK(imap_appenduid_parse(r->code_args, &uv, &uid, &error));
	CHECK(uv == 38505 && uid == 3955);
	static const char *const bad_appenduid[] = {
	    "A5 OK [APPENDUID 38505 3955:3956] x\r\n",
	    "A5 OK [APPENDUID 38505 3955,3957] x\r\n",
	    "A5 OK [APPENDUID 38505] x\r\n",
	    "A5 OK [APPENDUID 0 5] x\r\n",
	    "A5 OK [APPENDUID 5 0] x\r\n",
	    "A5 OK [APPENDUID 5 -1] x\r\n",
	    "A5 OK [APPENDUID 5 5 5] x\r\n",
	    "A5 OK [APPENDUID 5 99999999999] x\r\n",
	};
	for (size_t i = 0; i < sizeof(bad_appenduid) / sizeof(bad_appenduid[0]); i++) {
		r = parse_one(&p, bad_appenduid[i]);
		uv = uid = 7;
		CHECK(imap_appenduid_parse(r->code_args, &uv, &uid, &error) == -1);
		CHECK(uv == 7 && uid == 7);
	}

	/* MODIFIED. */
	struct imap_uidset mod = IMAP_UIDSET_INIT;
	r = parse_one(&p, "d105 OK [MODIFIED 320,304] Conditional STORE failed\r\n");
	OK(imap_modified_parse(r->code_args, &req, &mod, &error));
	CHECK(mod.count == 2 && imap_uidset_contains(&mod, 304) &&
	      imap_uidset_contains(&mod, 320) && !imap_uidset_contains(&mod, 319));
	static const char *const bad_modified[] = {
	    "d1 OK [MODIFIED 1:4294967295] x\r\n",
	    "d1 OK [MODIFIED 305] x\r\n",
	    "d1 OK [MODIFIED] x\r\n",
	    "d1 OK [MODIFIED 304 319] x\r\n",
	    "d1 OK [MODIFIED *] x\r\n",
	    "d1 OK [MODIFIED 304:*] x\r\n",
	    "d1 OK [MODIFIED (304)] x\r\n",
	};
	for (size_t i = 0; i < sizeof(bad_modified) / sizeof(bad_modified[0]); i++) {
		r = parse_one(&p, bad_modified[i]);
		CHECK(imap_modified_parse(r->code_args, &req, &mod, &error) == -1);
		CHECK(mod.count == 2);
	}
	imap_uidset_free(&mod);
	imap_uidset_free(&req);
	imap_parser_free(&p);
}

int main(void)
{
	test_examples();
	test_consumed();
	test_streamed_literals();
	test_limits();
	test_errors();
	test_helpers();
	test_response_codes();
	printf("test-imap-parser: all passed\n");
	return 0;
}
