/* Syncing a user's accounts (svc-sync.h): open the credential, log in,
 * replay the devices' changes, sync; one result per account. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "svc-sync.h"
#include "svc-lease.h"
#include "../hub/hub.h"
#include "../imap/imap-url.h"
#include "../lib/clock.h"
#include "../store/store.h"

#define SVC_SYNC_TIMEOUT_MS 60000

/* One account to sync, stored or given by URL. */
struct sync_job {
	const char *url, *login, *ca_file;
	const char *account_key; /* the store's account key */
	/* Stored accounts: the provider login is audited. */
	struct hub *hub;
	const struct hub_user *hub_user;
	int64_t account_id;
	bool oauth;            /* *password is an OAuth 2 access token */
	const char *lock_path; /* DIR/users/U/sync.lock */
	/* Warm sessions: where a session that synced well is parked (NULL:
	 * LOGOUT), under the account's fingerprint. */
	struct svc_pool *pool;
	const unsigned char *fingerprint;
	const struct hub_account *account; /* the stored account (with pool) */
	struct svc_pool_ticket ticket;     /* the take's, before the session's use */
	struct svc_leases *leases;         /* a zero-access user's session: its lease */
	/* Opens the credential when no warm session was taken (NULL: the
	 * password was given): 0 with *password_r, or -1 with r's status and
	 * error. */
	int (*open_secret)(void *ctx, char **password_r, struct svc_sync_account *r);
	void *open_ctx;
};

static struct imap_client *warm_take(const struct svc_sync_options *opt, const struct hub_user *u,
                                     const struct hub_account *a,
                                     const unsigned char fingerprint[SVC_POOL_FINGERPRINT],
                                     struct svc_pool_ticket *ticket_r);

static void account_fail(struct svc_sync_account *r, enum svc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void account_fail(struct svc_sync_account *r, enum svc_status status, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->error, sizeof(r->error), "%s: ", r->who);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(r->error))
		vsnprintf(r->error + n, sizeof(r->error) - (size_t)n, fmt, ap);
	va_end(ap);
	r->status = status;
}

/* The session after a sync: parked in job->pool when the sync went well
 * (no mailbox left selected, so the next sync starts as after a login),
 * else logged out (a sync that went well) or just freed. */
static void sync_session_end(const struct sync_job *job, bool ok, struct imap_client **client)
{
	const char *err;
	if (*client == NULL)
		return;
	if (ok && job->pool != NULL && svc_pool_enabled(job->pool) &&
	    imap_client_unselect(*client, &err) != -1) {
		svc_pool_put(job->pool, job->hub_user->id, job->account_id, job->fingerprint,
		             job->hub_user->zero_access, &job->ticket, job->leases, client);
		return;
	}
	if (ok)
		imap_client_logout(*client);
	imap_client_free(client);
}

/* Connect and log in with *password (wiped and freed once the login is
 * done), the login audited for a stored account. Returns 0 with
 * *client_r, or -1 with r's status and error. */
static int session_login(const struct sync_job *job, char **password,
                         const struct svc_sync_options *opt, struct svc_sync_account *r,
                         struct imap_client **client_r)
{
	char host[256], port[8];
	const char *err;
	struct imap_client_settings set = {
	    .ca_file = job->ca_file, .timeout_ms = SVC_SYNC_TIMEOUT_MS, .compress = opt->compress};
	if (imap_url_parse(job->url, host, sizeof(host), port, sizeof(port), &set.security) < 0) {
		svc_secret_free(password);
		account_fail(r, SVC_FAILED, "bad IMAP URL '%s'", job->url);
		return -1;
	}
	set.host = host;
	set.port = port;
	struct imap_client *client = NULL;
	if (imap_client_connect(&set, &client, &err) < 0) {
		svc_secret_free(password);
		account_fail(r, SVC_FAILED, "cannot connect to %s: %s", job->url, err);
		return -1;
	}
	int lr = job->oauth ? imap_client_login_oauth(client, job->login, *password, &err)
	                    : imap_client_login(client, job->login, *password, &err);
	svc_secret_free(password);
	if (job->hub != NULL) {
		char server[300];
		snprintf(server, sizeof(server), "%s:%s", host, port);
		const char *mech = imap_client_auth_mechanism(client);
		struct audit_detail d[] = {{"server", server},
		                           {"mechanism", mech != NULL ? mech : "none"},
		                           {"result", lr == 0 ? "ok" : "failed"}};
		const char *aerr;
		if (hub_audit(job->hub, job->hub_user, AUDIT_PROVIDER_LOGIN, job->account_id, d, 3,
		              &aerr) < 0)
			svc_report(&opt->reporter, SVC_WARNING, "%s: %s", r->who, aerr);
	}
	if (lr < 0) {
		account_fail(r, lr == IMAP_LOGIN_TEMPORARY ? SVC_TEMPORARY : SVC_FAILED, "%s", err);
		imap_client_free(&client);
		return -1;
	}
	*client_r = client;
	return 0;
}

