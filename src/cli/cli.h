#ifndef MK_CLI_H
#define MK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap-client.h"
#include "service/service.h"

/* Exit codes of every command. */
#define EXIT_OK 0
#define EXIT_FAIL 1  /* the command ran and failed (server, store, ...) */
#define EXIT_USAGE 2 /* bad command line */
/* Only temporary failures (e.g. the server's [UNAVAILABLE] to the login):
 * the same command may succeed later (sysexits EX_TEMPFAIL). */
#define EXIT_TEMPFAIL 75

struct cli {
	const char *data_dir; /* --data, or NULL */
	const char *prog;
};

typedef int cli_cmd_fn(struct cli *cli, int argc, char **argv);
cli_cmd_fn cmd_init, cmd_sync, cmd_export, cmd_user, cmd_account, cmd_audit, cmd_lifecycle,
    cmd_device, cmd_serve, cmd_send, cmd_outbox;

/* Sync a hub user's stored accounts (all, or only_account when not 0) with
 * svc_sync_user() over hub (its master key loaded); prints a summary per
 * account. Returns EXIT_OK, EXIT_TEMPFAIL or EXIT_FAIL. */
struct hub;
int cli_sync_stored(struct hub *hub, const char *user, int64_t only_account, const char *ppfile,
                    bool full_scan, enum imap_compress_mode compress, bool quiet);

struct hub;
struct hub_user;
/* One lifecycle round over all users at now (svc_lifecycle_run: warnings 30
 * and 7 days before the purge, then the purge; see 'lifecycle --help'),
 * printing what it does. Returns EXIT_OK or EXIT_FAIL. */
int cli_lifecycle_run(struct hub *hub, int64_t now, bool dry_run);
/* Print "mailkeep: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* account add --oauth and account signin (cmd-account-oauth.c); argv[0] is
 * the subcommand. */
int cli_account_add_oauth(struct hub *hub, int argc, char **argv);
int cli_account_signin(struct hub *hub, int argc, char **argv);
/* A services reporter (service.h) for the command line: SVC_INFO lines to
 * stdout, SVC_WARNING ones as cli_error(). ctx is unused. */
void cli_report(void *ctx, enum svc_level level, const char *text);
/* True if argv[i] is -h/--help. */
bool cli_is_help(const char *arg);
/* The data directory from --data; complains and returns NULL if missing or
 * not initialised (unless must_exist is false). */
const char *cli_data_dir(struct cli *cli, bool must_exist);
/* Validate a hub user name: 1-64 of [a-z0-9._-], not starting with '.' or
 * '-'. Prints the error. */
bool cli_valid_user(const char *user);
/* Open (creating if needed) the user's store; prints the error. */
struct store;
int cli_open_user_store(struct cli *cli, const char *user, bool create, struct store **store_r);

/* Open the hub (DIR/hub.db); with load_master the master key is loaded
 * and checked. Prints the error. */
struct hub;
int cli_open_hub(struct cli *cli, bool load_master, struct hub **hub_r);
/* cli_open_hub, then the hub user NAME into *u_r; prints what failed and
 * leaves no hub open then. */
struct hub_user;
int cli_open_hub_user(struct cli *cli, bool load_master, const char *name, struct hub **hub_r,
                      struct hub_user *u_r);
/* Ask a yes/no question on the terminal; false without a terminal. */
bool cli_confirm(const char *question);

/* Secrets: read a password from a file or stdin ("-") into locked memory
 * (sodium_malloc). Trailing CR/LF removed. Free with cli_secret_free(). */
char *cli_read_secret(const char *path);
void cli_secret_free(char **secret);
/* For a service that may need a zero-access user's passphrase: read from
 * ppfile (cli_read_secret) when it is first needed; none when ppfile is
 * NULL. */
struct svc_passphrase cli_passphrase(const char *ppfile);

/* Progress line on a terminal (stderr), rate-limited; quiet otherwise. */
struct sync_progress;
struct cli_progress;
struct cli_progress *cli_progress_create(bool quiet);
void cli_progress_update(void *ctx, const struct sync_progress *p);
/* Clear the progress line. */
void cli_progress_done(struct cli_progress *p);
void cli_progress_free(struct cli_progress **p);

#endif
