#ifndef MK_ARRAY_H
#define MK_ARRAY_H

#include <stddef.h>

/*
 * Growing a malloc'ed array one element at a time: before writing element
 * n, array_grow(&p, &cap, n, sizeof(*p)) makes room (capacity doubles, 16 at
 * first). ptr_to_array is the address of the array pointer (any object
 * pointer type). Returns 0, or -1 when out of memory or the size would
 * overflow; the array is then unchanged and still the caller's to free.
 */
int array_grow(void *ptr_to_array, size_t *cap, size_t n, size_t elem_size);

#endif
