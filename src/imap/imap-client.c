/*
 * IMAP client session: greeting, STARTTLS, capabilities, authentication,
 * COMPRESS, and the command/response loop with streamed literals.
 */
#include "imap-client.h"

#include <ctype.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap-client-private.h"
#include "imap-cmd.h"
#include "../net/conn.h"

#define IMAP_CLIENT_INBUF (256 * 1024)
#define IMAP_CLIENT_MAX_CMD (64 * 1024)
#define IMAP_CLIENT_MAX_CAPS (16 * 1024)
#define IMAP_CLIENT_DONE_TAGS 16
/* Most commands sent and not yet completed (pipelining depth). */
#define IMAP_CLIENT_MAX_PENDING (1u << 20)
/* How long an imap:// server may take to greet before we look whether the
 * port speaks TLS instead (a TLS server waits for us and says nothing). */
#define IMAP_CLIENT_GREETING_TIMEOUT_MS 10000

enum imap_client_state {
	IMAP_CLIENT_NOT_AUTHENTICATED,
	IMAP_CLIENT_AUTHENTICATED,
	IMAP_CLIENT_CLOSED,
};

struct imap_client {
	struct imap_client_settings set;
	char *host, *port, *ca_file;
	enum imap_client_state state;
	struct conn *conn;
	struct imap_parser *parser;
	unsigned char *in;
	size_t in_pos, in_len;
	struct buf cmd;
	struct buf caps;          /* " CAP1 CAP2 ... " upper-case */
	unsigned caps_generation; /* bumped whenever caps are replaced */
	const char *auth_mechanism;
	unsigned tag_counter;
	char tag[16];
	bool cmd_unsent; /* a command is being built: its tag is not used yet */
	/* Tag numbers of the commands sent and not yet completed: a tagged
	 * response for any other tag is a protocol error (a hostile server
	 * could otherwise complete a command before it is sent). */
	struct buf open_tags; /* byte i: is command open_base + i still open? */
	unsigned open_base;
	struct imap_literal_sink sink;
	bool have_sink;
	/* Tagged OKs that arrived while waiting for another tag: responses to
	 * pipelined commands may complete out of order. */
	char done_tags[IMAP_CLIENT_DONE_TAGS][16];
	unsigned done_next;
	/* Response code of the last command refused with NO/BAD, or "". */
	char last_code[32];
	char error[512];
	/* During a SASL exchange: what to do with a continuation request
	 * (NULL: it is a protocol error). */
	int (*cont_fn)(struct imap_client *c, const struct imap_response *resp,
	               const char **error_r);
	void *cont_ctx;
};

static void client_enter_state(struct imap_client *c, enum imap_client_state state)
{
	c->state = state;
}

static int client_fail(struct imap_client *c, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a session-breaking error; the session is CLOSED afterwards. */
static int client_fail(struct imap_client *c, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	client_enter_state(c, IMAP_CLIENT_CLOSED);
	*error_r = c->error;
	return -1;
}

/* Copy printable ASCII of untrusted server text for an error message. */
static void sanitize(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src != NULL && *src != '\0' && i + 1 < size; src++)
		dst[i++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
	dst[i] = '\0';
}

static void caps_set_from_args(struct imap_client *c, const struct imap_arg *a)
{
	buf_reset(&c->caps);
	buf_append_str(&c->caps, " ");
	c->caps_generation++;
	for (; a != NULL; a = a->next) {
		const char *s = imap_arg_string(a);
		if (s == NULL || a->type != IMAP_ARG_ATOM)
			continue;
		size_t start = c->caps.len;
		if (buf_append_str(&c->caps, s) < 0 || buf_append_str(&c->caps, " ") < 0)
			break;
		for (size_t i = start; i < c->caps.len; i++)
			c->caps.data[i] = (unsigned char)toupper(c->caps.data[i]);
	}
}

bool imap_client_has_cap(const struct imap_client *c, const char *cap)
{
	char needle[128];
	int n = snprintf(needle, sizeof(needle), " %s ", cap);
	if (n < 0 || (size_t)n >= sizeof(needle))
		return false;
	for (char *p = needle; *p != '\0'; p++)
		*p = (char)toupper((unsigned char)*p);
	return strstr(buf_str(&c->caps), needle) != NULL;
}

bool imap_client_has_ext(const struct imap_client *c, const char *cap)
{
	if (imap_client_has_cap(c, cap))
		return true;
	/* RFC 9051 appendix E: folded into IMAP4rev2. A server that offers
	 * IMAP4rev1 too speaks rev1 until ENABLEd, which we do not do. */
	static const char *const rev2[] = {"UIDPLUS", "MOVE", "UNSELECT", "LITERAL-", "BINARY"};
	if (!imap_client_has_cap(c, "IMAP4rev2") || imap_client_has_cap(c, "IMAP4rev1"))
		return false;
	for (size_t i = 0; i < sizeof(rev2) / sizeof(rev2[0]); i++) {
		if (strcasecmp(cap, rev2[i]) == 0)
			return true;
	}
	return false;
}

bool imap_client_is_compressed(const struct imap_client *c)
{
	return conn_is_compressed(c->conn);
}

const char *imap_client_auth_mechanism(const struct imap_client *c)
{
	return c->auth_mechanism;
}

bool imap_client_is_open(const struct imap_client *c)
{
	return c->state != IMAP_CLIENT_CLOSED;
}

void imap_client_set_literal_sink(struct imap_client *c, const struct imap_literal_sink *sink)
{
	c->have_sink = sink != NULL;
	if (sink != NULL)
		c->sink = *sink;
}

/* Fill the input buffer with more bytes from the server. */
static int client_fill(struct imap_client *c, const char **error_r)
{
	if (c->in_pos == c->in_len)
		c->in_pos = c->in_len = 0;
	if (c->in_len == IMAP_CLIENT_INBUF) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}
	const char *err = NULL;
	ssize_t n = conn_read(c->conn, c->in + c->in_len, IMAP_CLIENT_INBUF - c->in_len, &err);
	if (n == 0)
		return client_fail(c, error_r, "%s: server closed the connection", c->host);
	if (n < 0)
		return client_fail(c, error_r, "%s", err);
	c->in_len += (size_t)n;
	return 0;
}

