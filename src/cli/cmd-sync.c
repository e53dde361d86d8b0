/* mailkeep sync: bring a user's hosted mailbox up to date with an account. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "lib/clock.h"
#include "hub/hub.h"
#include "imap/imap-client.h"
#include "imap/imap-url.h"
#include "outbox.h"
#include "store/store.h"
#include "sync/sync.h"

#define SYNC_TIMEOUT_MS 60000

static void sync_usage(FILE *f)
{
	fprintf(
	    f, "usage: mailkeep --data DIR sync --user NAME [--account ID] [--passphrase-file P]\n"
	       "                [--compress auto|yes|no] [--quiet]\n"
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
	       "  --quiet               no progress display (it is shown on terminals only)\n\n"
	       "Each account ends with a one-line summary. Exit status 0 when everything was\n"
	       "synced, 1 when something failed (what was stored stays; the next sync\n"
	       "resumes), 75 when every failure was temporary (such as the server's\n"
	       "[UNAVAILABLE] to the login: try again later), 2 on a bad command line.\n"
	       "Every use of a stored credential is in the\n"
	       "user's audit log.\n");
}

struct sync_job {
	const char *user;
	const char *url;
	const char *login;
	const char *ca_file;
	const char *account_key;
	enum imap_compress_mode compress;
	bool quiet;
	/* Stored accounts: audit the provider login. */
	struct hub *hub;
	const struct hub_user *hub_user;
	int64_t account_id;
};

/* Who an error is about: "USER, account ID" for a stored account, else
 * "USER, URL". Every sync error names it (the scheduler's log mixes users). */
static const char *job_who(const struct sync_job *job, char *buf, size_t size)
{
	if (job->account_id != 0)
		snprintf(buf, size, "%s, account %lld", job->user, (long long)job->account_id);
	else
		snprintf(buf, size, "%s, %s", job->user, job->url);
	return buf;
}

/* Connect, log in (password is wiped by the caller), sync, print the
 * summary. Returns EXIT_OK, EXIT_TEMPFAIL (the server refused the login
 * for a temporary reason: try again later) or EXIT_FAIL. */
static int sync_one(struct store *store, const struct sync_job *job, char **password)
{
	char host[256], port[8], who[400];
	job_who(job, who, sizeof(who));
	const char *err;
	struct imap_client_settings set = {
	    .ca_file = job->ca_file, .timeout_ms = SYNC_TIMEOUT_MS, .compress = job->compress};
	if (imap_url_parse(job->url, host, sizeof(host), port, sizeof(port), &set.security) < 0) {
		cli_error("%s: bad IMAP URL '%s'", who, job->url);
		cli_secret_free(password);
		return EXIT_FAIL;
	}
	set.host = host;
	set.port = port;
	struct imap_client *client = NULL;
	struct cli_progress *progress = NULL;
	int ret = EXIT_FAIL;
	double t0 = clock_mono();
	if (imap_client_connect(&set, &client, &err) < 0) {
		cli_secret_free(password);
		cli_error("%s: cannot connect to %s: %s", who, job->url, err);
		return EXIT_FAIL;
	}
	int r = imap_client_login(client, job->login, *password, &err);
	cli_secret_free(password);
	if (job->hub != NULL) {
		char server[300];
		snprintf(server, sizeof(server), "%s:%s", host, port);
		const char *mech = imap_client_auth_mechanism(client);
		struct audit_detail d[] = {{"server", server},
		                           {"mechanism", mech != NULL ? mech : "none"},
		                           {"result", r == 0 ? "ok" : "failed"}};
		const char *aerr;
		if (hub_audit(job->hub, job->hub_user, AUDIT_PROVIDER_LOGIN, job->account_id, d, 3,
		              &aerr) < 0)
			cli_error("%s: %s", who, aerr);
	}
	if (r < 0) {
		cli_error("%s: %s", who, err);
		if (r == IMAP_LOGIN_TEMPORARY)
			ret = EXIT_TEMPFAIL;
		goto out;
	}
	progress = cli_progress_create(job->quiet);
	struct sync_options so = {.progress = cli_progress_update, .progress_ctx = progress};
	struct sync_stats st;
	/* Device changes go to the server first, so the sync below sees a
	 * server that has them (SPEC-10 section 3). */
	struct sync_replay_stats rst;
	if (sync_replay_account_key(store, job->account_key, client, NULL, &rst, &err) < 0)
		cli_error("%s: device changes not all carried to the server: %s", who, err);
	if (!job->quiet && rst.replayed + rst.failed + rst.deferred > 0)
		printf("replayed %s: %u device changes in %u commands, %u failed, %u deferred, "
		       "%u conflicts, %.3f s\n",
		       who, rst.replayed, rst.commands, rst.failed, rst.deferred, rst.conflicts,
		       rst.seconds);
	r = sync_account(store, job->account_key, client, &so, &st, &err);
	cli_progress_done(progress);
	if (r == 0)
		imap_client_logout(client);
	printf("%s %s: %u folders (%u checked), %llu new messages (%.1f MB), %llu flag changes, "
	       "%llu expunged, folders +%u ~%u -%u%s%s, %s%s, %.2f s\n",
	       r == 0 ? "synced" : "sync incomplete", who, st.folders, st.folders_selected,
	       (unsigned long long)st.new_messages, (double)st.new_bytes / 1e6,
	       (unsigned long long)st.flag_changes, (unsigned long long)st.expunged,
	       st.folders_created, st.folders_renamed, st.folders_deleted,
	       st.repaired > 0 ? ", re-paired after UIDVALIDITY change: " : "",
	       st.repaired > 0 ? "yes" : "", st.tier != NULL ? st.tier : "-",
	       imap_client_is_compressed(client) ? ", compressed" : "", clock_mono() - t0);
	if (r < 0) {
		cli_error("%s: sync of %s failed: %s", who, job->url, err);
		goto out;
	}
	ret = EXIT_OK;
out:
	cli_progress_free(&progress);
	imap_client_free(&client);
	return ret;
}

