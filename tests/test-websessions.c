/* Web sessions (src/hub/hub-websessions.c): create, auth, the stored hash,
 * idle and absolute expiry, last_used written at most once a minute, list,
 * revoke (own user only), exists, the audit entries, deletion with the
 * user, and the lease holder check (svc_lease_tick with a web session). */
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "hub/hub.h"
#include "service/svc-lease.h"

#define DAY 86400

static char dir[64];

static int64_t db_int(const char *sql)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/hub.db", dir);
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v = -1;
	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
	CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static bool audit_has(const char *user, const char *needle)
{
	char path[256], line[4096];
	snprintf(path, sizeof(path), "%s/users/%s/audit.log", dir, user);
	FILE *f = fopen(path, "r");
	bool found = false;
	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, needle) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

int main(void)
{
	const char *error;
	bool existed;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-websessions-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	OK(hub_create(dir, NULL, &existed, &error));
	struct hub *hub;
	OK(hub_open(dir, true, &hub, &error));
	CHECK(hub_get_settings(hub)->web_session_days == 30);
	CHECK(hub_get_settings(hub)->web_session_idle_days == 14);
	OK(hub_user_add(hub, "ann", "ann's password", false, NULL, &error));
	OK(hub_user_add(hub, "bob", "bob's password", false, NULL, &error));
	OK(hub_user_add(hub, "zed", "zed's pass phrase", true, "zed's pass phrase", &error));
	struct hub_user ann, bob, zed, u;
	OK(hub_user_get(hub, "ann", &ann, &error));
	OK(hub_user_get(hub, "bob", &bob, &error));
	OK(hub_user_get(hub, "zed", &zed, &error));
	int64_t t0 = time(NULL);

	/* Create: a 43-character base64url token; only a hash is stored. */
	char token[64], token2[64];
	int64_t id, id2;
	OK(hub_web_session_create(hub, &ann, "Mozilla/5.0 (X11)\r\nX: y", "192.0.2.7", t0, token,
	                          &id, &error));
	CHECK(id > 0);
	CHECK(strlen(token) == HUB_WEB_SESSION_TOKEN_LEN);
	CHECK(strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
	      HUB_WEB_SESSION_TOKEN_LEN);
	CHECK(db_int("SELECT count(*) FROM web_sessions") == 1);
	CHECK(db_int("SELECT length(token_hash) FROM web_sessions") == 32);
	CHECK(db_int("SELECT count(*) FROM meta WHERE key = 'schema' AND value = 2") == 1);
	OK(hub_web_session_create(hub, &ann, NULL, NULL, t0, token2, &id2, &error));
	CHECK(id2 != id && strcmp(token, token2) != 0);
	CHECK(audit_has("ann", "\"web.signin\""));
	CHECK(audit_has("ann", "192.0.2.7"));

	/* Auth: the right user and session; control characters of the user
	 * agent were replaced. */
	struct hub_web_session s;
	OK(hub_web_session_auth(hub, token, t0, &u, &s, &error));
	CHECK(u.id == ann.id && strcmp(u.name, "ann") == 0);
	CHECK(s.id == id && s.user_id == ann.id && s.created == t0 && s.last_used == t0);
	CHECK_STR(s.user_agent, "Mozilla/5.0 (X11)??X: y");
	CHECK_STR(s.address, "192.0.2.7");
	CHECK(s.expires == t0 + 14 * DAY); /* the idle end comes first */

	/* Bad tokens: malformed, unknown, the device token form. */
	REFUSED(hub_web_session_auth(hub, "short", t0, &u, &s, &error), "invalid web session");
	char other[64];
	memcpy(other, token, sizeof(other));
	other[0] = other[0] == 'A' ? 'B' : 'A';
	REFUSED(hub_web_session_auth(hub, other, t0, &u, &s, &error), "invalid web session");
	char bad[64];
	memcpy(bad, token, sizeof(bad));
	bad[5] = '/';
	REFUSED(hub_web_session_auth(hub, bad, t0, &u, &s, &error), "invalid web session");

	/* last_used: not written within a minute, written after. */
	OK(hub_web_session_auth(hub, token, t0 + 59, &u, &s, &error));
	CHECK(s.last_used == t0);
	CHECK(db_int("SELECT last_used FROM web_sessions WHERE id = 1") == t0);
	OK(hub_web_session_auth(hub, token, t0 + 60, &u, &s, &error));
	CHECK(s.last_used == t0 + 60);
	CHECK(s.expires == t0 + 60 + 14 * DAY);
	CHECK(db_int("SELECT last_used FROM web_sessions WHERE id = 1") == t0 + 60);

	/* Idle: used every 13 days it lives on; until the absolute end. */
	int64_t t = t0 + 60;
	for (int i = 0; i < 2; i++) {
		t += 13 * DAY;
		OK(hub_web_session_auth(hub, token, t, &u, &s, &error));
	}
	CHECK(s.expires == t0 + 30 * DAY); /* now the absolute end comes first */
	REFUSED(hub_web_session_auth(hub, token, t0 + 30 * DAY, &u, &s, &error), "expired");
	/* An expired session is deleted when seen. */
	CHECK(db_int("SELECT count(*) FROM web_sessions WHERE id = 1") == 0);
	REFUSED(hub_web_session_auth(hub, token, t0, &u, &s, &error), "invalid web session");

	/* Idle end: the second session unused for 14 days. */
	CHECK(hub_web_session_exists(hub, id2, t0 + 14 * DAY - 1, &error) == 1);
	CHECK(hub_web_session_exists(hub, id2, t0 + 14 * DAY, &error) == 0);
	REFUSED(hub_web_session_auth(hub, token2, t0 + 14 * DAY, &u, &s, &error), "expired");
	CHECK(hub_web_session_exists(hub, id2, t0, &error) == 0);

	/* Shorter lifetimes (the settings): 2 days absolute, 1 idle. */
	hub_web_session_lifetime(hub, 2, 1);
	hub_web_session_lifetime(hub, 0, 99999); /* out of range: ignored */
	CHECK(hub_get_settings(hub)->web_session_days == 2);
	CHECK(hub_get_settings(hub)->web_session_idle_days == 1);
	OK(hub_web_session_create(hub, &ann, "a", "::1", t0, token, &id, &error));
	OK(hub_web_session_auth(hub, token, t0 + DAY - 1, &u, &s, &error));
	CHECK(s.expires == t0 + 2 * DAY - 1); /* idle */
	OK(hub_web_session_auth(hub, token, t0 + 2 * DAY - 2, &u, &s, &error));
	CHECK(s.expires == t0 + 2 * DAY); /* absolute */
	REFUSED(hub_web_session_auth(hub, token, t0 + 2 * DAY, &u, &s, &error), "expired");
	hub_web_session_lifetime(hub, 30, 14);

	/* List: newest first, the user's own only, expired ones left out. */
	time_t now = time(NULL);
	OK(hub_web_session_create(hub, &ann, "first", "", now - 10, token, &id, &error));
	OK(hub_web_session_create(hub, &ann, "second", "", now, token2, &id2, &error));
	char tb[64];
	int64_t idb;
	OK(hub_web_session_create(hub, &bob, "bob's", "", now, tb, &idb, &error));
	struct hub_web_session *list;
	size_t n;
	OK(hub_web_session_list(hub, ann.id, &list, &n, &error));
	CHECK(n == 2);
	CHECK(list[0].id == id2 && strcmp(list[0].user_agent, "second") == 0);
	CHECK(list[1].id == id && list[1].created == now - 10);
	free(list);

	/* Revoke: another user's session is "no such session"; the own one
	 * goes (audited), a second revoke finds nothing. */
	CHECK(hub_web_session_revoke(hub, &bob, id, &error) == 1);
	CHECK(hub_web_session_revoke(hub, &ann, id, &error) == 0);
	CHECK(audit_has("ann", "\"web.signout\""));
	CHECK(hub_web_session_revoke(hub, &ann, id, &error) == 1);
	REFUSED(hub_web_session_auth(hub, token, now, &u, &s, &error), "invalid web session");
	OK(hub_web_session_auth(hub, token2, now, &u, &s, &error));
	CHECK(hub_web_session_exists(hub, id2, now, &error) == 1);
	CHECK(hub_web_session_exists(hub, id, now, &error) == 0);

	/* A lease held by a web session (holder -id) lives while the session
	 * does, and is wiped once it is revoked. */
	pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
	struct svc_leases *l = svc_leases_create(hub, &hub_lock);
	CHECK(l != NULL);
	char tz[64], err[512];
	int64_t idz;
	time_t until;
	OK(hub_web_session_create(hub, &zed, "z", "", now, tz, &idz, &error));
	CHECK(svc_lease_signin(l, &zed, "zed's pass phrase", -idz, now, 600, &until, err,
	                       sizeof(err)) == 1);
	svc_lease_tick(l, now + 1);
	CHECK(svc_lease_held(l, zed.id, NULL));
	CHECK(hub_web_session_revoke(hub, &zed, idz, &error) == 0);
	svc_lease_tick(l, now + 2);
	CHECK(!svc_lease_held(l, zed.id, NULL));
	svc_leases_free(&l);

	/* Deleting a user deletes their sessions. */
	OK(hub_user_delete(hub, ann.id, &error));
	CHECK(db_int("SELECT count(*) FROM web_sessions WHERE user_id = 1") == 0);
	CHECK(db_int("SELECT count(*) FROM web_sessions") == 1); /* bob's */
	REFUSED(hub_web_session_auth(hub, token2, now, &u, &s, &error), "invalid web session");
	OK(hub_web_session_auth(hub, tb, now, &u, &s, &error));
	CHECK(strcmp(u.name, "bob") == 0);

	hub_close(&hub);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	TEST_DONE("websessions");
}
