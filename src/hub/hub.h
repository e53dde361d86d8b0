#ifndef MK_HUB_H
#define MK_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../audit/audit.h"
#include "../vault/vault.h"

/*
 * The hub's own records, in DIR/hub.db (SQLite, WAL, secure_delete): hub
 * users (Argon2id password hashes, zero-access KDF parameters), external
 * accounts with their wrapped data key and sealed credentials, consents,
 * removal receipts and each user's audit-log head. Mail lives elsewhere: one
 * store per user (store.h). The master key lives in a key file outside the
 * database (vault.h), by default DIR/master.key, or wherever the
 * configuration's master_key says (or a systemd credential).
 *
 * Data directory:
 *   DIR/mailkeep.version   format marker
 *   DIR/mailkeep.conf      settings (key = value): inactive_purge_days,
 *                          lease_seconds, master_key, master_key_credential,
 *                          metrics_token; serve's are read by hub-settings.h
 *                          and left alone here
 *   DIR/hub.db             this module's database
 *   DIR/users/NAME/        store.db (the hosted mailbox), audit.log
 *
 * Credentials: each account has a data key (32 random bytes) wrapped by the
 * user's key-encryption key: derived from the master key, or in zero-access
 * mode from the user's passphrase (the server alone cannot open those). The
 * password is sealed with the data key, bound to (user, account id, kind,
 * secret version) and to everything that decides where it is sent: the
 * IMAP and SMTP URLs, the login, the CA file's path and the SHA-256 of its
 * contents. Editing any of them in hub.db makes the password stop opening
 * ("server settings changed"); `account set` changes them and takes the
 * password again. The version is kept on the account row, bumped on every
 * write, and also anchored outside hub.db (DIR/hub.anchor, see
 * hub-private.h), so an older sealed copy put back together with its old
 * row is refused as rolled back. Passwords sealed by an older mailkeep
 * (format 1, unbound) are tagged with the settings they have at the upgrade
 * (the first open with the master key) and re-sealed bound on first use.
 *
 * Errors: 0 ok / -1 with *error_r (owned by the hub, valid until its next
 * call; for hub_open() and hub_create(), which have no hub to own it, the
 * calling thread's own, valid until its next failed open or create).
 * Nothing secret is ever part of an error.
 */

struct hub;

/* After a failed call: was the cause temporary (the audit log or the
 * database stayed locked by another writer beyond the bounded wait)? Then
 * the same call may succeed later, and the caller should retry rather than
 * give up for good. */
bool hub_error_is_temporary(const struct hub *hub);

/* One OAuth provider from mailkeep.conf, keys "oauth.NAME.FIELD":
 *   oauth.NAME.client_id          required
 *   oauth.NAME.client_secret      optional (public clients have none)
 *   oauth.NAME.token_url          required
 *   oauth.NAME.authorization_url  code flow (loopback)
 *   oauth.NAME.device_url         device flow
 *   oauth.NAME.revocation_url     RFC 7009, used on account removal
 *   oauth.NAME.scopes             space separated
 * NAME: 1-31 of [a-z0-9_-]. Fields not given are "". */
#define HUB_OAUTH_PROVIDERS_MAX 16
struct hub_oauth_provider {
	char name[32];
	char client_id[256], client_secret[256];
	char token_url[512], authorization_url[512], device_url[512], revocation_url[512];
	char scopes[512];
};

#define HUB_WEB_SESSION_DAYS 30
#define HUB_WEB_SESSION_IDLE_DAYS 14
#define HUB_LEASE_SECONDS_DEFAULT (8U * 3600U)
#define HUB_LEASE_SECONDS_MIN 10U
#define HUB_LEASE_SECONDS_MAX (7U * 24U * 3600U)
struct hub_settings {
	unsigned inactive_purge_days; /* default 365 */
	/* How long a zero-access user's sign-in keeps their key unlocked for
	 * serve's background work (svc-lease.h): HUB_LEASE_SECONDS_MIN..MAX. */
	unsigned lease_seconds;          /* default HUB_LEASE_SECONDS_DEFAULT */
	char master_key[4096];           /* path of the master key file */
	char master_key_credential[256]; /* systemd credential name, or "" */
	struct hub_oauth_provider oauth[HUB_OAUTH_PROVIDERS_MAX];
	size_t n_oauth;
	char metrics_token[256]; /* serve's /metrics bearer token, or "" */
	/* Web sessions' lifetimes (hub_web_session_*): absolute and idle, in
	 * days; serve's settings web_session_days and web_session_idle_days
	 * (hub-settings.h), handed over with hub_web_session_lifetime(). */
	unsigned web_session_days;      /* default HUB_WEB_SESSION_DAYS */
	unsigned web_session_idle_days; /* default HUB_WEB_SESSION_IDLE_DAYS */
};

