/* Adding an OAuth 2 account and signing one in again (svc-account.h): the
 * disclosure, the login check with the access token, the add, the consent
 * record and the audit. The command line (cmd-account-oauth.c) and serve's
 * web flows (daemon-oauth.c) both run it; each obtains the tokens its own
 * way (docs/oauth.md). */
#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc-account.h"
#include "svc-oauth.h"
#include "../hub/hub.h"
#include "../imap/imap-client.h"
#include "../imap/imap-url.h"
#include "../lib/buf.h"
#include "../smtp/smtp.h"

const struct hub_oauth_provider *svc_oauth_configured(struct hub *hub, const char *name)
{
	const struct hub_oauth_provider *cfg = name != NULL ? hub_oauth_provider(hub, name) : NULL;
	if (cfg == NULL || cfg->client_id[0] == '\0' || cfg->token_url[0] == '\0')
		return NULL;
	return cfg;
}

bool svc_oauth_signin_matches(const struct hub_oauth_provider *cfg, const struct hub_account *acct)
{
	return cfg != NULL && acct->oauth && acct->oauth_token_url != NULL &&
	       acct->oauth_client_id != NULL && acct->oauth_scopes != NULL &&
	       strcmp(cfg->token_url, acct->oauth_token_url) == 0 &&
	       strcmp(cfg->client_id, acct->oauth_client_id) == 0 &&
	       strcmp(cfg->scopes, acct->oauth_scopes) == 0;
}

