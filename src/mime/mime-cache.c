/* The parsed-message cache: a chained hash table plus an LRU list. */
#include "mime-cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mime-email.h"

#define MIME_CACHE_BUCKETS 4096

struct entry {
	char *key;
	json_t *tree;
	size_t weight;
	struct entry *next_in_bucket;
	struct entry *prev, *next; /* LRU: head is the most recent */
};

struct mime_cache {
	pthread_mutex_t lock;
	struct entry *buckets[MIME_CACHE_BUCKETS];
	struct entry *head, *tail;
	size_t bytes, max_bytes, entries;
	uint64_t hits, misses;
};

static size_t hash(const char *s)
{
	size_t h = 1469598103934665603u;
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h % MIME_CACHE_BUCKETS;
}

struct mime_cache *mime_cache_create(size_t max_bytes)
{
	struct mime_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	return c;
}

static void unlink_lru(struct mime_cache *c, struct entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_front(struct mime_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static void drop(struct mime_cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[hash(e->key)];
	while (*pp != e)
		pp = &(*pp)->next_in_bucket;
	*pp = e->next_in_bucket;
	unlink_lru(c, e);
	c->bytes -= e->weight;
	c->entries--;
	json_decref(e->tree);
	free(e->key);
	free(e);
}

void mime_cache_free(struct mime_cache **cache)
{
	struct mime_cache *c = *cache;
	if (c == NULL)
		return;
	while (c->head != NULL)
		drop(c, c->head);
	pthread_mutex_destroy(&c->lock);
	free(c);
	*cache = NULL;
}

static struct entry *lookup(struct mime_cache *c, const char *key)
{
	for (struct entry *e = c->buckets[hash(key)]; e != NULL; e = e->next_in_bucket)
		if (strcmp(e->key, key) == 0)
			return e;
	return NULL;
}

json_t *mime_cache_get(struct mime_cache *c, const char *key)
{
	if (c == NULL)
		return NULL;
	pthread_mutex_lock(&c->lock);
	struct entry *e = lookup(c, key);
	json_t *tree = NULL;
	if (e != NULL) {
		unlink_lru(c, e);
		push_front(c, e);
		tree = json_incref(e->tree);
		c->hits++;
	} else {
		c->misses++;
	}
	pthread_mutex_unlock(&c->lock);
	return tree;
}

void mime_cache_put(struct mime_cache *c, const char *key, json_t *tree)
{
	if (c == NULL)
		return;
	/* Weighed outside the lock: the tree is immutable. */
	size_t weight = mime_json_weight(tree) + strlen(key) + sizeof(struct entry);
	if (weight > c->max_bytes / 8)
		return;
	struct entry *e = calloc(1, sizeof(*e));
	char *k = strdup(key);
	if (e == NULL || k == NULL) {
		free(e);
		free(k);
		return;
	}
	e->key = k;
	e->weight = weight;
	pthread_mutex_lock(&c->lock);
	e->tree = json_incref(tree);
	struct entry *old = lookup(c, key);
	if (old != NULL)
		drop(c, old);
	size_t b = hash(key);
	e->next_in_bucket = c->buckets[b];
	c->buckets[b] = e;
	push_front(c, e);
	c->bytes += weight;
	c->entries++;
	while (c->bytes > c->max_bytes && c->tail != NULL && c->tail != e)
		drop(c, c->tail);
	pthread_mutex_unlock(&c->lock);
}

void mime_cache_release(struct mime_cache *c, json_t *tree)
{
	if (c == NULL) {
		json_decref(tree);
		return;
	}
	pthread_mutex_lock(&c->lock);
	json_decref(tree);
	pthread_mutex_unlock(&c->lock);
}

void mime_cache_stats(struct mime_cache *c, uint64_t *hits_r, uint64_t *misses_r, size_t *bytes_r,
                      size_t *entries_r)
{
	pthread_mutex_lock(&c->lock);
	*hits_r = c->hits;
	*misses_r = c->misses;
	*bytes_r = c->bytes;
	*entries_r = c->entries;
	pthread_mutex_unlock(&c->lock);
}
