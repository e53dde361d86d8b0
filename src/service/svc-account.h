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

/*
 * Adding an account with consent, for every face (the command line, serve's
 * management methods): the face shows the disclosure built here, gets the
 * user's consent to exactly that text (its id, the SHA-256 of the text, in
 * lowercase hex), then calls svc_account_add(), which checks the login,
 * stores the account, records the consent and audits it all.
 */
struct buf;

#define SVC_DISCLOSURE_ID_SIZE 65 /* 64 hex digits and NUL */
#define SVC_DISCLOSURE_MAX 16384  /* bytes of a disclosure text at most */

/* The disclosure shown before consent to adding a password account with
 * these settings (smtp and sources may be NULL; sources: lines saying where
 * the settings came from). Appends the text to b and puts its id into id_r.
 * Returns 0, or -1 when the text did not fit into b. */
int svc_account_disclosure(struct hub *hub, const struct hub_user *u, const char *imap,
                           const char *smtp, const char *login, const char *sources, struct buf *b,
                           char id_r[SVC_DISCLOSURE_ID_SIZE]);

/* The disclosure's part on the hosted mail (who can read it, how long it is
 * kept under the lifecycle policy in force), appended to b; every kind of
 * account's disclosure has it. */
void svc_account_disclose_mail(struct hub *hub, const struct hub_user *u, struct buf *b);

/* The user's account with the same login (compared without case) on the
 * same IMAP server (imap_url_same_server()): 1 with its id, login and IMAP
 * URL copied out (when the pointers are not NULL), 0 none, -1 with error. */
int svc_account_duplicate(struct hub *hub, const struct hub_user *u, const char *imap,
                          const char *login, int64_t *id_r, char *login_r, size_t login_size,
                          char *imap_r, size_t imap_size, char *error, size_t error_size);

#define SVC_ACCOUNT_CHECK_TIMEOUT_MS 30000

/* Connect and log in with what was given, before anything is stored: the
 * IMAP server, then the SMTP server when given (AUTH only, nothing sent).
 * ca may be NULL (the system's CAs). Returns 0 when both accepted the login,
 * else -1 with what failed in error ("... ; nothing was stored"). */
int svc_account_check_login(const char *imap, const char *smtp, const char *login, const char *ca,
                            const char *password, char *error, size_t error_size);

/* An account to add, as consented to. */
struct svc_account_new {
	const char *imap, *smtp, *login, *ca; /* smtp, ca may be NULL */
	const char *password;
	const char *disclosure_id; /* of the disclosure consented to */
	const char *tool;          /* who took the consent, recorded with it */
	bool check;                /* log in first (svc_account_check_login()) */
	/* Zero-access users: the unlock this add made with the passphrase is
	 * audited as user.signin via=SIGNIN_VIA before the account is stored;
	 * NULL when the key came from elsewhere (a lease, audited then). */
	const char *signin_via;
};

/* Add the account for u with its key-encryption key kek: the login check
 * (when a->check), the account (sealed password), the consent record and
 * the audit entries consent.given and account.added; the user counts as
 * active. Returns 0 with *account_id_r, or -1 with error (nothing stored
 * when the check or the add failed). */
int svc_account_add(struct hub *hub, const struct hub_user *u, const struct vault_kek *kek,
                    const struct svc_account_new *a, int64_t *account_id_r, char *error,
                    size_t error_size);

/*
 * OAuth 2 accounts (svc-account-oauth.c; docs/oauth.md), for every face:
 * the command line (account add --oauth, account signin) and serve's web
 * flows (daemon-oauth.c). The face obtains the tokens (loopback, device,
 * token file, redirect to serve) and hands them over; these do the rest.
 */
#include "../oauth/oauth.h"

struct hub_oauth_provider;

/* The provider named name when it is configured (client_id and token_url
 * set in mailkeep.conf), else NULL. Valid while hub is open. */
const struct hub_oauth_provider *svc_oauth_configured(struct hub *hub, const char *name);

/* The disclosure shown before consent to adding an OAuth account with these
 * settings at provider p (smtp may be NULL): appended to b, its id (SHA-256
 * of the text, lowercase hex) into id_r. Returns 0, or -1 when the text did
 * not fit into b. The command line and the web show the same text. */
int svc_account_disclosure_oauth(struct hub *hub, const struct hub_user *u, const char *imap,
                                 const char *smtp, const char *login,
                                 const struct oauth_provider *p, struct buf *b,
                                 char id_r[SVC_DISCLOSURE_ID_SIZE]);

/* svc_account_check_login() with an access token (XOAUTH2/OAUTHBEARER for
 * IMAP, the bearer for SMTP). Returns 0, or -1 with what failed in error. */
int svc_account_check_login_oauth(const char *imap, const char *smtp, const char *login,
                                  const char *ca, const char *access, char *error,
                                  size_t error_size);

/* An OAuth account to add, as consented to. */
struct svc_account_oauth_new {
	const char *imap, *smtp, *login, *ca; /* smtp, ca may be NULL */
	const struct oauth_provider *provider;
	const char *disclosure_id; /* of the disclosure consented to */
	const char *tool;          /* who took the consent, recorded with it */
	const char *flow;          /* "loopback", "device", "token-file", "redirect" */
	bool check;                /* log in with the access token first */
};

/* Add the OAuth account for u with its key-encryption key kek, the tokens
 * the face obtained: without an access token one refresh makes one (a
 * rotated refresh token replaces t's); the login check (when a->check); the
 * account (sealed refresh token bound to the provider's settings); the
 * consent record; the audit entries consent.given and account.added (with
 * the flow); the user counts as active. The same login on the same server
 * as one of the user's accounts is refused. Returns 0 with *account_id_r, or -1
 * with error (nothing stored when the refresh, check or add failed). t
 * stays the caller's (oauth_tokens_clear()). */
int svc_account_add_oauth(struct hub *hub, const struct hub_user *u, const struct vault_kek *kek,
                          const struct svc_account_oauth_new *a, struct oauth_tokens *t,
                          int64_t *account_id_r, char *error, size_t error_size);

/* Sign the OAuth account acct of u in again with new tokens from provider
 * p (which must be the one acct was sealed for: svc_oauth_signin_matches()):
 * the login check when check and t has an access token, the new refresh
 * token sealed (clears needs sign-in), audited oauth.signin. Returns 0 or
 * -1 with error. */
int svc_account_signin_oauth(struct hub *hub, const struct hub_user *u,
                             const struct hub_account *acct, const struct vault_kek *kek,
                             const struct oauth_provider *p, const struct oauth_tokens *t,
                             bool check, char *error, size_t error_size);

/* Is cfg still what acct signed in with (token_url, client_id, scopes)? */
bool svc_oauth_signin_matches(const struct hub_oauth_provider *cfg, const struct hub_account *acct);

#endif
