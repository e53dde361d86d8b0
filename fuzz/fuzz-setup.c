/* libFuzzer target: the setup module's parsers of outside files: the
 * autoconfig XML reader, Thunderbird's prefs.js and an mbsync
 * configuration. The first byte picks the parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "setup/setup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	/* An exact-size copy, so ASan sees any read past the end. */
	char *s = malloc(size - 1 > 0 ? size - 1 : 1);
	if (s == NULL)
		return 0;
	memcpy(s, data + 1, size - 1);
	const char *err;
	struct setup_autoconfig ac;
	static struct setup_import im[SETUP_IMPORT_MAX];
	switch (data[0] % 3) {
	case 0:
		setup_autoconfig_parse(s, size - 1, &ac, &err);
		break;
	case 1:
		setup_import_thunderbird(s, size - 1, im, SETUP_IMPORT_MAX, &err);
		break;
	default:
		setup_import_mbsync(s, size - 1, im, SETUP_IMPORT_MAX, &err);
		break;
	}
	free(s);
	return 0;
}
