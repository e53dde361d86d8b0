/* Issue #9 through the real dispatcher over a real store, without a server:
 * item 1 (typed id lists: the requests that killed serve) and item 13's
 * Identity/set (a display name that is kept, shows in Identity/get and
 * Identity/changes, and goes into the From the hub writes for drafts and
 * submissions). tests/jmap/hardening.test.mjs runs the same against serve. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap-submission.h"
#include "store/store-outbox.h"
#include "store/store-identity.h"
#include "store/store.h"
#include "test.h"

static char dir[64], path[128];

/* Two external accounts of one user: store accounts "account:1" (A1) and
 * "account:2" (A2). */
static struct hub_account accounts[2] = {{.id = 1,
                                          .user_id = 1,
                                          .imap_url = "imaps://mail.example.org/",
                                          .smtp_url = "smtps://mail.example.org/",
                                          .login = "alice@example.org"},
                                         {.id = 2,
                                          .user_id = 1,
                                          .imap_url = "imaps://imap.example.net/",
                                          .smtp_url = "smtps://smtp.example.net/",
                                          .login = "alice2@example.net"}};

static int load_accounts(struct jmap_mail_ctx *ctx)
{
	ctx->hub_accounts = accounts;
	ctx->n_hub_accounts = 2;
	return 0;
}

/* Run one request; returns the parsed methodResponses' first response
 * arguments ([1]) and its name in *name_r (both valid until json_decref of
 * the returned root, *root_r). */
static json_t *call(struct jmap_registry *reg, struct store *s, const char *methods,
                    json_t **root_r)
{
	const char *error;
	char req[8192];
	snprintf(req, sizeof(req),
	         "{\"using\":[\"urn:ietf:params:jmap:core\",\"urn:ietf:params:jmap:mail\","
	         "\"urn:ietf:params:jmap:submission\"],\"methodCalls\":%s}",
	         methods);
	struct jmap_mail_ctx ctx = {
	    .store = s, .user_name = "alice", .account_id = "", .load_accounts = load_accounts};
	uint64_t modseq;
	OK(store_read_modseq(s, &modseq, &error));
	snprintf(ctx.state, sizeof(ctx.state), "%llu", (unsigned long long)modseq);
	struct jmap_limits lim = {1 << 20, 16, 64};
	struct jmap_output out;
	OK(jmap_process(reg, &lim, &ctx, "s", req, strlen(req), &out, &error));
	CHECK(out.status == 200);
	json_t *root = json_loadb(out.body, out.body_len, 0, NULL);
	free(out.body);
	CHECK(root != NULL);
	*root_r = root;
	return json_object_get(root, "methodResponses");
}

/* The arguments of response i, checking its name. */
static json_t *resp(json_t *responses, size_t i, const char *name)
{
	json_t *r = json_array_get(responses, i);
	if (strcmp(json_string_value(json_array_get(r, 0)), name) != 0) {
		char *t = json_dumps(r, 0);
		fprintf(stderr, "want %s, got %s\n", name, t);
		free(t);
		exit(1);
	}
	return json_array_get(r, 1);
}

static const char *str(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v != NULL ? v : "(none)";
}

/* Item 1: each of these used to dereference NULL (serve died with SIGSEGV)
 * or overflow an integer. */
