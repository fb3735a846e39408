/*
 * health.c: GET /api/v1/health.
 *
 * Reports the database (one prepared round trip), the cache (a set with a
 * short expiry) and storage (the local directory is writable, or the S3
 * bucket answers a signed HEAD).  The answer
 * is 503 with Retry-After when PostgreSQL cannot be reached, since then
 * nothing useful works; a missing cache or storage only degrades it.
 * The database is asked on every request; the cache and storage answers
 * are kept for a second per process, so that a load balancer polling
 * health costs one round trip and not three.
 */
#include "config.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agora.h"

static const struct agora_stmt stmts[] = {
	{ "health_ping", "SELECT 1", AGORA_STMT_READ },
};

#define SIDE_CHECK_MS 1000

struct side {
	struct timespec at;
	const char *cache;
	const char *storage;
};

static struct side side;

/* Refresh the cache and storage checks when they are older than 1 s. */
static void
side_checks(struct agora_ctx *ctx)
{
	struct timespec now;
	long long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = agora_ts_us(&side.at, &now) / 1000;
	if (side.cache != NULL && ms < SIDE_CHECK_MS)
		return;
	side.at = now;
	side.cache = agora_cache_ping(ctx);
	side.storage = agora_storage_check(&ctx->cfg);
}

static enum agora_err
health(struct agora_req *r)
{
	struct json_object *o, *checks;
	const char *db, *cache, *storage;
	int down;

	db = agora_db_query(r, "health_ping", 0, NULL, NULL) == AGORA_OK
	    ? "ok"
	    : "unavailable";
	side_checks(r->ctx);
	cache = side.cache;
	storage = side.storage;
	down = strcmp(db, "ok") != 0;
	checks = json_object_new_object();
	json_object_object_add(checks, "database", json_object_new_string(db));
	json_object_object_add(checks, "cache", json_object_new_string(cache));
	json_object_object_add(
	    checks, "storage", json_object_new_string(storage));
	o = json_object_new_object();
	json_object_object_add(o, "status",
	    json_object_new_string(down ? "unavailable"
	            : strcmp(cache, "unavailable") == 0 ||
	                strcmp(storage, "unavailable") == 0
	            ? "degraded"
	            : "ok"));
	json_object_object_add(o, "checks", checks);
	if (down)
		agora_resp_header(r, "Retry-After",
		    agora_printf(r, "%lld", r->ctx->cfg.db_retry_after));
	return agora_resp_json(r, down ? 503 : 200, o);
}

static const struct agora_route routes[] = {
	{ "GET", "/api/v1/health", AGORA_BODY_NONE, health, AGORA_ANON,
	    AGORA_RL_NONE },
};

static const struct agora_program program = {
	.name = "health",
	.routes = routes,
	.nroutes = AGORA_NELEM(routes),
	.stmts = stmts,
	.nstmts = AGORA_NELEM(stmts),
	.needs = AGORA_NEEDS_STORAGE,
};

AGORA_MAIN(program)
