#include "imap-parser.h"

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/*
 * How it works.
 *
 * The parser is a byte-driven state machine. Every byte of a response that
 * is not part of a streamed literal goes through exactly one state handler,
 * and each handler treats a run of bytes exactly as it would treat the same
 * bytes one at a time (check the byte, then count it against max_line, then
 * store it), so any split of the input gives the same results, errors
 * included.
 *
 * The tree is built with indices, not pointers: nodes live in a growable
 * array and string data in a growable arena, both of which may move when
 * they grow. Only when a response is complete (or a streamed literal stops
 * the parse) are the public pointers of struct imap_arg and struct
 * imap_response filled in (build_tree()). Both arrays keep their memory
 * between responses, so steady-state parsing does not allocate. Their size
 * is bounded by the limits: the arena by max_line plus one NUL per string,
 * the nodes by max_args.
 *
 * States and transitions (a response is "tag SP rest CRLF"):
 *
 *   START --'*'--> STAR_SP --SP--> ARGS (first token)
 *   START --'+'--> CONT_SP --SP--> TEXT --CR--> LF --LF--> DONE
 *   START --tag--> TAG --SP--> ARGS (first token must be a status word)
 *
 *   ARGS --atom char--> ATOM --end--> ARGS
 *        --'"'--> QUOTED <--> QUOTED_ESC, --'"'--> ARGS
 *        --'{'--> LIT_SIZE --'}'--> LIT_CR --> LIT_LF --> LIT_DATA --> ARGS
 *                                                   \--> LITERAL_WAIT (streamed)
 *                                                         --literal_done()--> ARGS
 *        --'~'--> TILDE --'{'--> LIT_SIZE (literal8), else ATOM
 *        --'(' / ')'--> ARGS (push / pop a list)
 *        --']' in a response code--> CODE_AFTER
 *        --CR--> LF --LF--> DONE
 *
 *   A first atom that is a status word (OK NO BAD BYE PREAUTH) switches to
 *   STATUS_SP --SP--> STATUS_BRACKET --'['--> CODE_NAME --SP--> ARGS (code
 *   arguments) --']'--> CODE_AFTER --> TEXT, or straight to TEXT.
 *
 *   DONE: the next feed() starts a new response. ERROR is sticky until reset.
 */

const struct imap_parser_limits imap_parser_default_limits = {
    .max_line = 64 * 1024,
    .inline_literal_max = 64 * 1024,
    .max_literal = (uint64_t)1 << 30,
    .max_depth = 16,
    .max_args = 100000,
};

enum parser_state {
	ST_START,
	ST_TAG,
	ST_STAR_SP,
	ST_CONT_SP,
	ST_ARGS,
	ST_ATOM,
	ST_TILDE,
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_LIT_SIZE,
	ST_LIT_CR,
	ST_LIT_LF,
	ST_LIT_DATA,
	ST_LITERAL_WAIT,
	ST_STATUS_SP,
	ST_STATUS_BRACKET,
	ST_CODE_NAME,
	ST_CODE_AFTER,
	ST_TEXT,
	ST_LF,
	ST_DONE,
	ST_ERROR,
};

#define NO_NODE UINT_MAX
#define NO_OFF SIZE_MAX

struct node {
	struct imap_arg arg; /* pointers filled in by build_tree() */
	size_t str_off;      /* into the arena, or NO_OFF */
	unsigned child;      /* first child of a list, or NO_NODE */
	unsigned next;       /* next sibling, or NO_NODE */
};

/* An open list; level 0 is the response itself (or its response code). */
struct level {
	unsigned list; /* NO_NODE for level 0 */
	unsigned first, last;
};

struct imap_parser {
	struct imap_parser_limits limits;
	enum parser_state state;
	const char *error;

	char *arena;
	size_t arena_len, arena_cap;
	struct node *nodes;
	unsigned nodes_len, nodes_cap;
	struct level *levels;
	unsigned depth, levels_cap;

	/* The response being parsed. */
	size_t line_len; /* bytes counted against max_line */
	enum imap_resp_kind kind;
	enum imap_resp_status status;
	size_t tag_off, code_off, text_off;
	bool first_token; /* the next token is the response name */
	bool in_code;     /* inside "[...]" of a status response */

