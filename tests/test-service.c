/* The services layer (src/service): the workflows answer in structs and
 * through the caller's reporter, never on stdout or stderr; errors are in
 * the caller's buffers; open errors are the calling thread's own. */
#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "hub/hub.h"
#include "service/svc-account.h"
#include "service/svc-oauth.h"
#include "service/svc-outbox.h"
#include "service/svc-sync.h"
#include "service/svc-user.h"
#include "store/store.h"

static char dir[64];

/* What the reporter was told, one line after another. */
struct lines {
	char text[8192];
	unsigned info, warnings;
};

static void collect(void *ctx, enum svc_level level, const char *text)
{
	struct lines *l = ctx;
	size_t o = strlen(l->text);
	snprintf(l->text + o, sizeof(l->text) - o, "%s%s\n", level == SVC_WARNING ? "! " : "",
	         text);
	if (level == SVC_WARNING)
		l->warnings++;
	else
		l->info++;
}

struct done {
	unsigned n;
	struct svc_sync_account last;
};

static void account_done(void *ctx, const struct svc_sync_account *r)
{
	struct done *d = ctx;
	d->n++;
	d->last = *r;
}

static void add_account(struct hub *hub, const char *user, const char *imap)
{
	const char *err;
	struct hub_user u;
	struct vault_kek *kek = NULL;
	int64_t id;
	CHECK(hub_user_get(hub, user, &u, &err) == 0);
	CHECK(hub_user_kek(hub, &u, NULL, &kek, &err) == 0);
	CHECK(hub_account_add(hub, &u, kek, imap, NULL, "a@example.org", NULL, "secret", &id,
	                      &err) == 0);
	vault_kek_free(&kek);
}

static void test_sync(struct hub *hub)
{
	struct lines lines = {0};
	struct done done = {0};
	struct svc_sync_options opt = {.compress = IMAP_COMPRESS_NO,
	                               .account_done = account_done,
	                               .account_done_ctx = &done,
	                               .reporter = {.report = collect, .ctx = &lines}};
	struct svc_sync_result res;
	/* Nothing listens on port 1: the account fails, the user is told which. */
	CHECK(svc_sync_user(hub, "alice", &opt, &res) == -1);
	CHECK(res.synced == 0 && res.failed == 1 && res.temporary == 0 && !res.no_account);
	CHECK(res.status == SVC_FAILED && res.error[0] == '\0');
	CHECK(done.n == 1 && done.last.account_id == 1 && !done.last.ran);
	CHECK(done.last.status == SVC_FAILED);
	CHECK_STR(done.last.who, "alice, account 1");
	CHECK(strncmp(done.last.error, "alice, account 1: cannot connect to imaps://127.0.0.1:1: ",
	              strlen("alice, account 1: cannot connect to imaps://127.0.0.1:1: ")) == 0);
	CHECK(lines.warnings == 0);

	/* Only an account the user has. */
	opt.only_account = 7;
	CHECK(svc_sync_user(hub, "alice", &opt, &res) == -1);
	CHECK(res.no_account && res.error[0] == '\0' && done.n == 1);
	opt.only_account = 0;
	CHECK(svc_sync_user(hub, "bob", &opt, &res) == -1);
	CHECK(res.no_account && res.status == SVC_FAILED);
	CHECK(svc_sync_user(hub, "nobody", &opt, &res) == -1);
	CHECK(strstr(res.error, "no hub user 'nobody'") != NULL && !res.no_account);
}

static void test_outbox(struct hub *hub)
{
	const char *err;
	char error[SVC_ERROR_SIZE];
	struct hub_user u;
	struct store *store = NULL;
	CHECK(hub_user_get(hub, "alice", &u, &err) == 0);
	CHECK(svc_store_open(dir, "alice", true, &store, error, sizeof(error)) == 0);
	struct lines lines = {0};
	struct svc_outbox_options opt = {.retry_base = SVC_OUTBOX_RETRY_BASE,
	                                 .max_attempts = SVC_OUTBOX_MAX_ATTEMPTS,
	                                 .reporter = {.report = collect, .ctx = &lines}};
	struct svc_outbox_result res;
	CHECK(svc_outbox_run(hub, &u, store, &opt, &res) == 0);
	CHECK(res.sent + res.retry + res.failed + res.filed == 0 && res.error[0] == '\0');
	CHECK(lines.info + lines.warnings == 0);
	store_close(&store);
	CHECK(svc_store_open(dir, "carol", false, &store, error, sizeof(error)) == -1);
	CHECK(strstr(error, "no user 'carol' in ") != NULL);
}

