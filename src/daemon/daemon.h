#ifndef MK_DAEMON_H
#define MK_DAEMON_H

/*
 * The hub daemon (what 'mailkeep serve' runs): the JMAP API (RFC 8620/8621)
 * with EventSource push for the devices, and the background jobs (the
 * scheduled syncs, the outbox, the full-text indexer, upload expiry, the
 * inactivity lifecycle). The command line only parses options and calls
 * daemon_run().
 *
 * Files (src/daemon/): daemon.c start and stop; daemon-stores.c the shared
 * registry of open user stores; daemon-signin.c the sign-in gate;
 * daemon-auth.c authentication; daemon-http.c admission, routing and
 * responses; daemon-api.c the session object and the API; daemon-blob.c
 * upload and download; daemon-push.c the event source and StateChange push;
 * daemon-jobs.c the background jobs; daemon-log.c the one logging function.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DAEMON_MAX_CONNECTIONS 128
#define DAEMON_PER_ADDRESS 16 /* connections from one address (IPv6: /64) */
#define DAEMON_HEADER_TIMEOUT 10
#define DAEMON_BODY_MEMORY (64u * 1024 * 1024) /* request bodies held at once */
#define DAEMON_MAX_REQUEST (10 * 1024 * 1024)

struct daemon_settings {
	const char *data_dir; /* an initialised hub directory */
	const char *address;  /* to listen on */
	unsigned port;        /* 0: any */
	const char *public_url; /* NULL: http(s)://address:port */
	const char *tls_cert, *tls_key; /* both or neither */
	unsigned sync_interval;         /* seconds, 0 = no scheduled syncs */
	FILE *access_log;               /* one line per request */
	const char *trusted_proxy;
	unsigned max_connections, per_address, header_timeout;
	size_t body_memory;
};

/* Run the daemon until SIGTERM or SIGINT (blocked in the calling thread and
 * every thread it starts), then stop it. Returns 0 after a clean stop, -1 if
 * it could not start (the error logged). */
int daemon_run(const struct daemon_settings *settings);

#endif