static int sink_discard_data(void *ctx, const void *data, size_t len, const char **error_r)
{
	(void)ctx, (void)data, (void)len, (void)error_r;
	return 0;
}

/* Pass a streamed literal's bytes to the sink (or discard them). */
static int client_stream_literal(struct imap_client *c, const char **error_r)
{
	uint64_t remaining = imap_parser_literal_size(c->parser);
	const char *err = "literal sink failed";
	int (*data_fn)(void *, const void *, size_t, const char **) = sink_discard_data;
	void *ctx = NULL;
	if (c->have_sink) {
		if (c->sink.begin(c->sink.ctx, imap_parser_partial(c->parser), remaining, &err) < 0)
			return client_fail(c, error_r, "%s", err);
		data_fn = c->sink.data;
		ctx = c->sink.ctx;
	}
	while (remaining > 0) {
		if (c->in_pos == c->in_len && client_fill(c, error_r) < 0)
			return -1;
		size_t avail = c->in_len - c->in_pos;
		size_t n = remaining < avail ? (size_t)remaining : avail;
		if (data_fn(ctx, c->in + c->in_pos, n, &err) < 0)
			return client_fail(c, error_r, "%s", err);
		c->in_pos += n;
		remaining -= n;
	}
	if (c->have_sink && c->sink.end(c->sink.ctx, &err) < 0)
		return client_fail(c, error_r, "%s", err);
	imap_parser_literal_done(c->parser);
	return 0;
}

/* Read the next complete response. */
static int client_read(struct imap_client *c, const struct imap_response **resp_r,
                       const char **error_r)
{
	if (c->state == IMAP_CLIENT_CLOSED) {
		*error_r = c->error[0] != '\0' ? c->error : "IMAP session is closed";
		return -1;
	}
	for (;;) {
		if (c->in_pos < c->in_len) {
			size_t consumed = 0;
			const char *err = NULL;
			enum imap_parse_result r = imap_parser_feed(
			    c->parser, c->in + c->in_pos, c->in_len - c->in_pos, &consumed, &err);
			c->in_pos += consumed;
			if (r == IMAP_PARSE_RESPONSE) {
				*resp_r = imap_parser_response(c->parser);
				return 0;
			}
			if (r == IMAP_PARSE_ERROR)
				return client_fail(c, error_r, "%s: bad response from server: %s",
				                   c->host, err);
			if (r == IMAP_PARSE_LITERAL) {
				if (client_stream_literal(c, error_r) < 0)
					return -1;
				continue;
			}
		}
		if (client_fill(c, error_r) < 0)
			return -1;
	}
}

/* Untagged responses every command may see. Returns 1 if handled. */
static int client_common_untagged(struct imap_client *c, const struct imap_response *resp,
                                  const char **error_r)
{
	char text[200];
	if (resp->status == IMAP_STATUS_BYE) {
		sanitize(text, sizeof(text), resp->text);
		return client_fail(c, error_r, "%s: server closed the session: %s", c->host, text);
	}
	if (resp->status == IMAP_STATUS_NONE && imap_arg_is_atom(resp->args, "CAPABILITY")) {
		caps_set_from_args(c, resp->args->next);
		return 1;
	}
	if (resp->status != IMAP_STATUS_NONE && resp->code != NULL &&
	    strcasecmp(resp->code, "CAPABILITY") == 0) {
		caps_set_from_args(c, resp->code_args);
		/* Also passed on: it may carry other meaning to the caller. */
	}
	return 0;
}

/* Remember the response code of a refusal (printable ASCII only). */
static void client_set_last_code(struct imap_client *c, const struct imap_response *resp)
{
	sanitize(c->last_code, sizeof(c->last_code), resp->code != NULL ? resp->code : "");
}

const char *imap_client_last_code(const struct imap_client *c)
{
	return c->last_code;
}

/* Record that command number n (tag "M<n>") was sent and is open. Tags
 * are sent in increasing order. */
static int client_open_tag(struct imap_client *c, unsigned n)
{
	if (c->open_tags.len == 0)
		c->open_base = n;
	if (n < c->open_base || n - c->open_base >= IMAP_CLIENT_MAX_PENDING)
		return -1;
	size_t idx = n - c->open_base;
	static const unsigned char zero[64] = {0};
	while (c->open_tags.len < idx) {
		size_t k =
		    idx - c->open_tags.len < sizeof(zero) ? idx - c->open_tags.len : sizeof(zero);
		if (buf_append(&c->open_tags, zero, k) < 0)
			return -1;
	}
	if (idx < c->open_tags.len) { /* cannot happen: tags only grow */
		c->open_tags.data[idx] = 1;
		return 0;
	}
	return buf_append(&c->open_tags, "\1", 1);
}

/* A tagged response ends the command with that tag: true if it is one we
 * sent and that was still open (it is then closed). */
