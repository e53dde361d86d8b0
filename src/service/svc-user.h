#ifndef MK_SVC_USER_H
#define MK_SVC_USER_H

#include "service.h"

/*
 * Purging a hub user, and the inactivity lifecycle that warns, then purges,
 * users inactive past the configured period (hub.h: inactive_purge_days).
 */

#define SVC_PURGE_RECEIPT_SIZE 512

struct svc_user_purge {
	char receipt[SVC_PURGE_RECEIPT_SIZE]; /* once purged */
	char error[SVC_ERROR_SIZE];
};

/* Purge hub user u: their folder first (store, audit log; out of reach at
 * once by a rename, then deleted), then their hub.db rows (accounts,
 * secrets, keys, devices, consents), then a receipt naming why. A purge cut
 * short leaves the user in hub.db, and the next purge finishes it. A
 * receipt that could not be recorded is reported as a warning (the user is
 * gone all the same). Returns 0, or -1 with r->error. */
int svc_user_purge(struct hub *hub, const struct hub_user *u, const char *why,
                   const struct svc_reporter *rep, struct svc_user_purge *r);

/* Change u's hub password to new_password (8 to 1024 bytes). old is the
 * current one: required for a zero-access user (whose password is also the
 * passphrase their account keys are wrapped with: they are rewrapped), and
 * checked when given for the others (an administrator may set a server-key
 * user's password without it). Audited user.password via=VIA. For a
 * zero-access user *kek_r (when not NULL) gets the new key-encryption key,
 * for an unlock lease to hold instead of the old one (svc_lease_rekey).
 * Returns 0, 1 when old is wrong (nothing changed), or -1 with error. */
#define SVC_PASSWORD_MIN 8
#define SVC_PASSWORD_MAX 1024
struct vault_kek;
int svc_user_set_password(struct hub *hub, const struct hub_user *u, const char *old,
                          const char *new_password, const char *via, struct vault_kek **kek_r,
                          char *error, size_t error_size);

/* Remove what purges that did not finish left (DIR/users/.purged-*).
 * Returns 0, or -1 with errno. */
int svc_purge_leftovers(struct hub *hub);

/* One lifecycle round over all users at now: warnings 30 and 7 days before
 * the purge (an audit entry and a notice in the user's hosted inbox), then
 * the purge. Each step is reported (SVC_INFO: "warning U: ...", "purging U:
 * ...", the receipts, a summary line; with dry_run "would ..." and nothing
 * is done), problems as SVC_WARNING. Returns 0, or -1 when something
 * failed. */
int svc_lifecycle_run(struct hub *hub, int64_t now, bool dry_run, const struct svc_reporter *rep);

#endif
