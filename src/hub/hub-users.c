/* Hub users, their key-encryption keys and their audit logs. */
#include "hub-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void user_from_row(sqlite3_stmt *st, struct hub_user *u)
{
	memset(u, 0, sizeof(*u));
	u->id = sqlite3_column_int64(st, 0);
	snprintf(u->name, sizeof(u->name), "%s", (const char *)sqlite3_column_text(st, 1));
	u->zero_access = sqlite3_column_int(st, 2) != 0;
	u->created = sqlite3_column_int64(st, 3);
	u->last_active = sqlite3_column_int64(st, 4);
	u->warned_days = sqlite3_column_int(st, 5);
}

#define USER_COLUMNS "id, name, zero_access, created, last_active, warned_days"

int hub_user_add(struct hub *hub, const char *name, const char *password, bool zero_access,
                 const char *passphrase, const char **error_r)
{
	const char *err;
	char hash[VAULT_PASSWORD_HASH_SIZE] = "";
	unsigned char kdf[VAULT_KDF_BLOB_SIZE], check[VAULT_CHECK_VALUE_SIZE];
	if (!hub_valid_user_name(name))
		return hub_fail(hub, error_r,
		                "invalid user name '%s': use 1-64 of a-z 0-9 . _ - (not starting "
		                "with . or -)",
		                name);
	if (password != NULL && vault_password_hash(password, strlen(password), hash, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	if (zero_access) {
		struct vault_kek *kek;
		if (passphrase == NULL)
			return hub_fail(hub, error_r, "a zero-access user needs a passphrase");
		if (vault_kdf_blob_new(kdf, &err) < 0 ||
		    vault_kek_from_passphrase(passphrase, strlen(passphrase), kdf, sizeof(kdf),
		                              &kek, &err) < 0)
			return hub_fail(hub, error_r, "%s", err);
		vault_kek_check_value(kek, check);
		vault_kek_free(&kek);
	}
	char dir[4200];
	if (hub_user_path(hub, name, NULL, dir, sizeof(dir)) < 0)
		return hub_fail(hub, error_r, "path too long");
	/* Files of an earlier user of that name (a purge by an older mailkeep
	 * cut short) must not become this user's. */
	for (const char *const *f = (const char *const[]){"store.db", "audit.log", NULL}; *f; f++) {
		char leftover[4300];
		if (hub_user_path(hub, name, *f, leftover, sizeof(leftover)) == 0 &&
		    access(leftover, F_OK) == 0)
			return hub_fail(
			    hub, error_r,
			    "%s holds files of an earlier user '%s' (a deletion that did "
			    "not finish): move or remove that folder first",
			    dir, name);
	}
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "INSERT INTO users(name, password_hash, zero_access, kdf, kek_check, "
	                "created, last_active) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
	                &st, error_r) < 0)
		return -1;
	int64_t now = time(NULL);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (password != NULL)
		sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, zero_access);
	if (zero_access) {
		sqlite3_bind_blob(st, 4, kdf, sizeof(kdf), SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, check, sizeof(check), SQLITE_STATIC);
	}
	sqlite3_bind_int64(st, 6, now);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT)
		return hub_fail(hub, error_r, "user '%s' exists already", name);
	if (rc != SQLITE_DONE)
		return hub_db_fail(hub, error_r, "add user");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return hub_fail(hub, error_r, "cannot create %s: %m", dir);
	struct hub_user u;
	if (hub_user_get(hub, name, &u, error_r) < 0)
		return -1;
	struct audit_detail d[] = {{"mode", zero_access ? "zero-access" : "server-key"}};
	return hub_audit(hub, &u, AUDIT_USER_CREATED, 0, d, 1, error_r);
}

int hub_user_get(struct hub *hub, const char *name, struct hub_user *user_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT " USER_COLUMNS " FROM users WHERE name = ?1", &st, error_r) <
	    0)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		user_from_row(st, user_r);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return hub_fail(hub, error_r, "no hub user '%s' (add it with 'mailkeep user add')",
		                hub_valid_user_name(name) ? name : "?");
	return hub_db_fail(hub, error_r, "look up user");
}

