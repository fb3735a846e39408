/*
 * unit_valid.c: field-table validation: types, bounds, required, unknown.
 */
#include "config.h"

#include <string.h>

#include "shop.h"
#include "tap.h"

static const struct agora_field fields[] = {
	{ "name", AGORA_F_STRING, AGORA_F_REQUIRED, 1, 5 },
	{ "quantity", AGORA_F_INT, AGORA_F_REQUIRED, 1, 1000 },
	{ "gift", AGORA_F_BOOL, 0, 0, 0 },
	{ "tags", AGORA_F_ARRAY, 0, 0, 2 },
	{ "meta", AGORA_F_OBJECT, 0, 0, 0 },
};
#define NF (sizeof(fields) / sizeof(fields[0]))

struct valid_case {
	const char *json;
	enum agora_err want;
	const char *field; /* the first error's field */
};

static const struct valid_case cases[] = {
	{ "{\"name\":\"ab\",\"quantity\":3}", AGORA_OK, NULL },
	{ "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\","
	  "\"quantity\":1,\"gift\":true,\"tags\":[1,2],\"meta\":{}}",
	    AGORA_OK, NULL },
	{ "{\"quantity\":3}", AGORA_E_VALIDATION, "name" },
	{ "{\"name\":\"\",\"quantity\":3}", AGORA_E_VALIDATION, "name" },
	{ "{\"name\":\"abcdef\",\"quantity\":3}", AGORA_E_VALIDATION, "name" },
	{ "{\"name\":\"a\\u0000b\",\"quantity\":3}", AGORA_E_VALIDATION,
	    "name" },
	{ "{\"name\":\"a\",\"quantity\":0}", AGORA_E_VALIDATION, "quantity" },
	{ "{\"name\":\"a\",\"quantity\":-1}", AGORA_E_VALIDATION, "quantity" },
	{ "{\"name\":\"a\",\"quantity\":1001}", AGORA_E_VALIDATION,
	    "quantity" },
	{ "{\"name\":\"a\",\"quantity\":1.5}", AGORA_E_BAD_TYPE, "quantity" },
	{ "{\"name\":\"a\",\"quantity\":\"1\"}", AGORA_E_BAD_TYPE, "quantity" },
	{ "{\"name\":\"a\",\"quantity\":9223372036854775808}",
	    AGORA_E_VALIDATION, "quantity" },
	{ "{\"name\":\"a\",\"quantity\":-9223372036854775809}",
	    AGORA_E_VALIDATION, "quantity" },
	{ "{\"name\":\"a\",\"quantity\":true}", AGORA_E_BAD_TYPE, "quantity" },
	{ "{\"name\":7,\"quantity\":1}", AGORA_E_BAD_TYPE, "name" },
	{ "{\"name\":\"a\",\"quantity\":1,\"tags\":[1,2,3]}",
	    AGORA_E_VALIDATION, "tags" },
	{ "{\"name\":\"a\",\"quantity\":1,\"x\":1}", AGORA_E_VALIDATION, "x" },
	{ "{\"name\":\"a\",\"quantity\":1,\"meta\":[]}", AGORA_E_BAD_TYPE,
	    "meta" },
	{ "{\"name\":null,\"quantity\":1}", AGORA_E_VALIDATION, "name" },
	{ "[1]", AGORA_E_BAD_TYPE, "" },
};

