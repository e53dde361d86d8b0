/* serve's settings in DIR/mailkeep.conf (hub-settings.h). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub-settings.h"

#define MIB (1024ull * 1024)
/* A request body may be 10 MiB (serve's SERVE_MAX_REQUEST); the memory for
 * bodies must hold more than one. */
#define BODY_MEMORY_MIN (10 * MIB)
#define BODY_MEMORY_MAX (1ull << 40)

static _Thread_local char settings_error[HUB_SERVE_PATH_MAX + 512];

static int fail(const char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(settings_error, sizeof(settings_error), fmt, ap);
	va_end(ap);
	*error_r = settings_error;
	return -1;
}

enum kind { KIND_TEXT, KIND_UINT, KIND_BYTES, KIND_ONOFF };

struct setting {
	const char *key;
	enum kind kind;
	size_t offset;
	size_t size;                 /* KIND_TEXT: the buffer's size */
	unsigned long long min, max; /* KIND_UINT, KIND_BYTES */
	const char *what;            /* what the value must be */
};

#define TEXT(name, what)                                                                           \
	{                                                                                          \
#name, KIND_TEXT, offsetof(struct hub_serve_settings, name),                       \
		    sizeof(((struct hub_serve_settings *)0)->name), 0, 0, what                     \
	}
#define UINT(name, lo, hi, what)                                                                   \
	{                                                                                          \
#name, KIND_UINT, offsetof(struct hub_serve_settings, name), 0, lo, hi, what       \
	}

