/* mailkeep device add|list|revoke */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hub/hub.h"

static void device_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR device add --user NAME DEVICE\n"
	           "       mailkeep --data DIR device list --user NAME\n"
	           "       mailkeep --data DIR device revoke --user NAME DEVICE\n\n"
	           "add     gives a device its own bearer token for the hub's JMAP API and prints\n"
	           "        it once: only a hash is stored, so it cannot be shown again.\n"
	           "list    shows the user's devices.\n"
	           "revoke  ends the device's access at once, including open push streams.\n");
}

int cmd_device(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		device_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	const char *verb = argv[1], *user = NULL, *name = NULL, *err;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (name == NULL && argv[i][0] != '-')
			name = argv[i];
		else {
			cli_error("unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	bool is_list = strcmp(verb, "list") == 0;
	if (user == NULL || (is_list ? name != NULL : name == NULL)) {
		device_usage(stderr);
		return EXIT_USAGE;
	}
	struct hub *hub;
	struct hub_user u;
	if (cli_open_hub_user(cli, false, user, &hub, &u) < 0)
		return EXIT_FAIL;
	int ret = EXIT_FAIL;
	if (strcmp(verb, "add") == 0) {
		char token[HUB_DEVICE_TOKEN_SIZE];
		int64_t id;
		if (hub_device_add(hub, &u, name, token, &id, &err) < 0) {
			cli_error("%s", err);
			goto out;
		}
		printf("added device %s for %s; its token (shown only now):\n%s\n", name, user,
		       token);
		sodium_memzero(token, sizeof(token));
		ret = EXIT_OK;
	} else if (is_list) {
		struct hub_device *d;
		size_t n;
		if (hub_device_list(hub, u.id, &d, &n, &err) < 0) {
			cli_error("%s", err);
			goto out;
		}
		printf("%-24s %-18s %s\n", "DEVICE", "ADDED (UTC)", "LAST USED (UTC)");
		for (size_t i = 0; i < n; i++) {
			char added[32], used[32] = "never";
			time_t t = (time_t)d[i].created;
			strftime(added, sizeof(added), "%Y-%m-%d %H:%M", gmtime(&t));
			if (d[i].last_used != 0) {
				t = (time_t)d[i].last_used;
				strftime(used, sizeof(used), "%Y-%m-%d %H:%M", gmtime(&t));
			}
			printf("%-24s %-18s %s\n", d[i].name, added, used);
		}
		free(d);
		ret = EXIT_OK;
	} else if (strcmp(verb, "revoke") == 0) {
		int64_t id;
		if (hub_device_revoke(hub, &u, name, &id, &err) < 0) {
			cli_error("%s", err);
			goto out;
		}
		printf("revoked device %s of %s\n", name, user);
		ret = EXIT_OK;
	} else {
		cli_error("unknown 'device' command; see 'mailkeep device --help'");
		ret = EXIT_USAGE;
	}
out:
	hub_close(&hub);
	return ret;
}