static void typed_ids(struct jmap_registry *reg, struct store *s)
{
	static const char *const bad[] = {
	    "[\"Email/get\",{\"accountId\":\"A1\",\"ids\":[null]},\"0\"]",
	    "[\"Email/get\",{\"accountId\":\"A1\",\"ids\":[{\"x\":1}]},\"0\"]",
	    "[\"Mailbox/get\",{\"accountId\":\"A1\",\"ids\":[5]},\"0\"]",
	    "[\"SearchSnippet/get\",{\"accountId\":\"A1\",\"emailIds\":[null]},\"0\"]",
	    "[\"Thread/get\",{\"accountId\":\"A1\",\"ids\":[true]},\"0\"]",
	    "[\"Identity/get\",{\"accountId\":\"A1\",\"ids\":[1]},\"0\"]",
	    "[\"Mailbox/get\",{\"accountId\":\"A1\",\"properties\":[null]},\"0\"]",
	    "[\"EmailSubmission/get\",{\"accountId\":\"A1\",\"ids\":[null]},\"0\"]",
	    "[\"EmailSubmission/set\",{\"accountId\":\"A1\",\"onSuccessDestroyEmail\":[1]},"
	    "\"0\"]",
	    "[\"Email/parse\",{\"accountId\":\"A1\",\"blobIds\":[null]},\"0\"]",
	    /* Found by fuzz-jmap-methods: -position overflowed (Int is 53 bits). */
	    "[\"Mailbox/query\",{\"accountId\":\"A1\",\"position\":-9223372036854775808},"
	    "\"0\"]",
	    "[\"Email/query\",{\"accountId\":\"A1\",\"anchor\":\"E1\","
	    "\"anchorOffset\":9223372036854775807},\"0\"]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char m[512];
		snprintf(m, sizeof(m), "[%s]", bad[i]);
		json_t *root, *r = call(reg, s, m, &root);
		json_t *e = resp(r, 0, "error");
		CHECK_STR(str(e, "type"), "invalidArguments");
		json_decref(root);
	}
	/* A destroy entry that is no id is answered, not dropped. */
	json_t *root,
	    *r = call(reg, s,
	              "[[\"Email/set\",{\"accountId\":\"A1\",\"destroy\":[null,{\"x\":1}]},\"0\"],"
	              "[\"Mailbox/set\",{\"accountId\":\"A1\",\"destroy\":[5]},\"1\"],"
	              "[\"Identity/set\",{\"accountId\":\"A1\",\"destroy\":[false,\"I1\"]},\"2\"]]",
	              &root);
	json_t *nd = json_object_get(resp(r, 0, "Email/set"), "notDestroyed");
	CHECK(json_object_size(nd) == 2);
	CHECK_STR(str(json_object_get(nd, "null"), "type"), "invalidArguments");
	CHECK_STR(str(json_object_get(nd, "{\"x\":1}"), "type"), "invalidArguments");
	nd = json_object_get(resp(r, 1, "Mailbox/set"), "notDestroyed");
	CHECK_STR(str(json_object_get(nd, "5"), "type"), "invalidArguments");
	nd = json_object_get(resp(r, 2, "Identity/set"), "notDestroyed");
	CHECK_STR(str(json_object_get(nd, "false"), "type"), "invalidArguments");
	CHECK_STR(str(json_object_get(nd, "I1"), "type"), "forbidden");
	json_decref(root);
}

