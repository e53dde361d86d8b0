#ifndef MK_PUSH_H
#define MK_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Push from the provider: one long-lived IMAP connection per external
 * account, all of them on one libevent loop in one thread.
 *
 * Per account: TCP, TLS (implicit "imaps" or STARTTLS; the certificate chain
 * and host name verified as src/net does: the system's trust store plus the
 * account's CA file), login with the password the credential callback gives
 * (wiped once sent) -- or, for an OAuth account, AUTHENTICATE OAUTHBEARER
 * (else XOAUTH2; RFC 7628) with the access token it gives, asked for at every
 * login so a reconnect logs in with a token that has not expired --, EXAMINE
 * INBOX, then
 *   - NOTIFY SET (RFC 5465) where the server offers it: the server reports
 *     every mailbox's changes on the one connection; or
 *   - IDLE (RFC 2177) on INBOX plus a STATUS sweep of the other folders
 *     every status_interval_s.
 * IDLE is re-issued every idle_renew_s (default 28 minutes, under the 29
 * RFC 2177 allows). A server without IDLE is polled with NOOP.
 *
 * Every change seen (EXISTS, EXPUNGE, VANISHED, FETCH on INBOX; a STATUS
 * that differs from the last one; NOTIFY's STATUS and LIST events) calls
 * changed(account, folder) at once, on the loop's thread.
 *
 * Failures: BYE, a closed or broken connection, a server that does not
 * answer within the state's deadline, [UNAVAILABLE]/[LIMIT]/[INUSE], a
 * failed TLS handshake: reconnect after an exponential backoff with jitter;
 * every connect also takes a slot of a global connect rate (connect_rate
 * per second, a token bucket that holds a twentieth of it), so a server
 * restart that drops every connection at once is followed by at most that
 * many connects in any second, even when the loop runs late. Wrong credentials (a
 * login refused without a temporary code, or LOGINDISABLED) stop the
 * account: report(..., stopped=true) tells the owner, and the account is not
 * retried until it is removed and added again. An OAuth account whose access
 * token is refused is retried once after token_refused() (a token the
 * provider dropped before its time); refused again, it stops.
 *
 * Threads: push_loop_run() runs the loop in the calling thread. The other
 * functions may be called from any thread; add/remove take effect on the
 * loop's thread shortly after. Callbacks run on the loop's thread and must
 * not block (hand a sync to another thread).
 */

enum push_state {
	PUSH_STATE_CONNECTING,     /* waiting for a connect slot, TCP, TLS, greeting */
	PUSH_STATE_AUTHENTICATING, /* capability, login */
	PUSH_STATE_IDLE,           /* logged in: IDLE/NOTIFY, sweeps, renewals */
	PUSH_STATE_BACKOFF,        /* waiting to reconnect */
	PUSH_STATE_STOPPED,        /* wrong credentials: not retried */
	PUSH_STATE_COUNT
};
const char *push_state_name(enum push_state s);

struct push_callbacks {
	void *ctx;
	/* Write the account's password (NUL-terminated) into buf of size bytes
	 * (1 KB; an OAuth account's access token: 16 KB);
	 * return 0, or -1 with error set (a temporary failure: retried with
	 * backoff), or -2 for good (the account stops). Push wipes buf after
	 * the login is sent. */
	int (*credential)(void *ctx, int64_t account, char *buf, size_t size, char *error,
	                  size_t error_size);
	/* An OAuth account's access token was refused: forget it, so the next
	 * credential() call gets a new one. May be NULL. */
	void (*token_refused)(void *ctx, int64_t account);
	/* A change in folder (the server's name, modified UTF-7 as on the
	 * wire; "INBOX" for the inbox). */
	void (*changed)(void *ctx, int64_t account, const char *folder);
	/* A connection failed (stopped=false: it will be retried) or the
	 * account stopped (stopped=true: wrong credentials; tell the user).
	 * May be NULL. */
	void (*report)(void *ctx, int64_t account, bool stopped, const char *message);
	/* A login was sent (for the audit log): result true when accepted.
	 * May be NULL. */
	void (*login)(void *ctx, int64_t account, bool ok);
	/* Protocol trace for tests: bytes received (in=true) and commands
	 * sent, except the login command. May be NULL. */
	void (*trace)(void *ctx, int64_t account, bool in, const char *data, size_t len);
};

struct push_settings {
	unsigned idle_renew_s;      /* default 1680 (28 min) */
	unsigned status_interval_s; /* STATUS sweep without NOTIFY; default 300 */
	unsigned connect_rate;      /* connects per second, all accounts; default 50 */
	unsigned backoff_min_ms;    /* default 1000 */
	unsigned backoff_max_ms;    /* default 300000 */
	unsigned throttle_min_ms;   /* after [UNAVAILABLE]/[LIMIT]/[INUSE]; default 60000 */
	unsigned timeout_ms;        /* deadline of each state but IDLE; default 60000 */
	bool no_notify;             /* use IDLE + sweeps even where NOTIFY is offered */
};

struct push_account_config {
	int64_t id;
	const char *url; /* imaps://host[:port] or imap://host[:port] (STARTTLS) */
	const char *login;
	const char *ca_file; /* may be NULL */
	bool oauth;          /* credential() gives an OAuth 2 access token */
};

struct push_loop;

/* Create a loop; settings fields at 0 take their defaults; cb is copied.
 * Returns 0 or -1 with *error_r (static text). */
int push_loop_new(const struct push_settings *set, const struct push_callbacks *cb,
                  struct push_loop **loop_r, const char **error_r);
/* Run the loop until push_loop_stop(). Returns 0, -1 on a loop failure. */
int push_loop_run(struct push_loop *loop);
/* Ask the running loop to return (thread-safe). */
void push_loop_stop(struct push_loop *loop);
/* Free a loop that is not running, closing every connection; sets *loop to
 * NULL; accepts NULL. */
void push_loop_free(struct push_loop **loop);

/* Start pushing one account (replacing one of the same id). Strings are
 * copied. Returns 0, -1 with *error_r on a bad URL or no memory. */
int push_account_add(struct push_loop *loop, const struct push_account_config *cfg,
                     const char **error_r);
/* Stop and forget the account (no-op if unknown). */
void push_account_remove(struct push_loop *loop, int64_t id);
/* The account's state; false if unknown. */
bool push_account_state(struct push_loop *loop, int64_t id, enum push_state *state_r);
/* Is the account idle (logged in and watching: NOTIFY, IDLE or sweeps)?
 * true with *since_r, when its current connection became idle (seconds on
 * CLOCK_MONOTONIC, with milliseconds): a change after that is reported through changed(); one
 * before it, while the account was not connected, may not be (NOTIFY reports only what happens
 * while it is set). false if not idle or unknown. */
bool push_account_idle_since(struct push_loop *loop, int64_t id, double *since_r);
/* Connections by state (for /metrics), and logins sent since start. */
void push_loop_counts(struct push_loop *loop, unsigned counts[PUSH_STATE_COUNT],
                      uint64_t *logins_r);

#endif