/* The configured provider called name, or NULL. */
const struct hub_oauth_provider *hub_oauth_provider(const struct hub *hub, const char *name);

struct hub_user {
	int64_t id;
	char name[65];
	bool zero_access;
	int64_t created, last_active;
	int warned_days; /* the smallest warning given (30, 7), 0 = none */
};

/* What an OAuth account's refresh token is bound to (with the servers, the
 * login and the CA file): layout 2 of the binding. */
struct hub_oauth_binding {
	const char *provider;  /* the name in mailkeep.conf */
	const char *token_url; /* the token endpoint the refresh token goes to */
	const char *client_id;
	const char *scopes;
};

struct hub_account {
	int64_t id;
	int64_t user_id;
	char *imap_url, *smtp_url, *login, *ca_file; /* smtp_url, ca_file may be NULL */
	int64_t created;
	uint64_t secret_version, key_version;
	/* OAuth 2 accounts (auth = "oauth2"): oauth is true and the four
	 * strings are set; the sealed secret is kind "oauth-refresh-token". */
	bool oauth;
	char *oauth_provider, *oauth_token_url, *oauth_client_id, *oauth_scopes;
	/* The provider refused the grant (invalid_grant, revoked consent):
	 * sync and send skip the account until the user signs in again.
	 * needs_signin_since: when it was marked (0 when not). */
	int64_t needs_signin_since;
};

/* Create a data directory: layout, configuration, a new master key at
 * master_key_path (NULL: DIR/master.key; refuses to overwrite) and hub.db
 * with the key's check value. An existing hub is left alone (returns 0 and
 * sets *existed_r). */
int hub_create(const char *data_dir, const char *master_key_path, bool *existed_r,
               const char **error_r);

/* Open the hub. With load_master the master key is loaded and checked
 * against the one this data directory was made with; a missing, damaged or
 * different key is a clear error and nothing is changed. */
int hub_open(const char *data_dir, bool load_master, struct hub **hub_r, const char **error_r);
void hub_close(struct hub **hub);
const struct hub_settings *hub_get_settings(const struct hub *hub);
const char *hub_data_dir(const struct hub *hub);
/* hub.db's PRAGMA data_version on this connection: it changes when another
 * connection (the CLI, another process) commits to hub.db, never for this
 * connection's own commits; reading it costs no table read. */
int hub_data_version(struct hub *hub, int64_t *version_r, const char **error_r);
/* Valid hub user name: 1-64 of [a-z0-9._-], not starting with '.' or '-'. */
bool hub_valid_user_name(const char *name);

/* Users. password may be NULL (no hub sign-in yet); zero-access users need
 * a passphrase (their KEK is derived from it). */
int hub_user_add(struct hub *hub, const char *name, const char *password, bool zero_access,
                 const char *passphrase, const char **error_r);
/* 0 found / -1 (error or "no such user") */
int hub_user_get(struct hub *hub, const char *name, struct hub_user *user_r, const char **error_r);
int hub_user_list(struct hub *hub, struct hub_user **users_r, size_t *count_r,
                  const char **error_r);
int hub_user_touch(struct hub *hub, int64_t user_id, int64_t now, const char **error_r);
/* Record that user (as read from hub.db by the caller, e.g. at sign-in) was
 * active at now: hub_user_touch, but only when the recorded activity is
 * older than HUB_ACTIVITY_RESOLUTION or a warning is pending, so a device
 * making many requests costs one write per user per interval. */
#define HUB_ACTIVITY_RESOLUTION 900
int hub_user_activity(struct hub *hub, const struct hub_user *user, int64_t now,
                      const char **error_r);
int hub_user_set_warned(struct hub *hub, int64_t user_id, int days, const char **error_r);
/* Remove the user's records from hub.db (accounts, secrets, keys, devices,
 * consents); the caller removes the user's directory. */
int hub_user_delete(struct hub *hub, int64_t user_id, const char **error_r);
/* Change the hub password of a user who is not zero-access (a zero-access
 * user's password is also the passphrase the account keys are wrapped with:
 * refused here, hub_user_change_passphrase rewraps them). Audited
 * user.password via=VIA before the new Argon2id hash is stored. The caller
 * checked the old one. */
int hub_user_set_password(struct hub *hub, const struct hub_user *user, const char *password,
                          const char *via, const char **error_r);
