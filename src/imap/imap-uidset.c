/*
 * UID sets: sorted disjoint ranges, compact formatting in bounded pieces,
 * and bounded parsing of the sets servers send in COPYUID, APPENDUID and
 * MODIFIED.
 */
#include "imap-uidset.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A COPYUID without a request to check it against (not used by the client,
 * which always has one) may name at most this many pairs. */
#define IMAP_COPYUID_MAX_UNCHECKED (1u << 20)

void imap_uidset_init(struct imap_uidset *s)
{
	s->ranges = NULL;
	s->count = s->cap = 0;
}

void imap_uidset_free(struct imap_uidset *s)
{
	free(s->ranges);
	imap_uidset_init(s);
}

void imap_uidset_clear(struct imap_uidset *s)
{
	s->count = 0;
}

static int reserve(struct imap_uidset *s, size_t need)
{
	if (need <= s->cap)
		return 0;
	size_t cap = s->cap < 8 ? 8 : s->cap;
	while (cap < need) {
		if (cap > SIZE_MAX / 2 / sizeof(*s->ranges))
			return -1;
		cap *= 2;
	}
	struct imap_uid_range *r = realloc(s->ranges, cap * sizeof(*r));
	if (r == NULL)
		return -1;
	s->ranges = r;
	s->cap = cap;
	return 0;
}

/* First index i with ranges[i].hi + 1 >= uid (the range uid could join). */
static size_t find_from(const struct imap_uidset *s, uint64_t uid)
{
	size_t a = 0, b = s->count;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if ((uint64_t)s->ranges[m].hi + 1 < uid)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

int imap_uidset_add_range(struct imap_uidset *s, uint32_t lo, uint32_t hi)
{
	if (lo > hi) {
		uint32_t t = lo;
		lo = hi;
		hi = t;
	}
	if (lo == 0)
		return -1;
	/* The common case: UIDs added in ascending order. */
	if (s->count == 0 || (uint64_t)lo > (uint64_t)s->ranges[s->count - 1].hi + 1) {
		if (reserve(s, s->count + 1) < 0)
			return -1;
		s->ranges[s->count++] = (struct imap_uid_range){lo, hi};
		return 0;
	}
	size_t i = find_from(s, lo);
	/* j: first range from i that starts past hi + 1 (cannot join). */
	size_t a = i, b = s->count;
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if ((uint64_t)s->ranges[m].lo > (uint64_t)hi + 1)
			b = m;
		else
			a = m + 1;
	}
	size_t j = a;
	if (i == j) {
		if (reserve(s, s->count + 1) < 0)
			return -1;
		memmove(s->ranges + i + 1, s->ranges + i, (s->count - i) * sizeof(*s->ranges));
		s->ranges[i] = (struct imap_uid_range){lo, hi};
		s->count++;
		return 0;
	}
	struct imap_uid_range merged = {
	    lo < s->ranges[i].lo ? lo : s->ranges[i].lo,
	    hi > s->ranges[j - 1].hi ? hi : s->ranges[j - 1].hi,
	};
	s->ranges[i] = merged;
	memmove(s->ranges + i + 1, s->ranges + j, (s->count - j) * sizeof(*s->ranges));
	s->count -= j - i - 1;
	return 0;
}

int imap_uidset_add(struct imap_uidset *s, uint32_t uid)
{
	return imap_uidset_add_range(s, uid, uid);
}

