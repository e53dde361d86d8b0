#ifndef MK_JMAP_H
#define MK_JMAP_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/*
 * The JMAP request envelope (RFC 8620 section 3), sans I/O: request body
 * bytes in, response body bytes out. A registry maps method names to
 * callbacks; jmap_process() parses and validates the request, runs the
 * method calls in order (resolving result references, RFC 8620 3.7) and
 * builds the response object, or a request-level problem (RFC 8620 3.6.1,
 * RFC 7807) when the request as a whole is refused.
 *
 * Threads: build the registry once, before any thread uses it; after that
 * it is read-only and jmap_process() may run on several threads at once
 * with the same registry (each call has its own state).
 *
 * Bounds: the request size, the number of method calls and the JSON
 * nesting depth are limits the caller passes (struct jmap_limits); JSON
 * with duplicate object keys, invalid UTF-8, NUL characters or integers
 * beyond 64 bits is refused as notJSON. Result reference paths have at most
 * JMAP_MAX_POINTER_TOKENS tokens. maxObjectsInGet/Set and other per-method
 * limits are the methods' business.
 *
 * Error convention: 0 ok / -1 error with *error_r set to static text;
 * output parameters untouched on failure. Library code does not log.
 */

#define JMAP_CAPABILITY_CORE "urn:ietf:params:jmap:core"
#define JMAP_MAX_METHODS 256
#define JMAP_MAX_CAPABILITIES 32
#define JMAP_MAX_NAME 128  /* bytes of a method name or capability URI */
#define JMAP_MAX_DEPTH 512 /* the largest max_depth accepted */
#define JMAP_MAX_POINTER_TOKENS 32
#define JMAP_MAX_ID 255 /* bytes of an Id (RFC 8620 1.2) */

struct jmap_registry;
struct jmap_call;

/*
 * A method. ctx is the one given to jmap_process() (e.g. the authenticated
 * user and their store). args is the call's arguments object with result
 * references already resolved; it is borrowed: valid during the call only,
 * not to be modified (json_incref() it to keep it longer).
 *
 * On success the method appends one or more responses with
 * jmap_call_respond() (the first is normally its own; further ones are
 * implicit calls) and returns 0. On failure it returns -1 and sets
 * *error_type_r to a method-level error type ("invalidArguments",
 * "accountNotFound", "forbidden", "serverFail", ... see RFC 8620 3.6.2 and
 * RFC 8621) and optionally *description_r (UTF-8, no secrets); both are
 * read (copied) right after the method returns. Responses it appended
 * before failing are dropped; the error is the call's only response. A
 * method that returns -1 without a type, or 0 without a response, gets a
 * serverFail response.
 */
typedef int jmap_method_fn(void *ctx, struct jmap_call *call, json_t *args,
                           const char **error_type_r, const char **description_r);

struct jmap_limits {
	size_t max_size_request;           /* bytes of the request body, >= 1 */
	unsigned int max_calls_in_request; /* >= 1 */
	unsigned int max_depth;            /* JSON nesting of the request, 4 to JMAP_MAX_DEPTH */
};

/* What jmap_process() produced: a JMAP response (200,
 * "application/json") or a request-level problem (400,
 * "application/problem+json"). body is malloc()ed and the caller's to
 * free() (it suits http_response_set_body()); content_type is static. */
struct jmap_output {
	unsigned int status;
	const char *content_type;
	char *body;
	size_t body_len;
};

/* RFC 3339 UTCDate of a Unix time, or null. */
json_t *jmap_utc_date(int64_t t);

/* A registry that knows the core capability and the Core/echo method. */
int jmap_registry_create(struct jmap_registry **registry_r, const char **error_r);
/* Declare a capability that requests may list in "using". */
int jmap_registry_add_capability(struct jmap_registry *registry, const char *uri,
                                 const char **error_r);
/* Register a method under a declared capability. A request that does not
 * list the capability in "using" gets unknownMethod for it. Names are
 * unique; the strings are copied. */
int jmap_registry_add_method(struct jmap_registry *registry, const char *name,
                             const char *capability, jmap_method_fn *fn, const char **error_r);
/* Accepts NULL; sets *registry to NULL. */
void jmap_registry_free(struct jmap_registry **registry);

/*
 * Process one request body. session_state is the current Session state
 * string (put into the response as "sessionState"). ctx is passed to the
 * methods. Returns 0 with *output_r filled for both a response and a
 * request-level problem; -1 (with *error_r) only when no answer can be
 * built at all (out of memory, bad limits): the caller answers 500.
 */
int jmap_process(const struct jmap_registry *registry, const struct jmap_limits *limits, void *ctx,
                 const char *session_state, const void *request, size_t request_len,
                 struct jmap_output *output_r, const char **error_r);

/* The method's name and call id as the client sent them; valid during the
 * call. */
const char *jmap_call_name(const struct jmap_call *call);
const char *jmap_call_id(const struct jmap_call *call);
/* True when the request listed the capability in "using". */
bool jmap_call_uses(const struct jmap_call *call, const char *capability);

/* Append a response [name, args, callId] with this call's id. Steals the
 * reference to args (also on failure). Fails if args is not an object or
 * name is not valid UTF-8 of at most JMAP_MAX_NAME bytes. */
int jmap_call_respond(struct jmap_call *call, const char *name, json_t *args, const char **error_r);
/* Add a property to the error object if the method fails (e.g.
 * "properties" for invalidArguments); steals the reference to value. "type"
 * and "description" are refused. */
int jmap_call_set_error_property(struct jmap_call *call, const char *key, json_t *value,
                                 const char **error_r);

/*
 * Creation ids (RFC 8620 5.3): /set methods record the server id of each
 * object they create under the client's creation id, and look up "#c1"
 * style references in later calls of the same request. The map starts as
 * the request's "createdIds" and, if the request had one, is returned in
 * the response. Both ids must be Ids (1-255 bytes of A-Z a-z 0-9 _ -).
 */
int jmap_call_set_created_id(struct jmap_call *call, const char *creation_id, const char *id,
                             const char **error_r);
/* Resolve an id argument: "#c1" is looked up among the creation ids, any
 * other value must be an Id and is returned as it is. *id_r is valid until
 * jmap_process() returns. Fails (untouched *id_r) for an unknown creation
 * id or a malformed id (NULL included). */
int jmap_call_resolve_id(struct jmap_call *call, const char *id_or_ref, const char **id_r,
                         const char **error_r);
/* True when s is an Id per RFC 8620 1.2. */
bool jmap_is_id(const char *s);

#endif