/* Change a zero-access user's password, which is also the passphrase their
 * account keys are wrapped with: old_kek is the current key-encryption key,
 * opened by the caller with hub_user_kek() from the old password (that is
 * the check of the old password: one Argon2id run, no separate
 * hub_user_check_password), and stays the caller's; inside the transaction
 * it is checked against the stored check value, so a change in between is
 * refused. A new key is derived from new_password (new KDF salt), every
 * account's data key is rewrapped under it (key_version bumped), and the
 * password hash, KDF blob and check value are replaced, all in one
 * transaction (a crash leaves either the old passphrase working or the new
 * one). Audited user.password via=VIA before. *kek_r (when not NULL) gets the
 * new key, for an unlock lease that held the old one. */
int hub_user_change_passphrase(struct hub *hub, const struct hub_user *user,
                               const struct vault_kek *old_kek, const char *new_password,
                               const char *via, struct vault_kek **kek_r, const char **error_r);
/* Check a hub password (Argon2id). */
int hub_user_check_password(struct hub *hub, const struct hub_user *user, const char *password,
                            const char **error_r);

/* The user's stored password hash (an Argon2id string), for a caller that
 * verifies it with vault_password_verify() without holding the hub (the
 * check takes a fraction of a second and 64 MiB). -1 if the user has none. */
int hub_user_password_hash(struct hub *hub, const struct hub_user *user,
                           char hash_r[VAULT_PASSWORD_HASH_SIZE], const char **error_r);

/* The user's key-encryption key: from the master key, or for zero-access
 * users from passphrase (required then; a wrong one is an error). */
int hub_user_kek(struct hub *hub, const struct hub_user *user, const char *passphrase,
                 struct vault_kek **kek_r, const char **error_r);

/* Accounts. add() makes a data key, wraps it with kek, seals the password
 * as kind "imap-password" (and "smtp-password", the same, when smtp_url is
 * given) in one transaction. */
int hub_account_add(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
                    const char *imap_url, const char *smtp_url, const char *login,
                    const char *ca_file, const char *password, int64_t *account_id_r,
                    const char **error_r);
/* Change the account's server settings (all given anew: imap_url, login
 * required; smtp_url, ca_file may be NULL) and store its password again,
 * sealed for them under the next secret version (older copies no longer
 * open). The secrets are bound to the settings, so changing them always
 * means entering the password again. */
int hub_account_update(struct hub *hub, const struct hub_user *user,
                       const struct hub_account *account, const struct vault_kek *kek,
                       const char *imap_url, const char *smtp_url, const char *login,
                       const char *ca_file, const char *password, const char **error_r);
/* An OAuth 2 account: as hub_account_add(), with the refresh token sealed
 * as kind "oauth-refresh-token", bound (layout 2) to the settings and to
 * oauth's provider, token endpoint, client id and scopes. */
int hub_account_add_oauth(struct hub *hub, const struct hub_user *user, const struct vault_kek *kek,
                          const char *imap_url, const char *smtp_url, const char *login,
                          const char *ca_file, const struct hub_oauth_binding *oauth,
                          const char *refresh_token, int64_t *account_id_r, const char **error_r);
/* Store a rotated refresh token for an OAuth account, settings unchanged:
 * sealed under the next secret version in one transaction that also clears
 * needs_signin, then anchored (the old token stops opening). */
int hub_account_set_refresh_token(struct hub *hub, const struct hub_user *user,
                                  const struct hub_account *account, const struct vault_kek *kek,
                                  const char *refresh_token, const char **error_r);
/* Mark (since != 0) or clear (since == 0) that the account needs sign-in. */
int hub_account_set_needs_signin(struct hub *hub, int64_t account_id, int64_t since,
                                 const char **error_r);

/* Replace the account's password, settings unchanged (hub_account_update()). */
int hub_account_set_password(struct hub *hub, const struct hub_user *user,
                             const struct hub_account *account, const struct vault_kek *kek,
                             const char *password, const char **error_r);
int hub_account_list(struct hub *hub, int64_t user_id, struct hub_account **accounts_r,
                     size_t *count_r, const char **error_r);
void hub_accounts_free(struct hub_account **accounts, size_t count);
/* Open a sealed credential of the account (kind "imap-password", ...):
 * *secret_r is sodium_malloc'd; free with vault_secret_free(). */
int hub_account_open_secret(struct hub *hub, const struct hub_user *user,
                            const struct hub_account *account, const struct vault_kek *kek,
                            const char *kind, char **secret_r, const char **error_r);
/* Delete the account's sealed secrets, data key, consents and row, then
 * checkpoint hub.db's WAL so nothing of them remains on disk. Returns the
 * number of secrets deleted. */
