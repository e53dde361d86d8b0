/* Email/set and Mailbox/set through the real envelope over a real store:
 * what the Node tests cannot set up easily (two accounts in one store, a
 * hub-local mailbox). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jmap/jmap-mail.h"
#include "store/store.h"
#include "test.h"

static char dir[64], path[128];

/* Run one request; returns the response body (caller frees). */
static char *call(struct jmap_registry *reg, struct jmap_mail_ctx *ctx, const char *methods)
{
	const char *error;
	char req[4096];
	snprintf(req, sizeof(req),
	         "{\"using\":[\"urn:ietf:params:jmap:core\",\"urn:ietf:params:jmap:mail\"],"
	         "\"methodCalls\":%s}",
	         methods);
	uint64_t modseq;
	OK(store_read_modseq(ctx->store, &modseq, &error));
	snprintf(ctx->state, sizeof(ctx->state), "%llu", (unsigned long long)modseq);
	struct jmap_limits lim = {1 << 20, 16, 64};
	struct jmap_output out;
	OK(jmap_process(reg, &lim, ctx, "s", req, strlen(req), &out, &error));
	CHECK(out.status == 200);
	return out.body;
}

int main(void)
{
	const char *error;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-jmap-set-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	struct store *s;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, inbox, arch;
	OK(store_account_ensure(s, "account:1", &acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	OK(store_mailbox_create(s, acct, "Archive", '/', NULL, &arch, &error));
	struct store_blob_writer *w;
	int64_t blob;
	const char msg[] = "Subject: hi\r\n\r\nhello\r\n";
	OK(store_blob_begin(s, sizeof(msg) - 1, &w, &error));
	OK(store_blob_write(w, msg, sizeof(msg) - 1, &error));
	OK(store_blob_finish(&w, &blob, &error));
	OK(store_message_add(s, inbox, 7, blob, 0, "", 1000, &error));
	/* A hub notice: the hub-local account's INBOX. */
	OK(store_local_deliver(s, msg, sizeof(msg) - 1, 1000, &error));
	OK(store_commit(s, &error));
	int64_t *ids;
	size_t n;
	OK(store_email_query(s, inbox, false, 0, 10, &ids, &n, NULL, &error));
	CHECK(n == 1);
	int64_t email = ids[0];
	free(ids);
	struct store_mailbox *boxes;
	OK(store_mailboxes_all(s, &boxes, &n, &error));
	int64_t local_inbox = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t a;
		char *key;
		CHECK(store_mailbox_account(s, boxes[i].id, &a, &key, &error) == 1);
		if (strcmp(key, "hub:local") == 0)
			local_inbox = boxes[i].id;
		free(key);
	}
	store_mailboxes_free(&boxes, n);
	CHECK(local_inbox != 0);

	struct jmap_registry *reg;
	OK(jmap_registry_create(&reg, &error));
	OK(jmap_mail_register(reg, &error));
	struct jmap_mail_ctx ctx = {.store = s, .account_id = ""};
	char m[1024];

	/* A move to the hub-local account is refused and changes nothing. */
	snprintf(m, sizeof(m),
	         "[[\"Email/set\",{\"accountId\":\"A1\",\"update\":{\"E%lld\":{\"mailboxIds\":{"
	         "\"M%lld\":true}}}},\"0\"]]",
	         (long long)email, (long long)local_inbox);
	uint64_t before, after;
	OK(store_read_modseq(s, &before, &error));
	char *body = call(reg, &ctx, m);
	CHECK(strstr(body, "\"notUpdated\"") != NULL && strstr(body, "another account") != NULL);
	CHECK(strstr(body, "\"invalidProperties\"") != NULL);
	free(body);
	OK(store_read_modseq(s, &after, &error));
	CHECK(after == before);
	struct store_email e;
	CHECK(store_email_get(s, email, &e, &error) == 1 && e.mailbox_id == inbox);

	/* Within the account it moves; a top-level mailbox goes to the only
	 * external account, with its delimiter. */
	snprintf(m, sizeof(m),
	         "[[\"Mailbox/set\",{\"accountId\":\"A1\",\"create\":{\"n\":{\"name\":\"New\"}}},"
	         "\"0\"],[\"Email/set\",{\"accountId\":\"A1\",\"update\":{\"E%lld\":{"
	         "\"mailboxIds\":{\"#n\":true}}}},\"1\"]]",
	         (long long)email);
	body = call(reg, &ctx, m);
	CHECK(strstr(body, "\"updated\":{\"E") != NULL);
	free(body);
	CHECK(store_email_get(s, email, &e, &error) == 1 && e.mailbox_id != inbox);
	int64_t a;
	char *key;
	CHECK(store_mailbox_account(s, e.mailbox_id, &a, &key, &error) == 1 && a == acct);
	free(key);
	CHECK(e.uid == (uint32_t)(STORE_LOCAL_UID_BASE + email)); /* truncated view */

	/* ifInState: a stale state is refused before anything happens. */
	body = call(reg, &ctx,
	            "[[\"Email/set\",{\"accountId\":\"A1\",\"ifInState\":\"1\",\"destroy\":[]},"
	            "\"0\"]]");
	CHECK(strstr(body, "stateMismatch") != NULL);
	free(body);

	/* Several mailboxes: a patch adds Archive (a copy), Email/get lists
	 * both; a full replace swaps one for INBOX (a move); a patch removes
	 * one (an expunge); removing the last is refused. */
	int64_t newbox = e.mailbox_id;
	snprintf(m, sizeof(m),
	         "[[\"Email/set\",{\"accountId\":\"A1\",\"update\":{\"E%lld\":{"
	         "\"mailboxIds/M%lld\":true,\"keywords/$seen\":true}}},\"0\"],"
	         "[\"Email/get\",{\"accountId\":\"A1\",\"ids\":[\"E%lld\"],"
	         "\"properties\":[\"mailboxIds\",\"keywords\"]},\"1\"]]",
	         (long long)email, (long long)arch, (long long)email);
	body = call(reg, &ctx, m);
	char want[160];
	snprintf(want, sizeof(want), "\"mailboxIds\":{\"M%lld\":true,\"M%lld\":true}",
	         (long long)newbox, (long long)arch);
	char want2[160];
	snprintf(want2, sizeof(want2), "\"mailboxIds\":{\"M%lld\":true,\"M%lld\":true}",
	         (long long)arch, (long long)newbox);
	CHECK(strstr(body, want) != NULL || strstr(body, want2) != NULL);
	CHECK(strstr(body, "\"$seen\":true") != NULL);
	free(body);
	CHECK(store_email_get(s, email, &e, &error) == 1 && e.n_members == 2 &&
	      (e.flags & STORE_FLAG_SEEN) != 0);
	snprintf(m, sizeof(m),
	         "[[\"Email/set\",{\"accountId\":\"A1\",\"update\":{\"E%lld\":{"
	         "\"mailboxIds\":{\"M%lld\":true,\"M%lld\":true}}}},\"0\"]]",
	         (long long)email, (long long)arch, (long long)inbox);
	body = call(reg, &ctx, m);
	CHECK(strstr(body, "\"updated\":{\"E") != NULL);
	free(body);
	int64_t *mids, *mboxes;
	OK(store_email_members(s, email, &mids, &mboxes, &n, &error));
	CHECK(n == 2 && ((mboxes[0] == inbox && mboxes[1] == arch) ||
	                 (mboxes[0] == arch && mboxes[1] == inbox)));
	free(mids);
	free(mboxes);
	snprintf(m, sizeof(m),
	         "[[\"Email/set\",{\"accountId\":\"A1\",\"update\":{\"E%lld\":{"
	         "\"mailboxIds/M%lld\":null}}},\"0\"],"
	         "[\"Email/set\",{\"accountId\":\"A1\",\"update\":{\"E%lld\":{"
	         "\"mailboxIds/M%lld\":null}}},\"1\"]]",
	         (long long)email, (long long)arch, (long long)email, (long long)inbox);
	body = call(reg, &ctx, m);
	CHECK(strstr(body, "\"notUpdated\"") != NULL && strstr(body, "at least one") != NULL);
	free(body);
	CHECK(store_email_get(s, email, &e, &error) == 1 && e.n_members == 1 &&
	      e.mailbox_id == inbox);
	struct store_local_change *lc;
	OK(store_local_changes(s, &lc, &n, &error));
	size_t copies = 0, moves = 0, expunges = 0;
	for (size_t i = 0; i < n; i++) {
		copies += strcmp(lc[i].kind, "copy") == 0;
		moves += strcmp(lc[i].kind, "move") == 0;
		expunges += strcmp(lc[i].kind, "expunge") == 0;
	}
	CHECK(copies == 1 && moves == 2 && expunges == 1);
	store_local_changes_free(&lc, n);

	/* A JMAP account sees only its own Emails (A2: the notices account). */
	snprintf(m, sizeof(m),
	         "[[\"Email/get\",{\"accountId\":\"A2\",\"ids\":[\"E%lld\"],"
	         "\"properties\":[\"id\"]},\"0\"]]",
	         (long long)email);
	body = call(reg, &ctx, m);
	CHECK(strstr(body, "\"notFound\":[\"E") != NULL);
	free(body);
	snprintf(m, sizeof(m),
	         "[[\"Email/get\",{\"accountId\":\"A1\",\"ids\":[\"E%lld\"],"
	         "\"properties\":[\"id\"]},\"0\"]]",
	         (long long)email);
	body = call(reg, &ctx, m);
	CHECK(strstr(body, "\"notFound\":[]") != NULL);
	free(body);

	jmap_registry_free(&reg);
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-jmap-set");
}
