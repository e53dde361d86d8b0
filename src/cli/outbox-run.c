/* The outbox worker: sends a user's due messages through each account's
 * own SMTP server, records every outcome durably, files the Sent copy and
 * tells the user about permanent failures. Used by `send`, `outbox run`
 * and the outbox thread of `serve`. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hub/hub.h"
#include "imap/imap-client.h"
#include "imap/imap-cmd.h"
#include "imap/imap-url.h"
#include "mime/mime.h"
#include "outbox.h"
#include "smtp/smtp.h"
#include "store/store-outbox.h"
#include "store/store.h"

#define OUTBOX_LEASE_S (15 * 60) /* longer than any one attempt (10 min) */
#define OUTBOX_MAX_BACKOFF_S (6 * 3600)
#define OUTBOX_TIMEOUT_MS 60000

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int cli_account_open_secret(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                            const struct vault_kek *kek, const char *purpose, const char *kind,
                            char **secret_r)
{
	/* The audit entry is durable before the credential is opened. */
	struct audit_detail d[] = {{"purpose", purpose}, {"kind", kind}};
	const char *err;
	if (hub_audit(hub, u, AUDIT_CREDENTIAL_DECRYPT, a->id, d, 2, &err) < 0 ||
	    hub_account_open_secret(hub, u, a, kek, kind, secret_r, &err) < 0) {
		cli_error("%s", err);
		return hub_error_is_temporary(hub) ? -2 : -1;
	}
	return 0;
}

/* Providers known to file what is submitted into the Sent folder. */
bool cli_provider_files_sent(const char *smtp_url)
{
	static const char *const hosts[] = {"smtp.gmail.com", "smtp.googlemail.com",
	                                    "smtp.office365.com", "smtp-mail.outlook.com"};
	char host[256];
	if (smtp_url == NULL || smtp_url_host(smtp_url, host, sizeof(host)) < 0)
		return false;
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		if (strcmp(host, hosts[i]) == 0)
			return true;
	return false;
}

struct account_ctx {
	const struct hub_account *a;
	struct smtp_session *smtp;
	struct imap_client *imap;
	bool smtp_audited, imap_broken;
	int provider_files; /* files the Sent copy itself: 1, 0, -1 not known yet */
};

struct run {
	struct hub *hub;
	const struct hub_user *u;
	struct store *store;
	const struct outbox_options *opt;
	const char *ppfile;
	struct vault_kek *kek;
	bool kek_failed;
	struct hub_account *accts;
	size_t n_accts;
	struct account_ctx *ctx;
};

static int run_kek(struct run *r)
{
	const char *err;
	if (r->kek != NULL)
		return 0;
	if (r->kek_failed)
		return -1;
	char *pp = NULL;
	if (r->ppfile != NULL && (pp = cli_read_secret(r->ppfile)) == NULL) {
		r->kek_failed = true;
		return -1;
	}
	int ret = hub_user_kek(r->hub, r->u, pp, &r->kek, &err);
	cli_secret_free(&pp);
	if (ret == 0 && r->u->zero_access) {
		struct audit_detail d[] = {{"via", "cli"}};
		ret = hub_audit(r->hub, r->u, AUDIT_USER_SIGNIN, 0, d, 1, &err);
		if (ret < 0)
			vault_kek_free(&r->kek);
	}
	if (ret < 0) {
		cli_error("%s", err);
		r->kek_failed = true;
	}
	return ret;
}

static struct account_ctx *run_account(struct run *r, int64_t id)
{
	for (size_t i = 0; i < r->n_accts; i++)
		if (r->accts[i].id == id)
			return &r->ctx[i];
	return NULL;
}

/* The account's SMTP session, opened on first use. On failure NULL, with
 * *temporary set when trying again later may succeed. */
