/* Devices and their bearer tokens. */
#include "hub-private.h"

#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void token_hash(const char *token, unsigned char out[32])
{
	unsigned int n = 32;
	EVP_Digest(token, strlen(token), out, &n, EVP_sha256(), NULL);
}

static bool valid_device_name(const char *name)
{
	size_t len = strlen(name);
	if (len < 1 || len > 64)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

int hub_device_add(struct hub *hub, const struct hub_user *user, const char *name,
                   char token_r[HUB_DEVICE_TOKEN_SIZE], int64_t *device_id_r, const char **error_r)
{
	if (!valid_device_name(name))
		return hub_fail(hub, error_r, "invalid device name: use 1-64 of A-Z a-z 0-9 . _ -");
	unsigned char raw[32], hash[32];
	char token[HUB_DEVICE_TOKEN_SIZE];
	randombytes_buf(raw, sizeof(raw));
	memcpy(token, "mk_", 3);
	sodium_bin2base64(token + 3, sizeof(token) - 3, raw, sizeof(raw),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	token_hash(token, hash);
	sqlite3_stmt *st;
	if (hub_prepare(
	        hub,
	        "INSERT INTO devices(user_id, name, token_hash, created) VALUES (?1, ?2, ?3, ?4)",
	        &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user->id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, hash, sizeof(hash), SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, time(NULL));
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_CONSTRAINT) {
		sodium_memzero(token, sizeof(token));
		return hub_fail(hub, error_r, "%s already has a device named %s", user->name, name);
	}
	if (rc != SQLITE_DONE) {
		sodium_memzero(token, sizeof(token));
		return hub_db_fail(hub, error_r, "add device");
	}
	*device_id_r = sqlite3_last_insert_rowid(hub->db);
	memcpy(token_r, token, sizeof(token));
	sodium_memzero(token, sizeof(token));
	char id[32];
	snprintf(id, sizeof(id), "%lld", (long long)*device_id_r);
	struct audit_detail d[] = {{"device", name}, {"device_id", id}};
	return hub_audit(hub, user, AUDIT_DEVICE_ADDED, 0, d, 2, error_r);
}

int hub_device_list(struct hub *hub, int64_t user_id, struct hub_device **devices_r,
                    size_t *count_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(
	        hub,
	        "SELECT id, user_id, name, created, last_used FROM devices WHERE user_id = ?1 "
	        "ORDER BY name",
	        &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user_id);
	struct hub_device *d = NULL;
	size_t n = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct hub_device *nd = realloc(d, (n + 1) * sizeof(*d));
		if (nd == NULL) {
			rc = SQLITE_NOMEM;
			break;
		}
		d = nd;
		memset(&d[n], 0, sizeof(d[n]));
		d[n].id = sqlite3_column_int64(st, 0);
		d[n].user_id = sqlite3_column_int64(st, 1);
		snprintf(d[n].name, sizeof(d[n].name), "%s",
		         (const char *)sqlite3_column_text(st, 2));
		d[n].created = sqlite3_column_int64(st, 3);
		d[n].last_used = sqlite3_column_int64(st, 4);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(d);
		return hub_db_fail(hub, error_r, "list devices");
	}
	*devices_r = d;
	*count_r = n;
	return 0;
}

int hub_device_revoke(struct hub *hub, const struct hub_user *user, const char *name,
                      int64_t *device_id_r, const char **error_r)
{
	sqlite3_stmt *st;
	int64_t id = 0;
	if (hub_prepare(hub, "SELECT id FROM devices WHERE user_id = ?1 AND name = ?2", &st,
	                error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, user->id);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (id == 0)
		return hub_fail(hub, error_r, "%s has no device named %s", user->name,
		                valid_device_name(name) ? name : "?");
	if (hub_prepare(hub, "DELETE FROM devices WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return hub_db_fail(hub, error_r, "revoke device");
	*device_id_r = id;
	char idtext[32];
	snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
	struct audit_detail d[] = {{"device", name}, {"device_id", idtext}};
	return hub_audit(hub, user, AUDIT_DEVICE_REVOKED, 0, d, 2, error_r);
}

int hub_device_auth(struct hub *hub, const char *token, struct hub_user *user_r,
                    struct hub_device *device_r, const char **error_r)
{
	unsigned char hash[32];
	if (strncmp(token, "mk_", 3) != 0 || strlen(token) != HUB_DEVICE_TOKEN_SIZE - 1)
		return hub_fail(hub, error_r, "invalid token");
	token_hash(token, hash);
	sqlite3_stmt *st;
	if (hub_prepare(hub,
	                "SELECT d.id, d.user_id, d.name, d.created, d.last_used, u.name "
	                "FROM devices d JOIN users u ON u.id = d.user_id WHERE d.token_hash = ?1",
	                &st, error_r) < 0)
		return -1;
	sqlite3_bind_blob(st, 1, hash, sizeof(hash), SQLITE_STATIC);
	int rc = sqlite3_step(st);
	char user[65] = "";
	if (rc == SQLITE_ROW) {
		memset(device_r, 0, sizeof(*device_r));
		device_r->id = sqlite3_column_int64(st, 0);
		device_r->user_id = sqlite3_column_int64(st, 1);
		snprintf(device_r->name, sizeof(device_r->name), "%s",
		         (const char *)sqlite3_column_text(st, 2));
		device_r->created = sqlite3_column_int64(st, 3);
		device_r->last_used = sqlite3_column_int64(st, 4);
		snprintf(user, sizeof(user), "%s", (const char *)sqlite3_column_text(st, 5));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return hub_fail(hub, error_r, "invalid token");
	return hub_user_get(hub, user, user_r, error_r);
}

int hub_device_used(struct hub *hub, const struct hub_device *device, int64_t now,
                    const char **error_r)
{
	if (now - device->last_used < HUB_ACTIVITY_RESOLUTION)
		return 0;
	sqlite3_stmt *st;
	if (hub_prepare(hub, "UPDATE devices SET last_used = ?2 WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, device->id);
	sqlite3_bind_int64(st, 2, now);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "record device use");
}

int hub_device_exists(struct hub *hub, int64_t device_id, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "SELECT 1 FROM devices WHERE id = ?1", &st, error_r) < 0)
		return -1;
	sqlite3_bind_int64(st, 1, device_id);
	int rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : hub_db_fail(hub, error_r, "look up device");
}
