#ifndef MK_SERVICE_H
#define MK_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The services layer: the workflows both faces (the command line and serve)
 * run, each over a hub handle the caller opened: syncing a user's accounts
 * (svc-sync.h), the outbox run (svc-outbox.h), account removal
 * (svc-account.h), user purge and the inactivity lifecycle (svc-user.h).
 *
 * Services never print or log. What a workflow did and what failed comes
 * back in structs; the text of an error is written into a buffer the caller
 * gives (char error[SVC_ERROR_SIZE] in the result structs), never into
 * static storage, so services are safe to run in several threads at once
 * (each with its own hub and store handles). Lines a face shows as a
 * workflow goes (a message sent, a user warned) and problems that did not
 * stop it (an audit entry that could not be written after the fact) go to
 * the caller's reporter, which decides whether and where to show them.
 * Texts never hold a secret.
 */

#define SVC_ERROR_SIZE 1024

struct hub;
struct hub_user;
struct hub_account;
struct store;
struct vault_kek;

/* How a workflow (or one account of it) ended. */
enum svc_status {
	SVC_OK = 0,
	SVC_FAILED,    /* failed; what was committed stays */
	SVC_TEMPORARY, /* failed for a temporary reason (the server's [UNAVAILABLE],
	                  the audit log or hub.db busy): the same call may succeed later */
};

enum svc_level {
	SVC_INFO,    /* what was done: faces show it as a line of output */
	SVC_WARNING, /* a problem that did not stop the workflow */
};

/* Where a workflow reports as it goes; report may be NULL (nothing shown).
 * text is valid during the call only. */
struct svc_reporter {
	void (*report)(void *ctx, enum svc_level level, const char *text);
	void *ctx;
};

/* Report a line through r (which may be NULL). */
void svc_report(const struct svc_reporter *r, enum svc_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Asked for a zero-access user's passphrase when a workflow first needs the
 * user's key (and only then). Returns 0 with *secret_r in sodium_malloc()'d
 * memory (the service wipes and frees it with sodium_free()), or -1 when
 * there is none to be had: the callback has then told the user why itself
 * (the workflow's error text stays empty). */
struct svc_leases;
struct svc_passphrase {
	int (*get)(void *ctx, char **secret_r);
	void *ctx;
	/* serve: a zero-access user's key comes from their unlock lease
	 * (svc-lease.h) instead, never from get; no lease, no key. */
	struct svc_leases *leases;
};

/* Open the user's store, DIR/users/USER/store.db (data_dir = DIR), making
 * the user's folder when create is set. Returns 0, or -1 with the reason in
 * error. A user whose folder is missing gets "no user 'USER' in DIR". */
int svc_store_open(const char *data_dir, const char *user, bool create, struct store **store_r,
                   char *error, size_t error_size);

/* Open a sealed credential of the account (kind "imap-password" or
 * "smtp-password") after a durable audit entry credential.decrypt
 * purpose=PURPOSE kind=KIND. For an OAuth account (a->oauth) those kinds
 * give an access token instead (svc_oauth_access_token(), which may also
 * return SVC_NEEDS_SIGNIN, -3): log in with it by OAuth, never as a
 * password. Returns 0 with *secret_r (sodium_malloc()'d;
 * free with sodium_free()), -1 with "USER, account ID: why" in error, or -2
 * (the same) when the failure was temporary (the audit log or hub.db stayed
 * busy beyond the bounded wait): retry later. */
int svc_account_open_secret(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                            const struct vault_kek *kek, const char *purpose, const char *kind,
                            char **secret_r, char *error, size_t error_size);

/* The user's key-encryption key, asking pass for the passphrase of a
 * zero-access user; a zero-access unlock is audited (user.signin via=VIA).
 * Returns 0, or -1 with error (empty when the passphrase callback failed:
 * it said why). */
int svc_user_kek(struct hub *hub, const struct hub_user *u, const struct svc_passphrase *pass,
                 const char *via, struct vault_kek **kek_r, char *error, size_t error_size);

/* Wipe and free a secret from svc_account_open_secret() or a passphrase
 * callback; sets *secret to NULL. */
void svc_secret_free(char **secret);

#endif