/* Phone numbers for SMS: E.164 after the separators people write. */
static void
test_phones(void)
{
	static const struct {
		const char *in, *want; /* want NULL: refused */
	} phones[] = {
		{ "+4930123456", "+4930123456" },
		{ "+49 (30) 123-456.78", "+493012345678" },
		{ "0049 30 123456", "+4930123456" },
		{ "+1 555 0100 999", "+15550100999" },
		{ "+123456789012345", "+123456789012345" },
		{ "+1234567890123456", NULL }, /* 16 digits */
		{ "+6834002", "+6834002" }, /* Niue: 7 digits */
		{ "+123456", NULL }, /* 6 digits */
		{ "030 123456", NULL }, /* no country code */
		{ "+0301234567", NULL }, /* country codes do not start 0 */
		{ "+49 30 12345x", NULL },
		{ "+49\t30123456", NULL },
		{ "++4930123456", NULL },
		{ "+", NULL },
		{ "", NULL },
	};
	char out[17];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(phones) / sizeof(phones[0]); i++) {
		rc = agora_phone_e164(phones[i].in, out);
		tap_ok(phones[i].want == NULL
		        ? rc == -1
		        : rc == 0 && strcmp(out, phones[i].want) == 0,
		    "phone %s: %s", phones[i].in,
		    phones[i].want ? phones[i].want : "refused");
	}
}

/* Whether errors names field. */
static int
error_on(struct json_object *errors, const char *field)
{
	struct json_object *f;
	size_t i;

	for (i = 0; i < json_object_array_length(errors); i++)
		if (json_object_object_get_ex(
		        json_object_array_get_idx(errors, i), "field", &f) &&
		    strcmp(json_object_get_string(f), field) == 0)
			return 1;
	return 0;
}

/* A body of thousands of unknown members: the list stops at its cap. */
static void
test_many_unknown(void)
{
	struct agora_value v[NF];
	struct json_object *o = json_object_new_object(), *errors;
	char key[16];
	enum agora_err rc;
	int i;

	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "x%d", i);
		json_object_object_add(o, key, json_object_new_int(0));
	}
	json_object_object_add(o, "name", json_object_new_int(1));
	errors = json_object_new_array();
	rc = agora_valid(o, "", fields, NF, v, errors);
	tap_ok(rc == AGORA_E_BAD_TYPE &&
	        json_object_array_length(errors) == AGORA_ERRORS_MAX &&
	        error_on(errors, "name"),
	    "5,000 unknown members and a name of the wrong type: %d errors "
	    "listed, the unknown ones capped, the name's among them",
	    (int)json_object_array_length(errors));
	json_object_put(errors);
	json_object_put(o);
}

int
main(void)
{
	struct agora_value v[NF];
	struct json_object *o, *errors, *e, *f;
	const char *why, *field;
	enum agora_err rc;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (agora_json_parse(cases[i].json, strlen(cases[i].json), &o,
		        &why) != AGORA_OK) {
			tap_ok(0, "case %lu parses", (unsigned long)i);
			continue;
		}
		errors = json_object_new_array();
		rc = agora_valid(o, "", fields, NF, v, errors);
		field = NULL;
		if (json_object_array_length(errors) > 0) {
			e = json_object_array_get_idx(errors, 0);
			json_object_object_get_ex(e, "field", &f);
			field = json_object_get_string(f);
		}
		tap_ok(rc == cases[i].want &&
		        (cases[i].field == NULL ? field == NULL
		                                : field != NULL &&
		                    !strcmp(field, cases[i].field)),
		    "%s -> %d, first error on %s", cases[i].json, rc,
		    field ? field : "(none)");
		json_object_put(errors);
		json_object_put(o);
	}
	agora_json_parse(
	    "{\"name\":\"ab\",\"quantity\":3,\"gift\":true}", 38, &o, &why);
	errors = json_object_new_array();
	rc = agora_valid(o, "items[2]", fields, NF, v, errors);
	tap_ok(rc == AGORA_OK && v[0].present && v[0].len == 2 && v[1].i == 3 &&
	        v[2].b == 1 && !v[3].present,
	    "typed values come back");
	json_object_put(errors);
	errors = json_object_new_array();
	json_object_object_del(o, "name");
	agora_valid(o, "items[2]", fields, NF, v, errors);
	json_object_object_get_ex(
	    json_object_array_get_idx(errors, 0), "field", &f);
	tap_ok(!strcmp(json_object_get_string(f), "items[2].name"),
	    "nested field names carry the prefix");
	json_object_put(errors);
	json_object_put(o);
	test_many_unknown();
	test_phones();
	return tap_done();
}
