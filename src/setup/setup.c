/* Discovery of an address's server settings: profile by domain, autoconfig
 * (the domain's own, its .well-known, the ISPDB), profile by MX, RFC 6186
 * SRV, then a guess checked by connecting. Each step appends one line to
 * the trail; the first that finds the IMAP server decides, later steps
 * only fill in a missing SMTP server. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/conn.h"
#include "setup.h"

static void trail_add(struct setup_found *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void trail_add(struct setup_found *f, const char *fmt, ...)
{
	size_t len = strlen(f->trail);
	if (len + 2 >= sizeof(f->trail))
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(f->trail + len, sizeof(f->trail) - len - 1, fmt, ap);
	va_end(ap);
	if (w < 0)
		return;
	len = strlen(f->trail); /* truncated lines are kept as far as they go */
	f->trail[len] = '\n';
	f->trail[len + 1] = '\0';
}

static void set_source(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_source(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, size, fmt, ap); /* a source cut short is still shown */
	va_end(ap);
}

static int timeout_ms(const struct setup_options *opt)
{
	return opt->timeout_ms > 0 ? opt->timeout_ms : 10000;
}

struct fetch_buf {
	char *data;
	size_t len;
	bool too_big;
};

static size_t fetch_write(char *ptr, size_t size, size_t nmemb, void *ctx)
{
	struct fetch_buf *b = ctx;
	size_t n = size * nmemb;
	if (b->len + n > SETUP_AUTOCONFIG_MAX) {
		b->too_big = true;
		return 0;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

/* GET url into buf (SETUP_AUTOCONFIG_MAX bytes). 1 with a 200 answer, 0
 * for any other, -1 when it could not be fetched; *what_r says why. */
static int fetch(const struct setup_options *opt, const char *url, struct fetch_buf *buf,
                 char *what, size_t what_size)
{
	CURL *curl = curl_easy_init();
	if (curl == NULL) {
		snprintf(what, what_size, "cannot start libcurl");
		return -1;
	}
	buf->len = 0;
	buf->too_big = false;
	/* Only HTTPS, redirects too; the test override's base may be http. */
	const char *protos = opt->autoconfig_base != NULL ? "http,https" : "https";
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, protos);
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, protos);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms(opt));
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fetch_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, buf);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "mailkeep-setup");
	if (opt->ca_file != NULL)
		curl_easy_setopt(curl, CURLOPT_CAINFO, opt->ca_file);
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(curl);
	if (buf->too_big) {
		snprintf(what, what_size, "answer larger than %d bytes", SETUP_AUTOCONFIG_MAX);
		return -1;
	}
	if (rc != CURLE_OK) {
		snprintf(what, what_size, "%s", curl_easy_strerror(rc));
		return -1;
	}
	snprintf(what, what_size, "HTTP %ld", status);
	return status == 200 ? 1 : 0;
}

static void server_expand(struct setup_server *s, const char *email)
{
	char login[sizeof(s->login)];
	if (s->login[0] == '\0' || setup_expand(s->login, email, login, sizeof(login)) < 0)
		snprintf(s->login, sizeof(s->login), "%s", email);
	else
		memcpy(s->login, login, sizeof(login));
}

static void use_profile(struct setup_found *f, const struct setup_profile *p, const char *email,
                        const char *why)
{
	f->profile = p;
	snprintf(f->provider_name, sizeof(f->provider_name), "%s", p->name);
	f->imap = p->imap;
	f->smtp = p->smtp;
	server_expand(&f->imap, email);
	server_expand(&f->smtp, email);
	char host[256];
	if (setup_expand(p->imap.host, email, host, sizeof(host)) == 0)
		memcpy(f->imap.host, host, sizeof(host));
	if (setup_expand(p->smtp.host, email, host, sizeof(host)) == 0)
		memcpy(f->smtp.host, host, sizeof(host));
	f->has_imap = f->has_smtp = true;
	f->auth = p->auth;
	set_source(f->imap_source, sizeof(f->imap_source), "provider profile '%s' (%s)", p->id,
	           why);
	memcpy(f->smtp_source, f->imap_source, sizeof(f->smtp_source));
}

