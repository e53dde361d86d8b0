#ifndef MK_AUDIT_H
#define MK_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * The per-user audit log: an append-only, hash-chained file that the hub
 * user can read (DATA/users/U/audit.log; the caller gives the path). Every
 * use of a sealed credential, every provider login, consent, account change,
 * lifecycle step and sign-in gets one entry, made durable (fdatasync) before
 * audit_append() returns, so the action it records proceeds only once the
 * record exists.
 *
 * File format: UTF-8 text, one entry per line, each line terminated by a
 * single "\n" (no CR), at most AUDIT_MAX_ENTRY_SIZE bytes including the "\n".
 * Every line is exactly this JSON object, fields in this order, no spaces:
 *
 *   {"seq":S,"time":"T","event":"E","account":"A","detail":{D},"prev":"P","hash":"H"}
 *
 *   S  entry number in decimal without leading zeros; the first entry is 1
 *      and each next entry is one more (contiguous).
 *   T  UTC time, "YYYY-MM-DDTHH:MM:SSZ" (years 0000-9999).
 *   E  the stable event name (see enum audit_event).
 *   A  the hub's account id, [A-Za-z0-9._-]{0,64}; "" for user-level events.
 *   D  zero to AUDIT_MAX_DETAILS pairs "key":"value" separated by ",", in
 *      the order the caller gave them. Keys are [a-z_]{1,32}, unique within
 *      the entry. Values are valid UTF-8 of at most AUDIT_MAX_VALUE_SIZE
 *      bytes; in the line, '"' is written \", '\' is written \\, bytes
 *      0x01-0x1f and 0x7f are written \u00xx (lowercase hex), every other
 *      byte is written as itself. No other escape exists. Values that are
 *      not valid UTF-8 (or contain NUL) are refused by audit_append(), never
 *      replaced, so what is read back is exactly what was written.
 *   P  the H of the previous entry; 64 "0" for the first entry.
 *   H  lowercase hex SHA-256 of the entry's canonical bytes: the line
 *      without its hash field and without the "\n", i.e.
 *      {"seq":S,"time":"T","event":"E","account":"A","detail":{D},"prev":"P"}
 *      (so H covers seq and prev, and through prev the whole chain).
 *      Shell check of one line: sed 's/,"hash":"[0-9a-f]*"}$/}/' | tr -d '\n' | sha256sum
 *
 * A line is valid only if it is byte for byte the form above: a parser
 * that accepts a line also reproduces it exactly, so no two spellings of one
 * entry exist.
 *
 * Secrets: the log must never contain one. The API takes only the event, an
 * account id and short detail pairs; callers must never pass a password,
 * token, key, message content or anything derived from one. As a defence,
 * audit_append() takes no free-form text beyond AUDIT_MAX_VALUE_SIZE bytes
 * per value and refuses detail keys that name a secret (containing "pass",
 * "secret", "token", "cookie" or "key").
 *
 * Error convention: 0 ok / -1 error with *error_r set to a message owned by
 * the log (or iterator), valid until its next call; functions without an
 * object (audit_open, audit_verify, audit_iter_init) use a per-thread buffer
 * valid until the thread's next call into this module. Output parameters
 * are untouched on failure. Library code does not log.
 */

/* Bounds. */
#define AUDIT_MAX_ENTRY_SIZE 4096 /* one line including its "\n" */
#define AUDIT_MAX_DETAILS 8
#define AUDIT_MAX_KEY_LEN 32
#define AUDIT_MAX_VALUE_SIZE 256 /* bytes of a detail value before escaping */
#define AUDIT_MAX_ACCOUNT_LEN 64
#define AUDIT_HASH_HEX_LEN 64
#define AUDIT_HASH_HEX_SIZE (AUDIT_HASH_HEX_LEN + 1) /* with the NUL */

/*
 * Events. The names in quotes are written to the file and never change;
 * new events are added at the end. The detail keys listed are the ones the
 * callers are expected to give; only credential.decrypt's purpose is
 * enforced by audit_append().
 */
