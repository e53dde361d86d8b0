/* The JMAP request envelope: parse, validate, dispatch, result references,
 * creation ids, response and problem details (see jmap.h). */
#include "jmap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBLEM_PREFIX "urn:ietf:params:jmap:error:"
#define MAX_TOKEN 1024 /* bytes of one decoded JSON pointer token */

struct jmap_method {
	char *name;
	unsigned int capability; /* index into the registry's capabilities */
	jmap_method_fn *fn;
};

struct jmap_registry {
	char *capabilities[JMAP_MAX_CAPABILITIES];
	unsigned int capability_count;
	struct jmap_method methods[JMAP_MAX_METHODS];
	unsigned int method_count;
};

/* The state of one request while it is processed. */
struct jmap_request {
	json_t *root;
	json_t *using;     /* borrowed from root */
	json_t *responses; /* methodResponses so far */
	json_t *created;   /* creation id -> id */
	bool has_created;  /* the request carried createdIds */
};

struct jmap_call {
	struct jmap_request *req;
	const char *name;
	const char *id;
	size_t first_response; /* index of this call's first response */
	json_t *error_extra;   /* extra error properties, or NULL */
};

/* ------------------------------------------------------------- registry */

static int check_name(const char *s, const char **error_r)
{
	size_t len = strlen(s);
	if (len == 0 || len > JMAP_MAX_NAME) {
		*error_r = "name empty or too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f) {
			*error_r = "name must be printable ASCII";
			return -1;
		}
	}
	return 0;
}

static int find_capability(const struct jmap_registry *reg, const char *uri)
{
	for (unsigned int i = 0; i < reg->capability_count; i++)
		if (strcmp(reg->capabilities[i], uri) == 0)
			return (int)i;
	return -1;
}

static const struct jmap_method *find_method(const struct jmap_registry *reg, const char *name)
{
	for (unsigned int i = 0; i < reg->method_count; i++)
		if (strcmp(reg->methods[i].name, name) == 0)
			return &reg->methods[i];
	return NULL;
}

static int core_echo(void *ctx, struct jmap_call *call, json_t *args, const char **error_type_r,
                     const char **description_r)
{
	const char *error;
	(void)ctx;
	(void)description_r;
	if (jmap_call_respond(call, "Core/echo", json_deep_copy(args), &error) < 0) {
		*error_type_r = "serverFail";
		return -1;
	}
	return 0;
}

