/*
 * doc.c: reading the API's documents (an order, as order_doc() writes it)
 * in the worker's invoices and notifications.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "worker.h"

const char *
doc_str(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

long long
doc_int(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_int64(v);
}

void
doc_money(char *out, size_t len, long long cents, const char *currency)
{
	snprintf(out, len, "%s%lld.%02lld %s", cents < 0 ? "-" : "",
	    llabs(cents) / 100, llabs(cents) % 100, currency);
}

struct json_object *
doc_parse(PGresult *res, int row, int col)
{
	struct json_object *o = NULL;
	const char *why;

	if (agora_json_parse(PQgetvalue(res, row, col),
	        (size_t)PQgetlength(res, row, col), &o, &why) != AGORA_OK)
		return NULL;
	return o;
}