/* Take a warm session (a parked one that answered its NOOP) or open the
 * credential and log in; replay, sync. The take comes after the per-user
 * lock: a session that died during the wait is still replaced by a login.
 * r->who is set already. */
static void sync_one_locked(struct store *store, struct sync_job *job, char **password,
                            const struct svc_sync_options *opt, struct svc_sync_account *r)
{
	const char *err;
	r->url = job->url;
	r->account_id = job->account_id;
	double t0 = clock_mono();
	struct imap_client *client = NULL;
	if (job->pool != NULL && job->account != NULL)
		client =
		    warm_take(opt, job->hub_user, job->account, job->fingerprint, &job->ticket);
	if (client == NULL && *password == NULL && job->open_secret != NULL &&
	    job->open_secret(job->open_ctx, password, r) < 0)
		return;
	if (client == NULL && session_login(job, password, opt, r, &client) < 0)
		return;
	svc_secret_free(password);
	/* Two-way sync: the changes devices made in the hub go to the server
	 * first, so the sync below sees a server that already has them. A
	 * change the server refuses for good is marked failed (with a notice)
	 * and the replay goes on; a replay that stops (broken session,
	 * temporary refusal) leaves the rest for next time, and the sync
	 * below still runs: it respects every pending change. */
	if (sync_replay_account_key(store, job->account_key, client, NULL, &r->replay, &err) < 0)
		svc_report(&opt->reporter, SVC_WARNING,
		           "%s: device changes not all carried to the server: %s", r->who, err);
	struct sync_options so = {.progress = opt->progress,
	                          .progress_ctx = opt->progress_ctx,
	                          .full_scan = opt->full_scan};
	const char *only[1] = {opt->only_folder};
	if (opt->only_folder != NULL) {
		so.only_folders = only;
		so.n_only_folders = 1;
	}
	int sr = opt->replay_only
	             ? 0
	             : sync_account(store, job->account_key, client, &so, &r->stats, &err);
	r->ran = !opt->replay_only;
	r->compressed = imap_client_is_compressed(client);
	if (sr < 0)
		account_fail(r, SVC_FAILED, "sync of %s failed: %s", job->url, err);
	else
		r->status = SVC_OK;
	sync_session_end(job, sr == 0, &client);
	r->seconds = clock_mono() - t0;
}

#define SYNC_LOCK_WAIT_S 120

/* One sync of a user's accounts at a time, across processes (the CLI and
 * serve) and threads (serve's scheduler, account worker and push): two
 * replays of one change at once could both send it (without UIDPLUS a copy
 * cannot be told from the other). flock() on a file of its own, so no
 * SQLite POSIX lock is touched. Waits up to SYNC_LOCK_WAIT_S. */
static void sync_one(struct store *store, struct sync_job *job, char **password,
                     const struct svc_sync_options *opt, struct svc_sync_account *r)
{
	int fd = open(job->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		svc_secret_free(password);
		account_fail(r, SVC_FAILED, "cannot open %s: %s", job->lock_path, strerror(errno));
		return;
	}
	double until = clock_mono() + SYNC_LOCK_WAIT_S;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || clock_mono() > until ||
		    (opt->stop != NULL && *opt->stop)) {
			close(fd);
			svc_secret_free(password);
			account_fail(r, SVC_TEMPORARY,
			             "another sync of this user is still running; try again later");
			return;
		}
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	sync_one_locked(store, job, password, opt, r);
	close(fd); /* releases the lock */
}

