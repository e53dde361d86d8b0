/* mailkeep account add --oauth PROVIDER, and account signin (docs/oauth.md):
 * an OAuth 2 account, signed in through the loopback redirect, the device
 * flow, or a token file a device produced. */
#include <curl/curl.h>
#include <getopt.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-account-setup.h"
#include "hub/hub.h"
#include "imap/imap-client.h"
#include "imap/imap-url.h"
#include "lib/buf.h"
#include "oauth/oauth.h"
#include "service/svc-oauth.h"
#include "smtp/smtp.h"

#define LOOPBACK_WAIT_MS (5 * 60 * 1000)
#define CHECK_TIMEOUT_MS 30000

enum flow { FLOW_LOOPBACK, FLOW_DEVICE, FLOW_TOKEN_FILE };

struct oauth_args {
	const char *user, *provider, *login, *imap, *smtp, *ca, *ppfile, *token_file;
	enum flow flow;
	bool consent, check;
	long long id; /* signin: the account */
};

static struct oauth_provider provider_from(const struct hub_oauth_provider *cfg, const char *ca)
{
	(void)ca; /* the CA file is for the mail servers; the provider uses the system's */
	struct oauth_provider p = {
	    .name = cfg->name,
	    .token_url = cfg->token_url,
	    .authorization_url = cfg->authorization_url[0] ? cfg->authorization_url : NULL,
	    .device_url = cfg->device_url[0] ? cfg->device_url : NULL,
	    .revocation_url = cfg->revocation_url[0] ? cfg->revocation_url : NULL,
	    .client_id = cfg->client_id,
	    .client_secret = cfg->client_secret[0] ? cfg->client_secret : NULL,
	    .scopes = cfg->scopes,
	    .timeout_ms = 30000,
	};
	return p;
}

/* Obtain tokens by the chosen flow; prints what the user must do. */
static int sign_in(const struct oauth_provider *p, const struct oauth_args *a,
                   struct oauth_tokens *t)
{
	struct oauth_error err;
	if (a->flow == FLOW_TOKEN_FILE) {
		if (oauth_tokens_from_file(a->token_file, t, &err) < 0) {
			cli_error("%s", err.text);
			return -1;
		}
		return 0;
	}
	if (a->flow == FLOW_DEVICE) {
		struct oauth_device dev = {0};
		if (oauth_device_start(p, &dev, &err) < 0) {
			cli_error("%s", err.text);
			return -1;
		}
		printf("To sign in, open %s and enter the code %s\n",
		       dev.verification_uri_complete[0] ? dev.verification_uri_complete
		                                        : dev.verification_uri,
		       dev.user_code);
		printf("(waiting up to %lld s for the sign-in)\n",
		       (long long)(dev.expires_at - time(NULL)));
		fflush(stdout);
		int r = oauth_device_poll(p, &dev, NULL, t, &err);
		oauth_device_clear(&dev);
		if (r < 0)
			cli_error("%s", err.text);
		return r;
	}
	struct oauth_pkce *pkce = NULL;
	struct oauth_loopback *lb = NULL;
	const char *redirect;
	char *url = NULL, *code = NULL;
	int r = -1;
	if (oauth_pkce_new(&pkce, &err) < 0 || oauth_loopback_open(&lb, &redirect, &err) < 0 ||
	    oauth_authorization_url(p, pkce, redirect, a->login, &url, &err) < 0) {
		cli_error("%s", err.text);
		goto out;
	}
	/* The URL carries no secret (PKCE sends only the challenge). */
	printf("Open this address in a browser on this machine to sign in to %s:\n\n%s\n\n"
	       "(waiting up to %d s; the browser is sent back to %s)\n",
	       p->name, url, LOOPBACK_WAIT_MS / 1000, redirect);
	fflush(stdout);
	if (oauth_loopback_wait(lb, pkce->state, LOOPBACK_WAIT_MS, &code, &err) < 0 ||
	    oauth_exchange_code(p, code, redirect, pkce, t, &err) < 0) {
		cli_error("%s", err.text);
		goto out;
	}
	r = 0;
out:
	oauth_secret_free(&code);
	free(url);
	oauth_loopback_free(&lb);
	oauth_pkce_free(&pkce);
	return r;
}

