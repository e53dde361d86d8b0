#ifndef MK_DAEMON_SIGNIN_H
#define MK_DAEMON_SIGNIN_H

#include <stdbool.h>

/*
 * serve's sign-in gate: the limits on password attempts and the bound on
 * concurrent Argon2id checks, so that guessing neither gets far nor stalls
 * anyone else.
 *
 * Password (Basic) attempts are counted *before* the check: each takes a
 * unit from three fixed one-minute windows, and gives them back when the
 * password was right. While any of them is used up the attempt is refused
 * (429) without hashing:
 *   - per user:            DAEMON_SIGNIN_PER_USER a minute (whatever the address),
 *   - per address prefix:  DAEMON_SIGNIN_PER_ADDRESS a minute; the prefix is an
 *                          IPv4 address or an IPv6 /64 (http_address_prefix),
 *                          behind --trusted-proxy the forwarded address,
 *   - for the whole hub:   DAEMON_SIGNIN_GLOBAL a minute.
 * Rotating addresses (X-Forwarded-For through the proxy, a /64's addresses)
 * still meets the per-user and global limits. The price: someone guessing at
 * a user's password locks that user's password sign-in (not their device
 * tokens) for the rest of the minute, and a flood from many addresses locks
 * password sign-in for everyone until the minute is over.
 *
 * A failed device token (Bearer) costs no hashing; it counts against its
 * address prefix after the fact, and a prefix that is used up gets 429.
 *
 * At most half as many Argon2id checks (64 MiB each) run at once as there
 * are processors, rounded up (at most DAEMON_SIGNIN_MAX_HASHING), so requests keep
 * the other half; other checks wait their turn, up to
 * DAEMON_SIGNIN_HASH_WAIT seconds, then get 503. No lock is held while hashing.
 *
 * All calls are thread-safe.
 */

#define DAEMON_SIGNIN_PER_USER 10
#define DAEMON_SIGNIN_PER_ADDRESS 10
#define DAEMON_SIGNIN_GLOBAL 100
#define DAEMON_SIGNIN_WINDOW 60
#define DAEMON_SIGNIN_MAX_HASHING 8
#define DAEMON_SIGNIN_HASH_WAIT 10

struct daemon_signin_gate;

/* NULL if out of memory. */
struct daemon_signin_gate *daemon_signin_gate_create(void);
void daemon_signin_gate_free(struct daemon_signin_gate **gate);

/* Before checking a password for user (NULL when no such user) from addr:
 * 0 go ahead (units taken), -1 refused with *retry_after_r seconds. */
int daemon_signin_password_begin(struct daemon_signin_gate *gate, const char *user, const char *addr,
                          unsigned *retry_after_r);
/* The password was right: give the units back. */
void daemon_signin_password_ok(struct daemon_signin_gate *gate, const char *user, const char *addr);

/* A device token was refused: count it against addr. */
void daemon_signin_token_failed(struct daemon_signin_gate *gate, const char *addr);
/* Is addr's prefix used up? (For answering 429 rather than 401.) */
bool daemon_signin_address_blocked(struct daemon_signin_gate *gate, const char *addr, unsigned *retry_after_r);

/* Wait for a hashing turn: 0 got one, -1 none within DAEMON_SIGNIN_HASH_WAIT. */
int daemon_signin_hash_enter(struct daemon_signin_gate *gate);
void daemon_signin_hash_leave(struct daemon_signin_gate *gate);

#endif
