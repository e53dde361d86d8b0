#ifndef MK_SVC_POOL_H
#define MK_SVC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Warm sync sessions: serve keeps the logged-in IMAP session of a sync that
 * went well (no LOGOUT), so the next sync of that account (a push event, a
 * device change to replay, the scheduler) needs no TLS handshake, no
 * credential opened and no login (svc_sync_options.pool).
 *
 * - A session is parked under (hub user id, account id) with the
 *   fingerprint of what it was made from (svc_pool_fingerprint: URL, login,
 *   CA file, OAuth or not, the sealed secret's and the key's versions, needs
 *   sign-in): a take with another fingerprint closes the old session and
 *   gives nothing, so a changed account never reuses an old login.
 * - At most max sessions are parked in all (the least recently parked is
 *   closed to make room), each at most keep_seconds (svc_pool_sweep closes
 *   the older ones). keep_seconds 0 or max 0: the pool keeps nothing (every
 *   put closes the session at once).
 * - A take removes the session from the pool: one user at a time. The
 *   caller checks that it is alive (imap_client_noop) before use.
 * - Closing a session sends LOGOUT (best effort, 2 s at most) and frees it;
 *   closing several (a sweep, a drop, svc_pool_free) starts LOGOUTs only
 *   within 3 s (5 s at most in all), the rest are freed without one.
 *
 * Thread-safe: one mutex, held only while the table is looked at or
 * changed, never during network I/O (sessions are closed after it is
 * released), nor while the lease table is asked (svc-lease.h; order: the
 * pool's lock is never held while the lease table's is taken). A
 * zero-access user's sessions go with their lease: svc_pool_sweep closes
 * those whose lease went.
 */

struct imap_client;
struct hub_account;
struct svc_leases;
struct svc_pool;

#define SVC_POOL_FINGERPRINT 16
/* How long a parked session may take to answer the NOOP of a take. */
#define SVC_POOL_NOOP_MS 10000

/* What a take hands the caller, for the put that ends the sync: the
 * pool's generation at the take. Every drop (account, user) moves the
 * generation; a put whose (user, account) was dropped since its take
 * closes the session instead of parking it: a session held by a running
 * sync is not in the pool, so the drop could not find it. Takes that give
 * NULL fill it too: take before a fresh login. */
struct svc_pool_ticket {
	uint64_t generation;
	double created; /* clock_mono() of the session's login (the take's, when it gave none) */
};

/* A session's total age at most (from its login, across takes and puts):
 * a password changed or a grant revoked at the provider shows at the next
 * login at the latest. */
#define SVC_POOL_MAX_AGE 1800

/* Counts since the pool was made (svc_pool_stats). */
struct svc_pool_stats {
	unsigned parked;            /* sessions in the pool now */
	unsigned long long put;     /* sessions parked */
	unsigned long long hit;     /* takes that found a session */
	unsigned long long stale;   /* takes that found one with another fingerprint */
	unsigned long long expired; /* closed by the sweep: kept too long */
	unsigned long long evicted; /* closed to make room (max) */
	unsigned long long dropped; /* closed by a drop (account, user, lease) */
};

/* A pool of at most max sessions kept keep_seconds each. NULL: out of
 * memory. */
struct svc_pool *svc_pool_create(unsigned max, unsigned keep_seconds);
/* Close every parked session (LOGOUTs started within 3 s, so 5 s at most
 * in all) and free the pool; accepts NULL, sets *pool to NULL. No other
 * call may run on it by then. */
void svc_pool_free(struct svc_pool **pool);
/* Does the pool keep anything (keep_seconds and max not 0)? */
bool svc_pool_enabled(const struct svc_pool *pool);

/* The fingerprint of what a session of account a is made from. */
void svc_pool_fingerprint(const struct hub_account *a, unsigned char out[SVC_POOL_FINGERPRINT]);

/* Take the session parked for (user_id, account_id): the caller owns it
 * (imap_client_logout + imap_client_free, or svc_pool_put again). NULL when
 * none is parked; a parked one with another fingerprint, kept longer than
 * keep_seconds, or logged in SVC_POOL_MAX_AGE ago, is closed and NULL
 * returned. *ticket_r is set either
 * way (for svc_pool_put). A zero-access user's caller checks the lease
 * after the take (svc_lease_held): a lease that ends later is followed by
 * a drop, which the put sees. */
struct imap_client *svc_pool_take(struct svc_pool *pool, int64_t user_id, int64_t account_id,
                                  const unsigned char fingerprint[SVC_POOL_FINGERPRINT],
                                  struct svc_pool_ticket *ticket_r);

/* The ticket of a take made now, without taking anything. */
void svc_pool_ticket_now(struct svc_pool *pool, struct svc_pool_ticket *ticket_r);

/* Park *client (logged in, nothing pending) for (user_id, account_id);
 * ticket: what the take before the session's use gave. The pool owns the
 * session from now on; *client is set to NULL. Closed at once instead: a
 * closed session, a pool that keeps nothing, a user or account dropped
 * since the ticket's take, and (zero_access, leases not NULL) a user
 * without a lease: checked after the session is parked, outside the pool's
 * lock, so a lease that ends in between is followed by a drop or sweep
 * that finds it. A session already parked under that key is closed (it
 * cannot be: takes are exclusive; but the newer one wins). */
void svc_pool_put(struct svc_pool *pool, int64_t user_id, int64_t account_id,
                  const unsigned char fingerprint[SVC_POOL_FINGERPRINT], bool zero_access,
                  const struct svc_pool_ticket *ticket, struct svc_leases *leases,
                  struct imap_client **client);

/* Close the sessions of an account (removed, its credential or settings
 * changed) / of a user (purged, their lease ended), and move the
 * generation, so a session of theirs in use now is not parked again
 * (svc_pool_put). Return how many were closed. */
unsigned svc_pool_drop_account(struct svc_pool *pool, int64_t account_id);
unsigned svc_pool_drop_user(struct svc_pool *pool, int64_t user_id);
/* Close every session of user_id whose account is not among accts[0..n)
 * or whose fingerprint differs from the account's now: the pool follows
 * hub.db after a change made elsewhere (the command line). */
unsigned svc_pool_keep_accounts(struct svc_pool *pool, int64_t user_id,
                                const struct hub_account *accts, size_t n);
/* Close every session of a user not among user_ids[0..n) (purged). */
unsigned svc_pool_keep_users(struct svc_pool *pool, const int64_t *user_ids, size_t n);

/* Close the sessions parked longer than keep_seconds by now (clock_mono()
 * seconds) or logged in SVC_POOL_MAX_AGE before it, and, when leases is not NULL, those of
 * zero-access users whose lease is gone (asked with the pool's lock released: the lease table's may
 * be held for seconds; those users are dropped with svc_pool_drop_user). Call every second or so,
 * and after a lease change. Returns how many were closed. */
unsigned svc_pool_sweep(struct svc_pool *pool, double now, struct svc_leases *leases);

void svc_pool_stats(struct svc_pool *pool, struct svc_pool_stats *stats_r);

#endif
