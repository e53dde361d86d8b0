/* RFC 6186 SRV and MX lookups through the system's stub resolver
 * (res_nquery), optionally against one given server (tests run a DNS
 * responder on 127.0.0.1). Answers are parsed with ns_parserr/dn_expand,
 * which check every length against the message. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "setup.h"

#define DNS_ANSWER_MAX 4096

static int dns_query(const struct setup_options *opt, const char *name, int type,
                     unsigned char *answer, int size, int *len_r, const char **error_r)
{
	struct __res_state res;
	memset(&res, 0, sizeof(res));
	if (res_ninit(&res) < 0) {
		*error_r = "cannot initialise the DNS resolver";
		return -1;
	}
	int timeout_s = opt->timeout_ms > 0 ? (opt->timeout_ms + 999) / 1000 : 5;
	res.retrans = timeout_s;
	res.retry = 1;
	if (opt->dns_server != NULL) {
		char addr[64];
		const char *colon = strrchr(opt->dns_server, ':');
		size_t al =
		    colon != NULL ? (size_t)(colon - opt->dns_server) : strlen(opt->dns_server);
		char *end = NULL;
		long port = colon != NULL ? strtol(colon + 1, &end, 10) : 53;
		struct in_addr in;
		if (al >= sizeof(addr) ||
		    (colon != NULL && (*end != '\0' || port <= 0 || port > 65535))) {
			res_nclose(&res);
			*error_r = "bad DNS server (want IPv4ADDR:PORT)";
			return -1;
		}
		memcpy(addr, opt->dns_server, al);
		addr[al] = '\0';
		if (inet_pton(AF_INET, addr, &in) != 1) {
			res_nclose(&res);
			*error_r = "bad DNS server (want IPv4ADDR:PORT)";
			return -1;
		}
		res.nscount = 1;
		res.nsaddr_list[0].sin_family = AF_INET;
		res.nsaddr_list[0].sin_addr = in;
		res.nsaddr_list[0].sin_port = htons((uint16_t)port);
		res.options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	}
	int n = res_nquery(&res, name, ns_c_in, type, answer, size);
	int herr = res.res_h_errno;
	res_nclose(&res);
	if (n < 0) {
		if (herr == HOST_NOT_FOUND || herr == NO_DATA) {
			*len_r = 0;
			return 0;
		}
		*error_r = herr == TRY_AGAIN ? "DNS server did not answer" : "DNS lookup failed";
		return -1;
	}
	*len_r = n;
	return 0;
}

int setup_dns_srv(const struct setup_options *opt, const char *name, struct setup_srv *srv_r,
                  const char **error_r)
{
	unsigned char answer[DNS_ANSWER_MAX];
	int len;
	if (dns_query(opt, name, ns_t_srv, answer, sizeof(answer), &len, error_r) < 0)
		return -1;
	if (len == 0)
		return 0;
	ns_msg msg;
	if (ns_initparse(answer, len, &msg) < 0) {
		*error_r = "malformed DNS answer";
		return -1;
	}
	bool found = false;
	struct setup_srv best = {0};
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
			*error_r = "malformed DNS answer";
			return -1;
		}
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
			continue;
		const unsigned char *rd = ns_rr_rdata(rr);
		struct setup_srv s;
		s.priority = (unsigned)(rd[0] << 8 | rd[1]);
		s.weight = (unsigned)(rd[2] << 8 | rd[3]);
		s.port = (unsigned)(rd[4] << 8 | rd[5]);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, s.target,
		              (int)sizeof(s.target)) < 0)
			continue;
		if (!found || s.priority < best.priority ||
		    (s.priority == best.priority && s.weight > best.weight)) {
			best = s;
			found = true;
		}
	}
	/* RFC 2782: a lone "." target says the service is decidedly not there. */
	if (!found || best.target[0] == '\0' || strcmp(best.target, ".") == 0 || best.port == 0)
		return 0;
	*srv_r = best;
	return 1;
}

int setup_dns_mx(const struct setup_options *opt, const char *domain, char *host, size_t size,
                 const char **error_r)
{
	unsigned char answer[DNS_ANSWER_MAX];
	int len;
	if (dns_query(opt, domain, ns_t_mx, answer, sizeof(answer), &len, error_r) < 0)
		return -1;
	if (len == 0)
		return 0;
	ns_msg msg;
	if (ns_initparse(answer, len, &msg) < 0) {
		*error_r = "malformed DNS answer";
		return -1;
	}
	unsigned best_pref = 0x10000;
	char best[NS_MAXDNAME] = "";
	for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
		ns_rr rr;
		char name[NS_MAXDNAME];
		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
			*error_r = "malformed DNS answer";
			return -1;
		}
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3)
			continue;
		const unsigned char *rd = ns_rr_rdata(rr);
		unsigned pref = (unsigned)(rd[0] << 8 | rd[1]);
		if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, name, (int)sizeof(name)) <
		    0)
			continue;
		if (pref < best_pref) {
			best_pref = pref;
			memcpy(best, name, sizeof(name));
		}
	}
	if (best[0] == '\0' || strlen(best) >= size)
		return 0;
	memcpy(host, best, strlen(best) + 1);
	return 1;
}
