/* Growing arrays (array.h). */
#include "array.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int array_grow(void *ptr_to_array, size_t *cap, size_t n, size_t elem_size)
{
	if (n < *cap)
		return 0;
	size_t want = *cap == 0 ? 16 : *cap * 2;
	if (want < *cap || elem_size == 0 || want > SIZE_MAX / elem_size)
		return -1;
	void *p;
	memcpy(&p, ptr_to_array, sizeof(p)); /* the caller's pointer, whatever its type */
	void *np = realloc(p, want * elem_size);
	if (np == NULL)
		return -1;
	memcpy(ptr_to_array, &np, sizeof(np));
	*cap = want;
	return 0;
}
