/* Adding an account with consent: the disclosure, the login check, the
 * add, the consent record and its audit (svc-account.h). The command line
 * (cmd-account.c) and serve's management methods (daemon-manage.c) both
 * run it. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "svc-account.h"
#include "../hub/hub.h"
#include "../imap/imap-client.h"
#include "../imap/imap-url.h"
#include "../lib/buf.h"
#include "../smtp/smtp.h"

void svc_account_disclose_mail(struct hub *hub, const struct hub_user *u, struct buf *b)
{
	const struct hub_settings *set = hub_get_settings(hub);
	buf_printf(b, "\nWho can read the mail kept on this hub\n");
	buf_printf(b,
	           "- %s, through devices signed in as %s, and the hub itself when it syncs, "
	           "searches and sends.\n",
	           u->name, u->name);
	buf_printf(b,
	           "- The hub's administrator (whoever controls this machine or reads its data "
	           "directory %s): the hosted mail is not encrypted at rest by mailkeep. %s\n",
	           hub_data_dir(hub),
	           u->zero_access ? "Zero-access protects only the credentials (this account's "
	                            "password or token), not the mail."
	                          : "Zero-access mode (mailkeep user add --zero-access) would "
	                            "protect only the credentials, not the mail.");
	buf_printf(b, "\nHow long it is kept\n");
	buf_printf(b,
	           "- As long as the account is on the hub; account remove deletes every copy.\n");
	buf_printf(b,
	           "- The hosted copy follows the server: mail expunged there is deleted here at "
	           "the next sync.\n");
	buf_printf(b,
	           "- Lifecycle policy in force (mailkeep.conf inactive_purge_days = %u): if %s "
	           "is inactive for %u days (no sync, no sign-in, no device using the hub), "
	           "everything of %s on this hub is deleted, after warnings 30 and 7 days "
	           "before.\n",
	           set->inactive_purge_days, u->name, set->inactive_purge_days, u->name);
}

static void sha256_hex(const void *data, size_t len, char hex[SVC_DISCLOSURE_ID_SIZE])
{
	unsigned char md[32];
	unsigned int n = sizeof(md);
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int svc_account_disclosure(struct hub *hub, const struct hub_user *u, const char *imap,
                           const char *smtp, const char *login, const char *sources, struct buf *b,
                           char id_r[SVC_DISCLOSURE_ID_SIZE])
{
	char host[256] = "this machine";
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	const char *dir = hub_data_dir(hub);
	const struct hub_settings *set = hub_get_settings(hub);
	size_t start = b->len;
	buf_printf(b, "mailkeep: adding a mail account for hub user %s\n\n", u->name);
	buf_printf(b, "What will be stored, and where\n");
	buf_printf(b, "- On this hub: host %s, data directory %s.\n", host, dir);
	buf_printf(b,
	           "- The password of %s, sealed (XChaCha20-Poly1305) with a key made for this "
	           "account only.\n",
	           login);
	if (u->zero_access)
		buf_printf(b,
		           "- Who can decrypt it: only %s. The key is derived from %s's "
		           "passphrase; the hub cannot open it unless %s has unlocked it by "
		           "signing in, and then only for a limited time.\n",
		           u->name, u->name, u->name);
	else
		buf_printf(b,
		           "- Who can decrypt it: this hub, with its master key (%s%s), "
		           "whenever it syncs or sends for %s. Whoever holds both that key and "
		           "a copy of the data directory could decrypt it too.\n",
		           set->master_key_credential[0] != '\0' ? "systemd credential "
		                                                 : "key file ",
		           set->master_key_credential[0] != '\0' ? set->master_key_credential
		                                                 : set->master_key,
		           u->name);
	buf_printf(b, "\nWhat the hub will do as %s\n", u->name);
	buf_printf(b, "- Log in to %s (IMAP) as %s.\n", imap, login);
	if (smtp != NULL)
		buf_printf(b, "- Log in to %s (SMTP) as %s to send mail %s asks it to send.\n",
		           smtp, login, u->name);
	buf_printf(b,
	           "- Copy all mail of this account (every folder, message, flag) into %s's "
	           "hosted mailbox on this hub, and keep it in sync.\n",
	           u->name);
	buf_printf(b,
	           "- Write every use of the password to %s's audit log "
	           "(mailkeep audit --user %s).\n",
	           u->name, u->name);
	if (sources != NULL)
		buf_printf(b, "\nWhere these settings came from\n%s", sources);
	svc_account_disclose_mail(hub, u, b);
	buf_printf(b, "\nHow to remove it all\n");
	int r =
	    buf_printf(b,
	               "- mailkeep account remove --user %s ID --all-devices deletes the "
	               "password, its key and every copy of this account's mail from the hub and "
	               "prints a receipt (ID is shown when the account is added).\n",
	               u->name);
	if (r < 0 || b->failed || b->len <= start)
		return -1;
	sha256_hex(b->data + start, b->len - start, id_r);
	return 0;
}

int svc_account_duplicate(struct hub *hub, const struct hub_user *u, const char *imap,
                          const char *login, int64_t *id_r, char *login_r, size_t login_size,
                          char *imap_r, size_t imap_size, char *error, size_t error_size)
{
	struct hub_account *a = NULL;
	size_t n = 0;
	const char *err;
	if (hub_account_list(hub, u->id, &a, &n, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	int found = 0;
	for (size_t i = 0; i < n && !found; i++) {
		if (strcasecmp(a[i].login, login) != 0 ||
		    !imap_url_same_server(a[i].imap_url, imap))
			continue;
		found = 1;
		if (id_r != NULL)
			*id_r = a[i].id;
		if (login_r != NULL)
			snprintf(login_r, login_size, "%s", a[i].login);
		if (imap_r != NULL)
			snprintf(imap_r, imap_size, "%s", a[i].imap_url);
	}
	hub_accounts_free(&a, n);
	return found;
}

/* The login check for a password or (when bearer) an OAuth access token. */
static int check_login(const char *imap, const char *smtp, const char *login, const char *ca,
                       const char *secret, bool bearer, char *error, size_t error_size)
{
	char host[256], port[8];
	const char *err;
	const char *with = bearer ? " with the access token" : "";
	struct imap_client_settings set = {.ca_file = ca,
	                                   .timeout_ms = SVC_ACCOUNT_CHECK_TIMEOUT_MS,
	                                   .compress = IMAP_COMPRESS_NO};
	if (imap_url_parse(imap, host, sizeof(host), port, sizeof(port), &set.security) < 0) {
		snprintf(error, error_size, "bad IMAP URL '%s'; nothing was stored", imap);
		return -1;
	}
	set.host = host;
	set.port = port;
	struct imap_client *client = NULL;
	if (imap_client_connect(&set, &client, &err) < 0) {
		snprintf(error, error_size, "cannot connect to %s: %s; nothing was stored", imap,
		         err);
		return -1;
	}
	int r = bearer ? imap_client_login_oauth(client, login, secret, &err)
	               : imap_client_login(client, login, secret, &err);
	if (r < 0) {
		snprintf(error, error_size, "%s refused the login of %s%s: %s; nothing was stored",
		         imap, login, with, err);
		imap_client_free(&client);
		return -1;
	}
	imap_client_logout(client);
	imap_client_free(&client);
	if (smtp == NULL)
		return 0;
	struct smtp_settings ss = {.url = smtp,
	                           .ca_file = ca,
	                           .login = login,
	                           .password = bearer ? NULL : secret,
	                           .bearer = bearer ? secret : NULL,
	                           .timeout_ms = SVC_ACCOUNT_CHECK_TIMEOUT_MS};
	char reply[SMTP_REPLY_SIZE];
	if (smtp_check_login(&ss, reply) != SMTP_SENT) {
		snprintf(error, error_size, "cannot log in to %s as %s%s: %s; nothing was stored",
		         smtp, login, with, reply);
		return -1;
	}
	return 0;
}

