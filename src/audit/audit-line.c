/* The audit log's line format: formatting with the hash, and the strict
 * parser (sans-I/O, fuzzed by fuzz/fuzz-audit.c). The format is defined in
 * audit.h. */
#include "audit/audit-private.h"

#include <sodium.h>
#include <string.h>

static const char *const event_names[AUDIT_EVENT_COUNT] = {
    [AUDIT_CREDENTIAL_DECRYPT] = "credential.decrypt",
    [AUDIT_PROVIDER_LOGIN] = "provider.login",
    [AUDIT_CONSENT_GIVEN] = "consent.given",
    [AUDIT_ACCOUNT_ADDED] = "account.added",
    [AUDIT_ACCOUNT_REMOVED] = "account.removed",
    [AUDIT_LIFECYCLE_WARNING] = "lifecycle.warning",
    [AUDIT_LIFECYCLE_PURGE] = "lifecycle.purge",
    [AUDIT_USER_SIGNIN] = "user.signin",
    [AUDIT_USER_CREATED] = "user.created",
    [AUDIT_DEVICE_ADDED] = "device.added",
    [AUDIT_DEVICE_REVOKED] = "device.revoked",
    [AUDIT_API_CHANGE] = "api.change",
    [AUDIT_ACCOUNT_CHANGED] = "account.changed",
    [AUDIT_OAUTH_REFRESH] = "oauth.refresh",
    [AUDIT_OAUTH_SIGNIN] = "oauth.signin",
    [AUDIT_LEASE_UNLOCKED] = "lease.unlocked",
    [AUDIT_LEASE_WIPED] = "lease.wiped",
    [AUDIT_WEB_SIGNIN] = "web.signin",
    [AUDIT_WEB_SIGNOUT] = "web.signout",
    [AUDIT_USER_PASSWORD] = "user.password",
};

/* Detail keys that name a secret are refused outright. */
static const char *const secret_key_parts[] = {"pass", "secret", "token", "cookie", "key"};

static const char hex_digits[] = "0123456789abcdef";

const char *audit_event_name(enum audit_event event)
{
	if ((unsigned)event >= AUDIT_EVENT_COUNT)
		return NULL;
	return event_names[event];
}

int audit_event_from_name(const char *name, size_t len, enum audit_event *event_r)
{
	for (unsigned i = 0; i < AUDIT_EVENT_COUNT; i++) {
		if (strlen(event_names[i]) == len && memcmp(event_names[i], name, len) == 0) {
			*event_r = (enum audit_event)i;
			return 0;
		}
	}
	return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), and its inverse. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y_r, unsigned *m_r, unsigned *d_r)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;
	*y_r = (int64_t)yoe + era * 400 + (m <= 2);
	*m_r = m;
	*d_r = d;
}

/* Seconds of 0000-01-01T00:00:00Z and of 10000-01-01T00:00:00Z. */
#define TIME_MIN (-62167219200LL)
#define TIME_END (253402300800LL)

int audit_format_time(int64_t t, char out[21])
{
	if (t < TIME_MIN || t >= TIME_END)
		return -1;
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t secs = t - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	unsigned v[6] = {
	    (unsigned)y,          m, d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
	    (unsigned)(secs % 60)};
	/* Fixed layout, digit by digit: no snprintf truncation to check. */
	static const char layout[] = "YYYY-MM-DDTHH:MM:SSZ";
	memcpy(out, layout, sizeof(layout));
	unsigned pos[6] = {3, 6, 9, 12, 15, 18}, width[6] = {4, 2, 2, 2, 2, 2};
	for (unsigned i = 0; i < 6; i++) {
		unsigned x = v[i];
		for (unsigned k = 0; k < width[i]; k++) {
			out[pos[i] - k] = (char)('0' + x % 10);
			x /= 10;
		}
	}
	return 0;
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SSZ" (20 bytes) with every field in range. */
static int parse_time(const char *s, int64_t *t_r)
{
	static const char layout[] = "YYYY-MM-DDTHH:MM:SSZ";
	unsigned v[6] = {0}, field = 0;
	for (unsigned i = 0; i < 20; i++) {
		char c = s[i];
		if (layout[i] >= 'A' && layout[i] <= 'Y' && layout[i] != 'T') {
			if (c < '0' || c > '9')
				return -1;
			v[field] = v[field] * 10 + (unsigned)(c - '0');
			if (i + 1 < 20 && layout[i + 1] != layout[i])
				field++;
		} else if (c != layout[i]) {
			return -1;
		}
	}
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[3] > 23 || v[4] > 59 || v[5] > 59)
		return -1;
	unsigned dim = mdays[v[1] - 1] + (v[1] == 2 && is_leap(v[0]));
	if (v[2] > dim)
		return -1;
	*t_r = days_from_civil(v[0], v[1], v[2]) * 86400 + v[3] * 3600 + v[4] * 60 + v[5];
	return 0;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		size_t more;
		unsigned char lo = 0x80, hi = 0xbf;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		} else {
			return false;
		}
		if (more > n - i - 1)
			return false;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= more; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return false;
		i += more + 1;
	}
	return true;
}

