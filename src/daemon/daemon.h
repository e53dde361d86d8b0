#ifndef MK_DAEMON_H
#define MK_DAEMON_H

/*
 * The hub daemon (what 'mailkeep serve' runs): the JMAP API (RFC 8620/8621)
 * with EventSource push for the devices, and the background jobs (the
 * scheduled syncs, the outbox, the full-text indexer, upload expiry, the
 * inactivity lifecycle). The command line only parses options and calls
 * daemon_run().
 *
 * Files (src/daemon/), from the top: daemon.c start and stop;
 * daemon-http.c admission and routing (and /healthz, /metrics);
 * daemon-api.c the session object and the JMAP API; daemon-blob.c upload
 * and download; daemon-push.c the event source and StateChange push;
 * daemon-auth.c authentication with daemon-signin.c the sign-in gate;
 * daemon-jobs.c the background jobs (scheduled syncs, outbox, indexer,
 * upload expiry, lifecycle); daemon-work.c the account worker (replay of
 * device changes at once, syncs asked for now); daemon-stores.c the shared
 * registry of user stores; daemon-respond.c responses; daemon-metrics.c
 * the counters; daemon-log.c the one logging function.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DAEMON_MAX_CONNECTIONS 128
#define DAEMON_PER_ADDRESS 16 /* connections from one address (IPv6: /64) */
#define DAEMON_HEADER_TIMEOUT 10
#define DAEMON_BODY_MEMORY (64u * 1024 * 1024) /* request bodies held at once */
#define DAEMON_MAX_REQUEST (10 * 1024 * 1024)

struct daemon_settings {
	const char *data_dir;           /* an initialised hub directory */
	const char *address;            /* to listen on */
	unsigned port;                  /* 0: any */
	const char *public_url;         /* NULL: http(s)://address:port */
	const char *tls_cert, *tls_key; /* both or neither */
	unsigned sync_interval;         /* seconds, 0 = no scheduled syncs */
	FILE *access_log;               /* one line per request */
	const char *trusted_proxy;
	unsigned max_connections, per_address, header_timeout;
	size_t body_memory;
	bool replay_now; /* device changes to the provider at once (else: the next sync) */
	/* The web app's files (daemon-static.c); NULL: next to the binary
	 * (DIR_OF_BINARY/web), else the installed ones. */
	const char *web_root;
	/* Web sessions' lifetimes in days (0: the defaults, 30 and 14). */
	unsigned web_session_days, web_session_idle_days;
	/* Seconds between full syncs of an account that provider push watches
	 * (the scheduler does not poll those in between); 0: DAEMON_FULL_SYNC. */
	unsigned full_sync_interval;
	/* User store handles open at once (daemon-stores.c); 0: DAEMON_OPEN_STORES.
	 * Lower only for tests of the bound. */
	unsigned open_stores;
	/* Warm sync sessions (svc-pool.h): each kept this long after its
	 * sync, at most this many; either 0: none kept. */
	unsigned sync_keep_seconds, sync_keep_max;
};
#define DAEMON_FULL_SYNC 86400

struct daemon;

/*
 * Jobs of other modules (provider push, zero-access leases) run beside the
 * daemon's own. start(d, ctx) is called once the daemon serves, in the
 * thread of daemon_run() (start a thread or an event loop there; -1 stops
 * the daemon from starting, the error logged by the job); stop(d, ctx) once
 * SIGTERM or SIGINT came and the HTTP server stopped accepting, before the
 * stores and the hub close: it returns when the job's threads have ended
 * (daemon_stopping() is true by then). Register before daemon_run(), at most
 * DAEMON_MAX_JOBS.
 */
#define DAEMON_MAX_JOBS 8
struct daemon_job {
	const char *name;
	int (*start)(struct daemon *d, void *ctx);
	void (*stop)(struct daemon *d, void *ctx);
	void *ctx;
};
int daemon_job_add(const struct daemon_job *job);
bool daemon_stopping(const struct daemon *d);
const char *daemon_data_dir(const struct daemon *d);

