/* Tests for src/jmap/jmap-core.c: the RFC 8620 envelope examples, result
 * references, creation ids, method errors and every request-level error;
 * and the account layer every mail method shares: the session's accounts
 * (jmap-session.c), the accountId check and the state reader (jmap-util.c). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"
#include "jmap/jmap-mail.h"
#include "jmap/jmap-private.h"
#include "jmap/jmap-session.h"
#include "jmap/jmap.h"
#include "store/store-accounts.h"
#include "store/store.h"
#include "test.h"

#define TEST_CAP "urn:example:test"

static const struct jmap_limits limits = {
    .max_size_request = 100000, .max_calls_in_request = 8, .max_depth = 32};

/* Foo/changes as in RFC 8620 3.7. */
static int foo_changes(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                       const char **desc_r)
{
	const char *error;
	(void)ctx;
	(void)args;
	(void)type_r;
	(void)desc_r;
	json_t *r =
	    json_pack("{sssssssbs[ss]s[]s[]}", "accountId", "A1", "oldState", "abcdef", "newState",
	              "123456", "hasMoreChanges", 0, "created", "f1", "f4", "updated", "destroyed");
	return jmap_call_respond(call, "Foo/changes", r, &error);
}

/* Foo/get: each id gets {"id": id, "threadId": "T"+id, "emailIds": [id+"a", id+"b"]}. */
static int foo_get(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                   const char **desc_r)
{
	const char *error;
	(void)ctx;
	json_t *ids = json_object_get(args, "ids");
	if (!json_is_array(ids)) {
		CHECK(jmap_call_set_error_property(call, "arguments", json_pack("[s]", "ids"),
		                                   &error) == 0);
		CHECK(jmap_call_set_error_property(call, "type", json_string("x"), &error) == -1);
		*type_r = "invalidArguments";
		*desc_r = "ids must be an array";
		return -1;
	}
	json_t *list = json_array();
	size_t i;
	json_t *id;
	json_array_foreach(ids, i, id)
	{
		const char *s = json_string_value(id);
		if (s == NULL) {
			json_decref(list);
			*type_r = "invalidArguments";
			return -1;
		}
		char t[300], a[300], b[300];
		snprintf(t, sizeof(t), "T%s", s);
		snprintf(a, sizeof(a), "%sa", s);
		snprintf(b, sizeof(b), "%sb", s);
		json_array_append_new(
		    list, json_pack("{sssss[ss]}", "id", s, "threadId", t, "emailIds", a, b));
	}
	return jmap_call_respond(
	    call, "Foo/get", json_pack("{sssos[]}", "accountId", "A1", "list", list, "notFound"),
	    &error);
}

/* Test/echo: answers with its (resolved) arguments, then an implicit call. */
static int test_echo(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                     const char **desc_r)
{
	const char *error;
	(void)type_r;
	(void)desc_r;
	CHECK(ctx == (void *)&limits);
	CHECK(jmap_call_uses(call, TEST_CAP));
	CHECK(!jmap_call_uses(call, "urn:nothing"));
	CHECK(strcmp(jmap_call_name(call), "Test/echo") == 0);
	if (jmap_call_respond(call, "Test/echo", json_copy(args), &error) < 0)
		return -1;
	CHECK(jmap_call_respond(call, "Test/implicit", json_string("x"), &error) == -1);
	return jmap_call_respond(call, "Test/implicit", json_pack("{ss}", "of", jmap_call_id(call)),
	                         &error);
}

static int test_fail(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                     const char **desc_r)
{
	const char *error;
	(void)ctx;
	(void)type_r;
	(void)desc_r;
	const char *mode = json_string_value(json_object_get(args, "mode"));
	if (mode != NULL && strcmp(mode, "partial") == 0) {
		/* A response then a failure: only the error remains. */
		CHECK(jmap_call_respond(call, "Test/fail", json_object(), &error) == 0);
		*type_r = "forbidden";
		return -1;
	}
	if (mode != NULL && strcmp(mode, "silent") == 0)
		return 0; /* no response: serverFail */
	return -1;        /* no type: serverFail */
}

static int test_create(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                       const char **desc_r)
{
	const char *error;
	(void)ctx;
	(void)args;
	(void)desc_r;
	CHECK(jmap_call_set_created_id(call, "bad id", "x", &error) == -1);
	if (jmap_call_set_created_id(call, "c1", "srv1", &error) < 0) {
		*type_r = "serverFail";
		return -1;
	}
	return jmap_call_respond(call, "Test/create",
	                         json_pack("{s{s{ss}}}", "created", "c1", "id", "srv1"), &error);
}

static int test_use_id(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                       const char **desc_r)
{
	const char *error, *id;
	(void)ctx;
	const char *ref = json_string_value(json_object_get(args, "id"));
	if (ref == NULL || jmap_call_resolve_id(call, ref, &id, &error) < 0) {
		*type_r = "invalidArguments";
		*desc_r = ref == NULL ? "no id" : error;
		return -1;
	}
	return jmap_call_respond(call, "Test/useId", json_pack("{ss}", "id", id), &error);
}