int hub_account_remove(struct hub *hub, int64_t account_id, unsigned *secrets_r,
                       const char **error_r);
/* A removal in two steps a crash cannot leave half done without a way to
 * finish it: remove_secrets() deletes the sealed secrets, data key and
 * consents and keeps the account row (an account without secrets is one
 * being removed, so running the removal again finds it and finishes);
 * remove_finish() deletes the row and records the receipt (when not NULL)
 * in one transaction. Both checkpoint hub.db's WAL as hub_account_remove()
 * does. */
int hub_account_remove_secrets(struct hub *hub, int64_t account_id, unsigned *secrets_r,
                               const char **error_r);
int hub_account_remove_finish(struct hub *hub, int64_t account_id, int64_t user_id,
                              const char *receipt, const char **error_r);

/* Devices: each has a name unique per user and a bearer token shown once.
 * Only the token's SHA-256 is stored. */
#define HUB_DEVICE_TOKEN_SIZE 47 /* "mk_" + 43 base64url characters + NUL */
struct hub_device {
	int64_t id;
	int64_t user_id;
	char name[65];
	int64_t created, last_used;
};
int hub_device_add(struct hub *hub, const struct hub_user *user, const char *name,
                   char token_r[HUB_DEVICE_TOKEN_SIZE], int64_t *device_id_r, const char **error_r);
int hub_device_list(struct hub *hub, int64_t user_id, struct hub_device **devices_r,
                    size_t *count_r, const char **error_r);
/* Revoke: the token stops working at once (the row is deleted). */
int hub_device_revoke(struct hub *hub, const struct hub_user *user, const char *name,
                      int64_t *device_id_r, const char **error_r);
/* Does the device still exist (not revoked)? 1 yes, 0 no, -1 error. */
int hub_device_exists(struct hub *hub, int64_t device_id, const char **error_r);
/* Who holds this token? 0 and the user and device, or -1 ("invalid token"). */
int hub_device_auth(struct hub *hub, const char *token, struct hub_user *user_r,
                    struct hub_device *device_r, const char **error_r);
/* Record that device (as hub_device_auth read it) was used at now, for
 * 'device list': a write only when its recorded use is older than
 * HUB_ACTIVITY_RESOLUTION, so a busy device costs one write per interval. */
int hub_device_used(struct hub *hub, const struct hub_device *device, int64_t now,
                    const char **error_r);

/*
 * Web sessions: the web app's sign-ins, held in an HttpOnly cookie. The
 * token is 32 random bytes, base64url without padding (43 characters);
 * hub.db keeps only its keyed BLAKE2b hash (crypto_generichash, keyed with
 * a fixed domain string), so a copy of hub.db signs no one in. A session
 * ends HUB_SETTINGS.web_session_days after it was made (absolute) or
 * web_session_idle_days after its last use (idle), whichever comes first;
 * last_used is written at most once a minute. Sessions go with their user
 * (hub_user_delete, and ON DELETE CASCADE).
 *
 * In the records handed out, expires is when the session ends if it is not
 * used again: the earlier of its absolute end and last_used + the idle
 * lifetime. user_agent and address are what the browser sent at sign-in
 * (cut to fit, control characters replaced by '?').
 */
#define HUB_WEB_SESSION_TOKEN_LEN 43
struct hub_web_session {
	int64_t id, user_id, created, last_used, expires;
	char user_agent[200], address[64];
};
/* Set the lifetimes (days, 1..3650 each; others are ignored). */
void hub_web_session_lifetime(struct hub *hub, unsigned days, unsigned idle_days);
/* A new session for user: token_r gets the token (NUL-terminated, shown
 * to the browser once), *id_r its id (> 0). Expired sessions of every user
 * are deleted on the way. Audited (web.signin). */
int hub_web_session_create(struct hub *hub, const struct hub_user *user, const char *user_agent,
                           const char *address, int64_t now, char token_r[64], int64_t *id_r,
                           const char **error_r);
/* Who holds this token at now? 0 with the user and the session; -1 when
 * the token is malformed, unknown or the session expired (an expired one
 * is deleted), or on a database error (*error_r says which). Records the
 * use (at most once a minute). */
int hub_web_session_auth(struct hub *hub, const char *token, int64_t now, struct hub_user *user_r,
                         struct hub_web_session *s_r, const char **error_r);
/* The user's sessions, newest first, expired ones left out; *r is the
 * caller's (free()). */
int hub_web_session_list(struct hub *hub, int64_t user_id, struct hub_web_session **r, size_t *n_r,
                         const char **error_r);
