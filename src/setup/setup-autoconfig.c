/* The Thunderbird autoconfig format (config-v1.1.xml), with a small XML
 * reader that knows only what this format needs: elements, attributes,
 * text, the five predefined entities, numeric character references,
 * comments, processing instructions and CDATA. A DOCTYPE is refused, so no
 * entity can be declared (no expansion bombs, no external entities). The
 * whole document is bounded (SETUP_AUTOCONFIG_MAX), as are nesting, names,
 * attribute values and text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "setup.h"

#define XML_NAME_MAX 64
#define XML_TEXT_MAX 512
#define XML_MAX_ATTRS 8

struct xml_attr {
	char name[XML_NAME_MAX];
	char value[XML_TEXT_MAX];
};

/* What the format's reader keeps while it walks the document. */
struct ac_state {
	char stack[SETUP_XML_MAX_DEPTH][XML_NAME_MAX];
	int depth;
	char text[XML_TEXT_MAX];
	size_t text_len;
	bool text_overflow;
	/* The server element being read: 0 none, 1 incoming IMAP, 2 outgoing SMTP,
	 * 3 a server of another type (read and dropped). */
	int in_server;
	struct setup_server cand;
	bool cand_host, cand_port;
	unsigned cand_auth;
	struct setup_autoconfig *ac;
};

