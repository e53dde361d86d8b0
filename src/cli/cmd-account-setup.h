/* account add --email (settings from a profile or discovery) and account
 * import. */
#ifndef MK_CMD_ACCOUNT_SETUP_H
#define MK_CMD_ACCOUNT_SETUP_H

#include <stdbool.h>

#include "hub/hub.h"

/* The settings account add goes on with: found for the address, with the
 * flags given (--imap, --smtp, --login) taking precedence. */
struct account_setup {
	char imap[300], smtp[300], login[321];
	bool has_smtp;
	char sources[2048]; /* lines for the disclosure: where each setting came from */
};

/* Find the settings for email (profile, autoconfig, SRV, guess), apply the
 * flags given (NULL: not given), print what was found and where it came
 * from. password_given: --password-file was given (an OAuth-only provider
 * cannot take one). Returns EXIT_OK, or the exit status after printing why
 * not (nothing is stored). */
int account_setup_resolve(const char *user, const char *email, const char *imap, const char *smtp,
                          const char *login, bool password_given, struct account_setup *r);

/* account import --user U --thunderbird DIR | --mbsyncrc FILE [--add N ...] */
int account_import(struct hub *hub, int argc, char **argv);

/* account add, in cmd-account.c; sources (or NULL) is shown in the
 * disclosure as where the settings came from. */
int cmd_account_add(struct hub *hub, int argc, char **argv, const char *sources);

#endif