/* The parked session of account a, if there is one and it answers a NOOP;
 * NULL: log in. *ticket_r: for the put after the sync. A zero-access
 * user's sessions go with their lease: checked after the take, so a lease
 * that ends later is followed by a drop the put sees (svc-pool.h). */
static struct imap_client *warm_take(const struct svc_sync_options *opt, const struct hub_user *u,
                                     const struct hub_account *a,
                                     const unsigned char fingerprint[SVC_POOL_FINGERPRINT],
                                     struct svc_pool_ticket *ticket_r)
{
	const char *err;
	if (opt->pool == NULL)
		return NULL;
	struct imap_client *c = svc_pool_take(opt->pool, u->id, a->id, fingerprint, ticket_r);
	if (u->zero_access && (opt->passphrase.leases == NULL ||
	                       !svc_lease_held(opt->passphrase.leases, u->id, NULL))) {
		if (c != NULL) {
			imap_client_logout(c);
			imap_client_free(&c);
		}
		svc_pool_drop_user(opt->pool, u->id);
		return NULL;
	}
	if (c != NULL && imap_client_noop(c, SVC_POOL_NOOP_MS, &err) != 0) {
		/* Gone at the server (a restart, a kick, its idle timeout):
		 * a fresh login. */
		imap_client_logout(c);
		imap_client_free(&c);
	}
	return c;
}

/* What the credential of a stored account is opened with, once the take
 * found no warm session: the user's key is unwrapped at the first need. */
struct secret_opener {
	struct hub *hub;
	const struct hub_user *u;
	const struct hub_account *a;
	const struct svc_sync_options *opt;
	struct vault_kek **kek;
	char *kek_error; /* the unwrap's error, once it failed (SVC_ERROR_SIZE) */
	size_t kek_error_size;
};

static int open_account_secret(void *ctx, char **password_r, struct svc_sync_account *r)
{
	struct secret_opener *o = ctx;
	if (*o->kek == NULL && o->kek_error[0] == '\0' &&
	    svc_user_kek(o->hub, o->u, &o->opt->passphrase,
	                 o->opt->via != NULL ? o->opt->via : "cli", o->kek, o->kek_error,
	                 o->kek_error_size) < 0 &&
	    o->kek_error[0] == '\0')
		snprintf(o->kek_error, o->kek_error_size, "%s: cannot unlock the user's key",
		         o->u->name);
	if (*o->kek == NULL) {
		/* This account fails; the ones synced already stay done. */
		r->status = SVC_FAILED;
		snprintf(r->error, sizeof(r->error), "%s", o->kek_error);
		return -1;
	}
	int opened = svc_account_open_secret(o->hub, o->u, o->a, *o->kek, "sync", "imap-password",
	                                     password_r, r->error, sizeof(r->error));
	if (opened < 0) {
		r->status = opened == -2 ? SVC_TEMPORARY : SVC_FAILED;
		return -1;
	}
	return 0;
}

static void account_done(const struct svc_sync_options *opt, const struct svc_sync_account *r)
{
	if (opt->account_done != NULL)
		opt->account_done(opt->account_done_ctx, r);
}

