/* The outbox run (svc-outbox.h): sends a user's due messages through each
 * account's own SMTP server, records every outcome durably, files the Sent
 * copy and tells the user about permanent failures. Used by `send`,
 * `outbox run` and the outbox thread of `serve`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "svc-outbox.h"
#include "svc-oauth.h"
#include "svc-lease.h"
#include "../hub/hub.h"
#include "../imap/imap-client.h"
#include "../imap/imap-cmd.h"
#include "../imap/imap-mailbox.h"
#include "../imap/imap-url.h"
#include "../mime/mime-envelope.h"
#include "../mime/mime.h"
#include "../smtp/smtp.h"
#include "../store/store-accounts.h"
#include "../store/store-outbox.h"
#include "../store/store-provider.h"
#include "../store/store.h"

#define OUTBOX_LEASE_S (15 * 60) /* longer than any one attempt (10 min) */
#define OUTBOX_MAX_BACKOFF_S (6 * 3600)
#define OUTBOX_TIMEOUT_MS 60000

/* Providers known to file what is submitted into the Sent folder. */
static bool provider_files_sent(const char *smtp_url)
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
	bool smtp_audited;
	int provider_files;   /* files the Sent copy itself: 1, 0, -1 not known yet */
	char imap_error[300]; /* why there is no IMAP session in this run, or "" */
	char copy_error[300];
	char sent_folder[256]; /* the Sent folder, once sent_known */
	bool sent_known, sent_exists;
};

struct run {
	struct hub *hub;
	const struct hub_user *u;
	struct store *store;
	const struct svc_outbox_options *opt;
	const struct svc_reporter *rep;
	struct vault_kek *kek;
	bool kek_failed;
	struct hub_account *accts;
	size_t n_accts;
	struct account_ctx *ctx;
};

static int run_kek(struct run *r)
{
	char error[SVC_ERROR_SIZE];
	if (r->kek != NULL)
		return 0;
	if (r->kek_failed)
		return -1;
	if (svc_user_kek(r->hub, r->u, &r->opt->passphrase, "cli", &r->kek, error, sizeof(error)) <
	    0) {
		if (error[0] != '\0')
			svc_report(r->rep, SVC_WARNING, "%s", error);
		r->kek_failed = true;
		return -1;
	}
	return 0;
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
	char error[SVC_ERROR_SIZE];
	int opened = svc_account_open_secret(r->hub, r->u, ac->a, r->kek, "send", "smtp-password",
	                                     &pw, error, sizeof(error));
	if (opened < 0) {
		svc_report(r->rep, SVC_WARNING, "%s", error);
		snprintf(why, why_size, "the account's credential cannot be opened%s",
		         opened == -2 ? " right now (busy)" : "");
		if (opened == SVC_NEEDS_SIGNIN)
			snprintf(
			    why, why_size,
			    "the account needs sign-in again (its OAuth grant was refused); the "
			    "message waits");
		/* Needs sign-in: the message waits (temporary), but no provider
		 * is asked again until the user signs in (svc-oauth.c). */
		*temporary = opened == -2 || opened == SVC_NEEDS_SIGNIN;
		return NULL;
	}
	struct smtp_settings set = {.url = ac->a->smtp_url,
	                            .ca_file = ac->a->ca_file,
	                            .login = ac->a->login,
	                            .password = ac->a->oauth ? NULL : pw,
	                            .bearer = ac->a->oauth ? pw : NULL,
	                            .timeout_ms = OUTBOX_TIMEOUT_MS};
	const char *err;
	int ret = smtp_session_create(&set, &ac->smtp, &err);
	svc_secret_free(&pw);
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
		svc_report(r->rep, SVC_WARNING, "%s, account %lld: %s", r->u->name,
		           (long long)a->id, err);
}

static int64_t backoff(const struct svc_outbox_options *o, unsigned attempts);

/* "alice, account 2": every error of a run names the user and the account. */
static const char *who(const struct run *r, int64_t account_id, char *buf, size_t size)
{
	snprintf(buf, size, "%s, account %lld", r->u->name, (long long)account_id);
	return buf;
}

