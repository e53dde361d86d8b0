/* Provider profiles: share/providers.json, parsed with jansson, and the small
 * helpers every setup path shares (placeholders, URLs, address checks). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "setup.h"

/* The JSON text built into the binary (CMake makes providers-data.c). */
extern const unsigned char mk_providers_json[];
extern const size_t mk_providers_json_len;

#define SETUP_MAX_PROFILES 64

struct setup_profiles {
	struct setup_profile *v;
	size_t n;
};

static int copy_str(json_t *o, const char *key, char *out, size_t size, bool required)
{
	json_t *v = json_object_get(o, key);
	if (v == NULL && !required) {
		out[0] = '\0';
		return 0;
	}
	if (!json_is_string(v) || json_string_length(v) >= size)
		return -1;
	if (required && json_string_length(v) == 0)
		return -1;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return strlen(out) == json_string_length(v) ? 0 : -1; /* no NUL inside */
}

static int parse_security(const char *s, enum setup_security *r)
{
	if (strcmp(s, "tls") == 0)
		*r = SETUP_SEC_TLS;
	else if (strcmp(s, "starttls") == 0)
		*r = SETUP_SEC_STARTTLS;
	else
		return -1; /* profiles never offer clear text */
	return 0;
}

static int parse_server(json_t *o, const char *login, struct setup_server *s)
{
	char sec[16];
	json_t *port = json_object_get(o, "port");
	if (!json_is_object(o) || copy_str(o, "host", s->host, sizeof(s->host), true) < 0 ||
	    !json_is_integer(port) || json_integer_value(port) <= 0 ||
	    json_integer_value(port) > 65535 ||
	    copy_str(o, "security", sec, sizeof(sec), true) < 0 ||
	    parse_security(sec, &s->security) < 0)
		return -1;
	s->port = (unsigned)json_integer_value(port);
	if (strlen(login) >= sizeof(s->login))
		return -1;
	memcpy(s->login, login, strlen(login) + 1);
	return 0;
}

static int parse_list(json_t *a, char (*out)[64], size_t max, size_t *n_r)
{
	size_t i;
	json_t *v;
	if (!json_is_array(a) || json_array_size(a) > max)
		return -1;
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= 64)
			return -1;
		memcpy(out[i], json_string_value(v), json_string_length(v) + 1);
	}
	*n_r = json_array_size(a);
	return 0;
}

static int parse_auth(json_t *a, unsigned *auth_r)
{
	size_t i;
	json_t *v;
	unsigned auth = 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return -1;
	json_array_foreach(a, i, v)
	{
		const char *s = json_string_value(v);
		if (s == NULL)
			return -1;
		if (strcmp(s, "password") == 0)
			auth |= SETUP_AUTH_PASSWORD;
		else if (strcmp(s, "app-password") == 0)
			auth |= SETUP_AUTH_APP_PASSWORD;
		else if (strcmp(s, "oauth2") == 0)
			auth |= SETUP_AUTH_OAUTH2;
		else
			return -1;
	}
	*auth_r = auth;
	return 0;
}

static bool https_url(const char *s)
{
	return strncmp(s, "https://", 8) == 0 && s[8] != '\0';
}

