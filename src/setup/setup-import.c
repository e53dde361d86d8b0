/* Importers of account settings, never passwords: a Thunderbird profile's
 * prefs.js and an mbsync configuration. Both read bounded text line by
 * line; nothing else of either file is kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "setup.h"

#define IMPORT_LINE_MAX 4096
#define PREFS_MAX 4096

static void copy_field(char *out, size_t size, const char *s, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(out, s, n);
	out[n] = '\0';
}

/* Copy s into out, cut to size (names and notes shown to the user). */
static void set_str(char *out, size_t size, const char *s)
{
	copy_field(out, size, s, strlen(s));
}

static bool text_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return false;
	return true;
}

static bool host_safe(const char *h)
{
	if (h[0] == '\0' || h[0] == '-' || h[0] == '.' || strlen(h) > 253)
		return false;
	for (const char *c = h; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return false;
	return true;
}

/* Next line of text (without its end) into line; false at the end. A line
 * longer than IMPORT_LINE_MAX is skipped whole (*long_r). */
static bool next_line(const char **p, const char *end, char *line, bool *long_r)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	const char *stop = nl != NULL ? nl : end;
	size_t n = (size_t)(stop - *p);
	*long_r = n >= IMPORT_LINE_MAX || memchr(*p, '\0', n) != NULL;
	if (!*long_r) {
		memcpy(line, *p, n);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
	} else
		line[0] = '\0';
	*p = nl != NULL ? nl + 1 : end;
	return true;
}

struct pref {
	char key[96];
	char value[512];
};

/* user_pref("key", value); with value a "string", a number or a boolean.
 * Returns 0 and fills pr, or -1 for any other line. */
static int parse_pref(const char *line, struct pref *pr)
{
	const char *p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "user_pref(\"", 11) != 0)
		return -1;
	p += 11;
	const char *kend = strchr(p, '"');
	if (kend == NULL || (size_t)(kend - p) >= sizeof(pr->key))
		return -1;
	copy_field(pr->key, sizeof(pr->key), p, (size_t)(kend - p));
	p = kend + 1;
	while (*p == ' ')
		p++;
	if (*p++ != ',')
		return -1;
	while (*p == ' ')
		p++;
	size_t n = 0;
	if (*p == '"') {
		p++;
		for (; *p != '"'; p++) {
			if (*p == '\0')
				return -1;
			if (*p == '\\' && p[1] != '\0')
				p++; /* \" and \\ as the prefs writer escapes them */
			if (n + 1 >= sizeof(pr->value))
				return -1;
			pr->value[n++] = *p;
		}
		p++;
	} else {
		while (*p != '\0' && *p != ')' && *p != ' ') {
			if (n + 1 >= sizeof(pr->value))
				return -1;
			pr->value[n++] = *p++;
		}
	}
	pr->value[n] = '\0';
	while (*p == ' ')
		p++;
	return *p == ')' ? 0 : -1;
}

static const char *pref_get(const struct pref *v, size_t n, const char *prefix, const char *id,
                            const char *field)
{
	char key[128];
	int w = snprintf(key, sizeof(key), "%s%s.%s", prefix, id, field);
	if (w < 0 || (size_t)w >= sizeof(key))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].key, key) == 0)
			return v[i].value;
	return NULL;
}

static unsigned port_of(const char *s, unsigned dflt)
{
	if (s == NULL)
		return dflt;
	char *end;
	long v = strtol(s, &end, 10);
	return end != s && *end == '\0' && v > 0 && v <= 65535 ? (unsigned)v : dflt;
}

/* Thunderbird's socketType and try_ssl: 0 clear text, 2 STARTTLS, 3 TLS. */
static enum setup_security tb_security(const char *s, enum setup_security dflt)
{
	if (s == NULL)
		return dflt;
	return strcmp(s, "3") == 0   ? SETUP_SEC_TLS
	       : strcmp(s, "2") == 0 ? SETUP_SEC_STARTTLS
	                             : SETUP_SEC_PLAIN;
}

