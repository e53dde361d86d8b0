/* Address prefixes for per-address limits (see http.h). */
#include "http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int http_address_prefix(const char *addr, char *out, size_t size)
{
	struct in_addr v4;
	struct in6_addr v6;
	int n;
	if (inet_pton(AF_INET, addr, &v4) == 1) {
		char text[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &v4, text, sizeof(text));
		n = snprintf(out, size, "%s", text);
	} else if (inet_pton(AF_INET6, addr, &v6) == 1) {
		static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(v6.s6_addr, mapped, sizeof(mapped)) == 0) {
			char text[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, v6.s6_addr + 12, text, sizeof(text));
			n = snprintf(out, size, "%s", text);
		} else {
			/* One /64: what a single subscriber or host is usually given. */
			memset(v6.s6_addr + 8, 0, 8);
			char text[INET6_ADDRSTRLEN];
			inet_ntop(AF_INET6, &v6, text, sizeof(text));
			n = snprintf(out, size, "%s/64", text);
		}
	} else {
		return -1;
	}
	return n > 0 && (size_t)n < size ? 0 : -1;
}
