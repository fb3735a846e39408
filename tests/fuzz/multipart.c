/*
 * multipart.c: libFuzzer driver for the multipart/form-data reader of
 * POST /files (fcgi/multipart.c, with GMime).  The input's first line is
 * the Content-Type, the rest the body.  The parts found lie inside the
 * body, in order, without overlapping, never more than the limit; a file
 * read has a name and a type, and no more bytes than the body.
 */
#include "config.h"

#include "fuzz.h"
#include "multipart.h"

static struct agora_ctx ctx;
static struct agora_arena *arena;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	multipart_init();
	return fuzz_setup(&ctx, &arena);
}

static void
check_split(const char *body, size_t len, const char *boundary)
{
	struct multipart_part p[MULTIPART_MAX_PARTS];
	const char *last = body;
	size_t n = 0, i;

	if (multipart_split(body, len, boundary, p, MULTIPART_MAX_PARTS, &n) ==
	        MULTIPART_OK &&
	    n > MULTIPART_MAX_PARTS)
		abort();
	for (i = 0; i < n; i++) {
		if (p[i].head < last ||
		    p[i].head_len > MULTIPART_PART_HEADER_MAX ||
		    p[i].body < p[i].head + p[i].head_len ||
		    p[i].body + p[i].body_len > body + len)
			abort();
		last = p[i].body + p[i].body_len;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *nl;
	char boundary[MULTIPART_BOUNDARY_MAX + 1];
	struct multipart_file f;
	struct agora_req r;
	size_t off;

	nl = strchr(text, '\n');
	off = nl != NULL ? (size_t)(nl - text) + 1 : size;
	if (nl != NULL)
		*nl = '\0';
	fuzz_req(&r, &ctx, arena);
	r.body = (const char *)data + off;
	r.body_len = size - off;
	if (multipart_boundary(text, boundary, sizeof(boundary)) == 0) {
		if (strlen(boundary) < 1 ||
		    strlen(boundary) > MULTIPART_BOUNDARY_MAX)
			abort();
		check_split(r.body, r.body_len, boundary);
	}
	if (multipart_file(&r, text, &f) == AGORA_OK &&
	    (f.data == NULL || f.len > r.body_len || f.filename == NULL ||
	        f.content_type == NULL))
		abort();
	else if (r.status != 0 && (r.status < 400 || r.status > 499))
		abort();
	agora_arena_reset(arena);
	free(text);
	return 0;
}
