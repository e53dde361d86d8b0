/* mailkeep account add --email ADDR: the settings from a provider profile
 * or discovery (src/setup), shown with where each came from before the
 * disclosure and consent of account add; and account import, which proposes
 * accounts from a Thunderbird profile or an mbsync configuration (settings
 * only, never passwords) and adds the one the user names through account
 * add. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cmd-account-setup.h"
#include "service/svc-account.h"
#include "setup/setup.h"

/* Test builds: discovery pointed at 127.0.0.1 (tests/setup_test.py), never
 * the internet. */
static void setup_test_overrides(struct setup_options *opt, char *addr, size_t addr_size)
{
#ifdef MK_TEST_HOOKS
	opt->autoconfig_base = getenv("MK_TEST_SETUP_AUTOCONFIG");
	opt->dns_server = getenv("MK_TEST_SETUP_DNS");
	const char *guess = getenv("MK_TEST_SETUP_GUESS"); /* ADDR:IMAPPORT:SMTPPORT */
	if (guess != NULL) {
		const char *c1 = strchr(guess, ':');
		const char *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
		if (c2 != NULL && (size_t)(c1 - guess) < addr_size) {
			memcpy(addr, guess, (size_t)(c1 - guess));
			addr[c1 - guess] = '\0';
			opt->guess_address = addr;
			opt->guess_imap_port = (unsigned)strtoul(c1 + 1, NULL, 10);
			opt->guess_smtp_port = (unsigned)strtoul(c2 + 1, NULL, 10);
		}
	}
	if (getenv("MK_TEST_SETUP_TIMEOUT_MS") != NULL)
		opt->timeout_ms = (int)strtol(getenv("MK_TEST_SETUP_TIMEOUT_MS"), NULL, 10);
#else
	(void)opt;
	(void)addr;
	(void)addr_size;
#endif
}

static void print_quirks(const struct setup_profile *p)
{
	const struct setup_quirks *q = &p->quirks;
	printf("  provider notes (profile '%s'):\n", p->id);
	printf("    - %s\n",
	       q->server_files_sent
	           ? "the server files its own copy of sent mail (the hub does not "
	             "add one)"
	           : "the server does not file sent mail: the hub files a copy in Sent");
	printf("    - at most %u connections at a time\n", q->max_connections);
	if (q->daily_download_bytes > 0)
		printf(
		    "    - about %.1f GB a day of IMAP download: a first sync of a large account "
		    "is paced over days\n",
		    (double)q->daily_download_bytes / 1e9);
	if (q->special_folders[0] != '\0')
		printf("    - special folders: %s\n", q->special_folders);
	printf("    - %s\n", q->notes);
}

/* The exact command that adds the account with OAuth (cmd-account-oauth.c),
 * and the hub configuration it needs (oauth.<provider>.* in mailkeep.conf),
 * with the endpoints and scopes from the profile. */
static void print_oauth_command(const char *user, const struct setup_profile *p, const char *imap,
                                const char *smtp, const char *login)
{
	const struct setup_oauth *o = &p->oauth;
	printf("  To sign in with OAuth, the hub's mailkeep.conf needs the app registered with "
	       "%s (docs/oauth.md):\n",
	       p->name);
	printf("    oauth.%s.client_id = (the app's client id)\n", o->provider);
	printf("    oauth.%s.authorization_url = %s\n", o->provider, o->authorization_endpoint);
	printf("    oauth.%s.token_url = %s\n", o->provider, o->token_endpoint);
	if (o->device_endpoint[0] != '\0')
		printf("    oauth.%s.device_url = %s\n", o->provider, o->device_endpoint);
	if (o->revocation_endpoint[0] != '\0')
		printf("    oauth.%s.revocation_url = %s\n", o->provider, o->revocation_endpoint);
	printf("    oauth.%s.scopes = %s\n", o->provider, o->scopes);
	printf("  and then:\n");
	printf("    mailkeep account add --user %s --oauth %s --login %s --imap %s%s%s\n", user,
	       o->provider, login, imap, smtp != NULL ? " --smtp " : "", smtp != NULL ? smtp : "");
}