/* Sync the user's stored accounts (all, or only_account). */
int cli_sync_stored(struct cli *cli, const char *user, int64_t only_account, const char *ppfile,
                    enum imap_compress_mode compress, bool quiet)
{
	struct hub *hub = NULL;
	struct hub_user u;
	struct hub_account *accts = NULL;
	size_t n = 0;
	struct vault_kek *kek = NULL;
	struct store *store = NULL;
	char *passphrase = NULL;
	const char *err;
	int ret = EXIT_FAIL;
	if (cli_open_hub(cli, true, &hub) < 0)
		return EXIT_FAIL;
	if (hub_user_get(hub, user, &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &accts, &n, &err) < 0) {
		cli_error("%s: %s", user, err);
		goto out;
	}
	if (ppfile != NULL && (passphrase = cli_read_secret(ppfile)) == NULL)
		goto out;
	if (hub_user_kek(hub, &u, passphrase, &kek, &err) < 0) {
		cli_error("%s: %s", user, err);
		goto out;
	}
	cli_secret_free(&passphrase);
	if (u.zero_access) {
		struct audit_detail d[] = {{"via", "cli"}};
		if (hub_audit(hub, &u, AUDIT_USER_SIGNIN, 0, d, 1, &err) < 0) {
			cli_error("%s: %s", user, err);
			goto out;
		}
	}
	if (cli_open_user_store(cli, user, true, &store) < 0)
		goto out;
	unsigned synced = 0, failed = 0, temporary = 0;
	for (size_t i = 0; i < n; i++) {
		if (only_account != 0 && accts[i].id != only_account)
			continue;
		char *password = NULL;
		int opened = cli_account_open_secret(hub, &u, &accts[i], kek, "sync",
		                                     "imap-password", &password);
		if (opened < 0) {
			failed++;
			temporary += opened == -2;
			continue;
		}
		char key[64];
		snprintf(key, sizeof(key), "account:%lld", (long long)accts[i].id);
		struct sync_job job = {.user = user,
		                       .url = accts[i].imap_url,
		                       .login = accts[i].login,
		                       .ca_file = accts[i].ca_file,
		                       .account_key = key,
		                       .compress = compress,
		                       .quiet = quiet,
		                       .hub = hub,
		                       .hub_user = &u,
		                       .account_id = accts[i].id};
		int r = sync_one(store, &job, &password);
		if (r == EXIT_OK)
			synced++;
		else
			failed++;
		if (r == EXIT_TEMPFAIL)
			temporary++;
	}
	if (synced + failed == 0) {
		if (only_account != 0)
			cli_error("%s has no account %lld (see 'mailkeep account list --user %s')",
			          user, (long long)only_account, user);
		else
			cli_error("%s has no accounts yet (add one with 'mailkeep account add')",
			          user);
		goto out;
	}
	if (hub_user_touch(hub, u.id, time(NULL), &err) < 0)
		cli_error("%s: %s", user, err);
	ret = failed == 0 ? EXIT_OK : failed == temporary ? EXIT_TEMPFAIL : EXIT_FAIL;
out:
	cli_secret_free(&passphrase);
	vault_kek_free(&kek);
	hub_accounts_free(&accts, n);
	store_close(&store);
	hub_close(&hub);
	return ret;
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
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *user = NULL, *url = NULL, *login = NULL, *pwfile = NULL, *ca = NULL;
	const char *ppfile = NULL, *account = NULL;
	enum imap_compress_mode compress = IMAP_COMPRESS_AUTO;
	bool quiet = false;
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
		return cli_sync_stored(cli, user, id, ppfile, compress, quiet);
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
	const char *err;
	if (cli_open_hub(cli, false, &hub) < 0)
		return EXIT_FAIL;
	if (hub_user_get(hub, user, &u, &err) < 0) {
		cli_error("%s", err);
		hub_close(&hub);
		return EXIT_FAIL;
	}
	char *password = cli_read_secret(pwfile);
	struct store *store = NULL;
	if (password == NULL || cli_open_user_store(cli, user, true, &store) < 0) {
		cli_secret_free(&password);
		hub_close(&hub);
		return EXIT_FAIL;
	}
	char key[1024];
	snprintf(key, sizeof(key), "%s %s", url, login);
	struct sync_job job = {.user = user,
	                       .url = url,
	                       .login = login,
	                       .ca_file = ca,
	                       .account_key = key,
	                       .compress = compress,
	                       .quiet = quiet};
	int ret = sync_one(store, &job, &password);
	store_close(&store);
	if (hub_user_touch(hub, u.id, time(NULL), &err) < 0)
		cli_error("%s", err);
	hub_close(&hub);
	return ret;
}
