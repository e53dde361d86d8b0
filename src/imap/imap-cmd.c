#include "imap-cmd.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/*
 * Every function validates its whole argument before writing anything, so
 * a refused argument never leaves half of itself in the buffer (the command
 * is still incomplete and must be discarded, as the header says).
 */

static const char err_crlf[] = "CR, LF or NUL in IMAP command";
static const char err_long[] = "IMAP command too long";

static int append(struct buf *b, const void *p, size_t n, const char **error_r)
{
	if (buf_append(b, p, n) < 0) {
		*error_r = err_long;
		return -1;
	}
	return 0;
}

/* Appends the separating SP and then n bytes. */
static int append_arg(struct buf *b, const void *p, size_t n, const char **error_r)
{
	if (n > SIZE_MAX - 1 || b->max - b->len < n + 1) {
		*error_r = err_long;
		return -1;
	}
	if (append(b, " ", 1, error_r) < 0)
		return -1;
	return append(b, p, n, error_r);
}

static bool has_crlf(const char *s)
{
	/* NUL cannot occur inside a C string; it ends it. */
	return strpbrk(s, "\r\n") != NULL;
}

/* RFC 9051 ATOM-CHAR: any CHAR except atom-specials
 * ( ) { SP CTL % * " \ ] (and 8-bit, which CHAR excludes). */
static bool is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\]", c) == NULL;
}

/* ASTRING-CHAR = ATOM-CHAR / resp-specials (']'). */
static bool is_astring_char(unsigned char c)
{
	return c == ']' || is_atom_char(c);
}

static bool is_atom(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!is_atom_char((unsigned char)*s))
			return false;
	}
	return true;
}

int imap_cmd_begin(struct buf *b, const char *tag, const char *name, const char **error_r)
{
	buf_reset(b);
	if (has_crlf(tag) || has_crlf(name)) {
		*error_r = err_crlf;
		return -1;
	}
	/* tag = 1*<any ASTRING-CHAR except "+"> */
	if (*tag == '\0') {
		*error_r = "empty IMAP tag";
		return -1;
	}
	for (const char *t = tag; *t != '\0'; t++) {
		if (*t == '+' || !is_astring_char((unsigned char)*t)) {
			*error_r = "invalid character in IMAP tag";
			return -1;
		}
	}
	/* Words of letters, digits, '.' and '-', single spaces between. */
	bool word_start = true;
	for (const char *c = name; *c != '\0'; c++) {
		unsigned char ch = (unsigned char)*c;
		if (ch == ' ' && !word_start) {
			word_start = true;
			continue;
		}
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-')) {
			*error_r = "invalid IMAP command name";
			return -1;
		}
		word_start = false;
	}
	if (word_start) { /* empty, or a trailing space */
		*error_r = "invalid IMAP command name";
		return -1;
	}
	size_t tlen = strlen(tag), nlen = strlen(name);
	if (b->max < tlen || b->max - tlen < nlen + 1) {
		*error_r = err_long;
		return -1;
	}
	if (append(b, tag, tlen, error_r) < 0 || append(b, " ", 1, error_r) < 0)
		return -1;
	return append(b, name, nlen, error_r);
}

int imap_cmd_atom(struct buf *b, const char *atom, const char **error_r)
{
	if (has_crlf(atom)) {
		*error_r = err_crlf;
		return -1;
	}
	/* A flag ("\Seen") is '\' followed by an atom. */
	const char *body = atom[0] == '\\' ? atom + 1 : atom;
	if (!is_atom(body)) {
		*error_r = *body == '\0' ? "empty IMAP atom" : "invalid character in IMAP atom";
		return -1;
	}
	return append_arg(b, atom, strlen(atom), error_r);
}

int imap_cmd_quoted(struct buf *b, const char *s, const char **error_r)
{
	size_t len = 2;
	for (const char *c = s; *c != '\0'; c++) {
		unsigned char ch = (unsigned char)*c;
		if (ch == '\r' || ch == '\n') {
			*error_r = err_crlf;
			return -1;
		}
		if (ch >= 0x80) {
			*error_r = "8-bit character in IMAP quoted string (needs a literal)";
			return -1;
		}
		len += ch == '\\' || ch == '"' ? 2 : 1;
	}
	if (b->max - b->len < len + 1) {
		*error_r = err_long;
		return -1;
	}
	if (append(b, " \"", 2, error_r) < 0)
		return -1;
	/* Copy runs between the characters that need a backslash. */
	while (*s != '\0') {
		size_t run = strcspn(s, "\\\"");
		if (append(b, s, run, error_r) < 0)
			return -1;
		s += run;
		if (*s == '\0')
			break;
		char esc[2] = {'\\', *s};
		if (append(b, esc, 2, error_r) < 0)
			return -1;
		s++;
	}
	return append(b, "\"", 1, error_r);
}

