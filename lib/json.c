/*
 * json.c: strict JSON for request bodies, on top of json-c.
 *
 * json-c's STRICT mode still accepts single quotes, NaN, Infinity, "1.",
 * overlong UTF-8, trailing bytes after the first value and, for a
 * top-level scalar, reports "continue".  So the text is
 * checked in three steps: strict UTF-8; a scan outside strings for bytes
 * that JSON never has there (quotes, letters outside true/false/null,
 * control characters in strings); then json-c with a depth cap, and a walk
 * of the tree for numbers whose text is not JSON or whose value is not
 * finite.  The top level must be an object or an array.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"

/* Outside strings JSON has structure, whitespace, numbers and literals. */
static const char outside[] = " \t\r\n{}[],:-+.0123456789eEtrufalsn";

/* Whether s[i], outside strings, begins a number. */
static int
number_start(const char *s, size_t i)
{
	if (s[i] != '-' && (s[i] < '0' || s[i] > '9'))
		return 0;
	return i == 0 || strchr("0123456789.eE+-", s[i - 1]) == NULL;
}

/* The length of the number token at s[i], the body ending at len. */
static size_t
number_len(const char *s, size_t i, size_t len)
{
	size_t n = 0;

	while (i + n < len && strchr("0123456789.eE+-", s[i + n]) != NULL &&
	    s[i + n] != '\0')
		n++;
	return n;
}

static int
leading_zero(const char *s, size_t left)
{
	if (*s == '-') {
		s++;
		left--;
	}
	return left >= 2 && s[0] == '0' && s[1] >= '0' && s[1] <= '9';
}

/* Whether the string that ends before s[from] is an object's key. */
static int
is_key(const char *s, size_t from, size_t len)
{
	while (
	    from < len && strchr(" \t\r\n", s[from]) != NULL && s[from] != '\0')
		from++;
	return from < len && s[from] == ':';
}

struct lex {
	int in_str, esc;
	int nul; /* the string so far has \u0000 */
	int pairs; /* the text has escaped pairs json-c misreads */
};

static unsigned long
hex4(const char *s)
{
	unsigned long v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		v <<= 4;
		if (s[i] >= '0' && s[i] <= '9')
			v |= (unsigned long)(s[i] - '0');
		else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
			v |= (unsigned long)((s[i] | 0x20) - 'a' + 10);
		else
			return 0x110000; /* no code point */
	}
	return v;
}

/*
 * The code point of an escaped surrogate pair at s[i], "\uD8xx\uDCxx";
 * 0 when there is none.
 */
static unsigned long
escaped_pair(const char *s, size_t i, size_t len)
{
	unsigned long hi, lo;

	if (len - i < 12 || s[i] != '\\' || s[i + 1] != 'u' ||
	    s[i + 6] != '\\' || s[i + 7] != 'u')
		return 0;
	hi = hex4(s + i + 2);
	lo = hex4(s + i + 8);
	if (hi < 0xd800 || hi > 0xdbff || lo < 0xdc00 || lo > 0xdfff)
		return 0;
	return 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
}

/*
 * json-c 0.16 takes a code point past U+FFFF whose low 16 bits fall in
 * D800-DFFF (U+1D800-U+1DFFF and 31 other blocks, CJK among them) for a
 * lone surrogate when it comes as an escaped pair, and stores U+FFFD
 * instead: such pairs are turned into UTF-8 before json-c reads them.
 */
static int
misread_pair(unsigned long cp)
{
	return cp > 0xffff && (cp & 0xf800) == 0xd800;
}

/* The byte at s[i], inside a string; 0 (and *why) when it is refused. */
static int
in_string(const char *s, size_t i, size_t len, struct lex *x, const char **why)
{
	unsigned char c = (unsigned char)s[i];

	if (x->esc) {
		x->esc = 0;
	} else if (c == '\\') {
		x->esc = 1;
		x->nul |= len - i > 5 && memcmp(s + i + 1, "u0000", 5) == 0;
		x->pairs |= misread_pair(escaped_pair(s, i, len));
	} else if (c == '"') {
		x->in_str = 0;
		/* json-c's keys are C strings: the key "a\u0000b" would
		 * be "a", the same as another "a". */
		if (x->nul && is_key(s, i + 1, len)) {
			*why = "an object key with \\u0000";
			return 0;
		}
		x->nul = 0;
	} else if (c < 0x20) {
		*why = "control character in a string";
		return 0;
	}
	return 1;
}

