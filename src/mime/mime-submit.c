/* Preparing a message for submission: envelope recipients, Bcc removal,
 * Date and Message-ID. Header fields are scanned by hand so that every byte
 * not deliberately changed goes out as it came; GMime parses the address
 * lists. */
#include "mime-submit.h"
#include "mime.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#define MAX_HEADER_LINE 998
#define MAX_FIELD_VALUE (64u * 1024)

static bool is_atext(unsigned char c)
{
	if (c >= 0x80) /* UTF-8 (RFC 6531), only deliverable where SMTPUTF8 is offered */
		return true;
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool valid_dot_atoms(const char *s, size_t len, bool domain)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
			continue;
		}
		if (domain ? !(c >= 0x80 || c == '-' || (c >= 'a' && c <= 'z') ||
		               (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		           : !is_atext(c))
			return false;
	}
	return true;
}

bool mime_submit_valid_address(const char *addr)
{
	size_t len = strlen(addr);
	if (len < 3 || len > MIME_SUBMIT_MAX_ADDR)
		return false;
	const char *at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0')
		return false;
	size_t local_len = (size_t)(at - addr), domain_len = len - local_len - 1;
	if (local_len > 64 || !valid_dot_atoms(addr, local_len, false))
		return false;
	const char *dom = at + 1;
	if (dom[0] == '[') { /* address literal: [192.0.2.1] or [IPv6:...] */
		if (dom[domain_len - 1] != ']' || domain_len < 3)
			return false;
		for (size_t i = 1; i + 1 < domain_len; i++)
			if (strchr("0123456789abcdefABCDEF:.IPv", dom[i]) == NULL)
				return false;
		return true;
	}
	return valid_dot_atoms(dom, domain_len, true);
}

/* --- address collection -------------------------------------------------- */

struct rcpt_list {
	char **v;
	size_t n;
};

static int rcpt_add(struct rcpt_list *l, const char *addr, const char **error_r)
{
	if (!mime_submit_valid_address(addr)) {
		*error_r = "invalid recipient address (a plain local@domain is needed)";
		return -1;
	}
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], addr) == 0)
			return 0;
	if (l->n >= MIME_SUBMIT_MAX_RCPTS) {
		*error_r = "too many recipients";
		return -1;
	}
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (nv == NULL || (nv[l->n] = strdup(addr)) == NULL) {
		if (nv != NULL)
			l->v = nv;
		*error_r = "out of memory";
		return -1;
	}
	l->v = nv;
	l->n++;
	return 0;
}

static void rcpt_free(struct rcpt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

static int collect_list(InternetAddressList *list, struct rcpt_list *out, unsigned depth,
                        const char **error_r)
{
	int count = internet_address_list_length(list);
	for (int i = 0; i < count; i++) {
		InternetAddress *a = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(a)) {
			InternetAddressList *members =
			    internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a));
			if (members != NULL && depth < 2 &&
			    collect_list(members, out, depth + 1, error_r) < 0)
				return -1;
			continue;
		}
		const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
		if (addr == NULL || rcpt_add(out, addr, error_r) < 0) {
			if (addr == NULL)
				*error_r = "invalid recipient address";
			return -1;
		}
	}
	return 0;
}

static bool blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\t')
			return false;
	return true;
}

/* Parse an address header's unfolded value into out (collect), or only
 * the first mailbox into *first_r (From). */
static int parse_addresses(const char *value, struct rcpt_list *out, char **first_r,
                           const char **error_r)
{
	if (blank(value))
		return 0; /* "Bcc:" alone is allowed (RFC 5322 3.6.3) */
	InternetAddressList *list = internet_address_list_parse(NULL, value);
	if (list == NULL) {
		*error_r = "an address header cannot be parsed";
		return -1;
	}
	int ret = 0;
	if (out != NULL) {
		ret = collect_list(list, out, 0, error_r);
	} else if (first_r != NULL && *first_r == NULL && internet_address_list_length(list) > 0) {
		InternetAddress *a = internet_address_list_get_address(list, 0);
		if (INTERNET_ADDRESS_IS_MAILBOX(a)) {
			const char *addr =
			    internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
			if (addr != NULL && mime_submit_valid_address(addr))
				*first_r = strdup(addr);
		}
	}
	g_object_unref(list);
	return ret;
}