static bool client_take_pending(struct imap_client *c, const char *tag)
{
	if (tag[0] != 'M' || tag[1] < '1' || tag[1] > '9' || strlen(tag) > 11)
		return false;
	unsigned long long n = 0;
	for (const char *p = tag + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (unsigned)(*p - '0');
	}
	if (n < c->open_base || n - c->open_base >= c->open_tags.len ||
	    c->open_tags.data[n - c->open_base] == 0)
		return false;
	c->open_tags.data[n - c->open_base] = 0;
	/* Drop the closed ones at the front (usually all of them). */
	size_t k = 0;
	while (k < c->open_tags.len && c->open_tags.data[k] == 0)
		k++;
	if (k > 0) {
		buf_consume(&c->open_tags, k);
		c->open_base += (unsigned)k;
	}
	return true;
}

/* Was tag completed with OK earlier (and not yet claimed)? Claims it. */
static bool client_claim_done(struct imap_client *c, const char *tag)
{
	for (unsigned i = 0; i < IMAP_CLIENT_DONE_TAGS; i++) {
		if (strcmp(c->done_tags[i], tag) == 0) {
			c->done_tags[i][0] = '\0';
			return true;
		}
	}
	return false;
}

/* imap_client_wait(), and tagged_fn (if not NULL) sees the command's own
 * tagged OK, NO or BAD before it is acted on. */
static int client_wait_tagged(struct imap_client *c, const char *tag, imap_untagged_fn *fn,
                              void *ctx, imap_untagged_fn *tagged_fn, const char **error_r)
{
	if (client_claim_done(c, tag))
		return 0;
	for (;;) {
		const struct imap_response *resp;
		if (client_read(c, &resp, error_r) < 0)
			return -1;
		if (resp->kind == IMAP_RESP_UNTAGGED) {
			int r = client_common_untagged(c, resp, error_r);
			if (r < 0)
				return -1;
			if (r == 0 && fn != NULL && fn(ctx, resp, error_r) < 0)
				return client_fail(c, error_r, "%s", *error_r);
			continue;
		}
		if (resp->kind == IMAP_RESP_CONTINUATION && c->cont_fn != NULL) {
			if (c->cont_fn(c, resp, error_r) < 0)
				return -1;
			continue;
		}
		if (resp->kind == IMAP_RESP_CONTINUATION)
			return client_fail(c, error_r, "%s: unexpected continuation request",
			                   c->host);
		char text[200];
		sanitize(text, sizeof(text), resp->text);
		if (!client_take_pending(c, resp->tag)) {
			char t[20];
			sanitize(t, sizeof(t), resp->tag);
			return client_fail(
			    c, error_r, "%s: tagged response for no open command (%s)", c->host, t);
		}
		if (strcmp(resp->tag, tag) != 0) {
			if (resp->status == IMAP_STATUS_OK) {
				/* Another pipelined command finished first. */
				snprintf(c->done_tags[c->done_next], sizeof(c->done_tags[0]), "%s",
				         resp->tag);
				c->done_next = (c->done_next + 1) % IMAP_CLIENT_DONE_TAGS;
				continue;
			}
			return client_fail(c, error_r, "%s: pipelined command %s failed: %s",
			                   c->host, resp->tag, text);
		}
		if (tagged_fn != NULL && tagged_fn(ctx, resp, error_r) < 0)
			return client_fail(c, error_r, "%s", *error_r);
		if (resp->status == IMAP_STATUS_OK) {
			if (resp->code != NULL && strcasecmp(resp->code, "CAPABILITY") == 0)
				caps_set_from_args(c, resp->code_args);
			return 0;
		}
		if (resp->status == IMAP_STATUS_NO || resp->status == IMAP_STATUS_BAD) {
			client_set_last_code(c, resp);
			snprintf(c->error, sizeof(c->error), "%s: server answered %s: %s%s%s%s",
			         c->host, resp->status == IMAP_STATUS_NO ? "NO" : "BAD",
			         c->last_code[0] != '\0' ? "[" : "", c->last_code,
			         c->last_code[0] != '\0' ? "] " : "", text);
			*error_r = c->error;
			return IMAP_CMD_FAILED;
		}
		return client_fail(c, error_r, "%s: bad tagged response", c->host);
	}
}

int imap_client_wait(struct imap_client *c, const char *tag, imap_untagged_fn *fn, void *ctx,
                     const char **error_r)
{
	return client_wait_tagged(c, tag, fn, ctx, NULL, error_r);
}

struct buf *imap_client_cmd(struct imap_client *c, const char *name, const char **error_r)
{
	c->last_code[0] = '\0';
	snprintf(c->tag, sizeof(c->tag), "M%u", ++c->tag_counter);
	c->cmd_unsent = true;
	if (imap_cmd_begin(&c->cmd, c->tag, name, error_r) < 0)
		return NULL;
	return &c->cmd;
}

/* Wait for the continuation ("+") of a synchronizing literal of the
 * command tag. Untagged responses meanwhile get the common handling only (a
 * command's own data cannot come before its last literal is sent); the
 * command refused instead is IMAP_CMD_FAILED with its code kept. */
static int client_wait_continuation(struct imap_client *c, const char *tag, const char **error_r)
{
	for (;;) {
		const struct imap_response *resp;
		if (client_read(c, &resp, error_r) < 0)
			return -1;
		if (resp->kind == IMAP_RESP_CONTINUATION)
			return 0;
		if (resp->kind == IMAP_RESP_UNTAGGED) {
			if (client_common_untagged(c, resp, error_r) < 0)
				return -1;
			continue;
		}
		char text[200];
		sanitize(text, sizeof(text), resp->text);
		if (!client_take_pending(c, resp->tag))
			return client_fail(c, error_r, "%s: tagged response for no open command",
			                   c->host);
		if (strcmp(resp->tag, tag) == 0 &&
		    (resp->status == IMAP_STATUS_NO || resp->status == IMAP_STATUS_BAD)) {
			client_set_last_code(c, resp);
			snprintf(c->error, sizeof(c->error), "%s: server answered %s: %s%s%s%s",
			         c->host, resp->status == IMAP_STATUS_NO ? "NO" : "BAD",
			         c->last_code[0] != '\0' ? "[" : "", c->last_code,
			         c->last_code[0] != '\0' ? "] " : "", text);
			*error_r = c->error;
			return IMAP_CMD_FAILED;
		}
		if (strcmp(resp->tag, tag) != 0 && resp->status == IMAP_STATUS_OK) {
			snprintf(c->done_tags[c->done_next], sizeof(c->done_tags[0]), "%s",
			         resp->tag);
			c->done_next = (c->done_next + 1) % IMAP_CLIENT_DONE_TAGS;
			continue;
		}
		return client_fail(c, error_r, "%s: expected a continuation for a literal, got: %s",
		                   c->host, text);
	}
}

