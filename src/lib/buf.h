#ifndef MK_BUF_H
#define MK_BUF_H

#include <stddef.h>
#include <stdarg.h>

/*
 * A growable byte buffer with a hard maximum given at creation (curl's dynbuf).
 * The data is always NUL-terminated (one extra byte beyond len), so text
 * buffers can be handed to C string functions. All memory belongs to the
 * buffer; buf_free() releases it.
 */
struct buf {
	unsigned char *data; /* NULL until the first append */
	size_t len;          /* bytes in use, not counting the NUL */
	size_t cap;          /* bytes allocated */
	size_t max;          /* len never exceeds this */
	int failed;          /* an append was refused since init or reset: a text
	                        built of many appends is checked once, at its end */
};

/* Initialise an empty buffer that may grow to max bytes. */
void buf_init(struct buf *b, size_t max);
/* The bytes b will have allocated once n more are appended (its capacity
 * now if they would not fit under max): for callers that account memory
 * before it is taken. */
size_t buf_capacity_for(const struct buf *b, size_t n);
/* Append n bytes. Returns 0, or -1 (buffer unchanged) if len would pass max
 * or memory runs out. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Make the buffer empty; keeps its memory. */
void buf_reset(struct buf *b);
/* Text view of the buffer: "" when empty, never NULL. */
const char *buf_str(const struct buf *b);
/* Wipe (explicit_bzero) and free the memory; the buffer becomes empty. */
void buf_free(struct buf *b);

#endif
