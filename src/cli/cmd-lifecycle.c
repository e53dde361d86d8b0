/* mailkeep lifecycle run: warn, then purge users inactive past the period. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"
#include "service/svc-user.h"

static void lifecycle_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR lifecycle run [--dry-run] [--now EPOCH]\n\n"
	           "Users inactive for inactive_purge_days (mailkeep.conf, default 365) are\n"
	           "purged with everything they have on the hub. 30 and 7 days before, they are\n"
	           "warned: an entry in their audit log and a message in their hosted inbox.\n"
	           "Any activity (a sync, adding an account, a device signing in or using the\n"
	           "API of 'serve') restarts the period. --dry-run only lists what would\n"
	           "happen; --now evaluates at another time (for tests and what-if). 'serve'\n"
	           "runs this when it starts and once a day.\n");
}

int cli_lifecycle_run(struct hub *hub, int64_t now, bool dry_run)
{
	struct svc_reporter rep = {.report = cli_report};
	int r = svc_lifecycle_run(hub, now, dry_run, &rep);
	fflush(stdout);
	return r < 0 ? EXIT_FAIL : EXIT_OK;
}

int cmd_lifecycle(struct cli *cli, int argc, char **argv)
{
	bool dry_run = false;
	int64_t now = time(NULL);
	if (argc < 2 || cli_is_help(argv[1]) || strcmp(argv[1], "run") != 0) {
		lifecycle_usage(argc >= 2 && cli_is_help(argv[1]) ? stdout : stderr);
		return argc >= 2 && cli_is_help(argv[1]) ? EXIT_OK : EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--dry-run") == 0) {
			dry_run = true;
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			char *end;
			now = strtoll(argv[++i], &end, 10);
			if (*end != '\0' || now <= 0) {
				cli_error("--now takes seconds since the epoch");
				return EXIT_USAGE;
			}
		} else {
			lifecycle_usage(stderr);
			return EXIT_USAGE;
		}
	}
	struct hub *hub;
	if (cli_open_hub(cli, false, &hub) < 0)
		return EXIT_FAIL;
	int ret = cli_lifecycle_run(hub, now, dry_run);
	hub_close(&hub);
	return ret;
}
