/* Unit tests of src/setup: every shipped provider profile parses and is
 * complete, lookups by domain and MX, the autoconfig parser (byte by byte
 * truncations, hostile documents), placeholders, URLs and the importers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "setup/setup.h"
#include "test.h"

static char *slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	char *data = malloc(1 << 20);
	CHECK(data != NULL);
	*len_r = fread(data, 1, (1 << 20) - 1, f);
	data[*len_r] = '\0';
	fclose(f);
	return data;
}

static void test_profiles(void)
{
	const char *error = NULL;
	struct setup_profiles *p = NULL;
	OK(setup_profiles_builtin(&p, &error));
	/* The file in the tree is the one built in. */
	size_t len;
	char *json = slurp("share/providers.json", &len);
	struct setup_profiles *q = NULL;
	OK(setup_profiles_parse(json, len, &q, &error));
	CHECK(setup_profiles_count(p) == setup_profiles_count(q));
	setup_profiles_free(&q);
	free(json);

	static const char *const want[] = {"gmail",      "outlook",  "microsoft365", "yahoo",
	                                   "icloud",     "fastmail", "gmx",          "webde",
	                                   "mailboxorg", "generic"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(setup_profile_by_id(p, want[i]) != NULL);
	for (size_t i = 0; i < setup_profiles_count(p); i++) {
		const struct setup_profile *pr = setup_profiles_get(p, i);
		char url[300];
		CHECK(pr->imap.host[0] != '\0' && pr->smtp.host[0] != '\0');
		CHECK(setup_imap_url(&pr->imap, url, sizeof(url)) == 0);
		CHECK(setup_smtp_url(&pr->smtp, url, sizeof(url)) == 0);
		CHECK(pr->auth != 0);
		CHECK(pr->quirks.max_connections > 0 && pr->quirks.notes[0] != '\0');
		if (pr->auth & SETUP_AUTH_OAUTH2)
			CHECK(pr->oauth.provider[0] != '\0' &&
			      pr->oauth.token_endpoint[0] != '\0' &&
			      pr->oauth.authorization_endpoint[0] != '\0' &&
			      pr->oauth.scopes[0] != '\0');
		else
			CHECK(pr->oauth.provider[0] == '\0');
		/* One oauth.<provider>.* configuration serves every profile naming
		 * that provider, so they must agree on endpoints and scopes. */
		for (size_t k = 0; k < i; k++) {
			const struct setup_profile *o = setup_profiles_get(p, k);
			if (pr->oauth.provider[0] == '\0' ||
			    strcmp(o->oauth.provider, pr->oauth.provider) != 0)
				continue;
			CHECK_STR(o->oauth.authorization_endpoint,
			          pr->oauth.authorization_endpoint);
			CHECK_STR(o->oauth.token_endpoint, pr->oauth.token_endpoint);
			CHECK_STR(o->oauth.device_endpoint, pr->oauth.device_endpoint);
			CHECK_STR(o->oauth.revocation_endpoint, pr->oauth.revocation_endpoint);
			CHECK_STR(o->oauth.scopes, pr->oauth.scopes);
		}
	}
	CHECK_STR(setup_profile_by_domain(p, "GMail.com")->id, "gmail");
	CHECK_STR(setup_profile_by_domain(p, "hotmail.com")->id, "outlook");
	CHECK_STR(setup_profile_by_domain(p, "web.de")->id, "webde");
	CHECK(setup_profile_by_domain(p, "example.org") == NULL);
	CHECK_STR(setup_profile_by_mx(p, "contoso-com.mail.protection.outlook.com.")->id,
	          "microsoft365");
	CHECK_STR(setup_profile_by_mx(p, "aspmx.l.google.com")->id, "gmail");
	CHECK(setup_profile_by_mx(p, "mail.protection.outlook.com") == NULL);
	CHECK(setup_profile_by_mx(p, "evilprotection.outlook.com") == NULL);
	const struct setup_profile *g = setup_profile_by_id(p, "gmail");
	CHECK(g->quirks.server_files_sent && g->quirks.max_connections == 15 &&
	      g->quirks.daily_download_bytes == 2500000000ULL);
	CHECK_STR(g->oauth.provider, "google");
	CHECK(strstr(g->quirks.special_folders, "all=[Gmail]/All Mail") != NULL);
	CHECK(setup_profile_by_id(p, "outlook")->auth == SETUP_AUTH_OAUTH2);
	char auth[64];
	setup_auth_names(setup_profile_by_id(p, "yahoo")->auth, auth, sizeof(auth));
	CHECK_STR(auth, "oauth2, app-password");
	setup_profiles_free(&p);
	CHECK(p == NULL);

	/* Incomplete profiles are refused, naming the gap. */
	static const char *const bad[] = {
	    "{\"format\":1,\"providers\":[{\"id\":\"x\",\"name\":\"X\",\"domains\":[\"x.org\"],"
	    "\"login\":\"%EMAILADDRESS%\",\"imap\":{\"host\":\"i\",\"port\":993,\"security\":"
	    "\"tls\"},\"smtp\":{\"host\":\"s\",\"port\":465,\"security\":\"plain\"},\"auth\":"
	    "[\"password\"],\"quirks\":{}}]}",
	    "{\"format\":1,\"providers\":[{\"id\":\"x\",\"name\":\"X\",\"domains\":[\"x.org\"],"
	    "\"login\":\"%EMAILADDRESS%\",\"imap\":{\"host\":\"i\",\"port\":993,\"security\":"
	    "\"tls\"},\"smtp\":{\"host\":\"s\",\"port\":465,\"security\":\"tls\"},\"auth\":"
	    "[\"oauth2\"],\"quirks\":{\"server_files_sent\":false,\"max_connections\":1,"
	    "\"daily_download_bytes\":0,\"special_folders\":{},\"notes\":\"n\"}}]}",
	    "{\"format\":2,\"providers\":[]}",
	    "not json",
	};
	const char *const gaps[] = {"smtp", "oauth", "format", "JSON"};
	for (size_t i = 0; i < 4; i++)
		REFUSED(setup_profiles_parse(bad[i], strlen(bad[i]), &p, &error), gaps[i]);
}

