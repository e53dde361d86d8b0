/* mailkeep account add|list|remove */
#include <getopt.h>
#include <limits.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account-provider.h"
#include "cli.h"
#include "cmd-account-setup.h"
#include "service/svc-account.h"
#include "hub/hub.h"
#include "imap/imap-url.h"
#include "smtp/smtp.h"
#include "lib/buf.h"
#include "jmap/jmap-session.h"
#include "store/store.h"

static void account_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: mailkeep --data DIR account add --user NAME --imap URL [--smtp URL]\n"
	    "                --login ADDR --password-file F [--ca-file CA.pem]\n"
	    "                [--passphrase-file P] [--consent] [--no-check]\n"
	    "                [--server-files-sent yes|no|auto] [--download-budget N|auto]\n"
	    "       mailkeep --data DIR account add --user NAME --email ADDR\n"
	    "                [--imap URL] [--smtp URL] [--login ADDR] --password-file F ...\n"
	    "       mailkeep --data DIR account import --user NAME\n"
	    "                (--thunderbird PROFILE_DIR | --mbsyncrc FILE)\n"
	    "                [--add N --password-file F [--passphrase-file P] [--consent]]\n"
	    "       mailkeep --data DIR account list --user NAME\n"
	    "       mailkeep --data DIR account password --user NAME ID --password-file F\n"
	    "                [--passphrase-file P] [--no-check]\n"
	    "       mailkeep --data DIR account set --user NAME ID [--imap URL]\n"
	    "                [--smtp URL|none] [--login ADDR] [--ca-file CA.pem|none]\n"
	    "                --password-file F [--passphrase-file P] [--no-check]\n"
	    "       mailkeep --data DIR account set --user NAME ID\n"
	    "                [--server-files-sent yes|no|auto] [--download-budget N|auto]\n"
	    "       mailkeep --data DIR account remove --user NAME ID --all-devices\n"
	    "       mailkeep --data DIR account primary --user NAME ID\n"
	    "       mailkeep --data DIR account add --user NAME --oauth PROVIDER --login ADDR\n"
	    "                --imap URL [--smtp URL] [--ca-file CA.pem] [--consent] [--no-check]\n"
	    "                [--flow loopback|device|token-file F] [--passphrase-file P]\n"
	    "       mailkeep --data DIR account signin --user NAME ID\n"
	    "                [--flow loopback|device|token-file F] [--passphrase-file P]\n\n"
	    "add     shows exactly what will be stored where and what the hub will do as the\n"
	    "        user, and goes on only on consent: typed 'yes' on a terminal, or\n"
	    "        --consent to accept the shown text from a script. Declining stores\n"
	    "        nothing. The password is stored only sealed. --imap is imaps://host[:port]\n"
	    "        or imap://host[:port] (STARTTLS); --smtp submissions://host[:port] or\n"
	    "        smtp://host[:port] (STARTTLS). Zero-access users give their passphrase\n"
	    "        with --passphrase-file. Before anything is stored it connects and logs\n"
	    "        in to the IMAP server (and the SMTP server when given) with the\n"
	    "        password; --no-check skips that (for setting up offline). The same\n"
	    "        login on the same server (imap:// on 143 and imaps:// on 993 of one\n"
	    "        host are one server) is refused as a duplicate.\n"
	    "        With --email the servers come from the provider profiles built in, or\n"
	    "        else the domain's autoconfig, its DNS SRV records or a guess checked by\n"
	    "        connecting; each is shown with where it came from, and --imap, --smtp\n"
	    "        and --login override what was found. OAuth-only providers print the\n"
	    "        'account add --oauth' command to run instead.\n"
	    "import  lists the accounts a Thunderbird profile (prefs.js) or an mbsync\n"
	    "        configuration holds, settings only (passwords are never read), and\n"
	    "        with --add N adds proposed account N as account add does.\n"
	    "list    shows the user's accounts, who files their Sent copies, their daily\n"
	    "        download budget and how far the sync got (messages held of what the\n"
	    "        server's STATUS counts, bytes downloaded).\n"
	    "--server-files-sent  yes: the provider files what is sent into Sent itself\n"
	    "        (Gmail, Microsoft), so the outbox appends no copy; no: the outbox\n"
	    "        appends it; auto (default): yes for known providers' SMTP hosts and\n"
	    "        servers offering X-GM-EXT-1. Needs no password.\n"
	    "--download-budget  bytes a day the sync downloads at most (K, M, G suffixes;\n"
	    "        0: no limit; auto (default): 2.4 GB for Gmail, else no limit). A first\n"
	    "        sync of a large account stops cleanly when it is spent, newest mail\n"
	    "        first, and the next run after midnight UTC goes on. Needs no password.\n"
	    "password  replaces the stored password (the old sealed copy stops opening).\n"
	    "set     changes the account's server settings. The password is sealed for\n"
	    "        exactly the servers, login and CA it goes to, so it is entered again.\n"
	    "        Both log in with the new settings first, as add does (--no-check).\n"
	    "remove  with --all-devices deletes the account's sealed credentials, its key\n"
	    "        and every copy of its mail from this hub, and prints a receipt.\n"
	    "--oauth  signs in at PROVIDER (oauth.PROVIDER.* in mailkeep.conf) instead of a\n"
	    "        password: loopback prints an address to open in a browser on this machine,\n"
	    "        device prints a code to enter on any device, token-file reads the tokens\n"
	    "        a device obtained (JSON with refresh_token). docs/oauth.md.\n"
	    "signin  signs an OAuth account in again (after the provider refused the grant).\n"
	    "primary makes the account the one devices open first (the JMAP session's\n"
	    "        primaryAccounts); by default the first account added.\n");
}