/* An account's folder changed on the server (provider push, h-idle): sync
 * that account now (the replay of device changes first, then the
 * server-to-hub sync; folder is a hint, the engine syncs the whole account,
 * cheap for folders unchanged), then the devices' event sources get their
 * StateChange at once. Queued for the daemon's account worker and
 * coalesced with a wake of the same account not yet run; returns at once.
 * Thread-safe. */
void daemon_account_changed(struct daemon *d, const char *user, int64_t account_id,
                            const char *folder);
/* Device changes of the account committed through the API: replayed to the
 * provider now (svc_replay_account), coalesced like the above. */
void daemon_replay_wake(struct daemon *d, const char *user, int64_t account_id);

/* Provider push (daemon-provider.c): register its job (before
 * daemon_run); it holds an idle connection to the provider for every
 * account of every user whose credentials the hub can open: server-key
 * users always, zero-access users while their unlock lease is open (it
 * starts their accounts' push when a lease opens, whoever opened it, and
 * stops it when the lease is wiped; within a second).
 * daemon_provider_account_start() pushes one more account (or restarts
 * one: a changed password); _stop() ends it. Thread-safe; -1 if push is
 * not running or on no memory. settings: NULL or zero fields for the
 * defaults (push.h). */
struct hub_account;
struct daemon_push_settings {
	unsigned sweep_interval; /* STATUS sweep without NOTIFY, seconds */
	unsigned connect_rate;   /* connects per second, all accounts */
	unsigned idle_restart;   /* IDLE re-issued after, seconds */
	bool no_notify;          /* IDLE + sweeps even where NOTIFY is offered */
};
int daemon_provider_register(const struct daemon_push_settings *settings);
int daemon_provider_account_start(const char *user, const struct hub_account *a);
void daemon_provider_account_stop(int64_t account_id);
/* Stop every account of the user (a zero-access user's lease wiped). */
void daemon_provider_user_stop(const char *user);
/* The scheduler's reconcile with hub.db, one per round, over the accounts
 * the round lists anyway (no hub read of its own): _begin(), then
 * _account() for each account of each user the round covers (starts one
 * push does not have, restarts one whose settings changed: URL, login, CA
 * file, password version, needs sign-in), _user_keep() for a user whose
 * accounts the round did not list (a zero-access user without a lease,
 * a hub error: left as they are), and _end() only when the round listed
 * every user: it stops what was not seen (accounts and users removed). An
 * account started by any other path during the round counts as seen. */
struct daemon_push_reconcile {
	unsigned started, restarted, stopped;
};
void daemon_provider_round_begin(void);
void daemon_provider_round_account(const char *user, const struct hub_account *a,
                                   struct daemon_push_reconcile *r);
void daemon_provider_round_user_keep(const char *user);
void daemon_provider_round_end(struct daemon_push_reconcile *r);
/* Is push watching the account (connected and idle)? true with *since_r,
 * when its current connection became idle (CLOCK_MONOTONIC seconds, as
 * clock_mono(); push.h); false when push is not
 * running, not pushing the account, or not connected now. */
bool daemon_provider_account_idle(int64_t account_id, double *since_r);
/* The account's push connection for ExternalAccount/get: "idle" (logged
 * in and watching), "connecting" (connecting or logging in), "backoff"
 * (waiting to reconnect), "off" (not pushed: stopped on wrong credentials,
 * needs sign-in, a zero-access user's key locked, not started yet); NULL
 * when provider push is not running (disabled in mailkeep.conf). A static
 * string. */
const char *daemon_provider_account_state(int64_t account_id);
/* Accounts whose push connection is being made (connecting or logging in):
 * the scheduler gives them a few seconds before a round. */
unsigned daemon_provider_pending(void);

/* Metrics (daemon-metrics.c, served at /metrics). Provider push connections
 * by state ("idle", "connecting", "backoff", "notify", ...: the pusher's
 * own names, [a-z_] only): the pusher sets the count of each state it has
 * whenever it changes. Thread-safe. */
void daemon_metrics_set_push(const char *state, unsigned count);

/* Run the daemon until SIGTERM or SIGINT (blocked in the calling thread and
 * every thread it starts), then stop it. Returns 0 after a clean stop, -1 if
 * it could not start (the error logged). */
int daemon_run(const struct daemon_settings *settings);

#endif
