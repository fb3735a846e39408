/*
 * unit_json.c: the strict JSON parser against what json-c lets through.
 */
#include "config.h"

#include <string.h>

#include "agora.h"
#include "tap.h"

struct json_case {
	const char *text;
	size_t len; /* 0: strlen */
	int ok;
	const char *what;
};

static const struct json_case cases[] = {
	{ "{}", 0, 1, "empty object" },
	{ "[]", 0, 1, "empty array" },
	{ " {\"a\": [1, 2.5, -3e2, true, false, null, \"x\"]} \n", 0, 1,
	    "every kind of value, surrounding whitespace" },
	{ "{\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", 0, 1,
	    "multi-byte UTF-8" },
	{ "{\"a\":\"\\u00e9\\n\"}", 0, 1, "escapes" },
	{ "", 0, 0, "empty body" },
	{ "   ", 0, 0, "only whitespace" },
	{ "{\"a\":1", 0, 0, "truncated object" },
	{ "{\"a\":1} xyz", 0, 0, "trailing garbage" },
	{ "{\"a\":1}{\"b\":2}", 0, 0, "two values" },
	{ "{\"a\":1},", 0, 0, "trailing comma after the value" },
	{ "{\"a\":1,}", 0, 0, "trailing comma in object" },
	{ "{'a':1}", 0, 0, "single quotes" },
	{ "{\"a\":NaN}", 0, 0, "NaN" },
	{ "{\"a\":Infinity}", 0, 0, "Infinity" },
	{ "{\"a\":-Infinity}", 0, 0, "-Infinity" },
	{ "{\"a\":1.}", 0, 0, "1." },
	{ "{\"a\":.5}", 0, 0, ".5" },
	{ "{\"a\":01}", 0, 0, "leading zero" },
	{ "{\"a\":-01}", 0, 0, "negative leading zero" },
	{ "[0, -0, 0.5, -0.5, 10, 1e5, 0e1]", 0, 1, "zeros that are fine" },
	{ "{\"a\":\"01\"}", 0, 1, "a leading zero inside a string" },
	{ "{\"a\":+1}", 0, 0, "leading plus" },
	{ "{\"a\":1e309}", 0, 0, "a double overflowing to infinity" },
	{ "{\"a\":True}", 0, 0, "True" },
	{ "{\"a\":1 /* c */}", 0, 0, "comment" },
	{ "123", 0, 0, "top-level number" },
	{ "\"x\"", 0, 0, "top-level string" },
	{ "true", 0, 0, "top-level literal" },
	{ "{\"a\":\"\xff\"}", 0, 0, "invalid UTF-8 byte" },
	{ "{\"a\":\"\xc0\xaf\"}", 0, 0, "overlong UTF-8" },
	{ "{\"a\":\"\xed\xa0\x80\"}", 0, 0, "UTF-8 surrogate" },
	{ "{\"a\":\"\xf4\x90\x80\x80\"}", 0, 0, "beyond U+10FFFF" },
	{ "{\"a\":\"x\ty\"}", 0, 0, "raw tab in a string" },
	{ "{\"a\":1}\0", 8, 0, "NUL after the value" },
	{ "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]", 0, 1, "16 levels" },
	{ "[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]", 0, 0, "17 levels" },
	{ "[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]", 0, 0, "17 levels, empty" },
	{ "{\"a\":{\"b\":[{\"[[[\":1}]}}", 0, 1, "brackets in strings" },
};

static void
test_value_cap(void)
{
	static char buf[3 * (AGORA_JSON_MAX_VALUES + 2) + 2];
	struct json_object *o;
	const char *why = NULL;
	size_t n, i;

	for (n = AGORA_JSON_MAX_VALUES; n <= AGORA_JSON_MAX_VALUES + 1; n++) {
		buf[0] = '[';
		for (i = 0; i < n; i++)
			memcpy(buf + 1 + 2 * i, i + 1 < n ? "1," : "1]", 2);
		o = NULL;
		tap_ok((agora_json_parse(buf, 1 + 2 * n, &o, &why) ==
		           AGORA_OK) == (n == AGORA_JSON_MAX_VALUES),
		    "%lu values: %s", (unsigned long)n,
		    n == AGORA_JSON_MAX_VALUES ? "accepted" : "refused");
		json_object_put(o);
	}
}

int
main(void)
{
	struct json_object *o;
	const char *why;
	enum agora_err rc;
	size_t i, len;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		why = NULL;
		rc = agora_json_parse(cases[i].text, len, &o, &why);
		tap_ok((rc == AGORA_OK) == cases[i].ok &&
		        (rc == AGORA_OK || rc == AGORA_E_BAD_JSON),
		    "%s: %s (%s)", cases[i].ok ? "accepts" : "rejects",
		    cases[i].what, why ? why : "-");
		if (rc == AGORA_OK)
			json_object_put(o);
	}
	tap_ok(agora_utf8_len("h\xc3\xa9!", 4) == 3, "counts code points");
	test_value_cap();
	return tap_done();
}
