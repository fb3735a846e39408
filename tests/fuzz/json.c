/*
 * json.c: libFuzzer driver for the strict JSON check (agora_json_parse,
 * which ends in json-c).  Beyond "no crash, no leak": a document that is
 * accepted has an object or an array at the top, and json-c's own
 * serialization of it is accepted again and yields an equal tree.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL, *again = NULL;
	const char *why = NULL, *text;
	size_t len;

	if (agora_json_parse((const char *)data, size, &o, &why) != AGORA_OK) {
		if (o != NULL || why == NULL)
			abort();
		return 0;
	}
	if (o == NULL || why != NULL ||
	    !(json_object_is_type(o, json_type_object) ||
	        json_object_is_type(o, json_type_array)))
		abort();
	text = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (agora_json_parse(text, len, &again, &why) != AGORA_OK ||
	    !json_object_equal(o, again))
		abort();
	json_object_put(again);
	json_object_put(o);
	return 0;
}