/* Does the literal announcement ending at end ("...{12}" before CRLF) ask
 * for a continuation ("{12}") or not ("{12+}")? */
static bool literal_is_sync(const unsigned char *data, size_t end)
{
	return end >= 2 && data[end - 1] == '}' && data[end - 2] != '+';
}

int imap_client_send(struct imap_client *c, const char **tag_r, const char **error_r)
{
	const char *err = NULL;
	c->cmd_unsent = false;
	if (c->state == IMAP_CLIENT_CLOSED) {
		*error_r = c->error[0] != '\0' ? c->error : "IMAP session is closed";
		buf_free(&c->cmd);
		return -1;
	}
	if (imap_cmd_end(&c->cmd, &err) < 0) {
		snprintf(c->error, sizeof(c->error), "cannot build IMAP command: %s", err);
		*error_r = c->error;
		buf_free(&c->cmd);
		return IMAP_CMD_FAILED;
	}
	if (client_open_tag(c, c->tag_counter) < 0) {
		buf_free(&c->cmd);
		return client_fail(c, error_r, "too many IMAP commands in flight");
	}
	/* Every CRLF before the last ends a literal's announcement (imap-cmd.h
	 * refuses CR and LF anywhere else): send up to it, and for a
	 * synchronizing literal wait for the server's "+" first. */
	size_t pos = 0;
	int r = 0;
	while (r == 0) {
		const unsigned char *crlf = memmem(c->cmd.data + pos, c->cmd.len - pos, "\r\n", 2);
		size_t end = (size_t)(crlf - c->cmd.data) + 2;
		if (conn_write(c->conn, c->cmd.data + pos, end - pos, &err) < 0 ||
		    conn_flush(c->conn, &err) < 0) {
			r = client_fail(c, error_r, "%s", err);
			break;
		}
		pos = end;
		if (pos == c->cmd.len)
			break;
		if (literal_is_sync(c->cmd.data, end - 2))
			r = client_wait_continuation(c, c->tag, error_r);
	}
	buf_free(&c->cmd); /* wipes: a command may carry a credential */
	if (r != 0)
		return r;
	*tag_r = c->tag;
	return 0;
}

int imap_client_run(struct imap_client *c, imap_untagged_fn *fn, void *ctx, const char **error_r)
{
	const char *tag;
	int r = imap_client_send(c, &tag, error_r);
	if (r < 0)
		return r;
	char tagcopy[sizeof(c->tag)];
	memcpy(tagcopy, tag, sizeof(tagcopy));
	return imap_client_wait(c, tagcopy, fn, ctx, error_r);
}

int imap_client_run_tagged(struct imap_client *c, imap_untagged_fn *fn, void *ctx,
                           imap_untagged_fn *tagged_fn, const char **error_r)
{
	const char *tag;
	int r = imap_client_send(c, &tag, error_r);
	if (r < 0)
		return r;
	char tagcopy[sizeof(c->tag)];
	memcpy(tagcopy, tag, sizeof(tagcopy));
	return client_wait_tagged(c, tagcopy, fn, ctx, tagged_fn, error_r);
}

int imap_client_protocol_error(struct imap_client *c, const char **error_r, const char *what)
{
	return client_fail(c, error_r, "%s: %s", c->host, what);
}

int imap_client_refuse(struct imap_client *c, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	buf_reset(&c->cmd);
	if (c->cmd_unsent) {
		/* Nothing went out: the tag is free for the next command. */
		c->cmd_unsent = false;
		c->tag_counter--;
	}
	*error_r = c->error;
	return IMAP_CMD_FAILED;
}

const char *imap_client_host(const struct imap_client *c)
{
	return c->host;
}

const char *imap_client_tag(const struct imap_client *c)
{
	return c->tag;
}

size_t imap_client_nonsync_max(const struct imap_client *c)
{
	if (imap_client_has_cap(c, "LITERAL+"))
		return SIZE_MAX;
	if (imap_client_has_ext(c, "LITERAL-"))
		return 4096; /* RFC 7888 section 5 */
	return 0;
}

int imap_client_send_message_literal(struct imap_client *c, const char *tag, const void *data,
                                     size_t len, bool nonsync, const char **error_r)
{
	if (!nonsync) {
		int r = client_wait_continuation(c, tag, error_r);
		if (r != 0)
			return r;
	}
	const char *err;
	if (conn_write(c->conn, data, len, &err) < 0 || conn_write(c->conn, "\r\n", 2, &err) < 0 ||
	    conn_flush(c->conn, &err) < 0)
		return client_fail(c, error_r, "%s", err);
	return 0;
}

int imap_client_wait_tagged(struct imap_client *c, const char *tag, imap_untagged_fn *fn, void *ctx,
                            imap_untagged_fn *tagged_fn, const char **error_r)
{
	return client_wait_tagged(c, tag, fn, ctx, tagged_fn, error_r);
}

