/* libFuzzer target: whole JMAP method calls through the real dispatcher
 * (jmap_process with every mail and submission method registered) on a
 * temporary store holding two mailboxes, a message and a hub-local notice,
 * for a user with one hub account (identity I1).
 *
 * The input is not JSON text: it drives a generator, so that every
 * argument a method reads gets a value of every JSON type. Byte by byte:
 * a method (from the registered list), then argument names (from the
 * arguments the methods read) each with a typed value: null, booleans,
 * integers (0, -1, huge), reals, strings shaped like our ids ("E1", "M2",
 * "#c1", "B1", "I1", "S1", "T1", a state) or arbitrary bytes, and arrays
 * and objects of such values (nested a few levels). Up to four calls go in
 * one request, so creation ids and result references cross calls.
 *
 * The answer must be a 200 JSON response whose methodResponses are all
 * [name, object, callId] triples, and no call may fail with serverFail
 * (the store works: only the input can be wrong); any crash, sanitizer
 * report, leak or malformed answer is a finding. MK_FUZZ_SHOW=1 prints the
 * request an input stands for. Seeds: fuzz/seeds-jmap-methods.py. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-gen.h"
#include "hub/hub.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap-submission.h"
#include "jmap/jmap.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {
    "Mailbox/get",
    "Mailbox/changes",
    "Mailbox/query",
    "Mailbox/queryChanges",
    "Mailbox/set",
    "Email/get",
    "Email/parse",
    "Email/query",
    "Email/queryChanges",
    "Email/changes",
    "Email/set",
    "Email/import",
    "Thread/get",
    "Thread/changes",
    "SearchSnippet/get",
    "Identity/get",
    "Identity/changes",
    "Identity/set",
    "EmailSubmission/get",
    "EmailSubmission/changes",
    "EmailSubmission/query",
    "EmailSubmission/set",
    "Email/copy",
    "Blob/copy",
};

static const char *const arg_names[] = {
    "accountId",
    "ids",
    "properties",
    "bodyProperties",
    "fetchTextBodyValues",
    "fetchHTMLBodyValues",
    "fetchAllBodyValues",
    "maxBodyValueBytes",
    "sinceState",
    "maxChanges",
    "filter",
    "sort",
    "position",
    "anchor",
    "anchorOffset",
    "limit",
    "calculateTotal",
    "collapseThreads",
    "sinceQueryState",
    "maxChanges",
    "upToId",
    "create",
    "update",
    "destroy",
    "ifInState",
    "onDestroyRemoveEmails",
    "emails",
    "blobIds",
    "emailIds",
    "onSuccessUpdateEmail",
    "onSuccessDestroyEmail",
    "sortAsTree",
    "filterAsTree",
    "fromAccountId",
    "ifFromInState",
    "onSuccessDestroyOriginal",
    "destroyFromIfInState",
};

/* Keys inside objects (filters, create/update objects, patches). */
static const char *const keys[] = {
    "inMailbox",
    "text",
    "subject",
    "from",
    "hasKeyword",
    "operator",
    "conditions",
    "property",
    "isAscending",
    "mailboxIds",
    "keywords",
    "name",
    "parentId",
    "role",
    "sortOrder",
    "isSubscribed",
    "blobId",
    "receivedAt",
    "identityId",
    "emailId",
    "envelope",
    "mailFrom",
    "rcptTo",
    "email",
    "undoStatus",
    "replyTo",
    "bcc",
    "textSignature",
    "htmlSignature",
    "header",
    "keywords/$seen",
    "mailboxIds/M1",
    "bodyValues",
    "textBody",
    "partId",
    "c1",
    "E1",
    "M1",
    "I1",
    "S1",
};

static const char *const strings[] = {
    "E1",
    "E2",
    "M1",
    "M2",
    "M3",
    "B1",
    "B2",
    "T1",
    "I1",
    "I2",
    "S1",
    "#c1",
    "#c2",
    "alice",
    "bob",
    "0",
    "1",
    "99999999999999999999",
    "",
    "-",
    "E",
    "#",
    "inbox",
    "AND",
    "OR",
    "NOT",
    "receivedAt",
    "subject",
    "$seen",
    "canceled",
    "2024-01-01T00:00:00Z",
    "header:Subject:asText",
    "i;ascii-numeric",
    "x@example.org",
};

static const json_int_t ints[] = {0, 1, -1, 2, 255, 1000000, INT64_MAX, INT64_MIN};

static const struct gen_tables tables = {GEN_TABLE(keys), GEN_TABLE(strings), GEN_TABLE(ints), 16,
                                         4};

static json_t *value(struct gen *g, int depth)
{
	return gen_value(g, &tables, depth);
}

static struct jmap_registry *reg;
static struct store *store;
static struct hub_account account = {.id = 1,
                                     .user_id = 1,
                                     .imap_url = "imaps://mail.example.org/",
                                     .smtp_url = "smtps://mail.example.org/",
                                     .login = "alice@example.org"};

static int load_accounts(struct jmap_mail_ctx *ctx)
{
	ctx->hub_accounts = &account;
	ctx->n_hub_accounts = 1;
	return 0;
}

