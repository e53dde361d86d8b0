#ifndef MK_HUB_SETTINGS_H
#define MK_HUB_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * serve's settings in DIR/mailkeep.conf ("key = value" lines, '#'
 * comments; the same file as the hub's own settings, hub.h). Every key
 * here has a command-line option of the same name ('_' for '-'), which
 * overrides the file: defaults < mailkeep.conf < command line.
 *
 *   listen                       ADDR:PORT          127.0.0.1:8080
 *   public_url                   URL                http(s)://ADDR:PORT
 *   tls_cert, tls_key            PEM file paths     none (plain HTTP); both or neither
 *   sync_interval                0..604800 seconds  300 (0 = no scheduled syncs)
 *   access_log                   file path          none (stderr)
 *   trusted_proxy                address            none
 *   max_connections              1..4096            128
 *   max_connections_per_address  1..4096            16
 *   header_timeout               1..3600 seconds    10
 *   max_body_memory              10 MiB+1..1 TiB    64 MiB (bytes; K, M, G suffixes)
 *   web_root                     directory          BINDIR/web, else DATADIR/mailkeep/web
 *   web_session_days             1..3650 days       30 (a web sign-in's absolute lifetime)
 *   web_session_idle_days        1..3650 days       14 (unused this long, it ends)
 *   push                         on | off           on (provider push: IDLE/NOTIFY)
 *   full_sync_interval           1..2592000 seconds 86400 (full sync of a pushed account)
 *   push_sweep_interval          10..86400 seconds  300 (STATUS sweep without NOTIFY)
 *   push_connect_rate            1..10000 a second  50 (push connects, all accounts)
 *   push_idle_restart            10..1740 seconds   1680 (IDLE re-issued, RFC 2177)
 *   push_notify                  on | off           on (off: IDLE + sweeps even where
 *                                                   NOTIFY is offered)
 *   sync_keep_seconds            0..3600 seconds    120 (a synced session kept logged in
 *                                                   for the next sync; 0: none kept)
 *   sync_keep_max                0..4096            64 (sessions kept, all accounts)
 *
 * Errors name the file, the line and what to do; nothing in this file is
 * secret (the TLS key is a path to a file). Errors: 0 ok / -1 with
 * *error_r, valid until the calling thread's next failed call here.
 */

#define HUB_SERVE_PATH_MAX 4096

struct hub_serve_settings {
	char listen[256];
	char public_url[512];
	char tls_cert[HUB_SERVE_PATH_MAX];
	char tls_key[HUB_SERVE_PATH_MAX];
	unsigned sync_interval;
	char access_log[HUB_SERVE_PATH_MAX];
	char trusted_proxy[64];
	unsigned max_connections;
	unsigned max_connections_per_address;
	unsigned header_timeout;
	size_t max_body_memory;
	unsigned no_replay;                /* 1: device changes wait for the next sync */
	char web_root[HUB_SERVE_PATH_MAX]; /* "" : the default places */
	unsigned web_session_days;
	unsigned web_session_idle_days;
	unsigned push; /* 1 (on): provider push */
	unsigned full_sync_interval;
	unsigned push_sweep_interval;
	unsigned push_connect_rate;
	unsigned push_idle_restart;
	unsigned push_notify;
	unsigned sync_keep_seconds;
	unsigned sync_keep_max;
};

/* The embedded defaults (the table above). */
void hub_serve_settings_default(struct hub_serve_settings *set);

/* Is key one of serve's settings? (The hub's own reader of mailkeep.conf
 * leaves these to this module.) */
bool hub_serve_setting_known(const char *key);

/* Set one setting from its text value, checking it; the error says what
 * the value must be (without naming where it came from). */
int hub_serve_setting_set(struct hub_serve_settings *set, const char *key, const char *value,
                          const char **error_r);

/* Defaults, then every serve setting found in DIR/mailkeep.conf (a missing
 * file means defaults). Keys of the hub's own settings (hub.h) are left
 * alone; any other key is an error, as is a bad value, tls_cert without
 * tls_key or a key given twice. */
int hub_serve_settings_read(const char *dir, struct hub_serve_settings *set, const char **error_r);

#endif