/* Log in to the servers with the access token before anything is stored. */
static int check_login(const struct oauth_args *a, const char *access)
{
	char host[256], port[8];
	const char *err;
	struct imap_client_settings set = {
	    .ca_file = a->ca, .timeout_ms = CHECK_TIMEOUT_MS, .compress = IMAP_COMPRESS_NO};
	if (imap_url_parse(a->imap, host, sizeof(host), port, sizeof(port), &set.security) < 0)
		return -1;
	set.host = host;
	set.port = port;
	struct imap_client *c = NULL;
	if (imap_client_connect(&set, &c, &err) < 0) {
		cli_error("cannot connect to %s: %s", a->imap, err);
		return -1;
	}
	int r = imap_client_login_oauth(c, a->login, access, &err);
	if (r < 0)
		cli_error("%s", err);
	else
		imap_client_logout(c);
	imap_client_free(&c);
	if (r < 0)
		return -1;
	if (a->smtp != NULL) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		char reply[SMTP_REPLY_SIZE];
		struct smtp_settings ss = {.url = a->smtp,
		                           .ca_file = a->ca,
		                           .login = a->login,
		                           .bearer = access,
		                           .timeout_ms = CHECK_TIMEOUT_MS};
		if (smtp_check_login(&ss, reply) != SMTP_SENT) {
			cli_error("SMTP login to %s with the access token failed: %s", a->smtp,
			          reply);
			return -1;
		}
	}
	return 0;
}

static void disclosure(struct hub *hub, const struct hub_user *u, const struct oauth_args *a,
                       const struct oauth_provider *p, struct buf *b)
{
	char host[256] = "this machine";
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	buf_printf(b, "mailkeep: adding an OAuth mail account for hub user %s\n\n", u->name);
	buf_printf(b, "What will be stored, and where\n");
	buf_printf(b, "- On this hub: host %s, data directory %s.\n", host, hub_data_dir(hub));
	buf_printf(b,
	           "- No password. A refresh token %s issues to this hub's app (client id %s) "
	           "for %s, with the scopes: %s. It is sealed (XChaCha20-Poly1305) with a key "
	           "made for this account only, bound to the servers, the login, the token "
	           "endpoint %s, the client id and the scopes.\n",
	           p->name, p->client_id, a->login, p->scopes, p->token_url);
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
	           a->imap, a->login, u->name);
	if (a->smtp != NULL)
		buf_printf(b, "- Log in to %s (SMTP) as %s to send mail %s asks it to send.\n",
		           a->smtp, a->login, u->name);
	account_setup_disclose_mail(hub, u, b); /* who reads the mail, how long it is kept */
	buf_printf(b, "\nHow to remove it all\n");
	buf_printf(b,
	           "- mailkeep account remove --user %s ID --all-devices revokes the token at "
	           "%s%s, deletes it, its key and every copy of this account's mail from the "
	           "hub and prints a receipt. You can also revoke the hub's access in your "
	           "account's security settings at %s at any time.\n",
	           u->name, p->name,
	           p->revocation_url != NULL ? ""
	                                     : " (where it offers revocation; it does not "
	                                       "here)",
	           p->name);
}