static bool is_hex_hash(const char *s)
{
	for (size_t i = 0; i < AUDIT_HASH_HEX_LEN; i++)
		if (s[i] == '\0' || strchr(hex_digits, s[i]) == NULL)
			return false;
	return s[AUDIT_HASH_HEX_LEN] == '\0';
}

static bool account_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || c == '_';
}

/* Every rule of the format that is not syntax; shared by the formatter and
 * the parser so that both accept exactly the same entries. */
static int validate_entry(const struct audit_entry *e, const char **error_r)
{
	if ((unsigned)e->event >= AUDIT_EVENT_COUNT) {
		*error_r = "unknown event";
		return -1;
	}
	if (e->seq == 0) {
		*error_r = "seq must start at 1";
		return -1;
	}
	if (e->time < TIME_MIN || e->time >= TIME_END) {
		*error_r = "time outside years 0000-9999";
		return -1;
	}
	const char *account = e->account != NULL ? e->account : "";
	size_t alen = strnlen(account, AUDIT_MAX_ACCOUNT_LEN + 1);
	if (alen > AUDIT_MAX_ACCOUNT_LEN) {
		*error_r = "account id too long";
		return -1;
	}
	for (size_t i = 0; i < alen; i++) {
		if (!account_char(account[i])) {
			*error_r = "account id has a character outside [A-Za-z0-9._-]";
			return -1;
		}
	}
	if (e->n_details > AUDIT_MAX_DETAILS) {
		*error_r = "too many detail pairs";
		return -1;
	}
	for (size_t i = 0; i < e->n_details; i++) {
		const char *key = e->details[i].key, *value = e->details[i].value;
		if (key == NULL || value == NULL) {
			*error_r = "detail key or value missing";
			return -1;
		}
		size_t klen = strnlen(key, AUDIT_MAX_KEY_LEN + 1);
		if (klen == 0 || klen > AUDIT_MAX_KEY_LEN) {
			*error_r = "detail key empty or too long";
			return -1;
		}
		for (size_t k = 0; k < klen; k++) {
			if (!key_char(key[k])) {
				*error_r = "detail key has a character outside [a-z_]";
				return -1;
			}
		}
		for (size_t k = 0; k < sizeof(secret_key_parts) / sizeof(secret_key_parts[0]);
		     k++) {
			if (strstr(key, secret_key_parts[k]) != NULL) {
				*error_r =
				    "detail key names a secret (secrets never go to the audit log)";
				return -1;
			}
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(e->details[j].key, key) == 0) {
				*error_r = "duplicate detail key";
				return -1;
			}
		}
		size_t vlen = strnlen(value, AUDIT_MAX_VALUE_SIZE + 1);
		if (vlen > AUDIT_MAX_VALUE_SIZE) {
			*error_r = "detail value too long (free-form text is bounded)";
			return -1;
		}
		if (!utf8_valid((const unsigned char *)value, vlen)) {
			*error_r = "detail value is not valid UTF-8";
			return -1;
		}
	}
	if (!is_hex_hash(e->prev)) {
		*error_r = "prev is not a lowercase hex SHA-256";
		return -1;
	}
	return 0;
}

/* A bounded output: writes past cap are dropped and remembered. */
struct out {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->overflow || n > o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_escaped(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"') {
			put(o, "\\\"", 2);
		} else if (c == '\\') {
			put(o, "\\\\", 2);
		} else if (c < 0x20 || c == 0x7f) {
			char esc[6] = {'\\', 'u', '0', '0', hex_digits[c >> 4], hex_digits[c & 15]};
			put(o, esc, sizeof(esc));
		} else {
			put(o, s, 1);
		}
	}
}

static void hash_hex(const char *data, size_t len, char hex_r[AUDIT_HASH_HEX_SIZE])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)data, len);
	for (size_t i = 0; i < sizeof(h); i++) {
		hex_r[2 * i] = hex_digits[h[i] >> 4];
		hex_r[2 * i + 1] = hex_digits[h[i] & 15];
	}
	hex_r[AUDIT_HASH_HEX_LEN] = '\0';
}

