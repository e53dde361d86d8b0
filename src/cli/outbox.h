#ifndef MK_CLI_OUTBOX_H
#define MK_CLI_OUTBOX_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "hub/hub.h"
#include "store/store.h"

/* The outbox worker (outbox-run.c), shared by send, outbox run and serve. */

struct outbox_options {
	int64_t only_id;       /* 0: every due message */
	int64_t retry_base;    /* seconds before the first retry, doubled each time */
	unsigned max_attempts; /* then a temporary failure becomes permanent */
	bool quiet;
};
#define OUTBOX_DEFAULT_RETRY_BASE 60
#define OUTBOX_DEFAULT_MAX_ATTEMPTS 8

struct outbox_stats {
	unsigned sent, retry, failed;
	unsigned filed, copy_retry, copy_failed; /* Sent copies */
};

/* Send the user's due messages (claimed one by one; each outcome is
 * committed before the next step). The user's key-encryption key is opened
 * only when something is due (ppfile: zero-access passphrase file, or
 * NULL). Returns 0, or -1 when the outbox could not be read. */
int cli_outbox_run(struct hub *hub, const struct hub_user *u, const char *ppfile,
                   struct store *store, const struct outbox_options *opt, struct outbox_stats *st);

/* Open a sealed credential of the account, after a durable audit entry
 * credential.decrypt purpose=PURPOSE kind=KIND. Prints the error. Returns
 * 0, -1, or -2 when the failure was temporary (the audit log or hub.db
 * stayed busy beyond the bounded wait): retry later. */
int cli_account_open_secret(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                            const struct vault_kek *kek, const char *purpose, const char *kind,
                            char **secret_r);

/* Does the provider behind this SMTP URL file sent mail itself (Gmail,
 * Microsoft 365)? */
bool cli_provider_files_sent(const char *smtp_url);

/* The outbox thread of serve: every interval_s seconds, a run for every
 * server-key user with something pending, with its own hub and store
 * handles; ends when *stop becomes non-zero. */
struct outbox_worker {
	struct cli *cli;
	volatile sig_atomic_t *stop;
	int64_t retry_base;
	unsigned interval_s;
};
void *cli_outbox_thread(void *context);

#endif
