/*
 * mailkeep serve: parses the options and runs the hub daemon (src/daemon/,
 * daemon.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "daemon/daemon.h"
#include "hub/hub-settings.h"

static void serve_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR serve [--listen ADDR:PORT] [--public-url URL]\n"
	           "                [--tls-cert C --tls-key K] [--sync-interval SECONDS]\n"
	           "                [--access-log FILE] [--trusted-proxy ADDR]\n"
	           "                [--max-connections N] [--max-connections-per-address N]\n"
	           "                [--header-timeout SECONDS] [--max-body-memory BYTES]\n"
	           "                [--no-replay] [--web-root DIR]\n"
	           "                [--web-session-days N] [--web-session-idle-days N]\n"
	           "                [--push on|off] [--full-sync-interval SECONDS]\n"
	           "                [--push-sweep-interval SECONDS] [--push-connect-rate N]\n"
	           "                [--push-idle-restart SECONDS]\n"
	           "                [--sync-keep-seconds SECONDS] [--sync-keep-max N]\n\n"
	           "Runs the hub: the JMAP API for devices at /.well-known/jmap and /jmap/...\n"
	           "(Bearer device tokens from 'mailkeep device add', or Basic with the hub\n"
	           "user's password), EventSource push, and a scheduler that syncs every\n"
	           "server-key user's stored accounts every SECONDS (default 300, 0 = never).\n"
	           "Zero-access users are synced while signed in (an unlock lease) or on\n"
	           "their own 'sync --passphrase-file'.\n"
	           "Changes made through the API are kept in the hosted mailbox and carried to\n"
	           "the provider at once (a server-key user's; zero-access users' wait for\n"
	           "their sync); scheduled syncs do not undo them.\n\n"
	           "  --listen ADDR:PORT  default 127.0.0.1:8080\n"
	           "  --public-url URL    the URL devices use (behind a reverse proxy); default\n"
	           "                      http(s)://ADDR:PORT\n"
	           "  --tls-cert C --tls-key K  serve HTTPS itself (PEM files)\n"
	           "  --access-log FILE   one line per request, no secrets (default stderr)\n"
	           "  --trusted-proxy ADDR  the reverse proxy's address: for its requests the\n"
	           "                      client is the last X-Forwarded-For entry (access log,\n"
	           "                      sign-in rate limit); never believed from others\n"
	           "  --max-connections N   open connections at most (default 128; each has a\n"
	           "                      thread)\n"
	           "  --max-connections-per-address N  from one address, an IPv6 /64 counting\n"
	           "                      as one (default 16; the trusted proxy is exempt)\n"
	           "  --header-timeout SECONDS  a connection must send a complete request head\n"
	           "                      within this (default 10), however slowly it trickles\n"
	           "  --max-body-memory BYTES  request bodies held in memory at once, all\n"
	           "                      clients together (default 64 MiB; more than 10 MiB);\n"
	           "                      beyond it 503 with Retry-After\n"
	           "  --no-replay         device changes wait for the next sync instead of\n"
	           "                      going to the provider at once\n"
	           "  --web-root DIR      the web app's files (scripts/build-web.sh), served at /\n"
	           "                      (default: web/ next to the binary, else the installed\n"
	           "                      ones); loaded into memory at start\n"
	           "  --web-session-days N  a web app sign-in lasts N days at most (default 30)\n"
	           "  --web-session-idle-days N  and ends when unused N days (default 14)\n"
	           "  --push on|off       provider push (default on): an idle connection per\n"
	           "                      external account; changes synced at once; the\n"
	           "                      scheduled syncs leave the accounts it watches alone\n"
	           "  --full-sync-interval SECONDS  a full sync of each account push watches\n"
	           "                      this often (default 86400)\n"
	           "  --push-sweep-interval SECONDS  without NOTIFY, the STATUS sweep of the\n"
	           "                      other folders this often (default 300)\n"
	           "  --push-connect-rate N  push connects a second at most (default 50)\n"
	           "  --push-idle-restart SECONDS  IDLE re-issued this often (default 1680)\n"
	           "  --sync-keep-seconds SECONDS  a sync's IMAP session stays logged in this\n"
	           "                      long for the account's next sync (default 120;\n"
	           "                      0: every sync logs in and out)\n"
	           "  --sync-keep-max N   sessions kept so, all accounts (default 64)\n\n"
	           "Requests are authenticated on their headers before a body is read\n"
	           "(unauthenticated: 401, the body is never read). Password sign-ins are\n"
	           "limited before the password is checked: 10 a minute per user, 10 per\n"
	           "address (IPv4 address or IPv6 /64), 100 for the whole hub; beyond that\n"
	           "429 with Retry-After. Device tokens are not limited by another's guesses.\n\n"
	           "Each option can also be set in DIR/mailkeep.conf, as 'key = value' with '_'\n"
	           "for '-' (e.g. max_connections = 256); an option given here overrides it.\n");
}

int cmd_serve(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"public-url", required_argument, NULL, 'u'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"sync-interval", required_argument, NULL, 's'},
	    {"access-log", required_argument, NULL, 'a'},
	    {"trusted-proxy", required_argument, NULL, 'p'},
	    {"max-connections", required_argument, NULL, 'C'},
	    {"max-connections-per-address", required_argument, NULL, 'A'},
	    {"header-timeout", required_argument, NULL, 'T'},
	    {"max-body-memory", required_argument, NULL, 'M'},
	    {"no-replay", no_argument, NULL, 'R'},
	    {"web-root", required_argument, NULL, 'W'},
	    {"web-session-days", required_argument, NULL, 'D'},
	    {"web-session-idle-days", required_argument, NULL, 'I'},
	    {"push", required_argument, NULL, 'P'},
	    {"full-sync-interval", required_argument, NULL, 'F'},
	    {"push-sweep-interval", required_argument, NULL, 'S'},
	    {"push-connect-rate", required_argument, NULL, 'N'},
	    {"push-idle-restart", required_argument, NULL, 'J'},
	    {"sync-keep-seconds", required_argument, NULL, 'K'},
	    {"sync-keep-max", required_argument, NULL, 'X'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	/* defaults < DIR/mailkeep.conf < the options (hub/hub-settings.h); a bad
	 * file is reported once the options are read (so --help still works). */
	static struct hub_serve_settings conf;
	const char *conf_err = NULL;
	if (cli->data_dir == NULL || hub_serve_settings_read(cli->data_dir, &conf, &conf_err) < 0)
		hub_serve_settings_default(&conf);