/*
 * What a document will cost json-c, in bytes of its own heap, measured
 * with json-c 0.16 on x86_64 (glibc's mallinfo2 around a parse of 100,000
 * values of each kind): an object 792 (its hash table starts with 16
 * slots), an array 152, a number, literal or string 72 to 104 plus the
 * string's bytes, and an object member about 100 more.  The costs below
 * round those up; the scan refuses a body whose sum passes
 * AGORA_JSON_MAX_MEMORY.  json-c's objects are not counted against the
 * request's arena, and a megabyte of "[{},{},...]" or of nested arrays
 * would otherwise cost a hundred megabytes.  Text is bounded by the
 * body: json-c keeps each string and number's text once, and while it
 * parses, a buffer up to twice the longest token; numbers are at most
 * AGORA_JSON_NUMBER_MAX characters (no field takes longer ones).
 */
#define COST_OBJECT 800
#define COST_ARRAY 160
#define COST_VALUE 120

struct scan {
	size_t values; /* containers and commas: at least the values */
	size_t memory; /* what json-c will allocate for the structure */
	int depth;
};

/* Count one more value; 0 when over a limit. */
static int
scan_count(struct scan *sc, const char **why)
{
	sc->values++;
	sc->memory += COST_VALUE;
	if (sc->values > AGORA_JSON_MAX_VALUES) {
		*why = "too many values";
		return 0;
	}
	if (sc->memory > AGORA_JSON_MAX_MEMORY) {
		*why = "too many objects and arrays";
		return 0;
	}
	return 1;
}

/* Count a container's opening; 0 when over a limit. */
static int
scan_open(struct scan *sc, unsigned char c, const char **why)
{
	if (++sc->depth > AGORA_JSON_MAX_DEPTH) {
		*why = "nested too deeply";
		return 0;
	}
	sc->memory += c == '{' ? COST_OBJECT : COST_ARRAY;
	return scan_count(sc, why);
}

/* One byte outside strings; 0 when the document must be refused. */
static int
scan_outside(
    struct scan *sc, const char *s, size_t i, size_t len, const char **why)
{
	unsigned char c = (unsigned char)s[i];

	switch (c) {
	case ',':
		return scan_count(sc, why);
	case ':': /* an object's member costs an entry of its own */
		sc->memory += COST_VALUE;
		return 1;
	case '[':
	case '{':
		return scan_open(sc, c, why);
	case ']':
	case '}':
		sc->depth--;
		return 1;
	}
	if (number_start(s, i) && leading_zero(s + i, len - i)) {
		*why = "a number with a leading zero";
		return 0;
	}
	if (number_start(s, i) &&
	    number_len(s, i, len) > AGORA_JSON_NUMBER_MAX) {
		*why = "a number longer than " AGORA_STR(
		    AGORA_JSON_NUMBER_MAX) " characters";
		return 0;
	}
	if (c == '\0' || strchr(outside, c) == NULL) {
		*why = "unexpected character";
		return 0;
	}
	return 1;
}

/*
 * The scan outside strings.  Every container and every comma counts as a
 * value against AGORA_JSON_MAX_VALUES, and adds its cost to what json-c
 * will allocate, against AGORA_JSON_MAX_MEMORY.
 */
static int
lex_ok(const char *s, size_t len, const char **why, int *pairs)
{
	struct scan sc = { 0, 0, 0 };
	struct lex x = { 0, 0, 0, 0 };
	size_t i;

	for (i = 0; i < len; i++) {
		if (x.in_str) {
			if (!in_string(s, i, len, &x, why))
				return 0;
		} else if (s[i] == '"') {
			x.in_str = 1;
		} else if (!scan_outside(&sc, s, i, len, why)) {
			return 0;
		}
	}
	*pairs = x.pairs;
	return 1;
}

/*
 * A copy of the text (len bytes, lexed already) with the escaped pairs
 * that json-c misreads written as UTF-8, which is never longer.
 */