int audit_format_line(const struct audit_entry *e, char *line, size_t line_size, size_t *len_r,
                      char hash_r[AUDIT_HASH_HEX_SIZE], const char **error_r)
{
	if (validate_entry(e, error_r) < 0)
		return -1;
	struct out o = {.p = line,
	                .cap = line_size < AUDIT_MAX_ENTRY_SIZE ? line_size : AUDIT_MAX_ENTRY_SIZE};
	char num[24], when[21];
	size_t n = sizeof(num);
	uint64_t seq = e->seq;
	do {
		num[--n] = (char)('0' + seq % 10);
		seq /= 10;
	} while (seq != 0);
	(void)audit_format_time(e->time, when); /* range checked above */

	put_str(&o, "{\"seq\":");
	put(&o, num + n, sizeof(num) - n);
	put_str(&o, ",\"time\":\"");
	put(&o, when, 20);
	put_str(&o, "\",\"event\":\"");
	put_str(&o, event_names[e->event]);
	put_str(&o, "\",\"account\":\"");
	put_str(&o, e->account != NULL ? e->account : "");
	put_str(&o, "\",\"detail\":{");
	for (size_t i = 0; i < e->n_details; i++) {
		put_str(&o, i == 0 ? "\"" : ",\"");
		put_str(&o, e->details[i].key);
		put_str(&o, "\":\"");
		put_escaped(&o, e->details[i].value);
		put_str(&o, "\"");
	}
	put_str(&o, "},\"prev\":\"");
	put(&o, e->prev, AUDIT_HASH_HEX_LEN);
	put_str(&o, "\"}");
	if (o.overflow) {
		*error_r = "entry too large";
		return -1;
	}
	/* The canonical bytes are complete; hash them, then replace the final
	 * "}" by the hash field. */
	char hash[AUDIT_HASH_HEX_SIZE];
	hash_hex(o.p, o.len, hash);
	o.len--;
	put_str(&o, ",\"hash\":\"");
	put(&o, hash, AUDIT_HASH_HEX_LEN);
	put_str(&o, "\"}\n");
	if (o.overflow) {
		*error_r = "entry too large";
		return -1;
	}
	memcpy(hash_r, hash, AUDIT_HASH_HEX_SIZE);
	*len_r = o.len;
	return 0;
}

/* The parser's cursor over one line. */
struct cursor {
	const char *p, *end;
	char *store, *store_end;
};