	/* The token being parsed. */
	unsigned cur;    /* its node */
	size_t brackets; /* '[' nesting inside an atom */
	uint64_t lit_size;
	uint64_t lit_left;
	bool lit8;
	bool lit_digits;

	struct imap_response resp;
};

static int fail(struct imap_parser *p, const char *error)
{
	p->state = ST_ERROR;
	p->error = error;
	return -1;
}

/* Counts n more bytes of the response against max_line. */
static int count(struct imap_parser *p, size_t n)
{
	if (n > p->limits.max_line - p->line_len)
		return fail(p, "IMAP response line too long");
	p->line_len += n;
	return 0;
}

/* How many more bytes the line may have. */
static size_t line_avail(const struct imap_parser *p)
{
	return p->limits.max_line - p->line_len;
}

static int arena_reserve(struct imap_parser *p, size_t n)
{
	if (n <= p->arena_cap - p->arena_len)
		return 0;
	if (n > SIZE_MAX / 2 - p->arena_len)
		return fail(p, "out of memory");
	size_t need = p->arena_len + n;
	size_t cap = p->arena_cap < 256 ? 256 : p->arena_cap;
	while (cap < need)
		cap *= 2;
	char *a = realloc(p->arena, cap);
	if (a == NULL)
		return fail(p, "out of memory");
	p->arena = a;
	p->arena_cap = cap;
	return 0;
}

/* Appends n bytes, keeping room for a terminating NUL. */
static int arena_append(struct imap_parser *p, const void *data, size_t n)
{
	if (arena_reserve(p, n + 1) < 0)
		return -1;
	memcpy(p->arena + p->arena_len, data, n);
	p->arena_len += n;
	return 0;
}

/* Terminates the string that started at off; returns its length. */
static int arena_terminate(struct imap_parser *p, size_t off, size_t *len_r)
{
	if (arena_reserve(p, 1) < 0)
		return -1;
	p->arena[p->arena_len++] = '\0';
	*len_r = p->arena_len - 1 - off;
	return 0;
}

static int level_push(struct imap_parser *p, unsigned list)
{
	if (p->depth >= p->limits.max_depth)
		return fail(p, "IMAP response nested too deeply");
	if (p->depth + 1 >= p->levels_cap) {
		unsigned cap = p->levels_cap * 2;
		struct level *l = realloc(p->levels, cap * sizeof(*l));
		if (l == NULL)
			return fail(p, "out of memory");
		p->levels = l;
		p->levels_cap = cap;
	}
	p->depth++;
	p->levels[p->depth] = (struct level){list, NO_NODE, NO_NODE};
	return 0;
}

/* Adds a node at the end of the innermost open list; sets p->cur. */
static int node_add(struct imap_parser *p, enum imap_arg_type type, size_t str_off)
{
	if (p->nodes_len >= p->limits.max_args)
		return fail(p, "too many arguments in IMAP response");
	if (p->nodes_len == p->nodes_cap) {
		unsigned cap = p->nodes_cap < 32 ? 32 : p->nodes_cap * 2;
		if (cap < p->nodes_cap || cap > p->limits.max_args)
			cap = p->limits.max_args;
		struct node *n = realloc(p->nodes, (size_t)cap * sizeof(*n));
		if (n == NULL)
			return fail(p, "out of memory");
		p->nodes = n;
		p->nodes_cap = cap;
	}
	unsigned idx = p->nodes_len++;
	struct node *n = &p->nodes[idx];
	memset(n, 0, sizeof(*n));
	n->arg.type = type;
	n->str_off = str_off;
	n->child = n->next = NO_NODE;

	struct level *l = &p->levels[p->depth];
	if (l->last == NO_NODE) {
		l->first = idx;
		if (l->list != NO_NODE)
			p->nodes[l->list].child = idx;
	} else {
		p->nodes[l->last].next = idx;
	}
	l->last = idx;
	p->cur = idx;
	return 0;
}

void imap_parser_reset(struct imap_parser *p)
{
	p->state = ST_START;
	p->error = NULL;
	p->arena_len = 0;
	p->nodes_len = 0;
	p->depth = 0;
	p->levels[0] = (struct level){NO_NODE, NO_NODE, NO_NODE};
	p->line_len = 0;
	p->kind = IMAP_RESP_UNTAGGED;
	p->status = IMAP_STATUS_NONE;
	p->tag_off = p->code_off = p->text_off = NO_OFF;
	p->first_token = false;
	p->in_code = false;
	memset(&p->resp, 0, sizeof(p->resp));
}

struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->limits = *limits;
	p->levels_cap = 4;
	p->levels = calloc(p->levels_cap, sizeof(*p->levels));
	if (p->levels == NULL) {
		free(p);
		return NULL;
	}
	imap_parser_reset(p);
	return p;
}

void imap_parser_free(struct imap_parser **pp)
{
	if (pp == NULL || *pp == NULL)
		return;
	struct imap_parser *p = *pp;
	free(p->arena);
	free(p->nodes);
	free(p->levels);
	free(p);
	*pp = NULL;
}

static const char *arena_str(const struct imap_parser *p, size_t off)
{
	return off == NO_OFF ? NULL : p->arena + off;
}

static const struct imap_arg *node_arg(const struct imap_parser *p, unsigned idx)
{
	return idx == NO_NODE ? NULL : &p->nodes[idx].arg;
}

/* Turns indices and offsets into the public pointers. */
static void build_tree(struct imap_parser *p, bool complete)
{
	for (unsigned i = 0; i < p->nodes_len; i++) {
		struct node *n = &p->nodes[i];
		n->arg.str = arena_str(p, n->str_off);
		n->arg.list = node_arg(p, n->child);
		n->arg.next = node_arg(p, n->next);
	}
	struct imap_response *r = &p->resp;
	memset(r, 0, sizeof(*r));
	r->kind = p->kind;
	r->tag = p->kind == IMAP_RESP_TAGGED     ? arena_str(p, p->tag_off)
	         : p->kind == IMAP_RESP_UNTAGGED ? "*"
	                                         : "+";
	r->status = p->status;
	const struct imap_arg *top = node_arg(p, p->levels[0].first);
	if (p->status == IMAP_STATUS_NONE) {
		r->args = top;
	} else {
		r->code = arena_str(p, p->code_off);
		r->code_args = top;
	}
	if (complete)
		r->text = p->text_off == NO_OFF ? "" : arena_str(p, p->text_off);
}

static bool ascii_eq_nocase(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'a' && x <= 'z')
			x -= 'a' - 'A';
		if (y >= 'a' && y <= 'z')
			y -= 'a' - 'A';
		if (x != y)
			return false;
	}
	return true;
}

static bool is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Bytes that may continue an atom (outside '[...]'). 8-bit is accepted for
 * UTF-8 mailbox names; ']' ends an atom only inside a response code. */
static bool is_atom_char(unsigned char c, bool in_code)
{
	if (c <= ' ' || c == 0x7f || c == '(' || c == ')' || c == '"')
		return false;
	return c != ']' || !in_code;
}

static bool is_tag_char(unsigned char c)
{
	if (c <= ' ' || c >= 0x7f)
		return false;
	return strchr("(){\"%*\\", c) == NULL;
}

static enum imap_resp_status status_word(const char *s, size_t len)
{
	/* Indexed by enum imap_resp_status, whose order the header fixes. */
	_Static_assert(IMAP_STATUS_OK == 1 && IMAP_STATUS_PREAUTH == 5, "status order");
	static const char *const words[] = {NULL, "OK", "NO", "BAD", "BYE", "PREAUTH"};
	for (int i = IMAP_STATUS_OK; i <= IMAP_STATUS_PREAUTH; i++) {
		if (ascii_eq_nocase(s, len, words[i]))
			return (enum imap_resp_status)i;
	}
	return IMAP_STATUS_NONE;
}

/* The current atom has ended (its terminator is not consumed). */
static int atom_end(struct imap_parser *p)
{
	struct node *n = &p->nodes[p->cur];
	if (arena_terminate(p, n->str_off, &n->arg.len) < 0)
		return -1;
	const char *s = p->arena + n->str_off;
	p->state = ST_ARGS;
	if (p->first_token) {
		p->first_token = false;
		enum imap_resp_status st = status_word(s, n->arg.len);
		if (st != IMAP_STATUS_NONE) {
			/* A status response: the word is not an argument. */
			p->status = st;
			p->arena_len = n->str_off;
			p->nodes_len = 0;
			p->levels[0] = (struct level){NO_NODE, NO_NODE, NO_NODE};
			p->state = ST_STATUS_SP;
			return 0;
		}
		if (p->kind == IMAP_RESP_TAGGED)
			return fail(p, "tagged IMAP response without status");
	}
	if (ascii_eq_nocase(s, n->arg.len, "NIL")) {
		n->arg.type = IMAP_ARG_NIL;
		n->arg.len = 0;
		n->str_off = NO_OFF;
		p->arena_len -= 4;
	}
	return 0;
}

