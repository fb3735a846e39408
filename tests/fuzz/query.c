/*
 * query.c: libFuzzer driver for query strings and percent-decoding:
 * agora_query_next over the whole query, agora_query_get of a few names
 * (which must agree with next where next reads the whole query),
 * and the decoding of paths and of query parts (agora_url_decode),
 * compared with a plain decoder written here: where one of them accepts
 * the input, both must, with the same bytes; and what is accepted is
 * valid UTF-8 without NUL.
 */
#include "config.h"

#include "fuzz.h"
#include "internal.h"

static struct agora_ctx ctx;
static struct agora_arena *arena;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return fuzz_setup(&ctx, &arena);
}

static int
hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The reference: RFC 3986 percent-decoding, then UTF-8 without NUL. */
static char *
reference(const char *s, size_t n, int plus, size_t *len)
{
	char *out = malloc(n + 1);
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 &&
		    hex(s[i + 2]) >= 0) {
			out[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
			i += 2;
		} else if (s[i] == '%') {
			free(out);
			return NULL;
		} else {
			out[o++] = plus && s[i] == '+' ? ' ' : s[i];
		}
	}
	*len = o;
	if (memchr(out, '\0', o) != NULL || !agora_utf8_valid(out, o)) {
		free(out);
		return NULL;
	}
	return out;
}

static void
compare(struct agora_req *r, const char *s, size_t n, int plus)
{
	char *ours, *ref;
	size_t len = 0;

	/* Paths and queries reach the decoder as C strings. */
	if (memchr(s, '\0', n) != NULL)
		return;
	ours = agora_url_decode(r, s, n, plus);
	ref = reference(s, n, plus, &len);
	if ((ours == NULL) != (ref == NULL))
		abort();
	if (ours != NULL &&
	    (strlen(ours) != len || memcmp(ours, ref, len) != 0))
		abort();
	free(ref);
}

#define NNAMES 5

/*
 * Every pair is valid UTF-8; and where next reads the whole query, get
 * gives for each name the value of the first pair next gave with that
 * key (one parser for both).
 */
static void
walk(struct agora_req *r)
{
	const char *pos = NULL, *k, *v, *first[NNAMES] = { NULL };
	static const char *const names[NNAMES] = { "a", "limit", "cursor", "q",
		"" };
	enum agora_err rc;
	size_t i;

	while (
	    (rc = agora_query_next(r, &pos, &k, &v)) == AGORA_OK && k != NULL) {
		if (!agora_utf8_valid(k, strlen(k)) ||
		    !agora_utf8_valid(v, strlen(v)))
			abort();
		for (i = 0; i < NNAMES; i++)
			if (first[i] == NULL && strcmp(k, names[i]) == 0)
				first[i] = v;
	}
	for (i = 0; i < NNAMES; i++) {
		if (agora_query_get(r, names[i], &v) != AGORA_OK)
			continue;
		if (v != NULL && !agora_utf8_valid(v, strlen(v)))
			abort();
		if (rc == AGORA_OK && (v == NULL) != (first[i] == NULL))
			abort();
		if (rc == AGORA_OK && v != NULL && strcmp(v, first[i]) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agora_req r;
	char *q = fuzz_string(data, size);

	fuzz_req(&r, &ctx, arena);
	compare(&r, (const char *)data, size, 0);
	compare(&r, (const char *)data, size, 1);
	r.query = q;
	walk(&r);
	agora_arena_reset(arena);
	free(q);
	return 0;
}