static char dir[] = "/tmp/mk-fuzz-jmap-methods-XXXXXX";

/* The temporary store goes when the fuzzer exits. */
static void cleanup(void)
{
	store_close(&store);
	gen_remove_tree(dir);
}

static void setup(void)
{
	const char *error;
	char path[64];
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	int64_t acct, inbox, arch, blob;
	struct store_blob_writer *w;
	const char msg[] =
	    "Subject: hi\r\nFrom: a@example.org\r\nTo: b@example.org\r\n\r\nhello\r\n";
	if (store_open(path, &store, &error) < 0 || store_begin(store, &error) < 0 ||
	    store_account_ensure(store, "account:1", &acct, &error) < 0 ||
	    store_mailbox_create(store, acct, "INBOX", '/', "Inbox", &inbox, &error) < 0 ||
	    store_mailbox_create(store, acct, "Archive", '/', NULL, &arch, &error) < 0 ||
	    store_blob_begin(store, sizeof(msg) - 1, &w, &error) < 0 ||
	    store_blob_write(w, msg, sizeof(msg) - 1, &error) < 0 ||
	    store_blob_finish(&w, &blob, &error) < 0 ||
	    store_message_add(store, inbox, 7, blob, 0, "", 1000, &error) < 0 ||
	    store_local_deliver(store, msg, sizeof(msg) - 1, 1000, &error) < 0 ||
	    store_commit(store, &error) < 0)
		abort();
	if (jmap_registry_create(&reg, &error) < 0 || jmap_mail_register(reg, &error) < 0 ||
	    jmap_submission_register(reg, &error) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error;
	if (reg == NULL)
		setup();
	if (size > 4096)
		return 0;
	struct gen g = {data, size};
	json_t *calls = json_array();
	size_t ncalls = 1 + take(&g) % 4;
	for (size_t c = 0; c < ncalls; c++) {
		const char *name = PICK(&g, methods);
		json_t *args = json_object();
		unsigned flags = take(&g);
		/* Mostly one of the accounts: A1 external, A2 the notices one. */
		if ((flags & 7) != 0)
			json_object_set_new(args, "accountId",
			                    json_string((flags & 8) != 0 ? "A2" : "A1"));
		if ((flags & 0x30) == 0x30)
			json_object_set_new(args, "fromAccountId",
			                    json_string((flags & 8) != 0 ? "A1" : "A2"));
		size_t nargs = take(&g) % 6;
		for (size_t i = 0; i < nargs; i++)
			json_object_set_new(args, PICK(&g, arg_names), value(&g, 0));
		char id[8];
		snprintf(id, sizeof(id), "%zu", c);
		json_array_append_new(calls, json_pack("[s,o,s]", name, args, id));
	}
	json_t *req = json_pack("{s:[s,s,s],s:o}", "using", "urn:ietf:params:jmap:core",
	                        "urn:ietf:params:jmap:mail", "urn:ietf:params:jmap:submission",
	                        "methodCalls", calls);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		abort();
	if (getenv("MK_FUZZ_SHOW") != NULL) /* what an input stands for */
		fprintf(stderr, "%s\n", text);

	struct jmap_mail_ctx ctx = {
	    .store = store, .user_name = "alice", .account_id = "", .load_accounts = load_accounts};
	uint64_t modseq = 0;
	if (store_read_modseq(store, &modseq, &error) < 0)
		abort();
	snprintf(ctx.state, sizeof(ctx.state), "%llu", (unsigned long long)modseq);
	const struct jmap_limits limits = {
	    .max_size_request = 65536, .max_calls_in_request = 16, .max_depth = 64};
	struct jmap_output out;
	if (jmap_process(reg, &limits, &ctx, "state", text, strlen(text), &out, &error) < 0)
		abort();
	json_error_t jerr;
	json_t *v = json_loadb(out.body, out.body_len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *responses = json_object_get(v, "methodResponses");
	if (out.status != 200 || !json_is_array(responses)) {
		fprintf(stderr, "request %s\nanswer %d %.*s\n", text, out.status, (int)out.body_len,
		        out.body);
		abort();
	}
	size_t i;
	json_t *r;
	json_array_foreach(responses, i, r)
	{
		if (!json_is_array(r) || json_array_size(r) != 3 ||
		    !json_is_string(json_array_get(r, 0)) ||
		    !json_is_object(json_array_get(r, 1)) || !json_is_string(json_array_get(r, 2)))
			abort();
		/* A method error names its type (a serverFail is a bug here: the
		 * store works, so only bad input can fail a call). */
		if (strcmp(json_string_value(json_array_get(r, 0)), "error") == 0) {
			const char *type =
			    json_string_value(json_object_get(json_array_get(r, 1), "type"));
			if (type == NULL || strcmp(type, "serverFail") == 0) {
				fprintf(stderr, "request %s\nanswer %.*s\n", text,
				        (int)out.body_len, out.body);
				abort();
			}
		}
	}
	json_decref(v);
	free(out.body);
	free(text);
	return 0;
}
