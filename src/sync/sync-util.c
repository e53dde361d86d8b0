/* Small pure helpers of the sync engine: UID sets, flags, dates. */
#include "sync-private.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int uidvec_grow(struct uidvec *v, bool sized)
{
	if (v->count < v->cap)
		return 0;
	size_t cap = v->cap == 0 ? 256 : v->cap * 2;
	uint32_t *u = realloc(v->uids, cap * sizeof(*u));
	if (u == NULL)
		return -1;
	v->uids = u;
	if (sized || v->sizes != NULL) {
		uint64_t *s = realloc(v->sizes, cap * sizeof(*s));
		if (s == NULL)
			return -1;
		v->sizes = s;
	}
	v->cap = cap;
	return 0;
}

int uidvec_add(struct uidvec *v, uint32_t uid)
{
	if (uidvec_grow(v, false) < 0)
		return -1;
	if (v->sizes != NULL)
		v->sizes[v->count] = 0;
	v->uids[v->count++] = uid;
	return 0;
}

int uidvec_add_sized(struct uidvec *v, uint32_t uid, uint64_t size)
{
	if (uidvec_grow(v, true) < 0)
		return -1;
	v->sizes[v->count] = size;
	v->uids[v->count++] = uid;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void uidvec_sort(struct uidvec *v)
{
	/* Only plain vectors are sorted; sized ones arrive in order. */
	if (v->sizes == NULL && v->count > 1)
		qsort(v->uids, v->count, sizeof(*v->uids), cmp_u32);
}

bool uidvec_contains(const struct uidvec *v, uint32_t uid)
{
	size_t lo = 0, hi = v->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->uids[mid] == uid)
			return true;
		if (v->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void uidvec_free(struct uidvec *v)
{
	free(v->uids);
	free(v->sizes);
	memset(v, 0, sizeof(*v));
}

static int parse_uid(const char **p, uint32_t *uid_r)
{
	uint64_t n = 0;
	if (!isdigit((unsigned char)**p))
		return -1;
	while (isdigit((unsigned char)**p)) {
		n = n * 10 + (uint64_t)(**p - '0');
		if (n > UINT32_MAX)
			return -1;
		(*p)++;
	}
	if (n == 0)
		return -1;
	*uid_r = (uint32_t)n;
	return 0;
}

int uidvec_parse_set(struct uidvec *v, const char *set, size_t max_uids)
{
	const char *p = set;
	while (*p != '\0') {
		uint32_t a, b;
		if (parse_uid(&p, &a) < 0)
			return -1;
		b = a;
		if (*p == ':') {
			p++;
			if (parse_uid(&p, &b) < 0)
				return -1;
			if (b < a) {
				uint32_t t = a;
				a = b;
				b = t;
			}
		}
		if ((uint64_t)b - a + 1 > max_uids - v->count)
			return -1;
		for (uint64_t u = a; u <= b; u++)
			if (uidvec_add(v, (uint32_t)u) < 0)
				return -1;
		if (*p == ',' && p[1] != '\0')
			p++;
		else if (*p != '\0')
			return -1;
	}
	return 0;
}

int uidset_format(struct buf *b, const uint32_t *uids, size_t from, size_t to)
{
	size_t i = from;
	bool first = true;
	while (i < to) {
		size_t j = i;
		while (j + 1 < to && uids[j + 1] == uids[j] + 1)
			j++;
		int r = j == i ? buf_printf(b, "%s%u", first ? "" : ",", uids[i])
		               : buf_printf(b, "%s%u:%u", first ? "" : ",", uids[i], uids[j]);
		if (r < 0)
			return -1;
		first = false;
		i = j + 1;
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define MAX_KEYWORDS 512

int flags_parse(const struct imap_arg *list, unsigned *flags_r, struct buf *kw)
{
	static const struct {
		const char *name;
		unsigned flag;
	} system_flags[] = {
	    {"\\Seen", STORE_FLAG_SEEN},       {"\\Answered", STORE_FLAG_ANSWERED},
	    {"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
	    {"\\Draft", STORE_FLAG_DRAFT},
	};
	const char *keywords[MAX_KEYWORDS];
	size_t nkw = 0;
	unsigned flags = 0;
	if (list == NULL || list->type != IMAP_ARG_LIST)
		return -1;
	buf_reset(kw);
	for (const struct imap_arg *a = list->list; a != NULL; a = a->next) {
		if (a->type != IMAP_ARG_ATOM)
			return -1;
		if (a->str[0] == '\\') {
			for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++)
				if (strcasecmp(a->str, system_flags[i].name) == 0)
					flags |= system_flags[i].flag;
			continue;
		}
		if (nkw == MAX_KEYWORDS)
			return -1;
		keywords[nkw++] = a->str;
	}
	qsort(keywords, nkw, sizeof(keywords[0]), cmp_str);
	for (size_t i = 0; i < nkw; i++) {
		if (i > 0 && strcmp(keywords[i], keywords[i - 1]) == 0)
			continue;
		if ((kw->len > 0 && buf_append_str(kw, " ") < 0) ||
		    buf_append_str(kw, keywords[i]) < 0)
			return -1;
	}
	*flags_r = flags;
	return 0;
}

int internaldate_parse(const char *s, int64_t *time_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	/* dd-Mon-yyyy hh:mm:ss +zzzz, day may be space-padded. */
	int day = 0, year = 0, hh = 0, mm = 0, ss = 0, zone = 0, mon = -1;
	const char *p = s;
	while (*p == ' ')
		p++;
	for (int i = 0; i < 2 && isdigit((unsigned char)*p); i++)
		day = day * 10 + (*p++ - '0');
	if (*p++ != '-' || strlen(p) < 3)
		return -1;
	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months + 3 * i, 3) == 0)
			mon = i;
	p += 3;
	if (mon < 0 || *p++ != '-')
		return -1;
	for (int i = 0; i < 4; i++, p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		year = year * 10 + (*p - '0');
	}
	int *parts[3] = {&hh, &mm, &ss};
	for (int i = 0; i < 3; i++) {
		if (*p++ != (i == 0 ? ' ' : ':') || !isdigit((unsigned char)p[0]) ||
		    !isdigit((unsigned char)p[1]))
			return -1;
		*parts[i] = (p[0] - '0') * 10 + (p[1] - '0');
		p += 2;
	}
	if (*p++ != ' ' || (*p != '+' && *p != '-'))
		return -1;
	int sign = *p++ == '-' ? -1 : 1;
	for (int i = 0; i < 4; i++, p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		zone = zone * 10 + (*p - '0');
	}
	if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || *p != '\0')
		return -1;
	/* Days from civil (Howard Hinnant's algorithm), no timezone state. */
	int y = year - (mon < 2);
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int mp = (mon + 10) % 12; /* mon is 0-based; March is 0 */
	int doy = (153 * mp + 2) / 5 + day - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	int offset = sign * ((zone / 100) * 3600 + (zone % 100) * 60);
	*time_r = days * 86400 + hh * 3600 + mm * 60 + ss - offset;
	return 0;
}

const char *role_from_attribute(const char *attr)
{
	static const char *const roles[] = {"All",  "Archive", "Drafts", "Flagged",
	                                    "Junk", "Sent",    "Trash"};
	if (attr == NULL || attr[0] != '\\')
		return NULL;
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (strcasecmp(attr + 1, roles[i]) == 0)
			return roles[i];
	return NULL;
}