static int parse_oauth(json_t *o, struct setup_oauth *oa)
{
	size_t i;
	json_t *v, *scopes = json_object_get(o, "scopes");
	if (!json_is_object(o) ||
	    copy_str(o, "provider", oa->provider, sizeof(oa->provider), true) < 0 ||
	    copy_str(o, "authorization_endpoint", oa->authorization_endpoint,
	             sizeof(oa->authorization_endpoint), true) < 0 ||
	    copy_str(o, "token_endpoint", oa->token_endpoint, sizeof(oa->token_endpoint), true) <
	        0 ||
	    copy_str(o, "device_endpoint", oa->device_endpoint, sizeof(oa->device_endpoint),
	             false) < 0 ||
	    copy_str(o, "revocation_endpoint", oa->revocation_endpoint,
	             sizeof(oa->revocation_endpoint), false) < 0 ||
	    !https_url(oa->authorization_endpoint) || !https_url(oa->token_endpoint) ||
	    (oa->device_endpoint[0] != '\0' && !https_url(oa->device_endpoint)) ||
	    (oa->revocation_endpoint[0] != '\0' && !https_url(oa->revocation_endpoint)) ||
	    !json_is_array(scopes) || json_array_size(scopes) == 0)
		return -1;
	for (const char *c = oa->provider; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
			return -1; /* it names configuration keys oauth.<provider>.* */
	oa->scopes[0] = '\0';
	size_t len = 0;
	json_array_foreach(scopes, i, v)
	{
		const char *s = json_string_value(v);
		if (s == NULL || s[0] == '\0' || strchr(s, ' ') != NULL)
			return -1;
		int w = snprintf(oa->scopes + len, sizeof(oa->scopes) - len, "%s%s",
		                 i > 0 ? " " : "", s);
		if (w < 0 || (size_t)w >= sizeof(oa->scopes) - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

static int parse_quirks(json_t *o, struct setup_quirks *q)
{
	json_t *sent = json_object_get(o, "server_files_sent");
	json_t *conns = json_object_get(o, "max_connections");
	json_t *daily = json_object_get(o, "daily_download_bytes");
	json_t *folders = json_object_get(o, "special_folders");
	if (!json_is_object(o) || !json_is_boolean(sent) || !json_is_integer(conns) ||
	    json_integer_value(conns) <= 0 || json_integer_value(conns) > 1000 ||
	    !json_is_integer(daily) || json_integer_value(daily) < 0 || !json_is_object(folders) ||
	    copy_str(o, "notes", q->notes, sizeof(q->notes), true) < 0)
		return -1;
	q->server_files_sent = json_is_true(sent);
	q->max_connections = (unsigned)json_integer_value(conns);
	q->daily_download_bytes = (uint64_t)json_integer_value(daily);
	const char *role;
	json_t *name;
	size_t len = 0;
	q->special_folders[0] = '\0';
	json_object_foreach(folders, role, name)
	{
		if (!json_is_string(name) || json_string_length(name) == 0)
			return -1;
		int w = snprintf(q->special_folders + len, sizeof(q->special_folders) - len,
		                 "%s%s=%s", len > 0 ? "; " : "", role, json_string_value(name));
		if (w < 0 || (size_t)w >= sizeof(q->special_folders) - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

/* One profile; -1 with *what_r naming the field that is missing or wrong. */
static int parse_profile(json_t *o, struct setup_profile *p, const char **what_r)
{
	char login[321];
	memset(p, 0, sizeof(*p));
#define NEED(cond, what)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			*what_r = what;                                                            \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)
	NEED(json_is_object(o), "a profile is not an object");
	NEED(copy_str(o, "id", p->id, sizeof(p->id), true) == 0, "id");
	NEED(copy_str(o, "name", p->name, sizeof(p->name), true) == 0, "name");
	NEED(parse_list(json_object_get(o, "domains"), p->domains, SETUP_MAX_DOMAINS,
	                &p->n_domains) == 0,
	     "domains");
	NEED(json_object_get(o, "mx") == NULL ||
	         parse_list(json_object_get(o, "mx"), p->mx, SETUP_MAX_DOMAINS, &p->n_mx) == 0,
	     "mx");
	NEED(p->n_domains > 0 || p->n_mx > 0 || strcmp(p->id, "generic") == 0,
	     "domains or mx (how is the provider recognised?)");
	NEED(copy_str(o, "login", login, sizeof(login), true) == 0, "login");
	NEED(parse_server(json_object_get(o, "imap"), login, &p->imap) == 0, "imap");
	NEED(parse_server(json_object_get(o, "smtp"), login, &p->smtp) == 0, "smtp");
	NEED(parse_auth(json_object_get(o, "auth"), &p->auth) == 0, "auth");
	if (p->auth & SETUP_AUTH_OAUTH2)
		NEED(parse_oauth(json_object_get(o, "oauth"), &p->oauth) == 0, "oauth");
	else
		NEED(json_object_get(o, "oauth") == NULL, "oauth given without oauth2 in auth");
	NEED(parse_quirks(json_object_get(o, "quirks"), &p->quirks) == 0, "quirks");
#undef NEED
	return 0;
}

int setup_profiles_parse(const char *json, size_t len, struct setup_profiles **profiles_r,
                         const char **error_r)
{
	json_error_t jerr;
	json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		*error_r = "provider profiles: not valid JSON";
		return -1;
	}
	json_t *list = json_object_get(root, "providers");
	json_t *format = json_object_get(root, "format");
	if (!json_is_integer(format) || json_integer_value(format) != 1 || !json_is_array(list) ||
	    json_array_size(list) == 0 || json_array_size(list) > SETUP_MAX_PROFILES) {
		json_decref(root);
		*error_r = "provider profiles: need format 1 and a list of 1-64 providers";
		return -1;
	}
	struct setup_profiles *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->v = calloc(json_array_size(list), sizeof(*p->v))) == NULL) {
		free(p);
		json_decref(root);
		*error_r = "out of memory";
		return -1;
	}
	size_t i;
	json_t *o;
	json_array_foreach(list, i, o)
	{
		const char *what = NULL;
		if (parse_profile(o, &p->v[i], &what) < 0) {
			/* Profiles are our own data: the test names which one. */
			*error_r = what;
			setup_profiles_free(&p);
			json_decref(root);
			return -1;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(p->v[k].id, p->v[i].id) == 0) {
				*error_r = "provider profiles: an id appears twice";
				setup_profiles_free(&p);
				json_decref(root);
				return -1;
			}
		p->n = i + 1;
	}
	json_decref(root);
	*profiles_r = p;
	return 0;
}

int setup_profiles_builtin(struct setup_profiles **profiles_r, const char **error_r)
{
	return setup_profiles_parse((const char *)mk_providers_json, mk_providers_json_len,
	                            profiles_r, error_r);
}

void setup_profiles_free(struct setup_profiles **profiles)
{
	if (*profiles == NULL)
		return;
	free((*profiles)->v);
	free(*profiles);
	*profiles = NULL;
}

size_t setup_profiles_count(const struct setup_profiles *p)
{
	return p->n;
}

const struct setup_profile *setup_profiles_get(const struct setup_profiles *p, size_t i)
{
	return i < p->n ? &p->v[i] : NULL;
}

const struct setup_profile *setup_profile_by_id(const struct setup_profiles *p, const char *id)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].id, id) == 0)
			return &p->v[i];
	return NULL;
}

