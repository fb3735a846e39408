/*
 * fuzz.h: what the libFuzzer drivers share: a process context with the
 * default configuration, a request over an arena, and the HS256 secret
 * that the seed tokens of the corpora are signed with.
 */
#ifndef AGORA_FUZZ_H
#define AGORA_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shop.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_HS256_SECRET "fuzzing-secret-fuzzing-secret-fuzzing-secret"

/*
 * A driver's process: ctx with the default configuration, and an arena
 * for its requests; 0, or -1 when the arena cannot be made.
 */
static inline int
fuzz_setup(struct agora_ctx *ctx, struct agora_arena **arena)
{
	agora_config_defaults(&ctx->cfg);
	*arena = agora_arena_new((size_t)ctx->cfg.request_memory_bytes);
	return *arena != NULL ? 0 : -1;
}

/* A NUL-terminated copy of the input; the caller frees it. */
static inline char *
fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s == NULL)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Write text to a new file under TMPDIR; its path, which stays. */
static inline char *
fuzz_file(const char *text)
{
	const char *dir = getenv("TMPDIR");
	char *path = malloc(4096);
	int fd;

	if (path == NULL)
		abort();
	snprintf(path, 4096, "%s/agora-fuzz-XXXXXX",
	    dir != NULL && *dir != '\0' ? dir : "/tmp");
	fd = mkstemp(path);
	if (fd < 0 || agora_write_all(fd, text, strlen(text)) != 0)
		abort();
	close(fd);
	return path;
}

/*
 * A database that is never there: a token that passes its signature and
 * claims is then checked against the user's token generation (lib/auth.c),
 * which answers 503 without a database; no driver needs one.
 */
static inline struct agora_db *
fuzz_db(void)
{
	struct agora_db *db =
	    agora_db_new("host=/nonexistent/agora-fuzz dbname=none", NULL, 0);

	if (db == NULL)
		abort();
	return db;
}

/* A request over arena with ctx, as the library starts one. */
static inline void
fuzz_req(struct agora_req *r, struct agora_ctx *ctx, struct agora_arena *arena)
{
	memset(r, 0, sizeof(*r));
	r->ctx = ctx;
	r->arena = arena;
	r->request_id = "fuzz";
	r->query = "";
}

#endif /* AGORA_FUZZ_H */