static int try_autoconfig(const struct setup_options *opt, const char *email, const char *domain,
                          struct setup_found *f)
{
	char urls[3][800];
	int n = 0;
	const char *base = opt->autoconfig_base;
	char *esc = curl_easy_escape(NULL, email, 0);
	if (esc == NULL)
		return -1;
	if (base != NULL) {
		snprintf(urls[n++], sizeof(urls[0]),
		         "%s/autoconfig.%s/mail/config-v1.1.xml?emailaddress=%s", base, domain,
		         esc);
		snprintf(urls[n++], sizeof(urls[0]),
		         "%s/%s/.well-known/autoconfig/mail/config-v1.1.xml", base, domain);
		if (!opt->no_ispdb)
			snprintf(urls[n++], sizeof(urls[0]), "%s/ispdb/%s", base, domain);
	} else {
		snprintf(urls[n++], sizeof(urls[0]),
		         "https://autoconfig.%s/mail/config-v1.1.xml?emailaddress=%s", domain, esc);
		snprintf(urls[n++], sizeof(urls[0]),
		         "https://%s/.well-known/autoconfig/mail/config-v1.1.xml", domain);
		if (!opt->no_ispdb)
			snprintf(urls[n++], sizeof(urls[0]),
			         "https://autoconfig.thunderbird.net/v1.1/%s", domain);
	}
	curl_free(esc);
	struct fetch_buf buf = {.data = malloc(SETUP_AUTOCONFIG_MAX)};
	if (buf.data == NULL)
		return -1;
	int found = 0;
	for (int i = 0; i < n && !found; i++) {
		char what[256];
		/* The address is sent only to the domain's own server, as the
		 * format intends; the others get the domain alone. */
		char shown[800];
		memcpy(shown, urls[i], sizeof(shown));
		char *q = strchr(shown, '?');
		if (q != NULL)
			*q = '\0';
		if (fetch(opt, urls[i], &buf, what, sizeof(what)) <= 0) {
			trail_add(f, "autoconfig %s: %s", shown, what);
			continue;
		}
		struct setup_autoconfig ac;
		const char *err = NULL;
		int r = setup_autoconfig_parse(buf.data, buf.len, &ac, &err);
		if (r <= 0) {
			trail_add(f, "autoconfig %s: %s", shown,
			          r < 0 ? err : "no IMAP server in the document");
			continue;
		}
		trail_add(f, "autoconfig %s: found IMAP %s:%u%s", shown, ac.imap.host, ac.imap.port,
		          ac.has_smtp ? " and SMTP" : "");
		snprintf(f->provider_name, sizeof(f->provider_name), "%s",
		         ac.provider_name[0] != '\0' ? ac.provider_name : domain);
		f->imap = ac.imap;
		server_expand(&f->imap, email);
		f->has_imap = true;
		f->auth = ac.imap_auth != 0 ? ac.imap_auth : SETUP_AUTH_PASSWORD;
		set_source(f->imap_source, sizeof(f->imap_source), "autoconfig %s", shown);
		if (ac.has_smtp) {
			f->smtp = ac.smtp;
			server_expand(&f->smtp, email);
			f->has_smtp = true;
			memcpy(f->smtp_source, f->imap_source, sizeof(f->smtp_source));
		}
		found = 1;
	}
	free(buf.data);
	return found;
}