int svc_account_check_login(const char *imap, const char *smtp, const char *login, const char *ca,
                            const char *password, char *error, size_t error_size)
{
	return check_login(imap, smtp, login, ca, password, false, error, error_size);
}

int svc_account_check_login_oauth(const char *imap, const char *smtp, const char *login,
                                  const char *ca, const char *access, char *error,
                                  size_t error_size)
{
	return check_login(imap, smtp, login, ca, access, true, error, error_size);
}

int svc_account_add(struct hub *hub, const struct hub_user *u, const struct vault_kek *kek,
                    const struct svc_account_new *a, int64_t *account_id_r, char *error,
                    size_t error_size)
{
	const char *err;
	int64_t account_id;
	error[0] = '\0';
	if (a->check && svc_account_check_login(a->imap, a->smtp, a->login, a->ca, a->password,
	                                        error, error_size) < 0)
		return -1;
	if (u->zero_access && a->signin_via != NULL) {
		struct audit_detail d[] = {{"via", a->signin_via}};
		hub_audit(hub, u, AUDIT_USER_SIGNIN, 0, d, 1, &err);
	}
	if (hub_account_add(hub, u, kek, a->imap, a->smtp, a->login, a->ca, a->password,
	                    &account_id, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	struct audit_detail cd[] = {{"disclosure", a->disclosure_id}, {"tool", a->tool}};
	struct audit_detail ad[] = {{"imap", a->imap},
	                            {"smtp", a->smtp != NULL ? a->smtp : "none"},
	                            {"login", a->login},
	                            {"login_checked", a->check ? "yes" : "no"}};
	if (hub_consent_record(hub, u->id, account_id, a->disclosure_id, a->tool, &err) < 0 ||
	    hub_audit(hub, u, AUDIT_CONSENT_GIVEN, account_id, cd, 2, &err) < 0 ||
	    hub_audit(hub, u, AUDIT_ACCOUNT_ADDED, account_id, ad, 4, &err) < 0 ||
	    hub_user_touch(hub, u->id, time(NULL), &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	*account_id_r = account_id;
	return 0;
}