/* The state handlers below get the unconsumed input s[0..n), n > 0, and
 * return how many bytes they consumed or -1 on error. A handler that
 * consumes nothing changes the state. */

static long on_start(struct imap_parser *p, unsigned char c)
{
	if (c == '*') {
		p->kind = IMAP_RESP_UNTAGGED;
		p->state = ST_STAR_SP;
	} else if (c == '+') {
		p->kind = IMAP_RESP_CONTINUATION;
		p->state = ST_CONT_SP;
	} else if (is_tag_char(c)) {
		p->kind = IMAP_RESP_TAGGED;
		p->tag_off = p->arena_len;
		p->state = ST_TAG;
		return 0;
	} else {
		return fail(p, "invalid tag in IMAP response");
	}
	return count(p, 1) < 0 ? -1 : 1;
}

static long on_tag(struct imap_parser *p, const unsigned char *s, size_t n)
{
	size_t avail = line_avail(p), k = 0;
	while (k < n && is_tag_char(s[k])) {
		if (k == avail)
			return count(p, k + 1);
		k++;
	}
	if (count(p, k) < 0 || arena_append(p, s, k) < 0)
		return -1;
	if (k == n)
		return (long)k;
	if (s[k] == '\r')
		return fail(p, "tagged IMAP response without status");
	if (s[k] != ' ')
		return fail(p, "invalid tag in IMAP response");
	size_t len;
	if (arena_terminate(p, p->tag_off, &len) < 0 || count(p, 1) < 0)
		return -1;
	p->first_token = true;
	p->state = ST_ARGS;
	return (long)k + 1;
}

static long on_args(struct imap_parser *p, unsigned char c)
{
	if (c == ' ')
		return count(p, 1) < 0 ? -1 : 1;
	if (c == '\0')
		return fail(p, "NUL byte in IMAP response");
	if (c == '\n')
		return fail(p, "bare LF in IMAP response");
	if (is_ctl(c) && c != '\r')
		return fail(p, "control character in IMAP response");
	/* ']' is an ASTRING-CHAR ("* LIST () "/" ]x" is valid) but ends a
	 * response code. */
	bool special = c == '\r' || strchr("()\"{~", c) != NULL || (c == ']' && p->in_code);
	if (p->first_token && special) {
		return fail(p, p->kind == IMAP_RESP_TAGGED ? "tagged IMAP response without status"
		                                           : "missing response name after '*'");
	}
	if (!special) {
		/* An atom (or "BODY[...]" and the like); on_atom() takes c. */
		if (node_add(p, IMAP_ARG_ATOM, p->arena_len) < 0)
			return -1;
		p->brackets = 0;
		p->state = ST_ATOM;
		return 0;
	}
	if (count(p, 1) < 0)
		return -1;
	switch (c) {
	case '\r':
		if (p->in_code)
			return fail(p, "unterminated response code");
		if (p->depth > 0)
			return fail(p, "unterminated list in IMAP response");
		p->state = ST_LF;
		break;
	case '(':
		if (node_add(p, IMAP_ARG_LIST, NO_OFF) < 0 || level_push(p, p->cur) < 0)
			return -1;
		break;
	case ')':
		if (p->depth == 0)
			return fail(p, "unexpected ')'");
		p->depth--;
		break;
	case '"':
		if (node_add(p, IMAP_ARG_STRING, p->arena_len) < 0)
			return -1;
		p->state = ST_QUOTED;
		break;
	case '{':
		if (node_add(p, IMAP_ARG_STRING, p->arena_len) < 0)
			return -1;
		p->lit8 = false;
		p->lit_size = 0;
		p->lit_digits = false;
		p->state = ST_LIT_SIZE;
		break;
	case '~':
		p->state = ST_TILDE;
		break;
	default: /* ']' in a response code */
		if (p->depth > 0)
			return fail(p, "unterminated list in response code");
		p->in_code = false;
		p->state = ST_CODE_AFTER;
		break;
	}
	return 1;
}

