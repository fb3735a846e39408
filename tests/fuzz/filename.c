/*
 * filename.c: libFuzzer driver for file names: agora_filename_clean, as
 * uploads store names, and the Content-Disposition built from a stored
 * name (agora_content_disposition).  A clean name is valid UTF-8 of 1 to
 * 255 bytes, with no slash, backslash, quote or control character and no
 * leading dot or space; the header has exactly the expected shape, and
 * its filename* decodes back to the clean name.
 */
#include "config.h"

#include <stdio.h>

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

static void
check_clean(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 255 || !agora_utf8_valid(s, n) || s[0] == '.' ||
	    s[0] == ' ')
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' ||
		    s[i] == '\\' || s[i] == '"')
			abort();
}

static int
hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	    : c >= 'A' && c <= 'F'  ? c - 'A' + 10
	                            : -1;
}

/* kind; filename="<ascii>"; filename*=UTF-8''<ext>, ext naming want. */
static void
check_disposition(const char *h, const char *want)
{
	static const char attr[] = "!#$&+-.^_`|~";
	char got[256];
	const char *p, *q;
	size_t n = 0;

	if (strncmp(h, "attachment; filename=\"", 22) != 0)
		abort();
	p = h + 22;
	q = strchr(p, '"');
	if (q == NULL || strncmp(q, "\"; filename*=UTF-8''", 20) != 0)
		abort();
	for (; p < q; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '\\')
			abort();
	for (p = q + 20; *p != '\0' && n < sizeof(got) - 1; p++) {
		if (*p == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			got[n++] = (char)(hexval(p[1]) * 16 + hexval(p[2]));
			p += 2;
		} else if ((*p >= 'a' && *p <= 'z') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr(attr, *p) != NULL) {
			got[n++] = *p;
		} else {
			abort();
		}
	}
	got[n] = '\0';
	if (*p != '\0' || strcmp(got, want) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256], small[8], again[256];
	char *name = fuzz_string(data, size);
	struct agora_req r;
	const char *h;

	agora_filename_clean((const char *)data, size, out, sizeof(out));
	check_clean(out);
	/* Cleaning is idempotent: a stored name is cleaned again on send. */
	agora_filename_clean(out, strlen(out), again, sizeof(again));
	if (strcmp(out, again) != 0)
		abort();
	agora_filename_clean((const char *)data, size, small, sizeof(small));
	if (strlen(small) >= sizeof(small) ||
	    !agora_utf8_valid(small, strlen(small)))
		abort();
	fuzz_req(&r, &ctx, arena);
	h = agora_content_disposition(&r, "attachment", name);
	agora_filename_clean(name, strlen(name), out, sizeof(out));
	if (h == NULL)
		abort();
	check_disposition(h, out);
	agora_arena_reset(arena);
	free(name);
	return 0;
}
