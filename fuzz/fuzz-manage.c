/* libFuzzer target: the management methods (daemon-manage.c,
 * "urn:mailkeep:manage") through the real JMAP dispatcher, with arbitrary
 * JSON arguments, against a throwaway hub in a temporary directory: user
 * alice with one external account (A-id from her store), a device, a web
 * session and an audit log. Every input starts from the same copy of that
 * hub (the template made once), so any finding replays.
 *
 * No network: the fuzzer first moves itself into a new network namespace
 * when the system lets it (nothing but a downed loopback there), and does
 * not rely on it: no input can start a connection test or a lookup. The
 * harness forces "test": false into every ExternalAccount/set create
 * object and update patch, takes "id" and "password" out of
 * ExternalAccount/test (so it stops at the argument checks) and gives
 * ExternalAccount/discover only an "email" that is not an address. Of the
 * OAuth methods it drives OAuthProvider/get, disclose with kind "oauth"
 * (provider "test" is configured, at an address nobody listens on),
 * oauthStatus and oauthCancel; not oauthStart (a device flow calls the
 * provider).
 *
 * The input drives a generator as in fuzz-jmap-methods.c: a method, then
 * argument names each with a typed value (null, booleans, integers, reals,
 * strings shaped like the ids and values the methods read, arbitrary
 * bytes, arrays and objects of such values). With a flag bit, a create
 * object of ExternalAccount/set gets the disclosureId of its own settings,
 * so the add path runs too. The answer must be a 200 JSON response of
 * [name, object, callId] triples, none a serverFail; any crash, sanitizer
 * report, leak or malformed answer is a finding. MK_FUZZ_SHOW=1 prints
 * the request an input stands for. */
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon-internal.h"
#include "daemon/daemon-manage.h"
#include "fuzz-gen.h"
#include "hub/hub.h"
#include "jmap/jmap-session.h"
#include "jmap/jmap.h"
#include "lib/buf.h"
#include "service/svc-account.h"
#include "service/svc-lease.h"
#include "setup/setup.h"
#include "store/store.h"
#include "vault/vault.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {
    "ExternalAccount/get",
    "ExternalAccount/discover",
    "ExternalAccount/disclose",
    "ExternalAccount/set",
    "ExternalAccount/test",
    "Receipt/get",
    "Consent/get",
    "Device/get",
    "Device/set",
    "WebSession/get",
    "WebSession/set",
    "AuditLog/get",
    "Policy/get",
    "User/changePassword",
    "OAuthProvider/get",
    "ExternalAccount/oauthStatus",
    "ExternalAccount/oauthCancel",
};

static const char *const arg_names[] = {
    "accountId", "ids",      "create", "update",        "destroy", "filter",
    "position",  "limit",    "email",  "kind",          "imapUrl", "smtpUrl",
    "login",     "password", "id",     "old",           "new",     "sinceState",
    "flowId",    "flow",     "signIn", "oauthProvider",
};

/* Keys inside objects (create objects, patches, filters). */
static const char *const keys[] = {
    "imapUrl",      "smtpUrl",
    "login",        "password",
    "disclosureId", "consent",
    "test",         "isPrimary",
    "name",         "event",
    "account",      "after",
    "before",       "c1",
    "A1",           "A2",
    "D1",           "W1",
    "#c1",          "id",
    "kind",         "oauthProvider",
};

static const char *const strings[] = {
    "mailkeep",
    "A1",
    "A2",
    "A3",
    "D1",
    "D2",
    "W1",
    "W2",
    "W0",
    "W9223372036854775808",
    "W-1",
    "R1",
    "#c1",
    "#c2",
    "alice",
    "",
    "password",
    "oauth",
    "imaps://mail.example.org",
    "imap://mail.example.org:143",
    "imaps://[::1]:993",
    "imaps://",
    "submissions://mail.example.org",
    "smtp://mail.example.org:587",
    "alice@example.org",
    "alice",
    "a\r\nb",
    "2024-01-01T00:00:00Z",
    "2024-13-45T99:99:99Z",
    "9999-12-31T23:59:59Z",
    "1969-12-31T23:59:59Z",
    "account.added",
    "user.signin",
    "web.signin",
    "1",
    "secret password",
    "the hub password",
    "laptop",
    "test",
    "google",
    "redirect",
    "device",
    "F00000000000000000000000000000000",
};