static struct jmap_registry *make_registry(void)
{
	const char *error;
	struct jmap_registry *reg;
	OK(jmap_registry_create(&reg, &error));
	OK(jmap_registry_add_capability(reg, TEST_CAP, &error));
	OK(jmap_registry_add_capability(reg, "urn:example:unused", &error));
	OK(jmap_registry_add_method(reg, "Foo/changes", TEST_CAP, foo_changes, &error));
	OK(jmap_registry_add_method(reg, "Foo/get", TEST_CAP, foo_get, &error));
	OK(jmap_registry_add_method(reg, "Test/echo", TEST_CAP, test_echo, &error));
	OK(jmap_registry_add_method(reg, "Test/fail", TEST_CAP, test_fail, &error));
	OK(jmap_registry_add_method(reg, "Test/create", TEST_CAP, test_create, &error));
	OK(jmap_registry_add_method(reg, "Test/useId", TEST_CAP, test_use_id, &error));
	OK(jmap_registry_add_method(reg, "Unused/get", "urn:example:unused", foo_get, &error));
	REFUSED(jmap_registry_add_method(reg, "Foo/get", TEST_CAP, foo_get, &error), "already");
	REFUSED(jmap_registry_add_method(reg, "X/y", "urn:undeclared", foo_get, &error),
	        "not declared");
	REFUSED(jmap_registry_add_method(reg, "bad name", TEST_CAP, foo_get, &error), "printable");
	REFUSED(jmap_registry_add_capability(reg, TEST_CAP, &error), "already");
	return reg;
}

/* Process request; check the status and that the body equals want (JSON
 * equality). */