int svc_sync_user(struct hub *hub, const char *user, const struct svc_sync_options *opt,
                  struct svc_sync_result *res)
{
	struct hub_user u;
	struct hub_account *accts = NULL;
	size_t n = 0;
	struct vault_kek *kek = NULL;
	struct store *store = NULL;
	struct svc_sync_account *r = NULL;
	const char *err;
	char kek_error[sizeof(res->error)] = "";
	memset(res, 0, sizeof(*res));
	res->status = SVC_FAILED;
	if (hub_user_get(hub, user, &u, &err) < 0 ||
	    hub_account_list(hub, u.id, &accts, &n, &err) < 0) {
		snprintf(res->error, sizeof(res->error), "%s: %s", user, err);
		goto out;
	}
	/* With warm sessions the key is unwrapped only when a login needs it. */
	if (opt->pool == NULL &&
	    svc_user_kek(hub, &u, &opt->passphrase, opt->via != NULL ? opt->via : "cli", &kek,
	                 res->error, sizeof(res->error)) < 0)
		goto out;
	if (svc_store_open(hub_data_dir(hub), user, true, &store, res->error, sizeof(res->error)) <
	    0)
		goto out;
	if ((r = malloc(sizeof(*r))) == NULL) {
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (opt->only_account != 0 && accts[i].id != opt->only_account)
			continue;
		if (opt->stop != NULL && *opt->stop)
			break;
		memset(r, 0, sizeof(*r));
		r->account_id = accts[i].id;
		r->url = accts[i].imap_url;
		snprintf(r->who, sizeof(r->who), "%s, account %lld", user, (long long)accts[i].id);
		char *password = NULL;
		unsigned char fp[SVC_POOL_FINGERPRINT] = {0};
		if (opt->pool != NULL)
			svc_pool_fingerprint(&accts[i], fp);
		struct secret_opener opener = {.hub = hub,
		                               .u = &u,
		                               .a = &accts[i],
		                               .opt = opt,
		                               .kek = &kek,
		                               .kek_error = kek_error,
		                               .kek_error_size = sizeof(kek_error)};
		char key[64], lock[4200];
		snprintf(key, sizeof(key), "account:%lld", (long long)accts[i].id);
		if (hub_user_path(hub, u.name, "sync.lock", lock, sizeof(lock)) < 0)
			lock[0] = '\0';
		struct sync_job job = {.lock_path = lock,
		                       .url = accts[i].imap_url,
		                       .login = accts[i].login,
		                       .ca_file = accts[i].ca_file,
		                       .account_key = key,
		                       .hub = hub,
		                       .hub_user = &u,
		                       .account_id = accts[i].id,
		                       .oauth = accts[i].oauth,
		                       .pool = opt->pool,
		                       .fingerprint = fp,
		                       .account = &accts[i],
		                       .leases = opt->passphrase.leases,
		                       .open_secret = open_account_secret,
		                       .open_ctx = &opener};
		sync_one(store, &job, &password, opt, r);
		if (r->status == SVC_OK)
			res->synced++;
		else
			res->failed++;
		res->temporary += r->status == SVC_TEMPORARY;
		account_done(opt, r);
	}
	if (res->synced + res->failed == 0 && (opt->stop == NULL || !*opt->stop)) {
		res->no_account = true;
		goto out;
	}
	if (hub_user_touch(hub, u.id, time(NULL), &err) < 0)
		svc_report(&opt->reporter, SVC_WARNING, "%s: %s", user, err);
	res->status = res->failed == 0                ? SVC_OK
	              : res->failed == res->temporary ? SVC_TEMPORARY
	                                              : SVC_FAILED;
out:
	free(r);
	vault_kek_free(&kek);
	hub_accounts_free(&accts, n);
	store_close(&store);
	return res->status == SVC_OK ? 0 : -1;
}

/* The account_done of svc_replay_account: the one account's result. */
static void replay_done(void *ctx, const struct svc_sync_account *r)
{
	memcpy(ctx, r, sizeof(*r));
}

int svc_replay_account(struct hub *hub, const char *user, int64_t account_id,
                       const struct svc_sync_options *opt, struct svc_sync_account *r)
{
	struct svc_sync_options o = *opt;
	struct svc_sync_result res;
	o.only_account = account_id;
	o.replay_only = true;
	o.account_done = replay_done;
	o.account_done_ctx = r;
	memset(r, 0, sizeof(*r));
	r->status = SVC_FAILED;
	svc_sync_user(hub, user, &o, &res);
	if (res.error[0] != '\0' || res.no_account) {
		r->status = res.status;
		snprintf(r->error, sizeof(r->error), "%s",
		         res.no_account ? "no such account" : res.error);
	}
	return r->status == SVC_OK ? 0 : -1;
}

