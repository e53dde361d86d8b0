/* libFuzzer target: arbitrary bytes as a JMAP request body, with a registry
 * holding Core/echo and a dummy method that answers with its arguments
 * (so result references resolve into something). The answer must always be
 * valid JSON of the right kind: a response object with methodResponses and
 * sessionState (200) or a problem with a type (400). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jmap/jmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int dummy_echo(void *ctx, struct jmap_call *call, json_t *args, const char **type_r,
                      const char **desc_r)
{
	const char *error;
	(void)ctx;
	(void)desc_r;
	if (json_object_get(args, "fail") != NULL) {
		*type_r = "invalidArguments";
		return -1;
	}
	if (jmap_call_respond(call, "Dummy/echo", json_deep_copy(args), &error) < 0)
		return -1;
	const char *ref = json_string_value(json_object_get(args, "id"));
	const char *id;
	if (ref != NULL && jmap_call_resolve_id(call, ref, &id, &error) == 0 &&
	    jmap_call_set_created_id(call, "c1", id, &error) < 0)
		*type_r = NULL; /* an invalid id is refused; nothing else to do */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct jmap_registry *reg;
	const char *error;
	if (reg == NULL) {
		if (jmap_registry_create(&reg, &error) < 0 ||
		    jmap_registry_add_capability(reg, "urn:dummy", &error) < 0 ||
		    jmap_registry_add_method(reg, "Dummy/echo", "urn:dummy", dummy_echo, &error) <
		        0)
			abort();
	}
	const struct jmap_limits limits = {
	    .max_size_request = 65536, .max_calls_in_request = 16, .max_depth = 64};
	struct jmap_output out;
	if (jmap_process(reg, &limits, NULL, "state", data, size, &out, &error) < 0)
		abort(); /* only out of memory may fail */

	json_error_t jerr;
	json_t *v = json_loadb(out.body, out.body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL || !json_is_object(v)) {
		fprintf(stderr, "output is not a JSON object: %.*s\n", (int)out.body_len, out.body);
		abort();
	}
	if (out.status == 200) {
		if (!json_is_array(json_object_get(v, "methodResponses")) ||
		    !json_is_string(json_object_get(v, "sessionState")) ||
		    strcmp(out.content_type, "application/json") != 0)
			abort();
	} else if (out.status != 400 || !json_is_string(json_object_get(v, "type")) ||
	           strcmp(out.content_type, "application/problem+json") != 0) {
		abort();
	}
	json_decref(v);
	free(out.body);
	return 0;
}
