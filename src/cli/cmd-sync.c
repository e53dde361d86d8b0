/* mailkeep sync: copy an IMAP account into a user's hosted mailbox. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "imap/imap-client.h"
#include "imap/imap-url.h"
#include "store/store.h"
#include "sync/sync.h"

#define SYNC_TIMEOUT_MS 60000

static void sync_usage(FILE *f)
{
	fprintf(f,
		"usage: mailkeep --data DIR sync --user NAME --imap URL --login LOGIN\n"
		"                --password-file FILE [--ca-file CA.pem] [--compress auto|yes|no]\n"
		"                [--quiet]\n\n"
		"Creates NAME's hosted mailbox if it is new and brings it up to date with the\n"
		"IMAP account: every folder, every message byte-exact, flags and keywords,\n"
		"internal dates; folders created, renamed or deleted and messages expunged on\n"
		"the server are reflected. Only what changed since the last sync is fetched.\n\n"
		"  --imap URL            imaps://host[:port] (TLS, port 993) or imap://host[:port]\n"
		"                        (STARTTLS required, port 143)\n"
		"  --login LOGIN         the account's login name\n"
		"  --password-file FILE  read the password from FILE, or from stdin with '-';\n"
		"                        it is used for this sync only and never stored\n"
		"  --ca-file CA.pem      also trust these certificate authorities (the system's\n"
		"                        trust store is always used; verification cannot be\n"
		"                        turned off)\n"
		"  --compress MODE       COMPRESS=DEFLATE when the server offers it: auto (the\n"
		"                        default: not on loopback, where it only costs CPU),\n"
		"                        yes or no\n"
		"  --quiet               no progress display (it is shown on terminals only)\n\n"
		"Ends with a one-line summary. Exit status 0 when everything was synced, 1 when\n"
		"something failed (what was stored stays; the next sync resumes), 2 on a bad\n"
		"command line.\n");
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{"user", required_argument, NULL, 'u'},
		{"imap", required_argument, NULL, 'i'},
		{"login", required_argument, NULL, 'l'},
		{"password-file", required_argument, NULL, 'p'},
		{"ca-file", required_argument, NULL, 'c'},
		{"compress", required_argument, NULL, 'z'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *user = NULL, *url = NULL, *login = NULL, *pwfile = NULL, *ca = NULL;
	enum imap_compress_mode compress = IMAP_COMPRESS_AUTO;
	bool quiet = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'i':
			url = optarg;
			break;
		case 'l':
			login = optarg;
			break;
		case 'p':
			pwfile = optarg;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'z':
			if (strcmp(optarg, "auto") == 0)
				compress = IMAP_COMPRESS_AUTO;
			else if (strcmp(optarg, "yes") == 0)
				compress = IMAP_COMPRESS_YES;
			else if (strcmp(optarg, "no") == 0)
				compress = IMAP_COMPRESS_NO;
			else {
				cli_error("--compress takes auto, yes or no");
				return EXIT_USAGE;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			sync_usage(stdout);
			return EXIT_OK;
		default:
			sync_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (user == NULL || url == NULL || login == NULL || pwfile == NULL) {
		cli_error("sync needs --user, --imap, --login and --password-file");
		sync_usage(stderr);
		return EXIT_USAGE;
	}
	char host[256], port[8];
	struct imap_client_settings set = {.ca_file = ca,
					   .timeout_ms = SYNC_TIMEOUT_MS,
					   .compress = compress};
	if (imap_url_parse(url, host, sizeof(host), port, sizeof(port), &set.security) < 0) {
		cli_error("bad --imap URL '%s': use imaps://host[:port] or imap://host[:port]",
			  url);
		return EXIT_USAGE;
	}
	if (strpbrk(login, "\r\n") != NULL || login[0] == '\0') {
		cli_error("bad --login: empty or contains a line break");
		return EXIT_USAGE;
	}
	set.host = host;
	set.port = port;
	if (cli_data_dir(cli, true) == NULL || !cli_valid_user(user))
		return EXIT_USAGE;

	char *password = cli_read_secret(pwfile);
	if (password == NULL)
		return EXIT_FAIL;
	struct store *store = NULL;
	struct imap_client *client = NULL;
	struct cli_progress *progress = NULL;
	const char *err;
	int ret = EXIT_FAIL;
	double t0 = wall_now();

	if (cli_open_user_store(cli, user, true, &store) < 0)
		goto out;
	if (imap_client_connect(&set, &client, &err) < 0) {
		cli_error("cannot connect to %s: %s", url, err);
		goto out;
	}
	int r = imap_client_login(client, login, password, &err);
	cli_secret_free(&password);
	if (r < 0) {
		cli_error("%s", err);
		goto out;
	}
	char key[1024];
	snprintf(key, sizeof(key), "%s %s", url, login);
	progress = cli_progress_create(quiet);
	struct sync_options so = {.progress = cli_progress_update, .progress_ctx = progress};
	struct sync_stats st;
	r = sync_account(store, key, client, &so, &st, &err);
	cli_progress_done(progress);
	if (r == 0)
		imap_client_logout(client);
	double secs = wall_now() - t0;
	printf("%s %s: %u folders (%u checked), %llu new messages (%.1f MB), %llu flag changes, "
	       "%llu expunged, folders +%u ~%u -%u%s%s, %s%s, %.2f s\n",
	       r == 0 ? "synced" : "sync incomplete", user, st.folders, st.folders_selected,
	       (unsigned long long)st.new_messages, (double)st.new_bytes / 1e6,
	       (unsigned long long)st.flag_changes, (unsigned long long)st.expunged,
	       st.folders_created, st.folders_renamed, st.folders_deleted,
	       st.repaired > 0 ? ", re-paired after UIDVALIDITY change: " : "",
	       st.repaired > 0 ? "yes" : "", st.tier != NULL ? st.tier : "-",
	       imap_client_is_compressed(client) ? ", compressed" : "", secs);
	if (r < 0) {
		cli_error("sync of %s failed: %s", url, err);
		goto out;
	}
	ret = EXIT_OK;
out:
	cli_secret_free(&password);
	cli_progress_free(&progress);
	imap_client_free(&client);
	store_close(&store);
	return ret;
}
