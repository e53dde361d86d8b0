/* mailkeep sync: bring a user's hosted mailbox up to date with an account. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hub/hub.h"
#include "imap/imap-client.h"
#include "imap/imap-url.h"
#include "service/svc-sync.h"

static void sync_usage(FILE *f)
{
	fprintf(
	    f, "usage: mailkeep --data DIR sync --user NAME [--account ID] [--passphrase-file P]\n"
	       "                [--compress auto|yes|no] [--quiet] [--full]\n"
	       "       mailkeep --data DIR sync --user NAME --imap URL --login LOGIN\n"
	       "                --password-file FILE [--ca-file CA.pem] [--compress MODE] "
	       "[--quiet]\n\n"
	       "Brings NAME's hosted mailbox up to date with the user's stored accounts (all,\n"
	       "or the one given with --account), or with the account given on the command\n"
	       "line (second form: nothing is stored but mail). Every folder, every message\n"
	       "byte-exact, flags and keywords, internal dates; folders created, renamed or\n"
	       "deleted and messages expunged on the server are reflected. Only what changed\n"
	       "since the last sync is fetched.\n\n"
	       "  --account ID          sync only this stored account\n"
	       "  --passphrase-file P   zero-access users: the passphrase that unlocks their\n"
	       "                        credentials for this sync (the hub cannot without it)\n"
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
	       "  --quiet               no progress display (it is shown on terminals only)\n"
	       "  --full                read every folder's flags in full (servers without\n"
	       "                        CONDSTORE: a folder whose STATUS counts did not change\n"
	       "                        is otherwise scanned only every 15 minutes)\n\n"
	       "Each account ends with a one-line summary. Exit status 0 when everything was\n"
	       "synced, 1 when something failed (what was stored stays; the next sync\n"
	       "resumes), 75 when every failure was temporary (such as the server's\n"
	       "[UNAVAILABLE] to the login: try again later), 2 on a bad command line.\n"
	       "Every use of a stored credential is in the\n"
	       "user's audit log.\n");
}

/* The face's side of a sync: progress on the terminal, a one-line summary
 * for each account as it ends, errors on stderr. */
struct sync_face {
	struct cli_progress *progress;
};

static void sync_account_done(void *ctx, const struct svc_sync_account *r)
{
	struct sync_face *face = ctx;
	cli_progress_done(face->progress);
	char replay[SVC_SUMMARY_SIZE], synced[SVC_SUMMARY_SIZE], progress[SVC_SUMMARY_SIZE];
	svc_sync_summary(r, replay, synced, progress);
	if (replay[0] != '\0')
		printf("%s\n", replay);
	if (synced[0] != '\0')
		printf("%s\n", synced);
	if (progress[0] != '\0')
		printf("%s\n", progress);
	if (r->status != SVC_OK)
		cli_error("%s", r->error);
}

static int exit_status(enum svc_status status)
{
	return status == SVC_OK ? EXIT_OK : status == SVC_TEMPORARY ? EXIT_TEMPFAIL : EXIT_FAIL;
}

int cli_sync_stored(struct hub *hub, const char *user, int64_t only_account, const char *ppfile,
                    bool full_scan, enum imap_compress_mode compress, bool quiet)
{
	struct sync_face face = {.progress = cli_progress_create(quiet)};
	struct svc_sync_options opt = {.only_account = only_account,
	                               .full_scan = full_scan,
	                               .compress = compress,
	                               .progress = cli_progress_update,
	                               .progress_ctx = face.progress,
	                               .passphrase = cli_passphrase(ppfile),
	                               .via = "cli",
	                               .account_done = sync_account_done,
	                               .account_done_ctx = &face,
	                               .reporter = {.report = cli_report}};
	struct svc_sync_result res;
	svc_sync_user(hub, user, &opt, &res);
	cli_progress_free(&face.progress);
	if (res.error[0] != '\0')
		cli_error("%s", res.error);
	if (res.no_account) {
		if (only_account != 0)
			cli_error("%s has no account %lld (see 'mailkeep account list --user %s')",
			          user, (long long)only_account, user);
		else
			cli_error("%s has no accounts yet (add one with 'mailkeep account add')",
			          user);
	}
	return exit_status(res.status);
}

int cmd_sync(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"account", required_argument, NULL, 'a'},
	    {"passphrase-file", required_argument, NULL, 'P'},
	    {"imap", required_argument, NULL, 'i'},
	    {"login", required_argument, NULL, 'l'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"ca-file", required_argument, NULL, 'c'},
	    {"compress", required_argument, NULL, 'z'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"full", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *url = NULL, *login = NULL, *pwfile = NULL, *ca = NULL;
	const char *ppfile = NULL, *account = NULL;
	enum imap_compress_mode compress = IMAP_COMPRESS_AUTO;
	bool quiet = false, full = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'a':
			account = optarg;
			break;
		case 'P':
			ppfile = optarg;
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
		case 'F':
			full = true;
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
	if (user == NULL) {
		cli_error("sync needs --user NAME");
		sync_usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_data_dir(cli, true) == NULL || !cli_valid_user(user))
		return EXIT_USAGE;
	if (url == NULL && login == NULL && pwfile == NULL && ca == NULL) {
		long long id = 0;
		if (account != NULL) {
			char *end;
			id = strtoll(account, &end, 10);
			if (*end != '\0' || id <= 0) {
				cli_error("bad --account ID '%s'", account);
				return EXIT_USAGE;
			}
		}
		struct hub *hub = NULL;
		if (cli_open_hub(cli, true, &hub) < 0)
			return EXIT_FAIL;
		int ret = cli_sync_stored(hub, user, id, ppfile, full, compress, quiet);
		hub_close(&hub);
		return ret;
	}
	if (url == NULL || login == NULL || pwfile == NULL || account != NULL || ppfile != NULL) {
		cli_error("a sync of an account given on the command line needs --imap, --login "
		          "and --password-file (and no --account or --passphrase-file)");
		return EXIT_USAGE;
	}
	char host[256], port[8];
	enum imap_security sec;
	if (imap_url_parse(url, host, sizeof(host), port, sizeof(port), &sec) < 0) {
		cli_error("bad --imap URL '%s': use imaps://host[:port] or imap://host[:port]",
		          url);
		return EXIT_USAGE;
	}
	if (strpbrk(login, "\r\n") != NULL || login[0] == '\0') {
		cli_error("bad --login: empty or contains a line break");
		return EXIT_USAGE;
	}
	/* Only a hub user gets a hosted mailbox: a store made for any other name
	 * would be listed, warned and purged by nothing. */
	struct hub *hub = NULL;
	struct hub_user u;
	if (cli_open_hub_user(cli, false, user, &hub, &u) < 0)
		return EXIT_FAIL;
	char *password = cli_read_secret(pwfile);
	if (password == NULL) {
		hub_close(&hub);
		return EXIT_FAIL;
	}
	struct sync_face face = {.progress = cli_progress_create(quiet)};
	struct svc_sync_options opt = {.compress = compress,
	                               .progress = cli_progress_update,
	                               .progress_ctx = face.progress,
	                               .reporter = {.report = cli_report}};
	struct svc_sync_target t = {.url = url, .login = login, .ca_file = ca};
	struct svc_sync_account r;
	svc_sync_url(hub, &u, &t, &password, &opt, &r);
	sync_account_done(&face, &r);
	cli_progress_free(&face.progress);
	hub_close(&hub);
	return exit_status(r.status);
}