/* The SMTP server K (the id after mail.smtpserver.) into im. */
static void tb_smtp(const struct pref *v, size_t n, const char *k, struct setup_import *im)
{
	const char *host = pref_get(v, n, "mail.smtpserver.", k, "hostname");
	if (host == NULL || !host_safe(host))
		return;
	set_str(im->smtp.host, sizeof(im->smtp.host), host);
	im->smtp.security =
	    tb_security(pref_get(v, n, "mail.smtpserver.", k, "try_ssl"), SETUP_SEC_PLAIN);
	im->smtp.port = port_of(pref_get(v, n, "mail.smtpserver.", k, "port"),
	                        im->smtp.security == SETUP_SEC_TLS ? 465 : 587);
	const char *user = pref_get(v, n, "mail.smtpserver.", k, "username");
	set_str(im->smtp.login, sizeof(im->smtp.login),
	        user != NULL && text_safe(user) ? user : im->imap.login);
	im->has_smtp = true;
}

int setup_import_thunderbird(const char *prefs, size_t len, struct setup_import *out, size_t max,
                             const char **error_r)
{
	if (len > SETUP_IMPORT_FILE_MAX) {
		*error_r = "prefs.js too large";
		return -1;
	}
	struct pref *v = calloc(PREFS_MAX, sizeof(*v));
	char *line = malloc(IMPORT_LINE_MAX + 1);
	if (v == NULL || line == NULL) {
		free(v);
		free(line);
		*error_r = "out of memory";
		return -1;
	}
	size_t n = 0;
	const char *p = prefs, *end = prefs + len;
	bool too_long;
	/* Only the mail account prefs; a password is never in prefs.js. */
	while (next_line(&p, end, line, &too_long))
		if (!too_long && n < PREFS_MAX && parse_pref(line, &v[n]) == 0 &&
		    (strncmp(v[n].key, "mail.server.", 12) == 0 ||
		     strncmp(v[n].key, "mail.smtpserver.", 16) == 0 ||
		     strncmp(v[n].key, "mail.identity.", 14) == 0 ||
		     strncmp(v[n].key, "mail.account.", 13) == 0 ||
		     strcmp(v[n].key, "mail.smtp.defaultserver") == 0))
			n++;
	size_t found = 0;
	for (size_t i = 0; i < n && found < max; i++) {
		/* mail.server.serverN.type = "imap" */
		const char *key = v[i].key;
		size_t kl = strlen(key);
		if (strncmp(key, "mail.server.", 12) != 0 || kl < 17 ||
		    strcmp(key + kl - 5, ".type") != 0 || strcmp(v[i].value, "imap") != 0)
			continue;
		char id[64];
		if (kl - 17 >= sizeof(id))
			continue;
		copy_field(id, sizeof(id), key + 12, kl - 17);
		const char *host = pref_get(v, n, "mail.server.", id, "hostname");
		const char *user = pref_get(v, n, "mail.server.", id, "userName");
		if (host == NULL || !host_safe(host))
			continue;
		struct setup_import *im = &out[found];
		memset(im, 0, sizeof(*im));
		const char *name = pref_get(v, n, "mail.server.", id, "name");
		set_str(im->name, sizeof(im->name), name != NULL && text_safe(name) ? name : id);
		set_str(im->imap.host, sizeof(im->imap.host), host);
		im->imap.security =
		    tb_security(pref_get(v, n, "mail.server.", id, "socketType"), SETUP_SEC_PLAIN);
		im->imap.port = port_of(pref_get(v, n, "mail.server.", id, "port"),
		                        im->imap.security == SETUP_SEC_TLS ? 993 : 143);
		set_str(im->imap.login, sizeof(im->imap.login),
		        user != NULL && text_safe(user) ? user : "");
		/* The account that uses this server, its first identity's address and
		 * SMTP server (or the default SMTP server). */
		const char *smtp_id = NULL;
		for (size_t k = 0; k < n; k++) {
			size_t al = strlen(v[k].key);
			if (strncmp(v[k].key, "mail.account.", 13) != 0 || al < 20 ||
			    strcmp(v[k].key + al - 7, ".server") != 0 ||
			    strcmp(v[k].value, id) != 0)
				continue;
			char acct[64];
			if (al - 20 >= sizeof(acct))
				continue;
			copy_field(acct, sizeof(acct), v[k].key + 13, al - 20);
			const char *ids = pref_get(v, n, "mail.account.", acct, "identities");
			if (ids == NULL)
				continue;
			char first[64];
			size_t fl = strcspn(ids, ",");
			copy_field(first, sizeof(first), ids, fl);
			const char *email = pref_get(v, n, "mail.identity.", first, "useremail");
			if (email != NULL && text_safe(email))
				set_str(im->email, sizeof(im->email), email);
			smtp_id = pref_get(v, n, "mail.identity.", first, "smtpServer");
		}
		if (smtp_id == NULL)
			for (size_t k = 0; k < n; k++)
				if (strcmp(v[k].key, "mail.smtp.defaultserver") == 0)
					smtp_id = v[k].value;
		if (im->imap.login[0] == '\0')
			set_str(im->imap.login, sizeof(im->imap.login), im->email);
		if (smtp_id != NULL)
			tb_smtp(v, n, smtp_id, im);
		snprintf(im->note, sizeof(im->note), "Thunderbird server %s", id);
		found++;
	}
	free(v);
	free(line);
	return (int)found;
}