/* End session id of user (sign-out or revoke): 0 revoked (audited
 * web.signout), 1 no such session, -1 error. */
int hub_web_session_revoke(struct hub *hub, const struct hub_user *user, int64_t id,
                           const char **error_r);
/* Does session id still exist and is it unexpired at now? 1 yes, 0 no,
 * -1 error (the lease table's check of its holders). */
int hub_web_session_exists(struct hub *hub, int64_t id, int64_t now, const char **error_r);

/* Consent to a disclosure, recorded with its id (SHA-256 of the text),
 * the time and the tool that gave it. */
int hub_consent_record(struct hub *hub, int64_t user_id, int64_t account_id,
                       const char *disclosure_id, const char *tool, const char **error_r);

/* Removal receipts, kept in hub.db and printed. */
int hub_receipt_add(struct hub *hub, int64_t user_id, const char *text, const char **error_r);
/* The newest receipt of the user whose text starts with prefix: 1 found
 * (*text_r is the caller's, free()), 0 none, -1 error. */
int hub_receipt_find(struct hub *hub, int64_t user_id, const char *prefix, char **text_r,
                     const char **error_r);

/* The user's consents, newest first (hub-records.c). A consent is deleted
 * with its account, so these are the consents of the accounts the user has.
 * *consents_r is malloc()ed (free()). */
struct hub_consent {
	int64_t id, account_id, time;
	char disclosure_id[65]; /* SHA-256 of the disclosure text, hex */
	char tool[64];          /* who took the consent ("mailkeep-cli --consent", "web") */
	char login[321];        /* the account's login; "" if the account is gone */
};
int hub_consent_list(struct hub *hub, int64_t user_id, struct hub_consent **consents_r,
                     size_t *count_r, const char **error_r);
/* The user's removal receipts, newest first; free with hub_receipts_free(). */
struct hub_receipt {
	int64_t id, time;
	char *text;
};
int hub_receipt_list(struct hub *hub, int64_t user_id, struct hub_receipt **receipts_r,
                     size_t *count_r, const char **error_r);
void hub_receipts_free(struct hub_receipt **receipts, size_t count);

/*
 * The user's audit log (DIR/users/NAME/audit.log): append one entry and
 * record the new head in hub.db, so a truncated log is detected. Writers
 * (threads with their own hub handles, other processes) take turns: a busy
 * log is waited for (bounded, AUDIT_LOCK_TIMEOUT_MS), and only a wait that
 * runs out fails, as a temporary error (hub_error_is_temporary()).
 *
 * The head is recorded in two steps around the append, under the log's lock:
 * before writing, hub.db gets the head as it is plus the hash of the entry
 * about to be written ("pending"); after the write is synced, the head moves
 * to that entry and pending is cleared. A crash in between leaves exactly one
 * entry beyond the recorded head whose hash is the pending one; nobody else
 * can produce an entry with that hash, so hub_audit_verify() tells this
 * apart from an entry added behind the hub's back. Before appending, the
 * log must end at the recorded head (or at that announced entry); if it
 * does not (entries added, dropped or rewritten, or hub.db put back to an
 * older copy), the append still happens (the action is not blocked), but
 * the finding is kept in hub.db (users.audit_alarm, the first one only) and
 * hub_audit_verify() reports it until someone clears it, so continuing the
 * chain never makes tampering look intact.
 */
int hub_audit(struct hub *hub, const struct hub_user *user, enum audit_event event,
              int64_t account_id, const struct audit_detail *details, size_t n_details,
              const char **error_r);
/*
 * Verify the user's audit log against the recorded head. The log is intact
 * when its chain verifies and it ends exactly at the recorded head. Two
 * states a crash can leave are repaired, and *note_r (else NULL) says which:
 * - one complete entry beyond the recorded head, chain-linked to it, whose
 *   hash is the recorded pending hash: the append was synced but the crash
 *   came before the head update; the head is moved to it ("recovered");
 * - an incomplete last line after entries ending exactly at the recorded
 *   head: an append cut off before it was synced (never acknowledged, so
 *   the action it recorded never ran); the line is removed.
 * Anything else (entries beyond the head that are not the pending one, two
 * or more extra entries, an edited, dropped or truncated entry, an
 * incomplete line anywhere else), and an alarm recorded by hub_audit(), is
 * reported as tampering (-1).
 */
int hub_audit_verify(struct hub *hub, const struct hub_user *user, uint64_t *count_r,
                     const char **note_r, const char **error_r);
/* Path of a file in the user's directory (audit.log, store.db). */
int hub_user_path(const struct hub *hub, const char *user, const char *file, char *path_r,
                  size_t size);

#endif