static int cmp_range(const void *a, const void *b)
{
	const struct imap_uid_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* Sort ranges[0..n) by lo and join overlapping or adjacent ones, in place;
 * returns the new count. */
static size_t normalize(struct imap_uid_range *r, size_t n)
{
	if (n == 0)
		return 0;
	qsort(r, n, sizeof(*r), cmp_range);
	size_t out = 0;
	for (size_t i = 1; i < n; i++) {
		if ((uint64_t)r[i].lo <= (uint64_t)r[out].hi + 1) {
			if (r[i].hi > r[out].hi)
				r[out].hi = r[i].hi;
		} else {
			r[++out] = r[i];
		}
	}
	return out + 1;
}

/* Merge the sorted disjoint ranges add[0..n) into s. */
static int merge_ranges(struct imap_uidset *s, const struct imap_uid_range *add, size_t n)
{
	if (n == 0)
		return 0;
	if (s->count > SIZE_MAX / sizeof(*add) - n)
		return -1;
	size_t alloc = s->count + n;
	struct imap_uid_range *out = malloc(alloc * sizeof(*out));
	if (out == NULL)
		return -1;
	size_t i = 0, j = 0, k = 0;
	while (i < s->count || j < n) {
		struct imap_uid_range next;
		if (j == n || (i < s->count && s->ranges[i].lo <= add[j].lo))
			next = s->ranges[i++];
		else
			next = add[j++];
		if (k > 0 && (uint64_t)next.lo <= (uint64_t)out[k - 1].hi + 1) {
			if (next.hi > out[k - 1].hi)
				out[k - 1].hi = next.hi;
		} else {
			out[k++] = next;
		}
	}
	free(s->ranges);
	s->ranges = out;
	s->count = k;
	s->cap = alloc;
	return 0;
}

int imap_uidset_add_array(struct imap_uidset *s, const uint32_t *uids, size_t n)
{
	if (n == 0)
		return 0;
	if (n > SIZE_MAX / sizeof(struct imap_uid_range))
		return -1;
	struct imap_uid_range *r = malloc(n * sizeof(*r));
	if (r == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (uids[i] == 0) {
			free(r);
			return -1;
		}
		r[i] = (struct imap_uid_range){uids[i], uids[i]};
	}
	size_t m = normalize(r, n);
	int ret = merge_ranges(s, r, m);
	free(r);
	return ret;
}

int imap_uidset_add_set(struct imap_uidset *s, const struct imap_uidset *src)
{
	if (src == s)
		return 0;
	return merge_ranges(s, src->ranges, src->count);
}

/* Index of the range holding uid, or s->count. */
static size_t find_range(const struct imap_uidset *s, uint32_t uid)
{
	size_t i = find_from(s, (uint64_t)uid + 1);
	if (i < s->count && s->ranges[i].lo <= uid && uid <= s->ranges[i].hi)
		return i;
	return s->count;
}

int imap_uidset_remove(struct imap_uidset *s, uint32_t uid)
{
	size_t i = find_range(s, uid);
	if (i == s->count)
		return 0;
	struct imap_uid_range *r = &s->ranges[i];
	if (r->lo == r->hi) {
		memmove(s->ranges + i, s->ranges + i + 1, (s->count - i - 1) * sizeof(*r));
		s->count--;
	} else if (uid == r->lo) {
		r->lo++;
	} else if (uid == r->hi) {
		r->hi--;
	} else {
		if (reserve(s, s->count + 1) < 0)
			return -1;
		r = &s->ranges[i];
		memmove(s->ranges + i + 1, s->ranges + i, (s->count - i) * sizeof(*r));
		s->count++;
		s->ranges[i].hi = uid - 1;
		s->ranges[i + 1].lo = uid + 1;
	}
	return 0;
}

bool imap_uidset_contains(const struct imap_uidset *s, uint32_t uid)
{
	return uid != 0 && find_range(s, uid) < s->count;
}

static bool contains_range(const struct imap_uidset *s, uint32_t lo, uint32_t hi)
{
	size_t i = find_range(s, lo);
	return i < s->count && hi <= s->ranges[i].hi;
}

bool imap_uidset_contains_set(const struct imap_uidset *s, const struct imap_uidset *sub)
{
	for (size_t i = 0; i < sub->count; i++) {
		if (!contains_range(s, sub->ranges[i].lo, sub->ranges[i].hi))
			return false;
	}
	return true;
}

uint64_t imap_uidset_size(const struct imap_uidset *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->count; i++)
		n += (uint64_t)s->ranges[i].hi - s->ranges[i].lo + 1;
	return n;
}

bool imap_uidset_is_empty(const struct imap_uidset *s)
{
	return s->count == 0;
}

bool imap_uidset_equal(const struct imap_uidset *a, const struct imap_uidset *b)
{
	return a->count == b->count &&
	       (a->count == 0 || memcmp(a->ranges, b->ranges, a->count * sizeof(*a->ranges)) == 0);
}

static int range_text(const struct imap_uid_range *r, char *out, size_t size)
{
	int n = r->lo == r->hi ? snprintf(out, size, "%u", r->lo)
	                       : snprintf(out, size, "%u:%u", r->lo, r->hi);
	return n > 0 && (size_t)n < size ? n : -1;
}

int imap_uidset_write(const struct imap_uidset *s, size_t *pos, size_t max_chars, struct buf *b)
{
	if (*pos >= s->count || max_chars < IMAP_UIDSET_RANGE_MAX_CHARS)
		return -1;
	if (max_chars > INT_MAX)
		max_chars = INT_MAX;
	size_t written = 0;
	while (*pos < s->count) {
		char text[32];
		int n = range_text(&s->ranges[*pos], text, sizeof(text));
		if (n < 0)
			return -1;
		size_t need = (size_t)n + (written > 0 ? 1 : 0);
		if (written + need > max_chars || b->max - b->len < need)
			break;
		if ((written > 0 && buf_append(b, ",", 1) < 0) ||
		    buf_append(b, text, (size_t)n) < 0)
			return -1; /* out of memory: the caller discards b */
		written += need;
		(*pos)++;
	}
	return written > 0 ? (int)written : -1;
}

