/* mailkeep user add|password|list|delete */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"
#include "service/svc-user.h"

static void user_usage(FILE *f)
{
	fprintf(f,
	        "usage: mailkeep --data DIR user add NAME [--zero-access] [--password-file F]\n"
	        "       mailkeep --data DIR user password NAME --password-file NEW\n"
	        "                [--old-password-file OLD]\n"
	        "       mailkeep --data DIR user list\n"
	        "       mailkeep --data DIR user delete NAME\n\n"
	        "add     creates a hub user. --password-file sets the hub password (stored only\n"
	        "        as an Argon2id hash). With --zero-access the password is required and\n"
	        "        is also the passphrase that alone can unlock the user's stored\n"
	        "        credentials: the hub, even with its master key, cannot open them\n"
	        "        without it, and a forgotten passphrase cannot be recovered.\n"
	        "password  sets the hub password from the file NEW (8 to 1024 bytes). A\n"
	        "        zero-access user's needs the old one (--old-password-file): it is also\n"
	        "        the passphrase their account keys are wrapped with, and they are\n"
	        "        rewrapped. Devices and web sessions stay signed in.\n"
	        "list    shows users, their mode and last activity.\n"
	        "delete  removes the user, every account and credential, all hosted mail and\n"
	        "        the audit log, and prints a receipt.\n");
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

static int user_password(struct hub *hub, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"password-file", required_argument, NULL, 'p'},
	    {"old-password-file", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	const char *pwfile = NULL, *oldfile = NULL, *err;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'p')
			pwfile = optarg;
		else if (c == 'o')
			oldfile = optarg;
		else
			return EXIT_USAGE;
	}
	if (optind + 1 != argc || pwfile == NULL) {
		cli_error("user password needs NAME and --password-file NEW");
		return EXIT_USAGE;
	}
	struct hub_user u;
	if (hub_user_get(hub, argv[optind], &u, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	char *password = cli_read_secret(pwfile);
	char *old = oldfile != NULL ? cli_read_secret(oldfile) : NULL;
	char error[SVC_ERROR_SIZE];
	int r = -1;
	if (password != NULL && (oldfile == NULL || old != NULL))
		r = svc_user_set_password(hub, &u, old, password, "cli", NULL, error,
		                          sizeof(error));
	else
		snprintf(error, sizeof(error), "nothing was changed");
	cli_secret_free(&password);
	cli_secret_free(&old);
	if (r != 0) {
		cli_error("%s", error);
		return EXIT_FAIL;
	}
	printf("changed the hub password of %s%s\n", u.name,
	       u.zero_access ? " (account keys rewrapped under the new passphrase)" : "");
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
	struct svc_reporter rep = {.report = cli_report};
	struct svc_user_purge r;
	if (svc_user_purge(hub, &u, "deleted by an administrator", &rep, &r) < 0) {
		cli_error("%s", r.error);
		return EXIT_FAIL;
	}
	printf("%s\n", r.receipt);
	return EXIT_OK;
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
	else if (strcmp(argv[1], "password") == 0)
		r = user_password(hub, argc - 1, argv + 1);
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