static void test_removal(struct hub *hub)
{
	struct svc_account_removal r;
	CHECK(svc_account_remove(hub, "alice", 9, &r) == -1);
	CHECK(r.outcome == SVC_REMOVAL_NO_ACCOUNT);
	CHECK(svc_account_remove(hub, "alice", 1, &r) == 0);
	CHECK(r.outcome == SVC_REMOVAL_DONE);
	CHECK(strncmp(r.receipt, "receipt: account 1 of alice removed from all devices at ",
	              strlen("receipt: account 1 of alice removed from all devices at ")) == 0);
	CHECK(strstr(r.receipt, "1 sealed credentials") != NULL);
	char first[SVC_RECEIPT_SIZE];
	snprintf(first, sizeof(first), "%s", r.receipt);
	/* Again: removed already, with the receipt of the removal. */
	CHECK(svc_account_remove(hub, "alice", 1, &r) == 0);
	CHECK(r.outcome == SVC_REMOVAL_ALREADY);
	CHECK_STR(r.receipt, first);
	CHECK(svc_account_remove(hub, "nobody", 1, &r) == -1);
	CHECK(r.outcome == SVC_REMOVAL_FAILED && !r.finish_again);
	CHECK(strstr(r.error, "no hub user 'nobody'") != NULL);
}

static bool find_account(struct hub *hub, const struct hub_user *u, int64_t id,
                         struct hub_account **all_r, size_t *n_r, const struct hub_account **a_r)
{
	const char *err;
	CHECK(hub_account_list(hub, u->id, all_r, n_r, &err) == 0);
	for (size_t i = 0; i < *n_r; i++)
		if ((*all_r)[i].id == id) {
			*a_r = &(*all_r)[i];
			return true;
		}
	return false;
}

/* The OAuth access-token cache keeps one entry per account: a token under a
 * new secret version replaces the old one; a new sign-in and a removal drop
 * the account's entry. */
static void test_oauth_cache(struct hub *hub)
{
	const char *err;
	char error[256];
	struct hub_user u;
	struct vault_kek *kek = NULL;
	int64_t id;
	CHECK(hub_user_get(hub, "alice", &u, &err) == 0);
	CHECK(hub_user_kek(hub, &u, NULL, &kek, &err) == 0);
	struct hub_oauth_binding ob = {.provider = "example",
	                               .token_url = "https://127.0.0.1:1/token",
	                               .client_id = "mailkeep",
	                               .scopes = "mail"};
	CHECK(hub_account_add_oauth(hub, &u, kek, "imaps://127.0.0.1:1", NULL, "o@example.org",
	                            NULL, &ob, "refresh-1", &id, &err) == 0);
	struct hub_account *all = NULL;
	size_t n = 0;
	const struct hub_account *a = NULL;
	CHECK(find_account(hub, &u, id, &all, &n, &a));
	svc_oauth_cache_clear();
	int64_t later = (int64_t)time(NULL) + 3600;
	svc_oauth_cache_put(hub, a, "token-1", later);
	char *t = svc_oauth_cache_get(hub, a);
	CHECK(t != NULL && strcmp(t, "token-1") == 0);
	svc_secret_free(&t);
	CHECK(svc_oauth_cache_count(hub, id) == 1);

	/* A token under the next version (a rotation) replaces the entry: the
	 * old version finds nothing, and there is one entry, not two. */
	struct hub_account next = *a;
	next.secret_version++;
	svc_oauth_cache_put(hub, &next, "token-2", later);
	CHECK(svc_oauth_cache_count(hub, id) == 1);
	CHECK((t = svc_oauth_cache_get(hub, a)) == NULL);
	t = svc_oauth_cache_get(hub, &next);
	CHECK(t != NULL && strcmp(t, "token-2") == 0);
	svc_secret_free(&t);

	/* Signed in again: the entry goes. */
	struct oauth_provider p = {.name = "example"};
	struct oauth_tokens tokens = {.refresh_token = (char *)"refresh-2"};
	CHECK(svc_account_signin_oauth(hub, &u, a, kek, &p, &tokens, false, error, sizeof(error)) ==
	      0);
	CHECK(svc_oauth_cache_count(hub, id) == 0);
	hub_accounts_free(&all, n);

	/* Removed: the entry goes. */
	CHECK(find_account(hub, &u, id, &all, &n, &a));
	svc_oauth_cache_put(hub, a, "token-3", later);
	CHECK(svc_oauth_cache_count(hub, id) == 1);
	hub_accounts_free(&all, n);
	struct svc_account_removal r;
	CHECK(svc_account_remove(hub, "alice", id, &r) == 0);
	CHECK(r.outcome == SVC_REMOVAL_DONE);
	CHECK(svc_oauth_cache_count(hub, id) == 0);
	vault_kek_free(&kek);
}

