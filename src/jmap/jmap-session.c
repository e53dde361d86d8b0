/* The JMAP Session object and the user's JMAP accounts (jmap-session.h). */
#include "jmap-session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hub/hub.h"
#include "../store/store-accounts.h"
#include "../store/store.h"
#include "jmap-mail.h"
#include "jmap-submission.h"
#include "jmap.h"

/* The host of an "imaps://[user@]host[:port]/..." URL into out ("" if
 * none). */
static void url_host(const char *url, char *out, size_t size)
{
	out[0] = '\0';
	const char *p = url != NULL ? strstr(url, "://") : NULL;
	if (p == NULL)
		return;
	p += 3;
	const char *end = p + strcspn(p, "/?#");
	const char *at = memchr(p, '@', (size_t)(end - p));
	if (at != NULL)
		p = at + 1;
	size_t len = *p == '[' ? strcspn(p, "]") + 1 : strcspn(p, ":/?#");
	if (len > (size_t)(end - p))
		len = (size_t)(end - p);
	if (len < size) {
		memcpy(out, p, len);
		out[len] = '\0';
	}
}

/* The name of an external account: the login when it is an address, else
 * login@host of its IMAP server. */
static void account_name(const struct hub_account *a, char *out, size_t size)
{
	char host[256];
	const char *login = a->login != NULL ? a->login : "";
	url_host(a->imap_url, host, sizeof(host));
	if (strchr(login, '@') != NULL || host[0] == '\0')
		snprintf(out, size, "%s", login);
	else
		snprintf(out, size, "%s@%s", login, host);
}

static int find_or_make(struct store *store, const char *key, int64_t *id_r, bool *began,
                        const char **error_r)
{
	int r = store_account_find(store, key, id_r, error_r);
	if (r != 0)
		return r < 0 ? -1 : 0;
	if (!*began) {
		if (store_begin(store, error_r) < 0)
			return -1;
		*began = true;
	}
	return store_account_ensure(store, key, id_r, error_r);
}

int jmap_session_accounts(struct store *store, const struct hub_account *accounts, size_t n,
                          struct jmap_session_account **list_r, size_t *count_r, size_t *primary_r,
                          const char **error_r)
{
	struct jmap_session_account *list = calloc(n + 1, sizeof(*list));
	if (list == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	bool began = false;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		char key[64];
		snprintf(key, sizeof(key), "account:%lld", (long long)accounts[i].id);
		r = find_or_make(store, key, &list[i].store_account_id, &began, error_r);
		list[i].hub_account_id = accounts[i].id;
		account_name(&accounts[i], list[i].name, sizeof(list[i].name));
	}
	if (r == 0)
		r = find_or_make(store, JMAP_NOTICES_KEY, &list[n].store_account_id, &began,
		                 error_r);
	snprintf(list[n].name, sizeof(list[n].name), "%s", JMAP_NOTICES_NAME);
	if (began) {
		if (r == 0)
			r = store_commit(store, error_r);
		else
			store_rollback(store);
	}
	int64_t chosen = 0;
	if (r == 0 && store_primary_account_get(store, &chosen, error_r) < 0)
		r = -1;
	if (r < 0) {
		free(list);
		return -1;
	}
	/* The user's choice if it is still one of the accounts, else the
	 * first external account, else the notices account. */
	size_t primary = n > 0 ? 0 : n;
	for (size_t i = 0; i <= n; i++)
		if (chosen > 0 && list[i].store_account_id == chosen)
			primary = i;
	*list_r = list;
	*count_r = n + 1;
	*primary_r = primary;
	return 0;
}

int jmap_session_state(struct store *store, uint64_t modseq, char *out, size_t size,
                       const char **error_r)
{
	struct store_account *accounts;
	size_t n;
	int64_t primary = 0;
	if (store_accounts_list(store, &accounts, &n, error_r) < 0)
		return -1;
	if (store_primary_account_get(store, &primary, error_r) < 0) {
		store_accounts_free(&accounts, n);
		return -1;
	}
	/* FNV-1a over the account ids and keys and the primary choice. */
	uint64_t h = 1469598103934665603ull;
	char item[64];
	for (size_t i = 0; i <= n; i++) {
		if (i < n)
			snprintf(item, sizeof(item), "%lld ", (long long)accounts[i].id);
		else
			snprintf(item, sizeof(item), "p%lld", (long long)primary);
		const char *parts[2] = {item, i < n ? accounts[i].key : ""};
		for (size_t k = 0; k < 2; k++) {
			for (const unsigned char *p = (const unsigned char *)parts[k]; *p != '\0';
			     p++) {
				h ^= *p;
				h *= 1099511628211ull;
			}
		}
	}
	store_accounts_free(&accounts, n);
	int w = snprintf(out, size, "%llu.%08llx", (unsigned long long)modseq,
	                 (unsigned long long)(h & 0xffffffffu));
	if (w < 0 || (size_t)w >= size) {
		*error_r = "session state buffer too small";
		return -1;
	}
	return 0;
}

