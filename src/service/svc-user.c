/* Purging a hub user, and the inactivity lifecycle (svc-user.h). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc-user.h"
#include "../hub/hub.h"
#include "../lib/buf.h"
#include "../store/store.h"
#include "../vault/vault.h"

#define DAY 86400

/* Folders of purges that did not finish: DIR/users/.purged-* (a user name
 * never starts with '.'). Removed by every purge and lifecycle round. */
#define PURGED_PREFIX ".purged-"

static int unlink_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int svc_purge_leftovers(struct hub *hub)
{
	char users[4200];
	int n = snprintf(users, sizeof(users), "%s/users", hub_data_dir(hub));
	if (n < 0 || (size_t)n >= sizeof(users))
		return -1;
	DIR *d = opendir(users);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	int ret = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, PURGED_PREFIX, strlen(PURGED_PREFIX)) != 0)
			continue;
		char path[4400];
		n = snprintf(path, sizeof(path), "%s/%s", users, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(path) ||
		    (nftw(path, unlink_cb, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT))
			ret = -1;
	}
	closedir(d);
	return ret;
}

/* Take the user's folder (store, WAL, audit log) out of reach at once, by a
 * rename nothing else can race with (serve opens only stores in
 * DIR/users/NAME), then delete it. A crash in between leaves a
 * DIR/users/.purged-* folder that the next purge or lifecycle round
 * removes. */
static int remove_user_dir(struct hub *hub, const char *name)
{
	char dir[4200], trash[4400];
	if (hub_user_path(hub, name, NULL, dir, sizeof(dir)) < 0)
		return -1;
	int n = snprintf(trash, sizeof(trash), "%s/users/" PURGED_PREFIX "%s-%ld-%lld",
	                 hub_data_dir(hub), name, (long)getpid(), (long long)time(NULL));
	if (n < 0 || (size_t)n >= sizeof(trash))
		return -1;
	if (rename(dir, trash) < 0 && errno != ENOENT)
		return -1;
	return svc_purge_leftovers(hub);
}

int svc_user_purge(struct hub *hub, const struct hub_user *u, const char *why,
                   const struct svc_reporter *rep, struct svc_user_purge *r)
{
	const char *err;
	memset(r, 0, sizeof(*r));
	/* The folder first: a purge cut short leaves the user in hub.db, and
	 * the next purge finishes it; never a folder of mail no user owns. */
	if (remove_user_dir(hub, u->name) < 0) {
		snprintf(r->error, sizeof(r->error), "cannot remove the directory of %s: %s",
		         u->name, strerror(errno));
		return -1;
	}
	if (hub_user_delete(hub, u->id, &err) < 0) {
		snprintf(r->error, sizeof(r->error), "%s", err);
		return -1;
	}
	time_t now = time(NULL);
	struct tm tm;
	char when[32];
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	snprintf(r->receipt, sizeof(r->receipt),
	         "receipt: hub user %s deleted at %s (%s): every account, sealed credential, "
	         "data key, hosted message and the audit log are gone from %s",
	         u->name, when, why, hub_data_dir(hub));
	if (hub_receipt_add(hub, u->id, r->receipt, &err) < 0)
		svc_report(rep, SVC_WARNING, "%s", err);
	return 0;
}

/* Warn u that they will be purged at purge_at: an audit entry, then a
 * notice in their hosted inbox, so every device shows it. */
static int warn_user(struct hub *hub, const struct hub_user *u, int days_left, int64_t purge_at,
                     const struct svc_reporter *rep)
{
	const char *err;
	char when[32], days[16];
	time_t t = (time_t)purge_at;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%d", gmtime_r(&t, &tm));
	snprintf(days, sizeof(days), "%d", days_left);
	struct audit_detail d[] = {{"days_left", days}, {"purge_date", when}};
	if (hub_audit(hub, u, AUDIT_LIFECYCLE_WARNING, 0, d, 2, &err) < 0) {
		svc_report(rep, SVC_WARNING, "%s", err);
		return -1;
	}
	struct buf msg;
	buf_init(&msg, 8192);
	char date[64];
	time_t now = time(NULL);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&now, &tm));
	buf_printf(&msg,
	           "From: mailkeep hub <postmaster@localhost>\r\n"
	           "To: %s\r\n"
	           "Date: %s\r\n"
	           "Message-ID: <lifecycle-%s-%d-%lld@mailkeep.invalid>\r\n"
	           "Subject: Your mail hub account will be deleted in %d days\r\n"
	           "MIME-Version: 1.0\r\n"
	           "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	           "Your account %s on this mail hub has not been used for a long time.\r\n"
	           "Unless it is used before %s, it will be deleted with every mail\r\n"
	           "account, stored password and hosted message it holds.\r\n\r\n"
	           "Any use keeps it: a sync, or signing in on a device.\r\n",
	           u->name, date, u->name, days_left, (long long)purge_at, days_left, u->name,
	           when);
	struct store *store;
	char error[SVC_ERROR_SIZE];
	int r = svc_store_open(hub_data_dir(hub), u->name, true, &store, error, sizeof(error));
	if (r < 0) {
		svc_report(rep, SVC_WARNING, "%s", error);
	} else {
		if (store_begin(store, &err) < 0 ||
		    store_local_deliver(store, msg.data, msg.len, now, &err) < 0 ||
		    store_commit(store, &err) < 0) {
			svc_report(rep, SVC_WARNING, "%s", err);
			r = -1;
		}
		store_close(&store);
	}
	buf_free(&msg);
	if (r == 0 && hub_user_set_warned(hub, u->id, days_left <= 7 ? 7 : 30, &err) < 0) {
		svc_report(rep, SVC_WARNING, "%s", err);
		r = -1;
	}
	return r;
}

