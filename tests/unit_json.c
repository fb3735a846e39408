/*
 * unit_json.c: the strict JSON parser against what json-c lets through.
 */
#include "config.h"

#include <malloc.h>
#include <stdlib.h>
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
	{ "[1234567890123456789012345678901234567890]", 0, 1,
	    "a number of 40 characters" },
	{ "[12345678901234567890123456789012345678901]", 0, 0,
	    "a number of 41 characters" },
	{ "[1.5e-12345678901234567890123456789012345678]", 0, 0,
	    "an exponent that makes the number 41 characters" },
	{ "{\"a\\u0000b\":1,\"a\":2}", 0, 0,
	    "a key with \\u0000 (json-c would cut it to a)" },
	{ "{\"a\" :\"b\\u0000\"}", 0, 1,
	    "a value with \\u0000 (refused later)" },
	{ "[\"\\\\u0000\"]", 0, 1, "an escaped backslash before u0000" },
};

/* What text means, as json-c serializes it: the same as want. */
static void
means(const char *text, const char *want, const char *what)
{
	struct json_object *o = NULL;
	const char *why = NULL, *got = "-";

	if (agora_json_parse(text, strlen(text), &o, &why) == AGORA_OK)
		got = json_object_to_json_string_ext(
		    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	tap_ok(strcmp(got, want) == 0, "%s: %s", what, got);
	json_object_put(o);
}

/*
 * json-c 0.16 reads the escaped pairs of U+1D800-U+1DFFF, U+2D800 and
 * the like as U+FFFD; agora_json_parse must not.
 */
static void
test_pairs(void)
{
	means("{\"\\ud836\\udc00\":\"\\ud83d\\ude00 \\uD877\\uDFFF\"}",
	    "{\"\xf0\x9d\xa0\x80\":\"\xf0\x9f\x98\x80 \xf0\xad\xbf\xbf\"}",
	    "escaped pairs json-c misreads mean their code points");
	means("[\"\\\\ud836\\udc00\"]", "[\"\\\\ud836\xef\xbf\xbd\"]",
	    "an escaped backslash, then a lone surrogate");
	means("[\"\\ud800\"]", "[\"\xef\xbf\xbd\"]",
	    "a lone surrogate is U+FFFD");
}

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

/* A body of n copies of unit, joined by commas, in an array. */
static char *
repeat(const char *unit, size_t n, size_t *len)
{
	size_t ul = strlen(unit), i;
	char *b = malloc((ul + 1) * n + 3), *p = b;

	*p++ = '[';
	for (i = 0; i < n; i++) {
		memcpy(p, unit, ul);
		p += ul;
		if (i + 1 < n)
			*p++ = ',';
	}
	*p++ = ']';
	*p = '\0';
	*len = (size_t)(p - b);
	return b;
}

/*
 * Containers count as values: with only commas counted, 19,000 groups of
 * 15 nested arrays passed, and a megabyte of them cost json-c 140 MB.
 */
static void
test_nested_count(void)
{
	struct json_object *o = NULL;
	const char *why = NULL;
	size_t len;
	char *b = repeat("[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]", 19000, &len);
	enum agora_err rc = agora_json_parse(b, len, &o, &why);

	tap_ok(rc == AGORA_E_BAD_JSON && why != NULL &&
	        strcmp(why, "too many objects and arrays") == 0,
	    "%lu bytes of nested arrays: refused (%s)", (unsigned long)len,
	    why ? why : "-");
	json_object_put(o);
	free(b);
}

static size_t
heap_used(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}

/*
 * For each shape, the largest body the parser accepts costs json-c no
 * more than AGORA_JSON_MAX_MEMORY for its structure plus twice the body's
 * length for its text: the costs the scan charges are upper bounds.
 * (Under a sanitizer or valgrind, malloc is not glibc's and mallinfo2
 * reads zero: those checks are skipped, not passed.)
 */
static void
test_memory_bound(void)
{
	static const char *const shapes[] = { "{}", "[]", "1", "\"\"",
		"{\"a\":1}", "[[[[]]]]", "{\"ab\":{\"c\":[]}}", "1.5",
		"1.234567890123456789012345678901234567e9",
		"{\"a-key-of-sixty-four-characters-a-key-of-sixty-four-chars-"
		"x\":\"v\"}",
		"\"a string of a hundred characters, a string of a hundred "
		"characters, a string of a hundred ch\"" };
	struct json_object *o;
	const char *why;
	size_t i, lo, hi, mid, len, before, cost;
	char *b;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		for (lo = 1, hi = AGORA_JSON_MAX_VALUES + 1; lo + 1 < hi;) {
			mid = (lo + hi) / 2;
			b = repeat(shapes[i], mid, &len);
			o = NULL;
			if (agora_json_parse(b, len, &o, &why) == AGORA_OK)
				lo = mid;
			else
				hi = mid;
			json_object_put(o);
			free(b);
		}
		b = repeat(shapes[i], lo, &len);
		before = heap_used();
		o = NULL;
		agora_json_parse(b, len, &o, &why);
		cost = heap_used() - before;
		if (before == 0 && cost == 0)
			tap_skip("%s: malloc is not glibc's here (a sanitizer "
			         "or valgrind); the plain build measures",
			    shapes[i]);
		else
			tap_ok(o != NULL &&
			        cost <= AGORA_JSON_MAX_MEMORY + 2 * len,
			    "%lu of %s: json-c holds %lu bytes of a %lu-byte "
			    "body",
			    (unsigned long)lo, shapes[i], (unsigned long)cost,
			    (unsigned long)len);
		json_object_put(o);
		free(b);
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
	test_nested_count();
	test_memory_bound();
	test_pairs();
	return tap_done();
}
