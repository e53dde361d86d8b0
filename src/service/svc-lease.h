#ifndef MK_SVC_LEASE_H
#define MK_SVC_LEASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "service.h"

/*
 * Unlock leases: while a zero-access user is signed in with their hub
 * password (which is also their passphrase), serve holds their key-encryption
 * key so that it can sync, push and send for them in the background.
 *
 * - The key lives in vault memory (sodium_malloc: guard pages, mlock'd,
 *   MADV_DONTDUMP, read-only), never in a file, log, argv or environment.
 * - One lease per user. A sign-in with the password unlocks it (Argon2id,
 *   audited lease.unlocked reason=signin) or, when there already is one,
 *   extends it: the latest expiry wins, and the device that signed in is
 *   added to its holders.
 * - A holder is a device token made by the sign-in, or a web session (the
 *   web app's cookie sign-in, held as minus its id: svc_lease_signin with
 *   device_id = -session id; gone when hub_web_session_exists says so). Signing out (the
 *   device's token revoked) or revoking the device removes that holder; the
 *   lease is wiped when no holder remains (lease.wiped reason=signout or
 *   revoked). Expiry wipes it whatever its holders (reason=expired), and so
 *   does serve's shutdown (reason=shutdown).
 * - Workflows take a copy of the key for one run (svc_lease_kek): a wipe
 *   while a sync runs lets that sync finish with its copy, which it wipes at
 *   its end; no run starts after the wipe.
 *
 * Thread-safe: every call takes the table's lock. The table audits through
 * the hub handle it was made with, under hub_lock (may be NULL when the
 * caller does not share the hub); lock order hub_lock, then the table's
 * lock, never the reverse. Only svc_lease_signin's first unlock of a user
 * derives a key (one Argon2id, under hub_lock).
 */

struct hub;
struct hub_user;
struct vault_kek;
struct svc_leases;

/* NULL if out of memory. */
struct svc_leases *svc_leases_create(struct hub *hub, pthread_mutex_t *hub_lock);
/* Wipe every lease left (with audit entries reason=shutdown) and free the
 * table; sets *leases to NULL. */
void svc_leases_free(struct svc_leases **leases);

/* u (zero-access) signed in with password (already verified) from device
 * device_id (> 0; a web session: minus its id): unlock or extend the lease
 * to now + seconds. Returns 1 when the key was unlocked now, 0 when an
 * existing lease was extended, -1 with error (a wrong passphrase, the audit
 * log busy: nothing held). *until_r gets the lease's expiry. */
int svc_lease_signin(struct svc_leases *leases, const struct hub_user *u, const char *password,
                     int64_t device_id, time_t now, unsigned seconds, time_t *until_r, char *error,
                     size_t error_size);

/* Device device_id of user_id is gone (signed out or revoked): remove it
 * from the lease's holders; wipe the lease (reason) when none remains.
 * Returns 1 wiped, 0 still held or no lease. */
int svc_lease_release(struct svc_leases *leases, int64_t user_id, int64_t device_id,
                      const char *reason);

/* Wipe what expired by now, and the leases whose holders were all revoked
 * (hub_device_exists, hub_web_session_exists): a full check, one hub.db
 * read per holder. */
void svc_lease_tick(struct svc_leases *leases, time_t now);

/* The watcher's cheap tick: nothing when no lease is held; else the full
 * svc_lease_tick only when it is due: a lease expired by now, the table
 * changed since the last full check (a sign-in, a release), hub.db's
 * data_version moved (another process committed: a device revoked with
 * the CLI, a session row deleted), or 5 s passed (a web session that
 * expired by time). Otherwise it costs one PRAGMA data_version. Returns
 * whether the full check ran. */
bool svc_lease_watch(struct svc_leases *leases, time_t now);

/* Sleep until the watcher should look again: at most max_ms while a lease
 * is held (for data_version and expiry), without limit while none is; a
 * change to the table or svc_lease_wake() ends it at once (one that came
 * since the last wait too, so none is lost). */
void svc_lease_wait(struct svc_leases *leases, unsigned max_ms);

/* Wake svc_lease_wait (serve's shutdown: the watcher then sees its stop
 * flag). */
void svc_lease_wake(struct svc_leases *leases);

/* Is user_id unlocked? true with *until_r (may be NULL). */
bool svc_lease_held(struct svc_leases *leases, int64_t user_id, time_t *until_r);

/* A copy of user_id's key for one run: 1 with *kek_r (vault_kek_free it),
 * 0 when there is no lease, -1 out of secure memory. */
int svc_lease_kek(struct svc_leases *leases, int64_t user_id, struct vault_kek **kek_r);

/* user_id's passphrase changed (hub_user_change_passphrase): a lease
 * holding the old key takes kek (a copy) instead, expiry and holders kept.
 * Returns 1 replaced, 0 no lease, -1 out of secure memory (the lease is
 * wiped then: it could no longer open anything). */
int svc_lease_rekey(struct svc_leases *leases, int64_t user_id, const struct vault_kek *kek);

/* Wipe every lease (reason), e.g. "shutdown". */
void svc_lease_wipe_all(struct svc_leases *leases, const char *reason);

#endif