static int client_simple(struct imap_client *c, const char *name, const char **error_r)
{
	if (imap_client_cmd(c, name, error_r) == NULL)
		return -1;
	return imap_client_run(c, NULL, NULL, error_r);
}

/* After TLS or COMPRESS starts, nothing received before may be trusted. */
static int client_require_empty_input(struct imap_client *c, const char *what, const char **error_r)
{
	if (c->in_pos != c->in_len)
		return client_fail(c, error_r, "%s: server sent data before %s started", c->host,
		                   what);
	c->in_pos = c->in_len = 0;
	imap_parser_reset(c->parser);
	return 0;
}

static int client_starttls(struct imap_client *c, const char **error_r)
{
	if (!imap_client_has_cap(c, "STARTTLS"))
		return client_fail(c, error_r,
		                   "%s does not offer STARTTLS; refusing to continue without TLS",
		                   c->host);
	int r = client_simple(c, "STARTTLS", error_r);
	if (r != 0)
		return client_fail(c, error_r, "%s: STARTTLS failed: %s", c->host, *error_r);
	if (client_require_empty_input(c, "TLS", error_r) < 0)
		return -1;
	const char *err;
	if (conn_start_tls(c->conn, c->host, c->ca_file, &err) < 0)
		return client_fail(c, error_r, "%s", err);
	buf_reset(&c->caps); /* capabilities from before TLS are not trusted */
	return 0;
}

/* host for a URL: an IPv6 literal in brackets. */
static const char *url_host(const char *host, char *buf, size_t size)
{
	if (strchr(host, ':') == NULL)
		return host;
	snprintf(buf, size, "[%s]", host);
	return buf;
}

/* Does host:port answer a TLS handshake? A verified one, or one whose
 * certificate we could not verify, both mean the port speaks TLS. */
static bool port_speaks_tls(const struct imap_client *c)
{
	struct conn *probe = NULL;
	const char *err;
	bool tls = false;
	if (conn_connect(c->host, c->port, 5000, &probe, &err) == 0) {
		tls = conn_start_tls(probe, c->host, c->ca_file, &err) == 0 ||
		      conn_failure(probe) == CONN_FAIL_CERT;
	}
	conn_free(&probe);
	return tls;
}

int imap_client_connect(const struct imap_client_settings *set, struct imap_client **client_r,
                        const char **error_r)
{
	static _Thread_local char error[768];
	char hint[768], hbuf[300];
	struct imap_client *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	c->set = *set;
	c->host = strdup(set->host);
	c->port = strdup(set->port);
	c->ca_file = set->ca_file != NULL ? strdup(set->ca_file) : NULL;
	c->in = malloc(IMAP_CLIENT_INBUF);
	c->parser = imap_parser_create(&imap_parser_default_limits);
	buf_init(&c->cmd, IMAP_CLIENT_MAX_CMD);
	buf_init(&c->caps, IMAP_CLIENT_MAX_CAPS);
	buf_init(&c->open_tags, IMAP_CLIENT_MAX_PENDING);
	const char *err;
	int r = -1;
	if (c->host == NULL || c->port == NULL || c->in == NULL || c->parser == NULL ||
	    (set->ca_file != NULL && c->ca_file == NULL)) {
		err = "out of memory";
	} else if (conn_connect(c->host, c->port, set->timeout_ms, &c->conn, &err) < 0) {
		/* err set */
	} else if (set->security == IMAP_SECURITY_TLS &&
	           conn_start_tls(c->conn, c->host, c->ca_file, &err) < 0) {
		if (conn_failure(c->conn) == CONN_FAIL_NOT_TLS) {
			snprintf(hint, sizeof(hint),
			         "%s: this port does not speak TLS: use imap://%s:%s (STARTTLS)",
			         err, url_host(c->host, hbuf, sizeof(hbuf)), c->port);
			err = hint;
		}
	} else {
		r = 0;
	}
	if (r == 0) {
		/* The greeting. In clear text (imap://) a silent server is most
		 * likely a TLS port waiting for our handshake: wait briefly, and
		 * if nothing came, look. */
		const struct imap_response *resp;
		bool plain = set->security == IMAP_SECURITY_STARTTLS;
		int wait_ms = set->timeout_ms;
		if (plain && (wait_ms <= 0 || wait_ms > IMAP_CLIENT_GREETING_TIMEOUT_MS)) {
			wait_ms = IMAP_CLIENT_GREETING_TIMEOUT_MS;
			conn_set_timeout(c->conn, wait_ms);
		}
		if (client_read(c, &resp, &err) < 0) {
			r = -1;
			if (plain && conn_failure(c->conn) == CONN_FAIL_TIMEOUT) {
				const char *h = url_host(c->host, hbuf, sizeof(hbuf));
				if (port_speaks_tls(c))
					snprintf(
					    hint, sizeof(hint),
					    "%s:%s sent no IMAP greeting but answers TLS: this "
					    "port speaks TLS: use imaps://%s:%s",
					    h, c->port, h, c->port);
				else
					snprintf(
					    hint, sizeof(hint),
					    "timed out: %s:%s sent no IMAP greeting within %.1f s",
					    h, c->port, wait_ms / 1000.0);
				err = hint;
			}
		} else if (resp->kind != IMAP_RESP_UNTAGGED || resp->status != IMAP_STATUS_OK) {
			r = -1;
			err = resp->status == IMAP_STATUS_PREAUTH
			          ? "server greeted with PREAUTH; refusing a session that "
			            "skips authentication and TLS negotiation"
			          : "server did not greet with OK";
		} else if (resp->code != NULL && strcasecmp(resp->code, "CAPABILITY") == 0 &&
		           set->security == IMAP_SECURITY_TLS) {
			caps_set_from_args(c, resp->code_args);
		}
	}
	if (r == 0)
		conn_set_timeout(c->conn, set->timeout_ms);
	if (r == 0 && set->security == IMAP_SECURITY_STARTTLS) {
		if (client_simple(c, "CAPABILITY", &err) != 0 || client_starttls(c, &err) < 0)
			r = -1;
	}
	if (r == 0 && c->caps.len == 0 && client_simple(c, "CAPABILITY", &err) != 0)
		r = -1;
	if (r < 0) {
		snprintf(error, sizeof(error), "%s", err);
		*error_r = error;
		imap_client_free(&c);
		return -1;
	}
	client_enter_state(c, IMAP_CLIENT_NOT_AUTHENTICATED);
	*client_r = c;
	return 0;
}

