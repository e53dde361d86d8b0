/* src/oauth against a real authorization server on loopback: oidc-provider
 * from npm (tests/oauth/server.mjs, installed by scripts/setup.sh). Skips
 * (77) when node or the module is missing.
 *
 * Code flow with PKCE through the loopback receiver (a libcurl "browser"
 * follows the authorization URL's redirects), refresh with rotation, reuse
 * of a rotated refresh token (invalid_grant: sign in again), revocation,
 * a wrong client secret, a wrong scope, an HTML error page, the token file,
 * the loopback receiver's state check; no token in any error text. */
#include <curl/curl.h>
#include <fcntl.h>
#include <time.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oauth/oauth.h"

static int failures;
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static pid_t server_pid;
static char issuer[128];

static int start_server(void)
{
	if (access("tests/oauth/node_modules/oidc-provider", F_OK) < 0) {
		fprintf(stderr, "skip: tests/oauth/node_modules missing (scripts/setup.sh)\n");
		return 77;
	}
	int fds[2];
	if (pipe(fds) < 0)
		return 1;
	server_pid = fork();
	if (server_pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		freopen("/dev/null", "w", stderr);
		freopen("/dev/null", "r", stdin);
		execlp("node", "node", "tests/oauth/server.mjs", (char *)NULL);
		_exit(77);
	}
	close(fds[1]);
	char line[256];
	size_t len = 0;
	while (len + 1 < sizeof(line)) {
		ssize_t n = read(fds[0], line + len, 1);
		if (n <= 0)
			break;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	close(fds[0]);
	const char *p = strstr(line, "\"port\":");
	if (p == NULL) {
		fprintf(stderr, "skip: the authorization server did not start (node: %s)\n", line);
		return 77;
	}
	snprintf(issuer, sizeof(issuer), "http://127.0.0.1:%ld", strtol(p + 7, NULL, 10));
	return 0;
}

static char token_url[200], auth_url[200], revoke_url[200], device_url[200], html_url[200];

static struct oauth_provider provider(void)
{
	snprintf(token_url, sizeof(token_url), "%s/token", issuer);
	snprintf(auth_url, sizeof(auth_url), "%s/auth", issuer);
	snprintf(revoke_url, sizeof(revoke_url), "%s/token/revocation", issuer);
	snprintf(device_url, sizeof(device_url), "%s/device/auth", issuer);
	snprintf(html_url, sizeof(html_url), "%s/test/html", issuer);
	struct oauth_provider p = {
	    .name = "test-provider",
	    .token_url = token_url,
	    .authorization_url = auth_url,
	    .device_url = device_url,
	    .revocation_url = revoke_url,
	    .client_id = "mailkeep-test",
	    .client_secret = "test-client-secret-not-a-token",
	    .scopes = "openid offline_access mail",
	    .timeout_ms = 10000,
	};
	return p;
}

/* The user's browser: follows every redirect with cookies, ending at the
 * loopback receiver. */
static size_t discard(char *p, size_t s, size_t n, void *c)
{
	(void)p;
	(void)c;
	return s * n;
}

static void *browser(void *arg)
{
	const char *url = arg;
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 20L);
	curl_easy_setopt(h, CURLOPT_COOKIEFILE, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	CURLcode rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
		fprintf(stderr, "browser: %s\n", curl_easy_strerror(rc));
	curl_easy_cleanup(h);
	return NULL;
}

static bool text_has(const struct oauth_error *e, const char *secret)
{
	return secret != NULL && secret[0] != '\0' && strstr(e->text, secret) != NULL;
}

/* Run the code flow; 0 with tokens. */
static int sign_in(const struct oauth_provider *p, struct oauth_tokens *t, bool reuse_code)
{
	struct oauth_pkce *pkce = NULL;
	struct oauth_loopback *lb = NULL;
	struct oauth_error err;
	const char *redirect;
	char *url = NULL, *code = NULL;
	int r = -1;
	if (oauth_pkce_new(&pkce, &err) < 0 || oauth_loopback_open(&lb, &redirect, &err) < 0 ||
	    oauth_authorization_url(p, pkce, redirect, "alice@example.test", &url, &err) < 0) {
		fprintf(stderr, "sign_in: %s\n", err.text);
		goto out;
	}
	CHECK(strstr(url, "code_challenge_method=S256") != NULL);
	CHECK(strstr(url, pkce->verifier) == NULL);
	pthread_t th;
	pthread_create(&th, NULL, browser, url);
	r = oauth_loopback_wait(lb, pkce->state, 20000, &code, &err);
	pthread_join(th, NULL);
	if (r < 0) {
		fprintf(stderr, "sign_in: loopback: %s\n", err.text);
		goto out;
	}
	r = oauth_exchange_code(p, code, redirect, pkce, t, &err);
	if (r < 0)
		fprintf(stderr, "sign_in: exchange: %s\n", err.text);
	else
		CHECK(!text_has(&err, code));
	/* A code is single use: a second exchange is refused as invalid_grant,
	 * and (RFC 6749 10.5) the provider revokes what the code gave. */
	if (r == 0 && reuse_code) {
		struct oauth_tokens t2 = {0};
		CHECK(oauth_exchange_code(p, code, redirect, pkce, &t2, &err) < 0);
		CHECK(err.kind == OAUTH_ERR_SIGN_IN);
		CHECK(!text_has(&err, code));
		CHECK(oauth_refresh(p, t->refresh_token, &t2, &err) < 0);
		CHECK(err.kind == OAUTH_ERR_SIGN_IN);
	}
out:
	oauth_secret_free(&code);
	free(url);
	oauth_loopback_free(&lb);
	oauth_pkce_free(&pkce);
	return r;
}

static void test_code_flow_refresh_revoke(void)
{
	struct oauth_provider p = provider();
	struct oauth_tokens t = {0};
	struct oauth_error err;
	CHECK(sign_in(&p, &t, true) == 0);
	oauth_tokens_clear(&t);
	CHECK(sign_in(&p, &t, false) == 0);
	CHECK(t.access_token != NULL && t.refresh_token != NULL);
	if (t.access_token == NULL || t.refresh_token == NULL)
		return;
	/* A JWT: three base64url parts. */
	CHECK(strncmp(t.access_token, "eyJ", 3) == 0 && strchr(t.access_token, '.') != NULL);
	CHECK(t.expires_at > time(NULL) + 3000);
	CHECK(strstr(t.scope, "mail") != NULL);

	/* Refresh: rotation hands out a new refresh token. */
	struct oauth_tokens t2 = {0};
	CHECK(oauth_refresh(&p, t.refresh_token, &t2, &err) == 0);
	CHECK(t2.access_token != NULL);
	CHECK(t2.refresh_token != NULL && strcmp(t2.refresh_token, t.refresh_token) != 0);
	/* The rotated-away token is refused, as a sign-in error, and the text
	 * holds neither token. */
	struct oauth_tokens t3 = {0};
	CHECK(oauth_refresh(&p, t.refresh_token, &t3, &err) < 0);
	CHECK(err.kind == OAUTH_ERR_SIGN_IN);
	CHECK(strcmp(err.code, "invalid_grant") == 0);
	CHECK(strstr(err.text, "sign in again") != NULL);
	CHECK(!text_has(&err, t.refresh_token) && !text_has(&err, t2.refresh_token));
	oauth_tokens_clear(&t);
	oauth_tokens_clear(&t2);

	/* A fresh grant, revoked (RFC 7009): its refresh token stops working. */
	CHECK(sign_in(&p, &t, false) == 0);
	if (t.refresh_token == NULL)
		return;
	CHECK(oauth_revoke(&p, t.refresh_token, "refresh_token", &err) == 0);
	CHECK(oauth_refresh(&p, t.refresh_token, &t2, &err) < 0);
	CHECK(err.kind == OAUTH_ERR_SIGN_IN);
	/* Revoking an unknown token is still 200 (RFC 7009 2.2). */
	CHECK(oauth_revoke(&p, "no-such-token", NULL, &err) == 0);
	/* No revocation endpoint: a clear error. */
	struct oauth_provider q = p;
	q.revocation_url = NULL;
	CHECK(oauth_revoke(&q, t.refresh_token, NULL, &err) < 0);
	CHECK(strstr(err.text, "no revocation endpoint") != NULL);
	oauth_tokens_clear(&t);
}

static void test_errors(void)
{
	struct oauth_provider p = provider();
	struct oauth_error err;
	struct oauth_tokens t = {0};
	/* Wrong client secret: invalid_client, permanent, with a hint. */
	struct oauth_provider bad = p;
	bad.client_secret = "wrong-secret";
	CHECK(oauth_refresh(&bad, "whatever-refresh-token", &t, &err) < 0);
	CHECK(err.kind == OAUTH_ERR_PERMANENT);
	CHECK(strcmp(err.code, "invalid_client") == 0);
	CHECK(strstr(err.text, "client_id") != NULL);
	CHECK(strstr(err.text, "wrong-secret") == NULL);
	CHECK(strstr(err.text, "whatever-refresh-token") == NULL);
	/* An HTML error page: temporary, said plainly. */
	struct oauth_provider html = p;
	html.token_url = html_url;
	CHECK(oauth_refresh(&html, "whatever-refresh-token", &t, &err) < 0);
	CHECK(err.kind == OAUTH_ERR_TEMPORARY);
	CHECK(strstr(err.text, "HTML page") != NULL && strstr(err.text, "502") != NULL);
	CHECK(strstr(err.text, "<html") == NULL);
	/* Nobody listening: temporary. */
	struct oauth_provider down = p;
	down.token_url = "http://127.0.0.1:1/token";
	CHECK(oauth_refresh(&down, "x", &t, &err) < 0);
	CHECK(err.kind == OAUTH_ERR_TEMPORARY);
	/* Plain http elsewhere than loopback is refused before any request. */
	struct oauth_provider clear = p;
	clear.token_url = "http://oauth.example.com/token";
	CHECK(oauth_refresh(&clear, "x", &t, &err) < 0);
	CHECK(err.kind == OAUTH_ERR_PERMANENT && strstr(err.text, "https") != NULL);
	CHECK(oauth_url_allowed("https://login.microsoftonline.com/common/oauth2/v2.0/token"));
	CHECK(!oauth_url_allowed("http://127.0.0.1.evil.example/"));
	CHECK(oauth_url_allowed("http://[::1]:8080/token"));
	/* A grant without the mail scope: the granted scope says so, and the
	 * caller can refuse it before any server sees the token. */
	struct oauth_provider scope = p;
	scope.scopes = "openid offline_access";
	CHECK(sign_in(&scope, &t, false) == 0);
	CHECK(t.scope != NULL && !oauth_scope_has(t.scope, "mail"));
	CHECK(oauth_scope_has("openid mail offline_access", "mail"));
	CHECK(!oauth_scope_has("openid mailx", "mail"));
	oauth_tokens_clear(&t);
}

static unsigned slept;
static void fake_sleep(unsigned s)
{
	slept += s;
	usleep(200 * 1000);
}

static void test_device_start_and_pending(void)
{
	struct oauth_provider p = provider();
	struct oauth_error err;
	struct oauth_device dev = {0};
	CHECK(oauth_device_start(&p, &dev, &err) == 0);
	CHECK(dev.device_code != NULL && dev.user_code[0] != '\0');
	CHECK(strstr(dev.verification_uri, "/device") != NULL);
	CHECK(dev.interval >= 1);
	/* Nobody approves: the poll keeps waiting (authorization_pending,
	 * slow_down) until the code expires; make it expire soon. */
	dev.expires_at = time(NULL) + 2;
	struct oauth_tokens t = {0};
	CHECK(oauth_device_poll(&p, &dev, fake_sleep, &t, &err) < 0);
	CHECK(strstr(err.text, "expired") != NULL);
	CHECK(slept >= dev.interval);
	CHECK(!text_has(&err, dev.device_code));
	oauth_device_clear(&dev);
}

static void test_token_file(void)
{
	char path[] = "/tmp/mk-oauth-tokens-XXXXXX";
	int fd = mkstemp(path);
	const char *json = "{\"refresh_token\":\"rt-canary-1234\",\"access_token\":\"at-1\","
	                   "\"expires_in\":600,\"scope\":\"mail\"}";
	CHECK(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
	close(fd);
	struct oauth_tokens t = {0};
	struct oauth_error err;
	CHECK(oauth_tokens_from_file(path, &t, &err) == 0);
	CHECK(t.refresh_token != NULL && strcmp(t.refresh_token, "rt-canary-1234") == 0);
	CHECK(t.expires_at > time(NULL) + 500);
	oauth_tokens_clear(&t);
	fd = open(path, O_WRONLY | O_TRUNC);
	const char *bad = "{\"access_token\":\"at-canary-5678\"";
	CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad));
	close(fd);
	CHECK(oauth_tokens_from_file(path, &t, &err) < 0);
	CHECK(strstr(err.text, "at-canary-5678") == NULL);
	unlink(path);
}

