#ifndef MK_DAEMON_INTERNAL_H
#define MK_DAEMON_INTERNAL_H

/*
 * What the daemon's files share (daemon.h has the whole).
 *
 * Threads: libmicrohttpd runs one thread per connection (bounded); the push
 * thread watches each user's change counter and each stream's device; the
 * job threads (daemon-jobs.c) run the scheduled syncs, the outbox, the
 * indexer and the lifecycle.
 * Shared state: the hub handle (hub_lock), the per-user store registry
 * (daemon-stores.c; each entry with its own lock), the push stream list
 * (push_lock), the sign-in gate (daemon-signin.h, its own locks). Order: a
 * user's store lock may be held while taking hub_lock (a request reading the
 * user's accounts), never the other way round. No lock is held while a
 * password is hashed.
 *
 * Requests are authenticated on their headers alone (http.h's admit
 * callback), before any body byte is read; the handler gets the principal
 * as req->state.
 */

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "daemon.h"
#include "hub/hub.h"
#include "service/service.h"

#define DAEMON_MAX_USERS 256
#define DAEMON_OPEN_STORES 128 /* store handles open at once (LRU) */
#define DAEMON_MAX_STREAMS 256
#define DAEMON_MAX_DOWNLOAD (64u * 1024 * 1024)
#define DAEMON_PARSE_CACHE (64u * 1024 * 1024) /* parsed messages, all users */
/* maxSizeUpload: the HTTP layer's body bound, so a larger upload gets its
 * 413 before any byte is kept. */
#define DAEMON_MAX_UPLOAD DAEMON_MAX_REQUEST

struct store;
struct http_stream;
struct http_request;
struct http_response;
struct jmap_registry;
struct mime_cache;
struct daemon_signin_gate;

struct daemon_store {
	char name[65];
	struct store *store; /* NULL once the user's store went away */
	dev_t dev;           /* of the store.db that store has open */
	ino_t ino;
	uint64_t used; /* sv->store_clock at the last daemon_store_lock() */
	pthread_mutex_t lock;
};

struct push_stream {
	struct http_stream *stream;
	char user[65];
	int64_t device_id;      /* 0 for Basic sign-ins and web sessions */
	int64_t web_session_id; /* > 0 for a web session (cookie) */
	unsigned ping;          /* seconds, 0 = none */
	unsigned types;         /* PUSH_TYPE_* bits the device asked for */
	bool close_after_state;
	uint64_t sent_state;
	time_t last_ping;
};

#define DAEMON_MAX_WORK 1024
enum { DAEMON_WORK_REPLAY = 1, DAEMON_WORK_SYNC = 2 };
struct daemon_work {
	char user[65];
	int64_t account_id;
	unsigned kinds;
	double queued; /* clock_mono() of the first wake */
	/* DAEMON_WORK_SYNC of one folder (provider push): its name; "" when
	 * the whole account is to be synced (two folders woken, or a sync
	 * not from push). */
	char folder[256];
};

struct daemon {
	const char *data_dir;
	struct hub *hub;
	pthread_mutex_t hub_lock;
	struct jmap_registry *registry;
	struct mime_cache *parse_cache; /* keyed per user (jmap-email.h) */
	char public_url[512];
	struct daemon_store users[DAEMON_MAX_USERS];
	size_t n_users;
	pthread_mutex_t users_lock;
	struct push_stream streams[DAEMON_MAX_STREAMS];
	pthread_mutex_t push_lock;
	struct daemon_signin_gate *signin;
	unsigned sync_interval;
	unsigned full_sync_interval; /* of accounts push watches */
	unsigned open_stores;        /* the registry's bound */
	uint64_t store_clock;        /* uses of the registry (its LRU order) */
	unsigned stores_open;        /* handles the registry has open */
	bool replay_now;             /* device changes to the provider at once */
	/* The account worker's queue (daemon-work.c). */
	struct daemon_work work[DAEMON_MAX_WORK];
	size_t n_work;
	pthread_mutex_t work_lock;
	pthread_cond_t work_cond;
	/* Wakes the push thread before its half second is over. */
	pthread_cond_t push_cond;
	bool push_woken;
	time_t started;
	struct daemon_static *web; /* the web app's files; NULL: none */
	/* Zero-access users' unlock leases (svc-lease.h): their key while they
	 * are signed in, for the scheduler, the account worker and the outbox. */
	struct svc_leases *leases;
	/* Warm sync sessions (svc-pool.h) of the account worker's and the
	 * scheduler's syncs; dropped on account changes, lease ends, purges. */
	struct svc_pool *pool;
	volatile sig_atomic_t sync_now;     /* a user was unlocked: a round now */
	volatile sig_atomic_t jobs_started; /* the other modules' jobs (push) run */
	volatile sig_atomic_t stop;
	volatile sig_atomic_t fts_relist; /* the indexer lists the users again */
};