int jmap_registry_create(struct jmap_registry **registry_r, const char **error_r)
{
	/* Seed jansson's hash function now, on this one thread. */
	json_object_seed(0);
	struct jmap_registry *reg = calloc(1, sizeof(*reg));
	if (reg == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	if (jmap_registry_add_capability(reg, JMAP_CAPABILITY_CORE, error_r) < 0 ||
	    jmap_registry_add_method(reg, "Core/echo", JMAP_CAPABILITY_CORE, core_echo, error_r) <
	        0) {
		jmap_registry_free(&reg);
		return -1;
	}
	*registry_r = reg;
	return 0;
}

int jmap_registry_add_capability(struct jmap_registry *reg, const char *uri, const char **error_r)
{
	if (check_name(uri, error_r) < 0)
		return -1;
	if (find_capability(reg, uri) >= 0) {
		*error_r = "capability already declared";
		return -1;
	}
	if (reg->capability_count == JMAP_MAX_CAPABILITIES) {
		*error_r = "too many capabilities";
		return -1;
	}
	char *copy = strdup(uri);
	if (copy == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	reg->capabilities[reg->capability_count++] = copy;
	return 0;
}

int jmap_registry_add_method(struct jmap_registry *reg, const char *name, const char *capability,
                             jmap_method_fn *fn, const char **error_r)
{
	if (check_name(name, error_r) < 0)
		return -1;
	int cap = find_capability(reg, capability);
	if (cap < 0) {
		*error_r = "method's capability is not declared";
		return -1;
	}
	if (find_method(reg, name) != NULL) {
		*error_r = "method already registered";
		return -1;
	}
	if (reg->method_count == JMAP_MAX_METHODS) {
		*error_r = "too many methods";
		return -1;
	}
	char *copy = strdup(name);
	if (copy == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	reg->methods[reg->method_count++] =
	    (struct jmap_method){.name = copy, .capability = (unsigned int)cap, .fn = fn};
	return 0;
}

void jmap_registry_free(struct jmap_registry **registry)
{
	struct jmap_registry *reg = *registry;
	if (reg == NULL)
		return;
	for (unsigned int i = 0; i < reg->capability_count; i++)
		free(reg->capabilities[i]);
	for (unsigned int i = 0; i < reg->method_count; i++)
		free(reg->methods[i].name);
	free(reg);
	*registry = NULL;
}

/* ---------------------------------------------------------------- ids */

bool jmap_is_id(const char *s)
{
	size_t len = strlen(s);
	if (len == 0 || len > JMAP_MAX_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

int jmap_call_set_created_id(struct jmap_call *call, const char *creation_id, const char *id,
                             const char **error_r)
{
	if (!jmap_is_id(creation_id) || !jmap_is_id(id)) {
		*error_r = "creation id or id is not a valid Id";
		return -1;
	}
	if (json_object_set_new(call->req->created, creation_id, json_string(id)) < 0) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

int jmap_call_resolve_id(struct jmap_call *call, const char *id_or_ref, const char **id_r,
                         const char **error_r)
{
	if (id_or_ref == NULL) {
		*error_r = "not a valid Id";
		return -1;
	}
	if (id_or_ref[0] == '#') {
		json_t *v = json_object_get(call->req->created, id_or_ref + 1);
		if (!json_is_string(v)) {
			*error_r = "unknown creation id";
			return -1;
		}
		*id_r = json_string_value(v);
		return 0;
	}
	if (!jmap_is_id(id_or_ref)) {
		*error_r = "not a valid Id";
		return -1;
	}
	*id_r = id_or_ref;
	return 0;
}

/* --------------------------------------------------------------- calls */

const char *jmap_call_name(const struct jmap_call *call)
{
	return call->name;
}

const char *jmap_call_id(const struct jmap_call *call)
{
	return call->id;
}

bool jmap_call_uses(const struct jmap_call *call, const char *capability)
{
	size_t i;
	json_t *v;
	json_array_foreach(call->req->using, i, v)
	{
		if (strcmp(json_string_value(v), capability) == 0)
			return true;
	}
	return false;
}

int jmap_call_respond(struct jmap_call *call, const char *name, json_t *args, const char **error_r)
{
	if (!json_is_object(args) || strlen(name) > JMAP_MAX_NAME) {
		json_decref(args);
		*error_r = "response arguments must be an object and the name short";
		return -1;
	}
	json_t *name_json = json_string(name);
	if (name_json == NULL) {
		json_decref(args);
		*error_r = "response name is not valid UTF-8";
		return -1;
	}
	json_t *triple = json_pack("[oos]", name_json, args, call->id);
	if (triple == NULL) {
		/* json_pack consumes its "o" references even when it fails. */
		*error_r = "out of memory";
		return -1;
	}
	if (json_array_append_new(call->req->responses, triple) < 0) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

int jmap_call_set_error_property(struct jmap_call *call, const char *key, json_t *value,
                                 const char **error_r)
{
	if (value == NULL || strcmp(key, "type") == 0 || strcmp(key, "description") == 0) {
		json_decref(value);
		*error_r = "error property refused";
		return -1;
	}
	if (call->error_extra == NULL)
		call->error_extra = json_object();
	if (call->error_extra == NULL || json_object_set_new(call->error_extra, key, value) < 0) {
		*error_r = "out of memory or bad key";
		return -1;
	}
	return 0;
}

/* Replace this call's responses with ["error", {...}, callId]. */
static int respond_error(struct jmap_call *call, const char *type, const char *description)
{
	json_t *err = call->error_extra != NULL ? call->error_extra : json_object();
	call->error_extra = NULL;
	json_t *type_json = json_string(type);
	if (type_json == NULL) /* a type that is not UTF-8: the method's bug */
		type_json = json_string("serverFail");
	if (err == NULL || json_object_set_new(err, "type", type_json) < 0) {
		json_decref(err);
		return -1;
	}
	if (description != NULL) {
		json_t *d = json_string(description);
		if (d != NULL && json_object_set_new(err, "description", d) < 0) {
			json_decref(err);
			return -1;
		}
	}
	while (json_array_size(call->req->responses) > call->first_response)
		json_array_remove(call->req->responses, call->first_response);
	const char *error;
	return jmap_call_respond(call, "error", err, &error);
}

/* ---------------------------------------------------- result references */

/* Evaluate a JSON pointer (RFC 6901) with JMAP's "*" over arrays (RFC 8620
 * 3.7): the rest of the pointer is applied to every item and the results,
 * flattened one level when they are arrays, form a new array. Returns a new
 * reference, or NULL. */
static json_t *pointer_eval(json_t *value, const char *p, unsigned int tokens)
{
	if (*p == '\0')
		return json_incref(value);
	if (*p != '/' || tokens >= JMAP_MAX_POINTER_TOKENS)
		return NULL;
	p++;
	char token[MAX_TOKEN + 1];
	size_t len = 0;
	for (; *p != '\0' && *p != '/'; p++) {
		char c = *p;
		if (c == '~') {
			if (p[1] == '0')
				c = '~';
			else if (p[1] == '1')
				c = '/';
			else
				return NULL;
			p++;
		}
		if (len == MAX_TOKEN)
			return NULL;
		token[len++] = c;
	}
	token[len] = '\0';

	if (json_is_array(value)) {
		if (strcmp(token, "*") == 0) {
			json_t *out = json_array();
			size_t i;
			json_t *item;
			json_array_foreach(value, i, item)
			{
				json_t *r = pointer_eval(item, p, tokens + 1);
				int ret = r == NULL          ? -1
				          : json_is_array(r) ? json_array_extend(out, r)
				                             : json_array_append(out, r);
				json_decref(r);
				if (ret < 0) {
					json_decref(out);
					return NULL;
				}
			}
			return out;
		}
		/* An index: digits, no leading zero. */
		if (len == 0 || len > 18 || (len > 1 && token[0] == '0'))
			return NULL;
		size_t index = 0;
		for (size_t i = 0; i < len; i++) {
			if (token[i] < '0' || token[i] > '9')
				return NULL;
			index = index * 10 + (size_t)(token[i] - '0');
		}
		json_t *item = json_array_get(value, index);
		return item != NULL ? pointer_eval(item, p, tokens + 1) : NULL;
	}
	if (json_is_object(value)) {
		json_t *member = json_object_getn(value, token, len);
		return member != NULL ? pointer_eval(member, p, tokens + 1) : NULL;
	}
	return NULL;
}

/* Resolve one ResultReference object against the responses so far. */
static json_t *resolve_reference(struct jmap_request *req, json_t *ref, const char **why_r)
{
	json_t *result_of = json_object_get(ref, "resultOf");
	json_t *name = json_object_get(ref, "name");
	json_t *path = json_object_get(ref, "path");
	if (!json_is_object(ref) || !json_is_string(result_of) || !json_is_string(name) ||
	    !json_is_string(path) || json_object_size(ref) != 3) {
		*why_r = "a result reference needs exactly resultOf, name and path strings";
		return NULL;
	}
	size_t i;
	json_t *resp;
	json_array_foreach(req->responses, i, resp)
	{
		if (strcmp(json_string_value(json_array_get(resp, 2)),
		           json_string_value(result_of)) != 0)
			continue;
		if (strcmp(json_string_value(json_array_get(resp, 0)), json_string_value(name)) !=
		    0) {
			*why_r = "the referenced response has a different name";
			return NULL;
		}
		json_t *r = pointer_eval(json_array_get(resp, 1), json_string_value(path), 0);
		if (r == NULL)
			*why_r = "the path does not resolve in the referenced response";
		return r;
	}
	*why_r = "no earlier response with that call id";
	return NULL;
}

/* Resolve every "#name" argument into "name". Returns a new reference to
 * the arguments to call the method with, or NULL with the error type. */
static json_t *resolve_arguments(struct jmap_request *req, json_t *args, const char **type_r,
                                 const char **why_r)
{
	const char *key;
	json_t *value;
	bool any = false;
	json_object_foreach(args, key, value)
	{
		if (key[0] != '#')
			continue;
		any = true;
		if (json_object_get(args, key + 1) != NULL) {
			*type_r = "invalidArguments";
			*why_r = "an argument is given both directly and as a result reference";
			return NULL;
		}
	}
	if (!any)
		return json_incref(args);

	json_t *out = json_object();
	if (out == NULL) {
		*type_r = "serverFail";
		*why_r = NULL;
		return NULL;
	}
	json_object_foreach(args, key, value)
	{
		json_t *v;
		const char *name = key;
		if (key[0] == '#') {
			name = key + 1;
			v = resolve_reference(req, value, why_r);
			if (v == NULL) {
				json_decref(out);
				*type_r = "invalidResultReference";
				return NULL;
			}
		} else {
			v = json_incref(value);
		}
		if (json_object_set_new(out, name, v) < 0) {
			json_decref(out);
			*type_r = "serverFail";
			*why_r = NULL;
			return NULL;
		}
	}
	return out;
}

/* Run one method call [name, args, callId]. Returns -1 only when memory
 * runs out. */
static int run_call(const struct jmap_registry *reg, struct jmap_request *req, void *ctx,
                    json_t *invocation)
{
	struct jmap_call call = {
	    .req = req,
	    .name = json_string_value(json_array_get(invocation, 0)),
	    .id = json_string_value(json_array_get(invocation, 2)),
	    .first_response = json_array_size(req->responses),
	};
	const struct jmap_method *m = find_method(reg, call.name);
	if (m == NULL || !jmap_call_uses(&call, reg->capabilities[m->capability]))
		return respond_error(&call, "unknownMethod", NULL);

	const char *type = NULL, *why = NULL;
	json_t *args = resolve_arguments(req, json_array_get(invocation, 1), &type, &why);
	if (args == NULL)
		return respond_error(&call, type, why);
	int ret = m->fn(ctx, &call, args, &type, &why);
	json_decref(args);
	if (ret < 0 || json_array_size(req->responses) == call.first_response) {
		if (ret >= 0 || type == NULL)
			type = "serverFail";
		ret = respond_error(&call, type, why);
	}
	json_decref(call.error_extra);
	return ret;
}

/* ------------------------------------------------------------- envelope */

/* A problem details object (RFC 7807) for a request-level error. */
static int problem(const char *type, const char *limit, const char *detail, struct jmap_output *out)
{
	char full[96];
	snprintf(full, sizeof(full), PROBLEM_PREFIX "%s", type);
	json_t *p = json_pack("{sssiss}", "type", full, "status", 400, "detail", detail);
	if (p != NULL && limit != NULL && json_object_set_new(p, "limit", json_string(limit)) < 0) {
		json_decref(p);
		p = NULL;
	}
	if (p == NULL)
		return -1;
	size_t len = json_dumpb(p, NULL, 0, JSON_COMPACT);
	char *body = malloc(len + 1);
	if (body == NULL || len == 0 || json_dumpb(p, body, len, JSON_COMPACT) != len) {
		free(body);
		json_decref(p);
		return -1;
	}
	body[len] = '\0';
	json_decref(p);
	out->status = 400;
	out->content_type = "application/problem+json";
	out->body = body;
	out->body_len = len;
	return 0;
}

static const char *json_problem_text(const json_error_t *err)
{
	switch (json_error_code(err)) {
	case json_error_invalid_utf8:
		return "the request is not valid UTF-8";
	case json_error_duplicate_key:
		return "an object has the same key twice";
	case json_error_null_character:
	case json_error_null_byte_in_key:
		return "the request contains a NUL character";
	case json_error_numeric_overflow:
		return "a number is too large";
	case json_error_stack_overflow:
		return "the JSON is nested too deeply";
	case json_error_premature_end_of_input:
		return "the JSON ends too early";
	case json_error_end_of_input_expected:
		return "there is data after the JSON value";
	default:
		return "the request is not valid JSON";
	}
}

/* True when v nests deeper than max levels (v itself is level 1). */
static bool too_deep(json_t *v, unsigned int max)
{
	if (!json_is_array(v) && !json_is_object(v))
		return false;
	if (max == 0)
		return true;
	size_t i;
	const char *k;
	json_t *item;
	if (json_is_array(v)) {
		json_array_foreach(v, i, item)
		{
			if (too_deep(item, max - 1))
				return true;
		}
	} else {
		json_object_foreach(v, k, item)
		{
			if (too_deep(item, max - 1))
				return true;
		}
	}
	return false;
}

/* Check the shape of the request (RFC 8620 3.3); NULL if it is a Request,
 * else why not. */
static const char *check_request(json_t *root)
{
	if (!json_is_object(root))
		return "the request is not a JSON object";
	json_t *using = json_object_get(root, "using");
	json_t *calls = json_object_get(root, "methodCalls");
	json_t *created = json_object_get(root, "createdIds");
	if (!json_is_array(using))
		return "\"using\" must be an array of strings";
	size_t i;
	json_t *v;
	json_array_foreach(using, i, v)
	{
		if (!json_is_string(v))
			return "\"using\" must be an array of strings";
	}
	if (!json_is_array(calls))
		return "\"methodCalls\" must be an array";
	json_array_foreach(calls, i, v)
	{
		if (!json_is_array(v) || json_array_size(v) != 3 ||
		    !json_is_string(json_array_get(v, 0)) ||
		    !json_is_object(json_array_get(v, 1)) || !json_is_string(json_array_get(v, 2)))
			return "each method call must be [name, arguments object, call id]";
	}
	if (created != NULL) {
		const char *k;
		if (!json_is_object(created))
			return "\"createdIds\" must be an object";
		json_object_foreach(created, k, v)
		{
			if (!jmap_is_id(k) || !json_is_string(v) ||
			    !jmap_is_id(json_string_value(v)))
				return "\"createdIds\" must map Ids to Ids";
		}
	}
	return NULL;
}

static int build_response(struct jmap_request *req, const char *session_state,
                          struct jmap_output *out)
{
	json_t *state = json_string(session_state);
	json_t *resp = json_pack("{sOso}", "methodResponses", req->responses, "sessionState",
	                         state != NULL ? state : json_string(""));
	if (resp != NULL && req->has_created &&
	    json_object_set(resp, "createdIds", req->created) < 0) {
		json_decref(resp);
		resp = NULL;
	}
	if (resp == NULL)
		return -1;
	size_t len = json_dumpb(resp, NULL, 0, JSON_COMPACT);
	char *body = len > 0 ? malloc(len + 1) : NULL;
	if (body == NULL || json_dumpb(resp, body, len, JSON_COMPACT) != len) {
		free(body);
		json_decref(resp);
		return -1;
	}
	body[len] = '\0';
	json_decref(resp);
	out->status = 200;
	out->content_type = "application/json";
	out->body = body;
	out->body_len = len;
	return 0;
}

int jmap_process(const struct jmap_registry *registry, const struct jmap_limits *limits, void *ctx,
                 const char *session_state, const void *request, size_t request_len,
                 struct jmap_output *output_r, const char **error_r)
{
	struct jmap_output out = {0};
	int ret = -1;

	if (limits->max_size_request == 0 || limits->max_calls_in_request == 0 ||
	    limits->max_depth < 4 || limits->max_depth > JMAP_MAX_DEPTH) {
		*error_r = "invalid JMAP limits";
		return -1;
	}
	if (request_len > limits->max_size_request) {
		ret = problem("limit", "maxSizeRequest",
		              "the request is larger than maxSizeRequest", &out);
		goto done;
	}

	json_error_t jerr;
	struct jmap_request req = {0};
	req.root =
	    json_loadb(request, request_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (req.root == NULL) {
		ret = problem("notJSON", NULL, json_problem_text(&jerr), &out);
		goto done;
	}
	if (too_deep(req.root, limits->max_depth)) {
		ret = problem("notRequest", NULL, "the JSON is nested too deeply", &out);
		goto done_req;
	}
	const char *why = check_request(req.root);
	if (why != NULL) {
		ret = problem("notRequest", NULL, why, &out);
		goto done_req;
	}
	req.using = json_object_get(req.root, "using");
	size_t i;
	json_t *v;
	json_array_foreach(req.using, i, v)
	{
		if (find_capability(registry, json_string_value(v)) < 0) {
			char detail[200];
			const char *cap = json_string_value(v);
			if (strlen(cap) <= JMAP_MAX_NAME && check_name(cap, &why) == 0)
				snprintf(detail, sizeof(detail), "unknown capability %s", cap);
			else
				snprintf(detail, sizeof(detail), "unknown capability");
			ret = problem("unknownCapability", NULL, detail, &out);
			goto done_req;
		}
	}
	json_t *calls = json_object_get(req.root, "methodCalls");
	if (json_array_size(calls) > limits->max_calls_in_request) {
		ret = problem("limit", "maxCallsInRequest",
		              "the request has more method calls than maxCallsInRequest", &out);
		goto done_req;
	}
	json_t *created = json_object_get(req.root, "createdIds");
	req.has_created = created != NULL;
	req.created = created != NULL ? json_copy(created) : json_object();
	req.responses = json_array();
	if (req.created == NULL || req.responses == NULL)
		goto done_req;
	json_array_foreach(calls, i, v)
	{
		if (run_call(registry, &req, ctx, v) < 0)
			goto done_req;
	}
	ret = build_response(&req, session_state, &out);

done_req:
	json_decref(req.responses);
	json_decref(req.created);
	json_decref(req.root);
done:
	if (ret < 0) {
		*error_r = "out of memory while building the JMAP response";
		return -1;
	}
	*output_r = out;
	return 0;
}