int svc_lifecycle_run(struct hub *hub, int64_t now, bool dry_run, const struct svc_reporter *rep)
{
	const char *err;
	struct hub_user *users;
	size_t n;
	int ret = 0;
	if (hub_user_list(hub, &users, &n, &err) < 0) {
		svc_report(rep, SVC_WARNING, "%s", err);
		return -1;
	}
	if (!dry_run && svc_purge_leftovers(hub) < 0)
		svc_report(rep, SVC_WARNING,
		           "cannot remove what an earlier purge left in %s/users: %s",
		           hub_data_dir(hub), strerror(errno));
	unsigned purge_days = hub_get_settings(hub)->inactive_purge_days;
	int64_t period = (int64_t)purge_days * DAY;
	unsigned warned = 0, purged = 0;
	for (size_t i = 0; i < n; i++) {
		const struct hub_user *u = &users[i];
		int64_t purge_at = u->last_active + period;
		int64_t left = purge_at - now;
		int days_left = left <= 0 ? 0 : (int)((left + DAY - 1) / DAY);
		if (left <= 0) {
			svc_report(rep, SVC_INFO, "%s %s: inactive for %lld days, past %u",
			           dry_run ? "would purge" : "purging", u->name,
			           (long long)((now - u->last_active) / DAY), purge_days);
			struct svc_user_purge pr;
			if (!dry_run) {
				if (svc_user_purge(hub, u, "inactive past the purge period", rep,
				                   &pr) < 0) {
					svc_report(rep, SVC_WARNING, "%s", pr.error);
					ret = -1;
				} else {
					svc_report(rep, SVC_INFO, "%s", pr.receipt);
				}
			}
			purged++;
		} else if ((days_left <= 7 && (u->warned_days == 0 || u->warned_days > 7)) ||
		           (days_left <= 30 && u->warned_days == 0)) {
			svc_report(rep, SVC_INFO, "%s %s: %d days before purge",
			           dry_run ? "would warn" : "warning", u->name, days_left);
			if (!dry_run && warn_user(hub, u, days_left, purge_at, rep) < 0)
				ret = -1;
			warned++;
		}
	}
	svc_report(rep, SVC_INFO, "lifecycle%s: %zu users, %u %swarned, %u %spurged",
	           dry_run ? " (dry run)" : "", n, warned, dry_run ? "to be " : "", purged,
	           dry_run ? "to be " : "");
	free(users);
	return ret;
}

int svc_user_set_password(struct hub *hub, const struct hub_user *u, const char *old,
                          const char *new_password, const char *via, struct vault_kek **kek_r,
                          char *error, size_t error_size)
{
	const char *err;
	size_t len = strlen(new_password);
	if (kek_r != NULL)
		*kek_r = NULL;
	if (len < SVC_PASSWORD_MIN || len > SVC_PASSWORD_MAX) {
		snprintf(error, error_size, "the new password needs %d to %d characters",
		         SVC_PASSWORD_MIN, SVC_PASSWORD_MAX);
		return -1;
	}
	if (u->zero_access && old == NULL) {
		snprintf(error, error_size,
		         "%s is zero-access: the old password is needed (it is also the "
		         "passphrase the account keys are wrapped with, and they are rewrapped); "
		         "a forgotten one cannot be recovered",
		         u->name);
		return -1;
	}
	/* For a zero-access user, opening the key with the old password is the
	 * check of it (the KDF check value): Argon2id runs once for the old
	 * password, not once for the hash and again for the key. */
	struct vault_kek *old_kek = NULL;
	if (old != NULL && (u->zero_access ? hub_user_kek(hub, u, old, &old_kek, &err)
	                                   : hub_user_check_password(hub, u, old, &err)) < 0) {
		snprintf(error, error_size, "the old password is wrong");
		return 1;
	}
	int r = u->zero_access
	            ? hub_user_change_passphrase(hub, u, old_kek, new_password, via, kek_r, &err)
	            : hub_user_set_password(hub, u, new_password, via, &err);
	vault_kek_free(&old_kek);
	if (r < 0) {
		snprintf(error, error_size, "the password was not changed: %s", err);
		return -1;
	}
	return 0;
}