static long on_tilde(struct imap_parser *p, unsigned char c)
{
	if (c == '{') {
		if (count(p, 1) < 0 || node_add(p, IMAP_ARG_STRING, p->arena_len) < 0)
			return -1;
		p->lit8 = true;
		p->lit_size = 0;
		p->lit_digits = false;
		p->state = ST_LIT_SIZE;
		return 1;
	}
	/* Just an atom that starts with '~' (already counted). */
	if (node_add(p, IMAP_ARG_ATOM, p->arena_len) < 0 || arena_append(p, "~", 1) < 0)
		return -1;
	p->brackets = 0;
	p->state = ST_ATOM;
	return 0;
}

static long on_atom(struct imap_parser *p, const unsigned char *s, size_t n)
{
	size_t avail = line_avail(p), k = 0;
	bool end = false;
	for (; k < n; k++) {
		unsigned char c = s[k];
		if (p->brackets > 0) {
			/* Inside "BODY[...]": anything but control characters. */
			if (c == '\r' || c == '\n')
				return fail(p, "unterminated '[' in IMAP atom");
			if (is_ctl(c))
				return fail(p, c == '\0' ? "NUL byte in IMAP response"
				                         : "control character in IMAP response");
			if (c == ']')
				p->brackets--;
			else if (c == '[')
				p->brackets++;
		} else if (c == '[') {
			p->brackets++;
		} else if (!is_atom_char(c, p->in_code)) {
			end = true;
			break;
		}
		if (k == avail)
			return count(p, k + 1);
	}
	if (count(p, k) < 0 || arena_append(p, s, k) < 0)
		return -1;
	if (end && atom_end(p) < 0)
		return -1;
	return (long)k;
}

static long on_quoted(struct imap_parser *p, const unsigned char *s, size_t n)
{
	size_t avail = line_avail(p), k = 0;
	for (; k < n; k++) {
		unsigned char c = s[k];
		if (c == '"' || c == '\\')
			break;
		if (c == '\r' || c == '\n' || c == '\0')
			return fail(p, "CR, LF or NUL in IMAP quoted string");
		if (k == avail)
			return count(p, k + 1);
	}
	if (count(p, k) < 0 || arena_append(p, s, k) < 0)
		return -1;
	if (k == n)
		return (long)k;
	if (count(p, 1) < 0)
		return -1;
	if (s[k] == '\\') {
		p->state = ST_QUOTED_ESC;
	} else {
		struct node *nd = &p->nodes[p->cur];
		if (arena_terminate(p, nd->str_off, &nd->arg.len) < 0)
			return -1;
		p->state = ST_ARGS;
	}
	return (long)k + 1;
}

static long on_quoted_esc(struct imap_parser *p, unsigned char c)
{
	if (c == '\r' || c == '\n' || c == '\0')
		return fail(p, "CR, LF or NUL in IMAP quoted string");
	if (count(p, 1) < 0)
		return -1;
	/* Only \\ and \" are defined; keep other pairs as sent. */
	if (c != '\\' && c != '"' && arena_append(p, "\\", 1) < 0)
		return -1;
	if (arena_append(p, &c, 1) < 0)
		return -1;
	p->state = ST_QUOTED;
	return 1;
}

static long on_lit_size(struct imap_parser *p, unsigned char c)
{
	if (c >= '0' && c <= '9') {
		unsigned d = c - '0';
		if (p->lit_size > (UINT64_MAX - d) / 10)
			return fail(p, "IMAP literal size overflows");
		p->lit_size = p->lit_size * 10 + d;
		p->lit_digits = true;
	} else if (c == '}' && p->lit_digits) {
		if (p->lit_size > p->limits.max_literal)
			return fail(p, "IMAP literal too large");
		p->state = ST_LIT_CR;
	} else {
		return fail(p, "invalid IMAP literal size");
	}
	return count(p, 1) < 0 ? -1 : 1;
}