int svc_sync_url(struct hub *hub, const struct hub_user *u, const struct svc_sync_target *t,
                 char **password, const struct svc_sync_options *opt, struct svc_sync_account *r)
{
	struct store *store = NULL;
	const char *err;
	memset(r, 0, sizeof(*r));
	r->url = t->url;
	r->status = SVC_FAILED;
	snprintf(r->who, sizeof(r->who), "%s, %s", u->name, t->url);
	if (svc_store_open(hub_data_dir(hub), u->name, true, &store, r->error, sizeof(r->error)) <
	    0) {
		svc_secret_free(password);
		return -1;
	}
	char key[1024];
	snprintf(key, sizeof(key), "%s %s", t->url, t->login);
	char lock[4200];
	if (hub_user_path(hub, u->name, "sync.lock", lock, sizeof(lock)) < 0)
		lock[0] = '\0';
	struct sync_job job = {.lock_path = lock,
	                       .url = t->url,
	                       .login = t->login,
	                       .ca_file = t->ca_file,
	                       .account_key = key};
	sync_one(store, &job, password, opt, r);
	store_close(&store);
	if (hub_user_touch(hub, u->id, time(NULL), &err) < 0)
		svc_report(&opt->reporter, SVC_WARNING, "%s", err);
	return r->status == SVC_OK ? 0 : -1;
}

int svc_sync_folder(struct hub *hub, const char *user, int64_t account, const char *folder,
                    const struct svc_sync_options *opt, struct svc_sync_result *res)
{
	struct svc_sync_options o = *opt;
	o.only_account = account;
	o.only_folder = folder;
	return svc_sync_user(hub, user, &o, res);
}

void svc_sync_summary(const struct svc_sync_account *r, char *replay, char *synced, char *progress)
{
	const struct sync_stats *st = &r->stats;
	const struct sync_replay_stats *rst = &r->replay;
	const size_t size = SVC_SUMMARY_SIZE;
	replay[0] = synced[0] = progress[0] = '\0';
	if (r->ran && rst->replayed + rst->failed + rst->deferred > 0)
		snprintf(replay, size,
		         "replayed %s: %u device changes in %u commands, %u failed, %u deferred, "
		         "%u conflicts, %.3f s",
		         r->who, rst->replayed, rst->commands, rst->failed, rst->deferred,
		         rst->conflicts, rst->seconds);
	if (!r->ran)
		return;
	char skipped[64] = "";
	if (st->plain_skipped > 0)
		snprintf(skipped, sizeof(skipped), " (%u unchanged by STATUS, not scanned)",
		         st->plain_skipped);
	snprintf(synced, size,
	         "%s %s: %u folders (%u checked), %llu new messages (%.1f MB), %llu flag "
	         "changes, %llu expunged, folders +%u ~%u -%u%s%s, %s%s%s, %.2f s",
	         r->status == SVC_OK ? "synced" : "sync incomplete", r->who, st->folders,
	         st->folders_selected, (unsigned long long)st->new_messages,
	         (double)st->new_bytes / 1e6, (unsigned long long)st->flag_changes,
	         (unsigned long long)st->expunged, st->folders_created, st->folders_renamed,
	         st->folders_deleted,
	         st->repaired > 0 ? ", re-paired after UIDVALIDITY change: " : "",
	         st->repaired > 0 ? "yes" : "", st->tier != NULL ? st->tier : "-", skipped,
	         r->compressed ? ", compressed" : "", r->seconds);
	if (st->budget == 0 && st->linked == 0 && !st->paced)
		return;
	char limit[48] = "no daily limit";
	if (st->budget != 0)
		snprintf(limit, sizeof(limit), "%.1f MB a day", (double)st->budget / 1e6);
	snprintf(progress, size,
	         "  progress %s: %llu of %llu messages (server STATUS), %.1f MB downloaded "
	         "in all; %llu joined existing Emails by X-GM-MSGID; today %.1f MB of %s%s",
	         r->who, (unsigned long long)st->held_messages,
	         (unsigned long long)st->status_messages, (double)st->bytes_done / 1e6,
	         (unsigned long long)st->linked, (double)st->budget_used / 1e6, limit,
	         st->paced ? "; daily download budget spent: the next run after "
	                     "midnight UTC goes on"
	                   : "");
}
