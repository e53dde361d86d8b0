/* mailkeep account add --oauth PROVIDER, and account signin (docs/oauth.md):
 * an OAuth 2 account, signed in through the loopback redirect, the device
 * flow, or a token file a device produced. */
#include <getopt.h>
#include <limits.h>
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
#include "service/svc-account.h"
#include "service/svc-oauth.h"
#include "smtp/smtp.h"

#define LOOPBACK_WAIT_MS (5 * 60 * 1000)

enum flow { FLOW_LOOPBACK, FLOW_DEVICE, FLOW_TOKEN_FILE };

struct oauth_args {
	const char *user, *provider, *login, *imap, *smtp, *ca, *ppfile, *token_file;
	enum flow flow;
	bool consent, check;
	long long id; /* signin: the account */
};

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
	const struct hub_oauth_provider *cfg = svc_oauth_configured(hub, a.provider);
	if (cfg == NULL) {
		cli_error("OAuth provider '%s' is not configured: set oauth.%s.client_id, "
		          "oauth.%s.token_url (and authorization_url, device_url, revocation_url, "
		          "scopes) in %s/mailkeep.conf (docs/oauth.md)",
		          a.provider, a.provider, a.provider, hub_data_dir(hub));
		return EXIT_FAIL;
	}
	struct oauth_provider p = svc_oauth_provider_from(cfg);
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
	char id[SVC_DISCLOSURE_ID_SIZE];
	buf_init(&text, SVC_DISCLOSURE_MAX);
	if (svc_account_disclosure_oauth(hub, &u, a.imap, a.smtp, a.login, &p, &text, id) < 0) {
		buf_free(&text);
		cli_error("the disclosure does not fit; use shorter settings");
		return EXIT_FAIL;
	}
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
	char error[SVC_ERROR_SIZE];
	struct svc_account_oauth_new add = {.imap = a.imap,
	                                    .smtp = a.smtp,
	                                    .login = a.login,
	                                    .ca = a.ca,
	                                    .provider = &p,
	                                    .disclosure_id = id,
	                                    .tool = tool,
	                                    .flow = a.flow == FLOW_LOOPBACK ? "loopback"
	                                            : a.flow == FLOW_DEVICE ? "device"
	                                                                    : "token-file",
	                                    .check = a.check};
	if (svc_account_add_oauth(hub, &u, kek, &add, &t, &account_id, error, sizeof(error)) < 0) {
		cli_error("%s", error);
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
	if (!svc_oauth_signin_matches(cfg, acct)) {
		cli_error("oauth.%s in mailkeep.conf is missing or no longer what account %lld "
		          "signed in with (token_url, client_id, scopes): remove the account and "
		          "add it again",
		          acct->oauth_provider, a.id);
		goto out;
	}
	struct oauth_provider p = svc_oauth_provider_from(cfg);
	a.login = acct->login;
	a.imap = acct->imap_url;
	a.smtp = acct->smtp_url;
	a.ca = acct->ca_file;
	if (a.ppfile != NULL && (passphrase = cli_read_secret(a.ppfile)) == NULL)
		goto out;
	if (hub_user_kek(hub, &u, passphrase, &kek, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	if (sign_in(&p, &a, &t) < 0)
		goto out;
	char error[SVC_ERROR_SIZE];
	if (svc_account_signin_oauth(hub, &u, acct, kek, &p, &t, a.check, error, sizeof(error)) <
	    0) {
		cli_error("%s", error);
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
