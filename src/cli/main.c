/* mailkeep: the command-line entry point. */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"
#include "store/store.h"

#define MAILKEEP_VERSION "0.1.0"

static const struct {
	const char *name;
	cli_cmd_fn *fn;
	const char *summary;
} commands[] = {
    {"init", cmd_init, "create a data directory for the hub"},
    {"serve", cmd_serve, "run the hub: JMAP API with push for devices, scheduled syncs"},
    {"sync", cmd_sync, "copy an IMAP account into a user's hosted mailbox"},
    {"send", cmd_send, "send a message through an account's own SMTP server (durable outbox)"},
    {"outbox", cmd_outbox, "list, run, retry or cancel a user's outgoing messages"},
    {"export", cmd_export, "write a user's hosted mailbox as a Maildir++ tree"},
    {"user", cmd_user, "add, list or delete hub users"},
    {"account", cmd_account, "add (with consent), list or remove a user's mail accounts"},
    {"device", cmd_device, "give a device its own revocable token, list or revoke"},
    {"audit", cmd_audit, "show or verify a user's audit log"},
    {"lifecycle", cmd_lifecycle, "warn and purge users inactive past the configured period"},
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mailkeep [--data DIR] COMMAND [ARGS]\n\n"
	        "mailkeep keeps a hosted copy of your mail accounts on a machine you control.\n\n"
	        "Global options:\n"
	        "  --data DIR     the hub's data directory (required by every command;\n"
	        "                 default $MAILKEEP_DATA when set)\n"
	        "  --help         this text; 'mailkeep COMMAND --help' for a command\n"
	        "  --version      print the version\n\n"
	        "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nExit status: 0 success, 1 failure, 2 bad command line.\n");
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mailkeep: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void cli_report(void *ctx, enum svc_level level, const char *text)
{
	(void)ctx;
	if (level == SVC_WARNING) {
		cli_error("%s", text);
	} else {
		fputs(text, stdout);
		fputc('\n', stdout);
	}
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Why DIR/mailkeep.version could not be seen (err: access's errno): say
 * what to do. A directory we may not enter is usually another user's. */
static void data_dir_error(const char *dir, int err)
{
	struct stat st;
	if (err == EACCES && stat(dir, &st) == 0 && st.st_uid != geteuid()) {
		struct passwd *pw = getpwuid(st.st_uid);
		char owner[64];
		if (pw != NULL)
			snprintf(owner, sizeof(owner), "%s", pw->pw_name);
		else
			snprintf(owner, sizeof(owner), "uid %u", (unsigned)st.st_uid);
		cli_error("%s belongs to user %s and this process (uid %u) may not open it: run "
		          "mailkeep as %s (e.g. 'sudo -u %s mailkeep --data %s ...')",
		          dir, owner, (unsigned)geteuid(), owner, owner, dir);
	} else if (err == EACCES) {
		cli_error("permission denied reading %s: mailkeep needs read access to the data "
		          "directory (mode 0700, owned by the user that runs it)",
		          dir);
	} else if (err == ENOENT) {
		cli_error("%s is not a mailkeep data directory (run 'mailkeep --data %s init' "
		          "first)",
		          dir, dir);
	} else {
		cli_error("cannot open the data directory %s: %s", dir, strerror(err));
	}
}

const char *cli_data_dir(struct cli *cli, bool must_exist)
{
	if (cli->data_dir == NULL) {
		cli_error("--data DIR is required (the hub's data directory), or set "
		          "MAILKEEP_DATA");
		return NULL;
	}
	if (must_exist) {
		char marker[PATH_MAX];
		snprintf(marker, sizeof(marker), "%s/mailkeep.version", cli->data_dir);
		if (access(marker, F_OK) < 0) {
			data_dir_error(cli->data_dir, errno);
			return NULL;
		}
		/* A directory others may enter, with files only its owner reads. */
		snprintf(marker, sizeof(marker), "%s/hub.db", cli->data_dir);
		if (access(marker, R_OK) < 0 && errno == EACCES) {
			data_dir_error(cli->data_dir, EACCES);
			return NULL;
		}
	}
	return cli->data_dir;
}

bool cli_valid_user(const char *user)
{
	bool ok = hub_valid_user_name(user);
	if (!ok)
		cli_error("invalid user name '%s': use 1-64 of a-z 0-9 . _ - (not starting "
		          "with . or -)",
		          user);
	return ok;
}

int cli_open_user_store(struct cli *cli, const char *user, bool create, struct store **store_r)
{
	const char *dir = cli_data_dir(cli, true);
	if (dir == NULL || !cli_valid_user(user))
		return -1;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/users/%s", dir, user);
	if (!create && access(path, F_OK) < 0) {
		cli_error("no user '%s' in %s", user, dir);
		return -1;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/users/%s/store.db", dir, user);
	const char *err;
	if (store_open(path, store_r, &err) < 0) {
		cli_error("%s", err);
		return -1;
	}
	return 0;
}

int cli_open_hub(struct cli *cli, bool load_master, struct hub **hub_r)
{
	const char *dir = cli_data_dir(cli, true), *err;
	if (dir == NULL)
		return -1;
	if (hub_open(dir, load_master, hub_r, &err) < 0) {
		cli_error("%s", err);
		return -1;
	}
	return 0;
}

int cli_open_hub_user(struct cli *cli, bool load_master, const char *name, struct hub **hub_r,
                      struct hub_user *u_r)
{
	const char *err;
	if (cli_open_hub(cli, load_master, hub_r) < 0)
		return -1;
	if (hub_user_get(*hub_r, name, u_r, &err) < 0) {
		cli_error("%s", err);
		hub_close(hub_r);
		return -1;
	}
	return 0;
}

bool cli_confirm(const char *question)
{
	if (!isatty(STDIN_FILENO))
		return false;
	fprintf(stderr, "%s [yes/no] ", question);
	fflush(stderr);
	char answer[16];
	if (fgets(answer, sizeof(answer), stdin) == NULL)
		return false;
	answer[strcspn(answer, "\r\n")] = '\0';
	return strcasecmp(answer, "yes") == 0;
}

char *cli_read_secret(const char *path)
{
	enum { MAX_SECRET = 4096 };
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		cli_error("cannot open password file %s: %s", path, strerror(errno));
		return NULL;
	}
	char *s = sodium_malloc(MAX_SECRET + 1);
	if (s == NULL) {
		cli_error("out of locked memory for the password");
		if (f != stdin)
			fclose(f);
		return NULL;
	}
	setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the secret */
	size_t n = fread(s, 1, MAX_SECRET + 1, f);
	bool bad = ferror(f) || n > MAX_SECRET;
	if (f != stdin)
		fclose(f);
	if (bad) {
		cli_error("cannot read the password from %s (or longer than %d bytes)", path,
		          MAX_SECRET);
		sodium_free(s);
		return NULL;
	}
	s[n] = '\0';
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (n == 0 || memchr(s, '\0', n) != NULL) {
		cli_error("the password in %s is empty or contains a NUL byte", path);
		sodium_free(s);
		return NULL;
	}
	return s;
}

void cli_secret_free(char **secret)
{
	if (*secret != NULL)
		sodium_free(*secret); /* wipes */
	*secret = NULL;
}

static int passphrase_read(void *ctx, char **secret_r)
{
	*secret_r = cli_read_secret(ctx);
	return *secret_r != NULL ? 0 : -1;
}

struct svc_passphrase cli_passphrase(const char *ppfile)
{
	struct svc_passphrase p = {.get = ppfile != NULL ? passphrase_read : NULL,
	                           .ctx = (void *)ppfile};
	return p;
}

/* No core dumps and no ptrace by other users: secrets live in this process. */
static void harden_process(void)
{
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv)
{
	struct cli cli = {.prog = "mailkeep"};
	harden_process();
	/* Before any database is opened. */
	store_library_init();
	/* MAILKEEP_DATA is the default of --data for every command. */
	const char *env_data = getenv("MAILKEEP_DATA");
	if (env_data != NULL && env_data[0] != '\0')
		cli.data_dir = env_data;
	if (sodium_init() < 0) {
		cli_error("cannot initialise libsodium");
		return EXIT_FAIL;
	}
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
			cli.data_dir = argv[++i];
		} else if (strncmp(argv[i], "--data=", 7) == 0) {
			cli.data_dir = argv[i] + 7;
		} else if (cli_is_help(argv[i])) {
			usage(stdout);
			return EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("mailkeep %s\n", MAILKEEP_VERSION);
			return EXIT_OK;
		} else {
			cli_error("unknown option '%s'", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		if (strcmp(argv[i], commands[c].name) != 0)
			continue;
		/* libcurl's global state is set up once here, before any thread exists:
		 * curl_global_init() is not thread-safe beside other curl use in older
		 * libcurl, so no engine, service or daemon code calls it. */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			cli_error("cannot initialise libcurl");
			return EXIT_FAIL;
		}
		int ret = commands[c].fn(&cli, argc - i, argv + i);
		curl_global_cleanup();
		return ret;
	}
	cli_error("unknown command '%s'", argv[i]);
	usage(stderr);
	return EXIT_USAGE;
}
