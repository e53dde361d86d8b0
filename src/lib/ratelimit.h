#ifndef MK_RATELIMIT_H
#define MK_RATELIMIT_H

#include <stddef.h>
#include <time.h>

/*
 * Fixed-window counters keyed by short strings (a user name, an address
 * prefix, "*" for a global count): at most max units per key per window of
 * window_s seconds. Used to count sign-in attempts *before* the expensive
 * check: take a unit first, give it back if the attempt succeeded.
 *
 * The table has a fixed number of slots given at creation. A new key takes a
 * free slot, else one whose window has run out, else the slot with the oldest
 * window (its count is lost: callers pair a per-key table with a global one,
 * so a flood of new keys cannot buy more attempts than the global limit).
 *
 * Thread-safe: each call takes the table's own lock. Keys are copied; longer
 * than RATE_LIMIT_MAX_KEY - 1 bytes they are refused (take fails).
 */

#define RATE_LIMIT_MAX_KEY 72

struct rate_limit;

/* NULL if out of memory or an argument is 0. */
struct rate_limit *rate_limit_create(size_t slots, unsigned max, unsigned window_s);
/* Accepts NULL; sets *rl to NULL. */
void rate_limit_free(struct rate_limit **rl);
/* Take one unit for key at time now: 0 taken; -1 when the key already has
 * max units in its window (or the key is too long), with *retry_after_r
 * (if not NULL) the seconds until its window ends (at least 1). */
int rate_limit_take(struct rate_limit *rl, const char *key, time_t now, unsigned *retry_after_r);
/* Give back one unit taken in the current window (nothing if the window has
 * moved on or the key is gone). */
void rate_limit_give_back(struct rate_limit *rl, const char *key, time_t now);

#endif