int hub_user_list(struct hub *hub, struct hub_user **users_r, size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT " USER_COLUMNS " FROM users ORDER BY name", &st, error_r) < 0)
		return -1;
	struct hub_user *users = NULL;
	size_t count = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hub_user *n = realloc(users, (count + 1) * sizeof(*users));
		if (n == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		users = n;
		user_from_row(st, &users[count++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(users);
		return hub_db_fail(hub, error_r, "list users");
	}
	*users_r = users;
	*count_r = count;
	return 0;
}

static int user_update_int(struct hub *hub, const char *sql, int64_t user_id, int64_t value,
                           const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, sql, &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, value);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "update user");
}

int hub_user_touch(struct hub *hub, int64_t user_id, int64_t now, const char **error_r)
{
	/* Activity resets the inactivity warnings. */
	return user_update_int(
	    hub,
	    "UPDATE users SET last_active = max(last_active, ?2), warned_days = 0 "
	    "WHERE id = ?1",
	    user_id, now, error_r);
}

int hub_user_activity(struct hub *hub, const struct hub_user *user, int64_t now,
                      const char **error_r)
{
	if (user->warned_days == 0 && now - user->last_active < HUB_ACTIVITY_RESOLUTION)
		return 0;
	return hub_user_touch(hub, user->id, now, error_r);
}

int hub_user_set_warned(struct hub *hub, int64_t user_id, int days, const char **error_r)
{
	return user_update_int(hub, "UPDATE users SET warned_days = ?2 WHERE id = ?1", user_id,
	                       days, error_r);
}

int hub_user_delete(struct hub *hub, int64_t user_id, const char **error_r)
{
	sqlite3_stmt *st;
	static const char *const sql[] = {
	    "DELETE FROM secrets WHERE account_id IN (SELECT id FROM accounts WHERE user_id = ?1)",
	    "DELETE FROM accounts WHERE user_id = ?1",
	    "DELETE FROM consents WHERE user_id = ?1",
	    "DELETE FROM devices WHERE user_id = ?1",
	    "DELETE FROM web_sessions WHERE user_id = ?1",
	    "DELETE FROM users WHERE id = ?1",
	};
	int64_t *ids = NULL;
	size_t n_ids = 0;
	if (hub_exec(hub, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	/* The accounts go too: anchored as removed after the commit. */
	if (hub_prepare(hub, "SELECT id FROM accounts WHERE user_id = ?1", &st, error_r) < 0)
		goto fail;
	sqlite3_bind_int64(st, 1, user_id);
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t *n = realloc(ids, (n_ids + 1) * sizeof(*ids));
		if (n == NULL) {
			sqlite3_finalize(st);
			hub_fail(hub, error_r, "out of memory");
			goto fail;
		}
		ids = n;
		ids[n_ids++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	/* Anchored as removed before they go: after a crash anywhere, a
	 * restored copy of their rows cannot open (the removal was meant). */
	for (size_t i = 0; i < n_ids; i++)
		if (hub_anchor_note(hub, "removed", ids[i], 0, error_r) < 0)
			goto fail;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if (hub_prepare(hub, sql[i], &st, error_r) < 0)
			goto fail;
		sqlite3_bind_int64(st, 1, user_id);
		int rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			hub_db_fail(hub, error_r, "delete user");
			goto fail;
		}
	}
	if (hub_exec(hub, "COMMIT", error_r) < 0)
		goto fail;
	free(ids);
	return hub_exec(hub, "PRAGMA wal_checkpoint(TRUNCATE)", error_r);
fail:
	free(ids);
	sqlite3_exec(hub->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

int hub_user_check_password(struct hub *hub, const struct hub_user *user, const char *password,
                            const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT password_hash FROM users WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user->id);
	int r = -1;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
		const char *err;
		r = vault_password_verify((const char *)sqlite3_column_text(st, 0), password,
		                          strlen(password), &err);
	}
	sqlite3_finalize(st);
	return r == 0 ? 0 : hub_fail(hub, error_r, "wrong password for hub user '%s'", user->name);
}

int hub_user_password_hash(struct hub *hub, const struct hub_user *user,
                           char hash_r[VAULT_PASSWORD_HASH_SIZE], const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT password_hash FROM users WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user->id);
	int r = -1;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	    (size_t)sqlite3_column_bytes(st, 0) < VAULT_PASSWORD_HASH_SIZE) {
		memcpy(hash_r, sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0) + 1);
		r = 0;
	}
	sqlite3_finalize(st);
	return r == 0 ? 0 : hub_fail(hub, error_r, "hub user '%s' has no password", user->name);
}

