/* mailkeep init: create the data directory, the master key and hub.db. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"

static void init_usage(FILE *f)
{
	fprintf(f, "usage: mailkeep --data DIR init [--master-key PATH]\n\n"
	           "Creates DIR (mode 0700) as the hub's data directory: the hub database\n"
	           "(hub.db), the settings (mailkeep.conf) and one store per hub user under\n"
	           "DIR/users/. Makes a new master key (32 random bytes) in a 0600 file at PATH\n"
	           "(default DIR/master.key); keep it apart from backups of DIR: with the key and\n"
	           "a backup, the stored credentials of server-key users can be opened. To use\n"
	           "a systemd credential instead, set master_key_credential = NAME in\n"
	           "mailkeep.conf. Running init again on an initialised directory changes\n"
	           "nothing; an existing key file is never overwritten.\n");
}

int cmd_init(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
	    {"master-key", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *key = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			key = optarg;
			break;
		case 'h':
			init_usage(stdout);
			return EXIT_OK;
		default:
			init_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_error("init takes no arguments besides --master-key");
		return EXIT_USAGE;
	}
	const char *dir = cli_data_dir(cli, false), *err;
	if (dir == NULL)
		return EXIT_USAGE;
	bool existed;
	if (hub_create(dir, key, &existed, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/mailkeep.version", dir);
	if (existed && access(path, F_OK) == 0) {
		printf("%s is already a mailkeep data directory\n", dir);
		return EXIT_OK;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "1\n", 2) != 2 || fsync(fd) < 0 || close(fd) < 0) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	if (key != NULL)
		printf("initialised mailkeep data directory %s (master key: %s)\n", dir, key);
	else
		printf("initialised mailkeep data directory %s (master key: %s/master.key)\n", dir,
		       dir);
	return EXIT_OK;
}
