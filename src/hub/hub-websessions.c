/* Web sessions: the web app's cookie sign-ins (hub.h). */
#include "hub-private.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_TOUCH_INTERVAL 60 /* seconds between two writes of last_used */
#define DAY 86400

/* The hash key: a fixed domain string, so that the hash of a web session
 * token is never the hash of anything else. (The token is 256 random bits:
 * no secret key is needed to make the stored hash useless to a reader.) */
static const unsigned char hash_key[crypto_generichash_KEYBYTES] = "mailkeep web session token v1";

static void token_hash(const char *token, unsigned char out[32])
{
	crypto_generichash(out, 32, (const unsigned char *)token, strlen(token), hash_key,
	                   sizeof(hash_key));
}

static bool valid_token(const char *token)
{
	if (strlen(token) != HUB_WEB_SESSION_TOKEN_LEN)
		return false;
	for (const char *p = token; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
	return true;
}

/* Copy text into dst (size bytes), control characters and bytes outside
 * ASCII replaced with '?', cut to fit. */
static void copy_printable(char *dst, size_t size, const char *text)
{
	size_t o = 0;
	for (const char *p = text != NULL ? text : ""; *p != '\0' && o + 1 < size; p++)
		dst[o++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	dst[o] = '\0';
}

void hub_web_session_lifetime(struct hub *hub, unsigned days, unsigned idle_days)
{
	if (days >= 1 && days <= 3650)
		hub->set.web_session_days = days;
	if (idle_days >= 1 && idle_days <= 3650)
		hub->set.web_session_idle_days = idle_days;
}

/* When a session ends if not used again. */
static int64_t effective_expiry(const struct hub *hub, int64_t expires, int64_t last_used)
{
	int64_t idle = last_used + (int64_t)hub->set.web_session_idle_days * DAY;
	return idle < expires ? idle : expires;
}

static int delete_expired(struct hub *hub, int64_t now, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "DELETE FROM web_sessions WHERE expires <= ?1 OR last_used <= ?2", &st,
	                error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, now);
	sqlite3_bind_int64(st, 2, now - (int64_t)hub->set.web_session_idle_days * DAY);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "delete expired web sessions");
}

int hub_web_session_create(struct hub *hub, const struct hub_user *user, const char *user_agent,
                           const char *address, int64_t now, char token_r[64], int64_t *id_r,
                           const char **error_r)
{
	unsigned char raw[32], hash[32];
	char token[64];
	struct hub_web_session s;
	if (delete_expired(hub, now, error_r) < 0)
		return -1;
	copy_printable(s.user_agent, sizeof(s.user_agent), user_agent);
	copy_printable(s.address, sizeof(s.address), address);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(token, sizeof(token), raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_hash(token, hash);
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "INSERT INTO web_sessions(user_id, token_hash, created, last_used, expires,"
	                " user_agent, address) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
	                &st, error_r) < 0) {
		sodium_memzero(token, sizeof(token));
		return -1;
	}
	sqlite3_bind_int64(st, 1, user->id);
	sqlite3_bind_blob(st, 2, hash, sizeof(hash), SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, now);
	sqlite3_bind_int64(st, 4, now + (int64_t)hub->set.web_session_days * DAY);
	sqlite3_bind_text(st, 5, s.user_agent, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, s.address, -1, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		sodium_memzero(token, sizeof(token));
		return hub_db_fail(hub, error_r, "add web session");
	}
	int64_t id = sqlite3_last_insert_rowid(hub->db);
	char idtext[32], agent[AUDIT_MAX_VALUE_SIZE];
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	copy_printable(agent, sizeof(agent), s.user_agent);
	struct audit_detail d[] = {{"session", idtext}, {"address", s.address}, {"agent", agent}};
	if (hub_audit(hub, user, AUDIT_WEB_SIGNIN, 0, d, 3, error_r) < 0) {
		/* Not audited: not made. */
		if (hub_prepare(hub, "DELETE FROM web_sessions WHERE id = ?1", &st, error_r) == 0) {
			sqlite3_bind_int64(st, 1, id);
			sqlite3_step(st);
			sqlite3_finalize(st);
		}
		sodium_memzero(token, sizeof(token));
		return -1;
	}
	memcpy(token_r, token, HUB_WEB_SESSION_TOKEN_LEN + 1);
	sodium_memzero(token, sizeof(token));
	*id_r = id;
	return 0;
}