static bool expect(struct cursor *c, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

static int hexval(char ch)
{
	const char *x = ch != '\0' ? strchr(hex_digits, ch) : NULL;
	return x != NULL ? (int)(x - hex_digits) : -1;
}

/* Copy a run of allowed characters up to the closing quote into storage. */
static const char *take_plain(struct cursor *c, bool (*allowed)(char), size_t max)
{
	const char *start = c->p;
	while (c->p < c->end && *c->p != '"' && (size_t)(c->p - start) <= max) {
		if (!allowed(*c->p))
			return NULL;
		c->p++;
	}
	size_t n = (size_t)(c->p - start);
	if (c->p == c->end || n > max || n + 1 > (size_t)(c->store_end - c->store))
		return NULL;
	char *s = c->store;
	memcpy(s, start, n);
	s[n] = '\0';
	c->store += n + 1;
	return s;
}

/* Unescape a detail value up to its closing quote (not consumed). */
static const char *take_value(struct cursor *c)
{
	char *s = c->store;
	size_t n = 0;
	while (c->p < c->end && *c->p != '"') {
		unsigned char ch = (unsigned char)*c->p;
		if (ch < 0x20 || ch == 0x7f)
			return NULL;
		if (ch == '\\') {
			if (c->end - c->p >= 2 && (c->p[1] == '"' || c->p[1] == '\\')) {
				ch = (unsigned char)c->p[1];
				c->p += 2;
			} else if (c->end - c->p >= 6 && memcmp(c->p, "\\u00", 4) == 0) {
				int hi = hexval(c->p[4]), lo = hexval(c->p[5]);
				if (hi < 0 || lo < 0)
					return NULL;
				ch = (unsigned char)(hi << 4 | lo);
				if (ch == 0 || (ch >= 0x20 && ch != 0x7f))
					return NULL;
				c->p += 6;
			} else {
				return NULL;
			}
		} else {
			c->p++;
		}
		if (n >= AUDIT_MAX_VALUE_SIZE || n + 2 > (size_t)(c->store_end - c->store))
			return NULL;
		s[n++] = (char)ch;
	}
	if (c->p == c->end)
		return NULL;
	s[n] = '\0';
	c->store += n + 1;
	return s;
}

static bool take_hash(struct cursor *c, char out[AUDIT_HASH_HEX_SIZE])
{
	if (c->end - c->p < AUDIT_HASH_HEX_LEN)
		return false;
	for (size_t i = 0; i < AUDIT_HASH_HEX_LEN; i++) {
		if (hexval(c->p[i]) < 0)
			return false;
		out[i] = c->p[i];
	}
	out[AUDIT_HASH_HEX_LEN] = '\0';
	c->p += AUDIT_HASH_HEX_LEN;
	return true;
}

static int parse_fail(const char **error_r, const char *what)
{
	*error_r = what;
	return -1;
}

int audit_parse_line(const char *line, size_t len, struct audit_entry *entry_r, char *storage,
                     size_t storage_size, const char **error_r)
{
	struct cursor c = {line, line + len, storage, storage + storage_size};
	struct audit_entry e;
	memset(&e, 0, sizeof(e));

	if (len >= AUDIT_MAX_ENTRY_SIZE)
		return parse_fail(error_r, "line too long");
	if (!expect(&c, "{\"seq\":"))
		return parse_fail(error_r, "malformed entry start");
	if (c.p == c.end || *c.p < '1' || *c.p > '9')
		return parse_fail(error_r, "malformed seq");
	while (c.p < c.end && *c.p >= '0' && *c.p <= '9') {
		unsigned digit = (unsigned)(*c.p++ - '0');
		if (e.seq > (UINT64_MAX - digit) / 10)
			return parse_fail(error_r, "seq out of range");
		e.seq = e.seq * 10 + digit;
	}
	if (!expect(&c, ",\"time\":\"") || c.end - c.p < 20 || parse_time(c.p, &e.time) < 0)
		return parse_fail(error_r, "malformed time");
	c.p += 20;
	if (!expect(&c, "\",\"event\":\""))
		return parse_fail(error_r, "malformed event");
	const char *name = c.p;
	while (c.p < c.end && *c.p != '"')
		c.p++;
	if (c.p == c.end || audit_event_from_name(name, (size_t)(c.p - name), &e.event) < 0)
		return parse_fail(error_r, "unknown event");
	e.event_name = event_names[e.event];
	if (!expect(&c, "\",\"account\":\"") ||
	    (e.account = take_plain(&c, account_char, AUDIT_MAX_ACCOUNT_LEN)) == NULL)
		return parse_fail(error_r, "malformed account");
	if (!expect(&c, "\",\"detail\":{"))
		return parse_fail(error_r, "malformed detail");
	if (!expect(&c, "}")) {
		do {
			if (e.n_details == AUDIT_MAX_DETAILS)
				return parse_fail(error_r, "too many detail pairs");
			struct audit_detail *d = &e.details[e.n_details++];
			if (!expect(&c, "\"") ||
			    (d->key = take_plain(&c, key_char, AUDIT_MAX_KEY_LEN)) == NULL ||
			    d->key[0] == '\0' || !expect(&c, "\":\""))
				return parse_fail(error_r, "malformed detail key");
			if ((d->value = take_value(&c)) == NULL || !expect(&c, "\""))
				return parse_fail(error_r, "malformed detail value");
		} while (expect(&c, ","));
		if (!expect(&c, "}"))
			return parse_fail(error_r, "malformed detail end");
	}
	if (!expect(&c, ",\"prev\":\"") || !take_hash(&c, e.prev))
		return parse_fail(error_r, "malformed prev");
	if (!expect(&c, "\",\"hash\":\"") || !take_hash(&c, e.hash))
		return parse_fail(error_r, "malformed hash");
	if (!expect(&c, "\"}") || c.p != c.end)
		return parse_fail(error_r, "malformed entry end");
	if (validate_entry(&e, error_r) < 0)
		return -1;
	*entry_r = e;
	return 0;
}

int audit_check_line(const char *line, size_t len, struct audit_entry *entry_r, char *storage,
                     size_t storage_size, const char **error_r)
{
	struct audit_entry e;
	char again[AUDIT_MAX_ENTRY_SIZE], hash[AUDIT_HASH_HEX_SIZE];
	size_t again_len;

	if (audit_parse_line(line, len, &e, storage, storage_size, error_r) < 0)
		return -1;
	if (audit_format_line(&e, again, sizeof(again), &again_len, hash, error_r) < 0)
		return -1;
	/* The parser accepts only the canonical form, so everything before the
	 * hash field must come out identical. */
	if (again_len != len + 1 || memcmp(again, line, len - AUDIT_HASH_FIELD_LEN) != 0) {
		*error_r = "entry not in canonical form";
		return -1;
	}
	*entry_r = e;
	return strcmp(hash, e.hash) == 0 ? 0 : 1;
}
