/* The hub's records in DIR/hub.db. See hub.h. */
#include "hub-private.h"
#include "hub-settings.h"
#include "lib/crashpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HUB_SCHEMA_VERSION 2

static const char hub_schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS users("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT,"
    " zero_access INTEGER NOT NULL, kdf BLOB, kek_check BLOB,"
    " created INTEGER NOT NULL, last_active INTEGER NOT NULL,"
    " warned_days INTEGER NOT NULL DEFAULT 0,"
    " audit_count INTEGER NOT NULL DEFAULT 0, audit_head TEXT, audit_pending TEXT,"
    " audit_alarm TEXT);"
    "CREATE TABLE IF NOT EXISTS accounts("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL REFERENCES users(id),"
    " imap_url TEXT NOT NULL, smtp_url TEXT, login TEXT NOT NULL, ca_file TEXT,"
    " created INTEGER NOT NULL, data_key BLOB NOT NULL, key_version INTEGER NOT NULL,"
    " secret_version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS secrets("
    " account_id INTEGER NOT NULL REFERENCES accounts(id), kind TEXT NOT NULL,"
    " blob BLOB NOT NULL, legacy_tag BLOB, PRIMARY KEY(account_id, kind));"
    "CREATE TABLE IF NOT EXISTS consents("
    " id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, account_id INTEGER NOT NULL,"
    " time INTEGER NOT NULL, disclosure_id TEXT NOT NULL, tool TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS receipts("
    " id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, time INTEGER NOT NULL,"
    " text TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS devices("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL REFERENCES users(id),"
    " name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE, created INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL DEFAULT 0, UNIQUE(user_id, name));"
    /* Version 2: the web app's cookie sessions (hub-websessions.c). */
    "CREATE TABLE IF NOT EXISTS web_sessions("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    " token_hash BLOB NOT NULL UNIQUE, created INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL, expires INTEGER NOT NULL,"
    " user_agent TEXT NOT NULL DEFAULT '', address TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions(user_id);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', 2);"
    "UPDATE meta SET value = 2 WHERE key = 'schema' AND value < 2;";

int hub_fail(struct hub *hub, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hub->error, sizeof(hub->error), fmt, ap);
	va_end(ap);
	hub->error_temporary = false;
	*error_r = hub->error;
	return -1;
}

int hub_fail_temporary(struct hub *hub, const char **error_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(hub->error, sizeof(hub->error), fmt, ap);
	va_end(ap);
	hub->error_temporary = true;
	*error_r = hub->error;
	return -1;
}

bool hub_error_is_temporary(const struct hub *hub)
{
	return hub->error_temporary;
}

int hub_db_fail(struct hub *hub, const char **error_r, const char *what)
{
	int code = sqlite3_errcode(hub->db);
	if (code == SQLITE_BUSY || code == SQLITE_LOCKED)
		return hub_fail_temporary(hub, error_r, "hub database: %s: %s", what,
		                          sqlite3_errmsg(hub->db));
	bool readonly = (sqlite3_extended_errcode(hub->db) & 0xff) == SQLITE_READONLY;
	return hub_fail(hub, error_r, "hub database: %s: %s%s%s", what, sqlite3_errmsg(hub->db),
	                readonly ? ": this process may only read " : "", readonly ? hub->dir : "");
}

int hub_prepare(struct hub *hub, const char *sql, sqlite3_stmt **st_r, const char **error_r)
{
	if (sqlite3_prepare_v2(hub->db, sql, -1, st_r, NULL) != SQLITE_OK)
		return hub_db_fail(hub, error_r, "prepare");
	return 0;
}