const struct setup_profile *setup_profile_by_domain(const struct setup_profiles *p,
                                                    const char *domain)
{
	for (size_t i = 0; i < p->n; i++)
		for (size_t k = 0; k < p->v[i].n_domains; k++)
			if (strcasecmp(p->v[i].domains[k], domain) == 0)
				return &p->v[i];
	return NULL;
}

static bool mx_matches(const char *pattern, const char *host)
{
	size_t hl = strlen(host);
	while (hl > 0 && host[hl - 1] == '.')
		hl--; /* DNS names may end in the root's dot */
	if (pattern[0] != '.')
		return strlen(pattern) == hl && strncasecmp(pattern, host, hl) == 0;
	size_t pl = strlen(pattern);
	return hl > pl && strncasecmp(host + hl - pl, pattern, pl) == 0;
}

const struct setup_profile *setup_profile_by_mx(const struct setup_profiles *p, const char *mx_host)
{
	for (size_t i = 0; i < p->n; i++)
		for (size_t k = 0; k < p->v[i].n_mx; k++)
			if (mx_matches(p->v[i].mx[k], mx_host))
				return &p->v[i];
	return NULL;
}

const char *setup_security_name(enum setup_security s)
{
	switch (s) {
	case SETUP_SEC_TLS:
		return "TLS";
	case SETUP_SEC_STARTTLS:
		return "STARTTLS";
	case SETUP_SEC_PLAIN:
		break;
	}
	return "clear text";
}

void setup_auth_names(unsigned auth, char *out, size_t size)
{
	snprintf(out, size, "%s%s%s%s%s", (auth & SETUP_AUTH_OAUTH2) ? "oauth2" : "",
	         (auth & SETUP_AUTH_OAUTH2) && (auth & ~SETUP_AUTH_OAUTH2) ? ", " : "",
	         (auth & SETUP_AUTH_APP_PASSWORD) ? "app-password" : "",
	         (auth & SETUP_AUTH_APP_PASSWORD) && (auth & SETUP_AUTH_PASSWORD) ? ", " : "",
	         (auth & SETUP_AUTH_PASSWORD) ? "password" : "");
}

bool setup_email_split(const char *email, const char **domain_r)
{
	size_t len = strlen(email);
	const char *at = strrchr(email, '@');
	if (len == 0 || len > 320 || at == NULL || at == email || at[1] == '\0' ||
	    strlen(at + 1) > 253)
		return false;
	for (const char *c = email; *c != '\0'; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return false;
	for (const char *c = at + 1; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '-' || *c == '.'))
			return false; /* it becomes a host name and a URL part */
	if (at[1] == '.' || at[1] == '-' || strstr(at, "..") != NULL)
		return false;
	*domain_r = at + 1;
	return true;
}

int setup_expand(const char *templ, const char *email, char *out, size_t size)
{
	const char *at = strrchr(email, '@');
	size_t local_len = at != NULL ? (size_t)(at - email) : strlen(email);
	const char *domain = at != NULL ? at + 1 : "";
	static const char *const names[] = {"%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%"};
	size_t len = 0;
	while (*templ != '\0') {
		const char *rep = NULL;
		size_t rep_len = 0, skip = 1;
		for (size_t k = 0; k < 3; k++)
			if (strncmp(templ, names[k], strlen(names[k])) == 0) {
				rep = k == 0 ? email : k == 1 ? email : domain;
				rep_len = k == 0   ? strlen(email)
				          : k == 1 ? local_len
				                   : strlen(domain);
				skip = strlen(names[k]);
			}
		if (rep == NULL) {
			rep = templ;
			rep_len = 1;
		}
		if (len + rep_len + 1 > size)
			return -1;
		memcpy(out + len, rep, rep_len);
		len += rep_len;
		templ += skip;
	}
	out[len] = '\0';
	return 0;
}

static int server_url(const struct setup_server *s, const char *tls, const char *starttls,
                      char *out, size_t size)
{
	if (s->security == SETUP_SEC_PLAIN || s->host[0] == '\0' || s->port == 0 || s->port > 65535)
		return -1;
	int w = snprintf(out, size, "%s://%s:%u", s->security == SETUP_SEC_TLS ? tls : starttls,
	                 s->host, s->port);
	return w < 0 || (size_t)w >= size ? -1 : 0;
}

int setup_imap_url(const struct setup_server *s, char *out, size_t size)
{
	return server_url(s, "imaps", "imap", out, size);
}

int setup_smtp_url(const struct setup_server *s, char *out, size_t size)
{
	return server_url(s, "submissions", "smtp", out, size);
}