/* The value after the keyword, unquoted ("..." may hold spaces). */
static const char *mbsync_value(char *rest)
{
	while (*rest == ' ' || *rest == '\t')
		rest++;
	size_t n = strlen(rest);
	while (n > 0 && (rest[n - 1] == ' ' || rest[n - 1] == '\t'))
		rest[--n] = '\0';
	if (n >= 2 && rest[0] == '"' && rest[n - 1] == '"') {
		rest[n - 1] = '\0';
		rest++;
	}
	return rest;
}

int setup_import_mbsync(const char *rc, size_t len, struct setup_import *out, size_t max,
                        const char **error_r)
{
	if (len > SETUP_IMPORT_FILE_MAX) {
		*error_r = "mbsync configuration too large";
		return -1;
	}
	char *line = malloc(IMPORT_LINE_MAX + 1);
	if (line == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	const char *p = rc, *end = rc + len;
	bool too_long, explicit_port = false;
	size_t found = 0;
	struct setup_import *cur = NULL;
	while (next_line(&p, end, line, &too_long)) {
		if (too_long)
			continue;
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#')
			continue;
		size_t kl = strcspn(s, " \t");
		if (kl == 0) { /* a blank line ends a block */
			cur = NULL;
			continue;
		}
		char *rest = s + kl;
		if (*rest != '\0')
			*rest++ = '\0';
		const char *val = mbsync_value(rest);
		if (strcasecmp(s, "IMAPAccount") == 0 ||
		    (strcasecmp(s, "IMAPStore") == 0 && cur == NULL)) {
			/* An IMAPStore may carry the account settings itself (older
			 * configurations); it opens an entry that a Host fills. */
			cur = NULL;
			if (found < max) {
				cur = &out[found];
				memset(cur, 0, sizeof(*cur));
				set_str(cur->name, sizeof(cur->name), text_safe(val) ? val : "?");
				cur->imap.security = SETUP_SEC_STARTTLS; /* mbsync's default */
				snprintf(cur->note, sizeof(cur->note), "mbsync %s %s",
				         strcasecmp(s, "IMAPAccount") == 0 ? "IMAPAccount"
				                                           : "IMAPStore",
				         cur->name);
				explicit_port = false;
			}
			continue;
		}
		if (cur == NULL)
			continue;
		if (strcasecmp(s, "Host") == 0 && host_safe(val)) {
			set_str(cur->imap.host, sizeof(cur->imap.host), val);
			if (cur == &out[found])
				found++;
		} else if (strcasecmp(s, "Port") == 0) {
			cur->imap.port = port_of(val, 0);
			explicit_port = cur->imap.port != 0;
		} else if (strcasecmp(s, "User") == 0 && text_safe(val)) {
			set_str(cur->imap.login, sizeof(cur->imap.login), val);
			if (strchr(val, '@') != NULL)
				set_str(cur->email, sizeof(cur->email), val);
		} else if (strcasecmp(s, "TLSType") == 0 || strcasecmp(s, "SSLType") == 0) {
			cur->imap.security = strcasecmp(val, "IMAPS") == 0      ? SETUP_SEC_TLS
			                     : strcasecmp(val, "STARTTLS") == 0 ? SETUP_SEC_STARTTLS
			                                                        : SETUP_SEC_PLAIN;
		} else if (strcasecmp(s, "CertificateFile") == 0 && text_safe(val)) {
			set_str(cur->ca_file, sizeof(cur->ca_file), val);
		}
		/* Pass, PassCmd, UserCmd and everything else: not read, not kept. */
		if (!explicit_port)
			cur->imap.port = cur->imap.security == SETUP_SEC_TLS ? 993 : 143;
	}
	free(line);
	return (int)found;
}