/* A signed-in request's principal (daemon-auth.c). */
struct principal {
	struct hub_user user;
	int64_t device_id;
	char device[65]; /* the device's name; "" for Basic */
	/* > 0: signed in with the web app's cookie (device_id 0, label
	 * "alice/web-ID"; daemon-websession.c). */
	int64_t web_session_id;
	char label[140];
	/* POST /mailkeep/signin of a zero-access user only: the password, which
	 * is their passphrase, for the unlock (sodium_malloc; principal_free). */
	char *password;
};
/* Frees a principal, wiping a password it holds (http.h's state_free). */
void daemon_principal_free(void *state);

/* daemon-lease.c: POST /mailkeep/signin and /mailkeep/signout, the
 * "unlockedUntil" of a user (RFC 3339 or JSON null), and the thread that
 * wipes expired and revoked leases. */
void daemon_handle_signin(struct daemon *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp);
void daemon_handle_signout(struct daemon *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp);
struct json_t *daemon_lease_until_json(struct daemon *sv, const struct hub_user *u);
void *daemon_lease_thread(void *context);

/* daemon-stores.c: the registry of open user stores. */
struct daemon_store *daemon_store_get(struct daemon *sv, const char *user);
bool daemon_store_lock(struct daemon *sv, struct daemon_store *us);
struct daemon_store *daemon_store_acquire(struct daemon *sv, const char *user);
void daemon_stores_close(struct daemon *sv);

/* daemon-auth.c: 0 signed in, -1 not (no or bad credentials), -2 limited,
 * -3 busy; -4 a web session (cookie) request without the right CSRF header.
 * A request without Authorization is tried with its mk_session cookie. */
int daemon_authenticate(struct daemon *sv, const struct http_request *req, struct principal *p,
                        unsigned *retry_after_r);
/* A password sign-in of user name from addr through the sign-in gate
 * (limits, bounded Argon2id): 0 ok (p->user set), -1 wrong, -2 limited
 * (*retry_after_r), -3 too busy hashing. */
int daemon_password_check(struct daemon *sv, const char *name, const char *password,
                          const char *addr, struct principal *p, unsigned *retry_after_r);

/* daemon-static.c: the web app's files, from the web root loaded into
 * memory at start. */
struct daemon_static;
/* Load dir (NULL: the default places); a missing web root is no error
 * (*static_r then answers 404 with a page saying how to build it).
 * *note_r (else NULL) says where it was loaded from or why not. */
int daemon_static_load(const char *dir, struct daemon_static **static_r, char *note, size_t size);
void daemon_static_free(struct daemon_static **st);
/* Is path one of the web app's (/, /index.html, /assets/...)? */
bool daemon_static_path(const char *path);
void daemon_handle_static(struct daemon *sv, const struct http_request *req,
                          struct http_response *resp);

/* daemon-websession.c: the web app's cookie sessions and CSRF. */
/* The request's mk_session cookie value into token (size bytes): true if
 * it has one of the right form. */
bool daemon_websession_cookie(const struct http_request *req, char *token, size_t size);
/* Authenticate with the cookie: 0 ok (p filled), -1 no or bad session,
 * -4 a method other than GET/HEAD without the right X-Mailkeep-CSRF. */
int daemon_websession_authenticate(struct daemon *sv, const struct http_request *req,
                                   struct principal *p);
/* POST /mailkeep/session (p is the public principal), GET
 * /mailkeep/session and POST /mailkeep/session/signout (p a web session). */
void daemon_handle_session_signin(struct daemon *sv, const struct http_request *req,
                                  struct http_response *resp);
