/* Removing an account from every device, with its receipt (svc-account.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "svc-account.h"
#include "svc-oauth.h"
#include "../hub/hub.h"
#include "../store/store-identity.h"
#include "../store/store-outbox.h"
#include "../store/store.h"

/* The account's mail, outbox and identities out of the user's store, if
 * the user has one. */
static int remove_mail(struct hub *hub, const char *user, int64_t account_id,
                       struct store_removal *rm, char *error, size_t error_size)
{
	char key[64], dbpath[4200];
	const char *err;
	snprintf(key, sizeof(key), "account:%lld", (long long)account_id);
	if (hub_user_path(hub, user, "store.db", dbpath, sizeof(dbpath)) < 0 ||
	    access(dbpath, F_OK) < 0)
		return 0;
	struct store *store = NULL;
	if (svc_store_open(hub_data_dir(hub), user, false, &store, error, error_size) < 0)
		return -1;
	unsigned outgoing = 0; /* its outbox too: no message bytes left behind */
	int r = 0;
	if (store_begin(store, &err) < 0 || store_account_remove(store, key, rm, &err) < 0 ||
	    store_outbox_remove_account(store, account_id, &outgoing, &err) < 0 ||
	    store_identity_remove(store, account_id, &err) < 0 || store_commit(store, &err) < 0 ||
	    store_scrub(store, &err) < 0) {
		snprintf(error, error_size, "%s", err);
		r = -1;
	}
	store_close(&store);
	return r;
}

static int removal_fail(struct svc_account_removal *r, bool finish_again, const char *err)
{
	r->outcome = SVC_REMOVAL_FAILED;
	r->finish_again = finish_again;
	if (err != NULL)
		snprintf(r->error, sizeof(r->error), "%s", err);
	return -1;
}

int svc_account_remove(struct hub *hub, const char *user, int64_t id, struct svc_account_removal *r)
{
	const char *err;
	struct hub_user u;
	struct hub_account *a;
	size_t n;
	memset(r, 0, sizeof(*r));
	if (hub_user_get(hub, user, &u, &err) < 0 || hub_account_list(hub, u.id, &a, &n, &err) < 0)
		return removal_fail(r, false, err);
	bool found = false;
	char revoked[320] = "";
	for (size_t i = 0; i < n; i++) {
		found |= a[i].id == id;
		/* An OAuth account's refresh token is revoked at the provider
		 * first (RFC 7009), while it can still be opened; the receipt
		 * says how that went. The removal goes on either way. */
		if (a[i].id == id && a[i].oauth)
			svc_oauth_revoke(hub, &u, &a[i], revoked, sizeof(revoked));
	}
	hub_accounts_free(&a, n);
	if (!found) {
		/* Removed already (perhaps by a run that ended before it could
		 * show its receipt): that receipt. */
		char prefix[128], *done = NULL;
		snprintf(prefix, sizeof(prefix), "receipt: account %lld of %s removed ",
		         (long long)id, user);
		int had = hub_receipt_find(hub, u.id, prefix, &done, &err);
		if (had < 0)
			return removal_fail(r, false, err);
		if (had == 0) {
			r->outcome = SVC_REMOVAL_NO_ACCOUNT;
			return -1;
		}
		snprintf(r->receipt, sizeof(r->receipt), "%s", done);
		free(done);
		r->outcome = SVC_REMOVAL_ALREADY;
		return 0;
	}
	/* Mail first (the store), then credentials (hub.db): a crash in
	 * between leaves credentials without mail, which the next removal
	 * finishes; never mail without a way to remove it. */
	struct store_removal rm = {0, 0, 0, 0};
	if (remove_mail(hub, user, id, &rm, r->error, sizeof(r->error)) < 0)
		return removal_fail(r, false, NULL);
	/* Then the credentials; the account row stays until the receipt is
	 * recorded with its deletion, so a removal killed anywhere is found
	 * and finished by the next one (which finds no secrets left: it says
	 * so, as what the earlier run deleted is not counted again). */
	unsigned secrets = 0;
	if (hub_account_remove_secrets(hub, id, &secrets, &err) < 0)
		return removal_fail(r, false, err);
	/* No cached access token outlives the grant. */
	svc_oauth_cache_forget(hub, id);
	bool resumed = secrets == 0; /* every account has a sealed password */
	char counts[4][32];
	snprintf(counts[0], sizeof(counts[0]), "%u", secrets);
	snprintf(counts[1], sizeof(counts[1]), "%llu", (unsigned long long)rm.messages);
	snprintf(counts[2], sizeof(counts[2]), "%llu", (unsigned long long)rm.bytes);
	snprintf(counts[3], sizeof(counts[3]), "%llu", (unsigned long long)rm.mailboxes);
	struct audit_detail d[] = {{"credentials", counts[0]}, {"messages", counts[1]},
	                           {"bytes", counts[2]},       {"folders", counts[3]},
	                           {"scope", "all-devices"},   {"resumed", "yes"}};
	if (hub_audit(hub, &u, AUDIT_ACCOUNT_REMOVED, id, d, resumed ? 6 : 5, &err) < 0)
		return removal_fail(r, true, err);
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
	int len = snprintf(
	    r->receipt, sizeof(r->receipt),
	    "receipt: account %lld of %s removed from all devices at %s: %u sealed "
	    "credentials and the account's data key deleted; %llu messages in %llu folders "
	    "(%llu bytes of message content not shared with other accounts) deleted; database "
	    "pages zeroed (secure_delete) and write-ahead logs truncated.%s%s%s",
	    (long long)id, user, when, secrets, (unsigned long long)rm.messages,
	    (unsigned long long)rm.mailboxes, (unsigned long long)rm.bytes,
	    revoked[0] != '\0' ? " " : "", revoked,
	    resumed ? " This finished a removal that was interrupted; what it had deleted "
	              "already is not counted here."
	            : "");
	if (len < 0 || (size_t)len >= sizeof(r->receipt)) {
		r->receipt[0] = '\0';
		return removal_fail(r, false, "receipt too long");
	}
	if (hub_account_remove_finish(hub, id, u.id, r->receipt, &err) < 0) {
		r->receipt[0] = '\0';
		return removal_fail(r, true, err);
	}
	r->outcome = SVC_REMOVAL_DONE;
	return 0;
}
