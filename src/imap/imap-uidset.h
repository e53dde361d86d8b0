#ifndef MK_IMAP_UIDSET_H
#define MK_IMAP_UIDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap-parser.h"
#include "../lib/buf.h"

/*
 * Sets of IMAP UIDs, and the response codes that carry them.
 *
 * struct imap_uidset holds UIDs (1 .. 2^32-1) sorted and de-duplicated, as
 * disjoint ranges with at least one UID between two of them ("1:5,9"): the
 * memory follows the number of runs, not the number of UIDs, so "1:4294967295"
 * costs one range. It formats as the compact sequence set the commands send,
 * in pieces that keep a command line under a given length (RFC 7162 section
 * 4 asks clients to keep lines under 8192 octets), and parses the sets servers
 * send (MODIFIED, SEARCH results) with a bound on how many UIDs they may name.
 *
 * All memory belongs to the set; imap_uidset_free() releases it. Functions
 * that may allocate return 0, or -1 when out of memory or given UID 0 (the
 * set is then unchanged).
 */

struct imap_uid_range {
	uint32_t lo, hi; /* lo <= hi */
};

struct imap_uidset {
	/* Sorted; ranges[i].hi + 1 < ranges[i + 1].lo. Read-only outside
	 * imap-uidset.c (iterate with for (i < count) lo..hi). */
	struct imap_uid_range *ranges;
	size_t count; /* ranges in use */
	size_t cap;   /* ranges allocated */
};

#define IMAP_UIDSET_INIT                                                                           \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* The longest text one range can take: "4294967295:4294967295". */
#define IMAP_UIDSET_RANGE_MAX_CHARS 21

void imap_uidset_init(struct imap_uidset *s);
/* Releases the memory; the set is empty (and reusable) afterwards. */
void imap_uidset_free(struct imap_uidset *s);
/* Empties the set, keeping its memory. */
void imap_uidset_clear(struct imap_uidset *s);

int imap_uidset_add(struct imap_uidset *s, uint32_t uid);
/* Adds lo..hi (either order). */
int imap_uidset_add_range(struct imap_uidset *s, uint32_t lo, uint32_t hi);
/* Adds n UIDs in any order, O((n + count) log n). */
int imap_uidset_add_array(struct imap_uidset *s, const uint32_t *uids, size_t n);
/* Adds every UID of src. */
int imap_uidset_add_set(struct imap_uidset *s, const struct imap_uidset *src);
/* Removes uid if present (may split a range: -1 when out of memory). */
int imap_uidset_remove(struct imap_uidset *s, uint32_t uid);

bool imap_uidset_contains(const struct imap_uidset *s, uint32_t uid);
/* Is every UID of sub in s? */
bool imap_uidset_contains_set(const struct imap_uidset *s, const struct imap_uidset *sub);
/* Number of UIDs (not ranges). */
uint64_t imap_uidset_size(const struct imap_uidset *s);
bool imap_uidset_is_empty(const struct imap_uidset *s);
bool imap_uidset_equal(const struct imap_uidset *a, const struct imap_uidset *b);

/*
 * Appends the ranges from *pos on to b as "1:5,9,12:14", as many as fit in
 * max_chars characters, and sets *pos to the first range not written (==
 * s->count when all are written). Returns the number of characters written
 * (> 0), or -1 when nothing was left to write, max_chars is below
 * IMAP_UIDSET_RANGE_MAX_CHARS, or b is full. Commands call it in a loop, one
 * command per piece.
 */
int imap_uidset_write(const struct imap_uidset *s, size_t *pos, size_t max_chars, struct buf *b);
/* The whole set into b ("" for an empty set); -1 when b is full. */
int imap_uidset_format(const struct imap_uidset *s, struct buf *b);

/*
 * Parses a server's sequence set of UIDs ("1:5,9", ranges in either order;
 * no "*", no 0, no leading zeros past one digit, numbers below 2^32) and adds
 * it to s. Refuses (-1, static *error_r, s unchanged) a set naming more than
 * max_uids UIDs in total (counted with repeats, before merging) or with
 * more than max_ranges comma-separated elements.
 */
int imap_uidset_parse(const char *str, uint64_t max_uids, size_t max_ranges, struct imap_uidset *s,
                      const char **error_r);

/*
 * RFC 4315 COPYUID <uidvalidity> <source uid-set> <destination uid-set>
 * (from COPY, or from MOVE's untagged OK, RFC 6851): the pairs in the order
 * the server wrote them, each range lo..hi ascending (RFC 4315 section 4
 * says a range names the UIDs between its ends "regardless of order"), the
 * n-th source UID paired with the n-th destination UID.
 */
struct imap_uid_pair {
	uint32_t src, dst;
};

struct imap_copyuid {
	bool valid;                  /* false when the server sent no (usable) COPYUID */
	uint32_t uidvalidity;        /* of the destination mailbox */
	struct imap_uid_pair *pairs; /* sorted by src (for lookup) */
	size_t count;                /* pairs */
	size_t cap;
};

void imap_copyuid_free(struct imap_copyuid *cu);
/* The destination UID paired with src_uid, or 0 when there is none
 * (binary search). */
uint32_t imap_copyuid_lookup(const struct imap_copyuid *cu, uint32_t src_uid);

/*
 * Parse the arguments of a COPYUID code and append its pairs to cu (which
 * may hold pairs of an earlier piece of the same command: then the
 * UIDVALIDITY must be the same). When requested is not NULL every source UID
 * must be in it, and no more than imap_uidset_size(requested) pairs are
 * accepted (a hostile server cannot make us expand "1:4294967295"). Returns
 * 0, or -1 with a static *error_r for a malformed code (cu unchanged).
 */
int imap_copyuid_parse(const struct imap_arg *code_args, const struct imap_uidset *requested,
                       struct imap_copyuid *cu, const char **error_r);

/* RFC 4315 APPENDUID <uidvalidity> <uid> for one appended message. Returns
 * 0, or -1 with a static *error_r (a set of UIDs, 0, junk). */
int imap_appenduid_parse(const struct imap_arg *code_args, uint32_t *uidvalidity_r, uint32_t *uid_r,
                         const char **error_r);

/* RFC 7162 MODIFIED <sequence-set>: of a UID STORE, the UIDs not stored
 * because they changed since UNCHANGEDSINCE. They must be in requested;
 * added to modified. Returns 0, or -1 with a static *error_r. */
int imap_modified_parse(const struct imap_arg *code_args, const struct imap_uidset *requested,
                        struct imap_uidset *modified, const char **error_r);

#endif