int account_setup_resolve(const char *user, const char *email, const char *imap, const char *smtp,
                          const char *login, bool password_given, struct account_setup *r)
{
	const char *err = NULL, *domain;
	memset(r, 0, sizeof(*r));
	if (!setup_email_split(email, &domain)) {
		cli_error("bad --email '%s': want local@domain", email);
		return EXIT_USAGE;
	}
	struct setup_profiles *profiles = NULL;
	if (setup_profiles_builtin(&profiles, &err) < 0) {
		cli_error("built-in provider profiles: %s", err);
		return EXIT_FAIL;
	}
	struct setup_options opt = {0};
	char guess_addr[64];
	setup_test_overrides(&opt, guess_addr, sizeof(guess_addr));
	struct setup_found *f = calloc(1, sizeof(*f));
	if (f == NULL) {
		setup_profiles_free(&profiles);
		cli_error("out of memory");
		return EXIT_FAIL;
	}
	int ret = EXIT_FAIL;
	bool found = true;
	if (imap == NULL || login == NULL || smtp == NULL) {
		printf("Looking up the settings of %s...\n", email);
		fflush(stdout);
		found = setup_discover(profiles, email, &opt, f, &err) == 0;
	} else
		snprintf(f->trail, sizeof(f->trail),
		         "nothing looked up: every setting was given\n");
	char found_imap[300] = "", found_smtp[300] = "";
	if (f->has_imap && setup_imap_url(&f->imap, found_imap, sizeof(found_imap)) < 0) {
		found_imap[0] = '\0';
		snprintf(f->imap_source + strlen(f->imap_source),
		         sizeof(f->imap_source) - strlen(f->imap_source),
		         " (clear text only: not used)");
	}
	if (f->has_smtp && setup_smtp_url(&f->smtp, found_smtp, sizeof(found_smtp)) < 0)
		found_smtp[0] = '\0';

	printf("\nSettings for %s%s%s\n", email, f->provider_name[0] != '\0' ? ": " : "",
	       f->provider_name);
	printf("  How they were found:\n");
	for (const char *line = f->trail; *line != '\0';) {
		const char *nl = strchr(line, '\n');
		int n = nl != NULL ? (int)(nl - line) : (int)strlen(line);
		printf("    %.*s\n", n, line);
		line += n + (nl != NULL ? 1 : 0);
	}
	/* The flags given win over anything found. */
	const char *use_imap = imap != NULL ? imap : found_imap[0] != '\0' ? found_imap : NULL;
	const char *use_smtp = smtp != NULL ? smtp : found_smtp[0] != '\0' ? found_smtp : NULL;
	const char *use_login = login != NULL                             ? login
	                        : f->has_imap && f->imap.login[0] != '\0' ? f->imap.login
	                                                                  : email;
	const char *imap_src = imap != NULL ? "given with --imap" : f->imap_source;
	const char *smtp_src = smtp != NULL ? "given with --smtp" : f->smtp_source;
	const char *login_src = login != NULL ? "given with --login" : f->imap_source;
	printf("  IMAP:  %s\n         from %s\n", use_imap != NULL ? use_imap : "(none found)",
	       use_imap != NULL ? imap_src : "-");
	printf("  SMTP:  %s\n         from %s\n",
	       use_smtp != NULL ? use_smtp
	                        : "(none found: the "
	                          "account will not send)",
	       use_smtp != NULL ? smtp_src : "-");
	printf("  login: %s\n         from %s\n", use_login,
	       login != NULL ? login_src
	       : f->has_imap ? login_src
	                     : "the address");
	if (f->has_imap || f->profile != NULL) {
		char auth[64];
		setup_auth_names(f->auth, auth, sizeof(auth));
		printf("  sign-in: %s\n", auth);
	}
	if (f->profile != NULL)
		print_quirks(f->profile);
	printf("  Any of these can be changed with --imap, --smtp and --login.\n\n");
	if (!found && use_imap == NULL) {
		cli_error("%s: nothing was stored", err);
		goto out;
	}
	if (use_imap == NULL) {
		cli_error("the IMAP server found takes passwords only in clear text; give --imap: "
		          "nothing was stored");
		goto out;
	}
	bool oauth = f->profile != NULL && (f->profile->auth & SETUP_AUTH_OAUTH2) != 0;
	bool takes_password =
	    f->profile == NULL ||
	    (f->profile->auth & (SETUP_AUTH_PASSWORD | SETUP_AUTH_APP_PASSWORD)) != 0;
	if (oauth)
		print_oauth_command(user, f->profile, use_imap, use_smtp, use_login);
	if (!takes_password) {
		cli_error("%s takes only OAuth sign-in: run the command above; nothing was stored",
		          f->profile->name);
		ret = EXIT_USAGE;
		goto out;
	}
	if (f->profile != NULL && !(f->profile->auth & SETUP_AUTH_PASSWORD))
		printf("  %s takes an app password here, not the account's own password.\n\n",
		       f->profile->name);
	if (!password_given) {
		cli_error("give the password with --password-file%s; nothing was stored",
		          oauth ? " or sign in with OAuth as shown above" : "");
		ret = EXIT_USAGE;
		goto out;
	}
	snprintf(r->imap, sizeof(r->imap), "%s", use_imap);
	r->has_smtp = use_smtp != NULL;
	if (use_smtp != NULL)
		snprintf(r->smtp, sizeof(r->smtp), "%s", use_smtp);
	snprintf(r->login, sizeof(r->login), "%s", use_login);
	int w = snprintf(r->sources, sizeof(r->sources),
	                 "- The IMAP settings came from %s.\n%s%s%s- The login came from %s.\n",
	                 imap_src, use_smtp != NULL ? "- The SMTP settings came from " : "",
	                 use_smtp != NULL ? smtp_src : "", use_smtp != NULL ? ".\n" : "",
	                 login != NULL ? login_src
	                 : f->has_imap ? login_src
	                               : "the address");
	if (w < 0 || (size_t)w >= sizeof(r->sources) || strlen(use_imap) >= sizeof(r->imap) ||
	    strlen(use_login) >= sizeof(r->login)) {
		cli_error("settings too long");
		goto out;
	}
	ret = EXIT_OK;
out:
	free(f);
	setup_profiles_free(&profiles);
	fflush(stdout);
	return ret;
}

