/* mailkeep init: create the data directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int cmd_init(struct cli *cli, int argc, char **argv)
{
	if (argc > 1 && cli_is_help(argv[1])) {
		printf("usage: mailkeep --data DIR init\n\n"
		       "Creates DIR (mode 0700) as the hub's data directory: one SQLite store per\n"
		       "hub user under DIR/users/. Running it again on an initialised directory\n"
		       "changes nothing.\n");
		return EXIT_OK;
	}
	if (argc > 1) {
		cli_error("init takes no arguments");
		return EXIT_USAGE;
	}
	const char *dir = cli_data_dir(cli, false);
	if (dir == NULL)
		return EXIT_USAGE;
	umask(077);
	char path[PATH_MAX];
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s", dir, strerror(errno));
		return EXIT_FAIL;
	}
	if (chmod(dir, 0700) < 0) {
		cli_error("cannot set mode 0700 on %s: %s", dir, strerror(errno));
		return EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "%s/users", dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	snprintf(path, sizeof(path), "%s/mailkeep.version", dir);
	if (access(path, F_OK) == 0) {
		printf("%s is already a mailkeep data directory\n", dir);
		return EXIT_OK;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "1\n", 2) != 2 || fsync(fd) < 0 || close(fd) < 0) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	printf("initialised mailkeep data directory %s\n", dir);
	return EXIT_OK;
}