static void test_lifecycle_and_purge(struct hub *hub)
{
	const char *err;
	struct lines lines = {0};
	struct svc_reporter rep = {.report = collect, .ctx = &lines};
	int64_t far = (int64_t)time(NULL) + 400 * 86400;
	CHECK(svc_lifecycle_run(hub, far, true, &rep) == 0);
	CHECK(strstr(lines.text, "would purge alice: inactive for ") != NULL);
	CHECK(strstr(lines.text,
	             "lifecycle (dry run): 2 users, 0 to be warned, 2 to be purged\n") != NULL);
	CHECK(lines.warnings == 0);
	struct hub_user u;
	CHECK(hub_user_get(hub, "bob", &u, &err) == 0);
	char path[256];
	snprintf(path, sizeof(path), "%s/users/bob", dir); /* the sync above made it */
	CHECK(access(path, F_OK) == 0);
	struct svc_user_purge r;
	CHECK(svc_user_purge(hub, &u, "a test", &rep, &r) == 0);
	CHECK(strncmp(r.receipt, "receipt: hub user bob deleted at ",
	              strlen("receipt: hub user bob deleted at ")) == 0);
	CHECK(strstr(r.receipt, "(a test)") != NULL);
	CHECK(access(path, F_OK) < 0);
	CHECK(hub_user_get(hub, "bob", &u, &err) < 0);
	/* A purge cut short leaves a .purged-* folder; the next round removes it. */
	snprintf(path, sizeof(path), "%s/users/.purged-x", dir);
	CHECK(mkdir(path, 0700) == 0);
	lines.text[0] = '\0';
	CHECK(svc_lifecycle_run(hub, (int64_t)time(NULL), false, &rep) == 0);
	CHECK(strstr(lines.text, "lifecycle: 1 users, 0 warned, 0 purged\n") != NULL);
	CHECK(access(path, F_OK) < 0);
}

/* Failed opens in two threads at once: each error names its own path. */
/* A zero-access user's password change: the old password is checked by
 * opening the key with it (one Argon2id run), the account keys are
 * rewrapped, and a key opened before a change in between is refused. */