static const struct setting settings[] = {
    TEXT(listen, "ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"),
    TEXT(public_url, "the http:// or https:// URL devices use"),
    TEXT(tls_cert, "the path of a PEM certificate file"),
    TEXT(tls_key, "the path of a PEM private key file"),
    UINT(sync_interval, 0, 604800, "0 to 604800 seconds (0: no scheduled syncs)"),
    TEXT(access_log, "the path of a file to append to"),
    TEXT(trusted_proxy, "the reverse proxy's IP address"),
    UINT(max_connections, 1, 4096, "1 to 4096 connections"),
    UINT(max_connections_per_address, 1, 4096, "1 to 4096 connections"),
    UINT(header_timeout, 1, 3600, "1 to 3600 seconds"),
    {"max_body_memory", KIND_BYTES, offsetof(struct hub_serve_settings, max_body_memory), 0,
     BODY_MEMORY_MIN + 1, BODY_MEMORY_MAX,
     "more than 10M and at most 1T bytes (a number, optionally with K, M, G or T)"},
    UINT(no_replay, 0, 1, "0 or 1 (1: device changes wait for the next sync)"),
    TEXT(web_root, "the directory of the built web app (scripts/build-web.sh)"),
    UINT(web_session_days, 1, 3650, "1 to 3650 days"),
    UINT(web_session_idle_days, 1, 3650, "1 to 3650 days"),
    {"push", KIND_ONOFF, offsetof(struct hub_serve_settings, push), 0, 0, 1,
     "on or off (off: no provider push; every account is polled every sync_interval)"},
    UINT(full_sync_interval, 1, 2592000,
         "1 to 2592000 seconds (a full sync of each account push watches)"),
    UINT(push_sweep_interval, 10, 86400, "10 to 86400 seconds"),
    UINT(push_connect_rate, 1, 10000, "1 to 10000 connects a second"),
    UINT(push_idle_restart, 10, 1740, "10 to 1740 seconds (RFC 2177: under 29 minutes)"),
    {"push_notify", KIND_ONOFF, offsetof(struct hub_serve_settings, push_notify), 0, 0, 1,
     "on or off (off: IDLE and STATUS sweeps even where the server offers NOTIFY, so that "
     "Dovecot can hibernate idle connections)"},
    UINT(sync_keep_seconds, 0, 3600,
         "0 to 3600 seconds (0: every sync logs in anew and out at its end)"),
    UINT(sync_keep_max, 0, 4096, "0 to 4096 sessions (0: none kept)"),
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

void hub_serve_settings_default(struct hub_serve_settings *set)
{
	memset(set, 0, sizeof(*set));
	snprintf(set->listen, sizeof(set->listen), "127.0.0.1:8080");
	set->sync_interval = 300;
	set->max_connections = 128;
	set->max_connections_per_address = 16;
	set->header_timeout = 10;
	set->max_body_memory = 64 * MIB;
	set->web_session_days = 30;
	set->web_session_idle_days = 14;
	set->push = 1;
	set->full_sync_interval = 86400;
	set->push_sweep_interval = 300;
	set->push_connect_rate = 50;
	set->push_idle_restart = 1680;
	set->push_notify = 1;
	set->sync_keep_seconds = 120;
	set->sync_keep_max = 64;
}

static const struct setting *setting_find(const char *key)
{
	for (size_t i = 0; i < N_SETTINGS; i++)
		if (strcmp(settings[i].key, key) == 0)
			return &settings[i];
	return NULL;
}

bool hub_serve_setting_known(const char *key)
{
	return setting_find(key) != NULL;
}

/* A decimal number, with an optional K/M/G/T (binary) suffix if bytes. */
static bool parse_number(const char *value, bool bytes, unsigned long long *n_r)
{
	char *end;
	if (value[0] < '0' || value[0] > '9')
		return false;
	errno = 0;
	unsigned long long n = strtoull(value, &end, 10);
	if (errno != 0)
		return false;
	if (bytes && *end != '\0' && end[1] == '\0') {
		static const char units[] = "KMGT";
		const char *u = strchr(units, end[0] & ~0x20);
		if (u == NULL)
			return false;
		for (const char *p = units; p <= u; p++) {
			if (n > ULLONG_MAX / 1024)
				return false;
			n *= 1024;
		}
		end++;
	}
	if (*end != '\0')
		return false;
	*n_r = n;
	return true;
}

/* The value's own check; "" when good, else what it must be. */
static const char *value_check(const struct setting *s, const char *value)
{
	if (strcmp(s->key, "listen") == 0) {
		const char *colon = strrchr(value, ':');
		char *end;
		if (colon == NULL || colon == value || colon[1] == '\0')
			return s->what;
		errno = 0;
		long port = strtol(colon + 1, &end, 10);
		if (errno != 0 || *end != '\0' || port < 0 || port > 65535 || colon - value >= 64)
			return s->what;
	} else if (strcmp(s->key, "public_url") == 0) {
		if (strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0)
			return s->what;
	}
	return "";
}

int hub_serve_setting_set(struct hub_serve_settings *set, const char *key, const char *value,
                          const char **error_r)
{
	const struct setting *s = setting_find(key);
	if (s == NULL)
		return fail(error_r, "unknown serve setting '%s'", key);
	char *field = (char *)set + s->offset;
	unsigned long long n;
	switch (s->kind) {
	case KIND_TEXT:
		if (value[0] == '\0' || strlen(value) >= s->size ||
		    value_check(s, value)[0] != '\0')
			return fail(error_r, "bad %s '%s': use %s", key, value, s->what);
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case KIND_UINT:
		if (!parse_number(value, false, &n) || n < s->min || n > s->max)
			return fail(error_r, "bad %s '%s': use %s", key, value, s->what);
		*(unsigned *)(void *)field = (unsigned)n;
		return 0;
	case KIND_ONOFF:
		if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
			return fail(error_r, "bad %s '%s': use %s", key, value, s->what);
		*(unsigned *)(void *)field = strcmp(value, "on") == 0;
		return 0;
	case KIND_BYTES:
		if (!parse_number(value, true, &n) || n < s->min || n > s->max || n > SIZE_MAX)
			return fail(error_r, "bad %s '%s': use %s", key, value, s->what);
		*(size_t *)(void *)field = (size_t)n;
		return 0;
	}
	return fail(error_r, "unknown serve setting '%s'", key);
}

int hub_serve_settings_read(const char *dir, struct hub_serve_settings *set, const char **error_r)
{
	char path[PATH_MAX], line[HUB_SERVE_PATH_MAX + 256];
	bool seen[N_SETTINGS] = {false};
	unsigned seen_line[N_SETTINGS] = {0};
	hub_serve_settings_default(set);
	int n = snprintf(path, sizeof(path), "%s/mailkeep.conf", dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return fail(error_r, "data directory path too long");
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? 0
		                       : fail(error_r, "cannot read %s: %s", path, strerror(errno));
	unsigned lineno = 0;
	int ret = 0;
	while (ret == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
			ret = fail(error_r, "%s:%u: line too long", path, lineno);
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		char *p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (eq == NULL) {
			ret =
			    fail(error_r, "%s:%u: expected 'key = value' (a '#' starts a comment)",
			         path, lineno);
			break;
		}
		char *key_end = eq;
		while (key_end > p && (key_end[-1] == ' ' || key_end[-1] == '\t'))
			key_end--;
		*key_end = '\0';
		char *value = eq + 1 + strspn(eq + 1, " \t");
		size_t vlen = strlen(value);
		while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
			value[--vlen] = '\0';
		const struct setting *s = setting_find(p);
		if (s == NULL)
			continue; /* the hub's own, or unknown: the hub's reader says so */
		size_t i = (size_t)(s - settings);
		if (seen[i]) {
			ret = fail(error_r, "%s:%u: %s is already set on line %u; keep one of them",
			           path, lineno, p, seen_line[i]);
			break;
		}
		seen[i] = true;
		seen_line[i] = lineno;
		const char *err;
		if (hub_serve_setting_set(set, p, value, &err) < 0) {
			char copy[sizeof(settings_error)];
			snprintf(copy, sizeof(copy), "%s", err);
			ret = fail(error_r, "%s:%u: %s", path, lineno, copy);
		}
	}
	fclose(f);
	if (ret == 0 && (set->tls_cert[0] == '\0') != (set->tls_key[0] == '\0'))
		ret = fail(error_r, "%s: tls_cert and tls_key go together: set both or neither",
		           path);
	return ret;
}