static char *
pairs_unescaped(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, o = 0;
	unsigned long cp;
	int in_str = 0, esc = 0;

	for (i = 0; out != NULL && i < len; i++) {
		cp = in_str && !esc ? escaped_pair(s, i, len) : 0;
		if (misread_pair(cp)) {
			out[o++] = (char)(0xf0 | (cp >> 18));
			out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (cp & 0x3f));
			i += 11;
			continue;
		}
		if (esc)
			esc = 0;
		else if (s[i] == '\\' && in_str)
			esc = 1;
		else if (s[i] == '"')
			in_str = !in_str;
		out[o++] = s[i];
	}
	if (out != NULL)
		out[o] = '\0';
	return out;
}

/* The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
number_ok(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return 0;
	if (*s == '.') {
		if (*++s < '0' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return 0;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static int
tree_ok(struct json_object *o, const char **why)
{
	struct json_object_iterator it, end;
	const char *text;
	size_t i, n;

	switch (json_object_get_type(o)) {
	case json_type_double:
		/* The number's text as sent, which json-c keeps with it;
		 * serialising it would keep a second copy. */
		text = json_object_get_userdata(o);
		if (text == NULL)
			text = json_object_to_json_string_ext(
			    o, JSON_C_TO_STRING_PLAIN);
		if (!isfinite(json_object_get_double(o)) || !number_ok(text)) {
			*why = "invalid number";
			return 0;
		}
		return 1;
	case json_type_array:
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (!tree_ok(json_object_array_get_idx(o, i), why))
				return 0;
		return 1;
	case json_type_object:
		it = json_object_iter_begin(o);
		end = json_object_iter_end(o);
		for (; !json_object_iter_equal(&it, &end);
		     json_object_iter_next(&it))
			if (!tree_ok(json_object_iter_peek_value(&it), why))
				return 0;
		return 1;
	default:
		return 1;
	}
}

static int
top_ok(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len && strchr(" \t\r\n", s[i]) != NULL; i++)
		;
	return i < len && (s[i] == '{' || s[i] == '[');
}

static int
tail_ok(const char *s, size_t from, size_t len)
{
	for (; from < len; from++)
		if (strchr(" \t\r\n", s[from]) == NULL || s[from] == '\0')
			return 0;
	return 1;
}

/* json-c's reading of the checked text, then the checks of its tree. */
static enum agora_err
tokenize(
    const char *buf, size_t len, struct json_object **out, const char **why)
{
	json_tokener *tok;
	struct json_object *o = NULL;
	enum json_tokener_error jerr;
	enum agora_err rc = AGORA_E_BAD_JSON;

	/* The scan enforces the depth; json-c's own cap is a backstop. */
	tok = json_tokener_new_ex(AGORA_JSON_MAX_DEPTH + 2);
	if (tok == NULL) {
		*why = "out of memory";
		return AGORA_E_INTERNAL;
	}
	json_tokener_set_flags(
	    tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_continue)
		*why = "truncated";
	else if (jerr == json_tokener_error_depth)
		*why = "nested too deeply";
	else if (jerr != json_tokener_success)
		*why = "syntax error"; /* json-c's own words stay inside */
	else if (!tail_ok(buf, json_tokener_get_parse_end(tok), len))
		*why = "trailing data after the JSON value";
	else if (tree_ok(o, why))
		rc = AGORA_OK;
	json_tokener_free(tok);
	if (rc == AGORA_OK) {
		*out = o;
		*why = NULL;
	} else {
		json_object_put(o);
	}
	return rc;
}

/*
 * Parse buf strictly.  On success *out is a new reference the caller owns.
 * On failure returns AGORA_E_BAD_JSON with *why a static explanation
 * (AGORA_E_INTERNAL when memory ran out).
 */
enum agora_err
agora_json_parse(
    const char *buf, size_t len, struct json_object **out, const char **why)
{
	char *copy;
	enum agora_err rc;
	int pairs = 0;

	*out = NULL;
	*why = "invalid UTF-8";
	if (len > INT32_MAX || !agora_utf8_valid(buf, len) ||
	    !lex_ok(buf, len, why, &pairs))
		return AGORA_E_BAD_JSON;
	*why = "the top level must be an object or an array";
	if (!top_ok(buf, len))
		return AGORA_E_BAD_JSON;
	if (!pairs)
		return tokenize(buf, len, out, why);
	if ((copy = pairs_unescaped(buf, len)) == NULL) {
		*why = "out of memory";
		return AGORA_E_INTERNAL;
	}
	rc = tokenize(copy, strlen(copy), out, why);
	free(copy);
	return rc;
}