/* The synced mailbox with role Sent (from the server's SPECIAL-USE), if
 * any: 1 with its name, 0 none. */
static int synced_sent_folder(struct run *r, int64_t account_id, char *name, size_t size)
{
	char key[64];
	int64_t store_account;
	struct store_mailbox *boxes = NULL;
	size_t n = 0;
	const char *err;
	int found = 0;
	snprintf(key, sizeof(key), "account:%lld", (long long)account_id);
	if (store_begin(r->store, &err) < 0)
		return 0;
	if (store_account_ensure(r->store, key, &store_account, &err) < 0 ||
	    store_mailboxes(r->store, store_account, &boxes, &n, &err) < 0) {
		store_rollback(r->store);
		return 0;
	}
	store_commit(r->store, &err);
	for (size_t i = 0; i < n && found == 0; i++) {
		if (boxes[i].role != NULL && strcasecmp(boxes[i].role, "Sent") == 0) {
			int len = snprintf(name, size, "%s", boxes[i].name);
			found = len > 0 && (size_t)len < size;
		}
	}
	store_mailboxes_free(&boxes, n);
	return found;
}

/* The account's IMAP server offered X-GM-EXT-1 at its last sync (Gmail,
 * which files its own Sent copy). */
static bool server_is_gmail(struct run *r, int64_t account_id)
{
	char key[64];
	int64_t store_account;
	struct store_provider_state p;
	const char *err;
	snprintf(key, sizeof(key), "account:%lld", (long long)account_id);
	return store_account_find(r->store, key, &store_account, &err) == 1 &&
	       store_provider_get(r->store, store_account, &p, &err) == 0 && p.gm_ext;
}

/* Does the provider file the Sent copy itself (per-account setting, or
 * detected from the SMTP host or the IMAP server's X-GM-EXT-1)? */
static bool provider_files(struct run *r, struct account_ctx *ac)
{
	char mode[16];
	const char *err;
	if (ac->provider_files < 0) {
		if (store_outbox_sent_mode(r->store, ac->a->id, mode, &err) < 0)
			snprintf(mode, sizeof(mode), "auto");
		ac->provider_files =
		    strcmp(mode, "provider") == 0 ||
		    (strcmp(mode, "auto") == 0 &&
		     (provider_files_sent(ac->a->smtp_url) || server_is_gmail(r, ac->a->id)));
	}
	return ac->provider_files == 1;
}

/* The account's IMAP session for Sent copies, logged in; NULL with *why when
 * it cannot be had (the failure is remembered for the rest of the run, so
 * that each of the account's copies does not try to log in again: they are
 * retried with backoff in a later run). */
static struct imap_client *copy_session(struct run *r, struct account_ctx *ac, const char **why)
{
	char host[256], port[8];
	char *pw = NULL;
	const char *err;
	if (ac->imap != NULL || ac->imap_error[0] != '\0') {
		*why = ac->imap_error;
		return ac->imap;
	}
	struct imap_client_settings set = {.ca_file = ac->a->ca_file,
	                                   .timeout_ms = OUTBOX_TIMEOUT_MS,
	                                   .compress = IMAP_COMPRESS_NO};
	snprintf(ac->imap_error, sizeof(ac->imap_error), "the account's IMAP URL is not valid");
	*why = ac->imap_error;
	if (imap_url_parse(ac->a->imap_url, host, sizeof(host), port, sizeof(port), &set.security) <
	    0)
		return NULL;
	set.host = host;
	set.port = port;
	snprintf(ac->imap_error, sizeof(ac->imap_error),
	         "the account's credential cannot be opened");
	if (run_kek(r) < 0)
		return NULL;
	char error[SVC_ERROR_SIZE];
	if (svc_account_open_secret(r->hub, r->u, ac->a, r->kek, "send", "imap-password", &pw,
	                            error, sizeof(error)) < 0) {
		svc_report(r->rep, SVC_WARNING, "%s", error);
		return NULL;
	}
	if (imap_client_connect(&set, &ac->imap, &err) < 0) {
		svc_secret_free(&pw);
		snprintf(ac->imap_error, sizeof(ac->imap_error), "%s", err);
		return NULL;
	}
	int lr = ac->a->oauth ? imap_client_login_oauth(ac->imap, ac->a->login, pw, &err)
	                      : imap_client_login(ac->imap, ac->a->login, pw, &err);
	svc_secret_free(&pw);
	char server[300];
	snprintf(server, sizeof(server), "%s:%s", host, port);
	const char *mech = imap_client_auth_mechanism(ac->imap);
	struct audit_detail d[] = {{"server", server},
	                           {"mechanism", mech != NULL ? mech : "none"},
	                           {"result", lr == 0 ? "ok" : "failed"}};
	const char *aerr;
	if (hub_audit(r->hub, r->u, AUDIT_PROVIDER_LOGIN, ac->a->id, d, 3, &aerr) < 0)
		svc_report(r->rep, SVC_WARNING, "%s, account %lld: %s", r->u->name,
		           (long long)ac->a->id, aerr);
	if (lr < 0) {
		snprintf(ac->imap_error, sizeof(ac->imap_error), "%s", err);
		imap_client_free(&ac->imap);
		return NULL;
	}
	ac->imap_error[0] = '\0';
	return ac->imap;
}