int imap_uidset_format(const struct imap_uidset *s, struct buf *b)
{
	for (size_t i = 0; i < s->count; i++) {
		char text[32];
		int n = range_text(&s->ranges[i], text, sizeof(text));
		if (n < 0 || (i > 0 && buf_append(b, ",", 1) < 0) ||
		    buf_append(b, text, (size_t)n) < 0)
			return -1;
	}
	return 0;
}

/* nz-number below 2^32, no leading zero; advances *p. */
static bool parse_uid(const char **p, uint32_t *uid_r)
{
	const char *s = *p;
	if (*s < '1' || *s > '9')
		return false;
	uint64_t n = 0;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > UINT32_MAX)
			return false;
		s++;
	}
	*uid_r = (uint32_t)n;
	*p = s;
	return true;
}

/* Parse "a[:b](,a[:b])*" into a newly allocated list of ranges in the order
 * written (each lo <= hi). Bounded by max_uids (sum of range sizes) and
 * max_ranges (elements). */
static int parse_ranges(const char *str, uint64_t max_uids, size_t max_ranges,
                        struct imap_uid_range **ranges_r, size_t *n_r, uint64_t *total_r,
                        const char **error_r)
{
	struct imap_uid_range *r = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;
	const char *p = str;
	for (;;) {
		uint32_t a, b;
		if (!parse_uid(&p, &a)) {
			*error_r = "invalid UID in set";
			goto fail;
		}
		b = a;
		if (*p == ':') {
			p++;
			if (!parse_uid(&p, &b)) {
				*error_r = "invalid UID in set";
				goto fail;
			}
		}
		if (a > b) {
			uint32_t t = a;
			a = b;
			b = t;
		}
		total += (uint64_t)b - a + 1;
		if (n >= max_ranges || total > max_uids) {
			*error_r = "UID set names more UIDs than allowed";
			goto fail;
		}
		if (n == cap) {
			size_t ncap = cap == 0 ? 8 : cap * 2;
			if (ncap > max_ranges)
				ncap = max_ranges;
			struct imap_uid_range *nr = realloc(r, ncap * sizeof(*nr));
			if (nr == NULL) {
				*error_r = "out of memory";
				goto fail;
			}
			r = nr;
			cap = ncap;
		}
		r[n++] = (struct imap_uid_range){a, b};
		if (*p == '\0')
			break;
		if (*p != ',') {
			*error_r = "invalid character in UID set";
			goto fail;
		}
		p++;
	}
	*ranges_r = r;
	*n_r = n;
	*total_r = total;
	return 0;
fail:
	free(r);
	return -1;
}

int imap_uidset_parse(const char *str, uint64_t max_uids, size_t max_ranges, struct imap_uidset *s,
                      const char **error_r)
{
	struct imap_uid_range *r;
	size_t n;
	uint64_t total;
	if (parse_ranges(str, max_uids, max_ranges, &r, &n, &total, error_r) < 0)
		return -1;
	n = normalize(r, n);
	int ret = merge_ranges(s, r, n);
	free(r);
	if (ret < 0)
		*error_r = "out of memory";
	return ret;
}

/* --- Response codes ------------------------------------------------------- */

void imap_copyuid_free(struct imap_copyuid *cu)
{
	free(cu->pairs);
	memset(cu, 0, sizeof(*cu));
}

static int cmp_pair(const void *a, const void *b)
{
	const struct imap_uid_pair *x = a, *y = b;
	return x->src < y->src ? -1 : x->src > y->src ? 1 : 0;
}

uint32_t imap_copyuid_lookup(const struct imap_copyuid *cu, uint32_t src_uid)
{
	if (!cu->valid || cu->count == 0)
		return 0;
	struct imap_uid_pair key = {src_uid, 0};
	const struct imap_uid_pair *p =
	    bsearch(&key, cu->pairs, cu->count, sizeof(*cu->pairs), cmp_pair);
	return p != NULL ? p->dst : 0;
}