/* Connect and log in with what was given, before anything is stored
 * (svc_account_check_login()). Prints what failed. Returns 0 when both
 * accepted the login. */
static int account_check_login(const char *imap, const char *smtp, const char *login,
                               const char *ca, const char *password)
{
	char error[SVC_ERROR_SIZE];
	if (svc_account_check_login(imap, smtp, login, ca, password, error, sizeof(error)) < 0) {
		cli_error("%s", error);
		return -1;
	}
	return 0;
}

/* sources: where the settings came from, for the disclosure (account
 * import), or NULL. */
static int account_add(struct hub *hub, int argc, char **argv, const char *sources)
{
	static const struct option opts[] = {
	    {"user", required_argument, NULL, 'u'},
	    {"imap", required_argument, NULL, 'i'},
	    {"smtp", required_argument, NULL, 's'},
	    {"login", required_argument, NULL, 'l'},
	    {"password-file", required_argument, NULL, 'p'},
	    {"passphrase-file", required_argument, NULL, 'P'},
	    {"ca-file", required_argument, NULL, 'c'},
	    {"consent", no_argument, NULL, 'y'},
	    {"no-check", no_argument, NULL, 'n'},
	    {"email", required_argument, NULL, 'e'},
	    {NULL, 0, NULL, 0},
	};
	for (int i = 1; i < argc; i++) /* OAuth accounts: cmd-account-oauth.c */
		if (strcmp(argv[i], "--oauth") == 0 || strncmp(argv[i], "--oauth=", 8) == 0)
			return cli_account_add_oauth(hub, argc, argv);
	const char *email = NULL;
	const char *user = NULL, *imap = NULL, *smtp = NULL, *login = NULL, *pwfile = NULL;
	const char *ppfile = NULL, *ca = NULL, *err;
	bool consent = false, check = true;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			user = optarg;
			break;
		case 'i':
			imap = optarg;
			break;
		case 's':
			smtp = optarg;
			break;
		case 'l':
			login = optarg;
			break;
		case 'p':
			pwfile = optarg;
			break;
		case 'P':
			ppfile = optarg;
			break;
		case 'c':
			ca = optarg;
			break;
		case 'y':
			consent = true;
			break;
		case 'n':
			check = false;
			break;
		case 'e':
			email = optarg;
			break;
		default:
			return EXIT_USAGE;
		}
	}
	/* --email: the settings not given come from a profile or discovery. */
	struct account_setup found = {0};
	if (email != NULL && user != NULL && optind == argc) {
		int r =
		    account_setup_resolve(user, email, imap, smtp, login, pwfile != NULL, &found);
		if (r != EXIT_OK)
			return r;
		imap = found.imap;
		smtp = found.has_smtp ? found.smtp : NULL;
		login = found.login;
	}
	char host[256], port[8];
	enum imap_security sec;
	if (user == NULL || imap == NULL || login == NULL || pwfile == NULL || optind != argc) {
		cli_error("account add needs --user, --imap, --login and --password-file");
		return EXIT_USAGE;
	}
	if (imap_url_parse(imap, host, sizeof(host), port, sizeof(port), &sec) < 0) {
		cli_error("bad --imap URL '%s': use imaps://host[:port] or imap://host[:port]",
		          imap);
		return EXIT_USAGE;
	}
	if (smtp != NULL && !smtp_url_valid(smtp)) {
		cli_error(
		    "bad --smtp URL '%s': use submissions://host[:port] or smtp://host[:port]",
		    smtp);
		return EXIT_USAGE;
	}
	if (login[0] == '\0' || strpbrk(login, "\r\n") != NULL || strlen(login) > 320) {
		cli_error("bad --login");
		return EXIT_USAGE;
	}
	if (ca != NULL && access(ca, R_OK) < 0) {
		cli_error("cannot read --ca-file %s", ca);
		return EXIT_USAGE;
	}
	char ca_abs[PATH_MAX];
	if (ca != NULL && realpath(ca, ca_abs) != NULL)
		ca = ca_abs;
	struct hub_user u;
	if (hub_user_get(hub, user, &u, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	if (u.zero_access && ppfile == NULL) {
		cli_error("%s is a zero-access user: give the passphrase with --passphrase-file",
		          user);
		return EXIT_USAGE;
	}
	int64_t dup_id = 0;
	char dup_login[321], dup_imap[300], error[SVC_ERROR_SIZE];
	int dup = svc_account_duplicate(hub, &u, imap, login, &dup_id, dup_login, sizeof(dup_login),
	                                dup_imap, sizeof(dup_imap), error, sizeof(error));
	if (dup < 0) {
		cli_error("%s", error);
		return EXIT_FAIL;
	}
	if (dup > 0) {
		cli_error("%s already has account %lld for %s on %s: not added again (change its "
		          "password with 'mailkeep account password --user %s %lld')",
		          user, (long long)dup_id, dup_login, dup_imap, user, (long long)dup_id);
		return EXIT_FAIL;
	}

	struct buf text;
	buf_init(&text, SVC_DISCLOSURE_MAX);
	char id[SVC_DISCLOSURE_ID_SIZE];
	if (svc_account_disclosure(hub, &u, imap, smtp, login,
	                           email != NULL ? found.sources : sources, &text, id) < 0) {
		buf_free(&text);
		cli_error("the disclosure does not fit in %d bytes (settings or their sources too "
		          "long): nothing was stored",
		          SVC_DISCLOSURE_MAX);
		return EXIT_FAIL;
	}
	fputs(buf_str(&text), stdout);
	printf("\nDisclosure id: %s\n", id);
	fflush(stdout);
	const char *tool = "mailkeep-cli --consent";
	if (!consent) {
		tool = "mailkeep-cli interactive";
		consent = cli_confirm("Do you consent to this?");
	}
	buf_free(&text);
	if (!consent) {
		cli_error("no consent given: nothing was stored (run on a terminal and answer "
		          "yes, or pass --consent to accept the text above)");
		return EXIT_FAIL;
	}

	char *password = cli_read_secret(pwfile);
	char *passphrase = NULL;
	struct vault_kek *kek = NULL;
	int ret = EXIT_FAIL;
	int64_t account_id;
	if (password == NULL || (ppfile != NULL && (passphrase = cli_read_secret(ppfile)) == NULL))
		goto out;
	if (hub_user_kek(hub, &u, passphrase, &kek, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	struct svc_account_new add = {.imap = imap,
	                              .smtp = smtp,
	                              .login = login,
	                              .ca = ca,
	                              .password = password,
	                              .disclosure_id = id,
	                              .tool = tool,
	                              .check = check,
	                              .signin_via = "cli"};
	if (svc_account_add(hub, &u, kek, &add, &account_id, error, sizeof(error)) < 0) {
		cli_error("%s", error);
		goto out;
	}
	printf("added account %lld for %s (consent recorded%s)\n", (long long)account_id, user,
	       check ? (smtp != NULL ? "; IMAP and SMTP login checked" : "; IMAP login checked")
	             : "; login not checked");
	ret = EXIT_OK;
out:
	vault_kek_free(&kek);
	cli_secret_free(&password);
	cli_secret_free(&passphrase);
	return ret;
}

static int account_list(struct cli *cli, struct hub *hub, int argc, char **argv)
{
	const char *err;
	if (argc != 3 || strcmp(argv[1], "--user") != 0) {
		cli_error("account list needs --user NAME");
		return EXIT_USAGE;
	}
	struct hub_user u;
	struct hub_account *a;
	size_t n;
	if (hub_user_get(hub, argv[2], &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &a, &n, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	printf("%-4s %-32s %-32s %-28s %s\n", "ID", "IMAP", "SMTP", "LOGIN", "ADDED (UTC)");
	for (size_t i = 0; i < n; i++) {
		char when[32];
		time_t t = (time_t)a[i].created;
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", gmtime(&t));
		printf("%-4lld %-32s %-32s %-28s %s\n", (long long)a[i].id, a[i].imap_url,
		       a[i].smtp_url != NULL ? a[i].smtp_url : "-", a[i].login, when);
		if (a[i].needs_signin_since > 0) {
			t = (time_t)a[i].needs_signin_since;
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", gmtime(&t));
			printf("     needs sign-in since %s UTC (sync and send are paused); run: "
			       "mailkeep account signin --user %s %lld\n",
			       when, argv[2], (long long)a[i].id);
		}
		account_provider_show(cli, argv[2], a[i].id);
	}
	hub_accounts_free(&a, n);
	return EXIT_OK;
}

/* The user and their account ID; the user's account list goes to *a_r and
 * *n_r (the caller frees it with hub_accounts_free). Prints what is wrong
 * and returns NULL if either is not there. */
static const struct hub_account *account_find(struct hub *hub, const char *user, long long id,
                                              struct hub_user *u_r, struct hub_account **a_r,
                                              size_t *n_r)
{
	const char *err;
	if (hub_user_get(hub, user, u_r, &err) < 0 ||
	    hub_account_list(hub, u_r->id, a_r, n_r, &err) < 0) {
		cli_error("%s", err);
		return NULL;
	}
	for (size_t i = 0; i < *n_r; i++)
		if ((*a_r)[i].id == id)
			return &(*a_r)[i];
	cli_error("%s has no account %lld", user, id);
	return NULL;
}

/* Whether the account's settings in hub.db are the ones its stored password
 * was sealed for: the password opens under them (a use, audited with purpose
 * "test"; the reason it does not is printed). Re-entering a password takes
 * settings from the row only then: a row edited behind the hub's back would
 * otherwise get the new password sent to, and sealed for, the editor's
 * server. */
static bool account_settings_trusted(struct hub *hub, const struct hub_user *u,
                                     const struct hub_account *acct, const struct vault_kek *kek)
{
	char *pw = NULL;
	char error[SVC_ERROR_SIZE];
	int r = svc_account_open_secret(hub, u, acct, kek, "test", "imap-password", &pw, error,
	                                sizeof(error));
	cli_secret_free(&pw);
	if (r < 0)
		cli_error("%s", error);
	if (r < 0)
		cli_error("so the settings stored for account %lld are not used: give every one "
		          "with 'mailkeep account set --user %s %lld --imap URL --smtp URL|none "
		          "--login L --ca-file F|none --password-file F'",
		          (long long)acct->id, u->name, (long long)acct->id);
	return r == 0;
}

/* account set, and account password (password_only: the same without
 * settings to change). Both are audited as account.changed. */
static int account_set(struct hub *hub, int argc, char **argv, bool password_only)
{
	const char *verb = password_only ? "password" : "set";
	const char *user = NULL, *id_text = NULL, *pwfile = NULL, *ppfile = NULL, *err;
	const char *imap = NULL, *smtp = NULL, *login = NULL, *ca = NULL;
	bool check = true;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--no-check") == 0) {
			check = false;
			continue;
		}
		const char *const names[] = {"--user",   "--password-file", "--passphrase-file",
		                             "--imap",   "--smtp",          "--login",
		                             "--ca-file"};
		const char **vars[] = {&user, &pwfile, &ppfile, &imap, &smtp, &login, &ca};
		size_t k = 0, known = password_only ? 3 : 7;
		while (k < known && strcmp(argv[i], names[k]) != 0)
			k++;
		if (k < known && i + 1 < argc) {
			*vars[k] = argv[++i];
		} else if (id_text == NULL && argv[i][0] != '-') {
			id_text = argv[i];
		} else {
			cli_error("unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	char *end = NULL;
	long long id = id_text != NULL ? strtoll(id_text, &end, 10) : 0;
	if (user == NULL || pwfile == NULL || id <= 0 || *end != '\0') {
		cli_error("account %s needs --user NAME, the account ID and --password-file", verb);
		return EXIT_USAGE;
	}
	char host[256], port[8], ca_abs[PATH_MAX];
	enum imap_security sec;
	if (imap != NULL &&
	    imap_url_parse(imap, host, sizeof(host), port, sizeof(port), &sec) < 0) {
		cli_error("bad --imap URL '%s': use imaps://host[:port] or imap://host[:port]",
		          imap);
		return EXIT_USAGE;
	}
	if (smtp != NULL && strcmp(smtp, "none") != 0 && !smtp_url_valid(smtp)) {
		cli_error(
		    "bad --smtp URL '%s': use submissions://host[:port] or smtp://host[:port]",
		    smtp);
		return EXIT_USAGE;
	}
	if (login != NULL &&
	    (login[0] == '\0' || strpbrk(login, "\r\n") != NULL || strlen(login) > 320)) {
		cli_error("bad --login");
		return EXIT_USAGE;
	}
	if (ca != NULL && strcmp(ca, "none") != 0) {
		if (realpath(ca, ca_abs) == NULL || access(ca_abs, R_OK) < 0) {
			cli_error("cannot read --ca-file %s", ca);
			return EXIT_USAGE;
		}
		ca = ca_abs;
	}
	struct hub_user u;
	struct hub_account *a = NULL;
	size_t n = 0;
	struct vault_kek *kek = NULL;
	char *password = NULL, *passphrase = NULL;
	int ret = EXIT_FAIL;
	const struct hub_account *acct = account_find(hub, user, id, &u, &a, &n);
	if (acct == NULL)
		goto out;
	if ((password = cli_read_secret(pwfile)) == NULL ||
	    (ppfile != NULL && (passphrase = cli_read_secret(ppfile)) == NULL))
		goto out;
	if (hub_user_kek(hub, &u, passphrase, &kek, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	/* Settings not given come from the row, only if the stored password
	 * vouches for it. */
	if ((imap == NULL || smtp == NULL || login == NULL || ca == NULL) &&
	    !account_settings_trusted(hub, &u, acct, kek))
		goto out;
	imap = imap != NULL ? imap : acct->imap_url;
	login = login != NULL ? login : acct->login;
	smtp = smtp == NULL ? acct->smtp_url : strcmp(smtp, "none") == 0 ? NULL : smtp;
	ca = ca == NULL ? acct->ca_file : strcmp(ca, "none") == 0 ? NULL : ca;
	struct audit_detail d[] = {{"imap", imap},
	                           {"smtp", smtp != NULL ? smtp : "none"},
	                           {"login", login},
	                           {"ca", ca != NULL ? ca : "none"}};
	if (check && account_check_login(imap, smtp, login, ca, password) < 0)
		goto out;
	/* The change is recorded before it is made, as every audited action. */
	if (hub_audit(hub, &u, AUDIT_ACCOUNT_CHANGED, id, d, 4, &err) < 0 ||
	    hub_account_update(hub, &u, acct, kek, imap, smtp, login, ca, password, &err) < 0) {
		cli_error("%s", err);
		goto out;
	}
	if (password_only)
		printf("replaced the stored password of account %lld\n", id);
	else
		printf("account %lld of %s: IMAP %s, SMTP %s, login %s, CA %s; password stored for "
		       "these settings\n",
		       id, user, imap, smtp != NULL ? smtp : "none", login,
		       ca != NULL ? ca : "system");
	ret = EXIT_OK;
out:
	vault_kek_free(&kek);
	cli_secret_free(&password);
	cli_secret_free(&passphrase);
	hub_accounts_free(&a, n);
	return ret;
}

static int account_remove(struct hub *hub, int argc, char **argv)
{
	const char *user = NULL, *id_text = NULL;
	bool all_devices = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(argv[i], "--all-devices") == 0)
			all_devices = true;
		else if (id_text == NULL && argv[i][0] != '-')
			id_text = argv[i];
		else {
			cli_error("unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (user == NULL || id_text == NULL) {
		cli_error("account remove needs --user NAME and the account ID");
		return EXIT_USAGE;
	}
	if (!all_devices) {
		cli_error("removal deletes the account's mail from the hub and so from every "
		          "device; say so with --all-devices");
		return EXIT_USAGE;
	}
	char *end;
	long long id = strtoll(id_text, &end, 10);
	if (*end != '\0' || id <= 0) {
		cli_error("bad account ID '%s'", id_text);
		return EXIT_USAGE;
	}
	struct svc_account_removal r;
	svc_account_remove(hub, user, id, &r);
	switch (r.outcome) {
	case SVC_REMOVAL_DONE:
		printf("%s\n", r.receipt);
		return EXIT_OK;
	case SVC_REMOVAL_ALREADY:
		printf("account %lld of %s was removed already:\n%s\n", id, user, r.receipt);
		return EXIT_OK;
	case SVC_REMOVAL_NO_ACCOUNT:
		cli_error("%s has no account %lld (see 'mailkeep account list --user %s')", user,
		          id, user);
		return EXIT_FAIL;
	case SVC_REMOVAL_FAILED:
		break;
	}
	cli_error("%s%s", r.error, r.finish_again ? " (run the removal again to finish it)" : "");
	return EXIT_FAIL;
}

/* account primary --user U ID: the JMAP primary account of the user's
 * devices (jmap-session.h). */
static int account_primary(struct cli *cli, struct hub *hub, int argc, char **argv)
{
	const char *user = NULL, *id_text = NULL, *err;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (id_text == NULL && argv[i][0] != '-')
			id_text = argv[i];
		else {
			cli_error("unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	char *end = NULL;
	long long id = id_text != NULL ? strtoll(id_text, &end, 10) : 0;
	if (user == NULL || id_text == NULL || *end != '\0' || id <= 0) {
		cli_error("account primary needs --user NAME and an account ID");
		return EXIT_USAGE;
	}
	struct hub_user u;
	struct hub_account *a;
	size_t n;
	if (hub_user_get(hub, user, &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &a, &n, &err) < 0) {
		cli_error("%s", err);
		return EXIT_FAIL;
	}
	struct store *store = NULL;
	int r = EXIT_FAIL;
	if (cli_open_user_store(cli, user, true, &store) == 0) {
		if (jmap_session_set_primary(store, a, n, id, &err) < 0)
			cli_error("%s: %s (see 'mailkeep account list --user %s')", user, err,
			          user);
		else {
			printf("account %lld is now the primary account of %s\n", id, user);
			r = EXIT_OK;
		}
		store_close(&store);
	}
	hub_accounts_free(&a, n);
	return r;
}

/* add or set with provider settings: the hub part first (set: only when
 * more than the provider settings is given), then the store part. EXIT_*. */
static int account_with_provider(struct cli *cli, struct hub *hub, int argc, char **argv,
                                 const struct account_provider_opts *po)
{
	bool add = strcmp(argv[1], "add") == 0;
	const char *user = NULL, *id_text = NULL;
	bool more = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (argv[i][0] != '-' && id_text == NULL)
			id_text = argv[i];
		else
			more = true;
	}
	if (user == NULL) {
		cli_error("account %s needs --user NAME", argv[1]);
		return EXIT_USAGE;
	}
	int64_t id = 0;
	if (add) {
		int r = account_add(hub, argc - 1, argv + 1, NULL);
		if (r != EXIT_OK)
			return r;
		/* The account just added: the user's newest. */
		struct hub_user u;
		struct hub_account *a = NULL;
		size_t n = 0;
		const char *err;
		if (hub_user_get(hub, user, &u, &err) < 0 ||
		    hub_account_list(hub, u.id, &a, &n, &err) < 0) {
			cli_error("%s", err);
			return EXIT_FAIL;
		}
		for (size_t i = 0; i < n; i++)
			id = a[i].id > id ? a[i].id : id;
		hub_accounts_free(&a, n);
	} else {
		char *end = NULL;
		long long v = id_text != NULL ? strtoll(id_text, &end, 10) : 0;
		if (v <= 0 || *end != '\0') {
			cli_error("account set needs the account ID");
			return EXIT_USAGE;
		}
		if (more) {
			int r = account_set(hub, argc - 1, argv + 1, false);
			if (r != EXIT_OK)
				return r;
		}
		struct hub_user u;
		struct hub_account *a = NULL;
		size_t n = 0;
		if (account_find(hub, user, v, &u, &a, &n) == NULL) {
			hub_accounts_free(&a, n);
			return EXIT_FAIL;
		}
		hub_accounts_free(&a, n);
		id = v;
	}
	return account_provider_apply(cli, user, id, po);
}

int cmd_account(struct cli *cli, int argc, char **argv)
{
	if (argc < 2 || cli_is_help(argv[1])) {
		account_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	struct hub *hub;
	bool add = strcmp(argv[1], "add") == 0, password = strcmp(argv[1], "password") == 0;
	add = add || strcmp(argv[1], "import") == 0; /* import --add loads the master key */
	bool set = strcmp(argv[1], "set") == 0, signin = strcmp(argv[1], "signin") == 0;
	bool remove = strcmp(argv[1], "remove") == 0;
	/* remove: with the master key when it loads, so an OAuth account's
	 * token can be revoked at the provider; without it otherwise. */
	const char *dir = remove ? cli_data_dir(cli, true) : NULL;
	if (dir != NULL && hub_open(dir, true, &hub, &(const char *){NULL}) == 0) {
	} else if (cli_open_hub(cli, add || password || set || signin, &hub) < 0)
		return EXIT_FAIL;
	int r;
	/* Provider settings (account-provider.c) ride along with add and set;
	 * set with only them needs no password. */
	struct account_provider_opts po = {0};
	if ((add || set) && account_provider_take(&argc, argv, &po) < 0) {
		hub_close(&hub);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "import") == 0)
		r = account_import(hub, argc - 1, argv + 1);
	else if ((add || set) && po.any)
		r = account_with_provider(cli, hub, argc, argv, &po);
	else if (add)
		r = account_add(hub, argc - 1, argv + 1, NULL);
	else if (set)
		r = account_set(hub, argc - 1, argv + 1, false);
	else if (password)
		r = account_set(hub, argc - 1, argv + 1, true);
	else if (strcmp(argv[1], "list") == 0)
		r = account_list(cli, hub, argc - 1, argv + 1);
	else if (strcmp(argv[1], "remove") == 0)
		r = account_remove(hub, argc - 1, argv + 1);
	else if (strcmp(argv[1], "primary") == 0)
		r = account_primary(cli, hub, argc - 1, argv + 1);
	else if (signin)
		r = cli_account_signin(hub, argc - 1, argv + 1);
	else {
		cli_error("unknown 'account' command; see 'mailkeep account --help'");
		r = EXIT_USAGE;
	}
	hub_close(&hub);
	return r;
}

/* account add for account import (cmd-account-setup.c). */
int cmd_account_add(struct hub *hub, int argc, char **argv, const char *sources)
{
	return account_add(hub, argc, argv, sources);
}