static long on_lit_crlf(struct imap_parser *p, unsigned char c)
{
	if (c != (p->state == ST_LIT_CR ? '\r' : '\n'))
		return fail(p, "expected CRLF after IMAP literal size");
	if (count(p, 1) < 0)
		return -1;
	if (p->state == ST_LIT_CR) {
		p->state = ST_LIT_LF;
		return 1;
	}
	struct node *nd = &p->nodes[p->cur];
	nd->arg.literal8 = p->lit8;
	if (p->lit_size <= p->limits.inline_literal_max && p->lit_size <= line_avail(p)) {
		p->lit_left = p->lit_size;
		p->state = ST_LIT_DATA;
		if (p->lit_left == 0) {
			if (arena_terminate(p, nd->str_off, &nd->arg.len) < 0)
				return -1;
			p->state = ST_ARGS;
		}
		return 1;
	}
	/* Too big to hold (or to fit the rest of the line): the caller
	 * streams it. */
	nd->arg.type = IMAP_ARG_LITERAL_STREAM;
	nd->arg.literal_size = p->lit_size;
	nd->str_off = NO_OFF;
	p->state = ST_LITERAL_WAIT;
	build_tree(p, false);
	return 1;
}

static long on_lit_data(struct imap_parser *p, const unsigned char *s, size_t n)
{
	size_t k = p->lit_left < n ? (size_t)p->lit_left : n;
	if (count(p, k) < 0 || arena_append(p, s, k) < 0)
		return -1;
	p->lit_left -= k;
	if (p->lit_left == 0) {
		struct node *nd = &p->nodes[p->cur];
		if (arena_terminate(p, nd->str_off, &nd->arg.len) < 0)
			return -1;
		p->state = ST_ARGS;
	}
	return (long)k;
}

static long on_text(struct imap_parser *p, const unsigned char *s, size_t n)
{
	if (p->text_off == NO_OFF)
		p->text_off = p->arena_len;
	size_t avail = line_avail(p), k = 0;
	for (; k < n; k++) {
		unsigned char c = s[k];
		if (c == '\r')
			break;
		if (c == '\n')
			return fail(p, "bare LF in IMAP response");
		if (c == '\0')
			return fail(p, "NUL byte in IMAP response");
		if (k == avail)
			return count(p, k + 1);
	}
	if (count(p, k) < 0 || arena_append(p, s, k) < 0)
		return -1;
	if (k == n)
		return (long)k;
	size_t len;
	if (count(p, 1) < 0 || arena_terminate(p, p->text_off, &len) < 0)
		return -1;
	p->state = ST_LF;
	return (long)k + 1;
}