static struct smtp_session *run_smtp(struct run *r, struct account_ctx *ac, char *why,
                                     size_t why_size, bool *temporary)
{
	if (ac->smtp != NULL)
		return ac->smtp;
	if (ac->a->smtp_url == NULL) {
		snprintf(why, why_size, "account %lld has no SMTP server (account add --smtp)",
		         (long long)ac->a->id);
		return NULL;
	}
	char *pw = NULL;
	if (run_kek(r) < 0) {
		snprintf(why, why_size, "the account's credential cannot be opened");
		*temporary = r->kek_failed;
		return NULL;
	}
	int opened = cli_account_open_secret(r->hub, r->u, ac->a, r->kek, "send",
	                                     "smtp-password", &pw);
	if (opened < 0) {
		snprintf(why, why_size, "the account's credential cannot be opened%s",
		         opened == -2 ? " right now (busy)" : "");
		*temporary = opened == -2;
		return NULL;
	}
	struct smtp_settings set = {.url = ac->a->smtp_url,
	                            .ca_file = ac->a->ca_file,
	                            .login = ac->a->login,
	                            .password = pw,
	                            .timeout_ms = OUTBOX_TIMEOUT_MS};
	const char *err;
	int ret = smtp_session_create(&set, &ac->smtp, &err);
	cli_secret_free(&pw);
	if (ret < 0)
		snprintf(why, why_size, "%s", err);
	return ac->smtp;
}

