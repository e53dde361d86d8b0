#ifndef MK_SVC_ACCOUNT_H
#define MK_SVC_ACCOUNT_H

#include "service.h"

/*
 * Removing an external account from every device: its mail, outbox and
 * identities leave the user's store (pages zeroed, WAL truncated), then its
 * sealed credentials and data key leave hub.db, audited, with a receipt
 * recorded together with the account row's deletion. A removal cut short
 * anywhere is finished by the next one.
 */

enum svc_removal_outcome {
	SVC_REMOVAL_DONE,       /* removed now: receipt */
	SVC_REMOVAL_ALREADY,    /* removed before (perhaps by a run that ended before
	                           it could show its receipt): that receipt */
	SVC_REMOVAL_NO_ACCOUNT, /* the user has no such account, and never had */
	SVC_REMOVAL_FAILED,     /* error; when finish_again, running the
	                           removal again finishes it */
};

#define SVC_RECEIPT_SIZE 1024

struct svc_account_removal {
	enum svc_removal_outcome outcome;
	bool finish_again;
	char receipt[SVC_RECEIPT_SIZE];
	char error[SVC_ERROR_SIZE];
};

/* Remove account_id of hub user USER (hub opened with or without its master
 * key). An OAuth account's refresh token is first revoked at the provider
 * where it has a revocation endpoint (needs the master key; not for
 * zero-access users); the receipt says whether that succeeded. Returns 0 when the account is gone
 * (DONE or ALREADY), else -1; r says which in either case. */
int svc_account_remove(struct hub *hub, const char *user, int64_t account_id,
                       struct svc_account_removal *r);

#endif
