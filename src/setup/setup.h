/* Finding an account's server settings from an email address: the
 * provider profiles shipped with mailkeep (share/providers.json, built into
 * the binary), the Thunderbird autoconfig format, RFC 6186 SRV records and
 * a guess from common host names, each result labelled with where it came
 * from. Also the importers of account settings (never passwords) from a
 * Thunderbird profile's prefs.js and an ~/.mbsyncrc.
 *
 * Engines layer: nothing here prints; errors travel through error_r as
 * constant strings, details of each discovery step through the result's
 * trail. All memory belongs to the caller unless stated otherwise. */
#ifndef MK_SETUP_H
#define MK_SETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum setup_security {
	SETUP_SEC_TLS,      /* implicit TLS: imaps:// 993, submissions:// 465 */
	SETUP_SEC_STARTTLS, /* imap:// 143, smtp:// 587 with STARTTLS */
	SETUP_SEC_PLAIN,    /* clear text: found, shown, never used */
};

#define SETUP_AUTH_PASSWORD 0x1u
#define SETUP_AUTH_APP_PASSWORD 0x2u
#define SETUP_AUTH_OAUTH2 0x4u

struct setup_server {
	char host[256];
	unsigned port;
	enum setup_security security;
	char login[321]; /* with %EMAIL...% placeholders in profiles */
};

struct setup_oauth {
	char provider[32]; /* the hub configuration's oauth.<provider>.* keys */
	char authorization_endpoint[256], token_endpoint[256];
	char device_endpoint[256], revocation_endpoint[256]; /* "" if none */
	char scopes[512];                                    /* space-separated */
};

struct setup_quirks {
	bool server_files_sent; /* the server keeps its own copy of sent mail */
	unsigned max_connections;
	uint64_t daily_download_bytes; /* 0: no known limit */
	char special_folders[512];     /* "role=name; role=name" */
	char notes[512];
};

#define SETUP_MAX_DOMAINS 24
struct setup_profile {
	char id[32], name[64];
	char domains[SETUP_MAX_DOMAINS][64];
	size_t n_domains;
	char mx[SETUP_MAX_DOMAINS][64]; /* "host" exact, ".suffix" any below */
	size_t n_mx;
	struct setup_server imap, smtp;
	unsigned auth;            /* SETUP_AUTH_* */
	struct setup_oauth oauth; /* provider[0] == '\0' unless auth has OAUTH2 */
	struct setup_quirks quirks;
};

struct setup_profiles;

/* Parse profiles from JSON text (share/providers.json's format,
 * docs/setup.md). Every profile must be complete: -1 names the first gap. */
int setup_profiles_parse(const char *json, size_t len, struct setup_profiles **profiles_r,
                         const char **error_r);
/* The profiles built into the binary. */
int setup_profiles_builtin(struct setup_profiles **profiles_r, const char **error_r);
void setup_profiles_free(struct setup_profiles **profiles);
size_t setup_profiles_count(const struct setup_profiles *p);
const struct setup_profile *setup_profiles_get(const struct setup_profiles *p, size_t i);
/* The profile by id, for a mail domain, or for an MX host name; NULL if none. */
const struct setup_profile *setup_profile_by_id(const struct setup_profiles *p, const char *id);
const struct setup_profile *setup_profile_by_domain(const struct setup_profiles *p,
                                                    const char *domain);
const struct setup_profile *setup_profile_by_mx(const struct setup_profiles *p,
                                                const char *mx_host);
const char *setup_security_name(enum setup_security s);
/* "password, app-password, oauth2" for a SETUP_AUTH_* mask, into out. */
void setup_auth_names(unsigned auth, char *out, size_t size);

/* Replace %EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN% in templ. -1 if
 * out is too small. */
int setup_expand(const char *templ, const char *email, char *out, size_t size);
/* The URL mailkeep stores: imaps://host:port, imap://host:port,
 * submissions://host:port, smtp://host:port. -1 for clear text or no room. */
int setup_imap_url(const struct setup_server *s, char *out, size_t size);
int setup_smtp_url(const struct setup_server *s, char *out, size_t size);

/* Thunderbird autoconfig (config-v1.1.xml). Parses at most
 * SETUP_AUTOCONFIG_MAX bytes, nesting SETUP_XML_MAX_DEPTH; takes the first
 * IMAP incomingServer and the first SMTP outgoingServer (preferring TLS
 * over STARTTLS over plain). Returns 1 when an IMAP server was found, 0
 * when the document is well formed but has none, -1 when it is not one. */
