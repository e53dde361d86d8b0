#ifndef MK_SVC_OUTBOX_H
#define MK_SVC_OUTBOX_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "service.h"

/*
 * The outbox run: sends a user's due messages through each account's own
 * SMTP server, records each outcome before the next step, files the Sent
 * copy (or leaves it to a provider that files it itself) and puts a notice
 * in the user's hosted inbox about a message that was not sent. Used by
 * `send`, `outbox run` and serve's outbox thread.
 */

struct svc_outbox_options {
	int64_t only_id;       /* 0: every due message */
	int64_t retry_base;    /* seconds before the first retry, doubled each time */
	unsigned max_attempts; /* then a temporary failure becomes permanent */
	bool quiet;            /* no SVC_INFO lines, nor the warnings of a retry */
	/* Asked for a zero-access user's passphrase when something is due (may
	 * be left empty: none). */
	struct svc_passphrase passphrase;
	/* Each message sent, queued for a retry or failed (SVC_INFO), and what
	 * went wrong on the way (SVC_WARNING). */
	struct svc_reporter reporter;
};
#define SVC_OUTBOX_RETRY_BASE 60
#define SVC_OUTBOX_MAX_ATTEMPTS 8

struct svc_outbox_result {
	unsigned sent, retry, failed;
	unsigned filed, copy_retry, copy_failed; /* Sent copies */
	char error[SVC_ERROR_SIZE];              /* why the outbox could not be read */
};

/* Send the user's due messages (claimed one by one; each outcome is
 * committed before the next step). The user's key-encryption key is opened
 * only when something is due. Returns 0, or -1 when the outbox could not be
 * read (res->error; what was done before stays done and counted). */
int svc_outbox_run(struct hub *hub, const struct hub_user *u, struct store *store,
                   const struct svc_outbox_options *opt, struct svc_outbox_result *res);

#endif