static void sha256_hex(const void *data, size_t len, char hex[SVC_DISCLOSURE_ID_SIZE])
{
	unsigned char md[32];
	unsigned int n = sizeof(md);
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

int svc_account_disclosure_oauth(struct hub *hub, const struct hub_user *u, const char *imap,
                                 const char *smtp, const char *login,
                                 const struct oauth_provider *p, struct buf *b,
                                 char id_r[SVC_DISCLOSURE_ID_SIZE])
{
	char host[256] = "this machine";
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	size_t start = b->len;
	buf_printf(b, "mailkeep: adding an OAuth mail account for hub user %s\n\n", u->name);
	buf_printf(b, "What will be stored, and where\n");
	buf_printf(b, "- On this hub: host %s, data directory %s.\n", host, hub_data_dir(hub));
	buf_printf(b,
	           "- No password. A refresh token %s issues to this hub's app (client id %s) "
	           "for %s, with the scopes: %s. It is sealed (XChaCha20-Poly1305) with a key "
	           "made for this account only, bound to the servers, the login, the token "
	           "endpoint %s, the client id and the scopes.\n",
	           p->name, p->client_id, login, p->scopes, p->token_url);
	buf_printf(b, "- Access tokens made from it live only in locked memory and expire "
	              "within hours.\n");
	if (u->zero_access)
		buf_printf(b,
		           "- Who can decrypt it: only %s (the key is derived from the "
		           "passphrase).\n",
		           u->name);
	else
		buf_printf(b,
		           "- Who can decrypt it: this hub, with its master key, whenever it syncs "
		           "or sends for %s.\n",
		           u->name);
	buf_printf(b, "\nWhat the hub will do as %s\n", u->name);
	buf_printf(b, "- Ask %s for access tokens, each refresh written to %s's audit log.\n",
	           p->name, u->name);
	buf_printf(b,
	           "- Log in to %s (IMAP) as %s and copy all its mail into %s's hosted "
	           "mailbox on this hub, and keep it in sync.\n",
	           imap, login, u->name);
	if (smtp != NULL)
		buf_printf(b, "- Log in to %s (SMTP) as %s to send mail %s asks it to send.\n",
		           smtp, login, u->name);
	svc_account_disclose_mail(hub, u, b); /* who reads the mail, how long it is kept */
	buf_printf(b, "\nHow to remove it all\n");
	/* For both faces: the web app's Accounts page and the command line
	 * remove it the same way. */
	int r = buf_printf(
	    b,
	    "- Remove the account in the web app (Accounts), or with mailkeep account remove "
	    "--user %s ID --all-devices: either revokes the token at %s%s, deletes it, its key "
	    "and every copy of this account's mail from the hub and gives a receipt. You can "
	    "also revoke the hub's access in your account's security settings at %s at any "
	    "time.\n",
	    u->name, p->name,
	    p->revocation_url != NULL ? "" : " (where it offers revocation; it does not here)",
	    p->name);
	if (r < 0 || b->failed || b->len <= start)
		return -1;
	sha256_hex(b->data + start, b->len - start, id_r);
	return 0;
}

int svc_account_add_oauth(struct hub *hub, const struct hub_user *u, const struct vault_kek *kek,
                          const struct svc_account_oauth_new *a, struct oauth_tokens *t,
                          int64_t *account_id_r, char *error, size_t error_size)
{
	const struct oauth_provider *p = a->provider;
	const char *err;
	struct oauth_error oe;
	error[0] = '\0';
	/* Here, where every face passes: the web's sign-in may have been
	 * started before another device added the same account. */
	int dup = svc_account_duplicate(hub, u, a->imap, a->login, NULL, NULL, 0, NULL, 0, error,
	                                error_size);
	if (dup != 0) {
		if (dup > 0)
			snprintf(
			    error, error_size,
			    "%s on %s is one of %s's accounts already: not added again (sign it "
			    "in again instead)",
			    a->login, a->imap, u->name);
		return -1;
	}
	if (t->refresh_token == NULL) {
		snprintf(error, error_size,
		         "%s gave no refresh token (for Google, the consent must be given again: "
		         "remove the hub's access in the Google account and retry)",
		         p->name);
		return -1;
	}
	if (t->access_token == NULL) {
		/* A token file may hold only the refresh token. */
		struct oauth_tokens fresh = {0};
		if (oauth_refresh(p, t->refresh_token, &fresh, &oe) < 0) {
			snprintf(error, error_size, "%s", oe.text);
			return -1;
		}
		if (fresh.refresh_token != NULL) { /* rotated: the new one is kept */
			oauth_secret_free(&t->refresh_token);
			t->refresh_token = fresh.refresh_token;
			fresh.refresh_token = NULL;
		}
		t->access_token = fresh.access_token;
		fresh.access_token = NULL;
		oauth_tokens_clear(&fresh);
	}
	if (a->check && svc_account_check_login_oauth(a->imap, a->smtp, a->login, a->ca,
	                                              t->access_token, error, error_size) < 0)
		return -1;
	struct hub_oauth_binding ob = {.provider = p->name,
	                               .token_url = p->token_url,
	                               .client_id = p->client_id,
	                               .scopes = p->scopes};
	int64_t account_id = 0;
	if (hub_account_add_oauth(hub, u, kek, a->imap, a->smtp, a->login, a->ca, &ob,
	                          t->refresh_token, &account_id, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	struct audit_detail cd[] = {{"disclosure", a->disclosure_id}, {"tool", a->tool}};
	struct audit_detail ad[] = {
	    {"imap", a->imap},   {"smtp", a->smtp != NULL ? a->smtp : "none"},
	    {"login", a->login}, {"login_checked", a->check ? "yes" : "no"},
	    {"auth", "oauth2"},  {"provider", p->name},
	    {"flow", a->flow}};
	if (hub_consent_record(hub, u->id, account_id, a->disclosure_id, a->tool, &err) < 0 ||
	    hub_audit(hub, u, AUDIT_CONSENT_GIVEN, account_id, cd, 2, &err) < 0 ||
	    hub_audit(hub, u, AUDIT_ACCOUNT_ADDED, account_id, ad, 7, &err) < 0 ||
	    hub_user_touch(hub, u->id, time(NULL), &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	*account_id_r = account_id;
	return 0;
}

int svc_account_signin_oauth(struct hub *hub, const struct hub_user *u,
                             const struct hub_account *acct, const struct vault_kek *kek,
                             const struct oauth_provider *p, const struct oauth_tokens *t,
                             bool check, char *error, size_t error_size)
{
	const char *err;
	error[0] = '\0';
	if (t->refresh_token == NULL) {
		snprintf(error, error_size, "%s gave no refresh token", p->name);
		return -1;
	}
	if (check && t->access_token != NULL &&
	    svc_account_check_login_oauth(acct->imap_url, acct->smtp_url, acct->login,
	                                  acct->ca_file, t->access_token, error, error_size) < 0)
		return -1;
	struct audit_detail sd[] = {{"provider", p->name}, {"result", "signed-in"}};
	int r = hub_account_set_refresh_token(hub, u, acct, kek, t->refresh_token, &err);
	/* The access token cached for the old grant goes, whatever follows: the
	 * next use refreshes with the new refresh token. */
	svc_oauth_cache_forget(hub, acct->id);
	if (r < 0 || hub_audit(hub, u, AUDIT_OAUTH_SIGNIN, acct->id, sd, 2, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	return 0;
}