enum audit_event {
	AUDIT_CREDENTIAL_DECRYPT, /* "credential.decrypt": purpose=sync|send|test|revoke */
	AUDIT_PROVIDER_LOGIN,     /* "provider.login": server, mechanism, result */
	AUDIT_CONSENT_GIVEN,      /* "consent.given": scope, ... */
	AUDIT_ACCOUNT_ADDED,      /* "account.added": server, ... */
	AUDIT_ACCOUNT_REMOVED,    /* "account.removed" */
	AUDIT_LIFECYCLE_WARNING,  /* "lifecycle.warning": reason, due, ... */
	AUDIT_LIFECYCLE_PURGE,    /* "lifecycle.purge": reason, ... */
	AUDIT_USER_SIGNIN,        /* "user.signin": method, result, ... */
	AUDIT_USER_CREATED,       /* "user.created" */
	AUDIT_DEVICE_ADDED,       /* "device.added" */
	AUDIT_DEVICE_REVOKED,     /* "device.revoked" */
	AUDIT_API_CHANGE,         /* "api.change": device, methods (a device changing mail) */
	AUDIT_ACCOUNT_CHANGED, /* "account.changed": imap, smtp, login, ca (password re-entered) */
	AUDIT_OAUTH_REFRESH,   /* "oauth.refresh": provider, result, rotated, expires */
	AUDIT_OAUTH_SIGNIN,    /* "oauth.signin": provider, result (needs sign-in marked/cleared) */
	AUDIT_LEASE_UNLOCKED,  /* "lease.unlocked": reason=signin, device, until */
	AUDIT_LEASE_WIPED,     /* "lease.wiped": reason=signout|revoked|expired|shutdown */
	AUDIT_WEB_SIGNIN,      /* "web.signin": session (id), address, agent */
	AUDIT_WEB_SIGNOUT,     /* "web.signout": session (id), reason=signout|revoked */
	AUDIT_USER_PASSWORD,   /* "user.password": via (the hub password was changed) */
	AUDIT_EVENT_COUNT
};

/* The stable name of an event, or NULL when out of range. */
const char *audit_event_name(enum audit_event event);
/* Look up an event by its stable name. Returns 0, or -1 when unknown. */
int audit_event_from_name(const char *name, size_t len, enum audit_event *event_r);

/* One detail pair; both strings are NUL-terminated. */
struct audit_detail {
	const char *key;
	const char *value;
};

/* Clock used for the time of new entries; returns seconds since the epoch. */
typedef time_t audit_clock_func(void *context);

struct audit_log;

/* How long audit_open() waits for another writer (thread or process). */
#define AUDIT_LOCK_TIMEOUT_MS 15000
/* audit_open() results besides 0 and -1 (all < 0, so "< 0" still means
 * failure): the log stayed locked by another writer for the whole wait (a
 * temporary condition: try again later), or its last line is incomplete. */
#define AUDIT_BUSY (-2)
#define AUDIT_TORN (-3)

/*
 * Open the log at path for appending, creating it with mode 0600 if it does
 * not exist (and then syncing its directory). The file is opened O_APPEND,
 * must be a regular file not readable or writable by group or others, and is
 * locked until audit_close(): one writer at a time, so the chain never
 * forks. A writer that finds the log locked waits for it, at most
 * AUDIT_LOCK_TIMEOUT_MS, then fails with AUDIT_BUSY. Threads of one process
 * queue on an in-process lock per file (so they never race each other for
 * it); other processes are excluded with flock(), polled until the deadline.
 * The chain is continued from the last line, which is found by reading
 * backwards from the end (not the whole file) and must parse and carry its
 * own correct hash; a file that does not end in "\n" (an interrupted
 * write) is refused with AUDIT_TORN (see audit_trim_torn()). Use
 * audit_verify() to check the whole chain. On success *log_r is the
 * caller's, to be freed with audit_close().
 */
int audit_open(const char *path, struct audit_log **log_r, const char **error_r);
/* audit_open() with another bound on the wait (0: do not wait). */
int audit_open_wait(const char *path, unsigned timeout_ms, struct audit_log **log_r,
                    const char **error_r);
/* Close and free; sets *log to NULL; accepts NULL and *log == NULL. */
void audit_close(struct audit_log **log);

/* Use clock(context) instead of time(NULL) for new entries (tests). NULL
 * restores the system clock. */
void audit_set_clock(struct audit_log *log, audit_clock_func *clock, void *context);

/*
 * Append one entry: the next seq, the clock's time, event, account (NULL or
 * "" for none) and details[0..n_details). Nothing given is kept after the
 * call returns. The line is written with one write() and fdatasync()'d
 * before 0 is returned. Refused (-1, nothing written) when any bound or
 * rule above is broken, including a line over AUDIT_MAX_ENTRY_SIZE
 * ("entry too large"). If the write or the sync fails, the file is
 * truncated back to its previous end where possible and the log refuses
 * every later append (the caller must reopen): the action must not proceed.
 */
int audit_append(struct audit_log *log, enum audit_event event, const char *account,
                 const struct audit_detail *details, size_t n_details, const char **error_r);