int hub_user_kek(struct hub *hub, const struct hub_user *user, const char *passphrase,
                 struct vault_kek **kek_r, const char **error_r)
{
	const char *err;
	if (!user->zero_access) {
		if (hub->master == NULL)
			return hub_fail(hub, error_r, "the master key is not loaded");
		if (vault_kek_from_master(hub->master, kek_r, &err) < 0)
			return hub_fail(hub, error_r, "%s", err);
		return 0;
	}
	if (passphrase == NULL)
		return hub_fail(
		    hub, error_r,
		    "%s's credentials are zero-access: they can only be unlocked with "
		    "%s's passphrase (--passphrase-file); the hub alone cannot open them",
		    user->name, user->name);
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT kdf, kek_check FROM users WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user->id);
	int r = -1;
	struct vault_kek *kek = NULL;
	if (sqlite3_step(st) == SQLITE_ROW) {
		r = vault_kek_from_passphrase(passphrase, strlen(passphrase),
		                              sqlite3_column_blob(st, 0),
		                              (size_t)sqlite3_column_bytes(st, 0), &kek, &err);
		if (r == 0 &&
		    vault_kek_check_value_verify(kek, sqlite3_column_blob(st, 1),
		                                 (size_t)sqlite3_column_bytes(st, 1), &err) < 0) {
			err = "wrong passphrase";
			vault_kek_free(&kek);
			r = -1;
		}
	} else {
		err = "user not found";
	}
	sqlite3_finalize(st);
	if (r < 0)
		return hub_fail(hub, error_r, "cannot unlock %s's credentials: %s", user->name,
		                err);
	*kek_r = kek;
	return 0;
}

/* --- audit ---------------------------------------------------------------- */

#define AUDIT_ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* The user's audit head as hub.db records it. */
struct audit_record {
	uint64_t count;
	char head[AUDIT_HASH_HEX_SIZE];    /* 64 "0" when nothing is recorded */
	char pending[AUDIT_HASH_HEX_SIZE]; /* "" when nothing is pending */
	char alarm[512];                   /* "" when no mismatch was found */
};

static int audit_record_get(struct hub *hub, int64_t user_id, struct audit_record *rec,
                            const char **error_r)
{
	sqlite3_stmt *st;
	memset(rec, 0, sizeof(*rec));
	memset(rec->head, '0', AUDIT_HASH_HEX_LEN);
	if (hub_prepare(hub,
	                "SELECT audit_count, audit_head, audit_pending, audit_alarm FROM users "
	                "WHERE id = ?1",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rec->count = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_text(st, 1) != NULL)
			snprintf(rec->head, sizeof(rec->head), "%s",
			         (const char *)sqlite3_column_text(st, 1));
		if (sqlite3_column_text(st, 2) != NULL)
			snprintf(rec->pending, sizeof(rec->pending), "%s",
			         (const char *)sqlite3_column_text(st, 2));
		if (sqlite3_column_text(st, 3) != NULL)
			snprintf(rec->alarm, sizeof(rec->alarm), "%s",
			         (const char *)sqlite3_column_text(st, 3));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return hub_fail(hub, error_r, "no such hub user");
	return hub_db_fail(hub, error_r, "read audit head");
}

/* Record the head (and the entry about to be written, or none). With
 * expect non-NULL only if the record is still *expect (compare and set);
 * returns 1 when it was not. */
static int audit_record_set(struct hub *hub, int64_t user_id, uint64_t count, const char *head,
                            const char *pending, const struct audit_record *expect,
                            const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                expect == NULL
	                    ? "UPDATE users SET audit_count = ?2, audit_head = ?3, "
	                      "audit_pending = ?4 WHERE id = ?1"
	                    : "UPDATE users SET audit_count = ?2, audit_head = ?3, "
	                      "audit_pending = ?4 WHERE id = ?1 AND audit_count = ?5 AND "
	                      "coalesce(audit_head, '" AUDIT_ZERO_HASH "') = ?7 AND "
	                      "audit_pending IS ?6",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)count);
	sqlite3_bind_text(st, 3, head, -1, SQLITE_STATIC);
	if (pending != NULL)
		sqlite3_bind_text(st, 4, pending, -1, SQLITE_STATIC);
	if (expect != NULL) {
		sqlite3_bind_int64(st, 5, (sqlite3_int64)expect->count);
		if (expect->pending[0] != '\0')
			sqlite3_bind_text(st, 6, expect->pending, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 7, expect->head, -1, SQLITE_STATIC);
	}
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return hub_db_fail(hub, error_r, "record audit head");
	return sqlite3_changes(hub->db) == 1 ? 0 : 1;
}