int hub_exec(struct hub *hub, const char *sql, const char **error_r)
{
	if (sqlite3_exec(hub->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return hub_db_fail(hub, error_r, sql);
	return 0;
}

bool hub_valid_user_name(const char *name)
{
	size_t len = strlen(name);
	if (len < 1 || len > 64 || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
		      *p == '_' || *p == '-'))
			return false;
	return true;
}

const char *hub_data_dir(const struct hub *hub)
{
	return hub->dir;
}

const struct hub_settings *hub_get_settings(const struct hub *hub)
{
	return &hub->set;
}

int hub_data_version(struct hub *hub, int64_t *version_r, const char **error_r)
{
	sqlite3_stmt *st;
	if (hub_prepare(hub, "PRAGMA data_version", &st, error_r) < 0)
		return -1;
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : hub_db_fail(hub, error_r, "read data_version");
}

int hub_user_path(const struct hub *hub, const char *user, const char *file, char *path_r,
                  size_t size)
{
	int n = file != NULL ? snprintf(path_r, size, "%s/users/%s/%s", hub->dir, user, file)
	                     : snprintf(path_r, size, "%s/users/%s", hub->dir, user);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* --- configuration ------------------------------------------------------ */

static void settings_default(struct hub_settings *set, const char *dir)
{
	memset(set, 0, sizeof(*set));
	set->inactive_purge_days = 365;
	set->lease_seconds = HUB_LEASE_SECONDS_DEFAULT;
	set->web_session_days = HUB_WEB_SESSION_DAYS;
	set->web_session_idle_days = HUB_WEB_SESSION_IDLE_DAYS;
	snprintf(set->master_key, sizeof(set->master_key), "%s/master.key", dir);
}

const struct hub_oauth_provider *hub_oauth_provider(const struct hub *hub, const char *name)
{
	for (size_t i = 0; i < hub->set.n_oauth; i++)
		if (strcmp(hub->set.oauth[i].name, name) == 0)
			return &hub->set.oauth[i];
	return NULL;
}

/* "NAME.FIELD = value" of an oauth.* key (see hub.h). */
static int settings_oauth(struct hub *hub, const char *path, unsigned lineno, const char *key,
                          const char *value, size_t vlen, const char **error_r)
{
	const char *dot = strchr(key, '.');
	size_t nlen = dot != NULL ? (size_t)(dot - key) : 0;
	if (nlen == 0 || nlen >= sizeof(hub->set.oauth[0].name) ||
	    strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_-") != nlen)
		return hub_fail(hub, error_r,
		                "%s:%u: expected oauth.PROVIDER.FIELD with PROVIDER of [a-z0-9_-]",
		                path, lineno);
	struct hub_oauth_provider *p = NULL;
	for (size_t i = 0; i < hub->set.n_oauth; i++)
		if (strncmp(hub->set.oauth[i].name, key, nlen) == 0 &&
		    hub->set.oauth[i].name[nlen] == '\0')
			p = &hub->set.oauth[i];
	if (p == NULL) {
		if (hub->set.n_oauth == HUB_OAUTH_PROVIDERS_MAX)
			return hub_fail(hub, error_r, "%s:%u: more than %d OAuth providers", path,
			                lineno, HUB_OAUTH_PROVIDERS_MAX);
		p = &hub->set.oauth[hub->set.n_oauth++];
		memcpy(p->name, key, nlen);
		p->name[nlen] = '\0';
	}
	const char *field = dot + 1;
	struct {
		const char *name;
		char *dst;
		size_t size;
	} fields[] = {
	    {"client_id", p->client_id, sizeof(p->client_id)},
	    {"client_secret", p->client_secret, sizeof(p->client_secret)},
	    {"token_url", p->token_url, sizeof(p->token_url)},
	    {"authorization_url", p->authorization_url, sizeof(p->authorization_url)},
	    {"device_url", p->device_url, sizeof(p->device_url)},
	    {"revocation_url", p->revocation_url, sizeof(p->revocation_url)},
	    {"scopes", p->scopes, sizeof(p->scopes)},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (strcmp(field, fields[i].name) != 0)
			continue;
		if (vlen >= fields[i].size)
			return hub_fail(hub, error_r, "%s:%u: oauth.%s.%s is too long", path,
			                lineno, p->name, field);
		memcpy(fields[i].dst, value, vlen + 1);
		return 0;
	}
	return hub_fail(hub, error_r,
	                "%s:%u: unknown OAuth setting '%s' (client_id, "
	                "client_secret, token_url, authorization_url, device_url, "
	                "revocation_url, scopes)",
	                path, lineno, field);
}

/* DIR/mailkeep.conf: "key = value" lines, '#' comments. Unknown keys and
 * bad values are errors naming the line. */
static int settings_read(struct hub *hub, const char **error_r)
{
	char path[PATH_MAX], line[4200];
	settings_default(&hub->set, hub->dir);
	snprintf(path, sizeof(path), "%s/mailkeep.conf", hub->dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return errno == ENOENT ? 0 : hub_fail(hub, error_r, "cannot read %s: %m", path);
	unsigned lineno = 0;
	int ret = 0;
	while (ret == 0 && fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		char *p = line + strspn(line, " \t");
		if (*p == '#' || *p == '\0')
			continue;
		char *eq = strchr(p, '=');
		if (eq == NULL) {
			ret = hub_fail(hub, error_r, "%s:%u: expected 'key = value'", path, lineno);
			break;
		}
		char *key_end = eq;
		while (key_end > p && (key_end[-1] == ' ' || key_end[-1] == '\t'))
			key_end--;
		*key_end = '\0';
		char *value = eq + 1 + strspn(eq + 1, " \t");
		size_t vlen = strlen(value);
		while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
			value[--vlen] = '\0';
		if (strcmp(p, "inactive_purge_days") == 0) {
			char *end;
			errno = 0;
			unsigned long days = strtoul(value, &end, 10);
			if (errno != 0 || *end != '\0' || value[0] == '\0' || value[0] == '-' ||
			    days < 8 || days > 36500)
				ret = hub_fail(hub, error_r,
				               "%s:%u: inactive_purge_days must be 8..36500 days",
				               path, lineno);
			else
				hub->set.inactive_purge_days = (unsigned)days;
		} else if (strcmp(p, "lease_seconds") == 0) {
			char *end;
			errno = 0;
			unsigned long secs = strtoul(value, &end, 10);
			if (errno != 0 || *end != '\0' || value[0] == '\0' || value[0] == '-' ||
			    secs < HUB_LEASE_SECONDS_MIN || secs > HUB_LEASE_SECONDS_MAX)
				ret = hub_fail(hub, error_r, "%s:%u: lease_seconds must be %u..%u",
				               path, lineno, HUB_LEASE_SECONDS_MIN,
				               HUB_LEASE_SECONDS_MAX);
			else
				hub->set.lease_seconds = (unsigned)secs;
		} else if (strcmp(p, "master_key") == 0 && vlen > 0 &&
		           vlen < sizeof(hub->set.master_key)) {
			memcpy(hub->set.master_key, value, vlen + 1);
		} else if (strncmp(p, "oauth.", 6) == 0) {
			ret = settings_oauth(hub, path, lineno, p + 6, value, vlen, error_r);
		} else if (strcmp(p, "metrics_token") == 0 && vlen >= 16 &&
		           vlen < sizeof(hub->set.metrics_token)) {
			memcpy(hub->set.metrics_token, value, vlen + 1);
		} else if (strcmp(p, "master_key_credential") == 0 &&
		           vlen < sizeof(hub->set.master_key_credential)) {
			memcpy(hub->set.master_key_credential, value, vlen + 1);
		} else if (hub_serve_setting_known(p)) {
			/* serve's, read and checked by hub-settings.c */
		} else {
			ret = hub_fail(hub, error_r,
			               "%s:%u: unknown setting or bad value '%s' (the settings and "
			               "their values: man mailkeep, FILES)",
			               path, lineno, p);
		}
	}
	fclose(f);
	return ret;
}

/* --- open / create ------------------------------------------------------- */

static bool column_exists(struct hub *hub, const char *table, const char *column)
{
	sqlite3_stmt *st;
	bool found = false;
	if (sqlite3_prepare_v2(hub->db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1,
	                       &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return found;
}

/* Columns added since a database was made are added in place. */
static int schema_upgrade(struct hub *hub, const char *path, const char **error_r)
{
	static const struct {
		const char *table, *column, *sql;
	} added[] = {
	    {"users", "audit_pending", "ALTER TABLE users ADD COLUMN audit_pending TEXT"},
	    {"users", "audit_alarm", "ALTER TABLE users ADD COLUMN audit_alarm TEXT"},
	    {"secrets", "legacy_tag", "ALTER TABLE secrets ADD COLUMN legacy_tag BLOB"},
	    /* OAuth 2 accounts (docs/oauth.md). */
	    {"accounts", "auth",
	     "ALTER TABLE accounts ADD COLUMN auth TEXT NOT NULL DEFAULT 'password'"},
	    {"accounts", "oauth_provider", "ALTER TABLE accounts ADD COLUMN oauth_provider TEXT"},
	    {"accounts", "oauth_token_url", "ALTER TABLE accounts ADD COLUMN oauth_token_url TEXT"},
	    {"accounts", "oauth_client_id", "ALTER TABLE accounts ADD COLUMN oauth_client_id TEXT"},
	    {"accounts", "oauth_scopes", "ALTER TABLE accounts ADD COLUMN oauth_scopes TEXT"},
	    {"accounts", "needs_signin",
	     "ALTER TABLE accounts ADD COLUMN needs_signin INTEGER NOT NULL DEFAULT 0"},
	};
	for (size_t i = 0; i < sizeof(added) / sizeof(added[0]); i++) {
		if (column_exists(hub, added[i].table, added[i].column))
			continue;
		char *msg = NULL;
		if (sqlite3_exec(hub->db, added[i].sql, NULL, NULL, &msg) != SQLITE_OK &&
		    !column_exists(hub, added[i].table, added[i].column)) {
			hub_fail(hub, error_r, "%s: cannot upgrade: %s", path,
			         msg != NULL ? msg : "unknown error");
			sqlite3_free(msg);
			return -1;
		}
		sqlite3_free(msg);
	}
	return 0;
}

/* "file:" URI of path for SQLite with query (percent-encoding what a URI
 * path cannot carry). Returns 0, or -1 if it does not fit. */
static int db_uri(const char *path, const char *query, char *out, size_t size)
{
	size_t o = 0;
	int n = snprintf(out, size, "file:");
	if (n < 0 || (size_t)n >= size)
		return -1;
	o = (size_t)n;
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
		if (o + 4 >= size)
			return -1;
		if (*p == '?' || *p == '#' || *p == '%' || *p < 0x21 || *p >= 0x7f)
			o += (size_t)snprintf(out + o, size - o, "%%%02X", *p);
		else
			out[o++] = (char)*p;
	}
	n = snprintf(out + o, size - o, "?%s", query);
	return n < 0 || (size_t)n >= size - o ? -1 : 0;
}

/* A data directory this process may read but not write (a read-only mount,
 * another user's backup copy): hub.db is opened read-only, so commands
 * that only read (user list, account list, audit) work, and the first
 * write fails with SQLite's "attempt to write a readonly database". In WAL
 * mode SQLite needs the -shm file even to read; where it cannot be made,
 * the database is opened as immutable (no process can write it here
 * either). */
static int db_open_readonly(struct hub *hub, const char *path, const char **error_r)
{
	static const char *const queries[] = {"mode=ro", "mode=ro&immutable=1"};
	char uri[PATH_MAX * 3 + 64];
	for (size_t i = 0; i < 2; i++) {
		if (db_uri(path, queries[i], uri, sizeof(uri)) < 0)
			return hub_fail(hub, error_r, "path too long: %s", path);
		if (sqlite3_open_v2(uri, &hub->db,
		                    SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
		                    NULL) == SQLITE_OK &&
		    sqlite3_exec(hub->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) ==
		        SQLITE_OK) {
			sqlite3_busy_timeout(hub->db, 30000);
			sqlite3_exec(hub->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
			return 0;
		}
		sqlite3_close_v2(hub->db);
		hub->db = NULL;
	}
	struct stat st;
	if (stat(path, &st) == 0 && st.st_uid != geteuid()) {
		struct passwd *pw = getpwuid(st.st_uid);
		return hub_fail(
		    hub, error_r,
		    "cannot open %s: it belongs to user %s%s%u and this process runs as "
		    "uid %u: run mailkeep as its owner",
		    path, pw != NULL ? pw->pw_name : "", pw != NULL ? ", uid " : "uid ",
		    (unsigned)st.st_uid, (unsigned)geteuid());
	}
	return hub_fail(hub, error_r, "cannot open %s read-only", path);
}

/* False if path exists and this process may not write it. */
static bool may_write(const char *path)
{
	return access(path, W_OK) == 0 || (errno != EACCES && errno != EROFS && errno != EPERM);
}

static int db_open(struct hub *hub, const char **error_r)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/hub.db", hub->dir);
	if (!may_write(hub->dir) || !may_write(path))
		return db_open_readonly(hub, path, error_r);
	/* Only a new file is created here (0600): closing a descriptor of an
	 * open database would drop the POSIX locks of this process's other
	 * connections to it (see store_open). */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST)
		return hub_fail(hub, error_r, "cannot open %s: %m", path);
	if (fd >= 0)
		close(fd);
	if (sqlite3_open_v2(path, &hub->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK)
		return hub_fail(hub, error_r, "cannot open %s", path);
	sqlite3_busy_timeout(hub->db, 30000);
	char *msg = NULL;
	if (sqlite3_exec(hub->db,
	                 "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	                 "PRAGMA secure_delete = ON; PRAGMA foreign_keys = ON;",
	                 NULL, NULL, &msg) != SQLITE_OK ||
	    sqlite3_exec(hub->db, hub_schema, NULL, NULL, &msg) != SQLITE_OK) {
		hub_fail(hub, error_r, "%s is not a usable hub database: %s", path,
		         msg != NULL ? msg : "unknown error");
		sqlite3_free(msg);
		return -1;
	}
	if (schema_upgrade(hub, path, error_r) < 0)
		return -1;
	crashpoint_watch_db(hub->db, 1000);
	return 0;
}

static int meta_get_blob(struct hub *hub, const char *key, unsigned char *buf, size_t size,
                         size_t *len_r)
{
	sqlite3_stmt *st;
	int found = 0;
	if (sqlite3_prepare_v2(hub->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		if (n <= size) {
			memcpy(buf, sqlite3_column_blob(st, 0), n);
			*len_r = n;
			found = 1;
		}
	}
	sqlite3_finalize(st);
	return found;
}

static int load_master(struct hub *hub, const char **error_r)
{
	const char *err;
	/* The credential when systemd started us (the service); a command run
	 * by hand as the service's user has no $CREDENTIALS_DIRECTORY and uses
	 * the master_key file (checked against hub.db all the same). */
	const char *creds = secure_getenv("CREDENTIALS_DIRECTORY");
	bool by_hand =
	    hub->set.master_key_credential[0] != '\0' && (creds == NULL || *creds == '\0');
	int r =
	    hub->set.master_key_credential[0] != '\0' && !by_hand
	        ? vault_master_load_credential(hub->set.master_key_credential, &hub->master, &err)
	        : vault_master_load(hub->set.master_key, &hub->master, &err);
	if (r < 0)
		return hub_fail(
		    hub, error_r, "%s; the hub will not start without its master key%s", err,
		    by_hand ? " (master_key_credential is set but $CREDENTIALS_DIRECTORY "
		              "is not: outside the systemd unit the master_key file is "
		              "used)"
		            : "");
	unsigned char check[VAULT_CHECK_VALUE_SIZE];
	size_t len = 0;
	if (meta_get_blob(hub, "master_check", check, sizeof(check), &len) != 1)
		return hub_fail(hub, error_r, "hub database has no master key check value");
	if (vault_master_check_value_verify(hub->master, check, len, &err) < 0)
		return hub_fail(hub, error_r, "%s (key file %s)", err, hub->set.master_key);
	return 0;
}

int hub_open(const char *data_dir, bool load_master_key, struct hub **hub_r, const char **error_r)
{
	/* The hub that held the text is gone: it is copied into the thread's
	 * own storage (threads of serve open hubs at once; hub.h). */
	static _Thread_local char error[PATH_MAX + 200];
	struct hub *hub = calloc(1, sizeof(*hub));
	if (hub == NULL || (hub->dir = strdup(data_dir)) == NULL) {
		free(hub);
		*error_r = "out of memory";
		return -1;
	}
	char marker[PATH_MAX];
	snprintf(marker, sizeof(marker), "%s/hub.db", data_dir);
	int r;
	if (access(marker, F_OK) < 0)
		r = hub_fail(hub, error_r,
		             "%s has no hub database (run 'mailkeep --data %s init' first)",
		             data_dir, data_dir);
	else
		r = settings_read(hub, error_r);
	if (r == 0)
		r = db_open(hub, error_r);
	if (r == 0 && load_master_key)
		r = load_master(hub, error_r);
	if (r == 0 && load_master_key)
		r = hub_binding_upgrade(hub, error_r);
	if (r < 0) {
		snprintf(error, sizeof(error), "%s", *error_r);
		*error_r = error;
		hub_close(&hub);
		return -1;
	}
	*hub_r = hub;
	return 0;
}

void hub_close(struct hub **hubp)
{
	struct hub *hub = *hubp;
	if (hub == NULL)
		return;
	vault_master_free(&hub->master);
	if (hub->db != NULL)
		sqlite3_close_v2(hub->db);
	free(hub->dir);
	free(hub);
	*hubp = NULL;
}

int hub_create(const char *data_dir, const char *master_key_path, bool *existed_r,
               const char **error_r)
{
	static _Thread_local char error[PATH_MAX + 200]; /* as in hub_open() */
	char path[PATH_MAX];
	*existed_r = false;
	umask(077);
	if (mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		snprintf(error, sizeof(error), "cannot create %s: %m", data_dir);
		*error_r = error;
		return -1;
	}
	if (chmod(data_dir, 0700) < 0) {
		snprintf(error, sizeof(error), "cannot set mode 0700 on %s: %m", data_dir);
		*error_r = error;
		return -1;
	}
	snprintf(path, sizeof(path), "%s/hub.db", data_dir);
	if (access(path, F_OK) == 0) {
		*existed_r = true;
		return 0;
	}
	snprintf(path, sizeof(path), "%s/users", data_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(error, sizeof(error), "cannot create %s: %m", path);
		*error_r = error;
		return -1;
	}
	struct hub hub_storage, *hub = &hub_storage;
	memset(hub, 0, sizeof(*hub));
	hub->dir = (char *)data_dir;
	settings_default(&hub->set, data_dir);
	if (master_key_path != NULL)
		snprintf(hub->set.master_key, sizeof(hub->set.master_key), "%s", master_key_path);
	const char *err;
	int r = -1;
	if (vault_master_create(hub->set.master_key, &hub->master, &err) < 0) {
		snprintf(error, sizeof(error), "%s", err);
		*error_r = error;
		return -1;
	}
	/* The configuration records where the key is. */
	snprintf(path, sizeof(path), "%s/mailkeep.conf", data_dir);
	FILE *f = fopen(path, "wx");
	if (f == NULL) {
		snprintf(error, sizeof(error), "cannot create %s: %m", path);
		*error_r = error;
		goto out;
	}
	fprintf(f,
	        "# mailkeep hub settings (key = value)\n"
	        "# Users inactive this many days are purged (warned 30 and 7 days before).\n"
	        "inactive_purge_days = 365\n"
	        "# A zero-access user's sign-in unlocks their key for serve's background\n"
	        "# sync and sending this many seconds (10..604800; default 8 hours).\n"
	        "lease_seconds = 28800\n"
	        "# The master key file (0600). Keep it apart from backups of this directory.\n"
	        "master_key = %s\n",
	        hub->set.master_key);
	if (fclose(f) != 0) {
		snprintf(error, sizeof(error), "cannot write %s: %m", path);
		*error_r = error;
		goto out;
	}
	if (db_open(hub, &err) < 0) {
		snprintf(error, sizeof(error), "%s", err);
		*error_r = error;
		goto out;
	}
	unsigned char check[VAULT_CHECK_VALUE_SIZE];
	vault_master_check_value(hub->master, check);
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(hub->db, "INSERT INTO meta(key, value) VALUES ('master_check', ?1)",
	                       -1, &st, NULL) != SQLITE_OK) {
		*error_r = "cannot record the master key check value";
		goto out;
	}
	sqlite3_bind_blob(st, 1, check, sizeof(check), SQLITE_STATIC);
	r = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
	sqlite3_finalize(st);
	if (r < 0)
		*error_r = "cannot record the master key check value";
out:
	vault_master_free(&hub->master);
	if (hub->db != NULL)
		sqlite3_close_v2(hub->db);
	return r;
}