static const json_int_t ints[] = {0, 1, -1, 2, 255, 1000000, INT64_MAX, INT64_MIN, 500, 501};

static const struct gen_tables tables = {GEN_TABLE(keys), GEN_TABLE(strings), GEN_TABLE(ints), 24,
                                         6};

static json_t *value(struct gen *g, int depth)
{
	return gen_value(g, &tables, depth);
}

/* In memory where there is /dev/shm: every commit's fsync is free there. */
static char dir[64];
static char work[64], template[64];
static bool no_network; /* in a network namespace of its own */
static struct daemon sv;
static struct principal who;
static struct store *store;
static struct jmap_registry *reg;

static const char *copy_from, *copy_to;

static int copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	char to[512];
	int n = snprintf(to, sizeof(to), "%s%s", copy_to, path + strlen(copy_from));
	if (n < 0 || (size_t)n >= sizeof(to))
		return -1;
	if (flag == FTW_D)
		return mkdir(to, st->st_mode & 07777) < 0 ? -1 : 0;
	if (flag != FTW_F)
		return 0;
	int in = open(path, O_RDONLY),
	    out = open(to, O_WRONLY | O_CREAT | O_EXCL, st->st_mode & 07777);
	char buf[65536];
	ssize_t got;
	int ret = in < 0 || out < 0 ? -1 : 0;
	while (ret == 0 && (got = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)got) != got)
			ret = -1;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}

static void copy_tree(const char *from, const char *to)
{
	copy_from = from;
	copy_to = to;
	if (nftw(from, copy_entry, 8, FTW_PHYS) != 0)
		abort();
}

/* Open the working hub, alice's store and the leases. */
static void open_work(void)
{
	const char *error;
	char path[512];
	if (hub_open(work, true, &sv.hub, &error) < 0 ||
	    hub_user_get(sv.hub, "alice", &who.user, &error) < 0 ||
	    hub_user_path(sv.hub, "alice", "store.db", path, sizeof(path)) < 0 ||
	    store_open(path, &store, &error) < 0) {
		fprintf(stderr, "fuzz-manage: %s\n", error);
		abort();
	}
	sv.leases = svc_leases_create(sv.hub, &sv.hub_lock);
	if (sv.leases == NULL)
		abort();
}

static void close_work(void)
{
	if (sv.hub == NULL)
		return;
	svc_leases_free(&sv.leases);
	store_close(&store);
	hub_close(&sv.hub);
}

static void cleanup(void)
{
	close_work();
	gen_remove_tree(dir);
}

/* The template: alice, her store with its accounts, one external account
 * (added as the web app would, without a connection test), a device and a
 * web session. */