/* --- bytes ---------------------------------------------------------------- */

/* Copy data with every line ending made CRLF. Returns NULL (with error) on
 * NUL bytes or when the result would be too large. */
static char *normalise(const unsigned char *p, size_t len, size_t *len_r, const char **error_r)
{
	size_t extra = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\0') {
			*error_r = "the message contains a NUL byte";
			return NULL;
		}
		if ((p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) ||
		    (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')))
			extra++;
	}
	if (len + extra > MIME_SUBMIT_MAX_SIZE - 256) {
		*error_r = "the message is too large";
		return NULL;
	}
	char *out = malloc(len + extra + 1);
	if (out == NULL) {
		*error_r = "out of memory";
		return NULL;
	}
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r')) {
			out[o++] = '\r';
			out[o++] = '\n';
		} else if (p[i] == '\r' && (i + 1 == len || p[i + 1] != '\n')) {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			out[o++] = (char)p[i];
		}
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

static void rfc5322_date(int64_t now, char *out, size_t size)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
	         tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	         tm.tm_sec);
}

static bool name_is(const char *line, size_t name_len, const char *name)
{
	return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

int mime_submit_prepare(const void *data, size_t len, const char *const *rcpts, size_t n_rcpts,
                        const char *sender, int64_t now, struct mime_submission *sub_r,
                        const char **error_r)
{
	struct mime_submission sub = {0};
	struct rcpt_list hdr_rcpts = {0}, cmd_rcpts = {0};
	char *msg = NULL, *value = NULL, *out = NULL;
	size_t mlen = 0;
	mime_init();
	for (size_t i = 0; i < n_rcpts; i++) {
		if (strpbrk(rcpts[i], "\r\n") != NULL) {
			*error_r = "a recipient contains a line break";
			goto fail;
		}
		if (rcpt_add(&cmd_rcpts, rcpts[i], error_r) < 0)
			goto fail;
	}
	if ((msg = normalise(data, len, &mlen, error_r)) == NULL)
		goto fail;
	/* The header ends at the first empty line. */
	size_t hdr_end;
	if (mlen >= 2 && msg[0] == '\r' && msg[1] == '\n') {
		hdr_end = 0;
	} else {
		const char *sep = memmem(msg, mlen, "\r\n\r\n", 4);
		if (sep == NULL) {
			*error_r = "the message has no empty line after its header";
			goto fail;
		}
		hdr_end = (size_t)(sep - msg) + 2;
	}
	if ((out = malloc(mlen + 256 + 1)) == NULL ||
	    (value = malloc(MAX_FIELD_VALUE + 1)) == NULL) {
		*error_r = "out of memory";
		goto fail;
	}
	/* Header fields: copy all but Bcc; collect addresses. */
	bool has_date = false, has_mid = false;
	size_t o = 256; /* room for Date and Message-ID in front */
	size_t pos = 0;
	while (pos < hdr_end) {
		size_t start = pos, vlen = 0;
		const char *colon = NULL;
		/* One field: the first line and its continuation lines. */
		do {
			const char *eol = memmem(msg + pos, hdr_end - pos, "\r\n", 2);
			size_t line_len = (size_t)(eol - (msg + pos));
			if (line_len > MAX_HEADER_LINE) {
				*error_r = "a header line is longer than 998 octets";
				goto fail;
			}
			const char *vstart = msg + pos;
			if (pos == start) {
				colon = memchr(msg + pos, ':', line_len);
				if (colon == NULL || colon == msg + pos) {
					*error_r = "malformed header line (no field name)";
					goto fail;
				}
				for (const char *c = msg + pos; c < colon; c++) {
					if ((unsigned char)*c <= 32 || (unsigned char)*c >= 127) {
						*error_r = "malformed header field name";
						goto fail;
					}
				}
				vstart = colon + 1;
			}
			size_t piece = (size_t)(eol - vstart);
			if (vlen + piece > MAX_FIELD_VALUE) {
				*error_r = "a header field is too long";
				goto fail;
			}
			memcpy(value + vlen, vstart, piece);
			vlen += piece;
			pos += line_len + 2;
		} while (pos < hdr_end && (msg[pos] == ' ' || msg[pos] == '\t'));
		if (start == 0 && (msg[0] == ' ' || msg[0] == '\t')) {
			*error_r = "the header starts with a continuation line";
			goto fail;
		}
		value[vlen] = '\0';
		size_t name_len = (size_t)(colon - (msg + start));
		const char *name = msg + start;
		bool keep = true;
		if (name_is(name, name_len, "Bcc")) {
			keep = false;
			sub.removed_bcc = true;
			if (parse_addresses(value, &hdr_rcpts, NULL, error_r) < 0)
				goto fail;
		} else if (name_is(name, name_len, "To") || name_is(name, name_len, "Cc")) {
			if (parse_addresses(value, &hdr_rcpts, NULL, error_r) < 0)
				goto fail;
		} else if (name_is(name, name_len, "From")) {
			sub.has_from = true;
			if (parse_addresses(value, NULL, &sub.from_header, error_r) < 0)
				goto fail;
		} else if (name_is(name, name_len, "Date")) {
			has_date = true;
		} else if (name_is(name, name_len, "Message-ID")) {
			has_mid = true;
		}
		if (keep) {
			memcpy(out + o, msg + start, pos - start);
			o += pos - start;
		}
	}
	/* Body (with the empty line before it), unchanged. */
	memcpy(out + o, msg + hdr_end, mlen - hdr_end);
	o += mlen - hdr_end;
	/* Date and Message-ID go in front, right-aligned into the reserved room. */
	char front[256], date[64];
	size_t flen = 0;
	if (!has_date) {
		rfc5322_date(now, date, sizeof(date));
		flen += (size_t)snprintf(front + flen, sizeof(front) - flen, "Date: %s\r\n", date);
		sub.added_date = true;
	}
	if (!has_mid) {
		unsigned char rnd[16];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			*error_r = "no randomness for a Message-ID";
			goto fail;
		}
		const char *who = sender != NULL ? sender : sub.from_header;
		const char *at = who != NULL ? strrchr(who, '@') : NULL;
		const char *domain =
		    at != NULL && strlen(at + 1) < 100 ? at + 1 : "mailkeep.invalid";
		char hex[33];
		for (size_t i = 0; i < 16; i++)
			snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
		int w = snprintf(front + flen, sizeof(front) - flen, "Message-ID: <%s@%s>\r\n", hex,
		                 domain);
		if (w < 0 || (size_t)w >= sizeof(front) - flen) {
			*error_r = "Message-ID too long";
			goto fail;
		}
		flen += (size_t)w;
		sub.added_message_id = true;
	}
	memcpy(out + 256 - flen, front, flen);
	memmove(out, out + 256 - flen, o - (256 - flen));
	sub.len = o - (256 - flen);
	out[sub.len] = '\0';
	sub.data = out;
	out = NULL;
	struct rcpt_list *use = n_rcpts > 0 ? &cmd_rcpts : &hdr_rcpts;
	if (use->n == 0) {
		*error_r = "no recipients (give --to, or To/Cc/Bcc in the message)";
		goto fail;
	}
	sub.rcpts = use->v;
	sub.n_rcpts = use->n;
	use->v = NULL;
	use->n = 0;
	rcpt_free(&hdr_rcpts);
	rcpt_free(&cmd_rcpts);
	free(msg);
	free(value);
	*sub_r = sub;
	return 0;
fail:
	rcpt_free(&hdr_rcpts);
	rcpt_free(&cmd_rcpts);
	free(msg);
	free(value);
	free(out);
	mime_submission_free(&sub);
	return -1;
}

void mime_submission_free(struct mime_submission *sub)
{
	free(sub->data);
	for (size_t i = 0; i < sub->n_rcpts; i++)
		free(sub->rcpts[i]);
	free(sub->rcpts);
	free(sub->from_header);
	memset(sub, 0, sizeof(*sub));
}