/*
 * audit_append() in two steps, for a caller that records the coming entry
 * elsewhere before it is written (the hub keeps its hash as the "pending"
 * head, so a crash between the write and the head update is told apart from
 * an entry added by someone else). audit_prepare() checks and formats the
 * next entry like audit_append() and gives its hash; nothing is written.
 * audit_write_prepared() writes and syncs it as audit_append() does. A
 * second audit_prepare() replaces a prepared entry not yet written.
 */
int audit_prepare(struct audit_log *log, enum audit_event event, const char *account,
                  const struct audit_detail *details, size_t n_details,
                  char hash_r[AUDIT_HASH_HEX_SIZE], const char **error_r);
int audit_write_prepared(struct audit_log *log, const char **error_r);

/* The current head: number of entries and hash of the last (64 "0" when
 * the log is empty), for the caller to store elsewhere (the hub database)
 * and give to audit_verify() later. hash_r gets AUDIT_HASH_HEX_SIZE bytes. */
void audit_head(const struct audit_log *log, uint64_t *count_r, char hash_r[AUDIT_HASH_HEX_SIZE]);

/*
 * Check the whole file at path: each line in canonical form, seq contiguous
 * from 1, each prev equal to the previous hash, each hash correct. If
 * expected_count is not 0 the log must hold exactly that many entries; if
 * expected_head_hash is not NULL the last entry's hash must equal it. These
 * two, kept by the caller outside the file, detect a truncated tail, which
 * the file alone cannot show. Returns 0 when intact (with *count_r set if
 * count_r is not NULL), else -1 with an error naming the first bad line and
 * why, e.g. "line 7: hash mismatch (entry edited)".
 */
int audit_verify(const char *path, const char *expected_head_hash, uint64_t expected_count,
                 uint64_t *count_r, const char **error_r);

/* What audit_scan() found. */
struct audit_state {
	uint64_t count;                 /* complete, intact entries from the start */
	char head[AUDIT_HASH_HEX_SIZE]; /* hash of the last of them (64 "0": none) */
	uint64_t complete_size;         /* bytes of those entries */
	bool torn;                      /* an incomplete last line follows them */
};

/*
 * Check the whole chain of the log at path as audit_verify() does, but
 * report an incomplete last line (no "\n" at the end of the file) in
 * state_r->torn instead of failing. Any other damage is an error as in
 * audit_verify().
 */
int audit_scan(const char *path, struct audit_state *state_r, const char **error_r);

/*
 * Remove an incomplete last line: an append that was cut off (by a crash or
 * a full disk) before it was synced, so it was never acknowledged and
 * nothing it recorded took place. Only when the complete entries before it
 * end exactly at the caller's recorded head (expected_count entries, last
 * hash expected_head_hash); otherwise the file is left alone and -1 says
 * why. Takes the writer's lock like audit_open(). Returns 1 when a line was
 * removed, 0 when the file was complete, -1 or AUDIT_BUSY on failure.
 */
int audit_trim_torn(const char *path, uint64_t expected_count, const char *expected_head_hash,
                    const char **error_r);

/* One parsed entry. All strings are NUL-terminated and belong to the
 * iterator, valid until its next audit_iter_next() or audit_iter_deinit(). */
struct audit_entry {
	uint64_t seq;
	int64_t time; /* seconds since the epoch, UTC */
	enum audit_event event;
	const char *event_name;
	const char *account; /* "" for user-level events */
	size_t n_details;
	struct audit_detail details[AUDIT_MAX_DETAILS];
	char prev[AUDIT_HASH_HEX_SIZE];
	char hash[AUDIT_HASH_HEX_SIZE];
};

/*
 * Read the entries of the log at path in order, for display. Each entry is
 * checked as audit_verify() checks it (format, seq, prev, hash); iteration
 * stops at the first bad line. Usage:
 *   if (audit_iter_init(path, &it, &error) < 0) ...;
 *   while (audit_iter_next(it, &entry)) ...;
 *   if (audit_iter_deinit(&it, &error) < 0) ... (the log is damaged)
 */
struct audit_iter;
int audit_iter_init(const char *path, struct audit_iter **it_r, const char **error_r);
/* Returns true with *entry_r filled, or false at the end or on an error
 * (*entry_r untouched). */
bool audit_iter_next(struct audit_iter *it, struct audit_entry *entry_r);
/* Free; sets *it to NULL; accepts NULL. Returns 0 when iteration reached the
 * end of a well-formed log (or was stopped early by the caller without an
 * error), -1 with *error_r (valid until the thread's next call into this
 * module) if it stopped on an error. */
int audit_iter_deinit(struct audit_iter **it, const char **error_r);

#endif