static void make_template(void)
{
	const char *error;
	char err[SVC_ERROR_SIZE], id[SVC_DISCLOSURE_ID_SIZE], token[64];
	bool existed;
	if (hub_create(work, NULL, &existed, &error) < 0) {
		fprintf(stderr, "fuzz-manage: %s\n", error);
		abort();
	}
	/* An OAuth provider (nothing listens there), for disclose kind
	 * "oauth" and OAuthProvider/get. */
	char conf[512];
	snprintf(conf, sizeof(conf), "%s/mailkeep.conf", work);
	FILE *cf = fopen(conf, "a");
	if (cf == NULL ||
	    fputs("oauth.test.client_id = fuzz-client\n"
	          "oauth.test.client_secret = fuzz-secret\n"
	          "oauth.test.token_url = http://127.0.0.1:1/token\n"
	          "oauth.test.authorization_url = http://127.0.0.1:1/auth\n"
	          "oauth.test.scopes = openid offline_access mail\n",
	          cf) < 0 ||
	    fclose(cf) != 0)
		abort();
	if (hub_open(work, true, &sv.hub, &error) < 0 ||
	    hub_user_add(sv.hub, "alice", "the hub password", false, NULL, &error) < 0 ||
	    hub_user_get(sv.hub, "alice", &who.user, &error) < 0) {
		fprintf(stderr, "fuzz-manage: %s\n", error);
		abort();
	}
	struct buf text;
	buf_init(&text, SVC_DISCLOSURE_MAX);
	struct svc_passphrase pass = {0};
	struct vault_kek *kek = NULL;
	int64_t account_id = 0, dev_id = 0, ws_id = 0;
	struct svc_account_new add = {.imap = "imaps://mail.example.org",
	                              .smtp = "submissions://mail.example.org",
	                              .login = "alice@example.org",
	                              .password = "secret password",
	                              .disclosure_id = id,
	                              .tool = "web",
	                              .check = false};
	if (svc_account_disclosure(sv.hub, &who.user, add.imap, add.smtp, add.login, NULL, &text,
	                           id) < 0 ||
	    svc_user_kek(sv.hub, &who.user, &pass, "test", &kek, err, sizeof(err)) < 0 ||
	    svc_account_add(sv.hub, &who.user, kek, &add, &account_id, err, sizeof(err)) < 0) {
		fprintf(stderr, "fuzz-manage: %s\n", err);
		abort();
	}
	vault_kek_free(&kek);
	buf_free(&text);
	if (hub_device_add(sv.hub, &who.user, "phone", token, &dev_id, &error) < 0 ||
	    hub_web_session_create(sv.hub, &who.user, "Firefox", "127.0.0.1", time(NULL), token,
	                           &ws_id, &error) < 0) {
		fprintf(stderr, "fuzz-manage: %s\n", error);
		abort();
	}
	hub_close(&sv.hub);
	open_work();
	/* The store gets its accounts (the notices one, A-ids) as serve would
	 * make them on the first session. */
	struct hub_account *a = NULL;
	size_t n = 0;
	struct jmap_session_account *list = NULL;
	size_t count = 0, primary = 0;
	if (hub_account_list(sv.hub, who.user.id, &a, &n, &error) < 0 ||
	    jmap_session_accounts(store, a, n, &list, &count, &primary, &error) < 0) {
		fprintf(stderr, "fuzz-manage: %s\n", error);
		abort();
	}
	free(list);
	hub_accounts_free(&a, n);
	close_work();
	copy_tree(work, template);
}

