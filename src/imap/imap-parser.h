#ifndef MK_IMAP_PARSER_H
#define MK_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Incremental, sans-I/O parser for IMAP server responses (RFC 9051/3501 and
 * the extensions we use: literal8, ESEARCH, VANISHED, ENABLED, LIST-STATUS).
 *
 * Bytes go in through imap_parser_feed(); a whole response comes out as a
 * tree of struct imap_arg. No sockets inside. Input may arrive in pieces of
 * any size, down to one byte at a time.
 *
 * Literals ({N} and ~{N}) of at most limits.inline_literal_max bytes are
 * collected into the tree like quoted strings. A larger literal is handed to
 * the caller: feed() stops right after the literal's CRLF and returns
 * IMAP_PARSE_LITERAL; imap_parser_partial() then shows the response so far
 * (the last argument is the IMAP_ARG_LITERAL_STREAM placeholder with the
 * size), and the caller takes the next N raw bytes of input itself (for
 * example straight into the store), then calls imap_parser_literal_done()
 * and goes on feeding. This is how message bodies are streamed without being
 * held in memory.
 */

enum imap_arg_type {
	IMAP_ARG_ATOM,   /* atoms, numbers, flags like \Seen, BODY[...]<0> */
	IMAP_ARG_STRING, /* quoted string (unescaped) or inlined literal */
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,           /* (...) */
	IMAP_ARG_LITERAL_STREAM, /* a literal the caller consumed itself */
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM/STRING: data (NUL-terminated, may contain NUL for literals)
	 * and its length. NULL for other types. */
	const char *str;
	size_t len;
	/* LITERAL_STREAM: the literal's size; literal8 tells ~{N}. */
	uint64_t literal_size;
	bool literal8;
	/* LIST: first child, NULL for an empty list. */
	const struct imap_arg *list;
	/* Next sibling in the same list (or response), NULL at the end. */
	const struct imap_arg *next;
};

enum imap_resp_kind {
	IMAP_RESP_UNTAGGED,     /* "* ..." */
	IMAP_RESP_TAGGED,       /* "A12 ..." */
	IMAP_RESP_CONTINUATION, /* "+ ..." */
};

enum imap_resp_status {
	IMAP_STATUS_NONE, /* data response such as "* 3 EXISTS" or "* LIST ..." */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

struct imap_response {
	enum imap_resp_kind kind;
	const char *tag; /* TAGGED: the tag; otherwise "*" or "+" */
	enum imap_resp_status status;
	/* Status responses (OK/NO/BAD/BYE/PREAUTH, tagged or untagged):
	 * code is the response code's name in brackets ("UIDVALIDITY",
	 * "CAPABILITY", ...) or NULL; code_args its arguments (atoms, lists,
	 * ...), NULL if none; text the human-readable rest of the line ("" if
	 * none). Continuations: text is the line after "+ ". */
	const char *code;
	const struct imap_arg *code_args;
	const char *text;
	/* Data responses (status NONE, untagged): all arguments after "*",
	 * e.g. for "* 12 FETCH (UID 7)" the atoms "12", "FETCH" and the list. */
	const struct imap_arg *args;
};

struct imap_parser_limits {
	size_t max_line;           /* bytes of one response outside streamed literals */
	size_t inline_literal_max; /* larger literals are streamed to the caller */
	uint64_t max_literal;      /* larger literals are an error */
	unsigned max_depth;        /* list nesting */
	unsigned max_args;         /* arguments in one response, all levels */
};

/* Sensible limits for a client: 64 KiB lines, 64 KiB inline literals,
 * 1 GiB literals, depth 16, 100000 arguments. */
extern const struct imap_parser_limits imap_parser_default_limits;

enum imap_parse_result {
	IMAP_PARSE_ERROR = -1,
	IMAP_PARSE_MORE = 0,     /* all input consumed, response not complete */
	IMAP_PARSE_RESPONSE = 1, /* a whole response is ready */
	IMAP_PARSE_LITERAL = 2,  /* caller must consume a streamed literal now */
};

struct imap_parser;

/* Returns a new parser with a copy of limits, or NULL if out of memory. */
struct imap_parser *imap_parser_create(const struct imap_parser_limits *limits);
/* Frees the parser and sets *p to NULL; accepts NULL and *p == NULL. */
void imap_parser_free(struct imap_parser **p);

/*
 * Feed input. Consumes bytes up to and including the end of one response
 * (or a streamed literal's header) and sets *consumed_r to how many; the
 * caller keeps the rest for the next call.
 * Returns IMAP_PARSE_MORE (consumed everything), IMAP_PARSE_RESPONSE (get it
 * with imap_parser_response()), IMAP_PARSE_LITERAL (see above) or
 * IMAP_PARSE_ERROR with *error_r set to a static, human-readable reason
 * (the parser must then be reset or freed: the stream is out of sync).
 * After IMAP_PARSE_RESPONSE the next feed() starts a new response, which
 * invalidates the previous one.
 */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const unsigned char *data,
                                        size_t len, size_t *consumed_r, const char **error_r);

/* The complete response after IMAP_PARSE_RESPONSE. Valid until the next
 * feed() or reset(). */
const struct imap_response *imap_parser_response(const struct imap_parser *p);

/* After IMAP_PARSE_LITERAL: the response so far. Only args (for untagged
 * data responses) is filled in; the last argument in document order is the
 * IMAP_ARG_LITERAL_STREAM placeholder. Valid until the next feed(). */
const struct imap_response *imap_parser_partial(const struct imap_parser *p);
/* After IMAP_PARSE_LITERAL: the size of the literal the caller must consume. */
uint64_t imap_parser_literal_size(const struct imap_parser *p);
/* The caller has consumed the streamed literal's bytes; parsing goes on. */
void imap_parser_literal_done(struct imap_parser *p);

/* Forget any partial response and start afresh. */
void imap_parser_reset(struct imap_parser *p);

/* Helpers for reading responses. All accept NULL args. */
bool imap_arg_is_atom(const struct imap_arg *a, const char *atom); /* case-insensitive */
/* ATOM or STRING as C string; NULL otherwise. */
const char *imap_arg_string(const struct imap_arg *a);
/* Strict unsigned number (atom of digits, no sign, no overflow past max). */
bool imap_arg_number(const struct imap_arg *a, uint64_t max, uint64_t *num_r);
/* Number of elements of a list argument; 0 for non-lists. */
unsigned imap_arg_list_count(const struct imap_arg *a);

#endif