/* A row of SESSION_COLUMNS; *absolute_r gets the row's absolute end. */
static void row_read(struct hub *hub, sqlite3_stmt *st, struct hub_web_session *s,
                     int64_t *absolute_r)
{
	memset(s, 0, sizeof(*s));
	s->id = sqlite3_column_int64(st, 0);
	s->user_id = sqlite3_column_int64(st, 1);
	s->created = sqlite3_column_int64(st, 2);
	s->last_used = sqlite3_column_int64(st, 3);
	*absolute_r = sqlite3_column_int64(st, 4);
	s->expires = effective_expiry(hub, *absolute_r, s->last_used);
	copy_printable(s->user_agent, sizeof(s->user_agent),
	               (const char *)sqlite3_column_text(st, 5));
	copy_printable(s->address, sizeof(s->address), (const char *)sqlite3_column_text(st, 6));
}

#define SESSION_COLUMNS                                                                            \
	"s.id, s.user_id, s.created, s.last_used, s.expires, s.user_agent, s.address"

int hub_web_session_auth(struct hub *hub, const char *token, int64_t now, struct hub_user *user_r,
                         struct hub_web_session *s_r, const char **error_r)
{
	unsigned char hash[32];
	if (token == NULL || !valid_token(token))
		return hub_fail(hub, error_r, "invalid web session");
	token_hash(token, hash);
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "SELECT " SESSION_COLUMNS ", u.name FROM web_sessions s "
	                "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
	int rc = sqlite3_step(st);
	struct hub_web_session s;
	int64_t absolute = 0;
	char user[65] = "";
	if (rc == SQLITE_ROW) {
		row_read(hub, st, &s, &absolute);
		snprintf(user, sizeof(user), "%s", (const char *)sqlite3_column_text(st, 7));
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return hub_fail(hub, error_r, "invalid web session");
	if (rc != SQLITE_ROW)
		return hub_db_fail(hub, error_r, "look up web session");
	if (now >= s.expires) {
		if (hub_prepare(hub, "DELETE FROM web_sessions WHERE id = ?1", &st, error_r) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, s.id);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return hub_db_fail(hub, error_r, "delete expired web session");
		return hub_fail(hub, error_r, "web session expired");
	}
	if (hub_user_get(hub, user, user_r, error_r) < 0)
		return -1;
	if (now - s.last_used >= MIN_TOUCH_INTERVAL) {
		if (hub_prepare(hub, "UPDATE web_sessions SET last_used = ?2 WHERE id = ?1", &st,
		                error_r) < 0)
			return -1;
		sqlite3_bind_int64(st, 1, s.id);
		sqlite3_bind_int64(st, 2, now);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return hub_db_fail(hub, error_r, "record web session use");
		s.last_used = now;
		s.expires = effective_expiry(hub, absolute, now);
	}
	*s_r = s;
	return 0;
}

int hub_web_session_list(struct hub *hub, int64_t user_id, struct hub_web_session **r, size_t *n_r,
                         const char **error_r)
{
	sqlite3_stmt *st;
	int64_t now = time(NULL);
	if (hub_prepare(hub,
	                "SELECT " SESSION_COLUMNS " FROM web_sessions s WHERE s.user_id = ?1 "
	                "ORDER BY s.created DESC, s.id DESC",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	struct hub_web_session *list = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hub_web_session s;
		int64_t absolute;
		row_read(hub, st, &s, &absolute);
		if (s.expires <= now)
			continue;
		struct hub_web_session *grown = realloc(list, (n + 1) * sizeof(*list));
		if (grown == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		list = grown;
		list[n++] = s;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		return rc == SQLITE_NOMEM ? hub_fail(hub, error_r, "out of memory")
		                          : hub_db_fail(hub, error_r, "list web sessions");
	}
	*r = list;
	*n_r = n;
	return 0;
}

int hub_web_session_revoke(struct hub *hub, const struct hub_user *user, int64_t id,
                           const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "DELETE FROM web_sessions WHERE id = ?1 AND user_id = ?2", &st,
	                error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, user->id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return hub_db_fail(hub, error_r, "revoke web session");
	if (sqlite3_changes(hub->db) == 0)
		return 1;
	char idtext[32];
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	struct audit_detail d[] = {{"session", idtext}};
	return hub_audit(hub, user, AUDIT_WEB_SIGNOUT, 0, d, 1, error_r) < 0 ? -1 : 0;
}

int hub_web_session_exists(struct hub *hub, int64_t id, int64_t now, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT expires, last_used FROM web_sessions WHERE id = ?1", &st,
	                error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	int ret = 0;
	if (rc == SQLITE_ROW)
		ret = now < effective_expiry(hub, sqlite3_column_int64(st, 0),
		                             sqlite3_column_int64(st, 1))
		          ? 1
		          : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return hub_db_fail(hub, error_r, "look up web session");
	return ret;
}