static void test_helpers(void)
{
	char out[128];
	const char *d;
	CHECK(setup_expand("%EMAILLOCALPART%/%EMAILDOMAIN%/%EMAILADDRESS%", "a.b@ex.org", out,
	                   sizeof(out)) == 0);
	CHECK_STR(out, "a.b/ex.org/a.b@ex.org");
	CHECK(setup_expand("%EMAILADDRESS%", "a@b.c", out, 5) < 0);
	CHECK(setup_email_split("alice@example.org", &d) && strcmp(d, "example.org") == 0);
	CHECK(!setup_email_split("alice", &d));
	CHECK(!setup_email_split("@example.org", &d));
	CHECK(!setup_email_split("a b@example.org", &d));
	CHECK(!setup_email_split("a@ex/../org", &d));
	CHECK(!setup_email_split("a@ex..org", &d));
	CHECK(!setup_email_split("a@ex.org\r\n", &d));
	struct setup_server s = {.host = "h.example", .port = 143, .security = SETUP_SEC_STARTTLS};
	CHECK(setup_imap_url(&s, out, sizeof(out)) == 0);
	CHECK_STR(out, "imap://h.example:143");
	s.security = SETUP_SEC_TLS;
	s.port = 465;
	CHECK(setup_smtp_url(&s, out, sizeof(out)) == 0);
	CHECK_STR(out, "submissions://h.example:465");
	s.security = SETUP_SEC_PLAIN;
	CHECK(setup_imap_url(&s, out, sizeof(out)) < 0);
}