static bool host_valid(const char *h)
{
	if (h[0] == '\0' || h[0] == '-' || h[0] == '.' || strlen(h) > 253)
		return false;
	for (const char *c = h; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return false;
	return true;
}

static int sec_rank(enum setup_security s)
{
	return s == SETUP_SEC_TLS ? 2 : s == SETUP_SEC_STARTTLS ? 1 : 0;
}

static void ac_server_end(struct ac_state *st)
{
	struct setup_autoconfig *ac = st->ac;
	if (st->in_server == 1 || st->in_server == 2) {
		bool imap = st->in_server == 1;
		bool *has = imap ? &ac->has_imap : &ac->has_smtp;
		struct setup_server *s = imap ? &ac->imap : &ac->smtp;
		if (st->cand_host && st->cand_port &&
		    (!*has || sec_rank(st->cand.security) > sec_rank(s->security))) {
			*s = st->cand;
			*has = true;
			if (imap)
				ac->imap_auth = st->cand_auth;
			else
				ac->smtp_auth = st->cand_auth;
		}
	}
	st->in_server = 0;
}

static void ac_start(struct ac_state *st, const char *name, const struct xml_attr *attrs,
                     size_t n_attrs)
{
	st->text_len = 0;
	st->text_overflow = false;
	bool incoming = strcmp(name, "incomingServer") == 0;
	if (!incoming && strcmp(name, "outgoingServer") != 0)
		return;
	const char *type = "";
	for (size_t i = 0; i < n_attrs; i++)
		if (strcmp(attrs[i].name, "type") == 0)
			type = attrs[i].value;
	memset(&st->cand, 0, sizeof(st->cand));
	st->cand.security = SETUP_SEC_PLAIN;
	st->cand_host = st->cand_port = false;
	st->cand_auth = 0;
	st->in_server = incoming && strcmp(type, "imap") == 0    ? 1
	                : !incoming && strcmp(type, "smtp") == 0 ? 2
	                                                         : 3;
}

/* The end of element name, whose text is st->text. */
static void ac_end(struct ac_state *st, const char *name)
{
	const char *text = st->text;
	const char *parent = st->depth >= 2 ? st->stack[st->depth - 2] : "";
	if (strcmp(name, "incomingServer") == 0 || strcmp(name, "outgoingServer") == 0) {
		ac_server_end(st);
		return;
	}
	if (st->text_overflow)
		return;
	if (strcmp(name, "displayName") == 0 && strcmp(parent, "emailProvider") == 0 &&
	    st->ac->provider_name[0] == '\0') {
		size_t n = strlen(text) < sizeof(st->ac->provider_name) - 1
		               ? strlen(text)
		               : sizeof(st->ac->provider_name) - 1;
		memcpy(st->ac->provider_name, text, n);
		st->ac->provider_name[n] = '\0';
		return;
	}
	if (st->in_server == 0 || st->in_server == 3)
		return;
	if (strcmp(parent, "incomingServer") != 0 && strcmp(parent, "outgoingServer") != 0)
		return;
	if (strcmp(name, "hostname") == 0 && host_valid(text) &&
	    strlen(text) < sizeof(st->cand.host)) {
		memcpy(st->cand.host, text, strlen(text) + 1);
		st->cand_host = true;
	} else if (strcmp(name, "port") == 0) {
		char *end;
		long port = strtol(text, &end, 10);
		if (end != text && *end == '\0' && port > 0 && port <= 65535) {
			st->cand.port = (unsigned)port;
			st->cand_port = true;
		}
	} else if (strcmp(name, "socketType") == 0) {
		st->cand.security = strcasecmp(text, "SSL") == 0        ? SETUP_SEC_TLS
		                    : strcasecmp(text, "STARTTLS") == 0 ? SETUP_SEC_STARTTLS
		                                                        : SETUP_SEC_PLAIN;
	} else if (strcmp(name, "username") == 0 && strlen(text) < sizeof(st->cand.login) &&
	           strpbrk(text, "\r\n") == NULL) {
		memcpy(st->cand.login, text, strlen(text) + 1);
	} else if (strcmp(name, "authentication") == 0) {
		if (strncasecmp(text, "password-", 9) == 0)
			st->cand_auth |= SETUP_AUTH_PASSWORD;
		else if (strcasecmp(text, "OAuth2") == 0)
			st->cand_auth |= SETUP_AUTH_OAUTH2;
	}
}

static void text_add(struct ac_state *st, const char *s, size_t n)
{
	if (st->text_len + n >= sizeof(st->text)) {
		st->text_overflow = true;
		return;
	}
	memcpy(st->text + st->text_len, s, n);
	st->text_len += n;
	st->text[st->text_len] = '\0';
}

/* Append the UTF-8 of code point cp to out (size bytes, *len used). */
static int utf8_put(unsigned long cp, char *out, size_t size, size_t *len)
{
	unsigned char b[4];
	size_t n;
	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (unsigned char)(0xf0 | (cp >> 18));
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*len + n >= size)
		return -1;
	memcpy(out + *len, b, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

/* Decode raw text (entities) of n bytes into out; -1 on a bad reference
 * or no room. */
static int xml_decode(const char *raw, size_t n, char *out, size_t size, size_t *len)
{
	static const struct {
		const char *name;
		char c;
	} ents[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
	for (size_t i = 0; i < n;) {
		if (raw[i] != '&') {
			if (raw[i] == '\0' || *len + 1 >= size)
				return -1;
			out[(*len)++] = raw[i++];
			out[*len] = '\0';
			continue;
		}
		const char *semi = memchr(raw + i, ';', n - i);
		if (semi == NULL || semi - (raw + i) > 12)
			return -1;
		size_t rl = (size_t)(semi - (raw + i)) + 1; /* "&...;" */
		bool done = false;
		for (size_t k = 0; k < sizeof(ents) / sizeof(ents[0]); k++)
			if (rl - 1 == strlen(ents[k].name) &&
			    memcmp(raw + i + 1, ents[k].name, rl - 1) == 0) {
				if (*len + 1 >= size)
					return -1;
				out[(*len)++] = ents[k].c;
				out[*len] = '\0';
				done = true;
			}
		if (!done) {
			if (rl < 4 || raw[i + 1] != '#')
				return -1;
			bool hex = raw[i + 2] == 'x';
			unsigned long cp = 0;
			size_t d = i + (hex ? 3 : 2);
			if (d >= i + rl - 1)
				return -1;
			for (; d < i + rl - 1; d++) {
				char c = raw[d];
				int v = c >= '0' && c <= '9'          ? c - '0'
				        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
				        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
				                                      : -1;
				if (v < 0 || cp > 0x10ffff)
					return -1;
				cp = cp * (hex ? 16 : 10) + (unsigned long)v;
			}
			if (utf8_put(cp, out, size, len) < 0)
				return -1;
		}
		i += rl;
	}
	return 0;
}

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && ((c >= '0' && c <= '9') || c == '-' || c == '.'));
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Read a name at *p (before end) into out; -1 if there is none or it is
 * too long. */
static int read_name(const char **p, const char *end, char out[XML_NAME_MAX])
{
	size_t n = 0;
	if (*p >= end || !name_char(**p, true))
		return -1;
	while (*p < end && name_char(**p, n == 0)) {
		if (n + 1 >= XML_NAME_MAX)
			return -1;
		out[n++] = *(*p)++;
	}
	out[n] = '\0';
	return 0;
}

static const char *find(const char *p, const char *end, const char *what)
{
	size_t wl = strlen(what);
	while (p + wl <= end) {
		if (memcmp(p, what, wl) == 0)
			return p;
		p++;
	}
	return NULL;
}

/* A start tag after '<' at p; *p is left after '>'. */
static int read_start_tag(struct ac_state *st, const char **p, const char *end)
{
	char name[XML_NAME_MAX];
	struct xml_attr attrs[XML_MAX_ATTRS];
	size_t n_attrs = 0;
	if (read_name(p, end, name) < 0)
		return -1;
	for (;;) {
		bool space = false;
		while (*p < end && is_space(**p)) {
			(*p)++;
			space = true;
		}
		if (*p >= end)
			return -1;
		if (**p == '>' || (**p == '/' && *p + 1 < end && (*p)[1] == '>'))
			break;
		char aname[XML_NAME_MAX];
		if (!space || read_name(p, end, aname) < 0)
			return -1;
		while (*p < end && is_space(**p))
			(*p)++;
		if (*p >= end || **p != '=')
			return -1;
		(*p)++;
		while (*p < end && is_space(**p))
			(*p)++;
		if (*p >= end || (**p != '"' && **p != '\''))
			return -1;
		char q = *(*p)++;
		const char *vend = memchr(*p, q, (size_t)(end - *p));
		if (vend == NULL || memchr(*p, '<', (size_t)(vend - *p)) != NULL)
			return -1;
		if (n_attrs < XML_MAX_ATTRS) {
			size_t len = 0;
			memcpy(attrs[n_attrs].name, aname, sizeof(aname));
			attrs[n_attrs].value[0] = '\0';
			if (xml_decode(*p, (size_t)(vend - *p), attrs[n_attrs].value,
			               sizeof(attrs[n_attrs].value), &len) < 0)
				return -1;
			n_attrs++;
		} /* further attributes are checked for form and dropped */
		*p = vend + 1;
	}
	bool empty = **p == '/';
	*p += empty ? 2 : 1;
	if (st->depth >= SETUP_XML_MAX_DEPTH)
		return -1;
	memcpy(st->stack[st->depth++], name, sizeof(name));
	ac_start(st, name, attrs, n_attrs);
	if (empty) {
		st->text[0] = '\0';
		st->text_len = 0;
		ac_end(st, name);
		st->depth--;
	}
	return 0;
}

int setup_autoconfig_parse(const char *xml, size_t len, struct setup_autoconfig *ac_r,
                           const char **error_r)
{
	if (len > SETUP_AUTOCONFIG_MAX) {
		*error_r = "autoconfig document too large";
		return -1;
	}
	struct ac_state *st = calloc(1, sizeof(*st));
	struct setup_autoconfig *ac = calloc(1, sizeof(*ac));
	if (st == NULL || ac == NULL) {
		free(st);
		free(ac);
		*error_r = "out of memory";
		return -1;
	}
	st->ac = ac;
	const char *p = xml, *end = xml + len;
	bool seen_root = false;
	int ret = -1;
	*error_r = "autoconfig: not well-formed XML";
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	while (p < end) {
		if (*p != '<') {
			const char *lt = memchr(p, '<', (size_t)(end - p));
			const char *stop = lt != NULL ? lt : end;
			if (st->depth == 0) {
				for (; p < stop; p++)
					if (!is_space(*p))
						goto out;
				continue;
			}
			char buf[XML_TEXT_MAX];
			size_t bl = 0;
			buf[0] = '\0';
			if (memchr(p, '\0', (size_t)(stop - p)) != NULL)
				goto out;
			if ((size_t)(stop - p) >= sizeof(buf))
				st->text_overflow = true; /* long text: not a field we use */
			else if (xml_decode(p, (size_t)(stop - p), buf, sizeof(buf), &bl) < 0)
				goto out;
			else
				text_add(st, buf, bl);
			p = stop;
			continue;
		}
		if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
			const char *e = find(p + 4, end, "-->");
			if (e == NULL)
				goto out;
			p = e + 3;
		} else if (end - p >= 2 && memcmp(p, "<?", 2) == 0) {
			const char *e = find(p + 2, end, "?>");
			if (e == NULL)
				goto out;
			p = e + 2;
		} else if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
			const char *e = find(p + 9, end, "]]>");
			if (e == NULL || st->depth == 0)
				goto out;
			if ((size_t)(e - (p + 9)) < XML_TEXT_MAX &&
			    memchr(p + 9, '\0', (size_t)(e - (p + 9))) == NULL)
				text_add(st, p + 9, (size_t)(e - (p + 9)));
			else
				st->text_overflow = true;
			p = e + 3;
		} else if (end - p >= 2 && p[1] == '!') {
			*error_r = "autoconfig: DOCTYPE and declarations are not accepted";
			goto out;
		} else if (end - p >= 2 && p[1] == '/') {
			char name[XML_NAME_MAX];
			p += 2;
			if (read_name(&p, end, name) < 0)
				goto out;
			while (p < end && is_space(*p))
				p++;
			if (p >= end || *p != '>' || st->depth == 0 ||
			    strcmp(st->stack[st->depth - 1], name) != 0)
				goto out;
			p++;
			ac_end(st, name);
			st->depth--;
			st->text_len = 0;
			st->text[0] = '\0';
		} else {
			if (seen_root && st->depth == 0)
				goto out; /* a second root element */
			p++;
			if (read_start_tag(st, &p, end) < 0)
				goto out;
			seen_root = true;
		}
	}
	if (st->depth != 0 || !seen_root)
		goto out;
	if (strcmp(st->stack[0], "clientConfig") != 0) {
		*error_r = "autoconfig: the root element is not clientConfig";
		goto out;
	}
	*ac_r = *ac;
	ret = ac->has_imap ? 1 : 0;
out:
	free(st);
	free(ac);
	return ret;
}
