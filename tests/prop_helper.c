/*
 * prop_helper.c: our parsers' verdicts for tests/prop_parsers.py, which
 * compares them with Python's own.  Reads records "MODE LEN\n" and LEN
 * bytes from stdin, and answers one line each: "ok HEX" or "bad".  MODE
 * json: agora_json_parse, HEX the document json-c serializes back; path
 * and query: agora_url_decode without and with '+' as space, HEX the
 * bytes decoded.  Built for make check, not installed.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"
#include "internal.h"

#define RECORD_MAX (4 * 1024 * 1024)

static void
answer(const char *s, size_t n)
{
	size_t i;

	if (s == NULL) {
		puts("bad");
		return;
	}
	fputs("ok ", stdout);
	for (i = 0; i < n; i++)
		printf("%02x", (unsigned char)s[i]);
	putchar('\n');
}

static void
json(const char *buf, size_t len)
{
	struct json_object *o = NULL;
	const char *why, *s;
	size_t n = 0;

	if (agora_json_parse(buf, len, &o, &why) != AGORA_OK) {
		answer(NULL, 0);
		return;
	}
	s = json_object_to_json_string_length(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	answer(s, n);
	json_object_put(o);
}

static void
url(struct agora_req *r, const char *buf, size_t len, int plus)
{
	const char *s = agora_url_decode(r, buf, len, plus);

	answer(s, s != NULL ? strlen(s) : 0);
	agora_arena_reset(r->arena);
}

/* One record from stdin into buf; its mode, or NULL at the end. */
static const char *
record(char *buf, size_t *len)
{
	static char mode[16];
	char head[64], *sp;
	long long n;

	if (fgets(head, sizeof(head), stdin) == NULL ||
	    (sp = strchr(head, ' ')) == NULL ||
	    (size_t)(sp - head) >= sizeof(mode))
		return NULL;
	memcpy(mode, head, (size_t)(sp - head));
	mode[sp - head] = '\0';
	sp[strcspn(sp, "\n")] = '\0';
	if (agora_parse_ll(sp + 1, 0, RECORD_MAX, &n) != 0 ||
	    fread(buf, 1, (size_t)n, stdin) != (size_t)n)
		return NULL;
	buf[n] = '\0';
	*len = (size_t)n;
	return mode;
}

int
main(void)
{
	struct agora_ctx ctx;
	struct agora_req r;
	const char *mode;
	char *buf = malloc(RECORD_MAX + 1);
	size_t len;
	int rc = 1;

	memset(&ctx, 0, sizeof(ctx));
	memset(&r, 0, sizeof(r));
	agora_config_defaults(&ctx.cfg);
	r.ctx = &ctx;
	r.arena = agora_arena_new((size_t)ctx.cfg.request_memory_bytes);
	if (buf == NULL || r.arena == NULL)
		goto out;
	while ((mode = record(buf, &len)) != NULL) {
		if (strcmp(mode, "json") == 0)
			json(buf, len);
		else if (strcmp(mode, "path") == 0 ||
		    strcmp(mode, "query") == 0)
			url(&r, buf, len, strcmp(mode, "query") == 0);
		else
			goto out;
		fflush(stdout);
	}
	rc = 0;
out:
	agora_arena_free(r.arena);
	agora_config_free(&ctx.cfg);
	free(buf);
	return rc;
}