static void expect(struct jmap_registry *reg, const struct jmap_limits *lim, const char *request,
                   size_t len, unsigned int status, const char *want)
{
	const char *error;
	struct jmap_output out;
	OK(jmap_process(reg, lim, (void *)&limits, "75128aab4b1b", request, len, &out, &error));
	json_error_t jerr;
	json_t *got = json_loadb(out.body, out.body_len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *exp = json_loads(want, 0, &jerr);
	CHECK(exp != NULL);
	if (out.status != status || got == NULL || !json_equal(got, exp)) {
		fprintf(stderr, "request: %.*s\n  got:  %u %s\n  want: %u %s\n", (int)len, request,
		        out.status, out.body, status, want);
		exit(1);
	}
	CHECK_STR(out.content_type,
	          status == 200 ? "application/json" : "application/problem+json");
	json_decref(got);
	json_decref(exp);
	free(out.body);
}

#define EXPECT(reg, req, status, want) expect(reg, &limits, req, strlen(req), status, want)

/* A request-level problem of the given type (and detail fragment). */
static void expect_problem(struct jmap_registry *reg, const struct jmap_limits *lim,
                           const char *request, size_t len, const char *type, const char *limit,
                           const char *detail)
{
	const char *error;
	struct jmap_output out;
	OK(jmap_process(reg, lim, NULL, "s", request, len, &out, &error));
	CHECK(out.status == 400);
	CHECK_STR(out.content_type, "application/problem+json");
	json_error_t jerr;
	json_t *got = json_loadb(out.body, out.body_len, JSON_REJECT_DUPLICATES, &jerr);
	CHECK(got != NULL);
	char full[128];
	snprintf(full, sizeof(full), "urn:ietf:params:jmap:error:%s", type);
	if (strcmp(json_string_value(json_object_get(got, "type")), full) != 0 ||
	    strstr(json_string_value(json_object_get(got, "detail")), detail) == NULL) {
		fprintf(stderr, "request: %.*s\n  got: %s\n  want: %s / %s\n", (int)len, request,
		        out.body, full, detail);
		exit(1);
	}
	CHECK(json_integer_value(json_object_get(got, "status")) == 400);
	if (limit != NULL)
		CHECK_STR(json_string_value(json_object_get(got, "limit")), limit);
	else
		CHECK(json_object_get(got, "limit") == NULL);
	json_decref(got);
	free(out.body);
}

#define PROBLEM(reg, req, type, detail)                                                            \
	expect_problem(reg, &limits, req, strlen(req), type, NULL, detail)

#define CORE "\"urn:ietf:params:jmap:core\""
#define USING "{\"using\":[" CORE ",\"" TEST_CAP "\"],\"methodCalls\":"

static void test_rfc_examples(struct jmap_registry *reg)
{
	/* RFC 8620 3.3.1 / 4.1: Core/echo. */
	EXPECT(reg,
	       "{\"using\":[" CORE "],\"methodCalls\":[[\"Core/echo\",{\"hello\":true,\"high\":5},"
	       "\"b3ff\"]]}",
	       200,
	       "{\"methodResponses\":[[\"Core/echo\",{\"hello\":true,\"high\":5},\"b3ff\"]],"
	       "\"sessionState\":\"75128aab4b1b\"}");

	/* RFC 8620 3.7: Foo/changes -> Foo/get with path "/created". */
	EXPECT(reg,
	       USING
	       "[[\"Foo/changes\",{\"accountId\":\"A1\",\"sinceState\":\"abcdef\"},\"t0\"],"
	       "[\"Foo/get\",{\"accountId\":\"A1\",\"#ids\":{\"resultOf\":\"t0\","
	       "\"name\":\"Foo/changes\",\"path\":\"/created\"}},\"t1\"],"
	       /* "/list/STAR/threadId": one value per item. */
	       "[\"Test/echo\",{\"#threads\":{\"resultOf\":\"t1\",\"name\":\"Foo/get\","
	       "\"path\":\"/list/*/threadId\"},\"#ids\":{\"resultOf\":\"t1\",\"name\":"
	       "\"Foo/get\",\"path\":\"/list/*/id\"},"
	       /* arrays found through "*" are flattened. */
	       "\"#emails\":{\"resultOf\":\"t1\",\"name\":\"Foo/get\",\"path\":"
	       "\"/list/*/emailIds\"},"
	       "\"#first\":{\"resultOf\":\"t1\",\"name\":\"Foo/get\",\"path\":\"/list/1/id\"},"
	       "\"#all\":{\"resultOf\":\"t0\",\"name\":\"Foo/changes\",\"path\":\"\"},"
	       "\"plain\":1},\"t2\"]]}",
	       200,
	       "{\"methodResponses\":["
	       "[\"Foo/changes\",{\"accountId\":\"A1\",\"oldState\":\"abcdef\",\"newState\":"
	       "\"123456\",\"hasMoreChanges\":false,\"created\":[\"f1\",\"f4\"],\"updated\":[],"
	       "\"destroyed\":[]},\"t0\"],"
	       "[\"Foo/get\",{\"accountId\":\"A1\",\"list\":[{\"id\":\"f1\",\"threadId\":\"Tf1\","
	       "\"emailIds\":[\"f1a\",\"f1b\"]},{\"id\":\"f4\",\"threadId\":\"Tf4\",\"emailIds\":"
	       "[\"f4a\",\"f4b\"]}],\"notFound\":[]},\"t1\"],"
	       "[\"Test/echo\",{\"threads\":[\"Tf1\",\"Tf4\"],\"ids\":[\"f1\",\"f4\"],"
	       "\"emails\":[\"f1a\",\"f1b\",\"f4a\",\"f4b\"],\"first\":\"f4\","
	       "\"all\":{\"accountId\":\"A1\",\"oldState\":\"abcdef\",\"newState\":"
	       "\"123456\",\"hasMoreChanges\":false,\"created\":[\"f1\",\"f4\"],\"updated\":[],"
	       "\"destroyed\":[]},\"plain\":1},\"t2\"],"
	       "[\"Test/implicit\",{\"of\":\"t2\"},\"t2\"]],"
	       "\"sessionState\":\"75128aab4b1b\"}");
}

/* One call whose result reference fails, after Foo/changes as t0. */
static void expect_bad_reference(struct jmap_registry *reg, const char *ref)
{
	char req[1024];
	snprintf(req, sizeof(req),
	         USING "[[\"Foo/changes\",{},\"t0\"],[\"Foo/get\",{\"#ids\":%s},\"t1\"]]}", ref);
	struct jmap_output out;
	const char *error;
	OK(jmap_process(reg, &limits, NULL, "s", req, strlen(req), &out, &error));
	CHECK(out.status == 200);
	json_error_t jerr;
	json_t *got = json_loadb(out.body, out.body_len, 0, &jerr);
	CHECK(got != NULL);
	json_t *r = json_array_get(json_object_get(got, "methodResponses"), 1);
	if (strcmp(json_string_value(json_array_get(r, 0)), "error") != 0 ||
	    strcmp(json_string_value(json_object_get(json_array_get(r, 1), "type")),
	           "invalidResultReference") != 0 ||
	    strcmp(json_string_value(json_array_get(r, 2)), "t1") != 0) {
		fprintf(stderr, "reference %s: got %s\n", ref, out.body);
		exit(1);
	}
	json_decref(got);
	free(out.body);
}

static void test_result_references(struct jmap_registry *reg)
{
	const char *good = "\"resultOf\":\"t0\",\"name\":\"Foo/changes\"";
	char ref[512];
	/* Unknown call id, wrong name, bad paths, malformed references. */
	expect_bad_reference(
	    reg, "{\"resultOf\":\"t9\",\"name\":\"Foo/changes\",\"path\":\"/created\"}");
	expect_bad_reference(reg,
	                     "{\"resultOf\":\"t0\",\"name\":\"Foo/get\",\"path\":\"/created\"}");
	const char *paths[] = {"/nothing",      "created",
	                       "/created/2",    "/created/01",
	                       "/created/-",    "/created/x",
	                       "/created/*/id", "/accountId/x",
	                       "/~2",           "/created/99999999999999999999"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		snprintf(ref, sizeof(ref), "{%s,\"path\":\"%s\"}", good, paths[i]);
		expect_bad_reference(reg, ref);
	}
	expect_bad_reference(reg, "{\"resultOf\":\"t0\",\"name\":\"Foo/changes\"}");
	expect_bad_reference(reg, "{\"resultOf\":1,\"name\":\"Foo/changes\",\"path\":\"\"}");
	expect_bad_reference(reg, "\"/created\"");
	snprintf(ref, sizeof(ref), "{%s,\"path\":\"/created\",\"extra\":1}", good);
	expect_bad_reference(reg, ref);
	/* Too many pointer tokens. */
	char path[200] = "";
	for (int i = 0; i < JMAP_MAX_POINTER_TOKENS + 1; i++)
		snprintf(path + strlen(path), sizeof(path) - strlen(path), "/a");
	snprintf(ref, sizeof(ref), "{%s,\"path\":\"%s\"}", good, path);
	expect_bad_reference(reg, ref);
	/* A reference to a later call is unknown at the time it runs. */
	EXPECT(reg,
	       USING "[[\"Foo/get\",{\"#ids\":{\"resultOf\":\"t1\",\"name\":\"Foo/changes\","
	             "\"path\":\"/created\"}},\"t0\"],[\"Foo/changes\",{},\"t1\"]]}",
	       200,
	       "{\"methodResponses\":[[\"error\",{\"type\":\"invalidResultReference\","
	       "\"description\":\"no earlier response with that call id\"},\"t0\"],"
	       "[\"Foo/changes\",{\"accountId\":\"A1\",\"oldState\":\"abcdef\",\"newState\":"
	       "\"123456\",\"hasMoreChanges\":false,\"created\":[\"f1\",\"f4\"],\"updated\":[],"
	       "\"destroyed\":[]},\"t1\"]],\"sessionState\":\"75128aab4b1b\"}");
	/* Escapes in pointers: "~1" is "/", "~0" is "~". */
	EXPECT(reg,
	       USING
	       "[[\"Core/echo\",{\"a/b\":{\"c~d\":7}},\"e\"],[\"Test/echo\",{\"#v\":"
	       "{\"resultOf\":\"e\",\"name\":\"Core/echo\",\"path\":\"/a~1b/c~0d\"}},\"f\"]]}",
	       200,
	       "{\"methodResponses\":[[\"Core/echo\",{\"a/b\":{\"c~d\":7}},\"e\"],"
	       "[\"Test/echo\",{\"v\":7},\"f\"],[\"Test/implicit\",{\"of\":\"f\"},\"f\"]],"
	       "\"sessionState\":\"75128aab4b1b\"}");
	/* "foo" and "#foo" together. */
	EXPECT(reg,
	       USING "[[\"Foo/changes\",{},\"t0\"],[\"Foo/get\",{\"ids\":[],\"#ids\":{\"resultOf\":"
	             "\"t0\",\"name\":\"Foo/changes\",\"path\":\"/created\"}},\"t1\"]]}",
	       200,
	       "{\"methodResponses\":[[\"Foo/changes\",{\"accountId\":\"A1\",\"oldState\":"
	       "\"abcdef\",\"newState\":\"123456\",\"hasMoreChanges\":false,\"created\":[\"f1\","
	       "\"f4\"],\"updated\":[],\"destroyed\":[]},\"t0\"],[\"error\",{\"type\":"
	       "\"invalidArguments\",\"description\":\"an argument is given both directly and as "
	       "a result reference\"},\"t1\"]],\"sessionState\":\"75128aab4b1b\"}");
}

static void test_method_errors(struct jmap_registry *reg)
{
	EXPECT(reg,
	       USING "[[\"Nope/get\",{},\"a\"],[\"Unused/get\",{\"ids\":[]},\"b\"],"
	             "[\"Foo/get\",{},\"c\"],[\"Test/fail\",{},\"d\"],"
	             "[\"Test/fail\",{\"mode\":\"partial\"},\"e\"],"
	             "[\"Test/fail\",{\"mode\":\"silent\"},\"f\"],[\"Core/echo\",{},\"g\"]]}",
	       200,
	       "{\"methodResponses\":["
	       "[\"error\",{\"type\":\"unknownMethod\"},\"a\"],"
	       /* declared capability, but not in "using" */
	       "[\"error\",{\"type\":\"unknownMethod\"},\"b\"],"
	       "[\"error\",{\"type\":\"invalidArguments\",\"description\":\"ids must be an "
	       "array\",\"arguments\":[\"ids\"]},\"c\"],"
	       "[\"error\",{\"type\":\"serverFail\"},\"d\"],"
	       "[\"error\",{\"type\":\"forbidden\"},\"e\"],"
	       "[\"error\",{\"type\":\"serverFail\"},\"f\"],"
	       "[\"Core/echo\",{},\"g\"]],\"sessionState\":\"75128aab4b1b\"}");
	/* Core/echo needs the core capability in "using". */
	EXPECT(reg, "{\"using\":[\"" TEST_CAP "\"],\"methodCalls\":[[\"Core/echo\",{},\"a\"]]}",
	       200,
	       "{\"methodResponses\":[[\"error\",{\"type\":\"unknownMethod\"},\"a\"]],"
	       "\"sessionState\":\"75128aab4b1b\"}");
	/* No calls at all is a valid request. */
	EXPECT(reg, "{\"using\":[],\"methodCalls\":[]}", 200,
	       "{\"methodResponses\":[],\"sessionState\":\"75128aab4b1b\"}");
}

static void test_created_ids(struct jmap_registry *reg)
{
	/* With createdIds in the request: the map comes back, updated. */
	EXPECT(
	    reg,
	    "{\"using\":[\"" TEST_CAP "\"],\"createdIds\":{\"old\":\"srv0\"},\"methodCalls\":"
	    "[[\"Test/useId\",{\"id\":\"#old\"},\"a\"],[\"Test/create\",{},\"b\"],"
	    "[\"Test/useId\",{\"id\":\"#c1\"},\"c\"],[\"Test/useId\",{\"id\":\"plain\"},\"d\"],"
	    "[\"Test/useId\",{\"id\":\"#c2\"},\"e\"],[\"Test/useId\",{\"id\":\"a b\"},\"f\"]]}",
	    200,
	    "{\"methodResponses\":[[\"Test/useId\",{\"id\":\"srv0\"},\"a\"],"
	    "[\"Test/create\",{\"created\":{\"c1\":{\"id\":\"srv1\"}}},\"b\"],"
	    "[\"Test/useId\",{\"id\":\"srv1\"},\"c\"],[\"Test/useId\",{\"id\":\"plain\"},\"d\"],"
	    "[\"error\",{\"type\":\"invalidArguments\",\"description\":\"unknown creation "
	    "id\"},\"e\"],[\"error\",{\"type\":\"invalidArguments\",\"description\":\"not a "
	    "valid Id\"},\"f\"]],"
	    "\"createdIds\":{\"old\":\"srv0\",\"c1\":\"srv1\"},\"sessionState\":\"75128aab4b1b\"}");
	/* Without: ids still resolve within the request, no createdIds back. */
	EXPECT(reg,
	       "{\"using\":[\"" TEST_CAP "\"],\"methodCalls\":"
	       "[[\"Test/create\",{},\"b\"],[\"Test/useId\",{\"id\":\"#c1\"},\"c\"]]}",
	       200,
	       "{\"methodResponses\":[[\"Test/create\",{\"created\":{\"c1\":{\"id\":\"srv1\"}}},"
	       "\"b\"],[\"Test/useId\",{\"id\":\"srv1\"},\"c\"]],"
	       "\"sessionState\":\"75128aab4b1b\"}");
}

static void test_request_errors(struct jmap_registry *reg)
{
	const char *error;
	struct jmap_output out = {.status = 7};

	/* notJSON: garbage, truncation, trailing data, non-UTF-8, NUL,
	 * duplicate keys, numbers too large. */
	PROBLEM(reg, "", "notJSON", "ends too early");
	PROBLEM(reg, "{\"using\":", "notJSON", "ends too early");
	PROBLEM(reg, "hello", "notJSON", "not valid JSON");
	PROBLEM(reg, "{} {}", "notJSON", "after the JSON");
	PROBLEM(reg, "{\"using\":[\"\xff\xfe\"],\"methodCalls\":[]}", "notJSON", "UTF-8");
	PROBLEM(reg, "{\"using\":[\"\xc0\xaf\"],\"methodCalls\":[]}", "notJSON", "UTF-8");
	PROBLEM(reg, "{\"using\":[\"\\u0000\"],\"methodCalls\":[]}", "notJSON", "NUL");
	expect_problem(reg, &limits, "{\"using\":[]\0,\"methodCalls\":[]}", 29, "notJSON", NULL,
	               "");
	PROBLEM(reg, "{\"using\":[],\"using\":[],\"methodCalls\":[]}", "notJSON", "same key");
	PROBLEM(reg, "{\"using\":[],\"methodCalls\":[[\"Core/echo\",{\"a\":1,\"a\":2},\"x\"]]}",
	        "notJSON", "same key");
	PROBLEM(reg,
	        "{\"using\":[],\"methodCalls\":[[\"Core/echo\",{\"n\":"
	        "123456789012345678901234567890},\"x\"]]}",
	        "notJSON", "too large");
	PROBLEM(reg, "{\"using\":[],\"methodCalls\":[[\"Core/echo\",{\"n\":1e999},\"x\"]]}",
	        "notJSON", "too large");

	/* notRequest: the wrong shape. */
	PROBLEM(reg, "[]", "notRequest", "not a JSON object");
	PROBLEM(reg, "\"str\"", "notRequest", "not a JSON object");
	PROBLEM(reg, "{\"methodCalls\":[]}", "notRequest", "\"using\"");
	PROBLEM(reg, "{\"using\":[1],\"methodCalls\":[]}", "notRequest", "\"using\"");
	PROBLEM(reg, "{\"using\":\"" TEST_CAP "\",\"methodCalls\":[]}", "notRequest", "\"using\"");
	PROBLEM(reg, "{\"using\":[]}", "notRequest", "\"methodCalls\"");
	PROBLEM(reg, "{\"using\":[],\"methodCalls\":{}}", "notRequest", "\"methodCalls\"");
	const char *bad_calls[] = {"[1]",
	                           "[[]]",
	                           "[[\"Core/echo\",{}]]",
	                           "[[\"Core/echo\",{},\"a\",1]]",
	                           "[[\"Core/echo\",[],\"a\"]]",
	                           "[[1,{},\"a\"]]",
	                           "[[\"Core/echo\",{},2]]",
	                           "[[\"Core/echo\",{},\"a\"],5]"};
	for (size_t i = 0; i < sizeof(bad_calls) / sizeof(bad_calls[0]); i++) {
		char req[256];
		snprintf(req, sizeof(req), "{\"using\":[" CORE "],\"methodCalls\":%s}",
		         bad_calls[i]);
		PROBLEM(reg, req, "notRequest", "[name, arguments object, call id]");
	}
	PROBLEM(reg, "{\"using\":[],\"methodCalls\":[],\"createdIds\":[]}", "notRequest",
	        "createdIds");
	PROBLEM(reg, "{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"a\":1}}", "notRequest",
	        "createdIds");
	PROBLEM(reg, "{\"using\":[],\"methodCalls\":[],\"createdIds\":{\"a b\":\"x\"}}",
	        "notRequest", "createdIds");

	/* unknownCapability, named in the detail when it is short. */
	PROBLEM(reg, "{\"using\":[" CORE ",\"urn:nope\"],\"methodCalls\":[]}", "unknownCapability",
	        "unknown capability urn:nope");
	char longcap[400];
	memset(longcap, 'x', sizeof(longcap));
	int n = snprintf(longcap, sizeof(longcap), "{\"using\":[\"");
	memset(longcap + n, 'x', 300);
	snprintf(longcap + n + 300, sizeof(longcap) - (size_t)n - 300, "\"],\"methodCalls\":[]}");
	PROBLEM(reg, longcap, "unknownCapability", "unknown capability");

	/* limit: size and number of calls. */
	struct jmap_limits small = limits;
	small.max_size_request = 40;
	const char *req = "{\"using\":[],\"methodCalls\":[],\"x\":\"123456\"}";
	expect_problem(reg, &small, req, strlen(req), "limit", "maxSizeRequest", "maxSizeRequest");
	small.max_size_request = strlen(req);
	expect(reg, &small, req, strlen(req), 200,
	       "{\"methodResponses\":[],\"sessionState\":\"75128aab4b1b\"}");
	small = limits;
	small.max_calls_in_request = 2;
	req = "{\"using\":[" CORE "],\"methodCalls\":[[\"Core/echo\",{},\"a\"],[\"Core/echo\",{},"
	      "\"b\"],[\"Core/echo\",{},\"c\"]]}";
	expect_problem(reg, &small, req, strlen(req), "limit", "maxCallsInRequest",
	               "maxCallsInRequest");
	small.max_calls_in_request = 3;
	struct jmap_output ok;
	OK(jmap_process(reg, &small, NULL, "s", req, strlen(req), &ok, &error));
	CHECK(ok.status == 200);
	free(ok.body);

	/* Bad limits are the caller's bug: refused, output untouched. */
	small = limits;
	small.max_depth = JMAP_MAX_DEPTH + 1;
	REFUSED(jmap_process(reg, &small, NULL, "s", "{}", 2, &out, &error), "limits");
	small = limits;
	small.max_calls_in_request = 0;
	REFUSED(jmap_process(reg, &small, NULL, "s", "{}", 2, &out, &error), "limits");
	CHECK(out.status == 7 && out.body == NULL);
}

static void test_nesting(struct jmap_registry *reg)
{
	/* Exactly max_depth levels pass; one more is refused. Request levels:
	 * the request object, methodCalls, the call, args = 4. */
	char req[20000];
	for (unsigned int extra = 0; extra < 2; extra++) {
		unsigned int inner = limits.max_depth - 4 + extra;
		size_t len =
		    (size_t)snprintf(req, sizeof(req),
		                     "{\"using\":[" CORE "],\"methodCalls\":[[\"Core/echo\","
		                     "{\"a\":");
		for (unsigned int i = 0; i < inner; i++)
			req[len++] = '[';
		for (unsigned int i = 0; i < inner; i++)
			req[len++] = ']';
		len += (size_t)snprintf(req + len, sizeof(req) - len, "},\"x\"]]}");
		const char *error;
		struct jmap_output out;
		OK(jmap_process(reg, &limits, NULL, "s", req, len, &out, &error));
		CHECK(out.status == (extra == 0 ? 200u : 400u));
		if (extra == 1)
			CHECK(strstr(out.body, "notRequest") != NULL &&
			      strstr(out.body, "nested too deeply") != NULL);
		free(out.body);
	}
	/* Far deeper than jansson's own limit: notJSON, no crash. */
	size_t len = 0;
	for (; len < 10000; len++)
		req[len] = '[';
	expect_problem(reg, &limits, req, len, "notJSON", NULL, "");
	len = 0;
	for (; len + 5 < 15000; len += 5)
		memcpy(req + len, "{\"a\":", 5);
	struct jmap_limits big = limits;
	big.max_size_request = sizeof(req);
	expect_problem(reg, &big, req, len, "notJSON", NULL, "");
}

/* One JMAP account per external account: names, ids, the primary one. */
static void test_session_accounts(void)
{
	const char *error;
	char dir[64] = "/tmp/mk-test-jmap-core-XXXXXX", path[128];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/store.db", dir);
	struct store *s;
	OK(store_open(path, &s, &error));
	struct hub_account hub[2] = {
	    {.id = 7, .imap_url = "imaps://imap.example.org:993/", .login = "alice"},
	    {.id = 9, .imap_url = "imap://user@[::1]:143", .login = "bob@example.net"}};
	/* No external account: the notices account "mailkeep" is primary. */
	struct jmap_session_account *list;
	size_t n, primary;
	OK(jmap_session_accounts(s, hub, 0, &list, &n, &primary, &error));
	CHECK(n == 1 && primary == 0 && list[0].hub_account_id == 0);
	CHECK_STR(list[0].name, "mailkeep");
	int64_t notices = list[0].store_account_id;
	free(list);
	/* Two: named by login@host (or the login when it is an address), the
	 * first added is primary; the notices account stays, last. */
	OK(jmap_session_accounts(s, hub, 2, &list, &n, &primary, &error));
	CHECK(n == 3 && primary == 0);
	CHECK_STR(list[0].name, "alice@imap.example.org");
	CHECK_STR(list[1].name, "bob@example.net");
	CHECK(list[0].hub_account_id == 7 && list[1].hub_account_id == 9);
	CHECK(list[2].store_account_id == notices);
	int64_t a7 = list[0].store_account_id, a9 = list[1].store_account_id;
	free(list);
	char *key;
	CHECK(store_account_key(s, a9, &key, &error) == 1);
	CHECK_STR(key, "account:9");
	free(key);
	/* The user's choice, kept in the store; an unknown account refused;
	 * the session state moves with it (the counter alone does not). */
	char st0[64], st1[64], st2[64];
	OK(jmap_session_state(s, 5, st0, sizeof(st0), &error));
	CHECK(strncmp(st0, "5.", 2) == 0);
	OK(jmap_session_set_primary(s, hub, 2, 9, &error));
	OK(jmap_session_state(s, 5, st1, sizeof(st1), &error));
	CHECK(strcmp(st0, st1) != 0);
	OK(jmap_session_state(s, 5, st2, sizeof(st2), &error));
	CHECK_STR(st2, st1);
	REFUSED(jmap_session_state(s, 5, st2, 4, &error), "too small");
	REFUSED(jmap_session_set_primary(s, hub, 2, 8, &error), "no such account");
	OK(jmap_session_accounts(s, hub, 2, &list, &n, &primary, &error));
	CHECK(list[primary].store_account_id == a9);
	free(list);
	/* The chosen account is gone from the hub: back to the default. */
	OK(jmap_session_accounts(s, hub, 1, &list, &n, &primary, &error));
	CHECK(n == 2 && list[primary].store_account_id == a7);
	free(list);
	json_t *session;
	struct jmap_session_limits lim = {1000, 1000, 1, 1, 8, 10, 10};
	session = jmap_session_json(s, "alice", "https://hub.example", "5", hub, 2, &lim, &error);
	CHECK(session != NULL);
	char id7[32], id9[32], idn[32];
	snprintf(id7, sizeof(id7), "A%lld", (long long)a7);
	snprintf(id9, sizeof(id9), "A%lld", (long long)a9);
	snprintf(idn, sizeof(idn), "A%lld", (long long)notices);
	json_t *accts = json_object_get(session, "accounts");
	CHECK(json_object_size(accts) == 3);
	CHECK(json_object_get(json_object_get(json_object_get(accts, id9), "accountCapabilities"),
	                      "urn:ietf:params:jmap:submission") != NULL);
	CHECK(json_object_get(json_object_get(json_object_get(accts, idn), "accountCapabilities"),
	                      "urn:ietf:params:jmap:submission") == NULL);
	CHECK(json_is_null(json_object_get(
	    json_object_get(json_object_get(json_object_get(accts, id7), "accountCapabilities"),
	                    JMAP_CAPABILITY_MAIL),
	    "maxMailboxesPerEmail")));
	CHECK_STR(json_string_value(json_object_get(json_object_get(session, "primaryAccounts"),
	                                            JMAP_CAPABILITY_MAIL)),
	          id9);
	CHECK_STR(json_string_value(json_object_get(session, "apiUrl")),
	          "https://hub.example/jmap/api/");
	json_decref(session);

	/* The accountId check selects the store account (and its hub account). */
	struct jmap_mail_ctx ctx = {.store = s, .user_name = "alice", .account_id = ""};
	const char *type = NULL;
	json_t *args = json_pack("{s:s}", "accountId", id9);
	OK(jmap_check_account(&ctx, args, &type));
	CHECK(ctx.store_account_id == a9 && ctx.hub_account_id == 9);
	CHECK_STR(ctx.account_id, id9);
	json_decref(args);
	args = json_pack("{s:s}", "accountId", idn);
	OK(jmap_check_account(&ctx, args, &type));
	CHECK(ctx.store_account_id == notices && ctx.hub_account_id == 0);
	json_decref(args);
	static const char *const bad[] = {"alice", "A0", "A999", "A-1", "a7", "A7x", "", "A01"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		args = json_pack("{s:s}", "accountId", bad[i]);
		CHECK(jmap_check_account(&ctx, args, &type) < 0);
		CHECK_STR(type, "accountNotFound");
		json_decref(args);
	}
	args = json_pack("{s:i}", "accountId", 7);
	CHECK(jmap_check_account(&ctx, args, &type) < 0);
	CHECK_STR(type, "invalidArguments");
	json_decref(args);
	/* Blobs: of an Email of the account, or an upload of the user. */
	int64_t box, blob, other_blob, msg;
	struct store_blob_writer *w;
	OK(store_begin(s, &error));
	OK(store_mailbox_create(s, a7, "INBOX", '/', "Inbox", &box, &error));
	OK(store_blob_begin(s, 9, &w, &error));
	OK(store_blob_write(w, "Subject:x", 9, &error));
	OK(store_blob_finish(&w, &blob, &error));
	OK(store_blob_begin(s, 9, &w, &error));
	OK(store_blob_write(w, "Subject:y", 9, &error));
	OK(store_blob_finish(&w, &other_blob, &error));
	OK(store_local_add(s, box, blob, 0, "", 0, "import", &msg, &error));
	OK(store_upload_add(s, other_blob, "text/plain", 0, &error));
	OK(store_commit(s, &error));
	char bid[32], part[40], up[32];
	snprintf(bid, sizeof(bid), "B%lld", (long long)blob);
	snprintf(part, sizeof(part), "B%lld_1", (long long)blob);
	snprintf(up, sizeof(up), "B%lld", (long long)other_blob);
	CHECK(jmap_blob_visible(s, a7, bid, &error) == 1);
	CHECK(jmap_blob_visible(s, a7, part, &error) == 1);
	CHECK(jmap_blob_visible(s, a9, bid, &error) == 0);
	CHECK(jmap_blob_visible(s, a9, part, &error) == 0);
	CHECK(jmap_blob_visible(s, a9, up, &error) == 1);
	CHECK(jmap_blob_visible(s, a7, "B0", &error) == 0);
	CHECK(jmap_blob_visible(s, a7, "X1", &error) == 0);
	int64_t known;
	CHECK(jmap_account_known(s, id7, &known, &error) == 1 && known == a7);
	CHECK(jmap_account_known(s, "A4242", &known, &error) == 0);
	CHECK(jmap_account_known(s, "alice", &known, &error) == 0);
	store_close(&s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

/* The one reader of sinceState / sinceQueryState and maxChanges. */
static void test_changes_args(void)
{
	const char *error;
	uint64_t since;
	CHECK(jmap_parse_state("0", 5, &since) && since == 0);
	CHECK(jmap_parse_state("5", 5, &since) && since == 5);
	static const char *const bad[] = {"6",  "",   "-1", "+1",  " 1",
	                                  "1 ", "01", "x",  "1e3", "99999999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!jmap_parse_state(bad[i], 5, &since));
	CHECK(!jmap_parse_state(NULL, 5, &since));
	const char *text, *type, *why;
	size_t limit;
	json_t *a = json_pack("{s:s,s:i}", "sinceState", "3", "maxChanges", 7);
	OK(jmap_changes_args(a, "sinceState", 100, &text, &limit, &type, &why));
	CHECK_STR(text, "3");
	CHECK(limit == 7);
	json_decref(a);
	a = json_pack("{s:s,s:n}", "sinceQueryState", "3", "maxChanges");
	OK(jmap_changes_args(a, "sinceQueryState", 100, &text, &limit, &type, &why));
	CHECK(limit == 100);
	json_decref(a);
	a = json_pack("{s:s,s:I}", "sinceState", "3", "maxChanges", (json_int_t)1 << 40);
	OK(jmap_changes_args(a, "sinceState", 100, &text, &limit, &type, &why));
	CHECK(limit == 100);
	json_decref(a);
	static const char *const bad_args[] = {"{}",
	                                       "{\"sinceState\":3}",
	                                       "{\"sinceState\":null}",
	                                       "{\"sinceState\":\"1\",\"maxChanges\":0}",
	                                       "{\"sinceState\":\"1\",\"maxChanges\":-2}",
	                                       "{\"sinceState\":\"1\",\"maxChanges\":\"5\"}"};
	for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
		a = json_loads(bad_args[i], 0, NULL);
		CHECK(a != NULL);
		CHECK(jmap_changes_args(a, "sinceState", 100, &text, &limit, &type, &why) < 0);
		CHECK_STR(type, "invalidArguments");
		json_decref(a);
	}
	/* Keywords as the store keeps them. */
	unsigned flags;
	char kw[64];
	a = json_loads("{\"$seen\":true,\"zeta\":true,\"$draft\":true,\"alpha\":true}", 0, NULL);
	OK(jmap_keywords_parse(a, &flags, kw, sizeof(kw)));
	CHECK(flags == (STORE_FLAG_SEEN | STORE_FLAG_DRAFT));
	CHECK_STR(kw, "alpha zeta");
	json_decref(a);
	static const char *const bad_kw[] = {"{\"Upper\":true}", "{\"x\":false}", "{\"a b\":true}",
	                                     "[]", "{\"\":true}"};
	for (size_t i = 0; i < sizeof(bad_kw) / sizeof(bad_kw[0]); i++) {
		a = json_loads(bad_kw[i], JSON_DECODE_ANY, NULL);
		CHECK(a != NULL);
		CHECK(jmap_keywords_parse(a, &flags, kw, sizeof(kw)) < 0);
		json_decref(a);
	}
}

int main(void)
{
	const char *error;
	test_session_accounts();
	test_changes_args();
	struct jmap_registry *reg = make_registry();
	test_rfc_examples(reg);
	test_result_references(reg);
	test_method_errors(reg);
	test_created_ids(reg);
	test_request_errors(reg);
	test_nesting(reg);
	jmap_registry_free(&reg);
	CHECK(reg == NULL);
	jmap_registry_free(&reg);

	/* The registry's own bounds. */
	OK(jmap_registry_create(&reg, &error));
	char name[32];
	unsigned int i;
	for (i = 1; i < JMAP_MAX_METHODS; i++) {
		snprintf(name, sizeof(name), "M/%u", i);
		OK(jmap_registry_add_method(reg, name, JMAP_CAPABILITY_CORE, foo_get, &error));
	}
	REFUSED(jmap_registry_add_method(reg, "M/last", JMAP_CAPABILITY_CORE, foo_get, &error),
	        "too many");
	jmap_registry_free(&reg);
	TEST_DONE("test-jmap-core");
}
