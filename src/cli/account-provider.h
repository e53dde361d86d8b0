#ifndef MK_CLI_ACCOUNT_PROVIDER_H
#define MK_CLI_ACCOUNT_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

/*
 * Per-account provider settings kept in the user's store (not in hub.db:
 * they are no credential and need no password): who files the Sent copy
 * (--server-files-sent yes|no|auto) and the daily download budget of the
 * sync (--download-budget BYTES[K|M|G]|0|auto). `account add` and
 * `account set` take them; `account list` shows them with the sync's
 * progress.
 */
struct account_provider_opts {
	const char *sent_mode; /* "provider", "append", "auto" or NULL: unchanged */
	bool set_budget;
	int64_t budget; /* bytes a day, 0 unlimited, -1 the provider's default */
	bool any;
};

/* Take the options out of argv (compacting it, *argc adjusted). 0, or -1
 * after printing what is wrong. */
int account_provider_take(int *argc, char **argv, struct account_provider_opts *o);
/* Apply them to the user's store for hub account account_id. EXIT_*. */
int account_provider_apply(struct cli *cli, const char *user, int64_t account_id,
                           const struct account_provider_opts *o);
/* One indented line with the settings and the sync's progress. */
void account_provider_show(struct cli *cli, const char *user, int64_t account_id);

#endif
