/* Fixed-window rate limits (see ratelimit.h). */
#include "ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct rate_slot {
	char key[RATE_LIMIT_MAX_KEY]; /* "" when free */
	unsigned count;
	time_t window_start;
};

struct rate_limit {
	pthread_mutex_t lock;
	unsigned max, window_s;
	size_t n_slots;
	struct rate_slot slots[];
};

struct rate_limit *rate_limit_create(size_t slots, unsigned max, unsigned window_s)
{
	if (slots == 0 || max == 0 || window_s == 0 ||
	    slots > (SIZE_MAX - sizeof(struct rate_limit)) / sizeof(struct rate_slot))
		return NULL;
	struct rate_limit *rl = calloc(1, sizeof(*rl) + slots * sizeof(struct rate_slot));
	if (rl == NULL)
		return NULL;
	if (pthread_mutex_init(&rl->lock, NULL) != 0) {
		free(rl);
		return NULL;
	}
	rl->max = max;
	rl->window_s = window_s;
	rl->n_slots = slots;
	return rl;
}

void rate_limit_free(struct rate_limit **rl)
{
	if (*rl == NULL)
		return;
	pthread_mutex_destroy(&(*rl)->lock);
	free(*rl);
	*rl = NULL;
}

static bool window_over(const struct rate_limit *rl, const struct rate_slot *s, time_t now)
{
	return now - s->window_start >= (time_t)rl->window_s || now < s->window_start;
}

/* The key's slot, or NULL when it has none. */
static struct rate_slot *find(struct rate_limit *rl, const char *key)
{
	for (size_t i = 0; i < rl->n_slots; i++)
		if (rl->slots[i].key[0] != '\0' && strcmp(rl->slots[i].key, key) == 0)
			return &rl->slots[i];
	return NULL;
}

/* A slot for a new key: a free one, else an expired one, else the oldest. */
static struct rate_slot *claim(struct rate_limit *rl, const char *key, time_t now)
{
	struct rate_slot *pick = NULL;
	for (size_t i = 0; i < rl->n_slots && pick == NULL; i++)
		if (rl->slots[i].key[0] == '\0' || window_over(rl, &rl->slots[i], now))
			pick = &rl->slots[i];
	if (pick == NULL) {
		pick = &rl->slots[0];
		for (size_t i = 1; i < rl->n_slots; i++)
			if (rl->slots[i].window_start < pick->window_start)
				pick = &rl->slots[i];
	}
	memcpy(pick->key, key, strlen(key) + 1);
	pick->count = 0;
	pick->window_start = now;
	return pick;
}

int rate_limit_take(struct rate_limit *rl, const char *key, time_t now, unsigned *retry_after_r)
{
	size_t len = strlen(key);
	if (len == 0 || len >= RATE_LIMIT_MAX_KEY) {
		if (retry_after_r != NULL)
			*retry_after_r = rl->window_s;
		return -1;
	}
	pthread_mutex_lock(&rl->lock);
	struct rate_slot *s = find(rl, key);
	if (s == NULL) {
		s = claim(rl, key, now);
	} else if (window_over(rl, s, now)) {
		s->count = 0;
		s->window_start = now;
	}
	int r = 0;
	if (s->count >= rl->max) {
		if (retry_after_r != NULL) {
			time_t left = s->window_start + (time_t)rl->window_s - now;
			*retry_after_r = left < 1 ? 1 : (unsigned)left;
		}
		r = -1;
	} else {
		s->count++;
	}
	pthread_mutex_unlock(&rl->lock);
	return r;
}

void rate_limit_give_back(struct rate_limit *rl, const char *key, time_t now)
{
	pthread_mutex_lock(&rl->lock);
	struct rate_slot *s = find(rl, key);
	if (s != NULL && !window_over(rl, s, now) && s->count > 0)
		s->count--;
	pthread_mutex_unlock(&rl->lock);
}