static void setup(void)
{
	const char *error;
	/* No network at all, when the system allows it (see above). */
	no_network = unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0;
	snprintf(dir, sizeof(dir), "%s/mk-fuzz-manage-XXXXXX",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(work, sizeof(work), "%s/work", dir);
	snprintf(template, sizeof(template), "%s/template", dir);
	pthread_mutex_init(&sv.hub_lock, NULL);
	pthread_mutex_init(&sv.push_lock, NULL);
	pthread_mutex_init(&sv.work_lock, NULL);
	pthread_cond_init(&sv.push_cond, NULL);
	pthread_cond_init(&sv.work_cond, NULL);
	sv.data_dir = work;
	snprintf(sv.public_url, sizeof(sv.public_url), "http://127.0.0.1:1/");
	make_template();
	atexit(cleanup);
	if (jmap_registry_create(&reg, &error) < 0 || daemon_manage_register(reg, &error) < 0)
		abort();
	/* The principal: alice signed in with her web session W1. */
	who.web_session_id = 1;
	snprintf(who.label, sizeof(who.label), "alice/web-1");
}

/* Keep the call away from the network (see above). */
static void no_connections(const char *name, json_t *args, unsigned flags)
{
	if (strcmp(name, "ExternalAccount/test") == 0) {
		json_object_del(args, "id");
		json_object_del(args, "password");
	} else if (strcmp(name, "ExternalAccount/discover") == 0) {
		const char *domain, *email = json_string_value(json_object_get(args, "email"));
		if (email != NULL && setup_email_split(email, &domain))
			json_object_set_new(args, "email", json_string("not an address"));
	} else if (strcmp(name, "ExternalAccount/set") == 0) {
		const char *key;
		json_t *o;
		json_object_foreach(json_object_get(args, "create"), key, o)
		{
			if (!json_is_object(o))
				continue;
			json_object_set_new(o, "test", json_false());
			const char *imap = json_string_value(json_object_get(o, "imapUrl"));
			const char *smtp = json_string_value(json_object_get(o, "smtpUrl"));
			const char *login = json_string_value(json_object_get(o, "login"));
			struct buf text;
			char id[SVC_DISCLOSURE_ID_SIZE];
			buf_init(&text, SVC_DISCLOSURE_MAX);
			if ((flags & 0x40) != 0 && imap != NULL && login != NULL &&
			    svc_account_disclosure(sv.hub, &who.user, imap, smtp, login, NULL,
			                           &text, id) == 0)
				json_object_set_new(o, "disclosureId", json_string(id));
			buf_free(&text);
		}
		json_object_foreach(json_object_get(args, "update"), key, o)
		{
			if (json_is_object(o))
				json_object_set_new(o, "test", json_false());
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *error;
	if (reg == NULL)
		setup();
	if (size > 4096)
		return 0;
	/* Every input starts from the template: a copy made again after an
	 * input that may have written (opening a hub costs more than the
	 * methods, so inputs that only read share one). */
	static bool dirty = true;
	if (dirty) {
		close_work();
		gen_remove_tree(work);
		copy_tree(template, work);
		open_work();
		dirty = false;
	}

	struct gen g = {data, size};
	json_t *calls = json_array();
	size_t ncalls = 1 + take(&g) % 3;
	for (size_t c = 0; c < ncalls; c++) {
		const char *name = PICK(&g, methods);
		json_t *args = json_object();
		unsigned flags = take(&g);
		if ((flags & 7) != 0)
			json_object_set_new(args, "accountId",
			                    json_string((flags & 8) != 0 ? "A2" : "mailkeep"));
		size_t nargs = take(&g) % 6;
		for (size_t i = 0; i < nargs; i++)
			json_object_set_new(args, PICK(&g, arg_names), value(&g, 0));
		no_connections(name, args, flags);
		if (strstr(name, "/set") != NULL || strstr(name, "/change") != NULL ||
		    strncmp(name, "AuditLog/", 9) == 0)
			dirty = true;
		char id[8];
		snprintf(id, sizeof(id), "%zu", c);
		json_array_append_new(calls, json_pack("[s,o,s]", name, args, id));
	}
	json_t *req = json_pack("{s:[s,s],s:o}", "using", "urn:ietf:params:jmap:core",
	                        DAEMON_MANAGE_CAPABILITY, "methodCalls", calls);
	char *text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (text == NULL)
		abort();
	if (getenv("MK_FUZZ_SHOW") != NULL)
		fprintf(stderr, "%s\n", text);

	/* The request's hub handle is serve's one here (daemon-manage.h):
	 * one hub_open() less per input. */
	struct daemon_api_ctx actx = {
	    .mail = {.store = store, .user_name = "alice", .account_id = ""},
	    .sv = &sv,
	    .p = &who,
	    .hub = sv.hub};
	uint64_t modseq = 0;
	if (store_read_modseq(store, &modseq, &error) < 0)
		abort();
	snprintf(actx.mail.state, sizeof(actx.mail.state), "%llu", (unsigned long long)modseq);
	const struct jmap_limits limits = {
	    .max_size_request = 65536, .max_calls_in_request = 16, .max_depth = 64};
	struct jmap_output out;
	if (jmap_process(reg, &limits, &actx, "state", text, strlen(text), &out, &error) < 0)
		abort();
	actx.hub = NULL; /* not the request's own: stays open */
	daemon_manage_finish(&actx);
	if (getenv("MK_FUZZ_SHOW") != NULL)
		fprintf(stderr, "%.*s\n", (int)out.body_len, out.body);
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