/* The message's Message-ID (without <>) when it is plain ASCII that can be
 * searched for. */
static bool copy_message_id(const struct store_outbox_item *it, char *out, size_t size)
{
	struct mime_envelope env;
	bool ok = false;
	size_t head = it->size < MIME_ENVELOPE_HEAD_MAX ? (size_t)it->size : MIME_ENVELOPE_HEAD_MAX;
	if (mime_envelope_parse(it->data, head, it->size, &env) < 0)
		return false;
	if (env.message_id != NULL && env.message_id[0] != '\0') {
		ok = true;
		for (const char *p = env.message_id; *p != '\0'; p++)
			ok = ok && *p > 0x20 && *p < 0x7f;
		int n = snprintf(out, size, "%s", env.message_id);
		ok = ok && n > 0 && (size_t)n < size;
	}
	mime_envelope_free(&env);
	return ok;
}

/* File the Sent copy: find the Sent folder, skip the APPEND when an earlier
 * attempt already filed it, else APPEND (creating the folder if needed).
 * Returns 0 filed, else <0 with *why (IMAP_CMD_FAILED: the server refused;
 * -1: no session or it broke). */
static int copy_file(struct run *r, struct account_ctx *ac, const struct store_outbox_item *it,
                     const char **why)
{
	const char *err;
	int ret;
	struct imap_client *c = copy_session(r, ac, why);
	if (c == NULL)
		return -1;
	if (!ac->sent_known) {
		if (synced_sent_folder(r, ac->a->id, ac->sent_folder, sizeof(ac->sent_folder)))
			ac->sent_exists = true;
		else if ((ret = imap_mailbox_find_sent(c, ac->sent_folder, sizeof(ac->sent_folder),
		                                       &ac->sent_exists, &err)) < 0)
			goto fail;
		ac->sent_known = true;
	}
	if (!ac->sent_exists) {
		struct buf *b = imap_client_cmd(c, "CREATE", &err);
		ret = IMAP_CMD_FAILED;
		if (b == NULL || imap_cmd_astring(b, ac->sent_folder, &err) < 0 ||
		    (ret = imap_client_run(c, NULL, NULL, &err)) == -1)
			goto fail;
		/* Refused: it may exist after all (made by another client since). */
		ac->sent_exists = true;
	}
	/* An earlier attempt may have filed it and been killed before recording
	 * that: look for it first. */
	char msgid[MIME_ENVELOPE_MSGID_MAX + 1];
	if (it->copy_attempts > 1 && copy_message_id(it, msgid, sizeof(msgid))) {
		bool found = false;
		ret = imap_mailbox_has_message_id(c, ac->sent_folder, msgid, &found, &err);
		if (ret == -1)
			goto fail;
		if (ret == 0 && found)
			return 0;
	}
	ret = imap_client_append(c, ac->sent_folder, "(\\Seen)", it->data, it->size, &err);
	if (ret == 0)
		return 0;
	/* Refused: find the folder afresh next time (it may have been renamed
	 * or deleted since the sync that named it). */
	ac->sent_known = false;
fail:
	snprintf(ac->copy_error, sizeof(ac->copy_error), "%s", err);
	*why = ac->copy_error;
	if (ret == -1 || !imap_client_is_open(c)) {
		/* The session broke: the next copy of this run gets a new one. */
		imap_client_free(&ac->imap);
		ac->sent_known = false;
	}
	return ret < 0 ? ret : -1;
}

