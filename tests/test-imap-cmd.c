/* Tests for the IMAP command builder: exact output, and refusal of
 * anything that could inject protocol. */
#include "imap/imap-cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

static void test_good(void)
{
	struct buf b;
	const char *error = NULL;
	buf_init(&b, 4096);

	OK(imap_cmd_begin(&b, "A7", "UID FETCH", &error));
	OK(imap_cmd_seqset(&b, "1:*", &error));
	OK(imap_cmd_raw(&b, "(UID FLAGS BODY.PEEK[])", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "A7 UID FETCH 1:* (UID FLAGS BODY.PEEK[])\r\n");

	/* begin resets whatever was there */
	OK(imap_cmd_begin(&b, "A8", "LOGIN", &error));
	OK(imap_cmd_astring(&b, "user@example.org", &error));
	OK(imap_cmd_astring(&b, "pa ss\"w\\rd", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "A8 LOGIN user@example.org \"pa ss\\\"w\\\\rd\"\r\n");

	OK(imap_cmd_begin(&b, "A9", "SELECT", &error));
	OK(imap_cmd_astring(&b, "", &error));
	OK(imap_cmd_astring(&b, "Sent Items", &error));
	OK(imap_cmd_astring(&b, "a]b", &error)); /* ']' is an ASTRING-CHAR */
	OK(imap_cmd_astring(&b, "*", &error));
	OK(imap_cmd_astring(&b, "50%", &error));
	OK(imap_cmd_astring(&b, "{3}", &error));
	OK(imap_cmd_astring(&b, "\\Seen", &error));
	OK(imap_cmd_astring(&b, "(x)", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(
	    buf_str(&b),
	    "A9 SELECT \"\" \"Sent Items\" a]b \"*\" \"50%\" \"{3}\" \"\\\\Seen\" \"(x)\"\r\n");

	OK(imap_cmd_begin(&b, "A10", "UID STORE", &error));
	OK(imap_cmd_seqset(&b, "1,3:5,7:*,*:9,*", &error));
	OK(imap_cmd_atom(&b, "+FLAGS.SILENT", &error));
	OK(imap_cmd_raw(&b, "(\\Seen \\Deleted $Junk)", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b),
	          "A10 UID STORE 1,3:5,7:*,*:9,* +FLAGS.SILENT (\\Seen \\Deleted $Junk)\r\n");

	OK(imap_cmd_begin(&b, "a.1", "enable", &error));
	OK(imap_cmd_atom(&b, "QRESYNC", &error));
	OK(imap_cmd_atom(&b, "\\Seen", &error));
	OK(imap_cmd_atom(&b, "$Forwarded", &error));
	OK(imap_cmd_number(&b, 0, &error));
	OK(imap_cmd_number(&b, 18446744073709551615ULL, &error));
	OK(imap_cmd_quoted(&b, "", &error));
	OK(imap_cmd_quoted(&b, "tab\there", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "a.1 enable QRESYNC \\Seen $Forwarded 0 18446744073709551615 \"\" "
	                       "\"tab\there\"\r\n");

	OK(imap_cmd_begin(&b, "Z", "NOOP", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "Z NOOP\r\n");
	buf_free(&b);
}

static void test_refused(void)
{
	struct buf b;
	const char *error = NULL;
	buf_init(&b, 4096);
	static const char *const evil[] = {
	    "a\r\nA2 LOGOUT", "a\rb", "a\nb", "\r\n", "\n", "\r", "INBOX\r\n",
	};
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		const char *e = evil[i];
		REFUSED(imap_cmd_begin(&b, e, "NOOP", &error), "CR, LF or NUL");
		CHECK(b.len == 0);
		REFUSED(imap_cmd_begin(&b, "A1", e, &error), "CR, LF or NUL");
		CHECK(b.len == 0);
		OK(imap_cmd_begin(&b, "A1", "X", &error));
		size_t len = b.len;
		REFUSED(imap_cmd_atom(&b, e, &error), "CR, LF or NUL");
		REFUSED(imap_cmd_quoted(&b, e, &error), "CR, LF or NUL");
		REFUSED(imap_cmd_astring(&b, e, &error), "CR, LF or NUL");
		REFUSED(imap_cmd_seqset(&b, e, &error), "CR, LF or NUL");
		REFUSED(imap_cmd_raw(&b, e, &error), "CR, LF or NUL");
		/* Nothing of a refused argument reaches the buffer. */
		CHECK(b.len == len);
		CHECK(strchr(buf_str(&b), '\r') == NULL && strchr(buf_str(&b), '\n') == NULL);
	}
	/* A C string cannot carry NUL: everything after it is simply not
	 * part of the argument, so nothing after it can be injected. */
	OK(imap_cmd_begin(&b, "A1", "SELECT", &error));
	OK(imap_cmd_astring(&b, "INBOX\0\r\nA2 LOGOUT", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "A1 SELECT INBOX\r\n");

	OK(imap_cmd_begin(&b, "A1", "X", &error));
	REFUSED(imap_cmd_quoted(&b,
	                        "Gr\xc3\xbc\xc3\x9f"
	                        "e",
	                        &error),
	        "8-bit");
	REFUSED(imap_cmd_astring(&b,
	                         "Gr\xc3\xbc\xc3\x9f"
	                         "e",
	                         &error),
	        "8-bit");
	REFUSED(imap_cmd_raw(&b, "(\xff)", &error), "8-bit");
	REFUSED(imap_cmd_atom(&b, "\xc3\xbc", &error), "invalid character");
	REFUSED(imap_cmd_raw(&b, "", &error), "empty");

	/* Atom grammar */
	static const char *const bad_atoms[] = {
	    "a b", "(a", "a)",       "{5}", "a%",   "a*",    "\"a\"", "a\\b",
	    "a]",  "\\", "\\\\Seen", "\\*", "a\tb", "a\x7f", "\x01",
	};
	for (size_t i = 0; i < sizeof(bad_atoms) / sizeof(bad_atoms[0]); i++)
		REFUSED(imap_cmd_atom(&b, bad_atoms[i], &error), "IMAP atom");
	REFUSED(imap_cmd_atom(&b, "", &error), "empty IMAP atom");

	/* Sequence sets */
	static const char *const bad_sets[] = {
	    "", "0", "01", "1:", ":1", "1,", ",1", "1,,2", "1:2:3", "a", "1 2", "**", "1-2", "$",
	};
	for (size_t i = 0; i < sizeof(bad_sets) / sizeof(bad_sets[0]); i++)
		REFUSED(imap_cmd_seqset(&b, bad_sets[i], &error), "sequence set");

	/* Tags and command names */
	REFUSED(imap_cmd_begin(&b, "", "NOOP", &error), "tag");
	REFUSED(imap_cmd_begin(&b, "+A", "NOOP", &error), "tag");
	REFUSED(imap_cmd_begin(&b, "A 1", "NOOP", &error), "tag");
	REFUSED(imap_cmd_begin(&b, "A*", "NOOP", &error), "tag");
	REFUSED(imap_cmd_begin(&b, "A(", "NOOP", &error), "tag");
	REFUSED(imap_cmd_begin(&b, "A\xc3", "NOOP", &error), "tag");
	REFUSED(imap_cmd_begin(&b, "A1", "", &error), "command name");
	REFUSED(imap_cmd_begin(&b, "A1", " NOOP", &error), "command name");
	REFUSED(imap_cmd_begin(&b, "A1", "UID  FETCH", &error), "command name");
	REFUSED(imap_cmd_begin(&b, "A1", "NOOP ", &error), "command name");
	REFUSED(imap_cmd_begin(&b, "A1", "X(", &error), "command name");
	REFUSED(imap_cmd_begin(&b, "A1", "UID\tFETCH", &error), "command name");
	buf_free(&b);
}

static void test_overflow(void)
{
	struct buf b;
	const char *error = NULL;
	/* "A1 X" + " abc" + CRLF is exactly 10 bytes. */
	buf_init(&b, 10);
	OK(imap_cmd_begin(&b, "A1", "X", &error));
	OK(imap_cmd_atom(&b, "abc", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "A1 X abc\r\n");
	OK(imap_cmd_begin(&b, "A1", "X", &error));
	OK(imap_cmd_atom(&b, "abc", &error));
	REFUSED(imap_cmd_raw(&b, "de", &error), "IMAP command too long");
	OK(imap_cmd_raw(&b, "d", &error));
	REFUSED(imap_cmd_end(&b, &error), "IMAP command too long");
	OK(imap_cmd_begin(&b, "A1", "X", &error));
	REFUSED(imap_cmd_atom(&b, "abcdef", &error), "IMAP command too long");
	CHECK(b.len <= b.max);
	OK(imap_cmd_begin(&b, "A1", "X", &error));
	REFUSED(imap_cmd_quoted(&b, "abcd", &error), "IMAP command too long");
	REFUSED(imap_cmd_quoted(&b, "a\\\"", &error), "IMAP command too long");
	OK(imap_cmd_quoted(&b, "ab", &error));
	REFUSED(imap_cmd_end(&b, &error), "IMAP command too long");
	OK(imap_cmd_begin(&b, "A1", "X", &error));
	REFUSED(imap_cmd_number(&b, 123456, &error), "IMAP command too long");
	REFUSED(imap_cmd_seqset(&b, "1:12345", &error), "IMAP command too long");
	REFUSED(imap_cmd_astring(&b, "a b c d", &error), "IMAP command too long");
	REFUSED(imap_cmd_begin(&b, "A1234", "NOOPX", &error), "IMAP command too long");
	REFUSED(imap_cmd_begin(&b, "A1234567890", "X", &error), "IMAP command too long");
	CHECK(b.len <= b.max);
	buf_free(&b);
}

/* Literals, astrings that fall back to literals, and flag lists. */
static void test_literals_and_flags(void)
{
	struct buf b;
	const char *error = NULL;
	buf_init(&b, 4096);
	OK(imap_cmd_begin(&b, "A1", "RENAME", &error));
	OK(imap_cmd_astring_lit(&b, "Caf\xc3\xa9", 0, &error));
	OK(imap_cmd_astring_lit(&b, "Caf\xc3\xa9s", 100, &error));
	OK(imap_cmd_astring_lit(&b, "plain", 0, &error));
	OK(imap_cmd_astring_lit(&b, "two words", 0, &error));
	OK(imap_cmd_literal(&b, "", 0, &error));
	OK(imap_cmd_literal(&b, "abcd", 3, &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b),
	          "A1 RENAME {5}\r\nCaf\xc3\xa9 {6+}\r\nCaf\xc3\xa9s plain \"two words\" "
	          "{0+}\r\n {4}\r\nabcd\r\n");
	static const char *const crlf[] = {"a\rb", "a\nb", "\xc3\xa9\r\n"};
	for (size_t i = 0; i < sizeof(crlf) / sizeof(crlf[0]); i++) {
		error = NULL;
		CHECK(imap_cmd_astring_lit(&b, crlf[i], SIZE_MAX, &error) == -1 && error != NULL);
		CHECK(imap_cmd_literal(&b, crlf[i], SIZE_MAX, &error) == -1);
	}

	OK(imap_cmd_begin(&b, "A2", "UID STORE", &error));
	OK(imap_cmd_flag_list(&b, "()", &error));
	OK(imap_cmd_flag_list(&b, "(\\Seen)", &error));
	OK(imap_cmd_flag_list(&b, "(\\Seen \\Deleted $Junk NonJunk)", &error));
	OK(imap_cmd_end(&b, &error));
	CHECK_STR(buf_str(&b), "A2 UID STORE () (\\Seen) (\\Seen \\Deleted $Junk NonJunk)\r\n");
	static const char *const bad[] = {
	    "",       "(",    ")",    "\\Seen", "(\\Seen",    "\\Seen)",  "( )",
	    "(a  b)", "( a)", "(a )", "(\\)",   "(\\\\a)",    "(a\"b)",   "((a))",
	    "(a{1})", "(a%)", "(a*)", "(a]b)",  "(\xc3\xa9)", "(a\r\nb)", "(a) ",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		error = NULL;
		if (imap_cmd_flag_list(&b, bad[i], &error) != -1)
			fprintf(stderr, "accepted flag list '%s'\n", bad[i]);
		CHECK(error != NULL);
	}
	buf_free(&b);
}

int main(void)
{
	test_good();
	test_refused();
	test_overflow();
	test_literals_and_flags();
	printf("test-imap-cmd: all passed\n");
	return 0;
}
