#ifndef MK_MIME_CACHE_H
#define MK_MIME_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * A bounded cache of parsed messages (mime_email_parse() trees) shared by
 * threads: least recently used entries go once the estimated memory
 * (mime_json_weight) passes the budget. Keys are strings the caller makes
 * unique per user and per message content (e.g. "user/sha256/part path"):
 * message bytes are content-addressed and immutable, so an entry never
 * goes stale, and a key that names the user keeps users apart.
 *
 * Threads: every function takes the cache's lock. The trees handed out are
 * shared: they must not be modified, no reference to any node inside them
 * may be taken (json_deep_copy() what goes into a response), and the
 * caller's reference to a tree it got or put is dropped with
 * mime_cache_release(), which changes the reference count under the lock
 * (jansson's json_decref() reads the count unlocked).
 */

struct mime_cache;

/* A cache of at most max_bytes; NULL when out of memory. */
struct mime_cache *mime_cache_create(size_t max_bytes);
/* Accepts NULL; sets *cache to NULL. */
void mime_cache_free(struct mime_cache **cache);
/* A new reference to the tree under key (release it with
 * mime_cache_release()), or NULL. cache may be NULL. */
json_t *mime_cache_get(struct mime_cache *cache, const char *key);
/* Store a tree (takes a reference of its own; keys are copied). An entry
 * larger than an eighth of the budget is not kept. cache may be NULL. */
void mime_cache_put(struct mime_cache *cache, const char *key, json_t *tree);
/* Drop a reference to a tree that was got from or put into the cache;
 * with a NULL cache, a plain json_decref(). Accepts NULL. */
void mime_cache_release(struct mime_cache *cache, json_t *tree);
/* Counters for tests and benchmarks. */
void mime_cache_stats(struct mime_cache *cache, uint64_t *hits_r, uint64_t *misses_r,
                      size_t *bytes_r, size_t *entries_r);

#endif