static void test_autoconfig(void)
{
	const char *error = NULL;
	size_t len;
	char *xml = slurp("tests/data/setup/config-v1.1.xml", &len);
	struct setup_autoconfig ac;
	CHECK(setup_autoconfig_parse(xml, len, &ac, &error) == 1);
	CHECK_STR(ac.provider_name, "Example & Co Mail");
	/* The TLS server is preferred over the STARTTLS one, POP3 ignored. */
	CHECK_STR(ac.imap.host, "imaps.example.com");
	CHECK(ac.imap.port == 993 && ac.imap.security == SETUP_SEC_TLS);
	CHECK_STR(ac.imap.login, "%EMAILADDRESS%");
	CHECK(ac.imap_auth == (SETUP_AUTH_PASSWORD | SETUP_AUTH_OAUTH2));
	CHECK(ac.has_smtp && strcmp(ac.smtp.host, "smtp.example.com") == 0 && ac.smtp.port == 587 &&
	      ac.smtp.security == SETUP_SEC_STARTTLS);
	/* Every truncation is refused or parsed, never read past. */
	for (size_t n = 0; n < len; n++) {
		char *cut = malloc(n > 0 ? n : 1);
		memcpy(cut, xml, n);
		int r = setup_autoconfig_parse(cut, n, &ac, &error);
		CHECK(r == -1 || n > len - 3);
		free(cut);
	}
	free(xml);
	static const char *const hostile[] = {
	    "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><clientConfig>&a;</clientConfig>",
	    "<clientConfig><a></b></clientConfig>",
	    "<clientConfig></clientConfig><clientConfig></clientConfig>",
	    "<clientConfig>&bogus;</clientConfig>",
	    "<clientConfig>&#0;</clientConfig>",
	    "<clientConfig>&#x110000;</clientConfig>",
	    "<clientConfig a=b></clientConfig>",
	    "<other></other>",
	    ("<a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a>"
	     "</a></a></a></a></a></a></a></a></a>"),
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
		CHECK(setup_autoconfig_parse(hostile[i], strlen(hostile[i]), &ac, &error) == -1);
	const char *none = "<clientConfig><emailProvider><incomingServer type=\"imap\"><hostname>"
	                   "bad host</hostname><port>993</port></incomingServer></emailProvider>"
	                   "</clientConfig>";
	CHECK(setup_autoconfig_parse(none, strlen(none), &ac, &error) == 0);
	const char *ok = "<clientConfig><emailProvider><incomingServer type='imap'><hostname>"
	                 "<![CDATA[i.example]]></hostname><port>&#x39;93</port><socketType>SSL"
	                 "</socketType></incomingServer></emailProvider></clientConfig>";
	CHECK(setup_autoconfig_parse(ok, strlen(ok), &ac, &error) == 1);
	CHECK_STR(ac.imap.host, "i.example");
	CHECK(ac.imap.port == 993 && !ac.has_smtp);
}

static void test_import(void)
{
	const char *error = NULL;
	size_t len;
	struct setup_import im[SETUP_IMPORT_MAX];
	char *prefs = slurp("tests/data/setup/prefs.js", &len);
	int n = setup_import_thunderbird(prefs, len, im, SETUP_IMPORT_MAX, &error);
	CHECK(n == 2);
	CHECK_STR(im[0].name, "Alice at example.org");
	CHECK_STR(im[0].email, "alice@example.org");
	CHECK_STR(im[0].imap.host, "imap.example.org");
	CHECK(im[0].imap.port == 993 && im[0].imap.security == SETUP_SEC_TLS);
	CHECK_STR(im[0].imap.login, "alice");
	CHECK(im[0].has_smtp && strcmp(im[0].smtp.host, "smtp.example.org") == 0 &&
	      im[0].smtp.port == 465 && im[0].smtp.security == SETUP_SEC_TLS);
	CHECK_STR(im[1].imap.host, "mail.example.net");
	CHECK(im[1].imap.port == 143 && im[1].imap.security == SETUP_SEC_STARTTLS);
	CHECK_STR(im[1].email, "bob@example.net");
	/* No smtpServer on the identity: the default SMTP server. */
	CHECK(im[1].has_smtp && im[1].smtp.port == 587 &&
	      im[1].smtp.security == SETUP_SEC_STARTTLS);
	for (size_t k = 0; k < len; k += 7)
		CHECK(setup_import_thunderbird(prefs, k, im, SETUP_IMPORT_MAX, &error) >= 0);
	free(prefs);

	char *rc = slurp("tests/data/setup/mbsyncrc", &len);
	n = setup_import_mbsync(rc, len, im, SETUP_IMPORT_MAX, &error);
	CHECK(n == 2);
	CHECK_STR(im[0].name, "work");
	CHECK_STR(im[0].imap.host, "imap.work.example");
	CHECK(im[0].imap.port == 993 && im[0].imap.security == SETUP_SEC_TLS);
	CHECK_STR(im[0].imap.login, "carol@work.example");
	CHECK_STR(im[0].ca_file, "/etc/ssl/certs/ca-certificates.crt");
	CHECK_STR(im[1].imap.host, "mail.home.example");
	CHECK(im[1].imap.port == 1143 && im[1].imap.security == SETUP_SEC_STARTTLS);
	CHECK_STR(im[1].imap.login, "dave");
	/* The password in the file is never kept anywhere. */
	for (int i = 0; i < n; i++)
		CHECK(memmem(&im[i], sizeof(im[i]), "hunter2", 7) == NULL &&
		      memmem(&im[i], sizeof(im[i]), "pass show", 9) == NULL);
	for (size_t k = 0; k < len; k += 5)
		CHECK(setup_import_mbsync(rc, k, im, SETUP_IMPORT_MAX, &error) >= 0);
	free(rc);
}

int main(void)
{
	test_profiles();
	test_helpers();
	test_autoconfig();
	test_import();
	printf("test-setup: ok\n");
	return 0;
}