/* A number atom in 1..UINT32_MAX. */
static bool arg_nz32(const struct imap_arg *a, uint32_t *n_r)
{
	uint64_t n;
	if (a == NULL || a->type != IMAP_ARG_ATOM || !imap_arg_number(a, UINT32_MAX, &n) || n == 0)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

static const char *arg_atom(const struct imap_arg *a)
{
	return a != NULL && a->type == IMAP_ARG_ATOM ? a->str : NULL;
}

int imap_copyuid_parse(const struct imap_arg *code_args, const struct imap_uidset *requested,
                       struct imap_copyuid *cu, const char **error_r)
{
	uint32_t uidvalidity;
	const struct imap_arg *a = code_args;
	const char *src_text = arg_atom(a != NULL ? a->next : NULL);
	const char *dst_text = arg_atom(src_text != NULL ? a->next->next : NULL);
	if (!arg_nz32(a, &uidvalidity) || dst_text == NULL || a->next->next->next != NULL) {
		*error_r = "malformed COPYUID response code";
		return -1;
	}
	if (cu->valid && cu->count > 0 && cu->uidvalidity != uidvalidity) {
		*error_r = "COPYUID UIDVALIDITY changed between pieces of one command";
		return -1;
	}
	uint64_t max = requested != NULL ? imap_uidset_size(requested) : IMAP_COPYUID_MAX_UNCHECKED;
	/* Each element takes at least two characters ("1,"), so the text's
	 * length bounds the number of elements as well. */
	struct imap_uid_range *src = NULL, *dst = NULL;
	size_t nsrc, ndst;
	uint64_t tsrc, tdst;
	int ret = -1;
	if (parse_ranges(src_text, max, strlen(src_text), &src, &nsrc, &tsrc, error_r) < 0 ||
	    parse_ranges(dst_text, max, strlen(dst_text), &dst, &ndst, &tdst, error_r) < 0)
		goto out;
	if (tsrc != tdst) {
		*error_r = "COPYUID source and destination sets differ in size";
		goto out;
	}
	/* Every source UID distinct and one we asked for. */
	struct imap_uidset check = IMAP_UIDSET_INIT;
	for (size_t i = 0; i < nsrc; i++) {
		if (requested != NULL && !contains_range(requested, src[i].lo, src[i].hi)) {
			*error_r = "COPYUID names a source UID that was not copied";
			imap_uidset_free(&check);
			goto out;
		}
		if (imap_uidset_add_range(&check, src[i].lo, src[i].hi) < 0) {
			*error_r = "out of memory";
			imap_uidset_free(&check);
			goto out;
		}
	}
	uint64_t distinct = imap_uidset_size(&check);
	bool repeated = distinct != tsrc;
	/* ... and not paired already by an earlier piece. */
	for (size_t i = 0; i < cu->count && !repeated; i++)
		repeated = imap_uidset_contains(&check, cu->pairs[i].src);
	imap_uidset_free(&check);
	if (repeated) {
		*error_r = "COPYUID names a source UID twice";
		goto out;
	}
	if (cu->count > SIZE_MAX / sizeof(*cu->pairs) - tsrc) {
		*error_r = "out of memory";
		goto out;
	}
	size_t need = cu->count + (size_t)tsrc;
	if (need > cu->cap) {
		struct imap_uid_pair *np = realloc(cu->pairs, need * sizeof(*np));
		if (np == NULL) {
			*error_r = "out of memory";
			goto out;
		}
		cu->pairs = np;
		cu->cap = need;
	}
	/* Walk both lists in step, one UID at a time. */
	size_t k = cu->count, di = 0;
	uint32_t dnext = dst[0].lo;
	for (size_t si = 0; si < nsrc; si++) {
		for (uint64_t u = src[si].lo; u <= src[si].hi; u++) {
			cu->pairs[k++] = (struct imap_uid_pair){(uint32_t)u, dnext};
			if (dnext == dst[di].hi) {
				if (++di < ndst)
					dnext = dst[di].lo;
			} else {
				dnext++;
			}
		}
	}
	qsort(cu->pairs, k, sizeof(*cu->pairs), cmp_pair);
	cu->count = k;
	cu->uidvalidity = uidvalidity;
	cu->valid = true;
	ret = 0;
out:
	free(src);
	free(dst);
	return ret;
}

int imap_appenduid_parse(const struct imap_arg *code_args, uint32_t *uidvalidity_r, uint32_t *uid_r,
                         const char **error_r)
{
	uint32_t uidvalidity, uid;
	const struct imap_arg *a = code_args;
	if (!arg_nz32(a, &uidvalidity) || !arg_nz32(a->next, &uid) || a->next->next != NULL) {
		*error_r = "malformed APPENDUID response code";
		return -1;
	}
	*uidvalidity_r = uidvalidity;
	*uid_r = uid;
	return 0;
}

int imap_modified_parse(const struct imap_arg *code_args, const struct imap_uidset *requested,
                        struct imap_uidset *modified, const char **error_r)
{
	const char *text = arg_atom(code_args);
	if (text == NULL || code_args->next != NULL) {
		*error_r = "malformed MODIFIED response code";
		return -1;
	}
	struct imap_uidset set = IMAP_UIDSET_INIT;
	uint64_t max = imap_uidset_size(requested);
	if (imap_uidset_parse(text, max, strlen(text), &set, error_r) < 0)
		return -1;
	if (!imap_uidset_contains_set(requested, &set)) {
		imap_uidset_free(&set);
		*error_r = "MODIFIED names a UID that was not stored";
		return -1;
	}
	int r = imap_uidset_add_set(modified, &set);
	imap_uidset_free(&set);
	if (r < 0)
		*error_r = "out of memory";
	return r;
}