static int parse(int argc, char **argv, bool signin, struct oauth_args *a)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"oauth", required_argument, NULL, 'o'},
	    {"imap", required_argument, NULL, 'i'},
	    {"smtp", required_argument, NULL, 's'},
	    {"login", required_argument, NULL, 'l'},
	    {"ca-file", required_argument, NULL, 'c'},
	    {"passphrase-file", required_argument, NULL, 'P'},
	    {"flow", required_argument, NULL, 'f'},
	    {"token-file", required_argument, NULL, 't'},
	    {"consent", no_argument, NULL, 'y'},
	    {"no-check", no_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	memset(a, 0, sizeof(*a));
	a->check = true;
	const char *flow = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			a->user = optarg;
			break;
		case 'o':
			a->provider = optarg;
			break;
		case 'i':
			a->imap = optarg;
			break;
		case 's':
			a->smtp = optarg;
			break;
		case 'l':
			a->login = optarg;
			break;
		case 'c':
			a->ca = optarg;
			break;
		case 'P':
			a->ppfile = optarg;
			break;
		case 'f':
			flow = optarg;
			break;
		case 't':
			a->token_file = optarg;
			break;
		case 'y':
			a->consent = true;
			break;
		case 'n':
			a->check = false;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	/* "--flow token-file F": the file may follow the flow name. */
	if (flow != NULL && strcmp(flow, "token-file") == 0 && a->token_file == NULL &&
	    optind < argc)
		a->token_file = argv[optind++];
	if (signin) {
		char *end;
		if (optind + 1 != argc ||
		    (a->id = strtoll(argv[optind], &end, 10), *end != '\0' || a->id <= 0)) {
			cli_error("account signin needs --user NAME and the account ID");
			return EXIT_USAGE;
		}
	} else if (optind != argc) {
		cli_error("unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	if (flow == NULL)
		a->flow = a->token_file != NULL ? FLOW_TOKEN_FILE : FLOW_LOOPBACK;
	else if (strcmp(flow, "loopback") == 0)
		a->flow = FLOW_LOOPBACK;
	else if (strcmp(flow, "device") == 0)
		a->flow = FLOW_DEVICE;
	else if (strcmp(flow, "token-file") == 0)
		a->flow = FLOW_TOKEN_FILE;
	else {
		cli_error("--flow is loopback, device or token-file");
		return EXIT_USAGE;
	}
	if (a->flow == FLOW_TOKEN_FILE && a->token_file == NULL) {
		cli_error("--flow token-file needs the file: --flow token-file F");
		return EXIT_USAGE;
	}
	if (a->user == NULL ||
	    (!signin && (a->provider == NULL || a->imap == NULL || a->login == NULL))) {
		cli_error("account add --oauth needs --user, --oauth PROVIDER, --login and --imap");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int cli_account_add_oauth(struct hub *hub, int argc, char **argv)
{
	struct oauth_args a;
	int r = parse(argc, argv, false, &a);
	if (r != EXIT_OK)
		return r;
	char host[256], port[8];
	enum imap_security sec;
	const char *err;
	if (imap_url_parse(a.imap, host, sizeof(host), port, sizeof(port), &sec) < 0) {
		cli_error("bad --imap URL '%s': use imaps://host[:port] or imap://host[:port]",
		          a.imap);
		return EXIT_USAGE;
	}
	if (a.smtp != NULL && !smtp_url_valid(a.smtp)) {
		cli_error("bad --smtp URL '%s'", a.smtp);
		return EXIT_USAGE;
	}
	if (a.login[0] == '\0' || strpbrk(a.login, "\r\n\x01") != NULL || strlen(a.login) > 320) {
		cli_error("bad --login");
		return EXIT_USAGE;
	}
	char ca_abs[PATH_MAX];
	if (a.ca != NULL && realpath(a.ca, ca_abs) != NULL)
		a.ca = ca_abs;
	const struct hub_oauth_provider *cfg = hub_oauth_provider(hub, a.provider);
	if (cfg == NULL || cfg->client_id[0] == '\0' || cfg->token_url[0] == '\0') {
		cli_error("OAuth provider '%s' is not configured: set oauth.%s.client_id, "
		          "oauth.%s.token_url (and authorization_url, device_url, revocation_url, "
		          "scopes) in %s/mailkeep.conf (docs/oauth.md)",
		          a.provider, a.provider, a.provider, hub_data_dir(hub));
		return EXIT_FAIL;
	}
	struct oauth_provider p = provider_from(cfg, a.ca);
	struct oauth_error oe;
	if (oauth_provider_check(&p, &oe) < 0) {
		cli_error("%s", oe.text);
		return EXIT_FAIL;
	}
	struct hub_user u;
	if (hub_user_get(hub, a.user, &u, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	if (u.zero_access && a.ppfile == NULL) {
		cli_error("%s is a zero-access user: give the passphrase with --passphrase-file",
		          a.user);
		return EXIT_USAGE;
	}
	struct buf text;
	buf_init(&text, 16384);
	disclosure(hub, &u, &a, &p, &text);
	unsigned char md[32];
	unsigned int mdlen;
	char id[65];
	EVP_Digest(text.data, text.len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(id + 2 * i, 3, "%02x", md[i]);
	fputs(buf_str(&text), stdout);
	printf("\nDisclosure id: %s\n", id);
	fflush(stdout);
	buf_free(&text);
	const char *tool = "mailkeep-cli --consent";
	if (!a.consent) {
		tool = "mailkeep-cli interactive";
		a.consent = cli_confirm("Do you consent to this?");
	}
	if (!a.consent) {
		cli_error("no consent given: nothing was stored (run on a terminal and answer "
		          "yes, or pass --consent to accept the text above)");
		return EXIT_FAIL;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct oauth_tokens t = {0};
	char *passphrase = NULL;
	struct vault_kek *kek = NULL;
	int64_t account_id = 0;
	int ret = EXIT_FAIL;
	if (a.ppfile != NULL && (passphrase = cli_read_secret(a.ppfile)) == NULL)
		goto out;
	if (hub_user_kek(hub, &u, passphrase, &kek, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	if (sign_in(&p, &a, &t) < 0)
		goto out;
	if (t.refresh_token == NULL) {
		cli_error("%s gave no refresh token (for Google, the consent must be given again: "
		          "remove the hub's access in the Google account and retry)",
		          p.name);
		goto out;
	}
	if (t.access_token == NULL) {
		/* A token file may hold only the refresh token. */
		struct oauth_tokens fresh = {0};
		if (oauth_refresh(&p, t.refresh_token, &fresh, &oe) < 0) {
			cli_error("%s", oe.text);
			goto out;
		}
		if (fresh.refresh_token != NULL) {
			oauth_secret_free(&t.refresh_token);
			t.refresh_token = fresh.refresh_token;
			fresh.refresh_token = NULL;
		}
		t.access_token = fresh.access_token;
		fresh.access_token = NULL;
		oauth_tokens_clear(&fresh);
	}
	if (a.check && check_login(&a, t.access_token) < 0)
		goto out;
	struct hub_oauth_binding ob = {.provider = p.name,
	                               .token_url = p.token_url,
	                               .client_id = p.client_id,
	                               .scopes = p.scopes};
	if (hub_account_add_oauth(hub, &u, kek, a.imap, a.smtp, a.login, a.ca, &ob, t.refresh_token,
	                          &account_id, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	struct audit_detail cd[] = {{"disclosure", id}, {"tool", tool}};
	struct audit_detail ad[] = {{"imap", a.imap},
	                            {"smtp", a.smtp != NULL ? a.smtp : "none"},
	                            {"login", a.login},
	                            {"login_checked", a.check ? "yes" : "no"},
	                            {"auth", "oauth2"},
	                            {"provider", p.name},
	                            {"flow", a.flow == FLOW_LOOPBACK ? "loopback"
	                                     : a.flow == FLOW_DEVICE ? "device"
	                                                             : "token-file"}};
	if (hub_consent_record(hub, u.id, account_id, id, tool, &err) < 0 ||
	    hub_audit(hub, &u, AUDIT_CONSENT_GIVEN, account_id, cd, 2, &err) < 0 ||
	    hub_audit(hub, &u, AUDIT_ACCOUNT_ADDED, account_id, ad, 7, &err) < 0 ||
	    hub_user_touch(hub, u.id, time(NULL), &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	printf("added OAuth account %lld for %s (%s; consent recorded%s)\n", (long long)account_id,
	       a.user, p.name,
	       a.check ? (a.smtp != NULL ? "; IMAP and SMTP login checked" : "; IMAP login checked")
	               : "; login not checked");
	ret = EXIT_OK;
out:
	oauth_tokens_clear(&t);
	vault_kek_free(&kek);
	cli_secret_free(&passphrase);
	return ret;
}

int cli_account_signin(struct hub *hub, int argc, char **argv)
{
	struct oauth_args a;
	int r = parse(argc, argv, true, &a);
	if (r != EXIT_OK)
		return r;
	const char *err;
	struct hub_user u;
	struct hub_account *all = NULL, *acct = NULL;
	size_t n = 0;
	if (hub_user_get(hub, a.user, &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &all, &n, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++)
		if (all[i].id == a.id)
			acct = &all[i];
	int ret = EXIT_FAIL;
	struct oauth_tokens t = {0};
	char *passphrase = NULL;
	struct vault_kek *kek = NULL;
	if (acct == NULL || !acct->oauth) {
		cli_error("%s has no OAuth account %lld", a.user, a.id);
		goto out;
	}
	const struct hub_oauth_provider *cfg = hub_oauth_provider(hub, acct->oauth_provider);
	if (cfg == NULL || strcmp(cfg->token_url, acct->oauth_token_url) != 0 ||
	    strcmp(cfg->client_id, acct->oauth_client_id) != 0 ||
	    strcmp(cfg->scopes, acct->oauth_scopes) != 0) {
		cli_error("oauth.%s in mailkeep.conf is missing or no longer what account %lld "
		          "signed in with (token_url, client_id, scopes): remove the account and "
		          "add it again",
		          acct->oauth_provider, a.id);
		goto out;
	}
	struct oauth_provider p = provider_from(cfg, acct->ca_file);
	a.login = acct->login;
	a.imap = acct->imap_url;
	a.smtp = acct->smtp_url;
	a.ca = acct->ca_file;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (a.ppfile != NULL && (passphrase = cli_read_secret(a.ppfile)) == NULL)
		goto out;
	if (hub_user_kek(hub, &u, passphrase, &kek, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	if (sign_in(&p, &a, &t) < 0)
		goto out;
	if (t.refresh_token == NULL) {
		cli_error("%s gave no refresh token", p.name);
		goto out;
	}
	if (a.check && t.access_token != NULL && check_login(&a, t.access_token) < 0)
		goto out;
	struct audit_detail sd[] = {{"provider", p.name}, {"result", "signed-in"}};
	if (hub_account_set_refresh_token(hub, &u, acct, kek, t.refresh_token, &err) < 0 ||
	    hub_audit(hub, &u, AUDIT_OAUTH_SIGNIN, acct->id, sd, 2, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	printf("account %lld of %s signed in again at %s; sync and send resume\n", a.id, a.user,
	       p.name);
	ret = EXIT_OK;
out:
	oauth_tokens_clear(&t);
	vault_kek_free(&kek);
	cli_secret_free(&passphrase);
	hub_accounts_free(&all, n);
	return ret;
}