#define SETUP_AUTOCONFIG_MAX (64 * 1024)
#define SETUP_XML_MAX_DEPTH 16
struct setup_autoconfig {
	char provider_name[128];
	bool has_imap, has_smtp;
	struct setup_server imap, smtp;
	unsigned imap_auth, smtp_auth; /* SETUP_AUTH_* as the document says */
};
int setup_autoconfig_parse(const char *xml, size_t len, struct setup_autoconfig *ac_r,
                           const char **error_r);

/* Where discovery looks. NULL/0 fields take the real defaults; the test
 * overrides point them at 127.0.0.1. */
struct setup_options {
	/* NULL: https://autoconfig.DOMAIN/mail/config-v1.1.xml, then
	 * https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml, then the
	 * ISPDB https://autoconfig.thunderbird.net/v1.1/DOMAIN. Set (tests): the
	 * same three as BASE/autoconfig.DOMAIN/mail/config-v1.1.xml,
	 * BASE/DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml and
	 * BASE/ispdb/DOMAIN. */
	const char *autoconfig_base;
	bool no_ispdb;          /* do not ask thunderbird.net */
	const char *dns_server; /* "ADDR:PORT" (IPv4); NULL: the system's */
	/* The guess connects to the guessed names; guess_address (tests)
	 * connects to this address instead, with guess_imap_port and
	 * guess_smtp_port in place of 993 and 465. */
	const char *guess_address;
	unsigned guess_imap_port, guess_smtp_port;
	int timeout_ms;      /* per step; 0: 10 s */
	const char *ca_file; /* for autoconfig over HTTPS; NULL: system */
};

/* What discovery found for one address. */
struct setup_found {
	const struct setup_profile *profile; /* NULL unless a profile matched */
	char provider_name[128];
	bool has_imap, has_smtp;
	struct setup_server imap, smtp; /* logins expanded */
	char imap_source[512], smtp_source[512];
	unsigned auth;
	char trail[4096]; /* every step tried, one line each */
};

/* Find settings for email: profile by domain, autoconfig, profile by MX,
 * SRV, guess. Returns 0 when an IMAP server was found, -1 otherwise (the
 * trail says what was tried). */
int setup_discover(const struct setup_profiles *p, const char *email,
                   const struct setup_options *opt, struct setup_found *found_r,
                   const char **error_r);
/* Whether email is a plausible address (local@domain, printable, no
 * spaces, CR, LF, at most 320 bytes); *domain_r points into email. */
bool setup_email_split(const char *email, const char **domain_r);

/* DNS (setup-dns.c): RFC 6186 SRV lookups and MX, through res_nquery,
 * against opt->dns_server when set. */
struct setup_srv {
	char target[256];
	unsigned port, priority, weight;
};
/* The best SRV record of name (lowest priority, highest weight); 1 found,
 * 0 none (or target "."), -1 error. */
int setup_dns_srv(const struct setup_options *opt, const char *name, struct setup_srv *srv_r,
                  const char **error_r);
/* The preferred MX host of domain; 1 found, 0 none, -1 error. */
int setup_dns_mx(const struct setup_options *opt, const char *domain, char *host, size_t size,
                 const char **error_r);

/* Imported account settings (setup-import.c). */
#define SETUP_IMPORT_MAX 32
struct setup_import {
	char name[128];  /* the source's name for it */
	char email[321]; /* "" if the source does not say */
	struct setup_server imap;
	bool has_smtp;
	struct setup_server smtp;
	char ca_file[1024]; /* "" if none */
	char note[256];     /* what was left out and why */
};
#define SETUP_IMPORT_FILE_MAX (4 * 1024 * 1024)
/* Thunderbird prefs.js text: IMAP servers (mail.server.serverN.*) with the
 * SMTP server (mail.smtpserver.smtpN.*) of their default identity. Passwords
 * are never in prefs.js and nothing else is read. Returns the number found
 * (0..SETUP_IMPORT_MAX) or -1. */
int setup_import_thunderbird(const char *prefs, size_t len, struct setup_import *out, size_t max,
                             const char **error_r);
/* ~/.mbsyncrc text: IMAPAccount blocks (Host, Port, User, TLSType/SSLType,
 * CertificateFile). Pass and PassCmd are skipped unread. */
int setup_import_mbsync(const char *rc, size_t len, struct setup_import *out, size_t max,
                        const char **error_r);

#endif
