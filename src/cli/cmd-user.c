/* mailkeep user add|list|delete */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"

static void user_usage(FILE *f)
{
	fprintf(f,
	        "usage: mailkeep --data DIR user add NAME [--zero-access] [--password-file F]\n"
	        "       mailkeep --data DIR user list\n"
	        "       mailkeep --data DIR user delete NAME\n\n"
	        "add     creates a hub user. --password-file sets the hub password (stored only\n"
	        "        as an Argon2id hash). With --zero-access the password is required and\n"
	        "        is also the passphrase that alone can unlock the user's stored\n"
	        "        credentials: the hub, even with its master key, cannot open them\n"
	        "        without it, and a forgotten passphrase cannot be recovered.\n"
	        "list    shows users, their mode and last activity.\n"
	        "delete  removes the user, every account and credential, all hosted mail and\n"
	        "        the audit log, and prints a receipt.\n");
}

static int unlink_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Folders of purges that did not finish: DIR/users/.purged-* (a user name
 * never starts with '.'). Removed by every purge and lifecycle round. */
#define PURGED_PREFIX ".purged-"

/* Remove every leftover purged folder. Returns 0, or -1 with errno. */
int cli_purge_leftovers(struct hub *hub)
{
	char users[4200];
	int n = snprintf(users, sizeof(users), "%s/users", hub_data_dir(hub));
	if (n < 0 || (size_t)n >= sizeof(users))
		return -1;
	DIR *d = opendir(users);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	int ret = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, PURGED_PREFIX, strlen(PURGED_PREFIX)) != 0)
			continue;
		char path[4400];
		n = snprintf(path, sizeof(path), "%s/%s", users, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(path) ||
		    (nftw(path, unlink_cb, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT))
			ret = -1;
	}
	closedir(d);
	return ret;
}

/* Take the user's folder (store, WAL, audit log) out of reach at once, by a
 * rename nothing else can race with (serve opens only stores in
 * DIR/users/NAME), then delete it. A crash in between leaves a
 * DIR/users/.purged-* folder that the next purge or lifecycle round
 * removes. */
static int remove_user_dir(struct hub *hub, const char *name)
{
	char dir[4200], trash[4400];
	if (hub_user_path(hub, name, NULL, dir, sizeof(dir)) < 0)
		return -1;
	int n = snprintf(trash, sizeof(trash), "%s/users/" PURGED_PREFIX "%s-%ld-%lld",
	                 hub_data_dir(hub), name, (long)getpid(), (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof(trash))
		return -1;
	if (rename(dir, trash) < 0 && errno != ENOENT)
		return -1;
	return cli_purge_leftovers(hub);
}

static int user_add(struct hub *hub, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"zero-access", no_argument, NULL, 'z'},
	    {"password-file", required_argument, NULL, 'p'},
	    {NULL, 0, NULL, 0},
	};
	bool zero = false;
	const char *pwfile = NULL, *err;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'z')
			zero = true;
		else if (c == 'p')
			pwfile = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		cli_error("user add needs exactly one NAME");
		return EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (zero && pwfile == NULL) {
		cli_error("--zero-access needs --password-file: the password is the passphrase "
		          "that unlocks the user's credentials");
		return EXIT_USAGE;
	}
	char *password = pwfile != NULL ? cli_read_secret(pwfile) : NULL;
	if (pwfile != NULL && password == NULL)
		return EXIT_FAIL;
	int r = hub_user_add(hub, name, password, zero, zero ? password : NULL, &err);
	cli_secret_free(&password);
	if (r < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	printf("added hub user %s (%s)\n", name,
	       zero ? "zero-access: credentials open only with the user's passphrase"
	            : "credentials sealed with the hub's master key");
	return EXIT_OK;
}

static int user_list(struct hub *hub)
{
	struct hub_user *users;
	size_t n;
	const char *err;
	if (hub_user_list(hub, &users, &n, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	printf("%-20s %-12s %-20s\n", "USER", "MODE", "LAST ACTIVE (UTC)");
	for (size_t i = 0; i < n; i++) {
		char when[32];
		time_t t = (time_t)users[i].last_active;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", gmtime(&t));
		printf("%-20s %-12s %-20s\n", users[i].name,
		       users[i].zero_access ? "zero-access" : "server-key", when);
	}
	free(users);
	return EXIT_OK;
}

int cli_purge_user(struct hub *hub, const struct hub_user *u, const char *why)
{
	const char *err;
	/* The folder first: a purge cut short leaves the user in hub.db, and
	 * the next purge finishes it; never a folder of mail no user owns. */
	if (remove_user_dir(hub, u->name) < 0) {
		cli_error("cannot remove the directory of %s: %s", u->name, strerror(errno));
		return -1;
	}
	if (hub_user_delete(hub, u->id, &err) < 0) {
		cli_error("%s", err);
		return -1;
	}
	char receipt[512];
	time_t now = time(NULL);
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	snprintf(receipt, sizeof(receipt),
	         "receipt: hub user %s deleted at %s (%s): every account, sealed credential, "
	         "data key, hosted message and the audit log are gone from %s",
	         u->name, when, why, hub_data_dir(hub));
	if (hub_receipt_add(hub, u->id, receipt, &err) < 0)
		cli_error("%s", err);
	printf("%s\n", receipt);
	return 0;
}

static int user_delete(struct hub *hub, int argc, char **argv)
{
	if (argc != 2) {
		cli_error("user delete needs exactly one NAME");
		return EXIT_USAGE;
	}
	struct hub_user u;
	const char *err;
	if (hub_user_get(hub, argv[1], &u, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	return cli_purge_user(hub, &u, "deleted by an administrator") < 0 ? EXIT_FAIL : EXIT_OK;
}

int cmd_user(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		user_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	struct hub *hub;
	if (cli_open_hub(cli, false, &hub) < 0)
		return EXIT_FAIL;
	int r;
	if (strcmp(argv[1], "add") == 0)
		r = user_add(hub, argc - 1, argv + 1);
	else if (strcmp(argv[1], "list") == 0 && argc == 2)
		r = user_list(hub);
	else if (strcmp(argv[1], "delete") == 0)
		r = user_delete(hub, argc - 1, argv + 1);
	else {
		cli_error("unknown 'user' command; see 'mailkeep user --help'");
		r = EXIT_USAGE;
	}
	hub_close(&hub);
	return r;
}