json_t *jmap_session_json(struct store *store, const char *user_name, const char *public_url,
                          const char *state, const struct hub_account *accounts, size_t n,
                          const struct jmap_session_limits *limits, const char **error_r)
{
	struct jmap_session_account *list;
	size_t count, primary;
	if (jmap_session_accounts(store, accounts, n, &list, &count, &primary, error_r) < 0)
		return NULL;
	char api[600], download[700], upload[600], events[700];
	snprintf(api, sizeof(api), "%s/jmap/api/", public_url);
	snprintf(download, sizeof(download),
	         "%s/jmap/download/{accountId}/{blobId}/{name}?type={type}", public_url);
	snprintf(upload, sizeof(upload), "%s/jmap/upload/{accountId}/", public_url);
	snprintf(events, sizeof(events),
	         "%s/jmap/eventsource/?types={types}&closeafter={closeafter}&ping={ping}",
	         public_url);
	json_t *core = json_pack("{s:I,s:i,s:I,s:i,s:i,s:i,s:i,s:[sss]}", "maxSizeUpload",
	                         (json_int_t)limits->max_size_upload, "maxConcurrentUpload",
	                         (int)limits->max_concurrent_upload, "maxSizeRequest",
	                         (json_int_t)limits->max_size_request, "maxConcurrentRequests",
	                         (int)limits->max_concurrent_requests, "maxCallsInRequest",
	                         (int)limits->max_calls_in_request, "maxObjectsInGet",
	                         (int)limits->max_objects_in_get, "maxObjectsInSet",
	                         (int)limits->max_objects_in_set, "collationAlgorithms",
	                         "i;ascii-numeric", "i;ascii-casemap", "i;unicode-casemap");
	json_t *accts = json_object();
	for (size_t i = 0; i < count; i++) {
		bool external = list[i].hub_account_id > 0;
		/* An Email may be in any number of mailboxes (RFC 8621 1.3.1:
		 * null = no limit); changes stay in the hosted mailbox until the
		 * two-way sync carries them to the provider. */
		json_t *mail = json_pack(
		    "{s:n,s:n,s:i,s:i,s:[sssssssss],s:b}", "maxMailboxesPerEmail",
		    "maxMailboxDepth", "maxSizeMailboxName", 490, "maxSizeAttachmentsPerEmail",
		    50000000, "emailQuerySortOptions", "receivedAt", "sentAt", "size", "from", "to",
		    "subject", "hasKeyword", "allInThreadHaveKeyword", "someInThreadHaveKeyword",
		    "mayCreateTopLevelMailbox", 1);
		json_t *caps = json_pack("{s:o}", JMAP_CAPABILITY_MAIL, mail);
		if (external)
			json_object_set_new(
			    caps, JMAP_CAPABILITY_SUBMISSION,
			    json_pack("{s:i,s:{}}", "maxDelayedSend", 0, "submissionExtensions"));
		char id[32];
		snprintf(id, sizeof(id), "A%lld", (long long)list[i].store_account_id);
		json_object_set_new(accts, id,
		                    json_pack("{s:s,s:b,s:b,s:o}", "name", list[i].name,
		                              "isPersonal", 1, "isReadOnly", 0,
		                              "accountCapabilities", caps));
	}
	char primary_id[32];
	snprintf(primary_id, sizeof(primary_id), "A%lld",
	         (long long)list[primary].store_account_id);
	json_t *primaries = json_pack("{s:s}", JMAP_CAPABILITY_MAIL, primary_id);
	/* The submission capability's primary is an account that has it. */
	if (list[primary].hub_account_id > 0)
		json_object_set_new(primaries, JMAP_CAPABILITY_SUBMISSION, json_string(primary_id));
	free(list);
	json_t *session = json_pack(
	    "{s:{s:o,s:{},s:{}},s:o,s:o,s:s,s:s,s:s,s:s,s:s,s:s}", "capabilities",
	    JMAP_CAPABILITY_CORE, core, JMAP_CAPABILITY_MAIL, JMAP_CAPABILITY_SUBMISSION,
	    "accounts", accts, "primaryAccounts", primaries, "username", user_name, "apiUrl", api,
	    "downloadUrl", download, "uploadUrl", upload, "eventSourceUrl", events, "state", state);
	if (session == NULL)
		*error_r = "cannot build the session object";
	return session;
}

int jmap_session_set_primary(struct store *store, const struct hub_account *accounts, size_t n,
                             int64_t hub_account_id, const char **error_r)
{
	struct jmap_session_account *list;
	size_t count, primary;
	if (jmap_session_accounts(store, accounts, n, &list, &count, &primary, error_r) < 0)
		return -1;
	int64_t chosen = 0;
	for (size_t i = 0; i < count; i++)
		if (hub_account_id > 0 && list[i].hub_account_id == hub_account_id)
			chosen = list[i].store_account_id;
	free(list);
	if (chosen == 0) {
		*error_r = "no such account";
		return -1;
	}
	if (store_begin(store, error_r) < 0)
		return -1;
	if (store_primary_account_set(store, chosen, error_r) < 0) {
		store_rollback(store);
		return -1;
	}
	return store_commit(store, error_r);
}

int jmap_account_known(struct store *store, const char *account_id, int64_t *store_account_id_r,
                       const char **error_r)
{
	int64_t id;
	char *key = NULL;
	if (account_id == NULL || account_id[0] != 'A' || account_id[1] < '1' ||
	    account_id[1] > '9')
		return 0;
	char *end;
	errno = 0;
	long long v = strtoll(account_id + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0)
		return 0;
	id = v;
	int r = store_account_key(store, id, &key, error_r);
	free(key);
	if (r == 1)
		*store_account_id_r = id;
	return r;
}

int jmap_blob_visible(struct store *store, int64_t store_account_id, const char *blob_id,
                      const char **error_r)
{
	if (blob_id == NULL || blob_id[0] != 'B' || blob_id[1] < '1' || blob_id[1] > '9')
		return 0;
	char *end;
	errno = 0;
	long long row = strtoll(blob_id + 1, &end, 10);
	if (errno != 0 || row <= 0 || (*end != '\0' && *end != '_'))
		return 0;
	int r = store_blob_in_account(store, store_account_id, row, error_r);
	if (r == 0 && *end == '\0')
		r = store_blob_is_upload(store, row, error_r);
	return r;
}