/* Single-byte states around status responses and line ends. */
static long on_small(struct imap_parser *p, unsigned char c)
{
	switch (p->state) {
	case ST_STAR_SP:
		if (c != ' ')
			return fail(p, "expected SP after '*' in IMAP response");
		p->first_token = true;
		p->state = ST_ARGS;
		break;
	case ST_CONT_SP:
	case ST_STATUS_SP:
	case ST_CODE_AFTER:
		if (c == '\r') {
			p->state = ST_LF;
		} else if (c == ' ') {
			p->state = p->state == ST_STATUS_SP ? ST_STATUS_BRACKET : ST_TEXT;
		} else if (p->state == ST_STATUS_SP) {
			return fail(p, "expected SP after IMAP response status");
		} else {
			/* "+text" or "[CODE]text": lenient, the rest is text. */
			p->state = ST_TEXT;
			return 0;
		}
		break;
	case ST_STATUS_BRACKET:
		if (c != '[') {
			p->state = ST_TEXT;
			return 0;
		}
		p->code_off = p->arena_len;
		p->in_code = true;
		p->state = ST_CODE_NAME;
		break;
	case ST_CODE_NAME:
		if (c == ' ' || c == ']') {
			size_t len;
			if (arena_terminate(p, p->code_off, &len) < 0)
				return -1;
			if (len == 0)
				return fail(p, "empty IMAP response code");
			if (c == ']') {
				p->in_code = false;
				p->state = ST_CODE_AFTER;
			} else {
				p->state = ST_ARGS;
			}
		} else if (c == '\r' || c == '\n') {
			return fail(p, "unterminated response code");
		} else if (!is_atom_char(c, true) || c == '[') {
			return fail(p, "invalid IMAP response code");
		} else if (arena_append(p, &c, 1) < 0) {
			return -1;
		}
		break;
	case ST_LF:
		if (c != '\n')
			return fail(p, "CR without LF in IMAP response");
		if (count(p, 1) < 0)
			return -1;
		build_tree(p, true);
		p->state = ST_DONE;
		return 1;
	default:
		assert(!"unexpected parser state");
		return fail(p, "internal IMAP parser error");
	}
	return count(p, 1) < 0 ? -1 : 1;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const unsigned char *data,
                                        size_t len, size_t *consumed_r, const char **error_r)
{
	if (p->state == ST_LITERAL_WAIT)
		fail(p, "IMAP parser fed before the streamed literal was consumed");
	if (p->state == ST_ERROR) {
		*error_r = p->error;
		return IMAP_PARSE_ERROR;
	}
	if (p->state == ST_DONE)
		imap_parser_reset(p);

	size_t i = 0;
	while (i < len) {
		const unsigned char *s = data + i;
		/* Handlers return a long; never hand them more than fits. */
		size_t n = len - i < (size_t)LONG_MAX ? len - i : (size_t)LONG_MAX;
		long r;
		switch (p->state) {
		case ST_START:
			r = on_start(p, *s);
			break;
		case ST_TAG:
			r = on_tag(p, s, n);
			break;
		case ST_ARGS:
			r = on_args(p, *s);
			break;
		case ST_ATOM:
			r = on_atom(p, s, n);
			break;
		case ST_TILDE:
			r = on_tilde(p, *s);
			break;
		case ST_QUOTED:
			r = on_quoted(p, s, n);
			break;
		case ST_QUOTED_ESC:
			r = on_quoted_esc(p, *s);
			break;
		case ST_LIT_SIZE:
			r = on_lit_size(p, *s);
			break;
		case ST_LIT_CR:
		case ST_LIT_LF:
			r = on_lit_crlf(p, *s);
			break;
		case ST_LIT_DATA:
			r = on_lit_data(p, s, n);
			break;
		case ST_TEXT:
			r = on_text(p, s, n);
			break;
		default:
			r = on_small(p, *s);
			break;
		}
		if (r < 0) {
			*error_r = p->error;
			return IMAP_PARSE_ERROR;
		}
		i += (size_t)r;
		if (p->state == ST_DONE) {
			*consumed_r = i;
			return IMAP_PARSE_RESPONSE;
		}
		if (p->state == ST_LITERAL_WAIT) {
			*consumed_r = i;
			return IMAP_PARSE_LITERAL;
		}
	}
	*consumed_r = len;
	return IMAP_PARSE_MORE;
}

const struct imap_response *imap_parser_response(const struct imap_parser *p)
{
	return p->state == ST_DONE ? &p->resp : NULL;
}

const struct imap_response *imap_parser_partial(const struct imap_parser *p)
{
	return p->state == ST_LITERAL_WAIT ? &p->resp : NULL;
}

uint64_t imap_parser_literal_size(const struct imap_parser *p)
{
	return p->state == ST_LITERAL_WAIT ? p->lit_size : 0;
}

void imap_parser_literal_done(struct imap_parser *p)
{
	assert(p->state == ST_LITERAL_WAIT);
	if (p->state == ST_LITERAL_WAIT)
		p->state = ST_ARGS;
}

bool imap_arg_is_atom(const struct imap_arg *a, const char *atom)
{
	return a != NULL && a->type == IMAP_ARG_ATOM && ascii_eq_nocase(a->str, a->len, atom);
}

const char *imap_arg_string(const struct imap_arg *a)
{
	if (a == NULL || (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_STRING))
		return NULL;
	return a->str;
}

bool imap_arg_number(const struct imap_arg *a, uint64_t max, uint64_t *num_r)
{
	if (a == NULL || a->type != IMAP_ARG_ATOM || a->len == 0)
		return false;
	uint64_t n = 0;
	for (size_t i = 0; i < a->len; i++) {
		unsigned char c = (unsigned char)a->str[i];
		if (c < '0' || c > '9')
			return false;
		unsigned d = c - '0';
		if (d > max || n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*num_r = n;
	return true;
}

unsigned imap_arg_list_count(const struct imap_arg *a)
{
	if (a == NULL || a->type != IMAP_ARG_LIST)
		return 0;
	unsigned n = 0;
	for (const struct imap_arg *c = a->list; c != NULL; c = c->next)
		n++;
	return n;
}