static int client_auth_plain(struct imap_client *c, const char *user, const char *password,
                             const char **error_r)
{
	size_t ulen = strlen(user), plen = strlen(password);
	size_t rawlen = 2 + ulen + plen;
	size_t b64len = sodium_base64_encoded_len(rawlen, sodium_base64_VARIANT_ORIGINAL);
	unsigned char *raw = sodium_malloc(rawlen);
	char *b64 = sodium_malloc(b64len);
	int r = -1;
	if (raw == NULL || b64 == NULL) {
		*error_r = "out of memory";
		goto out;
	}
	raw[0] = '\0';
	memcpy(raw + 1, user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, password, plen);
	sodium_bin2base64(b64, b64len, raw, rawlen, sodium_base64_VARIANT_ORIGINAL);
	const char *tag;
	if (imap_client_has_cap(c, "SASL-IR")) {
		struct buf *b = imap_client_cmd(c, "AUTHENTICATE", error_r);
		if (b == NULL || imap_cmd_atom(b, "PLAIN", error_r) < 0 ||
		    imap_cmd_raw(b, b64, error_r) < 0)
			goto out;
		r = imap_client_run(c, NULL, NULL, error_r);
		goto out;
	}
	struct buf *b = imap_client_cmd(c, "AUTHENTICATE", error_r);
	if (b == NULL || imap_cmd_atom(b, "PLAIN", error_r) < 0)
		goto out;
	if ((r = imap_client_send(c, &tag, error_r)) < 0)
		goto out;
	char tagcopy[sizeof(c->tag)];
	memcpy(tagcopy, tag, sizeof(tagcopy));
	const struct imap_response *resp;
	if ((r = client_read(c, &resp, error_r)) < 0)
		goto out;
	if (resp->kind != IMAP_RESP_CONTINUATION) {
		r = client_fail(c, error_r, "%s: AUTHENTICATE PLAIN was not continued", c->host);
		goto out;
	}
	const char *err;
	if (conn_write(c->conn, b64, strlen(b64), &err) < 0 ||
	    conn_write(c->conn, "\r\n", 2, &err) < 0 || conn_flush(c->conn, &err) < 0) {
		r = client_fail(c, error_r, "%s", err);
		goto out;
	}
	r = imap_client_wait(c, tagcopy, NULL, NULL, error_r);
out:
	sodium_free(raw);
	sodium_free(b64);
	return r;
}

static int client_login_cmd(struct imap_client *c, const char *user, const char *password,
                            const char **error_r)
{
	struct buf *b = imap_client_cmd(c, "LOGIN", error_r);
	if (b == NULL || imap_cmd_astring(b, user, error_r) < 0)
		return -1;
	const char *err;
	if (imap_cmd_astring(b, password, &err) < 0) {
		buf_free(&c->cmd);
		/* The reason may describe the password: keep it generic. */
		*error_r = "the password cannot be sent with LOGIN (it has characters LOGIN "
		           "cannot carry) and the server does not offer AUTHENTICATE PLAIN";
		return -1;
	}
	return imap_client_run(c, NULL, NULL, error_r);
}

int imap_client_login(struct imap_client *c, const char *user, const char *password,
                      const char **error_r)
{
	if (!conn_is_tls(c->conn))
		return client_fail(c, error_r, "refusing to send a password without TLS");
	int r;
	unsigned caps_generation = c->caps_generation;
	if (imap_client_has_cap(c, "AUTH=PLAIN")) {
		c->auth_mechanism = "PLAIN";
		r = client_auth_plain(c, user, password, error_r);
	} else if (!imap_client_has_cap(c, "LOGINDISABLED")) {
		c->auth_mechanism = "LOGIN";
		r = client_login_cmd(c, user, password, error_r);
	} else
		return client_fail(c, error_r, "%s offers neither AUTHENTICATE PLAIN nor LOGIN",
		                   c->host);
	if (r == IMAP_CMD_FAILED) {
		/* RFC 5530: the server may say why. A subsystem down, too many
		 * sessions or a server bug is temporary: nothing is wrong with the
		 * credentials, and trying later may succeed. Everything else
		 * (AUTHENTICATIONFAILED, AUTHORIZATIONFAILED, EXPIRED,
		 * CONTACTADMIN, PRIVACYREQUIRED, no code) is not. */
		static const char *const temporary[] = {"UNAVAILABLE", "INUSE", "LIMIT",
		                                        "SERVERBUG"};
		bool temp = false;
		for (size_t i = 0; i < sizeof(temporary) / sizeof(temporary[0]); i++)
			temp = temp || strcasecmp(c->last_code, temporary[i]) == 0;
		/* What the server said, without the host name it starts with. */
		char said[300];
		const char *text = *error_r;
		size_t hl = strlen(c->host);
		if (strncmp(text, c->host, hl) == 0 && strncmp(text + hl, ": ", 2) == 0)
			text += hl + 2;
		snprintf(said, sizeof(said), "%s", text);
		if (temp) {
			snprintf(c->error, sizeof(c->error),
			         "%s: temporary authentication failure for %s, to be retried "
			         "(%s)",
			         c->host, user, said);
			*error_r = c->error;
			return IMAP_LOGIN_TEMPORARY;
		}
		snprintf(c->error, sizeof(c->error),
		         "%s: authentication failed for %s (check the login and password; %s)",
		         c->host, user, said);
		*error_r = c->error;
		return -1;
	}
	if (r < 0)
		return -1;
	client_enter_state(c, IMAP_CLIENT_AUTHENTICATED);
	/* Capabilities change after login; ask unless the OK listed them. */
	if (caps_generation == c->caps_generation && client_simple(c, "CAPABILITY", error_r) != 0)
		return -1;
	bool want = c->set.compress == IMAP_COMPRESS_YES ||
	            (c->set.compress == IMAP_COMPRESS_AUTO && !conn_peer_is_loopback(c->conn));
	if (want && imap_client_has_cap(c, "COMPRESS=DEFLATE")) {
		r = client_simple(c, "COMPRESS DEFLATE", error_r);
		if (r == IMAP_CMD_FAILED)
			return 0; /* carry on uncompressed */
		if (r < 0 || client_require_empty_input(c, "COMPRESS", error_r) < 0)
			return -1;
		const char *err;
		if (conn_start_deflate(c->conn, &err) < 0)
			return client_fail(c, error_r, "%s", err);
	}
	return 0;
}