struct get_arg {
	char url[256];
};
static void *get_once(void *arg)
{
	struct get_arg *g = arg;
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, g->url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
	curl_easy_perform(h);
	curl_easy_cleanup(h);
	return NULL;
}

static void test_loopback_state(void)
{
	struct oauth_loopback *lb = NULL;
	struct oauth_error err;
	const char *redirect;
	CHECK(oauth_loopback_open(&lb, &redirect, &err) == 0);
	CHECK(strncmp(redirect, "http://127.0.0.1:", 17) == 0);
	/* A favicon, a forged redirect with the wrong state, then the real one. */
	struct get_arg a[3];
	snprintf(a[0].url, sizeof(a[0].url), "%sfavicon.ico", redirect);
	snprintf(a[1].url, sizeof(a[1].url), "%s?code=forged&state=wrong", redirect);
	snprintf(a[2].url, sizeof(a[2].url), "%s?code=c%%2Bd&state=good-state", redirect);
	char *code = NULL;
	pthread_t th3[3];
	for (int i = 0; i < 3; i++) {
		pthread_create(&th3[i], NULL, get_once, &a[i]);
		usleep(200 * 1000); /* connect in this order */
	}
	CHECK(oauth_loopback_wait(lb, "good-state", 5000, &code, &err) == 0);
	for (int i = 0; i < 3; i++)
		pthread_join(th3[i], NULL);
	/* The two first requests were answered while waiting for the third. */
	CHECK(code != NULL && strcmp(code, "c+d") == 0);
	oauth_secret_free(&code);
	/* The provider's refusal comes back as a clear error. */
	struct get_arg e;
	snprintf(e.url, sizeof(e.url),
	         "%s?error=access_denied&error_description=User+said+no&state=s", redirect);
	pthread_t th;
	pthread_create(&th, NULL, get_once, &e);
	CHECK(oauth_loopback_wait(lb, "s", 5000, &code, &err) < 0);
	pthread_join(th, NULL);
	CHECK(strstr(err.text, "access_denied: User said no") != NULL);
	/* Nothing comes: a timeout. */
	CHECK(oauth_loopback_wait(lb, "s", 300, &code, &err) < 0);
	CHECK(strstr(err.text, "no sign-in came back") != NULL);
	oauth_loopback_free(&lb);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	signal(SIGPIPE, SIG_IGN);
	test_token_file();
	test_loopback_state();
	int s = start_server();
	if (s != 0) {
		if (failures)
			return 1;
		return s;
	}
	test_code_flow_refresh_revoke();
	test_errors();
	test_device_start_and_pending();
	kill(server_pid, SIGTERM);
	waitpid(server_pid, NULL, 0);
	curl_global_cleanup();
	if (failures) {
		fprintf(stderr, "%d checks failed\n", failures);
		return 1;
	}
	printf("test-oauth: ok\n");
	return 0;
}
