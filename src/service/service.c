/* What the workflows of the services layer share: reporting, the user's
 * store, the user's key and an account's sealed credentials. */
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service.h"
#include "svc-oauth.h"
#include "svc-lease.h"
#include "../hub/hub.h"
#include "../store/store.h"

void svc_report(const struct svc_reporter *r, enum svc_level level, const char *fmt, ...)
{
	if (r == NULL || r->report == NULL)
		return;
	char text[SVC_ERROR_SIZE + 512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap); /* a longer line is cut, not lost */
	va_end(ap);
	r->report(r->ctx, level, text);
}

int svc_store_open(const char *data_dir, const char *user, bool create, struct store **store_r,
                   char *error, size_t error_size)
{
	char path[PATH_MAX];
	const char *err;
	int n = snprintf(path, sizeof(path), "%s/users/%s", data_dir, user);
	if (n < 0 || (size_t)n >= sizeof(path) - sizeof("/store.db")) {
		snprintf(error, error_size, "the path of %s's folder is too long", user);
		return -1;
	}
	if (!create && access(path, F_OK) < 0) {
		snprintf(error, error_size, "no user '%s' in %s", user, data_dir);
		return -1;
	}
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(error, error_size, "cannot create %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(path + n, sizeof(path) - (size_t)n, "/store.db");
	if (store_open(path, store_r, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		return -1;
	}
	return 0;
}

int svc_account_open_secret(struct hub *hub, const struct hub_user *u, const struct hub_account *a,
                            const struct vault_kek *kek, const char *purpose, const char *kind,
                            char **secret_r, char *error, size_t error_size)
{
	/* An OAuth account has no password: a sync or a send gets an access
	 * token, from the sealed refresh token (svc-oauth.c). */
	if (a->oauth && (strcmp(kind, "imap-password") == 0 || strcmp(kind, "smtp-password") == 0))
		return svc_oauth_access_token(hub, u, a, kek, purpose, secret_r, error, error_size);
	/* The audit entry is durable before the credential is opened. */
	struct audit_detail d[] = {{"purpose", purpose}, {"kind", kind}};
	const char *err;
	if (hub_audit(hub, u, AUDIT_CREDENTIAL_DECRYPT, a->id, d, 2, &err) < 0 ||
	    hub_account_open_secret(hub, u, a, kek, kind, secret_r, &err) < 0) {
		snprintf(error, error_size, "%s, account %lld: %s", u->name, (long long)a->id, err);
		return hub_error_is_temporary(hub) ? -2 : -1;
	}
	return 0;
}

int svc_user_kek(struct hub *hub, const struct hub_user *u, const struct svc_passphrase *pass,
                 const char *via, struct vault_kek **kek_r, char *error, size_t error_size)
{
	char *passphrase = NULL;
	const char *err;
	error[0] = '\0';
	if (u->zero_access && pass != NULL && pass->leases != NULL) {
		/* The unlock was audited when the lease was made; each use of a
		 * credential still is (credential.decrypt). */
		int held = svc_lease_kek(pass->leases, u->id, kek_r);
		if (held <= 0)
			snprintf(error, error_size,
			         held == 0 ? "%s is zero-access and not signed in (no unlock lease)"
			                   : "%s: out of secure memory for the key",
			         u->name);
		return held == 1 ? 0 : -1;
	}
	if (pass != NULL && pass->get != NULL && pass->get(pass->ctx, &passphrase) < 0)
		return -1;
	int r = hub_user_kek(hub, u, passphrase, kek_r, &err);
	svc_secret_free(&passphrase);
	if (r == 0 && u->zero_access) {
		struct audit_detail d[] = {{"via", via}};
		if ((r = hub_audit(hub, u, AUDIT_USER_SIGNIN, 0, d, 1, &err)) < 0)
			vault_kek_free(kek_r);
	}
	if (r < 0)
		snprintf(error, error_size, "%s: %s", u->name, err);
	return r;
}

void svc_secret_free(char **secret)
{
	if (*secret != NULL)
		sodium_free(*secret); /* wipes */
	*secret = NULL;
}