/* Keep the first alarm. */
static int audit_alarm_set(struct hub *hub, int64_t user_id, const char *alarm,
                           const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "UPDATE users SET audit_alarm = coalesce(audit_alarm, ?2) WHERE id = ?1",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	sqlite3_bind_text(st, 2, alarm, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "record audit alarm");
}

static int audit_fail(struct hub *hub, int r, const char *err, const char **error_r)
{
	if (r == AUDIT_BUSY)
		return hub_fail_temporary(hub, error_r, "audit log: %s", err);
	return hub_fail(hub, error_r, "audit log: %s", err);
}

int hub_audit(struct hub *hub, const struct hub_user *user, enum audit_event event,
              int64_t account_id, const struct audit_detail *details, size_t n_details,
              const char **error_r)
{
	char path[4200], account[32] = "";
	const char *err;
	struct audit_record rec;
	if (hub_user_path(hub, user->name, "audit.log", path, sizeof(path)) < 0)
		return hub_fail(hub, error_r, "path too long");
	if (account_id != 0)
		snprintf(account, sizeof(account), "%lld", (long long)account_id);
	struct audit_log *log = NULL;
	int r = audit_open(path, &log, &err);
	if (r == AUDIT_TORN) {
		/* An append cut off before it was synced: removed only when the
		 * entries before it end at the recorded head. */
		if (audit_record_get(hub, user->id, &rec, error_r) < 0)
			return -1;
		r = audit_trim_torn(path, rec.count, rec.head, &err);
		if (r >= 0)
			r = audit_open(path, &log, &err);
	}
	if (r < 0)
		return audit_fail(hub, r, err, error_r);

	/* Under the log's lock: record the head and the coming entry's hash,
	 * write the entry, record it as the head. The log must end where the
	 * hub recorded (or at the entry it announced, if a crash came before
	 * the head update); anything else was changed behind the hub's back,
	 * and continuing the chain after it must not make that look intact:
	 * the first such finding stays in hub.db as an alarm for verify. */
	uint64_t count;
	char head[AUDIT_HASH_HEX_SIZE], next[AUDIT_HASH_HEX_SIZE];
	audit_head(log, &count, head);
	char alarm[512] = "";
	if (audit_record_get(hub, user->id, &rec, error_r) < 0) {
		audit_close(&log);
		return -1;
	}
	bool expected =
	    (count == rec.count && strcmp(head, rec.head) == 0) ||
	    (rec.pending[0] != '\0' && count == rec.count + 1 && strcmp(head, rec.pending) == 0);
	if (!expected) {
		time_t now = time(NULL);
		struct tm tm;
		char when[32];
		gmtime_r(&now, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(alarm, sizeof(alarm),
		         "at %s the log ended at entry %llu (hash %.12s...) but the hub had "
		         "recorded entry %llu (hash %.12s...)",
		         when, (unsigned long long)count, head, (unsigned long long)rec.count,
		         rec.head);
	}
	r = audit_prepare(log, event, account, details, n_details, next, &err);
	if (r < 0) {
		r = hub_fail(hub, error_r, "audit log: %s", err);
	} else if (alarm[0] != '\0' && audit_alarm_set(hub, user->id, alarm, error_r) < 0) {
		r = -1;
	} else if (audit_record_set(hub, user->id, count, head, next, NULL, error_r) < 0) {
		r = -1;
	} else if (audit_write_prepared(log, &err) < 0) {
		r = hub_fail(hub, error_r, "audit log: %s", err);
	} else {
		r = audit_record_set(hub, user->id, count + 1, next, NULL, NULL, error_r) < 0 ? -1
		                                                                              : 0;
	}
	audit_close(&log);
	return r;
}

static int audit_verify_locked(struct hub *hub, const struct hub_user *user, const char *path,
                               uint64_t *count_r, const char **note_r, const char **error_r);

int hub_audit_verify(struct hub *hub, const struct hub_user *user, uint64_t *count_r,
                     const char **note_r, const char **error_r)
{
	char path[4200];
	const char *err;
	*note_r = NULL;
	if (hub_user_path(hub, user->name, "audit.log", path, sizeof(path)) < 0)
		return hub_fail(hub, error_r, "path too long");
	/* Under the writers' lock, so an append in progress (announced in
	 * hub.db, not yet written) is not mistaken for anything. A log with an
	 * incomplete last line cannot be opened for writing; it is checked
	 * without the lock (its trimming takes it), and so is a log this
	 * process may only read (a read-only data directory: nothing here can
	 * append, and recovering or trimming would fail with its own error). */
	struct audit_log *log = NULL;
	if (access(path, F_OK) == 0 && access(path, W_OK) == 0) {
		int r = audit_open(path, &log, &err);
		if (r < 0 && r != AUDIT_TORN)
			return audit_fail(hub, r, err, error_r);
	}
	int ret = audit_verify_locked(hub, user, path, count_r, note_r, error_r);
	audit_close(&log);
	return ret;
}

static int audit_verify_locked(struct hub *hub, const struct hub_user *user, const char *path,
                               uint64_t *count_r, const char **note_r, const char **error_r)
{
	const char *err;
	struct audit_record rec;
	struct audit_state st;
	if (audit_record_get(hub, user->id, &rec, error_r) < 0)
		return -1;
	if (audit_scan(path, &st, &err) < 0)
		return hub_fail(hub, error_r, "%s: %s", path, err);
	if (rec.alarm[0] != '\0')
		return hub_fail(hub, error_r,
		                "%s: changed behind the hub's back before a later entry was "
		                "appended: %s (kept in hub.db, users.audit_alarm, until cleared "
		                "after investigation)",
		                path, rec.alarm);
	if (st.torn && st.count == rec.count && strcmp(st.head, rec.head) == 0) {
		int r = audit_trim_torn(path, rec.count, rec.head, &err);
		if (r < 0)
			return audit_fail(hub, r, err, error_r);
		*note_r = "an incomplete last line (an append cut off before it was synced, so "
		          "never acknowledged) was removed";
	} else if (!st.torn && st.count == rec.count + 1 && rec.pending[0] != '\0' &&
	           strcmp(st.head, rec.pending) == 0) {
		/* The scan checked every entry's own hash and its link to the
		 * entry before; the entry before this one must be the head. */
		struct audit_iter *it;
		struct audit_entry e;
		bool linked = false;
		if (audit_iter_init(path, &it, &err) < 0)
			return hub_fail(hub, error_r, "%s: %s", path, err);
		while (audit_iter_next(it, &e))
			if (e.seq == rec.count + 1)
				linked = strcmp(e.prev, rec.head) == 0;
		if (audit_iter_deinit(&it, &err) < 0)
			return hub_fail(hub, error_r, "%s: %s", path, err);
		if (!linked)
			return hub_fail(hub, error_r,
			                "%s: the entry after the recorded head does not link to "
			                "it (log rewritten)",
			                path);
		int r;
		r = audit_record_set(hub, user->id, st.count, st.head, NULL, &rec, error_r);
		if (r < 0)
			return -1;
		if (r == 0)
			*note_r = "recovered: the last entry was written but the process ended "
			          "before the hub recorded it; it was the entry the hub had "
			          "announced, and is now the recorded head";
	} else if (st.torn || st.count != rec.count || strcmp(st.head, rec.head) != 0) {
		/* Tampering: the verifier names what does not match. */
		if (audit_verify(path, rec.head, rec.count, NULL, &err) < 0)
			return hub_fail(hub, error_r, "%s: %s", path, err);
		return hub_fail(hub, error_r, "%s: the log does not end at the recorded head",
		                path);
	}
	if (count_r != NULL)
		*count_r = st.count;
	return 0;
}

int hub_user_set_password(struct hub *hub, const struct hub_user *user, const char *password,
                          const char *via, const char **error_r)
{
	const char *err;
	char hash[VAULT_PASSWORD_HASH_SIZE];
	if (user->zero_access)
		return hub_fail(hub, error_r,
		                "%s is zero-access: the password is also the passphrase of the "
		                "account keys (hub_user_change_passphrase rewraps them)",
		                user->name);
	if (vault_password_hash(password, strlen(password), hash, &err) < 0)
		return hub_fail(hub, error_r, "%s", err);
	struct audit_detail d[] = {{"via", via}};
	if (hub_audit(hub, user, AUDIT_USER_PASSWORD, 0, d, 1, error_r) < 0)
		return -1;
	sqlite3_stmt *st;
	if (hub_prepare(hub, "UPDATE users SET password_hash = ?1 WHERE id = ?2", &st, error_r) < 0)
		return -1;
	sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, user->id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "change the password");
}