int main(void)
{
	const char *error;
	snprintf(dir, sizeof(dir), "/tmp/mk-test-jmap-identity-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	struct store *s;
	OK(store_open(path, &s, &error));
	OK(store_begin(s, &error));
	int64_t acct, inbox, drafts;
	OK(store_account_ensure(s, "account:1", &acct, &error));
	OK(store_mailbox_create(s, acct, "INBOX", '/', "Inbox", &inbox, &error));
	OK(store_mailbox_create(s, acct, "Drafts", '/', "Drafts", &drafts, &error));
	/* The second account: its server says '.', and its INBOX has a role of
	 * its own (roles are per account). */
	int64_t acct2, inbox2, projects;
	OK(store_account_ensure(s, "account:2", &acct2, &error));
	CHECK(acct == 1 && acct2 == 2);
	OK(store_mailbox_create(s, acct2, "INBOX", '.', "Inbox", &inbox2, &error));
	OK(store_mailbox_create(s, acct2, "Projects", '.', NULL, &projects, &error));
	/* A parent the server lists as \\Noselect, a child below it, and two
	 * folders the server both calls Sent. */
	int64_t deep, nested, sent1, sent2;
	OK(store_mailbox_create_noselect(s, acct2, "Deep", '.', NULL, true, &deep, &error));
	OK(store_mailbox_create(s, acct2, "Deep.Nested", '.', NULL, &nested, &error));
	OK(store_mailbox_create(s, acct2, "Sent", '.', "Sent", &sent1, &error));
	OK(store_mailbox_create(s, acct2, "Sent Items", '.', "Sent", &sent2, &error));
	OK(store_commit(s, &error));

	struct jmap_registry *reg;
	OK(jmap_registry_create(&reg, &error));
	OK(jmap_mail_register(reg, &error));
	OK(jmap_submission_register(reg, &error));

	typed_ids(reg, s);

	/* Identity/set: the settable properties; create and destroy are the
	 * hub's business; bad values are refused. */
	json_t *root, *r = call(reg, s, "[[\"Identity/get\",{\"accountId\":\"A1\"},\"0\"]]", &root);
	json_t *g = resp(r, 0, "Identity/get");
	char state0[64];
	snprintf(state0, sizeof(state0), "%s", str(g, "state"));
	json_t *id = json_array_get(json_object_get(g, "list"), 0);
	CHECK_STR(str(id, "id"), "I1");
	CHECK_STR(str(id, "name"), "");
	CHECK_STR(str(id, "email"), "alice@example.org");
	json_decref(root);

	r = call(reg, s,
	         "[[\"Identity/set\",{\"accountId\":\"A1\",\"update\":{\"I1\":{"
	         "\"name\":\"Alice Example\",\"textSignature\":\"-- \\nAlice\","
	         "\"replyTo\":[{\"name\":\"A\",\"email\":\"a@example.org\"}],\"bcc\":null,"
	         "\"email\":\"alice@example.org\"},"
	         "\"I9\":{\"name\":\"x\"}},"
	         "\"create\":{\"c\":{\"email\":\"x@example.org\"}},\"destroy\":[\"I1\"]},\"0\"],"
	         "[\"Identity/set\",{\"accountId\":\"A1\",\"update\":{"
	         "\"I1\":{\"name\":\"a\\r\\nBcc: evil@example.org\"}}},\"1\"],"
	         "[\"Identity/set\",{\"accountId\":\"A1\",\"update\":{"
	         "\"I1\":{\"replyTo\":[{\"email\":\"not an address\"}]}}},\"2\"],"
	         "[\"Identity/set\",{\"accountId\":\"A1\",\"update\":{"
	         "\"I1\":{\"email\":\"other@example.org\"}}},\"3\"],"
	         "[\"Identity/set\",{\"accountId\":\"A1\",\"ifInState\":\"i0.0\",\"update\":{"
	         "\"I1\":{\"name\":\"y\"}}},\"4\"]]",
	         &root);
	json_t *set = resp(r, 0, "Identity/set");
	CHECK(json_is_null(json_object_get(json_object_get(set, "updated"), "I1")));
	CHECK_STR(str(json_object_get(json_object_get(set, "notUpdated"), "I9"), "type"),
	          "notFound");
	CHECK_STR(str(json_object_get(json_object_get(set, "notCreated"), "c"), "type"),
	          "forbidden");
	CHECK_STR(str(json_object_get(json_object_get(set, "notDestroyed"), "I1"), "type"),
	          "forbidden");
	CHECK_STR(str(set, "oldState"), state0);
	CHECK(strcmp(str(set, "newState"), state0) != 0);
	for (size_t i = 1; i <= 3; i++) {
		json_t *bad = json_object_get(
		    json_object_get(resp(r, i, "Identity/set"), "notUpdated"), "I1");
		CHECK_STR(str(bad, "type"), "invalidProperties");
	}
	CHECK_STR(str(resp(r, 4, "error"), "type"), "stateMismatch");
	json_decref(root);

	/* Kept durably: the store is closed and opened again. */
	jmap_registry_free(&reg);
	store_close(&s);
	OK(store_open(path, &s, &error));
	OK(jmap_registry_create(&reg, &error));
	OK(jmap_mail_register(reg, &error));
	OK(jmap_submission_register(reg, &error));
	char m[2048];
	snprintf(m, sizeof(m),
	         "[[\"Identity/get\",{\"accountId\":\"A1\",\"ids\":[\"I1\"]},\"0\"],"
	         "[\"Identity/changes\",{\"accountId\":\"A1\",\"sinceState\":\"%s\"},\"1\"],"
	         "[\"Identity/get\",{\"accountId\":\"A1\",\"properties\":[\"name\"]},\"2\"]]",
	         state0);
	r = call(reg, s, m, &root);
	g = resp(r, 0, "Identity/get");
	id = json_array_get(json_object_get(g, "list"), 0);
	CHECK_STR(str(id, "name"), "Alice Example");
	CHECK_STR(str(id, "textSignature"), "-- \nAlice");
	CHECK_STR(str(json_array_get(json_object_get(id, "replyTo"), 0), "email"), "a@example.org");
	CHECK(json_is_null(json_object_get(id, "bcc")));
	json_t *ch = resp(r, 1, "Identity/changes");
	CHECK(json_array_size(json_object_get(ch, "updated")) == 1);
	CHECK_STR(json_string_value(json_array_get(json_object_get(ch, "updated"), 0)), "I1");
	CHECK(json_array_size(json_object_get(ch, "created")) == 0);
	CHECK_STR(str(ch, "newState"), str(g, "state"));
	/* properties: only those (and id). */
	id = json_array_get(json_object_get(resp(r, 2, "Identity/get"), "list"), 0);
	CHECK(json_object_size(id) == 2 && json_object_get(id, "name") != NULL);
	char state1[64];
	snprintf(state1, sizeof(state1), "%s", str(g, "state"));
	json_decref(root);
	snprintf(m, sizeof(m),
	         "[[\"Identity/changes\",{\"accountId\":\"A1\",\"sinceState\":\"%s\"},\"0\"],"
	         "[\"Identity/changes\",{\"accountId\":\"A1\",\"sinceState\":\"i1.0\"},\"1\"]]",
	         state1);
	r = call(reg, s, m, &root);
	CHECK(json_array_size(json_object_get(resp(r, 0, "Identity/changes"), "updated")) == 0);
	CHECK_STR(str(resp(r, 1, "error"), "type"), "cannotCalculateChanges");
	json_decref(root);

	/* A draft created without "from" gets the identity's From, display name
	 * included; one created with from: null has none, and its submission
	 * gets the identity's From added. */
	snprintf(m, sizeof(m),
	         "[[\"Email/set\",{\"accountId\":\"A1\",\"create\":{"
	         "\"d\":{\"mailboxIds\":{\"M%lld\":true},\"subject\":\"hi\","
	         "\"to\":[{\"email\":\"bob@example.net\"}]},"
	         "\"n\":{\"mailboxIds\":{\"M%lld\":true},\"subject\":\"no from\",\"from\":null,"
	         "\"to\":[{\"email\":\"bob@example.net\"}]}}},\"0\"],"
	         "[\"Email/get\",{\"accountId\":\"A1\",\"ids\":[\"#d\",\"#n\"],"
	         "\"properties\":[\"from\"]},\"1\"],"
	         "[\"EmailSubmission/set\",{\"accountId\":\"A1\",\"create\":{"
	         "\"s\":{\"identityId\":\"I1\",\"emailId\":\"#n\"}}},\"2\"]]",
	         (long long)drafts, (long long)drafts);
	r = call(reg, s, m, &root);
	json_t *list = json_object_get(resp(r, 1, "Email/get"), "list");
	json_t *from = json_array_get(json_object_get(json_array_get(list, 0), "from"), 0);
	CHECK_STR(str(from, "name"), "Alice Example");
	CHECK_STR(str(from, "email"), "alice@example.org");
	CHECK(json_is_null(json_object_get(json_array_get(list, 1), "from")));
	const char *sid =
	    str(json_object_get(json_object_get(resp(r, 2, "EmailSubmission/set"), "created"), "s"),
	        "id");
	CHECK(sid[0] == 'S');
	struct store_outbox_item it;
	CHECK(store_outbox_get(s, strtoll(sid + 1, NULL, 10), true, &it, &error) == 1);
	CHECK(strstr(it.data, "\r\nFrom: Alice Example <alice@example.org>\r\n") != NULL ||
	      strncmp(it.data, "From: Alice Example <alice@example.org>\r\n", 41) == 0);
	store_outbox_item_free(&it);
	json_decref(root);

	/* One JMAP account per external account: A2 sees its own mailboxes,
	 * identity and submissions only; neither sees the other's. */
	snprintf(m, sizeof(m),
	         "[[\"Identity/get\",{\"accountId\":\"A2\"},\"0\"],"
	         "[\"Identity/get\",{\"accountId\":\"A1\",\"ids\":[\"I2\"]},\"1\"],"
	         "[\"Identity/set\",{\"accountId\":\"A1\",\"update\":{\"I2\":{\"name\":\"x\"}}},"
	         "\"2\"],"
	         "[\"EmailSubmission/get\",{\"accountId\":\"A2\"},\"3\"],"
	         "[\"EmailSubmission/get\",{\"accountId\":\"A1\"},\"4\"],"
	         "[\"EmailSubmission/set\",{\"accountId\":\"A2\",\"create\":{"
	         "\"s\":{\"identityId\":\"I1\",\"emailId\":\"E1\"}}},\"5\"],"
	         "[\"Mailbox/get\",{\"accountId\":\"A2\"},\"6\"],"
	         "[\"Mailbox/get\",{\"accountId\":\"A2\",\"ids\":[\"M%lld\"]},\"7\"],"
	         "[\"Mailbox/get\",{\"accountId\":\"A3\"},\"8\"],"
	         "[\"Mailbox/get\",{\"accountId\":\"alice\"},\"9\"],"
	         "[\"Mailbox/set\",{\"accountId\":\"A2\",\"create\":{"
	         "\"a\":{\"name\":\"Alpha\",\"parentId\":\"M%lld\"},"
	         "\"b\":{\"name\":\"Beta\",\"parentId\":\"M%lld\"},"
	         "\"t\":{\"name\":\"Top\"}}},\"10\"],"
	         "[\"Mailbox/get\",{\"accountId\":\"A2\",\"ids\":[\"#a\",\"#t\"]},\"11\"]]",
	         (long long)inbox, (long long)projects, (long long)inbox);
	r = call(reg, s, m, &root);
	list = json_object_get(resp(r, 0, "Identity/get"), "list");
	CHECK(json_array_size(list) == 1);
	CHECK_STR(str(json_array_get(list, 0), "id"), "I2");
	CHECK_STR(str(resp(r, 0, "Identity/get"), "accountId"), "A2");
	CHECK(json_array_size(json_object_get(resp(r, 1, "Identity/get"), "list")) == 0);
	CHECK_STR(
	    str(json_object_get(json_object_get(resp(r, 2, "Identity/set"), "notUpdated"), "I2"),
	        "type"),
	    "notFound");
	CHECK(json_array_size(json_object_get(resp(r, 3, "EmailSubmission/get"), "list")) == 0);
	CHECK(json_array_size(json_object_get(resp(r, 4, "EmailSubmission/get"), "list")) == 1);
	CHECK(json_object_get(json_object_get(resp(r, 5, "EmailSubmission/set"), "notCreated"),
	                      "s") != NULL);
	list = json_object_get(resp(r, 6, "Mailbox/get"), "list");
	CHECK(json_array_size(list) == 6); /* A2's: INBOX, Projects, Deep, Deep.Nested, 2 Sent */
	size_t at;
	json_t *box;
	int inboxes = 0, sents = 0;
	char deep_id[32], nested_id[32], sent1_id[32];
	snprintf(deep_id, sizeof(deep_id), "M%lld", (long long)deep);
	snprintf(nested_id, sizeof(nested_id), "M%lld", (long long)nested);
	snprintf(sent1_id, sizeof(sent1_id), "M%lld", (long long)sent1);
	json_array_foreach(list, at, box)
	{
		inboxes += strcmp(str(box, "role"), "inbox") == 0;
		sents += strcmp(str(box, "role"), "sent") == 0;
		json_t *rights = json_object_get(box, "myRights");
		if (strcmp(str(box, "id"), deep_id) == 0) {
			/* noselect: shown, holds no mail */
			CHECK(json_is_false(json_object_get(rights, "mayAddItems")));
			CHECK(json_is_false(json_object_get(rights, "maySetKeywords")));
			CHECK(json_is_true(json_object_get(rights, "mayCreateChild")));
			CHECK(json_is_null(json_object_get(box, "parentId")));
		} else {
			CHECK(json_is_true(json_object_get(rights, "mayAddItems")));
		}
		if (strcmp(str(box, "id"), nested_id) == 0) {
			CHECK_STR(str(box, "name"), "Nested");
			CHECK_STR(str(box, "parentId"), deep_id);
		}
		if (strcmp(str(box, "role"), "sent") == 0)
			CHECK_STR(str(box, "id"), sent1_id); /* the first by name */
	}
	CHECK(inboxes == 1 && sents == 1); /* roles are unique in an account */
	CHECK(json_array_size(json_object_get(resp(r, 7, "Mailbox/get"), "notFound")) == 1);
	CHECK_STR(str(resp(r, 8, "error"), "type"), "accountNotFound");
	CHECK_STR(str(resp(r, 9, "error"), "type"), "accountNotFound");
	json_t *ms = resp(r, 10, "Mailbox/set");
	CHECK(json_object_get(json_object_get(ms, "created"), "a") != NULL);
	CHECK(json_object_get(json_object_get(ms, "created"), "t") != NULL);
	CHECK_STR(str(json_object_get(json_object_get(ms, "notCreated"), "b"), "type"),
	          "invalidProperties"); /* A1's inbox is no parent in A2 */
	list = json_object_get(resp(r, 11, "Mailbox/get"), "list");
	CHECK_STR(str(json_array_get(list, 0), "name"), "Alpha");
	char parent[32];
	snprintf(parent, sizeof(parent), "M%lld", (long long)projects);
	CHECK_STR(str(json_array_get(list, 0), "parentId"), parent);
	CHECK(json_is_null(json_object_get(json_array_get(list, 1), "parentId")));
	json_decref(root);
	/* The full server names use A2's delimiter '.'. */
	struct store_mailbox *boxes;
	size_t n_boxes;
	OK(store_mailboxes(s, acct2, &boxes, &n_boxes, &error));
	bool alpha = false, top = false;
	for (size_t i = 0; i < n_boxes; i++) {
		alpha |= strcmp(boxes[i].name, "Projects.Alpha") == 0;
		top |= strcmp(boxes[i].name, "Top") == 0;
	}
	store_mailboxes_free(&boxes, n_boxes);
	CHECK(alpha && top);

	/* Email/copy from A1 to A2: not into a noselect mailbox; once; an
	 * Email of the same content there already is that Email. */
	int64_t *eids;
	size_t n_eids;
	OK(store_email_query(s, drafts, false, 0, 10, &eids, &n_eids, NULL, &error));
	CHECK(n_eids >= 1);
	snprintf(
	    m, sizeof(m),
	    "[[\"Email/copy\",{\"fromAccountId\":\"A1\",\"accountId\":\"A2\",\"create\":{"
	    "\"x\":{\"id\":\"E%lld\",\"mailboxIds\":{\"M%lld\":true}},"
	    "\"y\":{\"id\":\"E%lld\",\"mailboxIds\":{\"M%lld\":true}},"
	    "\"z\":{\"id\":\"E%lld\",\"mailboxIds\":{\"M%lld\":true},\"subject\":\"no\"}}},\"0\"],"
	    "[\"Email/copy\",{\"fromAccountId\":\"A1\",\"accountId\":\"A2\",\"create\":{"
	    "\"again\":{\"id\":\"E%lld\",\"mailboxIds\":{\"M%lld\":true}}}},\"1\"],"
	    "[\"Email/copy\",{\"fromAccountId\":\"A2\",\"accountId\":\"A2\",\"create\":{}},\"2\"],"
	    "[\"Email/copy\",{\"fromAccountId\":\"A9\",\"accountId\":\"A2\",\"create\":{}},\"3\"],"
	    "[\"Email/"
	    "get\",{\"accountId\":\"A2\",\"ids\":[\"#y\"],\"properties\":[\"mailboxIds\"]},"
	    "\"4\"]]",
	    (long long)eids[0], (long long)deep, (long long)eids[0], (long long)nested,
	    (long long)eids[0], (long long)nested, (long long)eids[0], (long long)sent1);
	free(eids);
	r = call(reg, s, m, &root);
	json_t *cp = resp(r, 0, "Email/copy");
	CHECK_STR(str(cp, "fromAccountId"), "A1");
	CHECK_STR(str(cp, "accountId"), "A2");
	CHECK_STR(str(json_object_get(json_object_get(cp, "notCreated"), "x"), "type"),
	          "invalidProperties"); /* noselect */
	CHECK_STR(str(json_object_get(json_object_get(cp, "notCreated"), "z"), "type"),
	          "invalidProperties"); /* only id, mailboxIds, keywords, receivedAt */
	const char *copy_id = str(json_object_get(json_object_get(cp, "created"), "y"), "id");
	CHECK(copy_id[0] == 'E');
	json_t *again =
	    json_object_get(json_object_get(resp(r, 1, "Email/copy"), "notCreated"), "again");
	CHECK_STR(str(again, "type"), "alreadyExists");
	CHECK_STR(str(again, "existingId"), copy_id);
	CHECK_STR(str(resp(r, 2, "error"), "type"), "invalidArguments");
	CHECK_STR(str(resp(r, 3, "error"), "type"), "fromAccountNotFound");
	json_t *mids = json_object_get(
	    json_array_get(json_object_get(resp(r, 4, "Email/get"), "list"), 0), "mailboxIds");
	CHECK(json_object_size(mids) == 1 && json_object_get(mids, nested_id) != NULL);
	json_decref(root);

	/* Removing the account removes what was set for its identity. */
	struct store_identity ident;
	CHECK(store_identity_get(s, 1, &ident, &error) == 1);
	store_identity_free(&ident);
	OK(store_begin(s, &error));
	OK(store_identity_remove(s, 1, &error));
	OK(store_commit(s, &error));
	CHECK(store_identity_get(s, 1, &ident, &error) == 0);

	jmap_registry_free(&reg);
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	TEST_DONE("test-jmap-identity");
}
