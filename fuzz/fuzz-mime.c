/* libFuzzer target: raw message bytes -> every Email property the MIME
 * layer computes (mime_email_parse), every header in every form, and the
 * decoded content of every part. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime-email.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void headers_in_all_forms(json_t *headers)
{
	size_t i;
	json_t *h;
	json_array_foreach(headers, i, h)
	{
		const char *raw = json_string_value(json_object_get(h, "value"));
		for (int f = MIME_FORM_RAW; f <= MIME_FORM_URLS; f++) {
			json_t *v = mime_header_value(raw, (enum mime_header_form)f);
			if (v == NULL)
				abort();
			char *text = json_dumps(v, JSON_ENCODE_ANY);
			if (text == NULL)
				abort(); /* every value is valid JSON (valid UTF-8) */
			free(text);
			json_decref(v);
		}
	}
}

static void walk(const uint8_t *data, size_t size, json_t *part)
{
	headers_in_all_forms(json_object_get(part, "headers"));
	const char *id = json_string_value(json_object_get(part, "partId"));
	if (id != NULL) {
		char *content, *type;
		size_t len;
		const char *err;
		if (mime_email_part(data, size, id, 1 << 20, &content, &len, &type, &err) == 1) {
			free(content);
			free(type);
		}
	}
	size_t i;
	json_t *sub;
	json_array_foreach(json_object_get(part, "subParts"), i, sub) walk(data, size, sub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *tree;
	const char *err;
	if (mime_email_parse(data, size, &tree, &err) < 0)
		return 0;
	char *text = json_dumps(tree, 0);
	if (text == NULL)
		abort();
	free(text);
	walk(data, size, json_object_get(tree, "bodyStructure"));
	(void)mime_json_weight(tree);
	json_decref(tree);
	return 0;
}
