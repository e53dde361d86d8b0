#include "imap-url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int imap_url_parse(const char *url, char *host_r, size_t host_size, char *port_r, size_t port_size,
                   enum imap_security *security_r)
{
	const char *p, *port = NULL;
	size_t port_len = 0;
	enum imap_security security;
	if (strncmp(url, "imaps://", 8) == 0) {
		security = IMAP_SECURITY_TLS;
		p = url + 8;
	} else if (strncmp(url, "imap://", 7) == 0) {
		security = IMAP_SECURITY_STARTTLS;
		p = url + 7;
	} else {
		return -1;
	}
	const char *host = p, *host_end;
	if (*p == '[') {
		host = p + 1;
		host_end = strchr(host, ']');
		if (host_end == NULL)
			return -1;
		p = host_end + 1;
	} else {
		host_end = p + strcspn(p, ":/");
		p = host_end;
	}
	size_t host_len = (size_t)(host_end - host);
	if (host_len == 0 || host_len >= host_size)
		return -1;
	for (size_t i = 0; i < host_len; i++) {
		unsigned char c = (unsigned char)host[i];
		if (c <= ' ' || c >= 0x7f || c == '@' || c == '[' || c == ']' || c == '/' ||
		    c == '?' || c == '#' || c == '%')
			return -1;
	}
	if (*p == ':') {
		port = ++p;
		port_len = strspn(p, "0123456789");
		p += port_len;
		unsigned long n = 0;
		for (size_t i = 0; i < port_len && i < 6; i++)
			n = n * 10 + (unsigned long)(port[i] - '0');
		if (port_len == 0 || port_len > 5 || n == 0 || n > 65535)
			return -1;
	}
	if (*p == '/')
		p++;
	if (*p != '\0')
		return -1;
	const char *default_port = security == IMAP_SECURITY_TLS ? "993" : "143";
	size_t need = port != NULL ? port_len : strlen(default_port);
	if (need >= port_size)
		return -1;
	memcpy(host_r, host, host_len);
	host_r[host_len] = '\0';
	if (port != NULL) {
		memcpy(port_r, port, port_len);
		port_r[port_len] = '\0';
	} else {
		memcpy(port_r, default_port, need + 1);
	}
	*security_r = security;
	return 0;
}

/* The port as a number; the two standard ports of IMAP (143 with STARTTLS,
 * 993 with TLS) are one service and map to 0. */
static long service_port(const char *port, enum imap_security sec)
{
	long n = strtol(port, NULL, 10);
	if ((sec == IMAP_SECURITY_STARTTLS && n == 143) || (sec == IMAP_SECURITY_TLS && n == 993))
		return 0;
	return n;
}

bool imap_url_same_server(const char *a, const char *b)
{
	char ha[256], hb[256], pa[8], pb[8];
	enum imap_security sa, sb;
	if (imap_url_parse(a, ha, sizeof(ha), pa, sizeof(pa), &sa) < 0 ||
	    imap_url_parse(b, hb, sizeof(hb), pb, sizeof(pb), &sb) < 0)
		return false;
	size_t la = strlen(ha), lb = strlen(hb);
	if (la > 1 && ha[la - 1] == '.')
		ha[--la] = '\0';
	if (lb > 1 && hb[lb - 1] == '.')
		hb[--lb] = '\0';
	return strcasecmp(ha, hb) == 0 && service_port(pa, sa) == service_port(pb, sb);
}