void daemon_handle_session(struct daemon *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp);
void daemon_handle_session_signout(struct daemon *sv, const struct principal *p,
                                   const struct http_request *req, struct http_response *resp);

/* daemon-http.c */
void daemon_admit(void *context, const struct http_request *req, struct http_response *resp,
                  void **state_r);
void daemon_handler(void *context, const struct http_request *req, struct http_response *resp);
struct json_t;
void daemon_respond_json(struct http_response *resp, unsigned status, struct json_t *body);
void daemon_respond_limited(struct http_response *resp, int r, unsigned retry_after);
void daemon_respond_problem(struct http_response *resp, unsigned status, const char *type,
                            const char *detail);
bool daemon_query_param(const char *query, const char *name, char *out, size_t size);
bool daemon_percent_decode(const char *src, char *dst, size_t size);

/* daemon-api.c */
void daemon_respond_session(struct daemon *sv, const struct hub_user *u,
                            struct http_response *resp);
void daemon_handle_api(struct daemon *sv, const struct principal *p, const struct http_request *req,
                       struct http_response *resp);
/* daemon-blob.c */
void daemon_handle_download(struct daemon *sv, const struct principal *p,
                            const struct http_request *req, struct http_response *resp);
void daemon_handle_upload(struct daemon *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp);
void daemon_handle_preview(struct daemon *sv, const struct principal *p,
                           const struct http_request *req, struct http_response *resp);
/* daemon-push.c */
void daemon_handle_events(struct daemon *sv, const struct principal *p,
                          const struct http_request *req, struct http_response *resp);
void *daemon_push_thread(void *context);
void daemon_push_close_all(struct daemon *sv);

/* daemon-jobs.c: each a thread's function over the daemon. */
void *daemon_sync_thread(void *context);
void *daemon_fts_thread(void *context);
void *daemon_outbox_thread(void *context);
void *daemon_lifecycle_thread(void *context);
/* Hourly (from the push thread): uploads no message used within a day go. */
void daemon_expire_uploads(struct daemon *sv);
/* A sync's account_done (svc-sync.h; ctx a struct daemon_sync_done): its
 * summary logged, counted in the metrics, its outcome recorded
 * (daemon_sync_record). */
struct svc_sync_account;
struct daemon_sync_done {
	struct daemon *sv;
	const char *user;
};
void daemon_sync_account_done(void *ctx, const struct svc_sync_account *r);
/* Record the outcome of an attempt on a stored account in the user's store
 * for ExternalAccount/get (store_account_status_set): a server-to-hub sync
 * that ran through, or the error of one that failed (a replay alone: only
 * its failure). One small write; takes the user's store lock, so the
 * caller holds no lock. */
void daemon_sync_record(struct daemon *sv, const char *user, const struct svc_sync_account *r);
/* One lifecycle round now (before any thread opens a user's store). */
void daemon_lifecycle_round(struct daemon *sv);

/* daemon-work.c */
void *daemon_work_thread(void *context);
void daemon_work_stop(struct daemon *sv);
/* daemon-push.c: the push thread looks at the stores now. */
void daemon_push_wake(struct daemon *sv);

/* daemon-metrics.c */
void daemon_metrics_sync(int64_t account_id, bool ran, bool failed);
void daemon_metrics_replay(int64_t account_id, unsigned changes, bool failed);
void daemon_metrics_request(const char *route, double seconds);
/* queued: the outboxes' length, or -1 when not counted this time. */
void daemon_metrics_outbox(int queued, unsigned failed);
/* The metrics text (Prometheus text format 0.0.4), malloc'ed; NULL if out
 * of memory. */
char *daemon_metrics_text(struct daemon *sv);

/* daemon-log.c */
/* The one logging function of the daemon: a line about user (NULL: none)
 * and account (0: none), "2026-12-06T15:28:54Z info user=alice account=3
 * text": info to stdout, errors to stderr (with "mailkeep: " before the
 * text). Never a secret in fmt's arguments. */
enum daemon_log_level { DAEMON_LOG_INFO, DAEMON_LOG_ERROR };
void daemon_log(enum daemon_log_level level, const char *user, int64_t account, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
/* A services reporter (service.h) over daemon_log; ctx is the user name or
 * NULL. */
void daemon_report(void *ctx, enum svc_level level, const char *text);
#endif