/* ---- account import ---- */

static void import_usage(void)
{
	cli_error("account import needs --user NAME and --thunderbird PROFILE_DIR or --mbsyncrc "
	          "FILE; add one with --add N --password-file F [--passphrase-file P] "
	          "[--consent] [--no-check]");
}

/* Read a whole small file (at most SETUP_IMPORT_FILE_MAX bytes); NULL after
 * printing why. */
static char *read_small_file(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cli_error("cannot read %s: %s", path, fd < 0 ? strerror(errno) : "not a file");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (st.st_size > SETUP_IMPORT_FILE_MAX) {
		cli_error("%s is larger than %d bytes: not read", path, SETUP_IMPORT_FILE_MAX);
		close(fd);
		return NULL;
	}
	char *data = malloc((size_t)st.st_size + 1);
	size_t len = 0;
	while (data != NULL && len < (size_t)st.st_size) {
		ssize_t n = read(fd, data + len, (size_t)st.st_size - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (data == NULL) {
		cli_error("out of memory");
		return NULL;
	}
	data[len] = '\0';
	*len_r = len;
	return data;
}

int account_import(struct hub *hub, int argc, char **argv)
{
	const char *user = NULL, *tb = NULL, *mbsync = NULL, *add = NULL;
	const char *pwfile = NULL, *ppfile = NULL;
	bool consent = false, no_check = false;
	for (int i = 1; i < argc; i++) {
		const char *const names[] = {"--user", "--thunderbird",   "--mbsyncrc",
		                             "--add",  "--password-file", "--passphrase-file"};
		const char **vars[] = {&user, &tb, &mbsync, &add, &pwfile, &ppfile};
		size_t k = 0;
		while (k < 6 && strcmp(argv[i], names[k]) != 0)
			k++;
		if (k < 6 && i + 1 < argc)
			*vars[k] = argv[++i];
		else if (strcmp(argv[i], "--consent") == 0)
			consent = true;
		else if (strcmp(argv[i], "--no-check") == 0)
			no_check = true;
		else {
			cli_error("unexpected argument '%s'", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (user == NULL || (tb == NULL) == (mbsync == NULL)) {
		import_usage();
		return EXIT_USAGE;
	}
	char path[PATH_MAX];
	int w = tb != NULL ? snprintf(path, sizeof(path), "%s/prefs.js", tb)
	                   : snprintf(path, sizeof(path), "%s", mbsync);
	if (w < 0 || (size_t)w >= sizeof(path)) {
		cli_error("path too long");
		return EXIT_USAGE;
	}
	size_t len;
	char *text = read_small_file(path, &len);
	if (text == NULL)
		return EXIT_FAIL;
	struct setup_import *im = calloc(SETUP_IMPORT_MAX, sizeof(*im));
	const char *err = "out of memory";
	int n = im == NULL   ? -1
	        : tb != NULL ? setup_import_thunderbird(text, len, im, SETUP_IMPORT_MAX, &err)
	                     : setup_import_mbsync(text, len, im, SETUP_IMPORT_MAX, &err);
	free(text);
	if (n < 0) {
		cli_error("%s: %s", path, err);
		free(im);
		return EXIT_FAIL;
	}
	printf("Proposed accounts from %s (settings only: passwords are never read or kept)\n",
	       path);
	if (n == 0)
		printf("  none: no IMAP account found\n");
	for (int i = 0; i < n; i++) {
		char iu[300] = "", su[300] = "";
		bool imap_ok = setup_imap_url(&im[i].imap, iu, sizeof(iu)) == 0;
		bool smtp_ok = im[i].has_smtp && setup_smtp_url(&im[i].smtp, su, sizeof(su)) == 0;
		printf("  %d. %s (%s)\n", i + 1, im[i].name, im[i].note);
		printf("     --imap %s --login %s%s%s%s%s\n",
		       imap_ok ? iu : "(clear text only: cannot be added as it is)",
		       im[i].imap.login[0] != '\0' ? im[i].imap.login : "(none given)",
		       smtp_ok ? " --smtp " : "", smtp_ok ? su : "",
		       im[i].ca_file[0] != '\0' ? " --ca-file " : "", im[i].ca_file);
		if (im[i].email[0] != '\0')
			printf("     address %s\n", im[i].email);
		if (smtp_ok && im[i].smtp.login[0] != '\0' &&
		    strcmp(im[i].smtp.login, im[i].imap.login) != 0)
			printf("     SMTP login %s differs: mailkeep logs in to both servers with "
			       "--login\n",
			       im[i].smtp.login);
		if (im[i].has_smtp && !smtp_ok)
			printf("     SMTP %s:%u is clear text only: left out\n", im[i].smtp.host,
			       im[i].smtp.port);
	}
	fflush(stdout);
	int ret = EXIT_OK;
	if (add != NULL) {
		char *end;
		long k = strtol(add, &end, 10);
		char iu[300], su[300];
		if (*end != '\0' || k < 1 || k > n) {
			cli_error("--add %s: not one of the proposed accounts (1-%d)", add, n);
			ret = EXIT_USAGE;
		} else if (setup_imap_url(&im[k - 1].imap, iu, sizeof(iu)) < 0 ||
		           im[k - 1].imap.login[0] == '\0') {
			cli_error(
			    "account %ld has no usable IMAP settings (clear text or no login): add "
			    "it with account add and the right settings",
			    k);
			ret = EXIT_FAIL;
		} else if (pwfile == NULL) {
			cli_error("--add needs --password-file (the password is never imported)");
			ret = EXIT_USAGE;
		} else {
			const struct setup_import *a = &im[k - 1];
			char *av[20];
			int ac = 0;
			av[ac++] = "add";
			av[ac++] = "--user";
			av[ac++] = (char *)user;
			av[ac++] = "--imap";
			av[ac++] = iu;
			if (a->has_smtp && setup_smtp_url(&a->smtp, su, sizeof(su)) == 0) {
				av[ac++] = "--smtp";
				av[ac++] = su;
			}
			av[ac++] = "--login";
			av[ac++] = (char *)a->imap.login;
			if (a->ca_file[0] != '\0') {
				av[ac++] = "--ca-file";
				av[ac++] = (char *)a->ca_file;
			}
			av[ac++] = "--password-file";
			av[ac++] = (char *)pwfile;
			if (ppfile != NULL) {
				av[ac++] = "--passphrase-file";
				av[ac++] = (char *)ppfile;
			}
			if (consent)
				av[ac++] = "--consent";
			if (no_check)
				av[ac++] = "--no-check";
			av[ac] = NULL;
			printf("\nAdding proposed account %ld:\n\n", k);
			fflush(stdout);
			char sources[PATH_MAX + 512];
			snprintf(
			    sources, sizeof(sources),
			    "- Imported from %s (%s): the settings only; the password was given "
			    "with --password-file.\n",
			    path, a->note); /* cut short, it is still shown */
			ret = cmd_account_add(hub, ac, av, sources);
		}
	}
	free(im);
	return ret;
}