static void audit_smtp_login(struct run *r, const struct hub_account *a, bool ok)
{
	char host[256];
	const char *err;
	if (smtp_url_host(a->smtp_url, host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "?");
	struct audit_detail d[] = {
	    {"server", host}, {"mechanism", "smtp-auth"}, {"result", ok ? "ok" : "failed"}};
	if (hub_audit(r->hub, r->u, AUDIT_PROVIDER_LOGIN, a->id, d, 3, &err) < 0)
		cli_error("%s", err);
}

/* The Sent folder's name on the provider: the synced mailbox with role
 * Sent, else "Sent". */
static void sent_folder(struct run *r, int64_t account_id, char *name, size_t size)
{
	char key[64];
	int64_t store_account;
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	const char *err;
	snprintf(name, size, "Sent");
	snprintf(key, sizeof(key), "account:%lld", (long long)account_id);
	if (store_begin(r->store, &err) < 0)
		return;
	if (store_account_ensure(r->store, key, &store_account, &err) < 0 ||
	    store_mailboxes(r->store, store_account, &boxes, &n, &err) < 0) {
		store_rollback(r->store);
		return;
	}
	store_commit(r->store, &err);
	for (size_t i = 0; i < n; i++) {
		if (boxes[i].role != NULL && strcasecmp(boxes[i].role, "Sent") == 0) {
			snprintf(name, size, "%s", boxes[i].name);
			break;
		}
	}
	store_mailboxes_free(&boxes, n);
}

/* Does the provider file the Sent copy itself (per-account setting, or
 * detected from the SMTP host)? */
static bool provider_files(struct run *r, struct account_ctx *ac)
{
	char mode[16];
	const char *err;
	if (ac->provider_files < 0) {
		if (store_outbox_sent_mode(r->store, ac->a->id, mode, &err) < 0)
			snprintf(mode, sizeof(mode), "auto");
		ac->provider_files =
		    strcmp(mode, "provider") == 0 ||
		    (strcmp(mode, "auto") == 0 && cli_provider_files_sent(ac->a->smtp_url));
	}
	return ac->provider_files == 1;
}

/* APPEND the Sent copy to the provider's Sent folder. */
static void sent_copy(struct run *r, struct account_ctx *ac, const struct store_outbox_item *it)
{
	char result[64], folder[256];
	const char *err;
	snprintf(result, sizeof(result), "failed");
	if (ac->imap == NULL && !ac->imap_broken) {
		char host[256], port[8];
		char *pw = NULL;
		struct imap_client_settings set = {.ca_file = ac->a->ca_file,
		                                   .timeout_ms = OUTBOX_TIMEOUT_MS,
		                                   .compress = IMAP_COMPRESS_NO};
		ac->imap_broken = true;
		if (imap_url_parse(ac->a->imap_url, host, sizeof(host), port, sizeof(port),
		                   &set.security) < 0)
			goto done;
		set.host = host;
		set.port = port;
		if (cli_account_open_secret(r->hub, r->u, ac->a, r->kek, "send", "imap-password",
		                            &pw) < 0)
			goto done;
		if (imap_client_connect(&set, &ac->imap, &err) < 0) {
			cli_secret_free(&pw);
			snprintf(result, sizeof(result), "failed: connect");
			goto done;
		}
		int lr = imap_client_login(ac->imap, ac->a->login, pw, &err);
		cli_secret_free(&pw);
		char server[300];
		snprintf(server, sizeof(server), "%s:%s", host, port);
		const char *mech = imap_client_auth_mechanism(ac->imap);
		struct audit_detail d[] = {{"server", server},
		                           {"mechanism", mech != NULL ? mech : "none"},
		                           {"result", lr == 0 ? "ok" : "failed"}};
		const char *aerr;
		if (hub_audit(r->hub, r->u, AUDIT_PROVIDER_LOGIN, ac->a->id, d, 3, &aerr) < 0)
			cli_error("%s", aerr);
		if (lr < 0) {
			imap_client_free(&ac->imap);
			snprintf(result, sizeof(result), "failed: login");
			goto done;
		}
		ac->imap_broken = false;
	}
	if (ac->imap == NULL)
		goto done;
	sent_folder(r, ac->a->id, folder, sizeof(folder));
	int ar = imap_client_append(ac->imap, folder, "(\\Seen)", it->data, it->size, &err);
	if (ar == IMAP_CMD_FAILED) {
		/* No such folder yet (NO [TRYCREATE]): create it and try once more. */
		struct buf *b = imap_client_cmd(ac->imap, "CREATE", &err);
		if (b != NULL && imap_cmd_astring(b, folder, &err) == 0 &&
		    imap_client_run(ac->imap, NULL, NULL, &err) == 0)
			ar = imap_client_append(ac->imap, folder, "(\\Seen)", it->data, it->size,
			                        &err);
	}
	if (ar == 0) {
		snprintf(result, sizeof(result), "appended");
	} else {
		if (!r->opt->quiet)
			cli_error("outbox %lld: Sent copy not filed: %s", (long long)it->id, err);
		snprintf(result, sizeof(result), "failed: %.50s", err);
		if (ar == -1) {
			imap_client_free(&ac->imap);
			ac->imap_broken = true;
		}
	}
done:
	store_outbox_set_sent_copy(r->store, it->id, result, &err);
}

/* A notice in the user's hosted inbox about a message that was not sent. */
static void failure_notice(struct run *r, const struct store_outbox_item *it, const char *reply,
                           int64_t now)
{
	struct mime_summary sum;
	char *text = NULL;
	const char *err;
	mime_init();
	bool have = mime_summarize(it->data, it->size, &sum) == 0;
	char subject[200];
	snprintf(subject, sizeof(subject), "%s", have && sum.subject != NULL ? sum.subject : "");
	for (char *p = subject; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	char rcpts[1024] = "";
	size_t o = 0;
	for (size_t i = 0; i < it->n_rcpts && o < sizeof(rcpts) - 1; i++)
		o += (size_t)snprintf(rcpts + o, sizeof(rcpts) - o, "%s%s", i > 0 ? ", " : "",
		                      it->rcpts[i]);
	char date[64];
	time_t t = (time_t)now;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	int len =
	    asprintf(&text,
	             "From: mailkeep hub <mailkeep@hub.invalid>\r\n"
	             "To: %s\r\n"
	             "Date: %s\r\n"
	             "Subject: Not sent: %s\r\n"
	             "Content-Type: text/plain; charset=utf-8\r\n"
	             "MIME-Version: 1.0\r\n"
	             "\r\n"
	             "Your message \"%s\" (outbox %lld) was not sent.\r\n\r\n"
	             "Recipients: %s\r\n"
	             "Attempts: %u\r\n"
	             "The server said: %s\r\n\r\n"
	             "It stays in the outbox: 'mailkeep outbox --user %s retry %lld' sends it "
	             "again, 'cancel %lld' deletes it.\r\n",
	             r->u->name, date, subject, subject, (long long)it->id, rcpts, it->attempts,
	             reply, r->u->name, (long long)it->id, (long long)it->id);
	if (have)
		mime_summary_free(&sum);
	if (len < 0)
		return;
	if (store_begin(r->store, &err) < 0 ||
	    store_local_deliver(r->store, text, (size_t)len, now, &err) < 0 ||
	    store_commit(r->store, &err) < 0) {
		store_rollback(r->store);
		cli_error("cannot deliver the failure notice: %s", err);
	}
	free(text);
}

static int64_t backoff(const struct outbox_options *o, unsigned attempts)
{
	int64_t d = o->retry_base > 0 ? o->retry_base : 60;
	for (unsigned i = 1; i < attempts && d < OUTBOX_MAX_BACKOFF_S; i++)
		d *= 2;
	return d < OUTBOX_MAX_BACKOFF_S ? d : OUTBOX_MAX_BACKOFF_S;
}

/* Send one claimed message and record the outcome. */
static void run_one(struct run *r, struct store_outbox_item *it, struct outbox_stats *st)
{
	char reply[SMTP_REPLY_SIZE], why[300];
	const char *err;
	enum smtp_result res = SMTP_PERMANENT;
	bool temporary = false;
	int64_t now = time(NULL);
	struct account_ctx *ac = run_account(r, it->account_id);
	if (ac == NULL) {
		snprintf(reply, sizeof(reply), "the account %lld no longer exists",
		         (long long)it->account_id);
	} else if (run_smtp(r, ac, why, sizeof(why), &temporary) == NULL) {
		snprintf(reply, sizeof(reply), "%s", why);
		res = temporary ? SMTP_TEMPORARY : SMTP_PERMANENT;
	} else {
		res = smtp_session_send(ac->smtp, it->mail_from, (const char *const *)it->rcpts,
		                        it->n_rcpts, it->data, it->size, reply);
		if (!ac->smtp_audited) {
			/* One provider.login entry per session, on its first use. */
			audit_smtp_login(r, ac->a,
			                 res == SMTP_SENT || strncmp(reply, "535", 3) != 0);
			ac->smtp_audited = true;
		}
	}
	now = time(NULL);
	if (res == SMTP_SENT) {
		/* Recorded before anything else happens. */
		bool by_provider = provider_files(r, ac);
		if (store_outbox_finish_sent(r->store, it->id, reply,
		                             by_provider ? "provider" : NULL, now, &err) < 0)
			cli_error("outbox %lld was sent but not recorded: %s", (long long)it->id,
			          err);
		st->sent++;
		if (!r->opt->quiet)
			printf("sent %lld to %zu recipient%s: %s\n", (long long)it->id, it->n_rcpts,
			       it->n_rcpts == 1 ? "" : "s", reply);
		if (!by_provider)
			sent_copy(r, ac, it);
		return;
	}
	if (res == SMTP_TEMPORARY && it->attempts < r->opt->max_attempts) {
		int64_t next = now + backoff(r->opt, it->attempts);
		if (store_outbox_finish(r->store, it->id, STORE_OUTBOX_QUEUED, next, reply, now,
		                        &err) < 0)
			cli_error("%s", err);
		st->retry++;
		if (!r->opt->quiet)
			printf("queued %lld: attempt %u failed (%s); next attempt in %lld s\n",
			       (long long)it->id, it->attempts, reply, (long long)(next - now));
		return;
	}
	char final[SMTP_REPLY_SIZE + 64];
	if (res == SMTP_TEMPORARY)
		snprintf(final, sizeof(final), "gave up after %u attempts: %s", it->attempts,
		         reply);
	else
		snprintf(final, sizeof(final), "%s", reply);
	if (store_outbox_finish(r->store, it->id, STORE_OUTBOX_FAILED, 0, final, now, &err) < 0)
		cli_error("%s", err);
	st->failed++;
	if (!r->opt->quiet)
		printf("failed %lld: %s\n", (long long)it->id, final);
	failure_notice(r, it, final, now);
}

int cli_outbox_run(struct hub *hub, const struct hub_user *u, const char *ppfile,
                   struct store *store, const struct outbox_options *opt, struct outbox_stats *st)
{
	const char *err;
	struct run r = {.hub = hub, .u = u, .store = store, .opt = opt, .ppfile = ppfile};
	memset(st, 0, sizeof(*st));
	pthread_once(&curl_once, curl_init_once);
	if (hub_account_list(hub, u->id, &r.accts, &r.n_accts, &err) < 0) {
		cli_error("%s", err);
		return -1;
	}
	r.ctx = calloc(r.n_accts + 1, sizeof(*r.ctx));
	if (r.ctx == NULL) {
		hub_accounts_free(&r.accts, r.n_accts);
		return -1;
	}
	for (size_t i = 0; i < r.n_accts; i++) {
		r.ctx[i].a = &r.accts[i];
		r.ctx[i].provider_files = -1;
	}
	int64_t start = time(NULL);
	int ret = 0;
	for (;;) {
		struct store_outbox_item it;
		int c = store_outbox_claim(store, start, OUTBOX_LEASE_S, opt->only_id, &it, &err);
		if (c < 0) {
			cli_error("%s", err);
			ret = -1;
			break;
		}
		if (c == 0)
			break;
		run_one(&r, &it, st);
		store_outbox_item_free(&it);
		if (opt->only_id != 0)
			break;
	}
	for (size_t i = 0; i < r.n_accts; i++) {
		smtp_session_free(&r.ctx[i].smtp);
		if (r.ctx[i].imap != NULL)
			imap_client_logout(r.ctx[i].imap);
		imap_client_free(&r.ctx[i].imap);
	}
	free(r.ctx);
	vault_kek_free(&r.kek);
	hub_accounts_free(&r.accts, r.n_accts);
	return ret;
}

/* --- the outbox thread of serve ------------------------------------------------ */

/* One pass over the users: those with something pending in their outbox
 * get a run. Zero-access users' mail waits until they send or run it
 * themselves (the hub cannot open their credentials). */
static void worker_pass(struct outbox_worker *w)
{
	struct hub *hub = NULL;
	struct hub_user *users = NULL;
	size_t n = 0;
	const char *err;
	if (hub_open(w->cli->data_dir, true, &hub, &err) < 0)
		return;
	if (hub_user_list(hub, &users, &n, &err) < 0)
		n = 0;
	for (size_t i = 0; i < n && !*w->stop; i++) {
		char path[4096];
		struct store *store = NULL;
		int64_t when;
		if (users[i].zero_access ||
		    hub_user_path(hub, users[i].name, "store.db", path, sizeof(path)) < 0 ||
		    access(path, F_OK) < 0 || store_open(path, &store, &err) < 0)
			continue;
		if (store_outbox_next_due(store, &when, &err) == 1) {
			struct outbox_options opt = {.retry_base = w->retry_base,
			                             .max_attempts = OUTBOX_DEFAULT_MAX_ATTEMPTS};
			struct outbox_stats st;
			cli_outbox_run(hub, &users[i], NULL, store, &opt, &st);
		}
		store_close(&store);
	}
	free(users);
	hub_close(&hub);
	fflush(stdout);
}

void *cli_outbox_thread(void *context)
{
	struct outbox_worker *w = context;
	while (!*w->stop) {
		worker_pass(w);
		for (unsigned i = 0; i < w->interval_s * 10 && !*w->stop; i++)
			usleep(100 * 1000);
	}
	return NULL;
}