/* One claimed Sent copy: file it and record the outcome. A failure is
 * retried with backoff (as a send is) until max_attempts, then recorded as
 * "failed: ...". */
static void copy_one(struct run *r, struct store_outbox_item *it, struct svc_outbox_result *st)
{
	char w[300], result[64];
	const char *err, *why = "";
	struct account_ctx *ac = run_account(r, it->account_id);
	who(r, it->account_id, w, sizeof(w));
	if (ac == NULL) {
		store_outbox_finish_copy(r->store, it->id, "skipped", 0,
		                         "the account no longer exists", &err);
		return;
	}
	if (provider_files(r, ac)) {
		store_outbox_finish_copy(r->store, it->id, "provider", 0, NULL, &err);
		return;
	}
	if (copy_file(r, ac, it, &why) == 0) {
		if (store_outbox_finish_copy(r->store, it->id, "appended", 0, NULL, &err) < 0)
			svc_report(r->rep, SVC_WARNING,
			           "%s: outbox %lld: the Sent copy was filed but not recorded: %s",
			           w, (long long)it->id, err);
		st->filed++;
		if (!r->opt->quiet)
			svc_report(r->rep, SVC_INFO, "filed the Sent copy of %lld in %s",
			           (long long)it->id, ac->sent_folder);
		return;
	}
	int64_t now = time(NULL);
	if (it->copy_attempts < r->opt->max_attempts) {
		int64_t next = now + backoff(r->opt, it->copy_attempts);
		if (store_outbox_finish_copy(r->store, it->id, NULL, next, why, &err) < 0)
			svc_report(r->rep, SVC_WARNING, "%s: %s", w, err);
		st->copy_retry++;
		if (!r->opt->quiet)
			svc_report(
			    r->rep, SVC_WARNING,
			    "%s: outbox %lld: Sent copy attempt %u failed (%s); next attempt in "
			    "%lld s",
			    w, (long long)it->id, it->copy_attempts, why, (long long)(next - now));
		return;
	}
	snprintf(result, sizeof(result), "failed: %.50s", why);
	if (store_outbox_finish_copy(r->store, it->id, result, 0, why, &err) < 0)
		svc_report(r->rep, SVC_WARNING, "%s: %s", w, err);
	st->copy_failed++;
	svc_report(r->rep, SVC_WARNING,
	           "%s: outbox %lld: Sent copy not filed after %u attempts: %s", w,
	           (long long)it->id, it->copy_attempts, why);
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
	             "again, 'cancel %lld' deletes it.\r",
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
		svc_report(r->rep, SVC_WARNING,
		           "%s, account %lld: cannot deliver the failure notice: %s", r->u->name,
		           (long long)it->account_id, err);
	}
	free(text);
}

static int64_t backoff(const struct svc_outbox_options *o, unsigned attempts)
{
	int64_t d = o->retry_base > 0 ? o->retry_base : 60;
	for (unsigned i = 1; i < attempts && d < OUTBOX_MAX_BACKOFF_S; i++)
		d *= 2;
	return d < OUTBOX_MAX_BACKOFF_S ? d : OUTBOX_MAX_BACKOFF_S;
}

static void outcome(struct run *r, struct store_outbox_item *it, enum smtp_result res,
                    const char *reply, int64_t now, const char *w, struct svc_outbox_result *st);