static bool host_ok(const char *h)
{
	if (h[0] == '\0' || h[0] == '-' || h[0] == '.')
		return false;
	for (const char *c = h; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return false;
	return true;
}

static void try_srv(const struct setup_options *opt, const char *email, const char *domain,
                    struct setup_found *f)
{
	static const struct {
		const char *prefix;
		bool imap;
		enum setup_security sec;
	} names[] = {
	    {"_imaps._tcp", true, SETUP_SEC_TLS},
	    {"_imap._tcp", true, SETUP_SEC_STARTTLS},
	    {"_submissions._tcp", false, SETUP_SEC_TLS},
	    {"_submission._tcp", false, SETUP_SEC_STARTTLS},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		bool *has = names[i].imap ? &f->has_imap : &f->has_smtp;
		if (*has)
			continue;
		char name[300];
		snprintf(name, sizeof(name), "%s.%s", names[i].prefix, domain);
		struct setup_srv srv;
		const char *err = NULL;
		int r = setup_dns_srv(opt, name, &srv, &err);
		if (r < 0) {
			trail_add(f, "SRV %s: %s", name, err);
			continue;
		}
		size_t tl = strlen(srv.target);
		if (r > 0 && tl > 0 && srv.target[tl - 1] == '.')
			srv.target[--tl] = '\0';
		if (r == 0 || !host_ok(srv.target)) {
			trail_add(f, "SRV %s: no record", name);
			continue;
		}
		trail_add(f, "SRV %s: %s port %u", name, srv.target, srv.port);
		struct setup_server *s = names[i].imap ? &f->imap : &f->smtp;
		memset(s, 0, sizeof(*s));
		memcpy(s->host, srv.target, tl + 1);
		s->port = srv.port;
		s->security = names[i].sec;
		snprintf(s->login, sizeof(s->login), "%s", email);
		*has = true;
		set_source(names[i].imap ? f->imap_source : f->smtp_source, sizeof(f->imap_source),
		           "DNS SRV record %s", name);
		if (names[i].imap) {
			f->auth = SETUP_AUTH_PASSWORD;
			snprintf(f->provider_name, sizeof(f->provider_name), "%s", domain);
		}
	}
}

static void try_guess(const struct setup_options *opt, const char *email, const char *domain,
                      struct setup_found *f)
{
	static const struct {
		const char *prefix;
		bool imap;
		unsigned port;
		enum setup_security sec;
	} cands[] = {
	    {"imap", true, 993, SETUP_SEC_TLS},       {"mail", true, 993, SETUP_SEC_TLS},
	    {"imap", true, 143, SETUP_SEC_STARTTLS},  {"smtp", false, 465, SETUP_SEC_TLS},
	    {"mail", false, 465, SETUP_SEC_TLS},      {"smtp", false, 587, SETUP_SEC_STARTTLS},
	    {"mail", false, 587, SETUP_SEC_STARTTLS},
	};
	for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		bool *has = cands[i].imap ? &f->has_imap : &f->has_smtp;
		if (*has)
			continue;
		char host[300], port[8];
		unsigned p = cands[i].port;
		if (opt->guess_address != NULL) {
			/* Tests: only the implicit-TLS ports, mapped. */
			if (p != 993 && p != 465)
				continue;
			p = p == 993 ? opt->guess_imap_port : opt->guess_smtp_port;
		}
		int w = snprintf(host, sizeof(host), "%s.%s", cands[i].prefix, domain);
		if (w < 0 || (size_t)w >= 256)
			continue;
		snprintf(port, sizeof(port), "%u", p);
		struct conn *c = NULL;
		const char *err = NULL;
		const char *addr = opt->guess_address != NULL ? opt->guess_address : host;
		int to = timeout_ms(opt) < 5000 ? timeout_ms(opt) : 5000;
		if (conn_connect(addr, port, to, &c, &err) < 0) {
			trail_add(f, "guess %s port %u: %s", host, cands[i].port, err);
			continue;
		}
		conn_free(&c);
		trail_add(f, "guess %s port %u: accepts connections", host, cands[i].port);
		struct setup_server *s = cands[i].imap ? &f->imap : &f->smtp;
		memset(s, 0, sizeof(*s));
		memcpy(s->host, host, strlen(host) + 1);
		s->port = opt->guess_address != NULL ? p : cands[i].port;
		s->security = cands[i].sec;
		snprintf(s->login, sizeof(s->login), "%s", email);
		*has = true;
		set_source(
		    cands[i].imap ? f->imap_source : f->smtp_source, sizeof(f->imap_source),
		    "guess: %s port %u accepted a connection (nothing else is known about it)",
		    host, s->port);
		if (cands[i].imap) {
			f->auth = SETUP_AUTH_PASSWORD;
			snprintf(f->provider_name, sizeof(f->provider_name), "%s", domain);
		}
	}
}

int setup_discover(const struct setup_profiles *p, const char *email,
                   const struct setup_options *opt, struct setup_found *found_r,
                   const char **error_r)
{
	const char *domain;
	struct setup_found *f = found_r;
	memset(f, 0, sizeof(*f));
	if (!setup_email_split(email, &domain)) {
		*error_r = "not an email address (local@domain)";
		return -1;
	}
	const struct setup_profile *prof = setup_profile_by_domain(p, domain);
	if (prof != NULL) {
		trail_add(f, "profile: %s is a %s domain", domain, prof->name);
		use_profile(f, prof, email, "the address's domain");
		return 0;
	}
	trail_add(f, "profile: no built-in profile lists %s", domain);
	int ac = try_autoconfig(opt, email, domain, f);
	if (ac < 0) {
		*error_r = "out of memory";
		return -1;
	}
	if (!f->has_imap) {
		char mx[256];
		const char *err = NULL;
		int r = setup_dns_mx(opt, domain, mx, sizeof(mx), &err);
		if (r < 0)
			trail_add(f, "MX %s: %s", domain, err);
		else if (r == 0)
			trail_add(f, "MX %s: no record", domain);
		else if ((prof = setup_profile_by_mx(p, mx)) != NULL) {
			trail_add(f, "MX %s: %s, which is %s", domain, mx, prof->name);
			char why[300];
			snprintf(why, sizeof(why), "mail for %s goes to %s", domain, mx);
			use_profile(f, prof, email, why);
			return 0;
		} else
			trail_add(f, "MX %s: %s (no profile knows it)", domain, mx);
	}
	if (!f->has_imap || !f->has_smtp)
		try_srv(opt, email, domain, f);
	if (!f->has_imap || !f->has_smtp)
		try_guess(opt, email, domain, f);
	if (!f->has_imap) {
		*error_r = "no IMAP server found for this address: give --imap and --login";
		return -1;
	}
	return 0;
}
