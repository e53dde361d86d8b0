/*
 * Modified UTF-7 for IMAP mailbox names (RFC 3501 section 5.1.3).
 */
#include "imap-utf7.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char c)
{
	const char *p = c != '\0' ? strchr(b64, c) : NULL;
	return p != NULL ? (int)(p - b64) : -1;
}

static bool is_direct(uint32_t c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Decode one UTF-8 character at *p (strictly); advances *p. */
static int utf8_next(const unsigned char **p, uint32_t *cp_r)
{
	const unsigned char *s = *p;
	uint32_t c = s[0];
	size_t n;
	uint32_t min;
	if (c < 0x80) {
		*cp_r = c;
		*p = s + 1;
		return 0;
	} else if ((c & 0xe0) == 0xc0) {
		n = 1, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3, c &= 0x07, min = 0x10000;
	} else {
		return -1;
	}
	for (size_t i = 1; i <= n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return -1;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	*cp_r = c;
	*p = s + n + 1;
	return 0;
}

static int put_utf8(struct buf *out, uint32_t c)
{
	unsigned char u[4];
	size_t n;
	if (c < 0x80) {
		u[0] = (unsigned char)c, n = 1;
	} else if (c < 0x800) {
		u[0] = (unsigned char)(0xc0 | c >> 6), u[1] = (unsigned char)(0x80 | (c & 0x3f)),
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (unsigned char)(0xe0 | c >> 12);
		u[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
		u[2] = (unsigned char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | c >> 18);
		u[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
		u[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
		u[3] = (unsigned char)(0x80 | (c & 0x3f));
		n = 4;
	}
	return buf_append(out, u, n);
}

int imap_utf7_encode(const char *utf8, struct buf *out, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)utf8;
	while (*p != '\0') {
		uint32_t c;
		if (utf8_next(&p, &c) < 0) {
			*error_r = "invalid UTF-8 in mailbox name";
			return -1;
		}
		if (is_direct(c)) {
			char ch = (char)c;
			if ((c == '&' ? buf_append(out, "&-", 2) : buf_append(out, &ch, 1)) < 0)
				goto full;
			continue;
		}
		/* A run of characters that are not printable ASCII, as UTF-16
		 * in modified base64. */
		if (buf_append(out, "&", 1) < 0)
			goto full;
		uint32_t bits = 0;
		unsigned nbits = 0;
		for (;;) {
			uint16_t units[2];
			size_t nu = 1;
			if (c >= 0x10000) {
				units[0] = (uint16_t)(0xd800 + ((c - 0x10000) >> 10));
				units[1] = (uint16_t)(0xdc00 + ((c - 0x10000) & 0x3ff));
				nu = 2;
			} else {
				units[0] = (uint16_t)c;
			}
			for (size_t i = 0; i < nu; i++) {
				bits = bits << 16 | units[i];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					if (buf_append(out, &b64[(bits >> nbits) & 0x3f], 1) < 0)
						goto full;
				}
				bits &= (1u << nbits) - 1;
			}
			if (*p == '\0')
				break;
			const unsigned char *save = p;
			if (utf8_next(&p, &c) < 0) {
				*error_r = "invalid UTF-8 in mailbox name";
				return -1;
			}
			if (is_direct(c)) {
				p = save;
				break;
			}
		}
		if (nbits > 0 && buf_append(out, &b64[(bits << (6 - nbits)) & 0x3f], 1) < 0)
			goto full;
		if (buf_append(out, "-", 1) < 0)
			goto full;
	}
	return 0;
full:
	*error_r = "mailbox name too long";
	return -1;
}

int imap_utf7_decode(const char *mutf7, struct buf *out, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)mutf7;
	bool after_run = false; /* a run right after a run is not canonical */
	while (*p != '\0') {
		if (*p != '&') {
			if (!is_direct(*p)) {
				*error_r = "invalid character in modified UTF-7 mailbox name";
				return -1;
			}
			if (buf_append(out, p, 1) < 0)
				goto full;
			p++;
			after_run = false;
			continue;
		}
		p++;
		if (*p == '-') {
			if (buf_append(out, "&", 1) < 0)
				goto full;
			p++;
			after_run = false;
			continue;
		}
		if (after_run)
			goto bad;
		uint32_t bits = 0, high = 0;
		unsigned nbits = 0;
		size_t chars = 0;
		for (; *p != '-'; p++) {
			int v = b64_value(*p);
			if (v < 0)
				goto bad; /* also an unterminated run */
			bits = bits << 6 | (uint32_t)v;
			nbits += 6;
			if (nbits < 16)
				continue;
			nbits -= 16;
			uint32_t unit = bits >> nbits & 0xffff;
			bits &= (1u << nbits) - 1;
			if (high != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					goto bad;
				unit = 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00);
				high = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff) {
				high = unit;
				continue;
			} else if ((unit >= 0xdc00 && unit <= 0xdfff) || is_direct(unit) ||
			           unit == 0) {
				goto bad;
			}
			if (put_utf8(out, unit) < 0)
				goto full;
			chars++;
		}
		/* Leftover: fewer than 6 bits, all zero; no half pair; not empty. */
		if (chars == 0 || high != 0 || nbits >= 6 || bits != 0)
			goto bad;
		p++; /* '-' */
		after_run = true;
	}
	return 0;
bad:
	*error_r = "invalid modified UTF-7 in mailbox name";
	return -1;
full:
	*error_r = "mailbox name too long";
	return -1;
}