/* Send one claimed message and record the outcome. */
static void run_one(struct run *r, struct store_outbox_item *it, struct svc_outbox_result *st)
{
	char reply[SMTP_REPLY_SIZE], why[300], w[300];
	who(r, it->account_id, w, sizeof(w));
	enum smtp_result res = SMTP_PERMANENT;
	bool temporary = false;
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
	}
	outcome(r, it, res, reply, time(NULL), w, st);
	if (ac != NULL && ac->smtp != NULL && !ac->smtp_audited) {
		/* One provider.login entry per session, on its first use; written
		 * after the outcome is recorded, so that no commit comes between the
		 * server's 250 and 'sent' (a kill there would send it again). */
		bool refused = strncmp(reply, "535", 3) == 0 || strncmp(reply, "534", 3) == 0 ||
		               strncmp(reply, "454", 3) == 0;
		audit_smtp_login(r, ac->a, res == SMTP_SENT || !refused);
		ac->smtp_audited = true;
	}
}

/* Record the outcome of an attempt to send. */
static void outcome(struct run *r, struct store_outbox_item *it, enum smtp_result res,
                    const char *reply, int64_t now, const char *w, struct svc_outbox_result *st)
{
	const char *err;
	struct account_ctx *ac = run_account(r, it->account_id);
	if (res == SMTP_SENT) {
		/* Recorded before anything else happens, with the Sent copy pending
		 * (due now) unless the provider files it: the copy loop of this run,
		 * or of the next one after a crash, files it. */
		bool by_provider = provider_files(r, ac);
		if (store_outbox_finish_sent(r->store, it->id, reply,
		                             by_provider ? "provider" : NULL, now, &err) < 0)
			svc_report(r->rep, SVC_WARNING,
			           "%s: outbox %lld was sent but not recorded: %s", w,
			           (long long)it->id, err);
		st->sent++;
		if (!r->opt->quiet)
			svc_report(r->rep, SVC_INFO, "sent %lld to %zu recipient%s: %s",
			           (long long)it->id, it->n_rcpts, it->n_rcpts == 1 ? "" : "s",
			           reply);
		return;
	}
	if (res == SMTP_TEMPORARY && it->attempts < r->opt->max_attempts) {
		int64_t next = now + backoff(r->opt, it->attempts);
		if (store_outbox_finish(r->store, it->id, STORE_OUTBOX_QUEUED, next, reply, now,
		                        &err) < 0)
			svc_report(r->rep, SVC_WARNING, "%s: %s", w, err);
		st->retry++;
		if (!r->opt->quiet)
			svc_report(
			    r->rep, SVC_INFO,
			    "%s: queued %lld: attempt %u failed (%s); next attempt in %lld s", w,
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
		svc_report(r->rep, SVC_WARNING, "%s: %s", w, err);
	st->failed++;
	if (!r->opt->quiet)
		svc_report(r->rep, SVC_INFO, "%s: failed %lld: %s", w, (long long)it->id, final);
	failure_notice(r, it, final, now);
}

int svc_outbox_run(struct hub *hub, const struct hub_user *u, struct store *store,
                   const struct svc_outbox_options *opt, struct svc_outbox_result *st)
{
	const char *err;
	struct run r = {.hub = hub, .u = u, .store = store, .opt = opt, .rep = &opt->reporter};
	memset(st, 0, sizeof(*st));
	if (hub_account_list(hub, u->id, &r.accts, &r.n_accts, &err) < 0) {
		snprintf(st->error, sizeof(st->error), "%s: %s", u->name, err);
		return -1;
	}
	r.ctx = calloc(r.n_accts + 1, sizeof(*r.ctx));
	if (r.ctx == NULL) {
		snprintf(st->error, sizeof(st->error), "%s: out of memory", u->name);
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
			snprintf(st->error, sizeof(st->error), "%s: %s", u->name, err);
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
	/* Then the Sent copies that are due: those of the messages just sent,
	 * and those a killed or failed earlier run left pending. */
	for (;;) {
		struct store_outbox_item it;
		int c = ret < 0 ? 0
		                : store_outbox_claim_copy(store, start, OUTBOX_LEASE_S,
		                                          opt->only_id, &it, &err);
		if (c < 0) {
			snprintf(st->error, sizeof(st->error), "%s: %s", u->name, err);
			ret = -1;
		}
		if (c <= 0)
			break;
		copy_one(&r, &it, st);
		store_outbox_item_free(&it);
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