int imap_cmd_astring(struct buf *b, const char *s, const char **error_r)
{
	if (has_crlf(s)) {
		*error_r = err_crlf;
		return -1;
	}
	bool atom = *s != '\0';
	for (const char *c = s; *c != '\0' && atom; c++)
		atom = is_astring_char((unsigned char)*c);
	if (atom)
		return append_arg(b, s, strlen(s), error_r);
	return imap_cmd_quoted(b, s, error_r);
}

int imap_cmd_number(struct buf *b, uint64_t n, const char **error_r)
{
	char num[24];
	int len = snprintf(num, sizeof(num), "%" PRIu64, n);
	if (len < 0 || (size_t)len >= sizeof(num)) {
		*error_r = "IMAP number formatting failed";
		return -1;
	}
	return append_arg(b, num, (size_t)len, error_r);
}

/* seq-number = nz-number / "*"; returns the rest of s or NULL. */
static const char *seq_number(const char *s)
{
	if (*s == '*')
		return s + 1;
	if (*s < '1' || *s > '9')
		return NULL;
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

int imap_cmd_seqset(struct buf *b, const char *set, const char **error_r)
{
	if (has_crlf(set)) {
		*error_r = err_crlf;
		return -1;
	}
	/* sequence-set = (seq-number / seq-range) *("," sequence-set) */
	const char *s = set;
	for (;;) {
		s = seq_number(s);
		if (s != NULL && *s == ':')
			s = seq_number(s + 1);
		if (s == NULL || (*s != ',' && *s != '\0')) {
			*error_r = "invalid IMAP sequence set";
			return -1;
		}
		if (*s == '\0')
			break;
		s++;
	}
	return append_arg(b, set, strlen(set), error_r);
}

int imap_cmd_raw(struct buf *b, const char *s, const char **error_r)
{
	if (has_crlf(s)) {
		*error_r = err_crlf;
		return -1;
	}
	for (const char *c = s; *c != '\0'; c++) {
		if ((unsigned char)*c >= 0x80) {
			*error_r = "8-bit character in raw IMAP command text";
			return -1;
		}
	}
	if (*s == '\0') {
		*error_r = "empty raw IMAP command text";
		return -1;
	}
	return append_arg(b, s, strlen(s), error_r);
}

int imap_cmd_literal(struct buf *b, const char *s, size_t nonsync_max, const char **error_r)
{
	if (has_crlf(s)) {
		*error_r = err_crlf;
		return -1;
	}
	size_t len = strlen(s);
	char head[32];
	int n = snprintf(head, sizeof(head), "{%zu%s}\r\n", len, len <= nonsync_max ? "+" : "");
	if (n < 0 || (size_t)n >= sizeof(head) || (size_t)n > SIZE_MAX - len ||
	    b->max - b->len < (size_t)n + len + 1) {
		*error_r = err_long;
		return -1;
	}
	if (append_arg(b, head, (size_t)n, error_r) < 0)
		return -1;
	return append(b, s, len, error_r);
}

int imap_cmd_astring_lit(struct buf *b, const char *s, size_t nonsync_max, const char **error_r)
{
	if (has_crlf(s)) {
		*error_r = err_crlf;
		return -1;
	}
	for (const char *c = s; *c != '\0'; c++) {
		if ((unsigned char)*c >= 0x80)
			return imap_cmd_literal(b, s, nonsync_max, error_r);
	}
	return imap_cmd_astring(b, s, error_r);
}

int imap_cmd_flag_list(struct buf *b, const char *list, const char **error_r)
{
	if (has_crlf(list)) {
		*error_r = err_crlf;
		return -1;
	}
	size_t len = strlen(list);
	if (len < 2 || list[0] != '(' || list[len - 1] != ')') {
		*error_r = "IMAP flag list must be in parentheses";
		return -1;
	}
	/* flag-list = "(" [flag *(SP flag)] ")"; flag = "\" atom / atom */
	const char *p = list + 1, *end = list + len - 1;
	while (p < end) {
		if (*p == '\\')
			p++;
		const char *start = p;
		while (p < end && is_atom_char((unsigned char)*p))
			p++;
		if (p == start || (p < end && (*p != ' ' || p + 1 == end))) {
			*error_r = "invalid IMAP flag list";
			return -1;
		}
		if (p < end)
			p++;
	}
	return append_arg(b, list, len, error_r);
}

int imap_cmd_end(struct buf *b, const char **error_r)
{
	return append(b, "\r\n", 2, error_r);
}