#define CONF_STR(field) (conf.field[0] != '\0' ? conf.field : NULL)
	const char *listen = conf.listen, *public_url = CONF_STR(public_url);
	const char *cert = CONF_STR(tls_cert), *key = CONF_STR(tls_key);
	const char *access_log = CONF_STR(access_log), *proxy = CONF_STR(trusted_proxy);
#undef CONF_STR
	long interval = conf.sync_interval;
	unsigned max_connections = conf.max_connections;
	unsigned per_address = conf.max_connections_per_address;
	unsigned header_timeout = conf.header_timeout;
	size_t body_memory = conf.max_body_memory;
	unsigned long long value;
	bool no_replay = conf.no_replay != 0;
	const char *web_root = conf.web_root[0] != '\0' ? conf.web_root : NULL;
	unsigned web_days = conf.web_session_days, web_idle_days = conf.web_session_idle_days;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'l':
			listen = optarg;
			break;
		case 'u':
			public_url = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			access_log = optarg;
			break;
		case 'p':
			proxy = optarg;
			break;
		case 's':
			interval = strtol(optarg, &end, 10);
			if (*end != '\0' || interval < 0 || interval > 86400 * 7) {
				cli_error("--sync-interval takes 0 to 604800 seconds");
				return EXIT_USAGE;
			}
			break;
		case 'C':
		case 'A':
		case 'T':
		case 'M':
			errno = 0;
			value = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || value < 1 ||
			    (c == 'C' && value > 4096) || (c == 'A' && value > 4096) ||
			    (c == 'T' && value > 3600) ||
			    (c == 'M' && (value <= DAEMON_MAX_REQUEST || value > (1ull << 40)))) {
				cli_error("bad --%s value '%s' (see --help)",
				          c == 'C'   ? "max-connections"
				          : c == 'A' ? "max-connections-per-address"
				          : c == 'T' ? "header-timeout"
				                     : "max-body-memory",
				          optarg);
				return EXIT_USAGE;
			}
			if (c == 'C')
				max_connections = (unsigned)value;
			else if (c == 'A')
				per_address = (unsigned)value;
			else if (c == 'T')
				header_timeout = (unsigned)value;
			else
				body_memory = (size_t)value;
			break;
		case 'R':
			no_replay = true;
			break;
		case 'W':
			web_root = optarg;
			break;
		case 'D':
		case 'I':
			errno = 0;
			value = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || value < 1 ||
			    value > 3650) {
				cli_error("bad --%s value '%s': use 1 to 3650 days",
				          c == 'D' ? "web-session-days" : "web-session-idle-days",
				          optarg);
				return EXIT_USAGE;
			}
			if (c == 'D')
				web_days = (unsigned)value;
			else
				web_idle_days = (unsigned)value;
			break;
		case 'P':
		case 'F':
		case 'S':
		case 'N':
		case 'J':
		case 'K':
		case 'X': {
			/* Checked and applied as the file's values are. */
			const char *setting = c == 'P'   ? "push"
			                      : c == 'F' ? "full_sync_interval"
			                      : c == 'S' ? "push_sweep_interval"
			                      : c == 'N' ? "push_connect_rate"
			                      : c == 'K' ? "sync_keep_seconds"
			                      : c == 'X' ? "sync_keep_max"
			                                 : "push_idle_restart";
			const char *err;
			if (hub_serve_setting_set(&conf, setting, optarg, &err) < 0) {
				cli_error("%s (see --help)", err);
				return EXIT_USAGE;
			}
			break;
		}
		case 'h':
			serve_usage(stdout);
			return EXIT_OK;
		default:
			serve_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (conf_err != NULL) {
		cli_error("%s", conf_err);
		return EXIT_USAGE;
	}
	if (optind != argc || (cert == NULL) != (key == NULL)) {
		cli_error(optind != argc ? "serve takes no arguments"
		                         : "--tls-cert and --tls-key go together");
		return EXIT_USAGE;
	}
	char addr[64];
	const char *colon = strrchr(listen, ':');
	char *end;
	long port = colon != NULL ? strtol(colon + 1, &end, 10) : -1;
	if (colon == NULL || (size_t)(colon - listen) >= sizeof(addr) || colon == listen ||
	    *end != '\0' || port < 0 || port > 65535) {
		cli_error("bad --listen '%s': use ADDR:PORT, e.g. 127.0.0.1:8080", listen);
		return EXIT_USAGE;
	}
	memcpy(addr, listen, (size_t)(colon - listen));
	addr[colon - listen] = '\0';

	const char *dir = cli_data_dir(cli, true);
	if (dir == NULL)
		return EXIT_FAIL;
	FILE *log = stderr;
	if (access_log != NULL && (log = fopen(access_log, "a")) == NULL) {
		cli_error("cannot open --access-log %s", access_log);
		return EXIT_FAIL;
	}
	struct daemon_settings ds = {.data_dir = dir,
	                             .address = addr,
	                             .port = (unsigned)port,
	                             .public_url = public_url,
	                             .tls_cert = cert,
	                             .tls_key = key,
	                             .sync_interval = (unsigned)interval,
	                             .access_log = log,
	                             .trusted_proxy = proxy,
	                             .max_connections = max_connections,
	                             .per_address = per_address,
	                             .header_timeout = header_timeout,
	                             .body_memory = body_memory,
	                             .replay_now = !no_replay,
	                             .web_root = web_root,
	                             .web_session_days = web_days,
	                             .web_session_idle_days = web_idle_days,
	                             .full_sync_interval = conf.full_sync_interval,
	                             .sync_keep_seconds = conf.sync_keep_seconds,
	                             .sync_keep_max = conf.sync_keep_max};
	/* Provider push (src/push through daemon-provider.c); the environment's
	 * MK_NO_PROVIDER_PUSH turns it off for tests. */
	struct daemon_push_settings ps = {.sweep_interval = conf.push_sweep_interval,
	                                  .connect_rate = conf.push_connect_rate,
	                                  .idle_restart = conf.push_idle_restart,
	                                  .no_notify = conf.push_notify == 0};
	if (conf.push != 0 && getenv("MK_NO_PROVIDER_PUSH") == NULL)
		daemon_provider_register(&ps);
	int r = daemon_run(&ds);
	if (log != stderr)
		fclose(log);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}