/* --- SASL XOAUTH2 and OAUTHBEARER (RFC 7628) ------------------------------ */

struct oauth_exchange {
	const char *initial; /* base64 initial response (secret) */
	bool initial_sent;
	bool oauthbearer;
	char said[120]; /* the server's error challenge, decoded and made printable */
};

/* The server's error challenge: base64 of a JSON object
 * {"status":"invalid_token","scope":"...","schemes":"bearer"} (RFC 7628
 * 3.2.2; Google and Microsoft send the same for XOAUTH2). */
static void oauth_decode_challenge(struct oauth_exchange *x, const char *text)
{
	unsigned char bin[1024];
	size_t len = 0;
	x->said[0] = '\0';
	if (sodium_base642bin(bin, sizeof(bin) - 1, text, strlen(text), " ", &len, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) < 0) {
		snprintf(x->said, sizeof(x->said), "an unreadable error challenge");
		return;
	}
	bin[len] = '\0';
	json_error_t jerr;
	json_t *j = json_loadb((const char *)bin, len, 0, &jerr);
	const char *status = json_string_value(json_object_get(j, "status"));
	const char *scope = json_string_value(json_object_get(j, "scope"));
	char st[64] = "", sc[200] = "";
	sanitize(st, sizeof(st), status);
	sanitize(sc, sizeof(sc), scope);
	if (status == NULL)
		snprintf(x->said, sizeof(x->said), "an error challenge without a status");
	else
		snprintf(x->said, sizeof(x->said), "status %s%s%s", st,
		         sc[0] != '\0' ? ", required scope " : "", sc);
	json_decref(j);
}

static int oauth_continuation(struct imap_client *c, const struct imap_response *resp,
                              const char **error_r)
{
	struct oauth_exchange *x = c->cont_ctx;
	const char *line;
	if (!x->initial_sent) {
		line = x->initial; /* no SASL-IR: the server asks for it */
		x->initial_sent = true;
	} else {
		/* An error challenge: answer with the dummy response (RFC 7628
		 * 3.2.3: %x01 for OAUTHBEARER; an empty line for XOAUTH2), and
		 * the tagged NO follows. */
		oauth_decode_challenge(x, resp->text);
		line = x->oauthbearer ? "AQ==" : "";
		c->cont_fn = NULL; /* a second challenge is a protocol error */
	}
	const char *err;
	if (conn_write(c->conn, line, strlen(line), &err) < 0 ||
	    conn_write(c->conn, "\r\n", 2, &err) < 0 || conn_flush(c->conn, &err) < 0)
		return client_fail(c, error_r, "%s", err);
	return 0;
}

