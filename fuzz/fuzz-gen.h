#ifndef MK_FUZZ_GEN_H
#define MK_FUZZ_GEN_H
/* What the JMAP method fuzzers share: JSON arguments drawn from the fuzzer's
 * bytes (each byte one choice, so that libFuzzer's mutations stay local),
 * from tables of likely keys, strings and integers; and removing a scratch
 * directory. Header only: each fuzzer is one translation unit. */
#include <ftw.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

struct gen {
	const uint8_t *p;
	size_t n;
};

/* The next byte; 0 once the input is used up. */
static inline unsigned take(struct gen *g)
{
	if (g->n == 0)
		return 0;
	g->n--;
	return *g->p++;
}

#define PICK(g, table) (table)[take(g) % (sizeof(table) / sizeof((table)[0]))]

/* The tables a fuzzer draws from, and its limits. */
struct gen_tables {
	const char *const *keys; /* object member names */
	size_t n_keys;
	const char *const *strings; /* string values */
	size_t n_strings;
	const json_int_t *ints;
	size_t n_ints;
	size_t string_max;  /* random printable strings: fewer bytes than this (<= 32) */
	size_t members_max; /* objects: fewer members than this */
};

#define GEN_TABLE(t) (t), (sizeof(t) / sizeof((t)[0]))

/* A JSON value; containers nest at most a few levels. */
static json_t *gen_value(struct gen *g, const struct gen_tables *t, int depth)
{
	unsigned kind = take(g) % 12;
	if (depth > 3 && kind >= 9)
		kind = 0;
	switch (kind) {
	case 0:
		return json_null();
	case 1:
		return json_true();
	case 2:
		return json_false();
	case 3:
		return json_integer(t->ints[take(g) % t->n_ints]);
	case 4:
		return json_real(take(g) / 3.0);
	case 5:
	case 6:
		return json_string(t->strings[take(g) % t->n_strings]);
	case 7: {
		/* Printable ASCII: valid UTF-8 (the envelope refuses the rest
		 * before any method runs). */
		char buf[32];
		size_t max = t->string_max <= sizeof(buf) ? t->string_max : sizeof(buf);
		size_t len = take(g) % max, i;
		for (i = 0; i < len; i++)
			buf[i] = (char)(0x20 + take(g) % 0x5f);
		return json_stringn(buf, i);
	}
	case 8:
	case 9: {
		json_t *a = json_array();
		size_t len = take(g) % 4;
		for (size_t i = 0; i < len; i++)
			json_array_append_new(a, gen_value(g, t, depth + 1));
		return a;
	}
	default: {
		json_t *o = json_object();
		size_t len = take(g) % t->members_max;
		for (size_t i = 0; i < len; i++)
			json_object_set_new(o, t->keys[take(g) % t->n_keys],
			                    gen_value(g, t, depth + 1));
		return o;
	}
	}
}

static int gen_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove a scratch directory and everything in it. */
static inline void gen_remove_tree(const char *path)
{
	nftw(path, gen_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

#endif