static void test_zero_access_password(struct hub *hub)
{
	const char *err;
	char error[256];
	struct hub_user u;
	struct vault_kek *kek = NULL, *new_kek = NULL, *stale = NULL;
	int64_t id;
	CHECK(hub_user_add(hub, "zoe", "first-password", true, "first-password", &err) == 0);
	CHECK(hub_user_get(hub, "zoe", &u, &err) == 0);
	CHECK(hub_user_kek(hub, &u, "first-password", &kek, &err) == 0);
	CHECK(hub_account_add(hub, &u, kek, "imaps://127.0.0.1:1", NULL, "z@example.org", NULL,
	                      "secret", &id, &err) == 0);
	vault_kek_free(&kek);

	CHECK(svc_user_set_password(hub, &u, NULL, "second-password", "test", NULL, error,
	                            sizeof(error)) == -1);
	CHECK(strstr(error, "old password is needed") != NULL);
	CHECK(svc_user_set_password(hub, &u, "wrong-password", "second-password", "test", &new_kek,
	                            error, sizeof(error)) == 1);
	CHECK(new_kek == NULL);
	CHECK_STR(error, "the old password is wrong");
	CHECK(hub_user_check_password(hub, &u, "first-password", &err) == 0);

	CHECK(hub_user_kek(hub, &u, "first-password", &stale, &err) == 0);
	CHECK(svc_user_set_password(hub, &u, "first-password", "second-password", "test", &new_kek,
	                            error, sizeof(error)) == 0);
	CHECK(new_kek != NULL);
	CHECK(hub_user_check_password(hub, &u, "second-password", &err) == 0);
	CHECK(hub_user_check_password(hub, &u, "first-password", &err) < 0);
	CHECK(hub_user_kek(hub, &u, "first-password", &kek, &err) < 0);
	CHECK(hub_user_kek(hub, &u, "second-password", &kek, &err) == 0);
	vault_kek_free(&kek);

	/* A key opened from the old password before the change is no longer
	 * the current one: refused, nothing changes. */
	CHECK(hub_user_change_passphrase(hub, &u, stale, "third-password", "test", NULL, &err) ==
	      -1);
	CHECK(strstr(err, "changed meanwhile") != NULL);
	CHECK(hub_user_kek(hub, &u, "second-password", &kek, &err) == 0);
	vault_kek_free(&kek);
	CHECK(hub_user_change_passphrase(hub, &u, new_kek, "third-password", "test", NULL, &err) ==
	      0);
	CHECK(hub_user_kek(hub, &u, "third-password", &kek, &err) == 0);
	vault_kek_free(&kek);
	vault_kek_free(&new_kek);
	vault_kek_free(&stale);
}

static void *open_fails(void *ctx)
{
	const char *where = ctx, *err;
	struct hub *hub;
	struct store *store;
	char path[128];
	snprintf(path, sizeof(path), "%s/store.db", where);
	for (int i = 0; i < 2000; i++) {
		if (hub_open(where, false, &hub, &err) == 0 || strstr(err, where) == NULL)
			return "hub_open";
		if (store_open(path, &store, &err) == 0 || strstr(err, where) == NULL)
			return "store_open";
	}
	return NULL;
}

static void test_open_errors_per_thread(void)
{
	pthread_t a, b;
	void *ra, *rb;
	pthread_create(&a, NULL, open_fails, "/nonexistent/mk-thread-a");
	pthread_create(&b, NULL, open_fails, "/nonexistent/mk-thread-b");
	pthread_join(a, &ra);
	pthread_join(b, &rb);
	CHECK(ra == NULL && rb == NULL);
}

int main(void)
{
	const char *err;
	bool existed;
	/* Like main(): libcurl is set up once per process, before any use. */
	CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
	snprintf(dir, sizeof(dir), "/tmp/mk-test-service-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	CHECK(hub_create(dir, NULL, &existed, &err) == 0);
	struct hub *hub;
	CHECK(hub_open(dir, true, &hub, &err) == 0);
	CHECK(hub_user_add(hub, "alice", NULL, false, NULL, &err) == 0);
	CHECK(hub_user_add(hub, "bob", NULL, false, NULL, &err) == 0);
	add_account(hub, "alice", "imaps://127.0.0.1:1");

	/* Services never print: everything below writes to a file in place of
	 * stdout and stderr, which must stay empty. */
	char out_path[128];
	snprintf(out_path, sizeof(out_path), "%s/printed", dir);
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(1), saved_err = dup(2);
	int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && saved_out >= 0 && saved_err >= 0);
	dup2(fd, 1);
	dup2(fd, 2);
	test_sync(hub);
	test_outbox(hub);
	test_removal(hub);
	test_oauth_cache(hub);
	test_lifecycle_and_purge(hub);
	test_zero_access_password(hub);
	test_open_errors_per_thread();
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	struct stat st;
	CHECK(fstat(fd, &st) == 0);
	close(fd);
	if (st.st_size != 0) {
		fprintf(stderr, "services printed %lld bytes (see %s)\n", (long long)st.st_size,
		        out_path);
		return 1;
	}
	hub_close(&hub);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	curl_global_cleanup();
	TEST_DONE("test-service");
}