int imap_client_login_oauth(struct imap_client *c, const char *user, const char *token,
                            const char **error_r)
{
	if (!conn_is_tls(c->conn))
		return client_fail(c, error_r, "refusing to send an access token without TLS");
	bool bearer = imap_client_has_cap(c, "AUTH=OAUTHBEARER");
	if (!bearer && !imap_client_has_cap(c, "AUTH=XOAUTH2"))
		return client_fail(c, error_r,
		                   "%s offers neither AUTHENTICATE OAUTHBEARER nor XOAUTH2 (is "
		                   "OAuth enabled for IMAP on this server?)",
		                   c->host);
	if (strchr(user, '\x01') != NULL || strchr(token, '\x01') != NULL ||
	    strpbrk(token, " \r\n") != NULL) {
		*error_r = "the login or access token holds characters SASL cannot carry";
		return -1;
	}
	/* XOAUTH2:     "user=" U ^A "auth=Bearer " T ^A ^A
	 * OAUTHBEARER: "n,a=" U' "," ^A "host=" H ^A "port=" P ^A
	 *              "auth=Bearer " T ^A ^A  (U' with ',' -> =2C, '=' -> =3D) */
	size_t ulen = strlen(user), tlen = strlen(token);
	size_t rawsize = 3 * ulen + tlen + strlen(c->host) + strlen(c->port) + 64;
	char *raw = sodium_malloc(rawsize);
	size_t b64size = sodium_base64_encoded_len(rawsize, sodium_base64_VARIANT_ORIGINAL);
	char *b64 = sodium_malloc(b64size);
	int r = -1;
	if (raw == NULL || b64 == NULL) {
		*error_r = "out of memory";
		goto out;
	}
	size_t n = 0;
	if (bearer) {
		n = (size_t)snprintf(raw, rawsize, "n,a=");
		for (const char *p = user; *p != '\0'; p++) {
			if (*p == ',')
				n += (size_t)snprintf(raw + n, rawsize - n, "=2C");
			else if (*p == '=')
				n += (size_t)snprintf(raw + n, rawsize - n, "=3D");
			else
				raw[n++] = *p;
		}
		n += (size_t)snprintf(raw + n, rawsize - n,
		                      ",\x01"
		                      "host=%s\x01"
		                      "port=%s\x01"
		                      "auth=Bearer %s\x01\x01",
		                      c->host, c->port, token);
	} else {
		n = (size_t)snprintf(raw, rawsize,
		                     "user=%s\x01"
		                     "auth=Bearer %s\x01\x01",
		                     user, token);
	}
	if (n >= rawsize) {
		*error_r = "SASL response too long";
		goto out;
	}
	sodium_bin2base64(b64, b64size, (const unsigned char *)raw, n,
	                  sodium_base64_VARIANT_ORIGINAL);
	c->auth_mechanism = bearer ? "OAUTHBEARER" : "XOAUTH2";
	struct oauth_exchange x = {.initial = b64, .oauthbearer = bearer};
	struct buf *b = imap_client_cmd(c, "AUTHENTICATE", error_r);
	if (b == NULL || imap_cmd_atom(b, c->auth_mechanism, error_r) < 0)
		goto out;
	if (imap_client_has_cap(c, "SASL-IR")) {
		if (imap_cmd_raw(b, b64, error_r) < 0)
			goto out;
		x.initial_sent = true;
	}
	unsigned caps_generation = c->caps_generation;
	c->cont_fn = oauth_continuation;
	c->cont_ctx = &x;
	r = imap_client_run(c, NULL, NULL, error_r);
	c->cont_fn = NULL;
	c->cont_ctx = NULL;
	if (r == IMAP_CMD_FAILED) {
		static const char *const temporary[] = {"UNAVAILABLE", "INUSE", "LIMIT",
		                                        "SERVERBUG"};
		bool temp = false;
		for (size_t i = 0; i < sizeof(temporary) / sizeof(temporary[0]); i++)
			temp = temp || strcasecmp(c->last_code, temporary[i]) == 0;
		char said[200];
		const char *text = *error_r;
		size_t hl = strlen(c->host);
		if (strncmp(text, c->host, hl) == 0 && strncmp(text + hl, ": ", 2) == 0)
			text += hl + 2;
		snprintf(said, sizeof(said), "%s", text);
		int en = snprintf(c->error, sizeof(c->error),
		                  "%s: %s the access token for %s (%s%s%s): %s", c->host,
		                  temp ? "temporarily refused" : "refused", user, c->auth_mechanism,
		                  x.said[0] != '\0' ? ", " : "", x.said, said);
		(void)en; /* a longer text is cut, which is fine here */
		*error_r = c->error;
		r = temp ? IMAP_LOGIN_TEMPORARY : -1;
		goto out;
	}
	if (r < 0)
		goto out;
	client_enter_state(c, IMAP_CLIENT_AUTHENTICATED);
	if (caps_generation == c->caps_generation && client_simple(c, "CAPABILITY", error_r) != 0) {
		r = -1;
		goto out;
	}
	r = 0;
	bool want = c->set.compress == IMAP_COMPRESS_YES ||
	            (c->set.compress == IMAP_COMPRESS_AUTO && !conn_peer_is_loopback(c->conn));
	if (want && imap_client_has_cap(c, "COMPRESS=DEFLATE")) {
		int cr = client_simple(c, "COMPRESS DEFLATE", error_r);
		if (cr < 0 && cr != IMAP_CMD_FAILED)
			r = -1;
		else if (cr == 0 && client_require_empty_input(c, "COMPRESS", error_r) < 0)
			r = -1;
		else if (cr == 0) {
			const char *err;
			if (conn_start_deflate(c->conn, &err) < 0)
				r = client_fail(c, error_r, "%s", err);
		}
	}
out:
	if (raw != NULL)
		sodium_free(raw);
	if (b64 != NULL)
		sodium_free(b64);
	return r;
}

void imap_client_stats(const struct imap_client *c, unsigned long long *wire_r,
                       unsigned long long *data_r)
{
	conn_stats(c->conn, wire_r, data_r);
}

int imap_client_noop(struct imap_client *c, int timeout_ms, const char **error_r)
{
	if (c->state == IMAP_CLIENT_CLOSED) {
		*error_r = "the session is closed";
		return -1;
	}
	conn_set_timeout(c->conn, timeout_ms);
	int r = client_simple(c, "NOOP", error_r);
	if (c->state != IMAP_CLIENT_CLOSED)
		conn_set_timeout(c->conn, c->set.timeout_ms);
	return r;
}

void imap_client_logout(struct imap_client *c)
{
	const char *err;
	if (c->state == IMAP_CLIENT_CLOSED)
		return;
	conn_set_timeout(c->conn, 2000);
	if (client_simple(c, "LOGOUT", &err) == 0)
		client_enter_state(c, IMAP_CLIENT_CLOSED);
}

void imap_client_free(struct imap_client **cp)
{
	struct imap_client *c = *cp;
	if (c == NULL)
		return;
	conn_free(&c->conn);
	imap_parser_free(&c->parser);
	if (c->in != NULL) {
		sodium_memzero(c->in, IMAP_CLIENT_INBUF);
		free(c->in);
	}
	buf_free(&c->cmd);
	buf_free(&c->caps);
	buf_free(&c->open_tags);
	free(c->host);
	free(c->port);
	free(c->ca_file);
	free(c);
	*cp = NULL;
}
